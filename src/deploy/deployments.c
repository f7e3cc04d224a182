/* deployments.c - Microsoft.Resources/deployments: the deployments API and the executor that runs
 * a loaded template. Every resource is created through the same request pipeline as a PUT over
 * HTTP (pgcmk_http_dispatch, with a token of the deploying principal), each provider's LRO is
 * awaited, independent resources run in parallel, and failures come back in the
 * DeploymentFailed envelope with each provider's error in details. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/auth.h"
#include "pgcmk/cfg.h"
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/deploy.h"
#include "pgcmk/log.h"
#include "pgcmk/work.h"
#include "pgcmk/store.h"
#include "pgcmk/wellknown.h"

#define DEP_TYPE      "Microsoft.Resources/deployments"
#define DEP_PARALLEL  4
#define DEP_WAIT_MS   120000
#define DEP_MAX_DEPTH 5

static const struct pgcmk_cfg *dep_cfg;

struct dep;
static void dep_unregister(struct dep *d);

/* ---- calling the pipeline ------------------------------------------------------------------- */

struct dcall {
    int status;
    json_t *body;
    char *async_url, *location;
};

static void
dcall_release(struct dcall *c)
{
    json_decref(c->body);
    free(c->async_url);
    free(c->location);
    memset(c, 0, sizeof(*c));
}

/* One request through the whole pipeline, as `caller` (a token is minted for it). */
static void
deploy_call(const char *caller, const char *method, const char *url, const json_t *body,
            struct dcall *out)
{
    struct pgcmk_req rq;
    struct pgcmk_resp rs;
    char host[64], *text = body ? json_dumps(body, JSON_COMPACT) : NULL, *tok;
    int64_t exp;

    memset(out, 0, sizeof(*out));
    memset(&rs, 0, sizeof(rs));
    snprintf(host, sizeof(host), "localhost:%d", pgcmk_public_port());
    pgcmk_req_init(&rq, dep_cfg, method, url, host, text, text ? strlen(text) : 0);
    if (text)
        pgcmk_req_add_header(&rq, "Content-Type", "application/json");
    tok = pgcmk_auth_issue(caller, "https://management.azure.com/", &exp);
    if (tok) {
        char *h = pgcmk_xasprintf("Bearer %s", tok);

        pgcmk_req_add_header(&rq, "Authorization", h);
        pgcmk_secret_free(h, strlen(h));
        pgcmk_secret_free(tok, strlen(tok));
    }
    pgcmk_http_dispatch(&rq, &rs);
    out->status = rs.status;
    if (rs.body && rs.body_len)
        out->body = json_loadb(rs.body, rs.body_len, 0, NULL);
    for (int i = 0; i < rs.n_headers; i++) {
        if (strcasecmp(rs.headers[i].key, "Azure-AsyncOperation") == 0)
            out->async_url = pgcmk_xstrdup(rs.headers[i].value);
        else if (strcasecmp(rs.headers[i].key, "Location") == 0)
            out->location = pgcmk_xstrdup(rs.headers[i].value);
    }
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);
    free(text);
}

/* The provider's error of a failed answer, as a details entry. */
static json_t *
call_error(const struct dcall *c)
{
    json_t *e = json_object_get(c->body, "error");

    if (json_is_object(e))
        return json_deep_copy(e);
    return json_pack("{s:s, s:s}", "code", pgcmk_err_code(PGCMK_E_INTERNAL), "message",
                     "The resource provider returned no error body.");
}

/* ---- the deployment record ------------------------------------------------------------------ */

struct dep {
    char *id, *sub, *rg, *name, *caller, *location;
    json_t *body;     /* the deployment resource as served */
    json_t *template; /* the template object */
    json_t *params;   /* parameter values as given */
    int complete;
    volatile int cancel;
    int64_t started;
    pthread_mutex_t mu; /* body, ops */
    int op_seq;
};

static int
dep_save_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct dep *d = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_DEP_PUT);
    char *body = json_dumps(d->body, JSON_COMPACT), *tpl = json_dumps(d->template, JSON_COMPACT);
    char *par = json_dumps(d->params, JSON_COMPACT);
    const char *state = json_string_value(
        json_object_get(json_object_get(d->body, "properties"), "provisioningState"));
    int n;

    sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d->sub, -1, SQLITE_STATIC);
    if (d->rg)
        sqlite3_bind_text(st, 3, d->rg, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_text(st, 4, d->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, body, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, tpl, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, par, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, d->caller, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, state ? state : "Accepted", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, d->started);
    n = pgcmk_db_each(db, st, NULL, NULL, "write deployment", err);
    free(body);
    free(tpl);
    free(par);
    return n < 0 ? -1 : 0;
}

/* A new run of a deployment: its old operations go, in the transaction that saves it. */
static int
dep_start_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct dep *d = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_DEPOP_DELETE);

    sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, NULL, NULL, "delete deployment operations", err) < 0)
        return -1;
    return dep_save_tx(db, d, err);
}

static void
dep_set(struct dep *d, const char *key, json_t *value)
{
    pthread_mutex_lock(&d->mu);
    json_object_set_new(json_object_get(d->body, "properties"), key, value);
    pthread_mutex_unlock(&d->mu);
}

static void
dep_persist(struct dep *d)
{
    struct pgcmk_err err;

    pthread_mutex_lock(&d->mu);
    if (pgcmk_db_tx(pgcmk_db(), dep_save_tx, d, &err))
        LOG_WARN("deployment %s: %s", d->id, err.message);
    pthread_mutex_unlock(&d->mu);
}

static void
dep_free(struct dep *d)
{
    free(d->id);
    free(d->sub);
    free(d->rg);
    free(d->name);
    free(d->caller);
    free(d->location);
    json_decref(d->body);
    json_decref(d->template);
    json_decref(d->params);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

struct op_rec {
    struct dep *d;
    json_t *op;
};

static int
op_save_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct op_rec *r = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_DEPOP_PUT);
    char *body = json_dumps(r->op, JSON_COMPACT);
    int n;

    sqlite3_bind_text(st, 1, r->d->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, json_string_value(json_object_get(r->op, "operationId")), -1,
                      SQLITE_STATIC);
    sqlite3_bind_int(st, 3, r->d->op_seq++);
    sqlite3_bind_text(st, 4, body, -1, SQLITE_STATIC);
    n = pgcmk_db_each(db, st, NULL, NULL, "write deployment operation", err);
    free(body);
    return n < 0 ? -1 : 0;
}

