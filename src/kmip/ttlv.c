/* ttlv.c - the TTLV codec (include/pgcmk/kmip.h): strict decode, encode, builders, getters, dump.
 *
 * Pure: no I/O, no globals. Everything a tree holds lives in its arena of chunks, wiped on
 * release. Recursion follows nesting and stops at PGCMK_TTLV_MAX_DEPTH. */
#include "pgcmk/kmip.h"
#include "pgcmk/core.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pgcmk_ttlv_chunk {
    struct pgcmk_ttlv_chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

#define ARENA_MIN   4096
#define ARENA_ALIGN 16

struct dec {
    const uint8_t *buf;
    size_t len;
    struct pgcmk_ttlv_tree *t;
    struct pgcmk_ttlv_err *err;
};

static void *arena_alloc(struct pgcmk_ttlv_tree *t, size_t n);
static int ttlv_fail(struct pgcmk_ttlv_err *err, enum pgcmk_ttlv_reason r, size_t off,
                     uint32_t tag);
static int ttlv_utf8_check(const uint8_t *p, size_t n, enum pgcmk_ttlv_reason *why);
static int ttlv_item(struct dec *d, size_t off, size_t end, int depth, struct pgcmk_ttlv **out,
                     size_t *next);
static size_t ttlv_len_at(const struct pgcmk_ttlv *n, int depth);
static size_t ttlv_put(const struct pgcmk_ttlv *n, uint8_t *p);
static struct pgcmk_ttlv *ttlv_node(struct pgcmk_ttlv_tree *t, uint32_t tag,
                                    enum pgcmk_ttlv_type type);

/* ---- arena ---- */

void
pgcmk_ttlv_tree_init(struct pgcmk_ttlv_tree *t)
{
    t->root = NULL;
    t->chunks = NULL;
}

void
pgcmk_ttlv_tree_release(struct pgcmk_ttlv_tree *t)
{
    struct pgcmk_ttlv_chunk *c = t->chunks, *nx;

    for (; c; c = nx) {
        nx = c->next;
        /* used only grows, so it covers every byte ever handed out */
        pgcmk_secret_free(c, sizeof(*c) + c->used);
    }
    t->root = NULL;
    t->chunks = NULL;
}

