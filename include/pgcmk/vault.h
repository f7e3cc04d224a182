/* vault.h - the Key Vault data plane at https://{vault}.vault.localhost:PORT/ (keys). */
#ifndef PGCMK_VAULT_H
#define PGCMK_VAULT_H

/* Adds the data-plane routes, subscribes to vault purges, and starts scheduled key purges. */
void pgcmk_vault_init(void);
void pgcmk_vault_shutdown(void);

#endif
