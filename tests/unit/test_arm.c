/* test_arm.c - resource ids, api-version checks, the subscription check, ETag preconditions,
 * paged lists, systemData; then resource groups (and one generic type) end to end through
 * pgcmk_http_dispatch on a store file in WAL mode. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/core.h"
#include "pgcmk/err.h"
#include "pgcmk/http.h"
#include "pgcmk/store.h"
#include "pgcmk/wellknown.h"

#include "t.h"
#include "t_store.h"

#define SUB     PGCMK_SUBSCRIPTION_ID
#define OTHER   "11111111-2222-4333-8444-555555555555"
#define AV      "api-version=2021-04-01"
#define RGS_URL "/subscriptions/" SUB "/resourcegroups"

static struct pgcmk_cfg test_cfg;

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *
resp_hdr(const struct pgcmk_resp *rs, const char *name)
{
    for (int i = 0; i < rs->n_headers; i++)
        if (strcasecmp(rs->headers[i].key, name) == 0)
            return rs->headers[i].value;
    return NULL;
}

static json_t *
resp_json(const struct pgcmk_resp *rs)
{
    return rs->body ? json_loadb(rs->body, rs->body_len, 0, NULL) : NULL;
}

static const char *
err_code_of(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

static const char *
str_at(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

/* A request as the server would build it; api_version filled like dispatch does. */
static void
req(struct pgcmk_req *rq, const char *method, const char *url)
{
    pgcmk_req_init(rq, &test_cfg, method, url, "localhost:8443", NULL, 0);
    pgcmk_req_add_header(rq, "Host", "localhost:8443");
    rq->api_version = pgcmk_req_query(rq, "api-version");
}

/* Runs one request through the pipeline: the status; the body as JSON in *out (may be NULL);
 * the response in *keep when given (the caller releases it). */
static int
call(const char *method, const char *url, const char *body, json_t **out, struct pgcmk_resp *keep)
{
    struct pgcmk_req rq;
    struct pgcmk_resp rs;
    int status;

    memset(&rs, 0, sizeof(rs));
    pgcmk_req_init(&rq, &test_cfg, method, url, "localhost:8443", body, body ? strlen(body) : 0);
    pgcmk_req_add_header(&rq, "Host", "localhost:8443");
    if (body)
        pgcmk_req_add_header(&rq, "Content-Type", "application/json");
    pgcmk_http_dispatch(&rq, &rs);
    status = rs.status;
    if (out)
        *out = resp_json(&rs);
    CHECK(resp_hdr(&rs, "x-ms-request-id") != NULL);
    if (keep)
        *keep = rs;
    else
        pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);
    return status;
}

/* ---- resource ids ------------------------------------------------------------------------- */

static void
test_id_parse(void)
{
    struct pgcmk_arm_id id;
    struct pgcmk_err err;
    char type[256];
    char *text;

    pgcmk_err_clear(&err);
    CHECK(pgcmk_arm_id_parse("/subscriptions/" SUB
                             "/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1",
                             &id, &err) == 0);
    CHECK_STR(id.sub, SUB);
    CHECK_STR(id.rg, "rg1");
    CHECK_STR(id.ns, "Microsoft.KeyVault");
    CHECK(id.n_types == 1);
    CHECK_STR(id.types[0], "vaults");
    CHECK_STR(id.names[0], "kv1");
    pgcmk_arm_id_type(&id, type, sizeof(type));
    CHECK_STR(type, "Microsoft.KeyVault/vaults");

    /* keywords in any case; names and types keep theirs */
    CHECK(pgcmk_arm_id_parse("/SUBSCRIPTIONS/Sub-1/RESOURCEGROUPS/My.Rg/PROVIDERS/"
                             "microsoft.keyvault/VAULTS/Kv1/Keys/K-1",
                             &id, &err) == 0);
    CHECK_STR(id.sub, "Sub-1");
    CHECK_STR(id.rg, "My.Rg");
    CHECK_STR(id.ns, "microsoft.keyvault");
    CHECK(id.n_types == 2);
    CHECK_STR(id.types[0], "VAULTS");
    CHECK_STR(id.names[0], "Kv1");
    CHECK_STR(id.types[1], "Keys");
    CHECK_STR(id.names[1], "K-1");
    pgcmk_arm_id_type(&id, type, sizeof(type));
    CHECK_STR(type, "microsoft.keyvault/VAULTS/Keys");
    text = pgcmk_arm_id_format(&id);
    CHECK_STR(text, "/subscriptions/Sub-1/resourceGroups/My.Rg/providers/microsoft.keyvault/"
                    "VAULTS/Kv1/Keys/K-1");
    free(text);
    CHECK(pgcmk_arm_id_parse("/subscriptions/s/resourcegroups/r/providers/n/a/1", &id, NULL) == 0);

    /* the deepest nesting allowed */
    CHECK(pgcmk_arm_id_parse("/subscriptions/s/resourceGroups/r/providers/N/a/1/b/2/c/3/d/4", &id,
                             &err) == 0);
    CHECK(id.n_types == PGCMK_ID_MAX_TYPES);
    CHECK_STR(id.types[3], "d");
    CHECK_STR(id.names[3], "4");
    pgcmk_arm_id_type(&id, type, sizeof(type));
    CHECK_STR(type, "N/a/b/c/d");
    /* a small buffer truncates the type, NUL-terminated */
    {
        char small[6];

        pgcmk_arm_id_type(&id, small, sizeof(small));
        CHECK_STR(small, "N/a/b");
        pgcmk_arm_id_type(&id, small, 2);
        CHECK_STR(small, "N");
    }

    /* scopes: a subscription and a group */
    CHECK(pgcmk_arm_id_parse("/subscriptions/s", &id, &err) == 0);
    CHECK_STR(id.sub, "s");
    CHECK(id.rg[0] == '\0' && id.ns[0] == '\0' && id.n_types == 0);
    CHECK(pgcmk_arm_id_parse("/subscriptions/s/resourceGroups/g", &id, &err) == 0);
    CHECK_STR(id.rg, "g");
    text = pgcmk_arm_id_format(&id);
    CHECK_STR(text, "/subscriptions/s/resourceGroups/g");
    free(text);

    /* failures: 400 with the id in the message */
    {
        static const char *const bad[] = {
            "",
            "/",
            "garbage",
            "subscriptions/s/resourceGroups/g/providers/N/t/n",
            "/subscriptions",
            "/subscriptions/",
            "/subscriptions//resourceGroups/g",
            "/subscription/s",
            "/tenants/t",
            "/subscriptions/s/",
            "/subscriptions/s/resourceGroups",
            "/subscriptions/s/resourceGroups/",
            "/subscriptions/s/groups/g",
            "/subscriptions/s/resourceGroups/g/",
            "/subscriptions/s/resourceGroups/g/providers",
            "/subscriptions/s/resourceGroups/g/providers/",
            "/subscriptions/s/resourceGroups/g/providers/N",
            "/subscriptions/s/resourceGroups/g/providers/N/",
            "/subscriptions/s/resourceGroups/g/providers/N/vaults",
            "/subscriptions/s/resourceGroups/g/providers/N/vaults/",
            "/subscriptions/s/resourceGroups/g/providers/N/vaults/v/",
            "/subscriptions/s/resourceGroups/g/providers/N/vaults/v/keys",
            "/subscriptions/s/resourceGroups/g/providers/N/vaults//keys/k",
            "/subscriptions/s/resourceGroups/g/providers/N/a/1/b/2/c/3/d/4/e/5",
            "/subscriptions/s/resourceGroups/g/resources/x",
            "//subscriptions/s",
        };
        for (size_t i = 0; i < PGCMK_ARRAY_LEN(bad); i++) {
            pgcmk_err_clear(&err);
            int rc = pgcmk_arm_id_parse(bad[i], &id, &err);

            CHECK(rc == -1);
            CHECK(err.code == PGCMK_E_BAD_REQUEST);
            CHECK(pgcmk_err_status(err.code) == 400);
            if (rc != -1)
                fprintf(stderr, "  id_parse accepted '%s'\n", bad[i]);
        }
        CHECK(pgcmk_arm_id_parse("/subscriptions/s/resourceGroups/g/providers/N", &id, &err) == -1);
        CHECK(strstr(err.message, "/subscriptions/s/resourceGroups/g/providers/N") != NULL);
        CHECK(pgcmk_arm_id_parse("nonsense", &id, NULL) == -1); /* NULL err is fine */
    }

    /* segments longer than the fields: refused, not cut */
    {
        char buf[512];

        snprintf(buf, sizeof(buf), "/subscriptions/%0100d", 7);
        CHECK(pgcmk_arm_id_parse(buf, &id, &err) == -1);
        snprintf(buf, sizeof(buf), "/subscriptions/s/resourceGroups/%0100d", 7);
        CHECK(pgcmk_arm_id_parse(buf, &id, &err) == -1);
        snprintf(buf, sizeof(buf), "/subscriptions/s/resourceGroups/g/providers/N/t/%0300d", 7);
        CHECK(pgcmk_arm_id_parse(buf, &id, &err) == -1);
        snprintf(buf, sizeof(buf), "/subscriptions/s/resourceGroups/g/providers/N/t/%0127d", 7);
        CHECK(pgcmk_arm_id_parse(buf, &id, &err) == 0);
        CHECK(strlen(id.names[0]) == 127);
    }
}

