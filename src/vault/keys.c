/* keys.c - the Key Vault data plane for keys: the bearer challenge, access-policy checks by the
 * token's oid, create/get/list/versions/update/delete/deleted/recover/purge, and the crypto
 * operations (wrap, unwrap, encrypt, decrypt, sign, verify) with key_ops, enabled, nbf and exp
 * enforced as Azure documents. Private keys are sealed under the master key. */
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
#include "pgcmk/keyuri.h"
#include "pgcmk/log.h"
#include "pgcmk/schema.h"
#include "pgcmk/pkey.h"
#include "pgcmk/store.h"
#include "pgcmk/vault.h"
#include "pgcmk/wellknown.h"

#define DAY_MS         (86400LL * 1000)
#define KV_MAX_RESULTS 25

static const char *const kv_all_ops[] = {"encrypt", "decrypt",   "sign", "verify",
                                         "wrapKey", "unwrapKey", NULL};

/* What every data-plane handler knows once the caller is admitted. */
struct kv_ctx {
    char vault[32];
    json_t *vault_body; /* the ARM resource of the vault */
    struct pgcmk_caller who;
    int purge_protection;
    int retention_days;
};

static void
kv_ctx_release(struct kv_ctx *kc)
{
    json_decref(kc->vault_body);
    kc->vault_body = NULL;
}

static char *
kv_base(const char *vault)
{
    return pgcmk_xasprintf("https://%s." PGCMK_VAULT_DNS_SUFFIX ":%d", vault, pgcmk_public_port());
}

/* api-versions 7.0 .. 7.5, with the -preview suffixes clients send. */
static int
kv_check_version(struct pgcmk_req *rq, struct pgcmk_err *err)
{
    const char *v = rq->api_version;

    if (v == NULL || *v == '\0')
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                             "The api-version parameter is missing.");
    if (strlen(v) >= 3 && v[0] == '7' && v[1] == '.' && v[2] >= '0' && v[2] <= '5' &&
        (v[3] == '\0' || strncmp(v + 3, "-preview", 8) == 0))
        return 0;
    return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                         "The specified version (%.32s) is not recognized. Consider using the "
                         "latest supported version (7.5).",
                         v);
}

static void
kv_headers(struct pgcmk_resp *rs)
{
    pgcmk_resp_header(rs, "x-ms-keyvault-region", PGCMK_DEFAULT_LOCATION);
    pgcmk_resp_header(rs, "x-ms-keyvault-service-version", "1.9.1.0");
    pgcmk_resp_header(rs, "x-ms-keyvault-network-info",
                      "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;");
}

static int
kv_challenge(struct pgcmk_resp *rs, struct pgcmk_err *err, const char *msg)
{
    char *h = pgcmk_xasprintf("Bearer authorization=\"https://localhost:%d/%s\", "
                              "resource=\"https://" PGCMK_VAULT_DNS_SUFFIX ":%d\"",
                              pgcmk_public_port(), PGCMK_TENANT_ID, pgcmk_public_port());

    pgcmk_resp_header(rs, "WWW-Authenticate", h);
    free(h);
    return pgcmk_err_set(err, PGCMK_E_KV_UNAUTHORIZED, NULL, "%s", msg);
}

static int
kv_perm_granted(json_t *policies, const struct pgcmk_caller *who, const char *perm)
{
    size_t i, j;
    json_t *p, *v;

    json_array_foreach(policies, i, p) {
        const char *oid = json_string_value(json_object_get(p, "objectId"));
        const char *tid = json_string_value(json_object_get(p, "tenantId"));
        json_t *keys = json_object_get(json_object_get(p, "permissions"), "keys");

        if (!oid || !tid || strcasecmp(oid, who->oid) || strcasecmp(tid, who->tid))
            continue;
        json_array_foreach(keys, j, v) {
            const char *s = json_string_value(v);

            if (s && (strcasecmp(s, perm) == 0 || strcasecmp(s, "all") == 0))
                return 1;
        }
    }
    return 0;
}

/* ---- a stored key and one of its versions ------------------------------------------------ */

struct kv_key {
    char name[128], current[40];
    int64_t deleted_at, purge_at;
    int deleted;
};

struct kv_version {
    char version[40], kty[16];
    json_t *key_ops, *tags, *jwk;
    int enabled;
    int64_t nbf, exp; /* seconds, 0 = unset */
    int64_t created, updated;
    unsigned char *priv;
    size_t priv_len;
};

static void
kv_version_release(struct kv_version *v)
{
    json_decref(v->key_ops);
    json_decref(v->tags);
    json_decref(v->jwk);
    free(v->priv);
    memset(v, 0, sizeof(*v));
}

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

#define KV_TKEYS 16

struct kv_tkey {
    char vault[32], name[128], asked[40]; /* lower case; asked "" = the current version */
    unsigned long long gen;               /* 0 = empty */
    struct kv_key k;
    struct kv_version v;
    struct pgcmk_pkey *pk; /* from kv_cache (lives until shutdown); NULL until a crypto op */
};

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
static int
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

/* The pipeline of every data-plane call: api-version, vault, bearer token, access policy. */
static int
kv_admit(struct pgcmk_req *rq, struct pgcmk_resp *rs, const char *perm, struct kv_ctx *kc,
         struct pgcmk_err *err)
{
    const char *authz = pgcmk_req_header(rq, "Authorization");
    json_t *props, *body;

    memset(kc, 0, sizeof(*kc));
    kv_headers(rs);
    if (pgcmk_fault_vault(rq->vault) == PGCMK_FAULT_UNAVAILABLE)
        return pgcmk_err_set(err, PGCMK_E_UNAVAILABLE, NULL,
                             "The vault '%.32s' is unavailable (a fault injected through "
                             "/emulator/faults).",
                             rq->vault);
    if (authz == NULL || *authz == '\0')
        return kv_challenge(rs, err, "AKV10000: Request is missing a Bearer or PoP token.");
    if (kv_check_version(rq, err))
        return -1;
    if (strncasecmp(authz, "Bearer ", 7) != 0)
        return kv_challenge(rs, err,
                            "AKV10001: The request has an Authorization header that is "
                            "not a Bearer token.");
    if (pgcmk_auth_verify(authz + 7, PGCMK_AUD_VAULT, &kc->who, err)) {
        char msg[PGCMK_ERR_MSG_LEN];

        snprintf(msg, sizeof(msg), "AKV10022: %.480s", err->message);
        return kv_challenge(rs, err, msg);
    }
    snprintf(kc->vault, sizeof(kc->vault), "%s", rq->vault);
    if (kv_vault_get(rq->vault, &body, err))
        return -1;
    if (body == NULL)
        return pgcmk_err_set(err, PGCMK_E_KV_VAULT_NOT_FOUND, NULL,
                             "The vault '%.64s' does not exist (or it is deleted).", rq->vault);
    kc->vault_body = json_incref(body);
    props = json_object_get(kc->vault_body, "properties");
    kc->purge_protection = json_is_true(json_object_get(props, "enablePurgeProtection"));
    kc->retention_days =
        (int)json_integer_value(json_object_get(props, "softDeleteRetentionInDays"));
    if (kc->retention_days <= 0)
        kc->retention_days = 90;
    /* RBAC vaults: role assignments are not emulated yet; any valid token of the tenant passes. */
    if (json_is_true(json_object_get(props, "enableRbacAuthorization")))
        return 0;
    if (!kv_perm_granted(json_object_get(props, "accessPolicies"), &kc->who, perm))
        return pgcmk_err_set(err, PGCMK_E_KV_FORBIDDEN_BY_POLICY, NULL,
                             "The user, group or application 'appid=%s;oid=%s;iss=https://"
                             "sts.windows.net/%s/' does not have keys %s permission on key vault "
                             "'%s;location=%s'. For help resolving this issue, please see "
                             "https://go.microsoft.com/fwlink/?linkid=2125287",
                             kc->who.appid, kc->who.oid, kc->who.tid, perm, kc->vault,
                             json_string_value(json_object_get(kc->vault_body, "location")));
    return 0;
}

/* Parses the JSON body after admission (the SDK's first request has an empty body). */
static int
kv_body(struct pgcmk_req *rq, struct pgcmk_err *err)
{
    json_error_t jerr;

    if (rq->body_len == 0)
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL, "The request body is empty.");
    rq->json = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(rq->json))
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                             "The request body is not valid JSON (line %d, column %d).", jerr.line,
                             jerr.column);
    return 0;
}

/* ---- stored keys ---------------------------------------------------------------------------- */

/* 1 found, 0 absent, -1 error. */
static int
kv_key_load(struct pgcmk_db *db, const char *vault, const char *name, struct kv_key *k,
            struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_GET);
    int rc;

    memset(k, 0, sizeof(*k));
    sqlite3_bind_text(st, 1, vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(k->name, sizeof(k->name), "%s", sqlite3_column_text(st, 0));
        snprintf(k->current, sizeof(k->current), "%s", sqlite3_column_text(st, 1));
        k->deleted = sqlite3_column_type(st, 2) != SQLITE_NULL;
        k->deleted_at = sqlite3_column_int64(st, 2);
        k->purge_at = sqlite3_column_int64(st, 3);
        rc = 1;
    } else {
        rc = rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "read key", err);
    }
    pgcmk_db_done(st);
    return rc;
}

static void
kv_version_from_row(sqlite3_stmt *st, struct kv_version *v)
{
    const void *blob = sqlite3_column_blob(st, 10);

    memset(v, 0, sizeof(*v));
    snprintf(v->version, sizeof(v->version), "%s", sqlite3_column_text(st, 0));
    snprintf(v->kty, sizeof(v->kty), "%s", sqlite3_column_text(st, 1));
    v->key_ops = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
    v->enabled = sqlite3_column_int(st, 3);
    v->nbf = sqlite3_column_int64(st, 4);
    v->exp = sqlite3_column_int64(st, 5);
    v->created = sqlite3_column_int64(st, 6);
    v->updated = sqlite3_column_int64(st, 7);
    v->tags = json_loads((const char *)sqlite3_column_text(st, 8), 0, NULL);
    v->jwk = json_loads((const char *)sqlite3_column_text(st, 9), 0, NULL);
    v->priv_len = (size_t)sqlite3_column_bytes(st, 10);
    v->priv = pgcmk_xmalloc(v->priv_len + 1);
    if (blob && v->priv_len)
        memcpy(v->priv, blob, v->priv_len);
}

