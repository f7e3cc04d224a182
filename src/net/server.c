/* server.c - the HTTP/1.1 server over the TLS connection server (include/pgcmk/net.h).
 *
 * A connection: the client's certificates become its pgcmk_peer once, after the handshake;
 * then requests one after another: the head (pgcmk_http1_parse) and the body under the
 * timeout counted from the request's first byte, the handler, the answer (Content-Length, or
 * chunked for a stream). Refused heads are answered as Go's net/http server (KES's) answers them
 * ("400 Bad Request" in text/plain, Connection: close) and the connection closes. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <microhttpd.h>

#include "pgcmk/log.h"
#include "pgcmk/net.h"

#define HS_TLS12_CIPHERS                                                                           \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:"   \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256"

struct pgcmk_net_https {
    struct pgcmk_net_tls *tls;
    int port;
    int timeout_ms; /* handshake, body, each write */
    int header_ms;  /* a request's head, from its first byte */
    int idle_ms;    /* a kept-alive connection's wait for its next request */
    size_t max_body;
    const struct pgcmk_cfg *cfg;
    void (*handle)(struct pgcmk_req *rq, struct pgcmk_resp *rs, void *arg);
    void (*too_large)(struct pgcmk_req *rq, struct pgcmk_resp *rs, void *arg);
    void *arg;
};

struct pgcmk_stream {
    struct pgcmk_net_conn *c;
    int timeout_ms;
    int ok;  /* 0 once a write failed */
    int raw; /* HTTP/1.0: no chunks, the close ends the answer */
};

/* The reason phrase of a status line: Go's (net/http StatusText), which is libmicrohttpd's but
 * for the two that RFC 9110 renamed. */
static const char *
hs_reason(int status)
{
    if (status == 413)
        return "Request Entity Too Large";
    if (status == 422)
        return "Unprocessable Entity";
    return MHD_get_reason_phrase_for((unsigned)status);
}

/* ---- the peer -------------------------------------------------------------------------- */

static void
hs_identity(X509 *x, char out[65])
{
    unsigned char *der = NULL, md[32];
    unsigned int mdlen = 0;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);

    out[0] = '\0';
    if (n > 0 && EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32)
        for (int i = 0; i < 32; i++)
            snprintf(out + 2 * i, 3, "%02x", md[i]);
    OPENSSL_free(der);
}

/* KES's identifyRequest: the certificates the client sent that are not CAs; the identity is
 * the SHA-256 of the first one's SubjectPublicKeyInfo. */
static void
hs_peer(struct pgcmk_net_conn *c, struct pgcmk_peer *p)
{
    X509 *leaf = SSL_get0_peer_certificate(c->ssl);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(c->ssl); /* server side: without the leaf */
    int n = chain ? sk_X509_num(chain) : 0;

    memset(p, 0, sizeof(*p));
    snprintf(p->ip, sizeof(p->ip), "%s", c->ip);
    if (leaf == NULL)
        return;
    p->verified = SSL_get_verify_result(c->ssl) == X509_V_OK;
    for (int i = -1; i < n; i++) {
        X509 *x = i < 0 ? leaf : sk_X509_value(chain, i);

        if (i >= 0 && X509_cmp(x, leaf) == 0)
            continue; /* a chain that repeats the leaf */
        if (X509_get_extension_flags(x) & EXFLAG_CA)
            continue;
        if (p->n_leaf++ == 0)
            hs_identity(x, p->identity);
    }
    ERR_clear_error();
}

/* ---- answers --------------------------------------------------------------------------- */

static void
hs_date(char *out, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Go's answer to a head it refuses (net/http's server.go): "400 Bad Request", or with Go's
 * text "400 Bad Request: missing required Host header" in the status line and the body. */
