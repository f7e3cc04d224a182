/* objects.c - the KMIP managed objects (objects.h): the in-memory table, its rows in
 * kmip_objects (columns for what other modules read, the rest as JSON; the key material sealed
 * under the master key with aad = uid), the state machine on the virtual clock, and the event and
 * Activity Log entry of every change, written in the change's transaction. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kmip/objects.h"
#include "pgcmk/clock.h"
#include "pgcmk/core.h"
#include "pgcmk/events.h"
#include "pgcmk/log.h"
#include "pgcmk/monitor.h"
#include "pgcmk/store.h"
#include "pgcmk/wellknown.h"

static pthread_mutex_t g_mu;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static struct kmip_obj **g_tab; /* g_tab[id - 1] */
static size_t g_cap;
static uint64_t g_max;
static int g_loaded;

static void
mu_init(void)
{
    pthread_mutexattr_t a;

    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&g_mu, &a);
    pthread_mutexattr_destroy(&a);
}

void
kmip_lock(void)
{
    pthread_once(&g_once, mu_init);
    pthread_mutex_lock(&g_mu);
}

void
kmip_unlock(void)
{
    pthread_mutex_unlock(&g_mu);
}

int64_t
kmip_now(void)
{
    return pgcmk_clock_now() / 1000;
}

static const char *const state_names[] = {
    NULL, "PreActive", "Active", "Deactivated", "Compromised", "Destroyed", "DestroyedCompromised"};

const char *
kmip_state_name(uint32_t state)
{
    return state >= 1 && state <= 6 ? state_names[state] : "Unknown";
}

static const char *const rev_names[] = {
    NULL,         "Unspecified",          "KeyCompromise",     "CACompromise", "AffiliationChanged",
    "Superseded", "CessationOfOperation", "PrivilegeWithdrawn"};

const char *
kmip_revocation_name(uint32_t code)
{
    return code >= 1 && code <= 7 ? rev_names[code] : NULL;
}

int
kmip_revocation_parse(const char *s, uint32_t *out)
{
    for (uint32_t i = 1; i <= 7; i++)
        if (strcmp(s, rev_names[i]) == 0) {
            *out = i;
            return 0;
        }
    return -1;
}

/* ---- objects ---- */

struct kmip_obj *
kmip_obj_new(const char *owner)
{
    struct kmip_obj *o = pgcmk_xcalloc(1, sizeof(*o));

    o->owner = pgcmk_xstrdup(owner);
    return o;
}

static uint8_t *
memdup(const void *p, size_t n)
{
    uint8_t *q = pgcmk_xmalloc(n ? n : 1);

    if (n)
        memcpy(q, p, n);
    return q;
}

struct kmip_obj *
kmip_obj_clone(const struct kmip_obj *o)
{
    struct kmip_obj *c = pgcmk_xmalloc(sizeof(*c));

    *c = *o;
    c->owner = pgcmk_xstrdup(o->owner);
    c->rev_msg = o->rev_msg ? pgcmk_xstrdup(o->rev_msg) : NULL;
    c->names = o->n_names ? pgcmk_xcalloc(o->n_names, sizeof(*c->names)) : NULL;
    for (size_t i = 0; i < o->n_names; i++) {
        c->names[i].value = pgcmk_xstrdup(o->names[i].value);
        c->names[i].type = o->names[i].type;
    }
    c->gattrs = o->n_gattrs ? pgcmk_xcalloc(o->n_gattrs, sizeof(*c->gattrs)) : NULL;
    for (size_t i = 0; i < o->n_gattrs; i++) {
        c->gattrs[i].name = pgcmk_xstrdup(o->gattrs[i].name);
        c->gattrs[i].val = memdup(o->gattrs[i].val, o->gattrs[i].len);
        c->gattrs[i].len = o->gattrs[i].len;
    }
    c->sealed = o->sealed ? memdup(o->sealed, o->sealed_len) : NULL;
    return c;
}

void
kmip_obj_free(struct kmip_obj *o)
{
    if (!o)
        return;
    free(o->owner);
    free(o->rev_msg);
    for (size_t i = 0; i < o->n_names; i++)
        free(o->names[i].value);
    free(o->names);
    for (size_t i = 0; i < o->n_gattrs; i++) {
        free(o->gattrs[i].name);
        free(o->gattrs[i].val);
    }
    free(o->gattrs);
    pgcmk_secret_free(o->sealed, o->sealed_len);
    free(o);
}

