/* archive.c - the encrypted archive of real instances (src/pg/arfmt.h has the formats):
 *   - the archive socket DATA_DIR/pg/run/agent.sock: `pgcmkd wal-push|wal-fetch` (walcmd.c), run
 *     by PostgreSQL's archiver and startup process, push and fetch WAL files; the daemon seals
 *     them under the database's DEK into DATA_DIR/pg/archive/<slug>/ (root-only, 0700);
 *   - base backups: pg_basebackup -Ft -X none to a pipe, sealed as it streams into
 *     DATA_DIR/pg/backups/<slug>/<start-lsn>.tar.enc, recorded in pg_backups;
 *   - the virtual-time -> WAL position map (pg_wal_map): a row on a timer (every second of wall
 *     time, when the position moved) and at every clock change (the old and the new time), so a
 *     restore stops at the position of a virtual time, never at a wall-clock timestamp;
 *   - restores (the last backup at or before the position, decrypted into tar as the PostgreSQL
 *     user, recovery up to recovery_target_lsn, WAL fetched from the source's archive under the
 *     source's DEK), replicas (pg_basebackup -R -X stream -C -S <slot>), slots dropped on
 *     delete and promote. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "pg/arfmt.h"
#include "pg/internal.h"
#include "pgcmk/agent.h"
#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/log.h"
#include "pgcmk/pg.h"
#include "pgcmk/store.h"

#define ARCH_WAIT_MS     30000 /* archiving of the segment a restore needs */
#define ARCH_IO_TIMEOUT  60    /* seconds a socket peer may stall */
#define ARCH_MAX_CONNS   32
#define ARCH_MAP_TICK_MS 1000
#define ARCH_RECOVERY_MS 120000 /* a restore's replay up to its target */
#define ARCH_DAY_MS      (24LL * 3600 * 1000)
#define ARCH_BACKUP_MS   ARCH_DAY_MS /* a base backup per day of virtual time */
#define ARCH_RETRY_MS    60000       /* wall time before a failed scheduled backup is retried */
#define ARCH_WAL_SEG     (16ull << 20)

static pthread_mutex_t arch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t arch_cond = PTHREAD_COND_INITIALIZER;
static int arch_listen_fd = -1;
static int arch_running;
static int arch_conns;
static pthread_t arch_accept_thr, arch_map_thr;
static int arch_listener_added;
static unsigned long arch_clock_gen;
static int64_t arch_clock_offset, arch_clock_frozen_at;
static int arch_clock_frozen;
static int arch_map_wake;

/* The clock's epochs since the daemon started: between two changes virtual time = wall time +
 * offset, so a virtual time strictly inside a running epoch has an exact wall time, the one
 * PostgreSQL's commit records carry (a restore's recovery_target_time). A ring: the oldest go. */
#define ARCH_EPOCHS       256
#define ARCH_EPOCH_MARGIN 50 /* ms around a change where the epoch of a time is uncertain */

struct arch_epoch {
    int64_t start, end, offset; /* virtual [start, end); end INT64_MAX while current */
    int frozen;
};
static struct arch_epoch arch_epochs[ARCH_EPOCHS];
static unsigned arch_nepochs; /* epochs ever begun (the ring holds the last ARCH_EPOCHS) */

/* ---- small helpers --------------------------------------------------------------------------- */

static int
arch_copy_dek(const unsigned char dek[PGCMK_AGENT_DEK_LEN], void *arg)
{
    memcpy(arg, dek, PGA_KEY_LEN);
    return 0;
}

/* db_id's DEK copied into out (wipe it after use): 0, or -1 when the agent does not hold it. */
static int
arch_dek(const char *db_id, unsigned char out[PGA_KEY_LEN])
{
    return pgcmk_agent_with_dek(db_id, arch_copy_dek, out) == 0 ? 0 : -1;
}

static int
arch_fd_sink(void *arg, const void *buf, size_t len)
{
    return pga_write_all(*(int *)arg, buf, len);
}

/* DATA_DIR/pg/<kind>/<slug>, created 0700 (root's: PostgreSQL never reads it directly). */
static int
arch_dir(const char *kind, const char *slug, char *out, size_t n)
{
    int k = snprintf(out, n, "%s/%s", pg_root_dir(), kind);

    if (k < 0 || (size_t)k >= n || (mkdir(out, 0700) && errno != EEXIST))
        return -1;
    k = snprintf(out, n, "%s/%s/%s", pg_root_dir(), kind, slug);
    if (k < 0 || (size_t)k >= n || (mkdir(out, 0700) && errno != EEXIST))
        return -1;
    return 0;
}

static void
arch_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Reads a whole file (at most max bytes): 0, 1 when it does not exist, -1. */
static int
arch_read_file(const char *path, size_t max, unsigned char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    unsigned char *b;

    *out = NULL;
    *len = 0;
    if (fd < 0)
        return errno == ENOENT ? 1 : -1;
    if (fstat(fd, &st) || st.st_size < 0 || (uint64_t)st.st_size > max) {
        close(fd);
        return -1;
    }
    b = pgcmk_xmalloc((size_t)st.st_size + 1);
    if (pga_read_all(fd, b, (size_t)st.st_size)) {
        free(b);
        close(fd);
        return -1;
    }
    close(fd);
    b[st.st_size] = 0; /* text files (postgresql.auto.conf) read as strings */
    *out = b;
    *len = (size_t)st.st_size;
    return 0;
}

/* dir/name written atomically: dir/.name.tmp, fsync, rename, fsync of the directory. */
static int
arch_write_atomic(const char *dir, const char *name, const void *buf, size_t len)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    int fd, rc;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= sizeof(tmp) ||
        (size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return -1;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    rc = pga_write_all(fd, buf, len) || fsync(fd) ? -1 : 0;
    if (close(fd))
        rc = -1;
    if (rc == 0 && rename(tmp, path))
        rc = -1;
    if (rc)
        unlink(tmp);
    else
        arch_fsync_dir(dir);
    return rc;
}

/* ---- WAL positions ------------------------------------------------------------------------- */

/* One text value of a one-row answer (rows from pgcmk_pg_exec): a copy, or NULL. */
static char *
arch_exec_text(const char *db_id, const char *sql, const char *const *params, int np,
               const char *col, struct pgcmk_err *err)
{
    json_t *rows = NULL;
    const char *v;
    char *out = NULL;

    if (pgcmk_pg_exec(db_id, NULL, sql, params, np, &rows, err))
        return NULL;
    v = json_string_value(json_object_get(json_array_get(rows, 0), col));
    if (v)
        out = pgcmk_xstrdup(v);
    else
        pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL, "%s: no answer to '%.64s'", db_id, sql);
    json_decref(rows);
    return out;
}

/* db_id's WAL insert position: 0, 1 when the instance is in recovery (a replica), -1. */
static int
arch_insert_lsn(const char *db_id, uint64_t *lsn, struct pgcmk_err *err)
{
    char *v = arch_exec_text(db_id,
                             "SELECT CASE WHEN pg_is_in_recovery() THEN '' ELSE "
                             "pg_current_wal_insert_lsn()::text END AS l",
                             NULL, 0, "l", err);
    int rc;

    if (v == NULL)
        return -1;
    if (v[0] == '\0')
        rc = 1;
    else if (pga_lsn_parse(v, lsn))
        rc = pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL, "%s: bad WAL position '%.32s'", db_id,
                           v);
    else
        rc = 0;
    free(v);
    return rc;
}

static int
arch_map_put(const char *db_id, int64_t at_ms, uint64_t lsn)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PGARCH_MAP_PUT);
    struct pgcmk_err err;

    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at_ms);
    sqlite3_bind_int64(st, 3, (int64_t)lsn);
    if (pgcmk_db_each(db, st, NULL, NULL, "record a WAL position", &err) < 0) {
        LOG_WARN("pg: %s: %s", db_id, err.message);
        return -1;
    }
    return 0;
}

/* The last recorded position of db_id (stmt MAP_LAST) or at or before at_ms (MAP_AT): 1 found,
 * 0 none, -1. */
