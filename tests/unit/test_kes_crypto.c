/* test_kes_crypto.c - KES's key crypto: its own vectors (minio/kes internal/crypto/key_test.go,
 * key-providers.md 5.6), the deterministic encrypt vector, the must-fail cases, the stored
 * value (protobuf and legacy JSON), key names, HChaCha20. */
#include <stdlib.h>
#include <string.h>

#include "kes/store_internal.h"
#include "pgcmk/crypto.h"
#include "pgcmk/kesstore.h"
#include "t.h"

static size_t
b64(const char *s, uint8_t **out)
{
    size_t n = 0;

    *out = NULL;
    if (!s || !*s)
        return 0;
    if (pgcmk_b64_decode(s, strlen(s), out, &n) != 0) {
        fprintf(stderr, "bad base64 in test: %s\n", s);
        exit(2);
    }
    return n;
}

static void
mkkey(struct pgcmk_kes_key *k, enum pgcmk_kes_cipher c, const char *key_b64)
{
    uint8_t *raw;
    size_t n = b64(key_b64, &raw);
    struct pgcmk_err err;

    CHECK(pgcmk_kes_key_import(k, "k", c, raw, n, "", &err) == 0);
    free(raw);
}

static const char zero_key[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
static const char k6[] = "dDHbTWgo+Yh3u804SYB5OyVMy6RiLeJYBQth1f6KlEU=";

struct dvec {
    enum pgcmk_kes_cipher c;
    const char *key, *pt, *ct, *aad;
    int raw_is_b64; /* ct is base64 of the binary (or msgpack) form, else the JSON text */
    int fail;
};

static const struct dvec dvecs[] = {
    /* 0 */ {PGCMK_KES_AES256, zero_key, "AAAAAAAAAAAAAAAAAAAAAA==",
             "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\",\"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":"
             "\"gu0mGwUkwcvMEoi5\",\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=\"}",
             NULL, 0, 0},
    /* 1 */
    {PGCMK_KES_CHACHA20, zero_key, "AAAAAAAAAAAAAAAAAAAAAA==",
     "{\"aead\":\"ChaCha20Poly1305\",\"iv\":\"s3fSZ6vk5m+DfQA8yZWeUg==\",\"nonce\":"
     "\"8/kHMnCMs3h9NZ2a\",\"bytes\":\"cw22HjLq/4cx8507SW4hhSrYbDiMuRao4b5+GE+XfbE=\"}",
     NULL, 0, 0},
    /* 2 */
    {PGCMK_KES_CHACHA20, zero_key, "AAAAAAAAAAAAAAAAAAAAAA==",
     "{\"aead\":\"ChaCha20Poly1305\",\"id\":\"66687aadf862bd776c8fc18b8e9f8e20\",\"iv\":"
     "\"EC0eZp7Pqt+LnkOae5xaAg==\",\"nonce\":\"X1ejXKmH/ugFZPkk\",\"bytes\":"
     "\"wIGBTDs6aOvsqJfekZ0PYRT/OHyFX2TXqeNwl1SLXOI=\"}",
     NULL, 0, 0},
    /* 3 msgpack */
    {PGCMK_KES_AES256, zero_key, "AAAAAAAAAAAAAAAAAAAAAA==",
     "lbFBRVMyNTYtR0NNX1NIQTI1NtkgNjY2ODdhYWRmODYyYmQ3NzZjOGZjMThiOGU5ZjhlMjDEEExv7LAd4oz0SaHZrX5L"
     "BufEDEKME1ow1CDfUFrqv8QgJuy7Sw+jVqz99TK1HV851LT3K4mwwDv46TB2ngWkAJQ=",
     NULL, 1, 0},
    /* 4 msgpack */
    {PGCMK_KES_CHACHA20, zero_key, "AAAAAAAAAAAAAAAAAAAAAA==",
     "lbJYQ0hBQ0hBMjAtUE9MWTEzMDXZIDY2Njg3YWFkZjg2MmJkNzc2YzhmYzE4YjhlOWY4ZTIwxBBAr+aptD4x2+qfOhiE"
     "rbnkxAxYs8RmNC1JJXD1hiHEIJ2KqM0jjkME7ndx8nyVseesN83Np0rM5ejVUun+fNFu",
     NULL, 1, 0},
    /* 5 */
    {PGCMK_KES_AES256, zero_key, "AAAAAAAAAAAAAAAAAAAAAA==",
     "zwdDgHeRlIFRnJ7+DIhs/ka7GFK2CFSfDELqg1VCyTQzZ58o7MAdupMLk3ZjlMo2ZUDwldL2o41nAWDc", NULL, 1,
     0},
    /* 6 */
    {PGCMK_KES_AES256, k6, "CLcJoykFCWZDkEIiUq9bJRqwCwW9ZDvdgu8EMA==",
     "s2gmfQHeGdlyL8x1yEWSACUV3GrSoz3t160hugMgzKWgyqesXDVUJ5Dw5Mt076rR1PNiU9X4YjLH14D8a81t2r2xsz4g"
     "VZac",
     "AAAAAAAAAAAAAAAAAAAAAA==", 1, 0},
    /* 7 */
    {PGCMK_KES_CHACHA20, k6, "CLcJoykFCWZDkEIiUq9bJRqwCwW9ZDvdgu8EMA==",
     "gO4woRIswAJdjUjW7z2ApsSQxJlwB24yjLrmH4eI7sB0uh5nfEJfk9ybTPFft5FRFaZCVBmzhx7OJs9n0WWtxH3sySIx"
     "ecIK",
     "AAAAAAAAAAAAAAAAAAAAAA==", 1, 0},
    /* 8 invalid algorithm */
    {PGCMK_KES_AES256, zero_key, NULL,
     "{\"aead\":\"AES-256-GCM\",\"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":\"gu0mGwUkwcvMEoi5\","
     "\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=\"}",
     NULL, 0, 1},
    /* 9 invalid IV length */
    {PGCMK_KES_AES256, zero_key, NULL,
     "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\",\"iv\":\"EjOY4JKqjIrPmQ5z1KSR8zlhggY=\",\"nonce\":"
     "\"gu0mGwUkwcvMEoi5\",\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=\"}",
     NULL, 0, 1},
    /* 10 invalid nonce length */
    {PGCMK_KES_CHACHA20, zero_key, NULL,
     "{\"aead\":\"ChaCha20Poly1305\",\"iv\":\"s3fSZ6vk5m+DfQA8yZWeUg==\",\"nonce\":\"SXAbms731/"
     "c=\",\"bytes\":\"cw22HjLq/4cx8507SW4hhSrYbDiMuRao4b5+GE+XfbE=\"}",
     NULL, 0, 1},
    /* 11 invalid nonce length */
    {PGCMK_KES_AES256, zero_key, NULL,
     "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\",\"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":"
     "\"efY+4kYF9n8=\",\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=\"}",
     NULL, 0, 1},
    /* 12 not authentic */
    {PGCMK_KES_AES256, zero_key, NULL,
     "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\",\"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":"
     "\"gu0mGwUkwcvMEoi5\",\"bytes\":\"QTza1g5oX3f9cGJMbY1xJwWPj1F7R2VnNl6XpFKYQy0=\"}",
     NULL, 0, 1},
    /* 13 not authentic */
    {PGCMK_KES_CHACHA20, zero_key, NULL,
     "{\"aead\":\"ChaCha20Poly1305\",\"iv\":\"s3fSZ6vk5m+DfQA8yZWeUg==\",\"nonce\":"
     "\"8/kHMnCMs3h9NZ2a\",\"bytes\":\"TTi8pkO+Jh1JWAHvPxZeUk/iVoBPUCE4ZSVGBy3fW2s=\"}",
     NULL, 0, 1},
    /* 14 invalid JSON */
    {PGCMK_KES_AES256, zero_key, NULL,
     "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\" \"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":"
     "\"gu0mGwUkwcvMEoi5\",\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=\"}",
     NULL, 0, 1},
};

static void
test_decrypt_vectors(void)
{
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(dvecs); i++) {
        const struct dvec *v = &dvecs[i];
        struct pgcmk_kes_key k;
        struct pgcmk_err err;
        uint8_t *ct, *aad, *pt = NULL;
        size_t ct_len, aad_len, pt_len = 0;
        int rc;

        mkkey(&k, v->c, v->key);
        if (v->raw_is_b64) {
            ct_len = b64(v->ct, &ct);
        } else {
            ct = (uint8_t *)pgcmk_xstrdup(v->ct);
            ct_len = strlen(v->ct);
        }
        aad_len = b64(v->aad, &aad);
        pgcmk_err_clear(&err);
        rc = pgcmk_kes_decrypt(&k, ct, ct_len, aad, aad_len, &pt, &pt_len, &err);
        if (v->fail) {
            CHECK(rc != 0);
            CHECK(err.code == PGCMK_E_KES_NOT_AUTHENTIC);
            CHECK_STR(err.message, "decryption failed: ciphertext is not authentic");
            if (rc == 0)
                fprintf(stderr, "vector %zu decrypted\n", i);
        } else {
            CHECK(rc == 0);
            if (rc == 0) {
                char *got = pgcmk_b64_encode(pt, pt_len);
                CHECK_STR(got, v->pt);
                free(got);
            } else {
                fprintf(stderr, "vector %zu: %s\n", i, err.message);
            }
        }
        pgcmk_secret_free(pt, pt_len);
        free(ct);
        free(aad);
    }
}

