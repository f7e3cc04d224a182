/* monitor.c - Resource Health and the Activity Log (azure-api.md section 8).
 *
 * Resource Health: {resourceId}/providers/Microsoft.ResourceHealth/availabilityStatuses[/current]
 * for resources one or two types deep, plus the per-group and per-subscription lists. A resource
 * with no recorded history is Available. History rows live in health_history (newest first).
 *
 * Activity Log: /subscriptions/{s}/providers/Microsoft.Insights/eventtypes/management/values with
 * Azure's restricted $filter (a start time is required) and $select. Each entry is rendered to
 * its EventData JSON once, when it is written, and stored in activity_log; queries page in SQL.
 * ARM writes are recorded by pgcmk_monitor_record_request (a BeginRequest and an EndRequest
 * entry sharing an operationId), which the request pipeline calls after the answer is built. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/log.h"
#include "pgcmk/monitor.h"
#include "pgcmk/work.h"
#include "pgcmk/wellknown.h"

#define HEALTH_NS         "Microsoft.ResourceHealth"
#define HEALTH_TYPE       "Microsoft.ResourceHealth/AvailabilityStatuses"
#define AVAILABLE_SUMMARY "There aren't any known Azure platform problems affecting this resource."
#define TICKS_AT_EPOCH    INT64_C(621355968000000000)
#define MONITOR_MAX_SEGS  40

/* Newest last (the error text lists them newest first). */
static const char *const health_versions[] = {"2015-01-01", "2017-07-01", "2018-07-01",
                                              "2020-05-01", "2022-10-01", NULL};
static const char *const activity_versions[] = {"2015-04-01", "2017-03-01-preview", NULL};

/* One row of health_history (strings owned). */
struct health_row {
    int64_t at;
    char state[16];
    char *title, *summary, *reason_type;
};

/* What a resource (or group) path names, for the Activity Log. */
struct monitor_path {
    char id[1024];   /* canonical id, without a trailing action */
    char sub[64];    /* lower case */
    char rg[96];     /* "" at subscription scope */
    char ns[128];    /* provider namespace */
    char type[384];  /* "Microsoft.KeyVault/vaults" */
    char action[64]; /* the trailing segment of a POST, else "" */
};

/* What pgcmk_activity_add does not ask for. */
struct activity_extra {
    const char *event_name; /* NULL: BeginRequest for Started, else EndRequest */
    const char *operation_id;
    const char *client_request_id;
    const char *request_id;
    int64_t at;
};

struct health_set_ctx {
    const char *resource_id, *state, *title, *summary, *reason_type;
};

struct activity_ctx {
    const struct pgcmk_activity *a;
    const struct activity_extra *x;
    int n; /* 1 or 2 entries (a[0], a[1]) */
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
static int monitor_expand(const struct pgcmk_req *rq);
static int monitor_path_parse(const char *path, struct monitor_path *m);
static const char *monitor_status_name(int status);
static json_t *activity_event(const struct pgcmk_activity *a, const struct activity_extra *x,
                              const struct monitor_path *m, const char *event_id);
static int activity_insert(struct pgcmk_db *db, const struct pgcmk_activity *a,
                           const struct activity_extra *x, struct pgcmk_err *err);
static int activity_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err);

/* ---- small helpers ----------------------------------------------------------------------- */

int64_t
pgcmk_monitor_ticks(int64_t ms)
{
    return TICKS_AT_EPOCH + ms * 10000;
}

static char *
monitor_col_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    return pgcmk_xstrdup(t ? (const char *)t : "");
}

/* 1 when $expand names recommendedactions (a comma list, any case). */
static int
monitor_expand(const struct pgcmk_req *rq)
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

/* .NET's HttpStatusCode names, as the Activity Log prints them. */
static const char *
monitor_status_name(int status)
{
    return pgcmk_err_status_name(status);
}

