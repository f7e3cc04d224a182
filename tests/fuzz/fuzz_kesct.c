/* fuzz_kesct.c - libFuzzer over KES's ciphertext and key-value parsers (src/kes/crypto.c): the
 * binary ciphertext, the legacy JSON and msgpack ciphertexts, and the stored key value (legacy
 * JSON, or base64 of the protobuf KeyVersion). The first byte picks: 0 decrypt with an AES256
 * key, 1 with a ChaCha20 key (the rest is the ciphertext; the context is empty), 2 the rest as a
 * stored value, 3 the rest base64-encoded as a stored value (reaches the protobuf reader).
 * Besides memory errors (ASan) and undefined behaviour (UBSan), it traps when:
 *   - a decrypt fails with anything but "not authentic", or succeeds on a ciphertext shorter
 *     than KES's 44 bytes of overhead (binary form);
 *   - a value that decodes (with an HMAC key) does not survive encode -> decode unchanged.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kes/store_internal.h"
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/kesstore.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    pgcmk_clock_init();
    return 0;
}

static void
check_value(const char *v, size_t n)
{
    struct pgcmk_kes_key k, k2;
    struct pgcmk_err err;
    char *enc;

    if (pgcmk_kes_key_decode("f", v, n, &k, &err) != 0) {
        if (err.code != PGCMK_E_KES_KEY_INVALID)
            abort();
        return;
    }
    if (!k.has_hmac) /* a legacy key: KES cannot encode it again either (key_test.go #1) */
        return;
    enc = pgcmk_kes_key_encode(&k);
    if (pgcmk_kes_key_decode("f", enc, strlen(enc), &k2, &err) != 0)
        abort();
    if (memcmp(k.secret, k2.secret, 32) != 0 || k.cipher != k2.cipher ||
        k.has_hmac != k2.has_hmac || (k.has_hmac && memcmp(k.hmac_key, k2.hmac_key, 32) != 0) ||
        strcmp(k.created_by, k2.created_by) != 0)
        abort();
    free(enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[32] = {1, 2, 3};
    struct pgcmk_kes_key k;
    struct pgcmk_err err;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    char *s;

    if (size < 1)
        return 0;
    switch (data[0] & 3) {
    case 0:
    case 1:
        if (pgcmk_kes_key_import(&k, "f", (data[0] & 1) ? PGCMK_KES_CHACHA20 : PGCMK_KES_AES256,
                                 key, 32, "", &err) != 0)
            abort();
        if (pgcmk_kes_decrypt(&k, data + 1, size - 1, NULL, 0, &pt, &pt_len, &err) == 0) {
            if (size - 1 < 44 && data[1] != '{' && data[1] != 0x95)
                abort();
            free(pt);
        } else if (err.code != PGCMK_E_KES_NOT_AUTHENTIC) {
            abort();
        }
        break;
    case 2:
        s = malloc(size);
        memcpy(s, data + 1, size - 1);
        s[size - 1] = '\0';
        check_value(s, size - 1);
        free(s);
        break;
    default:
        s = pgcmk_b64_encode(data + 1, size - 1);
        check_value(s, strlen(s));
        free(s);
        break;
    }
    return 0;
}
