/* test_store.c - the store: open and migrate, master key, settings, transactions, error mapping,
 * sealing, per-thread connections and the ":memory:" mode. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "pgcmk/crypto.h"
#include "pgcmk/events.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"
#include "t.h"

#define THREAD_PUTS 200

static char tdir[64];

static char *
tpath(const char *name)
{
    return pgcmk_xasprintf("%s/%s", tdir, name);
}

static int
read_file(const char *path, unsigned char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = read(fd, buf, cap);
    close(fd);
    if (n < 0)
        return -1;
    *len = (size_t)n;
    return 0;
}

static int
write_file(const char *path, const void *buf, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = write(fd, buf, len);
    close(fd);
    return n == (ssize_t)len && chmod(path, mode) == 0 ? 0 : -1;
}

static int
pragma_int(const char *sql)
{
    sqlite3_stmt *st;
    int v = -1;

    if (sqlite3_prepare_v2(pgcmk_db_handle(pgcmk_db()), sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int
setting_is(const char *key, const char *want)
{
    char *v = NULL;
    int rc = pgcmk_store_setting_get(key, &v), ok;

    ok = rc == 0 && v && strcmp(v, want) == 0;
    free(v);
    return ok;
}

static int
setting_absent(const char *key)
{
    char *v = NULL;
    int rc = pgcmk_store_setting_get(key, &v);

    free(v);
    return rc == 1 && v == NULL;
}

/* ---- transactions ---- */

static int
put_then_fail_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_SETTING_PUT);
    int rc;

    sqlite3_bind_text(st, 1, (const char *)ctx, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, "never", -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    if (rc != SQLITE_DONE)
        return pgcmk_db_fail(db, rc, "write a setting", err);
    return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, NULL, "changed my mind");
}

static int
nested_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    const int *fail = ctx;

    if (pgcmk_db(), db != pgcmk_db())
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "not this thread's connection");
    /* setting_put opens its own pgcmk_db_tx: nested, so it joins this one */
    if (pgcmk_store_setting_put("nested.inner", "1", err))
        return -1;
    if (*fail)
        return pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL, "outer fails");
    return pgcmk_store_setting_put("nested.outer", "1", err);
}

static int
exec_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    int rc = sqlite3_exec(pgcmk_db_handle(db), (const char *)ctx, NULL, NULL, NULL);

    return rc == SQLITE_OK ? 0 : pgcmk_db_fail(db, rc, "run test SQL", err);
}

static void
test_transactions(void)
{
    struct pgcmk_err err;
    int fail;

    pgcmk_err_clear(&err);
    CHECK(pgcmk_db_tx(pgcmk_db(), put_then_fail_tx, (void *)"tx.rolled", &err) == -1);
    CHECK(err.code == PGCMK_E_BAD_REQUEST);
    CHECK(setting_absent("tx.rolled"));
    CHECK(sqlite3_get_autocommit(pgcmk_db_handle(pgcmk_db())));

    fail = 1;
    CHECK(pgcmk_db_tx(pgcmk_db(), nested_tx, &fail, &err) == -1);
    CHECK(err.code == PGCMK_E_CONFLICT);
    CHECK(setting_absent("nested.inner")); /* the inner write went with the outer rollback */
    CHECK(setting_absent("nested.outer"));
    fail = 0;
    CHECK(pgcmk_db_tx(pgcmk_db(), nested_tx, &fail, &err) == 0);
    CHECK(setting_is("nested.inner", "1"));
    CHECK(setting_is("nested.outer", "1"));
    CHECK(sqlite3_get_autocommit(pgcmk_db_handle(pgcmk_db())));
}

/* ---- the step loop ---- */

struct rows {
    int seen, stop_at, fail_at;
    char keys[512];
};

static int
collect_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct rows *r = arg;
    const unsigned char *k = sqlite3_column_text(st, 0);

    r->seen++;
    if (r->fail_at && r->seen == r->fail_at)
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, NULL, "row %d refused", r->seen);
    strncat(r->keys, k ? (const char *)k : "?", sizeof(r->keys) - strlen(r->keys) - 2);
    strcat(r->keys, ",");
    return r->stop_at && r->seen == r->stop_at ? 1 : 0;
}

