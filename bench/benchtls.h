/* benchtls.h - the TLS client helpers shared by the bench clients (kmip_bench.c, kes_bench.c):
 * a monotonic clock, fatal OpenSSL errors, a TCP + TLS connection and its close, and the
 * comparison that sorts latencies. A program sets bench_prog to its name for the messages. */
#ifndef PGCMK_BENCHTLS_H
#define PGCMK_BENCHTLS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static const char *bench_prog = "bench";

static inline double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline void
die_ssl(const char *what)
{
    fprintf(stderr, "%s: %s failed\n", bench_prog, what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* A TCP connection (TCP_NODELAY) to host:port and a TLS handshake on it from ctx; exits on a
 * failure. */
static inline SSL *
bench_connect(SSL_CTX *ctx, const char *host, int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    SSL *ssl;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "%s: connect %s:%d: %s\n", bench_prog, host, port, strerror(errno));
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1)
        die_ssl("SSL_new");
    if (SSL_connect(ssl) != 1)
        die_ssl("TLS handshake");
    return ssl;
}

static inline void
close_conn(SSL *ssl)
{
    int fd = SSL_get_fd(ssl);

    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
}

static inline int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

#endif
