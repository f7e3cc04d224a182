/* pg_server.c - Microsoft.DBforPostgreSQL/servers (Azure Database for PostgreSQL single server)
 * and servers/keys (data encryption with a customer-managed key): create as an LRO (Default,
 * PointInTimeRestore, GeoRestore, Replica), merge-PUT and PATCH, restart, replicas, and server
 * keys answered 202 + Location and validated on a worker. Restores and replicas of an encrypted
 * server start Inaccessible without an identity; the first key revalidation creates the
 * system-assigned identity and fails, a later one brings the server back (seed 002). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/auth.h"
#include "pgcmk/clock.h"
#include "pgcmk/events.h"
#include "pgcmk/log.h"
#include "pgcmk/monitor.h"
#include "pgcmk/pg.h"
#include "pgcmk/schema.h"
#include "pgcmk/vault.h"
#include "pgcmk/wellknown.h"
#include "providers/internal.h"
#include "providers/postgres.h"

#define SERVER_TYPE PG_NS "/servers"
#define KEY_TYPE    PG_NS "/servers/keys"
#define DAY_MS      86400000LL

static const char *const server_versions[] = {"2017-12-01-preview", "2017-12-01", NULL};
static const char *const key_versions[] = {"2020-01-01-preview", "2020-01-01", NULL};
static const char *const pg_versions[] = {"9.5", "9.6", "10", "10.0", "10.2", "11", NULL};

/* Property names as Azure spells them; requests may use any case. */
static const char *const server_props[] = {"administratorLogin",
                                           "administratorLoginPassword",
                                           "version",
                                           "sslEnforcement",
                                           "minimalTlsVersion",
                                           "infrastructureEncryption",
                                           "publicNetworkAccess",
                                           "storageProfile",
                                           "createMode",
                                           "sourceServerId",
                                           "restorePointInTime",
                                           "replicationRole",
                                           "byokEnforcement",
                                           "userVisibleState",
                                           "fullyQualifiedDomainName",
                                           "earliestRestoreDate",
                                           "masterServerId",
                                           "replicaCapacity",
                                           "privateEndpointConnections",
                                           NULL};

/* Read-only or create-only: a PUT or PATCH keeps the stored values. */
static const char *const server_fixed[] = {"administratorLogin",
                                           "infrastructureEncryption",
                                           "byokEnforcement",
                                           "userVisibleState",
                                           "fullyQualifiedDomainName",
                                           "earliestRestoreDate",
                                           "masterServerId",
                                           "replicaCapacity",
                                           "privateEndpointConnections",
                                           NULL};

/* ServerForCreate only: never part of the representation. */
static const char *const server_create_only[] = {"administratorLoginPassword", "createMode",
                                                 "sourceServerId", "restorePointInTime", NULL};

static int
server_check_name(const char *name, struct pgcmk_err *err)
{
    return pg_check_name("server", name, 63, err);
}

static int
key_check_name(const char *name, struct pgcmk_err *err)
{
    size_t n = strlen(name);
    int ok = n >= 1 && n <= 260;

    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)name[i]) || name[i] == '-' || name[i] == '_';
    return ok ? 0
              : pgcmk_err_set(err, PGCMK_E_INVALID_RESOURCE_NAME, "name",
                              "The server key name '%.128s' is not valid. Use "
                              "{vaultName}_{keyName}_{keyVersion}.",
                              name);
}

static const char *
prop_str(const json_t *body, const char *k)
{
    return json_string_value(json_object_get(json_object_get(body, "properties"), k));
}

/* The system-assigned principal in a resource body, or NULL. */
static const char *
sa_principal(const json_t *body)
{
    const json_t *ident = json_object_get(body, "identity");
    const char *t = json_string_value(json_object_get(ident, "type"));

    if (!t || !strstr(t, "SystemAssigned"))
        return NULL;
    return json_string_value(json_object_get(ident, "principalId"));
}

static int
is_inaccessible(const json_t *body)
{
    const char *s = prop_str(body, "userVisibleState");

    return s && strcmp(s, "Inaccessible") == 0;
}

static int
err_inaccessible(const char *name, struct pgcmk_err *err)
{
    return pgcmk_err_set(err, PGCMK_E_PG_INACCESSIBLE, NULL,
                         "The server '%.64s' is inaccessible: it cannot use its customer-managed "
                         "key. Only delete, identity assignment and key revalidation (re-create "
                         "the server key) are allowed until the key is revalidated.",
                         name);
}

struct replica_count {
    json_t *out; /* the replicas' ids, when not NULL */
    int n;
};

/* pgcmk_db_each row: a child of the server, counted when it is a replica. */
static int
replica_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct replica_count *c = arg;
    const char *rel = (const char *)sqlite3_column_text(st, 1);

    PGCMK_UNUSED(err);
    if (rel && strcmp(rel, "replica") == 0) {
        c->n++;
        if (c->out)
            json_array_append_new(c->out, json_string((const char *)sqlite3_column_text(st, 0)));
    }
    return 0;
}

/* Counts the replicas of a server (pg_databases rows with relation "replica"); -1 with err set
 * when the store fails. */
static int
replica_ids(struct pgcmk_db *db, const char *id, json_t *out, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_PG_CHILDREN);
    struct replica_count c = {out, 0};

    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (pgcmk_db_each(db, st, replica_row, &c, "list replicas", err) < 0)
        return -1;
    return c.n;
}

static int
set_prop(struct pgcmk_db *db, const char *id, const char *k, json_t *v, struct pgcmk_err *err)
{
    json_t *body = NULL;
    int rc = pgcmk_arm_resource_get(db, id, &body, err);

    if (rc <= 0) {
        json_decref(v);
        return rc;
    }
    json_object_set_new(json_object_get(body, "properties"), k, v);
    rc = pgcmk_arm_resource_put(db, id, body, err);
    json_decref(body);
    return rc;
}

/* ---- create ------------------------------------------------------------------------------- */

static int
server_name_taken(struct pgcmk_db *db, const char *name, struct pgcmk_err *err)
{
    /* 1 taken, 0 free, -1 when the store fails (an error, not a taken name) */
    return pgcmk_arm_resource_by_name(db, SERVER_TYPE, name, NULL, NULL, NULL, err);
}

/* The source of a restore or replica: its body and its database row, checked. */
static int
load_source(struct pgcmk_db *db, const char *sid, const char *mode, json_t **body, struct pg_db *s,
            struct pgcmk_err *err)
{
    struct pgcmk_arm_id pid;
    char type[256];
    int rc;