static void *
arena_alloc(struct pgcmk_ttlv_tree *t, size_t n)
{
    struct pgcmk_ttlv_chunk *c = t->chunks;
    size_t at, cap;
    void *p;

    if (c) {
        at = (c->used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
        if (at <= c->cap && c->cap - at >= n) {
            p = c->data + at;
            c->used = at + n;
            return p;
        }
    }
    cap = n > ARENA_MIN ? n : ARENA_MIN;
    c = pgcmk_xmalloc(sizeof(*c) + cap);
    c->cap = cap;
    c->used = n;
    c->next = t->chunks;
    t->chunks = c;
    return c->data;
}

static struct pgcmk_ttlv *
ttlv_node(struct pgcmk_ttlv_tree *t, uint32_t tag, enum pgcmk_ttlv_type type)
{
    struct pgcmk_ttlv *n = arena_alloc(t, sizeof(*n));

    memset(n, 0, sizeof(*n));
    n->tag = tag;
    n->type = type;
    switch (type) { /* the fixed lengths of KMIP 1.x; blobs and structures set their own */
    case PGCMK_TTLV_INTEGER:
    case PGCMK_TTLV_ENUMERATION:
    case PGCMK_TTLV_INTERVAL:
        n->len = 4;
        break;
    case PGCMK_TTLV_LONG_INTEGER:
    case PGCMK_TTLV_BOOLEAN:
    case PGCMK_TTLV_DATE_TIME:
    case PGCMK_TTLV_DATE_TIME_EXTENDED:
        n->len = 8;
        break;
    default:
        break;
    }
    return n;
}

/* ---- names ---- */

const char *
pgcmk_kmip_tag_name(uint32_t tag)
{
    switch (tag) {
#define PGCMK_TAG_CASE(name, value)                                                                \
    case value:                                                                                    \
        return #name;
        PGCMK_KMIP_TAGS(PGCMK_TAG_CASE)
#undef PGCMK_TAG_CASE
    default:
        return NULL;
    }
}

const char *
pgcmk_ttlv_type_name(enum pgcmk_ttlv_type type)
{
    switch (type) {
#define PGCMK_TYPE_CASE(n, code, name, len)                                                        \
    case PGCMK_TTLV_##n:                                                                           \
        return name;
        PGCMK_TTLV_TYPES(PGCMK_TYPE_CASE)
#undef PGCMK_TYPE_CASE
    }
    return NULL;
}

const char *
pgcmk_kmip_operation_name(uint32_t op)
{
    switch (op) {
#define PGCMK_OP_CASE(n, v, name)                                                                  \
    case v:                                                                                        \
        return name;
        PGCMK_KMIP_OPERATIONS(PGCMK_OP_CASE)
#undef PGCMK_OP_CASE
    default:
        return NULL;
    }
}

const char *
pgcmk_kmip_result_reason_name(uint32_t rr)
{
    switch (rr) {
#define PGCMK_RR_CASE(n, v, name)                                                                  \
    case v:                                                                                        \
        return name;
        PGCMK_KMIP_RESULT_REASONS(PGCMK_RR_CASE)
#undef PGCMK_RR_CASE
    default:
        return NULL;
    }
}

const char *
pgcmk_ttlv_reason_text(enum pgcmk_ttlv_reason r)
{
    switch (r) {
#define PGCMK_R_CASE(n, text)                                                                      \
    case PGCMK_TTLV_R_##n:                                                                         \
        return text;
        PGCMK_TTLV_REASONS(PGCMK_R_CASE)
#undef PGCMK_R_CASE
    }
    return "unknown reason";
}

/* ---- decode ---- */

static int
ttlv_fail(struct pgcmk_ttlv_err *err, enum pgcmk_ttlv_reason r, size_t off, uint32_t tag)
{
    if (err) {
        err->reason = r;
        err->offset = off;
        err->tag = tag;
        if (tag)
            snprintf(err->message, sizeof(err->message), "%s at offset %zu (tag %06" PRIX32 ")",
                     pgcmk_ttlv_reason_text(r), off, tag);
        else
            snprintf(err->message, sizeof(err->message), "%s at offset %zu",
                     pgcmk_ttlv_reason_text(r), off);
    }
    return -1;
}

static uint32_t
get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static void
put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF; no NUL. */
static int
ttlv_utf8_check(const uint8_t *p, size_t n, enum pgcmk_ttlv_reason *why)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = p[i];
        size_t k;
        uint32_t cp, min;

        if (c == 0) {
            *why = PGCMK_TTLV_R_NUL_IN_TEXT;
            return -1;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            k = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            *why = PGCMK_TTLV_R_BAD_UTF8;
            return -1;
        }
        if (n - i - 1 < k) {
            *why = PGCMK_TTLV_R_BAD_UTF8;
            return -1;
        }
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) {
                *why = PGCMK_TTLV_R_BAD_UTF8;
                return -1;
            }
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            *why = PGCMK_TTLV_R_BAD_UTF8;
            return -1;
        }
        i += k + 1;
    }
    return 0;
}

