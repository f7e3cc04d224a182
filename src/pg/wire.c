/* wire.c - the PostgreSQL wire-protocol client of pgcmkd (include/pgcmk/pgwire.h): startup with
 * trust auth over a unix socket, one statement through the extended protocol, the SCRAM-SHA-256
 * verifier of a password. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pgcmk/core.h"
#include "pgcmk/crypto.h"
#include "pgcmk/pgwire.h"

static uint32_t
wire_be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint16_t
wire_be16(const unsigned char *p)
{
    return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

ssize_t
pgwire_msg_split(const unsigned char *buf, size_t n, struct pgwire_msg *m)
{
    uint32_t len;

    if (n < 5)
        return 0;
    len = wire_be32(buf + 1);
    if (len < 4 || len > PGWIRE_MAX_MSG)
        return -1;
    if (n - 1 < len)
        return 0;
    m->type = (char)buf[0];
    m->body = buf + 5;
    m->len = len - 4;
    return (ssize_t)len + 1;
}

void
pgwire_result_init(struct pgwire_result *r)
{
    memset(r, 0, sizeof(*r));
    r->cols = json_array();
    r->rows = json_array();
}

void
pgwire_result_free(struct pgwire_result *r)
{
    json_decref(r->cols);
    json_decref(r->rows);
    r->cols = r->rows = NULL;
}

static int
wire_violation(struct pgwire_result *r, const char *what, char type)
{
    r->failed = 2;
    snprintf(r->message, sizeof(r->message), "protocol violation: %s (message '%c')", what,
             type >= 32 && type < 127 ? type : '?');
    return -1;
}

/* A NUL-terminated string at body[*off..len): its start, *off moved past the NUL; NULL when
 * there is no NUL before the end. */
static const char *
wire_cstr(const struct pgwire_msg *m, size_t *off)
{
    const unsigned char *nul;
    const char *s;

    if (*off >= m->len)
        return NULL;
    nul = memchr(m->body + *off, 0, m->len - *off);
    if (nul == NULL)
        return NULL;
    s = (const char *)m->body + *off;
    *off = (size_t)(nul - m->body) + 1;
    return s;
}

static int
wire_error_fields(struct pgwire_result *r, const struct pgwire_msg *m, int keep)
{
    size_t off = 0;

    for (;;) {
        char code;
        const char *v;

        if (off >= m->len)
            return wire_violation(r, "error fields without their terminator", m->type);
        code = (char)m->body[off++];
        if (code == 0)
            return off == m->len ? 0 : wire_violation(r, "bytes after the error fields", m->type);
        if ((v = wire_cstr(m, &off)) == NULL)
            return wire_violation(r, "an error field without its NUL", m->type);
        if (!keep)
            continue;
        switch (code) {
        case 'V':
            snprintf(r->severity, sizeof(r->severity), "%s", v);
            break;
        case 'S':
            if (r->severity[0] == 0)
                snprintf(r->severity, sizeof(r->severity), "%s", v);
            break;
        case 'C':
            snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", v);
            break;
        case 'M':
            snprintf(r->message, sizeof(r->message), "%s", v);
            break;
        case 'D':
            snprintf(r->detail, sizeof(r->detail), "%s", v);
            break;
        case 'H':
            snprintf(r->hint, sizeof(r->hint), "%s", v);
            break;
        default:
            break;
        }
    }
}

static int
wire_row_description(struct pgwire_result *r, const struct pgwire_msg *m)
{
    size_t off = 2;
    unsigned n, i;

    if (m->len < 2)
        return wire_violation(r, "a short RowDescription", m->type);
    if (json_array_size(r->cols) || json_array_size(r->rows)) {
        if (!r->multi)
            return wire_violation(r, "a second RowDescription", m->type);
        json_array_clear(r->cols); /* the next statement's result set */
        json_array_clear(r->rows);
    }
    n = wire_be16(m->body);
    for (i = 0; i < n; i++) {
        const char *name = wire_cstr(m, &off);
        json_t *s;

        if (name == NULL || m->len - off < 18)
            return wire_violation(r, "a truncated RowDescription", m->type);
        off += 18; /* table oid, attnum, type oid, typlen, typmod, format */
        if ((s = json_string(name)) == NULL)
            return wire_violation(r, "a column name that is not UTF-8", m->type);
        json_array_append_new(r->cols, s);
    }
    if (off != m->len)
        return wire_violation(r, "bytes after the RowDescription", m->type);
    return 0;
}

