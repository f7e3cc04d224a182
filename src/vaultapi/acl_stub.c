/* acl_stub.c - the ACL engine's stand-in until h-acl's src/vaultapi/acl.c replaces this file:
 * the root policy allows everything, anything else is denied. */
#include <string.h>

#include "pgcmk/vaultapi.h"

int
pgcmk_vacl_check(const char *ns, const char *const *policies, int n, const char *path,
                 unsigned caps)
{
    PGCMK_UNUSED(ns);
    PGCMK_UNUSED(path);
    PGCMK_UNUSED(caps);
    for (int i = 0; i < n; i++)
        if (policies[i] && strcmp(policies[i], "root") == 0)
            return 1;
    return 0;
}

void
pgcmk_hv_acl_register(void)
{
}
