/* test_kmip_ops.c - the KMIP server behind the listener (pgcmk_kmip_process) on a store in a
 * temporary directory: byte-level replays of key-providers.md 3.6 (responses equal the recorded
 * ones once the Time Stamp is masked), every operation, the state machine on the virtual clock,
 * each failure's Result Reason, persistence across a reload of the table. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmip/objects.h"
#include "kmip_vectors.h"
#include "pgcmk/clock.h"
#include "pgcmk/events.h"
#include "pgcmk/kmip.h"
#include "pgcmk/kmip_server.h"

#include "t.h"
#include "t_store.h"

#define T(n)  PGCMK_KMIP_TAG_##n
#define T0_MS 1795346031000LL

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

/* Zeroes the 8 bytes of every Time Stamp value. */
static void
mask_time(uint8_t *b, size_t n)
{
    static const uint8_t ts[8] = {0x42, 0x00, 0x92, 0x09, 0, 0, 0, 8};

    for (size_t i = 0; i + 16 <= n; i += 8)
        if (memcmp(b + i, ts, 8) == 0)
            memset(b + i + 8, 0, 8);
}

static const struct vec *
vec(const char *name)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
        if (strcmp(vectors[i].name, name) == 0)
            return &vectors[i];
    return NULL;
}

/* Sends the recorded request `name` as `who`; the response must equal the recorded one. */
static void
replay(const char *who, const char *name)
{
    char rq[160], rs[160];
    const struct vec *q, *a;
    uint8_t *req, *want, *got = NULL;
    size_t nq, nw, ng = 0;
    int rc;

    snprintf(rq, sizeof(rq), "%s request", name);
    snprintf(rs, sizeof(rs), "%s response", name);
    q = vec(rq);
    a = vec(rs);
    CHECK(q && a);
    if (!q || !a)
        return;
    nq = unhex(q->hex, &req);
    nw = unhex(a->hex, &want);
    struct pgcmk_kmip_peer peer = {who};
    rc = pgcmk_kmip_process(&peer, req, nq, &got, &ng);
    CHECK(rc == 0);
    if (rc == 0) {
        mask_time(got, ng);
        mask_time(want, nw);
        CHECK(ng == nw && memcmp(got, want, nw) == 0);
        if (ng != nw || memcmp(got, want, nw) != 0) {
            fprintf(stderr, "replay %s: got %zu bytes, want %zu\n  got  ", name, ng, nw);
            for (size_t i = 0; i < ng; i++)
                fprintf(stderr, "%02x", got[i]);
            fprintf(stderr, "\n  want ");
            for (size_t i = 0; i < nw; i++)
                fprintf(stderr, "%02x", want[i]);
            fprintf(stderr, "\n");
        }
    }
    free(req);
    free(want);
    free(got);
}

static void
test_replays(void)
{
    /* pg_tde: Register (uid 1), Locate it, Get it */
    replay("jane_doe", "pg_tde Register (libkmip, KMIP 1.4)");
    replay("jane_doe", "pg_tde Locate by Object Type+Name (libkmip, KMIP 1.0)");
    replay("jane_doe", "pg_tde Get (libkmip, KMIP 1.0)");
    /* PyKMIP's exchanges are on uid 3: two more objects */
    for (int i = 0; i < 2; i++) {
        const struct vec *q = vec("pg_tde Register (libkmip, KMIP 1.4) request");
        uint8_t *req, *got = NULL;
        size_t nq = unhex(q->hex, &req), ng = 0;
        struct pgcmk_kmip_peer peer = {"jane_doe"};

        CHECK(pgcmk_kmip_process(&peer, req, nq, &got, &ng) == 0);
        free(req);
        free(got);
    }
    replay("jane_doe", "Activate (PyKMIP client, KMIP 1.2)");
    replay("jane_doe", "GetAttributes [State] (PyKMIP, 1.2)");
    replay("jane_doe", "Destroy while Active -> Operation Failed/Permission Denied");
    replay("jane_doe", "Revoke reason=Cessation of Operation (PyKMIP, 1.2)");
    replay("jane_doe", "Destroy (PyKMIP, 1.2)");
    replay("jane_doe", "Get unknown id -> Item Not Found");
    replay("jane_doe", "Locate by Name, nothing found (empty payload)");
}

/* ---- building requests ---- */

struct rq {
    struct pgcmk_ttlv_tree t;
    struct pgcmk_ttlv *msg, *hdr, *count;
    int items;
};

static void
rq_begin(struct rq *r, int major, int minor)
{
    struct pgcmk_ttlv *pv;

    pgcmk_ttlv_tree_init(&r->t);
    r->msg = pgcmk_ttlv_new_struct(&r->t, T(REQUEST_MESSAGE));
    r->hdr = pgcmk_ttlv_append(r->msg, pgcmk_ttlv_new_struct(&r->t, T(REQUEST_HEADER)));
    pv = pgcmk_ttlv_append(r->hdr, pgcmk_ttlv_new_struct(&r->t, T(PROTOCOL_VERSION)));
    pgcmk_ttlv_append(pv, pgcmk_ttlv_new_int(&r->t, T(PROTOCOL_VERSION_MAJOR), major));
    pgcmk_ttlv_append(pv, pgcmk_ttlv_new_int(&r->t, T(PROTOCOL_VERSION_MINOR), minor));
    r->count = NULL;
    r->items = 0;
}

/* A new batch item; returns its Request Payload. */
static struct pgcmk_ttlv *
rq_item(struct rq *r, uint32_t op)
{
    struct pgcmk_ttlv *bi = pgcmk_ttlv_append(r->msg, pgcmk_ttlv_new_struct(&r->t, T(BATCH_ITEM)));

    pgcmk_ttlv_append(bi, pgcmk_ttlv_new_enum(&r->t, T(OPERATION), op));
    r->items++;
    return pgcmk_ttlv_append(bi, pgcmk_ttlv_new_struct(&r->t, T(REQUEST_PAYLOAD)));
}

static void
add_text(struct rq *r, struct pgcmk_ttlv *p, uint32_t tag, const char *s)
{
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_text(&r->t, tag, s, strlen(s)));
}

