/* fuzz_filter.c - libFuzzer over the Activity Log's $filter parser
 * (pgcmk_activity_filter_parse_buf, src/monitor/filter.c), a pure function over a buffer.
 * Besides memory errors (ASan) and undefined behaviour (UBSan), it traps when a result breaks
 * the parser's promises:
 *   - an accepted filter has a start time no later than its end time, NUL-terminated fields and
 *     a comma-wrapped lower-case levels list;
 *   - a refused one is 400 BadRequest on target "$filter" with Azure's message prefix;
 *   - the string entry point agrees with the buffer one when the input has no NUL;
 *   - parsing is deterministic (twice the same input, the same result).
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/monitor.h"

#define PREFIX "$filter searching parameters invalid: "

static int
terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static void
check_ok(const struct pgcmk_activity_filter *f)
{
    size_t n;

    if (f->from_ms > f->to_ms)
        __builtin_trap();
    if (!terminated(f->rg, sizeof(f->rg)) || !terminated(f->resource_id, sizeof(f->resource_id)) ||
        !terminated(f->correlation_id, sizeof(f->correlation_id)) ||
        !terminated(f->provider, sizeof(f->provider)) ||
        !terminated(f->caller, sizeof(f->caller)) || !terminated(f->status, sizeof(f->status)) ||
        !terminated(f->levels, sizeof(f->levels)))
        __builtin_trap();
    n = strlen(f->levels);
    if (n && (n < 2 || f->levels[0] != ',' || f->levels[n - 1] != ','))
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if (f->levels[i] >= 'A' && f->levels[i] <= 'Z')
            __builtin_trap();
}

static void
check_err(const struct pgcmk_err *err)
{
    if (err->code != PGCMK_E_BAD_REQUEST || strcmp(err->target, "$filter") != 0 ||
        strncmp(err->message, PREFIX, strlen(PREFIX)) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pgcmk_activity_filter f, g;
    struct pgcmk_err err, err2;
    int rc, rc2;
    char *copy;

    /* an exact-size heap copy, so ASan sees any read past len */
    copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    memset(&err, 0, sizeof(err));
    rc = pgcmk_activity_filter_parse_buf(copy, size, &f, &err);
    if (rc == 0)
        check_ok(&f);
    else if (rc == -1)
        check_err(&err);
    else
        __builtin_trap();

    memset(&err2, 0, sizeof(err2));
    rc2 = pgcmk_activity_filter_parse_buf(copy, size, &g, &err2);
    if (rc2 != rc || memcmp(&f, &g, sizeof(f)) != 0 ||
        (rc && strcmp(err.message, err2.message) != 0))
        __builtin_trap();
    free(copy);

    if (memchr(data, '\0', size) == NULL) {
        copy = malloc(size + 1);
        if (copy == NULL)
            return 0;
        memcpy(copy, data, size);
        copy[size] = '\0';
        memset(&err2, 0, sizeof(err2));
        rc2 = pgcmk_activity_filter_parse(copy, &g, &err2);
        if (rc2 != rc || memcmp(&f, &g, sizeof(f)) != 0 ||
            (rc && strcmp(err.message, err2.message) != 0))
            __builtin_trap();
        free(copy);
    }
    return 0;
}
