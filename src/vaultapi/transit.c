/* transit.c - the Vault API's transit secrets engine (see include/pgcmk/vkv.h): named keys with
 * versions (aes256-gcm96), encrypt / decrypt / rewrap / datakey, rotation,
 * min_decryption_version, deletion only when allowed.
 *
 * Ciphertexts are Vault's "vault:v<N>:" + base64(12-byte random nonce || ciphertext || 16-byte
 * tag), AES-256-GCM through src/crypto. Key material is sealed under the master key at rest
 * (aad = namespace "\n" mount uuid "\n" name "\n" version) and wiped after use. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/clock.h"
#include "pgcmk/core.h"
#include "pgcmk/crypto.h"
#include "pgcmk/log.h"
#include "pgcmk/monitor.h"
#include "pgcmk/store.h"
#include "pgcmk/vkv.h"
#include "pgcmk/wellknown.h"

#define VTR_UNSUPPORTED "1 error occurred:\n\t* unsupported operation\n\n"

struct tkey {
    int found;
    char type[32];
    int64_t latest, min_dec, min_enc, created_ms;
    int deletion_allowed, exportable;
};

static void
t_error(struct pgcmk_vkv_ans *a, int status, const char *text)
{
    a->status = status;
    a->errors = json_array();
    if (text)
        json_array_append_new(a->errors, json_string(text));
}

static void
t_store_failed(struct pgcmk_vkv_ans *a, const struct pgcmk_err *err)
{
    LOG_WARN("vaultapi transit: store: %s", err->message);
    t_error(a, pgcmk_err_status(err->code) == 503 ? 503 : 500, "internal error");
}

static char *
t_aad(const struct pgcmk_vkv_call *c, const char *name, int64_t version)
{
    return pgcmk_xasprintf("%s\n%s\n%s\n%" PRId64, c->ns ? c->ns : "", c->mount_uuid, name,
                           version);
}

static int
is_chacha(const char *type)
{
    return strcmp(type, "chacha20-poly1305") == 0;
}

static int
key_load(struct pgcmk_db *db, const struct pgcmk_vkv_call *c, const char *name, struct tkey *k,
         struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_VTR_KEY_GET);
    int rc;

    memset(k, 0, sizeof(*k));
    sqlite3_bind_text(st, 1, c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    rc = pgcmk_db_step(db, st, "vault transit key", err);
    if (rc == 1) {
        const char *t = (const char *)sqlite3_column_text(st, 0);

        k->found = 1;
        snprintf(k->type, sizeof(k->type), "%s", t ? t : "");
        k->latest = sqlite3_column_int64(st, 1);
        k->min_dec = sqlite3_column_int64(st, 2);
        k->min_enc = sqlite3_column_int64(st, 3);
        k->deletion_allowed = sqlite3_column_int(st, 4);
        k->exportable = sqlite3_column_int(st, 5);
        k->created_ms = sqlite3_column_int64(st, 6);
    }
    pgcmk_db_done(st);
    return rc < 0 ? -1 : 0;
}

static int
key_save(struct pgcmk_db *db, const struct pgcmk_vkv_call *c, const char *name,
         const struct tkey *k, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_VTR_KEY_PUT);

    sqlite3_bind_text(st, 1, c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, k->type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, k->latest);
    sqlite3_bind_int64(st, 5, k->min_dec);
    sqlite3_bind_int64(st, 6, k->min_enc);
    sqlite3_bind_int(st, 7, k->deletion_allowed);
    sqlite3_bind_int(st, 8, k->exportable);
    sqlite3_bind_int64(st, 9, k->created_ms);
    return pgcmk_db_each(db, st, NULL, NULL, "vault transit key put", err) < 0 ? -1 : 0;
}

/* A new random key version, sealed. */
static int
version_add(struct pgcmk_db *db, const struct pgcmk_vkv_call *c, const char *name, int64_t version,
            struct pgcmk_err *err)
{
    unsigned char key[PGCMK_AEAD_KEY_LEN], *sealed = NULL;
    size_t sealed_len = 0;
    char *aad;
    sqlite3_stmt *st;
    int rc;

