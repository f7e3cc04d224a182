/* postgres.c - the core the PostgreSQL providers share: the databases table, CMK rules, the
 * reconciler (key events and the periodic check drive Ready <-> Inaccessible), the modeled data
 * plane with real ciphertext, and /emulator/explain, /emulator/lineage, /emulator/settle. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/events.h"
#include "pgcmk/keyvault.h"
#include "pgcmk/log.h"
#include "pgcmk/monitor.h"
#include "pgcmk/vault.h"
#include "pgcmk/work.h"
#include "providers/postgres.h"

static int64_t pg_check_interval_ms = 60000;
static int64_t pg_loss_delay_ms;
static pg_render_fn pg_renderers[2];

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
        out->kind = strcmp((const char *)sqlite3_column_text(st, 1), "server") == 0 ? PG_SERVER
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
    return rc;
}

static void
bind_opt(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int
pg_db_save(struct pgcmk_db *db, const struct pg_db *d, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PG_PUT);
    int rc;

    sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d->kind == PG_SERVER ? "server" : "cluster", -1, SQLITE_STATIC);
    bind_opt(st, 3, d->sub);
    bind_opt(st, 4, d->rg);
    bind_opt(st, 5, d->source_id);
    bind_opt(st, 6, d->relation);
    bind_opt(st, 7, d->key_uri);
    bind_opt(st, 8, d->vault);
    bind_opt(st, 9, d->key_name);
    bind_opt(st, 10, d->key_version);
    bind_opt(st, 11, d->identity_id);
    bind_opt(st, 12, d->principal_id);
    if (d->wrapped)
        sqlite3_bind_blob(st, 13, d->wrapped, (int)d->wrapped_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 13);
    bind_opt(st, 14, d->alg);
    bind_opt(st, 15, d->access ? d->access : PG_ACCESS_PENDING);
    bind_opt(st, 16, d->reason_code);
    bind_opt(st, 17, d->reason);
    sqlite3_bind_int64(st, 18, d->last_check);
    sqlite3_bind_int64(st, 19, d->lost_at);
    sqlite3_bind_int64(st, 20, d->created_at ? d->created_at : pgcmk_clock_now());
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "write database", err);
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
    char vault[32], name[128], version[40];

    if (!key_uri || pgcmk_vault_parse_key_uri(key_uri, vault, name, version) || !version[0])
        return pgcmk_err_set(err, PGCMK_E_PG_KEY_URI_INVALID, "dataEncryption.primaryKeyUri",
                             "The key URI '%.200s' is not valid. Use a versioned key identifier: "
                             "https://{vault}.vault.azure.net/keys/{key}/{version}.",
                             key_uri ? key_uri : "");
    pg_set(&d->key_uri, key_uri);
    pg_set(&d->vault, vault);
    pg_set(&d->key_name, name);
    pg_set(&d->key_version, version);
    return 0;
}

int
pg_check_vault(struct pgcmk_db *db, const char *vault, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_RES_ETAG_BY_TYPE_NAME);
    json_t *body = NULL;
    struct pgcmk_vault_props vp;
    int rc, soft, purge;
    json_int_t days;

    sqlite3_bind_text(st, 1, "Microsoft.KeyVault/vaults", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, vault, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        body = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
    pgcmk_db_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return pgcmk_db_fail(db, rc, "read vault", err);
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

    if (pg_renderers[d->kind] && pg_renderers[d->kind](db, d->id, state, err))
        return -1;
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
    return pgcmk_activity_add(db, &a, err);
}

/* ---- the reconciler ----------------------------------------------------------------------- */

static pthread_mutex_t pending_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pending_cv = PTHREAD_COND_INITIALIZER;
static json_t *pending;    /* ids queued or running */
static unsigned long busy; /* checks queued or running + fan-out jobs */
static unsigned long checks_done;

struct check_outcome {
    const char *id;
    int ok, lost, outage, revalidate;
    const struct pgcmk_agent_result *res;
    int changed;
    char state[24];
};

