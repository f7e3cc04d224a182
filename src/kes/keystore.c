/* keystore.c - KES's Vault keystore (minio/kes internal/keystore/vault): skeleton. */
#include <stdlib.h>
#include <string.h>

#include "kes/store_internal.h"
#include "pgcmk/core.h"
#include "pgcmk/kesstore.h"

static int
not_yet(struct pgcmk_err *err)
{
    return pgcmk_err_set(err, PGCMK_E_KES_KEYSTORE, NULL, "vault: keystore not yet implemented");
}

static int
v_create(void *arg, const char *name, const char *value, struct pgcmk_err *err)
{
    PGCMK_UNUSED(arg);
    PGCMK_UNUSED(name);
    PGCMK_UNUSED(value);
    return not_yet(err);
}

static int
v_get(void *arg, const char *name, char **value, struct pgcmk_err *err)
{
    PGCMK_UNUSED(arg);
    PGCMK_UNUSED(name);
    *value = NULL;
    return not_yet(err);
}

static int
v_del(void *arg, const char *name, struct pgcmk_err *err)
{
    PGCMK_UNUSED(arg);
    PGCMK_UNUSED(name);
    return not_yet(err);
}

static int
v_list(void *arg, json_t **names, struct pgcmk_err *err)
{
    PGCMK_UNUSED(arg);
    *names = NULL;
    return not_yet(err);
}

static void
v_ping(void *arg, struct pgcmk_kes_store_health *h)
{
    PGCMK_UNUSED(arg);
    h->reachable = 0;
    snprintf(h->why, sizeof(h->why), "vault: keystore not yet implemented");
}

static const struct pgcmk_kes_backend vault_backend = {v_create, v_get,  v_del,
                                                       v_list,   v_ping, NULL};

struct pgcmk_kes_store *
pgcmk_kes_store_open(const struct pgcmk_kes_vault_cfg *vc, const struct pgcmk_kes_cache_cfg *cc,
                     struct pgcmk_err *err)
{
    if (!vc || !vc->endpoint || !vc->endpoint[0]) {
        pgcmk_err_set(err, PGCMK_E_KES_KEYSTORE_CONFIG, NULL, "vault: endpoint is empty");
        return NULL;
    }
    return pgcmk_kes_store_new(&vault_backend, NULL, cc);
}