static int
wire_data_row(struct pgwire_result *r, const struct pgwire_msg *m)
{
    size_t off = 2;
    unsigned n, i;
    json_t *row;

    if (m->len < 2)
        return wire_violation(r, "a short DataRow", m->type);
    n = wire_be16(m->body);
    if (n != json_array_size(r->cols))
        return wire_violation(r, "a DataRow whose width is not the RowDescription's", m->type);
    row = json_object();
    for (i = 0; i < n; i++) {
        uint32_t len;
        json_t *v;

        if (m->len - off < 4) {
            json_decref(row);
            return wire_violation(r, "a truncated DataRow", m->type);
        }
        len = wire_be32(m->body + off);
        off += 4;
        if (len == 0xffffffffu) {
            v = json_null();
        } else if (len > m->len - off) {
            json_decref(row);
            return wire_violation(r, "a DataRow value past its message", m->type);
        } else {
            v = json_stringn((const char *)m->body + off, len);
            off += len;
            if (v == NULL) {
                json_decref(row);
                return wire_violation(r, "a DataRow value that is not UTF-8", m->type);
            }
        }
        json_object_set_new(row, json_string_value(json_array_get(r->cols, i)), v);
    }
    if (off != m->len) {
        json_decref(row);
        return wire_violation(r, "bytes after the DataRow", m->type);
    }
    json_array_append_new(r->rows, row);
    return 0;
}

int
pgwire_result_feed(struct pgwire_result *r, const struct pgwire_msg *m)
{
    size_t off = 0;

    if (r->ready)
        return wire_violation(r, "a message after ReadyForQuery", m->type);
    switch (m->type) {
    case 'R': /* Authentication */
        if (m->len < 4)
            return wire_violation(r, "a short Authentication", m->type);
        if (wire_be32(m->body) != 0 || m->len != 4)
            return wire_violation(r, "an authentication other than trust was asked", m->type);
        r->auth_ok = 1;
        return 0;
    case 'E': {
        int first = r->failed == 0;

        if (wire_error_fields(r, m, first))
            return -1;
        r->failed = 1;
        return 0;
    }
    case 'N': /* NoticeResponse: checked, dropped */
        return wire_error_fields(r, m, 0);
    case 'S': /* ParameterStatus */
        if (wire_cstr(m, &off) == NULL || wire_cstr(m, &off) == NULL || off != m->len)
            return wire_violation(r, "a malformed ParameterStatus", m->type);
        return 0;
    case 'K': /* BackendKeyData */
        return m->len == 8 ? 0 : wire_violation(r, "a BackendKeyData of the wrong size", m->type);
    case 'Z':
        if (m->len != 1 || (m->body[0] != 'I' && m->body[0] != 'T' && m->body[0] != 'E'))
            return wire_violation(r, "a malformed ReadyForQuery", m->type);
        r->ready = 1;
        return 0;
    case '1': /* ParseComplete */
    case '2': /* BindComplete */
    case 'n': /* NoData */
    case 'I': /* EmptyQueryResponse */
    case 's': /* PortalSuspended */
        return m->len == 0 ? 0 : wire_violation(r, "a non-empty empty message", m->type);
    case 'T':
        return wire_row_description(r, m);
    case 'D':
        return wire_data_row(r, m);
    case 'C': {
        const char *tag = wire_cstr(m, &off);

        if (tag == NULL || off != m->len)
            return wire_violation(r, "a malformed CommandComplete", m->type);
        snprintf(r->command, sizeof(r->command), "%s", tag);
        r->commands++;
        return 0;
    }
    case 'A': /* NotificationResponse */
        if (m->len < 4)
            return wire_violation(r, "a short NotificationResponse", m->type);
        off = 4;
        if (wire_cstr(m, &off) == NULL || wire_cstr(m, &off) == NULL || off != m->len)
            return wire_violation(r, "a malformed NotificationResponse", m->type);
        return 0;
    default:
        return wire_violation(r, "an unexpected message", m->type);
    }
}

