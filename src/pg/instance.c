/* instance.c - the real PostgreSQL instances: create (template copy, TLS, configuration, roles),
 * start (fork/exec `postgres -D` as the PostgreSQL user, ready = postmaster.pid's "ready"),
 * stop (fast, then quit, then kill), supervision (a crashed postmaster is started again),
 * adoption after a kill -9 of pgcmkd, drop, and pgcmk_pg_exec over the wire client. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pg/internal.h"
#include "pgcmk/clock.h"
#include "pgcmk/core.h"
#include "pgcmk/crypto.h"
#include "pgcmk/log.h"
#include "pgcmk/monitor.h"
#include "pgcmk/pg.h"
#include "pgcmk/pgwire.h"
#include "pgcmk/store.h"
#include "providers/postgres.h"

#define INST_READY_MS      15000  /* a start (crash recovery included) must be ready by then */
#define INST_STOP_FAST     5000   /* SIGINT (fast shutdown), then SIGQUIT (immediate) */
#define INST_STOP_QUIT     2000   /* then SIGKILL */
#define INST_EXEC_MS       30000  /* every read and write of pgcmk_pg_exec */
#define INST_RECOVERY_MS   120000 /* a restore replays its archive to the target by then */
#define INST_RETRY_MS      2000   /* a restart that failed is tried again after this */
#define INST_LOG_MAX       (4L * 1024 * 1024)
#define INST_AGENT         "pgcmk_agent"
#define INST_SPARE_SERVER  "spare.server"
#define INST_SPARE_CLUSTER "spare.cluster"

enum inst_state { ST_CREATING, ST_STARTING, ST_RUNNING, ST_STOPPED, ST_CRASHED, ST_RESTARTING };

static const char *const inst_state_names[] = {"starting", "starting", "running",
                                               "stopped",  "crashed",  "restarting"};

struct inst {
    struct inst *next;
    char db_id[512];
    char slug[64];
    char dir[PATH_MAX];
    char data[PATH_MAX];
    char sock[PATH_MAX];
    char dbname[64];
    char admin[128];
    int port;
    int cluster;
    int64_t created_ms;
    pid_t pid;
    enum inst_state state;
    int want_up;  /* 0: stopped on purpose, the supervisor leaves it down */
    int held;     /* stopped by its resource (<dir>/held): down until pgcmk_pg_hold(.., 0) */
    int busy;     /* a create/start/stop/drop owns it */
    int mounted;  /* at rest: the data directory is on its gocryptfs mount */
    int restarts; /* crashes the supervisor restarted */
    int64_t last_crash_ms;
    int64_t retry_at_ms; /* wall clock: a failed restart is tried again then */
    int fails;           /* failed starts in a row: the retry waits 2 s, 4 s, ... 64 s */
    int selfmgd;         /* a self-managed instance (selfmgd.c): superuser admin, pg_tde */
};

static pthread_mutex_t inst_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t inst_cv = PTHREAD_COND_INITIALIZER;
static struct inst *inst_head;
static pthread_t inst_sup;
static int inst_sup_running, inst_sup_stop;

/* ---- the list ------------------------------------------------------------------------------- */

static struct inst *
inst_find_locked(const char *db_id)
{
    for (struct inst *i = inst_head; i; i = i->next)
        if (pgcmk_streq_ci(i->db_id, db_id))
            return i;
    return NULL;
}

/* Waits until nobody works on db_id's instance, then owns it: NULL when db_id has none. */
static struct inst *
inst_claim(const char *db_id)
{
    struct inst *i;

    pthread_mutex_lock(&inst_mu);
    while ((i = inst_find_locked(db_id)) != NULL && i->busy)
        pthread_cond_wait(&inst_cv, &inst_mu);
    if (i)
        i->busy = 1;
    pthread_mutex_unlock(&inst_mu);
    return i;
}

static void
inst_release(struct inst *i)
{
    pthread_mutex_lock(&inst_mu);
    i->busy = 0;
    pthread_cond_broadcast(&inst_cv);
    pthread_mutex_unlock(&inst_mu);
}

static void
inst_set_state(struct inst *i, enum inst_state st, pid_t pid)
{
    pthread_mutex_lock(&inst_mu);
    i->state = st;
    i->pid = pid;
    pthread_mutex_unlock(&inst_mu);
}

static void
inst_unlink(struct inst *gone)
{
    pthread_mutex_lock(&inst_mu);
    for (struct inst **pp = &inst_head; *pp; pp = &(*pp)->next)
        if (*pp == gone) {
            *pp = gone->next;
            break;
        }
    pthread_cond_broadcast(&inst_cv);
    pthread_mutex_unlock(&inst_mu);
    free(gone);
}

static void
inst_paths(struct inst *i)
{
    pg_fmt(i->dir, sizeof(i->dir), "%s/%s", pg_root_dir(), i->slug);
    pg_fmt(i->sock, sizeof(i->sock), "%s/sock", i->dir);
    if (i->data[0] == 0)
        pg_fmt(i->data, sizeof(i->data), "%s/data", i->dir);
}

/* ---- the store row -------------------------------------------------------------------------- */

struct inst_row_op {
    const struct inst *i;
    int del;
};

static int
inst_row_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct inst_row_op *op = ctx;
    sqlite3_stmt *st;

    if (op->del) {
        st = pgcmk_db_stmt(db, PGCMK_STMT_PGI_DEL);
        sqlite3_bind_text(st, 1, op->i->db_id, -1, SQLITE_STATIC);
    } else {
        st = pgcmk_db_stmt(db, PGCMK_STMT_PGI_PUT);
        sqlite3_bind_text(st, 1, op->i->db_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, op->i->slug, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, op->i->port);
        sqlite3_bind_int(st, 4, op->i->cluster);
        sqlite3_bind_text(st, 5, op->i->dbname, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, op->i->admin, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, op->i->created_ms);
        sqlite3_bind_int(st, 8, op->i->restarts);
    }
    return pgcmk_db_each(db, st, NULL, NULL, "pg instance", err) < 0 ? -1 : 0;
}

static int
inst_row_write(const struct inst *i, int del, struct pgcmk_err *err)
{
    struct inst_row_op op = {.i = i, .del = del};

    return pgcmk_db_tx(pgcmk_db(), inst_row_tx, &op, err);
}

/* ---- files ---------------------------------------------------------------------------------- */

static int
inst_write_file(const char *path, const char *text, mode_t mode, struct pgcmk_err *err)
{
    char tmp[PATH_MAX + 8];
    size_t n = strlen(text);
    int fd;

    pg_fmt(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0 || write(fd, text, n) != (ssize_t)n || fchmod(fd, mode) ||
        (geteuid() == 0 && fchown(fd, pg_user_uid(), pg_user_gid())) || close(fd) ||
        rename(tmp, path)) {
        int e = errno;

        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "cannot write %.200s: %s", path,
                             strerror(e));
    }
    return 0;
}

static int
inst_mkdir(const char *path, mode_t mode, struct pgcmk_err *err)
{
    if ((mkdir(path, mode) && errno != EEXIST) || chmod(path, mode) || pg_chown(path))
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "mkdir %.200s: %s", path,
                             strerror(errno));
    return 0;
}