int
kmip_obj_seal(struct kmip_obj *o, const uint8_t *key, size_t n)
{
    unsigned char *s = NULL;
    size_t sl = 0;

    if (pgcmk_store_seal(key, n, o->uid, &s, &sl))
        return -1;
    pgcmk_secret_free(o->sealed, o->sealed_len);
    o->sealed = s;
    o->sealed_len = sl;
    return 0;
}

int
kmip_obj_unseal(const struct kmip_obj *o, uint8_t **key, size_t *n)
{
    unsigned char *p = NULL;

    if (!o->sealed || pgcmk_store_unseal(o->sealed, o->sealed_len, o->uid, &p, n))
        return -1;
    *key = p;
    return 0;
}

/* ---- generic attributes ---- */

const struct kmip_gattr *
kmip_gattr_get(const struct kmip_obj *o, const char *name, size_t index)
{
    for (size_t i = 0; i < o->n_gattrs; i++)
        if (strcmp(o->gattrs[i].name, name) == 0 && index-- == 0)
            return &o->gattrs[i];
    return NULL;
}

size_t
kmip_gattr_count(const struct kmip_obj *o, const char *name)
{
    size_t n = 0;

    for (size_t i = 0; i < o->n_gattrs; i++)
        n += strcmp(o->gattrs[i].name, name) == 0;
    return n;
}

static int
encode_value(const struct pgcmk_ttlv *value, uint8_t **out, size_t *out_len)
{
    struct pgcmk_ttlv_err e;
    size_t need = pgcmk_ttlv_encoded_len(value);
    uint8_t *b;

    if (need == 0)
        return -1;
    b = pgcmk_xmalloc(need);
    if (pgcmk_ttlv_encode(value, b, need, out_len, &e)) {
        free(b);
        return -1;
    }
    *out = b;
    return 0;
}

void
kmip_gattr_add(struct kmip_obj *o, const char *name, const struct pgcmk_ttlv *value)
{
    uint8_t *b;
    size_t n;

    if (encode_value(value, &b, &n))
        return;
    o->gattrs = pgcmk_xrealloc(o->gattrs, (o->n_gattrs + 1) * sizeof(*o->gattrs));
    o->gattrs[o->n_gattrs].name = pgcmk_xstrdup(name);
    o->gattrs[o->n_gattrs].val = b;
    o->gattrs[o->n_gattrs].len = n;
    o->n_gattrs++;
}

int
kmip_gattr_set(struct kmip_obj *o, const char *name, size_t index, const struct pgcmk_ttlv *value)
{
    struct kmip_gattr *g = (struct kmip_gattr *)kmip_gattr_get(o, name, index);
    uint8_t *b;
    size_t n;

    if (!g || encode_value(value, &b, &n))
        return -1;
    free(g->val);
    g->val = b;
    g->len = n;
    return 0;
}

int
kmip_gattr_del(struct kmip_obj *o, const char *name, size_t index)
{
    struct kmip_gattr *g = (struct kmip_gattr *)kmip_gattr_get(o, name, index);
    size_t i;

    if (!g)
        return -1;
    i = (size_t)(g - o->gattrs);
    free(g->name);
    free(g->val);
    memmove(&o->gattrs[i], &o->gattrs[i + 1], (o->n_gattrs - i - 1) * sizeof(*o->gattrs));
    o->n_gattrs--;
    return 0;
}

void
kmip_obj_link(struct kmip_obj *o, uint32_t link_type, const char *uid)
{
    struct pgcmk_ttlv_tree t;
    struct pgcmk_ttlv *v;

    pgcmk_ttlv_tree_init(&t);
    v = pgcmk_ttlv_new_struct(&t, PGCMK_KMIP_TAG_ATTRIBUTE_VALUE);
    pgcmk_ttlv_append(v, pgcmk_ttlv_new_enum(&t, PGCMK_KMIP_TAG_LINK_TYPE, link_type));
    pgcmk_ttlv_append(
        v, pgcmk_ttlv_new_text(&t, PGCMK_KMIP_TAG_LINKED_OBJECT_IDENTIFIER, uid, strlen(uid)));
    for (size_t i = 0; i < kmip_gattr_count(o, "Link"); i++) {
        const struct kmip_gattr *g = kmip_gattr_get(o, "Link", i);
        struct pgcmk_ttlv_tree d;
        struct pgcmk_ttlv_err e;
        uint32_t lt = 0;

        pgcmk_ttlv_tree_init(&d);
        if (pgcmk_ttlv_decode(g->val, g->len, &d, &e) == 0 &&
            pgcmk_ttlv_get_enum(d.root, PGCMK_KMIP_TAG_LINK_TYPE, &lt) == 0 && lt == link_type) {
            pgcmk_ttlv_tree_release(&d);
            (void)kmip_gattr_set(o, "Link", i, v);
            pgcmk_ttlv_tree_release(&t);
            return;
        }
        pgcmk_ttlv_tree_release(&d);
    }
    kmip_gattr_add(o, "Link", v);
    pgcmk_ttlv_tree_release(&t);
}

