/* test_monitor.c - Resource Health and the Activity Log: the $filter parser, .NET ticks, health
 * transitions (pgcmk_health_set / _forget) and their routes, pgcmk_activity_add, recording of ARM
 * writes (pgcmk_monitor_record_request) and the Activity Log list with $filter, $select and
 * paging, all through pgcmk_http_dispatch on an in-memory store. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/core.h"
#include "pgcmk/err.h"
#include "pgcmk/http.h"
#include "pgcmk/monitor.h"
#include "pgcmk/store.h"
#include "pgcmk/wellknown.h"

#include "t.h"
#include "t_store.h"

#define SUB     PGCMK_SUBSCRIPTION_ID
#define RG      "/subscriptions/" SUB "/resourcegroups/mon"
#define WIDGET  "/subscriptions/" SUB "/resourceGroups/mon/providers/Microsoft.Test/widgets/w1"
#define WIDGET2 "/subscriptions/" SUB "/resourceGroups/mon/providers/Microsoft.Test/widgets/w2"
#define RH      "/providers/Microsoft.ResourceHealth/availabilityStatuses"
#define HAV     "api-version=2022-10-01"
#define AL      "/subscriptions/" SUB "/providers/Microsoft.Insights/eventtypes/management/values"
#define AAV     "api-version=2015-04-01"
#define T0      INT64_C(1893456000000) /* 2030-01-01T00:00:00Z */
#define FROM_T0 "%24filter=eventTimestamp%20ge%20%272030-01-01T00%3A00%3A00Z%27"

static struct pgcmk_cfg test_cfg;

/* ---- helpers ------------------------------------------------------------------------------ */

static json_t *
resp_json(const struct pgcmk_resp *rs)
{
    return rs->body ? json_loadb(rs->body, rs->body_len, 0, NULL) : NULL;
}

static const char *
str_at(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

static const char *
err_code_of(json_t *j)
{
    return str_at(json_object_get(j, "error"), "code");
}

/* Runs one request through the pipeline, then records it as the wired pipeline will. Returns
 * the status; the body as JSON in *out (may be NULL). */
static int
call_as(const char *method, const char *url, const char *body, const char *corr, json_t **out)
{
    struct pgcmk_req rq;
    struct pgcmk_resp rs;
    int status;

    memset(&rs, 0, sizeof(rs));
    pgcmk_req_init(&rq, &test_cfg, method, url, "localhost:8443", body, body ? strlen(body) : 0);
    pgcmk_req_add_header(&rq, "Host", "localhost:8443");
    if (body)
        pgcmk_req_add_header(&rq, "Content-Type", "application/json");
    if (corr)
        pgcmk_req_add_header(&rq, "x-ms-correlation-request-id", corr);
    pgcmk_req_add_header(&rq, "x-ms-client-request-id", "client-req-1");
    pgcmk_http_dispatch(&rq, &rs);
    pgcmk_monitor_record_request(&rq, rs.status);
    status = rs.status;
    if (out)
        *out = resp_json(&rs);
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);
    return status;
}

static int
call(const char *method, const char *url, const char *body, json_t **out)
{
    return call_as(method, url, body, NULL, out);
}

/* ---- pure functions ----------------------------------------------------------------------- */

static void
test_ticks(void)
{
    CHECK(pgcmk_monitor_ticks(0) == INT64_C(621355968000000000));
    /* DateTime(2015, 1, 1, 0, 0, 0, DateTimeKind.Utc).Ticks */
    CHECK(pgcmk_monitor_ticks(INT64_C(1420070400000)) == INT64_C(635556672000000000));
    CHECK(pgcmk_monitor_ticks(1) - pgcmk_monitor_ticks(0) == 10000);
}

static int
parse_fails(const char *filter)
{
    struct pgcmk_activity_filter f;
    struct pgcmk_err err;
    int rc;

    pgcmk_err_clear(&err);
    rc = pgcmk_activity_filter_parse(filter, &f, &err);
    if (rc == 0)
        fprintf(stderr, "  filter accepted: %s\n", filter ? filter : "(null)");
    else if (err.code != PGCMK_E_BAD_REQUEST || strcmp(err.target, "$filter") != 0 ||
             strstr(err.message, "eventTimestamp ge") == NULL)
        fprintf(stderr, "  filter error not helpful: %s\n", err.message);
    return rc == -1 && err.code == PGCMK_E_BAD_REQUEST && strcmp(err.target, "$filter") == 0 &&
           strstr(err.message, "eventTimestamp ge") != NULL;
}

