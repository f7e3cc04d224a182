/* keyvault.c - Microsoft.KeyVault/vaults, the management plane: vault properties with Azure's
 * defaults and rules (soft delete and purge protection are one-way, retention 7..90 and fixed,
 * names global), access policies (add/replace/remove), soft-deleted vaults (list, get, purge,
 * recover by createMode), scheduled purge on the virtual clock, checkNameAvailability. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/events.h"
#include "pgcmk/keyvault.h"
#include "pgcmk/log.h"
#include "pgcmk/pkey.h"
#include "pgcmk/schema.h"
#include "pgcmk/store.h"
#include "pgcmk/vault.h"
#include "pgcmk/wellknown.h"
#include "providers/internal.h"

#define DAY_MS (86400LL * 1000)

static const char *const vault_versions[] = {"2018-02-14-preview",
                                             "2018-02-14",
                                             "2019-09-01",
                                             "2021-04-01-preview",
                                             "2021-06-01-preview",
                                             "2021-10-01",
                                             "2021-11-01-preview",
                                             "2022-02-01-preview",
                                             "2022-07-01",
                                             "2022-11-01",
                                             "2023-02-01",
                                             "2023-07-01",
                                             NULL};

static const char *const perm_keys[] = {"all",
                                        "encrypt",
                                        "decrypt",
                                        "wrapKey",
                                        "unwrapKey",
                                        "sign",
                                        "verify",
                                        "get",
                                        "list",
                                        "create",
                                        "update",
                                        "import",
                                        "delete",
                                        "backup",
                                        "restore",
                                        "recover",
                                        "purge",
                                        "release",
                                        "rotate",
                                        "getrotationpolicy",
                                        "setrotationpolicy",
                                        NULL};
static const char *const perm_secrets[] = {"all",    "get",     "list",    "set",   "delete",
                                           "backup", "restore", "recover", "purge", NULL};
static const char *const perm_certs[] = {
    "all",           "get",         "list",       "delete",
    "create",        "import",      "update",     "managecontacts",
    "getissuers",    "listissuers", "setissuers", "deleteissuers",
    "manageissuers", "recover",     "purge",      "backup",
    "restore",       NULL};
static const char *const perm_storage[] = {
    "all",   "get",    "list",    "delete", "set",     "update", "regeneratekey", "recover",
    "purge", "backup", "restore", "setsas", "listsas", "getsas", "deletesas",     NULL};

static const struct {
    const char *name;
    const char *const *allowed;
} perm_kinds[] = {{"keys", perm_keys},
                  {"secrets", perm_secrets},
                  {"certificates", perm_certs},
                  {"storage", perm_storage}};

/* ^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$ without "--". */
static int
vault_check_name(const char *name, struct pgcmk_err *err)
{
    size_t n = strlen(name);
    int ok = n >= 3 && n <= 24 && isalpha((unsigned char)name[0]) &&
             isalnum((unsigned char)name[n - 1]) && strstr(name, "--") == NULL;

    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)name[i]) || name[i] == '-';
    if (ok)
        return 0;
    return pgcmk_err_set(err, PGCMK_E_VAULT_NAME_INVALID, "vaultName",
                         "The vault name '%.64s' is invalid. A vault's name must be between 3-24 "
                         "alphanumeric characters. The name must begin with a letter, end with a "
                         "letter or digit, and not contain consecutive hyphens.",
                         name);
}

static int
vault_bool(json_t *props, const char *key, int def)
{
    json_t *v = json_object_get(props, key);

    return json_is_boolean(v) ? json_is_true(v) : def;
}

void
pgcmk_keyvault_props(const json_t *vault, struct pgcmk_vault_props *p)
{
    json_t *props = json_object_get(vault, "properties");
    json_t *days = json_object_get(props, "softDeleteRetentionInDays");
    const char *sku = json_string_value(json_object_get(json_object_get(props, "sku"), "name"));

    p->soft_delete = vault_bool(props, "enableSoftDelete", 1);
    p->purge_protection = vault_bool(props, "enablePurgeProtection", 0);
    p->retention_days = PGCMK_VAULT_RETENTION_DAYS;
    if (json_is_integer(days) && json_integer_value(days) >= PGCMK_VAULT_RETENTION_MIN &&
        json_integer_value(days) <= PGCMK_VAULT_RETENTION_DAYS)
        p->retention_days = (int)json_integer_value(days);
    p->rbac = vault_bool(props, "enableRbacAuthorization", 0);
    p->premium = sku && strcasecmp(sku, "premium") == 0;
    p->access_policies = json_object_get(props, "accessPolicies");
    if (!json_is_array(p->access_policies))
        p->access_policies = NULL;
    p->tenant_id = json_string_value(json_object_get(props, "tenantId"));
    p->location = json_string_value(json_object_get(vault, "location"));
}

