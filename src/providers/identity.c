/* identity.c - Microsoft.ManagedIdentity/userAssignedIdentities: PUT answered synchronously
 * (201/200; the real clients reject 202), GET, PATCH tags, DELETE, lists. Every identity gets a
 * principalId, clientId and tenantId when it is created; they never change afterwards. */
#include <ctype.h>
#include <string.h>

#include "pgcmk/arm.h"
#include "pgcmk/auth.h"
#include "pgcmk/events.h"
#include "pgcmk/wellknown.h"
#include "providers/internal.h"

static const char *const identity_versions[] = {
    "2018-11-30", "2021-09-30-preview", "2022-01-31-preview",
    "2023-01-31", "2023-07-31-preview", "2024-11-30",
    NULL};

/* ^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$ */
static int
identity_check_name(const char *name, struct pgcmk_err *err)
{
    size_t n = strlen(name);
    int ok = n >= 3 && n <= 128 && isalnum((unsigned char)name[0]);

    for (size_t i = 1; ok && i < n; i++)
        ok = isalnum((unsigned char)name[i]) || name[i] == '-' || name[i] == '_';
    if (ok)
        return 0;
    return pgcmk_err_set(err, PGCMK_E_INVALID_RESOURCE_NAME, "resourceName",
                         "Resource name '%.128s' is invalid. The name can contain only letters, "
                         "numbers, underscores and hyphens, must start with a letter or a number, "
                         "and be 3 to 128 characters long.",
                         name);
}

static int
identity_on_write(struct pgcmk_arm_ctx *ctx, struct pgcmk_err *err)
{
    json_t *props = json_object(), *old = json_object_get(ctx->existing, "properties");
    static const char *const keep[] = {"principalId", "clientId", "tenantId"};

    for (size_t i = 0; i < PGCMK_ARRAY_LEN(keep); i++) {
        json_t *v = json_object_get(old, keep[i]);

        if (json_is_string(v)) {
            json_object_set(props, keep[i], v);
        } else if (strcmp(keep[i], "tenantId") == 0) {
            json_object_set_new(props, keep[i], json_string(PGCMK_TENANT_ID));
        } else {
            char id[37];

            pgcmk_uuid(id);
            json_object_set_new(props, keep[i], json_string(id));
        }
    }
    /* The service ignores writable properties other than isolationScope. */
    if (json_is_string(json_object_get(json_object_get(ctx->body, "properties"), "isolationScope")))
        json_object_set(
            props, "isolationScope",
            json_object_get(json_object_get(ctx->body, "properties"), "isolationScope"));
    json_object_set_new(ctx->body, "properties", props);
    json_object_del(ctx->body, "identity");
    json_object_del(ctx->body, "sku");
    /* A new identity is a new principal of the token service. */
    if (ctx->existing == NULL)
        return pgcmk_auth_add_identity(pgcmk_db(),
                                       json_string_value(json_object_get(props, "principalId")),
                                       json_string_value(json_object_get(props, "clientId")),
                                       ctx->id.names[0], ctx->id_text, err);
    return 0;
}

static int
identity_on_delete(struct pgcmk_arm_ctx *ctx, struct pgcmk_err *err)
{
    struct pgcmk_event ev = {PGCMK_EV_IDENTITY_DELETED, NULL, NULL, NULL, NULL, ctx->id_text};

    if (pgcmk_auth_remove_identity(pgcmk_db(), ctx->id_text, err))
        return -1;
    ev.object_id = json_string_value(
        json_object_get(json_object_get(ctx->existing, "properties"), "principalId"));
    pgcmk_events_publish(&ev);
    return 0;
}

static const struct pgcmk_arm_type identity_type = {
    .ns = "Microsoft.ManagedIdentity",
    .type = "userAssignedIdentities",
    .versions = identity_versions,
    .flags = ARM_T_TRACKED | ARM_T_SYNC_PUT,
    .check_name = identity_check_name,
    .on_write = identity_on_write,
    .on_delete = identity_on_delete,
};

