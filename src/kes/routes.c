/* routes.c - the KES API of one server (minio/kes server.go, state.go, internal/api): the route
 * table (method, path, body limit, timeout, who may call it), the identity of the TLS client and
 * its policy, and each route's handler. Keys go through include/pgcmk/kesstore.h only. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "kes/internal.h"
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/events.h"

#define KES_VERSION "2024-01-11T13-09-29Z"
#define KES_MB      (1024 * 1024)

/* Who may call a route: anyone (/version), any client with a certificate (self/describe; a
 * skip_auth route), or the admin and the identities whose policy allows the path. */
enum kes_auth { KA_NONE, KA_IDENTIFY, KA_VERIFY };

struct kes_ctx {
    struct kes_server *s;
    struct pgcmk_req *rq;
    struct pgcmk_resp *rs;
    const char *resource; /* the path after the route's prefix */
    const char *identity; /* "" when the client sent no certificate */
};

typedef int (*kes_fn)(struct kes_ctx *c, struct pgcmk_err *err);

struct kes_route {
    const char *method;
    const char *path; /* a trailing '/' takes a resource after it */
    long max_body;
    int timeout_s;
    enum kes_auth auth;
    kes_fn fn;
};

/* ---- helpers -------------------------------------------------------------------------------- */

static int
kes_bad_name(const char *what, const char *name, struct pgcmk_err *err)
{
    return pgcmk_err_set(err, PGCMK_E_KES_BAD_REQUEST, NULL,
                         "%s '%.100s' is empty, too long or contains invalid characters", what,
                         name);
}

static void
kes_time(int64_t ms, char out[PGCMK_TIME_LEN])
{
    pgcmk_time_format(ms, out);
}

/* Go's encoding/json matches field names case-insensitively. */
static json_t *
kes_field(json_t *o, const char *name)
{
    const char *k;
    json_t *v;

    json_object_foreach(o, k, v) {
        if (strcasecmp(k, name) == 0)
            return v;
    }
    return NULL;
}

/* A []byte field: standard base64 (null or absent = empty). 0, or -1 for a wrong type or bad
 * base64. *out is heap (secret: the caller wipes it). */
static int
kes_bytes(json_t *o, const char *name, uint8_t **out, size_t *len)
{
    json_t *v = kes_field(o, name);
    const char *s;

    *out = NULL;
    *len = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    if (*s == '\0')
        return 0;
    if (pgcmk_b64_decode(s, json_string_length(v), out, len))
        return -1;
    return 0;
}

