/* server.c - the KES servers of pgcmkd: each one a config, a keystore (kesstore.h) and a
 * mutual-TLS listener (net.h); /emulator/kes/servers (create, list, show, replace, delete, audit),
 * servers of --kes-config files, persistence of the created ones (migration 14), the status.ping
 * schedule on the virtual clock, and pgcmk_kes_diagnose for /emulator/explain. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kes/internal.h"
#include "pgcmk/clock.h"
#include "pgcmk/events.h"
#include "pgcmk/log.h"
#include "pgcmk/monitor.h"
#include "pgcmk/net.h"
#include "pgcmk/store.h"
#include "pgcmk/wellknown.h"
#include "pgcmk/work.h"

static pthread_mutex_t kes_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t kes_admin_mu = PTHREAD_MUTEX_INITIALIZER; /* create/replace/delete */
static struct kes_server *kes_list;
static char *kes_cert_pem, *kes_key_pem, *kes_ca_path;
static atomic_ulong kes_clock_gen; /* the clock generation the listener saw last */

/* ---- references --------------------------------------------------------------------------- */

static void
kes_server_free(struct kes_server *s)
{
    pgcmk_kes_store_close(s->store);
    kes_ring_free(s);
    pgcmk_kes_conf_free(&s->conf);
    if (s->conf_text)
        pgcmk_secret_free(s->conf_text, strlen(s->conf_text));
    free(s->base_dir);
    free(s);
}

void
kes_server_put(struct kes_server *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1)
        kes_server_free(s);
}

/* The running server of that name, referenced (kes_server_put), or NULL. */
static struct kes_server *
kes_server_get(const char *name)
{
    struct kes_server *s;

    pthread_mutex_lock(&kes_mu);
    for (s = kes_list; s; s = s->next)
        if (strcmp(s->name, name) == 0) {
            atomic_fetch_add(&s->refs, 1);
            break;
        }
    pthread_mutex_unlock(&kes_mu);
    return s;
}

struct kes_server *
kes_server_by_port(int port)
{
    struct kes_server *s;

    pthread_mutex_lock(&kes_mu);
    for (s = kes_list; s; s = s->next)
        if (s->port == port) {
            atomic_fetch_add(&s->refs, 1);
            break;
        }
    pthread_mutex_unlock(&kes_mu);
    return s;
}

static void
kes_event_server(const char *name)
{
    struct pgcmk_event ev = {0};

    ev.kind = PGCMK_EV_KES_SERVER_CHANGED;
    ev.resource_id = name;
    pgcmk_events_publish(&ev);
}

/* ---- start and stop ---------------------------------------------------------------------- */