static int
kv_version_load(struct pgcmk_db *db, const char *vault, const char *name, const char *version,
                struct kv_version *v, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_GET);
    int rc;

    sqlite3_bind_text(st, 1, vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, version, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        kv_version_from_row(st, v);
        rc = 1;
    } else {
        rc = rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "read key version", err);
    }
    pgcmk_db_done(st);
    return rc;
}

static int
kv_not_found(const char *name, const char *version, struct pgcmk_err *err)
{
    return pgcmk_err_set(err, PGCMK_E_KV_KEY_NOT_FOUND, NULL,
                         "A key with (name/id) %.127s%s%.40s was not found in this key vault. If "
                         "you recently deleted this key you may be able to recover it using the "
                         "correct recovery command. For help resolving this issue, please see "
                         "https://go.microsoft.com/fwlink/?linkid=2125182",
                         name, version && *version ? "/" : "", version ? version : "");
}

/* dst = a copy of src that shares its (never modified) JSON values. */
static void
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
static int
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

static int
kv_resolve(struct kv_ctx *kc, const char *name, const char *version, struct kv_key *k,
           struct kv_version *v, struct pgcmk_err *err)
{
    return kv_resolve_ex(kc, name, version, k, v, NULL, err);
}

static const char *
kv_recovery_level(const struct kv_ctx *kc)
{
    /* A retention shorter than 90 days makes the level "Customized" (Key Vault's enum). */
    if (kc->retention_days < 90)
        return kc->purge_protection ? "CustomizedRecoverable" : "CustomizedRecoverable+Purgeable";
    return kc->purge_protection ? "Recoverable" : "Recoverable+Purgeable";
}

static json_t *
kv_attributes(const struct kv_ctx *kc, const struct kv_version *v)
{
    json_t *a = json_pack("{s:b, s:I, s:I, s:s, s:i, s:b}", "enabled", v->enabled, "created",
                          (json_int_t)(v->created / 1000), "updated",
                          (json_int_t)(v->updated / 1000), "recoveryLevel", kv_recovery_level(kc),
                          "recoverableDays", kc->retention_days, "exportable", 0);

    if (v->nbf)
        json_object_set_new(a, "nbf", json_integer(v->nbf));
    if (v->exp)
        json_object_set_new(a, "exp", json_integer(v->exp));
    return a;
}

static json_t *
kv_bundle(const struct kv_ctx *kc, const char *name, const struct kv_version *v)
{
    char *base = kv_base(kc->vault),
         *kid = pgcmk_xasprintf("%s/keys/%s/%s", base, name, v->version);
    json_t *key = json_deep_copy(v->jwk);

    json_object_set_new(key, "kid", json_string(kid));
    json_object_set_new(key, "kty", json_string(v->kty));
    json_object_set(key, "key_ops", v->key_ops);
    free(kid);
    free(base);
    return json_pack("{s:o, s:o, s:o}", "key", key, "attributes", kv_attributes(kc, v), "tags",
                     v->tags ? json_incref(v->tags) : json_object());
}

static json_t *
kv_deleted_bundle(const struct kv_ctx *kc, const struct kv_key *k, json_t *bundle)
{
    char *base = kv_base(kc->vault), *rid = pgcmk_xasprintf("%s/deletedkeys/%s", base, k->name);

    json_object_set_new(bundle, "recoveryId", json_string(rid));
    json_object_set_new(bundle, "deletedDate", json_integer(k->deleted_at / 1000));
    json_object_set_new(bundle, "scheduledPurgeDate", json_integer(k->purge_at / 1000));
    free(rid);
    free(base);
    return bundle;
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
static struct pgcmk_pkey *
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

/* ---- create, get, list, update ---------------------------------------------------------- */

static int
kv_check_name(const char *name, struct pgcmk_err *err)
{
    size_t n = strlen(name);
    int ok = n >= 1 && n <= 127;

    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)name[i]) || name[i] == '-';
    return ok ? 0
              : pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                              "The key name '%.127s' is invalid: use 1-127 letters, digits and "
                              "dashes.",
                              name);
}

static int
kv_parse_ops(json_t *ops, int ec, json_t **out, struct pgcmk_err *err)
{
    size_t i;
    json_t *v;

    if (ops == NULL || json_is_null(ops)) {
        *out = json_array();
        for (int k = 0; kv_all_ops[k]; k++)
            if (!ec || strcmp(kv_all_ops[k], "sign") == 0 || strcmp(kv_all_ops[k], "verify") == 0)
                json_array_append_new(*out, json_string(kv_all_ops[k]));
        return 0;
    }
    if (!json_is_array(ops))
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL, "key_ops must be an array.");
    *out = json_array();
    json_array_foreach(ops, i, v) {
        int ok = 0;

        for (int k = 0; json_is_string(v) && kv_all_ops[k]; k++)
            if (strcmp(json_string_value(v), kv_all_ops[k]) == 0)
                ok = 1;
        if (ok && ec && strcmp(json_string_value(v), "sign") != 0 &&
            strcmp(json_string_value(v), "verify") != 0)
            ok = 0;
        if (!ok) {
            json_decref(*out);
            *out = NULL;
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "Invalid key operation '%.32s'.",
                                 json_is_string(v) ? json_string_value(v) : "?");
        }
        json_array_append(*out, v);
    }
    return 0;
}

static int
kv_parse_attrs(json_t *attrs, int *enabled, int64_t *nbf, int64_t *exp, struct pgcmk_err *err)
{
    json_t *v;

    if (attrs == NULL || json_is_null(attrs))
        return 0;
    if (!json_is_object(attrs))
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL, "attributes must be an object.");
    if ((v = json_object_get(attrs, "enabled")) && !json_is_null(v)) {
        if (!json_is_boolean(v))
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "attributes.enabled must be a boolean.");
        *enabled = json_is_true(v);
    }
    if ((v = json_object_get(attrs, "nbf")) && !json_is_null(v)) {
        if (!json_is_integer(v))
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "attributes.nbf must be seconds since the epoch.");
        *nbf = json_integer_value(v);
    }
    if ((v = json_object_get(attrs, "exp")) && !json_is_null(v)) {
        if (!json_is_integer(v))
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "attributes.exp must be seconds since the epoch.");
        *exp = json_integer_value(v);
    }
    return 0;
}

struct kv_create {
    struct kv_ctx *kc;
    const char *name;
    char version[33];
    const char *kty;
    json_t *ops, *tags;
    int enabled;
    int64_t nbf, exp;
    char *jwk;
    unsigned char *sealed;
    size_t sealed_len;
    int created_key;
};

static int
kv_create_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kv_create *c = ctx;
    struct kv_key k;
    sqlite3_stmt *st;
    char *ops = json_dumps(c->ops, JSON_COMPACT), *tags = json_dumps(c->tags, JSON_COMPACT);
    int64_t now = pgcmk_clock_now();
    int rc = kv_key_load(db, c->kc->vault, c->name, &k, err);

    pgcmk_vault_invalidate(); /* see the caches: before COMMIT, under the writer lock */
    if (rc < 0)
        goto out;
    if (rc == 1 && k.deleted) {
        rc = pgcmk_err_set(err, PGCMK_E_KV_DELETED_RECOVERABLE, NULL,
                           "Key %.127s is currently in a deleted but recoverable state, and its "
                           "name cannot be reused; in this state, the key can only be recovered "
                           "or purged.",
                           c->name);
        goto out;
    }
    st = pgcmk_db_stmt(db, rc == 1 ? PGCMK_STMT_KVKEY_SET_CURRENT : PGCMK_STMT_KVKEY_INSERT);
    sqlite3_bind_text(st, 1, c->kc->vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, rc == 1 ? k.name : c->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->version, -1, SQLITE_STATIC);
    if (rc == 0)
        sqlite3_bind_int64(st, 4, now);
    c->created_key = rc == 0;
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    if (rc != SQLITE_DONE) {
        rc = pgcmk_db_fail(db, rc, "write key", err);
        goto out;
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_INSERT);
    sqlite3_bind_text(st, 1, c->kc->vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->created_key ? c->name : k.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, c->kty, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, ops, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, c->enabled);
    if (c->nbf)
        sqlite3_bind_int64(st, 7, c->nbf);
    if (c->exp)
        sqlite3_bind_int64(st, 8, c->exp);
    sqlite3_bind_int64(st, 9, now);
    sqlite3_bind_text(st, 10, tags, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, c->jwk, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 12, c->sealed, (int)c->sealed_len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    rc = rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "write key version", err);
out:
    free(ops);
    free(tags);
    return rc;
}

static int
kv_respond_version(struct pgcmk_resp *rs, struct kv_ctx *kc, const char *vault, const char *name,
                   const char *version, struct pgcmk_err *err)
{
    struct kv_version v;
    int rc = kv_version_load(pgcmk_db(), vault, name, version, &v, err);

    if (rc != 1)
        return rc < 0 ? -1 : kv_not_found(name, version, err);
    pgcmk_resp_json(rs, 200, kv_bundle(kc, name, &v));
    kv_version_release(&v);
    return 0;
}

/* What a new key (or new version) is made of, from a data-plane or an ARM request. */
struct kv_spec {
    struct pgcmk_pkey *imported; /* an imported key (owned), or NULL to generate one */
    const char *kty;
    const char *crv; /* EC keys: P-256, P-384 or P-521 */
    int bits;
    json_t *ops;  /* owned */
    json_t *tags; /* owned */
    int enabled;
    int64_t nbf, exp;
};

static void
kv_spec_release(struct kv_spec *sp)
{
    pgcmk_pkey_free(sp->imported);
    json_decref(sp->ops);
    json_decref(sp->tags);
    memset(sp, 0, sizeof(*sp));
}

