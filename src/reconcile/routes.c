/* routes.c - the reconciler's emulator routes: /emulator/explain (why a database is, or is not,
 * accessible: its key source's rules), /emulator/lineage (which databases depend on which key
 * version) and /emulator/settle (whether every queued key check finished). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/http.h"
#include "pgcmk/pg.h"
#include "pgcmk/reconcile.h"
#include "pgcmk/vault.h"
#include "providers/postgres.h"

static json_t *
rc_describe(const struct pg_db *d)
{
    const struct pgcmk_keysource *ks = pgcmk_keysource_of(d);
    char t[PGCMK_TIME_LEN] = "";

    if (d->last_check)
        pgcmk_time_format(d->last_check, t);
    json_t *out;

    out = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s, s:s?, s:s?, s:s?}",
                    "resourceId", d->id, "kind",
                    d->kind == PG_SERVER ? "server"
                    : d->kind == PG_TDE  ? "tde"
                                         : "cluster",
                    "keySource", ks ? ks->kind : NULL, "keyUri", d->key_uri, "vault", d->vault,
                    "key", d->key_name, "keyVersion", d->key_version, "identity", d->identity_id,
                    "principalId", d->principal_id, "access", d->access, "sourceResourceId",
                    d->source_id, "relation", d->relation, "lastCheck", d->last_check ? t : NULL);
    if (d->kind == PG_TDE) { /* the KMIP server and the principal key, by name and Unique Id */
        json_t *kp = d->provider ? json_loads(d->provider, 0, NULL) : NULL;

        json_object_set_new(out, "keyProvider", kp ? kp : json_null());
        json_object_set_new(
            out, "principalKey",
            json_pack("{s:s?, s:s?}", "name", d->key_name, "uniqueIdentifier", d->key_version));
    }
    return out;
}

/* Where the database's rows live: "modeled" (SQLite, sealed under the DEK) or "real" (its
 * PostgreSQL instance, pgcmk_pg_describe). */
static json_t *
rc_data_plane(const struct pg_db *d)
{
    json_t *inst = pgcmk_pg_has(d->id) ? pgcmk_pg_describe(d->id) : NULL;
    const char *text;

    if (inst)
        text = d->kind == PG_CLUSTER
                   ? "A real PostgreSQL 15 instance serves the cluster's coordinator; its worker "
                     "nodes stay modeled (Citus is not packaged in Debian)."
                   : "A real PostgreSQL 15 instance serves the server.";
    else if (pgcmk_pg_real() && d->kind != PG_TDE)
        text = "The daemon runs in real mode but this database has no instance (it is being "
               "created or was created before real mode); its rows are modeled.";
    else
        text = "Modeled: rows are sealed under the data encryption key in the emulator's store "
               "(/emulator/data).";
    return json_pack("{s:s, s:o, s:s}", "mode", inst ? "real" : "modeled", "instance",
                     inst ? inst : json_null(), "text", text);
}

/* GET /emulator/explain?resourceId=: why the database is, or is not, accessible. One reason
 * code per state, and the rules agree with it: the failing rule is the one the code names. */
static int
emu_explain(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *id = pgcmk_req_query(rq, "resourceId");
    struct pgcmk_db *db = pgcmk_db();
    const struct pgcmk_keysource *ks;
    struct pg_db d;
    json_t *out, *rules;
    int rc, ok, has_dek, served;

    if (!id)
        return pgcmk_err_set(err, PGCMK_E_INVALID_QUERY, "resourceId",
                             "Give the database: /emulator/explain?resourceId=...");
    rc = pg_db_load(db, id, &d, err);
    if (rc <= 0)
        return rc < 0
                   ? -1
                   : pgcmk_err_set(err, PGCMK_E_RESOURCE_NOT_FOUND, "resourceId",
                                   "No PostgreSQL cluster, server or self-managed database has the "
                                   "id '%.300s'.",
                                   id);
    if (!d.reason_code && strcmp(d.access, PG_ACCESS_OK) == 0 && pgcmk_reconcile_unchecked(d.id)) {
        pg_set(&d.reason_code, pgcmk_err_code(PGCMK_E_PG_KEY_UNCHECKED));
        pg_set(&d.reason, "The key has not been checked since the emulator started; POST "
                          "/emulator/settle waits for the check.");
    }
    if (strcmp(d.access, PG_ACCESS_PENDING) == 0 && !d.reason_code)
        pg_set(&d.reason, "The database is still being provisioned.");
    out = rc_describe(&d);
    rules = json_array();
    ks = pgcmk_keysource_of(&d);
    if (ks)
        ks->explain(db, &d, rules);
    has_dek = pgcmk_agent_has_dek(d.id);
    served = strcmp(d.access, PG_ACCESS_OK) == 0;
    ok = served && has_dek;
    json_array_append_new(
        rules,
        pgcmk_reconcile_rule("dek", ok,
                             ok        ? "The data encryption key is in memory and serves the data."
                             : has_dek ? "The data encryption key is in memory but not served: the "
                                         "database is not accessible."
                                       : "The data encryption key is not in memory."));
    json_object_set_new(out, "accessible", json_boolean(ok));
    json_object_set_new(out, "reasonCode",
                        d.reason_code ? json_string(d.reason_code) : json_null());
    json_object_set_new(out, "reason", d.reason ? json_string(d.reason) : json_null());
    json_object_set_new(out, "rules", rules);
    json_object_set_new(out, "dataPlane", rc_data_plane(&d));
    pg_db_release(&d);
    pgcmk_resp_json(rs, 200, out);
    return 0;
}