/* parse -> format -> parse gives the same id and the canonical text. */
static void
test_id_round_trip(void)
{
    static const char *const ids[][2] = {
        {"/subscriptions/" SUB "/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1",
         "/subscriptions/" SUB "/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1"},
        {"/SUBSCRIPTIONS/s/resourcegroups/RG/Providers/Microsoft.KeyVault/vaults/v/keys/k",
         "/subscriptions/s/resourceGroups/RG/providers/Microsoft.KeyVault/vaults/v/keys/k"},
        {"/subscriptions/s/resourceGroups/g/providers/N/a/1/b/2/c/3/d/4",
         "/subscriptions/s/resourceGroups/g/providers/N/a/1/b/2/c/3/d/4"},
        {"/subscriptions/s/resourceGroups/g(1)/providers/Microsoft.DBforPostgreSQL/"
         "flexibleServers/pg-1/databases/db_1",
         "/subscriptions/s/resourceGroups/g(1)/providers/Microsoft.DBforPostgreSQL/"
         "flexibleServers/pg-1/databases/db_1"},
    };

    for (size_t i = 0; i < PGCMK_ARRAY_LEN(ids); i++) {
        struct pgcmk_arm_id a, b;
        char *text;

        CHECK(pgcmk_arm_id_parse(ids[i][0], &a, NULL) == 0);
        text = pgcmk_arm_id_format(&a);
        CHECK_STR(text, ids[i][1]);
        CHECK(pgcmk_arm_id_parse(text, &b, NULL) == 0);
        CHECK(memcmp(&a, &b, sizeof(a)) == 0);
        free(text);
    }

    /* the largest id the parser takes comes back whole from the formatter */
    {
        struct pgcmk_arm_id a, b;
        char buf[2048], *text;
        size_t n;

        n = (size_t)snprintf(buf, sizeof(buf),
                             "/subscriptions/%063d/resourceGroups/%095d"
                             "/providers/%063d",
                             1, 2, 3);
        for (int k = 0; k < PGCMK_ID_MAX_TYPES; k++)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "/%063d/%0127d", k, k);
        CHECK(pgcmk_arm_id_parse(buf, &a, NULL) == 0);
        text = pgcmk_arm_id_format(&a);
        CHECK(strlen(text) == n);
        CHECK_STR(text, buf);
        if (strlen(text) != n)
            fprintf(stderr, "  id_format cut a %zu-character id to %zu\n", n, strlen(text));
        CHECK(pgcmk_arm_id_parse(text, &b, NULL) == 0 && memcmp(&a, &b, sizeof(a)) == 0);
        free(text);
    }
}

/* The formatter writes subscription-level resources (rg empty) as /subscriptions/{s}/providers/...;
 * the parser should take back what the formatter writes. */
static void
test_id_subscription_level(void)
{
    struct pgcmk_arm_id a, b;
    char *text;

    memset(&a, 0, sizeof(a));
    snprintf(a.sub, sizeof(a.sub), "%s", SUB);
    snprintf(a.ns, sizeof(a.ns), "Microsoft.Test");
    a.n_types = 1;
    snprintf(a.types[0], sizeof(a.types[0]), "widgets");
    snprintf(a.names[0], sizeof(a.names[0]), "w1");
    text = pgcmk_arm_id_format(&a);
    CHECK_STR(text, "/subscriptions/" SUB "/providers/Microsoft.Test/widgets/w1");
    CHECK(pgcmk_arm_id_parse(text, &b, NULL) == 0);
    if (pgcmk_arm_id_parse(text, &b, NULL) == 0)
        CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    else
        fprintf(stderr, "  id_parse refused the formatter's '%s'\n", text);
    free(text);
}

/* ---- api-versions ------------------------------------------------------------------------- */

static void
test_versions(void)
{
    static const char *const versions[] = {"2021-01-01", "2022-07-01-preview", "2023-02-01", NULL};
    static const char *const none[] = {NULL};
    struct pgcmk_req rq;
    struct pgcmk_resp rs;
    struct pgcmk_err err;

    CHECK(pgcmk_arm_version_listed("2021-01-01", versions));
    CHECK(pgcmk_arm_version_listed("2023-02-01", versions));
    CHECK(pgcmk_arm_version_listed("2022-07-01-PREVIEW", versions));
    CHECK(!pgcmk_arm_version_listed("2022-07-01", versions));
    CHECK(!pgcmk_arm_version_listed("", versions));
    CHECK(!pgcmk_arm_version_listed("2023-02-01 ", versions));
    CHECK(!pgcmk_arm_version_listed("2023-02-01", none));

    /* a provider's type */
    req(&rq, "GET", "/x?api-version=2023-02-01");
    CHECK(pgcmk_arm_check_version(&rq, "Microsoft.KeyVault/vaults", versions, &err) == 0);
    pgcmk_req_release(&rq);

    req(&rq, "GET", "/x?api-version=2099-01-01");
    pgcmk_err_clear(&err);
    CHECK(pgcmk_arm_check_version(&rq, "Microsoft.KeyVault/vaults", versions, &err) == -1);
    CHECK(err.code == PGCMK_E_NO_PROVIDER);
    CHECK(pgcmk_err_status(err.code) == 400);
    CHECK_STR(pgcmk_err_code(err.code), "NoRegisteredProviderFound");
    CHECK(strstr(err.message, "'2023-02-01, 2022-07-01-preview, 2021-01-01'") != NULL);
    CHECK(strstr(err.message, "2099-01-01") != NULL);
    CHECK(strstr(err.message, "type 'vaults'") != NULL);
    pgcmk_req_release(&rq);

    req(&rq, "GET", "/x");
    pgcmk_err_clear(&err);
    CHECK(pgcmk_arm_check_version(&rq, "Microsoft.KeyVault/vaults", versions, &err) == -1);
    CHECK(err.code == PGCMK_E_MISSING_API_VERSION);
    pgcmk_req_release(&rq);

    /* Microsoft.Resources: InvalidApiVersionParameter and x-ms-failure-cause: gateway */
    req(&rq, "GET", "/x?api-version=2099-01-01");
    memset(&rs, 0, sizeof(rs));
    pgcmk_err_clear(&err);
    CHECK(pgcmk_arm_check_resources_version(&rq, &rs, &err) == -1);
    CHECK(err.code == PGCMK_E_INVALID_API_VERSION);
    CHECK_STR(pgcmk_err_code(err.code), "InvalidApiVersionParameter");
    CHECK(strstr(err.message, "'2099-01-01'") != NULL);
    CHECK(strstr(err.message, "2025-04-01,2024-11-01") != NULL); /* newest first */
    CHECK(strstr(err.message, "2014-04-01'") != NULL);
    CHECK_STR(resp_hdr(&rs, "x-ms-failure-cause"), "gateway");
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);

    req(&rq, "GET", "/x?" AV);
    memset(&rs, 0, sizeof(rs));
    CHECK(pgcmk_arm_check_resources_version(&rq, &rs, &err) == 0);
    CHECK(resp_hdr(&rs, "x-ms-failure-cause") == NULL);
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);

    req(&rq, "GET", "/x?api-version=");
    memset(&rs, 0, sizeof(rs));
    pgcmk_err_clear(&err);
    CHECK(pgcmk_arm_check_resources_version(&rq, &rs, &err) == -1);
    CHECK(err.code == PGCMK_E_MISSING_API_VERSION);
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);
}