/* Generates an RSA key, seals it and stores it as a new version of `name` (a new key when the
 * name is free). The version goes to version_out[33]. */
static int
kv_new_version(struct kv_ctx *kc, const char *name, struct kv_spec *sp, char *version_out,
               int *created_key, struct pgcmk_err *err)
{
    struct kv_create c;
    struct pgcmk_pkey *pk = sp->imported;
    char *pem = NULL, aad[210], id[200], uuid[37];
    size_t j = 0;
    int rc = -1;

    memset(&c, 0, sizeof(c));
    c.kc = kc;
    c.name = name;
    c.kty = sp->kty;
    c.ops = sp->ops;
    c.tags = sp->tags;
    c.enabled = sp->enabled;
    c.nbf = sp->nbf;
    c.exp = sp->exp;
    pgcmk_uuid(uuid);
    for (size_t i = 0; uuid[i]; i++)
        if (uuid[i] != '-')
            c.version[j++] = uuid[i];
    c.version[j] = '\0';
    if ((pk == NULL && (strncmp(sp->kty, "EC", 2) == 0 ? pgcmk_pkey_ec_new(sp->crv, &pk)
                                                       : pgcmk_pkey_rsa_new(sp->bits, &pk))) ||
        (pem = pgcmk_pkey_private_pem(pk)) == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "key generation failed");
        goto out;
    }
    snprintf(id, sizeof(id), "%s/%s/%s", kc->vault, name, c.version);
    pgcmk_lower(id, sizeof(id), id);
    snprintf(aad, sizeof(aad), "kv:%.190s", id);
    {
        json_t *jwk = pgcmk_pkey_public_jwk(pk, NULL);

        c.jwk = json_dumps(jwk, JSON_COMPACT);
        json_decref(jwk);
    }
    if (pgcmk_store_seal(pem, strlen(pem), aad, &c.sealed, &c.sealed_len)) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "sealing the key failed");
        goto out;
    }
    if (pgcmk_db_tx(pgcmk_db(), kv_create_tx, &c, err))
        goto out;
    {
        struct pgcmk_event ev = {c.created_key ? PGCMK_EV_KEY_CREATED : PGCMK_EV_KEY_ROTATED,
                                 kc->vault,
                                 name,
                                 c.version,
                                 NULL,
                                 NULL};

        pgcmk_events_publish(&ev);
    }
    snprintf(version_out, 33, "%s", c.version);
    if (created_key)
        *created_key = c.created_key;
    rc = 0;
out:
    if (pem)
        pgcmk_secret_free(pem, strlen(pem));
    if (pk != sp->imported)
        pgcmk_pkey_free(pk);
    free(c.jwk);
    free(c.sealed);
    return rc;
}

/* Reads kty/size/ops/attributes/tags in either dialect: data plane (kty, key_size, key_ops,
 * attributes, tags) or ARM (properties.kty, keySize, keyOps, attributes; tags outside). */
static int
kv_spec_parse(struct kv_ctx *kc, json_t *body, int arm, struct kv_spec *sp, struct pgcmk_err *err)
{
    json_t *src = arm ? json_object_get(body, "properties") : body;
    json_t *kty = json_object_get(src, "kty"),
           *size = json_object_get(src, arm ? "keySize" : "key_size");
    json_t *tags = json_object_get(body, "tags");
    const char *sku;

    memset(sp, 0, sizeof(*sp));
    sp->bits = 2048;
    sp->enabled = 1;
    sp->kty = json_is_string(kty) ? json_string_value(kty) : (arm ? "RSA" : NULL);
    if (sp->kty == NULL || (strcmp(sp->kty, "RSA") != 0 && strcmp(sp->kty, "RSA-HSM") != 0 &&
                            strcmp(sp->kty, "EC") != 0 && strcmp(sp->kty, "EC-HSM") != 0))
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                             "The key type '%.16s' is not valid: use RSA, RSA-HSM, EC or EC-HSM.",
                             sp->kty ? sp->kty : "(missing)");
    if (strncmp(sp->kty, "EC", 2) == 0) {
        json_t *crv = json_object_get(src, arm ? "curveName" : "crv");

        sp->crv = json_is_string(crv) ? json_string_value(crv) : "P-256";
        if (strcmp(sp->crv, "P-256") != 0 && strcmp(sp->crv, "P-384") != 0 &&
            strcmp(sp->crv, "P-521") != 0)
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "The curve '%.16s' is not supported: use P-256, P-384 or P-521.",
                                 sp->crv);
        if (size && !json_is_null(size))
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "key_size does not apply to EC keys.");
    }
    sku = json_string_value(json_object_get(
        json_object_get(json_object_get(kc->vault_body, "properties"), "sku"), "name"));
    if (strstr(sp->kty, "-HSM") && (sku == NULL || strcasecmp(sku, "premium") != 0))
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                             "%s keys need a premium vault; '%s' is standard.", sp->kty, kc->vault);
    if (sp->crv == NULL && size && !json_is_null(size)) {
        sp->bits = json_is_integer(size) ? (int)json_integer_value(size) : 0;
        if (sp->bits != 2048 && sp->bits != 3072 && sp->bits != 4096)
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "The key size %d is not supported. RSA keys are 2048, 3072 or "
                                 "4096 bits.",
                                 sp->bits);
    }
    if (json_object_get(src, "public_exponent") &&
        json_integer_value(json_object_get(src, "public_exponent")) != 65537)
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                             "Only the public exponent 65537 is supported.");
    if (kv_parse_ops(json_object_get(src, arm ? "keyOps" : "key_ops"), sp->crv != NULL, &sp->ops,
                     err) ||
        kv_parse_attrs(json_object_get(src, "attributes"), &sp->enabled, &sp->nbf, &sp->exp, err))
        return -1;
    sp->tags = json_is_object(tags) ? json_incref(tags) : json_object();
    return 0;
}

static int
kv_create(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = pgcmk_req_param(rq, "name");
    struct kv_ctx kc;
    struct kv_spec sp;
    char version[33];
    int rc = -1;

    memset(&sp, 0, sizeof(sp));
    if (kv_admit(rq, rs, "create", &kc, err) || kv_body(rq, err) || kv_check_name(name, err) ||
        kv_spec_parse(&kc, rq->json, 0, &sp, err) ||
        kv_new_version(&kc, name, &sp, version, NULL, err))
        goto out;
    rc = kv_respond_version(rs, &kc, kc.vault, name, version, err);
out:
    kv_spec_release(&sp);
    kv_ctx_release(&kc);
    return rc;
}

/* PUT /keys/{name}: import a key as a new version. Key Vault takes a JWK with its private parts
 * ("key"); pgcmk also takes "pem" (PKCS#8 or traditional PEM) or "pfx" (base64 PKCS#12), each
 * with an optional "password", so that the seeds' PEM and .pfx paths work without a client-side
 * conversion. */
static int
kv_import(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = pgcmk_req_param(rq, "name");
    const char *pem;
    struct kv_ctx kc;
    struct kv_spec sp;
    json_t *jwk, *tags, *pub = NULL;
    char version[33];
    int rc = -1, hsm;

    memset(&sp, 0, sizeof(sp));
    if (kv_admit(rq, rs, "import", &kc, err) || kv_body(rq, err) || kv_check_name(name, err))
        goto out;
    jwk = json_object_get(rq->json, "key");
    pem = json_string_value(json_object_get(rq->json, "pem"));
    {
        const char *pfx = json_string_value(json_object_get(rq->json, "pfx"));
        const char *pw = json_string_value(json_object_get(rq->json, "password"));

        if (pem) {
            if (pgcmk_pkey_from_pem_password(pem, strlen(pem), pw, &sp.imported)) {
                pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                              "The PEM does not hold a private key (or the password is wrong).");
                goto out;
            }
        } else if (pfx) {
            unsigned char *der = NULL;
            size_t der_len = 0;

            if ((pgcmk_b64_decode(pfx, strlen(pfx), &der, &der_len) &&
                 pgcmk_b64url_decode(pfx, strlen(pfx), &der, &der_len)) ||
                pgcmk_pkey_from_pfx(der, der_len, pw, &sp.imported)) {
                free(der);
                pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                              "The PFX could not be read (not base64 PKCS#12, or a wrong "
                              "password).");
                goto out;
            }
            free(der);
        } else {
            const char *kty = json_string_value(json_object_get(jwk, "kty"));

            if (!json_is_object(jwk) || kty == NULL ||
                (strcmp(kty, "RSA") != 0 && strcmp(kty, "RSA-HSM") != 0)) {
                pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                              "The 'key' must be an RSA JSON Web Key with its private parts (or "
                              "give 'pem' or 'pfx').");
                goto out;
            }
            if (pgcmk_pkey_from_jwk(jwk, &sp.imported)) {
                pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                              "The JSON Web Key is not a valid RSA private key (n, e, d, p, q, "
                              "dp, dq and qi are required and must agree).");
                goto out;
            }
        }
    }
    hsm = json_is_true(json_object_get(rq->json, "Hsm"));
    sp.bits = pgcmk_pkey_bits(sp.imported);
    if (pgcmk_pkey_is_ec(sp.imported)) {
        pub = pgcmk_pkey_public_jwk(sp.imported, NULL);
        sp.crv = json_string_value(json_object_get(pub, "crv"));
        sp.kty = hsm ? "EC-HSM" : "EC";
        if (sp.crv == NULL) {
            pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                          "The EC key is not on P-256, P-384 or P-521.");
            goto out;
        }
    } else {
        sp.kty = hsm ? "RSA-HSM" : "RSA";
        if (sp.bits != 2048 && sp.bits != 3072 && sp.bits != 4096) {
            pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                          "The key size %d is not supported. RSA keys are 2048, 3072 or 4096 "
                          "bits.",
                          sp.bits);
            goto out;
        }
    }
    sp.enabled = 1;
    if (kv_parse_ops(json_object_get(jwk, "key_ops"), sp.crv != NULL, &sp.ops, err) ||
        kv_parse_attrs(json_object_get(rq->json, "attributes"), &sp.enabled, &sp.nbf, &sp.exp, err))
        goto out;
    tags = json_object_get(rq->json, "tags");
    sp.tags = json_is_object(tags) ? json_incref(tags) : json_object();
    if (kv_new_version(&kc, name, &sp, version, NULL, err))
        goto out;
    rc = kv_respond_version(rs, &kc, kc.vault, name, version, err);
