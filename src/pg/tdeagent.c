/* tdeagent.c - the pg_tde agent (include/pgcmk/tdeproto.h): the operations pgcmk's
 * pg_tde-compatible extension asks for over the archive socket, with pg_tde's rules and error
 * texts (percona/pg_tde src/catalog/tde_keyring.c, tde_principal_key.c, src/keyring/).
 *
 * State: the tables pg_tde_providers and pg_tde_keys (migration 19), and a copy of them in the
 * instance's $PGDATA/pg_tde/pgcmk_tde.json (written as the PostgreSQL user), so the
 * configuration travels with the data directory as pg_tde's does: an instance whose rows are
 * missing (a copy of another's directory) takes them from that file at its first request.
 * Keys are never stored: the agent fetches them from the providers at each use (KMIP through
 * include/pgcmk/kmipc.h, Register on create and Locate+Get on use, one connection per call as
 * libkmip; Vault KV v2 through include/pgcmk/vaultc.h; the keyring file in pg_tde's own format,
 * include/pgcmk/keyring.h). Files named in SQL are opened with the PostgreSQL user's rights
 * (setfsuid on the serving thread). A key's HMAC is kept to tell a changed key from the same.
 * A server or database key, once set, is bound to the reconciler (pgcmk_tde_bind). */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pg/arfmt.h"
#include "pg/internal.h"
#include "pg/tdeproto.h"
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/keyring.h"
#include "pgcmk/kmipc.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"
#include "pgcmk/tde.h"
#include "pgcmk/tdeproto.h"
#include "pgcmk/vaultc.h"

#define TDEA_SERVER       (-1) /* targets of pg_tde_keys */
#define TDEA_DEFAULT      (-2)
#define TDEA_NAME_MAX     127  /* pg_tde: MAX_PROVIDER_NAME_LEN - 1 */
#define TDEA_OPTIONS_MAX  1023 /* pg_tde: MAX_KEYRING_OPTION_LEN - 1 */
#define TDEA_KEYNAME_MAX  255  /* pg_tde: TDE_KEY_NAME_LEN - 1 */
#define TDEA_MAC_LEN      32
#define TDEA_MIRROR       "pgcmk_tde.json"
#define TDEA_KMIP_TIMEOUT 3000
#define TDEA_PEER_DEPTH   6 /* generations from the peer up to the postmaster */

/* An error answer: pg_tde's SQLSTATE and texts. */
struct tdea_err {
    char sqlstate[6];
    char message[512];
    char detail[768];
    char hint[512];
};

static int tdea_fail(struct tdea_err *e, const char *state, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
tdea_fail(struct tdea_err *e, const char *state, const char *fmt, ...)
{
    va_list ap;

    snprintf(e->sqlstate, sizeof(e->sqlstate), "%s", state);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

/* What one request is about. */
struct tdea_ctx {
    const char *db_id;
    struct pg_inst_info inst;
    const struct tdep_msg *rq;
    long dboid;
    int superuser;
    size_t key_len; /* 16 or 32: pg_tde.cipher */
    struct tdep_buf out;
};

/* A key provider row. */
struct tdea_prov {
    long scope; /* 0 = global, else a database oid */
    long id;
    char name[TDEA_NAME_MAX + 1];
    char type[16];
    json_t *o; /* the options */
};

static void
tdea_prov_release(struct tdea_prov *p)
{
    json_decref(p->o);
    p->o = NULL;
}

/* ---- the peer: the instance's postmaster or one of its descendants ------------------------- */

static pid_t
tdea_ppid(pid_t pid)
{
    char path[64], buf[512], *p;
    int fd, ppid = 0;
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    p = strrchr(buf, ')'); /* the command name may hold anything but ends before the last ')' */
    if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
        return 0;
    return (pid_t)ppid;
}

/* The postmaster: the supervisor's pid, or while it starts (pg_tde's start check runs in the
 * postmaster before it is ready) the first line of its data directory's postmaster.pid. */
static pid_t
tdea_postmaster(const struct pg_inst_info *inst)
{
    char path[PATH_MAX + 32], buf[32];
    int fd;
    ssize_t n;

    if (inst->pid > 0)
        return inst->pid;
    pg_fmt(path, sizeof(path), "%s/postmaster.pid", inst->data);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    return (pid_t)atoi(buf);
}

static int
tdea_peer_ok(int fd, const struct pg_inst_info *inst)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    pid_t pm = tdea_postmaster(inst);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || pm <= 1)
        return 0;
    /* a backend is the postmaster's child; a program a backend runs (COPY FROM PROGRAM, an
     * archive_command) a grandchild or further: a few generations up */
    for (int i = 0; i < TDEA_PEER_DEPTH && cred.pid > 1; i++) {
        if (cred.pid == pm)
            return 1;
        cred.pid = tdea_ppid(cred.pid);
    }
    return 0;
}

/* ---- provider options ------------------------------------------------------------------------ */

static const char *
tdea_opt(const struct tdea_prov *p, const char *k)
{
    const char *s = json_string_value(json_object_get(p->o, k));

    return s && *s ? s : NULL;
}

static int
tdea_port(const struct tdea_prov *p)
{
    json_t *v = json_object_get(p->o, "port");

    if (json_is_integer(v))
        return (int)json_integer_value(v);
    if (json_is_string(v))
        return atoi(json_string_value(v));
    return 0;
}

/* pg_tde's checks of the options of a type (load_*_keyring_provider_options). */
static int
tdea_check_options(const char *type, json_t *o, struct tdea_err *e)
{
    static const struct {
        const char *type;
        const char *keys[5];
    } need[] = {
        {"file", {"path"}},
        {"vault-v2", {"url", "mountPath", "tokenPath"}},
        {"kmip", {"host", "port", "caPath", "certPath", "keyPath"}},
    };

    char missing[128] = "";

    for (size_t i = 0; i < PGCMK_ARRAY_LEN(need); i++) {
        if (strcmp(type, need[i].type) != 0)
            continue;
        for (size_t k = 0; k < 5 && need[i].keys[k]; k++) {
            json_t *v = json_object_get(o, need[i].keys[k]);

            if (!(json_is_string(v) && json_string_length(v)) && !json_is_integer(v)) {
                size_t l = strlen(missing);

                snprintf(missing + l, sizeof(missing) - l, " %s", need[i].keys[k]);
            }
        }
        if (!missing[0])
            return 0;
        if (strcmp(type, "file") == 0)
            return tdea_fail(e, "22023", "file path is missing in the keyring options");
        return tdea_fail(e, "22023", "missing in the keyring options:%s", missing);
    }
    return tdea_fail(e, "22000", "Invalid provider type.");
}

