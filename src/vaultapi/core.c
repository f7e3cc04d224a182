/* core.c - the Vault API's request pipeline: /v1/ prefix, namespace, method folding, body,
 * seal, token, ACL, mount dispatch to a backend row, Vault's envelope; CORS; the request log
 * behind GET /emulator/vault/requests. */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/http.h"
#include "pgcmk/log.h"
#include "pgcmk/vaultapi.h"
#include "vaultapi/internal.h"

/* ---- JSON text ------------------------------------------------------------------------------ */

static void
hv_buf_grow(struct hv_buf *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 512;
    char *p;

    if (b->n + more + 1 <= b->cap)
        return;
    while (cap < b->n + more + 1)
        cap *= 2;
    p = pgcmk_xmalloc(cap);
    if (b->p) { /* not realloc: the old block may hold a token, and realloc would not wipe it */
        memcpy(p, b->p, b->n);
        pgcmk_secret_free(b->p, b->cap);
    }
    b->p = p;
    b->cap = cap;
}

void
hv_buf_raw(struct hv_buf *b, const char *s, size_t n)
{
    hv_buf_grow(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void
hv_buf_lit(struct hv_buf *b, const char *s)
{
    hv_buf_raw(b, s, strlen(s));
}

static void
hv_buf_strn(struct hv_buf *b, const char *s, size_t n)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t i, from = 0;

    hv_buf_raw(b, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t en = 2;

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        hv_buf_raw(b, s + from, i - from);
        from = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default: /* as jansson: \u00XX, upper case */
            memcpy(esc + 1, "u00", 3);
            esc[4] = hexd[c >> 4];
            esc[5] = hexd[c & 15];
            en = 6;
        }
        hv_buf_raw(b, esc, en);
    }
    hv_buf_raw(b, s + from, n - from);
    hv_buf_raw(b, "\"", 1);
}

void
hv_buf_str(struct hv_buf *b, const char *s)
{
    hv_buf_strn(b, s, strlen(s));
}

void
hv_buf_int(struct hv_buf *b, long long v)
{
    char t[24];
    size_t i = sizeof(t);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    do
        t[--i] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        t[--i] = '-';
    hv_buf_raw(b, t + i, sizeof(t) - i);
}

void
hv_buf_json(struct hv_buf *b, const json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_NULL:
        hv_buf_raw(b, "null", 4);
        return;
    case JSON_TRUE:
        hv_buf_raw(b, "true", 4);
        return;
    case JSON_FALSE:
        hv_buf_raw(b, "false", 5);
        return;
    case JSON_INTEGER:
        hv_buf_int(b, (long long)json_integer_value(v));
        return;
    case JSON_STRING:
        hv_buf_strn(b, json_string_value(v), json_string_length(v));
        return;
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        int first = 1;

        hv_buf_raw(b, "{", 1);
        json_object_foreach((json_t *)v, k, x) {
            if (!first)
                hv_buf_raw(b, ",", 1);
            first = 0;
            hv_buf_str(b, k);
            hv_buf_raw(b, ":", 1);
            hv_buf_json(b, x);
        }
        hv_buf_raw(b, "}", 1);
        return;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;

        hv_buf_raw(b, "[", 1);
        json_array_foreach(v, i, x) {
            if (i)
                hv_buf_raw(b, ",", 1);
            hv_buf_json(b, x);
        }
        hv_buf_raw(b, "]", 1);
        return;
    }
    default: { /* a real: jansson's own format */
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

        if (t) {
            hv_buf_lit(b, t);
            free(t);
        }
        return;
    }
    }
}

char *
hv_buf_take(struct hv_buf *b, size_t *len)
{
    char *p;

    hv_buf_grow(b, 0);
    p = b->p;
    if (len)
        *len = b->n;
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}

