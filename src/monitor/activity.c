/* activity.c - the Activity Log (azure-api.md section 8).
 *
 * /subscriptions/{s}/providers/Microsoft.Insights/eventtypes/management/values with Azure's
 * restricted $filter (filter.c; a start time is required) and $select. Each entry is rendered to
 * its EventData JSON once, when it is written, and stored in activity_log; queries page in SQL.
 * ARM writes are recorded by pgcmk_monitor_record_request (a BeginRequest and an EndRequest
 * entry sharing an operationId), which the request pipeline calls after the answer is built; a
 * refused write's EndRequest carries the error's code and message (properties.statusMessage and
 * the description), as Azure's does. The entries of ARM writes are batched off the request's
 * path (monitor_flush). */
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

#include "monitor/internal.h"

#define MONITOR_MAX_SEGS 40
/* The string fields of struct pgcmk_activity (queued_fields lists them: keep both in step). */
#define PGCMK_ACTIVITY_STRINGS 10
/* Longest error message an entry keeps (bytes, cut at a character boundary). */
#define MONITOR_MAX_ERROR 4096

static const char *const activity_versions[] = {"2015-04-01", "2017-03-01-preview", NULL};

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

struct activity_ctx {
    const struct pgcmk_activity *a;
    const struct activity_extra *x;
    int n; /* 1 or 2 entries (a[0], a[1]) */
};

static int monitor_path_parse(const char *path, struct monitor_path *m);
static const char *monitor_status_name(int status);
static json_t *activity_event(const struct pgcmk_activity *a, const struct activity_extra *x,
                              const struct monitor_path *m, const char *event_id);
static int activity_insert(struct pgcmk_db *db, const struct pgcmk_activity *a,
                           const struct activity_extra *x, struct pgcmk_err *err);
static int activity_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err);

/* ---- small helpers ----------------------------------------------------------------------- */

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

/* ---- Activity Log: writing --------------------------------------------------------------- */

static json_t *
monitor_localized(const char *value, const char *localized)
{
    return json_pack("{s:s, s:s}", "value", value ? value : "", "localizedValue",
                     localized ? localized
                     : value   ? value
                               : "");
}

/* Bytes of s to keep so that at most `max` are kept and no UTF-8 character is cut. */
static size_t
monitor_cut(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);

    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* A failed operation's error as Azure's Activity Log shows it: properties.statusMessage is the
 * error body as a string, and the description names the code and the message. */
