/* jsonc.c - JSON with comments: a small recursive-descent parser that builds jansson values,
 * remembers where each object, array and string starts (for "at line L and column C" in template
 * errors), and reads the az CLI's deployment body with its unquoted `template:` key. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/core.h"
#include "pgcmk/deploy.h"
#include "deploy/internal.h"

struct jp {
    const char *s;
    size_t len, off;
    int line, col;
    unsigned flags;
    struct pgcmk_jsonc_pos *pos;
    char path[256];
    size_t plen;
    char *msg;
    size_t msg_cap;
    int failed;
    /* the az CLI body: where properties.template starts */
    int depth;
    int in_tpl;
    int tpl_line, tpl_col;
    size_t tpl_off;
    int tpl_seen;
    int err_in_tpl;
};

static json_t *jp_value(struct jp *p, int depth);

static int
jp_fail(struct jp *p, const char *fmt, ...)
{
    va_list ap;

    if (p->failed)
        return -1;
    p->failed = 1;
    p->err_in_tpl = p->in_tpl;
    va_start(ap, fmt);
    vsnprintf(p->msg, p->msg_cap, fmt, ap);
    va_end(ap);
    return -1;
}

static void
jp_adv(struct jp *p)
{
    if (p->off >= p->len)
        return;
    if (p->s[p->off] == '\n') {
        p->line++;
        p->col = 1;
    } else {
        p->col++;
    }
    p->off++;
}

static int
jp_peek(const struct jp *p)
{
    return p->off < p->len ? (unsigned char)p->s[p->off] : -1;
}

static int
jp_ws(struct jp *p)
{
    for (;;) {
        int c = jp_peek(p);

        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0xfeff) {
            jp_adv(p);
        } else if (c == 0xef && p->off + 2 < p->len && (unsigned char)p->s[p->off + 1] == 0xbb &&
                   (unsigned char)p->s[p->off + 2] == 0xbf && p->off == 0) {
            jp_adv(p), jp_adv(p), jp_adv(p); /* UTF-8 byte order mark */
        } else if (c == '/' && p->off + 1 < p->len && p->s[p->off + 1] == '/') {
            while (jp_peek(p) != -1 && jp_peek(p) != '\n')
                jp_adv(p);
        } else if (c == '/' && p->off + 1 < p->len && p->s[p->off + 1] == '*') {
            int l = p->line, cl = p->col;

            jp_adv(p), jp_adv(p);
            for (;;) {
                if (jp_peek(p) == -1) {
                    p->line = l, p->col = cl;
                    return jp_fail(p, "Unterminated comment");
                }
                if (jp_peek(p) == '*' && p->off + 1 < p->len && p->s[p->off + 1] == '/') {
                    jp_adv(p), jp_adv(p);
                    break;
                }
                jp_adv(p);
            }
        } else {
            return 0;
        }
    }
}

static void
jp_record(struct jp *p, const json_t *v, int line, int col)
{
    struct pgcmk_jsonc_pos *pos = p->pos;

    if (!pos || !v)
        return;
    if (p->in_tpl) {
        if (line == p->tpl_line)
            col = col - p->tpl_col + 1;
        line = line - p->tpl_line + 1;
    }
    if (pos->n == pos->cap) {
        pos->cap = pos->cap ? pos->cap * 2 : 64;
        pos->a = pgcmk_xrealloc(pos->a, pos->cap * sizeof(*pos->a));
    }
    pos->a[pos->n].v = v;
    pos->a[pos->n].line = line;
    pos->a[pos->n].col = col;
    pos->n++;
    pos->sorted = 0;
}

static void
put_utf8(char *out, size_t *n, unsigned cp)
{
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xc0 | (cp >> 6));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xe0 | (cp >> 12));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*n)++] = (char)(0xf0 | (cp >> 18));
        out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static int
hex4(const char *s, unsigned *out)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        char c = s[i];

        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Reads a string at '"'; returns a heap buffer (length in *n). */
