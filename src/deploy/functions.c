/* functions.c - the template language's built-in functions, one table (name, arity, handler).
 * Handlers get evaluated arguments (borrowed) and return a new reference or NULL with the error
 * set through deploy_fail(). Computed strings and values are bounded (TPL_MAX_STR, _NODES). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgcmk/core.h"
#include "pgcmk/crypto.h"
#include "pgcmk/wellknown.h"
#include "deploy/internal.h"

#define FN(id) static json_t *fn_##id(struct eval_ctx *cx, const char *name, size_t n, json_t **a)
#define UNUSED_ARGS                                                                                \
    do {                                                                                           \
        (void)cx;                                                                                  \
        (void)name;                                                                                \
        (void)n;                                                                                   \
        (void)a;                                                                                   \
    } while (0)

/* ---- argument helpers -------------------------------------------------------------------------
 */

static json_t *
bad_type(struct eval_ctx *cx, const char *name, size_t i, const char *want, const json_t *got)
{
    return deploy_fail(cx,
                       "the template function '%s' expects its parameter %zu to be of type "
                       "'%s', the provided value is of type '%s'",
                       name, i + 1, want, deploy_type_name(got));
}

#define WANT(pred, i, tname)                                                                       \
    do {                                                                                           \
        if (!(pred(a[i])))                                                                         \
            return bad_type(cx, name, i, tname, a[i]);                                             \
    } while (0)
#define WANT_STR(i) WANT(json_is_string, i, "String")
#define WANT_INT(i) WANT(json_is_integer, i, "Integer")

static json_t *
mkstrn(struct eval_ctx *cx, const char *s, size_t len)
{
    json_t *v;

    if (len > TPL_MAX_STR)
        return deploy_fail(cx, "the result is longer than %d characters", TPL_MAX_STR);
    if (deploy_step(cx, 1 + (long)(len / 256)) != 0)
        return NULL;
    v = json_stringn(s, len);
    if (!v)
        return deploy_fail(cx, "the result is not valid UTF-8");
    return v;
}

static json_t *
mkstr_free(struct eval_ctx *cx, char *s)
{
    json_t *v = mkstrn(cx, s, strlen(s));

    free(s);
    return v;
}

/* A growable string with the TPL_MAX_STR cap. */
struct sb {
    char *s;
    size_t n, cap;
    int over;
};

static void
sb_add(struct sb *b, const char *s, size_t n)
{
    if (b->over || b->n + n > TPL_MAX_STR) {
        b->over = 1;
        return;
    }
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = pgcmk_xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static json_t *
sb_done(struct eval_ctx *cx, struct sb *b)
{
    json_t *v;

    if (b->over) {
        free(b->s);
        return deploy_fail(cx, "the result is longer than %d characters", TPL_MAX_STR);
    }
    v = mkstrn(cx, b->s ? b->s : "", b->n);
    free(b->s);
    return v;
}

char *
deploy_to_string(const json_t *v)
{
    char buf[32];

    switch (json_typeof(v)) {
    case JSON_STRING:
        return pgcmk_xstrdup(json_string_value(v));
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return pgcmk_xstrdup(buf);
    case JSON_REAL:
        snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        return pgcmk_xstrdup(buf);
    case JSON_TRUE:
        return pgcmk_xstrdup("True");
    case JSON_FALSE:
        return pgcmk_xstrdup("False");
    case JSON_NULL:
        return pgcmk_xstrdup("");
    default: {
        char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

        return s ? s : pgcmk_xstrdup("");
    }
    }
}

int
deploy_json_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal((json_t *)a, (json_t *)b);
}

/* Case-insensitive ASCII substring search; the index or -1. */
static long
ci_find(const char *hay, const char *needle, int last)
{
    size_t hn = strlen(hay), nn = strlen(needle);
    long found = -1;

    if (nn > hn)
        return -1;
    for (size_t i = 0; i + nn <= hn; i++) {
        if (pgcmk_strneq_ci(hay + i, needle, nn)) {
            found = (long)i;
            if (!last)
                break;
        }
    }
    return found;
}

/* ---- strings ----------------------------------------------------------------------------------
 */

FN(concat)
{
    (void)n;
    if (n > 0 && json_is_array(a[0])) {
        json_t *out = json_array();

        for (size_t i = 0; i < n; i++) {
            if (!json_is_array(a[i])) {
                json_decref(out);
                return bad_type(cx, name, i, "Array", a[i]);
            }
            if (json_array_size(out) + json_array_size(a[i]) > TPL_MAX_NODES) {
                json_decref(out);
                return deploy_fail(cx, "the array is larger than %d elements", TPL_MAX_NODES);
            }
            json_array_extend(out, a[i]);
        }
        return out;
    }
    struct sb b = {0};

    for (size_t i = 0; i < n; i++) {
        char *s;

        if (json_is_array(a[i]) || json_is_object(a[i])) {
            free(b.s);
            return bad_type(cx, name, i, "String", a[i]);
        }
        s = deploy_to_string(a[i]);
        sb_add(&b, s, strlen(s));
        free(s);
    }
    return sb_done(cx, &b);
}

static void
fmt_arg(struct sb *b, const json_t *v, const char *spec, size_t speclen)
{
    char buf[64], *s;

    if (json_is_integer(v) && speclen > 0) {
        json_int_t x = json_integer_value(v);
        char f = (char)toupper((unsigned char)spec[0]);
        int width = speclen > 1 ? atoi(spec + 1) : 0;

        if (width > 32)
            width = 32;
        if (f == 'D') {
            snprintf(buf, sizeof(buf), "%s%0*lld", x < 0 ? "-" : "", width,
                     (long long)(x < 0 ? -x : x));
        } else if (f == 'X') {
            snprintf(buf, sizeof(buf), spec[0] == 'x' ? "%0*llx" : "%0*llX", width,
                     (unsigned long long)x);
        } else if (f == 'N') {
            char raw[32], *o = buf;
            int len, k;

            len = snprintf(raw, sizeof(raw), "%lld", (long long)(x < 0 ? -x : x));
            if (x < 0)
                *o++ = '-';
            for (k = 0; k < len; k++) {
                if (k && (len - k) % 3 == 0)
                    *o++ = ',';
                *o++ = raw[k];
            }
            *o = '\0';
            if (width > 0) {
                size_t m = strlen(buf);

                snprintf(buf + m, sizeof(buf) - m, ".%0*d", width > 10 ? 10 : width, 0);
            } else if (speclen == 1) {
                size_t m = strlen(buf);

                snprintf(buf + m, sizeof(buf) - m, ".00");
            }
        } else {
            snprintf(buf, sizeof(buf), "%lld", (long long)x);
        }
        sb_add(b, buf, strlen(buf));
        return;
    }
    s = deploy_to_string(v);
    sb_add(b, s, strlen(s));
    free(s);
}