/* Splits a path into segments (in buf). -1 when there are too many. */
static int
monitor_split(const char *path, char *buf, size_t cap, char **segs)
{
    char *save = NULL;
    int n = 0;

    if (strlen(path) >= cap)
        return -1;
    snprintf(buf, cap, "%s", path);
    for (char *s = strtok_r(buf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (n == MONITOR_MAX_SEGS)
            return -1;
        segs[n++] = s;
    }
    return n;
}

/* Appends "/a/b" pieces to a bounded buffer; -1 when it does not fit. */
static int
monitor_cat(char *out, size_t cap, const char *a, const char *b)
{
    size_t len = strlen(out);
    int n = snprintf(out + len, cap - len, "/%s%s%s", a, b ? "/" : "", b ? b : "");

    return n < 0 || (size_t)n >= cap - len ? -1 : 0;
}

/* Parses /subscriptions/{s}[/resourceGroups/{rg}][/providers/{ns}[/{type}/{name}]...][/{action}]
 * (extension scopes {id}/providers/{ns}/... included). 0, or -1 when it is not such a path. */
static int
monitor_path_parse(const char *path, struct monitor_path *m)
{
    char buf[2048], *segs[MONITOR_MAX_SEGS];
    int n = monitor_split(path, buf, sizeof(buf), segs), i = 2, pairs = 0;

    memset(m, 0, sizeof(*m));
    if (n < 2 || strcasecmp(segs[0], "subscriptions") != 0 || strlen(segs[1]) >= sizeof(m->sub))
        return -1;
    pgcmk_lower(m->sub, sizeof(m->sub), segs[1]);
    snprintf(m->id, sizeof(m->id), "/subscriptions/%s", segs[1]);
    snprintf(m->ns, sizeof(m->ns), "Microsoft.Resources");
    snprintf(m->type, sizeof(m->type), "Microsoft.Resources/subscriptions");
    if (i < n && strcasecmp(segs[i], "resourceGroups") == 0) {
        if (i + 1 >= n || strlen(segs[i + 1]) >= sizeof(m->rg))
            return -1; /* the collection, or a name too long */
        snprintf(m->rg, sizeof(m->rg), "%s", segs[i + 1]);
        if (monitor_cat(m->id, sizeof(m->id), "resourceGroups", segs[i + 1]))
            return -1;
        snprintf(m->type, sizeof(m->type), "Microsoft.Resources/subscriptions/resourceGroups");
        i += 2;
    }
    if (i < n && strcasecmp(segs[i], "providers") != 0) {
        if (i + 1 != n)
            return -1; /* operationresults/{id} and the like */
        snprintf(m->action, sizeof(m->action), "%s", segs[i]);
        return strlen(segs[i]) < sizeof(m->action) ? 0 : -1;
    }
    while (i < n) {
        if (strcasecmp(segs[i], "providers") == 0 && i + 1 < n) {
            if (strlen(segs[i + 1]) >= sizeof(m->ns) ||
                monitor_cat(m->id, sizeof(m->id), "providers", segs[i + 1]))
                return -1;
            snprintf(m->ns, sizeof(m->ns), "%s", segs[i + 1]);
            snprintf(m->type, sizeof(m->type), "%s", segs[i + 1]);
            pairs = 0;
            i += 2;
            continue;
        }
        if (i + 1 == n) { /* a trailing action (or a collection: the caller decides) */
            if (strlen(segs[i]) >= sizeof(m->action))
                return -1;
            snprintf(m->action, sizeof(m->action), "%s", segs[i]);
            break;
        }
        if (monitor_cat(m->id, sizeof(m->id), segs[i], segs[i + 1]) ||
            monitor_cat(m->type, sizeof(m->type), segs[i], NULL))
            return -1;
        pairs++;
        i += 2;
    }
    /* The registered type's spelling ("Microsoft.KeyVault/vaults"), when there is one. */
    if (pairs > 0) {
        const char *slash = strchr(m->type, '/');
        const struct pgcmk_arm_type *t = slash ? pgcmk_arm_find_type(m->ns, slash + 1) : NULL;

        if (t) {
            snprintf(m->type, sizeof(m->type), "%s/%s", t->ns, t->type);
            snprintf(m->ns, sizeof(m->ns), "%s", t->ns);
        }
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
    h->title = monitor_col_dup(st, col + 2);
    h->summary = monitor_col_dup(st, col + 3);
    h->reason_type = monitor_col_dup(st, col + 4);
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
                                       monitor_expand(rq)));
        health_row_release(&h);
    }
    json_decref(res);
    return rc < 0 ? -1 : 0;
}

/* GET {resourceId}/providers/Microsoft.ResourceHealth/availabilityStatuses: newest first; the
 * newest is "current", older ones are named by the .NET ticks of their time. */
static int
health_get_history(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    json_t *res, *items = json_array();
    struct pgcmk_db *db = pgcmk_db();
    const char *rid, *loc;
    sqlite3_stmt *st;
    int rc, expand = monitor_expand(rq);

    if (health_resource(rq, &res, err)) {
        json_decref(items);
        return -1;
    }
    rid = json_string_value(json_object_get(res, "id"));
    loc = json_string_value(json_object_get(res, "location"));
    st = pgcmk_db_stmt(db, PGCMK_STMT_HEALTH_HISTORY);
    sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct health_row h;
        char name[32];

        health_read_row(st, 0, &h);
        if (json_array_size(items) == 0)
            snprintf(name, sizeof(name), "current");
        else
            snprintf(name, sizeof(name), "%lld", (long long)pgcmk_monitor_ticks(h.at));
        json_array_append_new(items, health_to_json(rid, name, loc, &h, expand));
        health_row_release(&h);
    }
    pgcmk_db_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(res);
        json_decref(items);
        return pgcmk_db_fail(db, rc, "read resource health", err);
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

