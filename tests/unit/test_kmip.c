/* test_kmip.c - the TTLV codec (include/pgcmk/kmip.h): every recorded vector of key-providers.md
 * 3.6 decoded and re-encoded byte for byte, a dump with tag names, getters, builders that rebuild
 * a recorded request, and a table of invalid inputs, each with the reason it must be refused for.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/kmip.h"

#include "t.h"

#include "kmip_vectors.h"

static size_t
unhex(const char *hex, uint8_t **out)
{
    size_t n = strlen(hex) / 2;
    uint8_t *b = malloc(n ? n : 1);

    for (size_t i = 0; i < n; i++) {
        unsigned v;

        sscanf(hex + 2 * i, "%2x", &v);
        b[i] = (uint8_t)v;
    }
    *out = b;
    return n;
}

static void
test_vectors(void)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        struct pgcmk_ttlv_tree t;
        struct pgcmk_ttlv_err err;
        uint8_t *in, *out;
        size_t n = unhex(vectors[i].hex, &in), m = 0;
        int rc;

        pgcmk_ttlv_tree_init(&t);
        rc = pgcmk_ttlv_decode(in, n, &t, &err);
        if (rc != 0)
            fprintf(stderr, "%s: %s\n", vectors[i].name, err.message);
        CHECK(rc == 0);
        CHECK(t.root && t.root->type == PGCMK_TTLV_STRUCTURE);
        CHECK(pgcmk_ttlv_encoded_len(t.root) == n);
        out = malloc(n);
        CHECK(pgcmk_ttlv_encode(t.root, out, n, &m, &err) == 0);
        CHECK(m == n && memcmp(in, out, n) == 0);
        /* one byte short of room is refused, not truncated */
        CHECK(pgcmk_ttlv_encode(t.root, out, n - 1, &m, &err) == -1 &&
              err.reason == PGCMK_TTLV_R_NO_SPACE);
        free(out);
        free(in);
        pgcmk_ttlv_tree_release(&t);
        CHECK(t.root == NULL && t.chunks == NULL);
    }
}

static const char get_response_dump[] = "RESPONSE_MESSAGE Structure\n"
                                        "  RESPONSE_HEADER Structure\n"
                                        "    PROTOCOL_VERSION Structure\n"
                                        "      PROTOCOL_VERSION_MAJOR Integer = 1\n"
                                        "      PROTOCOL_VERSION_MINOR Integer = 0\n"
                                        "    TIME_STAMP DateTime = 1795346032\n"
                                        "    BATCH_COUNT Integer = 1\n"
                                        "  BATCH_ITEM Structure\n"
                                        "    OPERATION Enumeration = 0xA (Get)\n"
                                        "    RESULT_STATUS Enumeration = 0x0\n"
                                        "    RESPONSE_PAYLOAD Structure\n"
                                        "      OBJECT_TYPE Enumeration = 0x2\n"
                                        "      UNIQUE_IDENTIFIER TextString = '1'\n"
                                        "      SYMMETRIC_KEY Structure\n"
                                        "        KEY_BLOCK Structure\n"
                                        "          KEY_FORMAT_TYPE Enumeration = 0x1\n"
                                        "          KEY_VALUE Structure\n"
                                        "            KEY_MATERIAL ByteString = <32 bytes>\n"
                                        "          CRYPTOGRAPHIC_ALGORITHM Enumeration = 0x3\n"
                                        "          CRYPTOGRAPHIC_LENGTH Integer = 256\n";

static const char destroy_active_dump_tail[] =
    "    RESULT_STATUS Enumeration = 0x1\n"
    "    RESULT_REASON Enumeration = 0xC (Permission Denied)\n"
    "    RESULT_MESSAGE TextString = 'Object is active and cannot be destroyed.'\n";

static const struct vec *
vector_named(const char *name)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
        if (strcmp(vectors[i].name, name) == 0)
            return &vectors[i];
    return NULL;
}