static int
all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* One item at buf[off..end); end is the enclosing structure's end (or the buffer's). */
static int
ttlv_item(struct dec *d, size_t off, size_t end, int depth, struct pgcmk_ttlv **out, size_t *next)
{
    const uint8_t *h = d->buf + off, *v;
    uint32_t tag, vlen;
    uint8_t type;
    size_t padded, room;
    struct pgcmk_ttlv *n;
    enum pgcmk_ttlv_reason why;
    /* Running past the end is a truncation at the top, an overrun inside a structure. */
    enum pgcmk_ttlv_reason past = depth == 1 ? PGCMK_TTLV_R_TRUNCATED : PGCMK_TTLV_R_STRUCT_OVERRUN;

    if (end - off < PGCMK_TTLV_HDR_LEN)
        return ttlv_fail(d->err, past, off, 0);
    tag = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
    type = h[3];
    vlen = get_be32(h + 4);
    if (depth > PGCMK_TTLV_MAX_DEPTH)
        return ttlv_fail(d->err, PGCMK_TTLV_R_TOO_DEEP, off, tag);
    room = end - off - PGCMK_TTLV_HDR_LEN;
    if (vlen > room)
        return ttlv_fail(d->err, past, off, tag);
    padded = ((size_t)vlen + 7) & ~(size_t)7;
    v = h + PGCMK_TTLV_HDR_LEN;

    switch (type) {
#define PGCMK_LEN_CASE(nm, code, name, flen)                                                       \
    case code:                                                                                     \
        if ((flen) && vlen != (flen))                                                              \
            return ttlv_fail(d->err, PGCMK_TTLV_R_BAD_LENGTH, off, tag);                           \
        break;
        PGCMK_TTLV_TYPES(PGCMK_LEN_CASE)
#undef PGCMK_LEN_CASE
    default:
        return ttlv_fail(d->err, PGCMK_TTLV_R_UNKNOWN_TYPE, off, tag);
    }
    if ((type == PGCMK_TTLV_STRUCTURE || type == PGCMK_TTLV_BIG_INTEGER) && vlen % 8)
        return ttlv_fail(d->err, PGCMK_TTLV_R_BAD_LENGTH, off, tag);
    if (type == PGCMK_TTLV_BIG_INTEGER && vlen == 0)
        return ttlv_fail(d->err, PGCMK_TTLV_R_BAD_LENGTH, off, tag);
    if (padded > room)
        return ttlv_fail(d->err, PGCMK_TTLV_R_BAD_PADDING, off, tag);
    if (!all_zero(v + vlen, padded - vlen))
        return ttlv_fail(d->err, PGCMK_TTLV_R_NONZERO_PADDING, off, tag);

    n = ttlv_node(d->t, tag, (enum pgcmk_ttlv_type)type);
    n->len = vlen;
    switch ((enum pgcmk_ttlv_type)type) {
    case PGCMK_TTLV_STRUCTURE: {
        size_t at = off + PGCMK_TTLV_HDR_LEN, send = at + vlen, nx;
        struct pgcmk_ttlv *child;

        while (at < send) {
            if (ttlv_item(d, at, send, depth + 1, &child, &nx) < 0)
                return -1;
            pgcmk_ttlv_append(n, child);
            at = nx;
        }
        break;
    }
    case PGCMK_TTLV_INTEGER:
        n->v.i32 = (int32_t)get_be32(v);
        break;
    case PGCMK_TTLV_ENUMERATION:
    case PGCMK_TTLV_INTERVAL:
        n->v.u32 = get_be32(v);
        break;
    case PGCMK_TTLV_LONG_INTEGER:
    case PGCMK_TTLV_DATE_TIME:
    case PGCMK_TTLV_DATE_TIME_EXTENDED:
        n->v.i64 = (int64_t)get_be64(v);
        break;
    case PGCMK_TTLV_BOOLEAN: {
        uint64_t b = get_be64(v);

        if (b > 1)
            return ttlv_fail(d->err, PGCMK_TTLV_R_BAD_BOOLEAN, off, tag);
        n->v.boolean = (int)b;
        break;
    }
    case PGCMK_TTLV_TEXT_STRING:
        if (ttlv_utf8_check(v, vlen, &why) < 0)
            return ttlv_fail(d->err, why, off, tag);
        /* fall through */
    case PGCMK_TTLV_BYTE_STRING:
    case PGCMK_TTLV_BIG_INTEGER: {
        uint8_t *copy = arena_alloc(d->t, (size_t)vlen + 1);

        if (vlen)
            memcpy(copy, v, vlen);
        copy[vlen] = 0;
        n->v.bytes = copy;
        break;
    }
    }
    *out = n;
    *next = off + PGCMK_TTLV_HDR_LEN + padded;
    return 0;
}

int
pgcmk_ttlv_decode(const uint8_t *buf, size_t len, struct pgcmk_ttlv_tree *t,
                  struct pgcmk_ttlv_err *err)
{
    struct dec d = {buf, len, t, err};
    struct pgcmk_ttlv *root = NULL;
    size_t next = 0;

