/* lifecycle.c - a key over time: rotation (on demand and by policy), expiry events and the
 * scheduled purge of deleted keys, and the keys of a purged vault. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/auth.h"
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/events.h"
#include "pgcmk/faults.h"
#include "pgcmk/log.h"
#include "pgcmk/pkey.h"
#include "pgcmk/store.h"
#include "pgcmk/vault.h"
#include "pgcmk/wellknown.h"
#include "vault/internal.h"

/* POST /keys/{name}/rotate: a new version with the current version's type, size and ops. */
int
kv_rotate(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx *kc = rq->admitted;
    struct kv_key k;
    struct kv_version v;
    struct kv_spec sp;
    char version[33];
    const char *n;
    int rc = -1;

    memset(&v, 0, sizeof(v));
    memset(&sp, 0, sizeof(sp));
    if (kv_resolve(kc, pgcmk_req_param(rq, "name"), NULL, &k, &v, err))
        goto out;
    n = json_string_value(json_object_get(v.jwk, "n"));
    sp.kty = v.kty;
    sp.crv = json_string_value(json_object_get(v.jwk, "crv"));
    sp.bits = n && strlen(n) * 6 / 8 >= 512 ? 4096 : n && strlen(n) * 6 / 8 >= 384 ? 3072 : 2048;
    sp.ops = json_incref(v.key_ops);
    sp.tags = json_incref(v.tags);
    sp.enabled = 1;
    if (kv_new_version(kc, k.name, &sp, version, NULL, err))
        goto out;
    rc = kv_respond_version(rs, kc, kc->vault, k.name, version, err);
out:
    sp.kty = NULL;
    kv_spec_release(&sp);
    kv_version_release(&v);
    return rc;
}

/* ---- rotation policies ------------------------------------------------------------------ */

/* ISO-8601 durations as rotation policies write them: P90D, P1Y, P2M, P1Y6M, PT12H. Years are
 * 365 days and months 30, as Key Vault counts them. */
static int
kv_policy_duration(const char *s, int64_t *ms)
{
    int64_t total = 0;
    const char *p = s;
    int in_time = 0, any = 0;

    if (s == NULL || *p++ != 'P')
        return -1;
    while (*p) {
        char *end;
        long v;

        if (*p == 'T' && !in_time) {
            in_time = 1;
            p++;
            continue;
        }
        v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 100000)
            return -1;
        switch (*end) {
        case 'Y':
            total += in_time ? -1 : v * 365 * DAY_MS;
            break;
        case 'M':
            total += in_time ? v * 60000LL : v * 30 * DAY_MS;
            break;
        case 'W':
            total += v * 7 * DAY_MS;
            break;
        case 'D':
            total += v * DAY_MS;
            break;
        case 'H':
            total += v * 3600000LL;
            break;
        case 'S':
            total += v * 1000LL;
            break;
        default:
            return -1;
        }
        if (total < 0)
            return -1;
        p = end + 1;
        any = 1;
    }
    *ms = total;
    return any ? 0 : -1;
}

static int
kv_policy_check(json_t *pol, struct pgcmk_err *err)
{
    json_t *acts = json_object_get(pol, "lifetimeActions"), *a;
    const char *exp =
        json_string_value(json_object_get(json_object_get(pol, "attributes"), "expiryTime"));
    int64_t ms;
    size_t i;

    if (acts && !json_is_array(acts))
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                             "lifetimeActions must be an array.");
    if (exp && (kv_policy_duration(exp, &ms) || ms < 28 * DAY_MS))
        return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                             "expiryTime must be an ISO-8601 duration of at least 28 days.");
    json_array_foreach(acts, i, a) {
        json_t *trig = json_object_get(a, "trigger");
        const char *type = json_string_value(json_object_get(json_object_get(a, "action"), "type"));
        const char *after = json_string_value(json_object_get(trig, "timeAfterCreate"));
        const char *before = json_string_value(json_object_get(trig, "timeBeforeExpiry"));

        if (type == NULL || (strcasecmp(type, "Rotate") != 0 && strcasecmp(type, "Notify") != 0))
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "action.type must be Rotate or Notify.");
        if ((after == NULL) == (before == NULL) || kv_policy_duration(after ? after : before, &ms))
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "A trigger needs exactly one of timeAfterCreate and "
                                 "timeBeforeExpiry, as an ISO-8601 duration.");
        if (before && exp == NULL)
            return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                                 "timeBeforeExpiry needs attributes.expiryTime.");
    }
    return 0;
}