static void
seq(uint8_t *b, size_t n, uint8_t start)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(start + i);
}

/* key-providers.md 5.6: K = 00..1f, iv = 40..4f, nonce = 60..6b, pt = 32 x aa. */
static void
test_encrypt_vector(void)
{
    struct pgcmk_kes_key k;
    struct pgcmk_err err;
    uint8_t key[32], iv[16], nonce[12], pt[32], *ct = NULL, *back = NULL;
    size_t ct_len = 0, back_len = 0;
    const char *ctx = "{\"bucket\":\"b\"}";
    char *got;

    seq(key, 32, 0);
    seq(iv, 16, 0x40);
    seq(nonce, 12, 0x60);
    memset(pt, 0xaa, sizeof(pt));
    CHECK(pgcmk_kes_key_import(&k, "k", PGCMK_KES_AES256, key, 32, "", &err) == 0);
    CHECK(pgcmk_kes_encrypt_with(&k, pt, 32, (const uint8_t *)ctx, strlen(ctx), iv, nonce, &ct,
                                 &ct_len, &err) == 0);
    CHECK(ct_len == 76);
    got = pgcmk_b64_encode(ct, ct_len);
    CHECK_STR(got,
              "QaUwED7lEGqjswtVqyKR2+U4sn088BEvm3leg0zt58IKAUgdn7Jq+GdMLUZPRMGxQEFCQ0RFRkdISUpLT"
              "E1OT2BhYmNkZWZnaGlqaw==");
    free(got);
    CHECK(pgcmk_kes_decrypt(&k, ct, ct_len, (const uint8_t *)ctx, strlen(ctx), &back, &back_len,
                            &err) == 0);
    CHECK(back_len == 32 && back && memcmp(back, pt, 32) == 0);
    pgcmk_secret_free(back, back_len);
    /* the wrong context, a flipped byte: not authentic */
    CHECK(pgcmk_kes_decrypt(&k, ct, ct_len, NULL, 0, &back, &back_len, &err) != 0);
    CHECK(err.code == PGCMK_E_KES_NOT_AUTHENTIC);
    ct[3] ^= 1;
    CHECK(pgcmk_kes_decrypt(&k, ct, ct_len, (const uint8_t *)ctx, strlen(ctx), &back, &back_len,
                            &err) != 0);
    free(ct);
    CHECK(pgcmk_kes_encrypt_with(&k, pt, 32, NULL, 0, iv, nonce, &ct, &ct_len, &err) == 0);
    got = pgcmk_b64_encode(ct, ct_len);
    CHECK_STR(got,
              "QaUwED7lEGqjswtVqyKR2+U4sn088BEvm3leg0zt58KDHcqstz/zevTLQM5XufRdQEFCQ0RFRkdISUpLT"
              "E1OT2BhYmNkZWZnaGlqaw==");
    free(got);
    free(ct);
    /* too short: <= 28 bytes, 28 + 15 */
    CHECK(pgcmk_kes_decrypt(&k, pt, 28, NULL, 0, &back, &back_len, &err) != 0);
    CHECK(pgcmk_kes_decrypt(&k, pt, 0, NULL, 0, &back, &back_len, &err) != 0);
}

