/* tdeproto.c - parse and format pg_tde agent bodies (src/pg/tdeproto.h). */
#include <stdlib.h>
#include <string.h>

#include "pg/tdeproto.h"
#include "pgcmk/tdeproto.h"

int
tdep_key_ok(const char *key)
{
    size_t n = 0;

    for (; key[n]; n++)
        if (!((key[n] >= 'a' && key[n] <= 'z') || key[n] == '_') || n >= TDEP_KEY_MAX)
            return 0;
    return n > 0;
}

static void
tdep_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;

    while (n--)
        *v++ = 0;
}

void
tdep_free(struct tdep_msg *m)
{
    for (size_t i = 0; m->f && i < m->n; i++) {
        tdep_wipe(m->f[i].value, m->f[i].len);
        free(m->f[i].value);
    }
    free(m->f);
    m->f = NULL;
    m->n = 0;
}

const char *
tdep_get(const struct tdep_msg *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->f[i].key, key) == 0)
            return m->f[i].value;
    return NULL;
}

/* One line [p, end) without its '\n' into f: 0, or -1 with why. */
static int
tdep_line(const char *p, const char *end, struct tdep_field *f, const char **why)
{
    const char *eq = memchr(p, '=', (size_t)(end - p));
    size_t kl, o = 0;

    if (!eq)
        return *why = "a line has no '='", -1;
    kl = (size_t)(eq - p);
    if (kl == 0 || kl > TDEP_KEY_MAX)
        return *why = "a key is empty or longer than 32 characters", -1;
    memcpy(f->key, p, kl);
    f->key[kl] = 0;
    if (strlen(f->key) != kl || !tdep_key_ok(f->key))
        return *why = "a key is not [a-z_]", -1;
    f->value = malloc((size_t)(end - eq));
    if (!f->value)
        return *why = "out of memory", -1;
    for (const char *s = eq + 1; s < end; s++) {
        char c = *s;

        if (c == '\r' || c == 0) {
            *why = "a value has a raw CR or NUL";
            goto bad;
        }
        if (c == '\\') {
            if (++s >= end) {
                *why = "a value ends with a lone '\\'";
                goto bad;
            }
            c = *s == '\\' ? '\\' : *s == 'n' ? '\n' : *s == 'r' ? '\r' : 0;
            if (!c) {
                *why = "a value has an unknown escape";
                goto bad;
            }
        }
        f->value[o++] = c;
    }
    f->value[o] = 0;
    f->len = o;
    return 0;
bad:
    tdep_wipe(f->value, o);
    free(f->value);
    f->value = NULL;
    return -1;
}

int
tdep_parse(const char *body, size_t len, const char *repeat, struct tdep_msg *m, const char **why)
{
    const char *p = body, *end = body + len;
    size_t cap = 0;

    m->n = 0;
    m->f = NULL;
    if (len > PGTDE_MAX_BODY)
        return *why = "the body is longer than PGTDE_MAX_BODY", -1;
    if (len && body[len - 1] != '\n')
        return *why = "the body does not end with a newline", -1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        struct tdep_field f;

        if (m->n == TDEP_FIELDS_MAX) {
            *why = "too many lines";
            goto bad;
        }
        if (tdep_line(p, nl, &f, why))
            goto bad;
        if ((!repeat || strcmp(f.key, repeat) != 0) && tdep_get(m, f.key)) {
            tdep_wipe(f.value, f.len);
            free(f.value);
            *why = "a key appears twice";
            goto bad;
        }
        if (m->n == cap) {
            struct tdep_field *nf;

            cap = cap ? cap * 2 : 16;
            nf = realloc(m->f, cap * sizeof(*nf));
            if (!nf) {
                tdep_wipe(f.value, f.len);
                free(f.value);
                *why = "out of memory";
                goto bad;
            }
            m->f = nf;
        }
        m->f[m->n++] = f;
        p = nl + 1;
    }
    return 0;
bad:
    tdep_free(m);
    return -1;
}

static int
tdep_grow(struct tdep_buf *b, size_t more)
{
    char *np;
    size_t cap;

    if (b->overflow || b->len + more > PGTDE_MAX_BODY) {
        b->overflow = 1;
        return -1;
    }
    if (b->len + more <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    np = malloc(cap);
    if (!np) {
        b->overflow = 1;
        return -1;
    }
    if (b->p) {
        memcpy(np, b->p, b->len);
        tdep_wipe(b->p, b->cap);
        free(b->p);
    }
    b->p = np;
    b->cap = cap;
    return 0;
}

void
tdep_addn(struct tdep_buf *b, const char *key, const char *value, size_t n)
{
    size_t kl = strlen(key), need = kl + 2, o;

    if (!tdep_key_ok(key)) {
        b->overflow = 1;
        return;
    }
    for (size_t i = 0; i < n; i++)
        need += value[i] == '\\' || value[i] == '\n' || value[i] == '\r' ? 2 : 1;
    if (tdep_grow(b, need))
        return;
    o = b->len;
    memcpy(b->p + o, key, kl);
    o += kl;
    b->p[o++] = '=';
    for (size_t i = 0; i < n; i++) {
        char c = value[i];

        if (c == 0) /* not representable: cut here */
            break;
        if (c == '\\' || c == '\n' || c == '\r') {
            b->p[o++] = '\\';
            c = c == '\\' ? '\\' : c == '\n' ? 'n' : 'r';
        }
        b->p[o++] = c;
    }
    b->p[o++] = '\n';
    b->len = o;
}

void
tdep_add(struct tdep_buf *b, const char *key, const char *value)
{
    tdep_addn(b, key, value ? value : "", value ? strlen(value) : 0);
}

void
tdep_buf_free(struct tdep_buf *b)
{
    if (b->p) {
        tdep_wipe(b->p, b->cap);
        free(b->p);
    }
    memset(b, 0, sizeof(*b));
}
