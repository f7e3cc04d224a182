/* filter.c - the Activity Log's $filter, parsed by a pure function.
 *
 * Azure's grammar (activityLogs_API.json, 2015-04-01) is deliberately narrow:
 *   eventTimestamp ge '<time>' [and eventTimestamp le '<time>'] [and <field> eq '<value>']...
 * with <field> one of resourceGroupName, resourceUri (resourceId), resourceProvider,
 * correlationId, plus what the az CLI and the portal add: caller, status, levels, eventChannels.
 * Anything else ("or", unknown fields, eq on a time, no start time) is Azure's 400 BadRequest
 * "$filter searching parameters invalid".
 *
 * pgcmk_activity_filter_parse_buf reads a buffer and its length (no NUL needed), touches no
 * database, no clock and no global, and is bounded: at most PGCMK_ACTIVITY_FILTER_MAX bytes are
 * read once, left to right, and every copy is checked against its destination. The libFuzzer
 * target tests/fuzz/fuzz_filter.c calls it directly. */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/monitor.h"
#include "pgcmk/core.h"

/* A cursor over [p, end). */
struct cur {
    const char *p, *end;
};

#define FILTER_HELP                                                                                \
    "Use: eventTimestamp ge '2024-01-01T00:00:00Z' [and eventTimestamp le "                        \
    "'2024-01-02T00:00:00Z'] [and resourceGroupName eq 'rg' | resourceId eq '/subscriptions/...' " \
    "| correlationId eq '...' | resourceProvider eq 'Microsoft.KeyVault' | caller eq '...' | "     \
    "status eq 'Failed' | levels eq 'Error,Warning']."

/* The fields that take eq, where they go in the result. */
struct filter_field {
    const char *name;
    size_t off, cap;
};

#define FIELD(n, m)                                                                                \
    {                                                                                              \
        n, offsetof(struct pgcmk_activity_filter, m),                                              \
            sizeof(((struct pgcmk_activity_filter *)0)->m)                                         \
    }

static const struct filter_field filter_fields[] = {
    FIELD("resourceGroupName", rg),
    FIELD("resourceId", resource_id),
    FIELD("resourceUri", resource_id),
    FIELD("correlationId", correlation_id),
    FIELD("resourceProvider", provider),
    FIELD("caller", caller),
    FIELD("status", status),
};

/* -1 with Azure's error; `near` (may be NULL) is quoted, at most 64 bytes of it. */
static int
filter_fail(struct pgcmk_err *err, const char *what, const char *near, size_t near_len)
{
    int n = near ? (int)(near_len > 64 ? 64 : near_len) : 0;

    return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "$filter",
                         "$filter searching parameters invalid: %s%s%.*s%s. " FILTER_HELP, what,
                         near ? " near '" : "", n, near ? near : "", near ? "'" : "");
}

static int
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void
skip_ws(struct cur *c)
{
    while (c->p < c->end && is_blank(*c->p))
        c->p++;
}

static size_t
left(const struct cur *c)
{
    return (size_t)(c->end - c->p);
}

/* 1 when the cursor is at the keyword `kw` (any case) followed by a blank or the end. */
static int
at_keyword(const struct cur *c, const char *kw)
{
    size_t n = strlen(kw);

    return left(c) >= n && strncasecmp(c->p, kw, n) == 0 && (left(c) == n || is_blank(c->p[n]));
}

/* Reads a run of letters into out (cap bytes with the NUL). 0, or -1 when it does not fit. */
static int
read_word(struct cur *c, char *out, size_t cap)
{
    size_t n = 0;

    while (c->p < c->end && isalpha((unsigned char)*c->p)) {
        if (n + 1 >= cap)
            return -1;
        out[n++] = *c->p++;
    }
    out[n] = '\0';
    return 0;
}

/* Reads a value: 'quoted' ('' is a quote) or bare up to the next blank-"and"-blank or the end
 * (trailing blanks dropped). 1 with the value, 0 when missing, unterminated or too long. */
static int
read_value(struct cur *c, char *out, size_t cap)
{
    size_t n = 0;

    if (c->p < c->end && *c->p == '\'') {
        for (c->p++;; c->p++) {
            if (c->p == c->end)
                return 0; /* unterminated */
            if (*c->p == '\'') {
                if (c->p + 1 < c->end && c->p[1] == '\'') {
                    c->p++;
                } else {
                    c->p++;
                    break;
                }
            }
            if (n + 1 >= cap)
                return 0;
            out[n++] = *c->p;
        }
    } else {
        while (c->p < c->end) {
            const char *run = c->p;

            if (is_blank(*c->p)) { /* a whole run of blanks at once, so each byte is read once */
                struct cur look = *c;

                skip_ws(&look);
                if (at_keyword(&look, "and"))
                    break;
                run = look.p; /* copy the blanks, then go on from the next word */
            } else {
                run = c->p + 1;
            }
            if ((size_t)(run - c->p) >= cap - n)
                return 0;
            memcpy(out + n, c->p, (size_t)(run - c->p));
            n += (size_t)(run - c->p);
            c->p = run;
        }
        while (n && is_blank(out[n - 1]))
            n--;
    }
    out[n] = '\0';
    return n > 0;
}