    memset(s, 0, sizeof(*s));
    *body = NULL;
    if (pgcmk_arm_id_parse(sid, &pid, NULL) == 0)
        pgcmk_arm_id_type(&pid, type, sizeof(type));
    else
        type[0] = 0;
    if (strcasecmp(type, SERVER_TYPE) != 0)
        return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "properties.sourceServerId",
                             "The source server id '%.300s' is not the id of a "
                             "Microsoft.DBforPostgreSQL/servers resource.",
                             sid);
    rc = pgcmk_arm_resource_get(db, sid, body, err);
    if (rc < 0)
        return -1;
    if (rc == 0 || pg_db_load(db, json_string_value(json_object_get(*body, "id")), s, err) <= 0) {
        json_decref(*body);
        *body = NULL;
        return pgcmk_err_set(err, PGCMK_E_PG_SOURCE_NOT_FOUND, "properties.sourceServerId",
                             "The source server '%.300s' was not found.", sid);
    }
    if (strcmp(s->access, PG_ACCESS_PENDING) == 0)
        rc = pgcmk_err_set(err, PGCMK_E_OPERATION_IN_PROGRESS, "properties.sourceServerId",
                           "The source server '%.300s' is still being created.", sid);
    else if (strcmp(s->access, PG_ACCESS_LOST) == 0 || is_inaccessible(*body))
        rc = pgcmk_err_set(err, PGCMK_E_PG_INACCESSIBLE, "properties.sourceServerId",
                           "The source server '%.300s' is inaccessible: it cannot use its "
                           "customer-managed key. Revalidate its key first.",
                           sid);
    else if (s->relation && strcmp(s->relation, "replica") == 0)
        rc = pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "properties.sourceServerId",
                           "The source server '%.300s' is a replica; %s needs a server that is "
                           "not a replica.",
                           sid, mode);
    else
        rc = 0;
    if (rc) {
        json_decref(*body);
        *body = NULL;
        pg_db_release(s);
    }
    return rc;
}

static int
check_restore_time(const json_t *src, const struct pg_db *s, const json_t *pit, int64_t now,
                   int64_t *at, struct pgcmk_err *err)
{
    json_int_t days = json_integer_value(
        json_object_get(json_object_get(json_object_get(src, "properties"), "storageProfile"),
                        "backupRetentionDays"));
    int64_t earliest = s->created_at, kept;
    char e[PGCMK_TIME_LEN], n[PGCMK_TIME_LEN];

    if (!json_is_string(pit))
        return pgcmk_err_set(err, PGCMK_E_PG_INVALID_RESTORE, "properties.restorePointInTime",
                             "A point-in-time restore needs restorePointInTime.");
    if (pgcmk_time_parse(json_string_value(pit), at))
        return pgcmk_err_set(err, PGCMK_E_PG_INVALID_RESTORE, "properties.restorePointInTime",
                             "'%.64s' is not an ISO 8601 time.", json_string_value(pit));
    if (days <= 0)
        days = 7;
    if (now - days * DAY_MS > earliest)
        earliest = now - days * DAY_MS;
    if (pgcmk_pg_has(s->id) && pgcmk_pg_earliest_restore(s->id, &kept) == 0 && kept > earliest)
        earliest = kept; /* real mode: the oldest base backup kept */
    if (*at < earliest || *at > now) {
        pgcmk_time_format(earliest, e);
        pgcmk_time_format(now, n);
        return pgcmk_err_set(err, PGCMK_E_PG_INVALID_RESTORE, "properties.restorePointInTime",
                             "The restore point in time '%.64s' must be between the earliest "
                             "restore date %s and now (%s).",
                             json_string_value(pit), e, n);
    }
    return 0;
}

static int
server_create(struct pgcmk_arm_ctx *ctx, json_t *p, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    const char *name = ctx->id.names[0];
    const char *mode = json_string_value(json_object_get(p, "createMode"));
    const char *ver = json_string_value(json_object_get(p, "version"));
    json_t *src = NULL, *sp = NULL, *prof;
    struct pg_db d, s;
    int64_t now = pgcmk_clock_now(), at = now;
    char t[PGCMK_TIME_LEN], *fqdn;
    const char *rel = NULL;
    int rc = -1, n_rep = 0, taken;

    memset(&d, 0, sizeof(d));
    memset(&s, 0, sizeof(s));
    if ((taken = server_name_taken(db, name, err)) < 0)
        return -1;
    if (taken > 0)
        return pgcmk_err_set(err, PGCMK_E_CONFLICT, "name",
                             "The server name '%.64s' is already in use. Server names must be "
                             "globally unique.",
                             name);
    if (!mode)
        mode = "Default";
    if (pgcmk_streq_ci(mode, "Default")) {
        mode = "Default";
    } else if (pgcmk_streq_ci(mode, "PointInTimeRestore")) {
        mode = "PointInTimeRestore";
        rel = "restore";
    } else if (pgcmk_streq_ci(mode, "GeoRestore")) {
        mode = "GeoRestore";
        rel = "restore";
    } else if (pgcmk_streq_ci(mode, "Replica")) {
        mode = "Replica";
        rel = "replica";
    } else {
        return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "properties.createMode",
                             "The create mode '%.64s' is not valid. Use Default, "
                             "PointInTimeRestore, GeoRestore or Replica.",
                             mode);
    }
    if (ver) {
        const char *const *x = pg_versions;

        while (*x && strcmp(*x, ver) != 0)
            x++;
        if (!*x)
            return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "properties.version",
                                 "The PostgreSQL version '%.32s' is not supported. Use 9.5, 9.6, "
                                 "10, 10.0, 10.2 or 11.",
                                 ver);
    }
    if (!rel) {
        json_t *login = json_object_get(p, "administratorLogin");
        json_t *pw = json_object_get(p, "administratorLoginPassword");

        if (!json_is_string(login) || json_string_length(login) == 0)
            return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "properties.administratorLogin",
                                 "createMode Default needs administratorLogin.");
        if (!json_is_string(pw) || json_string_length(pw) == 0)
            return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER,
                                 "properties.administratorLoginPassword",
                                 "createMode Default needs administratorLoginPassword.");
        pg_real_keep_password(ctx->id_text, json_string_value(pw));
    } else {
        const char *sid = json_string_value(json_object_get(p, "sourceServerId"));

        if (!sid)
            return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "properties.sourceServerId",
                                 "createMode %s needs sourceServerId.", mode);
        if (load_source(db, sid, mode, &src, &s, err))
            return -1;
        if (strcmp(mode, "PointInTimeRestore") == 0 &&
            check_restore_time(src, &s, json_object_get(p, "restorePointInTime"), now, &at, err))
            goto out;
        if (strcmp(rel, "replica") == 0 && (n_rep = replica_ids(db, s.id, NULL, err)) < 0)
            goto out;
        if (strcmp(rel, "replica") == 0 && n_rep >= 5) {
            pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "properties.sourceServerId",
                          "The server '%.300s' already has 5 replicas, its replica capacity.",
                          s.id);
            goto out;
        }
        /* a copy has its source's settings */
        sp = json_object_get(src, "properties");
        for (const char *const *c =
                 (const char *const[]){"administratorLogin", "version", "sslEnforcement",
                                       "minimalTlsVersion", "infrastructureEncryption",
                                       "publicNetworkAccess", NULL};
             *c; c++)
            if (json_object_get(sp, *c) &&
                (!json_object_get(p, *c) || strcmp(*c, "administratorLogin") == 0 ||
                 strcmp(*c, "infrastructureEncryption") == 0 || strcmp(*c, "version") == 0))
                json_object_set(p, *c, json_object_get(sp, *c));
        prof = json_deep_copy(json_object_get(sp, "storageProfile"));
        if (json_is_object(json_object_get(p, "storageProfile")))
            json_object_update(prof, json_object_get(p, "storageProfile"));
        json_object_set_new(p, "storageProfile", prof);
        if (!json_object_get(ctx->body, "sku") && json_object_get(src, "sku"))
            json_object_set(ctx->body, "sku", json_object_get(src, "sku"));
        if (strcmp(rel, "replica") == 0) {
            json_object_set_new(sp, "replicationRole", json_string("Master"));
            if (pgcmk_arm_resource_put(db, s.id, src, err))
                goto out;
        }
    }
    d.id = pgcmk_xstrdup(ctx->id_text);
    d.kind = PG_SERVER;
    d.sub = pgcmk_xstrdup(ctx->id.sub);
    d.rg = pgcmk_xstrdup(ctx->id.rg);
    d.source_id = rel ? pgcmk_xstrdup(s.id) : NULL;
    d.relation = rel ? pgcmk_xstrdup(rel) : NULL;
    d.identity_id = pgcmk_xstrdup(ctx->id_text);
    pg_set(&d.principal_id, sa_principal(ctx->body));
    if (rel && s.key_uri && pg_set_key(&d, s.key_uri, err))
        goto out;
    d.last_check = at; /* the restore point, until provisioned */
    d.created_at = now;
    pg_set(&d.access, PG_ACCESS_PENDING);

    if (!json_object_get(ctx->body, "sku"))
        json_object_set_new(ctx->body, "sku",
                            json_pack("{s:s, s:s, s:i, s:s}", "name", "GP_Gen5_2", "tier",
                                      "GeneralPurpose", "capacity", 2, "family", "Gen5"));
    pgcmk_time_format(now, t);
    fqdn = pgcmk_xasprintf("%s.postgres.database.azure.com", name);
    prof = json_object_get(p, "storageProfile");
    if (!json_is_object(prof))
        json_object_set_new(p, "storageProfile", prof = json_object());
    json_object_update_missing_new(prof, json_pack("{s:i, s:s, s:i, s:s}", "backupRetentionDays", 7,
                                                   "geoRedundantBackup", "Disabled", "storageMB",
                                                   5120, "storageAutogrow", "Enabled"));