    pgcmk_ttlv_tree_release(t);
    if (err) {
        err->reason = PGCMK_TTLV_R_OK;
        err->offset = 0;
        err->tag = 0;
        err->message[0] = 0;
    }
    if (!buf || len == 0)
        return ttlv_fail(err, PGCMK_TTLV_R_EMPTY, 0, 0);
    if (len > PGCMK_TTLV_MAX_LEN)
        return ttlv_fail(err, PGCMK_TTLV_R_TOO_LARGE, 0, 0);
    /* One chunk big enough for the worst case: an item per 8 bytes, every byte copied once. */
    (void)arena_alloc(t, (len / 8) * (sizeof(struct pgcmk_ttlv) + ARENA_ALIGN) + 3 * len + 64);
    t->chunks->used = 0;
    if (ttlv_item(&d, 0, len, 1, &root, &next) < 0) {
        pgcmk_ttlv_tree_release(t);
        return -1;
    }
    if (next != len) {
        pgcmk_ttlv_tree_release(t);
        return ttlv_fail(err, PGCMK_TTLV_R_TRAILING, next, 0);
    }
    t->root = root;
    return 0;
}

/* ---- encode ---- */

/* Size of n on the wire, or 0 on a broken limit or node. */
static size_t
ttlv_len_at(const struct pgcmk_ttlv *n, int depth)
{
    size_t sum = 0, c;
    enum pgcmk_ttlv_reason why;

    if (depth > PGCMK_TTLV_MAX_DEPTH || n->tag > 0xFFFFFF)
        return 0;
    switch (n->type) {
    case PGCMK_TTLV_STRUCTURE:
        for (const struct pgcmk_ttlv *ch = n->first; ch; ch = ch->next) {
            if ((c = ttlv_len_at(ch, depth + 1)) == 0)
                return 0;
            sum += c;
            if (sum > PGCMK_TTLV_MAX_LEN)
                return 0;
        }
        return PGCMK_TTLV_HDR_LEN + sum;
    case PGCMK_TTLV_INTEGER:
    case PGCMK_TTLV_ENUMERATION:
    case PGCMK_TTLV_INTERVAL:
    case PGCMK_TTLV_LONG_INTEGER:
    case PGCMK_TTLV_DATE_TIME:
    case PGCMK_TTLV_DATE_TIME_EXTENDED:
        return PGCMK_TTLV_HDR_LEN + 8;
    case PGCMK_TTLV_BOOLEAN:
        return n->v.boolean == 0 || n->v.boolean == 1 ? PGCMK_TTLV_HDR_LEN + 8 : 0;
    case PGCMK_TTLV_BIG_INTEGER:
        if (n->len == 0 || n->len % 8)
            return 0;
        /* fall through */
    case PGCMK_TTLV_TEXT_STRING:
    case PGCMK_TTLV_BYTE_STRING:
        if (n->len > PGCMK_TTLV_MAX_LEN || (n->len && !n->v.bytes))
            return 0;
        /* the encoder writes nothing its own decoder would refuse */
        if (n->type == PGCMK_TTLV_TEXT_STRING && ttlv_utf8_check(n->v.bytes, n->len, &why) < 0)
            return 0;
        return PGCMK_TTLV_HDR_LEN + (((size_t)n->len + 7) & ~(size_t)7);
    }
    return 0;
}

size_t
pgcmk_ttlv_encoded_len(const struct pgcmk_ttlv *node)
{
    size_t n = node ? ttlv_len_at(node, 1) : 0;

    return n > PGCMK_TTLV_MAX_LEN ? 0 : n;
}

