/* kmip.c - the agent as a KMIP client (include/pgcmk/kmipc.h): libkmip's requests over a
 * blocking mutual-TLS connection per call (OpenSSL), answers read with the TTLV codec, and the
 * outcome told apart as an outage (retried) or a loss of access.
 *
 * DESIGN.md rule: the agent reaches a key store only over its wire protocol. This file never
 * calls src/kmip/ (it uses the codec of include/pgcmk/kmip.h, a pure module), so it works the
 * same against pgcmk's KMIP server and against PyKMIP.
 *
 * Secrets: key material (the principal key, the DEK) lives in stack buffers and TTLV arenas that
 * are wiped (OPENSSL_cleanse, pgcmk_ttlv_tree_release) before they go; request buffers that hold
 * a key are wiped before free. Nothing here logs key bytes. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "pgcmk/agent.h"
#include "pgcmk/core.h"
#include "pgcmk/crypto.h"
#include "pgcmk/kmip.h"
#include "pgcmk/kmipc.h"
#include "pgcmk/log.h"

#define KC_TIMEOUT_MS   5000
#define KC_RETRIES      2
#define KC_BACKOFF_MS   100 /* 100 ms, then 200 ms, ... */
#define KC_MAX_RESPONSE 8192
#define KC_ALG          "kmip-A256GCM"

/* ---- requests ----------------------------------------------------------------------------- */

static struct pgcmk_ttlv *
kc_request(struct pgcmk_ttlv_tree *t, int minor, int64_t ts, uint32_t op,
           struct pgcmk_ttlv **payload)
{
    struct pgcmk_ttlv *msg = pgcmk_ttlv_new_struct(t, PGCMK_KMIP_TAG_REQUEST_MESSAGE);
    struct pgcmk_ttlv *hdr =
        pgcmk_ttlv_append(msg, pgcmk_ttlv_new_struct(t, PGCMK_KMIP_TAG_REQUEST_HEADER));
    struct pgcmk_ttlv *pv =
        pgcmk_ttlv_append(hdr, pgcmk_ttlv_new_struct(t, PGCMK_KMIP_TAG_PROTOCOL_VERSION));
    struct pgcmk_ttlv *bi;

    pgcmk_ttlv_append(pv, pgcmk_ttlv_new_int(t, PGCMK_KMIP_TAG_PROTOCOL_VERSION_MAJOR, 1));
    pgcmk_ttlv_append(pv, pgcmk_ttlv_new_int(t, PGCMK_KMIP_TAG_PROTOCOL_VERSION_MINOR, minor));
    pgcmk_ttlv_append(hdr,
                      pgcmk_ttlv_new_int(t, PGCMK_KMIP_TAG_MAXIMUM_RESPONSE_SIZE, KC_MAX_RESPONSE));
    pgcmk_ttlv_append(hdr, pgcmk_ttlv_new_datetime(t, PGCMK_KMIP_TAG_TIME_STAMP, ts));
    pgcmk_ttlv_append(hdr, pgcmk_ttlv_new_int(t, PGCMK_KMIP_TAG_BATCH_COUNT, 1));
    bi = pgcmk_ttlv_append(msg, pgcmk_ttlv_new_struct(t, PGCMK_KMIP_TAG_BATCH_ITEM));
    pgcmk_ttlv_append(bi, pgcmk_ttlv_new_enum(t, PGCMK_KMIP_TAG_OPERATION, op));
    *payload = pgcmk_ttlv_append(bi, pgcmk_ttlv_new_struct(t, PGCMK_KMIP_TAG_REQUEST_PAYLOAD));
    return msg;
}

/* Attribute{Attribute Name, Attribute Value}; value's tag is set to ATTRIBUTE_VALUE. */
static void
kc_attr(struct pgcmk_ttlv_tree *t, struct pgcmk_ttlv *parent, const char *name,
        struct pgcmk_ttlv *value)
{
    struct pgcmk_ttlv *a =
        pgcmk_ttlv_append(parent, pgcmk_ttlv_new_struct(t, PGCMK_KMIP_TAG_ATTRIBUTE));

    pgcmk_ttlv_append(a, pgcmk_ttlv_new_text(t, PGCMK_KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name)));
    value->tag = PGCMK_KMIP_TAG_ATTRIBUTE_VALUE;
    pgcmk_ttlv_append(a, value);
}

static struct pgcmk_ttlv *
kc_name_value(struct pgcmk_ttlv_tree *t, const char *name)
{
    struct pgcmk_ttlv *v = pgcmk_ttlv_new_struct(t, PGCMK_KMIP_TAG_ATTRIBUTE_VALUE);

    pgcmk_ttlv_append(v, pgcmk_ttlv_new_text(t, PGCMK_KMIP_TAG_NAME_VALUE, name, strlen(name)));
    pgcmk_ttlv_append(v, pgcmk_ttlv_new_enum(t, PGCMK_KMIP_TAG_NAME_TYPE, 1)); /* text string */
    return v;
}

static unsigned char *
kc_encode(struct pgcmk_ttlv_tree *t, struct pgcmk_ttlv *msg, size_t *len)
{
    size_t n = pgcmk_ttlv_encoded_len(msg), out = 0;
    unsigned char *buf;
    struct pgcmk_ttlv_err err;

    *len = 0;
    if (n == 0) {
        pgcmk_ttlv_tree_release(t);
        return NULL;
    }
    buf = pgcmk_xmalloc(n);
    if (pgcmk_ttlv_encode(msg, buf, n, &out, &err)) {
        OPENSSL_cleanse(buf, n);
        free(buf);
        pgcmk_ttlv_tree_release(t);
        return NULL;
    }
    pgcmk_ttlv_tree_release(t);
    *len = out;
    return buf;
}