static int
vault_check_policies(json_t *list, struct pgcmk_err *err)
{
    size_t i;
    json_t *p;

    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.accessPolicies",
                             "The property 'accessPolicies' must be an array.");
    if (json_array_size(list) > 1024)
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.accessPolicies",
                             "A vault can have at most 1024 access policies.");
    json_array_foreach(list, i, p) {
        json_t *perms = json_object_get(p, "permissions");

        if (!json_is_string(json_object_get(p, "objectId")) ||
            !json_is_string(json_object_get(p, "tenantId")))
            return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.accessPolicies",
                                 "Access policy %zu needs 'tenantId' and 'objectId'.", i);
        if (!json_is_object(perms))
            return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.accessPolicies",
                                 "Access policy %zu needs a 'permissions' object.", i);
        for (size_t k = 0; k < PGCMK_ARRAY_LEN(perm_kinds); k++) {
            json_t *arr = json_object_get(perms, perm_kinds[k].name), *v;
            size_t j;

            if (arr == NULL || json_is_null(arr))
                continue;
            if (!json_is_array(arr))
                return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.accessPolicies",
                                     "permissions.%s must be an array.", perm_kinds[k].name);
            json_array_foreach(arr, j, v) {
                int ok = 0;

                for (int a = 0; json_is_string(v) && perm_kinds[k].allowed[a]; a++)
                    ok |= strcasecmp(json_string_value(v), perm_kinds[k].allowed[a]) == 0;
                if (!ok)
                    return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.accessPolicies",
                                         "The permission '%.32s' is not a valid %s permission.",
                                         json_is_string(v) ? json_string_value(v) : "?",
                                         perm_kinds[k].name);
            }
        }
    }
    return 0;
}

/* ---- soft-deleted vaults ---------------------------------------------------------------- */

static json_t *
dvault_json(sqlite3_stmt *st)
{
    char del[PGCMK_TIME_LEN], purge[PGCMK_TIME_LEN];
    const char *name = (const char *)sqlite3_column_text(st, 0);
    const char *loc = (const char *)sqlite3_column_text(st, 3);
    json_t *body = json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL);
    char *id = pgcmk_xasprintf("/subscriptions/%s/providers/Microsoft.KeyVault/locations/%s/"
                               "deletedVaults/%s",
                               sqlite3_column_text(st, 2), loc, name);
    json_t *o;

    pgcmk_time_format(sqlite3_column_int64(st, 5), del);
    pgcmk_time_format(sqlite3_column_int64(st, 6), purge);
    o = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:O, s:s, s:s, s:b}}", "id", id, "name", name,
                  "type", "Microsoft.KeyVault/deletedVaults", "properties", "vaultId",
                  sqlite3_column_text(st, 1), "location", loc, "tags",
                  json_object_get(body, "tags") ? json_object_get(body, "tags") : json_null(),
                  "deletionDate", del, "scheduledPurgeDate", purge, "purgeProtectionEnabled",
                  sqlite3_column_int(st, 7));
    json_decref(body);
    free(id);
    return o;
}

/* pgcmk_db_each row: a deleted vault, as ARM shows it. */
static int
dvault_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    json_array_append_new(arg, dvault_json(st));
    return 0;
}

static int
dvault_delete_row(struct pgcmk_db *db, const char *name, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_DVAULT_DELETE);
    int rc;

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "delete deleted vault", err);
}

/* pgcmk_db_each row: the name of a deleted vault due for purge. */
static int
purge_due_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    json_array_append_new(arg, json_string((const char *)sqlite3_column_text(st, 0)));
    return 0;
}

/* pgcmk_db_savepoint unit: purges one deleted vault. */
static int
purge_one_sp(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    return dvault_delete_row(db, json_string_value(ctx), err);
}

/* Purges every due vault, each in its own savepoint: one that fails is rolled back alone,
 * logged and left for the next pass; `names` keeps only the purged ones. */
