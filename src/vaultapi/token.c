/* token.c - Vault tokens: issue (the token API of auth backends), lookup (a hash table keyed by
 * the token's SHA-256, behind a read-write lock: requests only read it), TTL, period and
 * num_uses on the virtual clock, revocation with the children, and the auth/token/ backend.
 * Tokens are never stored: the store keeps the hash and the fields (migration 11). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/events.h"
#include "pgcmk/http.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"
#include "pgcmk/vaultapi.h"
#include "vaultapi/internal.h"

#define HV_TOK_BUCKETS   4096
#define HV_DEFAULT_TTL_S (768 * 3600)

struct hv_tok {
    struct pgcmk_hv_token t;
    int64_t creation_ttl_s;
    struct hv_tok *next;
};

static pthread_rwlock_t hv_tok_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct hv_tok *hv_tok_tab[HV_TOK_BUCKETS];

static void
hv_hash(const char *token, char out[65])
{
    unsigned char h[32];

    pgcmk_sha256(token, strlen(token), h);
    pgcmk_hex(h, sizeof(h), out);
}

static unsigned
hv_bucket(const char *hash)
{
    return (unsigned)strtoul((char[]){hash[0], hash[1], hash[2], '\0'}, NULL, 16) % HV_TOK_BUCKETS;
}

/* n random letters and digits into out, and m more into out2 (NULL when m is 0): one draw of
 * random bytes for both (a login takes a token and an accessor). */
static void
hv_random_text2(char *out, size_t n, char *out2, size_t m)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[64];

    if (n + m > sizeof(r))
        PGCMK_BUG("too many random letters");
    if (pgcmk_random(r, n + m))
        PGCMK_BUG("no random bytes");
    for (size_t i = 0; i < n; i++)
        out[i] = al[r[i] % (sizeof(al) - 1)];
    out[n] = '\0';
    for (size_t i = 0; i < m; i++)
        out2[i] = al[r[n + i] % (sizeof(al) - 1)];
    if (out2)
        out2[m] = '\0';
    OPENSSL_cleanse(r, sizeof(r));
}

static void
hv_random_text(char *out, size_t n)
{
    hv_random_text2(out, n, NULL, 0);
}

static void
hv_tok_free(struct hv_tok *t)
{
    json_decref(t->t.policies);
    json_decref(t->t.meta);
    free(t);
}

/* ---- store ---------------------------------------------------------------------------------- */

/* A token's row, made under hv_tok_lock and written after it is released: no store write waits
 * on SQLite while the lock is held (a transaction elsewhere may be waiting for the lock). */
struct hv_row {
    char hash[65];
    char *text;
    size_t len;
};

/* The row's body: the token's fields as a JSON object (hv_tok_load_row reads it back), written
 * directly rather than packed and dumped. */
static struct hv_row *
hv_row_make(const struct hv_tok *e)
{
    const struct pgcmk_hv_token *t = &e->t;
    struct hv_row *r = pgcmk_xcalloc(1, sizeof(*r));
    struct hv_buf b = {NULL, 0, 0};

    memcpy(r->hash, t->hash, sizeof(r->hash));
    hv_buf_lit(&b, "{\"hash\":");
    hv_buf_str(&b, t->hash);
    hv_buf_lit(&b, ",\"accessor\":");
    hv_buf_str(&b, t->accessor);
    hv_buf_lit(&b, ",\"ns\":");
    hv_buf_str(&b, t->ns);
    hv_buf_lit(&b, ",\"parent\":");
    hv_buf_str(&b, t->parent);
    hv_buf_lit(&b, ",\"display_name\":");
    hv_buf_str(&b, t->display_name);
    hv_buf_lit(&b, ",\"policies\":");
    hv_buf_json(&b, t->policies);
    hv_buf_lit(&b, ",\"meta\":");
    hv_buf_json(&b, t->meta);
#define I(k, v)                                                                                    \
    hv_buf_lit(&b, ",\"" k "\":");                                                                 \
    hv_buf_int(&b, (long long)(v))
    I("issue_ms", t->issue_ms);
    I("expire_ms", t->expire_ms);
    I("ttl_s", t->ttl_s);
    I("explicit_max_ttl_s", t->explicit_max_ttl_s);
    I("period_s", t->period_s);
    I("creation_ttl_s", e->creation_ttl_s);
    I("num_uses", t->num_uses);
#undef I
    hv_buf_lit(&b, t->renewable ? ",\"renewable\":true" : ",\"renewable\":false");
    hv_buf_lit(&b, t->root ? ",\"root\":true" : ",\"root\":false");
    hv_buf_lit(&b, t->orphan ? ",\"orphan\":true}" : ",\"orphan\":false}");
    r->text = hv_buf_take(&b, &r->len);
    return r;
}