unsigned char *
pgcmk_kmipc_build_register(const char *name, const unsigned char *key, size_t key_len, int64_t ts,
                           size_t *len)
{
    struct pgcmk_ttlv_tree t;
    struct pgcmk_ttlv *p, *msg, *ta, *sk, *kb, *kv;

    pgcmk_ttlv_tree_init(&t);
    msg = kc_request(&t, 4, ts, PGCMK_KMIP_OP_REGISTER, &p);
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_enum(&t, PGCMK_KMIP_TAG_OBJECT_TYPE, 2)); /* symmetric */
    ta = pgcmk_ttlv_append(p, pgcmk_ttlv_new_struct(&t, PGCMK_KMIP_TAG_TEMPLATE_ATTRIBUTE));
    kc_attr(&t, ta, "Cryptographic Algorithm", pgcmk_ttlv_new_enum(&t, 0, 3)); /* AES */
    kc_attr(&t, ta, "Cryptographic Length", pgcmk_ttlv_new_int(&t, 0, (int32_t)(key_len * 8)));
    kc_attr(&t, ta, "Cryptographic Usage Mask", pgcmk_ttlv_new_int(&t, 0, 12));
    kc_attr(&t, ta, "Name", kc_name_value(&t, name));
    sk = pgcmk_ttlv_append(p, pgcmk_ttlv_new_struct(&t, PGCMK_KMIP_TAG_SYMMETRIC_KEY));
    kb = pgcmk_ttlv_append(sk, pgcmk_ttlv_new_struct(&t, PGCMK_KMIP_TAG_KEY_BLOCK));
    pgcmk_ttlv_append(kb, pgcmk_ttlv_new_enum(&t, PGCMK_KMIP_TAG_KEY_FORMAT_TYPE, 1)); /* raw */
    /* libkmip sends Key Compression Type 1 (EC Public Key Type Uncompressed): servers accept it */
    pgcmk_ttlv_append(kb, pgcmk_ttlv_new_enum(&t, PGCMK_KMIP_TAG_KEY_COMPRESSION_TYPE, 1));
    kv = pgcmk_ttlv_append(kb, pgcmk_ttlv_new_struct(&t, PGCMK_KMIP_TAG_KEY_VALUE));
    pgcmk_ttlv_append(kv, pgcmk_ttlv_new_bytes(&t, PGCMK_KMIP_TAG_KEY_MATERIAL, key, key_len));
    pgcmk_ttlv_append(kb, pgcmk_ttlv_new_enum(&t, PGCMK_KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, 3));
    pgcmk_ttlv_append(
        kb, pgcmk_ttlv_new_int(&t, PGCMK_KMIP_TAG_CRYPTOGRAPHIC_LENGTH, (int32_t)(key_len * 8)));
    return kc_encode(&t, msg, len);
}

unsigned char *
pgcmk_kmipc_build_locate(const char *name, int64_t ts, size_t *len)
{
    struct pgcmk_ttlv_tree t;
    struct pgcmk_ttlv *p, *msg;

    pgcmk_ttlv_tree_init(&t);
    msg = kc_request(&t, 0, ts, PGCMK_KMIP_OP_LOCATE, &p);
    pgcmk_ttlv_append(p,
                      pgcmk_ttlv_new_int(&t, PGCMK_KMIP_TAG_MAXIMUM_ITEMS, PGCMK_KMIPC_MAX_ITEMS));
    kc_attr(&t, p, "Object Type", pgcmk_ttlv_new_enum(&t, 0, 2));
    kc_attr(&t, p, "Name", kc_name_value(&t, name));
    return kc_encode(&t, msg, len);
}

unsigned char *
pgcmk_kmipc_build_get(const char *uid, int64_t ts, size_t *len)
{
    struct pgcmk_ttlv_tree t;
    struct pgcmk_ttlv *p, *msg;

    pgcmk_ttlv_tree_init(&t);
    msg = kc_request(&t, 0, ts, PGCMK_KMIP_OP_GET, &p);
    pgcmk_ttlv_append(p,
                      pgcmk_ttlv_new_text(&t, PGCMK_KMIP_TAG_UNIQUE_IDENTIFIER, uid, strlen(uid)));
    return kc_encode(&t, msg, len);
}

unsigned char *
pgcmk_kmipc_build_get_state(const char *uid, int64_t ts, size_t *len)
{
    struct pgcmk_ttlv_tree t;
    struct pgcmk_ttlv *p, *msg;

    pgcmk_ttlv_tree_init(&t);
    msg = kc_request(&t, 0, ts, PGCMK_KMIP_OP_GET_ATTRIBUTES, &p);
    pgcmk_ttlv_append(p,
                      pgcmk_ttlv_new_text(&t, PGCMK_KMIP_TAG_UNIQUE_IDENTIFIER, uid, strlen(uid)));
    pgcmk_ttlv_append(p, pgcmk_ttlv_new_text(&t, PGCMK_KMIP_TAG_ATTRIBUTE_NAME, "State", 5));
    return kc_encode(&t, msg, len);
}

/* ---- responses ---------------------------------------------------------------------------- */

