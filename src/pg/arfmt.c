/* arfmt.c - the archive socket's lines, the "PGCMKA1" encrypted file format and WAL positions
 * (src/pg/arfmt.h says what each is). No database, no sockets of its own, no global state. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "pg/arfmt.h"

static const unsigned char arfmt_magic[8] = {'P', 'G', 'C', 'M', 'K', 'A', '1', '\0'};
static const char arfmt_info_prefix[] = "pgcmk archive v1";

/* ---- requests and answers ------------------------------------------------------------------ */

int
pga_slug_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return i >= 1 && i <= PGA_SLUG_MAX;
}

int
pga_name_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return 0;
    return i >= 1 && i <= PGA_NAME_MAX && s[0] != '.';
}

/* Decimal without leading zeros, at most max: 0 or -1. */
static int
arfmt_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (max - (uint64_t)(s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* The next space-separated field of [*p, end): copied into out (n bytes with its NUL). */
static int
arfmt_field(const char **p, const char *end, char *out, size_t n)
{
    const char *s = *p, *e = s;

    while (e < end && *e != ' ')
        e++;
    if (e == s || (size_t)(e - s) >= n)
        return -1;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    *p = e < end ? e + 1 : e;
    return e < end && e + 1 == end ? -1 : 0; /* a trailing space is not a field separator */
}

long
pga_req_parse(const char *buf, size_t len, struct pga_req *r, const char **why)
{
    const char *nl = memchr(buf, '\n', len < PGA_LINE_MAX ? len : PGA_LINE_MAX), *p, *end;
    char word[8], num[24];

    memset(r, 0, sizeof(*r));
    *why = NULL;
    if (nl == NULL) {
        if (len < PGA_LINE_MAX)
            return 0;
        *why = "request line too long";
        return -1;
    }
    p = buf;
    end = nl;
    if (memchr(buf, '\0', (size_t)(nl - buf)) || memchr(buf, '\r', (size_t)(nl - buf))) {
        *why = "control character in the request line";
        return -1;
    }
    if (arfmt_field(&p, end, word, sizeof(word))) {
        *why = "no operation";
        return -1;
    }
    if (strcmp(word, "PUSH") == 0)
        r->op = PGA_PUSH;
    else if (strcmp(word, "FETCH") == 0)
        r->op = PGA_FETCH;
    else if (strcmp(word, "TDE") == 0)
        r->op = PGA_TDE;
    else {
        *why = "unknown operation";
        return -1;
    }
    if (p >= end || arfmt_field(&p, end, r->slug, sizeof(r->slug)) || !pga_slug_ok(r->slug)) {
        *why = "bad database slug";
        return -1;
    }
    if (r->op != PGA_TDE &&
        (p >= end || arfmt_field(&p, end, r->name, sizeof(r->name)) || !pga_name_ok(r->name))) {
        *why = "bad file name";
        return -1;
    }
    if (r->op == PGA_PUSH || r->op == PGA_TDE) {
        if (p >= end || arfmt_field(&p, end, num, sizeof(num)) ||
            arfmt_u64(num, strlen(num), r->op == PGA_TDE ? PGA_TDE_MAX : PGA_MAX_FILE,
                      &r->length)) {
            *why = "bad length";
            return -1;
        }
    }
    if (p != end) {
        *why = "trailing fields";
        return -1;
    }
    return (long)(nl - buf) + 1;
}

int
pga_req_format(const struct pga_req *r, char *out, size_t n)
{
    int k;

    if (!pga_slug_ok(r->slug) || (r->op != PGA_TDE && !pga_name_ok(r->name)) ||
        (r->op == PGA_PUSH && r->length > PGA_MAX_FILE) ||
        (r->op == PGA_TDE && r->length > PGA_TDE_MAX))
        return -1;
    if (r->op == PGA_TDE)
        k = snprintf(out, n, "TDE %s %llu\n", r->slug, (unsigned long long)r->length);
    else if (r->op == PGA_PUSH)
        k = snprintf(out, n, "PUSH %s %s %llu\n", r->slug, r->name, (unsigned long long)r->length);
    else if (r->op == PGA_FETCH)
        k = snprintf(out, n, "FETCH %s %s\n", r->slug, r->name);
    else
        return -1;
    return k < 0 || (size_t)k >= n ? -1 : k;
}

long
pga_ans_parse(const char *buf, size_t len, int *ok, uint64_t *length, char *text, size_t tn)
{
    const char *nl = memchr(buf, '\n', len < PGA_LINE_MAX ? len : PGA_LINE_MAX);
    size_t n, i;

    *ok = 0;
    *length = 0;
    if (tn)
        text[0] = '\0';
    if (nl == NULL)
        return len < PGA_LINE_MAX ? 0 : -1;
    n = (size_t)(nl - buf);
    if (n >= 3 && memcmp(buf, "OK ", 3) == 0) {
        if (arfmt_u64(buf + 3, n - 3, PGA_MAX_FILE, length))
            return -1;
        *ok = 1;
        return (long)n + 1;
    }
    if (n < 5 || memcmp(buf, "ERR ", 4) != 0)
        return -1;
    for (i = 4; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            return -1;
    if (tn) {
        i = n - 4 < tn - 1 ? n - 4 : tn - 1;
        memcpy(text, buf + 4, i);
        text[i] = '\0';
    }
    return (long)n + 1;
}

/* ---- the encrypted file -------------------------------------------------------------------- */

static void
arfmt_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t
arfmt_get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Wipes and frees a buffer that held plaintext or keys (NULL is fine). */
static void
arfmt_wipe_free(void *p, size_t n)
{
    if (p) {
        OPENSSL_cleanse(p, n);
        free(p);
    }
}

/* "pgcmk archive v1\0" db_id "\0" name, malloc'ed. */
static char *
arfmt_info(const char *db_id, const char *name, size_t *len)
{
    size_t a = sizeof(arfmt_info_prefix), b = strlen(db_id) + 1, c = strlen(name);
    char *info = malloc(a + b + c + 1);

    if (info == NULL)
        return NULL;
    memcpy(info, arfmt_info_prefix, a);
    memcpy(info + a, db_id, b);
    memcpy(info + a + b, name, c);
    *len = a + b + c;
    return info;
}

static int
arfmt_hkdf(const unsigned char dek[PGA_KEY_LEN], const unsigned char *salt, const char *info,
           size_t info_len, unsigned char out[PGA_KEY_LEN])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[5];
    int rc = -1;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)dek, PGA_KEY_LEN);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, 32);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    params[4] = OSSL_PARAM_construct_end();
    if (kc && EVP_KDF_derive(kc, out, PGA_KEY_LEN, params) == 1)
        rc = 0;
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    return rc;
}

