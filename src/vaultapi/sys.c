/* sys.c - the Vault API's state (namespaces, mounts, seal) and the sys/ backend: health,
 * seal-status, seal, unseal, mounts, auth, namespaces. The state lives in memory behind one
 * read-write lock (requests only read it) and is written through to the store (migration 11). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/clock.h"
#include "pgcmk/events.h"
#include "pgcmk/http.h"
#include "pgcmk/log.h"
#include "pgcmk/monitor.h"
#include "pgcmk/store.h"
#include "pgcmk/vacl.h"
#include "pgcmk/vaultapi.h"
#include "pgcmk/wellknown.h"
#include "vaultapi/internal.h"

#define HV_MAX_MOUNTS 1024
#define HV_MAX_NS     256

struct hv_ns {
    char path[PGCMK_HV_NS_MAX];
    char id[16];
    json_t *meta;
    int64_t created_ms;
};

/* hv_lock guards the tables and is held only for in-memory work: no store write waits while it
 * is held (a transaction elsewhere may need it). hv_write_mu serialises the changes (mount,
 * tune, namespace) across their store writes. */
static pthread_rwlock_t hv_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t hv_write_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pgcmk_hv_mount *hv_mounts[HV_MAX_MOUNTS];
static int hv_n_mounts;
static struct hv_ns hv_nss[HV_MAX_NS];
static int hv_n_ns;
static atomic_int hv_is_sealed;
static atomic_int hv_unseal_progress;
static char hv_cluster_id[37];

int
pgcmk_hv_sealed(void)
{
    return atomic_load(&hv_is_sealed);
}

/* ---- activity log --------------------------------------------------------------------------- */

void
hv_activity(const char *ns, const char *what, const char *operation, const char *description)
{
    struct pgcmk_activity a;
    struct pgcmk_err err;
    char *id = pgcmk_xasprintf("/subscriptions/" PGCMK_SUBSCRIPTION_ID
                               "/providers/pgcmk.Vault/namespaces/%s%s",
                               ns && *ns ? ns : "root/", what ? what : "");
    size_t n = strlen(id);

    if (n > 1 && id[n - 1] == '/')
        id[n - 1] = '\0';
    memset(&a, 0, sizeof(a));
    a.resource_id = id;
    a.operation = operation;
    a.status = "Succeeded";
    a.level = "Informational";
    a.description = description;
    if (pgcmk_activity_add(pgcmk_db(), &a, &err))
        LOG_WARN("vault activity: %s", err.message);
    free(id);
}

/* ---- namespaces ----------------------------------------------------------------------------- */

int
pgcmk_hv_ns_exists(const char *ns)
{
    int found = 0;

    if (ns == NULL || *ns == '\0')
        return 1;
    pthread_rwlock_rdlock(&hv_lock);
    for (int i = 0; i < hv_n_ns && !found; i++)
        found = strcmp(hv_nss[i].path, ns) == 0;
    pthread_rwlock_unlock(&hv_lock);
    return found;
}

static json_t *
hv_ns_json(const struct hv_ns *n, const char *parent)
{
    return json_pack("{s:s, s:s, s:O}", "id", n->id, "path", n->path + strlen(parent),
                     "custom_metadata", n->meta);
}

/* ---- mounts --------------------------------------------------------------------------------- */

static void
hv_mount_free(struct pgcmk_hv_mount *m)
{
    if (m == NULL)
        return;
    json_decref(m->options);
    json_decref(m->config);
    free(m);
}

static void
hv_mount_copy(const struct pgcmk_hv_mount *m, struct pgcmk_hv_mount *out)
{
    *out = *m;
    json_incref(out->options);
    json_incref(out->config);
}

void
pgcmk_hv_mount_release(struct pgcmk_hv_mount *m)
{
    json_decref(m->options);
    json_decref(m->config);
    m->options = m->config = NULL;
}

int
pgcmk_hv_mount_find(const char *ns, const char *path, struct pgcmk_hv_mount *out)
{
    const struct pgcmk_hv_mount *best = NULL;
    size_t best_len = 0;
    const char *rest;

    pthread_rwlock_rdlock(&hv_lock);
    for (int i = 0; i < hv_n_mounts; i++) {
        const struct pgcmk_hv_mount *m = hv_mounts[i];
        size_t n = strlen(m->path);

        if (n > best_len && strcmp(m->ns, ns) == 0 && pgcmk_hv_mount_match(m->path, path, &rest)) {
            best = m;
            best_len = n;
        }
    }
    if (best)
        hv_mount_copy(best, out);
    pthread_rwlock_unlock(&hv_lock);
    return best != NULL;
}

void
pgcmk_hv_mount_each(void (*fn)(const struct pgcmk_hv_mount *m, void *arg), void *arg)
{
    pthread_rwlock_rdlock(&hv_lock);
    for (int i = 0; i < hv_n_mounts; i++)
        fn(hv_mounts[i], arg);
    pthread_rwlock_unlock(&hv_lock);
}

static json_t *
hv_mount_json(const struct pgcmk_hv_mount *m)
{
    return json_pack(
        "{s:s, s:O, s:s, s:b, s:b, s:O, s:s, s:s, s:s, s:b, s:s, s:s}", "accessor", m->accessor,
        "config", m->config, "description", m->description, "external_entropy_access", 0, "local",
        0, "options", m->options, "plugin_version", "", "running_plugin_version",
        strcmp(m->type, "kv") == 0 ? "v0.16.1+builtin" : "v" PGCMK_HV_VERSION "+builtin.vault",
        "running_sha256", "", "seal_wrap", 0, "type", m->type, "uuid", m->uuid);
}

static json_t *
hv_mount_row(const struct pgcmk_hv_mount *m)
{
    json_t *o = hv_mount_json(m);

    json_object_set_new(o, "ns", json_string(m->ns));
    json_object_set_new(o, "path", json_string(m->path));
    json_object_set_new(o, "is_auth", json_boolean(m->is_auth));
    json_object_set_new(o, "created_ms", json_integer(m->created_ms));
    return o;
}

