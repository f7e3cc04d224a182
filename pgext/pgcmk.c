/* pgcmk.c - pgcmk's server-side library (shared_preload_libraries = 'pgcmk'): while the file
 * $PGDATA/pgcmk.inaccessible exists, every login that authenticated is refused with
 *
 *   FATAL:  server is Inaccessible: the customer-managed key cannot be accessed
 *   DETAIL: <line 2 of the file>
 *   HINT:   <line 3 of the file>
 *
 * except for the roles of pgcmk.exempt_roles (pgcmkd's own superuser and the replication role).
 * pgcmkd (src/pg/access.c) writes the file atomically (line 1: the reason code, line 2: the
 * detail naming the vault, key, version and principal, line 3: the hint, an optional line 4: the
 * primary message instead of Azure's, as a self-managed pg_tde instance words it: "failed to
 * retrieve principal key ... from key provider ...") and removes it when
 * access returns; the library only reads it, so it stays dumb. The first refusal after the file
 * appeared is recorded in $PGDATA/pgcmk.denials (one line: Unix time in ms, role, database), so
 * pgcmkd can say when the first connection was denied.
 *
 * SQLSTATE 08004 (sqlserver_rejected_establishment_of_sqlconnection): the server refuses the
 * connection for a reason of its own, not because of the credentials (28000 would tell drivers
 * and poolers that the login is wrong, and they would not retry once the key is back). */
#include "postgres.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include "fmgr.h"
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/varlena.h"

PG_MODULE_MAGIC;

#define PGCMK_FLAG     "pgcmk.inaccessible"
#define PGCMK_DENIALS  "pgcmk.denials"
#define PGCMK_FLAG_MAX 4096

void _PG_init(void);

static ClientAuthentication_hook_type prev_client_auth_hook = NULL;
static char *pgcmk_exempt_roles = NULL;

/* pgcmk.exempt_roles must be a list of role names */
static bool
check_exempt_roles(char **newval, void **extra, GucSource source)
{
    char *raw = pstrdup(*newval);
    List *names = NIL;
    bool ok = SplitIdentifierString(raw, ',', &names);

    (void)extra;
    (void)source;
    if (!ok)
        GUC_check_errdetail("List syntax is invalid.");
    list_free(names);
    pfree(raw);
    return ok;
}

static bool
role_exempt(const char *role)
{
    char *raw;
    List *names = NIL;
    ListCell *lc;
    bool found = false;

    if (role == NULL || pgcmk_exempt_roles == NULL)
        return false;
    raw = pstrdup(pgcmk_exempt_roles);
    if (SplitIdentifierString(raw, ',', &names)) {
        foreach(lc, names)
        {
            if (strcmp((const char *)lfirst(lc), role) == 0) {
                found = true;
                break;
            }
        }
    }
    list_free(names);
    pfree(raw);
    return found;
}

/* The flag's contents, NUL-terminated; false when there is no flag. An unreadable flag still
 * refuses (with an empty detail): a missing key must never let a login through. */
static bool
read_flag(char *buf, size_t n)
{
    char path[MAXPGPATH];
    int fd;
    ssize_t got = 0, r;

    snprintf(path, sizeof(path), "%s/%s", DataDir, PGCMK_FLAG);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        buf[0] = '\0';
        return errno != ENOENT;
    }
    while ((size_t)got < n - 1 && (r = read(fd, buf + got, n - 1 - got)) > 0)
        got += r;
    close(fd);
    buf[got] = '\0';
    return true;
}

/* Cuts buf into at most n lines in place (the last line keeps no newline); missing lines are "". */
static void
split_lines(char *buf, char **lines, int n)
{
    char *s = buf, *nl;
    int i;

    for (i = 0; i < n; i++) {
        lines[i] = s ? s : "";
        nl = s ? strchr(s, '\n') : NULL;
        if (nl)
            *nl = '\0';
        s = nl ? nl + 1 : NULL;
    }
}

static void
record_denial(const Port *port)
{
    char path[MAXPGPATH], line[256];
    struct timeval tv;
    int fd, len;

    snprintf(path, sizeof(path), "%s/%s", DataDir, PGCMK_DENIALS);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) /* already recorded for this flag (pgcmkd removes it with the flag) */
        return;
    gettimeofday(&tv, NULL);
    len = snprintf(
        line, sizeof(line), "%lld %s %s\n", (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000,
        port->user_name ? port->user_name : "", port->database_name ? port->database_name : "");
    if (len > 0 && write(fd, line, Min((size_t)len, sizeof(line) - 1)) < 0)
        elog(LOG, "pgcmk: could not record the first denial: %m");
    close(fd);
}

static void
pgcmk_client_auth(Port *port, int status)
{
    char buf[PGCMK_FLAG_MAX], *line[4], *detail, *hint;

    if (prev_client_auth_hook)
        prev_client_auth_hook(port, status);
    /* a failed authentication is reported as such: only a client that proved who it is learns
     * why the server refuses */
    if (status != STATUS_OK || role_exempt(port->user_name) || !read_flag(buf, sizeof(buf)))
        return;
    /* line 1: reason code; line 2: detail; line 3: hint (a flag of one line: its detail) */
    split_lines(buf, line, 4);
    detail = line[1][0] ? line[1] : line[0];
    hint = line[2];
    record_denial(port);
    ereport(FATAL,
            (errcode(ERRCODE_SQLSERVER_REJECTED_ESTABLISHMENT_OF_SQLCONNECTION),
             line[3][0] ? errmsg("%s", line[3])
                        : errmsg("server is Inaccessible: the customer-managed key cannot be "
                                 "accessed"),
             detail[0] ? errdetail("%s", detail) : 0, hint[0] ? errhint("%s", hint) : 0));
}

void
_PG_init(void)
{
    if (!process_shared_preload_libraries_in_progress)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("pgcmk must be loaded through shared_preload_libraries")));
    DefineCustomStringVariable("pgcmk.exempt_roles",
                               "Roles that may log in while the server is Inaccessible.",
                               "pgcmkd's internal superuser and the replication role.",
                               &pgcmk_exempt_roles, "pgcmk_agent,pgcmk_replication", PGC_SIGHUP,
                               GUC_LIST_INPUT, check_exempt_roles, NULL, NULL);
    MarkGUCPrefixReserved("pgcmk");
    prev_client_auth_hook = ClientAuthentication_hook;
    ClientAuthentication_hook = pgcmk_client_auth;
}