static void
hs_refuse(struct pgcmk_net_https *h, struct pgcmk_net_conn *c, int status, const char *why)
{
    char buf[512];
    int n;

    if (status == 417)
        n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n");
    else if (status == 501)
        n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Connection: close\r\n\r\nUnsupported transfer encoding");
    else
        n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s%s%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Connection: close\r\n\r\n%d %s%s%s",
                     status, hs_reason(status), why ? ": " : "", why ? why : "", status,
                     hs_reason(status), why ? ": " : "", why ? why : "");
    (void)pgcmk_net_write(c, buf, (size_t)n, pgcmk_net_mono_ms() + h->timeout_ms);
}

/* The status line and headers (heap); *len its length. */
static char *
hs_head(const struct pgcmk_resp *rs, int keep_alive, const char *framing, size_t extra, size_t *len)
{
    /* status line, Date, framing and Connection fit in 512; each header is counted */
    size_t cap = 512 + strlen(framing) + extra + (rs->content_type ? strlen(rs->content_type) : 0);
    char date[64], *out;
    size_t n;

    for (int i = 0; i < rs->n_headers; i++)
        cap += strlen(rs->headers[i].key) + strlen(rs->headers[i].value) + 4;
    out = pgcmk_xmalloc(cap);
    hs_date(date, sizeof(date));
    n = (size_t)snprintf(out, cap, "HTTP/1.1 %d %s\r\n", rs->status, hs_reason(rs->status));
    if (rs->content_type)
        n += (size_t)snprintf(out + n, cap - n, "Content-Type: %s\r\n", rs->content_type);
    for (int i = 0; i < rs->n_headers; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s: %s\r\n", rs->headers[i].key,
                              rs->headers[i].value);
    n += (size_t)snprintf(out + n, cap - n, "Date: %s\r\n%s%s\r\n", date, framing,
                          keep_alive ? "" : "Connection: close\r\n");
    *len = n;
    return out;
}

int
pgcmk_stream_write(struct pgcmk_stream *s, const void *buf, size_t len)
{
    char *out;
    int n;

    if (s == NULL || !s->ok || pgcmk_net_stopping(s->c)) {
        if (s)
            s->ok = 0;
        return -1;
    }
    if (len == 0)
        return 0; /* an empty chunk would end the answer */
    out = pgcmk_xmalloc(len + 32);
    n = s->raw ? 0 : snprintf(out, 32, "%zx\r\n", len);
    memcpy(out + n, buf, len);
    memcpy(out + n + len, "\r\n", 2);
    if (pgcmk_net_write(s->c, out, (size_t)n + len + (s->raw ? 0 : 2),
                        pgcmk_net_mono_ms() + s->timeout_ms))
        s->ok = 0;
    pgcmk_secret_free(out, len + 32);
    return s->ok ? 0 : -1;
}

