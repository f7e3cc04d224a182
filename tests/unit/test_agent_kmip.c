/* test_agent_kmip.c - the agent's KMIP client (include/pgcmk/kmipc.h): the request bytes it
 * builds for Register, Locate and Get equal pg_tde's libkmip requests recorded in
 * key-providers.md 3.6 (the Time Stamp masked), and its response reader gets the Unique
 * Identifiers, the key, the State and the failures out of the recorded answers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/kmip.h"
#include "pgcmk/kmipc.h"

#include "t.h"

/* key-providers.md 3.6 (copied from tests/unit/test_kmip.c's source, the reference). */
static const char register_req[] =
    "42007801000002104200770100000058420069010000002042006a0200000004000000010000000042006b02"
    "000000040000000400000000420050020000000400002000000000004200920900000008000000006b02ce6f"
    "42000d0200000004000000010000000042000f01000001a842005c0500000004000000030000000042007901"
    "000001904200570500000004000000020000000042009101000000f8420008010000003042000a0700000017"
    "43727970746f6772617068696320416c676f726974686d0042000b0500000004000000030000000042000801"
    "0000003042000a070000001443727970746f67726170686963204c656e6774680000000042000b0200000004"
    "0000010000000000420008010000003042000a070000001843727970746f6772617068696320557361676520"
    "4d61736b42000b02000000040000000c00000000420008010000004842000a07000000044e616d6500000000"
    "42000b0100000030420055070000001170677464652d6861726e6573732d6b65790000000000000042005405"
    "00000004000000010000000042008f0100000078420040010000007042004205000000040000000100000000"
    "4200410500000004000000010000000042004501000000284200430800000020000102030405060708090a0b"
    "0c0d0e0f101112131415161718191a1b1c1d1e1f4200280500000004000000030000000042002a0200000004"
    "0000010000000000";

static const char register_resp[] =
    "42007b010000009042007a0100000048420069010000002042006a0200000004000000010000000042006b02"
    "0000000400000004000000004200920900000008000000006b02ce7042000d02000000040000000100000000"
    "42000f010000003842005c0500000004000000030000000042007f0500000004000000000000000042007c01"
    "0000001042009407000000013100000000000000";

static const char locate_req[] =
    "42007801000001104200770100000058420069010000002042006a0200000004000000010000000042006b02"
    "000000040000000000000000420050020000000400002000000000004200920900000008000000006b02ce70"
    "42000d0200000004000000010000000042000f01000000a842005c0500000004000000080000000042007901"
    "0000009042004f02000000040000001000000000420008010000002842000a070000000b4f626a6563742054"
    "797065000000000042000b05000000040000000200000000420008010000004842000a07000000044e616d65"
    "0000000042000b0100000030420055070000001170677464652d6861726e6573732d6b657900000000000000"
    "42005405000000040000000100000000";

static const char locate_resp[] =
    "42007b010000009042007a0100000048420069010000002042006a0200000004000000010000000042006b02"
    "0000000400000000000000004200920900000008000000006b02ce7042000d02000000040000000100000000"
    "42000f010000003842005c0500000004000000080000000042007f0500000004000000000000000042007c01"
    "0000001042009407000000013100000000000000";

static const char get_req[] =
    "42007801000000904200770100000058420069010000002042006a0200000004000000010000000042006b02"
    "000000040000000000000000420050020000000400002000000000004200920900000008000000006b02ce70"
    "42000d0200000004000000010000000042000f010000002842005c05000000040000000a0000000042007901"
    "0000001042009407000000013100000000000000";

static const char get_resp[] =
    "42007b010000011042007a0100000048420069010000002042006a0200000004000000010000000042006b02"
    "0000000400000000000000004200920900000008000000006b02ce7042000d02000000040000000100000000"
    "42000f01000000b842005c05000000040000000a0000000042007f0500000004000000000000000042007c01"
    "00000090420057050000000400000002000000004200940700000001310000000000000042008f0100000068"
    "4200400100000060420042050000000400000001000000004200450100000028420043080000002000010203"
    "0405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f42002805000000040000000300000000"
    "42002a02000000040000010000000000";

static const char state_resp[] =
    "42007b01000000b842007a0100000048420069010000002042006a0200000004000000010000000042006b02"
    "0000000400000002000000004200920900000008000000006b02ce7a42000d02000000040000000100000000"
    "42000f010000006042005c05000000040000000b0000000042007f0500000004000000000000000042007c01"
    "0000003842009407000000013300000000000000420008010000002042000a07000000055374617465000000"
    "42000b05000000040000000200000000";

