/* fuzz_vaultc.c - libFuzzer over the agent's Vault response readers (src/agent/vault.c): jansson
 * parses the JSON, then the readers pull data.type and data.options.version (mount), data.data.key
 * with data.metadata.version (key), data.version (write) and errors[] out of an answer, and the
 * classifier maps a status to an outcome. It traps when a reader breaks its promises: a key of
 * 16 or 32 bytes on success, NUL-terminated type, version and error texts, a classification that
 * calls a 2xx an error or an error an OK.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/vaultc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 204, 400, 403, 404, 429, 500, 503};
    char *in = malloc(size ? size : 1);
    char type[32], ver[8], why[64];
    unsigned char key[PGCMK_VAULTC_MAX_KEY];
    size_t kl = 0;
    long v = 0;
    int rc;

    if (size)
        memcpy(in, data, size);
    rc = pgcmk_vaultc_parse_mount(in, size, type, ver);
    if (rc < -1 || rc > 1 || !memchr(type, 0, sizeof(type)) || !memchr(ver, 0, sizeof(ver)))
        __builtin_trap();
    rc = pgcmk_vaultc_parse_key(in, size, key, &kl, &v);
    if (rc == 0 && kl != 16 && kl != 32)
        __builtin_trap();
    (void)pgcmk_vaultc_parse_version(in, size);
    pgcmk_vaultc_parse_errors(in, size, why, sizeof(why));
    if (!memchr(why, 0, sizeof(why)))
        __builtin_trap();
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        int outage = 0;
        enum pgcmk_errc c = pgcmk_vaultc_classify(statuses[i], in, size, &outage);

        if ((statuses[i] < 300) != (c == PGCMK_E_OK) ||
            (outage && c != PGCMK_E_HV_SERVER_UNREACHABLE))
            __builtin_trap();
    }
    free(in);
    return 0;
}
