/* pkey.c - RSA keys through EVP: generation, PEM, JWK, RS256 JWTs. */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "pgcmk/crypto.h"
#include "pgcmk/pkey.h"

struct pgcmk_pkey {
    EVP_PKEY *pk;
};

int
pgcmk_pkey_rsa_new(int bits, struct pgcmk_pkey **out)
{
    EVP_PKEY *pk;

    *out = NULL;
    if (bits != 2048 && bits != 3072 && bits != 4096)
        return -1;
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    if (pk == NULL)
        return -1;
    *out = pgcmk_xcalloc(1, sizeof(**out));
    (*out)->pk = pk;
    return 0;
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

json_t *
pgcmk_pkey_public_jwk(const struct pgcmk_pkey *k, const char *kid)
{
    char *n = pkey_bn_b64(k, OSSL_PKEY_PARAM_RSA_N), *e = pkey_bn_b64(k, OSSL_PKEY_PARAM_RSA_E);
    json_t *jwk = NULL;

    if (n && e) {
        jwk = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", n, "e", e);
        if (jwk && kid)
            json_object_update_new(jwk, json_pack("{s:s, s:s, s:s}", "kid", kid, "use", "sig",
                                                  "alg", "RS256"));
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
        pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL, "The access token's signature is malformed.");
        goto done;
    }
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, k->pk, NULL) != 1 ||
        EVP_DigestVerify(md, sig, siglen, (const unsigned char *)token,
                         (size_t)(dot2 - token)) != 1) {
        pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL,
                      "The access token's signature is invalid.");
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
