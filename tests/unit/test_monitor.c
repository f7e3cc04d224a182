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
    pgcmk_monitor_record_request(&rq, &rs);
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

/* ---- the $filter parser (a pure function: no store, no clock) ----------------------------- */

#define T1 INT64_C(1421870400000) /* 2015-01-21T20:00:00Z */
#define T2 INT64_C(1422043200000) /* 2015-01-23T20:00:00Z */
#define TX INT64_MAX              /* no end time */

/* A filter Azure accepts and what it means (NULL strings: not filtered). */
static const struct good_filter {
    const char *filter;
    int64_t from, to;
    const char *rg, *resource_id, *correlation_id, *provider, *caller, *status, *levels;
} good_filters[] = {
    /* the spec's shapes (activityLogs_API.json): group, resource, subscription, provider, corr */
    {"eventTimestamp ge '2015-01-21T20:00:00Z' and eventTimestamp le '2015-01-23T20:00:00Z' and "
     "resourceGroupName eq 'MSSupportGroup'",
     T1, T2, .rg = "MSSupportGroup"},
    {"eventTimestamp ge '2015-01-21T20:00:00Z' and eventTimestamp le '2015-01-23T20:00:00Z' and "
     "resourceUri eq '/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/v'",
     T1, T2,
     .resource_id = "/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/v"},
    {"eventTimestamp ge '2015-01-21T20:00:00Z' and eventTimestamp le '2015-01-23T20:00:00Z'", T1,
     T2, .rg = NULL},
    {"eventTimestamp ge '2015-01-21T20:00:00Z' and eventTimestamp le '2015-01-23T20:00:00Z' and "
     "resourceProvider eq 'Microsoft.KeyVault'",
     T1, T2, .provider = "Microsoft.KeyVault"},
    {"eventTimestamp ge '2015-01-21T20:00:00Z' and eventTimestamp le '2015-01-23T20:00:00Z' and "
     "correlationId eq 'abc-123'",
     T1, T2, .correlation_id = "abc-123"},
    /* the spec's 7-digit fractions; keywords in any case, extra blanks, only a start time */
    {"eventTimestamp ge '2015-01-21T20:00:00.1234567Z'", T1 + 123, TX, .rg = NULL},
    {"  EVENTTIMESTAMP  GE '2030-01-01T00:00:00Z'  AND correlationid Eq 'abc-123' ", T0, TX,
     .correlation_id = "abc-123"},
    {"\teventTimestamp\tge\t'2030-01-01T00:00:00Z'\t", T0, TX, .rg = NULL},
    /* the az CLI: bare times without a zone (UTC), microseconds, str(datetime) with a blank */
    {"eventTimestamp ge 2030-01-01T00:00:00.250000 and eventTimestamp le 2030-01-01 01:00:00.5 "
     "and resourceProvider eq 'Microsoft.KeyVault'",
     T0 + 250, T0 + 3600 * 1000 + 500, .provider = "Microsoft.KeyVault"},
    {"resourceProvider eq Microsoft.Authorization and eventTimestamp ge 2030-01-01T00:00:00Z and "
     "eventTimestamp le 2030-01-01T01:00:00Z",
     T0, T0 + 3600 * 1000, .provider = "Microsoft.Authorization"},
    /* offsets; gt/lt are exclusive; '' escapes a quote; caller, status, levels */
    {"eventTimestamp gt '2030-01-01T01:00:00+01:00' and eventTimestamp lt '2030-01-02T00:00:00Z' "
     "and resourceUri eq '/subscriptions/x/resourceGroups/o''k' and caller eq 'me' and status eq "
     "'Failed' and levels eq 'Error, Warning'",
     T0 + 1, T0 + 86400 * 1000 - 1, .resource_id = "/subscriptions/x/resourceGroups/o'k",
     .caller = "me", .status = "Failed", .levels = ",error,warning,"},
    /* the portal's eventChannels is accepted and ignored; resourceId is resourceUri */
    {"eventTimestamp ge '2030-01-01' and resourceId eq 'a' and eventChannels eq 'Admin, Operation'",
     T0, TX, .resource_id = "a"},
    /* a value that contains the word and, quoted; a bare one with inner blanks */
    {"eventTimestamp ge '2030-01-01' and resourceGroupName eq 'rg and more'", T0, TX,
     .rg = "rg and more"},
    {"eventTimestamp ge '2030-01-01' and caller eq  some   body  ", T0, TX,
     .caller = "some   body"},
    /* equal start and end */
    {"eventTimestamp ge '2030-01-01' and eventTimestamp le '2030-01-01'", T0, T0, .rg = NULL},
};

