/* postgres.h - what the two PostgreSQL providers (clusters, single servers) share: the databases
 * table (one row per cluster or server: its key, identity, wrapped DEK and access), the CMK
 * rules, the state record, and the entry points of the reconciler (src/reconcile/,
 * include/pgcmk/reconcile.h) and of the modeled data plane (src/pgdata/) they call. */
#ifndef PGCMK_PROVIDERS_POSTGRES_H
#define PGCMK_PROVIDERS_POSTGRES_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "pgcmk/agent.h"
#include "pgcmk/arm.h"
#include "pgcmk/cfg.h"
#include "pgcmk/err.h"
#include "pgcmk/store.h"

#define PG_NS "Microsoft.DBforPostgreSQL"

/* pg_databases.access */
#define PG_ACCESS_PENDING "pending" /* being provisioned */
#define PG_ACCESS_OK      "ok"
#define PG_ACCESS_LOST    "lost"

/* PG_TDE: a self-managed (pg_tde-style) database of src/tde/, its principal key on a key
 * provider (a KMIP server) reached by the agent; its row has kind "tde", key_uri
 * "kmip://host:port/name", key_name the principal key's name, key_version its Unique Identifier
 * and provider the key provider's options (JSON, as pg_tde keeps them). */
enum pg_kind { PG_CLUSTER, PG_SERVER, PG_TDE };

#define PG_KINDS 3

/* One row of pg_databases. Strings are owned (free with pg_db_release). */
struct pg_db {
    char *id;
    enum pg_kind kind;
    char *sub, *rg;
    char *source_id, *relation; /* "restore", "replica", "standby" or NULL */
    char *key_uri;              /* NULL: service-managed */
    char *vault, *key_name, *key_version;
    char *identity_id;  /* the user-assigned identity's id, or the resource's own id */
    char *principal_id; /* its object id, NULL when the resource has no identity yet */
    unsigned char *wrapped;
    size_t wrapped_len;
    char *alg;
    char *access, *reason_code, *reason;
    int64_t last_check, lost_at, created_at;
    char *provider; /* PG_TDE: the key provider's options (JSON text) */
};

int pg_db_load(struct pgcmk_db *db, const char *id, struct pg_db *out, struct pgcmk_err *err);
int pg_db_save(struct pgcmk_db *db, const struct pg_db *d, struct pgcmk_err *err) PGCMK_WUR;
int pg_db_delete(struct pgcmk_db *db, const char *id, struct pgcmk_err *err) PGCMK_WUR;
void pg_db_release(struct pg_db *d);
/* Replaces a string field (NULL allowed). */
void pg_set(char **field, const char *value);

/* Sets the key fields of d from a key URI (vault, name, version); -1 with
 * AzureKeyVaultKeyUriInvalid when the URI is not a versioned key id. */
int pg_set_key(struct pg_db *d, const char *key_uri, struct pgcmk_err *err);

/* The vault's recovery settings (soft delete, purge protection, 90 days): 0 or -1 with err. */
int pg_check_vault(struct pgcmk_db *db, const char *vault, struct pgcmk_err *err);

/* Makes the DEK of a new database: a new one wrapped by its key (or the master key), or, for a
 * replica or standby, the source's wrapped DEK checked with this database's own identity. Then a
 * full key check (get, wrapKey, unwrapKey, attributes). On failure err says which rule broke. */
int pg_provision_dek(struct pg_db *d, const struct pg_db *source, struct pgcmk_err *err);

/* The state machine's result for the resource body: what a provider writes into its ARM body
 * (clusters: properties.state; servers: properties.userVisibleState). */
typedef int (*pg_render_fn)(struct pgcmk_db *db, const char *id, const char *state,
                            struct pgcmk_err *err);
void pg_set_renderer(enum pg_kind kind, pg_render_fn fn);

/* Records a state change: renders it, Resource Health, Activity Log. Inside a transaction. */
int pg_record_state(struct pgcmk_db *db, const struct pg_db *d, const char *state, const char *what,
                    struct pgcmk_err *err) PGCMK_WUR;

/* The reconciler (src/reconcile/reconcile.c). Queues a key check of one database (deduplicated;
 * runs on a worker). */
void pg_schedule_check(const char *id);
/* Runs a key check now, on this thread (revalidation); 0 when access is (back) ok. */
int pg_check_now(const char *id, int revalidate, struct pgcmk_err *err);

/* The data plane (src/pgdata/pgdata.c). Copies the source's rows visible at `at` into `d`,
 * re-encrypted under d's DEK. */
int pg_rows_restore(const char *source_id, const char *target_id, int64_t at,
                    struct pgcmk_err *err) PGCMK_WUR;
/* Removes everything a deleted database leaves: rows, row, DEK in memory. */
void pg_forget(struct pgcmk_db *db, const char *id);

/* A copy of `in` with its keys spelled as in `names` when they match case-insensitively. */
json_t *pg_canonical(const json_t *in, const char *const *names);
/* Cluster and server names: 3..max lowercase letters, digits and hyphens, no hyphen at the ends. */
int pg_check_name(const char *what, const char *name, size_t max, struct pgcmk_err *err);

/* The resource body's field, case-insensitively ("dataencryption" == "dataEncryption"). */
json_t *pg_get_ci(const json_t *obj, const char *key);

/* ---- real PostgreSQL (--pg-mode real, include/pgcmk/pg.h): the providers' hooks ----------- */

/* On a create's write (HTTP thread): keeps the admin password in memory only until the LRO
 * worker made the instance (pg_real_create takes and wipes it). No-op in modeled mode. */
void pg_real_keep_password(const char *id, const char *password);
/* On the worker, once the DEK is provisioned: the instance of d (a cluster coordinator or a
 * single server), under the FQDN its body reports (fullyQualifiedDomainName, the coordinator's
 * serverNames entry), with admin login (NULL for copies: their data
 * carries the roles) and the password kept by pg_real_keep_password; point_in_time for
 * restores. 0 in modeled mode; -1 with err when the instance could not be made. */
int pg_real_create(const struct pg_db *d, const json_t *body, const char *login,
                   int64_t point_in_time, struct pgcmk_err *err) PGCMK_WUR;
/* After a delete (or a failed create removed): the instance and the kept password go. */
void pg_real_drop(const char *id);
/* The LRO job of an action on a database in real mode: "restart" -> pgcmk_pg_restart,
 * "promote" -> pgcmk_pg_promote, "stop"/"start" -> pgcmk_pg_hold; other actions and modeled mode
 * succeed at once. arg is a pg_real_action_new() value (freed by the job). */
void *pg_real_action_new(const char *id, const char *action);
void pg_real_action_job(void *arg, struct pgcmk_lro_result *out);
/* Frees a pg_real_action_new() value whose job was not started (NULL allowed). */
void pg_real_action_free(void *arg);
/* The version of the PGCMK_EV_PG_ACCESS_CHANGED event a single server's replica stop publishes
 * (resource_id the replica, object_id its former master): once the write committed, its own data
 * (modeled: the master's rows copied before the answer; real: its standby promoted on a
 * worker). */
#define PG_EV_REPLICATION_STOPPED "ReplicationStopped"

/* Init, before the server starts: the routes (explain, lineage, settle, data plane). */
void pg_core_register(void);
/* Configuration, once the agent can reach the server: starts the reconciler and waits (up to
 * 30 s) until every database's key was checked after the start. */
void pg_core_init(const struct pgcmk_cfg *cfg);
void pg_core_register(void);
void pgcmk_pg_cluster_register(void);
void pgcmk_pg_server_register(void);

#endif