    if (pgcmk_random(key, sizeof(key)) != 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "random failed");
    aad = t_aad(c, name, version);
    rc = pgcmk_store_seal(key, sizeof(key), aad, &sealed, &sealed_len);
    explicit_bzero(key, sizeof(key));
    free(aad);
    if (rc != 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "seal failed");
    st = pgcmk_db_stmt(db, PGCMK_STMT_VTR_VER_PUT);
    sqlite3_bind_text(st, 1, c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, version);
    sqlite3_bind_int64(st, 4, pgcmk_clock_now());
    sqlite3_bind_blob(st, 5, sealed, (int)sealed_len, SQLITE_STATIC);
    rc = pgcmk_db_each(db, st, NULL, NULL, "vault transit version put", err);
    free(sealed);
    return rc < 0 ? -1 : 0;
}

/* The key of one version into key[]; 0, 1 when absent, -1 on a store or unseal failure. */
static int
version_key(struct pgcmk_db *db, const struct pgcmk_vkv_call *c, const char *name, int64_t version,
            unsigned char key[PGCMK_AEAD_KEY_LEN], struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_VTR_VER_GET);
    unsigned char *pt = NULL;
    size_t pt_len = 0;
    char *aad;
    int rc;

    sqlite3_bind_text(st, 1, c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, version);
    rc = pgcmk_db_step(db, st, "vault transit version", err);
    if (rc <= 0) {
        pgcmk_db_done(st);
        return rc == 0 ? 1 : -1;
    }
    aad = t_aad(c, name, version);
    rc = pgcmk_store_unseal(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), aad,
                            &pt, &pt_len);
    free(aad);
    pgcmk_db_done(st);
    if (rc != 0 || pt_len != PGCMK_AEAD_KEY_LEN) {
        pgcmk_secret_free(pt, pt_len);
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "unseal failed");
    }
    memcpy(key, pt, PGCMK_AEAD_KEY_LEN);
    pgcmk_secret_free(pt, pt_len);
    return 0;
}

static json_t *
key_json(struct pgcmk_db *db, const struct pgcmk_vkv_call *c, const char *name,
         const struct tkey *k)
{
    json_t *d = json_object(), *keys = json_object(), *rows = json_array();
    struct pgcmk_err err;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_VTR_VER_LIST);
    size_t i;
    json_t *r;

    pgcmk_err_clear(&err);
    sqlite3_bind_text(st, 1, c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, pgcmk_db_collect_row, rows, "vault transit versions", &err) >= 0) {
        json_array_foreach(rows, i, r) {
            const char *v = json_string_value(json_array_get(r, 0));
            const char *ms = json_string_value(json_array_get(r, 1));

            if (v && ms)
                json_object_set_new(keys, v, json_integer(strtoll(ms, NULL, 10) / 1000));
        }
    }
    json_decref(rows);
    json_object_set_new(d, "allow_plaintext_backup", json_false());
    json_object_set_new(d, "auto_rotate_period", json_integer(0));
    json_object_set_new(d, "deletion_allowed", json_boolean(k->deletion_allowed));
    json_object_set_new(d, "derived", json_false());
    json_object_set_new(d, "exportable", json_boolean(k->exportable));
    json_object_set_new(d, "imported_key", json_false());
    json_object_set_new(d, "keys", keys);
    json_object_set_new(d, "latest_version", json_integer(k->latest));
    json_object_set_new(d, "min_available_version", json_integer(0));
    json_object_set_new(d, "min_decryption_version", json_integer(k->min_dec));
    json_object_set_new(d, "min_encryption_version", json_integer(k->min_enc));
    json_object_set_new(d, "name", json_string(name));
    json_object_set_new(d, "supports_decryption", json_true());
    json_object_set_new(d, "supports_derivation", json_true());
    json_object_set_new(d, "supports_encryption", json_true());
    json_object_set_new(d, "supports_signing", json_false());
    json_object_set_new(d, "type", json_string(k->type));
    return d;
}

/* ---- key management -------------------------------------------------------------------- */

struct key_tx {
    const struct pgcmk_vkv_call *c;
    const char *name;
    const char *type;
    int exportable;
    int rotate;
    /* config */
    int64_t min_dec, min_enc;
    int deletion_allowed, set_exportable;
    /* out */
    struct tkey k;
    const char *refused;
    char msg[160];
};

