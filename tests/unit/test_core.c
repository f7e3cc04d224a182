/* test_core.c - time and duration parsing, the error table, the virtual clock, the configuration,
 * uuids, string helpers and the worker pool. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgcmk/cfg.h"
#include "pgcmk/clock.h"
#include "pgcmk/core.h"
#include "pgcmk/err.h"
#include "pgcmk/keyuri.h"
#include "pgcmk/work.h"

#include "t.h"

#define DAY_MS  86400000LL
#define HOUR_MS 3600000LL

/* ---- time ------------------------------------------------------------------------------ */

static int64_t
parse_or(const char *s, int64_t dflt)
{
    int64_t ms = 0;

    return pgcmk_time_parse(s, &ms) == 0 ? ms : dflt;
}

static void
test_time_format(void)
{
    char out[PGCMK_TIME_LEN];

    pgcmk_time_format(0, out);
    CHECK_STR(out, "1970-01-01T00:00:00.000Z");
    pgcmk_time_format(1, out);
    CHECK_STR(out, "1970-01-01T00:00:00.001Z");
    pgcmk_time_format(-1, out);
    CHECK_STR(out, "1969-12-31T23:59:59.999Z");
    pgcmk_time_format(-1000, out);
    CHECK_STR(out, "1969-12-31T23:59:59.000Z");
    pgcmk_time_format(-1001, out);
    CHECK_STR(out, "1969-12-31T23:59:58.999Z");
    /* 2024-02-29T12:34:56.789Z (a leap day) */
    pgcmk_time_format(1709210096789LL, out);
    CHECK_STR(out, "2024-02-29T12:34:56.789Z");
    pgcmk_time_format(253402300799999LL, out);
    CHECK_STR(out, "9999-12-31T23:59:59.999Z");
}

static void
test_time_round_trip(void)
{
    static const int64_t values[] = {0,
                                     1,
                                     999,
                                     1000,
                                     -1,
                                     -999,
                                     -1000,
                                     -1001,
                                     -86400000LL,
                                     951782400000LL, /* 2000-02-29 */
                                     1709210096789LL,
                                     1700000000123LL,
                                     4102444799999LL, /* 2099-12-31T23:59:59.999Z */
                                     253402300799999LL};

    for (size_t i = 0; i < PGCMK_ARRAY_LEN(values); i++) {
        char out[PGCMK_TIME_LEN];
        int64_t back = 12345;

        pgcmk_time_format(values[i], out);
        CHECK(strlen(out) == 24);
        CHECK(pgcmk_time_parse(out, &back) == 0);
        CHECK(back == values[i]);
        if (back != values[i])
            fprintf(stderr, "  round trip %lld -> %s -> %lld\n", (long long)values[i], out,
                    (long long)back);
    }
    /* Every millisecond of one second and a spread of instants. */
    for (int64_t ms = 1700000000000LL; ms < 1700000001000LL; ms += 7) {
        char out[PGCMK_TIME_LEN];
        int64_t back = 0;

        pgcmk_time_format(ms, out);
        if (pgcmk_time_parse(out, &back) != 0 || back != ms) {
            CHECK(!"round trip");
            fprintf(stderr, "  round trip %lld -> %s -> %lld\n", (long long)ms, out,
                    (long long)back);
            break;
        }
    }
    CHECK(1);
}

static void
test_time_parse(void)
{
    const int64_t base = 1700000000000LL; /* 2023-11-14T22:13:20.000Z */
    char out[PGCMK_TIME_LEN];
    int64_t ms = 42;

    CHECK(parse_or("2023-11-14T22:13:20Z", -1) == base);
    CHECK(parse_or("2023-11-14t22:13:20z", -1) == base);
    CHECK(parse_or("2023-11-14 22:13:20Z", -1) == base);
    CHECK(parse_or("2023-11-14T22:13:20", -1) == base); /* no zone: UTC */
    CHECK(parse_or("2023-11-14T22:13Z", -1) == base - 20000);
    CHECK(parse_or("2023-11-14", -1) == base - (22 * 3600 + 13 * 60 + 20) * 1000LL);
    /* offsets */
    CHECK(parse_or("2023-11-15T00:13:20+02:00", -1) == base);
    CHECK(parse_or("2023-11-15T00:13:20+0200", -1) == base);
    CHECK(parse_or("2023-11-14T16:43:20-05:30", -1) == base);
    CHECK(parse_or("2023-11-14T22:13:20+00:00", -1) == base);
    CHECK(parse_or("2023-11-14T22:13:20-00:00", -1) == base);
    /* fractions: ms precision, extra digits dropped */
    CHECK(parse_or("2023-11-14T22:13:20.5Z", -1) == base + 500);
    CHECK(parse_or("2023-11-14T22:13:20.05Z", -1) == base + 50);
    CHECK(parse_or("2023-11-14T22:13:20.123Z", -1) == base + 123);
    CHECK(parse_or("2023-11-14T22:13:20.1234567Z", -1) == base + 123);
    CHECK(parse_or("2023-11-14T22:13:20.9999999Z", -1) == base + 999);
    CHECK(parse_or("2023-11-15T00:13:20.250+02:00", -1) == base + 250);
    /* leap day and leap second */
    CHECK(parse_or("2024-02-29T00:00:00Z", -1) == 1709164800000LL);
    CHECK(parse_or("2000-02-29T00:00:00Z", -1) == 951782400000LL);
    CHECK(pgcmk_time_parse("2023-12-31T23:59:60Z", &ms) == 0);
    /* parse then format normalises to UTC 'Z' */
    CHECK(pgcmk_time_parse("2023-06-15T12:34:56.789+02:00", &ms) == 0);
    pgcmk_time_format(ms, out);
    CHECK_STR(out, "2023-06-15T10:34:56.789Z");
    CHECK(pgcmk_time_parse("2023-12-31T23:30:00-01:00", &ms) == 0);
    pgcmk_time_format(ms, out);
    CHECK_STR(out, "2024-01-01T00:30:00.000Z");

    /* invalid dates and garbage: -1 and *ms untouched */
    static const char *const bad[] = {
        "",
        "garbage",
        "2023",
        "2023-",
        "2023-01",
        "2023-1-01",
        "2023-01-1",
        "23-01-01",
        "2023/01/01",
        "2023-00-10",
        "2023-13-01",
        "2023-01-00",
        "2023-01-32",
        "2023-02-30",
        "2023-02-31",
        "2023-04-31",
        "2023-06-31",
        "2023-09-31",
        "2023-11-31",
        "2023-01-01T",
        "2023-01-01T10",
        "2023-01-01T10:",
        "2023-01-01T1:00:00Z",
        "2023-01-01T24:00:00Z",
        "2023-01-01T10:60:00Z",
        "2023-01-01T10:00:61Z",
        "2023-01-01T10:00:00.Z",
        "2023-01-01T10:00:00+",
        "2023-01-01T10:00:00+02",
        "2023-01-01T10:00:00+02:",
        "2023-01-01T10:00:00+24:00",
        "2023-01-01T10:00:00+02:60",
        "2023-01-01T10:00:00ZZ",
        "2023-01-01T10:00:00Z ",
        " 2023-01-01T10:00:00Z",
        "2023-01-01T10:00:00 Z",
        "2023-01-01X10:00:00Z",
        "2023-01-01T10:00:00UTC",
        "abcd-ef-ghTij:kl:mnZ",
    };
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(bad); i++) {
        ms = 777;
        int rc = pgcmk_time_parse(bad[i], &ms);

        CHECK(rc == -1);
        CHECK(ms == 777);
        if (rc != -1)
            fprintf(stderr, "  time_parse accepted '%s' as %lld\n", bad[i], (long long)ms);
    }
}

