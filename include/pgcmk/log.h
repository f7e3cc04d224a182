/* log.h - one logfmt line per event on stderr. Never pass secrets here. */
#ifndef PGCMK_LOG_H
#define PGCMK_LOG_H

enum pgcmk_log_level { PGCMK_LOG_ERR = 0, PGCMK_LOG_WARN, PGCMK_LOG_INFO, PGCMK_LOG_DEBUG };

extern int pgcmk_log_level;

/* Parses "error|warn|info|debug"; -1 when unknown. */
int pgcmk_log_level_parse(const char *s);
void pgcmk_log(enum pgcmk_log_level lvl, const char *fn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define PGCMK_LOG_AT(l, ...)                                                                       \
    do {                                                                                           \
        if ((int)(l) <= pgcmk_log_level)                                                           \
            pgcmk_log((l), __func__, __VA_ARGS__);                                                 \
    } while (0)
#define LOG_ERR(...)   PGCMK_LOG_AT(PGCMK_LOG_ERR, __VA_ARGS__)
#define LOG_WARN(...)  PGCMK_LOG_AT(PGCMK_LOG_WARN, __VA_ARGS__)
#define LOG_INFO(...)  PGCMK_LOG_AT(PGCMK_LOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) PGCMK_LOG_AT(PGCMK_LOG_DEBUG, __VA_ARGS__)

/* A broken invariant: log and abort. Never an HTTP error. */
#define PGCMK_BUG(...)                                                                             \
    do {                                                                                           \
        pgcmk_log(PGCMK_LOG_ERR, __func__, "BUG: " __VA_ARGS__);                                   \
        abort();                                                                                   \
    } while (0)

#endif