/* Attribute {Name, [Index], Value} with the value node already built (tag ATTRIBUTE_VALUE). */
static struct pgcmk_ttlv *
add_attr(struct rq *r, struct pgcmk_ttlv *parent, const char *name, int index,
         struct pgcmk_ttlv *value)
{
    struct pgcmk_ttlv *a = pgcmk_ttlv_append(parent, pgcmk_ttlv_new_struct(&r->t, T(ATTRIBUTE)));

    add_text(r, a, T(ATTRIBUTE_NAME), name);
    if (index >= 0)
        pgcmk_ttlv_append(a, pgcmk_ttlv_new_int(&r->t, T(ATTRIBUTE_INDEX), index));
    if (value)
        pgcmk_ttlv_append(a, value);
    return a;
}

static struct pgcmk_ttlv *
v_enum(struct rq *r, uint32_t v)
{
    return pgcmk_ttlv_new_enum(&r->t, T(ATTRIBUTE_VALUE), v);
}

static struct pgcmk_ttlv *
v_int(struct rq *r, int32_t v)
{
    return pgcmk_ttlv_new_int(&r->t, T(ATTRIBUTE_VALUE), v);
}

static struct pgcmk_ttlv *
v_date(struct rq *r, int64_t v)
{
    return pgcmk_ttlv_new_datetime(&r->t, T(ATTRIBUTE_VALUE), v);
}

static struct pgcmk_ttlv *
v_name(struct rq *r, const char *name)
{
    struct pgcmk_ttlv *v = pgcmk_ttlv_new_struct(&r->t, T(ATTRIBUTE_VALUE));

    add_text(r, v, T(NAME_VALUE), name);
    pgcmk_ttlv_append(v, pgcmk_ttlv_new_enum(&r->t, T(NAME_TYPE), 1));
    return v;
}

/* The response of the last send, decoded. */
static struct pgcmk_ttlv_tree resp;
static int resp_ok;

static void
rq_send_raw(struct rq *r, const char *who, int set_count, int count)
{
    uint8_t buf[65536], *out = NULL;
    size_t n = 0, m = 0;
    struct pgcmk_ttlv_err e;
    struct pgcmk_kmip_peer peer = {who};

    if (set_count)
        pgcmk_ttlv_append(r->hdr, pgcmk_ttlv_new_int(&r->t, T(BATCH_COUNT), count));
    CHECK(pgcmk_ttlv_encode(r->msg, buf, sizeof(buf), &n, &e) == 0);
    pgcmk_ttlv_tree_release(&resp);
    resp_ok = pgcmk_kmip_process(&peer, buf, n, &out, &m) == 0 &&
              pgcmk_ttlv_decode(out, m, &resp, &e) == 0 && resp.root->tag == T(RESPONSE_MESSAGE);
    CHECK(resp_ok);
    free(out);
    pgcmk_ttlv_tree_release(&r->t);
}

static void
rq_send(struct rq *r, const char *who)
{
    rq_send_raw(r, who, 1, r->items);
}

/* Batch item i of the response. */
static const struct pgcmk_ttlv *
item(int i)
{
    const struct pgcmk_ttlv *b;

    if (!resp_ok)
        return NULL;
    for (b = pgcmk_ttlv_find(resp.root, T(BATCH_ITEM)); b && i > 0; i--)
        b = pgcmk_ttlv_find_next(b);
    return b;
}

/* The Result Reason of item i (0 on success). */
static uint32_t
reason(int i)
{
    const struct pgcmk_ttlv *b = item(i);
    uint32_t st = 99, rr = 0;

    if (!b || pgcmk_ttlv_get_enum(b, T(RESULT_STATUS), &st))
        return 0xFFFF;
    if (st == 0)
        return 0;
    (void)pgcmk_ttlv_get_enum(b, T(RESULT_REASON), &rr);
    return rr;
}

static const struct pgcmk_ttlv *
payload(int i)
{
    const struct pgcmk_ttlv *b = item(i);

    return b ? pgcmk_ttlv_find(b, T(RESPONSE_PAYLOAD)) : NULL;
}

static const char *
result_message(int i)
{
    const struct pgcmk_ttlv *b = item(i);
    const char *s = NULL;
    size_t n;

    if (b)
        (void)pgcmk_ttlv_get_text(b, T(RESULT_MESSAGE), &s, &n);
    return s ? s : "";
}

/* The uid in item 0's payload (static buffer). */
static const char *
uid0(void)
{
    static char u[32];
    const struct pgcmk_ttlv *p = payload(0);
    const char *s = NULL;
    size_t n = 0;

    u[0] = '\0';
    if (p && pgcmk_ttlv_get_text(p, T(UNIQUE_IDENTIFIER), &s, &n) == 0)
        snprintf(u, sizeof(u), "%s", s);
    return u;
}

static size_t
count_uids(void)
{
    const struct pgcmk_ttlv *p = payload(0);
    size_t n = 0;

    for (const struct pgcmk_ttlv *k = p ? pgcmk_ttlv_find(p, T(UNIQUE_IDENTIFIER)) : NULL; k;
         k = pgcmk_ttlv_find_next(k))
        n++;
    return n;
}

/* Create an AES key of `bits` for who, with a name and optional extra attributes; its uid. */
static char *
create(const char *who, int bits, const char *name, int64_t activation, int64_t deactivation)
{
    struct rq r;
    struct pgcmk_ttlv *p, *tpl;

    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_CREATE);
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_enum(&r.t, T(OBJECT_TYPE), 2));
    tpl = pgcmk_ttlv_append(p, pgcmk_ttlv_new_struct(&r.t, T(TEMPLATE_ATTRIBUTE)));
    add_attr(&r, tpl, "Cryptographic Algorithm", -1, v_enum(&r, 3));
    add_attr(&r, tpl, "Cryptographic Length", -1, v_int(&r, bits));
    add_attr(&r, tpl, "Cryptographic Usage Mask", -1, v_int(&r, 12));
    if (name)
        add_attr(&r, tpl, "Name", -1, v_name(&r, name));
    if (activation)
        add_attr(&r, tpl, "Activation Date", -1, v_date(&r, activation));
    if (deactivation)
        add_attr(&r, tpl, "Deactivation Date", -1, v_date(&r, deactivation));
    rq_send(&r, who);
    return strdup(reason(0) == 0 ? uid0() : "");
}

