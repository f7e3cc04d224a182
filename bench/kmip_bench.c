/* kmip_bench.c - Get throughput and latency of a KMIP server, as pg_tde uses one.
 * Registers a 32-byte AES key (pg_tde's Register: KMIP 1.4, Name, usage mask 12), then Gets it
 * (pg_tde's Get: KMIP 1.0, only the Unique Identifier):
 *   keepalive: N Gets over ONE mTLS connection per thread, kept open;
 *   perconn:   M Gets, each on a NEW connection (TCP connect + TLS handshake + Get + close), as
 *              pg_tde does for every keyring call. The client's session cache is off, so every
 *              handshake is a full one.
 * Prints one line per mode: "MODE: N gets in S s: R gets/s p50 A ms p99 B ms".
 * --dry accepts Operation Not Supported as an answer (a server whose operations are not there
 * yet): the figures are then those of the round trip only.
 * usage: kmip_bench --port P --cert F --key F --ca F [--host H] [-n N] [-m M] [--threads T]
 *        [--mode keepalive|perconn|both] [--tls12] [--dry] [--name NAME]
 * Exit: 0, 1 on a failed request (the server's Result Reason is printed), 2 on bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "benchtls.h"
#include "pgcmk/kmip.h"

int main(int argc, char **argv);

#define T(n) PGCMK_KMIP_TAG_##n

static const char *o_host = "127.0.0.1";
static int o_port, o_dry, o_tls12;
static const char *o_cert, *o_key, *o_ca;
static SSL_CTX *ctx;
static char uid[128] = "1";
static uint8_t get_req[512];
static size_t get_req_len;

static SSL *
open_conn(void)
{
    return bench_connect(ctx, o_host, o_port);
}

static int
read_full(SSL *ssl, uint8_t *p, size_t n)
{
    size_t got = 0;

    while (got < n) {
        int r = SSL_read(ssl, p + got, (int)(n - got));

        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* One request/response exchange. Returns the decoded Batch Item of the answer in *t, or exits. */
static const struct pgcmk_ttlv *
exchange(SSL *ssl, const uint8_t *req, size_t len, struct pgcmk_ttlv_tree *t, uint8_t *buf,
         size_t cap)
{
    struct pgcmk_ttlv_err err;
    const struct pgcmk_ttlv *bi;
    size_t n;

    if (SSL_write(ssl, req, (int)len) != (int)len)
        die_ssl("SSL_write");
    if (read_full(ssl, buf, 8) != 0)
        die_ssl("reading the response header");
    n = ((size_t)buf[4] << 24) | ((size_t)buf[5] << 16) | ((size_t)buf[6] << 8) | buf[7];
    if (n + 8 > cap || read_full(ssl, buf + 8, n) != 0)
        die_ssl("reading the response");
    if (pgcmk_ttlv_decode(buf, n + 8, t, &err) != 0) {
        fprintf(stderr, "kmip_bench: bad response: %s\n", err.message);
        exit(1);
    }
    if ((bi = pgcmk_ttlv_find(t->root, T(BATCH_ITEM))) == NULL) {
        fprintf(stderr, "kmip_bench: response without a Batch Item\n");
        exit(1);
    }
    return bi;
}

/* 0 on success, 1 on Operation Not Supported under --dry; exits otherwise. */
static int
check_result(const struct pgcmk_ttlv *bi, const char *op)
{
    uint32_t status = 99, reason = 0;
    const char *msg = "";
    size_t ml;

    pgcmk_ttlv_get_enum(bi, T(RESULT_STATUS), &status);
    if (status == 0)
        return 0;
    pgcmk_ttlv_get_enum(bi, T(RESULT_REASON), &reason);
    if (o_dry && reason == PGCMK_KMIP_RR_OPERATION_NOT_SUPPORTED)
        return 1;
    pgcmk_ttlv_get_text(bi, T(RESULT_MESSAGE), &msg, &ml);
    fprintf(stderr, "kmip_bench: %s: Result Status %u, Result Reason %s: %s\n", op, status,
            pgcmk_kmip_result_reason_name(reason) ? pgcmk_kmip_result_reason_name(reason) : "?",
            msg);
    exit(1);
}