static void
activity_error(const struct pgcmk_activity *a, json_t *props, char **desc)
{
    const char *msg = a->error_message ? a->error_message : "";
    size_t n = monitor_cut(msg, MONITOR_MAX_ERROR);
    json_t *body;
    char *text;

    *desc = NULL;
    if (a->error_code == NULL || *a->error_code == '\0')
        return;
    body = json_pack("{s:{s:s, s:s%}}", "error", "code", a->error_code, "message", msg, n);
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (text)
        json_object_set_new(props, "statusMessage", json_string(text));
    free(text);
    json_decref(body);
    if (a->description == NULL || *a->description == '\0')
        *desc = n ? pgcmk_xasprintf("%s: %.*s", a->error_code, (int)n, msg)
                  : pgcmk_xstrdup(a->error_code);
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
    char *desc;

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
    activity_error(a, props, &desc);
    ev = json_pack("{s:{s:s, s:s}, s:s, s:s, s:o, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:o}",
                   "authorization", "action", a->operation, "scope", m->id, "caller",
                   a->caller ? a->caller : "", "channels", "Operation", "claims", claims,
                   "correlationId", a->correlation_id ? a->correlation_id : "", "description",
                   desc             ? desc
                   : a->description ? a->description
                                    : "",
                   "eventDataId", event_id, "eventName",
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
    free(desc);
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

/* pgcmk_db_savepoint unit: the entries of one queued write (its start and its end). */
static int
flush_one_sp(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct queued *q = ctx;

    for (int i = 0; i < 2; i++)
        if (q->ok[i] && activity_store(db, &q->r[i], err))
            return -1;
    return 0;
}

/* Each queued write in its own savepoint: one whose entries cannot be stored is rolled back
 * alone (no half-recorded write) and logged; the others commit. */
static int
flush_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    for (struct queued *q = ctx; q; q = q->next) {
        struct pgcmk_err one;

        if (pgcmk_db_savepoint(db, flush_one_sp, q, &one))
            LOG_WARN("activity log entries for %.200s not recorded: %s", q->a[0].resource_id,
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

/* Every string field of an entry pair and its extra, so the queue can copy them. */
static void
queued_fields(struct queued *q, const char **f[PGCMK_ACTIVITY_STRINGS * 2 + 4])
{
    for (int i = 0; i < 2; i++) {
        struct pgcmk_activity *a = &q->a[i];
        const char **row[PGCMK_ACTIVITY_STRINGS] = {
            &a->resource_id, &a->operation,      &a->status, &a->level,      &a->caller,
            &a->description, &a->correlation_id, &a->method, &a->error_code, &a->error_message};

        memcpy(f + i * PGCMK_ACTIVITY_STRINGS, row, sizeof(row));
    }
    f[PGCMK_ACTIVITY_STRINGS * 2] = &q->x.event_name;
    f[PGCMK_ACTIVITY_STRINGS * 2 + 1] = &q->x.operation_id;
    f[PGCMK_ACTIVITY_STRINGS * 2 + 2] = &q->x.client_request_id;
    f[PGCMK_ACTIVITY_STRINGS * 2 + 3] = &q->x.request_id;
}

static void
monitor_enqueue(const struct activity_ctx *c)
{
    struct queued *q = pgcmk_xcalloc(1, sizeof(*q));
    const char **f[PGCMK_ACTIVITY_STRINGS * 2 + 4];
    size_t n = 0;
    char *p;
    int submit;

    q->a[0] = c->a[0];
    q->a[1] = c->a[1];
    q->x = *c->x;
    queued_fields(q, f); /* still the caller's strings: measure, then copy */
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(f); i++)
        n += *f[i] ? strlen(*f[i]) + 1 : 0;
    p = q->strings = pgcmk_xmalloc(n ? n : 1);
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(f); i++)
        *f[i] = qcopy(&p, *f[i]);
    pthread_mutex_lock(&queue_mu);
    *queue_tail = q;
    queue_tail = &q->next;
    submit = !queue_job_pending;
    queue_job_pending = 1;
    pthread_mutex_unlock(&queue_mu);
    if (submit)
        pgcmk_work_submit(flush_job, NULL);
}

/* The error of a refused write, from its ARM error body ({"error":{"code","message"}}); the
 * status name when the body is not one. *code and *message point into *doc or are static. */
static void
record_error(const struct pgcmk_resp *rs, json_t **doc, const char **code, const char **message)
{
    json_t *e;

    *doc = rs->body && rs->body_len ? json_loadb(rs->body, rs->body_len, 0, NULL) : NULL;
    e = json_object_get(*doc, "error");
    *code = json_string_value(json_object_get(e, "code"));
    *message = json_string_value(json_object_get(e, "message"));
    if (*code == NULL || **code == '\0')
        *code = monitor_status_name(rs->status);
    if (*message == NULL)
        *message = "";
}

void
pgcmk_monitor_record_request(const struct pgcmk_req *rq, const struct pgcmk_resp *rs)
{
    struct pgcmk_activity a[2];
    struct activity_extra x;
    struct activity_ctx c = {a, &x, 2};
    struct monitor_path m;
    char op[512], op_id[37];
    const char *verb;
    json_t *doc = NULL;
    int status = rs ? rs->status : 0;

    if (rq == NULL || rs == NULL || rq->plane != PGCMK_PLANE_ARM || rq->route == NULL ||
        rq->path == NULL || status == 401 || strncasecmp(rq->path, "/subscriptions/", 15) != 0)
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
    if (status >= 400)
        record_error(rs, &doc, &a[1].error_code, &a[1].error_message);
    x.operation_id = op_id;
    x.client_request_id = rq->client_request_id;
    x.request_id = rq->request_id;
    x.at = pgcmk_clock_now();
    monitor_enqueue(&c); /* copies every string */
    json_decref(doc);
}

/* ---- Activity Log: $select ---------------------------------------------------------------- */

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
    if (sel == NULL || sel[strspn(sel, " \t")] == '\0')
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
    pgcmk_db_bind_opt(st, i, v && *v ? v : NULL); /* an empty filter field is no filter */
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
            n = pgcmk_query_append(url, sizeof(url), n, rq->query[i].key, rq->query[i].value);
    snprintf(num, sizeof(num), "%ld", next);
    n = pgcmk_query_append(url, sizeof(url), n, "$skiptoken", num);
    return n < sizeof(url) - 1 ? json_string(url) : NULL;
}

struct activity_rows {
    long page, rows; /* one row more than a page is read: it says a next page exists */
    json_t *fields;  /* $select, or NULL */
    json_t *value;
};

/* pgcmk_db_each row: one stored event, projected on $select. */
static int
activity_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct activity_rows *ar = arg;
    const char *text = (const char *)sqlite3_column_text(st, 0);
    json_t *ev;

    PGCMK_UNUSED(err);
    if (++ar->rows > ar->page)
        return 0;
    ev = text ? json_loads(text, 0, NULL) : NULL;
    if (ev == NULL)
        return 0;
    if (ar->fields) {
        json_t *proj = json_object(), *name;
        size_t i;

        json_array_foreach(ar->fields, i, name) {
            json_t *v = json_object_get(ev, json_string_value(name));

            if (v)
                json_object_set(proj, json_string_value(name), v);
        }
        json_decref(ev);
        ev = proj;
    }
    json_array_append_new(ar->value, ev);
    return 0;
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
    {
        struct activity_rows ar = {page, 0, fields, value};

        rc = pgcmk_db_each(db, st, activity_row, &ar, "read the activity log", err);
        rows = ar.rows;
    }
    json_decref(fields);
    if (rc < 0) {
        json_decref(value);
        return -1;
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

static const struct pgcmk_route activity_routes[] = {
    {"GET", "/subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management/values",
     PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, "$filter,$select,$skiptoken", activity_list},
};

void
monitor_activity_init(void)
{
    pgcmk_router_add(activity_routes, PGCMK_ARRAY_LEN(activity_routes));
}
