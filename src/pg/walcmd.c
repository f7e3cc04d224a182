/* walcmd.c - `pgcmkd wal-push|wal-fetch`: the subcommands PostgreSQL's archiver runs; they talk
 * to the daemon's archive socket (src/pg/archive.c) and never see a key. SKELETON (h-pgarch). */
#include <stdio.h>
#include <string.h>

#include "pgcmk/pg.h"

int
pgcmk_pg_is_walcmd(int argc, char **argv)
{
    return argc > 1 && (strcmp(argv[1], "wal-push") == 0 || strcmp(argv[1], "wal-fetch") == 0);
}

int
pgcmk_pg_walcmd(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pgcmkd %s: not available yet\n", argv[1]);
    return 1;
}
