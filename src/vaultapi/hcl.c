/* hcl.c - HCL (version 1) to JSON, the subset HashiCorp Vault's policies use; pure, no I/O.
 *
 *   file   := items EOF
 *   items  := { item [","] }
 *   item   := key { key } ( "=" value | "{" items "}" )      key := IDENT | STRING
 *   value  := STRING | NUMBER | true | false | HEREDOC | "[" [ value { "," value } [","] ] "]"
 *           | "{" items "}"
 *
 * `path "kv/x" { ... }` (a key with labels and a block) becomes {"path": [{"kv/x": {...}}]}: the
 * block key always maps to an array, so that several stanzas keep their order and duplicates.
 * Comments: '#' and '//' to the end of the line, slash-star blocks. Heredocs: <<EOF / <<-EOF.
 * Errors name the line and column as HCL does: "At 3:14: ...". */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/vacl.h"

#define HCL_MAX_DEPTH 64

enum tok {
    T_EOF,
    T_IDENT,
    T_STRING,
    T_NUMBER,
    T_HEREDOC,
    T_LBRACE,
    T_RBRACE,
    T_LBRACK,
    T_RBRACK,
    T_ASSIGN,
    T_COMMA,
    T_ERR,
};

static const char *const tok_names[] = {"EOF",     "IDENT",  "STRING", "NUMBER",
                                        "HEREDOC", "LBRACE", "RBRACE", "LBRACK",
                                        "RBRACK",  "ASSIGN", "COMMA",  "ILLEGAL"};

struct lexer {
    const char *s;
    size_t len, pos;
    int line, col;
    /* the current token */
    enum tok t;
    int t_line, t_col;
    char *text; /* IDENT, STRING, NUMBER, HEREDOC: malloc'ed */
    size_t text_len;
    int failed;
    char *err;
    size_t errlen;
};

