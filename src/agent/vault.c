/* vault.c - the agent as pg_tde's vault-v2 client (include/pgcmk/vaultc.h): the requests of
 * pg_tde's keyring_vault.c over HTTPS (libcurl through include/pgcmk/https.h), answers read with
 * jansson, each outcome told apart as an outage (retried, the DEK kept) or a loss of access.
 *
 * DESIGN.md rule: the agent reaches a key store only over its wire protocol. This file never
 * calls src/vaultapi/, so it works the same against pgcmk's Vault and any other Vault server.
 *
 * Secrets: the token (read from tokenPath at each call), the principal key and the DEK live in
 * stack buffers or heap buffers wiped before they go (OPENSSL_cleanse); header lines holding the
 * token are wiped by the HTTPS layer. Nothing here logs a token or key bytes. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "pgcmk/https.h"
#include "pgcmk/core.h"
#include "pgcmk/crypto.h"
#include "pgcmk/log.h"
#include "pgcmk/vaultc.h"

#define VC_CONNECT_MS 3000L  /* pg_tde: CURLOPT_CONNECTTIMEOUT 3 */
#define VC_TOTAL_MS   10000L /* pg_tde: CURLOPT_TIMEOUT 10 */
#define VC_RETRIES    2
#define VC_BACKOFF_MS 100
#define VC_TOKEN_MAX  8192
#define VC_ALG        "vault-A256GCM"

/* ---- requests ----------------------------------------------------------------------------- */

/* Appends s percent-encoded (unreserved characters and, when keep_slash, '/' as they are). */
static void
vc_escape(char *out, size_t cap, size_t *n, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int plain =
            isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');

        if (*n + 4 >= cap)
            break;
        if (plain) {
            out[(*n)++] = (char)c;
        } else {
            out[(*n)++] = '%';
            out[(*n)++] = hex[c >> 4];
            out[(*n)++] = hex[c & 15];
        }
    }
    out[*n] = '\0';
}

static char *
vc_url(const struct pgcmk_vaultc_target *t, const char *pre, const char *mid, const char *name,
       const char *post)
{
    size_t ul = strlen(t->url), cap = ul + 3 * (strlen(t->mount) + (name ? strlen(name) : 0)) + 64;
    char *u = pgcmk_xmalloc(cap);
    size_t n;
    const char *m = t->mount;

    while (ul && t->url[ul - 1] == '/') /* pg_tde joins with '/', a trailing one is redundant */
        ul--;
    n = (size_t)snprintf(u, cap, "%.*s/v1/%s", (int)ul, t->url, pre);
    while (*m == '/')
        m++;
    {
        size_t ml = strlen(m);
        char *mc = pgcmk_xstrdup(m);

        while (ml && mc[ml - 1] == '/')
            mc[--ml] = '\0';
        vc_escape(u, cap, &n, mc, 1);
        free(mc);
    }
    n += (size_t)snprintf(u + n, cap - n, "%s", mid);
    if (name)
        vc_escape(u, cap, &n, name, 1);
    snprintf(u + n, cap - n, "%s", post);
    return u;
}

char *
pgcmk_vaultc_url_mount(const struct pgcmk_vaultc_target *t)
{
    return vc_url(t, "sys/mounts/", "", NULL, "");
}

char *
pgcmk_vaultc_url_list(const struct pgcmk_vaultc_target *t)
{
    return vc_url(t, "", "/metadata/", NULL, "?list=true");
}

char *
pgcmk_vaultc_url_data(const struct pgcmk_vaultc_target *t, const char *name)
{
    return vc_url(t, "", "/data/", name, "");
}

char *
pgcmk_vaultc_store_body(const unsigned char *key, size_t key_len)
{
    char *b64, *body;
    size_t n;

    if (key_len != 16 && key_len != 32)
        return NULL;
    b64 = pgcmk_b64_encode(key, key_len);
    n = strlen(b64) + 32;
    body = pgcmk_xmalloc(n);
    snprintf(body, n, "{\"data\":{\"key\":\"%s\"}}", b64);
    OPENSSL_cleanse(b64, strlen(b64));
    free(b64);
    return body;
}

/* ---- responses ---------------------------------------------------------------------------- */

