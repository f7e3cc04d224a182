/* cache.c - the data plane's hot-path caches: the generation every write bumps, each thread's
 * last vault and key versions, and the process-wide parsed-key cache. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/auth.h"
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/events.h"
#include "pgcmk/faults.h"
#include "pgcmk/log.h"
#include "pgcmk/pkey.h"
#include "pgcmk/store.h"
#include "pgcmk/vault.h"
#include "pgcmk/wellknown.h"
#include "vault/internal.h"

/* ---- the hot-path caches ---------------------------------------------------------------------
 *
 * A wrap or unwrap needs the vault (access policies, RBAC flag, retention) and the key version
 * (key_ops, attributes, the parsed key). Each thread keeps the last vault and its last key
 * versions in memory, so a request on a cached version opens no SQLite transaction (DESIGN.md 9).
 *
 * Validity is one process-wide generation, kv_gen. Every write that can change an answer bumps
 * it: the key writes here (create, import, rotate, update, delete, recover, purge, restore, and
 * vault purges) and the vault writes in src/providers/keyvault.c (PUT, PATCH, delete and recover
 * through the ARM hooks, access-policy add/remove/replace), all through pgcmk_vault_invalidate()
 * inside their store transaction. An entry is used only while kv_gen still has the value it was
 * filled under. Those bumps happen before the COMMIT, so a fill reads the generation and the rows
 * inside a transaction of its own: the writer lock orders it wholly before or wholly after any
 * writer, and a fill can never pair a new generation with rows from before a commit. Misses
 * (after any write) therefore cost one short BEGIN IMMEDIATE ... COMMIT; hits cost an atomic load.
 * Time (enabled, nbf, exp against the virtual clock) and faults are still judged per request. */

static atomic_ullong kv_gen = 1;

void
pgcmk_vault_invalidate(void)
{
    atomic_fetch_add(&kv_gen, 1);
}

unsigned long long
pgcmk_vault_generation(void)
{
    return atomic_load(&kv_gen);
}

struct kv_tcache {
    char vault[32], etag[48]; /* the last vault: its name (as asked) and etag */
    unsigned long long vault_gen;
    json_t *body; /* its parsed body; NULL with vault_gen current = no such vault */
    struct kv_tkey keys[KV_TKEYS];
    unsigned next;
};

static _Thread_local struct kv_tcache *kv_tc;
static pthread_key_t kv_tcache_key; /* frees a thread's caches when it exits */

static void
kv_tcache_free(void *p)
{
    struct kv_tcache *tc = p;

    json_decref(tc->body);
    for (int i = 0; i < KV_TKEYS; i++)
        kv_version_release(&tc->keys[i].v);
    free(tc);
}

static struct kv_tcache *
kv_tcache(void)
{
    if (kv_tc == NULL) {
        kv_tc = pgcmk_xcalloc(1, sizeof(*kv_tc));
        pthread_setspecific(kv_tcache_key, kv_tc);
    }
    return kv_tc;
}

struct kv_vault_fill {
    struct kv_tcache *tc;
    const char *name;
};

/* Inside the writer lock: the generation, then the vault's row. The body is parsed again only
 * when its etag changed. */
static int
kv_vault_fill_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kv_vault_fill *f = ctx;
    struct kv_tcache *tc = f->tc;
    unsigned long long gen = atomic_load(&kv_gen);
    char *etag = NULL;
    int rc = pgcmk_arm_resource_by_name(db, "Microsoft.KeyVault/vaults", f->name, NULL, &etag, NULL,
                                        err);

    if (rc > 0) {
        if (tc->body == NULL || strcmp(tc->etag, etag) != 0 ||
            strcasecmp(tc->vault, f->name) != 0) {
            json_decref(tc->body);
            tc->body = NULL;
            free(etag);
            etag = NULL;
            rc = pgcmk_arm_resource_by_name(db, "Microsoft.KeyVault/vaults", f->name, NULL, &etag,
                                            &tc->body, err);
            snprintf(tc->etag, sizeof(tc->etag), "%s", rc > 0 ? etag : "");
        }
    } else if (rc == 0) {
        json_decref(tc->body);
        tc->body = NULL;
        tc->etag[0] = '\0';
    }
    free(etag);
    if (rc < 0) {
        tc->vault_gen = 0;
        return -1;
    }
    snprintf(tc->vault, sizeof(tc->vault), "%s", f->name);
    tc->vault_gen = gen;
    return 0;
}