/* The current status of every existing resource under `scope` that has a history. */
static int
health_list_under(struct pgcmk_req *rq, struct pgcmk_resp *rs, const char *scope,
                  struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HEALTH_LATEST_UNDER);
    json_t *items = json_array();
    int rc, expand = monitor_expand(rq);

    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct health_row h;
        const unsigned char *id = sqlite3_column_text(st, 0), *loc = sqlite3_column_text(st, 1);

        health_read_row(st, 2, &h);
        json_array_append_new(
            items, health_to_json((const char *)id, "current", (const char *)loc, &h, expand));
        health_row_release(&h);
    }
    pgcmk_db_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(items);
        return pgcmk_db_fail(db, rc, "list resource health", err);
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

/* ---- Activity Log: writing --------------------------------------------------------------- */

static json_t *
monitor_localized(const char *value, const char *localized)
{
    return json_pack("{s:s, s:s}", "value", value ? value : "", "localizedValue",
                     localized ? localized
                     : value   ? value
                               : "");
}

static json_t *
activity_event(const struct pgcmk_activity *a, const struct activity_extra *x,
               const struct monitor_path *m, const char *event_id)
{
    char ts[PGCMK_TIME_LEN], sub_local[96] = "";
    const char *status = a->status ? a->status : "Succeeded";
    const char *event_name = x->event_name                    ? x->event_name
                             : strcmp(status, "Started") == 0 ? "BeginRequest"
                                                              : "EndRequest";
    const char *code = a->http_status ? monitor_status_name(a->http_status) : "";
    char *id = pgcmk_xasprintf("%s/events/%s/ticks/%lld", m->id, event_id,
                               (long long)pgcmk_monitor_ticks(x->at));
    json_t *ev, *props, *claims = json_object();

    pgcmk_time_format(x->at, ts);
    if (a->http_status)
        snprintf(sub_local, sizeof(sub_local), "%s (HTTP Status Code: %d)", code, a->http_status);
    if (a->caller && *a->caller)
        json_object_set_new(claims, "http://schemas.microsoft.com/identity/claims/objectidentifier",
                            json_string(a->caller));
    props = json_pack("{s:s, s:s, s:s, s:s}", "eventCategory", "Administrative", "entity", m->id,
                      "message", a->operation, "hierarchy", PGCMK_TENANT_ID);
    if (a->http_status)
        json_object_set_new(props, "statusCode", json_string(code));
    if (x->request_id && *x->request_id)
        json_object_set_new(props, "serviceRequestId", json_string(x->request_id));
    ev = json_pack("{s:{s:s, s:s}, s:s, s:s, s:o, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:o}",
                   "authorization", "action", a->operation, "scope", m->id, "caller",
                   a->caller ? a->caller : "", "channels", "Operation", "claims", claims,
                   "correlationId", a->correlation_id ? a->correlation_id : "", "description",
                   a->description ? a->description : "", "eventDataId", event_id, "eventName",
                   monitor_localized(event_name, strcmp(event_name, "BeginRequest") == 0
                                                     ? "Begin request"
                                                     : "End request"),
                   "category", monitor_localized("Administrative", NULL), "id", id, "level",
                   a->level ? a->level : "Informational", "operationId",
                   x->operation_id ? x->operation_id : event_id, "operationName",
                   monitor_localized(a->operation, NULL));
    if (a->method && *a->method)
        json_object_set_new(ev, "httpRequest",
                            json_pack("{s:s, s:s, s:s}", "clientRequestId",
                                      x->client_request_id ? x->client_request_id : "",
                                      "clientIpAddress", "127.0.0.1", "method", a->method));
    json_object_set_new(ev, "resourceGroupName", json_string(m->rg));
    json_object_set_new(ev, "resourceProviderName", monitor_localized(m->ns, NULL));
    json_object_set_new(ev, "resourceType", monitor_localized(m->type, NULL));
    json_object_set_new(ev, "resourceId", json_string(m->id));
    json_object_set_new(ev, "status", monitor_localized(status, NULL));
    json_object_set_new(ev, "subStatus", monitor_localized(code, sub_local));
    json_object_set_new(ev, "eventTimestamp", json_string(ts));
    json_object_set_new(ev, "submissionTimestamp", json_string(ts));
    json_object_set_new(ev, "subscriptionId", json_string(m->sub));
    json_object_set_new(ev, "tenantId", json_string(PGCMK_TENANT_ID));
    json_object_set_new(ev, "properties", props);
    free(id);
    return ev;
}

