/* arm.h - the generic ARM engine: resource ids, api-versions, the provider table, generic CRUD,
 * long-running operations, lists with nextLink, ETags and systemData, resource groups. */
#ifndef PGCMK_ARM_H
#define PGCMK_ARM_H

#include <stddef.h>
#include <jansson.h>

#include "pgcmk/core.h"
#include "pgcmk/err.h"
#include "pgcmk/http.h"
#include "pgcmk/store.h"

/* ---- resource ids ---------------------------------------------------------------------- */

#define PGCMK_ID_MAX_TYPES 4

/* /subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{t1}/{n1}[/{t2}/{n2}...] */
struct pgcmk_arm_id {
    char sub[64];
    char rg[96];
    char ns[64];
    int n_types;
    char types[PGCMK_ID_MAX_TYPES][64];
    char names[PGCMK_ID_MAX_TYPES][264];
};

/* Parses a full resource id (case-insensitive keywords). 0 or -1 with err (400). */
int pgcmk_arm_id_parse(const char *id, struct pgcmk_arm_id *out, struct pgcmk_err *err) PGCMK_WUR;
/* "Microsoft.KeyVault/vaults/keys" */
void pgcmk_arm_id_type(const struct pgcmk_arm_id *id, char *out, size_t cap);
/* The canonical id text: /subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/... */
char *pgcmk_arm_id_format(const struct pgcmk_arm_id *id);

/* ---- api-versions ---------------------------------------------------------------------- */

/* Microsoft.Resources (resource groups, subscriptions, deployments): InvalidApiVersionParameter
 * with x-ms-failure-cause: gateway. */
int pgcmk_arm_check_resources_version(struct pgcmk_req *rq, struct pgcmk_resp *rs,
                                      struct pgcmk_err *err) PGCMK_WUR;
/* A provider's type: NoRegisteredProviderFound listing the supported versions. */
int pgcmk_arm_check_version(struct pgcmk_req *rq, const char *type_name,
                            const char *const *versions, struct pgcmk_err *err) PGCMK_WUR;
int pgcmk_arm_version_listed(const char *v, const char *const *versions);

/* ---- subscriptions and resource groups --------------------------------------------------- */

/* 0 when {sub} is the emulator's subscription; else InvalidSubscriptionId / SubscriptionNotFound.
 */
int pgcmk_arm_check_sub(const char *sub, struct pgcmk_err *err) PGCMK_WUR;
/* 0 when the group exists and is not being deleted (ResourceGroupNotFound / BeingDeleted). */
int pgcmk_arm_rg_usable(const char *sub, const char *rg, struct pgcmk_err *err) PGCMK_WUR;
/* The group's location, or NULL. Caller frees. */
char *pgcmk_arm_rg_location(const char *sub, const char *rg);

/* ---- the provider table ------------------------------------------------------------------ */

#define ARM_T_TRACKED  0x01u /* location required, tags, listed under resources */
#define ARM_T_SYNC_PUT 0x02u /* PUT answers 201/200 with the final body (no LRO) */
#define ARM_T_IDENTITY 0x04u /* takes the managed-identity block ("identity": {...}) */
#define ARM_T_ASYNC    0x08u /* PUT is an LRO: 201/200 + Azure-AsyncOperation, then provision() */
#define ARM_T_ASYNC_DELETE                                                                         \
    0x10u /* DELETE is an LRO: 202 + Azure-AsyncOperation + Location; the resource goes on a       \
             worker and the poll ends 200 (Location: 204), or 204 at once when nothing exists */
#define ARM_T_ACCEPTED                                                                             \
    0x20u /* an ARM_T_ASYNC PUT answers 202 with no body (every PUT, or those accepted() picks) */
#define ARM_T_DEFER_STORE                                                                          \
    0x40u /* an ARM_T_ASYNC PUT stores nothing: provision_put() validates on the worker and        \
             writes the resource (pgcmk_arm_resource_save) when it succeeds */
#define ARM_T_NO_PUT    0x80u  /* read-only type: PUT and PATCH answer 405 */
#define ARM_T_NO_PATCH  0x100u /* PATCH answers 405 */
#define ARM_T_NO_DELETE 0x200u /* DELETE answers 405 */
#define ARM_T_ACCEPTED_BODY                                                                        \
    0x800u /* with ARM_T_ACCEPTED: the 202 carries the stored body (as 201/200 would) */
#define ARM_T_EXTERNAL                                                                             \
    0x400u /* a child the provider keeps in its own tables: the engine resolves the request and    \
              checks the parent, then calls ext_put/ext_get/ext_list (nothing in `resources`) */

