/* auth.c - KES identities and policies: kes:v1: API keys (kms-go kes/apikey.go), names
 * (auth.go validName/validPattern) and policy patterns (kms-go kes/policy.go). */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "pgcmk/crypto.h"
#include "pgcmk/kes.h"

int
pgcmk_kes_apikey_parse(const char *key, uint8_t seed[32])
{
    unsigned char *raw = NULL;
    size_t len = 0;
    int rc = -1;

    if (key == NULL || strncmp(key, "kes:v1:", 7) != 0)
        return -1;
    if (pgcmk_b64_decode(key + 7, strlen(key + 7), &raw, &len))
        return -1;
    if (len == 33 && raw[0] == 0) { /* type 0 = Ed25519 */
        memcpy(seed, raw + 1, 32);
        rc = 0;
    }
    pgcmk_secret_free(raw, len);
    return rc;
}

int
pgcmk_kes_apikey_identity(const char *key, char identity[65])
{
    /* DER SubjectPublicKeyInfo of an Ed25519 key: this prefix, then the 32-byte public key */
    static const uint8_t spki_prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                            0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
    uint8_t seed[32], spki[44], sum[32];
    size_t publen = 32;
    EVP_PKEY *pk;
    int i, rc = -1;

    if (pgcmk_kes_apikey_parse(key, seed))
        return -1;
    pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
    OPENSSL_cleanse(seed, sizeof(seed));
    if (pk == NULL)
        return -1;
    memcpy(spki, spki_prefix, sizeof(spki_prefix));
    if (EVP_PKEY_get_raw_public_key(pk, spki + 12, &publen) == 1 && publen == 32) {
        pgcmk_sha256(spki, sizeof(spki), sum);
        for (i = 0; i < 32; i++)
            snprintf(identity + 2 * i, 3, "%02x", sum[i]);
        rc = 0;
    }
    EVP_PKEY_free(pk);
    return rc;
}

int
pgcmk_kes_pattern_match(const char *pattern, const char *path)
{
    size_t n = strlen(pattern);

    if (n && pattern[n - 1] == '*')
        return strncmp(pattern, path, n - 1) == 0;
    return strcmp(pattern, path) == 0;
}

int
pgcmk_kes_policy_allows(const struct pgcmk_kes_policy_cfg *p, const char *path)
{
    int i;

    for (i = 0; i < p->n_deny; i++)
        if (pgcmk_kes_pattern_match(p->deny[i], path))
            return 0;
    for (i = 0; i < p->n_allow; i++)
        if (pgcmk_kes_pattern_match(p->allow[i], path))
            return 1;
    return 0;
}

int
pgcmk_kes_valid_name(const char *s, int pattern)
{
    size_t n, i;

    if (s == NULL)
        return 0;
    n = strlen(s);
    if (pattern && strcmp(s, "*") == 0)
        return 1;
    if ((!pattern && n == 0) || strcmp(s, "_") == 0 || n > 80)
        return 0;
    for (i = 0; i < n; i++) {
        char ch = s[i];

        if ((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
            ch == '_')
            continue;
        if (ch == '-' && i > 0 && i < n - 1)
            continue;
        if (pattern && ch == '*' && i == n - 1)
            continue;
        return 0;
    }
    return 1;
}
