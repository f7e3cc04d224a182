/* rg.c - resource groups: PUT 201/200, GET, HEAD 204/404, PATCH tags, DELETE as an LRO that
 * cascades to the group's resources, list. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/log.h"
#include "pgcmk/schema.h"
#include "pgcmk/store.h"
#include "arm/internal.h"

/* Length of the well-formed UTF-8 sequence at s (2-4 bytes, no overlongs or surrogates), else 0. */
static size_t
rg_utf8_len(const unsigned char *s)
{
    size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
    uint32_t cp = s[0] & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);

    if (s[0] < 0xc2 || s[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* ARM's rule: 1-90 of letters, digits, '_', '-', '.', '(' and ')', not ending in '.'.
 * Non-ASCII letters are allowed, but only as well-formed UTF-8 (the name goes into JSON). */
static int
rg_check_name(const char *name, struct pgcmk_err *err)
{
    size_t n = strlen(name);
    int ok = n >= 1 && n <= 90 && name[n - 1] != '.';

    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        size_t u = c >= 0x80 ? rg_utf8_len((const unsigned char *)name + i) : 0;

        ok = isalnum(c) || c == '_' || c == '-' || c == '.' || c == '(' || c == ')' || u > 0;
        if (u > 1)
            i += u - 1;
    }
    if (ok)
        return 0;
    return pgcmk_err_set(err, PGCMK_E_INVALID_RG_NAME, "resourceGroupName",
                         "Resource group name '%.128s' is invalid. Resource group names only "
                         "allow alphanumeric characters, periods, underscores, hyphens and "
                         "parenthesis and cannot end in a period, and must be 1 to 90 characters.",
                         name);
}

/* A stored group. */
struct rg_row {
    char *name, *location, *body, *state, *etag;
};

static void
rg_row_release(struct rg_row *r)
{
    free(r->name);
    free(r->location);
    free(r->body);
    free(r->state);
    free(r->etag);
    memset(r, 0, sizeof(*r));
}

static char *
col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);

    return t ? pgcmk_xstrdup((const char *)t) : NULL;
}

/* 1 found, 0 absent, -1 error. */
static int
rg_load(struct pgcmk_db *db, const char *sub, const char *name, struct rg_row *out,
        struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_RG_GET);
    int rc;

    memset(out, 0, sizeof(*out));
    sqlite3_bind_text(st, 1, sub, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->name = col_dup(st, 0);
        out->location = col_dup(st, 1);
        out->body = col_dup(st, 2);
        out->state = col_dup(st, 3);
        out->etag = col_dup(st, 4);
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = pgcmk_db_fail(db, rc, "read resource group", err);
    }
    pgcmk_db_done(st);
    return rc;
}

static int
rg_not_found(const char *name, struct pgcmk_err *err)
{
    return pgcmk_err_set(err, PGCMK_E_RG_NOT_FOUND, NULL,
                         "Resource group '%.128s' could not be found.", name);
}

int
pgcmk_arm_rg_usable(const char *sub, const char *rg, struct pgcmk_err *err)
{
    struct rg_row row;
    int rc = rg_load(pgcmk_db(), sub, rg, &row, err);

    if (rc < 0)
        return -1;
    if (rc == 0)
        return rg_not_found(rg, err);
    if (strcmp(row.state, "Deleting") == 0) {
        rg_row_release(&row);
        return pgcmk_err_set(err, PGCMK_E_RG_BEING_DELETED, NULL,
                             "The resource group '%.128s' is in deprovisioning state and cannot "
                             "perform this operation.",
                             rg);
    }
    rg_row_release(&row);
    return 0;
}

char *
pgcmk_arm_rg_location(const char *sub, const char *rg)
{
    struct rg_row row;
    char *loc = NULL;

    if (rg_load(pgcmk_db(), sub, rg, &row, NULL) == 1) {
        loc = row.location;
        row.location = NULL;
    }
    rg_row_release(&row);
    return loc;
}

