/* approle.c - Vault's AppRole auth method (developer.hashicorp.com/vault/api-docs/auth/approle):
 * roles (token_* settings, bind_secret_id, secret_id_* limits), role IDs, secret IDs stored as
 * SHA-256 with their accessors, uses left and expiry on the virtual clock, and login. The token
 * itself is issued by the core's token API from struct pgcmk_approle_login. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "pgcmk/clock.h"
#include "pgcmk/core.h"
#include "pgcmk/crypto.h"
#include "pgcmk/err.h"
#include "pgcmk/events.h"
#include "pgcmk/store.h"
#include "pgcmk/vapprole.h"
#include "vaultapi/internal.h"

#define MSG(...) (snprintf(msg, msglen, __VA_ARGS__), 400)

/* ---- input helpers ----------------------------------------------------------------------------
 */

/* Vault's duration fields: integer seconds, "90", "5m", "1h30m", "10s". -1 when malformed. */
static int64_t
dur(const json_t *v)
{
    const char *s;
    int64_t total = 0;

    if (json_is_integer(v))
        return json_integer_value(v) < 0 ? -1 : json_integer_value(v);
    if (json_is_real(v))
        return json_real_value(v) < 0 ? -1 : (int64_t)json_real_value(v);
    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    if (*s == '\0')
        return 0;
    while (*s) {
        int64_t n = 0;
        int digits = 0;

        while (isdigit((unsigned char)*s)) {
            if (n > 100000000000LL)
                return -1;
            n = n * 10 + (*s++ - '0');
            digits++;
        }
        if (!digits)
            return -1;
        if (*s == '\0')
            return total + n;
        if (*s == 's')
            ;
        else if (*s == 'm')
            n *= 60;
        else if (*s == 'h')
            n *= 3600;
        else if (*s == 'd')
            n *= 86400;
        else
            return -1;
        total += n;
        s++;
    }
    return total;
}

/* A comma-separated string or an array of strings -> a new array (trimmed, lower-cased as Vault
 * does for policies, empty items dropped). NULL when malformed. */
static json_t *
str_list(const json_t *v, int lower)
{
    json_t *out = json_array();

    if (json_is_string(v)) {
        const char *s = json_string_value(v);

        while (*s) {
            const char *e = strchr(s, ',');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            char item[256];
            size_t a = 0, b = n;

            while (a < b && isspace((unsigned char)s[a]))
                a++;
            while (b > a && isspace((unsigned char)s[b - 1]))
                b--;
            if (b > a && b - a < sizeof(item)) {
                memcpy(item, s + a, b - a);
                item[b - a] = '\0';
                for (size_t i = 0; lower && item[i]; i++)
                    item[i] = (char)tolower((unsigned char)item[i]);
                json_array_append_new(out, json_string(item));
            }
            s += n;
            if (*s == ',')
                s++;
        }
        return out;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *e;

        json_array_foreach(v, i, e) {
            json_t *one;

            if (!json_is_string(e)) {
                json_decref(out);
                return NULL;
            }
            one = str_list(e, lower);
            json_array_extend(out, one);
            json_decref(one);
        }
        return out;
    }
    if (json_is_null(v))
        return out;
    json_decref(out);
    return NULL;
}

static int
bool_of(const json_t *v, int *out)
{
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);

        if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
            *out = 0;
            return 0;
        }
    }
    if (json_is_integer(v)) {
        *out = json_integer_value(v) != 0;
        return 0;
    }
    return -1;
}

static int
valid_role_name(const char *s, size_t len)
{
    if (len == 0 || len > 128)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.' ||
              s[i] == '@'))
            return 0;
    return 1;
}

static void
hash_secret(const char *ns, const char *mount, const char *secret, char out[65])
{
    unsigned char h[32];
    char *buf;
    size_t n = strlen(ns) + strlen(mount) + strlen(secret) + 3;

    buf = malloc(n);
    if (buf == NULL) {
        out[0] = '\0';
        return;
    }
    snprintf(buf, n, "%s\x1f%s\x1f%s", ns, mount, secret);
    pgcmk_sha256(buf, strlen(buf), h);
    pgcmk_secret_free(buf, n);
    pgcmk_hex(h, sizeof(h), out);
}

/* ---- store access ------------------------------------------------------------------------------
 */

