/* lro.c - long-running operations: an operations row, a job on the worker pool, and the two
 * polling URLs (Azure-AsyncOperation: always 200 with a status body; Location: 202 while
 * running, then the answer a synchronous call would have given). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"
#include "arm/internal.h"
#include "pgcmk/work.h"

static pthread_mutex_t lro_end_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lro_end_cv = PTHREAD_COND_INITIALIZER;
static unsigned long lro_ends;

struct lro_job {
    char op_id[37];
    pgcmk_lro_fn fn;
    void *arg;
};

struct lro_insert {
    const char *id, *sub, *ns, *location, *kind, *resource_id, *api_version;
};

static int
lro_insert_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct lro_insert *in = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_OP_INSERT);
    int rc;

    sqlite3_bind_text(st, 1, in->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->sub, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, in->ns ? in->ns : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->location ? in->location : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, in->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, in->resource_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, in->api_version, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, pgcmk_clock_now());
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "insert operation", err);
}

struct lro_finish {
    const char *id;
    struct pgcmk_lro_result *res;
};

static int
lro_finish_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct lro_finish *f = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_OP_FINISH);
    char *body = f->res->body ? json_dumps(f->res->body, JSON_COMPACT) : NULL;
    char *error = NULL;
    int rc;

    if (f->res->failed) {
        json_t *e =
            json_pack("{s:s, s:s, s:i}", "code", pgcmk_err_code(f->res->err.code), "message",
                      f->res->err.message, "status", pgcmk_err_status(f->res->err.code));

        if (e && f->res->details)
            json_object_set(e, "details", f->res->details);

        error = e ? json_dumps(e, JSON_COMPACT) : NULL;
        json_decref(e);
    }
    sqlite3_bind_text(st, 1, f->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, f->res->failed ? "Failed" : "Succeeded", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, pgcmk_clock_now());
    sqlite3_bind_text(st, 4, error, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 5, f->res->failed ? pgcmk_err_status(f->res->err.code) : f->res->status);
    sqlite3_bind_text(st, 6, body, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    free(body);
    free(error);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "finish operation", err);
}

static void
lro_run(void *arg)
{
    struct lro_job *job = arg;
    struct pgcmk_lro_result res;
    struct lro_finish f = {job->op_id, &res};
    struct pgcmk_err err;

    memset(&res, 0, sizeof(res));
    job->fn(job->arg, &res);
    if (pgcmk_db_tx(pgcmk_db(), lro_finish_tx, &f, &err))
        LOG_ERR("operation %s: could not record its end: %s", job->op_id, err.message);
    json_decref(res.body);
    json_decref(res.details);
    free(job);
    pthread_mutex_lock(&lro_end_mu);
    lro_ends++;
    pthread_cond_broadcast(&lro_end_cv);
    pthread_mutex_unlock(&lro_end_mu);
}

char *
pgcmk_lro_id_from_url(const char *url)
{
    const char *q, *slash;

    if (!url)
        return NULL;
    q = strchr(url, '?');
    if (!q)
        q = url + strlen(url);
    for (slash = q; slash > url && slash[-1] != '/'; slash--)
        ;
    return q > slash ? pgcmk_xstrndup(slash, (size_t)(q - slash)) : NULL;
}

/* 1 succeeded, 0 failed, 2 running, -1 unknown. */
static int
lro_peek(const char *op_id, json_t **details, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_OP_GET);
    int rc, out = -1;

    sqlite3_bind_text(st, 1, op_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(st, 6);

        if (strcmp(status, "InProgress") == 0) {
            out = 2;
        } else if (strcmp(status, "Succeeded") == 0) {
            out = 1;
        } else {
            json_t *e = sqlite3_column_type(st, 9) == SQLITE_NULL
                            ? NULL
                            : json_loads((const char *)sqlite3_column_text(st, 9), 0, NULL);
            const char *code = json_string_value(json_object_get(e, "code"));
            enum pgcmk_errc c = code ? pgcmk_err_from_code(code) : PGCMK_E_INTERNAL;

            pgcmk_err_set(err, c, NULL, "%s",
                          json_string_value(json_object_get(e, "message"))
                              ?: "The operation failed.");
            if (details && json_object_get(e, "details"))
                *details = json_incref(json_object_get(e, "details"));
            json_decref(e);
            out = 0;
        }
    } else if (rc == SQLITE_DONE) {
        pgcmk_err_set(err, PGCMK_E_OPERATION_NOT_FOUND, NULL,
                      "The operation '%.64s' could not be "
                      "found.",
                      op_id);
    } else { /* a failed read is an error, not a missing operation */
        pgcmk_db_fail(db, rc, "read operation", err);
    }
    pgcmk_db_done(st);
    return out;
}

