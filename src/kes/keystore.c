/* keystore.c - KES's Vault keystore (minio/kes internal/keystore/vault/{vault,client}.go), a
 * Vault client over HTTP(S) (include/pgcmk/https.h) that works against pgcmk's Vault API and
 * any other Vault:
 *   - AppRole login: POST /v1/auth/{engine}/login {"role_id","secret_id"} (X-Vault-Namespace of
 *     approle.namespace, "/" = root, else the keystore's namespace); the token and its TTL from
 *     auth.client_token / auth.lease_duration; at 80% of the TTL renew-self when renewable,
 *     else log in again; a failed login is retried after approle.retry; all on the virtual clock;
 *   - create: GET the location (exists: "key already exists"), then PUT {name: value} (v1) or
 *     {"options":{"cas":0},"data":{name: value}} (v2), 200 or 204;
 *   - get: GET {engine}/[data/]{prefix}/{name} (v2: ?version=1), the value at data[name] (v2:
 *     data.data[name]); 404 = "key does not exist";
 *   - list: LIST {engine}/[metadata/]{prefix}?list=true, data.keys; 404 = none;
 *   - delete: DELETE {engine}/[metadata/]{prefix}/{name}, 204;
 *   - transit: values are sent to {transit}/encrypt/{key} and stored as "vault:v1:..."; such a
 *     value is read back through {transit}/decrypt/{key};
 *   - health: GET /v1/sys/health?...code=299 without the namespace; sealed = the key operations
 *     fail at once (client.Sealed()).
 * Failures carry the reason as err->message (cache.c turns them into KES's answers). Secrets:
 * the AppRole secret id and the token are wiped when replaced or closed; header lines holding
 * the token are wiped after each request. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "kes/store_internal.h"
#include "pgcmk/clock.h"
#include "pgcmk/core.h"
#include "pgcmk/crypto.h"
#include "pgcmk/https.h"
#include "pgcmk/kesstore.h"

#define V_CONNECT_MS 3000L
#define V_TOTAL_MS   10000L

/* The KES route's timeout for this thread's requests (pgcmk_kes_store_set_timeout). */
static _Thread_local int64_t v_route_timeout_ms;

void
pgcmk_kes_store_set_timeout(int64_t ms)
{
    v_route_timeout_ms = ms;
}

#define V_TOKEN_MAX 1024

struct vault {
    char *endpoint, *engine, *ns, *prefix, *transit_engine, *transit_key;
    char *ar_ns, *ar_engine, *ar_id, *ar_secret;
    char *tls_key, *tls_cert, *tls_ca;
    int version;
    int64_t retry_ms;

    pthread_mutex_t mu; /* the fields below */
    char token[V_TOKEN_MAX];
    int64_t renew_at, expire_at, retry_at; /* virtual ms; 0 = now */
    int64_t ttl_ms;
    int renewable, sealed;
    char login_why[256];
};

static char *
dup_or_null(const char *s)
{
    return s && *s ? pgcmk_xstrdup(s) : NULL;
}

static void
str_wipe_free(char *s)
{
    if (s)
        pgcmk_secret_free(s, strlen(s));
}

/* path.Join of the non-empty segments, each stripped of leading and trailing '/'. */
static void
join(char *out, size_t cap, const char *const *seg, size_t n)
{
    size_t len = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *s = seg[i];
        size_t l;
        if (!s)
            continue;
        while (*s == '/')
            s++;
        l = strlen(s);
        while (l && s[l - 1] == '/')
            l--;
        if (!l)
            continue;
        len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s%.*s", len ? "/" : "",
                                (int)l, s);
        if (len >= cap) {
            out[cap - 1] = '\0';
            return;
        }
    }
}

/* {engine}/[mid/]{prefix}[/{name}] */
static void
location(const struct vault *v, const char *mid, const char *name, char *out, size_t cap)
{
    const char *seg[4] = {v->engine, v->version == 2 ? mid : NULL, v->prefix, name};

    join(out, cap, seg, 4);
}

