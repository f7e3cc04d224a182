/* generic.c - the provider table and the generic CRUD every registered type gets:
 * PUT (201/200), GET, PATCH, DELETE (200/204), lists by group, subscription and parent. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/log.h"
#include "pgcmk/schema.h"
#include "pgcmk/store.h"
#include "arm/internal.h"

#define ARM_MAX_TYPES 64

static const struct pgcmk_arm_type *arm_types[ARM_MAX_TYPES];
static size_t arm_n_types;
static pgcmk_arm_identity_fn arm_identity_hook;

void
pgcmk_arm_set_identity_hook(pgcmk_arm_identity_fn fn)
{
    arm_identity_hook = fn;
}

void
pgcmk_arm_register(const struct pgcmk_arm_type *t)
{
    if (arm_n_types == ARM_MAX_TYPES)
        PGCMK_BUG("too many resource types");
    arm_types[arm_n_types++] = t;
}

size_t
pgcmk_arm_types(const struct pgcmk_arm_type *const **out)
{
    *out = arm_types;
    return arm_n_types;
}

const struct pgcmk_arm_type *
pgcmk_arm_find_type(const char *ns, const char *type)
{
    for (size_t i = 0; i < arm_n_types; i++)
        if (strcasecmp(arm_types[i]->ns, ns) == 0 && strcasecmp(arm_types[i]->type, type) == 0)
            return arm_types[i];
    return NULL;
}

int
pgcmk_arm_known_namespace(const char *ns)
{
    for (size_t i = 0; i < arm_n_types; i++)
        if (strcasecmp(arm_types[i]->ns, ns) == 0)
            return 1;
    return 0;
}

static int
generic_default_name(const char *name, struct pgcmk_err *err)
{
    size_t n = strlen(name);
    int ok = n >= 1 && n <= 128;

    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)name[i]) || name[i] == '-' || name[i] == '_' || name[i] == '.';
    return ok ? 0
              : pgcmk_err_set(err, PGCMK_E_INVALID_RESOURCE_NAME, "name",
                              "The resource name '%.128s' is invalid.", name);
}

/* A request on {scope}/providers/{ns}/{rest}: the id and what it names. */
struct generic_target {
    struct pgcmk_arm_id id;
    const struct pgcmk_arm_type *type;
    int is_list; /* the path ends with a type (a collection) */
    char type_path[256];
};

static int
generic_resolve(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct generic_target *t,
                struct pgcmk_err *err)
{
    const char *sub = pgcmk_req_param(rq, "sub"), *rg = pgcmk_req_param(rq, "rg");
    const char *ns = pgcmk_req_param(rq, "ns");
    char rest[2048], *save = NULL;
    int nseg = 0;
    size_t tp = 0;

    PGCMK_UNUSED(rs);
    memset(t, 0, sizeof(*t));
    if (pgcmk_arm_check_sub(sub, err))
        return -1;
    snprintf(t->id.sub, sizeof(t->id.sub), "%s", sub);
    snprintf(t->id.rg, sizeof(t->id.rg), "%s", rg ? rg : "");
    snprintf(t->id.ns, sizeof(t->id.ns), "%s", ns);
    snprintf(rest, sizeof(rest), "%s", pgcmk_req_param(rq, "rest"));
    for (char *s = strtok_r(rest, "/", &save); s; s = strtok_r(NULL, "/", &save), nseg++) {
        int k = nseg / 2;

        if (k >= PGCMK_ID_MAX_TYPES)
            return pgcmk_err_set(err, PGCMK_E_NOT_FOUND, NULL,
                                 "The requested path '%.128s' is not served by this emulator.",
                                 rq->path);
        if (strlen(s) >= (nseg % 2 == 0 ? sizeof(t->id.types[k]) : sizeof(t->id.names[k])))
            return nseg % 2 == 0 ? pgcmk_err_set(err, PGCMK_E_INVALID_RESOURCE_TYPE, NULL,
                                                 "The resource type '%.64s...' is not valid.", s)
                                 : pgcmk_err_set(err, PGCMK_E_INVALID_RESOURCE_NAME, "name",
                                                 "The resource name '%.128s...' is too long.", s);
        if (nseg % 2 == 0) {
            snprintf(t->id.types[k], sizeof(t->id.types[k]), "%s", s);
            tp += (size_t)snprintf(t->type_path + tp, sizeof(t->type_path) - tp, "%s%s",
                                   k ? "/" : "", s);
            t->id.n_types = k + 1;
        } else {
            snprintf(t->id.names[k], sizeof(t->id.names[k]), "%s", s);
        }
    }
    t->is_list = nseg % 2 == 1;
    if (!pgcmk_arm_known_namespace(ns))
        return pgcmk_err_set(err, PGCMK_E_INVALID_NAMESPACE, NULL,
                             "The resource namespace '%.64s' is invalid.", ns);
    t->type = pgcmk_arm_find_type(ns, t->type_path);
    if (t->type == NULL)
        return pgcmk_err_set(err, PGCMK_E_INVALID_RESOURCE_TYPE, NULL,
                             "The resource type '%.128s' could not be found in the namespace "
                             "'%.64s' for api version '%.32s'.",
                             t->type_path, ns, rq->api_version ? rq->api_version : "");
    if (pgcmk_arm_check_version(rq, t->type_path, t->type->versions, err))
        return -1;
    if (rg && pgcmk_arm_rg_usable(sub, rg, err))
        return -1;
    return 0;
}

