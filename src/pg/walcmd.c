/* walcmd.c - `pgcmkd wal-push|wal-fetch`: the subcommands PostgreSQL's archiver
 * (archive_command) and startup process (restore_command) run as the PostgreSQL user:
 *
 *   pgcmkd wal-push  --socket SOCK --db SLUG FILE PATH   sends PATH (the segment FILE) to the
 *                                                        daemon, which seals and archives it
 *   pgcmkd wal-fetch --socket SOCK --db SLUG FILE PATH   writes the archived FILE, decrypted, to
 *                                                        PATH.tmp, then renames it to PATH
 *
 * They talk to the daemon's archive socket (src/pg/arfmt.h: one request per connection) and
 * never see a key. Exit 0 on success, 1 on failure with one line on stderr (the server log),
 * except a wal-fetch of a file the archive does not have: exit 1 silently, as PostgreSQL probes
 * for history files that do not exist. 2 for a usage error. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "pg/arfmt.h"
#include "pgcmk/pg.h"

int
pgcmk_pg_is_walcmd(int argc, char **argv)
{
    return argc > 1 && (strcmp(argv[1], "wal-push") == 0 || strcmp(argv[1], "wal-fetch") == 0);
}

static int
walcmd_fail(const char *sub, const char *file, const char *what, const char *detail)
{
    fprintf(stderr, "pgcmkd %s: %s: %s%s%s\n", sub, file ? file : "-", what, detail ? ": " : "",
            detail ? detail : "");
    return 1;
}

static int
walcmd_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    ssize_t k;

    while (n) {
        k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int
walcmd_connect(const char *path)
{
    struct sockaddr_un sa;
    struct timeval tv = {120, 0};
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads the answer line; the bytes read past it stay in buf[*extra_off, *extra_len). */
static long
walcmd_answer(int fd, char *buf, size_t cap, size_t *got, int *ok, uint64_t *len, char *text,
              size_t tn)
{
    long k;
    ssize_t r;

    *got = 0;
    while ((k = pga_ans_parse(buf, *got, ok, len, text, tn)) == 0) {
        r = read(fd, buf + *got, cap - *got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        *got += (size_t)r;
    }
    return k;
}

static int
walcmd_push(const char *sock, struct pga_req *req, const char *path)
{
    char line[PGA_LINE_MAX], buf[65536], text[PGA_LINE_MAX];
    int in = open(path, O_RDONLY | O_CLOEXEC), fd, ok;
    struct stat st;
    uint64_t left, len;
    size_t got;
    ssize_t k;
    int n;

    if (in < 0 || fstat(in, &st) || st.st_size < 0)
        return walcmd_fail("wal-push", req->name, "cannot read", strerror(errno));
    req->op = PGA_PUSH;
    req->length = (uint64_t)st.st_size;
    if ((n = pga_req_format(req, line, sizeof(line))) < 0) {
        close(in);
        return walcmd_fail("wal-push", req->name, "bad file name, slug or size", NULL);
    }
    fd = walcmd_connect(sock);
    if (fd < 0) {
        close(in);
        return walcmd_fail("wal-push", req->name, "cannot reach pgcmkd's archive socket",
                           strerror(errno));
    }
    if (walcmd_write_all(fd, line, (size_t)n))
        goto io;
    for (left = req->length; left;) {
        k = read(in, buf, left < sizeof(buf) ? left : sizeof(buf));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0 || walcmd_write_all(fd, buf, (size_t)k))
            goto io;
        left -= (uint64_t)k;
    }
    close(in);
    in = -1;
    if (walcmd_answer(fd, buf, sizeof(buf), &got, &ok, &len, text, sizeof(text)) < 0)
        goto io;
    close(fd);
    return ok ? 0 : walcmd_fail("wal-push", req->name, "pgcmkd refused", text);
io:
    if (in >= 0)
        close(in);
    close(fd);
    return walcmd_fail("wal-push", req->name, "the archive socket failed", NULL);
}

static int
walcmd_fetch(const char *sock, struct pga_req *req, const char *path)
{
    char line[PGA_LINE_MAX], buf[65536], text[PGA_LINE_MAX], tmp[4096];
    int fd, out = -1, ok, n;
    uint64_t len, left;
    size_t got;
    long k;
    ssize_t r;

    req->op = PGA_FETCH;
    if ((n = pga_req_format(req, line, sizeof(line))) < 0)
        return walcmd_fail("wal-fetch", req->name, "bad file name or slug", NULL);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return walcmd_fail("wal-fetch", req->name, "path too long", NULL);
    fd = walcmd_connect(sock);
    if (fd < 0)
        return walcmd_fail("wal-fetch", req->name, "cannot reach pgcmkd's archive socket",
                           strerror(errno));
    if (walcmd_write_all(fd, line, (size_t)n) ||
        (k = walcmd_answer(fd, buf, sizeof(buf), &got, &ok, &len, text, sizeof(text))) < 0) {
        close(fd);
        return walcmd_fail("wal-fetch", req->name, "the archive socket failed", NULL);
    }
    if (!ok) {
        close(fd);
        if (strcmp(text, "missing") == 0)
            return 1; /* PostgreSQL probes for files that do not exist: no noise */
        return walcmd_fail("wal-fetch", req->name, "pgcmkd refused", text);
    }
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        close(fd);
        return walcmd_fail("wal-fetch", req->name, "cannot write", strerror(errno));
    }
    left = len;
    if (got - (size_t)k > left || walcmd_write_all(out, buf + k, got - (size_t)k))
        goto io;
    left -= got - (size_t)k;
    while (left) {
        r = read(fd, buf, left < sizeof(buf) ? left : sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || walcmd_write_all(out, buf, (size_t)r))
            goto io;
        left -= (uint64_t)r;
    }
    close(fd);
    if (fsync(out) || close(out)) {
        unlink(tmp);
        return walcmd_fail("wal-fetch", req->name, "cannot write", strerror(errno));
    }
    if (rename(tmp, path)) {
        unlink(tmp);
        return walcmd_fail("wal-fetch", req->name, "cannot rename", strerror(errno));
    }
    return 0;
io:
    close(fd);
    close(out);
    unlink(tmp);
    return walcmd_fail("wal-fetch", req->name, "the archive socket failed", NULL);
}

int
pgcmk_pg_walcmd(int argc, char **argv)
{
    const char *sub = argv[1], *sock = NULL, *slug = NULL;
    struct pga_req req;
    int i;

    memset(&req, 0, sizeof(req));
    for (i = 2; i + 1 < argc && argv[i][0] == '-' && argv[i][1] == '-'; i += 2) {
        if (strcmp(argv[i], "--socket") == 0)
            sock = argv[i + 1];
        else if (strcmp(argv[i], "--db") == 0)
            slug = argv[i + 1];
        else
            break;
    }
    if (sock == NULL || slug == NULL || argc - i != 2 || strlen(slug) > PGA_SLUG_MAX ||
        strlen(argv[i]) > PGA_NAME_MAX) {
        fprintf(stderr,
                "usage: pgcmkd %s --socket SOCKET --db SLUG FILE PATH\n"
                "  (PostgreSQL's %%f and %%p; run by archive_command / restore_command)\n",
                sub);
        return 2;
    }
    strcpy(req.slug, slug);
    strcpy(req.name, argv[i]);
    if (strcmp(sub, "wal-push") == 0)
        return walcmd_push(sock, &req, argv[i + 1]);
    return walcmd_fetch(sock, &req, argv[i + 1]);
}
