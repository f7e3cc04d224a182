/* expr.c - template language expressions: "[concat(parameters('a'), '-x')[0].name]". The parser
 * builds a small tree; the evaluator walks it with a step budget and a depth cap, and every
 * failure becomes InvalidTemplate naming the place and the expression. Also uniqueString() and
 * guid() as Azure computes them. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "pgcmk/core.h"
#include "pgcmk/deploy.h"
#include "deploy/internal.h"

/* ---- parsing ----------------------------------------------------------------------------------
 */

struct ep {
    const char *s;
    size_t len, off;
    char *msg;
    size_t cap;
    int failed;
};

static struct expr *ep_expr(struct ep *p, int depth);

static void
ep_fail(struct ep *p, const char *fmt, ...)
{
    va_list ap;

    if (p->failed)
        return;
    p->failed = 1;
    va_start(ap, fmt);
    vsnprintf(p->msg, p->cap, fmt, ap);
    va_end(ap);
}

static void
ep_ws(struct ep *p)
{
    while (p->off < p->len && isspace((unsigned char)p->s[p->off]))
        p->off++;
}

static int
ep_peek(struct ep *p)
{
    ep_ws(p);
    return p->off < p->len ? (unsigned char)p->s[p->off] : -1;
}

static struct expr *
ep_new(enum expr_kind k)
{
    struct expr *e = pgcmk_xcalloc(1, sizeof(*e));

    e->kind = k;
    return e;
}

void
deploy_expr_free(struct expr *e)
{
    if (!e)
        return;
    json_decref(e->lit);
    free(e->name);
    deploy_expr_free(e->base);
    deploy_expr_free(e->index);
    for (size_t i = 0; i < e->nargs; i++)
        deploy_expr_free(e->args[i]);
    free(e->args);
    free(e);
}

static int
ident_char(int c, int first)
{
    return isalpha(c) || c == '_' || (!first && (isdigit(c) || c == '$'));
}

static char *
ep_ident(struct ep *p)
{
    size_t st;

    ep_ws(p);
    st = p->off;
    if (p->off >= p->len || !ident_char((unsigned char)p->s[p->off], 1))
        return NULL;
    while (p->off < p->len && ident_char((unsigned char)p->s[p->off], 0))
        p->off++;
    return pgcmk_xstrndup(p->s + st, p->off - st);
}

static struct expr *
ep_string(struct ep *p)
{
    size_t cap = 16, n = 0;
    char *buf = pgcmk_xmalloc(cap);
    struct expr *e;
    json_t *v;

    p->off++; /* opening quote */
    for (;;) {
        char c;

        if (p->off >= p->len) {
            free(buf);
            ep_fail(p, "the string literal is not terminated");
            return NULL;
        }
        c = p->s[p->off++];
        if (c == '\'') {
            if (p->off < p->len && p->s[p->off] == '\'') {
                p->off++;
            } else {
                break;
            }
        }
        if (n + 1 >= cap) {
            cap *= 2;
            buf = pgcmk_xrealloc(buf, cap);
        }
        buf[n++] = c;
    }
    v = json_stringn(buf, n);
    free(buf);
    if (!v) {
        ep_fail(p, "the string literal is not valid UTF-8");
        return NULL;
    }
    e = ep_new(EXPR_LIT);
    e->lit = v;
    return e;
}

static struct expr *
ep_number(struct ep *p)
{
    size_t st = p->off;
    long long v = 0;
    int neg = 0;
    struct expr *e;

    if (p->s[p->off] == '-' || p->s[p->off] == '+') {
        neg = p->s[p->off] == '-';
        p->off++;
    }
    if (p->off >= p->len || !isdigit((unsigned char)p->s[p->off])) {
        ep_fail(p, "the number at position %zu is not valid", st);
        return NULL;
    }
    while (p->off < p->len && isdigit((unsigned char)p->s[p->off])) {
        int d = p->s[p->off++] - '0';

        if (v > (INT64_MAX - d) / 10) {
            ep_fail(p, "the number at position %zu is too large", st);
            return NULL;
        }
        v = v * 10 + d;
    }
    if (p->off < p->len && p->s[p->off] == '.') {
        ep_fail(p, "the number at position %zu is not an integer", st);
        return NULL;
    }
    e = ep_new(EXPR_LIT);
    e->lit = json_integer(neg ? -v : v);
    return e;
}