static json_t *
kv_policy_json(const struct kv_ctx *kc, const char *name, json_t *stored)
{
    char *base = kv_base(kc->vault), *id = pgcmk_xasprintf("%s/keys/%s/rotationpolicy", base, name);
    json_t *o;

    if (stored)
        o = json_deep_copy(stored);
    else /* the default policy of a key that never had one */
        o = json_pack("{s:[{s:{s:s}, s:{s:s}}], s:{}}", "lifetimeActions", "trigger",
                      "timeBeforeExpiry", "P30D", "action", "type", "Notify", "attributes");
    json_object_set_new(o, "id", json_string(id));
    free(id);
    free(base);
    return o;
}

/* The key's stored policy in *p (NULL when it has none); -1 with err set when the store fails. */
static int
kv_policy_load(struct pgcmk_db *db, const char *vault, const char *name, json_t **p,
               struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_GET_POLICY);
    int rc;

    *p = NULL;
    sqlite3_bind_text(st, 1, vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    rc = pgcmk_db_step(db, st, "read key policy", err);
    if (rc > 0 && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *p = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
    pgcmk_db_done(st);
    return rc < 0 ? -1 : 0;
}

int
kv_policy_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx *kc = rq->admitted;
    struct kv_key k;
    int found = kv_key_load(pgcmk_db(), kc->vault, pgcmk_req_param(rq, "name"), &k, err);
    json_t *p;

    if (found != 1 || k.deleted)
        return found < 0 ? -1 : kv_not_found(pgcmk_req_param(rq, "name"), NULL, err);
    if (kv_policy_load(pgcmk_db(), kc->vault, k.name, &p, err))
        return -1;
    pgcmk_resp_json(rs, 200, kv_policy_json(kc, k.name, p));
    json_decref(p);
    return 0;
}

struct kv_policy_put {
    const char *vault, *name;
    char *text;
};

static int
kv_policy_put_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct kv_policy_put *p = ctx;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_SET_POLICY);
    int rc;

    sqlite3_bind_text(st, 1, p->vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->text, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "write rotation policy", err);
}

static void kv_rotate_due(void);

int
kv_policy_set(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx *kc = rq->admitted;
    struct kv_key k;
    json_t *pol;
    int rc = -1, found;
    char now[PGCMK_TIME_LEN];

    if (kv_body(rq, err))
        goto out;
    found = kv_key_load(pgcmk_db(), kc->vault, pgcmk_req_param(rq, "name"), &k, err);
    if (found != 1 || k.deleted) {
        if (found >= 0)
            kv_not_found(pgcmk_req_param(rq, "name"), NULL, err);
        goto out;
    }
    if (kv_policy_check(rq->json, err))
        goto out;
    pol = json_deep_copy(rq->json);
    json_object_del(pol, "id");
    if (!json_is_object(json_object_get(pol, "attributes")))
        json_object_set_new(pol, "attributes", json_object());
    pgcmk_time_format(pgcmk_clock_now(), now);
    json_object_set_new(json_object_get(pol, "attributes"), "updated",
                        json_integer(pgcmk_clock_now() / 1000));
    {
        struct kv_policy_put p = {kc->vault, k.name, json_dumps(pol, JSON_COMPACT)};

        rc = pgcmk_db_tx(pgcmk_db(), kv_policy_put_tx, &p, err);
        free(p.text);
    }
    if (rc == 0)
        pgcmk_resp_json(rs, 200, kv_policy_json(kc, k.name, pol));
    json_decref(pol);
out:
    return rc;
}

