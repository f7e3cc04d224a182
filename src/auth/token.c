/* token.c - the token service: principals, client-credentials sign-in (ADFS-style and
 * tenant-style v1/v2), managed-identity tokens (IMDS and App Service styles), OIDC discovery,
 * JWKS, two Graph look-ups, and the bearer check installed into the HTTP pipeline.
 *
 * Tokens are JWTs signed RS256 with a key created on first start and kept sealed under the master
 * key. Their lifetime follows the wall clock (DESIGN.md 8): clients cache them by wall time. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "pgcmk/auth.h"
#include "pgcmk/crypto.h"
#include "pgcmk/log.h"
#include "pgcmk/pkey.h"
#include "pgcmk/wellknown.h"

#define AUTH_TOKEN_SECONDS 3599
#define AUTH_SKEW_SECONDS  300
#define AUTH_KEY_SETTING   "auth.signing_key"
#define KEYVAULT_APP_ID    "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"

static struct pgcmk_pkey *auth_key;
static char *auth_kid;
static _Atomic int auth_port;

struct principal {
    char oid[64], app_id[64], name[128], kind[32], secret_hash[80], resource_id[512];
};

static void
auth_hash_secret(const char *secret, char out[65])
{
    unsigned char md[32];

    pgcmk_sha256(secret, strlen(secret), md);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void
col_copy(char *out, size_t cap, sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);

    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static int
principal_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct principal *p = arg;

    PGCMK_UNUSED(err);
    col_copy(p->oid, sizeof(p->oid), st, 0);
    col_copy(p->app_id, sizeof(p->app_id), st, 1);
    col_copy(p->name, sizeof(p->name), st, 2);
    col_copy(p->kind, sizeof(p->kind), st, 3);
    col_copy(p->secret_hash, sizeof(p->secret_hash), st, 4);
    col_copy(p->resource_id, sizeof(p->resource_id), st, 5);
    return 1; /* the first match */
}

/* 1 found, 0 absent, -1 error (logged). */
static int
principal_load(enum pgcmk_stmt which, const char *value, struct principal *p)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, which);
    int n;

    memset(p, 0, sizeof(*p));
    sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
    n = pgcmk_db_each(db, st, principal_row, p, "read a principal", NULL);
    return n < 0 ? -1 : n > 0;
}

/* Which principals exist, for the bearer check: a token is good only while the principal it
 * names (oid) is a row of the principals table, so a deleted identity's tokens are refused, also
 * after a restart. The answer is cached per thread and kept valid by one process-wide
 * generation, as the vault's caches are (src/vault/keys.c): every principal write bumps
 * auth_gen inside its store transaction, before the COMMIT, and a fill reads the generation and
 * the row inside a transaction of its own, so the writer lock orders it wholly before or after
 * any writer. A hit costs an atomic load and a string compare. */
static atomic_ullong auth_gen = 1;

static void
auth_invalidate(void)
{
    atomic_fetch_add(&auth_gen, 1);
}

#define AUTH_TPRIN 16

static _Thread_local struct {
    char oid[64];
    unsigned long long gen; /* 0 = empty */
    int exists;
} auth_tprin[AUTH_TPRIN];

static _Thread_local unsigned auth_tprin_next;

struct prin_fill {
    const char *oid;
    unsigned long long gen;
    int exists;
};

static int
prin_fill_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct prin_fill *f = ctx;
    sqlite3_stmt *st;
    int n;

    f->gen = atomic_load(&auth_gen);
    st = pgcmk_db_stmt(db, PGCMK_STMT_PRINCIPAL_BY_OID);
    sqlite3_bind_text(st, 1, f->oid, -1, SQLITE_STATIC);
    n = pgcmk_db_each(db, st, NULL, NULL, "look up a principal", err);
    if (n < 0)
        return -1;
    f->exists = n > 0;
    return 0;
}

/* 1 when a principal with this object id exists, 0 when not, -1 on a store error. */
static int
auth_principal_exists(const char *oid, struct pgcmk_err *err)
{
    unsigned long long gen = atomic_load(&auth_gen);
    struct prin_fill f = {oid, 0, 0};
    unsigned i;

    if (oid[0] == '\0' || strlen(oid) >= sizeof(auth_tprin[0].oid))
        return 0;
    for (i = 0; i < AUTH_TPRIN; i++)
        if (auth_tprin[i].gen == gen && strcasecmp(auth_tprin[i].oid, oid) == 0)
            return auth_tprin[i].exists;
    if (pgcmk_db_tx(pgcmk_db(), prin_fill_tx, &f, err))
        return -1;
    i = auth_tprin_next++ % AUTH_TPRIN;
    snprintf(auth_tprin[i].oid, sizeof(auth_tprin[i].oid), "%s", oid);
    auth_tprin[i].gen = f.gen;
    auth_tprin[i].exists = f.exists;
    return f.exists;
}

