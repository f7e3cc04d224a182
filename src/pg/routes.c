/* routes.c - real PostgreSQL's emulator routes: GET /emulator/postgres/connection?resourceId=
 * (how a client connects to the database's instance: a libpq connection string that verifies
 * the certificate, and the psql command line; never a password). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/internal.h"
#include "pgcmk/arm.h"
#include "pgcmk/http.h"
#include "pgcmk/pg.h"
#include "pgcmk/store.h"

/* The host name and the admin login the resource reports: a cluster's coordinator
 * (serverNames[0], login "citus"), a single server's fullyQualifiedDomainName and
 * administratorLogin. 0, or -1 when db_id is no ARM resource. */
static int
conn_names(const char *db_id, char *host, size_t hn, char *user, size_t un)
{
    json_t *body = NULL, *p;
    const char *h, *u;
    struct pgcmk_err err;

    if (pg_selfmgd_id(db_id))
        return pg_selfmgd_names(db_id, host, hn, user, un);
    if (pgcmk_arm_resource_get(pgcmk_db(), db_id, &body, &err) <= 0)
        return -1;
    p = json_object_get(body, "properties");
    h = json_string_value(json_object_get(p, "fullyQualifiedDomainName"));
    if (!h)
        h = json_string_value(json_object_get(json_array_get(json_object_get(p, "serverNames"), 0),
                                              "fullyQualifiedDomainName"));
    u = json_string_value(json_object_get(p, "administratorLogin"));
    snprintf(host, hn, "%s", h ? h : "127.0.0.1");
    snprintf(user, un, "%s", u ? u : "citus");
    json_decref(body);
    return 0;
}

/* pgcmk's CA certificate, absolute: DATA_DIR/ca.pem (pg_root_dir() is DATA_DIR/pg). */
static void
conn_ca(char *out, size_t n)
{
    char path[PATH_MAX], real[PATH_MAX];
    const char *slash;

    snprintf(path, sizeof(path), "%s", pg_root_dir());
    slash = strrchr(path, '/');
    if (slash && slash[1] == 0) { /* a trailing slash */
        path[slash - path] = 0;
        slash = strrchr(path, '/');
    }
    if (slash)
        snprintf(path + (slash - path), sizeof(path) - (size_t)(slash - path), "/ca.pem");
    else
        snprintf(path, sizeof(path), "ca.pem");
    snprintf(out, n, "%s", realpath(path, real) ? real : path);
}

json_t *
pgcmk_pg_connection(const char *db_id)
{
    struct pg_inst_info in;
    char host[300], user[130], ca[PATH_MAX], *cs, *psql;
    json_t *out;

    if (!pgcmk_pg_real() || pg_inst_info(db_id, &in) ||
        conn_names(db_id, host, sizeof(host), user, sizeof(user)))
        return NULL;
    conn_ca(ca, sizeof(ca));
    cs = pgcmk_xasprintf("host=%s hostaddr=127.0.0.1 port=%d user=%s dbname=%s "
                         "sslmode=verify-full sslrootcert=%s",
                         host, in.port, user, in.dbname, ca);
    psql = pgcmk_xasprintf("psql '%s'", cs);
    out = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "connectionString", cs, "host",
                    host, "hostaddr", "127.0.0.1", "port", in.port, "user", user, "dbname",
                    in.dbname, "sslmode", "verify-full", "sslrootcert", ca, "psql", psql);
    free(cs);
    free(psql);
    return out;
}

/* GET /emulator/postgres/connection?resourceId= */
static int
pg_connection_route(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *id = pgcmk_req_query(rq, "resourceId");
    json_t *out;

    if (!id || !*id)
        return pgcmk_err_set(err, PGCMK_E_INVALID_QUERY, "resourceId",
                             "Give the database: /emulator/postgres/connection?resourceId=...");
    out = pgcmk_pg_connection(id);
    if (!out)
        return pgcmk_err_set(err, PGCMK_E_RESOURCE_NOT_FOUND, "resourceId",
                             "No PostgreSQL cluster or server with a real instance has the id "
                             "'%.300s'%s.",
                             id,
                             pgcmk_pg_real() ? ""
                                             : " (the daemon runs with --pg-mode modeled: start "
                                               "it with --pg-mode real)");
    pgcmk_resp_json(rs, 200, out);
    return 0;
}

static const struct pgcmk_route pg_routes[] = {
    {"GET", "/emulator/postgres/connection", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, "resourceId",
     pg_connection_route},
};

void
pgcmk_pg_register(void)
{
    pgcmk_router_add(pg_routes, PGCMK_ARRAY_LEN(pg_routes));
    pg_selfmgd_register();
}
