/* chacha.c - ChaCha20-Poly1305 (RFC 8439) with the same sealed form as pgcmk_aead_seal:
 * 12-byte random nonce || ciphertext || 16-byte tag (the Vault transit engine's
 * chacha20-poly1305 keys). */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "pgcmk/core.h"
#include "pgcmk/crypto.h"

int
pgcmk_chacha_seal(const unsigned char key[PGCMK_AEAD_KEY_LEN], const void *pt, size_t pt_len,
                  unsigned char **out, size_t *out_len)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    unsigned char *buf = pgcmk_xmalloc(pt_len + PGCMK_AEAD_OVERHEAD);
    int n = 0, f = 0, rc = -1;

    *out = NULL;
    *out_len = 0;
    if (c == NULL || pt_len > (size_t)INT32_MAX || RAND_bytes(buf, 12) != 1 ||
        EVP_EncryptInit_ex(c, EVP_chacha20_poly1305(), NULL, key, buf) != 1 ||
        EVP_EncryptUpdate(c, buf + 12, &n, pt, (int)pt_len) != 1 ||
        EVP_EncryptFinal_ex(c, buf + 12 + n, &f) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, buf + 12 + n + f) != 1)
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
pgcmk_chacha_open(const unsigned char key[PGCMK_AEAD_KEY_LEN], const void *sealed,
                  size_t sealed_len, unsigned char **out, size_t *out_len)
{
    const unsigned char *s = sealed;
    EVP_CIPHER_CTX *c;
    unsigned char *buf;
    size_t ct_len;
    int n = 0, f = 0;

    *out = NULL;
    *out_len = 0;
    if (sealed_len < PGCMK_AEAD_OVERHEAD || sealed_len > (size_t)INT32_MAX)
        return -1;
    ct_len = sealed_len - PGCMK_AEAD_OVERHEAD;
    c = EVP_CIPHER_CTX_new();
    buf = pgcmk_xmalloc(ct_len + 1);
    if (c == NULL || EVP_DecryptInit_ex(c, EVP_chacha20_poly1305(), NULL, key, s) != 1 ||
        EVP_DecryptUpdate(c, buf, &n, s + 12, (int)ct_len) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, (void *)(s + 12 + ct_len)) != 1 ||
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
