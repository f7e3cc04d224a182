/* req.c - requests and responses, and the pipeline every request runs through:
 * plane by Host -> route -> query check -> auth -> content type and JSON body -> handler. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/http.h"
#include "pgcmk/log.h"
#include "pgcmk/wellknown.h"

static int http_default_auth(struct pgcmk_req *rq, struct pgcmk_err *err);
static pgcmk_auth_fn http_auth = http_default_auth;
static pgcmk_admit_fn http_admit[2]; /* by plane */

void
pgcmk_http_set_auth(pgcmk_auth_fn fn)
{
    http_auth = fn ? fn : http_default_auth;
}

void
pgcmk_http_set_admit(enum pgcmk_plane plane, pgcmk_admit_fn fn)
{
    if ((unsigned)plane < PGCMK_ARRAY_LEN(http_admit))
        http_admit[plane] = fn;
}

/* Well-known admin principal (README). The token service replaces this hook. */
static int
http_default_auth(struct pgcmk_req *rq, struct pgcmk_err *err)
{
    const char *authz = pgcmk_req_header(rq, "Authorization");

    if (authz == NULL || *authz == '\0') {
        if (rq->cfg == NULL || rq->cfg->auth == PGCMK_AUTH_OPEN) {
            snprintf(rq->principal, sizeof(rq->principal), "%s", PGCMK_ADMIN_OBJECT_ID);
            return 0;
        }
        return pgcmk_err_set(err, PGCMK_E_UNAUTHENTICATED, NULL,
                             "Authentication failed. The 'Authorization' header is missing.");
    }
    return pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL,
                         "The access token is invalid: this emulator build has no token service.");
}

