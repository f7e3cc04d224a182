/* health.c - Resource Health (azure-api.md section 8).
 *
 * {resourceId}/providers/Microsoft.ResourceHealth/availabilityStatuses[/current] for resources one
 * or two types deep, plus the per-group and per-subscription lists. A resource with no recorded
 * history is Available. History rows live in health_history (newest first); providers record
 * transitions with pgcmk_health_set and forget deleted resources with pgcmk_health_forget. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/monitor.h"
#include "pgcmk/wellknown.h"

#include "monitor/internal.h"

#define HEALTH_NS         "Microsoft.ResourceHealth"
#define HEALTH_TYPE       "Microsoft.ResourceHealth/AvailabilityStatuses"
#define AVAILABLE_SUMMARY "There aren't any known Azure platform problems affecting this resource."

/* Newest last (the error text lists them newest first). */
static const char *const health_versions[] = {"2015-01-01", "2017-07-01", "2018-07-01",
                                              "2020-05-01", "2022-10-01", NULL};

/* One row of health_history (strings owned). */
struct health_row {
    int64_t at;
    char state[16];
    char *title, *summary, *reason_type;
};

struct health_set_ctx {
    const char *resource_id, *state, *title, *summary, *reason_type;
};

static int health_state_ok(const char *state);
static void health_row_release(struct health_row *h);
static int health_read_row(sqlite3_stmt *st, int col, struct health_row *h);
static int health_current(struct pgcmk_db *db, const char *id, struct health_row *h,
                          struct pgcmk_err *err);
static int health_set_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err);
static int health_forget_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err);
static json_t *health_actions(const struct health_row *h);
static json_t *health_to_json(const char *resource_id, const char *name, const char *location,
                              const struct health_row *h, int expand);
static int health_expand(const struct pgcmk_req *rq);

/* ---- small helpers ----------------------------------------------------------------------- */

static char *
health_col_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    return pgcmk_xstrdup(t ? (const char *)t : "");
}

/* 1 when $expand names recommendedactions (a comma list, any case). */
static int
health_expand(const struct pgcmk_req *rq)
{
    const char *e = pgcmk_req_query(rq, "$expand");

    for (const char *p = e; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);

        while (n && *p == ' ')
            p++, n--;
        while (n && p[n - 1] == ' ')
            n--;
        if (n == 18 && strncasecmp(p, "recommendedactions", n) == 0)
            return 1;
        p = comma ? comma + 1 : p + strlen(p);
    }
    return 0;
}

/* ---- Resource Health: the store -------------------------------------------------------- */

static int
health_state_ok(const char *state)
{
    static const char *const states[] = {PGCMK_HEALTH_AVAILABLE, PGCMK_HEALTH_UNAVAILABLE,
                                         PGCMK_HEALTH_DEGRADED, PGCMK_HEALTH_UNKNOWN};

    for (size_t i = 0; state && i < PGCMK_ARRAY_LEN(states); i++)
        if (strcmp(state, states[i]) == 0)
            return 1;
    return 0;
}

static void
health_row_release(struct health_row *h)
{
    free(h->title);
    free(h->summary);
    free(h->reason_type);
    memset(h, 0, sizeof(*h));
}

/* Reads at, state, title, summary, reason_type from column `col` on. */
static int
health_read_row(sqlite3_stmt *st, int col, struct health_row *h)
{
    const unsigned char *state = sqlite3_column_text(st, col + 1);

    memset(h, 0, sizeof(*h));
    h->at = sqlite3_column_int64(st, col);
    snprintf(h->state, sizeof(h->state), "%s", state ? (const char *)state : "Unknown");
    h->title = health_col_dup(st, col + 2);
    h->summary = health_col_dup(st, col + 3);
    h->reason_type = health_col_dup(st, col + 4);
    return 0;
}

