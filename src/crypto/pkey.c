/* pkey.c - RSA keys through EVP: generation, PEM, JWK, RS256 JWTs. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "pgcmk/crypto.h"
#include "pgcmk/pkey.h"

struct pgcmk_pkey {
    EVP_PKEY *pk;
};

/* RSA-2048 keys generated ahead of use by one background thread (a few at a time): key creation
 * is the slow step of a vault key create (~50-200 ms of CPU), and a real HSM does the same. The
 * pool starts filling at the first request for a key (or pgcmk_pkey_rsa_prefill) and is refilled
 * as keys are taken. Pooled keys are ordinary fresh keys: nothing is reused. */
#define RSA_POOL_SIZE 8

static pthread_mutex_t rsa_pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rsa_pool_cv = PTHREAD_COND_INITIALIZER;
static EVP_PKEY *rsa_pool[RSA_POOL_SIZE];
static int rsa_pool_n, rsa_pool_started, rsa_pool_stopping;
static pthread_t rsa_pool_thread;
static int rsa_pool_atexit;

static void *
rsa_pool_main(void *arg)
{
    (void)arg;
    for (;;) {
        EVP_PKEY *pk;

        pthread_mutex_lock(&rsa_pool_mu);
        while (rsa_pool_n == RSA_POOL_SIZE && !rsa_pool_stopping)
            pthread_cond_wait(&rsa_pool_cv, &rsa_pool_mu);
        if (rsa_pool_stopping) {
            pthread_mutex_unlock(&rsa_pool_mu);
            break;
        }
        pthread_mutex_unlock(&rsa_pool_mu);
        pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        pthread_mutex_lock(&rsa_pool_mu);
        if (pk && rsa_pool_n < RSA_POOL_SIZE)
            rsa_pool[rsa_pool_n++] = pk;
        else
            EVP_PKEY_free(pk);
        pthread_mutex_unlock(&rsa_pool_mu);
    }
    return NULL;
}

void
pgcmk_pkey_rsa_prefill(void)
{
    pthread_mutex_lock(&rsa_pool_mu);
    if (!rsa_pool_started && !rsa_pool_stopping) {
        rsa_pool_started = 1;
        if (pthread_create(&rsa_pool_thread, NULL, rsa_pool_main, NULL) != 0)
            rsa_pool_started = 0;
        else if (!rsa_pool_atexit++)
            atexit(pgcmk_pkey_rsa_pool_stop); /* before OpenSSL's own clean-up (LIFO) */
    }
    pthread_mutex_unlock(&rsa_pool_mu);
}

void
pgcmk_pkey_rsa_pool_stop(void)
{
    int started;

    pthread_mutex_lock(&rsa_pool_mu);
    rsa_pool_stopping = 1;
    started = rsa_pool_started;
    rsa_pool_started = 0;
    pthread_cond_broadcast(&rsa_pool_cv);
    pthread_mutex_unlock(&rsa_pool_mu);
    if (started)
        pthread_join(rsa_pool_thread, NULL); /* at most one key generation away */
    pthread_mutex_lock(&rsa_pool_mu);
    while (rsa_pool_n > 0) {
        EVP_PKEY_free(rsa_pool[--rsa_pool_n]);
        rsa_pool[rsa_pool_n] = NULL;
    }
    pthread_mutex_unlock(&rsa_pool_mu);
}

static EVP_PKEY *
rsa_pool_take(void)
{
    EVP_PKEY *pk = NULL;

    pgcmk_pkey_rsa_prefill();
    pthread_mutex_lock(&rsa_pool_mu);
    if (rsa_pool_n > 0) {
        pk = rsa_pool[--rsa_pool_n];
        rsa_pool[rsa_pool_n] = NULL;
        pthread_cond_signal(&rsa_pool_cv);
    }
    pthread_mutex_unlock(&rsa_pool_mu);
    return pk;
}

int
pgcmk_pkey_rsa_new(int bits, struct pgcmk_pkey **out)
{
    EVP_PKEY *pk;

    *out = NULL;
    if (bits != 2048 && bits != 3072 && bits != 4096)
        return -1;
    pk = bits == 2048 ? rsa_pool_take() : NULL;
    if (pk == NULL)
        pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    if (pk == NULL)
        return -1;
    *out = pgcmk_xcalloc(1, sizeof(**out));
    (*out)->pk = pk;
    return 0;
}