static int
principal_insert(struct pgcmk_db *db, const char *oid, const char *app_id, const char *name,
                 const char *kind, const char *secret_hash, const char *resource_id,
                 struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PRINCIPAL_INSERT);

    auth_invalidate(); /* inside the caller's transaction, before its COMMIT */
    sqlite3_bind_text(st, 1, oid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, app_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, secret_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, resource_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, pgcmk_wall_ms());
    return pgcmk_db_each(db, st, NULL, NULL, "insert principal", err) < 0 ? -1 : 0;
}

int
pgcmk_auth_add_identity(struct pgcmk_db *db, const char *object_id, const char *client_id,
                        const char *name, const char *resource_id, struct pgcmk_err *err)
{
    return principal_insert(db, object_id, client_id, name, "ManagedIdentity", NULL, resource_id,
                            err);
}

int
pgcmk_auth_remove_identity(struct pgcmk_db *db, const char *resource_id, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PRINCIPAL_DELETE_RES);

    /* Tokens already issued to a deleted identity stop working at once, and after a restart
     * too: the bearer check asks whether the token's principal still exists. */
    auth_invalidate(); /* inside the caller's transaction, before its COMMIT */
    sqlite3_bind_text(st, 1, resource_id, -1, SQLITE_STATIC);
    return pgcmk_db_each(db, st, NULL, NULL, "delete principal", err) < 0 ? -1 : 0;
}

static char *
auth_issuer(void)
{
    return pgcmk_xasprintf("https://localhost:%d/%s/", auth_port, PGCMK_TENANT_ID);
}

/* Tokens are reused for the same principal and audience while they have more than 50 minutes
 * left, as the managed-identity endpoints do: signing is an RSA private-key operation. */
#define AUTH_REUSE_SECONDS (AUTH_TOKEN_SECONDS - 600)
#define AUTH_CACHE         256

static pthread_mutex_t auth_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static struct {
    unsigned char key[32]; /* SHA-256 of oid|aud */
    char *token;
    int64_t exp;
} auth_issued[AUTH_CACHE];

static struct {
    unsigned char key[32]; /* SHA-256 of the token */
    int aud;
    struct pgcmk_caller who;
    int64_t exp;
} auth_verified[AUTH_CACHE];

static unsigned
auth_slot(const unsigned char key[32])
{
    return ((unsigned)key[0] << 8 | key[1]) % AUTH_CACHE;
}

static char *
auth_issue_for(const struct principal *p, const char *audience, int64_t *expires_on)
{
    int64_t now = pgcmk_wall_ms() / 1000;
    char *iss, *tok, *ck;
    unsigned char key[32];
    unsigned slot;
    char uti[37];
    json_t *claims;

    ck = pgcmk_xasprintf("%s|%s", p->oid, audience);
    pgcmk_sha256(ck, strlen(ck), key);
    free(ck);
    slot = auth_slot(key);
    pthread_mutex_lock(&auth_cache_mu);
    if (auth_issued[slot].token && memcmp(auth_issued[slot].key, key, 32) == 0 &&
        auth_issued[slot].exp - now > AUTH_REUSE_SECONDS) {
        tok = pgcmk_xstrdup(auth_issued[slot].token);
        if (expires_on)
            *expires_on = auth_issued[slot].exp;
        pthread_mutex_unlock(&auth_cache_mu);
        return tok;
    }
    pthread_mutex_unlock(&auth_cache_mu);
    iss = auth_issuer();

    pgcmk_uuid(uti);
    claims = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                       "aud", audience, "iss", iss, "iat", (json_int_t)now, "nbf", (json_int_t)now,
                       "exp", (json_int_t)(now + AUTH_TOKEN_SECONDS), "tid", PGCMK_TENANT_ID, "oid",
                       p->oid, "sub", p->oid, "appid", p->app_id, "azp", p->app_id, "appidacr", "1",
                       "idtyp", "app", "ver", "1.0", "uti", uti);
    if (p->resource_id[0])
        json_object_set_new(claims, "xms_mirid", json_string(p->resource_id));
    tok = claims ? pgcmk_jwt_sign(auth_key, auth_kid, claims) : NULL;
    json_decref(claims);
    free(iss);
    if (expires_on)
        *expires_on = now + AUTH_TOKEN_SECONDS;
    if (tok) {
        pthread_mutex_lock(&auth_cache_mu);
        if (auth_issued[slot].token)
            pgcmk_secret_free(auth_issued[slot].token, strlen(auth_issued[slot].token));
        memcpy(auth_issued[slot].key, key, 32);
        auth_issued[slot].token = pgcmk_xstrdup(tok);
        auth_issued[slot].exp = now + AUTH_TOKEN_SECONDS;
        pthread_mutex_unlock(&auth_cache_mu);
    }
    return tok;
}

char *
pgcmk_auth_issue(const char *object_id, const char *audience, int64_t *expires_on)
{
    struct principal p;

    if (principal_load(PGCMK_STMT_PRINCIPAL_BY_OID, object_id, &p) != 1)
        return NULL;
    return auth_issue_for(&p, audience, expires_on);
}

