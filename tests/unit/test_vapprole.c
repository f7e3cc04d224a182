/* test_vapprole.c - Vault's AppRole (src/vaultapi/approle.c) on a real store: role write/read
 * with Vault's field aliases and defaults, role ID, secret IDs (hashed at rest, uses, TTL on the
 * virtual clock), login's errors and grant, list, destroy, delete and purge. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "pgcmk/clock.h"
#include "pgcmk/err.h"
#include "pgcmk/store.h"
#include "pgcmk/vapprole.h"
#include "t.h"
#include "t_store.h"

#define M "auth/approle/"

static int
call(enum pgcmk_approle_op op, const char *path, const char *body, json_t **data, char *msg)
{
    struct pgcmk_approle_login lg;
    json_t *b = body ? json_loads(body, 0, NULL) : NULL;
    int st;

    memset(&lg, 0, sizeof(lg));
    st = pgcmk_approle_handle("", M, op, path, b, data, &lg, msg, 256);
    pgcmk_approle_login_free(&lg);
    json_decref(b);
    return st;
}

static int
login(const char *role_id, const char *secret, struct pgcmk_approle_login *lg, char *msg)
{
    json_t *b = json_pack("{s:s, s:s}", "role_id", role_id, "secret_id", secret), *data = NULL;
    int st;

    memset(lg, 0, sizeof(*lg));
    st = pgcmk_approle_handle("", M, PGCMK_AR_WRITE, "login", b, &data, lg, msg, 256);
    json_decref(b);
    json_decref(data);
    return st;
}

static int
secret_rows_with(const char *text)
{
    sqlite3_stmt *st;
    int n = 0;

    sqlite3_prepare_v2(pgcmk_db_handle(pgcmk_db()),
                       "SELECT count(*) FROM vault_approle_secrets WHERE hash=?1 OR accessor=?1",
                       -1, &st, NULL);
    sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

int
main(void)
{
    struct pgcmk_err err;
    struct pgcmk_approle_login lg;
    json_t *data = NULL;
    char msg[256], role_id[64], secret[64], accessor[64];

    pgcmk_clock_init();
    if (t_store_open(&err) != 0) {
        fprintf(stderr, "store: %s\n", err.message);
        return 1;
    }
    /* KES's role: period=5m, policies as a comma list, numbers as strings */
    CHECK(call(PGCMK_AR_WRITE, "role/kes",
               "{\"token_num_uses\":\"0\",\"secret_id_num_uses\":\"0\",\"period\":\"5m\","
               "\"policies\":\"kes-policy, Other\"}",
               &data, msg) == 204);
    CHECK(call(PGCMK_AR_READ, "role/kes", NULL, &data, msg) == 200);
    CHECK(json_integer_value(json_object_get(data, "token_period")) == 300);
    CHECK(json_array_size(json_object_get(data, "token_policies")) == 2);
    CHECK_STR(json_string_value(json_array_get(json_object_get(data, "policies"), 1)), "other");
    CHECK(json_is_true(json_object_get(data, "bind_secret_id")));
    json_decref(data);
    CHECK(call(PGCMK_AR_WRITE, "role/kes", "{\"token_ttl\":\"soon\"}", &data, msg) == 400);
    CHECK(call(PGCMK_AR_WRITE, "role/kes", "{\"bind_secret_id\":false}", &data, msg) == 400);
    CHECK_STR(msg, "at least one constraint should be enabled on the role");
    CHECK(call(PGCMK_AR_WRITE, "role/bad name", "{}", &data, msg) == 400);
    CHECK(call(PGCMK_AR_READ, "role/none", NULL, &data, msg) == 404 && msg[0] == '\0');
    CHECK(call(PGCMK_AR_WRITE, "role/none/secret-id", NULL, &data, msg) == 400);
    CHECK_STR(msg, "role \"none\" does not exist");
    CHECK(pgcmk_approle_exists("", M, "role/kes") == 1);
    CHECK(pgcmk_approle_exists("", M, "role/none") == 0);
    CHECK(pgcmk_approle_unauthenticated("login") && !pgcmk_approle_unauthenticated("role/kes"));

    CHECK(call(PGCMK_AR_READ, "role/kes/role-id", NULL, &data, msg) == 200);
    snprintf(role_id, sizeof(role_id), "%s", json_string_value(json_object_get(data, "role_id")));
    json_decref(data);
    CHECK(strlen(role_id) == 36);

    /* a secret ID: stored hashed, never in clear */
    CHECK(call(PGCMK_AR_WRITE, "role/kes/secret-id", "{\"metadata\":\"{\\\"a\\\":\\\"b\\\"}\"}",
               &data, msg) == 200);
    snprintf(secret, sizeof(secret), "%s", json_string_value(json_object_get(data, "secret_id")));
    snprintf(accessor, sizeof(accessor), "%s",
             json_string_value(json_object_get(data, "secret_id_accessor")));
    json_decref(data);
    CHECK(secret_rows_with(secret) == 0 && secret_rows_with(accessor) == 1);

    /* login: errors, then the grant */
    CHECK(login("nope", secret, &lg, msg) == 400);
    CHECK_STR(msg, "invalid role ID");
    CHECK(login(role_id, "nope", &lg, msg) == 400);
    CHECK_STR(msg, "invalid secret id");
    CHECK(login(role_id, secret, &lg, msg) == 200);
    CHECK(lg.period_s == 300 && lg.num_uses == 0 && !lg.no_default_policy);
    CHECK(json_array_size(lg.policies) == 2);
    CHECK_STR(json_string_value(json_object_get(lg.metadata, "role_name")), "kes");
    CHECK_STR(json_string_value(json_object_get(lg.metadata, "a")), "b");
    pgcmk_approle_login_free(&lg);
    CHECK(login(role_id, secret, &lg, msg) == 200); /* num_uses 0: unlimited */
    pgcmk_approle_login_free(&lg);

    /* a limited secret ID: 1 use, 60 s */
    CHECK(call(PGCMK_AR_WRITE, "role/kes/secret-id", "{\"num_uses\":1,\"ttl\":\"60s\"}", &data,
               msg) == 200);
    {
        char one[64];

        snprintf(one, sizeof(one), "%s", json_string_value(json_object_get(data, "secret_id")));
        CHECK(json_integer_value(json_object_get(data, "secret_id_num_uses")) == 1);
        json_decref(data);
        CHECK(login(role_id, one, &lg, msg) == 200);
        pgcmk_approle_login_free(&lg);
        CHECK(login(role_id, one, &lg, msg) == 400);
    }
    CHECK(call(PGCMK_AR_WRITE, "role/kes/secret-id", "{\"ttl\":60}", &data, msg) == 200);
    {
        char one[64];

        snprintf(one, sizeof(one), "%s", json_string_value(json_object_get(data, "secret_id")));
        json_decref(data);
        pgcmk_clock_advance(59 * 1000);
        CHECK(login(role_id, one, &lg, msg) == 200);
        pgcmk_approle_login_free(&lg);
        pgcmk_clock_advance(2 * 1000);
        CHECK(login(role_id, one, &lg, msg) == 400);
    }

    /* list, lookup, destroy by accessor */
    CHECK(call(PGCMK_AR_LIST, "role/kes/secret-id", NULL, &data, msg) == 200);
    CHECK(json_array_size(json_object_get(data, "keys")) == 1);
    json_decref(data);
    {
        char body[128];

        snprintf(body, sizeof(body), "{\"secret_id\":\"%s\"}", secret);
        CHECK(call(PGCMK_AR_WRITE, "role/kes/secret-id/lookup", body, &data, msg) == 200);
        CHECK_STR(json_string_value(json_object_get(data, "secret_id_accessor")), accessor);
        json_decref(data);
        snprintf(body, sizeof(body), "{\"secret_id_accessor\":\"%s\"}", accessor);
        CHECK(call(PGCMK_AR_WRITE, "role/kes/secret-id-accessor/destroy", body, &data, msg) == 204);
        CHECK(login(role_id, secret, &lg, msg) == 400);
        CHECK(call(PGCMK_AR_LIST, "role/kes/secret-id", NULL, &data, msg) == 404);
    }

    /* role list, delete, purge */
    CHECK(call(PGCMK_AR_WRITE, "role/second", NULL, &data, msg) == 204);
    CHECK(call(PGCMK_AR_LIST, "role", NULL, &data, msg) == 200);
    CHECK(json_array_size(json_object_get(data, "keys")) == 2);
    json_decref(data);
    CHECK(call(PGCMK_AR_DELETE, "role/kes", NULL, &data, msg) == 204);
    CHECK(login(role_id, secret, &lg, msg) == 400);
    CHECK_STR(msg, "invalid role ID");
    pgcmk_approle_purge(pgcmk_db(), "", M);
    CHECK(call(PGCMK_AR_LIST, "role", NULL, &data, msg) == 404);
    CHECK(call(PGCMK_AR_READ, "login", NULL, &data, msg) == 405);

    t_store_close();
    return t_done("test_vapprole");
}
