/* test_pgwire.c - the PostgreSQL wire client (src/pg/wire.c): frontend bytes, backend messages
 * (well-formed and broken), the SCRAM-SHA-256 verifier. Real instances (the supervisor, a
 * login with that verifier over TLS) are tests/integration/test_pg_instances.py's. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pgcmk/core.h"
#include "pgcmk/pgwire.h"
#include "t.h"

/* Appends one backend message (type, body) to buf. */
static size_t
msg(unsigned char *buf, size_t at, char type, const void *body, size_t len)
{
    uint32_t l = (uint32_t)len + 4;

    buf[at] = (unsigned char)type;
    buf[at + 1] = (unsigned char)(l >> 24);
    buf[at + 2] = (unsigned char)(l >> 16);
    buf[at + 3] = (unsigned char)(l >> 8);
    buf[at + 4] = (unsigned char)l;
    memcpy(buf + at + 5, body, len);
    return at + 5 + len;
}

/* Feeds every message of buf[0..n) to r: the number fed, or -1 at the first refusal. */
static int
feed_all(struct pgwire_result *r, const unsigned char *buf, size_t n)
{
    size_t off = 0;
    int count = 0;

    while (off < n) {
        struct pgwire_msg m;
        ssize_t used = pgwire_msg_split(buf + off, n - off, &m);

        if (used <= 0)
            return -1;
        if (pgwire_result_feed(r, &m))
            return -1;
        off += (size_t)used;
        count++;
    }
    return count;
}

static void
test_frontend(void)
{
    struct pgwire_buf b = {0};
    const char *params[] = {"a'b", NULL};
    static const unsigned char startup[] = "\0\0\0\x44\0\x03\0\0user\0pgcmk_agent\0database\0"
                                           "postgres\0application_name\0pgcmkd\0\0";

    pgwire_startup(&b, "pgcmk_agent", "postgres");
    CHECK(b.n == 0x44);
    CHECK(b.n == sizeof(startup) - 1 && memcmp(b.p, startup, b.n) == 0);
    b.n = 0;
    pgwire_extended(&b, "SELECT $1, $2", params, 2);
    /* Parse: 'P' len "" "SELECT $1, $2" int16 0 */
    CHECK(b.p[0] == 'P');
    CHECK(b.p[4] == 4 + 1 + 14 + 2);
    CHECK(memcmp(b.p + 6, "SELECT $1, $2", 14) == 0);
    /* then Bind with a 3-byte value and a NULL */
    {
        const unsigned char *bind = b.p + 1 + b.p[4];

        CHECK(bind[0] == 'B');
        CHECK(bind[4] == 4 + 1 + 1 + 2 + 2 + 4 + 3 + 4 + 2);
        CHECK(bind[10] == 2);                                     /* nparams */
        CHECK(bind[14] == 3 && memcmp(bind + 15, "a'b", 3) == 0); /* value 1 */
        CHECK(bind[18] == 0xff && bind[19] == 0xff && bind[20] == 0xff && bind[21] == 0xff);
    }
    CHECK(b.p[b.n - 5] == 'S' && b.p[b.n - 1] == 4); /* ends with Sync */
    b.n = 0;
    pgwire_terminate(&b);
    CHECK(b.n == 5 && b.p[0] == 'X' && b.p[4] == 4);
    pgwire_buf_free(&b);
}