static int
hv_mount_store(const struct pgcmk_hv_mount *m, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HV_MOUNT_PUT);
    json_t *row = hv_mount_row(m);
    char *text = json_dumps(row, JSON_COMPACT);
    int rc;

    json_decref(row);
    sqlite3_bind_text(st, 1, m->ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, m->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
    rc = pgcmk_db_each(db, st, NULL, NULL, "vault mount", err);
    free(text);
    return rc < 0 ? -1 : 0;
}

static void
hv_accessor(const char *type, char out[48])
{
    char u[37];

    pgcmk_uuid(u);
    snprintf(out, 48, "%s_%.8s", type, u);
}

/* A new mount (the lock not held). 0, or -1 with a Vault error in rs. */
static int
hv_mount_add(const char *ns, const char *path, const char *type_in, int is_auth,
             const char *description, const json_t *options, const json_t *config,
             struct pgcmk_hv_resp *rs, int quiet)
{
    struct pgcmk_hv_mount *m;
    const struct pgcmk_vbackend *be;
    char type[32];
    const char *rest;
    struct pgcmk_err err;
    int version = 0;

    snprintf(type, sizeof(type), "%s", type_in);
    if (strcmp(type, "kv-v2") == 0) {
        snprintf(type, sizeof(type), "kv");
        version = 2;
    } else if (strcmp(type, "kv-v1") == 0) {
        snprintf(type, sizeof(type), "kv");
        version = 1;
    }
    be = pgcmk_vbackend_find(type);
    if (be == NULL || be->is_auth != is_auth || strcmp(type, "system") == 0 ||
        (!is_auth && strcmp(type, "token") == 0))
        return pgcmk_hv_error(rs, 400, "plugin not found in the catalog: %s", type_in);
    m = pgcmk_xcalloc(1, sizeof(*m));
    snprintf(m->ns, sizeof(m->ns), "%s", ns);
    snprintf(m->path, sizeof(m->path), "%s", path);
    snprintf(m->type, sizeof(m->type), "%s", type);
    snprintf(m->description, sizeof(m->description), "%s", description ? description : "");
    m->is_auth = is_auth;
    hv_accessor(is_auth ? "auth_" : type, m->accessor);
    if (is_auth) {
        char tail[9];

        snprintf(tail, sizeof(tail), "%.8s", m->accessor + 6);
        snprintf(m->accessor, sizeof(m->accessor), "auth_%s_%s", type, tail);
    }
    pgcmk_uuid(m->uuid);
    m->created_ms = pgcmk_clock_now();
    m->backend = be;
    m->options = json_is_object(options) ? json_deep_copy(options) : json_object();
    if (version == 0 && strcmp(type, "kv") == 0) {
        json_t *v = json_object_get(m->options, "version");

        version = v && json_is_string(v) ? atoi(json_string_value(v))
                  : json_is_integer(v)   ? (int)json_integer_value(v)
                  : be->default_version  ? be->default_version
                                         : 1;
        if (version != 1 && version != 2) {
            pgcmk_hv_error(rs, 400, "invalid version specified: %s",
                           v && json_is_string(v) ? json_string_value(v) : "?");
            hv_mount_free(m); /* after the message: v is inside m->options */
            return -1;
        }
    }
    if (version) {
        char vs[4];

        snprintf(vs, sizeof(vs), "%d", version);
        json_object_set_new(m->options, "version", json_string(vs));
    }
    m->config = json_pack("{s:I, s:I, s:b}", "default_lease_ttl", (json_int_t)0, "max_lease_ttl",
                          (json_int_t)0, "force_no_cache", 0);
    if (json_is_object(config)) {
        const char *k;
        json_t *v;

        json_object_foreach((json_t *)config, k, v) {
            int64_t s;

            if ((strcmp(k, "default_lease_ttl") == 0 || strcmp(k, "max_lease_ttl") == 0)) {
                if (pgcmk_hv_duration(v, &s)) {
                    hv_mount_free(m);
                    return pgcmk_hv_error(rs, 400, "unable to parse %s: invalid duration", k);
                }
                json_object_set_new(m->config, k, json_integer(s));
            } else if (strcmp(k, "force_no_cache") == 0) {
                json_object_set_new(m->config, k, json_boolean(json_is_true(v)));
            }
        }
    }
    pthread_mutex_lock(&hv_write_mu);
    pthread_rwlock_rdlock(&hv_lock);
    for (int i = 0; i < hv_n_mounts; i++) {
        const struct pgcmk_hv_mount *o = hv_mounts[i];

        if (strcmp(o->ns, ns) == 0 && (pgcmk_hv_mount_match(o->path, path, &rest) ||
                                       pgcmk_hv_mount_match(path, o->path, &rest))) {
            int same = strcmp(o->path, path) == 0;

            pthread_rwlock_unlock(&hv_lock);
            pthread_mutex_unlock(&hv_write_mu);
            if (same) {
                hv_mount_free(m);
                return pgcmk_hv_error(rs, 400, "path is already in use at %s", path);
            }
            pgcmk_hv_error(rs, 400, "existing mount at %s", o->path);
            hv_mount_free(m);
            return -1;
        }
    }
    if (hv_n_mounts == HV_MAX_MOUNTS) {
        pthread_rwlock_unlock(&hv_lock);
        pthread_mutex_unlock(&hv_write_mu);
        hv_mount_free(m);
        return pgcmk_hv_error(rs, 400, "too many mounts");
    }
    pthread_rwlock_unlock(&hv_lock);
    if ((be->on_enable && be->on_enable(pgcmk_db(), m, &err)) || hv_mount_store(m, &err)) {
        pthread_mutex_unlock(&hv_write_mu);
        hv_mount_free(m);
        return pgcmk_hv_error(rs, 400, "%s", err.message);
    }
    pthread_rwlock_wrlock(&hv_lock);
    hv_mounts[hv_n_mounts++] = m;
    pthread_rwlock_unlock(&hv_lock);
    pthread_mutex_unlock(&hv_write_mu);
    if (!quiet) {
        char *d = pgcmk_xasprintf("%s %s enabled at %s%s", m->type,
                                  is_auth ? "auth method" : "secrets engine", ns, path);

        hv_activity(ns, path, "pgcmk.Vault/mounts/write", d);
        free(d);
    }
    return 0;
}