/* A one-item request with only a Unique Identifier; returns the reason. */
static uint32_t
simple(const char *who, uint32_t op, const char *uid)
{
    struct rq r;
    struct pgcmk_ttlv *p;

    rq_begin(&r, 1, 4);
    p = rq_item(&r, op);
    if (uid)
        add_text(&r, p, T(UNIQUE_IDENTIFIER), uid);
    rq_send(&r, who);
    return reason(0);
}

static uint32_t
state_of(const char *who, const char *uid)
{
    struct rq r;
    struct pgcmk_ttlv *p;
    const struct pgcmk_ttlv *a;
    uint32_t st = 0;

    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_GET_ATTRIBUTES);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), uid);
    add_text(&r, p, T(ATTRIBUTE_NAME), "State");
    rq_send(&r, who);
    if (payload(0) && (a = pgcmk_ttlv_find(payload(0), T(ATTRIBUTE))) != NULL)
        (void)pgcmk_ttlv_get_enum(a, T(ATTRIBUTE_VALUE), &st);
    return st;
}

static uint32_t
do_revoke(const char *who, const char *uid, uint32_t code)
{
    struct rq r;
    struct pgcmk_ttlv *p, *rr;

    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_REVOKE);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), uid);
    rr = pgcmk_ttlv_append(p, pgcmk_ttlv_new_struct(&r.t, T(REVOCATION_REASON)));
    pgcmk_ttlv_append(rr, pgcmk_ttlv_new_enum(&r.t, T(REVOCATION_REASON_CODE), code));
    rq_send(&r, who);
    return reason(0);
}

/* The key bytes of Get (format 0 = none asked). */
static size_t
get_key(const char *who, const char *uid, uint32_t format, uint8_t *key)
{
    struct rq r;
    struct pgcmk_ttlv *p;
    const struct pgcmk_ttlv *kv, *km;
    const uint8_t *b;
    size_t n = 0;

    rq_begin(&r, 1, 0);
    p = rq_item(&r, PGCMK_KMIP_OP_GET);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), uid);
    if (format)
        pgcmk_ttlv_append(p, pgcmk_ttlv_new_enum(&r.t, T(KEY_FORMAT_TYPE), format));
    rq_send(&r, who);
    if (reason(0) || !payload(0))
        return 0;
    kv = pgcmk_ttlv_find(
        pgcmk_ttlv_find(pgcmk_ttlv_find(payload(0), T(SYMMETRIC_KEY)), T(KEY_BLOCK)), T(KEY_VALUE));
    km = kv ? pgcmk_ttlv_find(kv, T(KEY_MATERIAL)) : NULL;
    if (km && km->type == PGCMK_TTLV_BYTE_STRING &&
        pgcmk_ttlv_get_bytes(kv, T(KEY_MATERIAL), &b, &n) == 0)
        memcpy(key, b, n);
    else if (km && pgcmk_ttlv_get_bytes(km, T(KEY), &b, &n) == 0)
        memcpy(key, b, n);
    return n;
}

/* ---- tests ---- */