void
hv_buf_free(struct hv_buf *b)
{
    if (b->p)
        pgcmk_secret_free(b->p, b->cap);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* ---- answers -------------------------------------------------------------------------------- */

int
pgcmk_hv_error(struct pgcmk_hv_resp *rs, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_decref(rs->errors);
    rs->errors = json_pack("[s]", msg);
    rs->status = status;
    return -1;
}

int
pgcmk_hv_data(struct pgcmk_hv_resp *rs, json_t *data)
{
    json_decref(rs->data);
    rs->data = data;
    if (rs->status == 0)
        rs->status = 200;
    return 0;
}

int
pgcmk_hv_raw(struct pgcmk_hv_resp *rs, int status, json_t *body)
{
    json_decref(rs->raw);
    rs->raw = body;
    rs->status = status;
    return 0;
}

int
pgcmk_hv_no_content(struct pgcmk_hv_resp *rs)
{
    rs->no_content = 1;
    rs->status = 204;
    return 0;
}

int
pgcmk_hv_no_route(const struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs)
{
    return pgcmk_hv_error(rs, 404, "no handler for route \"%s%s\". route entry not found.", rq->ns,
                          rq->path);
}

int
pgcmk_hv_bad_method(struct pgcmk_hv_resp *rs)
{
    return pgcmk_hv_error(rs, 405, "unsupported operation");
}

const char *
pgcmk_hv_field(const struct pgcmk_hv_req *rq, const char *name, char *buf, size_t cap)
{
    json_t *v = rq->body ? json_object_get(rq->body, name) : NULL;

    if (v == NULL || json_is_null(v)) {
        const char *q = rq->http ? pgcmk_req_query(rq->http, name) : NULL;

        if (q == NULL)
            return NULL;
        snprintf(buf, cap, "%s", q);
        return buf;
    }
    if (json_is_string(v))
        snprintf(buf, cap, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, cap, "%.0f", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    else
        return NULL;
    return buf;
}

int
pgcmk_hv_duration_str(const char *s, int64_t *seconds)
{
    int64_t total = 0;
    const char *p = s;

    if (s == NULL || *s == '\0')
        return -1;
    /* a plain number of seconds */
    {
        char *end;
        long long v = strtoll(s, &end, 10);

        if (*end == '\0' && v >= 0) {
            *seconds = v;
            return 0;
        }
    }
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        int64_t mul;

        if (end == p || v < 0)
            return -1;
        p = end;
        if (strncmp(p, "ms", 2) == 0) {
            mul = 0;
            p += 2;
        } else if (*p == 's') {
            mul = 1;
            p++;
        } else if (*p == 'm') {
            mul = 60;
            p++;
        } else if (*p == 'h') {
            mul = 3600;
            p++;
        } else if (*p == 'd') {
            mul = 86400;
            p++;
        } else {
            return -1;
        }
        if (v > 1e12)
            return -1;
        total += (int64_t)(v * (double)mul);
    }
    *seconds = total;
    return 0;
}

int
pgcmk_hv_duration(const json_t *v, int64_t *seconds)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *seconds = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 1e12) {
        *seconds = (int64_t)json_real_value(v);
        return 0;
    }
    if (json_is_string(v))
        return pgcmk_hv_duration_str(json_string_value(v), seconds);
    return -1;
}

/* ---- backend rows, sys routes --------------------------------------------------------------- */

static const struct pgcmk_vbackend *hv_backends[16];
static int hv_n_backends;
static const struct pgcmk_hv_sys_route *hv_sys_routes[16];
static int hv_n_sys_routes;

void
pgcmk_vbackend_register(const struct pgcmk_vbackend *b)
{
    if (hv_n_backends == (int)PGCMK_ARRAY_LEN(hv_backends))
        PGCMK_BUG("too many Vault backend rows");
    hv_backends[hv_n_backends++] = b;
}

const struct pgcmk_vbackend *
pgcmk_vbackend_find(const char *type)
{
    for (int i = 0; i < hv_n_backends; i++)
        if (strcmp(hv_backends[i]->type, type) == 0)
            return hv_backends[i];
    return NULL;
}

void
pgcmk_hv_sys_route_add(const struct pgcmk_hv_sys_route *r)
{
    if (hv_n_sys_routes == (int)PGCMK_ARRAY_LEN(hv_sys_routes))
        PGCMK_BUG("too many Vault sys routes");
    hv_sys_routes[hv_n_sys_routes++] = r;
}

