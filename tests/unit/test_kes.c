/* test_kes.c - the KES server's pure parts: API keys and identities (the two published pairs of
 * key-providers.md 5.3), names and patterns (auth.go), policies (deny over allow, trailing '*'),
 * Go durations, and config.yml parsing (kesconf): defaults, ${VAR}, relative paths, root vs
 * admin, the errors KES gives. */
#include <stdlib.h>
#include <string.h>

#include "pgcmk/kes.h"
#include "t.h"

static void
test_apikeys(void)
{
    char id[65];
    uint8_t seed[32];

    CHECK(pgcmk_kes_apikey_identity("kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs", id) ==
          0);
    CHECK_STR(id, "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6");
    CHECK(pgcmk_kes_apikey_identity("kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc", id) ==
          0);
    CHECK_STR(id, "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22");
    /* the seed's own example key parses (its identity is not published with it) */
    CHECK(pgcmk_kes_apikey_parse("kes:v1:ABfa1xsnIV0lltXQC8tHXic8lte7J6hT7EoGv6+s5QCW", seed) == 0);
    /* wrong prefix, type byte, length, base64 */
    CHECK(pgcmk_kes_apikey_parse("kes:v2:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs", seed) < 0);
    CHECK(pgcmk_kes_apikey_parse("kes:v1:AWaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs", seed) < 0);
    CHECK(pgcmk_kes_apikey_parse("kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8N", seed) < 0);
    CHECK(pgcmk_kes_apikey_parse("kes:v1:!!!", seed) < 0);
    CHECK(pgcmk_kes_apikey_parse("", seed) < 0);
    CHECK(pgcmk_kes_apikey_identity(NULL, id) < 0);
}

static void
test_names(void)
{
    char long81[82];

    memset(long81, 'a', 81);
    long81[81] = '\0';
    CHECK(pgcmk_kes_valid_name("my-key_1", 0));
    CHECK(pgcmk_kes_valid_name("A", 0));
    CHECK(pgcmk_kes_valid_name("__", 0));
    CHECK(!pgcmk_kes_valid_name("", 0));
    CHECK(!pgcmk_kes_valid_name("_", 0));
    CHECK(!pgcmk_kes_valid_name("-a", 0));
    CHECK(!pgcmk_kes_valid_name("a-", 0));
    CHECK(!pgcmk_kes_valid_name("a/b", 0));
    CHECK(!pgcmk_kes_valid_name("a.b", 0));
    CHECK(!pgcmk_kes_valid_name("a*", 0));
    CHECK(!pgcmk_kes_valid_name(long81, 0));
    long81[80] = '\0';
    CHECK(pgcmk_kes_valid_name(long81, 0));
    CHECK(pgcmk_kes_valid_name("*", 1));
    CHECK(pgcmk_kes_valid_name("my-*", 1));
    CHECK(pgcmk_kes_valid_name("", 1)); /* "/v1/key/list/" lists all */
    CHECK(!pgcmk_kes_valid_name("a*b", 1));
    CHECK(!pgcmk_kes_valid_name("**", 1));
}

static void
test_policies(void)
{
    char a1[] = "/v1/key/create/my-app*", a2[] = "/v1/key/generate/my-app*", a3[] = "/v1/status";
    char d1[] = "/v1/key/generate/my-app-internal*", name[] = "my-app", none[] = "none";
    char *allow[] = {a1, a2, a3};
    char *deny[] = {d1};
    struct pgcmk_kes_policy_cfg p = {name, allow, deny, NULL, 3, 1, 0};
    struct pgcmk_kes_policy_cfg empty = {none, NULL, NULL, NULL, 0, 0, 0};

    CHECK(pgcmk_kes_pattern_match("/v1/key/generate/my-app-*", "/v1/key/generate/my-app-1"));
    CHECK(!pgcmk_kes_pattern_match("/v1/key/generate/my-app-*", "/v1/key/generate/my-ap"));
    CHECK(pgcmk_kes_pattern_match("/v1/status", "/v1/status"));
    CHECK(!pgcmk_kes_pattern_match("/v1/status", "/v1/status/x"));
    CHECK(pgcmk_kes_pattern_match("*", "/anything"));
    CHECK(pgcmk_kes_policy_allows(&p, "/v1/key/generate/my-app-1"));
    CHECK(pgcmk_kes_policy_allows(&p, "/v1/key/create/my-app"));
    CHECK(pgcmk_kes_policy_allows(&p, "/v1/status"));
    CHECK(!pgcmk_kes_policy_allows(&p, "/v1/key/generate/my-app-internal-1")); /* deny wins */
    CHECK(!pgcmk_kes_policy_allows(&p, "/v1/key/decrypt/my-app-1"));
    CHECK(!pgcmk_kes_policy_allows(&p, "/v1/metrics"));
    CHECK(!pgcmk_kes_policy_allows(&empty, "/v1/status"));
}

