/* cache.c - the key cache in front of a KES keystore, with KES's own semantics (minio/kes
 * keystore.go newCache / keyCache), run on pgcmk's virtual clock:
 *   - every cache.expiry.any (from the store's start) all entries are dropped, unless offline;
 *   - every cache.expiry.unused / 2 entries not used since the previous such tick are dropped,
 *     the others marked unused, unless offline;
 *   - every cache.expiry.offline all entries are dropped, only while offline;
 *   - every 10 s the keystore is checked: unreachable = offline.
 * A period of 0 never fires (so with offline 0 cached keys stay while the keystore is offline,
 * as in KES). The ticks are played lazily, in time order, when the store is next used: a check
 * tick takes the result of a ping made at or after it (made then, once, when none is). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kes/store_internal.h"
#include "pgcmk/clock.h"
#include "pgcmk/core.h"
#include "pgcmk/kesstore.h"

#define NBUCKETS 64
#define MIN_TICK 100 /* ms: shorter periods are played at this pace */

struct entry {
    struct entry *next;
    struct pgcmk_kes_key key;
    int used;
    int64_t cached_ms, used_ms;
};

struct loader {
    struct loader *next;
    char name[PGCMK_KES_NAME_MAX + 1];
};

struct pgcmk_kes_store {
    const struct pgcmk_kes_backend *be;
    void *arg;
    struct pgcmk_kes_cache_cfg cc;
    pthread_mutex_t mu;
    struct entry *b[NBUCKETS];
    int n;
    int64_t next_any, next_unused, next_offline, next_check;
    int offline;
    struct pgcmk_kes_store_health health;
    pthread_mutex_t ping_mu; /* one ping at a time */
    struct loader *loading;  /* names being read from the keystore now */
    pthread_cond_t loaded;   /* a read ended */
};

static __thread char why_buf[PGCMK_ERR_MSG_LEN];

const char *
pgcmk_kes_store_why(void)
{
    return why_buf;
}

static unsigned
hash(const char *s)
{
    unsigned h = 2166136261u;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h % NBUCKETS;
}

static int64_t
period(int64_t ms)
{
    return ms <= 0 ? 0 : ms < MIN_TICK ? MIN_TICK : ms;
}

struct pgcmk_kes_store *
pgcmk_kes_store_new(const struct pgcmk_kes_backend *be, void *arg,
                    const struct pgcmk_kes_cache_cfg *cc)
{
    struct pgcmk_kes_store *st = pgcmk_xcalloc(1, sizeof(*st));
    int64_t now = pgcmk_clock_now();

    st->be = be;
    st->arg = arg;
    if (cc) {
        st->cc = *cc;
    } else {
        st->cc.any_ms = 5 * 60 * 1000;
        st->cc.unused_ms = 20 * 1000;
    }
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->ping_mu, NULL);
    pthread_cond_init(&st->loaded, NULL);
    st->next_any = period(st->cc.any_ms) ? now + period(st->cc.any_ms) : INT64_MAX;
    st->next_unused = period(st->cc.unused_ms / 2) ? now + period(st->cc.unused_ms / 2) : INT64_MAX;
    st->next_offline = period(st->cc.offline_ms) ? now + period(st->cc.offline_ms) : INT64_MAX;
    st->next_check = now + PGCMK_KES_CACHE_STATUS_MS;
    st->health.reachable = 1; /* until the first ping says otherwise */
    st->health.checked_ms = INT64_MIN;
    return st;
}

static void
entry_free(struct entry *e)
{
    pgcmk_kes_key_wipe(&e->key);
    OPENSSL_cleanse(e, sizeof(*e));
    free(e);
}