static struct expr *
ep_call(struct ep *p, char *name, int depth)
{
    struct expr *e = ep_new(EXPR_CALL);
    size_t cap = 0;

    e->name = name;
    p->off++; /* '(' */
    if (ep_peek(p) == ')') {
        p->off++;
        return e;
    }
    for (;;) {
        struct expr *a = ep_expr(p, depth + 1);

        if (!a) {
            deploy_expr_free(e);
            return NULL;
        }
        if (e->nargs == cap) {
            cap = cap ? cap * 2 : 4;
            e->args = pgcmk_xrealloc(e->args, cap * sizeof(*e->args));
        }
        e->args[e->nargs++] = a;
        if (ep_peek(p) == ',') {
            p->off++;
            continue;
        }
        if (ep_peek(p) == ')') {
            p->off++;
            return e;
        }
        ep_fail(p, "expected ',' or ')' at position %zu", p->off);
        deploy_expr_free(e);
        return NULL;
    }
}

static struct expr *
ep_primary(struct ep *p, int depth)
{
    int c = ep_peek(p);
    char *name;

    if (c == '\'')
        return ep_string(p);
    if (c == '-' || c == '+' || (c >= '0' && c <= '9'))
        return ep_number(p);
    name = ep_ident(p);
    if (!name) {
        if (c == -1)
            ep_fail(p, "the expression ends unexpectedly");
        else
            ep_fail(p, "unexpected character '%c' at position %zu", isprint(c) ? c : '?', p->off);
        return NULL;
    }
    if (ep_peek(p) == '.') {
        /* ns.fn(...) : a user-defined function */
        size_t save = p->off;
        char *member;

        p->off++;
        member = ep_ident(p);
        if (member && ep_peek(p) == '(') {
            char *full = pgcmk_xasprintf("%s.%s", name, member);

            free(name);
            free(member);
            return ep_call(p, full, depth);
        }
        free(member);
        p->off = save;
    }
    if (ep_peek(p) != '(') {
        ep_fail(p, "'%.64s' is not a function call; literals are 'quoted'", name);
        free(name);
        return NULL;
    }
    return ep_call(p, name, depth);
}

static struct expr *
ep_expr(struct ep *p, int depth)
{
    struct expr *e;

    if (depth > TPL_MAX_EXPR_DEPTH) {
        ep_fail(p, "the expression is nested more than %d levels deep", TPL_MAX_EXPR_DEPTH);
        return NULL;
    }
    e = ep_primary(p, depth);
    while (e) {
        int c = ep_peek(p);

        if (c == '.') {
            struct expr *x;
            char *name;

            p->off++;
            name = ep_ident(p);
            if (!name) {
                ep_fail(p, "expected a property name at position %zu", p->off);
                deploy_expr_free(e);
                return NULL;
            }
            x = ep_new(EXPR_PROP);
            x->name = name;
            x->base = e;
            e = x;
        } else if (c == '[') {
            struct expr *x, *idx;

            p->off++;
            idx = ep_expr(p, depth + 1);
            if (!idx) {
                deploy_expr_free(e);
                return NULL;
            }
            if (ep_peek(p) != ']') {
                ep_fail(p, "expected ']' at position %zu", p->off);
                deploy_expr_free(idx);
                deploy_expr_free(e);
                return NULL;
            }
            p->off++;
            x = ep_new(EXPR_INDEX);
            x->base = e;
            x->index = idx;
            e = x;
        } else {
            break;
        }
    }
    return e;
}

int
deploy_is_expr(const char *s)
{
    size_t n = strlen(s);

    return n >= 2 && s[0] == '[' && s[1] != '[' && s[n - 1] == ']';
}