static int
create_tx(struct pgcmk_db *db, void *arg, struct pgcmk_err *err)
{
    struct key_tx *t = arg;

    if (key_load(db, t->c, t->name, &t->k, err) != 0)
        return -1;
    if (t->k.found && !t->rotate)
        return 0; /* Vault: creating an existing key changes nothing */
    if (!t->k.found) {
        if (t->rotate) {
            t->refused = "key not found";
            return 0;
        }
        snprintf(t->k.type, sizeof(t->k.type), "%s", t->type);
        t->k.found = 1;
        t->k.min_dec = 1;
        t->k.exportable = t->exportable;
        t->k.created_ms = pgcmk_clock_now();
    }
    t->k.latest++;
    if (version_add(db, t->c, t->name, t->k.latest, err) != 0)
        return -1;
    return key_save(db, t->c, t->name, &t->k, err);
}

static int
config_tx(struct pgcmk_db *db, void *arg, struct pgcmk_err *err)
{
    struct key_tx *t = arg;

    if (key_load(db, t->c, t->name, &t->k, err) != 0)
        return -1;
    if (!t->k.found) {
        t->refused = "no existing key named %s could be found";
        return 0;
    }
    if (t->min_dec >= 0) {
        if (t->min_dec > t->k.latest) {
            snprintf(t->msg, sizeof(t->msg),
                     "cannot set min decryption version of %" PRId64
                     ", latest key version is %" PRId64,
                     t->min_dec, t->k.latest);
            t->refused = t->msg;
            return 0;
        }
        t->k.min_dec = t->min_dec > 0 ? t->min_dec : 1;
    }
    if (t->min_enc >= 0) {
        if (t->min_enc > t->k.latest) {
            snprintf(t->msg, sizeof(t->msg),
                     "cannot set min encryption version of %" PRId64
                     " greater than latest version of %" PRId64,
                     t->min_enc, t->k.latest);
            t->refused = t->msg;
            return 0;
        }
        t->k.min_enc = t->min_enc;
    }
    if (t->k.min_enc > 0 && t->k.min_dec > t->k.min_enc) {
        t->refused = "min decryption version should not be less then min available version";
        return 0;
    }
    if (t->deletion_allowed >= 0)
        t->k.deletion_allowed = t->deletion_allowed;
    if (t->set_exportable == 1)
        t->k.exportable = 1;
    else if (t->set_exportable == 0 && t->k.exportable) {
        t->refused = "export cannot be disabled on a key that already has it enabled";
        return 0;
    }
    return key_save(db, t->c, t->name, &t->k, err);
}

static int
delete_tx(struct pgcmk_db *db, void *arg, struct pgcmk_err *err)
{
    struct key_tx *t = arg;
    struct pgcmk_activity a = {0};
    char rid[1024];
    sqlite3_stmt *st;

    if (key_load(db, t->c, t->name, &t->k, err) != 0)
        return -1;
    if (!t->k.found) {
        snprintf(t->msg, sizeof(t->msg),
                 "error deleting policy %.64s: could not delete policy; not found", t->name);
        t->refused = t->msg;
        return 0;
    }
    if (!t->k.deletion_allowed) {
        snprintf(t->msg, sizeof(t->msg),
                 "error deleting policy %.64s: deletion is not allowed for this policy", t->name);
        t->refused = t->msg;
        return 0;
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_VTR_KEY_DEL);
    sqlite3_bind_text(st, 1, t->c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, NULL, NULL, "vault transit key delete", err) < 0)
        return -1;
    st = pgcmk_db_stmt(db, PGCMK_STMT_VTR_VER_DEL);
    sqlite3_bind_text(st, 1, t->c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, NULL, NULL, "vault transit versions delete", err) < 0)
        return -1;
    snprintf(rid, sizeof(rid), "/subscriptions/%s/providers/pgcmk.Vault/namespaces/%s%skeys/%.256s",
             PGCMK_SUBSCRIPTION_ID, t->c->ns && *t->c->ns ? t->c->ns : "root/",
             t->c->mount_path ? t->c->mount_path : "", t->name);
    a.resource_id = rid;
    a.operation = "pgcmk.Vault/transit/keys/delete";
    a.status = "Succeeded";
    a.level = "Warning";
    a.caller = t->c->caller;
    a.description = "transit key deleted";
    a.method = "DELETE";
    a.http_status = 204;
    return pgcmk_activity_add(db, &a, err);
}

