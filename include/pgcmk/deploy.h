/* deploy.h - ARM template deployments: the template language (parse, parameters, variables,
 * expressions and functions, copy loops, conditions, dependencies, outputs) and the deployments
 * API that executes templates through the same provider entry points as a PUT.
 *
 * The language half (src/deploy/template.c, expr.c, ...) knows nothing of HTTP or the store: the
 * executor gives it a scope and callbacks for reference()/list*(). Every failure is an err with
 * code PGCMK_E_INVALID_TEMPLATE (or InvalidRequestContent for unparsable JSON) and a message that
 * names the place ("... at line 12 column 5" for JSON, "resources[2].properties.x" and the
 * expression for evaluation). Evaluation is bounded (depth, sizes, loop counts, total steps). */
#ifndef PGCMK_DEPLOY_H
#define PGCMK_DEPLOY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "pgcmk/err.h"

/* ---- JSON with comments -------------------------------------------------------------------- */

/* Parses JSON that may contain // and block comments (and nothing else non-standard). On error:
 * -1 / NULL with InvalidRequestContent and "line L column C" of the problem. */
json_t *pgcmk_jsonc_parse(const char *text, size_t len, struct pgcmk_err *err);

/* A deployment PUT/validate/whatIf body as real clients send it: plain JSON, or the az CLI's form
 * where "template" is an unquoted key followed by the raw template file (JSONC) (real-clients.md
 * 4.4). "template" given as a JSON string is parsed too. Returns the body with
 * properties.template an object. */
json_t *pgcmk_deploy_parse_body(const char *text, size_t len, struct pgcmk_err *err);

/* Where each object, array and string of a parsed document starts (line and column, for template
 * errors "at line '12' and column '9'"). Valid while the parsed JSON is alive and unchanged;
 * positions inside properties.template are relative to the template file. */
struct pgcmk_jsonc_pos;
json_t *pgcmk_jsonc_parse_pos(const char *text, size_t len, struct pgcmk_jsonc_pos **pos,
                              struct pgcmk_err *err);
json_t *pgcmk_deploy_parse_body_pos(const char *text, size_t len, struct pgcmk_jsonc_pos **pos,
                                    struct pgcmk_err *err);
void pgcmk_jsonc_pos_free(struct pgcmk_jsonc_pos *pos);

/* ---- templates ----------------------------------------------------------------------------- */

/* Where a template runs. */
struct pgcmk_tpl_scope {
    const char *subscription_id;
    const char *tenant_id;
    const char *resource_group; /* NULL at subscription scope */
    const char *rg_location;    /* the group's location (resourceGroup().location) */
    const char *deployment_name;
    int64_t now_ms; /* utcNow() (virtual clock), allowed in parameter defaults only */
};

/* What the executor answers for reference() and list*(). `full` is reference(..., 'Full').
 * Return a new reference (the resource body; for non-full: its properties) or NULL with err. */
struct pgcmk_tpl_host {
    json_t *(*reference)(void *ctx, const char *resource_id, const char *api_version, int full,
                         struct pgcmk_err *err);
    json_t *(*list)(void *ctx, const char *resource_id, const char *function,
                    const char *api_version, const json_t *body, struct pgcmk_err *err);
    void *ctx;
};

struct pgcmk_tpl; /* a loaded template */

/* One resource instance after copy expansion. Strings are owned by the template. */
struct pgcmk_tpl_resource {
    const char *symbol;      /* "resources[3]" or "resources[3][copyIndex 2]" for messages */
    const char *id;          /* full resource id */
    const char *type;        /* "Microsoft.KeyVault/vaults/keys" */
    const char *name;        /* "kv1/k1" as written (evaluated) */
    const char *api_version; /* evaluated */
    int condition;           /* 0 when condition() is false: skipped, reported as such */
    int nested_deployment;   /* type Microsoft.Resources/deployments */
    size_t n_deps;
    const size_t *deps; /* indexes of resources this one waits for (explicit + reference()) */
    const char *resource_group;  /* where it goes (nested deployments: their resourceGroup) */
    const char *subscription_id; /* likewise */
};

/* Loads a template with parameter values ({"name": {"value": ...}} as in deployments, or plain
 * {"name": value}): checks $schema/contentVersion, types (case-insensitive names), allowed
 * values, min/max (value, length), defaults (which may use expressions); evaluates variables and
 * user functions; expands copy loops and resource names/ids/types/apiVersions/conditions; resolves
 * dependsOn (by name or id; unknown targets and cycles are errors) and reference() dependencies.
 * Child resources nested under "resources" of a resource are flattened with full names. */
struct pgcmk_tpl *pgcmk_tpl_load(const json_t *template_obj, const json_t *parameters,
                                 const struct pgcmk_tpl_scope *scope, struct pgcmk_err *err);
/* The same with the positions from pgcmk_deploy_parse_body_pos/pgcmk_jsonc_parse_pos (NULL: none),
 * so errors name the template line and column; pos is only used during the call. */
struct pgcmk_tpl *pgcmk_tpl_load_pos(const json_t *template_obj, const json_t *parameters,
                                     const struct pgcmk_tpl_scope *scope,
                                     const struct pgcmk_jsonc_pos *pos, struct pgcmk_err *err);
void pgcmk_tpl_free(struct pgcmk_tpl *t);

size_t pgcmk_tpl_count(const struct pgcmk_tpl *t);
const struct pgcmk_tpl_resource *pgcmk_tpl_resource(const struct pgcmk_tpl *t, size_t i);

/* The resource's body as a PUT would send it (location, tags, sku, kind, identity, properties,
 * ...; without type/apiVersion/name/dependsOn/condition/copy), evaluated now, with reference()
 * answered by the host. For nested deployments: the inner deployment's properties with the
 * inner template and its parameters evaluated in the right scope (expressionEvaluationOptions
 * inner|outer), and "resourceGroup"/"subscriptionId" at the top when the resource names them.
 * New reference or NULL with err. */
json_t *pgcmk_tpl_render(struct pgcmk_tpl *t, size_t i, const struct pgcmk_tpl_host *host,
                         struct pgcmk_err *err);

/* The outputs {"name": {"type": "String", "value": ...}} evaluated with the host. */
json_t *pgcmk_tpl_outputs(struct pgcmk_tpl *t, const struct pgcmk_tpl_host *host,
                          struct pgcmk_err *err);

/* The parameters as the deployment echoes them: {"name": {"type": "String", "value": ...}},
 * secure ones without their value. */
json_t *pgcmk_tpl_parameters(const struct pgcmk_tpl *t);

/* uniqueString(...) exactly as Azure computes it (13 characters): the parts joined with '-',
 * hashed with ResourceStack's 64-bit Murmur variant, base32 (a-z2-7) of the top 65 bits. */
void pgcmk_tpl_unique_string(const char *const *parts, size_t n, char out[14]);
/* guid(...): a version-5 UUID (SHA-1) of the parts joined with '-' in namespace
 * 11fb06fb-712d-4ddd-98c7-e71bbd588830, lower case. */
void pgcmk_tpl_guid(const char *const *parts, size_t n, char out[37]);

/* ---- the deployments API --------------------------------------------------------------------- */

/* Adds the deployments routes (resource group and subscription scope). */
struct pgcmk_cfg;
void pgcmk_deploy_init(const struct pgcmk_cfg *cfg);

#endif
