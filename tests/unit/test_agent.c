/* test_agent.c - the encryption agent against a live pgcmkd: DEKs wrapped through the Key Vault
 * data plane with a managed identity's token, key checks and their failure codes, record
 * encryption, and the service-managed path.
 *
 * Starts build/pgcmkd (or $PGCMKD; next to this binary's parent directory otherwise) on a free
 * port in a temporary data directory and kills it at the end. */
#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "pgcmk/agent.h"
#include "pgcmk/err.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"
#include "pgcmk/wellknown.h"
#include "t.h"
#include "t_store.h"

#define SUB_PATH "/subscriptions/" PGCMK_SUBSCRIPTION_ID "/resourceGroups/rg/providers"
#define KV_ARM   "2023-07-01"

static pid_t t_daemon;
static char t_dir[64];
static char t_ca[128];
static int t_port;
static char *t_admin; /* the admin's vault token */

static void
t_stop(void)
{
    if (t_daemon > 0) {
        kill(t_daemon, SIGTERM);
        waitpid(t_daemon, NULL, 0);
        t_daemon = 0;
    }
    if (t_dir[0]) {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", t_dir);
        t_dir[0] = '\0';
    }
}

static void
t_msleep(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static int
t_start(const char *argv0)
{
    char bin[512], port_file[128], self[512];
    const char *env = getenv("PGCMKD");

    if (env) {
        snprintf(bin, sizeof(bin), "%s", env);
    } else { /* build/tests/test_agent -> build/pgcmkd; build/asan/tests/.. -> build/asan/.. */
        snprintf(self, sizeof(self), "%s", argv0);
        snprintf(bin, sizeof(bin), "%s/pgcmkd", dirname(dirname(self)));
    }
    snprintf(t_dir, sizeof(t_dir), "/tmp/pgcmk-agent-XXXXXX");
    if (mkdtemp(t_dir) == NULL)
        return -1;
    snprintf(port_file, sizeof(port_file), "%s/port", t_dir);
    snprintf(t_ca, sizeof(t_ca), "%s/ca.pem", t_dir);
    t_daemon = fork();
    if (t_daemon < 0)
        return -1;
    if (t_daemon == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (freopen("/dev/null", "w", stdout) == NULL)
            _exit(127);
        execl(bin, bin, "--data-dir", t_dir, "--port", "0", "--port-file", port_file, "--log-level",
              "warn", (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    for (int i = 0; i < 1500; i++) { /* up to 15 s */
        FILE *f = fopen(port_file, "r");
        int st;

        if (f) {
            int ok = fscanf(f, "%d", &t_port) == 1 && t_port > 0;

            fclose(f);
            if (ok)
                return 0;
        }
        if (waitpid(t_daemon, &st, WNOHANG) == t_daemon) {
            t_daemon = 0;
            return -1;
        }
        t_msleep(10);
    }
    return -1;
}

/* ---- a small HTTPS client for the set-up (not the agent's) -------------------------------- */

struct t_buf {
    char *p;
    size_t n;
};

static size_t
t_write(char *d, size_t s, size_t n, void *arg)
{
    struct t_buf *b = arg;

    b->p = realloc(b->p, b->n + s * n + 1);
    memcpy(b->p + b->n, d, s * n);
    b->n += s * n;
    b->p[b->n] = '\0';
    return s * n;
}

static long
t_http(const char *method, const char *url, const char *ctype, const char *body, json_t **out)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL, *conn = curl_slist_append(NULL, "::127.0.0.1:");
    struct t_buf b = {NULL, 0};
    char auth[8192];
    long status = 0;

    if (ctype) {
        snprintf(auth, sizeof(auth), "Content-Type: %s", ctype);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (t_admin && strstr(url, ".vault.localhost")) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t_admin);
        hdrs = curl_slist_append(hdrs, auth);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_CAINFO, t_ca);
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, conn);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, t_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (out)
        *out = b.p ? json_loads(b.p, 0, NULL) : NULL;
    if (status >= 300)
        fprintf(stderr, "%s %s -> %ld %s\n", method, url, status, b.p ? b.p : "");
    free(b.p);
    curl_slist_free_all(hdrs);
    curl_slist_free_all(conn);
    curl_easy_cleanup(h);
    return status;
}

static long
t_arm(const char *method, const char *path, json_t *body, json_t **out)
{
    char url[1024];
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    long st;

    snprintf(url, sizeof(url), "https://localhost:%d%s", t_port, path);
    st = t_http(method, url, body ? "application/json" : NULL, s, out);
    free(s);
    json_decref(body);
    return st;
}

static long
t_kv(const char *method, const char *vault, const char *path, json_t *body, json_t **out)
{
    char url[1024];
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    long st;

    snprintf(url, sizeof(url), "https://%s.vault.localhost:%d%s%sapi-version=7.4", vault, t_port,
             path, strchr(path, '?') ? "&" : "?");
    st = t_http(method, url, body ? "application/json" : NULL, s, out);
    free(s);
    json_decref(body);
    return st;
}

static json_t *
t_policy(const char *oid, json_t *perms)
{
    return json_pack("{s:s, s:s, s:{s:o}}", "tenantId", PGCMK_TENANT_ID, "objectId", oid,
                     "permissions", "keys", perms);
}

/* Creates an RSA key (or EC when kty says so); returns its versioned kid (malloc'd). */
static char *
t_key(const char *vault, const char *name, json_t *body)
{
    char path[256];
    json_t *o = NULL;
    char *kid = NULL;

    snprintf(path, sizeof(path), "/keys/%s/create", name);
    if (t_kv("POST", vault, path, body, &o) == 200)
        kid = strdup(json_string_value(json_object_get(json_object_get(o, "key"), "kid")));
    json_decref(o);
    return kid;
}

static long
t_key_attrs(const char *kid, json_t *attrs)
{
    char url[1024];
    json_t *b = json_pack("{s:o}", "attributes", attrs);
    char *s = json_dumps(b, JSON_COMPACT);
    long st;

    snprintf(url, sizeof(url), "%s?api-version=7.4", kid);
    st = t_http("PATCH", url, "application/json", s, NULL);
    free(s);
    json_decref(b);
    return st;
}

static int
t_dead_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 1;

    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* ---- the tests ---------------------------------------------------------------------------- */

struct t_wrapped {
    unsigned char *w;
    size_t len;
    char alg[24];
};

static void
t_wrapped_free(struct t_wrapped *w)
{
    free(w->w);
    memset(w, 0, sizeof(*w));
}

static const struct pgcmk_agent_key *t_conc_key;
static const struct t_wrapped *t_conc_w;

static void *
t_conc(void *arg)
{
    char db[32];
    int ok = 0;

    snprintf(db, sizeof(db), "conc-%d", (int)(intptr_t)arg);
    for (int i = 0; i < 5; i++) {
        struct pgcmk_agent_result r;

        ok += pgcmk_agent_check(db, t_conc_key, t_conc_w->w, t_conc_w->len, t_conc_w->alg, &r) == 0;
    }
    return (void *)(intptr_t)ok;
}

static void
t_record_roundtrip(const char *db, const char *ad)
{
    unsigned char *s = NULL, *p = NULL;
    size_t sl = 0, pl = 0;

    CHECK(pgcmk_agent_seal(db, ad, 42, "row 42", 6, &s, &sl) == 0);
    CHECK(sl == 6 + 12 + 16);
    CHECK(pgcmk_agent_open(db, ad, 42, s, sl, &p, &pl) == 0 && pl == 6 && !memcmp(p, "row 42", 6));
    free(p);
    p = NULL;
    CHECK(pgcmk_agent_open(db, ad, 43, s, sl, &p, &pl) == -1); /* wrong seq */
    CHECK(pgcmk_agent_open(db, "someone-else", 42, s, sl, &p, &pl) == -1);
    free(s);
}

int
main(int argc, char **argv)
{
    struct pgcmk_err err;
    struct pgcmk_agent_result r;
    struct pgcmk_agent_stats stats;
    struct t_wrapped w1 = {0}, w2 = {0}, w3 = {0};
    json_t *o = NULL;
    char path[512], pid[64] = "", uri[512];
    char *kid = NULL, *kid2 = NULL, *kid_ec = NULL, *kid_exp = NULL, *kid_nbf = NULL;
    unsigned char *rec = NULL, *pt = NULL;
    size_t rec_len = 0, pt_len = 0;

    (void)argc;
    pgcmk_log_level = PGCMK_LOG_ERR;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    atexit(t_stop);
    if (t_store_open(&err) != 0 || t_start(argv[0]) != 0) {
        fprintf(stderr, "cannot start the daemon\n");
        return 1;
    }
    CHECK(pgcmk_agent_init(t_port, t_ca) == 0);

    /* Set-up: a resource group, an identity, a vault that grants it get/wrapKey/unwrapKey, keys. */
    CHECK(t_arm("PUT",
                "/subscriptions/" PGCMK_SUBSCRIPTION_ID "/resourcegroups/rg?api-version=2021-04-01",
                json_pack("{s:s}", "location", "eastus"), NULL) /
              100 ==
          2);
    CHECK(t_arm("PUT",
                SUB_PATH
                "/Microsoft.ManagedIdentity/userAssignedIdentities/mi1?api-version=2023-01-31",
                json_pack("{s:s}", "location", "eastus"), &o) /
              100 ==
          2);
    snprintf(pid, sizeof(pid), "%s",
             json_string_value(json_object_get(json_object_get(o, "properties"), "principalId")));
    json_decref(o);
    CHECK(strlen(pid) == 36);
    CHECK(t_arm("PUT", SUB_PATH "/Microsoft.KeyVault/vaults/agentkv1?api-version=" KV_ARM,
                json_pack("{s:s, s:{s:s, s:{s:s, s:s}, s:b, s:i, s:b, s:[o, o]}}", "location",
                          "eastus", "properties", "tenantId", PGCMK_TENANT_ID, "sku", "family", "A",
                          "name", "standard", "enableSoftDelete", 1, "softDeleteRetentionInDays",
                          90, "enablePurgeProtection", 1, "accessPolicies",
                          t_policy(PGCMK_ADMIN_OBJECT_ID, json_pack("[s]", "all")),
                          t_policy(pid, json_pack("[s, s, s]", "get", "wrapKey", "unwrapKey"))),
                NULL) /
              100 ==
          2);
    snprintf(path, sizeof(path),
             "/adfs/oauth2/token?x=1"); /* the admin signs in with client credentials */
    {
        char url[256], *form = NULL;
        CURL *h = curl_easy_init();
        char *e = curl_easy_escape(h, "https://vault.azure.net/.default", 0);

        form = malloc(1024);
        snprintf(form, 1024, "grant_type=client_credentials&client_id=%s&client_secret=%s&scope=%s",
                 PGCMK_ADMIN_CLIENT_ID, PGCMK_ADMIN_CLIENT_SECRET, e);
        curl_free(e);
        curl_easy_cleanup(h);
        snprintf(url, sizeof(url), "https://localhost:%d/adfs/oauth2/token", t_port);
        CHECK(t_http("POST", url, "application/x-www-form-urlencoded", form, &o) == 200);
        free(form);
        t_admin = strdup(json_string_value(json_object_get(o, "access_token")));
        json_decref(o);
    }
    kid = t_key("agentkv1", "cmk", json_pack("{s:s, s:i}", "kty", "RSA", "key_size", 2048));
    kid2 = t_key("agentkv1", "cmk2", json_pack("{s:s, s:i}", "kty", "RSA", "key_size", 3072));
    kid_ec = t_key("agentkv1", "eckey", json_pack("{s:s, s:s}", "kty", "EC", "crv", "P-256"));
    kid_exp = t_key("agentkv1", "cmk-exp", json_pack("{s:s, s:i}", "kty", "RSA", "key_size", 2048));
    kid_nbf = t_key("agentkv1", "cmk-nbf", json_pack("{s:s, s:i}", "kty", "RSA", "key_size", 2048));
    CHECK(kid && kid2 && kid_ec && kid_exp && kid_nbf);
    if (!kid || !kid2 || !kid_ec || !kid_exp || !kid_nbf)
        return t_done("test_agent");

    struct pgcmk_agent_key k1 = {kid, pid}, k2 = {kid2, pid};

    /* new_dek: wrapped, kept, and records round-trip. */
    CHECK(pgcmk_agent_new_dek("db1", &k1, &w1.w, &w1.len, w1.alg, &r) == 0);
    CHECK(r.code == PGCMK_E_OK && !r.lost && !r.outage);
    CHECK(w1.len == 256);
    CHECK_STR(w1.alg, "RSA-OAEP-256");
    CHECK(pgcmk_agent_has_dek("db1") && pgcmk_agent_has_dek("DB1"));
    t_record_roundtrip("db1", "db1");
    CHECK(pgcmk_agent_seal("db1", "db1", 7, "hello", 5, &rec, &rec_len) == 0);
    CHECK(pgcmk_agent_open("DB1", "DB1", 7, rec, rec_len, &pt, &pt_len) == 0 && pt_len == 5);
    free(pt);
    pt = NULL;

    /* check: forgotten, then unwrapped again; the old record opens. */
    pgcmk_agent_forget("db1");
    CHECK(!pgcmk_agent_has_dek("db1"));
    CHECK(pgcmk_agent_open("db1", "db1", 7, rec, rec_len, &pt, &pt_len) == -1);
    CHECK(pgcmk_agent_check("db1", &k1, w1.w, w1.len, w1.alg, &r) == 0);
    CHECK(r.code == PGCMK_E_OK && r.http_status == 200);
    CHECK(pgcmk_agent_open("db1", "db1", 7, rec, rec_len, &pt, &pt_len) == 0 && pt_len == 5 &&
          !memcmp(pt, "hello", 5));
    free(pt);
    pt = NULL;

    /* The *.vault.azure.net forms map to the local vault. */
    {
        const char *tail = strstr(kid, "/keys/");
        struct pgcmk_agent_key ka = {uri, pid};

        snprintf(uri, sizeof(uri), "https://agentkv1.vault.azure.net%s", tail);
        CHECK(pgcmk_agent_check("db1", &ka, w1.w, w1.len, w1.alg, &r) == 0);
        snprintf(uri, sizeof(uri), "https://AgentKV1.vault.azure.net:443%s", tail);
        CHECK(pgcmk_agent_check("db1", &ka, w1.w, w1.len, w1.alg, &r) == 0);
        snprintf(uri, sizeof(uri), "https://agentkv1.vault.azure.net:8443%s", tail);
        CHECK(pgcmk_agent_check("db-x", &ka, w1.w, w1.len, w1.alg, &r) == -1);
        CHECK(r.code == PGCMK_E_PG_KEY_URI_INVALID);
        /* a version that is not 32 hex digits: the parser of keyuri.h refuses it, as the
         * validator does */
        snprintf(uri, sizeof(uri), "https://agentkv1.vault.azure.net/keys/cmk/%.20s",
                 strrchr(kid, '/') + 1);
        CHECK(pgcmk_agent_check("db-x", &ka, w1.w, w1.len, w1.alg, &r) == -1);
        CHECK(r.code == PGCMK_E_PG_KEY_URI_INVALID && strstr(r.message, "32 hex digits"));
    }

    /* Replicas share the primary's DEK and read its records. */
    CHECK(pgcmk_agent_share("db1", "replica1") == 0);
    CHECK(pgcmk_agent_open("replica1", "db1", 7, rec, rec_len, &pt, &pt_len) == 0);
    free(pt);
    pt = NULL;
    CHECK(pgcmk_agent_share("nobody", "replica2") == -1 && !pgcmk_agent_has_dek("replica2"));

    /* rewrap under another key: the same DEK opens through it. */
    CHECK(pgcmk_agent_rewrap("db1", &k2, &w2.w, &w2.len, w2.alg, &r) == 0);
    CHECK(w2.len == 384);
    pgcmk_agent_forget("db1");
    CHECK(pgcmk_agent_check("db1", &k2, w2.w, w2.len, w2.alg, &r) == 0);
    CHECK(pgcmk_agent_open("db1", "db1", 7, rec, rec_len, &pt, &pt_len) == 0);
    free(pt);
    pt = NULL;
    /* The DEK wrapped by cmk does not unwrap with cmk2. */
    CHECK(pgcmk_agent_check("db-y", &k2, w1.w, w1.len, w1.alg, &r) == -1);
    CHECK(r.lost && !r.outage);

    /* Missing key, missing vault, wrong key type, unknown identity. */
    {
        struct pgcmk_agent_key km = {uri, pid}, kec = {kid_ec, pid},
                               kid_bad = {kid, "00000000-0000-4000-8000-00000000dead"};

        snprintf(uri, sizeof(uri),
                 "https://agentkv1.vault.localhost:%d/keys/nokey/0123456789abcdef0123456789abcdef",
                 t_port);
        CHECK(pgcmk_agent_check("db-m", &km, w1.w, w1.len, w1.alg, &r) == -1);
        CHECK(r.code == PGCMK_E_PG_KEY_NOT_FOUND && r.lost && !r.outage && r.http_status == 404);
        CHECK(strstr(r.message, "nokey") && strstr(r.message, "agentkv1") &&
              strstr(r.message, "0123456789abcdef0123456789abcdef"));
        snprintf(uri, sizeof(uri), "https://novault9.vault.azure.net/keys/cmk/%s",
                 strrchr(kid, '/') + 1);
        CHECK(pgcmk_agent_new_dek("db-m", &km, &w3.w, &w3.len, w3.alg, &r) == -1);
        CHECK(r.code == PGCMK_E_PG_KEY_NOT_FOUND && r.lost && w3.w == NULL);
        CHECK(!pgcmk_agent_has_dek("db-m"));
        CHECK(strstr(r.message, "novault9") != NULL);
        CHECK(pgcmk_agent_new_dek("db-ec", &kec, &w3.w, &w3.len, w3.alg, &r) == -1);
        CHECK(r.code == PGCMK_E_PG_KEY_TYPE && r.lost);
        CHECK(pgcmk_agent_check("db-i", &kid_bad, w1.w, w1.len, w1.alg, &r) == -1);
        CHECK(r.code == PGCMK_E_PG_IDENTITY_NOT_FOUND && r.lost);
        snprintf(uri, sizeof(uri), "https://example.com/keys/cmk");
        CHECK(pgcmk_agent_check("db-i", &km, w1.w, w1.len, w1.alg, &r) == -1);
        CHECK(r.code == PGCMK_E_PG_KEY_URI_INVALID);
    }

    /* Several threads checking at once (one curl handle each). */
    {
        pthread_t th[4];
        int total = 0;

        t_conc_key = &k1;
        t_conc_w = &w1;
        for (int i = 0; i < 4; i++)
            pthread_create(&th[i], NULL, t_conc, (void *)(intptr_t)i);
        for (int i = 0; i < 4; i++) {
            void *ret;

            pthread_join(th[i], &ret);
            total += (int)(intptr_t)ret;
        }
        CHECK(total == 20);
        CHECK(pgcmk_agent_has_dek("conc-0") && pgcmk_agent_has_dek("conc-3"));
    }

    /* A disabled key: lost, KEY_DISABLED, DEK wiped; enabled again, the check passes. */
    CHECK(pgcmk_agent_check("db1", &k1, w1.w, w1.len, w1.alg, &r) == 0);
    CHECK(t_key_attrs(kid, json_pack("{s:b}", "enabled", 0)) == 200);
    CHECK(pgcmk_agent_check("db1", &k1, w1.w, w1.len, w1.alg, &r) == -1);
    CHECK(r.code == PGCMK_E_PG_KEY_DISABLED && r.lost && !r.outage);
    CHECK(strstr(r.message, "cmk") && strstr(r.message, "agentkv1"));
    CHECK(!pgcmk_agent_has_dek("db1"));
    CHECK(t_key_attrs(kid, json_pack("{s:b}", "enabled", 1)) == 200);
    CHECK(pgcmk_agent_check("db1", &k1, w1.w, w1.len, w1.alg, &r) == 0);

    /* exp passed, nbf in the future: KEY_EXPIRED. */
    {
        struct pgcmk_agent_key ke = {kid_exp, pid}, kn = {kid_nbf, pid};

        CHECK(pgcmk_agent_new_dek("db-exp", &ke, &w3.w, &w3.len, w3.alg, &r) == 0);
        CHECK(t_key_attrs(kid_exp, json_pack("{s:I}", "exp", (json_int_t)time(NULL) - 60)) == 200);
        CHECK(pgcmk_agent_check("db-exp", &ke, w3.w, w3.len, w3.alg, &r) == -1);
        CHECK(r.code == PGCMK_E_PG_KEY_EXPIRED && r.lost && !pgcmk_agent_has_dek("db-exp"));
        t_wrapped_free(&w3);
        CHECK(t_key_attrs(kid_nbf, json_pack("{s:I}", "nbf", (json_int_t)time(NULL) + 3600)) ==
              200);
        CHECK(pgcmk_agent_new_dek("db-nbf", &kn, &w3.w, &w3.len, w3.alg, &r) == -1);
        CHECK(r.code == PGCMK_E_PG_KEY_EXPIRED && r.lost);
    }

    /* Nothing listening: an outage keeps the DEK. */
    CHECK(pgcmk_agent_init(t_dead_port(), t_ca) == 0);
    CHECK(pgcmk_agent_check("db1", &k1, w1.w, w1.len, w1.alg, &r) == -1);
    CHECK(r.code == PGCMK_E_PG_VAULT_UNREACHABLE && r.outage && !r.lost && r.http_status == 0);
    CHECK(strstr(r.message, "agentkv1") != NULL);
    CHECK(pgcmk_agent_has_dek("db1"));
    pgcmk_agent_stats(&stats);
    CHECK(stats.retries >= 2);
    CHECK(pgcmk_agent_init(t_port, t_ca) == 0);
    CHECK(pgcmk_agent_check("db1", &k1, w1.w, w1.len, w1.alg, &r) == 0);

    /* The access policy removed: MISSING_PERMISSIONS naming the principal, DEK wiped. */
    CHECK(t_arm("PUT",
                SUB_PATH
                "/Microsoft.KeyVault/vaults/agentkv1/accessPolicies/remove?api-version=" KV_ARM,
                json_pack("{s:{s:[o]}}", "properties", "accessPolicies",
                          t_policy(pid, json_pack("[s, s, s]", "get", "wrapKey", "unwrapKey"))),
                NULL) /
              100 ==
          2);
    CHECK(pgcmk_agent_check("db1", &k1, w1.w, w1.len, w1.alg, &r) == -1);
    CHECK(r.code == PGCMK_E_PG_MISSING_PERMISSIONS && r.lost && !r.outage && r.http_status == 403);
    CHECK(strstr(r.message, pid) != NULL);
    CHECK(strstr(r.message, "Get, Wrap, and Unwrap") != NULL);
    CHECK(strstr(r.message, "get, wrapKey and unwrapKey") != NULL);
    CHECK(!pgcmk_agent_has_dek("db1"));
    CHECK(pgcmk_agent_seal("db1", "db1", 8, "x", 1, &pt, &pt_len) == -1);
    CHECK(pgcmk_agent_open("replica1", "db1", 7, rec, rec_len, &pt, &pt_len) == 0);
    free(pt);
    pt = NULL;
    CHECK(t_arm("PUT",
                SUB_PATH
                "/Microsoft.KeyVault/vaults/agentkv1/accessPolicies/add?api-version=" KV_ARM,
                json_pack("{s:{s:[o]}}", "properties", "accessPolicies",
                          t_policy(pid, json_pack("[s, s, s]", "get", "wrapKey", "unwrapKey"))),
                NULL) /
              100 ==
          2);
    CHECK(pgcmk_agent_check("db1", &k1, w1.w, w1.len, w1.alg, &r) == 0);

    /* Service-managed: sealed under the master key, bound to the database id. */
    {
        struct pgcmk_agent_key sm = {NULL, NULL};

        t_wrapped_free(&w3);
        CHECK(pgcmk_agent_new_dek("db-sm", &sm, &w3.w, &w3.len, w3.alg, &r) == 0);
        CHECK_STR(w3.alg, "A256GCM");
        t_record_roundtrip("db-sm", "db-sm");
        pgcmk_agent_forget("db-sm");
        CHECK(pgcmk_agent_check("db-sm", &sm, w3.w, w3.len, w3.alg, &r) == 0);
        CHECK(pgcmk_agent_has_dek("db-sm"));
        CHECK(pgcmk_agent_check("db-other", NULL, w3.w, w3.len, w3.alg, &r) == -1);
        CHECK(r.lost && !pgcmk_agent_has_dek("db-other"));
    }

    pgcmk_agent_stats(&stats);
    CHECK(stats.requests > 20 && stats.deks >= 6);
    pgcmk_agent_shutdown();
    CHECK(!pgcmk_agent_has_dek("db1") && !pgcmk_agent_has_dek("replica1"));
    pgcmk_agent_stats(&stats);
    CHECK(stats.deks == 0);

    free(rec);
    t_wrapped_free(&w1);
    t_wrapped_free(&w2);
    t_wrapped_free(&w3);
    free(kid);
    free(kid2);
    free(kid_ec);
    free(kid_exp);
    free(kid_nbf);
    free(t_admin);
    t_store_close();
    t_stop();
    curl_global_cleanup();
    return t_done("test_agent");
}