/* The keyProvider JSON of include/pgcmk/tde.h for pgcmk_tde_bind. */
static char *
tdea_provider_json(const struct tdea_prov *p)
{
    json_t *o = json_deep_copy(p->o);
    char *s;

    json_object_set_new(o, "type", json_string(p->type));
    if (strcmp(p->type, "kmip") == 0)
        json_object_set_new(o, "port", json_integer(tdea_port(p)));
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

/* ---- the providers, for real -------------------------------------------------------------- */

static void
tdea_kmip_target(const struct tdea_prov *p, struct pgcmk_kmipc_target *t)
{
    memset(t, 0, sizeof(*t));
    t->host = tdea_opt(p, "host");
    t->port = tdea_port(p);
    t->cert_path = tdea_opt(p, "certPath");
    t->key_path = tdea_opt(p, "keyPath");
    t->ca_path = tdea_opt(p, "caPath");
    t->timeout_ms = TDEA_KMIP_TIMEOUT;
    t->retries = 0;
}

static void
tdea_vault_target(const struct tdea_prov *p, struct pgcmk_vaultc_target *t)
{
    memset(t, 0, sizeof(*t));
    t->url = tdea_opt(p, "url");
    t->mount = tdea_opt(p, "mountPath");
    t->token_path = tdea_opt(p, "tokenPath");
    t->ca_path = tdea_opt(p, "caPath");
    t->ns = tdea_opt(p, "namespace");
    t->timeout_ms = 5000;
    t->retries = 0;
}

/* A file the PostgreSQL user can read, whole (at most 64 KiB), or NULL. */
static char *
tdea_read_small(const char *path)
{
    int fd = path ? pgcmk_open_as(path, O_RDONLY, 0, pg_user_uid(), pg_user_gid()) : -1;
    char *buf;
    ssize_t n;

    if (fd < 0)
        return NULL;
    buf = pgcmk_xmalloc(65537);
    n = read(fd, buf, 65536);
    close(fd);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

/* Seed 001 passes (server certificate, client certificate, client key) where pg_tde takes
 * (certificate, key, CA): says so in the hint when the "certificate" is a CA or the "CA" file
 * holds a private key. */
static void
tdea_kmip_hint(const struct tdea_prov *p, struct tdea_err *e)
{
    char *ca = tdea_read_small(tdea_opt(p, "caPath"));
    char *cert = tdea_read_small(tdea_opt(p, "certPath"));
    int swapped = ca && strstr(ca, "PRIVATE KEY-----") != NULL;

    if (cert && !swapped) {
        BIO *b = BIO_new_mem_buf(cert, -1);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

        swapped = x && X509_check_ca(x) >= 1;
        X509_free(x);
        BIO_free(b);
    }
    if (swapped)
        snprintf(e->hint, sizeof(e->hint),
                 "pg_tde_add_global_key_provider_kmip takes (name, host, port, cert_path, "
                 "key_path, ca_path): the client certificate, its key, then the server's CA "
                 "certificate. The file given as cert_path is a CA certificate or the one given as "
                 "ca_path holds a private key: the arguments look like (server certificate, "
                 "client certificate, client key), the order of an older pg_tde documentation.");
    if (ca)
        pgcmk_secret_free(ca, strlen(ca));
    if (cert)
        pgcmk_secret_free(cert, strlen(cert));
}

/* Fetches key `name` from provider p: 1 with the key, 0 when it does not exist, -1 with e (the
 * provider's words in e->detail; the caller words the message). */
static int
tdea_fetch(const struct tdea_prov *p, const char *name, unsigned char key[PGTDE_KEY_MAX],
           size_t *key_len, struct tdea_err *e)
{
    struct pgcmk_agent_result res;
    int rc = -1;

    memset(&res, 0, sizeof(res));
    *key_len = 0;
    if (strcmp(p->type, "file") == 0) {
        char err[512] = "";

        rc = pgcmk_keyring_file_get(tdea_opt(p, "path"), name, pg_user_uid(), pg_user_gid(), key,
                                    key_len, err, sizeof(err));
        if (rc < 0)
            snprintf(e->detail, sizeof(e->detail), "%s", err);
        return rc;
    }
    pgcmk_fs_as(pg_user_uid(), pg_user_gid());
    if (strcmp(p->type, "kmip") == 0) {
        struct pgcmk_kmipc_target t;
        char uids[PGCMK_KMIPC_MAX_ITEMS][PGCMK_KMIPC_UID_LEN];
        unsigned char k[PGCMK_KMIPC_MAX_KEY];
        size_t kl = 0;
        int n;

        tdea_kmip_target(p, &t);
        n = pgcmk_kmipc_locate(&t, name, uids, &res);
        if (n == 0) {
            rc = 0;
        } else if (n > 1) {
            rc = -1;
            snprintf(res.message, sizeof(res.message),
                     "KMIP server %s:%d has %d keys named \"%s\" (pg_tde: resource not "
                     "available)",
                     t.host, t.port, n, name);
        } else if (n == 1 && pgcmk_kmipc_get(&t, uids[0], k, &kl, &res) == 0) {
            if (kl == 16 || kl == 32) {
                memcpy(key, k, kl);
                *key_len = kl;
                rc = 1;
            } else {
                snprintf(res.message, sizeof(res.message),
                         "KMIP server %s:%d: the key \"%s\" has %zu bytes, not 16 or 32", t.host,
                         t.port, name, kl);
            }
            OPENSSL_cleanse(k, sizeof(k));
        }
    } else if (strcmp(p->type, "vault-v2") == 0) {
        struct pgcmk_vaultc_target t;
        unsigned char k[PGCMK_VAULTC_MAX_KEY];
        size_t kl = 0;

        tdea_vault_target(p, &t);
        rc = pgcmk_agent_vault_get_key(&t, name, k, &kl, &res);
        if (rc == 1) {
            memcpy(key, k, kl);
            *key_len = kl;
        }
        OPENSSL_cleanse(k, sizeof(k));
    }
    pgcmk_fs_restore();
    if (rc < 0) {
        snprintf(e->detail, sizeof(e->detail), "%s", res.message);
        if (strcmp(p->type, "kmip") == 0)
            tdea_kmip_hint(p, e);
    }
    return rc;
}

/* Stores a new key in provider p: 0, 1 when it exists there already (never overwritten), or -1
 * with e. */
static int
tdea_store(const struct tdea_prov *p, const char *name, const unsigned char *key, size_t key_len,
           struct tdea_err *e)
{
    struct pgcmk_agent_result res;
    int rc = -1;

    memset(&res, 0, sizeof(res));
    if (strcmp(p->type, "file") == 0) {
        char err[512] = "";

        rc = pgcmk_keyring_file_put(tdea_opt(p, "path"), name, key, key_len, pg_user_uid(),
                                    pg_user_gid(), err, sizeof(err));
        if (rc)
            snprintf(e->detail, sizeof(e->detail), "%s", err);
        return rc;
    }
    pgcmk_fs_as(pg_user_uid(), pg_user_gid());
    if (strcmp(p->type, "kmip") == 0) {
        struct pgcmk_kmipc_target t;
        char uid[PGCMK_KMIPC_UID_LEN];

        tdea_kmip_target(p, &t);
        rc = pgcmk_kmipc_register(&t, name, key, key_len, uid, &res);
    } else if (strcmp(p->type, "vault-v2") == 0) {
        struct pgcmk_vaultc_target t;

        tdea_vault_target(p, &t);
        rc = pgcmk_agent_vault_put_key(&t, name, key, key_len, &res);
    }
    pgcmk_fs_restore();
    if (rc) {
        snprintf(e->detail, sizeof(e->detail), "%s", res.message);
        if (strcmp(p->type, "kmip") == 0)
            tdea_kmip_hint(p, e);
    }
    return rc;
}

/* pg_tde's KeyringValidate at provider add/change: the file opens (created when missing), the
 * KMIP server answers a Locate, the Vault mount is KV v2 when the server says. */
static int
tdea_validate(const struct tdea_prov *p, struct tdea_err *e)
{
    struct pgcmk_agent_result res;
    int rc = 0;

    memset(&res, 0, sizeof(res));
    if (strcmp(p->type, "file") == 0) {
        const char *path = tdea_opt(p, "path");
        int fd = pgcmk_open_as(path, O_CREAT | O_RDWR, 0600, pg_user_uid(), pg_user_gid());

        if (fd < 0)
            return tdea_fail(e,
                             errno == ENOENT   ? "58P01"
                             : errno == EACCES ? "42501"
                                               : "58030",
                             "Failed to open keyring file %s: %s", path, strerror(errno));
        close(fd);
        return 0;
    }
    pgcmk_fs_as(pg_user_uid(), pg_user_gid());
    if (strcmp(p->type, "kmip") == 0) {
        struct pgcmk_kmipc_target t;
        char uids[PGCMK_KMIPC_MAX_ITEMS][PGCMK_KMIPC_UID_LEN];

        tdea_kmip_target(p, &t);
        rc = pgcmk_kmipc_locate(&t, "pg_tde_validate", uids, &res) < 0 ? -1 : 0;
    } else {
        struct pgcmk_vaultc_target t;

        tdea_vault_target(p, &t);
        rc = pgcmk_agent_vault_mount_check(&t, &res);
        rc = rc < 0 || rc == 0 ? -1 : 0;
    }
    pgcmk_fs_restore();
    if (rc == 0)
        return 0;
    snprintf(e->detail, sizeof(e->detail), "%s", res.message);
    if (strcmp(p->type, "kmip") == 0) {
        tdea_kmip_hint(p, e);
        return tdea_fail(e, "XX000",
                         "could not connect to the KMIP server %s:%d of key provider "
                         "\"%s\"",
                         tdea_opt(p, "host"), tdea_port(p), p->name);
    }
    return tdea_fail(e, "XX000", "failed to validate the Vault mount \"%s\" of key provider \"%s\"",
                     tdea_opt(p, "mountPath"), p->name);
}

/* ---- state ---------------------------------------------------------------------------------- */

static void
tdea_mac(const unsigned char *key, size_t len, unsigned char mac[TDEA_MAC_LEN])
{
    static const char what[] = "pg_tde principal key check";
    size_t ml = 0;

    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, len, (const unsigned char *)what,
                   sizeof(what) - 1, mac, TDEA_MAC_LEN, &ml))
        memset(mac, 0, TDEA_MAC_LEN);
}

