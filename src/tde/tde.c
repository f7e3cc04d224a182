/* tde.c - self-managed (pg_tde-style) databases (include/pgcmk/tde.h): the
 * /emulator/tde/databases routes. A database's principal key is located by name on its KMIP
 * server (0 hits: the agent makes a random 32-byte key and registers it, as
 * pg_tde_create_key_using_global_key_provider does; more than one: refused, as pg_tde does),
 * its DEK is wrapped under that key by the agent (src/agent/kmip.c) and only the wrapped DEK is
 * stored. From then on the reconciler's "kmip" key-source row checks it. A "vault-v2" provider
 * (pg_tde's vault-v2: the key in a KV v2 secret, src/agent/vault.c) is the second row of the
 * table of provider kinds (tde_kinds), checked by the "vault-kv" key-source row. A "kes" provider
 * (the DEK is a MinIO KES data key: generate at create, decrypt at each check, src/agent/kes.c)
 * is the third row, checked by the "kes" key-source row; its API key is kept sealed apart from
 * the options (tde_kes_secrets), which show "apiKey":"<redacted>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <openssl/crypto.h>

#include "pg/internal.h" /* the PostgreSQL user: keyring files are opened with its rights */
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/keyring.h"
#include "pgcmk/http.h"
#include "pgcmk/log.h"
#include "pgcmk/pg.h"
#include "pgcmk/store.h"
#include "pgcmk/tde.h"
#include "providers/postgres.h"

#define TDE_NAME_MAX 63
#define TDE_KEY_MAX  200

int
pgcmk_tde_kmip_target(const char *provider_json, struct pgcmk_kmipc_target *t, void **holder)
{
    json_t *o = provider_json ? json_loads(provider_json, 0, NULL) : NULL;
    const char *type = json_string_value(json_object_get(o, "type"));

    memset(t, 0, sizeof(*t));
    *holder = NULL;
    if (!json_is_object(o) || !type || strcmp(type, "kmip") != 0) {
        json_decref(o);
        return -1;
    }
    t->host = json_string_value(json_object_get(o, "host"));
    t->port = (int)json_integer_value(json_object_get(o, "port"));
    t->cert_path = json_string_value(json_object_get(o, "certPath"));
    t->key_path = json_string_value(json_object_get(o, "keyPath"));
    t->ca_path = json_string_value(json_object_get(o, "caPath"));
    t->timeout_ms = (int)json_integer_value(json_object_get(o, "timeoutMs"));
    t->retries = json_is_integer(json_object_get(o, "retries"))
                     ? (int)json_integer_value(json_object_get(o, "retries"))
                     : -1;
    if (!t->host) {
        json_decref(o);
        return -1;
    }
    *holder = o;
    return 0;
}

int
pgcmk_tde_vault_target(const char *provider_json, struct pgcmk_vaultc_target *t, void **holder)
{
    json_t *o = provider_json ? json_loads(provider_json, 0, NULL) : NULL;
    const char *type = json_string_value(json_object_get(o, "type"));

    memset(t, 0, sizeof(*t));
    *holder = NULL;
    if (!json_is_object(o) || !type || strcmp(type, "vault-v2") != 0) {
        json_decref(o);
        return -1;
    }
    t->url = json_string_value(json_object_get(o, "url"));
    t->mount = json_string_value(json_object_get(o, "mountPath"));
    t->token_path = json_string_value(json_object_get(o, "tokenPath"));
    t->ca_path = json_string_value(json_object_get(o, "caPath"));
    t->ns = json_string_value(json_object_get(o, "namespace"));
    t->timeout_ms = (int)json_integer_value(json_object_get(o, "timeoutMs"));
    t->retries = json_is_integer(json_object_get(o, "retries"))
                     ? (int)json_integer_value(json_object_get(o, "retries"))
                     : -1;
    if (!t->url || !t->mount || !t->token_path) {
        json_decref(o);
        return -1;
    }
    *holder = o;
    return 0;
}

/* The sealed API key of a kes database: the text (malloc'd, a secret), or NULL. */
static char *
tde_kes_secret_get(const char *db_id)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_TDE_KES_SECRET_GET);
    struct pgcmk_err err;
    unsigned char *pt = NULL;
    size_t pl = 0;
    char *out = NULL;

    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    if (pgcmk_db_step(db, st, "read a KES API key", &err) == 1 &&
        pgcmk_store_unseal(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), db_id,
                           &pt, &pl) == 0) {
        out = pgcmk_xstrndup((const char *)pt, pl);
        pgcmk_secret_free(pt, pl);
    }
    pgcmk_db_done(st);
    return out;
}

struct tde_kes_holder {
    json_t *o;
    char *api_key;
};