/* The clock's side of rotation: every key whose Rotate trigger has come gets a new version. */
static void
kv_rotate_due(void)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_WITH_POLICY);
    json_t *rows = json_array(), *r;
    int64_t now = pgcmk_clock_now();
    size_t i;

    struct pgcmk_err lerr;

    if (pgcmk_db_each(db, st, pgcmk_db_collect_row, rows, "list keys with a policy", &lerr) < 0)
        LOG_WARN("rotation by policy skipped: %s", lerr.message);
    json_array_foreach(rows, i, r) {
        const char *vault = json_string_value(json_array_get(r, 0));
        const char *name = json_string_value(json_array_get(r, 1));
        json_t *pol = json_loads(json_string_value(json_array_get(r, 3)), 0, NULL), *a;
        const char *expiry =
            json_string_value(json_object_get(json_object_get(pol, "attributes"), "expiryTime"));
        struct kv_version v;
        struct pgcmk_err err;
        int64_t due = -1, ms;
        size_t j;

        if (kv_version_load(db, vault, name, json_string_value(json_array_get(r, 2)), &v, &err) !=
            1) {
            json_decref(pol);
            continue;
        }
        json_array_foreach(json_object_get(pol, "lifetimeActions"), j, a) {
            json_t *trig = json_object_get(a, "trigger");
            const char *type =
                json_string_value(json_object_get(json_object_get(a, "action"), "type"));
            const char *after = json_string_value(json_object_get(trig, "timeAfterCreate"));
            const char *before = json_string_value(json_object_get(trig, "timeBeforeExpiry"));

            if (type == NULL || strcasecmp(type, "Rotate") != 0)
                continue;
            if (after && kv_policy_duration(after, &ms) == 0)
                due = v.created + ms;
            else if (before && v.exp && kv_policy_duration(before, &ms) == 0)
                due = v.exp * 1000 - ms;
        }
        if (due >= 0 && now >= due) {
            struct kv_ctx kc;
            struct kv_spec sp;
            char version[33];
            const char *n = json_string_value(json_object_get(v.jwk, "n"));

            memset(&kc, 0, sizeof(kc));
            memset(&sp, 0, sizeof(sp));
            snprintf(kc.vault, sizeof(kc.vault), "%s", vault);
            sp.kty = v.kty;
            sp.crv = json_string_value(json_object_get(v.jwk, "crv"));
            sp.bits = n && strlen(n) * 6 / 8 >= 512   ? 4096
                      : n && strlen(n) * 6 / 8 >= 384 ? 3072
                                                      : 2048;
            sp.ops = json_incref(v.key_ops);
            sp.tags = json_incref(v.tags);
            sp.enabled = 1;
            if (expiry && kv_policy_duration(expiry, &ms) == 0)
                sp.exp = (now + ms) / 1000;
            if (kv_new_version(&kc, name, &sp, version, NULL, &err))
                LOG_WARN("rotating %s/%s failed: %s", vault, name, err.message);
            else
                LOG_INFO("rotated %s/%s by its policy: new version %s", vault, name, version);
            sp.kty = NULL;
            kv_spec_release(&sp);
        }
        kv_version_release(&v);
        json_decref(pol);
    }
    json_decref(rows);
}

/* ---- scheduled purge and vault purge ---------------------------------------------------- */

/* Purges every key whose scheduled purge date has come, each in its own savepoint: one that
 * fails is rolled back alone, logged and left for the next tick; `ctx` (a json_t array) gets
 * the [vault, name] of each purged key. */
static int
kv_purge_due_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    json_t *purged = ctx, *found = json_array(), *d;
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_DUE);
    size_t i;

    sqlite3_bind_int64(st, 1, pgcmk_clock_now());
    if (pgcmk_db_each(db, st, pgcmk_db_collect_row, found, "find keys due for purge", err) < 0) {
        json_decref(found);
        return -1;
    }
    json_array_foreach(found, i, d) {
        struct kv_ctx kc;
        struct kv_state s;
        struct pgcmk_err e;

        memset(&kc, 0, sizeof(kc));
        snprintf(kc.vault, sizeof(kc.vault), "%s", json_string_value(json_array_get(d, 0)));
        s = (struct kv_state){&kc, json_string_value(json_array_get(d, 1)), 0, 0, 1};
        if (pgcmk_db_savepoint(db, kv_state_tx, &s, &e) == 0)
            json_array_append(purged, d);
        else
            LOG_WARN("scheduled purge of key %s/%s failed: %s", kc.vault, s.name, e.message);
    }
    json_decref(found);
    return 0;
}