static int
check_apply_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct check_outcome *o = ctx;
    struct pg_db d;
    int rc = pg_db_load(db, o->id, &d, err), was_lost;
    int64_t now = pgcmk_clock_now();

    if (rc <= 0)
        return rc;
    if (strcmp(d.access, PG_ACCESS_PENDING) == 0) { /* still being provisioned */
        pg_db_release(&d);
        return 0;
    }
    was_lost = strcmp(d.access, PG_ACCESS_LOST) == 0;
    d.last_check = now;
    o->state[0] = 0;
    if (o->ok) {
        d.lost_at = 0;
        if (!was_lost) {
            pg_set(&d.reason_code, NULL);
            pg_set(&d.reason, NULL);
        } else if (d.kind == PG_CLUSTER || o->revalidate) {
            pg_set(&d.access, PG_ACCESS_OK);
            pg_set(&d.reason_code, NULL);
            pg_set(&d.reason, NULL);
            snprintf(o->state, sizeof(o->state), "Ready");
        } else {
            /* single servers stay Inaccessible until the key is revalidated (seed 002) */
            pg_set(&d.reason, "Access to the key is back; revalidate the key (re-create the "
                              "server key) to bring the server back.");
        }
    } else if (o->outage) {
        pg_set(&d.reason_code, pgcmk_err_code(o->res->code));
        pg_set(&d.reason, o->res->message);
    } else {
        pg_set(&d.reason_code, pgcmk_err_code(o->res->code));
        pg_set(&d.reason, o->res->message);
        if (!d.lost_at)
            d.lost_at = now;
        if (!was_lost && now - d.lost_at >= pg_loss_delay_ms) {
            pg_set(&d.access, PG_ACCESS_LOST);
            snprintf(o->state, sizeof(o->state), "Inaccessible");
        }
    }
    rc = pg_db_save(db, &d, err);
    if (rc == 0 && o->state[0]) {
        char what[768];

        snprintf(what, sizeof(what), "%s: %s",
                 o->state[0] == 'R' ? "Access to the customer-managed key was restored"
                                    : "Access to the customer-managed key was lost",
                 o->state[0] == 'R' ? (d.key_uri ? d.key_uri : "") : d.reason);
        rc = pg_record_state(db, &d, o->state, what, err);
        o->changed = 1;
    }
    pg_db_release(&d);
    return rc;
}

static int
pg_barrier_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    (void)db;
    (void)ctx;
    (void)err;
    return 0;
}

/* The network half of a check: the agent asks the vault. 0 when there is nothing to apply
 * (no such database, or still provisioning), 1 with o filled. */
static int
pg_probe(const char *id, int revalidate, struct check_outcome *o, struct pgcmk_agent_result *res,
         struct pgcmk_err *err)
{
    struct pg_db d;
    int rc;

    memset(res, 0, sizeof(*res));
    memset(o, 0, sizeof(*o));
    rc = pg_db_load(pgcmk_db(), id, &d, err);
    if (rc <= 0)
        return rc;
    if (strcmp(d.access, PG_ACCESS_PENDING) == 0) {
        pg_db_release(&d);
        return 0;
    }
    if (!d.key_uri) {
        o->ok = 1;
    } else if (!d.principal_id) {
        res->lost = 1;
        res->code = PGCMK_E_PG_IDENTITY_REQUIRED;
        snprintf(res->message, sizeof(res->message),
                 "The resource has no managed identity to access the key '%.300s' with.",
                 d.key_uri);
    } else {
        struct pgcmk_agent_key k = {d.key_uri, d.principal_id};

        o->ok = pgcmk_agent_check(d.id, &k, d.wrapped, d.wrapped_len, d.alg, res) == 0;
    }
    pg_db_release(&d);
    o->id = id;
    o->lost = res->lost;
    o->outage = res->outage;
    o->revalidate = revalidate;
    o->res = res;
    return 1;
}

static int
pg_check_id(const char *id, int revalidate, struct pgcmk_err *err)
{
    struct pgcmk_agent_result res;
    struct check_outcome o;
    int rc = pg_probe(id, revalidate, &o, &res, err);

    if (rc <= 0)
        return rc < 0 ? -1 : 0;
    if (pgcmk_db_tx(pgcmk_db(), check_apply_tx, &o, err))
        return -1;
    if (!o.ok) {
        pgcmk_err_set(err, res.code ? res.code : PGCMK_E_PG_VAULT_UNREACHABLE,
                      "dataEncryption.primaryKeyUri", "%s", res.message);
        return -1;
    }
    return 0;
}

int
pg_check_now(const char *id, int revalidate, struct pgcmk_err *err)
{
    return pg_check_id(id, revalidate, err);
}

static void
pending_done(void)
{
    pthread_mutex_lock(&pending_mu);
    busy--;
    checks_done++;
    pthread_cond_broadcast(&pending_cv);
    pthread_mutex_unlock(&pending_mu);
}

static void check_job(void *arg);