/* 1 with *h filled, 0 when the resource has no history, -1 with err. */
static int
health_current(struct pgcmk_db *db, const char *id, struct health_row *h, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HEALTH_CURRENT);
    int rc;

    memset(h, 0, sizeof(*h));
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        health_read_row(st, 0, h);
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = pgcmk_db_fail(db, rc, "read resource health", err);
    }
    pgcmk_db_done(st);
    return rc;
}

static int
health_set_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    const struct health_set_ctx *c = ctx;
    struct health_row cur;
    int64_t at = pgcmk_clock_now();
    sqlite3_stmt *st;
    int rc = health_current(db, c->resource_id, &cur, err);

    if (rc < 0)
        return -1;
    if (rc == 0) { /* no history: the resource counts as Available */
        if (strcmp(c->state, PGCMK_HEALTH_AVAILABLE) == 0 &&
            strcmp(c->title, PGCMK_HEALTH_AVAILABLE) == 0)
            return 0;
    } else {
        int same = strcmp(cur.state, c->state) == 0 && strcmp(cur.title, c->title) == 0;

        if (at <= cur.at)
            at = cur.at + 1; /* strictly newer, so "current" is never ambiguous */
        health_row_release(&cur);
        if (same)
            return 0;
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_HEALTH_INSERT);
    sqlite3_bind_text(st, 1, c->resource_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at);
    sqlite3_bind_text(st, 3, c->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, c->title, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, c->summary, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, c->reason_type, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "record resource health", err);
}

int
pgcmk_health_set(struct pgcmk_db *db, const char *resource_id, const char *state, const char *title,
                 const char *summary, const char *reason_type, struct pgcmk_err *err)
{
    struct health_set_ctx c;

    if (resource_id == NULL || !health_state_ok(state))
        return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "availabilityState",
                             "The availability state '%.32s' is not one of Available, "
                             "Unavailable, Degraded, Unknown.",
                             state ? state : "(null)");
    c.resource_id = resource_id;
    c.state = state;
    c.title = title && *title ? title : state;
    c.summary = summary                                      ? summary
                : strcmp(state, PGCMK_HEALTH_AVAILABLE) == 0 ? AVAILABLE_SUMMARY
                                                             : "";
    c.reason_type = reason_type ? reason_type : "";
    /* Inside the caller's transaction pgcmk_db_tx only runs the function. */
    return pgcmk_db_tx(db ? db : pgcmk_db(), health_set_tx, &c, err);
}

static int
health_forget_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HEALTH_FORGET);
    int rc;

    sqlite3_bind_text(st, 1, ctx, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "forget resource health", err);
}

int
pgcmk_health_forget(struct pgcmk_db *db, const char *resource_id, struct pgcmk_err *err)
{
    if (resource_id == NULL)
        return 0;
    return pgcmk_db_tx(db ? db : pgcmk_db(), health_forget_tx, (void *)resource_id, err);
}

/* ---- Resource Health: the representation ----------------------------------------------- */

static json_t *
health_action(const char *action, const char *url, const char *url_text)
{
    return json_pack("{s:s, s:s, s:s}", "action", action, "actionUrl", url, "actionUrlText",
                     url_text);
}

/* 1 when an unavailable status is about the customer-managed key. */
static int
health_is_cmk(const struct health_row *h)
{
    return strcasecmp(h->title, "Inaccessible") == 0 || strstr(h->summary, "key") != NULL ||
           strstr(h->summary, "Key Vault") != NULL;
}