static struct pgcmk_ttlv *
request(struct pgcmk_ttlv_tree *t, int minor, uint32_t op, struct pgcmk_ttlv **payload)
{
    struct pgcmk_ttlv *m = pgcmk_ttlv_new_struct(t, T(REQUEST_MESSAGE)), *h, *v, *bi;

    h = pgcmk_ttlv_append(m, pgcmk_ttlv_new_struct(t, T(REQUEST_HEADER)));
    v = pgcmk_ttlv_append(h, pgcmk_ttlv_new_struct(t, T(PROTOCOL_VERSION)));
    pgcmk_ttlv_append(v, pgcmk_ttlv_new_int(t, T(PROTOCOL_VERSION_MAJOR), 1));
    pgcmk_ttlv_append(v, pgcmk_ttlv_new_int(t, T(PROTOCOL_VERSION_MINOR), minor));
    pgcmk_ttlv_append(h, pgcmk_ttlv_new_int(t, T(MAXIMUM_RESPONSE_SIZE), 8192));
    pgcmk_ttlv_append(h, pgcmk_ttlv_new_datetime(t, T(TIME_STAMP), (int64_t)time(NULL)));
    pgcmk_ttlv_append(h, pgcmk_ttlv_new_int(t, T(BATCH_COUNT), 1));
    bi = pgcmk_ttlv_append(m, pgcmk_ttlv_new_struct(t, T(BATCH_ITEM)));
    pgcmk_ttlv_append(bi, pgcmk_ttlv_new_enum(t, T(OPERATION), op));
    *payload = pgcmk_ttlv_append(bi, pgcmk_ttlv_new_struct(t, T(REQUEST_PAYLOAD)));
    return m;
}

static void
attr(struct pgcmk_ttlv_tree *t, struct pgcmk_ttlv *ta, const char *name, struct pgcmk_ttlv *value)
{
    struct pgcmk_ttlv *a = pgcmk_ttlv_append(ta, pgcmk_ttlv_new_struct(t, T(ATTRIBUTE)));

    pgcmk_ttlv_append(a, pgcmk_ttlv_new_text(t, T(ATTRIBUTE_NAME), name, strlen(name)));
    pgcmk_ttlv_append(a, value);
}

static size_t
encode(const struct pgcmk_ttlv *m, uint8_t *buf, size_t cap)
{
    struct pgcmk_ttlv_err err;
    size_t n;

    if (pgcmk_ttlv_encode(m, buf, cap, &n, &err) != 0) {
        fprintf(stderr, "kmip_bench: encode: %s\n", err.message);
        exit(1);
    }
    return n;
}

/* pg_tde's Register of a 32-byte AES key named name; sets uid. */
static void
do_register(const char *name)
{
    struct pgcmk_ttlv_tree t, rt;
    struct pgcmk_ttlv *m, *p, *ta, *nm, *sk, *kb, *kv;
    uint8_t key[32], req[1024], resp[4096];
    const struct pgcmk_ttlv *bi, *rp;
    const char *id;
    size_t n, idl;
    SSL *ssl;

    if (RAND_bytes(key, sizeof(key)) != 1)
        die_ssl("RAND_bytes");
    pgcmk_ttlv_tree_init(&t);
    pgcmk_ttlv_tree_init(&rt);
    m = request(&t, 4, PGCMK_KMIP_OP_REGISTER, &p);
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_enum(&t, T(OBJECT_TYPE), 2)); /* Symmetric Key */
    ta = pgcmk_ttlv_append(p, pgcmk_ttlv_new_struct(&t, T(TEMPLATE_ATTRIBUTE)));
    attr(&t, ta, "Cryptographic Algorithm", pgcmk_ttlv_new_enum(&t, T(ATTRIBUTE_VALUE), 3));
    attr(&t, ta, "Cryptographic Length", pgcmk_ttlv_new_int(&t, T(ATTRIBUTE_VALUE), 256));
    attr(&t, ta, "Cryptographic Usage Mask", pgcmk_ttlv_new_int(&t, T(ATTRIBUTE_VALUE), 12));
    nm = pgcmk_ttlv_new_struct(&t, T(ATTRIBUTE_VALUE));
    pgcmk_ttlv_append(nm, pgcmk_ttlv_new_text(&t, T(NAME_VALUE), name, strlen(name)));
    pgcmk_ttlv_append(nm, pgcmk_ttlv_new_enum(&t, T(NAME_TYPE), 1));
    attr(&t, ta, "Name", nm);
    sk = pgcmk_ttlv_append(p, pgcmk_ttlv_new_struct(&t, T(SYMMETRIC_KEY)));
    kb = pgcmk_ttlv_append(sk, pgcmk_ttlv_new_struct(&t, T(KEY_BLOCK)));
    pgcmk_ttlv_append(kb, pgcmk_ttlv_new_enum(&t, T(KEY_FORMAT_TYPE), 1)); /* Raw */
    kv = pgcmk_ttlv_append(kb, pgcmk_ttlv_new_struct(&t, T(KEY_VALUE)));
    pgcmk_ttlv_append(kv, pgcmk_ttlv_new_bytes(&t, T(KEY_MATERIAL), key, sizeof(key)));
    pgcmk_ttlv_append(kb, pgcmk_ttlv_new_enum(&t, T(CRYPTOGRAPHIC_ALGORITHM), 3));
    pgcmk_ttlv_append(kb, pgcmk_ttlv_new_int(&t, T(CRYPTOGRAPHIC_LENGTH), 256));
    n = encode(m, req, sizeof(req));
    OPENSSL_cleanse(key, sizeof(key));
    pgcmk_ttlv_tree_release(&t);

    ssl = open_conn();
    bi = exchange(ssl, req, n, &rt, resp, sizeof(resp));
    OPENSSL_cleanse(req, sizeof(req));
    if (check_result(bi, "Register") == 0) {
        if ((rp = pgcmk_ttlv_find(bi, T(RESPONSE_PAYLOAD))) == NULL ||
            pgcmk_ttlv_get_text(rp, T(UNIQUE_IDENTIFIER), &id, &idl) != 0 || idl >= sizeof(uid)) {
            fprintf(stderr, "kmip_bench: Register answered no Unique Identifier\n");
            exit(1);
        }
        memcpy(uid, id, idl);
        uid[idl] = '\0';
    } else {
        fprintf(stderr, "kmip_bench: --dry: Register is not supported; Gets of id %s\n", uid);
    }
    pgcmk_ttlv_tree_release(&rt);
    close_conn(ssl);
}

