/* server.c - libmicrohttpd listeners: HTTPS (GnuTLS inside MHD) and optional plain HTTP.
 * Responses are queued on the last handler call, never the first (queuing early makes MHD answer
 * Connection: close, see DESIGN.md 9).
 *
 * Each listen address gets cfg->threads single-threaded MHD daemons, each with its own listening
 * socket on the same address and port (SO_REUSEPORT), so the kernel spreads new connections over
 * the threads. With one daemon and MHD's thread pool, every pool thread has the listen socket in
 * its epoll set and the first one awake accepts a whole burst (up to 10 in a row): keep-alive
 * connections then stay on one thread and CPU-bound requests (unwrapKey) get one core.
 * Thread-per-connection is no option: each thread would open its own SQLite connection (store.c
 * keeps one per thread and closes them only at pgcmk_store_close).
 * Before the shared sockets bind, a plain socket (SO_REUSEADDR, no SO_REUSEPORT) binds the address
 * and port alone and closes: it fails when anything listens there already, so a second pgcmkd on
 * the same port fails as before instead of sharing the connections. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "pgcmk/http.h"
#include "pgcmk/log.h"

/* What each listener's access handler gets as its closure. */
struct server_listener {
    struct pgcmk_server *srv;
    int tls;
    int port;
};

struct pgcmk_server {
    struct MHD_Daemon **d;
    struct server_listener *ls; /* one per daemon; never moves (each daemon's closure) */
    int n, cap;
    int port, http_port;
    const struct pgcmk_cfg *cfg;
    const struct pgcmk_server_plane *plane; /* NULL: the router */
};

/* Per-request state behind *req_cls. */
struct conn_req {
    char *body;
    size_t len, cap;
    int too_large;
    int tls, port;
    int status;
    int64_t start_ms;
    char method[16];
    char path[160];
    char request_id[37];
};

static atomic_int server_in_flight;

static enum MHD_Result
server_collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    PGCMK_UNUSED(kind);
    pgcmk_req_add_header(cls, key, value);
    return MHD_YES;
}

static enum MHD_Result
server_collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct pgcmk_req *rq = cls;

    PGCMK_UNUSED(kind);
    if (rq->n_query < PGCMK_MAX_QUERY) {
        rq->query[rq->n_query].key = pgcmk_xstrdup(key);
        rq->query[rq->n_query].value = pgcmk_xstrdup(value ? value : "");
        rq->n_query++;
    }
    return MHD_YES;
}

/* An answer that carries secrets (ROUTE_F_SECRET): wiped when MHD is done with it. */
struct server_secret {
    char *body;
    size_t len;
};

static void
server_secret_free(void *cls)
{
    struct server_secret *sb = cls;

    pgcmk_secret_free(sb->body, sb->len);
    free(sb);
}