static void
duration(int64_t ms, char out[32])
{
    snprintf(out, 32, "PT%lld.%03lldS", (long long)(ms / 1000), (long long)(ms % 1000));
}

/* Records one deployment operation (a resource's create, or its failure). */
static void
op_record(struct dep *d, const struct pgcmk_tpl_resource *r, const char *state, int status,
          json_t *message, int64_t started)
{
    char op_id[37], t[PGCMK_TIME_LEN], dur[32];
    json_t *op;
    struct op_rec rec;
    struct pgcmk_err err;
    const char *slash = strrchr(r->name, '/');

    pgcmk_uuid(op_id);
    for (char *p = op_id; *p; p++)
        if (*p == '-')
            memmove(p, p + 1, strlen(p));
    pgcmk_time_format(pgcmk_clock_now(), t);
    duration(pgcmk_wall_ms() - started, dur);
    op = json_pack("{s:s++, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:{s:s, s:s, s:s}}}",
                   "id", d->id, "/operations/", op_id, "operationId", op_id, "properties",
                   "provisioningOperation", "Create", "provisioningState", state, "timestamp", t,
                   "duration", dur, "trackingId", op_id, "serviceRequestId", op_id, "statusCode",
                   pgcmk_err_status_name(status), "statusMessage", message ? message : json_null(),
                   "targetResource", "id", r->id, "resourceType", r->type, "resourceName",
                   slash ? slash + 1 : r->name);
    rec = (struct op_rec){d, op};
    pthread_mutex_lock(&d->mu);
    if (op && pgcmk_db_tx(pgcmk_db(), op_save_tx, &rec, &err))
        LOG_WARN("deployment %s: %s", d->id, err.message);
    pthread_mutex_unlock(&d->mu);
    json_decref(op);
}

/* ---- the host: reference() and list*() ------------------------------------------------------- */

struct host_ctx {
    struct dep *d;
    struct pgcmk_tpl *t;
    int validating; /* validate/whatIf: unknown references give {} */
    int deferred;   /* a reference() was answered {} (its resource is not deployed yet) */
};

static const char *
api_version_for(struct pgcmk_tpl *t, const char *id)
{
    for (size_t i = 0; t && i < pgcmk_tpl_count(t); i++) {
        const struct pgcmk_tpl_resource *r = pgcmk_tpl_resource(t, i);

        if (strcasecmp(r->id, id) == 0)
            return r->api_version;
    }
    return NULL;
}

static json_t *
host_reference(void *ctx, const char *resource_id, const char *api_version, int full,
               struct pgcmk_err *err)
{
    struct host_ctx *h = ctx;
    struct dcall c;
    char *url;
    json_t *out = NULL;

    if (!api_version)
        api_version = api_version_for(h->t, resource_id);
    if (!api_version)
        api_version = "2021-04-01";
    url = pgcmk_xasprintf("%s?api-version=%s", resource_id, api_version);
    deploy_call(h->d->caller, "GET", url, NULL, &c);
    free(url);
    if (c.status == 200 && c.body) {
        out = full ? json_incref(c.body) : json_incref(json_object_get(c.body, "properties"));
        if (!out)
            out = json_object();
    } else if (h->validating) {
        out = json_object();
        h->deferred = 1;
    } else {
        pgcmk_err_set(err, PGCMK_E_INVALID_TEMPLATE, NULL,
                      "The Resource '%.300s' is not defined in the template and could not be "
                      "read (HTTP %d).",
                      resource_id, c.status);
    }
    dcall_release(&c);
    return out;
}

static json_t *
host_list(void *ctx, const char *resource_id, const char *function, const char *api_version,
          const json_t *body, struct pgcmk_err *err)
{
    struct host_ctx *h = ctx;
    struct dcall c;
    char *url = pgcmk_xasprintf("%s/%s?api-version=%s", resource_id, function,
                                api_version ? api_version : "2021-04-01");
    json_t *out = NULL;

    deploy_call(h->d->caller, "POST", url, body, &c);
    free(url);
    if (c.status == 200 && c.body)
        out = json_incref(c.body);
    else if (h->validating)
        out = json_object();
    else
        pgcmk_err_set(err, PGCMK_E_INVALID_TEMPLATE, NULL,
                      "The function '%.64s' of '%.300s' failed (HTTP %d).", function, resource_id,
                      c.status);
    dcall_release(&c);
    return out;
}

/* ---- execution ------------------------------------------------------------------------------ */

static int dep_run_template(struct dep *d, const json_t *tpl, const json_t *params, const char *rg,
                            int depth, json_t **outputs, json_t *out_resources, json_t *details,
                            struct pgcmk_err *err);

/* Waits for a resource's own LRO, if its PUT started one. 1 ok, 0 failed (details appended). */
static int
await_put(struct dcall *c, json_t **error)
{
    char *op;
    struct pgcmk_err err;
    json_t *det = NULL;
    int rc;

    if (c->status >= 300 && c->status != 202)
        return 1;
    op = pgcmk_lro_id_from_url(c->async_url ? c->async_url : c->location);
    if (!op)
        return 1;
    memset(&err, 0, sizeof(err));
    rc = pgcmk_lro_wait(op, DEP_WAIT_MS, &det, &err);
    free(op);
    if (rc == 1) {
        json_decref(det);
        return 1;
    }
    *error = json_pack("{s:s, s:s}", "code", pgcmk_err_code(err.code), "message", err.message);
    if (det)
        json_object_set_new(*error, "details", det);
    return 0;
}

struct run_one {
    struct dep *d;
    struct pgcmk_tpl *t;
    size_t i;
    int depth;
    const char *rg;
    int ok;
    json_t *out_resources, *details;
    pthread_mutex_t *mu;
};

