/* test_reconcile.c - the key-source rows: which row a database uses, and explain rules that agree
 * with the reason code (exactly one failing rule, the one the code names). */
#include <stdio.h>
#include <string.h>

#include "pgcmk/err.h"
#include "pgcmk/reconcile.h"
#include "providers/postgres.h"
#include "t.h"

static json_t *
rules_of(const struct pg_db *d)
{
    const struct pgcmk_keysource *ks = pgcmk_keysource_of(d);
    json_t *rules = json_array();

    if (ks)
        ks->explain(NULL, d, rules);
    return rules;
}

/* The names of the failing rules, joined with ',' ("" when none). */
static void
failing(const struct pg_db *d, char *out, size_t cap)
{
    json_t *rules = rules_of(d), *r;
    size_t i;

    out[0] = 0;
    json_array_foreach(rules, i, r) {
        if (json_is_false(json_object_get(r, "ok")))
            snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? "," : "",
                     json_string_value(json_object_get(r, "rule")));
    }
    json_decref(rules);
}

static void
test_rows(void)
{
    struct pg_db d;
    const struct pgcmk_keysource *ks;
    int n = 0;

    for (const struct pgcmk_keysource *const *p = pgcmk_keysources; *p; p++) {
        n++;
        CHECK((*p)->kind && (*p)->uses && (*p)->check && (*p)->explain);
    }
    CHECK(n >= 2);
    memset(&d, 0, sizeof(d));
    ks = pgcmk_keysource_of(&d);
    CHECK(ks && strcmp(ks->kind, "service-managed") == 0);
    d.key_uri = (char *)"https://v.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef";
    ks = pgcmk_keysource_of(&d);
    CHECK(ks && strcmp(ks->kind, "azure-keyvault") == 0 && ks->touches != NULL);
}

static void
test_rules_agree(void)
{
    static const struct {
        enum pgcmk_errc code;
        const char *rule;
    } cases[] = {
        {PGCMK_E_PG_IDENTITY_NOT_FOUND, "identity"},
        {PGCMK_E_PG_IDENTITY_REQUIRED, "identity"},
        {PGCMK_E_PG_MISSING_PERMISSIONS, "permissions"},
        {PGCMK_E_PG_VAULT_UNREACHABLE, "vault"},
        {PGCMK_E_PG_VAULT_RECOVERY, "vault"},
        {PGCMK_E_PG_KEY_DISABLED, "key"},
        {PGCMK_E_PG_KEY_EXPIRED, "key"},
        {PGCMK_E_PG_KEY_NOT_FOUND, "key"},
    };
    struct pg_db d;
    char got[128];

    memset(&d, 0, sizeof(d));
    d.kind = PG_CLUSTER;
    d.key_uri = (char *)"https://v.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef";
    d.principal_id = (char *)"11111111-2222-3333-4444-555555555555";
    d.reason = (char *)"why";
    failing(&d, got, sizeof(got));
    CHECK_STR(got, "");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        d.reason_code = (char *)pgcmk_err_code(cases[i].code);
        failing(&d, got, sizeof(got));
        CHECK_STR(got, cases[i].rule);
    }
    /* an identity deleted: the rule fails although the row still names the principal */
    d.reason_code = (char *)pgcmk_err_code(PGCMK_E_PG_IDENTITY_NOT_FOUND);
    failing(&d, got, sizeof(got));
    CHECK_STR(got, "identity");
    /* a server whose access is back but not revalidated: only the revalidation rule */
    d.kind = PG_SERVER;
    d.reason_code = (char *)pgcmk_err_code(PGCMK_E_PG_REVALIDATION_REQUIRED);
    failing(&d, got, sizeof(got));
    CHECK_STR(got, "revalidation");
    d.reason_code = (char *)pgcmk_err_code(PGCMK_E_PG_KEY_UNCHECKED);
    failing(&d, got, sizeof(got));
    CHECK_STR(got, "checked");
    /* no identity at all */
    d.reason_code = NULL;
    d.principal_id = NULL;
    failing(&d, got, sizeof(got));
    CHECK_STR(got, "identity");
    /* service-managed: one rule, failing only with a reason */
    memset(&d, 0, sizeof(d));
    failing(&d, got, sizeof(got));
    CHECK_STR(got, "");
    d.reason_code = (char *)"InternalServerError";
    failing(&d, got, sizeof(got));
    CHECK_STR(got, "encryption");
}

int
main(void)
{
    test_rows();
    test_rules_agree();
    return t_done("test_reconcile");
}