static json_t *
vc_json(const char *body, size_t len)
{
    return body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
}

int
pgcmk_vaultc_parse_mount(const char *body, size_t len, char type[32], char version[8])
{
    json_t *o = vc_json(body, len), *data = json_object_get(o, "data");
    const char *ty, *ve;
    int rc;

    type[0] = version[0] = '\0';
    if (!json_is_object(data)) {
        json_decref(o);
        return -1;
    }
    ty = json_string_value(json_object_get(data, "type"));
    ve = json_string_value(json_object_get(json_object_get(data, "options"), "version"));
    snprintf(type, 32, "%s", ty ? ty : "");
    snprintf(version, 8, "%s", ve ? ve : "");
    rc = ty && ve && strcmp(ty, "kv") == 0 && strcmp(ve, "2") == 0;
    json_decref(o);
    return rc;
}

int
pgcmk_vaultc_parse_key(const char *body, size_t len, unsigned char key[PGCMK_VAULTC_MAX_KEY],
                       size_t *key_len, long *version)
{
    json_t *o = vc_json(body, len), *data = json_object_get(o, "data");
    json_t *k = json_object_get(json_object_get(data, "data"), "key");
    json_t *v = json_object_get(json_object_get(data, "metadata"), "version");
    unsigned char *raw = NULL;
    size_t rl = 0;
    int rc;

    *key_len = 0;
    *version = json_is_integer(v) ? (long)json_integer_value(v) : 0;
    if (!json_is_string(k)) {
        json_decref(o);
        return -1;
    }
    if (pgcmk_b64_decode(json_string_value(k), json_string_length(k), &raw, &rl) != 0) {
        rc = 1;
    } else {
        *key_len = rl;
        rc = rl == 16 || rl == 32 ? 0 : 1;
        if (rc == 0)
            memcpy(key, raw, rl);
        OPENSSL_cleanse(raw, rl);
        free(raw);
    }
    /* the key's text lives in the JSON tree: wipe it before the tree goes */
    OPENSSL_cleanse((char *)json_string_value(k), json_string_length(k));
    json_decref(o);
    return rc;
}

long
pgcmk_vaultc_parse_version(const char *body, size_t len)
{
    json_t *o = vc_json(body, len);
    json_t *v = json_object_get(json_object_get(o, "data"), "version");
    long n = json_is_integer(v) ? (long)json_integer_value(v) : 0;

    json_decref(o);
    return n;
}

void
pgcmk_vaultc_parse_errors(const char *body, size_t len, char *out, size_t cap)
{
    json_t *o = vc_json(body, len), *e = json_object_get(o, "errors"), *v;
    size_t i, n = 0;

    out[0] = '\0';
    json_array_foreach(e, i, v) {
        const char *s = json_string_value(v);

        if (!s || n + 1 >= cap)
            continue;
        n += (size_t)snprintf(out + n, cap - n, "%s%.200s", n ? "; " : "", s);
        if (n >= cap)
            n = cap - 1;
    }
    json_decref(o);
}

enum pgcmk_errc
pgcmk_vaultc_classify(long status, const char *body, size_t len, int *outage)
{
    char why[256];

    *outage = 0;
    if (status >= 200 && status < 300)
        return PGCMK_E_OK;
    if (status == 404)
        return PGCMK_E_HV_KEY_NOT_FOUND;
    if (status == 401 || status == 403)
        return PGCMK_E_HV_PERMISSION_DENIED;
    if (status == 503) {
        pgcmk_vaultc_parse_errors(body, len, why, sizeof(why));
        if (strstr(why, "sealed"))
            return PGCMK_E_HV_SEALED;
    }
    if (status >= 500 || status == 429 || status < 200) {
        *outage = 1;
        return PGCMK_E_HV_SERVER_UNREACHABLE;
    }
    return PGCMK_E_HV_REQUEST_REFUSED;
}

/* ---- calls -------------------------------------------------------------------------------- */

/* The token file's contents without trailing white space: 0, or -1 with res. */
static int
vc_token(const struct pgcmk_vaultc_target *t, char tok[VC_TOKEN_MAX],
         struct pgcmk_agent_result *res)
{
    int fd = t->token_path ? open(t->token_path, O_RDONLY | O_CLOEXEC) : -1;
    ssize_t n = 0, r;
    int err = errno;

