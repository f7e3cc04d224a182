/* kv.c - the Vault API's KV v1 and KV v2 secrets engines (see include/pgcmk/vkv.h).
 *
 * KV v2 keeps one metadata row per key (vault_kv_meta) and one row per version
 * (vault_kv_versions, the value sealed); reads are one prepared join, writes one transaction
 * whose events (PGCMK_EV_HV_SECRET_*) go out after COMMIT. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgcmk/clock.h"
#include "pgcmk/core.h"
#include "pgcmk/events.h"
#include "pgcmk/log.h"
#include "pgcmk/monitor.h"
#include "pgcmk/store.h"
#include "pgcmk/vkv.h"
#include "pgcmk/wellknown.h"

#define VKV_DEFAULT_MAX_VERSIONS 10
#define VKV_MAX_PATH             1024

/* ---- pure helpers ---------------------------------------------------------------------- */

const char *
pgcmk_vkv_cas_check(int required, int64_t cas, int64_t current_version)
{
    if (cas < 0)
        return required ? "check-and-set parameter required for this call" : NULL;
    if (cas != current_version)
        return "check-and-set parameter did not match the current version";
    return NULL;
}

int64_t
pgcmk_vkv_keep_from(int64_t current, int64_t max_versions)
{
    int64_t m = max_versions > 0 ? max_versions : VKV_DEFAULT_MAX_VERSIONS;

    return current - m + 1 > 1 ? current - m + 1 : 1;
}

int
pgcmk_vkv_duration_parse(const char *s, int64_t *ms)
{
    double total = 0;
    const char *p = s;

    if (s == NULL || *s == '\0')
        return -1;
    if (strspn(s, "0123456789") == strlen(s)) {
        if (strlen(s) > 12)
            return -1;
        *ms = (int64_t)strtoll(s, NULL, 10) * 1000;
        return 0;
    }
    while (*p) {
        char *end;
        double v, unit;

        if (!isdigit((unsigned char)*p) && *p != '.')
            return -1;
        v = strtod(p, &end);
        if (end == p || v < 0 || v > 1e9 || strspn(p, "0123456789.") != (size_t)(end - p))
            return -1;
        p = end;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 'h') {
            unit = 3600e3;
            p++;
        } else if (*p == 'm') {
            unit = 60e3;
            p++;
        } else if (*p == 's') {
            unit = 1e3;
            p++;
        } else if (*p == 'd') {
            unit = 86400e3;
            p++;
        } else {
            return -1;
        }
        total += v * unit;
    }
    if (total > 1e15)
        return -1;
    *ms = (int64_t)total;
    return 0;
}

void
pgcmk_vkv_duration_format(int64_t ms, char *out, size_t cap)
{
    int64_t h = ms / 3600000, m = (ms / 60000) % 60, s = (ms / 1000) % 60, r = ms % 1000;
    char sec[32];

    if (ms <= 0) {
        snprintf(out, cap, "0s");
        return;
    }
    if (r) {
        snprintf(sec, sizeof(sec), "%" PRId64 ".%03" PRId64, s, r);
        size_t n = strlen(sec);
        while (n && sec[n - 1] == '0')
            sec[--n] = '\0';
    } else {
        snprintf(sec, sizeof(sec), "%" PRId64, s);
    }
    if (h)
        snprintf(out, cap, "%" PRId64 "h%" PRId64 "m%ss", h, m, sec);
    else if (m)
        snprintf(out, cap, "%" PRId64 "m%ss", m, sec);
    else
        snprintf(out, cap, "%ss", sec);
}

void
pgcmk_vkv_time_format(int64_t ms, char out[40])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0) {
        out[0] = '\0';
        return;
    }
    gmtime_r(&t, &tm);
    snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%03d000Z", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (int)(ms % 1000));
}

/* ---- answers --------------------------------------------------------------------------- */

static void
ans_error(struct pgcmk_vkv_ans *a, int status, const char *text)
{
    a->status = status;
    a->errors = json_array();
    if (text)
        json_array_append_new(a->errors, json_string(text));
}

static void
ans_data(struct pgcmk_vkv_ans *a, int status, json_t *data)
{
    a->status = status;
    a->data = data;
}

static void
ans_store_failed(struct pgcmk_vkv_ans *a, const struct pgcmk_err *err)
{
    int st = pgcmk_err_status(err->code);

    LOG_WARN("vaultapi kv: store: %s", err->message);
    ans_error(a, st >= 500 ? st : 500, st == 503 ? "busy, retry" : "internal error");
}

void
pgcmk_vkv_ans_release(struct pgcmk_vkv_ans *a)
{
    json_decref(a->data);
    json_decref(a->errors);
    a->data = a->errors = NULL;
}

static json_t *
jtime(int64_t ms)
{
    char t[40];

    pgcmk_vkv_time_format(ms, t);
    return json_string(t);
}

static char *
aad_of(const struct pgcmk_vkv_call *c, const char *path, int64_t version)
{
    return pgcmk_xasprintf("%s\n%s\n%s\n%" PRId64, c->ns ? c->ns : "", c->mount_uuid, path,
                           version);
}

/* The sealed JSON text of a secret (an object). */
static int
seal_json(const struct pgcmk_vkv_call *c, const char *path, int64_t version, const json_t *obj,
          unsigned char **out, size_t *out_len)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    char *aad = aad_of(c, path, version);
    int rc;

    if (text == NULL) {
        free(aad);
        return -1;
    }
    rc = pgcmk_store_seal(text, strlen(text), aad, out, out_len);
    pgcmk_secret_free(text, strlen(text));
    free(aad);
    return rc;
}

static json_t *
unseal_json(const struct pgcmk_vkv_call *c, const char *path, int64_t version, const void *blob,
            size_t len)
{
    char aad[VKV_MAX_PATH + 512]; /* the read path: no allocation for the aad */
    unsigned char *pt = NULL;
    size_t pt_len = 0;
    json_t *j;
    int n = snprintf(aad, sizeof(aad), "%s\n%s\n%s\n%" PRId64, c->ns ? c->ns : "", c->mount_uuid,
                     path, version);

    if (n < 0 || (size_t)n >= sizeof(aad) || blob == NULL ||
        pgcmk_store_unseal(blob, len, aad, &pt, &pt_len) != 0)
        return NULL;
    j = json_loadb((const char *)pt, pt_len, 0, NULL);
    pgcmk_secret_free(pt, pt_len);
    return j;
}