static void
test_dump_and_getters(void)
{
    struct pgcmk_ttlv_tree t;
    struct pgcmk_ttlv_err err;
    const struct vec *v = vector_named("pg_tde Get (libkmip, KMIP 1.0) response");
    const struct pgcmk_ttlv *bi, *p, *kb;
    uint8_t *in;
    size_t n, len, need;
    char dump[2048];
    const uint8_t *km;
    const char *s;
    uint32_t e;
    int32_t i;
    int64_t l;

    CHECK(v != NULL);
    if (!v)
        return;
    n = unhex(v->hex, &in);
    pgcmk_ttlv_tree_init(&t);
    CHECK(pgcmk_ttlv_decode(in, n, &t, &err) == 0);
    need = pgcmk_ttlv_dump(t.root, dump, sizeof(dump));
    CHECK(need == strlen(get_response_dump));
    CHECK_STR(dump, get_response_dump);
    /* a short buffer is cut, terminated, and the needed size is still told */
    CHECK(pgcmk_ttlv_dump(t.root, dump, 10) == need && strlen(dump) == 9);

    CHECK(pgcmk_ttlv_get_long(pgcmk_ttlv_find(t.root, PGCMK_KMIP_TAG_RESPONSE_HEADER),
                              PGCMK_KMIP_TAG_TIME_STAMP, &l) == 0 &&
          l == 1795346032);
    bi = pgcmk_ttlv_find(t.root, PGCMK_KMIP_TAG_BATCH_ITEM);
    CHECK(pgcmk_ttlv_get_enum(bi, PGCMK_KMIP_TAG_OPERATION, &e) == 0 && e == PGCMK_KMIP_OP_GET);
    CHECK(pgcmk_ttlv_get_int(bi, PGCMK_KMIP_TAG_OPERATION, &i) == -1); /* wrong type */
    p = pgcmk_ttlv_find(bi, PGCMK_KMIP_TAG_RESPONSE_PAYLOAD);
    CHECK(pgcmk_ttlv_get_text(p, PGCMK_KMIP_TAG_UNIQUE_IDENTIFIER, &s, &len) == 0 && len == 1 &&
          strcmp(s, "1") == 0);
    kb =
        pgcmk_ttlv_find(pgcmk_ttlv_find(p, PGCMK_KMIP_TAG_SYMMETRIC_KEY), PGCMK_KMIP_TAG_KEY_BLOCK);
    CHECK(pgcmk_ttlv_get_int(kb, PGCMK_KMIP_TAG_CRYPTOGRAPHIC_LENGTH, &i) == 0 && i == 256);
    CHECK(pgcmk_ttlv_get_bytes(pgcmk_ttlv_find(kb, PGCMK_KMIP_TAG_KEY_VALUE),
                               PGCMK_KMIP_TAG_KEY_MATERIAL, &km, &len) == 0 &&
          len == 32 && km[0] == 0 && km[31] == 0x1f);
    CHECK(pgcmk_ttlv_find(p, PGCMK_KMIP_TAG_STATE) == NULL);
    pgcmk_ttlv_tree_release(&t);
    free(in);

    v = vector_named("Destroy while Active -> Operation Failed/Permission Denied response");
    CHECK(v != NULL);
    if (!v)
        return;
    n = unhex(v->hex, &in);
    CHECK(pgcmk_ttlv_decode(in, n, &t, &err) == 0);
    pgcmk_ttlv_dump(t.root, dump, sizeof(dump));
    CHECK(strstr(dump, destroy_active_dump_tail) != NULL);
    pgcmk_ttlv_tree_release(&t);
    free(in);

    /* Locate response with two hits: the repeated Unique Identifier is walked with find_next */
    {
        struct pgcmk_ttlv *pl;

        pl = pgcmk_ttlv_new_struct(&t, PGCMK_KMIP_TAG_RESPONSE_PAYLOAD);
        pgcmk_ttlv_append(pl, pgcmk_ttlv_new_text(&t, PGCMK_KMIP_TAG_UNIQUE_IDENTIFIER, "1", 1));
        pgcmk_ttlv_append(pl, pgcmk_ttlv_new_int(&t, PGCMK_KMIP_TAG_MAXIMUM_ITEMS, 2));
        pgcmk_ttlv_append(pl, pgcmk_ttlv_new_text(&t, PGCMK_KMIP_TAG_UNIQUE_IDENTIFIER, "3", 1));
        p = pgcmk_ttlv_find(pl, PGCMK_KMIP_TAG_UNIQUE_IDENTIFIER);
        CHECK(p && p->v.bytes[0] == '1');
        p = pgcmk_ttlv_find_next(p);
        CHECK(p && p->v.bytes[0] == '3');
        CHECK(pgcmk_ttlv_find_next(p) == NULL);
        pgcmk_ttlv_tree_release(&t);
    }
    CHECK_STR(pgcmk_kmip_tag_name(0x42007B), "RESPONSE_MESSAGE");
    CHECK(pgcmk_kmip_tag_name(0x540001) == NULL);
    CHECK_STR(pgcmk_ttlv_type_name(PGCMK_TTLV_INTERVAL), "Interval");
    CHECK_STR(pgcmk_kmip_result_reason_name(0x100), "General Failure");
}