struct role {
    char role_id[128];
    json_t *cfg; /* the role's settings as stored */
};

/* 1 found, 0 absent, -1 error. */
static int
role_get(const char *ns, const char *mount, const char *name, struct role *r)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HV_ROLE_GET);
    struct pgcmk_err err = {0};
    int rc;

    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, mount, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    rc = pgcmk_db_step(db, st, "approle role", &err);
    if (rc == 1) {
        snprintf(r->role_id, sizeof(r->role_id), "%s", (const char *)sqlite3_column_text(st, 0));
        r->cfg = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
        if (r->cfg == NULL)
            rc = -1;
    }
    pgcmk_db_done(st);
    return rc;
}

typedef int (*write_fn)(struct pgcmk_db *db, void *ctx);

struct wctx {
    write_fn fn;
    void *ctx;
};

static int
wtx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct wctx *w = ctx;

    (void)err;
    return w->fn(db, w->ctx);
}

static int
run_write(write_fn fn, void *ctx)
{
    struct wctx w = {fn, ctx};
    struct pgcmk_err err = {0};

    return pgcmk_db_tx(pgcmk_db(), wtx, &w, &err);
}

static int
exec(struct pgcmk_db *db, sqlite3_stmt *st)
{
    struct pgcmk_err err = {0};

    return pgcmk_db_each(db, st, NULL, NULL, "approle", &err) < 0 ? -1 : 0;
}

struct key3 {
    const char *ns, *mount, *name;
    const char *a, *b; /* role_id + config, or hash */
};

static void
bind3(sqlite3_stmt *st, const struct key3 *k)
{
    sqlite3_bind_text(st, 1, k->ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->mount, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, k->name, -1, SQLITE_STATIC);
}

static int
w_role_put(struct pgcmk_db *db, void *ctx)
{
    struct key3 *k = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HV_ROLE_PUT);

    bind3(st, k);
    sqlite3_bind_text(st, 4, k->a, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, k->b, -1, SQLITE_STATIC);
    return exec(db, st);
}

static void
publish_auth(const char *ns, const char *mount, const char *object)
{
    struct pgcmk_event ev = {0};

    ev.kind = PGCMK_EV_HV_AUTH_CHANGED;
    ev.resource_id = ns;
    ev.key = mount;
    ev.object_id = object;
    pgcmk_events_publish(&ev);
}

static int
w_role_delete(struct pgcmk_db *db, void *ctx)
{
    struct key3 *k = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HV_ROLE_DELETE);

    bind3(st, k);
    if (exec(db, st) < 0)
        return -1;
    st = pgcmk_db_stmt(db, PGCMK_STMT_HV_SECRET_DELETE_ROLE);
    bind3(st, k);
    if (exec(db, st) < 0)
        return -1;
    publish_auth(k->ns, k->mount, k->name);
    return 0;
}

static int
w_secret_delete(struct pgcmk_db *db, void *ctx)
{
    struct key3 *k = ctx; /* name = hash */
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HV_SECRET_DELETE);

    bind3(st, k);
    if (exec(db, st) < 0)
        return -1;
    if (k->a)
        publish_auth(k->ns, k->mount, k->a);
    return 0;
}

static int
w_secret_use(struct pgcmk_db *db, void *ctx)
{
    struct key3 *k = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HV_SECRET_USE);

    bind3(st, k);
    return exec(db, st);
}

struct secret_new {
    const char *ns, *mount, *role, *hash, *accessor, *metadata;
    int64_t created, expires, num_uses;
};

static int
w_secret_put(struct pgcmk_db *db, void *ctx)
{
    struct secret_new *s = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HV_SECRET_PUT);

    sqlite3_bind_text(st, 1, s->ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->mount, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, s->role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, s->hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, s->accessor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, s->created);
    sqlite3_bind_int64(st, 7, s->expires);
    sqlite3_bind_int64(st, 8, s->num_uses);
    sqlite3_bind_text(st, 9, s->metadata, -1, SQLITE_STATIC);
    return exec(db, st);
}

static int
w_purge(struct pgcmk_db *db, void *ctx)
{
    struct key3 *k = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HV_ROLE_PURGE);

    sqlite3_bind_text(st, 1, k->ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->mount, -1, SQLITE_STATIC);
    if (exec(db, st) < 0)
        return -1;
    st = pgcmk_db_stmt(db, PGCMK_STMT_HV_SECRET_PURGE);
    sqlite3_bind_text(st, 1, k->ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->mount, -1, SQLITE_STATIC);
    return exec(db, st);
}

