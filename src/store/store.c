/* store.c - the SQLite store: open and migrate, one connection per thread (a registry closes
 * them all), the statement catalog, serialised write transactions, the master key and sealing.
 *
 * Locking, in one place:
 * - store_writer_mu serialises writers: pgcmk_db_tx holds it from BEGIN IMMEDIATE to COMMIT or
 *   ROLLBACK, so in-process writers queue on a mutex and never spin in busy_timeout (DESIGN.md 9);
 *   pgcmk_db_each takes it around a writing statement run outside a transaction (autocommit).
 *   Without that, two such writers met in SQLite: one slept in busy_timeout, and the failed
 *   automatic checkpoints of a busy WAL cost an fdatasync on about every third commit.
 *   It is taken through store_lock()/store_unlock(), which count per thread, so a thread that
 *   already holds it (a nested pgcmk_db_tx, a statement used inside a transaction) never
 *   deadlocks on itself.
 * - File mode: every thread has its own connection (opened NOMUTEX on first use, kept in a
 *   thread-local pointer and in store_registry); reads need no lock (WAL readers see the last
 *   commit).
 * - ":memory:" mode: one connection shared by every thread, and ALL access to it is serialised by
 *   the writer lock: pgcmk_db_stmt() takes it and pgcmk_db_done() gives it back, so a statement
 *   is held by one thread from stmt() to done(), and no thread reads while another is inside a
 *   transaction (it would see uncommitted rows). Callers must therefore pair every
 *   pgcmk_db_stmt() with one pgcmk_db_done() (store.h already demands it) and must not wait for
 *   another thread that uses the store in between. Raw use of pgcmk_db_handle() in this mode is
 *   only safe inside pgcmk_db_tx.
 * - store_registry_mu protects the registry list only. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "pgcmk/crypto.h"
#include "pgcmk/events.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"

struct pgcmk_db {
    sqlite3 *h;
    sqlite3_stmt *cache[PGCMK_STMT__COUNT];
    struct pgcmk_db *next; /* registry */
};

static const char *const store_migrations[] = {
#define PGCMK_MIGRATION(sql) sql,
#include "store/migrations.def"
#undef PGCMK_MIGRATION
};

static const char *const store_sql[] = {
#define PGCMK_X_STMT(name, sql) sql,
#include "store/catalog.def"
#undef PGCMK_X_STMT
};

#define STORE_KEY_LEN PGCMK_AEAD_KEY_LEN

/* Set by pgcmk_store_open before any other thread uses the store; constant until close. */
static char *store_path;
static int store_sync_full;
static int store_memory;
static int store_version;
static unsigned char store_key[STORE_KEY_LEN];
static atomic_int store_opened;
/* Bumped by every open and close: a thread-local connection from an older generation was
 * closed by pgcmk_store_close and must not be touched. */
static atomic_uint store_gen;

static pthread_mutex_t store_registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pgcmk_db *store_registry;
static struct pgcmk_db *store_shared; /* ":memory:" */

static pthread_mutex_t store_writer_mu = PTHREAD_MUTEX_INITIALIZER;

static _Thread_local struct pgcmk_db *store_mine;
static _Thread_local unsigned store_mine_gen;
static _Thread_local unsigned store_lock_depth; /* holds of store_writer_mu by this thread */
static _Thread_local unsigned store_tx_depth;   /* pgcmk_db_tx calls open on this thread */
static _Thread_local unsigned store_stmt_holds; /* ":memory:": statements held by this thread */

static void store_lock(void);
static void store_unlock(void);
static int store_exec(sqlite3 *h, const char *sql, const char *what, struct pgcmk_err *err);
static struct pgcmk_db *store_connect(struct pgcmk_err *err);
static void store_release(struct pgcmk_db *db);
static int store_user_version(sqlite3 *h, int *version);
static int store_apply(struct pgcmk_db *db, struct pgcmk_err *err);
static int store_migrate(struct pgcmk_db *db, struct pgcmk_err *err);
static void store_rollback(struct pgcmk_db *db);
static int store_key_read(int fd, const char *path, struct pgcmk_err *err);
static int store_key_create(int fd, const char *path, struct pgcmk_err *err);
static int store_key_load(const char *path, struct pgcmk_err *err);
static int setting_put_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err);
static int store_each(struct pgcmk_db *db, sqlite3_stmt *st, pgcmk_row_fn row_fn, void *arg,
                      const char *what, struct pgcmk_err *err, int *count);