/* ---- subscriptions ------------------------------------------------------------------------ */

static void
test_check_sub(void)
{
    struct pgcmk_err err;

    CHECK(pgcmk_arm_check_sub(SUB, &err) == 0);
    CHECK(pgcmk_arm_check_sub("00000000-0000-4000-8000-000000000001", &err) == 0);
    {
        char upper[40];

        snprintf(upper, sizeof(upper), "%s", SUB);
        for (char *p = upper; *p; p++)
            if (*p >= 'a' && *p <= 'f')
                *p = (char)(*p - 32);
        CHECK(pgcmk_arm_check_sub(upper, &err) == 0); /* GUIDs compare case-insensitively */
    }

    pgcmk_err_clear(&err);
    CHECK(pgcmk_arm_check_sub(OTHER, &err) == -1);
    CHECK(err.code == PGCMK_E_SUBSCRIPTION_NOT_FOUND);
    CHECK(pgcmk_err_status(err.code) == 404);
    CHECK(strstr(err.message, OTHER) != NULL);

    {
        static const char *const bad[] = {"",
                                          "not-a-guid",
                                          "00000000-0000-4000-8000-00000000000",
                                          "00000000-0000-4000-8000-0000000000011",
                                          "00000000000040008000000000000001",
                                          "00000000-0000-4000-8000_000000000001",
                                          "0000000g-0000-4000-8000-000000000001",
                                          "{00000000-0000-4000-8000-000000000001}",
                                          " 00000000-0000-4000-8000-00000000001"};

        for (size_t i = 0; i < PGCMK_ARRAY_LEN(bad); i++) {
            pgcmk_err_clear(&err);
            CHECK(pgcmk_arm_check_sub(bad[i], &err) == -1);
            CHECK(err.code == PGCMK_E_INVALID_SUBSCRIPTION_ID);
        }
    }
    CHECK(pgcmk_arm_check_sub("x", NULL) == -1);
}

/* ---- preconditions ------------------------------------------------------------------------ */

static int
precond(const char *if_match, const char *if_none_match, const char *etag)
{
    struct pgcmk_req rq;
    struct pgcmk_err err;
    int rc;

    req(&rq, "PUT", "/x");
    if (if_match)
        pgcmk_req_add_header(&rq, "If-Match", if_match);
    if (if_none_match)
        pgcmk_req_add_header(&rq, "If-None-Match", if_none_match);
    pgcmk_err_clear(&err);
    rc = pgcmk_arm_check_preconditions(&rq, etag, &err);
    if (rc) {
        CHECK(err.code == PGCMK_E_PRECONDITION_FAILED);
        CHECK(pgcmk_err_status(err.code) == 412);
    }
    pgcmk_req_release(&rq);
    return rc;
}

static void
test_preconditions(void)
{
    /* no headers */
    CHECK(precond(NULL, NULL, NULL) == 0);
    CHECK(precond(NULL, NULL, "\"abc\"") == 0);
    CHECK(precond("", "", "abc") == 0);
    /* If-Match: * needs the resource */
    CHECK(precond("*", NULL, NULL) == -1);
    CHECK(precond("*", NULL, "abc") == 0);
    /* If-None-Match: * needs it absent */
    CHECK(precond(NULL, "*", "abc") == -1);
    CHECK(precond(NULL, "*", "\"abc\"") == -1);
    CHECK(precond(NULL, "*", NULL) == 0);
    /* If-Match with an etag, quoted or not, weak or not, on either side */
    CHECK(precond("\"abc\"", NULL, "abc") == 0);
    CHECK(precond("\"abc\"", NULL, "\"abc\"") == 0);
    CHECK(precond("abc", NULL, "\"abc\"") == 0);
    CHECK(precond("W/\"abc\"", NULL, "\"abc\"") == 0);
    CHECK(precond("\"abc\"", NULL, "W/\"abc\"") == 0);
    CHECK(precond(" \"abc\"", NULL, "abc") == 0);
    CHECK(precond("\"abd\"", NULL, "abc") == -1);
    CHECK(precond("\"ABC\"", NULL, "abc") == -1); /* etags are case-sensitive */
    CHECK(precond("\"abc\"", NULL, NULL) == -1);
    CHECK(precond("\"\"", NULL, "abc") == -1);
    CHECK(precond("\"", NULL, "abc") == -1);
    /* If-None-Match with an etag */
    CHECK(precond(NULL, "\"abc\"", "abc") == -1);
    CHECK(precond(NULL, "\"abd\"", "abc") == 0);
    CHECK(precond(NULL, "\"abc\"", NULL) == 0);
    /* both */
    CHECK(precond("\"abc\"", "\"zzz\"", "abc") == 0);
    CHECK(precond("\"abc\"", "\"abc\"", "abc") == -1);
    /* a long header value is not a crash */
    {
        char big[600];

        memset(big, 'e', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        CHECK(precond(big, NULL, "abc") == -1);
        CHECK(precond(NULL, big, "abc") == 0);
    }
}

/* ---- paged lists -------------------------------------------------------------------------- */

static json_t *
five_items(void)
{
    json_t *a = json_array();

    for (int i = 0; i < 5; i++)
        json_array_append_new(a, json_pack("{s:i}", "i", i));
    return a;
}

/* Lists five items with page size 2 for url: the status, and the body in *out. */
static int
list5(const char *url, json_t **out, struct pgcmk_err *err)
{
    struct pgcmk_req rq;
    struct pgcmk_resp rs;
    int rc;

    memset(&rs, 0, sizeof(rs));
    req(&rq, "GET", url);
    pgcmk_err_clear(err);
    rc = pgcmk_arm_list(&rq, &rs, five_items(), err);
    *out = rc == 0 ? resp_json(&rs) : NULL;
    if (rc == 0)
        CHECK(rs.status == 200);
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);
    return rc;
}

