/* tls.c - the TLS connection server (include/pgcmk/net.h): binding, accepting, worker threads,
 * the handshake under a timeout, reads and writes under deadlines, and stop.
 *
 * One accept thread polls the listening sockets and a wake pipe; an accepted connection is
 * queued for an idle worker, or a new worker is started (at most max_conns). A worker keeps
 * serving connections one after another (its per-thread state, such as a store connection,
 * survives). The connection table's mutex is taken on accept and on a connection's end only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pgcmk/log.h"
#include "pgcmk/net.h"

#define NET_MAX_ADDRS 8

struct net_worker {
    struct pgcmk_net_conn c; /* first: a conn pointer is its worker */
    pthread_t thread;
};

struct net_pending {
    int fd;
    SSL *ssl;
    char peer[64];
    char ip[48];
};

struct pgcmk_net_tls {
    char name[16];
    SSL_CTX *ctx;
    int fds[NET_MAX_ADDRS];
    int n_fds;
    int port;
    int timeout_ms;
    int wake[2];
    pthread_t accept_thread;
    int accept_started;
    void (*serve)(struct pgcmk_net_conn *c, void *arg);
    void *arg;
    atomic_int stopping;
    pthread_mutex_t mu; /* guards the queue, the workers' fd, the counters and ctx */
    pthread_cond_t cv;  /* a connection queued, or stopping */
    struct net_worker *workers;
    int max_conns;
    int n_workers;             /* threads started (workers[0..n_workers)) */
    int n_idle;                /* of them, waiting for a connection */
    struct net_pending *queue; /* ring of max_conns */
    int q_head, q_len;
    int64_t last_refusal_log;
};

static int net_ssl_index = -1;
static pthread_once_t net_once = PTHREAD_ONCE_INIT;

static void
net_init_once(void)
{
    net_ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

int64_t
pgcmk_net_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct pgcmk_net_conn *
pgcmk_net_conn_of(X509_STORE_CTX *xs)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());

    return ssl && net_ssl_index >= 0 ? SSL_get_ex_data(ssl, net_ssl_index) : NULL;
}

int
pgcmk_net_stopping(const struct pgcmk_net_conn *c)
{
    return atomic_load(&c->srv->stopping);
}

/* ---- contexts -------------------------------------------------------------------------- */

int
pgcmk_net_ctx_add_cert(SSL_CTX *ctx, const char *cert_pem, const char *key_pem)
{
    BIO *b = cert_pem ? BIO_new_mem_buf(cert_pem, -1) : NULL;
    BIO *kb = key_pem ? BIO_new_mem_buf(key_pem, -1) : NULL;
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    int rc = -1;

    if (x == NULL || k == NULL || SSL_CTX_use_certificate(ctx, x) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, k) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        goto done;
    for (X509 *ch; (ch = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL;) {
        if (SSL_CTX_add0_chain_cert(ctx, ch) != 1) {
            X509_free(ch);
            goto done;
        }
    }
    rc = 0;
done:
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(b);
    BIO_free(kb);
    ERR_clear_error();
    return rc;
}

SSL_CTX *
pgcmk_net_ctx_new(const char *name, const char *cert_pem, const char *key_pem,
                  struct pgcmk_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: cannot create a TLS context", name);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
    /* One read() per TLS record (or several), not one for its header and one for its body. */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (pgcmk_net_ctx_add_cert(ctx, cert_pem, key_pem)) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: the server certificate does not load",
                      name);
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* No session cache: a resumed session skips the client certificate checks. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    ERR_clear_error();
    return ctx;
}

/* ---- reads and writes ------------------------------------------------------------------ */

/* Waits until the socket is ready for what OpenSSL asked (SSL_ERROR_WANT_*), or the deadline.
 * 0 ready, -1 timed out, stopping or the socket failed. */