int
pgcmk_lro_wait(const char *op_id, int64_t timeout_ms, json_t **details, struct pgcmk_err *err)
{
    int64_t deadline = pgcmk_wall_ms() + timeout_ms;
    int rc;

    if (details)
        *details = NULL;
    pthread_mutex_lock(&lro_end_mu);
    while ((rc = lro_peek(op_id, details, err)) == 2) {
        struct timespec ts;
        int64_t now = pgcmk_wall_ms(), until = now + 100;

        if (now >= deadline) {
            pthread_mutex_unlock(&lro_end_mu);
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                                 "The operation '%.64s' did not end in time.", op_id);
        }
        if (until > deadline)
            until = deadline;
        ts.tv_sec = until / 1000;
        ts.tv_nsec = (until % 1000) * 1000000L;
        pthread_cond_timedwait(&lro_end_cv, &lro_end_mu, &ts);
    }
    pthread_mutex_unlock(&lro_end_mu);
    return rc;
}

int
pgcmk_lro_start(struct pgcmk_req *rq, struct pgcmk_resp *rs, const char *sub, const char *ns,
                const char *location, const char *kind, const char *resource_id, pgcmk_lro_fn fn,
                void *arg, struct pgcmk_err *err)
{
    struct lro_job *job = pgcmk_xcalloc(1, sizeof(*job));
    struct lro_insert in;
    char *base, *url;
    const char *av = rq->api_version ? rq->api_version : "";

    pgcmk_uuid(job->op_id);
    in = (struct lro_insert){job->op_id, sub, ns, location, kind, resource_id, av};
    if (pgcmk_db_tx(pgcmk_db(), lro_insert_tx, &in, err)) {
        free(job);
        return -1;
    }
    base = pgcmk_req_base_url(rq);
    if (ns) {
        url = pgcmk_xasprintf("%s/subscriptions/%s/providers/%s/locations/%s/azureAsyncOperation/"
                              "%s?api-version=%s",
                              base, sub, ns, location, job->op_id, av);
        pgcmk_resp_header(rs, "Azure-AsyncOperation", url);
        free(url);
        url = pgcmk_xasprintf("%s/subscriptions/%s/providers/%s/locations/%s/operationResults/"
                              "%s?api-version=%s",
                              base, sub, ns, location, job->op_id, av);
    } else {
        url = pgcmk_xasprintf("%s/subscriptions/%s/operationresults/%s?api-version=%s", base, sub,
                              job->op_id, av);
    }
    pgcmk_resp_header(rs, "Location", url);
    pgcmk_resp_header(rs, "Retry-After", "1");
    free(url);
    free(base);
    job->fn = fn;
    job->arg = arg;
    pgcmk_work_submit(lro_run, job);
    return 0;
}

void
pgcmk_lro_recover(void)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_OP_RECOVER);
    int rc;

    sqlite3_bind_int64(st, 1, pgcmk_clock_now());
    sqlite3_bind_text(st, 2,
                      "{\"code\":\"InternalServerError\",\"message\":\"The operation was "
                      "interrupted by an emulator restart.\",\"status\":500}",
                      -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    if (rc != SQLITE_DONE)
        LOG_WARN("could not close interrupted operations (rc=%d)", rc);
}

/* One operation row, read for a poll. */
struct lro_row {
    char status[16];
    int64_t start_at, end_at;
    int result_status, polls;
    char *error, *result_body, *resource_id;
};

static int
lro_poll_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_OP_POLL);
    int rc;

    sqlite3_bind_text(st, 1, ctx, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "count poll", err);
}

