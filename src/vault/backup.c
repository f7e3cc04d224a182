/* backup.c - backup and restore of a key: an opaque blob sealed under the master key. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/auth.h"
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/events.h"
#include "pgcmk/faults.h"
#include "pgcmk/log.h"
#include "pgcmk/pkey.h"
#include "pgcmk/store.h"
#include "pgcmk/vault.h"
#include "pgcmk/wellknown.h"
#include "vault/internal.h"

/* ---- backup and restore: an opaque blob sealed under the master key ----------------------- */

#define KV_BACKUP_AAD "pgcmk-key-backup-v1"

struct kv_backup_rows {
    const struct kv_ctx *kc;
    const char *name;
    json_t *versions;
};

/* pgcmk_db_each row: one version of the key, with its private key unsealed for the backup. */
static int
kv_backup_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct kv_backup_rows *br = arg;
    struct kv_version v;
    char id[200], aad[210];
    unsigned char *pem = NULL;
    size_t pem_len = 0;

    PGCMK_UNUSED(err);
    kv_version_from_row(st, &v);
    snprintf(id, sizeof(id), "%s/%s/%s", br->kc->vault, br->name, v.version);
    pgcmk_lower(id, sizeof(id), id);
    snprintf(aad, sizeof(aad), "kv:%.190s", id);
    if (pgcmk_store_unseal(v.priv, v.priv_len, aad, &pem, &pem_len) == 0) {
        json_array_append_new(br->versions,
                              json_pack("{s:s, s:s, s:O, s:b, s:I, s:I, s:I, s:I, s:O, s:O, s:s%}",
                                        "version", v.version, "kty", v.kty, "key_ops", v.key_ops,
                                        "enabled", v.enabled, "nbf", (json_int_t)v.nbf, "exp",
                                        (json_int_t)v.exp, "created", (json_int_t)v.created,
                                        "updated", (json_int_t)v.updated, "tags", v.tags, "jwk",
                                        v.jwk, "pem", pem, pem_len));
        pgcmk_secret_free(pem, pem_len);
    }
    kv_version_release(&v);
    return 0;
}

int
kv_backup(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct pgcmk_db *db;
    struct kv_ctx *kc = rq->admitted;
    struct kv_key k;
    sqlite3_stmt *st;
    json_t *versions = NULL, *doc;
    char *text = NULL, *b64;
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    int rc = -1, found;

    db = pgcmk_db();
    found = kv_key_load(db, kc->vault, pgcmk_req_param(rq, "name"), &k, err);
    if (found != 1 || k.deleted) {
        if (found >= 0)
            kv_not_found(pgcmk_req_param(rq, "name"), NULL, err);
        goto out;
    }
    versions = json_array();
    st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_LIST);
    sqlite3_bind_text(st, 1, kc->vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k.name, -1, SQLITE_STATIC);
    {
        struct kv_backup_rows br = {kc, k.name, versions};

        if (pgcmk_db_each(db, st, kv_backup_row, &br, "list key versions", err) < 0)
            goto out;
    }
    doc = json_pack("{s:s, s:s, s:o}", "name", k.name, "current", k.current, "versions", versions);
    versions = NULL;
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL || pgcmk_store_seal(text, strlen(text), KV_BACKUP_AAD, &sealed, &sealed_len)) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "the backup could not be sealed");
        goto out;
    }
    b64 = pgcmk_b64url_encode(sealed, sealed_len);
    pgcmk_resp_json(rs, 200, json_pack("{s:s}", "value", b64));
    free(b64);
    rc = 0;
out:
    if (text)
        pgcmk_secret_free(text, strlen(text));
    free(sealed);
    json_decref(versions);
    return rc;
}

struct kv_restore {
    struct kv_ctx *kc;
    json_t *doc;
};