/* An entry rendered to its stored form (outside any transaction). */
struct rendered {
    char event_id[37];
    struct monitor_path m;
    char *text;
    int64_t at;
};

static int
activity_render(const struct pgcmk_activity *a, const struct activity_extra *x, struct rendered *r,
                struct pgcmk_err *err)
{
    json_t *ev;

    r->text = NULL;
    if (a->resource_id == NULL || a->operation == NULL ||
        monitor_path_parse(a->resource_id, &r->m) != 0)
        return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "resourceId",
                             "The activity's resource id '%.256s' is not a resource id.",
                             a->resource_id ? a->resource_id : "(null)");
    if (r->m.action[0]) /* a collection path given as a resource id: keep it whole */
        monitor_cat(r->m.id, sizeof(r->m.id), r->m.action, NULL);
    pgcmk_uuid(r->event_id);
    ev = activity_event(a, x, &r->m, r->event_id);
    r->text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    r->at = x->at;
    if (r->text == NULL)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "an activity entry is not valid JSON");
    return 0;
}

static int
activity_store(struct pgcmk_db *db, const struct rendered *r, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_ACTIVITY_INSERT);
    int rc;

    sqlite3_bind_text(st, 1, r->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->m.sub, -1, SQLITE_STATIC);
    if (r->m.rg[0])
        sqlite3_bind_text(st, 3, r->m.rg, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_text(st, 4, r->m.id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, r->at);
    sqlite3_bind_text(st, 6, r->text, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "record an activity", err);
}

static int
activity_insert(struct pgcmk_db *db, const struct pgcmk_activity *a, const struct activity_extra *x,
                struct pgcmk_err *err)
{
    struct rendered *r = pgcmk_xmalloc(sizeof(*r));
    int rc = activity_render(a, x, r, err) || activity_store(db, r, err) ? -1 : 0;

    free(r->text);
    free(r);
    return rc;
}

static int
activity_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    const struct activity_ctx *c = ctx;

    for (int i = 0; i < c->n; i++)
        if (activity_insert(db, &c->a[i], c->x, err))
            return -1;
    return 0;
}

int
pgcmk_activity_add(struct pgcmk_db *db, const struct pgcmk_activity *a, struct pgcmk_err *err)
{
    struct activity_extra x;
    struct activity_ctx c = {a, &x, 1};
    struct pgcmk_activity copy = *a;
    char corr[37];

    memset(&x, 0, sizeof(x));
    x.at = pgcmk_clock_now();
    if (copy.correlation_id == NULL || *copy.correlation_id == '\0') {
        pgcmk_uuid(corr);
        copy.correlation_id = corr;
    }
    c.a = &copy;
    return pgcmk_db_tx(db ? db : pgcmk_db(), activity_tx, &c, err);
}

/* The entries of ARM writes are stored off the request's path, many to a transaction (Azure's
 * Activity Log is itself eventually consistent): a write costs no second commit. Readers of the
 * log flush first, so a client always finds its own writes. */
struct queued {
    struct pgcmk_activity a[2];
    struct activity_extra x;
    char *strings; /* every string of a and x, copied */
    struct rendered r[2];
    int ok[2];
    struct queued *next;
};

static pthread_mutex_t queue_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t flush_mu = PTHREAD_MUTEX_INITIALIZER;
static struct queued *queue_head, **queue_tail = &queue_head;
static int queue_job_pending;

static const char *
qcopy(char **p, const char *s)
{
    char *out = *p;
    size_t n;

    if (!s)
        return NULL;
    n = strlen(s) + 1;
    memcpy(out, s, n);
    *p += n;
    return out;
}

static int
flush_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    for (struct queued *q = ctx; q; q = q->next)
        for (int i = 0; i < 2; i++) {
            struct pgcmk_err one;

            if (q->ok[i] && activity_store(db, &q->r[i], &one))
                LOG_WARN("activity log entry for %.200s not recorded: %s", q->a[0].resource_id,
                         one.message);
        }
    (void)err;
    return 0;
}

/* Stores every queued entry (one transaction). */
static void
monitor_flush(void)
{
    struct queued *batch, *next;
    struct pgcmk_err err;

    pthread_mutex_lock(&flush_mu); /* entries are stored in the order they were queued */
    pthread_mutex_lock(&queue_mu);
    batch = queue_head;
    queue_head = NULL;
    queue_tail = &queue_head;
    queue_job_pending = 0;
    pthread_mutex_unlock(&queue_mu);
    /* JSON is built before the transaction, so the writer lock is held only for the inserts */
    for (struct queued *q = batch; q; q = q->next)
        for (int i = 0; i < 2; i++)
            if (!(q->ok[i] = activity_render(&q->a[i], &q->x, &q->r[i], &err) == 0))
                LOG_WARN("activity log entry for %.200s not recorded: %s", q->a[i].resource_id,
                         err.message);
    if (batch && pgcmk_db_tx(pgcmk_db(), flush_tx, batch, &err))
        LOG_WARN("activity log: %s", err.message);
    pthread_mutex_unlock(&flush_mu);
    for (; batch; batch = next) {
        next = batch->next;
        free(batch->r[0].text);
        free(batch->r[1].text);
        free(batch->strings);
        free(batch);
    }
}