const struct pgcmk_hv_sys_route *
hv_sys_route_find(const char *rest)
{
    for (int i = 0; i < hv_n_sys_routes; i++) {
        size_t n = strlen(hv_sys_routes[i]->prefix);

        if (strncmp(rest, hv_sys_routes[i]->prefix, n) == 0 && (rest[n] == '\0' || rest[n] == '/'))
            return hv_sys_routes[i];
    }
    return NULL;
}

/* ---- pure helpers --------------------------------------------------------------------------- */

int
pgcmk_hv_ns_norm(const char *in, char out[PGCMK_HV_NS_MAX])
{
    size_t n = 0;
    const char *p = in ? in : "";

    out[0] = '\0';
    while (*p == '/' || *p == ' ')
        p++;
    if (strcmp(p, "root") == 0 || strcmp(p, "root/") == 0)
        return 0;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);

        if (len == 0) {
            p++;
            continue;
        }
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return -1;
        for (size_t i = 0; i < len; i++)
            if (!(isalnum((unsigned char)p[i]) || p[i] == '-' || p[i] == '_' || p[i] == '.'))
                return -1;
        if (n + len + 2 > PGCMK_HV_NS_MAX)
            return -1;
        memcpy(out + n, p, len);
        n += len;
        out[n++] = '/';
        out[n] = '\0';
        p += len;
    }
    return 0;
}

int
pgcmk_hv_mount_match(const char *mount, const char *path, const char **rest)
{
    size_t n = strlen(mount);

    if (n == 0)
        return 0;
    if (strncmp(mount, path, n) == 0) {
        *rest = path + n;
        return 1;
    }
    /* "secret" names the mount "secret/" itself */
    if (mount[n - 1] == '/' && strlen(path) == n - 1 && strncmp(mount, path, n - 1) == 0) {
        *rest = path + n - 1;
        return 1;
    }
    return 0;
}

/* ---- the request log ------------------------------------------------------------------------ */

#define HV_LOG_N 256

/* Each entry is kept as its JSON text, written directly (no json_t per request); the list
 * parses the texts it returns. */
static struct {
    pthread_mutex_t mu;
    char *entry;
} hv_log[HV_LOG_N];

static atomic_ulong hv_log_next;
static int hv_log_ready;

/* The body's shape: its keys and structure, every string (a secret, maybe) "<redacted>". */
static void
hv_shape(struct hv_buf *b, const json_t *v, int depth)
{
    if (depth > 16 || json_is_string(v)) {
        hv_buf_lit(b, "\"<redacted>\"");
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        int first = 1;

        hv_buf_raw(b, "{", 1);
        json_object_foreach((json_t *)v, k, x) {
            hv_buf_lit(b, first ? "" : ",");
            first = 0;
            hv_buf_str(b, k);
            hv_buf_raw(b, ":", 1);
            hv_shape(b, x, depth + 1);
        }
        hv_buf_raw(b, "}", 1);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;

        hv_buf_raw(b, "[", 1);
        json_array_foreach(v, i, x) {
            hv_buf_lit(b, i ? "," : "");
            hv_shape(b, x, depth + 1);
        }
        hv_buf_raw(b, "]", 1);
    } else {
        hv_buf_json(b, v);
    }
}

/* s is UTF-8 text as jansson takes it (no overlong forms, surrogates or code points past
 * U+10FFFF); NULL is not. */
static int
hv_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if (p == NULL)
        return 0;
    while (*p) {
        unsigned c = *p++, lo = 0x80, hi = 0xBF;
        int more;

        if (c < 0x80)
            continue;
        if (c >= 0xC2 && c <= 0xDF)
            more = 1;
        else if (c >= 0xE0 && c <= 0xEF)
            more = 2;
        else if (c >= 0xF0 && c <= 0xF4)
            more = 3;
        else
            return 0;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
        else if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
        if (*p < lo || *p > hi)
            return 0;
        for (p++; --more > 0; p++)
            if ((*p & 0xC0) != 0x80)
                return 0;
    }
    return 1;
}