static void
run_resource(struct run_one *ro)
{
    const struct pgcmk_tpl_resource *r = pgcmk_tpl_resource(ro->t, ro->i);
    struct host_ctx hc = {ro->d, ro->t, 0, 0};
    struct pgcmk_tpl_host host = {host_reference, host_list, &hc};
    struct pgcmk_err err;
    int64_t started = pgcmk_wall_ms();
    json_t *body, *error = NULL;

    memset(&err, 0, sizeof(err));
    ro->ok = 1;
    if (!r->condition)
        return;
    body = pgcmk_tpl_render(ro->t, ro->i, &host, &err);
    if (!body) {
        error = json_pack("{s:s, s:s}", "code", pgcmk_err_code(err.code), "message", err.message);
    } else if (r->nested_deployment) {
        const char *nrg = json_string_value(json_object_get(body, "resourceGroup"));
        json_t *props = json_object_get(body, "properties");
        json_t *outs = NULL, *ndet = json_array();

        if (ro->depth >= DEP_MAX_DEPTH) {
            error = json_pack("{s:s, s:s}", "code", pgcmk_err_code(PGCMK_E_INVALID_TEMPLATE),
                              "message", "Nested deployments are too deep.");
        } else if (dep_run_template(ro->d, json_object_get(props, "template"),
                                    json_object_get(props, "parameters"), nrg ? nrg : ro->rg,
                                    ro->depth + 1, &outs, ro->out_resources, ndet, &err)) {
            error = json_pack("{s:s, s:s, s:O}", "code", pgcmk_err_code(PGCMK_E_DEPLOYMENT_FAILED),
                              "message",
                              "At least one resource deployment operation failed. Please list "
                              "deployment operations for details. Please see "
                              "https://aka.ms/arm-deployment-operations for usage details.",
                              "details", ndet);
        }
        json_decref(outs);
        json_decref(ndet);
    } else {
        struct dcall c;
        char *url = pgcmk_xasprintf("%s?api-version=%s", r->id, r->api_version);

        deploy_call(ro->d->caller, "PUT", url, body, &c);
        free(url);
        if (c.status >= 400) {
            error = call_error(&c);
        } else if (!await_put(&c, &error)) {
            ;
        } else {
            op_record(ro->d, r, "Succeeded", c.status, NULL, started);
            pthread_mutex_lock(ro->mu);
            json_array_append_new(ro->out_resources, json_pack("{s:s}", "id", r->id));
            pthread_mutex_unlock(ro->mu);
        }
        dcall_release(&c);
    }
    if (error) {
        ro->ok = 0;
        op_record(ro->d, r, "Failed",
                  pgcmk_err_status(
                      pgcmk_err_from_code(json_string_value(json_object_get(error, "code")) ?: "")),
                  json_pack("{s:O}", "error", error), started);
        pthread_mutex_lock(ro->mu);
        json_array_append(ro->details, error);
        pthread_mutex_unlock(ro->mu);
        json_decref(error);
    }
    json_decref(body);
}

static void *
run_thread(void *arg)
{
    run_resource(arg);
    return NULL;
}

/* Runs one template (the deployment's, or a nested one) in dependency waves. */
static int
dep_run_template(struct dep *d, const json_t *tpl, const json_t *params, const char *rg, int depth,
                 json_t **outputs, json_t *out_resources, json_t *details, struct pgcmk_err *err)
{
    struct pgcmk_tpl_scope scope = {d->sub, PGCMK_TENANT_ID, rg, NULL, d->name, pgcmk_clock_now()};
    char *loc = rg ? pgcmk_arm_rg_location(d->sub, rg) : NULL;
    struct pgcmk_tpl *t;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    size_t n, left;
    int *state, failed = 0; /* 0 waiting, 1 done ok, 2 failed or skipped */

    scope.rg_location = loc ? loc : d->location;
    t = pgcmk_tpl_load(tpl, params, &scope, err);
    free(loc);
    if (!t)
        return -1;
    n = pgcmk_tpl_count(t);
    state = pgcmk_xcalloc(n ? n : 1, sizeof(*state));
    left = n;
    while (left > 0 && !d->cancel) {
        struct run_one ro[DEP_PARALLEL];
        pthread_t th[DEP_PARALLEL];
        int started[DEP_PARALLEL];
        size_t k = 0;

        for (size_t i = 0; i < n && k < DEP_PARALLEL; i++) {
            const struct pgcmk_tpl_resource *r = pgcmk_tpl_resource(t, i);
            int ready = state[i] == 0, blocked = 0;

            for (size_t j = 0; ready && j < r->n_deps; j++) {
                if (state[r->deps[j]] == 0)
                    ready = 0;
                else if (state[r->deps[j]] == 2)
                    blocked = 1;
            }
            if (!ready)
                continue;
            if (blocked) { /* a dependency failed: this one is not attempted */
                state[i] = 2;
                left--;
                continue;
            }
            ro[k] = (struct run_one){d, t, i, depth, rg, 0, out_resources, details, &mu};
            k++;
        }
        if (k == 0)
            continue;
        for (size_t j = 0; j < k; j++)
            started[j] = k > 1 && pthread_create(&th[j], NULL, run_thread, &ro[j]) == 0;
        for (size_t j = 0; j < k; j++) {
            if (started[j])
                pthread_join(th[j], NULL);
            else
                run_resource(&ro[j]);
            state[ro[j].i] = ro[j].ok ? 1 : 2;
            failed |= !ro[j].ok;
            left--;
        }
    }
    free(state);
    if (d->cancel) {
        pgcmk_tpl_free(t);
        return pgcmk_err_set(err, PGCMK_E_DEPLOYMENT_CANCELED, NULL,
                             "The deployment '%.64s' was canceled.", d->name);
    }
    if (!failed && outputs) {
        struct host_ctx hc = {d, t, 0, 0};
        struct pgcmk_tpl_host host = {host_reference, host_list, &hc};

        *outputs = pgcmk_tpl_outputs(t, &host, err);
        if (!*outputs) {
            json_array_append_new(details, json_pack("{s:s, s:s}", "code",
                                                     pgcmk_err_code(PGCMK_E_INVALID_TEMPLATE),
                                                     "message", err->message));
            failed = 1;
        }
    }
    pgcmk_tpl_free(t);
    if (failed)
        return pgcmk_err_set(err, PGCMK_E_DEPLOYMENT_FAILED, NULL,
                             "At least one resource deployment operation failed. Please list "
                             "deployment operations for details. Please see "
                             "https://aka.ms/arm-deployment-operations for usage details.");
    return 0;
}