static void
tdea_prov_row(sqlite3_stmt *st, long scope, struct tdea_prov *p)
{
    const char *opts = (const char *)sqlite3_column_text(st, 3);

    memset(p, 0, sizeof(*p));
    p->scope = scope;
    p->id = (long)sqlite3_column_int64(st, 0);
    snprintf(p->name, sizeof(p->name), "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(p->type, sizeof(p->type), "%s", (const char *)sqlite3_column_text(st, 2));
    p->o = json_loads(opts ? opts : "{}", 0, NULL);
    if (!json_is_object(p->o)) {
        json_decref(p->o);
        p->o = json_object();
    }
}

/* A provider by name (by_id < 0) or id: 1 found, 0 not, -1 with e. */
static int
tdea_prov_load(const char *db_id, long scope, const char *name, long id, struct tdea_prov *p,
               struct tdea_err *e)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st =
        pgcmk_db_stmt(db, name ? PGCMK_STMT_TDEA_PROV_GET : PGCMK_STMT_TDEA_PROV_BY_ID);
    struct pgcmk_err err;
    int rc;

    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, scope);
    if (name)
        sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 3, id);
    rc = pgcmk_db_step(db, st, "read a pg_tde key provider", &err);
    if (rc == 1)
        tdea_prov_row(st, scope, p);
    pgcmk_db_done(st);
    if (rc < 0)
        return tdea_fail(e, "XX000", "%s", err.message);
    return rc;
}

/* A key row. */
struct tdea_key {
    char name[TDEA_KEYNAME_MAX + 1];
    long prov_scope, prov_id;
    int64_t created_ms;
    size_t len;
    unsigned char mac[TDEA_MAC_LEN];
};

static int
tdea_key_load(const char *db_id, long target, struct tdea_key *k, struct tdea_err *e)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_KEY_GET);
    struct pgcmk_err err;
    int rc;

    memset(k, 0, sizeof(*k));
    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, target);
    rc = pgcmk_db_step(db, st, "read a pg_tde principal key", &err);
    if (rc == 1) {
        snprintf(k->name, sizeof(k->name), "%s", (const char *)sqlite3_column_text(st, 0));
        k->prov_scope = (long)sqlite3_column_int64(st, 1);
        k->prov_id = (long)sqlite3_column_int64(st, 2);
        k->created_ms = sqlite3_column_int64(st, 3);
        k->len = (size_t)sqlite3_column_int64(st, 4);
        if (sqlite3_column_bytes(st, 5) == TDEA_MAC_LEN)
            memcpy(k->mac, sqlite3_column_blob(st, 5), TDEA_MAC_LEN);
    }
    pgcmk_db_done(st);
    if (rc < 0)
        return tdea_fail(e, "XX000", "%s", err.message);
    return rc;
}

/* The copy in $PGDATA/pg_tde/pgcmk_tde.json: {"providers":[{scope,id,name,type,options}],
 * "keys":[{target,name,providerScope,providerId,created,length}]}. */
static json_t *
tdea_state_json(const char *db_id, int mirror)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    json_t *prov = json_array(), *keys = json_array(), *rows = json_array(), *r;
    sqlite3_stmt *st;
    size_t i;

    st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_PROV_ALL);
    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, pgcmk_db_collect_row, rows, "list pg_tde providers", &err) >= 0)
        json_array_foreach(rows, i, r) {
            json_t *o = json_loads(json_string_value(json_array_get(r, 4)), 0, NULL);

            json_array_append_new(
                prov, json_pack("{s:I, s:I, s:s, s:s, s:o}", "scope",
                                (json_int_t)atol(json_string_value(json_array_get(r, 0))), "id",
                                (json_int_t)atol(json_string_value(json_array_get(r, 1))), "name",
                                json_string_value(json_array_get(r, 2)), "type",
                                json_string_value(json_array_get(r, 3)), "options",
                                o ? o : json_object()));
        }
    json_array_clear(rows);
    st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_KEY_ALL);
    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, pgcmk_db_collect_row, rows, "list pg_tde keys", &err) >= 0)
        json_array_foreach(rows, i, r) {
            long target = atol(json_string_value(json_array_get(r, 0)));
            char t[PGCMK_TIME_LEN] = "";

            pgcmk_time_format(atoll(json_string_value(json_array_get(r, 4))), t);
            json_array_append_new(
                keys,
                json_pack("{s:s, s:I, s:s, s:I, s:I, s:s, s:I}", "target",
                          target == TDEA_SERVER    ? "server"
                          : target == TDEA_DEFAULT ? "default"
                                                   : "database",
                          "databaseOid", (json_int_t)(target > 0 ? target : 0), "name",
                          json_string_value(json_array_get(r, 1)), "providerScope",
                          (json_int_t)atol(json_string_value(json_array_get(r, 2))), "providerId",
                          (json_int_t)atol(json_string_value(json_array_get(r, 3))), "created", t,
                          "length", (json_int_t)atol(json_string_value(json_array_get(r, 5)))));
            if (mirror) { /* what an import needs: the target's number, the key's check */
                json_t *k = json_array_get(keys, json_array_size(keys) - 1);

                json_object_set_new(k, "targetId", json_integer(target));
                json_object_set_new(k, "createdMs",
                                    json_integer(atoll(json_string_value(json_array_get(r, 4)))));
                json_object_set(k, "check", json_array_get(r, 6));
            }
        }
    json_decref(rows);
    return json_pack("{s:s, s:o, s:o}", "emulation",
                     "pgcmk's pg_tde agent: key providers and principal keys (no key bytes)",
                     "providers", prov, "keys", keys);
}

