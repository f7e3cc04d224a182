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

static const char *const identity_versions[] = {"2018-11-30", "2021-09-30-preview",
                                                "2022-01-31-preview", "2023-01-31",
                                                "2023-07-31-preview", "2024-11-30", NULL};

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
        json_object_set(props, "isolationScope",
                        json_object_get(json_object_get(ctx->body, "properties"),
                                        "isolationScope"));
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
    "Microsoft.ManagedIdentity", "userAssignedIdentities", identity_versions,
    ARM_T_TRACKED | ARM_T_SYNC_PUT, identity_check_name, identity_on_write, identity_on_delete,
};

void
pgcmk_identity_register(void)
{
    pgcmk_arm_register(&identity_type);
}