static void
lx_fail(struct lexer *lx, int line, int col, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (lx->failed)
        return;
    lx->failed = 1;
    n = snprintf(lx->err, lx->errlen, "At %d:%d: ", line, col);
    if (n < 0 || (size_t)n >= lx->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(lx->err + n, lx->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static int
peekc(const struct lexer *lx, size_t ahead)
{
    return lx->pos + ahead < lx->len ? (unsigned char)lx->s[lx->pos + ahead] : -1;
}

static void
advance(struct lexer *lx)
{
    if (lx->pos >= lx->len)
        return;
    if (lx->s[lx->pos] == '\n') {
        lx->line++;
        lx->col = 1;
    } else {
        lx->col++;
    }
    lx->pos++;
}

/* Skips blanks and comments; 0, or -1 on an unterminated block comment. */
static int
skip_space(struct lexer *lx)
{
    for (;;) {
        int c = peekc(lx, 0);

        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            advance(lx);
        } else if (c == '#' || (c == '/' && peekc(lx, 1) == '/')) {
            while (peekc(lx, 0) != -1 && peekc(lx, 0) != '\n')
                advance(lx);
        } else if (c == '/' && peekc(lx, 1) == '*') {
            int l = lx->line, co = lx->col;

            advance(lx);
            advance(lx);
            while (!(peekc(lx, 0) == '*' && peekc(lx, 1) == '/')) {
                if (peekc(lx, 0) == -1) {
                    lx_fail(lx, l, co, "comment not terminated");
                    return -1;
                }
                advance(lx);
            }
            advance(lx);
            advance(lx);
        } else {
            return 0;
        }
    }
}

struct buf {
    char *p;
    size_t n, cap;
};

static int
buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        char *p;

        while (cap < b->n + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static void
put_utf8(struct buf *b, unsigned cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    }
    buf_add(b, u, n);
}

static void
lex_string(struct lexer *lx, struct buf *b)
{
    advance(lx); /* the opening quote */
    for (;;) {
        int c = peekc(lx, 0);

        if (c == -1 || c == '\n') {
            lx_fail(lx, lx->t_line, lx->t_col, "literal not terminated");
            return;
        }
        if (c == '"') {
            advance(lx);
            return;
        }
        if (c == '\\') {
            int e = peekc(lx, 1);
            char ch;

            advance(lx);
            advance(lx);
            switch (e) {
            case 'n':
                ch = '\n';
                break;
            case 't':
                ch = '\t';
                break;
            case 'r':
                ch = '\r';
                break;
            case '"':
            case '\\':
            case '/':
                ch = (char)e;
                break;
            case 'u': {
                unsigned cp = 0;

                for (int i = 0; i < 4; i++) {
                    int h = peekc(lx, 0);

                    if (h == -1 || !isxdigit(h)) {
                        lx_fail(lx, lx->line, lx->col, "illegal char escape");
                        return;
                    }
                    cp = cp * 16 + (unsigned)(isdigit(h) ? h - '0' : (tolower(h) - 'a' + 10));
                    advance(lx);
                }
                if (cp == 0) {
                    lx_fail(lx, lx->line, lx->col, "illegal char escape");
                    return;
                }
                put_utf8(b, cp);
                continue;
            }
            default:
                lx_fail(lx, lx->line, lx->col, "illegal char escape");
                return;
            }
            buf_add(b, &ch, 1);
            continue;
        }
        if (c == 0) {
            lx_fail(lx, lx->line, lx->col, "illegal char");
            return;
        }
        buf_add(b, lx->s + lx->pos, 1);
        advance(lx);
    }
}

static void
lex_heredoc(struct lexer *lx, struct buf *b)
{
    char anchor[128];
    size_t an = 0;
    int indent = 0;

    advance(lx);
    advance(lx);
    if (peekc(lx, 0) == '-') {
        indent = 1;
        advance(lx);
    }
    while (peekc(lx, 0) != -1 && (isalnum(peekc(lx, 0)) || peekc(lx, 0) == '_')) {
        if (an + 1 >= sizeof(anchor)) {
            lx_fail(lx, lx->t_line, lx->t_col, "heredoc anchor too long");
            return;
        }
        anchor[an++] = lx->s[lx->pos];
        advance(lx);
    }
    anchor[an] = '\0';
    if (peekc(lx, 0) == '\r')
        advance(lx);
    if (an == 0 || peekc(lx, 0) != '\n') {
        lx_fail(lx, lx->t_line, lx->t_col, "heredoc expected anchor and newline");
        return;
    }
    advance(lx);
    for (;;) {
        size_t start = lx->pos, end, s2;

        if (peekc(lx, 0) == -1) {
            lx_fail(lx, lx->t_line, lx->t_col, "heredoc not terminated");
            return;
        }
        while (peekc(lx, 0) != -1 && peekc(lx, 0) != '\n')
            advance(lx);
        end = lx->pos;
        s2 = start;
        if (indent)
            while (s2 < end && (lx->s[s2] == ' ' || lx->s[s2] == '\t'))
                s2++;
        {
            size_t e2 = end;

            if (e2 > s2 && lx->s[e2 - 1] == '\r')
                e2--;
            if (e2 - s2 == an && memcmp(lx->s + s2, anchor, an) == 0)
                return;
        }
        buf_add(b, lx->s + start, end - start);
        if (peekc(lx, 0) == '\n') {
            buf_add(b, "\n", 1);
            advance(lx);
        }
    }
}

static void
next(struct lexer *lx)
{
    struct buf b = {0};
    int c;

    free(lx->text);
    lx->text = NULL;
    lx->text_len = 0;
    if (lx->failed || skip_space(lx) < 0) {
        lx->t = T_ERR;
        return;
    }
    lx->t_line = lx->line;
    lx->t_col = lx->col;
    c = peekc(lx, 0);
    switch (c) {
    case -1:
        lx->t = T_EOF;
        return;
    case '{':
        lx->t = T_LBRACE;
        advance(lx);
        return;
    case '}':
        lx->t = T_RBRACE;
        advance(lx);
        return;
    case '[':
        lx->t = T_LBRACK;
        advance(lx);
        return;
    case ']':
        lx->t = T_RBRACK;
        advance(lx);
        return;
    case '=':
        lx->t = T_ASSIGN;
        advance(lx);
        return;
    case ',':
        lx->t = T_COMMA;
        advance(lx);
        return;
    case '"':
        lx->t = T_STRING;
        buf_add(&b, "", 0);
        lex_string(lx, &b);
        break;
    case '<':
        if (peekc(lx, 1) == '<') {
            lx->t = T_HEREDOC;
            buf_add(&b, "", 0);
            lex_heredoc(lx, &b);
            break;
        }
        /* fall through */
    default:
        if (isalpha(c) || c == '_') {
            lx->t = T_IDENT;
            while (peekc(lx, 0) != -1 && (isalnum(peekc(lx, 0)) || peekc(lx, 0) == '_' ||
                                          peekc(lx, 0) == '-' || peekc(lx, 0) == '.')) {
                buf_add(&b, lx->s + lx->pos, 1);
                advance(lx);
            }
        } else if (isdigit(c) || (c == '-' && peekc(lx, 1) != -1 && isdigit(peekc(lx, 1)))) {
            lx->t = T_NUMBER;
            do {
                buf_add(&b, lx->s + lx->pos, 1);
                advance(lx);
            } while (peekc(lx, 0) != -1 && (isalnum(peekc(lx, 0)) || peekc(lx, 0) == '.' ||
                                            ((peekc(lx, 0) == '-' || peekc(lx, 0) == '+') &&
                                             (b.p[b.n - 1] == 'e' || b.p[b.n - 1] == 'E'))));
        } else {
            lx_fail(lx, lx->t_line, lx->t_col, "illegal char");
            lx->t = T_ERR;
            return;
        }
        break;
    }
    if (lx->failed) {
        free(b.p);
        lx->t = T_ERR;
        return;
    }
    if (b.p == NULL) {
        lx_fail(lx, lx->t_line, lx->t_col, "out of memory");
        lx->t = T_ERR;
        return;
    }
    lx->text = b.p;
    lx->text_len = b.n;
}

static void
expected(struct lexer *lx, const char *what)
{
    if (lx->t == T_ERR)
        return;
    lx_fail(lx, lx->t_line, lx->t_col, "expected: %s got: %s", what, tok_names[lx->t]);
}

static json_t *parse_value(struct lexer *lx, int depth);
static json_t *parse_items(struct lexer *lx, int depth, enum tok end);

static json_t *
parse_number(struct lexer *lx)
{
    char *end;
    long long v;
    double d;

    errno = 0;
    v = strtoll(lx->text, &end, 10);
    if (*end == '\0' && errno == 0)
        return json_integer(v);
    errno = 0;
    d = strtod(lx->text, &end);
    /* jansson holds finite numbers only: 1e999 is as illegal as 1x */
    if (*end == '\0' && errno == 0 && isfinite(d))
        return json_real(d);
    lx_fail(lx, lx->t_line, lx->t_col, "illegal number %s", lx->text);
    return NULL;
}

static json_t *
parse_value(struct lexer *lx, int depth)
{
    json_t *v = NULL;

    if (depth > HCL_MAX_DEPTH) {
        lx_fail(lx, lx->t_line, lx->t_col, "nested too deeply");
        return NULL;
    }
    switch (lx->t) {
    case T_STRING:
    case T_HEREDOC:
        v = json_stringn(lx->text, lx->text_len);
        if (v == NULL)
            lx_fail(lx, lx->t_line, lx->t_col, "invalid UTF-8 in string");
        next(lx);
        return v;
    case T_NUMBER:
        v = parse_number(lx);
        next(lx);
        return v;
    case T_IDENT:
        if (strcmp(lx->text, "true") == 0)
            v = json_true();
        else if (strcmp(lx->text, "false") == 0)
            v = json_false();
        else
            lx_fail(lx, lx->t_line, lx->t_col, "Unknown token: %s", lx->text);
        next(lx);
        return v;
    case T_LBRACK:
        v = json_array();
        next(lx);
        while (lx->t != T_RBRACK) {
            json_t *e = parse_value(lx, depth + 1);

            if (e == NULL) {
                json_decref(v);
                return NULL;
            }
            json_array_append_new(v, e);
            if (lx->t == T_COMMA) {
                next(lx);
            } else if (lx->t != T_RBRACK) {
                expected(lx, "COMMA | RBRACK");
                json_decref(v);
                return NULL;
            }
        }
        next(lx);
        return v;
    case T_LBRACE:
        next(lx);
        v = parse_items(lx, depth + 1, T_RBRACE);
        if (v == NULL)
            return NULL;
        next(lx); /* the closing brace */
        return v;
    default:
        expected(lx, "STRING | NUMBER | BOOL | LBRACK | LBRACE");
        return NULL;
    }
}

/* Appends `obj` to the array under `key` in `into` (creating it). */
static void
append_block(json_t *into, const char *key, json_t *obj)
{
    json_t *arr = json_object_get(into, key);

    if (!json_is_array(arr)) {
        arr = json_array();
        json_object_set_new(into, key, arr);
    }
    json_array_append_new(arr, obj);
}

static json_t *
parse_items(struct lexer *lx, int depth, enum tok end)
{
    json_t *obj = json_object();

    if (depth > HCL_MAX_DEPTH) {
        lx_fail(lx, lx->t_line, lx->t_col, "nested too deeply");
        json_decref(obj);
        return NULL;
    }
    while (lx->t != end) {
        char *keys[8];
        int nk = 0, ok = 1;
        json_t *v;

        while (lx->t == T_IDENT || lx->t == T_STRING) {
            if (nk == 8) {
                lx_fail(lx, lx->t_line, lx->t_col, "too many keys");
                ok = 0;
                break;
            }
            if (strlen(lx->text) != lx->text_len) {
                lx_fail(lx, lx->t_line, lx->t_col, "illegal char in key");
                ok = 0;
                break;
            }
            keys[nk++] = lx->text;
            lx->text = NULL;
            next(lx);
        }
        if (ok && nk == 0) {
            expected(lx, end == T_EOF ? "IDENT | STRING" : "IDENT | STRING | RBRACE");
            ok = 0;
        }
        if (ok && lx->t == T_ASSIGN) {
            if (nk > 1) {
                lx_fail(lx, lx->t_line, lx->t_col, "nested object expected: LBRACE got: ASSIGN");
                ok = 0;
            } else {
                next(lx);
                v = parse_value(lx, depth + 1);
                if (v == NULL)
                    ok = 0;
                else if (json_is_object(v) && json_is_object(json_object_get(obj, keys[0])))
                    /* `key = {...}` twice: HCL keeps both; keep them as blocks */
                    append_block(obj, keys[0], v);
                else
                    json_object_set_new(obj, keys[0], v);
            }
        } else if (ok && lx->t == T_LBRACE) {
            next(lx);
            v = parse_items(lx, depth + 1, T_RBRACE);
            if (v == NULL) {
                ok = 0;
            } else {
                next(lx);
                for (int i = nk - 1; i >= 1; i--) {
                    json_t *wrap = json_object();

                    json_object_set_new(wrap, keys[i], v);
                    v = wrap;
                }
                append_block(obj, keys[0], v);
            }
        } else if (ok) {
            expected(lx, "ASSIGN | LBRACE");
            ok = 0;
        }
        for (int i = 0; i < nk; i++)
            free(keys[i]);
        if (!ok) {
            json_decref(obj);
            return NULL;
        }
        if (lx->t == T_COMMA)
            next(lx);
        if (lx->t == T_EOF && end != T_EOF) {
            expected(lx, "RBRACE");
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *
pgcmk_hcl_parse(const char *text, size_t len, char *err, size_t errlen)
{
    struct lexer lx = {0};
    json_t *root;
    size_t i = 0;

    if (errlen)
        err[0] = '\0';
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    if (i < len && text[i] == '{') {
        json_error_t je;

        root = json_loadb(text, len, JSON_DECODE_ANY, &je);
        if (root == NULL) {
            snprintf(err, errlen, "At %d:%d: %s", je.line, je.column, je.text);
            return NULL;
        }
        if (!json_is_object(root)) {
            json_decref(root);
            snprintf(err, errlen, "At 1:1: expected a JSON object");
            return NULL;
        }
        return root;
    }
    lx.s = text;
    lx.len = len;
    lx.line = 1;
    lx.col = 1;
    lx.err = err;
    lx.errlen = errlen;
    next(&lx);
    root = parse_items(&lx, 0, T_EOF);
    if (lx.failed) {
        json_decref(root);
        root = NULL;
    }
    free(lx.text);
    return root;
}