/* 2023 is not a leap year: February 29th does not exist. */
static void
test_time_parse_feb29_non_leap(void)
{
    static const char *const bad[] = {"2023-02-29", "2023-02-29T00:00:00Z", "1900-02-29",
                                      "2100-02-29T12:00:00Z"};

    for (size_t i = 0; i < PGCMK_ARRAY_LEN(bad); i++) {
        int64_t ms = 777;
        int rc = pgcmk_time_parse(bad[i], &ms);

        CHECK(rc == -1);
        if (rc != -1)
            fprintf(stderr, "  time_parse accepted '%s' as %lld\n", bad[i], (long long)ms);
    }
}

/* ---- durations ------------------------------------------------------------------------- */

static int64_t
dur_or(const char *s, int64_t dflt)
{
    int64_t ms = 0;

    return pgcmk_duration_parse(s, &ms) == 0 ? ms : dflt;
}

static void
test_duration(void)
{
    CHECK(dur_or("P91D", -1) == 91 * DAY_MS);
    CHECK(dur_or("P91D", -1) == 7862400000LL);
    CHECK(dur_or("PT1H30M", -1) == 90 * 60000LL);
    CHECK(dur_or("P1DT12H", -1) == 36 * HOUR_MS);
    CHECK(dur_or("PT0.5S", -1) == 500);
    CHECK(dur_or("P1W", -1) == 7 * DAY_MS);
    CHECK(dur_or("P2W", -1) == 14 * DAY_MS);
    CHECK(dur_or("PT1S", -1) == 1000);
    CHECK(dur_or("PT90S", -1) == 90000);
    CHECK(dur_or("PT1M", -1) == 60000);
    CHECK(dur_or("PT36H", -1) == 36 * HOUR_MS);
    CHECK(dur_or("P0D", -1) == 0);
    CHECK(dur_or("PT0S", -1) == 0);
    CHECK(dur_or("P1DT1H1M1S", -1) == DAY_MS + HOUR_MS + 61000);
    CHECK(dur_or("P1.5D", -1) == 36 * HOUR_MS);
    CHECK(dur_or("PT0.001S", -1) == 1);
    CHECK(dur_or("p1d", -1) == DAY_MS);
    CHECK(dur_or("pt1h", -1) == HOUR_MS);
    CHECK(dur_or("P3650D", -1) == 3650 * DAY_MS);

    static const char *const bad[] = {
        "",     "P",    "PT",   "T1H",     "91D",    "P1Y",  "P1M",  "P1Y2M", "P1H",    "P1S",
        "PT1D", "PT1W", "P-1D", "-P1D",    "PT-1H",  "P1",   "PT1",  "P1DT1", "P1X",    "PD",
        "PTH",  "P 1D", "P1D ", "P1DTT1H", "PT1H T", "P.5D", "xP1D", "P1D2",  "P1DT1HX"};
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(bad); i++) {
        int64_t ms = 777;
        int rc = pgcmk_duration_parse(bad[i], &ms);

        CHECK(rc == -1);
        CHECK(ms == 777);
        if (rc != -1)
            fprintf(stderr, "  duration_parse accepted '%s' as %lld\n", bad[i], (long long)ms);
    }
}

/* Lax spots of the duration grammar: ISO 8601 wants a time component after 'T' and decimal
 * numbers only (no exponents, no hexadecimal). */
static void
test_duration_strict(void)
{
    static const char *const bad[] = {"P1DT", "P1e3D", "PT1e2S", "P0x2W"};

    for (size_t i = 0; i < PGCMK_ARRAY_LEN(bad); i++) {
        int64_t ms = 777;
        int rc = pgcmk_duration_parse(bad[i], &ms);

        CHECK(rc == -1);
        if (rc != -1)
            fprintf(stderr, "  duration_parse accepted '%s' as %lld\n", bad[i], (long long)ms);
    }
    /* Each component is bounded (1e7) but the sum is not: 2000 x 9999999W is 1.2e19 ms, past
     * INT64_MAX; the conversion of that double to int64_t is undefined. Expect a refusal. */
    {
        size_t cap = 2000 * 8 + 2, n = 0;
        char *big = pgcmk_xmalloc(cap + 1);
        int64_t ms = 777;
        int rc;

        big[n++] = 'P';
        for (int i = 0; i < 2000; i++) {
            memcpy(big + n, "9999999W", 8);
            n += 8;
        }
        big[n] = '\0';
        rc = pgcmk_duration_parse(big, &ms);
        CHECK(rc == -1 || ms > 0);
        CHECK(rc == -1);
        if (rc != -1)
            fprintf(stderr, "  duration_parse accepted 2000 x '9999999W' as %lld\n", (long long)ms);
        free(big);
    }
}

/* ---- errors ---------------------------------------------------------------------------- */