static void
test_filter(void)
{
    struct pgcmk_activity_filter f;
    struct pgcmk_err err;
    int64_t t;

    pgcmk_err_clear(&err);
    /* the spec's example */
    CHECK(pgcmk_activity_filter_parse("eventTimestamp ge '2015-01-21T20:00:00Z' and eventTimestamp "
                                      "le '2015-01-23T20:00:00Z' and resourceGroupName eq "
                                      "'MSSupportGroup'",
                                      &f, &err) == 0);
    CHECK(pgcmk_time_parse("2015-01-21T20:00:00Z", &t) == 0 && f.from_ms == t);
    CHECK(pgcmk_time_parse("2015-01-23T20:00:00Z", &t) == 0 && f.to_ms == t);
    CHECK_STR(f.rg, "MSSupportGroup");
    CHECK(f.resource_id[0] == '\0' && f.correlation_id[0] == '\0' && f.provider[0] == '\0');

    /* keywords in any case, extra blanks, only a start time */
    CHECK(pgcmk_activity_filter_parse("  EVENTTIMESTAMP  GE '2030-01-01T00:00:00Z'  AND "
                                      "correlationid Eq 'abc-123' ",
                                      &f, &err) == 0);
    CHECK(f.from_ms == T0);
    CHECK(f.to_ms == INT64_MAX);
    CHECK_STR(f.correlation_id, "abc-123");

    /* the az CLI: bare times without a zone (UTC), microseconds, and str(datetime) with a blank */
    CHECK(pgcmk_activity_filter_parse("eventTimestamp ge 2030-01-01T00:00:00.250000 and "
                                      "eventTimestamp le 2030-01-01 01:00:00.5 and "
                                      "resourceProvider eq 'Microsoft.KeyVault'",
                                      &f, &err) == 0);
    CHECK(f.from_ms == T0 + 250);
    CHECK(f.to_ms == T0 + 3600 * 1000 + 500);
    CHECK_STR(f.provider, "Microsoft.KeyVault");
    CHECK(pgcmk_activity_filter_parse("resourceProvider eq Microsoft.Authorization and "
                                      "eventTimestamp ge 2030-01-01T00:00:00Z and eventTimestamp "
                                      "le 2030-01-01T01:00:00Z",
                                      &f, &err) == 0);
    CHECK_STR(f.provider, "Microsoft.Authorization");
    CHECK(f.from_ms == T0);

    /* offsets, gt/lt are exclusive, '' escapes a quote, resourceUri, caller, status, levels */
    CHECK(pgcmk_activity_filter_parse("eventTimestamp gt '2030-01-01T01:00:00+01:00' and "
                                      "eventTimestamp lt '2030-01-02T00:00:00Z' and resourceUri "
                                      "eq '/subscriptions/x/resourceGroups/o''k' and caller eq "
                                      "'me' and status eq 'Failed' and levels eq 'Error, Warning'",
                                      &f, &err) == 0);
    CHECK(f.from_ms == T0 + 1);
    CHECK(f.to_ms == T0 + 86400 * 1000 - 1);
    CHECK_STR(f.resource_id, "/subscriptions/x/resourceGroups/o'k");
    CHECK_STR(f.caller, "me");
    CHECK_STR(f.status, "Failed");
    CHECK_STR(f.levels, ",error,warning,");
    CHECK(pgcmk_activity_filter_parse("eventTimestamp ge '2030-01-01' and resourceId eq 'a' and "
                                      "eventChannels eq 'Admin, Operation'",
                                      &f, &err) == 0);
    CHECK_STR(f.resource_id, "a");

    /* what Azure refuses: no filter, no start time, bad times, unknown fields, or, ... */
    CHECK(parse_fails(NULL));
    CHECK(parse_fails(""));
    CHECK(parse_fails("   "));
    CHECK(parse_fails("resourceGroupName eq 'rg'"));
    CHECK(parse_fails("eventTimestamp le '2030-01-01T00:00:00Z'"));
    CHECK(parse_fails("eventTimestamp ge 'yesterday'"));
    CHECK(parse_fails("eventTimestamp ge '2030-02-30T00:00:00Z'"));
    CHECK(parse_fails("eventTimestamp eq '2030-01-01T00:00:00Z'"));
    CHECK(parse_fails("eventTimestamp ge '2030-01-01T00:00:00Z' or resourceGroupName eq 'x'"));
    CHECK(parse_fails("eventTimestamp ge '2030-01-01T00:00:00Z' and"));
    CHECK(parse_fails("eventTimestamp ge '2030-01-01T00:00:00Z' and color eq 'red'"));
    CHECK(parse_fails("eventTimestamp ge '2030-01-01T00:00:00Z' and resourceGroupName ge 'x'"));
    CHECK(parse_fails("eventTimestamp ge '2030-01-01T00:00:00Z' and resourceGroupName eq 'x"));
    CHECK(parse_fails("eventTimestamp ge '2030-01-01T00:00:00Z' and resourceGroupName eq ''"));
    CHECK(parse_fails("eventTimestamp ge '2030-01-01T00:00:00Z' and eventTimestamp ge "
                      "'2030-01-02T00:00:00Z'"));
    CHECK(parse_fails("eventTimestamp ge '2030-01-01T00:00:00Z' and resourceGroupName eq 'a' "
                      "and resourceGroupName eq 'b'"));
    CHECK(parse_fails("eventTimestamp ge '2030-01-02T00:00:00Z' and eventTimestamp le "
                      "'2030-01-01T00:00:00Z'"));
    CHECK(parse_fails("eventTimestamp ge '2030-01-01T00:00:00Z' resourceGroupName eq 'x'"));
    CHECK(parse_fails("'2030-01-01T00:00:00Z' le eventTimestamp"));
    {
        char big[2048];

        snprintf(big, sizeof(big), "eventTimestamp ge '2030-01-01' and resourceGroupName eq '%0*d'",
                 200, 7);
        CHECK(parse_fails(big));
    }
}