void
pgcmk_approle_purge(struct pgcmk_db *db, const char *ns, const char *mount)
{
    struct key3 k = {ns, mount, NULL, NULL, NULL};

    (void)w_purge(db, &k);
}

/* A secret ID's row, by hash (by_accessor 0) or by accessor (1). 1 found, 0 absent, -1 error. */
struct secret_row {
    char role[256], hash[65], accessor[64];
    int64_t created, expires, num_uses, uses_left;
    json_t *metadata;
};

/* Fills s from the row's columns c.. (role, accessor or hash, created_at, expires_at, num_uses,
 * uses_left, metadata); key is the hash (by_accessor 0) or the accessor it was found by. */
static void
secret_fill(sqlite3_stmt *st, int c, const char *key, int by_accessor, struct secret_row *s)
{
    const char *meta = (const char *)sqlite3_column_text(st, c + 6);

    snprintf(s->role, sizeof(s->role), "%s", (const char *)sqlite3_column_text(st, c));
    const char *other = (const char *)sqlite3_column_text(st, c + 1);

    snprintf(s->hash, sizeof(s->hash), "%s", by_accessor ? other : key);
    snprintf(s->accessor, sizeof(s->accessor), "%s", by_accessor ? key : other);
    s->created = sqlite3_column_int64(st, c + 2);
    s->expires = sqlite3_column_int64(st, c + 3);
    s->num_uses = sqlite3_column_int64(st, c + 4);
    s->uses_left = sqlite3_column_int64(st, c + 5);
    /* most secret IDs have no metadata: no parse for them */
    s->metadata = meta && strcmp(meta, "{}") == 0 ? json_object() : json_loads(meta, 0, NULL);
    if (s->metadata == NULL)
        s->metadata = json_object();
}

static int
secret_get(const char *ns, const char *mount, const char *key, int by_accessor,
           struct secret_row *s)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, by_accessor ? PGCMK_STMT_HV_SECRET_BY_ACCESSOR
                                                     : PGCMK_STMT_HV_SECRET_GET);
    struct pgcmk_err err = {0};
    int rc;

    memset(s, 0, sizeof(*s));
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, mount, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
    rc = pgcmk_db_step(db, st, "approle secret id", &err);
    if (rc == 1)
        secret_fill(st, 0, key, by_accessor, s);
    pgcmk_db_done(st);
    return rc;
}

/* ---- answers -------------------------------------------------------------------------------- */

static int64_t
cfg_int(const json_t *cfg, const char *k)
{
    return json_integer_value(json_object_get(cfg, k));
}

/* Vault's role read: every field, the deprecated aliases too. */
static json_t *
role_data(const json_t *cfg)
{
    json_t *d = json_object();

    json_object_set_new(d, "bind_secret_id",
                        json_boolean(json_is_true(json_object_get(cfg, "bind_secret_id"))));
    json_object_set_new(d, "local_secret_ids", json_false());
    json_object_set_new(d, "secret_id_bound_cidrs", json_null());
    json_object_set_new(d, "secret_id_num_uses", json_integer(cfg_int(cfg, "secret_id_num_uses")));
    json_object_set_new(d, "secret_id_ttl", json_integer(cfg_int(cfg, "secret_id_ttl")));
    json_object_set_new(d, "token_bound_cidrs", json_array());
    json_object_set_new(d, "token_explicit_max_ttl",
                        json_integer(cfg_int(cfg, "token_explicit_max_ttl")));
    json_object_set_new(d, "token_max_ttl", json_integer(cfg_int(cfg, "token_max_ttl")));
    json_object_set_new(
        d, "token_no_default_policy",
        json_boolean(json_is_true(json_object_get(cfg, "token_no_default_policy"))));
    json_object_set_new(d, "token_num_uses", json_integer(cfg_int(cfg, "token_num_uses")));
    json_object_set_new(d, "token_period", json_integer(cfg_int(cfg, "token_period")));
    json_object_set(d, "token_policies", json_object_get(cfg, "token_policies"));
    json_object_set_new(d, "token_ttl", json_integer(cfg_int(cfg, "token_ttl")));
    json_object_set(d, "token_type", json_object_get(cfg, "token_type"));
    json_object_set(d, "policies", json_object_get(cfg, "token_policies"));
    json_object_set_new(d, "period", json_integer(cfg_int(cfg, "token_period")));
    return d;
}

