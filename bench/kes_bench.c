/* kes_bench.c - throughput and latency of a KES server's key API over kept-alive mutual TLS, as
 * MinIO (kms-go) uses one: HTTP/1.1 on one connection per thread, a client certificate (an API
 * key's self-signed Ed25519 one, or any).
 *   generate: POST /v1/key/generate/KEY {} for S seconds on each of C connections;
 *   decrypt:  one generate, then POST /v1/key/decrypt/KEY {"ciphertext":...} the same way;
 *   create:   POST /v1/key/create/PREFIX-i for i < N, spread over the connections (each one
 *             written to the keystore);
 *   cold:     POST /v1/key/generate/PREFIX-i once for i < N: on a server whose cache is empty
 *             (restarted after `create`), each one reads its key from the keystore.
 * Prints one line per mode: "MODE: N requests in S s: R req/s p50 A ms p99 B ms (conns C)".
 * usage: kes_bench --port P --cert F --key F --ca F --mode generate|decrypt|create|cold
 *        [--host H] [--key-name K] [--prefix P] [-n N] [--conns C] [--seconds S]
 * Exit: 0, 1 on a failed request (the answer is printed), 2 on bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "benchtls.h"

int main(int argc, char **argv);

static const char *o_host = "127.0.0.1", *o_key_name = "bench-key", *o_prefix = "bench-cold";
static const char *o_cert, *o_key, *o_ca, *o_mode;
static int o_port, o_conns = 2;
static long o_n = 1000;
static double o_seconds = 5;
static SSL_CTX *ctx;
static char *decrypt_body;
static atomic_long next_index;

static SSL *
open_conn(void)
{
    return bench_connect(ctx, o_host, o_port);
}

/* One connection's receive buffer: answers are read whole (head, then Content-Length bytes). */
struct conn {
    SSL *ssl;
    char buf[65536];
    size_t len;
};

/* POST path with body; the answer's status, its body in *out (NUL-terminated, valid until the
 * next call). Exits on a connection failure. */
static int
post(struct conn *c, const char *path, const char *body, const char **out)
{
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: kes_bench\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     path, o_host, o_port, strlen(body), body);
    char *end, *cl;
    size_t head, blen;
    int status;

    if (n <= 0 || (size_t)n >= sizeof(req) || SSL_write(c->ssl, req, n) != n)
        die_ssl("sending a request");
    c->len = 0;
    for (;;) {
        int r;

        c->buf[c->len] = '\0';
        if ((end = strstr(c->buf, "\r\n\r\n")) != NULL) {
            head = (size_t)(end - c->buf) + 4;
            cl = strcasestr(c->buf, "\r\nContent-Length:");
            blen = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
            if (c->len >= head + blen)
                break;
        }
        if (c->len + 1 >= sizeof(c->buf))
            die_ssl("an answer too large");
        r = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - 1 - c->len));
        if (r <= 0)
            die_ssl("reading an answer");
        c->len += (size_t)r;
    }
    status = atoi(c->buf + 9);
    c->buf[head + blen] = '\0';
    *out = c->buf + head;
    return status;
}

static void
check(int status, const char *what, const char *body)
{
    if (status < 200 || status > 299) {
        fprintf(stderr, "kes_bench: %s: HTTP %d %s\n", what, status, body);
        exit(1);
    }
}

struct worker {
    pthread_t th;
    long count, cap;
    double *lat;
};

static void
record(struct worker *w, double ms)
{
    if (w->count == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 4096;
        w->lat = realloc(w->lat, (size_t)w->cap * sizeof(double));
        if (w->lat == NULL)
            exit(1);
    }
    w->lat[w->count++] = ms;
}

static void *
run_worker(void *arg)
{
    struct worker *w = arg;
    struct conn *c = calloc(1, sizeof(*c));
    int indexed = strcmp(o_mode, "create") == 0 || strcmp(o_mode, "cold") == 0;
    double stop = now_ms() + o_seconds * 1e3;
    char path[256];
    const char *out;

    if (c == NULL)
        exit(1);
    c->ssl = open_conn();
    if (!indexed)
        snprintf(path, sizeof(path), "/v1/key/%s/%s", o_mode, o_key_name);
    for (;;) {
        double t0 = now_ms();
        int status;

        if (indexed) {
            long i = atomic_fetch_add(&next_index, 1);

            if (i >= o_n)
                break;
            snprintf(path, sizeof(path), "/v1/key/%s/%s-%ld",
                     strcmp(o_mode, "create") == 0 ? "create" : "generate", o_prefix, i);
        } else if (t0 >= stop) {
            break;
        }
        status = post(c, path, strcmp(o_mode, "decrypt") == 0 ? decrypt_body : "{}", &out);
        check(status, path, out);
        record(w, now_ms() - t0);
    }
    close_conn(c->ssl);
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
    return NULL;
}