static int
arch_map_get(const char *db_id, int at, int64_t at_ms, uint64_t *lsn)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st =
        pgcmk_db_stmt(db, at ? PGCMK_STMT_PGARCH_MAP_AT : PGCMK_STMT_PGARCH_MAP_LAST);
    struct pgcmk_err err;
    int rc;

    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    if (at)
        sqlite3_bind_int64(st, 2, at_ms);
    rc = pgcmk_db_step(db, st, "read the WAL position map", &err);
    if (rc == 1)
        *lsn = (uint64_t)sqlite3_column_int64(st, 0);
    pgcmk_db_done(st);
    return rc;
}

/* Records db_id's position now (and at before_ms too when before_ms >= 0), when it moved or
 * force is set. Instances that do not run, or replay as replicas, are skipped. The time is read
 * after the position (a write the position includes happened before it), and a tick whose
 * clock changed (generation gen) meanwhile records nothing: the change's own rows are the truth. */
static void
arch_map_record(const char *db_id, int64_t before_ms, int force, int tick, unsigned long gen)
{
    struct pg_inst_info info;
    struct pgcmk_err err;
    uint64_t lsn = 0, last = 0;
    int64_t at;

    if (pg_inst_info(db_id, &info) || info.pid == 0)
        return;
    pgcmk_err_clear(&err);
    if (arch_insert_lsn(db_id, &lsn, &err))
        return;
    at = pgcmk_clock_now();
    if (tick && pgcmk_clock_generation() != gen)
        return;
    if (!force && arch_map_get(db_id, 0, 0, &last) == 1 && last == lsn)
        return;
    if (before_ms >= 0)
        (void)arch_map_put(db_id, before_ms, lsn);
    (void)arch_map_put(db_id, at, lsn);
}

/* Every database with backups (every primary instance has one from its create). */
static json_t *
arch_archived_dbs(void)
{
    struct pgcmk_db *db = pgcmk_db();
    json_t *ids = json_array();
    struct pgcmk_err err;

    if (pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_PGARCH_BACKUP_DBS), pgcmk_db_collect_text,
                      ids, "list the archived databases", &err) < 0)
        LOG_WARN("pg: %s", err.message);
    return ids;
}

/* One recorder at a time: a tick and a clock change never interleave their rows. */
static pthread_mutex_t arch_map_mu = PTHREAD_MUTEX_INITIALIZER;

static void
arch_map_record_all(int64_t before_ms, int force, int tick)
{
    json_t *ids, *v;
    size_t i;

    pthread_mutex_lock(&arch_map_mu);
    ids = arch_archived_dbs();
    json_array_foreach(ids, i, v)
        arch_map_record(json_string_value(v), before_ms, force, tick, pgcmk_clock_generation());
    json_decref(ids);
    pthread_mutex_unlock(&arch_map_mu);
}

/* Under arch_lock: the current epoch ends at end_ms (virtual, the old offset's), a new one
 * begins now. */
static void
arch_epoch_begin(int64_t end_ms)
{
    if (arch_nepochs > 0)
        arch_epochs[(arch_nepochs - 1) % ARCH_EPOCHS].end = end_ms;
    arch_epochs[arch_nepochs % ARCH_EPOCHS] =
        (struct arch_epoch){pgcmk_clock_now(), INT64_MAX, arch_clock_offset, arch_clock_frozen};
    arch_nepochs++;
}

/* The wall time (ms) of virtual time at_ms: 0 when exactly one known epoch holds it, well inside
 * and running; -1 otherwise (frozen, near or across a change, before the daemon started). */
static int
arch_wall_of(int64_t at_ms, int64_t *wall_ms)
{
    unsigned i, first, hits = 0;
    int ok = 0;

    pthread_mutex_lock(&arch_lock);
    first = arch_nepochs > ARCH_EPOCHS ? arch_nepochs - ARCH_EPOCHS : 0;
    for (i = first; i < arch_nepochs; i++) {
        const struct arch_epoch *e = &arch_epochs[i % ARCH_EPOCHS];

        if (at_ms < e->start - ARCH_EPOCH_MARGIN ||
            (e->end != INT64_MAX && at_ms >= e->end + ARCH_EPOCH_MARGIN))
            continue;
        hits++;
        ok = !e->frozen && at_ms > e->start + ARCH_EPOCH_MARGIN &&
             (e->end == INT64_MAX || at_ms < e->end - ARCH_EPOCH_MARGIN);
        *wall_ms = at_ms - e->offset;
    }
    pthread_mutex_unlock(&arch_lock);
    return hits == 1 && ok ? 0 : -1;
}

/* The clock's listener: a change (set, advance, freeze, resume) records every instance's
 * position at the virtual time just before the change and at the new time, before the change's
 * answer goes back; a tick only wakes the map's thread. */
static void
arch_on_clock(int64_t now_ms, void *arg)
{
    unsigned long gen = pgcmk_clock_generation();
    int64_t before = -1;
    struct timespec ts;

    (void)now_ms;
    (void)arg;
    pthread_mutex_lock(&arch_lock);
    if (!arch_running) {
        pthread_mutex_unlock(&arch_lock);
        return;
    }
    if (gen != arch_clock_gen) {
        clock_gettime(CLOCK_REALTIME, &ts);
        before = arch_clock_frozen
                     ? arch_clock_frozen_at
                     : (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + arch_clock_offset;
        arch_clock_gen = gen;
        arch_clock_offset = pgcmk_clock_offset();
        arch_clock_frozen = pgcmk_clock_frozen();
        arch_clock_frozen_at = pgcmk_clock_frozen_at();
        arch_epoch_begin(before);
    }
    arch_map_wake = 1; /* the thread takes the backups that fell due and prunes */
    pthread_cond_broadcast(&arch_cond);
    pthread_mutex_unlock(&arch_lock);
    if (before >= 0)
        arch_map_record_all(before, 1, 0);
}

/* A replica promoted by whatever means (pgcmk_pg_promote, or pg_promote by hand) loses its slot
 * on its old primary and gets its own first base backup: checked on every tick. */
static void
arch_check_promoted(void)
{
    struct pgcmk_db *db = pgcmk_db();
    json_t *ids = json_array(), *v;
    struct pgcmk_err err;
    size_t i;

    if (pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_PGARCH_REPLICA_IDS), pgcmk_db_collect_text,
                      ids, "list the replicas", &err) < 0)
        LOG_WARN("pg: %s", err.message);
    json_array_foreach(ids, i, v) {
        const char *id = json_string_value(v);
        struct pg_inst_info info;
        uint64_t lsn;

        pgcmk_err_clear(&err);
        if (pg_inst_info(id, &info) || info.pid == 0 || arch_insert_lsn(id, &lsn, &err) != 0)
            continue; /* down, or still a replica */
        if (pg_archive_promoted(id, &err))
            LOG_WARN("pg: %s: after its promotion: %s", id, err.message);
    }
    json_decref(ids);
}

static void arch_schedule_all(void);

static void *
arch_map_main(void *arg)
{
    struct timespec ts;

    (void)arg;
    pthread_mutex_lock(&arch_lock);
    while (arch_running) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ARCH_MAP_TICK_MS / 1000;
        while (arch_running && !arch_map_wake &&
               pthread_cond_timedwait(&arch_cond, &arch_lock, &ts) != ETIMEDOUT)
            ;
        arch_map_wake = 0;
        if (!arch_running)
            break;
        pthread_mutex_unlock(&arch_lock);
        arch_map_record_all(-1, 0, 1);
        arch_check_promoted();
        arch_schedule_all();
        pthread_mutex_lock(&arch_lock);
    }
    pthread_mutex_unlock(&arch_lock);
    return NULL;
}

/* ---- the archive socket -------------------------------------------------------------------- */

