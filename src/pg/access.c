/* access.c - a real instance follows its database's access (issue 15, item 4): when the
 * reconciler decides the database lost its key (pg_databases.access = lost, state Inaccessible),
 * new logins are refused and client sessions terminated; when access returns (Ready: after the
 * revalidation for single servers), logins are allowed again. A key outage changes nothing: the
 * access stays ok and no DatabaseAccessChanged event comes.
 *
 * Two ways to refuse:
 *   extension  pgcmk's server-side library (pgext/pgcmk.c, shared_preload_libraries = 'pgcmk')
 *              refuses every login but the exempt roles' while $PGDATA/pgcmk.inaccessible
 *              exists, with a FATAL whose DETAIL and HINT are the file's lines 2 and 3
 *              (line 1: the reason code). The first refusal writes $PGDATA/pgcmk.denials.
 *   pg_hba     when the library is not installed (or PGCMK_PG_REFUSAL=hba in pgcmkd's
 *              environment): pg_hba.conf keeps the exempt roles' and the replication lines and
 *              ends with `host all all all reject`, the original kept as pg_hba.conf.pgcmk-orig;
 *              pg_reload_conf(). PostgreSQL's own FATAL ("pg_hba.conf rejects connection").
 * Then pg_terminate_backend() of every client backend of a role that is not exempt. With the data
 * directory on gocryptfs (pg_atrest_on), the instance is also stopped (and unmounted) on loss and
 * started (mounted) on recovery.
 *
 * The change runs on the thread that published the event (after the state's transaction
 * committed): writing the flag and terminating take a few ms. pg_access_prepare does the same
 * with the files before every start of an instance, so an instance never serves a login it
 * should refuse, even right after pgcmkd restarts. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg/internal.h"
#include "pgcmk/clock.h"
#include "pgcmk/events.h"
#include "pgcmk/log.h"
#include "pgcmk/pg.h"
#include "pgcmk/store.h"
#include "providers/postgres.h"

#define ACC_FLAG      "pgcmk.inaccessible"
#define ACC_DENIALS   "pgcmk.denials"
#define ACC_HBA       "pg_hba.conf"
#define ACC_HBA_ORIG  "pg_hba.conf.pgcmk-orig"
#define ACC_EXEMPT    "pgcmk_agent,pgcmk_replication"
#define ACC_HBA_SHOUT "# pgcmk: the server is Inaccessible"

static int acc_ext; /* 1: the server-side library is installed and used */
/* one change at a time: an event and the next one for the same database apply in order */
static pthread_mutex_t acc_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- what the database's row says ----------------------------------------------------------- */

struct acc_state {
    int lost;
    char code[96];
    char detail[1024];
    char hint[160];
    char primary[1024]; /* a self-managed instance: pg_tde's message (the flag's line 4) */
};

/* Copies s into out with line breaks as spaces (the flag is one field per line). */
static void
acc_one_line(char *out, size_t n, const char *s)
{
    size_t i;

    snprintf(out, n, "%s", s ? s : "");
    for (i = 0; out[i]; i++)
        if (out[i] == '\n' || out[i] == '\r')
            out[i] = ' ';
}

