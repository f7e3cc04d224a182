/* fuzz_pghba.c - libFuzzer over the pg_hba.conf rewriting of the refusal without the pgcmk
 * library (pg_access_hba_refusing, src/pg/access.c), a pure function of the original text and
 * the reason code. The input is "code\0original" (no NUL: all original, no code). Besides memory
 * errors (ASan) and undefined behaviour (UBSan), it traps when the result breaks its promises:
 *   - the first line is pgcmkd's comment, the last one `host all all all reject`;
 *   - every line between is a whole line of the original, of a replication database or of the
 *     exempt roles (never a line that would let another role in);
 *   - the same input gives the same output.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/internal.h"

#define LAST "host all all all reject\n"

/* Is line (n bytes, no newline) a whole line of orig? */
static int
line_of(const char *orig, const char *line, size_t n)
{
    const char *p = orig;

    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t m = nl ? (size_t)(nl - p) : strlen(p);

        if (m == n && memcmp(p, line, n) == 0)
            return 1;
        p = nl ? nl + 1 : p + m;
    }
    return 0;
}

/* A line kept must be a replication line, or name only the exempt roles. */
static int
allowed(const char *line, size_t n)
{
    char buf[1024], type[32], db[64], user[256], *tok, *save = NULL;
    int any = 0;

    if (n >= sizeof(buf))
        return 0;
    memcpy(buf, line, n);
    buf[n] = 0;
    if (sscanf(buf, " %31s %63s %255s", type, db, user) != 3 || type[0] == '#')
        return 0;
    if (strcmp(db, "replication") == 0)
        return 1;
    for (tok = strtok_r(user, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "pgcmk_agent") != 0 && strcmp(tok, "pgcmk_replication") != 0)
            return 0;
        any = 1;
    }
    return any;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1), *code = NULL, *orig = in, *out, *again, *p, *nl;
    size_t len;

    memcpy(in, data, size);
    in[size] = 0;
    if (memchr(data, 0, size)) {
        code = in;
        orig = in + strlen(in) + 1;
    }
    out = pg_access_hba_refusing(orig, code);
    len = strlen(out);
    if (strncmp(out, "# pgcmk: ", 9) != 0 || len < sizeof(LAST) - 1 ||
        strcmp(out + len - (sizeof(LAST) - 1), LAST) != 0)
        __builtin_trap();
    p = strchr(out, '\n') + 1; /* after the comment */
    while ((size_t)(p - out) < len - (sizeof(LAST) - 1)) {
        nl = strchr(p, '\n');
        if (!nl || !line_of(orig, p, (size_t)(nl - p)) || !allowed(p, (size_t)(nl - p)))
            __builtin_trap();
        p = nl + 1;
    }
    again = pg_access_hba_refusing(orig, code);
    if (strcmp(out, again) != 0)
        __builtin_trap();
    free(again);
    free(out);
    free(in);
    return 0;
}