/* Complete mode: the group's resources the template does not list are deleted. */
static void
dep_complete_mode(struct dep *d, json_t *kept)
{
    struct dcall c;
    char *url = pgcmk_xasprintf(
        "/subscriptions/%s/resourceGroups/%s/resources?api-version=2021-04-01", d->sub, d->rg);
    json_t *v;
    size_t i;

    deploy_call(d->caller, "GET", url, NULL, &c);
    free(url);
    json_array_foreach(json_object_get(c.body, "value"), i, v) {
        const char *id = json_string_value(json_object_get(v, "id"));
        const char *type = json_string_value(json_object_get(v, "type"));
        int keep = 0;
        json_t *k;
        size_t j;

        json_array_foreach(kept, j, k)
            keep |= id && strcasecmp(id, json_string_value(json_object_get(k, "id"))) == 0;
        if (!keep && id && type) {
            const struct pgcmk_arm_type *at;
            const char *slash = strchr(type, '/');
            struct dcall del;
            char ns[128];

            snprintf(ns, sizeof(ns), "%.*s", slash ? (int)(slash - type) : 0, type);
            at = slash ? pgcmk_arm_find_type(ns, slash + 1) : NULL;
            if (!at)
                continue;
            url = pgcmk_xasprintf("%s?api-version=%s", id, at->versions[0]);
            deploy_call(d->caller, "DELETE", url, NULL, &del);
            free(url);
            dcall_release(&del);
        }
    }
    dcall_release(&c);
}

static void
dep_job(void *arg, struct pgcmk_lro_result *out)
{
    struct dep *d = arg;
    struct pgcmk_err err;
    json_t *outputs = NULL, *res = json_array(), *details = json_array();
    char dur[32];
    int rc;

    memset(&err, 0, sizeof(err));
    /* This job waits for the operations of the resources it creates, which run on the same
     * pool: it must not hold a worker while it does (pgcmk_work_detach). */
    if (pgcmk_work_detach() != 0)
        LOG_DEBUG("deployment %s runs on a pool worker", d->name);
    dep_set(d, "provisioningState", json_string("Running"));
    dep_persist(d);
    rc = dep_run_template(d, d->template, d->params, d->rg, 0, &outputs, res, details, &err);
    if (rc == 0 && d->complete && d->rg)
        dep_complete_mode(d, res);
    duration(pgcmk_wall_ms() - d->started, dur);
    dep_set(d, "duration", json_string(dur));
    dep_set(d, "outputResources", json_incref(res));
    if (rc == 0) {
        dep_set(d, "provisioningState", json_string("Succeeded"));
        dep_set(d, "outputs", outputs ? outputs : json_object());
        out->status = 200;
        out->body = json_incref(d->body);
    } else {
        json_t *e =
            json_pack("{s:s, s:s}", "code", pgcmk_err_code(err.code), "message", err.message);

        if (json_array_size(details))
            json_object_set(e, "details", details);
        dep_set(d, "provisioningState",
                json_string(err.code == PGCMK_E_DEPLOYMENT_CANCELED ? "Canceled" : "Failed"));
        dep_set(d, "error", e);
        json_decref(outputs);
        out->failed = 1;
        out->err = err;
        if (json_array_size(details))
            out->details = json_incref(details);
    }
    dep_persist(d);
    json_decref(res);
    json_decref(details);
    dep_unregister(d);
}

/* ---- running deployments ----------------------------------------------------------------------
 */

static pthread_mutex_t active_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dep *active[64];

static int
dep_register(struct dep *d)
{
    int ok = 0;

    pthread_mutex_lock(&active_mu);
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(active) && !ok; i++)
        if (!active[i]) {
            active[i] = d;
            ok = 1;
        }
    pthread_mutex_unlock(&active_mu);
    return ok ? 0 : -1;
}

static void
dep_unregister(struct dep *d)
{
    pthread_mutex_lock(&active_mu);
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(active); i++)
        if (active[i] == d)
            active[i] = NULL;
    pthread_mutex_unlock(&active_mu);
    dep_free(d);
}

/* 1 when a deployment with this id runs (and asks it to stop when cancel is set). */
static int
dep_active(const char *id, int cancel)
{
    int found = 0;

    pthread_mutex_lock(&active_mu);
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(active); i++)
        if (active[i] && strcasecmp(active[i]->id, id) == 0) {
            found = 1;
            if (cancel)
                active[i]->cancel = 1;
        }
    pthread_mutex_unlock(&active_mu);
    return found;
}

/* ---- routes -----------------------------------------------------------------------------------
 */

struct target {
    const char *sub, *rg, *name;
    char *id;
};

static int
dep_target(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct target *t, struct pgcmk_err *err)
{
    memset(t, 0, sizeof(*t));
    t->sub = pgcmk_req_param(rq, "sub");
    t->rg = pgcmk_req_param(rq, "rg");
    t->name = pgcmk_req_param(rq, "name");
    if (pgcmk_arm_check_resources_version(rq, rs, err) || pgcmk_arm_check_sub(t->sub, err))
        return -1;
    if (t->rg && pgcmk_arm_rg_usable(t->sub, t->rg, err))
        return -1;
    if (t->name && (strlen(t->name) > 64 || !*t->name ||
                    strspn(t->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                    "-_.()") != strlen(t->name)))
        return pgcmk_err_set(err, PGCMK_E_INVALID_RESOURCE_NAME, "name",
                             "The deployment name '%.64s' is invalid: use 1 to 64 letters, "
                             "digits, '-', '_', '.', '(' and ')'.",
                             t->name);
    if (t->name)
        t->id =
            t->rg ? pgcmk_xasprintf("/subscriptions/%s/resourceGroups/%s/providers/" DEP_TYPE "/%s",
                                    t->sub, t->rg, t->name)
                  : pgcmk_xasprintf("/subscriptions/%s/providers/" DEP_TYPE "/%s", t->sub, t->name);
    return 0;
}

static int
dep_body_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    char **body = arg;

    PGCMK_UNUSED(err);
    if (body)
        *body = pgcmk_xstrdup((const char *)sqlite3_column_text(st, 0));
    return 1;
}

/* 1 found (*body set when body is not NULL), 0 absent, -1 error. */
static int
dep_load(const char *id, char **body, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_DEP_GET);
    int n;

    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    n = pgcmk_db_each(db, st, dep_body_row, body, "read deployment", err);
    return n < 0 ? -1 : n > 0;
}

static int
dep_not_found(const struct target *t, struct pgcmk_err *err)
{
    return pgcmk_err_set(err, PGCMK_E_DEPLOYMENT_NOT_FOUND, NULL,
                         "Deployment '%.64s' could not be found.", t->name);
}

