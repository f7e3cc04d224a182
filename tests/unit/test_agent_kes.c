/* test_agent_kes.c - the agent's KES client (include/pgcmk/kesc.h): API keys give the identities
 * of key-providers.md 5.3 (kms-go's apikey_test.go and server_test.go pairs), the certificate made
 * from an API key is kms-go's (self-signed Ed25519, CN = identity, EKU clientAuth, 90 days, its
 * SPKI hash = the identity), KES's key name rule, the request URLs and bodies (5.1: POST
 * /v1/key/{generate,decrypt}/{key}, context base64), the answer readers, the classification of
 * each status, and a closed port as an outage without a server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pgcmk/agent.h"
#include "pgcmk/core.h"
#include "pgcmk/kesc.h"

#include "t.h"

#define KEY1 "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs"
#define ID1  "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"
#define KEY2 "kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc"
#define ID2  "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"

static void
test_api_keys(void)
{
    char id[PGCMK_KESC_ID_LEN];
    unsigned char seed[32];

    CHECK(pgcmk_kesc_api_key_identity(KEY1, id) == 0);
    CHECK_STR(id, ID1);
    CHECK(pgcmk_kesc_api_key_identity(KEY2, id) == 0);
    CHECK_STR(id, ID2);
    CHECK(pgcmk_kesc_api_key_seed(KEY1, seed) == 0);
    /* not API keys: no prefix, wrong type byte, wrong length, not base64 */
    CHECK(pgcmk_kesc_api_key_identity("AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs", id) == -1);
    CHECK(pgcmk_kesc_api_key_identity("kes:v1:AWaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs", id) ==
          -1);
    CHECK(pgcmk_kesc_api_key_identity("kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8A==", id) ==
          -1);
    CHECK(pgcmk_kesc_api_key_identity("kes:v1:!!!!", id) == -1);
    CHECK(pgcmk_kesc_api_key_identity(NULL, id) == -1);
}

static void
test_certificate(void)
{
    char *cert = NULL, *key = NULL, cn[80] = "";
    time_t now = time(NULL);
    BIO *b;
    X509 *x;
    EVP_PKEY *pk;
    unsigned char *der = NULL, h[32];
    char hex[65];
    int n;
    EXTENDED_KEY_USAGE *eku;
    ASN1_TIME *t90;
    int day = -1, sec = -1;

    CHECK(pgcmk_kesc_api_key_cert(KEY2, (int64_t)now, &cert, &key) == 0);
    CHECK(cert && strstr(cert, "-----BEGIN CERTIFICATE-----"));
    CHECK(key && strstr(key, "-----BEGIN PRIVATE KEY-----"));
    b = BIO_new_mem_buf(cert, -1);
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    CHECK(x != NULL);
    if (!x)
        return;
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
    CHECK_STR(cn, ID2);
    CHECK(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0);
    pk = X509_get0_pubkey(x);
    CHECK(pk && EVP_PKEY_id(pk) == EVP_PKEY_ED25519);
    CHECK(X509_verify(x, pk) == 1); /* self-signed */
    n = i2d_PUBKEY(pk, &der);
    CHECK(n == 44);
    EVP_Digest(der, (size_t)n, h, NULL, EVP_sha256(), NULL);
    OPENSSL_free(der);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    CHECK_STR(hex, ID2); /* what a KES server computes from the handshake */
    eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
    CHECK(eku && sk_ASN1_OBJECT_num(eku) == 1 &&
          OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)) == NID_client_auth);
    EXTENDED_KEY_USAGE_free(eku);
    CHECK((X509_get_extension_flags(x) & EXFLAG_CA) == 0);
    t90 = ASN1_TIME_set(NULL, now + 90L * 86400);
    CHECK(ASN1_TIME_diff(&day, &sec, X509_get0_notAfter(x), t90) && day == 0 && sec == 0);
    ASN1_TIME_free(t90);
    X509_free(x);
    free(cert);
    pgcmk_secret_free(key, strlen(key));
    CHECK(pgcmk_kesc_api_key_cert("kes:v1:nope", (int64_t)now, &cert, &key) == -1);
    CHECK(cert == NULL && key == NULL);
}