/* "ERR <text>\n", the text cut to fit one line. */
static int
arch_answer(int fd, const char *text)
{
    char line[PGA_LINE_MAX];
    int n = snprintf(line, sizeof(line) - 1, "ERR %s", text);

    if (n < 0)
        return -1;
    if ((size_t)n >= sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    return pga_write_all(fd, line, (size_t)n);
}

/* Seals and stores a pushed file. PostgreSQL's rule: the same content already archived is
 * success, different content is failure. 0, or -1 with why. */
static int
arch_push(const char *db_id, const char *slug, const char *name, const unsigned char *pt, size_t n,
          const char **why)
{
    unsigned char dek[PGA_KEY_LEN], *old = NULL, *old_pt = NULL, *ct = NULL;
    size_t old_len = 0, old_pt_len = 0, ct_len = 0;
    char dir[PATH_MAX], path[PATH_MAX];
    int rc = -1, ex;

    if (arch_dek(db_id, dek)) {
        *why = "the customer-managed key of the database is not accessible (no DEK in pgcmkd): "
               "WAL cannot be archived";
        return -1;
    }
    if (arch_dir("archive", slug, dir, sizeof(dir)) ||
        (size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
        *why = "cannot create the archive directory";
        goto out;
    }
    ex = arch_read_file(path, PGA_MAX_FILE * 2, &old, &old_len);
    if (ex == 0) {
        const char *w2;

        if (pga_open_mem(dek, db_id, name, old, old_len, &old_pt, &old_pt_len, &w2) == 0 &&
            old_pt_len == n && CRYPTO_memcmp(old_pt, pt, n) == 0)
            rc = 0;
        else
            *why = "a different file with this name is already archived";
        goto out;
    }
    if (ex < 0) {
        *why = "cannot read the archive";
        goto out;
    }
    if (pga_seal_mem(dek, db_id, name, pt, n, &ct, &ct_len)) {
        *why = "encryption failed";
        goto out;
    }
    if (arch_write_atomic(dir, name, ct, ct_len)) {
        *why = "cannot write the archive file";
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(dek, sizeof(dek));
    if (old_pt)
        pgcmk_secret_free(old_pt, old_pt_len);
    free(old);
    free(ct);
    return rc;
}

/* Opens an archived file: 0 with the plaintext, 1 when missing, -1 with why. */
static int
arch_fetch(const char *db_id, const char *slug, const char *name, unsigned char **pt, size_t *n,
           const char **why)
{
    unsigned char dek[PGA_KEY_LEN], *ct = NULL;
    size_t ct_len = 0;
    char path[PATH_MAX];
    int rc;

    if ((size_t)snprintf(path, sizeof(path), "%s/archive/%s/%s", pg_root_dir(), slug, name) >=
        sizeof(path))
        return 1;
    rc = arch_read_file(path, PGA_MAX_FILE * 2, &ct, &ct_len);
    if (rc) {
        *why = "cannot read the archive";
        return rc;
    }
    if (arch_dek(db_id, dek)) {
        free(ct);
        *why = "the customer-managed key of the database is not accessible (no DEK in pgcmkd): "
               "the archive cannot be read";
        return -1;
    }
    rc = pga_open_mem(dek, db_id, name, ct, ct_len, pt, n, why);
    OPENSSL_cleanse(dek, sizeof(dek));
    free(ct);
    return rc ? -1 : 0;
}

static int
arch_peer_ok(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
        return 0;
    return cred.uid == 0 || cred.uid == pg_user_uid() || cred.uid == geteuid();
}

static void
arch_serve(int fd)
{
    char line[PGA_LINE_MAX], db_id[512];
    size_t got = 0;
    long k = 0;
    ssize_t r;
    struct pga_req req;
    const char *why = NULL;
    unsigned char *body = NULL;
    size_t n = 0;
    int rc;

    if (!arch_peer_ok(fd)) {
        (void)arch_answer(fd, "permission denied");
        return;
    }
    while ((k = pga_req_parse(line, got, &req, &why)) == 0) {
        r = read(fd, line + got, sizeof(line) - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
        got += (size_t)r;
    }
    if (k < 0) {
        char text[128];

        snprintf(text, sizeof(text), "bad request: %s", why);
        (void)arch_answer(fd, text);
        return;
    }
    if (pg_inst_db_id(req.slug, db_id, sizeof(db_id))) {
        (void)arch_answer(fd, "no database has this slug");
        return;
    }
    if (req.op == PGA_TDE) {
        if (got - (size_t)k > req.length) {
            (void)arch_answer(fd, "more bytes than the length said");
            return;
        }
        body = pgcmk_xmalloc(req.length + 1);
        memcpy(body, line + k, got - (size_t)k);
        if (pga_read_all(fd, body + (got - (size_t)k), req.length - (got - (size_t)k)) == 0) {
            body[req.length] = 0;
            pg_tde_agent_serve(fd, db_id, req.slug, (const char *)body, req.length);
        }
        pgcmk_secret_free(body, req.length + 1);
        return;
    }
    if (req.op == PGA_PUSH) {
        if (got - (size_t)k > req.length) {
            (void)arch_answer(fd, "more bytes than the length said");
            return;
        }
        body = pgcmk_xmalloc(req.length ? req.length : 1);
        memcpy(body, line + k, got - (size_t)k);
        if (pga_read_all(fd, body + (got - (size_t)k), req.length - (got - (size_t)k))) {
            pgcmk_secret_free(body, req.length);
            return;
        }
        rc = arch_push(db_id, req.slug, req.name, body, req.length, &why);
        pgcmk_secret_free(body, req.length);
        if (rc) {
            LOG_WARN("pg: %s: archiving %s failed: %s", db_id, req.name, why);
            (void)arch_answer(fd, why);
        } else
            (void)pga_write_all(fd, "OK 0\n", 5);
        return;
    }
    rc = arch_fetch(db_id, req.slug, req.name, &body, &n, &why);
    if (rc == 1)
        (void)arch_answer(fd, "missing");
    else if (rc < 0) {
        LOG_WARN("pg: %s: fetching %s failed: %s", db_id, req.name, why);
        (void)arch_answer(fd, why);
    } else {
        char ok[32];

        snprintf(ok, sizeof(ok), "OK %zu\n", n);
        if (pga_write_all(fd, ok, strlen(ok)) == 0)
            (void)pga_write_all(fd, body, n);
        pgcmk_secret_free(body, n);
    }
}

static void *
arch_conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;

    arch_serve(fd);
    close(fd);
    pthread_mutex_lock(&arch_lock);
    arch_conns--;
    pthread_cond_broadcast(&arch_cond);
    pthread_mutex_unlock(&arch_lock);
    return NULL;
}

static void *
arch_accept_main(void *arg)
{
    struct timeval tv = {ARCH_IO_TIMEOUT, 0};
    pthread_attr_t attr;
    pthread_t t;
    int fd;

    (void)arg;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        fd = accept4(arch_listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (!arch_running)
                break;
            if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
                struct timespec ts = {0, 50000000};

                nanosleep(&ts, NULL);
                continue;
            }
            break;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        pthread_mutex_lock(&arch_lock);
        if (arch_conns >= ARCH_MAX_CONNS) {
            pthread_mutex_unlock(&arch_lock);
            (void)arch_answer(fd, "too many archive requests at once");
            close(fd);
            continue;
        }
        arch_conns++;
        pthread_mutex_unlock(&arch_lock);
        if (pthread_create(&t, &attr, arch_conn_main, (void *)(intptr_t)fd)) {
            close(fd);
            pthread_mutex_lock(&arch_lock);
            arch_conns--;
            pthread_mutex_unlock(&arch_lock);
        }
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

int
pg_archive_sock_path(char *out, size_t n)
{
    int k = snprintf(out, n, "%s/run/agent.sock", pg_root_dir());

    return k < 0 || (size_t)k >= n ? -1 : 0;
}

int
pg_archive_start(struct pgcmk_err *err)
{
    struct sockaddr_un sa;
    char dir[PATH_MAX];
    int fd;

    /* Every pushed or fetched WAL segment passes through a 16 MiB buffer (two on a push: the
     * plaintext and the sealed file) on its connection's thread. glibc's dynamic mmap threshold
     * rises to 16 MiB after the first such free, so later segments came from the per-thread
     * arenas and stayed resident: pgcmkd grew ~30 MB per instance (339 MB with 10). A fixed
     * threshold keeps large buffers in their own mappings, returned to the system on free. */
    (void)mallopt(M_MMAP_THRESHOLD, 256 << 10);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (pg_archive_sock_path(sa.sun_path, sizeof(sa.sun_path)))
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                             "the archive socket's path under '%.200s' is too long for a unix "
                             "socket (at most %zu bytes)",
                             pg_root_dir(), sizeof(sa.sun_path) - 1);
    snprintf(dir, sizeof(dir), "%s/run", pg_root_dir());
    if (mkdir(dir, 0755) && errno != EEXIST)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "cannot create '%.200s': %s",
                             dir, strerror(errno));
    unlink(sa.sun_path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        chmod(sa.sun_path, 0666) /* SO_PEERCRED decides who may talk */ || listen(fd, 64)) {
        int e = errno;

        if (fd >= 0)
            close(fd);
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                             "cannot listen on the archive socket '%.200s': %s", sa.sun_path,
                             strerror(e));
    }
    pthread_mutex_lock(&arch_lock);
    arch_listen_fd = fd;
    arch_running = 1;
    arch_clock_gen = pgcmk_clock_generation();
    arch_clock_offset = pgcmk_clock_offset();
    arch_clock_frozen = pgcmk_clock_frozen();
    arch_clock_frozen_at = pgcmk_clock_frozen_at();
    arch_epoch_begin(pgcmk_clock_now());
    pthread_mutex_unlock(&arch_lock);
    if (pthread_create(&arch_accept_thr, NULL, arch_accept_main, NULL)) {
        close(fd);
        arch_listen_fd = -1;
        arch_running = 0;
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                             "cannot start the archive socket's thread");
    }
    if (pthread_create(&arch_map_thr, NULL, arch_map_main, NULL))
        LOG_WARN("pg: the WAL position map's thread did not start: positions are recorded only "
                 "at clock changes");
    else if (!arch_listener_added) {
        if (pgcmk_clock_listen(arch_on_clock, NULL))
            LOG_WARN("pg: cannot listen to the clock: clock changes are not mapped to WAL");
        arch_listener_added = 1;
    }
    return 0;
}

