/* listener.c - the KMIP server's mutual-TLS listener (include/pgcmk/kmip_listener.h).
 *
 * One accept thread polls the listening sockets and a wake pipe; each accepted connection gets
 * its own thread (at most max_conns), which does the TLS handshake on a non-blocking socket under
 * the timeout, then loops: the 8-byte TTLV header, a check that it opens a Request Message and
 * that its length fits, the body under the same timeout, pgcmk_kmip_process, the answer. The
 * connection table's mutex is taken only on accept and on a connection's end, never per
 * request. Stop: the wake pipe ends the accept loop, shutdown() of every connection's socket
 * wakes its thread, and every thread is joined. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/kmip.h"
#include "pgcmk/kmip_listener.h"
#include "pgcmk/kmip_server.h"
#include "pgcmk/log.h"

#define KL_MAX_ADDRS  8
#define KL_HEADER_LEN 8
#define KL_FIRST_BUF  4096

/* A worker thread: serves one connection at a time, then waits for the next one (it keeps its
 * store connection, which the operations open once per thread). */
struct kl_conn {
    struct pgcmk_kmip_listener *l;
    pthread_t thread;
    int fd; /* the connection being served, or -1; changed under mu */
    SSL *ssl;
    char identity[PGCMK_KMIP_IDENTITY_MAX + 1];
    char peer[64];
};

/* An accepted connection waiting for a worker. */
struct kl_pending {
    int fd;
    SSL *ssl;
    char peer[64];
};

struct pgcmk_kmip_listener {
    SSL_CTX *ctx;
    int fds[KL_MAX_ADDRS];
    int n_fds;
    int port;
    int timeout_ms;
    int wake[2];
    pthread_t accept_thread;
    int accept_started;
    pthread_t rsa_thread;
    int rsa_started;
    struct pgcmk_kmip_listener_cfg cfg; /* strings owned by the caller, valid until stop */
    atomic_int stopping;
    pthread_mutex_t mu; /* guards the queue, the workers' fd, the counters and ctx */
    pthread_cond_t cv;  /* a connection queued, or stopping */
    struct kl_conn *conns;
    int max_conns;
    int n_workers;            /* threads started (conns[0..n_workers)) */
    int n_idle;               /* of them, waiting for a connection */
    struct kl_pending *queue; /* ring of max_conns */
    int q_head, q_len;
    int64_t last_refusal_log;
};

static int kl_ssl_index = -1;
static pthread_once_t kl_once = PTHREAD_ONCE_INIT;

