/* util.c - allocation, ids, time and string helpers (core.h). */
#include <ctype.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "pgcmk/core.h"
#include "pgcmk/log.h"

static void
oom(size_t n)
{
    pgcmk_log(PGCMK_LOG_ERR, __func__, "out of memory allocating %zu bytes", n);
    abort();
}

void *
pgcmk_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        oom(n);
    return p;
}

void *
pgcmk_xcalloc(size_t nmemb, size_t size)
{
    void *p;

    if (size != 0 && nmemb > SIZE_MAX / size)
        oom(SIZE_MAX);
    p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p == NULL)
        oom(nmemb * size);
    return p;
}

void *
pgcmk_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL)
        oom(n);
    return q;
}

char *
pgcmk_xstrdup(const char *s)
{
    return pgcmk_xstrndup(s, strlen(s));
}

char *
pgcmk_xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = pgcmk_xmalloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *
pgcmk_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *p = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return p;
}

static _Atomic int util_public_port = 8443;

void
pgcmk_set_public_port(int port)
{
    util_public_port = port;
}

int
pgcmk_public_port(void)
{
    return util_public_port;
}

void
pgcmk_secret_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}

void
pgcmk_secret_wipe_block(void *p)
{
    if (p)
        OPENSSL_cleanse(p, malloc_usable_size(p));
}

static void *
util_json_malloc(size_t n)
{
    return malloc(n);
}

static void
util_json_free(void *p)
{
    pgcmk_secret_wipe_block(p);
    free(p);
}

void
pgcmk_secret_json_wipe(void)
{
    json_set_alloc_funcs(util_json_malloc, util_json_free);
}

/* Random bytes for UUIDs come from OpenSSL's per-thread DRBG, 16 ids' worth at a time (each
 * RAND_bytes call costs a getpid() system call in OpenSSL 3.0; libuuid made 6 per id, and every
 * request takes an id for its x-ms-request-id). After fork() the child drops the buffer of the
 * thread that forked (the only one it has), so parent and child never hand out the same bytes. */
#define UUID_BATCH 16

static _Thread_local unsigned char uuid_buf[16 * UUID_BATCH];
static _Thread_local unsigned uuid_left;
static pthread_once_t uuid_once = PTHREAD_ONCE_INIT;

static void
uuid_atfork_child(void)
{
    uuid_left = 0;
}

static void
uuid_init(void)
{
    if (pthread_atfork(NULL, NULL, uuid_atfork_child) != 0)
        abort();
}

void
pgcmk_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* A version 4 UUID: 122 random bits, the version nibble 4 and the variant bits 10. */
void
pgcmk_uuid(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char *u;
    size_t j = 0;

    if (uuid_left == 0) {
        pthread_once(&uuid_once, uuid_init);
        if (RAND_bytes(uuid_buf, sizeof(uuid_buf)) != 1 &&
            getrandom(uuid_buf, sizeof(uuid_buf), 0) != (ssize_t)sizeof(uuid_buf)) {
            pgcmk_log(PGCMK_LOG_ERR, __func__, "no random bytes for a UUID");
            abort();
        }
        uuid_left = UUID_BATCH;
    }
    u = uuid_buf + 16 * --uuid_left;
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        out[j++] = hex[u[i] >> 4];
        out[j++] = hex[u[i] & 0x0f];
    }
    out[j] = '\0';
}

int64_t
pgcmk_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec
pgcmk_deadline(clockid_t clock, int64_t ms)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

void
pgcmk_time_format(int64_t ms, char out[PGCMK_TIME_LEN])
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;

    char buf[96];

    gmtime_r(&secs, &tm);
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    snprintf(out, PGCMK_TIME_LEN, "%.31s", buf);
}

/* Reads exactly n digits. */
static int
time_digits(const char **pp, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*pp)[i]))
            return -1;
        v = v * 10 + ((*pp)[i] - '0');
    }
    *pp += n;
    *out = v;
    return 0;
}

