/* pgdata.c - the data plane (/emulator/data{resourceId}/rows[/{key}]). Modeled: rows stored as
 * real ciphertext under the database's DEK, readable only while the database is accessible and
 * its DEK is in the agent's memory; replicas read their source's rows; restores copy rows. Real
 * mode (a database with a PostgreSQL instance): the same API and answers over a table pgcmk_rows
 * of the instance's default database, through pgcmk_pg_exec with bound parameters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/agent.h"
#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/http.h"
#include "pgcmk/pg.h"
#include "pgcmk/pgdata.h"
#include "pgcmk/reconcile.h"
#include "providers/postgres.h"

/* ---- the modeled data plane --------------------------------------------------------------- */

struct rows_ctx {
    const char *db_id, *key;
    const unsigned char *sealed;
    size_t sealed_len;
    int64_t seq;
    int deleted;
};

static int
rows_next_seq(struct pgcmk_db *db, const char *id, int64_t *seq, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PGROW_NEXT_SEQ);
    int rc;

    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 1;
    pgcmk_db_done(st);
    return rc == SQLITE_ROW ? 0 : pgcmk_db_fail(db, rc, "row sequence", err);
}

static int
rows_insert(struct pgcmk_db *db, const char *id, int64_t seq, const char *key, int deleted,
            const unsigned char *sealed, size_t n, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PGROW_INSERT);
    int rc;

    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, pgcmk_clock_now());
    sqlite3_bind_int(st, 5, deleted);
    if (sealed)
        sqlite3_bind_blob(st, 6, sealed, (int)n, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "write row", err);
}

struct rows_read_ctx {
    const char *holder, *id;
    json_t *out;
};

/* pgcmk_db_each row: one row version, decrypted with the holder's DEK (deleted ones skipped). */
static int
rows_read_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct rows_read_ctx *c = arg;
    unsigned char *pt = NULL;
    size_t ptl = 0;
    json_t *value;
    char t[PGCMK_TIME_LEN];

    if (sqlite3_column_int(st, 3))
        return 0;
    if (pgcmk_agent_open(c->holder, c->id, sqlite3_column_int64(st, 1), sqlite3_column_blob(st, 4),
                         (size_t)sqlite3_column_bytes(st, 4), &pt, &ptl))
        return pgcmk_err_set(err, PGCMK_E_PG_DATA_INACCESSIBLE, NULL,
                             "FATAL: could not decrypt row '%.128s': the data encryption key "
                             "is not available (SQLSTATE XX001)",
                             (const char *)sqlite3_column_text(st, 0));
    value = json_loadb((const char *)pt, ptl, JSON_DECODE_ANY, NULL);
    pgcmk_secret_free(pt, ptl);
    pgcmk_time_format(sqlite3_column_int64(st, 2), t);
    json_array_append_new(
        c->out, json_pack("{s:s, s:o, s:I, s:s}", "key", (const char *)sqlite3_column_text(st, 0),
                          "value", value ? value : json_null(), "seq",
                          (json_int_t)sqlite3_column_int64(st, 1), "writtenAt", t));
    return 0;
}

/* Reads the live rows of `id` at time `at` (key NULL: all), decrypted with holder's DEK. */
static int
rows_read(const char *holder, const char *id, int64_t at, const char *key, json_t *out,
          struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PGROW_LATEST);
    struct rows_read_ctx c = {holder, id, out};

    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at);
    pgcmk_db_bind_opt(st, 3, key);
    return pgcmk_db_each(db, st, rows_read_row, &c, "read rows", err) < 0 ? -1 : 0;
}

struct restore_ctx {
    const char *target;
    json_t *rows;
};

static int
restore_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct restore_ctx *r = ctx;
    json_t *row;
    size_t i;
    int64_t seq;

    if (rows_next_seq(db, r->target, &seq, err))
        return -1;
    json_array_foreach(r->rows, i, row) {
        char *text = json_dumps(json_object_get(row, "value"), JSON_COMPACT | JSON_ENCODE_ANY);
        unsigned char *sealed = NULL;
        size_t n = 0;
        int rc = pgcmk_agent_seal(r->target, r->target, seq, text, strlen(text), &sealed, &n);

        free(text);
        if (rc)
            return pgcmk_err_set(err, PGCMK_E_PG_DATA_INACCESSIBLE, NULL,
                                 "The restored server has no data encryption key.");
        rc = rows_insert(db, r->target, seq++, json_string_value(json_object_get(row, "key")), 0,
                         sealed, n, err);
        free(sealed);
        if (rc)
            return -1;
    }
    return 0;
}

