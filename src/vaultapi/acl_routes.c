/* acl_routes.c - h-acl's part of the Vault pipeline: sys/policy, sys/policies/acl,
 * sys/capabilities(-self) (extra sys/ routes) and the "approle" backend row; loads the stored
 * policies at start (pgcmk_hv_acl_register, called by pgcmk_vaultapi_init). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/http.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"
#include "pgcmk/vacl.h"
#include "pgcmk/vapprole.h"
#include "pgcmk/vaultapi.h"

/* Vault's legacy sys/policy answers repeat `data` at the top level. */
static int
legacy(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs, json_t *data)
{
    json_t *env = json_deep_copy(data);

    json_object_set_new(env, "request_id", json_string(rq->http->request_id));
    json_object_set_new(env, "lease_id", json_string(""));
    json_object_set_new(env, "renewable", json_false());
    json_object_set_new(env, "lease_duration", json_integer(0));
    json_object_set_new(env, "data", data);
    json_object_set_new(env, "wrap_info", json_null());
    json_object_set_new(env, "warnings", json_null());
    json_object_set_new(env, "auth", json_null());
    return pgcmk_hv_raw(rs, 200, env);
}

/* The policy name after "policy/" or "policies/acl/": lower-cased as Vault does. */
static int
policy_name(const char *rest, const char *prefix, char *out, size_t cap)
{
    size_t pl = strlen(prefix), n;

    if (strncmp(rest, prefix, pl) != 0 || rest[pl] != '/')
        return 0;
    rest += pl + 1;
    n = strlen(rest);
    if (n == 0 || n >= cap || strchr(rest, '/'))
        return -1;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)rest[i]);
    return 1;
}

static int
policy_handle(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs, const char *prefix, int modern)
{
    char name[257], msg[600];
    int rc = policy_name(rq->rest, prefix, name, sizeof(name));

    if (rc < 0)
        return pgcmk_hv_error(rs, 400, "invalid policy name");
    if (rc == 0) { /* the collection */
        json_t *keys, *data;

        if (rq->op != PGCMK_HV_READ && rq->op != PGCMK_HV_LIST)
            return pgcmk_hv_bad_method(rs);
        if (modern && rq->op != PGCMK_HV_LIST)
            return pgcmk_hv_bad_method(rs);
        keys = pgcmk_vacl_policy_list(rq->ns);
        if (modern)
            return pgcmk_hv_data(rs, json_pack("{s:o}", "keys", keys));
        data = json_pack("{s:O, s:o}", "keys", keys, "policies", keys);
        return legacy(rq, rs, data);
    }
    switch (rq->op) {
    case PGCMK_HV_READ: {
        char *text = pgcmk_vacl_policy_get(rq->ns, name);
        json_t *data;

        /* Vault's policy store answers root (root namespace only) with an empty body */
        if (text == NULL && strcmp(name, "root") == 0 && *rq->ns == '\0')
            text = strdup("");
        if (text == NULL) {
            rs->status = 404;
            rs->errors = json_array();
            return -1;
        }
        data = json_pack("{s:s, s:s}", "name", name, modern ? "policy" : "rules", text);
        free(text);
        return modern ? pgcmk_hv_data(rs, data) : legacy(rq, rs, data);
    }
    case PGCMK_HV_WRITE: {
        json_t *p = rq->body ? json_object_get(rq->body, "policy") : NULL;

        if (p == NULL && rq->body && !modern)
            p = json_object_get(rq->body, "rules");
        if (!json_is_string(p) || *json_string_value(p) == '\0')
            return pgcmk_hv_error(rs, 400, "'policy' parameter not supplied or empty");
        rc = pgcmk_vacl_policy_write(rq->ns, name, json_string_value(p), msg, sizeof(msg));
        if (rc == -1)
            return pgcmk_hv_error(rs, 400, "%s", msg);
        if (rc < 0)
            return pgcmk_hv_error(rs, 500, "internal error");
        return pgcmk_hv_no_content(rs);
    }
    case PGCMK_HV_DELETE:
        rc = pgcmk_vacl_policy_delete(rq->ns, name, msg, sizeof(msg));
        if (rc == -1)
            return pgcmk_hv_error(rs, 400, "%s", msg);
        if (rc < 0)
            return pgcmk_hv_error(rs, 500, "internal error");
        return pgcmk_hv_no_content(rs);
    default:
        return pgcmk_hv_bad_method(rs);
    }
}