static const char denied_resp[] =
    "42007b01000000c042007a0100000048420069010000002042006a0200000004000000010000000042006b02"
    "0000000400000002000000004200920900000008000000006b02ce7a42000d02000000040000000100000000"
    "42000f010000006842005c0500000004000000140000000042007f0500000004000000010000000042007e05"
    "000000040000000c0000000042007d07000000294f626a6563742069732061637469766520616e642063616e"
    "6e6f742062652064657374726f7965642e00000000000000";

static const char notfound_resp[] =
    "42007b01000000b042007a0100000048420069010000002042006a0200000004000000010000000042006b02"
    "0000000400000002000000004200920900000008000000006b02ce7a42000d02000000040000000100000000"
    "42000f010000005842005c05000000040000000a0000000042007f0500000004000000010000000042007e05"
    "00000004000000010000000042007d070000001d436f756c64206e6f74206c6f63617465206f626a6563743a"
    "2039393939000000";

static const char locate_none_resp[] =
    "42007b010000008042007a0100000048420069010000002042006a0200000004000000010000000042006b02"
    "0000000400000002000000004200920900000008000000006b02ce7a42000d02000000040000000100000000"
    "42000f010000002842005c0500000004000000080000000042007f0500000004000000000000000042007c01"
    "00000000";

static size_t
unhex(const char *h, unsigned char **out)
{
    size_t n = strlen(h) / 2;
    unsigned char *b = malloc(n ? n : 1);

    for (size_t i = 0; i < n; i++) {
        unsigned v;

        sscanf(h + 2 * i, "%2x", &v);
        b[i] = (unsigned char)v;
    }
    *out = b;
    return n;
}

/* The Time Stamp value (8 bytes after 4200920900000008) zeroed. */
static void
mask_ts(unsigned char *b, size_t n)
{
    static const unsigned char ts[8] = {0x42, 0x00, 0x92, 0x09, 0x00, 0x00, 0x00, 0x08};

    for (size_t i = 0; i + 16 <= n; i += 8)
        if (memcmp(b + i, ts, 8) == 0)
            memset(b + i + 8, 0, 8);
}

static int
same_masked(const unsigned char *got, size_t got_len, const char *want_hex)
{
    unsigned char *want, *g = malloc(got_len ? got_len : 1);
    size_t n = unhex(want_hex, &want);
    int same;

    memcpy(g, got, got_len);
    mask_ts(g, got_len);
    mask_ts(want, n);
    same = n == got_len && memcmp(g, want, n) == 0;
    if (!same)
        fprintf(stderr, "request differs: %zu bytes vs %zu recorded\n", got_len, n);
    free(want);
    free(g);
    return same;
}

static void
test_requests(void)
{
    unsigned char key[32], *b;
    size_t n;

    for (int i = 0; i < 32; i++)
        key[i] = (unsigned char)i;
    b = pgcmk_kmipc_build_register("pgtde-harness-key", key, 32, 12345, &n);
    CHECK(b && same_masked(b, n, register_req));
    free(b);
    /* with the recorded Time Stamp, byte for byte */
    b = pgcmk_kmipc_build_register("pgtde-harness-key", key, 32, 0x6b02ce6f, &n);
    {
        unsigned char *want;
        size_t m = unhex(register_req, &want);

        CHECK(b && n == m && memcmp(b, want, m) == 0);
        free(want);
    }
    free(b);
    b = pgcmk_kmipc_build_locate("pgtde-harness-key", 999, &n);
    CHECK(b && same_masked(b, n, locate_req));
    free(b);
    b = pgcmk_kmipc_build_get("1", 1, &n);
    CHECK(b && same_masked(b, n, get_req));
    free(b);
    /* a 16-byte key says 128 bits twice and is 16 bytes shorter */
    b = pgcmk_kmipc_build_register("k", key, 16, 1, &n);
    CHECK(b != NULL);
    if (b) {
        struct pgcmk_ttlv_tree t;
        struct pgcmk_ttlv_err err;

        pgcmk_ttlv_tree_init(&t);
        CHECK(pgcmk_ttlv_decode(b, n, &t, &err) == 0);
        pgcmk_ttlv_tree_release(&t);
    }
    free(b);
    /* Get Attributes [State]: KMIP 1.0, the uid then the attribute name */
    b = pgcmk_kmipc_build_get_state("3", 1, &n);
    CHECK(b != NULL);
    if (b) {
        struct pgcmk_ttlv_tree t;
        struct pgcmk_ttlv_err err;
        const struct pgcmk_ttlv *bi, *pl;
        const char *s;
        size_t sl;
        uint32_t op;

        pgcmk_ttlv_tree_init(&t);
        CHECK(pgcmk_ttlv_decode(b, n, &t, &err) == 0);
        bi = pgcmk_ttlv_find(t.root, PGCMK_KMIP_TAG_BATCH_ITEM);
        CHECK(bi && pgcmk_ttlv_get_enum(bi, PGCMK_KMIP_TAG_OPERATION, &op) == 0 &&
              op == PGCMK_KMIP_OP_GET_ATTRIBUTES);
        pl = bi ? pgcmk_ttlv_find(bi, PGCMK_KMIP_TAG_REQUEST_PAYLOAD) : NULL;
        CHECK(pl && pgcmk_ttlv_get_text(pl, PGCMK_KMIP_TAG_ATTRIBUTE_NAME, &s, &sl) == 0 &&
              strcmp(s, "State") == 0);
        pgcmk_ttlv_tree_release(&t);
    }
    free(b);
}

