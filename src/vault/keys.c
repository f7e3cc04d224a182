/* keys.c - the Key Vault data plane for keys: stored keys and their versions, the key bundles,
 * the key handlers (create, import, get, list, versions, update, delete, deleted keys, recover,
 * purge), the route table with the permission each route needs, and the ARM keys routes. The
 * admission runs before every handler (admission.c); private keys are sealed under the master
 * key. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/auth.h"
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/events.h"
#include "pgcmk/faults.h"
#include "pgcmk/keyvault.h"
#include "pgcmk/keyuri.h"
#include "pgcmk/log.h"
#include "pgcmk/schema.h"
#include "pgcmk/pkey.h"
#include "pgcmk/store.h"
#include "pgcmk/vault.h"
#include "pgcmk/wellknown.h"

#include "vault/internal.h"

static const char *const kv_all_ops[] = {"encrypt", "decrypt",   "sign", "verify",
                                         "wrapKey", "unwrapKey", NULL};

void
kv_ctx_release(struct kv_ctx *kc)
{
    json_decref(kc->vault_body);
    kc->vault_body = NULL;
}

char *
kv_base(const char *vault)
{
    return pgcmk_xasprintf("https://%s." PGCMK_VAULT_DNS_SUFFIX ":%d", vault, pgcmk_public_port());
}

void
kv_version_release(struct kv_version *v)
{
    json_decref(v->key_ops);
    json_decref(v->tags);
    json_decref(v->jwk);
    free(v->priv);
    memset(v, 0, sizeof(*v));
}

/* ---- stored keys ---------------------------------------------------------------------------- */

/* 1 found, 0 absent, -1 error. */
int
kv_key_load(struct pgcmk_db *db, const char *vault, const char *name, struct kv_key *k,
            struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_GET);
    int rc;

    memset(k, 0, sizeof(*k));
    sqlite3_bind_text(st, 1, vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(k->name, sizeof(k->name), "%s", sqlite3_column_text(st, 0));
        snprintf(k->current, sizeof(k->current), "%s", sqlite3_column_text(st, 1));
        k->deleted = sqlite3_column_type(st, 2) != SQLITE_NULL;
        k->deleted_at = sqlite3_column_int64(st, 2);
        k->purge_at = sqlite3_column_int64(st, 3);
        rc = 1;
    } else {
        rc = rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "read key", err);
    }
    pgcmk_db_done(st);
    return rc;
}

void
kv_version_from_row(sqlite3_stmt *st, struct kv_version *v)
{
    const void *blob = sqlite3_column_blob(st, 10);

    memset(v, 0, sizeof(*v));
    snprintf(v->version, sizeof(v->version), "%s", sqlite3_column_text(st, 0));
    snprintf(v->kty, sizeof(v->kty), "%s", sqlite3_column_text(st, 1));
    v->key_ops = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
    v->enabled = sqlite3_column_int(st, 3);
    v->nbf = sqlite3_column_int64(st, 4);
    v->exp = sqlite3_column_int64(st, 5);
    v->created = sqlite3_column_int64(st, 6);
    v->updated = sqlite3_column_int64(st, 7);
    v->tags = json_loads((const char *)sqlite3_column_text(st, 8), 0, NULL);
    v->jwk = json_loads((const char *)sqlite3_column_text(st, 9), 0, NULL);
    v->priv_len = (size_t)sqlite3_column_bytes(st, 10);
    v->priv = pgcmk_xmalloc(v->priv_len + 1);
    if (blob && v->priv_len)
        memcpy(v->priv, blob, v->priv_len);
}

int
kv_version_load(struct pgcmk_db *db, const char *vault, const char *name, const char *version,
                struct kv_version *v, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_GET);
    int rc;

    sqlite3_bind_text(st, 1, vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, version, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        kv_version_from_row(st, v);
        rc = 1;
    } else {
        rc = rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "read key version", err);
    }
    pgcmk_db_done(st);
    return rc;
}

int
kv_not_found(const char *name, const char *version, struct pgcmk_err *err)
{
    return pgcmk_err_set(err, PGCMK_E_KV_KEY_NOT_FOUND, NULL,
                         "A key with (name/id) %.127s%s%.40s was not found in this key vault. If "
                         "you recently deleted this key you may be able to recover it using the "
                         "correct recovery command. For help resolving this issue, please see "
                         "https://go.microsoft.com/fwlink/?linkid=2125182",
                         name, version && *version ? "/" : "", version ? version : "");
}

const char *
kv_recovery_level(const struct kv_ctx *kc)
{
    /* A retention shorter than 90 days makes the level "Customized" (Key Vault's enum). */
    if (kc->retention_days < 90)
        return kc->purge_protection ? "CustomizedRecoverable" : "CustomizedRecoverable+Purgeable";
    return kc->purge_protection ? "Recoverable" : "Recoverable+Purgeable";
}

json_t *
kv_attributes(const struct kv_ctx *kc, const struct kv_version *v)
{
    json_t *a = json_pack("{s:b, s:I, s:I, s:s, s:i, s:b}", "enabled", v->enabled, "created",
                          (json_int_t)(v->created / 1000), "updated",
                          (json_int_t)(v->updated / 1000), "recoveryLevel", kv_recovery_level(kc),
                          "recoverableDays", kc->retention_days, "exportable", 0);

    if (v->nbf)
        json_object_set_new(a, "nbf", json_integer(v->nbf));
    if (v->exp)
        json_object_set_new(a, "exp", json_integer(v->exp));
    return a;
}