static json_t *
health_actions(const struct health_row *h)
{
    json_t *a = json_array();

    if (strcmp(h->state, PGCMK_HEALTH_AVAILABLE) == 0) {
        /* nothing to do */
    } else if (strcmp(h->state, PGCMK_HEALTH_UNKNOWN) != 0 && health_is_cmk(h)) {
        json_array_append_new(
            a, health_action("Restore access to the customer-managed key: make sure the key and "
                             "its current version are enabled and not expired in Azure Key "
                             "Vault, and recover the key or the vault if it was deleted",
                             "<#ResourceBlade>", "Azure Key Vault"));
        json_array_append_new(
            a, health_action("Grant the server's managed identity the get, wrapKey and "
                             "unwrapKey key permissions in the vault's access policies, and "
                             "make sure the identity is still assigned to the server",
                             "<#ResourceBlade>", "access policies"));
        json_array_append_new(
            a, health_action("After key access is restored, revalidate the data encryption key "
                             "so that the server becomes available again",
                             "https://learn.microsoft.com/azure/postgresql/flexible-server/"
                             "concepts-data-encryption",
                             "data encryption"));
    } else {
        json_array_append_new(
            a, health_action("To check the resource's settings and recent changes, open the "
                             "resource blade",
                             "<#ResourceBlade>", "resource blade"));
    }
    json_array_append_new(
        a, health_action("If you are experiencing problems you believe are caused by Azure, "
                         "contact support",
                         "<#SupportCase>", "contact support"));
    return a;
}

static json_t *
health_to_json(const char *resource_id, const char *name, const char *location,
               const struct health_row *h, int expand)
{
    char occured[PGCMK_TIME_LEN], reported[PGCMK_TIME_LEN];
    char *id =
        pgcmk_xasprintf("%s/providers/" HEALTH_NS "/availabilityStatuses/%s", resource_id, name);
    int available = strcmp(h->state, PGCMK_HEALTH_AVAILABLE) == 0;
    json_t *props, *out;

    pgcmk_time_format(h->at, occured);
    pgcmk_time_format(pgcmk_clock_now(), reported);
    props = json_pack("{s:s, s:s, s:s, s:s, s:s}", "availabilityState", h->state, "title", h->title,
                      "summary", h->summary, "occuredTime", occured, "reportedTime", reported);
    if (h->reason_type && *h->reason_type) {
        int customer =
            strstr(h->reason_type, "Customer") != NULL || strstr(h->reason_type, "User") != NULL;

        json_object_set_new(props, "reasonType", json_string(h->reason_type));
        json_object_set_new(props, "context",
                            json_string(customer ? "Customer Initiated" : "Platform Initiated"));
        json_object_set_new(props, "category",
                            json_string(strcasecmp(h->reason_type, "Planned") == 0 ? "Planned"
                                        : customer ? "Not Applicable"
                                                   : "Unplanned"));
    }
    if (!available) {
        json_object_set_new(props, "reasonChronicity", json_string("Persistent"));
        json_object_set_new(props, "detailedStatus", json_string(h->summary));
        json_object_set_new(props, "rootCauseAttributionTime", json_string(occured));
    }
    if (expand)
        json_object_set_new(props, "recommendedActions", health_actions(h));
    out = json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", id, "name", name, "type", HEALTH_TYPE,
                    "location", location && *location ? location : PGCMK_DEFAULT_LOCATION,
                    "properties", props);
    free(id);
    return out;
}

/* The default status of a resource without history: Available since it was created. */
static void
health_default(const json_t *res, struct health_row *h)
{
    const char *created =
        json_string_value(json_object_get(json_object_get(res, "systemData"), "createdAt"));

    memset(h, 0, sizeof(*h));
    snprintf(h->state, sizeof(h->state), "%s", PGCMK_HEALTH_AVAILABLE);
    h->title = pgcmk_xstrdup(PGCMK_HEALTH_AVAILABLE);
    h->summary = pgcmk_xstrdup(AVAILABLE_SUMMARY);
    h->reason_type = pgcmk_xstrdup("");
    if (created == NULL || pgcmk_time_parse(created, &h->at))
        h->at = pgcmk_clock_now();
}

