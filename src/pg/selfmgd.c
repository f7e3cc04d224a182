/* selfmgd.c - self-managed PostgreSQL instances (issue 16, item 1): real instances with no Azure
 * resource, for pg_tde's walkthroughs (docs/pg-tde.md). POST /emulator/postgres/instances
 * {"name", "login"?} makes one (id "/emulator/postgres/instances/{name}") through the supervisor
 * (pgcmk_pg_create with self_managed: the login is a SUPERUSER, shared_preload_libraries gets
 * pgcmk's pg_tde emulation when it is installed, no WAL archive until the server key is set),
 * and answers its connection string with a generated password, once; POST .../resetPassword
 * makes another. GET lists, GET one, DELETE, POST .../restart (the seed's "restart the server":
 * a start the extension refuses, wal_encrypt on and the server key missing, answers the FATAL
 * line). The instances persist as their pg_instances rows (the id's prefix says self-managed);
 * the server key's binding is a pg_databases row of kind tde with the instance's id
 * (pgcmk_tde_bind, src/tde/tde.c), which the reconciler checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "pg/internal.h"
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/http.h"
#include "pgcmk/log.h"
#include "pgcmk/pg.h"
#include "pgcmk/store.h"
#include "pgcmk/tde.h"
#include "pgcmk/tdeproto.h"
#include "providers/postgres.h"

#define SM_NAME_MAX 63
#define SM_PASSWORD 24
#define SM_LOGIN    "postgres"
#define SM_HOST     "localhost"
#define SM_NO_PG_TDE                                                                               \
    "pg_tde is not installed (make pgext as root where postgresql-server-dev-15 exists): the "     \
    "instance runs without it"

int
pg_selfmgd_id(const char *db_id)
{
    return db_id && strncasecmp(db_id, PG_SELFMGD_PREFIX, strlen(PG_SELFMGD_PREFIX)) == 0;
}

int
pg_selfmgd_bound(const char *db_id)
{
    struct pg_db d;
    struct pgcmk_err err;
    int rc = pg_db_load(pgcmk_db(), db_id, &d, &err), bound;

    if (rc <= 0)
        return 0;
    bound = d.kind == PG_TDE;
    pg_db_release(&d);
    return bound;
}

/* 1 when pgext/pg_tde is installed next to the server (pg_config --pkglibdir). */
static int
sm_pg_tde_installed(void)
{
    char lib[PATH_MAX];

    pg_fmt(lib, sizeof(lib), "%s/../lib/pg_tde.so", pg_bin_dir());
    return access(lib, R_OK) == 0;
}

void
pg_selfmgd_conf(const char *slug, char *buf, size_t n, const char *conf)
{
    char sock[PATH_MAX];
    int pgcmk = strstr(conf, "shared_preload_libraries = 'pgcmk'") != NULL;

    if (!sm_pg_tde_installed() || pg_archive_sock_path(sock, sizeof(sock)))
        return;
    pg_fmt(buf, n,
           "shared_preload_libraries = '%s'\n" PGTDE_GUC_SOCKET " = '%s'\n" PGTDE_GUC_SLUG
           " = '%s'\n",
           pgcmk ? "pgcmk,pg_tde" : "pg_tde", sock, slug);
}

int
pg_selfmgd_names(const char *db_id, char *host, size_t hn, char *user, size_t un)
{
    json_t *o = pgcmk_pg_describe(db_id);
    const char *u = json_string_value(json_object_get(o, "adminLogin"));

    if (!o || !pg_selfmgd_id(db_id)) {
        json_decref(o);
        return -1;
    }
    pg_fmt(host, hn, "%s", SM_HOST);
    pg_fmt(user, un, "%s", u ? u : SM_LOGIN);
    json_decref(o);
    return 0;
}

/* ---- the routes --------------------------------------------------------------------------- */

static int
sm_real(struct pgcmk_err *err)
{
    if (pgcmk_pg_real())
        return 0;
    return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                         "Self-managed PostgreSQL instances are real PostgreSQL servers: start "
                         "pgcmkd with --pg-mode real.");
}

/* A server name's rules (pg_check_name): 3-63 lower-case letters, digits and '-'. */
static int
sm_check_name(const char *name, struct pgcmk_err *err)
{
    if (!name)
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, "name",
                             "The body needs name: the instance's name.");
    return pg_check_name("instance", name, SM_NAME_MAX, err);
}

