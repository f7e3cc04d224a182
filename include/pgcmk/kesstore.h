/* kesstore.h - a KES server's keys: KES's key crypto (src/kes/crypto.c), its keystore, a Vault
 * KV engine reached through AppRole over HTTP(S) (src/kes/keystore.c), and the key cache in front
 * of it (src/kes/cache.c), all on pgcmk's virtual clock. The KES server (src/kes/server.c,
 * routes.c; include/pgcmk/kes.h) holds one pgcmk_kes_store per server and calls only this header.
 *
 * Errors are pgcmk_err with codes of the KES section of include/pgcmk/err.h; err->message is the
 * text KES puts in {"message": ...} ("key already exists", "key does not exist", "decryption
 * failed: ciphertext is not authentic", a keystore failure's text), and the table gives the
 * status (400, 404, 502). Secrets in these structs are wiped by the functions that free them. */
#ifndef PGCMK_KESSTORE_H
#define PGCMK_KESSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "pgcmk/core.h"
#include "pgcmk/err.h"

#define PGCMK_KES_NAME_MAX                                                                         \
    80 /* key names: 1-80 of [0-9A-Za-z_-], not starting or ending in '-'                          \
        */

enum pgcmk_kes_cipher { PGCMK_KES_AES256 = 0, PGCMK_KES_CHACHA20 = 1 };

/* One KES key (one version: KES keys have one). */
struct pgcmk_kes_key {
    char name[PGCMK_KES_NAME_MAX + 1];
    enum pgcmk_kes_cipher cipher;
    uint8_t secret[32];   /* the key; wiped by pgcmk_kes_key_wipe */
    uint8_t hmac_key[32]; /* the key of /v1/key/hmac (derived or stored as KES does) */
    int64_t created_ms;   /* virtual clock */
    char created_by[65];  /* the identity that created it (hex), or "" */
    int has_hmac; /* 0 for a legacy key stored without an HMAC key: /v1/key/hmac answers 409 */
};

void pgcmk_kes_key_wipe(struct pgcmk_kes_key *k);
/* 1 when name is a valid KES key name (auth.go validName). */
int pgcmk_kes_name_valid(const char *name);

/* ---- crypto (src/kes/crypto.c): key-providers.md 5.5 -------------------------------------- */

/* A new random key of this cipher, created now by `created_by`. */
int pgcmk_kes_key_new(struct pgcmk_kes_key *k, const char *name, enum pgcmk_kes_cipher cipher,
                      const char *created_by, struct pgcmk_err *err) PGCMK_WUR;
/* An imported key (/v1/key/import): 32 bytes. */
int pgcmk_kes_key_import(struct pgcmk_kes_key *k, const char *name, enum pgcmk_kes_cipher cipher,
                         const uint8_t *bytes, size_t len, const char *created_by,
                         struct pgcmk_err *err) PGCMK_WUR;
/* ciphertext = seal(plaintext, aad = context) || iv || nonce (heap, *out_len); the caller frees
 * (pgcmk_secret_free is not needed: a ciphertext is not secret). */
int pgcmk_kes_encrypt(const struct pgcmk_kes_key *k, const uint8_t *pt, size_t pt_len,
                      const uint8_t *ctx, size_t ctx_len, uint8_t **out, size_t *out_len,
                      struct pgcmk_err *err) PGCMK_WUR;
/* The same with iv (16) and nonce (12) given: the deterministic vector of key-providers.md 5.6. */
int pgcmk_kes_encrypt_with(const struct pgcmk_kes_key *k, const uint8_t *pt, size_t pt_len,
                           const uint8_t *ctx, size_t ctx_len, const uint8_t iv[16],
                           const uint8_t nonce[12], uint8_t **out, size_t *out_len,
                           struct pgcmk_err *err) PGCMK_WUR;
/* Decrypts the binary format and KES's legacy JSON format ("not authentic" on any failure).
 * *out is a secret: free it with pgcmk_secret_free(*out, *out_len). */
int pgcmk_kes_decrypt(const struct pgcmk_kes_key *k, const uint8_t *ct, size_t ct_len,
                      const uint8_t *ctx, size_t ctx_len, uint8_t **out, size_t *out_len,
                      struct pgcmk_err *err) PGCMK_WUR;
/* HMAC-SHA256 of msg under the key's HMAC key (/v1/key/hmac). */
int pgcmk_kes_hmac(const struct pgcmk_kes_key *k, const uint8_t *msg, size_t len, uint8_t out[32],
                   struct pgcmk_err *err) PGCMK_WUR;
/* The value KES stores in the keystore for a key, and back (the current and legacy formats). */
char *pgcmk_kes_key_encode(const struct pgcmk_kes_key *k); /* heap, secret: pgcmk_secret_free */
int pgcmk_kes_key_decode(const char *name, const char *value, size_t len, struct pgcmk_kes_key *k,
                         struct pgcmk_err *err) PGCMK_WUR;

/* ---- the keystore and its cache (src/kes/keystore.c, cache.c) ----------------------------- */

