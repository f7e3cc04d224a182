/* message.c - the KMIP message layer (include/pgcmk/kmip_server.h): a Request Message parsed
 * strictly (the Request Header's items in KMIP 1.4's order and types, Batch Count equal to the
 * Batch Items, a Unique Batch Item ID on each item of a batch of more than one), each Batch Item
 * run by ops.c, and a Response Message in the request's protocol version with a Time Stamp from
 * the virtual clock. A message of the wrong shape gets a failure response (Invalid Message) whose
 * Result Message says what is wrong; only bytes that do not start as a Request Message are
 * refused outright (-1). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmip/objects.h"
#include "kmip/ops.h"
#include "pgcmk/core.h"
#include "pgcmk/kmip.h"
#include "pgcmk/kmip_server.h"

#define T(n) PGCMK_KMIP_TAG_##n

struct msg {
    int32_t major, minor;
    int32_t max_size;  /* 0 = none */
    uint32_t on_error; /* Batch Error Continuation Option: 1 Stop, 2 Continue */
    uint32_t reason;
    char message[256];
};

static int msg_fail(struct msg *m, uint32_t reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
msg_fail(struct msg *m, uint32_t reason, const char *fmt, ...)
{
    va_list ap;

    m->reason = reason;
    va_start(ap, fmt);
    vsnprintf(m->message, sizeof(m->message), fmt, ap);
    va_end(ap);
    return -1;
}

static const char *
tname(uint32_t tag)
{
    const char *n = pgcmk_kmip_tag_name(tag);

    return n ? n : "an unknown tag";
}

/* The Request Header, in order: X(tag, type, multi). */
static const struct {
    uint32_t tag;
    enum pgcmk_ttlv_type type;
    int multi;
} header_items[] = {
    {T(PROTOCOL_VERSION), PGCMK_TTLV_STRUCTURE, 0},
    {T(MAXIMUM_RESPONSE_SIZE), PGCMK_TTLV_INTEGER, 0},
    {T(ASYNCHRONOUS_INDICATOR), PGCMK_TTLV_BOOLEAN, 0},
    {T(ATTESTATION_CAPABLE_INDICATOR), PGCMK_TTLV_BOOLEAN, 0},
    {T(ATTESTATION_TYPE), PGCMK_TTLV_ENUMERATION, 1},
    {T(AUTHENTICATION), PGCMK_TTLV_STRUCTURE, 0},
    {T(BATCH_ERROR_CONTINUATION_OPTION), PGCMK_TTLV_ENUMERATION, 0},
    {T(BATCH_ORDER_OPTION), PGCMK_TTLV_BOOLEAN, 0},
    {T(TIME_STAMP), PGCMK_TTLV_DATE_TIME, 0},
    {T(BATCH_COUNT), PGCMK_TTLV_INTEGER, 0},
};

static int
parse_version(struct msg *m, const struct pgcmk_ttlv *pv)
{
    const struct pgcmk_ttlv *ma = pv->first, *mi = ma ? ma->next : NULL;

    if (!ma || ma->tag != T(PROTOCOL_VERSION_MAJOR) || ma->type != PGCMK_TTLV_INTEGER || !mi ||
        mi->tag != T(PROTOCOL_VERSION_MINOR) || mi->type != PGCMK_TTLV_INTEGER || mi->next)
        return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                        "The Protocol Version must hold a Protocol Version Major and a Protocol "
                        "Version Minor Integer.");
    m->major = ma->v.i32;
    m->minor = mi->v.i32;
    return 0;
}