/* A role name for the superuser login: [a-z_][a-z0-9_]*, not pgcmk's nor a pg_ role. */
static int
sm_check_login(const char *login, struct pgcmk_err *err)
{
    size_t n = login ? strlen(login) : 0;
    int ok = n >= 1 && n <= 63 && !(login[0] >= '0' && login[0] <= '9') &&
             strncmp(login, "pg_", 3) != 0 && strncmp(login, "pgcmk", 5) != 0;

    for (size_t i = 0; ok && i < n; i++)
        ok = (login[i] >= 'a' && login[i] <= 'z') || (login[i] >= '0' && login[i] <= '9') ||
             login[i] == '_';
    if (ok)
        return 0;
    return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, "login",
                         "login must be a role name: 1 to 63 lower-case letters, digits and '_', "
                         "not starting with a digit, 'pg_' or 'pgcmk'.");
}

static char *
sm_id(const char *name)
{
    return pgcmk_xasprintf(PG_SELFMGD_PREFIX "%s", name);
}

/* A random password of letters and digits (a secret: pgcmk_secret_free it). */
static char *
sm_password(void)
{
    static const char abc[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    unsigned char r[SM_PASSWORD];
    char *p = pgcmk_xmalloc(SM_PASSWORD + 1);

    if (pgcmk_random(r, sizeof(r)))
        abort(); /* no randomness: nothing safe to answer */
    for (size_t i = 0; i < SM_PASSWORD; i++)
        p[i] = abc[r[i] % (sizeof(abc) - 1)];
    p[SM_PASSWORD] = 0;
    OPENSSL_cleanse(r, sizeof(r));
    return p;
}

/* The server key's binding: {"name", "provider", "state", "reasonCode", "reason"}, or null. */
static json_t *
sm_server_key(const char *id)
{
    struct pg_db d;
    struct pgcmk_err err;
    json_t *o, *prov;

    if (pg_db_load(pgcmk_db(), id, &d, &err) <= 0)
        return json_null();
    if (d.kind != PG_TDE) {
        pg_db_release(&d);
        return json_null();
    }
    prov = d.provider ? json_loads(d.provider, 0, NULL) : NULL;
    o = json_pack("{s:s?, s:o, s:s, s:s?, s:s?}", "name", d.key_name, "provider",
                  prov ? prov : json_null(), "state",
                  strcmp(d.access, PG_ACCESS_LOST) == 0 ? "Inaccessible"
                  : strcmp(d.access, PG_ACCESS_OK) == 0 ? "Ready"
                                                        : "Provisioning",
                  "reasonCode", d.reason_code, "reason", d.reason);
    pg_db_release(&d);
    return o;
}

/* The rows of one of the agent's statements (migration 19) for id, as arrays of text. */
static json_t *
sm_rows(const char *id, enum pgcmk_stmt which)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, which);
    json_t *rows = json_array();
    struct pgcmk_err err;

    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (pgcmk_db_each(db, st, pgcmk_db_collect_row, rows, "pg_tde mirror", &err) < 0)
        json_array_clear(rows);
    return rows;
}

/* Column i of a collected row as an integer (0 when NULL). */
static long long
sm_ll(const json_t *row, size_t i)
{
    const char *v = json_string_value(json_array_get(row, i));

    return v ? atoll(v) : 0;
}

/* The instance's pg_tde configuration as the agent mirrors it: {"providers": [{"scope":
 * "global"|<database oid>, "id", "name", "type", "options"}], "keys": [{"target":
 * "server"|"default"|<database oid>, "name", "providerId", "created"}]}. */
static json_t *
sm_tde_config(const char *id)
{
    json_t *prows = sm_rows(id, PGCMK_STMT_TDEA_PROV_ALL),
           *krows = sm_rows(id, PGCMK_STMT_TDEA_KEY_ALL);
    json_t *provs = json_array(), *keys = json_array(), *r;
    size_t k;

    json_array_foreach(prows, k, r) {
        long long scope = sm_ll(r, 0);
        const char *opts = json_string_value(json_array_get(r, 4));
        json_t *o = opts ? json_loads(opts, 0, NULL) : NULL;

        json_array_append_new(
            provs,
            json_pack("{s:o, s:i, s:s?, s:s?, s:o}", "scope",
                      scope == 0 ? json_string("global") : json_integer(scope), "id",
                      (int)sm_ll(r, 1), "name", json_string_value(json_array_get(r, 2)), "type",
                      json_string_value(json_array_get(r, 3)), "options", o ? o : json_object()));
    }
    json_array_foreach(krows, k, r) {
        long long target = sm_ll(r, 0);
        char t[PGCMK_TIME_LEN];

        pgcmk_time_format(sm_ll(r, 4), t);
        json_array_append_new(keys, json_pack("{s:o, s:s?, s:i, s:s}", "target",
                                              target == -1   ? json_string("server")
                                              : target == -2 ? json_string("default")
                                                             : json_integer(target),
                                              "name", json_string_value(json_array_get(r, 1)),
                                              "providerId", (int)sm_ll(r, 3), "created", t));
    }
    json_decref(prows);
    json_decref(krows);
    return json_pack("{s:o, s:o}", "providers", provs, "keys", keys);
}