/* Checks shared by every group route: subscription, api-version, name. */
static int
rg_common(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *rg = pgcmk_req_param(rq, "rg");

    if (pgcmk_arm_check_sub(pgcmk_req_param(rq, "sub"), err) ||
        pgcmk_arm_check_resources_version(rq, rs, err))
        return -1;
    return rg ? rg_check_name(rg, err) : 0;
}

static int
rg_check_tags(json_t *tags, struct pgcmk_err *err)
{
    const char *k;
    json_t *v;

    if (tags == NULL || json_is_null(tags))
        return 0;
    if (!json_is_object(tags))
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, "tags",
                             "The request content was invalid and could not be deserialized: "
                             "'tags must be an object of strings.'");
    if (json_object_size(tags) > 50)
        return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "tags",
                             "The number of tags exceeds the limit of 50.");
    json_object_foreach(tags, k, v) {
        if (!json_is_string(v) || strlen(k) > 512 || json_string_length(v) > 256)
            return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, "tags",
                                 "The tag '%.64s' is invalid: names are at most 512 characters, "
                                 "values are strings of at most 256.",
                                 k);
    }
    return 0;
}

struct rg_write {
    struct pgcmk_req *rq;
    const char *sub, *name;
    int created;
    char *body;
};

static json_t *
rg_render(const char *sub, const char *name, const char *location, json_t *tags,
          const char *managed_by, const char *state)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "id", "", "name", name, "type",
                          "Microsoft.Resources/resourceGroups", "location", location);
    char *id = pgcmk_xasprintf("/subscriptions/%s/resourceGroups/%s", sub, name);

    json_object_set_new(o, "id", json_string(id));
    free(id);
    if (tags && json_object_size(tags))
        json_object_set(o, "tags", tags);
    if (managed_by)
        json_object_set_new(o, "managedBy", json_string(managed_by));
    json_object_set_new(o, "properties", json_pack("{s:s}", "provisioningState", state));
    return o;
}

static int
rg_put_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct rg_write *w = ctx;
    json_t *in = w->rq->json, *body;
    const char *loc = json_string_value(json_object_get(in, "location"));
    const char *managed_by = json_string_value(json_object_get(in, "managedBy"));
    struct rg_row row;
    sqlite3_stmt *st;
    char etag[37];
    int rc = rg_load(db, w->sub, w->name, &row, err);

    if (rc < 0)
        return -1;
    if (pgcmk_arm_check_preconditions(w->rq, rc ? row.etag : NULL, err))
        goto fail;
    if (rc && strcmp(row.state, "Deleting") == 0) {
        pgcmk_err_set(err, PGCMK_E_RG_BEING_DELETED, NULL,
                      "The resource group '%.128s' is in deprovisioning state and cannot perform "
                      "this operation.",
                      w->name);
        goto fail;
    }
    if (rc && strcasecmp(row.location, loc) != 0) {
        pgcmk_err_set(err, PGCMK_E_RG_LOCATION_CONFLICT, "location",
                      "Invalid resource group location '%.64s'. The Resource group already exists "
                      "in location '%.64s'.",
                      loc, row.location);
        goto fail;
    }
    pgcmk_uuid(etag);
    body = rg_render(w->sub, rc ? row.name : w->name, rc ? row.location : loc,
                     json_object_get(in, "tags"), managed_by, "Succeeded");
    w->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    st = pgcmk_db_stmt(db, rc ? PGCMK_STMT_RG_UPDATE : PGCMK_STMT_RG_INSERT);
    sqlite3_bind_text(st, 1, w->sub, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, w->name, -1, SQLITE_STATIC);
    if (rc) {
        sqlite3_bind_text(st, 3, w->body, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, "Succeeded", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, etag, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, pgcmk_clock_now());
    } else {
        sqlite3_bind_text(st, 3, loc, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, w->body, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, "Succeeded", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, etag, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, pgcmk_clock_now());
    }
    w->created = !rc;
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    rg_row_release(&row);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "write resource group", err);
fail:
    rg_row_release(&row);
    return -1;
}

