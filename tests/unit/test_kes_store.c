/* test_kes_store.c - the KES key cache (src/kes/cache.c) over an in-memory keystore on the
 * virtual clock: KES's expiry rules (any, unused, offline, the 10 s keystore check), the
 * errors KES answers (exists, not found, 502 with the reason kept), listing, health. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kes/store_internal.h"
#include "pgcmk/clock.h"
#include "pgcmk/kesstore.h"
#include "t.h"

#define MAXK 16

struct mem {
    char *names[MAXK], *values[MAXK];
    int down, gets, pings;
    int slow; /* get takes 50 ms (widens the window of concurrent reads) */
};

static int
mem_find(struct mem *m, const char *name)
{
    for (int i = 0; i < MAXK; i++)
        if (m->names[i] && strcmp(m->names[i], name) == 0)
            return i;
    return -1;
}

static int
mem_down(struct mem *m, struct pgcmk_err *err)
{
    return m->down ? pgcmk_err_set(err, PGCMK_E_KES_KEYSTORE, NULL, "mem: key store is sealed") : 0;
}

static int
mem_create(void *arg, const char *name, const char *value, struct pgcmk_err *err)
{
    struct mem *m = arg;

    if (mem_down(m, err))
        return -1;
    if (mem_find(m, name) >= 0)
        return pgcmk_err_set(err, PGCMK_E_KES_KEY_EXISTS, NULL, "key already exists");
    for (int i = 0; i < MAXK; i++) {
        if (!m->names[i]) {
            m->names[i] = pgcmk_xstrdup(name);
            m->values[i] = pgcmk_xstrdup(value);
            return 0;
        }
    }
    return pgcmk_err_set(err, PGCMK_E_KES_KEYSTORE, NULL, "mem: full");
}

static int
mem_get(void *arg, const char *name, char **value, struct pgcmk_err *err)
{
    struct mem *m = arg;
    int i;

    __atomic_add_fetch(&m->gets, 1, __ATOMIC_SEQ_CST);
    if (m->slow) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (mem_down(m, err))
        return -1;
    if ((i = mem_find(m, name)) < 0)
        return pgcmk_err_set(err, PGCMK_E_KES_KEY_NOT_FOUND, NULL, "key does not exist");
    *value = pgcmk_xstrdup(m->values[i]);
    return 0;
}

static int
mem_del(void *arg, const char *name, struct pgcmk_err *err)
{
    struct mem *m = arg;
    int i;

    if (mem_down(m, err))
        return -1;
    if ((i = mem_find(m, name)) >= 0) {
        free(m->names[i]);
        free(m->values[i]);
        m->names[i] = m->values[i] = NULL;
    }
    return 0;
}

static int
mem_list(void *arg, json_t **names, struct pgcmk_err *err)
{
    struct mem *m = arg;

    if (mem_down(m, err))
        return -1;
    *names = json_array();
    for (int i = MAXK - 1; i >= 0; i--)
        if (m->names[i])
            json_array_append_new(*names, json_string(m->names[i]));
    return 0;
}

static void
mem_ping(void *arg, struct pgcmk_kes_store_health *h)
{
    struct mem *m = arg;

    m->pings++;
    h->reachable = !m->down;
    h->latency_us = 42;
    snprintf(h->why, sizeof(h->why), "%s", m->down ? "mem: key store is sealed" : "");
}

static void
mem_close(void *arg)
{
    struct mem *m = arg;

    for (int i = 0; i < MAXK; i++) {
        free(m->names[i]);
        free(m->values[i]);
    }
    free(m);
}

static const struct pgcmk_kes_backend mem_be = {mem_create, mem_get,  mem_del,
                                                mem_list,   mem_ping, mem_close};

static struct pgcmk_kes_store *
open_mem(int64_t any, int64_t unused, int64_t offline, struct mem **mp)
{
    struct pgcmk_kes_cache_cfg cc = {any, unused, offline};
    struct mem *m = pgcmk_xcalloc(1, sizeof(*m));
    struct pgcmk_kes_store *st = pgcmk_kes_store_new(&mem_be, m, &cc);
    struct pgcmk_kes_key k;
    struct pgcmk_err err;

    *mp = m;
    CHECK(pgcmk_kes_key_new(&k, "k1", PGCMK_KES_AES256, "me", &err) == 0);
    CHECK(pgcmk_kes_store_create(st, &k, &err) == 0);
    CHECK(pgcmk_kes_key_new(&k, "k2", PGCMK_KES_AES256, "me", &err) == 0);
    CHECK(pgcmk_kes_store_create(st, &k, &err) == 0);
    return st;
}

static int
get_ok(struct pgcmk_kes_store *st, const char *name)
{
    struct pgcmk_kes_key k;
    struct pgcmk_err err;
    int rc = pgcmk_kes_store_get(st, name, &k, &err);

    pgcmk_kes_key_wipe(&k);
    return rc == 0;
}

#define S 1000LL