/* Strips one trailing '/' for comparisons. */
static int
aud_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    while (la && a[la - 1] == '/')
        la--;
    while (lb && b[lb - 1] == '/')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

static int
auth_audience_ok(const char *aud, enum pgcmk_audience want)
{
    char local[96], local2[96];

    if (want == PGCMK_AUD_VAULT) {
        snprintf(local, sizeof(local), "https://vault.localhost:%d", auth_port);
        return aud_eq(aud, "https://vault.azure.net") || aud_eq(aud, local) ||
               aud_eq(aud, KEYVAULT_APP_ID);
    }
    snprintf(local, sizeof(local), "https://localhost:%d", auth_port);
    snprintf(local2, sizeof(local2), "https://127.0.0.1:%d", auth_port);
    return aud_eq(aud, "https://management.azure.com") ||
           aud_eq(aud, "https://management.core.windows.net") || aud_eq(aud, local) ||
           aud_eq(aud, local2);
}

/* The claims that name the caller: the tenant must be the emulator's, and the principal must
 * still exist (a deleted identity's token is refused, also after a restart). */
static int
auth_caller_ok(const struct pgcmk_caller *who, struct pgcmk_err *err)
{
    int found;

    if (strcasecmp(who->tid, PGCMK_TENANT_ID) != 0)
        return pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL,
                             "The access token is from the wrong tenant '%.64s'. It must match "
                             "the tenant '%s'.",
                             who->tid, PGCMK_TENANT_ID);
    found = auth_principal_exists(who->oid, err);
    if (found < 0)
        return -1;
    if (found == 0)
        return pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL,
                             "The identity '%.64s' of this access token does not exist (it has "
                             "been deleted).",
                             who->oid);
    return 0;
}

int
pgcmk_auth_verify(const char *token, enum pgcmk_audience aud, struct pgcmk_caller *who,
                  struct pgcmk_err *err)
{
    json_t *claims = NULL;
    int64_t now = pgcmk_wall_ms() / 1000;
    const char *v;
    char *iss, sts[96];
    unsigned char key[32];
    unsigned slot;
    int rc = -1;

    /* A token seen before (same bytes, same audience class) is not verified again. */
    pgcmk_sha256(token, strlen(token), key);
    slot = auth_slot(key);
    pthread_mutex_lock(&auth_cache_mu);
    if (auth_verified[slot].exp && memcmp(auth_verified[slot].key, key, 32) == 0 &&
        auth_verified[slot].aud == (int)aud && auth_verified[slot].exp + AUTH_SKEW_SECONDS >= now) {
        *who = auth_verified[slot].who;
        pthread_mutex_unlock(&auth_cache_mu);
        /* the signature is known good, but the principal may be gone since */
        return auth_caller_ok(who, err);
    }
    pthread_mutex_unlock(&auth_cache_mu);
    iss = auth_issuer();
    if (pgcmk_jwt_verify(auth_key, auth_kid, token, &claims, err))
        goto done;
    if (json_integer_value(json_object_get(claims, "exp")) + AUTH_SKEW_SECONDS < now) {
        pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL,
                      "The access token expiry UTC time is earlier than current UTC time.");
        goto done;
    }
    if (json_integer_value(json_object_get(claims, "nbf")) - AUTH_SKEW_SECONDS > now) {
        pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL, "The access token is not yet valid.");
        goto done;
    }
    v = json_string_value(json_object_get(claims, "iss"));
    snprintf(sts, sizeof(sts), "https://sts.windows.net/%s/", PGCMK_TENANT_ID);
    if (v == NULL || (strcmp(v, iss) != 0 && strcmp(v, sts) != 0)) {
        pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL,
                      "The access token has been obtained from wrong issuer '%.128s'. It must "
                      "match the tenant '%s'.",
                      v ? v : "", PGCMK_TENANT_ID);
        goto done;
    }
    v = json_string_value(json_object_get(claims, "aud"));
    if (v == NULL || !auth_audience_ok(v, aud)) {
        pgcmk_err_set(err, PGCMK_E_INVALID_TOKEN, NULL,
                      "The access token has an invalid audience '%.128s'.", v ? v : "");
        goto done;
    }
    snprintf(who->oid, sizeof(who->oid), "%s",
             json_string_value(json_object_get(claims, "oid")) ?: "");
    snprintf(who->tid, sizeof(who->tid), "%s",
             json_string_value(json_object_get(claims, "tid")) ?: "");
    snprintf(who->appid, sizeof(who->appid), "%s",
             json_string_value(json_object_get(claims, "appid")) ?: "");
    if (auth_caller_ok(who, err))
        goto done;
    pthread_mutex_lock(&auth_cache_mu);
    memcpy(auth_verified[slot].key, key, 32);
    auth_verified[slot].aud = (int)aud;
    auth_verified[slot].who = *who;
    auth_verified[slot].exp = json_integer_value(json_object_get(claims, "exp"));
    pthread_mutex_unlock(&auth_cache_mu);
    rc = 0;