static void
store_lock(void)
{
    if (store_lock_depth++ == 0)
        pthread_mutex_lock(&store_writer_mu);
}

static void
store_unlock(void)
{
    if (store_lock_depth == 0)
        PGCMK_BUG("store lock released more often than taken");
    if (--store_lock_depth == 0)
        pthread_mutex_unlock(&store_writer_mu);
}

/* Runs fixed SQL text (PRAGMAs, BEGIN/COMMIT, migrations). The SQLite message goes to the log. */
static int
store_exec(sqlite3 *h, const char *sql, const char *what, struct pgcmk_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);

    if (rc == SQLITE_OK)
        return 0;
    LOG_ERR("%s: sqlite rc=%d (%s): %s", what, rc, sqlite3_errstr(rc), msg ? msg : "?");
    sqlite3_free(msg);
    if (err)
        err->cause = rc;
    return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "The store could not %s.", what);
}

static struct pgcmk_db *
store_connect(struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_xcalloc(1, sizeof(*db));
    /* File mode: one connection per thread, so SQLite's per-connection mutex is not needed.
     * ":memory:": one connection for all threads; our lock serialises it, FULLMUTEX is a guard. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE |
                (store_memory ? SQLITE_OPEN_FULLMUTEX : SQLITE_OPEN_NOMUTEX);
    sqlite3_stmt *st = NULL;
    const char *mode;
    int rc;

    rc = sqlite3_open_v2(store_path, &db->h, flags, NULL);
    if (rc != SQLITE_OK) {
        LOG_ERR("open %s: sqlite rc=%d: %s", store_path, rc,
                db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
        if (err)
            err->cause = rc;
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "Cannot open the store %s (%s).", store_path,
                      sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, 5000);
    if (store_memory) {
        if (store_exec(db->h, "PRAGMA foreign_keys=ON;", "configure the connection", err))
            goto fail;
    } else {
        /* journal_mode answers with the mode it ended up in: anything but "wal" means the
         * file system refused it, and commits would cost far more than the design assumes. */
        rc = sqlite3_prepare_v2(db->h, "PRAGMA journal_mode=WAL;", -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            LOG_ERR("journal_mode on %s: sqlite rc=%d: %s", store_path, rc, sqlite3_errmsg(db->h));
            if (err)
                err->cause = rc;
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                          "Cannot use %s as a store (%s); is it a SQLite database?", store_path,
                          sqlite3_errstr(rc));
            goto fail;
        }
        mode = (const char *)sqlite3_column_text(st, 0);
        if (mode == NULL || strcmp(mode, "wal") != 0)
            LOG_WARN("the store %s runs in journal mode %s, not WAL", store_path,
                     mode ? mode : "?");
        sqlite3_finalize(st);
        st = NULL;
        if (store_exec(db->h,
                       store_sync_full ? "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                                       : "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
                       "configure the connection", err))
            goto fail;
    }
    pthread_mutex_lock(&store_registry_mu);
    db->next = store_registry;
    store_registry = db;
    pthread_mutex_unlock(&store_registry_mu);
    return db;

fail:
    sqlite3_finalize(st);
    sqlite3_close(db->h);
    free(db);
    return NULL;
}

static void
store_release(struct pgcmk_db *db)
{
    int rc;

    for (size_t i = 0; i < PGCMK_ARRAY_LEN(db->cache); i++)
        sqlite3_finalize(db->cache[i]);
    rc = sqlite3_close(db->h);
    if (rc != SQLITE_OK) {
        LOG_WARN("closing a store connection: sqlite rc=%d: %s", rc, sqlite3_errmsg(db->h));
        sqlite3_close_v2(db->h); /* let SQLite free it once whatever holds it is finalized */
    }
    free(db);
}

