/* kes.c - the agent as a MinIO KES client (include/pgcmk/kesc.h): generate and decrypt of a KES
 * data key over mutual TLS (libcurl through include/pgcmk/https.h), answers read with jansson,
 * each outcome told apart as an outage (retried, the DEK kept) or a loss of access.
 *
 * DESIGN.md rule: the agent reaches a key store only over its wire protocol. This file never
 * calls src/kes/, so it works the same against pgcmk's KES servers and any other KES server.
 * An API key becomes, in memory, the self-signed Ed25519 certificate kms-go's client makes
 * (kes/apikey.go GenerateCertificate): the server needs no API-key path, the certificate's SPKI
 * hash is the identity. The certificate is made here with OpenSSL (as src/kmip/listener.c does
 * for its TLS), not in src/crypto/, because only this client needs it.
 *
 * Secrets: the API key's seed, the private key PEM and the DEK live in buffers wiped before they
 * go (OPENSSL_cleanse, pgcmk_secret_free). Nothing here logs an API key, a plaintext or key
 * bytes. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pgcmk/core.h"
#include "pgcmk/crypto.h"
#include "pgcmk/https.h"
#include "pgcmk/kesc.h"
#include "pgcmk/log.h"

#define KC_CONNECT_MS 3000L
#define KC_TOTAL_MS   10000L
#define KC_RETRIES    2
#define KC_BACKOFF_MS 100
#define KC_CERT_DAYS  90 /* kms-go: 90 days */
#define KC_PREFIX     "kes:v1:"
#define KC_CT_MAX     4096

/* ---- API keys and certificates ------------------------------------------------------------ */

int
pgcmk_kesc_api_key_seed(const char *s, unsigned char seed[32])
{
    unsigned char *raw = NULL;
    size_t n = 0, pl = strlen(KC_PREFIX);
    int rc = -1;

    if (!s || strncmp(s, KC_PREFIX, pl) != 0 || strlen(s) > 200)
        return -1;
    if (pgcmk_b64_decode(s + pl, strlen(s + pl), &raw, &n) != 0)
        return -1;
    if (n == 33 && raw[0] == 0) { /* type 0: Ed25519 */
        memcpy(seed, raw + 1, 32);
        rc = 0;
    }
    OPENSSL_cleanse(raw, n);
    free(raw);
    return rc;
}

/* hex SHA-256 of a key's DER SubjectPublicKeyInfo: 0 or -1. */
static int
kc_spki_identity(EVP_PKEY *pk, char identity[PGCMK_KESC_ID_LEN])
{
    unsigned char *der = NULL, h[32];
    int n = pk ? i2d_PUBKEY(pk, &der) : -1;

    if (n <= 0)
        return -1;
    pgcmk_sha256(der, (size_t)n, h);
    OPENSSL_free(der);
    pgcmk_hex(h, 32, identity);
    return 0;
}

static EVP_PKEY *
kc_api_key_pkey(const char *s)
{
    unsigned char seed[32];
    EVP_PKEY *pk;

    if (pgcmk_kesc_api_key_seed(s, seed))
        return NULL;
    pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
    OPENSSL_cleanse(seed, sizeof(seed));
    return pk;
}

int
pgcmk_kesc_api_key_identity(const char *s, char identity[PGCMK_KESC_ID_LEN])
{
    EVP_PKEY *pk = kc_api_key_pkey(s);
    int rc = kc_spki_identity(pk, identity);

    EVP_PKEY_free(pk);
    return rc;
}

int
pgcmk_kesc_cert_file_identity(const char *path, char identity[PGCMK_KESC_ID_LEN])
{
    FILE *f = path ? fopen(path, "r") : NULL;
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    int rc = x ? kc_spki_identity(X509_get0_pubkey(x), identity) : -1;

    if (f)
        fclose(f);
    X509_free(x);
    return rc;
}

static int
kc_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;
    int ok;

    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ok = e && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

static char *
kc_bio_text(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *out = n > 0 ? pgcmk_xstrndup(data, (size_t)n) : NULL;

    if (data && n > 0)
        OPENSSL_cleanse(data, (size_t)n);
    return out;
}