struct pgcmk_arm_type;

/* What a provider's hooks get: the parsed id, the request, the stored and the new bodies. */
struct pgcmk_arm_ctx {
    struct pgcmk_req *rq;
    const struct pgcmk_arm_type *type;
    struct pgcmk_arm_id id;
    char *id_text;    /* canonical id */
    json_t *existing; /* the stored body, or NULL when creating */
    json_t *body;     /* the new representation the engine built (id, name, type, location, tags,
                         identity, properties, systemData); hooks edit it in place */
    json_t *parent;   /* ARM_T_EXTERNAL: the nearest stored ancestor's body (the engine's) */
};

struct pgcmk_arm_type {
    const char *ns;              /* "Microsoft.ManagedIdentity" */
    const char *type;            /* "userAssignedIdentities" or "vaults/keys" */
    const char *const *versions; /* NULL-terminated, newest last */
    unsigned flags;
    /* Name rule: returns 0 if the name is valid, else -1 with err. NULL = 1..128 of [\w.-]. */
    int (*check_name)(const char *name, struct pgcmk_err *err);
    /* PUT/PATCH: validate and complete ctx->body. Runs inside the store transaction. */
    int (*on_write)(struct pgcmk_arm_ctx *ctx, struct pgcmk_err *err);
    /* DELETE: provider clean-up inside the transaction (may refuse with err). */
    int (*on_delete)(struct pgcmk_arm_ctx *ctx, struct pgcmk_err *err);
    /* ARM_T_ASYNC: the long part of a PUT, on a worker thread after the write committed (the
     * stored body then says provisioningState "Provisioning" or "Updating"). Returns 0 when the
     * resource is ready, or -1 with err, which fails the operation; either way the hook records
     * the resource's final state itself. */
    int (*provision)(const char *id, int created, struct pgcmk_err *err);
    /* After a DELETE committed (outside the transaction): forget in-memory state. */
    void (*after_delete)(const char *id);
    /* ARM_T_ACCEPTED: 1 when this PUT (ctx after on_write) answers 202 with no body; NULL = every
     * PUT of the type does. */
    int (*accepted)(const struct pgcmk_arm_ctx *ctx);
    /* ARM_T_DEFER_STORE: the worker part of a PUT that stored nothing; `body` is what on_write
     * completed. 0 when the resource was written (the operation answers it), else -1 with err. */
    int (*provision_put)(const char *id, const json_t *body, struct pgcmk_err *err);
    /* ARM_T_EXTERNAL: PUT answers *status (200/201) with *out; GET fills *out (-1 with err when
     * absent); a list fills *items (an array) for the collection under ctx->parent. */
    int (*ext_put)(struct pgcmk_arm_ctx *ctx, json_t **out, int *status, struct pgcmk_err *err);
    int (*ext_get)(struct pgcmk_arm_ctx *ctx, json_t **out, struct pgcmk_err *err);
    int (*ext_list)(struct pgcmk_arm_ctx *ctx, json_t **items, struct pgcmk_err *err);
};

void pgcmk_arm_register(const struct pgcmk_arm_type *t);

/* The managed-identity block of ARM_T_IDENTITY types is completed by a hook the identity provider
 * installs (system-assigned principals, user-assigned look-ups): on write it fills
 * ctx->body.identity from the request and the stored resource; on delete (body NULL) it removes
 * the system-assigned principal. Runs inside the store transaction. */
typedef int (*pgcmk_arm_identity_fn)(struct pgcmk_arm_ctx *ctx, int deleting,
                                     struct pgcmk_err *err);
void pgcmk_arm_set_identity_hook(pgcmk_arm_identity_fn fn);
/* The registered type for namespace + type path (case-insensitive), or NULL. */
const struct pgcmk_arm_type *pgcmk_arm_find_type(const char *ns, const char *type);
/* 1 if any registered type has this namespace. */
int pgcmk_arm_known_namespace(const char *ns);
/* Registered types, for GET /providers. */
size_t pgcmk_arm_types(const struct pgcmk_arm_type *const **out);

/* Reads a stored resource by id (case-insensitive): 1 found (*body new), 0 absent, -1 error. */
int pgcmk_arm_resource_get(struct pgcmk_db *db, const char *id, json_t **body,
                           struct pgcmk_err *err) PGCMK_WUR;
/* Rewrites a stored resource's body (inside the caller's transaction); a new etag. */
int pgcmk_arm_resource_put(struct pgcmk_db *db, const char *id, const json_t *body,
                           struct pgcmk_err *err) PGCMK_WUR;
