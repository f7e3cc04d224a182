/* crypto.c - KES's key crypto (minio/kes internal/crypto/key.go, ciphertext.go): a key is a
 * 32-byte secret of cipher AES256 or ChaCha20 plus a 32-byte HMAC key. Encrypt draws iv[16] and
 * nonce[12]; the AEAD key is HMAC-SHA256(secret, iv) for AES256 (AES-256-GCM) or
 * HChaCha20(secret, iv) for ChaCha20 (ChaCha20-Poly1305); the context is the AAD; the output is
 * sealed (ct || tag) || iv || nonce. Decrypt also reads the two legacy ciphertext formats (JSON
 * and msgpack). The keystore value is base64(protobuf KeyVersion) as KES writes it; the legacy
 * JSON value {"bytes","algorithm","created_at","created_by"} is read too. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "kes/store_internal.h"
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/kesstore.h"

#define KES_IV    16
#define KES_NONCE 12
#define KES_TAG   16
#define KES_RAND  (KES_IV + KES_NONCE)

static const char not_authentic[] = "decryption failed: ciphertext is not authentic";

void
pgcmk_kes_key_wipe(struct pgcmk_kes_key *k)
{
    if (k)
        OPENSSL_cleanse(k, sizeof(*k));
}

/* auth.go validName: 1-80 of [0-9A-Za-z_-], no leading or trailing '-', not "_" alone. */
int
pgcmk_kes_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > PGCMK_KES_NAME_MAX || name[0] == '-' || name[n - 1] == '-')
        return 0;
    if (n == 1 && name[0] == '_')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

const char *
pgcmk_kes_cipher_name(enum pgcmk_kes_cipher c)
{
    return c == PGCMK_KES_CHACHA20 ? "ChaCha20" : "AES256";
}

int
pgcmk_kes_cipher_parse(const char *s, enum pgcmk_kes_cipher *c)
{
    if (s && (strcmp(s, "AES256") == 0 || strcmp(s, "AES256-GCM_SHA256") == 0)) {
        *c = PGCMK_KES_AES256;
        return 0;
    }
    if (s && (strcmp(s, "ChaCha20") == 0 || strcmp(s, "XCHACHA20-POLY1305") == 0)) {
        *c = PGCMK_KES_CHACHA20;
        return 0;
    }
    return -1;
}

static void
key_init(struct pgcmk_kes_key *k, const char *name, enum pgcmk_kes_cipher cipher,
         const char *created_by)
{
    memset(k, 0, sizeof(*k));
    snprintf(k->name, sizeof(k->name), "%s", name ? name : "");
    k->cipher = cipher;
    k->created_ms = pgcmk_clock_now();
    snprintf(k->created_by, sizeof(k->created_by), "%s", created_by ? created_by : "");
}

int
pgcmk_kes_key_new(struct pgcmk_kes_key *k, const char *name, enum pgcmk_kes_cipher cipher,
                  const char *created_by, struct pgcmk_err *err)
{
    key_init(k, name, cipher, created_by);
    if (pgcmk_random(k->secret, sizeof(k->secret)) != 0 ||
        pgcmk_random(k->hmac_key, sizeof(k->hmac_key)) != 0) {
        pgcmk_kes_key_wipe(k);
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "failed to generate encryption key");
    }
    k->has_hmac = 1;
    return 0;
}

int
pgcmk_kes_key_import(struct pgcmk_kes_key *k, const char *name, enum pgcmk_kes_cipher cipher,
                     const uint8_t *bytes, size_t len, const char *created_by,
                     struct pgcmk_err *err)
{
    if (!bytes || len != sizeof(k->secret))
        return pgcmk_err_set(err, PGCMK_E_KES_KEY_INVALID, NULL, "invalid key size for '%s'",
                             pgcmk_kes_cipher_name(cipher));
    key_init(k, name, cipher, created_by);
    memcpy(k->secret, bytes, len);
    if (pgcmk_random(k->hmac_key, sizeof(k->hmac_key)) != 0) {
        pgcmk_kes_key_wipe(k);
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "failed to create key");
    }
    k->has_hmac = 1;
    return 0;
}

