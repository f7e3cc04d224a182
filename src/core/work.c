/* work.c - a fixed pool of worker threads fed by one FIFO queue.
 *
 * A job that will wait for other jobs of the pool (a deployment waits for the operations of the
 * resources it creates) must not hold a worker while it waits: with every worker waiting, the
 * jobs they wait for would never run. Such a job calls pgcmk_work_detach() first: its thread
 * leaves the pool (a new worker takes its place at once, so the pool keeps its size) and ends
 * with the job. pgcmk_work_drain() and pgcmk_work_stop() still wait for detached jobs. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "pgcmk/core.h"
#include "pgcmk/work.h"

#define WORK_MAX_THREADS  64
#define WORK_MAX_DETACHED 256 /* jobs running outside the pool at once; beyond, they stay in it */

struct work_item {
    pgcmk_work_fn fn;
    void *arg;
    struct work_item *next;
};

static pthread_mutex_t work_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t work_idle_cv = PTHREAD_COND_INITIALIZER;
static struct work_item *work_head, *work_tail;
static pthread_t work_threads[WORK_MAX_THREADS];
static int work_n, work_stopping, work_busy;
static int work_detached; /* detached jobs still running (counted in work_busy too) */
static _Thread_local int work_slot = -1; /* this thread's index in work_threads, or -1 */
static _Thread_local int work_leaving;   /* this worker detached: it ends after its job */

static void *
work_main(void *arg)
{
    work_slot = (int)(intptr_t)arg;
    pthread_mutex_lock(&work_mu);
    for (;;) {
        struct work_item *it;

        while (work_head == NULL && !work_stopping)
            pthread_cond_wait(&work_cv, &work_mu);
        if (work_head == NULL)
            break;
        it = work_head;
        work_head = it->next;
        if (work_head == NULL)
            work_tail = NULL;
        work_busy++;
        pthread_mutex_unlock(&work_mu);
        it->fn(it->arg);
        free(it);
        pthread_mutex_lock(&work_mu);
        work_busy--;
        if (work_leaving)
            work_detached--;
        if (work_head == NULL && work_busy == 0)
            pthread_cond_broadcast(&work_idle_cv);
        if (work_leaving) {
            pthread_cond_broadcast(&work_idle_cv); /* pgcmk_work_stop waits for work_detached */
            break;
        }
    }
    pthread_mutex_unlock(&work_mu);
    return NULL;
}

void
pgcmk_work_start(int n)
{
    pthread_mutex_lock(&work_mu);
    work_stopping = 0;
    pthread_mutex_unlock(&work_mu);
    for (; work_n < n && work_n < WORK_MAX_THREADS; work_n++)
        if (pthread_create(&work_threads[work_n], NULL, work_main, (void *)(intptr_t)work_n) != 0)
            abort();
}

int
pgcmk_work_detach(void)
{
    pthread_t repl;
    int slot = work_slot;

    if (slot < 0 || work_leaving)
        return work_leaving ? 0 : -1; /* not a pool worker (or already out): nothing to free */
    pthread_mutex_lock(&work_mu);
    if (work_stopping || work_detached >= WORK_MAX_DETACHED ||
        pthread_create(&repl, NULL, work_main, (void *)(intptr_t)slot) != 0) {
        pthread_mutex_unlock(&work_mu);
        return -1;
    }
    /* The new worker takes this slot (pgcmk_work_stop joins it); this thread is detached and
     * ends when its job does. */
    work_threads[slot] = repl;
    pthread_detach(pthread_self());
    work_slot = -1;
    work_leaving = 1;
    work_detached++;
    pthread_mutex_unlock(&work_mu);
    return 0;
}

void
pgcmk_work_submit(pgcmk_work_fn fn, void *arg)
{
    struct work_item *it;

    if (work_n == 0) {
        fn(arg);
        return;
    }
    it = pgcmk_xcalloc(1, sizeof(*it));
    it->fn = fn;
    it->arg = arg;
    pthread_mutex_lock(&work_mu);
    if (work_tail)
        work_tail->next = it;
    else
        work_head = it;
    work_tail = it;
    pthread_cond_signal(&work_cv);
    pthread_mutex_unlock(&work_mu);
}

void
pgcmk_work_drain(void)
{
    pthread_mutex_lock(&work_mu);
    while (work_n > 0 && (work_head != NULL || work_busy > 0))
        pthread_cond_wait(&work_idle_cv, &work_mu);
    pthread_mutex_unlock(&work_mu);
}

void
pgcmk_work_stop(void)
{
    pthread_t threads[WORK_MAX_THREADS];
    int n;

    pthread_mutex_lock(&work_mu);
    /* Detached jobs first, while the workers still run the jobs they wait for. */
    while (work_detached > 0)
        pthread_cond_wait(&work_idle_cv, &work_mu);
    work_stopping = 1; /* from now on nothing detaches, so the slots stay as they are */
    pthread_cond_broadcast(&work_cv);
    n = work_n;
    for (int i = 0; i < n; i++)
        threads[i] = work_threads[i];
    pthread_mutex_unlock(&work_mu);
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    work_n = 0;
}
