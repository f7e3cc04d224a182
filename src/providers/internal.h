/* internal.h - each provider's registration function. */
#ifndef PGCMK_PROVIDERS_INTERNAL_H
#define PGCMK_PROVIDERS_INTERNAL_H

void pgcmk_identity_register(void);
void pgcmk_keyvault_register(void);
void pgcmk_keyvault_keys_register(void);
void pgcmk_pg_cluster_register(void);
void pgcmk_pg_server_register(void);

#endif