/* Reads a stored body: 1 found, 0 absent, -1 error. */
static int
generic_load(struct pgcmk_db *db, const char *id, char **body, char **etag, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_RES_GET);
    int rc;

    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (body)
            *body = pgcmk_xstrdup((const char *)sqlite3_column_text(st, 0));
        if (etag)
            *etag = pgcmk_xstrdup((const char *)sqlite3_column_text(st, 1));
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = pgcmk_db_fail(db, rc, "read resource", err);
    }
    pgcmk_db_done(st);
    return rc;
}

int
pgcmk_arm_resource_get(struct pgcmk_db *db, const char *id, json_t **body, struct pgcmk_err *err)
{
    char *text = NULL;
    int rc = generic_load(db, id, &text, NULL, err);

    *body = NULL;
    if (rc == 1) {
        *body = json_loads(text, 0, NULL);
        free(text);
        if (*body == NULL)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "a stored resource is not JSON");
    }
    return rc;
}

int
pgcmk_arm_resource_put(struct pgcmk_db *db, const char *id, const json_t *body,
                       struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_RES_UPDATE);
    char *text = json_dumps(body, JSON_COMPACT), etag[40], uuid[37];
    int rc;

    pgcmk_uuid(uuid);
    snprintf(etag, sizeof(etag), "\"%s\"", uuid);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, "Succeeded", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, etag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, pgcmk_clock_now());
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    free(text);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "update resource", err);
}

int
pgcmk_arm_resource_save(struct pgcmk_db *db, const char *id, const json_t *body,
                        struct pgcmk_err *err)
{
    struct pgcmk_arm_id pid;
    char type[256], *parent = NULL, *text, etag[40], uuid[37];
    sqlite3_stmt *st;
    int rc = generic_load(db, id, NULL, NULL, err);

    if (rc < 0)
        return -1;
    if (rc > 0)
        return pgcmk_arm_resource_put(db, id, body, err);
    if (pgcmk_arm_id_parse(id, &pid, err))
        return -1;
    pgcmk_arm_id_type(&pid, type, sizeof(type));
    if (pid.n_types > 1) {
        struct pgcmk_arm_id up = pid;

        up.n_types--;
        parent = pgcmk_arm_id_format(&up);
    }
    text = json_dumps(body, JSON_COMPACT);
    pgcmk_uuid(uuid);
    snprintf(etag, sizeof(etag), "\"%s\"", uuid);
    st = pgcmk_db_stmt(db, PGCMK_STMT_RES_INSERT);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, pid.sub, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, pid.rg[0] ? pid.rg : NULL, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, pid.names[pid.n_types - 1], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, parent, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, json_string_value(json_object_get(body, "location")), -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 8, text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, "Succeeded", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, etag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, pgcmk_clock_now());
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    free(text);
    free(parent);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "write resource", err);
}

int
pgcmk_arm_resource_remove(struct pgcmk_db *db, const char *id, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_RES_DELETE_TREE);
    int rc;

    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "delete resource", err);
}

int
pgcmk_arm_resource_children(struct pgcmk_db *db, const char *parent, const char *type,
                            json_t **items, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_RES_LIST_CHILDREN);
    int rc;

    *items = json_array();
    sqlite3_bind_text(st, 1, parent, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    rc = pgcmk_db_each(db, st, pgcmk_db_collect_json, *items, "list child resources", err);
    if (rc >= 0)
        return 0;
    json_decref(*items);
    *items = NULL;
    return -1;
}

int
pgcmk_arm_resource_by_name(struct pgcmk_db *db, const char *type, const char *name, char **id,
                           char **etag, json_t **body, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_RES_ETAG_BY_TYPE_NAME);
    int rc;

    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (id)
            *id = pgcmk_xstrdup((const char *)sqlite3_column_text(st, 0));
        if (etag)
            *etag = pgcmk_xstrdup((const char *)sqlite3_column_text(st, 1));
        if (body)
            *body = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = pgcmk_db_fail(db, rc, "read resource by name", err);
    }
    pgcmk_db_done(st);
    return rc;
}