/* The resource a health route names: checks sub, api-version and existence. *res new. */
static int
health_resource(struct pgcmk_req *rq, json_t **res, struct pgcmk_err *err)
{
    const char *sub = pgcmk_req_param(rq, "sub"), *t2 = pgcmk_req_param(rq, "type2");
    char *id;
    int rc;

    *res = NULL;
    if (pgcmk_arm_check_sub(sub, err) ||
        pgcmk_arm_check_version(rq, HEALTH_NS "/availabilityStatuses", health_versions, err))
        return -1;
    if (t2)
        id = pgcmk_xasprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s/%s/%s/%s", sub,
                             pgcmk_req_param(rq, "rg"), pgcmk_req_param(rq, "ns"),
                             pgcmk_req_param(rq, "type"), pgcmk_req_param(rq, "name"), t2,
                             pgcmk_req_param(rq, "name2"));
    else
        id = pgcmk_xasprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s/%s", sub,
                             pgcmk_req_param(rq, "rg"), pgcmk_req_param(rq, "ns"),
                             pgcmk_req_param(rq, "type"), pgcmk_req_param(rq, "name"));
    rc = pgcmk_arm_resource_get(pgcmk_db(), id, res, err);
    if (rc == 0)
        rc = pgcmk_err_set(err, PGCMK_E_RESOURCE_NOT_FOUND, NULL,
                           "The Resource '%.64s/%.64s%s%.64s/%.128s' under resource group '%.96s' "
                           "was not found. For more details please go to "
                           "https://aka.ms/ARMResourceNotFoundFix",
                           pgcmk_req_param(rq, "ns"), pgcmk_req_param(rq, "type"), t2 ? "/" : "",
                           t2 ? t2 : "",
                           t2 ? pgcmk_req_param(rq, "name2") : pgcmk_req_param(rq, "name"),
                           pgcmk_req_param(rq, "rg"));
    free(id);
    return rc < 0 ? -1 : 0;
}

/* GET {resourceId}/providers/Microsoft.ResourceHealth/availabilityStatuses/current */
static int
health_get_current(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    json_t *res;
    struct health_row h;
    const char *rid;
    int rc;

    if (health_resource(rq, &res, err))
        return -1;
    rid = json_string_value(json_object_get(res, "id"));
    rc = health_current(pgcmk_db(), rid, &h, err);
    if (rc == 0)
        health_default(res, &h);
    if (rc >= 0) {
        pgcmk_resp_json(rs, 200,
                        health_to_json(rid, "current",
                                       json_string_value(json_object_get(res, "location")), &h,
                                       health_expand(rq)));
        health_row_release(&h);
    }
    json_decref(res);
    return rc < 0 ? -1 : 0;
}

/* GET {resourceId}/providers/Microsoft.ResourceHealth/availabilityStatuses: newest first; the
 * newest is "current", older ones are named by the .NET ticks of their time. */
struct health_rows {
    const char *rid, *loc; /* the resource, for its history */
    int expand;
    json_t *items;
};

/* pgcmk_db_each row: one status of a resource's history, newest first ("current"). */
static int
health_history_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct health_rows *hr = arg;
    struct health_row h;
    char name[32];

    PGCMK_UNUSED(err);
    health_read_row(st, 0, &h);
    if (json_array_size(hr->items) == 0)
        snprintf(name, sizeof(name), "current");
    else
        snprintf(name, sizeof(name), "%lld", (long long)pgcmk_monitor_ticks(h.at));
    json_array_append_new(hr->items, health_to_json(hr->rid, name, hr->loc, &h, hr->expand));
    health_row_release(&h);
    return 0;
}

static int
health_get_history(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    json_t *res, *items = json_array();
    struct pgcmk_db *db = pgcmk_db();
    const char *rid, *loc;
    sqlite3_stmt *st;
    int rc, expand = health_expand(rq);

    if (health_resource(rq, &res, err)) {
        json_decref(items);
        return -1;
    }
    rid = json_string_value(json_object_get(res, "id"));
    loc = json_string_value(json_object_get(res, "location"));
    st = pgcmk_db_stmt(db, PGCMK_STMT_HEALTH_HISTORY);
    sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
    {
        struct health_rows hr = {rid, loc, expand, items};

        rc = pgcmk_db_each(db, st, health_history_row, &hr, "read resource health", err);
    }
    if (rc < 0) {
        json_decref(res);
        json_decref(items);
        return -1;
    }
    if (json_array_size(items) == 0) {
        struct health_row h;

        health_default(res, &h);
        json_array_append_new(items, health_to_json(rid, "current", loc, &h, expand));
        health_row_release(&h);
    }
    json_decref(res);
    return pgcmk_arm_list(rq, rs, items, err);
}