int
pgcmk_tde_kes_target(const char *provider_json, const char *db_id, struct pgcmk_kesc_target *t,
                     void **holder)
{
    json_t *o = provider_json ? json_loads(provider_json, 0, NULL) : NULL;
    const char *type = json_string_value(json_object_get(o, "type"));
    struct tde_kes_holder *h;

    memset(t, 0, sizeof(*t));
    *holder = NULL;
    if (!json_is_object(o) || !type || strcmp(type, "kes") != 0 ||
        !json_string_value(json_object_get(o, "url"))) {
        json_decref(o);
        return -1;
    }
    h = pgcmk_xcalloc(1, sizeof(*h));
    h->o = o;
    t->url = json_string_value(json_object_get(o, "url"));
    if (json_object_get(o, "apiKey") && db_id) {
        h->api_key = tde_kes_secret_get(db_id);
        t->api_key = h->api_key ? h->api_key : "";
    }
    t->cert_path = json_string_value(json_object_get(o, "certPath"));
    t->key_path = json_string_value(json_object_get(o, "keyPath"));
    t->ca_path = json_string_value(json_object_get(o, "caPath"));
    t->insecure = json_is_true(json_object_get(o, "insecure"));
    t->timeout_ms = (int)json_integer_value(json_object_get(o, "timeoutMs"));
    t->retries = json_is_integer(json_object_get(o, "retries"))
                     ? (int)json_integer_value(json_object_get(o, "retries"))
                     : -1;
    *holder = h;
    return 0;
}

void
pgcmk_tde_kes_release(void *holder)
{
    struct tde_kes_holder *h = holder;

    if (!h)
        return;
    if (h->api_key)
        pgcmk_secret_free(h->api_key, strlen(h->api_key));
    json_decref(h->o);
    free(h);
}

int
pgcmk_tde_provider_is(const char *provider_json, const char *type)
{
    char pat[48];

    /* the stored options are canonical JSON (compact): a string value cannot hold this text
     * unescaped */
    snprintf(pat, sizeof(pat), "\"type\":\"%s\"", type);
    return provider_json && strstr(provider_json, pat) != NULL;
}

static const char *
tde_state(const struct pg_db *d)
{
    if (strcmp(d->access, PG_ACCESS_OK) == 0)
        return "Ready";
    if (strcmp(d->access, PG_ACCESS_LOST) == 0)
        return "Inaccessible";
    return "Provisioning";
}

static json_t *
tde_body(const struct pg_db *d)
{
    json_t *kp = d->provider ? json_loads(d->provider, 0, NULL) : NULL;
    char t[PGCMK_TIME_LEN] = "";

    if (d->last_check)
        pgcmk_time_format(d->last_check, t);
    return json_pack("{s:s, s:s, s:o, s:{s:s?, s:s?}, s:s, s:s?, s:s?, s:s?}", "id", d->id, "name",
                     d->id + strlen(PGCMK_TDE_PREFIX), "keyProvider", kp ? kp : json_object(),
                     "principalKey", "name", d->key_name, "uniqueIdentifier", d->key_version,
                     "state", tde_state(d), "reasonCode", d->reason_code, "reason", d->reason,
                     "lastCheck", d->last_check ? t : NULL);
}

