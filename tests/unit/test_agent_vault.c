/* test_agent_vault.c - the agent's Vault client (include/pgcmk/vaultc.h): the URLs and the key
 * POST body are pg_tde's (key-providers.md 4.1: sys/mounts/{mount}, {mount}/metadata/?list=true,
 * {mount}/data/{name}, {"data":{"key":"<std base64>"}}), the response readers take Vault's
 * answer shapes (4.2) apart, each status is classified as pg_tde's outcome (a loss with its code,
 * or an outage), and a missing token file or a closed port fail as they should without a
 * server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgcmk/agent.h"
#include "pgcmk/vaultc.h"

#include "t.h"

static const struct pgcmk_vaultc_target tgt = {
    "https://127.0.0.1:8200", "secret", "/nonexistent/token", NULL, NULL, 0, -1,
};

static void
test_urls(void)
{
    struct pgcmk_vaultc_target t = tgt;
    char *u;

    u = pgcmk_vaultc_url_mount(&t);
    CHECK_STR(u, "https://127.0.0.1:8200/v1/sys/mounts/secret");
    free(u);
    u = pgcmk_vaultc_url_list(&t);
    CHECK_STR(u, "https://127.0.0.1:8200/v1/secret/metadata/?list=true");
    free(u);
    u = pgcmk_vaultc_url_data(&t, "pg-key");
    CHECK_STR(u, "https://127.0.0.1:8200/v1/secret/data/pg-key");
    free(u);
    /* a trailing slash on the URL or the mount, a nested mount, a name that needs escaping */
    t.url = "https://vault.example:8200/";
    t.mount = "team/kv/";
    u = pgcmk_vaultc_url_data(&t, "a b/c?d");
    CHECK_STR(u, "https://vault.example:8200/v1/team/kv/data/a%20b/c%3Fd");
    free(u);
    u = pgcmk_vaultc_url_list(&t);
    CHECK_STR(u, "https://vault.example:8200/v1/team/kv/metadata/?list=true");
    free(u);
}

static void
test_store_body(void)
{
    unsigned char k32[32], k16[16];
    char *b;

    for (int i = 0; i < 32; i++)
        k32[i] = (unsigned char)i;
    memcpy(k16, k32, 16);
    b = pgcmk_vaultc_store_body(k32, 32);
    CHECK_STR(b, "{\"data\":{\"key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}}");
    free(b);
    b = pgcmk_vaultc_store_body(k16, 16);
    CHECK_STR(b, "{\"data\":{\"key\":\"AAECAwQFBgcICQoLDA0ODw==\"}}");
    free(b);
    CHECK(pgcmk_vaultc_store_body(k32, 24) == NULL);
}

#define S(x) x, strlen(x)

static void
test_parse(void)
{
    char type[32], ver[8], why[128];
    unsigned char key[PGCMK_VAULTC_MAX_KEY];
    size_t kl;
    long v;

    /* mounts (4.2): kv v2, kv v1, another engine, not a mount answer */
    CHECK(pgcmk_vaultc_parse_mount(S("{\"request_id\":\"x\",\"data\":{\"type\":\"kv\",\"options\":"
                                     "{\"version\":\"2\"},\"accessor\":\"kv_1\"}}"),
                                   type, ver) == 1);
    CHECK(pgcmk_vaultc_parse_mount(
              S("{\"data\":{\"type\":\"kv\",\"options\":{\"version\":\"1\"}}}"), type, ver) == 0);
    CHECK_STR(type, "kv");
    CHECK_STR(ver, "1");
    CHECK(pgcmk_vaultc_parse_mount(S("{\"data\":{\"type\":\"transit\",\"options\":null}}"), type,
                                   ver) == 0);
    CHECK_STR(type, "transit");
    CHECK_STR(ver, "");
    /* only "data" counts (Vault 1.x repeats the fields at the top level) */
    CHECK(pgcmk_vaultc_parse_mount(S("{\"type\":\"kv\",\"options\":{\"version\":\"2\"}}"), type,
                                   ver) == -1);
    CHECK(pgcmk_vaultc_parse_mount(S("not json"), type, ver) == -1);
    CHECK(pgcmk_vaultc_parse_mount(NULL, 0, type, ver) == -1);

    /* keys: 32 and 16 bytes, the version from metadata */
    CHECK(pgcmk_vaultc_parse_key(S("{\"data\":{\"data\":{\"key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFR"
                                   "YXGBkaGxwdHh8=\"},\"metadata\":{\"version\":3}}}"),
                                 key, &kl, &v) == 0);
    CHECK(kl == 32 && key[31] == 31 && v == 3);
    CHECK(pgcmk_vaultc_parse_key(S("{\"data\":{\"data\":{\"key\":\"AAECAwQFBgcICQoLDA0ODw==\"}}}"),
                                 key, &kl, &v) == 0);
    CHECK(kl == 16 && v == 0);
    /* 24 bytes, not base64, no key, no data (a soft-deleted version answers data: null) */
    CHECK(pgcmk_vaultc_parse_key(
              S("{\"data\":{\"data\":{\"key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\"}"
                ",\"metadata\":{\"version\":1}}}"),
              key, &kl, &v) == 1);
    CHECK(kl == 24 && v == 1);
    CHECK(pgcmk_vaultc_parse_key(S("{\"data\":{\"data\":{\"key\":\"***\"}}}"), key, &kl, &v) == 1);
    CHECK(kl == 0);
    CHECK(pgcmk_vaultc_parse_key(S("{\"data\":{\"data\":{\"other\":\"x\"}}}"), key, &kl, &v) == -1);
    CHECK(pgcmk_vaultc_parse_key(S("{\"data\":{\"data\":null,\"metadata\":{\"deletion_time\":"
                                   "\"2026-01-01T00:00:00Z\",\"version\":2}}}"),
                                 key, &kl, &v) == -1);
    CHECK(pgcmk_vaultc_parse_key(S("[1,2"), key, &kl, &v) == -1);

    CHECK(pgcmk_vaultc_parse_version(S("{\"data\":{\"created_time\":\"t\",\"version\":7}}")) == 7);
    CHECK(pgcmk_vaultc_parse_version(S("{}")) == 0);

    pgcmk_vaultc_parse_errors(S("{\"errors\":[\"permission denied\"]}"), why, sizeof(why));
    CHECK_STR(why, "permission denied");
    pgcmk_vaultc_parse_errors(S("{\"errors\":[\"a\",\"b\",3]}"), why, sizeof(why));
    CHECK_STR(why, "a; b");
    pgcmk_vaultc_parse_errors(S("{\"errors\":[]}"), why, sizeof(why));
    CHECK_STR(why, "");
}