/* Writes a resource a provider's worker made (inside the caller's transaction): creates it (its
 * parent, group and type from the id) or rewrites it. 0 or -1 with err. */
int pgcmk_arm_resource_save(struct pgcmk_db *db, const char *id, const json_t *body,
                            struct pgcmk_err *err) PGCMK_WUR;
/* Removes a resource and its children from the store (no hooks; inside the caller's tx). */
int pgcmk_arm_resource_remove(struct pgcmk_db *db, const char *id, struct pgcmk_err *err) PGCMK_WUR;
/* The stored bodies of `parent`'s children of type `type` ("Microsoft.X/a/b"): *items a new
 * array. 0 or -1 with err. */
int pgcmk_arm_resource_children(struct pgcmk_db *db, const char *parent, const char *type,
                                json_t **items, struct pgcmk_err *err) PGCMK_WUR;
/* A resource of `type` by name alone, in any group or subscription (names that are global):
 * 1 found (*id, *etag and *body set when asked; caller frees), 0 absent, -1 error. */
int pgcmk_arm_resource_by_name(struct pgcmk_db *db, const char *type, const char *name, char **id,
                               char **etag, json_t **body, struct pgcmk_err *err) PGCMK_WUR;

/* ---- long-running operations ------------------------------------------------------------- */

/* What a job returns: the final HTTP answer of the operation, or an error. */
struct pgcmk_lro_result {
    int status;   /* 200/201/204 when it succeeded */
    json_t *body; /* stolen; may be NULL */
    struct pgcmk_err err;
    int failed;
    json_t *details; /* stolen; error.details of a failed operation, or NULL */
};

typedef void (*pgcmk_lro_fn)(void *arg, struct pgcmk_lro_result *out);

/* Starts an operation: records it, queues fn on the worker pool, and adds Azure-AsyncOperation,
 * Location and Retry-After to rs. `ns`/`location` shape the URLs
 * ({base}/subscriptions/{sub}/providers/{ns}/locations/{loc}/azureAsyncOperation/{id}); with
 * ns == NULL the ARM form {base}/subscriptions/{sub}/operationresults/{id} is used. */
int pgcmk_lro_start(struct pgcmk_req *rq, struct pgcmk_resp *rs, const char *sub, const char *ns,
                    const char *location, const char *kind, const char *resource_id,
                    pgcmk_lro_fn fn, void *arg, struct pgcmk_err *err) PGCMK_WUR;
/* Waits until operation `op_id` ends or timeout_ms passes. Returns 1 succeeded, 0 failed (err
 * filled from the operation's error, *details set to its error.details or NULL), -1 timeout or
 * no such operation (err filled). */
int pgcmk_lro_wait(const char *op_id, int64_t timeout_ms, json_t **details, struct pgcmk_err *err);
/* The operation id at the end of an Azure-AsyncOperation or Location URL (before '?'), or NULL. */
char *pgcmk_lro_id_from_url(const char *url);

/* Marks operations left InProgress by a previous process as Failed. */
void pgcmk_lro_recover(void);

/* ---- locations --------------------------------------------------------------------------- */

/* 1 when `loc` names an Azure region ("eastus" or "East US"; case and spaces ignored). */
int pgcmk_arm_location_ok(const char *loc);
/* "eastus,eastus2,..." for error texts. */
const char *pgcmk_arm_locations_text(void);

/* ---- responses ------------------------------------------------------------------------- */

/* {"createdBy":...,"createdAt":...} for the caller now (virtual clock). */
json_t *pgcmk_arm_system_data(const struct pgcmk_req *rq, const json_t *previous);
/* If-Match / If-None-Match against a resource's etag (NULL when it does not exist). */
int pgcmk_arm_check_preconditions(const struct pgcmk_req *rq, const char *etag,
                                  struct pgcmk_err *err) PGCMK_WUR;
/* Pages `items` (stolen) by $skiptoken/$top and answers {"value":[...],"nextLink":...}. */
int pgcmk_arm_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, json_t *items,
                   struct pgcmk_err *err) PGCMK_WUR;
/* Sends stored JSON text as it is (the GET fast path). */
void pgcmk_arm_send_stored(struct pgcmk_resp *rs, int status, const char *json_text);

/* ---- module entry points ----------------------------------------------------------------- */

/* Adds the ARM routes (subscriptions, groups, providers, resources, operations, metadata). */
void pgcmk_arm_init(void);

#endif