void
pg_archive_stop(void)
{
    struct timespec ts;

    pthread_mutex_lock(&arch_lock);
    if (!arch_running) {
        pthread_mutex_unlock(&arch_lock);
        return;
    }
    arch_running = 0;
    pthread_cond_broadcast(&arch_cond);
    shutdown(arch_listen_fd, SHUT_RDWR);
    pthread_mutex_unlock(&arch_lock);
    pthread_join(arch_accept_thr, NULL);
    if (arch_listener_added)
        pthread_join(arch_map_thr, NULL);
    /* connections in flight finish (their peers are PostgreSQL processes being stopped) */
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    pthread_mutex_lock(&arch_lock);
    while (arch_conns > 0 && pthread_cond_timedwait(&arch_cond, &arch_lock, &ts) != ETIMEDOUT)
        ;
    close(arch_listen_fd);
    arch_listen_fd = -1;
    pthread_mutex_unlock(&arch_lock);
    {
        char path[PATH_MAX];

        if (pg_archive_sock_path(path, sizeof(path)) == 0)
            unlink(path);
    }
}

/* ---- configuration ------------------------------------------------------------------------- */

/* A path PostgreSQL's shell command line can carry inside double quotes, and postgresql.conf
 * inside single quotes. */
static int
arch_path_ok(const char *p)
{
    return strpbrk(p, "\"'$`\\\n\r") == NULL;
}

/* The shell command for wal-push / wal-fetch with the archive socket and slug. */
static int
arch_walcmd(char *out, size_t n, const char *sub, const char *slug, const char *dst)
{
    char sock[PATH_MAX];
    int k;

    if (pg_archive_sock_path(sock, sizeof(sock)) || !arch_path_ok(sock) ||
        !arch_path_ok(pg_self_exe()))
        return -1;
    k = snprintf(out, n, "\"%s\" %s --socket \"%s\" --db %s %%f %s", pg_self_exe(), sub, sock, slug,
                 dst);
    return k < 0 || (size_t)k >= n ? -1 : 0;
}

void
pg_archive_conf(const char *db_id, const char *slug, char *buf, size_t n)
{
    char cmd[PATH_MAX * 2 + 128];
    size_t used = strlen(buf);

    if (used >= n)
        return;
    if (!pga_slug_ok(slug) || arch_walcmd(cmd, sizeof(cmd), "wal-push", slug, "%p")) {
        LOG_WARN("pg: %s: no WAL archive (the paths do not fit a command line)", db_id);
        return;
    }
    snprintf(buf + used, n - used,
             "archive_mode = on\n"
             "archive_command = '%s'\n",
             cmd);
}

/* ---- base backups -------------------------------------------------------------------------- */

struct arch_stream {
    int in_fd;
    struct pga_seal *seal;
    struct pga_open *open;
    int rc;
    uint64_t bytes;
};

/* Reads in_fd to its end into the seal (a backup being taken). */
static void *
arch_seal_main(void *arg)
{
    struct arch_stream *s = arg;
    unsigned char buf[65536];
    ssize_t k;

    for (;;) {
        k = read(s->in_fd, buf, sizeof(buf));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            s->rc = -1;
        if (k <= 0)
            break;
        s->bytes += (uint64_t)k;
        if (s->rc == 0 && pga_seal_update(s->seal, buf, (size_t)k))
            s->rc = -1; /* keep draining so the producer does not block */
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return NULL;
}

static void
arch_slot_name(const char *db_id, char out[40])
{
    unsigned char h[32];
    char low[512];
    size_t i;

    for (i = 0; db_id[i] && i < sizeof(low) - 1; i++)
        low[i] = (char)(db_id[i] >= 'A' && db_id[i] <= 'Z' ? db_id[i] + 32 : db_id[i]);
    low[i] = '\0';
    pgcmk_sha256(low, i, h);
    strcpy(out, "pgcmk_");
    for (i = 0; i < 12; i++)
        snprintf(out + 6 + 2 * i, 3, "%02x", h[i]);
}

/* pg_basebackup of a running instance as pgcmk_agent over its unix socket. extra: NULL-ended. */
static int
arch_basebackup(const struct pg_inst_info *info, const char *const *extra, int out_fd,
                struct pgcmk_err *err)
{
    char port[16];
    const char *argv[32];
    int i = 0;

    snprintf(port, sizeof(port), "%d", info->port);
    argv[i++] = "pg_basebackup";
    argv[i++] = "-h";
    argv[i++] = info->sock;
    argv[i++] = "-p";
    argv[i++] = port;
    argv[i++] = "-U";
    argv[i++] = "pgcmk_agent";
    argv[i++] = "-w";
    argv[i++] = "-c";
    argv[i++] = "fast";
    while (*extra && i < 31)
        argv[i++] = *extra++;
    argv[i] = NULL;
    return pg_run("pg_basebackup", (char *const *)argv, -1, out_fd, NULL, err);
}

static int
arch_backup_record(const char *db_id, const char *file, uint64_t start, uint64_t end, int64_t at_ms,
                   uint64_t size, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PGARCH_BACKUP_PUT);

    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, file, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)start);
    sqlite3_bind_int64(st, 4, (int64_t)end);
    sqlite3_bind_int64(st, 5, at_ms);
    sqlite3_bind_int64(st, 6, (int64_t)size);
    return pgcmk_db_each(db, st, NULL, NULL, "record a base backup", err) < 0 ? -1 : 0;
}

/* 1 when db_id is a streaming replica or standby of another instance. */
static int
arch_is_replica(const char *db_id)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PGARCH_REPLICA_GET);
    struct pgcmk_err err;
    int rc;

    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    rc = pgcmk_db_step(db, st, "read a replica", &err);
    pgcmk_db_done(st);
    return rc == 1;
}