static void
announce(const struct pgcmk_vkv_call *c, enum pgcmk_event_kind kind, const char *path,
         int64_t version)
{
    struct pgcmk_event ev = {0};
    char key[VKV_MAX_PATH + 256], ver[24];

    snprintf(key, sizeof(key), "%s%s", c->mount_path ? c->mount_path : "", path);
    snprintf(ver, sizeof(ver), "%" PRId64, version);
    ev.kind = kind;
    ev.resource_id = c->ns ? c->ns : "";
    ev.key = key;
    ev.version = version > 0 ? ver : NULL;
    ev.object_id = c->mount_path;
    pgcmk_events_publish(&ev);
}

static int
activity(struct pgcmk_db *db, const struct pgcmk_vkv_call *c, const char *op, const char *path,
         const char *what, struct pgcmk_err *err)
{
    struct pgcmk_activity a = {0};
    char rid[VKV_MAX_PATH + 512];

    snprintf(rid, sizeof(rid), "/subscriptions/%s/providers/pgcmk.Vault/namespaces/%s%s%s",
             PGCMK_SUBSCRIPTION_ID, c->ns && *c->ns ? c->ns : "root/",
             c->mount_path ? c->mount_path : "", path);
    a.resource_id = rid;
    a.operation = op;
    a.status = "Succeeded";
    a.level = "Informational";
    a.caller = c->caller;
    a.description = what;
    a.method = c->op == PGCMK_VKV_DELETE ? "DELETE" : "POST";
    a.http_status = 204;
    return pgcmk_activity_add(db, &a, err);
}

/* ---- listing --------------------------------------------------------------------------- */

struct list_ctx {
    const char *prefix;
    size_t plen;
    json_t *keys;
};

static int
list_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct list_ctx *l = arg;
    const char *p = (const char *)sqlite3_column_text(st, 0);
    const char *rest, *slash;
    size_t n, cnt;
    json_t *last;

    (void)err;
    if (p == NULL || strncmp(p, l->prefix, l->plen) != 0)
        return 1; /* past the prefix's range */
    rest = p + l->plen;
    if (*rest == '\0')
        return 0;
    slash = strchr(rest, '/');
    n = slash ? (size_t)(slash - rest) + 1 : strlen(rest);
    cnt = json_array_size(l->keys);
    last = cnt ? json_array_get(l->keys, cnt - 1) : NULL;
    if (last && strlen(json_string_value(last)) == n &&
        strncmp(json_string_value(last), rest, n) == 0)
        return 0;
    json_array_append_new(l->keys, json_stringn(rest, n));
    return 0;
}

static void
list_keys(const struct pgcmk_vkv_call *c, enum pgcmk_stmt sid, const char *name,
          struct pgcmk_vkv_ans *a)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    struct list_ctx l;
    char prefix[VKV_MAX_PATH + 2];
    size_t n = strlen(name);
    sqlite3_stmt *st;

    pgcmk_err_clear(&err);
    snprintf(prefix, sizeof(prefix), "%s%s", name, n && name[n - 1] != '/' ? "/" : "");
    l.prefix = prefix;
    l.plen = strlen(prefix);
    l.keys = json_array();
    st = pgcmk_db_stmt(db, sid);
    sqlite3_bind_text(st, 1, c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, list_row, &l, "vault kv list", &err) < 0) {
        json_decref(l.keys);
        ans_store_failed(a, &err);
        return;
    }
    if (json_array_size(l.keys) == 0) {
        json_decref(l.keys);
        ans_error(a, 404, NULL);
        return;
    }
    ans_data(a, 200, json_pack("{s:o}", "keys", l.keys));
}

/* ---- KV v1 ----------------------------------------------------------------------------- */

struct kv1_tx {
    const struct pgcmk_vkv_call *c;
    const char *path;
    const json_t *value;
};

static int
kv1_put_tx(struct pgcmk_db *db, void *arg, struct pgcmk_err *err)
{
    struct kv1_tx *t = arg;
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    sqlite3_stmt *st;
    int rc;

    if (seal_json(t->c, t->path, 0, t->value, &sealed, &sealed_len) != 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "seal failed");
    st = pgcmk_db_stmt(db, PGCMK_STMT_VKV1_PUT);
    sqlite3_bind_text(st, 1, t->c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->path, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, sealed, (int)sealed_len, SQLITE_STATIC);
    rc = pgcmk_db_each(db, st, NULL, NULL, "vault kv1 put", err);
    free(sealed);
    if (rc < 0)
        return -1;
    announce(t->c, PGCMK_EV_HV_SECRET_CHANGED, t->path, 0);
    return 0;
}

static int
kv1_del_tx(struct pgcmk_db *db, void *arg, struct pgcmk_err *err)
{
    struct kv1_tx *t = arg;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_VKV1_DEL);
    int rc;

    sqlite3_bind_text(st, 1, t->c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->path, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, NULL, NULL, "vault kv1 delete", err) < 0)
        return -1;
    rc = sqlite3_changes(pgcmk_db_handle(db));
    if (rc > 0) {
        announce(t->c, PGCMK_EV_HV_SECRET_DELETED, t->path, 0);
        return activity(db, t->c, "pgcmk.Vault/secrets/delete", t->path, "KV secret deleted", err);
    }
    return 0;
}

static int
kv1_exists(const struct pgcmk_vkv_call *c, const char *path)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_VKV1_GET);
    int rc;

    sqlite3_bind_text(st, 1, c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    rc = pgcmk_db_step(db, st, "vault kv1 exists", &err);
    pgcmk_db_done(st);
    return rc == 1;
}