static const char *
j_str(const json_t *body, const char *name)
{
    const json_t *v = body ? json_object_get(body, name) : NULL;

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int
name_ok(const char *n)
{
    return *n && pgcmk_vkv_text_ok(n, 128) && strchr(n, '/') == NULL && strcmp(n, "..") != 0;
}

static void
key_call(const struct pgcmk_vkv_call *c, const char *name, const char *sub, struct pgcmk_vkv_ans *a)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    struct key_tx t;

    pgcmk_err_clear(&err);
    memset(&t, 0, sizeof(t));
    t.c = c;
    t.name = name;
    if (*sub == '\0') {
        switch (c->op) {
        case PGCMK_VKV_READ:
            if (key_load(db, c, name, &t.k, &err) != 0) {
                t_store_failed(a, &err);
                return;
            }
            if (!t.k.found) {
                t_error(a, 404, NULL);
                return;
            }
            a->status = 200;
            a->data = key_json(db, c, name, &t.k);
            return;
        case PGCMK_VKV_WRITE: {
            const char *type = j_str(c->body, "type");
            int exp = pgcmk_vkv_field_bool(c->body, "exportable"),
                derived = pgcmk_vkv_field_bool(c->body, "derived");

            if (type == NULL || *type == '\0')
                type = "aes256-gcm96";
            if (strcmp(type, "aes256-gcm96") != 0 && !is_chacha(type)) {
                char msg[128];

                snprintf(msg, sizeof(msg), "unknown key type: %.64s", type);
                t_error(a, 400, msg);
                return;
            }
            if (exp == -2 || derived == -2) {
                t_error(a, 400, "exportable and derived must be booleans");
                return;
            }
            if (derived == 1) {
                t_error(a, 400, "derived keys are not supported by this emulator");
                return;
            }
            t.type = type;
            t.exportable = exp == 1;
            if (pgcmk_db_tx(db, create_tx, &t, &err) != 0) {
                t_store_failed(a, &err);
                return;
            }
            a->status = 200;
            a->data = key_json(db, c, name, &t.k);
            return;
        }
        case PGCMK_VKV_DELETE:
            if (pgcmk_db_tx(db, delete_tx, &t, &err) != 0) {
                t_store_failed(a, &err);
                return;
            }
            if (t.refused) {
                t_error(a, 400, t.refused);
                return;
            }
            a->status = 204;
            return;
        default:
            t_error(a, 405, VTR_UNSUPPORTED);
            return;
        }
    }
    if (c->op != PGCMK_VKV_WRITE) {
        t_error(a, 405, VTR_UNSUPPORTED);
        return;
    }
    if (strcmp(sub, "rotate") == 0) {
        t.rotate = 1;
        if (pgcmk_db_tx(db, create_tx, &t, &err) != 0) {
            t_store_failed(a, &err);
            return;
        }
        if (t.refused) {
            t_error(a, 400, "key not found");
            return;
        }
        a->status = 200;
        a->data = key_json(db, c, name, &t.k);
        return;
    }
    if (strcmp(sub, "config") == 0) {
        t.min_dec = pgcmk_vkv_field_int(c->body, "min_decryption_version");
        t.min_enc = pgcmk_vkv_field_int(c->body, "min_encryption_version");
        t.deletion_allowed = pgcmk_vkv_field_bool(c->body, "deletion_allowed");
        t.set_exportable = pgcmk_vkv_field_bool(c->body, "exportable");
        if (t.min_dec == -2 || t.min_enc == -2 || t.deletion_allowed == -2 ||
            t.set_exportable == -2) {
            t_error(a, 400, "invalid key configuration");
            return;
        }
        if (pgcmk_db_tx(db, config_tx, &t, &err) != 0) {
            t_store_failed(a, &err);
            return;
        }
        if (t.refused) {
            char msg[200];

            if (strstr(t.refused, "%s")) {
                snprintf(msg, sizeof(msg), "no existing key named %.64s could be found", name);
                t_error(a, 400, msg);
            } else {
                t_error(a, 400, t.refused);
            }
            return;
        }
        a->status = 200;
        a->data = key_json(db, c, name, &t.k);
        return;
    }
    t_error(a, 404, NULL);
}

