/* postgres.c - the core the PostgreSQL providers share: the databases table, the CMK rules, the
 * DEK provisioning and the state record (rendered body, Resource Health, Activity Log). The
 * reconciler is src/reconcile/, the modeled data plane src/pgdata/. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/keyuri.h"
#include "pgcmk/keyvault.h"
#include "pgcmk/log.h"
#include "pgcmk/monitor.h"
#include "pgcmk/pg.h"
#include "pgcmk/pgdata.h"
#include "pgcmk/reconcile.h"
#include "pgcmk/tde.h"
#include "pgcmk/vault.h"
#include "pgcmk/work.h"
#include "providers/postgres.h"

static pg_render_fn pg_renderers[PG_KINDS];

/* ---- the databases table ------------------------------------------------------------------ */

void
pg_set(char **field, const char *value)
{
    free(*field);
    *field = value ? pgcmk_xstrdup(value) : NULL;
}

static char *
col_str(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL
               ? NULL
               : pgcmk_xstrdup((const char *)sqlite3_column_text(st, i));
}

void
pg_db_release(struct pg_db *d)
{
    free(d->id);
    free(d->sub);
    free(d->rg);
    free(d->source_id);
    free(d->relation);
    free(d->key_uri);
    free(d->vault);
    free(d->key_name);
    free(d->key_version);
    free(d->identity_id);
    free(d->principal_id);
    free(d->wrapped);
    free(d->alg);
    free(d->access);
    free(d->reason_code);
    free(d->reason);
    free(d->provider);
    memset(d, 0, sizeof(*d));
}

int
pg_db_load(struct pgcmk_db *db, const char *id, struct pg_db *out, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PG_GET);
    int rc;

    memset(out, 0, sizeof(*out));
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *blob = sqlite3_column_blob(st, 12);
        size_t n = (size_t)sqlite3_column_bytes(st, 12);

        out->id = col_str(st, 0);
        const char *kind = (const char *)sqlite3_column_text(st, 1);

        out->kind = strcmp(kind, "server") == 0 ? PG_SERVER
                    : strcmp(kind, "tde") == 0  ? PG_TDE
                                                : PG_CLUSTER;
        out->sub = col_str(st, 2);
        out->rg = col_str(st, 3);
        out->source_id = col_str(st, 4);
        out->relation = col_str(st, 5);
        out->key_uri = col_str(st, 6);
        out->vault = col_str(st, 7);
        out->key_name = col_str(st, 8);
        out->key_version = col_str(st, 9);
        out->identity_id = col_str(st, 10);
        out->principal_id = col_str(st, 11);
        if (blob && n) {
            out->wrapped = pgcmk_xmalloc(n);
            memcpy(out->wrapped, blob, n);
            out->wrapped_len = n;
        }
        out->alg = col_str(st, 13);
        out->access = col_str(st, 14);
        out->reason_code = col_str(st, 15);
        out->reason = col_str(st, 16);
        out->last_check = sqlite3_column_int64(st, 17);
        out->lost_at = sqlite3_column_int64(st, 18);
        out->created_at = sqlite3_column_int64(st, 19);
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = pgcmk_db_fail(db, rc, "read database", err);
    }
    pgcmk_db_done(st);
    if (rc == 1 && out->kind == PG_TDE) {
        int r;

        st = pgcmk_db_stmt(db, PGCMK_STMT_TDE_GET_PROVIDER);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        r = pgcmk_db_step(db, st, "read database provider", err);
        if (r > 0)
            out->provider = col_str(st, 0);
        pgcmk_db_done(st);
        if (r < 0) {
            pg_db_release(out);
            rc = -1;
        }
    }
    return rc;
}

/* 1 when d stays Inaccessible for a new reason (a single server whose key came back awaits its
 * revalidation): the instance's refusal must name it. Real mode only. */