/* Random encrypt/decrypt round trips, both ciphers, with and without context. */
static void
test_round_trips(void)
{
    for (int c = 0; c < 2; c++) {
        struct pgcmk_kes_key k;
        struct pgcmk_err err;
        uint8_t *ct = NULL, *pt = NULL;
        size_t ct_len = 0, pt_len = 0;

        CHECK(pgcmk_kes_key_new(&k, "rt", (enum pgcmk_kes_cipher)c, "id", &err) == 0);
        CHECK(k.has_hmac == 1);
        CHECK(pgcmk_kes_encrypt(&k, (const uint8_t *)"hello", 5, (const uint8_t *)"ctx", 3, &ct,
                                &ct_len, &err) == 0);
        CHECK(ct_len == 5 + 44);
        CHECK(pgcmk_kes_decrypt(&k, ct, ct_len, (const uint8_t *)"ctx", 3, &pt, &pt_len, &err) ==
              0);
        CHECK(pt_len == 5 && memcmp(pt, "hello", 5) == 0);
        pgcmk_secret_free(pt, pt_len);
        CHECK(pgcmk_kes_decrypt(&k, ct, ct_len, (const uint8_t *)"ctX", 3, &pt, &pt_len, &err) !=
              0);
        free(ct);
        /* the empty plaintext */
        CHECK(pgcmk_kes_encrypt(&k, NULL, 0, NULL, 0, &ct, &ct_len, &err) == 0);
        CHECK(ct_len == 44);
        CHECK(pgcmk_kes_decrypt(&k, ct, ct_len, NULL, 0, &pt, &pt_len, &err) == 0);
        CHECK(pt_len == 0);
        pgcmk_secret_free(pt, 1);
        free(ct);
    }
}