/* ---- Resource Health ---------------------------------------------------------------------- */

static const char *const widget_versions[] = {"2023-01-01", NULL};
static const struct pgcmk_arm_type widget_type = {.ns = "Microsoft.Test",
                                                  .type = "widgets",
                                                  .versions = widget_versions,
                                                  .flags = ARM_T_TRACKED | ARM_T_SYNC_PUT};

static const char *
props_at(json_t *j, const char *key)
{
    return str_at(json_object_get(j, "properties"), key);
}

static void
test_health(void)
{
    struct pgcmk_err err;
    json_t *j, *v;

    pgcmk_err_clear(&err);
    CHECK(call("PUT", RG "?api-version=2021-04-01", "{\"location\":\"westeurope\"}", NULL) == 201);
    CHECK(call("PUT", WIDGET "?api-version=2023-01-01", "{\"location\":\"westeurope\"}", NULL) ==
          201);

    /* no history: Available, with Azure's default texts */
    CHECK(call("GET", WIDGET RH "/current?" HAV, NULL, &j) == 200);
    CHECK_STR(str_at(j, "id"), WIDGET RH "/current");
    CHECK_STR(str_at(j, "name"), "current");
    CHECK_STR(str_at(j, "type"), "Microsoft.ResourceHealth/AvailabilityStatuses");
    CHECK_STR(str_at(j, "location"), "westeurope");
    CHECK_STR(props_at(j, "availabilityState"), "Available");
    CHECK_STR(props_at(j, "title"), "Available");
    CHECK_STR(props_at(j, "summary"),
              "There aren't any known Azure platform problems affecting this resource.");
    CHECK(props_at(j, "occuredTime") != NULL);
    CHECK(json_object_get(json_object_get(j, "properties"), "recommendedActions") == NULL);
    json_decref(j);

    /* every supported api-version; others are NoRegisteredProviderFound; none is Missing... */
    CHECK(call("GET", WIDGET RH "/current?api-version=2015-01-01", NULL, NULL) == 200);
    CHECK(call("GET", WIDGET RH "/current?api-version=2020-05-01", NULL, NULL) == 200);
    CHECK(call("GET", WIDGET RH "/current?api-version=2023-01-01", NULL, &j) == 400);
    CHECK_STR(err_code_of(j), "NoRegisteredProviderFound");
    json_decref(j);
    CHECK(call("GET", WIDGET RH "/current", NULL, &j) == 400);
    CHECK_STR(err_code_of(j), "MissingApiVersionParameter");
    json_decref(j);
    CHECK(call("GET", WIDGET RH "/current?" HAV "&color=red", NULL, &j) == 400);
    json_decref(j);

    /* a resource that does not exist */
    CHECK(call("GET", WIDGET2 RH "/current?" HAV, NULL, &j) == 404);
    CHECK_STR(err_code_of(j), "ResourceNotFound");
    json_decref(j);
    CHECK(call("GET", WIDGET2 RH "?" HAV, NULL, &j) == 404);
    CHECK_STR(err_code_of(j), "ResourceNotFound");
    json_decref(j);

    /* transitions: Unavailable (CMK), the same again (no-op), then Available */
    pgcmk_clock_freeze();
    pgcmk_clock_set(T0);
    CHECK(pgcmk_health_set(NULL, WIDGET, PGCMK_HEALTH_UNAVAILABLE, "Inaccessible",
                           "Your server is inaccessible because it lost access to the "
                           "customer-managed key in Azure Key Vault.",
                           "Customer Initiated", &err) == 0);
    CHECK(pgcmk_health_set(NULL, WIDGET, PGCMK_HEALTH_UNAVAILABLE, "Inaccessible", "again",
                           "Customer Initiated", &err) == 0);
    CHECK(call("GET", WIDGET RH "/current?" HAV "&$expand=recommendedActions", NULL, &j) == 200);
    CHECK_STR(props_at(j, "availabilityState"), "Unavailable");
    CHECK_STR(props_at(j, "title"), "Inaccessible");
    CHECK_STR(props_at(j, "reasonType"), "Customer Initiated");
    CHECK_STR(props_at(j, "occuredTime"), "2030-01-01T00:00:00.000Z");
    v = json_object_get(json_object_get(j, "properties"), "recommendedActions");
    CHECK(json_array_size(v) >= 2);
    CHECK(strstr(str_at(json_array_get(v, 0), "action") ?: "", "customer-managed key") != NULL);
    CHECK(str_at(json_array_get(v, 0), "actionUrl") != NULL);
    json_decref(j);

    /* a second change in the same millisecond is still strictly newer */
    CHECK(pgcmk_health_set(NULL, WIDGET, PGCMK_HEALTH_AVAILABLE, NULL, NULL, NULL, &err) == 0);
    CHECK(call("GET", WIDGET RH "/current?" HAV, NULL, &j) == 200);
    CHECK_STR(props_at(j, "availabilityState"), "Available");
    CHECK_STR(props_at(j, "summary"),
              "There aren't any known Azure platform problems affecting this resource.");
    CHECK_STR(props_at(j, "occuredTime"), "2030-01-01T00:00:00.001Z");
    json_decref(j);
    pgcmk_clock_advance(60000);
    CHECK(pgcmk_health_set(NULL, WIDGET, PGCMK_HEALTH_DEGRADED, "Degraded", "slow",
                           "Platform Initiated", &err) == 0);

    /* the history: newest first, the newest is "current"; case-insensitive ids */
    CHECK(call("GET",
               "/SUBSCRIPTIONS/" SUB "/RESOURCEGROUPS/MON/providers/microsoft.test/WIDGETS/W1"
               "/providers/microsoft.resourcehealth/AVAILABILITYSTATUSES?" HAV,
               NULL, &j) == 200);
    v = json_object_get(j, "value");
    CHECK(json_array_size(v) == 3);
    CHECK_STR(str_at(json_array_get(v, 0), "name"), "current");
    CHECK_STR(props_at(json_array_get(v, 0), "availabilityState"), "Degraded");
    CHECK_STR(props_at(json_array_get(v, 1), "availabilityState"), "Available");
    CHECK_STR(props_at(json_array_get(v, 2), "availabilityState"), "Unavailable");
    CHECK_STR(str_at(json_array_get(v, 0), "id"), WIDGET RH "/current");
    json_decref(j);

    /* the group and subscription lists show resources with a history */
    CHECK(call("PUT", WIDGET2 "?api-version=2023-01-01", "{\"location\":\"westeurope\"}", NULL) ==
          201);
    CHECK(call("GET", RG RH "?" HAV, NULL, &j) == 200);
    v = json_object_get(j, "value");
    CHECK(json_array_size(v) == 1);
    CHECK_STR(str_at(json_array_get(v, 0), "id"), WIDGET RH "/current");
    CHECK_STR(props_at(json_array_get(v, 0), "availabilityState"), "Degraded");
    json_decref(j);
    CHECK(call("GET", "/subscriptions/" SUB RH "?" HAV, NULL, &j) == 200);
    CHECK(json_array_size(json_object_get(j, "value")) == 1);
    json_decref(j);
    CHECK(call("GET", "/subscriptions/" SUB "/resourcegroups/nope" RH "?" HAV, NULL, &j) == 404);
    CHECK_STR(err_code_of(j), "ResourceGroupNotFound");
    json_decref(j);
    CHECK(call("GET", "/subscriptions/not-a-guid" RH "?" HAV, NULL, &j) == 400);
    json_decref(j);

    /* errors and forgetting */
    CHECK(pgcmk_health_set(NULL, WIDGET, "Sleepy", NULL, NULL, NULL, &err) == -1);
    CHECK(err.code == PGCMK_E_INVALID_PARAMETER);
    CHECK(pgcmk_health_forget(NULL, WIDGET, &err) == 0);
    CHECK(call("GET", WIDGET RH "?" HAV, NULL, &j) == 200);
    CHECK(json_array_size(json_object_get(j, "value")) == 1);
    CHECK_STR(props_at(json_array_get(json_object_get(j, "value"), 0), "availabilityState"),
              "Available");
    json_decref(j);
    CHECK(call("GET", "/subscriptions/" SUB RH "?" HAV, NULL, &j) == 200);
    CHECK(json_array_size(json_object_get(j, "value")) == 0);
    json_decref(j);
}