/* Appends a configuration string value: quotes doubled. */
static void
inst_conf_str(char *buf, size_t n, const char *key, const char *val)
{
    size_t o = strlen(buf);

    o += (size_t)snprintf(buf + o, o < n ? n - o : 0, "%s = '", key);
    for (; *val && o + 3 < n; val++) {
        if (*val == '\'')
            buf[o++] = '\'';
        buf[o++] = *val;
    }
    if (o + 3 < n) {
        buf[o++] = '\'';
        buf[o++] = '\n';
        buf[o] = 0;
    }
}

static int
inst_write_conf(const struct inst *i, struct pgcmk_err *err)
{
    char conf[8192], path[PATH_MAX + 32], tls[PATH_MAX + 32];
    static const char hba[] = "# pgcmkd: TLS only, SCRAM; pgcmkd itself on the unix socket\n"
                              "local all " INST_AGENT " trust\n"
                              "local replication " INST_AGENT " trust\n"
                              "hostnossl all all all reject\n"
                              "hostssl all all 127.0.0.1/32 scram-sha-256\n"
                              "hostssl all all ::1/128 scram-sha-256\n";

    pg_fmt(conf, sizeof(conf),
           "# written by pgcmkd at each start: do not edit\n"
           "port = %d\n"
           "listen_addresses = '127.0.0.1,::1'\n"
           "unix_socket_permissions = 0700\n"
           "ssl = on\n"
           "password_encryption = 'scram-sha-256'\n"
           "shared_buffers = 16MB\n"
           "max_connections = 20\n"
           "wal_level = replica\n"
           "max_wal_senders = 4\n"
           "max_replication_slots = 4\n"
           "max_worker_processes = 4\n"
           "autovacuum_max_workers = 1\n"
           "jit = off\n"
           "fsync = on\n"
           "synchronous_commit = on\n"
           "logging_collector = off\n"
           "log_line_prefix = '%%m [%%p] '\n",
           i->port);
    inst_conf_str(conf, sizeof(conf), "unix_socket_directories", i->sock);
    pg_fmt(tls, sizeof(tls), "%s/tls/server.crt", i->dir);
    inst_conf_str(conf, sizeof(conf), "ssl_cert_file", tls);
    pg_fmt(tls, sizeof(tls), "%s/tls/server.key", i->dir);
    inst_conf_str(conf, sizeof(conf), "ssl_key_file", tls);
    pg_access_conf(conf + strlen(conf), sizeof(conf) - strlen(conf));
    if (i->selfmgd)
        pg_selfmgd_conf(i->slug, conf + strlen(conf), sizeof(conf) - strlen(conf), conf);
    if (!i->selfmgd || pg_selfmgd_bound(i->db_id))
        pg_archive_conf(i->db_id, i->slug, conf + strlen(conf), sizeof(conf) - strlen(conf));
    if (strlen(conf) + 1 >= sizeof(conf))
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "postgresql.conf additions too long");
    pg_fmt(path, sizeof(path), "%s/pgcmk.conf", i->data);
    if (inst_write_file(path, conf, 0600, err))
        return -1;
    pg_fmt(path, sizeof(path), "%s/pg_hba.conf", i->data);
    return inst_write_file(path, hba, 0600, err);
}

static int
inst_write_cert(const struct inst *i, const struct pgcmk_pg_spec *s, struct pgcmk_err *err)
{
    struct pgcmk_client_cert c;
    char *sans, *data_dir, path[PATH_MAX + 32];
    int rc;

    {
        const char *f = s->fqdn && *s->fqdn ? s->fqdn : NULL;
        const char *a = s->alias && *s->alias ? s->alias : NULL;

        sans = pgcmk_xasprintf("%s%s%s%s%s%sDNS:localhost,IP:127.0.0.1,IP:::1", f ? "DNS:" : "",
                               f ? f : "", f ? "," : "", a ? "DNS:" : "", a ? a : "", a ? "," : "");
    }
    data_dir = pgcmk_xstrndup(pg_root_dir(), strlen(pg_root_dir()) - 3); /* DATA_DIR/pg */
    rc = pgcmk_tls_issue_server(data_dir, s->fqdn && *s->fqdn ? s->fqdn : i->slug, sans,
                                pgcmk_clock_now(), 3650, &c, err);
    free(data_dir);
    free(sans);
    if (rc)
        return -1;
    pg_fmt(path, sizeof(path), "%s/tls/server.crt", i->dir);
    rc = inst_write_file(path, c.cert_pem, 0644, err);
    pg_fmt(path, sizeof(path), "%s/tls/server.key", i->dir);
    if (rc == 0)
        rc = inst_write_file(path, c.key_pem, 0600, err);
    pgcmk_client_cert_release(&c);
    return rc;
}

/* The last FATAL or PANIC line of the instance's log (else its last line), for an error. */
static void
inst_log_tail(const struct inst *i, char *out, size_t n)
{
    char path[PATH_MAX + 32], buf[16384], *line, *save = NULL;
    ssize_t got = 0;
    int fd, fatal = 0;

    pg_fmt(out, n, "no message in its log");
    pg_fmt(path, sizeof(path), "%s/postgres.log", i->dir);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    if (end > (off_t)sizeof(buf) - 1)
        lseek(fd, end - (off_t)sizeof(buf) + 1, SEEK_SET);
    else
        lseek(fd, 0, SEEK_SET);
    got = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (got <= 0)
        return;
    buf[got] = 0;
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strstr(line, "FATAL:") || strstr(line, "PANIC:")) {
            pg_fmt(out, n, "%s", line);
            fatal = 1;
        } else if (!fatal) {
            pg_fmt(out, n, "%s", line);
        }
    }
}

/* ---- processes ------------------------------------------------------------------------------ */

static void
inst_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

/* Reads postmaster.pid of data: its pid (0 when none) and, in status, line 8. */
static pid_t
inst_pidfile(const char *data, char *status, size_t n, char *pdir, size_t pn)
{
    char path[PATH_MAX + 32], buf[1024], *save = NULL, *line;
    ssize_t got;
    int fd, ln = 0;
    pid_t pid = 0;

    if (status)
        status[0] = 0;
    if (pdir)
        pdir[0] = 0;
    pg_fmt(path, sizeof(path), "%s/postmaster.pid", data);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    got = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (got <= 0)
        return 0;
    buf[got] = 0;
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        ln++;
        if (ln == 1)
            pid = (pid_t)atol(line);
        else if (ln == 2 && pdir)
            pg_fmt(pdir, pn, "%s", line);
        else if (ln == 8 && status)
            pg_fmt(status, n, "%s", line);
    }
    return pid;
}

