/* schema.c - a small JSON Schema validator (draft 2020-12 subset) and the registry of the
 * request-body schemas in schemas/.
 *
 * Keywords: type (string or array; "integer" accepts 5.0), properties, required,
 * additionalProperties (bool or schema), enum (strings compare case-insensitively unless the
 * schema says "x-pgcmk-caseSensitive": true), pattern (POSIX ERE, compiled at load), minimum,
 * maximum, minLength, maxLength (code points), items, minItems, maxItems, allOf, anyOf, oneOf
 * (with the OpenAPI "discriminator": {"propertyName": ...} to pick a branch), $ref ("#" and
 * "#/$defs/NAME" only), and boolean schemas. Everything else (title, description, format,
 * default, examples, $comment, ...) is an annotation and ignored. Recursion is bounded by
 * SCHEMA_MAX_DEPTH, so a $ref cycle cannot exhaust the stack. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgcmk/log.h"
#include "pgcmk/schema.h"

#define SCHEMA_MAX_DEPTH 64
#define SCHEMA_MAX_FILES 64
#define SCHEMA_PATH_LEN  256

struct schema_re {
    const json_t *owner; /* the schema object whose "pattern" this is */
    regex_t re;
};

struct pgcmk_schema {
    json_t *doc;
    int ci_names; /* x-pgcmk-caseInsensitiveNames: property names match in any case */
    struct schema_re *res;
    size_t n_res, cap_res;
};

/* One validation run. */
struct sv {
    const struct pgcmk_schema *s;
    unsigned flags;
    char path[SCHEMA_PATH_LEN];
    struct pgcmk_err *err;
};

static int sv_check(struct sv *v, const json_t *schema, const json_t *inst, int depth);

/* ---- compiling ---------------------------------------------------------------------------- */

static const json_t *
schema_resolve(const json_t *doc, const char *ref)
{
    if (ref == NULL || strcmp(ref, "#") == 0 || *ref == '\0')
        return doc;
    if (strncmp(ref, "#/$defs/", 8) == 0)
        return json_object_get(json_object_get(doc, "$defs"), ref + 8);
    return NULL;
}

static int
schema_type_name_ok(const char *t)
{
    static const char *const names[] = {"object", "array",   "string", "integer",
                                        "number", "boolean", "null",   NULL};

    for (const char *const *n = names; *n; n++)
        if (strcmp(*n, t) == 0)
            return 1;
    return 0;
}

/* Checks one schema object and everything below it; compiles patterns. */
static int
schema_compile_node(struct pgcmk_schema *s, const json_t *node, const char *where, int depth,
                    struct pgcmk_err *err)
{
    static const char *const subs[] = {"items", "additionalProperties", NULL};
    static const char *const lists[] = {"allOf", "anyOf", "oneOf", NULL};
    const json_t *t, *x;
    const char *k;
    size_t i;