int
pg_rows_restore(const char *source_id, const char *target_id, int64_t at, struct pgcmk_err *err)
{
    struct restore_ctx r = {target_id, json_array()};
    int rc = rows_read(source_id, source_id, at, NULL, r.rows, err);

    if (rc == 0)
        rc = pgcmk_db_tx(pgcmk_db(), restore_tx, &r, err);
    json_decref(r.rows);
    return rc;
}

/* ---- real mode (--pg-mode real): the rows in a table of the instance ------------------------ */

/* The table, in the instance's default database, created by the first write. */
#define REAL_TABLE_SQL                                                                             \
    "CREATE TABLE IF NOT EXISTS pgcmk_rows (key text PRIMARY KEY, value jsonb NOT NULL, "          \
    "seq bigserial NOT NULL, written_at timestamptz NOT NULL)"
#define REAL_COLS                                                                                  \
    "key, value::text AS value, seq::text AS seq, "                                                \
    "(extract(epoch FROM written_at) * 1000)::bigint::text AS ms"

/* 1 when err is PostgreSQL's error of that SQLSTATE. */
static int
real_sqlstate(const struct pgcmk_err *err, const char *state)
{
    char want[32];

    snprintf(want, sizeof(want), "SQLSTATE %s", state);
    return err->code == PGCMK_E_PGREAL_SQL && strstr(err->message, want) != NULL;
}

/* One row of pgcmk_rows as the API answers it. */
static json_t *
real_row(const json_t *r)
{
    const char *v = json_string_value(json_object_get(r, "value"));
    const char *seq = json_string_value(json_object_get(r, "seq"));
    const char *ms = json_string_value(json_object_get(r, "ms"));
    json_t *value = v ? json_loads(v, JSON_DECODE_ANY, NULL) : NULL;
    char t[PGCMK_TIME_LEN];

    pgcmk_time_format(ms ? strtoll(ms, NULL, 10) : 0, t);
    return json_pack("{s:s, s:o, s:I, s:s}", "key", json_string_value(json_object_get(r, "key")),
                     "value", value ? value : json_null(), "seq",
                     (json_int_t)(seq ? strtoll(seq, NULL, 10) : 0), "writtenAt", t);
}

/* The table belongs to the resource's admin (administratorLogin; "citus" for clusters), so that
 * the admin reads and writes it with SQL too. */
static int
real_give_table(const char *id, struct pgcmk_err *err)
{
    json_t *body = NULL;
    const char *login = NULL;
    char sql[400], q[300];
    size_t o = 0;
    int rc;

    if (pgcmk_arm_resource_get(pgcmk_db(), id, &body, err) < 0)
        return -1;
    login = json_string_value(
        json_object_get(json_object_get(body, "properties"), "administratorLogin"));
    if (!login)
        login = "citus";
    /* a quoted identifier: " doubled */
    for (const char *c = login; *c && o + 3 < sizeof(q); c++) {
        if (*c == '"')
            q[o++] = '"';
        q[o++] = *c;
    }
    q[o] = 0;
    snprintf(sql, sizeof(sql), "ALTER TABLE pgcmk_rows OWNER TO \"%s\"", q);
    json_decref(body);
    rc = pgcmk_pg_exec(id, NULL, sql, NULL, 0, NULL, err);
    return rc;
}

/* Runs a statement on the rows table; creates the table and runs it again when it is missing
 * (create = 1; else a missing table reads as no rows: *rows = []). */
static int
real_exec(const char *id, const char *sql, const char *const *params, int n, json_t **rows,
          int create, struct pgcmk_err *err)
{
    int rc = pgcmk_pg_exec(id, NULL, sql, params, n, rows, err);

    if (rc == 0 || !real_sqlstate(err, "42P01"))
        return rc;
    if (!create) {
        *rows = json_array();
        return 0;
    }
    if (pgcmk_pg_exec(id, NULL, REAL_TABLE_SQL, NULL, 0, NULL, err) || real_give_table(id, err))
        return -1;
    return pgcmk_pg_exec(id, NULL, sql, params, n, rows, err);
}

/* GET, PUT and DELETE of /emulator/data... on a database with a real instance: the same answers
 * as the modeled plane; a replica reads its own (streamed) instance and its writes get
 * PostgreSQL's read-only error. */
static int
real_route(struct pgcmk_req *rq, struct pgcmk_resp *rs, const char *id, const char *key,
           struct pgcmk_err *err)
{
    json_t *rows = NULL, *v = json_object_get(rq->json, "value");
    int rc;

