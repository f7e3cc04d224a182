/* atrest.c - the data directory on gocryptfs under the DEK (--pg-at-rest). SKELETON (h-pgci). */
#include "pg/internal.h"
#include "pgcmk/pg.h"

int
pg_atrest_on(void)
{
    return 0;
}

int
pg_atrest_mount(const char *db_id, const char *dir, char *data_out, size_t n, struct pgcmk_err *err)
{
    (void)db_id;
    (void)dir;
    (void)data_out;
    (void)n;
    return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                         "--pg-at-rest fs is not available yet");
}

void
pg_atrest_unmount(const char *db_id, const char *dir)
{
    (void)db_id;
    (void)dir;
}