/* Disables ns+path: 1 removed, 0 absent. */
static int
hv_mount_remove(const char *ns, const char *path)
{
    struct pgcmk_hv_mount *m = NULL;
    struct pgcmk_err err;
    struct pgcmk_event ev;

    pthread_mutex_lock(&hv_write_mu);
    pthread_rwlock_wrlock(&hv_lock);
    for (int i = 0; i < hv_n_mounts; i++)
        if (strcmp(hv_mounts[i]->ns, ns) == 0 && strcmp(hv_mounts[i]->path, path) == 0) {
            m = hv_mounts[i];
            hv_mounts[i] = hv_mounts[--hv_n_mounts];
            break;
        }
    pthread_rwlock_unlock(&hv_lock);
    pthread_mutex_unlock(&hv_write_mu);
    if (m == NULL)
        return 0;
    if (m->backend->on_disable)
        m->backend->on_disable(pgcmk_db(), m);
    {
        struct pgcmk_db *db = pgcmk_db();
        sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HV_MOUNT_DELETE);

        sqlite3_bind_text(st, 1, m->ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, m->path, -1, SQLITE_STATIC);
        if (pgcmk_db_each(db, st, NULL, NULL, "vault mount", &err) < 0)
            LOG_WARN("vault mount delete: %s", err.message);
    }
    memset(&ev, 0, sizeof(ev));
    ev.kind = PGCMK_EV_HV_MOUNT_DISABLED;
    ev.resource_id = m->ns;
    ev.key = m->path;
    ev.object_id = m->path;
    pgcmk_events_publish(&ev);
    {
        char *d = pgcmk_xasprintf("%s %s disabled at %s%s", m->type,
                                  m->is_auth ? "auth method" : "secrets engine", m->ns, m->path);

        hv_activity(m->ns, m->path, "pgcmk.Vault/mounts/delete", d);
        free(d);
    }
    hv_mount_free(m);
    return 1;
}

/* ---- load ----------------------------------------------------------------------------------- */

static int
hv_load_ns_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct hv_ns *n;

    PGCMK_UNUSED(arg);
    PGCMK_UNUSED(err);
    if (hv_n_ns == HV_MAX_NS)
        return 1;
    n = &hv_nss[hv_n_ns++];
    snprintf(n->path, sizeof(n->path), "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(n->id, sizeof(n->id), "%s", (const char *)sqlite3_column_text(st, 1));
    n->meta = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
    if (n->meta == NULL)
        n->meta = json_object();
    n->created_ms = sqlite3_column_int64(st, 3);
    return 0;
}

static int
hv_load_mount_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    json_t *o = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
    struct pgcmk_hv_mount *m;
    const struct pgcmk_vbackend *be;

    PGCMK_UNUSED(arg);
    PGCMK_UNUSED(err);
    if (o == NULL || hv_n_mounts == HV_MAX_MOUNTS)
        return json_decref(o), 0;
    be = pgcmk_vbackend_find(json_string_value(json_object_get(o, "type")) ?: "");
    if (be == NULL) {
        LOG_WARN("vault mount %s: no backend for type %s",
                 json_string_value(json_object_get(o, "path")),
                 json_string_value(json_object_get(o, "type")));
        json_decref(o);
        return 0;
    }
    m = pgcmk_xcalloc(1, sizeof(*m));
    snprintf(m->ns, sizeof(m->ns), "%s", json_string_value(json_object_get(o, "ns")) ?: "");
    snprintf(m->path, sizeof(m->path), "%s", json_string_value(json_object_get(o, "path")) ?: "");
    snprintf(m->type, sizeof(m->type), "%s", be->type);
    snprintf(m->accessor, sizeof(m->accessor), "%s",
             json_string_value(json_object_get(o, "accessor")) ?: "");
    snprintf(m->uuid, sizeof(m->uuid), "%s", json_string_value(json_object_get(o, "uuid")) ?: "");
    snprintf(m->description, sizeof(m->description), "%s",
             json_string_value(json_object_get(o, "description")) ?: "");
    m->is_auth = json_is_true(json_object_get(o, "is_auth"));
    m->created_ms = json_integer_value(json_object_get(o, "created_ms"));
    m->options = json_incref(json_object_get(o, "options"));
    m->config = json_incref(json_object_get(o, "config"));
    if (!json_is_object(m->options)) {
        json_decref(m->options);
        m->options = json_object();
    }
    if (!json_is_object(m->config)) {
        json_decref(m->config);
        m->config = json_object();
    }
    m->backend = be;
    hv_mounts[hv_n_mounts++] = m;
    json_decref(o);
    return 0;
}

int
hv_state_load(void)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    char *v = NULL;
    int n;

    pgcmk_uuid(hv_cluster_id);
    if (pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_HV_NS_LIST), hv_load_ns_row, NULL,
                      "vault namespaces", &err) < 0 ||
        (n = pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_HV_MOUNT_LIST), hv_load_mount_row, NULL,
                           "vault mounts", &err)) < 0) {
        LOG_ERR("vault: %s", err.message);
        return -1;
    }
    if (pgcmk_store_setting_get("vault.sealed", &v) == 0) {
        hv_is_sealed = v && strcmp(v, "1") == 0;
        free(v);
    }
    if (pgcmk_store_setting_get("vault.dev_layout", &v) == 0) {
        free(v);
    } else {
        /* the dev layout: secret/ as KV v2 (when the kv row is there) */
        struct pgcmk_hv_resp rs;
        json_t *opt = json_pack("{s:s}", "version", "2");

        memset(&rs, 0, sizeof(rs));
        /* without a kv row (not registered yet), the next start tries again */
        if (pgcmk_vbackend_find("kv")) {
            if (hv_mount_add("", "secret/", "kv", 0, "key/value secret storage", opt, NULL, &rs, 1))
                LOG_WARN("vault: no secret/ mount");
            else if (pgcmk_store_setting_put("vault.dev_layout", "1", &err))
                LOG_WARN("vault: %s", err.message);
        }
        json_decref(opt);
        json_decref(rs.errors);
    }
    return 0;
}