static int
store_user_version(sqlite3 *h, int *version)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h, "PRAGMA user_version;", -1, &st, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    } else {
        LOG_ERR("reading user_version: sqlite rc=%d: %s", rc, sqlite3_errmsg(h));
    }
    sqlite3_finalize(st);
    return rc;
}

/* Applies the migrations the file lacks, all in one BEGIN IMMEDIATE transaction (so a crash
 * leaves the old version, never half a new one), each followed by PRAGMA user_version=N. The
 * version is read again inside the transaction in case another process migrated meanwhile. */
static int
store_apply(struct pgcmk_db *db, struct pgcmk_err *err)
{
    const int want = (int)PGCMK_ARRAY_LEN(store_migrations);
    int have = 0, rc;

    if (store_exec(db->h, "BEGIN IMMEDIATE;", "start the migration", err))
        return -1;
    rc = store_user_version(db->h, &have);
    if (rc != SQLITE_OK) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "Cannot read the schema version (%s).",
                      sqlite3_errstr(rc));
        goto fail;
    }
    if (have < 0) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "Invalid schema version %d.", have);
        goto fail;
    }
    for (int v = have; v < want; v++) {
        char bump[48];

        snprintf(bump, sizeof(bump), "PRAGMA user_version=%d;", v + 1);
        if (store_exec(db->h, store_migrations[v], "apply a migration", err) ||
            store_exec(db->h, bump, "record the schema version", err)) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                          "Migration %d of the store %s failed; the log has the cause.", v + 1,
                          store_path);
            goto fail;
        }
        LOG_INFO("store %s: applied migration %d", store_path, v + 1);
    }
    if (store_exec(db->h, "COMMIT;", "commit the migrations", err))
        goto fail;
    return 0;

fail:
    store_rollback(db);
    return -1;
}

static int
store_migrate(struct pgcmk_db *db, struct pgcmk_err *err)
{
    const int want = (int)PGCMK_ARRAY_LEN(store_migrations);
    int have = 0, rc, ret;

    for (int pass = 0; pass < 2; pass++) {
        rc = store_user_version(db->h, &have);
        if (rc != SQLITE_OK) {
            if (err)
                err->cause = rc;
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                                 "Cannot read the schema version of the store %s (%s); is it a "
                                 "SQLite database?",
                                 store_path, sqlite3_errstr(rc));
        }
        if (have < 0)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                                 "The store %s has an invalid schema version %d.", store_path,
                                 have);
        if (have >= want || pass == 1)
            break;
        store_lock();
        ret = store_apply(db, err);
        store_unlock();
        if (ret)
            return -1;
    }
    if (have != want)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                             "The store %s has schema version %d, newer than this pgcmkd knows "
                             "(%d); refusing to open it. Use a newer pgcmkd or another data "
                             "directory.",
                             store_path, have, want);
    store_version = have;
    return 0;
}

static void
store_rollback(struct pgcmk_db *db)
{
    int rc;

    if (sqlite3_get_autocommit(db->h))
        return; /* SQLite already rolled back (it does on some errors) */
    rc = sqlite3_exec(db->h, "ROLLBACK;", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        LOG_ERR("rollback: sqlite rc=%d: %s", rc, sqlite3_errmsg(db->h));
}

static int
store_key_read(int fd, const char *path, struct pgcmk_err *err)
{
    struct stat sb;
    size_t got = 0;

    if (fstat(fd, &sb) != 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "Cannot stat the master key %s: %s.",
                             path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                             "The master key %s is not a regular file.", path);
    if ((sb.st_mode & 0177) != 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                             "The master key %s has mode %04o; it must be 0600 or stricter "
                             "(chmod 600 %s).",
                             path, (unsigned)(sb.st_mode & 07777), path);
    if (sb.st_size != (off_t)STORE_KEY_LEN)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                             "The master key %s is %lld bytes; it must be exactly %d.", path,
                             (long long)sb.st_size, STORE_KEY_LEN);
    while (got < STORE_KEY_LEN) {
        ssize_t n = read(fd, store_key + got, STORE_KEY_LEN - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "Cannot read the master key %s: %s.",
                                 path, n < 0 ? strerror(errno) : "short file");
        got += (size_t)n;
    }
    return 0;
}