/* The first of Vault's {"errors":[...]} or the status. */
static void
vault_error(const struct pgcmk_agent_https_resp *rs, char *out, size_t cap)
{
    json_t *o = rs->body ? json_loadb(rs->body, rs->len, 0, NULL) : NULL;
    json_t *e = json_array_get(json_object_get(o, "errors"), 0);

    if (json_is_string(e))
        snprintf(out, cap, "%ld %.160s", rs->status, json_string_value(e));
    else
        snprintf(out, cap, "server responded with %ld", rs->status);
    json_decref(o);
}

/* One request to Vault: path below /v1/, optional query and body; the token when with_token,
 * the namespace ns (NULL: none). 0 when answered (rs filled), -1 on a transport failure. */
static int
vreq(struct vault *v, const char *method, const char *path, const char *query, const char *body,
     const char *ns, int with_token, struct pgcmk_agent_https_resp *rs)
{
    char *url =
        pgcmk_xasprintf("%s/v1/%s%s%s", v->endpoint, path, query ? "?" : "", query ? query : "");
    char tok[V_TOKEN_MAX + 32] = "", nsh[300] = "";
    const char *hdrs[6];
    struct pgcmk_agent_https_req rq;
    size_t nh = 0;
    int rc;

    hdrs[nh++] = "X-Vault-Request: true";
    if (body)
        hdrs[nh++] = "Content-Type: application/json";
    if (with_token) {
        pthread_mutex_lock(&v->mu);
        if (v->token[0])
            snprintf(tok, sizeof(tok), "X-Vault-Token: %s", v->token);
        pthread_mutex_unlock(&v->mu);
        if (tok[0])
            hdrs[nh++] = tok;
    }
    if (ns && *ns) {
        snprintf(nsh, sizeof(nsh), "X-Vault-Namespace: %.250s", ns);
        hdrs[nh++] = nsh;
    }
    hdrs[nh] = NULL;
    memset(&rq, 0, sizeof(rq));
    rq.method = method;
    rq.url = url;
    rq.ca_path = v->tls_ca;
    rq.headers = hdrs;
    rq.body = body;
    rq.total_ms =
        v_route_timeout_ms > 0 && v_route_timeout_ms < V_TOTAL_MS ? v_route_timeout_ms : V_TOTAL_MS;
    rq.connect_ms = rq.total_ms < V_CONNECT_MS ? rq.total_ms : V_CONNECT_MS;
    rq.cert_path = v->tls_cert;
    rq.key_path = v->tls_key;
    rq.allow_http = 1;
    rc = pgcmk_agent_https(&rq, rs);
    OPENSSL_cleanse(tok, sizeof(tok));
    free(url);
    return rc;
}

/* ---- AppRole --------------------------------------------------------------------------------- */

/* Reads auth.client_token / lease_duration / renewable into the vault. Under mu. */
static int
take_auth(struct vault *v, const struct pgcmk_agent_https_resp *rs, int64_t now)
{
    json_t *o = rs->body ? json_loadb(rs->body, rs->len, 0, NULL) : NULL;
    json_t *auth = json_object_get(o, "auth");
    const char *tok = json_string_value(json_object_get(auth, "client_token"));
    json_int_t ttl = json_integer_value(json_object_get(auth, "lease_duration"));
    int rc = -1;

    if (tok && *tok && strlen(tok) < sizeof(v->token)) {
        OPENSSL_cleanse(v->token, sizeof(v->token));
        snprintf(v->token, sizeof(v->token), "%s", tok);
        v->renewable = json_is_true(json_object_get(auth, "renewable"));
        v->ttl_ms = ttl > 0 ? (int64_t)ttl * 1000 : 0;
        if (ttl > 0) {
            v->expire_at = now + (int64_t)ttl * 1000;
            v->renew_at = now + (int64_t)ttl * 800; /* 80% of the TTL */
        } else {                                    /* a token that does not expire */
            v->expire_at = v->renew_at = INT64_MAX;
        }
        rc = 0;
    }
    if (o)
        json_decref(o);
    return rc;
}

