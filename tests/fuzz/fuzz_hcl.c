/* fuzz_hcl.c - libFuzzer over the Vault policy parser: pgcmk_hcl_parse (src/vaultapi/hcl.c, pure)
 * and the policy decoder on top of it (pgcmk_vacl_policy_parse, src/vaultapi/acl.c).
 * Besides memory errors (ASan) and undefined behaviour (UBSan), it traps when:
 *   - a refused input's message does not name a position ("At LINE:COL: ...");
 *   - an accepted input is not a JSON object;
 *   - parsing is not deterministic (twice the same input, the same result);
 *   - the decoder accepts what the HCL parser refused;
 *   - an accepted policy's rule has no path or a capability bit outside PGCMK_VCAP_*.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/vacl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256], err2[256];
    struct pgcmk_vacl_policy *p;
    json_t *a, *b;
    char *copy;
    int rc;

    copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    a = pgcmk_hcl_parse(copy, size, err, sizeof(err));
    b = pgcmk_hcl_parse(copy, size, err2, sizeof(err2));
    if ((a == NULL) != (b == NULL))
        __builtin_trap();
    if (a == NULL && (strncmp(err, "At ", 3) != 0 || strcmp(err, err2) != 0))
        __builtin_trap();
    if (a && (!json_is_object(a) || !json_equal(a, b)))
        __builtin_trap();
    free(copy);

    if (memchr(data, '\0', size) == NULL) {
        copy = malloc(size + 1);
        if (copy == NULL)
            goto out;
        memcpy(copy, data, size);
        copy[size] = '\0';
        rc = pgcmk_vacl_policy_parse("fuzz", copy, &p, err, sizeof(err));
        if (rc == 0 && a == NULL)
            __builtin_trap();
        if (rc == 0) {
            for (size_t i = 0; i < p->n_rules; i++)
                if (p->rules[i].path == NULL || (p->rules[i].caps & ~0xffu) != 0)
                    __builtin_trap();
            pgcmk_vacl_policy_free(p);
        } else if (rc != -1 || p != NULL || err[0] == '\0') {
            __builtin_trap();
        }
        free(copy);
    }
out:
    json_decref(a);
    json_decref(b);
    return 0;
}
