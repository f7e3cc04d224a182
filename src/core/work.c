/* work.c - a fixed pool of worker threads fed by one FIFO queue. */
#include <pthread.h>
#include <stdlib.h>

#include "pgcmk/core.h"
#include "pgcmk/work.h"

#define WORK_MAX_THREADS 64

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

static void *
work_main(void *unused)
{
    PGCMK_UNUSED(unused);
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
        if (work_head == NULL && work_busy == 0)
            pthread_cond_broadcast(&work_idle_cv);
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
        if (pthread_create(&work_threads[work_n], NULL, work_main, NULL) != 0)
            abort();
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
    pthread_mutex_lock(&work_mu);
    work_stopping = 1;
    pthread_cond_broadcast(&work_cv);
    pthread_mutex_unlock(&work_mu);
    for (int i = 0; i < work_n; i++)
        pthread_join(work_threads[i], NULL);
    work_n = 0;
}
