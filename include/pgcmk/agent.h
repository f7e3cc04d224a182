/* agent.h - the encryption agent (DESIGN.md 7): one data-encryption key (DEK) per database,
 * wrapped by the customer's key through the Key Vault data plane over HTTPS (libcurl), with a
 * token the agent gets for the database's managed identity from the token service, like any
 * client. Only wrapped DEKs leave this module; unwrapped DEKs live in locked memory and are wiped
 * when access is lost.
 *
 * The agent never calls vault/ or auth/ functions: it goes over the wire. It is thread-safe; the
 * calls that touch the network block (timeouts and retries inside), so run them on a worker. */
#ifndef PGCMK_AGENT_H
#define PGCMK_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "pgcmk/err.h"

#define PGCMK_AGENT_DEK_LEN 32

/* What a wrap or a key check found. `lost` tells a revocation (the vault answered and said no:
 * 401/403/404, disabled, expired, wrong key type) from an outage (no answer, timeout, 5xx), which
 * sets `outage`. On success both are 0. `code` is the PGCMK_E_PG_* error naming the rule, and
 * `message` says it in Azure's words, naming the vault, key and principal. */
struct pgcmk_agent_result {
    int lost;
    int outage;
    enum pgcmk_errc code;
    int http_status; /* the vault's last answer, 0 when there was none */
    char message[512];
};

/* Fills res (code, lost, outage = !lost, message) and returns -1: how every key source of the
 * agent (kmip.c, vault.c, kes.c) reports a failure. */
int pgcmk_agent_fail(struct pgcmk_agent_result *res, int code, int lost, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Who asks and with what key. `key_uri` is a versioned key id on *.vault.localhost:PORT or
 * *.vault.azure.net[:443] (mapped to the local vault of that name; the port of a local URI is
 * ignored, the daemon's own is used); NULL means service-managed (the DEK is sealed under the
 * emulator's master key with pgcmk_store_seal, aad = db_id, alg "A256GCM"). `principal_id` is the
 * object id of the managed identity whose token the agent uses (IMDS, cached per principal until
 * five minutes before it expires). A NULL key pointer means service-managed too. */
struct pgcmk_agent_key {
    const char *key_uri;
    const char *principal_id;
};

/* The connection details (the daemon's own HTTPS port and CA file). Call once before use; a
 * later call replaces them (cached tokens are dropped when the port changes). Also runs
 * curl_global_init (once). Shutdown wipes every DEK and token. */
int pgcmk_agent_init(int port, const char *ca_file);
void pgcmk_agent_shutdown(void);

/* Makes a new random DEK for db_id, wraps it (RSA-OAEP-256) and keeps it in memory. The key is
 * checked first as in pgcmk_agent_check, and the wrapped DEK is unwrapped once, so a missing get,
 * wrapKey or unwrapKey permission fails here as it does in Azure.
 * On success returns 0 with *wrapped (malloc'd) and the algorithm in alg; on failure -1 with res
 * filled and nothing new kept (a DEK db_id already held stays). */
int pgcmk_agent_new_dek(const char *db_id, const struct pgcmk_agent_key *k, unsigned char **wrapped,
                        size_t *wrapped_len, char alg[24], struct pgcmk_agent_result *res);

/* Wraps the DEK db_id holds in memory under another key (restore changing the encryption keeps
 * nothing: it uses new_dek; this is for re-wrapping a replica's or standby's copy). */
int pgcmk_agent_rewrap(const char *db_id, const struct pgcmk_agent_key *k, unsigned char **wrapped,
                       size_t *wrapped_len, char alg[24], struct pgcmk_agent_result *res);

/* A key check: GET the key (enabled, nbf, exp on the emulator's virtual clock as the vault reports
 * them, kty/size) and unwrap the stored DEK. On success the DEK is (again) held in memory for
 * db_id and 0 is returned; on failure -1, res filled, and the in-memory DEK wiped when res->lost
 * (an outage keeps the DEK: Azure keeps serving from its cache until a revocation is seen).
 * Codes: KEY_NOT_FOUND (404/409, no such vault/key/version, or a key that does not unwrap this
 * DEK), MISSING_PERMISSIONS (401, 403 by policy), KEY_DISABLED, KEY_EXPIRED (exp passed or nbf
 * ahead), KEY_TYPE (not RSA/RSA-HSM 2048/3072/4096, or key_ops without the operation),
 * KEY_URI_INVALID, IDENTITY_REQUIRED/IDENTITY_NOT_FOUND (no token for principal_id), and
 * VAULT_UNREACHABLE with outage=1 (no connection, timeout, 5xx or 429 after 2 retries). */
int pgcmk_agent_check(const char *db_id, const struct pgcmk_agent_key *k,
                      const unsigned char *wrapped, size_t wrapped_len, const char *alg,
                      struct pgcmk_agent_result *res);

/* Keeps (a copy of) dek as db_id's DEK in locked memory: for the agent's other key sources
 * (src/agent/kmip.c). */
void pgcmk_agent_keep(const char *db_id, const unsigned char dek[PGCMK_AGENT_DEK_LEN]);
/* Wipes db_id's DEK from memory. */
void pgcmk_agent_forget(const char *db_id);
/* 1 when db_id's DEK is in memory. */
int pgcmk_agent_has_dek(const char *db_id);
/* Copies the in-memory DEK of `from` to `to` (a replica or HA standby that shares the primary's
 * data). -1 when `from` has none. */
int pgcmk_agent_share(const char *from, const char *to);

/* Record encryption under db_id's in-memory DEK: AES-256-GCM, associated data = ad_db_id and seq
 * as "ad_db_id:seq" with ad_db_id lower-cased (ids are case-insensitive) and seq in decimal
 * (ad_db_id is the database the record belongs to, which for a replica is its primary). The sealed
 * form is 12-byte nonce || ciphertext || 16-byte tag; *out is malloc'd. -1 when the DEK is not in
 * memory or authentication fails. */
int pgcmk_agent_seal(const char *db_id, const char *ad_db_id, int64_t seq, const void *pt,
                     size_t pt_len, unsigned char **out, size_t *out_len);
int pgcmk_agent_open(const char *db_id, const char *ad_db_id, int64_t seq, const void *sealed,
                     size_t sealed_len, unsigned char **out, size_t *out_len);

/* Calls fn with db_id's in-memory DEK, under the agent's read lock (keep fn short: no network;
 * copy the key into your own buffer and wipe it when you need it longer). Returns fn's result,
 * or -1 when the DEK is not in memory. For the real PostgreSQL mode: the archive's AEAD with its
 * own associated data (src/pg/archive.c) and the gocryptfs password (src/pg/atrest.c). */
int pgcmk_agent_with_dek(const char *db_id,
                         int (*fn)(const unsigned char dek[PGCMK_AGENT_DEK_LEN], void *arg),
                         void *arg);

/* Counters for /emulator/stats and tests: wire requests sent, retries, DEKs held. */
struct pgcmk_agent_stats {
    unsigned long requests, retries, failures;
    unsigned long deks;
};

void pgcmk_agent_stats(struct pgcmk_agent_stats *out);

#endif
