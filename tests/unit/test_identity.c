/* test_identity.c - the managed-identity block on ARM_T_IDENTITY types: system-assigned
 * principals created and removed with the resource, user-assigned identities looked up and
 * filled in, bad blocks refused, identities/default. Runs the real pipeline on a store file in WAL
 * mode. */
#include <stdlib.h>
#include <string.h>

#include "pgcmk/arm.h"
#include "pgcmk/auth.h"
#include "pgcmk/crypto.h"
#include "pgcmk/http.h"
#include "pgcmk/pkey.h"
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

/* A token signed with the daemon's own key (read back from the store, as only a test may), so
 * that only the claims decide: the tenant must be ours, the principal must exist. */
static char *
sign_claims(const struct pgcmk_pkey *k, const char *kid, const char *tid, const char *oid)
{
    json_int_t now = (json_int_t)(pgcmk_wall_ms() / 1000);
    json_t *c = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "aud", "https://management.azure.com",
                          "iss", "https://sts.windows.net/" PGCMK_TENANT_ID "/", "iat", now, "nbf",
                          now, "exp", now + 600, "oid", oid);
    char *tok;

    if (tid)
        json_object_set_new(c, "tid", json_string(tid));
    tok = pgcmk_jwt_sign(k, kid, c);
    json_decref(c);
    return tok;
}

static int
verify_claims(const struct pgcmk_pkey *k, const char *kid, const char *tid, const char *oid,
              struct pgcmk_err *err)
{
    struct pgcmk_caller who;
    char *tok = sign_claims(k, kid, tid, oid);
    int rc;

    pgcmk_err_clear(err);
    rc = tok ? pgcmk_auth_verify(tok, PGCMK_AUD_ARM, &who, err) : -2;
    free(tok);
    return rc;
}

static void
test_bearer_claims(const char *deleted_oid)
{
    char *stored = NULL, *kid = NULL;
    unsigned char *sealed = NULL, *plain = NULL;
    size_t sealed_len = 0, plain_len = 0;
    struct pgcmk_pkey *k = NULL;
    struct pgcmk_err err;

    CHECK(pgcmk_store_setting_get("auth.signing_key", &stored) == 0);
    CHECK(stored && pgcmk_b64_decode(stored, strlen(stored), &sealed, &sealed_len) == 0);
    CHECK(pgcmk_store_unseal(sealed, sealed_len, "auth.signing_key", &plain, &plain_len) == 0);
    CHECK(plain && pgcmk_pkey_from_pem((const char *)plain, plain_len, &k) == 0);
    kid = k ? pgcmk_pkey_thumbprint(k) : NULL;
    if (kid == NULL)
        goto out;
    /* the control: our tenant, an existing principal (the object id compares case-blind) */
    CHECK(verify_claims(k, kid, PGCMK_TENANT_ID, PGCMK_ADMIN_OBJECT_ID, &err) == 0);
    CHECK(verify_claims(k, kid, PGCMK_TENANT_ID, "00000000-0000-4000-8000-00000000A0A0", &err) ==
          0);
    /* another tenant, or none */
    CHECK(verify_claims(k, kid, "72f988bf-86f1-41af-91ab-2d7cd011db47", PGCMK_ADMIN_OBJECT_ID,
                        &err) == -1);
    CHECK(err.code == PGCMK_E_INVALID_TOKEN && strstr(err.message, "tenant") != NULL);
    CHECK(verify_claims(k, kid, NULL, PGCMK_ADMIN_OBJECT_ID, &err) == -1);
    CHECK(err.code == PGCMK_E_INVALID_TOKEN);
    /* a principal that never existed, one that was deleted, and an empty oid */
    CHECK(verify_claims(k, kid, PGCMK_TENANT_ID, "00000000-0000-4000-8000-00000000beef", &err) ==
          -1);
    CHECK(err.code == PGCMK_E_INVALID_TOKEN && strstr(err.message, "does not exist") != NULL);
    CHECK(verify_claims(k, kid, PGCMK_TENANT_ID, deleted_oid, &err) == -1);
    CHECK(err.code == PGCMK_E_INVALID_TOKEN);
    CHECK(verify_claims(k, kid, PGCMK_TENANT_ID, "", &err) == -1);
out:
    if (plain)
        pgcmk_secret_free(plain, plain_len);
    free(sealed);
    free(stored);
    free(kid);
    pgcmk_pkey_free(k);
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
    test_bearer_claims(pid);
    json_decref(mi);
    pgcmk_auth_shutdown();
    t_store_close();
    return t_done("test_identity");
}