int
pgcmk_time_parse(const char *s, int64_t *ms)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0, off = 0;
    struct tm tm;

    if (time_digits(&p, 4, &y) || *p++ != '-' || time_digits(&p, 2, &mo) || *p++ != '-' ||
        time_digits(&p, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return -1;
    if (mo == 2 && d == 29 && (y % 4 != 0 || (y % 100 == 0 && y % 400 != 0)))
        return -1; /* February 29th of a common year */
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (time_digits(&p, 2, &h) || *p++ != ':' || time_digits(&p, 2, &mi))
            return -1;
        if (*p == ':') {
            p++;
            if (time_digits(&p, 2, &sec))
                return -1;
            if (*p == '.') {
                int scale = 100, nd = 0;

                for (p++; isdigit((unsigned char)*p); p++, nd++) {
                    frac_ms += (*p - '0') * scale;
                    scale /= 10;
                }
                if (nd == 0)
                    return -1;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;

            if (time_digits(&p, 2, &oh))
                return -1;
            if (*p == ':')
                p++;
            if (time_digits(&p, 2, &om) || oh > 23 || om > 59)
                return -1;
            off = sign * (oh * 60 + om);
        }
    }
    if (*p != '\0')
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *ms = ((int64_t)timegm(&tm) - (int64_t)off * 60) * 1000 + frac_ms;
    return 0;
}

int
pgcmk_duration_parse(const char *s, int64_t *ms)
{
    const char *p = s;
    int in_time = 0, any = 0;
    double total = 0;

    if (*p != 'P' && *p != 'p')
        return -1;
    p++;
    while (*p) {
        char *end;
        double v;

        if ((*p == 'T' || *p == 't') && !in_time) {
            in_time = 1;
            p++;
            continue;
        }
        if (!isdigit((unsigned char)*p))
            return -1;
        v = strtod(p, &end);
        if (end == p || v < 0 || v > 1e7)
            return -1;
        if (strspn(p, "0123456789.") != (size_t)(end - p))
            return -1; /* strtod also takes exponents and hexadecimal; ISO 8601 does not */
        p = end;
        switch (toupper((unsigned char)*p)) {
        case 'W':
            if (in_time)
                return -1;
            total += v * 7 * 86400e3;
            break;
        case 'D':
            if (in_time)
                return -1;
            total += v * 86400e3;
            break;
        case 'H':
            if (!in_time)
                return -1;
            total += v * 3600e3;
            break;
        case 'M':
            if (!in_time)
                return -1; /* months are not a fixed length */
            total += v * 60e3;
            break;
        case 'S':
            if (!in_time)
                return -1;
            total += v * 1e3;
            break;
        default:
            return -1;
        }
        p++;
        any = 1;
    }
    if (!any || (in_time && (p[-1] == 'T' || p[-1] == 't')) || total >= 9e18)
        return -1; /* no component, a 'T' with nothing after it, or past int64_t */
    *ms = (int64_t)(total + 0.5);
    return 0;
}

int
pgcmk_streq_ci(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

int
pgcmk_strneq_ci(const char *a, const char *b, size_t n)
{
    return strncasecmp(a, b, n) == 0;
}

int
pgcmk_has_suffix_ci(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);

    return ls >= lx && strcasecmp(s + ls - lx, suffix) == 0;
}

void
pgcmk_lower(char *out, size_t cap, const char *s)
{
    size_t i = 0;

    if (cap == 0)
        return;
    for (; s[i] && i + 1 < cap; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

size_t
pgcmk_query_append(char *out, size_t cap, size_t n, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    int w;

    if (n >= cap)
        return n;
    w = snprintf(out + n, cap - n, "%s%s=", strchr(out, '?') ? "&" : "?", key);
    if (w < 0 || (size_t)w >= cap - n)
        return cap - 1;
    n += (size_t)w;
    for (const unsigned char *p = (const unsigned char *)value; *p && n + 4 < cap; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
    return n;
}
