/* test_crypto.c - base64/base64url, SHA-256, AES-256-GCM, the local CA and server certificate,
 * RSA keys (OAEP and PKCS#1 encryption, RS/PS signatures), JWK thumbprints and RS256 JWTs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pgcmk/crypto.h"
#include "pgcmk/pkey.h"
#include "t.h"

static void
check_b64url(const char *in, const char *want)
{
    char *enc = pgcmk_b64url_encode(in, strlen(in));
    unsigned char *dec = NULL;
    size_t n = 0;

    CHECK_STR(enc, want);
    CHECK(pgcmk_b64url_decode(enc, strlen(enc), &dec, &n) == 0);
    CHECK(n == strlen(in) && memcmp(dec, in, n) == 0);
    free(enc);
    free(dec);
}

static X509 *
read_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

    BIO_free(b);
    return x;
}

static void
test_tls(void)
{
    char dir[64] = "/tmp/pgcmk-tls-XXXXXX", p[128], *first;
    struct pgcmk_tls tls, again, own;
    struct pgcmk_err err;
    struct stat sb;
    X509 *leaf;

    CHECK(mkdtemp(dir) != NULL);
    CHECK(pgcmk_tls_bootstrap(dir, NULL, NULL, &tls, &err) == 0);
    CHECK(tls.created == 1 && tls.ca_path && strstr(tls.ca_path, "ca.pem"));
    snprintf(p, sizeof(p), "%s/ca-key.pem", dir);
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    snprintf(p, sizeof(p), "%s/server-key.pem", dir);
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    leaf = read_cert(tls.cert_pem);
    CHECK(leaf != NULL);
    CHECK(X509_check_host(leaf, "localhost", 0, 0, NULL) == 1);
    CHECK(X509_check_host(leaf, "kv1.vault.localhost", 0, 0, NULL) == 1);
    CHECK(X509_check_host(leaf, "example.com", 0, 0, NULL) != 1);
    CHECK(X509_check_ip_asc(leaf, "127.0.0.1", 0) == 1);
    CHECK(X509_check_ip_asc(leaf, "::1", 0) == 1);
    X509_free(leaf);
    first = strdup(tls.cert_pem);
    CHECK(pgcmk_tls_bootstrap(dir, NULL, NULL, &again, &err) == 0);
    CHECK(again.created == 0 && strcmp(first, again.cert_pem) == 0);
    /* bring your own */
    snprintf(p, sizeof(p), "%s/server.pem", dir);
    {
        char k[128];

        snprintf(k, sizeof(k), "%s/server-key.pem", dir);
        CHECK(pgcmk_tls_bootstrap(dir, p, k, &own, &err) == 0);
        CHECK(own.ca_path == NULL && own.cert_pem && own.key_pem);
        pgcmk_tls_release(&own);
        CHECK(pgcmk_tls_bootstrap(dir, p, "/nonexistent/key.pem", &own, &err) == -1);
        CHECK(strstr(err.message, "key.pem") != NULL);
        /* a key that does not match the certificate */
        snprintf(k, sizeof(k), "%s/ca-key.pem", dir);
        CHECK(pgcmk_tls_bootstrap(dir, p, k, &own, &err) == -1);
    }
    free(first);
    pgcmk_tls_release(&tls);
    pgcmk_tls_release(&again);
    snprintf(p, sizeof(p), "rm -rf %s", dir);
    CHECK(system(p) == 0);
}

