/* reconcile.c - the reconciler (DESIGN.md 6): events and the periodic check queue key checks,
 * one at a time per database (single-flight); the key-source row of the database does the check;
 * the outcomes are stored many to a transaction and drive Ready <-> Inaccessible, Resource
 * Health and the Activity Log. After a restart every database is checked before it is served. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgcmk/cfg.h"
#include "pgcmk/clock.h"
#include "pgcmk/events.h"
#include "pgcmk/log.h"
#include "pgcmk/reconcile.h"
#include "pgcmk/work.h"
#include "providers/postgres.h"

static int64_t rc_check_interval_ms = 60000;
static int64_t rc_loss_delay_ms;

/* ---- applying one outcome ----------------------------------------------------------------- */

static pthread_mutex_t pending_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pending_cv = PTHREAD_COND_INITIALIZER;
static json_t *pending;    /* ids queued or running */
static json_t *unchecked;  /* ids not checked yet since start */
static unsigned long busy; /* checks queued or running + fan-out jobs */
static unsigned long checks_done;

struct check_outcome {
    const char *id;
    int ok, lost, outage, revalidate;
    const struct pgcmk_agent_result *res;
    int changed;
    char state[24];
};

static int
check_apply_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct check_outcome *o = ctx;
    struct pg_db d;
    int rc = pg_db_load(db, o->id, &d, err), was_lost;
    int64_t now = pgcmk_clock_now();

    if (rc <= 0)
        return rc;
    if (strcmp(d.access, PG_ACCESS_PENDING) == 0) { /* still being provisioned */
        pg_db_release(&d);
        return 0;
    }
    was_lost = strcmp(d.access, PG_ACCESS_LOST) == 0;
    d.last_check = now;
    o->state[0] = 0;
    if (o->ok) {
        d.lost_at = 0;
        if (!was_lost) {
            pg_set(&d.reason_code, NULL);
            pg_set(&d.reason, NULL);
        } else if (d.kind != PG_SERVER || o->revalidate) {
            pg_set(&d.access, PG_ACCESS_OK);
            pg_set(&d.reason_code, NULL);
            pg_set(&d.reason, NULL);
            snprintf(o->state, sizeof(o->state), "Ready");
        } else {
            /* single servers stay Inaccessible until the key is revalidated (seed 002) */
            pg_set(&d.reason_code, pgcmk_err_code(PGCMK_E_PG_REVALIDATION_REQUIRED));
            pg_set(&d.reason, "Access to the key is back; revalidate the key (re-create the "
                              "server key) to bring the server back.");
        }
    } else if (o->outage) {
        pg_set(&d.reason_code, pgcmk_err_code(o->res->code));
        pg_set(&d.reason, o->res->message);
    } else {
        pg_set(&d.reason_code, pgcmk_err_code(o->res->code));
        pg_set(&d.reason, o->res->message);
        if (!d.lost_at)
            d.lost_at = now;
        if (!was_lost && now - d.lost_at >= rc_loss_delay_ms) {
            pg_set(&d.access, PG_ACCESS_LOST);
            snprintf(o->state, sizeof(o->state), "Inaccessible");
        }
    }
    rc = pg_db_save(db, &d, err);
    if (rc == 0 && o->state[0]) {
        char what[768];

        snprintf(what, sizeof(what), "%s: %s",
                 o->state[0] == 'R' ? "Access to the customer-managed key was restored"
                                    : "Access to the customer-managed key was lost",
                 o->state[0] == 'R' ? (d.key_uri ? d.key_uri : "") : d.reason);
        rc = pg_record_state(db, &d, o->state, what, err);
        o->changed = 1;
    }
    pg_db_release(&d);
    return rc;
}

/* The network half of a check: the database's key source asks. 0 when there is nothing to
 * apply (no such database, or still provisioning), 1 with o filled. */
static int
rc_probe(const char *id, int revalidate, struct check_outcome *o, struct pgcmk_agent_result *res,
         struct pgcmk_err *err)
{
    const struct pgcmk_keysource *ks;
    struct pg_db d;
    int rc;