static void
test_names_urls_bodies(void)
{
    struct pgcmk_kesc_target t = {"https://127.0.0.1:7373/", KEY1, NULL, NULL, NULL, 0, 0, -1};
    char *s;

    CHECK(pgcmk_kesc_key_name_ok("my-key-1"));
    CHECK(pgcmk_kesc_key_name_ok("A_b-9"));
    CHECK(pgcmk_kesc_key_name_ok("x"));
    CHECK(!pgcmk_kesc_key_name_ok(""));
    CHECK(!pgcmk_kesc_key_name_ok("_"));
    CHECK(!pgcmk_kesc_key_name_ok("-key"));
    CHECK(!pgcmk_kesc_key_name_ok("key-"));
    CHECK(!pgcmk_kesc_key_name_ok("a/b"));
    CHECK(!pgcmk_kesc_key_name_ok("a.b"));
    CHECK(!pgcmk_kesc_key_name_ok(NULL));
    {
        char n81[82];

        memset(n81, 'k', 81);
        n81[81] = '\0';
        CHECK(!pgcmk_kesc_key_name_ok(n81));
        n81[80] = '\0';
        CHECK(pgcmk_kesc_key_name_ok(n81));
    }
    s = pgcmk_kesc_url(&t, "generate", "my-key-1");
    CHECK_STR(s, "https://127.0.0.1:7373/v1/key/generate/my-key-1");
    free(s);
    s = pgcmk_kesc_generate_body("/emulator/tde/databases/db1");
    CHECK_STR(s, "{\"context\":\"L2VtdWxhdG9yL3RkZS9kYXRhYmFzZXMvZGIx\"}");
    free(s);
    s = pgcmk_kesc_decrypt_body((const unsigned char *)"\x00\x01\xff", 3, "db");
    CHECK_STR(s, "{\"ciphertext\":\"AAH/\",\"context\":\"ZGI=\"}");
    free(s);
}

#define PT32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static void
test_parse(void)
{
    unsigned char dek[32], *ct = NULL;
    size_t cl = 0, pl = 0;
    char msg[64];
    const char *gen = "{\"plaintext\":\"" PT32 "\",\"ciphertext\":\"AAH/\"}";

    CHECK(pgcmk_kesc_parse_generate(gen, strlen(gen), dek, &ct, &cl) == 0);
    CHECK(dek[0] == 0 && dek[31] == 31 && cl == 3 && ct && ct[2] == 0xff);
    free(ct);
    /* a 16-byte plaintext, no ciphertext, not JSON, duplicate keys */
    gen = "{\"plaintext\":\"AAECAwQFBgcICQoLDA0ODw==\",\"ciphertext\":\"AAH/\"}";
    CHECK(pgcmk_kesc_parse_generate(gen, strlen(gen), dek, &ct, &cl) == -1 && ct == NULL);
    gen = "{\"plaintext\":\"" PT32 "\"}";
    CHECK(pgcmk_kesc_parse_generate(gen, strlen(gen), dek, &ct, &cl) == -1);
    CHECK(pgcmk_kesc_parse_generate("[]", 2, dek, &ct, &cl) == -1);
    gen = "{\"plaintext\":\"" PT32 "\",\"plaintext\":\"" PT32 "\",\"ciphertext\":\"AA==\"}";
    CHECK(pgcmk_kesc_parse_generate(gen, strlen(gen), dek, &ct, &cl) == -1);

    gen = "{\"plaintext\":\"" PT32 "\"}";
    CHECK(pgcmk_kesc_parse_plaintext(gen, strlen(gen), dek, &pl) == 0 && pl == 32);
    gen = "{\"plaintext\":\"AAEC\"}";
    CHECK(pgcmk_kesc_parse_plaintext(gen, strlen(gen), dek, &pl) == 1 && pl == 3);
    gen = "{\"plaintext\":\"**\"}";
    CHECK(pgcmk_kesc_parse_plaintext(gen, strlen(gen), dek, &pl) == -1);

    gen = "{\"message\":\"key does not exist\"}";
    pgcmk_kesc_parse_message(gen, strlen(gen), msg, sizeof(msg));
    CHECK_STR(msg, "key does not exist");
    gen = "{\"error\":\"not authorized:\\n insufficient permissions\"}";
    pgcmk_kesc_parse_message(gen, strlen(gen), msg, sizeof(msg));
    CHECK_STR(msg, "not authorized:  insufficient permissions");
    pgcmk_kesc_parse_message("oops", 4, msg, sizeof(msg));
    CHECK_STR(msg, "");
}

