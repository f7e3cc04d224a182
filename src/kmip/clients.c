/* clients.c - KMIP client credentials (include/pgcmk/kmip_listener.h): the /emulator/kmip/clients
 * routes, the files each client gets, and the set of live certificates the listener checks at
 * every handshake.
 *
 * A client is a name (the certificate CN that owns KMIP objects). POST issues a new certificate
 * (P-256, signed by pgcmk's CA, EKU clientAuth, 825 days on the virtual clock) each time; every
 * certificate of a live client stays valid. DELETE marks the client deleted and forgets its
 * certificates: from then on the listener refuses them (alert certificate_revoked), even if a
 * client of the same name is created again. The live set is kept in memory (loaded at start,
 * changed after each commit) so a handshake never touches the store. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/events.h"
#include "pgcmk/http.h"
#include "pgcmk/kmip_listener.h"
#include "pgcmk/log.h"
#include "pgcmk/monitor.h"
#include "pgcmk/store.h"
#include "pgcmk/wellknown.h"

#define KC_CERT_DAYS 825L
#define KC_PROVIDER  "pgcmk.Kmip"

/* One live certificate: its fingerprint and its client's name. */
struct kc_cert {
    char fp[65];
    char client[PGCMK_KMIP_IDENTITY_MAX + 1];
};

static struct {
    pthread_rwlock_t lock; /* guards certs */
    struct kc_cert *certs; /* sorted by fp */
    size_t n, cap;
    char *data_dir;
    char *clients_dir;
    char *bundle_pem;
} kc = {PTHREAD_RWLOCK_INITIALIZER};

/* ---- the live set ---------------------------------------------------------------------- */

static int
kc_cmp(const void *a, const void *b)
{
    return strcmp(((const struct kc_cert *)a)->fp, ((const struct kc_cert *)b)->fp);
}

/* Adds one certificate. Called with the write lock held. */
static void
kc_add_locked(const char *fp, const char *client)
{
    struct kc_cert c;
    size_t lo = 0, hi = kc.n;

    memset(&c, 0, sizeof(c));
    snprintf(c.fp, sizeof(c.fp), "%s", fp);
    snprintf(c.client, sizeof(c.client), "%s", client);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(kc.certs[mid].fp, c.fp);

        if (r == 0)
            return;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (kc.n == kc.cap) {
        kc.cap = kc.cap ? kc.cap * 2 : 64;
        kc.certs = pgcmk_xrealloc(kc.certs, kc.cap * sizeof(*kc.certs));
    }
    memmove(&kc.certs[lo + 1], &kc.certs[lo], (kc.n - lo) * sizeof(*kc.certs));
    kc.certs[lo] = c;
    kc.n++;
}

static void
kc_forget_client(const char *client)
{
    size_t w = 0;

    pthread_rwlock_wrlock(&kc.lock);
    for (size_t r = 0; r < kc.n; r++)
        if (strcmp(kc.certs[r].client, client) != 0)
            kc.certs[w++] = kc.certs[r];
    kc.n = w;
    pthread_rwlock_unlock(&kc.lock);
}

int
pgcmk_kmip_client_cert_live(const char *fingerprint, const char *cn)
{
    struct kc_cert key, *hit;
    int ok;

    memset(&key, 0, sizeof(key));
    snprintf(key.fp, sizeof(key.fp), "%s", fingerprint);
    pthread_rwlock_rdlock(&kc.lock);
    hit = kc.n ? bsearch(&key, kc.certs, kc.n, sizeof(*kc.certs), kc_cmp) : NULL;
    ok = hit != NULL && strcmp(hit->client, cn) == 0;
    pthread_rwlock_unlock(&kc.lock);
    return ok;
}

static int
kc_load_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    const char *fp = (const char *)sqlite3_column_text(st, 0);
    const char *client = (const char *)sqlite3_column_text(st, 1);

    PGCMK_UNUSED(arg);
    PGCMK_UNUSED(err);
    if (fp && client)
        kc_add_locked(fp, client);
    return 0;
}

/* ---- names, files ---------------------------------------------------------------------- */

static int
kc_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > PGCMK_KMIP_IDENTITY_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static int
kc_name_check(const char *name, struct pgcmk_err *err)
{
    if (!kc_name_ok(name))
        return pgcmk_err_set(err, PGCMK_E_KMIP_CLIENT_NAME_INVALID, "name",
                             "The KMIP client name '%.80s' is not valid: use 1 to 64 of the "
                             "letters A-Z and a-z, digits, '_', '.' and '-' (not '.' or '..').",
                             name);
    return 0;
}

static char *
kc_client_dir(const char *name)
{
    return pgcmk_xasprintf("%s/%s", kc.clients_dir, name);
}