static void
hv_row_write(struct hv_row *r)
{
    struct pgcmk_db *db;
    sqlite3_stmt *st;
    struct pgcmk_err err;

    if (r == NULL)
        return;
    db = pgcmk_db();
    st = pgcmk_db_stmt(db, PGCMK_STMT_HV_TOKEN_PUT);
    sqlite3_bind_text(st, 1, r->hash, 64, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->text, (int)r->len, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, NULL, NULL, "vault token", &err) < 0)
        LOG_WARN("vault token: %s", err.message);
    free(r->text);
    free(r);
}

static void
hv_tok_unstore(const char *hash)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HV_TOKEN_DELETE);
    struct pgcmk_err err;

    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, NULL, NULL, "vault token", &err) < 0)
        LOG_WARN("vault token: %s", err.message);
}

static void
hv_tok_insert(struct hv_tok *e)
{
    unsigned b = hv_bucket(e->t.hash);

    e->next = hv_tok_tab[b];
    hv_tok_tab[b] = e;
}

static int
hv_tok_load_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    json_t *o = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
    struct hv_tok *e;

    PGCMK_UNUSED(arg);
    PGCMK_UNUSED(err);
    if (o == NULL)
        return 0;
    e = pgcmk_xcalloc(1, sizeof(*e));
#define S(f, k)                                                                                    \
    snprintf(e->t.f, sizeof(e->t.f), "%s", json_string_value(json_object_get(o, k)) ?: "")
    S(hash, "hash");
    S(accessor, "accessor");
    S(ns, "ns");
    S(parent, "parent");
    S(display_name, "display_name");
#undef S
    e->t.policies = json_incref(json_object_get(o, "policies"));
    e->t.meta = json_incref(json_object_get(o, "meta"));
    if (e->t.policies == NULL)
        e->t.policies = json_array();
    if (e->t.meta == NULL)
        e->t.meta = json_null();
    e->t.issue_ms = json_integer_value(json_object_get(o, "issue_ms"));
    e->t.expire_ms = json_integer_value(json_object_get(o, "expire_ms"));
    e->t.ttl_s = json_integer_value(json_object_get(o, "ttl_s"));
    e->t.explicit_max_ttl_s = json_integer_value(json_object_get(o, "explicit_max_ttl_s"));
    e->t.period_s = json_integer_value(json_object_get(o, "period_s"));
    e->creation_ttl_s = json_integer_value(json_object_get(o, "creation_ttl_s"));
    e->t.num_uses = (int)json_integer_value(json_object_get(o, "num_uses"));
    e->t.renewable = json_is_true(json_object_get(o, "renewable"));
    e->t.root = json_is_true(json_object_get(o, "root"));
    e->t.orphan = json_is_true(json_object_get(o, "orphan"));
    json_decref(o);
    hv_tok_insert(e);
    return 0;
}

int
hv_tokens_load(void)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    char hash[65];
    struct pgcmk_hv_token t;

    if (pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_HV_TOKEN_LIST), hv_tok_load_row, NULL,
                      "vault tokens", &err) < 0) {
        LOG_ERR("vault tokens: %s", err.message);
        return -1;
    }
    hv_hash(PGCMK_HV_ROOT_TOKEN, hash);
    if (!pgcmk_hv_token_lookup(PGCMK_HV_ROOT_TOKEN, &t)) {
        struct hv_tok *e = pgcmk_xcalloc(1, sizeof(*e));

        snprintf(e->t.hash, sizeof(e->t.hash), "%s", hash);
        hv_random_text(e->t.accessor, 24);
        snprintf(e->t.display_name, sizeof(e->t.display_name), "root");
        e->t.policies = json_pack("[s]", "root");
        e->t.meta = json_null();
        e->t.issue_ms = pgcmk_clock_now();
        e->t.renewable = 0;
        e->t.root = 1;
        e->t.orphan = 1;
        struct hv_row *row;

        pthread_rwlock_wrlock(&hv_tok_lock);
        hv_tok_insert(e);
        row = hv_row_make(e);
        pthread_rwlock_unlock(&hv_tok_lock);
        hv_row_write(row);
    } else {
        pgcmk_hv_token_release(&t);
    }
    return 0;
}

void
hv_tokens_free(void)
{
    pthread_rwlock_wrlock(&hv_tok_lock);
    for (int i = 0; i < HV_TOK_BUCKETS; i++)
        while (hv_tok_tab[i]) {
            struct hv_tok *e = hv_tok_tab[i];

            hv_tok_tab[i] = e->next;
            hv_tok_free(e);
        }
    pthread_rwlock_unlock(&hv_tok_lock);
}

/* ---- lookup --------------------------------------------------------------------------------- */