out:
    kv_spec_release(&sp);
    json_decref(pub);
    kv_ctx_release(&kc);
    return rc;
}

/* POST /keys/{name}/rotate: a new version with the current version's type, size and ops. */
static int
kv_rotate(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx kc;
    struct kv_key k;
    struct kv_version v;
    struct kv_spec sp;
    char version[33];
    const char *n;
    int rc = -1;

    memset(&v, 0, sizeof(v));
    memset(&sp, 0, sizeof(sp));
    if (kv_admit(rq, rs, "rotate", &kc, err) ||
        kv_resolve(&kc, pgcmk_req_param(rq, "name"), NULL, &k, &v, err))
        goto out;
    n = json_string_value(json_object_get(v.jwk, "n"));
    sp.kty = v.kty;
    sp.crv = json_string_value(json_object_get(v.jwk, "crv"));
    sp.bits = n && strlen(n) * 6 / 8 >= 512 ? 4096 : n && strlen(n) * 6 / 8 >= 384 ? 3072 : 2048;
    sp.ops = json_incref(v.key_ops);
    sp.tags = json_incref(v.tags);
    sp.enabled = 1;
    if (kv_new_version(&kc, k.name, &sp, version, NULL, err))
        goto out;
    rc = kv_respond_version(rs, &kc, kc.vault, k.name, version, err);
out:
    sp.kty = NULL;
    kv_spec_release(&sp);
    kv_version_release(&v);
    kv_ctx_release(&kc);
    return rc;
}

static int
kv_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx kc;
    struct kv_key k;
    struct kv_version v;
    int rc = -1;

    memset(&v, 0, sizeof(v));
    if (kv_admit(rq, rs, "get", &kc, err) == 0 &&
        kv_resolve(&kc, pgcmk_req_param(rq, "name"), pgcmk_req_param(rq, "version"), &k, &v, err) ==
            0) {
        pgcmk_resp_json(rs, 200, kv_bundle(&kc, k.name, &v));
        rc = 0;
    }
    kv_version_release(&v);
    kv_ctx_release(&kc);
    return rc;
}

static json_t *
kv_item(const struct kv_ctx *kc, const char *name, const struct kv_version *v, int versioned)
{
    char *base = kv_base(kc->vault);
    char *kid = versioned ? pgcmk_xasprintf("%s/keys/%s/%s", base, name, v->version)
                          : pgcmk_xasprintf("%s/keys/%s", base, name);
    json_t *o = json_pack("{s:s, s:o, s:o}", "kid", kid, "attributes", kv_attributes(kc, v), "tags",
                          v->tags ? json_incref(v->tags) : json_object());

    free(kid);
    free(base);
    return o;
}

/* Pages by maxresults (1..25) and $skiptoken, with an absolute nextLink on the vault host. */
static int
kv_page(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct kv_ctx *kc, json_t *items,
        struct pgcmk_err *err)
{
    const char *mr = pgcmk_req_query(rq, "maxresults"), *skip = pgcmk_req_query(rq, "$skiptoken");
    long max = KV_MAX_RESULTS, start = 0, total = (long)json_array_size(items);
    json_t *value = json_array(), *out;
    char *end;

    if (mr && *mr) {
        max = strtol(mr, &end, 10);
        if (*end || max < 1 || max > KV_MAX_RESULTS) {
            json_decref(items);
            json_decref(value);
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "maxresults must be between 1 and 25.");
        }
    }
    if (skip && *skip) {
        start = strtol(skip, &end, 10);
        if (*end || start < 0 || start > total)
            start = total;
    }
    for (long i = start; i < total && i < start + max; i++)
        json_array_append(value, json_array_get(items, (size_t)i));
    out = json_pack("{s:o, s:n}", "value", value, "nextLink");
    if (start + max < total) {
        char *base = kv_base(kc->vault);
        char *next = pgcmk_xasprintf("%s%s?api-version=%s&$skiptoken=%ld&maxresults=%ld", base,
                                     rq->path, rq->api_version, start + max, max);

        json_object_set_new(out, "nextLink", json_string(next));
        free(next);
        free(base);
    }
    json_decref(items);
    pgcmk_resp_json(rs, 200, out);
    return 0;
}

/* Lists live (deleted = 0) or deleted keys. */
static int
kv_list_keys(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err, int deleted)
{
    struct pgcmk_db *db;
    struct kv_ctx kc;
    sqlite3_stmt *st;
    json_t *items, *names;
    size_t i;
    json_t *n;
    int rc;

    if (kv_admit(rq, rs, "list", &kc, err)) {
        kv_ctx_release(&kc);
        return -1;
    }
    db = pgcmk_db();
    names = json_array();
    st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_LIST);
    sqlite3_bind_text(st, 1, kc.vault, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, !deleted);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(names,
                              json_pack("{s:s, s:s, s:I, s:I}", "name", sqlite3_column_text(st, 0),
                                        "current", sqlite3_column_text(st, 1), "deleted",
                                        (json_int_t)sqlite3_column_int64(st, 2), "purge",
                                        (json_int_t)sqlite3_column_int64(st, 3)));
    pgcmk_db_done(st);
    items = json_array();
    json_array_foreach(names, i, n) {
        struct kv_version v;
        const char *name = json_string_value(json_object_get(n, "name"));

        if (kv_version_load(db, kc.vault, name, json_string_value(json_object_get(n, "current")),
                            &v, err) == 1) {
            json_t *item = kv_item(&kc, name, &v, 0);

            if (deleted) {
                struct kv_key k;

                memset(&k, 0, sizeof(k));
                snprintf(k.name, sizeof(k.name), "%s", name);
                k.deleted_at = json_integer_value(json_object_get(n, "deleted"));
                k.purge_at = json_integer_value(json_object_get(n, "purge"));
                kv_deleted_bundle(&kc, &k, item);
            }
            json_array_append_new(items, item);
            kv_version_release(&v);
        }
    }
    json_decref(names);
    rc = kv_page(rq, rs, &kc, items, err);
    kv_ctx_release(&kc);
    return rc;
}

static int
kv_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return kv_list_keys(rq, rs, err, 0);
}

static int
kv_list_deleted(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return kv_list_keys(rq, rs, err, 1);
}

static int
kv_versions(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = pgcmk_req_param(rq, "name");
    struct pgcmk_db *db;
    struct kv_ctx kc;
    struct kv_key k;
    sqlite3_stmt *st;
    json_t *items;
    int rc;

    if (kv_admit(rq, rs, "list", &kc, err)) {
        kv_ctx_release(&kc);
        return -1;
    }
    db = pgcmk_db();
    rc = kv_key_load(db, kc.vault, name, &k, err);
    if (rc != 1 || k.deleted) {
        kv_ctx_release(&kc);
        return rc < 0 ? -1 : kv_not_found(name, NULL, err);
    }
    items = json_array();
    st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_LIST);
    sqlite3_bind_text(st, 1, kc.vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct kv_version v;

        kv_version_from_row(st, &v);
        json_array_append_new(items, kv_item(&kc, k.name, &v, 1));
        kv_version_release(&v);
    }
    pgcmk_db_done(st);
    rc = kv_page(rq, rs, &kc, items, err);
    kv_ctx_release(&kc);
    return rc;
}

struct kv_update {
    struct kv_ctx *kc;
    const char *name;
    struct kv_version *v;
};

static int
kv_update_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kv_update *u = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_UPDATE);
    char *ops = json_dumps(u->v->key_ops, JSON_COMPACT),
         *tags = json_dumps(u->v->tags, JSON_COMPACT);
    int rc;

    pgcmk_vault_invalidate(); /* see the caches: before COMMIT, under the writer lock */
    sqlite3_bind_text(st, 1, u->kc->vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, u->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, u->v->version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, ops, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, u->v->enabled);
    if (u->v->nbf)
        sqlite3_bind_int64(st, 6, u->v->nbf);
    if (u->v->exp)
        sqlite3_bind_int64(st, 7, u->v->exp);
    sqlite3_bind_int64(st, 8, u->v->updated);
    sqlite3_bind_text(st, 9, tags, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    free(ops);
    free(tags);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "update key", err);
}

static int
kv_update(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx kc;
    struct kv_key k;
    struct kv_version v;
    json_t *ops = NULL, *tags;
    int was_enabled, rc = -1;

    memset(&v, 0, sizeof(v));
    if (kv_admit(rq, rs, "update", &kc, err) || kv_body(rq, err) ||
        kv_resolve(&kc, pgcmk_req_param(rq, "name"), pgcmk_req_param(rq, "version"), &k, &v, err))
        goto out;
    was_enabled = v.enabled;
    if (json_object_get(rq->json, "key_ops")) {
        if (kv_parse_ops(json_object_get(rq->json, "key_ops"), strncmp(v.kty, "EC", 2) == 0, &ops,
                         err))
            goto out;
        json_decref(v.key_ops);
        v.key_ops = ops;
    }
    if (kv_parse_attrs(json_object_get(rq->json, "attributes"), &v.enabled, &v.nbf, &v.exp, err))
        goto out;
    tags = json_object_get(rq->json, "tags");
    if (json_is_object(tags)) {
        json_decref(v.tags);
        v.tags = json_incref(tags);
    }
    v.updated = pgcmk_clock_now();
    {
        struct kv_update u = {&kc, k.name, &v};

        if (pgcmk_db_tx(pgcmk_db(), kv_update_tx, &u, err))
            goto out;
    }
    {
        struct pgcmk_event ev = {was_enabled && !v.enabled   ? PGCMK_EV_KEY_DISABLED
                                 : !was_enabled && v.enabled ? PGCMK_EV_KEY_ENABLED
                                                             : PGCMK_EV_KEY_UPDATED,
                                 kc.vault,
                                 k.name,
                                 v.version,
                                 NULL,
                                 NULL};

        pgcmk_events_publish(&ev);
    }
    pgcmk_resp_json(rs, 200, kv_bundle(&kc, k.name, &v));
    rc = 0;
out:
    kv_version_release(&v);
    kv_ctx_release(&kc);
    return rc;
}