static int
rg_put(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct rg_write w = {rq, pgcmk_req_param(rq, "sub"), pgcmk_req_param(rq, "rg"), 0, NULL};
    json_t *loc = json_object_get(rq->json, "location");
    json_t *mb = json_object_get(rq->json, "managedBy");

    if (rg_common(rq, rs, err))
        return -1;
    if (!json_is_string(loc) || json_string_length(loc) == 0)
        return pgcmk_err_set(err, PGCMK_E_LOCATION_REQUIRED, "location",
                             "The location property is required for this definition.");
    if (!pgcmk_arm_location_ok(json_string_value(loc)))
        return pgcmk_err_set(err, PGCMK_E_RG_LOCATION_NOT_AVAILABLE, "location",
                             "The provided location '%.64s' is not available for resource group. "
                             "List of available regions is '%s'.",
                             json_string_value(loc), pgcmk_arm_locations_text());
    if (mb && !json_is_string(mb) && !json_is_null(mb))
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, "managedBy",
                             "The request content was invalid and could not be deserialized: "
                             "'managedBy must be a string.'");
    if (rg_check_tags(json_object_get(rq->json, "tags"), err) ||
        pgcmk_schema_check("Microsoft.Resources/resourceGroups", rq->api_version, rq->json, 0, err))
        return -1;
    if (pgcmk_db_tx(pgcmk_db(), rg_put_tx, &w, err))
        return -1;
    pgcmk_arm_send_stored(rs, w.created ? 201 : 200, w.body);
    free(w.body);
    return 0;
}

static int
rg_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct rg_row row;
    int rc;

    if (rg_common(rq, rs, err))
        return -1;
    rc = rg_load(pgcmk_db(), pgcmk_req_param(rq, "sub"), pgcmk_req_param(rq, "rg"), &row, err);
    if (rc <= 0)
        return rc < 0 ? -1 : rg_not_found(pgcmk_req_param(rq, "rg"), err);
    pgcmk_arm_send_stored(rs, 200, row.body);
    rg_row_release(&row);
    return 0;
}

static int
rg_head(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct rg_row row;
    int rc;

    if (rg_common(rq, rs, err))
        return -1;
    rc = rg_load(pgcmk_db(), pgcmk_req_param(rq, "sub"), pgcmk_req_param(rq, "rg"), &row, err);
    if (rc < 0)
        return -1;
    rg_row_release(&row);
    pgcmk_resp_empty(rs, rc ? 204 : 404);
    return 0;
}

static int
rg_patch_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct rg_write *w = ctx;
    struct rg_row row;
    json_t *body, *tags;
    sqlite3_stmt *st;
    char etag[37];
    int rc = rg_load(db, w->sub, w->name, &row, err);

    if (rc <= 0)
        return rc < 0 ? -1 : rg_not_found(w->name, err);
    if (pgcmk_arm_check_preconditions(w->rq, row.etag, err)) {
        rg_row_release(&row);
        return -1;
    }
    body = json_loads(row.body, 0, NULL);
    tags = json_object_get(w->rq->json, "tags");
    if (tags && json_object_size(tags))
        json_object_set(body, "tags", tags);
    else if (tags)
        json_object_del(body, "tags");
    if (json_is_string(json_object_get(w->rq->json, "managedBy")))
        json_object_set(body, "managedBy", json_object_get(w->rq->json, "managedBy"));
    w->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    pgcmk_uuid(etag);
    st = pgcmk_db_stmt(db, PGCMK_STMT_RG_UPDATE);
    sqlite3_bind_text(st, 1, w->sub, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, w->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, w->body, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, row.state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, etag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, pgcmk_clock_now());
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    rg_row_release(&row);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "update resource group", err);
}

static int
rg_patch(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct rg_write w = {rq, pgcmk_req_param(rq, "sub"), pgcmk_req_param(rq, "rg"), 0, NULL};

    if (rg_common(rq, rs, err) || rg_check_tags(json_object_get(rq->json, "tags"), err))
        return -1;
    if (pgcmk_db_tx(pgcmk_db(), rg_patch_tx, &w, err))
        return -1;
    pgcmk_arm_send_stored(rs, 200, w.body);
    free(w.body);
    return 0;
}