static struct hv_tok *
hv_tok_by_hash(const char *hash)
{
    for (struct hv_tok *e = hv_tok_tab[hv_bucket(hash)]; e; e = e->next)
        if (strcmp(e->t.hash, hash) == 0)
            return e;
    return NULL;
}

static struct hv_tok *
hv_tok_by_accessor(const char *acc)
{
    for (int i = 0; i < HV_TOK_BUCKETS; i++)
        for (struct hv_tok *e = hv_tok_tab[i]; e; e = e->next)
            if (strcmp(e->t.accessor, acc) == 0)
                return e;
    return NULL;
}

static int
hv_tok_live(const struct hv_tok *e)
{
    return e->t.num_uses >= 0 && (e->t.expire_ms == 0 || pgcmk_clock_now() < e->t.expire_ms);
}

static void
hv_copy(const struct hv_tok *e, struct pgcmk_hv_token *out)
{
    *out = e->t;
    json_incref(out->policies);
    json_incref(out->meta);
}

int
pgcmk_hv_token_lookup(const char *token, struct pgcmk_hv_token *out)
{
    char hash[65];
    struct hv_tok *e;
    int ok = 0;

    if (token == NULL || *token == '\0' || strlen(token) > 256)
        return 0;
    hv_hash(token, hash);
    pthread_rwlock_rdlock(&hv_tok_lock);
    e = hv_tok_by_hash(hash);
    if (e && hv_tok_live(e)) {
        hv_copy(e, out);
        ok = 1;
    }
    pthread_rwlock_unlock(&hv_tok_lock);
    return ok;
}

void
pgcmk_hv_token_release(struct pgcmk_hv_token *t)
{
    json_decref(t->policies);
    json_decref(t->meta);
    t->policies = t->meta = NULL;
}

/* ---- revoke --------------------------------------------------------------------------------- */

/* Unlinks e (write lock held) and collects it in *gone. */
static void
hv_tok_unlink(struct hv_tok *e)
{
    struct hv_tok **pp = &hv_tok_tab[hv_bucket(e->t.hash)];

    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
}

struct hv_gone {
    struct hv_tok **v;
    int n, cap;
    struct hv_row **rows; /* orphaned children to write */
    int n_rows, cap_rows;
};

static void
hv_gone_add(struct hv_gone *g, struct hv_tok *e)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 8;
        g->v = pgcmk_xrealloc(g->v, (size_t)g->cap * sizeof(*g->v));
    }
    g->v[g->n++] = e;
}

/* Revokes e and (unless orphan_children) its descendants; write lock held. */
static void
hv_revoke_locked(struct hv_tok *e, int orphan_children, struct hv_gone *g)
{
    hv_tok_unlink(e);
    hv_gone_add(g, e);
    for (int i = 0; i < HV_TOK_BUCKETS; i++)
        for (struct hv_tok *c = hv_tok_tab[i], *next; c; c = next) {
            next = c->next;
            if (strcmp(c->t.parent, e->t.accessor) != 0)
                continue;
            if (orphan_children) {
                c->t.parent[0] = '\0';
                c->t.orphan = 1;
                if (g->n_rows == g->cap_rows) {
                    g->cap_rows = g->cap_rows ? g->cap_rows * 2 : 8;
                    g->rows = pgcmk_xrealloc(g->rows, (size_t)g->cap_rows * sizeof(*g->rows));
                }
                g->rows[g->n_rows++] = hv_row_make(c);
            } else {
                hv_revoke_locked(c, 0, g);
                next = hv_tok_tab[i]; /* the chain may have changed: start it over */
            }
        }
}

static void
hv_gone_finish(struct hv_gone *g)
{
    for (int i = 0; i < g->n; i++) {
        struct hv_tok *e = g->v[i];
        struct pgcmk_event ev;
        char *d;

        hv_tok_unstore(e->t.hash);
        memset(&ev, 0, sizeof(ev));
        ev.kind = PGCMK_EV_HV_TOKEN_REVOKED;
        ev.resource_id = e->t.ns;
        ev.object_id = e->t.accessor;
        pgcmk_events_publish(&ev);
        d = pgcmk_xasprintf("token with accessor %s revoked", e->t.accessor);
        hv_activity(e->t.ns, "auth/token/", "pgcmk.Vault/tokens/revoke/action", d);
        free(d);
        hv_tok_free(e);
    }
    free(g->v);
    for (int i = 0; i < g->n_rows; i++)
        hv_row_write(g->rows[i]);
    free(g->rows);
}

static int
hv_revoke(struct hv_tok *e, int orphan_children)
{
    struct hv_gone g = {NULL, 0, 0, NULL, 0, 0};

    hv_revoke_locked(e, orphan_children, &g);
    pthread_rwlock_unlock(&hv_tok_lock);
    hv_gone_finish(&g);
    return 1;
}