/* ---- frontend messages ---------------------------------------------------------------------- */

static void
wire_put(struct pgwire_buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) { /* grown by hand: the old block may hold a verifier, wiped */
        size_t cap = (b->n + n) * 2 + 64;
        unsigned char *grown = pgcmk_xmalloc(cap);

        if (b->p) {
            memcpy(grown, b->p, b->n);
            OPENSSL_cleanse(b->p, b->cap);
            free(b->p);
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void
wire_put32(struct pgwire_buf *b, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};

    wire_put(b, p, 4);
}

static void
wire_put16(struct pgwire_buf *b, uint16_t v)
{
    unsigned char p[2] = {(unsigned char)(v >> 8), (unsigned char)v};

    wire_put(b, p, 2);
}

static void
wire_putstr(struct pgwire_buf *b, const char *s)
{
    wire_put(b, s, strlen(s) + 1);
}

/* Opens a message of type t (0: the untyped startup message): returns where its length goes. */
static size_t
wire_begin(struct pgwire_buf *b, char t)
{
    size_t at;

    if (t)
        wire_put(b, &t, 1);
    at = b->n;
    wire_put32(b, 0);
    return at;
}

static void
wire_end(struct pgwire_buf *b, size_t at)
{
    uint32_t len = (uint32_t)(b->n - at);

    b->p[at] = (unsigned char)(len >> 24);
    b->p[at + 1] = (unsigned char)(len >> 16);
    b->p[at + 2] = (unsigned char)(len >> 8);
    b->p[at + 3] = (unsigned char)len;
}

void
pgwire_buf_free(struct pgwire_buf *b)
{
    if (b->p)
        OPENSSL_cleanse(b->p, b->cap);
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void
pgwire_startup(struct pgwire_buf *b, const char *user, const char *database)
{
    size_t at = wire_begin(b, 0);

    wire_put32(b, 196608); /* 3.0 */
    wire_putstr(b, "user");
    wire_putstr(b, user);
    wire_putstr(b, "database");
    wire_putstr(b, database);
    wire_putstr(b, "application_name");
    wire_putstr(b, "pgcmkd");
    wire_put(b, "", 1);
    wire_end(b, at);
}

void
pgwire_extended(struct pgwire_buf *b, const char *sql, const char *const *params, int nparams)
{
    size_t at;
    int i;

    at = wire_begin(b, 'P');
    wire_putstr(b, "");
    wire_putstr(b, sql);
    wire_put16(b, 0);
    wire_end(b, at);

    at = wire_begin(b, 'B');
    wire_putstr(b, "");
    wire_putstr(b, "");
    wire_put16(b, 0); /* all parameters text */
    wire_put16(b, (uint16_t)nparams);
    for (i = 0; i < nparams; i++) {
        if (params[i] == NULL) {
            wire_put32(b, 0xffffffffu);
        } else {
            wire_put32(b, (uint32_t)strlen(params[i]));
            wire_put(b, params[i], strlen(params[i]));
        }
    }
    wire_put16(b, 0); /* all results text */
    wire_end(b, at);

    at = wire_begin(b, 'D');
    wire_put(b, "P", 1);
    wire_putstr(b, "");
    wire_end(b, at);

    at = wire_begin(b, 'E');
    wire_putstr(b, "");
    wire_put32(b, 0);
    wire_end(b, at);

    wire_end(b, wire_begin(b, 'S'));
}

void
pgwire_simple(struct pgwire_buf *b, const char *sql)
{
    size_t at = wire_begin(b, 'Q');

    wire_putstr(b, sql);
    wire_end(b, at);
}

void
pgwire_terminate(struct pgwire_buf *b)
{
    wire_end(b, wire_begin(b, 'X'));
}

/* ---- the socket exchange -------------------------------------------------------------------- */

static int
wire_wait(int fd, short ev, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = ev};
    int rc;

    do
        rc = poll(&p, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    return rc > 0 ? 0 : -1;
}

static int
wire_send(int fd, const struct pgwire_buf *b, int timeout_ms)
{
    size_t off = 0;

    while (off < b->n) {
        ssize_t w;

        if (wire_wait(fd, POLLOUT, timeout_ms))
            return -1;
        w = send(fd, b->p + off, b->n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

/* Reads and feeds messages until ReadyForQuery (or, with until_auth, a failure before it).
 * 0, or -1 with why in r (a protocol violation) or when the socket fails (r->failed stays 0). */
static int
wire_recv(int fd, struct pgwire_result *r, int timeout_ms, const char **why)
{
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;

    *why = NULL;
    while (!r->ready) {
        struct pgwire_msg m;
        ssize_t used, got;

        while ((used = pgwire_msg_split(buf, n, &m)) > 0) {
            int bad = pgwire_result_feed(r, &m);

            memmove(buf, buf + used, n - (size_t)used);
            n -= (size_t)used;
            if (bad)
                goto done;
            if (r->ready) {
                rc = 0;
                goto done;
            }
        }
        if (used < 0) {
            r->failed = 2;
            snprintf(r->message, sizeof(r->message), "protocol violation: a bad message length");
            goto done;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8192;
            buf = pgcmk_xrealloc(buf, cap);
        }
        if (wire_wait(fd, POLLIN, timeout_ms)) {
            *why = "timed out waiting for the server";
            goto done;
        }
        got = recv(fd, buf + n, cap - n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            *why = "the server closed the connection";
            goto done;
        }
        n += (size_t)got;
    }
    rc = 0;
done:
    free(buf);
    return rc;
}

/* The error of a failed exchange (why: the socket's failure, else NULL): always -1. */
static int
wire_fail(const struct pgwire_result *r, const char *why, struct pgcmk_err *err)
{
    if (r->failed == 1)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_SQL, NULL, "%s: %s%s%.200s (SQLSTATE %s)",
                             r->severity[0] ? r->severity : "ERROR", r->message,
                             r->detail[0] ? ": " : "", r->detail, r->sqlstate);
    if (r->failed == 2)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_SQL, NULL, "%s", r->message);
    if (!r->auth_ok && why == NULL)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_DOWN, NULL,
                             "the instance did not authenticate pgcmkd");
    return pgcmk_err_set(err, PGCMK_E_PGREAL_DOWN, NULL, "PostgreSQL instance: %s",
                         why ? why : "no answer");
}

/* Connects to sock_path and logs in as user on database (trust): the socket, or -1 with err. */
static int
wire_connect(const char *sock_path, const char *user, const char *database, int timeout_ms,
             struct pgcmk_err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct pgwire_buf b = {0};
    struct pgwire_result r;
    const char *why = NULL;
    int fd;

    if (strlen(sock_path) >= sizeof(sa.sun_path))
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "socket path too long: %.200s",
                             sock_path);
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;

        if (fd >= 0)
            close(fd);
        return pgcmk_err_set(err, PGCMK_E_PGREAL_DOWN, NULL,
                             "the PostgreSQL instance does not accept connections (%s)",
                             strerror(e));
    }
    pgwire_result_init(&r);
    pgwire_startup(&b, user, database);
    if (wire_send(fd, &b, timeout_ms))
        why = "cannot send to the server";
    if (why || wire_recv(fd, &r, timeout_ms, &why) || r.failed || !r.auth_ok) {
        wire_fail(&r, why, err);
        close(fd);
        fd = -1;
    }
    pgwire_result_free(&r);
    pgwire_buf_free(&b);
    return fd;
}

