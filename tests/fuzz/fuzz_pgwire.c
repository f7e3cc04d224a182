/* fuzz_pgwire.c - libFuzzer over the PostgreSQL wire client's message reader (src/pg/wire.c:
 * pgwire_msg_split, pgwire_result_feed), the bytes a backend could send pgcmkd. Each input is an
 * exact-size heap copy, so ASan catches any read past it. Besides memory errors and undefined
 * behaviour, it traps when a result breaks the reader's promises:
 *   - a split message lies inside the input and takes 5 + its body's length;
 *   - a refused message sets failed = 2 with a message; nothing is fed after ReadyForQuery;
 *   - every row has exactly the RowDescription's columns, as strings or nulls.
 * Inputs of odd length are read as a simple Query's answer (r.multi: several result sets).
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/pgwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = malloc(size ? size : 1);
    struct pgwire_result r;
    size_t off = 0, i;
    json_t *row;

    if (size)
        memcpy(in, data, size);
    pgwire_result_init(&r);
    r.multi = (int)(size & 1);
    while (off < size) {
        struct pgwire_msg m;
        ssize_t used = pgwire_msg_split(in + off, size - off, &m);

        if (used <= 0)
            break;
        if ((size_t)used > size - off || (size_t)used != m.len + 5 || m.body != in + off + 5)
            __builtin_trap();
        off += (size_t)used;
        if (pgwire_result_feed(&r, &m)) {
            if (r.failed != 2 || r.message[0] == 0)
                __builtin_trap();
            break;
        }
        if (r.ready)
            break;
    }
    json_array_foreach(r.rows, i, row) {
        const char *k;
        json_t *v;

        if (json_object_size(row) > json_array_size(r.cols))
            __builtin_trap();
        json_object_foreach(row, k, v)
            if (!json_is_string(v) && !json_is_null(v))
                __builtin_trap();
    }
    pgwire_result_free(&r);
    free(in);
    return 0;
}
