/* fuzz_tdeproto.c - libFuzzer over the pg_tde agent's bodies (src/pg/tdeproto.c) and pg_tde's
 * keyring file (src/tde/keyring.c). Each input is an exact-size heap copy, so ASan catches a
 * read past its end. Traps when a promise breaks:
 *   - a parsed body has valid keys, no repeated key but "row", values without NUL, and formats
 *     back (tdep_addn) to exactly the input bytes;
 *   - a rejected body says why;
 *   - a keyring lookup finds only 16- or 32-byte keys, and a found key is the record's bytes.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pg/tdeproto.h"
#include "pgcmk/keyring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    struct tdep_msg m;
    struct tdep_buf b = {0};
    const char *why = NULL;
    unsigned char key[PGCMK_KEYRING_DATA];
    size_t n = 0;
    int rc;

    if (size)
        memcpy(in, data, size);
    if (tdep_parse(in, size, "row", &m, &why) == 0) {
        for (size_t i = 0; i < m.n; i++) {
            if (!tdep_key_ok(m.f[i].key) || strlen(m.f[i].value) != m.f[i].len)
                abort();
            for (size_t j = 0; j < i; j++)
                if (strcmp(m.f[i].key, m.f[j].key) == 0 && strcmp(m.f[i].key, "row") != 0)
                    abort();
            tdep_addn(&b, m.f[i].key, m.f[i].value, m.f[i].len);
        }
        if (b.overflow || b.len != size || (size && memcmp(b.p, in, size) != 0))
            abort();
        tdep_buf_free(&b);
        tdep_free(&m);
    } else if (!why || m.n != 0) {
        abort();
    }
    /* the keyring: the first bytes up to a NUL name the key, the rest is the file */
    {
        const char *nul = memchr(in, 0, size < 300 ? size : 300);

        if (nul) {
            size_t off = (size_t)(nul - in) + 1;

            rc = pgcmk_keyring_find((const unsigned char *)in + off, size - off, in, key, &n);
            if (rc == PGCMK_KEYRING_FOUND && n != 16 && n != 32)
                abort();
            if (rc != PGCMK_KEYRING_FOUND && n != 0)
                abort();
        }
    }
    free(in);
    return 0;
}