static int
count_of(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void
test_list_paging(void)
{
    struct pgcmk_err err;
    json_t *j;
    const char *next;
    int saved = test_cfg.page_size;

    test_cfg.page_size = 2;

    CHECK(list5(RGS_URL "?" AV, &j, &err) == 0);
    CHECK(json_array_size(json_object_get(j, "value")) == 2);
    CHECK(json_integer_value(
              json_object_get(json_array_get(json_object_get(j, "value"), 0), "i")) == 0);
    next = str_at(j, "nextLink");
    CHECK(next != NULL);
    CHECK(next && strstr(next, "$skiptoken=2") != NULL);
    CHECK(next && strstr(next, "api-version=2021-04-01") != NULL);
    CHECK(next && strncmp(next, "https://localhost:8443" RGS_URL "?", 23 + strlen(RGS_URL)) == 0);
    json_decref(j);

    /* the second page: from 2, its nextLink has one skiptoken */
    CHECK(list5(RGS_URL "?" AV "&$skiptoken=2", &j, &err) == 0);
    CHECK(json_array_size(json_object_get(j, "value")) == 2);
    CHECK(json_integer_value(
              json_object_get(json_array_get(json_object_get(j, "value"), 0), "i")) == 2);
    next = str_at(j, "nextLink");
    CHECK(next && strstr(next, "$skiptoken=4") != NULL);
    CHECK(next && count_of(next, "skiptoken") == 1);
    CHECK(next && strstr(next, "api-version=2021-04-01") != NULL);
    json_decref(j);

    /* the last page: one item, no nextLink */
    CHECK(list5(RGS_URL "?" AV "&$skiptoken=4", &j, &err) == 0);
    CHECK(json_array_size(json_object_get(j, "value")) == 1);
    CHECK(json_integer_value(
              json_object_get(json_array_get(json_object_get(j, "value"), 0), "i")) == 4);
    CHECK(json_object_get(j, "nextLink") == NULL);
    json_decref(j);

    /* past the end: empty */
    CHECK(list5(RGS_URL "?" AV "&$skiptoken=10", &j, &err) == 0);
    CHECK(json_array_size(json_object_get(j, "value")) == 0);
    CHECK(json_object_get(j, "nextLink") == NULL);
    json_decref(j);

    /* $top smaller than the page */
    CHECK(list5(RGS_URL "?" AV "&$top=1", &j, &err) == 0);
    CHECK(json_array_size(json_object_get(j, "value")) == 1);
    next = str_at(j, "nextLink");
    CHECK(next && strstr(next, "$skiptoken=1") != NULL);
    CHECK(next && strstr(next, "$top=1") != NULL);
    json_decref(j);
    CHECK(list5(RGS_URL "?" AV "&$top=50", &j, &err) == 0);
    CHECK(json_array_size(json_object_get(j, "value")) == 2); /* the page size still holds */
    json_decref(j);

    /* other query values are carried over, percent-encoded */
    CHECK(list5(RGS_URL "?" AV "&$filter=name%20eq%20'a%26b'", &j, &err) == 0);
    next = str_at(j, "nextLink");
    CHECK(next && strstr(next, "$filter=name%20eq%20%27a%26b%27") != NULL);
    json_decref(j);

    /* bad tokens */
    {
        static const char *const bad[] = {"abc", "-1", "2x", "1.5", "0x2"};

        for (size_t i = 0; i < PGCMK_ARRAY_LEN(bad); i++) {
            char url[256];

            snprintf(url, sizeof(url), RGS_URL "?" AV "&$skiptoken=%s", bad[i]);
            CHECK(list5(url, &j, &err) == -1);
            CHECK(j == NULL);
            CHECK(err.code == PGCMK_E_BAD_REQUEST);
            CHECK_STR(err.target, "$skiptoken");
        }
    }
    CHECK(list5(RGS_URL "?" AV "&$top=0", &j, &err) == -1);
    CHECK(err.code == PGCMK_E_BAD_REQUEST);
    CHECK_STR(err.target, "$top");
    CHECK(list5(RGS_URL "?" AV "&$top=x", &j, &err) == -1);

    /* an empty list */
    {
        struct pgcmk_req rq;
        struct pgcmk_resp rs;

        memset(&rs, 0, sizeof(rs));
        req(&rq, "GET", RGS_URL "?" AV);
        CHECK(pgcmk_arm_list(&rq, &rs, json_array(), &err) == 0);
        CHECK_STR(rs.body, "{\"value\":[]}");
        pgcmk_resp_release(&rs);
        pgcmk_req_release(&rq);
    }
    test_cfg.page_size = saved;
}

/* A huge $skiptoken: start + page overflows a long (undefined behaviour; UBSan aborts). Run in a
 * child so that a crash is one failed check, not the end of the program. */
static void
test_list_huge_skiptoken(void)
{
    static const char *const tokens[] = {"9223372036854775807", "99999999999999999999"};

    for (size_t i = 0; i < PGCMK_ARRAY_LEN(tokens); i++) {
        int status = 0;
        pid_t pid;

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            struct pgcmk_err err;
            char url[256];
            json_t *j = NULL;
            int rc;

            test_cfg.page_size = 2;
            snprintf(url, sizeof(url), RGS_URL "?" AV "&$skiptoken=%s", tokens[i]);
            rc = list5(url, &j, &err);
            /* acceptable: refused, or an empty last page */
            if (rc == 0 && (json_array_size(json_object_get(j, "value")) != 0 ||
                            json_object_get(j, "nextLink") != NULL)) {
                fprintf(stderr, "  $skiptoken=%s gave %s\n", tokens[i],
                        json_dumps(j, JSON_COMPACT));
                _exit(1);
            }
            json_decref(j);
            _exit(0);
        }
        if (pid > 0) {
            waitpid(pid, &status, 0);
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            if (!WIFEXITED(status))
                fprintf(stderr, "  $skiptoken=%s: the child died of signal %d\n", tokens[i],
                        WTERMSIG(status));
        }
    }
}

/* ---- systemData --------------------------------------------------------------------------- */

static void
test_system_data(void)
{
    struct pgcmk_req rq;
    json_t *sd, *sd2;

    pgcmk_clock_freeze();
    pgcmk_clock_set(1893456000000LL); /* 2030-01-01 */
    req(&rq, "PUT", "/x");
    sd = pgcmk_arm_system_data(&rq, NULL);
    CHECK_STR(str_at(sd, "createdBy"), PGCMK_ADMIN_OBJECT_ID);
    CHECK_STR(str_at(sd, "createdAt"), "2030-01-01T00:00:00.000Z");
    CHECK_STR(str_at(sd, "lastModifiedAt"), "2030-01-01T00:00:00.000Z");
    CHECK_STR(str_at(sd, "createdByType"), "Application");
    pgcmk_clock_advance(3600000);
    snprintf(rq.principal, sizeof(rq.principal), "someone-else");
    sd2 = pgcmk_arm_system_data(&rq, sd);
    CHECK_STR(str_at(sd2, "createdBy"), PGCMK_ADMIN_OBJECT_ID);
    CHECK_STR(str_at(sd2, "createdAt"), "2030-01-01T00:00:00.000Z");
    CHECK_STR(str_at(sd2, "lastModifiedBy"), "someone-else");
    CHECK_STR(str_at(sd2, "lastModifiedAt"), "2030-01-01T01:00:00.000Z");
    CHECK_STR(str_at(sd, "lastModifiedAt"), "2030-01-01T00:00:00.000Z"); /* previous untouched */
    json_decref(sd);
    json_decref(sd2);
    pgcmk_req_release(&rq);
    pgcmk_clock_init();
}

/* ---- resource groups end to end ----------------------------------------------------------- */

