/* monitor.h - Resource Health and the Activity Log (azure-api.md section 8).
 *
 * Providers report availability changes and notable operations here; ARM writes are recorded by
 * the request pipeline. Both are stored (tables health_history and activity_log) and served under
 * {resourceId}/providers/Microsoft.ResourceHealth/availabilityStatuses[/current] and
 * /subscriptions/{s}/providers/Microsoft.Insights/eventtypes/management/values. Timestamps come
 * from the virtual clock. */
#ifndef PGCMK_MONITOR_H
#define PGCMK_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include "pgcmk/err.h"
#include "pgcmk/http.h"
#include "pgcmk/store.h"

/* Availability states of Resource Health. */
#define PGCMK_HEALTH_AVAILABLE   "Available"
#define PGCMK_HEALTH_UNAVAILABLE "Unavailable"
#define PGCMK_HEALTH_DEGRADED    "Degraded"
#define PGCMK_HEALTH_UNKNOWN     "Unknown"

/* Records a new availability status for resource_id (a no-op when the state and title are the
 * same as the current one). reason_type: "Customer Initiated", "Platform Initiated", "Unplanned".
 * Uses its own transaction unless db is inside one (pass the caller's db then). */
int pgcmk_health_set(struct pgcmk_db *db, const char *resource_id, const char *state,
                     const char *title, const char *summary, const char *reason_type,
                     struct pgcmk_err *err) PGCMK_WUR;
/* Forgets a deleted resource's history. */
int pgcmk_health_forget(struct pgcmk_db *db, const char *resource_id, struct pgcmk_err *err);

/* One Activity Log entry. `operation` is the operationName value
 * ("Microsoft.DBforPostgreSQL/serverGroupsv2/write"), `status` Started|Accepted|Succeeded|Failed,
 * `level` Informational|Warning|Error|Critical, `caller` an object id or NULL (the emulator),
 * `description` free text, `correlation_id` NULL for a new one, `http_status` 0 when none.
 * `error_code`/`error_message` (NULL when none) name why an operation failed: the entry shows
 * them as Azure does, properties.statusMessage = "{\"error\":{\"code\":...,\"message\":...}}",
 * and as the description ("code: message") when `description` is empty. */
struct pgcmk_activity {
    const char *resource_id;
    const char *operation;
    const char *status;
    const char *level;
    const char *caller;
    const char *description;
    const char *correlation_id;
    const char *method; /* HTTP method, or NULL */
    int http_status;
    const char *error_code;
    const char *error_message;
};

int pgcmk_activity_add(struct pgcmk_db *db, const struct pgcmk_activity *a,
                       struct pgcmk_err *err) PGCMK_WUR;

/* Called by the request pipeline after every ARM-plane PUT/PATCH/DELETE/POST on a resource id
 * with the final answer (writes made through ARM appear in the log; a refused write's entry
 * carries the code and message of the error in rs's body). Never fails the request. */
void pgcmk_monitor_record_request(const struct pgcmk_req *rq, const struct pgcmk_resp *rs);

/* Adds the routes. */
void pgcmk_monitor_init(void);

/* A parsed Activity Log $filter: "eventTimestamp ge '<time>' [and eventTimestamp le '<time>']
 * [and resourceGroupName|resourceId|resourceUri|correlationId|resourceProvider|caller|status|
 * levels|eventChannels eq '<value>']" (gt and lt too, exclusive). Keywords are case-insensitive;
 * values may be quoted ('' escapes a quote) or bare (as the az CLI sends times); times without a
 * zone are UTC. A start time is required (Azure answers 400 without one). Empty strings mean
 * "not filtered". */
struct pgcmk_activity_filter {
    int64_t from_ms; /* inclusive */
    int64_t to_ms;   /* inclusive; INT64_MAX when not given */
    char rg[96];
    char resource_id[1024];
    char correlation_id[80];
    char provider[128];
    char caller[128];
    char status[32];
    char levels[96]; /* ",critical,error," (lower case, comma-wrapped) */
};

/* Longest $filter accepted, in bytes (longer ones are refused, never truncated). */
#define PGCMK_ACTIVITY_FILTER_MAX 4096

/* Parses len bytes of buf (no NUL needed; NULL = no filter). A pure function: no database, clock
 * or global state, reads each byte at most a bounded number of times (src/monitor/filter.c).
 * 0 with *out, or -1 with err: 400 BadRequest, target "$filter", Azure's "$filter searching
 * parameters invalid" followed by what is wrong and the accepted shapes. */
int pgcmk_activity_filter_parse_buf(const char *buf, size_t len, struct pgcmk_activity_filter *out,
                                    struct pgcmk_err *err) PGCMK_WUR;
/* The same over a NUL-terminated string (NULL = no filter). */
int pgcmk_activity_filter_parse(const char *filter, struct pgcmk_activity_filter *out,
                                struct pgcmk_err *err) PGCMK_WUR;

/* .NET ticks (100 ns since 0001-01-01T00:00:00Z) of a time in ms since the epoch, as in
 * EventData ids ({resourceId}/events/{eventDataId}/ticks/{ticks}). */
int64_t pgcmk_monitor_ticks(int64_t ms);

#endif