/* The instance's answer (no password): NULL when id has no instance. */
static json_t *
sm_body(const char *id)
{
    json_t *inst = pgcmk_pg_describe(id), *conn, *o;

    if (!inst)
        return NULL;
    conn = pgcmk_pg_connection(id);
    o = json_pack("{s:s, s:s, s:O, s:O, s:s, s:O, s:O, s:O, s:{s:s, s:o}, s:o}", "id", id, "name",
                  id + strlen(PG_SELFMGD_PREFIX), "state", json_object_get(inst, "state"), "port",
                  json_object_get(inst, "port"), "host", SM_HOST, "adminLogin",
                  json_object_get(inst, "adminLogin"), "connectionString",
                  conn ? json_object_get(conn, "connectionString") : json_null(), "psql",
                  conn ? json_object_get(conn, "psql") : json_null(), "pgTde", "library",
                  sm_pg_tde_installed() ? "loaded" : "not installed", "serverKey",
                  sm_server_key(id), "instance", inst);
    if (o) {
        json_t *cfg = sm_tde_config(id);

        json_object_update(json_object_get(o, "pgTde"), cfg);
        json_decref(cfg);
    }
    if (o && !sm_pg_tde_installed())
        json_object_set_new(o, "warning", json_string(SM_NO_PG_TDE));
    json_decref(conn);
    return o;
}

/* Adds the login's password to the answer o (its connection string and "password"). */
static void
sm_with_password(json_t *o, const char *password)
{
    const char *cs = json_string_value(json_object_get(o, "connectionString"));
    char *with;

    if (cs) {
        with = pgcmk_xasprintf("%s password=%s", cs, password);
        json_object_set_new(o, "connectionString", json_string(with));
        pgcmk_secret_free(with, strlen(with));
    }
    json_object_set_new(o, "password", json_string(password));
    json_object_set_new(o, "passwordNote",
                        json_string("The password is shown only in this answer: POST "
                                    "/emulator/postgres/instances/{name}/resetPassword (or "
                                    "`pgcmk postgres reset-password NAME`) makes a new one."));
}

static int
sm_load(struct pgcmk_req *rq, char **id, struct pgcmk_err *err)
{
    const char *name = pgcmk_req_param(rq, "name");

    if (sm_real(err) || sm_check_name(name, err))
        return -1;
    *id = sm_id(name);
    if (!pgcmk_pg_has(*id)) {
        free(*id);
        return pgcmk_err_set(err, PGCMK_E_PGTDE_INSTANCE_NOT_FOUND, "name",
                             "No self-managed PostgreSQL instance is named '%.64s'.", name);
    }
    return 0;
}

/* POST /emulator/postgres/instances {"name", "login"} */
static int
sm_create(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = json_string_value(json_object_get(rq->json, "name"));
    json_t *lj = json_object_get(rq->json, "login");
    const char *login = lj ? json_string_value(lj) : SM_LOGIN;
    struct pgcmk_pg_spec s;
    char *id, *password;
    json_t *o;
    int rc;

    if (sm_real(err) || sm_check_name(name, err) || sm_check_login(login, err))
        return -1;
    id = sm_id(name);
    if (pgcmk_pg_has(id)) {
        free(id);
        return pgcmk_err_set(err, PGCMK_E_PGTDE_INSTANCE_EXISTS, "name",
                             "A self-managed PostgreSQL instance named '%.64s' exists already.",
                             name);
    }
    password = sm_password();
    memset(&s, 0, sizeof(s));
    s.db_id = id;
    s.admin_login = login;
    s.admin_password = password;
    s.self_managed = 1;
    rc = pgcmk_pg_create(&s, err);
    if (rc == 0 && (o = sm_body(id)) != NULL) {
        sm_with_password(o, password);
        pgcmk_resp_json(rs, 201, o);
        LOG_INFO("pg: self-managed instance %s created", id);
    } else if (rc == 0) {
        rc = pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "the instance vanished after its create");
    }
    pgcmk_secret_free(password, strlen(password));
    free(id);
    return rc;
}