static int
tde_check_name(const char *name, struct pgcmk_err *err)
{
    size_t n = name ? strlen(name) : 0;
    int ok = n >= 1 && n <= TDE_NAME_MAX;

    for (size_t i = 0; ok && i < n; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
             (name[i] >= '0' && name[i] <= '9') || name[i] == '_' || name[i] == '-' ||
             name[i] == '.';
    if (ok)
        return 0;
    return pgcmk_err_set(err, PGCMK_E_INVALID_RESOURCE_NAME, "name",
                         "The database name '%.64s' is not valid: 1 to %d letters, digits, '_', "
                         "'-' or '.'.",
                         name ? name : "", TDE_NAME_MAX);
}

static int
tde_path_ok(const json_t *v)
{
    const char *s = json_string_value(v);

    return s && *s && strlen(s) < 1024;
}

/* pgcmk's own options (pg_tde has none): the agent's timeout and retries on outages. */
static int
tde_limits(const json_t *kp, json_t *out, enum pgcmk_errc code, struct pgcmk_err *err)
{
    json_t *to = json_object_get(kp, "timeoutMs"), *re = json_object_get(kp, "retries");

    if ((to &&
         (!json_is_integer(to) || json_integer_value(to) < 1 || json_integer_value(to) > 60000)) ||
        (re && (!json_is_integer(re) || json_integer_value(re) < 0 || json_integer_value(re) > 5)))
        return pgcmk_err_set(err, code, "keyProvider",
                             "keyProvider.timeoutMs must be 1-60000 and keyProvider.retries 0-5.");
    if (to)
        json_object_set(out, "timeoutMs", to);
    if (re)
        json_object_set(out, "retries", re);
    return 0;
}

/* The KMIP provider options in canonical form, or NULL with err. */
static json_t *
tde_kmip_canon(const json_t *kp, struct pgcmk_err *err)
{
    const char *host = json_string_value(json_object_get(kp, "host"));
    json_t *port = json_object_get(kp, "port"), *cert = json_object_get(kp, "certPath");
    json_t *out;

    if (!host || !*host || strlen(host) > 253) {
        pgcmk_err_set(err, PGCMK_E_KMIP_PROVIDER_INVALID, "keyProvider.host",
                      "keyProvider.host must name the KMIP server.");
        return NULL;
    }
    if (!json_is_integer(port) || json_integer_value(port) < 1 ||
        json_integer_value(port) > 65535) {
        pgcmk_err_set(err, PGCMK_E_KMIP_PROVIDER_INVALID, "keyProvider.port",
                      "keyProvider.port must be a port number (1-65535).");
        return NULL;
    }
    if (!tde_path_ok(json_object_get(kp, "keyPath")) ||
        !tde_path_ok(json_object_get(kp, "caPath")) || (cert && !tde_path_ok(cert))) {
        pgcmk_err_set(err, PGCMK_E_KMIP_PROVIDER_INVALID, "keyProvider",
                      "keyProvider needs keyPath and caPath (and certPath, unless keyPath holds "
                      "the key followed by the certificate): paths of PEM files.");
        return NULL;
    }
    out = json_pack("{s:s, s:s, s:O}", "type", "kmip", "host", host, "port", port);
    if (tde_limits(kp, out, PGCMK_E_KMIP_PROVIDER_INVALID, err)) {
        json_decref(out);
        return NULL;
    }
    if (cert)
        json_object_set(out, "certPath", cert);
    json_object_set(out, "keyPath", json_object_get(kp, "keyPath"));
    json_object_set(out, "caPath", json_object_get(kp, "caPath"));
    return out;
}

/* The vault-v2 provider options (pg_tde's url, mountPath, tokenPath, caPath, namespace) in
 * canonical form (a null caPath or namespace left out), or NULL with err. */
static json_t *
tde_vault_canon(const json_t *kp, struct pgcmk_err *err)
{
    const char *url = json_string_value(json_object_get(kp, "url"));
    const char *mount = json_string_value(json_object_get(kp, "mountPath"));
    json_t *ca = json_object_get(kp, "caPath"), *ns = json_object_get(kp, "namespace");
    json_t *out;

    if (!url || strncmp(url, "https://", 8) != 0 || strlen(url) < 9 || strlen(url) > 1000 ||
        strpbrk(url, "?# \t\r\n")) {
        pgcmk_err_set(err, PGCMK_E_HV_PROVIDER_INVALID, "keyProvider.url",
                      "keyProvider.url must be the Vault server's https:// address, e.g. "
                      "https://127.0.0.1:8200 (the agent reaches Vault only over HTTPS).");
        return NULL;
    }
    if (!mount || !*mount || strlen(mount) > 256 || strstr(mount, "..") ||
        strpbrk(mount, "?# \t\r\n")) {
        pgcmk_err_set(err, PGCMK_E_HV_PROVIDER_INVALID, "keyProvider.mountPath",
                      "keyProvider.mountPath must be the KV v2 mount's path, e.g. \"secret\".");
        return NULL;
    }
    if (!tde_path_ok(json_object_get(kp, "tokenPath")) ||
        (ca && !json_is_null(ca) && !tde_path_ok(ca))) {
        pgcmk_err_set(err, PGCMK_E_HV_PROVIDER_INVALID, "keyProvider",
                      "keyProvider needs tokenPath (a file holding the token) and may have "
                      "caPath (a PEM file; null: the system's trust store).");
        return NULL;
    }
    if (ns && !json_is_null(ns) &&
        (!json_is_string(ns) || json_string_length(ns) > 256 ||
         strpbrk(json_string_value(ns), "\r\n"))) {
        pgcmk_err_set(err, PGCMK_E_HV_PROVIDER_INVALID, "keyProvider.namespace",
                      "keyProvider.namespace must be a namespace path or null.");
        return NULL;
    }
    out = json_pack("{s:s, s:s, s:s, s:O}", "type", "vault-v2", "url", url, "mountPath", mount,
                    "tokenPath", json_object_get(kp, "tokenPath"));
    if (tde_limits(kp, out, PGCMK_E_HV_PROVIDER_INVALID, err)) {
        json_decref(out);
        return NULL;
    }
    if (json_is_string(ca))
        json_object_set(out, "caPath", ca);
    if (json_is_string(ns) && json_string_length(ns))
        json_object_set(out, "namespace", ns);
    return out;
}

/* The kes provider options in canonical form: {"type":"kes","url","apiKey":"<redacted>",
 * "identity"} (the API key itself is sealed apart by tde_kes_save) or {"type":"kes","url",
 * "certPath","keyPath","identity"}, then caPath, insecure and createKey when set; or NULL with
 * err. The identity (derived, public) makes two PUTs with the same API key the same options. */
static json_t *
tde_kes_canon(const json_t *kp, struct pgcmk_err *err)
{
    const char *url = json_string_value(json_object_get(kp, "url"));
    json_t *ak = json_object_get(kp, "apiKey"), *ca = json_object_get(kp, "caPath");
    json_t *cert = json_object_get(kp, "certPath"), *key = json_object_get(kp, "keyPath");
    json_t *insecure = json_object_get(kp, "insecure"), *create = json_object_get(kp, "createKey");
    char id[PGCMK_KESC_ID_LEN];
    json_t *out;

    if (!url || strncmp(url, "https://", 8) != 0 || strlen(url) < 9 || strlen(url) > 1000 ||
        strpbrk(url, "?# \t\r\n")) {
        pgcmk_err_set(err, PGCMK_E_KES_PROVIDER_INVALID, "keyProvider.url",
                      "keyProvider.url must be the KES server's https:// address, e.g. "
                      "https://127.0.0.1:7373 (KES_SERVER).");
        return NULL;
    }
    if ((ak && (cert || key)) || (!ak && !(cert && key))) {
        pgcmk_err_set(err, PGCMK_E_KES_PROVIDER_INVALID, "keyProvider",
                      "keyProvider needs apiKey (kes:v1:..., KES_API_KEY) or certPath and keyPath "
                      "(PEM files of the client certificate and its key), not both.");
        return NULL;
    }
    if (ak && (!json_is_string(ak) || pgcmk_kesc_api_key_identity(json_string_value(ak), id))) {
        pgcmk_err_set(err, PGCMK_E_KES_PROVIDER_INVALID, "keyProvider.apiKey",
                      "keyProvider.apiKey is not a KES API key (kes:v1: and the base64 of a type "
                      "byte 0 and a 32-byte Ed25519 seed, as `kes identity new` prints).");
        return NULL;
    }
    if (!ak && (!tde_path_ok(cert) || !tde_path_ok(key) ||
                pgcmk_kesc_cert_file_identity(json_string_value(cert), id))) {
        pgcmk_err_set(err, PGCMK_E_KES_PROVIDER_INVALID, "keyProvider.certPath",
                      "keyProvider.certPath must be a readable PEM certificate file and keyPath "
                      "its key's file.");
        return NULL;
    }
    if ((ca && !json_is_null(ca) && !tde_path_ok(ca)) || (insecure && !json_is_boolean(insecure)) ||
        (create && !json_is_boolean(create))) {
        pgcmk_err_set(err, PGCMK_E_KES_PROVIDER_INVALID, "keyProvider",
                      "keyProvider.caPath must be a PEM file or null (the system's trust store); "
                      "insecure and createKey are true or false.");
        return NULL;
    }
    out = json_pack("{s:s, s:s}", "type", "kes", "url", url);
    if (tde_limits(kp, out, PGCMK_E_KES_PROVIDER_INVALID, err)) {
        json_decref(out);
        return NULL;
    }
    if (ak) {
        json_object_set_new(out, "apiKey", json_string("<redacted>"));
    } else {
        json_object_set(out, "certPath", cert);
        json_object_set(out, "keyPath", key);
    }
    json_object_set_new(out, "identity", json_string(id));
    if (json_is_string(ca))
        json_object_set(out, "caPath", ca);
    if (json_is_true(insecure))
        json_object_set_new(out, "insecure", json_true());
    if (json_is_true(create))
        json_object_set_new(out, "createKey", json_true());
    return out;
}

/* What a provider kind's agent call made: the wrapped DEK and where the key is. */
struct tde_new {
    unsigned char *w;
    size_t wl;
    char alg[24];
    char version[PGCMK_KMIPC_UID_LEN]; /* KMIP: the Unique Identifier; Vault: the KV version */
    char *key_uri;                     /* malloc'd */
    const json_t *request;             /* the request's keyProvider (its secrets, if any) */
};

static int
tde_kmip_new(const char *id, const char *prov_text, const char *key_name, struct tde_new *n,
             struct pgcmk_agent_result *res)
{
    struct pgcmk_kmipc_target t;
    void *holder = NULL;
    int rc;

    if (pgcmk_tde_kmip_target(prov_text, &t, &holder))
        return -1;
    rc = pgcmk_agent_kmip_new_dek(id, &t, key_name, &n->w, &n->wl, n->alg, n->version, res);
    if (rc == 0)
        n->key_uri = pgcmk_xasprintf("kmip://%s:%d/%s", t.host, t.port, key_name);
    json_decref(holder);
    return rc;
}

static int
tde_vault_new(const char *id, const char *prov_text, const char *key_name, struct tde_new *n,
              struct pgcmk_agent_result *res)
{
    struct pgcmk_vaultc_target t;
    void *holder = NULL;
    long version = 0;
    int rc;

    if (pgcmk_tde_vault_target(prov_text, &t, &holder))
        return -1;
    rc = pgcmk_agent_vault_new_dek(id, &t, key_name, &n->w, &n->wl, n->alg, &version, res);
    if (rc == 0) {
        char *u = pgcmk_vaultc_url_data(&t, key_name);

        snprintf(n->version, sizeof(n->version), "%ld", version);
        n->key_uri = u;
    }
    json_decref(holder);
    return rc;
}

static int
tde_kes_new(const char *id, const char *prov_text, const char *key_name, struct tde_new *n,
            struct pgcmk_agent_result *res)
{
    struct pgcmk_kesc_target t;
    void *holder = NULL;
    int rc;

    if (pgcmk_tde_kes_target(prov_text, NULL, &t, &holder))
        return -1;
    t.api_key = json_string_value(json_object_get(n->request, "apiKey"));
    rc = pgcmk_agent_kes_new_dek(id, &t, key_name,
                                 json_is_true(json_object_get(n->request, "createKey")), &n->w,
                                 &n->wl, n->alg, res);
    if (rc == 0)
        n->key_uri = pgcmk_kesc_url(&t, "describe", key_name);
    pgcmk_tde_kes_release(holder);
    return rc;
}

/* Keeps the request's API key sealed (aad = the database id), inside the database's write. */
static int
tde_kes_save(struct pgcmk_db *db, const char *id, const json_t *kp, struct pgcmk_err *err)
{
    const char *ak = json_string_value(json_object_get(kp, "apiKey"));
    unsigned char *sealed = NULL;
    size_t sl = 0;
    sqlite3_stmt *st;
    int rc;

    if (!ak)
        return 0;
    if (pgcmk_store_seal(ak, strlen(ak), id, &sealed, &sl))
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "The API key could not be sealed.");
    st = pgcmk_db_stmt(db, PGCMK_STMT_TDE_KES_SECRET_PUT);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, sealed, (int)sl, SQLITE_STATIC);
    rc = pgcmk_db_each(db, st, NULL, NULL, "keep a KES API key", err);
    free(sealed);
    return rc < 0 ? -1 : 0;
}