static int
store_key_create(int fd, const char *path, struct pgcmk_err *err)
{
    char dir[PATH_MAX];
    const char *slash;
    size_t put = 0;
    int dfd;

    if (pgcmk_random(store_key, STORE_KEY_LEN))
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "No randomness for the master key.");
    while (put < STORE_KEY_LEN) {
        ssize_t n = write(fd, store_key + put, STORE_KEY_LEN - put);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "Cannot write the master key %s: %s.",
                                 path, n < 0 ? strerror(errno) : "no space");
        put += (size_t)n;
    }
    if (fsync(fd) != 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "Cannot sync the master key %s: %s.",
                             path, strerror(errno));
    /* The new directory entry must survive a crash too. */
    slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        LOG_WARN("cannot sync directory %s: %s", dir, strerror(errno));
    if (dfd >= 0)
        close(dfd);
    LOG_INFO("created master key %s", path);
    return 0;
}

/* Reads the 32-byte master key, creating it when absent. NULL path: a random key that dies with
 * the process. On failure the key buffer is wiped. */
static int
store_key_load(const char *path, struct pgcmk_err *err)
{
    int ret = -1;

    if (path == NULL) {
        if (pgcmk_random(store_key, STORE_KEY_LEN))
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "No randomness for the master key.");
        return 0;
    }
    /* Two rounds: another process may create the file between our two open() calls. */
    for (int round = 0; round < 2; round++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd >= 0) {
            ret = store_key_read(fd, path, err);
            close(fd);
            goto out;
        }
        if (errno != ENOENT) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "Cannot open the master key %s: %s.", path,
                          strerror(errno));
            goto out;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            ret = store_key_create(fd, path, err);
            if (close(fd) != 0 && ret == 0)
                ret = pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                                    "Cannot write the master key %s: %s.", path, strerror(errno));
            if (ret != 0)
                unlink(path);
            goto out;
        }
        if (errno != EEXIST) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "Cannot create the master key %s: %s.", path,
                          strerror(errno));
            goto out;
        }
    }
    pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "Cannot open or create the master key %s.", path);
out:
    if (ret != 0)
        OPENSSL_cleanse(store_key, sizeof(store_key));
    return ret;
}

int
pgcmk_store_open(const char *path, const char *master_key_path, int sync_full,
                 struct pgcmk_err *err)
{
    struct pgcmk_db *db;

    if (path == NULL || *path == '\0')
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "No store path was given.");
    if (atomic_load(&store_opened)) {
        LOG_WARN("the store is already open; closing it first");
        pgcmk_store_close();
    }
    if (!sqlite3_threadsafe())
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                             "This SQLite library was built without thread support.");
    store_path = pgcmk_xstrdup(path);
    store_sync_full = sync_full;
    store_memory = strcmp(path, ":memory:") == 0;
    if (store_key_load(master_key_path, err))
        goto fail;
    if (master_key_path == NULL && !store_memory)
        LOG_WARN("no master key file: secrets sealed in %s will not open after a restart", path);
    atomic_fetch_add(&store_gen, 1);
    db = store_connect(err);
    if (db == NULL)
        goto fail;
    if (store_memory) {
        store_shared = db;
    } else {
        store_mine = db;
        store_mine_gen = atomic_load(&store_gen);
    }
    atomic_store(&store_opened, 1);
    if (store_migrate(db, err))
        goto fail;
    return 0;

fail:
    pgcmk_store_close();
    return -1;
}