static void
kv1_call(const struct pgcmk_vkv_call *c, struct pgcmk_vkv_ans *a)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    struct kv1_tx t = {c, c->rel, NULL};
    sqlite3_stmt *st;
    json_t *v;
    int rc;

    pgcmk_err_clear(&err);
    if (c->op == PGCMK_VKV_LIST) {
        list_keys(c, PGCMK_STMT_VKV1_LIST, c->rel, a);
        return;
    }
    if (c->rel[0] == '\0' || c->rel[strlen(c->rel) - 1] == '/') {
        if (c->op == PGCMK_VKV_READ) {
            ans_error(a, 404, NULL);
            return;
        }
        ans_error(a, 405, "1 error occurred:\n\t* unsupported operation\n\n");
        return;
    }
    switch (c->op) {
    case PGCMK_VKV_READ:
        st = pgcmk_db_stmt(db, PGCMK_STMT_VKV1_GET);
        sqlite3_bind_text(st, 1, c->mount_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, c->rel, -1, SQLITE_STATIC);
        rc = pgcmk_db_step(db, st, "vault kv1 get", &err);
        if (rc < 0) {
            pgcmk_db_done(st);
            ans_store_failed(a, &err);
            return;
        }
        if (rc == 0) {
            pgcmk_db_done(st);
            ans_error(a, 404, NULL);
            return;
        }
        v = unseal_json(c, c->rel, 0, sqlite3_column_blob(st, 0),
                        (size_t)sqlite3_column_bytes(st, 0));
        pgcmk_db_done(st);
        if (v == NULL) {
            ans_error(a, 500, "internal error");
            return;
        }
        a->secret = 1;
        ans_data(a, 200, v);
        return;
    case PGCMK_VKV_WRITE:
        if (c->body == NULL || !json_is_object(c->body) || json_object_size(c->body) == 0) {
            ans_error(a, 400, "missing data fields");
            return;
        }
        t.value = c->body;
        if (pgcmk_db_tx(db, kv1_put_tx, &t, &err) != 0) {
            ans_store_failed(a, &err);
            return;
        }
        ans_data(a, 204, NULL);
        return;
    case PGCMK_VKV_DELETE:
        if (pgcmk_db_tx(db, kv1_del_tx, &t, &err) != 0) {
            ans_store_failed(a, &err);
            return;
        }
        ans_data(a, 204, NULL);
        return;
    default:
        ans_error(a, 405, "1 error occurred:\n\t* unsupported operation\n\n");
        return;
    }
}

/* ---- KV v2: metadata ------------------------------------------------------------------- */

struct kv_meta {
    int found;
    int64_t current, oldest, max_versions, delete_after_ms, created_ms, updated_ms;
    int cas_required;
    json_t *custom; /* object or NULL */
};

struct kv_config {
    int64_t max_versions, delete_after_ms;
    int cas_required;
};

static int
meta_load(struct pgcmk_db *db, const struct pgcmk_vkv_call *c, const char *path, struct kv_meta *m,
          struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_VKV_META_GET);
    int rc;

    memset(m, 0, sizeof(*m));
    sqlite3_bind_text(st, 1, c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    rc = pgcmk_db_step(db, st, "vault kv metadata", err);
    if (rc == 1) {
        const char *cm = (const char *)sqlite3_column_text(st, 5);

        m->found = 1;
        m->current = sqlite3_column_int64(st, 0);
        m->oldest = sqlite3_column_int64(st, 1);
        m->max_versions = sqlite3_column_int64(st, 2);
        m->cas_required = sqlite3_column_int(st, 3);
        m->delete_after_ms = sqlite3_column_int64(st, 4);
        m->custom = cm ? json_loads(cm, 0, NULL) : NULL;
        m->created_ms = sqlite3_column_int64(st, 6);
        m->updated_ms = sqlite3_column_int64(st, 7);
    }
    pgcmk_db_done(st);
    return rc < 0 ? -1 : 0;
}

static int
meta_save(struct pgcmk_db *db, const struct pgcmk_vkv_call *c, const char *path,
          const struct kv_meta *m, int64_t now, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_VKV_META_PUT);
    char *cm = m->custom ? json_dumps(m->custom, JSON_COMPACT) : NULL;
    int rc;

    sqlite3_bind_text(st, 1, c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, m->current);
    sqlite3_bind_int64(st, 4, m->oldest);
    sqlite3_bind_int64(st, 5, m->max_versions);
    sqlite3_bind_int(st, 6, m->cas_required);
    sqlite3_bind_int64(st, 7, m->delete_after_ms);
    pgcmk_db_bind_opt(st, 8, cm);
    sqlite3_bind_int64(st, 9, now);
    rc = pgcmk_db_each(db, st, NULL, NULL, "vault kv metadata put", err);
    free(cm);
    return rc < 0 ? -1 : 0;
}

static int
config_load(struct pgcmk_db *db, const struct pgcmk_vkv_call *c, struct kv_config *k,
            struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_VKV_CONFIG_GET);
    int rc;

    memset(k, 0, sizeof(*k));
    sqlite3_bind_text(st, 1, c->mount_uuid, -1, SQLITE_STATIC);
    rc = pgcmk_db_step(db, st, "vault kv config", err);
    if (rc == 1) {
        k->max_versions = sqlite3_column_int64(st, 0);
        k->cas_required = sqlite3_column_int(st, 1);
        k->delete_after_ms = sqlite3_column_int64(st, 2);
    }
    pgcmk_db_done(st);
    return rc < 0 ? -1 : 0;
}

static int64_t
max_versions_of(const struct kv_meta *m, const struct kv_config *k)
{
    int64_t mv = k->max_versions;

    if (m->max_versions > 0 && (mv == 0 || m->max_versions < mv))
        mv = m->max_versions;
    return mv;
}

static int
is_deleted(int64_t deletion_ms, int64_t now)
{
    return deletion_ms > 0 && deletion_ms <= now;
}

static json_t *
version_md(int64_t version, int64_t created_ms, int64_t deletion_ms, int destroyed,
           const json_t *custom, int with_version)
{
    json_t *md = json_object();

    json_object_set_new(md, "created_time", jtime(created_ms));
    if (with_version)
        json_object_set_new(md, "custom_metadata", custom ? json_deep_copy(custom) : json_null());
    json_object_set_new(md, "deletion_time", jtime(deletion_ms));
    json_object_set_new(md, "destroyed", json_boolean(destroyed));
    if (with_version)
        json_object_set_new(md, "version", json_integer(version));
    return md;
}