static const struct {
    const char *jwk, *group, *alg;
    size_t size, digest;
} ec_curves[] = {{"P-256", "P-256", "ES256", 32, 32},
                 {"P-384", "P-384", "ES384", 48, 48},
                 {"P-521", "P-521", "ES512", 66, 64}};

int
pgcmk_pkey_ec_new(const char *crv, struct pgcmk_pkey **out)
{
    *out = NULL;
    for (size_t i = 0; crv && i < PGCMK_ARRAY_LEN(ec_curves); i++) {
        if (strcmp(crv, ec_curves[i].jwk) == 0) {
            EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", ec_curves[i].group);

            if (pk == NULL)
                return -1;
            *out = pgcmk_xcalloc(1, sizeof(**out));
            (*out)->pk = pk;
            return 0;
        }
    }
    return -1;
}

int
pgcmk_pkey_is_ec(const struct pgcmk_pkey *k)
{
    return EVP_PKEY_get_base_id(k->pk) == EVP_PKEY_EC;
}

/* The curve of an EC key, as an index into ec_curves, or -1. */
static int
pkey_curve(const struct pgcmk_pkey *k)
{
    int bits = EVP_PKEY_get_bits(k->pk);

    if (!pgcmk_pkey_is_ec(k))
        return -1;
    return bits == 256 ? 0 : bits == 384 ? 1 : bits == 521 ? 2 : -1;
}

char *
pgcmk_pkey_private_pem(const struct pgcmk_pkey *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long n;

    if (b == NULL)
        return NULL;
    if (PEM_write_bio_PrivateKey(b, k->pk, NULL, NULL, 0, NULL, NULL) == 1) {
        n = BIO_get_mem_data(b, &data);
        if (n > 0)
            out = pgcmk_xstrndup(data, (size_t)n);
    }
    BIO_free_all(b); /* a mem BIO frees its buffer; the copy is ours */
    return out;
}

int
pgcmk_pkey_from_pem(const char *pem, size_t len, struct pgcmk_pkey **out)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pk;

    *out = NULL;
    if (b == NULL)
        return -1;
    pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    if (pk == NULL) {
        BIO_free(b);
        b = BIO_new_mem_buf(pem, (int)len);
        pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    }
    BIO_free(b);
    if (pk == NULL)
        return -1;
    *out = pgcmk_xcalloc(1, sizeof(**out));
    (*out)->pk = pk;
    return 0;
}

static int
pkey_password_cb(char *buf, int size, int rwflag, void *u)
{
    const char *pw = u;
    int n = pw ? (int)strlen(pw) : 0;

    (void)rwflag;
    if (n > size)
        n = size;
    if (n)
        memcpy(buf, pw, (size_t)n);
    return n;
}

int
pgcmk_pkey_from_pem_password(const char *pem, size_t len, const char *password,
                             struct pgcmk_pkey **out)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pk = b ? PEM_read_bio_PrivateKey(b, NULL, pkey_password_cb, (void *)password) : NULL;

    BIO_free(b);
    *out = NULL;
    if (pk == NULL)
        return -1;
    *out = pgcmk_xcalloc(1, sizeof(**out));
    (*out)->pk = pk;
    return 0;
}

int
pgcmk_pkey_from_pfx(const unsigned char *der, size_t len, const char *password,
                    struct pgcmk_pkey **out)
{
    const unsigned char *p = der;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    EVP_PKEY *pk = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *ca = NULL;
    int ok = p12 && PKCS12_parse(p12, password ? password : "", &pk, &cert, &ca) == 1 && pk;

    X509_free(cert);
    sk_X509_pop_free(ca, X509_free);
    PKCS12_free(p12);
    *out = NULL;
    if (!ok) {
        EVP_PKEY_free(pk);
        return -1;
    }
    *out = pgcmk_xcalloc(1, sizeof(**out));
    (*out)->pk = pk;
    return 0;
}

static BIGNUM *
jwk_bn(const json_t *jwk, const char *name)
{
    const char *v = json_string_value(json_object_get(jwk, name));
    unsigned char *raw = NULL;
    size_t n = 0;
    BIGNUM *bn;

    if (v == NULL || pgcmk_b64url_decode(v, strlen(v), &raw, &n) || n == 0) {
        free(raw);
        return NULL;
    }
    bn = BN_bin2bn(raw, (int)n, NULL);
    pgcmk_secret_free(raw, n);
    return bn;
}