static void
arfmt_nonce(uint64_t index, unsigned char nonce[12])
{
    int i;

    memset(nonce, 0, 4);
    for (i = 0; i < 8; i++)
        nonce[4 + i] = (unsigned char)(index >> (56 - 8 * i));
}

/* One chunk: seal (enc = 1: in -> out + tag at out + n) or open (enc = 0: tag read from
 * in + n). */
static int
arfmt_chunk(void *ctx, const unsigned char key[PGA_KEY_LEN], const unsigned char *header,
            const unsigned char word[4], uint64_t index, const unsigned char *in, uint32_t n,
            unsigned char *out, int enc)
{
    EVP_CIPHER_CTX *c = ctx;
    unsigned char nonce[12], tag[PGA_TAG_LEN];
    int k = 0, f = 0;

    arfmt_nonce(index, nonce);
    if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) != 1 ||
        EVP_CipherUpdate(c, NULL, &k, header, PGA_HEADER_LEN) != 1 ||
        EVP_CipherUpdate(c, NULL, &k, word, 4) != 1)
        return -1;
    if (n && EVP_CipherUpdate(c, out, &k, in, (int)n) != 1)
        return -1;
    if (!enc) {
        memcpy(tag, in + n, PGA_TAG_LEN);
        if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, PGA_TAG_LEN, tag) != 1)
            return -1;
    }
    if (EVP_CipherFinal_ex(c, out + (n ? k : 0), &f) != 1)
        return -1;
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, PGA_TAG_LEN, out + n) != 1)
        return -1;
    return 0;
}