static void
test_message_layer(void)
{
    struct rq r;
    struct pgcmk_ttlv *p, *bi;
    uint8_t junk[] = {0x16, 0x03, 0x01, 0, 0, 0, 0, 0, 1, 2, 3};
    uint8_t bad[] = {0x42, 0x00, 0x78, 0x01, 0, 0, 0, 8, 0x42, 0x00, 0x77, 0x01, 0, 0, 0, 9};
    uint8_t *out = NULL;
    size_t n = 0;
    struct pgcmk_kmip_peer peer = {"jane_doe"};
    struct pgcmk_ttlv_err e;
    const struct pgcmk_ttlv *pv;
    int32_t mi = -1;

    /* not KMIP: refused outright; KMIP that does not decode: Invalid Message */
    CHECK(pgcmk_kmip_process(&peer, junk, sizeof(junk), &out, &n) == -1);
    CHECK(pgcmk_kmip_process(&peer, junk, 3, &out, &n) == -1);
    CHECK(pgcmk_kmip_process(&peer, bad, sizeof(bad), &out, &n) == 0);
    pgcmk_ttlv_tree_release(&resp);
    resp_ok = pgcmk_ttlv_decode(out, n, &resp, &e) == 0;
    CHECK(reason(0) == PGCMK_KMIP_RR_INVALID_MESSAGE);
    free(out);

    /* Discover Versions answers in the request's version */
    rq_begin(&r, 1, 3);
    rq_item(&r, PGCMK_KMIP_OP_DISCOVER_VERSIONS);
    rq_send(&r, "jane_doe");
    CHECK(reason(0) == 0);
    pv = pgcmk_ttlv_find(pgcmk_ttlv_find(resp.root, T(RESPONSE_HEADER)), T(PROTOCOL_VERSION));
    CHECK(pv && pgcmk_ttlv_get_int(pv, T(PROTOCOL_VERSION_MINOR), &mi) == 0 && mi == 3);
    CHECK(payload(0) && pgcmk_ttlv_find(payload(0), T(PROTOCOL_VERSION)) != NULL);

    /* KMIP 2.0 header accepted, 1.5 refused */
    rq_begin(&r, 2, 0);
    rq_item(&r, PGCMK_KMIP_OP_DISCOVER_VERSIONS);
    rq_send(&r, "jane_doe");
    CHECK(reason(0) == 0);
    rq_begin(&r, 1, 5);
    rq_item(&r, PGCMK_KMIP_OP_DISCOVER_VERSIONS);
    rq_send(&r, "jane_doe");
    CHECK(reason(0) == PGCMK_KMIP_RR_INVALID_MESSAGE);
    CHECK(strstr(result_message(0), "1.5") != NULL);

    /* Batch Count that does not match */
    rq_begin(&r, 1, 2);
    rq_item(&r, PGCMK_KMIP_OP_QUERY);
    rq_send_raw(&r, "jane_doe", 1, 2);
    CHECK(reason(0) == PGCMK_KMIP_RR_INVALID_MESSAGE);
    CHECK(strstr(result_message(0), "Batch Count") != NULL);
    /* no Batch Count */
    rq_begin(&r, 1, 2);
    rq_item(&r, PGCMK_KMIP_OP_QUERY);
    rq_send_raw(&r, "jane_doe", 0, 0);
    CHECK(reason(0) == PGCMK_KMIP_RR_INVALID_MESSAGE);
    /* Asynchronous Indicator */
    rq_begin(&r, 1, 2);
    pgcmk_ttlv_append(r.hdr, pgcmk_ttlv_new_bool(&r.t, T(ASYNCHRONOUS_INDICATOR), 1));
    rq_item(&r, PGCMK_KMIP_OP_QUERY);
    rq_send(&r, "jane_doe");
    CHECK(reason(0) == PGCMK_KMIP_RR_INVALID_MESSAGE);
    CHECK(strstr(result_message(0), "Asynchronous") != NULL);
    /* an unknown operation */
    rq_begin(&r, 1, 2);
    rq_item(&r, 0x07); /* Certify */
    rq_send(&r, "jane_doe");
    CHECK(reason(0) == PGCMK_KMIP_RR_OPERATION_NOT_SUPPORTED);
    /* Maximum Response Size too small */
    rq_begin(&r, 1, 2);
    pgcmk_ttlv_append(r.hdr, pgcmk_ttlv_new_int(&r.t, T(MAXIMUM_RESPONSE_SIZE), 64));
    p = rq_item(&r, PGCMK_KMIP_OP_QUERY);
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_enum(&r.t, T(QUERY_FUNCTION), 1));
    rq_send(&r, "jane_doe");
    CHECK(reason(0) == PGCMK_KMIP_RR_RESPONSE_TOO_LARGE);
    /* a Request Payload item an operation does not take */
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_GET);
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_int(&r.t, T(MAXIMUM_ITEMS), 1));
    rq_send(&r, "jane_doe");
    CHECK(reason(0) == PGCMK_KMIP_RR_INVALID_MESSAGE);
    /* two items without Unique Batch Item IDs; then with them, echoed, Continue on error */
    rq_begin(&r, 1, 2);
    rq_item(&r, PGCMK_KMIP_OP_QUERY);
    rq_item(&r, PGCMK_KMIP_OP_QUERY);
    rq_send(&r, "jane_doe");
    CHECK(reason(0) == PGCMK_KMIP_RR_INVALID_MESSAGE);
    rq_begin(&r, 1, 2);
    pgcmk_ttlv_append(r.hdr, pgcmk_ttlv_new_enum(&r.t, T(BATCH_ERROR_CONTINUATION_OPTION), 2));
    for (int i = 0; i < 3; i++) {
        uint8_t id = (uint8_t)(0xA0 + i);

        bi = pgcmk_ttlv_append(r.msg, pgcmk_ttlv_new_struct(&r.t, T(BATCH_ITEM)));
        pgcmk_ttlv_append(
            bi, pgcmk_ttlv_new_enum(&r.t, T(OPERATION),
                                    i == 1 ? PGCMK_KMIP_OP_GET : PGCMK_KMIP_OP_DISCOVER_VERSIONS));
        pgcmk_ttlv_append(bi, pgcmk_ttlv_new_bytes(&r.t, T(UNIQUE_BATCH_ITEM_ID), &id, 1));
        p = pgcmk_ttlv_append(bi, pgcmk_ttlv_new_struct(&r.t, T(REQUEST_PAYLOAD)));
        if (i == 1)
            add_text(&r, p, T(UNIQUE_IDENTIFIER), "424242");
        r.items++;
    }
    rq_send(&r, "jane_doe");
    CHECK(reason(0) == 0 && reason(1) == PGCMK_KMIP_RR_ITEM_NOT_FOUND && reason(2) == 0);
    {
        const uint8_t *b = NULL;
        size_t bl = 0;

        CHECK(item(2) && pgcmk_ttlv_get_bytes(item(2), T(UNIQUE_BATCH_ITEM_ID), &b, &bl) == 0 &&
              bl == 1 && b[0] == 0xA2);
    }
    /* Query: operations, objects, server information */
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_QUERY);
    for (uint32_t f = 1; f <= 3; f++)
        pgcmk_ttlv_append(p, pgcmk_ttlv_new_enum(&r.t, T(QUERY_FUNCTION), f));
    rq_send(&r, "jane_doe");
    CHECK(reason(0) == 0 && payload(0) && pgcmk_ttlv_find(payload(0), T(OPERATION)) &&
          pgcmk_ttlv_find(payload(0), T(OBJECT_TYPE)) &&
          pgcmk_ttlv_find(payload(0), T(VENDOR_IDENTIFICATION)));
    /* no identity */
    rq_begin(&r, 1, 2);
    rq_item(&r, PGCMK_KMIP_OP_QUERY);
    rq_send(&r, "");
    CHECK(reason(0) == PGCMK_KMIP_RR_AUTHENTICATION_NOT_SUCCESSFUL);
}

static void
test_create_get(void)
{
    static const int bits[] = {128, 192, 256};
    uint8_t key[64], key2[64];
    char *u;
    struct rq r;
    struct pgcmk_ttlv *p;

    for (size_t i = 0; i < 3; i++) {
        u = create("alice", bits[i], "alice-key", 0, 0);
        CHECK(*u);
        CHECK(get_key("alice", u, 0, key) == (size_t)bits[i] / 8);
        CHECK(get_key("alice", u, 7, key2) == (size_t)bits[i] / 8 &&
              memcmp(key, key2, (size_t)bits[i] / 8) == 0);
        CHECK(state_of("alice", u) == 1);
        /* another identity sees nothing */
        CHECK(simple("bob", PGCMK_KMIP_OP_GET, u) == PGCMK_KMIP_RR_ITEM_NOT_FOUND);
        free(u);
    }
    u = create("alice", 100, NULL, 0, 0);
    CHECK(*u == '\0' && reason(0) == PGCMK_KMIP_RR_INVALID_FIELD);
    free(u);
    /* RSA: Invalid Field */
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_CREATE);
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_enum(&r.t, T(OBJECT_TYPE), 2));
    p = pgcmk_ttlv_append(p, pgcmk_ttlv_new_struct(&r.t, T(TEMPLATE_ATTRIBUTE)));
    add_attr(&r, p, "Cryptographic Algorithm", -1, v_enum(&r, 4));
    add_attr(&r, p, "Cryptographic Length", -1, v_int(&r, 2048));
    rq_send(&r, "alice");
    CHECK(reason(0) == PGCMK_KMIP_RR_INVALID_FIELD);
    /* a read-only attribute in the template */
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_CREATE);
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_enum(&r.t, T(OBJECT_TYPE), 2));
    p = pgcmk_ttlv_append(p, pgcmk_ttlv_new_struct(&r.t, T(TEMPLATE_ATTRIBUTE)));
    add_attr(&r, p, "Cryptographic Algorithm", -1, v_enum(&r, 3));
    add_attr(&r, p, "Cryptographic Length", -1, v_int(&r, 128));
    add_attr(&r, p, "State", -1, v_enum(&r, 2));
    rq_send(&r, "alice");
    CHECK(reason(0) == PGCMK_KMIP_RR_INVALID_FIELD);
    /* Get: other formats, compression */
    u = create("alice", 128, NULL, 0, 0);
    CHECK(get_key("alice", u, 2, key) == 0 &&
          reason(0) == PGCMK_KMIP_RR_KEY_FORMAT_TYPE_NOT_SUPPORTED);
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_GET);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), u);
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_enum(&r.t, T(KEY_COMPRESSION_TYPE), 1));
    rq_send(&r, "alice");
    CHECK(reason(0) == PGCMK_KMIP_RR_KEY_COMPRESSION_TYPE_NOT_SUPPORTED);
    /* the ID Placeholder: Create then Get without a uid in one batch */
    free(u);
}