static enum MHD_Result
server_queue(struct MHD_Connection *c, struct conn_req *cr, struct pgcmk_resp *rs, int secret)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    if (secret && rs->body) {
        struct server_secret *sb = pgcmk_xmalloc(sizeof(*sb));

        sb->body = rs->body;
        sb->len = rs->body_len;
        r = MHD_create_response_from_buffer_with_free_callback_cls(rs->body_len, rs->body,
                                                                   server_secret_free, sb);
        if (r == NULL)
            free(sb);
    } else {
        r = MHD_create_response_from_buffer(rs->body_len, rs->body ? rs->body : (char *)"",
                                            rs->body ? MHD_RESPMEM_MUST_FREE
                                                     : MHD_RESPMEM_PERSISTENT);
    }
    if (r == NULL)
        return MHD_NO;
    rs->body = NULL; /* MHD owns it now */
    for (int i = 0; i < rs->n_headers; i++)
        if (MHD_add_response_header(r, rs->headers[i].key, rs->headers[i].value) != MHD_YES)
            LOG_WARN("could not add header %s", rs->headers[i].key);
    if (rs->content_type)
        MHD_add_response_header(r, "Content-Type", rs->content_type);
    cr->status = rs->status;
    ret = MHD_queue_response(c, (unsigned)rs->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A client-sent id is echoed when short and printable (as req.c does for dispatched requests). */
static int
server_id_ok(const char *s, size_t cap)
{
    if (s == NULL || *s == '\0' || strlen(s) >= cap)
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

static void
server_reject_413(struct pgcmk_server *srv, struct MHD_Connection *c, struct conn_req *cr,
                  const char *host)
{
    struct pgcmk_req rq;
    struct pgcmk_resp rs;
    struct pgcmk_err err;
    const char *corr =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-ms-correlation-request-id");
    const char *client = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-ms-client-request-id");

    memset(&rs, 0, sizeof(rs));
    pgcmk_req_init(&rq, srv->cfg, "POST", "/", host, NULL, 0);
    rq.tls = cr->tls;
    pgcmk_uuid(rq.request_id);
    if (srv->plane) {
        snprintf(cr->request_id, sizeof(cr->request_id), "%s", rq.request_id);
        srv->plane->too_large(&rq, &rs);
        pgcmk_resp_header(&rs, "Connection", "close");
        server_queue(c, cr, &rs, 0);
        pgcmk_resp_release(&rs);
        pgcmk_req_release(&rq);
        return;
    }
    snprintf(rq.correlation_id, sizeof(rq.correlation_id), "%s",
             server_id_ok(corr, sizeof(rq.correlation_id)) ? corr : rq.request_id);
    snprintf(cr->request_id, sizeof(cr->request_id), "%s", rq.request_id);
    pgcmk_err_set(&err, PGCMK_E_TOO_LARGE, NULL,
                  "The request content length exceeds the limit of %d KiB.", srv->cfg->max_body_kb);
    pgcmk_resp_error(&rs, rq.plane == PGCMK_PLANE_VAULT ? PGCMK_ENV_VAULT : PGCMK_ENV_ARM, &err);
    pgcmk_resp_header(&rs, "x-ms-request-id", rq.request_id);
    pgcmk_resp_header(&rs, "x-ms-correlation-request-id", rq.correlation_id);
    if (server_id_ok(client, sizeof(rq.client_request_id)))
        pgcmk_resp_header(&rs, "x-ms-client-request-id", client);
    pgcmk_resp_header(&rs, "Connection", "close");
    server_queue(c, cr, &rs, 0);
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);
}

static enum MHD_Result
server_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
              const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
    struct server_listener *ls = cls;
    struct pgcmk_server *srv = ls->srv;
    struct conn_req *cr = *req_cls;
    struct pgcmk_req rq;
    struct pgcmk_resp rs;
    enum MHD_Result ret;
    size_t limit = (size_t)srv->cfg->max_body_kb * 1024;

    PGCMK_UNUSED(version);
    if (cr == NULL) {
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");

        cr = pgcmk_xcalloc(1, sizeof(*cr));
        cr->start_ms = pgcmk_wall_ms();
        snprintf(cr->method, sizeof(cr->method), "%s", method);
        snprintf(cr->path, sizeof(cr->path), "%s", url);
        cr->tls = ls->tls;
        cr->port = ls->port;
        *req_cls = cr;
        atomic_fetch_add(&server_in_flight, 1);
        if (cl && strtoull(cl, NULL, 10) > limit) {
            /* Refuse before the body arrives (the connection closes afterwards). */
            cr->too_large = 1;
            server_reject_413(srv, c, cr, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host"));
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cr->too_large) {
            if (cr->len + *upload_size > limit) {
                cr->too_large = 1;
                pgcmk_secret_free(cr->body, cr->len);
                cr->body = NULL;
                cr->len = cr->cap = 0;
            } else {
                if (cr->len + *upload_size + 1 > cr->cap) {
                    cr->cap = (cr->len + *upload_size + 1) * 2;
                    if (cr->cap > limit + 1)
                        cr->cap = limit + 1;
                    char *grown = pgcmk_xmalloc(cr->cap);

                    if (cr->len) /* no copy of the body is left behind unwiped */
                        memcpy(grown, cr->body, cr->len);
                    if (cr->body)
                        pgcmk_secret_free(cr->body, cr->len);
                    cr->body = grown;
                }
                memcpy(cr->body + cr->len, upload_data, *upload_size);
                cr->len += *upload_size;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (cr->too_large) {
        if (cr->status)
            return MHD_YES; /* already answered on the first call */
        server_reject_413(srv, c, cr, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host"));
        return MHD_YES;
    }
    memset(&rs, 0, sizeof(rs));
    pgcmk_req_init(&rq, srv->cfg, method, "/", NULL, cr->body, cr->len);
    rq.tls = cr->tls;
    rq.port = cr->port;
    free(rq.path);
    free(rq.raw_path);
    rq.raw_path = pgcmk_xstrdup(url);
    rq.path = pgcmk_xmalloc(strlen(url) + 2);
    strcpy(rq.path, url);
    MHD_get_connection_values(c, MHD_HEADER_KIND, server_collect_header, &rq);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, server_collect_arg, &rq);
    {
        /* Reuse the normalisation and Host parsing of pgcmk_req_init. MHD has decoded url
         * already: re-escape '%' and '?' so that pgcmk_req_init's decoding gives url back
         * (else "a%2541" would name "aA" and "a%3Fb" would name "a"). */
        struct pgcmk_req tmp;
        const char *host = pgcmk_req_header(&rq, "Host");
        char *esc = pgcmk_xmalloc(strlen(url) * 3 + 1), *e = esc;

        for (const char *u = url; *u; u++) {
            if (*u == '%' || *u == '?') {
                e += sprintf(e, "%%%02X", (unsigned char)*u);
            } else {
                *e++ = *u;
            }
        }
        *e = '\0';
        pgcmk_req_init(&tmp, srv->cfg, method, esc, host, NULL, 0);
        free(esc);
        free(rq.path);
        free(rq.host);
        free(rq.vault);
        rq.path = tmp.path;
        tmp.path = NULL;
        rq.host = tmp.host;
        tmp.host = NULL;
        rq.vault = tmp.vault;
        tmp.vault = NULL;
        rq.plane = tmp.plane;
        rq.host_port = tmp.host_port ? tmp.host_port : cr->port;
        pgcmk_req_release(&tmp);
    }
    if (srv->plane) {
        pgcmk_uuid(rq.request_id);
        srv->plane->handle(&rq, &rs);
    } else {
        pgcmk_http_dispatch(&rq, &rs);
    }
    snprintf(cr->request_id, sizeof(cr->request_id), "%s", rq.request_id);
    ret = server_queue(c, cr, &rs,
                       srv->plane != NULL || (rq.route && (rq.route->flags & ROUTE_F_SECRET)));
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);
    return ret;
}

static void
server_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                 enum MHD_RequestTerminationCode toe)
{
    struct conn_req *cr = *req_cls;

    PGCMK_UNUSED(cls);
    PGCMK_UNUSED(c);
    if (cr == NULL)
        return;
    LOG_INFO("access method=%s path=%s status=%d ms=%lld req=%s%s", cr->method, cr->path,
             cr->status, (long long)(pgcmk_wall_ms() - cr->start_ms), cr->request_id,
             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
    if (cr->body) /* it may hold key material or a plaintext to wrap */
        pgcmk_secret_free(cr->body, cr->len);
    free(cr);
    *req_cls = NULL;
    atomic_fetch_sub(&server_in_flight, 1);
}

static void
server_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];

    PGCMK_UNUSED(cls);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* GnuTLS reports every client disconnect this way; keep it at debug. */
    LOG_DEBUG("mhd: %s", msg);
}

/* MHD's %HH decoding for the path and the query, except that %00 stays as it is: a NUL would
 * cut the C string short, so "rg%00x" would act on "rg" (with %00 kept, the name is refused). */
static size_t
server_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    char *w = s;

    PGCMK_UNUSED(cls);
    PGCMK_UNUSED(c);
    for (const char *r = s; *r; r++) {
        if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2]) &&
            !(r[1] == '0' && r[2] == '0')) {
            char hex[3] = {r[1], r[2], '\0'};

            *w++ = (char)strtol(hex, NULL, 16);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* addr ("127.0.0.1", "::1") and port as a sockaddr. */
static int
server_addr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *sl,
            struct pgcmk_err *err)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "bad listen address '%s'", addr);
        *sl = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "bad listen address '%s'", addr);
        *sl = sizeof(*s4);
    }
    return 0;
}