struct kc_files {
    char *cert, *key, *combined, *ca;
};

static void
kc_files_paths(const char *name, struct kc_files *f)
{
    char *dir = kc_client_dir(name);

    f->cert = pgcmk_xasprintf("%s/client_cert_%s.pem", dir, name);
    f->key = pgcmk_xasprintf("%s/client_key_%s.pem", dir, name);
    f->combined = pgcmk_xasprintf("%s/client_%s.pem", dir, name);
    f->ca = pgcmk_xasprintf("%s/server_certificate.pem", dir);
    free(dir);
}

static void
kc_files_free(struct kc_files *f)
{
    free(f->cert);
    free(f->key);
    free(f->combined);
    free(f->ca);
}

static json_t *
kc_files_json(const char *name)
{
    struct kc_files f;
    json_t *j;

    kc_files_paths(name, &f);
    j = json_pack("{s:s, s:s, s:s, s:s}", "certificate", f.cert, "key", f.key, "combined",
                  f.combined, "caCertificate", f.ca);
    kc_files_free(&f);
    return j;
}

/* PATH.tmp with `mode`, written and synced, renamed over PATH. */
static int
kc_write(const char *path, const char *a, const char *b, mode_t mode)
{
    char *tmp = pgcmk_xasprintf("%s.tmp", path);
    FILE *f;
    int fd, ok;

    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0 || fchmod(fd, mode) != 0 || (f = fdopen(fd, "w")) == NULL) {
        if (fd >= 0)
            close(fd);
        free(tmp);
        return -1;
    }
    ok = fputs(a, f) >= 0 && (b == NULL || fputs(b, f) >= 0) && fflush(f) == 0 &&
         fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok)
        unlink(tmp);
    free(tmp);
    return ok ? 0 : -1;
}

static int
kc_write_files(const char *name, const struct pgcmk_client_cert *cc, struct pgcmk_err *err)
{
    char *dir = kc_client_dir(name);
    struct kc_files f;
    int rc = 0;

    kc_files_paths(name, &f);
    if ((mkdir(kc.clients_dir, 0700) != 0 && errno != EEXIST) ||
        (mkdir(dir, 0700) != 0 && errno != EEXIST) || kc_write(f.key, cc->key_pem, NULL, 0600) ||
        kc_write(f.cert, cc->cert_pem, NULL, 0644) ||
        kc_write(f.combined, cc->key_pem, cc->cert_pem, 0600) ||
        kc_write(f.ca, kc.bundle_pem, NULL, 0644))
        rc = pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                           "cannot write the client's files in %.200s: %s", dir, strerror(errno));
    kc_files_free(&f);
    free(dir);
    return rc;
}

static char *
kc_resource_id(const char *name)
{
    return pgcmk_xasprintf("/subscriptions/%s/providers/" KC_PROVIDER "/clients/%s",
                           PGCMK_SUBSCRIPTION_ID, name);
}

static int
kc_activity(struct pgcmk_db *db, const char *name, const char *op, const char *caller,
            const char *method, int status, const char *what, struct pgcmk_err *err)
{
    struct pgcmk_activity a;
    char *id = kc_resource_id(name);
    int rc;

    memset(&a, 0, sizeof(a));
    a.resource_id = id;
    a.operation = op;
    a.status = "Succeeded";
    a.level = "Informational";
    a.caller = caller && *caller ? caller : NULL;
    a.description = what;
    a.method = method;
    a.http_status = status;
    rc = pgcmk_activity_add(db, &a, err);
    free(id);
    return rc;
}

/* ---- POST /emulator/kmip/clients --------------------------------------------------------- */

struct kc_create {
    const char *name;
    const char *caller;
    struct pgcmk_client_cert cc;
    int64_t now;
    int64_t created_at;
    int existed;
};

static int
kc_create_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kc_create *k = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KMIP_CLIENT_GET);
    int r;
    char what[160];

    sqlite3_bind_text(st, 1, k->name, -1, SQLITE_STATIC);
    r = pgcmk_db_step(db, st, "kmip client", err);
    k->existed = r == 1;
    k->created_at = r == 1 ? sqlite3_column_int64(st, 0) : k->now;
    pgcmk_db_done(st);
    if (r < 0)
        return -1;
    if (!k->existed) {
        st = pgcmk_db_stmt(db, PGCMK_STMT_KMIP_CLIENT_PUT);
        sqlite3_bind_text(st, 1, k->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, k->now);
        if (pgcmk_db_each(db, st, NULL, NULL, "kmip client", err) < 0)
            return -1;
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_KMIP_CERT_INSERT);
    sqlite3_bind_text(st, 1, k->cc.fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, k->cc.serial, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, k->cc.not_after_ms);
    sqlite3_bind_int64(st, 5, k->now);
    if (pgcmk_db_each(db, st, NULL, NULL, "kmip certificate", err) < 0)
        return -1;
    snprintf(what, sizeof(what), "%s KMIP client %s (certificate %.16s...)",
             k->existed ? "New certificate for" : "Created", k->name, k->cc.fingerprint);
    if (kc_activity(db, k->name, KC_PROVIDER "/clients/write", k->caller, "POST",
                    k->existed ? 200 : 201, what, err))
        return -1;
    /* Last: a failed write rolls the rows back. */
    return kc_write_files(k->name, &k->cc, err);
}