int
pgcmk_pkey_from_jwk(const json_t *jwk, struct pgcmk_pkey **out)
{
    static const struct {
        const char *jwk, *param;
    } parts[] = {{"n", OSSL_PKEY_PARAM_RSA_N},          {"e", OSSL_PKEY_PARAM_RSA_E},
                 {"d", OSSL_PKEY_PARAM_RSA_D},          {"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
                 {"q", OSSL_PKEY_PARAM_RSA_FACTOR2},    {"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},
                 {"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2}, {"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1}};

    BIGNUM *bn[8] = {0};
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    int ok = bld != NULL;

    *out = NULL;
    for (size_t i = 0; ok && i < PGCMK_ARRAY_LEN(parts); i++) {
        bn[i] = jwk_bn(jwk, parts[i].jwk);
        ok = bn[i] && OSSL_PARAM_BLD_push_BN(bld, parts[i].param, bn[i]) == 1;
    }
    if (ok) {
        params = OSSL_PARAM_BLD_to_param(bld);
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        ok = params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
             EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_KEYPAIR, params) == 1;
    }
    if (ok) {
        /* Refuse inconsistent parts (a private key that does not match n). */
        EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);

        ok = chk && EVP_PKEY_pairwise_check(chk) == 1;
        EVP_PKEY_CTX_free(chk);
    }
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(parts); i++)
        BN_clear_free(bn[i]);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        EVP_PKEY_free(pk);
        return -1;
    }
    *out = pgcmk_xcalloc(1, sizeof(**out));
    (*out)->pk = pk;
    return 0;
}

void
pgcmk_pkey_free(struct pgcmk_pkey *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pk);
    free(k);
}

int
pgcmk_pkey_bits(const struct pgcmk_pkey *k)
{
    return EVP_PKEY_get_bits(k->pk);
}

static char *
pkey_bn_b64(const struct pgcmk_pkey *k, const char *param)
{
    BIGNUM *bn = NULL;
    unsigned char *buf;
    char *out;
    int n;

    if (EVP_PKEY_get_bn_param(k->pk, param, &bn) != 1)
        return NULL;
    n = BN_num_bytes(bn);
    buf = pgcmk_xmalloc((size_t)n + 1);
    BN_bn2bin(bn, buf);
    out = pgcmk_b64url_encode(buf, (size_t)n);
    free(buf);
    BN_free(bn);
    return out;
}

/* An EC coordinate, left-padded to the field size, in base64url. */
static char *
pkey_coord_b64(const struct pgcmk_pkey *k, const char *param, size_t size)
{
    BIGNUM *bn = NULL;
    unsigned char buf[80];
    char *out = NULL;

    if (size <= sizeof(buf) && EVP_PKEY_get_bn_param(k->pk, param, &bn) == 1 &&
        BN_bn2binpad(bn, buf, (int)size) == (int)size)
        out = pgcmk_b64url_encode(buf, size);
    BN_free(bn);
    return out;
}

json_t *
pgcmk_pkey_public_jwk(const struct pgcmk_pkey *k, const char *kid)
{
    char *n, *e;
    json_t *jwk = NULL;
    int c = pkey_curve(k);

    if (c >= 0) {
        char *x = pkey_coord_b64(k, OSSL_PKEY_PARAM_EC_PUB_X, ec_curves[c].size);
        char *y = pkey_coord_b64(k, OSSL_PKEY_PARAM_EC_PUB_Y, ec_curves[c].size);

        if (x && y)
            jwk = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", ec_curves[c].jwk, "x", x,
                            "y", y);
        free(x);
        free(y);
        return jwk;
    }
    n = pkey_bn_b64(k, OSSL_PKEY_PARAM_RSA_N);
    e = pkey_bn_b64(k, OSSL_PKEY_PARAM_RSA_E);

    if (n && e) {
        jwk = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", n, "e", e);
        if (jwk && kid)
            json_object_update_new(
                jwk, json_pack("{s:s, s:s, s:s}", "kid", kid, "use", "sig", "alg", "RS256"));
    }
    free(n);
    free(e);
    return jwk;
}