int
pgcmk_hv_token_revoke_accessor(const char *accessor)
{
    struct hv_tok *e;

    pthread_rwlock_wrlock(&hv_tok_lock);
    e = hv_tok_by_accessor(accessor);
    if (e == NULL) {
        pthread_rwlock_unlock(&hv_tok_lock);
        return 0;
    }
    return hv_revoke(e, 0);
}

void
hv_tokens_drop_ns(const char *ns)
{
    struct hv_gone g = {NULL, 0, 0, NULL, 0, 0};
    size_t n = strlen(ns);

    pthread_rwlock_wrlock(&hv_tok_lock);
    for (int i = 0; i < HV_TOK_BUCKETS; i++)
        for (struct hv_tok *e = hv_tok_tab[i], *next; e; e = next) {
            next = e->next;
            if (strncmp(e->t.ns, ns, n) == 0) {
                hv_tok_unlink(e);
                hv_gone_add(&g, e);
            }
        }
    pthread_rwlock_unlock(&hv_tok_lock);
    hv_gone_finish(&g);
}

int
hv_token_use(const struct pgcmk_hv_token *t)
{
    struct hv_tok *e;

    pthread_rwlock_wrlock(&hv_tok_lock);
    e = hv_tok_by_hash(t->hash);
    if (e == NULL || e->t.num_uses <= 0) {
        pthread_rwlock_unlock(&hv_tok_lock);
        return e == NULL ? -1 : 0;
    }
    if (--e->t.num_uses == 0) {
        /* the last use: the request goes on (the token is revoked after it, by the pipeline);
         * nobody else can use it meanwhile */
        e->t.num_uses = -1;
        pthread_rwlock_unlock(&hv_tok_lock);
        return 1;
    }
    {
        struct hv_row *row = hv_row_make(e);

        pthread_rwlock_unlock(&hv_tok_lock);
        hv_row_write(row);
    }
    return 0;
}

/* ---- issue ---------------------------------------------------------------------------------- */

static json_t *
hv_policies_of(const char *const *p, int n, int no_default)
{
    json_t *a = json_array();
    int has_root = 0;

    for (int i = 0; i < n; i++)
        has_root |= strcmp(p[i], "root") == 0;
    if (!no_default && !has_root)
        json_array_append_new(a, json_string("default"));
    for (int i = 0; i < n; i++) {
        size_t j;
        json_t *x;
        int dup = 0;

        if (*p[i] == '\0')
            continue;
        json_array_foreach(a, j, x)
            dup |= strcmp(json_string_value(x), p[i]) == 0;
        if (!dup)
            json_array_append_new(a, json_string(p[i]));
    }
    /* sorted, as Vault answers them */
    for (size_t i = 1; i < json_array_size(a); i++)
        for (size_t j = i; j > 0 && strcmp(json_string_value(json_array_get(a, j - 1)),
                                           json_string_value(json_array_get(a, j))) > 0;
             j--) {
            json_t *x = json_incref(json_array_get(a, j));

            json_array_set(a, j, json_array_get(a, j - 1));
            json_array_set_new(a, j - 1, x);
        }
    return a;
}

static int64_t
hv_ttl_left(const struct pgcmk_hv_token *t)
{
    int64_t left;

    if (t->expire_ms == 0)
        return 0;
    left = (t->expire_ms - pgcmk_clock_now() + 999) / 1000;
    return left > 0 ? left : 0;
}

static json_t *
hv_auth_block(const char *client_token, const struct hv_tok *e)
{
    const struct pgcmk_hv_token *t = &e->t;

    return json_pack("{s:s, s:s, s:O, s:O, s:O, s:I, s:b, s:s, s:s, s:b, s:n, s:i}", "client_token",
                     client_token, "accessor", t->accessor, "policies", t->policies,
                     "token_policies", t->policies, "metadata", t->meta, "lease_duration",
                     (json_int_t)hv_ttl_left(t), "renewable", t->renewable, "entity_id", "",
                     "token_type", "service", "orphan", t->orphan, "mfa_requirement", "num_uses",
                     t->num_uses);
}