struct versions_ctx {
    json_t *map;
};

static int
versions_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct versions_ctx *v = arg;
    char k[24];

    (void)err;
    snprintf(k, sizeof(k), "%" PRId64, (int64_t)sqlite3_column_int64(st, 0));
    json_object_set_new(v->map, k,
                        version_md(0, sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                                   sqlite3_column_int(st, 3), NULL, 0));
    return 0;
}

static void
metadata_read(const struct pgcmk_vkv_call *c, const char *path, struct pgcmk_vkv_ans *a)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    struct kv_meta m;
    struct versions_ctx v;
    sqlite3_stmt *st;
    json_t *d;
    char dur[48];

    pgcmk_err_clear(&err);
    if (meta_load(db, c, path, &m, &err) != 0) {
        ans_store_failed(a, &err);
        return;
    }
    if (!m.found) {
        ans_error(a, 404, NULL);
        return;
    }
    v.map = json_object();
    st = pgcmk_db_stmt(db, PGCMK_STMT_VKV_VER_LIST);
    sqlite3_bind_text(st, 1, c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, versions_row, &v, "vault kv versions", &err) < 0) {
        json_decref(v.map);
        json_decref(m.custom);
        ans_store_failed(a, &err);
        return;
    }
    pgcmk_vkv_duration_format(m.delete_after_ms, dur, sizeof(dur));
    d = json_object();
    json_object_set_new(d, "cas_required", json_boolean(m.cas_required));
    json_object_set_new(d, "created_time", jtime(m.created_ms));
    json_object_set_new(d, "current_version", json_integer(m.current));
    json_object_set_new(d, "custom_metadata", m.custom ? m.custom : json_null());
    json_object_set_new(d, "delete_version_after", json_string(dur));
    json_object_set_new(d, "max_versions", json_integer(m.max_versions));
    json_object_set_new(d, "oldest_version", json_integer(m.oldest));
    json_object_set_new(d, "updated_time", jtime(m.updated_ms));
    json_object_set_new(d, "versions", v.map);
    ans_data(a, 200, d);
}

int64_t
pgcmk_vkv_field_int(const json_t *body, const char *name)
{
    const json_t *v = body ? json_object_get(body, name) : NULL;

    if (v == NULL || json_is_null(v))
        return -1;
    if (json_is_integer(v))
        return json_integer_value(v) >= 0 ? json_integer_value(v) : -2;
    if (json_is_real(v)) {
        double d = json_real_value(v);
        return d >= 0 && d < 1e15 && d == (double)(int64_t)d ? (int64_t)d : -2;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (*s && strlen(s) < 16 && strspn(s, "0123456789") == strlen(s))
            return strtoll(s, NULL, 10);
    }
    return -2;
}

int
pgcmk_vkv_field_bool(const json_t *body, const char *name)
{
    const json_t *v = body ? json_object_get(body, name) : NULL;

    if (v == NULL || json_is_null(v))
        return -1;
    if (json_is_boolean(v))
        return json_is_true(v);
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), "true") == 0 || strcmp(json_string_value(v), "1") == 0)
            return 1;
        if (strcmp(json_string_value(v), "false") == 0 || strcmp(json_string_value(v), "0") == 0)
            return 0;
    }
    return -2;
}

/* A duration as a Go string or seconds. -1 absent, -2 bad. */
static int64_t
body_duration(const json_t *body, const char *name)
{
    const json_t *v = body ? json_object_get(body, name) : NULL;
    int64_t ms;

    if (v == NULL || json_is_null(v))
        return -1;
    if (json_is_integer(v))
        return json_integer_value(v) >= 0 && json_integer_value(v) < 1000000000000LL
                   ? json_integer_value(v) * 1000
                   : -2;
    if (json_is_string(v) && pgcmk_vkv_duration_parse(json_string_value(v), &ms) == 0)
        return ms;
    return -2;
}

struct meta_tx {
    const struct pgcmk_vkv_call *c;
    const char *path;
    int64_t max_versions, delete_after_ms;
    int cas_required;
    const json_t *custom;
    int deleted; /* metadata delete: something was removed */
};

static int
metadata_write_tx(struct pgcmk_db *db, void *arg, struct pgcmk_err *err)
{
    struct meta_tx *t = arg;
    struct kv_meta m;
    int rc;

    if (meta_load(db, t->c, t->path, &m, err) != 0)
        return -1;
    if (t->max_versions >= 0)
        m.max_versions = t->max_versions;
    if (t->cas_required >= 0)
        m.cas_required = t->cas_required;
    if (t->delete_after_ms >= 0)
        m.delete_after_ms = t->delete_after_ms;
    if (t->custom) {
        json_decref(m.custom);
        m.custom = json_deep_copy(t->custom);
    }
    rc = meta_save(db, t->c, t->path, &m, pgcmk_clock_now(), err);
    json_decref(m.custom);
    return rc;
}

static int
metadata_delete_tx(struct pgcmk_db *db, void *arg, struct pgcmk_err *err)
{
    struct meta_tx *t = arg;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_VKV_META_DEL);

    sqlite3_bind_text(st, 1, t->c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->path, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, NULL, NULL, "vault kv metadata delete", err) < 0)
        return -1;
    t->deleted = sqlite3_changes(pgcmk_db_handle(db)) > 0;
    st = pgcmk_db_stmt(db, PGCMK_STMT_VKV_VER_PRUNE);
    sqlite3_bind_text(st, 1, t->c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, INT64_MAX);
    if (pgcmk_db_each(db, st, NULL, NULL, "vault kv versions delete", err) < 0)
        return -1;
    if (!t->deleted)
        return 0;
    announce(t->c, PGCMK_EV_HV_SECRET_DELETED, t->path, 0);
    return activity(db, t->c, "pgcmk.Vault/secrets/metadata/delete", t->path,
                    "KV secret and all its versions deleted", err);
}