static int
generic_not_found(const struct generic_target *t, struct pgcmk_err *err)
{
    char type[256];

    pgcmk_arm_id_type(&t->id, type, sizeof(type));
    return pgcmk_err_set(err, PGCMK_E_RESOURCE_NOT_FOUND, NULL,
                         "The Resource '%s/%.128s' under resource group '%.96s' was not found. For "
                         "more details please go to https://aka.ms/ARMResourceNotFoundFix",
                         type, t->id.names[t->id.n_types - 1], t->id.rg);
}

/* The asynchronous part of an ARM_T_ASYNC PUT. */
struct generic_job {
    const struct pgcmk_arm_type *type;
    char *id;
    int created;
    json_t *body; /* ARM_T_DEFER_STORE: what on_write completed */
};

static void
generic_provision_job(void *arg, struct pgcmk_lro_result *out)
{
    struct generic_job *job = arg;
    struct pgcmk_err err;
    json_t *body = NULL;

    memset(&err, 0, sizeof(err));
    if ((job->type->flags & ARM_T_DEFER_STORE)
            ? job->type->provision_put(job->id, job->body, &err)
            : job->type->provision(job->id, job->created, &err)) {
        out->failed = 1;
        out->err = err;
    } else if (pgcmk_arm_resource_get(pgcmk_db(), job->id, &body, &err) > 0) {
        out->status = 200;
        out->body = body;
    } else {
        out->status = 200;
    }
    json_decref(job->body);
    free(job->id);
    free(job);
}

struct generic_write {
    struct pgcmk_req *rq;
    struct generic_target *t;
    int created, patch;
    char *out;
    int accepted, retried; /* answer 202 without a body; a failed create was removed first */
    json_t *body;          /* ARM_T_DEFER_STORE: the body for the worker */
    char location[64];     /* where the operation runs: the resource's or its parent's */
};

static int generic_delete_one(struct pgcmk_db *db, struct pgcmk_req *rq,
                              const struct pgcmk_arm_type *type, const struct pgcmk_arm_id *id,
                              const char *id_text, const char *stored, struct pgcmk_err *err);

/* 1 when a stored body says its create failed (properties.provisioningState "Failed"). */
static int
generic_create_failed(const char *stored)
{
    json_t *b = json_loads(stored, 0, NULL);
    const char *ps =
        json_string_value(json_object_get(json_object_get(b, "properties"), "provisioningState"));
    int failed = ps && strcasecmp(ps, "Failed") == 0;

    json_decref(b);
    return failed;
}