int
pgcmk_stream_alive(struct pgcmk_stream *s, int wait_ms)
{
    struct pollfd p;
    char b;

    if (s == NULL || !s->ok || pgcmk_net_stopping(s->c))
        return 0;
    p = (struct pollfd){s->c->fd, POLLIN | POLLRDHUP, 0};
    if (poll(&p, 1, wait_ms < 0 ? 0 : wait_ms) <= 0)
        return !pgcmk_net_stopping(s->c);
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR))
        s->ok = 0;
    else if (recv(s->c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
        s->ok = 0;
    else if (wait_ms > 0) /* the client sent something: wait the rest without polling it */
        poll(NULL, 0, wait_ms);
    return s->ok && !pgcmk_net_stopping(s->c);
}

/* Writes rs: 0 done (the connection may go on), -1 close. */
static int
hs_answer(struct pgcmk_net_https *h, struct pgcmk_net_conn *c, const struct pgcmk_http1_head *hd,
          struct pgcmk_resp *rs, int keep_alive)
{
    const char *method = hd->method;
    int64_t deadline = pgcmk_net_mono_ms() + h->timeout_ms;
    int no_body = strcmp(method, "HEAD") == 0, r;
    char framing[64], *out;
    size_t n, body_len = rs->body ? rs->body_len : 0;

    if (rs->status == 0 && rs->stream)
        rs->status = 200;
    if (rs->status < 200 || rs->status > 999)
        rs->status = 500;
    if (rs->stream) {
        struct pgcmk_stream st = {c, h->timeout_ms, 1, hd->minor == 0};

        out = hs_head(rs, keep_alive && !st.raw, st.raw ? "" : "Transfer-Encoding: chunked\r\n", 0,
                      &n);
        r = pgcmk_net_write(c, out, n, deadline);
        free(out);
        if (r)
            return -1;
        rs->stream(&st, rs->stream_arg);
        if (st.raw || !st.ok ||
            pgcmk_net_write(c, "0\r\n\r\n", 5, pgcmk_net_mono_ms() + h->timeout_ms))
            return -1;
        return keep_alive ? 0 : -1;
    }
    if (rs->status == 204 || rs->status == 304) {
        framing[0] = '\0';
        body_len = 0;
    } else {
        snprintf(framing, sizeof(framing), "Content-Length: %zu\r\n", body_len);
    }
    if (no_body)
        body_len = 0;
    out = hs_head(rs, keep_alive, framing, body_len, &n);
    if (body_len)
        memcpy(out + n, rs->body, body_len);
    r = pgcmk_net_write(c, out, n + body_len, deadline);
    pgcmk_secret_free(out, n + body_len);
    return r == 0 && keep_alive ? 0 : -1;
}

/* ---- requests -------------------------------------------------------------------------- */

static void
hs_req(struct pgcmk_net_https *h, struct pgcmk_req *rq, const struct pgcmk_http1_head *hd,
       const struct pgcmk_peer *peer)
{
    pgcmk_req_init(rq, h->cfg, hd->method, hd->target, hd->host, NULL, 0);
    rq->plane = PGCMK_PLANE_KES;
    rq->tls = 1;
    rq->port = h->port;
    if (hd->host == NULL)
        rq->host_port = h->port;
    rq->peer = peer;
    for (int i = 0; i < hd->n_headers; i++)
        pgcmk_req_add_header(rq, hd->headers[i].name, hd->headers[i].value);
}

static void
hs_default_too_large(struct pgcmk_req *rq, struct pgcmk_resp *rs, void *arg)
{
    (void)rq;
    (void)arg;
    pgcmk_resp_json(rs, 413, json_pack("{s:s}", "message", "request body too large"));
}

/* The body of a chunked request: what follows the head in buf (have bytes), then reads.
 * 0 with *body (heap) and *len, and the bytes after it in *tail (heap, *rest bytes); -413 over
 * max_body; -400 malformed; -1 the connection failed. */
static int
hs_chunked(struct pgcmk_net_https *h, struct pgcmk_net_conn *c, const char *buf, size_t head,
           size_t have, int64_t deadline, char **body, size_t *len, char **tail, size_t *rest)
{
    size_t cap = 2 * h->max_body + 65536, n = have;
    char *cb = pgcmk_xmalloc(cap + 1);
    long r;

    memcpy(cb, buf + head, have);
    while ((r = pgcmk_http1_dechunk(cb, n, h->max_body, len)) == 0) {
        long got;

        if (n == cap) {
            r = -413;
            break;
        }
        if ((got = pgcmk_net_read(c, cb + n, cap - n, deadline)) <= 0)
            break;
        n += (size_t)got;
    }
    if (r <= 0 || n - (size_t)r > PGCMK_HTTP1_MAX_HEAD) {
        pgcmk_secret_free(cb, cap + 1);
        return r < 0 ? (int)r : -1;
    }
    *rest = n - (size_t)r;
    *tail = pgcmk_xmalloc(*rest + 1);
    memcpy(*tail, cb + r, *rest);
    OPENSSL_cleanse(cb + *len, n - *len); /* the encoding's copy of the data */
    cb[*len] = '\0';
    *body = cb;
    return 0;
}

/* One request whose head is buf[0..head) (parsed into hd); buf[head..*len) holds what followed
 * it. Returns 0 to go on (with *len = the bytes of the next request, moved to buf's start), or
 * -1 to close. */
static int
hs_one(struct pgcmk_net_https *h, struct pgcmk_net_conn *c, const struct pgcmk_peer *peer,
       char *buf, size_t head, size_t *len, const struct pgcmk_http1_head *hd, int64_t deadline)
{
    struct pgcmk_req rq;
    struct pgcmk_resp rs;
    size_t have = *len - head, cl = hd->content_length > 0 ? (size_t)hd->content_length : 0;
    size_t rest = 0, take = 0;
    char *body = NULL, *tail = NULL;
    int r, keep = hd->keep_alive;

    memset(&rs, 0, sizeof(rs));
    if (hd->expect_continue && (hd->chunked || (cl > have && cl <= h->max_body)) &&
        pgcmk_net_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25, deadline))
        return -1;
    if (hd->chunked) {
        r = hs_chunked(h, c, buf, head, have, deadline, &body, &cl, &tail, &rest);
        if (r == -400)
            hs_refuse(h, c, 400, NULL);
        if (r == -413)
            cl = h->max_body + 1;
        else if (r)
            return -1;
    }
    if (cl > h->max_body) { /* the body is not read: the connection closes after the answer */
        hs_req(h, &rq, hd, peer);
        h->too_large(&rq, &rs, h->arg);
        (void)hs_answer(h, c, hd, &rs, 0);
        pgcmk_resp_release(&rs);
        pgcmk_req_release(&rq);
        return -1;
    }
    if (!hd->chunked) {
        take = have < cl ? have : cl;
        body = pgcmk_xmalloc(cl + 1);
        memcpy(body, buf + head, take);
        if (take < cl && pgcmk_net_read_full(c, body + take, cl - take, deadline, 0) != 1) {
            pgcmk_secret_free(body, cl + 1);
            return -1;
        }
        body[cl] = '\0';
        rest = have - take;
    }
    hs_req(h, &rq, hd, peer);
    free(rq.body);
    rq.body = body;
    rq.body_len = cl;
    h->handle(&rq, &rs, h->arg);
    r = hs_answer(h, c, hd, &rs, keep);
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);
    /* What followed the body (a pipelined request) moves to the start; the rest is wiped. */
    if (tail) {
        memcpy(buf, tail, rest);
        pgcmk_secret_free(tail, rest + 1);
    } else {
        memmove(buf, buf + head + take, rest);
    }
    if (head + have > rest)
        OPENSSL_cleanse(buf + rest, head + have - rest);
    *len = rest;
    return r;
}