/* ---- the identity block of other resource types ------------------------------------------ */

static int
identity_sa_principal(struct pgcmk_arm_ctx *ctx, json_t *old, json_t *out, struct pgcmk_err *err)
{
    const char *pid = json_string_value(json_object_get(old, "principalId"));
    char oid[37], app[37];

    if (pid && strstr(json_string_value(json_object_get(old, "type")) ?: "", "SystemAssigned")) {
        json_object_set(out, "principalId", json_object_get(old, "principalId"));
        json_object_set_new(out, "tenantId", json_string(PGCMK_TENANT_ID));
        return 0;
    }
    pgcmk_uuid(oid);
    pgcmk_uuid(app);
    json_object_set_new(out, "principalId", json_string(oid));
    json_object_set_new(out, "tenantId", json_string(PGCMK_TENANT_ID));
    return pgcmk_auth_add_identity(pgcmk_db(), oid, app, ctx->id.names[ctx->id.n_types - 1],
                                   ctx->id_text, err);
}

static int
identity_sa_remove(struct pgcmk_arm_ctx *ctx, json_t *old, struct pgcmk_err *err)
{
    struct pgcmk_event ev = {PGCMK_EV_IDENTITY_DELETED, NULL, NULL, NULL, NULL, ctx->id_text};

    if (!strstr(json_string_value(json_object_get(old, "type")) ?: "", "SystemAssigned"))
        return 0;
    if (pgcmk_auth_remove_identity(pgcmk_db(), ctx->id_text, err))
        return -1;
    ev.object_id = json_string_value(json_object_get(old, "principalId"));
    pgcmk_events_publish(&ev);
    return 0;
}

static int
identity_block(struct pgcmk_arm_ctx *ctx, int deleting, struct pgcmk_err *err)
{
    static const char *const types[] = {"None", "SystemAssigned", "UserAssigned",
                                        "SystemAssigned,UserAssigned"};
    json_t *old = json_object_get(ctx->existing, "identity");
    json_t *in = ctx->body ? json_object_get(ctx->body, "identity") : NULL, *out, *uai, *v;
    const char *t, *id;
    char norm[64];
    size_t n = 0;
    int which = -1;

    if (deleting)
        return identity_sa_remove(ctx, old, err);
    if (in == NULL || json_is_null(in)) { /* not given: the resource keeps what it had */
        if (old)
            json_object_set(ctx->body, "identity", old);
        return 0;
    }
    t = json_string_value(json_object_get(in, "type"));
    for (const char *p = t ? t : ""; *p && n + 1 < sizeof(norm); p++)
        if (*p != ' ')
            norm[n++] = *p;
    norm[n] = '\0';
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(types); i++)
        if (strcasecmp(norm, types[i]) == 0)
            which = (int)i;
    if (!json_is_object(in) || which < 0)
        return pgcmk_err_set(err, PGCMK_E_INVALID_IDENTITY, "identity.type",
                             "The identity type '%.64s' is not valid. Use None, SystemAssigned, "
                             "UserAssigned or 'SystemAssigned, UserAssigned'.",
                             t ? t : "");
    out = json_pack("{s:s}", "type", which == 3 ? "SystemAssigned, UserAssigned" : types[which]);
    if (which == 1 || which == 3) {
        if (identity_sa_principal(ctx, old, out, err))
            goto fail;
    } else if (identity_sa_remove(ctx, old, err)) {
        goto fail;
    }
    uai = json_object_get(in, "userAssignedIdentities");
    if (which >= 2) {
        json_t *filled = json_object();

        if (!json_is_object(uai) || json_object_size(uai) == 0) {
            json_decref(filled);
            pgcmk_err_set(err, PGCMK_E_INVALID_IDENTITY, "identity.userAssignedIdentities",
                          "The identity type '%s' needs at least one entry in "
                          "userAssignedIdentities.",
                          types[which]);
            goto fail;
        }
        json_object_foreach(uai, id, v) {
            json_t *mi = NULL;
            struct pgcmk_arm_id pid;
            char type[256];
            int rc;

            if (json_is_null(v))
                continue; /* PATCH: null removes the entry */
            rc = pgcmk_arm_id_parse(id, &pid, NULL);
            if (rc == 0) {
                pgcmk_arm_id_type(&pid, type, sizeof(type));
                rc = strcasecmp(type, "Microsoft.ManagedIdentity/userAssignedIdentities") ? -1 : 0;
            }
            if (rc == 0)
                rc = pgcmk_arm_resource_get(pgcmk_db(), id, &mi, err) == 1 ? 0 : -1;
            if (rc) {
                json_decref(mi);
                json_decref(filled);
                pgcmk_err_set(err, PGCMK_E_INVALID_IDENTITY, "identity.userAssignedIdentities",
                              "The user-assigned identity '%.256s' does not exist.", id);
                goto fail;
            }
            json_object_set_new(
                filled, json_string_value(json_object_get(mi, "id")),
                json_pack("{s:O, s:O}", "principalId",
                          json_object_get(json_object_get(mi, "properties"), "principalId"),
                          "clientId",
                          json_object_get(json_object_get(mi, "properties"), "clientId")));
            json_decref(mi);
        }
        json_object_set_new(out, "userAssignedIdentities", filled);
    }
    json_object_set_new(ctx->body, "identity", out);
    return 0;