/* Binds addr:port alone (SO_REUSEADDR like MHD, no SO_REUSEPORT), then lets it go: fails when
 * another socket listens there, even one with SO_REUSEPORT. Port 0 picks a free port. */
static int
server_probe(const char *addr, int port, int *bound, struct pgcmk_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, on = 1, rc;

    if (server_addr(addr, port, &ss, &sl, err))
        return -1;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot listen on %s port %d: %s", addr,
                             port, strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    rc = bind(fd, (struct sockaddr *)&ss, sl);
    if (rc == 0) {
        sl = sizeof(ss);
        rc = getsockname(fd, (struct sockaddr *)&ss, &sl);
    }
    if (rc != 0) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot listen on %s port %d: %s", addr, port,
                      strerror(errno));
        close(fd);
        return -1;
    }
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    close(fd);
    return 0;
}

static struct MHD_Daemon *
server_listen(struct pgcmk_server *srv, struct server_listener *ls, const char *addr, int port,
              int tls, const char *cert, const char *key, int *bound, struct pgcmk_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *di;

    if (server_addr(addr, port, &ss, &sl, err))
        return NULL;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (tls)
        flags |= MHD_USE_TLS;
    d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, server_access, ls, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&ss, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)srv->cfg->timeout_s,
                         MHD_OPTION_CONNECTION_LIMIT, 1000u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)65536, MHD_OPTION_NOTIFY_COMPLETED, server_completed, srv,
                         MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, srv, MHD_OPTION_HTTPS_MEM_CERT,
                         tls ? cert : NULL, MHD_OPTION_HTTPS_MEM_KEY, tls ? key : NULL,
                         MHD_OPTION_UNESCAPE_CALLBACK, server_unescape, NULL, MHD_OPTION_END);
    if (d == NULL)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot listen on %s port %d: %s", addr,
                             port, strerror(errno)),
               NULL;
    di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *bound = di ? di->port : port;
    return d;
}