/* The Activate request of 3.6 (PyKMIP, KMIP 1.2), rebuilt from builders. */
static void
test_builders(void)
{
    const struct vec *v = vector_named("Activate (PyKMIP client, KMIP 1.2) request");
    struct pgcmk_ttlv_tree t, t2;
    struct pgcmk_ttlv *m, *h, *pv, *bi, *pl;
    struct pgcmk_ttlv_err err;
    uint8_t *want, out[512];
    size_t n, len;
    static const uint8_t big[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00};

    CHECK(v != NULL);
    if (!v)
        return;
    n = unhex(v->hex, &want);
    pgcmk_ttlv_tree_init(&t);
    m = pgcmk_ttlv_new_struct(&t, PGCMK_KMIP_TAG_REQUEST_MESSAGE);
    h = pgcmk_ttlv_append(m, pgcmk_ttlv_new_struct(&t, PGCMK_KMIP_TAG_REQUEST_HEADER));
    pv = pgcmk_ttlv_append(h, pgcmk_ttlv_new_struct(&t, PGCMK_KMIP_TAG_PROTOCOL_VERSION));
    pgcmk_ttlv_append(pv, pgcmk_ttlv_new_int(&t, PGCMK_KMIP_TAG_PROTOCOL_VERSION_MAJOR, 1));
    pgcmk_ttlv_append(pv, pgcmk_ttlv_new_int(&t, PGCMK_KMIP_TAG_PROTOCOL_VERSION_MINOR, 2));
    pgcmk_ttlv_append(h, pgcmk_ttlv_new_int(&t, PGCMK_KMIP_TAG_BATCH_COUNT, 1));
    bi = pgcmk_ttlv_append(m, pgcmk_ttlv_new_struct(&t, PGCMK_KMIP_TAG_BATCH_ITEM));
    pgcmk_ttlv_append(bi,
                      pgcmk_ttlv_new_enum(&t, PGCMK_KMIP_TAG_OPERATION, PGCMK_KMIP_OP_ACTIVATE));
    pl = pgcmk_ttlv_append(bi, pgcmk_ttlv_new_struct(&t, PGCMK_KMIP_TAG_REQUEST_PAYLOAD));
    pgcmk_ttlv_append(pl, pgcmk_ttlv_new_text(&t, PGCMK_KMIP_TAG_UNIQUE_IDENTIFIER, "3", 1));
    CHECK(pgcmk_ttlv_encoded_len(m) == n);
    CHECK(pgcmk_ttlv_encode(m, out, sizeof(out), &len, &err) == 0);
    CHECK(len == n && memcmp(out, want, n) == 0);
    free(want);

    /* every other type round-trips through encode and decode */
    pgcmk_ttlv_append(pl, pgcmk_ttlv_new_long(&t, 0x420100, -5));
    pgcmk_ttlv_append(pl, pgcmk_ttlv_new_bool(&t, 0x420101, 7));
    pgcmk_ttlv_append(pl, pgcmk_ttlv_new_datetime(&t, 0x420102, 1795346031));
    pgcmk_ttlv_append(pl, pgcmk_ttlv_new_interval(&t, 0x420103, 86400));
    pgcmk_ttlv_append(pl, pgcmk_ttlv_new_bigint(&t, 0x420104, big, sizeof(big)));
    pgcmk_ttlv_append(pl, pgcmk_ttlv_new_bytes(&t, 0x420105, "", 0));
    pgcmk_ttlv_append(pl, pgcmk_ttlv_new_text(&t, 0x420106, "h\xc3\xa9", 3));
    pgcmk_ttlv_append(pl, pgcmk_ttlv_new_datetime_ext(&t, 0x420107, 1795346031000001));
    CHECK(pgcmk_ttlv_new_bigint(&t, 0x420104, big, 5) == NULL);
    CHECK(pgcmk_ttlv_append(pl->first, pl) == NULL); /* only structures have children */
    CHECK(pgcmk_ttlv_encode(m, out, sizeof(out), &len, &err) == 0);
    pgcmk_ttlv_tree_init(&t2);
    CHECK(pgcmk_ttlv_decode(out, len, &t2, &err) == 0);
    {
        const struct pgcmk_ttlv *p2 = pgcmk_ttlv_find(
            pgcmk_ttlv_find(t2.root, PGCMK_KMIP_TAG_BATCH_ITEM), PGCMK_KMIP_TAG_REQUEST_PAYLOAD);
        const struct pgcmk_ttlv *x;
        int64_t l;
        uint8_t again[512];
        size_t len2;

        CHECK(pgcmk_ttlv_get_long(p2, 0x420100, &l) == 0 && l == -5);
        x = pgcmk_ttlv_find(p2, 0x420101);
        CHECK(x && x->type == PGCMK_TTLV_BOOLEAN && x->v.boolean == 1);
        CHECK(pgcmk_ttlv_get_long(p2, 0x420102, &l) == 0 && l == 1795346031);
        x = pgcmk_ttlv_find(p2, 0x420103);
        CHECK(x && x->type == PGCMK_TTLV_INTERVAL && x->v.u32 == 86400);
        x = pgcmk_ttlv_find(p2, 0x420104);
        CHECK(x && x->type == PGCMK_TTLV_BIG_INTEGER && x->len == 16 && x->v.bytes[14] == 1);
        x = pgcmk_ttlv_find(p2, 0x420105);
        CHECK(x && x->type == PGCMK_TTLV_BYTE_STRING && x->len == 0);
        x = pgcmk_ttlv_find(p2, 0x420107);
        CHECK(x && x->type == PGCMK_TTLV_DATE_TIME_EXTENDED && x->v.i64 == 1795346031000001);
        CHECK(pgcmk_ttlv_encode(t2.root, again, sizeof(again), &len2, &err) == 0);
        CHECK(len2 == len && memcmp(again, out, len) == 0);
    }
    pgcmk_ttlv_tree_release(&t2);
    /* the encoder refuses text its decoder would refuse */
    pgcmk_ttlv_append(pl, pgcmk_ttlv_new_text(&t, 0x420108, "\xc0\xaf", 2));
    CHECK(pgcmk_ttlv_encode(m, out, sizeof(out), &len, &err) == -1 &&
          err.reason == PGCMK_TTLV_R_BAD_TREE);
    pgcmk_ttlv_tree_release(&t);
}