static void
test_backend(void)
{
    unsigned char buf[1024];
    size_t n = 0;
    struct pgwire_result r;
    static const unsigned char rowdesc[] =
        "\0\x02"
        "id\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0"
        "name\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0";
    static const unsigned char row[] = "\0\x02\0\0\0\x01"
                                       "7\xff\xff\xff\xff";
    static const unsigned char err[] = "SERROR\0VERROR\0C42P01\0Mrelation \"x\" does not exist\0"
                                       "Dno detail\0Hsome hint\0\0";

    /* a login, then a result with one row */
    n = msg(buf, n, 'R', "\0\0\0\0", 4);
    n = msg(buf, n, 'S',
            "server_version\0"
            "15.20\0",
            21);
    n = msg(buf, n, 'K', "\0\0\0\1\0\0\0\2", 8);
    n = msg(buf, n, 'Z', "I", 1);
    pgwire_result_init(&r);
    CHECK(feed_all(&r, buf, n) == 4);
    CHECK(r.auth_ok && r.ready && !r.failed);
    pgwire_result_free(&r);

    n = 0;
    n = msg(buf, n, '1', "", 0);
    n = msg(buf, n, '2', "", 0);
    n = msg(buf, n, 'T', rowdesc, sizeof(rowdesc) - 1);
    n = msg(buf, n, 'D', row, sizeof(row) - 1);
    n = msg(buf, n, 'C', "SELECT 1", 9);
    n = msg(buf, n, 'Z', "I", 1);
    pgwire_result_init(&r);
    CHECK(feed_all(&r, buf, n) == 6);
    CHECK(json_array_size(r.rows) == 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(r.rows, 0), "id")), "7");
    CHECK(json_is_null(json_object_get(json_array_get(r.rows, 0), "name")));
    CHECK_STR(r.command, "SELECT 1");
    pgwire_result_free(&r);

    /* an error, then ReadyForQuery */
    n = 0;
    n = msg(buf, n, 'E', err, sizeof(err) - 1);
    n = msg(buf, n, 'Z', "I", 1);
    pgwire_result_init(&r);
    CHECK(feed_all(&r, buf, n) == 2);
    CHECK(r.failed == 1);
    CHECK_STR(r.sqlstate, "42P01");
    CHECK_STR(r.severity, "ERROR");
    CHECK_STR(r.message, "relation \"x\" does not exist");
    CHECK_STR(r.detail, "no detail");
    CHECK_STR(r.hint, "some hint");
    pgwire_result_free(&r);

    /* broken messages are refused, never read past */
    pgwire_result_init(&r);
    n = msg(buf, 0, 'R', "\0\0\0\x0a", 4); /* SASL asked: not trust */
    CHECK(feed_all(&r, buf, n) == -1 && r.failed == 2);
    pgwire_result_free(&r);
    pgwire_result_init(&r);
    n = msg(buf, 0, 'D', row, sizeof(row) - 1); /* a DataRow without a RowDescription */
    CHECK(feed_all(&r, buf, n) == -1);
    pgwire_result_free(&r);
    pgwire_result_init(&r);
    n = msg(buf, 0, 'T', rowdesc, sizeof(rowdesc) - 3); /* truncated */
    CHECK(feed_all(&r, buf, n) == -1);
    pgwire_result_free(&r);
    pgwire_result_init(&r);
    n = msg(buf, 0, 'E', "SERROR", 6); /* no NUL */
    CHECK(feed_all(&r, buf, n) == -1);
    pgwire_result_free(&r);
    pgwire_result_init(&r);
    n = msg(buf, 0, 'Z', "Q", 1);
    CHECK(feed_all(&r, buf, n) == -1);
    pgwire_result_free(&r);
    {
        struct pgwire_msg m;
        unsigned char bad[5] = {'Z', 0, 0, 0, 3};
        unsigned char huge[5] = {'D', 0x7f, 0xff, 0xff, 0xff};

        CHECK(pgwire_msg_split(bad, 5, &m) == -1);
        CHECK(pgwire_msg_split(huge, 5, &m) == -1);
        CHECK(pgwire_msg_split(buf, 3, &m) == 0);
    }
}

/* A simple Query of several statements: every CommandComplete counts, and with multi set a
 * second result set replaces the first (without it, a second RowDescription is refused). */
static void
test_multi(void)
{
    unsigned char buf[1024];
    size_t n = 0;
    struct pgwire_result r;
    struct pgwire_buf b = {0};
    static const unsigned char desc_a[] = "\0\x01"
                                          "a\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0";
    static const unsigned char desc_b[] = "\0\x01"
                                          "b\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0";
    static const unsigned char row_1[] = "\0\x01\0\0\0\x01"
                                         "1";
    static const unsigned char row_2[] = "\0\x01\0\0\0\x01"
                                         "2";

    pgwire_simple(&b, "CREATE ROLE x; GRANT y TO x");
    CHECK(b.n == 5 + 28 && b.p[0] == 'Q' && b.p[4] == 4 + 28);
    CHECK(memcmp(b.p + 5, "CREATE ROLE x; GRANT y TO x", 28) == 0);
    pgwire_buf_free(&b);
    CHECK(b.p == NULL && b.n == 0);

    n = msg(buf, n, 'C', "CREATE ROLE", 12);
    n = msg(buf, n, 'C', "GRANT ROLE", 11);
    n = msg(buf, n, 'T', desc_a, sizeof(desc_a) - 1);
    n = msg(buf, n, 'D', row_1, sizeof(row_1) - 1);
    n = msg(buf, n, 'C', "SELECT 1", 9);
    n = msg(buf, n, 'T', desc_b, sizeof(desc_b) - 1);
    n = msg(buf, n, 'D', row_2, sizeof(row_2) - 1);
    n = msg(buf, n, 'C', "SELECT 1", 9);
    n = msg(buf, n, 'Z', "I", 1);
    pgwire_result_init(&r);
    r.multi = 1;
    CHECK(feed_all(&r, buf, n) == 9);
    CHECK(r.ready && !r.failed && r.commands == 4);
    CHECK(json_array_size(r.cols) == 1 && json_array_size(r.rows) == 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(r.rows, 0), "b")), "2");
    CHECK(json_object_get(json_array_get(r.rows, 0), "a") == NULL);
    pgwire_result_free(&r);
    /* the extended protocol's one statement: a second result set is a violation */
    pgwire_result_init(&r);
    CHECK(feed_all(&r, buf, n) == -1 && r.failed == 2);
    CHECK(strstr(r.message, "a second RowDescription") != NULL);
    CHECK(r.commands == 3);
    pgwire_result_free(&r);
}

