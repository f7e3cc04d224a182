/* keysources.c - the key-source rows of the reconciler (include/pgcmk/reconcile.h). Today:
 * "vault-kv" (a self-managed database's principal key in a Vault KV v2 secret, checked by the
 * agent as pg_tde's vault-v2 client), "kmip" (a self-managed database's principal key on a KMIP
 * server, checked by the agent as a KMIP client), "azure-keyvault" (a Key Vault key reached through
 * the database's managed identity, checked by the encryption agent) and "service-managed" (the DEK
 * sealed under the emulator's master key) and "kes" (a self-managed database's DEK is a data key
 * of a MinIO KES server's key, checked by the agent as a KES client) and "keyring-file" (a
 * self-managed database's principal key in pg_tde's keyring file, read at each check). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/tde.h"

#include "pgcmk/err.h"
#include "pgcmk/kes.h"
#include "pgcmk/keyring.h"
#include "pgcmk/log.h"
#include "pgcmk/reconcile.h"
#include "providers/postgres.h"

json_t *
pgcmk_reconcile_rule(const char *rule, int ok, const char *detail)
{
    return json_pack("{s:s, s:b, s:s}", "rule", rule, "ok", ok, "detail", detail ? detail : "");
}

static int
code_is(const char *code, enum pgcmk_errc c)
{
    return code && strcmp(code, pgcmk_err_code(c)) == 0;
}

/* ---- service-managed ---------------------------------------------------------------------- */

static int
sm_uses(const struct pg_db *d)
{
    return d->key_uri == NULL && d->kind != PG_TDE;
}

static int
sm_check(const struct pg_db *d, int revalidate, struct pgcmk_agent_result *res)
{
    struct pgcmk_agent_key none = {NULL, NULL};

    (void)revalidate;
    if (pgcmk_agent_has_dek(d->id)) { /* nothing to revoke: the DEK stays */
        memset(res, 0, sizeof(*res));
        return 0;
    }
    return pgcmk_agent_check(d->id, &none, d->wrapped, d->wrapped_len, d->alg, res);
}

static void
sm_explain(struct pgcmk_db *db, const struct pg_db *d, json_t *rules)
{
    (void)db;
    json_array_append_new(
        rules, pgcmk_reconcile_rule("encryption", d->reason_code == NULL,
                                    d->reason_code ? d->reason
                                                   : "Service-managed key: nothing to revoke."));
}

static const struct pgcmk_keysource ks_service_managed = {
    "service-managed", sm_uses, sm_check, NULL, sm_explain,
};

/* ---- azure-keyvault ----------------------------------------------------------------------- */

static int
akv_uses(const struct pg_db *d)
{
    return d->key_uri != NULL && d->kind != PG_TDE;
}

static int
akv_check(const struct pg_db *d, int revalidate, struct pgcmk_agent_result *res)
{
    struct pgcmk_agent_key k = {d->key_uri, d->principal_id};

    (void)revalidate;
    if (!d->principal_id) {
        memset(res, 0, sizeof(*res));
        res->lost = 1;
        res->code = PGCMK_E_PG_IDENTITY_REQUIRED;
        snprintf(res->message, sizeof(res->message),
                 "The resource has no managed identity to access the key '%.300s' with.",
                 d->key_uri);
        return -1;
    }
    return pgcmk_agent_check(d->id, &k, d->wrapped, d->wrapped_len, d->alg, res);
}

static void
akv_select(struct pgcmk_db *db, enum pgcmk_stmt which, const char *a, const char *b, json_t *ids)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, which);
    struct pgcmk_err err;

    if (a)
        sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 1);
    if (b)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 2);
    if (pgcmk_db_each(db, st, pgcmk_db_collect_text, ids, "list databases of a key", &err) < 0)
        LOG_WARN("reconciler: listing the databases an event touches failed: %s", err.message);
}

