/* pg_cluster.c - Microsoft.DBforPostgreSQL/serverGroupsv2 (Azure Cosmos DB for PostgreSQL
 * clusters): create as an LRO with CMK validation, PITR and read replicas that inherit keys,
 * start/stop/restart/promote, the servers sub-resource, checkNameAvailability. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/log.h"
#include "pgcmk/monitor.h"
#include "pgcmk/pg.h"
#include "providers/internal.h"
#include "providers/postgres.h"

#define CLUSTER_TYPE PG_NS "/serverGroupsv2"

static const char *const cluster_versions[] = {"2020-10-05-privatepreview", "2022-11-08",
                                               "2023-03-02-preview", NULL};

/* Property names as Azure spells them; requests may use any case. */
static const char *const cluster_props[] = {"administratorLogin",
                                            "administratorLoginPassword",
                                            "postgresqlVersion",
                                            "citusVersion",
                                            "maintenanceWindow",
                                            "preferredPrimaryZone",
                                            "enableShardsOnCoordinator",
                                            "enableHa",
                                            "coordinatorServerEdition",
                                            "coordinatorStorageQuotaInMb",
                                            "coordinatorVCores",
                                            "coordinatorEnablePublicIpAccess",
                                            "nodeServerEdition",
                                            "nodeCount",
                                            "nodeStorageQuotaInMb",
                                            "nodeVCores",
                                            "nodeEnablePublicIpAccess",
                                            "sourceResourceId",
                                            "sourceLocation",
                                            "pointInTimeUTC",
                                            "databaseName",
                                            "enableGeoBackup",
                                            "authConfig",
                                            "dataEncryption",
                                            "createMode",
                                            "serverRoleGroups",
                                            "backupRetentionDays",
                                            "enableMx",
                                            "enableZfs",
                                            "previewFeatures",
                                            "sourceServerGroupName",
                                            "sourceSubscriptionId",
                                            "sourceResourceGroupName",
                                            "sourceServerGroup",
                                            "resourceProviderType",
                                            NULL};
static const char *const encryption_props[] = {"primaryKeyUri", "primaryUserAssignedIdentityId",
                                               "type", NULL};

static int
cluster_check_name(const char *name, struct pgcmk_err *err)
{
    return pg_check_name("cluster", name, 40, err);
}

/* The principal of a user-assigned identity named in the resource's identity block. */
static const char *
uami_principal(const json_t *body, const char *identity_id)
{
    json_t *map = json_object_get(json_object_get(body, "identity"), "userAssignedIdentities"), *v;
    const char *k;

    json_object_foreach(map, k, v) {
        if (strcasecmp(k, identity_id) == 0)
            return json_string_value(json_object_get(v, "principalId"));
    }
    return NULL;
}

static json_t *
server_names(const char *name, json_int_t workers)
{
    json_t *out = json_array();

    json_array_append_new(out,
                          json_pack("{s:s+, s:s++}", "name", name, "-c", "fullyQualifiedDomainName",
                                    "c-", name, ".postgres.database.azure.com"));
    for (json_int_t i = 0; i < workers; i++) {
        char n[300], fq[360];

        snprintf(n, sizeof(n), "%s-w%lld", name, (long long)i);
        snprintf(fq, sizeof(fq), "w%lld-%s.postgres.database.azure.com", (long long)i, name);
        json_array_append_new(out,
                              json_pack("{s:s, s:s}", "name", n, "fullyQualifiedDomainName", fq));
    }
    return out;
}

/* The private preview's serverRoleGroups and createMode, in the flat form of later versions. */
static void
from_private_preview(json_t *p, const struct pgcmk_arm_id *id)
{
    json_t *groups = json_object_get(p, "serverRoleGroups"), *g;
    const char *mode = json_string_value(json_object_get(p, "createMode"));
    const char *src = json_string_value(json_object_get(p, "sourceServerGroupName"));
    size_t i;

    json_array_foreach(groups, i, g) {
        json_t *c = pg_canonical(g, (const char *const[]){"role", "serverCount", "serverEdition",
                                                          "vCores", "storageQuotaInMb", "enableHa",
                                                          "enablePublicIpAccess", "name", NULL});
        int coord = pgcmk_streq_ci(json_string_value(json_object_get(c, "role")), "Coordinator");
        const char *pre = coord ? "coordinator" : "node";
        char key[64];

#define SETP(suffix, from)                                                                         \
    do {                                                                                           \
        snprintf(key, sizeof(key), "%s%s", pre, suffix);                                           \
        if (json_object_get(c, from))                                                              \
            json_object_set(p, key, json_object_get(c, from));                                     \
    } while (0)
        SETP("VCores", "vCores");
        SETP("StorageQuotaInMb", "storageQuotaInMb");
        SETP("ServerEdition", "serverEdition");
        SETP("EnablePublicIpAccess", "enablePublicIpAccess");
#undef SETP
        if (!coord && json_object_get(c, "serverCount"))
            json_object_set(p, "nodeCount", json_object_get(c, "serverCount"));
        if (json_is_true(json_object_get(c, "enableHa")))
            json_object_set_new(p, "enableHa", json_true());
        json_decref(c);
    }
    if (src && mode && !json_object_get(p, "sourceResourceId") &&
        (pgcmk_streq_ci(mode, "PointInTimeRestore") || pgcmk_streq_ci(mode, "ReadReplica"))) {
        const char *ssub = json_string_value(json_object_get(p, "sourceSubscriptionId"));
        const char *srg = json_string_value(json_object_get(p, "sourceResourceGroupName"));

        json_object_set_new(p, "sourceResourceId",
                            json_sprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s",
                                         ssub ? ssub : id->sub, srg ? srg : id->rg, CLUSTER_TYPE,
                                         src));
    }
}