/* ---- pgwire_script against a fake backend on a unix socket ---------------------------------- */

struct fake {
    int lfd;
    int fail_second; /* the second Query gets an ErrorResponse */
    int connections; /* accepted */
    int queries;     /* Query messages read */
    char last[256];  /* the last Query's text */
};

/* Reads exactly n bytes: 0, or -1 at the end of the stream. */
static int
read_full(int fd, unsigned char *p, size_t n)
{
    while (n) {
        ssize_t got = read(fd, p, n);

        if (got <= 0)
            return -1;
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

static void *
fake_main(void *arg)
{
    struct fake *f = arg;
    unsigned char hdr[5], body[4096], out[1024];
    static const unsigned char err[] = "SERROR\0VERROR\0C42710\0Mrole \"x\" already exists\0\0";
    int fd;
    size_t n;

    while ((fd = accept(f->lfd, NULL, NULL)) >= 0) {
        uint32_t len;

        f->connections++;
        /* the startup message: length, then the body */
        if (read_full(fd, hdr, 4) ||
            (len = ((uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 |
                    hdr[3])) < 8 ||
            len - 4 > sizeof(body) || read_full(fd, body, len - 4)) {
            close(fd);
            continue;
        }
        n = msg(out, 0, 'R', "\0\0\0\0", 4);
        n = msg(out, n, 'Z', "I", 1);
        if (write(fd, out, n) != (ssize_t)n)
            break;
        while (read_full(fd, hdr, 5) == 0) {
            len = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
            if (len < 4 || len - 4 > sizeof(body) || read_full(fd, body, len - 4))
                break;
            if (hdr[0] == 'X')
                break;
            f->queries++;
            snprintf(f->last, sizeof(f->last), "%.*s", (int)(len - 4), (const char *)body);
            if (f->fail_second && f->queries == 2) {
                n = msg(out, 0, 'E', err, sizeof(err) - 1);
            } else {
                n = msg(out, 0, 'C', "CREATE ROLE", 12);
                n = msg(out, n, 'C', "ALTER DATABASE", 15);
            }
            n = msg(out, n, 'Z', "I", 1);
            if (write(fd, out, n) != (ssize_t)n)
                break;
        }
        close(fd);
    }
    return NULL;
}

static void
test_script(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct fake f = {0};
    struct pgcmk_err e;
    const char *scripts[] = {"CREATE ROLE x; ALTER DATABASE d OWNER TO x", "CREATE ROLE x"};
    pthread_t th;
    int commands = -1;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/pgcmk-test-pgwire-%d.sock", (int)getpid());
    unlink(sa.sun_path);
    f.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(f.lfd >= 0 && bind(f.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
          listen(f.lfd, 4) == 0);
    CHECK(pthread_create(&th, NULL, fake_main, &f) == 0);

    /* two scripts over one connection, each one Query message, all commands counted */
    CHECK(pgwire_script(sa.sun_path, "pgcmk_agent", "postgres", scripts, 1, 5000, &commands, &e) ==
          0);
    CHECK(commands == 2 && f.queries == 1 && f.connections == 1);
    CHECK_STR(f.last, "CREATE ROLE x; ALTER DATABASE d OWNER TO x");
    /* the second script fails: PostgreSQL's error, the first one's commands counted */
    f.fail_second = 1;
    f.queries = 0;
    CHECK(pgwire_script(sa.sun_path, "pgcmk_agent", "postgres", scripts, 2, 5000, &commands, &e) ==
          -1);
    CHECK(e.code == PGCMK_E_PGREAL_SQL);
    CHECK(strstr(e.message, "role \"x\" already exists (SQLSTATE 42710)") != NULL);
    CHECK(commands == 2 && f.queries == 2 && f.connections == 2);
    /* nothing listens: the instance is down */
    shutdown(f.lfd, SHUT_RDWR);
    close(f.lfd);
    pthread_join(th, NULL);
    unlink(sa.sun_path);
    CHECK(pgwire_script(sa.sun_path, "pgcmk_agent", "postgres", scripts, 1, 5000, &commands, &e) ==
          -1);
    CHECK(e.code == PGCMK_E_PGREAL_DOWN && commands == 0);
}

static void
test_scram(void)
{
    unsigned char salt[16];
    char *v, *q;

    for (int i = 0; i < 16; i++)
        salt[i] = (unsigned char)i;
    /* computed independently with Python's hashlib.pbkdf2_hmac and hmac */
    v = pgwire_scram_verifier("pencil", salt);
    CHECK_STR(v, "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$zHCdol2044/ZyWzPLi7oxApCkamKw9Z+"
                 "E4U/QApd/5Y=:dd5peBOitVnLNFu7VmwP+HiDaaw4OUCv396eVCWhYiE=");
    free(v);
    q = pgwire_quote_ident("we\"ird");
    CHECK_STR(q, "\"we\"\"ird\"");
    free(q);
}

int
main(void)
{
    test_frontend();
    test_backend();
    test_multi();
    test_script();
    test_scram();
    return t_done("test_pgwire");
}