#define RG1 RGS_URL "/rg1"

static void
test_rg_flow(void)
{
    struct pgcmk_resp rs;
    json_t *j;
    const char *loc;

    /* create, then update */
    CHECK(call("PUT", RG1 "?" AV, "{\"location\":\"eastus\"}", &j, NULL) == 201);
    CHECK_STR(str_at(j, "name"), "rg1");
    CHECK_STR(str_at(j, "location"), "eastus");
    CHECK_STR(str_at(j, "id"), "/subscriptions/" SUB "/resourceGroups/rg1");
    CHECK_STR(str_at(j, "type"), "Microsoft.Resources/resourceGroups");
    CHECK_STR(str_at(json_object_get(j, "properties"), "provisioningState"), "Succeeded");
    json_decref(j);
    CHECK(call("PUT", RG1 "?" AV, "{\"location\":\"eastus\",\"tags\":{\"env\":\"dev\"}}", &j,
               NULL) == 200);
    CHECK_STR(str_at(j, "name"), "rg1");
    CHECK_STR(str_at(json_object_get(j, "tags"), "env"), "dev");
    json_decref(j);
    /* names are case-insensitive: the stored name stays */
    CHECK(call("PUT", RGS_URL "/RG1?" AV, "{\"location\":\"EastUS\"}", &j, NULL) == 200);
    CHECK_STR(str_at(j, "name"), "rg1");
    json_decref(j);
    /* another location for an existing group */
    CHECK(call("PUT", RG1 "?" AV, "{\"location\":\"westus\"}", &j, NULL) == 409);
    CHECK_STR(err_code_of(j), "InvalidResourceGroupLocation");
    json_decref(j);

    /* read */
    CHECK(call("GET", RG1 "?" AV, NULL, &j, NULL) == 200);
    CHECK_STR(str_at(j, "name"), "rg1");
    CHECK_STR(str_at(j, "location"), "eastus");
    json_decref(j);
    CHECK(call("GET", RGS_URL "/Rg1?" AV, NULL, &j, NULL) == 200);
    CHECK_STR(str_at(j, "name"), "rg1");
    json_decref(j);
    CHECK(call("HEAD", RG1 "?" AV, NULL, NULL, NULL) == 204);
    CHECK(call("HEAD", RGS_URL "/nope?" AV, NULL, NULL, NULL) == 404);

    /* list */
    CHECK(call("GET", RGS_URL "?" AV, NULL, &j, NULL) == 200);
    CHECK(json_array_size(json_object_get(j, "value")) == 1);
    CHECK_STR(str_at(json_array_get(json_object_get(j, "value"), 0), "name"), "rg1");
    CHECK(json_object_get(j, "nextLink") == NULL);
    json_decref(j);

    /* patch tags */
    CHECK(call("PATCH", RG1 "?" AV, "{\"tags\":{\"team\":\"db\"}}", &j, NULL) == 200);
    CHECK_STR(str_at(json_object_get(j, "tags"), "team"), "db");
    CHECK(str_at(json_object_get(j, "tags"), "env") == NULL);
    json_decref(j);
    CHECK(call("PATCH", RGS_URL "/nope?" AV, "{\"tags\":{}}", &j, NULL) == 404);
    CHECK_STR(err_code_of(j), "ResourceGroupNotFound");
    json_decref(j);

    /* delete: 202 and a Location to poll; the job ran inline (no worker pool) */
    CHECK(call("DELETE", RG1 "?" AV, NULL, NULL, &rs) == 202);
    loc = resp_hdr(&rs, "Location");
    CHECK(loc != NULL);
    CHECK(loc &&
          strncmp(loc, "https://localhost:8443/subscriptions/" SUB "/operationresults/",
                  strlen("https://localhost:8443/subscriptions/" SUB "/operationresults/")) == 0);
    CHECK(loc && strstr(loc, AV) != NULL);
    CHECK(resp_hdr(&rs, "Retry-After") != NULL);
    CHECK(rs.body == NULL || rs.body_len == 0);
    if (loc && strstr(loc, "/subscriptions/")) {
        char *path = pgcmk_xstrdup(strstr(loc, "/subscriptions/"));

        CHECK(call("GET", path, NULL, NULL, NULL) == 200);
        free(path);
    }
    pgcmk_resp_release(&rs);

    CHECK(call("GET", RG1 "?" AV, NULL, &j, NULL) == 404);
    CHECK_STR(err_code_of(j), "ResourceGroupNotFound");
    json_decref(j);
    /* deleting a group that is not there: 404 (ARM) */
    {
        int st = call("DELETE", RG1 "?" AV, NULL, &j, NULL);

        CHECK(st == 404);
        CHECK_STR(err_code_of(j), "ResourceGroupNotFound");
        if (st != 404) {
            char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

            fprintf(stderr, "  DELETE of a missing group answered %d %s\n", st, text ? text : "");
            free(text);
        }
        json_decref(j);
    }
    CHECK(call("GET", RGS_URL "?" AV, NULL, &j, NULL) == 200);
    CHECK(json_array_size(json_object_get(j, "value")) == 0);
    json_decref(j);
    /* an unknown operation */
    CHECK(call("GET", "/subscriptions/" SUB "/operationresults/nope?" AV, NULL, &j, NULL) == 404);
    CHECK_STR(err_code_of(j), "OperationNotFound");
    json_decref(j);
}