struct bad {
    const char *name, *hex;
    enum pgcmk_ttlv_reason reason;
    size_t offset;
};

/* Each input must be refused for exactly this reason, at this offset. */
static const struct bad bad_cases[] = {
    {"empty", "", PGCMK_TTLV_R_EMPTY, 0},
    {"header cut short", "420078010000", PGCMK_TTLV_R_TRUNCATED, 0},
    {"value cut short", "42000d02000000040000", PGCMK_TTLV_R_TRUNCATED, 0},
    {"structure longer than the input",
     "420078010000001842000d020000000400000001"
     "00000000",
     PGCMK_TTLV_R_TRUNCATED, 0},
    {"integer of length 8", "42000d02000000080000000100000000", PGCMK_TTLV_R_BAD_LENGTH, 0},
    {"long integer of length 4",
     "4200010300000004"
     "0000000100000000",
     PGCMK_TTLV_R_BAD_LENGTH, 0},
    {"enumeration of length 8", "42005c05000000080000000a00000000", PGCMK_TTLV_R_BAD_LENGTH, 0},
    {"boolean of length 4",
     "4200a80600000004"
     "0000000100000000",
     PGCMK_TTLV_R_BAD_LENGTH, 0},
    {"date-time of length 4",
     "4200920900000004"
     "6b02ce7000000000",
     PGCMK_TTLV_R_BAD_LENGTH, 0},
    {"interval of length 8",
     "4200490a00000008"
     "0000000000015180",
     PGCMK_TTLV_R_BAD_LENGTH, 0},
    {"date-time extended of length 4",
     "4200920b00000004"
     "0000000000000000",
     PGCMK_TTLV_R_BAD_LENGTH, 0},
    {"big integer of length 5",
     "4200520400000005"
     "0100000001000000",
     PGCMK_TTLV_R_BAD_LENGTH, 0},
    {"big integer of length 0", "4200520400000000", PGCMK_TTLV_R_BAD_LENGTH, 0},
    {"structure of length 4", "420078010000000400000000", PGCMK_TTLV_R_BAD_LENGTH, 0},
    {"boolean of value 2",
     "4200a80600000008"
     "0000000000000002",
     PGCMK_TTLV_R_BAD_BOOLEAN, 0},
    {"boolean with a high byte set",
     "4200a80600000008"
     "0100000000000001",
     PGCMK_TTLV_R_BAD_BOOLEAN, 0},
    {"text without its padding", "420094070000000131", PGCMK_TTLV_R_BAD_PADDING, 0},
    {"integer without its padding", "42000d020000000400000001", PGCMK_TTLV_R_BAD_PADDING, 0},
    {"non-zero padding after an integer", "42000d02000000040000000100000001",
     PGCMK_TTLV_R_NONZERO_PADDING, 0},
    {"non-zero padding after an enumeration", "42005c05000000040000000a80000000",
     PGCMK_TTLV_R_NONZERO_PADDING, 0},
    {"non-zero padding after a text", "42009407000000013100000000000001",
     PGCMK_TTLV_R_NONZERO_PADDING, 0},
    {"non-zero padding in a nested byte string",
     "42004501000000104200430800000001"
     "aa00000000000100",
     PGCMK_TTLV_R_NONZERO_PADDING, 8},
    {"unknown type 0x0C", "42000d0c00000000", PGCMK_TTLV_R_UNKNOWN_TYPE, 0},
    {"unknown type 0x00", "42000d0000000000", PGCMK_TTLV_R_UNKNOWN_TYPE, 0},
    {"child runs past its structure",
     "4200780100000008"
     "42000d0200000004"
     "0000000100000000",
     PGCMK_TTLV_R_STRUCT_OVERRUN, 8},
    {"half a header after the message",
     "4200780100000010"
     "42000d0200000004"
     "0000000100000000"
     "4200",
     PGCMK_TTLV_R_TRAILING, 24},
    {"trailing byte", "42000d0200000004000000010000000000", PGCMK_TTLV_R_TRAILING, 16},
    {"a second top-level item", "42000d0200000004000000010000000042000d02000000040000000100000000",
     PGCMK_TTLV_R_TRAILING, 16},
    {"invalid UTF-8 (bad continuation)",
     "4200940700000002"
     "c328000000000000",
     PGCMK_TTLV_R_BAD_UTF8, 0},
    {"invalid UTF-8 (overlong slash)",
     "4200940700000002"
     "c0af000000000000",
     PGCMK_TTLV_R_BAD_UTF8, 0},
    {"invalid UTF-8 (surrogate)",
     "4200940700000003"
     "eda0800000000000",
     PGCMK_TTLV_R_BAD_UTF8, 0},
    {"invalid UTF-8 (above U+10FFFF)",
     "4200940700000004"
     "f490808000000000",
     PGCMK_TTLV_R_BAD_UTF8, 0},
    {"invalid UTF-8 (cut sequence)",
     "4200940700000002"
     "e282000000000000",
     PGCMK_TTLV_R_BAD_UTF8, 0},
    {"invalid UTF-8 (lone 0xFF)",
     "4200940700000001"
     "ff00000000000000",
     PGCMK_TTLV_R_BAD_UTF8, 0},
    {"NUL in a text string",
     "4200940700000002"
     "6100000000000000",
     PGCMK_TTLV_R_NUL_IN_TEXT, 0},
};

