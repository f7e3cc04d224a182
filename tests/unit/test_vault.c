/* test_vault.c - key URIs in both the local and the Azure form; the cache generation; the data
 * plane's route table (every route names its key permission). */
#include <stdlib.h>
#include <strings.h>

#include "pgcmk/core.h"
#include "pgcmk/http.h"
#include "pgcmk/keyvault.h"
#include "pgcmk/vault.h"
#include "t.h"

/* The key permissions of a Key Vault access policy (permissions.keys). */
static const char *const t_key_perms[] = {"get",
                                          "list",
                                          "create",
                                          "update",
                                          "import",
                                          "delete",
                                          "recover",
                                          "backup",
                                          "restore",
                                          "purge",
                                          "encrypt",
                                          "decrypt",
                                          "wrapKey",
                                          "unwrapKey",
                                          "sign",
                                          "verify",
                                          "rotate",
                                          "getrotationpolicy",
                                          "setrotationpolicy",
                                          NULL};

static int t_admitted_freed, t_handler_saw;

static void
t_admitted_free(void *p)
{
    t_admitted_freed += p == &t_admitted_freed;
}

static int
t_admit(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    (void)rs;
    rq->admitted = &t_admitted_freed;
    rq->admitted_free = t_admitted_free;
    if (strcmp(rq->route->perm, "get") != 0)
        return pgcmk_err_set(err, PGCMK_E_KV_FORBIDDEN, "ForbiddenByPolicy", "no %s",
                             rq->route->perm);
    return 0;
}

static int
t_handler(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    (void)err;
    t_handler_saw += rq->admitted == &t_admitted_freed;
    pgcmk_resp_empty(rs, 204);
    return 0;
}

static const struct pgcmk_route t_perm_routes[] = {
    {"GET", "/t/{name}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, ROUTE_F_ANYBODY, NULL, t_handler,
     "get"},
    {"DELETE", "/t/{name}", PGCMK_PLANE_VAULT, PGCMK_ENV_VAULT, ROUTE_F_ANYBODY, NULL, t_handler,
     "delete"},
    {"GET", "/t/{name}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, t_handler, "get"},
};

static int
t_dispatch(const char *method, const char *host)
{
    struct pgcmk_req rq;
    struct pgcmk_resp rs;
    int status;

    memset(&rs, 0, sizeof(rs));
    pgcmk_req_init(&rq, NULL, method, "/t/x", host, NULL, 0);
    pgcmk_http_dispatch(&rq, &rs);
    status = rs.status;
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);
    return status;
}

struct t_routes {
    int vault, with_perm, challenge_free, bad_perm, secret_ops;
};

static void
t_route(const struct pgcmk_route *r, void *arg)
{
    struct t_routes *t = arg;
    int known = 0;

    if (r->plane != PGCMK_PLANE_VAULT)
        return;
    t->vault++;
    if (r->perm == NULL) {
        /* Only the refusal of an unknown operation answers before admission. */
        if ((r->flags & ROUTE_F_NOAUTH) && strstr(r->pattern, "{op}"))
            t->challenge_free++;
        return;
    }
    t->with_perm++;
    for (int i = 0; t_key_perms[i]; i++)
        known |= strcmp(t_key_perms[i], r->perm) == 0;
    if (!known || (r->flags & ROUTE_F_NOAUTH) || (r->flags & ROUTE_F_APIVER))
        t->bad_perm++;
    /* Plaintexts pass through the crypto operations and the import: their answers are wiped. */
    if (strcmp(r->perm, "wrapKey") == 0 || strcmp(r->perm, "unwrapKey") == 0 ||
        strcmp(r->perm, "encrypt") == 0 || strcmp(r->perm, "decrypt") == 0 ||
        strcmp(r->perm, "import") == 0)
        t->secret_ops += (r->flags & ROUTE_F_SECRET) ? 1 : -100;
    /* A crypto route's last segment is its operation, spelt as its permission. */
    if (strcmp(r->method, "POST") == 0 && strcasecmp(strrchr(r->pattern, '/') + 1, r->perm) != 0 &&
        strcmp(r->perm, "create") != 0 && strcmp(r->perm, "backup") != 0 &&
        strcmp(r->perm, "restore") != 0 && strcmp(r->perm, "recover") != 0 &&
        strcmp(r->perm, "rotate") != 0)
        t->bad_perm++;
}