static int
parse_header(struct msg *m, const struct pgcmk_ttlv *h, int32_t *batch_count)
{
    size_t pos = 0;
    int have_pv = 0, have_bc = 0;

    if (h->type != PGCMK_TTLV_STRUCTURE)
        return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                        "The Request Header must be a "
                        "Structure.");
    /* the version first, so that every later failure answers in it */
    if (h->first && h->first->tag == T(PROTOCOL_VERSION) &&
        h->first->type == PGCMK_TTLV_STRUCTURE && parse_version(m, h->first))
        return -1;
    for (const struct pgcmk_ttlv *k = h->first; k; k = k->next) {
        size_t i;

        for (i = 0; i < PGCMK_ARRAY_LEN(header_items) && header_items[i].tag != k->tag; i++)
            ;
        if (i == PGCMK_ARRAY_LEN(header_items))
            return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                            "Unexpected item %s (0x%06X) in the Request Header.", tname(k->tag),
                            (unsigned)k->tag);
        if (i < pos)
            return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                            "%s is out of order in the Request Header.", tname(k->tag));
        if (k->type != header_items[i].type)
            return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE, "%s must be a %s, not a %s.",
                            tname(k->tag), pgcmk_ttlv_type_name(header_items[i].type),
                            pgcmk_ttlv_type_name(k->type));
        if (!header_items[i].multi && pgcmk_ttlv_find_next(k))
            return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                            "%s appears more than once in the Request Header.", tname(k->tag));
        pos = i;
        switch (k->tag) {
        case T(PROTOCOL_VERSION):
            if (parse_version(m, k))
                return -1;
            have_pv = 1;
            break;
        case T(MAXIMUM_RESPONSE_SIZE):
            if (k->v.i32 <= 0)
                return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                                "Maximum Response Size must be positive.");
            m->max_size = k->v.i32;
            break;
        case T(ASYNCHRONOUS_INDICATOR):
            if (k->v.boolean)
                return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                                "Asynchronous operations are not supported.");
            break;
        case T(BATCH_ERROR_CONTINUATION_OPTION):
            if (k->v.u32 == 3)
                return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                                "Undo option for batch handling is not supported.");
            if (k->v.u32 != 1 && k->v.u32 != 2)
                return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                                "Unknown Batch Error Continuation Option %u.", (unsigned)k->v.u32);
            m->on_error = k->v.u32;
            break;
        case T(BATCH_COUNT):
            *batch_count = k->v.i32;
            have_bc = 1;
            break;
        default: /* Authentication is ignored: the identity comes from TLS */
            break;
        }
    }
    if (!have_pv)
        return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                        "The Request Header has no Protocol Version.");
    if (!((m->major == 1 && m->minor >= 0 && m->minor <= 4) || (m->major == 2 && m->minor == 0)))
        return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                        "KMIP %d.%d is not supported by the server.", (int)m->major, (int)m->minor);
    if (!have_bc)
        return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                        "The Request Header has no Batch "
                        "Count.");
    return 0;
}

/* A Batch Item: Operation, [Unique Batch Item ID], Request Payload, [Message Extension]. */
static int
parse_item(struct msg *m, const struct pgcmk_ttlv *bi, const struct pgcmk_ttlv **op,
           const struct pgcmk_ttlv **id, const struct pgcmk_ttlv **payload)
{
    static const struct {
        uint32_t tag;
        enum pgcmk_ttlv_type type;
    } items[] = {{T(OPERATION), PGCMK_TTLV_ENUMERATION},
                 {T(UNIQUE_BATCH_ITEM_ID), PGCMK_TTLV_BYTE_STRING},
                 {T(REQUEST_PAYLOAD), PGCMK_TTLV_STRUCTURE},
                 {T(MESSAGE_EXTENSION), PGCMK_TTLV_STRUCTURE}};

    size_t pos = 0;
    int seen[4] = {0};

    *op = *id = *payload = NULL;
    if (bi->type != PGCMK_TTLV_STRUCTURE)
        return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE, "A Batch Item must be a Structure.");
    for (const struct pgcmk_ttlv *k = bi->first; k; k = k->next) {
        size_t i;

        for (i = 0; i < 4 && items[i].tag != k->tag; i++)
            ;
        if (i == 4)
            return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                            "Unexpected item %s (0x%06X) in a Batch Item.", tname(k->tag),
                            (unsigned)k->tag);
        if (seen[i])
            return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                            "%s appears more than once in a Batch Item.", tname(k->tag));
        if (i < pos)
            return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE, "%s is out of order in a Batch Item.",
                            tname(k->tag));
        if (k->type != items[i].type)
            return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE, "%s must be a %s, not a %s.",
                            tname(k->tag), pgcmk_ttlv_type_name(items[i].type),
                            pgcmk_ttlv_type_name(k->type));
        seen[i] = 1;
        pos = i;
        if (i == 0)
            *op = k;
        else if (i == 1)
            *id = k;
        else if (i == 2)
            *payload = k;
        else if (pgcmk_ttlv_find(k, T(CRITICALITY_INDICATOR)) &&
                 pgcmk_ttlv_find(k, T(CRITICALITY_INDICATOR))->type == PGCMK_TTLV_BOOLEAN &&
                 pgcmk_ttlv_find(k, T(CRITICALITY_INDICATOR))->v.boolean)
            return msg_fail(m, PGCMK_KMIP_RR_FEATURE_NOT_SUPPORTED,
                            "A critical Message Extension is not supported.");
    }
    if (!*op)
        return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE, "A Batch Item has no Operation.");
    if (!*payload)
        return msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE, "A Batch Item has no Request Payload.");
    return 0;
}