/* This thread's cached body of `name` (borrowed; NULL = no such vault), filled when stale. */
int
kv_vault_get(const char *name, json_t **body, struct pgcmk_err *err)
{
    struct kv_tcache *tc = kv_tcache();

    if (tc->vault_gen != atomic_load(&kv_gen) || strcasecmp(tc->vault, name) != 0) {
        struct kv_vault_fill f = {tc, name};

        tc->vault_gen = 0;
        if (pgcmk_db_tx(pgcmk_db(), kv_vault_fill_tx, &f, err))
            return -1;
    }
    *body = tc->body;
    return 0;
}

/* dst = a copy of src that shares its (never modified) JSON values. */
void
kv_version_copy(struct kv_version *dst, const struct kv_version *src)
{
    *dst = *src;
    json_incref(dst->key_ops);
    json_incref(dst->tags);
    json_incref(dst->jwk);
    dst->priv = pgcmk_xmalloc(src->priv_len + 1);
    if (src->priv_len)
        memcpy(dst->priv, src->priv, src->priv_len);
}

struct kv_key_fill {
    const char *vault, *name, *version;
    struct kv_key *k;
    struct kv_version *v;
    unsigned long long gen;
    int found;
};

/* Inside the writer lock (see the caches above): the generation, then the rows. */
static int
kv_key_fill_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kv_key_fill *f = ctx;
    int rc;

    f->gen = atomic_load(&kv_gen);
    f->found = 0;
    rc = kv_key_load(db, f->vault, f->name, f->k, err);
    if (rc <= 0 || f->k->deleted)
        return rc < 0 ? -1 : 0;
    rc = kv_version_load(db, f->vault, f->name,
                         f->version && *f->version ? f->version : f->k->current, f->v, err);
    if (rc < 0)
        return -1;
    f->found = rc;
    return 0;
}

/* Loads the live key and the named (or current) version, from this thread's cache when no write
 * happened since it was filled. *entry (when given) is the cache entry that holds them, or NULL;
 * it stays valid until this thread's next kv_resolve. */
int
kv_resolve_ex(struct kv_ctx *kc, const char *name, const char *version, struct kv_key *k,
              struct kv_version *v, struct kv_tkey **entry, struct pgcmk_err *err)
{
    struct kv_tcache *tc = kv_tcache();
    unsigned long long gen = atomic_load(&kv_gen);
    struct kv_key_fill f = {kc->vault, name, version, k, v, 0, 0};
    char lvault[32], lname[128], lasked[40];
    struct kv_tkey *e;
    int cacheable;

    if (entry)
        *entry = NULL;
    memset(v, 0, sizeof(*v));
    cacheable = strlen(kc->vault) < sizeof(lvault) && strlen(name) < sizeof(lname) &&
                (version == NULL || strlen(version) < sizeof(lasked));
    if (cacheable) {
        pgcmk_lower(lvault, sizeof(lvault), kc->vault);
        pgcmk_lower(lname, sizeof(lname), name);
        pgcmk_lower(lasked, sizeof(lasked), version ? version : "");
        for (int i = 0; i < KV_TKEYS; i++) {
            e = &tc->keys[i];
            if (e->gen == gen && strcmp(e->name, lname) == 0 && strcmp(e->asked, lasked) == 0 &&
                strcmp(e->vault, lvault) == 0) {
                *k = e->k;
                kv_version_copy(v, &e->v);
                if (entry)
                    *entry = e;
                return 0;
            }
        }
    }
    if (pgcmk_db_tx(pgcmk_db(), kv_key_fill_tx, &f, err)) {
        kv_version_release(v);
        return -1;
    }
    if (!f.found)
        return kv_not_found(name, version, err);
    if (!cacheable)
        return 0;
    e = NULL;
    for (int i = 0; i < KV_TKEYS && e == NULL; i++) /* a stale entry first, else round robin */
        if (tc->keys[i].gen != gen)
            e = &tc->keys[i];
    if (e == NULL)
        e = &tc->keys[tc->next++ % KV_TKEYS];
    kv_version_release(&e->v);
    memcpy(e->vault, lvault, sizeof(lvault));
    memcpy(e->name, lname, sizeof(lname));
    memcpy(e->asked, lasked, sizeof(lasked));
    e->k = *k;
    kv_version_copy(&e->v, v);
    e->pk = NULL;
    e->gen = f.gen;
    if (entry)
        *entry = e;
    return 0;
}

