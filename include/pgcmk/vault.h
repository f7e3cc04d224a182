/* vault.h - the Key Vault data plane at https://{vault}.vault.localhost:PORT/ (keys). */
#ifndef PGCMK_VAULT_H
#define PGCMK_VAULT_H

/* Adds the data-plane routes, subscribes to vault purges, and starts scheduled key purges. */
void pgcmk_vault_init(void);
void pgcmk_vault_shutdown(void);

/* A key URI as customers write it: https://{vault}.vault.localhost[:port]/keys/{name}[/{version}]
 * or https://{vault}.vault.azure.net[:443]/keys/{name}[/{version}] (both name the local vault
 * {vault}; the az CLI insists on the second form). Fills vault (lower case), name and version
 * ("" when absent). 0, or -1 when the URI is not a key URI. */
int pgcmk_vault_parse_key_uri(const char *uri, char vault[32], char name[128], char version[40]);

#endif