static void
kl_init_once(void)
{
    kl_ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static int64_t
kl_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- certificates ---------------------------------------------------------------------- */

/* The one CN of `x` into out (1..PGCMK_KMIP_IDENTITY_MAX bytes, no NUL inside); -1 when there is
 * none, more than one, or it does not fit. */
static int
kl_cert_cn(X509 *x, char *out, size_t cap)
{
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    const ASN1_STRING *s;
    int len;

    if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
        return -1;
    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    len = s ? ASN1_STRING_length(s) : 0;
    if (len <= 0 || (size_t)len >= cap || memchr(ASN1_STRING_get0_data(s), 0, (size_t)len))
        return -1;
    memcpy(out, ASN1_STRING_get0_data(s), (size_t)len);
    out[len] = '\0';
    return 0;
}

/* OpenSSL has checked the chain to pgcmk's CA and the dates on the wall clock; the leaf must
 * also carry EKU clientAuth, exactly one CN, be in date on the virtual clock and belong to a
 * live client. The error set here picks the alert the handshake ends with. */
static int
kl_verify(int ok, X509_STORE_CTX *xs)
{
    SSL *ssl;
    struct kl_conn *c;
    X509 *x;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char fp[65], cn[PGCMK_KMIP_IDENTITY_MAX + 1];
    time_t vnow;

    if (!ok || X509_STORE_CTX_get_error_depth(xs) != 0)
        return ok;
    ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    c = ssl ? SSL_get_ex_data(ssl, kl_ssl_index) : NULL;
    x = X509_STORE_CTX_get_current_cert(xs);
    if (c == NULL || x == NULL) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_UNSPECIFIED);
        return 0;
    }
    if (!(X509_get_extension_flags(x) & EXFLAG_XKUSAGE) ||
        !(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT)) {
        LOG_INFO("kmip: %s: refused a client certificate without EKU clientAuth", c->peer);
        X509_STORE_CTX_set_error(xs, X509_V_ERR_INVALID_PURPOSE);
        return 0;
    }
    if (kl_cert_cn(x, cn, sizeof(cn))) {
        LOG_INFO("kmip: %s: refused a client certificate without exactly one usable CN", c->peer);
        X509_STORE_CTX_set_error(xs, X509_V_ERR_SUBJECT_ISSUER_MISMATCH);
        return 0;
    }
    vnow = (time_t)(pgcmk_clock_now() / 1000);
    if (X509_cmp_time(X509_get0_notAfter(x), &vnow) <= 0) {
        LOG_INFO("kmip: %s: refused %s's certificate: expired on the emulator's clock", c->peer,
                 cn);
        X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_HAS_EXPIRED);
        return 0;
    }
    if (X509_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_UNSPECIFIED);
        return 0;
    }
    for (unsigned i = 0; i < 32; i++)
        snprintf(fp + 2 * i, 3, "%02x", md[i]);
    if (!pgcmk_kmip_client_cert_live(fp, cn)) {
        LOG_INFO("kmip: %s: refused a certificate of %s: no such live client (revoked)", c->peer,
                 cn);
        X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REVOKED);
        return 0;
    }
    memcpy(c->identity, cn, sizeof(cn));
    return 1;
}

/* Loads "leaf PEM, then chain PEMs" and its key into ctx (one of its certificate slots, by the
 * key's type). */
static int
kl_load_cert(SSL_CTX *ctx, const char *cert_pem, const char *key_pem)
{
    BIO *b = BIO_new_mem_buf(cert_pem, -1), *kb = BIO_new_mem_buf(key_pem, -1);
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

static SSL_CTX *
kl_ctx(const struct pgcmk_kmip_listener_cfg *cfg, struct pgcmk_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    STACK_OF(X509_NAME) * cas;

    if (ctx == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "kmip: cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
    if (kl_load_cert(ctx, cfg->ec_cert_pem, cfg->ec_key_pem)) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "kmip: the server certificate does not load");
        goto fail;
    }
    if (cfg->rsa_cert_pem && cfg->rsa_key_pem &&
        kl_load_cert(ctx, cfg->rsa_cert_pem, cfg->rsa_key_pem)) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                      "kmip: the RSA server certificate does not load");
        goto fail;
    }
    if (SSL_CTX_load_verify_locations(ctx, cfg->ca_path, NULL) != 1 ||
        (cas = SSL_load_client_CA_file(cfg->ca_path)) == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "kmip: cannot load the CA %.200s", cfg->ca_path);
        goto fail;
    }
    SSL_CTX_set_client_CA_list(ctx, cas);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, kl_verify);
    SSL_CTX_set_verify_depth(ctx, 4);
    /* No session cache: a resumed session would skip the check that the client still lives. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    ERR_clear_error();
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- one connection -------------------------------------------------------------------- */

/* Waits until the socket is ready for what OpenSSL asked (SSL_ERROR_WANT_*), or the deadline.
 * 0 ready, -1 timed out, stopping or the socket failed. */
