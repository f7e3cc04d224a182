/* agent.c - the extension's side of the pg_tde agent protocol (include/pgcmk/tdeproto.h): one
 * request per connection on the unix socket named by pg_tde.pgcmk_agent_socket,
 *
 *   "TDE <slug> <length>\n" + body  ->  "OK <length>\n" + body | "ERR <text>\n"
 *
 * Plain blocking I/O under poll() in short slices, so a cancel (CHECK_FOR_INTERRUPTS) stops the
 * wait; the whole exchange is bounded by PGTDE_TIMEOUT_MS. The agent owns pg_tde's error texts:
 * an answer with status=error is raised as it comes. */
#include "postgres.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"

#include "pg/tdeproto.h"
#include "pg_tde.h"
#include "pgcmk/tdeproto.h"

#define TDE_SLICE_MS 250
#define TDE_HEAD_MAX 512

static const char *
cipher_name(void)
{
    return tde_cipher == TDE_CIPHER_AES_256 ? "aes_256" : "aes_128";
}

void
tde_req_add(StringInfo req, const char *key, const char *value)
{
    struct tdep_buf b = {0};

    tdep_add(&b, key, value);
    if (b.overflow) {
        tdep_buf_free(&b);
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("pg_tde request too long (at most %d bytes)", PGTDE_MAX_BODY)));
    }
    appendBinaryStringInfo(req, b.p, (int)b.len);
    tdep_buf_free(&b);
}

void
tde_req_init(StringInfo req, const char *op)
{
    char oid[16];
    const char *db = NULL, *user = NULL;
    bool su = true; /* the postmaster's start check runs as the server itself */

    initStringInfo(req);
    snprintf(oid, sizeof(oid), "%u", MyDatabaseId);
    if (IsUnderPostmaster && OidIsValid(MyDatabaseId)) {
        db = get_database_name(MyDatabaseId);
        user = GetUserNameFromId(GetUserId(), true);
        su = superuser();
    }
    tde_req_add(req, "op", op);
    tde_req_add(req, "dboid", oid);
    tde_req_add(req, "dbname", db);
    tde_req_add(req, "user", user);
    tde_req_add(req, "superuser", su ? "1" : "0");
    tde_req_add(req, "cipher", cipher_name());
}

static int64
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes: 1 ready, 0 timed out, -1 error. */
static int
wait_fd(int fd, short events, int64 deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int64 left = deadline - now_ms();
        int r;

        CHECK_FOR_INTERRUPTS();
        if (left <= 0)
            return 0;
        r = poll(&p, 1, (int)Min(left, TDE_SLICE_MS));
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static bool
write_all(int fd, const char *buf, size_t len, int64 deadline)
{
    while (len > 0) {
        ssize_t w;

        if (wait_fd(fd, POLLOUT, deadline) <= 0)
            return false;
        w = send(fd, buf, len, MSG_NOSIGNAL);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w <= 0)
            return false;
        buf += w;
        len -= (size_t)w;
    }
    return true;
}

/* Reads len bytes (fewer at EOF; with stop_at_newline, up to the first newline): the count, or
 * -1 on an error or at the deadline. */
static ssize_t
read_n(int fd, char *buf, size_t len, int64 deadline, bool stop_at_newline)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r;

        if (wait_fd(fd, POLLIN, deadline) <= 0)
            return -1;
        r = recv(fd, buf + got, stop_at_newline ? 1 : len - got, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
        if (stop_at_newline && buf[got - 1] == '\n')
            break;
    }
    return (ssize_t)got;
}

/* The answer body's fields, copied out of the shared parser's malloc'd message */
static TdeAnswer *
parse_answer(const char *body, size_t len, int elevel)
{
    TdeAnswer *a = palloc0(sizeof(TdeAnswer));
    struct tdep_msg m;
    const char *why = NULL;
    size_t i;

    if (tdep_parse(body, len, "row", &m, &why) != 0)
        ereport(elevel, (errcode(ERRCODE_PROTOCOL_VIOLATION),
                         errmsg("pgcmk's pg_tde agent answered a malformed body: %s", why)));
    a->n = (int)m.n;
    a->keys = palloc(sizeof(char *) * (m.n + 1));
    a->values = palloc(sizeof(char *) * (m.n + 1));
    for (i = 0; i < m.n; i++) {
        a->keys[i] = pstrdup(m.f[i].key);
        a->values[i] = pstrdup(m.f[i].value);
    }
    tdep_free(&m);
    return a;
}

const char *
tde_answer_get(const TdeAnswer *a, const char *key)
{
    int i;

    for (i = 0; i < a->n; i++)
        if (strcmp(a->keys[i], key) == 0)
            return a->values[i];
    return NULL;
}

