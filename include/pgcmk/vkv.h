/* vkv.h - the Vault API's KV v1, KV v2 and transit secrets engines (src/vaultapi/kv.c,
 * transit.c), independent of the HTTP pipeline: a call names the mount (its namespace, uuid,
 * path and engine), the operation and the path inside the mount; the answer is Vault's status
 * with the envelope's `data` and/or the `errors` list. The backend rows of vaultapi.h wrap them.
 *
 * Storage: migration 13, rows keyed by the mount's uuid; values and keys sealed under the master
 * key with aad = namespace "\n" mount uuid "\n" path "\n" version. */
#ifndef PGCMK_VKV_H
#define PGCMK_VKV_H

#include <stdint.h>
#include <jansson.h>

#include "pgcmk/err.h"
#include "pgcmk/store.h"

enum pgcmk_vkv_op {
    PGCMK_VKV_READ = 0, /* GET */
    PGCMK_VKV_WRITE,    /* PUT, POST */
    PGCMK_VKV_PATCH,    /* PATCH */
    PGCMK_VKV_DELETE,   /* DELETE */
    PGCMK_VKV_LIST      /* LIST, GET ?list=true */
};

struct pgcmk_vkv_call {
    const char *ns;         /* "" for the root, else "ns1/" */
    const char *mount_uuid; /* the mount's uuid: the rows' key */
    const char *mount_path; /* "secret/" (events, messages) */
    int kv_version;         /* 1 or 2 (KV); ignored by transit */
    enum pgcmk_vkv_op op;
    const char *rel;       /* the path inside the mount, without a leading '/' ("data/pg-key") */
    const char *q_version; /* the ?version= value, or NULL */
    const json_t *body;    /* the parsed JSON body (an object), or NULL */
    const char *caller;    /* a token accessor or display name for the Activity Log, or NULL */
};

struct pgcmk_vkv_ans {
    int status;     /* 200, 204, 400, 404, 405, 500 */
    json_t *data;   /* the envelope's data (owned), or NULL */
    json_t *errors; /* Vault's {"errors":[...]} list (owned), or NULL when not an error */
    int secret;     /* the answer carries secret values: wipe it once sent */
};

/* Runs a KV call (c->kv_version 1 or 2). Always fills a (a 500 on a store failure). */
void pgcmk_vkv_call(const struct pgcmk_vkv_call *c, struct pgcmk_vkv_ans *a);
/* Runs a transit call. */
void pgcmk_vtransit_call(const struct pgcmk_vkv_call *c, struct pgcmk_vkv_ans *a);
void pgcmk_vkv_ans_release(struct pgcmk_vkv_ans *a);

/* The ACL capability a call needs: "read", "list", "delete", "patch", and for writes "create"
 * when the target does not exist yet (KV v1 path, KV v2 data/ or metadata/, a transit key),
 * else "update". */
const char *pgcmk_vkv_capability(const struct pgcmk_vkv_call *c);
const char *pgcmk_vtransit_capability(const struct pgcmk_vkv_call *c);

/* Drops every row of a mount (KV and transit): the backends' on_disable, inside its tx. */
int pgcmk_vkv_drop_mount(struct pgcmk_db *db, const char *mount_uuid, struct pgcmk_err *err);

/* Pure helpers (unit-tested). */
/* Vault's KV v2 check-and-set: NULL when the write may go on, else the error text. cas < 0 means
 * no cas given; required = the key's or the mount's cas_required. */
const char *pgcmk_vkv_cas_check(int required, int64_t cas, int64_t current_version);
/* The oldest version kept after writing `current` with max_versions (0 = the default, 10). */
int64_t pgcmk_vkv_keep_from(int64_t current, int64_t max_versions);
/* Go durations as Vault takes and prints them: "90s", "1h30m", "0", a number of seconds. */
/* A request field as Vault reads it (KV, transit): a number or a numeric string, a boolean or
 * "true"/"false"/"1"/"0". -1 when absent or null, -2 when of another shape. */
int64_t pgcmk_vkv_field_int(const json_t *body, const char *name);
int pgcmk_vkv_field_bool(const json_t *body, const char *name);
int pgcmk_vkv_duration_parse(const char *s, int64_t *ms) PGCMK_WUR;
void pgcmk_vkv_duration_format(int64_t ms, char *out, size_t cap);
/* 1 when s is valid UTF-8 without control characters and at most max bytes (paths, names). */
int pgcmk_vkv_text_ok(const char *s, size_t max);
/* Vault's times: "2026-11-22T10:00:00.123000Z", "" for 0. */
void pgcmk_vkv_time_format(int64_t ms, char out[40]);

#endif