json_t *
kv_bundle(const struct kv_ctx *kc, const char *name, const struct kv_version *v)
{
    char *base = kv_base(kc->vault),
         *kid = pgcmk_xasprintf("%s/keys/%s/%s", base, name, v->version);
    json_t *key = json_deep_copy(v->jwk);

    json_object_set_new(key, "kid", json_string(kid));
    json_object_set_new(key, "kty", json_string(v->kty));
    json_object_set(key, "key_ops", v->key_ops);
    free(kid);
    free(base);
    return json_pack("{s:o, s:o, s:o}", "key", key, "attributes", kv_attributes(kc, v), "tags",
                     v->tags ? json_incref(v->tags) : json_object());
}

json_t *
kv_deleted_bundle(const struct kv_ctx *kc, const struct kv_key *k, json_t *bundle)
{
    char *base = kv_base(kc->vault), *rid = pgcmk_xasprintf("%s/deletedkeys/%s", base, k->name);

    json_object_set_new(bundle, "recoveryId", json_string(rid));
    json_object_set_new(bundle, "deletedDate", json_integer(k->deleted_at / 1000));
    json_object_set_new(bundle, "scheduledPurgeDate", json_integer(k->purge_at / 1000));
    free(rid);
    free(base);
    return bundle;
}

/* ---- create, get, list, update ---------------------------------------------------------- */

int
kv_check_name(const char *name, struct pgcmk_err *err)
{
    size_t n = strlen(name);
    int ok = n >= 1 && n <= 127;

    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)name[i]) || name[i] == '-';
    return ok ? 0
              : pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                              "The key name '%.127s' is invalid: use 1-127 letters, digits and "
                              "dashes.",
                              name);
}

int
kv_parse_ops(json_t *ops, int ec, json_t **out, struct pgcmk_err *err)
{
    size_t i;
    json_t *v;

    if (ops == NULL || json_is_null(ops)) {
        *out = json_array();
        for (int k = 0; kv_all_ops[k]; k++)
            if (!ec || strcmp(kv_all_ops[k], "sign") == 0 || strcmp(kv_all_ops[k], "verify") == 0)
                json_array_append_new(*out, json_string(kv_all_ops[k]));
        return 0;
    }
    if (!json_is_array(ops))
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL, "key_ops must be an array.");
    *out = json_array();
    json_array_foreach(ops, i, v) {
        int ok = 0;

        for (int k = 0; json_is_string(v) && kv_all_ops[k]; k++)
            if (strcmp(json_string_value(v), kv_all_ops[k]) == 0)
                ok = 1;
        if (ok && ec && strcmp(json_string_value(v), "sign") != 0 &&
            strcmp(json_string_value(v), "verify") != 0)
            ok = 0;
        if (!ok) {
            json_decref(*out);
            *out = NULL;
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "Invalid key operation '%.32s'.",
                                 json_is_string(v) ? json_string_value(v) : "?");
        }
        json_array_append(*out, v);
    }
    return 0;
}

int
kv_parse_attrs(json_t *attrs, int *enabled, int64_t *nbf, int64_t *exp, struct pgcmk_err *err)
{
    json_t *v;

    if (attrs == NULL || json_is_null(attrs))
        return 0;
    if (!json_is_object(attrs))
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL, "attributes must be an object.");
    if ((v = json_object_get(attrs, "enabled")) && !json_is_null(v)) {
        if (!json_is_boolean(v))
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "attributes.enabled must be a boolean.");
        *enabled = json_is_true(v);
    }
    if ((v = json_object_get(attrs, "nbf")) && !json_is_null(v)) {
        if (!json_is_integer(v))
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "attributes.nbf must be seconds since the epoch.");
        *nbf = json_integer_value(v);
    }
    if ((v = json_object_get(attrs, "exp")) && !json_is_null(v)) {
        if (!json_is_integer(v))
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "attributes.exp must be seconds since the epoch.");
        *exp = json_integer_value(v);
    }
    return 0;
}

struct kv_create {
    struct kv_ctx *kc;
    const char *name;
    char version[33];
    const char *kty;
    json_t *ops, *tags;
    int enabled;
    int64_t nbf, exp;
    char *jwk;
    unsigned char *sealed;
    size_t sealed_len;
    int created_key;
};

static int
kv_create_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kv_create *c = ctx;
    struct kv_key k;
    sqlite3_stmt *st;
    char *ops = json_dumps(c->ops, JSON_COMPACT), *tags = json_dumps(c->tags, JSON_COMPACT);
    int64_t now = pgcmk_clock_now();
    int rc = kv_key_load(db, c->kc->vault, c->name, &k, err);

    pgcmk_vault_invalidate(); /* see the caches: before COMMIT, under the writer lock */
    if (rc < 0)
        goto out;
    if (rc == 1 && k.deleted) {
        rc = pgcmk_err_set(err, PGCMK_E_KV_DELETED_RECOVERABLE, NULL,
                           "Key %.127s is currently in a deleted but recoverable state, and its "
                           "name cannot be reused; in this state, the key can only be recovered "
                           "or purged.",
                           c->name);
        goto out;
    }
    st = pgcmk_db_stmt(db, rc == 1 ? PGCMK_STMT_KVKEY_SET_CURRENT : PGCMK_STMT_KVKEY_INSERT);
    sqlite3_bind_text(st, 1, c->kc->vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, rc == 1 ? k.name : c->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->version, -1, SQLITE_STATIC);
    if (rc == 0)
        sqlite3_bind_int64(st, 4, now);
    c->created_key = rc == 0;
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    if (rc != SQLITE_DONE) {
        rc = pgcmk_db_fail(db, rc, "write key", err);
        goto out;
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_INSERT);
    sqlite3_bind_text(st, 1, c->kc->vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->created_key ? c->name : k.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, c->kty, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, ops, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, c->enabled);
    if (c->nbf)
        sqlite3_bind_int64(st, 7, c->nbf);
    if (c->exp)
        sqlite3_bind_int64(st, 8, c->exp);
    sqlite3_bind_int64(st, 9, now);
    sqlite3_bind_text(st, 10, tags, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, c->jwk, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 12, c->sealed, (int)c->sealed_len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    rc = rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "write key version", err);