static void
hs_serve(struct pgcmk_net_conn *c, void *arg)
{
    struct pgcmk_net_https *h = arg;
    struct pgcmk_peer peer;
    char *buf = pgcmk_xmalloc(PGCMK_HTTP1_MAX_HEAD + 1);
    size_t len = 0;

    hs_peer(c, &peer);
    for (;;) {
        struct pgcmk_http1_head hd;
        int64_t deadline;
        long r;

        /* Go's server: the next request may take the idle timeout to begin, its head then has
         * the header timeout, its body the timeout. */
        if (len == 0 && pgcmk_net_wait_readable(c, pgcmk_net_mono_ms() + h->idle_ms))
            break;
        deadline = pgcmk_net_mono_ms() + h->header_ms;
        while ((r = pgcmk_http1_parse(buf, len, &hd)) == 0) {
            long n = pgcmk_net_read(c, buf + len, PGCMK_HTTP1_MAX_HEAD - len, deadline);

            if (n <= 0) {
                if (n < 0 && !pgcmk_net_stopping(c))
                    LOG_DEBUG("net: %s: no whole request head within %d ms; closing", c->peer,
                              h->header_ms);
                goto done;
            }
            len += (size_t)n;
        }
        if (r < 0) {
            hs_refuse(h, c, (int)-r, hd.why);
            break;
        }
        if (hs_one(h, c, &peer, buf, (size_t)r, &len, &hd, pgcmk_net_mono_ms() + h->timeout_ms))
            break;
    }
done:
    pgcmk_secret_free(buf, PGCMK_HTTP1_MAX_HEAD + 1);
}

