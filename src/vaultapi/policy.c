/* policy.c - Vault ACL policies at rest (migration 12's vault_policies): the registry in acl.c is
 * the hot path's copy, this file keeps the store in step with it and publishes the change. */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "pgcmk/clock.h"
#include "pgcmk/err.h"
#include "pgcmk/events.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"
#include "pgcmk/vacl.h"

static int
load_row(sqlite3_stmt *st, void *arg, struct pgcmk_err *err)
{
    const char *ns = (const char *)sqlite3_column_text(st, 0);
    const char *name = (const char *)sqlite3_column_text(st, 1);
    const char *body = (const char *)sqlite3_column_text(st, 2);
    char msg[256];

    (void)arg;
    (void)err;
    if (ns && name && body && pgcmk_vacl_policy_put(ns, name, body, msg, sizeof(msg)) != 0)
        LOG_WARN("vault policy %s%s not loaded: %s", ns, name, msg);
    return 0;
}

int
pgcmk_vacl_load(struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();

    pgcmk_vacl_reset();
    return pgcmk_db_each(db, pgcmk_db_stmt(db, PGCMK_STMT_HV_POLICY_ALL), load_row, NULL,
                         "vault policies", err) < 0
               ? -1
               : 0;
}

struct pol_tx {
    const char *ns, *name, *text; /* text NULL: delete */
};

static int
pol_tx(struct pgcmk_db *db, void *ctx, struct pgcmk_err *err)
{
    struct pol_tx *t = ctx;
    sqlite3_stmt *st;

    if (t->text) {
        st = pgcmk_db_stmt(db, PGCMK_STMT_HV_POLICY_PUT);
        sqlite3_bind_text(st, 1, t->ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, t->text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, pgcmk_clock_now());
    } else {
        st = pgcmk_db_stmt(db, PGCMK_STMT_HV_POLICY_DELETE);
        sqlite3_bind_text(st, 1, t->ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
    }
    return pgcmk_db_each(db, st, NULL, NULL, "vault policy", err) < 0 ? -1 : 0;
}

/* Announced once the registry holds the change (after the commit): a check the event starts must
 * see the new policy, not the one it replaces. */
static void
pol_announce(const char *ns, const char *name)
{
    struct pgcmk_event ev = {0};

    ev.kind = PGCMK_EV_HV_POLICY_CHANGED;
    ev.resource_id = ns;
    ev.object_id = name;
    pgcmk_events_publish(&ev);
}

int
pgcmk_vacl_policy_write(const char *ns, const char *name, const char *text, char *msg,
                        size_t msglen)
{
    struct pol_tx t = {ns, name, text};
    struct pgcmk_vacl_policy *p;
    struct pgcmk_err err = {0};
    char perr[512];

    if (strcmp(name, "root") == 0) {
        snprintf(msg, msglen, "cannot update \"root\" policy");
        return -1;
    }
    if (pgcmk_vacl_policy_parse(name, text, &p, perr, sizeof(perr)) < 0) {
        snprintf(msg, msglen, "failed to parse policy: %s", perr);
        return -1;
    }
    pgcmk_vacl_policy_free(p);
    if (pgcmk_db_tx(pgcmk_db(), pol_tx, &t, &err) < 0) {
        snprintf(msg, msglen, "internal error");
        return -2;
    }
    if (pgcmk_vacl_policy_put(ns, name, text, perr, sizeof(perr)) != 0) {
        snprintf(msg, msglen, "failed to parse policy: %s", perr);
        return -1;
    }
    pol_announce(ns, name);
    return 0;
}

int
pgcmk_vacl_policy_delete_ns(const char *ns_prefix, struct pgcmk_err *err)
{
    struct pgcmk_db *db = pgcmk_db();
    sqlite3_stmt *st = pgcmk_db_stmt(db, PGCMK_STMT_HV_POLICY_DELETE_NS);

    sqlite3_bind_text(st, 1, ns_prefix, -1, SQLITE_STATIC);
    if (pgcmk_db_each(db, st, NULL, NULL, "vault policies of a namespace", err) < 0)
        return -1;
    pgcmk_vacl_drop_ns(ns_prefix);
    return 0;
}

int
pgcmk_vacl_policy_delete(const char *ns, const char *name, char *msg, size_t msglen)
{
    struct pol_tx t = {ns, name, NULL};
    struct pgcmk_err err = {0};

    /* Vault's policy store: root is immutable, default is built in */
    if (strcmp(name, "root") == 0) {
        snprintf(msg, msglen, "cannot delete \"root\" policy");
        return -1;
    }
    if (strcmp(name, "default") == 0) {
        snprintf(msg, msglen, "cannot delete default policy");
        return -1;
    }
    if (pgcmk_db_tx(pgcmk_db(), pol_tx, &t, &err) < 0) {
        snprintf(msg, msglen, "internal error");
        return -2;
    }
    pgcmk_vacl_policy_del(ns, name);
    pol_announce(ns, name);
    return 0;
}