static char *
jp_string_raw(struct jp *p, size_t *n)
{
    size_t start = p->off + 1, end = start, cap;
    char *out;

    /* find the closing quote first to size the buffer */
    while (end < p->len && p->s[end] != '"') {
        if (p->s[end] == '\\')
            end++;
        end++;
    }
    if (end >= p->len) {
        jp_fail(p, "Unterminated string");
        return NULL;
    }
    cap = end - start + 1;
    out = pgcmk_xmalloc(cap);
    *n = 0;
    jp_adv(p);
    while (p->off < end) {
        unsigned char c = (unsigned char)p->s[p->off];

        if (c < 0x20) {
            free(out);
            jp_fail(p, "Bad control character in string");
            return NULL;
        }
        if (c != '\\') {
            out[(*n)++] = (char)c;
            jp_adv(p);
            continue;
        }
        jp_adv(p);
        c = (unsigned char)p->s[p->off];
        switch (c) {
        case '"':
        case '\\':
        case '/':
            out[(*n)++] = (char)c;
            break;
        case 'b':
            out[(*n)++] = '\b';
            break;
        case 'f':
            out[(*n)++] = '\f';
            break;
        case 'n':
            out[(*n)++] = '\n';
            break;
        case 'r':
            out[(*n)++] = '\r';
            break;
        case 't':
            out[(*n)++] = '\t';
            break;
        case 'u': {
            unsigned cp, lo;

            if (p->off + 4 >= end + 1 || hex4(p->s + p->off + 1, &cp) != 0) {
                free(out);
                jp_fail(p, "Bad \\u escape");
                return NULL;
            }
            for (int i = 0; i < 4; i++)
                jp_adv(p);
            if (cp >= 0xd800 && cp < 0xdc00 && p->off + 6 <= end && p->s[p->off + 1] == '\\' &&
                p->s[p->off + 2] == 'u' && hex4(p->s + p->off + 3, &lo) == 0 && lo >= 0xdc00 &&
                lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                for (int i = 0; i < 6; i++)
                    jp_adv(p);
            } else if (cp >= 0xd800 && cp < 0xe000) {
                cp = 0xfffd;
            }
            if (cp == 0)
                cp = 0xfffd; /* no NUL inside our C strings */
            put_utf8(out, n, cp);
            break;
        }
        default:
            free(out);
            jp_fail(p, "Bad escape character '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
            return NULL;
        }
        jp_adv(p);
    }
    jp_adv(p); /* closing quote */
    return out;
}

static json_t *
jp_string(struct jp *p)
{
    int line = p->line, col = p->col;
    size_t n = 0;
    char *raw = jp_string_raw(p, &n);
    json_t *v;

    if (!raw)
        return NULL;
    v = json_stringn(raw, n);
    free(raw);
    if (!v) {
        p->line = line, p->col = col;
        jp_fail(p, "Invalid UTF-8 in string");
        return NULL;
    }
    jp_record(p, v, line, col);
    return v;
}

static json_t *
jp_number(struct jp *p)
{
    size_t st = p->off;
    int is_int = 1;
    char buf[64];

    if (jp_peek(p) == '-')
        jp_adv(p);
    if (jp_peek(p) == '0') {
        jp_adv(p);
    } else if (jp_peek(p) >= '1' && jp_peek(p) <= '9') {
        while (jp_peek(p) >= '0' && jp_peek(p) <= '9')
            jp_adv(p);
    } else {
        jp_fail(p, "Unexpected character while parsing a number");
        return NULL;
    }
    if (jp_peek(p) == '.') {
        is_int = 0;
        jp_adv(p);
        if (!(jp_peek(p) >= '0' && jp_peek(p) <= '9')) {
            jp_fail(p, "Unexpected character while parsing a number");
            return NULL;
        }
        while (jp_peek(p) >= '0' && jp_peek(p) <= '9')
            jp_adv(p);
    }
    if (jp_peek(p) == 'e' || jp_peek(p) == 'E') {
        is_int = 0;
        jp_adv(p);
        if (jp_peek(p) == '+' || jp_peek(p) == '-')
            jp_adv(p);
        if (!(jp_peek(p) >= '0' && jp_peek(p) <= '9')) {
            jp_fail(p, "Unexpected character while parsing a number");
            return NULL;
        }
        while (jp_peek(p) >= '0' && jp_peek(p) <= '9')
            jp_adv(p);
    }
    if (p->off - st >= sizeof(buf)) {
        jp_fail(p, "Number too long");
        return NULL;
    }
    memcpy(buf, p->s + st, p->off - st);
    buf[p->off - st] = '\0';
    if (is_int) {
        long long v;

        errno = 0;
        v = strtoll(buf, NULL, 10);
        if (errno == 0)
            return json_integer((json_int_t)v);
    }
    return json_real(strtod(buf, NULL));
}

static int
jp_lit(struct jp *p, const char *w)
{
    size_t n = strlen(w);

    if (p->len - p->off < n || memcmp(p->s + p->off, w, n) != 0)
        return 0;
    if (p->off + n < p->len) {
        char c = p->s[p->off + n];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')
            return 0;
    }
    for (size_t i = 0; i < n; i++)
        jp_adv(p);
    return 1;
}

static void
jp_path_push(struct jp *p, const char *key, size_t i)
{
    int w;

    if (key)
        w = snprintf(p->path + p->plen, sizeof(p->path) - p->plen, "%s%s", p->plen ? "." : "", key);
    else
        w = snprintf(p->path + p->plen, sizeof(p->path) - p->plen, "[%zu]", i);
    if (w > 0)
        p->plen = p->plen + (size_t)w < sizeof(p->path) ? p->plen + (size_t)w : sizeof(p->path) - 1;
}

static char *
jp_key(struct jp *p)
{
    size_t n = 0;
    char *k;

    if (jp_peek(p) == '"') {
        k = jp_string_raw(p, &n);
        if (!k)
            return NULL;
        k = pgcmk_xrealloc(k, n + 1);
        k[n] = '\0';
        {
            json_t *probe = strlen(k) == n ? json_stringn(k, n) : NULL;

            if (!probe) {
                free(k);
                jp_fail(p, "Invalid property name");
                return NULL;
            }
            json_decref(probe);
        }
        return k;
    }
    if ((p->flags & JSONC_F_UNQUOTED_KEYS) && p->depth <= 2) {
        size_t st = p->off;
        int c = jp_peek(p);

        while ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' ||
               (p->off > st && c >= '0' && c <= '9')) {
            jp_adv(p);
            c = jp_peek(p);
        }
        if (p->off > st)
            return pgcmk_xstrndup(p->s + st, p->off - st);
    }
    jp_fail(p, "Invalid property identifier character: %c",
            jp_peek(p) >= 0x20 && jp_peek(p) < 0x7f ? jp_peek(p) : '?');
    return NULL;
}