static void
test_err_table(void)
{
    struct pgcmk_err err;
    char big[2048];
    int rc;

    CHECK(pgcmk_err_status(PGCMK_E_MISSING_API_VERSION) == 400);
    CHECK_STR(pgcmk_err_code(PGCMK_E_MISSING_API_VERSION), "MissingApiVersionParameter");
    CHECK(pgcmk_err_status(PGCMK_E_RG_NOT_FOUND) == 404);
    CHECK_STR(pgcmk_err_code(PGCMK_E_RG_NOT_FOUND), "ResourceGroupNotFound");
    CHECK(pgcmk_err_status(PGCMK_E_INVALID_API_VERSION) == 400);
    CHECK_STR(pgcmk_err_code(PGCMK_E_INVALID_API_VERSION), "InvalidApiVersionParameter");
    CHECK(pgcmk_err_status(PGCMK_E_NO_PROVIDER) == 400);
    CHECK_STR(pgcmk_err_code(PGCMK_E_NO_PROVIDER), "NoRegisteredProviderFound");
    CHECK(pgcmk_err_status(PGCMK_E_METHOD_NOT_ALLOWED) == 405);
    CHECK_STR(pgcmk_err_code(PGCMK_E_METHOD_NOT_ALLOWED), "MethodNotAllowed");
    CHECK(pgcmk_err_status(PGCMK_E_PRECONDITION_FAILED) == 412);
    CHECK_STR(pgcmk_err_code(PGCMK_E_PRECONDITION_FAILED), "PreconditionFailed");
    CHECK(pgcmk_err_status(PGCMK_E_UNAUTHENTICATED) == 401);
    CHECK(pgcmk_err_status(PGCMK_E_FORBIDDEN) == 403);
    CHECK(pgcmk_err_status(PGCMK_E_CONFLICT) == 409);
    CHECK(pgcmk_err_status(PGCMK_E_TOO_LARGE) == 413);
    CHECK(pgcmk_err_status(PGCMK_E_UNSUPPORTED_MEDIA_TYPE) == 415);
    CHECK(pgcmk_err_status(PGCMK_E_INTERNAL) == 500);
    CHECK_STR(pgcmk_err_code(PGCMK_E_INTERNAL), "InternalServerError");
    CHECK(pgcmk_err_status(PGCMK_E_UNAVAILABLE) == 503);
    CHECK(pgcmk_err_status(PGCMK_E_OK) == 200);
    CHECK_STR(pgcmk_err_code(PGCMK_E_NOT_FOUND), "NotFound");
    CHECK_STR(pgcmk_err_code(PGCMK_E_INVALID_QUERY), "InvalidQueryParameter");
    CHECK_STR(pgcmk_err_code(PGCMK_E_SUBSCRIPTION_NOT_FOUND), "SubscriptionNotFound");
    CHECK_STR(pgcmk_err_code(PGCMK_E_INVALID_SUBSCRIPTION_ID), "InvalidSubscriptionId");

    for (int c = 0; c < PGCMK_E__COUNT; c++) {
        const char *code = pgcmk_err_code((enum pgcmk_errc)c);
        int st = pgcmk_err_status((enum pgcmk_errc)c);

        CHECK(code != NULL && code[0] != '\0');
        CHECK(st >= 200 && st <= 599);
        CHECK(pgcmk_err_evidence((enum pgcmk_errc)c) != NULL);
        CHECK(pgcmk_err_doc((enum pgcmk_errc)c) != NULL && *pgcmk_err_doc((enum pgcmk_errc)c));
        /* codes are identifiers: no spaces */
        CHECK(strchr(code, ' ') == NULL);
        /* only PGCMK_E_OK is a success */
        CHECK((c == PGCMK_E_OK) == (st < 400));
    }
    /* out of range falls back to the internal error */
    CHECK(pgcmk_err_status((enum pgcmk_errc)PGCMK_E__COUNT) == 500);
    CHECK(pgcmk_err_status((enum pgcmk_errc) - 1) == 500);
    CHECK_STR(pgcmk_err_code((enum pgcmk_errc)9999), "InternalServerError");

    /* set / clear */
    pgcmk_err_clear(&err);
    CHECK(err.code == PGCMK_E_OK && err.message[0] == '\0' && err.target[0] == '\0');
    rc = pgcmk_err_set(&err, PGCMK_E_RG_NOT_FOUND, "rg", "Resource group '%s' not found.", "x");
    CHECK(rc == -1);
    CHECK(err.code == PGCMK_E_RG_NOT_FOUND);
    CHECK_STR(err.target, "rg");
    CHECK_STR(err.message, "Resource group 'x' not found.");
    rc = pgcmk_err_set(&err, PGCMK_E_CONFLICT, NULL, "%s", "no target");
    CHECK(rc == -1);
    CHECK_STR(err.target, "");
    CHECK(pgcmk_err_set(NULL, PGCMK_E_INTERNAL, NULL, "ignored %d", 1) == -1);

    /* long messages and targets are truncated, NUL-terminated */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    rc = pgcmk_err_set(&err, PGCMK_E_BAD_REQUEST, big, "%s and %s", big, big);
    CHECK(rc == -1);
    CHECK(strlen(err.message) == PGCMK_ERR_MSG_LEN - 1);
    CHECK(strlen(err.target) == sizeof(err.target) - 1);
    CHECK(err.message[0] == 'x' && err.message[PGCMK_ERR_MSG_LEN - 2] == 'x');

    /* counters */
    {
        unsigned long before = pgcmk_err_counted(PGCMK_E_CONFLICT);

        pgcmk_err_count(PGCMK_E_CONFLICT);
        pgcmk_err_count(PGCMK_E_CONFLICT);
        CHECK(pgcmk_err_counted(PGCMK_E_CONFLICT) == before + 2);
    }
}

/* Every code round-trips through the table; inner Key Vault codes know their outer answer. */
static void
test_err_roundtrip(void)
{
    static const struct {
        enum pgcmk_errc e, parent;
        int status;
        const char *outer, *inner;
    } inner[] = {
        {PGCMK_E_KV_FORBIDDEN_BY_POLICY, PGCMK_E_KV_FORBIDDEN, 403, "Forbidden",
         "ForbiddenByPolicy"},
        {PGCMK_E_KV_KEY_OP_FORBIDDEN, PGCMK_E_KV_FORBIDDEN, 403, "Forbidden",
         "KeyOperationForbidden"},
        {PGCMK_E_KV_KEY_DISABLED, PGCMK_E_KV_FORBIDDEN, 403, "Forbidden", "KeyDisabled"},
        {PGCMK_E_KV_KEY_EXPIRED, PGCMK_E_KV_FORBIDDEN, 403, "Forbidden", "KeyExpired"},
        {PGCMK_E_KV_KEY_NOT_YET_VALID, PGCMK_E_KV_FORBIDDEN, 403, "Forbidden", "KeyNotYetValid"},
        {PGCMK_E_KV_PURGE_PROTECTED, PGCMK_E_KV_FORBIDDEN, 403, "Forbidden",
         "PurgeProtectionEnabled"},
        {PGCMK_E_KV_DELETED_RECOVERABLE, PGCMK_E_KV_CONFLICT, 409, "Conflict",
         "ObjectIsDeletedButRecoverable"},
    };

    int n_inner = 0;

    for (int c = 0; c < PGCMK_E__COUNT; c++) {
        enum pgcmk_errc e = (enum pgcmk_errc)c, back = pgcmk_err_from_code(pgcmk_err_code(e));
        enum pgcmk_errc parent = pgcmk_err_parent(e);
        int dup = 0;

        /* the first entry of a code comes back; a repeated code has the same status */
        CHECK_STR(pgcmk_err_code(back), pgcmk_err_code(e));
        CHECK(back <= e);
        CHECK(pgcmk_err_status(back) == pgcmk_err_status(e));
        for (int o = 0; o < PGCMK_E__COUNT; o++)
            dup += o != c && strcmp(pgcmk_err_code((enum pgcmk_errc)o), pgcmk_err_code(e)) == 0;
        if (!dup)
            CHECK(back == e);
        /* an entry is its own parent, or an inner code under an ordinary entry */
        if (parent == e) {
            CHECK(pgcmk_err_inner(e) == NULL);
        } else {
            n_inner++;
            CHECK(pgcmk_err_parent(parent) == parent);
            CHECK_STR(pgcmk_err_inner(e), pgcmk_err_code(e));
            CHECK(pgcmk_err_from_codes(pgcmk_err_code(parent), pgcmk_err_code(e)) == e);
        }
    }
    CHECK(n_inner == (int)PGCMK_ARRAY_LEN(inner));
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(inner); i++) {
        CHECK(pgcmk_err_parent(inner[i].e) == inner[i].parent);
        CHECK(pgcmk_err_status(inner[i].e) == inner[i].status);
        CHECK_STR(pgcmk_err_code(pgcmk_err_parent(inner[i].e)), inner[i].outer);
        CHECK_STR(pgcmk_err_inner(inner[i].e), inner[i].inner);
        CHECK(pgcmk_err_from_code(inner[i].inner) == inner[i].e);
        CHECK(pgcmk_err_from_codes(inner[i].outer, inner[i].inner) == inner[i].e);
        CHECK(pgcmk_err_from_codes(NULL, inner[i].inner) == inner[i].e);
    }
    /* an inner code under the wrong outer code, or unknown, falls back to the outer code */
    CHECK(pgcmk_err_from_codes("Conflict", "KeyDisabled") == pgcmk_err_from_code("Conflict"));
    CHECK(pgcmk_err_from_codes("Forbidden", "ForbiddenByRbac") == PGCMK_E_KV_FORBIDDEN);
    CHECK(pgcmk_err_from_codes("Forbidden", "") == PGCMK_E_KV_FORBIDDEN);
    CHECK(pgcmk_err_from_codes("VaultNotFound", NULL) == PGCMK_E_KV_VAULT_NOT_FOUND);
    CHECK(pgcmk_err_from_codes(NULL, NULL) == PGCMK_E_INTERNAL);
    CHECK(pgcmk_err_from_code("NoSuchCode") == PGCMK_E_INTERNAL);
    CHECK(pgcmk_err_inner(PGCMK_E_KV_FORBIDDEN) == NULL);
    CHECK(pgcmk_err_inner((enum pgcmk_errc)9999) == NULL);

    /* the reconciler's reason codes are entries of the table (explain shows them as before) */
    CHECK_STR(pgcmk_err_code(PGCMK_E_PG_REVALIDATION_REQUIRED), "ServerKeyRevalidationRequired");
    CHECK_STR(pgcmk_err_code(PGCMK_E_PG_KEY_UNCHECKED), "KeyNotCheckedSinceStart");
    CHECK(pgcmk_err_from_code("KeyNotCheckedSinceStart") == PGCMK_E_PG_KEY_UNCHECKED);
    CHECK_STR(pgcmk_err_evidence(PGCMK_E_PG_REVALIDATION_REQUIRED), "I");

    /* status names (.NET HttpStatusCode) */
    CHECK_STR(pgcmk_err_status_name(200), "OK");
    CHECK_STR(pgcmk_err_status_name(201), "Created");
    CHECK_STR(pgcmk_err_status_name(202), "Accepted");
    CHECK_STR(pgcmk_err_status_name(204), "NoContent");
    CHECK_STR(pgcmk_err_status_name(403), "Forbidden");
    CHECK_STR(pgcmk_err_status_name(412), "PreconditionFailed");
    CHECK_STR(pgcmk_err_status_name(504), "GatewayTimeout");
    CHECK_STR(pgcmk_err_status_name(418), "BadRequest");
    CHECK_STR(pgcmk_err_status_name(599), "InternalServerError");
    CHECK_STR(pgcmk_err_status_name(299), "OK");
}

