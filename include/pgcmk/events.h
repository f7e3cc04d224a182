/* events.h - the bus on which every change that can affect a database's access to its key is
 * published (DESIGN.md 6): key, vault, access-policy and identity changes, clock jumps, faults.
 * Subscribers (the reconciler) are called synchronously on the publishing thread, after the
 * publisher's transaction committed; they must hand long work to the worker pool. An event
 * published inside a store transaction (pgcmk_db_tx) is queued on the thread and delivered once
 * the transaction commits, or dropped when it rolls back; outside a transaction it is delivered
 * at once. */
#ifndef PGCMK_EVENTS_H
#define PGCMK_EVENTS_H

#define PGCMK_EVENTS(X)                                                                            \
    X(PGCMK_EV_KEY_CREATED, "KeyCreated")                                                          \
    X(PGCMK_EV_KEY_UPDATED, "KeyUpdated")                                                          \
    X(PGCMK_EV_KEY_ENABLED, "KeyEnabled")                                                          \
    X(PGCMK_EV_KEY_DISABLED, "KeyDisabled")                                                        \
    X(PGCMK_EV_KEY_EXPIRED, "KeyExpired")                                                          \
    X(PGCMK_EV_KEY_DELETED, "KeyDeleted")                                                          \
    X(PGCMK_EV_KEY_RECOVERED, "KeyRecovered")                                                      \
    X(PGCMK_EV_KEY_PURGED, "KeyPurged")                                                            \
    X(PGCMK_EV_KEY_ROTATED, "KeyRotated")                                                          \
    X(PGCMK_EV_POLICY_CHANGED, "AccessPolicyChanged")                                              \
    X(PGCMK_EV_VAULT_DELETED, "VaultDeleted")                                                      \
    X(PGCMK_EV_VAULT_RECOVERED, "VaultRecovered")                                                  \
    X(PGCMK_EV_VAULT_PURGED, "VaultPurged")                                                        \
    X(PGCMK_EV_IDENTITY_DELETED, "IdentityDeleted")                                                \
    X(PGCMK_EV_CLOCK_CHANGED, "ClockChanged")                                                      \
    X(PGCMK_EV_FAULT_CHANGED, "FaultChanged")                                                      \
    X(PGCMK_EV_KMIP_OBJECT_CHANGED, "KmipObjectChanged")                                           \
    X(PGCMK_EV_KMIP_OBJECT_REVOKED, "KmipObjectRevoked")                                           \
    X(PGCMK_EV_KMIP_OBJECT_DEACTIVATED, "KmipObjectDeactivated")                                   \
    X(PGCMK_EV_KMIP_OBJECT_DESTROYED, "KmipObjectDestroyed")                                       \
    X(PGCMK_EV_KMIP_CLIENT_DELETED, "KmipClientDeleted")                                           \
    X(PGCMK_EV_HV_SECRET_CHANGED, "VaultSecretChanged")                                            \
    X(PGCMK_EV_HV_SECRET_DELETED, "VaultSecretDeleted")                                            \
    X(PGCMK_EV_HV_MOUNT_DISABLED, "VaultMountDisabled")                                            \
    X(PGCMK_EV_HV_TOKEN_REVOKED, "VaultTokenRevoked")                                              \
    X(PGCMK_EV_HV_POLICY_CHANGED, "VaultPolicyChanged")                                            \
    X(PGCMK_EV_HV_AUTH_CHANGED, "VaultAuthChanged")                                                \
    X(PGCMK_EV_HV_SEALED, "VaultSealed")                                                           \
    X(PGCMK_EV_HV_UNSEALED, "VaultUnsealed")                                                       \
    X(PGCMK_EV_KES_KEY_CHANGED, "KesKeyChanged")                                                   \
    X(PGCMK_EV_KES_KEY_DELETED, "KesKeyDeleted")                                                   \
    X(PGCMK_EV_KES_SERVER_CHANGED, "KesServerChanged")                                             \
    X(PGCMK_EV_KES_KEYSTORE_CHANGED, "KesKeystoreChanged")                                         \
    X(PGCMK_EV_PG_ACCESS_CHANGED, "DatabaseAccessChanged")

enum pgcmk_event_kind {

#define PGCMK_X_EV(e, name) e,
    PGCMK_EVENTS(PGCMK_X_EV)
#undef PGCMK_X_EV
        PGCMK_EV__COUNT
};

struct pgcmk_event {
    enum pgcmk_event_kind kind;
    const char *vault;     /* vault name (lower case), or NULL */
    const char *key;       /* key name, or NULL */
    const char *version;   /* key version, or NULL */
    const char *object_id; /* principal (policy, identity events), or NULL */
    const char *resource_id;
    /* KMIP events: key = the object's Name (or NULL), version = its Unique Identifier,
     * object_id = the owning client's name (the certificate CN). */
    /* HashiCorp Vault API events (PGCMK_EV_HV_*): resource_id = the namespace ("" for the root,
     * else "ns1/"), key = the logical path in it ("secret/pg-key": mount + name, without KV v2's
     * data/ or metadata/), version = the KV version or NULL, object_id = a token accessor, policy,
     * role or mount path, whichever the event is about. */
    /* KES events (PGCMK_EV_KES_*, src/kes/): resource_id = the KES server's name, key = the KES
     * key's name (key events) or NULL; KesServerChanged = its policies, identities or config
     * changed, or it started or stopped; KesKeystoreChanged = its Vault keystore became
     * reachable or unreachable (version = "reachable" or "unreachable"). */
    /* DatabaseAccessChanged (src/providers/postgres.c pg_record_state, after the state's
     * transaction committed): resource_id = the database (pg_databases id), version = its new
     * state ("Ready", "Inaccessible", ...), key = its reason code or NULL. The real PostgreSQL
     * mode (src/pg/access.c) makes the instance follow it. */
};

typedef void (*pgcmk_event_fn)(const struct pgcmk_event *ev, void *arg);

/* An owned copy of ev's strings into *dst (for work after the publisher returns), and its release.
 */
void pgcmk_event_copy(struct pgcmk_event *dst, const struct pgcmk_event *ev);
void pgcmk_event_release(struct pgcmk_event *ev);

const char *pgcmk_event_name(enum pgcmk_event_kind kind);
/* At most 16 subscribers; returns -1 when full. */
int pgcmk_events_subscribe(pgcmk_event_fn fn, void *arg);
void pgcmk_events_publish(const struct pgcmk_event *ev);
/* The store's transaction hooks (src/store/store.c): begin when a transaction opens on this
 * thread; end after it committed (committed=1: deliver the queued events) or rolled back
 * (committed=0: drop them). Called outside the store's writer lock. */
void pgcmk_events_tx_begin(void);
void pgcmk_events_tx_end(int committed);
/* Savepoints (pgcmk_db_savepoint): a mark of the events queued so far on this thread, and the
 * undo that drops the ones queued after it (the savepoint rolled back). NULL outside a
 * transaction; undo(NULL) does nothing. */
void *pgcmk_events_tx_mark(void);
void pgcmk_events_tx_undo(void *mark);
/* Events published since start, by kind (tests, /emulator/stats). */
unsigned long pgcmk_events_count(enum pgcmk_event_kind kind);

#endif