static void
metadata_call(const struct pgcmk_vkv_call *c, const char *path, struct pgcmk_vkv_ans *a)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    struct meta_tx t;

    pgcmk_err_clear(&err);
    memset(&t, 0, sizeof(t));
    t.c = c;
    t.path = path;
    if (c->op == PGCMK_VKV_LIST) {
        list_keys(c, PGCMK_STMT_VKV_META_LIST, path, a);
        return;
    }
    if (path[0] == '\0' || path[strlen(path) - 1] == '/') {
        if (c->op == PGCMK_VKV_READ)
            ans_error(a, 404, NULL);
        else
            ans_error(a, 405, "1 error occurred:\n\t* unsupported operation\n\n");
        return;
    }
    switch (c->op) {
    case PGCMK_VKV_READ:
        metadata_read(c, path, a);
        return;
    case PGCMK_VKV_WRITE:
    case PGCMK_VKV_PATCH: {
        const json_t *cm = c->body ? json_object_get(c->body, "custom_metadata") : NULL;
        const char *k;
        const json_t *v;

        t.max_versions = pgcmk_vkv_field_int(c->body, "max_versions");
        t.cas_required = pgcmk_vkv_field_bool(c->body, "cas_required");
        t.delete_after_ms = body_duration(c->body, "delete_version_after");
        if (t.max_versions == -2) {
            ans_error(a, 400, "max_versions must be a non-negative integer");
            return;
        }
        if (t.cas_required == -2) {
            ans_error(a, 400, "cas_required must be a boolean");
            return;
        }
        if (t.delete_after_ms == -2) {
            ans_error(a, 400, "delete_version_after must be a duration");
            return;
        }
        if (cm && !json_is_null(cm)) {
            if (!json_is_object(cm)) {
                ans_error(a, 400, "custom_metadata must be a map of strings");
                return;
            }
            json_object_foreach((json_t *)cm, k, v) {
                if (!json_is_string(v)) {
                    ans_error(a, 400, "custom_metadata must be a map of strings");
                    return;
                }
            }
            t.custom = cm;
        }
        if (pgcmk_db_tx(db, metadata_write_tx, &t, &err) != 0) {
            ans_store_failed(a, &err);
            return;
        }
        ans_data(a, 204, NULL);
        return;
    }
    case PGCMK_VKV_DELETE:
        if (pgcmk_db_tx(db, metadata_delete_tx, &t, &err) != 0) {
            ans_store_failed(a, &err);
            return;
        }
        ans_data(a, 204, NULL);
        return;
    default:
        ans_error(a, 405, "1 error occurred:\n\t* unsupported operation\n\n");
    }
}

/* ---- KV v2: data ----------------------------------------------------------------------- */

static void
data_read(const struct pgcmk_vkv_call *c, const char *path, struct pgcmk_vkv_ans *a)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    sqlite3_stmt *st;
    int64_t want = 0, version, created, deletion, now;
    int destroyed, rc;
    const char *cm;
    json_t *custom, *md, *value, *d;

    pgcmk_err_clear(&err);
    if (c->q_version && *c->q_version) {
        if (strlen(c->q_version) > 15 ||
            strspn(c->q_version, "0123456789") != strlen(c->q_version)) {
            ans_error(a, 400, "error parsing version parameter");
            return;
        }
        want = strtoll(c->q_version, NULL, 10);
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_VKV_READ);
    sqlite3_bind_text(st, 1, c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, want);
    rc = pgcmk_db_step(db, st, "vault kv read", &err);
    if (rc < 0) {
        pgcmk_db_done(st);
        ans_store_failed(a, &err);
        return;
    }
    if (rc == 0 || sqlite3_column_type(st, 2) == SQLITE_NULL) {
        pgcmk_db_done(st);
        ans_error(a, 404, NULL);
        return;
    }
    cm = (const char *)sqlite3_column_text(st, 1);
    version = sqlite3_column_int64(st, 2);
    created = sqlite3_column_int64(st, 3);
    deletion = sqlite3_column_int64(st, 4);
    destroyed = sqlite3_column_int(st, 5);
    custom = cm ? json_loads(cm, 0, NULL) : NULL;
    md = version_md(version, created, deletion, destroyed, custom, 1);
    json_decref(custom);
    now = pgcmk_clock_now();
    d = json_object();
    if (destroyed || is_deleted(deletion, now)) {
        pgcmk_db_done(st);
        json_object_set_new(d, "data", json_null());
        json_object_set_new(d, "metadata", md);
        ans_data(a, 404, d);
        return;
    }
    value = unseal_json(c, path, version, sqlite3_column_blob(st, 6),
                        (size_t)sqlite3_column_bytes(st, 6));
    pgcmk_db_done(st);
    if (value == NULL) {
        json_decref(md);
        json_decref(d);
        ans_error(a, 500, "internal error");
        return;
    }
    json_object_set_new(d, "data", value);
    json_object_set_new(d, "metadata", md);
    a->secret = 1;
    ans_data(a, 200, d);
}

/* RFC 7386 JSON merge patch of patch into target (both objects). */
static void
merge_patch(json_t *target, const json_t *patch)
{
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)patch, k, v) {
        json_t *cur = json_object_get(target, k);

        if (json_is_null(v))
            json_object_del(target, k);
        else if (json_is_object(v) && json_is_object(cur))
            merge_patch(cur, v);
        else
            json_object_set(target, k, v);
    }
}

struct write_tx {
    const struct pgcmk_vkv_call *c;
    const char *path;
    const json_t *data;
    int64_t cas; /* -1 none */
    int patch;
    /* out */
    const char *refused; /* a 400 text */
    int not_found;       /* patch of a missing or deleted secret */
    int64_t version, created, deletion;
    json_t *custom;
};

