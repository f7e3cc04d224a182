/* test_identity.c - the managed-identity block on ARM_T_IDENTITY types: system-assigned
 * principals created and removed with the resource, user-assigned identities looked up and
 * filled in, bad blocks refused, identities/default. Runs the real pipeline on a store file in WAL
 * mode. */
#include <stdlib.h>
#include <string.h>

#include "pgcmk/arm.h"
#include "pgcmk/auth.h"
#include "pgcmk/http.h"
#include "pgcmk/providers.h"
#include "pgcmk/store.h"
#include "pgcmk/wellknown.h"
#include "t.h"
#include "t_store.h"

static const char *const widget_versions[] = {"2024-01-01", NULL};
static const struct pgcmk_arm_type widget = {
    .ns = "Microsoft.Test",
    .type = "widgets",
    .versions = widget_versions,
    .flags = ARM_T_TRACKED | ARM_T_SYNC_PUT | ARM_T_IDENTITY,
};

#define RG  "/subscriptions/" PGCMK_SUBSCRIPTION_ID "/resourceGroups/rg1"
#define WID RG "/providers/Microsoft.Test/widgets/w1"

static int
call(const char *method, const char *url, const char *body, json_t **out)
{
    struct pgcmk_req rq;
    struct pgcmk_resp rs;
    int status;

    memset(&rs, 0, sizeof(rs));
    pgcmk_req_init(&rq, NULL, method, url, "localhost:8443", body, body ? strlen(body) : 0);
    pgcmk_req_add_header(&rq, "Content-Type", "application/json");
    pgcmk_http_dispatch(&rq, &rs);
    status = rs.status;
    if (out)
        *out = rs.body ? json_loads(rs.body, 0, NULL) : NULL;
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);
    return status;
}

static const char *
path_str(json_t *j, const char *a, const char *b)
{
    return json_string_value(json_object_get(json_object_get(j, a), b));
}

int
main(void)
{
    struct pgcmk_err err;
    json_t *j = NULL, *mi = NULL;
    char *tok, body[1024], pid[64];

    CHECK(t_store_open(&err) == 0);
    pgcmk_providers_init();
    pgcmk_arm_register(&widget);
    pgcmk_arm_init();
    CHECK(pgcmk_auth_init(&err) == 0);
    CHECK(call("PUT", RG "?api-version=2021-04-01", "{\"location\":\"eastus\"}", NULL) == 201);

    /* SystemAssigned: a principal that can get tokens */
    CHECK(call("PUT", WID "?api-version=2024-01-01",
               "{\"location\":\"eastus\",\"identity\":{\"type\":\"SystemAssigned\"}}", &j) == 201);
    CHECK_STR(path_str(j, "identity", "type"), "SystemAssigned");
    CHECK_STR(path_str(j, "identity", "tenantId"), PGCMK_TENANT_ID);
    snprintf(pid, sizeof(pid), "%s", path_str(j, "identity", "principalId") ?: "");
    CHECK(strlen(pid) == 36);
    json_decref(j);
    tok = pgcmk_auth_issue(pid, "https://vault.azure.net", NULL);
    CHECK(tok != NULL);
    free(tok);
    /* a PUT without the block keeps it, with the same principal */
    CHECK(call("PUT", WID "?api-version=2024-01-01", "{\"location\":\"eastus\"}", &j) == 200);
    CHECK_STR(path_str(j, "identity", "principalId"), pid);
    json_decref(j);
    /* identities/default */
    CHECK(call("GET",
               WID "/providers/Microsoft.ManagedIdentity/identities/default?api-version=2023-01-31",
               NULL, &j) == 200);
    CHECK_STR(path_str(j, "properties", "principalId"), pid);
    json_decref(j);

    /* bad blocks */
    CHECK(call("PUT", WID "?api-version=2024-01-01",
               "{\"location\":\"eastus\",\"identity\":{\"type\":\"Bogus\"}}", &j) == 400);
    CHECK_STR(path_str(j, "error", "code"), "InvalidIdentity");
    json_decref(j);
    snprintf(body, sizeof(body),
             "{\"location\":\"eastus\",\"identity\":{\"type\":\"UserAssigned\","
             "\"userAssignedIdentities\":{\"%s/providers/Microsoft.ManagedIdentity/"
             "userAssignedIdentities/nope\":{}}}}",
             RG);
    CHECK(call("PUT", WID "?api-version=2024-01-01", body, &j) == 400);
    CHECK_STR(path_str(j, "error", "code"), "InvalidIdentity");
    json_decref(j);

    /* UserAssigned: the identity's principalId and clientId are filled in; the SA principal goes */
    CHECK(call("PUT",
               RG "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"
                  "id1?api-version=2023-01-31",
               "{\"location\":\"eastus\"}", &mi) == 201);
    snprintf(body, sizeof(body),
             "{\"location\":\"eastus\",\"identity\":{\"type\":\"UserAssigned\","
             "\"userAssignedIdentities\":{\"%s\":{}}}}",
             json_string_value(json_object_get(mi, "id")));
    CHECK(call("PUT", WID "?api-version=2024-01-01", body, &j) == 200);
    {
        json_t *v = json_object_get(json_object_get(j, "identity"), "userAssignedIdentities");
        json_t *e = json_object_get(v, json_string_value(json_object_get(mi, "id")));

        CHECK_STR(json_string_value(json_object_get(e, "principalId")),
                  path_str(mi, "properties", "principalId"));
        CHECK_STR(json_string_value(json_object_get(e, "clientId")),
                  path_str(mi, "properties", "clientId"));
    }
    json_decref(j);
    tok = pgcmk_auth_issue(pid, "https://vault.azure.net", NULL);
    CHECK(tok == NULL); /* the system-assigned principal went with the block */
    free(tok);

    /* both, then delete: the SA principal is removed with the resource */
    snprintf(body, sizeof(body),
             "{\"location\":\"eastus\",\"identity\":{\"type\":\"SystemAssigned, UserAssigned\","
             "\"userAssignedIdentities\":{\"%s\":{}}}}",
             json_string_value(json_object_get(mi, "id")));
    CHECK(call("PUT", WID "?api-version=2024-01-01", body, &j) == 200);
    snprintf(pid, sizeof(pid), "%s", path_str(j, "identity", "principalId") ?: "");
    json_decref(j);
    tok = pgcmk_auth_issue(pid, "https://vault.azure.net", NULL);
    CHECK(tok != NULL);
    free(tok);
    CHECK(call("DELETE", WID "?api-version=2024-01-01", NULL, NULL) == 200);
    tok = pgcmk_auth_issue(pid, "https://vault.azure.net", NULL);
    CHECK(tok == NULL);
    free(tok);
    json_decref(mi);
    pgcmk_auth_shutdown();
    t_store_close();
    return t_done("test_identity");
}