static char *
kes_read_file(const char *path, const char *what, struct pgcmk_err *err)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL) {
        pgcmk_err_set(err, PGCMK_E_KES_CONFIG_INVALID, NULL, "failed to read %s: open %.200s: %s",
                      what, path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || n > 4 * 1024 * 1024 ||
        fseek(f, 0, SEEK_SET)) {
        fclose(f);
        pgcmk_err_set(err, PGCMK_E_KES_CONFIG_INVALID, NULL, "failed to read %s: %.200s", what,
                      path);
        return NULL;
    }
    buf = pgcmk_xmalloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        pgcmk_secret_free(buf, (size_t)n + 1);
        pgcmk_err_set(err, PGCMK_E_KES_CONFIG_INVALID, NULL, "failed to read %s: %.200s", what,
                      path);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* keys: of the config must exist: created unless they are there (state.go / kesconf). */
static int
kes_required_keys(struct kes_server *s, struct pgcmk_err *err)
{
    int i;

    for (i = 0; i < s->conf.n_keys; i++) {
        struct pgcmk_kes_key k;
        struct pgcmk_err e;
        int rc;

        pgcmk_err_clear(&e);
        if (!pgcmk_kes_valid_name(s->conf.keys[i], 0))
            return pgcmk_err_set(err, PGCMK_E_KES_CONFIG_INVALID, NULL,
                                 "failed to create key '%.80s': key name is empty, too long or "
                                 "contains invalid characters",
                                 s->conf.keys[i]);
        if (pgcmk_kes_key_new(&k, s->conf.keys[i], PGCMK_KES_AES256, "", &e))
            return pgcmk_err_set(err, PGCMK_E_KES_START_FAILED, NULL,
                                 "failed to create key '%.80s': %.300s", s->conf.keys[i],
                                 e.message);
        rc = pgcmk_kes_store_create(s->store, &k, &e);
        pgcmk_kes_key_wipe(&k);
        if (rc && strcmp(e.message, "key already exists") != 0)
            return pgcmk_err_set(err, PGCMK_E_KES_START_FAILED, NULL,
                                 "failed to create key '%.80s': %.300s", s->conf.keys[i],
                                 e.message);
    }
    return 0;
}

static enum pgcmk_net_cert
kes_cert_mode(const struct pgcmk_kes_conf *c)
{
    int i, skip = 0;

    for (i = 0; i < c->n_apis; i++)
        skip |= c->apis[i].skip_auth;
    /* kesconf: a skip_auth API makes the certificate optional (verified when sent) */
    if (c->tls_auth)
        return skip ? PGCMK_NET_CERT_VERIFY_IF_GIVEN : PGCMK_NET_CERT_VERIFY;
    return skip ? PGCMK_NET_CERT_REQUEST : PGCMK_NET_CERT_REQUIRE_ANY;
}

static const char *
kes_cert_mode_name(enum pgcmk_net_cert m)
{
    switch (m) {
    case PGCMK_NET_CERT_VERIFY:
        return "verify";
    case PGCMK_NET_CERT_VERIFY_IF_GIVEN:
        return "verify-if-given";
    case PGCMK_NET_CERT_REQUEST:
        return "request";
    default:
        return "require-any";
    }
}

/* Parses the document, opens the keystore, makes the required keys and listens. The server is
 * not yet in the list. port_hint: the port to take when the address asks for any (0 = none). */
static struct kes_server *
kes_server_start(const char *name, const char *text, const char *base_dir, int stored,
                 int port_hint, int64_t created_ms, struct pgcmk_err *err)
{
    struct kes_server *s = pgcmk_xcalloc(1, sizeof(*s));
    struct pgcmk_net_https_cfg nc;
    char why[512];
    char *cert = NULL, *key = NULL, *ca = NULL;

    snprintf(s->name, sizeof(s->name), "%s", name);
    kes_ring_init(s);
    atomic_init(&s->refs, 1);
    atomic_init(&s->reachable, -1);
    s->stored = stored;
    s->conf_text = pgcmk_xstrdup(text);
    s->base_dir = base_dir ? pgcmk_xstrdup(base_dir) : NULL;
    s->created_ms = created_ms ? created_ms : pgcmk_clock_now();
    if (pgcmk_kes_conf_parse(text, strlen(text), base_dir, &s->conf, why, sizeof(why))) {
        pgcmk_err_set(err, PGCMK_E_KES_CONFIG_INVALID, NULL, "%s", why);
        goto fail;
    }
    if (s->conf.tls_cert) {
        if ((cert = kes_read_file(s->conf.tls_cert, "TLS certificate", err)) == NULL ||
            (key = kes_read_file(s->conf.tls_key, "TLS private key", err)) == NULL)
            goto fail;
    }
    if (s->conf.tls_ca && (ca = kes_read_file(s->conf.tls_ca, "TLS CA certificates", err)) == NULL)
        goto fail;
    s->store = pgcmk_kes_store_open(&s->conf.vault, &s->conf.cache, err);
    if (s->store == NULL) {
        err->code = PGCMK_E_KES_CONFIG_INVALID;
        goto fail;
    }
    if (kes_required_keys(s, err))
        goto fail;
    {
        struct pgcmk_kes_store_health h;

        memset(&h, 0, sizeof(h));
        pgcmk_kes_store_health(s->store, &h);
        atomic_store(&s->reachable, h.reachable ? 1 : 0);
    }
    s->started_ms = pgcmk_clock_now();
    s->started_wall_ms = pgcmk_wall_ms();
    memset(&nc, 0, sizeof(nc));
    nc.listen = s->conf.host;
    nc.port = s->conf.port;
    if (nc.port == 0 && port_hint > 0)
        nc.port = port_hint;
    nc.cert_pem = cert ? cert : kes_cert_pem;
    nc.key_pem = key ? key : kes_key_pem;
    nc.client_cert = kes_cert_mode(&s->conf);
    nc.ca_pem = ca;
    nc.max_body = 1024 * 1024;
    nc.handle = kes_handle;
    nc.too_large = kes_too_large;
    nc.arg = s;
    s->net = pgcmk_net_https_start(&nc, err);
    if (s->net == NULL && nc.port != s->conf.port) { /* the old port is taken: any free one */
        nc.port = s->conf.port;
        s->net = pgcmk_net_https_start(&nc, err);
    }
    if (s->net == NULL) {
        err->code = PGCMK_E_KES_CONFIG_INVALID;
        goto fail;
    }
    s->port = pgcmk_net_https_port(s->net);
    s->next_ping_ms = pgcmk_clock_now() + s->conf.vault.ping_ms;
    if (key)
        pgcmk_secret_free(key, strlen(key));
    free(cert);
    free(ca);
    return s;
fail:
    if (key)
        pgcmk_secret_free(key, strlen(key));
    free(cert);
    free(ca);
    kes_server_free(s);
    return NULL;
}

/* Stops the listener (streams end, threads joined), then drops the list's reference. */
static void
kes_server_stop(struct kes_server *s)
{
    atomic_store(&s->stopping, 1);
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pgcmk_net_https_stop(s->net);
    s->net = NULL;
    kes_server_put(s);
}

static void
kes_list_add(struct kes_server *s)
{
    struct kes_server **pp;

    pthread_mutex_lock(&kes_mu);
    for (pp = &kes_list; *pp; pp = &(*pp)->next)
        ;
    s->next = NULL;
    *pp = s;
    pthread_mutex_unlock(&kes_mu);
}

static int
kes_list_remove(struct kes_server *s)
{
    struct kes_server **pp;
    int found = 0;

    pthread_mutex_lock(&kes_mu);
    for (pp = &kes_list; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            found = 1;
            break;
        }
    pthread_mutex_unlock(&kes_mu);
    return found;
}

/* ---- persistence and the Activity Log ---------------------------------------------------- */

struct kes_row {
    const char *name;
    const char *text;
    int port;
    int64_t created_ms;
    const char *op, *what;
    int changed; /* out: rows written or deleted */
};

static void
kes_activity(struct pgcmk_db *db, const char *name, const char *op, const char *what)
{
    struct pgcmk_activity a;
    struct pgcmk_err err;
    char *id = pgcmk_xasprintf(
        "/subscriptions/" PGCMK_SUBSCRIPTION_ID "/providers/pgcmk.Kes/servers/%s", name);

    memset(&a, 0, sizeof(a));
    a.resource_id = id;
    a.operation = op;
    a.status = "Succeeded";
    a.level = "Informational";
    a.description = what;
    if (pgcmk_activity_add(db, &a, &err))
        LOG_WARN("kes %s: activity log: %s", name, err.message);
    free(id);
}

static int
kes_row_put(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kes_row *r = ctx;
    char aad[128];
    unsigned char *sealed = NULL;
    size_t sl = 0;
    sqlite3_stmt *st;
    int rc;

    snprintf(aad, sizeof(aad), "kes-server:%s", r->name);
    if (r->text) {
        if (pgcmk_store_seal(r->text, strlen(r->text), aad, &sealed, &sl))
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot seal the KES config");
        st = pgcmk_db_stmt(db, PGCMK_STMT_KES_SERVER_PUT);
        sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, sealed, (int)sl, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, r->port);
        sqlite3_bind_int64(st, 4, r->created_ms);
    } else {
        st = pgcmk_db_stmt(db, PGCMK_STMT_KES_SERVER_DEL);
        sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
    }
    rc = pgcmk_db_each(db, st, NULL, NULL, "kes server", err);
    free(sealed);
    if (rc < 0)
        return -1;
    r->changed = sqlite3_changes(pgcmk_db_handle(db));
    if (r->changed)
        kes_activity(db, r->name, r->op, r->what);
    return 0;
}