/* Counts the files under dir (recursively) that hold needle; names the first in *where. */
static int
err_grep_tree(const char *dir, const char *needle, char *where, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int hits = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        char path[1024];
        size_t len = strlen(de->d_name);
        FILE *f;
        char *text;
        long size;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (de->d_type == DT_DIR) {
            int n = err_grep_tree(path, needle, where, cap);

            hits += n > 0 ? n : 0;
            continue;
        }
        if (len < 3 || (strcmp(de->d_name + len - 2, ".c") && strcmp(de->d_name + len - 2, ".h") &&
                        strcmp(de->d_name + len - 4, ".def")))
            continue;
        if ((f = fopen(path, "rb")) == NULL)
            continue;
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fseek(f, 0, SEEK_SET);
        text = calloc(1, (size_t)size + 1);
        if (text && fread(text, 1, (size_t)size, f) == (size_t)size && strstr(text, needle)) {
            if (hits++ == 0)
                snprintf(where, cap, "%s", path);
        }
        free(text);
        fclose(f);
    }
    closedir(d);
    return hits;
}

/* No code of the table appears as a string literal in src/: the table in err.h is the only place
 * (STYLE.md 2.4). Run from the repository root, as `make unit` does; PGCMK_SRC overrides. */
static void
test_err_no_literals(void)
{
    const char *src = getenv("PGCMK_SRC") ? getenv("PGCMK_SRC") : "src";
    DIR *d = opendir(src);

    CHECK(d != NULL);
    if (d == NULL) {
        fprintf(stderr, "test_err_no_literals: run from the repository root (no '%s')\n", src);
        return;
    }
    closedir(d);
    for (int c = 1; c < PGCMK_E__COUNT; c++) {
        char needle[128], where[1024] = "";
        int hits;

        snprintf(needle, sizeof(needle), "\"%s\"", pgcmk_err_code((enum pgcmk_errc)c));
        hits = err_grep_tree(src, needle, where, sizeof(where));
        if (hits != 0)
            fprintf(stderr, "the literal %s appears in %s (use pgcmk_err_code)\n", needle, where);
        CHECK(hits == 0);
    }
}

/* ---- key URIs ------------------------------------------------------------------------- */

#define V32 "0123456789abcdef0123456789abcdef"
#define KU_NO(u)                                                                                   \
    {                                                                                              \
        u, 0, NULL, NULL, NULL, 0, 0                                                               \
    }

/* One row per URI: accepted or not, and what it names. The first two refused rows are the ones
 * the validator and the agent used to disagree on. */