    if (depth > SCHEMA_MAX_DEPTH)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: schema nested too deeply", where);
    if (json_is_boolean(node))
        return 0;
    if (!json_is_object(node))
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: a schema must be an object", where);
    if ((t = json_object_get(node, "$ref")) != NULL &&
        (!json_is_string(t) || schema_resolve(s->doc, json_string_value(t)) == NULL))
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: unresolved $ref '%.128s'", where,
                             json_is_string(t) ? json_string_value(t) : "?");
    if ((t = json_object_get(node, "type")) != NULL) {
        if (json_is_string(t) && !schema_type_name_ok(json_string_value(t)))
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: unknown type '%.64s'", where,
                                 json_string_value(t));
        if (json_is_array(t)) {
            json_array_foreach(t, i, x) {
                if (!json_is_string(x) || !schema_type_name_ok(json_string_value(x)))
                    return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: bad type list", where);
            }
        } else if (!json_is_string(t)) {
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: bad type", where);
        }
    }
    if ((t = json_object_get(node, "enum")) != NULL && !json_is_array(t))
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: enum must be an array", where);
    if ((t = json_object_get(node, "required")) != NULL) {
        if (!json_is_array(t))
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: required must be an array",
                                 where);
        json_array_foreach(t, i, x) {
            if (!json_is_string(x))
                return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: required names strings",
                                     where);
        }
    }
    {
        static const char *const nums[] = {"minimum",  "maximum",  "minLength", "maxLength",
                                           "minItems", "maxItems", NULL};

        for (const char *const *n = nums; *n; n++)
            if ((t = json_object_get(node, *n)) != NULL && !json_is_number(t))
                return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: %s must be a number", where,
                                     *n);
    }
    if ((t = json_object_get(node, "pattern")) != NULL) {
        struct schema_re *r;
        int rc;

        if (!json_is_string(t))
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: pattern must be a string",
                                 where);
        if (s->n_res == s->cap_res) {
            s->cap_res = s->cap_res ? s->cap_res * 2 : 8;
            r = pgcmk_xcalloc(s->cap_res, sizeof(*r));
            if (s->n_res)
                memcpy(r, s->res, s->n_res * sizeof(*r));
            free(s->res);
            s->res = r;
        }
        r = &s->res[s->n_res];
        rc = regcomp(&r->re, json_string_value(t), REG_EXTENDED | REG_NOSUB);
        if (rc != 0)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                                 "%s: pattern '%.128s' is not a POSIX extended regex", where,
                                 json_string_value(t));
        r->owner = node;
        s->n_res++;
    }
    if ((t = json_object_get(node, "properties")) != NULL) {
        if (!json_is_object(t))
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: properties must be an object",
                                 where);
        json_object_foreach((json_t *)t, k, x) {
            char w[SCHEMA_PATH_LEN];

            snprintf(w, sizeof(w), "%s/properties/%s", where, k);
            if (schema_compile_node(s, x, w, depth + 1, err))
                return -1;
        }
    }
    for (const char *const *n = subs; *n; n++) {
        char w[SCHEMA_PATH_LEN];

        if ((t = json_object_get(node, *n)) == NULL)
            continue;
        snprintf(w, sizeof(w), "%s/%s", where, *n);
        if (schema_compile_node(s, t, w, depth + 1, err))
            return -1;
    }
    for (const char *const *n = lists; *n; n++) {
        if ((t = json_object_get(node, *n)) == NULL)
            continue;
        if (!json_is_array(t) || json_array_size(t) == 0)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: %s must be a non-empty array",
                                 where, *n);
        json_array_foreach(t, i, x) {
            char w[SCHEMA_PATH_LEN];

            snprintf(w, sizeof(w), "%s/%s/%zu", where, *n, i);
            if (schema_compile_node(s, x, w, depth + 1, err))
                return -1;
        }
    }
    return 0;
}

struct pgcmk_schema *
pgcmk_schema_compile(const json_t *doc, struct pgcmk_err *err)
{
    struct pgcmk_schema *s = pgcmk_xcalloc(1, sizeof(*s));
    const json_t *defs;
    const char *k;
    json_t *x;

    s->doc = json_deep_copy(doc);
    if (s->doc == NULL || !(json_is_object(s->doc) || json_is_boolean(s->doc))) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "a schema document must be an object");
        goto fail;
    }
    s->ci_names = json_is_true(json_object_get(s->doc, "x-pgcmk-caseInsensitiveNames"));
    defs = json_object_get(s->doc, "$defs");
    if (defs && !json_is_object(defs)) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "$defs must be an object");
        goto fail;
    }
    json_object_foreach((json_t *)defs, k, x) {
        char w[SCHEMA_PATH_LEN];

        snprintf(w, sizeof(w), "#/$defs/%s", k);
        if (schema_compile_node(s, x, w, 0, err))
            goto fail;
    }
    if (schema_compile_node(s, s->doc, "#", 0, err))
        goto fail;
    return s;
fail:
    pgcmk_schema_free(s);
    return NULL;
}

void
pgcmk_schema_free(struct pgcmk_schema *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_res; i++)
        regfree(&s->res[i].re);
    free(s->res);
    json_decref(s->doc);
    free(s);
}

/* ---- validating --------------------------------------------------------------------------- */

#define SV_PREFIX "The request content was invalid and could not be deserialized: "