void
pgcmk_store_close(void)
{
    struct pgcmk_db *db;

    pthread_mutex_lock(&store_registry_mu);
    db = store_registry;
    store_registry = NULL;
    pthread_mutex_unlock(&store_registry_mu);
    while (db) {
        struct pgcmk_db *next = db->next;

        store_release(db);
        db = next;
    }
    atomic_store(&store_opened, 0);
    atomic_fetch_add(&store_gen, 1);
    store_shared = NULL;
    store_mine = NULL;
    store_version = 0;
    OPENSSL_cleanse(store_key, sizeof(store_key));
    free(store_path);
    store_path = NULL;
    store_memory = 0;
}

/* A thread that ends (a deployment's own thread, a wave of its resources) closes its connection
 * then, not at pgcmk_store_close: short-lived threads would otherwise pile up open connections.
 * A connection that pgcmk_store_close already took from the registry is not touched. */
static pthread_key_t store_thread_key;
static pthread_once_t store_thread_once = PTHREAD_ONCE_INIT;

static void
store_thread_exit(void *arg)
{
    struct pgcmk_db *db = arg, **pp;
    int found = 0;

    pthread_mutex_lock(&store_registry_mu);
    for (pp = &store_registry; *pp; pp = &(*pp)->next) {
        if (*pp == db) {
            *pp = db->next;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&store_registry_mu);
    if (found)
        store_release(db);
}

static void
store_thread_key_init(void)
{
    if (pthread_key_create(&store_thread_key, store_thread_exit) != 0)
        PGCMK_BUG("pthread_key_create");
}

struct pgcmk_db *
pgcmk_db(void)
{
    struct pgcmk_err err;
    unsigned gen = atomic_load(&store_gen);

    if (!atomic_load(&store_opened))
        PGCMK_BUG("the store is not open");
    if (store_memory)
        return store_shared;
    if (store_mine == NULL || store_mine_gen != gen) {
        pgcmk_err_clear(&err);
        store_mine = store_connect(&err); /* the old pointer, if any, was freed by close */
        if (store_mine == NULL)
            PGCMK_BUG("cannot open a store connection: %s", err.message);
        store_mine_gen = gen;
        pthread_once(&store_thread_once, store_thread_key_init);
        pthread_setspecific(store_thread_key, store_mine);
    }
    return store_mine;
}

sqlite3 *
pgcmk_db_handle(struct pgcmk_db *db)
{
    return db->h;
}

sqlite3_stmt *
pgcmk_db_stmt(struct pgcmk_db *db, enum pgcmk_stmt id)
{
    int rc;

    if ((unsigned)id >= PGCMK_STMT__COUNT)
        PGCMK_BUG("no statement %d in the catalog", (int)id);
    if (store_memory) {
        store_lock(); /* released by pgcmk_db_done */
        store_stmt_holds++;
    }
    if (db->cache[id] == NULL) {
        rc = sqlite3_prepare_v3(db->h, store_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &db->cache[id],
                                NULL);
        if (rc != SQLITE_OK)
            PGCMK_BUG("catalog statement %d does not prepare (rc=%d): %s", (int)id, rc,
                      sqlite3_errmsg(db->h));
    }
    return db->cache[id];
}

void
pgcmk_db_bind_opt(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

void
pgcmk_db_done(sqlite3_stmt *st)
{
    if (st == NULL)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (store_memory && store_stmt_holds > 0) { /* a second done() on one statement is harmless */
        store_stmt_holds--;
        store_unlock();
    }
}

int
pgcmk_db_fail(struct pgcmk_db *db, int rc, const char *what, struct pgcmk_err *err)
{
    const char *msg = "";
    int prim = rc & 0xff;

    if (what == NULL)
        what = "use the store";
    if (err)
        err->cause = rc;
    if (store_memory)
        store_lock(); /* sqlite3_errmsg's text lives in the shared connection */
    if (db)
        msg = sqlite3_errmsg(db->h);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        LOG_DEBUG("%s: sqlite rc=%d: %s", what, rc, msg);
        rc = pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL, "The resource already exists (%.100s).",
                           what);
    } else if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED) {
        LOG_WARN("%s: sqlite rc=%d: %s", what, rc, msg);
        rc = pgcmk_err_set(err, PGCMK_E_UNAVAILABLE, NULL, "The store is busy; retry the request.");
    } else {
        LOG_ERR("%s: sqlite rc=%d (%s): %s", what, rc, sqlite3_errstr(rc), msg);
        rc = pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                           "The store failed to %.100s; the log has the cause.", what);
    }
    if (store_memory)
        store_unlock();
    return rc;
}