FN(format)
{
    const char *f;
    struct sb b = {0};

    WANT_STR(0);
    f = json_string_value(a[0]);
    while (*f) {
        if (f[0] == '{' && f[1] == '{') {
            sb_add(&b, "{", 1), f += 2;
        } else if (f[0] == '}' && f[1] == '}') {
            sb_add(&b, "}", 1), f += 2;
        } else if (f[0] == '{') {
            char *end;
            long idx = strtol(f + 1, &end, 10);
            const char *close = strchr(f, '}'), *spec = NULL;
            size_t speclen = 0;

            if (end == f + 1 || !close || idx < 0 || (size_t)idx + 1 >= n) {
                free(b.s);
                return deploy_fail(cx,
                                   "the format string '%.64s' is not valid for %zu "
                                   "argument(s)",
                                   json_string_value(a[0]), n - 1);
            }
            if (*end == ',') { /* alignment: ignored */
                end++;
                while (*end == '-' || isdigit((unsigned char)*end))
                    end++;
            }
            if (*end == ':') {
                spec = end + 1;
                speclen = (size_t)(close - spec);
            }
            fmt_arg(&b, a[idx + 1], spec, speclen);
            f = close + 1;
        } else if (f[0] == '}') {
            free(b.s);
            return deploy_fail(cx, "the format string '%.64s' is not valid",
                               json_string_value(a[0]));
        } else {
            sb_add(&b, f, 1), f++;
        }
    }
    return sb_done(cx, &b);
}

static json_t *
case_map(struct eval_ctx *cx, const char *name, json_t *v, int upper)
{
    char *s;

    if (!json_is_string(v))
        return bad_type(cx, name, 0, "String", v);
    s = pgcmk_xstrdup(json_string_value(v));
    for (char *p = s; *p; p++)
        *p = (char)(upper ? toupper((unsigned char)*p) : tolower((unsigned char)*p));
    return mkstr_free(cx, s);
}

FN(tolower)
{
    (void)n;
    return case_map(cx, name, a[0], 0);
}

FN(toupper)
{
    (void)n;
    return case_map(cx, name, a[0], 1);
}

FN(string)
{
    UNUSED_ARGS;
    if (deploy_check_size(cx, a[0]) != 0)
        return NULL;
    return mkstr_free(cx, deploy_to_string(a[0]));
}

FN(int)
{
    UNUSED_ARGS;
    if (json_is_integer(a[0]))
        return json_incref(a[0]);
    if (json_is_real(a[0]))
        return json_integer((json_int_t)json_real_value(a[0]));
    if (json_is_string(a[0])) {
        char *end;
        const char *s = json_string_value(a[0]);
        long long v = strtoll(s, &end, 10);

        if (*s && *end == '\0')
            return json_integer(v);
        return deploy_fail(cx, "the value '%.64s' cannot be converted to an integer", s);
    }
    return bad_type(cx, name, 0, "String", a[0]);
}

FN(bool)
{
    UNUSED_ARGS;
    if (json_is_boolean(a[0]))
        return json_incref(a[0]);
    if (json_is_integer(a[0]))
        return json_boolean(json_integer_value(a[0]) != 0);
    if (json_is_string(a[0])) {
        const char *s = json_string_value(a[0]);

        if (pgcmk_streq_ci(s, "true") || strcmp(s, "1") == 0)
            return json_true();
        if (pgcmk_streq_ci(s, "false") || strcmp(s, "0") == 0)
            return json_false();
        return deploy_fail(cx, "the value '%.64s' cannot be converted to a Boolean", s);
    }
    return bad_type(cx, name, 0, "String", a[0]);
}

FN(json)
{
    char msg[200];
    int line, col;
    json_t *v;

    UNUSED_ARGS;
    WANT_STR(0);
    v = deploy_jsonc_parse(json_string_value(a[0]), json_string_length(a[0]), 0, NULL, msg,
                           sizeof(msg), &line, &col, NULL);
    if (!v)
        return deploy_fail(cx, "the argument of json() is not valid JSON: %s at line %d column %d",
                           msg, line, col);
    return v;
}

FN(split)
{
    const char *s, *p;
    json_t *out = json_array();
    size_t ndelim;

    UNUSED_ARGS;
    WANT_STR(0);
    if (!json_is_string(a[1]) && !json_is_array(a[1]))
        return json_decref(out), bad_type(cx, name, 1, "String", a[1]);
    ndelim = json_is_string(a[1]) ? 1 : json_array_size(a[1]);
    for (size_t i = 0; i < ndelim; i++)
        if (json_is_array(a[1]) && !json_is_string(json_array_get(a[1], i)))
            return json_decref(out), bad_type(cx, name, 1, "String", a[1]);
    s = p = json_string_value(a[0]);
    for (;;) {
        const char *best = NULL;
        size_t blen = 0;

        for (size_t i = 0; i < ndelim; i++) {
            const char *d = json_is_string(a[1]) ? json_string_value(a[1])
                                                 : json_string_value(json_array_get(a[1], i));
            const char *hit = *d ? strstr(p, d) : NULL;

            if (hit && (!best || hit < best))
                best = hit, blen = strlen(d);
        }
        if (!best) {
            json_array_append_new(out, json_string(p));
            break;
        }
        json_array_append_new(out, json_stringn(p, (size_t)(best - p)));
        p = best + blen;
        if (deploy_step(cx, 1) != 0)
            return json_decref(out), NULL;
    }
    (void)s;
    return out;
}

