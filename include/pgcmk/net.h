/* net.h - the TLS connection server (src/net/tls.c) and the HTTP/1.1 server on it
 * (src/net/server.c; its request parser, src/net/http1.c): the transport of the KES plane, and of
 * KMIP (src/kmip/listener.c).
 *
 * The TLS server binds every listen address on one port, accepts on one thread (the listening
 * sockets and a wake pipe), and hands each connection to a worker thread (at most max_conns; a
 * worker serves one connection at a time and then waits for the next, so per-thread state such
 * as a store connection survives). The worker does the handshake on a non-blocking socket under
 * the timeout, then calls `serve`. Stop: the wake pipe ends the accept loop, shutdown() of every
 * connection's socket wakes its worker, every thread is joined. The process must ignore SIGPIPE
 * (pgcmkd does): a write to a client that has gone fails instead.
 *
 * The HTTP/1.1 server is Go's net/http as KES runs it: it reads requests (request line, headers,
 * a Content-Length or chunked body up to max_body, Expect: 100-continue, keep-alive with KES's
 * idle and header timeouts; HTTP/1.0 and "Connection: close" close; a head Go refuses gets Go's
 * text answer and the close), hands each to `handle` as a pgcmk_req of plane KES (rq->peer = the
 * client's certificates, as KES's identifyRequest counts them) and writes the pgcmk_resp: with
 * Content-Length, or chunked when rs->stream is set (one chunk per pgcmk_stream_write, sent at
 * once). TLS 1.2-1.3 with KES's suites and curves; no session resumption. */
#ifndef PGCMK_NET_H
#define PGCMK_NET_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "pgcmk/cfg.h"
#include "pgcmk/err.h"
#include "pgcmk/http.h"

#define PGCMK_NET_MAX_CONNS 256
#define PGCMK_NET_MAX_BODY  (1024 * 1024)

/* ---- TLS connection server ------------------------------------------------------------- */

/* One accepted connection, as the serve function and a verify callback see it. */
struct pgcmk_net_conn {
    int fd;
    SSL *ssl;
    char peer[64]; /* "ip:port" of the client */
    char ip[48];
    char identity[80]; /* what a verify callback named the client ("" before; KMIP: the CN) */
    void *data;        /* the user's per-connection state (NULL at the start) */
    struct pgcmk_net_tls *srv;
};

struct pgcmk_net_tls_cfg {
    const char *name;   /* log prefix: "kes", "kmip" */
    const char *listen; /* comma-separated addresses ("127.0.0.1,::1") */
    int port;           /* 0 = any free port */
    int timeout_s;      /* the handshake's timeout (0 = 120); serve sets its own deadlines */
    int max_conns;      /* 0 = PGCMK_NET_MAX_CONNS */
    SSL_CTX *ctx;       /* taken: freed by the server (pgcmk_net_tls_set_ctx swaps it) */
    /* One connection after its handshake; returns when done (the server closes it). */
    void (*serve)(struct pgcmk_net_conn *c, void *arg);
    void *arg;
};

struct pgcmk_net_tls;

struct pgcmk_net_tls *pgcmk_net_tls_start(const struct pgcmk_net_tls_cfg *cfg,
                                          struct pgcmk_err *err);
int pgcmk_net_tls_port(const struct pgcmk_net_tls *s);
/* Connections accepted from now on use ctx (taken); those on the old one keep it. */
void pgcmk_net_tls_set_ctx(struct pgcmk_net_tls *s, SSL_CTX *ctx);
/* NULL is fine. */
void pgcmk_net_tls_stop(struct pgcmk_net_tls *s);

/* A context for a server: TLS 1.2-1.3, no renegotiation, the certificate (leaf PEM then chain
 * PEMs) and its key. NULL with err set. */
SSL_CTX *pgcmk_net_ctx_new(const char *name, const char *cert_pem, const char *key_pem,
                           struct pgcmk_err *err);
/* Adds another certificate and key (a second slot: an RSA one next to an ECDSA one). 0 or -1. */
int pgcmk_net_ctx_add_cert(SSL_CTX *ctx, const char *cert_pem, const char *key_pem);
/* The connection a verify callback (SSL_CTX_set_verify) runs for, or NULL. */
struct pgcmk_net_conn *pgcmk_net_conn_of(X509_STORE_CTX *xs);

/* Monotonic milliseconds (deadlines below). */
int64_t pgcmk_net_mono_ms(void);
/* Some bytes (up to cap) before the deadline: >0 their count, 0 the peer closed cleanly,
 * -1 timed out, stopping, or the connection failed. */
long pgcmk_net_read(struct pgcmk_net_conn *c, void *buf, size_t cap, int64_t deadline);
/* Waits until a read may find something (bytes OpenSSL holds, or on the socket) before the
 * deadline: 0, or -1 timed out or stopping. Saves a failing read() when a kept-alive connection
 * waits for its next request. */