static void
flush_job(void *arg)
{
    (void)arg;
    monitor_flush();
}

static void
monitor_enqueue(const struct activity_ctx *c)
{
    struct queued *q = pgcmk_xcalloc(1, sizeof(*q));
    const char *const src[] = {c->a[0].resource_id,     c->a[0].operation, c->a[0].status,
                               c->a[0].level,           c->a[0].caller,    c->a[0].description,
                               c->a[0].correlation_id,  c->a[0].method,    c->a[1].status,
                               c->a[1].level,           c->x->event_name,  c->x->operation_id,
                               c->x->client_request_id, c->x->request_id};
    size_t n = 0;
    char *p;
    int submit;

    for (size_t i = 0; i < PGCMK_ARRAY_LEN(src); i++)
        n += src[i] ? strlen(src[i]) + 1 : 0;
    p = q->strings = pgcmk_xmalloc(n ? n : 1);
    q->a[0] = c->a[0];
    q->a[1] = c->a[1];
    q->x = *c->x;
    q->a[0].resource_id = qcopy(&p, src[0]);
    q->a[0].operation = qcopy(&p, src[1]);
    q->a[0].status = qcopy(&p, src[2]);
    q->a[0].level = qcopy(&p, src[3]);
    q->a[0].caller = qcopy(&p, src[4]);
    q->a[0].description = qcopy(&p, src[5]);
    q->a[0].correlation_id = qcopy(&p, src[6]);
    q->a[0].method = qcopy(&p, src[7]);
    q->a[1].resource_id = q->a[0].resource_id;
    q->a[1].operation = q->a[0].operation;
    q->a[1].status = qcopy(&p, src[8]);
    q->a[1].level = qcopy(&p, src[9]);
    q->a[1].caller = q->a[0].caller;
    q->a[1].description = q->a[0].description;
    q->a[1].correlation_id = q->a[0].correlation_id;
    q->a[1].method = q->a[0].method;
    q->x.event_name = qcopy(&p, src[10]);
    q->x.operation_id = qcopy(&p, src[11]);
    q->x.client_request_id = qcopy(&p, src[12]);
    q->x.request_id = qcopy(&p, src[13]);
    pthread_mutex_lock(&queue_mu);
    *queue_tail = q;
    queue_tail = &q->next;
    submit = !queue_job_pending;
    queue_job_pending = 1;
    pthread_mutex_unlock(&queue_mu);
    if (submit)
        pgcmk_work_submit(flush_job, NULL);
}

void
pgcmk_monitor_record_request(const struct pgcmk_req *rq, int status)
{
    struct pgcmk_activity a[2];
    struct activity_extra x;
    struct activity_ctx c = {a, &x, 2};
    struct monitor_path m;
    char op[512], op_id[37];
    const char *verb;

    if (rq == NULL || rq->plane != PGCMK_PLANE_ARM || rq->route == NULL || rq->path == NULL ||
        status == 401 || strncasecmp(rq->path, "/subscriptions/", 15) != 0)
        return;
    if (strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "PATCH") == 0)
        verb = "write";
    else if (strcmp(rq->method, "DELETE") == 0)
        verb = "delete";
    else if (strcmp(rq->method, "POST") == 0)
        verb = "action";
    else
        return;
    if (monitor_path_parse(rq->path, &m) != 0)
        return;
    if ((m.action[0] != '\0') != (verb[0] == 'a'))
        return; /* a write on a collection, or a POST on a resource itself */
    if (m.action[0])
        snprintf(op, sizeof(op), "%s/%s/action", m.type, m.action);
    else
        snprintf(op, sizeof(op), "%s/%s", m.type, verb);
    pgcmk_uuid(op_id);
    memset(a, 0, sizeof(a));
    memset(&x, 0, sizeof(x));
    a[0].resource_id = m.id;
    a[0].operation = op;
    a[0].status = "Started";
    a[0].level = "Informational";
    a[0].caller = rq->principal[0] ? rq->principal : NULL;
    a[0].correlation_id = rq->correlation_id;
    a[0].method = rq->method;
    a[1] = a[0];
    a[1].status = status >= 400 ? "Failed" : status == 202 ? "Accepted" : "Succeeded";
    a[1].level = status >= 400 ? "Error" : "Informational";
    a[1].http_status = status;
    x.operation_id = op_id;
    x.client_request_id = rq->client_request_id;
    x.request_id = rq->request_id;
    x.at = pgcmk_clock_now();
    monitor_enqueue(&c);
}