static sqlite3_stmt *
each_stmt(struct pgcmk_db *db, const char *sql)
{
    sqlite3_stmt *st = NULL;

    /* test SQL (not in the catalog): prepared, used once, finalized by the caller */
    if (sqlite3_prepare_v2(pgcmk_db_handle(db), sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    return st;
}

static int
each_rows(const char *sql, struct rows *r, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = each_stmt(db, sql);
    int n;

    if (st == NULL)
        return -2;
    n = pgcmk_db_each(db, st, collect_row, r, "list test rows", err);
    sqlite3_finalize(st);
    return n;
}

static void
test_each(void)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    struct rows r;
    sqlite3_stmt *st;
    int n;

    pgcmk_err_clear(&err);
    CHECK(pgcmk_store_setting_put("each.a", "1", &err) == 0);
    CHECK(pgcmk_store_setting_put("each.b", "2", &err) == 0);
    CHECK(pgcmk_store_setting_put("each.c", "3", &err) == 0);

    /* every row, in order, then DONE */
    memset(&r, 0, sizeof(r));
    CHECK(each_rows("SELECT key FROM settings WHERE key LIKE 'each.%' ORDER BY key", &r, &err) ==
          3);
    CHECK_STR(r.keys, "each.a,each.b,each.c,");

    /* the callback stops early: success, with the rows seen so far */
    memset(&r, 0, sizeof(r));
    r.stop_at = 2;
    CHECK(each_rows("SELECT key FROM settings WHERE key LIKE 'each.%' ORDER BY key", &r, &err) ==
          2);
    CHECK_STR(r.keys, "each.a,each.b,");

    /* the callback fails: -1 and its own error */
    memset(&r, 0, sizeof(r));
    r.fail_at = 2;
    pgcmk_err_clear(&err);
    CHECK(each_rows("SELECT key FROM settings WHERE key LIKE 'each.%' ORDER BY key", &r, &err) ==
          -1);
    CHECK(err.code == PGCMK_E_BAD_REQUEST);

    /* no rows */
    memset(&r, 0, sizeof(r));
    CHECK(each_rows("SELECT key FROM settings WHERE key='each.none'", &r, &err) == 0);
    CHECK(r.seen == 0);

    /* a step that fails after a row (here: a runtime error) is an error, mapped once, even
     * though a row came first: the final code is checked, not just "no more rows" */
    memset(&r, 0, sizeof(r));
    pgcmk_err_clear(&err);
    n = each_rows("SELECT 'x' UNION ALL SELECT abs(-9223372036854775807 - 1)", &r, &err);
    CHECK(n == -1);
    CHECK(r.seen == 1);
    CHECK(err.code == PGCMK_E_INTERNAL);
    CHECK(strstr(err.message, "list test rows") != NULL);
    CHECK(strstr(err.message, "overflow") == NULL); /* SQLite's text stays in the log */

    /* a catalog statement: bound by the caller, released by pgcmk_db_each, reusable after */
    memset(&r, 0, sizeof(r));
    st = pgcmk_db_stmt(db, PGCMK_STMT_SETTING_GET);
    sqlite3_bind_text(st, 1, "each.b", -1, SQLITE_STATIC);
    CHECK(pgcmk_db_each(db, st, collect_row, &r, "read a setting", &err) == 1);
    CHECK_STR(r.keys, "2,");
    CHECK(sqlite3_bind_parameter_count(st) == 1 && sqlite3_stmt_busy(st) == 0);
    CHECK(setting_is("each.a", "1")); /* the statement (and, in :memory:, the lock) was released */

    /* a write without a callback: DONE, zero rows; a failed write maps like pgcmk_db_fail */
    CHECK(pgcmk_db_tx(db, exec_tx,
                      (void *)"CREATE TEMP TABLE IF NOT EXISTS t_e(k TEXT PRIMARY KEY)",
                      &err) == 0);
    st = each_stmt(db, "INSERT INTO t_e VALUES('k')");
    CHECK(st != NULL && pgcmk_db_each(db, st, NULL, NULL, "insert", &err) == 0);
    pgcmk_err_clear(&err);
    CHECK(st != NULL && pgcmk_db_each(db, st, NULL, NULL, "insert", &err) == -1);
    CHECK(err.code == PGCMK_E_CONFLICT);
    sqlite3_finalize(st);
    CHECK(pgcmk_db_tx(db, exec_tx, (void *)"DROP TABLE temp.t_e;", &err) == 0);
}

/* pgcmk_db_step (one row or none, a failed step an error) and the collecting row functions */
static void
test_step_and_collect(void)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    sqlite3_stmt *st;
    json_t *arr;
    char *text;

    pgcmk_err_clear(&err);
    CHECK(pgcmk_store_setting_put("step.a", "1", &err) == 0);
    CHECK(pgcmk_store_setting_put("step.b", "2", &err) == 0);
    /* a row: 1, its columns readable until done() */
    st = pgcmk_db_stmt(db, PGCMK_STMT_SETTING_GET);
    sqlite3_bind_text(st, 1, "step.a", -1, SQLITE_STATIC);
    CHECK(pgcmk_db_step(db, st, "read a setting", &err) == 1);
    CHECK_STR((const char *)sqlite3_column_text(st, 0), "1");
    pgcmk_db_done(st);
    /* no row: 0, no error */
    st = pgcmk_db_stmt(db, PGCMK_STMT_SETTING_GET);
    sqlite3_bind_text(st, 1, "step.none", -1, SQLITE_STATIC);
    CHECK(pgcmk_db_step(db, st, "read a setting", &err) == 0);
    CHECK(err.code == PGCMK_E_OK);
    pgcmk_db_done(st);
    /* a failed step is an error (-1, a 500 with the cause in the log), never "not found" */
    st = each_stmt(db, "SELECT abs(-9223372036854775807 - 1)");
    CHECK(st != NULL && pgcmk_db_step(db, st, "read a test value", &err) == -1);
    CHECK(err.code == PGCMK_E_INTERNAL);
    CHECK(strstr(err.message, "read a test value") != NULL);
    sqlite3_finalize(st);

    /* pgcmk_db_collect_text: column 0 of each row; pgcmk_db_collect_row: every column */
    arr = json_array();
    st = each_stmt(db, "SELECT key, value FROM settings WHERE key LIKE 'step.%' ORDER BY key");
    CHECK(st != NULL && pgcmk_db_each(db, st, pgcmk_db_collect_text, arr, "list", &err) == 2);
    text = json_dumps(arr, JSON_COMPACT);
    CHECK_STR(text, "[\"step.a\",\"step.b\"]");
    free(text);
    json_array_clear(arr);
    CHECK(st != NULL && pgcmk_db_each(db, st, pgcmk_db_collect_row, arr, "list", &err) == 2);
    text = json_dumps(arr, JSON_COMPACT);
    CHECK_STR(text, "[[\"step.a\",\"1\"],[\"step.b\",\"2\"]]");
    free(text);
    sqlite3_finalize(st);
    json_array_clear(arr);
    st = each_stmt(db, "SELECT 'x', NULL");
    CHECK(st != NULL && pgcmk_db_each(db, st, pgcmk_db_collect_row, arr, "list", &err) == 1);
    CHECK(json_is_null(json_array_get(json_array_get(arr, 0), 1)));
    sqlite3_finalize(st);
    json_decref(arr);
}