void
hv_state_free(void)
{
    pthread_rwlock_wrlock(&hv_lock);
    for (int i = 0; i < hv_n_mounts; i++)
        hv_mount_free(hv_mounts[i]);
    hv_n_mounts = 0;
    for (int i = 0; i < hv_n_ns; i++)
        json_decref(hv_nss[i].meta);
    hv_n_ns = 0;
    pthread_rwlock_unlock(&hv_lock);
}

/* ---- sys/health, seal ----------------------------------------------------------------------- */

static int
hv_query_code(const struct pgcmk_hv_req *rq, const char *name, int dflt)
{
    const char *v = pgcmk_req_query(rq->http, name);

    if (v && *v) {
        char *end;
        long c = strtol(v, &end, 10);

        if (*end == '\0' && c >= 100 && c <= 599)
            return (int)c;
    }
    return dflt;
}

static int
hv_health(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs)
{
    int sealed = pgcmk_hv_sealed();
    char ts[PGCMK_TIME_LEN];

    if (rq->op != PGCMK_HV_READ)
        return pgcmk_hv_bad_method(rs);
    pgcmk_time_format(pgcmk_clock_now(), ts);
    return pgcmk_hv_raw(
        rs, sealed ? hv_query_code(rq, "sealedcode", 503) : hv_query_code(rq, "activecode", 200),
        json_pack("{s:b, s:b, s:b, s:b, s:s, s:s, s:I, s:s, s:b, s:s, s:s}", "initialized", 1,
                  "sealed", sealed, "standby", 0, "performance_standby", 0,
                  "replication_performance_mode", "disabled", "replication_dr_mode", "disabled",
                  "server_time_utc", (json_int_t)(pgcmk_clock_now() / 1000), "version",
                  PGCMK_HV_VERSION, "enterprise", 0, "cluster_name", "vault-cluster-pgcmk",
                  "cluster_id", hv_cluster_id));
}

static json_t *
hv_seal_status_json(void)
{
    int sealed = pgcmk_hv_sealed();

    return json_pack("{s:s, s:b, s:b, s:i, s:i, s:i, s:s, s:s, s:s, s:b, s:s?, s:s?, s:b, "
                     "s:s}",
                     "type", "shamir", "initialized", 1, "sealed", sealed, "t", 1, "n", 1,
                     "progress", sealed ? (int)hv_unseal_progress : 0, "nonce", "", "version",
                     PGCMK_HV_VERSION, "build_date", "2024-01-01T00:00:00Z", "migration", 0,
                     "cluster_name", sealed ? NULL : "vault-cluster-pgcmk", "cluster_id",
                     sealed ? NULL : hv_cluster_id, "recovery_seal", 0, "storage_type", "pgcmk");
}

static void
hv_seal_set(int sealed)
{
    struct pgcmk_err err;
    struct pgcmk_event ev;

    if (atomic_exchange(&hv_is_sealed, sealed) == sealed)
        return;
    hv_unseal_progress = 0;
    if (pgcmk_store_setting_put("vault.sealed", sealed ? "1" : "0", &err))
        LOG_WARN("vault seal: %s", err.message);
    memset(&ev, 0, sizeof(ev));
    ev.kind = sealed ? PGCMK_EV_HV_SEALED : PGCMK_EV_HV_UNSEALED;
    ev.resource_id = "";
    pgcmk_events_publish(&ev);
    hv_activity("", "", sealed ? "pgcmk.Vault/seal/action" : "pgcmk.Vault/unseal/action",
                sealed ? "Vault sealed" : "Vault unsealed");
}

static int
hv_unseal(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs)
{
    char kb[256], rb[16];
    const char *key = pgcmk_hv_field(rq, "key", kb, sizeof(kb));
    const char *reset = pgcmk_hv_field(rq, "reset", rb, sizeof(rb));

    if (rq->op != PGCMK_HV_WRITE)
        return pgcmk_hv_bad_method(rs);
    if (reset && strcmp(reset, "true") == 0) {
        hv_unseal_progress = 0;
        return pgcmk_hv_raw(rs, 200, hv_seal_status_json());
    }
    if (key == NULL || *key == '\0')
        return pgcmk_hv_error(rs, 400,
                              "'key' must be specified in request body as JSON, or "
                              "'reset' set to true");
    if (!pgcmk_hv_sealed())
        return pgcmk_hv_raw(rs, 200, hv_seal_status_json());
    if (strcmp(key, PGCMK_HV_UNSEAL_KEY) != 0) {
        memset(kb, 0, sizeof(kb));
        return pgcmk_hv_error(rs, 400, "Unseal failed, invalid key");
    }
    memset(kb, 0, sizeof(kb));
    hv_seal_set(0);
    return pgcmk_hv_raw(rs, 200, hv_seal_status_json());
}

/* ---- sys/mounts, sys/auth ------------------------------------------------------------------- */

struct hv_list_ctx {
    const char *ns;
    int is_auth;
    json_t *out;
};

static void
hv_list_one(const struct pgcmk_hv_mount *m, void *arg)
{
    struct hv_list_ctx *c = arg;

    if (strcmp(m->ns, c->ns) == 0 && m->is_auth == c->is_auth)
        json_object_set_new(c->out, m->is_auth ? m->path + 5 : m->path, hv_mount_json(m));
}

static json_t *
hv_sys_entry(const char *type, const char *accessor, const char *desc)
{
    return json_pack("{s:s, s:{s:i, s:i, s:b}, s:s, s:b, s:b, s:n, s:s, s:s, s:s, s:b, s:s, s:s}",
                     "accessor", accessor, "config", "default_lease_ttl", 0, "max_lease_ttl", 0,
                     "force_no_cache", 0, "description", desc, "external_entropy_access", 0,
                     "local", 0, "options", "plugin_version", "", "running_plugin_version",
                     "v" PGCMK_HV_VERSION "+builtin.vault", "running_sha256", "", "seal_wrap", 0,
                     "type", type, "uuid", hv_cluster_id);
}