    memset(res, 0, sizeof(*res));
    memset(o, 0, sizeof(*o));
    rc = pg_db_load(pgcmk_db(), id, &d, err);
    if (rc <= 0)
        return rc;
    if (strcmp(d.access, PG_ACCESS_PENDING) == 0) {
        pg_db_release(&d);
        return 0;
    }
    ks = pgcmk_keysource_of(&d);
    if (ks) {
        o->ok = ks->check(&d, revalidate, res) == 0;
    } else {
        res->lost = 1;
        res->code = PGCMK_E_INTERNAL;
        snprintf(res->message, sizeof(res->message),
                 "No key source knows the key reference of '%.300s'.", d.id);
    }
    pg_db_release(&d);
    o->id = id;
    o->lost = res->lost;
    o->outage = res->outage;
    o->revalidate = revalidate;
    o->res = res;
    return 1;
}

static void
unchecked_done(const char *id)
{
    pthread_mutex_lock(&pending_mu);
    if (unchecked)
        json_object_del(unchecked, id);
    pthread_mutex_unlock(&pending_mu);
}

int
pgcmk_reconcile_unchecked(const char *id)
{
    int r;

    pthread_mutex_lock(&pending_mu);
    r = unchecked && json_object_get(unchecked, id) != NULL;
    pthread_mutex_unlock(&pending_mu);
    return r;
}

int
pg_check_now(const char *id, int revalidate, struct pgcmk_err *err)
{
    struct pgcmk_agent_result res;
    struct check_outcome o;
    int rc = rc_probe(id, revalidate, &o, &res, err);

    if (rc <= 0)
        return rc < 0 ? -1 : 0;
    if (pgcmk_db_tx(pgcmk_db(), check_apply_tx, &o, err))
        return -1;
    unchecked_done(id);
    if (!o.ok) {
        pgcmk_err_set(err, res.code ? res.code : PGCMK_E_PG_VAULT_UNREACHABLE,
                      "dataEncryption.primaryKeyUri", "%s", res.message);
        return -1;
    }
    return 0;
}

/* ---- the single-flight queue and the batched apply ---------------------------------------- */

static void
pending_done(void)
{
    pthread_mutex_lock(&pending_mu);
    busy--;
    checks_done++;
    pthread_cond_broadcast(&pending_cv);
    pthread_mutex_unlock(&pending_mu);
}

static void check_job(void *arg);

/* After a check's outcome is stored: run it again if a change came in meanwhile, else done. */
static void
check_finish(char *id)
{
    json_t *st;
    int again;

    pthread_mutex_lock(&pending_mu);
    st = json_object_get(pending, id);
    again = st && json_integer_value(st) == 3;
    if (again)
        json_object_set_new(pending, id, json_integer(1));
    else
        json_object_del(pending, id);
    if (unchecked)
        json_object_del(unchecked, id);
    pthread_mutex_unlock(&pending_mu);
    if (again) {
        pgcmk_work_submit(check_job, id);
        return;
    }
    free(id);
    pending_done();
}

/* Outcomes wait here and are stored many to a transaction (group commit): when a revocation
 * flips a thousand databases, the writer commits a few times, not a thousand. */
struct applied {
    char *id;
    struct check_outcome o;
    struct pgcmk_agent_result res;
    int have; /* 0: nothing to store, only finish */
    struct applied *next;
};

static pthread_mutex_t apply_mu = PTHREAD_MUTEX_INITIALIZER;
static struct applied *apply_head, **apply_tail = &apply_head;
static int applying;

/* Each result in its own savepoint: one that cannot be stored is rolled back alone (no half-
 * applied database row, health or activity entry) and logged; the others commit. */
static int
apply_batch_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    for (struct applied *a = ctx; a; a = a->next) {
        struct pgcmk_err one;

        if (a->have && pgcmk_db_savepoint(db, check_apply_tx, &a->o, &one))
            LOG_WARN("key check %s: could not store the result: %s", a->id, one.message);
    }
    (void)err;
    return 0;
}

static void
apply_enqueue(struct applied *a)
{
    pthread_mutex_lock(&apply_mu);
    *apply_tail = a;
    apply_tail = &a->next;
    if (applying) {
        pthread_mutex_unlock(&apply_mu);
        return;
    }
    applying = 1;
    while (apply_head) {
        struct applied *batch = apply_head, *next;
        struct pgcmk_err err;

        apply_head = NULL;
        apply_tail = &apply_head;
        pthread_mutex_unlock(&apply_mu);
        if (pgcmk_db_tx(pgcmk_db(), apply_batch_tx, batch, &err))
            LOG_WARN("key checks: could not store results: %s", err.message);
        for (; batch; batch = next) {
            next = batch->next;
            check_finish(batch->id);
            free(batch);
        }
        pthread_mutex_lock(&apply_mu);
    }
    applying = 0;
    pthread_mutex_unlock(&apply_mu);
}