/* Drops the entries for which keep() says 0 (NULL: all). Under mu. */
static void
drop_if(struct pgcmk_kes_store *st, int (*keep)(struct entry *))
{
    for (int i = 0; i < NBUCKETS; i++) {
        struct entry **pp = &st->b[i];
        while (*pp) {
            struct entry *e = *pp;
            if (keep && keep(e)) {
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            entry_free(e);
            st->n--;
        }
    }
}

/* unused GC: an entry used since the last tick is kept and marked unused. */
static int
keep_used(struct entry *e)
{
    if (!e->used)
        return 0;
    e->used = 0;
    return 1;
}

/* Pings the keystore and records the health. wait = 0: returns -1 at once when another ping
 * is under way (a request never queues behind a slow keystore). */
static int
ping_now(struct pgcmk_kes_store *st, int wait)
{
    struct pgcmk_kes_store_health h;

    if (wait)
        pthread_mutex_lock(&st->ping_mu);
    else if (pthread_mutex_trylock(&st->ping_mu) != 0)
        return -1;
    memset(&h, 0, sizeof(h));
    st->be->ping(st->arg, &h);
    h.checked_ms = pgcmk_clock_now();
    pthread_mutex_lock(&st->mu);
    st->health.reachable = h.reachable;
    st->health.latency_us = h.latency_us;
    st->health.checked_ms = h.checked_ms;
    snprintf(st->health.why, sizeof(st->health.why), "%s", h.reachable ? "" : h.why);
    snprintf(st->health.login_why, sizeof(st->health.login_why), "%s", h.login_why);
    pthread_mutex_unlock(&st->mu);
    pthread_mutex_unlock(&st->ping_mu);
    return 0;
}

/* Plays the ticks due by now, in time order. Under mu; may drop it to ping when may_ping. */
static void
advance(struct pgcmk_kes_store *st, int may_ping)
{
    int64_t now = pgcmk_clock_now();
    int rc;

    for (;;) {
        int64_t t = st->next_check;
        if (st->next_any < t)
            t = st->next_any;
        if (st->next_unused < t)
            t = st->next_unused;
        if (st->next_offline < t)
            t = st->next_offline;
        if (t > now)
            return;
        if (t == st->next_check) {
            if (st->health.checked_ms < t) {
                if (!may_ping)
                    return;
                pthread_mutex_unlock(&st->mu);
                rc = ping_now(st, 0);
                pthread_mutex_lock(&st->mu);
                if (rc != 0) /* another thread is pinging: the tick waits for its result */
                    return;
                now = pgcmk_clock_now();
                continue;
            }
            st->offline = !st->health.reachable;
            st->next_check += PGCMK_KES_CACHE_STATUS_MS;
        } else if (t == st->next_any) {
            if (!st->offline)
                drop_if(st, NULL);
            st->next_any += period(st->cc.any_ms);
        } else if (t == st->next_unused) {
            if (!st->offline)
                drop_if(st, keep_used);
            st->next_unused += period(st->cc.unused_ms / 2);
        } else {
            if (st->offline)
                drop_if(st, NULL);
            st->next_offline += period(st->cc.offline_ms);
        }
    }
}

static struct entry *
find(struct pgcmk_kes_store *st, const char *name)
{
    for (struct entry *e = st->b[hash(name)]; e; e = e->next)
        if (strcmp(e->key.name, name) == 0)
            return e;
    return NULL;
}

static void
unlink_entry(struct pgcmk_kes_store *st, const char *name)
{
    for (struct entry **pp = &st->b[hash(name)]; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key.name, name) == 0) {
            struct entry *e = *pp;
            *pp = e->next;
            entry_free(e);
            st->n--;
            return;
        }
    }
}

/* A backend failure as KES answers it: the KES errors pass, others become KES's generic 502
 * text (server.go) with the reason kept for pgcmk_kes_store_why(). */
static int
fail(struct pgcmk_err *err, const struct pgcmk_err *be_err, const char *kes_text)
{
    snprintf(why_buf, sizeof(why_buf), "%s", be_err->message);
    if (be_err->code == PGCMK_E_KES_KEY_EXISTS || be_err->code == PGCMK_E_KES_KEY_NOT_FOUND) {
        if (err)
            *err = *be_err;
        return -1;
    }
    return pgcmk_err_set(err, PGCMK_E_KES_KEYSTORE, NULL, "%s", kes_text);
}

int
pgcmk_kes_store_create(struct pgcmk_kes_store *st, const struct pgcmk_kes_key *k,
                       struct pgcmk_err *err)
{
    struct pgcmk_err e;
    char *v = pgcmk_kes_key_encode(k);
    int rc;

    pgcmk_err_clear(&e);
    rc = st->be->create(st->arg, k->name, v, &e);
    pgcmk_secret_free(v, strlen(v));
    return rc == 0 ? 0 : fail(err, &e, "failed to create key");
}

/* 1 when another thread is reading name from the keystore (KES's barrier). Under mu. */
static int
loading(const struct pgcmk_kes_store *st, const char *name)
{
    for (const struct loader *l = st->loading; l; l = l->next)
        if (strcmp(l->name, name) == 0)
            return 1;
    return 0;
}

int
pgcmk_kes_store_get(struct pgcmk_kes_store *st, const char *name, struct pgcmk_kes_key *k,
                    struct pgcmk_err *err)
{
    struct pgcmk_err e;
    struct entry *en;
    struct loader me, **pp;
    char *v = NULL;
    int rc;

    pthread_mutex_lock(&st->mu);
    advance(st, 1);
    for (;;) {
        if ((en = find(st, name)) != NULL) {
            en->used = 1;
            en->used_ms = pgcmk_clock_now();
            *k = en->key;
            pthread_mutex_unlock(&st->mu);
            return 0;
        }
        if (!loading(st, name))
            break;
        /* The key is read once: wait for that read, then look again (KES's barrier). */
        pthread_cond_wait(&st->loaded, &st->mu);
    }
    snprintf(me.name, sizeof(me.name), "%s", name);
    me.next = st->loading;
    st->loading = &me;
    pthread_mutex_unlock(&st->mu);

    pgcmk_err_clear(&e);
    rc = st->be->get(st->arg, name, &v, &e);
    if (rc == 0) {
        rc = pgcmk_kes_key_decode(name, v, strlen(v), k, &e);
        pgcmk_secret_free(v, strlen(v));
    }