static int
kes_persist(struct kes_row *r, struct pgcmk_err *err)
{
    return pgcmk_db_tx(pgcmk_db(), kes_row_put, r, err);
}

/* ---- JSON -------------------------------------------------------------------------------- */

static json_t *
kes_duration_json(int64_t ms)
{
    char buf[64];
    int64_t h = ms / 3600000, m = (ms / 60000) % 60;
    double sec = (double)(ms % 60000) / 1000.0;

    if (ms == 0)
        return json_string("0s");
    if (h)
        snprintf(buf, sizeof(buf), "%lldh%lldm%gs", (long long)h, (long long)m, sec);
    else if (m)
        snprintf(buf, sizeof(buf), "%lldm%gs", (long long)m, sec);
    else
        snprintf(buf, sizeof(buf), "%gs", sec);
    return json_string(buf);
}

static json_t *
kes_server_json(struct kes_server *s)
{
    struct pgcmk_kes_store_health h;
    json_t *o, *pols = json_array(), *keys = json_array(), *ks;
    char created[PGCMK_TIME_LEN];
    char *url = pgcmk_xasprintf("https://127.0.0.1:%d", s->port);
    int i;

    memset(&h, 0, sizeof(h));
    pgcmk_kes_store_health(s->store, &h);
    for (i = 0; i < s->conf.n_policies; i++)
        json_array_append_new(pols, json_string(s->conf.policies[i].name));
    for (i = 0; i < s->conf.n_keys; i++)
        json_array_append_new(keys, json_string(s->conf.keys[i]));
    ks = json_pack("{s:s?, s:s, s:i, s:s?, s:s?, s:b, s:s?}", "endpoint", s->conf.vault.endpoint,
                   "engine", s->conf.vault.engine ? s->conf.vault.engine : "kv", "version",
                   s->conf.vault.version, "prefix", s->conf.vault.prefix, "namespace",
                   s->conf.vault.namespace, "reachable", h.reachable, "why",
                   h.reachable ? NULL : h.why);
    pgcmk_time_format(s->created_ms, created);
    o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:o, s:o, s:o, s:{s:o, s:o, s:o}, s:b, s:s}", "name",
                  s->name, "address", s->conf.address ? s->conf.address : "0.0.0.0:7373", "port",
                  s->port, "url", url, s->conf.admin_field_root ? "root" : "admin",
                  s->conf.admin[0] ? s->conf.admin : "disabled", "keystore", ks, "policies", pols,
                  "keys", keys, "cache", "any", kes_duration_json(s->conf.cache.any_ms), "unused",
                  kes_duration_json(s->conf.cache.unused_ms), "offline",
                  kes_duration_json(s->conf.cache.offline_ms), "stored", s->stored, "createdAt",
                  created);
    json_object_set_new(o, "caCertificate",
                        s->conf.tls_cert || kes_ca_path == NULL ? json_null()
                                                                : json_string(kes_ca_path));
    json_object_set_new(o, "clientAuth", json_string(kes_cert_mode_name(kes_cert_mode(&s->conf))));
    free(url);
    return o;
}