json_t *
pg_tde_agent_describe(const char *db_id)
{
    return tdea_state_json(db_id, 0);
}

/* Rewrites the copy as the PostgreSQL user (temporary file, then rename). */
static void
tdea_mirror(const struct tdea_ctx *c)
{
    char dir[PATH_MAX + 16], path[PATH_MAX + 40], tmp[PATH_MAX + 48];
    json_t *j = tdea_state_json(c->db_id, 1);
    char *text = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
    int fd;

    json_decref(j);
    pg_fmt(dir, sizeof(dir), "%s/pg_tde", c->inst.data);
    pg_fmt(path, sizeof(path), "%s/%s", dir, TDEA_MIRROR);
    pg_fmt(tmp, sizeof(tmp), "%s.tmp", path);
    pgcmk_fs_as(pg_user_uid(), pg_user_gid());
    if (mkdir(dir, 0700) && errno != EEXIST)
        LOG_WARN("tde agent: cannot make %s: %s", dir, strerror(errno));
    fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) {
        size_t n = text ? strlen(text) : 0;

        if (pga_write_all(fd, text, n) || fsync(fd) || rename(tmp, path))
            LOG_WARN("tde agent: cannot write %s: %s", path, strerror(errno));
        close(fd);
    } else {
        LOG_WARN("tde agent: cannot write %s: %s", tmp, strerror(errno));
    }
    pgcmk_fs_restore();
    free(text);
}

struct tdea_import {
    const char *db_id;
    json_t *j;
};

static int
tdea_import_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct tdea_import *im = ctx;
    json_t *v;
    size_t i;

    json_array_foreach(json_object_get(im->j, "providers"), i, v) {
        sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_PROV_PUT);
        char *opts = json_dumps(json_object_get(v, "options"), JSON_COMPACT);

        sqlite3_bind_text(st, 1, im->db_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, json_integer_value(json_object_get(v, "scope")));
        sqlite3_bind_int64(st, 3, json_integer_value(json_object_get(v, "id")));
        pgcmk_db_bind_opt(st, 4, json_string_value(json_object_get(v, "name")));
        pgcmk_db_bind_opt(st, 5, json_string_value(json_object_get(v, "type")));
        sqlite3_bind_text(st, 6, opts ? opts : "{}", -1, SQLITE_TRANSIENT);
        free(opts);
        if (pgcmk_db_each(db, st, NULL, NULL, "import a pg_tde provider", err) < 0)
            return -1;
    }
    json_array_foreach(json_object_get(im->j, "keys"), i, v) {
        sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_KEY_PUT);
        const char *hex = json_string_value(json_object_get(v, "check"));
        unsigned char mac[TDEA_MAC_LEN] = {0};

        for (size_t k = 0; hex && strlen(hex) == 2 * TDEA_MAC_LEN && k < TDEA_MAC_LEN; k++) {
            unsigned int b = 0;

            if (sscanf(hex + 2 * k, "%2x", &b) == 1)
                mac[k] = (unsigned char)b;
        }
        sqlite3_bind_text(st, 1, im->db_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, json_integer_value(json_object_get(v, "targetId")));
        pgcmk_db_bind_opt(st, 3, json_string_value(json_object_get(v, "name")));
        sqlite3_bind_int64(st, 4, json_integer_value(json_object_get(v, "providerScope")));
        sqlite3_bind_int64(st, 5, json_integer_value(json_object_get(v, "providerId")));
        sqlite3_bind_int64(st, 6, json_integer_value(json_object_get(v, "createdMs")));
        sqlite3_bind_int64(st, 7, json_integer_value(json_object_get(v, "length")));
        sqlite3_bind_blob(st, 8, mac, TDEA_MAC_LEN, SQLITE_TRANSIENT);
        if (pgcmk_db_each(db, st, NULL, NULL, "import a pg_tde key", err) < 0)
            return -1;
    }
    return 0;
}

static int
tdea_drop_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    const char *db_id = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_DROP_PROVS);

    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, NULL, NULL, "drop pg_tde providers", err) < 0)
        return -1;
    st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_DROP_KEYS);
    sqlite3_bind_text(st, 1, db_id, -1, SQLITE_STATIC);
    return pgcmk_db_each(db, st, NULL, NULL, "drop pg_tde keys", err) < 0 ? -1 : 0;
}

/* The data directory's copy is the authority, as pg_tde's files are: rows without a copy are
 * a former instance's of the same name (dropped); a copy without rows came with the directory
 * (a restore, a replica, an instance made again on a kept directory) and is taken. */
static void
tdea_import(const struct tdea_ctx *c)
{
    char path[PATH_MAX + 40];
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_COUNT);
    struct pgcmk_err err;
    struct tdea_import im = {c->db_id, NULL};
    struct stat sb;
    int rc, rows, copy;
    char *text;

    sqlite3_bind_text(st, 1, c->db_id, -1, SQLITE_STATIC);
    rc = pgcmk_db_step(db, st, "count pg_tde rows", &err);
    rows = rc == 1 && sqlite3_column_int64(st, 0) > 0;
    pgcmk_db_done(st);
    if (rc != 1)
        return;
    pg_fmt(path, sizeof(path), "%s/pg_tde/%s", c->inst.data, TDEA_MIRROR);
    copy = stat(path, &sb) == 0;
    if (rows && !copy) {
        if (pgcmk_db_tx(db, tdea_drop_tx, (void *)c->db_id, &err) == 0)
            LOG_INFO("tde agent: %s: its data directory has no %s: the key providers and keys "
                     "of a former instance of that name are dropped",
                     c->db_id, TDEA_MIRROR);
        return;
    }
    if (rows || !copy)
        return;
    text = tdea_read_small(path);
    if (!text)
        return;
    im.j = json_loads(text, 0, NULL);
    free(text);
    if (json_is_object(im.j) && pgcmk_db_tx(db, tdea_import_tx, &im, &err) == 0)
        LOG_INFO("tde agent: %s: took the key providers and keys of its data directory's %s",
                 c->db_id, TDEA_MIRROR);
    json_decref(im.j);
}

/* ---- request helpers ----------------------------------------------------------------------- */

static const char *
tdea_arg(const struct tdea_ctx *c, const char *k)
{
    return tdep_get(c->rq, k);
}

/* The scope of a request: 0 (global) or the caller's database oid; -1 with e. */
static long
tdea_scope(const struct tdea_ctx *c, struct tdea_err *e)
{
    const char *s = tdea_arg(c, "scope");

    if (s && strcmp(s, "global") == 0)
        return 0;
    if (s && strcmp(s, "database") == 0 && c->dboid > 0)
        return c->dboid;
    return tdea_fail(e, "XX000", "pg_tde agent: scope must be global or database");
}

static long
tdea_target(const struct tdea_ctx *c, struct tdea_err *e)
{
    const char *s = tdea_arg(c, "target");

    if (s && strcmp(s, "server") == 0)
        return TDEA_SERVER;
    if (s && strcmp(s, "default") == 0)
        return TDEA_DEFAULT;
    if (s && strcmp(s, "database") == 0 && c->dboid > 0)
        return c->dboid;
    tdea_fail(e, "XX000", "pg_tde agent: target must be database, server or default");
    return 0;
}