static int
kl_wait(struct kl_conn *c, int ssl_err, int64_t deadline)
{
    struct pollfd p = {c->fd, ssl_err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0};

    for (;;) {
        int64_t left = deadline - kl_mono_ms();
        int n;

        if (left <= 0 || atomic_load(&c->l->stopping))
            return -1;
        n = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
        if (n > 0)
            return 0; /* POLLHUP/POLLERR: the next SSL call sees it */
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* Reads exactly len bytes before the deadline. 1 done, 0 the peer closed before the first byte
 * (eof_ok), -1 anything else. */
static int
kl_read(struct kl_conn *c, uint8_t *buf, size_t len, int64_t deadline, int eof_ok)
{
    size_t got = 0;

    while (got < len) {
        size_t n = 0;
        int r = SSL_read_ex(c->ssl, buf + got, len - got, &n), e;

        if (r == 1) {
            got += n;
            continue;
        }
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (kl_wait(c, e, deadline))
                return -1;
            continue;
        }
        ERR_clear_error();
        return got == 0 && eof_ok && e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    return 1;
}

static int
kl_write(struct kl_conn *c, const uint8_t *buf, size_t len, int64_t deadline)
{
    size_t off = 0;

    while (off < len) {
        size_t n = 0;
        int r = SSL_write_ex(c->ssl, buf + off, len - off, &n), e;

        if (r == 1) {
            off += n;
            continue;
        }
        e = SSL_get_error(c->ssl, r);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && kl_wait(c, e, deadline) == 0)
            continue;
        ERR_clear_error();
        return -1;
    }
    return 0;
}

static int
kl_handshake(struct kl_conn *c, int64_t deadline)
{
    for (;;) {
        int r = SSL_accept(c->ssl), e;

        if (r == 1)
            return 0;
        e = SSL_get_error(c->ssl, r);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && kl_wait(c, e, deadline) == 0)
            continue;
        if (PGCMK_LOG_DEBUG <= pgcmk_log_level) {
            char msg[256];

            ERR_error_string_n(ERR_peek_last_error(), msg, sizeof(msg));
            LOG_DEBUG("kmip: %s: handshake failed: %s", c->peer, msg);
        }
        ERR_clear_error();
        return -1;
    }
}

/* Request messages until the client closes, idles out or sends something that is not KMIP. */
static void
kl_serve(struct kl_conn *c)
{
    struct pgcmk_kmip_peer peer = {c->identity};
    uint8_t *buf = pgcmk_xmalloc(KL_FIRST_BUF);
    size_t cap = KL_FIRST_BUF;
    int timeout = c->l->timeout_ms;

    for (;;) {
        uint8_t *resp = NULL;
        size_t resp_len = 0, total;
        uint32_t body;
        int r;

        r = kl_read(c, buf, KL_HEADER_LEN, kl_mono_ms() + timeout, 1);
        if (r <= 0)
            break;
        /* Tag 42 00 78 (Request Message), type 01 (Structure). */
        if (buf[0] != 0x42 || buf[1] != 0x00 || buf[2] != 0x78 || buf[3] != 0x01) {
            LOG_INFO("kmip: %s (%s): not a KMIP request message; closing", c->peer, c->identity);
            break;
        }
        body = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
        if (body > PGCMK_TTLV_MAX_LEN - KL_HEADER_LEN) {
            LOG_WARN("kmip: %s (%s): a request message of %u bytes is over the limit of %u; "
                     "closing",
                     c->peer, c->identity, body, (unsigned)PGCMK_TTLV_MAX_LEN);
            break;
        }
        total = KL_HEADER_LEN + (size_t)body;
        if (total > cap) {
            uint8_t *nb = pgcmk_xmalloc(total);

            memcpy(nb, buf, KL_HEADER_LEN);
            pgcmk_secret_free(buf, cap);
            buf = nb;
            cap = total;
        }
        if (body && kl_read(c, buf + KL_HEADER_LEN, body, kl_mono_ms() + timeout, 0) != 1) {
            LOG_INFO("kmip: %s (%s): the request message did not arrive whole within %d s; "
                     "closing",
                     c->peer, c->identity, timeout / 1000);
            break;
        }
        r = pgcmk_kmip_process(&peer, buf, total, &resp, &resp_len);
        OPENSSL_cleanse(buf, total);
        if (r != 0) {
            LOG_INFO("kmip: %s (%s): not a KMIP request; closing", c->peer, c->identity);
            break;
        }
        r = kl_write(c, resp, resp_len, kl_mono_ms() + timeout);
        pgcmk_secret_free(resp, resp_len);
        if (r)
            break;
    }
    pgcmk_secret_free(buf, cap);
}

