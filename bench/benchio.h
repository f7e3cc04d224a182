/* benchio.h - file helpers shared by the bench servers (floor.c, rsafloor.c). */
#ifndef PGCMK_BENCHIO_H
#define PGCMK_BENCHIO_H

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

/* The whole file as a NUL-terminated string; exits with 2 when it cannot be read. */
static char *
bench_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        perror(path);
        exit(2);
    }
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        exit(2);
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Writes "PORT\n" to path through a rename, so a reader never sees half a number. 0 on success. */
static int
bench_write_port(const char *path, unsigned port)
{
    char tmp[4096];
    FILE *pf;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((pf = fopen(tmp, "w")) == NULL || fprintf(pf, "%u\n", port) < 0 || fclose(pf) != 0 ||
        rename(tmp, path) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

/* The bench servers' common start: "PROG CERT_PEM KEY_PEM PORT_FILE" (exits 2 otherwise), the
 * certificate and key read, and SIGTERM/SIGINT blocked (before any thread starts) into *set for
 * the sigwait() that ends the server. */
static void
bench_server_init(int argc, char **argv, char **cert, char **key, sigset_t *set)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s CERT_PEM KEY_PEM PORT_FILE\n", argv[0]);
        exit(2);
    }
    *cert = bench_slurp(argv[1]);
    *key = bench_slurp(argv[2]);
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* MHD's two-phase handler: 1 when the request is complete and may be answered now. Before that
 * (the first call, headers only, and each piece of the body, which is dropped) it keeps
 * *req_cls non-NULL; queuing an answer on the first call would turn keep-alive off. */
static int
bench_request_done(void **req_cls, size_t *upload_size)
{
    static int marker;

    if (*req_cls == NULL) {
        *req_cls = &marker;
        return 0;
    }
    if (*upload_size) {
        *upload_size = 0;
        return 0;
    }
    return 1;
}

#endif