int
pga_seal_init(struct pga_seal *s, const unsigned char dek[PGA_KEY_LEN], const char *db_id,
              const char *name, uint32_t chunk, pga_write_fn w, void *arg)
{
    size_t info_len = 0;
    char *info;
    int rc;

    memset(s, 0, sizeof(*s));
    s->chunk = chunk ? chunk : PGA_CHUNK_DEFAULT;
    s->w = w;
    s->arg = arg;
    if (s->chunk > PGA_CHUNK_MAX || (info = arfmt_info(db_id, name, &info_len)) == NULL)
        return -1;
    memcpy(s->header, arfmt_magic, 8);
    arfmt_put32(s->header + 8, s->chunk);
    arfmt_put32(s->header + 12, 0);
    rc = RAND_bytes(s->header + 16, 32) == 1
             ? arfmt_hkdf(dek, s->header + 16, info, info_len, s->key)
             : -1;
    free(info);
    if (rc)
        return -1;
    s->ctx = EVP_CIPHER_CTX_new();
    s->buf = malloc(s->chunk);
    s->out = malloc((size_t)s->chunk + 4 + PGA_TAG_LEN);
    if (s->ctx == NULL || s->buf == NULL || s->out == NULL)
        return -1;
    return w(arg, s->header, PGA_HEADER_LEN);
}

/* Seals the s->have buffered bytes as chunk s->index and writes word | ct | tag. */
static int
arfmt_seal_flush(struct pga_seal *s, int last)
{
    uint32_t n = (uint32_t)s->have;

    arfmt_put32(s->out, n | (last ? 0x80000000u : 0));
    if (arfmt_chunk(s->ctx, s->key, s->header, s->out, s->index, s->buf, n, s->out + 4, 1) ||
        s->w(s->arg, s->out, (size_t)n + 4 + PGA_TAG_LEN))
        return -1;
    s->index++;
    s->have = 0;
    return 0;
}

int
pga_seal_update(struct pga_seal *s, const void *p, size_t n)
{
    const unsigned char *in = p;
    size_t k;

    while (n) {
        if (s->have == s->chunk && arfmt_seal_flush(s, 0))
            return -1;
        k = s->chunk - s->have < n ? s->chunk - s->have : n;
        memcpy(s->buf + s->have, in, k);
        s->have += k;
        in += k;
        n -= k;
    }
    return 0;
}

int
pga_seal_final(struct pga_seal *s)
{
    return arfmt_seal_flush(s, 1);
}

void
pga_seal_release(struct pga_seal *s)
{
    EVP_CIPHER_CTX_free(s->ctx);
    arfmt_wipe_free(s->buf, s->chunk);
    free(s->out);
    OPENSSL_cleanse(s->key, sizeof(s->key));
    memset(s, 0, sizeof(*s));
}

void
pga_open_init(struct pga_open *o, const unsigned char dek[PGA_KEY_LEN], const char *db_id,
              const char *name, pga_write_fn w, void *arg)
{
    memset(o, 0, sizeof(*o));
    memcpy(o->dek, dek, PGA_KEY_LEN);
    o->info = arfmt_info(db_id, name, &o->info_len);
    o->ctx = EVP_CIPHER_CTX_new();
    o->w = w;
    o->arg = arg;
    if (o->info == NULL || o->ctx == NULL) {
        o->state = -1;
        o->why = "out of memory";
    }
}

static int
arfmt_open_fail(struct pga_open *o, const char *why)
{
    o->state = -1;
    o->why = why;
    return -1;
}

