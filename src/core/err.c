/* err.c - the tables generated from the PGCMK_ERRORS list, and the error setter. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "pgcmk/core.h"
#include "pgcmk/err.h"

/* An ordinary row is its own parent; an inner row has status 0 and answers with its parent's. */
static const struct {
    int status;
    enum pgcmk_errc parent;
    const char *code, *evidence, *doc;
} err_table[] = {

#define PGCMK_X_ROW(e, st, code, ev, doc)       {st, e, code, ev, doc},
#define PGCMK_X_INNER(e, parent, code, ev, doc) {0, parent, code, ev, doc},
    PGCMK_ERRORS(PGCMK_X_ROW, PGCMK_X_INNER)
#undef PGCMK_X_INNER
#undef PGCMK_X_ROW
};

static const struct {
    int status;
    const char *name;
} status_names[] = {

#define PGCMK_X_STATUS(st, name) {st, name},
    PGCMK_HTTP_STATUS_NAMES(PGCMK_X_STATUS)
#undef PGCMK_X_STATUS
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

enum pgcmk_errc
pgcmk_err_parent(enum pgcmk_errc code)
{
    return err_table[err_index(code)].parent;
}

int
pgcmk_err_status(enum pgcmk_errc code)
{
    return err_table[pgcmk_err_parent(code)].status;
}

const char *
pgcmk_err_inner(enum pgcmk_errc code)
{
    unsigned i = err_index(code);

    return err_table[i].parent != (enum pgcmk_errc)i ? err_table[i].code : NULL;
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

enum pgcmk_errc
pgcmk_err_from_codes(const char *code, const char *inner)
{
    if (inner && *inner) {
        enum pgcmk_errc c = pgcmk_err_from_code(inner);

        if (pgcmk_err_inner(c) &&
            (code == NULL || strcmp(pgcmk_err_code(pgcmk_err_parent(c)), code) == 0))
            return c;
    }
    return code ? pgcmk_err_from_code(code) : PGCMK_E_INTERNAL;
}

const char *
pgcmk_err_status_name(int status)
{
    int fallback = status >= 500 ? 500 : status >= 400 ? 400 : 200;

    for (size_t i = 0; i < PGCMK_ARRAY_LEN(status_names); i++)
        if (status_names[i].status == status)
            return status_names[i].name;
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(status_names); i++)
        if (status_names[i].status == fallback)
            return status_names[i].name;
    return status_names[0].name;
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
