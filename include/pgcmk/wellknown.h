/* wellknown.h - the fixed development identities (README "Well-known identities").
 * Like Azurite's account key, they are public on purpose: pgcmk is for laptops and CI. */
#ifndef PGCMK_WELLKNOWN_H
#define PGCMK_WELLKNOWN_H

#define PGCMK_TENANT_ID           "72f98800-0000-4000-8000-00000000cafe"
#define PGCMK_SUBSCRIPTION_ID     "00000000-0000-4000-8000-000000000001"
#define PGCMK_SUBSCRIPTION_NAME   "pgcmk emulator"
#define PGCMK_ADMIN_OBJECT_ID     "00000000-0000-4000-8000-00000000a0a0"
#define PGCMK_ADMIN_CLIENT_ID     "00000000-0000-4000-8000-00000000c11e"
#define PGCMK_ADMIN_CLIENT_SECRET "pgcmk-admin-secret"
#define PGCMK_DEFAULT_LOCATION    "eastus"
#define PGCMK_VAULT_DNS_SUFFIX    "vault.localhost"

#endif