/* ---- Activity Log: $filter and $select ----------------------------------------------------- */

static const char *
filter_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* 1 when p starts with the keyword `kw` followed by a blank or the end. */
static int
filter_keyword(const char *p, const char *kw)
{
    size_t n = strlen(kw);

    return strncasecmp(p, kw, n) == 0 && (p[n] == '\0' || p[n] == ' ' || p[n] == '\t');
}

/* Reads a value: 'quoted' ('' is a quote) or bare up to the next " and " or the end. */
static const char *
filter_value(const char *p, char *out, size_t cap, int *ok)
{
    size_t n = 0;

    *ok = 0;
    if (*p == '\'') {
        for (p++; *p; p++) {
            if (*p == '\'' && p[1] == '\'') {
                p++;
            } else if (*p == '\'') {
                break;
            }
            if (n + 1 >= cap)
                return p;
            out[n++] = *p;
        }
        if (*p != '\'')
            return p;
        p++;
    } else {
        while (*p) {
            if ((*p == ' ' || *p == '\t') && filter_keyword(filter_ws(p), "and"))
                break;
            if (n + 1 >= cap)
                return p;
            out[n++] = *p++;
        }
        while (n && (out[n - 1] == ' ' || out[n - 1] == '\t'))
            n--;
    }
    out[n] = '\0';
    *ok = n > 0;
    return p;
}

#define FILTER_HELP                                                                                \
    "Use: eventTimestamp ge '2024-01-01T00:00:00Z' [and eventTimestamp le "                        \
    "'2024-01-02T00:00:00Z'] [and resourceGroupName eq 'rg' | resourceId eq '/subscriptions/...' " \
    "| correlationId eq '...' | resourceProvider eq 'Microsoft.KeyVault' | caller eq '...' | "     \
    "status eq 'Failed' | levels eq 'Error,Warning']."

static int
filter_fail(struct pgcmk_err *err, const char *what, const char *near)
{
    return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "$filter",
                         "$filter searching parameters invalid: %s%s%.64s%s. " FILTER_HELP, what,
                         near ? " near '" : "", near ? near : "", near ? "'" : "");
}

static int
filter_copy(char *dst, size_t cap, const char *value, const char *field, struct pgcmk_err *err)
{
    if (dst[0])
        return filter_fail(err, "a condition appears twice", field);
    if (strlen(value) >= cap)
        return filter_fail(err, "the value is too long", field);
    snprintf(dst, cap, "%s", value);
    return 0;
}

int
pgcmk_activity_filter_parse(const char *filter, struct pgcmk_activity_filter *out,
                            struct pgcmk_err *err)
{
    const char *p;
    int have_from = 0, have_to = 0;