static _Atomic int64_t kv_last_tick;

/* Current key versions whose exp fell between the last tick and now: KeyExpired events. */
static void
kv_expiry_events(int64_t now)
{
    int64_t last = atomic_exchange(&kv_last_tick, now);
    struct pgcmk_db *db = pgcmk_db();
    struct pgcmk_err err;
    sqlite3_stmt *st;
    json_t *hits = json_array(), *h;
    size_t i;

    if (last == 0 || now <= last) {
        json_decref(hits);
        return;
    }
    st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_EXPIRED_BETWEEN);
    sqlite3_bind_int64(st, 1, last);
    sqlite3_bind_int64(st, 2, now);
    if (pgcmk_db_each(db, st, pgcmk_db_collect_row, hits, "find expired key versions", &err) < 0)
        LOG_WARN("key expiry events skipped: %s", err.message);
    json_array_foreach(hits, i, h) {
        struct pgcmk_event ev = {PGCMK_EV_KEY_EXPIRED,
                                 json_string_value(json_array_get(h, 0)),
                                 json_string_value(json_array_get(h, 1)),
                                 json_string_value(json_array_get(h, 2)),
                                 NULL,
                                 NULL};

        pgcmk_events_publish(&ev);
    }
    json_decref(hits);
}

static void
kv_on_clock(int64_t now, void *arg)
{
    json_t *due = json_array(), *d;
    struct pgcmk_err err;
    size_t i;

    PGCMK_UNUSED(arg);
    kv_expiry_events(now);
    kv_rotate_due();
    if (pgcmk_db_tx(pgcmk_db(), kv_purge_due_tx, due, &err) == 0) {
        json_array_foreach(due, i, d) {
            struct pgcmk_event ev = {PGCMK_EV_KEY_PURGED,
                                     json_string_value(json_array_get(d, 0)),
                                     json_string_value(json_array_get(d, 1)),
                                     NULL,
                                     NULL,
                                     NULL};

            pgcmk_events_publish(&ev);
        }
    }
    json_decref(due);
}

static int
kv_purge_vault_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_KVVER_PURGE_VAULT);
    int rc;

    pgcmk_vault_invalidate(); /* see the caches: before COMMIT, under the writer lock */
    sqlite3_bind_text(st, 1, ctx, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    if (rc != SQLITE_DONE)
        return pgcmk_db_fail(db, rc, "purge vault key versions", err);
    st = pgcmk_db_stmt(db, PGCMK_STMT_KVKEY_PURGE_VAULT);
    sqlite3_bind_text(st, 1, ctx, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    pgcmk_db_done(st);
    return rc == SQLITE_DONE ? 0 : pgcmk_db_fail(db, rc, "purge vault keys", err);
}

/* A purged vault takes its keys with it. */
static void
kv_on_event(const struct pgcmk_event *ev, void *arg)
{
    struct pgcmk_err err;

    PGCMK_UNUSED(arg);
    if (ev->kind == PGCMK_EV_VAULT_PURGED && ev->vault &&
        pgcmk_db_tx(pgcmk_db(), kv_purge_vault_tx, (void *)ev->vault, &err))
        LOG_WARN("could not purge the keys of vault %s: %s", ev->vault, err.message);
}

void
kv_lifecycle_init(void)
{
    kv_last_tick = pgcmk_clock_now();
    if (pgcmk_clock_listen(kv_on_clock, NULL) || pgcmk_events_subscribe(kv_on_event, NULL))
        LOG_WARN("no room for the key vault listeners");
}