static json_t *
jp_object(struct jp *p, int depth)
{
    json_t *o = json_object();
    int line = p->line, col = p->col;
    size_t plen0 = p->plen;

    jp_record(p, o, line, col);
    jp_adv(p);
    p->depth++;
    if (jp_ws(p) != 0)
        goto fail;
    if (jp_peek(p) == '}') {
        jp_adv(p);
        p->depth--;
        return o;
    }
    for (;;) {
        char *k;
        json_t *v;
        int starts_tpl = 0;

        if (jp_ws(p) != 0)
            goto fail;
        if (jp_peek(p) == '}') {
            jp_fail(p, "Unexpected character encountered while parsing value: }. A trailing comma "
                       "is not allowed");
            goto fail;
        }
        k = jp_key(p);
        if (!k)
            goto fail;
        jp_path_push(p, k, 0);
        if (jp_ws(p) != 0 || jp_peek(p) != ':') {
            free(k);
            jp_fail(p, "Invalid character after parsing property name. Expected ':'");
            goto fail;
        }
        jp_adv(p);
        if (jp_ws(p) != 0) {
            free(k);
            goto fail;
        }
        if ((p->flags & JSONC_F_UNQUOTED_KEYS) && p->depth == 2 && !p->in_tpl &&
            strcmp(p->path, "properties.template") == 0) {
            starts_tpl = 1;
            p->in_tpl = 1;
            p->tpl_seen = 1;
            p->tpl_line = p->line;
            p->tpl_col = p->col;
            p->tpl_off = p->off;
        }
        v = jp_value(p, depth + 1);
        if (!v) {
            free(k);
            goto fail;
        }
        if (starts_tpl)
            p->in_tpl = 0;
        if (json_object_get(o, k)) {
            json_decref(v);
            jp_fail(p, "Duplicate property '%.64s'", k);
            free(k);
            goto fail;
        }
        json_object_set_new(o, k, v);
        free(k);
        p->plen = plen0;
        p->path[p->plen] = '\0';
        if (jp_ws(p) != 0)
            goto fail;
        if (jp_peek(p) == ',') {
            jp_adv(p);
            continue;
        }
        if (jp_peek(p) == '}') {
            jp_adv(p);
            break;
        }
        jp_fail(p, "After parsing a value an unexpected character was encountered: %c",
                jp_peek(p) >= 0x20 && jp_peek(p) < 0x7f ? jp_peek(p) : '?');
        goto fail;
    }
    p->depth--;
    return o;
fail:
    json_decref(o);
    return NULL;
}