struct expr *
deploy_expr_parse(const char *s, size_t len, char *msg, size_t cap)
{
    struct ep p = {s, len, 0, msg, cap, 0};
    struct expr *e;

    msg[0] = '\0';
    if (len > TPL_MAX_EXPR_LEN) {
        snprintf(msg, cap, "the expression is longer than %d characters", TPL_MAX_EXPR_LEN);
        return NULL;
    }
    e = ep_expr(&p, 0);
    if (e && ep_peek(&p) != -1) {
        ep_fail(&p, "unexpected '%c' at position %zu after the end of the expression",
                isprint(ep_peek(&p)) ? ep_peek(&p) : '?', p.off);
        deploy_expr_free(e);
        e = NULL;
    }
    if (!e && !msg[0])
        snprintf(msg, cap, "the expression is not valid");
    return e;
}

int
deploy_expr_calls(const struct expr *e, const char *fn)
{
    if (!e)
        return 0;
    if (e->kind == EXPR_CALL) {
        if (strcmp(fn, "list*") == 0 ? pgcmk_strneq_ci(e->name, "list", 4)
                                     : pgcmk_streq_ci(e->name, fn))
            return 1;
    }
    if (deploy_expr_calls(e->base, fn) || deploy_expr_calls(e->index, fn))
        return 1;
    for (size_t i = 0; i < e->nargs; i++)
        if (deploy_expr_calls(e->args[i], fn))
            return 1;
    return 0;
}

/* ---- errors and budget ------------------------------------------------------------------------
 */

json_t *
deploy_fail(struct eval_ctx *cx, const char *fmt, ...)
{
    char inner[320];
    va_list ap;

    if (cx->failed_here)
        return NULL;
    cx->failed_here = 1;
    va_start(ap, fmt);
    vsnprintf(inner, sizeof(inner), fmt, ap);
    va_end(ap);
    if (cx->text)
        pgcmk_err_set(cx->err, PGCMK_E_INVALID_TEMPLATE, NULL,
                      "Deployment template validation failed: '%s is not valid: %s. Expression "
                      "'%.128s' at '%.96s'.'",
                      cx->where ? cx->where : "The template", inner, cx->text,
                      cx->path ? cx->path : "");
    else
        pgcmk_err_set(cx->err, PGCMK_E_INVALID_TEMPLATE, NULL,
                      "Deployment template validation failed: '%s is not valid: %s at '%.96s'.'",
                      cx->where ? cx->where : "The template", inner, cx->path ? cx->path : "");
    return NULL;
}

int
deploy_step(struct eval_ctx *cx, long n)
{
    *cx->steps += n;
    if (*cx->steps > TPL_MAX_STEPS) {
        deploy_fail(cx, "the template needs more than %d evaluation steps", TPL_MAX_STEPS);
        return -1;
    }
    return 0;
}

static long
count_nodes(const json_t *v, long limit)
{
    long n = 1;

    if (json_is_string(v))
        return 1 + (long)(json_string_length(v) / 64);
    if (json_is_array(v)) {
        size_t i;
        json_t *x;

        json_array_foreach(v, i, x) {
            n += count_nodes(x, limit - n);
            if (n > limit)
                return n;
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;

        json_object_foreach((json_t *)v, k, x) {
            n += 1 + count_nodes(x, limit - n);
            if (n > limit)
                return n;
        }
    }
    return n;
}

int
deploy_check_size(struct eval_ctx *cx, const json_t *v)
{
    long n;

    if (!json_is_array(v) && !json_is_object(v))
        return 0;
    n = count_nodes(v, TPL_MAX_NODES);
    if (deploy_step(cx, n) != 0)
        return -1;
    if (n > TPL_MAX_NODES) {
        deploy_fail(cx, "the value is larger than %d elements", TPL_MAX_NODES);
        return -1;
    }
    return 0;
}

/* ---- evaluation -------------------------------------------------------------------------------
 */

const char *
deploy_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return "String";
    case JSON_INTEGER:
        return "Integer";
    case JSON_REAL:
        return "Float";
    case JSON_TRUE:
    case JSON_FALSE:
        return "Boolean";
    case JSON_ARRAY:
        return "Array";
    case JSON_OBJECT:
        return "Object";
    default:
        return "Null";
    }
}

static json_t *
obj_get_ci(const json_t *o, const char *k)
{
    const char *key;
    json_t *v, *exact = json_object_get(o, k);

    if (exact)
        return exact;
    json_object_foreach((json_t *)o, key, v) {
        if (pgcmk_streq_ci(key, k))
            return v;
    }
    return NULL;
}