/* Applies `body` to `cfg` (Vault's field names and the deprecated aliases). 0 or a 400. */
static int
role_apply(json_t *cfg, const json_t *body, char *msg, size_t msglen)
{
    static const char *const durs[][2] = {
        {"token_ttl", NULL},     {"token_max_ttl", NULL},          {"token_period", "period"},
        {"secret_id_ttl", NULL}, {"token_explicit_max_ttl", NULL},
    };
    static const char *const ints[] = {"token_num_uses", "secret_id_num_uses"};
    json_t *v;

    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        v = json_object_get(body, durs[i][0]);
        if (v == NULL && durs[i][1])
            v = json_object_get(body, durs[i][1]);
        if (v) {
            int64_t s = dur(v);

            if (s < 0)
                return MSG("error converting input %s for field \"%s\": invalid duration",
                           json_is_string(v) ? json_string_value(v) : "value", durs[i][0]);
            json_object_set_new(cfg, durs[i][0], json_integer(s));
        }
    }
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        v = json_object_get(body, ints[i]);
        if (v) {
            int64_t n;

            if (json_is_integer(v))
                n = json_integer_value(v);
            else if (json_is_string(v) && *json_string_value(v) &&
                     strspn(json_string_value(v), "-0123456789") == strlen(json_string_value(v)))
                n = strtoll(json_string_value(v), NULL, 10);
            else
                return MSG("error converting input for field \"%s\"", ints[i]);
            if (n < 0)
                return MSG("%s cannot be negative", ints[i]);
            json_object_set_new(cfg, ints[i], json_integer(n));
        }
    }
    v = json_object_get(body, "token_policies");
    if (v == NULL)
        v = json_object_get(body, "policies");
    if (v) {
        json_t *l = str_list(v, 1);

        if (l == NULL)
            return MSG("error converting input for field \"token_policies\"");
        json_object_set_new(cfg, "token_policies", l);
    }
    for (int i = 0; i < 2; i++) {
        const char *k = i ? "token_no_default_policy" : "bind_secret_id";
        int b;

        v = json_object_get(body, k);
        if (v) {
            if (bool_of(v, &b) < 0)
                return MSG("error converting input for field \"%s\"", k);
            json_object_set_new(cfg, k, json_boolean(b));
        }
    }
    v = json_object_get(body, "token_type");
    if (v) {
        const char *t = json_string_value(v);

        if (t == NULL ||
            (strcmp(t, "default") != 0 && strcmp(t, "service") != 0 && strcmp(t, "batch") != 0 &&
             strcmp(t, "default-service") != 0 && strcmp(t, "default-batch") != 0))
            return MSG("invalid 'token_type' value");
        json_object_set(cfg, "token_type", v);
    }
    if (cfg_int(cfg, "token_max_ttl") > 0 && cfg_int(cfg, "token_ttl") > 0 &&
        cfg_int(cfg, "token_ttl") > cfg_int(cfg, "token_max_ttl"))
        return MSG("\"token_ttl\" value must be less than \"token_max_ttl\" value");
    if (!json_is_true(json_object_get(cfg, "bind_secret_id")))
        return MSG("at least one constraint should be enabled on the role");
    return 0;
}

static json_t *
role_defaults(void)
{
    json_t *c = json_object();

    json_object_set_new(c, "bind_secret_id", json_true());
    json_object_set_new(c, "token_policies", json_array());
    json_object_set_new(c, "token_type", json_string("default"));
    return c;
}

/* 1 when another role of the mount has `role_id` (Vault refuses a shared role ID). */
static int
role_id_owner(const char *ns, const char *mount, const char *role_id, const char *name)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HV_ROLE_BY_ID);
    struct pgcmk_err err = {0};
    int rc, other = 0;

    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, mount, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, role_id, -1, SQLITE_STATIC);
    rc = pgcmk_db_step(db, st, "approle role id", &err);
    if (rc == 1)
        other = strcmp((const char *)sqlite3_column_text(st, 0), name) != 0;
    pgcmk_db_done(st);
    return other;
}

