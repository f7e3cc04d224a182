/* fuzz_kmipc.c - libFuzzer over the agent's KMIP response reader (pgcmk_kmipc_parse_response,
 * src/agent/kmip.c): the TTLV decode, then the getters that pull the Result Status, Reason and
 * Message, the Unique Identifiers, the key material and the State out of an answer. It traps when
 * a parsed reply breaks its promises: at most PGCMK_KMIPC_MAX_ITEMS NUL-terminated ids, a key no
 * longer than PGCMK_KMIPC_MAX_KEY, a NUL-terminated result message, and a refusal that says why.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/kmip.h"
#include "pgcmk/kmipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t ops[] = {PGCMK_KMIP_OP_REGISTER, PGCMK_KMIP_OP_LOCATE, PGCMK_KMIP_OP_GET,
                                   PGCMK_KMIP_OP_GET_ATTRIBUTES};
    uint8_t *in = malloc(size ? size : 1);

    if (size)
        memcpy(in, data, size);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        struct pgcmk_kmipc_reply r;
        char why[160] = "";

        if (pgcmk_kmipc_parse_response(in, size, ops[i], &r, why, sizeof(why)) != 0) {
            if (!why[0])
                __builtin_trap();
            continue;
        }
        if (r.n_uids < 0 || r.n_uids > PGCMK_KMIPC_MAX_ITEMS || r.key_len > PGCMK_KMIPC_MAX_KEY ||
            memchr(r.result_message, 0, sizeof(r.result_message)) == NULL)
            __builtin_trap();
        for (int u = 0; u < r.n_uids; u++)
            if (memchr(r.uids[u], 0, PGCMK_KMIPC_UID_LEN) == NULL || !r.uids[u][0])
                __builtin_trap();
    }
    free(in);
    return 0;
}