/* ---- HChaCha20 (draft-irtf-cfrg-xchacha section 2.2) -------------------------------------- */

#define ROTL32(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QR(a, b, c, d)                                                                             \
    do {                                                                                           \
        a += b;                                                                                    \
        d ^= a;                                                                                    \
        d = ROTL32(d, 16);                                                                         \
        c += d;                                                                                    \
        b ^= c;                                                                                    \
        b = ROTL32(b, 12);                                                                         \
        a += b;                                                                                    \
        d ^= a;                                                                                    \
        d = ROTL32(d, 8);                                                                          \
        c += d;                                                                                    \
        b ^= c;                                                                                    \
        b = ROTL32(b, 7);                                                                          \
    } while (0)

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void
pgcmk_kes_hchacha20(const uint8_t key[32], const uint8_t nonce[16], uint8_t out[32])
{
    uint32_t x[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};

    for (int i = 0; i < 8; i++)
        x[4 + i] = le32(key + 4 * i);
    for (int i = 0; i < 4; i++)
        x[12 + i] = le32(nonce + 4 * i);
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    static const int pick[8] = {0, 1, 2, 3, 12, 13, 14, 15};
    for (int i = 0; i < 8; i++) {
        uint32_t v = x[pick[i]];
        out[4 * i] = (uint8_t)v;
        out[4 * i + 1] = (uint8_t)(v >> 8);
        out[4 * i + 2] = (uint8_t)(v >> 16);
        out[4 * i + 3] = (uint8_t)(v >> 24);
    }
    OPENSSL_cleanse(x, sizeof(x));
}

/* ---- the AEADs ----------------------------------------------------------------------------- */

static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac_mac;
static EVP_CIPHER *aes_gcm, *chacha_poly;

static void
fetch_algs(void)
{
    hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    aes_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    chacha_poly = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
}

static int
hmac_sha256(const uint8_t key[32], const uint8_t *msg, size_t len, uint8_t out[32])
{
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC_CTX *c;
    size_t n = 0;
    int rc = -1;

    pthread_once(&fetch_once, fetch_algs);
    if (!hmac_mac || !(c = EVP_MAC_CTX_new(hmac_mac)))
        return -1;
    if (EVP_MAC_init(c, key, 32, params) == 1 && EVP_MAC_update(c, msg, len) == 1 &&
        EVP_MAC_final(c, out, &n, 32) == 1 && n == 32)
        rc = 0;
    EVP_MAC_CTX_free(c);
    return rc;
}

/* The per-message AEAD key of key.go: HMAC-SHA256(secret, iv) or HChaCha20(secret, iv). */
static int
derive(const struct pgcmk_kes_key *k, const uint8_t iv[KES_IV], uint8_t out[32])
{
    if (k->cipher == PGCMK_KES_CHACHA20) {
        pgcmk_kes_hchacha20(k->secret, iv, out);
        return 0;
    }
    return hmac_sha256(k->secret, iv, KES_IV, out);
}

/* One AEAD pass: enc = 1 seals in[0..len) into out (len bytes) and writes tag; enc = 0 opens
 * and checks tag. 0 or -1. */