static int
tdea_need_superuser(const struct tdea_ctx *c, const char *what, struct tdea_err *e)
{
    if (c->superuser)
        return 0;
    return tdea_fail(e, "42501", "must be superuser to %s", what);
}

/* The provider a request names (scope=, provider= or name=): 0, or -1 with pg_tde's error. */
static int
tdea_named_provider(const struct tdea_ctx *c, long scope, const char *name, struct tdea_prov *p,
                    struct tdea_err *e)
{
    int rc;

    if (!name)
        return tdea_fail(e, "22004", "key provider name cannot be null");
    rc = tdea_prov_load(c->db_id, scope, name, 0, p, e);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return tdea_fail(e, "22023", "key provider \"%s\" does not exists", name);
    return 0;
}

static int
tdea_check_key_name(const char *key, struct tdea_err *e)
{
    if (!key)
        return tdea_fail(e, "22004", "key name cannot be null");
    if (!*key)
        return tdea_fail(e, "22023", "key name \"\" is too short");
    if (strlen(key) > TDEA_KEYNAME_MAX) {
        snprintf(e->hint, sizeof(e->hint), "Maximum length is %d bytes.", TDEA_KEYNAME_MAX);
        return tdea_fail(e, "22023", "key name \"%.300s\" is too long", key);
    }
    return 0;
}

/* ---- operations ---------------------------------------------------------------------------- */

struct tdea_put {
    const char *db_id;
    struct tdea_prov *p;
    const char *options;
    int is_new;
    struct tdea_err *e;
};

static int
tdea_put_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct tdea_put *w = ctx;
    sqlite3_stmt *st;
    int rc;

    if (w->is_new) {
        struct tdea_prov old;

        rc = tdea_prov_load(w->db_id, w->p->scope, w->p->name, 0, &old, w->e);
        if (rc != 0) {
            if (rc > 0) {
                tdea_prov_release(&old);
                tdea_fail(w->e, "42710", "Key provider \"%s\" already exists.", w->p->name);
            }
            return pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL, "%s", w->e->message);
        }
        st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_PROV_MAXID);
        sqlite3_bind_text(st, 1, w->db_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, w->p->scope);
        if (pgcmk_db_step(db, st, "number a pg_tde provider", err) != 1) {
            pgcmk_db_done(st);
            return -1;
        }
        w->p->id = (long)sqlite3_column_int64(st, 0) + 1;
        pgcmk_db_done(st);
        if (w->p->scope == 0)
            w->p->id = -w->p->id;
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_PROV_PUT);
    sqlite3_bind_text(st, 1, w->db_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, w->p->scope);
    sqlite3_bind_int64(st, 3, w->p->id);
    sqlite3_bind_text(st, 4, w->p->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, w->p->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, w->options, -1, SQLITE_STATIC);
    return pgcmk_db_each(db, st, NULL, NULL, "save a pg_tde provider", err) < 0 ? -1 : 0;
}

/* pg_tde_verify_provider_keys_in_use's errors: f is the fetch's result (-1 failed, 0 missing,
 * 1 another key). */
static int
tdea_changed_key_error(const struct tdea_ctx *c, long target, const char *key, const char *prov,
                       int f, struct tdea_err *e)
{
    char used[200];

    if (target == TDEA_SERVER || target == TDEA_DEFAULT) {
        if (f < 0)
            return tdea_fail(e, "XX000",
                             "failed to retreive \"%s\" key used as server key from modified key "
                             "provider \"%s\"",
                             key, prov);
        if (f == 0)
            return tdea_fail(e, "P0002",
                             "key \"%s\" used as server key not found in modified key provider "
                             "\"%s\"",
                             key, prov);
        return tdea_fail(e, "XX000",
                         "key \"%s\" from modified key provider \"%s\" does not match existing "
                         "server key",
                         key, prov);
    }
    if (target == c->dboid && tdea_arg(c, "dbname"))
        snprintf(used, sizeof(used), "%.120s", tdea_arg(c, "dbname"));
    else
        snprintf(used, sizeof(used), "%ld", target);
    if (f < 0)
        return tdea_fail(e, "XX000",
                         "failed to retreive \"%s\" key used by database \"%s\" from modified key "
                         "provider \"%s\"",
                         key, used, prov);
    if (f == 0)
        return tdea_fail(e, "P0002",
                         "key \"%s\" used by database \"%s\" not found in modified key provider "
                         "\"%s\"",
                         key, used, prov);
    return tdea_fail(e, "XX000",
                     "key \"%s\" from modified key provider \"%s\" does not match existing key "
                     "used by database \"%s\"",
                     key, prov, used);
}

/* pg_tde_verify_provider_keys_in_use: a changed provider must still give the keys in use. */
static int
tdea_keys_still_there(struct tdea_ctx *c, const struct tdea_prov *p, struct tdea_err *e)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_KEY_BY_PROV);
    json_t *rows = json_array(), *r;
    struct pgcmk_err err;
    size_t i;
    int rc = 0;

    sqlite3_bind_text(st, 1, c->db_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, p->scope);
    sqlite3_bind_int64(st, 3, p->id);
    if (pgcmk_db_each(db, st, pgcmk_db_collect_row, rows, "keys of a provider", &err) < 0) {
        json_decref(rows);
        return tdea_fail(e, "XX000", "%s", err.message);
    }
    json_array_foreach(rows, i, r) {
        const char *name = json_string_value(json_array_get(r, 1));
        struct tdea_key k;
        unsigned char key[PGTDE_KEY_MAX], mac[TDEA_MAC_LEN];
        size_t kl;
        int f;

        if (tdea_key_load(c->db_id, atol(json_string_value(json_array_get(r, 0))), &k, e) != 1)
            continue;
        f = tdea_fetch(p, name, key, &kl, e);
        if (f == 1)
            tdea_mac(key, kl, mac);
        OPENSSL_cleanse(key, sizeof(key));
        if (f == 1 && memcmp(mac, k.mac, TDEA_MAC_LEN) == 0)
            continue;
        rc = tdea_changed_key_error(c, atol(json_string_value(json_array_get(r, 0))), name, p->name,
                                    f, e);
        break;
    }
    json_decref(rows);
    return rc;
}

static void tdea_bind(struct tdea_ctx *c, long target, const struct tdea_prov *p, const char *key,
                      size_t key_len);

/* A changed provider: the reconciler's bindings of its keys take the new options. */
static void
tdea_rebind(struct tdea_ctx *c, const struct tdea_prov *p)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_KEY_BY_PROV);
    json_t *rows = json_array(), *r;
    struct pgcmk_err err;
    size_t i;

    sqlite3_bind_text(st, 1, c->db_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, p->scope);
    sqlite3_bind_int64(st, 3, p->id);
    if (pgcmk_db_each(db, st, pgcmk_db_collect_row, rows, "keys of a provider", &err) >= 0)
        json_array_foreach(rows, i, r) {
            tdea_bind(c, atol(json_string_value(json_array_get(r, 0))), p,
                      json_string_value(json_array_get(r, 1)),
                      (size_t)atol(json_string_value(json_array_get(r, 2))));
        }
    json_decref(rows);
}