static int
acc_load(const char *db_id, struct acc_state *st, struct pgcmk_err *err)
{
    struct pg_db d;
    char detail[1024];
    int rc = pg_db_load(pgcmk_db(), db_id, &d, err), len;

    memset(st, 0, sizeof(*st));
    if (rc < 0)
        return -1;
    if (rc == 0) /* no such database (deleted): nothing to refuse */
        return 0;
    st->lost = d.access && strcmp(d.access, PG_ACCESS_LOST) == 0;
    if (st->lost) {
        acc_one_line(st->code, sizeof(st->code),
                     d.reason_code ? d.reason_code : pgcmk_err_code(PGCMK_E_PG_INACCESSIBLE));
        len = snprintf(detail, sizeof(detail), "%s:", st->code);
        if (d.vault && len < (int)sizeof(detail))
            len += snprintf(detail + len, sizeof(detail) - len, " vault '%s',", d.vault);
        if (d.key_name && len < (int)sizeof(detail))
            len += snprintf(detail + len, sizeof(detail) - len, " key '%s',", d.key_name);
        if (d.key_version && len < (int)sizeof(detail))
            len += snprintf(detail + len, sizeof(detail) - len, " version '%s',", d.key_version);
        if (d.principal_id && len < (int)sizeof(detail))
            len += snprintf(detail + len, sizeof(detail) - len, " principal '%s',", d.principal_id);
        if (len > 0 && len < (int)sizeof(detail) && detail[len - 1] == ',')
            detail[len - 1] = '.';
        if (d.reason && len < (int)sizeof(detail))
            snprintf(detail + len, sizeof(detail) - len, " %s", d.reason);
        acc_one_line(st->detail, sizeof(st->detail), detail);
        if (pg_selfmgd_id(db_id)) { /* pg_tde's words, not Azure's */
            json_t *p = d.provider ? json_loads(d.provider, 0, NULL) : NULL;
            const char *pn = json_string_value(json_object_get(p, "providerName"));

            const char *type = json_string_value(json_object_get(p, "type"));

            if (pn)
                snprintf(detail, sizeof(detail),
                         "failed to retrieve principal key \"%s\" from key provider \"%s\"",
                         d.key_name ? d.key_name : "", pn);
            else
                snprintf(detail, sizeof(detail),
                         "failed to retrieve principal key \"%s\" from its %s key provider",
                         d.key_name ? d.key_name : "", type ? type : "");
            acc_one_line(st->primary, sizeof(st->primary), detail);
            snprintf(st->hint, sizeof(st->hint), "%s",
                     "Restore the principal key's access in its key provider; logins are allowed "
                     "again once pgcmk can fetch it.");
            json_decref(p);
        } else
            snprintf(st->hint, sizeof(st->hint), "%s",
                     d.kind != PG_SERVER
                         ? "Restore the key's access in Azure Key Vault; the cluster recovers by "
                           "itself."
                     : strcmp(st->code, pgcmk_err_code(PGCMK_E_PG_REVALIDATION_REQUIRED)) == 0
                         ? "The key is accessible again: revalidate the key (re-create the server "
                           "key) to bring the server back."
                         : "Restore the key's access in Azure Key Vault, then revalidate the key.");
    }
    pg_db_release(&d);
    return 0;
}

/* ---- files of the data directory ------------------------------------------------------------ */

static void
acc_path(char *out, size_t n, const char *data_dir, const char *name)
{
    snprintf(out, n, "%s/%s", data_dir, name);
}

/* Writes path atomically (tmp + rename), owned by the PostgreSQL user with mode `mode`. */
static int
acc_write(const char *path, const char *text, mode_t mode, struct pgcmk_err *err)
{
    char tmp[PATH_MAX + 8];
    size_t len = strlen(text);
    ssize_t w;
    int fd;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        goto fail;
    w = write(fd, text, len);
    if (geteuid() == 0 && fchown(fd, pg_user_uid(), pg_user_gid()) != 0)
        w = -1;
    if (fchmod(fd, mode) != 0)
        w = -1;
    if (close(fd) != 0 || w != (ssize_t)len || rename(tmp, path) != 0) {
        unlink(tmp);
        goto fail;
    }
    return 0;
fail:
    pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot write %s: %s", path, strerror(errno));
    return -1;
}

static int
acc_unlink(const char *path, struct pgcmk_err *err)
{
    if (unlink(path) != 0 && errno != ENOENT) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot remove %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static const char *const acc_exempt[] = {"pgcmk_agent", "pgcmk_replication"};

/* Does a pg_hba user field (a comma list) name exempt roles only? */
static int
acc_exempt_users(const char *field)
{
    char buf[256], *save = NULL, *tok;
    int any = 0;
    size_t i;

    snprintf(buf, sizeof(buf), "%s", field);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        for (i = 0; i < PGCMK_ARRAY_LEN(acc_exempt) && strcmp(tok, acc_exempt[i]) != 0; i++)
            ;
        if (i == PGCMK_ARRAY_LEN(acc_exempt))
            return 0;
        any = 1;
    }
    return any;
}

char *
pg_access_hba_refusing(const char *orig, const char *code)
{
    size_t cap = strlen(orig) + 320, len = 0, n, i;
    char *out = pgcmk_xmalloc(cap), line[1024];
    const char *p = orig, *nl;

    /* the reason code in the comment: [A-Za-z0-9] only, so the comment stays one line */
    len = (size_t)snprintf(out, cap, "%s (", ACC_HBA_SHOUT);
    for (i = 0; code && code[i] && i < 96; i++)
        if ((code[i] >= 'A' && code[i] <= 'Z') || (code[i] >= 'a' && code[i] <= 'z') ||
            (code[i] >= '0' && code[i] <= '9'))
            out[len++] = code[i];
    len +=
        (size_t)snprintf(out + len, cap - len,
                         "): pgcmkd refuses every other login; the original is %s\n", ACC_HBA_ORIG);
    for (; *p; p = nl ? nl + 1 : p + n) {
        char type[32], db[64], user[256];

        nl = strchr(p, '\n');
        n = nl ? (size_t)(nl - p) : strlen(p);
        if (n >= sizeof(line)) /* not a line of pgcmkd's: it stays out */
            continue;
        memcpy(line, p, n);
        line[n] = 0;
        if (sscanf(line, " %31s %63s %255s", type, db, user) != 3 || type[0] == '#')
            continue;
        if (strcmp(db, "replication") == 0 || acc_exempt_users(user)) {
            memcpy(out + len, line, n); /* kept lines are a part of orig: they fit */
            len += n;
            out[len++] = '\n';
        }
    }
    snprintf(out + len, cap - len, "host all all all reject\n");
    return out;
}