static void
test_rg_errors(void)
{
    struct pgcmk_resp rs;
    json_t *j;

    /* subscriptions */
    CHECK(call("PUT", "/subscriptions/not-a-guid/resourcegroups/rg1?" AV,
               "{\"location\":\"eastus\"}", &j, NULL) == 400);
    CHECK_STR(err_code_of(j), "InvalidSubscriptionId");
    json_decref(j);
    CHECK(call("GET", "/subscriptions/" OTHER "/resourcegroups/rg1?" AV, NULL, &j, NULL) == 404);
    CHECK_STR(err_code_of(j), "SubscriptionNotFound");
    json_decref(j);

    /* api-versions */
    CHECK(call("GET", RG1, NULL, &j, NULL) == 400);
    CHECK_STR(err_code_of(j), "MissingApiVersionParameter");
    json_decref(j);
    CHECK(call("GET", RG1 "?api-version=2099-01-01", NULL, &j, &rs) == 400);
    CHECK_STR(err_code_of(j), "InvalidApiVersionParameter");
    CHECK_STR(resp_hdr(&rs, "x-ms-failure-cause"), "gateway");
    json_decref(j);
    pgcmk_resp_release(&rs);

    /* bodies */
    CHECK(call("PUT", RG1 "?" AV, "{}", &j, NULL) == 400);
    CHECK_STR(err_code_of(j), "LocationRequired");
    json_decref(j);
    CHECK(call("PUT", RG1 "?" AV, "{\"location\":\"\"}", &j, NULL) == 400);
    CHECK_STR(err_code_of(j), "LocationRequired");
    json_decref(j);
    CHECK(call("PUT", RG1 "?" AV, "{\"location\":5}", &j, NULL) == 400);
    CHECK_STR(err_code_of(j), "LocationRequired");
    json_decref(j);
    CHECK(call("PUT", RG1 "?" AV, "{\"location\":\"eastus\",}", &j, NULL) == 400);
    CHECK_STR(err_code_of(j), "InvalidRequestContent");
    json_decref(j);
    CHECK(call("PUT", RG1 "?" AV, "{\"location\":\"eastus\",\"tags\":[1]}", &j, NULL) == 400);
    CHECK_STR(err_code_of(j), "InvalidRequestContent");
    json_decref(j);
    CHECK(call("PUT", RG1 "?" AV, "{\"location\":\"eastus\",\"tags\":{\"a\":1}}", &j, NULL) == 400);
    json_decref(j);

    /* names */
    {
        static const char *const bad[] = {"bad.", "a%20b", "a*b", "a%2Fb%2Fc%2Fd"};

        for (size_t i = 0; i < PGCMK_ARRAY_LEN(bad); i++) {
            char url[512];
            int st;

            snprintf(url, sizeof(url), RGS_URL "/%s?" AV, bad[i]);
            st = call("PUT", url, "{\"location\":\"eastus\"}", &j, NULL);
            CHECK(st == 400 || st == 404);
            if (st == 400)
                CHECK_STR(err_code_of(j), "InvalidResourceGroupName");
            json_decref(j);
        }
    }
    {
        char url[512], name[100];

        memset(name, 'n', 91);
        name[91] = '\0';
        snprintf(url, sizeof(url), RGS_URL "/%s?" AV, name);
        CHECK(call("PUT", url, "{\"location\":\"eastus\"}", &j, NULL) == 400);
        CHECK_STR(err_code_of(j), "InvalidResourceGroupName");
        json_decref(j);
        name[90] = '\0';
        snprintf(url, sizeof(url), RGS_URL "/%s?" AV, name);
        CHECK(call("PUT", url, "{\"location\":\"eastus\"}", &j, NULL) == 201);
        json_decref(j);
        CHECK(call("DELETE", url, NULL, NULL, NULL) == 202);
        CHECK(call("GET", url, NULL, NULL, NULL) == 404);
    }
    CHECK(call("PUT", RGS_URL "/My_Group-(1).x?" AV, "{\"location\":\"eastus\"}", &j, NULL) == 201);
    CHECK_STR(str_at(j, "name"), "My_Group-(1).x");
    json_decref(j);
    CHECK(call("DELETE", RGS_URL "/My_Group-(1).x?" AV, NULL, NULL, NULL) == 202);

    /* preconditions on groups */
    CHECK(call("PUT", RGS_URL "/pre?" AV, "{\"location\":\"eastus\"}", NULL, NULL) == 201);
    {
        static const char east[] = "{\"location\":\"eastus\"}";
        struct pgcmk_req rq;

        pgcmk_req_init(&rq, &test_cfg, "PUT", RGS_URL "/pre?" AV, "localhost", east, strlen(east));
        pgcmk_req_add_header(&rq, "If-None-Match", "*");
        memset(&rs, 0, sizeof(rs));
        pgcmk_http_dispatch(&rq, &rs);
        CHECK(rs.status == 412);
        j = resp_json(&rs);
        CHECK_STR(err_code_of(j), "PreconditionFailed");
        json_decref(j);
        pgcmk_resp_release(&rs);
        pgcmk_req_release(&rq);

        pgcmk_req_init(&rq, &test_cfg, "PUT", RGS_URL "/pre2?" AV, "localhost", east, strlen(east));
        pgcmk_req_add_header(&rq, "If-Match", "*");
        memset(&rs, 0, sizeof(rs));
        pgcmk_http_dispatch(&rq, &rs);
        CHECK(rs.status == 412);
        pgcmk_resp_release(&rs);
        pgcmk_req_release(&rq);
    }
    CHECK(call("DELETE", RGS_URL "/pre?" AV, NULL, NULL, NULL) == 202);
    CHECK(call("GET", RGS_URL "/pre2?" AV, NULL, NULL, NULL) == 404);

    /* query parameters */
    CHECK(call("GET", RG1 "?" AV "&$bogus=1", NULL, &j, NULL) == 400);
    CHECK_STR(err_code_of(j), "InvalidQueryParameter");
    json_decref(j);
}

/* Many groups with a page size of 2: nextLink chains through all of them. */
static void
test_rg_paging(void)
{
    int saved = test_cfg.page_size, seen = 0, pages = 0;
    char url[512];

    for (int i = 0; i < 5; i++) {
        snprintf(url, sizeof(url), RGS_URL "/page%d?" AV, i);
        CHECK(call("PUT", url, "{\"location\":\"eastus\"}", NULL, NULL) == 201);
    }
    test_cfg.page_size = 2;
    snprintf(url, sizeof(url), "%s", RGS_URL "?" AV);
    while (pages < 10) {
        json_t *j;
        const char *next;

        CHECK(call("GET", url, NULL, &j, NULL) == 200);
        seen += (int)json_array_size(json_object_get(j, "value"));
        pages++;
        next = str_at(j, "nextLink");
        if (next == NULL) {
            json_decref(j);
            break;
        }
        CHECK(strstr(next, "/subscriptions/") != NULL);
        snprintf(url, sizeof(url), "%s", strstr(next, "/subscriptions/"));
        json_decref(j);
    }
    CHECK(seen == 5);
    CHECK(pages == 3);
    test_cfg.page_size = saved;
    for (int i = 0; i < 5; i++) {
        snprintf(url, sizeof(url), RGS_URL "/page%d?" AV, i);
        CHECK(call("DELETE", url, NULL, NULL, NULL) == 202);
    }
}

/* ---- one generic type --------------------------------------------------------------------- */

static const char *const widget_versions[] = {"2023-01-01", "2024-01-01", NULL};
static const struct pgcmk_arm_type widget_type = {
    .ns = "Microsoft.Test",
    .type = "widgets",
    .versions = widget_versions,
    .flags = ARM_T_TRACKED | ARM_T_SYNC_PUT,
};

#define RG2     RGS_URL "/rg2"
#define WIDGETS RG2 "/providers/Microsoft.Test/widgets"
#define WAV     "api-version=2024-01-01"