static void
akv_touches(struct pgcmk_db *db, const struct pgcmk_event *ev, json_t *ids)
{
    switch (ev->kind) {
    case PGCMK_EV_KEY_CREATED: /* a new key affects nobody */
    case PGCMK_EV_CLOCK_CHANGED:
    case PGCMK_EV_FAULT_CHANGED: /* the reconciler's periodic check covers these */
        return;
    case PGCMK_EV_IDENTITY_DELETED:
        akv_select(db, PGCMK_STMT_PG_BY_PRINCIPAL, ev->object_id ? ev->object_id : "-",
                   ev->resource_id ? ev->resource_id : "-", ids);
        return;
    case PGCMK_EV_POLICY_CHANGED:
    case PGCMK_EV_VAULT_DELETED:
    case PGCMK_EV_VAULT_RECOVERED:
    case PGCMK_EV_VAULT_PURGED: /* every key of the vault */
        if (ev->vault)
            akv_select(db, PGCMK_STMT_PG_BY_VAULT, ev->vault, NULL, ids);
        return;
    default:
        if (ev->vault)
            akv_select(db, PGCMK_STMT_PG_BY_VAULT, ev->vault, ev->key, ids);
    }
}

/* A reason code -> the rule it breaks, for a key-source row's explain: exactly one rule fails,
 * so the rules agree with the state. Codes not in the table break `other`. */
struct code_rule {
    enum pgcmk_errc code;
    const char *rule;
};

static const char *
rule_of(const char *code, const struct code_rule *tab, size_t n, const char *other)
{
    if (!code)
        return NULL;
    if (code_is(code, PGCMK_E_PG_KEY_UNCHECKED))
        return "checked";
    for (size_t i = 0; i < n; i++)
        if (code_is(code, tab[i].code))
            return tab[i].rule;
    return other;
}

/* The rule a reason code of this kind breaks: exactly one, so the rules agree with the state. */
static const char *
akv_failing_rule(const struct pg_db *d)
{
    static const struct code_rule tab[] = {
        {PGCMK_E_PG_MISSING_PERMISSIONS, "permissions"},
        {PGCMK_E_PG_VAULT_RECOVERY, "vault"},
        {PGCMK_E_PG_VAULT_UNREACHABLE, "vault"},
        {PGCMK_E_PG_REVALIDATION_REQUIRED, "revalidation"},
    };
    const char *c = d->reason_code;

    if (!d->principal_id || code_is(c, PGCMK_E_PG_IDENTITY_REQUIRED) ||
        code_is(c, PGCMK_E_PG_IDENTITY_NOT_FOUND))
        return "identity";
    return rule_of(c, tab, PGCMK_ARRAY_LEN(tab), "key");
}

static void
akv_explain(struct pgcmk_db *db, const struct pg_db *d, json_t *rules)
{
    const char *bad = akv_failing_rule(d);
    const char *why = d->reason ? d->reason : "";

    static const struct {
        const char *rule, *ok_detail;
    } rows[] = {
        {"identity", "The resource has a managed identity that gets tokens."},
        {"permissions", "The identity has Get, Wrap Key and Unwrap Key on the key."},
        {"vault", "The vault answers and has soft delete, purge protection and 90 days."},
        {"key", "The last check got the key and unwrapped the DEK."},
    };

    (void)db;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int fails = bad && strcmp(bad, rows[i].rule) == 0;
        const char *detail = rows[i].ok_detail;

        if (fails)
            detail = strcmp(rows[i].rule, "identity") == 0 && !d->principal_id
                         ? "The resource has no managed identity: assign one and grant it Get, "
                           "Wrap Key, Unwrap Key."
                         : why;
        json_array_append_new(rules, pgcmk_reconcile_rule(rows[i].rule, !fails, detail));
    }
    if (d->kind == PG_SERVER)
        json_array_append_new(
            rules, pgcmk_reconcile_rule("revalidation", !bad || strcmp(bad, "revalidation") != 0,
                                        bad && strcmp(bad, "revalidation") == 0
                                            ? why
                                            : "No revalidation of the server key is due."));
    if (bad && strcmp(bad, "checked") == 0)
        json_array_append_new(rules, pgcmk_reconcile_rule("checked", 0, why));
}

static const struct pgcmk_keysource ks_azure_keyvault = {
    "azure-keyvault", akv_uses, akv_check, akv_touches, akv_explain,
};

/* ---- kmip --------------------------------------------------------------------------------- */

/* The State the last successful check saw, per database (for explain): id -> state. */
static pthread_mutex_t kmip_seen_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *kmip_seen;

static void
kmip_seen_set(const char *id, uint32_t state)
{
    pthread_mutex_lock(&kmip_seen_mu);
    if (!kmip_seen)
        kmip_seen = json_object();
    if (state)
        json_object_set_new(kmip_seen, id, json_integer(state));
    else
        json_object_del(kmip_seen, id);
    pthread_mutex_unlock(&kmip_seen_mu);
}