/* ---- delete, deleted keys, recover, purge ------------------------------------------------ */

struct kv_state {
    struct kv_ctx *kc;
    const char *name;
    int64_t deleted_at, purge_at; /* 0,0 = recover */
    int purge;
};

static int
kv_state_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kv_state *s = ctx;
    sqlite3_stmt *st;
    int rc;

    pgcmk_vault_invalidate(); /* see the caches: before COMMIT, under the writer lock */
    if (s->purge) {
        st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_DELETE_KEY);
        sqlite3_bind_text(st, 1, s->kc->vault, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        pgcmk_db_done(st);
        if (rc != SQLITE_DONE)
            return pgcmk_db_fail(db, rc, "purge key versions", err);
        st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_DELETE);
        sqlite3_bind_text(st, 1, s->kc->vault, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->name, -1, SQLITE_STATIC);
    } else {
        st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_SET_DELETED);
        sqlite3_bind_text(st, 1, s->kc->vault, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->name, -1, SQLITE_STATIC);
        if (s->deleted_at) {
            sqlite3_bind_int64(st, 3, s->deleted_at);
            sqlite3_bind_int64(st, 4, s->purge_at);
        }
    }
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "change key state", err);
}

static int
kv_delete(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = pgcmk_req_param(rq, "name");
    struct kv_ctx kc;
    struct kv_key k;
    struct kv_version v;
    struct kv_state s;
    int rc = -1;

    memset(&v, 0, sizeof(v));
    if (kv_admit(rq, rs, "delete", &kc, err) || kv_resolve(&kc, name, NULL, &k, &v, err))
        goto out;
    s = (struct kv_state){&kc, k.name, pgcmk_clock_now(), 0, 0};
    s.purge_at = s.deleted_at + (int64_t)kc.retention_days * DAY_MS;
    if (pgcmk_db_tx(pgcmk_db(), kv_state_tx, &s, err))
        goto out;
    k.deleted_at = s.deleted_at;
    k.purge_at = s.purge_at;
    {
        struct pgcmk_event ev = {PGCMK_EV_KEY_DELETED, kc.vault, k.name, NULL, NULL, NULL};

        pgcmk_events_publish(&ev);
    }
    pgcmk_resp_json(rs, 200, kv_deleted_bundle(&kc, &k, kv_bundle(&kc, k.name, &v)));
    rc = 0;
out:
    kv_version_release(&v);
    kv_ctx_release(&kc);
    return rc;
}

/* A deleted key and its current version. */
static int
kv_resolve_deleted(struct kv_ctx *kc, const char *name, struct kv_key *k, struct kv_version *v,
                   struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    int rc = kv_key_load(db, kc->vault, name, k, err);

    if (rc < 0)
        return -1;
    if (rc == 0 || !k->deleted)
        return pgcmk_err_set(err, PGCMK_E_KV_KEY_NOT_FOUND, NULL, "Deleted Key not found: %.127s",
                             name);
    return kv_version_load(db, kc->vault, k->name, k->current, v, err) == 1 ? 0 : -1;
}

static int
kv_get_deleted(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx kc;
    struct kv_key k;
    struct kv_version v;
    int rc = -1;

    memset(&v, 0, sizeof(v));
    if (kv_admit(rq, rs, "get", &kc, err) == 0 &&
        kv_resolve_deleted(&kc, pgcmk_req_param(rq, "name"), &k, &v, err) == 0) {
        pgcmk_resp_json(rs, 200, kv_deleted_bundle(&kc, &k, kv_bundle(&kc, k.name, &v)));
        rc = 0;
    }
    kv_version_release(&v);
    kv_ctx_release(&kc);
    return rc;
}

/* Recover (purge == 0) or purge a deleted key: both admit, resolve the deleted key, change its
 * state in one transaction and publish the event. */
static int
kv_deleted_action(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err, int purge)
{
    struct kv_ctx kc;
    struct kv_key k;
    struct kv_version v;
    struct kv_state s;
    int rc = -1;

    memset(&v, 0, sizeof(v));
    if (kv_admit(rq, rs, purge ? "purge" : "recover", &kc, err) ||
        kv_resolve_deleted(&kc, pgcmk_req_param(rq, "name"), &k, &v, err))
        goto out;
    if (purge && kc.purge_protection) {
        pgcmk_err_set(err, PGCMK_E_KV_PURGE_PROTECTED, NULL,
                      "Operation \"purge\" is not allowed because purge protection is enabled "
                      "for this vault. Key Vault service will automatically purge it after the "
                      "retention period has passed.");
        goto out;
    }
    s = (struct kv_state){&kc, k.name, 0, 0, purge};
    if (pgcmk_db_tx(pgcmk_db(), kv_state_tx, &s, err))
        goto out;
    {
        struct pgcmk_event ev = {purge ? PGCMK_EV_KEY_PURGED : PGCMK_EV_KEY_RECOVERED,
                                 kc.vault,
                                 k.name,
                                 NULL,
                                 NULL,
                                 NULL};

        pgcmk_events_publish(&ev);
    }
    if (purge)
        pgcmk_resp_empty(rs, 204);
    else
        pgcmk_resp_json(rs, 200, kv_bundle(&kc, k.name, &v));
    rc = 0;
out:
    kv_version_release(&v);
    kv_ctx_release(&kc);
    return rc;
}

static int
kv_recover(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return kv_deleted_action(rq, rs, err, 0);
}

static int
kv_purge(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return kv_deleted_action(rq, rs, err, 1);
}

/* ---- crypto operations ------------------------------------------------------------------ */

static const struct {
    const char *path; /* as in the URL */
    const char *op;   /* key_ops name and permission */
    int needs_window; /* refused outside nbf..exp */
} kv_ops[] = {{"encrypt", "encrypt", 1},     {"decrypt", "decrypt", 0}, {"wrapkey", "wrapKey", 1},
              {"unwrapkey", "unwrapKey", 0}, {"sign", "sign", 1},       {"verify", "verify", 0}};

static int
kv_crypto(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *opname = pgcmk_req_param(rq, "op");
    struct kv_ctx kc;
    struct kv_key k;
    struct kv_version v;
    struct kv_tkey *entry = NULL;
    struct pgcmk_pkey *pk = NULL;
    int pk_owned = 0;
    const char *alg, *value;
    unsigned char *in = NULL, *out = NULL;
    size_t in_len = 0, out_len = 0;
    int which = -1, rc = -1;
    int64_t now;
    char *b64 = NULL, *kid = NULL, *base = NULL;
    size_t i;
    json_t *o;
    int allowed = 0;

    memset(&v, 0, sizeof(v));
    memset(&kc, 0, sizeof(kc));
    for (size_t x = 0; x < PGCMK_ARRAY_LEN(kv_ops); x++)
        if (strcasecmp(opname, kv_ops[x].path) == 0)
            which = (int)x;
    if (which < 0) {
        kv_headers(rs);
        pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                      "The request URI contains an invalid operation '%.32s'.", opname);
        goto out;
    }
    if (kv_admit(rq, rs, kv_ops[which].op, &kc, err) || kv_body(rq, err) ||
        kv_resolve_ex(&kc, pgcmk_req_param(rq, "name"), pgcmk_req_param(rq, "version"), &k, &v,
                      &entry, err))
        goto out;
    json_array_foreach(v.key_ops, i, o) {
        if (json_is_string(o) && strcmp(json_string_value(o), kv_ops[which].op) == 0)
            allowed = 1;
    }
    if (!allowed) {
        pgcmk_err_set(err, PGCMK_E_KV_KEY_OP_FORBIDDEN, NULL,
                      "Operation %s is not permitted on this key.", kv_ops[which].op);
        goto out;
    }
    if (!v.enabled) {
        pgcmk_err_set(err, PGCMK_E_KV_KEY_DISABLED, NULL,
                      "Operation %s is not allowed on a disabled key.", kv_ops[which].op);
        goto out;
    }
    now = pgcmk_clock_now() / 1000;
    if (kv_ops[which].needs_window && v.exp && now >= v.exp) {
        pgcmk_err_set(err, PGCMK_E_KV_KEY_EXPIRED, NULL,
                      "Operation %s is not allowed on an expired key.", kv_ops[which].op);
        goto out;
    }
    if (kv_ops[which].needs_window && v.nbf && now < v.nbf) {
        pgcmk_err_set(err, PGCMK_E_KV_KEY_NOT_YET_VALID, NULL,
                      "Operation %s is not allowed on a key that is not yet valid.",
                      kv_ops[which].op);
        goto out;
    }
    alg = json_string_value(json_object_get(rq->json, "alg"));
    value = json_string_value(json_object_get(rq->json, "value"));
    if (alg == NULL || value == NULL || pgcmk_b64url_decode(value, strlen(value), &in, &in_len)) {
        pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                      "The request needs 'alg' and a base64url 'value'.");
        goto out;
    }
    if (entry && entry->pk) {
        pk = entry->pk;
    } else {
        pk = kv_pkey(&kc, k.name, &v, &pk_owned);
        if (entry && pk && !pk_owned)
            entry->pk = pk;
    }
    if (pk == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "the key cannot be loaded");
        goto out;
    }
    base = kv_base(kc.vault);
    kid = pgcmk_xasprintf("%s/keys/%s/%s", base, k.name, v.version);
    if (which <= 3) { /* encrypt, decrypt, wrapkey, unwrapkey */
        int dec = which == 1 || which == 3;

        if (!pgcmk_pkey_crypt_alg_ok(alg)) {
            pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                          "Invalid algorithm '%.32s': use RSA1_5, RSA-OAEP or RSA-OAEP-256.", alg);
            goto out;
        }
        if ((dec ? pgcmk_pkey_decrypt(pk, alg, in, in_len, &out, &out_len)
                 : pgcmk_pkey_encrypt(pk, alg, in, in_len, &out, &out_len))) {
            pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                          dec ? "The value could not be decrypted with this key and algorithm."
                              : "The value is too long for this key and algorithm.");
            goto out;
        }
        b64 = pgcmk_b64url_encode(out, out_len);
        pgcmk_resp_json(rs, 200, json_pack("{s:s, s:s}", "kid", kid, "value", b64));
    } else if (which == 4) { /* sign */
        if (!pgcmk_pkey_sign_alg_ok(alg, in_len)) {
            pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                          "Invalid algorithm '%.32s' or digest length %zu for it.", alg, in_len);
            goto out;
        }
        if (pgcmk_pkey_sign(pk, alg, in, in_len, &out, &out_len)) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "signing failed");
            goto out;
        }
        b64 = pgcmk_b64url_encode(out, out_len);
        pgcmk_resp_json(rs, 200, json_pack("{s:s, s:s}", "kid", kid, "value", b64));
    } else { /* verify: value is the signature, digest the hash */
        const char *digest = json_string_value(json_object_get(rq->json, "digest"));
        unsigned char *d = NULL;
        size_t dlen = 0;
        int ok;

        if (digest == NULL || pgcmk_b64url_decode(digest, strlen(digest), &d, &dlen) ||
            !pgcmk_pkey_sign_alg_ok(alg, dlen)) {
            free(d);
            pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                          "The request needs 'alg', a base64url 'digest' of the right length and "
                          "the signature as 'value'.");
            goto out;
        }
        ok = pgcmk_pkey_verify(pk, alg, d, dlen, in, in_len) == 0;
        free(d);
        pgcmk_resp_json(rs, 200, json_pack("{s:b}", "value", ok));
    }
    rc = 0;