static int
purge_due_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    json_t *names = ctx, *due = json_array(), *v;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_DVAULT_DUE);
    size_t i;

    sqlite3_bind_int64(st, 1, pgcmk_clock_now());
    if (pgcmk_db_each(db, st, purge_due_row, due, "find vaults due for purge", err) < 0) {
        json_decref(due);
        return -1;
    }
    json_array_foreach(due, i, v) {
        struct pgcmk_err e;

        if (pgcmk_db_savepoint(db, purge_one_sp, v, &e) == 0)
            json_array_append(names, v);
        else
            LOG_WARN("scheduled purge of vault %s failed: %s", json_string_value(v), e.message);
    }
    json_decref(due);
    return 0;
}

/* Purges every soft-deleted vault whose scheduledPurgeDate has passed on the virtual clock. */
static void
vault_purge_due(void)
{
    json_t *names = json_array(), *v;
    struct pgcmk_err err;
    size_t i;

    if (pgcmk_db_tx(pgcmk_db(), purge_due_tx, names, &err) == 0) {
        json_array_foreach(names, i, v) {
            struct pgcmk_event ev = {
                PGCMK_EV_VAULT_PURGED, json_string_value(v), NULL, NULL, NULL, NULL};

            LOG_INFO("vault %s purged at its scheduled purge date", json_string_value(v));
            pgcmk_events_publish(&ev);
        }
    } else {
        LOG_WARN("scheduled purge failed: %s", err.message);
    }
    json_decref(names);
}

static void
vault_on_clock(int64_t now, void *arg)
{
    PGCMK_UNUSED(now);
    PGCMK_UNUSED(arg);
    vault_purge_due();
}

/* ---- the vault type ----------------------------------------------------------------------- */

static int
vault_recover(struct pgcmk_arm_ctx *ctx, struct pgcmk_db *db, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_DVAULT_GET);
    json_t *old = NULL;
    int rc;

    sqlite3_bind_text(st, 1, ctx->id.names[0], -1, SQLITE_STATIC);
    rc = pgcmk_db_step(db, st, "read deleted vault", err);
    if (rc > 0)
        old = json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL);
    pgcmk_db_done(st);
    if (rc < 0)
        return -1;
    if (old == NULL)
        return pgcmk_err_set(err, PGCMK_E_DELETED_VAULT_NOT_FOUND, NULL,
                             "A deleted vault named '%.64s' could not be found to recover.",
                             ctx->id.names[0]);
    if (strcasecmp(json_string_value(json_object_get(old, "id")), ctx->id_text) != 0) {
        json_decref(old);
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, NULL,
                             "The deleted vault '%.64s' belonged to another resource group; "
                             "recover it there.",
                             ctx->id.names[0]);
    }
    /* The vault comes back as it was; only systemData moves on. */
    json_object_set(old, "systemData", json_object_get(ctx->body, "systemData"));
    json_object_update(ctx->body, old);
    json_decref(old);
    if (dvault_delete_row(db, ctx->id.names[0], err))
        return -1;
    {
        /* Databases that lost this vault check their keys again (after the commit). */
        char vault[64];
        struct pgcmk_event ev = {PGCMK_EV_VAULT_RECOVERED, vault, NULL, NULL, NULL, ctx->id_text};

        pgcmk_lower(vault, sizeof(vault), ctx->id.names[0]);
        pgcmk_events_publish(&ev);
    }
    return 0;
}