static int
aead(enum pgcmk_kes_cipher cipher, int enc, const uint8_t key[32], const uint8_t nonce[12],
     const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out,
     uint8_t tag[KES_TAG])
{
    const EVP_CIPHER *alg;
    EVP_CIPHER_CTX *c;
    int n = 0, rc = -1;

    pthread_once(&fetch_once, fetch_algs);
    alg = cipher == PGCMK_KES_CHACHA20 ? chacha_poly : aes_gcm;
    if (!alg || len > INT32_MAX || aad_len > INT32_MAX || !(c = EVP_CIPHER_CTX_new()))
        return -1;
    if (EVP_CipherInit_ex2(c, alg, NULL, NULL, enc, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1 ||
        EVP_CipherInit_ex2(c, NULL, key, nonce, enc, NULL) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, KES_TAG, tag) != 1)
        goto out;
    if (aad_len && EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) != 1)
        goto out;
    if (len && EVP_CipherUpdate(c, out, &n, in, (int)len) != 1)
        goto out;
    if (EVP_CipherFinal_ex(c, out + n, &n) != 1)
        goto out;
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, KES_TAG, tag) != 1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int
pgcmk_kes_encrypt_with(const struct pgcmk_kes_key *k, const uint8_t *pt, size_t pt_len,
                       const uint8_t *ctx, size_t ctx_len, const uint8_t iv[16],
                       const uint8_t nonce[12], uint8_t **out, size_t *out_len,
                       struct pgcmk_err *err)
{
    uint8_t key[32], *buf;
    size_t n = pt_len + KES_TAG + KES_RAND;

    *out = NULL;
    *out_len = 0;
    if (derive(k, iv, key) != 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "failed to encrypt plaintext");
    buf = pgcmk_xmalloc(n);
    if (aead(k->cipher, 1, key, nonce, ctx, ctx_len, pt, pt_len, buf, buf + pt_len) != 0) {
        OPENSSL_cleanse(key, sizeof(key));
        free(buf);
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "failed to encrypt plaintext");
    }
    OPENSSL_cleanse(key, sizeof(key));
    memcpy(buf + pt_len + KES_TAG, iv, KES_IV);
    memcpy(buf + pt_len + KES_TAG + KES_IV, nonce, KES_NONCE);
    *out = buf;
    *out_len = n;
    return 0;
}

int
pgcmk_kes_encrypt(const struct pgcmk_kes_key *k, const uint8_t *pt, size_t pt_len,
                  const uint8_t *ctx, size_t ctx_len, uint8_t **out, size_t *out_len,
                  struct pgcmk_err *err)
{
    uint8_t rnd[KES_RAND];

    if (pgcmk_random(rnd, sizeof(rnd)) != 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "failed to encrypt plaintext");
    return pgcmk_kes_encrypt_with(k, pt, pt_len, ctx, ctx_len, rnd, rnd + KES_IV, out, out_len,
                                  err);
}

/* ---- legacy ciphertexts (ciphertext.go) ------------------------------------------------------ */

/* A Go []byte field of encoding/json: standard padded base64 (null = empty). */
static int
json_bytes(json_t *v, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    if (json_string_length(v) == 0)
        return 0;
    return pgcmk_b64_decode(json_string_value(v), json_string_length(v), out, len);
}

/* encoding/json matches field names case-insensitively. */
static json_t *
json_field(json_t *o, const char *name)
{
    const char *k;
    json_t *v, *found = NULL;

    json_object_foreach(o, k, v) {
        if (strcasecmp(k, name) == 0)
            found = v;
    }
    return found;
}

int
pgcmk_kes_ct_parse_json(const uint8_t *b, size_t len, uint8_t **flat, size_t *flat_len)
{
    json_t *o = json_loadb((const char *)b, len, JSON_DECODE_ANY, NULL), *alg;
    uint8_t *iv = NULL, *nonce = NULL, *bytes = NULL;
    size_t iv_len, nonce_len, bytes_len;
    int rc = -1;

    if (!json_is_object(o))
        goto out;
    alg = json_field(o, "aead");
    if (alg && !json_is_string(alg) && !json_is_null(alg))
        goto out;
    if (json_bytes(json_field(o, "iv"), &iv, &iv_len) != 0 ||
        json_bytes(json_field(o, "nonce"), &nonce, &nonce_len) != 0 ||
        json_bytes(json_field(o, "bytes"), &bytes, &bytes_len) != 0)
        goto out;
    if (!json_is_string(alg) || (strcmp(json_string_value(alg), "AES-256-GCM-HMAC-SHA-256") != 0 &&
                                 strcmp(json_string_value(alg), "ChaCha20Poly1305") != 0))
        goto out;
    if (iv_len != KES_IV || nonce_len != KES_NONCE)
        goto out;
    *flat_len = bytes_len + KES_RAND;
    *flat = pgcmk_xmalloc(*flat_len);
    if (bytes_len)
        memcpy(*flat, bytes, bytes_len);
    memcpy(*flat + bytes_len, iv, KES_IV);
    memcpy(*flat + bytes_len + KES_IV, nonce, KES_NONCE);
    rc = 0;
out:
    free(iv);
    free(nonce);
    free(bytes);
    json_decref(o);
    return rc;
}