/* After a check's outcome is stored: run it again if a change came in meanwhile, else done. */
static void
check_finish(char *id)
{
    json_t *st;
    int again;

    pthread_mutex_lock(&pending_mu);
    st = json_object_get(pending, id);
    again = st && json_integer_value(st) == 3;
    if (again)
        json_object_set_new(pending, id, json_integer(1));
    else
        json_object_del(pending, id);
    pthread_mutex_unlock(&pending_mu);
    if (again) {
        pgcmk_work_submit(check_job, id);
        return;
    }
    free(id);
    pending_done();
}

/* Outcomes wait here and are stored many to a transaction (group commit): when a revocation
 * flips a thousand databases, the writer commits a few times, not a thousand. */
struct applied {
    char *id;
    struct check_outcome o;
    struct pgcmk_agent_result res;
    int have; /* 0: nothing to store, only finish */
    struct applied *next;
};

static pthread_mutex_t apply_mu = PTHREAD_MUTEX_INITIALIZER;
static struct applied *apply_head, **apply_tail = &apply_head;
static int applying;

static int
apply_batch_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    for (struct applied *a = ctx; a; a = a->next) {
        struct pgcmk_err one;

        if (a->have && check_apply_tx(db, &a->o, &one))
            LOG_WARN("key check %s: could not store the result: %s", a->id, one.message);
    }
    (void)err;
    return 0;
}

static void
apply_enqueue(struct applied *a)
{
    pthread_mutex_lock(&apply_mu);
    *apply_tail = a;
    apply_tail = &a->next;
    if (applying) {
        pthread_mutex_unlock(&apply_mu);
        return;
    }
    applying = 1;
    while (apply_head) {
        struct applied *batch = apply_head, *next;
        struct pgcmk_err err;

        apply_head = NULL;
        apply_tail = &apply_head;
        pthread_mutex_unlock(&apply_mu);
        if (pgcmk_db_tx(pgcmk_db(), apply_batch_tx, batch, &err))
            LOG_WARN("key checks: could not store results: %s", err.message);
        for (; batch; batch = next) {
            next = batch->next;
            check_finish(batch->id);
            free(batch);
        }
        pthread_mutex_lock(&apply_mu);
    }
    applying = 0;
    pthread_mutex_unlock(&apply_mu);
}

/* pending: id -> 1 queued, 2 running, 3 running and asked again. A database is checked by one
 * worker at a time, and a change seen while its check runs gets a fresh check afterwards, so an
 * older answer never lands after a newer one. */
static void
check_job(void *arg)
{
    char *id = arg;
    struct applied *a = pgcmk_xcalloc(1, sizeof(*a));
    struct pgcmk_err err;

    pthread_mutex_lock(&pending_mu);
    json_object_set_new(pending, id, json_integer(2));
    pthread_mutex_unlock(&pending_mu);
    a->id = id;
    /* This check may have been queued by a change whose transaction has not committed yet:
     * wait for the writer, so the vault answers from the new state. */
    if (pgcmk_db_tx(pgcmk_db(), pg_barrier_tx, NULL, &err) == 0)
        a->have = pg_probe(id, 0, &a->o, &a->res, &err) > 0;
    a->o.res = &a->res;
    apply_enqueue(a);
}

void
pg_schedule_check(const char *id)
{
    json_t *st;

    pthread_mutex_lock(&pending_mu);
    if (!pending)
        pending = json_object();
    st = json_object_get(pending, id);
    if (st) {
        if (json_integer_value(st) == 2)
            json_object_set_new(pending, id, json_integer(3));
        pthread_mutex_unlock(&pending_mu);
        return;
    }
    json_object_set_new(pending, id, json_integer(1));
    busy++;
    pthread_mutex_unlock(&pending_mu);
    pgcmk_work_submit(check_job, pgcmk_xstrdup(id));
}

/* Which databases an event touches, looked up on a worker after the change committed. */
struct fanout {
    enum pgcmk_event_kind kind;
    char *vault, *key, *object_id, *resource_id;
};

static void
fanout_job(void *arg)
{
    struct fanout *f = arg;
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    sqlite3_stmt *st;
    json_t *ids = json_array(), *v;
    size_t i;
    int rc;

    if (pgcmk_db_tx(db, pg_barrier_tx, NULL, &err) == 0) {
        if (f->kind == PGCMK_EV_IDENTITY_DELETED) {
            st = pgcmk_db_stmt(db, PGCMK_STMT_PG_BY_PRINCIPAL);
            bind_opt(st, 1, f->object_id ? f->object_id : "-");
            bind_opt(st, 2, f->resource_id ? f->resource_id : "-");
        } else if (f->vault) {
            st = pgcmk_db_stmt(db, PGCMK_STMT_PG_BY_VAULT);
            bind_opt(st, 1, f->vault);
            bind_opt(st, 2, f->key);
        } else {
            st = pgcmk_db_stmt(db, PGCMK_STMT_PG_ALL_CMK);
        }
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            json_array_append_new(ids, json_string((const char *)sqlite3_column_text(st, 0)));
        pgcmk_db_done(st);
        json_array_foreach(ids, i, v)
            pg_schedule_check(json_string_value(v));
    }
    json_decref(ids);
    free(f->vault);
    free(f->key);
    free(f->object_id);
    free(f->resource_id);
    free(f);
    pending_done();
}