/* ---- /emulator/kes/servers --------------------------------------------------------------- */

static int
kes_name_ok(const char *name)
{
    size_t i, n = strlen(name);

    if (n == 0 || n >= KES_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static void
kes_unique_name(const char *base, char out[KES_NAME_MAX])
{
    struct kes_server *s;
    int i;

    for (i = 1; i < 100000; i++) {
        if (i == 1)
            snprintf(out, KES_NAME_MAX, "%s", base);
        else
            snprintf(out, KES_NAME_MAX, "%.50s-%d", base, i);
        if ((s = kes_server_get(out)) == NULL)
            return;
        kes_server_put(s);
    }
}

static int
kes_body_text(struct pgcmk_req *rq, struct pgcmk_err *err)
{
    if (rq->body == NULL || rq->body_len == 0)
        return pgcmk_err_set(err, PGCMK_E_KES_CONFIG_INVALID, NULL,
                             "the body must be a KES config.yml document");
    if (strlen(rq->body) != rq->body_len)
        return pgcmk_err_set(err, PGCMK_E_KES_CONFIG_INVALID, NULL,
                             "the config document contains a NUL byte");
    return 0;
}

/* Keeps a started server: stores it (row, when stored), lists and announces it, and answers.
 * Called with kes_admin_mu held; releases it. */
static int
kes_commit(struct kes_server *s, struct kes_row *row, int status, struct pgcmk_resp *rs,
           struct pgcmk_err *err)
{
    if (row && kes_persist(row, err)) {
        kes_server_stop(s);
        pthread_mutex_unlock(&kes_admin_mu);
        return -1;
    }
    kes_list_add(s);
    pthread_mutex_unlock(&kes_admin_mu);
    LOG_INFO("KES server %s: https://127.0.0.1:%d", s->name, s->port);
    kes_event_server(s->name);
    pgcmk_resp_json(rs, status, kes_server_json(s));
    return 0;
}

static int
kes_create(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *qn = pgcmk_req_query(rq, "name");
    char name[KES_NAME_MAX];
    struct kes_server *s;
    struct kes_row row;

    if (kes_body_text(rq, err))
        return -1;
    if (qn && !kes_name_ok(qn))
        return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "name",
                             "a KES server name is 1-63 of [A-Za-z0-9._-]");
    pthread_mutex_lock(&kes_admin_mu);
    if (qn) {
        snprintf(name, sizeof(name), "%s", qn);
        if ((s = kes_server_get(name)) != NULL) {
            kes_server_put(s);
            pthread_mutex_unlock(&kes_admin_mu);
            return pgcmk_err_set(err, PGCMK_E_KES_SERVER_EXISTS, name,
                                 "a KES server named '%s' exists", name);
        }
    } else {
        kes_unique_name("kes", name);
    }
    s = kes_server_start(name, rq->body, NULL, 1, 0, 0, err);
    if (s == NULL) {
        pthread_mutex_unlock(&kes_admin_mu);
        return -1;
    }
    row = (struct kes_row){
        name, rq->body, s->port, s->created_ms, "pgcmk.Kes/servers/write", "KES server created"};
    return kes_commit(s, &row, 201, rs, err);
}

static int
kes_list_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    json_t *arr = json_array();
    struct kes_server *s;

    PGCMK_UNUSED(rq);
    PGCMK_UNUSED(err);
    pthread_mutex_lock(&kes_mu);
    for (s = kes_list; s; s = s->next)
        json_array_append_new(arr, kes_server_json(s));
    pthread_mutex_unlock(&kes_mu);
    pgcmk_resp_json(rs, 200, json_pack("{s:o}", "value", arr));
    return 0;
}