out:
    free(ops);
    free(tags);
    return rc;
}

int
kv_respond_version(struct pgcmk_resp *rs, struct kv_ctx *kc, const char *vault, const char *name,
                   const char *version, struct pgcmk_err *err)
{
    struct kv_version v;
    int rc = kv_version_load(pgcmk_db(), vault, name, version, &v, err);

    if (rc != 1)
        return rc < 0 ? -1 : kv_not_found(name, version, err);
    pgcmk_resp_json(rs, 200, kv_bundle(kc, name, &v));
    kv_version_release(&v);
    return 0;
}

void
kv_spec_release(struct kv_spec *sp)
{
    pgcmk_pkey_free(sp->imported);
    json_decref(sp->ops);
    json_decref(sp->tags);
    memset(sp, 0, sizeof(*sp));
}

/* Generates an RSA key, seals it and stores it as a new version of `name` (a new key when the
 * name is free). The version goes to version_out[33]. */
int
kv_new_version(struct kv_ctx *kc, const char *name, struct kv_spec *sp, char *version_out,
               int *created_key, struct pgcmk_err *err)
{
    struct kv_create c;
    struct pgcmk_pkey *pk = sp->imported;
    char *pem = NULL, aad[210], id[200], uuid[37];
    size_t j = 0;
    int rc = -1;

    memset(&c, 0, sizeof(c));
    c.kc = kc;
    c.name = name;
    c.kty = sp->kty;
    c.ops = sp->ops;
    c.tags = sp->tags;
    c.enabled = sp->enabled;
    c.nbf = sp->nbf;
    c.exp = sp->exp;
    pgcmk_uuid(uuid);
    for (size_t i = 0; uuid[i]; i++)
        if (uuid[i] != '-')
            c.version[j++] = uuid[i];
    c.version[j] = '\0';
    if ((pk == NULL && (strncmp(sp->kty, "EC", 2) == 0 ? pgcmk_pkey_ec_new(sp->crv, &pk)
                                                       : pgcmk_pkey_rsa_new(sp->bits, &pk))) ||
        (pem = pgcmk_pkey_private_pem(pk)) == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "key generation failed");
        goto out;
    }
    snprintf(id, sizeof(id), "%s/%s/%s", kc->vault, name, c.version);
    pgcmk_lower(id, sizeof(id), id);
    snprintf(aad, sizeof(aad), "kv:%.190s", id);
    {
        json_t *jwk = pgcmk_pkey_public_jwk(pk, NULL);

        c.jwk = json_dumps(jwk, JSON_COMPACT);
        json_decref(jwk);
    }
    if (pgcmk_store_seal(pem, strlen(pem), aad, &c.sealed, &c.sealed_len)) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "sealing the key failed");
        goto out;
    }
    if (pgcmk_db_tx(pgcmk_db(), kv_create_tx, &c, err))
        goto out;
    {
        struct pgcmk_event ev = {c.created_key ? PGCMK_EV_KEY_CREATED : PGCMK_EV_KEY_ROTATED,
                                 kc->vault,
                                 name,
                                 c.version,
                                 NULL,
                                 NULL};

        pgcmk_events_publish(&ev);
    }
    snprintf(version_out, 33, "%s", c.version);
    if (created_key)
        *created_key = c.created_key;
    rc = 0;
out:
    if (pem)
        pgcmk_secret_free(pem, strlen(pem));
    if (pk != sp->imported)
        pgcmk_pkey_free(pk);
    free(c.jwk);
    free(c.sealed);
    return rc;
}

/* Reads kty/size/ops/attributes/tags in either dialect: data plane (kty, key_size, key_ops,
 * attributes, tags) or ARM (properties.kty, keySize, keyOps, attributes; tags outside). */
int
kv_spec_parse(struct kv_ctx *kc, json_t *body, int arm, struct kv_spec *sp, struct pgcmk_err *err)
{
    json_t *src = arm ? json_object_get(body, "properties") : body;
    json_t *kty = json_object_get(src, "kty"),
           *size = json_object_get(src, arm ? "keySize" : "key_size");
    json_t *tags = json_object_get(body, "tags");
    struct pgcmk_vault_props vp;

    memset(sp, 0, sizeof(*sp));
    sp->bits = 2048;
    sp->enabled = 1;
    sp->kty = json_is_string(kty) ? json_string_value(kty) : (arm ? "RSA" : NULL);
    if (sp->kty == NULL || (strcmp(sp->kty, "RSA") != 0 && strcmp(sp->kty, "RSA-HSM") != 0 &&
                            strcmp(sp->kty, "EC") != 0 && strcmp(sp->kty, "EC-HSM") != 0))
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                             "The key type '%.16s' is not valid: use RSA, RSA-HSM, EC or EC-HSM.",
                             sp->kty ? sp->kty : "(missing)");
    if (strncmp(sp->kty, "EC", 2) == 0) {
        json_t *crv = json_object_get(src, arm ? "curveName" : "crv");

        sp->crv = json_is_string(crv) ? json_string_value(crv) : "P-256";
        if (strcmp(sp->crv, "P-256") != 0 && strcmp(sp->crv, "P-384") != 0 &&
            strcmp(sp->crv, "P-521") != 0)
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "The curve '%.16s' is not supported: use P-256, P-384 or P-521.",
                                 sp->crv);
        if (size && !json_is_null(size))
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "key_size does not apply to EC keys.");
    }
    pgcmk_keyvault_props(kc->vault_body, &vp);
    if (strstr(sp->kty, "-HSM") && !vp.premium)
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                             "%s keys need a premium vault; '%s' is standard.", sp->kty, kc->vault);
    if (sp->crv == NULL && size && !json_is_null(size)) {
        sp->bits = json_is_integer(size) ? (int)json_integer_value(size) : 0;
        if (sp->bits != 2048 && sp->bits != 3072 && sp->bits != 4096)
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "The key size %d is not supported. RSA keys are 2048, 3072 or "
                                 "4096 bits.",
                                 sp->bits);
    }
    if (json_object_get(src, "public_exponent") &&
        json_integer_value(json_object_get(src, "public_exponent")) != 65537)
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                             "Only the public exponent 65537 is supported.");
    if (kv_parse_ops(json_object_get(src, arm ? "keyOps" : "key_ops"), sp->crv != NULL, &sp->ops,
                     err) ||
        kv_parse_attrs(json_object_get(src, "attributes"), &sp->enabled, &sp->nbf, &sp->exp, err))
        return -1;
    sp->tags = json_is_object(tags) ? json_incref(tags) : json_object();
    return 0;
}