/* A filter Azure refuses (400 BadRequest "$filter searching parameters invalid") and what the
 * rest of the message says is wrong. */
static const struct bad_filter {
    const char *filter;
    const char *why;
} bad_filters[] = {
    {"", "is required"},
    {"   ", "is required"},
    {"resourceGroupName eq 'rg'", "a start time"},
    {"eventTimestamp le '2030-01-01T00:00:00Z'", "a start time"},
    {"eventTimestamp ge 'yesterday'", "not an ISO-8601 date-time near 'yesterday'"},
    {"eventTimestamp ge '2030-02-30T00:00:00Z'", "not an ISO-8601"},
    {"eventTimestamp ge '2030-01-01T00:00:00Zjunk'", "not an ISO-8601"},
    {"eventTimestamp eq '2030-01-01T00:00:00Z'", "eventTimestamp takes ge, gt, le or lt"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' or resourceGroupName eq 'x'",
     "conditions must be joined with 'and' near 'or resourceGroupName"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' and", "a condition is missing after 'and'"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' and   ", "a condition is missing after 'and'"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' and color eq 'red'",
     "unsupported field near 'color'"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' and resourceGroupName ge 'x'",
     "only eventTimestamp takes ge, gt, le or lt near 'resourceGroupName'"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' and resourceGroupName eq 'x",
     "unterminated or too long value for near 'resourceGroupName'"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' and resourceGroupName eq ''",
     "a missing, unterminated"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' and resourceGroupName eq",
     "a missing, unterminated"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' and resourceGroupName 'x'",
     "expected eq, ge, gt, le or lt after near 'resourceGroupName'"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' and resourceGroupName equals 'x'",
     "expected eq, ge, gt, le or lt"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' and resourceGroupName ne 'x'",
     "expected eq, ge, gt, le or lt"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' and eventTimestamp ge '2030-01-02T00:00:00Z'",
     "a condition appears twice near 'eventTimestamp'"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' and eventTimestamp gt '2030-01-02T00:00:00Z'",
     "a condition appears twice"},
    {"eventTimestamp ge '2030-01-01' and eventTimestamp le '2030-01-02' and eventTimestamp lt "
     "'2030-01-03'",
     "a condition appears twice"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' and resourceGroupName eq 'a' and resourceGroupName "
     "eq 'b'",
     "a condition appears twice near 'resourceGroupName'"},
    {"eventTimestamp ge '2030-01-01' and resourceId eq 'a' and resourceUri eq 'b'",
     "a condition appears twice near 'resourceUri'"},
    {"eventTimestamp ge '2030-01-01' and levels eq 'Error' and levels eq 'Warning'",
     "a condition appears twice near 'levels'"},
    {"eventTimestamp ge '2030-01-02T00:00:00Z' and eventTimestamp le '2030-01-01T00:00:00Z'",
     "the start time is after the end time"},
    {"eventTimestamp gt '2030-01-01' and eventTimestamp lt '2030-01-01'",
     "the start time is after the end time"},
    {"eventTimestamp ge '2030-01-01T00:00:00Z' resourceGroupName eq 'x'",
     "conditions must be joined with 'and'"},
    {"'2030-01-01T00:00:00Z' le eventTimestamp", "expected a field name"},
    {"(eventTimestamp ge '2030-01-01')", "expected a field name near '(eventTimestamp"},
    {"eventTimestamp1 ge '2030-01-01'", "expected eq, ge, gt, le or lt"},
    {"eventTimestamp ge '2030-01-01' and status eq 'Failed'\n", "a control character"},
    {"eventTimestampXXXXXXXXXXXXXXXXXXXXXXXXXXXXX ge '2030-01-01'", "expected a field name"},
};

/* Runs one filter through both entry points (string and buffer) and checks they agree. */
static int
parse_both(const char *filter, struct pgcmk_activity_filter *f, struct pgcmk_err *err)
{
    struct pgcmk_activity_filter g;
    struct pgcmk_err e2;
    int rc = pgcmk_activity_filter_parse(filter, f, err);
    int rc2 = pgcmk_activity_filter_parse_buf(filter, strlen(filter), &g, &e2);

    if (rc != rc2 || memcmp(f, &g, sizeof(g)) != 0 || (rc && strcmp(err->message, e2.message)))
        fprintf(stderr, "  the two entry points disagree on: %s\n", filter);
    return rc != rc2 || memcmp(f, &g, sizeof(g)) != 0 ? -2 : rc;
}