/* pgcmk_db_each row: the current status of one resource (id, location, then the status). */
static int
health_latest_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct health_rows *hr = arg;
    struct health_row h;
    const unsigned char *id = sqlite3_column_text(st, 0), *loc = sqlite3_column_text(st, 1);

    PGCMK_UNUSED(err);
    health_read_row(st, 2, &h);
    json_array_append_new(
        hr->items, health_to_json((const char *)id, "current", (const char *)loc, &h, hr->expand));
    health_row_release(&h);
    return 0;
}

/* The current status of every existing resource under `scope` that has a history. */
static int
health_list_under(struct pgcmk_req *rq, struct pgcmk_resp *rs, const char *scope,
                  struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HEALTH_LATEST_UNDER);
    json_t *items = json_array();
    int rc, expand = health_expand(rq);

    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    {
        struct health_rows hr = {NULL, NULL, expand, items};

        rc = pgcmk_db_each(db, st, health_latest_row, &hr, "list resource health", err);
    }
    if (rc < 0) {
        json_decref(items);
        return -1;
    }
    return pgcmk_arm_list(rq, rs, items, err);
}

/* GET /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ResourceHealth/... */
static int
health_list_rg(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *sub = pgcmk_req_param(rq, "sub"), *rg = pgcmk_req_param(rq, "rg");
    char *loc, *scope;
    int rc;

    if (pgcmk_arm_check_sub(sub, err) ||
        pgcmk_arm_check_version(rq, HEALTH_NS "/availabilityStatuses", health_versions, err))
        return -1;
    loc = pgcmk_arm_rg_location(sub, rg);
    if (loc == NULL)
        return pgcmk_err_set(err, PGCMK_E_RG_NOT_FOUND, "resourceGroupName",
                             "Resource group '%.96s' could not be found.", rg);
    free(loc);
    scope = pgcmk_xasprintf("/subscriptions/%s/resourceGroups/%s", sub, rg);
    rc = health_list_under(rq, rs, scope, err);
    free(scope);
    return rc;
}

/* GET /subscriptions/{s}/providers/Microsoft.ResourceHealth/availabilityStatuses */
static int
health_list_sub(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *sub = pgcmk_req_param(rq, "sub");
    char *scope;
    int rc;

    if (pgcmk_arm_check_sub(sub, err) ||
        pgcmk_arm_check_version(rq, HEALTH_NS "/availabilityStatuses", health_versions, err))
        return -1;
    scope = pgcmk_xasprintf("/subscriptions/%s", sub);
    rc = health_list_under(rq, rs, scope, err);
    free(scope);
    return rc;
}

/* ---- routes -------------------------------------------------------------------------------- */

#define RES1 "/subscriptions/{sub}/resourcegroups/{rg}/providers/{ns}/{type}/{name}"
#define RES2 RES1 "/{type2}/{name2}"
#define RH   "/providers/Microsoft.ResourceHealth/availabilityStatuses"
#define RH_Q "$filter,$expand,$top,$skiptoken"

static const struct pgcmk_route health_routes[] = {
    {"GET", RES1 RH "/current", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, "$filter,$expand",
     health_get_current},
    {"GET", RES2 RH "/current", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, "$filter,$expand",
     health_get_current},
    {"GET", RES1 RH, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, RH_Q, health_get_history},
    {"GET", RES2 RH, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, RH_Q, health_get_history},
    {"GET", "/subscriptions/{sub}/resourcegroups/{rg}" RH, PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
     ROUTE_F_APIVER, RH_Q, health_list_rg},
    {"GET", "/subscriptions/{sub}" RH, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, RH_Q,
     health_list_sub},
};

void
monitor_health_init(void)
{
    pgcmk_router_add(health_routes, PGCMK_ARRAY_LEN(health_routes));
}