/* ---- the keyring file (pg_tde's "file" provider): the key is read from the file at each check,
 * with the PostgreSQL user's rights; a missing key, an unreadable file or a key that no longer
 * unwraps the DEK (the file was replaced) is a loss. ---- */

#define TDE_FILE_ALG "file-A256GCM"

/* The key of key_name in the keyring as the wrapping key: 0, 1 when missing, -1 with res. */
static int
tde_file_kek(const char *path, const char *key_name, unsigned char kek[32],
             struct pgcmk_agent_result *res)
{
    unsigned char key[PGCMK_KEYRING_DATA];
    size_t kl = 0;
    char why[512] = "";
    int rc = pgcmk_keyring_file_get(path, key_name, pg_user_uid(), pg_user_gid(), key, &kl, why,
                                    sizeof(why));

    if (rc < 0)
        return pgcmk_agent_fail(res, PGCMK_E_TDE_KEYRING_UNREADABLE, 1, "%s", why);
    if (rc == PGCMK_KEYRING_NONE)
        return 1;
    if (kl == 32)
        memcpy(kek, key, 32);
    else
        pgcmk_sha256(key, kl, kek);
    OPENSSL_cleanse(key, sizeof(key));
    return 0;
}

int
pgcmk_tde_file_new_dek(const char *db_id, const char *path, const char *key_name, size_t create_len,
                       unsigned char **wrapped, size_t *wrapped_len, struct pgcmk_agent_result *res)
{
    unsigned char kek[32], dek[PGCMK_AGENT_DEK_LEN], key[PGCMK_KEYRING_DATA];
    char why[512] = "";
    int rc;

    memset(res, 0, sizeof(*res));
    *wrapped = NULL;
    *wrapped_len = 0;
    rc = tde_file_kek(path, key_name, kek, res);
    if (rc < 0)
        return -1;
    if (rc > 0) { /* pg_tde_create_key_using_global_key_provider: a new random key */
        if (create_len != 16 && create_len != 32)
            return pgcmk_agent_fail(res, PGCMK_E_TDE_KEYRING_KEY_NOT_FOUND, 1,
                                    "The keyring file %.400s has no key '%.200s'.", path, key_name);
        if (pgcmk_random(key, create_len))
            return pgcmk_agent_fail(res, PGCMK_E_INTERNAL, 1, "No random bytes for a new key.");
        rc = pgcmk_keyring_file_put(path, key_name, key, create_len, pg_user_uid(), pg_user_gid(),
                                    why, sizeof(why));
        OPENSSL_cleanse(key, sizeof(key));
        if (rc < 0)
            return pgcmk_agent_fail(res, PGCMK_E_TDE_KEYRING_UNREADABLE, 1, "%s", why);
        if (tde_file_kek(path, key_name, kek, res))
            return res->code ? -1
                             : pgcmk_agent_fail(res, PGCMK_E_TDE_KEYRING_UNREADABLE, 1,
                                                "The keyring file %.400s lost the key '%.200s'.",
                                                path, key_name);
    }
    rc = -1;
    if (pgcmk_random(dek, sizeof(dek)))
        pgcmk_agent_fail(res, PGCMK_E_INTERNAL, 1, "No random bytes for a new DEK.");
    else if (pgcmk_aead_seal(kek, db_id, strlen(db_id), dek, sizeof(dek), wrapped, wrapped_len))
        pgcmk_agent_fail(res, PGCMK_E_INTERNAL, 1, "The DEK could not be wrapped.");
    else {
        pgcmk_agent_keep(db_id, dek);
        rc = 0;
    }
    OPENSSL_cleanse(kek, sizeof(kek));
    OPENSSL_cleanse(dek, sizeof(dek));
    return rc;
}