/* hv_auth_block as JSON text (the same bytes json_dumps(JSON_COMPACT) gave of it). */
static char *
hv_auth_text(const char *client_token, const struct hv_tok *e)
{
    const struct pgcmk_hv_token *t = &e->t;
    struct hv_buf b = {NULL, 0, 0};

    hv_buf_lit(&b, "{\"client_token\":");
    hv_buf_str(&b, client_token);
    hv_buf_lit(&b, ",\"accessor\":");
    hv_buf_str(&b, t->accessor);
    hv_buf_lit(&b, ",\"policies\":");
    hv_buf_json(&b, t->policies);
    hv_buf_lit(&b, ",\"token_policies\":");
    hv_buf_json(&b, t->policies);
    hv_buf_lit(&b, ",\"metadata\":");
    hv_buf_json(&b, t->meta);
    hv_buf_lit(&b, ",\"lease_duration\":");
    hv_buf_int(&b, (long long)hv_ttl_left(t));
    hv_buf_lit(&b, t->renewable ? ",\"renewable\":true" : ",\"renewable\":false");
    hv_buf_lit(&b, ",\"entity_id\":\"\",\"token_type\":\"service\"");
    hv_buf_lit(&b, t->orphan ? ",\"orphan\":true" : ",\"orphan\":false");
    hv_buf_lit(&b, ",\"mfa_requirement\":null,\"num_uses\":");
    hv_buf_int(&b, t->num_uses);
    hv_buf_raw(&b, "}", 1);
    return hv_buf_take(&b, NULL);
}

int
pgcmk_hv_token_issue(const struct pgcmk_hv_token_spec *spec, char **auth, struct pgcmk_err *err)
{
    struct hv_tok *e = pgcmk_xcalloc(1, sizeof(*e));
    struct hv_row *row;
    char token[40];
    int64_t ttl = spec->ttl_s;

    if (spec->id && *spec->id) {
        if (strlen(spec->id) >= sizeof(token)) {
            free(e);
            return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, NULL, "token ID is too long");
        }
        snprintf(token, sizeof(token), "%s", spec->id);
    } else {
        memcpy(token, "hvs.", 4);
        hv_random_text2(token + 4, 28, e->t.accessor, 24);
    }
    hv_hash(token, e->t.hash);
    pthread_rwlock_rdlock(&hv_tok_lock);
    if (hv_tok_by_hash(e->t.hash)) {
        pthread_rwlock_unlock(&hv_tok_lock);
        memset(token, 0, sizeof(token));
        free(e);
        return pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL,
                             "cannot create a token with a duplicate ID");
    }
    pthread_rwlock_unlock(&hv_tok_lock);
    if (e->t.accessor[0] == '\0')
        hv_random_text(e->t.accessor, 24);
    snprintf(e->t.ns, sizeof(e->t.ns), "%s", spec->ns ? spec->ns : "");
    snprintf(e->t.parent, sizeof(e->t.parent), "%s",
             spec->parent_accessor ? spec->parent_accessor : "");
    e->t.orphan = e->t.parent[0] == '\0';
    snprintf(e->t.display_name, sizeof(e->t.display_name), "%s",
             spec->display_name && *spec->display_name ? spec->display_name : "token");
    e->t.policies = hv_policies_of(spec->policies, spec->n_policies, spec->no_default_policy);
    for (size_t i = 0; i < json_array_size(e->t.policies); i++)
        e->t.root |= strcmp(json_string_value(json_array_get(e->t.policies, i)), "root") == 0;
    e->t.meta = json_is_object(spec->meta) ? json_deep_copy(spec->meta) : json_null();
    e->t.issue_ms = pgcmk_clock_now();
    e->t.period_s = spec->period_s;
    e->t.explicit_max_ttl_s = spec->explicit_max_ttl_s;
    if (spec->period_s > 0)
        ttl = spec->period_s;
    else if (ttl == 0 && !e->t.root)
        ttl = HV_DEFAULT_TTL_S;
    if (spec->explicit_max_ttl_s > 0 && (ttl == 0 || ttl > spec->explicit_max_ttl_s))
        ttl = spec->explicit_max_ttl_s;
    e->t.ttl_s = ttl;
    e->creation_ttl_s = ttl;
    e->t.expire_ms = ttl > 0 ? e->t.issue_ms + ttl * 1000 : 0;
    e->t.num_uses = spec->num_uses > 0 ? spec->num_uses : 0;
    e->t.renewable = spec->renewable && ttl > 0;
    *auth = hv_auth_text(token, e);
    row = hv_row_make(e);
    pthread_rwlock_wrlock(&hv_tok_lock);
    hv_tok_insert(e);
    pthread_rwlock_unlock(&hv_tok_lock);
    hv_row_write(row);
    memset(token, 0, sizeof(token));
    return 0;
}

/* ---- the auth/token/ backend ---------------------------------------------------------------- */

