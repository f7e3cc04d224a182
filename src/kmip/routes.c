/* routes.c - the emulator's view of the KMIP managed objects: GET /emulator/kmip/objects
 * [?owner=], GET /emulator/kmip/objects/{uid}, and the portal's and CLI's actions (activate,
 * revoke, destroy). An action runs the KMIP operation itself (ops.c) on behalf of the object's
 * owner, so the same rules, events and Activity Log entries apply; a KMIP refusal becomes an
 * Azure-style error (KmipPermissionDenied 409, ...). */
#include <stdlib.h>
#include <string.h>

#include "kmip/objects.h"
#include "kmip/ops.h"
#include "pgcmk/core.h"
#include "pgcmk/http.h"

static void
set_date(json_t *j, const char *k, int64_t s)
{
    char t[PGCMK_TIME_LEN];

    if (!s)
        return;
    pgcmk_time_format(s * 1000, t);
    json_object_set_new(j, k, json_string(t));
}

static json_t *
obj_to_json(const struct kmip_obj *o)
{
    json_t *j = json_object(), *names = json_array();

    json_object_set_new(j, "uniqueIdentifier", json_string(o->uid));
    json_object_set_new(j, "owner", json_string(o->owner));
    json_object_set_new(
        j, "objectType",
        json_string(o->type == KMIP_OBJ_SYMMETRIC_KEY ? "SymmetricKey" : "Unknown"));
    for (size_t i = 0; i < o->n_names; i++)
        json_array_append_new(names, json_string(o->names[i].value));
    json_object_set_new(j, "name", o->n_names ? json_string(o->names[0].value) : json_null());
    json_object_set_new(j, "names", names);
    json_object_set_new(j, "state", json_string(kmip_state_name(o->state)));
    json_object_set_new(j, "cryptographicAlgorithm",
                        o->alg == KMIP_ALG_AES ? json_string("AES") : json_integer(o->alg));
    json_object_set_new(j, "cryptographicLength", json_integer(o->length));
    json_object_set_new(j, "cryptographicUsageMask", json_integer(o->mask));
    set_date(j, "initialDate", o->initial);
    set_date(j, "activationDate", o->activation);
    set_date(j, "deactivationDate", o->deactivation);
    set_date(j, "processStartDate", o->process_start);
    set_date(j, "protectStopDate", o->protect_stop);
    set_date(j, "compromiseOccurrenceDate", o->compromise_occurrence);
    set_date(j, "compromiseDate", o->compromise);
    set_date(j, "destroyDate", o->destroy);
    set_date(j, "lastChangeDate", o->last_change);
    if (o->rev_code) {
        json_t *r = json_pack("{s:s}", "code", kmip_revocation_name(o->rev_code));

        if (o->rev_msg)
            json_object_set_new(r, "message", json_string(o->rev_msg));
        json_object_set_new(j, "revocationReason", r);
    }
    return j;
}

static int
table(struct pgcmk_err *err)
{
    if (kmip_table_ready())
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "The KMIP objects do not load.");
    return 0;
}

static int
emu_kmip_objects(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *owner = pgcmk_req_query(rq, "owner");
    json_t *arr = json_array();
    struct kmip_obj *o;
    uint64_t cur = 0;

    if (table(err)) {
        json_decref(arr);
        return -1;
    }
    kmip_lock();
    while ((o = kmip_obj_prev(&cur)) != NULL) {
        if (owner && strcmp(owner, o->owner) != 0)
            continue;
        o = kmip_obj_find(o->uid);
        json_array_append_new(arr, obj_to_json(o));
    }
    kmip_unlock();
    pgcmk_resp_json(rs, 200, json_pack("{s:o}", "value", arr));
    return 0;
}

static int
emu_kmip_object(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *uid = pgcmk_req_param(rq, "uid");
    struct kmip_obj *o;

    if (table(err))
        return -1;
    kmip_lock();
    o = kmip_obj_find(uid);
    if (!o) {
        kmip_unlock();
        return pgcmk_err_set(err, PGCMK_E_KMIP_OBJECT_NOT_FOUND, "uid",
                             "No KMIP object has the unique identifier '%.64s'.", uid);
    }
    pgcmk_resp_json(rs, 200, obj_to_json(o));
    kmip_unlock();
    return 0;
}