static int
lro_load(struct pgcmk_req *rq, struct lro_row *row, struct pgcmk_err *err)
{
    const char *op = pgcmk_req_param(rq, "op");
    const char *sub = pgcmk_req_param(rq, "sub");
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st;
    int rc, min_polls = rq->cfg ? rq->cfg->lro_min_polls : 0;

    memset(row, 0, sizeof(*row));
    if (pgcmk_arm_check_sub(sub, err))
        return -1;
    st = pgcmk_db_stmt(db, PGCMK_STMT_OP_GET);
    sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && strcasecmp((const char *)sqlite3_column_text(st, 0), sub) == 0) {
        snprintf(row->status, sizeof(row->status), "%s", sqlite3_column_text(st, 6));
        row->start_at = sqlite3_column_int64(st, 7);
        row->end_at = sqlite3_column_int64(st, 8);
        if (sqlite3_column_type(st, 9) != SQLITE_NULL)
            row->error = pgcmk_xstrdup((const char *)sqlite3_column_text(st, 9));
        row->result_status = sqlite3_column_int(st, 10);
        if (sqlite3_column_type(st, 11) != SQLITE_NULL)
            row->result_body = pgcmk_xstrdup((const char *)sqlite3_column_text(st, 11));
        if (sqlite3_column_type(st, 4) != SQLITE_NULL)
            row->resource_id = pgcmk_xstrdup((const char *)sqlite3_column_text(st, 4));
        row->polls = sqlite3_column_int(st, 12);
        rc = 0;
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        rc = pgcmk_err_set(err, PGCMK_E_OPERATION_NOT_FOUND, NULL,
                           "The operation '%.64s' could not be found.", op);
    } else {
        rc = pgcmk_db_fail(db, rc, "read operation", err);
    }
    pgcmk_db_done(st);
    if (rc)
        return -1;
    if (row->polls < min_polls) {
        /* Show InProgress for the configured number of polls, so clients really poll. */
        snprintf(row->status, sizeof(row->status), "InProgress");
        if (pgcmk_db_tx(db, lro_poll_tx, (void *)op, err))
            return -1;
    }
    return 0;
}

static void
lro_row_release(struct lro_row *row)
{
    free(row->error);
    free(row->result_body);
    free(row->resource_id);
}

/* GET .../azureAsyncOperation/{op}: always 200 with the status body. */
static int
lro_status(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct lro_row row;
    char t[PGCMK_TIME_LEN];
    json_t *out;
    char *base;

    if (lro_load(rq, &row, err))
        return -1;
    base = pgcmk_req_base_url(rq);
    pgcmk_time_format(row.start_at, t);
    out = json_pack("{s:s, s:s, s:s, s:s}", "id", rq->path, "name", pgcmk_req_param(rq, "op"),
                    "status", row.status, "startTime", t);
    free(base);
    if (strcmp(row.status, "InProgress") != 0) {
        pgcmk_time_format(row.end_at, t);
        json_object_set_new(out, "endTime", json_string(t));
        json_object_set_new(out, "percentComplete", json_integer(100));
        if (row.error) {
            json_t *e = json_loads(row.error, 0, NULL);

            json_object_del(e, "status");
            json_object_set_new(out, "error", e);
        }
    } else {
        pgcmk_resp_header(rs, "Retry-After", "1");
    }
    if (row.resource_id)
        json_object_set_new(out, "resourceId", json_string(row.resource_id));
    lro_row_release(&row);
    pgcmk_resp_json(rs, 200, out);
    return 0;
}

/* GET .../operationResults/{op}: 202 while running, then the synchronous answer. */
static int
lro_result(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct lro_row row;

    if (lro_load(rq, &row, err))
        return -1;
    if (strcmp(row.status, "InProgress") == 0) {
        char *base = pgcmk_req_base_url(rq);
        char *url = pgcmk_xasprintf("%s%s?api-version=%s", base, rq->path,
                                    rq->api_version ? rq->api_version : "");

        pgcmk_resp_header(rs, "Location", url);
        pgcmk_resp_header(rs, "Retry-After", "1");
        free(url);
        free(base);
        pgcmk_resp_empty(rs, 202);
    } else if (row.error) {
        json_t *e = json_loads(row.error, 0, NULL);
        int status = (int)json_integer_value(json_object_get(e, "status"));

        json_object_del(e, "status");
        pgcmk_resp_json(rs, status >= 400 ? status : 500, json_pack("{s:o}", "error", e));
    } else if (row.result_body && row.result_status != 204) {
        pgcmk_arm_send_stored(rs, row.result_status ? row.result_status : 200, row.result_body);
    } else {
        pgcmk_resp_empty(rs, row.result_status ? row.result_status : 204);
    }
    lro_row_release(&row);
    return 0;
}

static const struct pgcmk_route lro_routes[] = {
    {"GET", "/subscriptions/{sub}/providers/{ns}/locations/{loc}/azureAsyncOperation/{op}",
     PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, lro_status},
    {"GET", "/subscriptions/{sub}/providers/{ns}/locations/{loc}/operationStatuses/{op}",
     PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, lro_status},
    {"GET", "/subscriptions/{sub}/providers/{ns}/locations/{loc}/operationResults/{op}",
     PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, lro_result},
    {"GET", "/subscriptions/{sub}/operationresults/{op}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL,
     lro_result},
};

void
pgcmk_arm_lro_routes(void)
{
    pgcmk_router_add(lro_routes, PGCMK_ARRAY_LEN(lro_routes));
}