    memset(out, 0, sizeof(*out));
    out->to_ms = INT64_MAX;
    if (filter == NULL || *filter_ws(filter) == '\0')
        return filter_fail(err,
                           "the $filter query parameter is required and must give a start "
                           "time",
                           NULL);
    p = filter_ws(filter);
    while (*p) {
        char field[32], opname[8], value[1024];
        size_t n = 0;
        int ok;

        while (isalpha((unsigned char)*p) && n + 1 < sizeof(field))
            field[n++] = *p++;
        field[n] = '\0';
        if (n == 0 || isalpha((unsigned char)*p))
            return filter_fail(err, "expected a field name", p);
        p = filter_ws(p);
        for (n = 0; isalpha((unsigned char)*p) && n + 1 < sizeof(opname);)
            opname[n++] = (char)tolower((unsigned char)*p++);
        opname[n] = '\0';
        if (strcmp(opname, "eq") != 0 && strcmp(opname, "ge") != 0 && strcmp(opname, "gt") != 0 &&
            strcmp(opname, "le") != 0 && strcmp(opname, "lt") != 0)
            return filter_fail(err, "expected eq, ge, gt, le or lt after", field);
        p = filter_value(filter_ws(p), value, sizeof(value), &ok);
        if (!ok)
            return filter_fail(err, "a missing, unterminated or too long value for", field);
        if (strcasecmp(field, "eventTimestamp") == 0) {
            int64_t ms;

            if (strcmp(opname, "eq") == 0)
                return filter_fail(err, "eventTimestamp takes ge, gt, le or lt", NULL);
            if (pgcmk_time_parse(value, &ms))
                return filter_fail(err, "the time is not an ISO-8601 date-time", value);
            if (opname[0] == 'g') {
                if (have_from++)
                    return filter_fail(err, "a condition appears twice", field);
                out->from_ms = opname[1] == 't' ? ms + 1 : ms;
            } else {
                if (have_to++)
                    return filter_fail(err, "a condition appears twice", field);
                out->to_ms = opname[1] == 't' ? ms - 1 : ms;
            }
        } else if (strcmp(opname, "eq") != 0) {
            return filter_fail(err, "only eventTimestamp takes ge, gt, le or lt", field);
        } else if (strcasecmp(field, "resourceGroupName") == 0) {
            if (filter_copy(out->rg, sizeof(out->rg), value, field, err))
                return -1;
        } else if (strcasecmp(field, "resourceId") == 0 || strcasecmp(field, "resourceUri") == 0) {
            if (filter_copy(out->resource_id, sizeof(out->resource_id), value, field, err))
                return -1;
        } else if (strcasecmp(field, "correlationId") == 0) {
            if (filter_copy(out->correlation_id, sizeof(out->correlation_id), value, field, err))
                return -1;
        } else if (strcasecmp(field, "resourceProvider") == 0) {
            if (filter_copy(out->provider, sizeof(out->provider), value, field, err))
                return -1;
        } else if (strcasecmp(field, "caller") == 0) {
            if (filter_copy(out->caller, sizeof(out->caller), value, field, err))
                return -1;
        } else if (strcasecmp(field, "status") == 0) {
            if (filter_copy(out->status, sizeof(out->status), value, field, err))
                return -1;
        } else if (strcasecmp(field, "levels") == 0) {
            size_t k = 1;

            if (out->levels[0])
                return filter_fail(err, "a condition appears twice", field);
            out->levels[0] = ',';
            for (const char *v = value; *v && k + 2 < sizeof(out->levels); v++)
                if (*v != ' ')
                    out->levels[k++] = (char)tolower((unsigned char)*v);
            out->levels[k++] = ',';
            out->levels[k] = '\0';
        } else if (strcasecmp(field, "eventChannels") == 0) {
            /* accepted and ignored: every entry is an Operation entry */
        } else {
            return filter_fail(err, "unsupported field", field);
        }
        p = filter_ws(p);
        if (*p == '\0')
            break;
        if (!filter_keyword(p, "and"))
            return filter_fail(err, "conditions must be joined with 'and'", p);
        p = filter_ws(p + 3);
        if (*p == '\0')
            return filter_fail(err, "a condition is missing after 'and'", NULL);
    }
    if (!have_from)
        return filter_fail(err, "a start time (eventTimestamp ge '...') is required", NULL);
    if (out->from_ms > out->to_ms)
        return filter_fail(err, "the start time is after the end time", NULL);
    return 0;
}

static const char *const activity_fields[] = {"authorization",
                                              "caller",
                                              "channels",
                                              "claims",
                                              "correlationId",
                                              "description",
                                              "eventDataId",
                                              "eventName",
                                              "category",
                                              "httpRequest",
                                              "id",
                                              "level",
                                              "operationId",
                                              "operationName",
                                              "properties",
                                              "resourceGroupName",
                                              "resourceId",
                                              "resourceProviderName",
                                              "resourceType",
                                              "status",
                                              "subStatus",
                                              "eventTimestamp",
                                              "submissionTimestamp",
                                              "subscriptionId",
                                              "tenantId"};

/* $select: an array of canonical field names (new), NULL for all, or -1 with err. */
static int
activity_select(const char *sel, json_t **fields, struct pgcmk_err *err)
{
    *fields = NULL;
    if (sel == NULL || *filter_ws(sel) == '\0')
        return 0;
    *fields = json_array();
    for (const char *p = sel; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        int found = 0;

        while (n && (*p == ' ' || *p == '\t'))
            p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        for (size_t i = 0; n && i < PGCMK_ARRAY_LEN(activity_fields); i++) {
            if (strlen(activity_fields[i]) == n && strncasecmp(p, activity_fields[i], n) == 0) {
                json_array_append_new(*fields, json_string(activity_fields[i]));
                found = 1;
            }
        }
        if (!found && n) {
            json_decref(*fields);
            *fields = NULL;
            return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "$select",
                                 "The $select field '%.*s' is not a field of an activity log "
                                 "event.",
                                 (int)(n > 64 ? 64 : n), p);
        }
        p = comma ? comma + 1 : p + strlen(p);
    }
    return 0;
}

/* ---- Activity Log: the list ---------------------------------------------------------------- */

