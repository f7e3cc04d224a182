/* admission.c - who may call the Key Vault data plane: the api-version, the bearer challenge,
 * the token, the vault and its access policies; and the JSON body read after admission. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "pgcmk/auth.h"
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/events.h"
#include "pgcmk/faults.h"
#include "pgcmk/keyvault.h"
#include "pgcmk/log.h"
#include "pgcmk/pkey.h"
#include "pgcmk/store.h"
#include "pgcmk/vault.h"
#include "pgcmk/wellknown.h"
#include "vault/internal.h"

/* api-versions 7.0 .. 7.5, with the -preview suffixes clients send. */
int
kv_check_version(struct pgcmk_req *rq, struct pgcmk_err *err)
{
    const char *v = rq->api_version;

    if (v == NULL || *v == '\0')
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                             "The api-version parameter is missing.");
    if (strlen(v) >= 3 && v[0] == '7' && v[1] == '.' && v[2] >= '0' && v[2] <= '5' &&
        (v[3] == '\0' || strncmp(v + 3, "-preview", 8) == 0))
        return 0;
    return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                         "The specified version (%.32s) is not recognized. Consider using the "
                         "latest supported version (7.5).",
                         v);
}

void
kv_headers(struct pgcmk_resp *rs)
{
    pgcmk_resp_header(rs, "x-ms-keyvault-region", PGCMK_DEFAULT_LOCATION);
    pgcmk_resp_header(rs, "x-ms-keyvault-service-version", "1.9.1.0");
    pgcmk_resp_header(rs, "x-ms-keyvault-network-info",
                      "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;");
}

static int
kv_challenge(struct pgcmk_resp *rs, struct pgcmk_err *err, const char *msg)
{
    char *h = pgcmk_xasprintf("Bearer authorization=\"https://localhost:%d/%s\", "
                              "resource=\"https://" PGCMK_VAULT_DNS_SUFFIX ":%d\"",
                              pgcmk_public_port(), PGCMK_TENANT_ID, pgcmk_public_port());

    pgcmk_resp_header(rs, "WWW-Authenticate", h);
    free(h);
    return pgcmk_err_set(err, PGCMK_E_KV_UNAUTHORIZED, NULL, "%s", msg);
}

static int
kv_perm_granted(json_t *policies, const struct pgcmk_caller *who, const char *perm)
{
    size_t i, j;
    json_t *p, *v;

    json_array_foreach(policies, i, p) {
        const char *oid = json_string_value(json_object_get(p, "objectId"));
        const char *tid = json_string_value(json_object_get(p, "tenantId"));
        json_t *keys = json_object_get(json_object_get(p, "permissions"), "keys");

        if (!oid || !tid || strcasecmp(oid, who->oid) || strcasecmp(tid, who->tid))
            continue;
        json_array_foreach(keys, j, v) {
            const char *s = json_string_value(v);

            if (s && (strcasecmp(s, perm) == 0 || strcasecmp(s, "all") == 0))
                return 1;
        }
    }
    return 0;
}

/* The pipeline of every data-plane call: api-version, vault, bearer token, access policy. */
int
kv_admit(struct pgcmk_req *rq, struct pgcmk_resp *rs, const char *perm, struct kv_ctx *kc,
         struct pgcmk_err *err)
{
    const char *authz = pgcmk_req_header(rq, "Authorization");
    struct pgcmk_vault_props vp;
    json_t *body;

    memset(kc, 0, sizeof(*kc));
    kv_headers(rs);
    if (pgcmk_fault_vault(rq->vault) == PGCMK_FAULT_UNAVAILABLE)
        return pgcmk_err_set(err, PGCMK_E_UNAVAILABLE, NULL,
                             "The vault '%.32s' is unavailable (a fault injected through "
                             "/emulator/faults).",
                             rq->vault);
    if (authz == NULL || *authz == '\0')
        return kv_challenge(rs, err, "AKV10000: Request is missing a Bearer or PoP token.");
    if (kv_check_version(rq, err))
        return -1;
    if (strncasecmp(authz, "Bearer ", 7) != 0)
        return kv_challenge(rs, err,
                            "AKV10001: The request has an Authorization header that is "
                            "not a Bearer token.");
    if (pgcmk_auth_verify(authz + 7, PGCMK_AUD_VAULT, &kc->who, err)) {
        char msg[PGCMK_ERR_MSG_LEN];

        snprintf(msg, sizeof(msg), "AKV10022: %.480s", err->message);
        return kv_challenge(rs, err, msg);
    }
    snprintf(kc->vault, sizeof(kc->vault), "%s", rq->vault);
    if (kv_vault_get(rq->vault, &body, err))
        return -1;
    if (body == NULL)
        return pgcmk_err_set(err, PGCMK_E_KV_VAULT_NOT_FOUND, NULL,
                             "The vault '%.64s' does not exist (or it is deleted).", rq->vault);
    kc->vault_body = json_incref(body);
    pgcmk_keyvault_props(kc->vault_body, &vp);
    kc->purge_protection = vp.purge_protection;
    kc->retention_days = vp.retention_days;
    /* RBAC vaults: role assignments are not emulated yet; any valid token of the tenant passes. */
    if (vp.rbac)
        return 0;
    if (!kv_perm_granted(vp.access_policies, &kc->who, perm))
        return pgcmk_err_set(err, PGCMK_E_KV_FORBIDDEN_BY_POLICY, NULL,
                             "The user, group or application 'appid=%s;oid=%s;iss=https://"
                             "sts.windows.net/%s/' does not have keys %s permission on key vault "
                             "'%s;location=%s'. For help resolving this issue, please see "
                             "https://go.microsoft.com/fwlink/?linkid=2125287",
                             kc->who.appid, kc->who.oid, kc->who.tid, perm, kc->vault,
                             vp.location ? vp.location : "");
    return 0;
}

/* Parses the JSON body after admission (the SDK's first request has an empty body). */
int
kv_body(struct pgcmk_req *rq, struct pgcmk_err *err)
{
    json_error_t jerr;

    if (rq->body_len == 0)
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL, "The request body is empty.");
    rq->json = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(rq->json))
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                             "The request body is not valid JSON (line %d, column %d).", jerr.line,
                             jerr.column);
    return 0;
}

static void
kv_admitted_free(void *p)
{
    struct kv_ctx *kc = p;

    kv_ctx_release(kc);
    OPENSSL_cleanse(&kc->who, sizeof(kc->who));
    free(kc);
}

/* The dispatcher's hook for the data plane's routes (pgcmk_http_set_admit): kv_admit with the
 * route's permission; the handler finds the admitted context in rq->admitted. */
int
kv_admit_route(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx *kc = pgcmk_xcalloc(1, sizeof(*kc));

    rq->admitted = kc;
    rq->admitted_free = kv_admitted_free;
    return kv_admit(rq, rs, rq->route->perm, kc, err);
}