static struct kes_server *
kes_param_server(struct pgcmk_req *rq, struct pgcmk_err *err)
{
    const char *name = pgcmk_req_param(rq, "name");
    struct kes_server *s = name ? kes_server_get(name) : NULL;

    if (s == NULL)
        pgcmk_err_set(err, PGCMK_E_KES_SERVER_NOT_FOUND, name, "no KES server named '%.64s'",
                      name ? name : "");
    return s;
}

static int
kes_show(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kes_server *s = kes_param_server(rq, err);

    if (s == NULL)
        return -1;
    pgcmk_resp_json(rs, 200, kes_server_json(s));
    kes_server_put(s);
    return 0;
}

static int
kes_audit_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kes_server *s = kes_param_server(rq, err);
    const char *l = pgcmk_req_query(rq, "limit");

    if (s == NULL)
        return -1;
    pgcmk_resp_json(rs, 200, kes_audit_json(s, l ? atoi(l) : 0));
    kes_server_put(s);
    return 0;
}

/* GET .../keys: the keystore's key names (a keystore failure: its error) and the cache. */
static int
kes_keys_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kes_server *s = kes_param_server(rq, err);
    json_t *names = NULL, *cache;

    if (s == NULL)
        return -1;
    if (pgcmk_kes_store_list(s->store, "", &names, err)) {
        kes_server_put(s);
        return -1;
    }
    cache = pgcmk_kes_store_cache_json(s->store);
    pgcmk_resp_json(rs, 200,
                    json_pack("{s:o, s:o}", "names", names ? names : json_array(), "cache",
                              cache ? cache : json_array()));
    kes_server_put(s);
    return 0;
}

/* GET .../diagnose?identity=&key=&op=: pgcmk_kes_diagnose on the server's port (what
 * /emulator/explain asks). */
static int
kes_diagnose_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kes_server *s = kes_param_server(rq, err);
    json_t *o;

    if (s == NULL)
        return -1;
    o = pgcmk_kes_diagnose(s->port, pgcmk_req_query(rq, "identity"), pgcmk_req_query(rq, "key"),
                           pgcmk_req_query(rq, "op"));
    kes_server_put(s);
    if (o == NULL)
        return pgcmk_err_set(err, PGCMK_E_KES_SERVER_NOT_FOUND, NULL, "the KES server stopped");
    pgcmk_resp_json(rs, 200, o);
    return 0;
}

static int
kes_delete(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kes_server *s;
    char name[KES_NAME_MAX];

    pthread_mutex_lock(&kes_admin_mu);
    s = kes_param_server(rq, err);
    if (s == NULL) { /* a stored server that did not start again is deleted all the same */
        struct kes_row gone = {pgcmk_req_param(rq, "name"),
                               NULL,
                               0,
                               0,
                               "pgcmk.Kes/servers/delete",
                               "KES server deleted (it was not running)"};
        struct pgcmk_err e2;

        pthread_mutex_unlock(&kes_admin_mu);
        if (gone.name == NULL || kes_persist(&gone, &e2) || gone.changed == 0)
            return -1;
        pgcmk_resp_empty(rs, 204);
        return 0;
    }
    snprintf(name, sizeof(name), "%s", s->name);
    if (s->stored) {
        struct kes_row row = {name, NULL, 0, 0, "pgcmk.Kes/servers/delete", "KES server deleted"};

        if (kes_persist(&row, err)) {
            kes_server_put(s);
            pthread_mutex_unlock(&kes_admin_mu);
            return -1;
        }
    }
    kes_list_remove(s);
    kes_server_put(s);
    kes_server_stop(s);
    pthread_mutex_unlock(&kes_admin_mu);
    kes_event_server(name);
    pgcmk_resp_empty(rs, 204);
    return 0;
}

/* PUT: replace the config (KES needs a restart for a policy change): the new document is
 * checked first (the old server keeps running when it is refused), then the old server stops
 * and the new one starts on its port when the address asks for any port. Creates when absent. */
