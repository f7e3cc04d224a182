/* log.c - a KES server's audit and error logs (the last KES_RING lines of each, and the ndjson
 * streams /v1/log/audit and /v1/log/error that follow them) and its Prometheus metrics. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kes/internal.h"
#include "pgcmk/clock.h"
#include "pgcmk/log.h"
#include "pgcmk/net.h"

static const double kes_buckets[KES_HIST_NB] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 3, 5, 10, -1};

void
kes_ring_init(struct kes_server *s)
{
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
}

static void
kes_ring_clear(struct kes_ring *r)
{
    int i;

    for (i = 0; i < KES_RING; i++) {
        free(r->lines[i]);
        r->lines[i] = NULL;
    }
}

void
kes_ring_free(struct kes_server *s)
{
    kes_ring_clear(&s->audit);
    kes_ring_clear(&s->errors);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

/* Takes line (heap) into the ring and wakes the streams. */
static void
kes_ring_add(struct kes_server *s, struct kes_ring *r, char *line)
{
    pthread_mutex_lock(&s->mu);
    free(r->lines[r->seq % KES_RING]);
    r->lines[r->seq % KES_RING] = line;
    r->seq++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void
kes_audit(struct kes_server *s, const struct pgcmk_req *rq, const char *identity, int status,
          int64_t micros)
{
    char now[PGCMK_TIME_LEN];
    json_t *o;
    char *line;

    pgcmk_time_format(pgcmk_clock_now(), now);
    o = json_pack("{s:s, s:{s:s, s:s, s:s}, s:{s:i, s:I}}", "time", now, "request", "ip",
                  rq->peer ? rq->peer->ip : "", "path", rq->path ? rq->path : "", "identity",
                  identity ? identity : "", "response", "code", status, "time", (json_int_t)micros);
    if (o == NULL) /* a path that is not UTF-8 */
        o = json_pack("{s:s, s:{s:s, s:s, s:s}, s:{s:i, s:I}}", "time", now, "request", "ip",
                      rq->peer ? rq->peer->ip : "", "path", "?", "identity",
                      identity ? identity : "", "response", "code", status, "time",
                      (json_int_t)micros);
    line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (line == NULL)
        return;
    atomic_fetch_add(&s->audit_events, 1);
    /* log.audit: on also writes the event to pgcmkd's log (paths and identities only) */
    if (s->conf.log_audit)
        LOG_INFO("kes %s audit: %s", s->name, line);
    kes_ring_add(s, &s->audit, line);
}

void
kes_error_log(struct kes_server *s, const char *fmt, ...)
{
    char msg[512], now[PGCMK_TIME_LEN];
    va_list ap;
    json_t *o;
    char *line;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pgcmk_time_format(pgcmk_clock_now(), now);
    o = json_pack("{s:s, s:s, s:s}", "time", now, "level", "ERROR", "msg", msg);
    if (o == NULL)
        return;
    line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (line == NULL)
        return;
    atomic_fetch_add(&s->error_events, 1);
    if (s->conf.log_error)
        LOG_WARN("kes %s: %s", s->name, msg);
    kes_ring_add(s, &s->errors, line);
}

struct kes_follow {
    struct kes_server *s;
    struct kes_ring *ring;
    unsigned long seq; /* the ring's position when the request came: lines after it are sent */
};

/* Sends every line added to the ring after the request came, until the client leaves or the
 * server stops. */
static void
kes_follow_fn(struct pgcmk_stream *st, void *arg)
{
    struct kes_follow *f = arg;
    struct kes_server *s = f->s;
    unsigned long seq = f->seq;

    while (!atomic_load(&s->stopping)) {
        char *buf = NULL;
        size_t len = 0, cap = 0;

        pthread_mutex_lock(&s->mu);
        if (f->ring->seq == seq && !atomic_load(&s->stopping)) {
            struct timespec dl = pgcmk_deadline(CLOCK_REALTIME, 250);

            pthread_cond_timedwait(&s->cv, &s->mu, &dl);
        }
        if (f->ring->seq - seq > KES_RING)
            seq = f->ring->seq - KES_RING;
        for (; seq < f->ring->seq; seq++) {
            const char *l = f->ring->lines[seq % KES_RING];
            size_t n = strlen(l);

            if (len + n + 1 > cap) {
                cap = (len + n + 1) * 2;
                buf = pgcmk_xrealloc(buf, cap);
            }
            memcpy(buf + len, l, n);
            len += n;
            buf[len++] = '\n';
        }
        pthread_mutex_unlock(&s->mu);
        if (len) {
            int rc = pgcmk_stream_write(st, buf, len);

            free(buf);
            if (rc)
                return;
        } else if (!pgcmk_stream_alive(st, 0)) {
            return;
        }
    }
}

static void
kes_follow_free(void *arg)
{
    struct kes_follow *f = arg;

    kes_server_put(f->s);
    free(f);
}

static void
kes_follow(struct pgcmk_resp *rs, struct kes_server *s, struct kes_ring *ring)
{
    struct kes_follow *f = pgcmk_xcalloc(1, sizeof(*f));

    atomic_fetch_add(&s->refs, 1);
    f->s = s;
    f->ring = ring;
    /* taken now, not when the stream's thread starts: a line added after the answer's headers
     * went out (the client may act on them at once) must not be missed */
    pthread_mutex_lock(&s->mu);
    f->seq = ring->seq;
    pthread_mutex_unlock(&s->mu);
    rs->status = 200;
    rs->content_type = "application/x-ndjson";
    rs->stream = kes_follow_fn;
    rs->stream_arg = f;
    rs->stream_free = kes_follow_free;
}

void
kes_stream_audit(struct pgcmk_resp *rs, struct kes_server *s)
{
    kes_follow(rs, s, &s->audit);
}

void
kes_stream_error(struct pgcmk_resp *rs, struct kes_server *s)
{
    kes_follow(rs, s, &s->errors);
}

json_t *
kes_audit_json(struct kes_server *s, int limit)
{
    json_t *arr = json_array();
    unsigned long seq, from;

    if (limit <= 0 || limit > KES_RING)
        limit = KES_RING;
    pthread_mutex_lock(&s->mu);
    seq = s->audit.seq;
    from = seq > (unsigned long)limit ? seq - (unsigned long)limit : 0;
    for (; from < seq; from++) {
        json_t *o = json_loads(s->audit.lines[from % KES_RING], 0, NULL);

        if (o)
            json_array_append_new(arr, o);
    }
    pthread_mutex_unlock(&s->mu);
    return arr;
}

void
kes_metrics_count(struct kes_server *s, int status, int64_t micros)
{
    double secs = (double)micros / 1e6;
    int i;

    if (status >= 500)
        atomic_fetch_add(&s->req_failure, 1);
    else if (status >= 400)
        atomic_fetch_add(&s->req_error, 1);
    else
        atomic_fetch_add(&s->req_success, 1);
    for (i = 0; i < KES_HIST_NB - 1 && secs > kes_buckets[i]; i++)
        ;
    atomic_fetch_add(&s->hist[i], 1);
    atomic_fetch_add(&s->hist_sum_us, (unsigned long)(micros > 0 ? micros : 0));
}

char *
kes_metrics_text(struct kes_server *s)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    unsigned long cum = 0;
    struct rusage ru;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int i;

    if (f == NULL)
        return pgcmk_xstrdup("");
    getrusage(RUSAGE_SELF, &ru);
    fprintf(f,
            "# HELP kes_http_request_active Number of active requests that are not finished, "
            "yet.\n# TYPE kes_http_request_active gauge\nkes_http_request_active %lu\n",
            atomic_load(&s->req_active));
    fprintf(f,
            "# HELP kes_http_request_error Number of request that failed due to some error. "
            "(HTTP 4xx status code)\n# TYPE kes_http_request_error counter\n"
            "kes_http_request_error %lu\n",
            atomic_load(&s->req_error));
    fprintf(f,
            "# HELP kes_http_request_failure Number of request that failed due to some internal "
            "failure. (HTTP 5xx status code)\n# TYPE kes_http_request_failure counter\n"
            "kes_http_request_failure %lu\n",
            atomic_load(&s->req_failure));
    fprintf(f,
            "# HELP kes_http_request_success Number of requests that have been served "
            "successfully.\n# TYPE kes_http_request_success counter\n"
            "kes_http_request_success %lu\n",
            atomic_load(&s->req_success));
    fprintf(f, "# HELP kes_http_response_time Histogram of request response times spawning from "
               "10ms to 10s.\n# TYPE kes_http_response_time histogram\n");
    for (i = 0; i < KES_HIST_NB; i++) {
        cum += atomic_load(&s->hist[i]);
        if (kes_buckets[i] < 0)
            fprintf(f, "kes_http_response_time_bucket{le=\"+Inf\"} %lu\n", cum);
        else
            fprintf(f, "kes_http_response_time_bucket{le=\"%g\"} %lu\n", kes_buckets[i], cum);
    }
    fprintf(f, "kes_http_response_time_sum %g\nkes_http_response_time_count %lu\n",
            (double)atomic_load(&s->hist_sum_us) / 1e6, cum);
    fprintf(f,
            "# HELP kes_log_audit_events Number of audit log events written to the audit log "
            "targets.\n# TYPE kes_log_audit_events counter\nkes_log_audit_events %lu\n",
            atomic_load(&s->audit_events));
    fprintf(f,
            "# HELP kes_log_error_events Number of error log events written to the error log "
            "targets.\n# TYPE kes_log_error_events counter\nkes_log_error_events %lu\n",
            atomic_load(&s->error_events));
    fprintf(f,
            "# HELP kes_system_mem_heap_used Number of bytes that are currently allocated on "
            "the heap memory.\n# TYPE kes_system_mem_heap_used gauge\n"
            "kes_system_mem_heap_used %ld\n",
            ru.ru_maxrss * 1024);
    fprintf(f,
            "# HELP kes_system_num_cpu Number of available CPU cores.\n"
            "# TYPE kes_system_num_cpu gauge\nkes_system_num_cpu %ld\n"
            "# HELP kes_system_num_cpu_used Number of CPU cores that can be used by the KES "
            "server.\n# TYPE kes_system_num_cpu_used gauge\nkes_system_num_cpu_used %ld\n",
            ncpu, ncpu);
    fprintf(f,
            "# HELP kes_system_up_time The time the server has been up and running in "
            "seconds.\n# TYPE kes_system_up_time gauge\nkes_system_up_time %lld\n",
            (long long)((pgcmk_clock_now() - s->started_ms) / 1000));
    fclose(f);
    return out;
}