static void
test_classify(void)
{
    int outage;

    CHECK(pgcmk_vaultc_classify(200, NULL, 0, &outage) == PGCMK_E_OK && !outage);
    CHECK(pgcmk_vaultc_classify(204, NULL, 0, &outage) == PGCMK_E_OK && !outage);
    CHECK(pgcmk_vaultc_classify(404, S("{\"errors\":[]}"), &outage) == PGCMK_E_HV_KEY_NOT_FOUND &&
          !outage);
    CHECK(pgcmk_vaultc_classify(403, S("{\"errors\":[\"permission denied\"]}"), &outage) ==
              PGCMK_E_HV_PERMISSION_DENIED &&
          !outage);
    CHECK(pgcmk_vaultc_classify(503, S("{\"errors\":[\"Vault is sealed\"]}"), &outage) ==
              PGCMK_E_HV_SEALED &&
          !outage);
    CHECK(pgcmk_vaultc_classify(503, S("{\"errors\":[\"Vault is in standby\"]}"), &outage) ==
              PGCMK_E_HV_SERVER_UNREACHABLE &&
          outage);
    CHECK(pgcmk_vaultc_classify(500, S("oops"), &outage) == PGCMK_E_HV_SERVER_UNREACHABLE &&
          outage);
    CHECK(pgcmk_vaultc_classify(429, NULL, 0, &outage) == PGCMK_E_HV_SERVER_UNREACHABLE && outage);
    CHECK(pgcmk_vaultc_classify(400, S("{\"errors\":[\"bad\"]}"), &outage) ==
              PGCMK_E_HV_REQUEST_REFUSED &&
          !outage);
}

static void
test_calls_without_server(void)
{
    struct pgcmk_vaultc_target t = tgt;
    struct pgcmk_agent_result res;
    unsigned char *w = NULL;
    size_t wl = 0;
    char alg[24], path[] = "/tmp/test_agent_vault_XXXXXX";
    long v;
    int fd;

    /* no token file: a loss with its own code, nothing sent */
    CHECK(pgcmk_agent_vault_new_dek("db1", &t, "pg-key", &w, &wl, alg, &v, &res) == -1);
    CHECK(res.lost && !res.outage && res.code == PGCMK_E_HV_TOKEN_FILE_UNREADABLE);
    CHECK(strstr(res.message, "/nonexistent/token") != NULL);
    CHECK(w == NULL);

    /* an empty token file is unreadable too; a token and a closed port: an outage */
    fd = mkstemp(path);
    CHECK(fd >= 0);
    t.token_path = path;
    CHECK(pgcmk_agent_vault_check("db1", &t, "pg-key", (const unsigned char *)"x", 1, &v, &res) ==
          -1);
    CHECK(res.lost && res.code == PGCMK_E_HV_TOKEN_FILE_UNREADABLE);
    CHECK(write(fd, "hvs.not-a-real-token\n", 21) == 21);
    close(fd);
    t.url = "https://127.0.0.1:1";
    t.retries = 0;
    t.timeout_ms = 2000;
    CHECK(pgcmk_agent_vault_check("db1", &t, "pg-key", (const unsigned char *)"x", 1, &v, &res) ==
          -1);
    CHECK(res.outage && !res.lost && res.code == PGCMK_E_HV_SERVER_UNREACHABLE);
    CHECK(strstr(res.message, "127.0.0.1:1") != NULL);
    CHECK(strstr(res.message, "hvs.") == NULL); /* the token is never in a message */
    unlink(path);
}

int
main(void)
{
    test_urls();
    test_store_body();
    test_parse();
    test_classify();
    test_calls_without_server();
    return t_done("test_agent_vault");
}