#define DEFAULT(k, v)                                                                              \
    if (!json_object_get(p, k))                                                                    \
    json_object_set_new(p, k, v)
    DEFAULT("version", json_string("11"));
    DEFAULT("sslEnforcement", json_string("Enabled"));
    DEFAULT("minimalTlsVersion", json_string("TLSEnforcementDisabled"));
    DEFAULT("infrastructureEncryption", json_string("Disabled"));
    DEFAULT("publicNetworkAccess", json_string("Enabled"));
#undef DEFAULT
    json_object_set_new(p, "fullyQualifiedDomainName", json_string(fqdn));
    free(fqdn);
    json_object_set_new(p, "earliestRestoreDate", json_string(t));
    json_object_set_new(p, "replicationRole",
                        json_string(rel && strcmp(rel, "replica") == 0 ? "Replica" : "None"));
    json_object_set_new(p, "masterServerId",
                        json_string(rel && strcmp(rel, "replica") == 0
                                        ? json_string_value(json_object_get(src, "id"))
                                        : ""));
    json_object_set_new(p, "replicaCapacity",
                        json_integer(rel && strcmp(rel, "replica") == 0 ? 0 : 5));
    json_object_set_new(p, "byokEnforcement", json_string(d.key_uri ? "Enabled" : "Disabled"));
    json_object_set_new(p, "privateEndpointConnections", json_array());
    json_object_del(p, "userVisibleState"); /* set when provisioned */
    for (const char *const *c = server_create_only; *c; c++)
        json_object_del(p, *c);
    rc = pg_db_save(db, &d, err);
out:
    pg_db_release(&d);
    pg_db_release(&s);
    json_decref(src);
    return rc;
}

/* ---- update ------------------------------------------------------------------------------- */

/* A replica becomes a standalone server (`az postgres server replica stop`): replicationRole None,
 * no master, its own replica capacity; it leaves its master's replicas (the master's role is None
 * once it has none left) and keeps its key. After the commit the listener of
 * PG_EV_REPLICATION_STOPPED (postgres.c) gives it its own data: a copy of the master's rows
 * (modeled, before the answer) or the promotion of its standby (real, on a worker: writes work
 * once it left recovery, about a second later). */
static int
server_stop_replication(struct pgcmk_db *db, struct pgcmk_arm_ctx *ctx, struct pg_db *d,
                        struct pgcmk_err *err)
{
    json_t *p = json_object_get(ctx->body, "properties"), *left;
    struct pgcmk_event ev = {.kind = PGCMK_EV_PG_ACCESS_CHANGED};
    int n;

    if (!d->relation || strcmp(d->relation, "replica") != 0 || !d->source_id)
        return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "properties.replicationRole",
                             "The server '%.64s' is not a replica.", ctx->id.names[0]);
    left = json_array();
    n = replica_ids(db, d->source_id, left, err);
    json_decref(left);
    if (n < 0 ||
        (n <= 1 && set_prop(db, d->source_id, "replicationRole", json_string("None"), err)))
        return -1;
    json_object_set_new(p, "replicationRole", json_string("None"));
    json_object_set_new(p, "masterServerId", json_string(""));
    json_object_set_new(p, "replicaCapacity", json_integer(5));
    pg_set(&d->relation, "promoted"); /* keeps source_id: its lineage */
    if (pg_db_save(db, d, err))
        return -1;
    ev.resource_id = d->id;
    ev.version = PG_EV_REPLICATION_STOPPED;
    ev.object_id = d->source_id;
    pgcmk_events_publish(&ev); /* delivered once the write commits */
    return 0;
}