char *
pgcmk_pkey_thumbprint(const struct pgcmk_pkey *k)
{
    char *n = pkey_bn_b64(k, OSSL_PKEY_PARAM_RSA_N), *e = pkey_bn_b64(k, OSSL_PKEY_PARAM_RSA_E);
    char *canon, *out = NULL;
    unsigned char md[32];

    if (n && e) {
        canon = pgcmk_xasprintf("{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", e, n);
        pgcmk_sha256(canon, strlen(canon), md);
        out = pgcmk_b64url_encode(md, sizeof(md));
        free(canon);
    }
    free(n);
    free(e);
    return out;
}

int
pgcmk_pkey_has_private(const struct pgcmk_pkey *k)
{
    BIGNUM *d = NULL;
    int has = EVP_PKEY_get_bn_param(k->pk, OSSL_PKEY_PARAM_RSA_D, &d) == 1;

    BN_clear_free(d);
    return has;
}

static const struct {
    const char *name;
    int padding;
    const char *md; /* OAEP digest and MGF1 digest */
} crypt_algs[] = {{"RSA1_5", RSA_PKCS1_PADDING, NULL},
                  {"RSA-OAEP", RSA_PKCS1_OAEP_PADDING, "SHA1"},
                  {"RSA-OAEP-256", RSA_PKCS1_OAEP_PADDING, "SHA256"}};

static int
crypt_alg(const char *alg)
{
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(crypt_algs); i++)
        if (alg && strcmp(alg, crypt_algs[i].name) == 0)
            return (int)i;
    return -1;
}

int
pgcmk_pkey_crypt_alg_ok(const char *alg)
{
    return crypt_alg(alg) >= 0;
}

static EVP_PKEY_CTX *
crypt_ctx(const struct pgcmk_pkey *k, int a, int decrypt)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k->pk, NULL);

    if (c == NULL)
        return NULL;
    if ((decrypt ? EVP_PKEY_decrypt_init(c) : EVP_PKEY_encrypt_init(c)) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(c, crypt_algs[a].padding) != 1 ||
        (crypt_algs[a].md && (EVP_PKEY_CTX_set_rsa_oaep_md_name(c, crypt_algs[a].md, NULL) != 1 ||
                              EVP_PKEY_CTX_set_rsa_mgf1_md_name(c, crypt_algs[a].md, NULL) != 1))) {
        EVP_PKEY_CTX_free(c);
        return NULL;
    }
    return c;
}

/* Each thread keeps its last few encrypt/decrypt contexts, set up once (padding, OAEP and MGF1
 * digests) and reused: OpenSSL allows any number of EVP_PKEY_encrypt/decrypt calls on a context
 * after one *_init, and a context is never shared between threads. A decrypt context works on
 * the thread's own copy of the key (EVP_PKEY_dup), so threads do not share the RSA blinding
 * state (DESIGN.md 9). An entry holds a reference to the caller's EVP_PKEY as well: while the
 * entry lives, that address cannot be freed and reused by another key, so the pointer is a safe
 * cache key. A failed operation drops its entry. */
#define PKEY_TCTX 8

struct pkey_tctx {
    EVP_PKEY *key; /* the caller's key (a reference), the cache key with alg and direction */
    EVP_PKEY_CTX *c;
    int alg, decrypt;
};

struct pkey_tcache {
    struct pkey_tctx e[PKEY_TCTX];
    unsigned next;
};

static pthread_once_t pkey_tcache_once = PTHREAD_ONCE_INIT;
static pthread_key_t pkey_tcache_key; /* frees a thread's contexts when it exits */
static _Thread_local struct pkey_tcache *pkey_tcache;

static void
pkey_tctx_clear(struct pkey_tctx *t)
{
    EVP_PKEY_CTX_free(t->c);
    EVP_PKEY_free(t->key);
    memset(t, 0, sizeof(*t));
}

static void
pkey_tcache_free(void *p)
{
    struct pkey_tcache *tc = p;

    for (int i = 0; i < PKEY_TCTX; i++)
        pkey_tctx_clear(&tc->e[i]);
    free(tc);
}

static void
pkey_tcache_init(void)
{
    if (pthread_key_create(&pkey_tcache_key, pkey_tcache_free) != 0)
        abort();
}