static void
build_get(void)
{
    struct pgcmk_ttlv_tree t;
    struct pgcmk_ttlv *m, *p;

    pgcmk_ttlv_tree_init(&t);
    m = request(&t, 0, PGCMK_KMIP_OP_GET, &p);
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_text(&t, T(UNIQUE_IDENTIFIER), uid, strlen(uid)));
    get_req_len = encode(m, get_req, sizeof(get_req));
    pgcmk_ttlv_tree_release(&t);
}

/* One Get on ssl; checks that 32 bytes of key material come back (unless --dry refused it). */
static void
one_get(SSL *ssl, struct pgcmk_ttlv_tree *t, uint8_t *buf, size_t cap)
{
    const struct pgcmk_ttlv *bi = exchange(ssl, get_req, get_req_len, t, buf, cap), *n;
    const uint8_t *km;
    size_t kl;

    if (check_result(bi, "Get") != 0)
        return;
    if ((n = pgcmk_ttlv_find(bi, T(RESPONSE_PAYLOAD))) == NULL ||
        (n = pgcmk_ttlv_find(n, T(SYMMETRIC_KEY))) == NULL ||
        (n = pgcmk_ttlv_find(n, T(KEY_BLOCK))) == NULL ||
        (n = pgcmk_ttlv_find(n, T(KEY_VALUE))) == NULL ||
        pgcmk_ttlv_get_bytes(n, T(KEY_MATERIAL), &km, &kl) != 0 || kl != 32) {
        fprintf(stderr, "kmip_bench: Get answered no 32-byte key material\n");
        exit(1);
    }
}

struct worker {
    pthread_t th;
    int perconn;
    long count;
    double *lat;                 /* ms, count entries */
    double hs_ms, get_ms, cl_ms; /* perconn: the sums of the three phases */
};

static void *
run_worker(void *arg)
{
    struct worker *w = arg;
    struct pgcmk_ttlv_tree t;
    uint8_t *buf = malloc(16384);
    SSL *ssl = NULL;

    if (buf == NULL)
        exit(1);
    pgcmk_ttlv_tree_init(&t);
    if (!w->perconn)
        ssl = open_conn();
    for (long i = 0; i < w->count; i++) {
        double t0 = now_ms(), t1, t2;

        if (w->perconn)
            ssl = open_conn();
        t1 = now_ms();
        one_get(ssl, &t, buf, 16384);
        t2 = now_ms();
        if (w->perconn) {
            close_conn(ssl);
            ssl = NULL;
        }
        w->lat[i] = now_ms() - t0;
        w->hs_ms += t1 - t0;
        w->get_ms += t2 - t1;
        w->cl_ms += t0 + w->lat[i] - t2;
    }
    if (ssl != NULL)
        close_conn(ssl);
    pgcmk_ttlv_tree_release(&t);
    OPENSSL_cleanse(buf, 16384);
    free(buf);
    return NULL;
}