static int
server_update(struct pgcmk_arm_ctx *ctx, json_t *p, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    json_t *old = json_object_get(ctx->existing, "properties");
    json_t *in = pg_canonical(json_object_get(ctx->rq->json, "properties"), server_props);
    json_t *merged, *prof, *ident = json_object_get(ctx->body, "identity");
    const char *itype = json_string_value(json_object_get(ident, "type"));
    int patch = strcmp(ctx->rq->method, "PATCH") == 0, changed = 0, rc = 0;
    int stop_replication = 0;
    struct pg_db d;

    memset(&d, 0, sizeof(d));
    /* PUT on an existing server is a merge (the docs' template re-PUTs identity + {}) */
    merged = json_deep_copy(old);
    json_object_update(merged, patch ? p : in);
    prof = json_deep_copy(json_object_get(old, "storageProfile"));
    if (json_is_object(json_object_get(in, "storageProfile")))
        json_object_update(prof, json_object_get(in, "storageProfile"));
    if (json_is_object(prof))
        json_object_set_new(merged, "storageProfile", prof);
    else
        json_decref(prof);
    for (const char *const *c = server_fixed; *c; c++)
        if (json_object_get(old, *c))
            json_object_set(merged, *c, json_object_get(old, *c));
    if (json_object_get(in, "administratorLoginPassword"))
        changed = 1;
    for (const char *const *c = server_create_only; *c; c++)
        json_object_del(merged, *c);
    if (!patch) {
        if (!json_object_get(ctx->rq->json, "sku") && json_object_get(ctx->existing, "sku"))
            json_object_set(ctx->body, "sku", json_object_get(ctx->existing, "sku"));
        if (!json_object_get(ctx->rq->json, "tags") && json_object_get(ctx->existing, "tags"))
            json_object_set(ctx->body, "tags", json_object_get(ctx->existing, "tags"));
    }
    if (!json_equal(merged, old) ||
        !json_equal(json_object_get(ctx->body, "sku"), json_object_get(ctx->existing, "sku")) ||
        !json_equal(json_object_get(ctx->body, "tags"), json_object_get(ctx->existing, "tags")))
        changed = 1;
    json_object_set_new(ctx->body, "properties", merged);
    if (!json_equal(json_object_get(merged, "replicationRole"),
                    json_object_get(old, "replicationRole"))) {
        const char *from = json_string_value(json_object_get(old, "replicationRole"));
        const char *to = json_string_value(json_object_get(merged, "replicationRole"));

        /* `az postgres server replica stop`: PATCH {"properties":{"replicationRole":"None"}} */
        stop_replication = pgcmk_streq_ci(from, "Replica") && pgcmk_streq_ci(to, "None");
        if (!stop_replication) {
            rc = pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "properties.replicationRole",
                               "replicationRole can only change from Replica to None (stop "
                               "replication), not from '%.32s' to '%.32s'.",
                               from ? from : "", to ? to : "(not a string)");
            goto out;
        }
    }
    if (itype && !pgcmk_streq_ci(itype, "SystemAssigned") && !pgcmk_streq_ci(itype, "None")) {
        rc = pgcmk_err_set(err, PGCMK_E_INVALID_IDENTITY, "identity.type",
                           "A single server takes only a SystemAssigned identity, not '%.64s'.",
                           itype);
        goto out;
    }
    rc = pg_db_load(db, ctx->id_text, &d, err);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        rc = pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "The server has no database row.");
        goto out;
    }
    rc = 0;
    if (strcmp(d.access, PG_ACCESS_PENDING) == 0) {
        rc = pgcmk_err_set(err, PGCMK_E_OPERATION_IN_PROGRESS, NULL,
                           "The server '%.64s' is still being created.", ctx->id.names[0]);
        goto out;
    }
    if (changed && (is_inaccessible(ctx->existing) || strcmp(d.access, PG_ACCESS_LOST) == 0)) {
        rc = err_inaccessible(ctx->id.names[0], err);
        goto out;
    }
    if (d.key_uri && !sa_principal(ctx->body) && d.principal_id) {
        rc = pgcmk_err_set(err, PGCMK_E_PG_ENCRYPTION_UPDATE, "identity",
                           "The server '%.64s' is encrypted with a customer-managed key; its "
                           "system-assigned identity cannot be removed.",
                           ctx->id.names[0]);
        goto out;
    }
    if (!json_equal(json_object_get(ctx->body, "identity"),
                    json_object_get(ctx->existing, "identity"))) {
        pg_set(&d.principal_id, sa_principal(ctx->body));
        rc = pg_db_save(db, &d, err);
    }
    if (rc == 0 && stop_replication)
        rc = server_stop_replication(db, ctx, &d, err);
    /* real mode: the role's new SCRAM verifier, inside the write (a failure refuses it) */
    if (rc == 0 && json_is_string(json_object_get(in, "administratorLoginPassword")) &&
        pgcmk_pg_has(ctx->id_text))
        rc = pgcmk_pg_set_password(
            ctx->id_text, prop_str(ctx->existing, "administratorLogin"),
            json_string_value(json_object_get(in, "administratorLoginPassword")), err);
out:
    json_decref(in);
    pg_db_release(&d);
    return rc;
}

static int
server_on_write(struct pgcmk_arm_ctx *ctx, struct pgcmk_err *err)
{
    json_t *p = pg_canonical(json_object_get(ctx->body, "properties"), server_props);
    const char *itype =
        json_string_value(json_object_get(json_object_get(ctx->body, "identity"), "type"));

    json_object_set_new(ctx->body, "properties", p);
    if (ctx->existing)
        return server_update(ctx, p, err);
    if (itype && !pgcmk_streq_ci(itype, "SystemAssigned") && !pgcmk_streq_ci(itype, "None"))
        return pgcmk_err_set(err, PGCMK_E_INVALID_IDENTITY, "identity.type",
                             "A single server takes only a SystemAssigned identity, not '%.64s'.",
                             itype);
    return server_create(ctx, p, err);
}

/* ---- provisioning (worker) ---------------------------------------------------------------- */

static int
server_render(struct pgcmk_db *db, const char *id, const char *state, struct pgcmk_err *err)
{
    return set_prop(db, id, "userVisibleState", json_string(state), err);
}

static json_t *
key_body(const char *server_id, const char *name, const char *uri, const char *created)
{
    return json_pack("{s:s++, s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "id", server_id, "/keys/", name,
                     "name", name, "type", KEY_TYPE, "kind", "azurekeyvault", "properties",
                     "serverKeyType", "AzureKeyVault", "uri", uri, "creationDate", created);
}

/* Writes the server's key resource (the only one: others are removed). */
static int
key_store(struct pgcmk_db *db, const struct pg_db *d, json_t **out, struct pgcmk_err *err)
{
    json_t *server = NULL, *old = NULL, *body, *kids = NULL, *v;
    char name[256], t[PGCMK_TIME_LEN], *kid = NULL;
    const char *sid, *created;
    size_t i;
    int rc = pgcmk_arm_resource_get(db, d->id, &server, err);

    if (rc <= 0)
        return rc < 0 ? -1 : pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "The server vanished.");
    sid = json_string_value(json_object_get(server, "id"));
    snprintf(name, sizeof(name), "%s_%s_%s", d->vault, d->key_name, d->key_version);
    kid = pgcmk_xasprintf("%s/keys/%s", sid, name);
    rc = pgcmk_arm_resource_get(db, kid, &old, err);
    if (rc < 0)
        goto out;
    pgcmk_time_format(pgcmk_clock_now(), t);
    created = old ? prop_str(old, "creationDate") : NULL;
    body = key_body(sid, name, d->key_uri, created ? created : t);
    rc = pgcmk_arm_resource_save(db, kid, body, err);
    if (rc == 0 && out)
        *out = json_incref(body);
    json_decref(body);
    if (rc)
        goto out;
    /* a server has one key: the others go */
    if (pgcmk_arm_resource_children(db, sid, KEY_TYPE, &kids, err)) {
        rc = -1;
        goto out;
    }
    json_array_foreach(kids, i, v) {
        const char *id = json_string_value(json_object_get(v, "id"));

        if (id && strcasecmp(id, kid) != 0 && pgcmk_arm_resource_remove(db, id, err)) {
            rc = -1;
            break;
        }
    }
