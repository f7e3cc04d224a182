/* pg.c - real PostgreSQL: the mode, binaries, user, template, ports, start-up and shutdown
 * (include/pgcmk/pg.h). SKELETON: real mode is refused until the supervisor lands (h-pgsup). */
#include <stdio.h>

#include "pg/internal.h"
#include "pgcmk/pg.h"

static int pg_is_real;

int
pgcmk_pg_real(void)
{
    return pg_is_real;
}

int
pgcmk_pg_init(const struct pgcmk_cfg *cfg, struct pgcmk_err *err)
{
    if (cfg->pg_mode != PGCMK_PG_REAL)
        return 0;
    return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                         "--pg-mode real is not available in this build yet");
}

void
pgcmk_pg_shutdown(void)
{
}

int
pgcmk_pg_create(const struct pgcmk_pg_spec *s, struct pgcmk_err *err)
{
    (void)s;
    return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "real mode is off");
}

int
pgcmk_pg_drop(const char *db_id, struct pgcmk_err *err)
{
    (void)db_id;
    (void)err;
    return 0;
}

int
pgcmk_pg_set_password(const char *db_id, const char *login, const char *password,
                      struct pgcmk_err *err)
{
    (void)db_id;
    (void)login;
    (void)password;
    (void)err;
    return 0;
}

int
pgcmk_pg_restart(const char *db_id, struct pgcmk_err *err)
{
    (void)db_id;
    (void)err;
    return 0;
}

int
pgcmk_pg_promote(const char *db_id, struct pgcmk_err *err)
{
    (void)db_id;
    (void)err;
    return 0;
}

int
pgcmk_pg_has(const char *db_id)
{
    (void)db_id;
    return 0;
}

json_t *
pgcmk_pg_describe(const char *db_id)
{
    (void)db_id;
    return NULL;
}

json_t *
pgcmk_pg_connection(const char *db_id)
{
    (void)db_id;
    return NULL;
}

int
pgcmk_pg_exec(const char *db_id, const char *dbname, const char *sql, const char *const *params,
              int nparams, json_t **rows, struct pgcmk_err *err)
{
    (void)db_id;
    (void)dbname;
    (void)sql;
    (void)params;
    (void)nparams;
    if (rows)
        *rows = NULL;
    return pgcmk_err_set(err, PGCMK_E_PGREAL_DOWN, NULL, "no instance");
}

void
pgcmk_pg_register(void)
{
}