static char *
acc_read(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (1 << 20) ||
        fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = pgcmk_xmalloc((size_t)n + 1);
    buf[fread(buf, 1, (size_t)n, f)] = 0;
    fclose(f);
    return buf;
}

/* 1 when path is a refusing pg_hba.conf of ours */
static int
acc_hba_is_ours(const char *path)
{
    char head[sizeof(ACC_HBA_SHOUT)] = {0};
    FILE *f = fopen(path, "re");
    size_t n;

    if (!f)
        return 0;
    n = fread(head, 1, sizeof(head) - 1, f);
    fclose(f);
    return n == sizeof(head) - 1 && memcmp(head, ACC_HBA_SHOUT, n) == 0;
}

/* Writes (or removes) the refusal of data_dir for st. *changed: whether PostgreSQL must reload
 * its configuration (pg_hba). */
static int
acc_files(const char *data_dir, const struct acc_state *st, int *changed, struct pgcmk_err *err)
{
    char flag[PATH_MAX], den[PATH_MAX], hba[PATH_MAX], orig[PATH_MAX];
    struct stat sb;
    int have_orig;

    *changed = 0;
    acc_path(flag, sizeof(flag), data_dir, ACC_FLAG);
    acc_path(den, sizeof(den), data_dir, ACC_DENIALS);
    acc_path(hba, sizeof(hba), data_dir, ACC_HBA);
    acc_path(orig, sizeof(orig), data_dir, ACC_HBA_ORIG);
    have_orig = stat(orig, &sb) == 0;
    if (have_orig && !acc_hba_is_ours(hba)) {
        /* the supervisor wrote a new pg_hba.conf since (at a start): the kept one is stale */
        if (acc_unlink(orig, err))
            return -1;
        have_orig = 0;
    }
    if (have_orig && (!st->lost || acc_ext)) { /* the original pg_hba back */
        if (rename(orig, hba) != 0) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot restore %s: %s", hba,
                          strerror(errno));
            return -1;
        }
        *changed = 1;
        have_orig = 0;
    }
    if (st->lost && acc_ext) {
        char *text = pgcmk_xasprintf("%s\n%s\n%s\n%s%s", st->code, st->detail, st->hint,
                                     st->primary, st->primary[0] ? "\n" : "");
        int rc = acc_write(flag, text, 0644, err);

        free(text);
        return rc;
    }
    if (st->lost) {
        char *cur, *text;
        int rc;

        if (!have_orig) { /* keep the original once: a refusing file is never saved over it */
            if (link(hba, orig) != 0) {
                pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot keep %s: %s", hba,
                              strerror(errno));
                return -1;
            }
        }
        cur = acc_read(orig);
        if (!cur) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot read %s: %s", orig, strerror(errno));
            return -1;
        }
        text = pg_access_hba_refusing(cur, st->code);
        rc = acc_write(hba, text, 0600, err);
        free(cur);
        free(text);
        *changed = rc == 0;
        return rc;
    }
    /* access ok: no flag, no record of a denial */
    return acc_unlink(flag, err) || acc_unlink(den, err) ? -1 : 0;
}

/* ---- the running instance ------------------------------------------------------------------- */

static int
acc_terminate(const char *db_id, struct pgcmk_err *err)
{
    const char *params[] = {ACC_EXEMPT};

    return pgcmk_pg_exec(db_id, "postgres",
                         "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
                         "AND (usename IS NULL OR usename <> ALL (string_to_array($1, ',')))",
                         params, 1, NULL, err);
}

static int
acc_reload(const char *db_id, struct pgcmk_err *err)
{
    return pgcmk_pg_exec(db_id, "postgres", "SELECT pg_reload_conf()", NULL, 0, NULL, err);
}