/* any: every entry goes at the any tick, whether used or not. */
static void
test_any(void)
{
    struct mem *m;
    struct pgcmk_kes_store *st = open_mem(60 * S, 0, 0, &m);

    CHECK(get_ok(st, "k1") && m->gets == 1);
    CHECK(get_ok(st, "k1") && m->gets == 1);
    pgcmk_clock_advance(59 * S);
    CHECK(get_ok(st, "k1") && m->gets == 1);
    pgcmk_clock_advance(2 * S); /* the tick at 60 s dropped it */
    CHECK(get_ok(st, "k1") && m->gets == 2);
    CHECK(m->pings >= 1); /* the 10 s keystore checks ran */
    pgcmk_kes_store_close(st);
}

/* unused: a tick every unused/2; an entry not used between two ticks goes. */
static void
test_unused(void)
{
    struct mem *m;
    struct pgcmk_kes_store *st = open_mem(0, 20 * S, 0, &m);

    CHECK(get_ok(st, "k1") && m->gets == 1);
    pgcmk_clock_advance(10 * S); /* tick 1: used -> kept, marked unused */
    CHECK(get_ok(st, "k1") && m->gets == 1);
    pgcmk_clock_advance(10 * S); /* tick 2: used again since tick 1 -> kept */
    CHECK(get_ok(st, "k1") && m->gets == 1);
    pgcmk_clock_advance(20 * S); /* ticks 3 and 4: unused since tick 3 -> dropped */
    CHECK(get_ok(st, "k1") && m->gets == 2);
    pgcmk_kes_store_close(st);
}

/* offline: while the keystore is down, any/unused stop, offline drops; then reads fail. */
static void
test_offline(void)
{
    struct mem *m;
    struct pgcmk_kes_store *st = open_mem(60 * S, 0, 120 * S, &m);
    struct pgcmk_kes_store_health h;
    struct pgcmk_kes_key k;
    struct pgcmk_err err;

    CHECK(get_ok(st, "k1") && m->gets == 1);
    m->down = 1;
    pgcmk_clock_advance(11 * S); /* the 10 s check finds the keystore down */
    CHECK(get_ok(st, "k1") && m->gets == 1);
    pgcmk_kes_store_health(st, &h);
    CHECK(h.reachable == 0 && h.cached_keys == 1);
    pgcmk_clock_advance(60 * S); /* any tick at 60 s: skipped, offline */
    CHECK(get_ok(st, "k1") && m->gets == 1);
    /* a key that was not cached fails as KES fails it, with the reason kept */
    CHECK(pgcmk_kes_store_get(st, "k2", &k, &err) != 0);
    CHECK(err.code == PGCMK_E_KES_KEYSTORE && pgcmk_err_status(err.code) == 502);
    CHECK_STR(err.message, "failed to read key");
    CHECK_STR(pgcmk_kes_store_why(), "mem: key store is sealed");
    pgcmk_clock_advance(50 * S); /* offline tick at 120 s: dropped */
    CHECK(pgcmk_kes_store_get(st, "k1", &k, &err) != 0);
    CHECK(err.code == PGCMK_E_KES_KEYSTORE);
    pgcmk_kes_store_health(st, &h);
    CHECK(h.cached_keys == 0);
    /* back online: the next check clears offline, reads go through */
    m->down = 0;
    pgcmk_clock_advance(10 * S);
    CHECK(get_ok(st, "k1"));
    pgcmk_kes_store_health(st, &h);
    CHECK(h.reachable == 1 && h.latency_us == 42);
    pgcmk_kes_store_close(st);
}

/* offline 0: KES never drops while offline (its offline GC does not run). */
static void
test_offline_zero(void)
{
    struct mem *m;
    struct pgcmk_kes_store *st = open_mem(30 * S, 20 * S, 0, &m);

    CHECK(get_ok(st, "k1"));
    m->down = 1;
    pgcmk_clock_advance(5 * S);
    CHECK(get_ok(st, "k1"));    /* used: survives the unused tick at 10 s */
    pgcmk_clock_advance(5 * S); /* at 10 s the check (first) finds it down: offline */
    pgcmk_clock_advance(3600 * S);
    CHECK(get_ok(st, "k1") && m->gets == 1);
    pgcmk_kes_store_close(st);
}