static int
kv_create(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = pgcmk_req_param(rq, "name");
    struct kv_ctx *kc = rq->admitted;
    struct kv_spec sp;
    char version[33];
    int rc = -1;

    memset(&sp, 0, sizeof(sp));
    if (kv_body(rq, err) || kv_check_name(name, err) || kv_spec_parse(kc, rq->json, 0, &sp, err) ||
        kv_new_version(kc, name, &sp, version, NULL, err))
        goto out;
    rc = kv_respond_version(rs, kc, kc->vault, name, version, err);
out:
    kv_spec_release(&sp);
    return rc;
}

/* PUT /keys/{name}: import a key as a new version. Key Vault takes a JWK with its private parts
 * ("key"); pgcmk also takes "pem" (PKCS#8 or traditional PEM) or "pfx" (base64 PKCS#12), each
 * with an optional "password", so that the seeds' PEM and .pfx paths work without a client-side
 * conversion. */
static int
kv_import(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = pgcmk_req_param(rq, "name");
    const char *pem;
    struct kv_ctx *kc = rq->admitted;
    struct kv_spec sp;
    json_t *jwk, *tags, *pub = NULL;
    char version[33];
    int rc = -1, hsm;

    memset(&sp, 0, sizeof(sp));
    if (kv_body(rq, err) || kv_check_name(name, err))
        goto out;
    jwk = json_object_get(rq->json, "key");
    pem = json_string_value(json_object_get(rq->json, "pem"));
    {
        const char *pfx = json_string_value(json_object_get(rq->json, "pfx"));
        const char *pw = json_string_value(json_object_get(rq->json, "password"));

        if (pem) {
            if (pgcmk_pkey_from_pem_password(pem, strlen(pem), pw, &sp.imported)) {
                pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                              "The PEM does not hold a private key (or the password is wrong).");
                goto out;
            }
        } else if (pfx) {
            unsigned char *der = NULL;
            size_t der_len = 0;

            if ((pgcmk_b64_decode(pfx, strlen(pfx), &der, &der_len) &&
                 pgcmk_b64url_decode(pfx, strlen(pfx), &der, &der_len)) ||
                pgcmk_pkey_from_pfx(der, der_len, pw, &sp.imported)) {
                if (der) /* imported key material */
                    pgcmk_secret_free(der, der_len);
                pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                              "The PFX could not be read (not base64 PKCS#12, or a wrong "
                              "password).");
                goto out;
            }
            pgcmk_secret_free(der, der_len);
        } else {
            const char *kty = json_string_value(json_object_get(jwk, "kty"));

            if (!json_is_object(jwk) || kty == NULL ||
                (strcmp(kty, "RSA") != 0 && strcmp(kty, "RSA-HSM") != 0)) {
                pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                              "The 'key' must be an RSA JSON Web Key with its private parts (or "
                              "give 'pem' or 'pfx').");
                goto out;
            }
            if (pgcmk_pkey_from_jwk(jwk, &sp.imported)) {
                pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                              "The JSON Web Key is not a valid RSA private key (n, e, d, p, q, "
                              "dp, dq and qi are required and must agree).");
                goto out;
            }
        }
    }
    hsm = json_is_true(json_object_get(rq->json, "Hsm"));
    sp.bits = pgcmk_pkey_bits(sp.imported);
    if (pgcmk_pkey_is_ec(sp.imported)) {
        pub = pgcmk_pkey_public_jwk(sp.imported, NULL);
        sp.crv = json_string_value(json_object_get(pub, "crv"));
        sp.kty = hsm ? "EC-HSM" : "EC";
        if (sp.crv == NULL) {
            pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                          "The EC key is not on P-256, P-384 or P-521.");
            goto out;
        }
    } else {
        sp.kty = hsm ? "RSA-HSM" : "RSA";
        if (sp.bits != 2048 && sp.bits != 3072 && sp.bits != 4096) {
            pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                          "The key size %d is not supported. RSA keys are 2048, 3072 or 4096 "
                          "bits.",
                          sp.bits);
            goto out;
        }
    }
    sp.enabled = 1;
    if (kv_parse_ops(json_object_get(jwk, "key_ops"), sp.crv != NULL, &sp.ops, err) ||
        kv_parse_attrs(json_object_get(rq->json, "attributes"), &sp.enabled, &sp.nbf, &sp.exp, err))
        goto out;
    tags = json_object_get(rq->json, "tags");
    sp.tags = json_is_object(tags) ? json_incref(tags) : json_object();
    if (kv_new_version(kc, name, &sp, version, NULL, err))
        goto out;
    rc = kv_respond_version(rs, kc, kc->vault, name, version, err);
out:
    kv_spec_release(&sp);
    json_decref(pub);
    return rc;
}

static int
kv_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx *kc = rq->admitted;
    struct kv_key k;
    struct kv_version v;
    int rc = -1;

    memset(&v, 0, sizeof(v));
    if (kv_resolve(kc, pgcmk_req_param(rq, "name"), pgcmk_req_param(rq, "version"), &k, &v, err) ==
        0) {
        pgcmk_resp_json(rs, 200, kv_bundle(kc, k.name, &v));
        rc = 0;
    }
    kv_version_release(&v);
    return rc;
}