/* The request body as a JSON object (Go's decoder: one value, trailing bytes ignored). */
static json_t *
kes_body(struct kes_ctx *c)
{
    json_error_t je;
    json_t *o;

    if (c->rq->body == NULL || c->rq->body_len == 0)
        return NULL;
    o = json_loadb(c->rq->body, c->rq->body_len, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &je);
    if (o && json_is_null(o)) { /* Go decodes null into a struct as nothing */
        json_decref(o);
        return json_object();
    }
    if (o && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void
kes_reply_json(struct kes_ctx *c, json_t *o)
{
    pgcmk_resp_json(c->rs, 200, o);
}

static void
kes_reply_empty(struct kes_ctx *c)
{
    pgcmk_resp_text(c->rs, 200, "application/json", "", 0);
}

static void
kes_event(struct kes_server *s, enum pgcmk_event_kind kind, const char *key)
{
    struct pgcmk_event ev = {0};

    ev.kind = kind;
    ev.key = key;
    ev.resource_id = s->name;
    pgcmk_events_publish(&ev);
}

const struct pgcmk_kes_policy_cfg *
kes_policy_of(const struct kes_server *s, const char *id)
{
    int i, j;

    if (id == NULL || *id == '\0')
        return NULL;
    for (i = 0; i < s->conf.n_policies; i++)
        for (j = 0; j < s->conf.policies[i].n_identities; j++)
            if (strcmp(s->conf.policies[i].identities[j], id) == 0)
                return &s->conf.policies[i];
    return NULL;
}

static int
kes_is_admin(const struct kes_server *s, const char *id)
{
    return s->conf.admin[0] && id && strcmp(id, s->conf.admin) == 0;
}

static json_t *
kes_policy_json(const struct kes_server *s, const struct pgcmk_kes_policy_cfg *p)
{
    json_t *allow = json_object(), *deny = json_object(), *o;
    char at[PGCMK_TIME_LEN];
    int i;

    for (i = 0; i < p->n_allow; i++)
        json_object_set_new(allow, p->allow[i], json_object());
    for (i = 0; i < p->n_deny; i++)
        json_object_set_new(deny, p->deny[i], json_object());
    kes_time(s->started_ms, at);
    o = json_pack("{s:s, s:o, s:o, s:s}", "name", p->name, "allow", allow, "deny", deny,
                  "created_at", at);
    if (s->conf.admin[0])
        json_object_set_new(o, "created_by", json_string(s->conf.admin));
    return o;
}

/* ---- /version, /v1/status, /v1/ready, /v1/metrics, /v1/api --------------------------------- */

static int
r_version(struct kes_ctx *c, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    kes_reply_json(c, json_pack("{s:s, s:s}", "version", KES_VERSION, "commit", "pgcmk"));
    return 0;
}

static int
r_status(struct kes_ctx *c, struct pgcmk_err *err)
{
    struct pgcmk_kes_store_health h;
    struct rusage ru;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    json_t *o;

    PGCMK_UNUSED(err);
    memset(&h, 0, sizeof(h));
    pgcmk_kes_store_health(c->s->store, &h);
    getrusage(RUSAGE_SELF, &ru);
    o = json_pack("{s:s, s:s, s:s, s:I, s:i, s:i, s:I, s:I}", "version", KES_VERSION, "os", "linux",
                  "arch",
#if defined(__aarch64__)
                  "arm64",
#else
                  "amd64",
#endif
                  "uptime", (json_int_t)((pgcmk_clock_now() - c->s->started_ms + 500) / 1000),
                  "num_cpu", (int)ncpu, "num_cpu_used", (int)ncpu, "mem_heap_used",
                  (json_int_t)ru.ru_maxrss * 1024, "mem_stack_used", (json_int_t)8 * 1024 * 1024);
    /* server.go: the latency rounded to milliseconds, at least 1; omitted when unreachable */
    if (h.reachable) {
        json_int_t ms = (json_int_t)((h.latency_us + 500) / 1000);

        json_object_set_new(o, "keystore_latency", json_integer(ms > 0 ? ms : 1));
    } else {
        json_object_set_new(o, "keystore_unreachable", json_true());
    }
    kes_reply_json(c, o);
    return 0;
}

static int
r_ready(struct kes_ctx *c, struct pgcmk_err *err)
{
    struct pgcmk_kes_store_health h;

    memset(&h, 0, sizeof(h));
    pgcmk_kes_store_health(c->s->store, &h);
    if (!h.reachable)
        return pgcmk_err_set(err, PGCMK_E_KES_UNREACHABLE, NULL, "key store is not reachable");
    kes_reply_empty(c);
    return 0;
}

static int
r_metrics(struct kes_ctx *c, struct pgcmk_err *err)
{
    char *text = kes_metrics_text(c->s);

    PGCMK_UNUSED(err);
    pgcmk_resp_text(c->rs, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
    return 0;
}

static int
r_api(struct kes_ctx *c, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    kes_reply_json(c, kes_api_list(c->s));
    return 0;
}

/* ---- /v1/key/ -------------------------------------------------------------------------------- */

/* A keystore call failed: a 5xx goes to KES's error log with its cause, as KES logs it. */
static void
kes_store_failed(struct kes_ctx *c, const struct pgcmk_err *err)
{
    const char *why = pgcmk_kes_store_why();

    if (pgcmk_err_status(err->code) < 500)
        return;
    if (why && *why && strcmp(why, err->message) != 0)
        kes_error_log(c->s, "%s: %s", err->message, why);
    else
        kes_error_log(c->s, "%s", err->message);
}

static int
kes_key_get(struct kes_ctx *c, struct pgcmk_kes_key *k, struct pgcmk_err *err)
{
    if (pgcmk_kes_store_get(c->s->store, c->resource, k, err)) {
        kes_store_failed(c, err);
        return -1;
    }
    return 0;
}

static int
kes_key_store(struct kes_ctx *c, struct pgcmk_kes_key *k, struct pgcmk_err *err)
{
    int rc = pgcmk_kes_store_create(c->s->store, k, err);

    pgcmk_kes_key_wipe(k);
    if (rc) {
        kes_store_failed(c, err);
        return -1;
    }
    kes_event(c->s, PGCMK_EV_KES_KEY_CHANGED, c->resource);
    kes_reply_empty(c);
    return 0;
}

static int
r_key_create(struct kes_ctx *c, struct pgcmk_err *err)
{
    struct pgcmk_kes_key k;

    if (!pgcmk_kes_valid_name(c->resource, 0))
        return kes_bad_name("key name", c->resource, err);
    if (pgcmk_kes_key_new(&k, c->resource, PGCMK_KES_AES256, c->identity, err))
        return -1;
    return kes_key_store(c, &k, err);
}

static int
r_key_import(struct kes_ctx *c, struct pgcmk_err *err)
{
    struct pgcmk_kes_key k;
    json_t *body, *cipher;
    const char *cs;
    enum pgcmk_kes_cipher kind;
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc;

    if (!pgcmk_kes_valid_name(c->resource, 0))
        return kes_bad_name("key name", c->resource, err);
    body = kes_body(c);
    cipher = body ? kes_field(body, "cipher") : NULL;
    if (body == NULL || kes_bytes(body, "key", &bytes, &len) ||
        (cipher && !json_is_string(cipher) && !json_is_null(cipher))) {
        json_decref(body);
        return pgcmk_err_set(err, PGCMK_E_KES_BAD_REQUEST, NULL, "invalid import key request body");
    }
    cs = json_is_string(cipher) ? json_string_value(cipher) : "";
    if (strcmp(cs, "AES256") == 0 || strcmp(cs, "AES256-GCM_SHA256") == 0) {
        kind = PGCMK_KES_AES256;
    } else if (strcmp(cs, "ChaCha20") == 0 || strcmp(cs, "XCHACHA20-POLY1305") == 0) {
        kind = PGCMK_KES_CHACHA20;
    } else {
        pgcmk_err_set(err, PGCMK_E_KES_NOT_ACCEPTABLE, NULL, "algorithm '%.64s' is not supported",
                      cs);
        pgcmk_secret_free(bytes, len);
        json_decref(body);
        return -1;
    }
    if (len != 32) {
        pgcmk_err_set(err, PGCMK_E_KES_NOT_ACCEPTABLE, NULL, "invalid key size for '%.64s'", cs);
        pgcmk_secret_free(bytes, len);
        json_decref(body);
        return -1;
    }
    rc = pgcmk_kes_key_import(&k, c->resource, kind, bytes, len, c->identity, err);
    pgcmk_secret_free(bytes, len);
    json_decref(body);
    if (rc)
        return -1;
    return kes_key_store(c, &k, err);
}

static int
r_key_describe(struct kes_ctx *c, struct pgcmk_err *err)
{
    struct pgcmk_kes_key k;
    char at[PGCMK_TIME_LEN];
    json_t *o;

    if (!pgcmk_kes_valid_name(c->resource, 0))
        return kes_bad_name("key name", c->resource, err);
    if (kes_key_get(c, &k, err))
        return -1;
    kes_time(k.created_ms, at);
    o = json_pack("{s:s, s:s, s:s}", "name", c->resource, "algorithm",
                  k.cipher == PGCMK_KES_CHACHA20 ? "ChaCha20" : "AES256", "created_at", at);
    if (k.created_by[0])
        json_object_set_new(o, "created_by", json_string(k.created_by));
    pgcmk_kes_key_wipe(&k);
    kes_reply_json(c, o);
    return 0;
}

static int
r_key_list(struct kes_ctx *c, struct pgcmk_err *err)
{
    char prefix[96];
    json_t *names = NULL;
    size_t n;

    if (!pgcmk_kes_valid_name(c->resource, 1))
        return pgcmk_err_set(err, PGCMK_E_KES_BAD_REQUEST, NULL,
                             "listing pattern '%.100s' is empty, too long or is invalid",
                             c->resource);
    snprintf(prefix, sizeof(prefix), "%s", c->resource);
    n = strlen(prefix);
    if (n && prefix[n - 1] == '*')
        prefix[n - 1] = '\0';
    if (pgcmk_kes_store_list(c->s->store, prefix, &names, err)) {
        kes_store_failed(c, err);
        return -1;
    }
    kes_reply_json(c, json_pack("{s:o}", "names", names ? names : json_array()));
    return 0;
}

static int
r_key_delete(struct kes_ctx *c, struct pgcmk_err *err)
{
    if (!pgcmk_kes_valid_name(c->resource, 0))
        return kes_bad_name("key name", c->resource, err);
    if (pgcmk_kes_store_delete(c->s->store, c->resource, err)) {
        kes_store_failed(c, err);
        return -1;
    }
    kes_event(c->s, PGCMK_EV_KES_KEY_DELETED, c->resource);
    kes_reply_empty(c);
    return 0;
}

/* The body of encrypt, generate (optional), decrypt and hmac: the named []byte fields. */
static int
kes_crypto_body(struct kes_ctx *c, int optional, const char *f1, uint8_t **b1, size_t *l1,
                const char *f2, uint8_t **b2, size_t *l2, struct pgcmk_err *err)
{
    json_t *body;

    *b1 = *b2 = NULL;
    *l1 = *l2 = 0;
    if (optional && (c->rq->body == NULL || c->rq->body_len == 0))
        return 0;
    body = kes_body(c);
    if (body == NULL || (f1 && kes_bytes(body, f1, b1, l1)) ||
        (f2 && kes_bytes(body, f2, b2, l2))) {
        json_decref(body);
        pgcmk_secret_free(*b1, *l1);
        *b1 = NULL;
        *l1 = 0;
        return pgcmk_err_set(err, PGCMK_E_KES_BAD_REQUEST, NULL, "invalid request body");
    }
    json_decref(body);
    return 0;
}

static json_t *
kes_b64_json(const uint8_t *b, size_t n)
{
    char *s = pgcmk_b64_encode(b, n);
    json_t *j = json_string(s);

    pgcmk_secret_free(s, strlen(s));
    return j;
}

static int
r_key_encrypt(struct kes_ctx *c, struct pgcmk_err *err)
{
    struct pgcmk_kes_key k;
    uint8_t *pt, *ctx, *out = NULL;
    size_t pl, cl, ol = 0;
    int rc;

    if (!pgcmk_kes_valid_name(c->resource, 0))
        return kes_bad_name("key name", c->resource, err);
    if (kes_crypto_body(c, 0, "plaintext", &pt, &pl, "context", &ctx, &cl, err))
        return -1;
    rc = kes_key_get(c, &k, err);
    if (rc == 0) {
        rc = pgcmk_kes_encrypt(&k, pt, pl, ctx, cl, &out, &ol, err);
        pgcmk_kes_key_wipe(&k);
    }
    pgcmk_secret_free(pt, pl);
    free(ctx);
    if (rc)
        return -1;
    kes_reply_json(c, json_pack("{s:o}", "ciphertext", kes_b64_json(out, ol)));
    free(out);
    return 0;
}

static int
r_key_generate(struct kes_ctx *c, struct pgcmk_err *err)
{
    struct pgcmk_kes_key k;
    uint8_t *ctx, *unused, dek[32], *out = NULL;
    size_t cl, ul, ol = 0;
    int rc;

    if (!pgcmk_kes_valid_name(c->resource, 0))
        return kes_bad_name("key name", c->resource, err);
    if (kes_crypto_body(c, 1, "context", &ctx, &cl, NULL, &unused, &ul, err))
        return -1;
    rc = kes_key_get(c, &k, err);
    if (rc == 0) {
        if (pgcmk_random(dek, sizeof(dek)))
            rc =
                pgcmk_err_set(err, PGCMK_E_KES_INTERNAL, NULL, "failed to generate encryption key");
        else
            rc = pgcmk_kes_encrypt(&k, dek, sizeof(dek), ctx, cl, &out, &ol, err);
        pgcmk_kes_key_wipe(&k);
    }
    free(ctx);
    if (rc) {
        OPENSSL_cleanse(dek, sizeof(dek));
        return -1;
    }
    kes_reply_json(c, json_pack("{s:o, s:o}", "plaintext", kes_b64_json(dek, sizeof(dek)),
                                "ciphertext", kes_b64_json(out, ol)));
    OPENSSL_cleanse(dek, sizeof(dek));
    free(out);
    return 0;
}

static int
r_key_decrypt(struct kes_ctx *c, struct pgcmk_err *err)
{
    struct pgcmk_kes_key k;
    uint8_t *ct, *ctx, *out = NULL;
    size_t ctl, cl, ol = 0;
    int rc;

    if (!pgcmk_kes_valid_name(c->resource, 0))
        return kes_bad_name("key name", c->resource, err);
    if (kes_crypto_body(c, 0, "ciphertext", &ct, &ctl, "context", &ctx, &cl, err))
        return -1;
    rc = kes_key_get(c, &k, err);
    if (rc == 0) {
        rc = pgcmk_kes_decrypt(&k, ct, ctl, ctx, cl, &out, &ol, err);
        pgcmk_kes_key_wipe(&k);
    }
    free(ct);
    free(ctx);
    if (rc)
        return -1;
    kes_reply_json(c, json_pack("{s:o}", "plaintext", kes_b64_json(out, ol)));
    pgcmk_secret_free(out, ol);
    return 0;
}

static int
r_key_hmac(struct kes_ctx *c, struct pgcmk_err *err)
{
    struct pgcmk_kes_key k;
    uint8_t *msg, *unused, sum[32];
    size_t ml, ul;
    int rc;

    if (!pgcmk_kes_valid_name(c->resource, 0))
        return kes_bad_name("key name", c->resource, err);
    if (kes_crypto_body(c, 0, "message", &msg, &ml, NULL, &unused, &ul, err))
        return -1;
    rc = kes_key_get(c, &k, err);
    if (rc == 0) {
        rc = pgcmk_kes_hmac(&k, msg, ml, sum, err);
        pgcmk_kes_key_wipe(&k);
    }
    pgcmk_secret_free(msg, ml);
    if (rc)
        return -1;
    kes_reply_json(c, json_pack("{s:o}", "hmac", kes_b64_json(sum, sizeof(sum))));
    return 0;
}

/* ---- /v1/policy/, /v1/identity/ ---------------------------------------------------------- */

static const struct pgcmk_kes_policy_cfg *
kes_policy_named(const struct kes_server *s, const char *name)
{
    int i;

    for (i = 0; i < s->conf.n_policies; i++)
        if (strcmp(s->conf.policies[i].name, name) == 0)
            return &s->conf.policies[i];
    return NULL;
}

static int
kes_policy_lookup(struct kes_ctx *c, const struct pgcmk_kes_policy_cfg **p, struct pgcmk_err *err)
{
    if (!pgcmk_kes_valid_name(c->resource, 0))
        return kes_bad_name("policy name", c->resource, err);
    *p = kes_policy_named(c->s, c->resource);
    if (*p == NULL)
        return pgcmk_err_set(err, PGCMK_E_KES_NOT_FOUND, NULL, "policy does not exist");
    return 0;
}

static int
r_policy_describe(struct kes_ctx *c, struct pgcmk_err *err)
{
    const struct pgcmk_kes_policy_cfg *p;
    json_t *o;

    if (kes_policy_lookup(c, &p, err))
        return -1;
    o = kes_policy_json(c->s, p);
    json_object_del(o, "allow");
    json_object_del(o, "deny");
    kes_reply_json(c, o);
    return 0;
}

static int
r_policy_read(struct kes_ctx *c, struct pgcmk_err *err)
{
    const struct pgcmk_kes_policy_cfg *p;

    if (kes_policy_lookup(c, &p, err))
        return -1;
    kes_reply_json(c, kes_policy_json(c->s, p));
    return 0;
}

static int
kes_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A sorted JSON array of the names that start with the pattern's prefix. */
static json_t *
kes_sorted(const char **names, int n, const char *pattern)
{
    size_t pl = strlen(pattern);
    json_t *arr = json_array();
    int i;

    if (pl && pattern[pl - 1] == '*')
        pl--;
    qsort(names, (size_t)n, sizeof(*names), kes_cmp_str);
    for (i = 0; i < n; i++)
        if (strncmp(names[i], pattern, pl) == 0 && (i == 0 || strcmp(names[i], names[i - 1])))
            json_array_append_new(arr, json_string(names[i]));
    return arr;
}

static int
r_policy_list(struct kes_ctx *c, struct pgcmk_err *err)
{
    const char **names;
    int i;
    json_t *arr;

    if (!pgcmk_kes_valid_name(c->resource, 1))
        return pgcmk_err_set(err, PGCMK_E_KES_BAD_REQUEST, NULL,
                             "listing pattern '%.100s' is empty, too long or is invalid",
                             c->resource);
    names = pgcmk_xcalloc((size_t)c->s->conf.n_policies + 1, sizeof(*names));
    for (i = 0; i < c->s->conf.n_policies; i++)
        names[i] = c->s->conf.policies[i].name;
    arr = kes_sorted(names, c->s->conf.n_policies, c->resource);
    free(names);
    kes_reply_json(c, json_pack("{s:o, s:s}", "names", arr, "continue_at", ""));
    return 0;
}

static int
r_identity_describe(struct kes_ctx *c, struct pgcmk_err *err)
{
    const struct pgcmk_kes_policy_cfg *p;
    char at[PGCMK_TIME_LEN];
    json_t *o;

    if (!pgcmk_kes_valid_name(c->resource, 0))
        return kes_bad_name("identity", c->resource, err);
    kes_time(c->s->started_ms, at);
    if (kes_is_admin(c->s, c->resource)) {
        kes_reply_json(c, json_pack("{s:s, s:b, s:s}", "policy", "", "admin", 1, "created_at", at));
        return 0;
    }
    p = kes_policy_of(c->s, c->resource);
    if (p == NULL)
        return pgcmk_err_set(err, PGCMK_E_KES_NOT_FOUND, NULL, "identity does not exist");
    o = json_pack("{s:s, s:s}", "policy", p->name, "created_at", at);
    if (c->s->conf.admin[0])
        json_object_set_new(o, "created_by", json_string(c->s->conf.admin));
    kes_reply_json(c, o);
    return 0;
}

static int
r_identity_list(struct kes_ctx *c, struct pgcmk_err *err)
{
    const char **ids;
    int i, j, n = 0, cap = 1;
    json_t *arr;

    if (!pgcmk_kes_valid_name(c->resource, 1))
        return pgcmk_err_set(err, PGCMK_E_KES_BAD_REQUEST, NULL,
                             "listing pattern '%.100s' is empty, too long or is invalid",
                             c->resource);
    for (i = 0; i < c->s->conf.n_policies; i++)
        cap += c->s->conf.policies[i].n_identities;
    ids = pgcmk_xcalloc((size_t)cap, sizeof(*ids));
    if (c->s->conf.admin[0])
        ids[n++] = c->s->conf.admin;
    for (i = 0; i < c->s->conf.n_policies; i++)
        for (j = 0; j < c->s->conf.policies[i].n_identities; j++)
            ids[n++] = c->s->conf.policies[i].identities[j];
    arr = kes_sorted(ids, n, c->resource);
    free(ids);
    kes_reply_json(c, json_pack("{s:o, s:s}", "identities", arr, "continue_at", ""));
    return 0;
}

static int
r_identity_self(struct kes_ctx *c, struct pgcmk_err *err)
{
    const struct pgcmk_kes_policy_cfg *p;
    char at[PGCMK_TIME_LEN];
    json_t *o;

    kes_time(c->s->started_ms, at);
    if (c->identity[0] == '\0')
        return pgcmk_err_set(err, PGCMK_E_KES_BAD_REQUEST, NULL,
                             "tls: client certificate is required");
    if (kes_is_admin(c->s, c->identity)) {
        kes_reply_json(
            c, json_pack("{s:s, s:b, s:s}", "identity", c->identity, "admin", 1, "created_at", at));
        return 0;
    }
    p = kes_policy_of(c->s, c->identity);
    if (p == NULL)
        return pgcmk_err_set(err, PGCMK_E_KES_NOT_FOUND, NULL, "identity does not exist");
    o = json_pack("{s:s, s:s, s:o}", "identity", c->identity, "created_at", at, "policy",
                  kes_policy_json(c->s, p));
    if (c->s->conf.admin[0])
        json_object_set_new(o, "created_by", json_string(c->s->conf.admin));
    kes_reply_json(c, o);
    return 0;
}

/* ---- /v1/log/ ----------------------------------------------------------------------------- */

static int
r_log_audit(struct kes_ctx *c, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    kes_stream_audit(c->rs, c->s);
    return 0;
}

static int
r_log_error(struct kes_ctx *c, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    kes_stream_error(c->rs, c->s);
    return 0;
}

/* ---- the table and the dispatcher -------------------------------------------------------- */

static const struct kes_route kes_routes[] = {
    {"GET", "/version", 0, 10, KA_NONE, r_version},
    {"GET", "/v1/ready", 0, 15, KA_VERIFY, r_ready},
    {"GET", "/v1/status", 0, 15, KA_VERIFY, r_status},
    {"GET", "/v1/metrics", 0, 15, KA_VERIFY, r_metrics},
    {"GET", "/v1/api", 0, 10, KA_VERIFY, r_api},
    {"PUT", "/v1/key/create/", 0, 15, KA_VERIFY, r_key_create},
    {"PUT", "/v1/key/import/", KES_MB, 15, KA_VERIFY, r_key_import},
    {"GET", "/v1/key/describe/", 0, 15, KA_VERIFY, r_key_describe},
    {"GET", "/v1/key/list/", 0, 15, KA_VERIFY, r_key_list},
    {"DELETE", "/v1/key/delete/", 0, 15, KA_VERIFY, r_key_delete},
    {"PUT", "/v1/key/encrypt/", KES_MB, 15, KA_VERIFY, r_key_encrypt},
    {"PUT", "/v1/key/generate/", KES_MB, 15, KA_VERIFY, r_key_generate},
    {"PUT", "/v1/key/decrypt/", KES_MB, 15, KA_VERIFY, r_key_decrypt},
    {"PUT", "/v1/key/hmac/", KES_MB, 15, KA_VERIFY, r_key_hmac},
    {"GET", "/v1/policy/describe/", 0, 15, KA_VERIFY, r_policy_describe},
    {"GET", "/v1/policy/read/", 0, 15, KA_VERIFY, r_policy_read},
    {"GET", "/v1/policy/list/", 0, 15, KA_VERIFY, r_policy_list},
    {"GET", "/v1/identity/describe/", 0, 15, KA_VERIFY, r_identity_describe},
    {"GET", "/v1/identity/list/", 0, 15, KA_VERIFY, r_identity_list},
    {"GET", "/v1/identity/self/describe", 0, 15, KA_IDENTIFY, r_identity_self},
    {"GET", "/v1/log/error", 0, 0, KA_VERIFY, r_log_error},
    {"GET", "/v1/log/audit", 0, 0, KA_VERIFY, r_log_audit},
};

static const struct pgcmk_kes_api_cfg *
kes_api_cfg(const struct kes_server *s, const char *path)
{
    int i;

    for (i = 0; i < s->conf.n_apis; i++)
        if (strcmp(s->conf.apis[i].path, path) == 0)
            return &s->conf.apis[i];
    return NULL;
}

json_t *
kes_api_list(const struct kes_server *s)
{
    json_t *arr = json_array();
    size_t i;

    for (i = 0; i < PGCMK_ARRAY_LEN(kes_routes); i++) {
        const struct kes_route *r = &kes_routes[i];
        const struct pgcmk_kes_api_cfg *a = kes_api_cfg(s, r->path);
        json_int_t timeout = r->timeout_s;

        if (a && a->timeout_ms > 0)
            timeout = a->timeout_ms / 1000;
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:I}", "method", r->method, "path",
                                             r->path, "max_body", (json_int_t)r->max_body,
                                             "timeout", timeout));
    }
    return arr;
}