int
pgcmk_tde_file_check(const char *db_id, const char *path, const char *key_name,
                     const unsigned char *wrapped, size_t wrapped_len,
                     struct pgcmk_agent_result *res)
{
    unsigned char kek[32], *dek = NULL;
    size_t dl = 0;
    int rc;

    memset(res, 0, sizeof(*res));
    rc = tde_file_kek(path, key_name, kek, res);
    if (rc > 0)
        pgcmk_agent_fail(res, PGCMK_E_TDE_KEYRING_KEY_NOT_FOUND, 1,
                         "The keyring file %.400s has no key '%.200s' (the file was replaced or "
                         "emptied).",
                         path, key_name);
    if (rc == 0) {
        rc = pgcmk_aead_open(kek, db_id, strlen(db_id), wrapped, wrapped_len, &dek, &dl);
        OPENSSL_cleanse(kek, sizeof(kek));
        if (rc || dl != PGCMK_AGENT_DEK_LEN)
            rc = pgcmk_agent_fail(res, PGCMK_E_TDE_KEYRING_KEY_CHANGED, 1,
                                  "The key '%.200s' of the keyring file %.400s does not unwrap the "
                                  "database's key: it was replaced.",
                                  key_name, path);
        else
            pgcmk_agent_keep(db_id, dek);
        if (dek)
            pgcmk_secret_free(dek, dl);
    }
    if (rc)
        pgcmk_agent_forget(db_id);
    return rc ? -1 : 0;
}