/* Writes n at p (the room was checked by the caller); returns the bytes written. */
static size_t
ttlv_put(const struct pgcmk_ttlv *n, uint8_t *p)
{
    size_t at = PGCMK_TTLV_HDR_LEN, vlen = 0;

    p[0] = (uint8_t)(n->tag >> 16);
    p[1] = (uint8_t)(n->tag >> 8);
    p[2] = (uint8_t)n->tag;
    p[3] = (uint8_t)n->type;
    switch (n->type) {
    case PGCMK_TTLV_STRUCTURE:
        for (const struct pgcmk_ttlv *ch = n->first; ch; ch = ch->next)
            at += ttlv_put(ch, p + at);
        vlen = at - PGCMK_TTLV_HDR_LEN;
        break;
    case PGCMK_TTLV_INTEGER:
        vlen = 4;
        put_be32(p + at, (uint32_t)n->v.i32);
        memset(p + at + 4, 0, 4);
        at += 8;
        break;
    case PGCMK_TTLV_ENUMERATION:
    case PGCMK_TTLV_INTERVAL:
        vlen = 4;
        put_be32(p + at, n->v.u32);
        memset(p + at + 4, 0, 4);
        at += 8;
        break;
    case PGCMK_TTLV_LONG_INTEGER:
    case PGCMK_TTLV_DATE_TIME:
    case PGCMK_TTLV_DATE_TIME_EXTENDED:
        vlen = 8;
        put_be64(p + at, (uint64_t)n->v.i64);
        at += 8;
        break;
    case PGCMK_TTLV_BOOLEAN:
        vlen = 8;
        put_be64(p + at, (uint64_t)n->v.boolean);
        at += 8;
        break;
    case PGCMK_TTLV_TEXT_STRING:
    case PGCMK_TTLV_BYTE_STRING:
    case PGCMK_TTLV_BIG_INTEGER: {
        size_t padded = ((size_t)n->len + 7) & ~(size_t)7;

        vlen = n->len;
        if (vlen)
            memcpy(p + at, n->v.bytes, vlen);
        memset(p + at + vlen, 0, padded - vlen);
        at += padded;
        break;
    }
    }
    put_be32(p + 4, (uint32_t)vlen);
    return at;
}

int
pgcmk_ttlv_encode(const struct pgcmk_ttlv *node, uint8_t *buf, size_t cap, size_t *out_len,
                  struct pgcmk_ttlv_err *err)
{
    size_t need;

    if (out_len)
        *out_len = 0;
    if (!node)
        return ttlv_fail(err, PGCMK_TTLV_R_EMPTY, 0, 0);
    need = ttlv_len_at(node, 1);
    if (need == 0)
        return ttlv_fail(err, PGCMK_TTLV_R_BAD_TREE, 0, node->tag);
    if (need > PGCMK_TTLV_MAX_LEN)
        return ttlv_fail(err, PGCMK_TTLV_R_TOO_LARGE, 0, node->tag);
    if (need > cap)
        return ttlv_fail(err, PGCMK_TTLV_R_NO_SPACE, cap, node->tag);
    ttlv_put(node, buf);
    if (out_len)
        *out_len = need;
    return 0;
}

/* ---- builders ---- */

struct pgcmk_ttlv *
pgcmk_ttlv_new_struct(struct pgcmk_ttlv_tree *t, uint32_t tag)
{
    return ttlv_node(t, tag, PGCMK_TTLV_STRUCTURE);
}

struct pgcmk_ttlv *
pgcmk_ttlv_new_int(struct pgcmk_ttlv_tree *t, uint32_t tag, int32_t v)
{
    struct pgcmk_ttlv *n = ttlv_node(t, tag, PGCMK_TTLV_INTEGER);

    n->v.i32 = v;
    return n;
}

struct pgcmk_ttlv *
pgcmk_ttlv_new_long(struct pgcmk_ttlv_tree *t, uint32_t tag, int64_t v)
{
    struct pgcmk_ttlv *n = ttlv_node(t, tag, PGCMK_TTLV_LONG_INTEGER);

    n->v.i64 = v;
    return n;
}

struct pgcmk_ttlv *
pgcmk_ttlv_new_enum(struct pgcmk_ttlv_tree *t, uint32_t tag, uint32_t v)
{
    struct pgcmk_ttlv *n = ttlv_node(t, tag, PGCMK_TTLV_ENUMERATION);

    n->v.u32 = v;
    return n;
}

struct pgcmk_ttlv *
pgcmk_ttlv_new_bool(struct pgcmk_ttlv_tree *t, uint32_t tag, int v)
{
    struct pgcmk_ttlv *n = ttlv_node(t, tag, PGCMK_TTLV_BOOLEAN);

    n->v.boolean = v ? 1 : 0;
    return n;
}

struct pgcmk_ttlv *
pgcmk_ttlv_new_datetime(struct pgcmk_ttlv_tree *t, uint32_t tag, int64_t v)
{
    struct pgcmk_ttlv *n = ttlv_node(t, tag, PGCMK_TTLV_DATE_TIME);

    n->v.i64 = v;
    return n;
}

struct pgcmk_ttlv *
pgcmk_ttlv_new_datetime_ext(struct pgcmk_ttlv_tree *t, uint32_t tag, int64_t usec)
{
    struct pgcmk_ttlv *n = ttlv_node(t, tag, PGCMK_TTLV_DATE_TIME_EXTENDED);

    n->v.i64 = usec;
    return n;
}