out:
    json_decref(old);
    json_decref(server);
    json_decref(kids);
    free(kid);
    return rc;
}

/* An entry of a write that ended; why (NULL when it succeeded) is the failed operation's error:
 * the entry then carries its code and message (statusMessage, "code: message" description). */
static int
activity(struct pgcmk_db *db, const char *id, const char *op, const struct pgcmk_err *why,
         const char *what, struct pgcmk_err *err)
{
    struct pgcmk_activity a;

    memset(&a, 0, sizeof(a));
    a.resource_id = id;
    a.operation = op;
    a.status = why ? "Failed" : "Succeeded";
    a.level = why ? "Error" : "Informational";
    if (why) {
        a.error_code = pgcmk_err_code(pgcmk_err_parent(why->code));
        a.error_message = why->message;
    } else {
        a.description = what;
    }
    return pgcmk_activity_add(db, &a, err);
}

/* The DEK of a database in memory (a check loads it from its wrapped form). */
static int
load_dek(const struct pg_db *s, struct pgcmk_err *err)
{
    struct pgcmk_agent_key k = {s->key_uri, s->principal_id};
    struct pgcmk_agent_result res;

    if (pgcmk_agent_has_dek(s->id))
        return 0;
    memset(&res, 0, sizeof(res));
    if (pgcmk_agent_check(s->id, &k, s->wrapped, s->wrapped_len, s->alg, &res) == 0)
        return 0;
    return pgcmk_err_set(err, PGCMK_E_PG_DATA_INACCESSIBLE, NULL,
                         "The data encryption key of '%.300s' is not available: %s", s->id,
                         res.message);
}

static void
copy_wrapped(struct pg_db *d, const struct pg_db *s)
{
    free(d->wrapped);
    d->wrapped = NULL;
    d->wrapped_len = 0;
    if (s->wrapped) {
        d->wrapped = pgcmk_xmalloc(s->wrapped_len);
        memcpy(d->wrapped, s->wrapped, s->wrapped_len);
        d->wrapped_len = s->wrapped_len;
    }
    pg_set(&d->alg, s->alg);
}

/* Makes the DEK of a new server: see docs/postgres-single-server.md. A copy (restore, replica) of
 * a server encrypted with a customer-managed key keeps the source's DEK wrapped by the source's
 * key, and cannot unwrap it until it has an identity with access and the key is revalidated. */
static int
server_make_dek(struct pg_db *d, const struct pg_db *s, struct pgcmk_err *err)
{
    struct pgcmk_agent_key none = {NULL, NULL};
    struct pgcmk_agent_result res;
    unsigned char *w = NULL;
    size_t wl = 0;
    char alg[24];

    memset(&res, 0, sizeof(res));
    if (!s)
        return pg_provision_dek(d, NULL, err);
    if (load_dek(s, err))
        return -1;
    if (strcmp(d->relation, "restore") == 0) {
        /* rows up to the restore point, sealed again for the new server with the same DEK */
        /* real mode: the instance replays the source's encrypted WAL instead (pg_real_create) */
        if (pgcmk_agent_share(s->id, d->id) ||
            (!pgcmk_pg_real() && pg_rows_restore(s->id, d->id, d->last_check, err))) {
            pgcmk_agent_forget(d->id);
            if (err->code == PGCMK_E_OK)
                pgcmk_err_set(err, PGCMK_E_PG_DATA_INACCESSIBLE, NULL,
                              "The source's data encryption key is not available.");
            return -1;
        }
    } else if (pgcmk_agent_share(s->id, d->id)) {
        return pgcmk_err_set(err, PGCMK_E_PG_DATA_INACCESSIBLE, NULL,
                             "The source's data encryption key is not available.");
    }
    if (s->key_uri) {
        copy_wrapped(d, s);
        pgcmk_agent_forget(d->id);
        return 0;
    }
    /* service-managed: the shared DEK sealed under the master key for this server */
    if (pgcmk_agent_rewrap(d->id, &none, &w, &wl, alg, &res)) {
        pgcmk_agent_forget(d->id);
        return pgcmk_err_set(err, res.code ? res.code : PGCMK_E_INTERNAL, NULL, "%s", res.message);
    }
    free(d->wrapped);
    d->wrapped = w;
    d->wrapped_len = wl;
    pg_set(&d->alg, alg);
    return 0;
}

struct provision_done {
    struct pg_db *d;
    int ok, locked;
    const struct pgcmk_err *why;
};

static int
provision_done_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct provision_done *pd = ctx;
    struct pg_db *d = pd->d;
    const char *kind = !d->relation                          ? "Server creation"
                       : strcmp(d->relation, "replica") == 0 ? "Replica creation"
                                                             : "Restore";
    const char *state = pd->ok && !pd->locked ? "Ready" : "Inaccessible";
    char what[900];

    d->last_check = pgcmk_clock_now();
    if (pd->ok && !pd->locked) {
        pg_set(&d->access, PG_ACCESS_OK);
        pg_set(&d->reason_code, NULL);
        pg_set(&d->reason, NULL);
    } else {
        pg_set(&d->access, PG_ACCESS_LOST);
        d->lost_at = d->last_check;
        if (pd->ok) {
            pg_set(&d->reason_code, pgcmk_err_code(PGCMK_E_PG_IDENTITY_REQUIRED));
            pg_set(&d->reason,
                   d->principal_id
                       ? "The server is a copy of a server encrypted with a customer-managed "
                         "key. Grant its identity Get, Wrap Key and Unwrap Key on the key vault, "
                         "then revalidate the key (re-create the server key)."
                       : "The server is a copy of a server encrypted with a customer-managed "
                         "key and has no identity yet. Revalidate the key (re-create the server "
                         "key) once to create its system-assigned identity, grant that identity "
                         "Get, Wrap Key and Unwrap Key on the key vault, then revalidate again.");
        } else {
            pg_set(&d->reason_code, pgcmk_err_code(pd->why->code));
            pg_set(&d->reason, pd->why->message);
        }
    }
    if (pg_db_save(db, d, err))
        return -1;
    if (pd->ok && d->key_uri && key_store(db, d, NULL, err))
        return -1;
    if (pg_record_state(db, d, state, NULL, err))
        return -1;
    if (!pd->ok) /* the entry shows the operation's error: "code: message" */
        return activity(db, d->id, SERVER_TYPE "/write", pd->why, NULL, err);
    snprintf(what, sizeof(what), "%s succeeded%s%s", kind,
             pd->locked ? "; the server is Inaccessible until its key is revalidated: " : "",
             pd->locked ? d->reason : "");
    return activity(db, d->id, SERVER_TYPE "/write", NULL, what, err);
}