static void
pg_fanout(enum pgcmk_event_kind kind, const char *vault, const char *key, const char *oid,
          const char *rid)
{
    struct fanout *f = pgcmk_xcalloc(1, sizeof(*f));

    f->kind = kind;
    f->vault = vault ? pgcmk_xstrdup(vault) : NULL;
    f->key = key ? pgcmk_xstrdup(key) : NULL;
    f->object_id = oid ? pgcmk_xstrdup(oid) : NULL;
    f->resource_id = rid ? pgcmk_xstrdup(rid) : NULL;
    pthread_mutex_lock(&pending_mu);
    busy++;
    pthread_mutex_unlock(&pending_mu);
    pgcmk_work_submit(fanout_job, f);
}

static int64_t next_periodic;
static pthread_mutex_t periodic_mu = PTHREAD_MUTEX_INITIALIZER;

/* Every CMK database once per interval of virtual time (and the pending key losses). */
static void
pg_periodic(int force)
{
    int64_t now = pgcmk_clock_now();
    int due;

    pthread_mutex_lock(&periodic_mu);
    due = force || now >= next_periodic;
    if (due)
        next_periodic = now + pg_check_interval_ms;
    pthread_mutex_unlock(&periodic_mu);
    if (due)
        pg_fanout(PGCMK_EV_CLOCK_CHANGED, NULL, NULL, NULL, NULL);
}

static void
pg_on_event(const struct pgcmk_event *ev, void *arg)
{
    (void)arg;
    switch (ev->kind) {
    case PGCMK_EV_KEY_CREATED:
        return; /* a new key affects nobody */
    case PGCMK_EV_IDENTITY_DELETED:
        pg_fanout(ev->kind, NULL, NULL, ev->object_id, ev->resource_id);
        return;
    case PGCMK_EV_CLOCK_CHANGED:
        pg_periodic(pg_loss_delay_ms > 0);
        return;
    case PGCMK_EV_FAULT_CHANGED:
        pg_periodic(1);
        return;
    default:
        if (ev->vault)
            pg_fanout(ev->kind, ev->vault,
                      ev->kind == PGCMK_EV_POLICY_CHANGED || ev->kind == PGCMK_EV_VAULT_DELETED ||
                              ev->kind == PGCMK_EV_VAULT_RECOVERED ||
                              ev->kind == PGCMK_EV_VAULT_PURGED
                          ? NULL
                          : ev->key,
                      NULL, NULL);
    }
}

/* A clock change (set, advance, freeze, resume) re-judges pending losses at once; the clock's
 * one-second tick while it runs only lets the periodic check come due. */
static void
pg_on_clock(int64_t now_ms, void *arg)
{
    static atomic_ulong seen_gen;
    unsigned long gen = pgcmk_clock_generation();
    int changed = atomic_exchange(&seen_gen, gen) != gen;

    (void)now_ms;
    (void)arg;
    pg_periodic(changed && pg_loss_delay_ms > 0);
}

/* Waits until no check is queued or running (or the timeout passes): 1 settled, 0 not. */
static int
pg_settle(int64_t timeout_ms)
{
    struct timespec until = pgcmk_deadline(CLOCK_REALTIME, timeout_ms);
    int settled;

    pthread_mutex_lock(&pending_mu);
    while (busy > 0 && pthread_cond_timedwait(&pending_cv, &pending_mu, &until) == 0)
        ;
    settled = busy == 0;
    pthread_mutex_unlock(&pending_mu);
    return settled;
}

/* ---- the modeled data plane --------------------------------------------------------------- */

struct rows_ctx {
    const char *db_id, *key;
    const unsigned char *sealed;
    size_t sealed_len;
    int64_t seq;
    int deleted;
};

static int
rows_next_seq(struct pgcmk_db *db, const char *id, int64_t *seq, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PGROW_NEXT_SEQ);
    int rc;

    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 1;
    pgcmk_db_done(st);
    return rc == SQLITE_ROW ? 0 : pgcmk_db_fail(db, rc, "row sequence", err);
}