static int
generic_write_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct generic_write *w = ctx;
    struct generic_target *t = w->t;
    struct pgcmk_arm_ctx ac;
    char *stored = NULL, *etag = NULL, *parent = NULL, type[256], new_etag[40], uuid[37];
    json_t *in = w->rq->json, *body;
    sqlite3_stmt *st;
    int rc, found;

    memset(&ac, 0, sizeof(ac));
    ac.rq = w->rq;
    ac.type = t->type;
    ac.id = t->id;
    ac.id_text = pgcmk_arm_id_format(&t->id);
    found = generic_load(db, ac.id_text, &stored, &etag, err);
    if (found < 0)
        goto fail;
    if (pgcmk_arm_check_preconditions(w->rq, found ? etag : NULL, err))
        goto fail;
    if (found && !w->patch && (t->type->flags & ARM_T_ASYNC) && generic_create_failed(stored)) {
        /* the ARM convention: a PUT on a resource whose create failed creates it again */
        if (generic_delete_one(db, w->rq, t->type, &t->id, ac.id_text, stored, err))
            goto fail;
        free(stored);
        free(etag);
        stored = etag = NULL;
        found = 0;
        w->retried = 1;
    }
    if (w->patch && !found) {
        generic_not_found(t, err);
        goto fail;
    }
    if (t->id.n_types > 1) {
        struct pgcmk_arm_id pid = t->id;
        char *pbody = NULL;
        int pf;

        pid.n_types--;
        parent = pgcmk_arm_id_format(&pid);
        pf = generic_load(db, parent, &pbody, NULL, err);
        if (pf > 0) {
            json_t *pb = json_loads(pbody, 0, NULL);
            const char *pl = json_string_value(json_object_get(pb, "location"));

            snprintf(w->location, sizeof(w->location), "%s", pl ? pl : "");
            json_decref(pb);
        }
        free(pbody);
        if (pf < 0)
            goto fail;
        if (pf == 0) {
            pgcmk_err_set(err, PGCMK_E_PARENT_NOT_FOUND, NULL,
                          "Can not perform requested operation on nested resource. Parent "
                          "resource '%.128s' not found.",
                          pid.names[pid.n_types - 1]);
            goto fail;
        }
    }
    ac.existing = found ? json_loads(stored, 0, NULL) : NULL;
    if (w->patch) {
        const char *k;
        json_t *v;

        body = json_deep_copy(ac.existing);
        json_object_foreach(in, k, v) {
            if (strcmp(k, "properties") == 0 && json_is_object(v) &&
                json_is_object(json_object_get(body, "properties")))
                json_object_update(json_object_get(body, "properties"), v);
            else if (strcmp(k, "tags") == 0 || strcmp(k, "identity") == 0 ||
                     strcmp(k, "sku") == 0 || strcmp(k, "properties") == 0)
                json_object_set(body, k, v);
        }
    } else {
        json_t *loc = json_object_get(in, "location"), *props = json_object_get(in, "properties");

        pgcmk_arm_id_type(&t->id, type, sizeof(type));
        body = json_pack("{s:s, s:s, s:s}", "id", ac.id_text, "name",
                         t->id.names[t->id.n_types - 1], "type", type);
        if (t->type->flags & ARM_T_TRACKED) {
            if (!json_is_string(loc) || json_string_length(loc) == 0) {
                json_decref(body);
                pgcmk_err_set(err, PGCMK_E_LOCATION_REQUIRED, "location",
                              "The location property is required for this definition.");
                goto fail;
            }
            if (!pgcmk_arm_location_ok(json_string_value(loc))) {
                json_decref(body);
                pgcmk_arm_id_type(&t->id, type, sizeof(type));
                pgcmk_err_set(err, PGCMK_E_LOCATION_NOT_AVAILABLE, "location",
                              "The provided location '%.64s' is not available for resource type "
                              "'%s'. List of available regions for the resource type is '%s'.",
                              json_string_value(loc), type, pgcmk_arm_locations_text());
                goto fail;
            }
            if (found && strcasecmp(json_string_value(loc),
                                    json_string_value(json_object_get(ac.existing, "location")))) {
                const char *was = json_string_value(json_object_get(ac.existing, "location"));

                json_decref(body);
                pgcmk_err_set(err, PGCMK_E_RESOURCE_LOCATION_CONFLICT, "location",
                              "The resource '%.128s' already exists in location '%.64s' in "
                              "resource group '%.96s'. A resource with the same name cannot be "
                              "created in location '%.64s'. Please select a new resource name.",
                              t->id.names[t->id.n_types - 1], was ? was : "", t->id.rg,
                              json_string_value(loc));
                goto fail;
            }
            json_object_set(body, "location", loc);
            json_object_set_new(body, "tags",
                                json_is_object(json_object_get(in, "tags"))
                                    ? json_deep_copy(json_object_get(in, "tags"))
                                    : json_object());
        }
        if (json_object_get(in, "identity"))
            json_object_set(body, "identity", json_object_get(in, "identity"));
        if (json_object_get(in, "sku"))
            json_object_set(body, "sku", json_object_get(in, "sku"));
        if (props && !json_is_null(props) && !json_is_object(props)) {
            json_decref(body);
            pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, "properties",
                          "The request content was invalid and could not be deserialized: "
                          "'properties must be an object.'");
            goto fail;
        }
        json_object_set_new(body, "properties",
                            json_is_object(props) ? json_deep_copy(props) : json_object());
    }
    json_object_set_new(body, "systemData",
                        pgcmk_arm_system_data(w->rq, json_object_get(ac.existing, "systemData")));
    ac.body = body;
    if (!(t->type->flags & ARM_T_IDENTITY)) {
        json_object_del(body, "identity"); /* types without identities ignore the block */
    } else if (arm_identity_hook && arm_identity_hook(&ac, 0, err)) {
        json_decref(body);
        goto fail;
    }
    pgcmk_arm_id_type(&t->id, type, sizeof(type));
    if (pgcmk_schema_check(type, w->rq->api_version, in, w->patch ? PGCMK_SCHEMA_F_PATCH : 0,
                           err)) {
        json_decref(body);
        goto fail;
    }
    if (t->type->on_write && t->type->on_write(&ac, err)) {
        json_decref(body);
        goto fail;
    }
    if (json_string_value(json_object_get(body, "location")))
        snprintf(w->location, sizeof(w->location), "%s",
                 json_string_value(json_object_get(body, "location")));
    w->accepted = !w->patch && (t->type->flags & ARM_T_ASYNC) &&
                  (t->type->flags & ARM_T_ACCEPTED) &&
                  (!t->type->accepted || t->type->accepted(&ac));
    w->out = json_dumps(body, JSON_COMPACT);
    w->created = !found;
    if (!w->patch && (t->type->flags & ARM_T_DEFER_STORE)) {
        w->body = body; /* stored by the worker when it succeeds */
        json_decref(ac.existing);
        free(stored);
        free(etag);
        free(parent);
        free(ac.id_text);
        return 0;
    }
    pgcmk_uuid(uuid);
    snprintf(new_etag, sizeof(new_etag), "\"%s\"", uuid);
    st = pgcmk_db_stmt(db, found ? PGCMK_STMT_RES_UPDATE : PGCMK_STMT_RES_INSERT);
    sqlite3_bind_text(st, 1, ac.id_text, -1, SQLITE_STATIC);
    if (found) {
        sqlite3_bind_text(st, 2, w->out, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, "Succeeded", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, new_etag, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, pgcmk_clock_now());
    } else {
        pgcmk_arm_id_type(&t->id, type, sizeof(type));
        sqlite3_bind_text(st, 2, t->id.sub, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, t->id.rg[0] ? t->id.rg : NULL, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, t->id.names[t->id.n_types - 1], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, parent, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, json_string_value(json_object_get(body, "location")), -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(st, 8, w->out, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, "Succeeded", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 10, new_etag, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 11, pgcmk_clock_now());
    }
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    json_decref(body);
    json_decref(ac.existing);
    free(stored);
    free(etag);
    free(parent);
    free(ac.id_text);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "write resource", err);
