/* kesc.h - the agent as a MinIO KES client (src/agent/kes.c): a self-managed database's DEK is
 * a KES data key (key-providers.md 5.1): POST /v1/key/generate/{key} at create (the plaintext is
 * the DEK, the ciphertext is stored as the wrapped DEK), POST /v1/key/decrypt/{key} at each key
 * check, both with context = the database id (base64, KES binds it as AAD). Mutual TLS through
 * include/pgcmk/https.h, with a `kes:v1:` API key (turned in memory into the self-signed Ed25519
 * certificate kms-go's client makes: CN = identity, EKU clientAuth, 90 days) or a certificate and
 * key file. Works against pgcmk's KES servers and any other KES server: nothing here calls
 * src/kes/.
 *
 * Outcomes use struct pgcmk_agent_result: `outage` (no connection, timeout, a 5xx other than 502,
 * 429: retried `retries` times, the DEK kept, KesServerUnreachable) or `lost` (403
 * KesPermissionDenied, 404 KesKeyNotFound, 400 "not authentic" KesKeyMismatch, 502
 * KesKeystoreFailure, a server certificate that does not verify KesServerNotTrusted, another 4xx
 * KesRequestRefused), with a message naming the server, the key and the identity. */
#ifndef PGCMK_KESC_H
#define PGCMK_KESC_H

#include <stddef.h>
#include <stdint.h>

#include "pgcmk/agent.h"

#define PGCMK_KESC_ID_LEN 65 /* 64 hex digits and NUL */
#define PGCMK_KESC_ALG    "kes-data-key"

/* A KES server and the client's credentials: the provider options {url, apiKey | certPath +
 * keyPath, caPath, insecure}. caPath NULL: the system's trust store. timeout_ms bounds each
 * request (0: 10000; the connect timeout is min(3000, timeout_ms)); retries applies to outages
 * only (negative: 2). */
struct pgcmk_kesc_target {
    const char *url;     /* https://host:port, without a trailing / */
    const char *api_key; /* "kes:v1:..." (a secret: the caller wipes it) or NULL */
    const char *cert_path, *key_path;
    const char *ca_path;
    int insecure; /* no check of the server's certificate (kes -k) */
    int timeout_ms;
    int retries;
};

/* API keys (kms-go kes/apikey.go): "kes:v1:" + standard base64 of 0x00 || 32-byte Ed25519 seed.
 * 0 with the seed (the caller wipes it), -1 when s is not such a key. */
int pgcmk_kesc_api_key_seed(const char *s, unsigned char seed[32]);
/* The identity of an API key: hex SHA-256 of the DER SubjectPublicKeyInfo of its public key.
 * 0, or -1 when s is not an API key. */
int pgcmk_kesc_api_key_identity(const char *s, char identity[PGCMK_KESC_ID_LEN]);
/* The self-signed client certificate and its PKCS#8 key (PEM, malloc'd; *key_pem is a secret:
 * pgcmk_secret_free(*key_pem, strlen(*key_pem))), valid from now_s for 90 days. 0 or -1. */
int pgcmk_kesc_api_key_cert(const char *s, int64_t now_s, char **cert_pem, char **key_pem);
/* The identity of a certificate file's first certificate (as KES computes it): 0 or -1. */
int pgcmk_kesc_cert_file_identity(const char *path, char identity[PGCMK_KESC_ID_LEN]);

/* KES's key name rule (auth.go validName): 1-80 of [0-9A-Za-z_-], no leading or trailing '-',
 * not "_" alone. 1 valid, 0 not. */
int pgcmk_kesc_key_name_ok(const char *name);

/* The request URL {url}/v1/key/{op}/{key} (malloc'd); the name is used as it is (check it with
 * pgcmk_kesc_key_name_ok: a valid name needs no escaping). */
char *pgcmk_kesc_url(const struct pgcmk_kesc_target *t, const char *op, const char *key);
/* Bodies (malloc'd): {"context":"<b64 ctx>"} and {"ciphertext":"<b64>","context":"<b64 ctx>"}. */
char *pgcmk_kesc_generate_body(const char *context);
char *pgcmk_kesc_decrypt_body(const unsigned char *ct, size_t ct_len, const char *context);

/* Answer readers (jansson; tests/fuzz/fuzz_kesc.c drives them).
 * Generate: 0 with the 32-byte plaintext (the caller wipes it) and the ciphertext (malloc'd);
 * -1 when the body is not {"plaintext": b64 of 32 bytes, "ciphertext": b64 of 1..4096 bytes}. */
int pgcmk_kesc_parse_generate(const char *body, size_t len, unsigned char dek[32],
                              unsigned char **ct, size_t *ct_len);
/* Decrypt: 0 with the 32-byte plaintext; 1 when the plaintext is base64 of another length
 * (*pt_len says how many bytes); -1 when the body has no base64 "plaintext". */
int pgcmk_kesc_parse_plaintext(const char *body, size_t len, unsigned char dek[32], size_t *pt_len);
/* KES's error text: {"message": ...}, or {"error": ...} (older servers), "" when none. */
void pgcmk_kesc_parse_message(const char *body, size_t len, char *out, size_t cap);

/* How an answer counts: the code (PGCMK_E_OK for a 2xx) and whether it is an outage. */
enum pgcmk_errc pgcmk_kesc_classify(long status, const char *body, size_t len, int *outage);

/* The DEK of a self-managed database from KES key key_name: generate (context = db_id); when the
 * key does not exist and create_key is set, POST /v1/key/create/{key} first ("key already
 * exists" is fine) and generate again. On success the DEK is kept in memory (pgcmk_agent_keep),
 * *wrapped (malloc'd) is KES's ciphertext and alg is PGCMK_KESC_ALG. */
int pgcmk_agent_kes_new_dek(const char *db_id, const struct pgcmk_kesc_target *t,
                            const char *key_name, int create_key, unsigned char **wrapped,
                            size_t *wrapped_len, char alg[24], struct pgcmk_agent_result *res);
/* A key check: decrypt the stored ciphertext (context = db_id); the plaintext must be 32 bytes
 * (AES-GCM's tag already proves it is the DEK generate gave). On success the DEK is (again) held; a
 * loss wipes it, an outage keeps it. */
int pgcmk_agent_kes_check(const char *db_id, const struct pgcmk_kesc_target *t,
                          const char *key_name, const unsigned char *wrapped, size_t wrapped_len,
                          struct pgcmk_agent_result *res);

#endif