done:
    json_decref(claims);
    free(iss);
    return rc;
}

/* The HTTP pipeline's bearer check for ARM routes. */
static int
auth_hook(struct pgcmk_req *rq, struct pgcmk_err *err)
{
    const char *h = pgcmk_req_header(rq, "Authorization");
    struct pgcmk_caller who;

    if (h == NULL || *h == '\0') {
        if (rq->cfg == NULL || rq->cfg->auth == PGCMK_AUTH_OPEN) {
            snprintf(rq->principal, sizeof(rq->principal), "%s", PGCMK_ADMIN_OBJECT_ID);
            return 0;
        }
        return pgcmk_err_set(err, PGCMK_E_UNAUTHENTICATED, NULL,
                             "Authentication failed. The 'Authorization' header is missing.");
    }
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return pgcmk_err_set(err, PGCMK_E_UNAUTHENTICATED, NULL,
                             "Authentication failed. The 'Authorization' header is provided in "
                             "an invalid format.");
    if (pgcmk_auth_verify(h + 7, PGCMK_AUD_ARM, &who, err))
        return -1;
    snprintf(rq->principal, sizeof(rq->principal), "%s", who.oid);
    return 0;
}

/* ---- token endpoints -------------------------------------------------------------------- */

/* A parameter from the form body, or else from the query string. Heap or NULL. */
static char *
auth_param(struct pgcmk_req *rq, const char *key)
{
    char *v = pgcmk_form_get(rq->body, rq->body_len, key);
    const char *q;

    if (v == NULL && (q = pgcmk_req_query(rq, key)) != NULL)
        v = pgcmk_xstrdup(q);
    return v;
}

/* "https://x//.default openid" -> "https://x/": the audience a client-credentials scope asks
 * for. It must be exactly one resource's "/.default" (AAD's rule); else NULL with err. */
static char *
auth_scope_audience(const char *scope, struct pgcmk_err *err)
{
    char buf[512], *save = NULL, *found = NULL;

    snprintf(buf, sizeof(buf), "%s", scope);
    for (char *s = strtok_r(buf, " ", &save); s; s = strtok_r(NULL, " ", &save)) {
        size_t n = strlen(s);

        if (!strcmp(s, "openid") || !strcmp(s, "profile") || !strcmp(s, "offline_access"))
            continue;
        if (n <= 9 || strcmp(s + n - 9, "/.default") != 0) {
            free(found);
            pgcmk_err_set(err, PGCMK_E_OAUTH_INVALID_SCOPE, NULL,
                          "AADSTS1002012: The provided value for scope %.128s is not valid. "
                          "Client credential flows must have a scope value with /.default "
                          "suffixed to the resource identifier (application ID URI).",
                          s);
            return NULL;
        }
        if (found) {
            free(found);
            pgcmk_err_set(err, PGCMK_E_OAUTH_INVALID_SCOPE, NULL,
                          "AADSTS28000: Provided value for the input parameter scope is not "
                          "valid because it contains more than one resource. Scope %.200s is not "
                          "valid.",
                          scope);
            return NULL;
        }
        s[n - 9] = '\0';
        found = pgcmk_xstrdup(s);
    }
    if (found == NULL)
        pgcmk_err_set(err, PGCMK_E_OAUTH_INVALID_SCOPE, NULL,
                      "AADSTS1002012: The provided value for scope %.128s is not valid.", scope);
    return found;
}

enum token_style { TOKEN_V2 = 0, TOKEN_V1 = 1 };

static int
auth_client_credentials(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err,
                        enum token_style style)
{
    char *grant = auth_param(rq, "grant_type"), *cid = auth_param(rq, "client_id");
    char *secret = auth_param(rq, "client_secret"), *scope = auth_param(rq, "scope");
    char *resource = auth_param(rq, "resource"), *aud = NULL, *tok = NULL, hash[65];
    struct principal p;
    int64_t exp = 0;
    int rc = -1;