static int
vault_on_write(struct pgcmk_arm_ctx *ctx, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    json_t *props = json_object_get(ctx->body, "properties");
    json_t *old = json_object_get(ctx->existing, "properties");
    json_t *sku = json_object_get(props, "sku"), *v;
    struct pgcmk_vault_props was;
    const char *mode = json_string_value(json_object_get(props, "createMode"));
    sqlite3_stmt *st;
    char *uri;
    int rc, exists_deleted;

    pgcmk_pkey_rsa_prefill(); /* a vault is where keys get created: have some ready */
    pgcmk_keyvault_props(ctx->existing, &was);

    pgcmk_vault_invalidate(); /* policies, RBAC, sku, recovery: the data plane reads again */
    /* Names are global: another group or subscription may hold this one. */
    {
        char *other = NULL;

        rc = pgcmk_arm_resource_by_name(db, "Microsoft.KeyVault/vaults", ctx->id.names[0], &other,
                                        NULL, NULL, err);
        if (rc < 0)
            return -1;
        rc = rc > 0 && strcasecmp(other, ctx->id_text) != 0;
        free(other);
        if (rc)
            return pgcmk_err_set(err, PGCMK_E_VAULT_EXISTS, NULL,
                                 "The vault name '%.64s' is already in use. Vault names are "
                                 "globally unique so it is possible that the name is already "
                                 "taken.",
                                 ctx->id.names[0]);
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_DVAULT_GET);
    sqlite3_bind_text(st, 1, ctx->id.names[0], -1, SQLITE_STATIC);
    exists_deleted = pgcmk_db_step(db, st, "read deleted vault", err);
    pgcmk_db_done(st);
    if (exists_deleted < 0)
        return -1;
    if (mode && strcasecmp(mode, "recover") == 0 && ctx->existing == NULL) {
        if (vault_recover(ctx, db, err))
            return -1;
        return 0;
    }
    if (mode && strcasecmp(mode, "default") != 0 && strcasecmp(mode, "recover") != 0)
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.createMode",
                             "The createMode '%.32s' is not valid: use default or recover.", mode);
    if (exists_deleted && ctx->existing == NULL)
        return pgcmk_err_set(err, PGCMK_E_VAULT_DELETED_CONFLICT, NULL,
                             "A vault with the same name already exists in deleted state. You "
                             "need to either recover or purge existing key vault. Follow this link "
                             "https://go.microsoft.com/fwlink/?linkid=2149745 for more "
                             "information on soft delete.");
    /* tenantId and sku are required. */
    v = json_object_get(props, "tenantId");
    if (!json_is_string(v))
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.tenantId",
                             "The property 'tenantId' is required.");
    if (strcasecmp(json_string_value(v), PGCMK_TENANT_ID) != 0)
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.tenantId",
                             "The tenant '%.64s' is not the tenant of subscription '%s' (%s).",
                             json_string_value(v), ctx->id.sub, PGCMK_TENANT_ID);
    if (!json_is_object(sku) || !json_is_string(json_object_get(sku, "name")) ||
        (strcasecmp(json_string_value(json_object_get(sku, "name")), "standard") &&
         strcasecmp(json_string_value(json_object_get(sku, "name")), "premium")))
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.sku",
                             "The property 'sku' is required: {\"family\":\"A\",\"name\":"
                             "\"standard\"} or \"premium\".");
    json_object_set_new(sku, "family", json_string("A"));
    json_object_set_new(
        sku, "name",
        json_string(strcasecmp(json_string_value(json_object_get(sku, "name")), "premium")
                        ? "standard"
                        : "premium"));
    /* One-way switches. */
    if (json_is_false(json_object_get(props, "enableSoftDelete")))
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.enableSoftDelete",
                             "The property \"enableSoftDelete\" cannot be set to false. Enabling "
                             "the soft delete for a vault is an irreversible action.");
    if (json_is_false(json_object_get(props, "enablePurgeProtection")))
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.enablePurgeProtection",
                             "The property \"enablePurgeProtection\" cannot be set to false. "
                             "Enabling the purge protection for a vault is an irreversible "
                             "action.");
    if (was.purge_protection && !json_object_get(props, "enablePurgeProtection"))
        json_object_set_new(props, "enablePurgeProtection", json_true());
    v = json_object_get(props, "softDeleteRetentionInDays");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < PGCMK_VAULT_RETENTION_MIN ||
            json_integer_value(v) > PGCMK_VAULT_RETENTION_DAYS)
            return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.softDeleteRetentionInDays",
                                 "The property \"softDeleteRetentionInDays\" must be between 7 "
                                 "and 90.");
    }
    if (old) {
        if (v && !json_is_null(v) && json_integer_value(v) != was.retention_days)
            return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.softDeleteRetentionInDays",
                                 "The property \"softDeleteRetentionInDays\" cannot be changed "
                                 "after the vault has been created (it is %lld days).",
                                 (long long)was.retention_days);
        json_object_set_new(props, "softDeleteRetentionInDays", json_integer(was.retention_days));
    } else if (v == NULL || json_is_null(v)) {
        json_object_set_new(props, "softDeleteRetentionInDays",
                            json_integer(PGCMK_VAULT_RETENTION_DAYS));
    }
    if (vault_check_policies(json_object_get(props, "accessPolicies"), err))
        return -1;
    if (!json_is_array(json_object_get(props, "accessPolicies")))
        json_object_set_new(props, "accessPolicies", json_array());
    /* Azure's defaults. */
    json_object_set_new(props, "enableSoftDelete", json_true());
    json_object_set_new(props, "enabledForDeployment",
                        json_boolean(vault_bool(props, "enabledForDeployment", 0)));
    json_object_set_new(props, "enabledForDiskEncryption",
                        json_boolean(vault_bool(props, "enabledForDiskEncryption", 0)));
    json_object_set_new(props, "enabledForTemplateDeployment",
                        json_boolean(vault_bool(props, "enabledForTemplateDeployment", 0)));
    json_object_set_new(props, "enableRbacAuthorization",
                        json_boolean(vault_bool(props, "enableRbacAuthorization", 0)));
    if (!json_is_string(json_object_get(props, "publicNetworkAccess")))
        json_object_set_new(props, "publicNetworkAccess", json_string("Enabled"));
    json_object_del(props, "createMode");
    json_object_del(props, "vaultUri");
    uri = pgcmk_xasprintf("https://%s." PGCMK_VAULT_DNS_SUFFIX ":%d/", ctx->id.names[0],
                          pgcmk_public_port());
    pgcmk_lower(uri, strlen(uri) + 1, uri);
    json_object_set_new(props, "vaultUri", json_string(uri));
    free(uri);
    json_object_set_new(props, "provisioningState", json_string("Succeeded"));
    if (ctx->existing && !json_equal(json_object_get(old, "accessPolicies"),
                                     json_object_get(props, "accessPolicies"))) {
        struct pgcmk_event ev = {
            PGCMK_EV_POLICY_CHANGED, ctx->id.names[0], NULL, NULL, NULL, ctx->id_text};

        pgcmk_events_publish(&ev);
    }
    return 0;
}