static int
data_write_tx(struct pgcmk_db *db, void *arg, struct pgcmk_err *err)
{
    struct write_tx *t = arg;
    struct kv_meta m;
    struct kv_config k;
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    int64_t now = pgcmk_clock_now(), dva, keep;
    json_t *merged = NULL;
    const json_t *value = t->data;
    sqlite3_stmt *st;
    int rc;

    if (meta_load(db, t->c, t->path, &m, err) != 0)
        return -1;
    if (config_load(db, t->c, &k, err) != 0)
        goto fail;
    if (t->patch) {
        sqlite3_stmt *rd;

        if (!m.found || m.current == 0) {
            t->not_found = 1;
            goto refuse;
        }
        rd = pgcmk_db_stmt(db, PGCMK_STMT_VKV_READ);
        sqlite3_bind_text(rd, 1, t->c->mount_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(rd, 2, t->path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(rd, 3, 0);
        rc = pgcmk_db_step(db, rd, "vault kv patch read", err);
        if (rc < 0) {
            pgcmk_db_done(rd);
            goto fail;
        }
        if (rc == 0 || sqlite3_column_type(rd, 6) == SQLITE_NULL || sqlite3_column_int(rd, 5) ||
            is_deleted(sqlite3_column_int64(rd, 4), now)) {
            pgcmk_db_done(rd);
            t->not_found = 1;
            goto refuse;
        }
        merged = unseal_json(t->c, t->path, m.current, sqlite3_column_blob(rd, 6),
                             (size_t)sqlite3_column_bytes(rd, 6));
        pgcmk_db_done(rd);
        if (merged == NULL) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "unseal failed");
            goto fail;
        }
        merge_patch(merged, t->data);
        value = merged;
    }
    t->refused = pgcmk_vkv_cas_check(m.cas_required || k.cas_required, t->cas, m.current);
    if (t->refused)
        goto refuse;
    t->version = m.current + 1;
    t->created = now;
    dva = m.delete_after_ms > 0 ? m.delete_after_ms : k.delete_after_ms;
    t->deletion = dva > 0 ? now + dva : 0;
    if (seal_json(t->c, t->path, t->version, value, &sealed, &sealed_len) != 0) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "seal failed");
        goto fail;
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_VKV_VER_PUT);
    sqlite3_bind_text(st, 1, t->c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, t->version);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, t->deletion);
    sqlite3_bind_blob(st, 6, sealed, (int)sealed_len, SQLITE_STATIC);
    rc = pgcmk_db_each(db, st, NULL, NULL, "vault kv write", err);
    free(sealed);
    if (rc < 0)
        goto fail;
    keep = pgcmk_vkv_keep_from(t->version, max_versions_of(&m, &k));
    if (keep > 1) {
        st = pgcmk_db_stmt(db, PGCMK_STMT_VKV_VER_PRUNE);
        sqlite3_bind_text(st, 1, t->c->mount_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, t->path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, keep);
        if (pgcmk_db_each(db, st, NULL, NULL, "vault kv prune", err) < 0)
            goto fail;
        m.oldest = keep;
    }
    m.current = t->version;
    if (meta_save(db, t->c, t->path, &m, now, err) != 0)
        goto fail;
    announce(t->c, PGCMK_EV_HV_SECRET_CHANGED, t->path, t->version);
    json_decref(merged);
    t->custom = m.custom;
    return 0;
refuse:
    /* nothing was written: commit the empty transaction */
    json_decref(merged);
    json_decref(m.custom);
    return 0;
fail:
    json_decref(merged);
    json_decref(m.custom);
    return -1;
}

static void
data_write(const struct pgcmk_vkv_call *c, const char *path, int patch, struct pgcmk_vkv_ans *a)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    struct write_tx t;
    const json_t *data = c->body ? json_object_get(c->body, "data") : NULL;
    const json_t *opts = c->body ? json_object_get(c->body, "options") : NULL;

    pgcmk_err_clear(&err);
    memset(&t, 0, sizeof(t));
    t.c = c;
    t.path = path;
    t.patch = patch;
    t.cas = -1;
    if (data == NULL || !json_is_object(data)) {
        ans_error(a, 400, "no data provided");
        return;
    }
    t.data = data;
    if (opts && json_is_object(opts)) {
        t.cas = pgcmk_vkv_field_int(opts, "cas");
        if (t.cas == -2) {
            ans_error(a, 400, "cas must be a non-negative integer");
            return;
        }
    }
    if (pgcmk_db_tx(db, data_write_tx, &t, &err) != 0) {
        ans_store_failed(a, &err);
        return;
    }
    if (t.not_found) {
        ans_error(a, 404, NULL);
        return;
    }
    if (t.refused) {
        ans_error(a, 400, t.refused);
        return;
    }
    ans_data(a, 200, version_md(t.version, t.created, t.deletion, 0, t.custom, 1));
    json_decref(t.custom);
}

/* delete/, undelete/, destroy/ and DELETE data/: a change to some versions. */
enum vchange { VC_DELETE, VC_UNDELETE, VC_DESTROY, VC_DELETE_LATEST };

struct change_tx {
    const struct pgcmk_vkv_call *c;
    const char *path;
    enum vchange what;
    const json_t *versions;
};

static int
change_one(struct pgcmk_db *db, struct change_tx *t, int64_t v, int64_t now, struct pgcmk_err *err)
{
    sqlite3_stmt *st;

    if (t->what == VC_DESTROY) {
        st = pgcmk_db_stmt(db, PGCMK_STMT_VKV_VER_DESTROY);
    } else {
        st = pgcmk_db_stmt(db, PGCMK_STMT_VKV_VER_SET_DELETION);
        sqlite3_bind_int64(st, 4, t->what == VC_UNDELETE ? 0 : now);
    }
    sqlite3_bind_text(st, 1, t->c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, v);
    if (pgcmk_db_each(db, st, NULL, NULL, "vault kv version change", err) < 0)
        return -1;
    if (sqlite3_changes(pgcmk_db_handle(db)) == 0)
        return 0;
    announce(t->c, t->what == VC_UNDELETE ? PGCMK_EV_HV_SECRET_CHANGED : PGCMK_EV_HV_SECRET_DELETED,
             t->path, v);
    if (t->what == VC_UNDELETE)
        return 0;
    return activity(
        db, t->c,
        t->what == VC_DESTROY ? "pgcmk.Vault/secrets/destroy" : "pgcmk.Vault/secrets/delete",
        t->path, t->what == VC_DESTROY ? "KV version destroyed" : "KV version deleted", err);
}