static void
test_generic(void)
{
    char url[1024], name[300];
    json_t *j;

    CHECK(call("PUT", RG2 "?" AV, "{\"location\":\"eastus\"}", NULL, NULL) == 201);
    CHECK(call("PUT", WIDGETS "/w1?" WAV, "{\"location\":\"eastus\"}", &j, NULL) == 201);
    CHECK_STR(str_at(j, "name"), "w1");
    CHECK_STR(str_at(j, "type"), "Microsoft.Test/widgets");
    CHECK_STR(str_at(j, "id"),
              "/subscriptions/" SUB "/resourceGroups/rg2/providers/Microsoft.Test/widgets/w1");
    json_decref(j);
    CHECK(call("GET", WIDGETS "/w1?" WAV, NULL, &j, NULL) == 200);
    CHECK_STR(str_at(j, "name"), "w1");
    json_decref(j);
    CHECK(call("GET", WIDGETS "?" WAV, NULL, &j, NULL) == 200);
    CHECK(json_array_size(json_object_get(j, "value")) == 1);
    json_decref(j);
    CHECK(call("GET", WIDGETS "/w1?api-version=2020-01-01", NULL, &j, NULL) == 400);
    CHECK_STR(err_code_of(j), "NoRegisteredProviderFound");
    {
        const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));

        CHECK(m && strstr(m, "'2024-01-01, 2023-01-01'") != NULL);
    }
    json_decref(j);
    CHECK(call("GET", WIDGETS "/nope?" WAV, NULL, &j, NULL) == 404);
    CHECK_STR(err_code_of(j), "ResourceNotFound");
    json_decref(j);
    CHECK(call("GET", RG2 "/providers/Microsoft.Nope/widgets/w1?" WAV, NULL, &j, NULL) == 400);
    CHECK_STR(err_code_of(j), "InvalidResourceNamespace");
    json_decref(j);
    CHECK(call("GET", RG2 "/providers/Microsoft.Test/gadgets/w1?" WAV, NULL, &j, NULL) == 400);
    CHECK_STR(err_code_of(j), "InvalidResourceType");
    json_decref(j);
    CHECK(call("PUT", WIDGETS "/w2?" WAV, "{}", &j, NULL) == 400);
    CHECK_STR(err_code_of(j), "LocationRequired");
    json_decref(j);
    CHECK(call("PUT", RGS_URL "/nope/providers/Microsoft.Test/widgets/w1?" WAV,
               "{\"location\":\"eastus\"}", &j, NULL) == 404);
    CHECK_STR(err_code_of(j), "ResourceGroupNotFound");
    json_decref(j);

    /* names: the default rule is 1 to 128 characters; a name must be kept whole */
    memset(name, 'w', 128);
    name[128] = '\0';
    snprintf(url, sizeof(url), WIDGETS "/%s?" WAV, name);
    CHECK(call("PUT", url, "{\"location\":\"eastus\"}", &j, NULL) == 201);
    CHECK(str_at(j, "name") && strlen(str_at(j, "name")) == 128);
    if (str_at(j, "name") && strlen(str_at(j, "name")) != 128)
        fprintf(stderr, "  a 128-character widget name came back with %zu characters\n",
                strlen(str_at(j, "name")));
    json_decref(j);
    memset(name, 'x', 200);
    name[200] = '\0';
    snprintf(url, sizeof(url), WIDGETS "/%s?" WAV, name);
    CHECK(call("PUT", url, "{\"location\":\"eastus\"}", &j, NULL) == 400);
    if (err_code_of(j) == NULL || strcmp(err_code_of(j), "InvalidResourceName") != 0)
        fprintf(stderr, "  a 200-character widget name was answered %s\n",
                str_at(j, "name") ? "201 (stored under a shorter name)" : "with another error");
    json_decref(j);

    /* deleting the group takes its resources */
    CHECK(call("DELETE", RG2 "?" AV, NULL, NULL, NULL) == 202);
    CHECK(call("PUT", RG2 "?" AV, "{\"location\":\"eastus\"}", NULL, NULL) == 201);
    CHECK(call("GET", WIDGETS "/w1?" WAV, NULL, &j, NULL) == 404);
    CHECK_STR(err_code_of(j), "ResourceNotFound");
    json_decref(j);
    CHECK(call("GET", WIDGETS "?" WAV, NULL, &j, NULL) == 200);
    CHECK(json_array_size(json_object_get(j, "value")) == 0);
    json_decref(j);
    CHECK(call("DELETE", RG2 "?" AV, NULL, NULL, NULL) == 202);
}

/* ---- the engine's asynchronous rows: 202 PUTs, deferred stores, async DELETE, retries ------ */

static int gadget_fail, gadget_creates, gadget_deletes;

static int
gadget_state_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    const char *id = ctx;
    json_t *b = NULL;
    int rc = pgcmk_arm_resource_get(db, id, &b, err);

    if (rc <= 0)
        return -1;
    json_object_set_new(json_object_get(b, "properties"), "provisioningState",
                        json_string(gadget_fail ? "Failed" : "Succeeded"));
    rc = pgcmk_arm_resource_put(db, id, b, err);
    json_decref(b);
    return rc;
}

static int
gadget_provision(const char *id, int created, struct pgcmk_err *err)
{
    gadget_creates += created;
    if (pgcmk_db_tx(pgcmk_db(), gadget_state_tx, (void *)id, err))
        return -1;
    return gadget_fail ? pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, NULL, "the gadget failed") : 0;
}

static int
gadget_on_delete(struct pgcmk_arm_ctx *ctx, struct pgcmk_err *err)
{
    (void)ctx;
    (void)err;
    gadget_deletes++;
    return 0;
}

struct part_save {
    const char *id;
    const json_t *body;
};

static int
part_save_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct part_save *ps = ctx;
    json_t *b = json_deep_copy(ps->body);
    int rc;

    json_object_set_new(json_object_get(b, "properties"), "stored", json_true());
    rc = pgcmk_arm_resource_save(db, ps->id, b, err);
    json_decref(b);
    return rc;
}

static int
part_provision_put(const char *id, const json_t *body, struct pgcmk_err *err)
{
    struct part_save ps = {id, body};

    if (strstr(id, "/parts/bad"))
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, NULL, "a bad part");
    return pgcmk_db_tx(pgcmk_db(), part_save_tx, &ps, err);
}

static const struct pgcmk_arm_type gadget_type = {
    .ns = "Microsoft.Test",
    .type = "gizmos",
    .versions = widget_versions,
    .flags = ARM_T_TRACKED | ARM_T_ASYNC | ARM_T_ACCEPTED | ARM_T_ASYNC_DELETE,
    .on_delete = gadget_on_delete,
    .provision = gadget_provision,
};

static const struct pgcmk_arm_type part_type = {
    .ns = "Microsoft.Test",
    .type = "gizmos/parts",
    .versions = widget_versions,
    .flags = ARM_T_ASYNC | ARM_T_ACCEPTED | ARM_T_DEFER_STORE | ARM_T_NO_PATCH,
    .provision_put = part_provision_put,
};

static const struct pgcmk_arm_type doodad_type = {
    .ns = "Microsoft.Test",
    .type = "doodads",
    .versions = widget_versions,
    .flags = ARM_T_TRACKED | ARM_T_ASYNC | ARM_T_ACCEPTED | ARM_T_ACCEPTED_BODY,
    .provision = gadget_provision,
};

#define GADGETS RG2 "/providers/Microsoft.Test/gizmos"

/* ---- a group delete: each resource in its own savepoint ------------------------------------ */

static int trinket_fail = 1;

/* A trinket named bad* writes to its own row, then fails: a half-applied delete, which the
 * savepoint must undo while the group's other resources go. */
static int
trinket_on_delete(struct pgcmk_arm_ctx *ctx, struct pgcmk_err *err)
{
    json_t *b;
    int rc;

    if (!trinket_fail || strstr(ctx->id_text, "/trinkets/bad") == NULL)
        return 0;
    b = json_deep_copy(ctx->existing);
    json_object_set_new(json_object_get(b, "properties"), "halfDeleted", json_true());
    rc = pgcmk_arm_resource_save(pgcmk_db(), ctx->id_text, b, err);
    json_decref(b);
    if (rc)
        return -1;
    return pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL, "the trinket cannot go yet");
}

static const struct pgcmk_arm_type trinket_type = {
    .ns = "Microsoft.Test",
    .type = "trinkets",
    .versions = widget_versions,
    .flags = ARM_T_TRACKED | ARM_T_SYNC_PUT,
    .on_delete = trinket_on_delete,
};

#define RG3      RGS_URL "/rg3"
#define TRINKETS RG3 "/providers/Microsoft.Test/trinkets"