/* A lingering close: stop sending, then read and drop what the client still sends for a moment.
 * Closing with unread bytes makes the kernel answer RST, which can destroy the alert we just
 * sent (a TLS 1.3 client sends its request before it learns its certificate was refused). */
static void
kl_linger(struct kl_conn *c)
{
    int64_t deadline = kl_mono_ms() + 500;
    char junk[4096];

    if (shutdown(c->fd, SHUT_WR) != 0)
        return;
    while (!atomic_load(&c->l->stopping)) {
        struct pollfd p = {c->fd, POLLIN, 0};
        int64_t left = deadline - kl_mono_ms();
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        n = read(c->fd, junk, sizeof(junk));
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            break;
    }
}

/* One connection, from the handshake to the close. */
static void
kl_conn_serve(struct kl_conn *c)
{
    struct pgcmk_kmip_listener *l = c->l;

    if (c->ssl && SSL_set_fd(c->ssl, c->fd) == 1 && SSL_set_ex_data(c->ssl, kl_ssl_index, c) == 1 &&
        kl_handshake(c, kl_mono_ms() + l->timeout_ms) == 0) {
        int on = 1;

        /* Acknowledge the client's Finished now: a TLS 1.3 client sends its request right after
         * it, and Nagle holds that small write until the ACK (a delayed ACK costs 40 ms). */
        setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on));
        LOG_DEBUG("kmip: %s: %s connected (%s)", c->peer, c->identity, SSL_get_version(c->ssl));
        kl_serve(c);
        if (!atomic_load(&l->stopping))
            (void)SSL_shutdown(c->ssl); /* close_notify; no wait for the peer's */
    }
    SSL_free(c->ssl);
    c->ssl = NULL;
    ERR_clear_error();
    kl_linger(c);
}