int
pgcmk_kesc_api_key_cert(const char *s, int64_t now_s, char **cert_pem, char **key_pem)
{
    EVP_PKEY *pk = kc_api_key_pkey(s);
    X509 *x = NULL;
    BIGNUM *bn = NULL;
    BIO *cb = NULL, *kb = NULL;
    char id[PGCMK_KESC_ID_LEN];
    int rc = -1;

    *cert_pem = *key_pem = NULL;
    if (!pk || kc_spki_identity(pk, id))
        goto out;
    x = X509_new();
    bn = BN_new();
    if (!x || !bn || !X509_set_version(x, 2) ||
        !BN_rand(bn, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
        !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)now_s) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(now_s + KC_CERT_DAYS * 86400L)) ||
        !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                    (const unsigned char *)id, -1, -1, 0) ||
        !X509_set_issuer_name(x, X509_get_subject_name(x)) || !X509_set_pubkey(x, pk))
        goto out;
    if (kc_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
        kc_ext(x, NID_key_usage, "critical,digitalSignature") ||
        kc_ext(x, NID_ext_key_usage, "clientAuth"))
        goto out;
    if (!X509_sign(x, pk, NULL)) /* Ed25519: no separate digest */
        goto out;
    cb = BIO_new(BIO_s_mem());
    kb = BIO_new(BIO_s_mem());
    if (!cb || !kb || !PEM_write_bio_X509(cb, x) ||
        !PEM_write_bio_PKCS8PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL))
        goto out;
    *cert_pem = kc_bio_text(cb);
    *key_pem = kc_bio_text(kb);
    if (*cert_pem && *key_pem)
        rc = 0;
    else {
        free(*cert_pem);
        if (*key_pem)
            pgcmk_secret_free(*key_pem, strlen(*key_pem));
        *cert_pem = *key_pem = NULL;
    }
out:
    BIO_free(cb);
    BIO_free(kb);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(pk);
    return rc;
}

/* ---- requests ----------------------------------------------------------------------------- */

int
pgcmk_kesc_key_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n < 1 || n > 80 || name[0] == '-' || name[n - 1] == '-' || strcmp(name, "_") == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
            return 0;
    return 1;
}

char *
pgcmk_kesc_url(const struct pgcmk_kesc_target *t, const char *op, const char *key)
{
    size_t ul = strlen(t->url);

    while (ul && t->url[ul - 1] == '/')
        ul--;
    return pgcmk_xasprintf("%.*s/v1/key/%s/%s", (int)ul, t->url, op, key);
}

char *
pgcmk_kesc_generate_body(const char *context)
{
    char *b64 = pgcmk_b64_encode(context, strlen(context));
    char *body = pgcmk_xasprintf("{\"context\":\"%s\"}", b64);

    free(b64);
    return body;
}

char *
pgcmk_kesc_decrypt_body(const unsigned char *ct, size_t ct_len, const char *context)
{
    char *c = pgcmk_b64_encode(ct, ct_len), *x = pgcmk_b64_encode(context, strlen(context));
    char *body = pgcmk_xasprintf("{\"ciphertext\":\"%s\",\"context\":\"%s\"}", c, x);

    free(c);
    free(x);
    return body;
}

/* ---- answers ------------------------------------------------------------------------------ */

static json_t *
kc_json(const char *body, size_t len)
{
    return body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
}

/* The base64 string field `name` of o decoded: 0 with *out (malloc'd), -1. The field's text is
 * wiped in the tree when wipe is set. */
static int
kc_b64_field(json_t *o, const char *name, int wipe, unsigned char **out, size_t *out_len)
{
    json_t *v = json_object_get(o, name);
    int rc;

    *out = NULL;
    *out_len = 0;
    if (!json_is_string(v))
        return -1;
    rc = pgcmk_b64_decode(json_string_value(v), json_string_length(v), out, out_len);
    if (wipe)
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
    if (rc) {
        *out = NULL;
        *out_len = 0;
    }
    return rc ? -1 : 0;
}

static void
kc_free_secret(unsigned char *p, size_t n)
{
    if (p)
        pgcmk_secret_free(p, n);
}

int
pgcmk_kesc_parse_generate(const char *body, size_t len, unsigned char dek[32], unsigned char **ct,
                          size_t *ct_len)
{
    json_t *o = kc_json(body, len);
    unsigned char *pt = NULL, *c = NULL;
    size_t pl = 0, cl = 0;
    int rc = -1;

    *ct = NULL;
    *ct_len = 0;
    if (json_is_object(o) && kc_b64_field(o, "plaintext", 1, &pt, &pl) == 0 && pl == 32 &&
        kc_b64_field(o, "ciphertext", 0, &c, &cl) == 0 && cl >= 1 && cl <= KC_CT_MAX) {
        memcpy(dek, pt, 32);
        *ct = c;
        *ct_len = cl;
        c = NULL;
        rc = 0;
    }
    kc_free_secret(pt, pl);
    free(c);
    json_decref(o);
    return rc;
}