static json_t *
tde_file_canon(const json_t *kp, struct pgcmk_err *err)
{
    json_t *out;

    if (!tde_path_ok(json_object_get(kp, "path"))) {
        pgcmk_err_set(err, PGCMK_E_TDE_FILE_PROVIDER_INVALID, "keyProvider.path",
                      "keyProvider.path must be the keyring file's path (pg_tde's file provider).");
        return NULL;
    }
    out = json_pack("{s:s, s:O}", "type", "file", "path", json_object_get(kp, "path"));
    return out;
}

static int
tde_file_new(const char *id, const char *prov_text, const char *key_name, struct tde_new *n,
             struct pgcmk_agent_result *res)
{
    json_t *o = json_loads(prov_text, 0, NULL);
    const char *path = json_string_value(json_object_get(o, "path"));
    int rc = -1;

    if (path && pgcmk_tde_file_new_dek(id, path, key_name, 32, &n->w, &n->wl, res) == 0) {
        snprintf(n->alg, sizeof(n->alg), "%s", TDE_FILE_ALG);
        n->key_uri = pgcmk_xasprintf("file://%s#%s", path, key_name);
        rc = 0;
    }
    json_decref(o);
    return rc;
}

/* The provider kinds: a new kind is a new row. */
static const struct tde_kind {
    const char *type;
    json_t *(*canon)(const json_t *kp, struct pgcmk_err *err);
    int (*new_dek)(const char *id, const char *prov_text, const char *key_name, struct tde_new *n,
                   struct pgcmk_agent_result *res);
    enum pgcmk_errc invalid, outage;
    /* optional: keeps the request's secrets (inside the database's write) */
    int (*save)(struct pgcmk_db *db, const char *id, const json_t *kp, struct pgcmk_err *err);
} tde_kinds[] = {
    {"kmip", tde_kmip_canon, tde_kmip_new, PGCMK_E_KMIP_PROVIDER_INVALID,
     PGCMK_E_KMIP_SERVER_UNREACHABLE},
    {"vault-v2", tde_vault_canon, tde_vault_new, PGCMK_E_HV_PROVIDER_INVALID,
     PGCMK_E_HV_SERVER_UNREACHABLE},
    {"kes", tde_kes_canon, tde_kes_new, PGCMK_E_KES_PROVIDER_INVALID,
     PGCMK_E_KES_SERVER_UNREACHABLE, tde_kes_save},
    {"file", tde_file_canon, tde_file_new, PGCMK_E_TDE_FILE_PROVIDER_INVALID,
     PGCMK_E_TDE_KEYRING_UNREADABLE},
};

/* The provider options in canonical form and their kind, or NULL with err. */
static json_t *
tde_provider(const json_t *kp, const struct tde_kind **kind, struct pgcmk_err *err)
{
    const char *type = json_string_value(json_object_get(kp, "type"));

    if (!json_is_object(kp)) {
        pgcmk_err_set(
            err, PGCMK_E_INVALID_CONTENT, "keyProvider",
            "The body needs keyProvider: {\"type\": \"kmip\", \"host\", \"port\", "
            "\"certPath\", \"keyPath\", \"caPath\"} or {\"type\": \"vault-v2\", "
            "\"url\", \"mountPath\", \"tokenPath\", \"caPath\", \"namespace\"} or {\"type\": "
            "\"kes\", \"url\", \"apiKey\" (or \"certPath\", \"keyPath\"), \"caPath\"} or "
            "{\"type\": "
            "\"file\", \"path\"}.");
        return NULL;
    }
    for (size_t i = 0; type && i < PGCMK_ARRAY_LEN(tde_kinds); i++)
        if (strcmp(type, tde_kinds[i].type) == 0) {
            *kind = &tde_kinds[i];
            return tde_kinds[i].canon(kp, err);
        }
    pgcmk_err_set(err, PGCMK_E_KMIP_PROVIDER_INVALID, "keyProvider.type",
                  "The key provider type '%.32s' is not supported; use \"kmip\", "
                  "\"vault-v2\", \"kes\" or \"file\".",
                  type ? type : "");
    return NULL;
}

struct tde_put_ctx {
    struct pg_db *d;
    const struct tde_kind *kind;
    const json_t *kp;
};

static int
tde_put_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct tde_put_ctx *c = ctx;

    if (pg_db_save(db, c->d, err))
        return -1;
    if (c->kind->save && c->kind->save(db, c->d->id, c->kp, err))
        return -1;
    return pg_record_state(db, c->d, "Ready", NULL, err);
}

/* A new binding of id (no row yet) to key_name of the provider (canonical options prov_text of
 * that kind; request: the options as given, with their secrets): the agent locates the key (made
 * when missing) and wraps a new DEK under it, then the row (kind tde, Ready) is written. 0 with *d
 * filled (pg_db_release it), or -1 with err. The network runs outside any transaction. */