static uint32_t
kmip_seen_get(const char *id)
{
    uint32_t s;

    pthread_mutex_lock(&kmip_seen_mu);
    s = (uint32_t)json_integer_value(kmip_seen ? json_object_get(kmip_seen, id) : NULL);
    pthread_mutex_unlock(&kmip_seen_mu);
    return s;
}

static int
kmip_uses(const struct pg_db *d)
{
    return d->kind == PG_TDE && !pgcmk_tde_provider_is(d->provider, "vault-v2") &&
           !pgcmk_tde_provider_is(d->provider, "kes");
}

static int
kmip_check(const struct pg_db *d, int revalidate, struct pgcmk_agent_result *res)
{
    struct pgcmk_kmipc_target t;
    void *holder = NULL;
    char uid[PGCMK_KMIPC_UID_LEN];
    uint32_t state = 0;
    int rc;

    (void)revalidate;
    memset(res, 0, sizeof(*res));
    if (pgcmk_tde_kmip_target(d->provider, &t, &holder)) {
        res->lost = 1;
        res->code = PGCMK_E_KMIP_PROVIDER_INVALID;
        snprintf(res->message, sizeof(res->message),
                 "The key provider of '%.300s' is not a KMIP provider.", d->id);
        pgcmk_agent_forget(d->id);
        return -1;
    }
    rc = pgcmk_agent_kmip_check(d->id, &t, d->key_name ? d->key_name : "", d->key_version,
                                d->wrapped, d->wrapped_len, uid, &state, res);
    json_decref(holder);
    if (rc == 0 || state)
        kmip_seen_set(d->id, state);
    return rc;
}

static void
kmip_select(struct pgcmk_db *db, enum pgcmk_stmt which, const char *a, const char *b, json_t *ids)
{
    akv_select(db, which, a, b, ids);
}

/* KMIP events: an object change reaches the databases whose principal key it is (by Unique
 * Identifier or Name); a deleted client reaches every KMIP database (which certificate a
 * provider's files hold is the server's business, not the emulator's). */
static void
kmip_touches(struct pgcmk_db *db, const struct pgcmk_event *ev, json_t *ids)
{
    switch (ev->kind) {
    case PGCMK_EV_KMIP_OBJECT_CHANGED:
    case PGCMK_EV_KMIP_OBJECT_REVOKED:
    case PGCMK_EV_KMIP_OBJECT_DEACTIVATED:
    case PGCMK_EV_KMIP_OBJECT_DESTROYED:
        kmip_select(db, PGCMK_STMT_TDE_BY_KMIP_KEY, ev->version ? ev->version : "-",
                    ev->key ? ev->key : "-", ids);
        return;
    case PGCMK_EV_KMIP_CLIENT_DELETED:
        kmip_select(db, PGCMK_STMT_TDE_LIST, NULL, NULL, ids);
        return;
    default:
        return;
    }
}

/* The rule a reason code of this row breaks: exactly one. */
static const char *
kmip_failing_rule(const struct pg_db *d)
{
    static const struct code_rule tab[] = {
        {PGCMK_E_KMIP_SERVER_UNREACHABLE, "kmip-server"},
        {PGCMK_E_KMIP_CREDENTIALS_REFUSED, "client-certificate"},
        {PGCMK_E_KMIP_SERVER_NOT_TRUSTED, "client-certificate"},
        {PGCMK_E_KMIP_PROVIDER_INVALID, "client-certificate"},
        {PGCMK_E_KMIP_KEY_REVOKED, "key-state"},
        {PGCMK_E_KMIP_KEY_DESTROYED, "key-state"},
    };

    return rule_of(d->reason_code, tab, PGCMK_ARRAY_LEN(tab), "principal-key");
}