static void
check_opt(const char *got, const char *want, const char *filter)
{
    if (strcmp(got, want ? want : "") != 0) {
        fprintf(stderr, "  %s: got '%s', want '%s'\n", filter, got, want ? want : "");
        CHECK(!"a filter field");
    } else {
        CHECK(1);
    }
}

static void
test_filter_table(void)
{
    struct pgcmk_activity_filter f;
    struct pgcmk_err err;

    for (size_t i = 0; i < PGCMK_ARRAY_LEN(good_filters); i++) {
        const struct good_filter *g = &good_filters[i];

        pgcmk_err_clear(&err);
        if (parse_both(g->filter, &f, &err) != 0) {
            fprintf(stderr, "  refused: %s\n  because: %s\n", g->filter, err.message);
            CHECK(!"a good filter is accepted");
            continue;
        }
        CHECK(f.from_ms == g->from);
        CHECK(f.to_ms == g->to);
        check_opt(f.rg, g->rg, g->filter);
        check_opt(f.resource_id, g->resource_id, g->filter);
        check_opt(f.correlation_id, g->correlation_id, g->filter);
        check_opt(f.provider, g->provider, g->filter);
        check_opt(f.caller, g->caller, g->filter);
        check_opt(f.status, g->status, g->filter);
        check_opt(f.levels, g->levels, g->filter);
    }
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(bad_filters); i++) {
        const struct bad_filter *b = &bad_filters[i];
        int ok;

        pgcmk_err_clear(&err);
        if (parse_both(b->filter, &f, &err) != -1) {
            fprintf(stderr, "  accepted: %s\n", b->filter);
            CHECK(!"a bad filter is refused");
            continue;
        }
        /* Azure's envelope: 400 BadRequest, its message, then what and the accepted shapes */
        ok = err.code == PGCMK_E_BAD_REQUEST && strcmp(err.target, "$filter") == 0 &&
             strncmp(err.message, "$filter searching parameters invalid: ", 38) == 0 &&
             strstr(err.message, b->why) != NULL && strstr(err.message, "Use: eventTimestamp ge");
        if (!ok)
            fprintf(stderr, "  %s\n  gave: %s\n  want: %s\n", b->filter, err.message, b->why);
        CHECK(ok);
        CHECK(pgcmk_err_status(err.code) == 400);
        CHECK_STR(pgcmk_err_code(err.code), "BadRequest");
    }
}