/* 1 when pid is a live (not zombie) process. */
static int
inst_alive(pid_t pid)
{
    char path[64], buf[256];
    FILE *f;
    int alive = 0;

    if (pid <= 0 || kill(pid, 0) != 0)
        return 0;
    pg_fmt(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return 1;
    if (fgets(buf, sizeof(buf), f)) {
        char *p = strrchr(buf, ')');

        alive = !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
    }
    fclose(f);
    return alive;
}

/* Stops a postmaster that is not our child (a killed pgcmkd's) when its pid file names it. */
static void
inst_stop_stranger(const char *data)
{
    char pdir[PATH_MAX], cmd[PATH_MAX + 64], path[64];
    pid_t pid = inst_pidfile(data, NULL, 0, pdir, sizeof(pdir));
    ssize_t got;
    int fd, waited = 0;

    if (pid <= 0 || !inst_alive(pid) || strcmp(pdir, data) != 0)
        return;
    pg_fmt(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return;
    got = read(fd, cmd, sizeof(cmd) - 1);
    close(fd);
    if (got <= 0)
        return;
    cmd[got] = 0;
    if (strstr(cmd, "postgres") == NULL)
        return;
    LOG_INFO("pg: stopping postmaster %d left on %s by a previous pgcmkd", (int)pid, data);
    kill(pid, SIGINT);
    while (inst_alive(pid)) {
        if (waited == INST_STOP_FAST)
            kill(pid, SIGQUIT);
        if (waited == INST_STOP_FAST + INST_STOP_QUIT)
            kill(pid, SIGKILL);
        inst_sleep_ms(5);
        waited += 5;
    }
}

/* Stops our child postmaster i->pid: fast, then immediate, then kill; reaps it. */
static void
inst_stop_child(pid_t pid)
{
    int waited = 0, status;

    if (pid <= 0)
        return;
    kill(pid, SIGINT);
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid || (r < 0 && errno == ECHILD))
            return;
        if (waited == INST_STOP_FAST)
            kill(pid, SIGQUIT);
        if (waited == INST_STOP_FAST + INST_STOP_QUIT)
            kill(pid, SIGKILL);
        inst_sleep_ms(2);
        waited += 2;
    }
}

static void
inst_rotate_log(const struct inst *i)
{
    char path[PATH_MAX + 32], old[PATH_MAX + 40];
    struct stat st;

    pg_fmt(path, sizeof(path), "%s/postgres.log", i->dir);
    if (stat(path, &st) == 0 && st.st_size > INST_LOG_MAX) {
        pg_fmt(old, sizeof(old), "%s.1", path);
        rename(path, old);
    }
}

/* Starts i's postmaster (configuration written first): its pid in *pid_out, *t0 when the start
 * began. The caller owns i (busy) and waits with inst_spawn_wait. */
static int
inst_spawn_begin(struct inst *i, pid_t *pid_out, int64_t *t0, struct pgcmk_err *err)
{
    char path[PATH_MAX + 32], prog[PATH_MAX + 16];
    int logfd;
    pid_t pid;

    *t0 = pgcmk_wall_ms();
    if (pg_atrest_on() && !i->selfmgd && !i->mounted) {
        if (pg_atrest_mount(i->db_id, i->dir, i->data, sizeof(i->data), err))
            return -1;
        i->mounted = 1;
    }
    if (!pg_port_free(i->port)) {
        int taken[1] = {i->port}, port = pg_port_pick(taken, 1);

        if (port == 0)
            return pgcmk_err_set(err, PGCMK_E_PGREAL_START, NULL, "no free port for the instance");
        LOG_INFO("pg %s: port %d is taken, now %d", i->slug, i->port, port);
        i->port = port;
        if (inst_row_write(i, 0, err))
            return -1;
    }
    if (inst_write_conf(i, err) || pg_access_prepare(i->db_id, i->data, err))
        return -1;
    inst_rotate_log(i);
    pg_fmt(path, sizeof(path), "%s/postgres.log", i->dir);
    logfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0 || (geteuid() == 0 && fchown(logfd, pg_user_uid(), pg_user_gid()))) {
        if (logfd >= 0)
            close(logfd);
        return pgcmk_err_set(err, PGCMK_E_PGREAL_START, NULL, "cannot open %.200s", path);
    }
    pg_fmt(prog, sizeof(prog), "%s/postgres", pg_bin_dir());
    inst_set_state(i, i->state == ST_CRASHED ? ST_RESTARTING : ST_STARTING, 0);
    pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)"postgres", (char *)"-D", i->data, NULL};

        if (pg_child_setup(-1, logfd, logfd) || setsid() < 0 || chdir(i->data))
            _exit(126);
        execv(prog, argv);
        _exit(127);
    }
    close(logfd);
    if (pid < 0)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_START, NULL, "fork: %s", strerror(errno));
    *pid_out = pid;
    return 0;
}

/* Waits until the postmaster pid of inst_spawn_begin is ready (or stops it). */
static int
inst_spawn_wait(struct inst *i, pid_t pid, int64_t t0, struct pgcmk_err *err)
{
    char status[64], why[512];
    int st;

    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);

        if (r == pid) {
            inst_log_tail(i, why, sizeof(why));
            inst_set_state(i, ST_CRASHED, 0);
            return pgcmk_err_set(err, PGCMK_E_PGREAL_START, NULL,
                                 "PostgreSQL did not start (exit %d): %.400s",
                                 WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), why);
        }
        if (inst_pidfile(i->data, status, sizeof(status), NULL, 0) == pid &&
            strncmp(status, "ready", 5) == 0)
            break;
        if (pgcmk_wall_ms() - t0 > INST_READY_MS) {
            inst_stop_child(pid);
            inst_log_tail(i, why, sizeof(why));
            inst_set_state(i, ST_CRASHED, 0);
            return pgcmk_err_set(err, PGCMK_E_PGREAL_START, NULL,
                                 "PostgreSQL was not ready after %d ms: %.400s", INST_READY_MS,
                                 why);
        }
        inst_sleep_ms(2);
    }
    inst_set_state(i, ST_RUNNING, pid);
    LOG_INFO("pg %s: postmaster %d ready on port %d in %lld ms", i->slug, (int)pid, i->port,
             (long long)(pgcmk_wall_ms() - t0));
    return 0;
}

/* Starts i's postmaster and waits until it is ready. The caller owns i (busy). */
static int
inst_spawn(struct inst *i, struct pgcmk_err *err)
{
    int64_t t0;
    pid_t pid;

    return inst_spawn_begin(i, &pid, &t0, err) || inst_spawn_wait(i, pid, t0, err) ? -1 : 0;
}

static void
inst_halt(struct inst *i)
{
    pid_t pid;

    pthread_mutex_lock(&inst_mu);
    pid = i->pid;
    i->want_up = 0;
    pthread_mutex_unlock(&inst_mu);
    inst_stop_child(pid);
    inst_set_state(i, ST_STOPPED, 0);
    if (i->mounted) {
        pg_atrest_unmount(i->db_id, i->dir);
        i->mounted = 0;
    }
}

/* ---- roles ---------------------------------------------------------------------------------- */

static int
inst_exec(const struct inst *i, const char *dbname, const char *sql, const char *const *params,
          int nparams, json_t **rows, struct pgcmk_err *err)
{
    char path[PATH_MAX + 32];

    pg_fmt(path, sizeof(path), "%s/.s.PGSQL.%d", i->sock, i->port);
    return pgwire_query(path, INST_AGENT, dbname ? dbname : i->dbname, sql, params, nparams,
                        INST_EXEC_MS, rows, err);
}

/* The SCRAM-SHA-256 verifier of password with a random salt (heap, pgcmk_secret_free it): NULL
 * with err on a failure. */
static char *
inst_verifier(const char *password, struct pgcmk_err *err)
{
    unsigned char salt[16];
    char *v = NULL;

    if (pgcmk_random(salt, sizeof(salt)) || (v = pgwire_scram_verifier(password, salt)) == NULL)
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot compute a SCRAM verifier");
    return v;
}

