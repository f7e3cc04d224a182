/* template.c - loading a template: parameters (types, allowed values, bounds, defaults),
 * user-defined functions, variables (with copy), resources (inline children flattened, copy
 * loops expanded, names/ids/types/api-versions/conditions evaluated), dependsOn plus the
 * implicit reference() dependencies, cycles; then rendering one resource's PUT body, the outputs
 * and the parameters as a deployment echoes them. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/core.h"
#include "pgcmk/deploy.h"
#include "deploy/internal.h"

static const char *const type_names[] = {"String", "SecureString", "Int",  "Bool",
                                         "Object", "SecureObject", "Array"};

static int
parse_type(const char *s, enum param_type *out)
{
    static const struct {
        const char *n;
        enum param_type t;
    } map[] = {{"string", PT_STRING}, {"securestring", PT_SECURESTRING},
               {"int", PT_INT},       {"bool", PT_BOOL},
               {"object", PT_OBJECT}, {"secureobject", PT_SECUREOBJECT},
               {"array", PT_ARRAY}};

    for (size_t i = 0; s && i < PGCMK_ARRAY_LEN(map); i++)
        if (pgcmk_streq_ci(s, map[i].n)) {
            *out = map[i].t;
            return 0;
        }
    return -1;
}

/* "The template resource 'x' at line '12' and column '9'" */
static void
where_of(const struct pgcmk_tpl *t, const char *kind, const char *name, const json_t *node,
         const char *path, char *out, size_t cap)
{
    int line, col;

    if (t->pos && deploy_pos_find(t->pos, node, &line, &col) == 0)
        snprintf(out, cap, "The template %s '%.96s' at line '%d' and column '%d'", kind, name, line,
                 col);
    else
        snprintf(out, cap, "The template %s '%.96s' at '%.96s'", kind, name, path);
}

