/* pgdata.h - the modeled data plane of the PostgreSQL databases (/emulator/data...): rows under
 * each database's DEK. pg_rows_restore (src/providers/postgres.h) copies rows for a restore. */
#ifndef PGCMK_PGDATA_H
#define PGCMK_PGDATA_H

/* Registers /emulator/data{resourceId}/rows[/{key}] (at init, before the server starts). */
void pgcmk_pgdata_register(void);

#endif