/* "ALTER ROLE "login" PASSWORD '<verifier>'" style statements: prefix + verifier + suffix. */
static int
inst_exec_verifier(const struct inst *i, const char *prefix, const char *password,
                   const char *suffix, struct pgcmk_err *err)
{
    char *v, *sql;
    int rc;

    if ((v = inst_verifier(password, err)) == NULL)
        return -1;
    sql = pgcmk_xasprintf("%s PASSWORD '%s'%s", prefix, v, suffix);
    rc = inst_exec(i, "postgres", sql, NULL, 0, NULL, err);
    pgcmk_secret_free(sql, strlen(sql));
    pgcmk_secret_free(v, strlen(v));
    return rc;
}

/* The admin role with Azure's rights, owning the default database: one connection, one Query
 * message (one transaction) when the default database exists (a server's postgres, a cluster
 * made from the clusters' template); else CREATE DATABASE follows as a second message (it
 * cannot run inside a transaction). */
static int
inst_make_roles(const struct inst *i, const char *password, int has_db, struct pgcmk_err *err)
{
    char path[PATH_MAX + 32], *q, *db, *v, *script[2];
    int rc, commands = 0;

    if ((v = inst_verifier(password, err)) == NULL)
        return -1;
    q = pgwire_quote_ident(i->admin);
    db = pgwire_quote_ident(i->dbname);
    script[0] = pgcmk_xasprintf("CREATE ROLE %s PASSWORD '%s' %s; "
                                "GRANT pg_monitor, pg_signal_backend TO %s%s%s%s%s",
                                q, v, i->selfmgd ? "LOGIN SUPERUSER" : "LOGIN CREATEDB CREATEROLE",
                                q, has_db ? "; ALTER DATABASE " : "", has_db ? db : "",
                                has_db ? " OWNER TO " : "", has_db ? q : "");
    script[1] = pgcmk_xasprintf("CREATE DATABASE %s OWNER %s", db, q);
    pg_fmt(path, sizeof(path), "%s/.s.PGSQL.%d", i->sock, i->port);
    /* on the default database when it exists: this first connection builds its relcache init
     * file, so the admin's first login does not */
    rc = pgwire_script(path, INST_AGENT, has_db ? i->dbname : "postgres",
                       (const char *const *)script, has_db ? 1 : 2, INST_EXEC_MS, &commands, err);
    if (rc == 0 && commands != 3) /* CREATE ROLE, GRANT, ALTER or CREATE DATABASE */
        rc = pgcmk_err_set(err, PGCMK_E_PGREAL_SQL, NULL,
                           "the admin role's statements completed %d commands, not 3", commands);
    pgcmk_secret_free(script[0], strlen(script[0]));
    free(script[1]);
    pgcmk_secret_free(v, strlen(v));
    free(db);
    free(q);
    return rc;
}

/* ---- spare directories ----------------------------------------------------------------------
 * A background thread keeps one ready <slug>/ layout per kind under the pg root: spare.server
 * (data = a copy of the template) and spare.cluster (a copy of the clusters' template, which it
 * makes first): sock/ and tls/ made, all the PostgreSQL user's. A new server or cluster renames
 * its kind's spare into place (one rename instead of a 39 MB copy) and the thread makes another;
 * when there is none (a burst of creates, or before the first is made) the create copies the
 * template as before. Not used at rest (the data goes into a gocryptfs mount) nor for restores
 * and replicas. Names with a dot are never slugs; the stray scan keeps the finished spares, a
 * *.tmp one (a killed pgcmkd's) is removed. The thread starts working at the first create (a
 * daemon that creates nothing, as many tests' do, pays nothing): that create copies, the next
 * ones rename. It and its children (cp, postgres --single) run at nice 10: the daemon's own
 * work comes first, and it waits while a restore or replica is being made (their I/O). */

static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t spare_cv = PTHREAD_COND_INITIALIZER;
static pthread_t spare_th;
static int spare_running, spare_stop, spare_kick;
static int spare_hold; /* restores and replicas being made: their I/O first, no refill */

/* +1 / -1 around a restore or replica's create. */
static void
spare_hold_add(int d)
{
    pthread_mutex_lock(&spare_mu);
    spare_hold += d;
    pthread_cond_broadcast(&spare_cv);
    pthread_mutex_unlock(&spare_mu);
}

/* In the spare thread: waits while a restore or replica is being made. 1 when stopping. */
static int
spare_wait_turn(void)
{
    int stop;

    pthread_mutex_lock(&spare_mu);
    while (!spare_stop && spare_hold > 0)
        pthread_cond_wait(&spare_cv, &spare_mu);
    stop = spare_stop;
    pthread_mutex_unlock(&spare_mu);
    return stop;
}

static void
spare_path(int cluster, char *out, size_t n)
{
    pg_fmt(out, n, "%s/%s", pg_root_dir(), cluster ? INST_SPARE_CLUSTER : INST_SPARE_SERVER);
}

/* Makes the kind's spare when it is missing and its template exists: 0, or -1 with err. */
static int
spare_fill(int cluster, struct pgcmk_err *err)
{
    char final[PATH_MAX], tmp[PATH_MAX + 8], p[PATH_MAX + 16], src[PATH_MAX + 8];
    const char *tpl = cluster ? pg_cluster_template_dir() : pg_template_dir();
    struct stat st;
    int64_t t0 = pgcmk_wall_ms();

    spare_path(cluster, final, sizeof(final));
    if (tpl == NULL || lstat(final, &st) == 0)
        return 0;
    pg_fmt(tmp, sizeof(tmp), "%s.tmp", final);
    pg_fmt(src, sizeof(src), "%s/.", tpl);
    if (pg_rmtree(tmp))
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "cannot remove %.200s", tmp);
    if (inst_mkdir(tmp, 0755, err))
        return -1;
    pg_fmt(p, sizeof(p), "%s/sock", tmp);
    if (inst_mkdir(p, 0700, err))
        return -1;
    pg_fmt(p, sizeof(p), "%s/tls", tmp);
    if (inst_mkdir(p, 0700, err))
        return -1;
    pg_fmt(p, sizeof(p), "%s/data", tmp);
    if (inst_mkdir(p, 0700, err))
        return -1;
    {
        char *argv[] = {(char *)"cp", (char *)"-a", src, p, NULL};

        if (pg_run("/bin/cp", argv, -1, -1, tmp, err))
            return -1;
    }
    if (rename(tmp, final))
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "rename %.200s: %s", tmp,
                             strerror(errno));
    LOG_DEBUG("pg: %s made in %lld ms", final, (long long)(pgcmk_wall_ms() - t0));
    return 0;
}

static void *
spare_main(void *arg)
{
    (void)arg;
    setpriority(PRIO_PROCESS, (id_t)gettid(), 10); /* this thread and what it forks */
    pthread_mutex_lock(&spare_mu);
    while (!spare_stop && !spare_kick) /* nothing before the first create */
        pthread_cond_wait(&spare_cv, &spare_mu);
    while (!spare_stop) {
        struct pgcmk_err e;
        int failed;

        spare_kick = 0;
        pthread_mutex_unlock(&spare_mu);
        if (spare_wait_turn())
            return NULL; /* stopping (the mutex is not held) */
        failed = spare_fill(0, &e);
        if (failed)
            LOG_WARN("pg: no spare server directory: %s", e.message);
        if (!failed && pg_cluster_template_dir() == NULL && !spare_wait_turn() &&
            pg_cluster_template(&e)) {
            LOG_WARN("pg: no cluster template: %s", e.message);
            failed = 1;
        }
        if (!failed && !spare_wait_turn() && spare_fill(1, &e)) {
            LOG_WARN("pg: no spare cluster directory: %s", e.message);
            failed = 1;
        }
        pthread_mutex_lock(&spare_mu);
        if (failed && !spare_stop && !spare_kick) { /* a full disk: not in a loop */
            struct timespec dl = pgcmk_deadline(CLOCK_REALTIME, 10000);

            pthread_cond_timedwait(&spare_cv, &spare_mu, &dl);
        }
        while (!spare_stop && !spare_kick && !failed)
            pthread_cond_wait(&spare_cv, &spare_mu);
    }
    pthread_mutex_unlock(&spare_mu);
    return NULL;
}