static int
login(struct vault *v, int64_t now)
{
    struct pgcmk_agent_https_resp rs;
    char path[300], why[200];
    const char *seg[3] = {"auth", v->ar_engine, "login"};
    const char *ns = v->ar_ns ? (strcmp(v->ar_ns, "/") == 0 ? NULL : v->ar_ns) : v->ns;
    json_t *b = json_pack("{s:s, s:s}", "role_id", v->ar_id ? v->ar_id : "", "secret_id",
                          v->ar_secret ? v->ar_secret : "");
    char *body = json_dumps(b, JSON_COMPACT);
    int rc = -1;

    json_decref(b);
    join(path, sizeof(path), seg, 3);
    if (vreq(v, "POST", path, NULL, body, ns, 0, &rs) != 0) {
        snprintf(why, sizeof(why), "%.190s", rs.error);
    } else if (rs.status != 200) {
        vault_error(&rs, why, sizeof(why));
    } else {
        pthread_mutex_lock(&v->mu);
        rc = take_auth(v, &rs, now);
        pthread_mutex_unlock(&v->mu);
        if (rc != 0)
            snprintf(why, sizeof(why), "no token in Vault's answer");
    }
    pgcmk_agent_https_release(&rs);
    str_wipe_free(body);
    pthread_mutex_lock(&v->mu);
    if (rc == 0) {
        v->login_why[0] = '\0';
    } else {
        snprintf(v->login_why, sizeof(v->login_why), "vault: authentication failed: %s", why);
        v->retry_at = now + v->retry_ms;
    }
    pthread_mutex_unlock(&v->mu);
    return rc;
}

static int
renew_self(struct vault *v, int64_t now)
{
    struct pgcmk_agent_https_resp rs;
    int64_t ttl_s;
    char body[64];
    int rc = -1;

    pthread_mutex_lock(&v->mu);
    ttl_s = v->ttl_ms / 1000;
    pthread_mutex_unlock(&v->mu);
    snprintf(body, sizeof(body), "{\"increment\":%lld}", (long long)ttl_s);
    if (vreq(v, "POST", "auth/token/renew-self", NULL, body, v->ns, 1, &rs) == 0 &&
        rs.status == 200) {
        pthread_mutex_lock(&v->mu);
        rc = take_auth(v, &rs, now);
        if (rc == 0 && !v->renewable)
            v->renew_at = now; /* not renewable any more: log in again next time */
        pthread_mutex_unlock(&v->mu);
    }
    pgcmk_agent_https_release(&rs);
    return rc;
}

/* Keeps the token fresh (RenewToken, played lazily). While sealed nothing is tried. */
static void
ensure_token(struct vault *v)
{
    int64_t now = pgcmk_clock_now();
    int have, renewable, due, may_login;

    if (!v->ar_id && !v->ar_secret)
        return;
    pthread_mutex_lock(&v->mu);
    have = v->token[0] != '\0';
    renewable = v->renewable && now < v->expire_at;
    due = !have || now >= v->renew_at;
    may_login = now >= v->retry_at;
    if (v->sealed)
        due = 0;
    pthread_mutex_unlock(&v->mu);
    if (!due)
        return;
    if (have && renewable && renew_self(v, now) == 0)
        return;
    if (may_login)
        (void)login(v, now);
}

/* ---- the KV operations ------------------------------------------------------------------------
 */

/* "vault: failed to <op> '<location>': <why>" */
static int
ks_fail(struct pgcmk_err *err, const char *op, const char *loc, const char *why)
{
    return pgcmk_err_set(err, PGCMK_E_KES_KEYSTORE, NULL, "vault: failed to %s '%s': %s", op, loc,
                         why);
}