static void
test_rsa(void)
{
    static const char *const algs[] = {"RSA1_5", "RSA-OAEP", "RSA-OAEP-256"};
    static const char *const sigs[] = {"RS256", "PS256"};
    struct pgcmk_pkey *k = NULL, *pub = NULL, *again = NULL;
    unsigned char dek[32], digest[32], *ct, *pt, *sig;
    size_t ct_len, pt_len, sig_len;
    char *pem, *tp1, *tp2, *tok;
    struct pgcmk_err err;
    json_t *claims, *got = NULL, *jwk;

    CHECK(pgcmk_pkey_rsa_new(1024, &k) == -1);
    CHECK(pgcmk_pkey_rsa_new(2048, &k) == 0 && pgcmk_pkey_bits(k) == 2048);
    CHECK(pgcmk_pkey_has_private(k) == 1);
    CHECK(pgcmk_random(dek, sizeof(dek)) == 0);
    for (size_t i = 0; i < 3; i++) {
        CHECK(pgcmk_pkey_encrypt(k, algs[i], dek, sizeof(dek), &ct, &ct_len) == 0 && ct_len == 256);
        CHECK(pgcmk_pkey_decrypt(k, algs[i], ct, ct_len, &pt, &pt_len) == 0);
        CHECK(pt_len == 32 && memcmp(pt, dek, 32) == 0);
        free(pt);
        ct[10] ^= 1;
        pt = NULL;
        CHECK(pgcmk_pkey_decrypt(k, algs[i], ct, ct_len, &pt, &pt_len) == -1 || pt_len != 32 ||
              memcmp(pt, dek, 32) != 0);
        free(pt);
        free(ct);
    }
    CHECK(pgcmk_pkey_crypt_alg_ok("RSA-OAEP-512") == 0);
    CHECK(pgcmk_pkey_encrypt(k, "bogus", dek, 32, &ct, &ct_len) == -1);
    pgcmk_sha256("abc", 3, digest);
    for (size_t i = 0; i < 2; i++) {
        CHECK(pgcmk_pkey_sign(k, sigs[i], digest, 32, &sig, &sig_len) == 0);
        CHECK(pgcmk_pkey_verify(k, sigs[i], digest, 32, sig, sig_len) == 0);
        digest[0] ^= 1;
        CHECK(pgcmk_pkey_verify(k, sigs[i], digest, 32, sig, sig_len) == -1);
        digest[0] ^= 1;
        free(sig);
    }
    CHECK(pgcmk_pkey_sign_alg_ok("RS384", 32) == 0 && pgcmk_pkey_sign_alg_ok("RS384", 48) == 1);
    /* PEM round trip keeps the key; thumbprints agree */
    pem = pgcmk_pkey_private_pem(k);
    CHECK(pem && strstr(pem, "PRIVATE KEY"));
    CHECK(pgcmk_pkey_from_pem(pem, strlen(pem), &again) == 0);
    tp1 = pgcmk_pkey_thumbprint(k);
    tp2 = pgcmk_pkey_thumbprint(again);
    CHECK_STR(tp1, tp2);
    jwk = pgcmk_pkey_public_jwk(k, "kid1");
    CHECK_STR(json_string_value(json_object_get(jwk, "e")), "AQAB");
    CHECK_STR(json_string_value(json_object_get(jwk, "alg")), "RS256");
    json_decref(jwk);
    /* JWT: sign, verify, reject tampering and wrong keys */
    claims = json_pack("{s:s, s:i}", "aud", "https://vault.azure.net", "exp", 4102444800);
    tok = pgcmk_jwt_sign(k, tp1, claims);
    CHECK(tok != NULL);
    CHECK(pgcmk_jwt_verify(again, tp1, tok, &got, &err) == 0);
    CHECK_STR(json_string_value(json_object_get(got, "aud")), "https://vault.azure.net");
    json_decref(got);
    CHECK(pgcmk_jwt_verify(again, "other-kid", tok, &got, &err) == -1 && got == NULL);
    tok[strlen(tok) - 3] = tok[strlen(tok) - 3] == 'A' ? 'B' : 'A';
    CHECK(pgcmk_jwt_verify(again, tp1, tok, &got, &err) == -1);
    CHECK(pgcmk_jwt_verify(again, NULL, "a.b", &got, &err) == -1);
    CHECK(pgcmk_jwt_verify(again, NULL, "", &got, &err) == -1);
    {
        /* alg "none" is never trusted */
        char *h = pgcmk_b64url_encode("{\"alg\":\"none\"}", 14);
        char *bad = pgcmk_xasprintf("%s.e30.", h);

        CHECK(pgcmk_jwt_verify(again, NULL, bad, &got, &err) == -1);
        CHECK(strstr(err.message, "RS256") != NULL);
        free(h);
        free(bad);
    }
    free(tok);
    json_decref(claims);
    pgcmk_secret_free(pem, strlen(pem));
    free(tp1);
    free(tp2);
    pgcmk_pkey_free(k);
    pgcmk_pkey_free(again);
    pgcmk_pkey_free(pub);
}

int
main(void)
{
    static const unsigned char key[32] = {1, 2, 3};
    unsigned char md[32], *sealed, *plain, *raw;
    size_t sealed_len, plain_len, raw_len;
    char *b;

    /* RFC 4648 vectors */
    check_b64url("", "");
    check_b64url("f", "Zg");
    check_b64url("fo", "Zm8");
    check_b64url("foo", "Zm9v");
    check_b64url("foobar", "Zm9vYmFy");
    b = pgcmk_b64_encode("fo", 2);
    CHECK_STR(b, "Zm8=");
    free(b);
    CHECK(pgcmk_b64url_decode("Zm8=", 4, &raw, &raw_len) == 0 && raw_len == 2);
    free(raw);
    CHECK(pgcmk_b64url_decode("Zm+v", 4, &raw, &raw_len) == -1);
    CHECK(pgcmk_b64url_decode("Z", 1, &raw, &raw_len) == -1);
    CHECK(pgcmk_b64url_decode("Zm 8", 4, &raw, &raw_len) == -1);
    {
        unsigned char bin[3] = {0xfb, 0xff, 0xfe};

        b = pgcmk_b64url_encode(bin, 3);
        CHECK_STR(b, "-__-");
        free(b);
    }
    /* SHA-256("abc") */
    pgcmk_sha256("abc", 3, md);
    CHECK(md[0] == 0xba && md[1] == 0x78 && md[31] == 0xad);
    /* AES-256-GCM */
    CHECK(pgcmk_aead_seal(key, "aad", 3, "hello", 5, &sealed, &sealed_len) == 0);
    CHECK(sealed_len == 5 + PGCMK_AEAD_OVERHEAD);
    CHECK(pgcmk_aead_open(key, "aad", 3, sealed, sealed_len, &plain, &plain_len) == 0);
    CHECK(plain_len == 5 && memcmp(plain, "hello", 5) == 0);
    free(plain);
    CHECK(pgcmk_aead_open(key, "aae", 3, sealed, sealed_len, &plain, &plain_len) == -1);
    {
        unsigned char other[32] = {9};

        CHECK(pgcmk_aead_open(other, "aad", 3, sealed, sealed_len, &plain, &plain_len) == -1);
    }
    sealed[14] ^= 0x80;
    CHECK(pgcmk_aead_open(key, "aad", 3, sealed, sealed_len, &plain, &plain_len) == -1);
    CHECK(pgcmk_aead_open(key, "aad", 3, sealed, 10, &plain, &plain_len) == -1);
    free(sealed);
    test_tls();
    test_rsa();
    return t_done("test_crypto");
}