FN(replace)
{
    const char *s, *old, *nw, *hit;
    size_t ol, nl;
    struct sb b = {0};

    UNUSED_ARGS;
    WANT_STR(0);
    WANT_STR(1);
    WANT_STR(2);
    s = json_string_value(a[0]), old = json_string_value(a[1]), nw = json_string_value(a[2]);
    ol = strlen(old), nl = strlen(nw);
    if (ol == 0)
        return json_incref(a[0]);
    while ((hit = strstr(s, old)) != NULL) {
        sb_add(&b, s, (size_t)(hit - s));
        sb_add(&b, nw, nl);
        s = hit + ol;
    }
    sb_add(&b, s, strlen(s));
    return sb_done(cx, &b);
}

FN(substring)
{
    const char *s;
    json_int_t st, len, sl;

    WANT_STR(0);
    WANT_INT(1);
    s = json_string_value(a[0]);
    sl = (json_int_t)strlen(s);
    st = json_integer_value(a[1]);
    if (n > 2)
        WANT_INT(2);
    len = n > 2 ? json_integer_value(a[2]) : sl - st;
    if (st < 0 || len < 0 || st > sl || st + len > sl)
        return deploy_fail(cx,
                           "the index and length parameters must refer to a location within "
                           "the string: index '%lld', length '%lld', string length '%lld'",
                           (long long)st, (long long)len, (long long)sl);
    return mkstrn(cx, s + st, (size_t)len);
}

FN(indexof)
{
    UNUSED_ARGS;
    WANT_STR(0);
    WANT_STR(1);
    return json_integer(ci_find(json_string_value(a[0]), json_string_value(a[1]), name[0] == 'l'));
}

FN(startswith)
{
    UNUSED_ARGS;
    WANT_STR(0);
    WANT_STR(1);
    return json_boolean(pgcmk_strneq_ci(json_string_value(a[0]), json_string_value(a[1]),
                                        json_string_length(a[1])) &&
                        json_string_length(a[0]) >= json_string_length(a[1]));
}

FN(endswith)
{
    UNUSED_ARGS;
    WANT_STR(0);
    WANT_STR(1);
    return json_boolean(pgcmk_has_suffix_ci(json_string_value(a[0]), json_string_value(a[1])));
}