struct pgcmk_ttlv *
kmip_ttlv_clone(struct pgcmk_ttlv_tree *t, const struct pgcmk_ttlv *n)
{
    struct pgcmk_ttlv *c = NULL;

    switch (n->type) {
    case PGCMK_TTLV_STRUCTURE:
        c = pgcmk_ttlv_new_struct(t, n->tag);
        for (const struct pgcmk_ttlv *k = n->first; k; k = k->next)
            pgcmk_ttlv_append(c, kmip_ttlv_clone(t, k));
        return c;
    case PGCMK_TTLV_INTEGER:
        return pgcmk_ttlv_new_int(t, n->tag, n->v.i32);
    case PGCMK_TTLV_LONG_INTEGER:
        return pgcmk_ttlv_new_long(t, n->tag, n->v.i64);
    case PGCMK_TTLV_BIG_INTEGER:
        c = pgcmk_ttlv_new_bigint(t, n->tag, n->v.bytes, n->len);
        return c ? c : pgcmk_ttlv_new_bytes(t, n->tag, n->v.bytes, n->len);
    case PGCMK_TTLV_ENUMERATION:
        return pgcmk_ttlv_new_enum(t, n->tag, n->v.u32);
    case PGCMK_TTLV_BOOLEAN:
        return pgcmk_ttlv_new_bool(t, n->tag, n->v.boolean);
    case PGCMK_TTLV_TEXT_STRING:
        return pgcmk_ttlv_new_text(t, n->tag, (const char *)n->v.bytes, n->len);
    case PGCMK_TTLV_BYTE_STRING:
        return pgcmk_ttlv_new_bytes(t, n->tag, n->v.bytes, n->len);
    case PGCMK_TTLV_DATE_TIME:
        return pgcmk_ttlv_new_datetime(t, n->tag, n->v.i64);
    case PGCMK_TTLV_INTERVAL:
        return pgcmk_ttlv_new_interval(t, n->tag, n->v.u32);
    case PGCMK_TTLV_DATE_TIME_EXTENDED:
        return pgcmk_ttlv_new_datetime_ext(t, n->tag, n->v.i64);
    }
    return pgcmk_ttlv_new_struct(t, n->tag);
}

/* ---- the state machine ---- */

int
kmip_obj_eval(struct kmip_obj *o, int64_t now)
{
    int ch = -1;

    if (o->state == KMIP_ST_PRE_ACTIVE && o->activation && o->activation <= now) {
        o->state = KMIP_ST_ACTIVE;
        o->last_change = now;
        ch = KMIP_CH_ACTIVATED;
    }
    if ((o->state == KMIP_ST_ACTIVE || o->state == KMIP_ST_PRE_ACTIVE) && o->deactivation &&
        o->deactivation <= now) {
        o->state = KMIP_ST_DEACTIVATED;
        o->last_change = now;
        ch = KMIP_CH_DEACTIVATED;
    }
    return ch;
}

/* ---- persistence ---- */

static char *
hex(const uint8_t *p, size_t n)
{
    char *s = pgcmk_xmalloc(2 * n + 1);

    pgcmk_hex(p, n, s);
    return s;
}

static int
unhex(const char *s, uint8_t **out, size_t *n)
{
    size_t l = strlen(s);
    uint8_t *b;

    if (l % 2)
        return -1;
    b = pgcmk_xmalloc(l / 2 + 1);
    for (size_t i = 0; i < l / 2; i++) {
        int v = 0;

        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + (size_t)k];

            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= c - '0';
            else if (c >= 'a' && c <= 'f')
                v |= c - 'a' + 10;
            else {
                free(b);
                return -1;
            }
        }
        b[i] = (uint8_t)v;
    }
    *out = b;
    *n = l / 2;
    return 0;
}

