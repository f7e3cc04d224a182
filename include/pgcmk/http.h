/* http.h - the HTTP(S) server, the route table and the request/response every handler sees.
 *
 * Handlers never see libmicrohttpd: they get a pgcmk_req (method, path, host, headers, query,
 * captured path parameters, the parsed JSON body) and fill a pgcmk_resp, or return -1 with err
 * set, and the route's plane renders the error envelope. */
#ifndef PGCMK_HTTP_H
#define PGCMK_HTTP_H

#include <stddef.h>
#include <jansson.h>

#include "pgcmk/cfg.h"
#include "pgcmk/core.h"
#include "pgcmk/err.h"

#define PGCMK_MAX_PARAMS       12
#define PGCMK_MAX_QUERY        16
#define PGCMK_MAX_HEADERS      48
#define PGCMK_MAX_RESP_HEADERS 16

struct pgcmk_kv {
    char *key;
    char *value;
};

/* Which service a request is for: picked from the Host header before the path is matched. */
enum pgcmk_plane { PGCMK_PLANE_ARM = 0, PGCMK_PLANE_VAULT = 1, PGCMK_PLANE_KES = 2 };

/* How an error is rendered: ARM's {"error":{code,message,target,details}}, Key Vault's
 * {"error":{code,message,innererror}}, AAD's OAuth2 error body, or KES's {"message":"..."}. */
enum pgcmk_envelope {
    PGCMK_ENV_ARM = 0,
    PGCMK_ENV_VAULT = 1,
    PGCMK_ENV_OAUTH = 2,
    PGCMK_ENV_KES = 3
};

/* The TLS client of a listener that asks for client certificates (the KES plane, src/net),
 * else NULL. */
struct pgcmk_peer {
    int n_leaf;        /* certificates the client sent that are not CA certificates */
    char identity[65]; /* hex SHA-256 of the first non-CA certificate's SubjectPublicKeyInfo
                        * (KES's identity), "" when the client sent none */
    int verified;      /* the chain verified against the listener's CA */
    char ip[64];       /* the client's address */
};

/* An answer written while it is produced (the ndjson streams of KES, /v1/log/audit and error): the
 * listener sends the status and headers, then calls rs->stream on the connection's thread until it
 * returns. */
struct pgcmk_stream;
typedef void (*pgcmk_stream_fn)(struct pgcmk_stream *s, void *arg);
/* 0, or -1 once the client has gone or the listener is stopping: the stream function returns. */
int pgcmk_stream_write(struct pgcmk_stream *s, const void *buf, size_t len);

struct pgcmk_req {
    const char *method;
    char *path;     /* percent-decoded, '//' collapsed, no query */
    char *raw_path; /* as sent, without the query */
    char *host;     /* Host header, port removed, lower case */
    int host_port;  /* port named in the Host header, or the listener's */
    char *vault;    /* {vault} of {vault}.vault.localhost, else NULL */
    enum pgcmk_plane plane;
    int tls;  /* arrived on the HTTPS listener */
    int port; /* the listener's port */
    char request_id[37];
    char correlation_id[80];
    char client_request_id[80];
    const char *api_version; /* the ?api-version= value, or NULL */
    struct pgcmk_kv params[PGCMK_MAX_PARAMS];
    int n_params;
    struct pgcmk_kv query[PGCMK_MAX_QUERY];
    int n_query;
    struct pgcmk_kv headers[PGCMK_MAX_HEADERS];
    int n_headers;
    char *body; /* NUL-terminated copy of the body */
    size_t body_len;
    json_t *json; /* parsed body for ROUTE_F_JSON routes */
    const struct pgcmk_route *route;
    char principal[64]; /* object id of the caller (admin when auth is open and no token) */
    const struct pgcmk_cfg *cfg;
    const struct pgcmk_peer *peer; /* the TLS client's certificates, or NULL */
    void *admitted; /* what the plane's admission hook left for the handler, or NULL */
    void (*admitted_free)(void *admitted);
};

struct pgcmk_resp {
    int status;
    char *body;
    size_t body_len;
    const char *content_type;
    struct pgcmk_kv headers[PGCMK_MAX_RESP_HEADERS];
    int n_headers;
    /* A streamed answer (listeners of src/net/ only): body unused, stream_free(stream_arg) after.
     */
    pgcmk_stream_fn stream;
    void *stream_arg;
    void (*stream_free)(void *arg);
};

typedef int (*pgcmk_handler_fn)(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err);

/* Route flags. */
#define ROUTE_F_JSON     0x01u /* a JSON body is required and parsed into rq->json */
#define ROUTE_F_APIVER   0x02u /* ?api-version= required (checked by the handler's plane) */
#define ROUTE_F_NOAUTH   0x04u /* no bearer token checks (token service, health, portal) */
#define ROUTE_F_ANYBODY  0x08u /* body kept raw (forms, JSONC); no content-type check */
#define ROUTE_F_ANYQUERY 0x10u /* any query parameter accepted */
#define ROUTE_F_SECRET   0x20u /* the answer carries secrets: its body is wiped once sent */

struct pgcmk_route {
    const char *method;  /* "GET", "PUT", ... */
    const char *pattern; /* "/subscriptions/{sub}/resourcegroups/{rg}"; last may be {*rest} */
    enum pgcmk_plane plane;
    enum pgcmk_envelope envelope;
    unsigned flags;
    const char *query; /* allowed query parameters besides api-version: "$filter,$top" */
    pgcmk_handler_fn fn;
    /* The Key Vault key permission the route needs ("get", "wrapKey", ...), or NULL. A route
     * that names one is admitted by its plane's hook (pgcmk_http_set_admit), not by the bearer
     * check, before the handler runs. Last, so that tables without it need not spell it. */
    const char *perm;
};