static void
test_keyuri(void)
{
    static const struct {
        const char *uri;
        int ok;
        const char *vault, *name, *version;
        int local, port;
    } cases[] = {
        KU_NO("https://kv1.vault.azure.net/keys/cmk/0123456789abcdef0123"),
        KU_NO("https://kv1.vault.azure.net:8443/keys/cmk/" V32),
        {"https://kv1.vault.azure.net/keys/cmk/" V32, 1, "kv1", "cmk", V32, 0, 0},
        {"https://KV1.Vault.Azure.Net:443/keys/cmk/" V32, 1, "kv1", "cmk", V32, 0, 443},
        {"https://kv1.vault.azure.net/keys/cmk", 1, "kv1", "cmk", "", 0, 0},
        {"https://kv1.vault.azure.net/keys/cmk/", 1, "kv1", "cmk", "", 0, 0},
        {"https://kv1.vault.azure.net/keys/cmk/" V32 "/", 1, "kv1", "cmk", V32, 0, 0},
        {"https://kv1.vault.localhost:8443/keys/cmk/" V32, 1, "kv1", "cmk", V32, 1, 8443},
        {"https://kv1.vault.localhost/keys/cmk/" V32, 1, "kv1", "cmk", V32, 1, 0},
        {"HTTPS://Kv-1.VAULT.LOCALHOST:1/KEYS/Cmk-2/0123456789ABCDEF0123456789ABCDEF", 1, "kv-1",
         "Cmk-2", "0123456789ABCDEF0123456789ABCDEF", 1, 1},
        {"https://abcdefghijklmnopqrstuvwx.vault.azure.net/keys/k", 1, "abcdefghijklmnopqrstuvwx",
         "k", "", 0, 0},
        KU_NO("https://kv1.vault.azure.net:443/keys/cmk/" V32 "0"),
        KU_NO("https://kv1.vault.azure.net/keys/cmk/" V32 "/wrapkey"),
        KU_NO("https://kv1.vault.azure.net/keys/cmk/0123456789abcdef0123456789abcdeg"),
        KU_NO("https://kv1.vault.azure.net/keys/cmk/0123456789abcdef0123456789abcde"),
        KU_NO("https://kv1.vault.azure.net/keys/cmk/" V32 "//"),
        KU_NO("https://kv1.vault.azure.net/keys/cmk//" V32),
        KU_NO("https://kv1.vault.azure.net/keys/cmk/" V32 "?api-version=7.4"),
        KU_NO("https://kv1.vault.azure.net/keys/cmk#x"),
        KU_NO("https://kv1.vault.azure.net/keys/c%20k"),
        KU_NO("https://kv1.vault.azure.net/keys/c.k"),
        KU_NO("https://kv1.vault.azure.net/keys//" V32),
        KU_NO("https://kv1.vault.azure.net/keys/"),
        KU_NO("https://kv1.vault.azure.net/secrets/cmk"),
        KU_NO("https://kv1.vault.azure.net"),
        KU_NO("https://kv1.vault.azure.net:/keys/cmk"),
        KU_NO("https://kv1.vault.localhost:0/keys/cmk"),
        KU_NO("https://kv1.vault.localhost:65536/keys/cmk"),
        KU_NO("https://kv1.vault.localhost:99999999999999999999/keys/cmk"),
        KU_NO("https://kv1.vault.localhost:84a3/keys/cmk"),
        KU_NO("https://kv1.vault.azure.net:443x/keys/cmk"),
        KU_NO("http://kv1.vault.azure.net/keys/cmk"),
        KU_NO("https://example.com/keys/cmk"),
        KU_NO("https://kv1.vault.azure.net.evil.com/keys/cmk"),
        KU_NO("https://user@kv1.vault.azure.net/keys/cmk"),
        KU_NO("https://a.kv1.vault.azure.net/keys/cmk"),
        KU_NO("https://.vault.azure.net/keys/cmk"),
        KU_NO("https://kv.vault.azure.net/keys/cmk"),
        KU_NO("https://kv_1.vault.azure.net/keys/cmk"),
        KU_NO("https://abcdefghijklmnopqrstuvwxy.vault.azure.net/keys/k"),
        KU_NO("https://kv1.vault.usgovcloudapi.net/keys/cmk"),
        KU_NO("https://kv1.managedhsm.azure.net/keys/cmk"),
        KU_NO(""),
        KU_NO(NULL),
    };
    struct pgcmk_keyuri ku;
    char longname[160], uri[256];
    const char *why;

    for (size_t i = 0; i < PGCMK_ARRAY_LEN(cases); i++) {
        int rc;

        why = NULL;
        rc = pgcmk_keyuri_parse(cases[i].uri, &ku, &why);
        if ((rc == 0) != cases[i].ok)
            fprintf(stderr, "keyuri case %zu '%s': rc %d (%s)\n", i,
                    cases[i].uri ? cases[i].uri : "(null)", rc, why ? why : "-");
        CHECK((rc == 0) == cases[i].ok);
        if (!cases[i].ok) {
            CHECK(why != NULL && *why);
            CHECK(ku.vault[0] == '\0' && ku.name[0] == '\0' && ku.version[0] == '\0');
            continue;
        }
        CHECK_STR(ku.vault, cases[i].vault);
        CHECK_STR(ku.name, cases[i].name);
        CHECK_STR(ku.version, cases[i].version);
        CHECK(ku.local == cases[i].local);
        CHECK(ku.port == cases[i].port);
    }
    /* key names: 127 characters pass, 128 do not */
    memset(longname, 'k', sizeof(longname));
    longname[127] = '\0';
    snprintf(uri, sizeof(uri), "https://kv1.vault.azure.net/keys/%s/" V32, longname);
    CHECK(pgcmk_keyuri_parse(uri, &ku, NULL) == 0 && strlen(ku.name) == 127);
    longname[127] = 'k';
    longname[128] = '\0';
    snprintf(uri, sizeof(uri), "https://kv1.vault.azure.net/keys/%s/" V32, longname);
    CHECK(pgcmk_keyuri_parse(uri, &ku, NULL) == -1);
}

/* ---- the virtual clock ----------------------------------------------------------------- */

struct listen_rec {
    atomic_int calls; /* the clock's tick calls from its own thread */
    int64_t last_now;
};

static void
clock_listener(int64_t now_ms, void *arg)
{
    struct listen_rec *r = arg;

    r->calls++;
    r->last_now = now_ms;
}

static int64_t
abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

static void
sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