int
pgcmk_kesc_parse_plaintext(const char *body, size_t len, unsigned char dek[32], size_t *pt_len)
{
    json_t *o = kc_json(body, len);
    unsigned char *pt = NULL;
    size_t pl = 0;
    int rc = -1;

    *pt_len = 0;
    if (json_is_object(o) && kc_b64_field(o, "plaintext", 1, &pt, &pl) == 0) {
        *pt_len = pl;
        rc = pl == 32 ? 0 : 1;
        if (rc == 0)
            memcpy(dek, pt, 32);
    }
    kc_free_secret(pt, pl);
    json_decref(o);
    return rc;
}

void
pgcmk_kesc_parse_message(const char *body, size_t len, char *out, size_t cap)
{
    json_t *o = kc_json(body, len);
    const char *m = json_string_value(json_object_get(o, "message"));

    if (!m)
        m = json_string_value(json_object_get(o, "error"));
    snprintf(out, cap, "%.300s", m ? m : "");
    for (char *p = out; *p; p++) /* one line, printable: it goes into messages and logs */
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    json_decref(o);
}

enum pgcmk_errc
pgcmk_kesc_classify(long status, const char *body, size_t len, int *outage)
{
    char why[320];

    *outage = 0;
    if (status >= 200 && status < 300)
        return PGCMK_E_OK;
    if (status == 401 || status == 403)
        return PGCMK_E_KES_PERMISSION_DENIED;
    if (status == 404)
        return PGCMK_E_KES_KEY_NOT_FOUND;
    if (status == 502)
        return PGCMK_E_KES_KEYSTORE;
    if (status == 400) {
        pgcmk_kesc_parse_message(body, len, why, sizeof(why));
        if (strstr(why, "not authentic"))
            return PGCMK_E_KES_KEY_MISMATCH;
    }
    if (status >= 500 || status == 429 || status < 200) {
        *outage = 1;
        return PGCMK_E_KES_SERVER_UNREACHABLE;
    }
    return PGCMK_E_KES_REQUEST_REFUSED;
}

/* ---- calls -------------------------------------------------------------------------------- */

/* The client's credentials for one operation. */
struct kc_creds {
    char *cert_pem, *key_pem; /* from the API key; NULL with files */
    char identity[PGCMK_KESC_ID_LEN];
};

/* Who a refusal names: the server and the identity. */
struct kc_who {
    const char *url;
    const struct kc_creds *c;
};

static void
kc_creds_release(struct kc_creds *c)
{
    free(c->cert_pem);
    if (c->key_pem)
        pgcmk_secret_free(c->key_pem, strlen(c->key_pem));
    c->cert_pem = c->key_pem = NULL;
}

static int
kc_creds(const struct pgcmk_kesc_target *t, struct kc_creds *c, struct pgcmk_agent_result *res)
{
    memset(c, 0, sizeof(*c));
    if (t->api_key) {
        if (pgcmk_kesc_api_key_cert(t->api_key, (int64_t)time(NULL), &c->cert_pem, &c->key_pem) ||
            pgcmk_kesc_api_key_identity(t->api_key, c->identity)) {
            kc_creds_release(c);
            return pgcmk_agent_fail(res, PGCMK_E_KES_PROVIDER_INVALID, 1,
                                    "KES %.200s: the API key is not a kes:v1: Ed25519 key.",
                                    t->url);
        }
        return 0;
    }
    if (pgcmk_kesc_cert_file_identity(t->cert_path, c->identity))
        return pgcmk_agent_fail(
            res, PGCMK_E_KES_PROVIDER_INVALID, 1,
            "KES %.200s: the client certificate '%.300s' cannot be read as PEM.", t->url,
            t->cert_path ? t->cert_path : "");
    return 0;
}

/* A TLS alert about the client's certificate: the server refused it in the handshake. */
static int
kc_cert_refused(const char *error)
{
    return strstr(error, "alert") && (strstr(error, "certificate") || strstr(error, "unknown ca"));
}

static int
kc_outage(long status, const char *body, size_t len)
{
    int outage;

    pgcmk_kesc_classify(status, body, len, &outage);
    return outage;
}

