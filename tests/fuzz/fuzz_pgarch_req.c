/* fuzz_pgarch_req.c - libFuzzer over the archive socket's lines (src/pg/arfmt.c):
 * pga_req_parse (what the daemon reads from the PostgreSQL user) and pga_ans_parse (what
 * `pgcmkd wal-fetch` reads back). Each input is an exact-size heap copy, so ASan catches a read
 * past its end. Traps when a promise breaks:
 *   - a result is -1, 0 (only for inputs shorter than PGA_LINE_MAX without '\n') or the length
 *     of the first line with its '\n';
 *   - an accepted request has a valid slug and file name, a length within PGA_MAX_FILE (a TDE
 *     request: no file name, a length within PGA_TDE_MAX), and formats back (pga_req_format) to
 *     exactly the bytes of its line;
 *   - an accepted answer is "OK <n>" with n <= PGA_MAX_FILE or "ERR <text>" with printable text.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pg/arfmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1), line[PGA_LINE_MAX], text[64];
    const char *nl, *why;
    struct pga_req r;
    uint64_t n;
    long k;
    int ok;

    if (size)
        memcpy(in, data, size);
    nl = memchr(in, '\n', size < PGA_LINE_MAX ? size : PGA_LINE_MAX);
    k = pga_req_parse(in, size, &r, &why);
    if (k == 0 && (nl || size >= PGA_LINE_MAX))
        abort();
    if (k > 0) {
        if (nl == NULL || k != nl - in + 1 || !pga_slug_ok(r.slug) ||
            (r.op == PGA_TDE ? r.name[0] != '\0' || r.length > PGA_TDE_MAX
                             : !pga_name_ok(r.name) || r.length > PGA_MAX_FILE) ||
            (r.op != PGA_PUSH && r.op != PGA_FETCH && r.op != PGA_TDE))
            abort();
        if (pga_req_format(&r, line, sizeof(line)) != k || memcmp(line, in, (size_t)k) != 0)
            abort();
    } else if (k < 0 && why == NULL)
        abort();
    k = pga_ans_parse(in, size, &ok, &n, text, sizeof(text));
    if (k == 0 && (nl || size >= PGA_LINE_MAX))
        abort();
    if (k > 0) {
        if (nl == NULL || k != nl - in + 1 || (ok && n > PGA_MAX_FILE) || (!ok && !text[0]) ||
            strlen(text) >= sizeof(text))
            abort();
    }
    free(in);
    return 0;
}