    if (fd >= 0) {
        while (n < VC_TOKEN_MAX - 1 && (r = read(fd, tok + n, (size_t)(VC_TOKEN_MAX - 1 - n))) > 0)
            n += r;
        err = errno;
        close(fd);
    }
    tok[n > 0 ? n : 0] = '\0';
    while (n > 0 && isspace((unsigned char)tok[n - 1]))
        tok[--n] = '\0';
    if (fd < 0 || n <= 0 || strchr(tok, '\n') || strchr(tok, '\r')) {
        OPENSSL_cleanse(tok, VC_TOKEN_MAX);
        return pgcmk_agent_fail(res, PGCMK_E_HV_TOKEN_FILE_UNREADABLE, 1,
                                "Vault %.200s: the token file '%.200s' %s.", t->url,
                                t->token_path ? t->token_path : "",
                                fd < 0 ? strerror(err) : "is empty or holds more than one line");
    }
    return 0;
}

/* What one attempt sends: pg_tde's headers, the token re-read from its file each time. */
struct vc_attempt {
    const struct pgcmk_vaultc_target *t;
    char hx[VC_TOKEN_MAX + 32], hn[600];
    const char *hdrs[4];
};

static int
vc_before(void *arg, struct pgcmk_agent_https_req *rq, struct pgcmk_agent_result *res)
{
    struct vc_attempt *a = arg;
    char tok[VC_TOKEN_MAX];
    int nh = 0;

    if (vc_token(a->t, tok, res)) /* re-read at each call, as pg_tde does */
        return -1;
    snprintf(a->hx, sizeof(a->hx), "X-Vault-Token: %s", tok);
    OPENSSL_cleanse(tok, sizeof(tok));
    a->hdrs[nh++] = a->hx;
    if (a->t->ns && *a->t->ns) {
        snprintf(a->hn, sizeof(a->hn), "X-Vault-Namespace: %.500s", a->t->ns);
        a->hdrs[nh++] = a->hn;
    }
    a->hdrs[nh++] = "Content-Type: application/json";
    a->hdrs[nh] = NULL;
    rq->headers = a->hdrs;
    return 0;
}

static void
vc_after(void *arg)
{
    struct vc_attempt *a = arg;

    OPENSSL_cleanse(a->hx, sizeof(a->hx));
}

static int
vc_outage(long status, const char *body, size_t len)
{
    int outage;

    pgcmk_vaultc_classify(status, body, len, &outage);
    return outage;
}

/* One request with retries on outages: 0 with rs (the final answer, any status, the caller
 * releases it), or -1 with res (an outage, or the token file). */
static int
vc_call(const struct pgcmk_vaultc_target *t, const char *method, const char *url, const char *body,
        struct pgcmk_agent_https_resp *rs, struct pgcmk_agent_result *res)
{
    long total = t->timeout_ms > 0 ? t->timeout_ms : VC_TOTAL_MS;
    struct vc_attempt a = {t, "", "", {NULL}};
    struct pgcmk_agent_https_req rq = {
        method, url, t->ca_path, a.hdrs, body, total < VC_CONNECT_MS ? total : VC_CONNECT_MS,
        total,  1,
    };
    struct pgcmk_agent_retry r = {
        "Vault",
        t->url,
        t->retries < 0 ? VC_RETRIES : t->retries,
        VC_BACKOFF_MS,
        PGCMK_E_HV_SERVER_NOT_TRUSTED,
        PGCMK_E_HV_SERVER_UNREACHABLE,
        vc_outage,
        pgcmk_vaultc_parse_errors,
        vc_before,
        vc_after,
        NULL,
        &a,
    };

    return pgcmk_agent_https_retry(&r, &rq, rs, res);
}

/* A final non-2xx answer as a loss (or an outage), with a message naming the request. */
static int
vc_refused(const struct pgcmk_vaultc_target *t, const char *what, struct pgcmk_agent_https_resp *rs,
           struct pgcmk_agent_result *res)
{
    int outage;
    enum pgcmk_errc c = pgcmk_vaultc_classify(rs->status, rs->body, rs->len, &outage);
    char why[200];