static void
hv_log_add(const struct pgcmk_req *rq, const json_t *body, int status, const char *ns,
           const char *path)
{
    struct hv_buf b = {NULL, 0, 0};
    unsigned long slot;
    char ts[PGCMK_TIME_LEN];

    if (!hv_log_ready)
        return;
    pgcmk_time_format(pgcmk_wall_ms(), ts);
    hv_buf_lit(&b, "{\"time\":");
    hv_buf_str(&b, ts);
    hv_buf_lit(&b, ",\"method\":");
    hv_buf_str(&b, rq->method ? rq->method : "");
    hv_buf_lit(&b, ",\"path\":");
    hv_buf_str(&b, rq->raw_path ? rq->raw_path : "");
    hv_buf_lit(&b, ",\"namespace\":");
    hv_buf_str(&b, ns ? ns : "");
    /* a repeated key: json_loads keeps the last value; a name or value that is no UTF-8 text
     * is left out (as json_string refused it) */
    hv_buf_lit(&b, ",\"query\":{");
    for (int i = 0, n = 0; i < rq->n_query; i++) {
        if (!hv_utf8(rq->query[i].key) || !hv_utf8(rq->query[i].value))
            continue;
        hv_buf_lit(&b, n++ ? "," : "");
        hv_buf_str(&b, rq->query[i].key);
        hv_buf_raw(&b, ":", 1);
        hv_buf_str(&b, rq->query[i].value);
    }
    hv_buf_lit(&b, "},\"headers\":[");
    for (int i = 0, n = 0; i < rq->n_headers; i++) {
        if (!hv_utf8(rq->headers[i].key))
            continue;
        hv_buf_lit(&b, n++ ? "," : "");
        hv_buf_str(&b, rq->headers[i].key);
    }
    hv_buf_lit(&b, "],\"body\":");
    if (body)
        hv_shape(&b, body, 0);
    else
        hv_buf_lit(&b, "null");
    hv_buf_lit(&b, ",\"status\":");
    hv_buf_int(&b, status);
    hv_buf_lit(&b, ",\"vaultPath\":");
    hv_buf_str(&b, path ? path : "");
    hv_buf_lit(&b, rq->tls ? ",\"tls\":true}" : ",\"tls\":false}");
    slot = atomic_fetch_add(&hv_log_next, 1);
    pthread_mutex_lock(&hv_log[slot % HV_LOG_N].mu);
    free(hv_log[slot % HV_LOG_N].entry);
    hv_log[slot % HV_LOG_N].entry = hv_buf_take(&b, NULL);
    pthread_mutex_unlock(&hv_log[slot % HV_LOG_N].mu);
}

json_t *
hv_log_list(int limit)
{
    json_t *arr = json_array();
    unsigned long end = atomic_load(&hv_log_next), start;

    if (limit <= 0 || limit > HV_LOG_N)
        limit = HV_LOG_N;
    start = end > (unsigned long)limit ? end - (unsigned long)limit : 0;
    for (unsigned long i = start; i < end; i++) {
        pthread_mutex_lock(&hv_log[i % HV_LOG_N].mu);
        if (hv_log[i % HV_LOG_N].entry)
            json_array_append_new(arr, json_loads(hv_log[i % HV_LOG_N].entry, 0, NULL));
        pthread_mutex_unlock(&hv_log[i % HV_LOG_N].mu);
    }
    return arr;
}

void
hv_log_clear(void)
{
    for (int i = 0; i < HV_LOG_N; i++) {
        pthread_mutex_lock(&hv_log[i].mu);
        free(hv_log[i].entry);
        hv_log[i].entry = NULL;
        pthread_mutex_unlock(&hv_log[i].mu);
    }
}

void
hv_log_init(void)
{
    for (int i = 0; i < HV_LOG_N; i++)
        pthread_mutex_init(&hv_log[i].mu, NULL);
    hv_log_ready = 1;
}

/* ---- rendering ------------------------------------------------------------------------------ */

