/* store.c - the SQLite store: open and migrate, one connection per thread (a registry closes
 * them all), the statement catalog, serialised write transactions, the master key and sealing. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "pgcmk/crypto.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"

struct pgcmk_db {
    sqlite3 *h;
    sqlite3_stmt *cache[PGCMK_STMT__COUNT];
    int tx_depth;
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

static char *store_path;
static int store_sync_full;
static int store_memory;
static unsigned char store_key[PGCMK_AEAD_KEY_LEN];
static pthread_mutex_t store_registry_mu = PTHREAD_MUTEX_INITIALIZER;
/* Serialises writers (and, for ":memory:", every use of the one shared connection). */
static pthread_mutex_t store_writer_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pgcmk_db *store_registry;
static struct pgcmk_db *store_shared; /* ":memory:" */
static _Thread_local struct pgcmk_db *store_mine;
static int store_version;

static int
store_exec(sqlite3 *h, const char *sql, struct pgcmk_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        LOG_ERR("sql failed (%d): %s", rc, msg ? msg : "?");
        sqlite3_free(msg);
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "the store could not run a statement");
    }
    return 0;
}

static struct pgcmk_db *
store_connect(struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_xcalloc(1, sizeof(*db));
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    char pragmas[160];

    if (store_memory)
        flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(store_path, &db->h, flags, NULL) != SQLITE_OK) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot open the store '%s': %s", store_path,
                      db->h ? sqlite3_errmsg(db->h) : "out of memory");
        sqlite3_close(db->h);
        free(db);
        return NULL;
    }
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, 5000);
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA foreign_keys=ON; PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;",
             store_sync_full ? "FULL" : "NORMAL");
    if (store_exec(db->h, store_memory ? "PRAGMA foreign_keys=ON;" : pragmas, err)) {
        sqlite3_close(db->h);
        free(db);
        return NULL;
    }
    pthread_mutex_lock(&store_registry_mu);
    db->next = store_registry;
    store_registry = db;
    pthread_mutex_unlock(&store_registry_mu);
    return db;
}

static int
store_user_version(sqlite3 *h)
{
    sqlite3_stmt *st;
    int v = -1;

    if (sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int
store_migrate(struct pgcmk_db *db, struct pgcmk_err *err)
{
    int have = store_user_version(db->h), want = (int)PGCMK_ARRAY_LEN(store_migrations);

    if (have < 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot read the schema version");
    if (have > want)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                             "the store's schema version %d is newer than this pgcmkd knows (%d); "
                             "use a newer pgcmkd",
                             have, want);
    for (int v = have; v < want; v++) {
        char bump[64];

        snprintf(bump, sizeof(bump), "PRAGMA user_version=%d;", v + 1);
        if (store_exec(db->h, "BEGIN IMMEDIATE;", err))
            return -1;
        if (store_exec(db->h, store_migrations[v], err) || store_exec(db->h, bump, err)) {
            sqlite3_exec(db->h, "ROLLBACK;", NULL, NULL, NULL);
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "migration %d failed", v + 1);
        }
        if (store_exec(db->h, "COMMIT;", err))
            return -1;
        LOG_INFO("store migrated to schema version %d", v + 1);
    }
    store_version = want;
    return 0;
}

static int
store_load_key(const char *path, struct pgcmk_err *err)
{
    struct stat sb;
    int fd;
    ssize_t n;

    if (path == NULL)
        return pgcmk_random(store_key, sizeof(store_key))
                   ? pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "no randomness for the master key")
                   : 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot create master key %s: %s",
                                 path, strerror(errno));
        if (pgcmk_random(store_key, sizeof(store_key)) ||
            write(fd, store_key, sizeof(store_key)) != (ssize_t)sizeof(store_key) ||
            fsync(fd) != 0) {
            close(fd);
            unlink(path);
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot write master key %s", path);
        }
        close(fd);
        return 0;
    }
    if (fd < 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot open master key %s: %s", path,
                             strerror(errno));
    if (fstat(fd, &sb) != 0 || (sb.st_mode & 077) != 0) {
        close(fd);
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                             "master key %s must be readable by its owner only (chmod 600)", path);
    }
    n = read(fd, store_key, sizeof(store_key));
    if (n != (ssize_t)sizeof(store_key) || sb.st_size != (off_t)sizeof(store_key)) {
        close(fd);
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "master key %s must be %d bytes",
                             path, (int)sizeof(store_key));
    }
    close(fd);
    return 0;
}