static int
change_tx(struct pgcmk_db *db, void *arg, struct pgcmk_err *err)
{
    struct change_tx *t = arg;
    int64_t now = pgcmk_clock_now();
    size_t i;
    json_t *v;

    if (t->what == VC_DELETE_LATEST) {
        struct kv_meta m;
        sqlite3_stmt *st;
        int rc;

        if (meta_load(db, t->c, t->path, &m, err) != 0)
            return -1;
        json_decref(m.custom);
        if (!m.found || m.current == 0)
            return 0;
        /* the latest version, unless it is already deleted (keep its first deletion time) */
        st = pgcmk_db_stmt(db, PGCMK_STMT_VKV_READ);
        sqlite3_bind_text(st, 1, t->c->mount_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, t->path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, 0);
        rc = pgcmk_db_step(db, st, "vault kv delete latest", err);
        if (rc == 1 && (sqlite3_column_type(st, 2) == SQLITE_NULL ||
                        is_deleted(sqlite3_column_int64(st, 4), now)))
            rc = 0;
        pgcmk_db_done(st);
        if (rc <= 0)
            return rc;
        t->what = VC_DELETE;
        return change_one(db, t, m.current, now, err);
    }
    json_array_foreach(t->versions, i, v) {
        int64_t n = json_is_integer(v) ? json_integer_value(v) : -1;

        if (n <= 0)
            continue;
        if (t->what == VC_DELETE) {
            /* an already deleted version keeps its deletion time */
            sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_VKV_READ);
            int rc, skip;

            sqlite3_bind_text(st, 1, t->c->mount_uuid, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, t->path, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, n);
            rc = pgcmk_db_step(db, st, "vault kv delete versions", err);
            skip = rc != 1 || sqlite3_column_type(st, 2) == SQLITE_NULL ||
                   is_deleted(sqlite3_column_int64(st, 4), now);
            pgcmk_db_done(st);
            if (rc < 0)
                return -1;
            if (skip)
                continue;
        }
        if (change_one(db, t, n, now, err) != 0)
            return -1;
    }
    return 0;
}

static void
versions_call(const struct pgcmk_vkv_call *c, const char *path, enum vchange what,
              struct pgcmk_vkv_ans *a)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    struct change_tx t = {c, path, what, NULL};
    size_t i;
    json_t *v;

    pgcmk_err_clear(&err);
    if (what != VC_DELETE_LATEST) {
        if (c->op != PGCMK_VKV_WRITE) {
            ans_error(a, 405, "1 error occurred:\n\t* unsupported operation\n\n");
            return;
        }
        t.versions = c->body ? json_object_get(c->body, "versions") : NULL;
        if (t.versions == NULL || !json_is_array(t.versions) || json_array_size(t.versions) == 0) {
            ans_error(a, 400, "no version number provided");
            return;
        }
        json_array_foreach(t.versions, i, v) {
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                ans_error(a, 400, "versions must be a list of version numbers");
                return;
            }
        }
    }
    if (pgcmk_db_tx(db, change_tx, &t, &err) != 0) {
        ans_store_failed(a, &err);
        return;
    }
    ans_data(a, 204, NULL);
}

/* ---- KV v2: config --------------------------------------------------------------------- */

struct config_tx {
    const struct pgcmk_vkv_call *c;
    int64_t max_versions, delete_after_ms;
    int cas_required;
};

static int
config_write_tx(struct pgcmk_db *db, void *arg, struct pgcmk_err *err)
{
    struct config_tx *t = arg;
    struct kv_config k;
    sqlite3_stmt *st;

    if (config_load(db, t->c, &k, err) != 0)
        return -1;
    if (t->max_versions >= 0)
        k.max_versions = t->max_versions;
    if (t->cas_required >= 0)
        k.cas_required = t->cas_required;
    if (t->delete_after_ms >= 0)
        k.delete_after_ms = t->delete_after_ms;
    st = pgcmk_db_stmt(db, PGCMK_STMT_VKV_CONFIG_PUT);
    sqlite3_bind_text(st, 1, t->c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, k.max_versions);
    sqlite3_bind_int(st, 3, k.cas_required);
    sqlite3_bind_int64(st, 4, k.delete_after_ms);
    return pgcmk_db_each(db, st, NULL, NULL, "vault kv config put", err) < 0 ? -1 : 0;
}

static void
config_call(const struct pgcmk_vkv_call *c, struct pgcmk_vkv_ans *a)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    struct kv_config k;
    struct config_tx t;
    char dur[48];

    pgcmk_err_clear(&err);
    if (c->op == PGCMK_VKV_READ) {
        if (config_load(db, c, &k, &err) != 0) {
            ans_store_failed(a, &err);
            return;
        }
        pgcmk_vkv_duration_format(k.delete_after_ms, dur, sizeof(dur));
        ans_data(a, 200,
                 json_pack("{s:b,s:s,s:I}", "cas_required", k.cas_required, "delete_version_after",
                           dur, "max_versions", (json_int_t)k.max_versions));
        return;
    }
    if (c->op != PGCMK_VKV_WRITE) {
        ans_error(a, 405, "1 error occurred:\n\t* unsupported operation\n\n");
        return;
    }
    t.c = c;
    t.max_versions = pgcmk_vkv_field_int(c->body, "max_versions");
    t.cas_required = pgcmk_vkv_field_bool(c->body, "cas_required");
    t.delete_after_ms = body_duration(c->body, "delete_version_after");
    if (t.max_versions == -2 || t.cas_required == -2 || t.delete_after_ms == -2) {
        ans_error(a, 400, "invalid config: max_versions, cas_required or delete_version_after");
        return;
    }
    if (pgcmk_db_tx(db, config_write_tx, &t, &err) != 0) {
        ans_store_failed(a, &err);
        return;
    }
    ans_data(a, 204, NULL);
}

/* ---- dispatch -------------------------------------------------------------------------- */