static int
server_provision(const char *id, int created, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pg_db d, s;
    struct pgcmk_err why, tmp;
    struct provision_done pd;
    int rc, have_src = 0;

    if (!created)
        return 0;
    memset(&why, 0, sizeof(why));
    memset(&s, 0, sizeof(s));
    rc = pg_db_load(db, id, &d, err);
    if (rc <= 0)
        return rc < 0 ? -1 : pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "The server vanished.");
    if (d.source_id && pg_db_load(db, d.source_id, &s, &tmp) > 0)
        have_src = 1;
    if (d.source_id && !have_src)
        rc = pgcmk_err_set(&why, PGCMK_E_PG_SOURCE_NOT_FOUND, "properties.sourceServerId",
                           "The source server '%.300s' was deleted during the creation.",
                           d.source_id);
    else
        rc = server_make_dek(&d, have_src ? &s : NULL, &why);
    if (rc == 0 && pgcmk_pg_real()) {
        json_t *body = NULL;

        if (pgcmk_arm_resource_get(db, id, &body, &why) > 0)
            rc = pg_real_create(&d, body, prop_str(body, "administratorLogin"), d.last_check, &why);
        else
            rc = -1;
        json_decref(body);
    }
    pd = (struct provision_done){&d, rc == 0, rc == 0 && d.key_uri != NULL, &why};
    if (pgcmk_db_tx(db, provision_done_tx, &pd, err))
        rc = -1;
    else if (rc)
        *err = why;
    pg_db_release(&d);
    pg_db_release(&s);
    return rc ? -1 : 0;
}

/* ---- delete ------------------------------------------------------------------------------- */

static int
server_on_delete(struct pgcmk_arm_ctx *ctx, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pg_db d;
    int rc;

    rc = pg_db_load(db, ctx->id_text, &d, err);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        int n_rep = ctx->rq ? replica_ids(db, d.id, NULL, err) : 0;

        if (n_rep < 0) {
            pg_db_release(&d);
            return -1;
        }
        if (n_rep > 0) {
            pg_db_release(&d);
            return pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL,
                                 "The server '%.64s' has replicas, which read its data. Delete "
                                 "the replicas first.",
                                 ctx->id.names[0]);
        }
        if (d.relation && strcmp(d.relation, "replica") == 0 && d.source_id) {
            json_t *left = json_array();

            if (replica_ids(db, d.source_id, left, err) < 0) {
                json_decref(left);
                pg_db_release(&d);
                return -1;
            }
            if (json_array_size(left) <= 1 &&
                set_prop(db, d.source_id, "replicationRole", json_string("None"), err)) {
                json_decref(left);
                pg_db_release(&d);
                return -1;
            }
            json_decref(left);
        }
        pg_db_release(&d);
    }
    if (pg_db_delete(db, ctx->id_text, err))
        return -1;
    return pgcmk_health_forget(db, ctx->id_text, err);
}

static void
server_after_delete(const char *id)
{
    pg_real_drop(id);
    pg_forget(NULL, id);
}

/* Azure's examples ServerCreatePointInTimeRestore, ServerCreateGeoRestoreMode and
 * ServerCreateReplicaMode: a create from a source answers 202 Accepted with no body. */
static int
server_accepted(const struct pgcmk_arm_ctx *ctx)
{
    const char *mode =
        json_string_value(pg_get_ci(pg_get_ci(ctx->rq->json, "properties"), "createMode"));

    return !ctx->existing && mode && !pgcmk_streq_ci(mode, "Default");
}

static const struct pgcmk_arm_type server_type = {
    .ns = PG_NS,
    .type = "servers",
    .versions = server_versions,
    .flags = ARM_T_TRACKED | ARM_T_IDENTITY | ARM_T_ASYNC | ARM_T_ACCEPTED,
    .check_name = server_check_name,
    .on_write = server_on_write,
    .on_delete = server_on_delete,
    .provision = server_provision,
    .after_delete = server_after_delete,
    .accepted = server_accepted,
};

/* ---- routes: restart, replicas ------------------------------------------------------------ */

#define SERVER_PATH                                                                                \
    "/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.DBforPostgreSQL/servers/{name}"

static char *
server_id(struct pgcmk_req *rq)
{
    return pgcmk_xasprintf("/subscriptions/%s/resourceGroups/%s/providers/" SERVER_TYPE "/%s",
                           pgcmk_req_param(rq, "sub"), pgcmk_req_param(rq, "rg"),
                           pgcmk_req_param(rq, "name"));
}

static int
server_get_checked(struct pgcmk_req *rq, const char *const *versions, const char *type, int parent,
                   json_t **body, struct pgcmk_err *err)
{
    char *id;
    int rc;

    *body = NULL;
    if (pgcmk_arm_check_version(rq, type, versions, err) ||
        pgcmk_arm_check_sub(pgcmk_req_param(rq, "sub"), err) ||
        pgcmk_arm_rg_usable(pgcmk_req_param(rq, "sub"), pgcmk_req_param(rq, "rg"), err))
        return -1;
    id = server_id(rq);
    rc = pgcmk_arm_resource_get(pgcmk_db(), id, body, err);
    free(id);
    if (rc > 0)
        return 0;
    if (rc == 0 && parent)
        pgcmk_err_set(err, PGCMK_E_PARENT_NOT_FOUND, NULL,
                      "Can not perform requested operation on nested resource. Parent resource "
                      "'%.64s' not found.",
                      pgcmk_req_param(rq, "name"));
    else if (rc == 0)
        pgcmk_err_set(err, PGCMK_E_RESOURCE_NOT_FOUND, NULL,
                      "The Resource '" SERVER_TYPE "/%.64s' under resource group '%.96s' was not "
                      "found. For more details please go to "
                      "https://aka.ms/ARMResourceNotFoundFix",
                      pgcmk_req_param(rq, "name"), pgcmk_req_param(rq, "rg"));
    return -1;
}

static int
server_restart(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    json_t *body = NULL;
    void *job;
    int rc;

    if (server_get_checked(rq, server_versions, "servers", 0, &body, err))
        return -1;
    if (is_inaccessible(body)) {
        json_decref(body);
        return err_inaccessible(pgcmk_req_param(rq, "name"), err);
    }
    rc = pgcmk_lro_start(
        rq, rs, pgcmk_req_param(rq, "sub"), PG_NS,
        json_string_value(json_object_get(body, "location")), "restart",
        json_string_value(json_object_get(body, "id")), pg_real_action_job,
        job = pg_real_action_new(json_string_value(json_object_get(body, "id")), "restart"), err);
    if (rc)
        pg_real_action_free(job);
    if (rc == 0)
        pgcmk_resp_empty(rs, 202);
    json_decref(body);
    return rc;
}

static int
server_replicas(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    json_t *body = NULL, *ids = json_array(), *items = json_array(), *v;
    size_t i;

    if (server_get_checked(rq, server_versions, "servers", 0, &body, err)) {
        json_decref(ids);
        json_decref(items);
        return -1;
    }
    if (replica_ids(db, json_string_value(json_object_get(body, "id")), ids, err) < 0) {
        json_decref(ids);
        json_decref(items);
        json_decref(body);
        return -1;
    }
    json_array_foreach(ids, i, v) {
        json_t *r = NULL;

        if (pgcmk_arm_resource_get(db, json_string_value(v), &r, err) > 0)
            json_array_append_new(items, r);
    }
    json_decref(ids);
    json_decref(body);
    return pgcmk_arm_list(rq, rs, items, err);
}