static int
hv_mounts_list(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs, int is_auth)
{
    struct hv_list_ctx c = {rq->ns, is_auth, json_object()};
    json_t *body, *env;

    pgcmk_hv_mount_each(hv_list_one, &c);
    if (is_auth)
        json_object_set_new(c.out, "token/",
                            hv_sys_entry("token", "auth_token_pgcmk", "token based credentials"));
    else
        json_object_set_new(
            c.out, "sys/",
            hv_sys_entry("system", "system_pgcmk",
                         "system endpoints used for control, policy and debugging"));
    /* Vault answers the table both at the top level (older clients) and as data */
    body = json_deep_copy(c.out);
    env = json_pack("{s:s, s:s, s:b, s:i, s:o, s:n, s:n, s:n}", "request_id", rq->http->request_id,
                    "lease_id", "", "renewable", 0, "lease_duration", 0, "data", c.out, "wrap_info",
                    "warnings", "auth");
    json_object_update(body, env);
    json_decref(env);
    return pgcmk_hv_raw(rs, 200, body);
}

#define HV_UI_MOUNTS "internal/ui/mounts"
#define HV_UI_PREFLIGHT                                                                            \
    "preflight capability check returned 403, please ensure client's policies grant access to "    \
    "path "

/* ---- sys/internal/ui/mounts: what `vault kv` asks first (the mount and its KV version) ------- */

/* The token may see a mount when its policies grant anything under it (Vault's hasMountAccess). */
static int
hv_ui_mount_visible(const struct pgcmk_hv_req *rq, const struct pgcmk_hv_mount *m)
{
    const struct pgcmk_hv_token *t = rq->token;
    const char *pol[64];
    char path[PGCMK_HV_NS_MAX + PGCMK_HV_PATH_MAX];
    int n = 0;

    if (t == NULL || t->root)
        return t != NULL;
    for (size_t i = 0; i < json_array_size(t->policies) && n < 64; i++)
        pol[n++] = json_string_value(json_array_get(t->policies, i));
    snprintf(path, sizeof(path), "%s%s", m->ns + strlen(t->ns), m->path);
    return pgcmk_vacl_mount_access(t->ns, pol, n, path);
}

struct hv_ui_ctx {
    const struct pgcmk_hv_req *rq;
    json_t *secret, *auth;
};

static void
hv_ui_one(const struct pgcmk_hv_mount *m, void *arg)
{
    struct hv_ui_ctx *c = arg;

    if (strcmp(m->ns, c->rq->ns) == 0 && hv_ui_mount_visible(c->rq, m))
        json_object_set_new(m->is_auth ? c->auth : c->secret, m->is_auth ? m->path + 5 : m->path,
                            hv_mount_json(m));
}

static int
hv_ui_mounts(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs, const char *path)
{
    struct pgcmk_hv_mount m;
    json_t *d;

    if (rq->op != PGCMK_HV_READ)
        return pgcmk_hv_bad_method(rs);
    if (*path == '\0') {
        struct hv_ui_ctx c = {rq, json_object(), json_object()};

        pgcmk_hv_mount_each(hv_ui_one, &c);
        return pgcmk_hv_data(rs, json_pack("{s:o, s:o}", "secret", c.secret, "auth", c.auth));
    }
    if (!pgcmk_hv_mount_find(rq->ns, path, &m))
        return pgcmk_hv_error(rs, 403, HV_UI_PREFLIGHT "\"%.200s/\"", path);
    if (!hv_ui_mount_visible(rq, &m)) {
        int rc = pgcmk_hv_error(rs, 403, HV_UI_PREFLIGHT "\"%s\"", m.path);

        pgcmk_hv_mount_release(&m);
        return rc;
    }
    d = hv_mount_json(&m);
    json_object_set_new(d, "path", json_string(m.path));
    pgcmk_hv_mount_release(&m);
    return pgcmk_hv_data(rs, d);
}

/* "secret", "/secret/", "a/b" -> "secret/" (0), or -1 for an empty or bad path. */
static int
hv_mount_path(const char *in, char *out, size_t cap)
{
    size_t n;

    while (*in == '/')
        in++;
    snprintf(out, cap, "%s", in);
    n = strlen(out);
    while (n && out[n - 1] == '/')
        out[--n] = '\0';
    if (n == 0 || n + 2 > cap || strstr(out, "..") || strstr(out, "//"))
        return -1;
    out[n++] = '/';
    out[n] = '\0';
    return 0;
}

static int
hv_reserved(const char *path)
{
    return strncmp(path, "sys/", 4) == 0 || strncmp(path, "auth/", 5) == 0 ||
           strncmp(path, "cubbyhole/", 10) == 0 || strncmp(path, "identity/", 9) == 0;
}

static int
hv_mount_tune_read(const struct pgcmk_hv_mount *m, struct pgcmk_hv_resp *rs)
{
    json_t *d = json_pack("{s:O, s:O, s:O, s:s, s:O}", "default_lease_ttl",
                          json_object_get(m->config, "default_lease_ttl"), "max_lease_ttl",
                          json_object_get(m->config, "max_lease_ttl"), "force_no_cache",
                          json_object_get(m->config, "force_no_cache"), "description",
                          m->description, "options", m->options);

    if (d == NULL)
        d = json_object();
    return pgcmk_hv_data(rs, d);
}