static int
rows_insert(struct pgcmk_db *db, const char *id, int64_t seq, const char *key, int deleted,
            const unsigned char *sealed, size_t n, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PGROW_INSERT);
    int rc;

    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, pgcmk_clock_now());
    sqlite3_bind_int(st, 5, deleted);
    if (sealed)
        sqlite3_bind_blob(st, 6, sealed, (int)n, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "write row", err);
}

/* Reads the live rows of `id` at time `at` (key NULL: all), decrypted with holder's DEK. */
static int
rows_read(const char *holder, const char *id, int64_t at, const char *key, json_t *out,
          struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PGROW_LATEST);
    int rc;

    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at);
    bind_opt(st, 3, key);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        unsigned char *pt = NULL;
        size_t ptl = 0;
        json_t *value;
        char t[PGCMK_TIME_LEN];

        if (sqlite3_column_int(st, 3))
            continue;
        if (pgcmk_agent_open(holder, id, sqlite3_column_int64(st, 1), sqlite3_column_blob(st, 4),
                             (size_t)sqlite3_column_bytes(st, 4), &pt, &ptl)) {
            pgcmk_db_done(st);
            return pgcmk_err_set(err, PGCMK_E_PG_DATA_INACCESSIBLE, NULL,
                                 "FATAL: could not decrypt row '%.128s': the data encryption key "
                                 "is not available (SQLSTATE XX001)",
                                 (const char *)sqlite3_column_text(st, 0));
        }
        value = json_loadb((const char *)pt, ptl, JSON_DECODE_ANY, NULL);
        pgcmk_secret_free(pt, ptl);
        pgcmk_time_format(sqlite3_column_int64(st, 2), t);
        json_array_append_new(
            out, json_pack("{s:s, s:o, s:I, s:s}", "key", (const char *)sqlite3_column_text(st, 0),
                           "value", value ? value : json_null(), "seq",
                           (json_int_t)sqlite3_column_int64(st, 1), "writtenAt", t));
    }
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "read rows", err);
}

struct restore_ctx {
    const char *target;
    json_t *rows;
};

static int
restore_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct restore_ctx *r = ctx;
    json_t *row;
    size_t i;
    int64_t seq;

    if (rows_next_seq(db, r->target, &seq, err))
        return -1;
    json_array_foreach(r->rows, i, row) {
        char *text = json_dumps(json_object_get(row, "value"), JSON_COMPACT | JSON_ENCODE_ANY);
        unsigned char *sealed = NULL;
        size_t n = 0;
        int rc = pgcmk_agent_seal(r->target, r->target, seq, text, strlen(text), &sealed, &n);

        free(text);
        if (rc)
            return pgcmk_err_set(err, PGCMK_E_PG_DATA_INACCESSIBLE, NULL,
                                 "The restored server has no data encryption key.");
        rc = rows_insert(db, r->target, seq++, json_string_value(json_object_get(row, "key")), 0,
                         sealed, n, err);
        free(sealed);
        if (rc)
            return -1;
    }
    return 0;
}

int
pg_rows_restore(const char *source_id, const char *target_id, int64_t at, struct pgcmk_err *err)
{
    struct restore_ctx r = {target_id, json_array()};
    int rc = rows_read(source_id, source_id, at, NULL, r.rows, err);

    if (rc == 0)
        rc = pgcmk_db_tx(pgcmk_db(), restore_tx, &r, err);
    json_decref(r.rows);
    return rc;
}

/* The database behind /emulator/data{resourceId}/rows: its row, and where its rows live. */
static int
data_target(struct pgcmk_req *rq, struct pg_db *d, const char **rows_of, struct pgcmk_err *err)
{
    const char *rest = pgcmk_req_param(rq, "rest");
    char *id;
    int rc;

    id = pgcmk_xasprintf("/subscriptions/%s/resourceGroups/%s/providers/%s",
                         pgcmk_req_param(rq, "sub"), pgcmk_req_param(rq, "rg"), rest ? rest : "");
    rc = pg_db_load(pgcmk_db(), id, d, err);
    free(id);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return pgcmk_err_set(err, PGCMK_E_RESOURCE_NOT_FOUND, NULL,
                             "No PostgreSQL cluster or server has the id in this path.");
    *rows_of =
        d->relation &&
                (strcmp(d->relation, "replica") == 0 || strcmp(d->relation, "standby") == 0) &&
                d->source_id
            ? d->source_id
            : d->id;
    if (strcmp(d->access, PG_ACCESS_OK) != 0 || !pgcmk_agent_has_dek(d->id)) {
        const char *nm = strrchr(d->id, '/');

        return pgcmk_err_set(err, PGCMK_E_PG_DATA_INACCESSIBLE, NULL,
                             "FATAL: the database '%.128s' is inaccessible: %s (SQLSTATE 08006)",
                             nm ? nm + 1 : d->id,
                             d->reason ? d->reason
                             : strcmp(d->access, PG_ACCESS_PENDING) == 0
                                 ? "it is still being provisioned"
                                 : "its data encryption key is not available");
    }
    return 0;
}