static int
role_write(const char *ns, const char *mount, const char *name, json_t *body, char *msg,
           size_t msglen)
{
    struct role r = {0};
    struct key3 k = {ns, mount, name, NULL, NULL};
    char *cfg_text;
    int rc, found = role_get(ns, mount, name, &r);

    if (found < 0)
        return 500;
    if (!found) {
        r.cfg = role_defaults();
        pgcmk_uuid(r.role_id);
    }
    rc = role_apply(r.cfg, body, msg, msglen);
    if (rc == 0) {
        json_t *rid = json_object_get(body, "role_id");

        if (rid) {
            if (!json_is_string(rid) || *json_string_value(rid) == '\0') {
                rc = MSG("role_id cannot be empty");
                goto out;
            }
            snprintf(r.role_id, sizeof(r.role_id), "%s", json_string_value(rid));
        }
        if (role_id_owner(ns, mount, r.role_id, name)) {
            rc = MSG("role_id already in use");
            goto out;
        }
        cfg_text = json_dumps(r.cfg, JSON_COMPACT);
        k.a = r.role_id;
        k.b = cfg_text;
        rc = cfg_text && run_write(w_role_put, &k) == 0 ? 204 : 500;
        free(cfg_text);
    }
out:
    json_decref(r.cfg);
    return rc;
}

static int
secret_generate(const char *ns, const char *mount, const char *name, json_t *body, json_t **data,
                char *msg, size_t msglen)
{
    struct role r = {0};
    struct secret_new s = {0};
    char secret[37], accessor[37], hash[65];
    json_t *md = json_object_get(body, "metadata"), *v;
    char *md_text = NULL;
    int64_t ttl, uses;
    int found = role_get(ns, mount, name, &r), rc;

    if (found < 0)
        return 500;
    if (!found)
        return MSG("role \"%s\" does not exist", name);
    ttl = cfg_int(r.cfg, "secret_id_ttl");
    uses = cfg_int(r.cfg, "secret_id_num_uses");
    if ((v = json_object_get(body, "ttl")) != NULL) {
        int64_t t = dur(v);

        if (t < 0) {
            json_decref(r.cfg);
            return MSG("invalid ttl");
        }
        if (ttl == 0 || (t > 0 && t < ttl))
            ttl = t;
    }
    if ((v = json_object_get(body, "num_uses")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            json_decref(r.cfg);
            return MSG("num_uses cannot be negative");
        }
        if (uses == 0 || (json_integer_value(v) > 0 && json_integer_value(v) < uses))
            uses = json_integer_value(v);
    }
    if (md && json_is_string(md) && *json_string_value(md))
        md = json_loads(json_string_value(md), 0, NULL);
    else if (json_is_object(md))
        json_incref(md);
    else
        md = json_object();
    if (!json_is_object(md)) {
        json_decref(md);
        json_decref(r.cfg);
        return MSG("failed to parse metadata");
    }
    md_text = json_dumps(md, JSON_COMPACT);
    json_decref(md);
    pgcmk_uuid(secret);
    pgcmk_uuid(accessor);
    hash_secret(ns, mount, secret, hash);
    s.ns = ns;
    s.mount = mount;
    s.role = name;
    s.hash = hash;
    s.accessor = accessor;
    s.metadata = md_text ? md_text : "{}";
    s.created = pgcmk_clock_now();
    s.expires = ttl ? s.created + ttl * 1000 : 0;
    s.num_uses = uses;
    rc = run_write(w_secret_put, &s);
    free(md_text);
    json_decref(r.cfg);
    if (rc < 0) {
        explicit_bzero(secret, sizeof(secret));
        return 500;
    }
    *data = json_object();
    json_object_set_new(*data, "secret_id", json_string(secret));
    json_object_set_new(*data, "secret_id_accessor", json_string(accessor));
    json_object_set_new(*data, "secret_id_ttl", json_integer(ttl));
    json_object_set_new(*data, "secret_id_num_uses", json_integer(uses));
    explicit_bzero(secret, sizeof(secret));
    return 200;
}