/* The body's template and parameters, checked. */
static json_t *
dep_parse(struct pgcmk_req *rq, const struct target *t, json_t **tpl, json_t **params,
          const char **mode, struct pgcmk_jsonc_pos **pos, struct pgcmk_err *err)
{
    json_t *body = pgcmk_deploy_parse_body_pos(rq->body, rq->body_len, pos, err), *p;

    if (!body)
        return NULL;
    p = json_object_get(body, "properties");
    *tpl = json_object_get(p, "template");
    *params = json_object_get(p, "parameters");
    *mode = json_string_value(json_object_get(p, "mode"));
    if (!json_is_object(p)) {
        pgcmk_err_set(err, PGCMK_E_INVALID_DEPLOYMENT, "properties",
                      "The deployment needs a 'properties' object.");
    } else if (json_object_get(p, "templateLink") || json_object_get(p, "parametersLink")) {
        pgcmk_err_set(err, PGCMK_E_INVALID_DEPLOYMENT, "properties.templateLink",
                      "templateLink and parametersLink are not supported by the emulator: send "
                      "the template inline.");
    } else if (!json_is_object(*tpl)) {
        pgcmk_err_set(err, PGCMK_E_INVALID_DEPLOYMENT, "properties.template",
                      "The deployment needs properties.template (an object).");
    } else if (!*mode ||
               (!pgcmk_streq_ci(*mode, "Incremental") && !pgcmk_streq_ci(*mode, "Complete"))) {
        pgcmk_err_set(err, PGCMK_E_INVALID_DEPLOYMENT, "properties.mode",
                      "The deployment mode '%.32s' is not valid: use Incremental or Complete.",
                      *mode ? *mode : "");
    } else if (!t->rg && !json_is_string(json_object_get(body, "location"))) {
        pgcmk_err_set(err, PGCMK_E_LOCATION_REQUIRED, "location",
                      "A subscription-level deployment needs a location.");
    } else if (*params && !json_is_object(*params)) {
        pgcmk_err_set(err, PGCMK_E_INVALID_DEPLOYMENT, "properties.parameters",
                      "properties.parameters must be an object.");
    } else {
        if (!*params)
            *params = json_object();
        else
            json_incref(*params);
        json_incref(*tpl);
        return body;
    }
    *tpl = *params = NULL; /* they were borrowed from body */
    json_decref(body);
    return NULL;
}

static json_t *
dep_new_body(struct pgcmk_req *rq, const struct target *t, const json_t *req, json_t *tpl,
             struct pgcmk_tpl *loaded, const char *mode, const char *state)
{
    char t_now[PGCMK_TIME_LEN], hash[32];
    unsigned char h[32];
    char *text = json_dumps(tpl, JSON_COMPACT | JSON_SORT_KEYS);
    unsigned long long v = 0;
    json_t *body, *props, *deps = json_array(), *providers = json_object(), *plist = json_array();
    const char *k;
    json_t *x;

    pgcmk_sha256(text, strlen(text), h);
    free(text);
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    snprintf(hash, sizeof(hash), "%llu", v % 10000000000000000000ULL);
    pgcmk_time_format(pgcmk_clock_now(), t_now);
    for (size_t i = 0; loaded && i < pgcmk_tpl_count(loaded); i++) {
        const struct pgcmk_tpl_resource *r = pgcmk_tpl_resource(loaded, i);
        const char *slash = strchr(r->type, '/');
        char ns[128];
        json_t *types, *on = json_array();

        snprintf(ns, sizeof(ns), "%.*s", slash ? (int)(slash - r->type) : (int)strlen(r->type),
                 r->type);
        types = json_object_get(providers, ns);
        if (!types)
            json_object_set_new(providers, ns, types = json_object());
        json_object_set_new(types, slash ? slash + 1 : r->type, json_true());
        for (size_t j = 0; j < r->n_deps; j++) {
            const struct pgcmk_tpl_resource *dr = pgcmk_tpl_resource(loaded, r->deps[j]);

            json_array_append_new(on, json_pack("{s:s, s:s, s:s}", "id", dr->id, "resourceType",
                                                dr->type, "resourceName", dr->name));
        }
        if (json_array_size(on))
            json_array_append_new(deps,
                                  json_pack("{s:o, s:s, s:s, s:s}", "dependsOn", on, "id", r->id,
                                            "resourceType", r->type, "resourceName", r->name));
        else
            json_decref(on);
    }
    json_object_foreach(providers, k, x) {
        json_t *rts = json_array(), *y;
        const char *kk;

        json_object_foreach(x, kk, y)
            json_array_append_new(rts, json_pack("{s:s, s:[]}", "resourceType", kk, "locations"));
        json_array_append_new(plist, json_pack("{s:s, s:o}", "namespace", k, "resourceTypes", rts));
    }
    json_decref(providers);
    props = json_pack("{s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "templateHash",
                      hash, "parameters", loaded ? pgcmk_tpl_parameters(loaded) : json_object(),
                      "mode", pgcmk_streq_ci(mode, "Complete") ? "Complete" : "Incremental",
                      "provisioningState", state, "timestamp", t_now, "duration", "PT0S",
                      "correlationId", rq->correlation_id, "providers", plist, "dependencies", deps,
                      "outputResources", json_array(), "outputs", json_object());
    body = json_pack(
        "{s:s, s:s, s:s, s:o, s:o}", "id", t->id, "name", t->name, "type", DEP_TYPE, "tags",
        json_is_object(json_object_get(req, "tags")) ? json_deep_copy(json_object_get(req, "tags"))
                                                     : json_object(),
        "properties", props);
    if (json_is_string(json_object_get(req, "location")))
        json_object_set(body, "location", json_object_get(req, "location"));
    return body;
}

static struct pgcmk_tpl *
dep_load_tpl(const struct target *t, const json_t *tpl, const json_t *params, const json_t *req,
             const struct pgcmk_jsonc_pos *pos, struct pgcmk_err *err)
{
    char *loc = t->rg ? pgcmk_arm_rg_location(t->sub, t->rg) : NULL;
    struct pgcmk_tpl_scope scope = {
        t->sub,  PGCMK_TENANT_ID,
        t->rg,   loc ? loc : json_string_value(json_object_get(req, "location")),
        t->name, pgcmk_clock_now()};
    struct pgcmk_tpl *out = pgcmk_tpl_load_pos(tpl, params, &scope, pos, err);

    free(loc);
    return out;
}

