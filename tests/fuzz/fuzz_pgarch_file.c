/* fuzz_pgarch_file.c - libFuzzer over the "PGCMKA1" encrypted archive file reader
 * (src/pg/arfmt.c, pga_open_*): the input is a file from the archive directory, opened under a
 * fixed key, database and name, fed in pieces whose sizes come from the input's first byte.
 * Traps when a promise breaks:
 *   - a file that opens has a valid header and, re-sealed and opened again, gives the same
 *     plaintext (what a chunk releases is only what its tag covered);
 *   - a failure always says why; no path reads past the input (exact-size heap copy, ASan).
 * The seal side is exercised by the round trip. Seeds: tests/fuzz/corpus/pgarch_file.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pg/arfmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char fuzz_dek[PGA_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};

struct fuzz_acc {
    unsigned char *p;
    size_t n;
};

static int
fuzz_write(void *arg, const void *buf, size_t len)
{
    struct fuzz_acc *a = arg;

    a->p = realloc(a->p, a->n + len + 1);
    memcpy(a->p + a->n, buf, len);
    a->n += len;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_acc acc = {NULL, 0};
    struct pga_open o;
    unsigned char *in, *ct = NULL, *pt = NULL;
    size_t step, off, ct_len = 0, pt_len = 0;
    const char *why = NULL;
    int rc = 0;

    if (size == 0)
        return 0;
    step = (size_t)data[0] % 64 + 1;
    in = malloc(size - 1 ? size - 1 : 1);
    memcpy(in, data + 1, size - 1);
    pga_open_init(&o, fuzz_dek, "/subscriptions/s/db", "000000010000000000000001", fuzz_write,
                  &acc);
    for (off = 0; off < size - 1 && rc == 0; off += step)
        rc = pga_open_update(&o, in + off, size - 1 - off < step ? size - 1 - off : step);
    if (rc == 0)
        rc = pga_open_final(&o);
    if (rc && o.why == NULL)
        abort();
    pga_open_release(&o);
    if (rc == 0) {
        if (size - 1 < PGA_HEADER_LEN + 4 + PGA_TAG_LEN || memcmp(in, "PGCMKA1", 8) != 0)
            abort();
        if (pga_seal_mem(fuzz_dek, "d", "n", acc.p ? acc.p : (unsigned char *)"", acc.n, &ct,
                         &ct_len) ||
            pga_open_mem(fuzz_dek, "d", "n", ct, ct_len, &pt, &pt_len, &why) || pt_len != acc.n ||
            (acc.n && memcmp(pt, acc.p, acc.n) != 0))
            abort();
        free(ct);
        free(pt);
    }
    free(acc.p);
    free(in);
    return 0;
}