    if (grant == NULL) {
        pgcmk_err_set(err, PGCMK_E_OAUTH_INVALID_REQUEST, NULL,
                      "AADSTS900144: The request body must contain the following parameter: "
                      "'grant_type'.");
        goto done;
    }
    if (strcmp(grant, "client_credentials") != 0) {
        pgcmk_err_set(err, PGCMK_E_OAUTH_UNSUPPORTED_GRANT, NULL,
                      "AADSTS70003: The app requested an unsupported grant type '%.32s'. This "
                      "emulator supports client_credentials.",
                      grant);
        goto done;
    }
    if (cid == NULL) {
        pgcmk_err_set(err, PGCMK_E_OAUTH_INVALID_REQUEST, NULL,
                      "AADSTS900144: The request body must contain the following parameter: "
                      "'client_id'.");
        goto done;
    }
    {
        const char *tenant = pgcmk_req_param(rq, "tenant");

        if (tenant && strcasecmp(tenant, PGCMK_TENANT_ID) != 0 && strcasecmp(tenant, "adfs") != 0) {
            pgcmk_err_set(err, PGCMK_E_OAUTH_INVALID_REQUEST, NULL,
                          "AADSTS90002: Tenant '%.64s' not found. Check to make sure you have "
                          "the correct tenant ID and are signing into the correct cloud.",
                          tenant);
            goto done;
        }
    }
    if (scope) {
        aud = auth_scope_audience(scope, err);
        if (aud == NULL)
            goto done;
    } else {
        aud = resource ? pgcmk_xstrdup(resource) : NULL;
    }
    if (aud == NULL) {
        pgcmk_err_set(err, PGCMK_E_OAUTH_INVALID_REQUEST, NULL,
                      "AADSTS900144: The request body must contain the following parameter: "
                      "'%s'.",
                      style == TOKEN_V1 ? "resource" : "scope");
        goto done;
    }
    if (secret == NULL) {
        pgcmk_err_set(err, PGCMK_E_OAUTH_INVALID_CLIENT, NULL,
                      "AADSTS7000218: The request body must contain the following parameter: "
                      "'client_assertion' or 'client_secret'.");
        goto done;
    }
    if (principal_load(PGCMK_STMT_PRINCIPAL_BY_APP, cid, &p) != 1) {
        pgcmk_err_set(err, PGCMK_E_OAUTH_UNAUTHORIZED_CLIENT, NULL,
                      "AADSTS700016: Application with identifier '%.64s' was not found in the "
                      "directory '%s'. This can happen if the application has not been installed "
                      "by the administrator of the tenant.",
                      cid, PGCMK_TENANT_ID);
        goto done;
    }
    auth_hash_secret(secret, hash);
    if (p.secret_hash[0] == '\0' || CRYPTO_memcmp(hash, p.secret_hash, 64) != 0) {
        pgcmk_err_set(err, PGCMK_E_OAUTH_INVALID_CLIENT, NULL,
                      "AADSTS7000215: Invalid client secret provided. Ensure the secret being "
                      "sent in the request is the client secret value, not the client secret ID, "
                      "for a secret added to app '%.64s'.",
                      cid);
        goto done;
    }
    tok = auth_issue_for(&p, aud, &exp);
    if (tok == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "could not sign a token");
        goto done;
    }
    if (style == TOKEN_V1) {
        char e[24], n[24], in[24];

        snprintf(e, sizeof(e), "%lld", (long long)exp);
        snprintf(n, sizeof(n), "%lld", (long long)(exp - AUTH_TOKEN_SECONDS));
        snprintf(in, sizeof(in), "%lld", (long long)(exp - pgcmk_wall_ms() / 1000));
        pgcmk_resp_json(rs, 200,
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "token_type", "Bearer",
                                  "expires_in", in, "ext_expires_in", in, "expires_on", e,
                                  "not_before", n, "resource", aud, "access_token", tok));
    } else {
        json_int_t in = exp - pgcmk_wall_ms() / 1000;

        pgcmk_resp_json(rs, 200,
                        json_pack("{s:s, s:I, s:I, s:s}", "token_type", "Bearer", "expires_in", in,
                                  "ext_expires_in", in, "access_token", tok));
    }
    rc = 0;
done:
    if (secret)
        pgcmk_secret_free(secret, strlen(secret));
    if (tok)
        pgcmk_secret_free(tok, strlen(tok));
    free(grant);
    free(cid);
    free(scope);
    free(resource);
    free(aud);
    return rc;
}

static int
auth_token_v2(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return auth_client_credentials(rq, rs, err, TOKEN_V2);
}

static int
auth_token_v1(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return auth_client_credentials(rq, rs, err, TOKEN_V1);
}

struct mi_count {
    int n;
    char only[64];
};

static int
mi_count_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct mi_count *c = arg;

    PGCMK_UNUSED(err);
    c->n = sqlite3_column_int(st, 0);
    col_copy(c->only, sizeof(c->only), st, 1);
    return 0;
}

/* Picks the managed identity by client_id, object_id/principal_id or mi_res_id; with none given,
 * the only managed identity there is. */