static void
kmip_explain(struct pgcmk_db *db, const struct pg_db *d, json_t *rules)
{
    const char *bad = kmip_failing_rule(d);
    const char *why = d->reason ? d->reason : "";
    struct pgcmk_kmipc_target t;
    void *holder = NULL;
    char server[300], cert[1100], key[400], state[300];
    uint32_t seen = kmip_seen_get(d->id);

    (void)db;
    if (pgcmk_tde_kmip_target(d->provider, &t, &holder) == 0) {
        snprintf(server, sizeof(server), "The KMIP server %.253s:%d answers.", t.host, t.port);
        snprintf(cert, sizeof(cert),
                 "The KMIP server %.253s:%d accepts the client certificate '%.400s' and its "
                 "certificate verifies against '%.400s'.",
                 t.host, t.port,
                 t.cert_path  ? t.cert_path
                 : t.key_path ? t.key_path
                              : "",
                 t.ca_path ? t.ca_path : "");
    } else {
        snprintf(server, sizeof(server), "The KMIP server answers.");
        snprintf(cert, sizeof(cert), "The KMIP server accepts the client certificate.");
    }
    json_decref(holder);
    snprintf(key, sizeof(key),
             "Locate finds one key named '%.100s' (Unique Identifier %.64s) and it unwraps the "
             "database's key.",
             d->key_name ? d->key_name : "", d->key_version ? d->key_version : "?");
    snprintf(state, sizeof(state), "The principal key '%.100s' (Unique Identifier %.64s) is %s%s.",
             d->key_name ? d->key_name : "", d->key_version ? d->key_version : "?",
             seen ? pgcmk_kmip_state_name(seen) : "Pre-Active or Active",
             seen ? " (at the last check)" : "");
    {
        const struct {
            const char *rule, *ok_detail;
        } rows[] = {
            {"kmip-server", server},
            {"client-certificate", cert},
            {"principal-key", key},
            {"key-state", state},
        };

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
            int fails = bad && strcmp(bad, rows[i].rule) == 0;

            json_array_append_new(
                rules, pgcmk_reconcile_rule(rows[i].rule, !fails, fails ? why : rows[i].ok_detail));
        }
    }
    if (bad && strcmp(bad, "checked") == 0)
        json_array_append_new(rules, pgcmk_reconcile_rule("checked", 0, why));
}

static const struct pgcmk_keysource ks_kmip = {
    "kmip", kmip_uses, kmip_check, kmip_touches, kmip_explain,
};

/* ---- keyring-file ------------------------------------------------------------------------- */

/* pg_tde's keyring file (a provider of type "file"): the key read from the file at each check
 * with the PostgreSQL user's rights (include/pgcmk/keyring.h). No event reaches it: a file
 * changes under nobody's API, so the periodic checks find it. */
static int
krf_uses(const struct pg_db *d)
{
    return d->kind == PG_TDE && pgcmk_tde_provider_is(d->provider, "file");
}

static int
krf_check(const struct pg_db *d, int revalidate, struct pgcmk_agent_result *res)
{
    json_t *o = d->provider ? json_loads(d->provider, 0, NULL) : NULL;
    const char *path = json_string_value(json_object_get(o, "path"));
    int rc;

    (void)revalidate;
    if (!path) {
        json_decref(o);
        pgcmk_agent_forget(d->id);
        return pgcmk_agent_fail(res, PGCMK_E_TDE_FILE_PROVIDER_INVALID, 1,
                                "The key provider of '%.300s' is not a keyring file provider.",
                                d->id);
    }
    rc = pgcmk_tde_file_check(d->id, path, d->key_name ? d->key_name : "", d->wrapped,
                              d->wrapped_len, res);
    json_decref(o);
    return rc;
}

static void
krf_explain(struct pgcmk_db *db, const struct pg_db *d, json_t *rules)
{
    static const struct code_rule tab[] = {
        {PGCMK_E_TDE_KEYRING_UNREADABLE, "keyring-file"},
        {PGCMK_E_TDE_FILE_PROVIDER_INVALID, "keyring-file"},
        {PGCMK_E_TDE_KEYRING_KEY_NOT_FOUND, "principal-key"},
        {PGCMK_E_TDE_KEYRING_KEY_CHANGED, "principal-key"},
    };
    const char *bad = rule_of(d->reason_code, tab, PGCMK_ARRAY_LEN(tab), "principal-key");
    const char *why = d->reason ? d->reason : "";
    const char *kn = d->key_name ? d->key_name : "";
    json_t *o = d->provider ? json_loads(d->provider, 0, NULL) : NULL;
    const char *path = json_string_value(json_object_get(o, "path"));
    char file[600], key[600];

    (void)db;
    snprintf(file, sizeof(file),
             "The PostgreSQL user can read the keyring file '%.400s' (pg_tde's format).",
             path ? path : "");
    snprintf(key, sizeof(key),
             "The keyring file has a key named '%.200s' and it unwraps the database's key.", kn);
    json_decref(o);
    {
        const struct {
            const char *rule, *ok_detail;
        } rows[] = {{"keyring-file", file}, {"principal-key", key}};

        for (size_t i = 0; i < PGCMK_ARRAY_LEN(rows); i++) {
            int fails = bad && strcmp(bad, rows[i].rule) == 0;

            json_array_append_new(
                rules, pgcmk_reconcile_rule(rows[i].rule, !fails, fails ? why : rows[i].ok_detail));
        }
    }
    if (bad && strcmp(bad, "checked") == 0)
        json_array_append_new(rules, pgcmk_reconcile_rule("checked", 0, why));
}