static int
cluster_load_source(struct pgcmk_db *db, const char *sid, json_t **body, struct pgcmk_err *err)
{
    int rc = pgcmk_arm_resource_get(db, sid, body, err);

    if (rc < 0)
        return -1;
    if (rc == 0)
        return pgcmk_err_set(err, PGCMK_E_PG_SOURCE_NOT_FOUND, "sourceResourceId",
                             "The source cluster '%.300s' was not found.", sid);
    return 0;
}

/* Creation: validate, fill Azure's defaults, record the database row (pending). */
static int
cluster_create(struct pgcmk_arm_ctx *ctx, json_t *p, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    json_t *enc = json_object_get(p, "dataEncryption"), *src_body = NULL, *mw;
    const char *sid, *name = ctx->id.names[0];
    const char *rel = NULL;
    struct pg_db d;
    int64_t now = pgcmk_clock_now(), at = 0;
    char t[PGCMK_TIME_LEN];
    json_int_t nodes;
    int rc = -1;

    memset(&d, 0, sizeof(d));
    rc = pgcmk_arm_resource_by_name(db, CLUSTER_TYPE, name, NULL, NULL, NULL, err);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return pgcmk_err_set(err, PGCMK_E_PG_NAME_EXISTS, "name",
                             "The cluster name '%.64s' is already in use. Cluster names must "
                             "be globally unique.",
                             name);
    rc = -1;
    from_private_preview(p, &ctx->id);
    sid = json_string_value(json_object_get(p, "sourceResourceId"));
    if (sid) {
        json_t *pit = json_object_get(p, "pointInTimeUTC");

        if (cluster_load_source(db, sid, &src_body, err))
            return -1;
        rel = json_is_string(pit) ? "restore" : "replica";
        if (json_is_string(pit)) {
            struct pg_db s;
            int64_t earliest, kept;

            if (pgcmk_time_parse(json_string_value(pit), &at)) {
                json_decref(src_body);
                return pgcmk_err_set(err, PGCMK_E_PG_INVALID_RESTORE, "pointInTimeUTC",
                                     "'%.64s' is not an ISO 8601 time.", json_string_value(pit));
            }
            earliest = pg_db_load(db, sid, &s, err) > 0 ? s.created_at : now;
            pg_db_release(&s);
            if (now - 35 * 86400000LL > earliest) /* backups are kept 35 days */
                earliest = now - 35 * 86400000LL;
            if (pgcmk_pg_has(sid) && pgcmk_pg_earliest_restore(sid, &kept) == 0 && kept > earliest)
                earliest = kept; /* real mode: the oldest base backup kept */
            if (at < earliest || at > now) {
                char e[PGCMK_TIME_LEN], n[PGCMK_TIME_LEN];

                pgcmk_time_format(earliest, e);
                pgcmk_time_format(now, n);
                json_decref(src_body);
                return pgcmk_err_set(err, PGCMK_E_PG_INVALID_RESTORE, "pointInTimeUTC",
                                     "The restore point in time '%.64s' must be between the "
                                     "earliest restore time %s and now (%s).",
                                     json_string_value(pit), e, n);
            }
        }
        if (!enc) {
            /* replicas and restores keep the source's encryption unless told otherwise */
            enc = json_object_get(json_object_get(src_body, "properties"), "dataEncryption");
            if (enc)
                json_object_set(p, "dataEncryption", enc);
            if (json_object_get(src_body, "identity") && !json_object_get(ctx->body, "identity"))
                json_object_set(ctx->body, "identity", json_object_get(src_body, "identity"));
        } else if (rel[0] == 'r' && rel[2] == 'p') {
            json_decref(src_body);
            return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "dataEncryption",
                                 "A read replica inherits the encryption of its source cluster; "
                                 "dataEncryption cannot be set.");
        }
        if (rel[2] == 'p') { /* the source lists its replicas */
            json_t *sp = json_object_get(src_body, "properties");
            json_t *rr = json_object_get(sp, "readReplicas");

            if (!json_is_array(rr))
                json_object_set_new(sp, "readReplicas", rr = json_array());
            json_array_append_new(rr, json_string(ctx->id_text));
            if (pgcmk_arm_resource_put(db, json_string_value(json_object_get(src_body, "id")),
                                       src_body, err)) {
                json_decref(src_body);
                return -1;
            }
        }
    }
    d.id = pgcmk_xstrdup(ctx->id_text);
    d.kind = PG_CLUSTER;
    d.sub = pgcmk_xstrdup(ctx->id.sub);
    d.rg = pgcmk_xstrdup(ctx->id.rg);
    d.source_id = sid ? pgcmk_xstrdup(json_string_value(json_object_get(src_body, "id"))) : NULL;
    d.relation = rel ? pgcmk_xstrdup(rel) : NULL;
    d.last_check = at; /* the restore point, until the first check */
    d.created_at = now;
    pg_set(&d.access, PG_ACCESS_PENDING);
    if (enc && !json_is_null(enc)) {
        json_t *ce = pg_canonical(enc, encryption_props);
        const char *type = json_string_value(json_object_get(ce, "type"));

        json_object_set_new(p, "dataEncryption", ce);
        if (type && pgcmk_streq_ci(type, "AzureKeyVault")) {
            const char *uami =
                json_string_value(json_object_get(ce, "primaryUserAssignedIdentityId"));
            const char *oid = uami ? uami_principal(ctx->body, uami) : NULL;

            json_object_set_new(ce, "type", json_string("AzureKeyVault"));
            if (pg_set_key(&d, json_string_value(json_object_get(ce, "primaryKeyUri")), err))
                goto out;
            if (!oid) {
                pgcmk_err_set(err, PGCMK_E_PG_IDENTITY_NOT_FOUND,
                              "dataEncryption.primaryUserAssignedIdentityId",
                              "The user-assigned identity '%.300s' is not assigned to the cluster. "
                              "Customer-managed keys need a user-assigned identity listed in "
                              "identity.userAssignedIdentities.",
                              uami ? uami : "");
                goto out;
            }
            d.identity_id = pgcmk_xstrdup(uami);
            d.principal_id = pgcmk_xstrdup(oid);
        } else if (type && !pgcmk_streq_ci(type, "SystemManaged") &&
                   !pgcmk_streq_ci(type, "SystemAssigned")) {
            pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "dataEncryption.type",
                          "The data encryption type '%.64s' is not valid. Use AzureKeyVault or "
                          "SystemManaged.",
                          type);
            goto out;
        } else {
            json_object_set_new(p, "dataEncryption", json_pack("{s:s}", "type", "SystemManaged"));
        }
    } else {
        json_object_set_new(p, "dataEncryption", json_pack("{s:s}", "type", "SystemManaged"));
    }
    nodes = json_is_integer(json_object_get(p, "nodeCount"))
                ? json_integer_value(json_object_get(p, "nodeCount"))
                : 0;
    if (nodes == 1 || nodes < 0 || nodes > 20) {
        pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "nodeCount",
                      "nodeCount must be 0 (a single node) or 2 to 20; 1 is not valid.");
        goto out;
    }
    pgcmk_time_format(now, t);
    json_object_set_new(p, "administratorLogin", json_string("citus"));
    pg_real_keep_password(ctx->id_text,
                          json_string_value(json_object_get(p, "administratorLoginPassword")));
    json_object_del(p, "administratorLoginPassword");