/* Splits "data/a/b" into its verb ("data") and the key path ("a/b"). */
static const char *
split_rel(const char *rel, char *verb, size_t cap)
{
    const char *slash = strchr(rel, '/');
    size_t n = slash ? (size_t)(slash - rel) : strlen(rel);

    if (n >= cap)
        n = cap - 1;
    memcpy(verb, rel, n);
    verb[n] = '\0';
    return slash ? slash + 1 : rel + strlen(rel);
}

int
pgcmk_vkv_text_ok(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;

    while (*p) {
        size_t len = *p < 0x80             ? 1
                     : (*p & 0xe0) == 0xc0 ? 2
                     : (*p & 0xf0) == 0xe0 ? 3
                     : (*p & 0xf8) == 0xf0 ? 4
                                           : 0;

        if (len == 0 || *p < 0x20 || *p == 0x7f || (len == 2 && *p < 0xc2) || (*p > 0xf4))
            return 0;
        for (size_t i = 1; i < len; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        if ((len == 3 && *p == 0xe0 && p[1] < 0xa0) || (len == 3 && *p == 0xed && p[1] >= 0xa0) ||
            (len == 4 && *p == 0xf0 && p[1] < 0x90) || (len == 4 && *p == 0xf4 && p[1] >= 0x90))
            return 0;
        p += len;
        n += len;
        if (n > max)
            return 0;
    }
    return 1;
}

static int
path_ok(const char *p)
{
    return pgcmk_vkv_text_ok(p, VKV_MAX_PATH) && strstr(p, "//") == NULL &&
           strncmp(p, "../", 3) != 0 && strstr(p, "/../") == NULL && strcmp(p, "..") != 0 &&
           (strlen(p) < 3 || strcmp(p + strlen(p) - 3, "/..") != 0);
}

void
pgcmk_vkv_call(const struct pgcmk_vkv_call *c, struct pgcmk_vkv_ans *a)
{
    char verb[16];
    const char *path;

    memset(a, 0, sizeof(*a));
    if (!path_ok(c->rel)) {
        ans_error(a, 400, "invalid path");
        return;
    }
    if (c->kv_version != 2) {
        kv1_call(c, a);
        return;
    }
    path = split_rel(c->rel, verb, sizeof(verb));
    if (strcmp(verb, "config") == 0 && *path == '\0' && strchr(c->rel, '/') == NULL) {
        config_call(c, a);
        return;
    }
    if (strcmp(verb, "metadata") == 0) {
        metadata_call(c, path, a);
        return;
    }
    if (strcmp(verb, "data") == 0 && *path && path[strlen(path) - 1] != '/') {
        switch (c->op) {
        case PGCMK_VKV_READ:
            data_read(c, path, a);
            return;
        case PGCMK_VKV_WRITE:
            data_write(c, path, 0, a);
            return;
        case PGCMK_VKV_PATCH:
            data_write(c, path, 1, a);
            return;
        case PGCMK_VKV_DELETE:
            versions_call(c, path, VC_DELETE_LATEST, a);
            return;
        default:
            ans_error(a, 405, "1 error occurred:\n\t* unsupported operation\n\n");
            return;
        }
    }
    if (*path && path[strlen(path) - 1] != '/') {
        if (strcmp(verb, "delete") == 0) {
            versions_call(c, path, VC_DELETE, a);
            return;
        }
        if (strcmp(verb, "undelete") == 0) {
            versions_call(c, path, VC_UNDELETE, a);
            return;
        }
        if (strcmp(verb, "destroy") == 0) {
            versions_call(c, path, VC_DESTROY, a);
            return;
        }
    }
    if (strcmp(verb, "data") == 0 && c->op == PGCMK_VKV_READ) {
        ans_error(a, 404, NULL);
        return;
    }
    {
        char msg[VKV_MAX_PATH + 128];

        snprintf(msg, sizeof(msg), "no handler for route \"%s%.1024s\". route entry not found.",
                 c->mount_path ? c->mount_path : "", c->rel);
        ans_error(a, 404, msg);
    }
}

const char *
pgcmk_vkv_capability(const struct pgcmk_vkv_call *c)
{
    char verb[16];
    const char *path;

    switch (c->op) {
    case PGCMK_VKV_READ:
        return "read";
    case PGCMK_VKV_LIST:
        return "list";
    case PGCMK_VKV_DELETE:
        return "delete";
    case PGCMK_VKV_PATCH:
        return "patch";
    case PGCMK_VKV_WRITE:
        break;
    }
    if (!path_ok(c->rel))
        return "update";
    if (c->kv_version != 2)
        return kv1_exists(c, c->rel) ? "update" : "create";
    path = split_rel(c->rel, verb, sizeof(verb));
    if (strcmp(verb, "data") == 0 || strcmp(verb, "metadata") == 0) {
        struct pgcmk_err err;
        struct kv_meta m;
        int exists;

        pgcmk_err_clear(&err);
        if (meta_load(pgcmk_db(), c, path, &m, &err) != 0)
            return "update";
        json_decref(m.custom);
        exists = m.found; /* Vault: the key's metadata exists (data/ and metadata/ alike) */
        return exists ? "update" : "create";
    }
    return "update";
}

int
pgcmk_vkv_drop_mount(struct pgcmk_db *db, const char *mount_uuid, struct pgcmk_err *err)
{
    static const enum pgcmk_stmt drops[] = {
        PGCMK_STMT_VKV_DROP_META, PGCMK_STMT_VKV_DROP_VERSIONS, PGCMK_STMT_VKV_DROP_CONFIG,
        PGCMK_STMT_VKV_DROP_KV1,  PGCMK_STMT_VKV_DROP_TKEYS,    PGCMK_STMT_VKV_DROP_TVERSIONS,
    };

    for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++) {
        sqlite3_stmt *st = pgcmk_db_stmt(db, drops[i]);

        sqlite3_bind_text(st, 1, mount_uuid, -1, SQLITE_STATIC);
        if (pgcmk_db_each(db, st, NULL, NULL, "vault mount drop", err) < 0)
            return -1;
    }
    return 0;
}