/* Decodes %XX and (in queries) '+'. Invalid escapes are kept as they are. */
static char *
http_unescape(const char *s, size_t n, int plus)
{
    char *out = pgcmk_xmalloc(n + 1);
    size_t j = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};

            out[j++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else if (plus && s[i] == '+') {
            out[j++] = ' ';
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

char *
pgcmk_form_get(const char *body, size_t len, const char *key)
{
    size_t kl = strlen(key);
    const char *p = body, *end = body + len;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        char *k = http_unescape(p, (size_t)((eq ? eq : stop) - p), 1);
        int hit = strlen(k) == kl && strcmp(k, key) == 0;

        free(k);
        if (hit)
            return eq ? http_unescape(eq + 1, (size_t)(stop - eq - 1), 1) : pgcmk_xstrdup("");
        p = stop + 1;
    }
    return NULL;
}

/* Collapses '//' and drops a trailing '/' (but keeps "/"). */
static void
http_normalize_path(char *p)
{
    char *w = p;

    for (char *r = p; *r; r++) {
        if (*r == '/' && w > p && w[-1] == '/')
            continue;
        *w++ = *r;
    }
    *w = '\0';
    if (w - p > 1 && w[-1] == '/')
        w[-1] = '\0';
    if (*p == '\0') {
        p[0] = '/';
        p[1] = '\0';
    }
}

static void
req_set_host(struct pgcmk_req *rq, const char *host)
{
    char buf[256];
    const char *colon;
    size_t n;

    if (host == NULL)
        host = "localhost";
    if (host[0] == '[') { /* [::1]:8443 */
        const char *end = strchr(host, ']');

        n = end ? (size_t)(end - host + 1) : strlen(host);
        colon = end && end[1] == ':' ? end + 1 : NULL;
    } else {
        colon = strrchr(host, ':');
        n = colon ? (size_t)(colon - host) : strlen(host);
    }
    if (n >= sizeof(buf))
        n = sizeof(buf) - 1;
    pgcmk_lower(buf, n + 1, host);
    free(rq->host);
    rq->host = pgcmk_xstrdup(buf);
    rq->host_port = colon ? atoi(colon + 1) : rq->port;
    free(rq->vault);
    rq->vault = NULL;
    rq->plane = PGCMK_PLANE_ARM;
    if (pgcmk_has_suffix_ci(rq->host, ".vault.localhost")) {
        size_t vl = strlen(rq->host) - strlen(".vault.localhost");

        if (vl > 0 && memchr(rq->host, '.', vl) == NULL) {
            rq->vault = pgcmk_xstrndup(rq->host, vl);
            rq->plane = PGCMK_PLANE_VAULT;
        }
    }
}

void
pgcmk_req_add_header(struct pgcmk_req *rq, const char *name, const char *value)
{
    if (rq->n_headers == PGCMK_MAX_HEADERS)
        return;
    rq->headers[rq->n_headers].key = pgcmk_xstrdup(name);
    rq->headers[rq->n_headers].value = pgcmk_xstrdup(value ? value : "");
    rq->n_headers++;
}

void
pgcmk_req_init(struct pgcmk_req *rq, const struct pgcmk_cfg *cfg, const char *method,
               const char *url, const char *host, const char *body, size_t body_len)
{
    const char *q = strchr(url, '?');
    size_t plen = q ? (size_t)(q - url) : strlen(url);

    memset(rq, 0, sizeof(*rq));
    rq->cfg = cfg;
    rq->method = method;
    rq->port = cfg ? cfg->port : 0;
    rq->tls = 1;
    rq->raw_path = pgcmk_xstrndup(url, plen);
    rq->path = pgcmk_xmalloc(plen + 2);
    {
        char *dec = http_unescape(url, plen, 0);

        snprintf(rq->path, plen + 2, "%s", dec);
        free(dec);
    }
    http_normalize_path(rq->path);
    req_set_host(rq, host);
    for (const char *p = q ? q + 1 : NULL; p && *p && rq->n_query < PGCMK_MAX_QUERY;) {
        const char *amp = strchr(p, '&'), *eq;
        size_t n = amp ? (size_t)(amp - p) : strlen(p);

        eq = memchr(p, '=', n);
        if (n > 0) {
            size_t kn = eq ? (size_t)(eq - p) : n;

            rq->query[rq->n_query].key = http_unescape(p, kn, 1);
            rq->query[rq->n_query].value =
                eq ? http_unescape(eq + 1, n - kn - 1, 1) : pgcmk_xstrdup("");
            rq->n_query++;
        }
        p = amp ? amp + 1 : NULL;
    }
    rq->body = pgcmk_xmalloc(body_len + 1);
    if (body_len)
        memcpy(rq->body, body, body_len);
    rq->body[body_len] = '\0';
    rq->body_len = body_len;
}

static void
kv_free(struct pgcmk_kv *kv, int n)
{
    for (int i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
}

void
pgcmk_req_release(struct pgcmk_req *rq)
{
    kv_free(rq->params, rq->n_params);
    kv_free(rq->query, rq->n_query);
    for (int i = 0; i < rq->n_headers; i++) /* the bearer token */
        if (strcasecmp(rq->headers[i].key, "Authorization") == 0)
            pgcmk_secret_free(rq->headers[i].value, strlen(rq->headers[i].value));
        else
            free(rq->headers[i].value);
    for (int i = 0; i < rq->n_headers; i++)
        free(rq->headers[i].key);
    free(rq->path);
    free(rq->raw_path);
    free(rq->host);
    free(rq->vault);
    if (rq->body) /* it may hold key material or a plaintext to wrap */
        pgcmk_secret_free(rq->body, rq->body_len);
    if (rq->admitted_free)
        rq->admitted_free(rq->admitted);
    json_decref(rq->json);
    memset(rq, 0, sizeof(*rq));
}

static const char *
kv_get(const struct pgcmk_kv *kv, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcasecmp(kv[i].key, name) == 0)
            return kv[i].value;
    return NULL;
}

const char *
pgcmk_req_param(const struct pgcmk_req *rq, const char *name)
{
    return kv_get(rq->params, rq->n_params, name);
}

const char *
pgcmk_req_query(const struct pgcmk_req *rq, const char *name)
{
    return kv_get(rq->query, rq->n_query, name);
}

const char *
pgcmk_req_header(const struct pgcmk_req *rq, const char *name)
{
    return kv_get(rq->headers, rq->n_headers, name);
}

char *
pgcmk_req_base_url(const struct pgcmk_req *rq)
{
    const char *host = pgcmk_req_header(rq, "Host");

    if (host == NULL || *host == '\0' || strpbrk(host, "/ \"<>\\") != NULL)
        return pgcmk_xasprintf("%s://localhost:%d", rq->tls ? "https" : "http", rq->port);
    return pgcmk_xasprintf("%s://%s", rq->tls ? "https" : "http", host);
}

void
pgcmk_resp_header(struct pgcmk_resp *rs, const char *name, const char *value)
{
    for (int i = 0; i < rs->n_headers; i++) {
        if (strcasecmp(rs->headers[i].key, name) == 0) {
            free(rs->headers[i].value);
            rs->headers[i].value = pgcmk_xstrdup(value);
            return;
        }
    }
    if (rs->n_headers == PGCMK_MAX_RESP_HEADERS)
        PGCMK_BUG("too many response headers");
    rs->headers[rs->n_headers].key = pgcmk_xstrdup(name);
    rs->headers[rs->n_headers].value = pgcmk_xstrdup(value);
    rs->n_headers++;
}

static void
resp_set_body(struct pgcmk_resp *rs, int status, const char *ctype, char *body, size_t len)
{
    free(rs->body);
    rs->status = status;
    rs->content_type = ctype;
    rs->body = body;
    rs->body_len = len;
}

void
pgcmk_resp_json(struct pgcmk_resp *rs, int status, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

    json_decref(obj);
    if (text == NULL)
        text = pgcmk_xstrdup("{}");
    resp_set_body(rs, status, "application/json; charset=utf-8", text, strlen(text));
}

void
pgcmk_resp_text(struct pgcmk_resp *rs, int status, const char *content_type, const char *body,
                size_t len)
{
    char *copy = pgcmk_xmalloc(len + 1);

    memcpy(copy, body, len);
    copy[len] = '\0';
    resp_set_body(rs, status, content_type, copy, len);
}

void
pgcmk_resp_empty(struct pgcmk_resp *rs, int status)
{
    resp_set_body(rs, status, NULL, NULL, 0);
}

void
pgcmk_resp_release(struct pgcmk_resp *rs)
{
    kv_free(rs->headers, rs->n_headers);
    if (rs->body) /* an unwrapKey or decrypt answer holds a plaintext */
        pgcmk_secret_free(rs->body, rs->body_len);
    if (rs->stream_free)
        rs->stream_free(rs->stream_arg);
    memset(rs, 0, sizeof(*rs));
}

void
pgcmk_resp_error(struct pgcmk_resp *rs, enum pgcmk_envelope env, const struct pgcmk_err *err)
{
    int status = pgcmk_err_status(err->code);
    const char *code = pgcmk_err_code(pgcmk_err_parent(err->code));
    const char *inner_code = pgcmk_err_inner(err->code);
    json_t *inner;

    pgcmk_err_count(err->code);
    if (env == PGCMK_ENV_OAUTH) {
        /* AAD's body: error, error_description, and the AADSTS number as error_codes. */
        json_t *o = json_pack("{s:s, s:s}", "error", code, "error_description", err->message);
        char now[PGCMK_TIME_LEN], trace[37];

        if (o == NULL)
            o = json_pack("{s:s}", "error", code);
        if (strncmp(err->message, "AADSTS", 6) == 0)
            json_object_set_new(o, "error_codes",
                                json_pack("[I]", (json_int_t)strtoll(err->message + 6, NULL, 10)));
        pgcmk_time_format(pgcmk_wall_ms(), now);
        pgcmk_uuid(trace);
        json_object_set_new(o, "timestamp", json_string(now));
        json_object_set_new(o, "trace_id", json_string(trace));
        pgcmk_resp_json(rs, status, o);
        return;
    }
    if (env == PGCMK_ENV_KES) { /* KES: the message alone (kms-go reads "message") */
        json_t *o = json_pack("{s:s}", "message", err->message);

        pgcmk_resp_json(rs, status, o ? o : json_pack("{s:s}", "message", "invalid request"));
        return;
    }
    inner = json_pack("{s:s, s:s}", "code", code, "message",
                      status >= 500 && err->code == PGCMK_E_INTERNAL
                          ? "An internal error occurred. Quote the x-ms-request-id to find it in "
                            "the emulator's log."
                          : err->message);
    if (inner == NULL) /* a message that is not UTF-8 */
        inner = json_pack("{s:s, s:s}", "code", code, "message", "The request was invalid.");
    if (env == PGCMK_ENV_ARM && err->target[0])
        json_object_set_new(inner, "target", json_string(err->target));
    /* Key Vault carries a more precise code as innererror.code (the table's inner entries). */
    if (env == PGCMK_ENV_VAULT && inner_code)
        json_object_set_new(inner, "innererror", json_pack("{s:s}", "code", inner_code));
    pgcmk_resp_json(rs, status, json_pack("{s:o}", "error", inner));
    if (err->code == PGCMK_E_UNAVAILABLE)
        pgcmk_resp_header(rs, "Retry-After", "1");
    if (status == 401 && env == PGCMK_ENV_ARM) {
        char *h = pgcmk_xasprintf("Bearer authorization_uri=\"https://localhost:%d/%s\", "
                                  "error=\"invalid_token\", error_description=\"%s\"",
                                  pgcmk_public_port(), PGCMK_TENANT_ID,
                                  err->code == PGCMK_E_UNAUTHENTICATED
                                      ? "The authentication failed because of missing "
                                        "'Authorization' header."
                                      : "The access token is invalid.");

        pgcmk_resp_header(rs, "WWW-Authenticate", h);
        free(h);
    }
}

/* Query parameters a route takes: api-version always, then its comma-separated list. */
static int
req_check_query(const struct pgcmk_req *rq, struct pgcmk_err *err)
{
    const struct pgcmk_route *r = rq->route;

    if (r->flags & ROUTE_F_ANYQUERY)
        return 0;
    for (int i = 0; i < rq->n_query; i++) {
        const char *k = rq->query[i].key;
        const char *list = r->query ? r->query : "";
        size_t kl = strlen(k);
        int ok = strcasecmp(k, "api-version") == 0;

        for (const char *p = list; !ok && *p;) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);

            ok = n == kl && strncasecmp(p, k, n) == 0;
            p = comma ? comma + 1 : p + n;
        }
        if (!ok)
            return pgcmk_err_set(err, PGCMK_E_INVALID_QUERY, k,
                                 "The query parameter '%.64s' is not supported by this operation.",
                                 k);
    }
    return 0;
}