/* Writes one row version (a tombstone for DELETE); c->sealed holds the plaintext on entry. */
static int
row_write_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct rows_ctx *c = ctx;
    unsigned char *sealed = NULL;
    size_t n = 0;
    int rc;

    if (rows_next_seq(db, c->db_id, &c->seq, err))
        return -1;
    if (!c->deleted &&
        pgcmk_agent_seal(c->db_id, c->db_id, c->seq, c->sealed, c->sealed_len, &sealed, &n))
        return pgcmk_err_set(err, PGCMK_E_PG_DATA_INACCESSIBLE, NULL,
                             "FATAL: the data encryption key is not available (SQLSTATE 08006)");
    rc = rows_insert(db, c->db_id, c->seq, c->key, c->deleted, sealed, n, err);
    free(sealed);
    return rc;
}

/* Splits the {*rest} of a data route into the resource part and the row key. */
static int
data_split(struct pgcmk_req *rq, char **row_key)
{
    char *rest = (char *)pgcmk_req_param(rq, "rest");
    char *p = rest ? strstr(rest, "/rows") : NULL;

    *row_key = NULL;
    if (!p)
        return -1;
    while (p && p[5] != 0 && p[5] != '/')
        p = strstr(p + 1, "/rows");
    if (!p)
        return -1;
    if (p[5] == '/' && p[6])
        *row_key = p + 6;
    *p = 0;
    return 0;
}

static int
data_route(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct pg_db d;
    const char *rows_of = NULL;
    char *key = NULL;
    json_t *out;
    int rc;

    if (data_split(rq, &key))
        return pgcmk_err_set(err, PGCMK_E_NOT_FOUND, NULL,
                             "Use /emulator/data{resourceId}/rows[/{key}].");
    if (data_target(rq, &d, &rows_of, err)) {
        pg_db_release(&d);
        return -1;
    }
    if (strcmp(rq->method, "GET") == 0) {
        out = json_array();
        rc = rows_read(d.id, rows_of, pgcmk_clock_now(), key, out, err);
        if (rc == 0 && key && json_array_size(out) == 0)
            rc = pgcmk_err_set(err, PGCMK_E_PG_ROW_NOT_FOUND, NULL, "No row has the key '%.128s'.",
                               key);
        if (rc == 0)
            pgcmk_resp_json(rs, 200,
                            key ? json_incref(json_array_get(out, 0))
                                : json_pack("{s:O}", "value", out));
        json_decref(out);
        pg_db_release(&d);
        return rc;
    }
    if (rows_of != d.id) {
        pg_db_release(&d);
        return pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL,
                             "ERROR: cannot execute a write in a read-only transaction: this is a "
                             "read replica (SQLSTATE 25006)");
    }
    if (!key) {
        pg_db_release(&d);
        return pgcmk_err_set(err, PGCMK_E_METHOD_NOT_ALLOWED, NULL,
                             "Write one row: %s /emulator/data{resourceId}/rows/{key}.",
                             rq->method);
    }
    {
        struct rows_ctx c = {d.id, key, NULL, 0, 0, strcmp(rq->method, "DELETE") == 0};
        char *text = NULL;
        json_t *v = json_object_get(rq->json, "value");

        if (!c.deleted && !v) {
            pg_db_release(&d);
            return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, "value",
                                 "The body must be {\"value\": ...}.");
        }
        if (!c.deleted) {
            text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            c.sealed = (const unsigned char *)text;
            c.sealed_len = strlen(text);
        }
        rc = pgcmk_db_tx(pgcmk_db(), row_write_tx, &c, err);
        free(text);
        if (rc == 0) {
            char t[PGCMK_TIME_LEN];

            pgcmk_time_format(pgcmk_clock_now(), t);
            if (c.deleted)
                pgcmk_resp_empty(rs, 204);
            else
                pgcmk_resp_json(rs, 200,
                                json_pack("{s:s, s:O, s:I, s:s}", "key", key, "value", v, "seq",
                                          (json_int_t)c.seq, "writtenAt", t));
        }
    }
    pg_db_release(&d);
    return rc;
}

/* ---- routes ------------------------------------------------------------------------------- */