static int
hv_mount_tune(const char *ns, const char *path, const json_t *body, struct pgcmk_hv_resp *rs)
{
    struct pgcmk_hv_mount *m = NULL;
    json_t *config, *options;
    struct pgcmk_err err;
    const char *k;
    json_t *v;

    pthread_mutex_lock(&hv_write_mu);
    pthread_rwlock_wrlock(&hv_lock);
    for (int i = 0; i < hv_n_mounts && m == NULL; i++)
        if (strcmp(hv_mounts[i]->ns, ns) == 0 && strcmp(hv_mounts[i]->path, path) == 0)
            m = hv_mounts[i];
    if (m == NULL) {
        pthread_rwlock_unlock(&hv_lock);
        pthread_mutex_unlock(&hv_write_mu);
        return pgcmk_hv_error(rs, 400, "cannot tune '%s'", path);
    }
    config = json_deep_copy(m->config);
    options = json_deep_copy(m->options);
    if (body)
        json_object_foreach((json_t *)body, k, v) {
            int64_t s;

            if (strcmp(k, "default_lease_ttl") == 0 || strcmp(k, "max_lease_ttl") == 0) {
                if (pgcmk_hv_duration(v, &s)) {
                    pthread_rwlock_unlock(&hv_lock);
                    pthread_mutex_unlock(&hv_write_mu);
                    json_decref(config);
                    json_decref(options);
                    return pgcmk_hv_error(rs, 400, "unable to parse %s: invalid duration", k);
                }
                json_object_set_new(config, k, json_integer(s));
            } else if (strcmp(k, "options") == 0 && json_is_object(v)) {
                json_t *ver = json_object_get(v, "version");

                if (ver && strcmp(m->type, "kv") == 0) {
                    char vs[8];

                    snprintf(vs, sizeof(vs), "%lld",
                             json_is_string(ver) ? atoll(json_string_value(ver))
                                                 : (long long)json_integer_value(ver));
                    if (strcmp(vs, "1") != 0 && strcmp(vs, "2") != 0) {
                        pthread_rwlock_unlock(&hv_lock);
                        pthread_mutex_unlock(&hv_write_mu);
                        json_decref(config);
                        json_decref(options);
                        return pgcmk_hv_error(rs, 400, "invalid version specified");
                    }
                    if (strcmp(vs, "1") == 0 &&
                        strcmp(json_string_value(json_object_get(options, "version")) ?: "1",
                               "2") == 0) {
                        pthread_rwlock_unlock(&hv_lock);
                        pthread_mutex_unlock(&hv_write_mu);
                        json_decref(config);
                        json_decref(options);
                        return pgcmk_hv_error(rs, 400, "cannot downgrade mount from version 2");
                    }
                    json_object_set_new(options, "version", json_string(vs));
                }
            } else if (strcmp(k, "description") == 0 && json_is_string(v)) {
                snprintf(m->description, sizeof(m->description), "%s", json_string_value(v));
            }
        }
    json_decref(m->config);
    json_decref(m->options);
    m->config = config;
    m->options = options;
    pthread_rwlock_unlock(&hv_lock);
    /* m stays: it changes or goes only under hv_write_mu */
    if (hv_mount_store(m, &err))
        LOG_WARN("vault tune: %s", err.message);
    pthread_mutex_unlock(&hv_write_mu);
    return pgcmk_hv_no_content(rs);
}

static int
hv_sys_mounts(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs, const char *sub, int is_auth)
{
    char path[PGCMK_HV_PATH_MAX], full[PGCMK_HV_PATH_MAX + 8], tb[64], db[256];
    const char *tune, *type, *desc;
    struct pgcmk_hv_mount m;
    char *base;
    int tuning = 0;

    memset(&m, 0, sizeof(m));
    if (*sub == '\0') {
        if (rq->op != PGCMK_HV_READ)
            return pgcmk_hv_bad_method(rs);
        return hv_mounts_list(rq, rs, is_auth);
    }
    base = pgcmk_xstrdup(sub);
    tune = strstr(base, "/tune");
    if (tune && tune[5] == '\0') {
        base[tune - base] = '\0';
        tuning = 1;
    }
    if (hv_mount_path(base, path, sizeof(path))) {
        free(base);
        return pgcmk_hv_error(rs, 400, "invalid path");
    }
    free(base);
    snprintf(full, sizeof(full), "%s%s", is_auth ? "auth/" : "", path);
    if (tuning) {
        if (rq->op == PGCMK_HV_READ) {
            if (!pgcmk_hv_mount_find(rq->ns, full, &m) || strcmp(m.path, full) != 0) {
                if (m.options)
                    pgcmk_hv_mount_release(&m);
                return pgcmk_hv_error(rs, 400, "cannot fetch sysview for path \"%s\"", full);
            }
            hv_mount_tune_read(&m, rs);
            pgcmk_hv_mount_release(&m);
            return 0;
        }
        if (rq->op != PGCMK_HV_WRITE)
            return pgcmk_hv_bad_method(rs);
        return hv_mount_tune(rq->ns, full, rq->body, rs);
    }
    switch (rq->op) {
    case PGCMK_HV_READ:
        memset(&m, 0, sizeof(m));
        if (!pgcmk_hv_mount_find(rq->ns, full, &m) || strcmp(m.path, full) != 0) {
            if (m.options)
                pgcmk_hv_mount_release(&m);
            return pgcmk_hv_error(
                rs, 400, is_auth ? "No auth engine at %s" : "No secret engine mount at %s", path);
        }
        pgcmk_hv_data(rs, hv_mount_json(&m));
        pgcmk_hv_mount_release(&m);
        return 0;
    case PGCMK_HV_WRITE:
        if (hv_reserved(full) && !is_auth)
            return pgcmk_hv_error(rs, 400, "cannot mount under reserved path '%s'", path);
        if (is_auth && strcmp(path, "token/") == 0)
            return pgcmk_hv_error(rs, 400, "token credential backend cannot be instantiated");
        type = pgcmk_hv_field(rq, "type", tb, sizeof(tb));
        if (type == NULL || *type == '\0')
            return pgcmk_hv_error(rs, 400, "backend type must be specified as a string");
        desc = pgcmk_hv_field(rq, "description", db, sizeof(db));
        if (hv_mount_add(rq->ns, full, type, is_auth, desc,
                         rq->body ? json_object_get(rq->body, "options") : NULL,
                         rq->body ? json_object_get(rq->body, "config") : NULL, rs, 0))
            return -1;
        return pgcmk_hv_no_content(rs);
    case PGCMK_HV_DELETE:
        hv_mount_remove(rq->ns, full);
        return pgcmk_hv_no_content(rs);
    default:
        return pgcmk_hv_bad_method(rs);
    }
}