static struct pgcmk_ttlv *
response_start(struct pgcmk_ttlv_tree *out, int32_t major, int32_t minor, struct pgcmk_ttlv **count)
{
    struct pgcmk_ttlv *msg, *rh, *pv;

    msg = pgcmk_ttlv_new_struct(out, T(RESPONSE_MESSAGE));
    rh = pgcmk_ttlv_append(msg, pgcmk_ttlv_new_struct(out, T(RESPONSE_HEADER)));
    pv = pgcmk_ttlv_append(rh, pgcmk_ttlv_new_struct(out, T(PROTOCOL_VERSION)));
    pgcmk_ttlv_append(pv, pgcmk_ttlv_new_int(out, T(PROTOCOL_VERSION_MAJOR), major));
    pgcmk_ttlv_append(pv, pgcmk_ttlv_new_int(out, T(PROTOCOL_VERSION_MINOR), minor));
    pgcmk_ttlv_append(rh, pgcmk_ttlv_new_datetime(out, T(TIME_STAMP), kmip_now()));
    *count = pgcmk_ttlv_append(rh, pgcmk_ttlv_new_int(out, T(BATCH_COUNT), 0));
    return msg;
}

static void
add_result(struct pgcmk_ttlv_tree *out, struct pgcmk_ttlv *bi, uint32_t reason, const char *text)
{
    pgcmk_ttlv_append(bi, pgcmk_ttlv_new_enum(out, T(RESULT_STATUS), 1));
    pgcmk_ttlv_append(bi, pgcmk_ttlv_new_enum(out, T(RESULT_REASON), reason));
    pgcmk_ttlv_append(bi, pgcmk_ttlv_new_text(out, T(RESULT_MESSAGE), text, strlen(text)));
}

/* A whole-message failure: one Batch Item with the result, no Operation. */
static struct pgcmk_ttlv *
failure_message(struct pgcmk_ttlv_tree *out, int32_t major, int32_t minor, uint32_t reason,
                const char *text)
{
    struct pgcmk_ttlv *count, *msg = response_start(out, major, minor, &count);
    struct pgcmk_ttlv *bi = pgcmk_ttlv_append(msg, pgcmk_ttlv_new_struct(out, T(BATCH_ITEM)));

    add_result(out, bi, reason, text);
    count->v.i32 = 1;
    return msg;
}

static int
encode(const struct pgcmk_ttlv *msg, uint8_t **resp, size_t *resp_len)
{
    struct pgcmk_ttlv_err err;
    size_t need = pgcmk_ttlv_encoded_len(msg);

    *resp = NULL;
    if (need == 0 || (*resp = malloc(need)) == NULL)
        return -1;
    if (pgcmk_ttlv_encode(msg, *resp, need, resp_len, &err)) {
        pgcmk_secret_free(*resp, need); /* a Get's answer holds key material */
        *resp = NULL;
        return -1;
    }
    return 0;
}

/* Runs the batch into out; returns the Response Message. */
static struct pgcmk_ttlv *
run(const struct pgcmk_kmip_peer *peer, const struct pgcmk_ttlv *root, struct pgcmk_ttlv_tree *out,
    struct msg *m)
{
    const struct pgcmk_ttlv *hdr = root->first, *bi;
    struct pgcmk_ttlv *resp, *count;
    struct kmip_call call;
    int32_t batch_count = -1, n_items = 0;