static void
test_clock(void)
{
    static struct listen_rec rec;
    const int64_t t2030 = 1893456000000LL; /* 2030-01-01T00:00:00Z */
    unsigned long gen0, gen1;
    int64_t a, b, off, frozen_at;

    pgcmk_clock_init();
    CHECK(!pgcmk_clock_frozen());
    CHECK(abs64(pgcmk_clock_now() - pgcmk_wall_ms()) < 1000);
    CHECK(abs64(pgcmk_clock_offset()) < 1000);

    CHECK(pgcmk_clock_listen(clock_listener, &rec) == 0);

    /* freeze: now stands still */
    gen0 = pgcmk_clock_generation();
    pgcmk_clock_freeze();
    CHECK(pgcmk_clock_frozen());
    gen1 = pgcmk_clock_generation();
    CHECK(gen1 > gen0);
    a = pgcmk_clock_now();
    CHECK(a == pgcmk_clock_frozen_at());
    sleep_ms(30);
    b = pgcmk_clock_now();
    CHECK(a == b);
    /* freezing again keeps the instant */
    pgcmk_clock_freeze();
    CHECK(pgcmk_clock_now() == a);

    /* advance while frozen moves exactly, and the listener sees the new now */
    rec.calls = 0;
    pgcmk_clock_advance(91 * DAY_MS);
    CHECK(pgcmk_clock_now() == a + 91 * DAY_MS);
    CHECK(pgcmk_clock_frozen());
    CHECK(rec.calls == 1);
    CHECK(rec.last_now == a + 91 * DAY_MS);
    CHECK(pgcmk_clock_generation() > gen1);
    gen1 = pgcmk_clock_generation();
    pgcmk_clock_advance(1);
    CHECK(pgcmk_clock_now() == a + 91 * DAY_MS + 1);
    CHECK(rec.calls == 2 && rec.last_now == a + 91 * DAY_MS + 1);
    CHECK(pgcmk_clock_generation() > gen1);
    pgcmk_clock_advance(-1);
    CHECK(pgcmk_clock_now() == a + 91 * DAY_MS);

    /* set while frozen: stays frozen at the new time */
    gen1 = pgcmk_clock_generation();
    pgcmk_clock_set(t2030);
    CHECK(pgcmk_clock_frozen());
    CHECK(pgcmk_clock_now() == t2030);
    CHECK(pgcmk_clock_frozen_at() == t2030);
    CHECK(rec.last_now == t2030);
    CHECK(pgcmk_clock_generation() > gen1);
    sleep_ms(20);
    CHECK(pgcmk_clock_now() == t2030);

    /* offset while frozen: frozen_at - wall */
    CHECK(abs64(pgcmk_clock_offset() - (t2030 - pgcmk_wall_ms())) < 1000);

    /* resume continues from the frozen instant */
    gen1 = pgcmk_clock_generation();
    pgcmk_clock_resume();
    CHECK(!pgcmk_clock_frozen());
    CHECK(pgcmk_clock_generation() > gen1);
    a = pgcmk_clock_now();
    CHECK(a >= t2030 && a - t2030 < 1000);
    CHECK(abs64(rec.last_now - t2030) < 1000);
    sleep_ms(30);
    b = pgcmk_clock_now();
    CHECK(b >= a + 20); /* running again */
    CHECK(b - t2030 < 5000);

    /* advance while running shifts the offset */
    off = pgcmk_clock_offset();
    pgcmk_clock_advance(HOUR_MS);
    CHECK(abs64(pgcmk_clock_offset() - (off + HOUR_MS)) < 2);
    CHECK(abs64(pgcmk_clock_now() - (pgcmk_wall_ms() + off + HOUR_MS)) < 1000);
    CHECK(abs64(rec.last_now - (b + HOUR_MS)) < 1000);

    /* set while running */
    pgcmk_clock_set(t2030);
    CHECK(!pgcmk_clock_frozen());
    CHECK(abs64(pgcmk_clock_now() - t2030) < 1000);

    /* offset / restore round trip, running */
    off = pgcmk_clock_offset();
    pgcmk_clock_init();
    CHECK(abs64(pgcmk_clock_offset()) < 1000);
    pgcmk_clock_restore(off, 0, 0);
    CHECK(!pgcmk_clock_frozen());
    CHECK(pgcmk_clock_offset() == off);
    CHECK(abs64(pgcmk_clock_now() - t2030) < 1000);

    /* offset / restore round trip, frozen */
    pgcmk_clock_freeze();
    off = pgcmk_clock_offset();
    frozen_at = pgcmk_clock_frozen_at();
    pgcmk_clock_init();
    pgcmk_clock_restore(off, 1, frozen_at);
    CHECK(pgcmk_clock_frozen());
    CHECK(pgcmk_clock_now() == frozen_at);
    CHECK(pgcmk_clock_frozen_at() == frozen_at);
    pgcmk_clock_resume();
    CHECK(abs64(pgcmk_clock_now() - frozen_at) < 1000);

    /* the tick: the listeners every interval while the clock runs, without a new generation;
     * nothing while it is frozen, nothing after it stopped */
    {
        int64_t until;
        int before;

        gen1 = pgcmk_clock_generation();
        before = atomic_load(&rec.calls);
        CHECK(pgcmk_clock_tick_start(10) == 0);
        CHECK(pgcmk_clock_tick_start(10) == 0); /* already running: no second thread */
        until = pgcmk_wall_ms() + 5000;
        while (atomic_load(&rec.calls) < before + 3 && pgcmk_wall_ms() < until)
            sleep_ms(5);
        CHECK(atomic_load(&rec.calls) >= before + 3);
        CHECK(pgcmk_clock_generation() == gen1);
        pgcmk_clock_freeze();
        sleep_ms(20); /* a tick that read the clock just before the freeze ends */
        before = atomic_load(&rec.calls);
        sleep_ms(60);
        CHECK(atomic_load(&rec.calls) == before);
        pgcmk_clock_resume();
        pgcmk_clock_tick_stop();
        before = atomic_load(&rec.calls);
        sleep_ms(40);
        CHECK(atomic_load(&rec.calls) == before);
        pgcmk_clock_tick_stop(); /* stopping twice is harmless */
        CHECK(pgcmk_clock_tick_start(0) == -1);
    }

    /* the listener table is bounded */
    {
        int ok = 0, refused = 0;

        for (int i = 0; i < 40; i++) {
            if (pgcmk_clock_listen(clock_listener, &rec) == 0)
                ok++;
            else
                refused++;
        }
        CHECK(ok >= 1 && ok < 40);
        CHECK(refused > 0);
    }
    pgcmk_clock_init();
}

/* ---- configuration --------------------------------------------------------------------- */

static const char *const cfg_env_vars[] = {
    "PGCMK_DATA_DIR",      "PGCMK_DB",        "PGCMK_PORT",
    "PGCMK_PORT_FILE",     "PGCMK_HTTP_PORT", "PGCMK_HTTP_PORT_FILE",
    "PGCMK_LISTEN",        "PGCMK_AUTH",      "PGCMK_LOG_LEVEL",
    "PGCMK_TLS_CERT",      "PGCMK_TLS_KEY",   "PGCMK_WEB",
    "PGCMK_SCHEMAS",       "PGCMK_THREADS",   "PGCMK_WORKERS",
    "PGCMK_MAX_BODY_KB",   "PGCMK_TIMEOUT",   "PGCMK_SYNC",
    "PGCMK_LRO_MIN_POLLS", "PGCMK_PAGE_SIZE"};

static void
cfg_clear_env(void)
{
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(cfg_env_vars); i++)
        unsetenv(cfg_env_vars[i]);
}

static FILE *cfg_errs;

/* Runs pgcmk_cfg_load on a NULL-terminated list of arguments (argv[0] added). */
static int
cfg_run(struct pgcmk_cfg *cfg, const char *const *args)
{
    char *argv[32], *owned[32];
    int argc = 0, rc;

    argv[argc] = owned[argc] = pgcmk_xstrdup("pgcmkd");
    argc++;
    for (int i = 0; args && args[i] && argc < 31; i++, argc++)
        argv[argc] = owned[argc] = pgcmk_xstrdup(args[i]);
    argv[argc] = NULL;
    rc = pgcmk_cfg_load(cfg, argc, argv, cfg_errs);
    for (int i = 0; i < argc; i++)
        free(owned[i]);
    return rc;
}

/* The same with stdout sent to /dev/null (for --help). */
static int
cfg_run_quiet(struct pgcmk_cfg *cfg, const char *const *args)
{
    int saved, devnull, rc;

    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    devnull = open("/dev/null", O_WRONLY);
    if (saved < 0 || devnull < 0) {
        if (saved >= 0)
            close(saved);
        if (devnull >= 0)
            close(devnull);
        return cfg_run(cfg, args);
    }
    dup2(devnull, STDOUT_FILENO);
    close(devnull);
    rc = cfg_run(cfg, args);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    return rc;
}