static json_t *
jp_array(struct jp *p, int depth)
{
    json_t *a = json_array();
    size_t plen0 = p->plen, i = 0;

    jp_record(p, a, p->line, p->col);
    jp_adv(p);
    p->depth++;
    if (jp_ws(p) != 0)
        goto fail;
    if (jp_peek(p) == ']') {
        jp_adv(p);
        p->depth--;
        return a;
    }
    for (;; i++) {
        json_t *v;

        if (jp_ws(p) != 0)
            goto fail;
        if (jp_peek(p) == ']') {
            jp_fail(p, "Unexpected character encountered while parsing value: ]. A trailing comma "
                       "is not allowed");
            goto fail;
        }
        jp_path_push(p, NULL, i);
        v = jp_value(p, depth + 1);
        if (!v)
            goto fail;
        json_array_append_new(a, v);
        p->plen = plen0;
        p->path[p->plen] = '\0';
        if (jp_ws(p) != 0)
            goto fail;
        if (jp_peek(p) == ',') {
            jp_adv(p);
            continue;
        }
        if (jp_peek(p) == ']') {
            jp_adv(p);
            break;
        }
        jp_fail(p, "After parsing a value an unexpected character was encountered: %c",
                jp_peek(p) >= 0x20 && jp_peek(p) < 0x7f ? jp_peek(p) : '?');
        goto fail;
    }
    p->depth--;
    return a;
fail:
    json_decref(a);
    return NULL;
}

static json_t *
jp_value(struct jp *p, int depth)
{
    int c;

    if (depth > TPL_MAX_JSON_DEPTH) {
        jp_fail(p, "The JSON is nested too deeply (more than %d levels)", TPL_MAX_JSON_DEPTH);
        return NULL;
    }
    if (jp_ws(p) != 0)
        return NULL;
    c = jp_peek(p);
    switch (c) {
    case '{':
        return jp_object(p, depth);
    case '[':
        return jp_array(p, depth);
    case '"':
        return jp_string(p);
    case -1:
        jp_fail(p, "Unexpected end of content");
        return NULL;
    default:
        break;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return jp_number(p);
    if (jp_lit(p, "true"))
        return json_true();
    if (jp_lit(p, "false"))
        return json_false();
    if (jp_lit(p, "null"))
        return json_null();
    jp_fail(p, "Unexpected character encountered while parsing value: %c",
            c >= 0x20 && c < 0x7f ? c : '?');
    return NULL;
}

static json_t *
jp_run(struct jp *p)
{
    json_t *v = jp_value(p, 0);

    if (!v)
        return NULL;
    if (jp_ws(p) != 0 || p->off < p->len) {
        if (!p->failed)
            jp_fail(p, "Additional text encountered after finished reading JSON content: %c",
                    jp_peek(p) >= 0x20 && jp_peek(p) < 0x7f ? jp_peek(p) : '?');
        json_decref(v);
        return NULL;
    }
    return v;
}

json_t *
deploy_jsonc_parse(const char *text, size_t len, unsigned flags, struct pgcmk_jsonc_pos *pos,
                   char *msg, size_t msg_cap, int *eline, int *ecol, size_t *eoff)
{
    struct jp p;
    json_t *v;

    memset(&p, 0, sizeof(p));
    p.s = text ? text : "";
    p.len = text ? len : 0;
    p.line = 1;
    p.col = 1;
    p.flags = flags;
    p.pos = pos;
    p.msg = msg;
    p.msg_cap = msg_cap;
    v = jp_run(&p);
    if (!v) {
        *eline = p.line;
        *ecol = p.col;
        if (eoff)
            *eoff = p.off;
        if (p.plen && strlen(msg) + p.plen + 16 < msg_cap) {
            size_t m = strlen(msg);

            snprintf(msg + m, msg_cap - m, ". Path '%s'", p.path);
        }
        if (p.err_in_tpl && (flags & JSONC_F_UNQUOTED_KEYS)) {
            /* report the position inside the template file */
            if (*eline == p.tpl_line)
                *ecol = *ecol - p.tpl_col + 1;
            *eline = *eline - p.tpl_line + 1;
            if (eoff)
                *eoff = SIZE_MAX; /* marks "inside the template" for the caller */
        }
    }
    return v;
}

/* ---- public -----------------------------------------------------------------------------------
 */

json_t *
pgcmk_jsonc_parse(const char *text, size_t len, struct pgcmk_err *err)
{
    return pgcmk_jsonc_parse_pos(text, len, NULL, err);
}

json_t *
pgcmk_jsonc_parse_pos(const char *text, size_t len, struct pgcmk_jsonc_pos **pos,
                      struct pgcmk_err *err)
{
    char msg[256] = "";
    int line = 0, col = 0;
    struct pgcmk_jsonc_pos *pp = NULL;
    json_t *v;

    if (pos) {
        *pos = NULL;
        pp = pgcmk_xcalloc(1, sizeof(*pp));
    }
    v = deploy_jsonc_parse(text, len, 0, pp, msg, sizeof(msg), &line, &col, NULL);
    if (!v) {
        pgcmk_jsonc_pos_free(pp);
        pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, NULL,
                      "The request content is not valid JSON: %s, line %d, column %d.", msg, line,
                      col);
        return NULL;
    }
    if (pos)
        *pos = pp;
    return v;
}