#define DEFAULT(k, v)                                                                              \
    if (!json_object_get(p, k))                                                                    \
    json_object_set_new(p, k, v)
    DEFAULT("postgresqlVersion", json_string("15"));
    DEFAULT("citusVersion", json_string("12.1"));
    DEFAULT("coordinatorServerEdition", json_string("GeneralPurpose"));
    DEFAULT("coordinatorVCores", json_integer(4));
    DEFAULT("coordinatorStorageQuotaInMb", json_integer(131072));
    DEFAULT("coordinatorEnablePublicIpAccess", json_true());
    DEFAULT("nodeServerEdition", json_string("MemoryOptimized"));
    DEFAULT("nodeCount", json_integer(0));
    DEFAULT("nodeVCores", json_integer(4));
    DEFAULT("nodeStorageQuotaInMb", json_integer(524288));
    DEFAULT("nodeEnablePublicIpAccess", json_false());
    DEFAULT("enableHa", json_false());
    DEFAULT("enableShardsOnCoordinator", json_boolean(nodes == 0));
    DEFAULT("sourceResourceId", json_null());
    DEFAULT("databaseName", json_string("citus"));
#undef DEFAULT
    mw = json_object_get(p, "maintenanceWindow");
    if (!json_is_object(mw))
        json_object_set_new(p, "maintenanceWindow",
                            json_pack("{s:s, s:i, s:i, s:i}", "customWindow", "Disabled",
                                      "dayOfWeek", 0, "startHour", 0, "startMinute", 0));
    json_object_set_new(p, "aadAuthEnabled", json_string("disabled"));
    json_object_set_new(p, "passwordEnabled", json_string("enabled"));
    json_object_set_new(p, "readReplicas", json_array());
    json_object_set_new(p, "privateEndpointConnections", json_array());
    json_object_set_new(p, "earliestRestoreTime", json_string(t));
    json_object_set_new(p, "serverNames", server_names(name, nodes));
    json_object_set_new(p, "provisioningState", json_string("InProgress"));
    json_object_set_new(p, "state", json_string("Provisioning"));
    rc = pg_db_save(db, &d, err);