static int tpl_error(struct pgcmk_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
tpl_error(struct pgcmk_err *err, const char *fmt, ...)
{
    char buf[PGCMK_ERR_MSG_LEN - 48];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return pgcmk_err_set(err, PGCMK_E_INVALID_TEMPLATE, NULL,
                         "Deployment template validation failed: '%s'.", buf);
}

static void
cx_init(struct eval_ctx *cx, struct pgcmk_tpl *t, const struct pgcmk_tpl_host *host,
        struct pgcmk_err *err, long *steps)
{
    memset(cx, 0, sizeof(*cx));
    cx->t = t;
    cx->host = host;
    cx->err = err;
    cx->steps = steps;
}

/* ---- ids --------------------------------------------------------------------------------------
 */

char *
deploy_resource_id(const char *sub, const char *rg, const char *type, const char *const *names,
                   size_t nnames)
{
    size_t cap = 128 + strlen(type) + (sub ? strlen(sub) : 0) + (rg ? strlen(rg) : 0), off;
    const char *p = type, *slash;
    char *id;

    for (size_t i = 0; i < nnames; i++)
        cap += strlen(names[i]) + 2;
    id = pgcmk_xmalloc(cap);
    off = 0;
    if (sub)
        off += (size_t)snprintf(id + off, cap - off, "/subscriptions/%s", sub);
    if (pgcmk_streq_ci(type, "Microsoft.Resources/resourceGroups") && nnames == 1) {
        /* a resource group's id has no /providers/ part */
        snprintf(id + off, cap - off, "/resourceGroups/%s", names[0]);
        return id;
    }
    if (sub && rg)
        off += (size_t)snprintf(id + off, cap - off, "/resourceGroups/%s", rg);
    slash = strchr(p, '/');
    /* namespace/type1/name1/type2/name2 */
    off += (size_t)snprintf(id + off, cap - off, "/providers/%.*s",
                            (int)(slash ? slash - p : (long)strlen(p)), p);
    p = slash ? slash + 1 : p + strlen(p);
    for (size_t i = 0; i < nnames; i++) {
        slash = strchr(p, '/');
        off += (size_t)snprintf(id + off, cap - off, "/%.*s/%s",
                                (int)(slash ? slash - p : (long)strlen(p)), p, names[i]);
        p = slash ? slash + 1 : p + strlen(p);
    }
    return id;
}

/* The part after "/providers/": "Microsoft.KeyVault/vaults/kv1/keys/k1". */
static const char *
provider_part(const char *id)
{
    const char *p = NULL, *q = id;

    while ((q = strstr(q, "/providers/")) != NULL) {
        p = q + 11;
        q = p;
    }
    return p;
}

size_t
deploy_find_resource(const struct pgcmk_tpl *t, const char *ref)
{
    if (!ref || !*ref)
        return SIZE_MAX;
    for (size_t i = 0; i < t->ninst; i++) {
        const struct tpl_inst *r = &t->inst[i];
        const char *pp = provider_part(r->s_id);

        if (pgcmk_streq_ci(r->s_id, ref) || pgcmk_streq_ci(r->s_name, ref) ||
            (pp && pgcmk_streq_ci(pp, ref)))
            return i;
    }
    return SIZE_MAX;
}

/* ---- parameters -------------------------------------------------------------------------------
 */

json_t *
deploy_param_get(struct eval_ctx *cx, const char *name)
{
    struct pgcmk_tpl *t = cx->t;

    if (cx->fn) {
        for (size_t i = 0; i < cx->fn->nparams; i++)
            if (pgcmk_streq_ci(cx->fn->pnames[i], name))
                return json_incref(cx->fn_args[i]);
        return deploy_fail(cx, "the function parameter '%.64s' is not found", name);
    }
    for (size_t i = 0; i < t->nparams; i++) {
        if (!pgcmk_streq_ci(t->params[i].name, name))
            continue;
        if (!t->params[i].value)
            return deploy_fail(cx,
                               "the template parameter '%.64s' is used before its value is "
                               "known (a default value can only use earlier parameters)",
                               name);
        return json_incref(t->params[i].value);
    }
    return deploy_fail(cx,
                       "the template parameter '%.64s' is not found. Please see "
                       "https://aka.ms/arm-syntax-parameters for usage details",
                       name);
}

static const json_t *
provided_value(const json_t *values, const char *name, int *found, const char **key_out)
{
    const char *k;
    json_t *v;

    *found = 0;
    json_object_foreach((json_t *)values, k, v) {
        if (!pgcmk_streq_ci(k, name))
            continue;
        *found = 1;
        *key_out = k;
        if (json_is_object(v) && (json_object_get(v, "value") || json_object_get(v, "reference")))
            return json_object_get(v, "value"); /* NULL for a Key Vault reference */
        return v;
    }
    return NULL;
}

/* Coerces a provided value to the declared type; new reference or NULL. */
static json_t *
coerce(enum param_type ty, const json_t *v)
{
    switch (ty) {
    case PT_STRING:
    case PT_SECURESTRING:
        return json_is_string(v) ? json_incref((json_t *)v) : NULL;
    case PT_INT:
        if (json_is_integer(v))
            return json_incref((json_t *)v);
        if (json_is_string(v)) {
            char *end;
            const char *s = json_string_value(v);
            long long x = strtoll(s, &end, 10);

            return *s && !*end ? json_integer(x) : NULL;
        }
        if (json_is_real(v) && json_real_value(v) == (double)(long long)json_real_value(v))
            return json_integer((json_int_t)json_real_value(v));
        return NULL;
    case PT_BOOL:
        if (json_is_boolean(v))
            return json_incref((json_t *)v);
        if (json_is_string(v) && pgcmk_streq_ci(json_string_value(v), "true"))
            return json_true();
        if (json_is_string(v) && pgcmk_streq_ci(json_string_value(v), "false"))
            return json_false();
        return NULL;
    case PT_OBJECT:
    case PT_SECUREOBJECT:
        return json_is_object(v) ? json_incref((json_t *)v) : NULL;
    case PT_ARRAY:
        return json_is_array(v) ? json_incref((json_t *)v) : NULL;
    }
    return NULL;
}

static int
in_allowed(const json_t *allowed, const json_t *v)
{
    size_t i;
    json_t *x;

    json_array_foreach(allowed, i, x) {
        if (deploy_json_equal(x, v))
            return 1;
    }
    return 0;
}

static int
check_param(struct pgcmk_tpl *t, const struct tpl_param *p, const json_t *def, const char *where,
            struct pgcmk_err *err)
{
    const json_t *allowed = json_object_get(def, "allowedValues");
    const json_t *v = p->value;
    int secure = p->type == PT_SECURESTRING || p->type == PT_SECUREOBJECT;
    json_t *mn, *mx;

    (void)t;
    if (allowed && !json_is_array(allowed))
        return tpl_error(err, "%s is not valid: 'allowedValues' must be an array", where);
    if (allowed) {
        int ok = 1;

        if (p->type == PT_ARRAY) {
            size_t i;
            json_t *x;

            json_array_foreach(v, i, x)
                ok = ok && in_allowed(allowed, x);
        } else {
            ok = in_allowed(allowed, v);
        }
        if (!ok) {
            char *s = secure ? pgcmk_xstrdup("***") : deploy_to_string(v);
            char *list = json_dumps(allowed, JSON_COMPACT | JSON_ENCODE_ANY);
            int rc = tpl_error(err,
                               "The provided value '%.64s' for the template parameter "
                               "'%.64s' is not valid. The parameter value is not part of "
                               "the allowed value(s): '%.128s'",
                               s, p->name, list ? list : "");

            free(s);
            free(list);
            return rc;
        }
    }
    mn = json_object_get(def, "minValue");
    mx = json_object_get(def, "maxValue");
    if (p->type == PT_INT) {
        json_int_t x = json_integer_value(v);

        if (json_is_integer(mn) && x < json_integer_value(mn))
            return tpl_error(err,
                             "The provided value '%lld' for the template parameter '%.64s' "
                             "is not valid. The value must be greater than or equal to %lld",
                             (long long)x, p->name, (long long)json_integer_value(mn));
        if (json_is_integer(mx) && x > json_integer_value(mx))
            return tpl_error(err,
                             "The provided value '%lld' for the template parameter '%.64s' "
                             "is not valid. The value must be less than or equal to %lld",
                             (long long)x, p->name, (long long)json_integer_value(mx));
    }
    mn = json_object_get(def, "minLength");
    mx = json_object_get(def, "maxLength");
    if (json_is_string(v) || json_is_array(v)) {
        json_int_t len =
            json_is_string(v) ? (json_int_t)json_string_length(v) : (json_int_t)json_array_size(v);

        if (json_is_integer(mn) && len < json_integer_value(mn))
            return tpl_error(err,
                             "The provided value for the template parameter '%.64s' is not "
                             "valid. Length of the value should be greater than or equal to "
                             "'%lld'",
                             p->name, (long long)json_integer_value(mn));
        if (json_is_integer(mx) && len > json_integer_value(mx))
            return tpl_error(err,
                             "The provided value for the template parameter '%.64s' is not "
                             "valid. Length of the value should be less than or equal to "
                             "'%lld'",
                             p->name, (long long)json_integer_value(mx));
    }
    return 0;
}

static int
load_params(struct pgcmk_tpl *t, const json_t *values, long *steps, struct pgcmk_err *err)
{
    const json_t *defs = json_object_get(t->tpl, "parameters");
    const char *name;
    json_t *def;
    size_t i = 0;

    if (json_is_object(values) && json_is_object(json_object_get(values, "parameters")) &&
        (json_object_get(values, "$schema") || json_object_get(values, "contentVersion")))
        values = json_object_get(values, "parameters"); /* a whole parameters file */
    if (values && !json_is_object(values) && !json_is_null(values))
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, NULL,
                             "The deployment parameters must be a JSON object.");
    if (defs && !json_is_object(defs))
        return tpl_error(err, "The template 'parameters' section must be an object");
    t->params = pgcmk_xcalloc(json_object_size(defs) + 1, sizeof(*t->params));
    json_object_foreach((json_t *)defs, name, def)
        t->params[t->nparams++].name = pgcmk_xstrdup(name);
    json_object_foreach((json_t *)defs, name, def) {
        struct tpl_param *p = &t->params[i];
        char where[256], path[160];
        const char *key = NULL;
        const json_t *given;
        int found;

        snprintf(path, sizeof(path), "parameters.%.128s", name);
        where_of(t, "parameter", name, def, path, where, sizeof(where));
        i++;
        if (!json_is_object(def) ||
            parse_type(json_string_value(json_object_get(def, "type")), &p->type) != 0)
            return tpl_error(err,
                             "%s is not valid: the type must be one of string, "
                             "securestring, int, bool, object, secureObject, array",
                             where);
        given = values ? provided_value(values, name, &found, &key) : NULL;
        if (!values)
            found = 0;
        if (found && !given)
            return tpl_error(err,
                             "%s is not valid: Key Vault references in parameter values are "
                             "not supported",
                             where);
        if (found) {
            p->value = coerce(p->type, given);
            if (!p->value)
                return tpl_error(err,
                                 "Template parameter '%.64s' was provided an invalid value. "
                                 "Expected a value of type '%s', but received a value of "
                                 "type '%s'",
                                 name, type_names[p->type], deploy_type_name(given));
        } else if (json_object_get(def, "defaultValue")) {
            struct eval_ctx cx;
            json_t *dv;

            cx_init(&cx, t, NULL, err, steps);
            cx.where = where;
            cx.in_param_default = 1;
            dv = deploy_eval_value(&cx, json_object_get(def, "defaultValue"), 0, path);
            if (!dv)
                return -1;
            p->value = coerce(p->type, dv);
            if (!p->value) {
                tpl_error(err, "%s is not valid: the default value is of type '%s', not '%s'",
                          where, deploy_type_name(dv), type_names[p->type]);
                json_decref(dv);
                return -1;
            }
            json_decref(dv);
        } else {
            return tpl_error(err,
                             "The value for the template parameter '%.64s' at '%s' is not "
                             "provided. Please see https://aka.ms/arm-create-parameter-file "
                             "for usage details",
                             name, strchr(where, '\'') ? strstr(where, "' at ") + 5 : path);
        }
        if (check_param(t, p, def, where, err) != 0)
            return -1;
    }
    if (json_is_object(values)) {
        const char *k;
        json_t *v;

        json_object_foreach((json_t *)values, k, v) {
            int known = 0;

            for (size_t j = 0; j < t->nparams; j++)
                known |= pgcmk_streq_ci(t->params[j].name, k);
            if (!known)
                return tpl_error(err,
                                 "The template parameters '%.64s' in the parameters file are "
                                 "not valid; they are not present in the original template "
                                 "and can therefore not be provided at deployment time",
                                 k);
        }
    }
    return 0;
}