/* This thread's context for (k, a, decrypt), made on first use. NULL when OpenSSL refuses. */
static struct pkey_tctx *
pkey_tctx_get(const struct pgcmk_pkey *k, int a, int decrypt)
{
    struct pkey_tcache *tc = pkey_tcache;
    struct pkey_tctx *t;
    struct pgcmk_pkey own = {NULL};

    if (tc == NULL) {
        pthread_once(&pkey_tcache_once, pkey_tcache_init);
        tc = pgcmk_xcalloc(1, sizeof(*tc));
        pthread_setspecific(pkey_tcache_key, tc);
        pkey_tcache = tc;
    }
    for (int i = 0; i < PKEY_TCTX; i++) {
        t = &tc->e[i];
        if (t->key == k->pk && t->alg == a && t->decrypt == decrypt)
            return t;
    }
    t = &tc->e[tc->next++ % PKEY_TCTX];
    pkey_tctx_clear(t);
    own.pk = decrypt ? EVP_PKEY_dup(k->pk) : k->pk;
    if (own.pk == NULL || EVP_PKEY_up_ref(k->pk) != 1) {
        if (decrypt)
            EVP_PKEY_free(own.pk);
        return NULL;
    }
    t->key = k->pk;
    t->c = crypt_ctx(&own, a, decrypt); /* the context holds its own reference to own.pk */
    if (decrypt)
        EVP_PKEY_free(own.pk);
    if (t->c == NULL) {
        pkey_tctx_clear(t);
        return NULL;
    }
    t->alg = a;
    t->decrypt = decrypt;
    return t;
}

static int
pkey_crypt(const struct pgcmk_pkey *k, const char *alg, const unsigned char *in, size_t len,
           unsigned char **out, size_t *out_len, int decrypt)
{
    int a = crypt_alg(alg);
    struct pkey_tctx *t;
    EVP_PKEY_CTX *c;
    unsigned char *buf;
    size_t n = 0;
    int ok;

    *out = NULL;
    *out_len = 0;
    if (pgcmk_pkey_is_ec(k) || a < 0 || (t = pkey_tctx_get(k, a, decrypt)) == NULL)
        return -1;
    c = t->c;
    ok = (decrypt ? EVP_PKEY_decrypt(c, NULL, &n, in, len)
                  : EVP_PKEY_encrypt(c, NULL, &n, in, len)) == 1;
    buf = ok ? pgcmk_xmalloc(n + 1) : NULL;
    ok = ok && (decrypt ? EVP_PKEY_decrypt(c, buf, &n, in, len)
                        : EVP_PKEY_encrypt(c, buf, &n, in, len)) == 1;
    if (!ok) {
        pkey_tctx_clear(t);
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

int
pgcmk_pkey_encrypt(const struct pgcmk_pkey *k, const char *alg, const unsigned char *in, size_t len,
                   unsigned char **out, size_t *out_len)
{
    return pkey_crypt(k, alg, in, len, out, out_len, 0);
}

int
pgcmk_pkey_decrypt(const struct pgcmk_pkey *k, const char *alg, const unsigned char *in, size_t len,
                   unsigned char **out, size_t *out_len)
{
    return pkey_crypt(k, alg, in, len, out, out_len, 1);
}

static const struct {
    const char *name;
    const char *md;
    size_t len;
    int pss;
} sign_algs[] = {{"RS256", "SHA256", 32, 0}, {"RS384", "SHA384", 48, 0},
                 {"RS512", "SHA512", 64, 0}, {"PS256", "SHA256", 32, 1},
                 {"PS384", "SHA384", 48, 1}, {"PS512", "SHA512", 64, 1}};

static int
sign_alg(const char *alg)
{
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(sign_algs); i++)
        if (alg && strcmp(alg, sign_algs[i].name) == 0)
            return (int)i;
    return -1;
}

int
pgcmk_pkey_sign_alg_ok(const char *alg, size_t digest_len)
{
    int a = sign_alg(alg);

    for (size_t i = 0; alg && i < PGCMK_ARRAY_LEN(ec_curves); i++)
        if (strcmp(alg, ec_curves[i].alg) == 0)
            return ec_curves[i].digest == digest_len;
    return a >= 0 && sign_algs[a].len == digest_len;
}

/* ES256/384/512: ECDSA over the digest, returned as r||s, each padded to the field size. */
static int
ec_sign(const struct pgcmk_pkey *k, int c, const unsigned char *digest, size_t len,
        unsigned char **sig, size_t *sig_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pk, NULL);
    unsigned char der[160], *out = NULL;
    const unsigned char *p = der;
    size_t n = sizeof(der);
    ECDSA_SIG *es = NULL;
    int ok = ctx && EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_sign(ctx, der, &n, digest, len) == 1 &&
             (es = d2i_ECDSA_SIG(NULL, &p, (long)n)) != NULL;

    if (ok) {
        out = pgcmk_xmalloc(2 * ec_curves[c].size);
        ok =
            BN_bn2binpad(ECDSA_SIG_get0_r(es), out, (int)ec_curves[c].size) > 0 &&
            BN_bn2binpad(ECDSA_SIG_get0_s(es), out + ec_curves[c].size, (int)ec_curves[c].size) > 0;
    }
    ECDSA_SIG_free(es);
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        free(out);
        return -1;
    }
    *sig = out;
    *sig_len = 2 * ec_curves[c].size;
    return 0;
}