/* Inside a caller's transaction: no nested BEGIN, and a rollback takes the rows with it. */
static int
tx_set_then_fail(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct pgcmk_activity a = {WIDGET,
                               "Microsoft.Test/widgets/poke/action",
                               "Succeeded",
                               "Informational",
                               NULL,
                               "inside",
                               NULL,
                               NULL,
                               0};

    if (pgcmk_health_set(db, WIDGET, PGCMK_HEALTH_UNAVAILABLE, "Down", "x", "Unplanned", err) ||
        pgcmk_activity_add(db, &a, err))
        return -1;
    return ctx ? pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL, "roll back") : 0;
}

static void
test_in_transaction(void)
{
    struct pgcmk_err err;
    json_t *j;

    pgcmk_err_clear(&err);
    CHECK(pgcmk_db_tx(pgcmk_db(), tx_set_then_fail, (void *)1, &err) == -1);
    CHECK(call("GET", WIDGET RH "/current?" HAV, NULL, &j) == 200);
    CHECK_STR(props_at(j, "availabilityState"), "Available");
    json_decref(j);
    CHECK(pgcmk_db_tx(pgcmk_db(), tx_set_then_fail, NULL, &err) == 0);
    CHECK(call("GET", WIDGET RH "/current?" HAV, NULL, &j) == 200);
    CHECK_STR(props_at(j, "availabilityState"), "Unavailable");
    CHECK_STR(props_at(j, "reasonType"), "Unplanned");
    json_decref(j);
}