out:
    pg_db_release(&d);
    json_decref(src_body);
    return rc;
}

static int
cluster_on_write(struct pgcmk_arm_ctx *ctx, struct pgcmk_err *err)
{
    json_t *in = json_object_get(ctx->rq->json, "properties");
    json_t *p = pg_canonical(json_object_get(ctx->body, "properties"), cluster_props);
    int patch = strcmp(ctx->rq->method, "PATCH") == 0, rc = 0;

    json_object_set_new(ctx->body, "properties", p);
    if (!ctx->existing)
        return cluster_create(ctx, p, err);
    {
        json_t *old = json_object_get(ctx->existing, "properties");
        json_t *new_enc = pg_get_ci(in, "dataEncryption");
        const char *state = json_string_value(json_object_get(old, "state"));

        json_t *ce = new_enc ? pg_canonical(new_enc, encryption_props) : NULL;
        int same = !ce || json_equal(ce, json_object_get(old, "dataEncryption"));

        json_decref(ce);
        if (!same)
            rc = pgcmk_err_set(err, PGCMK_E_PG_ENCRYPTION_UPDATE, "dataEncryption",
                               "Data encryption cannot be changed after the cluster is created. "
                               "To change the key or the encryption type, restore the cluster to "
                               "a point in time with the new configuration.");
        else if (json_object_get(ctx->rq->json, "identity") &&
                 !json_equal(json_object_get(ctx->body, "identity"),
                             json_object_get(ctx->existing, "identity")) &&
                 !pgcmk_streq_ci(json_string_value(json_object_get(
                                     json_object_get(old, "dataEncryption"), "type")),
                                 "SystemManaged"))
            rc = pgcmk_err_set(err, PGCMK_E_PG_ENCRYPTION_UPDATE, "identity",
                               "The identity of a cluster encrypted with a customer-managed key "
                               "cannot be changed.");
        else if (state && strcmp(state, "Inaccessible") == 0)
            rc = pgcmk_err_set(err, PGCMK_E_PG_INACCESSIBLE, NULL,
                               "The cluster '%.64s' is inaccessible because it lost access to its "
                               "customer-managed key; only delete is allowed until access is "
                               "restored.",
                               ctx->id.names[0]);
        /* read-only and create-only fields keep their stored values */
        for (const char *const *k =
                 (const char *const[]){"administratorLogin", "serverNames", "readReplicas",
                                       "earliestRestoreTime", "dataEncryption", "sourceResourceId",
                                       "state", "provisioningState", NULL};
             *k; k++)
            if (json_object_get(old, *k))
                json_object_set(p, *k, json_object_get(old, *k));
        json_object_del(p, "administratorLoginPassword");
        if (rc == 0 && json_is_string(pg_get_ci(in, "administratorLoginPassword")) &&
            pgcmk_pg_has(ctx->id_text))
            rc = pgcmk_pg_set_password(
                ctx->id_text, "citus",
                json_string_value(pg_get_ci(in, "administratorLoginPassword")), err);
        if (!patch && rc == 0) {
            json_object_set_new(p, "provisioningState", json_string("Updating"));
        }
    }
    return rc;
}

/* Writes the cluster's state (and provisioningState when given) into its stored body. */
static int
cluster_set_state(struct pgcmk_db *db, const char *id, const char *state, const char *prov,
                  struct pgcmk_err *err)
{
    json_t *body = NULL, *p;
    int rc = pgcmk_arm_resource_get(db, id, &body, err);

    if (rc <= 0)
        return rc;
    p = json_object_get(body, "properties");
    if (state)
        json_object_set_new(p, "state", json_string(state));
    if (prov)
        json_object_set_new(p, "provisioningState", json_string(prov));
    rc = pgcmk_arm_resource_put(db, id, body, err);
    json_decref(body);
    return rc;
}

