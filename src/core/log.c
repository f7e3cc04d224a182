/* log.c - logfmt lines on stderr: lvl=... fn=... msg="..." */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/core.h"
#include "pgcmk/log.h"

int pgcmk_log_level = PGCMK_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int
pgcmk_log_level_parse(const char *s)
{
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(level_names); i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return (int)i;
    return -1;
}

void
pgcmk_log(enum pgcmk_log_level lvl, const char *fn, const char *fmt, ...)
{
    char msg[1024], line[1200];
    char ts[PGCMK_TIME_LEN];
    size_t n = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pgcmk_time_format(pgcmk_wall_ms(), ts);
    n = (size_t)snprintf(line, sizeof(line), "ts=%s lvl=%s fn=%s msg=\"", ts,
                         level_names[(unsigned)lvl < 4 ? lvl : 0], fn);
    for (const char *p = msg; *p && n + 3 < sizeof(line); p++) {
        if (*p == '"' || *p == '\\') {
            line[n++] = '\\';
            line[n++] = *p;
        } else if (*p == '\n' || *p == '\r') {
            line[n++] = ' ';
        } else {
            line[n++] = *p;
        }
    }
    line[n++] = '"';
    line[n++] = '\n';
    fwrite(line, 1, n, stderr);
}