static int
vault_on_delete(struct pgcmk_arm_ctx *ctx, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_DVAULT_INSERT);
    struct pgcmk_vault_props vp;
    char *body = json_dumps(ctx->existing, JSON_COMPACT);
    int64_t now = pgcmk_clock_now();
    struct pgcmk_event ev = {
        PGCMK_EV_VAULT_DELETED, ctx->id.names[0], NULL, NULL, NULL, ctx->id_text};
    int rc;

    pgcmk_keyvault_props(ctx->existing, &vp);
    pgcmk_vault_invalidate(); /* also on a resource-group delete, which runs this hook */
    sqlite3_bind_text(st, 1, ctx->id.names[0], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ctx->id_text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ctx->id.sub, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, json_string_value(json_object_get(ctx->existing, "location")), -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 5, body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int64(st, 7, now + (int64_t)vp.retention_days * DAY_MS);
    sqlite3_bind_int(st, 8, vp.purge_protection);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    free(body);
    if (rc != SQLITE_DONE)
        return pgcmk_db_fail(db, rc, "soft-delete vault", err);
    pgcmk_events_publish(&ev);
    return 0;
}

static const struct pgcmk_arm_type vault_type = {
    .ns = "Microsoft.KeyVault",
    .type = "vaults",
    .versions = vault_versions,
    .flags = ARM_T_TRACKED | ARM_T_SYNC_PUT,
    .check_name = vault_check_name,
    .on_write = vault_on_write,
    .on_delete = vault_on_delete,
};

/* ---- routes of their own ------------------------------------------------------------------ */

static int
kv_common(struct pgcmk_req *rq, struct pgcmk_err *err)
{
    return pgcmk_arm_check_sub(pgcmk_req_param(rq, "sub"), err) ||
                   pgcmk_arm_check_version(rq, "vaults", vault_versions, err)
               ? -1
               : 0;
}

static int
dvault_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct pgcmk_db *db;
    sqlite3_stmt *st;
    json_t *items;
    int rc;

    if (kv_common(rq, err))
        return -1;
    vault_purge_due();
    db = pgcmk_db();
    items = json_array();
    st = pgcmk_db_stmt(db, PGCMK_STMT_DVAULT_LIST);
    sqlite3_bind_text(st, 1, pgcmk_req_param(rq, "sub"), -1, SQLITE_STATIC);
    rc = pgcmk_db_each(db, st, dvault_row, items, "list deleted vaults", err);
    if (rc < 0) {
        json_decref(items);
        return -1;
    }
    return pgcmk_arm_list(rq, rs, items, err);
}