    if (!hdr || hdr->tag != T(REQUEST_HEADER)) {
        msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                 "The Request Message must start with a Request Header.");
        return NULL;
    }
    if (parse_header(m, hdr, &batch_count))
        return NULL;
    for (bi = hdr->next; bi; bi = bi->next, n_items++)
        if (bi->tag != T(BATCH_ITEM)) {
            msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                     "Unexpected item %s (0x%06X) in the Request Message.", tname(bi->tag),
                     (unsigned)bi->tag);
            return NULL;
        }
    if (n_items == 0) {
        msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE, "The Request Message has no Batch Item.");
        return NULL;
    }
    if (batch_count != n_items) {
        msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE,
                 "Batch Count is %d but the message holds %d Batch Items.", (int)batch_count,
                 (int)n_items);
        return NULL;
    }
    if (n_items > 1)
        for (bi = hdr->next; bi; bi = bi->next)
            if (bi->type == PGCMK_TTLV_STRUCTURE && !pgcmk_ttlv_find(bi, T(UNIQUE_BATCH_ITEM_ID))) {
                msg_fail(m, PGCMK_KMIP_RR_INVALID_MESSAGE, "Batch item ID is undefined.");
                return NULL;
            }
    if (!peer || !peer->identity || !*peer->identity) {
        msg_fail(m, PGCMK_KMIP_RR_AUTHENTICATION_NOT_SUCCESSFUL,
                 "The client certificate names no identity.");
        return NULL;
    }
    if (kmip_table_ready()) {
        msg_fail(m, PGCMK_KMIP_RR_GENERAL_FAILURE,
                 "Operation failed. See the server logs for more information.");
        return NULL;
    }
    memset(&call, 0, sizeof(call));
    call.owner = peer->identity;
    call.major = m->major;
    call.minor = m->minor;
    call.out = out;
    resp = response_start(out, m->major, m->minor, &count);
    for (bi = hdr->next; bi; bi = bi->next) {
        const struct pgcmk_ttlv *op, *id, *payload;
        struct pgcmk_ttlv *rbi = pgcmk_ttlv_append(resp, pgcmk_ttlv_new_struct(out, T(BATCH_ITEM)));
        struct pgcmk_ttlv *rp = NULL;
        int rc;

        count->v.i32++;
        rc = parse_item(m, bi, &op, &id, &payload);
        if (op)
            pgcmk_ttlv_append(rbi, pgcmk_ttlv_new_enum(out, T(OPERATION), op->v.u32));
        if (id)
            pgcmk_ttlv_append(
                rbi, pgcmk_ttlv_new_bytes(out, T(UNIQUE_BATCH_ITEM_ID), id->v.bytes, id->len));
        if (rc == 0 && !kmip_op_supported(op->v.u32)) {
            msg_fail(m, PGCMK_KMIP_RR_OPERATION_NOT_SUPPORTED, "Operation not supported.");
            rc = -1;
        }
        if (rc == 0) {
            call.reason = 0;
            kmip_lock();
            rc = kmip_op_run(&call, op->v.u32, payload, &rp);
            kmip_unlock();
            if (rc)
                msg_fail(m, call.reason, "%s", call.message);
        }
        if (rc) {
            add_result(out, rbi, m->reason, m->message);
            if (m->on_error != 2)
                break;
            continue;
        }
        pgcmk_ttlv_append(rbi, pgcmk_ttlv_new_enum(out, T(RESULT_STATUS), 0));
        if (rp)
            pgcmk_ttlv_append(rbi, rp);
    }
    return resp;
}

int
pgcmk_kmip_process(const struct pgcmk_kmip_peer *peer, const uint8_t *req, size_t req_len,
                   uint8_t **resp, size_t *resp_len)
{
    struct pgcmk_ttlv_tree in, out;
    struct pgcmk_ttlv_err err;
    struct pgcmk_ttlv *msg;
    struct msg m;
    int rc = -1;

    *resp = NULL;
    *resp_len = 0;
    /* not KMIP at all: not a Request Message structure header */
    if (!req || req_len < PGCMK_TTLV_HDR_LEN || req[0] != 0x42 || req[1] != 0x00 ||
        req[2] != 0x78 || req[3] != PGCMK_TTLV_STRUCTURE)
        return -1;
    memset(&m, 0, sizeof(m));
    m.major = 1;
    m.on_error = 1;
    pgcmk_ttlv_tree_init(&in);
    pgcmk_ttlv_tree_init(&out);
    if (pgcmk_ttlv_decode(req, req_len, &in, &err)) {
        char text[256];

        snprintf(text, sizeof(text), "Error parsing request message: %s", err.message);
        msg = failure_message(&out, 1, 0, PGCMK_KMIP_RR_INVALID_MESSAGE, text);
    } else {
        msg = run(peer, in.root, &out, &m);
        if (!msg)
            msg = failure_message(&out, m.major, m.minor, m.reason, m.message);
    }
    if (encode(msg, resp, resp_len))
        goto done;
    if (m.max_size > 0 && *resp_len > (size_t)m.max_size) {
        pgcmk_secret_free(*resp, *resp_len);
        pgcmk_ttlv_tree_release(&out);
        msg = failure_message(&out, m.major, m.minor, PGCMK_KMIP_RR_RESPONSE_TOO_LARGE,
                              "Response message length too large. See server logs for more "
                              "information.");
        if (encode(msg, resp, resp_len))
            goto done;
    }
    rc = 0;
done:
    pgcmk_ttlv_tree_release(&in);
    pgcmk_ttlv_tree_release(&out);
    return rc;
}

void
pgcmk_kmip_init(void)
{
    kmip_objects_init();
    kmip_routes_init();
}