static json_t *
kv_item(const struct kv_ctx *kc, const char *name, const struct kv_version *v, int versioned)
{
    char *base = kv_base(kc->vault);
    char *kid = versioned ? pgcmk_xasprintf("%s/keys/%s/%s", base, name, v->version)
                          : pgcmk_xasprintf("%s/keys/%s", base, name);
    json_t *o = json_pack("{s:s, s:o, s:o}", "kid", kid, "attributes", kv_attributes(kc, v), "tags",
                          v->tags ? json_incref(v->tags) : json_object());

    free(kid);
    free(base);
    return o;
}

/* Pages by maxresults (1..25) and $skiptoken, with an absolute nextLink on the vault host. */
static int
kv_page(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct kv_ctx *kc, json_t *items,
        struct pgcmk_err *err)
{
    const char *mr = pgcmk_req_query(rq, "maxresults"), *skip = pgcmk_req_query(rq, "$skiptoken");
    long max = KV_MAX_RESULTS, start = 0, total = (long)json_array_size(items);
    json_t *value = json_array(), *out;
    char *end;

    if (mr && *mr) {
        max = strtol(mr, &end, 10);
        if (*end || max < 1 || max > KV_MAX_RESULTS) {
            json_decref(items);
            json_decref(value);
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "maxresults must be between 1 and 25.");
        }
    }
    if (skip && *skip) {
        start = strtol(skip, &end, 10);
        if (*end || start < 0 || start > total)
            start = total;
    }
    for (long i = start; i < total && i < start + max; i++)
        json_array_append(value, json_array_get(items, (size_t)i));
    out = json_pack("{s:o, s:n}", "value", value, "nextLink");
    if (start + max < total) {
        char *base = kv_base(kc->vault);
        char *next = pgcmk_xasprintf("%s%s?api-version=%s&$skiptoken=%ld&maxresults=%ld", base,
                                     rq->path, rq->api_version, start + max, max);

        json_object_set_new(out, "nextLink", json_string(next));
        free(next);
        free(base);
    }
    json_decref(items);
    pgcmk_resp_json(rs, 200, out);
    return 0;
}

/* pgcmk_db_each row: a key of the vault (name, current version, deletion dates). */
static int
kv_key_list_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    json_array_append_new(arg, json_pack("{s:s, s:s, s:I, s:I}", "name", sqlite3_column_text(st, 0),
                                         "current", sqlite3_column_text(st, 1), "deleted",
                                         (json_int_t)sqlite3_column_int64(st, 2), "purge",
                                         (json_int_t)sqlite3_column_int64(st, 3)));
    return 0;
}

struct kv_version_rows {
    const struct kv_ctx *kc;
    const char *name;
    json_t *out;
    int bundles; /* 1: kv_bundle (for the ARM side), 0: the list item */
};

/* pgcmk_db_each row: one version of a key (KVVER_LIST). */
static int
kv_version_list_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct kv_version_rows *vr = arg;
    struct kv_version v;

    PGCMK_UNUSED(err);
    kv_version_from_row(st, &v);
    json_array_append_new(vr->out, vr->bundles ? kv_bundle(vr->kc, vr->name, &v)
                                               : kv_item(vr->kc, vr->name, &v, 1));
    kv_version_release(&v);
    return 0;
}

/* Lists live (deleted = 0) or deleted keys. */
static int
kv_list_keys(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err, int deleted)
{
    struct pgcmk_db *db;
    struct kv_ctx *kc = rq->admitted;
    sqlite3_stmt *st;
    json_t *items, *names;
    size_t i;
    json_t *n;
    int rc;

    db = pgcmk_db();
    names = json_array();
    st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_LIST);
    sqlite3_bind_text(st, 1, kc->vault, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, !deleted);
    if (pgcmk_db_each(db, st, kv_key_list_row, names, "list keys", err) < 0) {
        json_decref(names);
        return -1;
    }
    items = json_array();
    json_array_foreach(names, i, n) {
        struct kv_version v;
        const char *name = json_string_value(json_object_get(n, "name"));

        if (kv_version_load(db, kc->vault, name, json_string_value(json_object_get(n, "current")),
                            &v, err) == 1) {
            json_t *item = kv_item(kc, name, &v, 0);

            if (deleted) {
                struct kv_key k;

                memset(&k, 0, sizeof(k));
                snprintf(k.name, sizeof(k.name), "%s", name);
                k.deleted_at = json_integer_value(json_object_get(n, "deleted"));
                k.purge_at = json_integer_value(json_object_get(n, "purge"));
                kv_deleted_bundle(kc, &k, item);
            }
            json_array_append_new(items, item);
            kv_version_release(&v);
        }
    }
    json_decref(names);
    rc = kv_page(rq, rs, kc, items, err);
    return rc;
}

static int
kv_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return kv_list_keys(rq, rs, err, 0);
}

static int
kv_list_deleted(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return kv_list_keys(rq, rs, err, 1);
}

static int
kv_versions(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = pgcmk_req_param(rq, "name");
    struct pgcmk_db *db;
    struct kv_ctx *kc = rq->admitted;
    struct kv_key k;
    sqlite3_stmt *st;
    json_t *items;
    int rc;

    db = pgcmk_db();
    rc = kv_key_load(db, kc->vault, name, &k, err);
    if (rc != 1 || k.deleted) {
        return rc < 0 ? -1 : kv_not_found(name, NULL, err);
    }
    items = json_array();
    st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_LIST);
    sqlite3_bind_text(st, 1, kc->vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    {
        struct kv_version_rows vr = {kc, k.name, items, 0};

        if (pgcmk_db_each(db, st, kv_version_list_row, &vr, "list key versions", err) < 0) {
            json_decref(items);
            return -1;
        }
    }
    rc = kv_page(rq, rs, kc, items, err);
    return rc;
}