static int
kc_post(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kc_create k;
    json_t *name = json_object_get(rq->json, "name"), *out;
    char created[PGCMK_TIME_LEN], after[PGCMK_TIME_LEN];
    int rc = -1;

    memset(&k, 0, sizeof(k));
    if (!json_is_object(rq->json) || json_object_size(rq->json) != 1 || !json_is_string(name))
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, NULL,
                             "Give the client's name and nothing else: {\"name\":\"jane_doe\"}.");
    k.name = json_string_value(name);
    if (kc_name_check(k.name, err))
        return -1;
    k.caller = rq->principal;
    k.now = pgcmk_clock_now();
    if (pgcmk_tls_issue_client(kc.data_dir, k.name, k.now, KC_CERT_DAYS, &k.cc, err))
        return -1;
    if (pgcmk_db_tx(pgcmk_db(), kc_create_tx, &k, err))
        goto done;
    pthread_rwlock_wrlock(&kc.lock);
    kc_add_locked(k.cc.fingerprint, k.name);
    pthread_rwlock_unlock(&kc.lock);
    pgcmk_time_format(k.created_at, created);
    pgcmk_time_format(k.cc.not_after_ms, after);
    out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "name", k.name, "certificate",
                    k.cc.cert_pem, "key", k.cc.key_pem, "caCertificate", kc.bundle_pem,
                    "fingerprint", k.cc.fingerprint, "notAfter", after, "createdAt", created,
                    "files", kc_files_json(k.name));
    LOG_INFO("kmip: %s client %s, certificate %s", k.existed ? "new certificate for" : "created",
             k.name, k.cc.fingerprint);
    pgcmk_resp_json(rs, k.existed ? 200 : 201, out);
    rc = 0;
done:
    pgcmk_client_cert_release(&k.cc);
    return rc;
}

/* ---- GET ----------------------------------------------------------------------------------- */

static int
kc_list_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    char created[PGCMK_TIME_LEN];

    PGCMK_UNUSED(err);
    pgcmk_time_format(sqlite3_column_int64(st, 1), created);
    json_array_append_new(arg,
                          json_pack("{s:s, s:s, s:I}", "name",
                                    (const char *)sqlite3_column_text(st, 0), "createdAt", created,
                                    "certificates", (json_int_t)sqlite3_column_int64(st, 2)));
    return 0;
}

static int
kc_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    json_t *v = json_array();

    PGCMK_UNUSED(rq);
    if (pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_KMIP_CLIENT_LIST), kc_list_row, v,
                      "kmip clients", err) < 0) {
        json_decref(v);
        return -1;
    }
    pgcmk_resp_json(rs, 200, json_pack("{s:o}", "value", v));
    return 0;
}

static int
kc_cert_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    char after[PGCMK_TIME_LEN], created[PGCMK_TIME_LEN];

    PGCMK_UNUSED(err);
    pgcmk_time_format(sqlite3_column_int64(st, 2), after);
    pgcmk_time_format(sqlite3_column_int64(st, 3), created);
    json_array_append_new(arg, json_pack("{s:s, s:s, s:s, s:s}", "fingerprint",
                                         (const char *)sqlite3_column_text(st, 0), "serialNumber",
                                         (const char *)sqlite3_column_text(st, 1), "notAfter",
                                         after, "createdAt", created));
    return 0;
}

/* The client as JSON, or NULL with err set (404 when it does not exist or was deleted). */
static json_t *
kc_one_json(struct pgcmk_db *db, const char *name, struct pgcmk_err *err)
{
    sqlite3_stmt *st;
    json_t *certs;
    char created[PGCMK_TIME_LEN];
    int r;

    if (kc_name_check(name, err))
        return NULL;
    st = pgcmk_db_stmt(db, PGCMK_STMT_KMIP_CLIENT_GET);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    r = pgcmk_db_step(db, st, "kmip client", err);
    if (r == 1)
        pgcmk_time_format(sqlite3_column_int64(st, 0), created);
    pgcmk_db_done(st);
    if (r < 0)
        return NULL;
    if (r == 0) {
        pgcmk_err_set(err, PGCMK_E_KMIP_CLIENT_NOT_FOUND, name,
                      "There is no KMIP client named '%s'.", name);
        return NULL;
    }
    certs = json_array();
    st = pgcmk_db_stmt(db, PGCMK_STMT_KMIP_CERT_LIST);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, kc_cert_row, certs, "kmip certificates", err) < 0) {
        json_decref(certs);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:I, s:o, s:o}", "name", name, "createdAt", created,
                     "certificates", (json_int_t)json_array_size(certs), "issued", certs, "files",
                     kc_files_json(name));
}