static void
hv_set_body(struct pgcmk_resp *rs, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);

    json_decref(body);
    rs->status = status;
    rs->body = text;
    rs->body_len = text ? strlen(text) : 0;
    rs->content_type = "application/json";
}

static void
hv_render(const struct pgcmk_req *http, struct pgcmk_hv_resp *hr, struct pgcmk_resp *rs)
{
    if (hr->errors) {
        hv_set_body(rs, hr->status ? hr->status : 500, json_pack("{s:O}", "errors", hr->errors));
        return;
    }
    if (hr->raw) {
        hv_set_body(rs, hr->status ? hr->status : 200, json_incref(hr->raw));
        return;
    }
    if (hr->no_content ||
        (hr->data == NULL && hr->auth == NULL && hr->auth_text == NULL && hr->warnings == NULL)) {
        rs->status = 204;
        return;
    }
    /* the envelope written directly, as json_dumps(JSON_COMPACT) wrote the json_pack of it */
    {
        struct hv_buf b = {NULL, 0, 0};

        hv_buf_raw(&b, "{\"request_id\":", 14);
        hv_buf_str(&b, http->request_id);
        hv_buf_lit(&b, ",\"lease_id\":");
        hv_buf_str(&b, hr->lease_id);
        hv_buf_lit(&b, hr->renewable ? ",\"renewable\":true" : ",\"renewable\":false");
        hv_buf_lit(&b, ",\"lease_duration\":");
        hv_buf_int(&b, (long long)hr->lease_duration);
        hv_buf_lit(&b, ",\"data\":");
        hv_buf_json(&b, hr->data);
        hv_buf_lit(&b, ",\"wrap_info\":null,\"warnings\":");
        hv_buf_json(&b, hr->warnings);
        hv_buf_lit(&b, ",\"auth\":");
        if (hr->auth_text)
            hv_buf_lit(&b, hr->auth_text);
        else
            hv_buf_json(&b, hr->auth);
        hv_buf_raw(&b, "}", 1);
        rs->status = hr->status ? hr->status : 200;
        rs->body = hv_buf_take(&b, &rs->body_len);
        rs->content_type = "application/json";
    }
}

static void
hv_resp_release(struct pgcmk_hv_resp *hr)
{
    json_decref(hr->data);
    json_decref(hr->auth);
    if (hr->auth_text)
        pgcmk_secret_free(hr->auth_text, strlen(hr->auth_text));
    json_decref(hr->warnings);
    json_decref(hr->raw);
    json_decref(hr->errors);
}

/* ---- CORS ----------------------------------------------------------------------------------- */

static int
hv_origin_local(const char *o)
{
    const char *h;

    if (o == NULL)
        return 0;
    if (strncmp(o, "https://", 8) == 0)
        h = o + 8;
    else if (strncmp(o, "http://", 7) == 0)
        h = o + 7;
    else
        return 0;
    static const char *const hosts[] = {"localhost", "127.0.0.1", "[::1]"};

    for (size_t i = 0; i < PGCMK_ARRAY_LEN(hosts); i++) {
        size_t n = strlen(hosts[i]);

        if (strncmp(h, hosts[i], n) == 0 && (h[n] == '\0' || h[n] == ':'))
            return 1;
    }
    /* *.localhost (the portal's vault host names) */
    {
        const char *end = strchr(h, ':');
        size_t n = end ? (size_t)(end - h) : strlen(h);

        return n > 10 && strncmp(h + n - 10, ".localhost", 10) == 0;
    }
}

static void
hv_cors(const struct pgcmk_req *rq, struct pgcmk_resp *rs)
{
    const char *o = pgcmk_req_header(rq, "Origin");

    if (!hv_origin_local(o))
        return;
    pgcmk_resp_header(rs, "Access-Control-Allow-Origin", o);
    pgcmk_resp_header(rs, "Vary", "Origin");
    if (strcmp(rq->method, "OPTIONS") == 0) {
        pgcmk_resp_header(rs, "Access-Control-Allow-Methods",
                          "GET, POST, PUT, DELETE, PATCH, LIST, OPTIONS, HEAD");
        pgcmk_resp_header(rs, "Access-Control-Allow-Headers",
                          "Content-Type, X-Vault-Token, X-Vault-Namespace, X-Vault-Request, "
                          "X-Vault-Wrap-TTL, Authorization");
        pgcmk_resp_header(rs, "Access-Control-Max-Age", "300");
    }
}