out:
    if (pk_owned)
        pgcmk_pkey_free(pk);
    if (out)
        pgcmk_secret_free(out, out_len);
    if (in)
        pgcmk_secret_free(in, in_len);
    free(b64);
    free(kid);
    free(base);
    kv_version_release(&v);
    kv_ctx_release(&kc);
    return rc;
}

/* ---- rotation policies ------------------------------------------------------------------ */

/* ISO-8601 durations as rotation policies write them: P90D, P1Y, P2M, P1Y6M, PT12H. Years are
 * 365 days and months 30, as Key Vault counts them. */
static int
kv_policy_duration(const char *s, int64_t *ms)
{
    int64_t total = 0;
    const char *p = s;
    int in_time = 0, any = 0;

    if (s == NULL || *p++ != 'P')
        return -1;
    while (*p) {
        char *end;
        long v;

        if (*p == 'T' && !in_time) {
            in_time = 1;
            p++;
            continue;
        }
        v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 100000)
            return -1;
        switch (*end) {
        case 'Y':
            total += in_time ? -1 : v * 365 * DAY_MS;
            break;
        case 'M':
            total += in_time ? v * 60000LL : v * 30 * DAY_MS;
            break;
        case 'W':
            total += v * 7 * DAY_MS;
            break;
        case 'D':
            total += v * DAY_MS;
            break;
        case 'H':
            total += v * 3600000LL;
            break;
        case 'S':
            total += v * 1000LL;
            break;
        default:
            return -1;
        }
        if (total < 0)
            return -1;
        p = end + 1;
        any = 1;
    }
    *ms = total;
    return any ? 0 : -1;
}

static int
kv_policy_check(json_t *pol, struct pgcmk_err *err)
{
    json_t *acts = json_object_get(pol, "lifetimeActions"), *a;
    const char *exp =
        json_string_value(json_object_get(json_object_get(pol, "attributes"), "expiryTime"));
    int64_t ms;
    size_t i;

    if (acts && !json_is_array(acts))
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                             "lifetimeActions must be an array.");
    if (exp && (kv_policy_duration(exp, &ms) || ms < 28 * DAY_MS))
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                             "expiryTime must be an ISO-8601 duration of at least 28 days.");
    json_array_foreach(acts, i, a) {
        json_t *trig = json_object_get(a, "trigger");
        const char *type = json_string_value(json_object_get(json_object_get(a, "action"), "type"));
        const char *after = json_string_value(json_object_get(trig, "timeAfterCreate"));
        const char *before = json_string_value(json_object_get(trig, "timeBeforeExpiry"));

        if (type == NULL || (strcasecmp(type, "Rotate") != 0 && strcasecmp(type, "Notify") != 0))
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "action.type must be Rotate or Notify.");
        if ((after == NULL) == (before == NULL) || kv_policy_duration(after ? after : before, &ms))
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "A trigger needs exactly one of timeAfterCreate and "
                                 "timeBeforeExpiry, as an ISO-8601 duration.");
        if (before && exp == NULL)
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "timeBeforeExpiry needs attributes.expiryTime.");
    }
    return 0;
}

static json_t *
kv_policy_json(const struct kv_ctx *kc, const char *name, json_t *stored)
{
    char *base = kv_base(kc->vault), *id = pgcmk_xasprintf("%s/keys/%s/rotationpolicy", base, name);
    json_t *o;

    if (stored)
        o = json_deep_copy(stored);
    else /* the default policy of a key that never had one */
        o = json_pack("{s:[{s:{s:s}, s:{s:s}}], s:{}}", "lifetimeActions", "trigger",
                      "timeBeforeExpiry", "P30D", "action", "type", "Notify", "attributes");
    json_object_set_new(o, "id", json_string(id));
    free(id);
    free(base);
    return o;
}

static json_t *
kv_policy_load(struct pgcmk_db *db, const char *vault, const char *name)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_GET_POLICY);
    json_t *p = NULL;

    sqlite3_bind_text(st, 1, vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        p = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
    pgcmk_db_done(st);
    return p;
}

static int
kv_policy_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx kc;
    struct kv_key k;
    int rc = -1;

    if (kv_admit(rq, rs, "getrotationpolicy", &kc, err) == 0) {
        int found = kv_key_load(pgcmk_db(), kc.vault, pgcmk_req_param(rq, "name"), &k, err);

        if (found == 1 && !k.deleted) {
            json_t *p = kv_policy_load(pgcmk_db(), kc.vault, k.name);

            pgcmk_resp_json(rs, 200, kv_policy_json(&kc, k.name, p));
            json_decref(p);
            rc = 0;
        } else if (found >= 0) {
            kv_not_found(pgcmk_req_param(rq, "name"), NULL, err);
        }
    }
    kv_ctx_release(&kc);
    return rc;
}

struct kv_policy_put {
    const char *vault, *name;
    char *text;
};

static int
kv_policy_put_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kv_policy_put *p = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_SET_POLICY);
    int rc;

    sqlite3_bind_text(st, 1, p->vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->text, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "write rotation policy", err);
}

static void kv_rotate_due(void);

static int
kv_policy_set(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx kc;
    struct kv_key k;
    json_t *pol;
    int rc = -1, found;
    char now[PGCMK_TIME_LEN];

    if (kv_admit(rq, rs, "setrotationpolicy", &kc, err) || kv_body(rq, err))
        goto out;
    found = kv_key_load(pgcmk_db(), kc.vault, pgcmk_req_param(rq, "name"), &k, err);
    if (found != 1 || k.deleted) {
        if (found >= 0)
            kv_not_found(pgcmk_req_param(rq, "name"), NULL, err);
        goto out;
    }
    if (kv_policy_check(rq->json, err))
        goto out;
    pol = json_deep_copy(rq->json);
    json_object_del(pol, "id");
    if (!json_is_object(json_object_get(pol, "attributes")))
        json_object_set_new(pol, "attributes", json_object());
    pgcmk_time_format(pgcmk_clock_now(), now);
    json_object_set_new(json_object_get(pol, "attributes"), "updated",
                        json_integer(pgcmk_clock_now() / 1000));
    {
        struct kv_policy_put p = {kc.vault, k.name, json_dumps(pol, JSON_COMPACT)};

        rc = pgcmk_db_tx(pgcmk_db(), kv_policy_put_tx, &p, err);
        free(p.text);
    }
    if (rc == 0)
        pgcmk_resp_json(rs, 200, kv_policy_json(&kc, k.name, pol));
    json_decref(pol);
out:
    kv_ctx_release(&kc);
    return rc;
}

/* The clock's side of rotation: every key whose Rotate trigger has come gets a new version. */
static void
kv_rotate_due(void)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_WITH_POLICY);
    json_t *rows = json_array(), *r;
    int64_t now = pgcmk_clock_now();
    size_t i;

    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(
            rows, json_pack("[s, s, s, s]", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
                            sqlite3_column_text(st, 2), sqlite3_column_text(st, 3)));
    pgcmk_db_done(st);
    json_array_foreach(rows, i, r) {
        const char *vault = json_string_value(json_array_get(r, 0));
        const char *name = json_string_value(json_array_get(r, 1));
        json_t *pol = json_loads(json_string_value(json_array_get(r, 3)), 0, NULL), *a;
        const char *expiry =
            json_string_value(json_object_get(json_object_get(pol, "attributes"), "expiryTime"));
        struct kv_version v;
        struct pgcmk_err err;
        int64_t due = -1, ms;
        size_t j;

        if (kv_version_load(db, vault, name, json_string_value(json_array_get(r, 2)), &v, &err) !=
            1) {
            json_decref(pol);
            continue;
        }
        json_array_foreach(json_object_get(pol, "lifetimeActions"), j, a) {
            json_t *trig = json_object_get(a, "trigger");
            const char *type =
                json_string_value(json_object_get(json_object_get(a, "action"), "type"));
            const char *after = json_string_value(json_object_get(trig, "timeAfterCreate"));
            const char *before = json_string_value(json_object_get(trig, "timeBeforeExpiry"));

            if (type == NULL || strcasecmp(type, "Rotate") != 0)
                continue;
            if (after && kv_policy_duration(after, &ms) == 0)
                due = v.created + ms;
            else if (before && v.exp && kv_policy_duration(before, &ms) == 0)
                due = v.exp * 1000 - ms;
        }
        if (due >= 0 && now >= due) {
            struct kv_ctx kc;
            struct kv_spec sp;
            char version[33];
            const char *n = json_string_value(json_object_get(v.jwk, "n"));

            memset(&kc, 0, sizeof(kc));
            memset(&sp, 0, sizeof(sp));
            snprintf(kc.vault, sizeof(kc.vault), "%s", vault);
            sp.kty = v.kty;
            sp.crv = json_string_value(json_object_get(v.jwk, "crv"));
            sp.bits = n && strlen(n) * 6 / 8 >= 512   ? 4096
                      : n && strlen(n) * 6 / 8 >= 384 ? 3072
                                                      : 2048;
            sp.ops = json_incref(v.key_ops);
            sp.tags = json_incref(v.tags);
            sp.enabled = 1;
            if (expiry && kv_policy_duration(expiry, &ms) == 0)
                sp.exp = (now + ms) / 1000;
            if (kv_new_version(&kc, name, &sp, version, NULL, &err))
                LOG_WARN("rotating %s/%s failed: %s", vault, name, err.message);
            else
                LOG_INFO("rotated %s/%s by its policy: new version %s", vault, name, version);
            sp.kty = NULL;
            kv_spec_release(&sp);
        }
        kv_version_release(&v);
        json_decref(pol);
    }
    json_decref(rows);
}