/* Binds every listen address on one port; port 0 takes the first address's free port. */
static int
server_bind_once(struct pgcmk_server *srv, int port, int tls, const char *cert, const char *key,
                 int *out_port, int *retry, struct pgcmk_err *err)
{
    char list[256], *save = NULL;
    int got = 0, nthreads = srv->cfg->threads > 0 ? srv->cfg->threads : 1;

    snprintf(list, sizeof(list), "%s", srv->cfg->listen);
    for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
        struct pgcmk_err e2;
        int bound = 0, first = srv->n, ok, probed;

        while (*a == ' ')
            a++;
        if (srv->n + nthreads > srv->cap)
            break;
        ok = server_probe(a, got ? *out_port : port, &bound, &e2) == 0;
        probed = ok;
        for (int t = 0; ok && t < nthreads; t++) {
            struct MHD_Daemon *d;
            int b2 = 0;

            srv->ls[srv->n] = (struct server_listener){srv, tls, bound};
            d = server_listen(srv, &srv->ls[srv->n], a, bound, tls, cert, key, &b2, &e2);
            if (d == NULL) {
                ok = 0;
                break;
            }
            srv->d[srv->n++] = d;
            if (b2 != bound) {
                pgcmk_err_set(&e2, PGCMK_E_INTERNAL, NULL, "%s: asked for port %d, got %d", a,
                              bound, b2);
                ok = 0;
            }
        }
        if (!ok) {
            while (srv->n > first)
                MHD_stop_daemon(srv->d[--srv->n]);
            /* With port 0 the port is chosen on the first address; when another process holds
             * it on this one, start over with a new port (a client resolving *.localhost to ::1
             * would otherwise reach that other process). The port may also be taken between the
             * probe and the daemons' binds. */
            if (port == 0 && (got || probed)) {
                *retry = 1;
                return -1;
            }
            /* A missing IPv6 loopback is not fatal once another address listens. */
            if (strchr(a, ':')) {
                LOG_WARN("%s", e2.message);
                continue;
            }
            *err = e2;
            return -1;
        }
        if (!got)
            *out_port = bound;
        got = 1;
    }
    if (!got)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "no listen address could be bound");
    return 0;
}