static int
net_wait(struct pgcmk_net_conn *c, int ssl_err, int64_t deadline)
{
    struct pollfd p = {c->fd, ssl_err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0};

    for (;;) {
        int64_t left = deadline - pgcmk_net_mono_ms();
        int n;

        if (left <= 0 || atomic_load(&c->srv->stopping))
            return -1;
        n = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
        if (n > 0)
            return 0; /* POLLHUP/POLLERR: the next SSL call sees it */
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

int
pgcmk_net_wait_readable(struct pgcmk_net_conn *c, int64_t deadline)
{
    if (SSL_has_pending(c->ssl))
        return 0;
    return net_wait(c, SSL_ERROR_WANT_READ, deadline);
}

long
pgcmk_net_read(struct pgcmk_net_conn *c, void *buf, size_t cap, int64_t deadline)
{
    for (;;) {
        size_t n = 0;
        int r = SSL_read_ex(c->ssl, buf, cap, &n), e;

        if (r == 1)
            return (long)n;
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (net_wait(c, e, deadline))
                return -1;
            continue;
        }
        ERR_clear_error();
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
}

int
pgcmk_net_read_full(struct pgcmk_net_conn *c, void *buf, size_t len, int64_t deadline, int eof_ok)
{
    size_t got = 0;

    while (got < len) {
        long n = pgcmk_net_read(c, (char *)buf + got, len - got, deadline);

        if (n <= 0)
            return n == 0 && got == 0 && eof_ok ? 0 : -1;
        got += (size_t)n;
    }
    return 1;
}

int
pgcmk_net_write(struct pgcmk_net_conn *c, const void *buf, size_t len, int64_t deadline)
{
    size_t off = 0;

    while (off < len) {
        size_t n = 0;
        int r = SSL_write_ex(c->ssl, (const char *)buf + off, len - off, &n), e;

        if (r == 1) {
            off += n;
            continue;
        }
        e = SSL_get_error(c->ssl, r);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
            net_wait(c, e, deadline) == 0)
            continue;
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* ---- one connection -------------------------------------------------------------------- */

static int
net_handshake(struct pgcmk_net_conn *c, int64_t deadline)
{
    for (;;) {
        int r = SSL_accept(c->ssl), e;

        if (r == 1)
            return 0;
        e = SSL_get_error(c->ssl, r);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
            net_wait(c, e, deadline) == 0)
            continue;
        if (PGCMK_LOG_DEBUG <= pgcmk_log_level) {
            char msg[256];

            ERR_error_string_n(ERR_peek_last_error(), msg, sizeof(msg));
            LOG_DEBUG("%s: %s: handshake failed: %s", c->srv->name, c->peer, msg);
        }
        ERR_clear_error();
        return -1;
    }
}

/* A lingering close: stop sending, then read and drop what the client still sends for a moment.
 * Closing with unread bytes makes the kernel answer RST, which can destroy the alert just sent
 * (a TLS 1.3 client sends its request before it learns its certificate was refused). */
static void
net_linger(struct pgcmk_net_conn *c)
{
    int64_t deadline = pgcmk_net_mono_ms() + 500;
    char junk[4096];

    if (shutdown(c->fd, SHUT_WR) != 0)
        return;
    while (!atomic_load(&c->srv->stopping)) {
        struct pollfd p = {c->fd, POLLIN, 0};
        int64_t left = deadline - pgcmk_net_mono_ms();
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        n = read(c->fd, junk, sizeof(junk));
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            break;
    }
}

static void
net_conn_serve(struct pgcmk_net_conn *c)
{
    struct pgcmk_net_tls *s = c->srv;

    if (c->ssl && SSL_set_fd(c->ssl, c->fd) == 1 &&
        SSL_set_ex_data(c->ssl, net_ssl_index, c) == 1 &&
        net_handshake(c, pgcmk_net_mono_ms() + s->timeout_ms) == 0) {
        int on = 1;

        /* Acknowledge the client's Finished now: a TLS 1.3 client sends its request right after
         * it, and Nagle holds that small write until the ACK (a delayed ACK costs 40 ms). */
        setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on));
        s->serve(c, s->arg);
        if (!atomic_load(&s->stopping))
            (void)SSL_shutdown(c->ssl); /* close_notify; no wait for the peer's */
    }
    SSL_free(c->ssl);
    c->ssl = NULL;
    ERR_clear_error();
    net_linger(c);
}