    if (strcmp(rq->method, "GET") == 0) {
        const char *p[1] = {key};

        rc = real_exec(id,
                       key ? "SELECT " REAL_COLS " FROM pgcmk_rows WHERE key = $1"
                           : "SELECT " REAL_COLS " FROM pgcmk_rows ORDER BY key COLLATE \"C\"",
                       p, key ? 1 : 0, &rows, 0, err);
        if (rc == 0 && key && json_array_size(rows) == 0)
            rc = pgcmk_err_set(err, PGCMK_E_PG_ROW_NOT_FOUND, NULL, "No row has the key '%.128s'.",
                               key);
        if (rc == 0 && key) {
            pgcmk_resp_json(rs, 200, real_row(json_array_get(rows, 0)));
        } else if (rc == 0) {
            json_t *out = json_array(), *r;
            size_t i;

            json_array_foreach(rows, i, r)
                json_array_append_new(out, real_row(r));
            pgcmk_resp_json(rs, 200, json_pack("{s:o}", "value", out));
        }
    } else if (!key) {
        rc = pgcmk_err_set(err, PGCMK_E_METHOD_NOT_ALLOWED, NULL,
                           "Write one row: %s /emulator/data{resourceId}/rows/{key}.", rq->method);
    } else if (strcmp(rq->method, "DELETE") == 0) {
        const char *p[1] = {key};

        rc = real_exec(id, "DELETE FROM pgcmk_rows WHERE key = $1", p, 1, NULL, 0, err);
        if (rc == 0)
            pgcmk_resp_empty(rs, 204);
    } else if (!v) {
        rc = pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, "value",
                           "The body must be {\"value\": ...}.");
    } else {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY), ms[32];
        const char *p[3] = {key, text, ms};

        snprintf(ms, sizeof(ms), "%lld", (long long)pgcmk_clock_now());
        rc = real_exec(id,
                       "INSERT INTO pgcmk_rows (key, value, written_at) VALUES ($1, $2::jsonb, "
                       "to_timestamp($3::bigint / 1000.0)) ON CONFLICT (key) DO UPDATE SET value "
                       "= EXCLUDED.value, written_at = EXCLUDED.written_at, seq = "
                       "nextval(pg_get_serial_sequence('pgcmk_rows', 'seq')) RETURNING " REAL_COLS,
                       p, 3, &rows, 1, err);
        free(text);
        if (rc == 0)
            pgcmk_resp_json(rs, 200, real_row(json_array_get(rows, 0)));
    }
    /* a replica's refusal: PostgreSQL's text, with the modeled plane's status */
    if (rc && real_sqlstate(err, "25006"))
        err->code = PGCMK_E_CONFLICT;
    json_decref(rows);
    return rc;
}

/* The database behind /emulator/data{resourceId}/rows: its row, and where its rows live. */
static int
data_target(struct pgcmk_req *rq, struct pg_db *d, const char **rows_of, struct pgcmk_err *err)
{
    const char *rest = pgcmk_req_param(rq, "rest");
    char *id;
    int rc;

    if (pgcmk_req_param(rq, "sub")) /* an ARM resource */
        id = pgcmk_xasprintf("/subscriptions/%s/resourceGroups/%s/providers/%s",
                             pgcmk_req_param(rq, "sub"), pgcmk_req_param(rq, "rg"),
                             rest ? rest : "");
    else /* a self-managed database (src/tde/) */
        id = pgcmk_xasprintf("/emulator/tde/databases/%s", rest ? rest : "");
    rc = pg_db_load(pgcmk_db(), id, d, err);
    free(id);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return pgcmk_err_set(err, PGCMK_E_RESOURCE_NOT_FOUND, NULL,
                             "No PostgreSQL cluster, server or self-managed database has the id "
                             "in this path.");
    *rows_of =
        d->relation &&
                (strcmp(d->relation, "replica") == 0 || strcmp(d->relation, "standby") == 0) &&
                d->source_id
            ? d->source_id
            : d->id;
    if (strcmp(d->access, PG_ACCESS_OK) != 0 || !pgcmk_agent_has_dek(d->id)) {
        const char *nm = strrchr(d->id, '/');

        return pgcmk_err_set(
            err, PGCMK_E_PG_DATA_INACCESSIBLE, NULL,
            "FATAL: the database '%.128s' is inaccessible: %s (SQLSTATE 08006)",
            nm ? nm + 1 : d->id,
            d->reason                                   ? d->reason
            : strcmp(d->access, PG_ACCESS_PENDING) == 0 ? "it is still being provisioned"
            : pgcmk_reconcile_unchecked(d->id)          ? "its key is being checked after the start"
                                               : "its data encryption key is not available");
    }
    return 0;
}

