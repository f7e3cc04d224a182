/* vaultc.h - the agent as a HashiCorp Vault client (src/agent/vault.c): pg_tde's vault-v2 key
 * provider (key-providers.md 4.1) over HTTPS with libcurl, against pgcmk's Vault listener or any
 * other Vault or OpenBao server. Every request carries X-Vault-Token (read from tokenPath at each
 * call), X-Vault-Namespace when a namespace is set and Content-Type: application/json (GET
 * included, as pg_tde's keyring_curl.c does); connect timeout 3 s, total 10 s.
 *
 * The agent reaches Vault only over the wire: nothing here calls src/vaultapi/.
 * Outcomes use struct pgcmk_agent_result: `outage` (no connection, timeout, a 5xx other than
 * "Vault is sealed": retried `retries` times, the DEK kept) or `lost` (403, 404, sealed, a mount
 * that is not KV v2, an unreadable token file, a server certificate that does not verify), with
 * a PGCMK_E_HV_* code and a message naming the server, the mount and the secret. */
#ifndef PGCMK_VAULTC_H
#define PGCMK_VAULTC_H

#include <stddef.h>

#include "pgcmk/agent.h"

#define PGCMK_VAULTC_MAX_KEY 32

/* A Vault server and the credentials of pg_tde's vault-v2 provider: options {url, mountPath,
 * tokenPath, caPath, namespace}. caPath NULL: the system's trust store. timeout_ms bounds each
 * request (0: 10000; the connect timeout is min(3000, timeout_ms)); retries applies to outages
 * only (negative: 2). */
struct pgcmk_vaultc_target {
    const char *url; /* https://host:port, without a trailing /v1 */
    const char *mount;
    const char *token_path;
    const char *ca_path;
    const char *ns; /* NULL or "": no X-Vault-Namespace */
    int timeout_ms;
    int retries;
};

/* The request URLs (malloc'd): GET {url}/v1/sys/mounts/{mount}, GET
 * {url}/v1/{mount}/metadata/?list=true, {url}/v1/{mount}/data/{name}. The name is percent-encoded
 * except '/', as a path. */
char *pgcmk_vaultc_url_mount(const struct pgcmk_vaultc_target *t);
char *pgcmk_vaultc_url_list(const struct pgcmk_vaultc_target *t);
char *pgcmk_vaultc_url_data(const struct pgcmk_vaultc_target *t, const char *name);
/* The body of the key POST, exactly {"data":{"key":"<standard base64>"}} (malloc'd; the caller
 * wipes it). NULL unless key_len is 16 or 32. */
char *pgcmk_vaultc_store_body(const unsigned char *key, size_t key_len);

/* Response readers (jansson parses the JSON; tests/fuzz/fuzz_vaultc.c drives them).
 * Mount: 1 when data.type == "kv" and data.options.version == "2", 0 when it is another engine
 * (type and version copied, "" when absent), -1 when the body is not a mount answer. */
int pgcmk_vaultc_parse_mount(const char *body, size_t len, char type[32], char version[8]);
/* Key: 0 with key/key_len (16 or 32 bytes) and *version (data.metadata.version, 0 when absent);
 * 1 when data.data.key is not base64 of 16 or 32 bytes (key_len says how many when it was
 * base64); -1 when the body has no data.data.key. The key is the caller's to wipe. */
int pgcmk_vaultc_parse_key(const char *body, size_t len, unsigned char key[PGCMK_VAULTC_MAX_KEY],
                           size_t *key_len, long *version);
/* Store: data.version of a write answer, 0 when absent. */
long pgcmk_vaultc_parse_version(const char *body, size_t len);
/* Vault's {"errors":[...]} joined with "; " into out ("" when none). */
void pgcmk_vaultc_parse_errors(const char *body, size_t len, char *out, size_t cap);

/* How an answer counts: the code (0 for a 2xx) and whether it is an outage. A 404 is
 * PGCMK_E_HV_KEY_NOT_FOUND, 403 PERMISSION_DENIED, 503 with "sealed" in its errors SEALED, other
 * 4xx REQUEST_REFUSED, other 5xx and 429 SERVER_UNREACHABLE with *outage = 1. */
enum pgcmk_errc pgcmk_vaultc_classify(long status, const char *body, size_t len, int *outage);

/* The raw operations of pg_tde's vault-v2 keyring (src/pg/tdeagent.c). mount_check: 1 when the
 * mount is kv v2, 0 when it is another engine (res says so), 2 or 3 when the server would not
 * say (pg_tde goes on), -1 with res. get_key: 1 with the key (16 or 32 bytes), 0 when there is
 * none (404), -1 with res. put_key: POST {"data":{"key":...}}: 0, or -1 with res. */
int pgcmk_agent_vault_mount_check(const struct pgcmk_vaultc_target *t,
                                  struct pgcmk_agent_result *res);
int pgcmk_agent_vault_get_key(const struct pgcmk_vaultc_target *t, const char *name,
                              unsigned char key[PGCMK_VAULTC_MAX_KEY], size_t *key_len,
                              struct pgcmk_agent_result *res);
int pgcmk_agent_vault_put_key(const struct pgcmk_vaultc_target *t, const char *name,
                              const unsigned char *key, size_t key_len,
                              struct pgcmk_agent_result *res);

/* The DEK of a self-managed database, wrapped under a principal key kept in a KV v2 secret.
 * New (pg_tde's provider add + pg_tde_create_key_using_global_key_provider): the mount check
 * (GET sys/mounts/{mount}: a 200 that is not kv v2 is refused, VaultMountNotKv2; another status
 * only warns), the list (200 or 404), then get the key: 404 -> a random 32-byte key POSTed as
 * {"data":{"key":...}}; an existing key is used. Then a random DEK wrapped (AES-256-GCM, aad =
 * db_id; the key, or SHA-256 of a 16-byte one) and kept in memory. *wrapped is malloc'd; alg is
 * "vault-A256GCM"; *version the secret's KV version (0 when the server did not say).
 * Check: get + unwrap; a 404 asks sys/mounts/{mount} whether the mount is still there and kv v2
 * (VaultMountNotFound / VaultMountNotKv2 instead of VaultKeyNotFound when it can tell). On
 * success the DEK is (again) held; a loss wipes it, an outage keeps it. */
int pgcmk_agent_vault_new_dek(const char *db_id, const struct pgcmk_vaultc_target *t,
                              const char *key_name, unsigned char **wrapped, size_t *wrapped_len,
                              char alg[24], long *version, struct pgcmk_agent_result *res);
int pgcmk_agent_vault_check(const char *db_id, const struct pgcmk_vaultc_target *t,
                            const char *key_name, const unsigned char *wrapped, size_t wrapped_len,
                            long *version, struct pgcmk_agent_result *res);

#endif
