/* test_vaultapi.c - the Vault API's pure parts (namespace normalising, mount matching,
 * durations) and its pipeline run without a socket on a store in a temporary directory. */
#include <stdlib.h>
#include <string.h>

#include "pgcmk/clock.h"
#include "pgcmk/http.h"
#include "pgcmk/vaultapi.h"
#include "t.h"
#include "t_store.h"
#include "vaultapi/internal.h"

static void
test_ns_norm(void)
{
    char out[PGCMK_HV_NS_MAX];
    char longns[400];

    CHECK(pgcmk_hv_ns_norm("", out) == 0 && strcmp(out, "") == 0);
    CHECK(pgcmk_hv_ns_norm(NULL, out) == 0 && strcmp(out, "") == 0);
    CHECK(pgcmk_hv_ns_norm("root", out) == 0 && strcmp(out, "") == 0);
    CHECK(pgcmk_hv_ns_norm("ns1", out) == 0);
    CHECK_STR(out, "ns1/");
    CHECK(pgcmk_hv_ns_norm("/ns1//ns2/", out) == 0);
    CHECK_STR(out, "ns1/ns2/");
    CHECK(pgcmk_hv_ns_norm("ns1/../x", out) == -1);
    CHECK(pgcmk_hv_ns_norm("./x", out) == -1);
    CHECK(pgcmk_hv_ns_norm("a b", out) == -1);
    memset(longns, 'a', sizeof(longns) - 1);
    longns[sizeof(longns) - 1] = '\0';
    CHECK(pgcmk_hv_ns_norm(longns, out) == -1);
}

static void
test_mount_match(void)
{
    const char *rest = NULL;

    CHECK(pgcmk_hv_mount_match("secret/", "secret/data/pg", &rest) == 1);
    CHECK_STR(rest, "data/pg");
    CHECK(pgcmk_hv_mount_match("secret/", "secret", &rest) == 1);
    CHECK_STR(rest, "");
    CHECK(pgcmk_hv_mount_match("secret/", "secret/", &rest) == 1);
    CHECK_STR(rest, "");
    CHECK(pgcmk_hv_mount_match("secret/", "secrets/x", &rest) == 0);
    CHECK(pgcmk_hv_mount_match("secret/", "secre", &rest) == 0);
    CHECK(pgcmk_hv_mount_match("a/b/", "a/b/c", &rest) == 1);
    CHECK_STR(rest, "c");
    CHECK(pgcmk_hv_mount_match("a/b/", "a/c", &rest) == 0);
    CHECK(pgcmk_hv_mount_match("", "x", &rest) == 0);
}

static void
test_durations(void)
{
    int64_t s = -1;
    json_t *v;

    CHECK(pgcmk_hv_duration_str("30", &s) == 0 && s == 30);
    CHECK(pgcmk_hv_duration_str("30s", &s) == 0 && s == 30);
    CHECK(pgcmk_hv_duration_str("10m", &s) == 0 && s == 600);
    CHECK(pgcmk_hv_duration_str("768h", &s) == 0 && s == 768 * 3600);
    CHECK(pgcmk_hv_duration_str("1h30m", &s) == 0 && s == 5400);
    CHECK(pgcmk_hv_duration_str("1d", &s) == 0 && s == 86400);
    CHECK(pgcmk_hv_duration_str("soon", &s) == -1);
    CHECK(pgcmk_hv_duration_str("", &s) == -1);
    CHECK(pgcmk_hv_duration_str("-5m", &s) == -1);
    CHECK(pgcmk_hv_duration_str("5x", &s) == -1);
    v = json_integer(42);
    CHECK(pgcmk_hv_duration(v, &s) == 0 && s == 42);
    json_decref(v);
    v = json_true();
    CHECK(pgcmk_hv_duration(v, &s) == -1);
    json_decref(v);
}