struct pgcmk_ttlv *
pgcmk_ttlv_new_interval(struct pgcmk_ttlv_tree *t, uint32_t tag, uint32_t v)
{
    struct pgcmk_ttlv *n = ttlv_node(t, tag, PGCMK_TTLV_INTERVAL);

    n->v.u32 = v;
    return n;
}

static struct pgcmk_ttlv *
ttlv_new_blob(struct pgcmk_ttlv_tree *t, uint32_t tag, enum pgcmk_ttlv_type type, const void *p,
              size_t n)
{
    struct pgcmk_ttlv *node;
    uint8_t *copy;

    if (n > PGCMK_TTLV_MAX_LEN)
        return NULL;
    node = ttlv_node(t, tag, type);
    copy = arena_alloc(t, n + 1);
    if (n)
        memcpy(copy, p, n);
    copy[n] = 0;
    node->len = (uint32_t)n;
    node->v.bytes = copy;
    return node;
}

struct pgcmk_ttlv *
pgcmk_ttlv_new_text(struct pgcmk_ttlv_tree *t, uint32_t tag, const char *s, size_t n)
{
    return ttlv_new_blob(t, tag, PGCMK_TTLV_TEXT_STRING, s, n);
}

struct pgcmk_ttlv *
pgcmk_ttlv_new_bytes(struct pgcmk_ttlv_tree *t, uint32_t tag, const void *p, size_t n)
{
    return ttlv_new_blob(t, tag, PGCMK_TTLV_BYTE_STRING, p, n);
}

struct pgcmk_ttlv *
pgcmk_ttlv_new_bigint(struct pgcmk_ttlv_tree *t, uint32_t tag, const void *p, size_t n)
{
    if (n == 0 || n % 8)
        return NULL;
    return ttlv_new_blob(t, tag, PGCMK_TTLV_BIG_INTEGER, p, n);
}

struct pgcmk_ttlv *
pgcmk_ttlv_append(struct pgcmk_ttlv *parent, struct pgcmk_ttlv *child)
{
    if (!parent || !child || parent->type != PGCMK_TTLV_STRUCTURE)
        return NULL;
    child->next = NULL;
    if (parent->last)
        parent->last->next = child;
    else
        parent->first = child;
    parent->last = child;
    return child;
}

/* ---- getters ---- */

const struct pgcmk_ttlv *
pgcmk_ttlv_find(const struct pgcmk_ttlv *parent, uint32_t tag)
{
    if (!parent || parent->type != PGCMK_TTLV_STRUCTURE)
        return NULL;
    for (const struct pgcmk_ttlv *c = parent->first; c; c = c->next)
        if (c->tag == tag)
            return c;
    return NULL;
}

const struct pgcmk_ttlv *
pgcmk_ttlv_find_next(const struct pgcmk_ttlv *node)
{
    if (!node)
        return NULL;
    for (const struct pgcmk_ttlv *c = node->next; c; c = c->next)
        if (c->tag == node->tag)
            return c;
    return NULL;
}

static const struct pgcmk_ttlv *
ttlv_find_typed(const struct pgcmk_ttlv *parent, uint32_t tag, enum pgcmk_ttlv_type type)
{
    const struct pgcmk_ttlv *n = pgcmk_ttlv_find(parent, tag);

    return n && n->type == type ? n : NULL;
}

int
pgcmk_ttlv_get_int(const struct pgcmk_ttlv *parent, uint32_t tag, int32_t *out)
{
    const struct pgcmk_ttlv *n = ttlv_find_typed(parent, tag, PGCMK_TTLV_INTEGER);

    if (!n)
        return -1;
    *out = n->v.i32;
    return 0;
}

int
pgcmk_ttlv_get_enum(const struct pgcmk_ttlv *parent, uint32_t tag, uint32_t *out)
{
    const struct pgcmk_ttlv *n = ttlv_find_typed(parent, tag, PGCMK_TTLV_ENUMERATION);

    if (!n)
        return -1;
    *out = n->v.u32;
    return 0;
}