/* ---- functions and variables ------------------------------------------------------------------
 */

static int
load_functions(struct pgcmk_tpl *t, struct pgcmk_err *err)
{
    const json_t *fns = json_object_get(t->tpl, "functions");
    size_t i, cap = 0;
    json_t *nsobj;

    if (!fns)
        return 0;
    if (!json_is_array(fns))
        return tpl_error(err, "The template 'functions' section must be an array");
    json_array_foreach(fns, i, nsobj) {
        const char *ns = json_string_value(json_object_get(nsobj, "namespace"));
        const json_t *members = json_object_get(nsobj, "members");
        const char *fname;
        json_t *f;

        if (!ns || !json_is_object(members))
            return tpl_error(err,
                             "The template function namespace at 'functions[%zu]' needs "
                             "'namespace' and 'members'",
                             i);
        json_object_foreach((json_t *)members, fname, f) {
            struct tpl_userfn *u;
            const json_t *ps = json_object_get(f, "parameters");
            char *full;
            size_t j;
            json_t *pd;

            if (!json_is_object(json_object_get(f, "output")) || (ps && !json_is_array(ps)))
                return tpl_error(err,
                                 "The template function '%.64s.%.64s' needs an 'output' "
                                 "object and a 'parameters' array",
                                 ns, fname);
            if (t->nfns == cap) {
                cap = cap ? cap * 2 : 8;
                t->fns = pgcmk_xrealloc(t->fns, cap * sizeof(*t->fns));
            }
            u = &t->fns[t->nfns++];
            memset(u, 0, sizeof(*u));
            full = pgcmk_xasprintf("%s.%s", ns, fname);
            u->name = pgcmk_xstrdup(full);
            pgcmk_lower(u->name, strlen(full) + 1, full);
            free(full);
            u->output = json_object_get(f, "output");
            u->nparams = json_array_size(ps);
            u->pnames = pgcmk_xcalloc(u->nparams + 1, sizeof(*u->pnames));
            json_array_foreach(ps, j, pd) {
                const char *pn = json_string_value(json_object_get(pd, "name"));

                u->pnames[j] = pgcmk_xstrdup(pn ? pn : "");
            }
        }
    }
    return 0;
}

static json_t *
eval_var(struct eval_ctx *outer, struct tpl_var *v)
{
    struct pgcmk_tpl *t = outer->t;
    struct eval_ctx cx;
    char where[256], path[160];
    json_t *out = NULL;

    cx_init(&cx, t, NULL, outer->err, outer->steps);
    cx.in_variables = 1;
    cx.depth = outer->depth + 1;
    snprintf(path, sizeof(path), "variables.%.128s", v->name);
    where_of(t, "variable", v->name, v->src ? v->src : v->copy, path, where, sizeof(where));
    cx.where = where;
    v->state = 1;
    if (v->copy) {
        json_t *cnt = deploy_eval_value(&cx, json_object_get(v->copy, "count"), 0, path);
        const json_t *input = json_object_get(v->copy, "input");
        json_int_t n = json_integer_value(cnt);

        if (cnt && (!json_is_integer(cnt) || n < 0 || n > TPL_MAX_COPY || !input)) {
            deploy_fail(&cx, "the copy loop needs 'input' and a 'count' from 0 to %d",
                        TPL_MAX_COPY);
        } else if (cnt) {
            out = json_array();
            cx.copy_names[0] = v->name;
            cx.ncopy = 1;
            for (json_int_t k = 0; k < n; k++) {
                json_t *x;

                cx.copy_idx[0] = (int)k;
                x = deploy_eval_value(&cx, input, 1, path);
                if (!x) {
                    json_decref(out);
                    out = NULL;
                    break;
                }
                json_array_append_new(out, x);
            }
        }
        json_decref(cnt);
    } else {
        out = deploy_eval_value(&cx, v->src, 1, path);
    }
    if (!out) {
        outer->failed_here = 1;
        v->state = 0;
        return NULL;
    }
    v->value = out;
    v->state = 2;
    return json_incref(out);
}

json_t *
deploy_var_get(struct eval_ctx *cx, const char *name)
{
    struct pgcmk_tpl *t = cx->t;

    if (cx->fn)
        return deploy_fail(cx, "a user-defined function cannot use variables()");
    if (cx->in_param_default)
        return deploy_fail(cx, "the template function 'variables' is not expected in a "
                               "parameter's default value");
    for (size_t i = 0; i < t->nvars; i++) {
        struct tpl_var *v = &t->vars[i];

        if (!pgcmk_streq_ci(v->name, name))
            continue;
        if (v->state == 2)
            return json_incref(v->value);
        if (v->state == 1)
            return deploy_fail(cx,
                               "the template variable '%.64s' refers to itself (a circular "
                               "reference)",
                               name);
        if (cx->depth > TPL_MAX_EVAL_DEPTH)
            return deploy_fail(cx, "the variables refer to each other more than %d levels deep",
                               TPL_MAX_EVAL_DEPTH);
        return eval_var(cx, v);
    }
    return deploy_fail(cx,
                       "the template variable '%.64s' is not found. Please see "
                       "https://aka.ms/arm-syntax-variables for usage details",
                       name);
}

static int
load_variables(struct pgcmk_tpl *t, long *steps, struct pgcmk_err *err)
{
    const json_t *vars = json_object_get(t->tpl, "variables");
    const char *k;
    json_t *v;
    size_t cap;

    if (!vars)
        return 0;
    if (!json_is_object(vars))
        return tpl_error(err, "The template 'variables' section must be an object");
    cap = json_object_size(vars) + 1;
    {
        const json_t *copy = json_object_get(vars, "copy");

        if (json_is_array(copy))
            cap += json_array_size(copy);
    }
    t->vars = pgcmk_xcalloc(cap, sizeof(*t->vars));
    json_object_foreach((json_t *)vars, k, v) {
        if (strcmp(k, "copy") == 0 && json_is_array(v)) {
            size_t i;
            json_t *c;

            json_array_foreach(v, i, c) {
                const char *n = json_string_value(json_object_get(c, "name"));

                if (!n)
                    return tpl_error(err,
                                     "The template variable copy loop 'variables.copy[%zu]' "
                                     "needs a 'name'",
                                     i);
                t->vars[t->nvars].name = pgcmk_xstrdup(n);
                t->vars[t->nvars++].copy = c;
            }
            continue;
        }
        t->vars[t->nvars].name = pgcmk_xstrdup(k);
        t->vars[t->nvars++].src = v;
    }
    for (size_t i = 0; i < t->nvars; i++) {
        struct eval_ctx cx;
        json_t *x;

        if (t->vars[i].state == 2)
            continue;
        cx_init(&cx, t, NULL, err, steps);
        x = eval_var(&cx, &t->vars[i]);
        if (!x)
            return -1;
        json_decref(x);
    }
    return 0;
}