static void
test_rg_delete_savepoints(void)
{
    static const char *const names[] = {"t1", "bad2", "t3"};
    struct pgcmk_resp rs;
    json_t *j;
    char url[256];

    CHECK(call("PUT", RG3 "?" AV, "{\"location\":\"eastus\"}", NULL, NULL) == 201);
    for (int i = 0; i < 3; i++) {
        snprintf(url, sizeof(url), TRINKETS "/%s?" WAV, names[i]);
        CHECK(call("PUT", url, "{\"location\":\"eastus\",\"properties\":{}}", NULL, NULL) == 201);
    }
    /* the 2nd resource fails: the 1st and 3rd are deleted, nothing of the 2nd's delete stays */
    CHECK(call("DELETE", RG3 "?" AV, NULL, NULL, &rs) == 202);
    {
        const char *loc = resp_hdr(&rs, "Location");

        if (loc && strstr(loc, "/subscriptions/")) {
            char *path = pgcmk_xstrdup(strstr(loc, "/subscriptions/"));

            CHECK(call("GET", path, NULL, &j, NULL) != 200); /* the operation failed */
            json_decref(j);
            free(path);
        } else {
            CHECK(loc != NULL);
        }
    }
    pgcmk_resp_release(&rs);
    CHECK(call("GET", TRINKETS "/t1?" WAV, NULL, NULL, NULL) == 404);
    CHECK(call("GET", TRINKETS "/t3?" WAV, NULL, NULL, NULL) == 404);
    CHECK(call("GET", TRINKETS "/bad2?" WAV, NULL, &j, NULL) == 200);
    CHECK(json_object_get(json_object_get(j, "properties"), "halfDeleted") == NULL);
    json_decref(j);
    /* the group stays, with what could not go, and is usable again */
    CHECK(call("GET", RG3 "?" AV, NULL, &j, NULL) == 200);
    CHECK_STR(str_at(json_object_get(j, "properties"), "provisioningState"), "Succeeded");
    json_decref(j);
    /* once the resource can go, the group goes */
    trinket_fail = 0;
    CHECK(call("DELETE", RG3 "?" AV, NULL, NULL, NULL) == 202);
    CHECK(call("GET", RG3 "?" AV, NULL, NULL, NULL) == 404);
    CHECK(call("GET", TRINKETS "/bad2?" WAV, NULL, NULL, NULL) == 404);
}

static const char *
state_of(json_t *j)
{
    return str_at(json_object_get(j, "properties"), "provisioningState");
}

static void
test_async_rows(void)
{
    struct pgcmk_resp rs;
    json_t *j;

    CHECK(call("PUT", RG2 "?" AV, "{\"location\":\"eastus\"}", NULL, NULL) == 201);
    /* a 202 with no body; the create fails */
    gadget_fail = 1;
    CHECK(call("PUT", GADGETS "/g1?" WAV, "{\"location\":\"eastus\"}", NULL, &rs) == 202);
    CHECK(rs.body == NULL || rs.body_len == 0);
    CHECK(resp_hdr(&rs, "Azure-AsyncOperation") != NULL);
    CHECK(resp_hdr(&rs, "Location") != NULL);
    pgcmk_resp_release(&rs);
    CHECK(call("GET", GADGETS "/g1?" WAV, NULL, &j, NULL) == 200);
    CHECK_STR(state_of(j), "Failed");
    json_decref(j);
    /* the same PUT creates it again: the failed one is deleted first (its hook runs) */
    gadget_fail = 0;
    CHECK(call("PUT", GADGETS "/g1?" WAV, "{\"location\":\"eastus\"}", NULL, NULL) == 202);
    CHECK(gadget_creates == 2);
    CHECK(gadget_deletes == 1);
    CHECK(call("GET", GADGETS "/g1?" WAV, NULL, &j, NULL) == 200);
    CHECK_STR(state_of(j), "Succeeded");
    json_decref(j);
    /* a PUT on a good one is an update */
    CHECK(call("PUT", GADGETS "/g1?" WAV, "{\"location\":\"eastus\"}", NULL, NULL) == 202);
    CHECK(gadget_creates == 2 && gadget_deletes == 1);

    /* a type that declares its 202 with the body */
    CHECK(call("PUT", RG2 "/providers/Microsoft.Test/doodads/d1?" WAV, "{\"location\":\"eastus\"}",
               &j, &rs) == 202);
    CHECK_STR(str_at(j, "name"), "d1");
    CHECK(resp_hdr(&rs, "Azure-AsyncOperation") != NULL);
    json_decref(j);
    pgcmk_resp_release(&rs);

    /* a deferred child: nothing stored until its worker succeeds */
    CHECK(call("PUT", GADGETS "/g1/parts/p1?" WAV, "{\"properties\":{\"a\":1}}", NULL, &rs) == 202);
    CHECK(rs.body == NULL || rs.body_len == 0);
    pgcmk_resp_release(&rs);
    CHECK(call("GET", GADGETS "/g1/parts/p1?" WAV, NULL, &j, NULL) == 200);
    CHECK(json_is_true(json_object_get(json_object_get(j, "properties"), "stored")));
    json_decref(j);
    CHECK(call("PUT", GADGETS "/g1/parts/bad?" WAV, "{\"properties\":{}}", NULL, NULL) == 202);
    CHECK(call("GET", GADGETS "/g1/parts/bad?" WAV, NULL, &j, NULL) == 404);
    CHECK_STR(err_code_of(j), "ResourceNotFound");
    json_decref(j);
    CHECK(call("GET", GADGETS "/g1/parts?" WAV, NULL, &j, NULL) == 200);
    CHECK(json_array_size(json_object_get(j, "value")) == 1);
    json_decref(j);
    CHECK(call("PATCH", GADGETS "/g1/parts/p1?" WAV, "{\"properties\":{}}", &j, NULL) == 405);
    json_decref(j);
    CHECK(call("GET", GADGETS "/g9/parts/p1?" WAV, NULL, &j, NULL) == 404);
    CHECK_STR(err_code_of(j), "ParentResourceNotFound");
    json_decref(j);

    /* an asynchronous DELETE: 202 + both URLs; the job removed the gadget and its parts */
    CHECK(call("DELETE", GADGETS "/g1?" WAV, NULL, NULL, &rs) == 202);
    CHECK(resp_hdr(&rs, "Azure-AsyncOperation") != NULL);
    CHECK(resp_hdr(&rs, "Location") != NULL);
    pgcmk_resp_release(&rs);
    CHECK(gadget_deletes == 2);
    CHECK(call("GET", GADGETS "/g1?" WAV, NULL, &j, NULL) == 404);
    json_decref(j);
    CHECK(call("GET", GADGETS "/g1/parts/p1?" WAV, NULL, &j, NULL) == 404);
    json_decref(j);
    CHECK(call("DELETE", GADGETS "/g1?" WAV, NULL, NULL, &rs) == 204);
    CHECK(resp_hdr(&rs, "Azure-AsyncOperation") == NULL);
    pgcmk_resp_release(&rs);
}

int
main(void)
{
    struct pgcmk_err err;

    memset(&test_cfg, 0, sizeof(test_cfg));
    test_cfg.port = 8443;
    test_cfg.page_size = 100;
    test_cfg.auth = PGCMK_AUTH_OPEN;
    test_cfg.lro_min_polls = 0;
    test_cfg.max_body_kb = 4096;

    test_id_parse();
    test_id_round_trip();
    test_id_subscription_level();
    test_versions();
    test_check_sub();
    test_preconditions();
    test_list_paging();
    test_list_huge_skiptoken();
    test_system_data();

    pgcmk_err_clear(&err);
    CHECK(t_store_open(&err) == 0);
    if (err.message[0])
        fprintf(stderr, "store: %s\n", err.message);
    pgcmk_router_reset();
    pgcmk_arm_register(&widget_type);
    pgcmk_arm_register(&gadget_type);
    pgcmk_arm_register(&part_type);
    pgcmk_arm_register(&doodad_type);
    pgcmk_arm_register(&trinket_type);
    pgcmk_arm_init();
    CHECK(pgcmk_router_check() == 0);

    test_rg_flow();
    test_rg_errors();
    test_rg_paging();
    test_generic();
    test_async_rows();
    test_rg_delete_savepoints();

    pgcmk_router_reset();
    t_store_close();
    return t_done("test_arm");
}