int
pgcmk_ttlv_get_long(const struct pgcmk_ttlv *parent, uint32_t tag, int64_t *out)
{
    const struct pgcmk_ttlv *n = ttlv_find_typed(parent, tag, PGCMK_TTLV_LONG_INTEGER);

    if (!n)
        n = ttlv_find_typed(parent, tag, PGCMK_TTLV_DATE_TIME);
    if (!n)
        return -1;
    *out = n->v.i64;
    return 0;
}

int
pgcmk_ttlv_get_text(const struct pgcmk_ttlv *parent, uint32_t tag, const char **s, size_t *n)
{
    const struct pgcmk_ttlv *x = ttlv_find_typed(parent, tag, PGCMK_TTLV_TEXT_STRING);

    if (!x)
        return -1;
    *s = (const char *)x->v.bytes;
    if (n)
        *n = x->len;
    return 0;
}

int
pgcmk_ttlv_get_bytes(const struct pgcmk_ttlv *parent, uint32_t tag, const uint8_t **p, size_t *n)
{
    const struct pgcmk_ttlv *x = ttlv_find_typed(parent, tag, PGCMK_TTLV_BYTE_STRING);

    if (!x)
        return -1;
    *p = x->v.bytes;
    *n = x->len;
    return 0;
}

/* ---- dump ---- */

struct out {
    char *buf;
    size_t cap, len;
};

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out_printf(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int r;
    size_t room = o->len < o->cap ? o->cap - o->len : 0;

    va_start(ap, fmt);
    r = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (r > 0)
        o->len += (size_t)r;
}

static void
ttlv_dump_at(const struct pgcmk_ttlv *n, struct out *o, int depth)
{
    const char *name = pgcmk_kmip_tag_name(n->tag), *s;

    if (depth > PGCMK_TTLV_MAX_DEPTH)
        return;
    out_printf(o, "%*s", 2 * (depth - 1), "");
    if (name)
        out_printf(o, "%s", name);
    else
        out_printf(o, "%06" PRIX32, n->tag);
    out_printf(o, " %s", pgcmk_ttlv_type_name(n->type) ? pgcmk_ttlv_type_name(n->type) : "?");
    switch (n->type) {
    case PGCMK_TTLV_STRUCTURE:
        out_printf(o, "\n");
        for (const struct pgcmk_ttlv *c = n->first; c; c = c->next)
            ttlv_dump_at(c, o, depth + 1);
        return;
    case PGCMK_TTLV_INTEGER:
        out_printf(o, " = %" PRId32, n->v.i32);
        break;
    case PGCMK_TTLV_ENUMERATION:
        out_printf(o, " = 0x%" PRIX32, n->v.u32);
        if (n->tag == PGCMK_KMIP_TAG_OPERATION && (s = pgcmk_kmip_operation_name(n->v.u32)))
            out_printf(o, " (%s)", s);
        else if (n->tag == PGCMK_KMIP_TAG_RESULT_REASON &&
                 (s = pgcmk_kmip_result_reason_name(n->v.u32)))
            out_printf(o, " (%s)", s);
        break;
    case PGCMK_TTLV_INTERVAL:
        out_printf(o, " = %" PRIu32, n->v.u32);
        break;
    case PGCMK_TTLV_LONG_INTEGER:
    case PGCMK_TTLV_DATE_TIME:
    case PGCMK_TTLV_DATE_TIME_EXTENDED:
        out_printf(o, " = %" PRId64, n->v.i64);
        break;
    case PGCMK_TTLV_BOOLEAN:
        out_printf(o, " = %s", n->v.boolean ? "true" : "false");
        break;
    case PGCMK_TTLV_TEXT_STRING:
        out_printf(o, " = '%.128s'", (const char *)n->v.bytes);
        break;
    case PGCMK_TTLV_BYTE_STRING:
    case PGCMK_TTLV_BIG_INTEGER:
        out_printf(o, " = <%" PRIu32 " bytes>", n->len);
        break;
    }
    out_printf(o, "\n");
}

size_t
pgcmk_ttlv_dump(const struct pgcmk_ttlv *node, char *buf, size_t cap)
{
    struct out o = {buf, cap, 0};

    if (cap)
        buf[0] = 0;
    if (node)
        ttlv_dump_at(node, &o, 1);
    if (cap && o.len >= cap)
        buf[cap - 1] = 0;
    return o.len;
}