static void *
net_worker_main(void *arg)
{
    struct pgcmk_net_conn *c = arg;
    struct pgcmk_net_tls *s = c->srv;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        struct net_pending p;

        while (!atomic_load(&s->stopping) && s->q_len == 0)
            pthread_cond_wait(&s->cv, &s->mu);
        if (atomic_load(&s->stopping))
            break;
        p = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % s->max_conns;
        s->q_len--;
        s->n_idle--;
        c->fd = p.fd;
        c->ssl = p.ssl;
        memcpy(c->peer, p.peer, sizeof(c->peer));
        memcpy(c->ip, p.ip, sizeof(c->ip));
        c->data = NULL;
        c->identity[0] = '\0';
        pthread_mutex_unlock(&s->mu);
        net_conn_serve(c);
        pthread_mutex_lock(&s->mu);
        close(c->fd); /* under mu: stop may be shutting it down */
        c->fd = -1;
        s->n_idle++;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- accepting ------------------------------------------------------------------------- */

static void
net_peer_name(int fd, struct net_pending *p)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int port = 0;

    snprintf(p->ip, sizeof(p->ip), "?");
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, p->ip, sizeof(p->ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, p->ip, sizeof(p->ip));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(p->peer, sizeof(p->peer), "%s:%d", p->ip, port);
}

static void
net_accept_one(struct pgcmk_net_tls *s, int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), on = 1, ok = 0;
    struct net_pending p;

    if (fd < 0)
        return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    p.fd = fd;
    net_peer_name(fd, &p);
    pthread_mutex_lock(&s->mu);
    if (s->q_len >= s->n_idle && s->n_workers < s->max_conns) {
        struct net_worker *w = &s->workers[s->n_workers];

        memset(w, 0, sizeof(*w));
        w->c.srv = s;
        w->c.fd = -1;
        if (pthread_create(&w->thread, NULL, net_worker_main, &w->c) == 0) {
            s->n_workers++;
            s->n_idle++;
        } else {
            LOG_WARN("%s: cannot start a connection thread: %s", s->name, strerror(errno));
        }
    }
    if (s->q_len < s->n_idle) {
        p.ssl = SSL_new(s->ctx); /* under mu: the context may be swapped */
        s->queue[(s->q_head + s->q_len) % s->max_conns] = p;
        s->q_len++;
        pthread_cond_signal(&s->cv);
        ok = 1;
    }
    pthread_mutex_unlock(&s->mu);
    if (!ok) {
        int64_t now = pgcmk_net_mono_ms();

        if (now - s->last_refusal_log > 10000) {
            LOG_WARN("%s: %d connections already; refusing new ones until one ends", s->name,
                     s->max_conns);
            s->last_refusal_log = now;
        }
        close(fd);
    }
}

static void *
net_accept_main(void *arg)
{
    struct pgcmk_net_tls *s = arg;
    struct pollfd p[NET_MAX_ADDRS + 1];

    for (int i = 0; i < s->n_fds; i++)
        p[i] = (struct pollfd){s->fds[i], POLLIN, 0};
    p[s->n_fds] = (struct pollfd){s->wake[0], POLLIN, 0};
    while (!atomic_load(&s->stopping)) {
        int n = poll(p, (nfds_t)s->n_fds + 1, -1);

        if (n < 0 && errno != EINTR)
            break;
        if (p[s->n_fds].revents)
            break;
        for (int i = 0; n > 0 && i < s->n_fds; i++)
            if (p[i].revents & POLLIN)
                net_accept_one(s, s->fds[i]);
    }
    return NULL;
}

/* ---- start and stop -------------------------------------------------------------------- */

static int
net_bind(const char *name, const char *addr, int port, int *fd_out, int *bound,
         struct pgcmk_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, on = 1;

    memset(&ss, 0, sizeof(ss));
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: bad listen address '%.64s'",
                                 name, addr);
        sl = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: bad listen address '%.64s'",
                                 name, addr);
        sl = sizeof(*s4);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: cannot listen on %s port %d: %s",
                             name, addr, port, strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 128) != 0 ||
        (sl = sizeof(ss), getsockname(fd, (struct sockaddr *)&ss, &sl)) != 0) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: cannot listen on %s port %d: %s", name,
                      addr, port, strerror(errno));
        close(fd);
        return -1;
    }
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return 0;
}

/* Every address on one port; with port 0 the first address picks it, and when another one has
 * it taken the whole set starts over. */
