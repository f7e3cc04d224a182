/* store_internal.h - between the key cache (src/kes/cache.c) and the keystores behind it (the
 * Vault keystore of src/kes/keystore.c, an in-memory one in unit tests), and the crypto helpers
 * the fuzz target and unit tests reach. Not for other modules: they use pgcmk/kesstore.h. */
#ifndef PGCMK_KES_STORE_INTERNAL_H
#define PGCMK_KES_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "pgcmk/err.h"
#include "pgcmk/kesstore.h"

/* A keystore as KES's KeyStore interface (keystore.go): values are the encoded key versions
 * (pgcmk_kes_key_encode). Failures set err: PGCMK_E_KES_KEY_EXISTS, PGCMK_E_KES_KEY_NOT_FOUND,
 * or PGCMK_E_KES_KEYSTORE with the reason ("vault: key store is sealed") as the message. */
struct pgcmk_kes_backend {
    int (*create)(void *arg, const char *name, const char *value, struct pgcmk_err *err);
    /* *value: heap, NUL-terminated, a secret (pgcmk_secret_free(v, strlen(v))). */
    int (*get)(void *arg, const char *name, char **value, struct pgcmk_err *err);
    int (*del)(void *arg, const char *name, struct pgcmk_err *err);
    /* Every name (any order): a new JSON array of strings. */
    int (*list)(void *arg, json_t **names, struct pgcmk_err *err);
    /* Health now (may block on the network): reachable, latency_us, why. */
    void (*ping)(void *arg, struct pgcmk_kes_store_health *h);
    void (*close)(void *arg);
};

/* A store over any backend (the cache in front of it); takes ownership of arg (closed by
 * pgcmk_kes_store_close). cc NULL: KES's defaults (5m, 20s, 0s). */
struct pgcmk_kes_store *pgcmk_kes_store_new(const struct pgcmk_kes_backend *be, void *arg,
                                            const struct pgcmk_kes_cache_cfg *cc);

/* The period of the cache's own keystore check (KES: 10 s, keystore.go newCache). */
#define PGCMK_KES_CACHE_STATUS_MS 10000

/* crypto.c internals */
void pgcmk_kes_hchacha20(const uint8_t key[32], const uint8_t nonce[16], uint8_t out[32]);
/* The legacy ciphertexts as the binary form sealed || iv || nonce (heap): 0 or -1. */
int pgcmk_kes_ct_parse_json(const uint8_t *b, size_t len, uint8_t **flat, size_t *flat_len);
int pgcmk_kes_ct_parse_msgpack(const uint8_t *b, size_t len, uint8_t **flat, size_t *flat_len);

#endif