/* Fails at once when the last health check found Vault sealed; refreshes the token. */
static int
prepare(struct vault *v, struct pgcmk_err *err)
{
    int sealed;

    pthread_mutex_lock(&v->mu);
    sealed = v->sealed;
    pthread_mutex_unlock(&v->mu);
    if (sealed)
        return pgcmk_err_set(err, PGCMK_E_KES_KEYSTORE, NULL, "vault: key store is sealed");
    ensure_token(v);
    /* No token (the login failed): Vault would refuse the request; say why instead. */
    pthread_mutex_lock(&v->mu);
    if ((v->ar_id || v->ar_secret) && !v->token[0]) {
        pgcmk_err_set(err, PGCMK_E_KES_KEYSTORE, NULL, "%s", v->login_why);
        pthread_mutex_unlock(&v->mu);
        return -1;
    }
    pthread_mutex_unlock(&v->mu);
    return 0;
}

/* The answer's data (v1) or data.data (v2) holding name, or NULL (why says what is wrong). */
static json_t *
entry_value(const struct vault *v, json_t *o, const char *name, char *why, size_t cap)
{
    json_t *d = json_object_get(o, "data"), *val;

    if (v->version == 2) {
        d = json_object_get(d, "data");
        if (!json_is_object(d)) {
            snprintf(why, cap, "invalid K/V v2 format: missing 'data' entry");
            return NULL;
        }
    }
    val = json_object_get(d, name);
    if (!val || json_is_null(val)) {
        snprintf(why, cap, "entry exists but no secret key is present");
        return NULL;
    }
    if (!json_is_string(val)) {
        snprintf(why, cap, "invalid K/V format");
        return NULL;
    }
    return val;
}

/* A 404 that still carries a secret (a KV v2 version deleted, its metadata kept): the Vault Go
 * SDK returns it as a secret, so KES finds it malformed rather than missing. */
static int
secret_in_404(const struct pgcmk_agent_https_resp *rs)
{
    json_t *o = rs->body ? json_loadb(rs->body, rs->len, 0, NULL) : NULL;
    json_t *d = json_object_get(o, "data"), *w = json_object_get(o, "warnings");
    int yes = (json_is_object(d) && json_object_size(d) > 0) || json_array_size(w) > 0;

    json_decref(o);
    return yes;
}

static int
transit(struct vault *v, const char *op, const char *field, const char *in, const char *out_field,
        char **out, char *why, size_t cap)
{
    struct pgcmk_agent_https_resp rs;
    char path[300];
    const char *seg[3] = {v->transit_engine, op, v->transit_key};
    json_t *b = json_pack("{s:s}", field, in), *o = NULL;
    char *body = json_dumps(b, JSON_COMPACT);
    const char *s;
    int rc = -1;

    json_decref(b);
    join(path, sizeof(path), seg, 3);
    *out = NULL;
    if (vreq(v, "POST", path, NULL, body, v->ns, 1, &rs) != 0) {
        snprintf(why, cap, "failed to %s key: %.180s", op, rs.error);
    } else if (rs.status != 200) {
        char e[200];
        vault_error(&rs, e, sizeof(e));
        snprintf(why, cap, "failed to %s key: %s", op, e);
    } else {
        o = json_loadb(rs.body, rs.len, 0, NULL);
        s = json_string_value(json_object_get(json_object_get(o, "data"), out_field));
        if (!s)
            snprintf(why, cap, "failed to %s key: no %s in vault response", op, out_field);
        else {
            *out = pgcmk_xstrdup(s);
            rc = 0;
        }
    }
    json_decref(o); /* jansson wipes what it frees (pgcmk_secret_json_wipe) */
    pgcmk_agent_https_release(&rs);
    str_wipe_free(body);
    return rc;
}

