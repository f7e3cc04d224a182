/* faults.c - /emulator/faults: break the wire on purpose. A vault set "unavailable" answers its
 * data plane with 503, which the encryption agent reports as an outage (not a revocation). */
#include <pthread.h>
#include <string.h>

#include "pgcmk/emulator.h"
#include "pgcmk/events.h"
#include "pgcmk/faults.h"
#include "pgcmk/http.h"

static json_t *faults_json; /* {"vaults": {"name": "unavailable"}} as last set, for GET */
static pthread_mutex_t faults_json_mu = PTHREAD_MUTEX_INITIALIZER;

static int
faults_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    (void)rq;
    (void)err;
    pthread_mutex_lock(&faults_json_mu);
    pgcmk_resp_json(
        rs, 200,
        json_pack("{s:o}", "vaults", faults_json ? json_deep_copy(faults_json) : json_object()));
    pthread_mutex_unlock(&faults_json_mu);
    return 0;
}

/* POST {"vault": "kv1", "mode": "unavailable" | "none"} or {"clear": true} */
static int
faults_post(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *vault = json_string_value(json_object_get(rq->json, "vault"));
    const char *mode = json_string_value(json_object_get(rq->json, "mode"));
    struct pgcmk_event ev = {PGCMK_EV_FAULT_CHANGED, vault, NULL, NULL, NULL, NULL};
    enum pgcmk_fault_mode m;

    if (json_is_true(json_object_get(rq->json, "clear"))) {
        pgcmk_fault_clear();
        pthread_mutex_lock(&faults_json_mu);
        json_decref(faults_json);
        faults_json = NULL;
        pthread_mutex_unlock(&faults_json_mu);
        pgcmk_events_publish(&ev);
        return faults_get(rq, rs, err);
    }
    if (!vault || !mode)
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, NULL,
                             "Give {\"vault\": NAME, \"mode\": \"unavailable\"|\"none\"} or "
                             "{\"clear\": true}.");
    if (strcmp(mode, "unavailable") == 0)
        m = PGCMK_FAULT_UNAVAILABLE;
    else if (strcmp(mode, "none") == 0)
        m = PGCMK_FAULT_NONE;
    else
        return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "mode",
                             "The fault mode '%.32s' is not known: use unavailable or none.", mode);
    if (strlen(vault) > 24 || pgcmk_fault_set_vault(vault, m))
        return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "vault",
                             "Cannot set a fault on '%.32s' (name too long or too many faults).",
                             vault);
    pthread_mutex_lock(&faults_json_mu);
    if (!faults_json)
        faults_json = json_object();
    if (m == PGCMK_FAULT_NONE)
        json_object_del(faults_json, vault);
    else
        json_object_set_new(faults_json, vault, json_string(mode));
    pthread_mutex_unlock(&faults_json_mu);
    pgcmk_events_publish(&ev);
    return faults_get(rq, rs, err);
}

static const struct pgcmk_route fault_routes[] = {
    {"GET", "/emulator/faults", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, faults_get},
    {"POST", "/emulator/faults", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON, NULL, faults_post},
};

void
pgcmk_emulator_faults_init(void)
{
    pgcmk_router_add(fault_routes, PGCMK_ARRAY_LEN(fault_routes));
}