static json_t *
eval_prop(struct eval_ctx *cx, json_t *base, const char *name)
{
    json_t *v;

    if (!json_is_object(base)) {
        deploy_fail(cx,
                    "the language expression property '%.64s' can't be evaluated, the value "
                    "is of type '%s', not 'Object'",
                    name, deploy_type_name(base));
        return NULL;
    }
    v = obj_get_ci(base, name);
    if (!v) {
        char avail[160] = "";
        size_t n = 0;
        const char *k;
        json_t *x;

        json_object_foreach(base, k, x) {
            int w = snprintf(avail + n, sizeof(avail) - n, "%s%s", n ? ", " : "", k);

            if (w < 0 || (size_t)w >= sizeof(avail) - n) {
                avail[n] = '\0';
                break;
            }
            n += (size_t)w;
        }
        deploy_fail(cx,
                    "the language expression property '%.64s' doesn't exist, available "
                    "properties are '%s'",
                    name, avail);
        return NULL;
    }
    return json_incref(v);
}

static json_t *
eval_index(struct eval_ctx *cx, json_t *base, json_t *idx)
{
    if (json_is_array(base)) {
        json_int_t i;

        if (!json_is_integer(idx))
            return deploy_fail(cx, "an array index must be an integer, not '%s'",
                               deploy_type_name(idx));
        i = json_integer_value(idx);
        if (i < 0 || (size_t)i >= json_array_size(base))
            return deploy_fail(cx, "the language expression array index '%lld' is out of bounds",
                               (long long)i);
        return json_incref(json_array_get(base, (size_t)i));
    }
    if (json_is_object(base)) {
        if (!json_is_string(idx))
            return deploy_fail(cx, "an object index must be a string, not '%s'",
                               deploy_type_name(idx));
        return eval_prop(cx, base, json_string_value(idx));
    }
    return deploy_fail(cx, "the value of type '%s' cannot be indexed", deploy_type_name(base));
}

static json_t *eval_call(struct eval_ctx *cx, const struct expr *e);

json_t *
deploy_eval_expr(struct eval_ctx *cx, const struct expr *e)
{
    json_t *base, *idx, *out = NULL;

    if (deploy_step(cx, 1) != 0)
        return NULL;
    switch (e->kind) {
    case EXPR_LIT:
        return json_incref(e->lit);
    case EXPR_CALL:
        return eval_call(cx, e);
    case EXPR_PROP:
        base = deploy_eval_expr(cx, e->base);
        if (!base)
            return NULL;
        out = eval_prop(cx, base, e->name);
        json_decref(base);
        return out;
    case EXPR_INDEX:
        base = deploy_eval_expr(cx, e->base);
        if (!base)
            return NULL;
        idx = deploy_eval_expr(cx, e->index);
        if (idx)
            out = eval_index(cx, base, idx);
        json_decref(idx);
        json_decref(base);
        return out;
    }
    return NULL;
}

static json_t *
call_user(struct eval_ctx *cx, const struct expr *e, json_t **args)
{
    struct pgcmk_tpl *t = cx->t;
    struct tpl_userfn *fn = NULL;
    struct eval_ctx sub;
    json_t *out, *value;
    char lname[160];

    pgcmk_lower(lname, sizeof(lname), e->name);
    for (size_t i = 0; i < t->nfns; i++)
        if (strcmp(t->fns[i].name, lname) == 0)
            fn = &t->fns[i];
    if (!fn)
        return deploy_fail(cx, "the template function '%.64s' is not valid", e->name);
    if (cx->fn)
        return deploy_fail(cx,
                           "a user-defined function cannot call another user-defined "
                           "function ('%.64s')",
                           e->name);
    if (e->nargs != fn->nparams)
        return deploy_fail(cx, "the template function '%.64s' takes %zu argument(s), %zu given",
                           e->name, fn->nparams, e->nargs);
    value = json_object_get(fn->output, "value");
    if (!value)
        return deploy_fail(cx, "the template function '%.64s' has no output value", e->name);
    sub = *cx;
    sub.fn = fn;
    sub.fn_args = args;
    sub.ncopy = 0;
    sub.depth = cx->depth + 1;
    out = deploy_eval_value(&sub, value, 0, cx->path);
    cx->failed_here = sub.failed_here;
    return out;
}