static int
lost_reason_changed(struct pgcmk_db *db, const struct pg_db *d)
{
    sqlite3_stmt *st;
    struct pgcmk_err err;
    int changed = 0;

    if (!pgcmk_pg_real() || !d->access || strcmp(d->access, PG_ACCESS_LOST) != 0)
        return 0;
    st = pgcmk_db_stmt(db, PGCMK_STMT_PG_GET);
    sqlite3_bind_text(st, 1, d->id, -1, SQLITE_TRANSIENT);
    if (pgcmk_db_step(db, st, "read the database's access", &err) == 1) {
        const char *access = (const char *)sqlite3_column_text(st, 14);
        const char *code = (const char *)sqlite3_column_text(st, 15);

        changed = access && strcmp(access, PG_ACCESS_LOST) == 0 &&
                  strcmp(code ? code : "", d->reason_code ? d->reason_code : "") != 0;
    }
    pgcmk_db_done(st);
    return changed;
}

int
pg_db_save(struct pgcmk_db *db, const struct pg_db *d, struct pgcmk_err *err)
{
    int new_reason = lost_reason_changed(db, d);
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PG_PUT);
    int rc;

    sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2,
                      d->kind == PG_SERVER ? "server"
                      : d->kind == PG_TDE  ? "tde"
                                           : "cluster",
                      -1, SQLITE_STATIC);
    pgcmk_db_bind_opt(st, 3, d->sub);
    pgcmk_db_bind_opt(st, 4, d->rg);
    pgcmk_db_bind_opt(st, 5, d->source_id);
    pgcmk_db_bind_opt(st, 6, d->relation);
    pgcmk_db_bind_opt(st, 7, d->key_uri);
    pgcmk_db_bind_opt(st, 8, d->vault);
    pgcmk_db_bind_opt(st, 9, d->key_name);
    pgcmk_db_bind_opt(st, 10, d->key_version);
    pgcmk_db_bind_opt(st, 11, d->identity_id);
    pgcmk_db_bind_opt(st, 12, d->principal_id);
    if (d->wrapped)
        sqlite3_bind_blob(st, 13, d->wrapped, (int)d->wrapped_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 13);
    pgcmk_db_bind_opt(st, 14, d->alg);
    pgcmk_db_bind_opt(st, 15, d->access ? d->access : PG_ACCESS_PENDING);
    pgcmk_db_bind_opt(st, 16, d->reason_code);
    pgcmk_db_bind_opt(st, 17, d->reason);
    sqlite3_bind_int64(st, 18, d->last_check);
    sqlite3_bind_int64(st, 19, d->lost_at);
    sqlite3_bind_int64(st, 20, d->created_at ? d->created_at : pgcmk_clock_now());
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    if (rc != SQLITE_DONE)
        return pgcmk_db_fail(db, rc, "write database", err);
    if (new_reason) { /* access.c rewrites the refusal once this commits */
        struct pgcmk_event ev = {.kind = PGCMK_EV_PG_ACCESS_CHANGED};

        ev.resource_id = d->id;
        ev.version = "Inaccessible";
        ev.key = d->reason_code;
        pgcmk_events_publish(&ev);
    }
    if (!d->provider)
        return 0;
    st = pgcmk_db_stmt(db, PGCMK_STMT_TDE_SET_PROVIDER);
    sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d->provider, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "write database provider", err);
}

int
pg_db_delete(struct pgcmk_db *db, const char *id, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PG_DELETE);
    int rc;

    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    if (rc != SQLITE_DONE)
        return pgcmk_db_fail(db, rc, "delete database", err);
    st = pgcmk_db_stmt(db, PGCMK_STMT_PGROW_DELETE_DB);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "delete rows", err);
}

void
pg_forget(struct pgcmk_db *db, const char *id)
{
    (void)db;
    pgcmk_agent_forget(id);
}

json_t *
pg_get_ci(const json_t *obj, const char *key)
{
    const char *k;
    json_t *v;

    if (!json_is_object(obj))
        return NULL;
    v = json_object_get(obj, key);
    if (v)
        return v;
    json_object_foreach((json_t *)obj, k, v) {
        if (strcasecmp(k, key) == 0)
            return v;
    }
    return NULL;
}

json_t *
pg_canonical(const json_t *in, const char *const *names)
{
    json_t *out = json_object(), *v;
    const char *k;

    json_object_foreach((json_t *)in, k, v) {
        const char *name = k;

        for (const char *const *n = names; *n; n++)
            if (strcasecmp(*n, k) == 0)
                name = *n;
        json_object_set(out, name, v);
    }
    return out;
}