fail:
    json_decref(ac.existing);
    free(stored);
    free(etag);
    free(parent);
    free(ac.id_text);
    return -1;
}

static int
generic_not_allowed(struct pgcmk_req *rq, struct pgcmk_err *err)
{
    return pgcmk_err_set(err, PGCMK_E_METHOD_NOT_ALLOWED, NULL,
                         "The requested resource does not support http method '%s'.", rq->method);
}

/* ARM_T_EXTERNAL: the body of the nearest stored ancestor (ctx->parent, owned by the caller) or
 * ParentResourceNotFound. */
static int
generic_ext_ctx(struct pgcmk_req *rq, struct generic_target *t, struct pgcmk_arm_ctx *ac,
                struct pgcmk_err *err)
{
    struct pgcmk_arm_id pid = t->id;
    char *parent;
    int rc;

    memset(ac, 0, sizeof(*ac));
    ac->rq = rq;
    ac->type = t->type;
    ac->id = t->id;
    /* the nearest ancestor the engine stores (vaults/keys/versions: the vault) */
    for (pid.n_types--; pid.n_types > 1; pid.n_types--) {
        char path[256];
        size_t n = 0;
        const struct pgcmk_arm_type *up;

        for (int i = 0; i < pid.n_types; i++)
            n += (size_t)snprintf(path + n, sizeof(path) - n, "%s%s", i ? "/" : "", pid.types[i]);
        up = pgcmk_arm_find_type(pid.ns, path);
        if (!up || !(up->flags & ARM_T_EXTERNAL))
            break;
    }
    parent = pgcmk_arm_id_format(&pid);
    rc = pgcmk_arm_resource_get(pgcmk_db(), parent, &ac->parent, err);
    free(parent);
    if (rc > 0) {
        if (!t->is_list)
            ac->id_text = pgcmk_arm_id_format(&t->id);
        return 0;
    }
    return rc < 0 ? -1
                  : pgcmk_err_set(err, PGCMK_E_PARENT_NOT_FOUND, NULL,
                                  "Can not perform requested operation on nested resource. Parent "
                                  "resource '%.128s' not found.",
                                  pid.names[pid.n_types - 1]);
}

static void
generic_ext_release(struct pgcmk_arm_ctx *ac)
{
    json_decref(ac->parent);
    free(ac->id_text);
}

static int
generic_ext_put(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct generic_target *t,
                struct pgcmk_err *err)
{
    struct pgcmk_arm_ctx ac;
    json_t *out = NULL;
    char type[256];
    int status = 200, rc;

    pgcmk_arm_id_type(&t->id, type, sizeof(type));
    if (pgcmk_schema_check(type, rq->api_version, rq->json, 0, err) ||
        generic_ext_ctx(rq, t, &ac, err))
        return -1;
    rc = t->type->ext_put(&ac, &out, &status, err);
    generic_ext_release(&ac);
    if (rc)
        return -1;
    pgcmk_resp_json(rs, status, out);
    return 0;
}