static int kc_why(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
kc_why(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (why && cap) {
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void
kc_copy_text(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

static void
kc_read_payload(const struct pgcmk_ttlv *pl, uint32_t op, struct pgcmk_kmipc_reply *r)
{
    const struct pgcmk_ttlv *u = pgcmk_ttlv_find(pl, PGCMK_KMIP_TAG_UNIQUE_IDENTIFIER);

    for (; u && r->n_uids < PGCMK_KMIPC_MAX_ITEMS; u = pgcmk_ttlv_find_next(u)) {
        if (u->type != PGCMK_TTLV_TEXT_STRING || u->len == 0 || u->len >= PGCMK_KMIPC_UID_LEN)
            continue;
        kc_copy_text(r->uids[r->n_uids++], PGCMK_KMIPC_UID_LEN, (const char *)u->v.bytes, u->len);
    }
    if (op == PGCMK_KMIP_OP_GET) {
        const struct pgcmk_ttlv *sk = pgcmk_ttlv_find(pl, PGCMK_KMIP_TAG_SYMMETRIC_KEY);
        const struct pgcmk_ttlv *kb = sk ? pgcmk_ttlv_find(sk, PGCMK_KMIP_TAG_KEY_BLOCK) : NULL;
        const struct pgcmk_ttlv *kv = kb ? pgcmk_ttlv_find(kb, PGCMK_KMIP_TAG_KEY_VALUE) : NULL;
        const struct pgcmk_ttlv *km = kv ? pgcmk_ttlv_find(kv, PGCMK_KMIP_TAG_KEY_MATERIAL) : NULL;
        const uint8_t *p = NULL;
        size_t n = 0;

        if (km && km->type == PGCMK_TTLV_STRUCTURE) /* Transparent Symmetric Key */
            (void)pgcmk_ttlv_get_bytes(km, PGCMK_KMIP_TAG_KEY, &p, &n);
        else if (kv)
            (void)pgcmk_ttlv_get_bytes(kv, PGCMK_KMIP_TAG_KEY_MATERIAL, &p, &n);
        if (p && n > PGCMK_KMIPC_MAX_KEY) {
            r->key_too_long = 1;
        } else if (p) {
            memcpy(r->key, p, n);
            r->key_len = n;
        }
    }
    if (op == PGCMK_KMIP_OP_GET_ATTRIBUTES) {
        for (const struct pgcmk_ttlv *a = pgcmk_ttlv_find(pl, PGCMK_KMIP_TAG_ATTRIBUTE); a;
             a = pgcmk_ttlv_find_next(a)) {
            const char *nm;
            size_t nl;
            uint32_t v;

            if (pgcmk_ttlv_get_text(a, PGCMK_KMIP_TAG_ATTRIBUTE_NAME, &nm, &nl) == 0 && nl == 5 &&
                memcmp(nm, "State", 5) == 0 &&
                pgcmk_ttlv_get_enum(a, PGCMK_KMIP_TAG_ATTRIBUTE_VALUE, &v) == 0)
                r->state = v;
        }
    }
}

int
pgcmk_kmipc_parse_response(const unsigned char *buf, size_t len, uint32_t op,
                           struct pgcmk_kmipc_reply *r, char *why, size_t why_cap)
{
    struct pgcmk_ttlv_tree t;
    struct pgcmk_ttlv_err err;
    const struct pgcmk_ttlv *bi, *pl;
    uint32_t status, rop;
    const char *msg;
    size_t mlen;
    int rc = -1;

    memset(r, 0, sizeof(*r));
    pgcmk_ttlv_tree_init(&t);
    if (pgcmk_ttlv_decode(buf, len, &t, &err)) {
        kc_why(why, why_cap, "not a KMIP message: %s at offset %zu",
               pgcmk_ttlv_reason_text(err.reason), err.offset);
        goto out;
    }
    if (t.root->tag != PGCMK_KMIP_TAG_RESPONSE_MESSAGE || t.root->type != PGCMK_TTLV_STRUCTURE) {
        kc_why(why, why_cap, "not a KMIP Response Message");
        goto out;
    }
    if (!pgcmk_ttlv_find(t.root, PGCMK_KMIP_TAG_RESPONSE_HEADER)) {
        kc_why(why, why_cap, "a response without a Response Header");
        goto out;
    }
    bi = pgcmk_ttlv_find(t.root, PGCMK_KMIP_TAG_BATCH_ITEM);
    if (!bi || bi->type != PGCMK_TTLV_STRUCTURE ||
        pgcmk_ttlv_get_enum(bi, PGCMK_KMIP_TAG_RESULT_STATUS, &status)) {
        kc_why(why, why_cap, "a response without a Batch Item and its Result Status");
        goto out;
    }
    if (pgcmk_ttlv_get_enum(bi, PGCMK_KMIP_TAG_OPERATION, &rop) == 0) {
        r->operation = rop;
        if (rop != op) {
            kc_why(why, why_cap, "a response to %s, not to %s",
                   pgcmk_kmip_operation_name(rop) ? pgcmk_kmip_operation_name(rop) : "?",
                   pgcmk_kmip_operation_name(op) ? pgcmk_kmip_operation_name(op) : "?");
            goto out;
        }
    }
    r->ok = status == 0;
    if (!r->ok) {
        if (pgcmk_ttlv_get_enum(bi, PGCMK_KMIP_TAG_RESULT_REASON, &r->result_reason))
            r->result_reason = 0;
        if (pgcmk_ttlv_get_text(bi, PGCMK_KMIP_TAG_RESULT_MESSAGE, &msg, &mlen) == 0)
            kc_copy_text(r->result_message, sizeof(r->result_message), msg, mlen);
        rc = 0;
        goto out;
    }
    pl = pgcmk_ttlv_find(bi, PGCMK_KMIP_TAG_RESPONSE_PAYLOAD);
    if (pl && pl->type == PGCMK_TTLV_STRUCTURE)
        kc_read_payload(pl, op, r);
    rc = 0;
out:
    pgcmk_ttlv_tree_release(&t);
    return rc;
}

/* ---- transport ---------------------------------------------------------------------------- */

enum kc_outcome {
    KC_OK,
    KC_OUTAGE,    /* no connection, timeout, reset, garbage */
    KC_REFUSED,   /* the server refused our certificate at the handshake */
    KC_UNTRUSTED, /* the server's certificate does not verify against ca_path */
    KC_CONFIG,    /* our certificate, key or CA file does not load */
};

struct kc_io {
    enum kc_outcome outcome;
    char why[256];
};

static enum kc_outcome kc_set(struct kc_io *io, enum kc_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum kc_outcome
kc_set(struct kc_io *io, enum kc_outcome o, const char *fmt, ...)
{
    va_list ap;

    io->outcome = o;
    va_start(ap, fmt);
    vsnprintf(io->why, sizeof(io->why), fmt, ap);
    va_end(ap);
    return o;
}

static int
kc_timeout(const struct pgcmk_kmipc_target *t)
{
    return t->timeout_ms > 0 ? t->timeout_ms : KC_TIMEOUT_MS;
}

/* A TCP connection within the timeout; -1 with io set (outage). */
static int
kc_connect(const struct pgcmk_kmipc_target *t, struct kc_io *io)
{
    struct addrinfo hints, *ai = NULL, *a;
    char port[16];
    int fd = -1, rc, last = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", t->port);
    rc = getaddrinfo(t->host, port, &hints, &ai);
    if (rc) {
        kc_set(io, KC_OUTAGE, "cannot resolve %s (%s)", t->host, gai_strerror(rc));
        return -1;
    }
    for (a = ai; a; a = a->ai_next) {
        struct pollfd pfd;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        struct timeval tv;
        int ms = kc_timeout(t), one = 1;

        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        rc = connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc < 0 && errno == EINPROGRESS) {
            pfd.fd = fd;
            pfd.events = POLLOUT;
            do
                rc = poll(&pfd, 1, ms);
            while (rc < 0 && errno == EINTR);
            if (rc == 0) {
                last = ETIMEDOUT;
                close(fd);
                fd = -1;
                continue;
            }
            if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
                last = soerr ? soerr : errno;
                close(fd);
                fd = -1;
                continue;
            }
        } else if (rc < 0) {
            last = errno;
            close(fd);
            fd = -1;
            continue;
        }
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        tv.tv_sec = ms / 1000;
        tv.tv_usec = (ms % 1000) * 1000;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        /* the request follows the handshake's last flight: no Nagle wait for its ACK */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        break;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        kc_set(io, KC_OUTAGE, "cannot connect to %s:%d (%s)", t->host, t->port,
               last == ETIMEDOUT ? "timed out" : strerror(last));
    return fd;
}

/* TLS contexts by their files, reused while none of the files changed (a client certificate
 * issued again in the same files makes a new context): loading a key and a CA per call costs
 * more than the handshake on a loaded machine. */
#define KC_CTX_CACHE 16

struct kc_file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct kc_cached {
    char *key; /* "cert\nkey\nca" */
    struct kc_file_id ids[3];
    SSL_CTX *ctx;
    unsigned long used;
};

static pthread_mutex_t kc_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kc_cached kc_cache[KC_CTX_CACHE];
static unsigned long kc_cache_tick;

static void
kc_file_ids(const char *const paths[3], struct kc_file_id ids[3])
{
    memset(ids, 0, 3 * sizeof(ids[0]));
    for (int i = 0; i < 3; i++) {
        struct stat st;

        if (paths[i] && stat(paths[i], &st) == 0) {
            ids[i].dev = st.st_dev;
            ids[i].ino = st.st_ino;
            ids[i].size = st.st_size;
            ids[i].mtime = st.st_mtim;
        }
    }
}

static SSL_CTX *kc_ctx_load(const struct pgcmk_kmipc_target *t, struct kc_io *io);

/* A context for t's files (a reference the caller frees), from the cache when the files are
 * the same as when it was loaded. */
static SSL_CTX *
kc_ctx(const struct pgcmk_kmipc_target *t, struct kc_io *io)
{
    const char *cert = t->cert_path && *t->cert_path ? t->cert_path : t->key_path;
    const char *paths[3] = {cert, t->key_path, t->ca_path};
    struct kc_file_id ids[3];
    char *key = pgcmk_xasprintf("%s\n%s\n%s", cert ? cert : "", t->key_path ? t->key_path : "",
                                t->ca_path ? t->ca_path : "");
    SSL_CTX *ctx = NULL;
    int slot = 0;

    kc_file_ids(paths, ids);
    pthread_mutex_lock(&kc_cache_mu);
    for (int i = 0; i < KC_CTX_CACHE; i++) {
        if (kc_cache[i].key && strcmp(kc_cache[i].key, key) == 0) {
            if (memcmp(kc_cache[i].ids, ids, sizeof(ids)) == 0) {
                ctx = kc_cache[i].ctx;
                SSL_CTX_up_ref(ctx);
                kc_cache[i].used = ++kc_cache_tick;
            }
            slot = i;
            break;
        }
        if (kc_cache[i].used < kc_cache[slot].used)
            slot = i;
    }
    pthread_mutex_unlock(&kc_cache_mu);
    if (ctx) {
        free(key);
        return ctx;
    }
    ctx = kc_ctx_load(t, io);
    if (!ctx) {
        free(key);
        return NULL;
    }
    pthread_mutex_lock(&kc_cache_mu);
    if (kc_cache[slot].ctx)
        SSL_CTX_free(kc_cache[slot].ctx);
    free(kc_cache[slot].key);
    kc_cache[slot].key = key;
    memcpy(kc_cache[slot].ids, ids, sizeof(ids));
    kc_cache[slot].ctx = ctx;
    kc_cache[slot].used = ++kc_cache_tick;
    SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&kc_cache_mu);
    return ctx;
}

static SSL_CTX *
kc_ctx_load(const struct pgcmk_kmipc_target *t, struct kc_io *io)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    const char *cert = t->cert_path && *t->cert_path ? t->cert_path : t->key_path;

    if (!ctx) {
        kc_set(io, KC_OUTAGE, "cannot make a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (!cert || !t->key_path || !*t->key_path ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        kc_set(io, KC_CONFIG, "the client certificate file '%s' does not load",
               cert ? cert : "(none)");
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, t->key_path, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        kc_set(io, KC_CONFIG,
               "the client key file '%s' does not load or does not match the "
               "certificate",
               t->key_path);
        goto fail;
    }
    if (!t->ca_path || !*t->ca_path || SSL_CTX_load_verify_locations(ctx, t->ca_path, NULL) != 1) {
        kc_set(io, KC_CONFIG, "the CA file '%s' does not load", t->ca_path ? t->ca_path : "(none)");
        goto fail;
    }
    /* pg_tde's older setups pass the server's own certificate as the CA: trust it as an anchor */
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    ERR_clear_error();
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* What a failed SSL call means: an alert from the server about our certificate is a refusal, a
 * server certificate that does not verify is untrusted, anything else an outage. */
static enum kc_outcome
kc_ssl_fail(SSL *ssl, int ret, const char *during, struct kc_io *io)
{
    int e = SSL_get_error(ssl, ret);
    unsigned long q = ERR_peek_last_error();
    int reason = q ? ERR_GET_REASON(q) : 0;
    long vr = SSL_get_verify_result(ssl);
    int saved = errno;

    ERR_clear_error();
    if (e == SSL_ERROR_SSL && reason >= SSL_AD_REASON_OFFSET) {
        int alert = reason - SSL_AD_REASON_OFFSET;

        switch (alert) {
        case SSL_AD_HANDSHAKE_FAILURE:
        case SSL_AD_BAD_CERTIFICATE:
        case SSL_AD_UNSUPPORTED_CERTIFICATE:
        case SSL_AD_CERTIFICATE_REVOKED:
        case SSL_AD_CERTIFICATE_EXPIRED:
        case SSL_AD_CERTIFICATE_UNKNOWN:
        case SSL_AD_UNKNOWN_CA:
        case SSL_AD_ACCESS_DENIED:
        case SSL_AD_CERTIFICATE_REQUIRED:
            return kc_set(io, KC_REFUSED,
                          "the server refused the client certificate at the TLS "
                          "handshake (alert %s)",
                          SSL_alert_desc_string_long(alert));
        default:
            return kc_set(io, KC_OUTAGE, "TLS alert %s %s", SSL_alert_desc_string_long(alert),
                          during);
        }
    }
    if (e == SSL_ERROR_SSL && vr != X509_V_OK)
        return kc_set(io, KC_UNTRUSTED,
                      "the server's certificate does not verify against the CA "
                      "file (%s)",
                      X509_verify_cert_error_string(vr));
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
        (e == SSL_ERROR_SYSCALL && (saved == EAGAIN || saved == EWOULDBLOCK)))
        return kc_set(io, KC_OUTAGE, "timed out %s", during);
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && saved == 0) ||
        (e == SSL_ERROR_SSL && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING))
        return kc_set(io, KC_OUTAGE, "the connection was closed %s", during);
    if (e == SSL_ERROR_SYSCALL)
        return kc_set(io, KC_OUTAGE, "%s %s", strerror(saved ? saved : EIO), during);
    return kc_set(io, KC_OUTAGE, "TLS failure %s (%s)", during,
                  reason ? ERR_reason_error_string(q) ? ERR_reason_error_string(q) : "?" : "?");
}