static const struct pgcmk_keysource ks_keyring_file = {
    "keyring-file", krf_uses, krf_check, NULL, krf_explain,
};

/* ---- vault-kv ----------------------------------------------------------------------------- */

static int
vkv_uses(const struct pg_db *d)
{
    return d->kind == PG_TDE && pgcmk_tde_provider_is(d->provider, "vault-v2");
}

static int
vkv_check(const struct pg_db *d, int revalidate, struct pgcmk_agent_result *res)
{
    struct pgcmk_vaultc_target t;
    void *holder = NULL;
    long version = 0;
    int rc;

    (void)revalidate;
    memset(res, 0, sizeof(*res));
    if (pgcmk_tde_vault_target(d->provider, &t, &holder)) {
        res->lost = 1;
        res->code = PGCMK_E_HV_PROVIDER_INVALID;
        snprintf(res->message, sizeof(res->message),
                 "The key provider of '%.300s' is not a vault-v2 provider.", d->id);
        pgcmk_agent_forget(d->id);
        return -1;
    }
    rc = pgcmk_agent_vault_check(d->id, &t, d->key_name ? d->key_name : "", d->wrapped,
                                 d->wrapped_len, &version, res);
    json_decref(holder);
    return rc;
}

/* Vault events (a secret deleted or changed, a mount disabled, a token revoked, a policy
 * changed, seal and unseal) reach every vault-v2 database: which token a tokenPath holds and
 * which policies it has are the server's business, not the emulator's. */
static int
vkv_event(enum pgcmk_event_kind kind)
{
    switch (kind) {
    case PGCMK_EV_HV_SECRET_CHANGED:
    case PGCMK_EV_HV_SECRET_DELETED:
    case PGCMK_EV_HV_MOUNT_DISABLED:
    case PGCMK_EV_HV_TOKEN_REVOKED:
    case PGCMK_EV_HV_POLICY_CHANGED:
    case PGCMK_EV_HV_AUTH_CHANGED:
    case PGCMK_EV_HV_SEALED:
    case PGCMK_EV_HV_UNSEALED:
        return 1;
    default:
        return 0;
    }
}

static void
vkv_touches(struct pgcmk_db *db, const struct pgcmk_event *ev, json_t *ids)
{
    if (vkv_event(ev->kind))
        akv_select(db, PGCMK_STMT_TDE_BY_VAULT, NULL, NULL, ids);
}

/* The rule a reason code of this row breaks: exactly one. */
static const char *
vkv_failing_rule(const struct pg_db *d)
{
    static const struct code_rule tab[] = {
        {PGCMK_E_HV_SERVER_UNREACHABLE, "vault-server"},
        {PGCMK_E_HV_SERVER_NOT_TRUSTED, "vault-server"},
        {PGCMK_E_HV_PROVIDER_INVALID, "vault-server"},
        {PGCMK_E_HV_SEALED, "sealed"},
        {PGCMK_E_HV_MOUNT_NOT_KV2, "mount"},
        {PGCMK_E_HV_MOUNT_NOT_FOUND, "mount"},
        {PGCMK_E_HV_PERMISSION_DENIED, "token"},
        {PGCMK_E_HV_TOKEN_FILE_UNREADABLE, "token"},
        {PGCMK_E_HV_REQUEST_REFUSED, "token"},
    };

    return rule_of(d->reason_code, tab, PGCMK_ARRAY_LEN(tab), "secret");
}