/* One request through the pipeline: the status, and the body (heap) in *body. */
static int
run(const char *method, const char *url, const char *token, const char *ns, const char *body,
    char **out)
{
    struct pgcmk_req rq;
    struct pgcmk_resp rs;
    int status;

    memset(&rs, 0, sizeof(rs));
    pgcmk_req_init(&rq, NULL, method, url, "127.0.0.1", body, body ? strlen(body) : 0);
    free(rq.raw_path);
    rq.raw_path = pgcmk_xstrdup(url);
    if (strchr(rq.raw_path, '?'))
        *strchr(rq.raw_path, '?') = '\0';
    if (token)
        pgcmk_req_add_header(&rq, "X-Vault-Token", token);
    if (ns)
        pgcmk_req_add_header(&rq, "X-Vault-Namespace", ns);
    pgcmk_uuid(rq.request_id);
    pgcmk_vaultapi_handle(&rq, &rs);
    status = rs.status;
    if (out)
        *out = rs.body ? pgcmk_xstrndup(rs.body, rs.body_len) : pgcmk_xstrdup("");
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);
    return status;
}

static void
test_pipeline(void)
{
    char *b = NULL;
    const char *root = PGCMK_HV_ROOT_TOKEN;

    CHECK(run("GET", "/v1/sys/health", NULL, NULL, NULL, &b) == 200);
    CHECK(strstr(b, "\"sealed\":false") != NULL);
    free(b);
    CHECK(run("GET", "/v1/sys/mounts", NULL, NULL, NULL, &b) == 403);
    CHECK_STR(b, "{\"errors\":[\"permission denied\"]}");
    free(b);
    CHECK(run("GET", "/v1/sys/mounts", root, NULL, NULL, &b) == 200);
    CHECK(strstr(b, "\"sys/\"") != NULL);
    free(b);
    CHECK(run("GET", "/v1/none/x", root, NULL, NULL, &b) == 404);
    CHECK_STR(b, "{\"errors\":[\"no handler for route \\\"none/x\\\". route entry not found.\"]}");
    free(b);
    CHECK(run("PUT", "/v1/sys/mounts/x", root, NULL, "{oops", &b) == 400);
    CHECK(strncmp(b, "{\"errors\":[\"failed to parse JSON input: ", 40) == 0);
    free(b);
    CHECK(run("BREW", "/v1/sys/health", root, NULL, NULL, NULL) == 405);
    CHECK(run("GET", "/v2/sys/health", root, NULL, NULL, NULL) == 404);
    /* namespaces: header and path prefix */
    CHECK(run("PUT", "/v1/sys/namespaces/ns1", root, NULL, NULL, NULL) == 200);
    CHECK(run("PUT", "/v1/sys/namespaces/ns2", root, "ns1", NULL, NULL) == 200);
    CHECK(pgcmk_hv_ns_exists("ns1/ns2/"));
    CHECK(run("LIST", "/v1/ns1/sys/namespaces", root, NULL, NULL, &b) == 200);
    CHECK(strstr(b, "\"keys\":[\"ns2/\"]") != NULL);
    free(b);
    CHECK(run("GET", "/v1/sys/namespaces?list=true", root, "ns1", NULL, &b) == 200);
    CHECK(strstr(b, "\"keys\":[\"ns2/\"]") != NULL);
    free(b);
    CHECK(run("GET", "/v1/sys/mounts", root, "nope", NULL, NULL) == 404);
    /* seal: 503 everywhere but the open paths */
    CHECK(run("PUT", "/v1/sys/seal", root, NULL, NULL, NULL) == 204);
    CHECK(pgcmk_hv_sealed());
    CHECK(run("GET", "/v1/secret/data/x", root, NULL, NULL, &b) == 503);
    CHECK_STR(b, "{\"errors\":[\"Vault is sealed\"]}");
    free(b);
    CHECK(run("GET", "/v1/sys/seal-status", NULL, NULL, NULL, NULL) == 200);
    CHECK(run("GET", "/v1/sys/health", NULL, NULL, NULL, NULL) == 503);
    CHECK(run("GET", "/v1/sys/health?sealedcode=200", NULL, NULL, NULL, NULL) == 200);
    CHECK(run("PUT", "/v1/sys/unseal", NULL, NULL, "{\"key\":\"" PGCMK_HV_UNSEAL_KEY "\"}", NULL) ==
          200);
    CHECK(!pgcmk_hv_sealed());
}