static int
kc_read_full(SSL *ssl, unsigned char *buf, size_t n, struct kc_io *io)
{
    size_t got = 0;

    while (got < n) {
        size_t r = 0;
        int ret = SSL_read_ex(ssl, buf + got, n - got, &r);

        if (ret <= 0) {
            kc_ssl_fail(ssl, ret, "before an answer", io);
            return -1;
        }
        got += r;
    }
    return 0;
}

/* One request, one answer, one connection. *resp is malloc'd (wipe before free). */
static enum kc_outcome
kc_exchange(const struct pgcmk_kmipc_target *t, const unsigned char *req, size_t req_len,
            unsigned char **resp, size_t *resp_len, struct kc_io *io)
{
    SSL_CTX *ctx;
    SSL *ssl = NULL;
    int fd = -1, ret;
    unsigned char hdr[8];
    uint32_t len;
    size_t w = 0;

    *resp = NULL;
    *resp_len = 0;
    memset(io, 0, sizeof(*io));
    ctx = kc_ctx(t, io);
    if (!ctx)
        return io->outcome;
    fd = kc_connect(t, io);
    if (fd < 0)
        goto out;
    ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        kc_set(io, KC_OUTAGE, "cannot start TLS");
        goto out;
    }
    {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

        if (X509_VERIFY_PARAM_set1_ip_asc(vp, t->host) != 1) {
            X509_VERIFY_PARAM_set1_host(vp, t->host, 0);
            SSL_set_tlsext_host_name(ssl, t->host);
        }
    }
    ret = SSL_connect(ssl);
    if (ret != 1) {
        kc_ssl_fail(ssl, ret, "during the TLS handshake", io);
        goto out;
    }
    ret = SSL_write_ex(ssl, req, req_len, &w);
    if (ret <= 0) {
        kc_ssl_fail(ssl, ret, "while sending the request", io);
        goto out;
    }
    if (kc_read_full(ssl, hdr, sizeof(hdr), io))
        goto out;
    len = (uint32_t)hdr[4] << 24 | (uint32_t)hdr[5] << 16 | (uint32_t)hdr[6] << 8 | hdr[7];
    if (hdr[0] != 0x42 || hdr[3] != PGCMK_TTLV_STRUCTURE || len > PGCMK_TTLV_MAX_LEN - 8 ||
        len % 8) {
        kc_set(io, KC_OUTAGE, "the server answered bytes that are not a KMIP message");
        goto out;
    }
    *resp = pgcmk_xmalloc(len + 8);
    memcpy(*resp, hdr, 8);
    if (kc_read_full(ssl, *resp + 8, len, io)) {
        OPENSSL_cleanse(*resp, len + 8);
        free(*resp);
        *resp = NULL;
        goto out;
    }
    *resp_len = len + 8;
    io->outcome = KC_OK;