static void
test_errors_and_list(void)
{
    struct mem *m;
    struct pgcmk_kes_store *st = open_mem(0, 0, 0, &m);
    struct pgcmk_kes_key k;
    struct pgcmk_err err;
    json_t *names = NULL, *cj;

    CHECK(pgcmk_kes_key_new(&k, "k1", PGCMK_KES_AES256, "me", &err) == 0);
    CHECK(pgcmk_kes_store_create(st, &k, &err) != 0);
    CHECK(err.code == PGCMK_E_KES_KEY_EXISTS && pgcmk_err_status(err.code) == 400);
    CHECK_STR(err.message, "key already exists");
    CHECK(pgcmk_kes_store_get(st, "nope", &k, &err) != 0);
    CHECK(err.code == PGCMK_E_KES_KEY_NOT_FOUND && pgcmk_err_status(err.code) == 404);
    CHECK_STR(err.message, "key does not exist");

    CHECK(pgcmk_kes_key_new(&k, "other", PGCMK_KES_CHACHA20, "me", &err) == 0);
    CHECK(pgcmk_kes_store_create(st, &k, &err) == 0);
    CHECK(pgcmk_kes_store_list(st, "", &names, &err) == 0);
    CHECK(json_array_size(names) == 3);
    CHECK_STR(json_string_value(json_array_get(names, 0)), "k1");
    CHECK_STR(json_string_value(json_array_get(names, 2)), "other");
    json_decref(names);
    CHECK(pgcmk_kes_store_list(st, "k", &names, &err) == 0);
    CHECK(json_array_size(names) == 2);
    json_decref(names);

    /* get returns what was stored, through the encoding */
    {
        struct pgcmk_kes_key g;
        CHECK(pgcmk_kes_store_get(st, "other", &g, &err) == 0);
        CHECK(g.cipher == PGCMK_KES_CHACHA20 && memcmp(g.secret, k.secret, 32) == 0);
        CHECK(g.has_hmac && memcmp(g.hmac_key, k.hmac_key, 32) == 0);
        CHECK_STR(g.created_by, "me");
        CHECK_STR(g.name, "other");
    }
    cj = pgcmk_kes_store_cache_json(st);
    CHECK(json_array_size(cj) == 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(cj, 0), "name")), "other");
    CHECK(json_is_null(json_object_get(json_array_get(cj, 0), "expiresAt")));
    json_decref(cj);

    /* delete drops the cached copy too */
    CHECK(pgcmk_kes_store_delete(st, "other", &err) == 0);
    CHECK(pgcmk_kes_store_get(st, "other", &k, &err) != 0 && err.code == PGCMK_E_KES_KEY_NOT_FOUND);

    m->down = 1;
    CHECK(pgcmk_kes_store_list(st, "", &names, &err) != 0);
    CHECK_STR(err.message, "failed to list keys");
    CHECK(pgcmk_kes_store_create(st, &k, &err) != 0);
    CHECK_STR(err.message, "failed to create key");
    CHECK(pgcmk_kes_store_delete(st, "k1", &err) != 0);
    CHECK_STR(err.message, "failed to delete key");
    pgcmk_kes_store_close(st);
}

/* A stored value KES cannot parse: 502 "failed to read key". */
static void
test_bad_value(void)
{
    struct mem *m;
    struct pgcmk_kes_store *st = open_mem(0, 0, 0, &m);
    struct pgcmk_kes_key k;
    struct pgcmk_err err;
    int i = mem_find(m, "k1");

    free(m->values[i]);
    m->values[i] = pgcmk_xstrdup("not a key");
    CHECK(pgcmk_kes_store_get(st, "k1", &k, &err) != 0);
    CHECK(err.code == PGCMK_E_KES_KEYSTORE);
    CHECK_STR(err.message, "failed to read key");
    pgcmk_kes_store_close(st);
}

static void *
reader(void *arg)
{
    return (void *)(intptr_t)get_ok(arg, "k2");
}

/* Concurrent reads of a key that is not cached go to the keystore once (KES's barrier). */
static void
test_single_read(void)
{
    struct mem *m;
    struct pgcmk_kes_store *st = open_mem(0, 0, 0, &m);
    pthread_t t[6];
    void *ok;

    m->slow = 1;
    for (int i = 0; i < 6; i++)
        CHECK(pthread_create(&t[i], NULL, reader, st) == 0);
    for (int i = 0; i < 6; i++) {
        CHECK(pthread_join(t[i], &ok) == 0);
        CHECK(ok == (void *)1);
    }
    CHECK(m->gets == 1);
    pgcmk_kes_store_close(st);
}

/* The Vault keystore's config checks (no network). */
static void
test_vault_cfg(void)
{
    struct pgcmk_kes_vault_cfg vc;
    struct pgcmk_err err;
    struct pgcmk_kes_store *st;

    memset(&vc, 0, sizeof(vc));
    CHECK(pgcmk_kes_store_open(&vc, NULL, &err) == NULL);
    CHECK(err.code == PGCMK_E_KES_KEYSTORE_CONFIG);
    vc.endpoint = "ftp://x";
    CHECK(pgcmk_kes_store_open(&vc, NULL, &err) == NULL);
    vc.endpoint = "http://127.0.0.1:1/";
    vc.version = 3;
    CHECK(pgcmk_kes_store_open(&vc, NULL, &err) == NULL);
    vc.version = 2;
    vc.transit_engine = "transit";
    CHECK(pgcmk_kes_store_open(&vc, NULL, &err) == NULL);
    vc.transit_key = "kes";
    st = pgcmk_kes_store_open(&vc, NULL, &err);
    CHECK(st != NULL);
    pgcmk_kes_store_close(st);
}

int
main(void)
{
    pgcmk_clock_init();
    pgcmk_clock_freeze();
    test_any();
    test_unused();
    test_offline();
    test_offline_zero();
    test_errors_and_list();
    test_bad_value();
    test_single_read();
    test_vault_cfg();
    return t_done("test_kes_store");
}