static json_t *
hv_lookup_data(const struct hv_tok *e, const char *id)
{
    const struct pgcmk_hv_token *t = &e->t;
    char issue[PGCMK_TIME_LEN], expire[PGCMK_TIME_LEN];

    pgcmk_time_format(t->issue_ms, issue);
    if (t->expire_ms)
        pgcmk_time_format(t->expire_ms, expire);
    return json_pack(
        "{s:s, s:I, s:I, s:s, s:s, s:s?, s:I, s:s, s:s, s:O, s:i, s:b, s:s, s:O, "
        "s:b, s:I, s:s, s:o?}",
        "accessor", t->accessor, "creation_time", (json_int_t)(t->issue_ms / 1000), "creation_ttl",
        (json_int_t)e->creation_ttl_s, "display_name", t->display_name, "entity_id", "",
        "expire_time", t->expire_ms ? expire : NULL, "explicit_max_ttl",
        (json_int_t)t->explicit_max_ttl_s, "id", id, "issue_time", issue, "meta", t->meta,
        "num_uses", t->num_uses, "orphan", t->orphan, "path",
        t->root && t->orphan && strcmp(t->display_name, "root") == 0 ? "auth/token/root"
                                                                     : "auth/token/create",
        "policies", t->policies, "renewable", t->renewable, "ttl", (json_int_t)hv_ttl_left(t),
        "type", "service", "period", t->period_s ? (json_t *)json_integer(t->period_s) : NULL);
}

/* The token a request names: body "token" (or the caller's for *-self). Locks are taken by the
 * caller. */
static struct hv_tok *
hv_named(const struct pgcmk_hv_req *rq, int self, const char *field)
{
    char buf[300], hash[65];
    const char *v;

    if (self) {
        struct hv_tok *e = rq->token ? hv_tok_by_hash(rq->token->hash) : NULL;

        /* the caller's own token, even on its last use */
        return e && (hv_tok_live(e) || e->t.num_uses < 0) ? e : NULL;
    }
    v = pgcmk_hv_field(rq, field, buf, sizeof(buf));
    if (v == NULL || *v == '\0')
        return NULL;
    if (strcmp(field, "accessor") == 0) {
        struct hv_tok *e = hv_tok_by_accessor(v);

        return e && hv_tok_live(e) ? e : NULL;
    }
    hv_hash(v, hash);
    memset(buf, 0, sizeof(buf));
    {
        struct hv_tok *e = hv_tok_by_hash(hash);

        return e && hv_tok_live(e) ? e : NULL;
    }
}

static int
hv_tok_create(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs, int orphan)
{
    struct pgcmk_hv_token_spec spec;
    const char *pol[64];
    int n = 0;
    json_t *p = rq->body ? json_object_get(rq->body, "policies") : NULL, *v;
    char *auth;
    char buf[256], name[160], idbuf[64];
    const char *s;
    struct pgcmk_err err;
    int64_t d;

    memset(&spec, 0, sizeof(spec));
    spec.ns = rq->ns;
    spec.renewable = 1;
    if (json_is_array(p)) {
        size_t i;
        json_t *x;

        json_array_foreach(p, i, x) {
            if (!json_is_string(x))
                return pgcmk_hv_error(rs, 400, "policies must be a list of strings");
            if (n < 64)
                pol[n++] = json_string_value(x);
        }
    } else if (json_is_string(p)) {
        pol[n++] = json_string_value(p);
    } else if (p == NULL || json_is_null(p)) {
        for (size_t i = 0; i < json_array_size(rq->token->policies) && n < 64; i++)
            if (strcmp(json_string_value(json_array_get(rq->token->policies, i)), "default"))
                pol[n++] = json_string_value(json_array_get(rq->token->policies, i));
    } else {
        return pgcmk_hv_error(rs, 400, "policies must be a list of strings");
    }
    if (!rq->token->root)
        for (int i = 0; i < n; i++) {
            int found = strcmp(pol[i], "default") == 0;

            for (size_t j = 0; j < json_array_size(rq->token->policies) && !found; j++)
                found =
                    strcmp(json_string_value(json_array_get(rq->token->policies, j)), pol[i]) == 0;
            if (!found)
                return pgcmk_hv_error(rs, 400, "child policies must be subset of parent");
        }
    spec.policies = pol;
    spec.n_policies = n;
#define DUR(field, dst)                                                                            \
    if (rq->body && (v = json_object_get(rq->body, field)) && !json_is_null(v) &&                  \
        !(json_is_string(v) && *json_string_value(v) == '\0')) {                                   \
        if (pgcmk_hv_duration(v, &d))                                                              \
            return pgcmk_hv_error(rs, 400, "error parsing %s: invalid duration", field);           \
        dst = d;                                                                                   \
    }
    DUR("ttl", spec.ttl_s)
    DUR("lease", spec.ttl_s)
    DUR("explicit_max_ttl", spec.explicit_max_ttl_s)
    DUR("period", spec.period_s)
#undef DUR
    if ((s = pgcmk_hv_field(rq, "num_uses", buf, sizeof(buf))) != NULL) {
        char *end;
        long u = strtol(s, &end, 10);

        if (*end || u < 0)
            return pgcmk_hv_error(rs, 400, "number of uses cannot be negative");
        spec.num_uses = (int)u;
    }
    if ((s = pgcmk_hv_field(rq, "renewable", buf, sizeof(buf))) != NULL)
        spec.renewable = strcmp(s, "false") != 0 && strcmp(s, "0") != 0;
    if ((s = pgcmk_hv_field(rq, "no_default_policy", buf, sizeof(buf))) != NULL)
        spec.no_default_policy = strcmp(s, "true") == 0;
    if ((s = pgcmk_hv_field(rq, "no_parent", buf, sizeof(buf))) != NULL && strcmp(s, "true") == 0)
        orphan = 1;
    if (orphan && !rq->token->root)
        return pgcmk_hv_error(rs, 400, "root or sudo privileges required to create orphan token");
    s = pgcmk_hv_field(rq, "display_name", buf, sizeof(buf));
    snprintf(name, sizeof(name), "token%s%s", s && *s ? "-" : "", s ? s : "");
    spec.display_name = name;
    v = rq->body ? json_object_get(rq->body, "meta") : NULL;
    if (v && !json_is_null(v)) {
        const char *k;
        json_t *x;

        if (!json_is_object(v))
            return pgcmk_hv_error(rs, 400, "meta must be a map of strings");
        json_object_foreach(v, k, x)
            if (!json_is_string(x))
                return pgcmk_hv_error(rs, 400, "meta must be a map of strings");
        spec.meta = v;
    }
    spec.parent_accessor = orphan ? NULL : rq->token->accessor;
    if ((s = pgcmk_hv_field(rq, "id", idbuf, sizeof(idbuf))) != NULL && *s) {
        if (!rq->token->root)
            return pgcmk_hv_error(rs, 400, "root or sudo privileges required to specify token id");
        spec.id = s;
    }
    if (pgcmk_hv_token_issue(&spec, &auth, &err)) {
        memset(idbuf, 0, sizeof(idbuf));
        return pgcmk_hv_error(rs, 400, "%s", err.message);
    }
    memset(idbuf, 0, sizeof(idbuf));
    rs->auth_text = auth;
    rs->status = 200;
    return 0;
}