static void *
kl_worker_main(void *arg)
{
    struct kl_conn *c = arg;
    struct pgcmk_kmip_listener *l = c->l;

    pthread_mutex_lock(&l->mu);
    for (;;) {
        struct kl_pending p;

        while (!atomic_load(&l->stopping) && l->q_len == 0)
            pthread_cond_wait(&l->cv, &l->mu);
        if (atomic_load(&l->stopping))
            break;
        p = l->queue[l->q_head];
        l->q_head = (l->q_head + 1) % l->max_conns;
        l->q_len--;
        l->n_idle--;
        c->fd = p.fd;
        c->ssl = p.ssl;
        memcpy(c->peer, p.peer, sizeof(c->peer));
        c->identity[0] = '\0';
        pthread_mutex_unlock(&l->mu);
        kl_conn_serve(c);
        pthread_mutex_lock(&l->mu);
        close(c->fd); /* under mu: stop may be shutting it down */
        c->fd = -1;
        l->n_idle++;
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- accepting ------------------------------------------------------------------------- */

static void
kl_peer_name(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(out, cap, "%s:%d", host, port);
}

static void
kl_accept_one(struct pgcmk_kmip_listener *l, int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), on = 1, ok = 0;
    struct kl_pending p;

    if (fd < 0)
        return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    p.fd = fd;
    kl_peer_name(fd, p.peer, sizeof(p.peer));
    pthread_mutex_lock(&l->mu);
    if (l->q_len >= l->n_idle && l->n_workers < l->max_conns) {
        struct kl_conn *c = &l->conns[l->n_workers];

        memset(c, 0, sizeof(*c));
        c->l = l;
        c->fd = -1;
        if (pthread_create(&c->thread, NULL, kl_worker_main, c) == 0) {
            l->n_workers++;
            l->n_idle++;
        } else {
            LOG_WARN("kmip: cannot start a connection thread: %s", strerror(errno));
        }
    }
    if (l->q_len < l->n_idle) {
        p.ssl = SSL_new(l->ctx); /* under mu: the context may be swapped (kl_rsa_main) */
        l->queue[(l->q_head + l->q_len) % l->max_conns] = p;
        l->q_len++;
        pthread_cond_signal(&l->cv);
        ok = 1;
    }
    pthread_mutex_unlock(&l->mu);
    if (!ok) {
        int64_t now = kl_mono_ms();

        if (now - l->last_refusal_log > 10000) {
            LOG_WARN("kmip: %d connections already; refusing new ones until one ends",
                     l->max_conns);
            l->last_refusal_log = now;
        }
        close(fd);
    }
}

static void *
kl_accept_main(void *arg)
{
    struct pgcmk_kmip_listener *l = arg;
    struct pollfd p[KL_MAX_ADDRS + 1];

    for (int i = 0; i < l->n_fds; i++)
        p[i] = (struct pollfd){l->fds[i], POLLIN, 0};
    p[l->n_fds] = (struct pollfd){l->wake[0], POLLIN, 0};
    while (!atomic_load(&l->stopping)) {
        int n = poll(p, (nfds_t)l->n_fds + 1, -1);

        if (n < 0 && errno != EINTR)
            break;
        if (p[l->n_fds].revents)
            break;
        for (int i = 0; n > 0 && i < l->n_fds; i++)
            if (p[i].revents & POLLIN)
                kl_accept_one(l, l->fds[i]);
    }
    return NULL;
}

/* Without an RSA certificate yet (a new data directory): make it here, off the start-up path,
 * then serve new connections from a context that has both certificates. */
static void *
kl_rsa_main(void *arg)
{
    struct pgcmk_kmip_listener *l = arg;
    struct pgcmk_kmip_tls kt;
    struct pgcmk_kmip_listener_cfg cfg = l->cfg;
    struct pgcmk_err err;
    SSL_CTX *ctx, *old;

    if (pgcmk_tls_kmip_bootstrap(cfg.data_dir, 1, &kt, &err)) {
        LOG_WARN("kmip: no RSA server certificate (TLS 1.2 clients offering only RSA suites "
                 "will fail): %s",
                 err.message);
        return NULL;
    }
    cfg.rsa_cert_pem = kt.rsa_cert_pem;
    cfg.rsa_key_pem = kt.rsa_key_pem;
    cfg.ec_cert_pem = kt.ec_cert_pem;
    cfg.ec_key_pem = kt.ec_key_pem;
    ctx = kl_ctx(&cfg, &err);
    if (ctx == NULL) {
        LOG_WARN("kmip: %s", err.message);
    } else {
        pthread_mutex_lock(&l->mu);
        old = l->ctx;
        l->ctx = ctx;
        pthread_mutex_unlock(&l->mu);
        SSL_CTX_free(old); /* connections still on it hold their own reference */
        LOG_DEBUG("kmip: the RSA server certificate is ready");
    }
    pgcmk_tls_kmip_release(&kt);
    return NULL;
}

/* ---- start and stop -------------------------------------------------------------------- */

static int
kl_bind(const char *addr, int port, int *fd_out, int *bound, struct pgcmk_err *err)
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
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "bad listen address '%.64s'", addr);
        sl = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "bad listen address '%.64s'", addr);
        sl = sizeof(*s4);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "kmip: cannot listen on %s port %d: %s",
                             addr, port, strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 128) != 0 ||
        (sl = sizeof(ss), getsockname(fd, (struct sockaddr *)&ss, &sl)) != 0) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "kmip: cannot listen on %s port %d: %s", addr,
                      port, strerror(errno));
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
kl_bind_all(struct pgcmk_kmip_listener *l, const char *listen, int port, struct pgcmk_err *err)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        char list[256], *save = NULL;
        int want = port, retry = 0;

        snprintf(list, sizeof(list), "%s", listen);
        for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
            struct pgcmk_err e2;
            int fd = -1, bound = 0;

            while (*a == ' ')
                a++;
            if (*a == '\0' || l->n_fds == KL_MAX_ADDRS)
                continue;
            if (kl_bind(a, want, &fd, &bound, &e2)) {
                if (port == 0 && l->n_fds > 0) {
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
            l->fds[l->n_fds++] = fd;
            want = bound;
            l->port = bound;
        }
        if (!retry && l->n_fds > 0)
            return 0;
        if (!retry)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                                 "kmip: no listen address could be bound");
        while (l->n_fds > 0)
            close(l->fds[--l->n_fds]);
    }
    pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "kmip: no free port on every listen address");