static int
auth_pick_identity(struct pgcmk_req *rq, struct principal *p, struct pgcmk_err *err)
{
    char *cid = auth_param(rq, "client_id"), *oid = auth_param(rq, "object_id");

    if (cid == NULL) /* the 2017-09-01 App Service protocol spells it clientid */
        cid = auth_param(rq, "clientid");
    char *pid = auth_param(rq, "principal_id"), *mri = auth_param(rq, "mi_res_id");
    int found = -1;

    if (cid)
        found = principal_load(PGCMK_STMT_PRINCIPAL_BY_APP, cid, p);
    else if (oid || pid)
        found = principal_load(PGCMK_STMT_PRINCIPAL_BY_OID, oid ? oid : pid, p);
    else if (mri)
        found = principal_load(PGCMK_STMT_PRINCIPAL_BY_RES, mri, p);
    else {
        struct pgcmk_db *db = pgcmk_db();
        struct mi_count c = {0, ""};

        if (pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_PRINCIPAL_COUNT_MI), mi_count_row, &c,
                          "count managed identities", err) < 0) {
            found = -2; /* err is set */
        } else if (c.n == 1)
            found = principal_load(PGCMK_STMT_PRINCIPAL_BY_OID, c.only, p);
        else {
            pgcmk_err_set(err, PGCMK_E_OAUTH_INVALID_REQUEST, NULL,
                          c.n ? "Multiple user assigned identities exist, please specify the "
                                "clientId / resourceId of the identity in the token request"
                              : "Identity not found");
            found = -2;
        }
    }
    if (found == 1 && strcmp(p->kind, "ManagedIdentity") != 0)
        found = 0;
    if (found == 0 || found == -1)
        pgcmk_err_set(err, PGCMK_E_OAUTH_INVALID_REQUEST, NULL, "Identity not found");
    free(cid);
    free(oid);
    free(pid);
    free(mri);
    return found == 1 ? 0 : -1;
}

static int
auth_mi_token(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err, int imds)
{
    char *resource = auth_param(rq, "resource"), *tok = NULL;
    char e[24], n[24], in[24];
    struct principal p;
    int64_t exp = 0;
    json_t *out;

    if (imds) {
        const char *md = pgcmk_req_header(rq, "Metadata");

        if (md == NULL || strcasecmp(md, "true") != 0) {
            free(resource);
            return pgcmk_err_set(err, PGCMK_E_IMDS_NO_METADATA, NULL,
                                 "Required metadata header not specified");
        }
    } else if (!pgcmk_req_header(rq, "X-IDENTITY-HEADER") && !pgcmk_req_header(rq, "Secret") &&
               !pgcmk_req_header(rq, "Metadata")) {
        free(resource);
        return pgcmk_err_set(err, PGCMK_E_IMDS_NO_METADATA, NULL,
                             "Required metadata header not specified");
    }
    if (resource == NULL) {
        return pgcmk_err_set(err, PGCMK_E_OAUTH_INVALID_REQUEST, NULL,
                             "Required query variable 'resource' is missing");
    }
    if (auth_pick_identity(rq, &p, err)) {
        free(resource);
        return -1;
    }
    tok = auth_issue_for(&p, resource, &exp);
    snprintf(e, sizeof(e), "%lld", (long long)exp);
    snprintf(n, sizeof(n), "%lld", (long long)(exp - AUTH_TOKEN_SECONDS));
    snprintf(in, sizeof(in), "%lld", (long long)(exp - pgcmk_wall_ms() / 1000));
    out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "access_token", tok ? tok : "",
                    "refresh_token", "", "expires_in", in, "expires_on", e, "not_before", n,
                    "resource", resource, "token_type", "Bearer", "client_id", p.app_id);
    pgcmk_resp_json(rs, 200, out);
    if (tok)
        pgcmk_secret_free(tok, strlen(tok));
    free(resource);
    return 0;
}

static int
auth_imds(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return auth_mi_token(rq, rs, err, 1);
}

static int
auth_msi(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return auth_mi_token(rq, rs, err, 0);
}

/* ---- discovery -------------------------------------------------------------------------- */

static int
auth_oidc(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *tenant = pgcmk_req_param(rq, "tenant");
    char *base = pgcmk_req_base_url(rq), *root, *issuer;
    json_t *o;

    PGCMK_UNUSED(err);
    if (tenant == NULL) { /* /adfs */
        root = pgcmk_xasprintf("%s/adfs", base);
        issuer = pgcmk_xstrdup(root);
    } else if (strstr(rq->path, "/v2.0/")) {
        root = pgcmk_xasprintf("%s/%s", base, tenant);
        issuer = pgcmk_xasprintf("%s/%s/v2.0", base, PGCMK_TENANT_ID);
    } else {
        root = pgcmk_xasprintf("%s/%s", base, tenant);
        issuer = pgcmk_xasprintf("https://sts.windows.net/%s/", PGCMK_TENANT_ID);
    }
    {
        const char *v = tenant && strstr(rq->path, "/v2.0/") ? "/v2.0" : "";
        char *authz = pgcmk_xasprintf("%s/oauth2%s/authorize", root, v);
        char *token = pgcmk_xasprintf("%s/oauth2%s/token", root, v);
        char *jwks = pgcmk_xasprintf("%s/discovery%s/keys", root, v);
        char *device = pgcmk_xasprintf("%s/oauth2%s/devicecode", root, v);
        char *logout = pgcmk_xasprintf("%s/oauth2%s/logout", root, v);

        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:[s], s:[s], s:[s], s:[s], s:s, "
                      "s:s, s:s, s:s}",
                      "issuer", issuer, "authorization_endpoint", authz, "token_endpoint", token,
                      "jwks_uri", jwks, "device_authorization_endpoint", device,
                      "end_session_endpoint", logout, "response_types_supported", "code",
                      "grant_types_supported", "client_credentials", "subject_types_supported",
                      "pairwise", "id_token_signing_alg_values_supported", "RS256",
                      "token_endpoint_auth_methods_supported", "client_secret_post",
                      "tenant_region_scope", "NA", "cloud_instance_name", "localhost",
                      "cloud_graph_host_name", "localhost", "msgraph_host", "localhost");
        free(authz);
        free(token);
        free(jwks);
        free(device);
        free(logout);
    }
    pgcmk_resp_json(rs, 200, o);
    free(root);
    free(issuer);
    free(base);
    return 0;
}