int
pgcmk_db_tx(struct pgcmk_db *db, pgcmk_tx_fn fn, void *ctx, struct pgcmk_err *err)
{
    int rc, ret;

    if (store_tx_depth > 0) /* nested: part of this thread's open transaction */
        return fn(db, ctx, err) == 0 ? 0 : -1;
    pgcmk_events_tx_begin(); /* events published by fn wait for the COMMIT */
    store_lock();
    store_tx_depth = 1;
    rc = sqlite3_exec(db->h, "BEGIN IMMEDIATE;", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        ret = pgcmk_db_fail(db, rc, "begin a transaction", err);
        goto out;
    }
    ret = fn(db, ctx, err) == 0 ? 0 : -1;
    if (ret == 0) {
        rc = sqlite3_exec(db->h, "COMMIT;", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            ret = pgcmk_db_fail(db, rc, "commit a transaction", err);
            store_rollback(db);
        }
    } else {
        store_rollback(db);
    }
out:
    store_tx_depth = 0;
    store_unlock();
    pgcmk_events_tx_end(ret == 0); /* after the unlock: listeners may write */
    return ret;
}

int
pgcmk_db_each(struct pgcmk_db *db, sqlite3_stmt *st, pgcmk_row_fn row_fn, void *arg,
              const char *what, struct pgcmk_err *err)
{
    int n = 0, ret;
    /* A write outside pgcmk_db_tx (one autocommit statement) queues on the writer lock too,
     * instead of meeting another writer in SQLite and sleeping in busy_timeout. */
    int lock = !store_memory && !sqlite3_stmt_readonly(st);

    if (lock)
        store_lock();
    ret = store_each(db, st, row_fn, arg, what, err, &n);
    if (lock)
        store_unlock();
    return ret < 0 ? ret : n;
}

static int
store_each(struct pgcmk_db *db, sqlite3_stmt *st, pgcmk_row_fn row_fn, void *arg, const char *what,
           struct pgcmk_err *err, int *count)
{
    int rc, n = 0, ret = 0;

    sqlite3_reset(st); /* from the first row; the caller's bindings stay */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        if (row_fn == NULL)
            continue;
        ret = row_fn(st, arg, err);
        if (ret != 0)
            break;
    }
    if (ret < 0) {
        pgcmk_db_done(st);
        return -1;
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        /* before done(): the reset would replace the connection's error text */
        ret = pgcmk_db_fail(db, rc, what, err);
        pgcmk_db_done(st);
        return ret;
    }
    pgcmk_db_done(st);
    *count = n;
    return 0;
}

int
pgcmk_db_step(struct pgcmk_db *db, sqlite3_stmt *st, const char *what, struct pgcmk_err *err)
{
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return pgcmk_db_fail(db, rc, what, err); /* before done(): the error text is still there */
}

int
pgcmk_db_collect_json(sqlite3_stmt *st, void *arr, struct pgcmk_err *err)
{
    const char *text = (const char *)sqlite3_column_text(st, 0);
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;

    PGCMK_UNUSED(err);
    if (v == NULL)
        LOG_WARN("a stored row is not JSON; it is left out of the list");
    else
        json_array_append_new(arr, v);
    return 0;
}

int
pgcmk_db_collect_row(sqlite3_stmt *st, void *arr, struct pgcmk_err *err)
{
    json_t *row = json_array();
    int i, n = sqlite3_column_count(st);

    PGCMK_UNUSED(err);
    for (i = 0; i < n; i++) {
        const char *text = (const char *)sqlite3_column_text(st, i);

        json_array_append_new(row, text ? json_string(text) : json_null());
    }
    json_array_append_new(arr, row);
    return 0;
}

