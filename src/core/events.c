/* events.c - a small synchronous publish/subscribe bus. */
#include <pthread.h>
#include <stdatomic.h>

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

void
pgcmk_events_publish(const struct pgcmk_event *ev)
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

unsigned long
pgcmk_events_count(enum pgcmk_event_kind kind)
{
    return (unsigned)kind < PGCMK_EV__COUNT ? atomic_load(&events_counts[kind]) : 0;
}