/* Go's ServeMux: an exact path, else the longest "/prefix/" route containing the path. */
static const struct kes_route *
kes_route_find(const char *path, int *redirect)
{
    const struct kes_route *best = NULL;
    size_t i, bl = 0;

    *redirect = 0;
    for (i = 0; i < PGCMK_ARRAY_LEN(kes_routes); i++) {
        const struct kes_route *r = &kes_routes[i];
        size_t l = strlen(r->path);

        if (r->path[l - 1] != '/') {
            if (strcmp(path, r->path) == 0)
                return r;
            continue;
        }
        if (strncmp(path, r->path, l) == 0 && l > bl) {
            best = r;
            bl = l;
        } else if (strlen(path) == l - 1 && strncmp(path, r->path, l - 1) == 0) {
            *redirect = 1;
            best = r;
            bl = l;
        }
    }
    return best;
}

/* auth.go identifyRequest: the one non-CA certificate's identity. */
static int
kes_identify(const struct pgcmk_req *rq, const char **identity, struct pgcmk_err *err)
{
    *identity = "";
    if (rq->peer == NULL || !rq->tls)
        return pgcmk_err_set(err, PGCMK_E_KES_BAD_REQUEST, NULL,
                             "insecure connection: TLS is required");
    if (rq->peer->n_leaf > 1)
        return pgcmk_err_set(err, PGCMK_E_KES_BAD_REQUEST, NULL,
                             "tls: received more than one client certificate");
    if (rq->peer->n_leaf == 0 || rq->peer->identity[0] == '\0')
        return pgcmk_err_set(err, PGCMK_E_KES_BAD_REQUEST, NULL,
                             "tls: client certificate is required");
    *identity = rq->peer->identity;
    return 0;
}