/* The header is complete in o->header: check it and derive the key. */
static int
arfmt_open_header(struct pga_open *o)
{
    if (memcmp(o->header, arfmt_magic, 8) != 0)
        return arfmt_open_fail(o, "not a pgcmk archive file");
    o->chunk = arfmt_get32(o->header + 8);
    if (o->chunk == 0 || o->chunk > PGA_CHUNK_MAX || arfmt_get32(o->header + 12) != 0)
        return arfmt_open_fail(o, "bad archive file header");
    if (arfmt_hkdf(o->dek, o->header + 16, o->info, o->info_len, o->key))
        return arfmt_open_fail(o, "key derivation failed");
    OPENSSL_cleanse(o->dek, sizeof(o->dek));
    o->state = 1;
    o->have = 0;
    return 0;
}

/* The chunk word is complete in o->word. */
static int
arfmt_open_word(struct pga_open *o)
{
    uint32_t v = arfmt_get32(o->word);
    size_t need;

    o->last = (v & 0x80000000u) != 0;
    o->n = v & 0x7fffffffu;
    if (o->n > o->chunk || (!o->last && o->n != o->chunk))
        return arfmt_open_fail(o, "bad chunk length in archive file");
    need = (size_t)o->n + PGA_TAG_LEN;
    if (need > o->cap) {
        unsigned char *b = malloc(need);

        if (b == NULL)
            return arfmt_open_fail(o, "out of memory");
        arfmt_wipe_free(o->buf, o->cap);
        o->buf = b;
        o->cap = need;
    }
    o->state = 2;
    o->have = 0;
    return 0;
}

/* The chunk's ciphertext and tag are complete in o->buf: verify, decrypt in place, release. */
static int
arfmt_open_body(struct pga_open *o)
{
    unsigned char *pt = malloc(o->n ? o->n : 1);
    int rc;

    if (pt == NULL)
        return arfmt_open_fail(o, "out of memory");
    rc = arfmt_chunk(o->ctx, o->key, o->header, o->word, o->index, o->buf, o->n, pt, 0);
    if (rc) {
        free(pt);
        return arfmt_open_fail(o, "authentication failed (wrong key, wrong file or altered data)");
    }
    rc = o->n ? o->w(o->arg, pt, o->n) : 0;
    OPENSSL_cleanse(pt, o->n);
    free(pt);
    if (rc)
        return arfmt_open_fail(o, "could not write the decrypted data");
    o->index++;
    o->state = o->last ? 3 : 1;
    o->have = 0;
    return 0;
}

int
pga_open_update(struct pga_open *o, const void *p, size_t n)
{
    const unsigned char *in = p;
    size_t k, need;
    unsigned char *dst;

    while (n) {
        switch (o->state) {
        case 0:
            need = PGA_HEADER_LEN;
            dst = o->header;
            break;
        case 1:
            need = 4;
            dst = o->word;
            break;
        case 2:
            need = (size_t)o->n + PGA_TAG_LEN;
            dst = o->buf;
            break;
        case 3:
            return arfmt_open_fail(o, "trailing data after the last chunk");
        default:
            return -1;
        }
        k = need - o->have < n ? need - o->have : n;
        memcpy(dst + o->have, in, k);
        o->have += k;
        in += k;
        n -= k;
        if (o->have < need)
            continue;
        if ((o->state == 0   ? arfmt_open_header(o)
             : o->state == 1 ? arfmt_open_word(o)
                             : arfmt_open_body(o)))
            return -1;
    }
    return 0;
}

int
pga_open_final(struct pga_open *o)
{
    if (o->state == 3)
        return 0;
    if (o->state == -1)
        return -1;
    return arfmt_open_fail(o, o->state == 0 && o->have == 0 && o->index == 0
                                  ? "empty archive file"
                                  : "truncated archive file");
}