/* ---- resources --------------------------------------------------------------------------------
 */

static const char *const not_in_body[] = {
    "type",      "apiVersion", "name",  "dependsOn",     "condition",     "copy",
    "resources", "comments",   "scope", "resourceGroup", "subscriptionId"};

static int
excluded_key(const char *k)
{
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(not_in_body); i++)
        if (strcmp(k, not_in_body[i]) == 0)
            return 1;
    return 0;
}

static json_t *
eval_field(struct eval_ctx *cx, const json_t *res, const char *key, const char *path)
{
    char *p = pgcmk_xasprintf("%s.%s", path, key);
    json_t *v = deploy_eval_value(cx, json_object_get(res, key), 0, p);

    free(p);
    return v;
}

static int
is_full_type(const char *type)
{
    const char *slash = strchr(type, '/');

    return slash && memchr(type, '.', (size_t)(slash - type)) != NULL;
}

static int expand(struct pgcmk_tpl *t, const json_t *arr, const char *prefix, size_t parent,
                  struct eval_ctx *cx, struct pgcmk_err *err);

static int
add_instance(struct pgcmk_tpl *t, const json_t *res, const char *path, size_t parent,
             struct eval_ctx *cx, const char *copy_name, int copy_i, int batch, int batch_size,
             struct pgcmk_err *err)
{
    struct tpl_inst *r;
    json_t *type = NULL, *name = NULL, *api = NULL, *cond = NULL, *rg = NULL, *sub = NULL;
    char where[256];
    const char *raw_name = json_string_value(json_object_get(res, "name"));
    char *full_type = NULL, *full_name = NULL;
    const char *names[64];
    size_t nnames = 0, tsegs = 0;
    int rc = -1;
    size_t idx;

    if (t->ninst >= TPL_MAX_RESOURCES)
        return tpl_error(err,
                         "The template has more than %d resources after copy loops are "
                         "expanded",
                         TPL_MAX_RESOURCES);
    where_of(t, "resource", raw_name ? raw_name : path, res, path, where, sizeof(where));
    cx->where = where;
    type = eval_field(cx, res, "type", path);
    if (!type)
        goto out;
    name = eval_field(cx, res, "name", path);
    if (!name)
        goto out;
    api = eval_field(cx, res, "apiVersion", path);
    if (!api)
        goto out;
    if (!json_is_string(type) || !json_is_string(name) || !json_is_string(api) ||
        !json_string_length(type) || !json_string_length(name) || !json_string_length(api)) {
        tpl_error(err, "%s is not valid: 'type', 'name' and 'apiVersion' must be non-empty strings",
                  where);
        goto out;
    }
    where_of(t, "resource", json_string_value(name), res, path, where, sizeof(where));
    if (json_object_get(res, "condition")) {
        cond = eval_field(cx, res, "condition", path);
        if (!cond)
            goto out;
        if (!json_is_boolean(cond)) {
            tpl_error(err, "%s is not valid: the condition must be a Boolean, not '%s'", where,
                      deploy_type_name(cond));
            goto out;
        }
    }
    if (parent != SIZE_MAX && !is_full_type(json_string_value(type))) {
        full_type = pgcmk_xasprintf("%s/%s", t->inst[parent].s_type, json_string_value(type));
        full_name = pgcmk_xasprintf("%s/%s", t->inst[parent].s_name, json_string_value(name));
    } else {
        full_type = pgcmk_xstrdup(json_string_value(type));
        full_name = pgcmk_xstrdup(json_string_value(name));
    }
    for (const char *p = full_type; p; p = strchr(p + 1, '/'))
        tsegs++;
    {
        char *save = pgcmk_xstrdup(full_name), *tok, *sp = NULL;

        for (tok = strtok_r(save, "/", &sp); tok && nnames < PGCMK_ARRAY_LEN(names);
             tok = strtok_r(NULL, "/", &sp))
            names[nnames++] = tok;
        if (!is_full_type(full_type) || tsegs < 2 || nnames != tsegs - 1) {
            tpl_error(err,
                      "%s is not valid: the resource type '%.96s' and name '%.96s' have "
                      "incorrect segment lengths. A nested resource type must have identical "
                      "number of segments as its resource name. A root resource type must "
                      "have segment length one greater than its resource name",
                      where, full_type, full_name);
            free(save);
            goto out;
        }
        if (pgcmk_streq_ci(full_type, "Microsoft.Resources/deployments")) {
            if (json_object_get(res, "resourceGroup") &&
                !(rg = eval_field(cx, res, "resourceGroup", path))) {
                free(save);
                goto out;
            }
            if (json_object_get(res, "subscriptionId") &&
                !(sub = eval_field(cx, res, "subscriptionId", path))) {
                free(save);
                goto out;
            }
            if ((rg && !json_is_string(rg)) || (sub && !json_is_string(sub))) {
                tpl_error(err,
                          "%s is not valid: 'resourceGroup' and 'subscriptionId' must be "
                          "strings",
                          where);
                free(save);
                goto out;
            }
        }
        if (t->ninst == t->cap_inst) {
            t->cap_inst = t->cap_inst ? t->cap_inst * 2 : 16;
            t->inst = pgcmk_xrealloc(t->inst, t->cap_inst * sizeof(*t->inst));
        }
        idx = t->ninst++;
        r = &t->inst[idx];
        memset(r, 0, sizeof(*r));
        r->src = res;
        r->parent = parent;
        r->batch = batch;
        r->batch_size = batch_size;
        r->copy_name = copy_name ? pgcmk_xstrdup(copy_name) : NULL;
        r->ncopy = cx->ncopy;
        for (int i = 0; i < cx->ncopy && i < TPL_MAX_COPY_DEPTH; i++) {
            r->copy_names[i] = pgcmk_xstrdup(cx->copy_names[i]);
            r->copy_idx[i] = cx->copy_idx[i];
        }
        r->path = pgcmk_xstrdup(path);
        r->s_symbol =
            copy_name ? pgcmk_xasprintf("%s[copyIndex %d]", path, copy_i) : pgcmk_xstrdup(path);
        r->s_type = full_type;
        r->s_name = full_name;
        full_type = full_name = NULL;
        r->s_api = pgcmk_xstrdup(json_string_value(api));
        r->s_sub = pgcmk_xstrdup(sub ? json_string_value(sub) : t->sub);
        r->s_rg = rg ? pgcmk_xstrdup(json_string_value(rg)) : t->rg ? pgcmk_xstrdup(t->rg) : NULL;
        if (pgcmk_streq_ci(r->s_type, "Microsoft.Resources/resourceGroups") && !t->rg)
            r->s_id = pgcmk_xasprintf("/subscriptions/%s/resourceGroups/%s", r->s_sub, r->s_name);
        else
            r->s_id = deploy_resource_id(r->s_sub, r->s_rg, r->s_type, names, nnames);
        free(save);
        if (!t->pos || deploy_pos_find(t->pos, res, &r->line, &r->col) != 0)
            r->line = r->col = 0;
        r->pub.condition = cond ? json_is_true(cond) : 1;
        r->pub.nested_deployment = pgcmk_streq_ci(r->s_type, "Microsoft.Resources/deployments");
        r->deps_src = json_object_get(res, "dependsOn");
    }
    if (json_object_get(res, "resources")) {
        char *pre = pgcmk_xasprintf("%s.", path);

        rc = expand(t, json_object_get(res, "resources"), pre, idx, cx, err);
        free(pre);
        if (rc != 0)
            goto out;
    }
    rc = 0;
out:
    free(full_type);
    free(full_name);
    json_decref(type);
    json_decref(name);
    json_decref(api);
    json_decref(cond);
    json_decref(rg);
    json_decref(sub);
    cx->where = NULL;
    return rc;
}