static int
op_provider_put(struct tdea_ctx *c, int is_new, struct tdea_err *e)
{
    const char *name = tdea_arg(c, "name"), *type = tdea_arg(c, "type");
    const char *options = tdea_arg(c, "options");
    long scope = tdea_scope(c, e);
    struct tdea_prov p;
    struct pgcmk_err err;
    struct tdea_put w;
    char id[24];
    int rc;

    if (scope < 0 || tdea_need_superuser(c, "modify key providers", e))
        return -1;
    if (!type)
        return tdea_fail(e, "22004", "provider type cannot be null");
    if (!name)
        return tdea_fail(e, "22004", "provider name cannot be null");
    if (!options)
        return tdea_fail(e, "22004", "provider options cannot be null");
    if (!*name)
        return tdea_fail(e, "22023", "provider name \"\" is too short");
    if (strlen(name) >= TDEA_NAME_MAX) {
        snprintf(e->hint, sizeof(e->hint), "Maximum length is %d bytes.", TDEA_NAME_MAX - 1);
        return tdea_fail(e, "22023", "provider name \"%.200s\" is too long", name);
    }
    if (strlen(options) > TDEA_OPTIONS_MAX)
        return tdea_fail(e, "22023", "too large provider options, maximum size is %d bytes",
                         TDEA_OPTIONS_MAX);
    memset(&p, 0, sizeof(p));
    if (!is_new) {
        struct tdea_prov old;

        if (tdea_named_provider(c, scope, name, &old, e))
            return -1;
        p.id = old.id;
        tdea_prov_release(&old);
    }
    p.scope = scope;
    snprintf(p.name, sizeof(p.name), "%s", name);
    snprintf(p.type, sizeof(p.type), "%.15s", type);
    p.o = json_loads(options, 0, NULL);
    if (!json_is_object(p.o)) {
        tdea_prov_release(&p);
        return tdea_fail(e, "22P02", "the key provider options are not a JSON object");
    }
    if (tdea_check_options(type, p.o, e) || tdea_validate(&p, e) ||
        (!is_new && tdea_keys_still_there(c, &p, e))) {
        tdea_prov_release(&p);
        return -1;
    }
    w = (struct tdea_put){c->db_id, &p, options, is_new, e};
    rc = pgcmk_db_tx(pgcmk_db(), tdea_put_tx, &w, &err);
    if (rc && !e->sqlstate[0])
        tdea_fail(e, "XX000", "%s", err.message);
    if (rc == 0 && !is_new)
        tdea_rebind(c, &p);
    if (rc == 0) {
        snprintf(id, sizeof(id), "%ld", p.id);
        tdep_add(&c->out, "id", id);
        LOG_INFO("tde agent: %s: key provider \"%s\" (%s, id %ld) %s", c->db_id, p.name, p.type,
                 p.id, is_new ? "added" : "changed");
    }
    tdea_prov_release(&p);
    return rc ? -1 : 0;
}

static int
op_provider_add(struct tdea_ctx *c, struct tdea_err *e)
{
    return op_provider_put(c, 1, e);
}

static int
op_provider_change(struct tdea_ctx *c, struct tdea_err *e)
{
    return op_provider_put(c, 0, e);
}

static int
tdea_prov_used(const struct tdea_ctx *c, const struct tdea_prov *p, struct tdea_err *e)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_PROV_USED);
    struct pgcmk_err err;
    int rc, n = 0;

    sqlite3_bind_text(st, 1, c->db_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, p->scope);
    sqlite3_bind_int64(st, 3, p->id);
    rc = pgcmk_db_step(db, st, "count the keys of a provider", &err);
    if (rc == 1)
        n = (int)sqlite3_column_int64(st, 0);
    pgcmk_db_done(st);
    if (rc < 0)
        return tdea_fail(e, "XX000", "%s", err.message);
    return n;
}

static int
op_provider_delete(struct tdea_ctx *c, struct tdea_err *e)
{
    long scope = tdea_scope(c, e);
    const char *name = tdea_arg(c, "name");
    struct tdea_prov p;
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    sqlite3_stmt *st;
    int used;

    if (scope < 0 || tdea_need_superuser(c, "modify key providers", e) ||
        tdea_named_provider(c, scope, name, &p, e))
        return -1;
    used = tdea_prov_used(c, &p, e);
    if (used != 0) {
        tdea_prov_release(&p);
        return used < 0 ? -1
                        : tdea_fail(e, "55006", "cannot delete provider which is currently in use");
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_PROV_PUT); /* the id stays taken */
    sqlite3_bind_text(st, 1, c->db_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, p.scope);
    sqlite3_bind_int64(st, 3, p.id);
    sqlite3_bind_text(st, 4, p.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, "", -1, SQLITE_STATIC);
    tdea_prov_release(&p);
    if (pgcmk_db_each(db, st, NULL, NULL, "delete a pg_tde provider", &err) < 0)
        return tdea_fail(e, "XX000", "%s", err.message);
    return 0;
}

static int
tdea_list_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct tdep_buf *b = arg;
    char *row;

    (void)err;
    row = pgcmk_xasprintf("%lld\t%s\t%s\t%s", (long long)sqlite3_column_int64(st, 0),
                          (const char *)sqlite3_column_text(st, 1),
                          (const char *)sqlite3_column_text(st, 2),
                          (const char *)sqlite3_column_text(st, 3));
    tdep_add(b, "row", row);
    free(row);
    return 0;
}

static int
op_provider_list(struct tdea_ctx *c, struct tdea_err *e)
{
    long scope = tdea_scope(c, e);
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st;
    struct pgcmk_err err;

    if (scope < 0)
        return -1;
    st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_PROV_LIST);
    sqlite3_bind_text(st, 1, c->db_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, scope);
    if (pgcmk_db_each(db, st, tdea_list_row, &c->out, "list pg_tde providers", &err) < 0)
        return tdea_fail(e, "XX000", "%s", err.message);
    return 0;
}

/* A key of the cipher's length, stored in the provider: 0, 1 when it exists, -1 with e. */
static int
tdea_make_key(struct tdea_ctx *c, const struct tdea_prov *p, const char *name,
              unsigned char key[PGTDE_KEY_MAX], size_t *key_len, struct tdea_err *e)
{
    int rc;

    if (pgcmk_random(key, c->key_len))
        return tdea_fail(e, "XX000", "could not generate a random key");
    *key_len = c->key_len;
    rc = tdea_store(p, name, key, c->key_len, e);
    if (rc < 0)
        tdea_fail(e, "XX000", "failed to store key \"%s\" in key provider \"%s\"", name, p->name);
    if (rc == 0)
        LOG_INFO("tde agent: %s: made principal key \"%s\" (%zu bytes) in key provider \"%s\"",
                 c->db_id, name, c->key_len, p->name);
    return rc;
}

static int
op_key_create(struct tdea_ctx *c, struct tdea_err *e)
{
    long scope = tdea_scope(c, e);
    const char *key = tdea_arg(c, "key");
    unsigned char k[PGTDE_KEY_MAX];
    size_t kl = 0;
    struct tdea_prov p;
    int rc;

    if (scope < 0 || (scope == 0 && tdea_need_superuser(c, "access global key providers", e)) ||
        tdea_check_key_name(key, e) ||
        tdea_named_provider(c, scope, tdea_arg(c, "provider"), &p, e))
        return -1;
    rc = tdea_fetch(&p, key, k, &kl, e);
    if (rc < 0)
        tdea_fail(e, "XX000", "failed to retrieve principal key \"%s\" from key provider \"%s\"",
                  key, p.name);
    else if (rc > 0)
        rc = tdea_fail(e, "22023", "cannot create key \"%s\" because it already exists", key);
    else if ((rc = tdea_make_key(c, &p, key, k, &kl, e)) > 0)
        rc = tdea_fail(e, "22023", "cannot create key \"%s\" because it already exists", key);
    OPENSSL_cleanse(k, sizeof(k));
    tdea_prov_release(&p);
    return rc ? -1 : 0;
}