static int
v_create(void *arg, const char *name, const char *value, struct pgcmk_err *err)
{
    struct vault *v = arg;
    struct pgcmk_agent_https_resp rs;
    char loc[600], why[256];
    char *stored = NULL, *body;
    json_t *b, *o;
    int rc;

    if (prepare(v, err) != 0)
        return -1;
    location(v, "data", name, loc, sizeof(loc));
    if (vreq(v, "GET", loc, NULL, NULL, v->ns, 1, &rs) != 0) {
        rc = ks_fail(err, "create", loc, rs.error);
        pgcmk_agent_https_release(&rs);
        return rc;
    }
    if (rs.status == 200 || (rs.status == 404 && secret_in_404(&rs))) {
        o = json_loadb(rs.body, rs.len, 0, NULL);
        rc = entry_value(v, o, name, why, sizeof(why))
                 ? pgcmk_err_set(err, PGCMK_E_KES_KEY_EXISTS, NULL, "key already exists")
                 : ks_fail(err, "read", loc, why);
        json_decref(o);
        pgcmk_agent_https_release(&rs);
        return rc;
    }
    if (rs.status != 404) {
        vault_error(&rs, why, sizeof(why));
        pgcmk_agent_https_release(&rs);
        return ks_fail(err, "create", loc, why);
    }
    pgcmk_agent_https_release(&rs);

    if (v->transit_key) {
        char *b64 = pgcmk_b64_encode(value, strlen(value));
        rc = transit(v, "encrypt", "plaintext", b64, "ciphertext", &stored, why, sizeof(why));
        str_wipe_free(b64);
        if (rc != 0)
            return ks_fail(err, "create", loc, why);
        if (strncmp(stored, "vault:v1:", 9) != 0) {
            free(stored);
            return ks_fail(err, "create", loc, "failed to encrypt key: invalid vault response");
        }
    }
    b = json_object();
    json_object_set_new(b, name, json_string(stored ? stored : value));
    if (v->version == 2)
        b = json_pack("{s:{s:i}, s:o}", "options", "cas", 0, "data", b);
    body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    free(stored);
    rc = vreq(v, "PUT", loc, NULL, body, v->ns, 1, &rs);
    str_wipe_free(body);
    if (rc != 0)
        rc = ks_fail(err, "create", loc, rs.error);
    else if (rs.status != 200 && rs.status != 204) {
        vault_error(&rs, why, sizeof(why));
        rc = ks_fail(err, "create", loc, why);
    }
    pgcmk_agent_https_release(&rs);
    return rc;
}

static int
v_get(void *arg, const char *name, char **value, struct pgcmk_err *err)
{
    struct vault *v = arg;
    struct pgcmk_agent_https_resp rs;
    char loc[600], why[256];
    json_t *o, *val;
    int rc = -1;

    *value = NULL;
    if (prepare(v, err) != 0)
        return -1;
    location(v, "data", name, loc, sizeof(loc));
    if (vreq(v, "GET", loc, v->version == 2 ? "version=1" : NULL, NULL, v->ns, 1, &rs) != 0) {
        rc = ks_fail(err, "read", loc, rs.error);
        pgcmk_agent_https_release(&rs);
        return rc;
    }
    if (rs.status == 404 && !secret_in_404(&rs)) {
        pgcmk_agent_https_release(&rs);
        return pgcmk_err_set(err, PGCMK_E_KES_KEY_NOT_FOUND, NULL, "key does not exist");
    }
    if (rs.status != 200 && rs.status != 404) {
        vault_error(&rs, why, sizeof(why));
        pgcmk_agent_https_release(&rs);
        return ks_fail(err, "read", loc, why);
    }
    o = json_loadb(rs.body, rs.len, 0, NULL);
    pgcmk_agent_https_release(&rs);
    if (!(val = entry_value(v, o, name, why, sizeof(why)))) {
        rc = ks_fail(err, "read", loc, why);
    } else if (strncmp(json_string_value(val), "vault:v1:", 9) == 0) {
        char *plain_b64 = NULL;
        if (!v->transit_key) {
            rc = ks_fail(err, "read", loc, "key is encrypted with vault transit key");
        } else if (transit(v, "decrypt", "ciphertext", json_string_value(val), "plaintext",
                           &plain_b64, why, sizeof(why)) != 0) {
            rc = ks_fail(err, "read", loc, why);
        } else {
            unsigned char *raw = NULL;
            size_t n = 0;
            if (pgcmk_b64_decode(plain_b64, strlen(plain_b64), &raw, &n) != 0) {
                rc = ks_fail(err, "read", loc, "failed to decrypt key: invalid base64");
            } else {
                *value = pgcmk_xstrndup((const char *)raw, n);
                pgcmk_secret_free(raw, n);
                rc = 0;
            }
            str_wipe_free(plain_b64);
        }
    } else {
        *value = pgcmk_xstrdup(json_string_value(val));
        rc = 0;
    }
    json_decref(o);
    return rc;
}