/* ---- the pipeline --------------------------------------------------------------------------- */

static const char *
hv_token_of(const struct pgcmk_req *rq)
{
    const char *t = pgcmk_req_header(rq, "X-Vault-Token");

    if (t && *t)
        return t;
    t = pgcmk_req_header(rq, "Authorization");
    if (t && strncasecmp(t, "Bearer ", 7) == 0) {
        t += 7;
        while (*t == ' ')
            t++;
        return *t ? t : NULL;
    }
    return NULL;
}

/* Paths that answer while sealed and need no token. */
static int
hv_sys_open(const char *path)
{
    return strcmp(path, "sys/health") == 0 || strcmp(path, "sys/seal-status") == 0 ||
           strcmp(path, "sys/unseal") == 0 || strcmp(path, "sys/leader") == 0 ||
           strcmp(path, "sys/init") == 0;
}

static unsigned
hv_default_cap(enum pgcmk_hv_op op)
{
    switch (op) {
    case PGCMK_HV_READ:
        return PGCMK_HV_CAP_READ;
    case PGCMK_HV_LIST:
        return PGCMK_HV_CAP_LIST;
    case PGCMK_HV_DELETE:
        return PGCMK_HV_CAP_DELETE;
    case PGCMK_HV_PATCH:
        return PGCMK_HV_CAP_PATCH;
    case PGCMK_HV_WRITE:
    default:
        return PGCMK_HV_CAP_UPDATE;
    }
}

/* The body: none, or a JSON object. 0, or -1 with the error in hr. */
static int
hv_parse_body(const struct pgcmk_req *rq, json_t **out, struct pgcmk_hv_resp *hr)
{
    json_error_t je;
    const char *p = rq->body;
    json_t *v;

    *out = NULL;
    if (p == NULL || rq->body_len == 0)
        return 0;
    for (size_t i = 0; i < rq->body_len && isspace((unsigned char)p[i]); i++)
        if (i + 1 == rq->body_len)
            return 0;
    v = json_loadb(p, rq->body_len, JSON_DECODE_ANY, &je);
    if (v == NULL)
        return pgcmk_hv_error(hr, 400, "failed to parse JSON input: %s", je.text);
    if (json_is_null(v)) {
        json_decref(v);
        return 0;
    }
    if (!json_is_object(v)) {
        const char *what = json_is_array(v)     ? "array"
                           : json_is_string(v)  ? "string"
                           : json_is_boolean(v) ? "bool"
                                                : "number";

        json_decref(v);
        return pgcmk_hv_error(hr, 400,
                              "failed to parse JSON input: json: cannot unmarshal %s into Go "
                              "value of type map[string]interface {}",
                              what);
    }
    *out = v;
    return 0;
}