static void
run(void)
{
    struct worker *w = calloc((size_t)o_conns, sizeof(*w));
    double *all, t0, secs;
    long k = 0;

    if (w == NULL)
        exit(1);
    t0 = now_ms();
    for (int i = 0; i < o_conns; i++)
        pthread_create(&w[i].th, NULL, run_worker, &w[i]);
    for (int i = 0; i < o_conns; i++)
        pthread_join(w[i].th, NULL);
    secs = (now_ms() - t0) / 1e3;
    for (int i = 0; i < o_conns; i++)
        k += w[i].count;
    all = calloc((size_t)(k ? k : 1), sizeof(double));
    if (all == NULL)
        exit(1);
    for (int i = 0, off = 0; i < o_conns; off += (int)w[i].count, i++) {
        if (w[i].count)
            memcpy(all + off, w[i].lat, (size_t)w[i].count * sizeof(double));
        free(w[i].lat);
    }
    qsort(all, (size_t)k, sizeof(double), cmp_double);
    printf("%s: %ld requests in %.3f s: %.0f req/s p50 %.3f ms p99 %.3f ms (conns %d)\n", o_mode, k,
           secs, k / secs, k ? all[k / 2] : 0, k ? all[(k * 99) / 100] : 0, o_conns);
    fflush(stdout);
    free(all);
    free(w);
}

/* decrypt: a ciphertext of the key, from one generate. */
static void
prepare_decrypt(void)
{
    struct conn *c = calloc(1, sizeof(*c));
    char path[256];
    const char *out;
    json_t *j;
    int status;

    if (c == NULL)
        exit(1);
    c->ssl = open_conn();
    snprintf(path, sizeof(path), "/v1/key/generate/%s", o_key_name);
    status = post(c, path, "{}", &out);
    check(status, path, out);
    j = json_loads(out, 0, NULL);
    if (json_string_value(json_object_get(j, "ciphertext")) == NULL) {
        fprintf(stderr, "kes_bench: no ciphertext in %s\n", out);
        exit(1);
    }
    json_object_del(j, "plaintext");
    decrypt_body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    close_conn(c->ssl);
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}

static void
usage(void)
{
    fprintf(stderr, "usage: kes_bench --port P --cert F --key F --ca F --mode "
                    "generate|decrypt|create|cold [--host H] [--key-name K] [--prefix P] [-n N] "
                    "[--conns C] [--seconds S]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    bench_prog = "kes_bench";
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (v == NULL || *v == '\0')
            usage();
        if (strcmp(a, "--host") == 0)
            o_host = v;
        else if (strcmp(a, "--port") == 0)
            o_port = atoi(v);
        else if (strcmp(a, "--cert") == 0)
            o_cert = v;
        else if (strcmp(a, "--key") == 0)
            o_key = v;
        else if (strcmp(a, "--ca") == 0)
            o_ca = v;
        else if (strcmp(a, "--mode") == 0)
            o_mode = v;
        else if (strcmp(a, "--key-name") == 0)
            o_key_name = v;
        else if (strcmp(a, "--prefix") == 0)
            o_prefix = v;
        else if (strcmp(a, "-n") == 0)
            o_n = atol(v);
        else if (strcmp(a, "--conns") == 0)
            o_conns = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            o_seconds = atof(v);
        else
            usage();
    }
    if (o_port <= 0 || o_port > 65535 || !o_cert || !o_key || !o_ca || !o_mode || o_n < 1 ||
        o_conns < 1 || o_conns > 256 || o_seconds <= 0 ||
        (strcmp(o_mode, "generate") && strcmp(o_mode, "decrypt") && strcmp(o_mode, "create") &&
         strcmp(o_mode, "cold")))
        usage();
    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
        die_ssl("SSL_CTX_new");
    if (SSL_CTX_use_certificate_chain_file(ctx, o_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o_key, SSL_FILETYPE_PEM) != 1)
        die_ssl("loading the client certificate and key");
    if (SSL_CTX_load_verify_locations(ctx, o_ca, NULL) != 1)
        die_ssl("loading the CA file");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (strcmp(o_mode, "decrypt") == 0)
        prepare_decrypt();
    run();
    free(decrypt_body);
    SSL_CTX_free(ctx);
    return 0;
}