static json_t *
explain_rule(const char *rule, int ok, const char *detail)
{
    return json_pack("{s:s, s:b, s:s}", "rule", rule, "ok", ok, "detail", detail ? detail : "");
}

static json_t *
pg_describe(const struct pg_db *d)
{
    char t[PGCMK_TIME_LEN] = "";

    if (d->last_check)
        pgcmk_time_format(d->last_check, t);
    return json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s, s:s?, s:s?, s:s?}",
                     "resourceId", d->id, "kind", d->kind == PG_SERVER ? "server" : "cluster",
                     "keyUri", d->key_uri, "vault", d->vault, "key", d->key_name, "keyVersion",
                     d->key_version, "identity", d->identity_id, "principalId", d->principal_id,
                     "access", d->access, "sourceResourceId", d->source_id, "relation", d->relation,
                     "lastCheck", d->last_check ? t : NULL);
}

/* GET /emulator/explain?resourceId=: why the database is, or is not, accessible. */
static int
emu_explain(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *id = pgcmk_req_query(rq, "resourceId");
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err verr;
    struct pg_db d;
    json_t *out, *rules;
    int rc, ok = 0;

    if (!id)
        return pgcmk_err_set(err, PGCMK_E_INVALID_QUERY, "resourceId",
                             "Give the database: /emulator/explain?resourceId=...");
    rc = pg_db_load(db, id, &d, err);
    if (rc <= 0)
        return rc < 0 ? -1
                      : pgcmk_err_set(err, PGCMK_E_RESOURCE_NOT_FOUND, "resourceId",
                                      "No PostgreSQL cluster or server has the id '%.300s'.", id);
    out = pg_describe(&d);
    rules = json_array();
    if (!d.key_uri) {
        json_array_append_new(
            rules, explain_rule("encryption", 1, "Service-managed key: nothing to revoke."));
    } else {
        json_array_append_new(
            rules, explain_rule("identity", d.principal_id != NULL,
                                d.principal_id ? "The resource has a managed identity."
                                               : "The resource has no managed identity: assign "
                                                 "one and grant it Get, Wrap Key, Unwrap Key."));
        memset(&verr, 0, sizeof(verr));
        rc = pg_check_vault(db, d.vault, &verr);
        json_array_append_new(rules, explain_rule("vault", rc == 0,
                                                  rc == 0 ? "The vault exists with soft delete, "
                                                            "purge protection and 90 days."
                                                          : verr.message));
        json_array_append_new(
            rules, explain_rule("key", strcmp(d.access, PG_ACCESS_LOST) != 0 && !d.reason_code,
                                d.reason ? d.reason
                                         : "The last check got the key and unwrapped the DEK."));
    }
    ok = strcmp(d.access, PG_ACCESS_OK) == 0 && (!d.key_uri || pgcmk_agent_has_dek(d.id));
    json_array_append_new(rules, explain_rule("dek", pgcmk_agent_has_dek(d.id),
                                              pgcmk_agent_has_dek(d.id)
                                                  ? "The data encryption key is in memory."
                                                  : "The data encryption key is not in memory."));
    json_object_set_new(out, "accessible", json_boolean(ok));
    json_object_set_new(out, "reasonCode",
                        d.reason_code ? json_string(d.reason_code) : json_null());
    json_object_set_new(out, "reason", d.reason ? json_string(d.reason) : json_null());
    json_object_set_new(out, "rules", rules);
    pg_db_release(&d);
    pgcmk_resp_json(rs, 200, out);
    return 0;
}

static int
lineage_add(struct pgcmk_db *db, const char *id, json_t *out, int depth, struct pgcmk_err *err)
{
    sqlite3_stmt *st;
    json_t *kids = json_array(), *v;
    struct pg_db d;
    size_t i;
    int rc;

    if (depth > 16 || pg_db_load(db, id, &d, err) <= 0) {
        json_decref(kids);
        return 0;
    }
    json_array_append_new(out, pg_describe(&d));
    pg_db_release(&d);
    st = pgcmk_db_stmt(db, PGCMK_STMT_PG_CHILDREN);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(kids, json_string((const char *)sqlite3_column_text(st, 0)));
    pgcmk_db_done(st);
    json_array_foreach(kids, i, v)
        lineage_add(db, json_string_value(v), out, depth + 1, err);
    json_decref(kids);
    return 0;
}