/* ---- savepoints ---- */

struct sp_case {
    const char *key;
    int fail;
};

static int
sp_put(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    const struct sp_case *c = ctx;

    (void)db;
    if (pgcmk_store_setting_put(c->key, "1", err))
        return -1;
    return c->fail ? pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL, "savepoint %s fails", c->key) : 0;
}

static int
sp_outer_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    int *inner_rc = ctx;
    struct sp_case keep = {"sp.kept", 0}, undo = {"sp.undone", 1}, deep = {"sp.deep", 1};
    struct pgcmk_err inner;

    if (pgcmk_store_setting_put("sp.before", "1", err))
        return -1;
    if (pgcmk_db_savepoint(db, sp_put, &keep, err))
        return -1;
    pgcmk_err_clear(&inner);
    inner_rc[0] = pgcmk_db_savepoint(db, sp_put, &undo, &inner);
    inner_rc[1] = inner.code == PGCMK_E_CONFLICT;
    /* nested: a failing savepoint inside a kept one */
    pgcmk_err_clear(&inner);
    inner_rc[2] = pgcmk_db_savepoint(db, sp_put, &deep, &inner);
    inner_rc[3] = sqlite3_get_autocommit(pgcmk_db_handle(db)); /* still in the transaction */
    return pgcmk_store_setting_put("sp.after", "1", err);
}