static void
test_invalid(void)
{
    struct pgcmk_ttlv_tree t;

    pgcmk_ttlv_tree_init(&t);
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        struct pgcmk_ttlv_err err;
        uint8_t *in;
        size_t n = unhex(bad_cases[i].hex, &in);
        int rc = pgcmk_ttlv_decode(in, n, &t, &err);

        if (rc != -1 || err.reason != bad_cases[i].reason || err.offset != bad_cases[i].offset)
            fprintf(stderr, "case '%s': rc %d, reason '%s' at %zu\n", bad_cases[i].name, rc,
                    pgcmk_ttlv_reason_text(err.reason), err.offset);
        CHECK(rc == -1);
        CHECK(err.reason == bad_cases[i].reason);
        CHECK(err.offset == bad_cases[i].offset);
        CHECK(err.message[0] != 0);
        CHECK(t.root == NULL);
        free(in);
    }
    pgcmk_ttlv_tree_release(&t);
}

/* depth levels of nested empty-ending structures, the innermost holding one integer */
static size_t
nested(int depth, uint8_t **out)
{
    size_t n = (size_t)depth * 8 + 16;
    uint8_t *b = calloc(1, n);

    for (int d = 0; d < depth; d++) {
        uint8_t *h = b + (size_t)d * 8;
        uint32_t len = (uint32_t)(n - (size_t)(d + 1) * 8);

        h[0] = 0x42, h[1] = 0x00, h[2] = 0x78, h[3] = 0x01;
        h[4] = (uint8_t)(len >> 24), h[5] = (uint8_t)(len >> 16), h[6] = (uint8_t)(len >> 8);
        h[7] = (uint8_t)len;
    }
    memcpy(b + (size_t)depth * 8, "\x42\x00\x0d\x02\x00\x00\x00\x04\x00\x00\x00\x01\0\0\0\0", 16);
    *out = b;
    return n;
}