static void
test_durations(void)
{
    int64_t ms = -1;

    CHECK(pgcmk_kes_duration_parse("5m0s", &ms) == 0 && ms == 300000);
    CHECK(pgcmk_kes_duration_parse("20s", &ms) == 0 && ms == 20000);
    CHECK(pgcmk_kes_duration_parse("0s", &ms) == 0 && ms == 0);
    CHECK(pgcmk_kes_duration_parse("0", &ms) == 0 && ms == 0);
    CHECK(pgcmk_kes_duration_parse("1h30m", &ms) == 0 && ms == 5400000);
    CHECK(pgcmk_kes_duration_parse("1.5s", &ms) == 0 && ms == 1500);
    CHECK(pgcmk_kes_duration_parse("300ms", &ms) == 0 && ms == 300);
    CHECK(pgcmk_kes_duration_parse("-1s", &ms) == 0 && ms == -1000);
    CHECK(pgcmk_kes_duration_parse("5", &ms) < 0);
    CHECK(pgcmk_kes_duration_parse("5x", &ms) < 0);
    CHECK(pgcmk_kes_duration_parse("", &ms) < 0);
    CHECK(pgcmk_kes_duration_parse("s", &ms) < 0);
    CHECK(pgcmk_kes_duration_parse("1d", &ms) < 0);
}

#define VAULT_OK                                                                                   \
    "keystore:\n  vault:\n    endpoint: https://127.0.0.1:8200\n    approle:\n      id: r\n"       \
    "      secret: s\n"

static int
parse(const char *text, struct pgcmk_kes_conf *c, char *why)
{
    return pgcmk_kes_conf_parse(text, strlen(text), "/etc/kes", c, why, 512);
}