static json_t *
eval_call(struct eval_ctx *cx, const struct expr *e)
{
    const struct deploy_builtin *b;
    json_t *stackargs[8], **args = stackargs, *out = NULL;
    size_t n = e->nargs, done = 0;
    int user = strchr(e->name, '.') != NULL;

    if (cx->depth > TPL_MAX_EVAL_DEPTH)
        return deploy_fail(cx, "the expressions are nested more than %d levels deep",
                           TPL_MAX_EVAL_DEPTH);
    b = user ? NULL : deploy_builtin_find(e->name);
    if (!user && !b && !pgcmk_strneq_ci(e->name, "list", 4))
        return deploy_fail(cx, "the template function '%.64s' is not valid", e->name);
    if (b && ((int)n < b->min || (b->max >= 0 && (int)n > b->max))) {
        if (b->max < 0)
            return deploy_fail(cx,
                               "the template function '%s' expects at least %d argument(s), "
                               "%zu given",
                               b->name, b->min, n);
        if (b->min == b->max)
            return deploy_fail(cx, "the template function '%s' expects %d argument(s), %zu given",
                               b->name, b->min, n);
        return deploy_fail(cx, "the template function '%s' expects %d to %d argument(s), %zu given",
                           b->name, b->min, b->max, n);
    }
    if (b && b->lazy) {
        /* if(): the condition, then only the branch taken */
        json_t *c = deploy_eval_expr(cx, e->args[0]);

        if (!c)
            return NULL;
        if (!json_is_boolean(c)) {
            json_decref(c);
            return deploy_fail(cx,
                               "the template function 'if' expects a Boolean condition, not "
                               "'%s'",
                               deploy_type_name(c));
        }
        out = deploy_eval_expr(cx, e->args[json_is_true(c) ? 1 : 2]);
        json_decref(c);
        return out;
    }
    if (n > PGCMK_ARRAY_LEN(stackargs))
        args = pgcmk_xcalloc(n, sizeof(*args));
    cx->depth++;
    for (; done < n; done++) {
        args[done] = deploy_eval_expr(cx, e->args[done]);
        if (!args[done])
            break;
    }
    if (done == n) {
        if (user)
            out = call_user(cx, e, args);
        else if (b)
            out = b->fn(cx, b->name, n, args);
        else
            out = deploy_call_list(cx, e->name, n, args);
    }
    cx->depth--;
    for (size_t i = 0; i < done; i++)
        json_decref(args[i]);
    if (args != stackargs)
        free(args);
    if (out && deploy_check_size(cx, out) != 0) {
        json_decref(out);
        out = NULL;
    }
    if (!out && !cx->failed_here)
        deploy_fail(cx, "the template function '%.64s' failed", e->name);
    return out;
}

/* Strings that came out of an evaluation and look like expressions get the escape so they are
 * not evaluated again by a nested template. */
static json_t *
escape_result(json_t *v)
{
    const char *s;

    if (!json_is_string(v))
        return v;
    s = json_string_value(v);
    if (s[0] == '[' && deploy_is_expr(s)) {
        char *e = pgcmk_xasprintf("[%s", s);
        json_t *r = json_string(e);

        free(e);
        json_decref(v);
        return r;
    }
    return v;
}

json_t *
deploy_eval_string(struct eval_ctx *cx, const char *s)
{
    size_t n = strlen(s);
    char msg[200];
    struct expr *e;
    json_t *out;
    const char *saved = cx->text;

    if (n >= 2 && s[0] == '[' && s[1] == '[')
        return json_string(cx->keep_copyindex ? s : s + 1); /* "[[" escapes a literal "[" */
    if (!deploy_is_expr(s))
        return json_string(s);
    if (deploy_step(cx, 1 + (long)(n / 64)) != 0)
        return NULL;
    cx->text = s;
    e = deploy_expr_parse(s + 1, n - 2, msg, sizeof(msg));
    if (!e) {
        deploy_fail(cx, "the language expression is not valid: %s", msg);
        cx->text = saved;
        return NULL;
    }
    if (cx->keep_copyindex && deploy_expr_calls(e, "copyIndex")) {
        deploy_expr_free(e);
        cx->text = saved;
        return json_string(s);
    }
    out = deploy_eval_expr(cx, e);
    deploy_expr_free(e);
    if (out && cx->keep_copyindex)
        out = escape_result(out);
    if (out)
        cx->text = saved;
    return out;
}