static int
kes_replace(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = pgcmk_req_param(rq, "name");
    struct pgcmk_kes_conf probe;
    struct kes_server *old, *s;
    struct kes_row row;
    char why[512];
    int port = 0, stored = 1, replaced;
    int64_t created = 0;
    char *old_text = NULL, *old_base = NULL;

    if (kes_body_text(rq, err))
        return -1;
    if (name == NULL || !kes_name_ok(name))
        return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "name",
                             "a KES server name is 1-63 of [A-Za-z0-9._-]");
    pthread_mutex_lock(&kes_admin_mu);
    old = kes_server_get(name);
    if (pgcmk_kes_conf_parse(rq->body, rq->body_len, old ? old->base_dir : NULL, &probe, why,
                             sizeof(why))) {
        kes_server_put(old);
        pthread_mutex_unlock(&kes_admin_mu);
        return pgcmk_err_set(err, PGCMK_E_KES_CONFIG_INVALID, NULL, "%s", why);
    }
    pgcmk_kes_conf_free(&probe);
    replaced = old != NULL;
    if (old) {
        port = old->port;
        stored = old->stored;
        created = old->created_ms;
        old_text = pgcmk_xstrdup(old->conf_text);
        old_base = old->base_dir ? pgcmk_xstrdup(old->base_dir) : NULL;
        kes_list_remove(old);
        kes_server_put(old);
        kes_server_stop(old);
    }
    s = kes_server_start(name, rq->body, old_base, stored, port, created, err);
    if (s == NULL && old_text) { /* the old config comes back */
        struct pgcmk_err e2;
        struct kes_server *back =
            kes_server_start(name, old_text, old_base, stored, port, created, &e2);

        if (back)
            kes_list_add(back);
    }
    if (old_text)
        pgcmk_secret_free(old_text, strlen(old_text));
    free(old_base);
    if (s == NULL) {
        pthread_mutex_unlock(&kes_admin_mu);
        return -1;
    }
    row = (struct kes_row){name,
                           rq->body,
                           s->port,
                           s->created_ms,
                           "pgcmk.Kes/servers/write",
                           replaced ? "KES server config replaced (restarted)"
                                    : "KES server created"};
    return kes_commit(s, stored ? &row : NULL, replaced ? 200 : 201, rs, err);
}