static int
generic_put_or_patch(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err, int patch)
{
    struct generic_target t;
    struct generic_write w;
    int (*check_name)(const char *, struct pgcmk_err *);

    memset(&w, 0, sizeof(w));
    w.rq = rq;
    w.t = &t;
    w.patch = patch;
    if (generic_resolve(rq, rs, &t, err))
        return -1;
    if (t.is_list || (t.type->flags & ARM_T_NO_PUT) || (patch && (t.type->flags & ARM_T_NO_PATCH)))
        return generic_not_allowed(rq, err);
    check_name = t.type->check_name ? t.type->check_name : generic_default_name;
    if (check_name(t.id.names[t.id.n_types - 1], err))
        return -1;
    if (t.type->flags & ARM_T_EXTERNAL)
        return patch ? generic_not_allowed(rq, err) : generic_ext_put(rq, rs, &t, err);
    if (pgcmk_db_tx(pgcmk_db(), generic_write_tx, &w, err)) {
        json_decref(w.body);
        free(w.out);
        return -1;
    }
    if (w.retried && t.type->after_delete) {
        char *id = pgcmk_arm_id_format(&t.id);

        t.type->after_delete(id);
        free(id);
    }
    if (!patch && (t.type->flags & ARM_T_ASYNC) &&
        (t.type->provision || (t.type->flags & ARM_T_DEFER_STORE))) {
        struct generic_job *job = pgcmk_xcalloc(1, sizeof(*job));
        char *id = pgcmk_arm_id_format(&t.id);

        job->type = t.type;
        job->id = id;
        job->created = w.created;
        job->body = w.body;
        w.body = NULL;
        if (pgcmk_lro_start(rq, rs, t.id.sub, t.type->ns, w.location[0] ? w.location : "eastus",
                            w.created ? "Create" : "Update", id, generic_provision_job, job, err)) {
            json_decref(job->body);
            free(job->id);
            free(job);
            free(w.out);
            return -1;
        }
    }
    json_decref(w.body);
    if (w.accepted && !(t.type->flags & ARM_T_ACCEPTED_BODY))
        pgcmk_resp_empty(rs, 202);
    else if (w.accepted)
        pgcmk_arm_send_stored(rs, 202, w.out);
    else
        pgcmk_arm_send_stored(rs, w.created ? 201 : 200, w.out);
    free(w.out);
    return 0;
}

static int
generic_put(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return generic_put_or_patch(rq, rs, err, 0);
}

static int
generic_patch(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    return generic_put_or_patch(rq, rs, err, 1);
}

static int
generic_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct generic_target *t,
             struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    json_t *items = json_array();
    char type[256], *parent = NULL;
    sqlite3_stmt *st;
    int rc;

    pgcmk_arm_id_type(&t->id, type, sizeof(type));
    if (t->id.n_types > 1) {
        struct pgcmk_arm_id pid = t->id;
        char *pbody = NULL;

        pid.n_types--;
        parent = pgcmk_arm_id_format(&pid);
        rc = generic_load(db, parent, &pbody, NULL, err);
        free(pbody);
        if (rc <= 0) {
            free(parent);
            json_decref(items);
            if (rc < 0)
                return -1;
            return pgcmk_err_set(err, PGCMK_E_PARENT_NOT_FOUND, NULL,
                                 "Can not perform requested operation on nested resource. Parent "
                                 "resource '%.128s' not found.",
                                 pid.names[pid.n_types - 1]);
        }
        st = pgcmk_db_stmt(db, PGCMK_STMT_RES_LIST_CHILDREN);
        sqlite3_bind_text(st, 1, parent, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, type, -1, SQLITE_TRANSIENT);
        free(parent);
    } else if (t->id.rg[0]) {
        st = pgcmk_db_stmt(db, PGCMK_STMT_RES_LIST_RG);
        sqlite3_bind_text(st, 1, t->id.sub, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, t->id.rg, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, type, -1, SQLITE_TRANSIENT);
    } else {
        st = pgcmk_db_stmt(db, PGCMK_STMT_RES_LIST_SUB_TYPE);
        sqlite3_bind_text(st, 1, t->id.sub, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, type, -1, SQLITE_TRANSIENT);
    }
    rc = pgcmk_db_each(db, st, pgcmk_db_collect_json, items, "list resources", err);
    if (rc < 0) {
        json_decref(items);
        return -1;
    }
    return pgcmk_arm_list(rq, rs, items, err);
}

