/* internal.h - what the KES server's files (server.c, routes.c, log.c) share. */
#ifndef PGCMK_KES_INTERNAL_H
#define PGCMK_KES_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "pgcmk/http.h"
#include "pgcmk/kes.h"

#define KES_RING     256 /* audit and error lines kept per server */
#define KES_NAME_MAX 64
#define KES_HIST_NB  11

struct pgcmk_net_https;

/* One log ring (audit or error): the last KES_RING lines, and a sequence number streams follow. */
struct kes_ring {
    char *lines[KES_RING];
    unsigned long seq; /* lines ever added; line i lives at lines[i % KES_RING] */
};

struct kes_server {
    char name[KES_NAME_MAX];
    struct pgcmk_kes_conf conf;
    char *conf_text; /* the document as posted (secrets: wiped on free) */
    char *base_dir;  /* relative paths of a --kes-config file */
    int stored;      /* created by POST: kept in the store */
    int port;
    int64_t created_ms, started_ms; /* virtual clock */
    int64_t started_wall_ms;
    struct pgcmk_net_https *net;
    struct pgcmk_kes_store *store;
    atomic_int refs;
    atomic_int stopping;

    pthread_mutex_t mu; /* the rings, the condition streams wait on */
    pthread_cond_t cv;
    struct kes_ring audit, errors;

    /* status.ping on the virtual clock */
    int64_t next_ping_ms;
    atomic_int reachable; /* last known: 1 reachable, 0 not, -1 unknown */
    atomic_int pinging;

    /* metrics (log.c) */
    atomic_ulong req_success, req_error, req_failure, req_active;
    atomic_ulong audit_events, error_events;
    atomic_ulong hist[KES_HIST_NB]; /* response times in KES's buckets (log.c), not cumulative */
    atomic_ulong hist_sum_us;
    struct kes_server *next;
};

/* routes.c: the listener's handler (arg = the server) and its answer to an oversized body. */
void kes_handle(struct pgcmk_req *rq, struct pgcmk_resp *rs, void *arg);
void kes_too_large(struct pgcmk_req *rq, struct pgcmk_resp *rs, void *arg);
/* The routes as /v1/api lists them, with the config's timeouts. */
json_t *kes_api_list(const struct kes_server *s);
/* The policy of an identity (NULL: none), and whether it is the admin. */
const struct pgcmk_kes_policy_cfg *kes_policy_of(const struct kes_server *s, const char *id);

/* log.c */
void kes_ring_init(struct kes_server *s);
void kes_ring_free(struct kes_server *s);
/* An audit event for an answered request (ring, streams, pgcmkd's log when log.audit: on). */
void kes_audit(struct kes_server *s, const struct pgcmk_req *rq, const char *identity, int status,
               int64_t micros);
/* An error-log event (KES's error log: a keystore failure, a refused TLS client). */
void kes_error_log(struct kes_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The streams of /v1/log/audit and /v1/log/error. */
void kes_stream_audit(struct pgcmk_resp *rs, struct kes_server *s);
void kes_stream_error(struct pgcmk_resp *rs, struct kes_server *s);
/* The last `limit` audit events as a JSON array (new reference). */
json_t *kes_audit_json(struct kes_server *s, int limit);
/* Prometheus text of /v1/metrics (heap). */
char *kes_metrics_text(struct kes_server *s);
/* Counts a finished request. */
void kes_metrics_count(struct kes_server *s, int status, int64_t micros);

/* server.c */
void kes_server_put(struct kes_server *s);
/* The running server listening on port (a reference: kes_server_put), or NULL. */
struct kes_server *kes_server_by_port(int port);

#endif