static void
test_limits(void)
{
    struct pgcmk_ttlv_tree t;
    struct pgcmk_ttlv_err err;
    uint8_t *in, *out;
    size_t n, m;

    pgcmk_ttlv_tree_init(&t);
    /* 31 structures + the integer = depth 32: accepted and re-encoded */
    n = nested(PGCMK_TTLV_MAX_DEPTH - 1, &in);
    CHECK(pgcmk_ttlv_decode(in, n, &t, &err) == 0);
    out = malloc(n);
    CHECK(pgcmk_ttlv_encode(t.root, out, n, &m, &err) == 0 && m == n && !memcmp(in, out, n));
    free(out);
    free(in);
    /* one level more: refused, at the innermost item */
    n = nested(PGCMK_TTLV_MAX_DEPTH, &in);
    CHECK(pgcmk_ttlv_decode(in, n, &t, &err) == -1 && err.reason == PGCMK_TTLV_R_TOO_DEEP &&
          err.offset == (size_t)PGCMK_TTLV_MAX_DEPTH * 8);
    free(in);
    /* a tree built deeper than the limit is refused by the encoder */
    {
        struct pgcmk_ttlv *root = pgcmk_ttlv_new_struct(&t, 0x420078), *p = root;
        uint8_t buf[1024];

        for (int d = 0; d < PGCMK_TTLV_MAX_DEPTH; d++)
            p = pgcmk_ttlv_append(p, pgcmk_ttlv_new_struct(&t, 0x420078));
        CHECK(pgcmk_ttlv_encoded_len(root) == 0);
        CHECK(pgcmk_ttlv_encode(root, buf, sizeof(buf), &m, &err) == -1 &&
              err.reason == PGCMK_TTLV_R_BAD_TREE);
        pgcmk_ttlv_tree_release(&t);
    }
    /* oversize: a byte string filling PGCMK_TTLV_MAX_LEN + 8 bytes is refused before parsing */
    n = (size_t)PGCMK_TTLV_MAX_LEN + 8;
    in = calloc(1, n);
    in[0] = 0x42, in[2] = 0x43, in[3] = 0x08;
    in[4] = (uint8_t)(PGCMK_TTLV_MAX_LEN >> 24), in[5] = (uint8_t)(PGCMK_TTLV_MAX_LEN >> 16);
    CHECK(pgcmk_ttlv_decode(in, n, &t, &err) == -1 && err.reason == PGCMK_TTLV_R_TOO_LARGE);
    /* exactly at the limit is fine */
    in[4] = (uint8_t)((PGCMK_TTLV_MAX_LEN - 8) >> 24);
    in[5] = (uint8_t)((PGCMK_TTLV_MAX_LEN - 8) >> 16);
    in[6] = (uint8_t)((PGCMK_TTLV_MAX_LEN - 8) >> 8);
    in[7] = (uint8_t)(PGCMK_TTLV_MAX_LEN - 8);
    CHECK(pgcmk_ttlv_decode(in, PGCMK_TTLV_MAX_LEN, &t, &err) == 0 &&
          t.root->len == PGCMK_TTLV_MAX_LEN - 8);
    /* and a builder refuses a string past it */
    CHECK(pgcmk_ttlv_new_bytes(&t, 0x420043, in, (size_t)PGCMK_TTLV_MAX_LEN + 1) == NULL);
    pgcmk_ttlv_tree_release(&t);
    free(in);
}

int
main(void)
{
    test_vectors();
    test_dump_and_getters();
    test_builders();
    test_invalid();
    test_limits();
    return t_done("test_kmip");
}