/* A TLS alert about the client's certificate: the server refused the identity's certificate. */
static int
kc_refused_cert(void *arg, const struct pgcmk_agent_https_resp *rs, struct pgcmk_agent_result *res)
{
    const struct kc_who *w = arg;

    if (!kc_cert_refused(rs->error))
        return 0;
    return pgcmk_agent_fail(res, PGCMK_E_KES_SERVER_NOT_TRUSTED, 1,
                            "KES %.200s refused the client certificate of identity %.64s in the "
                            "TLS handshake: %.150s.",
                            w->url, w->c->identity, rs->error);
}

/* One request with retries on outages: 0 with rs (the final answer, any status, the caller
 * releases it), or -1 with res (an outage, or a certificate problem). */
static int
kc_call(const struct pgcmk_kesc_target *t, const struct kc_creds *c, const char *url,
        const char *body, struct pgcmk_agent_https_resp *rs, struct pgcmk_agent_result *res)
{
    static const char *const hdrs[] = {"Content-Type: application/json", "Accept: application/json",
                                       NULL};
    long total = t->timeout_ms > 0 ? t->timeout_ms : KC_TOTAL_MS;
    struct pgcmk_agent_https_req rq;
    struct kc_who who = {t->url, c};
    struct pgcmk_agent_retry r = {
        "KES",
        t->url,
        t->retries < 0 ? KC_RETRIES : t->retries,
        KC_BACKOFF_MS,
        PGCMK_E_KES_SERVER_NOT_TRUSTED,
        PGCMK_E_KES_SERVER_UNREACHABLE,
        kc_outage,
        pgcmk_kesc_parse_message,
        NULL,
        NULL,
        kc_refused_cert,
        &who,
    };

    memset(&rq, 0, sizeof(rq));
    rq.method = "POST"; /* kms-go sends POST for create, generate and decrypt */
    rq.url = url;
    rq.ca_path = t->ca_path;
    rq.headers = hdrs;
    rq.body = body;
    rq.connect_ms = total < KC_CONNECT_MS ? total : KC_CONNECT_MS;
    rq.total_ms = total;
    rq.cert_pem = c->cert_pem;
    rq.key_pem = c->key_pem;
    rq.cert_path = c->cert_pem ? NULL : t->cert_path;
    rq.key_path = c->cert_pem ? NULL : t->key_path;
    rq.insecure = t->insecure;
    return pgcmk_agent_https_retry(&r, &rq, rs, res);
}

/* A final non-2xx answer as a loss, with a message naming the request and the identity. */
static int
kc_refused(const struct pgcmk_kesc_target *t, const struct kc_creds *c, const char *op,
           const char *key, struct pgcmk_agent_https_resp *rs, struct pgcmk_agent_result *res)
{
    int outage;
    enum pgcmk_errc code = pgcmk_kesc_classify(rs->status, rs->body, rs->len, &outage);
    char why[320];
    const char *what = code == PGCMK_E_KES_PERMISSION_DENIED
                           ? " (the identity is unknown to the server, or its policy does not "
                             "allow the path)"
                       : code == PGCMK_E_KES_KEYSTORE
                           ? " (the server cannot reach its keystore and the key is not cached)"
                       : code == PGCMK_E_KES_KEY_MISMATCH
                           ? " (the stored DEK was not made with this key)"
                           : "";

    pgcmk_kesc_parse_message(rs->body, rs->len, why, sizeof(why));
    pgcmk_agent_fail(
        res, code, !outage,
        "KES %.200s answers HTTP %ld to POST /v1/key/%s/%.80s for identity %.64s: %.200s%s.",
        t->url, rs->status, op, key, c->identity, why[0] ? why : "no message", what);
    res->http_status = (int)rs->status;
    pgcmk_agent_https_release(rs);
    return -1;
}

/* POST /v1/key/{op}/{key} with body: 0 with a 2xx answer in rs, -1 with res. */
static int
kc_op(const struct pgcmk_kesc_target *t, const struct kc_creds *c, const char *op, const char *key,
      const char *body, struct pgcmk_agent_https_resp *rs, struct pgcmk_agent_result *res)
{
    char *url = pgcmk_kesc_url(t, op, key);
    int rc = kc_call(t, c, url, body, rs, res);

    free(url);
    if (rc)
        return -1;
    if (rs->status < 200 || rs->status >= 300)
        return kc_refused(t, c, op, key, rs, res);
    return 0;
}