static int
cluster_render(struct pgcmk_db *db, const char *id, const char *state, struct pgcmk_err *err)
{
    json_t *body = NULL;
    const char *cur;
    int rc = pgcmk_arm_resource_get(db, id, &body, err);

    if (rc <= 0)
        return rc;
    cur = json_string_value(json_object_get(json_object_get(body, "properties"), "state"));
    /* a stopped cluster stays Stopped; it shows Inaccessible when started */
    rc = cur && strcmp(cur, "Stopped") == 0 ? 0 : cluster_set_state(db, id, state, NULL, err);
    json_decref(body);
    return rc;
}

struct provision_done {
    struct pg_db *d;
    int ok;
    const struct pgcmk_err *why;
};

static int
provision_done_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct provision_done *pd = ctx;
    struct pg_db *d = pd->d;
    struct pgcmk_activity a;
    char what[768];

    d->last_check = pgcmk_clock_now();
    if (pd->ok) {
        pg_set(&d->access, PG_ACCESS_OK);
        pg_set(&d->reason_code, NULL);
        pg_set(&d->reason, NULL);
    } else {
        pg_set(&d->access, PG_ACCESS_LOST);
        pg_set(&d->reason_code, pgcmk_err_code(pd->why->code));
        pg_set(&d->reason, pd->why->message);
        d->lost_at = d->last_check;
    }
    if (pg_db_save(db, d, err))
        return -1;
    if (cluster_set_state(db, d->id, pd->ok ? "Ready" : (d->key_uri ? "Inaccessible" : "Failed"),
                          pd->ok ? "Succeeded" : "Failed", err))
        return -1;
    if (pg_record_state(db, d, pd->ok ? "Ready" : "Inaccessible", NULL, err))
        return -1;
    memset(&a, 0, sizeof(a));
    snprintf(what, sizeof(what), "%s succeeded",
             d->relation ? (strcmp(d->relation, "restore") == 0 ? "Point-in-time restore"
                                                                : "Read replica creation")
                         : "Cluster creation");
    a.resource_id = d->id;
    a.operation = CLUSTER_TYPE "/write";
    a.status = pd->ok ? "Succeeded" : "Failed";
    a.level = pd->ok ? "Informational" : "Error";
    if (pd->ok) {
        a.description = what;
    } else { /* the LRO's error: statusMessage, and "code: message" as the description */
        a.error_code = pgcmk_err_code(pgcmk_err_parent(pd->why->code));
        a.error_message = pd->why->message;
    }
    return pgcmk_activity_add(db, &a, err);
}

static int
update_done_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    return cluster_set_state(db, ctx, NULL, "Succeeded", err);
}

static int
cluster_provision(const char *id, int created, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pg_db d, s;
    struct pgcmk_err why, tmp;
    struct provision_done pd;
    int rc, have_src = 0;

    if (!created)
        return pgcmk_db_tx(db, update_done_tx, (void *)id, err);
    memset(&why, 0, sizeof(why));
    memset(&s, 0, sizeof(s));
    rc = pg_db_load(db, id, &d, err);
    if (rc <= 0)
        return rc < 0 ? -1 : pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "The cluster vanished.");
    if (d.source_id && pg_db_load(db, d.source_id, &s, &tmp) > 0)
        have_src = 1;
    rc = d.key_uri ? pg_check_vault(db, d.vault, &why) : 0;
    if (rc == 0)
        rc = pg_provision_dek(
            &d, have_src && d.relation && strcmp(d.relation, "replica") == 0 ? &s : NULL, &why);
    if (rc == 0 && have_src && strcmp(d.relation, "restore") == 0) {
        /* replay the source's rows up to the restore point, under the new DEK */
        if (!pgcmk_agent_has_dek(s.id) && s.key_uri == NULL)
            pg_check_now(s.id, 0, &tmp);
        else if (!pgcmk_agent_has_dek(s.id))
            pg_check_now(s.id, 0, &tmp);
        /* real mode: the restore replays the source's encrypted WAL (pg_real_create) */
        if (!pgcmk_pg_real())
            rc = pg_rows_restore(s.id, d.id, d.last_check, &why);
    }
    if (rc == 0 && pgcmk_pg_real()) {
        json_t *body = NULL;

        rc = pgcmk_arm_resource_get(db, id, &body, &why) > 0
                 ? pg_real_create(&d, body, "citus", d.last_check, &why)
                 : -1;
        json_decref(body);
    }
    pd = (struct provision_done){&d, rc == 0, &why};
    if (pgcmk_db_tx(db, provision_done_tx, &pd, err))
        rc = -1;
    else if (rc)
        *err = why;
    pg_db_release(&d);
    pg_db_release(&s);
    return rc ? -1 : 0;
}