static int
dep_put(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct target t;
    json_t *req = NULL, *tpl = NULL, *params = NULL;
    const char *mode = NULL;
    struct pgcmk_tpl *loaded = NULL;
    struct pgcmk_jsonc_pos *pos = NULL;
    struct dep *d;
    int existed, rc = -1;

    if (dep_target(rq, rs, &t, err))
        goto out;
    if (dep_active(t.id, 0)) {
        pgcmk_err_set(err, PGCMK_E_DEPLOYMENT_ACTIVE, NULL,
                      "Unable to edit or replace deployment '%.64s': previous deployment from "
                      "'%s' is still active (state: Running). Please see "
                      "https://aka.ms/arm-deploy-resources for usage details.",
                      t.name, "");
        goto out;
    }
    req = dep_parse(rq, &t, &tpl, &params, &mode, &pos, err);
    if (!req)
        goto out;
    loaded = dep_load_tpl(&t, tpl, params, req, pos, err);
    if (!loaded)
        goto out;
    existed = dep_load(t.id, NULL, err);
    if (existed < 0)
        goto out;
    d = pgcmk_xcalloc(1, sizeof(*d));
    pthread_mutex_init(&d->mu, NULL);
    d->id = pgcmk_xstrdup(t.id);
    d->sub = pgcmk_xstrdup(t.sub);
    d->rg = t.rg ? pgcmk_xstrdup(t.rg) : NULL;
    d->name = pgcmk_xstrdup(t.name);
    d->caller = pgcmk_xstrdup(rq->principal[0] ? rq->principal : PGCMK_ADMIN_OBJECT_ID);
    d->location = json_is_string(json_object_get(req, "location"))
                      ? pgcmk_xstrdup(json_string_value(json_object_get(req, "location")))
                      : NULL;
    d->body = dep_new_body(rq, &t, req, tpl, loaded, mode, "Accepted");
    d->template = json_incref(tpl);
    d->params = json_incref(params);
    d->complete = pgcmk_streq_ci(mode, "Complete");
    d->started = pgcmk_wall_ms();
    if (pgcmk_db_tx(pgcmk_db(), dep_start_tx, d, err) || dep_register(d)) {
        if (err->code == PGCMK_E_OK)
            pgcmk_err_set(err, PGCMK_E_UNAVAILABLE, NULL, "Too many deployments are running.");
        dep_free(d);
        goto out;
    }
    {
        char *body = json_dumps(d->body, JSON_COMPACT);
        char *loc = t.rg ? pgcmk_arm_rg_location(t.sub, t.rg) : NULL;

        if (pgcmk_lro_start(rq, rs, t.sub, "Microsoft.Resources",
                            loc ? loc : (d->location ? d->location : "eastus"), "Deployment", t.id,
                            dep_job, d, err)) {
            dep_unregister(d);
            free(body);
            free(loc);
            goto out;
        }
        pgcmk_arm_send_stored(rs, existed ? 200 : 201, body);
        free(body);
        free(loc);
    }
    rc = 0;
out:
    pgcmk_tpl_free(loaded);
    pgcmk_jsonc_pos_free(pos);
    json_decref(req);
    json_decref(tpl);
    json_decref(params);
    free(t.id);
    return rc;
}

static int
dep_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct target t;
    char *body = NULL;
    int rc;

    if (dep_target(rq, rs, &t, err))
        return -1;
    rc = dep_load(t.id, &body, err);
    if (rc > 0)
        pgcmk_arm_send_stored(rs, 200, body);
    else if (rc == 0)
        dep_not_found(&t, err);
    free(body);
    free(t.id);
    return rc > 0 ? 0 : -1;
}

static int
dep_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct target t;
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st;
    json_t *items = json_array();
    int rc;

    if (dep_target(rq, rs, &t, err)) {
        json_decref(items);
        return -1;
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_DEP_LIST);
    sqlite3_bind_text(st, 1, t.sub, -1, SQLITE_STATIC);
    if (t.rg)
        sqlite3_bind_text(st, 2, t.rg, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    rc = pgcmk_db_each(db, st, pgcmk_db_collect_json, items, "list deployments", err);
    free(t.id);
    if (rc < 0) {
        json_decref(items);
        return -1;
    }
    return pgcmk_arm_list(rq, rs, items, err);
}

static void
dep_delete_job(void *arg, struct pgcmk_lro_result *out)
{
    (void)arg;
    out->status = 204;
}

static int
dep_delete_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_DEP_DELETE);

    sqlite3_bind_text(st, 1, ctx, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, NULL, NULL, "delete deployment", err) < 0)
        return -1;
    st = pgcmk_db_stmt(db, PGCMK_STMT_DEPOP_DELETE);
    sqlite3_bind_text(st, 1, ctx, -1, SQLITE_STATIC);
    return pgcmk_db_each(db, st, NULL, NULL, "delete deployment operations", err) < 0 ? -1 : 0;
}

static int
dep_delete(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct target t;
    int rc;

    if (dep_target(rq, rs, &t, err))
        return -1;
    rc = dep_load(t.id, NULL, err);
    if (rc == 0) {
        pgcmk_resp_empty(rs, 204);
    } else if (rc > 0 && dep_active(t.id, 0)) {
        rc = pgcmk_err_set(err, PGCMK_E_DEPLOYMENT_ACTIVE, NULL,
                           "The deployment '%.64s' is still running; cancel it first.", t.name);
    } else if (rc > 0 && pgcmk_db_tx(pgcmk_db(), dep_delete_tx, t.id, err) == 0 &&
               pgcmk_lro_start(rq, rs, t.sub, NULL, NULL, "DeleteDeployment", t.id, dep_delete_job,
                               NULL, err) == 0) {
        pgcmk_resp_empty(rs, 202);
    } else {
        rc = -1;
    }
    free(t.id);
    return rc < 0 ? -1 : 0;
}

static int
dep_cancel(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct target t;
    int rc;

    if (dep_target(rq, rs, &t, err))
        return -1;
    rc = dep_load(t.id, NULL, err);
    if (rc == 0)
        rc = dep_not_found(&t, err);
    else if (rc > 0 && !dep_active(t.id, 1))
        rc = pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL,
                           "The deployment '%.64s' cannot be canceled: it is not running.", t.name);
    else if (rc > 0)
        pgcmk_resp_empty(rs, 204);
    free(t.id);
    return rc < 0 ? -1 : 0;
}

