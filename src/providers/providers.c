/* providers.c - the list of providers, registered at start. */
#include "pgcmk/providers.h"
#include "providers/internal.h"

void
pgcmk_providers_init(void)
{
    pgcmk_identity_register();
    pgcmk_keyvault_register();
}
