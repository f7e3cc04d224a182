/* meta.c - what clients ask before they touch a resource: subscriptions, tenants, providers,
 * the generic resources list, cloud metadata; and pgcmk_arm_init that adds every ARM route. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/store.h"
#include "pgcmk/wellknown.h"
#include "arm/internal.h"

static json_t *
meta_subscription(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:s}", "id",
                     "/subscriptions/" PGCMK_SUBSCRIPTION_ID, "subscriptionId",
                     PGCMK_SUBSCRIPTION_ID, "tenantId", PGCMK_TENANT_ID, "displayName",
                     PGCMK_SUBSCRIPTION_NAME, "state", "Enabled", "subscriptionPolicies",
                     "locationPlacementId", "Public_2014-09-01", "quotaId", "PayAsYouGo_2014-09-01",
                     "spendingLimit", "Off", "authorizationSource", "RoleBased");
}

static int
meta_subscriptions(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    if (pgcmk_arm_check_resources_version(rq, rs, err))
        return -1;
    pgcmk_resp_json(rs, 200,
                    json_pack("{s:[o], s:{s:s, s:i}}", "value", meta_subscription(), "count",
                              "type", "Total", "value", 1));
    return 0;
}

static int
meta_subscription_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    if (pgcmk_arm_check_sub(pgcmk_req_param(rq, "sub"), err) ||
        pgcmk_arm_check_resources_version(rq, rs, err))
        return -1;
    pgcmk_resp_json(rs, 200, meta_subscription());
    return 0;
}

static int
meta_tenants(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    if (pgcmk_arm_check_resources_version(rq, rs, err))
        return -1;
    pgcmk_resp_json(rs, 200,
                    json_pack("{s:[{s:s, s:s, s:s, s:s}]}", "value", "id",
                              "/tenants/" PGCMK_TENANT_ID, "tenantId", PGCMK_TENANT_ID,
                              "tenantCategory", "Home", "displayName", "pgcmk"));
    return 0;
}

static const char *const meta_locations[] = {"East US",     "East US 2",    "West US", "West US 2",
                                             "West Europe", "North Europe", NULL};

/* One provider object: {namespace, registrationState, resourceTypes[...]}. */
static json_t *
meta_provider(const char *ns)
{
    const struct pgcmk_arm_type *const *types;
    size_t n = pgcmk_arm_types(&types);
    json_t *rts = json_array(), *p, *locs = json_array();
    const char *canon = ns;

    for (int i = 0; meta_locations[i]; i++)
        json_array_append_new(locs, json_string(meta_locations[i]));
    for (size_t i = 0; i < n; i++) {
        json_t *versions;
        int nv = 0;

        if (strcasecmp(types[i]->ns, ns) != 0)
            continue;
        versions = json_array();
        canon = types[i]->ns;
        while (types[i]->versions[nv])
            nv++;
        for (int v = nv - 1; v >= 0; v--)
            json_array_append_new(versions, json_string(types[i]->versions[v]));
        json_array_append_new(rts, json_pack("{s:s, s:O, s:o, s:s}", "resourceType", types[i]->type,
                                             "locations", locs, "apiVersions", versions,
                                             "capabilities", "None"));
    }
    p = json_pack("{s:s, s:s, s:s, s:o}", "id", "", "namespace", canon, "registrationState",
                  "Registered", "resourceTypes", rts);
    {
        char *id = pgcmk_xasprintf("/subscriptions/%s/providers/%s", PGCMK_SUBSCRIPTION_ID, canon);

        json_object_set_new(p, "id", json_string(id));
        free(id);
    }
    json_decref(locs);
    return p;
}

static int
meta_providers(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const struct pgcmk_arm_type *const *types;
    size_t n = pgcmk_arm_types(&types);
    json_t *items = json_array();

    if (pgcmk_arm_check_sub(pgcmk_req_param(rq, "sub"), err) ||
        pgcmk_arm_check_resources_version(rq, rs, err)) {
        json_decref(items);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int seen = 0;

        for (size_t j = 0; j < i; j++)
            seen |= strcasecmp(types[j]->ns, types[i]->ns) == 0;
        if (!seen)
            json_array_append_new(items, meta_provider(types[i]->ns));
    }
    return pgcmk_arm_list(rq, rs, items, err);
}

static int
meta_provider_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *ns = pgcmk_req_param(rq, "ns");

    if (pgcmk_arm_check_sub(pgcmk_req_param(rq, "sub"), err) ||
        pgcmk_arm_check_resources_version(rq, rs, err))
        return -1;
    if (!pgcmk_arm_known_namespace(ns))
        return pgcmk_err_set(err, PGCMK_E_INVALID_NAMESPACE, NULL,
                             "The resource namespace '%.64s' is invalid.", ns);
    pgcmk_resp_json(rs, 200, meta_provider(ns));
    return 0;
}

/* POST /providers/{ns}/register: every provider is always registered. */
static int
meta_provider_register(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return meta_provider_get(rq, rs, err);
}

/* $filter=resourceType eq 'X' [and name eq 'Y']: the subset ARM clients send. */
static int
meta_filter_parse(const char *filter, char *type, size_t tcap, char *name, size_t ncap,
                  struct pgcmk_err *err)
{
    const char *p = filter;

    type[0] = name[0] = '\0';
    while (p && *p) {
        char key[32], val[256];
        int used = 0;

        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        if (sscanf(p, "%31[A-Za-z] eq '%255[^']'%n", key, val, &used) != 2 || used == 0)
            goto bad;
        if (strcasecmp(key, "resourceType") == 0)
            snprintf(type, tcap, "%s", val);
        else if (strcasecmp(key, "name") == 0)
            snprintf(name, ncap, "%s", val);
        else
            goto bad;
        p += used;
        while (*p == ' ')
            p++;
        if (strncasecmp(p, "and ", 4) == 0)
            p += 4;
        else if (*p)
            goto bad;
    }
    return 0;
bad:
    return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "$filter",
                         "Invalid $filter '%.128s'. Supported: resourceType eq '...' and name eq "
                         "'...'.",
                         filter);
}

