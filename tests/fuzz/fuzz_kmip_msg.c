/* fuzz_kmip_msg.c - libFuzzer over the KMIP server's message layer and operations
 * (pgcmk_kmip_process, src/kmip/): each input is one request message, served against a store in
 * memory that keeps the objects earlier inputs created (so Get, Locate, Revoke... meet real
 * objects). Each input is an exact-size heap copy, so ASan catches any read past the length.
 * Besides memory errors (ASan) and undefined behaviour (UBSan), it traps when a result breaks the
 * server's promises:
 *   - -1 only when the input does not start as a Request Message (tag 420078, a Structure);
 *   - otherwise a response that decodes, is a Response Message, has a Response Header and at
 *     least one Batch Item, each with a Result Status.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/clock.h"
#include "pgcmk/kmip.h"
#include "pgcmk/kmip_server.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct pgcmk_err err;

    (void)argc;
    (void)argv;
    pgcmk_log_level = PGCMK_LOG_ERR;
    pgcmk_clock_init();
    if (pgcmk_store_open(":memory:", NULL, 0, &err))
        abort();
    pgcmk_kmip_init();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct pgcmk_kmip_peer peers[2] = {{"fuzz_a"}, {"fuzz_b"}};
    uint8_t *in = malloc(size ? size : 1), *out = NULL;
    struct pgcmk_ttlv_tree t;
    struct pgcmk_ttlv_err err;
    const struct pgcmk_ttlv *bi;
    size_t n = 0;
    int rc, kmip;

    if (size)
        memcpy(in, data, size);
    kmip = size >= 8 && in[0] == 0x42 && in[1] == 0x00 && in[2] == 0x78 && in[3] == 0x01;
    rc = pgcmk_kmip_process(&peers[size & 1], in, size, &out, &n);
    if ((rc == -1) == kmip)
        __builtin_trap();
    if (rc == 0) {
        pgcmk_ttlv_tree_init(&t);
        if (pgcmk_ttlv_decode(out, n, &t, &err) || t.root->tag != PGCMK_KMIP_TAG_RESPONSE_MESSAGE ||
            !pgcmk_ttlv_find(t.root, PGCMK_KMIP_TAG_RESPONSE_HEADER) ||
            !(bi = pgcmk_ttlv_find(t.root, PGCMK_KMIP_TAG_BATCH_ITEM)))
            __builtin_trap();
        for (; bi; bi = pgcmk_ttlv_find_next(bi))
            if (!pgcmk_ttlv_find(bi, PGCMK_KMIP_TAG_RESULT_STATUS))
                __builtin_trap();
        pgcmk_ttlv_tree_release(&t);
    }
    free(out);
    free(in);
    return 0;
}
