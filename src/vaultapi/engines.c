/* engines.c - the kv and transit backend rows (struct pgcmk_vbackend): the Vault pipeline's
 * request mapped onto the engines of kv.c and transit.c (include/pgcmk/vkv.h). */
#include <string.h>

#include "pgcmk/http.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"
#include "pgcmk/vaultapi.h"
#include "pgcmk/vkv.h"

static int
kv_version_of(const struct pgcmk_hv_mount *m)
{
    const char *v = json_string_value(json_object_get(m->options, "version"));

    return v && strcmp(v, "2") == 0 ? 2 : 1;
}

static void
to_call(const struct pgcmk_hv_req *rq, struct pgcmk_vkv_call *c)
{
    memset(c, 0, sizeof(*c));
    c->ns = rq->ns;
    c->mount_uuid = rq->mount->uuid;
    c->mount_path = rq->mount->path;
    c->kv_version = kv_version_of(rq->mount);
    switch (rq->op) {
    case PGCMK_HV_READ:
        c->op = PGCMK_VKV_READ;
        break;
    case PGCMK_HV_WRITE:
        c->op = PGCMK_VKV_WRITE;
        break;
    case PGCMK_HV_LIST:
        c->op = PGCMK_VKV_LIST;
        break;
    case PGCMK_HV_DELETE:
        c->op = PGCMK_VKV_DELETE;
        break;
    case PGCMK_HV_PATCH:
        c->op = PGCMK_VKV_PATCH;
        break;
    }
    c->rel = rq->rest ? rq->rest : "";
    c->q_version = rq->http ? pgcmk_req_query(rq->http, "version") : NULL;
    c->body = rq->body;
    c->caller = rq->token && rq->token->accessor[0] ? rq->token->accessor : NULL;
}

static unsigned
cap_bits(const char *cap)
{
    if (strcmp(cap, "create") == 0)
        return PGCMK_HV_CAP_CREATE;
    if (strcmp(cap, "read") == 0)
        return PGCMK_HV_CAP_READ;
    if (strcmp(cap, "list") == 0)
        return PGCMK_HV_CAP_LIST;
    if (strcmp(cap, "delete") == 0)
        return PGCMK_HV_CAP_DELETE;
    if (strcmp(cap, "patch") == 0)
        return PGCMK_HV_CAP_PATCH;
    return PGCMK_HV_CAP_UPDATE;
}

static int
answer(struct pgcmk_vkv_ans *a, struct pgcmk_hv_resp *rs)
{
    if (a->errors) {
        rs->status = a->status;
        rs->errors = a->errors;
        a->errors = NULL;
        json_decref(a->data);
        a->data = NULL;
        return -1;
    }
    if (a->status == 204 || a->data == NULL) {
        pgcmk_vkv_ans_release(a);
        return pgcmk_hv_no_content(rs);
    }
    pgcmk_hv_data(rs, a->data);
    rs->status = a->status; /* a deleted version: 404 with the metadata in data */
    a->data = NULL;
    return 0;
}

static unsigned
kv_capability(struct pgcmk_hv_req *rq)
{
    struct pgcmk_vkv_call c;

    to_call(rq, &c);
    return cap_bits(pgcmk_vkv_capability(&c));
}

static int
kv_handle(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs)
{
    struct pgcmk_vkv_call c;
    struct pgcmk_vkv_ans a;

    to_call(rq, &c);
    pgcmk_vkv_call(&c, &a);
    return answer(&a, rs);
}

static unsigned
transit_capability(struct pgcmk_hv_req *rq)
{
    struct pgcmk_vkv_call c;

    to_call(rq, &c);
    return cap_bits(pgcmk_vtransit_capability(&c));
}

static int
transit_handle(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs)
{
    struct pgcmk_vkv_call c;
    struct pgcmk_vkv_ans a;

    to_call(rq, &c);
    pgcmk_vtransit_call(&c, &a);
    return answer(&a, rs);
}

static int
kv_on_enable(struct pgcmk_db *db, const struct pgcmk_hv_mount *m, struct pgcmk_err *err)
{
    const json_t *v = json_object_get(m->options, "version");

    (void)db;
    if (v && !(json_is_string(v) &&
               (strcmp(json_string_value(v), "1") == 0 || strcmp(json_string_value(v), "2") == 0)))
        return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "options.version",
                             "version must be \"1\" or \"2\"");
    return 0;
}

static void
engine_on_disable(struct pgcmk_db *db, const struct pgcmk_hv_mount *m)
{
    struct pgcmk_err err;

    pgcmk_err_clear(&err);
    if (pgcmk_vkv_drop_mount(db, m->uuid, &err) != 0)
        LOG_WARN("vaultapi: dropping mount %s: %s", m->path, err.message);
}

static const struct pgcmk_vbackend kv_row = {
    .type = "kv",
    .capability = kv_capability,
    .handle = kv_handle,
    .on_enable = kv_on_enable,
    .on_disable = engine_on_disable,
    .default_version = 1,
};

static const struct pgcmk_vbackend transit_row = {
    .type = "transit",
    .capability = transit_capability,
    .handle = transit_handle,
    .on_disable = engine_on_disable,
};

void
pgcmk_hv_kv_register(void)
{
    pgcmk_vbackend_register(&kv_row);
}

void
pgcmk_hv_transit_register(void)
{
    pgcmk_vbackend_register(&transit_row);
}