/* The buffer entry point: no NUL needed, bounded, NUL bytes and NULL refused, too long refused. */
static void
test_filter_buf(void)
{
    static const char good[] = "eventTimestamp ge '2030-01-01' and caller eq 'me'XXXX";
    struct pgcmk_activity_filter f;
    struct pgcmk_err err;
    char *big;
    size_t n;

    pgcmk_err_clear(&err);
    /* only len bytes are read: the XXXX after them is not part of the value */
    CHECK(pgcmk_activity_filter_parse_buf(good, strlen(good) - 4, &f, &err) == 0);
    CHECK_STR(f.caller, "me");
    CHECK(f.from_ms == T0);
    /* a bare value cut by len */
#define BARE "eventTimestamp ge 2030-01-01T00:00:00Z and caller eq me"
    CHECK(pgcmk_activity_filter_parse_buf(BARE "XXXX", strlen(BARE), &f, &err) == 0);
#undef BARE
    CHECK_STR(f.caller, "me");
    /* an unterminated quote at the end of the buffer */
    CHECK(pgcmk_activity_filter_parse_buf(good, 46, &f, &err) == -1);
    CHECK(strstr(err.message, "unterminated") != NULL);
    /* a NUL inside the buffer, no filter at all */
    CHECK(pgcmk_activity_filter_parse_buf("eventTimestamp ge '2030-01-01'\0x", 32, &f, &err) == -1);
    CHECK(strstr(err.message, "a control character") != NULL);
    CHECK(pgcmk_activity_filter_parse_buf(NULL, 10, &f, &err) == -1);
    CHECK(strstr(err.message, "is required") != NULL);
    CHECK(pgcmk_activity_filter_parse(NULL, &f, &err) == -1);
    CHECK(strstr(err.message, "is required") != NULL);
    CHECK(pgcmk_activity_filter_parse_buf(good, 0, &f, &err) == -1);
    /* values longer than their field, and filters longer than PGCMK_ACTIVITY_FILTER_MAX */
    big = malloc(PGCMK_ACTIVITY_FILTER_MAX + 64);
    n = (size_t)snprintf(big, PGCMK_ACTIVITY_FILTER_MAX + 64,
                         "eventTimestamp ge '2030-01-01' and resourceGroupName eq '%0*d'", 200, 7);
    CHECK(pgcmk_activity_filter_parse_buf(big, n, &f, &err) == -1);
    CHECK(strstr(err.message, "the value is too long near 'resourceGroupName'") != NULL);
    n = (size_t)snprintf(big, PGCMK_ACTIVITY_FILTER_MAX + 64,
                         "eventTimestamp ge '2030-01-01' and levels eq '%0*d'", 100, 7);
    CHECK(pgcmk_activity_filter_parse_buf(big, n, &f, &err) == -1);
    CHECK(strstr(err.message, "the value is too long near 'levels'") != NULL);
    n = (size_t)snprintf(big, PGCMK_ACTIVITY_FILTER_MAX + 64,
                         "eventTimestamp ge '2030-01-01' and resourceId eq '%0*d'", 1023, 7);
    CHECK(pgcmk_activity_filter_parse_buf(big, n, &f, &err) == 0); /* 1023 bytes fit */
    CHECK(strlen(f.resource_id) == 1023);
    memset(big, ' ', PGCMK_ACTIVITY_FILTER_MAX + 1);
    memcpy(big, "eventTimestamp ge '2030-01-01'", 30);
    CHECK(pgcmk_activity_filter_parse_buf(big, PGCMK_ACTIVITY_FILTER_MAX, &f, &err) == 0);
    CHECK(pgcmk_activity_filter_parse_buf(big, PGCMK_ACTIVITY_FILTER_MAX + 1, &f, &err) == -1);
    CHECK(strstr(err.message, "the filter is too long") != NULL);
    /* a bare value made of blanks and words: read once, kept whole */
    n = (size_t)snprintf(big, PGCMK_ACTIVITY_FILTER_MAX,
                         "eventTimestamp ge '2030-01-01' and caller eq a");
    memset(big + n, ' ', 500);
    big[n + 500] = 'b';
    CHECK(pgcmk_activity_filter_parse_buf(big, n + 501, &f, &err) == -1); /* 502 > caller[128] */
    CHECK(pgcmk_activity_filter_parse_buf(big, n + 100, &f, &err) == 0);  /* trailing blanks */
    CHECK_STR(f.caller, "a");
    free(big);
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
    struct pgcmk_activity a = {WIDGET,      "Microsoft.Test/widgets/poke/action",
                               "Succeeded", "Informational",
                               NULL,        "inside",
                               NULL,        NULL,
                               0,           NULL,
                               NULL};

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
    struct pgcmk_resp rs = {.status = 202};

    pgcmk_req_init(&rq, &test_cfg, "POST",
                   "/subscriptions/" SUB "/providers/Microsoft.KeyVault/locations/eastus/"
                   "deletedVaults/kv1/purge?api-version=2023-07-01",
                   "localhost:8443", NULL, 0);
    rq.route = &dummy_route;
    snprintf(rq.principal, sizeof(rq.principal), "%s", PGCMK_ADMIN_OBJECT_ID);
    snprintf(rq.correlation_id, sizeof(rq.correlation_id), "corr-post-1");
    pgcmk_monitor_record_request(&rq, &rs);
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
    {
        /* the refusal's code and message: properties.statusMessage holds the error body as a
         * string (as Azure's does), the description names both */
        const char *sm = str_at(json_object_get(e, "properties"), "statusMessage");
        json_t *body = sm ? json_loads(sm, 0, NULL) : NULL, *be = json_object_get(body, "error");
        const char *code = str_at(be, "code"), *msg = str_at(be, "message");
        char want[1200];

        CHECK(code != NULL && *code != '\0' && strcmp(code, "BadRequest") != 0);
        CHECK(msg != NULL && strstr(msg, "bad name") != NULL);
        snprintf(want, sizeof(want), "%s: %s", code ?: "?", msg ?: "?");
        CHECK_STR(str_at(e, "description"), want);
        CHECK_STR(str_at(json_object_get(e, "properties"), "statusCode"), "BadRequest");
        json_decref(body);
    }
    {
        /* the BeginRequest of the same write carries no error */
        json_t *bj = activity("%20and%20correlationId%20eq%20%27corr-bad-1%27");
        json_t *bv = json_object_get(bj, "value");
        json_t *be = find_op(bv, "Microsoft.Test/widgets/write", "Started");

        CHECK(json_array_size(bv) == 2);
        CHECK(be != NULL &&
              json_object_get(json_object_get(be, "properties"), "statusMessage") == NULL);
        CHECK_STR(str_at(be, "description"), "");
        json_decref(bj);
    }
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
    struct pgcmk_resp rs = {.status = 404};
    json_t *j;
    size_t before;

    j = activity(NULL);
    before = json_array_size(json_object_get(j, "value"));
    json_decref(j);

    /* not routed, a vault data-plane request, a token request, a 401 */
    pgcmk_req_init(&rq, &test_cfg, "PUT", "/subscriptions/" SUB "/nowhere/x", "localhost", NULL, 0);
    pgcmk_monitor_record_request(&rq, &rs);
    pgcmk_monitor_record_request(&rq, NULL);
    pgcmk_req_release(&rq);
    rs.status = 200;
    pgcmk_monitor_record_request(NULL, &rs);
    CHECK(call("POST", "/" PGCMK_TENANT_ID "/oauth2/v2.0/token", "{}", NULL) >= 200);
    CHECK(call("PUT", "/subscriptions/" SUB "/resourcegroups?api-version=2021-04-01", "{}", NULL) >=
          400);
    j = activity(NULL);
    CHECK(json_array_size(json_object_get(j, "value")) == before);
    json_decref(j);
}