static int
auth_jwks(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(rq);
    PGCMK_UNUSED(err);
    pgcmk_resp_json(rs, 200,
                    json_pack("{s:[o]}", "keys", pgcmk_pkey_public_jwk(auth_key, auth_kid)));
    return 0;
}

/* ---- Graph: the two look-ups `az keyvault create` makes ---------------------------------- */

static int
graph_me(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(rq);
    PGCMK_UNUSED(rs);
    return pgcmk_err_set(err, PGCMK_E_GRAPH_NOT_FOUND, NULL,
                         "Resource 'me' does not exist or one of its queried reference-property "
                         "objects are not present.");
}

static int
graph_service_principals(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *filter = pgcmk_req_query(rq, "$filter");
    const char *q = filter ? strchr(filter, '\'') : NULL;
    char app[64] = "";
    struct principal p;
    json_t *value = json_array();

    PGCMK_UNUSED(err);
    if (q) {
        const char *end = strchr(q + 1, '\'');

        if (end && (size_t)(end - q - 1) < sizeof(app))
            snprintf(app, sizeof(app), "%.*s", (int)(end - q - 1), q + 1);
    }
    if (app[0] && principal_load(PGCMK_STMT_PRINCIPAL_BY_APP, app, &p) == 1)
        json_array_append_new(
            value,
            json_pack("{s:s, s:s, s:s, s:[s], s:s}", "id", p.oid, "appId", p.app_id, "displayName",
                      p.name, "servicePrincipalNames", p.app_id, "servicePrincipalType",
                      strcmp(p.kind, "ManagedIdentity") == 0 ? "ManagedIdentity" : "Application"));
    pgcmk_resp_json(rs, 200, json_pack("{s:o}", "value", value));
    return 0;
}

/* POST /emulator/principals {"displayName":"x"}: a service principal with a new secret. The
 * secret is shown once, in this answer; only its hash is stored. */
struct sp_new {
    char oid[37], app[37], secret[48], hash[65];
    const char *name;
};

static int
sp_new_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct sp_new *n = ctx;

    return principal_insert(db, n->oid, n->app, n->name, "ServicePrincipal", n->hash, NULL, err);
}

static int
auth_principal_create(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = json_string_value(json_object_get(rq->json, "displayName"));
    struct sp_new n;
    unsigned char raw[24];
    char *b64;

    if (name == NULL || *name == '\0' || strlen(name) > 120)
        return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "displayName",
                             "'displayName' is required (1 to 120 characters).");
    memset(&n, 0, sizeof(n));
    n.name = name;
    pgcmk_uuid(n.oid);
    pgcmk_uuid(n.app);
    if (pgcmk_random(raw, sizeof(raw)))
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "no randomness");
    b64 = pgcmk_b64url_encode(raw, sizeof(raw));
    snprintf(n.secret, sizeof(n.secret), "%s", b64);
    free(b64);
    auth_hash_secret(n.secret, n.hash);
    if (pgcmk_db_tx(pgcmk_db(), sp_new_tx, &n, err))
        return -1;
    pgcmk_resp_json(rs, 201,
                    json_pack("{s:s, s:s, s:s, s:s, s:s}", "objectId", n.oid, "appId", n.app,
                              "password", n.secret, "tenant", PGCMK_TENANT_ID, "displayName",
                              name));
    OPENSSL_cleanse(n.secret, sizeof(n.secret));
    return 0;
}