int
kv_resolve(struct kv_ctx *kc, const char *name, const char *version, struct kv_key *k,
           struct kv_version *v, struct pgcmk_err *err)
{
    return kv_resolve_ex(kc, name, version, k, v, NULL, err);
}

/* ---- parsed-key cache: one EVP parse per version ------------------------------------------ */

#define KV_CACHE 256
static pthread_mutex_t kv_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static struct {
    char id[200];
    struct pgcmk_pkey *k;
} kv_cache[KV_CACHE];

static int kv_cache_n;

/* The parsed key of a version, from the cache. When the cache is full the parse is the caller's
 * (*owned = 1): it frees it after use. */
struct pgcmk_pkey *
kv_pkey(const struct kv_ctx *kc, const char *name, const struct kv_version *v, int *owned)
{
    char id[200], aad[200];
    struct pgcmk_pkey *k = NULL;
    unsigned char *pem = NULL;
    size_t pem_len = 0;

    *owned = 0;
    snprintf(id, sizeof(id), "%s/%s/%s", kc->vault, name, v->version);
    pgcmk_lower(id, sizeof(id), id);
    pthread_mutex_lock(&kv_cache_mu);
    for (int i = 0; i < kv_cache_n; i++)
        if (strcmp(kv_cache[i].id, id) == 0)
            k = kv_cache[i].k;
    pthread_mutex_unlock(&kv_cache_mu);
    if (k)
        return k;
    snprintf(aad, sizeof(aad), "kv:%.190s", id);
    if (pgcmk_store_unseal(v->priv, v->priv_len, aad, &pem, &pem_len) ||
        pgcmk_pkey_from_pem((const char *)pem, pem_len, &k)) {
        LOG_ERR("key %s cannot be unsealed", id);
        if (pem)
            pgcmk_secret_free(pem, pem_len);
        return NULL;
    }
    pgcmk_secret_free(pem, pem_len);
    pthread_mutex_lock(&kv_cache_mu);
    for (int i = 0; i < kv_cache_n; i++) {
        if (strcmp(kv_cache[i].id, id) == 0) { /* another thread parsed it meanwhile */
            pgcmk_pkey_free(k);
            k = kv_cache[i].k;
            pthread_mutex_unlock(&kv_cache_mu);
            return k;
        }
    }
    if (kv_cache_n < KV_CACHE) {
        snprintf(kv_cache[kv_cache_n].id, sizeof(kv_cache[0].id), "%s", id);
        kv_cache[kv_cache_n++].k = k;
    } else {
        *owned = 1;
    }
    pthread_mutex_unlock(&kv_cache_mu);
    return k;
}

void
kv_cache_init(void)
{
    if (pthread_key_create(&kv_tcache_key, kv_tcache_free) != 0)
        PGCMK_BUG("no thread key for the vault cache");
}

void
kv_cache_shutdown(void)
{
    if (kv_tc) { /* this thread's; the others' went with their threads */
        pthread_setspecific(kv_tcache_key, NULL);
        kv_tcache_free(kv_tc);
        kv_tc = NULL;
    }
    pthread_mutex_lock(&kv_cache_mu);
    for (int i = 0; i < kv_cache_n; i++)
        pgcmk_pkey_free(kv_cache[i].k);
    kv_cache_n = 0;
    pthread_mutex_unlock(&kv_cache_mu);
}