/* Moves the kind's spare to dir (which must not exist): 1 when it did, 0 when there was none
 * (the caller makes dir itself). The thread is told to make another either way. */
static int
spare_take(int cluster, const char *dir)
{
    char path[PATH_MAX];
    int took;

    if (!spare_running)
        return 0;
    spare_path(cluster, path, sizeof(path));
    took = rename(path, dir) == 0;
    pthread_mutex_lock(&spare_mu);
    spare_kick = 1;
    pthread_cond_signal(&spare_cv);
    pthread_mutex_unlock(&spare_mu);
    return took;
}

static void
spare_start(void)
{
    const char *env = getenv("PGCMK_PG_SPARES");

    if (pg_atrest_on() || (env && strcmp(env, "0") == 0)) /* 0: every create copies */
        return;
    spare_stop = 0;
    spare_kick = 0;
    if (pthread_create(&spare_th, NULL, spare_main, NULL) == 0)
        spare_running = 1;
    else
        LOG_WARN("pg: no spare thread: every create copies the template");
}

static void
spare_shutdown(void)
{
    if (!spare_running)
        return;
    pthread_mutex_lock(&spare_mu);
    spare_stop = 1;
    pthread_cond_signal(&spare_cv);
    pthread_mutex_unlock(&spare_mu);
    pthread_join(spare_th, NULL); /* after its copy or single-user run in progress */
    spare_running = 0;
}

/* ---- create --------------------------------------------------------------------------------- */

static void
inst_make_slug(const char *db_id, char *out, size_t n)
{
    static const char *const reserved[] = {
        "template",        "template.tmp",    "run", "archive", "backups", PG_CLUSTER_TEMPLATE,
        INST_SPARE_SERVER, INST_SPARE_CLUSTER};
    const char *name = strrchr(db_id, '/');
    char base[41];
    size_t o = 0;

    name = name ? name + 1 : db_id;
    for (; *name && o < sizeof(base) - 1; name++) {
        char c = *name;

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        base[o++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '-';
    }
    base[o] = 0;
    if (o == 0)
        pg_fmt(base, sizeof(base), "db");
    for (int k = 1;; k++) {
        struct stat st;
        char path[PATH_MAX + 64];
        int clash = 0;

        if (k == 1)
            pg_fmt(out, n, "%s", base);
        else
            pg_fmt(out, n, "%s-%d", base, k);
        for (size_t r = 0; r < PGCMK_ARRAY_LEN(reserved); r++)
            clash |= strcmp(out, reserved[r]) == 0;
        for (struct inst *i = inst_head; i && !clash; i = i->next)
            clash = strcmp(i->slug, out) == 0;
        pg_fmt(path, sizeof(path), "%s/%s", pg_root_dir(), out);
        if (!clash && lstat(path, &st) != 0)
            return;
    }
}

/* Reserves db_id's entry (busy) with a slug and a port: NULL with err when it cannot. */
static struct inst *
inst_reserve(const struct pgcmk_pg_spec *s, struct pgcmk_err *err)
{
    struct inst *i;
    int taken[1024];
    size_t nt = 0, count = 0;
    char path[PATH_MAX + 32];

    pthread_mutex_lock(&inst_mu);
    if (inst_find_locked(s->db_id)) {
        pthread_mutex_unlock(&inst_mu);
        pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL, "%.200s has a PostgreSQL instance already",
                      s->db_id);
        return NULL;
    }
    for (i = inst_head; i; i = i->next) {
        count++;
        if (nt < PGCMK_ARRAY_LEN(taken))
            taken[nt++] = i->port;
    }
    if ((int)count >= pg_max_instances()) {
        pthread_mutex_unlock(&inst_mu);
        pgcmk_err_set(err, PGCMK_E_PGREAL_LIMIT, NULL,
                      "%zu real PostgreSQL instances run already (--pg-max-instances %d): delete "
                      "a server or raise the cap",
                      count, pg_max_instances());
        return NULL;
    }
    i = pgcmk_xcalloc(1, sizeof(*i));
    pg_fmt(i->db_id, sizeof(i->db_id), "%s", s->db_id);
    inst_make_slug(s->db_id, i->slug, sizeof(i->slug));
    inst_paths(i);
    i->port = pg_port_pick(taken, nt);
    i->cluster = s->cluster;
    i->selfmgd = s->self_managed;
    pg_fmt(i->dbname, sizeof(i->dbname), "%s", s->cluster ? "citus" : "postgres");
    pg_fmt(i->admin, sizeof(i->admin), "%s", s->admin_login ? s->admin_login : "");
    i->created_ms = pgcmk_clock_now();
    i->state = ST_CREATING;
    i->want_up = 1;
    i->busy = 1;
    pg_fmt(path, sizeof(path), "%s/.s.PGSQL.65535", i->sock);
    if (i->port == 0 || strlen(path) >= 108) {
        pthread_mutex_unlock(&inst_mu);
        if (i->port == 0)
            pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                          "no free port for a PostgreSQL instance (--pg-ports)");
        else
            pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                          "the data directory's path is too long for PostgreSQL's unix socket "
                          "(%.200s): use a shorter --data-dir",
                          path);
        free(i);
        return NULL;
    }
    i->next = inst_head;
    inst_head = i;
    pthread_mutex_unlock(&inst_mu);
    return i;
}

/* Fills i->data: the template's copy (a cluster's: the clusters' template when it is made;
 * *has_db then 1), or the source's restore/replica (archive.c). */
static int
inst_fill(struct inst *i, const struct pgcmk_pg_spec *s, int *has_db, struct pgcmk_err *err)
{
    char src[PATH_MAX + 8];
    const char *tpl = s->cluster ? pg_cluster_template_dir() : NULL;

    *has_db = !s->cluster || tpl != NULL;
    if (pg_atrest_on() && !i->selfmgd) {
        if (pg_atrest_mount(i->db_id, i->dir, i->data, sizeof(i->data), err))
            return -1;
        i->mounted = 1;
    } else if (inst_mkdir(i->data, 0700, err)) {
        return -1;
    }
    if (s->source_id && *s->source_id)
        return pg_archive_fill(s, i->data, err);
    pg_fmt(src, sizeof(src), "%s/.", tpl ? tpl : pg_template_dir());
    {
        char *argv[] = {(char *)"cp", (char *)"-a", src, i->data, NULL};

        return pg_run("/bin/cp", argv, -1, -1, i->dir, err) ? -1 : 0;
    }
}

/* i's directory with its data, sock/ and tls/ (the certificate written): a spare renamed into
 * place for a new server or cluster, else made here and filled by inst_fill. *has_db: the
 * default database exists already. */