/* levels eq 'Error, Warning' -> ",error,warning," */
static int
set_levels(struct pgcmk_activity_filter *out, const char *value, struct pgcmk_err *err)
{
    size_t k = 1;

    if (out->levels[0])
        return filter_fail(err, "a condition appears twice", "levels", 6);
    out->levels[0] = ',';
    for (const char *v = value; *v; v++) {
        if (is_blank(*v))
            continue;
        if (k + 2 >= sizeof(out->levels))
            return filter_fail(err, "the value is too long", "levels", 6);
        out->levels[k++] = (char)tolower((unsigned char)*v);
    }
    out->levels[k++] = ',';
    out->levels[k] = '\0';
    return 0;
}

static int
set_field(struct pgcmk_activity_filter *out, const struct filter_field *f, const char *value,
          struct pgcmk_err *err)
{
    char *dst = (char *)out + f->off;
    size_t n = strlen(value);

    if (dst[0])
        return filter_fail(err, "a condition appears twice", f->name, strlen(f->name));
    if (n >= f->cap)
        return filter_fail(err, "the value is too long", f->name, strlen(f->name));
    memcpy(dst, value, n + 1);
    return 0;
}

static int
set_time(struct pgcmk_activity_filter *out, const char *op, const char *value, int *have_from,
         int *have_to, struct pgcmk_err *err)
{
    int64_t ms;

    if (strcmp(op, "eq") == 0)
        return filter_fail(err, "eventTimestamp takes ge, gt, le or lt", NULL, 0);
    if (pgcmk_time_parse(value, &ms))
        return filter_fail(err, "the time is not an ISO-8601 date-time", value, strlen(value));
    if (op[0] == 'g') {
        if ((*have_from)++)
            return filter_fail(err, "a condition appears twice", "eventTimestamp", 14);
        out->from_ms = op[1] == 't' ? ms + 1 : ms;
    } else {
        if ((*have_to)++)
            return filter_fail(err, "a condition appears twice", "eventTimestamp", 14);
        out->to_ms = op[1] == 't' ? ms - 1 : ms;
    }
    return 0;
}

int
pgcmk_activity_filter_parse_buf(const char *buf, size_t len, struct pgcmk_activity_filter *out,
                                struct pgcmk_err *err)
{
    struct cur c;
    int have_from = 0, have_to = 0;

    memset(out, 0, sizeof(*out));
    out->to_ms = INT64_MAX;
    if (buf == NULL)
        buf = "", len = 0;
    c.p = buf;
    c.end = buf + len;
    if (len > PGCMK_ACTIVITY_FILTER_MAX)
        return filter_fail(err, "the filter is too long", NULL, 0);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)buf[i] < 0x20 && buf[i] != '\t')
            return filter_fail(err, "a control character", NULL, 0);
    skip_ws(&c);
    if (c.p == c.end)
        return filter_fail(err,
                           "the $filter query parameter is required and must give a start "
                           "time",
                           NULL, 0);
    while (c.p < c.end) {
        char field[32], op[4], value[1024];
        const char *at = c.p;

        if (read_word(&c, field, sizeof(field)) || field[0] == '\0')
            return filter_fail(err, "expected a field name", at, (size_t)(c.end - at));
        skip_ws(&c);
        if (read_word(&c, op, sizeof(op)) || strlen(op) != 2)
            return filter_fail(err, "expected eq, ge, gt, le or lt after", field, strlen(field));
        for (char *o = op; *o; o++)
            *o = (char)tolower((unsigned char)*o);
        if (strcmp(op, "eq") != 0 && strcmp(op, "ge") != 0 && strcmp(op, "gt") != 0 &&
            strcmp(op, "le") != 0 && strcmp(op, "lt") != 0)
            return filter_fail(err, "expected eq, ge, gt, le or lt after", field, strlen(field));
        skip_ws(&c);
        if (!read_value(&c, value, sizeof(value)))
            return filter_fail(err, "a missing, unterminated or too long value for", field,
                               strlen(field));
        if (strcasecmp(field, "eventTimestamp") == 0) {
            if (set_time(out, op, value, &have_from, &have_to, err))
                return -1;
        } else if (strcmp(op, "eq") != 0) {
            return filter_fail(err, "only eventTimestamp takes ge, gt, le or lt", field,
                               strlen(field));
        } else if (strcasecmp(field, "levels") == 0) {
            if (set_levels(out, value, err))
                return -1;
        } else if (strcasecmp(field, "eventChannels") == 0) {
            /* accepted and ignored: every entry is an Operation entry */
        } else {
            const struct filter_field *f = NULL;

            for (size_t i = 0; i < PGCMK_ARRAY_LEN(filter_fields) && !f; i++)
                if (strcasecmp(field, filter_fields[i].name) == 0)
                    f = &filter_fields[i];
            if (f == NULL)
                return filter_fail(err, "unsupported field", field, strlen(field));
            if (set_field(out, f, value, err))
                return -1;
        }
        skip_ws(&c);
        if (c.p == c.end)
            break;
        if (!at_keyword(&c, "and"))
            return filter_fail(err, "conditions must be joined with 'and'", c.p, left(&c));
        c.p += 3;
        skip_ws(&c);
        if (c.p == c.end)
            return filter_fail(err, "a condition is missing after 'and'", NULL, 0);
    }
    if (!have_from)
        return filter_fail(err, "a start time (eventTimestamp ge '...') is required", NULL, 0);
    if (out->from_ms > out->to_ms)
        return filter_fail(err, "the start time is after the end time", NULL, 0);
    return 0;
}

int
pgcmk_activity_filter_parse(const char *filter, struct pgcmk_activity_filter *out,
                            struct pgcmk_err *err)
{
    return pgcmk_activity_filter_parse_buf(
        filter, filter ? strnlen(filter, PGCMK_ACTIVITY_FILTER_MAX + 1) : 0, out, err);
}
