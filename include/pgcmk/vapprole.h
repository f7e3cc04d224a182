/* vapprole.h - Vault's AppRole auth method (src/vaultapi/approle.c) over migration 12's tables.
 * Independent of the HTTP pipeline: pgcmk_approle_handle() takes the method, the path under the
 * mount and the JSON body, and answers a status with Vault's `data` (or error text); login
 * returns the role's token settings for the core's token API to issue a token. */
#ifndef PGCMK_VAPPROLE_H
#define PGCMK_VAPPROLE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum pgcmk_approle_op { PGCMK_AR_READ, PGCMK_AR_WRITE, PGCMK_AR_DELETE, PGCMK_AR_LIST };

/* What a successful login grants, for the token API. */
struct pgcmk_approle_login {
    char role_name[256];
    json_t *policies; /* token_policies (array of strings; the token API adds "default") */
    int no_default_policy;
    int64_t ttl_s, max_ttl_s, period_s, explicit_max_ttl_s;
    int64_t num_uses;
    char token_type[16];
    json_t *metadata; /* {"role_name": "..."} */
};

/* Answers one request on `mount` (e.g. "auth/approle/") of namespace `ns`; `path` is what follows
 * the mount ("role/kes", "role/kes/secret-id", "login"...). Returns the HTTP status: 200 with
 * `*data` set (Vault's data object), 204, or 400/404/405 with `msg` (Vault's error text; empty
 * for a bare 404 {"errors":[]}). For login (200) `*login` is filled and `*data` is NULL; free
 * it with pgcmk_approle_login_free. Publishes PGCMK_EV_HV_AUTH_CHANGED on role delete and secret
 * ID destroy. */
int pgcmk_approle_handle(const char *ns, const char *mount, enum pgcmk_approle_op op,
                         const char *path, json_t *body, json_t **data,
                         struct pgcmk_approle_login *login, char *msg, size_t msglen);
void pgcmk_approle_login_free(struct pgcmk_approle_login *l);

/* 1 when the path is unauthenticated (login). */
int pgcmk_approle_unauthenticated(const char *path);

/* Whether the path exists, for create vs update (1 yes, 0 no). */
int pgcmk_approle_exists(const char *ns, const char *mount, const char *path);

/* Drops every role and secret ID of a mount (auth disable), inside db's transaction. */
struct pgcmk_db;
void pgcmk_approle_purge(struct pgcmk_db *db, const char *ns, const char *mount);

#endif
