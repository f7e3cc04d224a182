/* clock.c - the virtual clock: wall time plus an offset, or frozen at one instant. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "pgcmk/clock.h"

#define CLOCK_MAX_LISTENERS 16

static pthread_mutex_t clock_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t clock_off; /* virtual - wall, when running */
static int clock_is_frozen;
static int64_t clock_frozen_at;
static atomic_ulong clock_gen;

static struct {
    pgcmk_clock_listener_fn fn;
    void *arg;
} listeners[CLOCK_MAX_LISTENERS];

static int n_listeners;

static void
clock_call_listeners(void)
{
    int64_t now = pgcmk_clock_now();
    int n;

    pthread_mutex_lock(&clock_mu);
    n = n_listeners;
    pthread_mutex_unlock(&clock_mu);
    for (int i = 0; i < n; i++)
        listeners[i].fn(now, listeners[i].arg);
}

static void
clock_notify(void)
{
    atomic_fetch_add(&clock_gen, 1);
    clock_call_listeners();
}

void
pgcmk_clock_init(void)
{
    pthread_mutex_lock(&clock_mu);
    clock_off = 0;
    clock_is_frozen = 0;
    clock_frozen_at = 0;
    pthread_mutex_unlock(&clock_mu);
}

int64_t
pgcmk_clock_now(void)
{
    int64_t now;

    pthread_mutex_lock(&clock_mu);
    now = clock_is_frozen ? clock_frozen_at : pgcmk_wall_ms() + clock_off;
    pthread_mutex_unlock(&clock_mu);
    return now;
}

int
pgcmk_clock_frozen(void)
{
    int f;

    pthread_mutex_lock(&clock_mu);
    f = clock_is_frozen;
    pthread_mutex_unlock(&clock_mu);
    return f;
}

int64_t
pgcmk_clock_frozen_at(void)
{
    int64_t t;

    pthread_mutex_lock(&clock_mu);
    t = clock_frozen_at;
    pthread_mutex_unlock(&clock_mu);
    return t;
}

void
pgcmk_clock_advance(int64_t ms)
{
    pthread_mutex_lock(&clock_mu);
    if (clock_is_frozen)
        clock_frozen_at += ms;
    else
        clock_off += ms;
    pthread_mutex_unlock(&clock_mu);
    clock_notify();
}

void
pgcmk_clock_set(int64_t ms)
{
    pthread_mutex_lock(&clock_mu);
    if (clock_is_frozen)
        clock_frozen_at = ms;
    else
        clock_off = ms - pgcmk_wall_ms();
    pthread_mutex_unlock(&clock_mu);
    clock_notify();
}

void
pgcmk_clock_freeze(void)
{
    pthread_mutex_lock(&clock_mu);
    if (!clock_is_frozen) {
        clock_frozen_at = pgcmk_wall_ms() + clock_off;
        clock_is_frozen = 1;
    }
    pthread_mutex_unlock(&clock_mu);
    clock_notify();
}

void
pgcmk_clock_resume(void)
{
    pthread_mutex_lock(&clock_mu);
    if (clock_is_frozen) {
        /* Time goes on from where it stood. */
        clock_off = clock_frozen_at - pgcmk_wall_ms();
        clock_is_frozen = 0;
    }
    pthread_mutex_unlock(&clock_mu);
    clock_notify();
}

int64_t
pgcmk_clock_offset(void)
{
    int64_t off;

    pthread_mutex_lock(&clock_mu);
    off = clock_is_frozen ? clock_frozen_at - pgcmk_wall_ms() : clock_off;
    pthread_mutex_unlock(&clock_mu);
    return off;
}

void
pgcmk_clock_restore(int64_t offset_ms, int frozen, int64_t frozen_at_ms)
{
    pthread_mutex_lock(&clock_mu);
    clock_off = offset_ms;
    clock_is_frozen = frozen;
    clock_frozen_at = frozen_at_ms;
    pthread_mutex_unlock(&clock_mu);
}

int
pgcmk_clock_listen(pgcmk_clock_listener_fn fn, void *arg)
{
    int rc = -1;

    pthread_mutex_lock(&clock_mu);
    if (n_listeners < CLOCK_MAX_LISTENERS) {
        listeners[n_listeners].fn = fn;
        listeners[n_listeners].arg = arg;
        n_listeners++;
        rc = 0;
    }
    pthread_mutex_unlock(&clock_mu);
    return rc;
}

unsigned long
pgcmk_clock_generation(void)
{
    return atomic_load(&clock_gen);
}

/* ---- the tick: listeners every interval of wall time while the clock runs ------------------ */

static pthread_mutex_t tick_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tick_cv;
static pthread_t tick_thread;
static int tick_started, tick_stopping;
static int64_t tick_interval_ms;

static void *
clock_tick_main(void *arg)
{
    struct timespec until;

    PGCMK_UNUSED(arg);
    pthread_mutex_lock(&tick_mu);
    while (!tick_stopping) {
        until = pgcmk_deadline(CLOCK_MONOTONIC, tick_interval_ms);
        while (!tick_stopping && pthread_cond_timedwait(&tick_cv, &tick_mu, &until) == 0)
            ;
        if (tick_stopping)
            break;
        pthread_mutex_unlock(&tick_mu);
        if (!pgcmk_clock_frozen()) /* a frozen clock does not move: nothing falls due */
            clock_call_listeners();
        pthread_mutex_lock(&tick_mu);
    }
    pthread_mutex_unlock(&tick_mu);
    return NULL;
}

int
pgcmk_clock_tick_start(int64_t interval_ms)
{
    pthread_condattr_t ca;
    int rc = 0;

    if (interval_ms <= 0)
        return -1;
    pthread_mutex_lock(&tick_mu);
    if (!tick_started) {
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&tick_cv, &ca);
        pthread_condattr_destroy(&ca);
        tick_interval_ms = interval_ms;
        tick_stopping = 0;
        rc = pthread_create(&tick_thread, NULL, clock_tick_main, NULL) == 0 ? 0 : -1;
        tick_started = rc == 0;
        if (rc != 0)
            pthread_cond_destroy(&tick_cv);
    }
    pthread_mutex_unlock(&tick_mu);
    return rc;
}

void
pgcmk_clock_tick_stop(void)
{
    pthread_mutex_lock(&tick_mu);
    if (!tick_started) {
        pthread_mutex_unlock(&tick_mu);
        return;
    }
    tick_stopping = 1;
    pthread_cond_signal(&tick_cv);
    pthread_mutex_unlock(&tick_mu);
    pthread_join(tick_thread, NULL);
    pthread_mutex_lock(&tick_mu);
    tick_started = 0;
    pthread_cond_destroy(&tick_cv);
    pthread_mutex_unlock(&tick_mu);
}