/* 1 found (fills *out), 0 absent (err set), -1 error. */
static int
dvault_find(struct pgcmk_req *rq, json_t **out, int *protected_, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_DVAULT_GET);
    const char *name = pgcmk_req_param(rq, "name"), *loc = pgcmk_req_param(rq, "loc");
    int rc;

    *out = NULL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW &&
        strcasecmp((const char *)sqlite3_column_text(st, 2), pgcmk_req_param(rq, "sub")) == 0 &&
        strcasecmp((const char *)sqlite3_column_text(st, 3), loc) == 0) {
        *out = dvault_json(st);
        *protected_ = sqlite3_column_int(st, 7);
        rc = 1;
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        rc = 0;
        pgcmk_err_set(err, PGCMK_E_DELETED_VAULT_NOT_FOUND, NULL,
                      "The deleted vault '%.64s' could not be found in location '%.32s'.", name,
                      loc);
    } else {
        rc = pgcmk_db_fail(db, rc, "read deleted vault", err);
    }
    pgcmk_db_done(st);
    return rc;
}

static int
dvault_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    json_t *o;
    int prot;

    if (kv_common(rq, err))
        return -1;
    vault_purge_due();
    if (dvault_find(rq, &o, &prot, err) != 1)
        return -1;
    pgcmk_resp_json(rs, 200, o);
    return 0;
}

static int
dvault_purge_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    return dvault_delete_row(db, ctx, err);
}

static int
dvault_purge(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = pgcmk_req_param(rq, "name");
    struct pgcmk_event ev = {PGCMK_EV_VAULT_PURGED, name, NULL, NULL, NULL, NULL};
    json_t *o;
    int prot = 0;

    if (kv_common(rq, err))
        return -1;
    if (dvault_find(rq, &o, &prot, err) != 1)
        return -1;
    json_decref(o);
    if (prot)
        return pgcmk_err_set(err, PGCMK_E_OPERATION_NOT_ALLOWED, NULL,
                             "Operation 'DeletedVaultPurge' is not allowed.");
    if (pgcmk_db_tx(pgcmk_db(), dvault_purge_tx, (void *)name, err))
        return -1;
    pgcmk_events_publish(&ev);
    pgcmk_resp_empty(rs, 200);
    return 0;
}

static int
kv_check_name(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *name = json_string_value(json_object_get(rq->json, "name"));
    const char *type = json_string_value(json_object_get(rq->json, "type"));
    struct pgcmk_db *db;
    sqlite3_stmt *st;
    int taken, deleted;
    struct pgcmk_err e2;

    if (kv_common(rq, err))
        return -1;
    if (name == NULL || type == NULL || strcasecmp(type, "Microsoft.KeyVault/vaults") != 0)
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, NULL,
                             "The body needs 'name' and 'type' = 'Microsoft.KeyVault/vaults'.");
    if (vault_check_name(name, &e2)) {
        pgcmk_resp_json(rs, 200,
                        json_pack("{s:b, s:s, s:s}", "nameAvailable", 0, "reason",
                                  "AccountNameInvalid", "message", e2.message));
        return 0;
    }
    db = pgcmk_db();
    taken =
        pgcmk_arm_resource_by_name(db, "Microsoft.KeyVault/vaults", name, NULL, NULL, NULL, err);
    if (taken < 0)
        return -1;
    st = pgcmk_db_stmt(db, PGCMK_STMT_DVAULT_GET);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    deleted = pgcmk_db_step(db, st, "read deleted vault", err);
    pgcmk_db_done(st);
    if (deleted < 0)
        return -1;
    if (taken || deleted) {
        char msg[256];

        snprintf(msg, sizeof(msg), "The vault name '%s' is already in use.%s", name,
                 deleted ? " A vault with this name is in the deleted state." : "");
        pgcmk_resp_json(rs, 200,
                        json_pack("{s:b, s:s, s:s}", "nameAvailable", 0, "reason", "AlreadyExists",
                                  "message", msg));
    } else {
        pgcmk_resp_json(rs, 200, json_pack("{s:b}", "nameAvailable", 1));
    }
    return 0;
}

/* ---- access policies: PUT .../vaults/{v}/accessPolicies/{add|replace|remove} --------------- */

static int
policy_same(json_t *a, json_t *b)
{
    const char *oa = json_string_value(json_object_get(a, "objectId"));
    const char *ob = json_string_value(json_object_get(b, "objectId"));
    const char *ta = json_string_value(json_object_get(a, "tenantId"));
    const char *tb = json_string_value(json_object_get(b, "tenantId"));

    return oa && ob && ta && tb && strcasecmp(oa, ob) == 0 && strcasecmp(ta, tb) == 0;
}