static int
expand(struct pgcmk_tpl *t, const json_t *arr, const char *prefix, size_t parent,
       struct eval_ctx *cx, struct pgcmk_err *err)
{
    size_t i;
    json_t *res;

    if (!json_is_array(arr))
        return tpl_error(err, "The template '%sresources' must be an array", prefix);
    json_array_foreach(arr, i, res) {
        char path[200], where[256];
        const json_t *copy = json_object_get(res, "copy");

        snprintf(path, sizeof(path), "%.160sresources[%zu]", prefix, i);
        if (!json_is_object(res))
            return tpl_error(err, "The template resource at '%s' must be an object", path);
        if (copy) {
            const char *cname = json_string_value(json_object_get(copy, "name"));
            const char *mode = json_string_value(json_object_get(copy, "mode"));
            json_t *cnt, *bs = NULL;
            json_int_t n, batch = 0;
            int serial = mode && pgcmk_streq_ci(mode, "serial");

            where_of(t, "resource", json_string_value(json_object_get(res, "name")) ?: path, res,
                     path, where, sizeof(where));
            cx->where = where;
            if (!json_is_object(copy) || !cname)
                return tpl_error(err,
                                 "%s is not valid: the copy loop needs a 'name' and a "
                                 "'count'",
                                 where);
            if (mode && !serial && !pgcmk_streq_ci(mode, "parallel"))
                return tpl_error(err,
                                 "%s is not valid: the copy mode must be 'Serial' or "
                                 "'Parallel'",
                                 where);
            cnt = deploy_eval_value(cx, json_object_get(copy, "count"), 0, path);
            if (!cnt)
                return -1;
            n = json_integer_value(cnt);
            if (!json_is_integer(cnt) || n < 0 || n > TPL_MAX_COPY) {
                json_decref(cnt);
                return tpl_error(err,
                                 "%s is not valid: the copy count must be an integer from 0 "
                                 "to %d",
                                 where, TPL_MAX_COPY);
            }
            json_decref(cnt);
            if (json_object_get(copy, "batchSize")) {
                bs = deploy_eval_value(cx, json_object_get(copy, "batchSize"), 0, path);
                if (!bs)
                    return -1;
                batch = json_integer_value(bs);
                json_decref(bs);
                if (batch < 1 || batch > TPL_MAX_COPY)
                    return tpl_error(err,
                                     "%s is not valid: the copy batchSize must be from 1 to "
                                     "%d",
                                     where, TPL_MAX_COPY);
            }
            if (serial && batch == 0)
                batch = 1;
            if (cx->ncopy >= TPL_MAX_COPY_DEPTH)
                return tpl_error(err, "%s is not valid: copy loops are nested too deeply", where);
            cx->copy_names[cx->ncopy] = cname;
            cx->ncopy++;
            for (json_int_t k = 0; k < n; k++) {
                cx->copy_idx[cx->ncopy - 1] = (int)k;
                if (add_instance(t, res, path, parent, cx, cname, (int)k,
                                 serial ? (int)(k / batch) : -1, (int)batch, err) != 0) {
                    cx->ncopy--;
                    return -1;
                }
            }
            cx->ncopy--;
        } else if (add_instance(t, res, path, parent, cx, NULL, 0, -1, 0, err) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- dependencies -----------------------------------------------------------------------------
 */

static void
add_dep(struct tpl_inst *r, size_t d)
{
    for (size_t i = 0; i < r->pub.n_deps; i++)
        if (r->deps_buf[i] == d)
            return;
    if (r->pub.n_deps == r->deps_cap) {
        r->deps_cap = r->deps_cap ? r->deps_cap * 2 : 4;
        r->deps_buf = pgcmk_xrealloc(r->deps_buf, r->deps_cap * sizeof(*r->deps_buf));
    }
    r->deps_buf[r->pub.n_deps++] = d;
}

static void
inst_cx(struct eval_ctx *cx, const struct tpl_inst *r)
{
    cx->ncopy = r->ncopy;
    for (int i = 0; i < r->ncopy; i++) {
        cx->copy_names[i] = r->copy_names[i];
        cx->copy_idx[i] = r->copy_idx[i];
    }
}

static void
inst_where(const struct pgcmk_tpl *t, const struct tpl_inst *r, char *out, size_t cap)
{
    (void)t;
    if (r->line > 0)
        snprintf(out, cap, "The template resource '%.96s' at line '%d' and column '%d'", r->s_name,
                 r->line, r->col);
    else
        snprintf(out, cap, "The template resource '%.96s' at '%.96s'", r->s_name, r->s_symbol);
}

/* reference()/list*() calls whose target is a resource of this template. */
static void
scan_refs(struct pgcmk_tpl *t, size_t self, const struct expr *e, struct eval_ctx *cx)
{
    if (!e)
        return;
    if (e->kind == EXPR_CALL && e->nargs > 0 &&
        (pgcmk_streq_ci(e->name, "reference") || pgcmk_strneq_ci(e->name, "list", 4))) {
        struct pgcmk_err scratch;
        struct eval_ctx sub = *cx;
        json_t *v;

        sub.err = &scratch;
        sub.failed_here = 0;
        v = deploy_eval_expr(&sub, e->args[0]);
        if (json_is_string(v)) {
            size_t d = deploy_find_resource(t, json_string_value(v));

            if (d != SIZE_MAX && d != self)
                add_dep(&t->inst[self], d);
        }
        json_decref(v);
    }
    scan_refs(t, self, e->base, cx);
    scan_refs(t, self, e->index, cx);
    for (size_t i = 0; i < e->nargs; i++)
        scan_refs(t, self, e->args[i], cx);
}

static void
scan_value(struct pgcmk_tpl *t, size_t self, const json_t *v, struct eval_ctx *cx, int top)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char msg[160];
        struct expr *e;

        if (!deploy_is_expr(s) || (!strstr(s, "eference") && !strstr(s, "ist") &&
                                   !strstr(s, "EFERENCE") && !strstr(s, "IST")))
            return;
        e = deploy_expr_parse(s + 1, strlen(s) - 2, msg, sizeof(msg));
        scan_refs(t, self, e, cx);
        deploy_expr_free(e);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;

        json_array_foreach(v, i, x)
            scan_value(t, self, x, cx, 0);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;

        json_object_foreach((json_t *)v, k, x) {
            if (top && excluded_key(k) && strcmp(k, "dependsOn") != 0)
                continue;
            if (top && strcmp(k, "dependsOn") == 0)
                continue;
            scan_value(t, self, x, cx, 0);
        }
    }
}

static int
nested_inner(const json_t *res)
{
    const json_t *props = json_object_get(res, "properties");
    const char *scope = json_string_value(
        json_object_get(json_object_get(props, "expressionEvaluationOptions"), "scope"));

    return scope && pgcmk_streq_ci(scope, "inner");
}

static int
resolve_deps(struct pgcmk_tpl *t, long *steps, struct pgcmk_err *err)
{
    for (size_t i = 0; i < t->ninst; i++) {
        struct tpl_inst *r = &t->inst[i];
        struct eval_ctx cx;
        char where[256];
        size_t j;
        json_t *d;

        cx_init(&cx, t, NULL, err, steps);
        inst_cx(&cx, r);
        inst_where(t, r, where, sizeof(where));
        cx.where = where;
        if (r->parent != SIZE_MAX)
            add_dep(r, r->parent);
        if (r->batch > 0)
            for (size_t k = 0; k < t->ninst; k++)
                if (t->inst[k].src == r->src && t->inst[k].batch == r->batch - 1 &&
                    t->inst[k].ncopy == r->ncopy)
                    add_dep(r, k);
        if (r->deps_src && !json_is_array(r->deps_src))
            return tpl_error(err, "%s is not valid: 'dependsOn' must be an array", where);
        json_array_foreach(r->deps_src, j, d) {
            char path[220];
            json_t *v;
            const char *ref;
            int hit = 0;

            snprintf(path, sizeof(path), "%.180s.dependsOn[%zu]", r->path, j);
            v = deploy_eval_value(&cx, d, 0, path);
            if (!v)
                return -1;
            if (!json_is_string(v)) {
                json_decref(v);
                return tpl_error(err,
                                 "%s is not valid: the entries of 'dependsOn' must be "
                                 "strings",
                                 where);
            }
            ref = json_string_value(v);
            for (size_t k = 0; k < t->ninst; k++) {
                const struct tpl_inst *o = &t->inst[k];
                const char *pp = provider_part(o->s_id);

                if (pgcmk_streq_ci(o->s_id, ref) || pgcmk_streq_ci(o->s_name, ref) ||
                    (pp && pgcmk_streq_ci(pp, ref)) ||
                    (o->copy_name && pgcmk_streq_ci(o->copy_name, ref))) {
                    if (k == i) {
                        json_decref(v);
                        return tpl_error(err,
                                         "Circular dependency detected on resource: "
                                         "'%.200s'. Please see "
                                         "https://aka.ms/arm-syntax-resources for usage "
                                         "details",
                                         r->s_id);
                    }
                    add_dep(r, k);
                    hit = 1;
                }
            }
            if (!hit) {
                /* a child's short name ("add" for "kv1/add") */
                for (size_t k = 0; k < t->ninst; k++) {
                    const char *last = strrchr(t->inst[k].s_name, '/');

                    if (k != i && last && pgcmk_streq_ci(last + 1, ref)) {
                        add_dep(r, k);
                        hit = 1;
                    }
                }
            }
            if (!hit) {
                tpl_error(err,
                          "%s is not valid: The resource '%.160s' is not defined in the "
                          "template. Please see https://aka.ms/arm-syntax for usage details",
                          where, ref);
                json_decref(v);
                return -1;
            }
            json_decref(v);
        }
        if (r->pub.nested_deployment && nested_inner(r->src))
            scan_value(t, i, json_object_get(json_object_get(r->src, "properties"), "parameters"),
                       &cx, 0);
        else
            scan_value(t, i, r->src, &cx, 1);
    }
    /* cycles: depth-first with colours */
    {
        unsigned char *color = pgcmk_xcalloc(t->ninst + 1, 1);
        size_t *stack = pgcmk_xcalloc(t->ninst + 1, sizeof(*stack));
        size_t *next = pgcmk_xcalloc(t->ninst + 1, sizeof(*next));
        int rc = 0;

        for (size_t s = 0; s < t->ninst && rc == 0; s++) {
            size_t sp = 0;

            if (color[s])
                continue;
            stack[sp++] = s;
            color[s] = 1;
            next[s] = 0;
            while (sp > 0 && rc == 0) {
                size_t u = stack[sp - 1];
                struct tpl_inst *r = &t->inst[u];

                if (next[u] < r->pub.n_deps) {
                    size_t v = r->deps_buf[next[u]++];

                    if (color[v] == 1) {
                        rc = tpl_error(err,
                                       "Circular dependency detected on resource: '%.200s'. "
                                       "Please see https://aka.ms/arm-syntax-resources for "
                                       "usage details",
                                       t->inst[v].s_id);
                    } else if (color[v] == 0) {
                        color[v] = 1;
                        next[v] = 0;
                        stack[sp++] = v;
                    }
                } else {
                    color[u] = 2;
                    sp--;
                }
            }
        }
        free(color);
        free(stack);
        free(next);
        if (rc != 0)
            return -1;
    }
    for (size_t i = 0; i < t->ninst; i++) {
        struct tpl_inst *r = &t->inst[i];

        r->pub.symbol = r->s_symbol;
        r->pub.id = r->s_id;
        r->pub.type = r->s_type;
        r->pub.name = r->s_name;
        r->pub.api_version = r->s_api;
        r->pub.deps = r->deps_buf;
        r->pub.resource_group = r->s_rg;
        r->pub.subscription_id = r->s_sub;
    }
    return 0;
}

/* ---- load -------------------------------------------------------------------------------------
 */

static const char *const top_keys[] = {
    "$schema",   "contentVersion", "apiProfile", "parameters",  "variables",      "functions",
    "resources", "outputs",        "metadata",   "definitions", "languageVersion"};

struct pgcmk_tpl *
pgcmk_tpl_load(const json_t *template_obj, const json_t *parameters,
               const struct pgcmk_tpl_scope *scope, struct pgcmk_err *err)
{
    return pgcmk_tpl_load_pos(template_obj, parameters, scope, NULL, err);
}

struct pgcmk_tpl *
pgcmk_tpl_load_pos(const json_t *template_obj, const json_t *parameters,
                   const struct pgcmk_tpl_scope *scope, const struct pgcmk_jsonc_pos *pos,
                   struct pgcmk_err *err)
{
    struct pgcmk_tpl *t;
    const char *k, *cv;
    json_t *v;
    long steps = 0;
    struct eval_ctx cx;