out:
    if (ssl) {
        if (io->outcome == KC_OK)
            (void)SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return io->outcome;
}

/* ---- calls: exchange, parse, classify, retry ---------------------------------------------- */

const char *
pgcmk_kmip_state_name(uint32_t state)
{
    switch (state) {
    case PGCMK_KMIP_STATE_PRE_ACTIVE:
        return "Pre-Active";
    case PGCMK_KMIP_STATE_ACTIVE:
        return "Active";
    case PGCMK_KMIP_STATE_DEACTIVATED:
        return "Deactivated";
    case PGCMK_KMIP_STATE_COMPROMISED:
        return "Compromised";
    case PGCMK_KMIP_STATE_DESTROYED:
        return "Destroyed";
    case PGCMK_KMIP_STATE_DESTROYED_COMPROMISED:
        return "Destroyed Compromised";
    default:
        return "unknown";
    }
}

/* What the call is about, for messages. */
struct kc_what {
    const char *name, *uid;
};

static void
kc_subject(const struct kc_what *w, char *out, size_t cap)
{
    if (w->name && w->uid)
        snprintf(out, cap, "the key '%.100s' (Unique Identifier %.64s)", w->name, w->uid);
    else if (w->name)
        snprintf(out, cap, "the key '%.100s'", w->name);
    else
        snprintf(out, cap, "the key with Unique Identifier %.64s", w->uid ? w->uid : "?");
}