int
pg_archive_backup(const char *db_id, struct pgcmk_err *err)
{
    static const char *const extra[] = {"-D", "-", "-Ft", "-X", "none", "--no-manifest", NULL};
    struct pg_inst_info info;
    unsigned char dek[PGA_KEY_LEN];
    char dir[PATH_MAX], name[64], file[80], tmp[PATH_MAX], path[PATH_MAX];
    uint64_t start = 0, end = 0;
    struct pga_seal seal;
    struct arch_stream s;
    pthread_t t;
    int fd = -1, p[2] = {-1, -1}, rc;
    int64_t at;
    struct stat st;

    if (pg_inst_info(db_id, &info) || info.pid == 0)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_DOWN, NULL,
                             "'%.300s' has no running instance: no base backup", db_id);
    rc = arch_insert_lsn(db_id, &start, err);
    if (rc > 0 && arch_is_replica(db_id))
        return 0; /* a replica streams: its primary's backups serve until it is promoted */
    if (rc > 0) { /* a restore replays the archive: its create ends once it is promoted */
        if (pg_archive_wait_promoted(db_id, ARCH_RECOVERY_MS, err))
            return -1;
        rc = arch_insert_lsn(db_id, &start, err);
    }
    if (rc)
        return -1;
    if (arch_dek(db_id, dek))
        return pgcmk_err_set(err, PGCMK_E_PG_DATA_INACCESSIBLE, NULL,
                             "The customer-managed key of '%.300s' is not accessible: no base "
                             "backup can be encrypted.",
                             db_id);
    snprintf(name, sizeof(name), "%016llX.tar", (unsigned long long)start);
    snprintf(file, sizeof(file), "%s.enc", name);
    if (arch_dir("backups", info.slug, dir, sizeof(dir)) ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, file) >= sizeof(tmp) ||
        (size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path) ||
        (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
        pipe2(p, O_CLOEXEC)) {
        OPENSSL_cleanse(dek, sizeof(dek));
        if (fd >= 0)
            close(fd);
        return pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL,
                             "cannot create the backup file of '%.300s': %s", db_id,
                             strerror(errno));
    }
    rc = pga_seal_init(&seal, dek, db_id, name, 0, arch_fd_sink, &fd);
    OPENSSL_cleanse(dek, sizeof(dek));
    memset(&s, 0, sizeof(s));
    s.in_fd = p[0];
    s.seal = &seal;
    if (rc == 0 && pthread_create(&t, NULL, arch_seal_main, &s) == 0) {
        rc = arch_basebackup(&info, extra, p[1], err);
        close(p[1]);
        p[1] = -1;
        pthread_join(t, NULL);
        if (rc == 0 && (s.rc || pga_seal_final(&seal)))
            rc = pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL,
                               "cannot write the encrypted backup of '%.300s'", db_id);
    } else if (rc == 0)
        rc = pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL, "cannot start the backup's thread");
    pga_seal_release(&seal);
    if (p[1] >= 0)
        close(p[1]);
    close(p[0]);
    if (rc == 0 && (fsync(fd) || fstat(fd, &st)))
        rc = pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL, "cannot write the backup file");
    close(fd);
    if (rc == 0 && rename(tmp, path))
        rc = pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL, "cannot rename the backup file");
    if (rc) {
        unlink(tmp);
        return -1;
    }
    arch_fsync_dir(dir);
    /* the end: a restore from this backup can stop at this position or later */
    if (arch_insert_lsn(db_id, &end, err))
        return -1;
    at = pgcmk_clock_now();
    if (arch_backup_record(db_id, file, start, end, at, (uint64_t)st.st_size, err))
        return -1;
    (void)arch_map_put(db_id, at, end);
    LOG_INFO("pg: %s: base backup %s (%lld bytes, %llu bytes of tar)", db_id, file,
             (long long)st.st_size, (unsigned long long)s.bytes);
    return 0;
}

/* ---- restores and replicas ----------------------------------------------------------------- */

/* Makes the source's WAL up to now reach its archive: a restore point (so the segment is never
 * empty), a switch, then wait until the archiver pushed that segment. */
static int
arch_archive_through(const char *db_id, struct pgcmk_err *err)
{
    struct timespec ts = {0, 20000000};
    char *seg, *a;
    int waited = 0;

    /* a commit record stamped now: a recovery_target_time before now always finds its end */
    a = arch_exec_text(db_id, "SELECT txid_current()::text AS x", NULL, 0, "x", err);
    if (a == NULL)
        return -1;
    free(a);
    a = arch_exec_text(db_id, "SELECT pg_create_restore_point('pgcmk')::text AS l", NULL, 0, "l",
                       err);
    if (a == NULL)
        return -1;
    free(a);
    seg = arch_exec_text(db_id, "SELECT pg_walfile_name(pg_switch_wal()) AS f", NULL, 0, "f", err);
    if (seg == NULL)
        return -1;
    for (;;) {
        json_t *rows = NULL;
        const char *last, *failed;
        int done = 0, bad = 0;

        if (pgcmk_pg_exec(db_id, NULL,
                          "SELECT coalesce(last_archived_wal, '') AS a, "
                          "coalesce(last_failed_wal, '') AS f FROM pg_stat_archiver",
                          NULL, 0, &rows, err)) {
            free(seg);
            return -1;
        }
        last = json_string_value(json_object_get(json_array_get(rows, 0), "a"));
        failed = json_string_value(json_object_get(json_array_get(rows, 0), "f"));
        done = last && strncmp(last, seg, 24) >= 0 && strlen(last) >= 24;
        bad = failed && strncmp(failed, seg, 24) == 0 && waited > 2000;
        json_decref(rows);
        if (done)
            break;
        if (bad || waited >= ARCH_WAIT_MS) {
            pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL,
                          "the WAL of '%.300s' up to segment %s did not reach its archive "
                          "(archiving %s; the server log says why)",
                          db_id, seg, bad ? "fails" : "is too slow");
            free(seg);
            return -1;
        }
        nanosleep(&ts, NULL);
        waited += 20;
    }
    free(seg);
    return 0;
}

/* The backup of db_id to restore from for a stop at *lsn (the last that ended at or before it),
 * else its earliest, whose end becomes *lsn: nobody wrote to a server before its create (and
 * so its first backup) ended. 0 with file, 1 when it has no backup, -1. */
static int
arch_backup_at(const char *db_id, uint64_t *lsn, char *file, size_t n, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st;
    int rc, earliest;

    for (earliest = 0; earliest < 2; earliest++) {
        st = pgcmk_db_stmt(db, earliest ? PGCMK_STMT_PGARCH_BACKUP_EARLIEST
                                        : PGCMK_STMT_PGARCH_BACKUP_AT);
        sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
        if (!earliest)
            sqlite3_bind_int64(st, 2, (int64_t)*lsn);
        rc = pgcmk_db_step(db, st, "find a base backup", err);
        if (rc == 1) {
            snprintf(file, n, "%s", (const char *)sqlite3_column_text(st, 0));
            if (earliest)
                *lsn = (uint64_t)sqlite3_column_int64(st, 1);
        }
        pgcmk_db_done(st);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
    }
    return 1;
}

/* Feeds a backup file, decrypted, into out_fd (tar's stdin), then closes out_fd. */
struct arch_feed {
    const char *path, *db_id, *name;
    unsigned char dek[PGA_KEY_LEN];
    int out_fd;
    int rc;
    const char *why;
};

