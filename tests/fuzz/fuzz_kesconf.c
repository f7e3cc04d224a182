/* fuzz_kesconf.c - libFuzzer over the KES config parser (src/kes/conf.c, libyaml, pure) and the
 * API-key parser (src/kes/auth.c). Besides memory errors (ASan) and undefined behaviour (UBSan),
 * it traps when:
 *   - a refused document gives no reason;
 *   - parsing is not deterministic (twice the same input, the same result and reason);
 *   - an accepted document has no vault keystore, no host, a port outside 0-65535, negative
 *     cache expiries or a policy pattern with a '*' before its end.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/kes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_patterns(char **l, int n)
{
    for (int i = 0; i < n; i++) {
        const char *star = strchr(l[i], '*');

        if (star && star[1] != '\0')
            __builtin_trap();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pgcmk_kes_conf a, b;
    char why[512], why2[512], *copy, id[65];
    int ra, rb;

    copy = malloc(size + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    ra = pgcmk_kes_conf_parse(copy, size, "/base", &a, why, sizeof(why));
    rb = pgcmk_kes_conf_parse(copy, size, "/base", &b, why2, sizeof(why2));
    if (ra != rb)
        __builtin_trap();
    if (ra != 0 && (why[0] == '\0' || strcmp(why, why2) != 0))
        __builtin_trap();
    if (ra == 0) {
        if (!a.has_vault || a.host == NULL || a.port < 0 || a.port > 65535 || a.cache.any_ms < 0 ||
            a.cache.unused_ms < 0 || a.cache.offline_ms < 0 || a.admin == NULL ||
            a.vault.endpoint == NULL)
            __builtin_trap();
        for (int i = 0; i < a.n_policies; i++) {
            check_patterns(a.policies[i].allow, a.policies[i].n_allow);
            check_patterns(a.policies[i].deny, a.policies[i].n_deny);
        }
        pgcmk_kes_conf_free(&a);
        pgcmk_kes_conf_free(&b);
    }
    (void)pgcmk_kes_apikey_identity(copy, id);
    free(copy);
    return 0;
}
