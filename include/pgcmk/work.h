/* work.h - the worker pool that runs long operations off the HTTP threads. */
#ifndef PGCMK_WORK_H
#define PGCMK_WORK_H

typedef void (*pgcmk_work_fn)(void *arg);

/* Starts n worker threads. */
void pgcmk_work_start(int n);
/* Queues fn(arg); runs it on a worker (or at once on this thread when the pool is not started). */
void pgcmk_work_submit(pgcmk_work_fn fn, void *arg);
/* Called by a job that is about to wait for other jobs of the pool (a deployment waiting for
 * its resources' operations): this thread leaves the pool, a new worker replaces it at once, and
 * the thread ends with the job, so waiting never takes a worker away from the jobs waited for.
 * 0 when detached (or already), -1 when not on a pool worker or the pool is stopping (then the
 * job simply goes on as a worker). */
int pgcmk_work_detach(void);
/* Waits until the queue is empty and no job runs, detached ones included (tests, shutdown). */
void pgcmk_work_drain(void);
/* Finishes queued jobs, then stops the threads (and waits for detached jobs). */
void pgcmk_work_stop(void);

#endif