FN(trim)
{
    const char *s, *e;

    UNUSED_ARGS;
    WANT_STR(0);
    s = json_string_value(a[0]);
    while (*s && isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    return mkstrn(cx, s, (size_t)(e - s));
}

FN(padleft)
{
    char *s, pad = ' ';
    json_int_t total;
    size_t len;

    if (json_is_integer(a[0]))
        s = deploy_to_string(a[0]);
    else if (json_is_string(a[0]))
        s = pgcmk_xstrdup(json_string_value(a[0]));
    else
        return bad_type(cx, name, 0, "String", a[0]);
    if (!json_is_integer(a[1])) {
        free(s);
        return bad_type(cx, name, 1, "Integer", a[1]);
    }
    if (n > 2) {
        if (!json_is_string(a[2]) || json_string_length(a[2]) != 1) {
            free(s);
            return deploy_fail(cx, "the padding character of padLeft must be one character");
        }
        pad = json_string_value(a[2])[0];
    }
    total = json_integer_value(a[1]);
    len = strlen(s);
    if (total > 16384) {
        free(s);
        return deploy_fail(cx, "padLeft's total length must not exceed 16384");
    }
    if (total > (json_int_t)len) {
        char *o = pgcmk_xmalloc((size_t)total + 1);

        memset(o, pad, (size_t)total - len);
        memcpy(o + (size_t)total - len, s, len + 1);
        free(s);
        s = o;
    }
    return mkstr_free(cx, s);
}

FN(base64)
{
    UNUSED_ARGS;
    WANT_STR(0);
    return mkstr_free(cx, pgcmk_b64_encode(json_string_value(a[0]), json_string_length(a[0])));
}

FN(base64tostring)
{
    unsigned char *out = NULL;
    size_t olen = 0;
    json_t *v;

    UNUSED_ARGS;
    WANT_STR(0);
    if (pgcmk_b64_decode(json_string_value(a[0]), json_string_length(a[0]), &out, &olen) != 0)
        return deploy_fail(cx, "the value is not valid base64");
    if (name[8] == 'j' || name[8] == 'J') { /* base64ToJson */
        char msg[200];
        int line, col;

        v = deploy_jsonc_parse((const char *)out, olen, 0, NULL, msg, sizeof(msg), &line, &col,
                               NULL);
        free(out);
        return v ? v : deploy_fail(cx, "the decoded value is not valid JSON: %s", msg);
    }
    v = mkstrn(cx, (const char *)out, olen);
    free(out);
    return v;
}

static int
unreserved(int c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

FN(uricomponent)
{
    struct sb b = {0};
    const unsigned char *s;

    UNUSED_ARGS;
    WANT_STR(0);
    for (s = (const unsigned char *)json_string_value(a[0]); *s; s++) {
        char buf[4];

        if (unreserved(*s)) {
            sb_add(&b, (const char *)s, 1);
        } else {
            snprintf(buf, sizeof(buf), "%%%02X", *s);
            sb_add(&b, buf, 3);
        }
    }
    return sb_done(cx, &b);
}

static int
hexv(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

FN(uricomponenttostring)
{
    struct sb b = {0};
    const char *s;

    UNUSED_ARGS;
    WANT_STR(0);
    for (s = json_string_value(a[0]); *s; s++) {
        if (s[0] == '%' && hexv((unsigned char)s[1]) >= 0 && hexv((unsigned char)s[2]) >= 0) {
            char c = (char)(hexv((unsigned char)s[1]) * 16 + hexv((unsigned char)s[2]));

            sb_add(&b, &c, 1);
            s += 2;
        } else {
            sb_add(&b, s, 1);
        }
    }
    return sb_done(cx, &b);
}

FN(uri)
{
    const char *base, *rel, *slash;
    char *out;

    UNUSED_ARGS;
    WANT_STR(0);
    WANT_STR(1);
    base = json_string_value(a[0]);
    rel = json_string_value(a[1]);
    if (strstr(rel, "://"))
        return json_incref(a[1]);
    if (!strstr(base, "://"))
        return deploy_fail(cx, "the base URI '%.64s' is not absolute", base);
    if (rel[0] == '/') {
        const char *host = strstr(base, "://") + 3, *end = strchr(host, '/');
        size_t bl = end ? (size_t)(end - base) : strlen(base);

        out = pgcmk_xasprintf("%.*s%s", (int)bl, base, rel);
    } else {
        slash = strrchr(base, '/');
        if (slash < strstr(base, "://") + 3)
            out = pgcmk_xasprintf("%s/%s", base, rel);
        else
            out = pgcmk_xasprintf("%.*s%s", (int)(slash - base + 1), base, rel);
    }
    return mkstr_free(cx, out);
}

FN(datauri)
{
    char *b64, *s, *out;

    UNUSED_ARGS;
    s = deploy_to_string(a[0]);
    b64 = pgcmk_b64_encode(s, strlen(s));
    out = pgcmk_xasprintf("data:text/plain;charset=utf8;base64,%s", b64);
    free(b64);
    free(s);
    return mkstr_free(cx, out);
}

FN(datauritostring)
{
    const char *s, *comma;
    unsigned char *out = NULL;
    size_t olen = 0;
    json_t *v;

    UNUSED_ARGS;
    WANT_STR(0);
    s = json_string_value(a[0]);
    comma = strchr(s, ',');
    if (strncmp(s, "data:", 5) != 0 || !comma)
        return deploy_fail(cx, "the value is not a data URI");
    if (comma - s >= 7 && strncmp(comma - 7, ";base64", 7) == 0) {
        if (pgcmk_b64_decode(comma + 1, strlen(comma + 1), &out, &olen) != 0)
            return deploy_fail(cx, "the data URI is not valid base64");
        v = mkstrn(cx, (const char *)out, olen);
        free(out);
        return v;
    }
    return json_string(comma + 1);
}

static json_t *
hash_parts(struct eval_ctx *cx, const char *name, size_t n, json_t **a, int guid)
{
    const char *parts[64];
    char out[37];

    if (n > PGCMK_ARRAY_LEN(parts))
        return deploy_fail(cx, "the template function '%s' takes at most 64 arguments", name);
    for (size_t i = 0; i < n; i++) {
        if (!json_is_string(a[i]))
            return bad_type(cx, name, i, "String", a[i]);
        parts[i] = json_string_value(a[i]);
    }
    if (guid)
        pgcmk_tpl_guid(parts, n, out);
    else
        pgcmk_tpl_unique_string(parts, n, out);
    return json_string(out);
}

FN(uniquestring)
{
    return hash_parts(cx, name, n, a, 0);
}

FN(guid)
{
    return hash_parts(cx, name, n, a, 1);
}

FN(newguid)
{
    char u[37];

    UNUSED_ARGS;
    if (!cx->in_param_default)
        return deploy_fail(cx, "the template function 'newGuid' is only valid in a parameter's "
                               "default value");
    pgcmk_uuid(u);
    return json_string(u);
}

FN(utcnow)
{
    time_t secs;
    struct tm tm;
    const char *f = "yyyyMMddTHHmmssZ";
    struct sb b = {0};
    int ms;

    UNUSED_ARGS;
    if (!cx->in_param_default)
        return deploy_fail(cx, "the template function 'utcNow' is only valid in a parameter's "
                               "default value");
    if (n > 0) {
        WANT_STR(0);
        f = json_string_value(a[0]);
    }
    secs = (time_t)(cx->t->scope.now_ms / 1000);
    ms = (int)(cx->t->scope.now_ms % 1000);
    gmtime_r(&secs, &tm);
    if (strcmp(f, "u") == 0)
        f = "yyyy-MM-dd HH:mm:ssZ";
    else if (strcmp(f, "s") == 0)
        f = "yyyy-MM-ddTHH:mm:ss";
    else if (strcmp(f, "o") == 0)
        f = "yyyy-MM-ddTHH:mm:ss.fffffffZ";
    else if (strcmp(f, "d") == 0)
        f = "M/d/yyyy";
    while (*f) {
        char buf[16];
        size_t run = 1;

        while (f[run] == f[0])
            run++;
        buf[0] = '\0';
        switch (f[0]) {
        case 'y':
            snprintf(buf, sizeof(buf), run <= 2 ? "%02d" : "%04d",
                     run <= 2 ? tm.tm_year % 100 : tm.tm_year + 1900);
            break;
        case 'M':
            snprintf(buf, sizeof(buf), run >= 2 ? "%02d" : "%d", tm.tm_mon + 1);
            break;
        case 'd':
            snprintf(buf, sizeof(buf), run >= 2 ? "%02d" : "%d", tm.tm_mday);
            break;
        case 'H':
            snprintf(buf, sizeof(buf), run >= 2 ? "%02d" : "%d", tm.tm_hour);
            break;
        case 'h':
            snprintf(buf, sizeof(buf), run >= 2 ? "%02d" : "%d",
                     tm.tm_hour % 12 ? tm.tm_hour % 12 : 12);
            break;
        case 'm':
            snprintf(buf, sizeof(buf), run >= 2 ? "%02d" : "%d", tm.tm_min);
            break;
        case 's':
            snprintf(buf, sizeof(buf), run >= 2 ? "%02d" : "%d", tm.tm_sec);
            break;
        case 'f': {
            char frac[24];

            snprintf(frac, sizeof(frac), "%03d0000", ms);
            snprintf(buf, sizeof(buf), "%.*s", (int)(run > 7 ? 7 : run), frac);
            break;
        }
        default:
            for (size_t i = 0; i < run && i + 1 < sizeof(buf); i++)
                buf[i] = f[0], buf[i + 1] = '\0';
            break;
        }
        sb_add(&b, buf, strlen(buf));
        f += run;
    }
    return sb_done(cx, &b);
}

/* ---- logic and comparison ---------------------------------------------------------------------
 */

FN(equals)
{
    UNUSED_ARGS;
    return json_boolean(deploy_json_equal(a[0], a[1]));
}

FN(not )
{
    UNUSED_ARGS;
    if (!json_is_boolean(a[0]))
        return bad_type(cx, name, 0, "Boolean", a[0]);
    return json_boolean(!json_is_true(a[0]));
}

FN(andor)
{
    int and = pgcmk_streq_ci(name, "and"), acc = and;

    for (size_t i = 0; i < n; i++) {
        if (!json_is_boolean(a[i]))
            return bad_type(cx, name, i, "Boolean", a[i]);
        acc = and? (acc && json_is_true(a[i])) : (acc || json_is_true(a[i]));
    }
    return json_boolean(acc);
}

FN(bool_lit)
{
    UNUSED_ARGS;
    return json_boolean(name[0] == 't');
}

FN(null)
{
    UNUSED_ARGS;
    return json_null();
}

FN(if)
{
    UNUSED_ARGS;
    return NULL; /* lazy: handled in expr.c */
}

static int
compare(struct eval_ctx *cx, const char *name, json_t **a, int *out)
{
    if (json_is_number(a[0]) && json_is_number(a[1])) {
        double x = json_number_value(a[0]), y = json_number_value(a[1]);

        *out = (x > y) - (x < y);
        return 0;
    }
    if (json_is_string(a[0]) && json_is_string(a[1])) {
        int c = strcmp(json_string_value(a[0]), json_string_value(a[1]));

        *out = (c > 0) - (c < 0);
        return 0;
    }
    deploy_fail(cx,
                "the template function '%s' expects two integers or two strings, not '%s' and "
                "'%s'",
                name, deploy_type_name(a[0]), deploy_type_name(a[1]));
    return -1;
}

FN(cmp)
{
    int c;

    (void)n;
    if (compare(cx, name, a, &c) != 0)
        return NULL;
    if (pgcmk_streq_ci(name, "less"))
        return json_boolean(c < 0);
    if (pgcmk_streq_ci(name, "lessOrEquals"))
        return json_boolean(c <= 0);
    if (pgcmk_streq_ci(name, "greater"))
        return json_boolean(c > 0);
    return json_boolean(c >= 0);
}

FN(coalesce)
{
    UNUSED_ARGS;
    for (size_t i = 0; i < n; i++)
        if (!json_is_null(a[i]))
            return json_incref(a[i]);
    return json_null();
}

/* ---- arrays and objects -----------------------------------------------------------------------
 */

FN(empty)
{
    UNUSED_ARGS;
    if (json_is_null(a[0]))
        return json_true();
    if (json_is_string(a[0]))
        return json_boolean(json_string_length(a[0]) == 0);
    if (json_is_array(a[0]))
        return json_boolean(json_array_size(a[0]) == 0);
    if (json_is_object(a[0]))
        return json_boolean(json_object_size(a[0]) == 0);
    return bad_type(cx, name, 0, "String", a[0]);
}

FN(length)
{
    UNUSED_ARGS;
    if (json_is_string(a[0])) {
        const unsigned char *s = (const unsigned char *)json_string_value(a[0]);
        json_int_t cnt = 0;

        for (; *s; s++)
            cnt += (*s & 0xc0) != 0x80; /* characters, not bytes */
        return json_integer(cnt);
    }
    if (json_is_array(a[0]))
        return json_integer((json_int_t)json_array_size(a[0]));
    if (json_is_object(a[0]))
        return json_integer((json_int_t)json_object_size(a[0]));
    return bad_type(cx, name, 0, "Array", a[0]);
}

FN(contains)
{
    UNUSED_ARGS;
    if (json_is_string(a[0])) {
        char *s = deploy_to_string(a[1]);
        int hit = strstr(json_string_value(a[0]), s) != NULL;

        free(s);
        return json_boolean(hit);
    }
    if (json_is_array(a[0])) {
        size_t i;
        json_t *x;

        json_array_foreach(a[0], i, x) {
            if (deploy_json_equal(x, a[1]))
                return json_true();
        }
        return json_false();
    }
    if (json_is_object(a[0])) {
        const char *k;
        json_t *x;

        if (!json_is_string(a[1]))
            return bad_type(cx, name, 1, "String", a[1]);
        json_object_foreach(a[0], k, x) {
            if (pgcmk_streq_ci(k, json_string_value(a[1])))
                return json_true();
        }
        return json_false();
    }
    return bad_type(cx, name, 0, "Array", a[0]);
}

static json_t *
merge(json_t *into, const json_t *from)
{
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)from, k, v) {
        json_t *cur = json_object_get(into, k);

        if (json_is_object(cur) && json_is_object(v)) {
            json_t *c = json_copy(cur);

            json_object_set_new(into, k, merge(c, v));
        } else {
            json_object_set(into, k, v);
        }
    }
    return into;
}

FN(union)
{
    json_t *out;

    if (json_is_object(a[0])) {
        out = json_object();
        for (size_t i = 0; i < n; i++) {
            if (!json_is_object(a[i]))
                return json_decref(out), bad_type(cx, name, i, "Object", a[i]);
            merge(out, a[i]);
        }
        return out;
    }
    if (!json_is_array(a[0]))
        return bad_type(cx, name, 0, "Array", a[0]);
    out = json_array();
    for (size_t i = 0; i < n; i++) {
        size_t j;
        json_t *x;

        if (!json_is_array(a[i]))
            return json_decref(out), bad_type(cx, name, i, "Array", a[i]);
        if (deploy_step(cx, (long)(json_array_size(a[i]) * (json_array_size(out) + 1))) != 0)
            return json_decref(out), NULL;
        json_array_foreach(a[i], j, x) {
            size_t k;
            json_t *y;
            int seen = 0;

            json_array_foreach(out, k, y) {
                if (deploy_json_equal(x, y)) {
                    seen = 1;
                    break;
                }
            }
            if (!seen)
                json_array_append(out, x);
        }
    }
    return out;
}

FN(intersection)
{
    json_t *out;

    if (json_is_object(a[0])) {
        const char *k;
        json_t *v;

        out = json_object();
        json_object_foreach(a[0], k, v) {
            int all = 1;

            for (size_t i = 1; i < n; i++)
                if (!json_is_object(a[i]) || !deploy_json_equal(json_object_get(a[i], k), v))
                    all = 0;
            if (all)
                json_object_set(out, k, v);
        }
        return out;
    }
    if (!json_is_array(a[0]))
        return bad_type(cx, name, 0, "Array", a[0]);
    out = json_array();
    {
        size_t j;
        json_t *x;

        json_array_foreach(a[0], j, x) {
            int all = 1;

            for (size_t i = 1; i < n && all; i++) {
                size_t k;
                json_t *y;
                int hit = 0;

                if (!json_is_array(a[i]))
                    return json_decref(out), bad_type(cx, name, i, "Array", a[i]);
                if (deploy_step(cx, (long)json_array_size(a[i])) != 0)
                    return json_decref(out), NULL;
                json_array_foreach(a[i], k, y)
                    hit |= deploy_json_equal(x, y);
                all = hit;
            }
            if (all)
                json_array_append(out, x);
        }
    }
    return out;
}

FN(createarray)
{
    json_t *out = json_array();

    UNUSED_ARGS;
    for (size_t i = 0; i < n; i++)
        json_array_append(out, a[i]);
    return out;
}

FN(array)
{
    UNUSED_ARGS;
    if (json_is_array(a[0]))
        return json_incref(a[0]);
    return json_pack("[O]", a[0]);
}

FN(createobject)
{
    json_t *out;

    if (n % 2)
        return deploy_fail(cx, "the template function 'createObject' expects an even number of "
                               "arguments");
    out = json_object();
    for (size_t i = 0; i < n; i += 2) {
        if (!json_is_string(a[i]))
            return json_decref(out), bad_type(cx, name, i, "String", a[i]);
        json_object_set(out, json_string_value(a[i]), a[i + 1]);
    }
    return out;
}

static int
cmp_strp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

FN(items)
{
    json_t *out;
    const char *k;
    json_t *v;
    void *it;
    const char **keys;
    size_t cnt = 0;

    UNUSED_ARGS;
    if (!json_is_object(a[0]))
        return bad_type(cx, name, 0, "Object", a[0]);
    keys = pgcmk_xcalloc(json_object_size(a[0]) + 1, sizeof(*keys));
    json_object_foreach(a[0], k, v)
        keys[cnt++] = k;
    qsort(keys, cnt, sizeof(*keys), cmp_strp);
    out = json_array();
    for (size_t i = 0; i < cnt; i++) {
        it = json_object_iter_at(a[0], keys[i]);
        json_array_append_new(
            out, json_pack("{s:s, s:O}", "key", keys[i], "value", json_object_iter_value(it)));
    }
    free(keys);
    return out;
}

FN(objectkeys)
{
    json_t *out = json_array();
    const char *k;
    json_t *v;

    UNUSED_ARGS;
    if (!json_is_object(a[0]))
        return json_decref(out), bad_type(cx, name, 0, "Object", a[0]);
    json_object_foreach(a[0], k, v)
        json_array_append_new(out, json_string(k));
    return out;
}

static json_t *
take_skip(struct eval_ctx *cx, const char *name, json_t **a, int take)
{
    json_int_t cnt;

    if (!json_is_integer(a[1]))
        return bad_type(cx, name, 1, "Integer", a[1]);
    cnt = json_integer_value(a[1]);
    if (cnt < 0)
        cnt = 0;
    if (json_is_string(a[0])) {
        const char *s = json_string_value(a[0]);
        size_t len = strlen(s), c = (size_t)cnt > len ? len : (size_t)cnt;

        return take ? mkstrn(cx, s, c) : mkstrn(cx, s + c, len - c);
    }
    if (json_is_array(a[0])) {
        size_t len = json_array_size(a[0]), c = (size_t)cnt > len ? len : (size_t)cnt;
        json_t *out = json_array();

        for (size_t i = take ? 0 : c; i < (take ? c : len); i++)
            json_array_append(out, json_array_get(a[0], i));
        return out;
    }
    return bad_type(cx, name, 0, "Array", a[0]);
}

FN(take)
{
    (void)n;
    return take_skip(cx, name, a, 1);
}

FN(skip)
{
    (void)n;
    return take_skip(cx, name, a, 0);
}

FN(firstlast)
{
    int first = name[0] == 'f' || name[0] == 'F';

    (void)n;
    if (json_is_string(a[0])) {
        const char *s = json_string_value(a[0]);
        size_t len = strlen(s);

        if (len == 0)
            return json_string("");
        return first ? mkstrn(cx, s, 1) : mkstrn(cx, s + len - 1, 1);
    }
    if (json_is_array(a[0])) {
        size_t len = json_array_size(a[0]);

        if (len == 0)
            return json_null();
        return json_incref(json_array_get(a[0], first ? 0 : len - 1));
    }
    return bad_type(cx, name, 0, "Array", a[0]);
}

FN(range)
{
    json_int_t st, cnt;
    json_t *out;

    UNUSED_ARGS;
    WANT_INT(0);
    WANT_INT(1);
    st = json_integer_value(a[0]);
    cnt = json_integer_value(a[1]);
    if (cnt < 0 || cnt > TPL_MAX_RANGE || st > INT64_MAX - cnt)
        return deploy_fail(cx, "range() count must be from 0 to %d", TPL_MAX_RANGE);
    out = json_array();
    for (json_int_t i = 0; i < cnt; i++)
        json_array_append_new(out, json_integer(st + i));
    return out;
}

FN(minmax)
{
    int mx = pgcmk_streq_ci(name, "max");
    json_t *const *v = a;
    size_t cnt = n;
    json_int_t best = 0;

    if (n == 1 && json_is_array(a[0])) {
        cnt = json_array_size(a[0]);
        if (cnt == 0)
            return deploy_fail(cx, "the template function '%s' needs at least one value", name);
        v = NULL;
    }
    for (size_t i = 0; i < cnt; i++) {
        json_t *x = v ? v[i] : json_array_get(a[0], i);

        if (!json_is_integer(x))
            return bad_type(cx, name, i, "Integer", x);
        if (i == 0 || (mx ? json_integer_value(x) > best : json_integer_value(x) < best))
            best = json_integer_value(x);
    }
    return json_integer(best);
}

FN(arith)
{
    json_int_t x, y, r = 0;
    char op = (char)tolower((unsigned char)name[0]);

    (void)n;
    WANT_INT(0);
    WANT_INT(1);
    x = json_integer_value(a[0]);
    y = json_integer_value(a[1]);
    if (op == 'a') {
        if (__builtin_add_overflow(x, y, &r))
            return deploy_fail(cx, "the result of add() overflows");
    } else if (op == 's') {
        if (__builtin_sub_overflow(x, y, &r))
            return deploy_fail(cx, "the result of sub() overflows");
    } else if (op == 'm' && tolower((unsigned char)name[1]) == 'u') {
        if (__builtin_mul_overflow(x, y, &r))
            return deploy_fail(cx, "the result of mul() overflows");
    } else {
        if (y == 0)
            return deploy_fail(cx, "the template function '%s' cannot divide by zero", name);
        if (x == INT64_MIN && y == -1)
            return deploy_fail(cx, "the result of %s() overflows", name);
        r = op == 'd' ? x / y : x % y;
    }
    return json_integer(r);
}

/* ---- template and scope -----------------------------------------------------------------------
 */

FN(parameters)
{
    (void)n;
    WANT_STR(0);
    return deploy_param_get(cx, json_string_value(a[0]));
}

FN(variables)
{
    (void)n;
    WANT_STR(0);
    return deploy_var_get(cx, json_string_value(a[0]));
}

FN(copyindex)
{
    const char *loop = NULL;
    json_int_t off = 0;
    int k = -1;

    if (n >= 1 && json_is_string(a[0]))
        loop = json_string_value(a[0]);
    else if (n >= 1 && json_is_integer(a[0]))
        off = json_integer_value(a[0]);
    else if (n >= 1)
        return bad_type(cx, name, 0, "String", a[0]);
    if (n == 2) {
        WANT_INT(1);
        off = json_integer_value(a[1]);
        if (!loop)
            return bad_type(cx, name, 0, "String", a[0]);
    }
    if (loop) {
        for (int i = cx->ncopy - 1; i >= 0; i--)
            if (pgcmk_streq_ci(cx->copy_names[i], loop)) {
                k = i;
                break;
            }
    } else if (cx->ncopy > 0) {
        k = cx->ncopy - 1;
    }
    if (k < 0) {
        if (loop)
            return deploy_fail(cx,
                               "the template function 'copyIndex' refers to the loop "
                               "'%.64s', which is not in scope here",
                               loop);
        return deploy_fail(cx, "the template function 'copyIndex' is not expected at this "
                               "location; it can only be used in a resource with a copy loop");
    }
    return json_integer(cx->copy_idx[k] + off);
}

static json_t *
ids_common(struct eval_ctx *cx, const char *name, size_t n, json_t **a, const char *sub,
           const char *rg, int tenant, const char *ext)
{
    size_t ti;
    const char *names[64];
    char *id;
    const char *type;
    size_t segs = 1;

    for (size_t i = 0; i < n; i++)
        if (!json_is_string(a[i]))
            return bad_type(cx, name, i, "String", a[i]);
    for (ti = 0; ti < n && !strchr(json_string_value(a[ti]), '/'); ti++)
        ;
    if (ti == n)
        return deploy_fail(cx,
                           "the template function '%s' needs a fully qualified resource type "
                           "such as 'Microsoft.KeyVault/vaults'",
                           name);
    if (!tenant && !ext) {
        if (ti > 2 || (ti > 1 && !pgcmk_streq_ci(name, "resourceId")) || (ti == 2 && !rg && 0))
            return deploy_fail(cx,
                               "the template function '%s' has too many arguments before the "
                               "resource type",
                               name);
        if (pgcmk_streq_ci(name, "resourceId")) {
            if (ti == 1)
                rg = json_string_value(a[0]);
            if (ti == 2)
                sub = json_string_value(a[0]), rg = json_string_value(a[1]);
        } else if (ti == 1) {
            sub = json_string_value(a[0]);
        }
    } else if (ti != 0) {
        return deploy_fail(cx, "the template function '%s' takes the resource type first", name);
    }
    {
        char *tt = pgcmk_xstrdup(json_string_value(a[ti]));
        size_t tl = strlen(tt);
        json_t *out;

        while (tl > 0 && tt[tl - 1] == '/')
            tt[--tl] = '\0';
        for (const char *p = strchr(tt, '/'); p; p = strchr(p + 1, '/'))
            segs++;
        type = tt;
        if (n - ti - 1 != segs - 1 || segs - 1 > PGCMK_ARRAY_LEN(names)) {
            free(tt);
            return deploy_fail(cx,
                               "the template function '%s' got %zu name segment(s) for the "
                               "type '%.96s', which needs %zu",
                               name, n - ti - 1, json_string_value(a[ti]), segs - 1);
        }
        for (size_t i = ti + 1; i < n; i++)
            names[i - ti - 1] = json_string_value(a[i]);
        if (ext) {
            char *rel = deploy_resource_id(NULL, NULL, type, names, segs - 1);

            id = pgcmk_xasprintf("%s%s", ext, rel);
            free(rel);
        } else {
            id = deploy_resource_id(tenant ? NULL : sub, tenant ? NULL : rg, type, names, segs - 1);
        }
        free(tt);
        out = mkstr_free(cx, id);
        return out;
    }
}

FN(resourceid)
{
    return ids_common(cx, name, n, a, cx->t->sub, cx->t->rg, 0, NULL);
}

FN(subscriptionresourceid)
{
    return ids_common(cx, name, n, a, cx->t->sub, NULL, 0, NULL);
}

FN(tenantresourceid)
{
    return ids_common(cx, name, n, a, NULL, NULL, 1, NULL);
}

FN(extensionresourceid)
{
    WANT_STR(0);
    return ids_common(cx, name, n - 1, a + 1, NULL, NULL, 0, json_string_value(a[0]));
}

FN(resourcegroup)
{
    struct pgcmk_tpl *t = cx->t;
    char *id;
    json_t *out;

    UNUSED_ARGS;
    if (!t->rg)
        return deploy_fail(cx, "the template function 'resourceGroup' is not expected at this "
                               "location: the deployment is at subscription scope");
    id = pgcmk_xasprintf("/subscriptions/%s/resourceGroups/%s", t->sub, t->rg);
    out = json_pack("{s:s, s:s, s:s, s:s, s:{}, s:{s:s}}", "id", id, "name", t->rg, "type",
                    "Microsoft.Resources/resourceGroups", "location",
                    t->rg_location ? t->rg_location : "", "tags", "properties", "provisioningState",
                    "Succeeded");
    free(id);
    return out;
}

FN(subscription)
{
    char *id = pgcmk_xasprintf("/subscriptions/%s", cx->t->sub);
    json_t *out = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "subscriptionId", cx->t->sub,
                            "tenantId", cx->t->tenant, "displayName", PGCMK_SUBSCRIPTION_NAME);

    UNUSED_ARGS;
    free(id);
    return out;
}