/* draft-irtf-cfrg-xchacha-03 section 2.2.1. */
static void
test_hchacha(void)
{
    uint8_t key[32], nonce[16] = {0, 0, 0, 0x09, 0, 0, 0, 0x4a, 0, 0, 0, 0, 0x31, 0x41, 0x59, 0x27};
    uint8_t out[32];
    char *got;

    seq(key, 32, 0);
    pgcmk_kes_hchacha20(key, nonce, out);
    got = pgcmk_b64_encode(out, 32);
    /* 82413b42 27b27bfe d30e4250 8a877d73 a0f9e4d5 8a74a853 c12ec413 26d3ecdc */
    {
        static const uint8_t want[32] = {0x82, 0x41, 0x3b, 0x42, 0x27, 0xb2, 0x7b, 0xfe,
                                         0xd3, 0x0e, 0x42, 0x50, 0x8a, 0x87, 0x7d, 0x73,
                                         0xa0, 0xf9, 0xe4, 0xd5, 0x8a, 0x74, 0xa8, 0x53,
                                         0xc1, 0x2e, 0xc4, 0x13, 0x26, 0xd3, 0xec, 0xdc};
        CHECK(memcmp(out, want, 32) == 0);
    }
    free(got);
}

static void
test_hmac(void)
{
    struct pgcmk_kes_key k;
    struct pgcmk_err err;
    uint8_t a[32], b[32];

    CHECK(pgcmk_kes_key_new(&k, "h", PGCMK_KES_AES256, "", &err) == 0);
    CHECK(pgcmk_kes_hmac(&k, (const uint8_t *)"m", 1, a, &err) == 0);
    CHECK(pgcmk_kes_hmac(&k, (const uint8_t *)"m", 1, b, &err) == 0);
    CHECK(memcmp(a, b, 32) == 0);
    CHECK(pgcmk_kes_hmac(&k, (const uint8_t *)"n", 1, b, &err) == 0);
    CHECK(memcmp(a, b, 32) != 0);
    k.has_hmac = 0;
    CHECK(pgcmk_kes_hmac(&k, (const uint8_t *)"m", 1, a, &err) != 0);
    CHECK(err.code == PGCMK_E_KES_NO_HMAC && pgcmk_err_status(err.code) == 409);
}