int
pg_check_name(const char *what, const char *name, size_t max, struct pgcmk_err *err)
{
    size_t n = strlen(name);
    int ok = n >= 3 && n <= max && name[0] != '-' && name[n - 1] != '-';

    for (size_t i = 0; ok && i < n; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
             name[i] == '-';
    if (ok)
        return 0;
    return pgcmk_err_set(err, PGCMK_E_INVALID_RESOURCE_NAME, "name",
                         "The %s name '%.64s' is not valid. It must be 3 to %zu characters of "
                         "lowercase letters, digits and hyphens, and not start or end with a "
                         "hyphen.",
                         what, name, max);
}

/* ---- CMK rules ---------------------------------------------------------------------------- */

int
pg_set_key(struct pg_db *d, const char *key_uri, struct pgcmk_err *err)
{
    struct pgcmk_keyuri ku;
    const char *why = "the key version is missing";

    /* the agent parses with the same function: both answer alike (keyuri.h) */
    if (pgcmk_keyuri_parse(key_uri, &ku, &why) || !ku.version[0])
        return pgcmk_err_set(err, PGCMK_E_PG_KEY_URI_INVALID, "dataEncryption.primaryKeyUri",
                             "The key URI '%.200s' is not valid (%s). Use a versioned key "
                             "identifier: https://{vault}.vault.azure.net/keys/{key}/{version}.",
                             key_uri ? key_uri : "", why);
    pg_set(&d->key_uri, key_uri);
    pg_set(&d->vault, ku.vault);
    pg_set(&d->key_name, ku.name);
    pg_set(&d->key_version, ku.version);
    return 0;
}

int
pg_check_vault(struct pgcmk_db *db, const char *vault, struct pgcmk_err *err)
{
    json_t *body = NULL;
    struct pgcmk_vault_props vp;
    int rc, soft, purge;
    json_int_t days;

    rc = pgcmk_arm_resource_by_name(db, "Microsoft.KeyVault/vaults", vault, NULL, NULL, &body, err);
    if (rc < 0)
        return -1;
    if (!body)
        return pgcmk_err_set(err, PGCMK_E_PG_KEY_NOT_FOUND, "dataEncryption.primaryKeyUri",
                             "The Azure Key Vault '%.64s' was not found. Check that the key URI "
                             "names an existing vault, key and version.",
                             vault);
    pgcmk_keyvault_props(body, &vp);
    soft = vp.soft_delete;
    purge = vp.purge_protection;
    days = vp.retention_days;
    json_decref(body);
    if (!soft || !purge || days != 90)
        return pgcmk_err_set(err, PGCMK_E_PG_VAULT_RECOVERY, "dataEncryption.primaryKeyUri",
                             "The Azure Key Vault '%.64s' must have soft delete and purge "
                             "protection enabled and 'Days to retain deleted vaults' set to 90 "
                             "(soft delete: %s, purge protection: %s, retention: %lld days).",
                             vault, soft ? "on" : "off", purge ? "on" : "off", (long long)days);
    return 0;
}

static void
agent_err(const struct pgcmk_agent_result *res, struct pgcmk_err *err)
{
    pgcmk_err_set(err, res->code ? res->code : PGCMK_E_PG_VAULT_UNREACHABLE,
                  "dataEncryption.primaryKeyUri", "%s", res->message);
}

int
pg_provision_dek(struct pg_db *d, const struct pg_db *source, struct pgcmk_err *err)
{
    struct pgcmk_agent_key k = {d->key_uri, d->principal_id};
    struct pgcmk_agent_result res;
    unsigned char *w = NULL;
    size_t wl = 0;
    char alg[24] = "";

    memset(&res, 0, sizeof(res));
    if (d->key_uri && !d->principal_id)
        return pgcmk_err_set(err, PGCMK_E_PG_IDENTITY_REQUIRED, "identity",
                             "The server has no managed identity to access the Azure Key Vault "
                             "key '%.300s' with. Assign an identity and grant it the Get, Wrap "
                             "and Unwrap key permissions.",
                             d->key_uri);
    if (source && !source->key_uri && !d->key_uri) {
        /* a replica of a service-managed database: the same DEK, sealed for this one */
        struct pgcmk_err serr;
        struct pgcmk_agent_key none = {NULL, NULL};

        if (!pgcmk_agent_has_dek(source->id))
            (void)pg_check_now(source->id, 0, &serr);
        if (pgcmk_agent_share(source->id, d->id) ||
            pgcmk_agent_rewrap(d->id, &none, &w, &wl, alg, &res)) {
            pgcmk_agent_forget(d->id);
            return pgcmk_err_set(err, PGCMK_E_PG_DATA_INACCESSIBLE, NULL,
                                 "The source '%.300s' has no data encryption key to share.",
                                 source->id);
        }
        free(d->wrapped);
        d->wrapped = w;
        d->wrapped_len = wl;
        pg_set(&d->alg, alg);
    } else if (source && source->wrapped && source->key_uri && d->key_uri &&
               strcasecmp(source->key_uri, d->key_uri) == 0) {
        /* a replica or standby: the same data, so the same DEK under the same key */
        free(d->wrapped);
        d->wrapped = pgcmk_xmalloc(source->wrapped_len);
        memcpy(d->wrapped, source->wrapped, source->wrapped_len);
        d->wrapped_len = source->wrapped_len;
        pg_set(&d->alg, source->alg);
    } else {
        if (pgcmk_agent_new_dek(d->id, &k, &w, &wl, alg, &res)) {
            agent_err(&res, err);
            return -1;
        }
        free(d->wrapped);
        d->wrapped = w;
        d->wrapped_len = wl;
        pg_set(&d->alg, alg);
    }
    if (pgcmk_agent_check(d->id, &k, d->wrapped, d->wrapped_len, d->alg, &res)) {
        agent_err(&res, err);
        return -1;
    }
    return 0;
}

/* ---- state -------------------------------------------------------------------------------- */

void
pg_set_renderer(enum pg_kind kind, pg_render_fn fn)
{
    pg_renderers[kind] = fn;
}

int
pg_record_state(struct pgcmk_db *db, const struct pg_db *d, const char *state, const char *what,
                struct pgcmk_err *err)
{
    int down = strcmp(state, "Inaccessible") == 0;
    char summary[768];
    struct pgcmk_activity a;

    struct pgcmk_event ev = {.kind = PGCMK_EV_PG_ACCESS_CHANGED};

    if (pg_renderers[d->kind] && pg_renderers[d->kind](db, d->id, state, err))
        return -1;
    ev.resource_id = d->id;
    ev.version = state;
    ev.key = down ? d->reason_code : NULL;
    pgcmk_events_publish(&ev); /* delivered once the state's transaction commits */
    if (d->kind == PG_TDE)     /* not an ARM resource: no Resource Health, no Activity Log */
        return 0;
    if (down)
        snprintf(summary, sizeof(summary),
                 "Your %s is inaccessible because it lost access to the customer-managed key in "
                 "Azure Key Vault. %s",
                 d->kind == PG_SERVER ? "server" : "cluster", d->reason ? d->reason : "");
    else
        snprintf(summary, sizeof(summary),
                 "There aren't any known Azure platform problems affecting this resource.");
    if (pgcmk_health_set(db, d->id, down ? PGCMK_HEALTH_UNAVAILABLE : PGCMK_HEALTH_AVAILABLE,
                         down ? "Inaccessible" : "Available", summary,
                         down ? "Customer Initiated" : "Platform Initiated", err))
        return -1;
    if (!what)
        return 0;
    memset(&a, 0, sizeof(a));
    a.resource_id = d->id;
    a.operation = d->kind == PG_SERVER ? PG_NS "/servers/keyAccess/action"
                                       : PG_NS "/serverGroupsv2/keyAccess/action";
    a.status = down ? "Failed" : "Succeeded";
    a.level = down ? "Error" : "Informational";
    a.description = what;
    if (down && d->reason_code) { /* why the access was lost: statusMessage */
        a.error_code = d->reason_code;
        a.error_message = d->reason;
    }
    return pgcmk_activity_add(db, &a, err);
}

/* ---- real PostgreSQL: the providers' hooks ------------------------------------------------ */

/* Admin passwords between a create's write and its worker: in memory only, wiped when taken. */
struct kept_password {
    struct kept_password *next;
    char *id, *password;
};

static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kept_password *kept;

static void
kept_free(struct kept_password *k)
{
    pgcmk_secret_free(k->password, strlen(k->password));
    free(k->id);
    free(k);
}

/* Unlinks id's kept password (NULL when none); the caller frees it with kept_free. */
static struct kept_password *
kept_take(const char *id)
{
    struct kept_password **pp, *k = NULL;

    pthread_mutex_lock(&kept_lock);
    for (pp = &kept; *pp; pp = &(*pp)->next) {
        if (strcasecmp((*pp)->id, id) == 0) {
            k = *pp;
            *pp = k->next;
            break;
        }
    }
    pthread_mutex_unlock(&kept_lock);
    return k;
}

void
pg_real_keep_password(const char *id, const char *password)
{
    struct kept_password *k, *old;

    if (!pgcmk_pg_real() || !password)
        return;
    old = kept_take(id);
    if (old)
        kept_free(old);
    k = pgcmk_xcalloc(1, sizeof(*k));
    k->id = pgcmk_xstrdup(id);
    k->password = pgcmk_xstrdup(password);
    pthread_mutex_lock(&kept_lock);
    k->next = kept;
    kept = k;
    pthread_mutex_unlock(&kept_lock);
}

/* The coordinator's (or the server's) FQDN as the resource reports it: NULL when absent. */
static const char *
real_fqdn(const json_t *body, int cluster)
{
    const json_t *p = json_object_get(body, "properties"), *sn, *v;
    size_t i;

    if (!cluster)
        return json_string_value(json_object_get(p, "fullyQualifiedDomainName"));
    sn = json_object_get(p, "serverNames");
    json_array_foreach(sn, i, v) { /* the coordinator is "<name>-c", the first entry */
        const char *n = json_string_value(json_object_get(v, "name"));
        size_t len = n ? strlen(n) : 0;

        if (len > 2 && strcmp(n + len - 2, "-c") == 0)
            return json_string_value(json_object_get(v, "fullyQualifiedDomainName"));
    }
    return json_string_value(json_object_get(json_array_get(sn, 0), "fullyQualifiedDomainName"));
}

int
pg_real_create(const struct pg_db *d, const json_t *body, const char *login, int64_t point_in_time,
               struct pgcmk_err *err)
{
    struct kept_password *k = kept_take(d->id);
    int cluster = d->kind == PG_CLUSTER, rc;
    const char *fqdn = real_fqdn(body, cluster);
    char alias[300] = "";
    struct pgcmk_pg_spec s;

    if (!pgcmk_pg_real()) {
        if (k)
            kept_free(k);
        return 0;
    }
    /* the certificate names what the resource reports; the alias is its first label under
     * .postgres.database.localhost */
    if (fqdn)
        snprintf(alias, sizeof(alias), "%.*s.postgres.database.localhost", (int)strcspn(fqdn, "."),
                 fqdn);
    memset(&s, 0, sizeof(s));
    s.db_id = d->id;
    s.cluster = cluster;
    s.fqdn = fqdn;
    s.alias = alias;
    s.admin_login = login;
    s.admin_password = k ? k->password : NULL;
    s.source_id = d->source_id;
    s.relation = d->source_id ? d->relation : NULL;
    s.point_in_time = point_in_time;
    if (!fqdn || !*fqdn)
        rc = pgcmk_err_set(err, PGCMK_E_PGREAL_START, NULL,
                           "The server '%.300s' reports no fullyQualifiedDomainName to serve "
                           "its certificate under.",
                           d->id);
    else if (!d->source_id && (!login || !s.admin_password))
        rc = pgcmk_err_set(err, PGCMK_E_PGREAL_START, "administratorLoginPassword",
                           "The PostgreSQL server of '%.300s' cannot start: its administrator "
                           "password is not known (it was not given, or pgcmkd restarted during "
                           "the creation). Delete the resource and create it again with "
                           "administratorLoginPassword.",
                           d->id);
    else
        rc = pgcmk_pg_create(&s, err);
    if (k)
        kept_free(k);
    if (rc) {
        struct pgcmk_err e2;

        /* nothing left half-made */
        if (pgcmk_pg_drop(d->id, &e2))
            LOG_WARN("pg: %s: dropping the failed instance: %s", d->id, e2.message);
        return -1;
    }
    return 0;
}

void
pg_real_drop(const char *id)
{
    struct kept_password *k = kept_take(id);
    struct pgcmk_err err;

    if (k)
        kept_free(k);
    if (pgcmk_pg_real() && pgcmk_pg_drop(id, &err))
        LOG_WARN("pg: %s: dropping the instance: %s", id, err.message);
}

struct real_action {
    char *id;
    char action[16];
};

void *
pg_real_action_new(const char *id, const char *action)
{
    struct real_action *a = pgcmk_xcalloc(1, sizeof(*a));

    a->id = pgcmk_xstrdup(id);
    snprintf(a->action, sizeof(a->action), "%s", action);
    return a;
}

void
pg_real_action_free(void *arg)
{
    struct real_action *a = arg;

    if (a) {
        free(a->id);
        free(a);
    }
}

void
pg_real_action_job(void *arg, struct pgcmk_lro_result *out)
{
    struct real_action *a = arg;
    int rc = 0;

    memset(&out->err, 0, sizeof(out->err));
    if (pgcmk_pg_real() && pgcmk_pg_has(a->id)) {
        if (strcmp(a->action, "restart") == 0)
            rc = pgcmk_pg_restart(a->id, &out->err);
        else if (strcmp(a->action, "stop") == 0 || strcmp(a->action, "start") == 0) {
            rc = pgcmk_pg_hold(a->id, strcmp(a->action, "stop") == 0, &out->err);
            if (rc && out->err.code == PGCMK_E_PGREAL_ATREST_NOKEY) {
                rc = 0; /* at rest without the key: access recovery starts it */
                memset(&out->err, 0, sizeof(out->err));
            }
        } else if (strcmp(a->action, "promote") == 0)
            rc = pgcmk_pg_promote(a->id, &out->err);
    }
    if (rc)
        out->failed = 1;
    else
        out->status = 200;
    pg_real_action_free(a);
}

/* Real mode, on a worker: the former replica's standby leaves recovery and takes its own first
 * base backup (seconds: never on the HTTP thread). */
static void
promote_job(void *arg)
{
    char *id = arg;
    struct pgcmk_err err = {0};

    if (pgcmk_pg_has(id) && pgcmk_pg_promote(id, &err))
        LOG_ERR("pg: %s: the promotion of the former replica failed: %s", id, err.message);
    free(id);
}

/* A single server's replica stopped replicating (server_stop_replication): after the commit. */
static void
replication_stopped(const struct pgcmk_event *ev, void *arg)
{
    struct pgcmk_err err = {0};

    (void)arg;
    if (ev->kind != PGCMK_EV_PG_ACCESS_CHANGED || !ev->resource_id || !ev->version ||
        strcmp(ev->version, PG_EV_REPLICATION_STOPPED) != 0)
        return;
    if (pgcmk_pg_real()) {
        pgcmk_work_submit(promote_job, pgcmk_xstrdup(ev->resource_id));
    } else if (ev->object_id &&
               pg_rows_restore(ev->object_id, ev->resource_id, pgcmk_clock_now(), &err)) {
        LOG_WARN("replica stop %s: %s", ev->resource_id, err.message);
    }
}

/* ---- start ------------------------------------------------------------------------------ */

void
pg_core_register(void)
{
    if (pgcmk_events_subscribe(replication_stopped, NULL))
        LOG_ERR("pg: no room for the replica-stop subscriber");
    pgcmk_tde_register();
    pgcmk_reconcile_register();
    pgcmk_pgdata_register();
    pgcmk_pg_register();
}

void
pg_core_init(const struct pgcmk_cfg *cfg)
{
    pgcmk_reconcile_start(cfg);
    /* Serve no database before its key was checked (the port file is written after this). */
    if (!pgcmk_reconcile_wait_start(30000))
        LOG_WARN("reconciler: the key checks after the start did not finish in 30 s; POST "
                 "/emulator/settle waits for them");
}
