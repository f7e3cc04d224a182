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

#include "kmip_vectors.h"
#include "t.h"

/* key-providers.md 3.6: the recorded exchanges this test reads (tests/unit/kmip_vectors.h). */
static const char *
vector(const char *name)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
        if (strcmp(vectors[i].name, name) == 0)
            return vectors[i].hex;
    fprintf(stderr, "no recorded vector %s\n", name);
    abort();
}

#define register_req     vector("pg_tde Register (libkmip, KMIP 1.4) request")
#define register_resp    vector("pg_tde Register (libkmip, KMIP 1.4) response")
#define locate_req       vector("pg_tde Locate by Object Type+Name (libkmip, KMIP 1.0) request")
#define locate_resp      vector("pg_tde Locate by Object Type+Name (libkmip, KMIP 1.0) response")
#define get_req          vector("pg_tde Get (libkmip, KMIP 1.0) request")
#define get_resp         vector("pg_tde Get (libkmip, KMIP 1.0) response")
#define state_resp       vector("GetAttributes [State] (PyKMIP, 1.2) response")
#define denied_resp      vector("Destroy while Active -> Operation Failed/Permission Denied response")
#define notfound_resp    vector("Get unknown id -> Item Not Found response")
#define locate_none_resp vector("Locate by Name, nothing found (empty payload) response")

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