static void
test_savepoint(void)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    struct sp_case alone_ok = {"sp.alone", 0}, alone_bad = {"sp.alone.bad", 1};
    int inner[4] = {0, 0, 0, -1};

    pgcmk_err_clear(&err);
    CHECK(pgcmk_db_tx(db, sp_outer_tx, inner, &err) == 0);
    CHECK(inner[0] == -1 && inner[1] == 1 && inner[2] == -1);
    CHECK(inner[3] == 0);
    CHECK(setting_is("sp.before", "1"));
    CHECK(setting_is("sp.kept", "1"));
    CHECK(setting_absent("sp.undone")); /* only the failed savepoint's write is gone */
    CHECK(setting_absent("sp.deep"));
    CHECK(setting_is("sp.after", "1"));
    CHECK(sqlite3_get_autocommit(pgcmk_db_handle(db)));

    /* outside a transaction it is a transaction of its own */
    CHECK(pgcmk_db_savepoint(db, sp_put, &alone_ok, &err) == 0);
    CHECK(setting_is("sp.alone", "1"));
    pgcmk_err_clear(&err);
    CHECK(pgcmk_db_savepoint(db, sp_put, &alone_bad, &err) == -1);
    CHECK(err.code == PGCMK_E_CONFLICT);
    CHECK(setting_absent("sp.alone.bad"));
    CHECK(sqlite3_get_autocommit(pgcmk_db_handle(db)));
}

/* ---- error mapping ---- */

static void
test_fail_mapping(void)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;

    pgcmk_err_clear(&err);
    CHECK(pgcmk_db_tx(db, exec_tx,
                      (void *)"CREATE TEMP TABLE IF NOT EXISTS t_u(k TEXT PRIMARY KEY, "
                              "u TEXT UNIQUE, n TEXT NOT NULL);"
                              "INSERT INTO t_u VALUES('a','x','n');",
                      &err) == 0);

    /* PRIMARY KEY and UNIQUE violations are conflicts */
    CHECK(pgcmk_db_tx(db, exec_tx, (void *)"INSERT INTO t_u VALUES('a','y','n');", &err) == -1);
    CHECK(err.code == PGCMK_E_CONFLICT);
    CHECK(err.cause == SQLITE_CONSTRAINT_PRIMARYKEY);
    CHECK(strstr(err.message, "already exists") != NULL);
    pgcmk_err_clear(&err);
    CHECK(pgcmk_db_tx(db, exec_tx, (void *)"INSERT INTO t_u VALUES('b','x','n');", &err) == -1);
    CHECK(err.code == PGCMK_E_CONFLICT);
    CHECK(err.cause == SQLITE_CONSTRAINT_UNIQUE);

    /* other constraint failures are internal, and SQLite's text stays out of the message */
    pgcmk_err_clear(&err);
    CHECK(pgcmk_db_tx(db, exec_tx, (void *)"INSERT INTO t_u VALUES('c','z',NULL);", &err) == -1);
    CHECK(err.code == PGCMK_E_INTERNAL);
    CHECK(err.cause == SQLITE_CONSTRAINT_NOTNULL);
    CHECK(strstr(err.message, "NOT NULL") == NULL);
    CHECK(strstr(err.message, "t_u") == NULL);
    CHECK(strstr(err.message, "run test SQL") != NULL);

    /* the same mapping on bare codes */
    pgcmk_err_clear(&err);
    CHECK(pgcmk_db_fail(db, SQLITE_BUSY, "x", &err) == -1 && err.code == PGCMK_E_UNAVAILABLE);
    CHECK(pgcmk_db_fail(db, SQLITE_BUSY_SNAPSHOT, "x", &err) == -1 &&
          err.code == PGCMK_E_UNAVAILABLE);
    CHECK(pgcmk_db_fail(db, SQLITE_LOCKED, "x", &err) == -1 && err.code == PGCMK_E_UNAVAILABLE);
    CHECK(pgcmk_db_fail(db, SQLITE_CORRUPT, "x", &err) == -1 && err.code == PGCMK_E_INTERNAL);
    CHECK(pgcmk_db_fail(db, SQLITE_CONSTRAINT_FOREIGNKEY, "x", &err) == -1 &&
          err.code == PGCMK_E_INTERNAL);
    CHECK(pgcmk_db_fail(NULL, SQLITE_CONSTRAINT_UNIQUE, "x", NULL) == -1);

    CHECK(pgcmk_db_tx(db, exec_tx, (void *)"DROP TABLE temp.t_u;", &err) == 0);
}