static void
register_key(const char *who, const char *name, size_t n, uint32_t format)
{
    struct rq r;
    struct pgcmk_ttlv *p, *tpl, *kb, *kv;
    uint8_t key[40];

    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(0x40 + i);
    rq_begin(&r, 1, 4);
    p = rq_item(&r, PGCMK_KMIP_OP_REGISTER);
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_enum(&r.t, T(OBJECT_TYPE), 2));
    tpl = pgcmk_ttlv_append(p, pgcmk_ttlv_new_struct(&r.t, T(TEMPLATE_ATTRIBUTE)));
    add_attr(&r, tpl, "Cryptographic Usage Mask", -1, v_int(&r, 12));
    if (name)
        add_attr(&r, tpl, "Name", -1, v_name(&r, name));
    kb = pgcmk_ttlv_append(pgcmk_ttlv_append(p, pgcmk_ttlv_new_struct(&r.t, T(SYMMETRIC_KEY))),
                           pgcmk_ttlv_new_struct(&r.t, T(KEY_BLOCK)));
    pgcmk_ttlv_append(kb, pgcmk_ttlv_new_enum(&r.t, T(KEY_FORMAT_TYPE), format));
    kv = pgcmk_ttlv_append(kb, pgcmk_ttlv_new_struct(&r.t, T(KEY_VALUE)));
    if (format == 1)
        pgcmk_ttlv_append(kv, pgcmk_ttlv_new_bytes(&r.t, T(KEY_MATERIAL), key, n));
    else
        pgcmk_ttlv_append(pgcmk_ttlv_append(kv, pgcmk_ttlv_new_struct(&r.t, T(KEY_MATERIAL))),
                          pgcmk_ttlv_new_bytes(&r.t, T(KEY), key, n));
    pgcmk_ttlv_append(kb, pgcmk_ttlv_new_enum(&r.t, T(CRYPTOGRAPHIC_ALGORITHM), 3));
    pgcmk_ttlv_append(kb, pgcmk_ttlv_new_int(&r.t, T(CRYPTOGRAPHIC_LENGTH), (int32_t)(8 * n)));
    rq_send(&r, who);
}

static void
test_register(void)
{
    uint8_t key[64];
    char u[32];

    register_key("carol", NULL, 16, 1);
    CHECK(reason(0) == 0);
    snprintf(u, sizeof(u), "%s", uid0());
    CHECK(get_key("carol", u, 0, key) == 16 && key[0] == 0x40 && key[15] == 0x4F);
    register_key("carol", "c-key", 24, 7);
    CHECK(reason(0) == 0);
    register_key("carol", "c-key", 32, 1);
    CHECK(reason(0) == 0);
    register_key("carol", "c-key", 15, 1);
    CHECK(reason(0) == PGCMK_KMIP_RR_INVALID_FIELD);
    register_key("carol", "c-key", 32, 3);
    CHECK(reason(0) == PGCMK_KMIP_RR_KEY_FORMAT_TYPE_NOT_SUPPORTED);
}

static uint32_t
locate(const char *who, const char *name, int state, int max, int offset)
{
    struct rq r;
    struct pgcmk_ttlv *p;

    rq_begin(&r, 1, 4);
    p = rq_item(&r, PGCMK_KMIP_OP_LOCATE);
    if (max >= 0)
        pgcmk_ttlv_append(p, pgcmk_ttlv_new_int(&r.t, T(MAXIMUM_ITEMS), max));
    if (offset >= 0)
        pgcmk_ttlv_append(p, pgcmk_ttlv_new_int(&r.t, T(OFFSET_ITEMS), offset));
    add_attr(&r, p, "Object Type", -1, v_enum(&r, 2));
    if (name)
        add_attr(&r, p, "Name", -1, v_name(&r, name));
    if (state > 0)
        add_attr(&r, p, "State", -1, v_enum(&r, (uint32_t)state));
    rq_send(&r, who);
    return reason(0);
}

