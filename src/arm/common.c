/* common.c - what every ARM answer shares: systemData, ETag preconditions, paged lists. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/wellknown.h"

/* Azure's public regions, as ARM names them. */
static const char *const arm_locations[] = {"eastus",           "eastus2",
                                            "westus",           "westus2",
                                            "westus3",          "centralus",
                                            "northcentralus",   "southcentralus",
                                            "westcentralus",    "canadacentral",
                                            "canadaeast",       "brazilsouth",
                                            "northeurope",      "westeurope",
                                            "uksouth",          "ukwest",
                                            "francecentral",    "germanywestcentral",
                                            "norwayeast",       "swedencentral",
                                            "switzerlandnorth", "polandcentral",
                                            "italynorth",       "spaincentral",
                                            "eastasia",         "southeastasia",
                                            "japaneast",        "japanwest",
                                            "koreacentral",     "koreasouth",
                                            "australiaeast",    "australiasoutheast",
                                            "australiacentral", "centralindia",
                                            "southindia",       "westindia",
                                            "uaenorth",         "southafricanorth",
                                            "qatarcentral",     "israelcentral",
                                            "mexicocentral",    NULL};

int
pgcmk_arm_location_ok(const char *loc)
{
    char norm[64];
    size_t n = 0;

    for (const char *p = loc ? loc : ""; *p && n + 1 < sizeof(norm); p++)
        if (*p != ' ')
            norm[n++] = (char)tolower((unsigned char)*p);
    norm[n] = '\0';
    for (int i = 0; arm_locations[i]; i++)
        if (strcmp(norm, arm_locations[i]) == 0)
            return 1;
    return 0;
}

static char arm_locations_joined[1024];

static void
arm_locations_build(void)
{
    size_t n = 0;

    for (int i = 0; arm_locations[i] && n < sizeof(arm_locations_joined); i++)
        n += (size_t)snprintf(arm_locations_joined + n, sizeof(arm_locations_joined) - n, "%s%s",
                              i ? "," : "", arm_locations[i]);
}

const char *
pgcmk_arm_locations_text(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, arm_locations_build);
    return arm_locations_joined;
}

json_t *
pgcmk_arm_system_data(const struct pgcmk_req *rq, const json_t *previous)
{
    char now[PGCMK_TIME_LEN];
    const char *who = rq->principal[0] ? rq->principal : PGCMK_ADMIN_OBJECT_ID;
    json_t *sd;

    pgcmk_time_format(pgcmk_clock_now(), now);
    if (json_is_object(previous) && json_object_get(previous, "createdAt")) {
        sd = json_deep_copy(previous);
    } else {
        sd = json_pack("{s:s, s:s, s:s}", "createdBy", who, "createdByType", "Application",
                       "createdAt", now);
    }
    json_object_set_new(sd, "lastModifiedBy", json_string(who));
    json_object_set_new(sd, "lastModifiedByType", json_string("Application"));
    json_object_set_new(sd, "lastModifiedAt", json_string(now));
    return sd;
}

/* An ETag header value matches when equal with or without quotes and a W/ prefix. */
static int
etag_matches(const char *header, const char *etag)
{
    char a[128], b[128];
    const char *h = header;

    while (*h == ' ')
        h++;
    if (strncmp(h, "W/", 2) == 0)
        h += 2;
    snprintf(a, sizeof(a), "%s", h);
    if (a[0] == '"' && strlen(a) >= 2 && a[strlen(a) - 1] == '"') {
        memmove(a, a + 1, strlen(a));
        a[strlen(a) - 1] = '\0';
    }
    snprintf(b, sizeof(b), "%s", strncmp(etag, "W/", 2) == 0 ? etag + 2 : etag);
    if (b[0] == '"' && strlen(b) >= 2) {
        memmove(b, b + 1, strlen(b));
        b[strlen(b) - 1] = '\0';
    }
    return strcmp(a, b) == 0;
}

int
pgcmk_arm_check_preconditions(const struct pgcmk_req *rq, const char *etag, struct pgcmk_err *err)
{
    const char *im = pgcmk_req_header(rq, "If-Match");
    const char *inm = pgcmk_req_header(rq, "If-None-Match");

    if (im && *im) {
        if (etag == NULL)
            return pgcmk_err_set(err, PGCMK_E_PRECONDITION_FAILED, NULL,
                                 "The condition specified using HTTP conditional header(s) is not "
                                 "met: the resource does not exist.");
        if (strcmp(im, "*") != 0 && !etag_matches(im, etag))
            return pgcmk_err_set(err, PGCMK_E_PRECONDITION_FAILED, NULL,
                                 "The condition specified using HTTP conditional header(s) is not "
                                 "met: the ETag does not match.");
    }
    if (inm && *inm && etag != NULL && (strcmp(inm, "*") == 0 || etag_matches(inm, etag)))
        return pgcmk_err_set(err, PGCMK_E_PRECONDITION_FAILED, NULL,
                             "The condition specified using HTTP conditional header(s) is not "
                             "met: the resource already exists.");
    return 0;
}

int
pgcmk_arm_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, json_t *items, struct pgcmk_err *err)
{
    const char *skip = pgcmk_req_query(rq, "$skiptoken");
    const char *top = pgcmk_req_query(rq, "$top");
    long start = 0, page = rq->cfg ? rq->cfg->page_size : 100, total = (long)json_array_size(items);
    json_t *value = json_array(), *out;
    char *end;

    if (skip && *skip) {
        errno = 0;
        start = strtol(skip, &end, 10);
        if (*end || start < 0 || errno == ERANGE || !isdigit((unsigned char)*skip)) {
            json_decref(items);
            json_decref(value);
            return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "$skiptoken",
                                 "The skip token '%.64s' is not valid.", skip);
        }
    }
    if (top && *top) {
        long t = strtol(top, &end, 10);

        if (*end || t < 1) {
            json_decref(items);
            json_decref(value);
            return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "$top",
                                 "The value '%.32s' of query parameter '$top' is not valid.", top);
        }
        if (t < page)
            page = t;
    }
    if (start > total)
        start = total;
    for (long i = start; i < total && i < start + page; i++)
        json_array_append(value, json_array_get(items, (size_t)i));
    out = json_pack("{s:o}", "value", value);
    if (start + page < total) {
        char url[2048], num[32];
        char *base = pgcmk_req_base_url(rq);
        size_t n = (size_t)snprintf(url, sizeof(url), "%s%s", base, rq->path);

        free(base);
        for (int i = 0; i < rq->n_query; i++)
            if (strcasecmp(rq->query[i].key, "$skiptoken") != 0)
                n = pgcmk_query_append(url, sizeof(url), n, rq->query[i].key, rq->query[i].value);
        snprintf(num, sizeof(num), "%ld", start + page);
        pgcmk_query_append(url, sizeof(url), n, "$skiptoken", num);
        json_object_set_new(out, "nextLink", json_string(url));
    }
    json_decref(items);
    pgcmk_resp_json(rs, 200, out);
    return 0;
}

void
pgcmk_arm_send_stored(struct pgcmk_resp *rs, int status, const char *json_text)
{
    pgcmk_resp_text(rs, status, "application/json; charset=utf-8", json_text, strlen(json_text));
}