static void
test_tokens(void)
{
    struct pgcmk_hv_token_spec spec;
    struct pgcmk_hv_token t;
    struct pgcmk_err err;
    const char *pol[] = {"reader"};
    json_t *auth = NULL;
    char *text = NULL;
    char tok[64];

    memset(&spec, 0, sizeof(spec));
    spec.ns = "";
    spec.policies = pol;
    spec.n_policies = 1;
    spec.ttl_s = 60;
    spec.renewable = 1;
    CHECK(pgcmk_hv_token_issue(&spec, &text, &err) == 0);
    auth = json_loads(text, 0, NULL);
    CHECK(auth != NULL);
    pgcmk_secret_free(text, strlen(text));
    snprintf(tok, sizeof(tok), "%s", json_string_value(json_object_get(auth, "client_token")));
    CHECK(json_integer_value(json_object_get(auth, "lease_duration")) == 60);
    CHECK(json_array_size(json_object_get(auth, "policies")) == 2); /* default, reader */
    CHECK(pgcmk_hv_token_lookup(tok, &t) == 1);
    CHECK(strcmp(t.accessor, json_string_value(json_object_get(auth, "accessor"))) == 0);
    CHECK(!t.root);
    pgcmk_hv_token_release(&t);
    /* the stub ACL denies a non-root token */
    CHECK(run("GET", "/v1/sys/mounts", tok, NULL, NULL, NULL) == 403);
    pgcmk_clock_advance(61 * 1000);
    CHECK(pgcmk_hv_token_lookup(tok, &t) == 0);
    CHECK(pgcmk_hv_token_revoke_accessor(json_string_value(json_object_get(auth, "accessor"))) ==
          1);
    CHECK(pgcmk_hv_token_revoke_accessor("nosuch") == 0);
    CHECK(pgcmk_hv_token_lookup(PGCMK_HV_ROOT_TOKEN, &t) == 1 && t.root);
    pgcmk_hv_token_release(&t);
    json_decref(auth);
}

/* hv_buf_json writes what json_dumps(JSON_COMPACT) writes: escapes, UTF-8, reals, nesting. */
static void
test_buf_json(void)
{
    static const char *const docs[] = {
        "null",
        "{}",
        "[]",
        "{\"a\":[1,-2,true,false,null,\"\"],\"b\":{\"c\":{}}}",
        "[\"q\\\"b\\\\s/\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\"]",
        "[\"\\u00e9\\u2603\\ud83d\\ude00 <>&\"]",
        "[1.5,-0.25,1e300,0.1,3.0,-9223372036854775808,9223372036854775807]",
        "{\"z\":1,\"a\":2,\"m\":{\"y\":[{\"k\":\"v\"}]}}",
    };

    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_t *v = json_loads(docs[i], JSON_DECODE_ANY, NULL);
        char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY), *got;
        struct hv_buf b = {NULL, 0, 0};
        size_t n;

        CHECK(v != NULL && want != NULL);
        hv_buf_json(&b, v);
        got = hv_buf_take(&b, &n);
        CHECK(n == strlen(want) && strcmp(got, want) == 0);
        free(got);
        free(want);
        json_decref(v);
    }
    {
        struct hv_buf b = {NULL, 0, 0};
        char hex[9];

        for (int i = 0; i < 300; i++) /* grows past the first block */
            hv_buf_str(&b, "x\x01");
        CHECK(b.n == 300 * 9);
        hv_buf_free(&b);
        CHECK(b.p == NULL);
        pgcmk_hex((const unsigned char *)"\x00\x9f\xa0\xff", 4, hex);
        CHECK(strcmp(hex, "009fa0ff") == 0);
    }
}

int
main(void)
{
    struct pgcmk_err err;

    test_ns_norm();
    test_mount_match();
    test_durations();
    test_buf_json();
    pgcmk_clock_init();
    if (t_store_open(&err)) {
        fprintf(stderr, "store: %s\n", err.message);
        return 1;
    }
    CHECK(pgcmk_vaultapi_init() == 0);
    test_pipeline();
    test_tokens();
    pgcmk_vaultapi_shutdown();
    pgcmk_router_reset();
    t_store_close();
    return t_done("test_vaultapi");
}