/* ---- Activity Log ------------------------------------------------------------------------- */

static json_t *
activity(const char *extra_query)
{
    char url[2048];
    json_t *j = NULL;

    snprintf(url, sizeof(url), "%s%s", AL "?" AAV "&" FROM_T0, extra_query ? extra_query : "");
    if (call("GET", url, NULL, &j) != 200) {
        fprintf(stderr, "  activity query failed: %s\n", url);
        json_decref(j);
        return NULL;
    }
    return j;
}

static json_t *
find_op(json_t *value, const char *op, const char *status)
{
    size_t i;
    json_t *e;

    json_array_foreach(value, i, e) {
        if (strcmp(str_at(json_object_get(e, "operationName"), "value") ?: "", op) == 0 &&
            strcmp(str_at(json_object_get(e, "status"), "value") ?: "", status) == 0)
            return e;
    }
    return NULL;
}

static int
dummy_handler(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(rq);
    PGCMK_UNUSED(rs);
    PGCMK_UNUSED(err);
    return 0;
}

static const struct pgcmk_route dummy_route = {"POST", "/x", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
                                               0,      NULL, dummy_handler};

/* A POST action answered 202, as the pipeline will report it. */
static void
record_post_action(void)
{
    struct pgcmk_req rq;

    pgcmk_req_init(&rq, &test_cfg, "POST",
                   "/subscriptions/" SUB "/providers/Microsoft.KeyVault/locations/eastus/"
                   "deletedVaults/kv1/purge?api-version=2023-07-01",
                   "localhost:8443", NULL, 0);
    rq.route = &dummy_route;
    snprintf(rq.principal, sizeof(rq.principal), "%s", PGCMK_ADMIN_OBJECT_ID);
    snprintf(rq.correlation_id, sizeof(rq.correlation_id), "corr-post-1");
    pgcmk_monitor_record_request(&rq, 202);
    pgcmk_req_release(&rq);
}