static int
sm_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    json_t *rows = json_array(), *out = json_array(), *r;
    size_t k;

    (void)rq;
    if (sm_real(err) || pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_PGI_LIST),
                                      pgcmk_db_collect_row, rows, "pg instances", err) < 0) {
        json_decref(rows);
        json_decref(out);
        return -1;
    }
    json_array_foreach(rows, k, r) {
        const char *id = json_string_value(json_array_get(r, 0));
        json_t *o = pg_selfmgd_id(id) ? sm_body(id) : NULL;

        if (o)
            json_array_append_new(out, o);
    }
    json_decref(rows);
    pgcmk_resp_json(rs, 200, json_pack("{s:o}", "value", out));
    return 0;
}

/* Answers 200 with the instance (no password) and frees id. */
static int
sm_answer(struct pgcmk_resp *rs, char *id, struct pgcmk_err *err)
{
    json_t *o = sm_body(id);

    free(id);
    if (!o)
        return pgcmk_err_set(err, PGCMK_E_PGTDE_INSTANCE_NOT_FOUND, "name",
                             "The instance was deleted meanwhile.");
    pgcmk_resp_json(rs, 200, o);
    return 0;
}

static int
sm_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    char *id;

    if (sm_load(rq, &id, err))
        return -1;
    return sm_answer(rs, id, err);
}

static int
sm_delete(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    char *id;
    int rc;

    if (sm_load(rq, &id, err))
        return -1;
    rc = pgcmk_tde_unbind(id, err) || pgcmk_pg_drop(id, err) ? -1 : 0;
    if (rc == 0) {
        pgcmk_resp_json(rs, 200,
                        json_pack("{s:s, s:s, s:s}", "id", id, "name",
                                  id + strlen(PG_SELFMGD_PREFIX), "state", "Deleted"));
        LOG_INFO("pg: self-managed instance %s deleted", id);
    }
    free(id);
    return rc;
}

/* POST .../restart: stop fast, start; a refused start answers PostgreSQL's FATAL line. */
static int
sm_restart(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    char *id;

    if (sm_load(rq, &id, err))
        return -1;
    if (pgcmk_pg_restart(id, err)) {
        const char *fatal = strstr(err->message, "FATAL:");

        if (fatal) {
            char line[PGCMK_ERR_MSG_LEN];

            pg_fmt(line, sizeof(line), "%s", fatal);
            pgcmk_err_set(err, PGCMK_E_PGREAL_START, NULL,
                          "The server did not start: %s (pgcmkd starts it again by itself once "
                          "the cause is gone; POST .../restart to try now.)",
                          line);
        }
        free(id);
        return -1;
    }
    return sm_answer(rs, id, err);
}

/* POST .../resetPassword: a new password for the superuser login, shown once. */
static int
sm_reset_password(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    char *id, *password;
    json_t *o;
    int rc;

    if (sm_load(rq, &id, err))
        return -1;
    password = sm_password();
    rc = pgcmk_pg_set_password(id, NULL, password, err);
    if (rc == 0) {
        o = sm_body(id);
        if (!o)
            o = json_object();
        sm_with_password(o, password);
        pgcmk_resp_json(rs, 200, o);
    }
    pgcmk_secret_free(password, strlen(password));
    free(id);
    return rc;
}

#define SM_ALL "/emulator/postgres/instances"
#define SM_ONE SM_ALL "/{name}"
static const struct pgcmk_route sm_routes[] = {
    {"POST", SM_ALL, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON | ROUTE_F_SECRET, NULL,
     sm_create},
    {"GET", SM_ALL, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, sm_list},
    {"GET", SM_ONE, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, sm_get},
    {"DELETE", SM_ONE, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, sm_delete},
    {"POST", SM_ONE "/restart", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, sm_restart},
    {"POST", SM_ONE "/resetPassword", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_SECRET, NULL,
     sm_reset_password},
};

void
pg_selfmgd_register(void)
{
    pgcmk_router_add(sm_routes, PGCMK_ARRAY_LEN(sm_routes));
}