static void
test_cfg(void)
{
    struct pgcmk_cfg cfg;
    int rc;

    cfg_errs = fopen("/dev/null", "w");
    CHECK(cfg_errs != NULL);
    if (cfg_errs == NULL)
        return;
    cfg_clear_env();

    /* defaults */
    rc = cfg_run(&cfg, NULL);
    CHECK(rc == 0);
    CHECK(cfg.port == 8443);
    CHECK_STR(cfg.data_dir, "./var");
    CHECK(cfg.auth == PGCMK_AUTH_OPEN);
    CHECK(cfg.http_port == -1);
    CHECK_STR(cfg.listen, "127.0.0.1,::1");
    CHECK_STR(cfg.db, "");
    CHECK_STR(cfg.tls_cert, "");
    CHECK_STR(cfg.tls_key, "");
    CHECK(cfg.workers == 4);
    CHECK(cfg.page_size == 100);
    CHECK(cfg.max_body_kb == 4096);
    CHECK(cfg.lro_min_polls == 0);
    CHECK(cfg.sync_full == 0);
    CHECK(cfg.threads >= 1); /* 0 = cores, resolved */
    pgcmk_cfg_release(&cfg);
    CHECK(cfg.data_dir == NULL);

    /* flags */
    {
        const char *const a[] = {"--port",     "0",      "--auth",        "strict",
                                 "--data-dir", "/tmp/x", "--page-size=2", "--db",
                                 ":memory:",   "--sync", "FULL",          NULL};

        rc = cfg_run(&cfg, a);
        CHECK(rc == 0);
        CHECK(cfg.port == 0);
        CHECK(cfg.auth == PGCMK_AUTH_STRICT);
        CHECK_STR(cfg.data_dir, "/tmp/x");
        CHECK(cfg.page_size == 2);
        CHECK_STR(cfg.db, ":memory:");
        CHECK(cfg.sync_full == 1);
        pgcmk_cfg_release(&cfg);
    }
    {
        const char *const a[] = {"--port", "65535", "--http-port", "0", NULL};

        CHECK(cfg_run(&cfg, a) == 0);
        CHECK(cfg.port == 65535);
        CHECK(cfg.http_port == 0);
        pgcmk_cfg_release(&cfg);
    }
    /* bad values */
    {
        static const char *const bad[][4] = {
            {"--port", "70000", NULL, NULL},
            {"--port", "-1", NULL, NULL},
            {"--port", "12ab", NULL, NULL},
            {"--port", "", NULL, NULL},
            {"--auth", "maybe", NULL, NULL},
            {"--page-size", "0", NULL, NULL},
            {"--bogus", NULL, NULL, NULL},
            {"--bogus", "1", NULL, NULL},
            {"-x", NULL, NULL, NULL},
            {"--port", NULL, NULL, NULL},
            {"stray", NULL, NULL, NULL},
            {"--tls-cert", "/tmp/c.pem", NULL, NULL},
            {"--tls-key", "/tmp/k.pem", NULL, NULL},
            {"--port", "99999999999999999999", NULL, NULL},
        };
        for (size_t i = 0; i < PGCMK_ARRAY_LEN(bad); i++) {
            rc = cfg_run(&cfg, bad[i]);
            CHECK(rc == -1);
            if (rc != -1)
                fprintf(stderr, "  cfg_load accepted '%s %s' (rc %d)\n", bad[i][0],
                        bad[i][1] ? bad[i][1] : "", rc);
            pgcmk_cfg_release(&cfg);
        }
    }
    {
        const char *const a[] = {"--tls-cert", "/tmp/c.pem", "--tls-key", "/tmp/k.pem", NULL};

        CHECK(cfg_run(&cfg, a) == 0);
        CHECK_STR(cfg.tls_cert, "/tmp/c.pem");
        CHECK_STR(cfg.tls_key, "/tmp/k.pem");
        pgcmk_cfg_release(&cfg);
    }

    /* environment */
    setenv("PGCMK_PORT", "1234", 1);
    CHECK(cfg_run(&cfg, NULL) == 0);
    CHECK(cfg.port == 1234);
    pgcmk_cfg_release(&cfg);
    {
        const char *const a[] = {"--port", "4321", NULL};

        CHECK(cfg_run(&cfg, a) == 0);
        CHECK(cfg.port == 4321); /* the flag beats the variable */
        pgcmk_cfg_release(&cfg);
    }
    setenv("PGCMK_PORT", "not-a-port", 1);
    CHECK(cfg_run(&cfg, NULL) == -1);
    pgcmk_cfg_release(&cfg);
    unsetenv("PGCMK_PORT");
    setenv("PGCMK_AUTH", "strict", 1);
    setenv("PGCMK_DATA_DIR", "/tmp/envdir", 1);
    CHECK(cfg_run(&cfg, NULL) == 0);
    CHECK(cfg.auth == PGCMK_AUTH_STRICT);
    CHECK_STR(cfg.data_dir, "/tmp/envdir");
    pgcmk_cfg_release(&cfg);
    cfg_clear_env();
    CHECK(cfg_run(&cfg, NULL) == 0);
    CHECK(cfg.port == 8443 && cfg.auth == PGCMK_AUTH_OPEN);
    pgcmk_cfg_release(&cfg);

    /* --help and friends */
    {
        const char *const a[] = {"--help", NULL};

        CHECK(cfg_run_quiet(&cfg, a) == 1);
        pgcmk_cfg_release(&cfg);
    }
    {
        const char *const a[] = {"-h", NULL};

        CHECK(cfg_run_quiet(&cfg, a) == 1);
        pgcmk_cfg_release(&cfg);
    }
    {
        const char *const a[] = {"--print-config", NULL};

        CHECK(cfg_run(&cfg, a) == 2);
        pgcmk_cfg_release(&cfg);
    }
    {
        const char *const a[] = {"--error-table", NULL};

        CHECK(cfg_run(&cfg, a) == 3);
        pgcmk_cfg_release(&cfg);
    }
    /* a later scan is not confused by an earlier one that stopped early */
    CHECK(cfg_run(&cfg, NULL) == 0);
    CHECK(cfg.port == 8443);
    pgcmk_cfg_release(&cfg);

    /* print hides the key */
    {
        const char *const a[] = {"--tls-cert", "/tmp/c.pem", "--tls-key", "/tmp/secret.pem", NULL};
        char *buf = NULL;
        size_t len = 0;
        FILE *mem;

        CHECK(cfg_run(&cfg, a) == 0);
        mem = open_memstream(&buf, &len);
        CHECK(mem != NULL);
        if (mem) {
            pgcmk_cfg_print(mem, &cfg);
            fclose(mem);
            CHECK(strstr(buf, "tls-key=***") != NULL);
            CHECK(strstr(buf, "secret") == NULL);
            CHECK(strstr(buf, "tls-cert=/tmp/c.pem") != NULL);
            CHECK(strstr(buf, "port=8443\n") != NULL);
            CHECK(strstr(buf, "auth=open") != NULL);
            free(buf);
        }
        pgcmk_cfg_release(&cfg);
    }
    fclose(cfg_errs);
    cfg_errs = NULL;
}

/* ---- uuids and strings ----------------------------------------------------------------- */

static void
test_uuid(void)
{
    char a[37], b[37];
    int ok = 1;

    pgcmk_uuid(a);
    pgcmk_uuid(b);
    CHECK(strlen(a) == 36);
    CHECK(strlen(b) == 36);
    CHECK(strcmp(a, b) != 0);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            ok &= a[i] == '-';
        else
            ok &= isxdigit((unsigned char)a[i]) && !isupper((unsigned char)a[i]);
    }
    CHECK(ok);
    CHECK(a[14] == '4');
    CHECK(strchr("89ab", a[19]) != NULL);
    /* many in a row stay well formed and distinct from the first */
    for (int i = 0; i < 200; i++) {
        pgcmk_uuid(b);
        if (b[14] != '4' || strlen(b) != 36 || strcmp(a, b) == 0) {
            CHECK(!"uuid");
            break;
        }
    }
}