/* ---- encrypt / decrypt ----------------------------------------------------------------- */

/* Encrypts pt under the key's version into "vault:vN:..." (heap). */
static char *
encrypt_with(const char *type, const unsigned char key[PGCMK_AEAD_KEY_LEN], int64_t version,
             const void *pt, size_t pt_len)
{
    unsigned char *ct = NULL;
    size_t ct_len = 0;
    char *b64, *out;

    if ((is_chacha(type) ? pgcmk_chacha_seal(key, pt, pt_len, &ct, &ct_len)
                         : pgcmk_aead_seal(key, NULL, 0, pt, pt_len, &ct, &ct_len)) != 0)
        return NULL;
    b64 = pgcmk_b64_encode(ct, ct_len);
    free(ct);
    out = pgcmk_xasprintf("vault:v%" PRId64 ":%s", version, b64);
    free(b64);
    return out;
}

/* Parses "vault:vN:b64": the version and the decoded bytes; NULL on success, else the text. */
static const char *
parse_ciphertext(const char *s, int64_t *version, unsigned char **raw, size_t *raw_len)
{
    const char *p, *colon;
    char *end;

    if (s == NULL || *s == '\0')
        return "missing ciphertext to decrypt";
    if (strncmp(s, "vault:", 6) != 0)
        return "invalid ciphertext: no prefix";
    p = s + 6;
    if (*p != 'v')
        return "invalid ciphertext: wrong version prefix";
    colon = strchr(p, ':');
    if (colon == NULL)
        return "invalid ciphertext: no prefix";
    *version = strtoll(p + 1, &end, 10);
    if (end != colon || *version <= 0)
        return "invalid ciphertext: could not parse version";
    if (pgcmk_b64_decode(colon + 1, strlen(colon + 1), raw, raw_len) != 0)
        return "invalid ciphertext: could not decode base64";
    if (*raw_len < PGCMK_AEAD_OVERHEAD) {
        free(*raw);
        *raw = NULL;
        return "invalid ciphertext: too short";
    }
    return NULL;
}

/* Decrypts one ciphertext with the key (k loaded); plaintext heap, the error text otherwise. */
static const char *
decrypt_one(struct pgcmk_db *db, const struct pgcmk_vkv_call *c, const char *name,
            const struct tkey *k, const char *ciphertext, unsigned char **pt, size_t *pt_len,
            int64_t *version_out, struct pgcmk_err *err, int *failed)
{
    unsigned char key[PGCMK_AEAD_KEY_LEN], *raw = NULL;
    size_t raw_len = 0;
    int64_t version = 0;
    const char *why = parse_ciphertext(ciphertext, &version, &raw, &raw_len);
    int rc;

    if (why)
        return why;
    if (version < k->min_dec) {
        free(raw);
        return "ciphertext or signature version is disallowed by policy (too old)";
    }
    if (version > k->latest) {
        free(raw);
        return "invalid ciphertext: version is too new";
    }
    rc = version_key(db, c, name, version, key, err);
    if (rc != 0) {
        free(raw);
        if (rc < 0)
            *failed = 1;
        return "invalid ciphertext: key version not found";
    }
    rc = is_chacha(k->type) ? pgcmk_chacha_open(key, raw, raw_len, pt, pt_len)
                            : pgcmk_aead_open(key, NULL, 0, raw, raw_len, pt, pt_len);
    explicit_bzero(key, sizeof(key));
    free(raw);
    if (rc != 0)
        return "cipher: message authentication failed";
    if (version_out)
        *version_out = version;
    return NULL;
}

struct upsert_tx {
    const struct pgcmk_vkv_call *c;
    const char *name;
    struct tkey k;
};

static int
upsert_tx(struct pgcmk_db *db, void *arg, struct pgcmk_err *err)
{
    struct upsert_tx *u = arg;
    struct key_tx t;

    memset(&t, 0, sizeof(t));
    t.c = u->c;
    t.name = u->name;
    t.type = "aes256-gcm96";
    if (create_tx(db, &t, err) != 0)
        return -1;
    u->k = t.k;
    return 0;
}