/* 0 with *r (a success reply), or -1 with res. The request is sent again after an outage. */
static int
kc_call(const struct pgcmk_kmipc_target *t, uint32_t op, const unsigned char *req, size_t req_len,
        const struct kc_what *w, struct pgcmk_kmipc_reply *r, struct pgcmk_agent_result *res)
{
    int retries = t->retries < 0 ? KC_RETRIES : t->retries;
    const char *opn = pgcmk_kmip_operation_name(op);
    char subj[200];

    memset(res, 0, sizeof(*res));
    kc_subject(w, subj, sizeof(subj));
    for (int attempt = 0;; attempt++) {
        struct kc_io io;
        unsigned char *resp = NULL;
        size_t resp_len = 0;
        char why[160] = "";
        int parsed = -1;

        enum kc_outcome o = kc_exchange(t, req, req_len, &resp, &resp_len, &io);

        if (o == KC_OK) {
            parsed = pgcmk_kmipc_parse_response(resp, resp_len, op, r, why, sizeof(why));
            OPENSSL_cleanse(resp, resp_len);
            free(resp);
            if (parsed == 0 && r->ok)
                return 0;
            if (parsed == 0) {
                const char *rr = pgcmk_kmip_result_reason_name(r->result_reason);

                switch (r->result_reason) {
                case PGCMK_KMIP_RR_ITEM_NOT_FOUND:
                    return pgcmk_agent_fail(
                        res, PGCMK_E_KMIP_KEY_NOT_FOUND, 1,
                        "KMIP server %s:%d: %s was not found (%s: Item Not Found: "
                        "%.120s).",
                        t->host, t->port, subj, opn, r->result_message);
                case PGCMK_KMIP_RR_PERMISSION_DENIED:
                case PGCMK_KMIP_RR_AUTHENTICATION_NOT_SUCCESSFUL:
                    return pgcmk_agent_fail(res, PGCMK_E_KMIP_CREDENTIALS_REFUSED, 1,
                                            "KMIP server %s:%d refused %s on %s for the client "
                                            "certificate '%.200s' (%s: %.120s).",
                                            t->host, t->port, opn, subj,
                                            t->cert_path ? t->cert_path : "", rr ? rr : "?",
                                            r->result_message);
                default:
                    snprintf(why, sizeof(why), "%s failed: %s: %.100s", opn, rr ? rr : "?",
                             r->result_message);
                }
            }
            o = KC_OUTAGE;
            snprintf(io.why, sizeof(io.why), "%s", why);
        }
        switch (o) {
        case KC_REFUSED:
            return pgcmk_agent_fail(
                res, PGCMK_E_KMIP_CREDENTIALS_REFUSED, 1,
                "KMIP server %s:%d: %s, so %s cannot be reached with the client "
                "certificate '%.200s'.",
                t->host, t->port, io.why, subj, t->cert_path ? t->cert_path : "");
        case KC_UNTRUSTED:
            return pgcmk_agent_fail(res, PGCMK_E_KMIP_SERVER_NOT_TRUSTED, 1,
                                    "KMIP server %s:%d: %s '%.200s'; %s is not asked for.", t->host,
                                    t->port, io.why, t->ca_path ? t->ca_path : "", subj);
        case KC_CONFIG:
            return pgcmk_agent_fail(res, PGCMK_E_KMIP_PROVIDER_INVALID, 1, "KMIP server %s:%d: %s.",
                                    t->host, t->port, io.why);
        default:
            break;
        }
        if (attempt >= retries)
            return pgcmk_agent_fail(
                res, PGCMK_E_KMIP_SERVER_UNREACHABLE, 0,
                "KMIP server %s:%d is unreachable: %s (%s of %s, %d attempts); the "
                "database keeps its key in memory until the server answers.",
                t->host, t->port, io.why, opn, subj, attempt + 1);
        {
            struct timespec ts = {0, (long)KC_BACKOFF_MS * 1000000L << attempt};

            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec = ts.tv_nsec / 1000000000L;
                ts.tv_nsec %= 1000000000L;
            }
            nanosleep(&ts, NULL);
        }
    }
}

int
pgcmk_kmipc_register(const struct pgcmk_kmipc_target *t, const char *name, const unsigned char *key,
                     size_t key_len, char uid[PGCMK_KMIPC_UID_LEN], struct pgcmk_agent_result *res)
{
    struct kc_what w = {name, NULL};
    struct pgcmk_kmipc_reply r;
    size_t n;
    unsigned char *req;
    int rc;

    memset(res, 0, sizeof(*res));
    if (key_len != 16 && key_len != 32)
        return pgcmk_agent_fail(res, PGCMK_E_KMIP_KEY_LENGTH_INVALID, 1,
                                "A principal key must be 16 or 32 bytes, not %zu.", key_len);
    req = pgcmk_kmipc_build_register(name, key, key_len, (int64_t)time(NULL), &n);
    if (!req)
        return pgcmk_agent_fail(res, PGCMK_E_KMIP_PROVIDER_INVALID, 1,
                                "The key name '%.100s' cannot be encoded.", name);
    rc = kc_call(t, PGCMK_KMIP_OP_REGISTER, req, n, &w, &r, res);
    OPENSSL_cleanse(req, n);
    free(req);
    if (rc)
        return -1;
    if (r.n_uids < 1)
        return pgcmk_agent_fail(res, PGCMK_E_KMIP_SERVER_UNREACHABLE, 0,
                                "KMIP server %s:%d answered Register of '%.100s' without a Unique "
                                "Identifier.",
                                t->host, t->port, name);
    snprintf(uid, PGCMK_KMIPC_UID_LEN, "%s", r.uids[0]);
    return 0;
}