static void
test_activity(void)
{
    struct pgcmk_err err;
    struct pgcmk_activity a;
    json_t *j, *v, *e, *b;
    char ticks[64];

    pgcmk_err_clear(&err);
    pgcmk_clock_set(T0 + 3600 * 1000);

    /* writes through ARM: Begin + End entries sharing correlation and operation ids */
    CHECK(call_as("PUT", WIDGET2 "?api-version=2023-01-01", "{\"location\":\"westeurope\"}",
                  "corr-put-1", NULL) == 200);
    CHECK(call_as("PUT",
                  "/subscriptions/" SUB "/resourcegroups/mon/providers/Microsoft.Test/"
                  "widgets/bad%20name?api-version=2023-01-01",
                  "{\"location\":\"westeurope\"}", "corr-bad-1", NULL) == 400);
    record_post_action();
    CHECK(call_as("GET", WIDGET2 "?api-version=2023-01-01", NULL, "corr-get-1", NULL) == 200);
    CHECK(call_as("PUT", "/subscriptions/" SUB "/resourcegroups/mon2?api-version=2021-04-01",
                  "{\"location\":\"eastus\"}", "corr-rg-1", NULL) == 201);

    j = activity("%20and%20correlationId%20eq%20%27corr-put-1%27");
    v = json_object_get(j, "value");
    CHECK(json_array_size(v) == 2);
    e = json_array_get(v, 0); /* newest first: the EndRequest */
    CHECK_STR(str_at(json_object_get(e, "eventName"), "value"), "EndRequest");
    CHECK_STR(str_at(json_object_get(e, "status"), "value"), "Succeeded");
    CHECK_STR(str_at(json_object_get(e, "subStatus"), "value"), "OK");
    CHECK_STR(str_at(json_object_get(e, "subStatus"), "localizedValue"),
              "OK (HTTP Status Code: 200)");
    CHECK_STR(str_at(json_object_get(e, "operationName"), "value"), "Microsoft.Test/widgets/write");
    CHECK_STR(str_at(json_object_get(e, "resourceProviderName"), "value"), "Microsoft.Test");
    CHECK_STR(str_at(json_object_get(e, "resourceType"), "value"), "Microsoft.Test/widgets");
    CHECK_STR(str_at(json_object_get(e, "category"), "value"), "Administrative");
    CHECK_STR(str_at(e, "resourceId"), WIDGET2);
    CHECK_STR(str_at(e, "resourceGroupName"), "mon");
    CHECK_STR(str_at(e, "subscriptionId"), SUB);
    CHECK_STR(str_at(e, "tenantId"), PGCMK_TENANT_ID);
    CHECK_STR(str_at(e, "caller"), PGCMK_ADMIN_OBJECT_ID);
    CHECK_STR(str_at(e, "correlationId"), "corr-put-1");
    CHECK_STR(str_at(e, "level"), "Informational");
    CHECK_STR(str_at(e, "eventTimestamp"), "2030-01-01T01:00:00.000Z");
    CHECK_STR(str_at(json_object_get(e, "httpRequest"), "method"), "PUT");
    CHECK_STR(str_at(json_object_get(e, "httpRequest"), "clientRequestId"), "client-req-1");
    CHECK_STR(str_at(json_object_get(e, "properties"), "statusCode"), "OK");
    CHECK(json_is_object(json_object_get(e, "claims")));
    CHECK_STR(str_at(json_object_get(e, "authorization"), "action"),
              "Microsoft.Test/widgets/write");
    snprintf(ticks, sizeof(ticks), "/ticks/%lld", (long long)pgcmk_monitor_ticks(T0 + 3600 * 1000));
    CHECK(strncmp(str_at(e, "id") ?: "", WIDGET2 "/events/", strlen(WIDGET2 "/events/")) == 0);
    CHECK(strstr(str_at(e, "id") ?: "", str_at(e, "eventDataId") ?: "-") != NULL);
    CHECK(strstr(str_at(e, "id") ?: "", ticks) != NULL);
    b = json_array_get(v, 1);
    CHECK_STR(str_at(json_object_get(b, "eventName"), "value"), "BeginRequest");
    CHECK_STR(str_at(json_object_get(b, "status"), "value"), "Started");
    CHECK_STR(str_at(b, "operationId"), str_at(e, "operationId"));
    CHECK(strcmp(str_at(b, "eventDataId") ?: "", str_at(e, "eventDataId") ?: "") != 0);
    json_decref(j);

    /* failures, actions, groups; reads are not recorded */
    j = activity(NULL);
    v = json_object_get(j, "value");
    e = find_op(v, "Microsoft.Test/widgets/write", "Failed");
    CHECK(e != NULL);
    CHECK_STR(str_at(e, "level"), "Error");
    CHECK_STR(str_at(json_object_get(e, "subStatus"), "value"), "BadRequest");
    e = find_op(v, "Microsoft.KeyVault/locations/deletedVaults/purge/action", "Accepted");
    CHECK(e != NULL);
    CHECK_STR(str_at(e, "resourceId"),
              "/subscriptions/" SUB
              "/providers/Microsoft.KeyVault/locations/eastus/deletedVaults/kv1");
    CHECK_STR(str_at(e, "resourceGroupName"), "");
    CHECK_STR(str_at(e, "correlationId"), "corr-post-1");
    e = find_op(v, "Microsoft.Resources/subscriptions/resourceGroups/write", "Succeeded");
    CHECK(e != NULL);
    CHECK_STR(str_at(e, "resourceId"), "/subscriptions/" SUB "/resourceGroups/mon2");
    CHECK_STR(str_at(json_object_get(e, "subStatus"), "localizedValue"),
              "Created (HTTP Status Code: 201)");
    {
        size_t i;
        json_t *x;
        int gets = 0;

        json_array_foreach(v, i, x) {
            if (strcmp(str_at(x, "correlationId") ?: "", "corr-get-1") == 0)
                gets++;
        }
        CHECK(gets == 0);
    }
    json_decref(j);

    /* pgcmk_activity_add standalone: a new correlation id, no httpRequest */
    memset(&a, 0, sizeof(a));
    a.resource_id = WIDGET;
    a.operation = "Microsoft.Test/widgets/keyAccess/action";
    a.status = "Failed";
    a.level = "Error";
    a.description = "The key was disabled.";
    CHECK(pgcmk_activity_add(NULL, &a, &err) == 0);
    a.resource_id = "not an id";
    CHECK(pgcmk_activity_add(NULL, &a, &err) == -1);

    /* filters */
    j = activity("%20and%20resourceId%20eq%20%27" WIDGET "%27");
    v = json_object_get(j, "value");
    e = find_op(v, "Microsoft.Test/widgets/keyAccess/action", "Failed");
    CHECK(e != NULL);
    CHECK_STR(str_at(e, "description"), "The key was disabled.");
    CHECK(json_object_get(e, "httpRequest") == NULL);
    CHECK(str_at(e, "correlationId") != NULL && strlen(str_at(e, "correlationId")) == 36);
    CHECK(find_op(v, "Microsoft.Test/widgets/write", "Succeeded") == NULL); /* that was w2 */
    json_decref(j);
    j = activity("%20and%20resourceGroupName%20eq%20%27MON2%27");
    CHECK(json_array_size(json_object_get(j, "value")) == 2);
    json_decref(j);
    j = activity("%20and%20resourceProvider%20eq%20%27microsoft.resources%27");
    CHECK(json_array_size(json_object_get(j, "value")) == 2);
    json_decref(j);
    j = activity("%20and%20status%20eq%20%27Failed%27%20and%20levels%20eq%20%27Error%27");
    CHECK(json_array_size(json_object_get(j, "value")) == 2);
    json_decref(j);
    j = activity("%20and%20caller%20eq%20%27" PGCMK_ADMIN_OBJECT_ID "%27");
    CHECK(json_array_size(json_object_get(j, "value")) == 10);
    json_decref(j);
    j = activity("%20and%20eventTimestamp%20le%20%272030-01-01T00%3A00%3A30Z%27");
    CHECK(json_array_size(json_object_get(j, "value")) == 0);
    json_decref(j);

    /* $select keeps only the named fields (blanks allowed, any case) */
    j = activity("&%24select=eventName%20%2C%20OPERATIONNAME,status");
    e = json_array_get(json_object_get(j, "value"), 0);
    CHECK(json_object_size(e) == 3);
    CHECK(json_object_get(e, "eventName") && json_object_get(e, "operationName") &&
          json_object_get(e, "status"));
    json_decref(j);

    /* paging */
    test_cfg.page_size = 3;
    {
        char url[4096];
        int seen = 0, pages = 0;

        snprintf(url, sizeof(url), "%s", AL "?" AAV "&" FROM_T0);
        while (pages < 10) {
            const char *next;

            CHECK(call("GET", url, NULL, &j) == 200);
            seen += (int)json_array_size(json_object_get(j, "value"));
            pages++;
            next = str_at(j, "nextLink");
            if (next == NULL) {
                json_decref(j);
                break;
            }
            CHECK(strncmp(next, "https://localhost:8443/subscriptions/", 37) == 0);
            snprintf(url, sizeof(url), "%s", strstr(next, "/subscriptions/"));
            json_decref(j);
        }
        CHECK(seen == 12);
        CHECK(pages == 4);
    }
    test_cfg.page_size = 100;

    /* errors */
    CHECK(call("GET", AL "?" AAV, NULL, &j) == 400);
    CHECK_STR(err_code_of(j), "BadRequest");
    CHECK(strstr(str_at(json_object_get(j, "error"), "message") ?: "", "$filter") != NULL);
    json_decref(j);
    CHECK(call("GET", AL "?" AAV "&%24filter=resourceGroupName%20eq%20%27x%27", NULL, &j) == 400);
    CHECK_STR(err_code_of(j), "BadRequest");
    json_decref(j);
    CHECK(call("GET", AL "?" AAV "&" FROM_T0 "&%24select=nope", NULL, &j) == 400);
    CHECK_STR(err_code_of(j), "BadRequest");
    json_decref(j);
    CHECK(call("GET", AL "?" AAV "&" FROM_T0 "&%24skiptoken=-1", NULL, &j) == 400);
    json_decref(j);
    CHECK(call("GET", AL "?api-version=2017-03-01-preview&" FROM_T0, NULL, NULL) == 200);
    CHECK(call("GET", AL "?api-version=2022-10-01&" FROM_T0, NULL, &j) == 400);
    CHECK_STR(err_code_of(j), "NoRegisteredProviderFound");
    json_decref(j);
    CHECK(call("GET", AL "?" FROM_T0, NULL, &j) == 400);
    CHECK_STR(err_code_of(j), "MissingApiVersionParameter");
    json_decref(j);
}

