/* archive.c - the archive socket (wal-push/wal-fetch from PostgreSQL's archiver), encrypted base
 * backups, the virtual-time -> WAL position map, restores and replicas. SKELETON (h-pgarch). */
#include "pg/internal.h"
#include "pgcmk/pg.h"

int
pg_archive_start(struct pgcmk_err *err)
{
    (void)err;
    return 0;
}

void
pg_archive_stop(void)
{
}

void
pg_archive_conf(const char *db_id, const char *slug, char *buf, size_t n)
{
    (void)db_id;
    (void)slug;
    (void)buf;
    (void)n;
}

int
pg_archive_fill(const struct pgcmk_pg_spec *s, const char *data_dir, struct pgcmk_err *err)
{
    (void)s;
    (void)data_dir;
    return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                         "restores and replicas of real instances are not available yet");
}

int
pg_archive_backup(const char *db_id, struct pgcmk_err *err)
{
    (void)db_id;
    (void)err;
    return 0;
}

void
pg_archive_drop(const char *db_id)
{
    (void)db_id;
}
