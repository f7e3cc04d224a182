/* keyvault_keys.c - Microsoft.KeyVault/vaults/keys and vaults/keys/versions: the management
 * plane's view of the keys the Key Vault data plane keeps. Rows of the provider table of kind
 * ARM_T_EXTERNAL: the engine resolves the request and the parent vault, these hooks answer from
 * the data plane through include/pgcmk/vault.h. A PUT is Keys_CreateIfNotExist (200 with the
 * key, an existing key unchanged); there is no PATCH or DELETE (Azure has none). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/arm.h"
#include "pgcmk/keyvault.h"
#include "pgcmk/log.h"
#include "pgcmk/vault.h"
#include "providers/internal.h"

#define KEYS_TYPE "Microsoft.KeyVault/vaults/keys"

/* The ARM form of a data-plane bundle (see Keys_Get in the management plane's keys.json). */
static json_t *
key_json(const char *vault_id, const json_t *vault_body, const json_t *bundle, int as_version)
{
    const json_t *key = json_object_get(bundle, "key");
    const char *kid = json_string_value(json_object_get(key, "kid"));
    const char *n = json_string_value(json_object_get(key, "n"));
    char vault[32], name[128], version[40];
    struct pgcmk_vault_props vp;
    int bits = n ? (int)(strlen(n) * 6 / 8) * 8 : 0;
    json_t *attrs = json_deep_copy(json_object_get(bundle, "attributes")), *o;
    char *uri, *uri_v, *id;
    const char *slash = kid ? strrchr(kid, '/') : NULL;

    if (pgcmk_vault_parse_key_uri(kid, vault, name, version))
        name[0] = version[0] = '\0';
    uri = slash ? pgcmk_xstrndup(kid, (size_t)(slash - kid)) : pgcmk_xstrdup("");
    uri_v = pgcmk_xstrdup(kid ? kid : "");
    id = as_version ? pgcmk_xasprintf("%s/keys/%s/versions/%s", vault_id, name, version)
                    : pgcmk_xasprintf("%s/keys/%s", vault_id, name);
    pgcmk_keyvault_props(vault_body, &vp);
    json_object_del(attrs, "recoverableDays");
    bits = bits >= 4096 ? 4096 : bits >= 3072 ? 3072 : 2048;
    o = json_pack("{s:s, s:s, s:s, s:s?, s:O, s:{s:o, s:O, s:O, s:s, s:s}}", "id", id, "name",
                  as_version ? version : name, "type",
                  as_version ? KEYS_TYPE "/versions" : KEYS_TYPE, "location", vp.location, "tags",
                  json_object_get(bundle, "tags"), "properties", "attributes", attrs, "kty",
                  json_object_get(key, "kty"), "keyOps", json_object_get(key, "key_ops"), "keyUri",
                  uri, "keyUriWithVersion", uri_v);
    if (json_object_get(key, "crv"))
        json_object_set(json_object_get(o, "properties"), "curveName", json_object_get(key, "crv"));
    else
        json_object_set_new(json_object_get(o, "properties"), "keySize", json_integer(bits));
    free(uri);
    free(uri_v);
    free(id);
    return o;
}

static int
key_not_found(const char *name, struct pgcmk_err *err)
{
    return pgcmk_err_set(err, PGCMK_E_RESOURCE_NOT_FOUND, NULL,
                         "The Resource '" KEYS_TYPE "/%.127s' was not found. For more details "
                         "please go to https://aka.ms/ARMResourceNotFoundFix",
                         name);
}

static const char *
vault_id(const struct pgcmk_arm_ctx *ctx)
{
    return json_string_value(json_object_get(ctx->parent, "id"));
}

/* Names are checked by the data plane's rule, after the parent vault was found. */
static int
key_any_name(const char *name, struct pgcmk_err *err)
{
    (void)name;
    (void)err;
    return 0;
}

static int
key_put(struct pgcmk_arm_ctx *ctx, json_t **out, int *status, struct pgcmk_err *err)
{
    json_t *bundle = NULL;
    int created;

    if (pgcmk_vault_key_create_if_absent(ctx->parent, ctx->id.names[1], ctx->rq->json, &bundle,
                                         &created, err))
        return -1;
    *out = key_json(vault_id(ctx), ctx->parent, bundle, 0);
    *status = 200; /* Keys_CreateIfNotExist answers 200 either way */
    json_decref(bundle);
    return 0;
}

static int
key_get(struct pgcmk_arm_ctx *ctx, json_t **out, struct pgcmk_err *err)
{
    json_t *bundle = NULL;
    int versioned = ctx->id.n_types == 3;
    int rc = pgcmk_vault_key_get(ctx->parent, ctx->id.names[1], versioned ? ctx->id.names[2] : NULL,
                                 &bundle, err);

    if (rc < 0)
        return -1;
    if (rc == 0)
        return key_not_found(ctx->id.names[1], err);
    *out = key_json(vault_id(ctx), ctx->parent, bundle, versioned);
    json_decref(bundle);
    return 0;
}

static int
key_list(struct pgcmk_arm_ctx *ctx, json_t **items, struct pgcmk_err *err)
{
    int versions = ctx->id.n_types == 3;
    json_t *bundles = NULL, *b;
    size_t i;
    int rc = pgcmk_vault_key_list(ctx->parent, versions ? ctx->id.names[1] : NULL, &bundles, err);

    if (rc < 0)
        return -1;
    if (rc == 0)
        return key_not_found(ctx->id.names[1], err);
    *items = json_array();
    json_array_foreach(bundles, i, b) {
        json_array_append_new(*items, key_json(vault_id(ctx), ctx->parent, b, versions));
    }
    json_decref(bundles);
    return 0;
}

static struct pgcmk_arm_type keys_type = {
    .ns = "Microsoft.KeyVault",
    .type = "vaults/keys",
    .flags = ARM_T_EXTERNAL | ARM_T_NO_PATCH | ARM_T_NO_DELETE,
    .check_name = key_any_name,
    .ext_put = key_put,
    .ext_get = key_get,
    .ext_list = key_list,
};

static struct pgcmk_arm_type versions_type = {
    .ns = "Microsoft.KeyVault",
    .type = "vaults/keys/versions",
    .flags = ARM_T_EXTERNAL | ARM_T_NO_PUT | ARM_T_NO_DELETE,
    .ext_get = key_get,
    .ext_list = key_list,
};

void
pgcmk_keyvault_keys_register(void)
{
    const struct pgcmk_arm_type *vaults = pgcmk_arm_find_type("Microsoft.KeyVault", "vaults");

    if (vaults == NULL)
        PGCMK_BUG("the vaults type registers before its keys");
    keys_type.versions = versions_type.versions = vaults->versions; /* as Azure: one list */
    pgcmk_arm_register(&keys_type);
    pgcmk_arm_register(&versions_type);
}