/* key_test.go parseKeyVersionTests and encode round trips. */
static void
test_key_values(void)
{
    struct pgcmk_kes_key k, k2;
    struct pgcmk_err err;
    char *enc, *s;
    const char *j;
    const char *pbv = "CiQKIMiHG7XrN94FuwblJJor4f7f6rbqAl7DwsLaiIoyz0D2EAESJAognLXl4yqa4cjZTcSbsU6s"
                      "NnN8kP9ARWkXwa2"
                      "0YQZa9HgQARoMCNithK0GEID67qYDIkAzZWNmY2RmMzhmY2JlMTQxYWUyNmExMDMwZjgxZTk2Yjc"
                      "1MzM2NWE0Njc2MG"
                      "FlNmI1Nzg2OThhOTdjNTlmZDIy";
    static const char *bad[] = {
        "\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
        "{bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
        "{\"bytes\"\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
        "\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"",
        "{\"bytes\":\"AAAA\"}",
        "{\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"algorithm\":\"DES\"}",
        "",
        "CiQKIMiH",
    };

    CHECK(pgcmk_kes_key_decode("k", pbv, strlen(pbv), &k, &err) == 0);
    s = pgcmk_b64_encode(k.secret, 32);
    CHECK_STR(s, "yIcbtes33gW7BuUkmivh/t/qtuoCXsPCwtqIijLPQPY=");
    free(s);
    s = pgcmk_b64_encode(k.hmac_key, 32);
    CHECK_STR(s, "nLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20YQZa9Hg=");
    free(s);
    CHECK(k.has_hmac == 1 && k.cipher == PGCMK_KES_AES256);
    CHECK_STR(k.created_by, "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22");
    /* 2024-01-12T11:39:20.886816+01:00 = 10:39:20.886 UTC */
    CHECK(k.created_ms == 1705055960886LL);
    CHECK_STR(k.name, "k");
    /* our encoding of that key is KES's, byte for byte, but for the sub-millisecond part */
    enc = pgcmk_kes_key_encode(&k);
    CHECK(pgcmk_kes_key_decode("k", enc, strlen(enc), &k2, &err) == 0);
    CHECK(memcmp(k.secret, k2.secret, 32) == 0 && memcmp(k.hmac_key, k2.hmac_key, 32) == 0);
    CHECK(k2.created_ms == k.created_ms && strcmp(k2.created_by, k.created_by) == 0);
    CHECK(strncmp(enc, pbv, 104) == 0); /* the keys; the timestamp differs below 1 ms */
    pgcmk_secret_free(enc, strlen(enc));

    /* ChaCha20 round trip, empty creator */
    CHECK(pgcmk_kes_key_new(&k, "c", PGCMK_KES_CHACHA20, "", &err) == 0);
    enc = pgcmk_kes_key_encode(&k);
    CHECK(pgcmk_kes_key_decode("c", enc, strlen(enc), &k2, &err) == 0);
    CHECK(k2.cipher == PGCMK_KES_CHACHA20 && memcmp(k.secret, k2.secret, 32) == 0);
    CHECK(k2.created_by[0] == '\0' && k2.created_ms == k.created_ms);
    pgcmk_secret_free(enc, strlen(enc));

    /* legacy JSON values */
    j = "{\"bytes\":\"J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=\",\"algorithm\":\"XCHACHA20-"
        "POLY1305\",\"created_at\":\"2009-11-10T23:00:00Z\",\"created_by\":"
        "\"189d9de5331e3ee8abe9e4bd40d474ad621d79ccf83a711f6ac68050eb15a52a\"}";
    CHECK(pgcmk_kes_key_decode("j", j, strlen(j), &k, &err) == 0);
    CHECK(k.cipher == PGCMK_KES_CHACHA20 && k.has_hmac == 0);
    CHECK(k.created_ms == 1257894000000LL);
    CHECK_STR(k.created_by, "189d9de5331e3ee8abe9e4bd40d474ad621d79ccf83a711f6ac68050eb15a52a");
    j = "{\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=\"}";
    CHECK(pgcmk_kes_key_decode("j", j, strlen(j), &k, &err) == 0);
    CHECK(k.cipher == PGCMK_KES_AES256 && k.secret[31] == 1 && k.created_ms == 0);
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(bad); i++) {
        CHECK(pgcmk_kes_key_decode("b", bad[i], strlen(bad[i]), &k, &err) != 0);
        CHECK(err.code == PGCMK_E_KES_KEY_INVALID);
    }
}