/* ---- events wait for the COMMIT ---- */

static int ev_seen, ev_seen_key_ok, ev_saw_row;

static void
ev_listener(const struct pgcmk_event *ev, void *arg)
{
    char *v = NULL;

    (void)arg;
    if (ev->kind != PGCMK_EV_KEY_DISABLED)
        return;
    ev_seen++;
    ev_seen_key_ok += ev->key && strcmp(ev->key, "k1") == 0;
    /* the writer's change is visible to the listener */
    if (pgcmk_store_setting_get("ev.row", &v) == 0 && v && strcmp(v, ev->key) == 0)
        ev_saw_row++;
    free(v);
}

struct ev_tx {
    const char *key;
    int fail, seen_inside;
};

static int
ev_tx_fn(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct ev_tx *t = ctx;
    char key[16];
    struct pgcmk_event ev = {PGCMK_EV_KEY_DISABLED, "v1", key, "ver", NULL, NULL};

    (void)db;
    snprintf(key, sizeof(key), "%s", t->key);
    if (pgcmk_store_setting_put("ev.row", t->key, err))
        return -1;
    pgcmk_events_publish(&ev);
    memset(key, 'x', sizeof(key) - 1); /* the queued event owns a copy */
    t->seen_inside = ev_seen;
    return t->fail ? pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL, "rolled back on purpose") : 0;
}

/* A batch of three savepoints in one transaction, the 2nd failing: its event goes with it. */
static int
ev_batch_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct ev_tx *items = ctx;
    struct pgcmk_err one;
    int failed = 0;

    (void)err;
    for (int i = 0; i < 3; i++)
        failed += pgcmk_db_savepoint(db, ev_tx_fn, &items[i], &one) != 0;
    return failed == 1 ? 0 : pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "not one failure");
}

static void
test_events_after_commit(void)
{
    struct pgcmk_err err;
    struct ev_tx ok = {"k1", 0, -1}, bad = {"k2", 1, -1};
    struct pgcmk_event out = {PGCMK_EV_KEY_DISABLED, "v1", "k3", NULL, NULL, NULL};

    CHECK(pgcmk_events_subscribe(ev_listener, NULL) == 0);
    pgcmk_err_clear(&err);
    CHECK(pgcmk_db_tx(pgcmk_db(), ev_tx_fn, &bad, &err) == -1);
    CHECK(bad.seen_inside == 0);
    CHECK(ev_seen == 0); /* rolled back: never delivered */
    CHECK(pgcmk_db_tx(pgcmk_db(), ev_tx_fn, &bad, &err) == -1);
    CHECK(ev_seen == 0); /* and not delivered by a later transaction either */
    CHECK(pgcmk_db_tx(pgcmk_db(), ev_tx_fn, &ok, &err) == 0);
    CHECK(ok.seen_inside == 0); /* not while the transaction is open */
    CHECK(ev_seen == 1);        /* after COMMIT */
    CHECK(ev_seen_key_ok == 1);
    CHECK(ev_saw_row == 1);
    pgcmk_events_publish(&out); /* outside a transaction: at once */
    CHECK(ev_seen == 2);
    {
        struct ev_tx items[3] = {{"k1", 0, -1}, {"k2", 1, -1}, {"k1", 0, -1}};

        ev_seen = ev_seen_key_ok = ev_saw_row = 0;
        CHECK(pgcmk_db_tx(pgcmk_db(), ev_batch_tx, items, &err) == 0);
        CHECK(ev_seen == 2);        /* the 1st and the 3rd item's events, after COMMIT */
        CHECK(ev_seen_key_ok == 2); /* never the rolled-back 2nd's */
        CHECK(setting_is("ev.row", "k1"));
    }
}

/* ---- settings and the statement cache ---- */