static char *
obj_json(const struct kmip_obj *o)
{
    json_t *j = json_object(), *names = json_array(), *ga = json_array();
    char *s;

    for (size_t i = 0; i < o->n_names; i++)
        json_array_append_new(names, json_pack("{s:s, s:i}", "value", o->names[i].value, "type",
                                               (int)o->names[i].type));
    for (size_t i = 0; i < o->n_gattrs; i++) {
        char *h = hex(o->gattrs[i].val, o->gattrs[i].len);

        json_array_append_new(ga, json_pack("{s:s, s:s}", "name", o->gattrs[i].name, "ttlv", h));
        free(h);
    }
    json_object_set_new(j, "names", names);
    json_object_set_new(j, "attributes", ga);
    json_object_set_new(j, "alg", json_integer(o->alg));
    json_object_set_new(j, "length", json_integer(o->length));
    json_object_set_new(j, "mask", json_integer(o->mask));
#define DATE(f) json_object_set_new(j, #f, json_integer(o->f))
    DATE(initial);
    DATE(activation);
    DATE(deactivation);
    DATE(process_start);
    DATE(protect_stop);
    DATE(compromise_occurrence);
    DATE(compromise);
    DATE(destroy);
    DATE(last_change);
#undef DATE
    json_object_set_new(j, "revocationCode", json_integer(o->rev_code));
    if (o->rev_msg)
        json_object_set_new(j, "revocationMessage", json_string(o->rev_msg));
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static int64_t
jint(const json_t *j, const char *k)
{
    return json_integer_value(json_object_get(j, k));
}

static struct kmip_obj *
obj_from_row(sqlite3_stmt *st)
{
    const char *uid = (const char *)sqlite3_column_text(st, 0);
    const char *owner = (const char *)sqlite3_column_text(st, 1);
    const char *attrs = (const char *)sqlite3_column_text(st, 5);
    json_t *j, *v;
    struct kmip_obj *o;
    size_t i;

    if (!uid || !owner || !attrs || !(j = json_loads(attrs, 0, NULL)))
        return NULL;
    o = kmip_obj_new(owner);
    snprintf(o->uid, sizeof(o->uid), "%s", uid);
    o->id = strtoull(uid, NULL, 10);
    o->type = (uint32_t)sqlite3_column_int(st, 2);
    o->state = (uint32_t)sqlite3_column_int(st, 3);
    if (sqlite3_column_type(st, 4) == SQLITE_BLOB) {
        o->sealed_len = (size_t)sqlite3_column_bytes(st, 4);
        o->sealed = memdup(sqlite3_column_blob(st, 4), o->sealed_len);
    }
    o->alg = (uint32_t)jint(j, "alg");
    o->length = (int32_t)jint(j, "length");
    o->mask = (int32_t)jint(j, "mask");
#define DATE(f) o->f = jint(j, #f)
    DATE(initial);
    DATE(activation);
    DATE(deactivation);
    DATE(process_start);
    DATE(protect_stop);
    DATE(compromise_occurrence);
    DATE(compromise);
    DATE(destroy);
    DATE(last_change);
#undef DATE
    o->rev_code = (uint32_t)jint(j, "revocationCode");
    if (json_is_string(json_object_get(j, "revocationMessage")))
        o->rev_msg = pgcmk_xstrdup(json_string_value(json_object_get(j, "revocationMessage")));
    json_array_foreach(json_object_get(j, "names"), i, v) {
        const char *s = json_string_value(json_object_get(v, "value"));

        if (!s)
            continue;
        o->names = pgcmk_xrealloc(o->names, (o->n_names + 1) * sizeof(*o->names));
        o->names[o->n_names].value = pgcmk_xstrdup(s);
        o->names[o->n_names].type = (uint32_t)jint(v, "type");
        o->n_names++;
    }
    json_array_foreach(json_object_get(j, "attributes"), i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));
        const char *h = json_string_value(json_object_get(v, "ttlv"));
        uint8_t *b;
        size_t bl;

        if (!n || !h || unhex(h, &b, &bl))
            continue;
        o->gattrs = pgcmk_xrealloc(o->gattrs, (o->n_gattrs + 1) * sizeof(*o->gattrs));
        o->gattrs[o->n_gattrs].name = pgcmk_xstrdup(n);
        o->gattrs[o->n_gattrs].val = b;
        o->gattrs[o->n_gattrs].len = bl;
        o->n_gattrs++;
    }
    json_decref(j);
    return o;
}