static int
generic_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct generic_target t;
    char *id, *body = NULL;
    int rc;

    if (generic_resolve(rq, rs, &t, err))
        return -1;
    if (t.type->flags & ARM_T_EXTERNAL) {
        struct pgcmk_arm_ctx ac;
        json_t *out = NULL;

        if (generic_ext_ctx(rq, &t, &ac, err))
            return -1;
        rc = t.is_list ? t.type->ext_list(&ac, &out, err) : t.type->ext_get(&ac, &out, err);
        generic_ext_release(&ac);
        if (rc)
            return -1;
        if (t.is_list)
            return pgcmk_arm_list(rq, rs, out, err);
        pgcmk_resp_json(rs, 200, out);
        return 0;
    }
    if (t.is_list)
        return generic_list(rq, rs, &t, err);
    id = pgcmk_arm_id_format(&t.id);
    rc = generic_load(pgcmk_db(), id, &body, NULL, err);
    free(id);
    if (rc == 0 && t.id.n_types > 1) {
        /* a nested resource under a missing parent: ParentResourceNotFound, as in Azure */
        struct pgcmk_arm_id pid = t.id;
        char *parent;

        pid.n_types--;
        parent = pgcmk_arm_id_format(&pid);
        rc = generic_load(pgcmk_db(), parent, NULL, NULL, err);
        free(parent);
        if (rc == 0)
            return pgcmk_err_set(err, PGCMK_E_PARENT_NOT_FOUND, NULL,
                                 "Can not perform requested operation on nested resource. Parent "
                                 "resource '%.128s' not found.",
                                 pid.names[pid.n_types - 1]);
        rc = rc < 0 ? -1 : 0;
    }
    if (rc <= 0)
        return rc < 0 ? -1 : generic_not_found(&t, err);
    pgcmk_arm_send_stored(rs, 200, body);
    free(body);
    return 0;
}

/* Deletes one resource and its children, after the type's hook. */
static int
generic_delete_one(struct pgcmk_db *db, struct pgcmk_req *rq, const struct pgcmk_arm_type *type,
                   const struct pgcmk_arm_id *id, const char *id_text, const char *stored,
                   struct pgcmk_err *err)
{
    sqlite3_stmt *st;
    int rc;

    if (type && (type->on_delete || (type->flags & ARM_T_IDENTITY))) {
        struct pgcmk_arm_ctx ac;

        memset(&ac, 0, sizeof(ac));
        ac.rq = rq;
        ac.type = type;
        ac.id = *id;
        ac.id_text = (char *)id_text;
        ac.existing = json_loads(stored, 0, NULL);
        rc = type->on_delete ? type->on_delete(&ac, err) : 0;
        if (rc == 0 && (type->flags & ARM_T_IDENTITY) && arm_identity_hook)
            rc = arm_identity_hook(&ac, 1, err);
        json_decref(ac.existing);
        if (rc)
            return -1;
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_RES_DELETE_TREE);
    sqlite3_bind_text(st, 1, id_text, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "delete resource", err);
}

struct generic_del {
    struct pgcmk_req *rq;
    struct generic_target *t;
    int found;
};

static int
generic_delete_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct generic_del *d = ctx;
    char *id = pgcmk_arm_id_format(&d->t->id), *stored = NULL, *etag = NULL;
    int rc = generic_load(db, id, &stored, &etag, err);

    if (rc > 0 && (!d->rq || pgcmk_arm_check_preconditions(d->rq, etag, err) == 0))
        rc = generic_delete_one(db, d->rq, d->t->type, &d->t->id, id, stored, err) ? -1 : 1;
    else if (rc > 0)
        rc = -1;
    d->found = rc > 0;
    free(id);
    free(stored);
    free(etag);
    return rc < 0 ? -1 : 0;
}

/* ARM_T_ASYNC_DELETE: the delete itself, on a worker. */
struct generic_del_job {
    struct generic_target t;
};

static void
generic_delete_job(void *arg, struct pgcmk_lro_result *out)
{
    struct generic_del_job *job = arg;
    struct generic_del d = {NULL, &job->t, 0};
    struct pgcmk_err err;

    memset(&err, 0, sizeof(err));
    if (pgcmk_db_tx(pgcmk_db(), generic_delete_tx, &d, &err)) {
        out->failed = 1;
        out->err = err;
    } else {
        if (d.found && job->t.type->after_delete) {
            char *id = pgcmk_arm_id_format(&job->t.id);

            job->t.type->after_delete(id);
            free(id);
        }
        out->status = 200;
    }
    free(job);
}