int
main(void)
{
    char v[32], n[128], ver[40];

    CHECK(pgcmk_vault_parse_key_uri(
              "https://KV1.vault.localhost:8443/keys/k1/0123456789abcdef0123456789abcdef", v, n,
              ver) == 0);
    CHECK_STR(v, "kv1");
    CHECK_STR(n, "k1");
    CHECK_STR(ver, "0123456789abcdef0123456789abcdef");
    CHECK(pgcmk_vault_parse_key_uri(
              "https://kv1.vault.azure.net:443/keys/cmk-key/ABCDEF0123456789ABCDEF0123456789", v, n,
              ver) == 0);
    CHECK_STR(v, "kv1");
    CHECK_STR(n, "cmk-key");
    CHECK(pgcmk_vault_parse_key_uri("https://kv1.vault.azure.net/keys/k1", v, n, ver) == 0);
    CHECK_STR(ver, "");
    CHECK(pgcmk_vault_parse_key_uri("https://kv1.vault.azure.net/keys/k1/", v, n, ver) == 0);
    CHECK_STR(ver, "");
    CHECK(pgcmk_vault_parse_key_uri("http://kv1.vault.azure.net/keys/k1", v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri("https://kv1.example.com/keys/k1", v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri("https://a.b.vault.azure.net/keys/k1", v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri("https://kv1.vault.azure.net/secrets/k1", v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri("https://kv1.vault.azure.net/keys/k_1/abc", v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri("https://kv1.vault.azure.net/keys/k1/xyz", v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri("https://kv1.vault.azure.net/keys/k1/ab/cd", v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri(NULL, v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri("https://.vault.azure.net/keys/k1", v, n, ver) == -1);
    {
        /* Every invalidation moves the generation the data-plane caches are checked against. */
        unsigned long long g = pgcmk_vault_generation();

        CHECK(g != 0);
        pgcmk_vault_invalidate();
        CHECK(pgcmk_vault_generation() == g + 1);
        pgcmk_vault_invalidate();
        pgcmk_vault_invalidate();
        CHECK(pgcmk_vault_generation() == g + 3);
    }
    {
        /* The route table: every data-plane route but the two unknown-operation refusals names
         * a key permission, and the dispatcher admits it (not ROUTE_F_NOAUTH). */
        struct t_routes t = {0, 0, 0, 0, 0};

        pgcmk_router_reset();
        pgcmk_vault_init();
        pgcmk_router_each(t_route, &t);
        CHECK(t.vault >= 30);
        CHECK(t.challenge_free == 2);
        CHECK(t.with_perm == t.vault - 2);
        CHECK(t.bad_perm == 0);
        CHECK(t.secret_ops == 9); /* 4 operations x 2 routes, and the import */
        CHECK(pgcmk_router_check() == 0);
        {
            /* The vault makes jansson wipe what it frees (parsed bodies, dumped answers). */
            json_malloc_t m = NULL;
            json_free_t f = NULL;

            json_get_alloc_funcs(&m, &f);
            CHECK(f != NULL && f != free);
        }
        pgcmk_vault_shutdown();
        pgcmk_router_reset();
    }
    {
        /* The dispatcher runs the plane's admission for routes with a permission, hands its
         * state to the handler and releases it; without a hook such a route is refused. */
        pgcmk_router_reset();
        pgcmk_router_add(t_perm_routes, PGCMK_ARRAY_LEN(t_perm_routes));
        pgcmk_http_set_admit(PGCMK_PLANE_VAULT, t_admit);
        CHECK(t_dispatch("GET", "kv1.vault.localhost") == 204);
        CHECK(t_handler_saw == 1 && t_admitted_freed == 1);
        CHECK(t_dispatch("DELETE", "kv1.vault.localhost") == 403);
        CHECK(t_handler_saw == 1 && t_admitted_freed == 2);
        fprintf(stderr, "(test_vault: one 'lvl=error' line below, for the 500, is expected)\n");
        CHECK(t_dispatch("GET", "localhost") == 500); /* no admission hook on the ARM plane */
        CHECK(t_handler_saw == 1);
        pgcmk_http_set_admit(PGCMK_PLANE_VAULT, NULL);
        pgcmk_router_reset();
    }
    {
        /* The wipe behind it covers the whole block malloc gave. */
        unsigned char *b = malloc(100);
        int zero = 1;

        memset(b, 'k', 100);
        pgcmk_secret_wipe_block(b);
        for (int i = 0; i < 100; i++)
            zero &= b[i] == 0;
        CHECK(zero);
        free(b);
        pgcmk_secret_wipe_block(NULL);
    }
    {
        /* Vault properties: one decoder, one set of defaults, whatever the body leaves out. */
        struct pgcmk_vault_props p;
        json_t *body;

        memset(&p, 0x5a, sizeof(p));
        pgcmk_keyvault_props(NULL, &p);
        CHECK(p.soft_delete == 1 && p.purge_protection == 0 && p.rbac == 0 && p.premium == 0);
        CHECK(p.retention_days == 90);
        CHECK(p.access_policies == NULL && p.tenant_id == NULL && p.location == NULL);
        body = json_pack("{s:s, s:{s:I, s:{s:s}}}", "location", "westeurope", "properties",
                         "softDeleteRetentionInDays", (json_int_t)3, "sku", "name", "Standard");
        pgcmk_keyvault_props(body, &p);
        CHECK(p.retention_days == 90); /* outside 7..90 */
        CHECK(p.soft_delete == 1 && p.purge_protection == 0 && p.premium == 0);
        CHECK_STR(p.location, "westeurope");
        json_decref(body);
        body = json_pack("{s:{s:b, s:b, s:I, s:b, s:{s:s}, s:[], s:s}}", "properties",
                         "enableSoftDelete", 1, "enablePurgeProtection", 1,
                         "softDeleteRetentionInDays", (json_int_t)7, "enableRbacAuthorization", 1,
                         "sku", "name", "PREMIUM", "accessPolicies", "tenantId", "t1");
        pgcmk_keyvault_props(body, &p);
        CHECK(p.soft_delete == 1 && p.purge_protection == 1 && p.rbac == 1 && p.premium == 1);
        CHECK(p.retention_days == 7);
        CHECK(json_is_array(p.access_policies));
        CHECK_STR(p.tenant_id, "t1");
        json_decref(body);
        body = json_pack("{s:{s:s, s:s, s:s, s:{}}}", "properties", "enablePurgeProtection", "yes",
                         "softDeleteRetentionInDays", "30", "enableSoftDelete", "no",
                         "accessPolicies");
        pgcmk_keyvault_props(body, &p); /* wrong types count as absent */
        CHECK(p.purge_protection == 0 && p.retention_days == 90 && p.soft_delete == 1);
        CHECK(p.access_policies == NULL);
        json_decref(body);
    }
    return t_done("test_vault");
}