/* pending: id -> 1 queued, 2 running, 3 running and asked again. A database is checked by one
 * worker at a time, and a change seen while its check runs gets a fresh check afterwards, so an
 * older answer never lands after a newer one. Events reach the reconciler after their
 * transaction committed, so the check sees the change. */
static void
check_job(void *arg)
{
    char *id = arg;
    struct applied *a = pgcmk_xcalloc(1, sizeof(*a));
    struct pgcmk_err err;

    pthread_mutex_lock(&pending_mu);
    json_object_set_new(pending, id, json_integer(2));
    pthread_mutex_unlock(&pending_mu);
    a->id = id;
    a->have = rc_probe(id, 0, &a->o, &a->res, &err) > 0;
    a->o.res = &a->res;
    apply_enqueue(a);
}

void
pg_schedule_check(const char *id)
{
    json_t *st;

    pthread_mutex_lock(&pending_mu);
    if (!pending)
        pending = json_object();
    st = json_object_get(pending, id);
    if (st) {
        if (json_integer_value(st) == 2)
            json_object_set_new(pending, id, json_integer(3));
        pthread_mutex_unlock(&pending_mu);
        return;
    }
    json_object_set_new(pending, id, json_integer(1));
    busy++;
    pthread_mutex_unlock(&pending_mu);
    pgcmk_work_submit(check_job, pgcmk_xstrdup(id));
}

/* ---- fan-out: which databases an event touches -------------------------------------------- */

/* A copy of the event, looked up on a worker. all: every database with a key (periodic). */
struct fanout {
    struct pgcmk_event ev;
    int all;
};

static void
rc_select_ids(struct pgcmk_db *db, enum pgcmk_stmt which, json_t *ids)
{
    struct pgcmk_err err;

    if (pgcmk_db_each(db, pgcmk_db_stmt(db, which), pgcmk_db_collect_text, ids,
                      "list databases to check", &err) < 0)
        LOG_WARN("reconciler: listing databases failed: %s", err.message);
}

static void
fanout_job(void *arg)
{
    struct fanout *f = arg;
    struct pgcmk_db *db = pgcmk_db();
    json_t *ids = json_array(), *v;
    size_t i;

    if (f->all) {
        rc_select_ids(db, PGCMK_STMT_PG_ALL_CMK, ids);
    } else {
        for (const struct pgcmk_keysource *const *ks = pgcmk_keysources; *ks; ks++)
            if ((*ks)->touches)
                (*ks)->touches(db, &f->ev, ids);
    }
    json_array_foreach(ids, i, v)
        pg_schedule_check(json_string_value(v));
    json_decref(ids);
    pgcmk_event_release(&f->ev);
    free(f);
    pending_done();
}

/* Queues the fan-out whose place in `busy` the caller already took. */
static void
rc_fanout_counted(const struct pgcmk_event *ev)
{
    struct fanout *f = pgcmk_xcalloc(1, sizeof(*f));

    if (ev) {
        pgcmk_event_copy(&f->ev, ev);
    } else {
        f->all = 1;
    }
    pgcmk_work_submit(fanout_job, f);
}

static void
rc_busy_take(void)
{
    pthread_mutex_lock(&pending_mu);
    busy++;
    pthread_mutex_unlock(&pending_mu);
}

static void
rc_fanout(const struct pgcmk_event *ev)
{
    rc_busy_take();
    rc_fanout_counted(ev);
}

static int64_t next_periodic;
static pthread_mutex_t periodic_mu = PTHREAD_MUTEX_INITIALIZER;

/* Every CMK database once per interval of virtual time (and the pending key losses). */
static void
rc_periodic(int force)
{
    int64_t now = pgcmk_clock_now();
    int due;

    /* The periodic check counts as busy before another thread can find it not due: a settle
     * that follows a clock change (which the clock's tick may have made due first) waits for it. */
    pthread_mutex_lock(&periodic_mu);
    due = force || now >= next_periodic;
    if (due) {
        next_periodic = now + rc_check_interval_ms;
        rc_busy_take();
    }
    pthread_mutex_unlock(&periodic_mu);
    if (due)
        rc_fanout_counted(NULL);
}