    if (!json_is_object(template_obj))
        return pgcmk_err_set(err, PGCMK_E_INVALID_TEMPLATE, NULL,
                             "Deployment template validation failed: 'The template must be a JSON "
                             "object'."),
               NULL;
    json_object_foreach((json_t *)template_obj, k, v) {
        int ok = 0;

        for (size_t i = 0; i < PGCMK_ARRAY_LEN(top_keys); i++)
            ok |= strcmp(k, top_keys[i]) == 0;
        if (!ok)
            return pgcmk_err_set(err, PGCMK_E_INVALID_TEMPLATE, NULL,
                                 "Deployment template validation failed: 'Could not find member "
                                 "'%.64s' on object of type 'Template'. Path '%.64s'.'.",
                                 k, k),
                   NULL;
    }
    cv = json_string_value(json_object_get(template_obj, "contentVersion"));
    if ((json_object_get(template_obj, "contentVersion") && !cv) ||
        (json_object_get(template_obj, "$schema") &&
         !json_is_string(json_object_get(template_obj, "$schema"))))
        return pgcmk_err_set(err, PGCMK_E_INVALID_TEMPLATE, NULL,
                             "Deployment template validation failed: 'The template's '$schema' "
                             "and 'contentVersion' must be strings'."),
               NULL;
    if (cv) {
        int a, b, c, d;
        char tail;

        if (sscanf(cv, "%d.%d.%d.%d%c", &a, &b, &c, &d, &tail) != 4)
            return pgcmk_err_set(err, PGCMK_E_INVALID_TEMPLATE, NULL,
                                 "Deployment template validation failed: 'The template content "
                                 "version '%.64s' is not valid: it must look like '1.0.0.0''.",
                                 cv),
                   NULL;
    }
    t = pgcmk_xcalloc(1, sizeof(*t));
    t->tpl = json_incref((json_t *)template_obj);
    t->pos = pos;
    t->sub = pgcmk_xstrdup(scope && scope->subscription_id ? scope->subscription_id : "");
    t->tenant = pgcmk_xstrdup(scope && scope->tenant_id ? scope->tenant_id : "");
    t->rg = scope && scope->resource_group ? pgcmk_xstrdup(scope->resource_group) : NULL;
    t->rg_location = scope && scope->rg_location ? pgcmk_xstrdup(scope->rg_location) : NULL;
    t->dep_name = pgcmk_xstrdup(scope && scope->deployment_name ? scope->deployment_name : "");
    t->content_version = pgcmk_xstrdup(cv ? cv : "1.0.0.0");
    if (scope)
        t->scope = *scope;
    if (load_params(t, parameters, &steps, err) != 0 || load_functions(t, err) != 0 ||
        load_variables(t, &steps, err) != 0)
        goto fail;
    cx_init(&cx, t, NULL, err, &steps);
    if (json_object_get(template_obj, "resources") &&
        expand(t, json_object_get(template_obj, "resources"), "", SIZE_MAX, &cx, err) != 0)
        goto fail;
    if (resolve_deps(t, &steps, err) != 0)
        goto fail;
    t->pos = NULL;
    return t;
fail:
    pgcmk_tpl_free(t);
    return NULL;
}

void
pgcmk_tpl_free(struct pgcmk_tpl *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nparams; i++) {
        free(t->params[i].name);
        json_decref(t->params[i].value);
    }
    free(t->params);
    for (size_t i = 0; i < t->nvars; i++) {
        free(t->vars[i].name);
        json_decref(t->vars[i].value);
    }
    free(t->vars);
    for (size_t i = 0; i < t->nfns; i++) {
        free(t->fns[i].name);
        for (size_t j = 0; j < t->fns[i].nparams; j++)
            free(t->fns[i].pnames[j]);
        free(t->fns[i].pnames);
    }
    free(t->fns);
    for (size_t i = 0; i < t->ninst; i++) {
        struct tpl_inst *r = &t->inst[i];

        free(r->path);
        free(r->copy_name);
        for (int j = 0; j < r->ncopy && j < TPL_MAX_COPY_DEPTH; j++)
            free(r->copy_names[j]);
        free(r->deps_buf);
        free(r->s_symbol);
        free(r->s_id);
        free(r->s_type);
        free(r->s_name);
        free(r->s_api);
        free(r->s_rg);
        free(r->s_sub);
    }
    free(t->inst);
    free(t->sub);
    free(t->tenant);
    free(t->rg);
    free(t->rg_location);
    free(t->dep_name);
    free(t->content_version);
    json_decref(t->tpl);
    free(t);
}