fail:
    json_decref(out);
    return -1;
}

/* GET {resourceId}/providers/Microsoft.ManagedIdentity/identities/default */
static int
identity_default_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    char *id = pgcmk_xasprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s/%s",
                               pgcmk_req_param(rq, "sub"), pgcmk_req_param(rq, "rg"),
                               pgcmk_req_param(rq, "ns"), pgcmk_req_param(rq, "type"),
                               pgcmk_req_param(rq, "name"));
    json_t *res = NULL, *ident;
    int rc;

    if (pgcmk_arm_check_sub(pgcmk_req_param(rq, "sub"), err) ||
        pgcmk_arm_check_version(rq, "identities", identity_versions, err)) {
        free(id);
        return -1;
    }
    rc = pgcmk_arm_resource_get(pgcmk_db(), id, &res, err);
    ident = json_object_get(res, "identity");
    if (rc == 1 &&
        strstr(json_string_value(json_object_get(ident, "type")) ?: "", "SystemAssigned")) {
        char *self = pgcmk_xasprintf("%s/providers/Microsoft.ManagedIdentity/identities/default",
                                     json_string_value(json_object_get(res, "id")));

        pgcmk_resp_json(rs, 200,
                        json_pack("{s:s, s:s, s:s, s:O, s:{s:s, s:O}}", "id", self, "name",
                                  "default", "type", "Microsoft.ManagedIdentity/identities",
                                  "location", json_object_get(res, "location"), "properties",
                                  "tenantId", PGCMK_TENANT_ID, "principalId",
                                  json_object_get(ident, "principalId")));
        free(self);
        rc = 0;
    } else if (rc >= 0) {
        rc = pgcmk_err_set(err, PGCMK_E_RESOURCE_NOT_FOUND, NULL,
                           "The Resource 'Microsoft.ManagedIdentity/identities/default' under "
                           "resource '%.256s' was not found.",
                           id);
    }
    json_decref(res);
    free(id);
    return rc;
}

static const struct pgcmk_route identity_routes[] = {
    {"GET",
     "/subscriptions/{sub}/resourcegroups/{rg}/providers/{ns}/{type}/{name}/providers/"
     "Microsoft.ManagedIdentity/identities/default",
     PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, NULL, identity_default_get},
};

void
pgcmk_identity_register(void)
{
    pgcmk_arm_register(&identity_type);
    pgcmk_arm_set_identity_hook(identity_block);
    pgcmk_router_add(identity_routes, PGCMK_ARRAY_LEN(identity_routes));
}