static int sv_fail(struct sv *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
sv_fail(struct sv *v, const char *fmt, ...)
{
    char msg[PGCMK_ERR_MSG_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return pgcmk_err_set(v->err, PGCMK_E_INVALID_CONTENT, v->path[0] ? v->path : NULL, "%s", msg);
}

/* The value as short JSON text for messages. */
static void
sv_show(const json_t *inst, char *out, size_t cap)
{
    char *text = json_dumps(inst, JSON_COMPACT | JSON_ENCODE_ANY);

    snprintf(out, cap, "%.64s%s", text ? text : "?", text && strlen(text) > 64 ? "..." : "");
    free(text);
}

/* A display name for the schema's type: its title, else its "type". */
static const char *
sv_type_name(const json_t *schema, char *buf, size_t cap)
{
    const json_t *t = json_object_get(schema, "title");
    size_t i, n = 0;
    json_t *x;

    if (json_is_string(t))
        return json_string_value(t);
    t = json_object_get(schema, "type");
    if (json_is_string(t))
        return json_string_value(t);
    buf[0] = '\0';
    json_array_foreach(t, i, x) {
        if (strcmp(json_string_value(x), "null") == 0 && json_array_size(t) > 1)
            continue;
        n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", n ? " or " : "",
                              json_string_value(x));
        if (n >= cap)
            break;
    }
    return buf[0] ? buf : "object";
}

static int
sv_is_type(const json_t *inst, const char *t)
{
    if (strcmp(t, "object") == 0)
        return json_is_object(inst);
    if (strcmp(t, "array") == 0)
        return json_is_array(inst);
    if (strcmp(t, "string") == 0)
        return json_is_string(inst);
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(inst);
    if (strcmp(t, "null") == 0)
        return json_is_null(inst);
    if (strcmp(t, "number") == 0)
        return json_is_number(inst);
    if (strcmp(t, "integer") == 0) {
        double d;

        if (json_is_integer(inst))
            return 1;
        if (!json_is_real(inst))
            return 0;
        d = json_real_value(inst);
        return isfinite(d) && d == floor(d) && fabs(d) < 9.007199254740992e15;
    }
    return 0;
}

/* Appends ".name" or "[i]" to the path; returns the old length to restore. */
static size_t
sv_push(struct sv *v, const char *name, size_t index)
{
    size_t n = strlen(v->path);

    if (name)
        snprintf(v->path + n, sizeof(v->path) - n, "%s%s", n ? "." : "", name);
    else
        snprintf(v->path + n, sizeof(v->path) - n, "[%zu]", index);
    return n;
}

static size_t
sv_utf8_len(const char *s, size_t bytes)
{
    size_t n = 0;

    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

static int
sv_streq(const struct sv *v, const json_t *schema, const char *a, const char *b)
{
    if (json_is_true(json_object_get(schema, "x-pgcmk-caseSensitive")))
        return strcmp(a, b) == 0;
    PGCMK_UNUSED(v);
    return strcasecmp(a, b) == 0;
}

static int
sv_in_enum(const struct sv *v, const json_t *schema, const json_t *list, const json_t *inst)
{
    size_t i;
    json_t *x;

    json_array_foreach(list, i, x) {
        if (json_is_string(x) && json_is_string(inst)) {
            if (sv_streq(v, schema, json_string_value(x), json_string_value(inst)))
                return 1;
        } else if (json_is_number(x) && json_is_number(inst)) {
            if (json_number_value(x) == json_number_value(inst))
                return 1;
        } else if (json_equal(x, (json_t *)inst)) {
            return 1;
        }
    }
    return 0;
}

static int
sv_enum_fail(struct sv *v, const json_t *schema, const json_t *list, const json_t *inst)
{
    char shown[80], allowed[200], tb[64];
    size_t i, n = 0;
    json_t *x;

    sv_show(inst, shown, sizeof(shown));
    allowed[0] = '\0';
    json_array_foreach(list, i, x) {
        char one[64];

        sv_show(x, one, sizeof(one));
        if (n < sizeof(allowed))
            n += (size_t)snprintf(allowed + n, sizeof(allowed) - n, "%s%s", i ? ", " : "",
                                  json_is_string(x) ? json_string_value(x) : one);
    }
    return sv_fail(v,
                   SV_PREFIX "'Error converting value %s to type '%s'. Path '%s'.' The allowed "
                             "values are: %s.",
                   shown, sv_type_name(schema, tb, sizeof(tb)), v->path, allowed);
}

/* The instance member matching a property name (any case when the document says so). */
static const json_t *
sv_member(const struct sv *v, const json_t *obj, const char *name)
{
    const json_t *x = json_object_get(obj, name);
    const char *k;
    json_t *m;

    if (x || !v->s->ci_names)
        return x;
    json_object_foreach((json_t *)obj, k, m) {
        if (strcasecmp(k, name) == 0)
            return m;
    }
    return NULL;
}

/* The schema of a property (any case when the document says so). */
static const json_t *
sv_prop_schema(const struct sv *v, const json_t *props, const char *name)
{
    const json_t *x = json_object_get(props, name);
    const char *k;
    json_t *m;

    if (x || !v->s->ci_names)
        return x;
    json_object_foreach((json_t *)props, k, m) {
        if (strcasecmp(k, name) == 0)
            return m;
    }
    return NULL;
}

static const regex_t *
sv_regex(const struct sv *v, const json_t *owner)
{
    for (size_t i = 0; i < v->s->n_res; i++)
        if (v->s->res[i].owner == owner)
            return &v->s->res[i].re;
    return NULL;
}

static int
sv_object(struct sv *v, const json_t *schema, const json_t *inst, int depth)
{
    const json_t *props = json_object_get(schema, "properties");
    const json_t *addl = json_object_get(schema, "additionalProperties");
    const json_t *req = json_object_get(schema, "required");
    const char *k;
    json_t *x;
    size_t i;

    if (req && !(v->flags & PGCMK_SCHEMA_F_PATCH)) {
        json_array_foreach(req, i, x) {
            if (sv_member(v, inst, json_string_value(x)) == NULL)
                return sv_fail(v,
                               SV_PREFIX "'Required property '%s' not found in JSON. Path '%s'.'",
                               json_string_value(x), v->path);
        }
    }
    json_object_foreach((json_t *)inst, k, x) {
        const json_t *ps = props ? sv_prop_schema(v, props, k) : NULL;
        size_t old;
        int rc;

        if (ps == NULL && addl == NULL)
            continue;
        if (ps == NULL && json_is_false(addl)) {
            char tb[64];

            sv_push(v, k, 0);
            return sv_fail(v,
                           SV_PREFIX "'Could not find member '%.64s' on object of type '%s'. "
                                     "Path '%s'.'",
                           k, sv_type_name(schema, tb, sizeof(tb)), v->path);
        }
        old = sv_push(v, k, 0);
        rc = sv_check(v, ps ? ps : addl, x, depth + 1);
        if (rc == 0)
            v->path[old] = '\0';
        if (rc)
            return -1;
    }
    return 0;
}

static int
sv_array(struct sv *v, const json_t *schema, const json_t *inst, int depth)
{
    const json_t *items = json_object_get(schema, "items");
    const json_t *mn = json_object_get(schema, "minItems"),
                 *mx = json_object_get(schema, "maxItems");
    size_t n = json_array_size(inst), i;
    json_t *x;

    if (mn && (double)n < json_number_value(mn))
        return sv_fail(
            v, "The value of '%s' is invalid: the array needs at least %g items, it has %zu.",
            v->path, json_number_value(mn), n);
    if (mx && (double)n > json_number_value(mx))
        return sv_fail(
            v, "The value of '%s' is invalid: the array takes at most %g items, it has %zu.",
            v->path, json_number_value(mx), n);
    if (items == NULL)
        return 0;
    json_array_foreach(inst, i, x) {
        size_t old = sv_push(v, NULL, i);

        if (sv_check(v, items, x, depth + 1))
            return -1;
        v->path[old] = '\0';
    }
    return 0;
}

static int
sv_string(struct sv *v, const json_t *schema, const json_t *inst)
{
    const json_t *mn = json_object_get(schema, "minLength"),
                 *mx = json_object_get(schema, "maxLength");
    const char *s = json_string_value(inst);
    size_t n = sv_utf8_len(s, json_string_length(inst));
    const regex_t *re;

    if (mn && (double)n < json_number_value(mn))
        return sv_fail(v, "The value of '%s' is invalid: it must be at least %g characters long.",
                       v->path, json_number_value(mn));
    if (mx && (double)n > json_number_value(mx))
        return sv_fail(v, "The value of '%s' is invalid: it must be at most %g characters long.",
                       v->path, json_number_value(mx));
    if (json_object_get(schema, "pattern") && (re = sv_regex(v, schema)) != NULL &&
        regexec(re, s, 0, NULL, 0) != 0)
        return sv_fail(
            v, "The value '%.64s' of '%s' is invalid: it does not match the pattern '%.128s'.", s,
            v->path, json_string_value(json_object_get(schema, "pattern")));
    return 0;
}

static int
sv_number(struct sv *v, const json_t *schema, const json_t *inst)
{
    const json_t *mn = json_object_get(schema, "minimum"), *mx = json_object_get(schema, "maximum");
    char shown[80];

    sv_show(inst, shown, sizeof(shown));
    if (mn && json_number_value(inst) < json_number_value(mn))
        return sv_fail(v, "The value %s of '%s' is invalid: the minimum is %g.", shown, v->path,
                       json_number_value(mn));
    if (mx && json_number_value(inst) > json_number_value(mx))
        return sv_fail(v, "The value %s of '%s' is invalid: the maximum is %g.", shown, v->path,
                       json_number_value(mx));
    return 0;
}

/* The branch of a discriminated oneOf/anyOf whose discriminator enum holds the instance's value:
 * 1 found (*out), 0 the instance has no such string property, -1 no branch takes the value. */
static int
sv_discriminate(struct sv *v, const json_t *schema, const json_t *list, const json_t *inst,
                const json_t **out, const json_t **d_schema)
{
    const char *prop = json_string_value(
        json_object_get(json_object_get(schema, "discriminator"), "propertyName"));
    const json_t *val, *b;
    size_t i;

    *out = NULL;
    *d_schema = NULL;
    if (prop == NULL || (val = sv_member(v, inst, prop)) == NULL || !json_is_string(val))
        return 0;
    json_array_foreach(list, i, b) {
        const json_t *br = b, *ps, *e;

        if (json_object_get(br, "$ref"))
            br = schema_resolve(v->s->doc, json_string_value(json_object_get(br, "$ref")));
        ps = sv_prop_schema(v, json_object_get(br, "properties"), prop);
        e = json_object_get(ps, "enum");
        if (e == NULL)
            continue;
        *d_schema = ps;
        if (sv_in_enum(v, ps, e, val)) {
            *out = b;
            return 1;
        }
    }
    return -1;
}

/* 1 when `inst` passes at least one schema of `list` (errors discarded). */
static int
sv_any_passes(const struct sv *v, const json_t *list, const json_t *inst, int depth)
{
    const json_t *b;
    size_t i;

    json_array_foreach(list, i, b) {
        struct sv trial = *v;
        struct pgcmk_err e;

        trial.err = &e;
        if (sv_check(&trial, b, inst, depth + 1) == 0)
            return 1;
    }
    return 0;
}

static int
sv_combine(struct sv *v, const json_t *schema, const json_t *inst, const char *kw, int depth)
{
    const json_t *list = json_object_get(schema, kw), *b, *picked, *dschema;
    int one = strcmp(kw, "oneOf") == 0 && !(v->flags & PGCMK_SCHEMA_F_PATCH);
    struct pgcmk_err best, e;
    size_t i, best_len = 0, base = strlen(v->path);
    int passed = 0, have = 0, d;

    picked = dschema = NULL;

    if (strcmp(kw, "allOf") == 0) {
        json_array_foreach(list, i, b) {
            if (sv_check(v, b, inst, depth + 1))
                return -1;
        }
        return 0;
    }
    d = json_is_object(inst) ? sv_discriminate(v, schema, list, inst, &picked, &dschema) : 0;
    if (d == 1)
        return sv_check(v, picked, inst, depth + 1);
    if (d < 0 && sv_any_passes(v, list, inst, depth))
        return 0; /* a value no branch names: a catch-all branch may take it */
    if (d < 0) {
        const char *prop = json_string_value(
            json_object_get(json_object_get(schema, "discriminator"), "propertyName"));
        json_t *all = json_array(), *x;
        size_t j;

        json_array_foreach(list, i, b) {
            const json_t *br = b, *ps;

            if (json_object_get(br, "$ref"))
                br = schema_resolve(v->s->doc, json_string_value(json_object_get(br, "$ref")));
            ps = sv_prop_schema(v, json_object_get(br, "properties"), prop);
            json_array_foreach(json_object_get(ps, "enum"), j, x) {
                json_array_append(all, x);
            }
        }
        sv_push(v, prop, 0);
        sv_enum_fail(v, dschema, all, sv_member(v, inst, prop));
        json_decref(all);
        return -1;
    }
    pgcmk_err_clear(&best);
    json_array_foreach(list, i, b) {
        struct sv trial = *v;

        pgcmk_err_clear(&e);
        trial.err = &e;
        if (sv_check(&trial, b, inst, depth + 1) == 0) {
            passed++;
            if (!one || passed > 1)
                break;
            continue;
        }
        /* keep the failure that got furthest into the body */
        if (!have || strlen(trial.path) > best_len) {
            best = e;
            best_len = strlen(trial.path);
            snprintf(v->path, sizeof(v->path), "%s", trial.path);
            have = 1;
        }
    }
    if (passed == 1 || (passed > 1 && !one)) {
        v->path[base] = '\0';
        return 0;
    }
    if (passed > 1) {
        v->path[base] = '\0';
        return sv_fail(v,
                       SV_PREFIX "'The value of '%s' matches more than one of its allowed shapes.'",
                       v->path);
    }
    if (v->err)
        *v->err = best;
    return -1;
}

static int
sv_check(struct sv *v, const json_t *schema, const json_t *inst, int depth)
{
    const json_t *t, *ref;
    char tb[64];

    if (depth > SCHEMA_MAX_DEPTH)
        return sv_fail(v, SV_PREFIX "'The request body is nested too deeply. Path '%s'.'", v->path);
    if (json_is_true(schema))
        return 0;
    if (json_is_false(schema)) {
        const char *dot = strrchr(v->path, '.');

        return sv_fail(v, SV_PREFIX "'Could not find member '%s' on this object. Path '%s'.'",
                       dot ? dot + 1 : v->path, v->path);
    }
    /* an ARM template expression stands for a value only known at deployment */
    if ((v->flags & PGCMK_SCHEMA_F_TEMPLATE) && json_is_string(inst)) {
        const char *s = json_string_value(inst);

        if (s[0] == '[' && s[1] != '[' && s[strlen(s) - 1] == ']')
            return 0;
    }
    if ((ref = json_object_get(schema, "$ref")) != NULL &&
        sv_check(v, schema_resolve(v->s->doc, json_string_value(ref)), inst, depth + 1))
        return -1;
    if ((t = json_object_get(schema, "type")) != NULL) {
        int ok = 0;
        size_t i;
        json_t *x;

        if (json_is_string(t))
            ok = sv_is_type(inst, json_string_value(t));
        json_array_foreach(t, i, x) {
            ok |= sv_is_type(inst, json_string_value(x));
        }
        if (!ok) {
            char shown[80];

            sv_show(inst, shown, sizeof(shown));
            return sv_fail(v, SV_PREFIX "'Error converting value %s to type '%s'. Path '%s'.'",
                           shown, sv_type_name(schema, tb, sizeof(tb)), v->path);
        }
    }
    if ((t = json_object_get(schema, "enum")) != NULL && !sv_in_enum(v, schema, t, inst))
        return sv_enum_fail(v, schema, t, inst);
    if (json_is_object(inst) && sv_object(v, schema, inst, depth))
        return -1;
    if (json_is_array(inst) && sv_array(v, schema, inst, depth))
        return -1;
    if (json_is_string(inst) && sv_string(v, schema, inst))
        return -1;
    if (json_is_number(inst) && sv_number(v, schema, inst))
        return -1;
    if (json_object_get(schema, "allOf") && sv_combine(v, schema, inst, "allOf", depth))
        return -1;
    if (json_object_get(schema, "anyOf") && sv_combine(v, schema, inst, "anyOf", depth))
        return -1;
    if (json_object_get(schema, "oneOf") && sv_combine(v, schema, inst, "oneOf", depth))
        return -1;
    return 0;
}

int
pgcmk_schema_validate(const struct pgcmk_schema *s, const char *ref, const json_t *inst,
                      unsigned flags, struct pgcmk_err *err)
{
    const json_t *root = schema_resolve(s->doc, ref);
    struct sv v;

    if (root == NULL)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "no schema at '%.128s'", ref);
    memset(&v, 0, sizeof(v));
    v.s = s;
    v.flags = flags;
    v.err = err;
    return sv_check(&v, root, inst, 0);
}

/* ---- the registry ------------------------------------------------------------------------- */

struct schema_file {
    char *type; /* x-pgcmk-type: "Microsoft.KeyVault/vaults" */
    struct pgcmk_schema *s;
    const json_t *versions; /* x-pgcmk-versions, borrowed from s->doc */
};

static struct schema_file schema_files[SCHEMA_MAX_FILES];
static size_t schema_n_files;
static char schema_dir_used[1024];

void
pgcmk_schema_reset(void)
{
    for (size_t i = 0; i < schema_n_files; i++) {
        free(schema_files[i].type);
        pgcmk_schema_free(schema_files[i].s);
    }
    memset(schema_files, 0, sizeof(schema_files));
    schema_n_files = 0;
    schema_dir_used[0] = '\0';
}

const char *
pgcmk_schema_dir(void)
{
    return schema_dir_used;
}

/* Checks a file's x-pgcmk-versions: {"<api-version>|*": {"put": ref, "patch": ref?}}. */
static int
schema_check_versions(const struct schema_file *f, const char *file, struct pgcmk_err *err)
{
    const char *k;
    json_t *x;

    if (!json_is_object(f->versions) || json_object_size(f->versions) == 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: x-pgcmk-versions is missing", file);
    json_object_foreach((json_t *)f->versions, k, x) {
        const char *put = json_string_value(json_object_get(x, "put"));
        const json_t *patch = json_object_get(x, "patch");

        if (put == NULL || schema_resolve(f->s->doc, put) == NULL ||
            (patch && (!json_is_string(patch) ||
                       schema_resolve(f->s->doc, json_string_value(patch)) == NULL)))
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                                 "%s: version '%.32s' needs \"put\" (and optional \"patch\") "
                                 "naming schemas in the file",
                                 file, k);
    }
    return 0;
}

static int
schema_load_file(const char *path, struct pgcmk_err *err)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    struct schema_file f;
    const char *type;

    memset(&f, 0, sizeof(f));
    if (doc == NULL)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s:%d:%d: %s", path, jerr.line,
                             jerr.column, jerr.text);
    type = json_string_value(json_object_get(doc, "x-pgcmk-type"));
    if (type == NULL) { /* not a request-body schema (a helper or an example): skip */
        json_decref(doc);
        return 0;
    }
    if (schema_n_files == SCHEMA_MAX_FILES) {
        json_decref(doc);
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "too many schema files");
    }
    for (size_t i = 0; i < schema_n_files; i++)
        if (strcasecmp(schema_files[i].type, type) == 0) {
            json_decref(doc);
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: a second schema for '%.128s'",
                                 path, type);
        }
    f.s = pgcmk_schema_compile(doc, err);
    if (f.s == NULL) {
        char m[PGCMK_ERR_MSG_LEN];

        snprintf(m, sizeof(m), "%s", err ? err->message : "");
        json_decref(doc);
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: %s", path, m);
    }
    f.type = pgcmk_xstrdup(type);
    f.versions = json_object_get(f.s->doc, "x-pgcmk-versions");
    json_decref(doc);
    if (schema_check_versions(&f, path, err)) {
        free(f.type);
        pgcmk_schema_free(f.s);
        return -1;
    }
    schema_files[schema_n_files++] = f;
    return 1;
}