/* The reconciler's binding of a server (db_id) or database (db_id/databases/<oid>) key. */
static void
tdea_bind(struct tdea_ctx *c, long target, const struct tdea_prov *p, const char *key,
          size_t key_len)
{
    char *prov = tdea_provider_json(p), *id;
    struct pgcmk_err err;

    if (target == TDEA_DEFAULT)
        return free(prov);
    id = target == TDEA_SERVER ? pgcmk_xstrdup(c->db_id)
                               : pgcmk_xasprintf("%s/databases/%ld", c->db_id, target);
    memset(&err, 0, sizeof(err));
    if (pgcmk_tde_bind(id, prov, key, (int)key_len, 1, &err))
        LOG_WARN("tde agent: %s: the key \"%s\" is not watched by the reconciler: %s", id, key,
                 err.message);
    free(id);
    free(prov);
}

static int
op_key_set(struct tdea_ctx *c, struct tdea_err *e)
{
    long scope = tdea_scope(c, e), target = tdea_target(c, e);
    const char *key = tdea_arg(c, "key");
    unsigned char k[PGTDE_KEY_MAX], mac[TDEA_MAC_LEN];
    size_t kl = 0;
    struct tdea_prov p;
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    sqlite3_stmt *st;
    int rc;

    if (scope < 0 || target == 0)
        return -1;
    if ((target == TDEA_SERVER || target == TDEA_DEFAULT) && scope != 0)
        return tdea_fail(e, "XX000",
                         "pg_tde agent: the server and default keys use global "
                         "key providers");
    if ((scope == 0 && tdea_need_superuser(c, "access global key providers", e)) ||
        tdea_check_key_name(key, e) ||
        tdea_named_provider(c, scope, tdea_arg(c, "provider"), &p, e))
        return -1;
    rc = tdea_fetch(&p, key, k, &kl, e);
    if (rc == 0) /* made when it does not exist (pgcmk's contract; pg_tde 2 asks for create) */
        rc = tdea_make_key(c, &p, key, k, &kl, e) == 0 ? 1 : tdea_fetch(&p, key, k, &kl, e);
    if (rc <= 0) {
        if (!e->message[0])
            tdea_fail(e, "XX000",
                      "failed to retrieve principal key \"%s\" from key provider \"%s\"", key,
                      p.name);
        OPENSSL_cleanse(k, sizeof(k));
        tdea_prov_release(&p);
        return -1;
    }
    tdea_mac(k, kl, mac);
    OPENSSL_cleanse(k, sizeof(k));
    st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_KEY_PUT);
    sqlite3_bind_text(st, 1, c->db_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, target);
    sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, p.scope);
    sqlite3_bind_int64(st, 5, p.id);
    sqlite3_bind_int64(st, 6, pgcmk_clock_now());
    sqlite3_bind_int64(st, 7, (sqlite3_int64)kl);
    sqlite3_bind_blob(st, 8, mac, TDEA_MAC_LEN, SQLITE_TRANSIENT);
    if (pgcmk_db_each(db, st, NULL, NULL, "save a pg_tde principal key", &err) < 0) {
        tdea_prov_release(&p);
        return tdea_fail(e, "XX000", "%s", err.message);
    }
    LOG_INFO("tde agent: %s: principal key \"%s\" of key provider \"%s\" set for %s", c->db_id, key,
             p.name, tdea_arg(c, "target"));
    tdea_bind(c, target, &p, key, kl);
    tdea_prov_release(&p);
    return 0;
}

static int
op_key_delete(struct tdea_ctx *c, struct tdea_err *e)
{
    long target = tdea_target(c, e);
    struct tdea_key k;
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    sqlite3_stmt *st;
    int rc;

    if (target == 0)
        return -1;
    if (target == TDEA_SERVER)
        return tdea_fail(e, "0A000", "the server key cannot be deleted");
    if (target == TDEA_DEFAULT && tdea_need_superuser(c, "access global key providers", e))
        return -1;
    rc = tdea_key_load(c->db_id, target, &k, e);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return tdea_fail(e, "XX000",
                         target == TDEA_DEFAULT ? "default principal key is not set"
                                                : "principal key does not exists for the database");
    st = pgcmk_db_stmt(db, PGCMK_STMT_TDEA_KEY_DEL);
    sqlite3_bind_text(st, 1, c->db_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, target);
    if (pgcmk_db_each(db, st, NULL, NULL, "delete a pg_tde principal key", &err) < 0)
        return tdea_fail(e, "XX000", "%s", err.message);
    if (target > 0) {
        char *id = pgcmk_xasprintf("%s/databases/%ld", c->db_id, target);

        if (pgcmk_tde_unbind(id, &err))
            LOG_WARN("tde agent: %s: unbind: %s", id, err.message);
        free(id);
    }
    return 0;
}

/* Fetches target's key now and compares it with the one set: 0, or -1 with e. */
static int
tdea_verify(struct tdea_ctx *c, long target, struct tdea_err *e)
{
    struct tdea_key k;
    struct tdea_prov p;
    unsigned char key[PGTDE_KEY_MAX], mac[TDEA_MAC_LEN];
    size_t kl = 0;
    int rc = tdea_key_load(c->db_id, target, &k, e);

    if (rc < 0)
        return -1;
    if (rc == 0)
        return tdea_fail(e, "XX000", "principal key not configured for current database");
    rc = tdea_prov_load(c->db_id, k.prov_scope, NULL, k.prov_id, &p, e);
    if (rc <= 0)
        return rc < 0 ? -1
                      : tdea_fail(e, "XX001",
                                  "keyring lookup failed for principal key %s, unknown keyring "
                                  "with ID %ld",
                                  k.name, k.prov_id);
    rc = tdea_fetch(&p, k.name, key, &kl, e);
    if (rc == 1)
        tdea_mac(key, kl, mac);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc < 0)
        rc = tdea_fail(e, "XX000",
                       "failed to retrieve principal key \"%s\" from key provider \"%s\"", k.name,
                       p.name);
    else if (rc == 0)
        rc = tdea_fail(e, "P0002", "key \"%s\" not found in key provider \"%s\"", k.name, p.name);
    else if (memcmp(mac, k.mac, TDEA_MAC_LEN) != 0)
        rc = tdea_fail(e, "XX001",
                       "Failed to verify principal key header for key %s, incorrect principal key "
                       "or corrupted key file",
                       k.name);
    else
        rc = 0;
    tdea_prov_release(&p);
    return rc;
}

static int
op_key_verify(struct tdea_ctx *c, struct tdea_err *e)
{
    long target = tdea_target(c, e);

    return target == 0 ? -1 : tdea_verify(c, target, e);
}