static void
hv_run(struct pgcmk_req *http, struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *hr, char *pathbuf,
       size_t pathcap)
{
    const char *raw = http->raw_path ? http->raw_path : http->path;
    const char *m = http->method, *p;
    const char *list = pgcmk_req_query(http, "list");
    struct pgcmk_hv_mount mount;
    struct pgcmk_hv_token tok;
    const struct pgcmk_vbackend *be = NULL;
    const struct pgcmk_hv_sys_route *sr = NULL;
    const char *token_text;
    int have_mount = 0, have_tok = 0, open_path = 0, last_use = 0;
    unsigned cap;
    char ns_hdr[PGCMK_HV_NS_MAX];

    memset(&mount, 0, sizeof(mount));
    memset(&tok, 0, sizeof(tok));
    rq->http = http;
    rq->method = m;
    rq->path = "";
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        rq->op = list && strcmp(list, "true") == 0 ? PGCMK_HV_LIST : PGCMK_HV_READ;
    else if (strcmp(m, "LIST") == 0)
        rq->op = PGCMK_HV_LIST;
    else if (strcmp(m, "PUT") == 0 || strcmp(m, "POST") == 0)
        rq->op = PGCMK_HV_WRITE;
    else if (strcmp(m, "DELETE") == 0)
        rq->op = PGCMK_HV_DELETE;
    else if (strcmp(m, "PATCH") == 0)
        rq->op = PGCMK_HV_PATCH;
    else {
        hr->status = 405;
        hr->errors = json_array();
        return;
    }
    if (strncmp(raw, "/v1/", 4) != 0 && strcmp(raw, "/v1") != 0) {
        hr->status = 404;
        hr->errors = json_array();
        return;
    }
    /* path: after /v1/, '//' collapsed, no leading or trailing '/' */
    {
        size_t n = 0;

        for (p = raw + 3; *p; p++) {
            if (*p == '/' && (n == 0 || pathbuf[n - 1] == '/'))
                continue;
            if (n + 1 < pathcap)
                pathbuf[n++] = *p;
        }
        if (n && pathbuf[n - 1] == '/')
            n--;
        pathbuf[n] = '\0';
        rq->trailing_slash = raw[strlen(raw) - 1] == '/';
    }
    if (pgcmk_hv_ns_norm(pgcmk_req_header(http, "X-Vault-Namespace"), ns_hdr)) {
        pgcmk_hv_error(hr, 400, "invalid namespace");
        return;
    }
    snprintf(rq->ns, sizeof(rq->ns), "%s", ns_hdr);
    /* namespace path prefix: "ns1/ns2/secret/data/x" */
    p = pathbuf;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t seg = slash ? (size_t)(slash - p) : strlen(p);
        char cand[PGCMK_HV_NS_MAX * 2 + 8];

        if (seg == 0 || strlen(rq->ns) + seg + 2 > PGCMK_HV_NS_MAX)
            break;
        snprintf(cand, sizeof(cand), "%s%.*s/", rq->ns, (int)seg, p);
        if ((seg == 3 && strncmp(p, "sys", 3) == 0) || !pgcmk_hv_ns_exists(cand))
            break;
        memcpy(rq->ns, cand, strlen(cand) + 1); /* fits: checked above */
        p += seg;
        while (*p == '/')
            p++;
    }
    rq->path = p;
    if (*rq->ns && !pgcmk_hv_ns_exists(rq->ns)) {
        pgcmk_hv_no_route(rq, hr);
        return;
    }
    if (hv_parse_body(http, &rq->body, hr))
        return;
    open_path = *rq->ns == '\0' && hv_sys_open(rq->path);
    if (pgcmk_hv_sealed() && !open_path) {
        pgcmk_hv_error(hr, 503, PGCMK_HV_E_SEALED);
        return;
    }
    /* the backend */
    if (strcmp(rq->path, "sys") == 0 || strncmp(rq->path, "sys/", 4) == 0) {
        rq->rest = rq->path[3] ? rq->path + 4 : "";
        sr = hv_sys_route_find(rq->rest);
        be = sr ? NULL : &hv_system_backend;
    } else if (strcmp(rq->path, "auth/token") == 0 || strncmp(rq->path, "auth/token/", 11) == 0) {
        rq->rest = rq->path[10] ? rq->path + 11 : "";
        be = &hv_token_backend;
    } else if (pgcmk_hv_mount_find(rq->ns, rq->path, &mount)) {
        have_mount = 1;
        pgcmk_hv_mount_match(mount.path, rq->path, &rq->rest);
        rq->mount = &mount;
        be = mount.backend;
    }
    if (!open_path && !(be && be->unauthenticated && rq->mount && be->unauthenticated(rq))) {
        token_text = hv_token_of(http);
        if (token_text == NULL || !pgcmk_hv_token_lookup(token_text, &tok)) {
            pgcmk_hv_error(hr, 403, PGCMK_HV_E_DENIED);
            goto out;
        }
        have_tok = 1;
        rq->token = &tok;
        /* a token works in its namespace and below */
        if (strncmp(rq->ns, tok.ns, strlen(tok.ns)) != 0) {
            pgcmk_hv_error(hr, 403, PGCMK_HV_E_DENIED);
            goto out;
        }
    }
    if (be == NULL && sr == NULL) {
        pgcmk_hv_no_route(rq, hr);
        goto out;
    }
    if (have_mount && be->handle == NULL) {
        pgcmk_hv_no_route(rq, hr);
        goto out;
    }
    if (sr)
        cap = sr->capability ? sr->capability(rq) : hv_default_cap(rq->op);
    else
        cap = be->capability ? be->capability(rq) : hv_default_cap(rq->op);
    if (sr && sr->sudo && cap != PGCMK_HV_CAP_NONE)
        cap |= PGCMK_HV_CAP_SUDO;
    if (have_tok && !tok.root && cap != PGCMK_HV_CAP_NONE) {
        char acl_path[PGCMK_HV_NS_MAX + PGCMK_HV_PATH_MAX + 8];
        const char *pol[64];
        int n = 0;

        snprintf(acl_path, sizeof(acl_path), "%s%s", rq->ns + strlen(tok.ns), rq->path);
        for (size_t i = 0; i < json_array_size(tok.policies) && n < 64; i++)
            pol[n++] = json_string_value(json_array_get(tok.policies, i));
        /* a write also meets the deciding rule's allowed, denied and required parameters */
        if (!pgcmk_vacl_check(tok.ns, pol, n, acl_path, cap) ||
            ((cap & (PGCMK_HV_CAP_CREATE | PGCMK_HV_CAP_UPDATE | PGCMK_HV_CAP_PATCH)) &&
             !pgcmk_vacl_params_ok(tok.ns, pol, n, acl_path, rq->body))) {
            pgcmk_hv_error(hr, 403, PGCMK_HV_E_DENIED);
            goto out;
        }
    }
    if (have_tok && tok.num_uses > 0 && (last_use = hv_token_use(&tok)) < 0) {
        pgcmk_hv_error(hr, 403, PGCMK_HV_E_DENIED);
        goto out;
    }
    if (sr)
        sr->handle(rq, hr);
    else
        be->handle(rq, hr);
