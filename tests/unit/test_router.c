/* test_router.c - the route table (matching, specificity, 405 Allow lists, planes, the ambiguity
 * check), request parsing (path, query, Host) and the dispatch pipeline without sockets. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "pgcmk/core.h"
#include "pgcmk/err.h"
#include "pgcmk/http.h"
#include "pgcmk/wellknown.h"

#include "t.h"

/* ---- handlers: each answers {"h": name, "params": {...}} so a test can tell who ran ------- */

static int
answer(const char *name, struct pgcmk_req *rq, struct pgcmk_resp *rs, int status)
{
    json_t *params = json_object();

    for (int i = 0; i < rq->n_params; i++)
        json_object_set_new(params, rq->params[i].key, json_string(rq->params[i].value));
    pgcmk_resp_json(
        rs, status,
        json_pack("{s:s, s:o, s:s}", "h", name, "params", params, "principal", rq->principal));
    return 0;
}

static int
h_rg_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    return answer("rg_get", rq, rs, 200);
}

static int
h_rg_put(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    /* a JSON route sees the parsed object */
    if (!json_is_object(rq->json))
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "no parsed body");
    return answer("rg_put", rq, rs, 201);
}

static int
h_rg_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    return answer("rg_list", rq, rs, 200);
}

static int
h_rg_special(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    return answer("rg_special", rq, rs, 200);
}

static int
h_rest(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    return answer("rest", rq, rs, 200);
}

static int
h_typed(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    return answer("typed", rq, rs, 200);
}

static int
h_fixed(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    return answer("fixed", rq, rs, 200);
}

static int
h_secret(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    return answer("secret", rq, rs, 200);
}

static int
h_token(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(rq);
    PGCMK_UNUSED(rs);
    return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, NULL, "invalid_grant for the test");
}

static int
h_health(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    return answer("health", rq, rs, 200);
}

/* /fail/{kind}: answers with the error named by kind. */
static int
h_fail(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *kind = pgcmk_req_param(rq, "kind");

    PGCMK_UNUSED(rs);
    if (strcmp(kind, "internal") == 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "sqlite said: secret-path /etc/x");
    if (strcmp(kind, "busy") == 0)
        return pgcmk_err_set(err, PGCMK_E_UNAVAILABLE, NULL, "busy");
    if (strcmp(kind, "target") == 0)
        return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "properties.sku", "bad sku '%s'",
                             "Gold");
    if (strcmp(kind, "utf8") == 0)
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, NULL, "bad byte \xff here");
    return pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL, "conflict");
}

enum {
    R_RG_GET,
    R_RG_PUT,
    R_RG_DELETE,
    R_RG_LIST,
    R_RG_SPECIAL,
    R_REST,
    R_TYPED,
    R_FIXED,
    R_SECRET,
    R_SECRET_PUT,
    R_TOKEN,
    R_HEALTH,
    R_FAIL,
    R_ANYQ,
    R__COUNT
};

#define RG   "/subscriptions/{sub}/resourcegroups/{rg}"
#define PROV RG "/providers/{ns}"
static const struct pgcmk_route routes[] = {
    [R_RG_GET] = {"GET", RG, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, NULL, h_rg_get},
    [R_RG_PUT] = {"PUT", RG, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON | ROUTE_F_APIVER, NULL,
                  h_rg_put},
    [R_RG_DELETE] = {"DELETE", RG, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER,
                     "forceDeletionTypes", h_rg_get},
    [R_RG_LIST] = {"GET", "/subscriptions/{sub}/resourcegroups", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
                   ROUTE_F_APIVER, "$filter,$top", h_rg_list},
    [R_RG_SPECIAL] = {"GET", "/subscriptions/{sub}/resourcegroups/special", PGCMK_PLANE_ARM,
                      PGCMK_ENV_ARM, 0, NULL, h_rg_special},
    [R_REST] = {"GET", PROV "/{*rest}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, NULL,
                h_rest},
    [R_TYPED] = {"GET", PROV "/{type}/{name}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, NULL,
                 h_typed},
    [R_FIXED] = {"GET", RG "/providers/Microsoft.Fixed/{type}/{name}", PGCMK_PLANE_ARM,
                 PGCMK_ENV_ARM, ROUTE_F_APIVER, NULL, h_fixed},
    [R_SECRET] = {"GET", "/secrets/{name}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, ROUTE_F_APIVER,
                  NULL, h_secret},
    [R_SECRET_PUT] = {"PUT", "/secrets/{name}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT,
                      ROUTE_F_JSON | ROUTE_F_APIVER, NULL, h_secret},
    [R_TOKEN] = {"POST", "/{tenant}/oauth2/v2.0/token", PGCMK_PLANE_ARM, PGCMK_ENV_OAUTH,
                 ROUTE_F_NOAUTH | ROUTE_F_ANYBODY, NULL, h_token},
    [R_HEALTH] = {"GET", "/healthz", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_NOAUTH, NULL,
                  h_health},
    [R_FAIL] = {"GET", "/fail/{kind}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, h_fail},
    [R_ANYQ] = {"GET", "/anyquery", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_ANYQUERY, NULL,
                h_health},
};

static void
use_table(void)
{
    pgcmk_router_reset();
    pgcmk_router_add(routes, PGCMK_ARRAY_LEN(routes));
}

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
    if (rs->body == NULL)
        return NULL;
    return json_loadb(rs->body, rs->body_len, 0, NULL);
}

/* Matches method+url+host against the table: the route index, or -1 with allow filled. */
static int
match(const char *method, const char *url, const char *host, char *allow, size_t cap,
      struct pgcmk_req *keep)
{
    struct pgcmk_req rq;
    const struct pgcmk_route *r;
    char dummy[128];

    if (allow == NULL) {
        allow = dummy;
        cap = sizeof(dummy);
    }
    pgcmk_req_init(&rq, NULL, method, url, host, NULL, 0);
    r = pgcmk_router_match(&rq, allow, cap);
    if (keep)
        *keep = rq;
    else
        pgcmk_req_release(&rq);
    return r ? (int)(r - routes) : -1;
}

/* Runs a whole request; the caller releases rs. */
static void
run(const char *method, const char *url, const char *host, const char *ctype, const char *body,
    struct pgcmk_resp *rs)
{
    struct pgcmk_req rq;