static void
vkv_explain(struct pgcmk_db *db, const struct pg_db *d, json_t *rules)
{
    const char *bad = vkv_failing_rule(d);
    const char *why = d->reason ? d->reason : "";
    const char *kn = d->key_name ? d->key_name : "";
    struct pgcmk_vaultc_target t;
    void *holder = NULL;
    char server[1300], sealed[300], mount[400], token[700], secret[500];

    (void)db;
    if (pgcmk_tde_vault_target(d->provider, &t, &holder) == 0) {
        snprintf(server, sizeof(server),
                 "The Vault server %.300s answers and its certificate verifies against "
                 "'%.400s'.",
                 t.url, t.ca_path ? t.ca_path : "the system's trust store");
        snprintf(sealed, sizeof(sealed), "The Vault server %.250s is unsealed.", t.url);
        snprintf(mount, sizeof(mount),
                 "'%.200s'%s%.100s%s is a KV version 2 mount (type \"kv\", options.version "
                 "\"2\").",
                 t.mount, t.ns ? " (namespace '" : "", t.ns ? t.ns : "", t.ns ? "')" : "");
        snprintf(token, sizeof(token),
                 "The token in '%.400s' is valid and its policies grant read on "
                 "%.150s/data/%.100s.",
                 t.token_path, t.mount, kn);
        snprintf(secret, sizeof(secret),
                 "The secret '%.150s/data/%.150s' exists (version %.20s at the last check) and "
                 "its key is 16 or 32 bytes that unwrap the database's key.",
                 t.mount, kn, d->key_version ? d->key_version : "?");
    } else {
        snprintf(server, sizeof(server), "The Vault server answers.");
        snprintf(sealed, sizeof(sealed), "The Vault server is unsealed.");
        snprintf(mount, sizeof(mount), "The mount is a KV version 2 mount.");
        snprintf(token, sizeof(token), "The token is valid and grants read on the secret.");
        snprintf(secret, sizeof(secret), "The secret '%.150s' exists.", kn);
    }
    json_decref(holder);
    {
        const struct {
            const char *rule, *ok_detail;
        } rows[] = {
            {"vault-server", server}, {"sealed", sealed}, {"mount", mount},
            {"token", token},         {"secret", secret},
        };

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
            int fails = bad && strcmp(bad, rows[i].rule) == 0;

            json_array_append_new(
                rules, pgcmk_reconcile_rule(rows[i].rule, !fails, fails ? why : rows[i].ok_detail));
        }
    }
    if (bad && strcmp(bad, "checked") == 0)
        json_array_append_new(rules, pgcmk_reconcile_rule("checked", 0, why));
}

static const struct pgcmk_keysource ks_vault_kv = {
    "vault-kv", vkv_uses, vkv_check, vkv_touches, vkv_explain,
};

/* ---- kes ---------------------------------------------------------------------------------- */

static int
kes_uses(const struct pg_db *d)
{
    return d->kind == PG_TDE && pgcmk_tde_provider_is(d->provider, "kes");
}

static int
kes_check(const struct pg_db *d, int revalidate, struct pgcmk_agent_result *res)
{
    struct pgcmk_kesc_target t;
    void *holder = NULL;
    int rc;

    (void)revalidate;
    memset(res, 0, sizeof(*res));
    if (pgcmk_tde_kes_target(d->provider, d->id, &t, &holder) || (t.api_key && !*t.api_key)) {
        res->lost = 1;
        res->code = PGCMK_E_KES_PROVIDER_INVALID;
        snprintf(res->message, sizeof(res->message),
                 "The key provider of '%.300s' is not a KES provider, or its API key is not in "
                 "the store.",
                 d->id);
        pgcmk_tde_kes_release(holder);
        pgcmk_agent_forget(d->id);
        return -1;
    }
    rc = pgcmk_agent_kes_check(d->id, &t, d->key_name ? d->key_name : "", d->wrapped,
                               d->wrapped_len, res);
    pgcmk_tde_kes_release(holder);
    return rc;
}

/* KES events (a key deleted or changed, a server's policies or config changed, its keystore
 * reachable or not) and Vault events (KES servers keep their keys in a Vault) reach every kes
 * database: which server a URL names and which Vault that server uses are the servers'
 * business, not the emulator's. */
static void
kes_touches(struct pgcmk_db *db, const struct pgcmk_event *ev, json_t *ids)
{
    switch (ev->kind) {
    case PGCMK_EV_KES_KEY_CHANGED:
    case PGCMK_EV_KES_KEY_DELETED:
    case PGCMK_EV_KES_SERVER_CHANGED:
    case PGCMK_EV_KES_KEYSTORE_CHANGED:
        break;
    default:
        if (!vkv_event(ev->kind))
            return;
    }
    akv_select(db, PGCMK_STMT_TDE_BY_KES, NULL, NULL, ids);
}

/* The rule a reason code of this row breaks: exactly one. A 403 is the identity's when the
 * server says it does not know it, else the policy's. */