/* ---- sys/namespaces ------------------------------------------------------------------------- */

/* Vault's answer to a read or list of nothing: 404 {"errors":[]}. */
static int
hv_not_found(struct pgcmk_hv_resp *rs)
{
    json_decref(rs->errors);
    rs->errors = json_array();
    rs->status = 404;
    return -1;
}

static int
hv_sys_namespaces(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs, const char *sub)
{
    char rel[PGCMK_HV_NS_MAX], full[PGCMK_HV_NS_MAX * 2];
    struct pgcmk_err err;

    if (*sub == '\0') {
        json_t *keys, *info;

        if (rq->op != PGCMK_HV_LIST)
            return pgcmk_hv_bad_method(rs);
        keys = json_array();
        info = json_object();
        pthread_rwlock_rdlock(&hv_lock);
        for (int i = 0; i < hv_n_ns; i++) {
            const char *p = hv_nss[i].path;
            size_t pl = strlen(rq->ns);

            /* direct children of the request's namespace */
            if (strncmp(p, rq->ns, pl) == 0 && strlen(p) > pl && strchr(p + pl, '/') &&
                strchr(p + pl, '/')[1] == '\0') {
                json_array_append_new(keys, json_string(p + pl));
                json_object_set_new(info, p + pl, hv_ns_json(&hv_nss[i], rq->ns));
            }
        }
        pthread_rwlock_unlock(&hv_lock);
        if (json_array_size(keys) == 0) {
            json_decref(keys);
            json_decref(info);
            return hv_not_found(rs);
        }
        return pgcmk_hv_data(rs, json_pack("{s:o, s:o}", "keys", keys, "key_info", info));
    }
    if (pgcmk_hv_ns_norm(sub, rel) || *rel == '\0' || strchr(rel, '/')[1] != '\0')
        return pgcmk_hv_error(rs, 400, "invalid namespace path");
    snprintf(full, sizeof(full), "%s%s", rq->ns, rel);
    if (strlen(full) >= PGCMK_HV_NS_MAX)
        return pgcmk_hv_error(rs, 400, "namespace path too long");
    switch (rq->op) {
    case PGCMK_HV_READ:
        pthread_rwlock_rdlock(&hv_lock);
        for (int i = 0; i < hv_n_ns; i++)
            if (strcmp(hv_nss[i].path, full) == 0) {
                json_t *d = hv_ns_json(&hv_nss[i], rq->ns);

                pthread_rwlock_unlock(&hv_lock);
                return pgcmk_hv_data(rs, d);
            }
        pthread_rwlock_unlock(&hv_lock);
        return hv_not_found(rs);
    case PGCMK_HV_WRITE:
    case PGCMK_HV_PATCH: {
        struct hv_ns *n;
        json_t *meta = rq->body ? json_object_get(rq->body, "custom_metadata") : NULL;
        struct pgcmk_db *db = pgcmk_db();
        sqlite3_stmt *st;
        char *mtext;
        json_t *d;

        pthread_mutex_lock(&hv_write_mu);
        pthread_rwlock_rdlock(&hv_lock);
        for (int i = 0; i < hv_n_ns; i++)
            if (strcmp(hv_nss[i].path, full) == 0) {
                d = hv_ns_json(&hv_nss[i], rq->ns);
                pthread_rwlock_unlock(&hv_lock);
                pthread_mutex_unlock(&hv_write_mu);
                return pgcmk_hv_data(rs, d);
            }
        pthread_rwlock_unlock(&hv_lock);
        if (hv_n_ns == HV_MAX_NS) {
            pthread_mutex_unlock(&hv_write_mu);
            return pgcmk_hv_error(rs, 400, "too many namespaces");
        }
        /* the slot past the end: readers do not look at it, writers hold hv_write_mu */
        n = &hv_nss[hv_n_ns];
        memset(n, 0, sizeof(*n));
        snprintf(n->path, sizeof(n->path), "%.*s", (int)sizeof(n->path) - 1, full);
        {
            char u[37];

            pgcmk_uuid(u);
            for (int i = 0, j = 0; u[i] && j < 5; i++)
                if (u[i] != '-')
                    n->id[j++] = u[i];
        }
        n->meta = json_is_object(meta) ? json_deep_copy(meta) : json_object();
        n->created_ms = pgcmk_clock_now();
        mtext = json_dumps(n->meta, JSON_COMPACT);
        st = pgcmk_db_stmt(db, PGCMK_STMT_HV_NS_PUT);
        sqlite3_bind_text(st, 1, n->path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, n->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, mtext, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, n->created_ms);
        if (pgcmk_db_each(db, st, NULL, NULL, "vault namespace", &err) < 0) {
            free(mtext);
            json_decref(n->meta);
            pthread_mutex_unlock(&hv_write_mu);
            return pgcmk_hv_error(rs, 500, "%s", err.message);
        }
        free(mtext);
        d = hv_ns_json(n, rq->ns);
        pthread_rwlock_wrlock(&hv_lock);
        hv_n_ns++;
        pthread_rwlock_unlock(&hv_lock);
        pthread_mutex_unlock(&hv_write_mu);
        return pgcmk_hv_data(rs, d);
    }
    case PGCMK_HV_DELETE: {
        struct pgcmk_db *db = pgcmk_db();
        sqlite3_stmt *st;
        struct pgcmk_hv_mount *gone[HV_MAX_MOUNTS];
        int n_gone = 0, w = 0;

        pthread_mutex_lock(&hv_write_mu);
        pthread_rwlock_wrlock(&hv_lock);
        for (int i = 0; i < hv_n_ns; i++) {
            if (strncmp(hv_nss[i].path, full, strlen(full)) == 0)
                json_decref(hv_nss[i].meta);
            else
                hv_nss[w++] = hv_nss[i];
        }
        hv_n_ns = w;
        w = 0;
        for (int i = 0; i < hv_n_mounts; i++) {
            if (strncmp(hv_mounts[i]->ns, full, strlen(full)) == 0)
                gone[n_gone++] = hv_mounts[i];
            else
                hv_mounts[w++] = hv_mounts[i];
        }
        hv_n_mounts = w;
        pthread_rwlock_unlock(&hv_lock);
        pthread_mutex_unlock(&hv_write_mu);
        for (int i = 0; i < n_gone; i++) {
            struct pgcmk_event ev;

            if (gone[i]->backend->on_disable)
                gone[i]->backend->on_disable(db, gone[i]);
            memset(&ev, 0, sizeof(ev));
            ev.kind = PGCMK_EV_HV_MOUNT_DISABLED;
            ev.resource_id = gone[i]->ns;
            ev.key = gone[i]->path;
            ev.object_id = gone[i]->path;
            pgcmk_events_publish(&ev);
            hv_mount_free(gone[i]);
        }
        st = pgcmk_db_stmt(db, PGCMK_STMT_HV_NS_DELETE);
        sqlite3_bind_text(st, 1, full, -1, SQLITE_STATIC);
        if (pgcmk_db_each(db, st, NULL, NULL, "vault namespace", &err) < 0)
            LOG_WARN("vault namespace delete: %s", err.message);
        st = pgcmk_db_stmt(db, PGCMK_STMT_HV_MOUNT_DELETE_NS);
        sqlite3_bind_text(st, 1, full, -1, SQLITE_STATIC);
        if (pgcmk_db_each(db, st, NULL, NULL, "vault namespace", &err) < 0)
            LOG_WARN("vault namespace delete: %s", err.message);
        if (pgcmk_vacl_policy_delete_ns(full, &err) < 0)
            LOG_WARN("vault namespace delete: %s", err.message);
        hv_tokens_drop_ns(full);
        return pgcmk_hv_no_content(rs);
    }
    default:
        return pgcmk_hv_bad_method(rs);
    }
}

