/* kmipc.h - the agent as a KMIP client (src/agent/kmip.c): register, locate, get and check a
 * symmetric key on any KMIP server (pgcmk's own or another, e.g. PyKMIP) over mutual TLS, with the
 * requests pg_tde's libkmip sends (Register as KMIP 1.4, Locate, Get and Get Attributes as 1.0,
 * Maximum Response Size 8192 and a Time Stamp in every header, one connection per call).
 *
 * The agent reaches a key store only over its wire protocol: nothing here calls src/kmip/.
 * Outcomes use struct pgcmk_agent_result: `outage` (no connection, timeout, reset before an
 * answer, General Failure, bytes that are not KMIP: retried `retries` times) or `lost` (the
 * server refused our certificate, Item Not Found, Permission Denied, Authentication Not
 * Successful, a key that is not Pre-Active or Active), with a PGCMK_E_KMIP_* code and a message
 * naming the server, the key name, its Unique Identifier and its state. */
#ifndef PGCMK_KMIPC_H
#define PGCMK_KMIPC_H

#include <stddef.h>
#include <stdint.h>

#include "pgcmk/agent.h"

#define PGCMK_KMIPC_UID_LEN   128 /* Unique Identifiers longer than this are refused */
#define PGCMK_KMIPC_MAX_ITEMS 16  /* Locate's Maximum Items, as libkmip sends */
#define PGCMK_KMIPC_MAX_KEY   64

/* KMIP State values. */
enum pgcmk_kmip_state {
    PGCMK_KMIP_STATE_PRE_ACTIVE = 1,
    PGCMK_KMIP_STATE_ACTIVE = 2,
    PGCMK_KMIP_STATE_DEACTIVATED = 3,
    PGCMK_KMIP_STATE_COMPROMISED = 4,
    PGCMK_KMIP_STATE_DESTROYED = 5,
    PGCMK_KMIP_STATE_DESTROYED_COMPROMISED = 6,
};

/* A KMIP server and the client's credentials, as pg_tde's pg_tde_add_*_key_provider_kmip keeps
 * them. key_path may hold the key followed by the certificate (then cert_path may be NULL or the
 * same file). The server is verified against ca_path (a CA or the server's own certificate) and
 * its certificate must name host (IP or DNS). timeout_ms bounds connect, handshake and each read
 * (0: 5000); retries applies to outages only (negative: 2). */
struct pgcmk_kmipc_target {
    const char *host;
    int port;
    const char *cert_path, *key_path, *ca_path;
    int timeout_ms;
    int retries;
};

/* "KMIP server 127.0.0.1:5696" text for messages. */
const char *pgcmk_kmip_state_name(uint32_t state);

/* Registers a symmetric AES key of 16 or 32 bytes with Name `name` (usage mask 12): 0 with uid
 * filled, or -1 with res. */
int pgcmk_kmipc_register(const struct pgcmk_kmipc_target *t, const char *name,
                         const unsigned char *key, size_t key_len, char uid[PGCMK_KMIPC_UID_LEN],
                         struct pgcmk_agent_result *res);
/* Locates the symmetric keys named `name`: the number found (0..16, uids filled in the server's
 * order), or -1 with res. */
int pgcmk_kmipc_locate(const struct pgcmk_kmipc_target *t, const char *name,
                       char uids[PGCMK_KMIPC_MAX_ITEMS][PGCMK_KMIPC_UID_LEN],
                       struct pgcmk_agent_result *res);
/* Gets the raw key bytes of uid (at most PGCMK_KMIPC_MAX_KEY): 0, or -1 with res. */
int pgcmk_kmipc_get(const struct pgcmk_kmipc_target *t, const char *uid,
                    unsigned char key[PGCMK_KMIPC_MAX_KEY], size_t *key_len,
                    struct pgcmk_agent_result *res);
/* Gets uid's State attribute: 0, or -1 with res. */
int pgcmk_kmipc_get_state(const struct pgcmk_kmipc_target *t, const char *uid, uint32_t *state,
                          struct pgcmk_agent_result *res);

/* The request bytes (for tests, and used by the calls above): a malloc'd buffer, its length in
 * *len. ts is the Time Stamp (seconds since the epoch). */
unsigned char *pgcmk_kmipc_build_register(const char *name, const unsigned char *key,
                                          size_t key_len, int64_t ts, size_t *len);
unsigned char *pgcmk_kmipc_build_locate(const char *name, int64_t ts, size_t *len);
unsigned char *pgcmk_kmipc_build_get(const char *uid, int64_t ts, size_t *len);
unsigned char *pgcmk_kmipc_build_get_state(const char *uid, int64_t ts, size_t *len);

/* What one response said. */
struct pgcmk_kmipc_reply {
    int ok;                 /* Result Status = Success */
    uint32_t result_reason; /* when !ok (0 when absent) */
    char result_message[256];
    uint32_t operation;
    int n_uids; /* Unique Identifiers of the payload (Locate, Register, Get) */
    char uids[PGCMK_KMIPC_MAX_ITEMS][PGCMK_KMIPC_UID_LEN];
    unsigned char key[PGCMK_KMIPC_MAX_KEY]; /* Get: the Key Material */
    size_t key_len;
    int key_too_long;
    uint32_t state; /* Get Attributes [State]: 0 when absent */
};

/* Parses a whole response message (TTLV decoded by pgcmk_ttlv_decode, then read by getters; the
 * fuzz target tests/fuzz/fuzz_kmipc.c drives it). 0 with *r filled, or -1 when the bytes are not
 * a KMIP response to op (why in `why`). The reply's key bytes are the caller's to wipe. */
int pgcmk_kmipc_parse_response(const unsigned char *buf, size_t len, uint32_t op,
                               struct pgcmk_kmipc_reply *r, char *why, size_t why_cap);

/* The DEK of a self-managed database, wrapped under its principal key on a KMIP server.
 * New: locate the key by name (0 hits: a random 32-byte key registered with that name; more than
 * one: KmipKeyAmbiguous), get it, make a random DEK, wrap it (AES-256-GCM, aad = db_id; the
 * principal key, or SHA-256 of a 16-byte one, is the wrapping key) and keep the DEK in the
 * agent's memory. *wrapped is malloc'd; alg names the wrapping ("kmip-A256GCM"); uid the key's
 * Unique Identifier. Check: locate, state, get, unwrap; on success the DEK is (again) held; on a
 * loss it is wiped, an outage keeps it. */
int pgcmk_agent_kmip_new_dek(const char *db_id, const struct pgcmk_kmipc_target *t,
                             const char *key_name, unsigned char **wrapped, size_t *wrapped_len,
                             char alg[24], char uid[PGCMK_KMIPC_UID_LEN],
                             struct pgcmk_agent_result *res);
int pgcmk_agent_kmip_check(const char *db_id, const struct pgcmk_kmipc_target *t,
                           const char *key_name, const char *expect_uid,
                           const unsigned char *wrapped, size_t wrapped_len,
                           char uid[PGCMK_KMIPC_UID_LEN], uint32_t *state,
                           struct pgcmk_agent_result *res);

#endif