static void *
arch_feed_main(void *arg)
{
    struct arch_feed *f = arg;
    struct pga_open o;
    unsigned char buf[65536];
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    ssize_t k;

    pga_open_init(&o, f->dek, f->db_id, f->name, arch_fd_sink, &f->out_fd);
    OPENSSL_cleanse(f->dek, sizeof(f->dek));
    f->rc = fd < 0 ? -1 : 0;
    f->why = fd < 0 ? "cannot open the backup file" : NULL;
    while (f->rc == 0) {
        k = read(fd, buf, sizeof(buf));
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0) {
            f->rc = pga_open_final(&o);
            break;
        }
        if (k < 0 || pga_open_update(&o, buf, (size_t)k))
            f->rc = -1;
    }
    if (f->rc && f->why == NULL)
        f->why = o.why ? o.why : "cannot read the backup file";
    pga_open_release(&o);
    if (fd >= 0)
        close(fd);
    close(f->out_fd);
    return NULL;
}

/* Writes a file of the new data directory, owned by the PostgreSQL user. */
static int
arch_write_pg_file(const char *data_dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    int fd, rc;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", data_dir, name) >= sizeof(path))
        return -1;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    rc = pga_write_all(fd, text, strlen(text)) || fchown(fd, pg_user_uid(), pg_user_gid()) ||
                 fsync(fd)
             ? -1
             : 0;
    return close(fd) || rc ? -1 : 0;
}

/* postgresql.auto.conf of the restored directory: the source's lines without the recovery and
 * replication settings, then the restore's. */
static int
arch_recovery_conf(const char *data_dir, const char *src_slug, uint64_t lsn, int64_t wall_ms)
{
    static const char *const drop[] = {"restore_command", "recovery_target", "primary_conninfo",
                                       "primary_slot_name", "archive_"};
    char path[PATH_MAX], cmd[PATH_MAX * 2 + 128], target[24], *text, *line, *save = NULL;
    unsigned char *old = NULL;
    size_t old_len = 0, i, cap;
    int rc;

    if (arch_walcmd(cmd, sizeof(cmd), "wal-fetch", src_slug, "\"%p\"") ||
        (size_t)snprintf(path, sizeof(path), "%s/postgresql.auto.conf", data_dir) >= sizeof(path))
        return -1;
    if (arch_read_file(path, 1 << 20, &old, &old_len) < 0)
        return -1;
    cap = old_len + sizeof(cmd) + 512;
    text = pgcmk_xcalloc(1, cap);
    for (line = old ? strtok_r((char *)old, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        const char *l = line + strspn(line, " \t");
        int keep = 1;

        for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
            if (strncmp(l, drop[i], strlen(drop[i])) == 0)
                keep = 0;
        if (keep) {
            strcat(text, line);
            strcat(text, "\n");
        }
    }
    free(old);
    if (wall_ms >= 0) {
        time_t sec = (time_t)(wall_ms / 1000);
        struct tm tm;

        gmtime_r(&sec, &tm);
        strftime(target, sizeof(target), "%Y-%m-%d %H:%M:%S", &tm);
        snprintf(text + strlen(text), cap - strlen(text),
                 "# pgcmk restore: the source's encrypted archive, up to the commits of the\n"
                 "# requested virtual time (its wall time: the clock ran with one offset then)\n"
                 "restore_command = '%s'\n"
                 "recovery_target_time = '%s.%03d999+00'\n"
                 "recovery_target_inclusive = on\n"
                 "recovery_target_action = 'promote'\n"
                 "recovery_target_timeline = 'latest'\n",
                 cmd, target, (int)(wall_ms % 1000));
    } else {
        pga_lsn_format(lsn, target, sizeof(target));
        snprintf(text + strlen(text), cap - strlen(text),
                 "# pgcmk restore: the source's encrypted archive, up to the WAL position\n"
                 "# recorded for the requested virtual time (not a wall-clock timestamp)\n"
                 "restore_command = '%s'\n"
                 "recovery_target_lsn = '%s'\n"
                 "recovery_target_inclusive = off\n"
                 "recovery_target_action = 'promote'\n"
                 "recovery_target_timeline = 'latest'\n",
                 cmd, target);
    }
    rc = arch_write_pg_file(data_dir, "postgresql.auto.conf", text);
    free(text);
    if (rc == 0)
        rc = arch_write_pg_file(data_dir, "recovery.signal", "");
    if (rc == 0 &&
        (size_t)snprintf(path, sizeof(path), "%s/standby.signal", data_dir) < sizeof(path))
        unlink(path);
    return rc;
}

static int
arch_fill_restore(const struct pgcmk_pg_spec *s, const char *data_dir, struct pgcmk_err *err)
{
    struct pg_inst_info src;
    struct arch_feed f;
    char file[128], name[128], path[PATH_MAX];
    const char *tar_argv[] = {"tar", "-x", "-f", "-", "-C", data_dir, NULL};
    uint64_t lsn = 0;
    int64_t wall = -1;
    int p[2], rc, found;
    pthread_t t;

    if (pg_inst_info(s->source_id, &src))
        return pgcmk_err_set(err, PGCMK_E_PG_SOURCE_NOT_FOUND, NULL,
                             "The source server '%.300s' has no PostgreSQL instance to restore "
                             "from.",
                             s->source_id);
    memset(&f, 0, sizeof(f));
    if (arch_dek(s->source_id, f.dek))
        return pgcmk_err_set(err, PGCMK_E_PG_DATA_INACCESSIBLE, NULL,
                             "The customer-managed key of the source server '%.300s' is not "
                             "accessible: its encrypted backups and WAL archive cannot be read.",
                             s->source_id);
    if (src.pid) {
        pthread_mutex_lock(&arch_map_mu);
        arch_map_record(s->source_id, -1, 1, 0, 0);
        pthread_mutex_unlock(&arch_map_mu);
        if (arch_archive_through(s->source_id, err)) {
            OPENSSL_cleanse(f.dek, sizeof(f.dek));
            return -1;
        }
    }
    found = arch_map_get(s->source_id, 1, s->point_in_time, &lsn); /* 0: before any row */
    rc = found < 0 ? -1 : arch_backup_at(s->source_id, &lsn, file, sizeof(file), err);
    if (rc) {
        OPENSSL_cleanse(f.dek, sizeof(f.dek));
        if (rc < 0)
            return found < 0 ? pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL,
                                             "cannot read the WAL position map")
                             : -1;
        return pgcmk_err_set(err, PGCMK_E_PG_INVALID_RESTORE, "properties.pointInTimeUTC",
                             "The source server '%.300s' has no base backup to restore from.",
                             s->source_id);
    }
    snprintf(name, sizeof(name), "%.*s", (int)(strlen(file) - 4), file); /* without ".enc" */
    snprintf(path, sizeof(path), "%s/backups/%s/%s", pg_root_dir(), src.slug, file);
    if (pipe2(p, O_CLOEXEC)) {
        OPENSSL_cleanse(f.dek, sizeof(f.dek));
        return pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL, "pipe: %s", strerror(errno));
    }
    f.path = path;
    f.db_id = s->source_id;
    f.name = name;
    f.out_fd = p[1];
    if (pthread_create(&t, NULL, arch_feed_main, &f)) {
        OPENSSL_cleanse(f.dek, sizeof(f.dek));
        close(p[0]);
        close(p[1]);
        return pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL, "cannot start the restore thread");
    }
    rc = pg_run("/bin/tar", (char *const *)tar_argv, p[0], -1, NULL, err);
    close(p[0]);
    pthread_join(t, NULL);
    if (f.rc)
        return pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL,
                             "The base backup of '%.300s' could not be decrypted: %s.",
                             s->source_id, f.why);
    if (rc)
        return -1;
    if (!src.pid || arch_wall_of(s->point_in_time, &wall) || wall <= 0)
        wall = -1; /* frozen or changed around it, or no commit after it: the map's position */
    if (arch_recovery_conf(data_dir, src.slug, lsn, wall))
        return pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL,
                             "cannot write the recovery settings of the restore");
    if (wall >= 0)
        LOG_INFO("pg: %s: restored %s of %s; recovery stops after the commits of wall time %lld "
                 "ms",
                 s->db_id, file, s->source_id, (long long)wall);
    else
        LOG_INFO("pg: %s: restored %s of %s; recovery stops before %llX/%llX", s->db_id, file,
                 s->source_id, (unsigned long long)(lsn >> 32),
                 (unsigned long long)(lsn & 0xffffffff));
    return 0;
}

