/* providers.c - the list of providers, registered at start. */
#include "pgcmk/providers.h"
#include "providers/internal.h"
#include "providers/postgres.h"

void
pgcmk_providers_init(void)
{
    pgcmk_identity_register();
    pgcmk_keyvault_register();
    pgcmk_keyvault_keys_register();
    pgcmk_pg_cluster_register();
    pgcmk_pg_server_register();
    pg_core_register();
}

void
pgcmk_providers_configure(const struct pgcmk_cfg *cfg)
{
    pg_core_init(cfg);
}
