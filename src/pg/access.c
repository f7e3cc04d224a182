/* access.c - a real instance follows its database's access: logins refused and sessions ended
 * on Inaccessible, allowed again on recovery. SKELETON (h-pgacc). */
#include "pg/internal.h"
#include "pgcmk/pg.h"

void
pg_access_start(void)
{
}

int
pg_access_prepare(const char *db_id, const char *data_dir, struct pgcmk_err *err)
{
    (void)db_id;
    (void)data_dir;
    (void)err;
    return 0;
}

void
pg_access_conf(char *buf, size_t n)
{
    (void)buf;
    (void)n;
}

int
pgcmk_pg_access_apply(const char *db_id, struct pgcmk_err *err)
{
    (void)db_id;
    (void)err;
    return 0;
}