/* ---- backup and restore: an opaque blob sealed under the master key ----------------------- */

#define KV_BACKUP_AAD "pgcmk-key-backup-v1"

static int
kv_backup(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct pgcmk_db *db;
    struct kv_ctx kc;
    struct kv_key k;
    sqlite3_stmt *st;
    json_t *versions = NULL, *doc;
    char *text = NULL, *b64;
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    int rc = -1, found;

    if (kv_admit(rq, rs, "backup", &kc, err))
        goto out;
    db = pgcmk_db();
    found = kv_key_load(db, kc.vault, pgcmk_req_param(rq, "name"), &k, err);
    if (found != 1 || k.deleted) {
        if (found >= 0)
            kv_not_found(pgcmk_req_param(rq, "name"), NULL, err);
        goto out;
    }
    versions = json_array();
    st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_LIST);
    sqlite3_bind_text(st, 1, kc.vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k.name, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct kv_version v;
        char id[200], aad[210];
        unsigned char *pem = NULL;
        size_t pem_len = 0;

        kv_version_from_row(st, &v);
        snprintf(id, sizeof(id), "%s/%s/%s", kc.vault, k.name, v.version);
        pgcmk_lower(id, sizeof(id), id);
        snprintf(aad, sizeof(aad), "kv:%.190s", id);
        if (pgcmk_store_unseal(v.priv, v.priv_len, aad, &pem, &pem_len) == 0) {
            json_array_append_new(
                versions,
                json_pack("{s:s, s:s, s:O, s:b, s:I, s:I, s:I, s:I, s:O, s:O, s:s%}", "version",
                          v.version, "kty", v.kty, "key_ops", v.key_ops, "enabled", v.enabled,
                          "nbf", (json_int_t)v.nbf, "exp", (json_int_t)v.exp, "created",
                          (json_int_t)v.created, "updated", (json_int_t)v.updated, "tags", v.tags,
                          "jwk", v.jwk, "pem", pem, pem_len));
            pgcmk_secret_free(pem, pem_len);
        }
        kv_version_release(&v);
    }
    pgcmk_db_done(st);
    doc = json_pack("{s:s, s:s, s:o}", "name", k.name, "current", k.current, "versions", versions);
    versions = NULL;
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL || pgcmk_store_seal(text, strlen(text), KV_BACKUP_AAD, &sealed, &sealed_len)) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "the backup could not be sealed");
        goto out;
    }
    b64 = pgcmk_b64url_encode(sealed, sealed_len);
    pgcmk_resp_json(rs, 200, json_pack("{s:s}", "value", b64));
    free(b64);
    rc = 0;
out:
    if (text)
        pgcmk_secret_free(text, strlen(text));
    free(sealed);
    json_decref(versions);
    kv_ctx_release(&kc);
    return rc;
}

struct kv_restore {
    struct kv_ctx *kc;
    json_t *doc;
};

static int
kv_restore_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kv_restore *r = ctx;
    const char *name = json_string_value(json_object_get(r->doc, "name"));
    struct kv_key k;
    sqlite3_stmt *st;
    json_t *v;
    size_t i;
    int rc = kv_key_load(db, r->kc->vault, name, &k, err);

    pgcmk_vault_invalidate(); /* see the caches: before COMMIT, under the writer lock */
    if (rc < 0)
        return -1;
    if (rc == 1)
        return pgcmk_err_set(err, PGCMK_E_KV_CONFLICT, NULL,
                             "Key %.127s already exists in vault '%s'; restore needs a free name "
                             "(delete and purge it first).",
                             name, r->kc->vault);
    st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_INSERT);
    sqlite3_bind_text(st, 1, r->kc->vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, json_string_value(json_object_get(r->doc, "current")), -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, pgcmk_clock_now());
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    if (rc != SQLITE_DONE)
        return pgcmk_db_fail(db, rc, "restore key", err);
    json_array_foreach(json_object_get(r->doc, "versions"), i, v) {
        const char *ver = json_string_value(json_object_get(v, "version"));
        const char *pem = json_string_value(json_object_get(v, "pem"));
        char id[200], aad[210], *ops, *tags, *jwk;
        unsigned char *sealed = NULL;
        size_t sealed_len = 0;

        if (ver == NULL || pem == NULL)
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL, "The backup is damaged.");
        snprintf(id, sizeof(id), "%s/%s/%s", r->kc->vault, name, ver);
        pgcmk_lower(id, sizeof(id), id);
        snprintf(aad, sizeof(aad), "kv:%.190s", id);
        if (pgcmk_store_seal(pem, strlen(pem), aad, &sealed, &sealed_len))
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "sealing failed");
        ops = json_dumps(json_object_get(v, "key_ops"), JSON_COMPACT);
        tags = json_dumps(json_object_get(v, "tags"), JSON_COMPACT);
        jwk = json_dumps(json_object_get(v, "jwk"), JSON_COMPACT);
        st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_INSERT);
        sqlite3_bind_text(st, 1, r->kc->vault, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, ver, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, json_string_value(json_object_get(v, "kty")), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, ops, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, json_is_true(json_object_get(v, "enabled")));
        if (json_integer_value(json_object_get(v, "nbf")))
            sqlite3_bind_int64(st, 7, json_integer_value(json_object_get(v, "nbf")));
        if (json_integer_value(json_object_get(v, "exp")))
            sqlite3_bind_int64(st, 8, json_integer_value(json_object_get(v, "exp")));
        sqlite3_bind_int64(st, 9, json_integer_value(json_object_get(v, "created")));
        sqlite3_bind_text(st, 10, tags, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 11, jwk, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 12, sealed, (int)sealed_len, SQLITE_STATIC);
        rc = sqlite3_step(st);
        pgcmk_db_done(st);
        free(ops);
        free(tags);
        free(jwk);
        free(sealed);
        if (rc != SQLITE_DONE)
            return pgcmk_db_fail(db, rc, "restore key version", err);
    }
    return 0;
}

static int
kv_restore(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx kc;
    struct kv_restore r = {&kc, NULL};
    const char *value;
    unsigned char *sealed = NULL, *text = NULL;
    size_t sealed_len = 0, text_len = 0;
    int rc = -1;

    if (kv_admit(rq, rs, "restore", &kc, err) || kv_body(rq, err))
        goto out;
    value = json_string_value(json_object_get(rq->json, "value"));
    if (value == NULL || pgcmk_b64url_decode(value, strlen(value), &sealed, &sealed_len) ||
        pgcmk_store_unseal(sealed, sealed_len, KV_BACKUP_AAD, &text, &text_len) ||
        (r.doc = json_loadb((const char *)text, text_len, 0, NULL)) == NULL) {
        pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                      "Backup blob contains invalid or corrupt version.");
        goto out;
    }
    if (pgcmk_db_tx(pgcmk_db(), kv_restore_tx, &r, err))
        goto out;
    rc = kv_respond_version(rs, &kc, kc.vault, json_string_value(json_object_get(r.doc, "name")),
                            json_string_value(json_object_get(r.doc, "current")), err);
out:
    if (text)
        pgcmk_secret_free(text, text_len);
    free(sealed);
    json_decref(r.doc);
    kv_ctx_release(&kc);
    return rc;
}

/* ---- scheduled purge and vault purge ---------------------------------------------------- */

static int
kv_purge_due_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    json_t *due = ctx, *d;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_DUE);
    size_t i;

    sqlite3_bind_int64(st, 1, pgcmk_clock_now());
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(
            due, json_pack("[s, s]", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1)));
    pgcmk_db_done(st);
    json_array_foreach(due, i, d) {
        struct kv_ctx kc;
        struct kv_state s;

        memset(&kc, 0, sizeof(kc));
        snprintf(kc.vault, sizeof(kc.vault), "%s", json_string_value(json_array_get(d, 0)));
        s = (struct kv_state){&kc, json_string_value(json_array_get(d, 1)), 0, 0, 1};
        if (kv_state_tx(db, &s, err))
            return -1;
    }
    return 0;
}

static _Atomic int64_t kv_last_tick;

/* Current key versions whose exp fell between the last tick and now: KeyExpired events. */
static void
kv_expiry_events(int64_t now)
{
    int64_t last = atomic_exchange(&kv_last_tick, now);
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st;
    json_t *hits = json_array(), *h;
    size_t i;

    if (last == 0 || now <= last) {
        json_decref(hits);
        return;
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_EXPIRED_BETWEEN);
    sqlite3_bind_int64(st, 1, last);
    sqlite3_bind_int64(st, 2, now);
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(hits,
                              json_pack("[s, s, s]", sqlite3_column_text(st, 0),
                                        sqlite3_column_text(st, 1), sqlite3_column_text(st, 2)));
    pgcmk_db_done(st);
    json_array_foreach(hits, i, h) {
        struct pgcmk_event ev = {PGCMK_EV_KEY_EXPIRED,
                                 json_string_value(json_array_get(h, 0)),
                                 json_string_value(json_array_get(h, 1)),
                                 json_string_value(json_array_get(h, 2)),
                                 NULL,
                                 NULL};

        pgcmk_events_publish(&ev);
    }
    json_decref(hits);
}

