/* fuzz_ttlv.c - libFuzzer over the TTLV codec (src/kmip/ttlv.c), a pure function over a buffer.
 * Each input is given as an exact-size heap copy, so ASan catches any read past the length.
 * Besides memory errors (ASan) and undefined behaviour (UBSan), it traps when a result breaks
 * the codec's promises:
 *   - an accepted input re-encodes to exactly the same bytes (strict decoding admits one
 *     encoding per tree), and the encoded size is what pgcmk_ttlv_encoded_len said;
 *   - the re-encoded bytes decode again, and that tree encodes to the same bytes;
 *   - a refused input names a reason other than OK, an offset inside the input and a message;
 *   - the dump of an accepted tree never fails and is NUL-terminated.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/kmip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pgcmk_ttlv_tree t, t2;
    struct pgcmk_ttlv_err err;
    uint8_t *in = malloc(size ? size : 1), *out = NULL, *again = NULL;
    size_t n, m;
    char dump[512];

    if (size)
        memcpy(in, data, size);
    pgcmk_ttlv_tree_init(&t);
    pgcmk_ttlv_tree_init(&t2);
    if (pgcmk_ttlv_decode(in, size, &t, &err) != 0) {
        if (err.reason == PGCMK_TTLV_R_OK || err.message[0] == 0 || t.root != NULL ||
            (size && err.offset > size))
            __builtin_trap();
        goto out;
    }
    n = pgcmk_ttlv_encoded_len(t.root);
    if (n != size)
        __builtin_trap();
    out = malloc(n);
    if (pgcmk_ttlv_encode(t.root, out, n, &m, &err) != 0 || m != size || memcmp(out, in, size))
        __builtin_trap();
    if (pgcmk_ttlv_decode(out, m, &t2, &err) != 0)
        __builtin_trap();
    again = malloc(m);
    if (pgcmk_ttlv_encode(t2.root, again, m, &n, &err) != 0 || n != m || memcmp(again, out, m))
        __builtin_trap();
    pgcmk_ttlv_dump(t2.root, dump, sizeof(dump));
    if (memchr(dump, '\0', sizeof(dump)) == NULL)
        __builtin_trap();
out:
    pgcmk_ttlv_tree_release(&t2);
    pgcmk_ttlv_tree_release(&t);
    free(again);
    free(out);
    free(in);
    return 0;
}