static const struct pgcmk_route kes_routes[] = {
    {"POST", "/emulator/kes/servers", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_ANYBODY, "name",
     kes_create},
    {"GET", "/emulator/kes/servers", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, kes_list_get},
    {"GET", "/emulator/kes/servers/{name}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, kes_show},
    {"PUT", "/emulator/kes/servers/{name}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_ANYBODY, NULL,
     kes_replace},
    {"DELETE", "/emulator/kes/servers/{name}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, kes_delete},
    {"GET", "/emulator/kes/servers/{name}/audit", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, "limit",
     kes_audit_get},
    {"GET", "/emulator/kes/servers/{name}/keys", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL,
     kes_keys_get},
    {"GET", "/emulator/kes/servers/{name}/diagnose", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0,
     "identity,key,op", kes_diagnose_get},
};

/* ---- status.ping on the virtual clock ---------------------------------------------------- */

static pthread_mutex_t kes_ping_mu = PTHREAD_MUTEX_INITIALIZER;

static void
kes_ping(struct kes_server *s)
{
    struct pgcmk_kes_store_health h;
    int old;

    if (atomic_load(&s->stopping))
        return;
    pgcmk_kes_store_ping(s->store);
    memset(&h, 0, sizeof(h));
    pgcmk_kes_store_health(s->store, &h);
    old = atomic_exchange(&s->reachable, h.reachable ? 1 : 0);
    if (old != -1 && old != (h.reachable ? 1 : 0)) {
        struct pgcmk_event ev = {0};

        ev.kind = PGCMK_EV_KES_KEYSTORE_CHANGED;
        ev.resource_id = s->name;
        ev.version = h.reachable ? "reachable" : "unreachable";
        pgcmk_events_publish(&ev);
        if (!h.reachable)
            kes_error_log(s, "keystore is not reachable: %s", h.why);
    }
}

static void
kes_ping_job(void *arg)
{
    struct kes_server *s = arg;

    pthread_mutex_lock(&kes_ping_mu);
    kes_ping(s);
    pthread_mutex_unlock(&kes_ping_mu);
    atomic_store(&s->pinging, 0);
    kes_server_put(s);
}

/* A clock change pings the due servers at once (a test's POST /emulator/clock sees the result);
 * the tick of the running clock hands them to the worker pool. */
static void
kes_clock(int64_t now, void *arg)
{
    struct kes_server *due[64], *s;
    unsigned long gen = pgcmk_clock_generation();
    int n = 0, i, sync = atomic_exchange(&kes_clock_gen, gen) != gen;

    PGCMK_UNUSED(arg);
    pthread_mutex_lock(&kes_mu);
    for (s = kes_list; s && n < (int)PGCMK_ARRAY_LEN(due); s = s->next) {
        if (now < s->next_ping_ms || (!sync && atomic_load(&s->pinging)))
            continue;
        s->next_ping_ms = now + s->conf.vault.ping_ms;
        atomic_fetch_add(&s->refs, 1);
        due[n++] = s;
    }
    pthread_mutex_unlock(&kes_mu);
    for (i = 0; i < n; i++) {
        if (sync) {
            pthread_mutex_lock(&kes_ping_mu);
            kes_ping(due[i]);
            pthread_mutex_unlock(&kes_ping_mu);
            kes_server_put(due[i]);
        } else {
            atomic_store(&due[i]->pinging, 1);
            pgcmk_work_submit(kes_ping_job, due[i]);
        }
    }
}

/* ---- module ------------------------------------------------------------------------------ */

int
pgcmk_kes_init(const char *cert_pem, const char *key_pem, const char *ca_path)
{
    static int listening;

    free(kes_cert_pem);
    free(kes_key_pem);
    free(kes_ca_path);
    kes_cert_pem = pgcmk_xstrdup(cert_pem);
    kes_key_pem = pgcmk_xstrdup(key_pem);
    kes_ca_path = ca_path ? pgcmk_xstrdup(ca_path) : NULL;
    pgcmk_router_add(kes_routes, PGCMK_ARRAY_LEN(kes_routes));
    if (!listening) {
        if (pgcmk_clock_listen(kes_clock, NULL))
            return -1;
        listening = 1;
    }
    return 0;
}

/* A stored server, read before any is started (no statement stays open over their starts). */
struct kes_stored {
    char name[KES_NAME_MAX];
    char *doc; /* the config, unsealed (secret) */
    int port;
    int64_t created_ms;
};

struct kes_stored_list {
    struct kes_stored *v;
    size_t n, cap;
};

static int
kes_stored_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct kes_stored_list *l = arg;
    const char *name = (const char *)sqlite3_column_text(st, 0);
    unsigned char *text = NULL;
    size_t tl = 0;
    char aad[128];

    PGCMK_UNUSED(err);
    snprintf(aad, sizeof(aad), "kes-server:%s", name ? name : "");
    if (name == NULL || pgcmk_store_unseal(sqlite3_column_blob(st, 1),
                                           (size_t)sqlite3_column_bytes(st, 1), aad, &text, &tl)) {
        LOG_WARN("kes %s: the stored config does not unseal", name ? name : "?");
        return 0;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = pgcmk_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    snprintf(l->v[l->n].name, KES_NAME_MAX, "%s", name);
    l->v[l->n].doc = pgcmk_xstrndup((const char *)text, tl);
    l->v[l->n].port = sqlite3_column_int(st, 2);
    l->v[l->n].created_ms = sqlite3_column_int64(st, 3);
    l->n++;
    pgcmk_secret_free(text, tl);
    return 0;
}

void
pgcmk_kes_start_stored(void)
{
    struct pgcmk_db *db = pgcmk_db();
    struct kes_stored_list l = {0};
    struct pgcmk_err err;
    size_t i;

    if (pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_KES_SERVER_LIST), kes_stored_row, &l,
                      "kes servers", &err) < 0)
        LOG_WARN("kes: the stored servers cannot be read: %s", err.message);
    for (i = 0; i < l.n; i++) {
        struct kes_stored *r = &l.v[i];
        struct kes_server *s =
            kes_server_start(r->name, r->doc, NULL, 1, r->port, r->created_ms, &err);

        pgcmk_secret_free(r->doc, strlen(r->doc));
        if (s == NULL) {
            LOG_WARN("kes %s: does not start again: %s", r->name, err.message);
            continue;
        }
        if (s->port != r->port)
            LOG_WARN("kes %s: port %d is taken: now on %d", r->name, r->port, s->port);
        kes_list_add(s);
        kes_event_server(s->name);
    }
    free(l.v);
}