int
pgcmk_pg_access_apply(const char *db_id, struct pgcmk_err *err)
{
    struct pg_inst_info in;
    struct acc_state st;
    int rc = 0, changed = 0, atrest = pg_atrest_on() && !pg_selfmgd_id(db_id);
    int64_t t0 = pgcmk_wall_ms(), t_files = 0, t_term = 0;

    pthread_mutex_lock(&acc_mu);
    if (acc_load(db_id, &st, err)) {
        pthread_mutex_unlock(&acc_mu);
        return -1;
    }
    if (pg_inst_info(db_id, &in) != 0)
        goto out; /* no instance (yet): pg_access_prepare runs before its first start */
    if (!st.lost && atrest && in.pid == 0) {
        /* recovery on gocryptfs: mount and start; the start prepares the files */
        rc = pg_inst_start(db_id, err);
        goto out;
    }
    if (in.pid == 0 && atrest)
        goto out; /* stopped and unmounted: the next start prepares the files */
    rc = acc_files(in.data, &st, &changed, err);
    t_files = pgcmk_wall_ms();
    if (rc || in.pid == 0)
        goto out;
    if (changed)
        rc = acc_reload(db_id, err);
    if (rc == 0 && st.lost)
        rc = acc_terminate(db_id, err);
    t_term = pgcmk_wall_ms();
    if (rc == 0 && st.lost && atrest)
        rc = pg_inst_stop(db_id, err); /* the agent already wiped the DEK; stop unmounts */
out:
    pthread_mutex_unlock(&acc_mu);
    if (rc == 0)
        LOG_INFO("pg: %s: logins %s%s%s (files after %lld ms, sessions after %lld ms)", db_id,
                 st.lost ? "refused (" : "allowed", st.lost ? st.code : "", st.lost ? ")" : "",
                 (long long)(t_files ? t_files - t0 : -1), (long long)(t_term ? t_term - t0 : -1));
    return rc;
}

int
pg_access_prepare(const char *db_id, const char *data_dir, struct pgcmk_err *err)
{
    struct acc_state st;
    int changed;

    if (acc_load(db_id, &st, err))
        return -1;
    return acc_files(data_dir, &st, &changed, err);
}

void
pg_access_conf(char *buf, size_t n)
{
    size_t len = strnlen(buf, n);

    if (acc_ext && len < n)
        snprintf(buf + len, n - len,
                 "shared_preload_libraries = 'pgcmk'\npgcmk.exempt_roles = '%s'\n", ACC_EXEMPT);
}

void
pg_access_describe(const char *data_dir, json_t *out)
{
    char path[PATH_MAX], line[128], when[PGCMK_TIME_LEN];
    long long wall;
    int refused;
    FILE *f;

    acc_path(path, sizeof(path), data_dir, ACC_FLAG);
    refused = acc_ext ? access(path, F_OK) == 0 : 0;
    acc_path(path, sizeof(path), data_dir, ACC_HBA);
    refused = refused || acc_hba_is_ours(path);
    json_object_set_new(out, "logins", json_string(refused ? "refused" : "allowed"));
    json_object_set_new(out, "refusal", json_string(acc_ext ? "extension" : "pg_hba"));
    acc_path(path, sizeof(path), data_dir, ACC_DENIALS);
    f = refused ? fopen(path, "re") : NULL;
    if (!f)
        return;
    /* the library's line: wall-clock ms, role, database; told by the virtual clock */
    if (fgets(line, sizeof(line), f) && sscanf(line, "%lld", &wall) == 1 && wall > 0) {
        pgcmk_time_format(pgcmk_clock_now() - (pgcmk_wall_ms() - (int64_t)wall), when);
        json_object_set_new(out, "firstDenial", json_string(when));
    }
    fclose(f);
}

/* ---- the event ------------------------------------------------------------------------------ */

static void
acc_event(const struct pgcmk_event *ev, void *arg)
{
    struct pgcmk_err err = {0};

    (void)arg;
    if (ev->kind != PGCMK_EV_PG_ACCESS_CHANGED || !ev->resource_id ||
        !pgcmk_pg_has(ev->resource_id))
        return;
    if (pgcmk_pg_access_apply(ev->resource_id, &err))
        LOG_ERR("pg: %s: the access (%s) could not be applied: %s", ev->resource_id,
                ev->version ? ev->version : "?", err.message);
}

void
pg_access_start(void)
{
    char lib[PATH_MAX];
    const char *force = getenv("PGCMK_PG_REFUSAL");

    snprintf(lib, sizeof(lib), "%s/../lib/pgcmk.so", pg_bin_dir());
    acc_ext = access(lib, R_OK) == 0 && !(force && strcmp(force, "hba") == 0);
    LOG_INFO("pg: logins of Inaccessible servers are refused by %s",
             acc_ext ? "the pgcmk library" : "pg_hba (the pgcmk library is not installed)");
    if (pgcmk_events_subscribe(acc_event, NULL))
        LOG_ERR("pg: no room for the access subscriber: Inaccessible will not refuse logins");
}