/* DELETE: mark Deleting (synchronously), then remove resources and the group on a worker. */
struct rg_del {
    char sub[64];
    char name[96];
    int failed;           /* some resources could not be deleted: the group stays */
    struct pgcmk_err err; /* the first of them */
};

static int
rg_mark_deleting_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct rg_write *w = ctx;
    struct rg_row row;
    json_t *body;
    sqlite3_stmt *st;
    int rc = rg_load(db, w->sub, w->name, &row, err);

    if (rc <= 0)
        return rc < 0 ? -1 : rg_not_found(w->name, err); /* ARM: a missing group is 404 */
    if (pgcmk_arm_check_preconditions(w->rq, row.etag, err)) {
        rg_row_release(&row);
        return -1;
    }
    body = json_loads(row.body, 0, NULL);
    json_object_set_new(body, "properties", json_pack("{s:s}", "provisioningState", "Deleting"));
    w->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    st = pgcmk_db_stmt(db, PGCMK_STMT_RG_UPDATE);
    sqlite3_bind_text(st, 1, w->sub, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, w->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, w->body, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, "Deleting", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, row.etag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, pgcmk_clock_now());
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    rg_row_release(&row);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "mark resource group", err);
}

/* Sets the group's provisioningState (row and body). */
static int
rg_set_state_tx(struct pgcmk_db *db, struct rg_del *d, const char *state, struct pgcmk_err *err)
{
    struct rg_row row;
    json_t *body;
    char *text;
    sqlite3_stmt *st;
    int rc = rg_load(db, d->sub, d->name, &row, err);

    if (rc <= 0)
        return rc;
    body = json_loads(row.body, 0, NULL);
    json_object_set_new(body, "properties", json_pack("{s:s}", "provisioningState", state));
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    st = pgcmk_db_stmt(db, PGCMK_STMT_RG_UPDATE);
    sqlite3_bind_text(st, 1, d->sub, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, row.etag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, pgcmk_clock_now());
    rc = pgcmk_db_each(db, st, NULL, NULL, "set resource group state", err);
    free(text);
    rg_row_release(&row);
    return rc < 0 ? -1 : 0;
}

static int
rg_delete_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct rg_del *d = ctx;
    struct rg_row row;
    sqlite3_stmt *st;
    int rc = rg_load(db, d->sub, d->name, &row, err);

    if (rc < 0)
        return -1;
    /* A second DELETE's job may run after the first one removed the group and a PUT created it
     * again: only a group still marked Deleting is removed. */
    if (rc == 0 || strcmp(row.state, "Deleting") != 0) {
        rg_row_release(&row);
        return 0;
    }
    rg_row_release(&row);
    /* Providers with delete hooks see each of their resources go (cascade). */
    memset(&d->err, 0, sizeof(d->err));
    rc = pgcmk_arm_delete_group_resources(db, d->sub, d->name, &d->err);
    if (rc < 0) {
        *err = d->err;
        return -1;
    }
    if (rc > 0) { /* the resources that went stay gone; the group is back, with the rest */
        d->failed = 1;
        return rg_set_state_tx(db, d, "Succeeded", err);
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_RG_DELETE);
    sqlite3_bind_text(st, 1, d->sub, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d->name, -1, SQLITE_STATIC);
    return pgcmk_db_each(db, st, NULL, NULL, "delete resource group", err) < 0 ? -1 : 0;
}

static void
rg_delete_job(void *arg, struct pgcmk_lro_result *out)
{
    struct rg_del *d = arg;

    if (pgcmk_db_tx(pgcmk_db(), rg_delete_tx, d, &out->err)) {
        out->failed = 1;
    } else if (d->failed) {
        out->failed = 1;
        out->err = d->err;
    } else {
        out->status = 200;
    }
    free(d);
}