static int
inst_prepare(struct inst *i, const struct pgcmk_pg_spec *s, int *has_db, struct pgcmk_err *err)
{
    char tls[PATH_MAX + 8];
    int restore = s->source_id && *s->source_id, took;

    took = !restore && !pg_atrest_on() && spare_take(s->cluster, i->dir);
    if (took) {
        *has_db = 1;
        LOG_DEBUG("pg %s: a spare directory taken", i->slug);
        return inst_write_cert(i, s, err);
    }
    pg_fmt(tls, sizeof(tls), "%s/tls", i->dir);
    if (inst_mkdir(i->dir, 0755, err) || inst_mkdir(i->sock, 0700, err) ||
        inst_mkdir(tls, 0700, err) || inst_write_cert(i, s, err))
        return -1;
    return inst_fill(i, s, has_db, err);
}

static int inst_create(const struct pgcmk_pg_spec *s, struct pgcmk_err *err);

int
pgcmk_pg_create(const struct pgcmk_pg_spec *s, struct pgcmk_err *err)
{
    int heavy = s->source_id && *s->source_id, rc;

    if (heavy)
        spare_hold_add(1);
    rc = inst_create(s, err);
    if (heavy)
        spare_hold_add(-1);
    return rc;
}

static int
inst_create(const struct pgcmk_pg_spec *s, struct pgcmk_err *err)
{
    struct inst *i;
    int64_t t0 = pgcmk_wall_ms(), t1, t2, t3, t_start;
    pid_t pid;
    int restore = s->source_id && *s->source_id, has_db = 1;
    int replica = restore && s->relation && strcmp(s->relation, "restore") != 0;

    if (!pgcmk_pg_real())
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                             "the daemon does not run with --pg-mode real");
    if (!restore && (s->admin_login == NULL || *s->admin_login == 0 || s->admin_password == NULL))
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, NULL,
                             "a new PostgreSQL instance needs the administrator login and "
                             "password");
    if ((i = inst_reserve(s, err)) == NULL)
        return -1;
    if (inst_prepare(i, s, &has_db, err))
        goto fail;
    t1 = pgcmk_wall_ms();
    /* the row is written while the postmaster starts (a kill -9 before it leaves a directory
     * without a row: the next start stops its postmaster and removes it) */
    if (inst_spawn_begin(i, &pid, &t_start, err))
        goto fail;
    if (inst_row_write(i, 0, err)) {
        inst_stop_child(pid);
        inst_set_state(i, ST_STOPPED, 0);
        goto fail;
    }
    t2 = pgcmk_wall_ms();
    if (inst_spawn_wait(i, pid, t_start, err))
        goto fail;
    t3 = pgcmk_wall_ms();
    if ((!restore && inst_make_roles(i, s->admin_password, has_db, err)) ||
        (restore && !replica && pg_archive_wait_promoted(i->db_id, INST_RECOVERY_MS, err)))
        goto fail;
    LOG_INFO("pg %s: accepting logins %lld ms after the create began (directory %lld ms, start "
             "and row %lld + %lld ms, roles %lld ms)",
             i->slug, (long long)(pgcmk_wall_ms() - t0), (long long)(t1 - t0), (long long)(t2 - t1),
             (long long)(t3 - t2), (long long)(pgcmk_wall_ms() - t3));
    if (!replica && !i->selfmgd && pg_archive_backup(i->db_id, err))
        goto fail;
    pthread_mutex_lock(&inst_mu);
    i->busy = 0;
    pthread_cond_broadcast(&inst_cv);
    pthread_mutex_unlock(&inst_mu);
    LOG_INFO("pg %s: created for %s in %lld ms (port %d)", i->slug, i->db_id,
             (long long)(pgcmk_wall_ms() - t0), i->port);
    return 0;
fail:
    LOG_WARN("pg %s: create failed: %s", i->slug, err ? err->message : "");
    inst_halt(i);
    pg_rmtree(i->dir);
    pg_archive_drop(i->db_id);
    {
        struct pgcmk_err e2;

        (void)inst_row_write(i, 1, &e2);
    }
    inst_unlink(i);
    return -1;
}

int
pgcmk_pg_drop(const char *db_id, struct pgcmk_err *err)
{
    struct inst *i;

    if (!pgcmk_pg_real() || (i = inst_claim(db_id)) == NULL) {
        if (pgcmk_pg_real())
            pg_archive_drop(db_id);
        return 0;
    }
    inst_halt(i);
    if (pg_rmtree(i->dir))
        LOG_WARN("pg %s: %s is not fully removed", i->slug, i->dir);
    pg_archive_drop(db_id);
    if (inst_row_write(i, 1, err)) {
        inst_release(i);
        return -1;
    }
    LOG_INFO("pg %s: dropped", i->slug);
    inst_unlink(i);
    return 0;
}

/* ---- stop, start, restart, password, promote ------------------------------------------------ */

int
pg_inst_stop(const char *db_id, struct pgcmk_err *err)
{
    struct inst *i = inst_claim(db_id);

    if (i == NULL)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_DOWN, NULL, "%.200s has no instance", db_id);
    inst_halt(i);
    inst_release(i);
    return 0;
}

int
pg_inst_start(const char *db_id, struct pgcmk_err *err)
{
    struct inst *i = inst_claim(db_id);
    int rc = 0;

    if (i == NULL)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_DOWN, NULL, "%.200s has no instance", db_id);
    if (i->held) { /* a stopped cluster stays down until its start */
        inst_release(i);
        return 0;
    }
    pthread_mutex_lock(&inst_mu);
    i->want_up = 1;
    pthread_mutex_unlock(&inst_mu);
    if (i->state != ST_RUNNING)
        rc = inst_spawn(i, err);
    inst_release(i);
    return rc;
}

int
pgcmk_pg_hold(const char *db_id, int held, struct pgcmk_err *err)
{
    struct inst *i = inst_claim(db_id);
    char mark[PATH_MAX + 8];

    if (i == NULL)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_DOWN, NULL, "%.200s has no instance", db_id);
    pg_fmt(mark, sizeof(mark), "%s/held", i->dir);
    if (held && inst_write_file(mark, "stopped by its resource\n", 0644, err)) {
        inst_release(i);
        return -1;
    }
    if (!held)
        (void)unlink(mark);
    i->held = held;
    if (held)
        inst_halt(i);
    inst_release(i);
    return held ? 0 : pg_inst_start(db_id, err);
}

int
pgcmk_pg_restart(const char *db_id, struct pgcmk_err *err)
{
    struct inst *i = inst_claim(db_id);
    int rc;

    if (i == NULL)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_DOWN, NULL, "%.200s has no instance", db_id);
    inst_halt(i);
    pthread_mutex_lock(&inst_mu);
    i->want_up = 1;
    pthread_mutex_unlock(&inst_mu);
    rc = inst_spawn(i, err);
    inst_release(i);
    return rc;
}

/* Copies what pgcmk_pg_exec needs: 0, or -1 (DOWN) when db_id has no running instance. */
static int
inst_snapshot(const char *db_id, struct inst *out, struct pgcmk_err *err)
{
    struct inst *i;

    pthread_mutex_lock(&inst_mu);
    i = inst_find_locked(db_id);
    if (i)
        *out = *i;
    pthread_mutex_unlock(&inst_mu);
    if (i == NULL)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_DOWN, NULL, "%.200s has no PostgreSQL instance",
                             db_id);
    if (out->state != ST_RUNNING)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_DOWN, NULL,
                             "the PostgreSQL instance of %.200s is %s", db_id,
                             inst_state_names[out->state]);
    return 0;
}