static int
schema_load_tree(const char *dir, int depth, struct pgcmk_err *err)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, alphasort), loaded = 0;

    if (n < 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%s: %s", dir, strerror(errno));
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        size_t len = strlen(name);
        char *path = pgcmk_xasprintf("%s/%s", dir, name);
        struct stat st;
        int rc = 0;

        if (name[0] != '.' && stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode) && depth < 4)
                rc = schema_load_tree(path, depth + 1, err);
            else if (S_ISREG(st.st_mode) && len > 5 && strcmp(name + len - 5, ".json") == 0)
                rc = schema_load_file(path, err);
        }
        free(path);
        if (rc < 0) {
            loaded = -1;
            for (int j = i; j < n; j++)
                free(list[j]);
            break;
        }
        loaded += rc;
        free(list[i]);
    }
    free(list);
    return loaded;
}

int
pgcmk_schema_load_dir(const char *dir, struct pgcmk_err *err)
{
    int n = schema_load_tree(dir, 0, err);

    if (n >= 0)
        snprintf(schema_dir_used, sizeof(schema_dir_used), "%s", dir);
    return n;
}

static int
schema_is_dir(const char *p)
{
    struct stat st;

    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int
pgcmk_schema_init(const char *dir, const char *argv0)
{
    char found[1024] = "";
    struct pgcmk_err err;
    int n;

    pgcmk_err_clear(&err);
    if (dir && *dir && schema_is_dir(dir)) {
        snprintf(found, sizeof(found), "%s", dir);
    } else if (dir && *dir && dir[0] != '/') {
        /* started from another directory: look next to the binary (build/pgcmkd) */
        char exe[PATH_MAX], *slash;
        ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        const char *rel = strncmp(dir, "./", 2) == 0 ? dir + 2 : dir;

        if (len > 0) {
            exe[len] = '\0';
        } else if (argv0 == NULL || realpath(argv0, exe) == NULL) {
            exe[0] = '\0';
        }
        slash = strrchr(exe, '/');
        if (slash) {
            static const char *const ups[] = {"/..", "/../..", NULL};

            *slash = '\0';
            for (const char *const *u = ups; *u && !found[0]; u++) {
                char cand[sizeof(found)];

                if ((size_t)snprintf(cand, sizeof(cand), "%s%s/%s", exe, *u, rel) < sizeof(cand) &&
                    schema_is_dir(cand))
                    snprintf(found, sizeof(found), "%s", cand);
            }
        }
    }
    if (!found[0]) {
        LOG_WARN("schema directory '%s' not found: request bodies are not checked against "
                 "schemas",
                 dir ? dir : "");
        return 0;
    }
    {
        char *abs = realpath(found, NULL);

        if (abs) {
            snprintf(found, sizeof(found), "%s", abs);
            free(abs);
        }
    }
    n = pgcmk_schema_load_dir(found, &err);
    if (n < 0) {
        LOG_ERR("schemas: %s", err.message);
        pgcmk_schema_reset();
        return -1;
    }
    LOG_INFO("schemas: %d request-body schemas loaded from %s", n, found);
    return n;
}

static const struct schema_file *
schema_find(const char *type)
{
    for (size_t i = 0; i < schema_n_files; i++)
        if (strcasecmp(schema_files[i].type, type) == 0)
            return &schema_files[i];
    return NULL;
}

static const json_t *
schema_version(const struct schema_file *f, const char *api_version)
{
    const json_t *e = NULL;
    const char *k;
    json_t *x;

    if (f == NULL)
        return NULL;
    if (api_version) {
        json_object_foreach((json_t *)f->versions, k, x) {
            if (strcasecmp(k, api_version) == 0)
                return x;
        }
    }
    e = json_object_get(f->versions, "*");
    return e;
}

int
pgcmk_schema_has(const char *type, const char *api_version)
{
    return schema_version(schema_find(type), api_version) != NULL;
}

int
pgcmk_schema_check(const char *type, const char *api_version, const json_t *body, unsigned flags,
                   struct pgcmk_err *err)
{
    const struct schema_file *f = schema_find(type);
    const json_t *e = schema_version(f, api_version);
    const char *ref;

    if (e == NULL || body == NULL)
        return 0;
    ref = json_string_value(json_object_get(e, "put"));
    if ((flags & PGCMK_SCHEMA_F_PATCH) && json_object_get(e, "patch"))
        ref = json_string_value(json_object_get(e, "patch"));
    return pgcmk_schema_validate(f->s, ref, body, flags, err);
}