static void
tab_put(struct kmip_obj *o)
{
    if (o->id == 0)
        return;
    if (o->id > g_cap) {
        size_t nc = g_cap ? g_cap : 64;

        while (nc < o->id)
            nc *= 2;
        g_tab = pgcmk_xrealloc(g_tab, nc * sizeof(*g_tab));
        memset(g_tab + g_cap, 0, (nc - g_cap) * sizeof(*g_tab));
        g_cap = nc;
    }
    if (g_tab[o->id - 1] != o)
        kmip_obj_free(g_tab[o->id - 1]);
    g_tab[o->id - 1] = o;
    if (o->id > g_max)
        g_max = o->id;
}

static int
load_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct kmip_obj *o = obj_from_row(st);

    (void)arg;
    (void)err;
    if (o && o->id)
        tab_put(o);
    else {
        PGCMK_LOG_AT(PGCMK_LOG_WARN, "kmip: a row of kmip_objects does not load; skipped");
        kmip_obj_free(o);
    }
    return 0;
}

int
kmip_table_ready(void)
{
    struct pgcmk_err err;
    struct pgcmk_db *db;
    int rc = 0;

    kmip_lock();
    if (!g_loaded) {
        db = pgcmk_db();
        if (pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_KMIP_OBJ_ALL), load_row, NULL,
                          "kmip objects", &err) < 0)
            rc = -1;
        else
            g_loaded = 1;
    }
    kmip_unlock();
    return rc;
}

void
kmip_table_reset(void)
{
    kmip_lock();
    for (size_t i = 0; i < g_cap; i++)
        kmip_obj_free(g_tab[i]);
    free(g_tab);
    g_tab = NULL;
    g_cap = 0;
    g_max = 0;
    g_loaded = 0;
    kmip_unlock();
}

uint64_t
kmip_obj_next_id(void)
{
    return g_max + 1;
}

struct kmip_obj *
kmip_obj_prev(uint64_t *cursor)
{
    uint64_t c = *cursor ? *cursor : g_max + 1;

    while (c > 1) {
        c--;
        if (c <= g_cap && g_tab[c - 1]) {
            *cursor = c;
            return g_tab[c - 1];
        }
    }
    *cursor = 1;
    return NULL;
}

static void eval_and_save(struct kmip_obj *o, int64_t now);

struct kmip_obj *
kmip_obj_find(const char *uid)
{
    uint64_t id = 0;
    struct kmip_obj *o;

    if (!uid || !*uid || *uid == '0' || strlen(uid) > 19)
        return NULL;
    for (const char *p = uid; *p; p++) {
        if (*p < '0' || *p > '9')
            return NULL;
        id = id * 10 + (uint64_t)(*p - '0');
    }
    if (id == 0 || id > g_cap || !(o = g_tab[id - 1]))
        return NULL;
    eval_and_save(o, kmip_now());
    return g_tab[id - 1];
}

/* ---- writes ---- */

struct commit_ctx {
    struct kmip_obj *o, *also;
    enum kmip_change ch;
};

static int
put_row(struct pgcmk_db *db, const struct kmip_obj *o, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KMIP_OBJ_PUT);
    char *attrs = obj_json(o);
    int64_t ms = pgcmk_clock_now();
    int rc;

    sqlite3_bind_text(st, 1, o->uid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, o->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)o->type);
    sqlite3_bind_int(st, 4, (int)o->state);
    pgcmk_db_bind_opt(st, 5, o->n_names ? o->names[0].value : NULL);
    if (o->sealed)
        sqlite3_bind_blob(st, 6, o->sealed, (int)o->sealed_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_text(st, 7, attrs, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, o->initial * 1000);
    sqlite3_bind_int64(st, 9, ms);
    rc = pgcmk_db_each(db, st, NULL, NULL, "kmip object", err);
    free(attrs);
    return rc < 0 ? -1 : 0;
}

