/* meta.c - what clients ask before they touch a resource: subscriptions, tenants, providers,
 * the generic resources list, cloud metadata; and pgcmk_arm_init that adds every ARM route. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/store.h"
#include "pgcmk/wellknown.h"
#include "arm/internal.h"

/* Copies src into dst (cap bytes), cut at cap - 1. */
static void
meta_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

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

/* What a resources list keeps: the $filter clauses ARM clients send, joined with "and", and
 * the $expand extras. An empty string matches everything. */
struct meta_filter {
    char type[256], name[256], rg[128], location[64], name_sub[256], rg_sub[128];
    int expand_created, expand_changed, expand_state;
};

/* Reads an OData string literal ('..', '' for a quote) into out; returns the length used or 0. */
static size_t
meta_filter_string(const char *p, char *out, size_t cap)
{
    const char *start = p;
    size_t n = 0;

    if (*p++ != '\'')
        return 0;
    for (;;) {
        if (*p == '\0')
            return 0;
        if (*p == '\'') {
            if (p[1] != '\'')
                break;
            p++;
        }
        if (n + 1 >= cap)
            return 0;
        out[n++] = *p++;
    }
    out[n] = '\0';
    return (size_t)(p + 1 - start);
}

static const char *
meta_skip_spaces(const char *p)
{
    while (*p == ' ')
        p++;
    return p;
}

/* One clause: "KEY eq '...'" (resourceType, name, resourceGroup, location) or
 * "substringof('...', name|resourceGroup)"; returns the text after it or NULL. */
static const char *
meta_filter_clause(const char *p, struct meta_filter *f)
{
    char key[32], val[256];
    size_t n = 0, used;

    if (strncasecmp(p, "substringof(", 12) == 0) {
        p = meta_skip_spaces(p + 12);
        if ((used = meta_filter_string(p, val, sizeof(val))) == 0)
            return NULL;
        p = meta_skip_spaces(p + used);
        if (*p++ != ',')
            return NULL;
        p = meta_skip_spaces(p);
        while (isalpha((unsigned char)p[n]) && n + 1 < sizeof(key)) {
            key[n] = p[n];
            n++;
        }
        key[n] = '\0';
        p = meta_skip_spaces(p + n);
        if (*p++ != ')')
            return NULL;
        if (strcasecmp(key, "name") == 0)
            meta_copy(f->name_sub, sizeof(f->name_sub), val);
        else if (strcasecmp(key, "resourceGroup") == 0 && strlen(val) < sizeof(f->rg_sub))
            meta_copy(f->rg_sub, sizeof(f->rg_sub), val);
        else
            return NULL;
        return p;
    }
    while (isalpha((unsigned char)p[n]) && n + 1 < sizeof(key)) {
        key[n] = p[n];
        n++;
    }
    key[n] = '\0';
    p += n;
    if (n == 0 || *p != ' ')
        return NULL;
    p = meta_skip_spaces(p);
    if (strncasecmp(p, "eq ", 3) != 0)
        return NULL;
    p = meta_skip_spaces(p + 3);
    if ((used = meta_filter_string(p, val, sizeof(val))) == 0)
        return NULL;
    if (strcasecmp(key, "resourceType") == 0)
        meta_copy(f->type, sizeof(f->type), val);
    else if (strcasecmp(key, "name") == 0)
        meta_copy(f->name, sizeof(f->name), val);
    else if (strcasecmp(key, "resourceGroup") == 0 && strlen(val) < sizeof(f->rg))
        meta_copy(f->rg, sizeof(f->rg), val);
    else if (strcasecmp(key, "location") == 0 && strlen(val) < sizeof(f->location))
        meta_copy(f->location, sizeof(f->location), val);
    else
        return NULL;
    return p + used;
}

static int
meta_filter_parse(const char *filter, struct meta_filter *f, struct pgcmk_err *err)
{
    const char *p = filter ? meta_skip_spaces(filter) : "";

    while (*p) {
        if ((p = meta_filter_clause(p, f)) == NULL)
            goto bad;
        p = meta_skip_spaces(p);
        if (strncasecmp(p, "and ", 4) == 0) {
            p = meta_skip_spaces(p + 4);
            if (*p == '\0')
                goto bad;
        } else if (*p) {
            goto bad;
        }
    }
    return 0;
bad:
    return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "$filter",
                         "Invalid $filter '%.128s'. Supported: resourceType eq '...', name eq "
                         "'...', resourceGroup eq '...', location eq '...' and "
                         "substringof('...', name), joined with 'and'.",
                         filter);
}

/* $expand=createdTime,changedTime,provisioningState (any subset, any order). */
static int
meta_expand_parse(const char *expand, struct meta_filter *f, struct pgcmk_err *err)
{
    const char *p = expand ? expand : "";

    while (*p) {
        size_t n;

        p = meta_skip_spaces(p);
        n = strcspn(p, ",");
        while (n && p[n - 1] == ' ')
            n--;
        if (n == 11 && strncasecmp(p, "createdTime", n) == 0)
            f->expand_created = 1;
        else if (n == 11 && strncasecmp(p, "changedTime", n) == 0)
            f->expand_changed = 1;
        else if (n == 17 && strncasecmp(p, "provisioningState", n) == 0)
            f->expand_state = 1;
        else
            return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "$expand",
                                 "Invalid $expand '%.128s'. Supported: createdTime, changedTime "
                                 "and provisioningState, separated by commas.",
                                 expand);
        p += strcspn(p, ",");
        if (*p == ',' && *++p == '\0')
            return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "$expand", "Invalid $expand '%.128s'.",
                                 expand);
    }
    return 0;
}