static int
perm_has(json_t *arr, const char *p)
{
    size_t i;
    json_t *v;

    json_array_foreach(arr, i, v) {
        if (json_is_string(v) && strcasecmp(json_string_value(v), p) == 0)
            return 1;
    }
    return 0;
}

/* op: 0 add (union), 1 remove (difference), 2 replace. */
static void
policy_merge(json_t *list, json_t *entry, int op)
{
    size_t i;
    json_t *cur;

    json_array_foreach(list, i, cur) {
        if (!policy_same(cur, entry))
            continue;
        if (op == 2) {
            json_array_set(list, i, entry);
            return;
        }
        for (size_t k = 0; k < PGCMK_ARRAY_LEN(perm_kinds); k++) {
            json_t *perms = json_object_get(cur, "permissions");
            json_t *have = json_object_get(perms, perm_kinds[k].name);
            json_t *given =
                json_object_get(json_object_get(entry, "permissions"), perm_kinds[k].name);
            json_t *out = json_array(), *v;
            size_t j;

            if (!json_is_array(have))
                have = NULL;
            if (op == 0) {
                json_array_foreach(have, j, v)
                    json_array_append(out, v);
                json_array_foreach(given, j, v) {
                    if (json_is_string(v) && !perm_has(out, json_string_value(v)))
                        json_array_append(out, v);
                }
            } else {
                json_array_foreach(have, j, v) {
                    if (!(json_is_string(v) && perm_has(given, json_string_value(v))))
                        json_array_append(out, v);
                }
            }
            json_object_set_new(perms, perm_kinds[k].name, out);
        }
        if (op == 1) {
            int empty = 1;

            for (size_t k = 0; k < PGCMK_ARRAY_LEN(perm_kinds); k++)
                empty &= json_array_size(json_object_get(json_object_get(cur, "permissions"),
                                                         perm_kinds[k].name)) == 0;
            if (empty)
                json_array_remove(list, i);
        }
        return;
    }
    if (op != 1)
        json_array_append(list, entry);
}

struct policy_op {
    struct pgcmk_req *rq;
    int op;
    char *id;
    json_t *result;
};

static int
policy_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct policy_op *p = ctx;
    json_t *vault = NULL, *props, *list, *given, *e;
    size_t i;
    int rc = pgcmk_arm_resource_get(db, p->id, &vault, err);

    pgcmk_vault_invalidate();
    if (rc <= 0)
        return rc < 0 ? -1
                      : pgcmk_err_set(err, PGCMK_E_RESOURCE_NOT_FOUND, NULL,
                                      "The Resource 'Microsoft.KeyVault/vaults/%.64s' under "
                                      "resource group '%.96s' was not found. For more details "
                                      "please go to https://aka.ms/ARMResourceNotFoundFix",
                                      pgcmk_req_param(p->rq, "v"), pgcmk_req_param(p->rq, "rg"));
    props = json_object_get(vault, "properties");
    list = json_object_get(props, "accessPolicies");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(props, "accessPolicies", list);
    }
    given = json_object_get(json_object_get(p->rq->json, "properties"), "accessPolicies");
    json_array_foreach(given, i, e) {
        if (!json_is_object(json_object_get(e, "permissions")))
            json_object_set_new(e, "permissions", json_object());
        policy_merge(list, e, p->op);
    }
    if (json_array_size(list) > 1024) {
        json_decref(vault);
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.accessPolicies",
                             "A vault can have at most 1024 access policies.");
    }
    json_object_set_new(vault, "systemData",
                        pgcmk_arm_system_data(p->rq, json_object_get(vault, "systemData")));
    rc = pgcmk_arm_resource_put(db, p->id, vault, err);
    p->result = json_incref(list);
    json_decref(vault);
    return rc;
}