/* Sends b's messages, reads the answer into r (initialised by the caller) up to ReadyForQuery:
 * 0, or -1 with err. */
static int
wire_exchange(int fd, const struct pgwire_buf *b, struct pgwire_result *r, int timeout_ms,
              struct pgcmk_err *err)
{
    const char *why = NULL;

    if (wire_send(fd, b, timeout_ms))
        why = "cannot send to the server";
    if (why || wire_recv(fd, r, timeout_ms, &why) || r->failed)
        return wire_fail(r, why, err);
    return 0;
}

static void
wire_close(int fd, int timeout_ms)
{
    struct pgwire_buf b = {0};

    pgwire_terminate(&b);
    (void)wire_send(fd, &b, timeout_ms);
    pgwire_buf_free(&b);
    close(fd);
}

int
pgwire_query(const char *sock_path, const char *user, const char *database, const char *sql,
             const char *const *params, int nparams, int timeout_ms, json_t **rows,
             struct pgcmk_err *err)
{
    struct pgwire_buf b = {0};
    struct pgwire_result r;
    int fd, rc;

    if (rows)
        *rows = NULL;
    if ((fd = wire_connect(sock_path, user, database, timeout_ms, err)) < 0)
        return -1;
    pgwire_result_init(&r);
    pgwire_extended(&b, sql, params, nparams);
    rc = wire_exchange(fd, &b, &r, timeout_ms, err);
    if (rc == 0 && rows) {
        *rows = r.rows;
        r.rows = NULL;
    }
    pgwire_result_free(&r);
    pgwire_buf_free(&b);
    wire_close(fd, timeout_ms);
    return rc;
}