    memset(rs, 0, sizeof(*rs));
    pgcmk_req_init(&rq, NULL, method, url, host, body, body ? strlen(body) : 0);
    if (ctype)
        pgcmk_req_add_header(&rq, "Content-Type", ctype);
    pgcmk_http_dispatch(&rq, rs);
    pgcmk_req_release(&rq);
}

static const char *
err_code_of(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

static const char *
err_msg_of(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "message"));
}

static int
is_uuid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!strchr("0123456789abcdef", s[i])) {
            return 0;
        }
    }
    return 1;
}

/* ---- request parsing ---------------------------------------------------------------------- */

static void
test_req_init(void)
{
    struct pgcmk_req rq;

    pgcmk_req_init(&rq, NULL, "GET", "/path?x=1&api-version=2021-04-01", "localhost:8443", NULL, 0);
    CHECK_STR(rq.method, "GET");
    CHECK_STR(rq.path, "/path");
    CHECK_STR(rq.raw_path, "/path");
    CHECK(rq.n_query == 2);
    CHECK_STR(pgcmk_req_query(&rq, "x"), "1");
    CHECK_STR(pgcmk_req_query(&rq, "api-version"), "2021-04-01");
    CHECK_STR(pgcmk_req_query(&rq, "API-VERSION"), "2021-04-01");
    CHECK(pgcmk_req_query(&rq, "y") == NULL);
    CHECK_STR(rq.host, "localhost");
    CHECK(rq.host_port == 8443);
    CHECK(rq.plane == PGCMK_PLANE_ARM);
    CHECK(rq.vault == NULL);
    CHECK(rq.body != NULL && rq.body_len == 0 && rq.body[0] == '\0');
    CHECK(rq.json == NULL);
    CHECK(rq.tls == 1);
    pgcmk_req_release(&rq);

    /* percent-decoding: path keeps '+', query turns it into a space */
    pgcmk_req_init(&rq, NULL, "GET", "/a%20b/c+d/%41%42?k%20ey=v+a%2Bl%3d&plus=a+b", "localhost",
                   NULL, 0);
    CHECK_STR(rq.path, "/a b/c+d/AB");
    CHECK_STR(rq.raw_path, "/a%20b/c+d/%41%42");
    CHECK_STR(pgcmk_req_query(&rq, "k ey"), "v a+l=");
    CHECK_STR(pgcmk_req_query(&rq, "plus"), "a b");
    pgcmk_req_release(&rq);

    /* invalid escapes are kept; an escape at the very end is decoded */
    pgcmk_req_init(&rq, NULL, "GET", "/x%zz/y%4/z%41?q=%&r=%4&s=%41", NULL, NULL, 0);
    CHECK_STR(rq.path, "/x%zz/y%4/zA");
    CHECK_STR(pgcmk_req_query(&rq, "q"), "%");
    CHECK_STR(pgcmk_req_query(&rq, "r"), "%4");
    CHECK_STR(pgcmk_req_query(&rq, "s"), "A");
    pgcmk_req_release(&rq);

    /* '//' collapsing and trailing slash removal */
    {
        static const char *const cases[][2] = {
            {"/a//b", "/a/b"},     {"//a///b//", "/a/b"},
            {"/a/b/", "/a/b"},     {"/", "/"},
            {"//", "/"},           {"", "/"},
            {"/a%2F%2Fb", "/a/b"}, {"/a/?x=1", "/a"},
            {"///?", "/"},         {"/Sub/X", "/Sub/X"},
            {"/a/b//", "/a/b"},    {"/%2F", "/"},
        };
        for (size_t i = 0; i < PGCMK_ARRAY_LEN(cases); i++) {
            pgcmk_req_init(&rq, NULL, "GET", cases[i][0], NULL, NULL, 0);
            CHECK_STR(rq.path, cases[i][1]);
            pgcmk_req_release(&rq);
        }
    }

    /* query oddities: empty pairs skipped, no '=', '=' in the value, empty value */
    pgcmk_req_init(&rq, NULL, "GET", "/q?&&a&b=&c=x=y&&", NULL, NULL, 0);
    CHECK(rq.n_query == 3);
    CHECK_STR(pgcmk_req_query(&rq, "a"), "");
    CHECK_STR(pgcmk_req_query(&rq, "b"), "");
    CHECK_STR(pgcmk_req_query(&rq, "c"), "x=y");
    pgcmk_req_release(&rq);

    /* more than PGCMK_MAX_QUERY parameters: the rest is dropped, no overflow */
    {
        char url[1024];
        size_t n = (size_t)snprintf(url, sizeof(url), "/q?");

        for (int i = 0; i < PGCMK_MAX_QUERY + 10; i++)
            n += (size_t)snprintf(url + n, sizeof(url) - n, "k%d=%d&", i, i);
        pgcmk_req_init(&rq, NULL, "GET", url, NULL, NULL, 0);
        CHECK(rq.n_query == PGCMK_MAX_QUERY);
        CHECK_STR(pgcmk_req_query(&rq, "k0"), "0");
        pgcmk_req_release(&rq);
    }

    /* the body is copied and NUL-terminated */
    {
        const char body[] = {'{', '}', 'X'};

        pgcmk_req_init(&rq, NULL, "PUT", "/b", NULL, body, 2);
        CHECK(rq.body_len == 2);
        CHECK_STR(rq.body, "{}");
        CHECK(rq.body != body);
        pgcmk_req_release(&rq);
    }

    /* headers: case-insensitive lookup, first one wins */
    pgcmk_req_init(&rq, NULL, "GET", "/h", NULL, NULL, 0);
    pgcmk_req_add_header(&rq, "Content-Type", "application/json");
    pgcmk_req_add_header(&rq, "X-Empty", NULL);
    CHECK_STR(pgcmk_req_header(&rq, "content-type"), "application/json");
    CHECK_STR(pgcmk_req_header(&rq, "x-empty"), "");
    CHECK(pgcmk_req_header(&rq, "Accept") == NULL);
    for (int i = 0; i < PGCMK_MAX_HEADERS + 5; i++)
        pgcmk_req_add_header(&rq, "X-Many", "v");
    CHECK(rq.n_headers == PGCMK_MAX_HEADERS);
    pgcmk_req_release(&rq);
    CHECK(rq.path == NULL && rq.n_headers == 0);
}