/* Runs op on uid for its owner with a payload of Unique Identifier [+ Revocation Reason]. */
static int
action(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err, uint32_t op,
       uint32_t reason, const char *message)
{
    const char *uid = pgcmk_req_param(rq, "uid");
    struct pgcmk_ttlv_tree t;
    struct pgcmk_ttlv *p, *rr, *resp = NULL;
    struct kmip_call call;
    struct kmip_obj *o;
    char owner[256];
    int rc;

    if (table(err))
        return -1;
    kmip_lock();
    o = kmip_obj_find(uid);
    if (!o) {
        kmip_unlock();
        return pgcmk_err_set(err, PGCMK_E_KMIP_OBJECT_NOT_FOUND, "uid",
                             "No KMIP object has the unique identifier '%.64s'.", uid);
    }
    snprintf(owner, sizeof(owner), "%s", o->owner);
    pgcmk_ttlv_tree_init(&t);
    p = pgcmk_ttlv_new_struct(&t, PGCMK_KMIP_TAG_REQUEST_PAYLOAD);
    pgcmk_ttlv_append(p,
                      pgcmk_ttlv_new_text(&t, PGCMK_KMIP_TAG_UNIQUE_IDENTIFIER, uid, strlen(uid)));
    if (op == PGCMK_KMIP_OP_REVOKE) {
        rr = pgcmk_ttlv_append(p, pgcmk_ttlv_new_struct(&t, PGCMK_KMIP_TAG_REVOCATION_REASON));
        pgcmk_ttlv_append(rr,
                          pgcmk_ttlv_new_enum(&t, PGCMK_KMIP_TAG_REVOCATION_REASON_CODE, reason));
        if (message)
            pgcmk_ttlv_append(rr, pgcmk_ttlv_new_text(&t, PGCMK_KMIP_TAG_REVOCATION_MESSAGE,
                                                      message, strlen(message)));
    }
    memset(&call, 0, sizeof(call));
    call.owner = owner;
    call.major = 1;
    call.minor = 4;
    call.out = &t;
    rc = kmip_op_run(&call, op, p, &resp);
    if (rc == 0)
        pgcmk_resp_json(rs, 200, obj_to_json(kmip_obj_find(uid)));
    kmip_unlock();
    pgcmk_ttlv_tree_release(&t);
    if (rc == 0)
        return 0;
    switch (call.reason) {
    case PGCMK_KMIP_RR_ITEM_NOT_FOUND:
        return pgcmk_err_set(err, PGCMK_E_KMIP_OBJECT_NOT_FOUND, "uid", "%s", call.message);
    case PGCMK_KMIP_RR_PERMISSION_DENIED:
        return pgcmk_err_set(err, PGCMK_E_KMIP_PERMISSION_DENIED, "uid", "%s", call.message);
    case PGCMK_KMIP_RR_ILLEGAL_OPERATION:
        return pgcmk_err_set(err, PGCMK_E_KMIP_ILLEGAL_OPERATION, "uid", "%s", call.message);
    default:
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s", call.message);
    }
}

static int
emu_kmip_activate(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return action(rq, rs, err, PGCMK_KMIP_OP_ACTIVATE, 0, NULL);
}

static int
emu_kmip_destroy(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return action(rq, rs, err, PGCMK_KMIP_OP_DESTROY, 0, NULL);
}

static int
emu_kmip_revoke(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    json_t *reason = json_object_get(rq->json, "reason");
    json_t *message = json_object_get(rq->json, "message");
    uint32_t code;

    if (!json_is_object(rq->json))
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, NULL, "The body must be an object.");
    if (!json_is_string(reason) || kmip_revocation_parse(json_string_value(reason), &code))
        return pgcmk_err_set(err, PGCMK_E_KMIP_INVALID_REVOCATION_REASON, "reason",
                             "reason must be one of Unspecified, KeyCompromise, CACompromise, "
                             "AffiliationChanged, Superseded, CessationOfOperation, "
                             "PrivilegeWithdrawn.");
    if (message && !json_is_string(message) && !json_is_null(message))
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, "message", "message must be a string.");
    return action(rq, rs, err, PGCMK_KMIP_OP_REVOKE, code,
                  json_is_string(message) ? json_string_value(message) : NULL);
}

static const struct pgcmk_route kmip_routes[] = {
    {"GET", "/emulator/kmip/objects", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, "owner", emu_kmip_objects},
    {"GET", "/emulator/kmip/objects/{uid}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL,
     emu_kmip_object},
    {"POST", "/emulator/kmip/objects/{uid}/activate", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
     ROUTE_F_ANYBODY, NULL, emu_kmip_activate},
    {"POST", "/emulator/kmip/objects/{uid}/revoke", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON,
     NULL, emu_kmip_revoke},
    {"POST", "/emulator/kmip/objects/{uid}/destroy", PGCMK_PLANE_ARM, PGCMK_ENV_ARM,
     ROUTE_F_ANYBODY, NULL, emu_kmip_destroy},
};

void
kmip_routes_init(void)
{
    pgcmk_router_add(kmip_routes, PGCMK_ARRAY_LEN(kmip_routes));
}