void
pgcmk_jsonc_pos_free(struct pgcmk_jsonc_pos *pos)
{
    if (!pos)
        return;
    free(pos->a);
    free(pos);
}

static int
loc_cmp(const void *a, const void *b)
{
    const struct jsonc_loc *x = a, *y = b;

    return (x->v > y->v) - (x->v < y->v);
}

int
deploy_pos_find(const struct pgcmk_jsonc_pos *pos, const json_t *v, int *line, int *col)
{
    struct jsonc_loc key, *hit;
    struct pgcmk_jsonc_pos *mp = (struct pgcmk_jsonc_pos *)pos; /* sorting is a cache */

    if (!pos || !v || pos->n == 0)
        return -1;
    if (!pos->sorted) {
        qsort(mp->a, mp->n, sizeof(*mp->a), loc_cmp);
        mp->sorted = 1;
    }
    key.v = v;
    hit = bsearch(&key, pos->a, pos->n, sizeof(*pos->a), loc_cmp);
    if (!hit)
        return -1;
    *line = hit->line;
    *col = hit->col;
    return 0;
}

json_t *
pgcmk_deploy_parse_body(const char *text, size_t len, struct pgcmk_err *err)
{
    return pgcmk_deploy_parse_body_pos(text, len, NULL, err);
}

json_t *
pgcmk_deploy_parse_body_pos(const char *text, size_t len, struct pgcmk_jsonc_pos **pos,
                            struct pgcmk_err *err)
{
    char msg[256] = "";
    int line = 0, col = 0;
    size_t eoff = 0;
    struct pgcmk_jsonc_pos *pp = pgcmk_xcalloc(1, sizeof(*pp));
    json_t *body, *props, *tpl;

    if (pos)
        *pos = NULL;
    body = deploy_jsonc_parse(text, len, JSONC_F_UNQUOTED_KEYS, pp, msg, sizeof(msg), &line, &col,
                              &eoff);
    if (!body) {
        pgcmk_jsonc_pos_free(pp);
        if (eoff == SIZE_MAX)
            return pgcmk_err_set(err, PGCMK_E_INVALID_TEMPLATE, NULL,
                                 "Deployment template parse failed: '%s, line %d, column %d.'.",
                                 msg, line, col),
                   NULL;
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, NULL,
                             "The request content is not valid JSON: %s, line %d, column %d.", msg,
                             line, col),
               NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        pgcmk_jsonc_pos_free(pp);
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, NULL,
                             "The request content must be a JSON object."),
               NULL;
    }
    props = json_object_get(body, "properties");
    tpl = json_is_object(props) ? json_object_get(props, "template") : NULL;
    if (json_is_string(tpl)) {
        json_t *parsed;

        msg[0] = '\0';
        parsed = deploy_jsonc_parse(json_string_value(tpl), json_string_length(tpl), 0, pp, msg,
                                    sizeof(msg), &line, &col, NULL);
        if (!parsed) {
            json_decref(body);
            pgcmk_jsonc_pos_free(pp);
            return pgcmk_err_set(err, PGCMK_E_INVALID_TEMPLATE, NULL,
                                 "Deployment template parse failed: '%s, line %d, column %d.'.",
                                 msg, line, col),
                   NULL;
        }
        for (size_t i = 0; i < pp->n; i++)
            if (pp->a[i].v == tpl)
                pp->a[i].v = NULL; /* the string goes away now */
        pp->sorted = 0;
        json_object_set_new(props, "template", parsed);
    }
    if (pos)
        *pos = pp;
    else
        pgcmk_jsonc_pos_free(pp);
    return body;
}