static void
test_names(void)
{
    char long_name[90];

    CHECK(pgcmk_kes_name_valid("my-key-1"));
    CHECK(pgcmk_kes_name_valid("A_b-9"));
    CHECK(pgcmk_kes_name_valid("__"));
    CHECK(!pgcmk_kes_name_valid(""));
    CHECK(!pgcmk_kes_name_valid("_"));
    CHECK(!pgcmk_kes_name_valid("-a"));
    CHECK(!pgcmk_kes_name_valid("a-"));
    CHECK(!pgcmk_kes_name_valid("a/b"));
    CHECK(!pgcmk_kes_name_valid("a.b"));
    CHECK(!pgcmk_kes_name_valid(NULL));
    memset(long_name, 'a', 80);
    long_name[80] = '\0';
    CHECK(pgcmk_kes_name_valid(long_name));
    long_name[80] = 'a';
    long_name[81] = '\0';
    CHECK(!pgcmk_kes_name_valid(long_name));
}

static void
test_import(void)
{
    struct pgcmk_kes_key k;
    struct pgcmk_err err;
    uint8_t b[33] = {0};
    enum pgcmk_kes_cipher c;

    CHECK(pgcmk_kes_key_import(&k, "i", PGCMK_KES_AES256, b, 31, "", &err) != 0);
    CHECK(err.code == PGCMK_E_KES_KEY_INVALID);
    CHECK(pgcmk_kes_key_import(&k, "i", PGCMK_KES_AES256, b, 33, "", &err) != 0);
    CHECK(pgcmk_kes_cipher_parse("AES256", &c) == 0 && c == PGCMK_KES_AES256);
    CHECK(pgcmk_kes_cipher_parse("XCHACHA20-POLY1305", &c) == 0 && c == PGCMK_KES_CHACHA20);
    CHECK(pgcmk_kes_cipher_parse("aes256", &c) != 0);
    CHECK_STR(pgcmk_kes_cipher_name(PGCMK_KES_CHACHA20), "ChaCha20");
}

int
main(void)
{
    test_decrypt_vectors();
    test_encrypt_vector();
    test_round_trips();
    test_hchacha();
    test_hmac();
    test_key_values();
    test_names();
    test_import();
    return t_done("test_kes_crypto");
}