/* msgpack readers of tinylib/msgp: a str (fixstr, str8/16/32) or a bin (bin8/16/32). */
static int
mp_len(const uint8_t **p, const uint8_t *end, int bin, size_t *n)
{
    const uint8_t *q = *p;
    size_t w;

    if (q >= end)
        return -1;
    if (!bin && (*q & 0xe0) == 0xa0) {
        *n = *q & 0x1f;
        *p = q + 1;
        return 0;
    }
    switch (*q) {
    case 0xd9:
    case 0xc4:
        w = 1;
        break;
    case 0xda:
    case 0xc5:
        w = 2;
        break;
    case 0xdb:
    case 0xc6:
        w = 4;
        break;
    default:
        return -1;
    }
    if ((bin && *q < 0xc4) || (!bin && *q > 0xc6 && *q < 0xd9) || (bin && *q > 0xc6))
        return -1;
    if ((size_t)(end - q) < 1 + w)
        return -1;
    *n = 0;
    for (size_t i = 0; i < w; i++)
        *n = *n << 8 | q[1 + i];
    q += 1 + w;
    if ((size_t)(end - q) < *n)
        return -1;
    *p = q;
    return 0;
}

int
pgcmk_kes_ct_parse_msgpack(const uint8_t *b, size_t len, uint8_t **flat, size_t *flat_len)
{
    const uint8_t *p = b, *end = b + len, *alg, *iv, *nonce, *bytes;
    size_t alg_len, id_len, iv_len, nonce_len, bytes_len;
    enum pgcmk_kes_cipher c;
    char name[32];

    if (len < 1 || *p++ != 0x95)
        return -1;
    if (mp_len(&p, end, 0, &alg_len) != 0)
        return -1;
    alg = p;
    p += alg_len;
    if (mp_len(&p, end, 0, &id_len) != 0)
        return -1;
    p += id_len;
    if (mp_len(&p, end, 1, &iv_len) != 0 || iv_len != KES_IV)
        return -1;
    iv = p;
    p += iv_len;
    if (mp_len(&p, end, 1, &nonce_len) != 0 || nonce_len != KES_NONCE)
        return -1;
    nonce = p;
    p += nonce_len;
    if (mp_len(&p, end, 1, &bytes_len) != 0)
        return -1;
    bytes = p;
    p += bytes_len;
    if (p != end || alg_len >= sizeof(name))
        return -1;
    memcpy(name, alg, alg_len);
    name[alg_len] = '\0';
    if (pgcmk_kes_cipher_parse(name, &c) != 0)
        return -1;
    *flat_len = bytes_len + KES_RAND;
    *flat = pgcmk_xmalloc(*flat_len);
    if (bytes_len)
        memcpy(*flat, bytes, bytes_len);
    memcpy(*flat + bytes_len, iv, KES_IV);
    memcpy(*flat + bytes_len + KES_IV, nonce, KES_NONCE);
    return 0;
}

int
pgcmk_kes_decrypt(const struct pgcmk_kes_key *k, const uint8_t *ct, size_t ct_len,
                  const uint8_t *ctx, size_t ctx_len, uint8_t **out, size_t *out_len,
                  struct pgcmk_err *err)
{
    uint8_t *flat = NULL, key[32], *pt;
    size_t sealed;
    int rc;