static void
test_settings(void)
{
    struct pgcmk_err err;
    char *v = (char *)"sentinel";
    sqlite3_stmt *st1, *st2;

    pgcmk_err_clear(&err);
    CHECK(pgcmk_store_setting_get("absent", &v) == 1);
    CHECK(v == NULL);
    CHECK(pgcmk_store_setting_put("clock", "12345", &err) == 0);
    CHECK(setting_is("clock", "12345"));
    CHECK(pgcmk_store_setting_put("clock", "67890", &err) == 0); /* upsert */
    CHECK(setting_is("clock", "67890"));
    CHECK(pgcmk_store_setting_put("empty", "", &err) == 0);
    CHECK(setting_is("empty", ""));
    st1 = pgcmk_db_stmt(pgcmk_db(), PGCMK_STMT_SETTING_GET);
    pgcmk_db_done(st1);
    st2 = pgcmk_db_stmt(pgcmk_db(), PGCMK_STMT_SETTING_GET);
    pgcmk_db_done(st2);
    CHECK(st1 != NULL && st1 == st2); /* prepared once, cached */
    pgcmk_db_done(NULL);
}

/* ---- sealing ---- */

static void
test_seal(void)
{
    static const char secret[] = "-----BEGIN PRIVATE KEY----- not really";
    unsigned char *sealed = NULL, *plain = NULL;
    size_t sealed_len = 0, plain_len = 0;

    CHECK(pgcmk_store_seal(secret, sizeof(secret), "kv/a/k/1", &sealed, &sealed_len) == 0);
    CHECK(sealed_len == sizeof(secret) + PGCMK_AEAD_OVERHEAD);
    CHECK(memmem(sealed, sealed_len, "PRIVATE", 7) == NULL);
    CHECK(pgcmk_store_unseal(sealed, sealed_len, "kv/a/k/1", &plain, &plain_len) == 0);
    CHECK(plain_len == sizeof(secret) && plain && memcmp(plain, secret, plain_len) == 0);
    pgcmk_secret_free(plain, plain_len);
    plain = NULL;
    CHECK(pgcmk_store_unseal(sealed, sealed_len, "kv/a/k/2", &plain, &plain_len) == -1);
    CHECK(pgcmk_store_unseal(sealed, sealed_len, NULL, &plain, &plain_len) == -1);
    sealed[sealed_len / 2] ^= 1;
    CHECK(pgcmk_store_unseal(sealed, sealed_len, "kv/a/k/1", &plain, &plain_len) == -1);
    free(sealed);
    sealed = NULL;

    /* NULL aad is the empty aad */
    CHECK(pgcmk_store_seal("x", 1, NULL, &sealed, &sealed_len) == 0);
    CHECK(pgcmk_store_unseal(sealed, sealed_len, "", &plain, &plain_len) == 0);
    CHECK(plain_len == 1 && plain && plain[0] == 'x');
    pgcmk_secret_free(plain, plain_len);
    plain = NULL;
    CHECK(pgcmk_store_unseal(sealed, sealed_len, "row", &plain, &plain_len) == -1);
    free(sealed);
}

/* ---- threads ---- */

struct writer {
    int n;
    int failures;
    struct pgcmk_db *db;
};

static void *
writer_main(void *arg)
{
    struct writer *w = arg;
    struct pgcmk_err err;
    char key[64], val[32];

    w->db = pgcmk_db();
    for (int i = 0; i < THREAD_PUTS; i++) {
        snprintf(key, sizeof(key), "thread%d.%03d", w->n, i);
        snprintf(val, sizeof(val), "%d", i);
        if (pgcmk_store_setting_put(key, val, &err) != 0)
            w->failures++;
        if (!setting_is(key, val)) /* reads interleave with the other thread's writes */
            w->failures++;
    }
    return NULL;
}

static void
test_threads(int shared)
{
    struct writer w[2] = {{0, 0, NULL}, {1, 0, NULL}};
    pthread_t th[2];
    int visible = 0;
    char key[64], val[32];

    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, writer_main, &w[i]) == 0);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(th[i], NULL) == 0);
    CHECK(w[0].failures == 0 && w[1].failures == 0);
    if (shared) {
        CHECK(w[0].db == pgcmk_db() && w[1].db == pgcmk_db());
    } else {
        CHECK(w[0].db && w[1].db && w[0].db != w[1].db);
        CHECK(w[0].db != pgcmk_db() && w[1].db != pgcmk_db());
    }
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < THREAD_PUTS; i++) {
            snprintf(key, sizeof(key), "thread%d.%03d", t, i);
            snprintf(val, sizeof(val), "%d", i);
            visible += setting_is(key, val);
        }
    CHECK(visible == 2 * THREAD_PUTS);
}