static json_t *
eval_prop_copy(struct eval_ctx *cx, const json_t *loops, json_t *into, const char *path)
{
    size_t i;
    json_t *loop;

    json_array_foreach(loops, i, loop) {
        const char *name = json_string_value(json_object_get(loop, "name"));
        const json_t *input = json_object_get(loop, "input");
        json_t *cnt, *arr;
        json_int_t count;

        if (!name || !input)
            return deploy_fail(cx, "a property copy loop needs 'name', 'count' and 'input'");
        cnt = deploy_eval_value(cx, json_object_get(loop, "count"), 0, path);
        if (!cnt)
            return NULL;
        count = json_integer_value(cnt);
        if (!json_is_integer(cnt) || count < 0 || count > TPL_MAX_COPY) {
            json_decref(cnt);
            return deploy_fail(cx, "the copy count of '%.64s' must be an integer from 0 to %d",
                               name, TPL_MAX_COPY);
        }
        json_decref(cnt);
        if (cx->ncopy >= (int)PGCMK_ARRAY_LEN(cx->copy_names))
            return deploy_fail(cx, "copy loops are nested too deeply");
        arr = json_array();
        cx->copy_names[cx->ncopy] = name;
        cx->ncopy++;
        for (json_int_t k = 0; k < count; k++) {
            json_t *v;

            cx->copy_idx[cx->ncopy - 1] = (int)k;
            v = deploy_eval_value(cx, input, 1, path);
            if (!v) {
                cx->ncopy--;
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, v);
        }
        cx->ncopy--;
        json_object_set_new(into, name, arr);
    }
    return into;
}

json_t *
deploy_eval_value(struct eval_ctx *cx, const json_t *v, int prop_copy, const char *path)
{
    const char *saved = cx->path;
    json_t *out = NULL;

    if (!v)
        return json_null();
    if (deploy_step(cx, 1) != 0)
        return NULL;
    if (cx->depth > TPL_MAX_JSON_DEPTH)
        return deploy_fail(cx, "the value is nested too deeply");
    cx->path = path;
    if (json_is_string(v)) {
        out = deploy_eval_string(cx, json_string_value(v));
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;

        out = json_array();
        cx->depth++;
        json_array_foreach(v, i, x) {
            char *p = pgcmk_xasprintf("%s[%zu]", path ? path : "", i);
            json_t *y = deploy_eval_value(cx, x, prop_copy, p);

            free(p);
            if (!y) {
                json_decref(out);
                out = NULL;
                break;
            }
            json_array_append_new(out, y);
        }
        cx->depth--;
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;

        out = json_object();
        cx->depth++;
        json_object_foreach((json_t *)v, k, x) {
            char *p;
            json_t *y;

            if (prop_copy && strcmp(k, "copy") == 0 && json_is_array(x)) {
                if (!eval_prop_copy(cx, x, out, path)) {
                    json_decref(out);
                    out = NULL;
                    break;
                }
                continue;
            }
            p = pgcmk_xasprintf("%s%s%s", path ? path : "", path && *path ? "." : "", k);
            y = deploy_eval_value(cx, x, prop_copy, p);
            free(p);
            if (!y) {
                json_decref(out);
                out = NULL;
                break;
            }
            if (k[0] == '[' && k[1] != '[' && k[strlen(k) - 1] == ']') {
                /* ARM evaluates expressions in property names too (e.g. the id of a
                 * user-assigned identity as a key of userAssignedIdentities) */
                json_t *kv = deploy_eval_string(cx, k);

                if (!kv || !json_is_string(kv)) {
                    json_decref(kv);
                    json_decref(y);
                    json_decref(out);
                    out = NULL;
                    break;
                }
                json_object_set_new(out, json_string_value(kv), y);
                json_decref(kv);
                continue;
            }
            json_object_set_new(out, k[0] == '[' && k[1] == '[' ? k + 1 : k, y);
        }
        cx->depth--;
    } else {
        out = json_incref((json_t *)v);
    }
    if (out)
        cx->path = saved;
    return out;
}