static void
test_classify(void)
{
    const char *na = "{\"message\":\"decryption failed: ciphertext is not authentic\"}";
    const char *bad = "{\"message\":\"invalid key name\"}";
    int o;

    CHECK(pgcmk_kesc_classify(200, "", 0, &o) == PGCMK_E_OK && !o);
    CHECK(pgcmk_kesc_classify(403, "", 0, &o) == PGCMK_E_KES_PERMISSION_DENIED && !o);
    CHECK(pgcmk_kesc_classify(404, "", 0, &o) == PGCMK_E_KES_KEY_NOT_FOUND && !o);
    CHECK(pgcmk_kesc_classify(502, "", 0, &o) == PGCMK_E_KES_KEYSTORE && !o);
    CHECK(pgcmk_kesc_classify(400, na, strlen(na), &o) == PGCMK_E_KES_KEY_MISMATCH && !o);
    CHECK(pgcmk_kesc_classify(400, bad, strlen(bad), &o) == PGCMK_E_KES_REQUEST_REFUSED && !o);
    CHECK(pgcmk_kesc_classify(500, "", 0, &o) == PGCMK_E_KES_SERVER_UNREACHABLE && o);
    CHECK(pgcmk_kesc_classify(503, "", 0, &o) == PGCMK_E_KES_SERVER_UNREACHABLE && o);
    CHECK(pgcmk_kesc_classify(429, "", 0, &o) == PGCMK_E_KES_SERVER_UNREACHABLE && o);
}

static void
test_calls_without_server(void)
{
    struct pgcmk_kesc_target t = {"https://127.0.0.1:1", KEY1, NULL, NULL, NULL, 0, 2000, 0};
    struct pgcmk_agent_result res;
    unsigned char *w = NULL;
    size_t wl = 0;
    char alg[24];

    /* a closed port: an outage, the API key never in the message */
    CHECK(pgcmk_agent_kes_new_dek("db1", &t, "my-key-1", 0, &w, &wl, alg, &res) == -1);
    CHECK(res.outage && !res.lost && res.code == PGCMK_E_KES_SERVER_UNREACHABLE);
    CHECK(strstr(res.message, "127.0.0.1:1") != NULL);
    CHECK(strstr(res.message, "AGaV6") == NULL);
    CHECK(w == NULL);
    CHECK(pgcmk_agent_kes_check("db1", &t, "my-key-1", (const unsigned char *)"x", 1, &res) == -1);
    CHECK(res.outage && res.code == PGCMK_E_KES_SERVER_UNREACHABLE);
    /* a bad key name or API key: a loss before anything is sent */
    CHECK(pgcmk_agent_kes_check("db1", &t, "a/b", (const unsigned char *)"x", 1, &res) == -1);
    CHECK(res.lost && res.code == PGCMK_E_KES_PROVIDER_INVALID);
    t.api_key = "kes:v1:bad";
    CHECK(pgcmk_agent_kes_check("db1", &t, "k", (const unsigned char *)"x", 1, &res) == -1);
    CHECK(res.lost && res.code == PGCMK_E_KES_PROVIDER_INVALID);
    CHECK(strstr(res.message, "kes:v1:bad") == NULL);
    /* a certificate file that is not there */
    t.api_key = NULL;
    t.cert_path = "/nonexistent/client.crt";
    t.key_path = "/nonexistent/client.key";
    CHECK(pgcmk_agent_kes_check("db1", &t, "k", (const unsigned char *)"x", 1, &res) == -1);
    CHECK(res.lost && res.code == PGCMK_E_KES_PROVIDER_INVALID);
    CHECK(strstr(res.message, "/nonexistent/client.crt") != NULL);
}

int
main(void)
{
    test_api_keys();
    test_certificate();
    test_names_urls_bodies();
    test_parse();
    test_classify();
    test_calls_without_server();
    return t_done("test_agent_kes");
}