static int
kc_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    json_t *j = kc_one_json(pgcmk_db(), pgcmk_req_param(rq, "name"), err);

    if (j == NULL)
        return -1;
    pgcmk_resp_json(rs, 200, j);
    return 0;
}

/* ---- DELETE -------------------------------------------------------------------------------- */

struct kc_delete {
    const char *name;
    const char *caller;
    json_t *out;
};

static int
kc_delete_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kc_delete *d = ctx;
    struct pgcmk_event ev;
    sqlite3_stmt *st;
    char *id;

    if ((d->out = kc_one_json(db, d->name, err)) == NULL)
        return -1;
    st = pgcmk_db_stmt(db, PGCMK_STMT_KMIP_CLIENT_DELETE);
    sqlite3_bind_text(st, 1, d->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, pgcmk_clock_now());
    if (pgcmk_db_each(db, st, NULL, NULL, "kmip client", err) < 0)
        return -1;
    st = pgcmk_db_stmt(db, PGCMK_STMT_KMIP_CERT_FORGET);
    sqlite3_bind_text(st, 1, d->name, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, NULL, NULL, "kmip certificates", err) < 0)
        return -1;
    if (kc_activity(db, d->name, KC_PROVIDER "/clients/delete", d->caller, "DELETE", 200,
                    "Deleted the KMIP client: its certificates are refused from now on", err))
        return -1;
    id = kc_resource_id(d->name);
    memset(&ev, 0, sizeof(ev));
    ev.kind = PGCMK_EV_KMIP_CLIENT_DELETED;
    ev.object_id = d->name;
    ev.resource_id = id;
    pgcmk_events_publish(&ev); /* delivered after the commit */
    free(id);
    return 0;
}

static int
kc_delete(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kc_delete d = {pgcmk_req_param(rq, "name"), rq->principal, NULL};

    if (pgcmk_db_tx(pgcmk_db(), kc_delete_tx, &d, err)) {
        json_decref(d.out);
        return -1;
    }
    kc_forget_client(d.name);
    LOG_INFO("kmip: deleted client %s; its certificates are refused from now on", d.name);
    json_object_set_new(d.out, "deleted", json_true());
    pgcmk_resp_json(rs, 200, d.out);
    return 0;
}

static const struct pgcmk_route kc_routes[] = {
    {"POST", "/emulator/kmip/clients", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
     ROUTE_F_JSON | ROUTE_F_SECRET, NULL, kc_post},
    {"GET", "/emulator/kmip/clients", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, kc_list},
    {"GET", "/emulator/kmip/clients/{name}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, kc_get},
    {"DELETE", "/emulator/kmip/clients/{name}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, kc_delete},
};

int
pgcmk_kmip_clients_init(const char *data_dir, const char *server_bundle_pem)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    int rc;

    free(kc.data_dir);
    free(kc.clients_dir);
    free(kc.bundle_pem);
    kc.data_dir = pgcmk_xstrdup(data_dir);
    kc.clients_dir = pgcmk_xasprintf("%s/kmip/clients", data_dir);
    kc.bundle_pem = pgcmk_xstrdup(server_bundle_pem ? server_bundle_pem : "");
    pthread_rwlock_wrlock(&kc.lock);
    kc.n = 0;
    rc = pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_KMIP_CERT_LIVE), kc_load_row, NULL,
                       "kmip certificates", &err);
    pthread_rwlock_unlock(&kc.lock);
    if (rc < 0) {
        LOG_ERR("kmip: cannot load the client certificates: %s", err.message);
        return -1;
    }
    pgcmk_router_add(kc_routes, PGCMK_ARRAY_LEN(kc_routes));
    return 0;
}

void
pgcmk_kmip_clients_shutdown(void)
{
    pthread_rwlock_wrlock(&kc.lock);
    free(kc.certs);
    kc.certs = NULL;
    kc.n = kc.cap = 0;
    pthread_rwlock_unlock(&kc.lock);
    free(kc.data_dir);
    free(kc.clients_dir);
    free(kc.bundle_pem);
    kc.data_dir = kc.clients_dir = kc.bundle_pem = NULL;
}

const char *
pgcmk_kmip_clients_dir(void)
{
    return kc.clients_dir;
}