static char *
iso_ms(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static json_t *
secret_data(const struct secret_row *s)
{
    json_t *d = json_object();
    char b[40];

    json_object_set_new(d, "secret_id_accessor", json_string(s->accessor));
    json_object_set_new(d, "creation_time", json_string(iso_ms(s->created, b, sizeof(b))));
    json_object_set_new(
        d, "expiration_time",
        json_string(s->expires ? iso_ms(s->expires, b, sizeof(b)) : "0001-01-01T00:00:00Z"));
    json_object_set_new(d, "last_updated_time", json_string(iso_ms(s->created, b, sizeof(b))));
    json_object_set(d, "metadata", s->metadata);
    json_object_set_new(d, "secret_id_num_uses", json_integer(s->uses_left));
    json_object_set_new(d, "secret_id_ttl",
                        json_integer(s->expires ? (s->expires - s->created) / 1000 : 0));
    json_object_set_new(d, "cidr_list", json_array());
    json_object_set_new(d, "token_bound_cidrs", json_array());
    return d;
}

/* rc (1 found) made 0 when the secret ID found has expired: it is removed. */
static int
secret_unexpired(const char *ns, const char *mount, int rc, struct secret_row *s)
{
    if (rc == 1 && s->expires && s->expires <= pgcmk_clock_now()) {
        struct key3 k = {ns, mount, s->hash, NULL, NULL};

        (void)run_write(w_secret_delete, &k);
        json_decref(s->metadata);
        s->metadata = NULL;
        return 0;
    }
    return rc;
}

/* A live secret ID (expired ones are removed and treated as absent). */
static int
secret_live(const char *ns, const char *mount, const char *key, int by_accessor,
            struct secret_row *s)
{
    return secret_unexpired(ns, mount, secret_get(ns, mount, key, by_accessor, s), s);
}

/* A role's settings as login reads them: the last text parsed is kept with its json_t (read
 * only; jansson's reference counts are atomic), so logins to one role parse it once. The text
 * is compared whole, so a changed role is parsed again; nothing else needs to invalidate it. */
static pthread_mutex_t role_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static char *role_cache_text;
static json_t *role_cache_cfg;

static json_t *
role_cfg_parse(const char *text)
{
    json_t *cfg = NULL;

    pthread_mutex_lock(&role_cache_mu);
    if (role_cache_text && strcmp(role_cache_text, text) == 0)
        cfg = json_incref(role_cache_cfg);
    pthread_mutex_unlock(&role_cache_mu);
    if (cfg)
        return cfg;
    cfg = json_loads(text, 0, NULL);
    if (cfg == NULL)
        return NULL;
    pthread_mutex_lock(&role_cache_mu);
    free(role_cache_text);
    json_decref(role_cache_cfg);
    role_cache_text = pgcmk_xstrdup(text);
    role_cache_cfg = json_incref(cfg);
    pthread_mutex_unlock(&role_cache_mu);
    return cfg;
}

static int
login(const char *ns, const char *mount, json_t *body, struct pgcmk_approle_login *out, char *msg,
      size_t msglen)
{
    const char *role_id = json_string_value(json_object_get(body, "role_id"));
    const char *secret = json_string_value(json_object_get(body, "secret_id"));
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err = {0};
    struct secret_row s;
    sqlite3_stmt *st;
    char name[256], hash[65] = "";
    json_t *cfg = NULL, *pol;
    int rc, found = 0;

    if (role_id == NULL || *role_id == '\0')
        return MSG("missing role_id");
    /* the role and the secret ID in one statement (one read of the store) */
    if (secret && *secret)
        hash_secret(ns, mount, secret, hash);
    memset(&s, 0, sizeof(s));
    st = pgcmk_db_stmt(db, PGCMK_STMT_HV_LOGIN_GET);
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, mount, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, role_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
    rc = pgcmk_db_step(db, st, "approle login", &err);
    if (rc == 1) {
        snprintf(name, sizeof(name), "%s", (const char *)sqlite3_column_text(st, 0));
        cfg = role_cfg_parse((const char *)sqlite3_column_text(st, 1));
        found = *hash && sqlite3_column_type(st, 2) != SQLITE_NULL;
        if (found)
            secret_fill(st, 2, hash, 0, &s);
    }
    pgcmk_db_done(st);
    if (rc < 0)
        return 500;
    if (rc == 0 || cfg == NULL) {
        json_decref(s.metadata);
        return MSG("invalid role ID");
    }
    if (json_is_true(json_object_get(cfg, "bind_secret_id"))) {
        if (secret == NULL || *secret == '\0') {
            json_decref(cfg);
            return MSG("missing secret_id");
        }
        rc = secret_unexpired(ns, mount, found, &s);
        if (rc == 0 || strcmp(s.role, name) != 0) {
            json_decref(s.metadata);
            json_decref(cfg);
            return MSG("invalid secret id");
        }
        if (s.num_uses > 0) {
            struct key3 k = {ns, mount, hash, NULL, NULL};

            if (s.uses_left <= 1)
                (void)run_write(w_secret_delete, &k);
            else
                (void)run_write(w_secret_use, &k);
        }
        out->metadata = json_object();
        json_object_update(out->metadata, s.metadata);
        json_decref(s.metadata);
    } else {
        json_decref(s.metadata); /* a secret ID the role does not ask for */
        out->metadata = json_object();
    }
    json_object_set_new(out->metadata, "role_name", json_string(name));
    snprintf(out->role_name, sizeof(out->role_name), "%s", name);
    pol = json_deep_copy(json_object_get(cfg, "token_policies"));
    if (!json_is_array(pol)) {
        json_decref(pol);
        pol = json_array();
    }
    out->no_default_policy = json_is_true(json_object_get(cfg, "token_no_default_policy"));
    out->policies = pol;
    out->ttl_s = cfg_int(cfg, "token_ttl");
    out->max_ttl_s = cfg_int(cfg, "token_max_ttl");
    out->period_s = cfg_int(cfg, "token_period");
    out->explicit_max_ttl_s = cfg_int(cfg, "token_explicit_max_ttl");
    out->num_uses = cfg_int(cfg, "token_num_uses");
    snprintf(out->token_type, sizeof(out->token_type), "%s",
             json_string_value(json_object_get(cfg, "token_type"))
                 ? json_string_value(json_object_get(cfg, "token_type"))
                 : "default");
    json_decref(cfg);
    return 200;
}

void
pgcmk_approle_login_free(struct pgcmk_approle_login *l)
{
    json_decref(l->policies);
    json_decref(l->metadata);
    l->policies = l->metadata = NULL;
}

int
pgcmk_approle_unauthenticated(const char *path)
{
    return strcmp(path, "login") == 0 || strcmp(path, "login/") == 0;
}

/* Splits "role/NAME[/REST]". */
static int
split_role(const char *path, char *name, size_t nlen, const char **rest)
{
    const char *p = path + 5, *slash;
    size_t n;

    slash = strchr(p, '/');
    n = slash ? (size_t)(slash - p) : strlen(p);
    if (!valid_role_name(p, n) || n >= nlen)
        return -1;
    memcpy(name, p, n);
    name[n] = '\0';
    *rest = slash ? slash + 1 : "";
    return 0;
}

int
pgcmk_approle_exists(const char *ns, const char *mount, const char *path)
{
    char name[256];
    const char *rest;
    struct role r = {0};
    int rc;

    if (strncmp(path, "role/", 5) != 0 || split_role(path, name, sizeof(name), &rest) < 0)
        return 0;
    rc = role_get(ns, mount, name, &r);
    json_decref(r.cfg);
    return rc == 1;
}

static int
list_rows(sqlite3_stmt *st, json_t **data)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err = {0};
    json_t *keys = json_array();

    if (pgcmk_db_each(db, st, pgcmk_db_collect_text, keys, "approle list", &err) < 0) {
        json_decref(keys);
        return 500;
    }
    if (json_array_size(keys) == 0) {
        json_decref(keys);
        return 404;
    }
    *data = json_object();
    json_object_set_new(*data, "keys", keys);
    return 200;
}