/* Case-insensitive "needle occurs in hay". */
static int
meta_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return n == 0;
}

/* The resource group segment of "/subscriptions/S/resourceGroups/RG/...", or "". */
static void
meta_id_rg(const char *id, char *out, size_t cap)
{
    const char *p, *end;

    out[0] = '\0';
    if (strncasecmp(id, "/subscriptions/", 15) != 0 || (p = strchr(id + 15, '/')) == NULL ||
        strncasecmp(p, "/resourceGroups/", 16) != 0)
        return;
    p += 16;
    end = strchr(p, '/');
    snprintf(out, cap, "%.*s", (int)(end ? (size_t)(end - p) : strlen(p)), p);
}

/* Locations compare as ARM names them: "East US" is "eastus". */
static int
meta_location_eq(const char *a, const char *b)
{
    for (;;) {
        while (*a == ' ')
            a++;
        while (*b == ' ')
            b++;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
        if (*a == '\0')
            return 1;
        a++;
        b++;
    }
}

static int
meta_filter_match(const struct meta_filter *f, const char *id, const char *type, const char *name,
                  const char *location)
{
    char rg[128];

    if ((f->type[0] && strcasecmp(type, f->type) != 0) ||
        (f->location[0] && !meta_location_eq(location ? location : "", f->location)) ||
        (f->name[0] && strcasecmp(name, f->name) != 0) ||
        (f->name_sub[0] && !meta_contains(name, f->name_sub)))
        return 0;
    if (f->rg[0] || f->rg_sub[0]) {
        meta_id_rg(id, rg, sizeof(rg));
        if ((f->rg[0] && strcasecmp(rg, f->rg) != 0) ||
            (f->rg_sub[0] && !meta_contains(rg, f->rg_sub)))
            return 0;
    }
    return 1;
}

/* One item of the list: id, name, type, location, tags, identity, and what $expand asks. */
static json_t *
meta_resource_item(const struct meta_filter *f, json_t *body)
{
    json_t *o = json_pack("{s:O, s:O, s:O}", "id", json_object_get(body, "id"), "name",
                          json_object_get(body, "name"), "type", json_object_get(body, "type"));
    json_t *sd = json_object_get(body, "systemData");
    json_t *state = json_object_get(json_object_get(body, "properties"), "provisioningState");
    static const char *const copied[] = {"kind", "location", "tags", "identity", "sku", NULL};

    if (o == NULL)
        return NULL;
    for (int i = 0; copied[i]; i++)
        if (json_object_get(body, copied[i]))
            json_object_set(o, copied[i], json_object_get(body, copied[i]));
    if (f->expand_created && json_is_string(json_object_get(sd, "createdAt")))
        json_object_set(o, "createdTime", json_object_get(sd, "createdAt"));
    if (f->expand_changed && json_is_string(json_object_get(sd, "lastModifiedAt")))
        json_object_set(o, "changedTime", json_object_get(sd, "lastModifiedAt"));
    if (f->expand_state)
        json_object_set_new(
            o, "provisioningState",
            json_string(json_is_string(state) ? json_string_value(state) : "Succeeded"));
    return o;
}

struct meta_list {
    const struct meta_filter *f;
    json_t *items;
};

/* pgcmk_db_each row: one resource, kept when the filter matches. */
static int
meta_resource_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    struct meta_list *lr = arg;
    const char *id = (const char *)sqlite3_column_text(st, 0);
    const char *type = (const char *)sqlite3_column_text(st, 1);
    const char *name = (const char *)sqlite3_column_text(st, 2);
    const char *location = (const char *)sqlite3_column_text(st, 3);
    json_t *body, *o;

    PGCMK_UNUSED(err);
    if (!meta_filter_match(lr->f, id, type, name, location))
        return 0;
    body = json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL);
    o = meta_resource_item(lr->f, body);
    json_decref(body);
    if (o)
        json_array_append_new(lr->items, o);
    return 0;
}

static int
meta_resources(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct meta_list lr;
    const char *sub = pgcmk_req_param(rq, "sub"), *rg = pgcmk_req_param(rq, "rg");
    struct meta_filter f;
    struct pgcmk_db *db = pgcmk_db();
    json_t *items = json_array();
    sqlite3_stmt *st;
    int rc;

    memset(&f, 0, sizeof(f));
    if (pgcmk_arm_check_sub(sub, err) || pgcmk_arm_check_resources_version(rq, rs, err) ||
        meta_filter_parse(pgcmk_req_query(rq, "$filter"), &f, err) ||
        meta_expand_parse(pgcmk_req_query(rq, "$expand"), &f, err) ||
        (rg && pgcmk_arm_rg_usable(sub, rg, err))) {
        json_decref(items);
        return -1;
    }
    /* resourceGroup eq '...' at subscription scope reads only that group (none if missing). */
    if (rg == NULL && f.rg[0])
        rg = f.rg;
    st = pgcmk_db_stmt(db, rg ? PGCMK_STMT_RES_LIST_IN_RG : PGCMK_STMT_RES_LIST_SUB);
    sqlite3_bind_text(st, 1, sub, -1, SQLITE_STATIC);
    if (rg)
        sqlite3_bind_text(st, 2, rg, -1, SQLITE_STATIC);
    lr.f = &f;
    lr.items = items;
    rc = pgcmk_db_each(db, st, meta_resource_row, &lr, "list resources", err);
    if (rc < 0) {
        json_decref(items);
        return -1;
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