/* Renders every resource with a host that tolerates resources that do not exist yet. */
/* Renders every resource with a host that tolerates resources that do not exist yet. A resource
 * whose expressions need such a resource (reference() of something this deployment creates) is
 * not an error: its body is evaluated at deployment time, as in Azure; it renders as null. */
static int
dep_render_all(struct dep *d, struct pgcmk_tpl *t, json_t *out, struct pgcmk_err *err)
{
    struct host_ctx hc = {d, t, 1, 0};
    struct pgcmk_tpl_host host = {host_reference, host_list, &hc};

    for (size_t i = 0; i < pgcmk_tpl_count(t); i++) {
        const struct pgcmk_tpl_resource *r = pgcmk_tpl_resource(t, i);
        json_t *b;

        if (!r->condition) {
            json_array_append_new(out, json_null());
            continue;
        }
        hc.deferred = 0;
        b = pgcmk_tpl_render(t, i, &host, err);
        if (!b && !hc.deferred)
            return -1;
        json_array_append_new(out, b ? b : json_null());
    }
    pgcmk_err_clear(err);
    return 0;
}

/* validate and whatIf share their set-up. */
struct dry {
    struct target t;
    json_t *req, *tpl, *params, *bodies;
    const char *mode;
    struct pgcmk_tpl *loaded;
    struct pgcmk_jsonc_pos *pos;
    struct dep d;
};

static int
dry_start(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct dry *x, struct pgcmk_err *err)
{
    memset(x, 0, sizeof(*x));
    if (dep_target(rq, rs, &x->t, err))
        return -1;
    x->req = dep_parse(rq, &x->t, &x->tpl, &x->params, &x->mode, &x->pos, err);
    if (!x->req)
        return -1;
    x->loaded = dep_load_tpl(&x->t, x->tpl, x->params, x->req, x->pos, err);
    if (!x->loaded)
        return -1;
    x->d.id = x->t.id;
    x->d.sub = (char *)x->t.sub;
    x->d.rg = (char *)x->t.rg;
    x->d.name = (char *)x->t.name;
    x->d.caller = rq->principal[0] ? rq->principal : (char *)PGCMK_ADMIN_OBJECT_ID;
    x->bodies = json_array();
    return dep_render_all(&x->d, x->loaded, x->bodies, err);
}

static void
dry_end(struct dry *x)
{
    pgcmk_tpl_free(x->loaded);
    pgcmk_jsonc_pos_free(x->pos);
    json_decref(x->req);
    json_decref(x->tpl);
    json_decref(x->params);
    json_decref(x->bodies);
    free(x->t.id);
}

static int
dep_validate(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct dry x;
    int rc = dry_start(rq, rs, &x, err);

    if (rc == 0) {
        json_t *body = dep_new_body(rq, &x.t, x.req, x.tpl, x.loaded, x.mode, "Succeeded");
        json_t *vr = json_array();

        for (size_t i = 0; i < pgcmk_tpl_count(x.loaded); i++)
            json_array_append_new(vr,
                                  json_pack("{s:s}", "id", pgcmk_tpl_resource(x.loaded, i)->id));
        json_object_set_new(json_object_get(body, "properties"), "validatedResources", vr);
        pgcmk_resp_json(rs, 200, body);
    }
    dry_end(&x);
    return rc;
}

/* The property-level differences of `after` against `before` (only paths the template sets). */
static void
what_delta(const char *path, const json_t *before, const json_t *after, json_t *out)
{
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)after, k, v) {
        char *p = path[0] ? pgcmk_xasprintf("%s.%s", path, k) : pgcmk_xstrdup(k);
        const json_t *b = json_object_get(before, k);

        if (strcasecmp(k, "administratorLoginPassword") == 0 || strcmp(k, "id") == 0) {
            ;
        } else if (!b) {
            json_array_append_new(out, json_pack("{s:s, s:s, s:O}", "path", p, "propertyChangeType",
                                                 "Create", "after", v));
        } else if (json_is_object(v) && json_is_object(b)) {
            what_delta(p, b, v, out);
        } else if (!json_equal(v, b)) {
            json_array_append_new(
                out, json_pack("{s:s, s:s, s:O, s:O}", "path", p, "propertyChangeType",
                               json_is_array(v) ? "Array" : "Modify", "before", b, "after", v));
        }
        free(p);
    }
}

static int
dep_what_if(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct dry x;
    json_t *changes = json_array(), *listed = json_array();
    int rc = dry_start(rq, rs, &x, err);

    for (size_t i = 0; rc == 0 && i < pgcmk_tpl_count(x.loaded); i++) {
        const struct pgcmk_tpl_resource *r = pgcmk_tpl_resource(x.loaded, i);
        json_t *after = json_array_get(x.bodies, i), *delta = json_array();
        struct dcall c;
        char *url;

        json_array_append_new(listed, json_pack("{s:s}", "id", r->id));
        if (!r->condition || r->nested_deployment) {
            json_array_append_new(changes,
                                  json_pack("{s:s, s:s}", "resourceId", r->id, "changeType",
                                            r->condition ? "Unsupported" : "Ignore"));
            json_decref(delta);
            continue;
        }
        url = pgcmk_xasprintf("%s?api-version=%s", r->id, r->api_version);
        deploy_call(x.d.caller, "GET", url, NULL, &c);
        free(url);
        if (c.status != 200) {
            json_array_append_new(changes, json_pack("{s:s, s:s, s:O}", "resourceId", r->id,
                                                     "changeType", "Create", "after", after));
            json_decref(delta);
        } else if (json_is_null(after)) {
            json_array_append_new(
                changes, json_pack("{s:s, s:s, s:s, s:O}", "resourceId", r->id, "changeType",
                                   "Unsupported", "unsupportedReason",
                                   "The resource's properties use reference() to a resource "
                                   "this deployment has not created yet; they are evaluated at "
                                   "deployment time.",
                                   "before", c.body));
            json_decref(delta);
        } else {
            what_delta("", c.body, after, delta);
            json_array_append_new(
                changes, json_pack("{s:s, s:s, s:O, s:O, s:o}", "resourceId", r->id, "changeType",
                                   json_array_size(delta) ? "Modify" : "NoChange", "before", c.body,
                                   "after", after, "delta", delta));
        }
        dcall_release(&c);
    }
    if (rc == 0 && x.t.rg) {
        struct dcall c;
        char *url = pgcmk_xasprintf("/subscriptions/%s/resourceGroups/%s/resources"
                                    "?api-version=2021-04-01",
                                    x.t.sub, x.t.rg);
        json_t *v, *k;
        size_t i, j;

        deploy_call(x.d.caller, "GET", url, NULL, &c);
        free(url);
        json_array_foreach(json_object_get(c.body, "value"), i, v) {
            const char *id = json_string_value(json_object_get(v, "id"));
            int mine = 0;

            json_array_foreach(listed, j, k)
                mine |= id && strcasecmp(id, json_string_value(json_object_get(k, "id"))) == 0;
            if (id && !mine)
                json_array_append_new(
                    changes, json_pack("{s:s, s:s, s:O}", "resourceId", id, "changeType",
                                       pgcmk_streq_ci(x.mode, "Complete") ? "Delete" : "Ignore",
                                       "before", v));
        }
        dcall_release(&c);
    }
    if (rc == 0)
        pgcmk_resp_json(
            rs, 200,
            json_pack("{s:s, s:{s:O}}", "status", "Succeeded", "properties", "changes", changes));
    json_decref(changes);
    json_decref(listed);
    dry_end(&x);
    return rc;
}