/* Encrypts one base64 plaintext; fills result (ciphertext, key_version) or returns the error. */
static const char *
encrypt_item(struct pgcmk_db *db, const struct pgcmk_vkv_call *c, const char *name,
             const struct tkey *k, const char *plaintext_b64, int64_t key_version, json_t *result,
             struct pgcmk_err *err, int *failed)
{
    unsigned char key[PGCMK_AEAD_KEY_LEN], *pt = NULL;
    size_t pt_len = 0;
    int64_t v = key_version > 0 ? key_version : k->latest;
    char *ct;
    int rc;

    if (plaintext_b64 == NULL)
        return "missing plaintext to encrypt";
    if (pgcmk_b64_decode(plaintext_b64, strlen(plaintext_b64), &pt, &pt_len) != 0)
        return "failed to base64-decode plaintext";
    if (v > k->latest || v < 1 || (k->min_enc > 0 && v < k->min_enc)) {
        pgcmk_secret_free(pt, pt_len);
        return "requested version for encryption is less than the minimum encryption key "
               "version";
    }
    rc = version_key(db, c, name, v, key, err);
    if (rc != 0) {
        pgcmk_secret_free(pt, pt_len);
        if (rc < 0)
            *failed = 1;
        return "encryption key version not found";
    }
    ct = encrypt_with(k->type, key, v, pt, pt_len);
    explicit_bzero(key, sizeof(key));
    pgcmk_secret_free(pt, pt_len);
    if (ct == NULL) {
        *failed = 1;
        return "encryption failed";
    }
    json_object_set_new(result, "ciphertext", json_string(ct));
    json_object_set_new(result, "key_version", json_integer(v));
    free(ct);
    return NULL;
}

static int
load_or_create(struct pgcmk_db *db, const struct pgcmk_vkv_call *c, const char *name, int create,
               struct tkey *k, struct pgcmk_err *err)
{
    struct upsert_tx u;

    if (key_load(db, c, name, k, err) != 0)
        return -1;
    if (k->found || !create)
        return 0;
    memset(&u, 0, sizeof(u));
    u.c = c;
    u.name = name;
    if (pgcmk_db_tx(db, upsert_tx, &u, err) != 0)
        return -1;
    *k = u.k;
    return 0;
}

enum crypt_op { CR_ENCRYPT, CR_DECRYPT, CR_REWRAP };

static const char *
crypt_item(struct pgcmk_db *db, const struct pgcmk_vkv_call *c, const char *name,
           const struct tkey *k, enum crypt_op op, const json_t *item, json_t *result,
           struct pgcmk_err *err, int *failed, int *secret)
{
    int64_t kv = pgcmk_vkv_field_int(item, "key_version");

    if (kv == -2)
        return "key_version must be an integer";
    if (op == CR_ENCRYPT)
        return encrypt_item(db, c, name, k, j_str(item, "plaintext"), kv, result, err, failed);
    {
        unsigned char *pt = NULL;
        size_t pt_len = 0;
        const char *why =
            decrypt_one(db, c, name, k, j_str(item, "ciphertext"), &pt, &pt_len, NULL, err, failed);
        char *b64;

        if (why)
            return why;
        b64 = pgcmk_b64_encode(pt, pt_len);
        pgcmk_secret_free(pt, pt_len);
        if (op == CR_DECRYPT) {
            json_object_set_new(result, "plaintext", json_string(b64));
            pgcmk_secret_free(b64, strlen(b64));
            *secret = 1;
            return NULL;
        }
        why = encrypt_item(db, c, name, k, b64, kv, result, err, failed);
        pgcmk_secret_free(b64, strlen(b64));
        return why;
    }
}