static const char *
kes_failing_rule(const struct pg_db *d, int identity_unknown)
{
    static const struct code_rule tab[] = {
        {PGCMK_E_KES_SERVER_UNREACHABLE, "kes-server"},
        {PGCMK_E_KES_SERVER_NOT_TRUSTED, "kes-server"},
        {PGCMK_E_KES_PROVIDER_INVALID, "identity"},
        {PGCMK_E_KES_KEYSTORE, "vault"},
        {PGCMK_E_KES_KEY_MISMATCH, "ciphertext"},
    };

    if (code_is(d->reason_code, PGCMK_E_KES_PERMISSION_DENIED))
        return identity_unknown ? "identity" : "policy";
    return rule_of(d->reason_code, tab, PGCMK_ARRAY_LEN(tab), "key");
}

/* What explain can say about each link; the server's own view (kes_diagnose) fills it when the
 * URL names one of pgcmk's KES servers. */
struct kes_links {
    char server[1300], identity[400], policy[400], key[400], vault[400], cache[400], ct[300];
    int identity_unknown;
    int diagnosed; /* one of pgcmk's KES servers said it */
};

static void
kes_links_default(const struct pg_db *d, const struct pgcmk_kesc_target *t, const char *id,
                  struct kes_links *l)
{
    const char *kn = d->key_name ? d->key_name : "";

    snprintf(l->server, sizeof(l->server),
             "The KES server %.300s (another KES server, not one of pgcmk's) answers and its "
             "certificate verifies against '%.400s'.",
             t->url,
             t->insecure  ? "nothing (insecure)"
             : t->ca_path ? t->ca_path
                          : "the system's trust store");
    snprintf(l->identity, sizeof(l->identity), "The server knows the identity %.64s.", id);
    snprintf(l->policy, sizeof(l->policy),
             "The identity's policy allows /v1/key/generate/%.100s and /v1/key/decrypt/%.100s.", kn,
             kn);
    snprintf(l->key, sizeof(l->key), "The KES key '%.100s' exists.", kn);
    snprintf(l->vault, sizeof(l->vault),
             "The server reaches its keystore (or another KES server: its keystore is its own "
             "business).");
    snprintf(l->cache, sizeof(l->cache),
             "The server's cache covers keystore outages until its offline expiry.");
    snprintf(l->ct, sizeof(l->ct),
             "The stored ciphertext decrypts (context = the database id) to the database's "
             "32-byte key.");
}

/* The port of an https://127.0.0.1:PORT or https://localhost:PORT URL, else 0. */
static int
kes_local_port(const char *url)
{
    static const char *const hosts[] = {"https://127.0.0.1:", "https://localhost:"};

    for (size_t i = 0; url && i < PGCMK_ARRAY_LEN(hosts); i++) {
        size_t n = strlen(hosts[i]);
        char *end = NULL;
        long port;

        if (strncmp(url, hosts[i], n) != 0)
            continue;
        port = strtol(url + n, &end, 10);
        if (port > 0 && port < 65536 && (*end == '\0' || *end == '/'))
            return (int)port;
    }
    return 0;
}

/* The links as pgcmk's KES server on the URL's port sees them (pgcmk_kes_diagnose), when it is
 * one: 1, else 0 (another KES server: the defaults stand). */
static int
kes_links_diagnose(const struct pg_db *d, const struct pgcmk_kesc_target *t, const char *id,
                   struct kes_links *l)
{
    const char *kn = d->key_name ? d->key_name : "";
    json_t *g = pgcmk_kes_diagnose(kes_local_port(t->url), id, kn, "decrypt");
    json_t *ident, *key, *ks, *cache, *exists;
    const char *name, *policy, *why, *until;