static int
kc_key_ok(const struct pgcmk_kesc_target *t, const char *key, struct pgcmk_agent_result *res)
{
    if (pgcmk_kesc_key_name_ok(key))
        return 0;
    return pgcmk_agent_fail(
        res, PGCMK_E_KES_PROVIDER_INVALID, 1,
        "KES %.200s: '%.100s' is not a valid KES key name (1 to 80 of [0-9A-Za-z_-], "
        "no '-' first or last).",
        t->url, key);
}

int
pgcmk_agent_kes_new_dek(const char *db_id, const struct pgcmk_kesc_target *t, const char *key_name,
                        int create_key, unsigned char **wrapped, size_t *wrapped_len, char alg[24],
                        struct pgcmk_agent_result *res)
{
    struct kc_creds c;
    struct pgcmk_agent_https_resp rs;
    unsigned char dek[PGCMK_AGENT_DEK_LEN];
    char *body;
    int rc;

    memset(res, 0, sizeof(*res));
    *wrapped = NULL;
    *wrapped_len = 0;
    if (kc_key_ok(t, key_name, res) || kc_creds(t, &c, res))
        return -1;
    body = pgcmk_kesc_generate_body(db_id);
    rc = kc_op(t, &c, "generate", key_name, body, &rs, res);
    if (rc && create_key && res->code == PGCMK_E_KES_KEY_NOT_FOUND) {
        struct pgcmk_agent_result cres;

        memset(&cres, 0, sizeof(cres));
        if (kc_op(t, &c, "create", key_name, NULL, &rs, &cres) == 0) {
            pgcmk_agent_https_release(&rs);
            LOG_INFO("agent: created the KES key '%s' on %s", key_name, t->url);
        } else if (cres.code != PGCMK_E_KES_REQUEST_REFUSED || !strstr(cres.message, "exists")) {
            *res = cres;
            goto out;
        }
        memset(res, 0, sizeof(*res));
        rc = kc_op(t, &c, "generate", key_name, body, &rs, res);
    }
    if (rc)
        goto out;
    rc = pgcmk_kesc_parse_generate(rs.body, rs.len, dek, wrapped, wrapped_len);
    pgcmk_agent_https_release(&rs);
    if (rc) {
        pgcmk_agent_fail(res, PGCMK_E_KES_REQUEST_REFUSED, 1,
                         "KES %.200s: the answer to POST /v1/key/generate/%.80s is not a data key "
                         "(base64 plaintext of 32 bytes and a ciphertext).",
                         t->url, key_name);
        goto out;
    }
    pgcmk_agent_keep(db_id, dek);
    OPENSSL_cleanse(dek, sizeof(dek));
    snprintf(alg, 24, "%s", PGCMK_KESC_ALG);
out:
    free(body);
    kc_creds_release(&c);
    return rc ? -1 : 0;
}

int
pgcmk_agent_kes_check(const char *db_id, const struct pgcmk_kesc_target *t, const char *key_name,
                      const unsigned char *wrapped, size_t wrapped_len,
                      struct pgcmk_agent_result *res)
{
    struct kc_creds c;
    struct pgcmk_agent_https_resp rs;
    unsigned char dek[PGCMK_AGENT_DEK_LEN];
    size_t pl = 0;
    char *body;
    int rc;

    memset(res, 0, sizeof(*res));
    if (kc_key_ok(t, key_name, res) || kc_creds(t, &c, res))
        goto fail;
    body = pgcmk_kesc_decrypt_body(wrapped, wrapped_len, db_id);
    rc = kc_op(t, &c, "decrypt", key_name, body, &rs, res);
    free(body);
    if (rc == 0) {
        rc = pgcmk_kesc_parse_plaintext(rs.body, rs.len, dek, &pl);
        pgcmk_agent_https_release(&rs);
        if (rc)
            pgcmk_agent_fail(
                res, PGCMK_E_KES_KEY_MISMATCH, 1,
                "KES %.200s: POST /v1/key/decrypt/%.80s gives %zu bytes, not the database's "
                "32-byte key.",
                t->url, key_name, pl);
    }
    kc_creds_release(&c);
    if (rc)
        goto fail;
    pgcmk_agent_keep(db_id, dek);
    OPENSSL_cleanse(dek, sizeof(dek));
    return 0;
fail:
    if (res->lost)
        pgcmk_agent_forget(db_id);
    return -1;
}