static int
sys_policy(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs)
{
    return policy_handle(rq, rs, "policy", 0);
}

static int
sys_policies_acl(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs)
{
    return policy_handle(rq, rs, "policies/acl", 1);
}

/* sys/capabilities(-self): {"path": "x"} or {"paths": [...]}; answers each path's list and, for
 * one path, "capabilities". */
static int
capabilities_of(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs, const struct pgcmk_hv_token *t)
{
    json_t *paths = rq->body ? json_object_get(rq->body, "paths") : NULL, *data, *one = NULL;
    json_t *p = rq->body ? json_object_get(rq->body, "path") : NULL;
    const char *pol[64];
    int n = 0;
    size_t i;
    json_t *e;

    if (json_is_string(paths) || json_is_string(p)) {
        one = json_array();
        json_array_append(one, json_is_string(paths) ? paths : p);
        paths = one;
    }
    if (!json_is_array(paths) || json_array_size(paths) == 0) {
        json_decref(one);
        return pgcmk_hv_error(rs, 400, "missing paths");
    }
    for (i = 0; i < json_array_size(t->policies) && n < 64; i++)
        pol[n++] = json_string_value(json_array_get(t->policies, i));
    data = json_object();
    json_array_foreach(paths, i, e) {
        const char *path = json_string_value(e);
        unsigned caps;
        json_t *list;

        if (path == NULL)
            continue;
        while (*path == '/')
            path++;
        caps = t->root ? PGCMK_VCAP_ALL : pgcmk_vacl_capabilities(t->ns, pol, n, path);
        list = pgcmk_vacl_caps_json(caps, t->root);
        if (json_array_size(paths) == 1)
            json_object_set(data, "capabilities", list);
        json_object_set_new(data, json_string_value(e), list);
    }
    json_decref(one);
    return pgcmk_hv_data(rs, data);
}

static int
sys_capabilities_self(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs)
{
    if (rq->op != PGCMK_HV_WRITE)
        return pgcmk_hv_bad_method(rs);
    if (rq->token == NULL)
        return pgcmk_hv_error(rs, 403, PGCMK_HV_E_DENIED);
    return capabilities_of(rq, rs, rq->token);
}

static int
sys_capabilities(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs)
{
    const char *token = rq->body ? json_string_value(json_object_get(rq->body, "token")) : NULL;
    struct pgcmk_hv_token t;
    int rc;

    if (strcmp(rq->rest, "capabilities") != 0)
        return pgcmk_hv_no_route(rq, rs);
    if (rq->op != PGCMK_HV_WRITE)
        return pgcmk_hv_bad_method(rs);
    if (token == NULL || *token == '\0')
        return capabilities_of(rq, rs, rq->token);
    memset(&t, 0, sizeof(t));
    if (!pgcmk_hv_token_lookup(token, &t))
        return pgcmk_hv_error(rs, 400, "invalid token");
    rc = capabilities_of(rq, rs, &t);
    pgcmk_hv_token_release(&t);
    return rc;
}

static const struct pgcmk_hv_sys_route route_policy = {"policy", NULL, sys_policy, 0};
static const struct pgcmk_hv_sys_route route_policies_acl = {"policies/acl", NULL, sys_policies_acl,
                                                             0};
static const struct pgcmk_hv_sys_route route_caps_self = {"capabilities-self", NULL,
                                                          sys_capabilities_self, 0};
static const struct pgcmk_hv_sys_route route_caps = {"capabilities", NULL, sys_capabilities, 0};

/* ---- the approle backend row ---------------------------------------------------------------- */

static enum pgcmk_approle_op
ar_op(enum pgcmk_hv_op op)
{
    switch (op) {
    case PGCMK_HV_READ:
        return PGCMK_AR_READ;
    case PGCMK_HV_LIST:
        return PGCMK_AR_LIST;
    case PGCMK_HV_DELETE:
        return PGCMK_AR_DELETE;
    default:
        return PGCMK_AR_WRITE;
    }
}