int
pgwire_script(const char *sock_path, const char *user, const char *database,
              const char *const *scripts, int n, int timeout_ms, int *commands,
              struct pgcmk_err *err)
{
    struct pgwire_buf b = {0};
    int fd, rc = 0;

    if (commands)
        *commands = 0;
    if ((fd = wire_connect(sock_path, user, database, timeout_ms, err)) < 0)
        return -1;
    for (int k = 0; k < n && rc == 0; k++) {
        struct pgwire_result r;

        pgwire_result_init(&r);
        r.multi = 1;
        b.n = 0;
        pgwire_simple(&b, scripts[k]);
        rc = wire_exchange(fd, &b, &r, timeout_ms, err);
        if (commands)
            *commands += r.commands;
        pgwire_result_free(&r);
    }
    pgwire_buf_free(&b);
    wire_close(fd, timeout_ms);
    return rc;
}

/* ---- SCRAM-SHA-256 verifier (RFC 5802/7677, PostgreSQL's scram_build_secret) ---------------- */

char *
pgwire_scram_verifier(const char *password, const unsigned char salt[16])
{
    unsigned char salted[32], client_key[32], stored_key[32], server_key[32];
    unsigned int l1 = 0, l2 = 0;
    char *s_salt = NULL, *s_stored = NULL, *s_server = NULL, *out = NULL;

    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, 16, 4096, EVP_sha256(), 32,
                          salted) != 1 ||
        HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key", 10, client_key, &l1) ==
            NULL ||
        HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Server Key", 10, server_key, &l2) ==
            NULL ||
        l1 != 32 || l2 != 32)
        goto done;
    pgcmk_sha256(client_key, 32, stored_key);
    s_salt = pgcmk_b64_encode(salt, 16);
    s_stored = pgcmk_b64_encode(stored_key, 32);
    s_server = pgcmk_b64_encode(server_key, 32);
    out = pgcmk_xasprintf("SCRAM-SHA-256$4096:%s$%s:%s", s_salt, s_stored, s_server);
done:
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    OPENSSL_cleanse(stored_key, sizeof(stored_key));
    OPENSSL_cleanse(server_key, sizeof(server_key));
    free(s_salt);
    free(s_stored);
    free(s_server);
    return out;
}

char *
pgwire_quote_ident(const char *s)
{
    size_t n = strlen(s), i, o = 0;
    char *q = pgcmk_xmalloc(2 * n + 3);

    q[o++] = '"';
    for (i = 0; i < n; i++) {
        if (s[i] == '"')
            q[o++] = '"';
        q[o++] = s[i];
    }
    q[o++] = '"';
    q[o] = 0;
    return q;
}
