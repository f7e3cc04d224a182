/* keyvault.h - what the Key Vault management plane (src/providers/keyvault.c) tells other
 * modules about a vault: its properties, decoded once, with one set of defaults. */
#ifndef PGCMK_KEYVAULT_H
#define PGCMK_KEYVAULT_H

#include <jansson.h>

/* Azure's defaults for what a vault body does not say. */
#define PGCMK_VAULT_RETENTION_DAYS 90 /* softDeleteRetentionInDays */
#define PGCMK_VAULT_RETENTION_MIN  7

/* A vault's properties as every reader sees them. */
struct pgcmk_vault_props {
    int soft_delete;      /* enableSoftDelete; default 1 (it cannot be turned off) */
    int purge_protection; /* enablePurgeProtection; default 0 */
    int retention_days;   /* softDeleteRetentionInDays; default 90, also for values out of 7..90 */
    int rbac;             /* enableRbacAuthorization; default 0 (access policies decide) */
    int premium;          /* sku.name is "premium" (case-insensitive); default standard */
    json_t *access_policies; /* accessPolicies (borrowed from the body), or NULL: none */
    const char *tenant_id;   /* tenantId, or NULL */
    const char *location;    /* the resource's location, or NULL */
};

/* Decodes a vault's ARM resource ({"location", "properties": {...}}) into *p. A NULL body, or
 * one without properties, gives the defaults. The borrowed members live as long as the body. */
void pgcmk_keyvault_props(const json_t *vault, struct pgcmk_vault_props *p);

#endif