int
pgcmk_kmipc_locate(const struct pgcmk_kmipc_target *t, const char *name,
                   char uids[PGCMK_KMIPC_MAX_ITEMS][PGCMK_KMIPC_UID_LEN],
                   struct pgcmk_agent_result *res)
{
    struct kc_what w = {name, NULL};
    struct pgcmk_kmipc_reply r;
    size_t n;
    unsigned char *req = pgcmk_kmipc_build_locate(name, (int64_t)time(NULL), &n);
    int rc;

    memset(res, 0, sizeof(*res));
    if (!req)
        return pgcmk_agent_fail(res, PGCMK_E_KMIP_PROVIDER_INVALID, 1,
                                "The key name '%.100s' cannot be encoded.", name);
    rc = kc_call(t, PGCMK_KMIP_OP_LOCATE, req, n, &w, &r, res);
    free(req);
    if (rc)
        return -1;
    for (int i = 0; i < r.n_uids; i++)
        memcpy(uids[i], r.uids[i], PGCMK_KMIPC_UID_LEN);
    return r.n_uids;
}

int
pgcmk_kmipc_get(const struct pgcmk_kmipc_target *t, const char *uid,
                unsigned char key[PGCMK_KMIPC_MAX_KEY], size_t *key_len,
                struct pgcmk_agent_result *res)
{
    struct kc_what w = {NULL, uid};
    struct pgcmk_kmipc_reply r;
    size_t n;
    unsigned char *req = pgcmk_kmipc_build_get(uid, (int64_t)time(NULL), &n);
    int rc;

    memset(res, 0, sizeof(*res));
    *key_len = 0;
    if (!req)
        return pgcmk_agent_fail(res, PGCMK_E_KMIP_PROVIDER_INVALID, 1, "A bad Unique Identifier.");
    rc = kc_call(t, PGCMK_KMIP_OP_GET, req, n, &w, &r, res);
    free(req);
    if (rc)
        return -1;
    if (r.key_too_long || r.key_len == 0) {
        OPENSSL_cleanse(&r, sizeof(r));
        return pgcmk_agent_fail(
            res, PGCMK_E_KMIP_KEY_LENGTH_INVALID, 1,
            "KMIP server %s:%d: the object with Unique Identifier %.64s is not a "
            "symmetric key of 16 or 32 bytes.",
            t->host, t->port, uid);
    }
    memcpy(key, r.key, r.key_len);
    *key_len = r.key_len;
    OPENSSL_cleanse(&r, sizeof(r));
    return 0;
}

int
pgcmk_kmipc_get_state(const struct pgcmk_kmipc_target *t, const char *uid, uint32_t *state,
                      struct pgcmk_agent_result *res)
{
    struct kc_what w = {NULL, uid};
    struct pgcmk_kmipc_reply r;
    size_t n;
    unsigned char *req = pgcmk_kmipc_build_get_state(uid, (int64_t)time(NULL), &n);
    int rc;

    memset(res, 0, sizeof(*res));
    *state = 0;
    if (!req)
        return pgcmk_agent_fail(res, PGCMK_E_KMIP_PROVIDER_INVALID, 1, "A bad Unique Identifier.");
    rc = kc_call(t, PGCMK_KMIP_OP_GET_ATTRIBUTES, req, n, &w, &r, res);
    free(req);
    if (rc)
        return -1;
    if (!r.state)
        return pgcmk_agent_fail(
            res, PGCMK_E_KMIP_SERVER_UNREACHABLE, 0,
            "KMIP server %s:%d answered Get Attributes of %.64s without a State.", t->host, t->port,
            uid);
    *state = r.state;
    return 0;
}

/* ---- the DEK of a self-managed database --------------------------------------------------- */

/* The wrapping key: the principal key itself (32 bytes) or SHA-256 of it (16 bytes). */
static void
kc_kek(const unsigned char *pk, size_t n, unsigned char kek[32])
{
    if (n == 32)
        memcpy(kek, pk, 32);
    else
        pgcmk_sha256(pk, n, kek);
}

/* Locate by name; exactly one hit wanted. 1 with uid, 0 when none, -1 with res. */
static int
kc_locate_one(const struct pgcmk_kmipc_target *t, const char *name, char uid[PGCMK_KMIPC_UID_LEN],
              struct pgcmk_agent_result *res)
{
    char uids[PGCMK_KMIPC_MAX_ITEMS][PGCMK_KMIPC_UID_LEN];
    int n = pgcmk_kmipc_locate(t, name, uids, res);

    if (n < 0)
        return -1;
    if (n > 1)
        return pgcmk_agent_fail(
            res, PGCMK_E_KMIP_KEY_AMBIGUOUS, 1,
            "KMIP server %s:%d has %d%s keys named '%.100s' (Unique Identifiers %.40s, "
            "%.40s...); pg_tde refuses an ambiguous principal key name.",
            t->host, t->port, n, n >= PGCMK_KMIPC_MAX_ITEMS ? " or more" : "", name, uids[0],
            uids[1]);
    if (n == 1)
        snprintf(uid, PGCMK_KMIPC_UID_LEN, "%s", uids[0]);
    return n;
}

/* The state must be Pre-Active or Active. 0, or -1 with res. */
static int
kc_check_state(const struct pgcmk_kmipc_target *t, const char *name, const char *uid,
               uint32_t *state, struct pgcmk_agent_result *res)
{
    if (pgcmk_kmipc_get_state(t, uid, state, res))
        return -1;
    if (*state == PGCMK_KMIP_STATE_PRE_ACTIVE || *state == PGCMK_KMIP_STATE_ACTIVE)
        return 0;
    return pgcmk_agent_fail(
        res,
        *state == PGCMK_KMIP_STATE_DESTROYED || *state == PGCMK_KMIP_STATE_DESTROYED_COMPROMISED
            ? PGCMK_E_KMIP_KEY_DESTROYED
            : PGCMK_E_KMIP_KEY_REVOKED,
        1,
        "KMIP server %s:%d: the principal key '%.100s' (Unique Identifier %.64s) is "
        "%s; a key must be Pre-Active or Active to be used.",
        t->host, t->port, name, uid, pgcmk_kmip_state_name(*state));
}