static int
v_del(void *arg, const char *name, struct pgcmk_err *err)
{
    struct vault *v = arg;
    struct pgcmk_agent_https_resp rs;
    char loc[600], why[256];
    int rc = 0;

    if (prepare(v, err) != 0)
        return -1;
    location(v, "metadata", name, loc, sizeof(loc));
    if (vreq(v, "DELETE", loc, NULL, NULL, v->ns, 1, &rs) != 0) {
        rc = ks_fail(err, "delete", loc, rs.error);
    } else if (rs.status != 204) {
        vault_error(&rs, why, sizeof(why));
        rc = ks_fail(err, "delete", loc, why);
    }
    pgcmk_agent_https_release(&rs);
    return rc;
}

static int
v_list(void *arg, json_t **names, struct pgcmk_err *err)
{
    struct vault *v = arg;
    struct pgcmk_agent_https_resp rs;
    char loc[600], why[256];
    json_t *o, *keys;
    size_t i;
    int rc = 0;

    *names = NULL;
    if (prepare(v, err) != 0)
        return -1;
    location(v, "metadata", NULL, loc, sizeof(loc));
    if (vreq(v, "LIST", loc, "list=true", NULL, v->ns, 1, &rs) != 0) {
        rc = ks_fail(err, "list", loc, rs.error);
        pgcmk_agent_https_release(&rs);
        return rc;
    }
    if (rs.status == 404) {
        pgcmk_agent_https_release(&rs);
        *names = json_array();
        return 0;
    }
    if (rs.status != 200) {
        vault_error(&rs, why, sizeof(why));
        pgcmk_agent_https_release(&rs);
        return ks_fail(err, "list", loc, why);
    }
    o = json_loadb(rs.body, rs.len, 0, NULL);
    pgcmk_agent_https_release(&rs);
    keys = json_object_get(json_object_get(o, "data"), "keys");
    if (!json_is_array(keys)) {
        json_decref(o);
        return ks_fail(err, "list", loc, "invalid key listing format");
    }
    *names = json_array();
    for (i = 0; i < json_array_size(keys); i++) {
        json_t *k = json_array_get(keys, i);
        if (json_is_string(k))
            json_array_append(*names, k);
    }
    json_decref(o);
    return 0;
}

static int64_t
mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
v_ping(void *arg, struct pgcmk_kes_store_health *h)
{
    struct vault *v = arg;
    struct pgcmk_agent_https_resp rs;
    int64_t t0 = mono_us();
    json_t *o;

    h->reachable = 0;
    if (vreq(v, "GET", "sys/health",
             "uninitcode=299&sealedcode=299&standbycode=299&drsecondarycode=299&"
             "performancestandbycode=299",
             NULL, NULL, 0, &rs) != 0) {
        snprintf(h->why, sizeof(h->why), "vault: unreachable: %.200s", rs.error);
        pgcmk_agent_https_release(&rs);
        return;
    }
    h->latency_us = mono_us() - t0;
    o = rs.body ? json_loadb(rs.body, rs.len, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        snprintf(h->why, sizeof(h->why), "vault: health check answered %ld without a status",
                 rs.status);
    } else if (!json_is_true(json_object_get(o, "initialized"))) {
        snprintf(h->why, sizeof(h->why), "vault: not initialized");
    } else if (json_is_true(json_object_get(o, "sealed"))) {
        snprintf(h->why, sizeof(h->why), "vault: key store is sealed");
    } else {
        h->reachable = 1;
    }
    pthread_mutex_lock(&v->mu);
    if (json_is_object(o)) /* CheckStatus: only an answered health check moves the flag */
        v->sealed = json_is_true(json_object_get(o, "sealed"));
    pthread_mutex_unlock(&v->mu);
    json_decref(o);
    pgcmk_agent_https_release(&rs);
    if (h->reachable)
        ensure_token(v);
    pthread_mutex_lock(&v->mu);
    snprintf(h->login_why, sizeof(h->login_why), "%s", v->login_why);
    pthread_mutex_unlock(&v->mu);
}