    pgcmk_vaultc_parse_errors(rs->body, rs->len, why, sizeof(why));
    pgcmk_agent_fail(
        res, c, !outage, "Vault %.200s answers HTTP %ld to %s%s%s%s.", t->url, rs->status, what,
        c == PGCMK_E_HV_SEALED              ? ": Vault is sealed"
        : c == PGCMK_E_HV_PERMISSION_DENIED ? ": permission denied (the token is bad, expired "
                                              "or revoked, or its policy does not grant it)"
                                            : "",
        why[0] && c != PGCMK_E_HV_SEALED ? " - " : "", c != PGCMK_E_HV_SEALED ? why : "");
    res->http_status = (int)rs->status;
    pgcmk_agent_https_release(rs);
    return -1;
}

/* GET sys/mounts/{mount}: 1 kv v2, 0 another engine (res filled: VaultMountNotKv2), 2 the
 * mount does not exist (400/404), 3 another answer (403...: not known), -1 outage/sealed (res). */
static int
vc_mount(const struct pgcmk_vaultc_target *t, struct pgcmk_agent_result *res)
{
    struct pgcmk_agent_https_resp rs;
    char *url = pgcmk_vaultc_url_mount(t), type[32], ver[8];
    int rc, outage;
    enum pgcmk_errc c;

    rc = vc_call(t, "GET", url, NULL, &rs, res);
    free(url);
    if (rc)
        return -1;
    c = pgcmk_vaultc_classify(rs.status, rs.body, rs.len, &outage);
    if (c == PGCMK_E_HV_SEALED) {
        vc_refused(t, "the mount check", &rs, res);
        return -1;
    }
    if (rs.status != 200) {
        rc = rs.status == 400 || rs.status == 404 ? 2 : 3;
        LOG_WARN("agent: Vault %s answers HTTP %ld to GET sys/mounts/%s; the mount is not "
                 "checked (as pg_tde)",
                 t->url, rs.status, t->mount);
        pgcmk_agent_https_release(&rs);
        return rc;
    }
    rc = pgcmk_vaultc_parse_mount(rs.body, rs.len, type, ver);
    pgcmk_agent_https_release(&rs);
    if (rc == 1)
        return 1;
    if (rc < 0) {
        LOG_WARN("agent: Vault %s: GET sys/mounts/%s is not a mount answer", t->url, t->mount);
        return 3;
    }
    pgcmk_agent_fail(res, PGCMK_E_HV_MOUNT_NOT_KV2, 1,
                     "Vault %.200s: the mount '%.100s' is a '%.31s' engine%s%.7s, not KV version 2 "
                     "(pg_tde needs type \"kv\" with options.version \"2\").",
                     t->url, t->mount, type[0] ? type : "?", ver[0] ? " version " : "", ver);
    return 0;
}

/* GET {mount}/data/{name}: 1 with the key, 0 when there is none (404), -1 with res. */
static int
vc_get_key(const struct pgcmk_vaultc_target *t, const char *name,
           unsigned char key[PGCMK_VAULTC_MAX_KEY], size_t *key_len, long *version,
           struct pgcmk_agent_result *res)
{
    struct pgcmk_agent_https_resp rs;
    char *url = pgcmk_vaultc_url_data(t, name);
    int rc;

    rc = vc_call(t, "GET", url, NULL, &rs, res);
    free(url);
    if (rc)
        return -1;
    if (rs.status == 404) {
        pgcmk_agent_https_release(&rs);
        return 0;
    }
    if (rs.status < 200 || rs.status >= 300) {
        char what[200];

        snprintf(what, sizeof(what), "GET %.60s/data/%.100s", t->mount, name);
        return vc_refused(t, what, &rs, res);
    }
    rc = pgcmk_vaultc_parse_key(rs.body, rs.len, key, key_len, version);
    pgcmk_agent_https_release(&rs);
    if (rc < 0)
        return pgcmk_agent_fail(res, PGCMK_E_HV_KEY_LENGTH_INVALID, 1,
                                "Vault %.200s: the secret '%.60s/%.100s' has no data.key.", t->url,
                                t->mount, name);
    if (rc > 0)
        return pgcmk_agent_fail(
            res, PGCMK_E_HV_KEY_LENGTH_INVALID, 1,
            "Vault %.200s: the secret '%.60s/%.100s' (version %ld) holds a key of %zu "
            "bytes%s; pg_tde accepts only base64 of 16 or 32.",
            t->url, t->mount, name, *version, *key_len,
            *key_len ? "" : " (or text that is not base64)");
    return 1;
}