static const struct {
    enum pgcmk_event_kind ev;
    const char *op, *what;
} changes[] = {
    [KMIP_CH_CREATED] = {PGCMK_EV_KMIP_OBJECT_CHANGED, "pgcmk.Kmip/objects/write",
                         "KMIP object created"},
    [KMIP_CH_ACTIVATED] = {PGCMK_EV_KMIP_OBJECT_CHANGED, "pgcmk.Kmip/objects/activate/action",
                           "KMIP object activated"},
    [KMIP_CH_REVOKED] = {PGCMK_EV_KMIP_OBJECT_REVOKED, "pgcmk.Kmip/objects/revoke/action",
                         "KMIP object revoked"},
    [KMIP_CH_DEACTIVATED] = {PGCMK_EV_KMIP_OBJECT_DEACTIVATED,
                             "pgcmk.Kmip/objects/deactivate/action",
                             "KMIP object deactivated: its Deactivation Date was reached"},
    [KMIP_CH_DESTROYED] = {PGCMK_EV_KMIP_OBJECT_DESTROYED, "pgcmk.Kmip/objects/destroy/action",
                           "KMIP object destroyed"},
    [KMIP_CH_ATTRIBUTES] = {PGCMK_EV_KMIP_OBJECT_CHANGED, NULL, NULL},
};

static int
announce(struct pgcmk_db *db, const struct kmip_obj *o, enum kmip_change ch, struct pgcmk_err *err)
{
    char rid[512], desc[256];
    struct pgcmk_event ev = {0};
    struct pgcmk_activity a = {0};

    snprintf(rid, sizeof(rid), "/subscriptions/%s/providers/pgcmk.Kmip/clients/%s/objects/%s",
             PGCMK_SUBSCRIPTION_ID, o->owner, o->uid);
    ev.kind = changes[ch].ev;
    ev.key = o->n_names ? o->names[0].value : NULL;
    ev.version = o->uid;
    ev.object_id = o->owner;
    ev.resource_id = rid;
    pgcmk_events_publish(&ev);
    if (!changes[ch].op)
        return 0;
    snprintf(desc, sizeof(desc), "%s (state %s)", changes[ch].what, kmip_state_name(o->state));
    a.resource_id = rid;
    a.operation = changes[ch].op;
    a.status = "Succeeded";
    a.level = ch == KMIP_CH_REVOKED || ch == KMIP_CH_DESTROYED || ch == KMIP_CH_DEACTIVATED
                  ? "Warning"
                  : "Informational";
    a.description = desc;
    return pgcmk_activity_add(db, &a, err);
}

static int
commit_tx(struct pgcmk_db *db, void *arg, struct pgcmk_err *err)
{
    struct commit_ctx *c = arg;

    if (put_row(db, c->o, err) || (c->also && put_row(db, c->also, err)) ||
        announce(db, c->o, c->ch, err))
        return -1;
    return 0;
}

int
kmip_obj_commit(struct kmip_obj *o, enum kmip_change ch, struct kmip_obj *also,
                struct pgcmk_err *err)
{
    struct commit_ctx c = {o, also, ch};

    if (pgcmk_db_tx(pgcmk_db(), commit_tx, &c, err)) {
        kmip_obj_free(o);
        kmip_obj_free(also);
        return -1;
    }
    tab_put(o);
    if (also)
        tab_put(also);
    return 0;
}

static void
eval_and_save(struct kmip_obj *o, int64_t now)
{
    struct kmip_obj *c;
    struct pgcmk_err err;
    int ch;

    if (o->state != KMIP_ST_PRE_ACTIVE && o->state != KMIP_ST_ACTIVE)
        return;
    if (!((o->activation && o->activation <= now && o->state == KMIP_ST_PRE_ACTIVE) ||
          (o->deactivation && o->deactivation <= now)))
        return;
    c = kmip_obj_clone(o);
    ch = kmip_obj_eval(c, now);
    if (ch < 0) {
        kmip_obj_free(c);
        return;
    }
    /* activated then deactivated at once: the deactivation is the change that counts */
    if (kmip_obj_commit(c, (enum kmip_change)ch, NULL, &err))
        PGCMK_LOG_AT(PGCMK_LOG_WARN, "kmip: object %s: state not saved: %s", o->uid, err.message);
}

static void
on_clock(int64_t now_ms, void *arg)
{
    (void)arg;
    kmip_lock();
    /* the first tick after a start loads the table, so dates reached while the daemon was down
     * (or since) move their objects without waiting for a client */
    if (g_loaded || kmip_table_ready() == 0)
        for (uint64_t id = 1; id <= g_max; id++)
            if (id <= g_cap && g_tab[id - 1])
                eval_and_save(g_tab[id - 1], now_ms / 1000);
    kmip_unlock();
}

void
kmip_objects_init(void)
{
    if (pgcmk_clock_listen(on_clock, NULL))
        PGCMK_LOG_AT(PGCMK_LOG_ERR, "kmip: cannot listen to the clock");
}