#define NA (ROUTE_F_NOAUTH | ROUTE_F_ANYBODY | ROUTE_F_ANYQUERY)
static const struct pgcmk_route auth_routes[] = {
    {"GET", "/adfs/.well-known/openid-configuration", PGCMK_PLANE_ARM, PGCMK_ENV_OAUTH, NA, NULL,
     auth_oidc},
    {"POST", "/adfs/oauth2/token", PGCMK_PLANE_ARM, PGCMK_ENV_OAUTH, NA, NULL, auth_token_v2},
    {"GET", "/adfs/discovery/keys", PGCMK_PLANE_ARM, PGCMK_ENV_OAUTH, NA, NULL, auth_jwks},
    {"GET", "/{tenant}/v2.0/.well-known/openid-configuration", PGCMK_PLANE_ARM, PGCMK_ENV_OAUTH, NA,
     NULL, auth_oidc},
    {"GET", "/{tenant}/.well-known/openid-configuration", PGCMK_PLANE_ARM, PGCMK_ENV_OAUTH, NA,
     NULL, auth_oidc},
    {"POST", "/{tenant}/oauth2/v2.0/token", PGCMK_PLANE_ARM, PGCMK_ENV_OAUTH, NA, NULL,
     auth_token_v2},
    {"POST", "/{tenant}/oauth2/token", PGCMK_PLANE_ARM, PGCMK_ENV_OAUTH, NA, NULL, auth_token_v1},
    {"GET", "/{tenant}/discovery/v2.0/keys", PGCMK_PLANE_ARM, PGCMK_ENV_OAUTH, NA, NULL, auth_jwks},
    {"GET", "/{tenant}/discovery/keys", PGCMK_PLANE_ARM, PGCMK_ENV_OAUTH, NA, NULL, auth_jwks},
    {"GET", "/metadata/identity/oauth2/token", PGCMK_PLANE_ARM, PGCMK_ENV_OAUTH, NA, NULL,
     auth_imds},
    {"GET", "/msi/token", PGCMK_PLANE_ARM, PGCMK_ENV_OAUTH, NA, NULL, auth_msi},
    {"POST", "/msi/token", PGCMK_PLANE_ARM, PGCMK_ENV_OAUTH, NA, NULL, auth_msi},
    {"GET", "/v1.0/me", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_ANYQUERY, NULL, graph_me},
    {"GET", "/v1.0/servicePrincipals", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_ANYQUERY, NULL,
     graph_service_principals},
    {"POST", "/emulator/principals", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON, NULL,
     auth_principal_create},
};
#undef NA

static int
auth_load_key(struct pgcmk_err *err)
{
    char *stored = NULL, *pem = NULL;
    unsigned char *sealed = NULL, *plain = NULL;
    size_t sealed_len = 0, plain_len = 0;
    int rc = pgcmk_store_setting_get(AUTH_KEY_SETTING, &stored);

    if (rc < 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot read the signing key");
    if (rc == 0) {
        if (pgcmk_b64_decode(stored, strlen(stored), &sealed, &sealed_len) ||
            pgcmk_store_unseal(sealed, sealed_len, AUTH_KEY_SETTING, &plain, &plain_len) ||
            pgcmk_pkey_from_pem((const char *)plain, plain_len, &auth_key)) {
            rc = pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                               "the token signing key cannot be unsealed (wrong master key?)");
            goto done;
        }
    } else {
        char *b64;

        if (pgcmk_pkey_rsa_new(2048, &auth_key) ||
            (pem = pgcmk_pkey_private_pem(auth_key)) == NULL ||
            pgcmk_store_seal(pem, strlen(pem), AUTH_KEY_SETTING, &sealed, &sealed_len)) {
            rc = pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot create the signing key");
            goto done;
        }
        b64 = pgcmk_b64_encode(sealed, sealed_len);
        rc = pgcmk_store_setting_put(AUTH_KEY_SETTING, b64, err);
        free(b64);
        if (rc)
            goto done;
    }
    auth_kid = pgcmk_pkey_thumbprint(auth_key);
    rc = auth_kid ? 0 : pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot name the signing key");
done:
    if (pem)
        pgcmk_secret_free(pem, strlen(pem));
    if (plain)
        pgcmk_secret_free(plain, plain_len);
    free(sealed);
    free(stored);
    return rc;
}

struct admin_seed {
    char hash[65];
};

static int
admin_seed_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct admin_seed *a = ctx;

    return principal_insert(db, PGCMK_ADMIN_OBJECT_ID, PGCMK_ADMIN_CLIENT_ID, "pgcmk-admin",
                            "ServicePrincipal", a->hash, NULL, err);
}

void
pgcmk_auth_set_port(int https_port)
{
    auth_port = https_port;
}

int
pgcmk_auth_init(struct pgcmk_err *err)
{
    struct admin_seed a;

    if (auth_key == NULL && auth_load_key(err))
        return -1;
    auth_hash_secret(PGCMK_ADMIN_CLIENT_SECRET, a.hash);
    if (pgcmk_db_tx(pgcmk_db(), admin_seed_tx, &a, err))
        return -1;
    pgcmk_router_add(auth_routes, PGCMK_ARRAY_LEN(auth_routes));
    pgcmk_http_set_auth(auth_hook);
    return 0;
}

void
pgcmk_auth_shutdown(void)
{
    for (int i = 0; i < AUTH_CACHE; i++) {
        if (auth_issued[i].token)
            pgcmk_secret_free(auth_issued[i].token, strlen(auth_issued[i].token));
        auth_issued[i].token = NULL;
    }
    pgcmk_pkey_free(auth_key);
    auth_key = NULL;
    free(auth_kid);
    auth_kid = NULL;
}
