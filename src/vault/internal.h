/* internal.h - what the Key Vault data plane's files share and nobody else sees.
 *
 * admission.c   the api-version, the bearer challenge, the token, the vault, its access policies
 * cache.c       the generation, each thread's vault and key versions, the parsed-key cache
 * keys.c        stored keys, bundles, the key handlers (create, import, get, list, update, delete,
 *               recover, purge), the route table and the ARM keys routes
 * crypto_ops.c  encrypt, decrypt, wrapKey, unwrapKey, sign, verify
 * lifecycle.c   rotation (on demand and by policy), expiry events, scheduled purge, vault purge
 * backup.c      backup and restore */
#ifndef PGCMK_VAULT_INTERNAL_H
#define PGCMK_VAULT_INTERNAL_H

#include <stdint.h>
#include <jansson.h>
#include <sqlite3.h>

#include "pgcmk/auth.h"
#include "pgcmk/http.h"
#include "pgcmk/store.h"

#define DAY_MS         (86400LL * 1000)
#define KV_MAX_RESULTS 25

/* What every data-plane handler knows once the caller is admitted. */
struct kv_ctx {
    char vault[32];
    json_t *vault_body; /* the ARM resource of the vault */
    struct pgcmk_caller who;
    int purge_protection;
    int retention_days;
};

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

#define KV_TKEYS 16

/* One entry of a thread's key-version cache (cache.c). */
struct kv_tkey {
    char vault[32], name[128], asked[40]; /* lower case; asked "" = the current version */
    unsigned long long gen;               /* 0 = empty */
    struct kv_key k;
    struct kv_version v;
    struct pgcmk_pkey *pk; /* from kv_cache (lives until shutdown); NULL until a crypto op */
};

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

/* A change of a key's state: deleted (deleted_at, purge_at), recovered (0, 0) or purged. */
struct kv_state {
    struct kv_ctx *kc;
    const char *name;
    int64_t deleted_at, purge_at; /* 0,0 = recover */
    int purge;
};

/* admission.c */
void kv_headers(struct pgcmk_resp *rs);
int kv_check_version(struct pgcmk_req *rq, struct pgcmk_err *err);
int kv_admit(struct pgcmk_req *rq, struct pgcmk_resp *rs, const char *perm, struct kv_ctx *kc,
             struct pgcmk_err *err);
int kv_body(struct pgcmk_req *rq, struct pgcmk_err *err);
int kv_admit_route(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err);

/* cache.c */
void kv_cache_init(void);
void kv_cache_shutdown(void);
int kv_vault_get(const char *name, json_t **body, struct pgcmk_err *err);
void kv_version_copy(struct kv_version *dst, const struct kv_version *src);
int kv_resolve_ex(struct kv_ctx *kc, const char *name, const char *version, struct kv_key *k,
                  struct kv_version *v, struct kv_tkey **entry, struct pgcmk_err *err);
int kv_resolve(struct kv_ctx *kc, const char *name, const char *version, struct kv_key *k,
               struct kv_version *v, struct pgcmk_err *err);
struct pgcmk_pkey *kv_pkey(const struct kv_ctx *kc, const char *name, const struct kv_version *v,
                           int *owned);

/* keys.c */
void kv_ctx_release(struct kv_ctx *kc);
char *kv_base(const char *vault);
void kv_version_release(struct kv_version *v);
int kv_key_load(struct pgcmk_db *db, const char *vault, const char *name, struct kv_key *k,
                struct pgcmk_err *err);
void kv_version_from_row(sqlite3_stmt *st, struct kv_version *v);
int kv_version_load(struct pgcmk_db *db, const char *vault, const char *name, const char *version,
                    struct kv_version *v, struct pgcmk_err *err);
int kv_not_found(const char *name, const char *version, struct pgcmk_err *err);
const char *kv_recovery_level(const struct kv_ctx *kc);
json_t *kv_attributes(const struct kv_ctx *kc, const struct kv_version *v);
json_t *kv_bundle(const struct kv_ctx *kc, const char *name, const struct kv_version *v);
json_t *kv_deleted_bundle(const struct kv_ctx *kc, const struct kv_key *k, json_t *bundle);
int kv_check_name(const char *name, struct pgcmk_err *err);
int kv_parse_ops(json_t *ops, int ec, json_t **out, struct pgcmk_err *err);
int kv_parse_attrs(json_t *attrs, int *enabled, int64_t *nbf, int64_t *exp, struct pgcmk_err *err);
int kv_respond_version(struct pgcmk_resp *rs, struct kv_ctx *kc, const char *vault,
                       const char *name, const char *version, struct pgcmk_err *err);
void kv_spec_release(struct kv_spec *sp);
int kv_new_version(struct kv_ctx *kc, const char *name, struct kv_spec *sp, char *version_out,
                   int *created_key, struct pgcmk_err *err);
int kv_spec_parse(struct kv_ctx *kc, json_t *body, int arm, struct kv_spec *sp,
                  struct pgcmk_err *err);
int kv_state_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err);

/* crypto_ops.c */
int kv_crypto(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err);
int kv_crypto_unknown(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err);

/* lifecycle.c */
void kv_lifecycle_init(void);
int kv_rotate(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err);
int kv_policy_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err);
int kv_policy_set(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err);

/* backup.c */
int kv_backup(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err);
int kv_restore(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err);

#endif