    *out = NULL;
    *out_len = 0;
    /* parseCiphertext: a legacy form that does not parse is tried as the binary form. */
    if (ct_len && ct[0] == 0x95 && pgcmk_kes_ct_parse_msgpack(ct, ct_len, &flat, &ct_len) == 0)
        ct = flat;
    else if (ct_len && ct[0] == '{' && pgcmk_kes_ct_parse_json(ct, ct_len, &flat, &ct_len) == 0)
        ct = flat;
    if (ct_len < KES_RAND + KES_TAG) {
        free(flat);
        return pgcmk_err_set(err, PGCMK_E_KES_NOT_AUTHENTIC, NULL, not_authentic);
    }
    sealed = ct_len - KES_RAND - KES_TAG;
    if (derive(k, ct + ct_len - KES_RAND, key) != 0) {
        free(flat);
        return pgcmk_err_set(err, PGCMK_E_KES_NOT_AUTHENTIC, NULL, not_authentic);
    }
    pt = pgcmk_xmalloc(sealed ? sealed : 1);
    rc = aead(k->cipher, 0, key, ct + ct_len - KES_NONCE, ctx, ctx_len, ct, sealed, pt,
              (uint8_t *)(uintptr_t)(ct + sealed));
    OPENSSL_cleanse(key, sizeof(key));
    free(flat);
    if (rc != 0) {
        pgcmk_secret_free(pt, sealed ? sealed : 1);
        return pgcmk_err_set(err, PGCMK_E_KES_NOT_AUTHENTIC, NULL, not_authentic);
    }
    *out = pt;
    *out_len = sealed;
    return 0;
}

int
pgcmk_kes_hmac(const struct pgcmk_kes_key *k, const uint8_t *msg, size_t len, uint8_t out[32],
               struct pgcmk_err *err)
{
    if (!k->has_hmac)
        return pgcmk_err_set(err, PGCMK_E_KES_NO_HMAC, NULL, "key does not support HMAC");
    if (hmac_sha256(k->hmac_key, msg, len, out) != 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "failed to compute HMAC");
    return 0;
}

/* ---- the stored value: base64(protobuf KeyVersion) (internal/protobuf/crypto.proto) --------- */

struct pb {
    uint8_t *b;
    size_t n, cap;
};

static void
pb_byte(struct pb *w, uint8_t c)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        uint8_t *nb = pgcmk_xmalloc(cap);
        if (w->n)
            memcpy(nb, w->b, w->n);
        pgcmk_secret_free(w->b, w->cap);
        w->b = nb;
        w->cap = cap;
    }
    w->b[w->n++] = c;
}

static void
pb_varint(struct pb *w, uint64_t v)
{
    while (v >= 0x80) {
        pb_byte(w, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    pb_byte(w, (uint8_t)v);
}

static void
pb_bytes(struct pb *w, unsigned field, const uint8_t *b, size_t n)
{
    pb_varint(w, field << 3 | 2);
    pb_varint(w, n);
    for (size_t i = 0; i < n; i++)
        pb_byte(w, b[i]);
}

/* A nested message {1: bytes key[32], 2: varint type}. */
static void
pb_keymsg(struct pb *w, unsigned field, const uint8_t key[32], unsigned type)
{
    struct pb in = {0};

    pb_bytes(&in, 1, key, 32);
    if (type) {
        pb_varint(&in, 2 << 3 | 0);
        pb_varint(&in, type);
    }
    pb_bytes(w, field, in.b, in.n);
    pgcmk_secret_free(in.b, in.cap);
}

char *
pgcmk_kes_key_encode(const struct pgcmk_kes_key *k)
{
    struct pb w = {0}, ts = {0};
    int64_t sec = k->created_ms >= 0 ? k->created_ms / 1000 : -((-k->created_ms + 999) / 1000);
    int64_t nanos = (k->created_ms - sec * 1000) * 1000000;
    char *out;

    pb_keymsg(&w, 1, k->secret, k->cipher == PGCMK_KES_CHACHA20 ? 2 : 1);
    if (k->has_hmac)
        pb_keymsg(&w, 2, k->hmac_key, 1);
    if (sec) {
        pb_varint(&ts, 1 << 3 | 0);
        pb_varint(&ts, (uint64_t)sec);
    }
    if (nanos) {
        pb_varint(&ts, 2 << 3 | 0);
        pb_varint(&ts, (uint64_t)nanos);
    }
    pb_bytes(&w, 3, ts.b, ts.n);
    free(ts.b);
    if (k->created_by[0])
        pb_bytes(&w, 4, (const uint8_t *)k->created_by, strlen(k->created_by));
    out = pgcmk_b64_encode(w.b, w.n);
    pgcmk_secret_free(w.b, w.cap);
    return out;
}

static int
pb_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        uint8_t c = *(*p)++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return 0;
    }
    return -1;
}