/* POST {mount}/data/{name} {"data":{"key":...}}: 0 with *version, or -1 with res. */
static int
vc_put_key(const struct pgcmk_vaultc_target *t, const char *name, const unsigned char *key,
           size_t key_len, long *version, struct pgcmk_agent_result *res)
{
    struct pgcmk_agent_https_resp rs;
    char *body = pgcmk_vaultc_store_body(key, key_len), *url;
    int rc;

    if (!body)
        return pgcmk_agent_fail(res, PGCMK_E_HV_KEY_LENGTH_INVALID, 1,
                                "A principal key is 16 or 32 bytes, not %zu.", key_len);
    url = pgcmk_vaultc_url_data(t, name);
    rc = vc_call(t, "POST", url, body, &rs, res);
    OPENSSL_cleanse(body, strlen(body));
    free(body);
    free(url);
    if (rc)
        return -1;
    if (rs.status < 200 || rs.status >= 300) {
        char what[200];

        snprintf(what, sizeof(what), "POST %.60s/data/%.100s", t->mount, name);
        return vc_refused(t, what, &rs, res);
    }
    *version = pgcmk_vaultc_parse_version(rs.body, rs.len);
    pgcmk_agent_https_release(&rs);
    LOG_INFO("agent: stored the principal key '%s' in Vault %s at %s/data/%s (version %ld)", name,
             t->url, t->mount, name, *version);
    return 0;
}

static void
vc_kek(const unsigned char *pk, size_t n, unsigned char kek[32])
{
    if (n == 32)
        memcpy(kek, pk, 32);
    else
        pgcmk_sha256(pk, n, kek);
}

int
pgcmk_agent_vault_mount_check(const struct pgcmk_vaultc_target *t, struct pgcmk_agent_result *res)
{
    memset(res, 0, sizeof(*res));
    return vc_mount(t, res);
}

int
pgcmk_agent_vault_get_key(const struct pgcmk_vaultc_target *t, const char *name,
                          unsigned char key[PGCMK_VAULTC_MAX_KEY], size_t *key_len,
                          struct pgcmk_agent_result *res)
{
    long version = 0;

    memset(res, 0, sizeof(*res));
    *key_len = 0;
    return vc_get_key(t, name, key, key_len, &version, res);
}

int
pgcmk_agent_vault_put_key(const struct pgcmk_vaultc_target *t, const char *name,
                          const unsigned char *key, size_t key_len, struct pgcmk_agent_result *res)
{
    long version = 0;

    memset(res, 0, sizeof(*res));
    return vc_put_key(t, name, key, key_len, &version, res);
}