static void
test_locate(void)
{
    char *a = create("dave", 256, "dup", 0, 0), *b = create("dave", 256, "dup", 0, 0);
    const struct pgcmk_ttlv *li;
    int32_t n = -1;

    CHECK(locate("dave", "dup", 0, -1, -1) == 0 && count_uids() == 2);
    CHECK(strcmp(uid0(), b) == 0); /* newest first */
    CHECK(locate("dave", "dup", 0, 1, -1) == 0 && count_uids() == 1 && strcmp(uid0(), b) == 0);
    li = payload(0) ? pgcmk_ttlv_find(payload(0), T(LOCATED_ITEMS)) : NULL;
    CHECK(li && pgcmk_ttlv_get_int(payload(0), T(LOCATED_ITEMS), &n) == 0 && n == 2);
    CHECK(locate("dave", "dup", 0, -1, 1) == 0 && count_uids() == 1 && strcmp(uid0(), a) == 0);
    CHECK(locate("erin", "dup", 0, -1, -1) == 0 && count_uids() == 0);
    CHECK(locate("dave", "dup", 2, -1, -1) == 0 && count_uids() == 0);
    CHECK(simple("dave", PGCMK_KMIP_OP_ACTIVATE, a) == 0);
    CHECK(locate("dave", "dup", 2, -1, -1) == 0 && count_uids() == 1 && strcmp(uid0(), a) == 0);
    CHECK(simple("dave", PGCMK_KMIP_OP_DESTROY, b) == 0);
    CHECK(locate("dave", "dup", 0, -1, -1) == 0 && count_uids() == 1);
    CHECK(locate("dave", "dup", 5, -1, -1) == 0 && count_uids() == 1 && strcmp(uid0(), b) == 0);
    CHECK(simple("dave", PGCMK_KMIP_OP_GET, b) == PGCMK_KMIP_RR_ITEM_NOT_FOUND);
    CHECK(strstr(result_message(0), "Could not locate object") != NULL);
    /* Activation Date: one value is that instant, two a range; Storage Status Mask archive */
    {
        struct rq r;
        struct pgcmk_ttlv *p;
        int64_t now = kmip_now();

        rq_begin(&r, 1, 2);
        p = rq_item(&r, PGCMK_KMIP_OP_LOCATE);
        add_attr(&r, p, "Activation Date", -1, v_date(&r, now - 5));
        add_attr(&r, p, "Activation Date", -1, v_date(&r, now + 5));
        rq_send(&r, "dave");
        CHECK(reason(0) == 0 && count_uids() == 1 && strcmp(uid0(), a) == 0);
        rq_begin(&r, 1, 2);
        p = rq_item(&r, PGCMK_KMIP_OP_LOCATE);
        add_attr(&r, p, "Activation Date", -1, v_date(&r, now - 5));
        rq_send(&r, "dave");
        CHECK(reason(0) == 0 && count_uids() == 0);
        rq_begin(&r, 1, 2);
        p = rq_item(&r, PGCMK_KMIP_OP_LOCATE);
        pgcmk_ttlv_append(p, pgcmk_ttlv_new_int(&r.t, T(STORAGE_STATUS_MASK), 2));
        rq_send(&r, "dave");
        CHECK(reason(0) == 0 && count_uids() == 0);
        rq_begin(&r, 1, 2);
        p = rq_item(&r, PGCMK_KMIP_OP_LOCATE);
        add_attr(&r, p, "Unknown Thing", -1, v_int(&r, 1));
        rq_send(&r, "dave");
        CHECK(reason(0) == PGCMK_KMIP_RR_INVALID_FIELD);
    }
    free(a);
    free(b);
}

static void
test_attributes(void)
{
    char *u = create("frank", 128, "f1", 0, 0);
    struct rq r;
    struct pgcmk_ttlv *p;
    const struct pgcmk_ttlv *k;
    int names = 0, have_state = 0;

    /* Get Attribute List */
    CHECK(simple("frank", PGCMK_KMIP_OP_GET_ATTRIBUTE_LIST, u) == 0);
    for (k = payload(0) ? pgcmk_ttlv_find(payload(0), T(ATTRIBUTE_NAME)) : NULL; k;
         k = pgcmk_ttlv_find_next(k)) {
        names++;
        have_state |= strcmp((const char *)k->v.bytes, "State") == 0;
    }
    CHECK(names >= 9 && have_state);
    /* Add a second Name: index 1 */
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_ADD_ATTRIBUTE);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), u);
    add_attr(&r, p, "Name", -1, v_name(&r, "f2"));
    rq_send(&r, "frank");
    CHECK(reason(0) == 0);
    {
        int32_t idx = -1;
        const struct pgcmk_ttlv *a = payload(0) ? pgcmk_ttlv_find(payload(0), T(ATTRIBUTE)) : NULL;

        CHECK(a && pgcmk_ttlv_get_int(a, T(ATTRIBUTE_INDEX), &idx) == 0 && idx == 1);
    }
    CHECK(locate("frank", "f2", 0, -1, -1) == 0 && count_uids() == 1);
    /* Modify Name index 1 */
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_MODIFY_ATTRIBUTE);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), u);
    add_attr(&r, p, "Name", 1, v_name(&r, "f3"));
    rq_send(&r, "frank");
    CHECK(reason(0) == 0);
    CHECK(locate("frank", "f2", 0, -1, -1) == 0 && count_uids() == 0);
    CHECK(locate("frank", "f3", 0, -1, -1) == 0 && count_uids() == 1);
    /* Modify index 5: out of bounds */
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_MODIFY_ATTRIBUTE);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), u);
    add_attr(&r, p, "Name", 5, v_name(&r, "f9"));
    rq_send(&r, "frank");
    CHECK(reason(0) == PGCMK_KMIP_RR_INDEX_OUT_OF_BOUNDS);
    /* Delete Name index 0 */
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_DELETE_ATTRIBUTE);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), u);
    add_text(&r, p, T(ATTRIBUTE_NAME), "Name");
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_int(&r.t, T(ATTRIBUTE_INDEX), 0));
    rq_send(&r, "frank");
    CHECK(reason(0) == 0);
    CHECK(locate("frank", "f1", 0, -1, -1) == 0 && count_uids() == 0);
    /* read-only, required, unknown, single-valued twice */
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_ADD_ATTRIBUTE);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), u);
    add_attr(&r, p, "State", -1, v_enum(&r, 2));
    rq_send(&r, "frank");
    CHECK(reason(0) == PGCMK_KMIP_RR_PERMISSION_DENIED);
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_DELETE_ATTRIBUTE);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), u);
    add_text(&r, p, T(ATTRIBUTE_NAME), "Cryptographic Algorithm");
    rq_send(&r, "frank");
    CHECK(reason(0) == PGCMK_KMIP_RR_PERMISSION_DENIED);
    CHECK(strcmp(result_message(0), "Cannot delete a required attribute.") == 0);
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_ADD_ATTRIBUTE);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), u);
    add_attr(&r, p, "Frobnication", -1, v_int(&r, 1));
    rq_send(&r, "frank");
    CHECK(reason(0) == PGCMK_KMIP_RR_INVALID_FIELD);
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_ADD_ATTRIBUTE);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), u);
    add_attr(&r, p, "Contact Information", -1,
             pgcmk_ttlv_new_text(&r.t, T(ATTRIBUTE_VALUE), "ops@example", 11));
    rq_send(&r, "frank");
    CHECK(reason(0) == 0);
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_ADD_ATTRIBUTE);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), u);
    add_attr(&r, p, "Contact Information", -1,
             pgcmk_ttlv_new_text(&r.t, T(ATTRIBUTE_VALUE), "again", 5));
    rq_send(&r, "frank");
    CHECK(reason(0) == PGCMK_KMIP_RR_ILLEGAL_OPERATION);
    /* a custom attribute, then Get Attributes by name */
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_ADD_ATTRIBUTE);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), u);
    add_attr(&r, p, "x-owner-team", -1, v_int(&r, 42));
    rq_send(&r, "frank");
    CHECK(reason(0) == 0);
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_GET_ATTRIBUTES);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), u);
    add_text(&r, p, T(ATTRIBUTE_NAME), "x-owner-team");
    rq_send(&r, "frank");
    {
        int32_t v = 0;
        const struct pgcmk_ttlv *a = payload(0) ? pgcmk_ttlv_find(payload(0), T(ATTRIBUTE)) : NULL;

        CHECK(a && pgcmk_ttlv_get_int(a, T(ATTRIBUTE_VALUE), &v) == 0 && v == 42);
    }
    /* Activation Date may change only while Pre-Active */
    CHECK(simple("frank", PGCMK_KMIP_OP_ACTIVATE, u) == 0);
    CHECK(simple("frank", PGCMK_KMIP_OP_ACTIVATE, u) == PGCMK_KMIP_RR_PERMISSION_DENIED);
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_MODIFY_ATTRIBUTE);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), u);
    add_attr(&r, p, "Activation Date", -1, v_date(&r, kmip_now() + 10));
    rq_send(&r, "frank");
    CHECK(reason(0) == PGCMK_KMIP_RR_PERMISSION_DENIED);
    free(u);
}