static int
arch_drop_slot(const char *source_id, const char *slot, struct pgcmk_err *err)
{
    const char *params[] = {slot};

    return pgcmk_pg_exec(source_id, NULL,
                         "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                         "WHERE slot_name = $1",
                         params, 1, NULL, err);
}

static int
arch_fill_replica(const struct pgcmk_pg_spec *s, const char *data_dir, struct pgcmk_err *err)
{
    struct pg_inst_info src;
    char slot[40];
    const char *extra[] = {"-D", data_dir, "-R", "-X", "stream", "-C", "-S", slot, NULL};
    struct pgcmk_db *db;
    sqlite3_stmt *st;

    if (pg_inst_info(s->source_id, &src) || src.pid == 0)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_DOWN, NULL,
                             "The source server '%.300s' has no running PostgreSQL instance to "
                             "copy.",
                             s->source_id);
    arch_slot_name(s->db_id, slot);
    if (arch_drop_slot(s->source_id, slot, err)) /* a failed earlier attempt's */
        return -1;
    if (chown(data_dir, pg_user_uid(), pg_user_gid()) && errno != ENOENT)
        return pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL, "chown '%.200s': %s", data_dir,
                             strerror(errno));
    if (arch_basebackup(&src, extra, -1, err))
        return -1;
    db = pgcmk_db();
    st = pgcmk_db_stmt(db, PGCMK_STMT_PGARCH_REPLICA_PUT);
    sqlite3_bind_text(st, 1, s->db_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->source_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, slot, -1, SQLITE_STATIC);
    return pgcmk_db_each(db, st, NULL, NULL, "record a replica", err) < 0 ? -1 : 0;
}

int
pg_archive_fill(const struct pgcmk_pg_spec *s, const char *data_dir, struct pgcmk_err *err)
{
    if (s->source_id == NULL || s->relation == NULL)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "a fill without a source");
    if (strcmp(s->relation, "restore") == 0)
        return arch_fill_restore(s, data_dir, err);
    if (strcmp(s->relation, "replica") == 0 || strcmp(s->relation, "standby") == 0)
        return arch_fill_replica(s, data_dir, err);
    return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "unknown relation '%.32s'", s->relation);
}

int
pg_archive_wait_promoted(const char *db_id, int timeout_ms, struct pgcmk_err *err)
{
    struct timespec ts = {0, 10000000};
    int waited = 0;

    for (;;) {
        struct pgcmk_err e2;
        char *v;

        pgcmk_err_clear(&e2);
        v = arch_exec_text(db_id, "SELECT pg_is_in_recovery()::text AS r", NULL, 0, "r", &e2);
        if (v && strcmp(v, "false") == 0) {
            free(v);
            return 0;
        }
        free(v);
        if (waited >= timeout_ms || (e2.code == PGCMK_E_PGREAL_DOWN && waited >= 3000))
            return pgcmk_err_set(err, PGCMK_E_PGARCH_FAILED, NULL,
                                 "'%.300s' did not finish its recovery in %d ms%s%.200s", db_id,
                                 timeout_ms, e2.code ? ": " : "", e2.code ? e2.message : "");
        nanosleep(&ts, NULL);
        waited += 10;
    }
}

/* Forgets db_id's replica relation and drops its slot on its primary. */
static void
arch_forget_replica(const char *db_id)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PGARCH_REPLICA_GET);
    struct pgcmk_err err;
    char source[512] = "", slot[64] = "";

    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    if (pgcmk_db_step(db, st, "read a replica", &err) == 1) {
        snprintf(source, sizeof(source), "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(slot, sizeof(slot), "%s", (const char *)sqlite3_column_text(st, 1));
    }
    pgcmk_db_done(st);
    if (!source[0])
        return;
    if (arch_drop_slot(source, slot, &err))
        LOG_WARN("pg: %s: dropping slot %s on %s: %s", db_id, slot, source, err.message);
    st = pgcmk_db_stmt(db, PGCMK_STMT_PGARCH_REPLICA_DEL);
    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, NULL, NULL, "forget a replica", &err) < 0)
        LOG_WARN("pg: %s: %s", db_id, err.message);
}

int
pg_archive_promoted(const char *db_id, struct pgcmk_err *err)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* the action and the tick's check */
    int was;

    pthread_mutex_lock(&mu);
    was = arch_is_replica(db_id);
    if (was)
        arch_forget_replica(db_id);
    pthread_mutex_unlock(&mu);
    if (!was)
        return 0;
    if (pg_archive_wait_promoted(db_id, 30000, err))
        return -1;
    return pg_archive_backup(db_id, err);
}

/* Removes the files of a flat directory, then the directory. */
static void
arch_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < sizeof(path))
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void
arch_delete_rows(const char *db_id, enum pgcmk_stmt id)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, id);
    struct pgcmk_err err;

    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, NULL, NULL, "forget an archive", &err) < 0)
        LOG_WARN("pg: %s: %s", db_id, err.message);
}

static void
arch_delete_rows_before(const char *db_id, enum pgcmk_stmt id, int64_t at_ms)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, id);
    struct pgcmk_err err;

    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at_ms);
    if (pgcmk_db_each(db, st, NULL, NULL, "prune an archive", &err) < 0)
        LOG_WARN("pg: %s: %s", db_id, err.message);
}

void
pg_archive_drop(const char *db_id)
{
    struct pg_inst_info info;
    char dir[PATH_MAX];

    arch_forget_replica(db_id);
    if (pg_inst_info(db_id, &info) == 0 && pga_slug_ok(info.slug)) {
        snprintf(dir, sizeof(dir), "%s/archive/%s", pg_root_dir(), info.slug);
        arch_rmdir(dir);
        snprintf(dir, sizeof(dir), "%s/backups/%s", pg_root_dir(), info.slug);
        arch_rmdir(dir);
    }
    arch_delete_rows(db_id, PGCMK_STMT_PGARCH_MAP_DEL);
    arch_delete_rows(db_id, PGCMK_STMT_PGARCH_BACKUP_DEL);
}

/* ---- the backup schedule and the retention window ------------------------------------------ */

/* One integer of a one-row statement with db_id as ?1 (and at_ms as ?2 when at_ms >= 0): 1 with
 * *v (and *v2 from the second column when v2 is not NULL), 0 when no row or NULL, -1. */
static int
arch_int_row(enum pgcmk_stmt id, const char *db_id, int64_t at_ms, int64_t *v, int64_t *v2)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, id);
    struct pgcmk_err err;
    int rc;

    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    if (at_ms >= 0)
        sqlite3_bind_int64(st, 2, at_ms);
    rc = pgcmk_db_step(db, st, "read the backups", &err);
    if (rc == 1 && sqlite3_column_type(st, 0) == SQLITE_NULL)
        rc = 0;
    if (rc == 1) {
        *v = sqlite3_column_int64(st, 0);
        if (v2)
            *v2 = sqlite3_column_int64(st, 1);
    }
    pgcmk_db_done(st);
    return rc;
}

/* The start of db_id's retention window at now: backupRetentionDays of a single server (7 by
 * default), 35 days for a cluster. */
static int64_t
arch_window_start(const char *db_id, int64_t now)
{
    struct pg_inst_info info;
    struct pgcmk_err err;
    json_t *body = NULL;
    json_int_t days = 7;

    if (pg_inst_info(db_id, &info) == 0 && info.cluster)
        days = 35;
    else if (pgcmk_arm_resource_get(pgcmk_db(), db_id, &body, &err) == 1) {
        json_int_t d = json_integer_value(
            json_object_get(json_object_get(json_object_get(body, "properties"), "storageProfile"),
                            "backupRetentionDays"));

        if (d > 0)
            days = d;
    }
    json_decref(body);
    return now - (int64_t)days * ARCH_DAY_MS;
}