/* A thread that outlives a close and reopen must get a fresh connection, not the freed one. */
struct survivor {
    pthread_barrier_t *bar;
    int ok;
};

static void *
survivor_main(void *arg)
{
    struct survivor *s = arg;

    s->ok = setting_is("clock", "67890");
    pthread_barrier_wait(s->bar); /* used the store */
    pthread_barrier_wait(s->bar); /* main closed and reopened it */
    s->ok += setting_is("clock", "67890");
    return NULL;
}

/* ---- file mode ---- */

static void
test_file_mode(void)
{
    char *db_path = tpath("pgcmk.sqlite"), *key_path = tpath("master.key");
    unsigned char key1[64], key2[64], *sealed = NULL, *plain = NULL;
    size_t key1_len = 0, key2_len = 0, sealed_len = 0, plain_len = 0;
    struct pgcmk_err err;
    struct stat sb;
    pthread_barrier_t bar;
    struct survivor surv = {&bar, 0};
    pthread_t th;

    pgcmk_err_clear(&err);
    CHECK(pgcmk_store_open(db_path, key_path, 0, &err) == 0);
    if (err.message[0])
        fprintf(stderr, "store: %s\n", err.message);
    CHECK(stat(db_path, &sb) == 0);
    CHECK(stat(key_path, &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0600);
    CHECK(sb.st_size == 32);
    CHECK(read_file(key_path, key1, sizeof(key1), &key1_len) == 0 && key1_len == 32);
    CHECK(pgcmk_store_migrations() > 0);
    CHECK(pgcmk_store_version() == pgcmk_store_migrations());
    CHECK(pragma_int("PRAGMA user_version") == pgcmk_store_migrations());
    CHECK(pragma_int("PRAGMA foreign_keys") == 1);
    CHECK(pragma_int("PRAGMA synchronous") == 1); /* NORMAL */
    CHECK(pragma_int("PRAGMA busy_timeout") == 5000);
    {
        sqlite3_stmt *st;
        CHECK(sqlite3_prepare_v2(pgcmk_db_handle(pgcmk_db()), "PRAGMA journal_mode", -1, &st,
                                 NULL) == SQLITE_OK);
        CHECK(sqlite3_step(st) == SQLITE_ROW);
        CHECK_STR((const char *)sqlite3_column_text(st, 0), "wal");
        sqlite3_finalize(st);
    }

    test_settings();
    test_transactions();
    test_each();
    test_step_and_collect();
    test_savepoint();
    test_fail_mapping();
    test_seal();
    test_threads(0);
    CHECK(pgcmk_store_seal("kept", 4, "reopen", &sealed, &sealed_len) == 0);

    /* reopen: data, schema and key survive; a thread alive across it reconnects */
    CHECK(pthread_barrier_init(&bar, NULL, 2) == 0);
    CHECK(pthread_create(&th, NULL, survivor_main, &surv) == 0);
    pthread_barrier_wait(&bar);
    pgcmk_store_close();
    CHECK(pgcmk_store_open(db_path, key_path, 1, &err) == 0);
    pthread_barrier_wait(&bar);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK(surv.ok == 2);
    pthread_barrier_destroy(&bar);
    CHECK(pragma_int("PRAGMA synchronous") == 2); /* FULL */
    CHECK(pgcmk_store_version() == pgcmk_store_migrations());
    CHECK(setting_is("clock", "67890"));
    CHECK(setting_is("thread1.199", "199"));
    CHECK(read_file(key_path, key2, sizeof(key2), &key2_len) == 0);
    CHECK(key2_len == 32 && memcmp(key1, key2, 32) == 0);
    CHECK(pgcmk_store_unseal(sealed, sealed_len, "reopen", &plain, &plain_len) == 0);
    CHECK(plain_len == 4 && plain && memcmp(plain, "kept", 4) == 0);
    pgcmk_secret_free(plain, plain_len);
    free(sealed);
    pgcmk_store_close();
    pgcmk_store_close(); /* twice is harmless */

    /* a database from a newer pgcmkd is refused */
    {
        sqlite3 *h = NULL;
        char *sql = pgcmk_xasprintf("PRAGMA user_version=%d;", pgcmk_store_migrations() + 1);

        CHECK(sqlite3_open(db_path, &h) == SQLITE_OK);
        CHECK(sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK);
        CHECK(sqlite3_close(h) == SQLITE_OK);
        free(sql);
        pgcmk_err_clear(&err);
        CHECK(pgcmk_store_open(db_path, key_path, 0, &err) == -1);
        CHECK(err.code == PGCMK_E_INTERNAL);
        CHECK(strstr(err.message, "newer") != NULL);
    }
    unlink(db_path);
    free(db_path);
    free(key_path);
}

static void
test_refusals(void)
{
    char *db_path = tpath("other.sqlite"), *key_path = tpath("loose.key"),
         *short_path = tpath("short.key"), *junk_path = tpath("junk.sqlite");
    unsigned char key[32] = {1, 2, 3};
    struct pgcmk_err err;
    struct stat sb;

    /* a master key readable by others */
    CHECK(write_file(key_path, key, sizeof(key), 0644) == 0);
    pgcmk_err_clear(&err);
    CHECK(pgcmk_store_open(db_path, key_path, 0, &err) == -1);
    CHECK(strstr(err.message, "0644") != NULL && strstr(err.message, "chmod 600") != NULL);
    CHECK(chmod(key_path, 0700) == 0);
    CHECK(pgcmk_store_open(db_path, key_path, 0, &err) == -1);
    CHECK(chmod(key_path, 0400) == 0); /* stricter is fine */
    CHECK(pgcmk_store_open(db_path, key_path, 0, &err) == 0);
    pgcmk_store_close();

    /* a master key of the wrong size */
    CHECK(write_file(short_path, key, 16, 0600) == 0);
    pgcmk_err_clear(&err);
    CHECK(pgcmk_store_open(db_path, short_path, 0, &err) == -1);
    CHECK(strstr(err.message, "16 bytes") != NULL);
    CHECK(stat(short_path, &sb) == 0 && sb.st_size == 16); /* left alone */

    /* a master key path that is a directory */
    pgcmk_err_clear(&err);
    CHECK(pgcmk_store_open(db_path, tdir, 0, &err) == -1);
    CHECK(err.message[0] != '\0');

    /* a file that is not a SQLite database */
    CHECK(write_file(junk_path, "this is not a database, not at all, no no no no no no", 53,
                     0600) == 0);
    pgcmk_err_clear(&err);
    CHECK(pgcmk_store_open(junk_path, key_path, 0, &err) == -1);
    CHECK(err.code == PGCMK_E_INTERNAL && err.message[0] != '\0');

    unlink(key_path);
    unlink(short_path);
    unlink(junk_path);
    unlink(db_path);
    free(db_path);
    free(key_path);
    free(short_path);
    free(junk_path);
}

static void
test_memory_mode(void)
{
    struct pgcmk_err err;

    pgcmk_err_clear(&err);
    CHECK(pgcmk_store_open(":memory:", NULL, 0, &err) == 0);
    if (err.message[0])
        fprintf(stderr, "store: %s\n", err.message);
    CHECK(pgcmk_store_version() == pgcmk_store_migrations());
    CHECK(pragma_int("PRAGMA foreign_keys") == 1);
    test_settings();
    test_transactions();
    test_each();
    test_step_and_collect();
    test_savepoint();
    test_fail_mapping();
    test_seal();
    test_threads(1);
    test_events_after_commit();
    pgcmk_store_close();

    /* nothing survives */
    CHECK(pgcmk_store_open(":memory:", NULL, 0, &err) == 0);
    CHECK(setting_absent("clock"));
    pgcmk_store_close();
}

static void
rm_tree(void)
{
    char *cmd = pgcmk_xasprintf("rm -rf '%s'", tdir);

    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tdir);
    free(cmd);
}

int
main(void)
{
    pgcmk_log_level = PGCMK_LOG_ERR - 1; /* the refusals below log on purpose */
    snprintf(tdir, sizeof(tdir), "/tmp/test_store.XXXXXX");
    if (mkdtemp(tdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_file_mode();
    test_refusals();
    test_memory_mode();
    rm_tree();
    return t_done("test_store");
}