static int
export_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    pgcmk_resp_json(arg, 200,
                    json_pack("{s:o}", "template",
                              json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL)));
    return 1;
}

static int
dep_export(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct target t;
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st;
    int rc;

    if (dep_target(rq, rs, &t, err))
        return -1;
    st = pgcmk_db_stmt(db, PGCMK_STMT_DEP_GET);
    sqlite3_bind_text(st, 1, t.id, -1, SQLITE_STATIC);
    rc = pgcmk_db_each(db, st, export_row, rs, "read deployment", err);
    if (rc == 0)
        dep_not_found(&t, err);
    free(t.id);
    return rc > 0 ? 0 : -1;
}

static int
dep_operations(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct target t;
    struct pgcmk_db *db = pgcmk_db();
    const char *op = pgcmk_req_param(rq, "op");
    sqlite3_stmt *st;
    json_t *items = json_array();
    int rc;

    if (dep_target(rq, rs, &t, err)) {
        json_decref(items);
        return -1;
    }
    rc = dep_load(t.id, NULL, err);
    if (rc <= 0) {
        json_decref(items);
        if (rc == 0)
            dep_not_found(&t, err);
        free(t.id);
        return -1;
    }
    st = pgcmk_db_stmt(db, op ? PGCMK_STMT_DEPOP_GET : PGCMK_STMT_DEPOP_LIST);
    sqlite3_bind_text(st, 1, t.id, -1, SQLITE_STATIC);
    if (op)
        sqlite3_bind_text(st, 2, op, -1, SQLITE_STATIC);
    rc = pgcmk_db_each(db, st, pgcmk_db_collect_json, items, "list deployment operations", err);
    free(t.id);
    if (rc < 0) {
        json_decref(items);
        return -1;
    }
    if (!op)
        return pgcmk_arm_list(rq, rs, items, err);
    if (json_array_size(items) == 0) {
        json_decref(items);
        return pgcmk_err_set(err, PGCMK_E_OPERATION_NOT_FOUND, NULL,
                             "The deployment operation '%.64s' could not be found.", op);
    }
    pgcmk_resp_json(rs, 200, json_incref(json_array_get(items, 0)));
    json_decref(items);
    return 0;
}

#define RG_DEP  "/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.Resources/deployments"
#define SUB_DEP "/subscriptions/{sub}/providers/Microsoft.Resources/deployments"
#define DEP_ROUTES(base)                                                                           \
    {"PUT", base "/{name}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER | ROUTE_F_ANYBODY,      \
     NULL,  dep_put},                                                                              \
        {"GET", base "/{name}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, NULL, dep_get},    \
        {"DELETE",       base "/{name}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,                           \
         ROUTE_F_APIVER, NULL,           dep_delete},                                              \
        {"GET",   base, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, "$top,$skiptoken,$filter", \
         dep_list},                                                                                \
        {"POST",                                                                                   \
         base "/{name}/cancel",                                                                    \
         PGCMK_PLANE_ARM,                                                                          \
         PGCMK_ENV_ARM,                                                                            \
         ROUTE_F_APIVER | ROUTE_F_ANYBODY,                                                         \
         NULL,                                                                                     \
         dep_cancel},                                                                              \
        {"POST",        base "/{name}/validate",          PGCMK_PLANE_ARM,                         \
         PGCMK_ENV_ARM, ROUTE_F_APIVER | ROUTE_F_ANYBODY, NULL,                                    \
         dep_validate},                                                                            \
        {"POST",                                                                                   \
         base "/{name}/whatIf",                                                                    \
         PGCMK_PLANE_ARM,                                                                          \
         PGCMK_ENV_ARM,                                                                            \
         ROUTE_F_APIVER | ROUTE_F_ANYBODY,                                                         \
         NULL,                                                                                     \
         dep_what_if},                                                                             \
        {"POST",        base "/{name}/exportTemplate",    PGCMK_PLANE_ARM,                         \
         PGCMK_ENV_ARM, ROUTE_F_APIVER | ROUTE_F_ANYBODY, NULL,                                    \
         dep_export},                                                                              \
        {"GET",          base "/{name}/operations", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,                \
         ROUTE_F_APIVER, "$top,$skiptoken",         dep_operations},                               \
    {                                                                                              \
        "GET", base "/{name}/operations/{op}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER,     \
            NULL, dep_operations                                                                   \
    }

/* The deployment operations also answer without /providers/Microsoft.Resources (the spec's
 * DeploymentOperations paths, which the SDK and the az CLI use). */
#define OPS_ROUTES(base)                                                                           \
    {"GET",          base "/{name}/operations", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,                    \
     ROUTE_F_APIVER, "$top,$skiptoken",         dep_operations},                                   \
    {                                                                                              \
        "GET", base "/{name}/operations/{op}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER,     \
            NULL, dep_operations                                                                   \
    }

static const struct pgcmk_route dep_routes[] = {
    DEP_ROUTES(RG_DEP), DEP_ROUTES(SUB_DEP),
    OPS_ROUTES("/subscriptions/{sub}/resourcegroups/{rg}/deployments"),
    OPS_ROUTES("/subscriptions/{sub}/deployments")};

void
pgcmk_deploy_init(const struct pgcmk_cfg *cfg)
{
    dep_cfg = cfg;
    pgcmk_router_add(dep_routes, PGCMK_ARRAY_LEN(dep_routes));
}