out:
    if (rq->state_free)
        rq->state_free(rq->state);
    rq->state = NULL;
    rq->token = NULL;
    rq->mount = NULL;
    if (last_use == 1)
        pgcmk_hv_token_revoke_accessor(tok.accessor);
    if (have_tok)
        pgcmk_hv_token_release(&tok);
    if (have_mount)
        pgcmk_hv_mount_release(&mount);
}

void
pgcmk_vaultapi_handle(struct pgcmk_req *http, struct pgcmk_resp *rs)
{
    struct pgcmk_hv_req rq;
    struct pgcmk_hv_resp hr;
    char *pathbuf;
    size_t cap;

    if (strcmp(http->method, "OPTIONS") == 0) {
        rs->status = 204;
        hv_cors(http, rs);
        return;
    }
    cap = strlen(http->raw_path ? http->raw_path : http->path) + 2;
    pathbuf = pgcmk_xmalloc(cap);
    memset(&rq, 0, sizeof(rq));
    memset(&hr, 0, sizeof(hr));
    hv_run(http, &rq, &hr, pathbuf, cap);
    hv_render(http, &hr, rs);
    if (strcmp(http->method, "HEAD") == 0 && rs->body) { /* the status without the body */
        pgcmk_secret_free(rs->body, rs->body_len);
        rs->body = NULL;
        rs->body_len = 0;
    }
    pgcmk_resp_header(rs, "Cache-Control", "no-store");
    hv_cors(http, rs);
    hv_log_add(http, rq.body, rs->status, rq.ns, rq.path);
    json_decref(rq.body);
    hv_resp_release(&hr);
    free(pathbuf);
}

void
pgcmk_vaultapi_too_large(struct pgcmk_req *http, struct pgcmk_resp *rs)
{
    hv_set_body(
        rs, 413,
        json_pack("{s:[s]}", "errors", "failed to parse JSON input: http: request body too large"));
    hv_cors(http, rs);
    hv_log_add(http, NULL, 413, "", "");
}
