/* vault.h - the Key Vault data plane at https://{vault}.vault.localhost:PORT/ (keys). */
#ifndef PGCMK_VAULT_H
#define PGCMK_VAULT_H

#include <jansson.h>

struct pgcmk_err;

/* Adds the data-plane routes and installs their admission hook (pgcmk_http_set_admit: the
 * challenge, the bearer token, the vault, the access policy, by each route's permission), makes
 * jansson wipe what it frees (pgcmk_secret_json_wipe), subscribes to vault purges, and starts
 * scheduled key purges. */
void pgcmk_vault_init(void);
void pgcmk_vault_shutdown(void);

/* Each thread caches the vaults and key versions that data-plane requests use. Every write that
 * can change a data-plane answer (a vault's body, its access policies, a key) calls this inside
 * its store transaction (or after it committed), so that the next request reads the store
 * again. A call too many costs one store read; a call missing serves stale data. */
void pgcmk_vault_invalidate(void);
/* The generation the caches are valid for: it moves on every pgcmk_vault_invalidate (tests). */
unsigned long long pgcmk_vault_generation(void);

/* A key URI as customers write it: https://{vault}.vault.localhost[:port]/keys/{name}[/{version}]
 * or https://{vault}.vault.azure.net[:443]/keys/{name}[/{version}] (both name the local vault
 * {vault}; the az CLI insists on the second form). Fills vault (lower case), name and version
 * ("" when absent). 0, or -1 when the URI is not a key URI. */
int pgcmk_vault_parse_key_uri(const char *uri, char vault[32], char name[128], char version[40]);

/* ---- keys as the ARM provider of Microsoft.KeyVault/vaults/keys sees them ---------------------
 * The vault is given by its stored ARM body. A key is answered as a data-plane bundle:
 * {"key": {kid, kty, key_ops, n, e | crv, x, y}, "attributes": {...}, "tags": {...}}. */

/* The current version of `name` (or `version`): 1 found (*bundle new), 0 absent or deleted, -1. */
int pgcmk_vault_key_get(const json_t *vault_body, const char *name, const char *version,
                        json_t **bundle, struct pgcmk_err *err);
/* The current versions of the vault's live keys (name NULL), or every version of `name`:
 * 1 (*bundles a new array), 0 when `name` is absent or deleted, -1 error. */
int pgcmk_vault_key_list(const json_t *vault_body, const char *name, json_t **bundles,
                         struct pgcmk_err *err);
/* Keys_CreateIfNotExist: creates `name` from an ARM body (properties.kty, keySize, curveName,
 * keyOps, attributes; tags) unless it exists, which comes back unchanged; *created says which.
 * A deleted-but-recoverable key is a Conflict. 0 (*bundle new) or -1 with err. */
int pgcmk_vault_key_create_if_absent(const json_t *vault_body, const char *name,
                                     const json_t *arm_body, json_t **bundle, int *created,
                                     struct pgcmk_err *err);

#endif