static void
v_close(void *arg)
{
    struct vault *v = arg;

    if (!v)
        return;
    free(v->endpoint);
    free(v->engine);
    free(v->ns);
    free(v->prefix);
    free(v->transit_engine);
    free(v->transit_key);
    free(v->ar_ns);
    free(v->ar_engine);
    str_wipe_free(v->ar_id);
    str_wipe_free(v->ar_secret);
    free(v->tls_key);
    free(v->tls_cert);
    free(v->tls_ca);
    pthread_mutex_destroy(&v->mu);
    OPENSSL_cleanse(v, sizeof(*v));
    free(v);
}

static const struct pgcmk_kes_backend vault_backend = {v_create, v_get,  v_del,
                                                       v_list,   v_ping, v_close};

struct pgcmk_kes_store *
pgcmk_kes_store_open(const struct pgcmk_kes_vault_cfg *vc, const struct pgcmk_kes_cache_cfg *cc,
                     struct pgcmk_err *err)
{
    struct vault *v;
    size_t n;

    if (!vc || !vc->endpoint || !vc->endpoint[0]) {
        pgcmk_err_set(err, PGCMK_E_KES_KEYSTORE_CONFIG, NULL, "vault: endpoint is empty");
        return NULL;
    }
    if (strncmp(vc->endpoint, "https://", 8) != 0 && strncmp(vc->endpoint, "http://", 7) != 0) {
        pgcmk_err_set(err, PGCMK_E_KES_KEYSTORE_CONFIG, NULL,
                      "vault: endpoint '%.128s' is not an http(s):// URL", vc->endpoint);
        return NULL;
    }
    if (vc->version != 0 && vc->version != 1 && vc->version != 2) {
        pgcmk_err_set(err, PGCMK_E_KES_KEYSTORE_CONFIG, NULL,
                      "vault: invalid engine API version 'v%d'", vc->version);
        return NULL;
    }
    if (vc->transit_engine && vc->transit_engine[0] && !(vc->transit_key && vc->transit_key[0])) {
        pgcmk_err_set(err, PGCMK_E_KES_KEYSTORE_CONFIG, NULL, "vault: transit key name is empty");
        return NULL;
    }
    v = pgcmk_xcalloc(1, sizeof(*v));
    v->endpoint = pgcmk_xstrdup(vc->endpoint);
    n = strlen(v->endpoint);
    while (n > 8 && v->endpoint[n - 1] == '/')
        v->endpoint[--n] = '\0';
    v->engine = pgcmk_xstrdup(vc->engine && vc->engine[0] ? vc->engine : "kv");
    v->version = vc->version == 2 ? 2 : 1;
    v->ns = dup_or_null(vc->namespace);
    v->prefix = dup_or_null(vc->prefix);
    v->transit_key = dup_or_null(vc->transit_key);
    v->transit_engine =
        pgcmk_xstrdup(vc->transit_engine && vc->transit_engine[0] ? vc->transit_engine : "transit");
    v->ar_ns = dup_or_null(vc->approle_namespace);
    v->ar_engine =
        pgcmk_xstrdup(vc->approle_engine && vc->approle_engine[0] ? vc->approle_engine : "approle");
    v->ar_id = dup_or_null(vc->approle_id);
    v->ar_secret = dup_or_null(vc->approle_secret);
    v->retry_ms = vc->approle_retry_ms > 0 ? vc->approle_retry_ms : 5000;
    v->tls_key = dup_or_null(vc->tls_key);
    v->tls_cert = dup_or_null(vc->tls_cert);
    v->tls_ca = dup_or_null(vc->tls_ca);
    pthread_mutex_init(&v->mu, NULL);
    return pgcmk_kes_store_new(&vault_backend, v, cc);
}