static int
server_bind_all(struct pgcmk_server *srv, int port, int tls, const char *cert, const char *key,
                int *out_port, struct pgcmk_err *err)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        int first = srv->n, retry = 0;

        if (server_bind_once(srv, port, tls, cert, key, out_port, &retry, err) == 0)
            return 0;
        if (!retry)
            return -1;
        while (srv->n > first)
            MHD_stop_daemon(srv->d[--srv->n]);
    }
    return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                         "no free port on every listen address after 20 tries");
}

static struct pgcmk_server *
server_start(const struct pgcmk_cfg *cfg, const char *cert_pem, const char *key_pem,
             const struct pgcmk_server_plane *plane, struct pgcmk_err *err)
{
    struct pgcmk_server *srv = pgcmk_xcalloc(1, sizeof(*srv));
    int port = plane ? plane->port : cfg->port;
    int http_port = plane ? plane->http_port : cfg->http_port;

    srv->cfg = cfg;
    srv->plane = plane;
    srv->http_port = -1;
    /* cfg->threads daemons per address, for HTTPS and plain HTTP */
    srv->cap = 1;
    for (const char *p = cfg->listen; *p; p++)
        srv->cap += *p == ',';
    srv->cap *= (cfg->threads > 0 ? cfg->threads : 1) * (http_port >= 0 ? 2 : 1);
    srv->d = pgcmk_xcalloc((size_t)srv->cap, sizeof(*srv->d));
    srv->ls = pgcmk_xcalloc((size_t)srv->cap, sizeof(*srv->ls));
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "libmicrohttpd was built without TLS");
        pgcmk_server_stop(srv, 0);
        return NULL;
    }
    if (server_bind_all(srv, port, 1, cert_pem, key_pem, &srv->port, err) ||
        (http_port >= 0 && server_bind_all(srv, http_port, 0, NULL, NULL, &srv->http_port, err))) {
        pgcmk_server_stop(srv, 0);
        return NULL;
    }
    return srv;
}

struct pgcmk_server *
pgcmk_server_start(const struct pgcmk_cfg *cfg, const char *cert_pem, const char *key_pem,
                   struct pgcmk_err *err)
{
    return server_start(cfg, cert_pem, key_pem, NULL, err);
}

struct pgcmk_server *
pgcmk_server_start_plane(const struct pgcmk_cfg *cfg, const char *cert_pem, const char *key_pem,
                         const struct pgcmk_server_plane *plane, struct pgcmk_err *err)
{
    return server_start(cfg, cert_pem, key_pem, plane, err);
}

int
pgcmk_server_port(const struct pgcmk_server *srv)
{
    return srv->port;
}

int
pgcmk_server_http_port(const struct pgcmk_server *srv)
{
    return srv->http_port;
}

void
pgcmk_server_stop(struct pgcmk_server *srv, int grace_ms)
{
    int64_t deadline = pgcmk_wall_ms() + grace_ms;

    if (srv == NULL)
        return;
    for (int i = 0; i < srv->n; i++) {
        MHD_socket s = MHD_quiesce_daemon(srv->d[i]);

        if (s != MHD_INVALID_SOCKET)
            close(s);
    }
    while (atomic_load(&server_in_flight) > 0 && pgcmk_wall_ms() < deadline) {
        struct timespec ts = {0, 5 * 1000 * 1000};

        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < srv->n; i++)
        MHD_stop_daemon(srv->d[i]);
    free(srv->d);
    free(srv->ls);
    free(srv);
}
