/* work.h - the worker pool that runs long operations off the HTTP threads. */
#ifndef PGCMK_WORK_H
#define PGCMK_WORK_H

typedef void (*pgcmk_work_fn)(void *arg);

/* Starts n worker threads. */
void pgcmk_work_start(int n);
/* Queues fn(arg); runs it on a worker (or at once on this thread when the pool is not started). */
void pgcmk_work_submit(pgcmk_work_fn fn, void *arg);
/* Waits until the queue is empty and no job runs (tests, shutdown). */
void pgcmk_work_drain(void);
/* Finishes queued jobs, then stops the threads. */
void pgcmk_work_stop(void);

#endif