static int
op_key_info(struct tdea_ctx *c, struct tdea_err *e)
{
    long target = tdea_target(c, e);
    struct tdea_key k;
    struct tdea_prov p;
    char t[PGCMK_TIME_LEN], id[24];
    int rc;

    if (target == 0)
        return -1;
    rc = tdea_key_load(c->db_id, target, &k, e);
    if (rc <= 0)
        return rc;
    tdep_add(&c->out, "key", k.name);
    if (tdea_prov_load(c->db_id, k.prov_scope, NULL, k.prov_id, &p, e) == 1) {
        tdep_add(&c->out, "provider", p.name);
        tdea_prov_release(&p);
    }
    snprintf(id, sizeof(id), "%ld", k.prov_id);
    tdep_add(&c->out, "provider_id", id);
    pgcmk_time_format(k.created_ms, t);
    tdep_add(&c->out, "created", t);
    return 0;
}

static int
op_server_key_check(struct tdea_ctx *c, struct tdea_err *e)
{
    struct tdea_key k;
    int rc = tdea_key_load(c->db_id, TDEA_SERVER, &k, e);

    if (rc <= 0) /* no server key yet: pg_tde makes one at the first WAL key; nothing to fetch */
        return rc;
    return tdea_verify(c, TDEA_SERVER, e);
}

static int
tdea_at_rest(const struct pg_inst_info *inst)
{
    size_t n = strlen(inst->data);

    return pg_atrest_on() && n >= 4 && strcmp(inst->data + n - 4, "/mnt") == 0;
}

static int
op_status(struct tdea_ctx *c, struct tdea_err *e)
{
    struct tdea_key k;
    int rc = tdea_key_load(c->db_id, TDEA_SERVER, &k, e);

    if (rc < 0)
        return -1;
    /* on gocryptfs the data directory is <slug>/mnt (internal.h) */
    tdep_add(&c->out, "at_rest", tdea_at_rest(&c->inst) ? "1" : "0");
    /* the WAL leaves the server only through the archive, encrypted under the DEK the server
     * key wraps once the key is set (pgcmk_tde_bind) */
    tdep_add(&c->out, "wal_encrypt", rc == 1 ? "1" : "0");
    tdep_add(&c->out, "server_key", rc == 1 ? "1" : "0");
    return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static const struct tdea_op {
    const char *name;
    int (*fn)(struct tdea_ctx *c, struct tdea_err *e);
    int mirror;            /* the state changed: rewrite the copy */
    const char *fields[6]; /* besides the common ones */
} tdea_ops[] = {
    {"provider_add", op_provider_add, 1, {"scope", "name", "type", "options"}},
    {"provider_change", op_provider_change, 1, {"scope", "name", "type", "options"}},
    {"provider_delete", op_provider_delete, 1, {"scope", "name"}},
    {"provider_list", op_provider_list, 0, {"scope"}},
    {"key_create", op_key_create, 0, {"scope", "provider", "key"}},
    {"key_set", op_key_set, 1, {"target", "scope", "provider", "key"}},
    {"key_delete", op_key_delete, 1, {"target"}},
    {"key_verify", op_key_verify, 0, {"target"}},
    {"key_info", op_key_info, 0, {"target"}},
    {"server_key_check", op_server_key_check, 0, {NULL}},
    {"status", op_status, 0, {NULL}},
};

static const char *const tdea_common[] = {"op", "dboid", "dbname", "user", "superuser", "cipher"};

static int
tdea_field_known(const struct tdea_op *op, const char *k)
{
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(tdea_common); i++)
        if (strcmp(k, tdea_common[i]) == 0)
            return 1;
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(op->fields) && op->fields[i]; i++)
        if (strcmp(k, op->fields[i]) == 0)
            return 1;
    return 0;
}

/* Runs the request: 0 with c->out holding the answer's fields, or -1 with e. */
static int
tdea_run(struct tdea_ctx *c, struct tdea_err *e)
{
    const char *opname = tdea_arg(c, "op"), *cipher = tdea_arg(c, "cipher");
    const char *dboid = tdea_arg(c, "dboid"), *su = tdea_arg(c, "superuser");
    const struct tdea_op *op = NULL;
    char *end = NULL;
    int rc;

    for (size_t i = 0; opname && i < PGCMK_ARRAY_LEN(tdea_ops); i++)
        if (strcmp(opname, tdea_ops[i].name) == 0)
            op = &tdea_ops[i];
    if (!op)
        return tdea_fail(e, "XX000", "pg_tde agent: unknown op \"%.64s\"", opname ? opname : "");
    for (size_t i = 0; i < c->rq->n; i++)
        if (!tdea_field_known(op, c->rq->f[i].key))
            return tdea_fail(e, "XX000", "pg_tde agent: unknown field \"%s\" for %s",
                             c->rq->f[i].key, op->name);
    c->dboid = dboid ? strtol(dboid, &end, 10) : -1;
    if (!dboid || !*dboid || *end || c->dboid < 0 || !su || (strcmp(su, "0") && strcmp(su, "1")))
        return tdea_fail(e, "XX000", "pg_tde agent: the request needs dboid= and superuser=0|1");
    c->superuser = su[0] == '1';
    c->key_len = cipher && strcmp(cipher, "aes_256") == 0 ? 32 : 16;
    if (cipher && strcmp(cipher, "aes_128") && strcmp(cipher, "aes_256"))
        return tdea_fail(e, "22023", "invalid value for parameter \"pg_tde.cipher\": \"%.32s\"",
                         cipher);
    tdea_import(c);
    rc = op->fn(c, e);
    if (rc == 0 && op->mirror)
        tdea_mirror(c);
    return rc;
}

static void
tdea_answer(int fd, const struct tdep_buf *b)
{
    char head[32];
    int n = snprintf(head, sizeof(head), "OK %zu\n", b->len);

    if (pga_write_all(fd, head, (size_t)n) == 0 && b->len)
        (void)pga_write_all(fd, b->p, b->len);
}

static void
tdea_transport_err(int fd, const char *text)
{
    char line[160];
    int n = snprintf(line, sizeof(line), "ERR %s\n", text);

    (void)pga_write_all(fd, line, (size_t)n);
}

void
pg_tde_agent_serve(int fd, const char *db_id, const char *slug, const char *body, size_t len)
{
    struct tdea_ctx c;
    struct tdep_msg rq;
    struct tdea_err e;
    const char *why = NULL;
    struct tdep_buf out = {0};

    memset(&c, 0, sizeof(c));
    memset(&e, 0, sizeof(e));
    if (pg_inst_info(db_id, &c.inst) || !tdea_peer_ok(fd, &c.inst)) {
        LOG_WARN("tde agent: a request for %s from a process that is not its instance's", slug);
        tdea_transport_err(fd, "the peer is not a process of this instance");
        return;
    }
    c.db_id = db_id;
    tdep_add(&c.out, "status", "ok");
    if (tdep_parse(body, len, NULL, &rq, &why)) {
        tdea_fail(&e, "XX000", "pg_tde agent: bad request: %s", why);
    } else {
        c.rq = &rq;
        (void)tdea_run(&c, &e);
        tdep_free(&rq);
    }
    if (e.sqlstate[0]) {
        tdep_add(&out, "status", "error");
        tdep_add(&out, "sqlstate", e.sqlstate);
        tdep_add(&out, "message", e.message);
        if (e.detail[0])
            tdep_add(&out, "detail", e.detail);
        if (e.hint[0])
            tdep_add(&out, "hint", e.hint);
    }
    if (e.sqlstate[0] ? out.overflow : c.out.overflow)
        tdea_transport_err(fd, "the answer is longer than PGTDE_MAX_BODY");
    else
        tdea_answer(fd, e.sqlstate[0] ? &out : &c.out);
    tdep_buf_free(&c.out);
    tdep_buf_free(&out);
}
