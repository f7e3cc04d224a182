/* tde.h - self-managed (pg_tde-style) databases (src/tde/): a database whose principal key lives
 * on a key provider the agent reaches over its wire protocol (today KMIP: pgcmk's own KMIP
 * server or any other, e.g. PyKMIP). A database is a row of pg_databases with kind "tde" (struct
 * pg_db, PG_TDE), so the reconciler, explain, the periodic check and the modeled data plane
 * (/emulator/data/emulator/tde/databases/{name}/rows) work on it as on a CMK cluster.
 *
 * Routes (JSON, Azure error envelope):
 *   PUT    /emulator/tde/databases/{name}  {"keyProvider":{"type":"kmip","host","port",
 *          "certPath","keyPath","caPath"[,"timeoutMs","retries"]},"principalKeyName"}
 *          -> 201 (new) / 200 (unchanged); timeoutMs (1-60000, default 5000) and retries (0-5,
 *          default 2, on outages only) are pgcmk's additions to pg_tde's options
 *          or {"keyProvider":{"type":"vault-v2","url":"https://...","mountPath","tokenPath",
 *          "caPath"(null: system store),"namespace"(null: none)[,"timeoutMs","retries"]},
 *          "principalKeyName"}: pg_tde's vault-v2 provider; the key is the KV v2 secret
 *          {mountPath}/data/{principalKeyName} (made, 32 random bytes, when it does not exist)
 *          or {"keyProvider":{"type":"kes","url":"https://...","apiKey":"kes:v1:..." | "certPath",
 *          "keyPath","caPath"(null: system store),"insecure","createKey"[,"timeoutMs","retries"]},
 *          "principalKeyName"}: the DEK is a KES data key of that key (generate; decrypt at each
 *          check, context = the database id); the API key is kept sealed and shown as
 *          "<redacted>"
 *   GET    /emulator/tde/databases[/{name}]
 *   DELETE /emulator/tde/databases/{name}
 * A database is {"id":"/emulator/tde/databases/{name}","name","keyProvider","principalKey":
 * {"name","uniqueIdentifier" (KMIP; for Vault the secret's KV
 * version)},"state":"Ready"|"Inaccessible","reasonCode","reason","lastCheck"}. */
#ifndef PGCMK_TDE_H
#define PGCMK_TDE_H

#include "pgcmk/kesc.h"
#include "pgcmk/kmipc.h"
#include "pgcmk/vaultc.h"

#define PGCMK_TDE_PREFIX "/emulator/tde/databases/"

struct pg_db;

/* Registers the routes (before the server starts). */
void pgcmk_tde_register(void);

/* The KMIP target of a database's provider options (JSON text): 0, or -1 when the options are
 * not a KMIP provider. Strings point into *holder (json_decref it after use). */
int pgcmk_tde_kmip_target(const char *provider_json, struct pgcmk_kmipc_target *t, void **holder);

/* The Vault target of a database's provider options: 0, or -1 when not a vault-v2 provider. */
int pgcmk_tde_vault_target(const char *provider_json, struct pgcmk_vaultc_target *t, void **holder);

/* The KES target of a database's provider options: 0, or -1 when not a kes provider. With an
 * API key and db_id, the key is unsealed from the store (t->api_key "" when it is not there).
 * Release with pgcmk_tde_kes_release (wipes the API key). */
int pgcmk_tde_kes_target(const char *provider_json, const char *db_id, struct pgcmk_kesc_target *t,
                         void **holder);
void pgcmk_tde_kes_release(void *holder);

/* issue 16: binds db_id (a self-managed instance's server key: "/emulator/postgres/instances/
 * {name}"; a database's principal key: ".../databases/{oid}") to the principal key key_name of
 * the provider (keyProvider JSON as PUT /emulator/tde/databases takes it, type "kmip",
 * "vault-v2" or "file"), as that PUT does without the route: the key located (made with key_len
 * random bytes when missing and create_missing), a DEK wrapped under it, the pg_databases row
 * (kind tde) written, so the reconciler's key-source rows check it from then on. Rebinding an
 * id replaces its key. 0, or -1 with err (err->message in pg_tde's words where pg_tde has one). */
int pgcmk_tde_bind(const char *db_id, const char *provider_json, const char *key_name, int key_len,
                   int create_missing, struct pgcmk_err *err);
/* Removes db_id's binding (its row, its DEK); 0 when it had none. */
int pgcmk_tde_unbind(const char *db_id, struct pgcmk_err *err);

/* 1 when the stored (canonical) provider options are of that type ("kmip", "vault-v2"). */
int pgcmk_tde_provider_is(const char *provider_json, const char *type);

#endif