static int
cluster_on_delete(struct pgcmk_arm_ctx *ctx, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    struct pg_db d;

    if (pg_db_load(db, ctx->id_text, &d, err) > 0) {
        json_t *src = NULL;

        if (d.source_id && pgcmk_arm_resource_get(db, d.source_id, &src, err) > 0) {
            json_t *rr = json_object_get(json_object_get(src, "properties"), "readReplicas"), *v;
            size_t i;

            json_array_foreach(rr, i, v) {
                if (pgcmk_streq_ci(json_string_value(v), ctx->id_text)) {
                    json_array_remove(rr, i);
                    break;
                }
            }
            if (pgcmk_arm_resource_put(db, d.source_id, src, err)) {
                json_decref(src);
                pg_db_release(&d);
                return -1;
            }
        }
        json_decref(src);
        pg_db_release(&d);
    }
    if (pg_db_delete(db, ctx->id_text, err))
        return -1;
    return pgcmk_health_forget(db, ctx->id_text, err);
}

static void
cluster_after_delete(const char *id)
{
    pg_real_drop(id);
    pg_forget(NULL, id);
}

static const struct pgcmk_arm_type cluster_type = {
    .ns = PG_NS,
    .type = "serverGroupsv2",
    .versions = cluster_versions,
    .flags = ARM_T_TRACKED | ARM_T_IDENTITY | ARM_T_ASYNC | ARM_T_ASYNC_DELETE,
    .check_name = cluster_check_name,
    .on_write = cluster_on_write,
    .on_delete = cluster_on_delete,
    .provision = cluster_provision,
    .after_delete = cluster_after_delete,
};

/* ---- actions and sub-resources -------------------------------------------------------------- */

#define CLUSTER_PATH                                                                               \
    "/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.DBforPostgreSQL/serverGroupsv2/" \
    "{name}"

static char *
cluster_id(struct pgcmk_req *rq)
{
    return pgcmk_xasprintf("/subscriptions/%s/resourceGroups/%s/providers/" CLUSTER_TYPE "/%s",
                           pgcmk_req_param(rq, "sub"), pgcmk_req_param(rq, "rg"),
                           pgcmk_req_param(rq, "name"));
}

static int
cluster_get_checked(struct pgcmk_req *rq, char **id, json_t **body, struct pgcmk_err *err)
{
    int rc;

    if (pgcmk_arm_check_version(rq, CLUSTER_TYPE, cluster_versions, err) ||
        pgcmk_arm_check_sub(pgcmk_req_param(rq, "sub"), err))
        return -1;
    *id = cluster_id(rq);
    rc = pgcmk_arm_resource_get(pgcmk_db(), *id, body, err);
    if (rc > 0)
        return 0;
    free(*id);
    *id = NULL;
    if (rc == 0)
        pgcmk_err_set(err, PGCMK_E_RESOURCE_NOT_FOUND, NULL,
                      "The Resource '" CLUSTER_TYPE "/%.64s' under resource group '%.96s' was not "
                      "found. For more details please go to "
                      "https://aka.ms/ARMResourceNotFoundFix",
                      pgcmk_req_param(rq, "name"), pgcmk_req_param(rq, "rg"));
    return -1;
}

struct action_ctx {
    const char *id, *action;
};

static int
action_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct action_ctx *a = ctx;
    json_t *body = NULL, *p;
    const char *state;
    int rc = pgcmk_arm_resource_get(db, a->id, &body, err);

    if (rc <= 0)
        return -1;
    p = json_object_get(body, "properties");
    state = json_string_value(json_object_get(p, "state"));
    if (state && strcmp(state, "Inaccessible") == 0 && strcmp(a->action, "stop") != 0) {
        json_decref(body);
        return pgcmk_err_set(err, PGCMK_E_PG_INACCESSIBLE, NULL,
                             "The cluster is inaccessible because it lost access to its "
                             "customer-managed key; restore access to the key first.");
    }
    if (state && strcmp(state, "Stopped") == 0 &&
        (strcmp(a->action, "restart") == 0 || strcmp(a->action, "promote") == 0)) {
        json_decref(body);
        return pgcmk_err_set(err, PGCMK_E_CONFLICT, NULL,
                             "The cluster is stopped; start it before you %s it.", a->action);
    }
    if (strcmp(a->action, "stop") == 0) {
        json_object_set_new(p, "state", json_string("Stopped"));
    } else if (strcmp(a->action, "start") == 0) {
        struct pg_db d;
        int lost = pg_db_load(db, a->id, &d, err) > 0 && strcmp(d.access, PG_ACCESS_LOST) == 0;

        pg_db_release(&d);
        json_object_set_new(p, "state", json_string(lost ? "Inaccessible" : "Ready"));
    } else if (strcmp(a->action, "promote") == 0) {
        struct pg_db d;
        json_t *src = NULL;

        if (pg_db_load(db, a->id, &d, err) <= 0 || !d.relation ||
            strcmp(d.relation, "replica") != 0) {
            pg_db_release(&d);
            json_decref(body);
            return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, NULL,
                                 "Only a read replica can be promoted.");
        }
        if (pgcmk_arm_resource_get(db, d.source_id, &src, err) > 0) {
            json_t *rr = json_object_get(json_object_get(src, "properties"), "readReplicas"), *v;
            size_t i;

            json_array_foreach(rr, i, v) {
                if (pgcmk_streq_ci(json_string_value(v), a->id)) {
                    json_array_remove(rr, i);
                    break;
                }
            }
            rc = pgcmk_arm_resource_put(db, d.source_id, src, err);
            json_decref(src);
        }
        /* the promoted cluster keeps its DEK but gets its own copy of the data */
        pg_set(&d.relation, "promoted");
        if (rc >= 0)
            rc = pg_db_save(db, &d, err);
        pg_db_release(&d);
        if (rc < 0) {
            json_decref(body);
            return -1;
        }
    }
    rc = pgcmk_arm_resource_put(db, a->id, body, err);
    json_decref(body);
    return rc;
}