/* keystore.vault of a KES config (strings owned by the caller, copied at open). */
struct pgcmk_kes_vault_cfg {
    const char *endpoint;                     /* "https://127.0.0.1:8200" (http:// allowed) */
    const char *engine;                       /* KV mount, default "kv" */
    int version;                              /* 1 or 2 (default 1, as KES) */
    const char *namespace;                    /* X-Vault-Namespace of every request, or NULL */
    const char *prefix;                       /* keys live at {engine}/[data/]{prefix}/{name} */
    const char *transit_engine, *transit_key; /* encrypt stored values with Vault transit */
    const char *approle_namespace, *approle_engine, *approle_id, *approle_secret;
    int64_t approle_retry_ms;
    const char *tls_key, *tls_cert, *tls_ca; /* files */
    int64_t ping_ms; /* status.ping: health check period on the virtual clock (default 10 s) */
};

/* cache.expiry (defaults 5m, 20s, 0s: KES's). As in KES (keystore.go newCache), periodic ticks
 * from the store's start on the virtual clock: every `any` all cached keys go, every `unused`/2
 * those not used since the previous tick go, both only while the keystore is online; every
 * `offline` all go, only while it is offline; offline = the last of the checks made every 10 s
 * found Vault unreachable or sealed. 0 = that tick never fires: with offline 0, cached keys keep
 * serving for as long as Vault stays unreachable (KES does the same). A drill that must outlast
 * the offline cache advances the clock by offline + 10 s. */
struct pgcmk_kes_cache_cfg {
    int64_t any_ms, unused_ms, offline_ms;
};

struct pgcmk_kes_store;

/* Opens the store: copies the config, logs in (AppRole) lazily or at once; a login failure is
 * not an error here (the store reports it as unreachable). NULL with err on a bad config. */
struct pgcmk_kes_store *pgcmk_kes_store_open(const struct pgcmk_kes_vault_cfg *vc,
                                             const struct pgcmk_kes_cache_cfg *cc,
                                             struct pgcmk_err *err);
void pgcmk_kes_store_close(struct pgcmk_kes_store *st);
/* create: GET then PUT (cas 0 on v2); "key already exists" when there. */
int pgcmk_kes_store_create(struct pgcmk_kes_store *st, const struct pgcmk_kes_key *k,
                           struct pgcmk_err *err) PGCMK_WUR;
/* get through the cache (expiry rules on the virtual clock); 0 and *k, or -1. */
int pgcmk_kes_store_get(struct pgcmk_kes_store *st, const char *name, struct pgcmk_kes_key *k,
                        struct pgcmk_err *err) PGCMK_WUR;
int pgcmk_kes_store_delete(struct pgcmk_kes_store *st, const char *name,
                           struct pgcmk_err *err) PGCMK_WUR;
/* Names starting with prefix ("" = all), sorted: a new JSON array of strings in *names. */
int pgcmk_kes_store_list(struct pgcmk_kes_store *st, const char *prefix, json_t **names,
                         struct pgcmk_err *err) PGCMK_WUR;

/* Health as /v1/status shows it: reachable (and latency in µs of the last check) or not, and
 * why. Does not block on the network: it reports the last ping's result. */
struct pgcmk_kes_store_health {
    int reachable;
    int64_t latency_us;
    int64_t checked_ms; /* virtual clock of the last check */
    char why[256];      /* when not reachable: sealed, login refused, connection refused, ... */
    int cached_keys;
    /* The last AppRole login's failure ("" when it worked or none was needed), also while Vault
     * answers its health checks (KES's status shows it reachable then): "vault: authentication
     * failed: 400 invalid role or secret ID". */
    char login_why[256];
};

void pgcmk_kes_store_health(struct pgcmk_kes_store *st, struct pgcmk_kes_store_health *h);
/* The calling thread's keystore requests end within ms (the KES route's timeout, as KES's
 * request context bounds its keystore calls); 0 = the store's own limits. */
void pgcmk_kes_store_set_timeout(int64_t ms);
/* Pings Vault now (sys/health) and updates the health; called by the server's ping schedule. */
void pgcmk_kes_store_ping(struct pgcmk_kes_store *st);
/* The cached key names with their state, for the portal and /emulator/explain:
 * [{"name","cachedAt","lastUsed","expiresAt"}] (new reference). */
json_t *pgcmk_kes_store_cache_json(struct pgcmk_kes_store *st);

/* Why this thread's last failed store call failed ("vault: key store is sealed", "vault: failed
 * to read 'kv/my-key': 403 permission denied", ...): err->message carries KES's own generic
 * text ("failed to read key"), as KES answers; this reason is for the error log and explain. */
const char *pgcmk_kes_store_why(void);
/* The stored names of a config's keystore, cipher names, "AES256" / "ChaCha20". */
const char *pgcmk_kes_cipher_name(enum pgcmk_kes_cipher c);
/* "AES256", "AES256-GCM_SHA256", "ChaCha20", "XCHACHA20-POLY1305" (import's cipher): 0 or -1. */
int pgcmk_kes_cipher_parse(const char *s, enum pgcmk_kes_cipher *c) PGCMK_WUR;

#endif