static int
ec_verify(const struct pgcmk_pkey *k, int c, const unsigned char *digest, size_t len,
          const unsigned char *sig, size_t sig_len)
{
    ECDSA_SIG *es;
    BIGNUM *r, *s;
    unsigned char *der = NULL;
    EVP_PKEY_CTX *ctx;
    int n, ok;

    if (sig_len != 2 * ec_curves[c].size || (es = ECDSA_SIG_new()) == NULL)
        return -1;
    r = BN_bin2bn(sig, (int)ec_curves[c].size, NULL);
    s = BN_bin2bn(sig + ec_curves[c].size, (int)ec_curves[c].size, NULL);
    if (r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return -1;
    }
    n = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pk, NULL);
    ok = n > 0 && ctx && EVP_PKEY_verify_init(ctx) == 1 &&
         EVP_PKEY_verify(ctx, der, (size_t)n, digest, len) == 1;
    EVP_PKEY_CTX_free(ctx);
    OPENSSL_free(der);
    return ok ? 0 : -1;
}

/* The EC curve index for an ES* algorithm that matches the key, or -1. */
static int
ec_alg_for(const struct pgcmk_pkey *k, const char *alg, size_t len)
{
    int c = pkey_curve(k);

    return c >= 0 && alg && strcmp(alg, ec_curves[c].alg) == 0 && len == ec_curves[c].digest ? c
                                                                                             : -1;
}

static EVP_PKEY_CTX *
sign_ctx(const struct pgcmk_pkey *k, int a, int verify)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k->pk, NULL);
    EVP_MD *md = EVP_MD_fetch(NULL, sign_algs[a].md, NULL);
    int ok =
        c && md && (verify ? EVP_PKEY_verify_init(c) : EVP_PKEY_sign_init(c)) == 1 &&
        EVP_PKEY_CTX_set_signature_md(c, md) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(c, sign_algs[a].pss ? RSA_PKCS1_PSS_PADDING
                                                         : RSA_PKCS1_PADDING) == 1 &&
        (!sign_algs[a].pss || EVP_PKEY_CTX_set_rsa_pss_saltlen(c, RSA_PSS_SALTLEN_DIGEST) == 1);

    EVP_MD_free(md);
    if (!ok) {
        EVP_PKEY_CTX_free(c);
        return NULL;
    }
    return c;
}

int
pgcmk_pkey_sign(const struct pgcmk_pkey *k, const char *alg, const unsigned char *digest,
                size_t len, unsigned char **sig, size_t *sig_len)
{
    int a = sign_alg(alg);
    EVP_PKEY_CTX *c;
    unsigned char *buf = NULL;
    size_t n = 0;

    *sig = NULL;
    *sig_len = 0;
    if (pgcmk_pkey_is_ec(k)) {
        int curve = ec_alg_for(k, alg, len);

        return curve < 0 ? -1 : ec_sign(k, curve, digest, len, sig, sig_len);
    }
    if (a < 0 || sign_algs[a].len != len || (c = sign_ctx(k, a, 0)) == NULL)
        return -1;
    if (EVP_PKEY_sign(c, NULL, &n, digest, len) == 1) {
        buf = pgcmk_xmalloc(n);
        if (EVP_PKEY_sign(c, buf, &n, digest, len) != 1) {
            free(buf);
            buf = NULL;
        }
    }
    EVP_PKEY_CTX_free(c);
    if (buf == NULL)
        return -1;
    *sig = buf;
    *sig_len = n;
    return 0;
}