static int
hv_tok_renew(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs, int self, const char *field)
{
    struct hv_tok *e;
    json_t *inc = rq->body ? json_object_get(rq->body, "increment") : NULL;
    int64_t ttl, now = pgcmk_clock_now();
    char token_id[8] = "";
    struct hv_row *row;

    pthread_rwlock_wrlock(&hv_tok_lock);
    e = hv_named(rq, self, field);
    if (e == NULL) {
        pthread_rwlock_unlock(&hv_tok_lock);
        return pgcmk_hv_error(rs, 400, self ? PGCMK_HV_E_DENIED : "invalid token");
    }
    if (!e->t.renewable) {
        pthread_rwlock_unlock(&hv_tok_lock);
        return pgcmk_hv_error(rs, 400, "lease is not renewable");
    }
    ttl = e->t.period_s ? e->t.period_s : e->creation_ttl_s;
    if (!e->t.period_s && inc && !json_is_null(inc)) {
        int64_t s;

        if (pgcmk_hv_duration(inc, &s)) {
            pthread_rwlock_unlock(&hv_tok_lock);
            return pgcmk_hv_error(rs, 400, "invalid increment");
        }
        if (s > 0)
            ttl = s;
    }
    if (e->t.explicit_max_ttl_s > 0) {
        int64_t cap = e->t.issue_ms / 1000 + e->t.explicit_max_ttl_s - now / 1000;

        if (ttl > cap)
            ttl = cap > 0 ? cap : 0;
    }
    e->t.ttl_s = ttl;
    e->t.expire_ms = now + ttl * 1000;
    row = hv_row_make(e);
    rs->auth = hv_auth_block(token_id, e);
    json_object_del(rs->auth, "client_token");
    json_object_set_new(rs->auth, "client_token", json_string(""));
    pthread_rwlock_unlock(&hv_tok_lock);
    hv_row_write(row);
    rs->status = 200;
    return 0;
}