int
pgcmk_pg_earliest_restore(const char *db_id, int64_t *out)
{
    int64_t first = 0, n = 0, w = arch_window_start(db_id, pgcmk_clock_now());

    if (arch_int_row(PGCMK_STMT_PGARCH_BACKUP_FIRST, db_id, -1, &first, &n) != 1 || n == 0)
        return -1;
    *out = first > w ? first : w;
    return 0;
}

/* The archived WAL file's segment number (16 MiB segments), or -1 for a history file or a name
 * that is not a WAL file's. */
static int64_t
arch_wal_segno(const char *name)
{
    char log[9], seg[9];
    size_t i;

    if (strlen(name) < 24 || strstr(name, ".history"))
        return -1;
    for (i = 0; i < 24; i++)
        if (!strchr("0123456789ABCDEF", name[i]))
            return -1;
    memcpy(log, name + 8, 8);
    memcpy(seg, name + 16, 8);
    log[8] = seg[8] = '\0';
    return (int64_t)(strtoull(log, NULL, 16) * (0x100000000ull / ARCH_WAL_SEG) +
                     strtoull(seg, NULL, 16));
}

/* Removes what no restore inside the window needs: base backups older than the newest one at or
 * before the window's start (the base), archived WAL before the base's start, map rows before
 * it. Nothing goes while no backup is that old. */
static void
arch_prune(const char *db_id, int64_t now)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pg_inst_info info;
    struct pgcmk_err err;
    int64_t base_at = 0, base_lsn = 0, keep_seg;
    json_t *files = json_array(), *v;
    char dir[PATH_MAX], path[PATH_MAX];
    sqlite3_stmt *st;
    struct dirent *e;
    size_t i;
    DIR *d;

    if (pg_inst_info(db_id, &info) || !pga_slug_ok(info.slug) ||
        arch_int_row(PGCMK_STMT_PGARCH_BACKUP_BASE, db_id, arch_window_start(db_id, now), &base_at,
                     &base_lsn) != 1) {
        json_decref(files);
        return;
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_PGARCH_BACKUP_OLDER);
    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, base_at);
    if (pgcmk_db_each(db, st, pgcmk_db_collect_text, files, "list old backups", &err) < 0) {
        json_decref(files);
        return;
    }
    json_array_foreach(files, i, v) {
        pg_fmt(path, sizeof(path), "%s/backups/%s/%s", pg_root_dir(), info.slug,
               json_string_value(v));
        if (unlink(path) && errno != ENOENT)
            LOG_WARN("pg: %s: removing %s: %s", db_id, path, strerror(errno));
    }
    if (json_array_size(files) == 0) { /* the WAL before the base went with its backups */
        json_decref(files);
        return;
    }
    LOG_INFO("pg: %s: %zu base backups older than the retention window removed", db_id,
             json_array_size(files));
    json_decref(files);
    keep_seg = (int64_t)((uint64_t)base_lsn / ARCH_WAL_SEG);
    pg_fmt(dir, sizeof(dir), "%s/archive/%s", pg_root_dir(), info.slug);
    if ((d = opendir(dir)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            int64_t segno = arch_wal_segno(e->d_name);

            if (segno >= 0 && segno < keep_seg &&
                (size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < sizeof(path))
                unlink(path);
        }
        closedir(d);
    }
    /* the rows last: a prune a crash cut short runs again */
    arch_delete_rows_before(db_id, PGCMK_STMT_PGARCH_MAP_PRUNE, base_at);
    arch_delete_rows_before(db_id, PGCMK_STMT_PGARCH_BACKUP_PRUNE, base_at);
}

/* The resource's earliestRestoreTime (cluster) or earliestRestoreDate (single server) property
 * when it is a minute or more away from earliest: its name, else NULL. */
static const char *
arch_earliest_stale(const json_t *body, int64_t earliest)
{
    const json_t *p = json_object_get(body, "properties");
    const char *key =
        json_object_get(p, "earliestRestoreTime") ? "earliestRestoreTime" : "earliestRestoreDate";
    const char *v = json_string_value(json_object_get(p, key));
    int64_t shown;

    if (v == NULL || pgcmk_time_parse(v, &shown) ||
        (shown - earliest < 60000 && earliest - shown < 60000))
        return NULL;
    return key;
}

struct arch_publish {
    const char *db_id;
    int64_t earliest;
};

static int
arch_publish_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct arch_publish *a = ctx;
    char t[PGCMK_TIME_LEN];
    json_t *body = NULL;
    const char *key;
    int rc = pgcmk_arm_resource_get(db, a->db_id, &body, err);

    if (rc <= 0)
        return rc;
    key = arch_earliest_stale(body, a->earliest);
    rc = 0;
    if (key) {
        pgcmk_time_format(a->earliest, t);
        json_object_set_new(json_object_get(body, "properties"), key, json_string(t));
        rc = pgcmk_arm_resource_put(db, a->db_id, body, err);
    }
    json_decref(body);
    return rc;
}

/* The resource's earliest restore time follows what is restorable (read first: a transaction
 * only when it moved by a minute or more). */
static void
arch_publish_earliest(const char *db_id)
{
    struct arch_publish a = {db_id, 0};
    struct pgcmk_err err;
    json_t *body = NULL;
    int stale;

    if (pgcmk_pg_earliest_restore(db_id, &a.earliest) ||
        pgcmk_arm_resource_get(pgcmk_db(), db_id, &body, &err) != 1) {
        json_decref(body);
        return;
    }
    stale = arch_earliest_stale(body, a.earliest) != NULL;
    json_decref(body);
    if (stale && pgcmk_db_tx(pgcmk_db(), arch_publish_tx, &a, &err))
        LOG_WARN("pg: %s: updating its earliest restore time: %s", db_id, err.message);
}

/* Run by the map's thread on every tick and clock change: a base backup of each running,
 * accessible primary whose last one is a day of virtual time old or more, then pruning. */
static void
arch_schedule_all(void)
{
    static json_t *failed; /* db_id -> wall ms of its last failed scheduled backup */
    json_t *ids = arch_archived_dbs(), *v;
    struct timespec ts;
    size_t i;

    if (failed == NULL)
        failed = json_object();
    json_array_foreach(ids, i, v) {
        const char *id = json_string_value(v);
        int64_t now = pgcmk_clock_now(), last = 0, wall;
        unsigned char dek[PGA_KEY_LEN];
        struct pg_inst_info info;
        struct pgcmk_err err;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (arch_int_row(PGCMK_STMT_PGARCH_BACKUP_LAST, id, -1, &last, NULL) == 1 &&
            now - last >= ARCH_BACKUP_MS && pg_inst_info(id, &info) == 0 && info.pid != 0 &&
            !arch_is_replica(id) &&
            wall - json_integer_value(json_object_get(failed, id)) >= ARCH_RETRY_MS &&
            arch_dek(id, dek) == 0) { /* without the DEK nothing can be sealed: no backup */
            OPENSSL_cleanse(dek, sizeof(dek));
            pgcmk_err_clear(&err);
            if (pg_archive_backup(id, &err)) {
                LOG_WARN("pg: %s: scheduled base backup: %s", id, err.message);
                json_object_set_new(failed, id, json_integer(wall));
            } else
                json_object_del(failed, id);
        }
        arch_prune(id, pgcmk_clock_now());
        arch_publish_earliest(id);
    }
    json_decref(ids);
}

json_t *
pg_archive_describe(const char *db_id)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PGARCH_BACKUP_FIRST);
    struct pgcmk_err err;
    json_t *o = json_object();
    char t[PGCMK_TIME_LEN];
    int64_t earliest;

    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    if (pgcmk_db_step(db, st, "read the backups", &err) == 1) {
        json_object_set_new(o, "backups", json_integer(sqlite3_column_int64(st, 1)));
    }
    pgcmk_db_done(st);
    if (pgcmk_pg_earliest_restore(db_id, &earliest) == 0) {
        pgcmk_time_format(earliest, t);
        json_object_set_new(o, "earliestRestoreTime", json_string(t));
    }
    json_object_set_new(o, "encryption", json_string("AES-256-GCM under the database's DEK"));
    return o;
}
