/* reconcile.h - the reconciler (DESIGN.md 6): key events and the periodic check drive each
 * database between Ready and Inaccessible. A database depends on one key reference of some kind;
 * each kind is a key-source row saying how to check access, which events touch it and how to
 * explain a failure. The reconciler (fan-out of events, periodic checks, the per-database
 * single-flight, the batched result apply, settle, the checks after a restart) knows only the
 * rows: a new kind of key is a new row in src/reconcile/keysources.c, not an edit here. */
#ifndef PGCMK_RECONCILE_H
#define PGCMK_RECONCILE_H

#include <stdint.h>
#include <jansson.h>

#include "pgcmk/agent.h"
#include "pgcmk/events.h"
#include "pgcmk/store.h"

struct pg_db;
struct pgcmk_cfg;

/* One kind of key reference. Every function is called without a transaction open. */
struct pgcmk_keysource {
    const char *kind; /* "azure-keyvault", "service-managed" */
    /* 1 when the database's key reference is of this kind. */
    int (*uses)(const struct pg_db *d);
    /* Checks the database's access to its key now (it may go to the network through the agent):
     * 0 when ok (the DEK is then in the agent's memory), -1 with res filled (res->lost: access is
     * lost, the DEK wiped; res->outage: the source cannot be reached, the DEK kept). */
    int (*check)(const struct pg_db *d, int revalidate, struct pgcmk_agent_result *res);
    /* Appends to ids (JSON strings) the databases of this kind an event can affect. Runs on a
     * worker after the event's transaction committed. NULL: no event touches this kind. */
    void (*touches)(struct pgcmk_db *db, const struct pgcmk_event *ev, json_t *ids);
    /* Appends this kind's rules ({rule, ok, detail}) for the database to rules; the rule that
     * fails is the one its reason code names, so the rules agree with the state. */
    void (*explain)(struct pgcmk_db *db, const struct pg_db *d, json_t *rules);
};

/* The rows, NULL-terminated; the first that uses() a database is its key source. */
extern const struct pgcmk_keysource *const pgcmk_keysources[];
const struct pgcmk_keysource *pgcmk_keysource_of(const struct pg_db *d);

/* Reason codes (a database's reason_code, explain's reasonCode) are codes of the error table
 * (include/pgcmk/err.h), written with pgcmk_err_code(): PGCMK_E_PG_REVALIDATION_REQUIRED for a
 * single server whose access came back but waits for the revalidation, PGCMK_E_PG_KEY_UNCHECKED
 * for a database whose key was not checked yet since the daemon started, else the code of the
 * check's failure. */

/* {rule, ok, detail}, for the explain functions. */
json_t *pgcmk_reconcile_rule(const char *rule, int ok, const char *detail);

/* Start-up: the intervals from cfg, the event and clock listeners, then a key check of every
 * database (a restart on a data directory holds no DEK in memory). */
void pgcmk_reconcile_start(const struct pgcmk_cfg *cfg);
/* Waits up to timeout_ms (wall time) for the checks started by pgcmk_reconcile_start:
 * 1 when they all finished. */
int pgcmk_reconcile_wait_start(int64_t timeout_ms);
/* 1 while the database's first check since start has not finished. */
int pgcmk_reconcile_unchecked(const char *id);

/* Waits until no check is queued or running (or the timeout passes): 1 settled, 0 not. */
int pgcmk_reconcile_settle(int64_t timeout_ms, unsigned long *busy, unsigned long *checks_done);

/* The emulator's routes of the reconciler: /emulator/explain, /emulator/lineage,
 * /emulator/settle (registered at init, before the server starts). */
void pgcmk_reconcile_register(void);

#endif