static void
test_conf(void)
{
    struct pgcmk_kes_conf c;
    char why[512];
    const char *seedlike =
        "address: 0.0.0.0:7373\n"
        "root: ${KES_TEST_ROOT}\n"
        "tls:\n  key: kes-server.key\n  cert: /abs/kes-server.cert\n"
        "api:\n  /v1/ready:\n    skip_auth: false\n    timeout:   15s\n"
        "policy:\n  minio-server:\n    allow:\n    - /v1/key/create/*\n    - /v1/status\n"
        "    deny:\n    - /v1/key/generate/my-app-internal*\n    identities:\n"
        "    - ${KES_TEST_MINIO}\n"
        "keys:\n  - name: \"minio-encryption-key-alpha\"\n"
        "cache:\n  expiry:\n    any: 5m0s\n    unused: 20s\n    offline: 0s\n"
        "log:\n  error: on\n  audit: off\n" VAULT_OK "    version: v2\n    prefix: tenant-a\n"
        "    status:\n      ping: 15s\n";

    setenv("KES_TEST_ROOT", "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22", 1);
    setenv("KES_TEST_MINIO", "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6", 1);
    CHECK(parse(seedlike, &c, why) == 0);
    if (why[0])
        fprintf(stderr, "why: %s\n", why);
    CHECK_STR(c.host, "127.0.0.1");
    CHECK(c.port == 7373);
    CHECK(c.admin_field_root == 1);
    CHECK_STR(c.admin, "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22");
    CHECK_STR(c.tls_key, "/etc/kes/kes-server.key");
    CHECK_STR(c.tls_cert, "/abs/kes-server.cert");
    CHECK(c.n_apis == 1 && c.apis[0].timeout_ms == 15000 && !c.apis[0].skip_auth);
    CHECK(c.n_policies == 1 && c.policies[0].n_allow == 2 && c.policies[0].n_deny == 1);
    CHECK(c.n_policies == 1 && c.policies[0].n_identities == 1 &&
          strcmp(c.policies[0].identities[0],
                 "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6") == 0);
    CHECK(c.n_keys == 1 && strcmp(c.keys[0], "minio-encryption-key-alpha") == 0);
    CHECK(c.cache.any_ms == 300000 && c.cache.unused_ms == 20000 && c.cache.offline_ms == 0);
    CHECK(c.log_error == 1 && c.log_audit == 0);
    CHECK(c.has_vault && c.vault.version == 2 && c.vault.ping_ms == 15000);
    CHECK_STR(c.vault.prefix, "tenant-a");
    CHECK_STR(c.vault.approle_id, "r");
    CHECK(c.vault.engine == NULL); /* the keystore's default ("kv") */
    pgcmk_kes_conf_free(&c);

    /* defaults; admin disabled; JSON is YAML too */
    CHECK(parse("{\"admin\":{\"identity\":\"disabled\"},\"keystore\":{\"vault\":{\"endpoint\":"
                "\"http://127.0.0.1:1\",\"approle\":{\"id\":\"a\",\"secret\":\"b\"}}}}",
                &c, why) == 0);
    CHECK(c.admin[0] == '\0' && c.port == 7373 && c.vault.version == 1 &&
          c.vault.ping_ms == 10000 && c.cache.any_ms == 300000 && c.cache.unused_ms == 20000 &&
          c.log_error == 1 && c.log_audit == 0 && c.tls_cert == NULL);
    pgcmk_kes_conf_free(&c);

    /* kesconf decodes without KnownFields: unknown fields are ignored, not refused */
    CHECK(parse("admin:\n  identity: x\n  colour: blue\nfuture_option: 1\n" VAULT_OK
                "    verbose: true\n",
                &c, why) == 0);
    pgcmk_kes_conf_free(&c);

    /* the errors kesconf gives */
    struct {
        const char *text, *want;
    } bad[] = {
        {"address: 127.0.0.1:0\n" VAULT_OK, "no admin identity"},
        {"admin:\n  identity: x\n", "no keystore specified"},
        {"admin:\n  identity: x\nkeystore:\n  vault:\n    approle:\n      id: a\n      secret: b\n",
         "no endpoint specified"},
        {"admin:\n  identity: x\nkeystore:\n  vault:\n    endpoint: https://v\n",
         "no authentication method specified"},
        {"admin:\n  identity: x\n" VAULT_OK "    version: v3\n", "invalid K/V engine version"},
        {"admin:\n  identity: x\ntls:\n  key: k\n" VAULT_OK, "no certificate"},
        {"admin:\n  identity: x\ntls:\n  auth: maybe\n" VAULT_OK, "invalid auth"},
        {"admin:\n  identity: x\ncache:\n  expiry:\n    any: soon\n" VAULT_OK, "invalid duration"},
        {"admin:\n  identity: x\nlog:\n  audit: loud\n" VAULT_OK, "invalid log level"},
        {"admin:\n  identity: x\nkeys:\n  - name: a\n  - name: a\n" VAULT_OK,
         "defined multiple times"},
        {"admin:\n  identity: x\npolicy:\n  p:\n    allow: [a]\n    allow: [b]\n" VAULT_OK,
         "mapping key \"allow\" already defined"},
        {"admin:\n  identity: x\npolicy:\n  p:\n    identities: [x]\n" VAULT_OK, "already admin"},
        {"admin:\n  identity: x\npolicy:\n  p:\n    identities: [y]\n  q:\n    identities: "
         "[y]\n" VAULT_OK,
         "identity already has a policy"},
        {"admin:\n  identity: x\npolicy:\n  p:\n    allow: [\"/v1/*/x\"]\n" VAULT_OK,
         "'*' only at the end"},
        {"admin:\n  identity: x\naddress: 127.0.0.1:99999\n" VAULT_OK, "invalid port"},
        {"admin:\n  identity: x\nkeystore:\n  fs:\n    path: /tmp\n", "not available in pgcmk"},
        {"admin:\n  identity: x\n" VAULT_OK "    kubernetes:\n      role: \"\"\n",
         "more than one authentication method specified"},
        {"admin:\n  identity: x\n" VAULT_OK "    transit:\n      engine: \"\"\n",
         "no key name specified"},
        {"admin: [\n", "yaml: line"},
        {"- a\n- b\n", "invalid config format"},
        {"version: v2\n", "invalid config version"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(bad[i].text, &c, why);

        CHECK(rc < 0);
        if (rc == 0 || strstr(why, bad[i].want) == NULL) {
            fprintf(stderr, "case %zu: want '%s', got '%s'\n", i, bad[i].want, why);
            CHECK(0);
        }
        if (rc == 0)
            pgcmk_kes_conf_free(&c);
    }
}

int
main(void)
{
    test_apikeys();
    test_names();
    test_policies();
    test_durations();
    test_conf();
    return t_done("test_kes");
}