int pgcmk_net_wait_readable(struct pgcmk_net_conn *c, int64_t deadline);
/* Exactly len bytes: 1 done, 0 the peer closed before the first byte (eof_ok), -1 else. */
int pgcmk_net_read_full(struct pgcmk_net_conn *c, void *buf, size_t len, int64_t deadline,
                        int eof_ok);
/* All of buf before the deadline: 0, or -1. */
int pgcmk_net_write(struct pgcmk_net_conn *c, const void *buf, size_t len, int64_t deadline);
/* 1 once the server is stopping. */
int pgcmk_net_stopping(const struct pgcmk_net_conn *c);

/* ---- HTTP/1.1 over TLS ------------------------------------------------------------------ */

enum pgcmk_net_cert {
    PGCMK_NET_CERT_NONE,           /* no certificate asked for */
    PGCMK_NET_CERT_REQUEST,        /* asked for, any (self-signed too) accepted, none fine */
    PGCMK_NET_CERT_REQUIRE_ANY,    /* required, any chain accepted (KES's default) */
    PGCMK_NET_CERT_VERIFY,         /* required, must verify against ca_pem */
    PGCMK_NET_CERT_VERIFY_IF_GIVEN /* none is fine, one sent must verify (tls.auth on with an
                                    * API whose skip_auth is on: Go's VerifyClientCertIfGiven) */
};

struct pgcmk_net_https_cfg {
    const char *listen;             /* "127.0.0.1" (comma list) */
    int port;                       /* 0 = any free port */
    const char *cert_pem, *key_pem; /* server certificate (+chain) and key, PEM text */
    enum pgcmk_net_cert client_cert;
    const char *ca_pem; /* VERIFY: client chains verify against these certificates */
    int timeout_s;      /* handshake, body and write timeout (0 = 120) */
    int max_conns;      /* 0 = PGCMK_NET_MAX_CONNS */
    size_t max_body;    /* 0 = PGCMK_NET_MAX_BODY */
    const struct pgcmk_cfg *cfg;
    void (*handle)(struct pgcmk_req *rq, struct pgcmk_resp *rs, void *arg);
    /* A body over max_body (rq without its body); NULL = 413 {"message":"request body too
     * large"}. */
    void (*too_large)(struct pgcmk_req *rq, struct pgcmk_resp *rs, void *arg);
    void *arg;
    /* Last, so that initialisers without them leave them 0 (KES's http.Server values): */
    int header_timeout_s; /* a request's head, from its first byte (0 = 5: ReadHeaderTimeout) */
    int idle_timeout_s;   /* the wait for a kept-alive connection's next request (0 = 90) */
};

struct pgcmk_net_https;

struct pgcmk_net_https *pgcmk_net_https_start(const struct pgcmk_net_https_cfg *cfg,
                                              struct pgcmk_err *err);
int pgcmk_net_https_port(const struct pgcmk_net_https *h);
/* Ends streams (their pgcmk_stream_write fails), joins threads, frees. NULL is fine. */
void pgcmk_net_https_stop(struct pgcmk_net_https *h);

/* For a stream function that waits for something to send: 1 while the client is connected and
 * the server is not stopping, else 0 (then return). Waits at most wait_ms for either. */
int pgcmk_stream_alive(struct pgcmk_stream *s, int wait_ms);

/* ---- the request parser (pure: fuzzed by tests/fuzz/fuzz_http1.c) ----------------------- */

#define PGCMK_HTTP1_MAX_HEAD    16384 /* request line + headers */
#define PGCMK_HTTP1_MAX_HEADERS PGCMK_MAX_HEADERS

struct pgcmk_http1_head {
    const char *method, *target; /* NUL-terminated inside the parsed buffer */
    int minor;                   /* HTTP/1.<minor> */

    struct {
        const char *name, *value;
    } headers[PGCMK_HTTP1_MAX_HEADERS];

    int n_headers;
    long long content_length; /* -1: none */
    int chunked;              /* Transfer-Encoding: chunked */
    int expect_continue;
    int keep_alive; /* after this request */
    const char *host;
    const char *why; /* a refused head: Go's text for it ("missing required Host header"), or
                      * NULL */
};

/* Parses the head at the start of buf (len bytes; buf is modified: NULs are written). Returns
 * the head's length (through the empty line) when it is complete, 0 when more bytes are needed,
 * or -status (400, 431, 501, 505) for a head to refuse. */
long pgcmk_http1_parse(char *buf, size_t len, struct pgcmk_http1_head *h);
/* A chunked body at the start of buf (chunk extensions and trailers ignored): when complete,
 * its data (at most max bytes) is moved to buf's start, *out_len = its length, and the length
 * of the chunked encoding is returned; 0 when more bytes are needed; -400 malformed, -413 over
 * max. */
long pgcmk_http1_dechunk(char *buf, size_t len, size_t max, size_t *out_len);

#endif
