/* basic.c - randomness, base64 and base64url, SHA-256, AES-256-GCM (EVP only). */
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "pgcmk/crypto.h"

int
pgcmk_random(void *buf, size_t n)
{
    return n > (size_t)INT32_MAX || RAND_bytes(buf, (int)n) != 1 ? -1 : 0;
}

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *
b64_encode(const unsigned char *in, size_t len, const char *alpha, int pad)
{
    char *out = pgcmk_xmalloc((len + 2) / 3 * 4 + 1), *o = out;
    size_t i;

    for (i = 0; i + 2 < len; i += 3) {
        *o++ = alpha[in[i] >> 2];
        *o++ = alpha[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *o++ = alpha[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        *o++ = alpha[in[i + 2] & 63];
    }
    if (i < len) {
        *o++ = alpha[in[i] >> 2];
        if (i + 1 < len) {
            *o++ = alpha[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
            *o++ = alpha[(in[i + 1] & 15) << 2];
        } else {
            *o++ = alpha[(in[i] & 3) << 4];
            if (pad)
                *o++ = '=';
        }
        if (pad)
            *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* Both alphabets share their first 62 characters; only the last two differ. */
static int
b64_value(char c, const char *alpha)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == alpha[62])
        return 62;
    if (c == alpha[63])
        return 63;
    return -1;
}

/* Strict RFC 4648 decoding: only the alphabet, then either no padding or exactly the '=' that
 * complete the last 4-character group; the unused low bits of the last character must be zero. */
static int
b64_decode(const char *s, size_t len, const char *alpha, unsigned char **out, size_t *out_len)
{
    unsigned char *buf;
    size_t n = 0, i, pad = 0;
    unsigned acc = 0;
    int bits = 0;

    *out = NULL;
    *out_len = 0;
    while (pad < len && s[len - 1 - pad] == '=')
        pad++;
    if (pad > 2 || (pad > 0 && (len % 4 != 0 || len == pad)))
        return -1;
    len -= pad;
    if (len % 4 == 1 || (pad > 0 && len % 4 + pad != 4))
        return -1;
    buf = pgcmk_xmalloc(len / 4 * 3 + 3);
    for (i = 0; i < len; i++) {
        int v = b64_value(s[i], alpha);

        if (v < 0) {
            pgcmk_secret_free(buf, len / 4 * 3 + 3);
            return -1;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) { /* non-canonical: leftover bits set */
        pgcmk_secret_free(buf, len / 4 * 3 + 3);
        return -1;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

char *
pgcmk_b64url_encode(const void *data, size_t len)
{
    return b64_encode(data, len, b64_url, 0);
}

int
pgcmk_b64url_decode(const char *s, size_t len, unsigned char **out, size_t *out_len)
{
    return b64_decode(s, len, b64_url, out, out_len);
}

char *
pgcmk_b64_encode(const void *data, size_t len)
{
    return b64_encode(data, len, b64_std, 1);
}

int
pgcmk_b64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len)
{
    return b64_decode(s, len, b64_std, out, out_len);
}

/* SHA-256 is fetched from the provider once: EVP_sha256() makes every EVP_Digest fetch it again
 * (a name look-up under a lock), which token checks paid on every request. Never freed. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void
sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void
pgcmk_sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 32;

    pthread_once(&sha256_once, sha256_fetch);
    if (EVP_Digest(data, len, out, &n, sha256_md ? sha256_md : EVP_sha256(), NULL) != 1)
        memset(out, 0, 32);
}

int
pgcmk_aead_seal(const unsigned char key[PGCMK_AEAD_KEY_LEN], const void *aad, size_t aad_len,
                const void *pt, size_t pt_len, unsigned char **out, size_t *out_len)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    unsigned char *buf = pgcmk_xmalloc(pt_len + PGCMK_AEAD_OVERHEAD);
    int n = 0, f = 0, rc = -1;

    *out = NULL;
    *out_len = 0;
    if (c == NULL || pt_len > (size_t)INT32_MAX || aad_len > (size_t)INT32_MAX ||
        RAND_bytes(buf, 12) != 1 || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, buf) != 1 ||
        (aad_len && EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len) != 1) ||
        EVP_EncryptUpdate(c, buf + 12, &n, pt, (int)pt_len) != 1 ||
        EVP_EncryptFinal_ex(c, buf + 12 + n, &f) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, buf + 12 + n + f) != 1)
        goto done;
    *out = buf;
    *out_len = 12 + (size_t)n + (size_t)f + 16;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int
pgcmk_aead_open(const unsigned char key[PGCMK_AEAD_KEY_LEN], const void *aad, size_t aad_len,
                const void *sealed, size_t sealed_len, unsigned char **out, size_t *out_len)
{
    const unsigned char *s = sealed;
    EVP_CIPHER_CTX *c;
    unsigned char *buf;
    size_t ct_len;
    int n = 0, f = 0;

    *out = NULL;
    *out_len = 0;
    if (sealed_len < PGCMK_AEAD_OVERHEAD || sealed_len > (size_t)INT32_MAX ||
        aad_len > (size_t)INT32_MAX)
        return -1;
    ct_len = sealed_len - PGCMK_AEAD_OVERHEAD;
    c = EVP_CIPHER_CTX_new();
    buf = pgcmk_xmalloc(ct_len + 1);
    if (c == NULL || EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, s) != 1 ||
        (aad_len && EVP_DecryptUpdate(c, NULL, &n, aad, (int)aad_len) != 1) ||
        EVP_DecryptUpdate(c, buf, &n, s + 12, (int)ct_len) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(s + 12 + ct_len)) != 1 ||
        EVP_DecryptFinal_ex(c, buf + n, &f) != 1) {
        EVP_CIPHER_CTX_free(c);
        pgcmk_secret_free(buf, ct_len + 1);
        return -1;
    }
    EVP_CIPHER_CTX_free(c);
    buf[n + f] = '\0';
    *out = buf;
    *out_len = (size_t)n + (size_t)f;
    return 0;
}