static int
kv_restore_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kv_restore *r = ctx;
    const char *name = json_string_value(json_object_get(r->doc, "name"));
    struct kv_key k;
    sqlite3_stmt *st;
    json_t *v;
    size_t i;
    int rc = kv_key_load(db, r->kc->vault, name, &k, err);

    pgcmk_vault_invalidate(); /* see the caches: before COMMIT, under the writer lock */
    if (rc < 0)
        return -1;
    if (rc == 1)
        return pgcmk_err_set(err, PGCMK_E_KV_CONFLICT, NULL,
                             "Key %.127s already exists in vault '%s'; restore needs a free name "
                             "(delete and purge it first).",
                             name, r->kc->vault);
    st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_INSERT);
    sqlite3_bind_text(st, 1, r->kc->vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, json_string_value(json_object_get(r->doc, "current")), -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, pgcmk_clock_now());
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    if (rc != SQLITE_DONE)
        return pgcmk_db_fail(db, rc, "restore key", err);
    json_array_foreach(json_object_get(r->doc, "versions"), i, v) {
        const char *ver = json_string_value(json_object_get(v, "version"));
        const char *pem = json_string_value(json_object_get(v, "pem"));
        char id[200], aad[210], *ops, *tags, *jwk;
        unsigned char *sealed = NULL;
        size_t sealed_len = 0;

        if (ver == NULL || pem == NULL)
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL, "The backup is damaged.");
        snprintf(id, sizeof(id), "%s/%s/%s", r->kc->vault, name, ver);
        pgcmk_lower(id, sizeof(id), id);
        snprintf(aad, sizeof(aad), "kv:%.190s", id);
        if (pgcmk_store_seal(pem, strlen(pem), aad, &sealed, &sealed_len))
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "sealing failed");
        ops = json_dumps(json_object_get(v, "key_ops"), JSON_COMPACT);
        tags = json_dumps(json_object_get(v, "tags"), JSON_COMPACT);
        jwk = json_dumps(json_object_get(v, "jwk"), JSON_COMPACT);
        st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_INSERT);
        sqlite3_bind_text(st, 1, r->kc->vault, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, ver, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, json_string_value(json_object_get(v, "kty")), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, ops, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, json_is_true(json_object_get(v, "enabled")));
        if (json_integer_value(json_object_get(v, "nbf")))
            sqlite3_bind_int64(st, 7, json_integer_value(json_object_get(v, "nbf")));
        if (json_integer_value(json_object_get(v, "exp")))
            sqlite3_bind_int64(st, 8, json_integer_value(json_object_get(v, "exp")));
        sqlite3_bind_int64(st, 9, json_integer_value(json_object_get(v, "created")));
        sqlite3_bind_text(st, 10, tags, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 11, jwk, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 12, sealed, (int)sealed_len, SQLITE_STATIC);
        rc = sqlite3_step(st);
        pgcmk_db_done(st);
        free(ops);
        free(tags);
        free(jwk);
        free(sealed);
        if (rc != SQLITE_DONE)
            return pgcmk_db_fail(db, rc, "restore key version", err);
    }
    return 0;
}

int
kv_restore(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx *kc = rq->admitted;
    struct kv_restore r = {kc, NULL};
    const char *value;
    unsigned char *sealed = NULL, *text = NULL;
    size_t sealed_len = 0, text_len = 0;
    int rc = -1;

    if (kv_body(rq, err))
        goto out;
    value = json_string_value(json_object_get(rq->json, "value"));
    if (value == NULL || pgcmk_b64url_decode(value, strlen(value), &sealed, &sealed_len) ||
        pgcmk_store_unseal(sealed, sealed_len, KV_BACKUP_AAD, &text, &text_len) ||
        (r.doc = json_loadb((const char *)text, text_len, 0, NULL)) == NULL) {
        pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                      "Backup blob contains invalid or corrupt version.");
        goto out;
    }
    if (pgcmk_db_tx(pgcmk_db(), kv_restore_tx, &r, err))
        goto out;
    rc = kv_respond_version(rs, kc, kc->vault, json_string_value(json_object_get(r.doc, "name")),
                            json_string_value(json_object_get(r.doc, "current")), err);
out:
    if (text)
        pgcmk_secret_free(text, text_len);
    free(sealed);
    json_decref(r.doc);
    return rc;
}