int
pgcmk_agent_vault_new_dek(const char *db_id, const struct pgcmk_vaultc_target *t,
                          const char *key_name, unsigned char **wrapped, size_t *wrapped_len,
                          char alg[24], long *version, struct pgcmk_agent_result *res)
{
    unsigned char pk[PGCMK_VAULTC_MAX_KEY], kek[32], dek[PGCMK_AGENT_DEK_LEN];
    size_t pk_len = 0;
    struct pgcmk_agent_https_resp rs;
    char *url;
    int n, rc = -1;

    memset(res, 0, sizeof(*res));
    *wrapped = NULL;
    *wrapped_len = 0;
    *version = 0;
    /* pg_tde's provider check: the mount must be kv v2 when the server says what it is */
    n = vc_mount(t, res);
    if (n == 0 || n < 0)
        return -1;
    url = pgcmk_vaultc_url_list(t);
    rc = vc_call(t, "GET", url, NULL, &rs, res);
    free(url);
    if (rc)
        return -1;
    if (rs.status != 200 && rs.status != 404)
        return vc_refused(t, "the list of the mount's metadata", &rs, res);
    pgcmk_agent_https_release(&rs);
    n = vc_get_key(t, key_name, pk, &pk_len, version, res);
    if (n < 0)
        return -1;
    if (n == 0) { /* pg_tde_create_key_using_global_key_provider: a new random key */
        if (pgcmk_random(pk, 32))
            return pgcmk_agent_fail(res, PGCMK_E_INTERNAL, 1, "No random bytes for a new key.");
        pk_len = 32;
        if (vc_put_key(t, key_name, pk, pk_len, version, res)) {
            OPENSSL_cleanse(pk, sizeof(pk));
            return -1;
        }
    }
    vc_kek(pk, pk_len, kek);
    OPENSSL_cleanse(pk, sizeof(pk));
    rc = -1;
    if (pgcmk_random(dek, sizeof(dek))) {
        pgcmk_agent_fail(res, PGCMK_E_INTERNAL, 1, "No random bytes for a new DEK.");
    } else if (pgcmk_aead_seal(kek, db_id, strlen(db_id), dek, sizeof(dek), wrapped, wrapped_len)) {
        pgcmk_agent_fail(res, PGCMK_E_INTERNAL, 1, "The DEK could not be wrapped.");
    } else {
        pgcmk_agent_keep(db_id, dek);
        snprintf(alg, 24, "%s", VC_ALG);
        rc = 0;
    }
    OPENSSL_cleanse(kek, sizeof(kek));
    OPENSSL_cleanse(dek, sizeof(dek));
    return rc;
}

int
pgcmk_agent_vault_check(const char *db_id, const struct pgcmk_vaultc_target *t,
                        const char *key_name, const unsigned char *wrapped, size_t wrapped_len,
                        long *version, struct pgcmk_agent_result *res)
{
    unsigned char pk[PGCMK_VAULTC_MAX_KEY], kek[32];
    unsigned char *dek = NULL;
    size_t pk_len = 0, dek_len = 0;
    int n, rc;

    memset(res, 0, sizeof(*res));
    *version = 0;
    n = vc_get_key(t, key_name, pk, &pk_len, version, res);
    if (n == 0) { /* 404: the secret, or the mount under it? */
        struct pgcmk_agent_result mres;
        int m;

        memset(&mres, 0, sizeof(mres));
        m = vc_mount(t, &mres);
        if (m < 0 || m == 0)
            *res = mres;
        else if (m == 2)
            pgcmk_agent_fail(
                res, PGCMK_E_HV_MOUNT_NOT_FOUND, 1,
                "Vault %.200s has no secrets engine at '%.100s' (the mount was disabled); "
                "the principal key '%.100s' is gone with it.",
                t->url, t->mount, key_name);
        else
            pgcmk_agent_fail(
                res, PGCMK_E_HV_KEY_NOT_FOUND, 1,
                "Vault %.200s has no secret '%.100s/%.100s' (HTTP 404): the principal key "
                "was deleted or destroyed.",
                t->url, t->mount, key_name);
        goto fail;
    }
    if (n < 0)
        goto fail;
    vc_kek(pk, pk_len, kek);
    OPENSSL_cleanse(pk, sizeof(pk));
    rc = pgcmk_aead_open(kek, db_id, strlen(db_id), wrapped, wrapped_len, &dek, &dek_len);
    OPENSSL_cleanse(kek, sizeof(kek));
    if (rc || dek_len != PGCMK_AGENT_DEK_LEN) {
        if (dek) {
            OPENSSL_cleanse(dek, dek_len);
            free(dek);
        }
        pgcmk_agent_fail(
            res, PGCMK_E_HV_KEY_NOT_FOUND, 1,
            "Vault %.200s: the secret '%.100s/%.100s' (version %ld) does not unwrap the "
            "database's key; the principal key it was wrapped with was replaced.",
            t->url, t->mount, key_name, *version);
        goto fail;
    }
    pgcmk_agent_keep(db_id, dek);
    OPENSSL_cleanse(dek, dek_len);
    free(dek);
    memset(res, 0, sizeof(*res));
    return 0;
fail:
    if (res->lost)
        pgcmk_agent_forget(db_id);
    return -1;
}