static void
test_strings(void)
{
    char buf[8];
    char *p;

    CHECK(pgcmk_streq_ci("ResourceGroups", "resourcegroups"));
    CHECK(pgcmk_streq_ci("", ""));
    CHECK(!pgcmk_streq_ci("abc", "abd"));
    CHECK(!pgcmk_streq_ci("abc", "abcd"));
    CHECK(pgcmk_strneq_ci("Microsoft.KeyVault", "microsoft.keyvaultX", 18));
    CHECK(!pgcmk_strneq_ci("Microsoft.KeyVault", "microsoft.keyvaulX", 18));
    CHECK(pgcmk_strneq_ci("abc", "xyz", 0));
    CHECK(pgcmk_has_suffix_ci("myvault.VAULT.localhost", ".vault.LOCALHOST"));
    CHECK(pgcmk_has_suffix_ci("abc", ""));
    CHECK(pgcmk_has_suffix_ci("abc", "ABC"));
    CHECK(!pgcmk_has_suffix_ci("bc", "abc"));
    CHECK(!pgcmk_has_suffix_ci("abcd", "abc"));

    pgcmk_lower(buf, sizeof(buf), "AbC");
    CHECK_STR(buf, "abc");
    pgcmk_lower(buf, sizeof(buf), "ABCDEFGHIJ"); /* truncated to cap-1 */
    CHECK_STR(buf, "abcdefg");
    pgcmk_lower(buf, 1, "XYZ");
    CHECK_STR(buf, "");
    buf[0] = 'q';
    pgcmk_lower(buf, 0, "XYZ"); /* cap 0 writes nothing */
    CHECK(buf[0] == 'q');

    {
        char url[40] = "https://h/x";
        size_t n = strlen(url);

        n = pgcmk_query_append(url, sizeof(url), n, "a", "b c/é");
        CHECK_STR(url, "https://h/x?a=b%20c%2F%C3%A9");
        n = pgcmk_query_append(url, sizeof(url), n, "$top", "5");
        CHECK_STR(url, "https://h/x?a=b%20c%2F%C3%A9&$top=5");
        n = pgcmk_query_append(url, sizeof(url), n, "long", "abcdefghijkl"); /* cut at cap */
        CHECK(n < sizeof(url) && url[n] == '\0' && strlen(url) == n);
        CHECK(pgcmk_query_append(url, sizeof(url), sizeof(url), "k", "v") == sizeof(url));
    }

    p = pgcmk_xstrndup("hello world", 5);
    CHECK_STR(p, "hello");
    free(p);
    p = pgcmk_xstrndup("hi", 10);
    CHECK_STR(p, "hi");
    free(p);
    p = pgcmk_xasprintf("%s-%d", "x", 42);
    CHECK_STR(p, "x-42");
    free(p);
    p = pgcmk_xstrdup("secret");
    pgcmk_secret_free(p, strlen(p));
    pgcmk_secret_free(NULL, 10);
    CHECK(1);
}

/* ---- the work pool --------------------------------------------------------------------- */

static atomic_int work_counter;

static void
work_incr(void *arg)
{
    PGCMK_UNUSED(arg);
    atomic_fetch_add(&work_counter, 1);
}

static void
work_slow_incr(void *arg)
{
    PGCMK_UNUSED(arg);
    usleep(200);
    atomic_fetch_add(&work_counter, 1);
}

static void
test_work(void)
{
    /* not started: jobs run at once on this thread */
    atomic_store(&work_counter, 0);
    pgcmk_work_submit(work_incr, NULL);
    CHECK(atomic_load(&work_counter) == 1);
    pgcmk_work_drain(); /* returns at once */

    atomic_store(&work_counter, 0);
    pgcmk_work_start(2);
    for (int i = 0; i < 100; i++)
        pgcmk_work_submit(work_incr, NULL);
    pgcmk_work_drain();
    CHECK(atomic_load(&work_counter) == 100);
    pgcmk_work_drain(); /* idle: returns */

    for (int i = 0; i < 50; i++)
        pgcmk_work_submit(work_slow_incr, NULL);
    pgcmk_work_drain();
    CHECK(atomic_load(&work_counter) == 150);

    /* stop finishes what is queued */
    for (int i = 0; i < 40; i++)
        pgcmk_work_submit(work_slow_incr, NULL);
    pgcmk_work_stop();
    CHECK(atomic_load(&work_counter) == 190);

    /* stopped: inline again */
    pgcmk_work_submit(work_incr, NULL);
    CHECK(atomic_load(&work_counter) == 191);

    /* and it starts again */
    pgcmk_work_start(3);
    for (int i = 0; i < 100; i++)
        pgcmk_work_submit(work_incr, NULL);
    pgcmk_work_drain();
    CHECK(atomic_load(&work_counter) == 291);
    pgcmk_work_stop();
}

/* A job that waits for another job of the same pool: every waiter detaches first, so with two
 * workers and four waiters the children still run. Without detaching, the two workers would
 * wait for children queued behind the other two waiters (the wait below gives up after 10 s). */
struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int child_ran, detached, ok;
    atomic_int started;
};

static void
waiter_child(void *arg)
{
    struct waiter *w = arg;

    pthread_mutex_lock(&w->mu);
    w->child_ran = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void
waiter_job(void *arg)
{
    struct waiter *w = arg;
    struct timespec until;

    w->detached = pgcmk_work_detach();
    CHECK(w->detached != 0 || pgcmk_work_detach() == 0); /* already out: harmless */
    atomic_store(&w->started, 1);
    usleep(2000); /* let the other waiters take the workers first */
    pgcmk_work_submit(waiter_child, w);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&w->mu);
    while (!w->child_ran && pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
        ;
    w->ok = w->child_ran;
    pthread_mutex_unlock(&w->mu);
    atomic_fetch_add(&work_counter, 1);
}

static void
test_work_detach(void)
{
    struct waiter w[4];
    int ok = 0, detached = 0;

    CHECK(pgcmk_work_detach() == -1); /* not a pool worker */
    atomic_store(&work_counter, 0);
    pgcmk_work_start(2);
    for (int i = 0; i < 4; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        pthread_mutex_init(&w[i].mu, NULL);
        pthread_cond_init(&w[i].cv, NULL);
    }
    for (int i = 0; i < 4; i++)
        pgcmk_work_submit(waiter_job, &w[i]);
    pgcmk_work_drain(); /* waits for the detached jobs too */
    CHECK(atomic_load(&work_counter) == 4);
    for (int i = 0; i < 4; i++) {
        ok += w[i].ok;
        detached += w[i].detached == 0;
    }
    CHECK(ok == 4);
    CHECK(detached == 4);

    /* the pool kept its size: plain jobs still run, and stop waits for a detached job */
    for (int i = 0; i < 4; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        pthread_mutex_init(&w[i].mu, NULL);
        pthread_cond_init(&w[i].cv, NULL);
    }
    for (int i = 0; i < 100; i++)
        pgcmk_work_submit(work_incr, NULL);
    pgcmk_work_submit(waiter_job, &w[0]);
    for (int i = 0; i < 10000 && !atomic_load(&w[0].started); i++)
        usleep(1000);
    CHECK(w[0].detached == 0);
    pgcmk_work_stop(); /* waits for the detached job, whose child the workers still run */
    CHECK(atomic_load(&work_counter) == 105);
    CHECK(w[0].ok == 1);
    for (int i = 0; i < 4; i++) {
        pthread_mutex_destroy(&w[i].mu);
        pthread_cond_destroy(&w[i].cv);
    }
}

int
main(void)
{
    test_time_format();
    test_time_round_trip();
    test_time_parse();
    test_time_parse_feb29_non_leap();
    test_duration();
    test_duration_strict();
    test_err_table();
    test_err_roundtrip();
    test_err_no_literals();
    test_keyuri();
    test_clock();
    test_cfg();
    test_uuid();
    test_strings();
    test_work();
    test_work_detach();
    return t_done("test_core");
}