static int
kc_get_key(const struct pgcmk_kmipc_target *t, const char *name, const char *uid,
           unsigned char pk[PGCMK_KMIPC_MAX_KEY], size_t *pk_len, struct pgcmk_agent_result *res)
{
    if (pgcmk_kmipc_get(t, uid, pk, pk_len, res)) {
        if (res->code == PGCMK_E_KMIP_KEY_NOT_FOUND)
            snprintf(res->message, sizeof(res->message),
                     "KMIP server %s:%d: the principal key '%.100s' (Unique Identifier %.64s) "
                     "was not found by Get.",
                     t->host, t->port, name, uid);
        return -1;
    }
    if (*pk_len != 16 && *pk_len != 32) {
        OPENSSL_cleanse(pk, PGCMK_KMIPC_MAX_KEY);
        return pgcmk_agent_fail(
            res, PGCMK_E_KMIP_KEY_LENGTH_INVALID, 1,
            "KMIP server %s:%d: the principal key '%.100s' (Unique Identifier %.64s) "
            "is %zu bytes; pg_tde accepts only 16 or 32.",
            t->host, t->port, name, uid, *pk_len);
    }
    return 0;
}

int
pgcmk_agent_kmip_new_dek(const char *db_id, const struct pgcmk_kmipc_target *t,
                         const char *key_name, unsigned char **wrapped, size_t *wrapped_len,
                         char alg[24], char uid[PGCMK_KMIPC_UID_LEN],
                         struct pgcmk_agent_result *res)
{
    unsigned char pk[PGCMK_KMIPC_MAX_KEY], kek[32], dek[PGCMK_AGENT_DEK_LEN];
    size_t pk_len = 0;
    uint32_t state = 0;
    int n, rc = -1;

    *wrapped = NULL;
    *wrapped_len = 0;
    uid[0] = 0;
    n = kc_locate_one(t, key_name, uid, res);
    if (n < 0)
        return -1;
    if (n == 0) { /* pg_tde_create_key_using_global_key_provider: a new random key */
        if (pgcmk_random(pk, 32))
            return pgcmk_agent_fail(res, PGCMK_E_INTERNAL, 1, "No random bytes for a new key.");
        rc = pgcmk_kmipc_register(t, key_name, pk, 32, uid, res);
        OPENSSL_cleanse(pk, sizeof(pk));
        if (rc)
            return -1;
        LOG_INFO("agent: registered the principal key '%s' on KMIP server %s:%d as %s", key_name,
                 t->host, t->port, uid);
        rc = -1;
    }
    if (kc_check_state(t, key_name, uid, &state, res) ||
        kc_get_key(t, key_name, uid, pk, &pk_len, res))
        return -1;
    kc_kek(pk, pk_len, kek);
    OPENSSL_cleanse(pk, sizeof(pk));
    if (pgcmk_random(dek, sizeof(dek))) {
        pgcmk_agent_fail(res, PGCMK_E_INTERNAL, 1, "No random bytes for a new DEK.");
    } else if (pgcmk_aead_seal(kek, db_id, strlen(db_id), dek, sizeof(dek), wrapped, wrapped_len)) {
        pgcmk_agent_fail(res, PGCMK_E_INTERNAL, 1, "The DEK could not be wrapped.");
    } else {
        pgcmk_agent_keep(db_id, dek);
        snprintf(alg, 24, "%s", KC_ALG);
        rc = 0;
    }
    OPENSSL_cleanse(kek, sizeof(kek));
    OPENSSL_cleanse(dek, sizeof(dek));
    return rc;
}

int
pgcmk_agent_kmip_check(const char *db_id, const struct pgcmk_kmipc_target *t, const char *key_name,
                       const char *expect_uid, const unsigned char *wrapped, size_t wrapped_len,
                       char uid[PGCMK_KMIPC_UID_LEN], uint32_t *state,
                       struct pgcmk_agent_result *res)
{
    unsigned char pk[PGCMK_KMIPC_MAX_KEY], kek[32];
    unsigned char *dek = NULL;
    size_t pk_len = 0, dek_len = 0;
    int n, rc;

    uid[0] = 0;
    *state = 0;
    n = kc_locate_one(t, key_name, uid, res);
    if (n == 0)
        pgcmk_agent_fail(
            res, PGCMK_E_KMIP_KEY_NOT_FOUND, 1,
            "KMIP server %s:%d has no key named '%.100s' (it was Unique Identifier %.64s): "
            "the principal key was destroyed or removed.",
            t->host, t->port, key_name, expect_uid && *expect_uid ? expect_uid : "?");
    if (n <= 0 || kc_check_state(t, key_name, uid, state, res) ||
        kc_get_key(t, key_name, uid, pk, &pk_len, res))
        goto fail;
    kc_kek(pk, pk_len, kek);
    OPENSSL_cleanse(pk, sizeof(pk));
    rc = pgcmk_aead_open(kek, db_id, strlen(db_id), wrapped, wrapped_len, &dek, &dek_len);
    OPENSSL_cleanse(kek, sizeof(kek));
    if (rc || dek_len != PGCMK_AGENT_DEK_LEN) {
        if (dek) {
            OPENSSL_cleanse(dek, dek_len);
            free(dek);
        }
        pgcmk_agent_fail(
            res, PGCMK_E_KMIP_KEY_NOT_FOUND, 1,
            "KMIP server %s:%d: the key named '%.100s' (Unique Identifier %.64s) does not "
            "unwrap the database's key; the principal key it was wrapped with (%.64s) is gone.",
            t->host, t->port, key_name, uid, expect_uid && *expect_uid ? expect_uid : "?");
        goto fail;
    }
    pgcmk_agent_keep(db_id, dek);
    OPENSSL_cleanse(dek, dek_len);
    free(dek);
    memset(res, 0, sizeof(*res));
    return 0;
fail:
    if (res->lost)
        pgcmk_agent_forget(db_id);
    return -1;
}