static int
meta_resources(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *sub = pgcmk_req_param(rq, "sub"), *rg = pgcmk_req_param(rq, "rg");
    const char *filter = pgcmk_req_query(rq, "$filter");
    char ftype[256], fname[256];
    struct pgcmk_db *db = pgcmk_db();
    json_t *items = json_array();
    sqlite3_stmt *st;
    int rc;

    if (pgcmk_arm_check_sub(sub, err) || pgcmk_arm_check_resources_version(rq, rs, err) ||
        meta_filter_parse(filter, ftype, sizeof(ftype), fname, sizeof(fname), err) ||
        (rg && pgcmk_arm_rg_usable(sub, rg, err))) {
        json_decref(items);
        return -1;
    }
    st = pgcmk_db_stmt(db, rg ? PGCMK_STMT_RES_LIST_IN_RG : PGCMK_STMT_RES_LIST_SUB);
    sqlite3_bind_text(st, 1, sub, -1, SQLITE_STATIC);
    if (rg)
        sqlite3_bind_text(st, 2, rg, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(st, 1);
        const char *name = (const char *)sqlite3_column_text(st, 2);
        json_t *body, *o;

        if ((ftype[0] && strcasecmp(type, ftype) != 0) ||
            (fname[0] && strcasecmp(name, fname) != 0))
            continue;
        body = json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL);
        o = json_pack("{s:O, s:O, s:O}", "id", json_object_get(body, "id"), "name",
                      json_object_get(body, "name"), "type", json_object_get(body, "type"));
        if (o == NULL) {
            json_decref(body);
            continue;
        }
        if (json_object_get(body, "location"))
            json_object_set(o, "location", json_object_get(body, "location"));
        if (json_object_get(body, "tags"))
            json_object_set(o, "tags", json_object_get(body, "tags"));
        if (json_object_get(body, "identity"))
            json_object_set(o, "identity", json_object_get(body, "identity"));
        json_array_append_new(items, o);
        json_decref(body);
    }
    pgcmk_db_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(items);
        return pgcmk_db_fail(db, rc, "list resources", err);
    }
    return pgcmk_arm_list(rq, rs, items, err);
}

/* GET /metadata/endpoints: the cloud description clients read (az cloud register, terraform). */
static int
meta_endpoints(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    char *base = pgcmk_req_base_url(rq);
    char *adfs = pgcmk_xasprintf("%s/adfs", base);
    char *suffix = pgcmk_xasprintf("%s:%d", PGCMK_VAULT_DNS_SUFFIX, rq->host_port);
    json_t *cloud;

    PGCMK_UNUSED(err);
    cloud = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:[s, s], s:b, s:s, s:s}, s:{s:s, s:s, s:s}}",
        "name", "pgcmk", "resourceManager", base, "microsoftGraphResourceId", base, "graph", base,
        "portal", base, "gallery", base, "authentication", "loginEndpoint", adfs, "audiences", base,
        "https://management.core.windows.net/", "loginEndpointIsAdfs", 1, "identityProvider",
        "ADFS", "tenant", "adfs", "suffixes", "keyVaultDns", suffix, "storage", "localhost",
        "acrLoginServer", "localhost");
    if (pgcmk_req_query(rq, "api-version") &&
        strcmp(pgcmk_req_query(rq, "api-version"), "2015-01-01") == 0) {
        pgcmk_resp_json(rs, 200,
                        json_pack("{s:s, s:s, s:s, s:{s:s, s:[s]}}", "galleryEndpoint", base,
                                  "graphEndpoint", base, "portalEndpoint", base, "authentication",
                                  "loginEndpoint", adfs, "audiences", base));
        json_decref(cloud);
    } else {
        pgcmk_resp_json(rs, 200, json_pack("[o]", cloud));
    }
    free(suffix);
    free(adfs);
    free(base);
    return 0;
}

static const struct pgcmk_route meta_routes[] = {
    {"GET", "/subscriptions", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, NULL,
     meta_subscriptions},
    {"GET", "/subscriptions/{sub}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, NULL,
     meta_subscription_get},
    {"GET", "/tenants", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, NULL, meta_tenants},
    {"GET", "/subscriptions/{sub}/providers", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER,
     "$top,$expand,$skiptoken", meta_providers},
    {"GET", "/subscriptions/{sub}/providers/{ns}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER,
     "$expand", meta_provider_get},
    {"POST", "/subscriptions/{sub}/providers/{ns}/register", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
     ROUTE_F_APIVER, NULL, meta_provider_register},
    {"GET", "/subscriptions/{sub}/resources", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER,
     "$filter,$top,$skiptoken,$expand", meta_resources},
    {"GET", "/subscriptions/{sub}/resourcegroups/{rg}/resources", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
     ROUTE_F_APIVER, "$filter,$top,$skiptoken,$expand", meta_resources},
    {"GET", "/metadata/endpoints", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_NOAUTH, NULL,
     meta_endpoints},
};

void
pgcmk_arm_meta_routes(void)
{
    pgcmk_router_add(meta_routes, PGCMK_ARRAY_LEN(meta_routes));
}

void
pgcmk_arm_init(void)
{
    pgcmk_arm_meta_routes();
    pgcmk_arm_rg_routes();
    pgcmk_arm_lro_routes();
    pgcmk_arm_generic_routes();
    pgcmk_arm_rg_resume_deletes(); /* first: it closes its own operations */
    pgcmk_lro_recover();
}
