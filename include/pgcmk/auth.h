/* auth.h - the token service: principals, client-credentials and managed-identity tokens
 * (JWTs signed RS256 by the emulator), OIDC discovery, JWKS, the two Graph look-ups, and the
 * bearer-token check every plane runs. */
#ifndef PGCMK_AUTH_H
#define PGCMK_AUTH_H

#include <jansson.h>

#include "pgcmk/core.h"
#include "pgcmk/err.h"
#include "pgcmk/http.h"
#include "pgcmk/store.h"

/* Loads (or creates and seals) the signing key, seeds the admin principal, adds the routes and
 * installs the bearer check (call before the server starts). */
int pgcmk_auth_init(struct pgcmk_err *err) PGCMK_WUR;
/* The HTTPS port, once bound: it names the issuer (https://localhost:PORT/{tenant}/). */
void pgcmk_auth_set_port(int https_port);
void pgcmk_auth_shutdown(void);

/* Records a managed identity's principal (inside the caller's transaction). */
int pgcmk_auth_add_identity(struct pgcmk_db *db, const char *object_id, const char *client_id,
                            const char *name, const char *resource_id,
                            struct pgcmk_err *err) PGCMK_WUR;
/* Removes the principal of a managed identity (inside the caller's transaction). */
int pgcmk_auth_remove_identity(struct pgcmk_db *db, const char *resource_id,
                               struct pgcmk_err *err) PGCMK_WUR;

/* Verifies a bearer token for an audience class and says who the caller is. Vault plane
 * audiences: https://vault.azure.net, https://vault.localhost:PORT, the Key Vault app id. */
enum pgcmk_audience { PGCMK_AUD_ARM = 0, PGCMK_AUD_VAULT = 1 };

struct pgcmk_caller {
    char oid[64], tid[64], appid[64];
};

int pgcmk_auth_verify(const char *token, enum pgcmk_audience aud, struct pgcmk_caller *who,
                      struct pgcmk_err *err) PGCMK_WUR;

/* Issues a token for a principal (object id) and audience; used by the encryption agent's
 * tests and by the token endpoints. Returns a heap string, NULL when the principal is unknown. */
char *pgcmk_auth_issue(const char *object_id, const char *audience, int64_t *expires_on);

#endif