static void
test_req_host(void)
{
    struct pgcmk_req rq;
    struct pgcmk_cfg cfg;
    char *url;

    pgcmk_req_init(&rq, NULL, "GET", "/", "myvault.vault.localhost:8443", NULL, 0);
    CHECK(rq.plane == PGCMK_PLANE_VAULT);
    CHECK_STR(rq.vault, "myvault");
    CHECK_STR(rq.host, "myvault.vault.localhost");
    CHECK(rq.host_port == 8443);
    pgcmk_req_release(&rq);

    pgcmk_req_init(&rq, NULL, "GET", "/", "MyVault.Vault.LocalHost", NULL, 0);
    CHECK(rq.plane == PGCMK_PLANE_VAULT);
    CHECK_STR(rq.vault, "myvault");
    CHECK_STR(rq.host, "myvault.vault.localhost");
    pgcmk_req_release(&rq);

    pgcmk_req_init(&rq, NULL, "GET", "/", "localhost", NULL, 0);
    CHECK(rq.plane == PGCMK_PLANE_ARM);
    CHECK(rq.vault == NULL);
    CHECK_STR(rq.host, "localhost");
    CHECK(rq.host_port == 0); /* no cfg, no port: the listener's (0) */
    pgcmk_req_release(&rq);

    pgcmk_req_init(&rq, NULL, "GET", "/", "LOCALHOST:9", NULL, 0);
    CHECK_STR(rq.host, "localhost");
    CHECK(rq.host_port == 9);
    pgcmk_req_release(&rq);

    pgcmk_req_init(&rq, NULL, "GET", "/", "[::1]:9000", NULL, 0);
    CHECK_STR(rq.host, "[::1]");
    CHECK(rq.host_port == 9000);
    CHECK(rq.plane == PGCMK_PLANE_ARM);
    pgcmk_req_release(&rq);

    pgcmk_req_init(&rq, NULL, "GET", "/", "[::1]", NULL, 0);
    CHECK_STR(rq.host, "[::1]");
    CHECK(rq.host_port == 0);
    pgcmk_req_release(&rq);

    pgcmk_req_init(&rq, NULL, "GET", "/", NULL, NULL, 0);
    CHECK_STR(rq.host, "localhost");
    CHECK(rq.plane == PGCMK_PLANE_ARM);
    pgcmk_req_release(&rq);

    /* nested names, a bare suffix, a look-alike: not vaults */
    {
        static const char *const not_vaults[] = {
            "a.b.vault.localhost",          "vault.localhost",        ".vault.localhost",
            "myvault.vault.localhost.evil", "myvaultvault.localhost", "x.vault.localhostx"};
        for (size_t i = 0; i < PGCMK_ARRAY_LEN(not_vaults); i++) {
            pgcmk_req_init(&rq, NULL, "GET", "/", not_vaults[i], NULL, 0);
            CHECK(rq.plane == PGCMK_PLANE_ARM);
            CHECK(rq.vault == NULL);
            pgcmk_req_release(&rq);
        }
    }

    /* the listener's port from the configuration when the Host names none */
    memset(&cfg, 0, sizeof(cfg));
    cfg.port = 8443;
    pgcmk_req_init(&rq, &cfg, "GET", "/", "kv.vault.localhost", NULL, 0);
    CHECK(rq.port == 8443);
    CHECK(rq.host_port == 8443);
    CHECK_STR(rq.vault, "kv");
    CHECK(rq.cfg == &cfg);
    pgcmk_req_release(&rq);

    /* a very long Host is cut, not overflowed */
    {
        char host[600];

        memset(host, 'h', sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        pgcmk_req_init(&rq, NULL, "GET", "/", host, NULL, 0);
        CHECK(rq.host != NULL && strlen(rq.host) == 255);
        pgcmk_req_release(&rq);
    }

    /* base URL: from the Host header, else localhost and the listener's port */
    pgcmk_req_init(&rq, &cfg, "GET", "/", "localhost:8443", NULL, 0);
    url = pgcmk_req_base_url(&rq);
    CHECK_STR(url, "https://localhost:8443");
    free(url);
    pgcmk_req_add_header(&rq, "Host", "example.test:1234");
    url = pgcmk_req_base_url(&rq);
    CHECK_STR(url, "https://example.test:1234");
    free(url);
    pgcmk_req_release(&rq);
    pgcmk_req_init(&rq, &cfg, "GET", "/", NULL, NULL, 0);
    pgcmk_req_add_header(&rq, "Host", "evil.test/\"><script>");
    rq.tls = 0;
    url = pgcmk_req_base_url(&rq);
    CHECK_STR(url, "http://localhost:8443");
    free(url);
    pgcmk_req_release(&rq);
}

/* ---- matching ----------------------------------------------------------------------------- */

static void
test_match(void)
{
    struct pgcmk_req rq;
    char allow[128];
    int r;

    use_table();

    /* literal segments case-insensitive, captured values keep their case */
    r = match("GET", "/Subscriptions/X/ResourceGroups/y", "localhost", allow, sizeof(allow), &rq);
    CHECK(r == R_RG_GET);
    CHECK_STR(pgcmk_req_param(&rq, "sub"), "X");
    CHECK_STR(pgcmk_req_param(&rq, "rg"), "y");
    CHECK_STR(pgcmk_req_param(&rq, "RG"), "y");
    CHECK(rq.n_params == 2);
    CHECK_STR(allow, "");
    /* matching again does not duplicate the captures */
    CHECK(pgcmk_router_match(&rq, allow, sizeof(allow)) == &routes[R_RG_GET]);
    CHECK(rq.n_params == 2);
    pgcmk_req_release(&rq);

    r = match("GET", "/SUBSCRIPTIONS/MixedCase-Sub/RESOURCEGROUPS/My.Group(1)/", NULL, NULL, 0,
              &rq);
    CHECK(r == R_RG_GET);
    CHECK_STR(pgcmk_req_param(&rq, "sub"), "MixedCase-Sub");
    CHECK_STR(pgcmk_req_param(&rq, "rg"), "My.Group(1)");
    pgcmk_req_release(&rq);

    CHECK(match("PUT", "/subscriptions/s/resourcegroups/g", NULL, NULL, 0, NULL) == R_RG_PUT);
    CHECK(match("DELETE", "/subscriptions/s/resourcegroups/g", NULL, NULL, 0, NULL) == R_RG_DELETE);
    CHECK(match("GET", "/subscriptions/s/resourcegroups", NULL, NULL, 0, NULL) == R_RG_LIST);
    CHECK(match("GET", "/subscriptions/s/resourcegroups/", NULL, NULL, 0, NULL) == R_RG_LIST);
    CHECK(match("GET", "//subscriptions//s/resourcegroups//g//", NULL, NULL, 0, NULL) == R_RG_GET);

    /* literal beats {param} */
    r = match("GET", "/subscriptions/s/resourcegroups/special", NULL, NULL, 0, &rq);
    CHECK(r == R_RG_SPECIAL);
    CHECK(rq.n_params == 1);
    CHECK_STR(pgcmk_req_param(&rq, "sub"), "s");
    CHECK(pgcmk_req_param(&rq, "rg") == NULL);
    pgcmk_req_release(&rq);
    CHECK(match("GET", "/subscriptions/s/resourcegroups/SPECIAL", NULL, NULL, 0, NULL) ==
          R_RG_SPECIAL);
    CHECK(match("GET", "/subscriptions/s/resourcegroups/specials", NULL, NULL, 0, NULL) ==
          R_RG_GET);

    /* {param} beats {*rest} */
    r = match("GET", "/subscriptions/s/resourcegroups/g/providers/Other.NS/vaults/v1", NULL, NULL,
              0, &rq);
    CHECK(r == R_TYPED);
    CHECK_STR(pgcmk_req_param(&rq, "ns"), "Other.NS");
    CHECK_STR(pgcmk_req_param(&rq, "type"), "vaults");
    CHECK_STR(pgcmk_req_param(&rq, "name"), "v1");
    CHECK(pgcmk_req_param(&rq, "rest") == NULL);
    pgcmk_req_release(&rq);

    /* literal beats {param} at the namespace */
    r = match("GET", "/subscriptions/s/resourcegroups/g/providers/microsoft.FIXED/vaults/v1", NULL,
              NULL, 0, &rq);
    CHECK(r == R_FIXED);
    CHECK(pgcmk_req_param(&rq, "ns") == NULL);
    CHECK_STR(pgcmk_req_param(&rq, "type"), "vaults");
    pgcmk_req_release(&rq);

    /* {*rest} takes the joined remaining segments (one or more) */
    r = match("GET", "/subscriptions/s/resourcegroups/g/providers/NS/vaults", NULL, NULL, 0, &rq);
    CHECK(r == R_REST);
    CHECK_STR(pgcmk_req_param(&rq, "rest"), "vaults");
    pgcmk_req_release(&rq);
    r = match("GET", "/subscriptions/s/resourcegroups/g/providers/NS/vaults/v1/Keys/K1", NULL, NULL,
              0, &rq);
    CHECK(r == R_REST);
    CHECK_STR(pgcmk_req_param(&rq, "ns"), "NS");
    CHECK_STR(pgcmk_req_param(&rq, "rest"), "vaults/v1/Keys/K1");
    pgcmk_req_release(&rq);
    r = match("GET", "/subscriptions/s/resourcegroups/g/providers/NS//a///b//c/", NULL, NULL, 0,
              &rq);
    CHECK(r == R_REST);
    CHECK_STR(pgcmk_req_param(&rq, "rest"), "a/b/c");
    pgcmk_req_release(&rq);
    r = match("GET", "/subscriptions/s/resourcegroups/g/providers/Microsoft.Fixed/a/b/c", NULL,
              NULL, 0, &rq);
    CHECK(r == R_REST);
    CHECK_STR(pgcmk_req_param(&rq, "rest"), "a/b/c");
    pgcmk_req_release(&rq);
    /* a rest parameter needs at least one segment */
    CHECK(match("GET", "/subscriptions/s/resourcegroups/g/providers/NS", NULL, allow, sizeof(allow),
                NULL) == -1);
    CHECK_STR(allow, "");

    /* another method: NULL and the methods that would match */
    CHECK(match("PATCH", "/subscriptions/s/resourcegroups/g", NULL, allow, sizeof(allow), NULL) ==
          -1);
    CHECK(strstr(allow, "GET") != NULL);
    CHECK(strstr(allow, "PUT") != NULL);
    CHECK(strstr(allow, "DELETE") != NULL);
    CHECK(strstr(allow, "PATCH") == NULL);
    CHECK_STR(allow, "GET, PUT, DELETE");
    CHECK(match("POST", "/subscriptions/s/resourcegroups", NULL, allow, sizeof(allow), NULL) == -1);
    CHECK_STR(allow, "GET");
    /* the most specific path decides the list: PUT is not offered on "special" */
    CHECK(match("PUT", "/subscriptions/s/resourcegroups/special", NULL, allow, sizeof(allow),
                NULL) == -1);
    CHECK_STR(allow, "GET");
    /* a small buffer is not overrun */
    {
        char small[8];

        memset(small, 'Z', sizeof(small));
        CHECK(match("PATCH", "/subscriptions/s/resourcegroups/g", NULL, small, sizeof(small),
                    NULL) == -1);
        CHECK(memchr(small, '\0', sizeof(small)) != NULL);
        CHECK(strlen(small) < sizeof(small));
    }

    /* no route at all: allow "" */
    CHECK(match("GET", "/nothing/here", NULL, allow, sizeof(allow), NULL) == -1);
    CHECK_STR(allow, "");
    CHECK(match("GET", "/", NULL, allow, sizeof(allow), NULL) == -1);
    CHECK_STR(allow, "");
    CHECK(match("GET", "/subscriptions/s/resourcegroups/g/extra", NULL, allow, sizeof(allow),
                NULL) == -1);
    CHECK_STR(allow, "");
    CHECK(match("GET", "/healthz/x", NULL, allow, sizeof(allow), NULL) == -1);
    CHECK(match("GET", "/HEALTHZ", NULL, NULL, 0, NULL) == R_HEALTH);
    /* methods are case-sensitive */
    CHECK(match("get", "/healthz", NULL, allow, sizeof(allow), NULL) == -1);
    CHECK_STR(allow, "GET");

    /* planes: vault routes only for {vault}.vault.localhost, ARM routes only for the rest */
    CHECK(match("GET", "/secrets/s1", "localhost:8443", allow, sizeof(allow), NULL) == -1);
    CHECK_STR(allow, "");
    r = match("GET", "/secrets/s1", "kv1.vault.localhost:8443", allow, sizeof(allow), &rq);
    CHECK(r == R_SECRET);
    CHECK_STR(pgcmk_req_param(&rq, "name"), "s1");
    pgcmk_req_release(&rq);
    CHECK(match("GET", "/healthz", "kv1.vault.localhost", allow, sizeof(allow), NULL) == -1);
    CHECK_STR(allow, "");
    CHECK(match("GET", "/secrets/s1", "a.kv1.vault.localhost", NULL, 0, NULL) == -1);
    CHECK(match("DELETE", "/secrets/s1", "kv1.vault.localhost", allow, sizeof(allow), NULL) == -1);
    CHECK_STR(allow, "GET, PUT");

    /* a path longer than the router's buffer, and one with too many segments: no match */
    {
        char url[4096];
        size_t n = (size_t)snprintf(url, sizeof(url), "/subscriptions/s/resourcegroups/");

        memset(url + n, 'g', 3000);
        url[n + 3000] = '\0';
        CHECK(match("GET", url, NULL, allow, sizeof(allow), NULL) == -1);
        CHECK_STR(allow, "");
        n = (size_t)snprintf(url, sizeof(url), "/subscriptions/s/resourcegroups/g/providers/ns");
        for (int i = 0; i < 40; i++)
            n += (size_t)snprintf(url + n, sizeof(url) - n, "/x%d", i);
        CHECK(match("GET", url, NULL, allow, sizeof(allow), NULL) == -1);
    }

    /* more captures than PGCMK_MAX_PARAMS: dropped, never overflowed */
    {
        static const struct pgcmk_route many[] = {
            {"GET", "/m/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}/{k}/{l}/{m}/{n}", PGCMK_PLANE_ARM,
             PGCMK_ENV_ARM, 0, NULL, h_health},
        };

        pgcmk_router_reset();
        pgcmk_router_add(many, 1);
        pgcmk_req_init(&rq, NULL, "GET", "/m/1/2/3/4/5/6/7/8/9/10/11/12/13/14", NULL, NULL, 0);
        CHECK(pgcmk_router_match(&rq, allow, sizeof(allow)) == &many[0]);
        CHECK(rq.n_params == PGCMK_MAX_PARAMS);
        CHECK_STR(pgcmk_req_param(&rq, "a"), "1");
        pgcmk_req_release(&rq);
        use_table();
    }

    /* an empty table */
    pgcmk_router_reset();
    CHECK(match("GET", "/healthz", NULL, allow, sizeof(allow), NULL) == -1);
    CHECK_STR(allow, "");
    use_table();
}

/* ---- the ambiguity check ------------------------------------------------------------------ */

static void
test_router_check(void)
{
    static const struct pgcmk_route dup_same[] = {
        {"GET", "/a/{x}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, h_health},
        {"GET", "/A/{y}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, h_health},
    };
    static const struct pgcmk_route one_a[] = {
        {"PUT", "/subscriptions/{sub}/things/{name}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL,
         h_health},
    };
    static const struct pgcmk_route one_b[] = {
        {"PUT", "/subscriptions/{s}/things/{n}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, h_health},
    };
    static const struct pgcmk_route fine[] = {
        {"GET", "/a/{x}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, h_health},
        {"PUT", "/a/{x}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, h_health},
        {"GET", "/a/{x}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, 0, NULL, h_health},
        {"GET", "/a/b", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, h_health},
        {"GET", "/a/{*rest}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, h_health},
        {"GET", "/a/{x}/c", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, h_health},
    };
    static const struct pgcmk_route dup_rest[] = {
        {"GET", "/r/{*one}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, h_health},
        {"GET", "/r/{*two}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, h_health},
    };

    fprintf(stderr, "(test_router: the 'ambiguous routes' lines below are expected)\n");
    use_table();
    CHECK(pgcmk_router_check() == 0);

    pgcmk_router_reset();
    pgcmk_router_add(fine, PGCMK_ARRAY_LEN(fine));
    CHECK(pgcmk_router_check() == 0);

    pgcmk_router_reset();
    pgcmk_router_add(dup_same, PGCMK_ARRAY_LEN(dup_same));
    CHECK(pgcmk_router_check() == -1);

    /* across two tables */
    pgcmk_router_reset();
    pgcmk_router_add(one_a, 1);
    pgcmk_router_add(one_b, 1);
    CHECK(pgcmk_router_check() == -1);
    CHECK(!pgcmk_router_sealed()); /* a failed check leaves the table open (start-up stops) */

    pgcmk_router_reset();
    pgcmk_router_add(dup_rest, PGCMK_ARRAY_LEN(dup_rest));
    CHECK(pgcmk_router_check() == -1);

    /* the same table twice */
    pgcmk_router_reset();
    pgcmk_router_add(one_a, 1);
    pgcmk_router_add(one_a, 1);
    CHECK(pgcmk_router_check() == -1);

    pgcmk_router_reset();
    CHECK(pgcmk_router_check() == 0);
    use_table();
}

/* Nothing writes the route table once it is checked: requests read it without a lock. */
static void
test_router_sealed(void)
{
    static const struct pgcmk_route one[] = {
        {"GET", "/sealed/{x}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, h_health},
    };
    static const struct pgcmk_route late[] = {
        {"GET", "/late", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, h_health},
    };
    int status = 0;
    pid_t pid;

    pgcmk_router_reset();
    CHECK(!pgcmk_router_sealed());
    pgcmk_router_add(one, 1);
    CHECK(!pgcmk_router_sealed());
    CHECK(pgcmk_router_check() == 0);
    CHECK(pgcmk_router_sealed());

    /* A late add is a bug: the process aborts (in a child, so this program goes on). */
    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        fprintf(stderr, "(test_router: the 'route table sealed' BUG line below is expected)\n");
        pgcmk_router_add(late, 1);
        _exit(0); /* reached only if the add was accepted */
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);

    /* The table is unchanged: the late route is not served. */
    {
        struct pgcmk_req rq;
        char allow[64], p_late[] = "/late", p_sealed[] = "/sealed/a";

        memset(&rq, 0, sizeof(rq));
        rq.plane = PGCMK_PLANE_ARM;
        rq.method = "GET";
        rq.path = p_late;
        CHECK(pgcmk_router_match(&rq, allow, sizeof(allow)) == NULL);
        rq.path = p_sealed;
        CHECK(pgcmk_router_match(&rq, allow, sizeof(allow)) == &one[0]);
        for (int i = 0; i < rq.n_params; i++) {
            free(rq.params[i].key);
            free(rq.params[i].value);
        }
    }

    /* reset (tests only) unseals */
    pgcmk_router_reset();
    CHECK(!pgcmk_router_sealed());
    use_table();
}

/* ---- dispatch ----------------------------------------------------------------------------- */

#define RG_URL "/subscriptions/" PGCMK_SUBSCRIPTION_ID "/resourcegroups/rg1"
#define AV     "api-version=2021-04-01"

static void
check_common_headers(const struct pgcmk_resp *rs, int arm)
{
    CHECK(is_uuid(resp_hdr(rs, "x-ms-request-id")));
    CHECK(resp_hdr(rs, "x-ms-correlation-request-id") != NULL);
    CHECK_STR(resp_hdr(rs, "Cache-Control"), "no-cache");
    CHECK_STR(resp_hdr(rs, "X-Content-Type-Options"), "nosniff");
    if (arm) {
        CHECK_STR(resp_hdr(rs, "Pragma"), "no-cache");
        CHECK_STR(resp_hdr(rs, "Expires"), "-1");
    } else {
        CHECK(resp_hdr(rs, "Pragma") == NULL);
    }
}

static void
test_dispatch(void)
{
    struct pgcmk_resp rs;
    struct pgcmk_req rq;
    json_t *j;

    use_table();

    /* a good request reaches its handler with the admin as principal (open mode) */
    run("GET", RG_URL "?" AV, "localhost:8443", NULL, NULL, &rs);
    CHECK(rs.status == 200);
    j = resp_json(&rs);
    CHECK_STR(json_string_value(json_object_get(j, "h")), "rg_get");
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "params"), "rg")), "rg1");
    CHECK_STR(json_string_value(json_object_get(j, "principal")), PGCMK_ADMIN_OBJECT_ID);
    CHECK(rs.content_type != NULL && strstr(rs.content_type, "application/json") != NULL);
    check_common_headers(&rs, 1);
    json_decref(j);
    pgcmk_resp_release(&rs);

    /* unknown path: 404 NotFound in the ARM envelope */
    run("GET", "/no/such/path?" AV, "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 404);
    j = resp_json(&rs);
    CHECK(json_is_object(json_object_get(j, "error")));
    CHECK_STR(err_code_of(j), "NotFound");
    CHECK(err_msg_of(j) != NULL && strstr(err_msg_of(j), "/no/such/path") != NULL);
    CHECK(resp_hdr(&rs, "Allow") == NULL);
    check_common_headers(&rs, 1);
    json_decref(j);
    pgcmk_resp_release(&rs);

    /* wrong method: 405 MethodNotAllowed and Allow */
    run("PATCH", RG_URL "?" AV, "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 405);
    j = resp_json(&rs);
    CHECK_STR(err_code_of(j), "MethodNotAllowed");
    CHECK(err_msg_of(j) != NULL && strstr(err_msg_of(j), "PATCH") != NULL);
    CHECK_STR(resp_hdr(&rs, "Allow"), "GET, PUT, DELETE");
    check_common_headers(&rs, 1);
    json_decref(j);
    pgcmk_resp_release(&rs);

    /* malformed JSON on a JSON route: 400 InvalidRequestContent naming the line */
    run("PUT", RG_URL "?" AV, "localhost", "application/json", "{\"location\": \"eastus\",\n}",
        &rs);
    CHECK(rs.status == 400);
    j = resp_json(&rs);
    CHECK_STR(err_code_of(j), "InvalidRequestContent");
    CHECK(err_msg_of(j) != NULL && strstr(err_msg_of(j), "line") != NULL);
    CHECK(err_msg_of(j) != NULL && strstr(err_msg_of(j), "line 2") != NULL);
    check_common_headers(&rs, 1);
    json_decref(j);
    pgcmk_resp_release(&rs);

    /* not an object, empty, duplicate keys */
    {
        static const char *const bodies[] = {"[1,2]", "",      "{\"a\":1,\"a\":2}",
                                             "nul",   "\"s\"", "{\"a\":1} trailing"};

        for (size_t i = 0; i < PGCMK_ARRAY_LEN(bodies); i++) {
            run("PUT", RG_URL "?" AV, "localhost", "application/json", bodies[i], &rs);
            CHECK(rs.status == 400);
            j = resp_json(&rs);
            CHECK_STR(err_code_of(j), "InvalidRequestContent");
            json_decref(j);
            pgcmk_resp_release(&rs);
        }
    }

    /* a valid JSON body: parsed; text/json and charset parameters are fine; no type is fine */
    {
        static const char *const types[] = {"application/json", "application/json; charset=utf-8",
                                            "Application/JSON", "text/json", NULL};

        for (size_t i = 0; i < PGCMK_ARRAY_LEN(types); i++) {
            run("PUT", RG_URL "?" AV, "localhost", types[i], "{\"location\":\"eastus\"}", &rs);
            CHECK(rs.status == 201);
            j = resp_json(&rs);
            CHECK_STR(json_string_value(json_object_get(j, "h")), "rg_put");
            json_decref(j);
            pgcmk_resp_release(&rs);
        }
    }

    /* another media type: 415 */
    run("PUT", RG_URL "?" AV, "localhost", "text/plain", "{\"location\":\"eastus\"}", &rs);
    CHECK(rs.status == 415);
    j = resp_json(&rs);
    CHECK_STR(err_code_of(j), "UnsupportedMediaType");
    json_decref(j);
    pgcmk_resp_release(&rs);

    /* ROUTE_F_APIVER without api-version: 400 MissingApiVersionParameter */
    run("GET", RG_URL, "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 400);
    j = resp_json(&rs);
    CHECK_STR(err_code_of(j), "MissingApiVersionParameter");
    check_common_headers(&rs, 1);
    json_decref(j);
    pgcmk_resp_release(&rs);
    run("GET", RG_URL "?api-version=", "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 400);
    j = resp_json(&rs);
    CHECK_STR(err_code_of(j), "MissingApiVersionParameter");
    json_decref(j);
    pgcmk_resp_release(&rs);
    /* ... before the body is looked at */
    run("PUT", RG_URL, "localhost", "application/json", "{bad", &rs);
    CHECK(rs.status == 400);
    j = resp_json(&rs);
    CHECK_STR(err_code_of(j), "MissingApiVersionParameter");
    json_decref(j);
    pgcmk_resp_release(&rs);
    /* a route without the flag does not need it */
    run("GET", "/healthz", "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 200);
    pgcmk_resp_release(&rs);

    /* unknown query parameter: 400 InvalidQueryParameter with the name as target */
    run("GET", RG_URL "?" AV "&$bogus=1", "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 400);
    j = resp_json(&rs);
    CHECK_STR(err_code_of(j), "InvalidQueryParameter");
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "error"), "target")), "$bogus");
    check_common_headers(&rs, 1);
    json_decref(j);
    pgcmk_resp_release(&rs);
    /* allowed ones pass, case-insensitively; api-version is always allowed */
    run("GET", "/subscriptions/s/resourcegroups?" AV "&$FILTER=x&$top=2", "localhost", NULL, NULL,
        &rs);
    CHECK(rs.status == 200);
    pgcmk_resp_release(&rs);
    /* a prefix of an allowed name is not allowed */
    run("GET", "/subscriptions/s/resourcegroups?" AV "&$to=2", "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 400);
    pgcmk_resp_release(&rs);
    run("GET", "/subscriptions/s/resourcegroups?" AV "&$filte=x", "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 400);
    pgcmk_resp_release(&rs);
    run("DELETE", RG_URL "?" AV "&forceDeletionTypes=x", "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 200);
    pgcmk_resp_release(&rs);
    run("GET", "/anyquery?whatever=1&more=2", "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 200);
    pgcmk_resp_release(&rs);
    /* a query name that is not UTF-8: still a well-formed envelope */
    run("GET", "/healthz?%ff%fe=1", "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 400);
    j = resp_json(&rs);
    CHECK_STR(err_code_of(j), "InvalidQueryParameter");
    CHECK(err_msg_of(j) != NULL);
    json_decref(j);
    pgcmk_resp_release(&rs);

    /* the vault plane: its envelope for unknown paths and missing api-version */
    run("GET", "/nothing", "kv1.vault.localhost", NULL, NULL, &rs);
    CHECK(rs.status == 400);
    j = resp_json(&rs);
    CHECK_STR(err_code_of(j), "BadParameter");
    check_common_headers(&rs, 0);
    json_decref(j);
    pgcmk_resp_release(&rs);
    run("GET", "/secrets/s1", "kv1.vault.localhost", NULL, NULL, &rs);
    CHECK(rs.status == 400);
    j = resp_json(&rs);
    CHECK_STR(err_code_of(j), "BadParameter");
    json_decref(j);
    pgcmk_resp_release(&rs);
    run("GET", "/secrets/s1?api-version=7.4", "kv1.vault.localhost", NULL, NULL, &rs);
    CHECK(rs.status == 200);
    check_common_headers(&rs, 0);
    pgcmk_resp_release(&rs);
    run("DELETE", "/secrets/s1?api-version=7.4", "kv1.vault.localhost", NULL, NULL, &rs);
    CHECK(rs.status == 405);
    CHECK_STR(resp_hdr(&rs, "Allow"), "GET, PUT");
    pgcmk_resp_release(&rs);

    /* handler errors: target, 500 hides the cause, 503 has Retry-After, the OAuth envelope */
    run("GET", "/fail/target", "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 400);
    j = resp_json(&rs);
    CHECK_STR(err_code_of(j), "InvalidParameter");
    CHECK_STR(err_msg_of(j), "bad sku 'Gold'");
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "error"), "target")),
              "properties.sku");
    json_decref(j);
    pgcmk_resp_release(&rs);

    fprintf(
        stderr,
        "(test_router: two 'lvl=error' log lines below, for the 500 and the 503, are expected)\n");
    run("GET", "/fail/internal", "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 500);
    j = resp_json(&rs);
    CHECK_STR(err_code_of(j), "InternalServerError");
    CHECK(rs.body != NULL && strstr(rs.body, "secret-path") == NULL);
    CHECK(err_msg_of(j) != NULL && strstr(err_msg_of(j), "x-ms-request-id") != NULL);
    json_decref(j);
    pgcmk_resp_release(&rs);

    run("GET", "/fail/busy", "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 503);
    CHECK_STR(resp_hdr(&rs, "Retry-After"), "1");
    pgcmk_resp_release(&rs);

    run("GET", "/fail/other", "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 409);
    CHECK(resp_hdr(&rs, "Retry-After") == NULL);
    pgcmk_resp_release(&rs);

    run("GET", "/fail/utf8", "localhost", NULL, NULL, &rs);
    CHECK(rs.status == 400);
    j = resp_json(&rs);
    CHECK(j != NULL);
    CHECK_STR(err_code_of(j), "BadRequest");
    CHECK(err_msg_of(j) != NULL);
    json_decref(j);
    pgcmk_resp_release(&rs);

    run("POST", "/tenant-x/oauth2/v2.0/token", "localhost", "application/x-www-form-urlencoded",
        "grant_type=x", &rs);
    CHECK(rs.status == 400);
    j = resp_json(&rs);
    CHECK_STR(json_string_value(json_object_get(j, "error")), "BadRequest");
    CHECK_STR(json_string_value(json_object_get(j, "error_description")),
              "invalid_grant for the test");
    json_decref(j);
    pgcmk_resp_release(&rs);

    /* correlation and client request ids: echoed when sane, else generated / dropped */
    pgcmk_req_init(&rq, NULL, "GET", "/healthz", "localhost", NULL, 0);
    pgcmk_req_add_header(&rq, "x-ms-correlation-request-id", "corr-123_abc.def");
    pgcmk_req_add_header(&rq, "x-ms-client-request-id", "client-1");
    memset(&rs, 0, sizeof(rs));
    pgcmk_http_dispatch(&rq, &rs);
    CHECK(rs.status == 200);
    CHECK_STR(resp_hdr(&rs, "x-ms-correlation-request-id"), "corr-123_abc.def");
    CHECK_STR(resp_hdr(&rs, "x-ms-client-request-id"), "client-1");
    CHECK_STR(resp_hdr(&rs, "x-ms-request-id"), rq.request_id);
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);

    pgcmk_req_init(&rq, NULL, "GET", "/healthz", "localhost", NULL, 0);
    pgcmk_req_add_header(&rq, "x-ms-correlation-request-id", "bad value\r\nX-Injected: 1");
    pgcmk_req_add_header(&rq, "x-ms-client-request-id", "<script>");
    memset(&rs, 0, sizeof(rs));
    pgcmk_http_dispatch(&rq, &rs);
    CHECK(is_uuid(resp_hdr(&rs, "x-ms-correlation-request-id")));
    CHECK(resp_hdr(&rs, "x-ms-client-request-id") == NULL);
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);

    /* two requests get two request ids */
    {
        char first[37];

        run("GET", "/healthz", "localhost", NULL, NULL, &rs);
        snprintf(first, sizeof(first), "%s", resp_hdr(&rs, "x-ms-request-id"));
        pgcmk_resp_release(&rs);
        run("GET", "/healthz", "localhost", NULL, NULL, &rs);
        CHECK(strcmp(first, resp_hdr(&rs, "x-ms-request-id")) != 0);
        pgcmk_resp_release(&rs);
    }

    /* strict auth: 401 without a token, but NOAUTH routes still answer */
    {
        struct pgcmk_cfg cfg;

        memset(&cfg, 0, sizeof(cfg));
        cfg.auth = PGCMK_AUTH_STRICT;
        cfg.port = 8443;
        pgcmk_req_init(&rq, &cfg, "GET", RG_URL "?" AV, "localhost", NULL, 0);
        memset(&rs, 0, sizeof(rs));
        pgcmk_http_dispatch(&rq, &rs);
        CHECK(rs.status == 401);
        j = resp_json(&rs);
        CHECK_STR(err_code_of(j), "AuthenticationFailed");
        json_decref(j);
        pgcmk_resp_release(&rs);
        pgcmk_req_release(&rq);

        pgcmk_req_init(&rq, &cfg, "GET", "/healthz", "localhost", NULL, 0);
        memset(&rs, 0, sizeof(rs));
        pgcmk_http_dispatch(&rq, &rs);
        CHECK(rs.status == 200);
        pgcmk_resp_release(&rs);
        pgcmk_req_release(&rq);

        /* a token the default hook cannot verify */
        pgcmk_req_init(&rq, NULL, "GET", RG_URL "?" AV, "localhost", NULL, 0);
        pgcmk_req_add_header(&rq, "Authorization", "Bearer abc");
        memset(&rs, 0, sizeof(rs));
        pgcmk_http_dispatch(&rq, &rs);
        CHECK(rs.status == 401);
        j = resp_json(&rs);
        CHECK_STR(err_code_of(j), "InvalidAuthenticationToken");
        json_decref(j);
        pgcmk_resp_release(&rs);
        pgcmk_req_release(&rq);
    }
}

/* ---- responses ---------------------------------------------------------------------------- */

static void
test_resp(void)
{
    struct pgcmk_resp rs;
    struct pgcmk_err err;

    memset(&rs, 0, sizeof(rs));
    pgcmk_resp_header(&rs, "Location", "a");
    pgcmk_resp_header(&rs, "location", "b"); /* replaces, case-insensitively */
    CHECK(rs.n_headers == 1);
    CHECK_STR(resp_hdr(&rs, "LOCATION"), "b");
    pgcmk_resp_json(&rs, 201, json_pack("{s:i}", "a", 1));
    CHECK(rs.status == 201);
    CHECK_STR(rs.body, "{\"a\":1}");
    CHECK(rs.body_len == 7);
    pgcmk_resp_json(&rs, 200, NULL); /* replaces the body, "{}" */
    CHECK_STR(rs.body, "{}");
    pgcmk_resp_text(&rs, 200, "text/plain", "hello", 5);
    CHECK_STR(rs.body, "hello");
    CHECK_STR(rs.content_type, "text/plain");
    pgcmk_resp_empty(&rs, 204);
    CHECK(rs.status == 204 && rs.body == NULL && rs.body_len == 0 && rs.content_type == NULL);
    pgcmk_resp_release(&rs);
    CHECK(rs.n_headers == 0 && rs.body == NULL);

    /* the vault envelope has no target */
    memset(&rs, 0, sizeof(rs));
    pgcmk_err_set(&err, PGCMK_E_KV_NOT_FOUND, "name", "Secret not found: %s", "s1");
    pgcmk_resp_error(&rs, PGCMK_ENV_VAULT, &err);
    CHECK(rs.status == 404);
    CHECK(strstr(rs.body, "\"target\"") == NULL);
    CHECK(strstr(rs.body, "\"code\":\"NotFound\"") != NULL);
    pgcmk_resp_release(&rs);

    /* an OAuth error whose message is not UTF-8 still has an "error" member */
    memset(&rs, 0, sizeof(rs));
    pgcmk_err_set(&err, PGCMK_E_BAD_REQUEST, NULL, "bad byte \xff");
    pgcmk_resp_error(&rs, PGCMK_ENV_OAUTH, &err);
    CHECK(rs.status == 400);
    CHECK(rs.body != NULL && strstr(rs.body, "\"error\"") != NULL);
    if (rs.body && strstr(rs.body, "\"error\"") == NULL)
        fprintf(stderr, "  OAuth envelope for a non-UTF-8 message: %s\n", rs.body);
    pgcmk_resp_release(&rs);
}

int
main(void)
{
    test_req_init();
    test_req_host();
    test_match();
    test_router_check();
    test_router_sealed();
    test_dispatch();
    test_resp();
    pgcmk_router_reset();
    return t_done("test_router");
}
