/* module.c - the Vault API module: start (backend rows, state, tokens) and the /emulator/vault
 * routes of the main port. */
#include <stdlib.h>
#include <string.h>

#include "pgcmk/http.h"
#include "pgcmk/log.h"
#include "pgcmk/vaultapi.h"
#include "vaultapi/internal.h"

/* GET /emulator/vault/requests[?limit=N]: the last requests of the Vault listener (method, path,
 * query, header names, the body's shape with strings redacted). DELETE empties the log. */
static int
hv_requests_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *l = pgcmk_req_query(rq, "limit");
    int limit = l ? atoi(l) : 0;

    PGCMK_UNUSED(err);
    pgcmk_resp_json(rs, 200, json_pack("{s:o}", "value", hv_log_list(limit)));
    return 0;
}

static int
hv_requests_delete(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(rq);
    PGCMK_UNUSED(err);
    hv_log_clear();
    pgcmk_resp_empty(rs, 204);
    return 0;
}

static const struct pgcmk_route hv_routes[] = {
    {"GET", "/emulator/vault/requests", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, "limit",
     hv_requests_get},
    {"DELETE", "/emulator/vault/requests", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL,
     hv_requests_delete},
};

int
pgcmk_vaultapi_init(void)
{
    static int registered;

    if (!registered) {
        pgcmk_vbackend_register(&hv_token_backend);
        pgcmk_hv_acl_register();
        pgcmk_hv_kv_register();
        pgcmk_hv_transit_register();
        registered = 1;
    }
    hv_log_init();
    if (hv_state_load() || hv_tokens_load())
        return -1;
    pgcmk_router_add(hv_routes, PGCMK_ARRAY_LEN(hv_routes));
    return 0;
}

void
pgcmk_vaultapi_shutdown(void)
{
    hv_tokens_free();
    hv_state_free();
    hv_log_clear();
}
