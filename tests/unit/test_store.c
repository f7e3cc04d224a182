/* test_store.c - the SQLite store: open, migrations, settings, transactions, error mapping,
 * the master key and sealing, per-thread connections. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgcmk/store.h"
#include "t.h"

static char dir[64];

static char *
path(const char *name)
{
    static char buf[4][128];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

static int
insert_setting_twice_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    sqlite3 *h = pgcmk_db_handle(db);
    int rc;

    (void)ctx;
    rc = sqlite3_exec(h, "INSERT INTO settings(key,value) VALUES('dup','1')", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h, "INSERT INTO settings(key,value) VALUES('dup','2')", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : pgcmk_db_fail(db, sqlite3_extended_errcode(h), "dup", err);
}

static int
write_then_fail_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    (void)ctx;
    if (sqlite3_exec(pgcmk_db_handle(db), "INSERT INTO settings(key,value) VALUES('gone','x')",
                     NULL, NULL, NULL) != SQLITE_OK)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "insert failed");
    return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, NULL, "changed my mind");
}

static void *
writer(void *arg)
{
    long id = (long)arg;
    struct pgcmk_err err;

    for (int i = 0; i < 200; i++) {
        char key[64];

        snprintf(key, sizeof(key), "t%ld-%d", id, i);
        if (pgcmk_store_setting_put(key, "v", &err))
            return (void *)1;
    }
    return NULL;
}

int
main(void)
{
    struct pgcmk_err err;
    struct stat sb;
    unsigned char *sealed = NULL, *plain = NULL;
    size_t sealed_len = 0, plain_len = 0;
    char *v = NULL;
    pthread_t th[2];
    void *res;
    FILE *f;

    snprintf(dir, sizeof(dir), "/tmp/pgcmk-store-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);

    /* first open: schema and master key */
    CHECK(pgcmk_store_open(path("db.sqlite"), path("master.key"), 0, &err) == 0);
    CHECK(pgcmk_store_version() == pgcmk_store_migrations());
    CHECK(pgcmk_store_migrations() >= 1);
    CHECK(stat(path("master.key"), &sb) == 0 && sb.st_size == 32 && (sb.st_mode & 0777) == 0600);

    /* settings */
    CHECK(pgcmk_store_setting_get("nope", &v) == 1 && v == NULL);
    CHECK(pgcmk_store_setting_put("k", "v1", &err) == 0);
    CHECK(pgcmk_store_setting_put("k", "v2", &err) == 0);
    CHECK(pgcmk_store_setting_get("k", &v) == 0);
    CHECK_STR(v, "v2");
    free(v);

    /* a failed transaction leaves nothing behind */
    CHECK(pgcmk_db_tx(pgcmk_db(), write_then_fail_tx, NULL, &err) == -1);
    CHECK(err.code == PGCMK_E_BAD_REQUEST);
    CHECK(pgcmk_store_setting_get("gone", &v) == 1);

    /* a unique violation maps to 409 Conflict without the SQLite text */
    CHECK(pgcmk_db_tx(pgcmk_db(), insert_setting_twice_tx, NULL, &err) == -1);
    CHECK(err.code == PGCMK_E_CONFLICT);
    CHECK(strstr(err.message, "UNIQUE") == NULL);
    CHECK(pgcmk_store_setting_get("dup", &v) == 1);

    /* sealing: round trip, AAD binds */
    CHECK(pgcmk_store_seal("secret", 6, "row-1", &sealed, &sealed_len) == 0);
    CHECK(sealed_len == 6 + 28);
    CHECK(pgcmk_store_unseal(sealed, sealed_len, "row-2", &plain, &plain_len) == -1);
    CHECK(pgcmk_store_unseal(sealed, sealed_len, "row-1", &plain, &plain_len) == 0);
    CHECK(plain_len == 6 && memcmp(plain, "secret", 6) == 0);
    free(plain);

    /* two threads, each with its own connection, writers serialised */
    CHECK(pthread_create(&th[0], NULL, writer, (void *)1L) == 0);
    CHECK(pthread_create(&th[1], NULL, writer, (void *)2L) == 0);
    for (int i = 0; i < 2; i++) {
        CHECK(pthread_join(th[i], &res) == 0);
        CHECK(res == NULL);
    }
    CHECK(pgcmk_store_setting_get("t1-199", &v) == 0);
    free(v);
    CHECK(pgcmk_store_setting_get("t2-0", &v) == 0);
    free(v);
    pgcmk_store_close();

    /* reopen: data and key survive */
    CHECK(pgcmk_store_open(path("db.sqlite"), path("master.key"), 1, &err) == 0);
    CHECK(pgcmk_store_setting_get("k", &v) == 0);
    CHECK_STR(v, "v2");
    free(v);
    CHECK(pgcmk_store_unseal(sealed, sealed_len, "row-1", &plain, &plain_len) == 0);
    free(plain);
    pgcmk_store_close();

    /* a key readable by others is refused */
    CHECK(chmod(path("master.key"), 0644) == 0);
    CHECK(pgcmk_store_open(path("db.sqlite"), path("master.key"), 0, &err) == -1);
    CHECK(strstr(err.message, "600") != NULL);
    CHECK(chmod(path("master.key"), 0600) == 0);

    /* a key of the wrong size is refused */
    f = fopen(path("short.key"), "w");
    CHECK(f != NULL);
    fputs("short", f);
    fclose(f);
    CHECK(chmod(path("short.key"), 0600) == 0);
    CHECK(pgcmk_store_open(path("db.sqlite"), path("short.key"), 0, &err) == -1);

    /* a schema newer than the code is refused */
    {
        sqlite3 *h;
        char sql[64];

        CHECK(sqlite3_open(path("db.sqlite"), &h) == SQLITE_OK);
        snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", pgcmk_store_migrations() + 5);
        CHECK(sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(h);
        CHECK(pgcmk_store_open(path("db.sqlite"), path("master.key"), 0, &err) == -1);
        CHECK(strstr(err.message, "newer") != NULL);
    }

    /* :memory: works with the real migrations */
    CHECK(pgcmk_store_open(":memory:", NULL, 0, &err) == 0);
    CHECK(pgcmk_store_setting_put("m", "1", &err) == 0);
    CHECK(pgcmk_store_setting_get("m", &v) == 0);
    free(v);
    pgcmk_store_close();

    free(sealed);
    {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        CHECK(system(cmd) == 0);
    }
    return t_done("test_store");
}