fail:
    while (l->n_fds > 0)
        close(l->fds[--l->n_fds]);
    return -1;
}

struct pgcmk_kmip_listener *
pgcmk_kmip_listener_start(const struct pgcmk_kmip_listener_cfg *cfg, struct pgcmk_err *err)
{
    struct pgcmk_kmip_listener *l = pgcmk_xcalloc(1, sizeof(*l));

    pthread_once(&kl_once, kl_init_once);
    l->wake[0] = l->wake[1] = -1;
    l->timeout_ms = (cfg->timeout_s > 0 ? cfg->timeout_s : 120) * 1000;
    l->max_conns = cfg->max_conns > 0 ? cfg->max_conns : PGCMK_KMIP_MAX_CONNS;
    l->conns = pgcmk_xcalloc((size_t)l->max_conns, sizeof(*l->conns));
    l->queue = pgcmk_xcalloc((size_t)l->max_conns, sizeof(*l->queue));
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    atomic_init(&l->stopping, 0);
    if (kl_ssl_index < 0) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "kmip: no TLS ex_data index");
        goto fail;
    }
    if ((l->ctx = kl_ctx(cfg, err)) == NULL)
        goto fail;
    if (pipe2(l->wake, O_CLOEXEC) != 0) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "kmip: pipe: %s", strerror(errno));
        goto fail;
    }
    if (kl_bind_all(l, cfg->listen, cfg->port, err))
        goto fail;
    if (pthread_create(&l->accept_thread, NULL, kl_accept_main, l) != 0) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "kmip: cannot start the accept thread");
        goto fail;
    }
    l->accept_started = 1;
    l->cfg = *cfg;
    if ((cfg->rsa_cert_pem == NULL || cfg->rsa_key_pem == NULL) && cfg->data_dir &&
        pthread_create(&l->rsa_thread, NULL, kl_rsa_main, l) == 0)
        l->rsa_started = 1;
    return l;
fail:
    pgcmk_kmip_listener_stop(l);
    return NULL;
}

int
pgcmk_kmip_listener_port(const struct pgcmk_kmip_listener *l)
{
    return l ? l->port : -1;
}

void
pgcmk_kmip_listener_stop(struct pgcmk_kmip_listener *l)
{
    if (l == NULL)
        return;
    atomic_store(&l->stopping, 1);
    if (l->rsa_started)
        pthread_join(l->rsa_thread, NULL);
    if (l->accept_started) {
        ssize_t w;

        do
            w = write(l->wake[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(l->accept_thread, NULL);
    }
    while (l->n_fds > 0)
        close(l->fds[--l->n_fds]);
    /* Wake every worker: the idle ones leave, the busy ones see their socket shut down. */
    pthread_mutex_lock(&l->mu);
    pthread_cond_broadcast(&l->cv);
    for (int i = 0; i < l->n_workers; i++)
        if (l->conns[i].fd >= 0)
            shutdown(l->conns[i].fd, SHUT_RDWR);
    pthread_mutex_unlock(&l->mu);
    /* The accept thread is gone: no worker starts any more. */
    for (int i = 0; i < l->n_workers; i++)
        pthread_join(l->conns[i].thread, NULL);
    for (; l->q_len > 0; l->q_len--) {
        struct kl_pending *p = &l->queue[l->q_head];

        SSL_free(p->ssl);
        close(p->fd);
        l->q_head = (l->q_head + 1) % l->max_conns;
    }
    if (l->wake[0] >= 0)
        close(l->wake[0]);
    if (l->wake[1] >= 0)
        close(l->wake[1]);
    SSL_CTX_free(l->ctx);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l->queue);
    free(l->conns);
    free(l);
}