static int
kv_policies(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    static const char *const ops[] = {"add", "remove", "replace"};
    const char *opname = pgcmk_req_param(rq, "op"), *vname = pgcmk_req_param(rq, "v");
    struct policy_op p = {rq, -1, NULL, NULL};
    json_t *given;
    char *id;

    if (kv_common(rq, err) ||
        pgcmk_arm_rg_usable(pgcmk_req_param(rq, "sub"), pgcmk_req_param(rq, "rg"), err))
        return -1;
    for (int i = 0; i < 3; i++)
        if (strcasecmp(opname, ops[i]) == 0)
            p.op = i;
    if (p.op < 0)
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "operationKind",
                             "The access policy operation '%.16s' is not valid: use add, replace "
                             "or remove.",
                             opname);
    if (pgcmk_schema_check("Microsoft.KeyVault/vaults/accessPolicies", rq->api_version, rq->json, 0,
                           err))
        return -1;
    given = json_object_get(json_object_get(rq->json, "properties"), "accessPolicies");
    if (!json_is_array(given))
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "properties.accessPolicies",
                             "The body needs properties.accessPolicies (an array).");
    if (vault_check_policies(given, err))
        return -1;
    p.id = pgcmk_xasprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.KeyVault/"
                           "vaults/%s",
                           pgcmk_req_param(rq, "sub"), pgcmk_req_param(rq, "rg"), vname);
    if (pgcmk_db_tx(pgcmk_db(), policy_tx, &p, err)) {
        free(p.id);
        return -1;
    }
    {
        struct pgcmk_event ev = {PGCMK_EV_POLICY_CHANGED, vname, NULL, NULL, NULL, p.id};

        pgcmk_events_publish(&ev);
    }
    id = pgcmk_xasprintf("%s/accessPolicies/%s", p.id, ops[p.op]);
    pgcmk_resp_json(rs, 200,
                    json_pack("{s:s, s:s, s:s, s:{s:o}}", "id", id, "name", ops[p.op], "type",
                              "Microsoft.KeyVault/vaults/accessPolicies", "properties",
                              "accessPolicies", p.result));
    free(id);
    free(p.id);
    return 0;
}

/* ---- managed HSMs: none are emulated, so their lists are empty ---------------------------- */

/* The api-versions of Microsoft.KeyVault/managedHSMs; deletedManagedHSMs starts one later. */
static const char *const mhsm_versions[] = {"2020-04-01-preview",
                                            "2021-04-01-preview",
                                            "2021-06-01-preview",
                                            "2021-10-01",
                                            "2021-11-01-preview",
                                            "2022-02-01-preview",
                                            "2022-07-01",
                                            "2022-11-01",
                                            "2023-02-01",
                                            "2023-07-01",
                                            NULL};

static int
mhsm_list_empty(struct pgcmk_req *rq, struct pgcmk_resp *rs, const char *type,
                const char *const *versions, struct pgcmk_err *err)
{
    const char *sub = pgcmk_req_param(rq, "sub"), *rg = pgcmk_req_param(rq, "rg");

    if (pgcmk_arm_check_sub(sub, err) || pgcmk_arm_check_version(rq, type, versions, err) ||
        (rg && pgcmk_arm_rg_usable(sub, rg, err)))
        return -1;
    return pgcmk_arm_list(rq, rs, json_array(), err);
}

static int
mhsm_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return mhsm_list_empty(rq, rs, "Microsoft.KeyVault/managedHSMs", mhsm_versions, err);
}

static int
mhsm_deleted_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return mhsm_list_empty(rq, rs, "Microsoft.KeyVault/deletedManagedHSMs", mhsm_versions + 1, err);
}

#define KV_SUB "/subscriptions/{sub}/providers/Microsoft.KeyVault"
static const struct pgcmk_route kv_routes[] = {
    {"PUT",
     "/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.KeyVault/vaults/{v}/"
     "accessPolicies/{op}",
     PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON | ROUTE_F_APIVER, NULL, kv_policies},
    {"GET", KV_SUB "/deletedVaults", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER,
     "$top,$skiptoken", dvault_list},
    {"GET", KV_SUB "/locations/{loc}/deletedVaults/{name}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
     ROUTE_F_APIVER, NULL, dvault_get},
    {"POST", KV_SUB "/locations/{loc}/deletedVaults/{name}/purge", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
     ROUTE_F_APIVER, NULL, dvault_purge},
    {"POST", KV_SUB "/checkNameAvailability", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
     ROUTE_F_JSON | ROUTE_F_APIVER, NULL, kv_check_name},
    {"GET", KV_SUB "/managedHSMs", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER,
     "$top,$skiptoken", mhsm_list},
    {"GET", "/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.KeyVault/managedHSMs",
     PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, "$top,$skiptoken", mhsm_list},
    {"GET", KV_SUB "/deletedManagedHSMs", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER,
     "$top,$skiptoken", mhsm_deleted_list},
};

void
pgcmk_keyvault_register(void)
{
    pgcmk_arm_register(&vault_type);
    pgcmk_router_add(kv_routes, PGCMK_ARRAY_LEN(kv_routes));
    if (pgcmk_clock_listen(vault_on_clock, NULL))
        LOG_WARN("no room for the vault purge clock listener");
}
