/* store.h - the one SQLite file: WAL, append-only migrations, the statement catalog,
 * per-thread connections, serialised writers, secrets sealed under the master key.
 *
 * Every SQL text lives in src/store/catalog.def; every table in src/store/migrate.c. */
#ifndef PGCMK_STORE_H
#define PGCMK_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "pgcmk/core.h"
#include "pgcmk/err.h"

enum pgcmk_stmt {

#define PGCMK_X_STMT(name, sql) PGCMK_STMT_##name,
#include "../../src/store/catalog.def"
#undef PGCMK_X_STMT
    PGCMK_STMT__COUNT
};

struct pgcmk_db; /* one per thread: a connection and its statement cache */

/* Opens (creating if needed) the store at `path` (":memory:" for tests: then every thread shares
 * one connection behind the writer lock), applies missing migrations, loads or creates the master
 * key (`master_key_path`, 0600, 32 random bytes; NULL for :memory: = a random key per process).
 * sync_full: PRAGMA synchronous=FULL instead of NORMAL. */
int pgcmk_store_open(const char *path, const char *master_key_path, int sync_full,
                     struct pgcmk_err *err) PGCMK_WUR;
/* Closes every thread's connection (call after all threads are stopped). */
void pgcmk_store_close(void);

/* This thread's connection, opened on first use. Never NULL after a successful open (fatal). */
struct pgcmk_db *pgcmk_db(void);
sqlite3 *pgcmk_db_handle(struct pgcmk_db *db);

/* A prepared statement from the catalog (prepared once per connection, persistent).
 * Callers bind with ?N, step, and must call pgcmk_db_done() on every path. */
sqlite3_stmt *pgcmk_db_stmt(struct pgcmk_db *db, enum pgcmk_stmt id);
void pgcmk_db_done(sqlite3_stmt *st);
/* Binds s as text (SQLITE_STATIC: s must outlive the step), or NULL when s is NULL. */
void pgcmk_db_bind_opt(sqlite3_stmt *st, int i, const char *s);

/* Runs fn inside BEGIN IMMEDIATE under the process-wide writer lock; COMMIT when fn returns 0,
 * ROLLBACK when it returns -1 (err filled by fn). The commit is done before this returns. */
typedef int (*pgcmk_tx_fn)(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err);
int pgcmk_db_tx(struct pgcmk_db *db, pgcmk_tx_fn fn, void *ctx, struct pgcmk_err *err) PGCMK_WUR;

/* The one step loop. Runs `st` (from pgcmk_db_stmt, bound by the caller) from its start:
 * row_fn is called for each row; it returns 0 to go on, 1 to stop early (success) or -1 with
 * err set. After the last row anything but SQLITE_DONE is an error, mapped once by
 * pgcmk_db_fail(what). The statement is always released (pgcmk_db_done): do not touch it after.
 * row_fn may be NULL (a write, or a count of rows). Returns the number of rows seen, or -1. */
typedef int (*pgcmk_row_fn)(sqlite3_stmt *st, void *arg, struct pgcmk_err *err);
int pgcmk_db_each(struct pgcmk_db *db, sqlite3_stmt *st, pgcmk_row_fn row_fn, void *arg,
                  const char *what, struct pgcmk_err *err) PGCMK_WUR;

/* One step of `st` (bound by the caller), for statements that give at most one row: 1 on
 * SQLITE_ROW (the row's columns can be read), 0 on SQLITE_DONE, -1 on anything else (err set by
 * pgcmk_db_fail(what)). The statement is NOT released: the caller calls pgcmk_db_done(). */
int pgcmk_db_step(struct pgcmk_db *db, sqlite3_stmt *st, const char *what,
                  struct pgcmk_err *err) PGCMK_WUR;

/* A row_fn for lists: parses column 0 (stored JSON text) and appends it to the json_t array
 * `arr`. A row that does not parse is skipped (and logged). */
int pgcmk_db_collect_json(sqlite3_stmt *st, void *arr, struct pgcmk_err *err);
/* A row_fn that appends the row as a json_t array of its columns' text (NULL as null) to the
 * json_t array `arr`: for a step loop that collects keys first and acts on them after. */
int pgcmk_db_collect_row(sqlite3_stmt *st, void *arr, struct pgcmk_err *err);
/* A row_fn that appends column 0's text as a json_t string to the json_t array `arr` (ids). */
int pgcmk_db_collect_text(sqlite3_stmt *st, void *arr, struct pgcmk_err *err);

/* Runs fn as a unit inside the current transaction: SAVEPOINT, then RELEASE when fn returns 0,
 * ROLLBACK TO (and RELEASE) when it returns -1, so only fn's writes are undone and the
 * transaction goes on. Outside a transaction it is pgcmk_db_tx (BEGIN IMMEDIATE under the
 * writer lock). Savepoints nest. */
int pgcmk_db_savepoint(struct pgcmk_db *db, pgcmk_tx_fn fn, void *ctx,
                       struct pgcmk_err *err) PGCMK_WUR;

/* Maps a SQLite result code to an error: UNIQUE/PRIMARYKEY -> Conflict, BUSY -> 503,
 * else 500 (the sqlite3_errmsg text goes to the log, never to the client). Returns -1. */
int pgcmk_db_fail(struct pgcmk_db *db, int rc, const char *what, struct pgcmk_err *err);

/* Secrets at rest: AES-256-GCM under the master key, `aad` binds the ciphertext to its row. */
int pgcmk_store_seal(const void *pt, size_t pt_len, const char *aad, unsigned char **out,
                     size_t *out_len) PGCMK_WUR;
int pgcmk_store_unseal(const void *sealed, size_t sealed_len, const char *aad, unsigned char **out,
                       size_t *out_len) PGCMK_WUR;

/* Schema version after migrations (PRAGMA user_version) and the number of migrations known. */
int pgcmk_store_version(void);
int pgcmk_store_migrations(void);

/* Small key/value settings table (clock offset and the like). */
int pgcmk_store_setting_get(const char *key, char **value) PGCMK_WUR; /* 0 found, 1 absent, -1 */
int pgcmk_store_setting_put(const char *key, const char *value, struct pgcmk_err *err) PGCMK_WUR;

#endif