static void
kv_on_clock(int64_t now, void *arg)
{
    json_t *due = json_array(), *d;
    struct pgcmk_err err;
    size_t i;

    PGCMK_UNUSED(arg);
    kv_expiry_events(now);
    kv_rotate_due();
    if (pgcmk_db_tx(pgcmk_db(), kv_purge_due_tx, due, &err) == 0) {
        json_array_foreach(due, i, d) {
            struct pgcmk_event ev = {PGCMK_EV_KEY_PURGED,
                                     json_string_value(json_array_get(d, 0)),
                                     json_string_value(json_array_get(d, 1)),
                                     NULL,
                                     NULL,
                                     NULL};

            pgcmk_events_publish(&ev);
        }
    }
    json_decref(due);
}

static int
kv_purge_vault_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_PURGE_VAULT);
    int rc;

    pgcmk_vault_invalidate(); /* see the caches: before COMMIT, under the writer lock */
    sqlite3_bind_text(st, 1, ctx, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    if (rc != SQLITE_DONE)
        return pgcmk_db_fail(db, rc, "purge vault key versions", err);
    st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_PURGE_VAULT);
    sqlite3_bind_text(st, 1, ctx, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "purge vault keys", err);
}

/* A purged vault takes its keys with it. */
static void
kv_on_event(const struct pgcmk_event *ev, void *arg)
{
    struct pgcmk_err err;

    PGCMK_UNUSED(arg);
    if (ev->kind == PGCMK_EV_VAULT_PURGED && ev->vault &&
        pgcmk_db_tx(pgcmk_db(), kv_purge_vault_tx, (void *)ev->vault, &err))
        LOG_WARN("could not purge the keys of vault %s: %s", ev->vault, err.message);
}

/* ---- for the ARM provider of Microsoft.KeyVault/vaults/keys (src/providers/keyvault_keys.c) ----
 */

/* A data-plane context for a vault given by its ARM body (no caller: ARM already checked). */
static int
kv_ctx_from_body(const json_t *vault_body, struct kv_ctx *kc, struct pgcmk_err *err)
{
    const char *name = json_string_value(json_object_get(vault_body, "name"));
    json_t *props = json_object_get(vault_body, "properties");

    memset(kc, 0, sizeof(*kc));
    if (!name)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "a stored vault has no name");
    pgcmk_lower(kc->vault, sizeof(kc->vault), name);
    kc->vault_body = json_incref((json_t *)vault_body);
    kc->purge_protection = json_is_true(json_object_get(props, "enablePurgeProtection"));
    kc->retention_days =
        (int)json_integer_value(json_object_get(props, "softDeleteRetentionInDays"));
    if (kc->retention_days <= 0)
        kc->retention_days = 90;
    return 0;
}

int
pgcmk_vault_key_get(const json_t *vault_body, const char *name, const char *version,
                    json_t **bundle, struct pgcmk_err *err)
{
    struct kv_ctx kc;
    struct kv_key k;
    struct kv_version v;
    int rc;

    *bundle = NULL;
    memset(&v, 0, sizeof(v));
    if (kv_ctx_from_body(vault_body, &kc, err))
        return -1;
    rc = kv_key_load(pgcmk_db(), kc.vault, name, &k, err);
    if (rc == 1 && k.deleted)
        rc = 0;
    if (rc == 1)
        rc = kv_version_load(pgcmk_db(), kc.vault, k.name, version ? version : k.current, &v, err);
    if (rc == 1)
        *bundle = kv_bundle(&kc, k.name, &v);
    kv_version_release(&v);
    kv_ctx_release(&kc);
    return rc;
}

int
pgcmk_vault_key_list(const json_t *vault_body, const char *name, json_t **bundles,
                     struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    struct kv_ctx kc;
    struct kv_key k;
    sqlite3_stmt *st;
    int rc = 1;

    *bundles = NULL;
    if (kv_ctx_from_body(vault_body, &kc, err))
        return -1;
    *bundles = json_array();
    if (name) { /* versions of one key */
        rc = kv_key_load(db, kc.vault, name, &k, err);
        if (rc == 1 && k.deleted)
            rc = 0;
        if (rc == 1) {
            st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_LIST);
            sqlite3_bind_text(st, 1, kc.vault, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, k.name, -1, SQLITE_STATIC);
            while (sqlite3_step(st) == SQLITE_ROW) {
                struct kv_version v;

                kv_version_from_row(st, &v);
                json_array_append_new(*bundles, kv_bundle(&kc, k.name, &v));
                kv_version_release(&v);
            }
            pgcmk_db_done(st);
        }
    } else {
        json_t *names = json_array(), *n;
        size_t i;

        st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_LIST);
        sqlite3_bind_text(st, 1, kc.vault, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, 1);
        while (sqlite3_step(st) == SQLITE_ROW)
            json_array_append_new(
                names, json_pack("[s, s]", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1)));
        pgcmk_db_done(st);
        json_array_foreach(names, i, n) {
            struct kv_version v;
            const char *kn = json_string_value(json_array_get(n, 0));

            if (kv_version_load(db, kc.vault, kn, json_string_value(json_array_get(n, 1)), &v,
                                err) == 1) {
                json_array_append_new(*bundles, kv_bundle(&kc, kn, &v));
                kv_version_release(&v);
            }
        }
        json_decref(names);
    }
    if (rc != 1) {
        json_decref(*bundles);
        *bundles = NULL;
    }
    kv_ctx_release(&kc);
    return rc;
}

int
pgcmk_vault_key_create_if_absent(const json_t *vault_body, const char *name, const json_t *arm_body,
                                 json_t **bundle, int *created, struct pgcmk_err *err)
{
    struct kv_ctx kc;
    struct kv_key k;
    struct kv_spec sp;
    char version[33];
    int rc = -1, found;

    *bundle = NULL;
    *created = 0;
    memset(&sp, 0, sizeof(sp));
    if (kv_ctx_from_body(vault_body, &kc, err))
        return -1;
    if (kv_check_name(name, err)) {
        err->code = PGCMK_E_INVALID_RESOURCE_NAME;
        goto out;
    }
    found = kv_key_load(pgcmk_db(), kc.vault, name, &k, err);
    if (found < 0)
        goto out;
    if (found && k.deleted) {
        pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL,
                      "Key %.127s is currently in a deleted but recoverable state, and its name "
                      "cannot be reused; in this state, the key can only be recovered or purged.",
                      name);
        goto out;
    }
    if (!found) {
        if (kv_spec_parse(&kc, (json_t *)arm_body, 1, &sp, err)) {
            err->code = PGCMK_E_BAD_REQUEST;
            goto out;
        }
        if (kv_new_version(&kc, name, &sp, version, NULL, err))
            goto out;
        *created = 1;
    }
    rc = pgcmk_vault_key_get(vault_body, name, NULL, bundle, err) == 1 ? 0 : -1;
    if (rc && err->code == PGCMK_E_OK)
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "The key '%.127s' vanished.", name);
out:
    kv_spec_release(&sp);
    kv_ctx_release(&kc);
    return rc;
}

#define KVF (ROUTE_F_NOAUTH | ROUTE_F_ANYBODY)
#define KVQ "maxresults,$skiptoken"
static const struct pgcmk_route kv_routes[] = {
    {"POST", "/keys/{name}/create", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL, kv_create},
    {"POST", "/keys/{name}/rotate", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL, kv_rotate},
    {"PUT", "/keys/{name}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL, kv_import},
    {"POST", "/keys/{name}/backup", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL, kv_backup},
    {"POST", "/keys/restore", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL, kv_restore},
    {"GET", "/keys/{name}/rotationpolicy", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL,
     kv_policy_get},
    {"PUT", "/keys/{name}/rotationpolicy", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL,
     kv_policy_set},
    {"GET", "/keys", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, KVQ, kv_list},
    {"GET", "/keys/{name}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL, kv_get},
    {"GET", "/keys/{name}/versions", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, KVQ, kv_versions},
    {"GET", "/keys/{name}/{version}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL, kv_get},
    {"PATCH", "/keys/{name}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL, kv_update},
    {"PATCH", "/keys/{name}/{version}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL, kv_update},
    {"DELETE", "/keys/{name}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL, kv_delete},
    {"GET", "/deletedkeys", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, KVQ, kv_list_deleted},
    {"GET", "/deletedkeys/{name}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL, kv_get_deleted},
    {"POST", "/deletedkeys/{name}/recover", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL,
     kv_recover},
    {"DELETE", "/deletedkeys/{name}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL, kv_purge},
    {"POST", "/keys/{name}/{version}/{op}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL,
     kv_crypto},
    {"POST", "/keys/{name}/{op}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, KVF, NULL, kv_crypto},
};

/* Kept for its callers; the one parser is pgcmk_keyuri_parse (keyuri.h). */
int
pgcmk_vault_parse_key_uri(const char *uri, char vault[32], char name[128], char version[40])
{
    struct pgcmk_keyuri ku;

    vault[0] = name[0] = version[0] = '\0';
    if (pgcmk_keyuri_parse(uri, &ku, NULL))
        return -1;
    snprintf(vault, 32, "%s", ku.vault);
    snprintf(name, 128, "%s", ku.name);
    snprintf(version, 40, "%s", ku.version);
    return 0;
}

void
pgcmk_vault_init(void)
{
    if (pthread_key_create(&kv_tcache_key, kv_tcache_free) != 0)
        PGCMK_BUG("no thread key for the vault cache");
    pgcmk_vault_invalidate(); /* a new store: nothing cached before counts */
    kv_last_tick = pgcmk_clock_now();
    pgcmk_router_add(kv_routes, PGCMK_ARRAY_LEN(kv_routes));
    if (pgcmk_clock_listen(kv_on_clock, NULL) || pgcmk_events_subscribe(kv_on_event, NULL))
        LOG_WARN("no room for the key vault listeners");
}

void
pgcmk_vault_shutdown(void)
{
    pgcmk_vault_invalidate();
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
