/* err.c - the tables generated from the PGCMK_ERRORS list, and the error setter. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "pgcmk/core.h"
#include "pgcmk/err.h"

static const struct {
    int status;
    const char *code, *evidence, *doc;
} err_table[] = {

#define PGCMK_X_ROW(e, st, code, ev, doc) {st, code, ev, doc},
    PGCMK_ERRORS(PGCMK_X_ROW)
#undef PGCMK_X_ROW
};

static atomic_ulong err_counts[PGCMK_E__COUNT];

int
pgcmk_err_set(struct pgcmk_err *err, enum pgcmk_errc code, const char *target, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return -1;
    err->code = code;
    snprintf(err->target, sizeof(err->target), "%s", target ? target : "");
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -1;
}

void
pgcmk_err_clear(struct pgcmk_err *err)
{
    memset(err, 0, sizeof(*err));
}

static unsigned
err_index(enum pgcmk_errc code)
{
    return (unsigned)code < PGCMK_E__COUNT ? (unsigned)code : (unsigned)PGCMK_E_INTERNAL;
}

int
pgcmk_err_status(enum pgcmk_errc code)
{
    return err_table[err_index(code)].status;
}

const char *
pgcmk_err_code(enum pgcmk_errc code)
{
    return err_table[err_index(code)].code;
}

enum pgcmk_errc
pgcmk_err_from_code(const char *code)
{
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(err_table); i++)
        if (strcmp(err_table[i].code, code) == 0)
            return (enum pgcmk_errc)i;
    return PGCMK_E_INTERNAL;
}

const char *
pgcmk_err_evidence(enum pgcmk_errc code)
{
    return err_table[err_index(code)].evidence;
}

const char *
pgcmk_err_doc(enum pgcmk_errc code)
{
    return err_table[err_index(code)].doc;
}

void
pgcmk_err_count(enum pgcmk_errc code)
{
    atomic_fetch_add(&err_counts[err_index(code)], 1);
}

unsigned long
pgcmk_err_counted(enum pgcmk_errc code)
{
    return atomic_load(&err_counts[err_index(code)]);
}