int
pgcmk_store_open(const char *path, const char *master_key_path, int sync_full,
                 struct pgcmk_err *err)
{
    struct pgcmk_db *db;

    free(store_path);
    store_path = pgcmk_xstrdup(path);
    store_sync_full = sync_full;
    store_memory = strcmp(path, ":memory:") == 0;
    if (store_load_key(store_memory ? NULL : master_key_path, err))
        return -1;
    db = store_connect(err);
    if (db == NULL)
        return -1;
    if (store_migrate(db, err)) {
        pgcmk_store_close();
        return -1;
    }
    if (store_memory)
        store_shared = db;
    else
        store_mine = db;
    return 0;
}

static void
store_release(struct pgcmk_db *db)
{
    int rc;

    for (int i = 0; i < PGCMK_STMT__COUNT; i++)
        sqlite3_finalize(db->cache[i]);
    rc = sqlite3_close(db->h);
    if (rc != SQLITE_OK)
        LOG_WARN("closing a store connection: rc=%d", rc);
    free(db);
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
    store_shared = NULL;
    store_mine = NULL;
    OPENSSL_cleanse(store_key, sizeof(store_key));
    free(store_path);
    store_path = NULL;
}

struct pgcmk_db *
pgcmk_db(void)
{
    struct pgcmk_err err;

    if (store_memory)
        return store_shared;
    if (store_mine == NULL) {
        store_mine = store_connect(&err);
        if (store_mine == NULL)
            PGCMK_BUG("cannot open a store connection: %s", err.message);
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
    if ((unsigned)id >= PGCMK_STMT__COUNT)
        PGCMK_BUG("no statement %d", (int)id);
    if (db->cache[id] == NULL &&
        sqlite3_prepare_v3(db->h, store_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &db->cache[id],
                           NULL) != SQLITE_OK)
        PGCMK_BUG("catalog statement %d does not prepare: %s", (int)id, sqlite3_errmsg(db->h));
    return db->cache[id];
}

void
pgcmk_db_done(sqlite3_stmt *st)
{
    if (st == NULL)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

int
pgcmk_db_fail(struct pgcmk_db *db, int rc, const char *what, struct pgcmk_err *err)
{
    LOG_ERR("%s: sqlite rc=%d: %s", what, rc, db ? sqlite3_errmsg(db->h) : "");
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL, "The resource already exists (%s).",
                             what);
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
        return pgcmk_err_set(err, PGCMK_E_UNAVAILABLE, NULL,
                             "The store is busy; retry the request.");
    return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "store failure (%s)", what);
}

int
pgcmk_db_tx(struct pgcmk_db *db, pgcmk_tx_fn fn, void *ctx, struct pgcmk_err *err)
{
    int rc;

    if (db->tx_depth > 0) /* nested: part of the caller's transaction */
        return fn(db, ctx, err);
    pthread_mutex_lock(&store_writer_mu);
    db->tx_depth++;
    rc = sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = pgcmk_db_fail(db, rc, "begin", err);
        goto out;
    }
    rc = fn(db, ctx, err);
    if (rc == 0) {
        int crc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL);

        if (crc != SQLITE_OK) {
            sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
            rc = pgcmk_db_fail(db, crc, "commit", err);
        }
    } else {
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
        rc = -1;
    }
out:
    db->tx_depth--;
    pthread_mutex_unlock(&store_writer_mu);
    return rc;
}

int
pgcmk_store_seal(const void *pt, size_t pt_len, const char *aad, unsigned char **out,
                 size_t *out_len)
{
    return pgcmk_aead_seal(store_key, aad ? aad : "", aad ? strlen(aad) : 0, pt, pt_len, out,
                           out_len);
}

int
pgcmk_store_unseal(const void *sealed, size_t sealed_len, const char *aad, unsigned char **out,
                   size_t *out_len)
{
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

int
pgcmk_store_setting_get(const char *key, char **value)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_SETTING_GET);
    int rc;

    *value = NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *value = pgcmk_xstrdup((const char *)sqlite3_column_text(st, 0));
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? 1 : -1;
    }
    pgcmk_db_done(st);
    return rc;
}

struct setting_put {
    const char *key, *value;
};

static int
setting_put_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct setting_put *p = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_SETTING_PUT);
    int rc;

    sqlite3_bind_text(st, 1, p->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->value, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "write setting", err);
}

int
pgcmk_store_setting_put(const char *key, const char *value, struct pgcmk_err *err)
{
    struct setting_put p = {key, value};

    return pgcmk_db_tx(pgcmk_db(), setting_put_tx, &p, err);
}