void
pga_open_release(struct pga_open *o)
{
    EVP_CIPHER_CTX_free(o->ctx);
    arfmt_wipe_free(o->buf, o->cap);
    free(o->info);
    OPENSSL_cleanse(o->dek, sizeof(o->dek));
    OPENSSL_cleanse(o->key, sizeof(o->key));
    o->ctx = NULL;
    o->buf = NULL;
    o->info = NULL;
}

struct arfmt_mem {
    unsigned char *p;
    size_t n, cap;
};

static int
arfmt_mem_write(void *arg, const void *buf, size_t len)
{
    struct arfmt_mem *m = arg;

    if (m->n + len > m->cap) {
        size_t cap = (m->n + len) * 2;
        unsigned char *b = malloc(cap);

        if (b == NULL)
            return -1;
        if (m->p) {
            memcpy(b, m->p, m->n);
            OPENSSL_cleanse(m->p, m->cap);
            free(m->p);
        }
        m->p = b;
        m->cap = cap;
    }
    memcpy(m->p + m->n, buf, len);
    m->n += len;
    return 0;
}

int
pga_seal_mem(const unsigned char dek[PGA_KEY_LEN], const char *db_id, const char *name,
             const void *pt, size_t n, unsigned char **out, size_t *out_len)
{
    struct arfmt_mem m = {NULL, 0, 0};
    struct pga_seal s;
    int rc;

    rc = pga_seal_init(&s, dek, db_id, name, 0, arfmt_mem_write, &m);
    if (rc == 0)
        rc = pga_seal_update(&s, pt, n);
    if (rc == 0)
        rc = pga_seal_final(&s);
    pga_seal_release(&s);
    if (rc) {
        free(m.p);
        return -1;
    }
    *out = m.p ? m.p : malloc(1);
    *out_len = m.n;
    return 0;
}

int
pga_open_mem(const unsigned char dek[PGA_KEY_LEN], const char *db_id, const char *name,
             const void *ct, size_t n, unsigned char **out, size_t *out_len, const char **why)
{
    struct arfmt_mem m = {NULL, 0, 0};
    struct pga_open o;
    int rc;

    pga_open_init(&o, dek, db_id, name, arfmt_mem_write, &m);
    rc = pga_open_update(&o, ct, n);
    if (rc == 0)
        rc = pga_open_final(&o);
    *why = o.why;
    pga_open_release(&o);
    if (rc) {
        arfmt_wipe_free(m.p, m.cap);
        return -1;
    }
    *out = m.p ? m.p : malloc(1);
    *out_len = m.n;
    return 0;
}

/* ---- whole reads and writes --------------------------------------------------------------- */

static int
arfmt_io_all(int fd, void *buf, size_t n, int wr)
{
    char *p = buf;
    ssize_t k;

    while (n) {
        k = wr ? write(fd, p, n) : read(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int
pga_write_all(int fd, const void *buf, size_t n)
{
    return arfmt_io_all(fd, (void *)buf, n, 1);
}

int
pga_read_all(int fd, void *buf, size_t n)
{
    return arfmt_io_all(fd, buf, n, 0);
}

/* ---- WAL positions ------------------------------------------------------------------------- */

static int
arfmt_hex32(const char *s, size_t n, uint32_t *out)
{
    uint32_t v = 0;
    size_t i;

    if (n == 0 || n > 8)
        return -1;
    for (i = 0; i < n; i++) {
        int d = s[i] >= '0' && s[i] <= '9'   ? s[i] - '0'
                : s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10
                : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
                                             : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

int
pga_lsn_parse(const char *s, uint64_t *out)
{
    const char *slash = strchr(s, '/');
    uint32_t hi, lo;

    if (slash == NULL || arfmt_hex32(s, (size_t)(slash - s), &hi) ||
        arfmt_hex32(slash + 1, strlen(slash + 1), &lo))
        return -1;
    *out = (uint64_t)hi << 32 | lo;
    return 0;
}

void
pga_lsn_format(uint64_t lsn, char *out, size_t n)
{
    snprintf(out, n, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}