/* Calls fn for every field of the message b[0..n); unknown wire types fail. */
typedef int (*pb_field_fn)(unsigned field, unsigned wt, uint64_t v, const uint8_t *b, size_t n,
                           void *arg);

static int
pb_walk(const uint8_t *b, size_t n, pb_field_fn fn, void *arg)
{
    const uint8_t *p = b, *end = b + n;

    while (p < end) {
        uint64_t tag, v = 0;
        const uint8_t *data = NULL;

        if (pb_read_varint(&p, end, &tag) != 0 || (tag >> 3) == 0 || (tag >> 3) > 0xffffffffu)
            return -1;
        switch (tag & 7) {
        case 0:
            if (pb_read_varint(&p, end, &v) != 0)
                return -1;
            break;
        case 1:
        case 5: {
            size_t w = (tag & 7) == 1 ? 8 : 4;
            if ((size_t)(end - p) < w)
                return -1;
            p += w;
            continue;
        }
        case 2:
            if (pb_read_varint(&p, end, &v) != 0 || v > (uint64_t)(end - p))
                return -1;
            data = p;
            p += v;
            break;
        default:
            return -1;
        }
        if (fn((unsigned)(tag >> 3), (unsigned)(tag & 7), v, data, (size_t)v, arg) != 0)
            return -1;
    }
    return 0;
}

struct pb_keymsg {
    uint8_t key[32];
    size_t key_len;
    uint64_t type;
};

static int
pb_keymsg_field(unsigned f, unsigned wt, uint64_t v, const uint8_t *b, size_t n, void *arg)
{
    struct pb_keymsg *m = arg;

    if (f == 1 && wt == 2) {
        if (n > sizeof(m->key))
            return -1;
        memcpy(m->key, b, n);
        m->key_len = n;
    } else if (f == 2 && wt == 0) {
        m->type = v;
    } else if (f <= 2) {
        return -1;
    }
    return 0;
}

struct pb_ts {
    uint64_t sec, nanos;
};

static int
pb_ts_field(unsigned f, unsigned wt, uint64_t v, const uint8_t *b, size_t n, void *arg)
{
    struct pb_ts *t = arg;

    PGCMK_UNUSED(b);
    PGCMK_UNUSED(n);
    if (f <= 2 && wt != 0)
        return -1;
    if (f == 1)
        t->sec = v;
    else if (f == 2)
        t->nanos = v;
    return 0;
}

struct pb_kv {
    struct pb_keymsg key, hmac;
    int has_key, has_hmac, has_ts;
    struct pb_ts ts;
    char by[65];
};

static int
pb_kv_field(unsigned f, unsigned wt, uint64_t v, const uint8_t *b, size_t n, void *arg)
{
    struct pb_kv *kv = arg;

    PGCMK_UNUSED(v);
    if (f > 4)
        return 0;
    if (wt != 2)
        return -1;
    switch (f) {
    case 1:
        kv->has_key = 1;
        return pb_walk(b, n, pb_keymsg_field, &kv->key);
    case 2:
        kv->has_hmac = 1;
        return pb_walk(b, n, pb_keymsg_field, &kv->hmac);
    case 3:
        kv->has_ts = 1;
        return pb_walk(b, n, pb_ts_field, &kv->ts);
    default:
        if (n >= sizeof(kv->by) || memchr(b, '\0', n))
            return -1;
        memcpy(kv->by, b, n);
        kv->by[n] = '\0';
        return 0;
    }
}