struct kv_update {
    struct kv_ctx *kc;
    const char *name;
    struct kv_version *v;
};

static int
kv_update_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kv_update *u = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_UPDATE);
    char *ops = json_dumps(u->v->key_ops, JSON_COMPACT),
         *tags = json_dumps(u->v->tags, JSON_COMPACT);
    int rc;

    pgcmk_vault_invalidate(); /* see the caches: before COMMIT, under the writer lock */
    sqlite3_bind_text(st, 1, u->kc->vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, u->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, u->v->version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, ops, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, u->v->enabled);
    if (u->v->nbf)
        sqlite3_bind_int64(st, 6, u->v->nbf);
    if (u->v->exp)
        sqlite3_bind_int64(st, 7, u->v->exp);
    sqlite3_bind_int64(st, 8, u->v->updated);
    sqlite3_bind_text(st, 9, tags, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    free(ops);
    free(tags);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "update key", err);
}

static int
kv_update(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx *kc = rq->admitted;
    struct kv_key k;
    struct kv_version v;
    json_t *ops = NULL, *tags;
    int was_enabled, rc = -1;

    memset(&v, 0, sizeof(v));
    if (kv_body(rq, err) ||
        kv_resolve(kc, pgcmk_req_param(rq, "name"), pgcmk_req_param(rq, "version"), &k, &v, err))
        goto out;
    was_enabled = v.enabled;
    if (json_object_get(rq->json, "key_ops")) {
        if (kv_parse_ops(json_object_get(rq->json, "key_ops"), strncmp(v.kty, "EC", 2) == 0, &ops,
                         err))
            goto out;
        json_decref(v.key_ops);
        v.key_ops = ops;
    }
    if (kv_parse_attrs(json_object_get(rq->json, "attributes"), &v.enabled, &v.nbf, &v.exp, err))
        goto out;
    tags = json_object_get(rq->json, "tags");
    if (json_is_object(tags)) {
        json_decref(v.tags);
        v.tags = json_incref(tags);
    }
    v.updated = pgcmk_clock_now();
    {
        struct kv_update u = {kc, k.name, &v};

        if (pgcmk_db_tx(pgcmk_db(), kv_update_tx, &u, err))
            goto out;
    }
    {
        struct pgcmk_event ev = {was_enabled && !v.enabled   ? PGCMK_EV_KEY_DISABLED
                                 : !was_enabled && v.enabled ? PGCMK_EV_KEY_ENABLED
                                                             : PGCMK_EV_KEY_UPDATED,
                                 kc->vault,
                                 k.name,
                                 v.version,
                                 NULL,
                                 NULL};

        pgcmk_events_publish(&ev);
    }
    pgcmk_resp_json(rs, 200, kv_bundle(kc, k.name, &v));
    rc = 0;
out:
    kv_version_release(&v);
    return rc;
}

/* ---- delete, deleted keys, recover, purge ------------------------------------------------ */
int
kv_state_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kv_state *s = ctx;
    sqlite3_stmt *st;
    int rc;

    pgcmk_vault_invalidate(); /* see the caches: before COMMIT, under the writer lock */
    if (s->purge) {
        st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_DELETE_KEY);
        sqlite3_bind_text(st, 1, s->kc->vault, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        pgcmk_db_done(st);
        if (rc != SQLITE_DONE)
            return pgcmk_db_fail(db, rc, "purge key versions", err);
        st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_DELETE);
        sqlite3_bind_text(st, 1, s->kc->vault, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->name, -1, SQLITE_STATIC);
    } else {
        st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_SET_DELETED);
        sqlite3_bind_text(st, 1, s->kc->vault, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->name, -1, SQLITE_STATIC);
        if (s->deleted_at) {
            sqlite3_bind_int64(st, 3, s->deleted_at);
            sqlite3_bind_int64(st, 4, s->purge_at);
        }
    }
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "change key state", err);
}

static int
kv_delete(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = pgcmk_req_param(rq, "name");
    struct kv_ctx *kc = rq->admitted;
    struct kv_key k;
    struct kv_version v;
    struct kv_state s;
    int rc = -1;

    memset(&v, 0, sizeof(v));
    if (kv_resolve(kc, name, NULL, &k, &v, err))
        goto out;
    s = (struct kv_state){kc, k.name, pgcmk_clock_now(), 0, 0};
    s.purge_at = s.deleted_at + (int64_t)kc->retention_days * DAY_MS;
    if (pgcmk_db_tx(pgcmk_db(), kv_state_tx, &s, err))
        goto out;
    k.deleted_at = s.deleted_at;
    k.purge_at = s.purge_at;
    {
        struct pgcmk_event ev = {PGCMK_EV_KEY_DELETED, kc->vault, k.name, NULL, NULL, NULL};

        pgcmk_events_publish(&ev);
    }
    pgcmk_resp_json(rs, 200, kv_deleted_bundle(kc, &k, kv_bundle(kc, k.name, &v)));
    rc = 0;
out:
    kv_version_release(&v);
    return rc;
}

/* A deleted key and its current version. */
static int
kv_resolve_deleted(struct kv_ctx *kc, const char *name, struct kv_key *k, struct kv_version *v,
                   struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    int rc = kv_key_load(db, kc->vault, name, k, err);

    if (rc < 0)
        return -1;
    if (rc == 0 || !k->deleted)
        return pgcmk_err_set(err, PGCMK_E_KV_KEY_NOT_FOUND, NULL, "Deleted Key not found: %.127s",
                             name);
    return kv_version_load(db, kc->vault, k->name, k->current, v, err) == 1 ? 0 : -1;
}