/* What the pipeline must not record. */
static void
test_record_skips(void)
{
    struct pgcmk_req rq;
    json_t *j;
    size_t before;

    j = activity(NULL);
    before = json_array_size(json_object_get(j, "value"));
    json_decref(j);

    /* not routed, a vault data-plane request, a token request, a 401 */
    pgcmk_req_init(&rq, &test_cfg, "PUT", "/subscriptions/" SUB "/nowhere/x", "localhost", NULL, 0);
    pgcmk_monitor_record_request(&rq, 404);
    pgcmk_req_release(&rq);
    pgcmk_monitor_record_request(NULL, 200);
    CHECK(call("POST", "/" PGCMK_TENANT_ID "/oauth2/v2.0/token", "{}", NULL) >= 200);
    CHECK(call("PUT", "/subscriptions/" SUB "/resourcegroups?api-version=2021-04-01", "{}", NULL) >=
          400);
    j = activity(NULL);
    CHECK(json_array_size(json_object_get(j, "value")) == before);
    json_decref(j);
}

int
main(void)
{
    struct pgcmk_err err;

    memset(&test_cfg, 0, sizeof(test_cfg));
    test_cfg.port = 8443;
    test_cfg.page_size = 100;
    test_cfg.auth = PGCMK_AUTH_OPEN;
    test_cfg.max_body_kb = 4096;

    test_ticks();
    test_filter();

    pgcmk_clock_init();
    pgcmk_err_clear(&err);
    CHECK(t_store_open(&err) == 0);
    if (err.message[0])
        fprintf(stderr, "store: %s\n", err.message);
    pgcmk_router_reset();
    pgcmk_arm_register(&widget_type);
    pgcmk_arm_init();
    pgcmk_monitor_init();
    CHECK(pgcmk_router_check() == 0);

    test_health();
    test_in_transaction();
    test_activity();
    test_record_skips();

    pgcmk_router_reset();
    t_store_close();
    return t_done("test_monitor");
}