size_t
pgcmk_tpl_count(const struct pgcmk_tpl *t)
{
    return t ? t->ninst : 0;
}

const struct pgcmk_tpl_resource *
pgcmk_tpl_resource(const struct pgcmk_tpl *t, size_t i)
{
    return t && i < t->ninst ? &t->inst[i].pub : NULL;
}

/* ---- evaluation at execution time -------------------------------------------------------------
 */

json_t *
deploy_reference(struct eval_ctx *cx, size_t n, json_t **a)
{
    const char *ref, *api = NULL, *id;
    int full = 0;
    size_t d;
    json_t *out;

    if (!cx->host || !cx->host->reference || cx->in_param_default || cx->in_variables || cx->fn)
        return deploy_fail(cx, "the template function 'reference' is not expected at this "
                               "location");
    if (!json_is_string(a[0]))
        return deploy_fail(cx, "the template function 'reference' expects a resource name or id");
    ref = json_string_value(a[0]);
    if (n > 1 && !json_is_string(a[1]))
        return deploy_fail(cx, "the api-version of 'reference' must be a string");
    if (n > 1)
        api = json_string_value(a[1]);
    if (n > 2)
        full = json_is_string(a[2]) && pgcmk_streq_ci(json_string_value(a[2]), "Full");
    d = deploy_find_resource(cx->t, ref);
    if (ref[0] == '/') {
        id = ref;
        if (!api && d != SIZE_MAX)
            api = cx->t->inst[d].s_api;
    } else if (d != SIZE_MAX) {
        id = cx->t->inst[d].s_id;
        if (!api)
            api = cx->t->inst[d].s_api;
    } else {
        return deploy_fail(cx, "The resource '%.128s' is not defined in the template", ref);
    }
    if (!api)
        return deploy_fail(cx,
                           "the template function 'reference' needs an api-version for "
                           "'%.128s', which is not deployed by this template",
                           ref);
    out = cx->host->reference(cx->host->ctx, id, api, full, cx->err);
    if (!out)
        cx->failed_here = 1; /* the host's error stands */
    return out;
}

json_t *
deploy_call_list(struct eval_ctx *cx, const char *name, size_t n, json_t **a)
{
    json_t *out;

    if (!cx->host || !cx->host->list || cx->in_param_default || cx->in_variables || cx->fn)
        return deploy_fail(cx, "the template function '%.64s' is not expected at this location",
                           name);
    if (n < 2 || n > 3 || !json_is_string(a[0]) || !json_is_string(a[1]))
        return deploy_fail(cx,
                           "the template function '%.64s' expects a resource id, an "
                           "api-version and an optional body",
                           name);
    out = cx->host->list(cx->host->ctx, json_string_value(a[0]), name, json_string_value(a[1]),
                         n > 2 ? a[2] : NULL, cx->err);
    if (!out)
        cx->failed_here = 1;
    return out;
}