static void
test_responses(void)
{
    struct pgcmk_kmipc_reply r;
    unsigned char *b;
    size_t n;
    char why[160];

    n = unhex(register_resp, &b);
    CHECK(pgcmk_kmipc_parse_response(b, n, PGCMK_KMIP_OP_REGISTER, &r, why, sizeof(why)) == 0);
    CHECK(r.ok && r.n_uids == 1);
    CHECK_STR(r.uids[0], "1");
    /* an answer to another operation is not ours */
    CHECK(pgcmk_kmipc_parse_response(b, n, PGCMK_KMIP_OP_GET, &r, why, sizeof(why)) == -1);
    free(b);

    n = unhex(get_resp, &b);
    CHECK(pgcmk_kmipc_parse_response(b, n, PGCMK_KMIP_OP_GET, &r, why, sizeof(why)) == 0);
    CHECK(r.ok && r.key_len == 32 && r.key[0] == 0 && r.key[31] == 31);
    /* truncated: not KMIP */
    CHECK(pgcmk_kmipc_parse_response(b, n - 8, PGCMK_KMIP_OP_GET, &r, why, sizeof(why)) == -1);
    free(b);

    n = unhex(locate_resp, &b);
    CHECK(pgcmk_kmipc_parse_response(b, n, PGCMK_KMIP_OP_LOCATE, &r, why, sizeof(why)) == 0);
    CHECK(r.ok && r.n_uids == 1);
    free(b);

    n = unhex(locate_none_resp, &b);
    CHECK(pgcmk_kmipc_parse_response(b, n, PGCMK_KMIP_OP_LOCATE, &r, why, sizeof(why)) == 0);
    CHECK(r.ok && r.n_uids == 0);
    free(b);

    n = unhex(state_resp, &b);
    CHECK(pgcmk_kmipc_parse_response(b, n, PGCMK_KMIP_OP_GET_ATTRIBUTES, &r, why, sizeof(why)) ==
          0);
    CHECK(r.ok && r.state == PGCMK_KMIP_STATE_ACTIVE);
    free(b);

    n = unhex(notfound_resp, &b);
    CHECK(pgcmk_kmipc_parse_response(b, n, PGCMK_KMIP_OP_GET, &r, why, sizeof(why)) == 0);
    CHECK(!r.ok && r.result_reason == PGCMK_KMIP_RR_ITEM_NOT_FOUND);
    CHECK_STR(r.result_message, "Could not locate object: 9999");
    free(b);

    n = unhex(denied_resp, &b);
    CHECK(pgcmk_kmipc_parse_response(b, n, PGCMK_KMIP_OP_DESTROY, &r, why, sizeof(why)) == 0);
    CHECK(!r.ok && r.result_reason == PGCMK_KMIP_RR_PERMISSION_DENIED);
    free(b);

    /* a request is not a response */
    n = unhex(get_req, &b);
    CHECK(pgcmk_kmipc_parse_response(b, n, PGCMK_KMIP_OP_GET, &r, why, sizeof(why)) == -1);
    free(b);
    CHECK_STR(pgcmk_kmip_state_name(3), "Deactivated");
}

/* No server listens: an outage after the retries, quickly (connection refused). */
static void
test_unreachable(void)
{
    struct pgcmk_kmipc_target t = {
        "127.0.0.1", 1, "/nonexistent.pem", "/nonexistent.pem", "/nonexistent.pem", 500, 0};
    struct pgcmk_agent_result res;
    char uids[PGCMK_KMIPC_MAX_ITEMS][PGCMK_KMIPC_UID_LEN];

    /* files that do not load: the provider is wrong, not unreachable */
    CHECK(pgcmk_kmipc_locate(&t, "k", uids, &res) == -1);
    CHECK(res.lost && res.code == PGCMK_E_KMIP_PROVIDER_INVALID);
}

int
main(void)
{
    test_requests();
    test_responses();
    test_unreachable();
    return t_done("test_agent_kmip");
}