int
pgcmk_pkey_verify(const struct pgcmk_pkey *k, const char *alg, const unsigned char *digest,
                  size_t len, const unsigned char *sig, size_t sig_len)
{
    int a = sign_alg(alg), ok;
    EVP_PKEY_CTX *c;

    if (pgcmk_pkey_is_ec(k)) {
        int curve = ec_alg_for(k, alg, len);

        return curve < 0 ? -1 : ec_verify(k, curve, digest, len, sig, sig_len);
    }
    if (a < 0 || sign_algs[a].len != len || (c = sign_ctx(k, a, 1)) == NULL)
        return -1;
    ok = EVP_PKEY_verify(c, sig, sig_len, digest, len) == 1;
    EVP_PKEY_CTX_free(c);
    return ok ? 0 : -1;
}

static char *
jwt_part(const json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    char *out;

    if (text == NULL)
        return NULL;
    out = pgcmk_b64url_encode(text, strlen(text));
    free(text);
    return out;
}

char *
pgcmk_jwt_sign(const struct pgcmk_pkey *k, const char *kid, const json_t *claims)
{
    json_t *hdr = json_pack("{s:s, s:s, s:s}", "typ", "JWT", "alg", "RS256", "kid", kid);
    char *h = jwt_part(hdr), *c = jwt_part(claims), *input = NULL, *sig64 = NULL, *out = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);

    json_decref(hdr);
    if (h == NULL || c == NULL || md == NULL)
        goto done;
    input = pgcmk_xasprintf("%s.%s", h, c);
    if (EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, k->pk, NULL) != 1 ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1)
        goto done;
    sig64 = pgcmk_b64url_encode(sig, siglen);
    out = pgcmk_xasprintf("%s.%s", input, sig64);
done:
    EVP_MD_CTX_free(md);
    free(h);
    free(c);
    free(input);
    free(sig64);
    return out;
}

static json_t *
jwt_decode_part(const char *s, size_t len)
{
    unsigned char *raw = NULL;
    size_t n = 0;
    json_t *j;

    if (pgcmk_b64url_decode(s, len, &raw, &n))
        return NULL;
    j = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    return json_is_object(j) ? j : (json_decref(j), NULL);
}

int
pgcmk_jwt_verify(const struct pgcmk_pkey *k, const char *kid, const char *token, json_t **claims,
                 struct pgcmk_err *err)
{
    const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    json_t *hdr = NULL, *body = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    EVP_MD_CTX *md = NULL;
    int rc = -1;

    *claims = NULL;
    if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL) {
        pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL, "The access token is not a JWT.");
        goto done;
    }
    hdr = jwt_decode_part(token, (size_t)(dot1 - token));
    body = jwt_decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (hdr == NULL || body == NULL) {
        pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL, "The access token is malformed.");
        goto done;
    }
    if (!json_is_string(json_object_get(hdr, "alg")) ||
        strcmp(json_string_value(json_object_get(hdr, "alg")), "RS256") != 0) {
        pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL,
                      "The access token's algorithm is not accepted (only RS256).");
        goto done;
    }
    if (kid && (!json_is_string(json_object_get(hdr, "kid")) ||
                strcmp(json_string_value(json_object_get(hdr, "kid")), kid) != 0)) {
        pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL,
                      "The access token was not signed by this emulator's key.");
        goto done;
    }
    if (pgcmk_b64url_decode(dot2 + 1, strlen(dot2 + 1), &sig, &siglen)) {
        pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL,
                      "The access token's signature is malformed.");
        goto done;
    }
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, k->pk, NULL) != 1 ||
        EVP_DigestVerify(md, sig, siglen, (const unsigned char *)token, (size_t)(dot2 - token)) !=
            1) {
        pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL, "The access token's signature is invalid.");
        goto done;
    }
    *claims = body;
    body = NULL;
    rc = 0;
done:
    EVP_MD_CTX_free(md);
    free(sig);
    json_decref(hdr);
    json_decref(body);
    return rc;
}