int
pgcmk_kes_start_file(const char *path, struct pgcmk_err *err)
{
    char *text, *dir, *dup, *base, *dot, *abs = realpath(path, NULL), dflt[] = "kes";
    char name[KES_NAME_MAX];
    struct kes_server *s;

    text = kes_read_file(abs ? abs : path, "KES config", err);
    if (text == NULL) {
        free(abs);
        return -1;
    }
    dup = pgcmk_xstrdup(abs ? abs : path);
    dir = pgcmk_xstrdup(dirname(dup));
    free(dup);
    dup = pgcmk_xstrdup(abs ? abs : path);
    base = basename(dup);
    if ((dot = strrchr(base, '.')) != NULL && dot != base)
        *dot = '\0';
    if (!kes_name_ok(base))
        base = dflt;
    pthread_mutex_lock(&kes_admin_mu);
    kes_unique_name(base, name);
    s = kes_server_start(name, text, dir, 0, 0, 0, err);
    if (s)
        kes_list_add(s);
    pthread_mutex_unlock(&kes_admin_mu);
    pgcmk_secret_free(text, strlen(text));
    free(dup);
    free(dir);
    free(abs);
    if (s == NULL)
        return -1;
    kes_event_server(s->name);
    return 0;
}

void
pgcmk_kes_shutdown(void)
{
    struct kes_server *s;

    for (;;) {
        pthread_mutex_lock(&kes_mu);
        s = kes_list;
        if (s)
            kes_list = s->next;
        pthread_mutex_unlock(&kes_mu);
        if (s == NULL)
            break;
        kes_server_stop(s);
    }
    free(kes_cert_pem);
    if (kes_key_pem)
        pgcmk_secret_free(kes_key_pem, strlen(kes_key_pem));
    free(kes_ca_path);
    kes_cert_pem = kes_key_pem = kes_ca_path = NULL;
}

json_t *
pgcmk_kes_info(void)
{
    json_t *arr = json_array();
    struct kes_server *s;

    pthread_mutex_lock(&kes_mu);
    for (s = kes_list; s; s = s->next) {
        char *url = pgcmk_xasprintf("https://127.0.0.1:%d", s->port);

        json_array_append_new(
            arr, json_pack("{s:s, s:i, s:s}", "name", s->name, "port", s->port, "url", url));
        free(url);
    }
    pthread_mutex_unlock(&kes_mu);
    return arr;
}

void
pgcmk_kes_banner(void)
{
    struct kes_server *s;

    pthread_mutex_lock(&kes_mu);
    for (s = kes_list; s; s = s->next)
        printf("  KES server %s: https://127.0.0.1:%d\n", s->name, s->port);
    pthread_mutex_unlock(&kes_mu);
}

json_t *
pgcmk_kes_diagnose(int port, const char *identity, const char *key, const char *op)
{
    struct kes_server *s = kes_server_by_port(port);
    const struct pgcmk_kes_policy_cfg *p;
    struct pgcmk_kes_store_health h;
    json_t *o, *cache, *entry = NULL, *exists = json_null();
    char path[256];
    int admin, allowed;
    size_t i;

    if (s == NULL)
        return NULL;
    admin = identity && s->conf.admin[0] && strcmp(identity, s->conf.admin) == 0;
    p = kes_policy_of(s, identity);
    snprintf(path, sizeof(path), "/v1/key/%s/%s", op ? op : "generate", key ? key : "");
    allowed = admin || (p && pgcmk_kes_policy_allows(p, path));
    memset(&h, 0, sizeof(h));
    pgcmk_kes_store_health(s->store, &h);
    cache = pgcmk_kes_store_cache_json(s->store);
    for (i = 0; cache && key && i < json_array_size(cache); i++) {
        const char *n = json_string_value(json_object_get(json_array_get(cache, i), "name"));

        if (n && strcmp(n, key) == 0)
            entry = json_array_get(cache, i);
    }
    if (key && (h.reachable || entry)) {
        struct pgcmk_kes_key k;
        struct pgcmk_err e;

        if (pgcmk_kes_store_get(s->store, key, &k, &e) == 0) {
            pgcmk_kes_key_wipe(&k);
            exists = json_true();
        } else if (pgcmk_err_status(e.code) == 404) {
            exists = json_false();
        }
    }
    o = json_pack("{s:s, s:{s:b, s:b, s:o}, s:b, s:{s:o}, s:{s:b, s:o}, s:{s:b, s:o}}", "server",
                  s->name, "identity", "known", admin || p != NULL, "admin", admin, "policy",
                  p ? json_string(p->name) : json_null(), "allowed", allowed, "key", "exists",
                  exists, "keystore", "reachable", h.reachable, "why",
                  h.reachable ? json_null() : json_string(h.why), "cache", "cached", entry != NULL,
                  "expiresAt",
                  entry && json_object_get(entry, "expiresAt")
                      ? json_incref(json_object_get(entry, "expiresAt"))
                      : json_null());
    json_decref(cache);
    kes_server_put(s);
    return o;
}