static json_t *
render_nested(struct eval_ctx *cx, const json_t *props, const char *path)
{
    json_t *out = json_object();
    int inner = 0;
    const char *k, *scope;
    json_t *v;

    scope = json_string_value(
        json_object_get(json_object_get(props, "expressionEvaluationOptions"), "scope"));
    inner = scope && pgcmk_streq_ci(scope, "inner");
    json_object_foreach((json_t *)props, k, v) {
        char *p = pgcmk_xasprintf("%s.%s", path, k);
        json_t *y = NULL;

        if (strcmp(k, "template") == 0 && inner) {
            y = json_deep_copy(v);
        } else if (strcmp(k, "template") == 0) {
            cx->keep_copyindex = 1;
            y = deploy_eval_value(cx, v, 0, p);
            cx->keep_copyindex = 0;
        } else if (strcmp(k, "expressionEvaluationOptions") == 0) {
            y = json_deep_copy(v);
        } else {
            y = deploy_eval_value(cx, v, 0, p);
        }
        free(p);
        if (!y) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, k, y);
    }
    return out;
}

json_t *
pgcmk_tpl_render(struct pgcmk_tpl *t, size_t i, const struct pgcmk_tpl_host *host,
                 struct pgcmk_err *err)
{
    struct tpl_inst *r;
    struct eval_ctx cx;
    char where[256];
    long steps = 0;
    const char *k;
    json_t *v, *body;

    if (!t || i >= t->ninst)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "no such template resource"), NULL;
    r = &t->inst[i];
    cx_init(&cx, t, host, err, &steps);
    inst_cx(&cx, r);
    inst_where(t, r, where, sizeof(where));
    cx.where = where;
    body = json_object();
    json_object_foreach((json_t *)r->src, k, v) {
        char *p;
        json_t *y;

        if (excluded_key(k))
            continue;
        p = pgcmk_xasprintf("%s.%s", r->path, k);
        if (r->pub.nested_deployment && strcmp(k, "properties") == 0 && json_is_object(v))
            y = render_nested(&cx, v, p);
        else
            y = deploy_eval_value(&cx, v, strcmp(k, "properties") == 0, p);
        free(p);
        if (!y) {
            json_decref(body);
            return NULL;
        }
        json_object_set_new(body, k, y);
    }
    if (r->pub.nested_deployment) {
        if (json_object_get(r->src, "resourceGroup") && r->s_rg)
            json_object_set_new(body, "resourceGroup", json_string(r->s_rg));
        if (json_object_get(r->src, "subscriptionId"))
            json_object_set_new(body, "subscriptionId", json_string(r->s_sub));
    }
    return body;
}

static int
output_type_ok(const char *type, const json_t *v, const char **canon, int *secure)
{
    enum param_type ty;

    *secure = 0;
    if (parse_type(type, &ty) != 0)
        return -1;
    *canon = type_names[ty];
    *secure = ty == PT_SECURESTRING || ty == PT_SECUREOBJECT;
    switch (ty) {
    case PT_STRING:
    case PT_SECURESTRING:
        return json_is_string(v) ? 0 : -1;
    case PT_INT:
        return json_is_integer(v) ? 0 : -1;
    case PT_BOOL:
        return json_is_boolean(v) ? 0 : -1;
    case PT_OBJECT:
    case PT_SECUREOBJECT:
        return json_is_object(v) ? 0 : -1;
    case PT_ARRAY:
        return json_is_array(v) ? 0 : -1;
    }
    return -1;
}

json_t *
pgcmk_tpl_outputs(struct pgcmk_tpl *t, const struct pgcmk_tpl_host *host, struct pgcmk_err *err)
{
    const json_t *outs = json_object_get(t->tpl, "outputs");
    json_t *res = json_object(), *def;
    const char *name;
    long steps = 0;

    if (outs && !json_is_object(outs)) {
        json_decref(res);
        return tpl_error(err, "The template 'outputs' section must be an object"), NULL;
    }
    json_object_foreach((json_t *)outs, name, def) {
        struct eval_ctx cx;
        char where[256], path[160];
        const char *canon = NULL;
        int secure = 0;
        json_t *val = NULL;
        const json_t *copy = json_object_get(def, "copy");

        snprintf(path, sizeof(path), "outputs.%.128s", name);
        snprintf(where, sizeof(where), "The template output '%.96s'", name);
        cx_init(&cx, t, host, err, &steps);
        cx.where = where;
        if (json_object_get(def, "condition")) {
            json_t *c = deploy_eval_value(&cx, json_object_get(def, "condition"), 0, path);

            if (!c)
                goto fail;
            if (!json_is_true(c)) {
                json_decref(c);
                continue;
            }
            json_decref(c);
        }
        if (copy) {
            json_t *cnt = deploy_eval_value(&cx, json_object_get(copy, "count"), 0, path);
            json_int_t n = json_integer_value(cnt);

            if (!cnt)
                goto fail;
            json_decref(cnt);
            if (!json_is_integer(cnt) || n < 0 || n > TPL_MAX_COPY ||
                !json_object_get(copy, "input")) {
                tpl_error(err,
                          "%s is not valid: the copy loop needs 'input' and a 'count' from 0 "
                          "to %d",
                          where, TPL_MAX_COPY);
                goto fail;
            }
            val = json_array();
            cx.copy_names[0] = name;
            cx.ncopy = 1;
            for (json_int_t k = 0; k < n; k++) {
                json_t *x;

                cx.copy_idx[0] = (int)k;
                x = deploy_eval_value(&cx, json_object_get(copy, "input"), 0, path);
                if (!x)
                    goto fail_val;
                json_array_append_new(val, x);
            }
        } else {
            val = deploy_eval_value(&cx, json_object_get(def, "value"), 0, path);
            if (!val)
                goto fail;
        }
        if (output_type_ok(json_string_value(json_object_get(def, "type")), val, &canon, &secure) !=
            0) {
            tpl_error(err,
                      "%s is not valid: the value of type '%s' does not match the declared "
                      "output type '%.32s'",
                      where, deploy_type_name(val),
                      json_string_value(json_object_get(def, "type")) ?: "");
            goto fail_val;
        }
        if (secure)
            json_object_set_new(res, name, json_pack("{s:s}", "type", canon));
        else
            json_object_set_new(res, name, json_pack("{s:s, s:o}", "type", canon, "value", val)),
                val = NULL;
        json_decref(val);
        continue;
    fail_val:
        json_decref(val);
    fail:
        json_decref(res);
        return NULL;
    }
    return res;
}

json_t *
pgcmk_tpl_parameters(const struct pgcmk_tpl *t)
{
    json_t *out = json_object();

    for (size_t i = 0; t && i < t->nparams; i++) {
        const struct tpl_param *p = &t->params[i];

        if (p->type == PT_SECURESTRING || p->type == PT_SECUREOBJECT)
            json_object_set_new(out, p->name, json_pack("{s:s}", "type", type_names[p->type]));
        else
            json_object_set_new(out, p->name,
                                json_pack("{s:s, s:O}", "type", type_names[p->type], "value",
                                          p->value ? p->value : json_null()));
    }
    return out;
}