static int
decode_pb(const char *name, const char *value, size_t len, struct pgcmk_kes_key *k)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    struct pb_kv kv;
    int rc = -1;

    memset(&kv, 0, sizeof(kv));
    if (pgcmk_b64_decode(value, len, &raw, &raw_len) != 0)
        return -1;
    if (pb_walk(raw, raw_len, pb_kv_field, &kv) != 0 || !kv.has_key || !kv.has_hmac)
        goto out;
    if (kv.key.key_len != 32 || (kv.key.type != 1 && kv.key.type != 2))
        goto out;
    if (kv.hmac.key_len != 32 || kv.hmac.type != 1)
        goto out;
    key_init(k, name, kv.key.type == 2 ? PGCMK_KES_CHACHA20 : PGCMK_KES_AES256, kv.by);
    memcpy(k->secret, kv.key.key, 32);
    memcpy(k->hmac_key, kv.hmac.key, 32);
    k->has_hmac = 1;
    k->created_ms = (int64_t)kv.ts.sec * 1000 + (int64_t)(int32_t)kv.ts.nanos / 1000000;
    rc = 0;
out:
    OPENSSL_cleanse(&kv, sizeof(kv));
    pgcmk_secret_free(raw, raw_len);
    return rc;
}

/* The legacy value: {"bytes","algorithm","created_at","created_by"} (ParseKeyVersion). */
static int
decode_json(const char *name, json_t *o, struct pgcmk_kes_key *k)
{
    json_t *alg = json_field(o, "algorithm"), *at = json_field(o, "created_at");
    json_t *by = json_field(o, "created_by");
    enum pgcmk_kes_cipher c = PGCMK_KES_AES256;
    uint8_t *bytes = NULL;
    size_t n = 0;
    int64_t ms = 0;

    if (alg && !json_is_null(alg) &&
        (!json_is_string(alg) ||
         (json_string_length(alg) && pgcmk_kes_cipher_parse(json_string_value(alg), &c) != 0)))
        return -1;
    if (at && !json_is_null(at) &&
        (!json_is_string(at) || pgcmk_time_parse(json_string_value(at), &ms) != 0))
        return -1;
    if (by && !json_is_null(by) && (!json_is_string(by) || json_string_length(by) > 64))
        return -1;
    if (json_bytes(json_field(o, "bytes"), &bytes, &n) != 0 || n != 32) {
        pgcmk_secret_free(bytes, n);
        return -1;
    }
    key_init(k, name, c, json_is_string(by) ? json_string_value(by) : "");
    memcpy(k->secret, bytes, 32);
    pgcmk_secret_free(bytes, n);
    k->created_ms = ms;
    k->has_hmac = 0;
    return 0;
}

int
pgcmk_kes_key_decode(const char *name, const char *value, size_t len, struct pgcmk_kes_key *k,
                     struct pgcmk_err *err)
{
    json_t *o;
    int rc;

    memset(k, 0, sizeof(*k));
    o = value ? json_loadb(value, len, JSON_DECODE_ANY, NULL) : NULL;
    if (o) {
        rc = json_is_object(o) ? decode_json(name, o, k) : -1;
        json_decref(o);
    } else {
        rc = value ? decode_pb(name, value, len, k) : -1;
    }
    if (rc != 0) {
        pgcmk_kes_key_wipe(k);
        return pgcmk_err_set(err, PGCMK_E_KES_KEY_INVALID, NULL,
                             "invalid key '%.80s': the stored value is not a KES key",
                             name ? name : "");
    }
    return 0;
}