static int
req_parse_body(struct pgcmk_req *rq, struct pgcmk_err *err)
{
    const char *ctype = pgcmk_req_header(rq, "Content-Type");
    json_error_t jerr;

    if (rq->body_len == 0)
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, NULL,
                             "The request content was invalid and could not be deserialized: "
                             "'The request body is empty.'");
    if (ctype && *ctype && strncasecmp(ctype, "application/json", 16) != 0 &&
        strncasecmp(ctype, "text/json", 9) != 0)
        return pgcmk_err_set(err, PGCMK_E_UNSUPPORTED_MEDIA_TYPE, NULL,
                             "The content media type '%.64s' is not supported. Only "
                             "'application/json' is supported.",
                             ctype);
    rq->json = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (rq->json == NULL)
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, NULL,
                             "The request content was invalid and could not be deserialized: "
                             "'%.160s, line %d, position %d.'",
                             jerr.text, jerr.line, jerr.column);
    if (!json_is_object(rq->json))
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, NULL,
                             "The request content was invalid and could not be deserialized: "
                             "'the body must be a JSON object, line 1, position 1.'");
    return 0;
}

/* CORS: only pages from localhost, 127.0.0.1 or [::1] (any port, http or https), such as the
 * portal calling a vault on {vault}.vault.localhost, get Access-Control-* headers. */
