/* fuzz_kesc.c - libFuzzer over the agent's KES answer readers (src/agent/kes.c): jansson parses
 * the JSON, then the readers pull plaintext and ciphertext out of a generate answer, plaintext out
 * of a decrypt answer and the message out of an error, the classifier maps a status to an
 * outcome, and the API-key parser reads the input as a key. It traps when a reader breaks its
 * promises: a 32-byte plaintext and a 1..4096-byte ciphertext on success, a NUL-terminated
 * message without control characters, a classification that calls a 2xx an error or an error an
 * OK, an outage that is not KesServerUnreachable.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/kesc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 204, 400, 401, 403, 404, 429, 500, 502, 503};
    char *in = malloc(size + 1);
    char why[64], id[PGCMK_KESC_ID_LEN];
    unsigned char dek[32], *ct = NULL, seed[32];
    size_t cl = 0, pl = 0;
    int rc;

    if (size)
        memcpy(in, data, size);
    in[size] = '\0';
    rc = pgcmk_kesc_parse_generate(in, size, dek, &ct, &cl);
    if (rc == 0 && (!ct || cl < 1 || cl > 4096))
        __builtin_trap();
    if (rc != 0 && ct)
        __builtin_trap();
    free(ct);
    rc = pgcmk_kesc_parse_plaintext(in, size, dek, &pl);
    if (rc < -1 || rc > 1 || (rc == 0 && pl != 32) || (rc == 1 && pl == 32))
        __builtin_trap();
    pgcmk_kesc_parse_message(in, size, why, sizeof(why));
    if (!memchr(why, 0, sizeof(why)))
        __builtin_trap();
    for (const char *p = why; *p; p++)
        if ((unsigned char)*p < 0x20)
            __builtin_trap();
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        int outage = 0;
        enum pgcmk_errc c = pgcmk_kesc_classify(statuses[i], in, size, &outage);

        if ((statuses[i] < 300) != (c == PGCMK_E_OK) ||
            (outage && c != PGCMK_E_KES_SERVER_UNREACHABLE))
            __builtin_trap();
    }
    if (pgcmk_kesc_api_key_seed(in, seed) == 0 && pgcmk_kesc_api_key_identity(in, id) != 0)
        __builtin_trap();
    (void)pgcmk_kesc_key_name_ok(in);
    free(in);
    return 0;
}