static int
tde_new_binding(const char *id, const struct tde_kind *kind, const char *prov_text,
                const json_t *request, const char *key_name, struct pg_db *d, struct pgcmk_err *err)
{
    struct pgcmk_agent_result res;
    struct tde_new n;
    int rc;

    memset(&n, 0, sizeof(n));
    memset(&res, 0, sizeof(res));
    memset(d, 0, sizeof(*d));
    n.request = request;
    rc = kind->new_dek(id, prov_text, key_name, &n, &res);
    if (rc) {
        if (!res.code && !res.message[0])
            pgcmk_err_set(err, kind->invalid, "keyProvider", "keyProvider is not a %s provider.",
                          kind->type);
        else
            pgcmk_err_set(err, res.code ? res.code : kind->outage, "keyProvider", "%s",
                          res.message);
    } else {
        struct tde_put_ctx c = {d, kind, n.request};

        d->id = pgcmk_xstrdup(id);
        d->kind = PG_TDE;
        d->sub = pgcmk_xstrdup("");
        d->rg = pgcmk_xstrdup("");
        d->key_uri = n.key_uri;
        n.key_uri = NULL;
        d->key_name = pgcmk_xstrdup(key_name);
        d->key_version = pgcmk_xstrdup(n.version);
        d->wrapped = n.w;
        d->wrapped_len = n.wl;
        n.w = NULL;
        d->alg = pgcmk_xstrdup(n.alg);
        d->access = pgcmk_xstrdup(PG_ACCESS_OK);
        d->last_check = d->created_at = pgcmk_clock_now();
        d->provider = pgcmk_xstrdup(prov_text);
        rc = pgcmk_db_tx(pgcmk_db(), tde_put_tx, &c, err);
        if (rc) {
            pgcmk_agent_forget(id);
            pg_db_release(d);
        }
    }
    free(n.w);
    free(n.key_uri);
    return rc ? -1 : 0;
}

static int
tde_put(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = pgcmk_req_param(rq, "name");
    const char *key_name = json_string_value(json_object_get(rq->json, "principalKeyName"));
    struct pgcmk_db *db = pgcmk_db();
    const struct tde_kind *kind = NULL;
    json_t *prov;
    char *id, *prov_text;
    struct pg_db d, old;
    int rc;

    if (tde_check_name(name, err))
        return -1;
    if (!key_name || !*key_name || strlen(key_name) > TDE_KEY_MAX)
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, "principalKeyName",
                             "principalKeyName must be the principal key's name (1 to %d "
                             "characters).",
                             TDE_KEY_MAX);
    prov = tde_provider(json_object_get(rq->json, "keyProvider"), &kind, err);
    if (!prov)
        return -1;
    prov_text = json_dumps(prov, JSON_COMPACT | JSON_SORT_KEYS);
    id = pgcmk_xasprintf(PGCMK_TDE_PREFIX "%s", name);
    rc = pg_db_load(db, id, &old, err);
    if (rc != 0) {
        if (rc > 0) {
            int same = old.kind == PG_TDE && old.provider && old.key_name &&
                       strcmp(old.provider, prov_text) == 0 && strcmp(old.key_name, key_name) == 0;

            if (same)
                pgcmk_resp_json(rs, 200, tde_body(&old));
            else
                rc = pgcmk_err_set(err, PGCMK_E_PG_ENCRYPTION_UPDATE, "keyProvider",
                                   "The database '%.64s' exists with another key provider or "
                                   "principal key; delete it first.",
                                   name);
            rc = same ? 0 : -1;
            pg_db_release(&old);
        }
        free(id);
        free(prov_text);
        json_decref(prov);
        return rc;
    }
    if (tde_new_binding(id, kind, prov_text, json_object_get(rq->json, "keyProvider"), key_name, &d,
                        err) == 0) {
        pgcmk_resp_json(rs, 201, tde_body(&d));
        pg_db_release(&d);
    } else {
        rc = -1;
    }
    free(id);
    free(prov_text);
    json_decref(prov);
    return rc ? -1 : 0;
}

static int
tde_load(const char *name, struct pg_db *d, struct pgcmk_err *err)
{
    char *id;
    int rc;

    if (tde_check_name(name, err))
        return -1;
    id = pgcmk_xasprintf(PGCMK_TDE_PREFIX "%s", name);
    rc = pg_db_load(pgcmk_db(), id, d, err);
    free(id);
    if (rc < 0)
        return -1;
    if (rc == 0 || d->kind != PG_TDE) {
        pg_db_release(d);
        return pgcmk_err_set(err, PGCMK_E_TDE_DATABASE_NOT_FOUND, "name",
                             "No self-managed database is named '%.64s'.", name);
    }
    return 0;
}

static int
tde_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct pg_db d;

    if (tde_load(pgcmk_req_param(rq, "name"), &d, err))
        return -1;
    pgcmk_resp_json(rs, 200, tde_body(&d));
    pg_db_release(&d);
    return 0;
}

static int
tde_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    json_t *ids = json_array(), *out = json_array(), *v;
    size_t i;

    (void)rq;
    if (pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_TDE_LIST), pgcmk_db_collect_text, ids,
                      "list self-managed databases", err) < 0) {
        json_decref(ids);
        json_decref(out);
        return -1;
    }
    json_array_foreach(ids, i, v) {
        struct pg_db d;

        if (strncmp(json_string_value(v), PGCMK_TDE_PREFIX, strlen(PGCMK_TDE_PREFIX)) != 0)
            continue; /* a self-managed instance's server key (pgcmk_tde_bind) */
        if (pg_db_load(db, json_string_value(v), &d, err) > 0) {
            json_array_append_new(out, tde_body(&d));
            pg_db_release(&d);
        }
    }
    json_decref(ids);
    pgcmk_resp_json(rs, 200, json_pack("{s:o}", "value", out));
    return 0;
}