static int
req_cors_origin_ok(const char *origin)
{
    static const char *const hosts[] = {"localhost", "127.0.0.1", "[::1]"};
    const char *h;

    if (origin == NULL)
        return 0;
    if (strncmp(origin, "https://", 8) == 0)
        h = origin + 8;
    else if (strncmp(origin, "http://", 7) == 0)
        h = origin + 7;
    else
        return 0;
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        size_t n = strlen(hosts[i]);
        const char *p = h + n;

        if (strncmp(h, hosts[i], n) != 0 || (*p != '\0' && *p != ':'))
            continue;
        if (*p == ':') {
            p++;
            if (*p == '\0' || strspn(p, "0123456789") != strlen(p) || strlen(p) > 5)
                return 0;
        }
        return 1;
    }
    return 0;
}

static void
req_finish_headers(struct pgcmk_req *rq, struct pgcmk_resp *rs)
{
    const char *origin = pgcmk_req_header(rq, "Origin");

    if (req_cors_origin_ok(origin)) {
        pgcmk_resp_header(rs, "Access-Control-Allow-Origin", origin);
        pgcmk_resp_header(rs, "Vary", "Origin");
        pgcmk_resp_header(rs, "Access-Control-Expose-Headers",
                          "x-ms-request-id, x-ms-correlation-request-id, x-ms-client-request-id, "
                          "WWW-Authenticate, Location, Azure-AsyncOperation, Retry-After, ETag");
    }
    pgcmk_resp_header(rs, "x-ms-request-id", rq->request_id);
    pgcmk_resp_header(rs, "x-ms-correlation-request-id", rq->correlation_id);
    if (rq->client_request_id[0])
        pgcmk_resp_header(rs, "x-ms-client-request-id", rq->client_request_id);
    pgcmk_resp_header(rs, "Cache-Control", "no-cache");
    if (rq->plane == PGCMK_PLANE_ARM) {
        pgcmk_resp_header(rs, "Pragma", "no-cache");
        pgcmk_resp_header(rs, "Expires", "-1");
    }
    pgcmk_resp_header(rs, "X-Content-Type-Options", "nosniff");
    if (rq->tls)
        pgcmk_resp_header(rs, "Strict-Transport-Security", "max-age=31536000; includeSubDomains");
}