/* Writes one row version (a tombstone for DELETE); c->sealed holds the plaintext on entry. */
static int
row_write_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct rows_ctx *c = ctx;
    unsigned char *sealed = NULL;
    size_t n = 0;
    int rc;

    if (rows_next_seq(db, c->db_id, &c->seq, err))
        return -1;
    if (!c->deleted &&
        pgcmk_agent_seal(c->db_id, c->db_id, c->seq, c->sealed, c->sealed_len, &sealed, &n))
        return pgcmk_err_set(err, PGCMK_E_PG_DATA_INACCESSIBLE, NULL,
                             "FATAL: the data encryption key is not available (SQLSTATE 08006)");
    rc = rows_insert(db, c->db_id, c->seq, c->key, c->deleted, sealed, n, err);
    free(sealed);
    return rc;
}

/* Splits the {*rest} of a data route into the resource part and the row key. */
static int
data_split(struct pgcmk_req *rq, char **row_key)
{
    char *rest = (char *)pgcmk_req_param(rq, "rest");
    char *p = rest ? strstr(rest, "/rows") : NULL;

    *row_key = NULL;
    if (!p)
        return -1;
    while (p && p[5] != 0 && p[5] != '/')
        p = strstr(p + 1, "/rows");
    if (!p)
        return -1;
    if (p[5] == '/' && p[6])
        *row_key = p + 6;
    *p = 0;
    return 0;
}

static int
data_route(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct pg_db d;
    const char *rows_of = NULL;
    char *key = NULL;
    json_t *out;
    int rc;

    if (data_split(rq, &key))
        return pgcmk_err_set(err, PGCMK_E_NOT_FOUND, NULL,
                             "Use /emulator/data{resourceId}/rows[/{key}].");
    if (data_target(rq, &d, &rows_of, err)) {
        pg_db_release(&d);
        return -1;
    }
    if (pgcmk_pg_has(d.id)) {
        rc = real_route(rq, rs, d.id, key, err);
        pg_db_release(&d);
        return rc;
    }
    if (strcmp(rq->method, "GET") == 0) {
        out = json_array();
        rc = rows_read(d.id, rows_of, pgcmk_clock_now(), key, out, err);
        if (rc == 0 && key && json_array_size(out) == 0)
            rc = pgcmk_err_set(err, PGCMK_E_PG_ROW_NOT_FOUND, NULL, "No row has the key '%.128s'.",
                               key);
        if (rc == 0)
            pgcmk_resp_json(rs, 200,
                            key ? json_incref(json_array_get(out, 0))
                                : json_pack("{s:O}", "value", out));
        json_decref(out);
        pg_db_release(&d);
        return rc;
    }
    if (rows_of != d.id) {
        pg_db_release(&d);
        return pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL,
                             "ERROR: cannot execute a write in a read-only transaction: this is a "
                             "read replica (SQLSTATE 25006)");
    }
    if (!key) {
        pg_db_release(&d);
        return pgcmk_err_set(err, PGCMK_E_METHOD_NOT_ALLOWED, NULL,
                             "Write one row: %s /emulator/data{resourceId}/rows/{key}.",
                             rq->method);
    }
    {
        struct rows_ctx c = {d.id, key, NULL, 0, 0, strcmp(rq->method, "DELETE") == 0};
        char *text = NULL;
        json_t *v = json_object_get(rq->json, "value");

        if (!c.deleted && !v) {
            pg_db_release(&d);
            return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, "value",
                                 "The body must be {\"value\": ...}.");
        }
        if (!c.deleted) {
            text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            c.sealed = (const unsigned char *)text;
            c.sealed_len = strlen(text);
        }
        rc = pgcmk_db_tx(pgcmk_db(), row_write_tx, &c, err);
        free(text);
        if (rc == 0) {
            char t[PGCMK_TIME_LEN];

            pgcmk_time_format(pgcmk_clock_now(), t);
            if (c.deleted)
                pgcmk_resp_empty(rs, 204);
            else
                pgcmk_resp_json(rs, 200,
                                json_pack("{s:s, s:O, s:I, s:s}", "key", key, "value", v, "seq",
                                          (json_int_t)c.seq, "writtenAt", t));
        }
    }
    pg_db_release(&d);
    return rc;
}

#define DATA_ROUTE     "/emulator/data/subscriptions/{sub}/resourcegroups/{rg}/providers/{*rest}"
#define DATA_TDE_ROUTE "/emulator/data/emulator/tde/databases/{*rest}"
static const struct pgcmk_route pgdata_routes[] = {
    {"GET", DATA_ROUTE, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, data_route},
    {"PUT", DATA_ROUTE, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON, NULL, data_route},
    {"DELETE", DATA_ROUTE, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, data_route},
    {"GET", DATA_TDE_ROUTE, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, data_route},
    {"PUT", DATA_TDE_ROUTE, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON, NULL, data_route},
    {"DELETE", DATA_TDE_ROUTE, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, data_route},
};

void
pgcmk_pgdata_register(void)
{
    pgcmk_router_add(pgdata_routes, PGCMK_ARRAY_LEN(pgdata_routes));
}