static int
hv_tok_handle(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs)
{
    const char *r = rq->rest;
    int write = rq->op == PGCMK_HV_WRITE;
    struct hv_tok *e;

    if (strcmp(r, "create") == 0 || strcmp(r, "create-orphan") == 0) {
        if (!write)
            return pgcmk_hv_bad_method(rs);
        return hv_tok_create(rq, rs, r[6] == '-');
    }
    if (strcmp(r, "lookup-self") == 0 || strcmp(r, "lookup") == 0 ||
        strcmp(r, "lookup-accessor") == 0 || strncmp(r, "lookup/", 7) == 0) {
        int self = strcmp(r, "lookup-self") == 0, acc = strcmp(r, "lookup-accessor") == 0;
        char buf[300];
        const char *id = NULL;

        if (!(write || (rq->op == PGCMK_HV_READ && (self || strncmp(r, "lookup/", 7) == 0))))
            return pgcmk_hv_bad_method(rs);
        pthread_rwlock_rdlock(&hv_tok_lock);
        if (strncmp(r, "lookup/", 7) == 0) {
            char hash[65];

            hv_hash(r + 7, hash);
            e = hv_tok_by_hash(hash);
            if (e && !hv_tok_live(e))
                e = NULL;
            id = r + 7;
        } else {
            e = hv_named(rq, self, acc ? "accessor" : "token");
            id = self ? pgcmk_req_header(rq->http, "X-Vault-Token") : NULL;
            if (self && id == NULL) {
                id = pgcmk_req_header(rq->http, "Authorization");
                id = id && strlen(id) > 7 ? id + 7 : "";
            }
            if (!self && !acc)
                id = pgcmk_hv_field(rq, "token", buf, sizeof(buf));
        }
        if (e == NULL) {
            pthread_rwlock_unlock(&hv_tok_lock);
            if (self)
                return pgcmk_hv_error(rs, 403, PGCMK_HV_E_DENIED);
            return pgcmk_hv_error(rs, 400, acc ? "invalid accessor" : "bad token");
        }
        rs->data = hv_lookup_data(e, acc ? "" : id ? id : "");
        pthread_rwlock_unlock(&hv_tok_lock);
        memset(buf, 0, sizeof(buf));
        rs->status = 200;
        return 0;
    }
    if (strcmp(r, "renew-self") == 0 || strcmp(r, "renew") == 0 ||
        strcmp(r, "renew-accessor") == 0) {
        if (!write)
            return pgcmk_hv_bad_method(rs);
        return hv_tok_renew(rq, rs, r[5] == '-' && r[6] == 's',
                            strcmp(r, "renew-accessor") == 0 ? "accessor" : "token");
    }
    if (strcmp(r, "revoke-self") == 0 || strcmp(r, "revoke") == 0 ||
        strcmp(r, "revoke-accessor") == 0 || strcmp(r, "revoke-orphan") == 0) {
        int self = strcmp(r, "revoke-self") == 0, orphan = strcmp(r, "revoke-orphan") == 0;

        if (!write)
            return pgcmk_hv_bad_method(rs);
        if (orphan && !rq->token->root)
            return pgcmk_hv_error(rs, 403, PGCMK_HV_E_DENIED);
        pthread_rwlock_wrlock(&hv_tok_lock);
        e = hv_named(rq, self, strcmp(r, "revoke-accessor") == 0 ? "accessor" : "token");
        if (e == NULL) {
            pthread_rwlock_unlock(&hv_tok_lock);
            if (!self &&
                !pgcmk_hv_field(rq, strcmp(r, "revoke-accessor") == 0 ? "accessor" : "token",
                                (char[8]){0}, 8))
                return pgcmk_hv_error(rs, 400, "missing token");
            return pgcmk_hv_no_content(rs); /* Vault: revoking an unknown token is no error */
        }
        hv_revoke(e, orphan); /* unlocks */
        return pgcmk_hv_no_content(rs);
    }
    if (strcmp(r, "accessors") == 0) {
        json_t *keys;

        if (rq->op != PGCMK_HV_LIST)
            return pgcmk_hv_bad_method(rs);
        keys = json_array();
        pthread_rwlock_rdlock(&hv_tok_lock);
        for (int i = 0; i < HV_TOK_BUCKETS; i++)
            for (e = hv_tok_tab[i]; e; e = e->next)
                if (strcmp(e->t.ns, rq->ns) == 0 && hv_tok_live(e))
                    json_array_append_new(keys, json_string(e->t.accessor));
        pthread_rwlock_unlock(&hv_tok_lock);
        return pgcmk_hv_data(rs, json_pack("{s:o}", "keys", keys));
    }
    return pgcmk_hv_error(rs, 404, PGCMK_HV_E_UNSUPPORTED);
}

static unsigned
hv_tok_capability(struct pgcmk_hv_req *rq)
{
    switch (rq->op) {
    case PGCMK_HV_READ:
        return PGCMK_HV_CAP_READ;
    case PGCMK_HV_LIST:
        return PGCMK_HV_CAP_LIST | PGCMK_HV_CAP_SUDO;
    case PGCMK_HV_DELETE:
        return PGCMK_HV_CAP_DELETE;
    default:
        return PGCMK_HV_CAP_UPDATE;
    }
}

const struct pgcmk_vbackend hv_token_backend = {
    "token", 1, hv_tok_capability, hv_tok_handle, NULL, NULL, NULL, 0,
};