/* Copies a client-supplied id if it is short and printable, else generates one. */
static void
req_take_id(char *out, size_t cap, const char *given, int generate)
{
    out[0] = '\0';
    if (given && *given && strlen(given) < cap) {
        int ok = 1;

        for (const char *p = given; *p; p++)
            ok &= isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.';
        if (ok) {
            snprintf(out, cap, "%s", given);
            return;
        }
    }
    if (generate && cap >= 37)
        pgcmk_uuid(out);
}

static pgcmk_http_observer_fn req_observer;

void
pgcmk_http_set_observer(pgcmk_http_observer_fn fn)
{
    req_observer = fn;
}

void
pgcmk_http_dispatch(struct pgcmk_req *rq, struct pgcmk_resp *rs)
{
    struct pgcmk_err err;
    char allow[128];
    enum pgcmk_envelope env = rq->plane == PGCMK_PLANE_VAULT ? PGCMK_ENV_VAULT : PGCMK_ENV_ARM;
    int rc = -1;

    pgcmk_err_clear(&err);
    pgcmk_uuid(rq->request_id);
    req_take_id(rq->correlation_id, sizeof(rq->correlation_id),
                pgcmk_req_header(rq, "x-ms-correlation-request-id"), 1);
    req_take_id(rq->client_request_id, sizeof(rq->client_request_id),
                pgcmk_req_header(rq, "x-ms-client-request-id"), 0);
    rq->api_version = pgcmk_req_query(rq, "api-version");
    if (strcmp(rq->method, "OPTIONS") == 0 &&
        pgcmk_req_header(rq, "Access-Control-Request-Method") &&
        req_cors_origin_ok(pgcmk_req_header(rq, "Origin"))) {
        /* A CORS preflight: answered before routing and auth (it carries no token). */
        pgcmk_resp_empty(rs, 204);
        pgcmk_resp_header(rs, "Access-Control-Allow-Methods",
                          "GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS");
        pgcmk_resp_header(rs, "Access-Control-Allow-Headers",
                          "Authorization, Content-Type, x-ms-client-request-id, "
                          "x-ms-correlation-request-id, x-ms-return-client-request-id");
        pgcmk_resp_header(rs, "Access-Control-Max-Age", "600");
        rc = 0;
        goto out;
    }
    rq->route = pgcmk_router_match(rq, allow, sizeof(allow));
    if (rq->route == NULL) {
        if (allow[0]) {
            pgcmk_err_set(&err, PGCMK_E_METHOD_NOT_ALLOWED, NULL,
                          "The requested resource does not support http method '%.16s'.",
                          rq->method);
            pgcmk_resp_header(rs, "Allow", allow);
        } else if (rq->plane == PGCMK_PLANE_VAULT) {
            pgcmk_err_set(&err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                          "The request URI contains an invalid path: '%.128s'.", rq->path);
        } else {
            pgcmk_err_set(&err, PGCMK_E_NOT_FOUND, NULL,
                          "The requested path '%.128s' is not served by this emulator.", rq->path);
        }
        goto out;
    }
    env = rq->route->envelope;
    if (req_check_query(rq, &err))
        goto out;
    if (rq->route->perm) {
        pgcmk_admit_fn admit =
            (unsigned)rq->plane < PGCMK_ARRAY_LEN(http_admit) ? http_admit[rq->plane] : NULL;

        if (admit == NULL) {
            pgcmk_err_set(&err, PGCMK_E_INTERNAL, NULL, "no admission for route %s %s",
                          rq->route->method, rq->route->pattern);
            goto out;
        }
        if (admit(rq, rs, &err))
            goto out;
    } else if (!(rq->route->flags & ROUTE_F_NOAUTH) && http_auth(rq, &err)) {
        goto out;
    }
    if ((rq->route->flags & ROUTE_F_APIVER) && (rq->api_version == NULL || !*rq->api_version)) {
        if (rq->plane == PGCMK_PLANE_VAULT)
            pgcmk_err_set(&err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                          "The api-version parameter is missing.");
        else
            pgcmk_err_set(&err, PGCMK_E_MISSING_API_VERSION, NULL,
                          "The api-version query parameter (?api-version=) is required for all "
                          "requests.");
        goto out;
    }
    if ((rq->route->flags & ROUTE_F_JSON) && req_parse_body(rq, &err))
        goto out;
    rc = rq->route->fn(rq, rs, &err);
out:
    if (rq->admitted_free) {
        rq->admitted_free(rq->admitted);
        rq->admitted_free = NULL;
        rq->admitted = NULL;
    }
    if (rc != 0) {
        if (pgcmk_err_status(err.code) >= 500)
            LOG_ERR("req=%s %s %.200s failed: %s", rq->request_id, rq->method, rq->path,
                    err.message);
        pgcmk_resp_error(rs, env, &err);
    }
    req_finish_headers(rq, rs);
    if (req_observer)
        req_observer(rq, rs);
}