/* ---- routes: server keys ------------------------------------------------------------------ */

/* What a server key PUT asks for: the server and the key its URI names. */
struct key_job {
    char server_id[600];
    const char *uri;
    char vault[32], key[128], version[40];
};

/* The server id of a key id .../servers/{s}/keys/{k}. */
static void
key_server_id(const char *kid, char *out, size_t cap)
{
    const char *k = strrchr(kid, '/');
    size_t n = k ? (size_t)(k - kid) : 0;

    while (n > 0 && kid[n - 1] != '/') /* back over "keys" */
        n--;
    if (n > 0)
        n--;
    snprintf(out, cap, "%.*s", (int)n, kid);
}

/* Fills j from the key's id and body; -1 with err when the URI is not a versioned key URI. */
static int
key_job_init(struct key_job *j, const char *kid, const json_t *body, struct pgcmk_err *err)
{
    const json_t *props = pg_get_ci(body, "properties");

    memset(j, 0, sizeof(*j));
    key_server_id(kid, j->server_id, sizeof(j->server_id));
    j->uri = json_string_value(pg_get_ci(props, "uri"));
    if (!j->uri || pgcmk_vault_parse_key_uri(j->uri, j->vault, j->key, j->version) ||
        !j->version[0])
        return pgcmk_err_set(err, PGCMK_E_PG_KEY_URI_INVALID, "properties.uri",
                             "The key URI '%.200s' is not valid. Use a versioned key identifier: "
                             "https://{vault}.vault.azure.net/keys/{key}/{version}.",
                             j->uri ? j->uri : "");
    return 0;
}

static int
same_key(const struct pg_db *d, const struct key_job *j)
{
    return d->key_uri && d->vault && strcasecmp(d->vault, j->vault) == 0 &&
           strcasecmp(d->key_name, j->key) == 0 && strcasecmp(d->key_version, j->version) == 0;
}

struct identity_ctx {
    const char *id;
    char oid[37];
};

/* The portal's first revalidation: the server gets its system-assigned identity. */
static int
identity_create_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct identity_ctx *c = ctx;
    json_t *body = NULL;
    struct pg_db d;
    char app[37], what[600];
    const char *name;
    int rc = pgcmk_arm_resource_get(db, c->id, &body, err);

    if (rc <= 0)
        return rc < 0 ? -1 : pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "The server vanished.");
    if (pg_db_load(db, c->id, &d, err) <= 0) {
        json_decref(body);
        return -1;
    }
    name = strrchr(c->id, '/') + 1;
    if (sa_principal(body)) {
        snprintf(c->oid, sizeof(c->oid), "%s", sa_principal(body));
        rc = 0;
    } else {
        pgcmk_uuid(c->oid);
        pgcmk_uuid(app);
        json_object_set_new(body, "identity",
                            json_pack("{s:s, s:s, s:s}", "type", "SystemAssigned", "principalId",
                                      c->oid, "tenantId", PGCMK_TENANT_ID));
        rc = pgcmk_auth_add_identity(db, c->oid, app, name, c->id, err);
        if (rc == 0)
            rc = pgcmk_arm_resource_put(db, c->id, body, err);
    }
    if (rc == 0) {
        pg_set(&d.principal_id, c->oid);
        pg_set(&d.identity_id, d.id);
        rc = pg_db_save(db, &d, err);
    }
    if (rc == 0) {
        snprintf(what, sizeof(what),
                 "The server had no identity to reach its key with: its system-assigned "
                 "identity (principal %s) was created.",
                 c->oid);
        rc = activity(db, c->id, SERVER_TYPE "/write", NULL, what, err);
    }
    pg_db_release(&d);
    json_decref(body);
    return rc;
}

struct key_done {
    struct pg_db *d;
    const struct key_job *j;
    int was_lost;
    json_t *out;
};

static int
key_done_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct key_done *k = ctx;
    struct pg_db *d = k->d;
    char what[700];

    d->last_check = pgcmk_clock_now();
    d->lost_at = 0;
    pg_set(&d->access, PG_ACCESS_OK);
    pg_set(&d->reason_code, NULL);
    pg_set(&d->reason, NULL);
    pg_set(&d->identity_id, d->id);
    if (pg_db_save(db, d, err) || key_store(db, d, &k->out, err) ||
        set_prop(db, d->id, "byokEnforcement", json_string("Enabled"), err))
        return -1;
    snprintf(what, sizeof(what), "The server key '%s' was %s: the server uses it.", d->key_uri,
             k->was_lost ? "revalidated" : "validated");
    return pg_record_state(db, d, "Ready", what, err);
}

struct key_failed {
    const char *kid;
    const struct pgcmk_err *why;
};

/* A server key write whose operation failed: a Failed entry with the error's code and message. */
static int
key_failed_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    const struct key_failed *kf = ctx;

    return activity(db, kf->kid, KEY_TYPE "/write", kf->why, NULL, err);
}

/* The worker part of a server key PUT: validate the key with the server's identity (creating
 * that identity on the first revalidation of a copy), then store the key resource. */
static int
key_provision_put(const char *kid, const json_t *body, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err why;
    struct pgcmk_agent_result res;
    struct pg_db d;
    struct key_done kd;
    struct key_job job, *j = &job;
    int rc, same;

    memset(&why, 0, sizeof(why));
    memset(&res, 0, sizeof(res));
    memset(&d, 0, sizeof(d));
    if (key_job_init(j, kid, body, &why))
        goto fail;
    rc = pg_db_load(db, j->server_id, &d, &why);
    if (rc <= 0) {
        if (rc == 0)
            pgcmk_err_set(&why, PGCMK_E_RESOURCE_NOT_FOUND, NULL, "The server was deleted.");
        goto fail;
    }
    if (!d.principal_id) {
        struct identity_ctx ic = {d.id, ""};

        if (pgcmk_db_tx(db, identity_create_tx, &ic, &why) == 0)
            pgcmk_err_set(&why, PGCMK_E_PG_IDENTITY_REQUIRED, "identity",
                          "The server '%.64s' had no managed identity to access the Azure Key "
                          "Vault key '%.300s' with. Its system-assigned identity was created now "
                          "(principal '%s'): grant it the Get, Wrap Key and Unwrap Key "
                          "permissions on the key vault '%s', then revalidate the key (create "
                          "the server key again).",
                          strrchr(d.id, '/') + 1, j->uri, ic.oid, j->vault);
        goto fail;
    }
    if (pg_check_vault(db, j->vault, &why))
        goto fail;
    same = same_key(&d, j);
    kd = (struct key_done){&d, j, strcmp(d.access, PG_ACCESS_LOST) == 0, NULL};
    if (same) {
        /* revalidation: a key check that may bring an Inaccessible server back */
        if (pg_check_now(d.id, 1, &why))
            goto fail;
        pg_db_release(&d);
        if (pg_db_load(db, j->server_id, &d, &why) <= 0)
            goto fail;
    } else {
        struct pgcmk_agent_key k = {j->uri, d.principal_id};
        struct pgcmk_err tmp;
        unsigned char *w = NULL;
        size_t wl = 0;
        char alg[24];

        if (strcmp(d.access, PG_ACCESS_OK) != 0 || load_dek(&d, &why)) {
            if (why.code == PGCMK_E_OK)
                err_inaccessible(strrchr(d.id, '/') + 1, &why);
            goto fail;
        }
        /* the same DEK, wrapped by the new key: the data stays readable */
        if (pgcmk_agent_rewrap(d.id, &k, &w, &wl, alg, &res) ||
            pgcmk_agent_check(d.id, &k, w, wl, alg, &res)) {
            free(w);
            pgcmk_err_set(&why, res.code ? res.code : PGCMK_E_PG_VAULT_UNREACHABLE,
                          "properties.uri", "%s", res.message);
            load_dek(&d, &tmp); /* a failed check wiped it; the server keeps its old key */
            goto fail;
        }
        free(d.wrapped);
        d.wrapped = w;
        d.wrapped_len = wl;
        pg_set(&d.alg, alg);
        if (pg_set_key(&d, j->uri, &why))
            goto fail;
    }
    kd.d = &d;
    if (pgcmk_db_tx(db, key_done_tx, &kd, &why))
        goto fail;
    json_decref(kd.out);
    pg_db_release(&d);
    return 0;
fail : {
    struct key_failed kf = {kid, &why};
    struct pgcmk_err tmp;

    if (pgcmk_db_tx(db, key_failed_tx, &kf, &tmp))
        LOG_WARN("server key %s: its failure is not in the Activity Log: %s", kid, tmp.message);
}
    *err = why;
    pg_db_release(&d);
    return -1;
}