static int
lineage_add(struct pgcmk_db *db, const char *id, json_t *out, int depth, struct pgcmk_err *err)
{
    sqlite3_stmt *st;
    json_t *kids = json_array(), *v;
    struct pg_db d;
    size_t i;

    int rc = depth > 16 ? 0 : pg_db_load(db, id, &d, err);

    if (rc <= 0) {
        json_decref(kids);
        return rc;
    }
    json_array_append_new(out, rc_describe(&d));
    pg_db_release(&d);
    st = pgcmk_db_stmt(db, PGCMK_STMT_PG_CHILDREN);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (pgcmk_db_each(db, st, pgcmk_db_collect_text, kids, "list derived databases", err) < 0) {
        json_decref(kids);
        return -1;
    }
    json_array_foreach(kids, i, v) {
        if (lineage_add(db, json_string_value(v), out, depth + 1, err)) {
            json_decref(kids);
            return -1;
        }
    }
    json_decref(kids);
    return 0;
}

/* GET /emulator/lineage?keyId= | ?resourceId=: which databases depend on which key version. */
static int
emu_lineage(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *key = pgcmk_req_query(rq, "keyId"), *id = pgcmk_req_query(rq, "resourceId");
    struct pgcmk_db *db = pgcmk_db();
    json_t *out = json_array();
    struct pg_db d;
    int rc;

    if (key) {
        char vault[32], name[128], version[40];
        sqlite3_stmt *st;
        json_t *ids = json_array(), *v;
        size_t i;

        if (pgcmk_vault_parse_key_uri(key, vault, name, version)) {
            json_decref(out);
            json_decref(ids);
            return pgcmk_err_set(err, PGCMK_E_PG_KEY_URI_INVALID, "keyId",
                                 "'%.300s' is not a key identifier.", key);
        }
        st = pgcmk_db_stmt(db, PGCMK_STMT_PG_BY_VAULT);
        sqlite3_bind_text(st, 1, vault, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        if (pgcmk_db_each(db, st, pgcmk_db_collect_text, ids, "list databases of a key", err) < 0) {
            json_decref(out);
            json_decref(ids);
            return -1;
        }
        json_array_foreach(ids, i, v) {
            if (pg_db_load(db, json_string_value(v), &d, err) > 0) {
                if (!version[0] || strcasecmp(version, d.key_version) == 0)
                    json_array_append_new(out, rc_describe(&d));
                pg_db_release(&d);
            }
        }
        json_decref(ids);
    } else if (id) {
        char *root = pgcmk_xstrdup(id);
        int hops = 0;

        /* up to the first database of the line, then every descendant */
        while (hops++ < 16 && pg_db_load(db, root, &d, err) > 0) {
            char *up = d.source_id ? pgcmk_xstrdup(d.source_id) : NULL;

            pg_db_release(&d);
            if (!up || pg_db_load(db, up, &d, err) <= 0) {
                free(up);
                break;
            }
            pg_db_release(&d);
            free(root);
            root = up;
        }
        rc = lineage_add(db, root, out, 0, err);
        free(root);
        if (rc) {
            json_decref(out);
            return -1;
        }
    } else {
        json_decref(out);
        return pgcmk_err_set(err, PGCMK_E_INVALID_QUERY, NULL,
                             "Give keyId= or resourceId=: /emulator/lineage?keyId=...");
    }
    pgcmk_resp_json(rs, 200, json_pack("{s:o}", "value", out));
    return 0;
}

/* POST /emulator/settle[?timeout=PT1S]: whether no key check is queued or running (the checks
 * after a start included), waiting up to the timeout (default: not at all). Keep the wait short
 * and poll instead: a blocked HTTP thread cannot serve the agent's own requests on the
 * connections it holds. */
static int
emu_settle(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *t = pgcmk_req_query(rq, "timeout");
    unsigned long busy = 0, done = 0;
    int64_t ms = 0;
    int settled;

    if (t && (pgcmk_duration_parse(t, &ms) || ms < 0 || ms > 1000))
        return pgcmk_err_set(err, PGCMK_E_INVALID_QUERY, "timeout",
                             "timeout must be an ISO 8601 duration up to PT1S.");
    settled = pgcmk_reconcile_settle(ms, &busy, &done);
    pgcmk_resp_json(rs, 200,
                    json_pack("{s:b, s:I, s:I}", "settled", settled, "busy", (json_int_t)busy,
                              "checksDone", (json_int_t)done));
    return 0;
}

static const struct pgcmk_route rc_routes[] = {
    {"GET", "/emulator/explain", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, "resourceId", emu_explain},
    {"GET", "/emulator/lineage", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, "keyId,resourceId",
     emu_lineage},
    {"POST", "/emulator/settle", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_ANYBODY, "timeout",
     emu_settle},
};

void
pgcmk_reconcile_register(void)
{
    pgcmk_router_add(rc_routes, PGCMK_ARRAY_LEN(rc_routes));
}