static void
crypt_call(const struct pgcmk_vkv_call *c, const char *name, enum crypt_op op,
           struct pgcmk_vkv_ans *a)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    struct tkey k;
    const json_t *batch = c->body ? json_object_get(c->body, "batch_input") : NULL;
    int failed = 0;
    const char *why;

    pgcmk_err_clear(&err);
    if (c->op != PGCMK_VKV_WRITE) {
        t_error(a, 405, VTR_UNSUPPORTED);
        return;
    }
    if (load_or_create(db, c, name, op == CR_ENCRYPT, &k, &err) != 0) {
        t_store_failed(a, &err);
        return;
    }
    if (!k.found) {
        t_error(a, 400, "encryption key not found");
        return;
    }
    if (batch && !json_is_null(batch)) {
        json_t *results = json_array(), *item;
        size_t i;

        if (!json_is_array(batch) || json_array_size(batch) == 0) {
            json_decref(results);
            t_error(a, 400, "missing batch input to process");
            return;
        }
        json_array_foreach(batch, i, item) {
            json_t *r = json_object();

            why = json_is_object(item)
                      ? crypt_item(db, c, name, &k, op, item, r, &err, &failed, &a->secret)
                      : "invalid batch item";
            if (failed) {
                json_decref(r);
                json_decref(results);
                t_store_failed(a, &err);
                return;
            }
            if (why)
                json_object_set_new(r, "error", json_string(why));
            json_array_append_new(results, r);
        }
        a->status = 200;
        a->data = json_pack("{s:o}", "batch_results", results);
        return;
    }
    a->data = json_object();
    why = crypt_item(db, c, name, &k, op, c->body, a->data, &err, &failed, &a->secret);
    if (failed) {
        json_decref(a->data);
        a->data = NULL;
        t_store_failed(a, &err);
        return;
    }
    if (why) {
        json_decref(a->data);
        a->data = NULL;
        t_error(a, 400, why);
        return;
    }
    a->status = 200;
}

static void
datakey_call(const struct pgcmk_vkv_call *c, const char *kind, const char *name,
             struct pgcmk_vkv_ans *a)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    struct tkey k;
    unsigned char dk[64], key[PGCMK_AEAD_KEY_LEN];
    int64_t bits = pgcmk_vkv_field_int(c->body, "bits");
    char *ct, *b64;
    int rc;

    pgcmk_err_clear(&err);
    if (c->op != PGCMK_VKV_WRITE) {
        t_error(a, 405, VTR_UNSUPPORTED);
        return;
    }
    if (strcmp(kind, "plaintext") != 0 && strcmp(kind, "wrapped") != 0) {
        t_error(a, 400, "invalid type");
        return;
    }
    if (bits == -1)
        bits = 256;
    if (bits != 128 && bits != 256 && bits != 512) {
        t_error(a, 400, "invalid bits");
        return;
    }
    if (key_load(db, c, name, &k, &err) != 0) {
        t_store_failed(a, &err);
        return;
    }
    if (!k.found) {
        t_error(a, 400, "encryption key not found");
        return;
    }
    if (pgcmk_random(dk, (size_t)bits / 8) != 0) {
        t_error(a, 500, "internal error");
        return;
    }
    rc = version_key(db, c, name, k.latest, key, &err);
    if (rc != 0) {
        explicit_bzero(dk, sizeof(dk));
        t_store_failed(a, &err);
        return;
    }
    ct = encrypt_with(k.type, key, k.latest, dk, (size_t)bits / 8);
    explicit_bzero(key, sizeof(key));
    if (ct == NULL) {
        explicit_bzero(dk, sizeof(dk));
        t_error(a, 500, "internal error");
        return;
    }
    a->data = json_object();
    json_object_set_new(a->data, "ciphertext", json_string(ct));
    json_object_set_new(a->data, "key_version", json_integer(k.latest));
    free(ct);
    if (strcmp(kind, "plaintext") == 0) {
        b64 = pgcmk_b64_encode(dk, (size_t)bits / 8);
        json_object_set_new(a->data, "plaintext", json_string(b64));
        pgcmk_secret_free(b64, strlen(b64));
        a->secret = 1;
    }
    explicit_bzero(dk, sizeof(dk));
    a->status = 200;
}

/* ---- dispatch -------------------------------------------------------------------------- */