int
pgcmk_db_collect_text(sqlite3_stmt *st, void *arr, struct pgcmk_err *err)
{
    const char *text = (const char *)sqlite3_column_text(st, 0);

    PGCMK_UNUSED(err);
    if (text)
        json_array_append_new(arr, json_string(text));
    return 0;
}

/* One savepoint statement from the catalog, stepped to its end. */
static int
store_sp_exec(struct pgcmk_db *db, enum pgcmk_stmt id, const char *what, struct pgcmk_err *err)
{
    return pgcmk_db_each(db, pgcmk_db_stmt(db, id), NULL, NULL, what, err) < 0 ? -1 : 0;
}

int
pgcmk_db_savepoint(struct pgcmk_db *db, pgcmk_tx_fn fn, void *ctx, struct pgcmk_err *err)
{
    struct pgcmk_err ignored;
    void *mark;

    if (store_tx_depth == 0) /* no transaction to nest in: a whole one under the writer lock */
        return pgcmk_db_tx(db, fn, ctx, err);
    if (store_sp_exec(db, PGCMK_STMT_STORE_SAVEPOINT, "open a savepoint", err))
        return -1;
    mark = pgcmk_events_tx_mark(); /* events fn publishes go with its writes */
    if (fn(db, ctx, err) == 0)
        return store_sp_exec(db, PGCMK_STMT_STORE_RELEASE, "release a savepoint", err);
    pgcmk_events_tx_undo(mark);
    /* fn's error stays in err; a failure to roll back only goes to the log (and the caller's
     * transaction, which sees -1, rolls back as a whole). */
    pgcmk_err_clear(&ignored);
    if (store_sp_exec(db, PGCMK_STMT_STORE_ROLLBACK_TO, "roll back to a savepoint", &ignored) ||
        store_sp_exec(db, PGCMK_STMT_STORE_RELEASE, "release a savepoint", &ignored))
        LOG_ERR("savepoint: %s", ignored.message);
    return -1;
}

int
pgcmk_store_seal(const void *pt, size_t pt_len, const char *aad, unsigned char **out,
                 size_t *out_len)
{
    if (!atomic_load(&store_opened))
        PGCMK_BUG("sealing before the store is open");
    return pgcmk_aead_seal(store_key, aad ? aad : "", aad ? strlen(aad) : 0, pt, pt_len, out,
                           out_len);
}

int
pgcmk_store_unseal(const void *sealed, size_t sealed_len, const char *aad, unsigned char **out,
                   size_t *out_len)
{
    if (!atomic_load(&store_opened))
        PGCMK_BUG("unsealing before the store is open");
    return pgcmk_aead_open(store_key, aad ? aad : "", aad ? strlen(aad) : 0, sealed, sealed_len,
                           out, out_len);
}

int
pgcmk_store_version(void)
{
    return store_version;
}

int
pgcmk_store_migrations(void)
{
    return (int)PGCMK_ARRAY_LEN(store_migrations);
}

static int
setting_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    const unsigned char *text = sqlite3_column_text(st, 0);

    PGCMK_UNUSED(err);
    *(char **)arg = pgcmk_xstrdup(text ? (const char *)text : "");
    return 1; /* the key is unique: one row */
}

int
pgcmk_store_setting_get(const char *key, char **value)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_SETTING_GET);
    int n;

    *value = NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    n = pgcmk_db_each(db, st, setting_row, value, "read a setting", NULL);
    return n < 0 ? -1 : n == 0 ? 1 : 0;
}

struct setting_put {
    const char *key, *value;
};

static int
setting_put_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    const struct setting_put *p = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_SETTING_PUT);

    sqlite3_bind_text(st, 1, p->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->value, -1, SQLITE_STATIC);
    return pgcmk_db_each(db, st, NULL, NULL, "write a setting", err) < 0 ? -1 : 0;
}

int
pgcmk_store_setting_put(const char *key, const char *value, struct pgcmk_err *err)
{
    struct setting_put p = {key, value};

    return pgcmk_db_tx(pgcmk_db(), setting_put_tx, &p, err);
}