static int
handle(const char *ns, const char *mount, enum pgcmk_approle_op op, const char *path, json_t *body,
       json_t **data, struct pgcmk_approle_login *lg, char *msg, size_t msglen)
{
    struct pgcmk_db *db = pgcmk_db();
    char name[256];
    const char *rest;
    struct role r = {0};
    sqlite3_stmt *st;
    int rc;

    if (pgcmk_approle_unauthenticated(path)) {
        if (op != PGCMK_AR_WRITE)
            return 405;
        return login(ns, mount, body, lg, msg, msglen);
    }
    if (strcmp(path, "role") == 0 || strcmp(path, "role/") == 0) {
        if (op != PGCMK_AR_LIST)
            return 405;
        st = pgcmk_db_stmt(db, PGCMK_STMT_HV_ROLE_LIST);
        sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, mount, -1, SQLITE_STATIC);
        return list_rows(st, data);
    }
    if (strncmp(path, "role/", 5) != 0)
        return 404;
    if (split_role(path, name, sizeof(name), &rest) < 0)
        return MSG("invalid role name");
    if (*rest == '\0') {
        switch (op) {
        case PGCMK_AR_WRITE:
            return role_write(ns, mount, name, body, msg, msglen);
        case PGCMK_AR_READ:
            rc = role_get(ns, mount, name, &r);
            if (rc == 1)
                *data = role_data(r.cfg);
            json_decref(r.cfg);
            return rc < 0 ? 500 : rc ? 200 : 404;
        case PGCMK_AR_DELETE: {
            struct key3 k = {ns, mount, name, NULL, NULL};

            return run_write(w_role_delete, &k) < 0 ? 500 : 204;
        }
        default:
            return 405;
        }
    }
    rc = role_get(ns, mount, name, &r);
    if (rc < 0)
        return 500;
    if (rc == 0) {
        if (strcmp(rest, "role-id") == 0 && op == PGCMK_AR_READ)
            return 404;
        if (op == PGCMK_AR_LIST)
            return 404;
        return MSG("role \"%s\" does not exist", name);
    }
    json_decref(r.cfg);
    if (strcmp(rest, "role-id") == 0) {
        if (op == PGCMK_AR_READ) {
            *data = json_object();
            json_object_set_new(*data, "role_id", json_string(r.role_id));
            return 200;
        }
        if (op == PGCMK_AR_WRITE) {
            if (json_object_get(body, "role_id") == NULL)
                return MSG("missing role_id");
            return role_write(ns, mount, name, body, msg, msglen);
        }
        return 405;
    }
    if (strcmp(rest, "secret-id") == 0 || strcmp(rest, "secret-id/") == 0) {
        if (op == PGCMK_AR_WRITE)
            return secret_generate(ns, mount, name, body, data, msg, msglen);
        if (op == PGCMK_AR_LIST) {
            st = pgcmk_db_stmt(db, PGCMK_STMT_HV_SECRET_LIST);
            sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, mount, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 4, pgcmk_clock_now());
            return list_rows(st, data);
        }
        return 405;
    }
    if (strcmp(rest, "secret-id/lookup") == 0 || strcmp(rest, "secret-id/destroy") == 0 ||
        strcmp(rest, "secret-id-accessor/lookup") == 0 ||
        strcmp(rest, "secret-id-accessor/destroy") == 0) {
        int by_acc = strncmp(rest, "secret-id-accessor/", 19) == 0;
        int destroy = strstr(rest, "/destroy") != NULL;
        const char *key =
            json_string_value(json_object_get(body, by_acc ? "secret_id_accessor" : "secret_id"));
        char hash[65];
        struct secret_row s;

        if (!(op == PGCMK_AR_WRITE || (destroy && op == PGCMK_AR_DELETE)))
            return 405;
        if (key == NULL || *key == '\0')
            return MSG(by_acc ? "missing secret_id_accessor" : "missing secret_id");
        if (!by_acc)
            hash_secret(ns, mount, key, hash);
        rc = secret_live(ns, mount, by_acc ? key : hash, by_acc, &s);
        if (rc < 0)
            return 500;
        if (rc == 0 || strcmp(s.role, name) != 0) {
            json_decref(s.metadata);
            if (by_acc)
                return MSG("failed to find accessor entry for secret_id_accessor: \"%s\"", key);
            return 204;
        }
        if (destroy) {
            struct key3 k = {ns, mount, s.hash, s.accessor, NULL};

            json_decref(s.metadata);
            k.a = s.accessor;
            return run_write(w_secret_delete, &k) < 0 ? 500 : 204;
        }
        *data = secret_data(&s);
        json_decref(s.metadata);
        return 200;
    }
    return 404;
}

int
pgcmk_approle_handle(const char *ns, const char *mount, enum pgcmk_approle_op op, const char *path,
                     json_t *body, json_t **data, struct pgcmk_approle_login *lg, char *msg,
                     size_t msglen)
{
    json_t *own = NULL;
    int rc;

    *data = NULL;
    msg[0] = '\0';
    if (!json_is_object(body))
        body = own = json_object();
    rc = handle(ns, mount, op, path, body, data, lg, msg, msglen);
    json_decref(own);
    return rc;
}