static void
monitor_bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Appends "&key=value" (or "?...") with value percent-encoded. */
static size_t
monitor_append_query(char *out, size_t cap, size_t n, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";

    if (n >= cap)
        return n;
    n += (size_t)snprintf(out + n, cap - n, "%s%s=", strchr(out, '?') ? "&" : "?", key);
    for (const unsigned char *p = (const unsigned char *)value; *p && n + 4 < cap; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    if (n < cap)
        out[n] = '\0';
    return n;
}

static json_t *
activity_next_link(const struct pgcmk_req *rq, long next)
{
    char url[4096], num[32];
    char *base = pgcmk_req_base_url(rq);
    size_t n = (size_t)snprintf(url, sizeof(url), "%s%s", base, rq->path);

    free(base);
    for (int i = 0; i < rq->n_query; i++)
        if (strcasecmp(rq->query[i].key, "$skiptoken") != 0)
            n = monitor_append_query(url, sizeof(url), n, rq->query[i].key, rq->query[i].value);
    snprintf(num, sizeof(num), "%ld", next);
    n = monitor_append_query(url, sizeof(url), n, "$skiptoken", num);
    return n < sizeof(url) - 1 ? json_string(url) : NULL;
}

/* GET /subscriptions/{s}/providers/Microsoft.Insights/eventtypes/management/values */
static int
activity_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    monitor_flush(); /* a client finds its own writes */
    const char *sub = pgcmk_req_param(rq, "sub"), *skip = pgcmk_req_query(rq, "$skiptoken");
    struct pgcmk_activity_filter f;
    struct pgcmk_db *db;
    json_t *fields = NULL, *value, *out;
    sqlite3_stmt *st;
    char sub_l[64];
    long start = 0, page = rq->cfg && rq->cfg->page_size > 0 ? rq->cfg->page_size : 100, rows = 0;
    int rc;

    if (pgcmk_arm_check_sub(sub, err) ||
        pgcmk_arm_check_version(rq, "Microsoft.Insights/eventtypes", activity_versions, err) ||
        pgcmk_activity_filter_parse(pgcmk_req_query(rq, "$filter"), &f, err) ||
        activity_select(pgcmk_req_query(rq, "$select"), &fields, err))
        return -1;
    if (skip && *skip) {
        char *end;

        errno = 0;
        start = strtol(skip, &end, 10);
        if (*end || start < 0 || errno == ERANGE || !isdigit((unsigned char)*skip)) {
            json_decref(fields);
            return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "$skiptoken",
                                 "The skip token '%.64s' is not valid.", skip);
        }
    }
    pgcmk_lower(sub_l, sizeof(sub_l), sub);
    db = pgcmk_db();
    st = pgcmk_db_stmt(db, PGCMK_STMT_ACTIVITY_QUERY);
    sqlite3_bind_text(st, 1, sub_l, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, f.from_ms);
    sqlite3_bind_int64(st, 3, f.to_ms);
    monitor_bind_opt(st, 4, f.rg);
    monitor_bind_opt(st, 5, f.resource_id);
    monitor_bind_opt(st, 6, f.correlation_id);
    monitor_bind_opt(st, 7, f.provider);
    monitor_bind_opt(st, 8, f.caller);
    monitor_bind_opt(st, 9, f.status);
    monitor_bind_opt(st, 10, f.levels);
    sqlite3_bind_int64(st, 11, page + 1);
    sqlite3_bind_int64(st, 12, start);
    value = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        json_t *ev;

        if (++rows > page)
            continue;
        ev = text ? json_loads(text, 0, NULL) : NULL;
        if (ev == NULL)
            continue;
        if (fields) {
            json_t *proj = json_object(), *name;
            size_t i;

            json_array_foreach(fields, i, name) {
                json_t *v = json_object_get(ev, json_string_value(name));

                if (v)
                    json_object_set(proj, json_string_value(name), v);
            }
            json_decref(ev);
            ev = proj;
        }
        json_array_append_new(value, ev);
    }
    pgcmk_db_done(st);
    json_decref(fields);
    if (rc != SQLITE_DONE) {
        json_decref(value);
        return pgcmk_db_fail(db, rc, "read the activity log", err);
    }
    out = json_pack("{s:o}", "value", value);
    if (rows > page) {
        json_t *next = activity_next_link(rq, start + page);

        if (next)
            json_object_set_new(out, "nextLink", next);
    }
    pgcmk_resp_json(rs, 200, out);
    return 0;
}

/* ---- routes -------------------------------------------------------------------------------- */

#define RES1 "/subscriptions/{sub}/resourcegroups/{rg}/providers/{ns}/{type}/{name}"
#define RES2 RES1 "/{type2}/{name2}"
#define RH   "/providers/Microsoft.ResourceHealth/availabilityStatuses"
#define RH_Q "$filter,$expand,$top,$skiptoken"

static const struct pgcmk_route monitor_routes[] = {
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
    {"GET", "/subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management/values",
     PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, "$filter,$select,$skiptoken", activity_list},
};

void
pgcmk_monitor_init(void)
{
    pgcmk_router_add(monitor_routes, PGCMK_ARRAY_LEN(monitor_routes));
}