static int
cluster_action(struct pgcmk_req *rq, struct pgcmk_resp *rs, const char *action,
               struct pgcmk_err *err)
{
    json_t *body = NULL;
    char *id = NULL;
    struct action_ctx a;
    void *job = NULL;
    int rc;

    if (cluster_get_checked(rq, &id, &body, err))
        return -1;
    a = (struct action_ctx){id, action};
    rc = pgcmk_db_tx(pgcmk_db(), action_tx, &a, err);
    if (rc == 0 && strcmp(action, "promote") == 0 && !pgcmk_pg_real()) {
        /* copy the rows the replica read from its source, so it stands alone */
        struct pg_db d;
        struct pgcmk_err e2;

        if (pg_db_load(pgcmk_db(), id, &d, &e2) > 0 && d.source_id)
            if (pg_rows_restore(d.source_id, id, pgcmk_clock_now(), &e2))
                LOG_WARN("promote %s: %s", id, e2.message);
        pg_db_release(&d);
    }
    if (rc == 0)
        rc = pgcmk_lro_start(rq, rs, pgcmk_req_param(rq, "sub"), PG_NS,
                             json_string_value(json_object_get(body, "location")), action, id,
                             pg_real_action_job, job = pg_real_action_new(id, action), err);
    if (rc)
        pg_real_action_free(job);
    if (rc == 0)
        pgcmk_resp_empty(rs, 202);
    json_decref(body);
    free(id);
    return rc;
}

static int
cluster_start(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return cluster_action(rq, rs, "start", err);
}

static int
cluster_stop(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return cluster_action(rq, rs, "stop", err);
}

static int
cluster_restart(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return cluster_action(rq, rs, "restart", err);
}

static int
cluster_promote(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return cluster_action(rq, rs, "promote", err);
}

static json_t *
server_of(const json_t *cluster, const json_t *sn, int coordinator)
{
    const json_t *p = json_object_get(cluster, "properties");
    const char *pre = coordinator ? "coordinator" : "node";
    char k[64];
    json_t *props;
    const char *state = json_string_value(json_object_get(p, "state"));

#define PK(s) (snprintf(k, sizeof(k), "%s%s", pre, s), json_object_get(p, k))
    props = json_pack(
        "{s:O, s:s, s:s, s:s, s:s, s:O, s:O, s:O?, s:O?, s:O?, s:O, s:O?, s:b, s:s}",
        "fullyQualifiedDomainName", json_object_get(sn, "fullyQualifiedDomainName"), "role",
        coordinator ? "Coordinator" : "Worker", "state", state ? state : "Ready", "haState",
        json_is_true(json_object_get(p, "enableHa")) ? "Healthy" : "NotEnabled", "availabilityZone",
        "1", "postgresqlVersion", json_object_get(p, "postgresqlVersion"), "citusVersion",
        json_object_get(p, "citusVersion"), "serverEdition", PK("ServerEdition"),
        "storageQuotaInMb", PK("StorageQuotaInMb"), "vCores", PK("VCores"), "enableHa",
        json_object_get(p, "enableHa"), "enablePublicIpAccess", PK("EnablePublicIpAccess"),
        "isReadOnly", 0, "administratorLogin", "citus");
#undef PK
    return json_pack("{s:s++, s:O, s:s, s:O, s:o}", "id",
                     json_string_value(json_object_get(cluster, "id")), "/servers/",
                     json_string_value(json_object_get(sn, "name")), "name",
                     json_object_get(sn, "name"), "type", CLUSTER_TYPE "/servers", "systemData",
                     json_object_get(cluster, "systemData"), "properties", props);
}