/* The route table: modules add their arrays at start, before the server runs. Adding after a
 * successful pgcmk_router_check() (the table is then sealed and served without a lock) is a bug:
 * it logs and aborts. pgcmk_router_reset() empties and unseals the table (tests). */
void pgcmk_router_add(const struct pgcmk_route *routes, size_t n);
void pgcmk_router_reset(void);
int pgcmk_router_sealed(void);
/* Calls fn for every route, in the order they were added (the coverage table). */
void pgcmk_router_each(void (*fn)(const struct pgcmk_route *r, void *arg), void *arg);
/* Matches plane+method+path. Returns the route and fills rq->params, or NULL with *allow set to
 * the methods that would match the path ("" when no route has the path). */
const struct pgcmk_route *pgcmk_router_match(struct pgcmk_req *rq, char *allow, size_t allow_cap);
/* 0 when no two routes can match the same request (and the table is sealed), else -1 and a
 * message on stderr. */
int pgcmk_router_check(void);

/* Request helpers. */
const char *pgcmk_req_param(const struct pgcmk_req *rq, const char *name);
const char *pgcmk_req_query(const struct pgcmk_req *rq, const char *name);
const char *pgcmk_req_header(const struct pgcmk_req *rq, const char *name);
/* "https://localhost:8443": the base URL this request came in on (for absolute links). */
char *pgcmk_req_base_url(const struct pgcmk_req *rq);

/* application/x-www-form-urlencoded: the decoded value of `key` in `body` (heap), or NULL. */
char *pgcmk_form_get(const char *body, size_t len, const char *key);

/* Response helpers. _json steals obj. */
void pgcmk_resp_json(struct pgcmk_resp *rs, int status, json_t *obj);
void pgcmk_resp_text(struct pgcmk_resp *rs, int status, const char *content_type, const char *body,
                     size_t len);
void pgcmk_resp_empty(struct pgcmk_resp *rs, int status);
void pgcmk_resp_header(struct pgcmk_resp *rs, const char *name, const char *value);
void pgcmk_resp_release(struct pgcmk_resp *rs);
/* Renders err into rs in the given envelope (counts it, logs 5xx causes). */
void pgcmk_resp_error(struct pgcmk_resp *rs, enum pgcmk_envelope env, const struct pgcmk_err *err);

/* Runs the whole pipeline for one request without a socket (unit tests, fuzzing, deployments):
 * route, checks, handler, error rendering. rq must have method, raw path, host and query set. */
void pgcmk_http_dispatch(struct pgcmk_req *rq, struct pgcmk_resp *rs);
/* One function told about every answered request, with the answer (the Activity Log records ARM
 * writes, and why a refused one was refused). */
typedef void (*pgcmk_http_observer_fn)(const struct pgcmk_req *rq, const struct pgcmk_resp *rs);
void pgcmk_http_set_observer(pgcmk_http_observer_fn fn);
/* Fills rq from a method, a URL path with query, a Host and a body (copied). */
void pgcmk_req_init(struct pgcmk_req *rq, const struct pgcmk_cfg *cfg, const char *method,
                    const char *url, const char *host, const char *body, size_t body_len);
void pgcmk_req_release(struct pgcmk_req *rq);
void pgcmk_req_add_header(struct pgcmk_req *rq, const char *name, const char *value);

/* The listeners. */
struct pgcmk_server;
struct pgcmk_server *pgcmk_server_start(const struct pgcmk_cfg *cfg, const char *cert_pem,
                                        const char *key_pem, struct pgcmk_err *err);
int pgcmk_server_port(const struct pgcmk_server *srv);      /* HTTPS */
int pgcmk_server_http_port(const struct pgcmk_server *srv); /* plain, or -1 */

/* A listener bound to a plane of its own (the Vault API): every request goes to `handle` instead
 * of the Host/path router (same keep-alive, threads and two-phase answers); a body over
 * --max-body-kb gets `too_large`'s answer. Answers are wiped once sent (they may carry secrets).
 * port: 0 = any free port; http_port: plain HTTP, -1 = off. */
struct pgcmk_server_plane {
    int port;
    int http_port;
    void (*handle)(struct pgcmk_req *rq, struct pgcmk_resp *rs);
    void (*too_large)(struct pgcmk_req *rq, struct pgcmk_resp *rs);
};
struct pgcmk_server *pgcmk_server_start_plane(const struct pgcmk_cfg *cfg, const char *cert_pem,
                                              const char *key_pem,
                                              const struct pgcmk_server_plane *plane,
                                              struct pgcmk_err *err);
/* Stops accepting, waits (up to grace_ms) for in-flight requests, then stops. */
void pgcmk_server_stop(struct pgcmk_server *srv, int grace_ms);

/* Authentication hook (the token service installs the real one). Returns 0 and fills
 * rq->principal, or -1 with err. The default: open mode = admin, strict = 401. */
typedef int (*pgcmk_auth_fn)(struct pgcmk_req *rq, struct pgcmk_err *err);
void pgcmk_http_set_auth(pgcmk_auth_fn fn);

/* Admission of the routes that name a permission (route->perm): the hook of the route's plane
 * runs instead of the authentication hook, before the handler (the Key Vault data plane installs
 * one: challenge, bearer token, vault, access policy). It may leave state for the handler in
 * rq->admitted and rq->admitted_free, which the dispatcher releases after the handler. A route
 * with a permission on a plane without a hook is refused (500). */
typedef int (*pgcmk_admit_fn)(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err);
void pgcmk_http_set_admit(enum pgcmk_plane plane, pgcmk_admit_fn fn);

#endif