/* pgcmk_activity_add with an error: statusMessage, the description, long messages cut whole. */
static void
test_activity_errors(void)
{
#define ERR_W "/subscriptions/" SUB "/resourceGroups/errs/providers/Microsoft.Test/widgets/e1"
    struct pgcmk_activity a;
    struct pgcmk_err err;
    char *longmsg = malloc(6001);
    json_t *j, *v, *e, *body;
    const char *sm, *desc;
    size_t i;

    pgcmk_err_clear(&err);
    memset(&a, 0, sizeof(a));
    a.resource_id = ERR_W;
    a.operation = "Microsoft.Test/widgets/write";
    a.status = "Failed";
    a.level = "Error";
    a.error_code = "WidgetTooBig";
    a.error_message = "The widget is too big.";
    CHECK(pgcmk_activity_add(NULL, &a, &err) == 0);
    a.operation = "Microsoft.Test/widgets/delete";
    a.description = "Deleting the widget failed.";
    a.error_code = "Conflict";
    a.error_message = "";
    CHECK(pgcmk_activity_add(NULL, &a, &err) == 0);
    /* 3000 two-byte characters: cut at 4096 bytes, on a character boundary */
    for (i = 0; i < 6000; i += 2)
        longmsg[i] = (char)0xC3, longmsg[i + 1] = (char)0xA9; /* U+00E9 */
    longmsg[6000] = '\0';
    a.operation = "Microsoft.Test/widgets/poke/action";
    a.description = NULL;
    a.error_code = "Long";
    a.error_message = longmsg;
    CHECK(pgcmk_activity_add(NULL, &a, &err) == 0);

    j = activity("%20and%20resourceId%20eq%20%27" ERR_W "%27");
    v = json_object_get(j, "value");
    CHECK(json_array_size(v) == 3);

    e = find_op(v, "Microsoft.Test/widgets/write", "Failed");
    CHECK_STR(str_at(e, "description"), "WidgetTooBig: The widget is too big.");
    sm = str_at(json_object_get(e, "properties"), "statusMessage");
    CHECK_STR(sm, "{\"error\":{\"code\":\"WidgetTooBig\",\"message\":\"The widget is too big.\"}}");

    e = find_op(v, "Microsoft.Test/widgets/delete", "Failed"); /* a description is kept */
    CHECK_STR(str_at(e, "description"), "Deleting the widget failed.");
    sm = str_at(json_object_get(e, "properties"), "statusMessage");
    CHECK_STR(sm, "{\"error\":{\"code\":\"Conflict\",\"message\":\"\"}}");

    e = find_op(v, "Microsoft.Test/widgets/poke/action", "Failed");
    sm = str_at(json_object_get(e, "properties"), "statusMessage");
    body = sm ? json_loads(sm, 0, NULL) : NULL;
    sm = str_at(json_object_get(body, "error"), "message");
    CHECK(sm != NULL && strlen(sm) == 4096 && strncmp(sm, longmsg, 4096) == 0);
    desc = str_at(e, "description");
    CHECK(desc != NULL && strlen(desc) == 6 + 4096 && strncmp(desc, "Long: ", 6) == 0);
    json_decref(body);
    json_decref(j);
    free(longmsg);
#undef ERR_W
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
    test_filter_table();
    test_filter_buf();

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
    test_activity_errors();

    pgcmk_router_reset();
    t_store_close();
    return t_done("test_monitor");
}