static int
rg_delete(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct rg_write w = {rq, pgcmk_req_param(rq, "sub"), pgcmk_req_param(rq, "rg"), 0, NULL};
    struct rg_del *d;
    int rc;

    if (rg_common(rq, rs, err))
        return -1;
    rc = pgcmk_db_tx(pgcmk_db(), rg_mark_deleting_tx, &w, err);
    free(w.body);
    if (rc < 0)
        return -1;
    d = pgcmk_xcalloc(1, sizeof(*d)); /* failed = 0 */
    snprintf(d->sub, sizeof(d->sub), "%s", w.sub);
    snprintf(d->name, sizeof(d->name), "%s", w.name);
    if (pgcmk_lro_start(rq, rs, w.sub, NULL, NULL, "DeleteResourceGroup", rq->path, rg_delete_job,
                        d, err)) {
        free(d);
        return -1;
    }
    pgcmk_resp_empty(rs, 202);
    return 0;
}

/* pgcmk_db_each row: a group left Deleting, as [sub, name]. */
static int
rg_deleting_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    PGCMK_UNUSED(err);
    json_array_append_new(
        arg, json_pack("[s, s]", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1)));
    return 0;
}

void
pgcmk_arm_rg_resume_deletes(void)
{
    struct pgcmk_db *db = pgcmk_db();
    json_t *groups = json_array(), *g;
    struct pgcmk_err err;
    size_t i;

    if (pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_RG_DELETING), rg_deleting_row, groups,
                      "list groups being deleted", &err) < 0) {
        LOG_WARN("could not resume group deletes: %s", err.message);
        json_decref(groups);
        return;
    }
    json_array_foreach(groups, i, g) {
        struct rg_del d;
        char *path;
        sqlite3_stmt *op;

        memset(&d, 0, sizeof(d));
        snprintf(d.sub, sizeof(d.sub), "%s", json_string_value(json_array_get(g, 0)));
        snprintf(d.name, sizeof(d.name), "%s", json_string_value(json_array_get(g, 1)));
        if (pgcmk_db_tx(db, rg_delete_tx, &d, &err)) {
            LOG_WARN("could not finish deleting group %s: %s", d.name, err.message);
            continue;
        }
        if (d.failed) {
            LOG_WARN("could not finish deleting group %s: %s", d.name, d.err.message);
            continue;
        }
        /* The operation that asked for it ends as it would have. */
        path = pgcmk_xasprintf("/subscriptions/%s/resourcegroups/%s", d.sub, d.name);
        op = pgcmk_db_stmt(db, PGCMK_STMT_OP_RESUMED_RG_DELETE);
        sqlite3_bind_text(op, 1, path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(op, 2, pgcmk_clock_now());
        if (pgcmk_db_each(db, op, NULL, NULL, "close a group delete operation", &err) < 0)
            LOG_WARN("could not close the delete operation of group %s", d.name);
        free(path);
        LOG_INFO("finished deleting resource group %s after a restart", d.name);
    }
    json_decref(groups);
}

static int
rg_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st;
    json_t *items = json_array();
    int rc;

    if (rg_common(rq, rs, err)) {
        json_decref(items);
        return -1;
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_RG_LIST);
    sqlite3_bind_text(st, 1, pgcmk_req_param(rq, "sub"), -1, SQLITE_STATIC);
    rc = pgcmk_db_each(db, st, pgcmk_db_collect_json, items, "list resource groups", err);
    if (rc < 0) {
        json_decref(items);
        return -1;
    }
    return pgcmk_arm_list(rq, rs, items, err);
}

#define RG_PATH "/subscriptions/{sub}/resourcegroups/{rg}"
static const struct pgcmk_route rg_routes[] = {
    {"PUT", RG_PATH, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON | ROUTE_F_APIVER, NULL, rg_put},
    {"GET", RG_PATH, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, NULL, rg_get},
    {"HEAD", RG_PATH, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, NULL, rg_head},
    {"PATCH", RG_PATH, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON | ROUTE_F_APIVER, NULL,
     rg_patch},
    {"DELETE", RG_PATH, PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER, "forceDeletionTypes",
     rg_delete},
    {"GET", "/subscriptions/{sub}/resourcegroups", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_APIVER,
     "$filter,$top,$skiptoken", rg_list},
};

void
pgcmk_arm_rg_routes(void)
{
    pgcmk_router_add(rg_routes, PGCMK_ARRAY_LEN(rg_routes));
}