/* ---- start and stop -------------------------------------------------------------------- */

static int
hs_verify_any(int ok, X509_STORE_CTX *xs)
{
    (void)ok;
    (void)xs;
    return 1; /* any chain, self-signed too: the handler decides on the identity */
}

static int
hs_load_ca(SSL_CTX *ctx, const char *ca_pem)
{
    BIO *b = ca_pem ? BIO_new_mem_buf(ca_pem, -1) : NULL;
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    int n = 0;

    for (X509 *x; b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL; X509_free(x))
        if (X509_STORE_add_cert(st, x) == 1 && SSL_CTX_add_client_CA(ctx, x) == 1)
            n++;
    BIO_free(b);
    ERR_clear_error();
    return n > 0 ? 0 : -1;
}

struct pgcmk_net_https *
pgcmk_net_https_start(const struct pgcmk_net_https_cfg *cfg, struct pgcmk_err *err)
{
    struct pgcmk_net_https *h;
    struct pgcmk_net_tls_cfg tc;
    SSL_CTX *ctx = pgcmk_net_ctx_new("kes", cfg->cert_pem, cfg->key_pem, err);

    if (ctx == NULL)
        return NULL;
    switch (cfg->client_cert) {
    case PGCMK_NET_CERT_NONE:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        break;
    case PGCMK_NET_CERT_REQUEST:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, hs_verify_any);
        break;
    case PGCMK_NET_CERT_REQUIRE_ANY:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, hs_verify_any);
        break;
    case PGCMK_NET_CERT_VERIFY:
    case PGCMK_NET_CERT_VERIFY_IF_GIVEN:
        if (hs_load_ca(ctx, cfg->ca_pem)) {
            SSL_CTX_free(ctx);
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "kes: no CA certificate to verify clients");
            return NULL;
        }
        SSL_CTX_set_verify(
            ctx,
            SSL_VERIFY_PEER |
                (cfg->client_cert == PGCMK_NET_CERT_VERIFY ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
            NULL);
        SSL_CTX_set_verify_depth(ctx, 8);
        break;
    }
    /* KES's TLS (fips.TLSCiphers, fips.TLSCurveIDs outside FIPS mode): TLS 1.2 with ECDHE and
     * AEAD suites only, X25519 then P-256. */
    if (SSL_CTX_set_cipher_list(ctx, HS_TLS12_CIPHERS) != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256") != 1) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "kes: the TLS suites do not load");
        return NULL;
    }
    h = pgcmk_xcalloc(1, sizeof(*h));
    h->timeout_ms = (cfg->timeout_s > 0 ? cfg->timeout_s : 120) * 1000;
    h->header_ms = (cfg->header_timeout_s > 0 ? cfg->header_timeout_s : 5) * 1000;
    h->idle_ms = (cfg->idle_timeout_s > 0 ? cfg->idle_timeout_s : 90) * 1000;
    h->max_body = cfg->max_body ? cfg->max_body : PGCMK_NET_MAX_BODY;
    h->cfg = cfg->cfg;
    h->handle = cfg->handle;
    h->too_large = cfg->too_large ? cfg->too_large : hs_default_too_large;
    h->arg = cfg->arg;
    tc = (struct pgcmk_net_tls_cfg){"kes",          cfg->listen, cfg->port, cfg->timeout_s,
                                    cfg->max_conns, ctx,         hs_serve,  h};
    h->tls = pgcmk_net_tls_start(&tc, err);
    if (h->tls == NULL) {
        free(h);
        return NULL; /* the context went with the failed start */
    }
    h->port = pgcmk_net_tls_port(h->tls);
    return h;
}

int
pgcmk_net_https_port(const struct pgcmk_net_https *h)
{
    return h ? h->port : -1;
}

void
pgcmk_net_https_stop(struct pgcmk_net_https *h)
{
    if (h == NULL)
        return;
    pgcmk_net_tls_stop(h->tls);
    free(h);
}