static void
run_mode(const char *label, int perconn, long total, int threads)
{
    struct worker *w = calloc((size_t)threads, sizeof(*w));
    double *all = calloc((size_t)total, sizeof(double)), t0, secs, hs = 0, get = 0, cl = 0;
    long per = total / threads, k = 0;

    if (w == NULL || all == NULL || per < 1) {
        fprintf(stderr, "kmip_bench: bad counts\n");
        exit(2);
    }
    for (int i = 0; i < threads; i++) {
        w[i].perconn = perconn;
        w[i].count = per;
        w[i].lat = all + (long)i * per;
    }
    t0 = now_ms();
    for (int i = 0; i < threads; i++)
        pthread_create(&w[i].th, NULL, run_worker, &w[i]);
    for (int i = 0; i < threads; i++)
        pthread_join(w[i].th, NULL);
    secs = (now_ms() - t0) / 1e3;
    k = per * threads;
    for (int i = 0; i < threads; i++) {
        hs += w[i].hs_ms;
        get += w[i].get_ms;
        cl += w[i].cl_ms;
    }
    qsort(all, (size_t)k, sizeof(double), cmp_double);
    printf("%s: %ld gets in %.3f s: %.0f gets/s p50 %.3f ms p99 %.3f ms (threads %d", label, k,
           secs, k / secs, all[k / 2], all[(k * 99) / 100 < k ? (k * 99) / 100 : k - 1], threads);
    if (perconn)
        printf("; mean connect+handshake %.3f ms, Get %.3f ms, shutdown+close %.3f ms", hs / k,
               get / k, cl / k);
    printf(")\n");
    fflush(stdout);
    free(all);
    free(w);
}

static void
usage(void)
{
    fprintf(stderr, "usage: kmip_bench --port P --cert F --key F --ca F [--host H] [-n N] [-m M] "
                    "[--threads T] [--mode keepalive|perconn|both] [--tls12] [--dry] [--name N]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    bench_prog = "kmip_bench";
    long n = 20000, m = 1000;
    int threads = 1;
    const char *mode = "both";
    char name[96];

    snprintf(name, sizeof(name), "kmip-bench-%ld", (long)getpid());
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--dry") == 0) {
            o_dry = 1;
            continue;
        }
        if (strcmp(a, "--tls12") == 0) {
            o_tls12 = 1;
            continue;
        }
        if (v == NULL || *v == '\0')
            usage();
        i++;
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
        else if (strcmp(a, "-n") == 0)
            n = atol(v);
        else if (strcmp(a, "-m") == 0)
            m = atol(v);
        else if (strcmp(a, "--threads") == 0)
            threads = atoi(v);
        else if (strcmp(a, "--mode") == 0)
            mode = v;
        else if (strcmp(a, "--name") == 0)
            snprintf(name, sizeof(name), "%s", v);
        else
            usage();
    }
    if (o_port <= 0 || o_port > 65535 || !o_cert || !o_key || !o_ca || n < 1 || m < 1 ||
        threads < 1 || threads > 64 ||
        (strcmp(mode, "both") && strcmp(mode, "keepalive") && strcmp(mode, "perconn")))
        usage();

    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
        die_ssl("SSL_CTX_new");
    if (o_tls12)
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    /* pg_tde makes a new context per call: no session is ever resumed. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (SSL_CTX_use_certificate_chain_file(ctx, o_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o_key, SSL_FILETYPE_PEM) != 1)
        die_ssl("loading the client certificate and key");
    if (SSL_CTX_load_verify_locations(ctx, o_ca, NULL) != 1)
        die_ssl("loading the CA file");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

    do_register(name);
    build_get();
    printf("key: %s (name %s) on %s:%d%s\n", uid, name, o_host, o_port, o_dry ? " (dry)" : "");
    if (strcmp(mode, "perconn") != 0)
        run_mode("keepalive", 0, n, threads);
    if (strcmp(mode, "keepalive") != 0)
        run_mode("perconn", 1, m, threads);
    SSL_CTX_free(ctx);
    return 0;
}