/* Add (op ADD_ATTRIBUTE) or Modify a date attribute; returns the reason. */
static uint32_t
set_date(const char *who, uint32_t op, const char *uid, const char *name, int64_t when)
{
    struct rq r;
    struct pgcmk_ttlv *p;

    rq_begin(&r, 1, 2);
    p = rq_item(&r, op);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), uid);
    add_attr(&r, p, name, -1, v_date(&r, when));
    rq_send(&r, who);
    return reason(0);
}

static void
test_dates(void)
{
    int64_t now = kmip_now();
    unsigned long deact = pgcmk_events_count(PGCMK_EV_KMIP_OBJECT_DEACTIVATED);
    char *u = create("jill", 256, NULL, 0, 0);

    CHECK(set_date("jill", PGCMK_KMIP_OP_ADD_ATTRIBUTE, u, "Process Start Date", now + 5) == 0);
    CHECK(set_date("jill", PGCMK_KMIP_OP_ADD_ATTRIBUTE, u, "Protect Stop Date", now + 50) == 0);
    CHECK(simple("jill", PGCMK_KMIP_OP_ACTIVATE, u) == 0);
    /* Process Start Date: only while Pre-Active; Protect Stop Date: while Active too */
    CHECK(set_date("jill", PGCMK_KMIP_OP_MODIFY_ATTRIBUTE, u, "Process Start Date", now + 6) ==
          PGCMK_KMIP_RR_PERMISSION_DENIED);
    CHECK(set_date("jill", PGCMK_KMIP_OP_MODIFY_ATTRIBUTE, u, "Protect Stop Date", now + 60) == 0);
    CHECK(set_date("jill", PGCMK_KMIP_OP_MODIFY_ATTRIBUTE, u, "Initial Date", now) ==
          PGCMK_KMIP_RR_PERMISSION_DENIED);
    /* a Deactivation Date in the past deactivates at once, with its event */
    CHECK(set_date("jill", PGCMK_KMIP_OP_ADD_ATTRIBUTE, u, "Deactivation Date", now - 1) == 0);
    CHECK(pgcmk_events_count(PGCMK_EV_KMIP_OBJECT_DEACTIVATED) == deact + 1);
    CHECK(state_of("jill", u) == 3);
    CHECK(set_date("jill", PGCMK_KMIP_OP_MODIFY_ATTRIBUTE, u, "Protect Stop Date", now + 70) ==
          PGCMK_KMIP_RR_PERMISSION_DENIED);
    free(u);
}

static void
test_state_machine(void)
{
    int64_t now = kmip_now();
    unsigned long deact = pgcmk_events_count(PGCMK_EV_KMIP_OBJECT_DEACTIVATED);
    unsigned long rev = pgcmk_events_count(PGCMK_EV_KMIP_OBJECT_REVOKED);
    unsigned long des = pgcmk_events_count(PGCMK_EV_KMIP_OBJECT_DESTROYED);
    char *u = create("gina", 256, "timed", now + 100, now + 200);
    char *v;

    CHECK(state_of("gina", u) == 1);
    pgcmk_clock_advance(150 * 1000);
    CHECK(state_of("gina", u) == 2);
    pgcmk_clock_advance(100 * 1000); /* the clock's listener deactivates it */
    CHECK(pgcmk_events_count(PGCMK_EV_KMIP_OBJECT_DEACTIVATED) == deact + 1);
    CHECK(state_of("gina", u) == 3);
    CHECK(simple("gina", PGCMK_KMIP_OP_DESTROY, u) == 0);
    CHECK(pgcmk_events_count(PGCMK_EV_KMIP_OBJECT_DESTROYED) == des + 1);
    CHECK(state_of("gina", u) == 5);
    /* compromise: Pre-Active -> Compromised -> Destroyed Compromised */
    v = create("gina", 128, NULL, 0, 0);
    CHECK(do_revoke("gina", v, 6) == PGCMK_KMIP_RR_ILLEGAL_OPERATION); /* not Active */
    CHECK(do_revoke("gina", v, 9) == PGCMK_KMIP_RR_INVALID_FIELD);
    CHECK(do_revoke("gina", v, 2) == 0);
    CHECK(pgcmk_events_count(PGCMK_EV_KMIP_OBJECT_REVOKED) == rev + 1);
    CHECK(state_of("gina", v) == 4);
    CHECK(simple("gina", PGCMK_KMIP_OP_GET, v) == 0); /* a compromised key can still be read */
    CHECK(simple("gina", PGCMK_KMIP_OP_DESTROY, v) == 0);
    CHECK(state_of("gina", v) == 6);
    CHECK(simple("gina", PGCMK_KMIP_OP_GET, v) == PGCMK_KMIP_RR_ITEM_NOT_FOUND);
    free(u);
    free(v);
}