static int
kv_get_deleted(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx *kc = rq->admitted;
    struct kv_key k;
    struct kv_version v;
    int rc = -1;

    memset(&v, 0, sizeof(v));
    if (kv_resolve_deleted(kc, pgcmk_req_param(rq, "name"), &k, &v, err) == 0) {
        pgcmk_resp_json(rs, 200, kv_deleted_bundle(kc, &k, kv_bundle(kc, k.name, &v)));
        rc = 0;
    }
    kv_version_release(&v);
    return rc;
}

/* Recover (purge == 0) or purge a deleted key: both admit, resolve the deleted key, change its
 * state in one transaction and publish the event. */
static int
kv_deleted_action(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err, int purge)
{
    struct kv_ctx *kc = rq->admitted;
    struct kv_key k;
    struct kv_version v;
    struct kv_state s;
    int rc = -1;

    memset(&v, 0, sizeof(v));
    if (kv_resolve_deleted(kc, pgcmk_req_param(rq, "name"), &k, &v, err))
        goto out;
    if (purge && kc->purge_protection) {
        pgcmk_err_set(err, PGCMK_E_KV_PURGE_PROTECTED, NULL,
                      "Operation \"purge\" is not allowed because purge protection is enabled "
                      "for this vault. Key Vault service will automatically purge it after the "
                      "retention period has passed.");
        goto out;
    }
    s = (struct kv_state){kc, k.name, 0, 0, purge};
    if (pgcmk_db_tx(pgcmk_db(), kv_state_tx, &s, err))
        goto out;
    {
        struct pgcmk_event ev = {purge ? PGCMK_EV_KEY_PURGED : PGCMK_EV_KEY_RECOVERED,
                                 kc->vault,
                                 k.name,
                                 NULL,
                                 NULL,
                                 NULL};

        pgcmk_events_publish(&ev);
    }
    if (purge)
        pgcmk_resp_empty(rs, 204);
    else
        pgcmk_resp_json(rs, 200, kv_bundle(kc, k.name, &v));
    rc = 0;
out:
    kv_version_release(&v);
    return rc;
}

static int
kv_recover(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return kv_deleted_action(rq, rs, err, 0);
}

static int
kv_purge(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return kv_deleted_action(rq, rs, err, 1);
}

/* ---- for the ARM provider of Microsoft.KeyVault/vaults/keys (src/providers/keyvault_keys.c) ----
 */

/* A data-plane context for a vault given by its ARM body (no caller: ARM already checked). */
static int
kv_ctx_from_body(const json_t *vault_body, struct kv_ctx *kc, struct pgcmk_err *err)
{
    const char *name = json_string_value(json_object_get(vault_body, "name"));
    struct pgcmk_vault_props vp;

    memset(kc, 0, sizeof(*kc));
    if (!name)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "a stored vault has no name");
    pgcmk_lower(kc->vault, sizeof(kc->vault), name);
    kc->vault_body = json_incref((json_t *)vault_body);
    pgcmk_keyvault_props(kc->vault_body, &vp);
    kc->purge_protection = vp.purge_protection;
    kc->retention_days = vp.retention_days;
    return 0;
}

int
pgcmk_vault_key_get(const json_t *vault_body, const char *name, const char *version,
                    json_t **bundle, struct pgcmk_err *err)
{
    struct kv_ctx kc;
    struct kv_key k;
    struct kv_version v;
    int rc;

    *bundle = NULL;
    memset(&v, 0, sizeof(v));
    if (kv_ctx_from_body(vault_body, &kc, err))
        return -1;
    rc = kv_key_load(pgcmk_db(), kc.vault, name, &k, err);
    if (rc == 1 && k.deleted)
        rc = 0;
    if (rc == 1)
        rc = kv_version_load(pgcmk_db(), kc.vault, k.name, version ? version : k.current, &v, err);
    if (rc == 1)
        *bundle = kv_bundle(&kc, k.name, &v);
    kv_version_release(&v);
    kv_ctx_release(&kc);
    return rc;
}

int
pgcmk_vault_key_list(const json_t *vault_body, const char *name, json_t **bundles,
                     struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    struct kv_ctx kc;
    struct kv_key k;
    sqlite3_stmt *st;
    int rc = 1;

    *bundles = NULL;
    if (kv_ctx_from_body(vault_body, &kc, err))
        return -1;
    *bundles = json_array();
    if (name) { /* versions of one key */
        rc = kv_key_load(db, kc.vault, name, &k, err);
        if (rc == 1 && k.deleted)
            rc = 0;
        if (rc == 1) {
            st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_LIST);
            sqlite3_bind_text(st, 1, kc.vault, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, k.name, -1, SQLITE_STATIC);
            struct kv_version_rows vr = {&kc, k.name, *bundles, 1};

            if (pgcmk_db_each(db, st, kv_version_list_row, &vr, "list key versions", err) < 0)
                rc = -1;
        }
    } else {
        json_t *names = json_array(), *n;
        size_t i;

        st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_LIST);
        sqlite3_bind_text(st, 1, kc.vault, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, 1);
        if (pgcmk_db_each(db, st, pgcmk_db_collect_row, names, "list keys", err) < 0)
            rc = -1;
        json_array_foreach(names, i, n) {
            struct kv_version v;
            const char *kn = json_string_value(json_array_get(n, 0));

            if (kv_version_load(db, kc.vault, kn, json_string_value(json_array_get(n, 1)), &v,
                                err) == 1) {
                json_array_append_new(*bundles, kv_bundle(&kc, kn, &v));
                kv_version_release(&v);
            }
        }
        json_decref(names);
    }
    if (rc != 1) {
        json_decref(*bundles);
        *bundles = NULL;
    }
    kv_ctx_release(&kc);
    return rc;
}