static int
cluster_servers(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *want = pgcmk_req_param(rq, "server");
    json_t *body = NULL, *names, *sn, *items = json_array();
    char *id = NULL;
    size_t i;

    if (cluster_get_checked(rq, &id, &body, err)) {
        json_decref(items);
        return -1;
    }
    names = json_object_get(json_object_get(body, "properties"), "serverNames");
    json_array_foreach(names, i, sn) {
        const char *n = json_string_value(json_object_get(sn, "name"));

        if (!want || pgcmk_streq_ci(want, n))
            json_array_append_new(items, server_of(body, sn, i == 0));
    }
    json_decref(body);
    free(id);
    if (!want)
        return pgcmk_arm_list(rq, rs, items, err);
    if (json_array_size(items) == 0) {
        json_decref(items);
        return pgcmk_err_set(err, PGCMK_E_RESOURCE_NOT_FOUND, NULL,
                             "The server '%.64s' was not found in the cluster.", want);
    }
    pgcmk_resp_json(rs, 200, json_incref(json_array_get(items, 0)));
    json_decref(items);
    return 0;
}

/* POST /subscriptions/{s}/providers/Microsoft.DBforPostgreSQL/checkNameAvailability */
static int
pg_check_name_route(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = json_string_value(json_object_get(rq->json, "name"));
    const char *type = json_string_value(json_object_get(rq->json, "type"));
    int taken, cluster;
    struct pgcmk_err nerr;

    if (pgcmk_arm_check_sub(pgcmk_req_param(rq, "sub"), err))
        return -1;
    if (!name || !type)
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, NULL,
                             "The request must give \"name\" and \"type\".");
    /* single servers: Azure's own example names the bare namespace, "Microsoft.DBforPostgreSQL" */
    if (!pgcmk_streq_ci(type, CLUSTER_TYPE) && !pgcmk_streq_ci(type, PG_NS "/servers") &&
        !pgcmk_streq_ci(type, PG_NS))
        return pgcmk_err_set(err, PGCMK_E_INVALID_RESOURCE_TYPE, "type",
                             "The resource type '%.128s' is not valid here. Use " CLUSTER_TYPE
                             ", " PG_NS "/servers or " PG_NS ".",
                             type);
    cluster = pgcmk_streq_ci(type, CLUSTER_TYPE);
    taken = pgcmk_arm_resource_by_name(pgcmk_db(), cluster ? CLUSTER_TYPE : PG_NS "/servers", name,
                                       NULL, NULL, NULL, err);
    if (taken < 0)
        return -1;
    memset(&nerr, 0, sizeof(nerr));
    if (cluster)
        cluster_check_name(name, &nerr);
    else
        pg_check_name("server", name, 63, &nerr);
    if (!taken && nerr.code == PGCMK_E_OK)
        pgcmk_resp_json(rs, 200,
                        json_pack("{s:b, s:s, s:s, s:s}", "nameAvailable", 1, "name", name, "type",
                                  type, "message", ""));
    else
        pgcmk_resp_json(rs, 200,
                        json_pack("{s:b, s:s, s:s, s:s, s:s}", "nameAvailable", 0, "name", name,
                                  "type", type, "reason", taken ? "AlreadyExists" : "Invalid",
                                  "message", taken ? "The name is already in use." : nerr.message));
    return 0;
}

static const struct pgcmk_route cluster_routes[] = {
    {"POST", CLUSTER_PATH "/start", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
     ROUTE_F_APIVER | ROUTE_F_ANYBODY, NULL, cluster_start},
    {"POST", CLUSTER_PATH "/stop", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER | ROUTE_F_ANYBODY,
     NULL, cluster_stop},
    {"POST", CLUSTER_PATH "/restart", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
     ROUTE_F_APIVER | ROUTE_F_ANYBODY, NULL, cluster_restart},
    {"POST", CLUSTER_PATH "/promote", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
     ROUTE_F_APIVER | ROUTE_F_ANYBODY, NULL, cluster_promote},
    {"GET", CLUSTER_PATH "/servers", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, NULL,
     cluster_servers},
    {"GET", CLUSTER_PATH "/servers/{server}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, NULL,
     cluster_servers},
    {"POST", "/subscriptions/{sub}/providers/Microsoft.DBforPostgreSQL/checkNameAvailability",
     PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER | ROUTE_F_JSON, NULL, pg_check_name_route},
};

void
pgcmk_pg_cluster_register(void)
{
    pgcmk_arm_register(&cluster_type);
    pg_set_renderer(PG_CLUSTER, cluster_render);
    pgcmk_router_add(cluster_routes, PGCMK_ARRAY_LEN(cluster_routes));
}