/* ---- uniqueString and guid --------------------------------------------------------------------
 */

static uint32_t
rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

static uint32_t
le32(const unsigned char *p, size_t n)
{
    uint32_t v = 0;

    for (size_t i = 0; i < n && i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint32_t
fmix32(uint32_t h)
{
    h = (h ^ (h >> 16)) * 0x85ebca6bu;
    h = (h ^ (h >> 13)) * 0xc2b2ae35u;
    return h ^ (h >> 16);
}

/* Microsoft.WindowsAzure.ResourceStack.Common.Algorithms.ComputeHash: two 32-bit Murmur lanes
 * over 8-byte blocks, combined into 64 bits (seed 0). */
static uint64_t
ms_murmur64(const unsigned char *d, size_t len)
{
    const uint32_t c1 = 0x239b961bu, c2 = 0xab0e9789u;
    uint32_t h1 = 0, h2 = 0, k1, k2;
    size_t i = 0, rem;

    for (; i + 8 <= len; i += 8) {
        k1 = le32(d + i, 4);
        k2 = le32(d + i + 4, 4);
        h1 ^= rotl32(k1 * c1, 15) * c2;
        h1 = (rotl32(h1, 19) + h2) * 5 + 0x561ccd1bu;
        h2 ^= rotl32(k2 * c2, 17) * c1;
        h2 = (rotl32(h2, 13) + h1) * 5 + 0x0bcaa747u;
    }
    rem = len - i;
    if (rem > 0) {
        k1 = le32(d + i, rem);
        h1 ^= rotl32(k1 * c1, 15) * c2;
        if (rem > 4) {
            k2 = le32(d + i + 4, rem - 4);
            h2 ^= rotl32(k2 * c2, 17) * c1;
        }
    }
    h2 ^= (uint32_t)len;
    h1 = (h1 ^ (uint32_t)len) + h2;
    h2 += h1;
    h1 = fmix32(h1);
    h2 = fmix32(h2);
    h1 += h2;
    h2 += h1;
    return ((uint64_t)h2 << 32) | h1;
}

static char *
join_dash(const char *const *parts, size_t n, size_t *len)
{
    size_t total = 0, off = 0;
    char *s;

    for (size_t i = 0; i < n; i++)
        total += strlen(parts[i]) + 1;
    s = pgcmk_xmalloc(total + 1);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(parts[i]);

        if (i)
            s[off++] = '-';
        memcpy(s + off, parts[i], l);
        off += l;
    }
    s[off] = '\0';
    *len = off;
    return s;
}

void
pgcmk_tpl_unique_string(const char *const *parts, size_t n, char out[14])
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
    size_t len;
    char *s = join_dash(parts, n, &len);
    uint64_t h = ms_murmur64((const unsigned char *)s, len);

    free(s);
    for (int i = 0; i < 13; i++) {
        out[i] = alpha[(h >> 59) & 31];
        h <<= 5;
    }
    out[13] = '\0';
}

void
pgcmk_tpl_guid(const char *const *parts, size_t n, char out[37])
{
    static const unsigned char ns[16] = {0x11, 0xfb, 0x06, 0xfb, 0x71, 0x2d, 0x4d, 0xdd,
                                         0x98, 0xc7, 0xe7, 0x1b, 0xbd, 0x58, 0x88, 0x30};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t len;
    char *s = join_dash(parts, n, &len);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) > 0 &&
             EVP_DigestUpdate(c, ns, sizeof(ns)) > 0 && EVP_DigestUpdate(c, s, len) > 0 &&
             EVP_DigestFinal_ex(c, md, &mdlen) > 0;

    EVP_MD_CTX_free(c);
    free(s);
    if (!ok || mdlen < 16)
        abort(); /* SHA-1 is always there in OpenSSL 3's default provider */
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0],
             md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11], md[12],
             md[13], md[14], md[15]);
}

void
deploy_guid(const char *const *parts, size_t n, char out[37])
{
    pgcmk_tpl_guid(parts, n, out);
}