static int
net_bind_all(struct pgcmk_net_tls *s, const char *listen, int port, struct pgcmk_err *err)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        char list[256], *save = NULL;
        int want = port, retry = 0;

        /* No host (KES's ":7373"): the loopback, as everything pgcmkd serves by default. */
        snprintf(list, sizeof(list), "%s", listen && *listen ? listen : "127.0.0.1");
        for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
            struct pgcmk_err e2;
            int fd = -1, bound = 0;

            while (*a == ' ')
                a++;
            if (*a == '[' && a[strlen(a) - 1] == ']') { /* "[::1]" as in an address */
                a[strlen(a) - 1] = '\0';
                a++;
            }
            if (*a == '\0' || s->n_fds == NET_MAX_ADDRS)
                continue;
            if (net_bind(s->name, a, want, &fd, &bound, &e2)) {
                if (port == 0 && s->n_fds > 0) {
                    retry = 1;
                    break;
                }
                if (strchr(a, ':')) { /* a missing IPv6 loopback is not fatal */
                    LOG_WARN("%s", e2.message);
                    continue;
                }
                *err = e2;
                goto fail;
            }
            s->fds[s->n_fds++] = fd;
            want = bound;
            s->port = bound;
        }
        if (!retry && s->n_fds > 0)
            return 0;
        if (!retry)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                                 "%s: no listen address could be bound", s->name);
        while (s->n_fds > 0)
            close(s->fds[--s->n_fds]);
    }
    pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: no free port on every listen address", s->name);
fail:
    while (s->n_fds > 0)
        close(s->fds[--s->n_fds]);
    return -1;
}

struct pgcmk_net_tls *
pgcmk_net_tls_start(const struct pgcmk_net_tls_cfg *cfg, struct pgcmk_err *err)
{
    struct pgcmk_net_tls *s = pgcmk_xcalloc(1, sizeof(*s));

    pthread_once(&net_once, net_init_once);
    snprintf(s->name, sizeof(s->name), "%s", cfg->name ? cfg->name : "tls");
    s->wake[0] = s->wake[1] = -1;
    s->ctx = cfg->ctx;
    s->serve = cfg->serve;
    s->arg = cfg->arg;
    s->timeout_ms = (cfg->timeout_s > 0 ? cfg->timeout_s : 120) * 1000;
    s->max_conns = cfg->max_conns > 0 ? cfg->max_conns : PGCMK_NET_MAX_CONNS;
    s->workers = pgcmk_xcalloc((size_t)s->max_conns, sizeof(*s->workers));
    s->queue = pgcmk_xcalloc((size_t)s->max_conns, sizeof(*s->queue));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    atomic_init(&s->stopping, 0);
    if (net_ssl_index < 0 || s->ctx == NULL || s->serve == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: no TLS context", s->name);
        goto fail;
    }
    if (pipe2(s->wake, O_CLOEXEC) != 0) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: pipe: %s", s->name, strerror(errno));
        goto fail;
    }
    if (net_bind_all(s, cfg->listen, cfg->port, err))
        goto fail;
    if (pthread_create(&s->accept_thread, NULL, net_accept_main, s) != 0) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: cannot start the accept thread", s->name);
        goto fail;
    }
    s->accept_started = 1;
    return s;
fail:
    pgcmk_net_tls_stop(s);
    return NULL;
}

int
pgcmk_net_tls_port(const struct pgcmk_net_tls *s)
{
    return s ? s->port : -1;
}

void
pgcmk_net_tls_set_ctx(struct pgcmk_net_tls *s, SSL_CTX *ctx)
{
    SSL_CTX *old;

    pthread_mutex_lock(&s->mu);
    old = s->ctx;
    s->ctx = ctx;
    pthread_mutex_unlock(&s->mu);
    SSL_CTX_free(old); /* connections still on it hold their own reference */
}

void
pgcmk_net_tls_stop(struct pgcmk_net_tls *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stopping, 1);
    if (s->accept_started) {
        ssize_t w;

        do
            w = write(s->wake[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(s->accept_thread, NULL);
    }
    while (s->n_fds > 0)
        close(s->fds[--s->n_fds]);
    /* Wake every worker: the idle ones leave, the busy ones see their socket shut down. */
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    for (int i = 0; i < s->n_workers; i++)
        if (s->workers[i].c.fd >= 0)
            shutdown(s->workers[i].c.fd, SHUT_RDWR);
    pthread_mutex_unlock(&s->mu);
    /* The accept thread is gone: no worker starts any more. */
    for (int i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i].thread, NULL);
    for (; s->q_len > 0; s->q_len--) {
        struct net_pending *p = &s->queue[s->q_head];

        SSL_free(p->ssl);
        close(p->fd);
        s->q_head = (s->q_head + 1) % s->max_conns;
    }
    if (s->wake[0] >= 0)
        close(s->wake[0]);
    if (s->wake[1] >= 0)
        close(s->wake[1]);
    SSL_CTX_free(s->ctx);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->queue);
    free(s->workers);
    free(s);
}