int
pgcmk_pg_set_password(const char *db_id, const char *login, const char *password,
                      struct pgcmk_err *err)
{
    struct inst i;
    char *q, *prefix;
    int rc;

    if (!pgcmk_pg_real())
        return 0;
    if (inst_snapshot(db_id, &i, err))
        return -1;
    q = pgwire_quote_ident(login && *login ? login : i.admin);
    prefix = pgcmk_xasprintf("ALTER ROLE %s", q);
    rc = inst_exec_verifier(&i, prefix, password, "", err);
    free(prefix);
    free(q);
    return rc;
}

int
pgcmk_pg_promote(const char *db_id, struct pgcmk_err *err)
{
    if (pgcmk_pg_exec(db_id, "postgres", "SELECT pg_promote(true, 30)", NULL, 0, NULL, err))
        return -1;
    return pg_archive_promoted(db_id, err);
}

int
pgcmk_pg_exec(const char *db_id, const char *dbname, const char *sql, const char *const *params,
              int nparams, json_t **rows, struct pgcmk_err *err)
{
    struct inst i;

    if (rows)
        *rows = NULL;
    if (!pgcmk_pg_real() || inst_snapshot(db_id, &i, err))
        return pgcmk_pg_real() ? -1
                               : pgcmk_err_set(err, PGCMK_E_PGREAL_DOWN, NULL,
                                               "the daemon does not run with --pg-mode real");
    return inst_exec(&i, dbname, sql, params, nparams, rows, err);
}

/* ---- describe, info ------------------------------------------------------------------------- */

int
pgcmk_pg_has(const char *db_id)
{
    int has;

    pthread_mutex_lock(&inst_mu);
    has = inst_find_locked(db_id) != NULL;
    pthread_mutex_unlock(&inst_mu);
    return has;
}

int
pg_inst_info(const char *db_id, struct pg_inst_info *out)
{
    struct inst *i;

    pthread_mutex_lock(&inst_mu);
    i = inst_find_locked(db_id);
    if (i) {
        memset(out, 0, sizeof(*out));
        pg_fmt(out->slug, sizeof(out->slug), "%s", i->slug);
        pg_fmt(out->dir, sizeof(out->dir), "%s", i->dir);
        pg_fmt(out->data, sizeof(out->data), "%s", i->data);
        pg_fmt(out->sock, sizeof(out->sock), "%s", i->sock);
        pg_fmt(out->dbname, sizeof(out->dbname), "%s", i->dbname);
        out->port = i->port;
        out->pid = i->pid;
        out->cluster = i->cluster;
    }
    pthread_mutex_unlock(&inst_mu);
    return i ? 0 : -1;
}

int
pg_inst_db_id(const char *slug, char *db_id, size_t n)
{
    int found = -1;

    pthread_mutex_lock(&inst_mu);
    for (struct inst *i = inst_head; i; i = i->next)
        if (strcmp(i->slug, slug) == 0) {
            pg_fmt(db_id, n, "%s", i->db_id);
            found = 0;
            break;
        }
    pthread_mutex_unlock(&inst_mu);
    return found;
}

json_t *
pgcmk_pg_describe(const char *db_id)
{
    struct inst i;
    char t[PGCMK_TIME_LEN];
    json_t *o, *arch;

    pthread_mutex_lock(&inst_mu);
    if (inst_find_locked(db_id) == NULL) {
        pthread_mutex_unlock(&inst_mu);
        return NULL;
    }
    i = *inst_find_locked(db_id);
    pthread_mutex_unlock(&inst_mu);
    o = json_pack("{s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "mode", "real",
                  "state", inst_state_names[i.state], "pid", (int)i.pid, "port", i.port, "host",
                  "127.0.0.1", "dataDirectory", i.data, "dbname", i.dbname, "adminLogin", i.admin,
                  "slug", i.slug, "restarts", i.restarts, "atRest",
                  pg_atrest_on() ? "gocryptfs" : "none");
    pg_access_describe(i.data, o);
    arch = pg_archive_describe(i.db_id);
    if (arch && json_object_get(arch, "earliestRestoreTime"))
        json_object_set(o, "earliestRestoreTime", json_object_get(arch, "earliestRestoreTime"));
    json_object_set_new(o, "archive", arch ? arch : json_null());
    if (i.last_crash_ms) {
        pgcmk_time_format(i.last_crash_ms, t);
        json_object_set_new(o, "lastCrash", json_string(t));
    } else {
        json_object_set_new(o, "lastCrash", json_null());
    }
    return o;
}

/* ---- supervision ---------------------------------------------------------------------------- */

/* Resource Health around a crash: Unavailable while the supervisor starts the postmaster again,
 * Available once it is back unless the database lost its key (that state is the reconciler's). */
static void
inst_health(const struct inst *i, int up)
{
    struct pgcmk_err e;
    struct pg_db d;

    if (up) {
        int rc = pg_db_load(pgcmk_db(), i->db_id, &d, &e), ok;

        if (rc <= 0)
            return;
        ok = d.access == NULL || strcmp(d.access, PG_ACCESS_LOST) != 0;
        pg_db_release(&d);
        if (!ok)
            return;
    }
    if (pgcmk_health_set(NULL, i->db_id, up ? "Available" : "Unavailable",
                         up ? "Available" : "The server is restarting",
                         up ? NULL
                            : "The server's PostgreSQL process stopped unexpectedly; the platform "
                              "is starting it again.",
                         up ? NULL : "Platform Initiated", &e))
        LOG_WARN("pg %s: health not recorded: %s", i->slug, e.message);
}

static void
inst_save_restarts(const struct inst *i)
{
    struct pgcmk_err e;

    if (inst_row_write(i, 0, &e))
        LOG_WARN("pg %s: restart count not saved: %s", i->slug, e.message);
}

/* A start failed (a missing key at rest, a broken data directory): try again later, less often
 * each time. The caller owns i. */
static void
inst_retry_later(struct inst *i)
{
    i->fails = i->fails < 5 ? i->fails + 1 : 6;
    i->retry_at_ms = pgcmk_wall_ms() + ((int64_t)INST_RETRY_MS << (i->fails - 1));
}

/* One pass: finds a crashed postmaster (or one whose restart failed) and starts it. Returns
 * the instance it worked on, busy, or NULL. */