    pthread_mutex_lock(&st->mu);
    if (rc == 0 && !find(st, name)) {
        en = pgcmk_xcalloc(1, sizeof(*en));
        en->key = *k;
        en->used = 1;
        en->cached_ms = en->used_ms = pgcmk_clock_now();
        en->next = st->b[hash(name)];
        st->b[hash(name)] = en;
        st->n++;
    }
    for (pp = &st->loading; *pp; pp = &(*pp)->next) {
        if (*pp == &me) {
            *pp = me.next;
            break;
        }
    }
    pthread_cond_broadcast(&st->loaded);
    pthread_mutex_unlock(&st->mu);
    return rc == 0 ? 0 : fail(err, &e, "failed to read key");
}

int
pgcmk_kes_store_delete(struct pgcmk_kes_store *st, const char *name, struct pgcmk_err *err)
{
    struct pgcmk_err e;

    pgcmk_err_clear(&e);
    if (st->be->del(st->arg, name, &e) != 0)
        return fail(err, &e, "failed to delete key");
    pthread_mutex_lock(&st->mu);
    unlink_entry(st, name);
    pthread_mutex_unlock(&st->mu);
    return 0;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
pgcmk_kes_store_list(struct pgcmk_kes_store *st, const char *prefix, json_t **names,
                     struct pgcmk_err *err)
{
    struct pgcmk_err e;
    json_t *all = NULL, *v;
    const char **sorted;
    size_t i, n, plen = prefix ? strlen(prefix) : 0;

    *names = NULL;
    pgcmk_err_clear(&e);
    if (st->be->list(st->arg, &all, &e) != 0)
        return fail(err, &e, "failed to list keys");
    n = json_array_size(all);
    sorted = pgcmk_xcalloc(n ? n : 1, sizeof(*sorted));
    n = 0;
    json_array_foreach(all, i, v) {
        const char *s = json_string_value(v);
        if (s && strncmp(s, prefix ? prefix : "", plen) == 0)
            sorted[n++] = s;
    }
    qsort(sorted, n, sizeof(*sorted), cmp_str);
    *names = json_array();
    for (i = 0; i < n; i++)
        json_array_append_new(*names, json_string(sorted[i]));
    free(sorted);
    json_decref(all);
    return 0;
}

void
pgcmk_kes_store_health(struct pgcmk_kes_store *st, struct pgcmk_kes_store_health *h)
{
    pthread_mutex_lock(&st->mu);
    advance(st, 0);
    *h = st->health;
    if (st->offline && h->reachable) { /* keyCache.Status: offline answers at once */
        h->reachable = 0;
        snprintf(h->why, sizeof(h->why), "keystore is offline");
    }
    if (h->checked_ms == INT64_MIN)
        h->checked_ms = 0;
    h->cached_keys = st->n;
    pthread_mutex_unlock(&st->mu);
}

void
pgcmk_kes_store_ping(struct pgcmk_kes_store *st)
{
    (void)ping_now(st, 1);
    pthread_mutex_lock(&st->mu);
    advance(st, 0);
    pthread_mutex_unlock(&st->mu);
}

/* When the entry will be dropped if nothing changes: the next any tick (online), the next
 * offline tick (offline), or the second unused tick from now when not used before it. */
static int64_t
expires_at(const struct pgcmk_kes_store *st, const struct entry *e)
{
    int64_t t = INT64_MAX;

    if (st->offline)
        return st->next_offline;
    t = st->next_any;
    if (st->next_unused != INT64_MAX) {
        int64_t u = e->used ? st->next_unused + period(st->cc.unused_ms / 2) : st->next_unused;
        if (u < t)
            t = u;
    }
    return t;
}

json_t *
pgcmk_kes_store_cache_json(struct pgcmk_kes_store *st)
{
    json_t *a = json_array();
    char ts[PGCMK_TIME_LEN];

    pthread_mutex_lock(&st->mu);
    advance(st, 0);
    for (int i = 0; i < NBUCKETS; i++) {
        for (struct entry *e = st->b[i]; e; e = e->next) {
            json_t *o = json_object();
            int64_t x = expires_at(st, e);
            json_object_set_new(o, "name", json_string(e->key.name));
            pgcmk_time_format(e->cached_ms, ts);
            json_object_set_new(o, "cachedAt", json_string(ts));
            pgcmk_time_format(e->used_ms, ts);
            json_object_set_new(o, "lastUsed", json_string(ts));
            if (x == INT64_MAX) {
                json_object_set_new(o, "expiresAt", json_null());
            } else {
                pgcmk_time_format(x, ts);
                json_object_set_new(o, "expiresAt", json_string(ts));
            }
            json_array_append_new(a, o);
        }
    }
    pthread_mutex_unlock(&st->mu);
    return a;
}

void
pgcmk_kes_store_close(struct pgcmk_kes_store *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->mu);
    drop_if(st, NULL);
    pthread_mutex_unlock(&st->mu);
    if (st->be->close)
        st->be->close(st->arg);
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->ping_mu);
    pthread_cond_destroy(&st->loaded);
    free(st);
}