/* GET /emulator/lineage?keyId= | ?resourceId=: which databases depend on which key version. */
static int
emu_lineage(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *key = pgcmk_req_query(rq, "keyId"), *id = pgcmk_req_query(rq, "resourceId");
    struct pgcmk_db *db = pgcmk_db();
    json_t *out = json_array();
    struct pg_db d;
    int rc;

    if (key) {
        char vault[32], name[128], version[40];
        sqlite3_stmt *st;
        json_t *ids = json_array(), *v;
        size_t i;

        if (pgcmk_vault_parse_key_uri(key, vault, name, version)) {
            json_decref(out);
            json_decref(ids);
            return pgcmk_err_set(err, PGCMK_E_PG_KEY_URI_INVALID, "keyId",
                                 "'%.300s' is not a key identifier.", key);
        }
        st = pgcmk_db_stmt(db, PGCMK_STMT_PG_BY_VAULT);
        sqlite3_bind_text(st, 1, vault, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            json_array_append_new(ids, json_string((const char *)sqlite3_column_text(st, 0)));
        pgcmk_db_done(st);
        json_array_foreach(ids, i, v) {
            if (pg_db_load(db, json_string_value(v), &d, err) > 0) {
                if (!version[0] || strcasecmp(version, d.key_version) == 0)
                    json_array_append_new(out, pg_describe(&d));
                pg_db_release(&d);
            }
        }
        json_decref(ids);
    } else if (id) {
        char *root = pgcmk_xstrdup(id);
        int hops = 0;

        /* up to the first database of the line, then every descendant */
        while (hops++ < 16 && pg_db_load(db, root, &d, err) > 0) {
            char *up = d.source_id ? pgcmk_xstrdup(d.source_id) : NULL;

            pg_db_release(&d);
            if (!up || pg_db_load(db, up, &d, err) <= 0) {
                free(up);
                break;
            }
            pg_db_release(&d);
            free(root);
            root = up;
        }
        lineage_add(db, root, out, 0, err);
        free(root);
    } else {
        json_decref(out);
        return pgcmk_err_set(err, PGCMK_E_INVALID_QUERY, NULL,
                             "Give keyId= or resourceId=: /emulator/lineage?keyId=...");
    }
    pgcmk_resp_json(rs, 200, json_pack("{s:o}", "value", out));
    return 0;
}

/* POST /emulator/settle[?timeout=PT1S]: whether no key check is queued or running, waiting up
 * to the timeout (default: not at all). Keep the wait short and poll instead: a blocked HTTP
 * thread cannot serve the agent's own requests on the connections it holds. */
static int
emu_settle(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *t = pgcmk_req_query(rq, "timeout");
    int64_t ms = 0;
    int settled;

    if (t && (pgcmk_duration_parse(t, &ms) || ms < 0 || ms > 1000))
        return pgcmk_err_set(err, PGCMK_E_INVALID_QUERY, "timeout",
                             "timeout must be an ISO 8601 duration up to PT1S.");
    settled = pg_settle(ms);
    pthread_mutex_lock(&pending_mu);
    pgcmk_resp_json(rs, 200,
                    json_pack("{s:b, s:I, s:I}", "settled", settled, "busy", (json_int_t)busy,
                              "checksDone", (json_int_t)checks_done));
    pthread_mutex_unlock(&pending_mu);
    return 0;
}

#define DATA_ROUTE "/emulator/data/subscriptions/{sub}/resourcegroups/{rg}/providers/{*rest}"
static const struct pgcmk_route pg_core_routes[] = {
    {"GET", DATA_ROUTE, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, data_route},
    {"PUT", DATA_ROUTE, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON, NULL, data_route},
    {"DELETE", DATA_ROUTE, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, data_route},
    {"GET", "/emulator/explain", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, "resourceId", emu_explain},
    {"GET", "/emulator/lineage", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, "keyId,resourceId",
     emu_lineage},
    {"POST", "/emulator/settle", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_ANYBODY, "timeout",
     emu_settle},
};

void
pg_core_init(const struct pgcmk_cfg *cfg)
{
    if (cfg) {
        if (pgcmk_duration_parse(cfg->key_check_interval, &pg_check_interval_ms) ||
            pg_check_interval_ms < 1000)
            pg_check_interval_ms = 60000;
        if (pgcmk_duration_parse(cfg->key_loss_delay, &pg_loss_delay_ms) || pg_loss_delay_ms < 0)
            pg_loss_delay_ms = 0;
    }
    next_periodic = pgcmk_clock_now() + pg_check_interval_ms;
    if (pgcmk_events_subscribe(pg_on_event, NULL) < 0)
        LOG_WARN("reconciler: the event bus is full");
    if (pgcmk_clock_listen(pg_on_clock, NULL))
        LOG_WARN("reconciler: cannot listen to the clock");
    pgcmk_router_add(pg_core_routes, PGCMK_ARRAY_LEN(pg_core_routes));
}