static void
test_rekey(void)
{
    int64_t now = kmip_now();
    char *u = create("hank", 256, "rk", now - 10, now + 1000), nu[32];
    struct rq r;
    struct pgcmk_ttlv *p;
    uint8_t k1[32], k2[32];

    CHECK(state_of("hank", u) == 2);
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_REKEY);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), u);
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_interval(&r.t, T(OFFSET), 3600));
    rq_send(&r, "hank");
    CHECK(reason(0) == 0);
    snprintf(nu, sizeof(nu), "%s", uid0());
    CHECK(*nu && strcmp(nu, u) != 0);
    CHECK(state_of("hank", nu) == 1);
    CHECK(get_key("hank", u, 0, k1) == 32 && get_key("hank", nu, 0, k2) == 32 &&
          memcmp(k1, k2, 32) != 0);
    /* the name moved to the new key */
    CHECK(locate("hank", "rk", 0, -1, -1) == 0 && count_uids() == 1 && strcmp(uid0(), nu) == 0);
    /* dates by the offset: activation now+3600, deactivation 1010 s after it */
    rq_begin(&r, 1, 2);
    p = rq_item(&r, PGCMK_KMIP_OP_GET_ATTRIBUTES);
    add_text(&r, p, T(UNIQUE_IDENTIFIER), nu);
    add_text(&r, p, T(ATTRIBUTE_NAME), "Activation Date");
    add_text(&r, p, T(ATTRIBUTE_NAME), "Deactivation Date");
    add_text(&r, p, T(ATTRIBUTE_NAME), "Link");
    rq_send(&r, "hank");
    {
        const struct pgcmk_ttlv *a = payload(0) ? pgcmk_ttlv_find(payload(0), T(ATTRIBUTE)) : NULL;
        int64_t act = 0, deact = 0;

        if (a) {
            (void)pgcmk_ttlv_get_long(a, T(ATTRIBUTE_VALUE), &act);
            a = pgcmk_ttlv_find_next(a);
        }
        if (a) {
            (void)pgcmk_ttlv_get_long(a, T(ATTRIBUTE_VALUE), &deact);
            a = pgcmk_ttlv_find_next(a);
        }
        CHECK(act >= now + 3600 && act <= now + 3602);
        CHECK(deact - act == 1010);
        CHECK(a != NULL); /* Link: Replaced Object */
    }
    free(u);
}

static void
test_placeholder_and_reload(void)
{
    struct rq r;
    struct pgcmk_ttlv *p, *tpl, *bi;
    uint8_t id1 = 1, id2 = 2, k1[32], k2[32];
    char u[32];

    /* Create then Activate without a uid: the ID Placeholder */
    rq_begin(&r, 1, 2);
    bi = pgcmk_ttlv_append(r.msg, pgcmk_ttlv_new_struct(&r.t, T(BATCH_ITEM)));
    pgcmk_ttlv_append(bi, pgcmk_ttlv_new_enum(&r.t, T(OPERATION), PGCMK_KMIP_OP_CREATE));
    pgcmk_ttlv_append(bi, pgcmk_ttlv_new_bytes(&r.t, T(UNIQUE_BATCH_ITEM_ID), &id1, 1));
    p = pgcmk_ttlv_append(bi, pgcmk_ttlv_new_struct(&r.t, T(REQUEST_PAYLOAD)));
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_enum(&r.t, T(OBJECT_TYPE), 2));
    tpl = pgcmk_ttlv_append(p, pgcmk_ttlv_new_struct(&r.t, T(TEMPLATE_ATTRIBUTE)));
    add_attr(&r, tpl, "Cryptographic Algorithm", -1, v_enum(&r, 3));
    add_attr(&r, tpl, "Cryptographic Length", -1, v_int(&r, 256));
    add_attr(&r, tpl, "Name", -1, v_name(&r, "persisted"));
    bi = pgcmk_ttlv_append(r.msg, pgcmk_ttlv_new_struct(&r.t, T(BATCH_ITEM)));
    pgcmk_ttlv_append(bi, pgcmk_ttlv_new_enum(&r.t, T(OPERATION), PGCMK_KMIP_OP_ACTIVATE));
    pgcmk_ttlv_append(bi, pgcmk_ttlv_new_bytes(&r.t, T(UNIQUE_BATCH_ITEM_ID), &id2, 1));
    pgcmk_ttlv_append(bi, pgcmk_ttlv_new_struct(&r.t, T(REQUEST_PAYLOAD)));
    r.items = 2;
    rq_send(&r, "ivy");
    CHECK(reason(0) == 0 && reason(1) == 0);
    snprintf(u, sizeof(u), "%s", uid0());
    CHECK(state_of("ivy", u) == 2);
    CHECK(get_key("ivy", u, 0, k1) == 32);
    /* the table reloads from the store: same state, names and key */
    kmip_table_reset();
    CHECK(state_of("ivy", u) == 2);
    CHECK(get_key("ivy", u, 0, k2) == 32 && memcmp(k1, k2, 32) == 0);
    CHECK(locate("ivy", "persisted", 0, -1, -1) == 0 && count_uids() == 1);
}

int
main(void)
{
    struct pgcmk_err err;

    pgcmk_clock_init();
    pgcmk_clock_freeze();
    pgcmk_clock_set(T0_MS);
    pgcmk_ttlv_tree_init(&resp);
    CHECK(t_store_open(&err) == 0);
    pgcmk_kmip_init();
    test_replays();
    test_message_layer();
    test_create_get();
    test_register();
    test_locate();
    test_attributes();
    test_state_machine();
    test_dates();
    test_rekey();
    test_placeholder_and_reload();
    pgcmk_ttlv_tree_release(&resp);
    kmip_table_reset();
    t_store_close();
    return t_done("test_kmip_ops");
}