static int
kes_authorize(struct kes_server *s, const struct kes_route *r, const struct pgcmk_req *rq,
              const char **identity, struct pgcmk_err *err)
{
    const struct pgcmk_kes_api_cfg *a = kes_api_cfg(s, r->path);
    enum kes_auth auth = r->auth;
    const struct pgcmk_kes_policy_cfg *p;

    if (a && a->skip_auth && auth == KA_VERIFY)
        auth = KA_IDENTIFY;
    if (auth == KA_NONE)
        return 0;
    if (auth == KA_IDENTIFY) {
        struct pgcmk_err ignored;

        if (kes_identify(rq, identity, &ignored))
            *identity = "";
        return 0;
    }
    if (kes_identify(rq, identity, err))
        return -1;
    if (kes_is_admin(s, *identity))
        return 0;
    p = kes_policy_of(s, *identity);
    if (p == NULL || !pgcmk_kes_policy_allows(p, rq->path))
        return pgcmk_err_set(err, PGCMK_E_KES_NOT_ALLOWED, NULL,
                             "not authorized: insufficient permissions");
    return 0;
}

static int64_t
kes_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The request path keeps the trailing '/' it was sent with ("/v1/key/create/" is the route with
 * an empty name, "/v1/key/create" a redirect to it, as Go's ServeMux): pgcmk_req_init drops it,
 * and leaves room for it (the path's buffer is the raw path's length + 2). */
static void
kes_keep_slash(struct pgcmk_req *rq)
{
    size_t n = strlen(rq->path), rn = rq->raw_path ? strlen(rq->raw_path) : 0;

    if (rn > 1 && rq->raw_path[rn - 1] == '/' && n > 0 && n < rn && rq->path[n - 1] != '/') {
        rq->path[n] = '/';
        rq->path[n + 1] = '\0';
    }
}

void
kes_handle(struct pgcmk_req *rq, struct pgcmk_resp *rs, void *arg)
{
    struct kes_server *s = arg;
    struct pgcmk_err err;
    const struct kes_route *r;
    const char *identity = "";
    int64_t t0 = kes_now_us();
    int redirect, rc = -1;

    pgcmk_err_clear(&err);
    atomic_fetch_add(&s->req_active, 1);
    kes_keep_slash(rq);
    r = kes_route_find(rq->path, &redirect);
    if (rq->raw_path && strcasestr(rq->raw_path, "%00")) { /* the decoded path would end there */
        pgcmk_err_set(&err, PGCMK_E_KES_BAD_REQUEST, NULL, "invalid request path");
    } else if (r == NULL) {
        pgcmk_resp_text(rs, 404, "text/plain; charset=utf-8", "404 page not found\n", 19);
        rc = 0;
    } else if (redirect) {
        char *loc = pgcmk_xasprintf("%s/", rq->path);

        pgcmk_resp_header(rs, "Location", loc);
        free(loc);
        pgcmk_resp_text(rs, 301, "text/html; charset=utf-8", "", 0);
        rc = 0;
    } else if (strcmp(rq->method, r->method) != 0 &&
               !(strcmp(rq->method, "POST") == 0 && strcmp(r->method, "PUT") == 0)) {
        pgcmk_resp_header(rs, "Accept", r->method);
        pgcmk_err_set(&err, PGCMK_E_KES_METHOD, NULL, "received method '%.16s' expected '%s'",
                      rq->method, r->method);
    } else if (kes_authorize(s, r, rq, &identity, &err) == 0) {
        struct kes_ctx c = {s, rq, rs, rq->path + strlen(r->path), identity};
        const struct pgcmk_kes_api_cfg *a = kes_api_cfg(s, r->path);

        /* the route's timeout (api.<path>.timeout, else KES's) bounds its keystore calls */
        pgcmk_kes_store_set_timeout(a && a->timeout_ms > 0 ? a->timeout_ms
                                                           : (int64_t)r->timeout_s * 1000);
        rc = r->fn(&c, &err);
        pgcmk_kes_store_set_timeout(0);
    }
    if (rc)
        pgcmk_resp_error(rs, PGCMK_ENV_KES, &err);
    atomic_fetch_sub(&s->req_active, 1);
    if (rs->stream == NULL) {
        int64_t us = kes_now_us() - t0;

        kes_metrics_count(s, rs->status, us);
        if (r != NULL && r->fn != r_version)
            kes_audit(s, rq, identity, rs->status, us);
    }
}

void
kes_too_large(struct pgcmk_req *rq, struct pgcmk_resp *rs, void *arg)
{
    struct kes_server *s = arg;
    struct pgcmk_err err;

    pgcmk_err_set(&err, PGCMK_E_KES_TOO_LARGE, NULL, "http: request body too large");
    pgcmk_resp_error(rs, PGCMK_ENV_KES, &err);
    kes_metrics_count(s, rs->status, 0);
    kes_audit(s, rq, rq->peer ? rq->peer->identity : "", rs->status, 0);
}