int
pgcmk_vault_key_create_if_absent(const json_t *vault_body, const char *name, const json_t *arm_body,
                                 json_t **bundle, int *created, struct pgcmk_err *err)
{
    struct kv_ctx kc;
    struct kv_key k;
    struct kv_spec sp;
    char version[33];
    int rc = -1, found;

    *bundle = NULL;
    *created = 0;
    memset(&sp, 0, sizeof(sp));
    if (kv_ctx_from_body(vault_body, &kc, err))
        return -1;
    if (kv_check_name(name, err)) {
        err->code = PGCMK_E_INVALID_RESOURCE_NAME;
        goto out;
    }
    found = kv_key_load(pgcmk_db(), kc.vault, name, &k, err);
    if (found < 0)
        goto out;
    if (found && k.deleted) {
        pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL,
                      "Key %.127s is currently in a deleted but recoverable state, and its name "
                      "cannot be reused; in this state, the key can only be recovered or purged.",
                      name);
        goto out;
    }
    if (!found) {
        if (kv_spec_parse(&kc, (json_t *)arm_body, 1, &sp, err)) {
            err->code = PGCMK_E_BAD_REQUEST;
            goto out;
        }
        if (kv_new_version(&kc, name, &sp, version, NULL, err))
            goto out;
        *created = 1;
    }
    rc = pgcmk_vault_key_get(vault_body, name, NULL, bundle, err) == 1 ? 0 : -1;
    if (rc && err->code == PGCMK_E_OK)
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "The key '%.127s' vanished.", name);
out:
    kv_spec_release(&sp);
    kv_ctx_release(&kc);
    return rc;
}

/* The data plane's routes. Each names the key permission it needs: the dispatcher runs
 * kv_admit_route (challenge, api-version, bearer token, vault, access policy) before the
 * handler. Only the refusal of an unknown operation answers without admission. */
#define KVF  ROUTE_F_ANYBODY
#define KVFS (ROUTE_F_ANYBODY | ROUTE_F_SECRET) /* plaintexts and key material pass */
#define KVQ  "maxresults,$skiptoken"
#define KVR(method, pattern, flags, query, fn, perm)                                               \
    {                                                                                              \
        method, pattern, PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, flags, query, fn, perm                \
    }
#define KVOP(path, perm)                                                                           \
    KVR("POST", "/keys/{name}/" path, KVFS, NULL, kv_crypto, perm),                                \
        KVR("POST", "/keys/{name}/{version}/" path, KVFS, NULL, kv_crypto, perm)
static const struct pgcmk_route kv_routes[] = {
    KVR("POST", "/keys/{name}/create", KVF, NULL, kv_create, "create"),
    KVR("POST", "/keys/{name}/rotate", KVF, NULL, kv_rotate, "rotate"),
    KVR("PUT", "/keys/{name}", KVFS, NULL, kv_import, "import"),
    KVR("POST", "/keys/{name}/backup", KVF, NULL, kv_backup, "backup"),
    KVR("POST", "/keys/restore", KVF, NULL, kv_restore, "restore"),
    KVR("GET", "/keys/{name}/rotationpolicy", KVF, NULL, kv_policy_get, "getrotationpolicy"),
    KVR("PUT", "/keys/{name}/rotationpolicy", KVF, NULL, kv_policy_set, "setrotationpolicy"),
    KVR("GET", "/keys", KVF, KVQ, kv_list, "list"),
    KVR("GET", "/keys/{name}", KVF, NULL, kv_get, "get"),
    KVR("GET", "/keys/{name}/versions", KVF, KVQ, kv_versions, "list"),
    KVR("GET", "/keys/{name}/{version}", KVF, NULL, kv_get, "get"),
    KVR("PATCH", "/keys/{name}", KVF, NULL, kv_update, "update"),
    KVR("PATCH", "/keys/{name}/{version}", KVF, NULL, kv_update, "update"),
    KVR("DELETE", "/keys/{name}", KVF, NULL, kv_delete, "delete"),
    KVR("GET", "/deletedkeys", KVF, KVQ, kv_list_deleted, "list"),
    KVR("GET", "/deletedkeys/{name}", KVF, NULL, kv_get_deleted, "get"),
    KVR("POST", "/deletedkeys/{name}/recover", KVF, NULL, kv_recover, "recover"),
    KVR("DELETE", "/deletedkeys/{name}", KVF, NULL, kv_purge, "purge"),
    KVOP("encrypt", "encrypt"),
    KVOP("decrypt", "decrypt"),
    KVOP("wrapkey", "wrapKey"),
    KVOP("unwrapkey", "unwrapKey"),
    KVOP("sign", "sign"),
    KVOP("verify", "verify"),
    KVR("POST", "/keys/{name}/{version}/{op}", KVF | ROUTE_F_NOAUTH, NULL, kv_crypto_unknown, NULL),
    KVR("POST", "/keys/{name}/{op}", KVF | ROUTE_F_NOAUTH, NULL, kv_crypto_unknown, NULL),
};

int
pgcmk_vault_parse_key_uri(const char *uri, char vault[32], char name[128], char version[40])
{
    struct pgcmk_keyuri ku;

    vault[0] = name[0] = version[0] = '\0';
    if (pgcmk_keyuri_parse(uri, &ku, NULL))
        return -1;
    snprintf(vault, 32, "%s", ku.vault);
    snprintf(name, 128, "%s", ku.name);
    snprintf(version, 40, "%s", ku.version);
    return 0;
}

void
pgcmk_vault_init(void)
{
    kv_cache_init();
    pgcmk_secret_json_wipe(); /* bodies and answers of the key operations hold plaintexts */
    pgcmk_vault_invalidate(); /* a new store: nothing cached before counts */
    pgcmk_router_add(kv_routes, PGCMK_ARRAY_LEN(kv_routes));
    pgcmk_http_set_admit(PGCMK_PLANE_VAULT, kv_admit_route);
    kv_lifecycle_init();
}

void
pgcmk_vault_shutdown(void)
{
    pgcmk_vault_invalidate();
    kv_cache_shutdown();
}