FN(tenant)
{
    UNUSED_ARGS;
    return json_pack("{s:s, s:s}", "tenantId", cx->t->tenant, "countryCode", "US");
}

FN(deployment)
{
    UNUSED_ARGS;
    return json_pack("{s:s, s:{s:{s:s}, s:s}}", "name", cx->t->dep_name, "properties", "template",
                     "contentVersion", cx->t->content_version, "mode", "Incremental");
}

FN(environment)
{
    UNUSED_ARGS;
    return json_pack("{s:s, s:s, s:s, s:{s:s}}", "name", "AzureCloud", "resourceManager",
                     "https://management.azure.com/", "authentication",
                     "https://login.microsoftonline.com/", "suffixes", "keyvaultDns",
                     ".vault.azure.net");
}

FN(reference)
{
    return deploy_reference(cx, n, a);
    (void)name;
}

/* The table: lower-case names, sorted for bsearch. */
static const struct deploy_builtin builtins[] = {
    {"add", 2, 2, fn_arith, 0},
    {"and", 2, -1, fn_andor, 0},
    {"array", 1, 1, fn_array, 0},
    {"base64", 1, 1, fn_base64, 0},
    {"base64tojson", 1, 1, fn_base64tostring, 0},
    {"base64tostring", 1, 1, fn_base64tostring, 0},
    {"bool", 1, 1, fn_bool, 0},
    {"coalesce", 1, -1, fn_coalesce, 0},
    {"concat", 0, -1, fn_concat, 0},
    {"contains", 2, 2, fn_contains, 0},
    {"copyindex", 0, 2, fn_copyindex, 0},
    {"createarray", 0, -1, fn_createarray, 0},
    {"createobject", 0, -1, fn_createobject, 0},
    {"datauri", 1, 1, fn_datauri, 0},
    {"datauritostring", 1, 1, fn_datauritostring, 0},
    {"deployment", 0, 0, fn_deployment, 0},
    {"div", 2, 2, fn_arith, 0},
    {"empty", 1, 1, fn_empty, 0},
    {"endswith", 2, 2, fn_endswith, 0},
    {"environment", 0, 0, fn_environment, 0},
    {"equals", 2, 2, fn_equals, 0},
    {"extensionresourceid", 3, -1, fn_extensionresourceid, 0},
    {"false", 0, 0, fn_bool_lit, 0},
    {"first", 1, 1, fn_firstlast, 0},
    {"format", 1, -1, fn_format, 0},
    {"greater", 2, 2, fn_cmp, 0},
    {"greaterorequals", 2, 2, fn_cmp, 0},
    {"guid", 1, -1, fn_guid, 0},
    {"if", 3, 3, fn_if, 1},
    {"indexof", 2, 2, fn_indexof, 0},
    {"int", 1, 1, fn_int, 0},
    {"intersection", 2, -1, fn_intersection, 0},
    {"items", 1, 1, fn_items, 0},
    {"json", 1, 1, fn_json, 0},
    {"last", 1, 1, fn_firstlast, 0},
    {"lastindexof", 2, 2, fn_indexof, 0},
    {"length", 1, 1, fn_length, 0},
    {"less", 2, 2, fn_cmp, 0},
    {"lessorequals", 2, 2, fn_cmp, 0},
    {"max", 1, -1, fn_minmax, 0},
    {"min", 1, -1, fn_minmax, 0},
    {"mod", 2, 2, fn_arith, 0},
    {"mul", 2, 2, fn_arith, 0},
    {"newguid", 0, 0, fn_newguid, 0},
    {"not", 1, 1, fn_not, 0},
    {"null", 0, 0, fn_null, 0},
    {"objectkeys", 1, 1, fn_objectkeys, 0},
    {"or", 2, -1, fn_andor, 0},
    {"padleft", 2, 3, fn_padleft, 0},
    {"parameters", 1, 1, fn_parameters, 0},
    {"range", 2, 2, fn_range, 0},
    {"reference", 1, 3, fn_reference, 0},
    {"replace", 3, 3, fn_replace, 0},
    {"resourcegroup", 0, 0, fn_resourcegroup, 0},
    {"resourceid", 2, -1, fn_resourceid, 0},
    {"skip", 2, 2, fn_skip, 0},
    {"split", 2, 2, fn_split, 0},
    {"startswith", 2, 2, fn_startswith, 0},
    {"string", 1, 1, fn_string, 0},
    {"sub", 2, 2, fn_arith, 0},
    {"subscription", 0, 0, fn_subscription, 0},
    {"subscriptionresourceid", 2, -1, fn_subscriptionresourceid, 0},
    {"substring", 2, 3, fn_substring, 0},
    {"take", 2, 2, fn_take, 0},
    {"tenant", 0, 0, fn_tenant, 0},
    {"tenantresourceid", 2, -1, fn_tenantresourceid, 0},
    {"tolower", 1, 1, fn_tolower, 0},
    {"toupper", 1, 1, fn_toupper, 0},
    {"trim", 1, 1, fn_trim, 0},
    {"true", 0, 0, fn_bool_lit, 0},
    {"union", 1, -1, fn_union, 0},
    {"uniquestring", 1, -1, fn_uniquestring, 0},
    {"uri", 2, 2, fn_uri, 0},
    {"uricomponent", 1, 1, fn_uricomponent, 0},
    {"uricomponenttostring", 1, 1, fn_uricomponenttostring, 0},
    {"utcnow", 0, 1, fn_utcnow, 0},
    {"variables", 1, 1, fn_variables, 0},
};

static int
builtin_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct deploy_builtin *)elem)->name);
}

const struct deploy_builtin *
deploy_builtin_find(const char *name)
{
    char lname[64];

    if (strlen(name) >= sizeof(lname))
        return NULL;
    pgcmk_lower(lname, sizeof(lname), name);
    return bsearch(lname, builtins, PGCMK_ARRAY_LEN(builtins), sizeof(builtins[0]), builtin_cmp);
}
