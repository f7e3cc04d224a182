/* test_net.c - the TLS + HTTP/1.1 server of src/net: a server on port 0 with a trivial handler,
 * an OpenSSL client with a self-signed Ed25519 certificate (KES's API-key certificates), the
 * identity, keep-alive, a streamed answer, refusals, and the parser alone. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pgcmk/crypto.h"
#include "pgcmk/net.h"
#include "t.h"

static atomic_int t_stream_ended;

static void
t_stream(struct pgcmk_stream *s, void *arg)
{
    int n = *(int *)arg;

    for (int i = 0; i < n; i++) {
        char line[64];
        int len = snprintf(line, sizeof(line), "{\"event\":%d}\n", i);

        if (pgcmk_stream_write(s, line, (size_t)len))
            break;
    }
    if (n > 100) /* the endless stream: until the client goes or the server stops */
        while (pgcmk_stream_alive(s, 50))
            ;
    atomic_fetch_add(&t_stream_ended, 1);
}

static void
t_handle(struct pgcmk_req *rq, struct pgcmk_resp *rs, void *arg)
{
    (void)arg;
    if (strcmp(rq->path, "/stream") == 0 || strcmp(rq->path, "/forever") == 0) {
        int *n = pgcmk_xmalloc(sizeof(*n));

        *n = strcmp(rq->path, "/stream") == 0 ? 3 : 1000;
        rs->status = 200;
        rs->content_type = "application/x-ndjson";
        rs->stream = t_stream;
        rs->stream_arg = n;
        rs->stream_free = free;
        return;
    }
    pgcmk_resp_json(rs, 200,
                    json_pack("{s:s, s:s, s:s%, s:s, s:i, s:i, s:i, s:b}", "method", rq->method,
                              "path", rq->path, "body", rq->body, rq->body_len, "identity",
                              rq->peer ? rq->peer->identity : "", "n_leaf",
                              rq->peer ? rq->peer->n_leaf : -1, "plane", (int)rq->plane, "port",
                              rq->port, "verified", rq->peer && rq->peer->verified));
}

/* ---- a client ---------------------------------------------------------------------------- */

static EVP_PKEY *
t_ed25519(void)
{
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);

    EVP_PKEY_keygen_init(pc);
    EVP_PKEY_keygen(pc, &k);
    EVP_PKEY_CTX_free(pc);
    return k;
}

/* A self-signed certificate, as KES's `kes identity new` / an API key makes: CN, EKU
 * clientAuth; ca=1 makes a CA certificate instead. */
static X509 *
t_self_signed(EVP_PKEY *k, const char *cn, int ca)
{
    X509 *x = X509_new();
    X509V3_CTX v3;
    X509_EXTENSION *e;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, k);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &v3, ca ? NID_basic_constraints : NID_ext_key_usage,
                            ca ? "critical,CA:TRUE" : "clientAuth");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    X509_sign(x, k, NULL);
    return x;
}

static void
t_spki_hex(X509 *x, char out[65])
{
    unsigned char *der = NULL, md[32];
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);

    pgcmk_sha256(der, (size_t)n, md);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    OPENSSL_free(der);
}

struct t_cli {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char buf[65536];
    size_t len;
};

/* Connects and shakes hands; 0, or -1 when the handshake failed. */
static int
t_connect(struct t_cli *c, int port, X509 *cert, EVP_PKEY *key, STACK_OF(X509) * extra,
          int max_version)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

    memset(c, 0, sizeof(*c));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return -1;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (max_version)
        SSL_CTX_set_max_proto_version(c->ctx, max_version);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    if (cert) {
        SSL_CTX_use_certificate(c->ctx, cert);
        SSL_CTX_use_PrivateKey(c->ctx, key);
    }
    for (int i = 0; extra && i < sk_X509_num(extra); i++) {
        X509 *x = sk_X509_value(extra, i);

        X509_up_ref(x);
        SSL_CTX_add_extra_chain_cert(c->ctx, x);
    }
    c->ssl = SSL_new(c->ctx);
    SSL_set_fd(c->ssl, c->fd);
    return SSL_connect(c->ssl) == 1 ? 0 : -1;
}

static void
t_close(struct t_cli *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    close(c->fd);
    ERR_clear_error();
}

static int
t_send(struct t_cli *c, const char *s)
{
    return SSL_write(c->ssl, s, (int)strlen(s)) == (int)strlen(s) ? 0 : -1;
}

static int
t_fill(struct t_cli *c)
{
    int n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - 1 - c->len));

    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    return 0;
}

