/* events.c - a small synchronous publish/subscribe bus. An event published inside a store
 * transaction waits on this thread's pending list until the transaction commits (the store calls
 * pgcmk_events_tx_end), and is dropped if it rolls back: a listener never sees a change that
 * did not happen, and a listener that reads the store sees the change. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/core.h"
#include "pgcmk/events.h"
#include "pgcmk/log.h"

#define EVENTS_MAX_SUBS 16

static pthread_mutex_t events_mu = PTHREAD_MUTEX_INITIALIZER;

static struct {
    pgcmk_event_fn fn;
    void *arg;
} events_subs[EVENTS_MAX_SUBS];

static int events_n;

/* One queued event: a deep copy, its strings owned. */
struct events_pending {
    struct pgcmk_event ev;
    struct events_pending *next;
};

static _Thread_local unsigned events_tx_depth;
static _Thread_local struct events_pending *events_head, **events_tail;
static atomic_ulong events_counts[PGCMK_EV__COUNT];

static const char *const events_names[] = {
#define PGCMK_X_EVNAME(e, name) name,
    PGCMK_EVENTS(PGCMK_X_EVNAME)
#undef PGCMK_X_EVNAME
};

const char *
pgcmk_event_name(enum pgcmk_event_kind kind)
{
    return (unsigned)kind < PGCMK_EV__COUNT ? events_names[kind] : "Unknown";
}

int
pgcmk_events_subscribe(pgcmk_event_fn fn, void *arg)
{
    int rc = -1;

    pthread_mutex_lock(&events_mu);
    if (events_n < EVENTS_MAX_SUBS) {
        events_subs[events_n].fn = fn;
        events_subs[events_n].arg = arg;
        events_n++;
        rc = 0;
    }
    pthread_mutex_unlock(&events_mu);
    return rc;
}

static void
events_deliver(const struct pgcmk_event *ev)
{
    int n;

    if ((unsigned)ev->kind < PGCMK_EV__COUNT)
        atomic_fetch_add(&events_counts[ev->kind], 1);
    LOG_DEBUG("event %s vault=%s key=%s", pgcmk_event_name(ev->kind), ev->vault ? ev->vault : "-",
              ev->key ? ev->key : "-");
    pthread_mutex_lock(&events_mu);
    n = events_n;
    pthread_mutex_unlock(&events_mu);
    for (int i = 0; i < n; i++)
        events_subs[i].fn(ev, events_subs[i].arg);
}

static char *
events_dup(const char *s)
{
    return s ? pgcmk_xstrdup(s) : NULL;
}

void
pgcmk_event_copy(struct pgcmk_event *dst, const struct pgcmk_event *ev)
{
    dst->kind = ev->kind;
    dst->vault = events_dup(ev->vault);
    dst->key = events_dup(ev->key);
    dst->version = events_dup(ev->version);
    dst->object_id = events_dup(ev->object_id);
    dst->resource_id = events_dup(ev->resource_id);
}

void
pgcmk_event_release(struct pgcmk_event *ev)
{
    free((char *)ev->vault);
    free((char *)ev->key);
    free((char *)ev->version);
    free((char *)ev->object_id);
    free((char *)ev->resource_id);
    memset(ev, 0, sizeof(*ev));
}

static void
events_free(struct events_pending *p)
{
    pgcmk_event_release(&p->ev);
    free(p);
}

void
pgcmk_events_publish(const struct pgcmk_event *ev)
{
    struct events_pending *p;

    if (events_tx_depth == 0) {
        events_deliver(ev);
        return;
    }
    p = pgcmk_xcalloc(1, sizeof(*p));
    pgcmk_event_copy(&p->ev, ev);
    if (!events_tail)
        events_tail = &events_head;
    *events_tail = p;
    events_tail = &p->next;
}

void
pgcmk_events_tx_begin(void)
{
    events_tx_depth++;
}

void
pgcmk_events_tx_end(int committed)
{
    struct events_pending *p, *next;

    if (events_tx_depth == 0 || --events_tx_depth > 0)
        return;
    p = events_head;
    events_head = NULL;
    events_tail = &events_head;
    for (; p; p = next) {
        next = p->next;
        if (committed)
            events_deliver(&p->ev);
        events_free(p);
    }
}

void *
pgcmk_events_tx_mark(void)
{
    if (events_tx_depth == 0)
        return NULL;
    if (!events_tail)
        events_tail = &events_head;
    return events_tail;
}

void
pgcmk_events_tx_undo(void *mark)
{
    struct events_pending **at = mark, *p, *next;

    if (at == NULL || events_tx_depth == 0)
        return;
    p = *at; /* the first event queued after the mark (the queue only grows in a transaction) */
    *at = NULL;
    events_tail = at;
    for (; p; p = next) {
        next = p->next;
        events_free(p);
    }
}

unsigned long
pgcmk_events_count(enum pgcmk_event_kind kind)
{
    return (unsigned)kind < PGCMK_EV__COUNT ? atomic_load(&events_counts[kind]) : 0;
}