/* PUT .../servers/{s}/keys/{name}: checked at once, then validated on a worker (202 + Location).
 */
static int
key_on_write(struct pgcmk_arm_ctx *ctx, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    const char *name = ctx->id.names[ctx->id.n_types - 1];
    const char *sname = ctx->id.names[0];
    json_t *props = pg_get_ci(ctx->rq->json, "properties"), *server = NULL;
    const char *type = json_string_value(pg_get_ci(props, "serverKeyType"));
    char want[256], t[PGCMK_TIME_LEN];
    struct key_job j;
    struct pg_db d;
    int rc;

    memset(&d, 0, sizeof(d));
    if (!type || !pgcmk_streq_ci(type, "AzureKeyVault"))
        return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "properties.serverKeyType",
                             "The server key type '%.64s' is not valid. Use AzureKeyVault.",
                             type ? type : "");
    if (key_job_init(&j, ctx->id_text, ctx->rq->json, err))
        return -1;
    snprintf(want, sizeof(want), "%s_%s_%s", j.vault, j.key, j.version);
    if (strcasecmp(want, name) != 0)
        return pgcmk_err_set(err, PGCMK_E_INVALID_RESOURCE_NAME, "name",
                             "The server key name '%.128s' does not match its URI: it must be "
                             "'{vaultName}_{keyName}_{keyVersion}', here '%s'.",
                             name, want);
    rc = pgcmk_arm_resource_get(db, j.server_id, &server, err);
    if (rc > 0)
        rc = pg_db_load(db, j.server_id, &d, err);
    if (rc <= 0) {
        json_decref(server);
        pg_db_release(&d);
        return rc < 0
                   ? -1
                   : pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "The server has no database row.");
    }
    if (strcmp(d.access, PG_ACCESS_PENDING) == 0)
        rc = pgcmk_err_set(err, PGCMK_E_OPERATION_IN_PROGRESS, NULL,
                           "The server '%.64s' is still being created.", sname);
    else if (!same_key(&d, &j) &&
             (strcmp(d.access, PG_ACCESS_LOST) == 0 || is_inaccessible(server)))
        rc = err_inaccessible(sname, err);
    else if (!same_key(&d, &j) && d.relation && strcmp(d.relation, "replica") == 0 && d.key_uri)
        rc = pgcmk_err_set(err, PGCMK_E_PG_ENCRYPTION_UPDATE, "properties.uri",
                           "A replica uses the key of its master server ('%.300s'); it can only "
                           "revalidate that key.",
                           d.key_uri);
    else
        rc = 0;
    pg_db_release(&d);
    json_decref(server);
    if (rc)
        return -1;
    pgcmk_time_format(pgcmk_clock_now(), t);
    json_object_set_new(ctx->body, "properties",
                        json_pack("{s:s, s:s, s:s}", "serverKeyType", "AzureKeyVault", "uri", j.uri,
                                  "creationDate", t));
    json_object_set_new(ctx->body, "kind", json_string("azurekeyvault"));
    return 0;
}

/* DELETE .../servers/{s}/keys/{name}: the key that encrypts the server stays (a resource group
 * delete, with no request, takes everything). */
static int
key_on_delete(struct pgcmk_arm_ctx *ctx, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    char server_id[600];
    struct pg_db d;
    int rc;

    if (!ctx->rq)
        return 0;
    key_server_id(ctx->id_text, server_id, sizeof(server_id));
    memset(&d, 0, sizeof(d));
    rc = pg_db_load(db, server_id, &d, err);
    if (rc > 0 && d.key_uri) {
        char vault[32], key[128], version[40];
        const char *uri = prop_str(ctx->existing, "uri");

        if (uri && pgcmk_vault_parse_key_uri(uri, vault, key, version) == 0 &&
            strcasecmp(vault, d.vault) == 0 && strcasecmp(key, d.key_name) == 0 &&
            strcasecmp(version, d.key_version) == 0)
            rc = pgcmk_err_set(err, PGCMK_E_PG_ENCRYPTION_UPDATE, NULL,
                               "The key '%.128s' encrypts the server '%.64s'. A server encrypted "
                               "with a customer-managed key cannot go back to a service-managed "
                               "key; create a new server key to rotate, or delete the server.",
                               ctx->id.names[ctx->id.n_types - 1], ctx->id.names[0]);
    }
    pg_db_release(&d);
    return rc < 0 ? -1 : 0;
}

static const struct pgcmk_arm_type key_type = {
    .ns = PG_NS,
    .type = "servers/keys",
    .versions = key_versions,
    .flags = ARM_T_ASYNC | ARM_T_ACCEPTED | ARM_T_DEFER_STORE | ARM_T_NO_PATCH,
    .check_name = key_check_name,
    .on_write = key_on_write,
    .on_delete = key_on_delete,
    .provision_put = key_provision_put,
};

static const struct pgcmk_route server_routes[] = {
    {"POST", SERVER_PATH "/restart", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
     ROUTE_F_APIVER | ROUTE_F_ANYBODY, NULL, server_restart},
    {"GET", SERVER_PATH "/replicas", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER,
     "$top,$skiptoken", server_replicas},
};

void
pgcmk_pg_server_register(void)
{
    pgcmk_arm_register(&server_type);
    pgcmk_arm_register(&key_type);
    pg_set_renderer(PG_SERVER, server_render);
    pgcmk_router_add(server_routes, PGCMK_ARRAY_LEN(server_routes));
}