/* The agent's SQLSTATE when it is five of [0-9A-Z], else XX000 */
static int
answer_sqlstate(const char *s)
{
    int i;

    if (s == NULL || strlen(s) != 5)
        return ERRCODE_INTERNAL_ERROR;
    for (i = 0; i < 5; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
            return ERRCODE_INTERNAL_ERROR;
    return MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
}

static void
raise_answer(const TdeAnswer *a, int elevel)
{
    const char *status = tde_answer_get(a, "status");
    const char *message = tde_answer_get(a, "message");
    const char *detail = tde_answer_get(a, "detail");
    const char *hint = tde_answer_get(a, "hint");

    if (status != NULL && strcmp(status, "ok") == 0)
        return;
    if (status == NULL || strcmp(status, "error") != 0 || message == NULL)
        ereport(elevel, (errcode(ERRCODE_PROTOCOL_VIOLATION),
                         errmsg("pgcmk's pg_tde agent answered without a status")));
    ereport(elevel, (errcode(answer_sqlstate(tde_answer_get(a, "sqlstate"))),
                     errmsg_internal("%s", message), detail ? errdetail_internal("%s", detail) : 0,
                     hint ? errhint("%s", hint) : 0));
}

/* The exchange on a connected socket: the answer body (palloc'd, length in *len), or NULL with
 * a reason in *why. */
static char *
exchange(int fd, StringInfo req, size_t *len, const char **why)
{
    int64 deadline = now_ms() + PGTDE_TIMEOUT_MS;
    char head[TDE_HEAD_MAX], *body, *endp;
    ssize_t got;
    unsigned long n;

    snprintf(head, sizeof(head), "TDE %s %d\n", tde_agent_slug, req->len);
    if (!write_all(fd, head, strlen(head), deadline) ||
        !write_all(fd, req->data, (size_t)req->len, deadline)) {
        *why = "could not send the request";
        return NULL;
    }
    got = read_n(fd, head, sizeof(head) - 1, deadline, true);
    if (got <= 0 || head[got - 1] != '\n') {
        *why = got < 0 ? "no answer in time" : "the connection closed without an answer";
        return NULL;
    }
    head[got - 1] = '\0';
    if (strncmp(head, "ERR ", 4) == 0) {
        *why = pstrdup(head + 4);
        return NULL;
    }
    errno = 0;
    n = strncmp(head, "OK ", 3) == 0 ? strtoul(head + 3, &endp, 10) : 0;
    if (strncmp(head, "OK ", 3) != 0 || errno != 0 || *endp != '\0' || n > PGTDE_MAX_BODY) {
        *why = "malformed answer";
        return NULL;
    }
    body = palloc(n + 1);
    if (read_n(fd, body, n, deadline, false) != (ssize_t)n) {
        *why = "truncated answer";
        return NULL;
    }
    body[n] = '\0';
    *len = n;
    return body;
}

TdeAnswer *
tde_call(StringInfo req, int elevel)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *path = tde_agent_socket, *why = NULL;
    char *body = NULL;
    size_t len = 0;
    TdeAnswer *a;
    int fd;

    if (path == NULL || path[0] == '\0' || tde_agent_slug == NULL || tde_agent_slug[0] == '\0')
        ereport(elevel,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("pgcmk's pg_tde emulation has no agent: %s is not set",
                        path == NULL || path[0] == '\0' ? PGTDE_GUC_SOCKET : PGTDE_GUC_SLUG),
                 errhint("This pg_tde keeps its keys through pgcmkd; use an instance that pgcmkd "
                         "created (POST /emulator/postgres/instances), which sets it.")));
    if (strlen(path) >= sizeof(sa.sun_path))
        ereport(elevel, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                         errmsg("%s is too long: \"%s\"", PGTDE_GUC_SOCKET, path)));
    if (req->len > PGTDE_MAX_BODY)
        ereport(elevel, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                         errmsg("pg_tde request too long (%d bytes, at most %d)", req->len,
                                PGTDE_MAX_BODY)));
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        ereport(elevel, (errcode_for_socket_access(),
                         errmsg("could not create a socket for pgcmk's pg_tde agent: %m")));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        ereport(elevel, (errcode(ERRCODE_CONNECTION_FAILURE),
                         errmsg("could not connect to pgcmk's pg_tde agent at \"%s\": %m", path),
                         errhint("pgcmkd keeps this instance's key providers and principal keys; "
                                 "is it running?")));
    }
    PG_TRY();
    {
        body = exchange(fd, req, &len, &why);
    }
    PG_FINALLY();
    {
        close(fd);
    }
    PG_END_TRY();
    if (body == NULL)
        ereport(elevel, (errcode(ERRCODE_CONNECTION_FAILURE),
                         errmsg("pgcmk's pg_tde agent at \"%s\" failed: %s", path, why)));
    a = parse_answer(body, len, elevel);
    raise_answer(a, elevel);
    return a;
}