static unsigned
approle_capability(struct pgcmk_hv_req *rq)
{
    switch (rq->op) {
    case PGCMK_HV_READ:
        return PGCMK_HV_CAP_READ;
    case PGCMK_HV_LIST:
        return PGCMK_HV_CAP_LIST;
    case PGCMK_HV_DELETE:
        return PGCMK_HV_CAP_DELETE;
    default:
        break;
    }
    if (pgcmk_approle_unauthenticated(rq->rest))
        return PGCMK_HV_CAP_NONE;
    /* role/NAME: create when it does not exist yet (Vault's existence check) */
    if (strncmp(rq->rest, "role/", 5) == 0 && strchr(rq->rest + 5, '/') == NULL &&
        !pgcmk_approle_exists(rq->ns, rq->mount->path, rq->rest))
        return PGCMK_HV_CAP_CREATE;
    return PGCMK_HV_CAP_UPDATE;
}

static int
approle_unauthenticated(const struct pgcmk_hv_req *rq)
{
    return pgcmk_approle_unauthenticated(rq->rest);
}

static int
approle_handle(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs)
{
    struct pgcmk_approle_login lg;
    json_t *data = NULL;
    char msg[512];
    int st;

    memset(&lg, 0, sizeof(lg));
    st = pgcmk_approle_handle(rq->ns, rq->mount->path, ar_op(rq->op), rq->rest, rq->body, &data,
                              &lg, msg, sizeof(msg));
    if (st == 200 && data)
        return pgcmk_hv_data(rs, data);
    if (st == 200) { /* login */
        const char *pol[64];
        int n = 0;
        struct pgcmk_hv_token_spec spec;
        struct pgcmk_err err = {0};
        char *auth = NULL;

        for (size_t i = 0; i < json_array_size(lg.policies) && n < 64; i++)
            pol[n++] = json_string_value(json_array_get(lg.policies, i));
        memset(&spec, 0, sizeof(spec));
        spec.ns = rq->ns;
        spec.policies = pol;
        spec.n_policies = n;
        spec.no_default_policy = lg.no_default_policy;
        spec.ttl_s = lg.ttl_s;
        spec.explicit_max_ttl_s = lg.explicit_max_ttl_s ? lg.explicit_max_ttl_s : lg.max_ttl_s;
        spec.period_s = lg.period_s;
        spec.num_uses = (int)lg.num_uses;
        spec.renewable = 1;
        spec.display_name = "approle";
        spec.meta = lg.metadata;
        if (pgcmk_hv_token_issue(&spec, &auth, &err) < 0) {
            pgcmk_approle_login_free(&lg);
            return pgcmk_hv_error(rs, 500, "internal error");
        }
        pgcmk_approle_login_free(&lg);
        rs->auth_text = auth;
        return 0;
    }
    json_decref(data);
    switch (st) {
    case 204:
        return pgcmk_hv_no_content(rs);
    case 404:
        if (msg[0])
            return pgcmk_hv_error(rs, 404, "%s", msg);
        rs->status = 404;
        rs->errors = json_array();
        return -1;
    case 405:
        return pgcmk_hv_bad_method(rs);
    case 400:
        return pgcmk_hv_error(rs, 400, "%s", msg);
    default:
        return pgcmk_hv_error(rs, 500, "internal error");
    }
}

static void
approle_on_disable(struct pgcmk_db *db, const struct pgcmk_hv_mount *m)
{
    pgcmk_approle_purge(db, m->ns, m->path);
}

static const struct pgcmk_vbackend approle_backend = {
    .type = "approle",
    .is_auth = 1,
    .capability = approle_capability,
    .handle = approle_handle,
    .on_disable = approle_on_disable,
    .unauthenticated = approle_unauthenticated,
};

void
pgcmk_hv_acl_register(void)
{
    struct pgcmk_err err = {0};

    if (pgcmk_vacl_load(&err) < 0)
        LOG_ERR("vault policies not loaded: %s", err.message);
    pgcmk_hv_sys_route_add(&route_policies_acl);
    pgcmk_hv_sys_route_add(&route_policy);
    pgcmk_hv_sys_route_add(&route_caps_self);
    pgcmk_hv_sys_route_add(&route_caps);
    pgcmk_vbackend_register(&approle_backend);
}