static void
rc_on_event(const struct pgcmk_event *ev, void *arg)
{
    (void)arg;
    switch (ev->kind) {
    case PGCMK_EV_CLOCK_CHANGED:
        rc_periodic(rc_loss_delay_ms > 0);
        return;
    case PGCMK_EV_FAULT_CHANGED:
        rc_periodic(1);
        return;
    case PGCMK_EV_PG_ACCESS_CHANGED: /* the reconciler's own result */
        return;
    default:
        rc_fanout(ev);
    }
}

/* A clock change (set, advance, freeze, resume) re-judges pending losses at once; the clock's
 * one-second tick while it runs only lets the periodic check come due. */
static void
rc_on_clock(int64_t now_ms, void *arg)
{
    static atomic_ulong seen_gen;
    unsigned long gen = pgcmk_clock_generation();
    int changed = atomic_exchange(&seen_gen, gen) != gen;

    (void)now_ms;
    (void)arg;
    rc_periodic(changed && rc_loss_delay_ms > 0);
}

int
pgcmk_reconcile_settle(int64_t timeout_ms, unsigned long *busy_out, unsigned long *done_out)
{
    struct timespec until = pgcmk_deadline(CLOCK_REALTIME, timeout_ms);
    int settled;

    pthread_mutex_lock(&pending_mu);
    while (busy > 0 && pthread_cond_timedwait(&pending_cv, &pending_mu, &until) == 0)
        ;
    settled = busy == 0;
    if (busy_out)
        *busy_out = busy;
    if (done_out)
        *done_out = checks_done;
    pthread_mutex_unlock(&pending_mu);
    return settled;
}

/* ---- start -------------------------------------------------------------------------------- */

void
pgcmk_reconcile_start(const struct pgcmk_cfg *cfg)
{
    json_t *ids = json_array(), *v;
    size_t i;

    if (cfg) {
        if (pgcmk_duration_parse(cfg->key_check_interval, &rc_check_interval_ms) ||
            rc_check_interval_ms < 1000)
            rc_check_interval_ms = 60000;
        if (pgcmk_duration_parse(cfg->key_loss_delay, &rc_loss_delay_ms) || rc_loss_delay_ms < 0)
            rc_loss_delay_ms = 0;
    }
    next_periodic = pgcmk_clock_now() + rc_check_interval_ms;
    if (pgcmk_events_subscribe(rc_on_event, NULL) < 0)
        LOG_WARN("reconciler: the event bus is full");
    if (pgcmk_clock_listen(rc_on_clock, NULL))
        LOG_WARN("reconciler: cannot listen to the clock");
    /* No DEK is in memory after a start: check every database (its key source loads the DEK)
     * before it is served; settle waits for these checks. */
    rc_select_ids(pgcmk_db(), PGCMK_STMT_PG_LIST, ids);
    pthread_mutex_lock(&pending_mu);
    if (!unchecked)
        unchecked = json_object();
    json_array_foreach(ids, i, v)
        json_object_set_new(unchecked, json_string_value(v), json_true());
    pthread_mutex_unlock(&pending_mu);
    json_array_foreach(ids, i, v)
        pg_schedule_check(json_string_value(v));
    if (json_array_size(ids))
        LOG_INFO("reconciler: checking the keys of %zu databases after the start",
                 json_array_size(ids));
    json_decref(ids);
}

int
pgcmk_reconcile_wait_start(int64_t timeout_ms)
{
    int64_t until = pgcmk_wall_ms() + timeout_ms;
    int left;

    for (;;) {
        pthread_mutex_lock(&pending_mu);
        left = unchecked ? (int)json_object_size(unchecked) : 0;
        pthread_mutex_unlock(&pending_mu);
        if (left == 0 || pgcmk_wall_ms() >= until)
            return left == 0;
        if (pgcmk_reconcile_settle(100, NULL, NULL)) { /* never spin */
            struct timespec ts = {0, 10 * 1000 * 1000};

            nanosleep(&ts, NULL);
        }
    }
}