static int
tde_delete_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    const char *id = ((struct pg_db *)ctx)->id;
    sqlite3_stmt *st;

    if (pg_db_delete(db, id, err))
        return -1;
    st = pgcmk_db_stmt(db, PGCMK_STMT_TDE_KES_SECRET_DEL); /* a kes provider's API key */
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return pgcmk_db_each(db, st, NULL, NULL, "forget a KES API key", err) < 0 ? -1 : 0;
}

static int
tde_delete(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct pg_db d;
    json_t *body;

    if (tde_load(pgcmk_req_param(rq, "name"), &d, err))
        return -1;
    if (pgcmk_db_tx(pgcmk_db(), tde_delete_tx, &d, err)) {
        pg_db_release(&d);
        return -1;
    }
    pg_forget(pgcmk_db(), d.id);
    body = tde_body(&d);
    json_object_set_new(body, "state", json_string("Deleted"));
    pgcmk_resp_json(rs, 200, body);
    pg_db_release(&d);
    return 0;
}

static int
tde_render(struct pgcmk_db *db, const char *id, const char *state, struct pgcmk_err *err)
{
    (void)db;
    (void)err;
    LOG_INFO("tde: the database %s is %s", id, state);
    return 0;
}

#define TDE_ONE "/emulator/tde/databases/{name}"
static const struct pgcmk_route tde_routes[] = {
    {"GET", "/emulator/tde/databases", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, tde_list},
    {"GET", TDE_ONE, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, tde_get},
    {"PUT", TDE_ONE, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON, NULL, tde_put},
    {"DELETE", TDE_ONE, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, tde_delete},
};

void
pgcmk_tde_register(void)
{
    pg_set_renderer(PG_TDE, tde_render);
    pgcmk_router_add(tde_routes, PGCMK_ARRAY_LEN(tde_routes));
}

/* ---- issue 16: bindings of self-managed real instances (h-tdeinst) ---------------------------
 * The pg_tde agent (src/pg/tdeagent.c) binds an instance's server key (or a database's principal
 * key) once it set it: the same row as PUT /emulator/tde/databases makes, with the instance's id,
 * so the reconciler's key-source rows check it and PGCMK_EV_PG_ACCESS_CHANGED drives the
 * instance's logins (src/pg/access.c, in pg_tde's words there). */

int
pgcmk_tde_bind(const char *db_id, const char *provider_json, const char *key_name, int key_len,
               int create_missing, struct pgcmk_err *err)
{
    json_t *kp = provider_json ? json_loads(provider_json, 0, NULL) : NULL, *prov;
    const json_t *pn = json_object_get(kp, "providerName");
    const struct tde_kind *kind = NULL;
    struct pg_db d, old;
    char *prov_text;
    int rc;

    (void)key_len; /* the agent made the key at its length before it binds (key_set) */
    (void)create_missing;
    if (!db_id || !*db_id || !key_name || !*key_name || strlen(key_name) > TDE_KEY_MAX) {
        json_decref(kp);
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, "principalKeyName",
                             "a binding needs the database's id and the principal key's name "
                             "(1 to %d characters)",
                             TDE_KEY_MAX);
    }
    prov = tde_provider(kp, &kind, err);
    if (!prov) {
        json_decref(kp);
        return -1;
    }
    if (json_is_string(pn)) /* pg_tde's provider name, for the refusal's message */
        json_object_set(prov, "providerName", (json_t *)pn);
    prov_text = json_dumps(prov, JSON_COMPACT | JSON_SORT_KEYS);
    rc = pg_db_load(pgcmk_db(), db_id, &old, err);
    if (rc > 0) {
        int same = old.kind == PG_TDE && old.provider && old.key_name &&
                   strcmp(old.provider, prov_text) == 0 && strcmp(old.key_name, key_name) == 0 &&
                   strcmp(old.access, PG_ACCESS_LOST) != 0;

        pg_db_release(&old);
        /* the same key, not lost: nothing to do; else the old binding goes first */
        rc = same ? 1 : pgcmk_tde_unbind(db_id, err);
    }
    if (rc == 0) {
        rc = tde_new_binding(db_id, kind, prov_text, kp, key_name, &d, err);
        if (rc == 0) {
            LOG_INFO("tde: %s is bound to the principal key '%s' (%s)", db_id, key_name,
                     kind->type);
            pg_db_release(&d);
        }
    }
    free(prov_text);
    json_decref(prov);
    json_decref(kp);
    return rc < 0 ? -1 : 0;
}

int
pgcmk_tde_unbind(const char *db_id, struct pgcmk_err *err)
{
    struct pg_db d;
    int rc = pg_db_load(pgcmk_db(), db_id, &d, err);

    if (rc <= 0)
        return rc;
    if (d.kind != PG_TDE) {
        pg_db_release(&d);
        return pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL,
                             "%.200s is not a self-managed database: it has no binding", db_id);
    }
    rc = pgcmk_db_tx(pgcmk_db(), tde_delete_tx, &d, err);
    if (rc == 0) {
        pg_forget(pgcmk_db(), d.id);
        if (pgcmk_pg_has(db_id) && pgcmk_pg_access_apply(db_id, err)) /* no refusal left */
            LOG_WARN("tde: %s: the access after its unbind: %s", db_id, err->message);
        LOG_INFO("tde: %s is unbound", db_id);
    }
    pg_db_release(&d);
    return rc;
}
