/* fuzz_http1.c - libFuzzer over the HTTP/1.1 request parser of the KES plane (src/net/http1.c):
 * pgcmk_http1_parse (the head) and pgcmk_http1_dechunk (a chunked body), pure functions over a
 * buffer. Each input is given as an exact-size heap copy, so ASan catches any read past the
 * length. Besides memory errors (ASan) and undefined behaviour (UBSan), it traps when a result
 * breaks the parser's promises:
 *   - a result is a head length within the input, 0 (incomplete), or one of -400, -417, -431,
 *     -501, -505; an input of PGCMK_HTTP1_MAX_HEAD bytes or more is never "incomplete";
 *   - an accepted head has a method and a target inside the buffer, NUL-terminated, a target
 *     starting with '/' (or "*"), HTTP/1.0 or 1.1, at most PGCMK_HTTP1_MAX_HEADERS headers, a
 *     Host on HTTP/1.1, and not both Content-Length and chunked; a prefix of it is incomplete;
 *   - what follows an accepted head, read as a chunked body, is complete (its data no longer
 *     than the limit and than the encoding), incomplete, -400 or -413.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
in_buf(const char *p, const char *buf, size_t size)
{
    return p >= buf && p < buf + size && memchr(p, '\0', (size_t)(buf + size - p)) != NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1), *copy;
    struct pgcmk_http1_head h;
    long r;

    if (size)
        memcpy(in, data, size);
    r = pgcmk_http1_parse(in, size, &h);
    if (r == 0 && size >= PGCMK_HTTP1_MAX_HEAD)
        abort();
    if (r < 0 && r != -400 && r != -417 && r != -431 && r != -501 && r != -505)
        abort();
    if (r > 0) {
        if ((size_t)r > size || !in_buf(h.method, in, size) || !in_buf(h.target, in, size))
            abort();
        if (h.target[0] != '/' && strcmp(h.target, "*") != 0)
            abort();
        if (h.minor != 0 && h.minor != 1)
            abort();
        if (h.n_headers < 0 || h.n_headers > PGCMK_HTTP1_MAX_HEADERS)
            abort();
        for (int i = 0; i < h.n_headers; i++)
            if (!in_buf(h.headers[i].name, in, size) || !in_buf(h.headers[i].value, in, size))
                abort();
        if ((h.minor == 1 && h.host == NULL) || (h.chunked && h.content_length >= 0))
            abort();
        /* A strict prefix of the head is incomplete or refused, never a head. */
        copy = malloc((size_t)r);
        memcpy(copy, data, (size_t)r - 1);
        if (pgcmk_http1_parse(copy, (size_t)r - 1, &h) > 0)
            abort();
        free(copy);
        /* The bytes after the head as a chunked body. */
        {
            size_t rest = size - (size_t)r, out = 0;
            long c;

            copy = malloc(rest ? rest : 1);
            memcpy(copy, data + r, rest);
            c = pgcmk_http1_dechunk(copy, rest, 64, &out);
            if (c > 0 && ((size_t)c > rest || out > 64 || out > (size_t)c))
                abort();
            if (c < 0 && c != -400 && c != -413)
                abort();
            free(copy);
        }
    }
    free(in);
    return 0;
}