static int
generic_delete(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct generic_target t;
    struct generic_del d = {rq, &t, 0};

    if (generic_resolve(rq, rs, &t, err))
        return -1;
    if (t.is_list || (t.type->flags & (ARM_T_NO_DELETE | ARM_T_EXTERNAL)))
        return pgcmk_err_set(err, PGCMK_E_METHOD_NOT_ALLOWED, NULL,
                             "The requested resource does not support http method 'DELETE'.");
    if (t.type->flags & ARM_T_ASYNC_DELETE) {
        char *id = pgcmk_arm_id_format(&t.id), *stored = NULL, *etag = NULL;
        int rc = generic_load(pgcmk_db(), id, &stored, &etag, err);
        json_t *b = rc > 0 ? json_loads(stored, 0, NULL) : NULL;
        const char *loc = json_string_value(json_object_get(b, "location"));

        if (rc > 0 && pgcmk_arm_check_preconditions(rq, etag, err) == 0) {
            struct generic_del_job *job = pgcmk_xcalloc(1, sizeof(*job));

            job->t = t;
            rc = pgcmk_lro_start(rq, rs, t.id.sub, t.type->ns, loc ? loc : "eastus", "Delete", id,
                                 generic_delete_job, job, err);
            if (rc)
                free(job);
            else
                pgcmk_resp_empty(rs, 202);
        } else if (rc > 0) {
            rc = -1;
        } else if (rc == 0) {
            pgcmk_resp_empty(rs, 204);
        }
        json_decref(b);
        free(stored);
        free(etag);
        free(id);
        return rc < 0 ? -1 : 0;
    }
    if (pgcmk_db_tx(pgcmk_db(), generic_delete_tx, &d, err))
        return -1;
    if (d.found && t.type->after_delete) {
        char *id = pgcmk_arm_id_format(&t.id);

        t.type->after_delete(id);
        free(id);
    }
    pgcmk_resp_empty(rs, d.found ? 200 : 204);
    return 0;
}

/* pgcmk_db_each row: a resource of the group to delete (id and stored body). */
static int
generic_victim_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    json_array_append_new(arg, json_pack("{s:s, s:s}", "id", sqlite3_column_text(st, 0), "body",
                                         sqlite3_column_text(st, 4)));
    return 0;
}

/* pgcmk_db_savepoint unit: one resource of a group being deleted ({"id", "body"}). */
static int
generic_victim_delete_sp(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    json_t *v = ctx;
    const char *id_text = json_string_value(json_object_get(v, "id"));
    struct pgcmk_arm_id id;
    char type[256];
    const struct pgcmk_arm_type *t = NULL;

    memset(&id, 0, sizeof(id));
    if (pgcmk_arm_id_parse(id_text, &id, NULL) == 0) {
        size_t slash;

        pgcmk_arm_id_type(&id, type, sizeof(type));
        slash = strcspn(type, "/");
        t = pgcmk_arm_find_type(id.ns, type[slash] ? type + slash + 1 : type);
    }
    return generic_delete_one(db, NULL, t, &id, id_text,
                              json_string_value(json_object_get(v, "body")), err);
}

int
pgcmk_arm_delete_group_resources(struct pgcmk_db *db, const char *sub, const char *rg,
                                 struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_RES_LIST_IN_RG);
    json_t *victims = json_array();
    size_t i;
    json_t *v;
    int failed = 0;

    sqlite3_bind_text(st, 1, sub, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, rg, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, generic_victim_row, victims, "list group resources", err) < 0) {
        json_decref(victims);
        return -1;
    }
    /* Each resource goes in its own savepoint: one that cannot go is rolled back alone (and
     * logged), the others stay deleted, and the group stays with what could not go. */
    json_array_foreach(victims, i, v) {
        struct pgcmk_err e;

        memset(&e, 0, sizeof(e));
        if (pgcmk_db_savepoint(db, generic_victim_delete_sp, v, &e) == 0)
            continue;
        LOG_WARN("group %s: could not delete %s: %s", rg,
                 json_string_value(json_object_get(v, "id")), e.message);
        if (failed++ == 0 && err)
            *err = e;
    }
    json_decref(victims);
    if (failed)
        return 1;
    st = pgcmk_db_stmt(db, PGCMK_STMT_RES_DELETE_RG);
    sqlite3_bind_text(st, 1, sub, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, rg, -1, SQLITE_STATIC);
    return pgcmk_db_each(db, st, NULL, NULL, "delete group resources", err) < 0 ? -1 : 0;
}

#define RG_PROV  "/subscriptions/{sub}/resourcegroups/{rg}/providers/{ns}/{*rest}"
#define SUB_PROV "/subscriptions/{sub}/providers/{ns}/{*rest}"
static const struct pgcmk_route generic_routes[] = {
    {"PUT", RG_PROV, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON | ROUTE_F_APIVER, NULL,
     generic_put},
    {"PATCH", RG_PROV, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON | ROUTE_F_APIVER, NULL,
     generic_patch},
    {"GET", RG_PROV, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, "$top,$skiptoken,$filter",
     generic_get},
    {"DELETE", RG_PROV, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, NULL, generic_delete},
    {"GET", SUB_PROV, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, "$top,$skiptoken,$filter",
     generic_get},
};

void
pgcmk_arm_generic_routes(void)
{
    pgcmk_router_add(generic_routes, PGCMK_ARRAY_LEN(generic_routes));
}