/* One answer: status (or -1 when the connection ended first), its head into head (cap 4096),
 * the body (de-chunked) into body. */
static int
t_answer(struct t_cli *c, char *head, char *body, size_t cap)
{
    char *end, *p;
    size_t hl, bl = 0;
    int status;

    while ((end = strstr(c->buf, "\r\n\r\n")) == NULL)
        if (t_fill(c))
            return -1;
    hl = (size_t)(end - c->buf) + 4;
    snprintf(head, 4096, "%.*s", (int)hl, c->buf);
    status = atoi(c->buf + 9);
    memmove(c->buf, c->buf + hl, c->len - hl + 1);
    c->len -= hl;
    if (status < 200) {
        body[0] = '\0';
        return status;
    }
    if (strcasestr(head, "Transfer-Encoding: chunked")) {
        for (;;) {
            size_t n;

            while ((p = strstr(c->buf, "\r\n")) == NULL)
                if (t_fill(c))
                    return -1;
            n = strtoul(c->buf, NULL, 16);
            while (c->len < (size_t)(p - c->buf) + 2 + n + 2)
                if (t_fill(c))
                    return -1;
            if (bl + n < cap) {
                memcpy(body + bl, p + 2, n);
                bl += n;
            }
            hl = (size_t)(p - c->buf) + 2 + n + 2;
            memmove(c->buf, c->buf + hl, c->len - hl + 1);
            c->len -= hl;
            if (n == 0)
                break;
        }
    } else if ((p = strcasestr(head, "Content-Length:")) != NULL) {
        bl = strtoul(p + 15, NULL, 10);
        while (c->len < bl)
            if (t_fill(c))
                return -1;
        if (bl >= cap)
            bl = cap - 1;
        memcpy(body, c->buf, bl);
        memmove(c->buf, c->buf + bl, c->len - bl + 1);
        c->len -= bl;
    } else {
        while (t_fill(c) == 0)
            ;
        bl = c->len < cap ? c->len : cap - 1;
        memcpy(body, c->buf, bl);
        c->len = 0;
    }
    body[bl] = '\0';
    return status;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void
test_parser(void)
{
    struct pgcmk_http1_head h;
    char b[PGCMK_HTTP1_MAX_HEAD + 64];
    long n;

    snprintf(b, sizeof(b), "POST /v1/key/create/k1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n");
    CHECK(pgcmk_http1_parse(b, strlen(b), &h) == 0);
    snprintf(b, sizeof(b),
             "\r\nPOST /v1/key/create/k1 HTTP/1.1\r\nHost: a:7373\r\nContent-Length:  5 \r\n"
             "Connection: close\r\n\r\nhello");
    n = (long)strlen(b);
    CHECK(pgcmk_http1_parse(b, (size_t)n, &h) == n - 5);
    CHECK_STR(h.method, "POST");
    CHECK_STR(h.target, "/v1/key/create/k1");
    CHECK_STR(h.host, "a:7373");
    CHECK(h.content_length == 5 && !h.keep_alive && h.n_headers == 3 && h.minor == 1);
    snprintf(b, sizeof(b), "GET / HTTP/1.0\n\n");
    CHECK(pgcmk_http1_parse(b, strlen(b), &h) == 16 && !h.keep_alive);
    snprintf(b, sizeof(b), "GET https://a:7373/v1/status HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(pgcmk_http1_parse(b, strlen(b), &h) > 0);
    CHECK_STR(h.target, "/v1/status");
    snprintf(b, sizeof(b), "GET https://a:7373 HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(pgcmk_http1_parse(b, strlen(b), &h) == -400);
    snprintf(b, sizeof(b), "GET / HTTP/1.1\r\n\r\n"); /* HTTP/1.1 needs a Host */
    CHECK(pgcmk_http1_parse(b, strlen(b), &h) == -400);
    snprintf(b, sizeof(b), "GET / HTTP/2.0\r\nHost: a\r\n\r\n");
    CHECK(pgcmk_http1_parse(b, strlen(b), &h) == -505);
    snprintf(b, sizeof(b),
             "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
             "Content-Length: 2\r\n\r\n");
    CHECK(pgcmk_http1_parse(b, strlen(b), &h) == -400);
    snprintf(b, sizeof(b), "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n");
    CHECK(pgcmk_http1_parse(b, strlen(b), &h) == -400);
    snprintf(b, sizeof(b), "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n");
    CHECK(pgcmk_http1_parse(b, strlen(b), &h) == -501);
    snprintf(b, sizeof(b), "GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n");
    CHECK(pgcmk_http1_parse(b, strlen(b), &h) == -417);
    snprintf(b, sizeof(b), "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n");
    CHECK(pgcmk_http1_parse(b, strlen(b), &h) == -400);
    snprintf(b, sizeof(b), "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(pgcmk_http1_parse(b, strlen(b), &h) == -400);
    memset(b, 'a', sizeof(b));
    memcpy(b, "GET /", 5);
    CHECK(pgcmk_http1_parse(b, PGCMK_HTTP1_MAX_HEAD, &h) == -431);
}

static void
test_dechunk(void)
{
    char b[256];
    size_t out = 0;

    snprintf(b, sizeof(b), "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT");
    CHECK(pgcmk_http1_dechunk(b, strlen(b), 100, &out) == (long)strlen(b) - 4);
    CHECK(out == 11 && memcmp(b, "hello world", 11) == 0);
    snprintf(b, sizeof(b), "5\r\nhello\r\n0\r\n");
    CHECK(pgcmk_http1_dechunk(b, strlen(b), 100, &out) == 0);
    snprintf(b, sizeof(b), "5\r\nhel");
    CHECK(pgcmk_http1_dechunk(b, strlen(b), 100, &out) == 0);
    snprintf(b, sizeof(b), "5\r\nhelloX\r\n0\r\n\r\n");
    CHECK(pgcmk_http1_dechunk(b, strlen(b), 100, &out) == -400);
    snprintf(b, sizeof(b), "zz\r\n");
    CHECK(pgcmk_http1_dechunk(b, strlen(b), 100, &out) == -400);
    snprintf(b, sizeof(b), "ffff\r\n");
    CHECK(pgcmk_http1_dechunk(b, strlen(b), 100, &out) == -413);
    snprintf(b, sizeof(b), "123456789\r\n");
    CHECK(pgcmk_http1_dechunk(b, strlen(b), 100, &out) == -400);
}

static const char *
t_json_str(const char *body, const char *key, char *out, size_t cap)
{
    json_t *j = json_loads(body, 0, NULL);
    const char *v = j ? json_string_value(json_object_get(j, key)) : NULL;

    snprintf(out, cap, "%s", v ? v : "");
    json_decref(j);
    return out;
}

static long
t_json_int(const char *body, const char *key)
{
    json_t *j = json_loads(body, 0, NULL);
    long v = j ? (long)json_integer_value(json_object_get(j, key)) : -999;

    json_decref(j);
    return v;
}

static void
test_server(const struct pgcmk_tls *tls)
{
    struct pgcmk_net_https_cfg cfg = {.listen = "127.0.0.1",
                                      .cert_pem = tls->cert_pem,
                                      .key_pem = tls->key_pem,
                                      .client_cert = PGCMK_NET_CERT_REQUIRE_ANY,
                                      .timeout_s = 5,
                                      .max_body = 1024,
                                      .handle = t_handle};
    struct pgcmk_err err;
    struct pgcmk_net_https *h = pgcmk_net_https_start(&cfg, &err);
    EVP_PKEY *k = t_ed25519(), *cak = t_ed25519();
    X509 *x = t_self_signed(k, "client", 0), *cax = t_self_signed(cak, "ca", 1);
    char want[65], head[4096], body[8192], s[128];
    struct t_cli c;
    int port;
    STACK_OF(X509) *extra = sk_X509_new_null();

    CHECK(h != NULL);
    if (h == NULL)
        return;
    port = pgcmk_net_https_port(h);
    CHECK(port > 0);
    t_spki_hex(x, want);

    /* Keep-alive: two requests on one connection, the identity of a self-signed cert. */
    CHECK(t_connect(&c, port, x, k, NULL, 0) == 0);
    CHECK(t_send(&c, "POST /v1/key/create/my-key HTTP/1.1\r\nHost: localhost\r\n"
                     "Content-Length: 7\r\n\r\n{\"a\":1}") == 0);
    CHECK(t_answer(&c, head, body, sizeof(body)) == 200);
    CHECK_STR(t_json_str(body, "identity", s, sizeof(s)), want);
    CHECK_STR(t_json_str(body, "body", s, sizeof(s)), "{\"a\":1}");
    CHECK_STR(t_json_str(body, "path", s, sizeof(s)), "/v1/key/create/my-key");
    CHECK(t_json_int(body, "n_leaf") == 1 && t_json_int(body, "port") == port);
    CHECK(t_json_int(body, "plane") == PGCMK_PLANE_KES);
    CHECK(strcasestr(head, "Connection: close") == NULL);
    CHECK(t_send(&c, "GET /v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n") == 0);
    CHECK(t_answer(&c, head, body, sizeof(body)) == 200);
    CHECK_STR(t_json_str(body, "method", s, sizeof(s)), "GET");
    /* A streamed answer, then the connection goes on. */
    CHECK(t_send(&c, "GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n") == 0);
    CHECK(t_answer(&c, head, body, sizeof(body)) == 200);
    CHECK(strcasestr(head, "Transfer-Encoding: chunked") != NULL);
    CHECK_STR(body, "{\"event\":0}\n{\"event\":1}\n{\"event\":2}\n");
    /* Expect: 100-continue, then the body. */
    CHECK(t_send(&c, "PUT /x HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                     "Content-Length: 3\r\n\r\n") == 0);
    CHECK(t_answer(&c, head, body, sizeof(body)) == 100);
    CHECK(t_send(&c, "abc") == 0);
    CHECK(t_answer(&c, head, body, sizeof(body)) == 200);
    CHECK_STR(t_json_str(body, "body", s, sizeof(s)), "abc");
    /* A chunked body, and a request pipelined after it. */
    CHECK(t_send(&c, "POST /c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
    CHECK(t_answer(&c, head, body, sizeof(body)) == 200);
    CHECK_STR(t_json_str(body, "body", s, sizeof(s)), "abcde");
    CHECK(t_answer(&c, head, body, sizeof(body)) == 200);
    CHECK_STR(t_json_str(body, "path", s, sizeof(s)), "/next");
    /* Too large: 413 in KES's envelope and the connection closes. */
    CHECK(t_send(&c, "POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n") == 0);
    CHECK(t_answer(&c, head, body, sizeof(body)) == 413);
    CHECK_STR(t_json_str(body, "message", s, sizeof(s)), "request body too large");
    CHECK(strcasestr(head, "Connection: close") != NULL);
    t_close(&c);

    /* A malformed head: Go's text answer, then close. */
    CHECK(t_connect(&c, port, x, k, NULL, 0) == 0);
    CHECK(t_send(&c, "GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n") == 0);
    CHECK(t_answer(&c, head, body, sizeof(body)) == 400);
    CHECK_STR(body, "400 Bad Request");
    t_close(&c);

    /* Two non-CA certificates: the handler still runs and sees n_leaf 2; a CA in the chain is
     * not counted. */
    {
        EVP_PKEY *k2 = t_ed25519();
        X509 *x2 = t_self_signed(k2, "other", 0);

        sk_X509_push(extra, x2);
        sk_X509_push(extra, cax);
        CHECK(t_connect(&c, port, x, k, extra, 0) == 0);
        CHECK(t_send(&c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
        CHECK(t_answer(&c, head, body, sizeof(body)) == 200);
        CHECK(t_json_int(body, "n_leaf") == 2);
        CHECK_STR(t_json_str(body, "identity", s, sizeof(s)), want);
        t_close(&c);
        X509_free(x2);
        EVP_PKEY_free(k2);
    }

    /* No certificate: TLS 1.3 ends with certificate_required. */
    CHECK(t_connect(&c, port, NULL, NULL, NULL, 0) == 0 || 1);
    {
        char one;
        int r = SSL_read(c.ssl, &one, 1);
        unsigned long e = ERR_peek_last_error();

        CHECK(r <= 0);
        CHECK(ERR_GET_REASON(e) == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED);
    }
    t_close(&c);

    /* A chunked body over max_body: 413. */
    CHECK(t_connect(&c, port, x, k, NULL, 0) == 0);
    CHECK(t_send(&c, "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "800\r\n") == 0);
    CHECK(t_answer(&c, head, body, sizeof(body)) == 413);
    t_close(&c);

    /* A client that leaves a stream: the stream function sees it and returns. */
    atomic_store(&t_stream_ended, 0);
    CHECK(t_connect(&c, port, x, k, NULL, 0) == 0);
    CHECK(t_send(&c, "GET /forever HTTP/1.1\r\nHost: localhost\r\n\r\n") == 0);
    CHECK(t_fill(&c) == 0);
    t_close(&c);
    {
        int64_t until = pgcmk_net_mono_ms() + 5000;

        while (atomic_load(&t_stream_ended) == 0 && pgcmk_net_mono_ms() < until)
            poll(NULL, 0, 10); /* the server's thread notices within its 50 ms wait */
        CHECK(atomic_load(&t_stream_ended) == 1);
    }

    /* Stop with a stream open: the stream function sees the end and returns. */
    CHECK(t_connect(&c, port, x, k, NULL, 0) == 0);
    CHECK(t_send(&c, "GET /forever HTTP/1.1\r\nHost: localhost\r\n\r\n") == 0);
    CHECK(t_fill(&c) == 0);
    atomic_store(&t_stream_ended, 0);
    pgcmk_net_https_stop(h);
    CHECK(atomic_load(&t_stream_ended) == 1);
    t_close(&c);
    sk_X509_free(extra);
    X509_free(x);
    X509_free(cax);
    EVP_PKEY_free(k);
    EVP_PKEY_free(cak);
}

static char *
t_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = pgcmk_xcalloc(1, 65536);

    if (f) {
        size_t n = fread(buf, 1, 65535, f);

        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

/* VERIFY against pgcmk's CA; the slowloris timeout; REQUEST without a certificate. */
static void
test_modes(const struct pgcmk_tls *tls, const char *dir)
{
    char *ca = t_slurp(tls->ca_path), head[4096], body[8192], s[128];
    struct pgcmk_net_https_cfg cfg = {.listen = "127.0.0.1",
                                      .cert_pem = tls->cert_pem,
                                      .key_pem = tls->key_pem,
                                      .client_cert = PGCMK_NET_CERT_VERIFY,
                                      .ca_pem = ca,
                                      .timeout_s = 5,
                                      .header_timeout_s = 1,
                                      .handle = t_handle};
    struct pgcmk_err err;
    struct pgcmk_net_https *h = pgcmk_net_https_start(&cfg, &err);
    struct pgcmk_client_cert cc;
    EVP_PKEY *k = t_ed25519();
    X509 *x = t_self_signed(k, "self", 0);
    struct t_cli c;
    int64_t t0;

    CHECK(h != NULL);
    CHECK(pgcmk_tls_issue_client(dir, "kes-client", pgcmk_wall_ms(), 30, &cc, &err) == 0);
    if (h == NULL)
        goto out;
    /* A certificate from the CA: verified. */
    {
        BIO *b = BIO_new_mem_buf(cc.cert_pem, -1), *kb = BIO_new_mem_buf(cc.key_pem, -1);
        X509 *cx = PEM_read_bio_X509(b, NULL, NULL, NULL);
        EVP_PKEY *ck = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
        char want[65];

        t_spki_hex(cx, want);
        CHECK(t_connect(&c, pgcmk_net_https_port(h), cx, ck, NULL, 0) == 0);
        CHECK(t_send(&c, "GET /v HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
        CHECK(t_answer(&c, head, body, sizeof(body)) == 200);
        CHECK(t_json_int(body, "n_leaf") == 1);
        CHECK_STR(t_json_str(body, "identity", s, sizeof(s)), want);
        CHECK(strstr(body, "\"verified\":true") != NULL);
        /* Slowloris: half a head, then nothing: closed after the timeout (1 s). */
        t0 = pgcmk_net_mono_ms();
        CHECK(t_send(&c, "GET /v HTTP/1.1\r\nHo") == 0);
        CHECK(t_fill(&c) == -1);
        CHECK(pgcmk_net_mono_ms() - t0 >= 900 && pgcmk_net_mono_ms() - t0 < 5000);
        t_close(&c);
        X509_free(cx);
        EVP_PKEY_free(ck);
        BIO_free(b);
        BIO_free(kb);
    }
    /* A self-signed one: refused in the handshake (or at the first read on TLS 1.3). */
    {
        int ok = t_connect(&c, pgcmk_net_https_port(h), x, k, NULL, 0) == 0;

        if (ok) {
            char one;

            ok = t_send(&c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n") == 0 &&
                 SSL_read(c.ssl, &one, 1) > 0;
        }
        CHECK(!ok);
        t_close(&c);
    }
    pgcmk_net_https_stop(h);
    /* VERIFY_IF_GIVEN: none is fine, a self-signed one is refused. */
    cfg.client_cert = PGCMK_NET_CERT_VERIFY_IF_GIVEN;
    h = pgcmk_net_https_start(&cfg, &err);
    CHECK(h != NULL);
    if (h) {
        char one;
        int ok;

        CHECK(t_connect(&c, pgcmk_net_https_port(h), NULL, NULL, NULL, 0) == 0);
        CHECK(t_send(&c, "GET /v HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
        CHECK(t_answer(&c, head, body, sizeof(body)) == 200);
        CHECK(t_json_int(body, "n_leaf") == 0);
        t_close(&c);
        ok = t_connect(&c, pgcmk_net_https_port(h), x, k, NULL, 0) == 0 &&
             t_send(&c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n") == 0 && SSL_read(c.ssl, &one, 1) > 0;
        CHECK(!ok);
        t_close(&c);
        /* TLS 1.2 offers KES's suites only (ECDHE, AEAD). */
        CHECK(t_connect(&c, pgcmk_net_https_port(h), NULL, NULL, NULL, TLS1_2_VERSION) == 0);
        CHECK_STR(SSL_get_cipher_name(c.ssl), "ECDHE-ECDSA-AES256-GCM-SHA384");
        t_close(&c);
        pgcmk_net_https_stop(h);
    }
    /* max_conns: a second connection is refused while the first is open, then served. */
    cfg.client_cert = PGCMK_NET_CERT_NONE;
    cfg.max_conns = 1;
    h = pgcmk_net_https_start(&cfg, &err);
    CHECK(h != NULL);
    if (h) {
        struct t_cli c2;

        CHECK(t_connect(&c, pgcmk_net_https_port(h), NULL, NULL, NULL, 0) == 0);
        CHECK(t_send(&c, "GET /v HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
        CHECK(t_answer(&c, head, body, sizeof(body)) == 200);
        CHECK(t_connect(&c2, pgcmk_net_https_port(h), NULL, NULL, NULL, 0) != 0);
        t_close(&c2);
        t_close(&c);
        {
            int ok = 0;

            for (int i = 0; i < 100 && !ok; i++) { /* the worker frees itself after the close */
                ok = t_connect(&c2, pgcmk_net_https_port(h), NULL, NULL, NULL, 0) == 0 &&
                     t_send(&c2, "GET /v HTTP/1.1\r\nHost: a\r\n\r\n") == 0 &&
                     t_answer(&c2, head, body, sizeof(body)) == 200;
                t_close(&c2);
                if (!ok)
                    poll(NULL, 0, 20);
            }
            CHECK(ok);
        }
        pgcmk_net_https_stop(h);
    }
    cfg.max_conns = 0;
    /* REQUEST: no certificate is fine, the handler sees none. */
    cfg.client_cert = PGCMK_NET_CERT_REQUEST;
    h = pgcmk_net_https_start(&cfg, &err);
    CHECK(h != NULL);
    if (h) {
        CHECK(t_connect(&c, pgcmk_net_https_port(h), NULL, NULL, NULL, 0) == 0);
        CHECK(t_send(&c, "GET /v HTTP/1.0\r\n\r\n") == 0);
        CHECK(t_answer(&c, head, body, sizeof(body)) == 200);
        CHECK(t_json_int(body, "n_leaf") == 0);
        CHECK(strcasestr(head, "Connection: close") != NULL);
        t_close(&c);
        /* An HTTP/1.0 stream: no chunks, the close ends it. */
        CHECK(t_connect(&c, pgcmk_net_https_port(h), NULL, NULL, NULL, 0) == 0);
        CHECK(t_send(&c, "GET /stream HTTP/1.0\r\n\r\n") == 0);
        CHECK(t_answer(&c, head, body, sizeof(body)) == 200);
        CHECK(strcasestr(head, "Transfer-Encoding") == NULL);
        CHECK_STR(body, "{\"event\":0}\n{\"event\":1}\n{\"event\":2}\n");
        t_close(&c);
        pgcmk_net_https_stop(h);
    }
    pgcmk_client_cert_release(&cc);
out:
    X509_free(x);
    EVP_PKEY_free(k);
    free(ca);
}

int
main(void)
{
    char dir[] = "/tmp/pgcmk-test-net-XXXXXX";
    struct pgcmk_tls tls;
    struct pgcmk_err err;
    char cmd[128];

    signal(SIGPIPE, SIG_IGN); /* as pgcmkd: a write to a client that left is an error */
    test_parser();
    test_dechunk();
    if (mkdtemp(dir) == NULL || pgcmk_tls_bootstrap(dir, NULL, NULL, &tls, &err) != 0) {
        CHECK(0);
        return t_done("test_net");
    }
    test_server(&tls);
    test_modes(&tls, dir);
    pgcmk_tls_release(&tls);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        CHECK(0);
    return t_done("test_net");
}