static void
list_call(const struct pgcmk_vkv_call *c, struct pgcmk_vkv_ans *a)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    json_t *keys = json_array();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_VTR_KEY_LIST);

    pgcmk_err_clear(&err);
    sqlite3_bind_text(st, 1, c->mount_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, "", -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, pgcmk_db_collect_text, keys, "vault transit list", &err) < 0) {
        json_decref(keys);
        t_store_failed(a, &err);
        return;
    }
    if (json_array_size(keys) == 0) {
        json_decref(keys);
        t_error(a, 404, NULL);
        return;
    }
    a->status = 200;
    a->data = json_pack("{s:o}", "keys", keys);
}

void
pgcmk_vtransit_call(const struct pgcmk_vkv_call *c, struct pgcmk_vkv_ans *a)
{
    char verb[16], name[160];
    const char *rel = c->rel, *slash = strchr(rel, '/'), *rest, *sub;
    size_t n;

    memset(a, 0, sizeof(*a));
    if (!pgcmk_vkv_text_ok(rel, 1024)) {
        t_error(a, 400, "invalid path");
        return;
    }
    n = slash ? (size_t)(slash - rel) : strlen(rel);
    if (n >= sizeof(verb)) {
        t_error(a, 404, NULL);
        return;
    }
    memcpy(verb, rel, n);
    verb[n] = '\0';
    rest = slash ? slash + 1 : "";
    if (strcmp(verb, "keys") == 0 && (c->op == PGCMK_VKV_LIST) && *rest == '\0') {
        list_call(c, a);
        return;
    }
    if (strcmp(verb, "datakey") == 0) {
        char kind[16];
        const char *s2 = strchr(rest, '/');

        if (s2 == NULL || (size_t)(s2 - rest) >= sizeof(kind) || !name_ok(s2 + 1)) {
            t_error(a, 404, NULL);
            return;
        }
        memcpy(kind, rest, (size_t)(s2 - rest));
        kind[s2 - rest] = '\0';
        datakey_call(c, kind, s2 + 1, a);
        return;
    }
    sub = strchr(rest, '/');
    n = sub ? (size_t)(sub - rest) : strlen(rest);
    if (n == 0 || n >= sizeof(name)) {
        t_error(a, 404, NULL);
        return;
    }
    memcpy(name, rest, n);
    name[n] = '\0';
    sub = sub ? sub + 1 : "";
    if (!name_ok(name)) {
        t_error(a, 400, "invalid key name");
        return;
    }
    if (strcmp(verb, "keys") == 0) {
        key_call(c, name, sub, a);
        return;
    }
    if (*sub == '\0') {
        if (strcmp(verb, "encrypt") == 0) {
            crypt_call(c, name, CR_ENCRYPT, a);
            return;
        }
        if (strcmp(verb, "decrypt") == 0) {
            crypt_call(c, name, CR_DECRYPT, a);
            return;
        }
        if (strcmp(verb, "rewrap") == 0) {
            crypt_call(c, name, CR_REWRAP, a);
            return;
        }
    }
    {
        char msg[1200];

        snprintf(msg, sizeof(msg), "no handler for route \"%s%.1024s\". route entry not found.",
                 c->mount_path ? c->mount_path : "", c->rel);
        t_error(a, 404, msg);
    }
}

const char *
pgcmk_vtransit_capability(const struct pgcmk_vkv_call *c)
{
    struct pgcmk_err err;
    struct tkey k;
    char name[160];
    const char *slash;
    size_t n;

    switch (c->op) {
    case PGCMK_VKV_READ:
        return "read";
    case PGCMK_VKV_LIST:
        return "list";
    case PGCMK_VKV_DELETE:
        return "delete";
    case PGCMK_VKV_PATCH:
        return "patch";
    case PGCMK_VKV_WRITE:
        break;
    }
    /* keys/{name} and encrypt/{name} create the key when missing */
    if (strncmp(c->rel, "keys/", 5) != 0 && strncmp(c->rel, "encrypt/", 8) != 0)
        return "update";
    slash = strchr(c->rel, '/') + 1;
    n = strlen(slash);
    if (n == 0 || n >= sizeof(name) || strchr(slash, '/'))
        return "update";
    memcpy(name, slash, n + 1);
    pgcmk_err_clear(&err);
    if (key_load(pgcmk_db(), c, name, &k, &err) != 0)
        return "update";
    return k.found ? "update" : "create";
}
