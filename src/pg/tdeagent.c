/* tdeagent.c - the pg_tde agent (include/pgcmk/tdeproto.h): the operations pgcmk's
 * pg_tde-compatible extension asks for over the archive socket. STUB of the contract commit:
 * every request answers status=error (owner: h-tdeagent replaces it). */
#include <stdio.h>
#include <string.h>

#include "pg/arfmt.h"
#include "pg/internal.h"
#include "pgcmk/tdeproto.h"

void
pg_tde_agent_serve(int fd, const char *db_id, const char *slug, const char *body, size_t len)
{
    static const char answer[] = "status=error\nsqlstate=0A000\nmessage=the pg_tde agent of "
                                 "pgcmkd is not implemented yet\n";
    char head[32];
    int n = snprintf(head, sizeof(head), "OK %zu\n", sizeof(answer) - 1);

    (void)db_id;
    (void)slug;
    (void)body;
    (void)len;
    if (pga_write_all(fd, head, (size_t)n) == 0)
        (void)pga_write_all(fd, answer, sizeof(answer) - 1);
}