    if (!g)
        return 0;
    name = json_string_value(json_object_get(g, "server"));
    name = name ? name : "?";
    ident = json_object_get(g, "identity");
    key = json_object_get(g, "key");
    ks = json_object_get(g, "keystore");
    cache = json_object_get(g, "cache");
    policy = json_string_value(json_object_get(ident, "policy"));
    exists = json_object_get(key, "exists");
    why = json_string_value(json_object_get(ks, "why"));
    until = json_string_value(json_object_get(cache, "expiresAt"));
    snprintf(l->server, sizeof(l->server), "pgcmk's KES server '%.100s' listens on %.300s.", name,
             t->url);
    l->identity_unknown = !json_is_true(json_object_get(ident, "known"));
    if (l->identity_unknown)
        snprintf(l->identity, sizeof(l->identity),
                 "The KES server '%.100s' does not know the identity %.64s: it is not the admin "
                 "and no policy lists it.",
                 name, id);
    else
        snprintf(l->identity, sizeof(l->identity),
                 "The KES server '%.100s' knows the identity %.64s (%s%.100s%s).", name, id,
                 json_is_true(json_object_get(ident, "admin")) ? "the admin" : "policy '",
                 json_is_true(json_object_get(ident, "admin")) ? ""
                 : policy                                      ? policy
                                                               : "?",
                 json_is_true(json_object_get(ident, "admin")) ? "" : "'");
    snprintf(l->policy, sizeof(l->policy), "%s /v1/key/decrypt/%.100s for %.64s.",
             json_is_true(json_object_get(g, "allowed")) ? "The server allows"
                                                         : "The server's policy does not allow",
             kn, id);
    snprintf(l->key, sizeof(l->key), "The KES key '%.100s' %s on '%.100s'.", kn,
             json_is_true(exists) ? "exists"
             : json_is_false(exists)
                 ? "does not exist"
                 : "cannot be told (the keystore is down and the key not cached)",
             name);
    if (json_is_true(json_object_get(ks, "reachable")))
        snprintf(l->vault, sizeof(l->vault), "The KES server '%.100s' reaches its Vault keystore.",
                 name);
    else
        snprintf(l->vault, sizeof(l->vault),
                 "The KES server '%.100s' cannot reach its Vault keystore: %.200s.", name,
                 why ? why : "unreachable");
    if (json_is_true(json_object_get(cache, "cached")))
        snprintf(l->cache, sizeof(l->cache), "The server caches the key '%.100s'%s%.40s.", kn,
                 until ? " until " : "", until ? until : "");
    else
        snprintf(l->cache, sizeof(l->cache), "The server does not cache the key '%.100s' now.", kn);
    json_decref(g);
    return 1;
}

static void
kes_explain(struct pgcmk_db *db, const struct pg_db *d, json_t *rules)
{
    struct pgcmk_kesc_target t;
    void *holder = NULL;
    struct kes_links l;
    const char *bad, *why = d->reason ? d->reason : "";
    json_t *kp = d->provider ? json_loads(d->provider, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(kp, "identity"));

    (void)db;
    memset(&l, 0, sizeof(l));
    if (pgcmk_tde_kes_target(d->provider, NULL, &t, &holder) == 0) {
        kes_links_default(d, &t, id ? id : "?", &l);
        l.diagnosed = kes_links_diagnose(d, &t, id ? id : "?", &l);
    }
    pgcmk_tde_kes_release(holder);
    json_decref(kp);
    bad = kes_failing_rule(d, l.identity_unknown);
    {
        const struct {
            const char *rule, *ok_detail;
        } rows[] = {
            {"kes-server", l.server}, {"identity", l.identity}, {"policy", l.policy},
            {"key", l.key},           {"vault", l.vault},       {"cache", l.cache},
            {"ciphertext", l.ct},
        };

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
            int fails = bad && strcmp(bad, rows[i].rule) == 0;

            char detail[1900];

            /* the failing link: the check's reason, then what the server says about it */
            snprintf(detail, sizeof(detail), "%s%s%s", fails ? why : rows[i].ok_detail,
                     fails && l.diagnosed ? " " : "",
                     fails && l.diagnosed ? rows[i].ok_detail : "");
            json_array_append_new(rules, pgcmk_reconcile_rule(rows[i].rule, !fails, detail));
        }
    }
    if (bad && strcmp(bad, "checked") == 0)
        json_array_append_new(rules, pgcmk_reconcile_rule("checked", 0, why));
}

static const struct pgcmk_keysource ks_kes = {
    "kes", kes_uses, kes_check, kes_touches, kes_explain,
};

/* ---- the table ---------------------------------------------------------------------------- */

const struct pgcmk_keysource *const pgcmk_keysources[] = {
    &ks_kes, &ks_vault_kv, &ks_keyring_file, &ks_kmip, &ks_azure_keyvault, &ks_service_managed,
    NULL,
};

const struct pgcmk_keysource *
pgcmk_keysource_of(const struct pg_db *d)
{
    for (const struct pgcmk_keysource *const *ks = pgcmk_keysources; *ks; ks++)
        if ((*ks)->uses(d))
            return *ks;
    return NULL;
}