/* ---- the sys/ backend ----------------------------------------------------------------------- */

static unsigned
hv_sys_capability(struct pgcmk_hv_req *rq)
{
    const char *r = rq->rest;
    unsigned cap;

    /* a token, no capability: the answer shows only the mounts its policies reach */
    if (strncmp(r, HV_UI_MOUNTS, sizeof(HV_UI_MOUNTS) - 1) == 0 &&
        (r[sizeof(HV_UI_MOUNTS) - 1] == '\0' || r[sizeof(HV_UI_MOUNTS) - 1] == '/'))
        return PGCMK_HV_CAP_NONE;

    switch (rq->op) {
    case PGCMK_HV_READ:
        cap = PGCMK_HV_CAP_READ;
        break;
    case PGCMK_HV_LIST:
        cap = PGCMK_HV_CAP_LIST;
        break;
    case PGCMK_HV_DELETE:
        cap = PGCMK_HV_CAP_DELETE;
        break;
    default:
        cap = PGCMK_HV_CAP_UPDATE;
    }
    /* sudo paths (Vault's PathsSpecial.Root of the system backend) */
    if (strcmp(r, "seal") == 0 || strcmp(r, "step-down") == 0 ||
        (strncmp(r, "auth", 4) == 0 && rq->op != PGCMK_HV_READ) ||
        (strncmp(r, "mounts", 6) == 0 && rq->op != PGCMK_HV_READ))
        cap |= PGCMK_HV_CAP_SUDO;
    return cap;
}

static int
hv_sys_handle(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs)
{
    const char *r = rq->rest;

    if (strcmp(r, "health") == 0)
        return hv_health(rq, rs);
    if (strcmp(r, "seal-status") == 0) {
        if (rq->op != PGCMK_HV_READ)
            return pgcmk_hv_bad_method(rs);
        return pgcmk_hv_raw(rs, 200, hv_seal_status_json());
    }
    if (strcmp(r, "unseal") == 0)
        return hv_unseal(rq, rs);
    if (strcmp(r, "seal") == 0) {
        if (rq->op != PGCMK_HV_WRITE)
            return pgcmk_hv_bad_method(rs);
        if (*rq->ns)
            return pgcmk_hv_error(rs, 400, "operation unavailable in namespaces");
        hv_seal_set(1);
        return pgcmk_hv_no_content(rs);
    }
    if (strcmp(r, "leader") == 0) {
        if (rq->op != PGCMK_HV_READ)
            return pgcmk_hv_bad_method(rs);
        return pgcmk_hv_raw(rs, 200,
                            json_pack("{s:b, s:b, s:s, s:s}", "ha_enabled", 0, "is_self", 1,
                                      "leader_address", "", "leader_cluster_address", ""));
    }
    if (strcmp(r, "init") == 0) {
        if (rq->op != PGCMK_HV_READ)
            return pgcmk_hv_bad_method(rs);
        return pgcmk_hv_raw(rs, 200, json_pack("{s:b}", "initialized", 1));
    }
    if (strcmp(r, "mounts") == 0 || strncmp(r, "mounts/", 7) == 0)
        return hv_sys_mounts(rq, rs, r[6] ? r + 7 : "", 0);
    if (strcmp(r, HV_UI_MOUNTS) == 0 || strncmp(r, HV_UI_MOUNTS "/", sizeof(HV_UI_MOUNTS)) == 0)
        return hv_ui_mounts(rq, rs, r[sizeof(HV_UI_MOUNTS) - 1] ? r + sizeof(HV_UI_MOUNTS) : "");
    if (strcmp(r, "auth") == 0 || strncmp(r, "auth/", 5) == 0)
        return hv_sys_mounts(rq, rs, r[4] ? r + 5 : "", 1);
    if (strcmp(r, "namespaces") == 0 || strncmp(r, "namespaces/", 11) == 0)
        return hv_sys_namespaces(rq, rs, r[10] ? r + 11 : "");
    return pgcmk_hv_error(rs, 404, PGCMK_HV_E_UNSUPPORTED);
}

const struct pgcmk_vbackend hv_system_backend = {
    "system", 0, hv_sys_capability, hv_sys_handle, NULL, NULL, NULL, 0,
};