static struct inst *
inst_sup_pass(int *crashed_now)
{
    int64_t now = pgcmk_wall_ms();
    struct inst *i;

    *crashed_now = 0;
    pthread_mutex_lock(&inst_mu);
    for (i = inst_head; i; i = i->next) {
        int st;

        if (i->busy || !i->want_up)
            continue;
        if (i->state == ST_RUNNING && i->pid > 0 && waitpid(i->pid, &st, WNOHANG) == i->pid) {
            LOG_WARN("pg %s: postmaster %d ended (%s %d): restarting it", i->slug, (int)i->pid,
                     WIFEXITED(st) ? "exit" : "signal",
                     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            i->state = ST_CRASHED;
            i->pid = 0;
            i->restarts++;
            i->last_crash_ms = pgcmk_clock_now();
            i->busy = 1;
            *crashed_now = 1;
            break;
        }
        if (i->state == ST_CRASHED && now >= i->retry_at_ms) {
            i->busy = 1;
            break;
        }
    }
    pthread_mutex_unlock(&inst_mu);
    return i;
}

static void *
inst_sup_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&inst_mu);
    while (!inst_sup_stop) {
        struct timespec dl = pgcmk_deadline(CLOCK_REALTIME, 100);
        struct inst *i;
        int crashed;

        pthread_cond_timedwait(&inst_cv, &inst_mu, &dl);
        if (inst_sup_stop)
            break;
        pthread_mutex_unlock(&inst_mu);
        while ((i = inst_sup_pass(&crashed)) != NULL) {
            struct pgcmk_err e;

            if (crashed) {
                inst_health(i, 0);
                inst_save_restarts(i);
            }
            if (inst_spawn(i, &e)) {
                LOG_WARN("pg %s: restart failed: %s", i->slug, e.message);
                inst_retry_later(i);
            } else {
                i->fails = 0;
                inst_health(i, 1);
            }
            inst_release(i);
        }
        pthread_mutex_lock(&inst_mu);
    }
    pthread_mutex_unlock(&inst_mu);
    return NULL;
}

/* ---- start-up and shutdown ------------------------------------------------------------------ */

static int
inst_known_dir(const char *name, json_t *rows)
{
    static const char *const keep[] = {
        "template",        "run", "archive", "backups", PG_CLUSTER_TEMPLATE, INST_SPARE_SERVER,
        INST_SPARE_CLUSTER};
    size_t k;
    json_t *r;

    for (k = 0; k < PGCMK_ARRAY_LEN(keep); k++)
        if (strcmp(name, keep[k]) == 0)
            return 1;
    json_array_foreach(rows, k, r) {
        const char *slug = json_string_value(json_array_get(r, 1));

        if (slug && strcmp(slug, name) == 0)
            return 1;
    }
    return 0;
}

/* Stops strangers' postmasters on dir's data directories. */
static void
inst_stop_strangers_of(const char *dir)
{
    char p[PATH_MAX + 16];

    pg_fmt(p, sizeof(p), "%s/data", dir);
    inst_stop_stranger(p);
    pg_fmt(p, sizeof(p), "%s/mnt/data", dir);
    inst_stop_stranger(p);
}

static void
inst_remove_strays(json_t *rows)
{
    DIR *d = opendir(pg_root_dir());
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char p[PATH_MAX + 16];

        if (de->d_name[0] == '.' || inst_known_dir(de->d_name, rows))
            continue;
        pg_fmt(p, sizeof(p), "%s/%s", pg_root_dir(), de->d_name);
        inst_stop_strangers_of(p);
        LOG_INFO("pg: removing %s (no instance row)", p);
        pg_rmtree(p);
    }
    closedir(d);
}

int
pg_inst_init(struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    json_t *rows = json_array(), *r;
    size_t k;

    if (pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_PGI_LIST), pgcmk_db_collect_row, rows,
                      "pg instances", err) < 0) {
        json_decref(rows);
        return -1;
    }
    inst_remove_strays(rows);
    json_array_foreach(rows, k, r) {
        struct inst *i = pgcmk_xcalloc(1, sizeof(*i));
        const char *s;
        struct pgcmk_err e;
        char mark[PATH_MAX + 8];

        pg_fmt(i->db_id, sizeof(i->db_id), "%s", json_string_value(json_array_get(r, 0)));
        pg_fmt(i->slug, sizeof(i->slug), "%s", json_string_value(json_array_get(r, 1)));
        i->port = atoi(json_string_value(json_array_get(r, 2)));
        i->cluster = atoi(json_string_value(json_array_get(r, 3)));
        pg_fmt(i->dbname, sizeof(i->dbname), "%s", json_string_value(json_array_get(r, 4)));
        pg_fmt(i->admin, sizeof(i->admin), "%s", json_string_value(json_array_get(r, 5)));
        i->created_ms = atoll(json_string_value(json_array_get(r, 6)));
        i->restarts = atoi(json_string_value(json_array_get(r, 7)));
        s = json_string_value(json_array_get(r, 8));
        inst_paths(i);
        inst_stop_strangers_of(i->dir);
        i->selfmgd = pg_selfmgd_id(i->db_id);
        if (!i->selfmgd &&
            (s == NULL || atoi(s) == 0)) { /* its database was deleted while pgcmkd was down */
            LOG_INFO("pg %s: its database is gone: removing the instance", i->slug);
            pg_rmtree(i->dir);
            pg_archive_drop(i->db_id);
            (void)inst_row_write(i, 1, &e);
            free(i);
            continue;
        }
        i->state = ST_STOPPED;
        pg_fmt(mark, sizeof(mark), "%s/held", i->dir);
        i->held = access(mark, F_OK) == 0;
        i->want_up = !i->held;
        i->busy = 1;
        pthread_mutex_lock(&inst_mu);
        i->next = inst_head;
        inst_head = i;
        pthread_mutex_unlock(&inst_mu);
        if (i->held)
            LOG_INFO("pg %s: stopped by its resource: it stays down", i->slug);
        else if (inst_spawn(i, &e)) {
            LOG_WARN("pg %s: does not start: %s", i->slug, e.message);
            i->state = ST_CRASHED;
            inst_retry_later(i);
        }
        inst_release(i);
    }
    json_decref(rows);
    inst_sup_stop = 0;
    if (pthread_create(&inst_sup, NULL, inst_sup_main, NULL) != 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot start the pg supervisor");
    inst_sup_running = 1;
    spare_start();
    return 0;
}

void
pg_inst_shutdown(void)
{
    int64_t t0 = pgcmk_wall_ms();
    int waited = 0, left;

    spare_shutdown();
    pthread_mutex_lock(&inst_mu);
    inst_sup_stop = 1;
    pthread_cond_broadcast(&inst_cv);
    pthread_mutex_unlock(&inst_mu);
    if (inst_sup_running) {
        pthread_join(inst_sup, NULL);
        inst_sup_running = 0;
    }
    /* every postmaster at once: fast shutdown, then immediate, then kill */
    pthread_mutex_lock(&inst_mu);
    for (struct inst *i = inst_head; i; i = i->next) {
        i->want_up = 0;
        if (i->pid > 0)
            kill(i->pid, SIGINT);
    }
    do {
        left = 0;
        for (struct inst *i = inst_head; i; i = i->next) {
            int st;

            if (i->pid <= 0)
                continue;
            pid_t r = waitpid(i->pid, &st, WNOHANG);

            if (r == i->pid || (r < 0 && errno == ECHILD)) {
                i->pid = 0;
                i->state = ST_STOPPED;
                continue;
            }
            left++;
            if (waited == INST_STOP_FAST)
                kill(i->pid, SIGQUIT);
            if (waited == INST_STOP_FAST + INST_STOP_QUIT)
                kill(i->pid, SIGKILL);
        }
        if (left) {
            pthread_mutex_unlock(&inst_mu);
            inst_sleep_ms(2);
            waited += 2;
            pthread_mutex_lock(&inst_mu);
        }
    } while (left);
    for (struct inst *i = inst_head; i; i = i->next)
        if (i->mounted) {
            pg_atrest_unmount(i->db_id, i->dir);
            i->mounted = 0;
        }
    pthread_mutex_unlock(&inst_mu);
    LOG_INFO("pg: every instance stopped in %lld ms", (long long)(pgcmk_wall_ms() - t0));
}
