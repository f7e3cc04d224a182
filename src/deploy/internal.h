/* deploy/internal.h - what the template language's files share: JSONC positions, the
 * expression tree, the evaluation context and the loaded template. Nothing here is public. */
#ifndef PGCMK_DEPLOY_INTERNAL_H
#define PGCMK_DEPLOY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "pgcmk/deploy.h"
#include "pgcmk/err.h"

/* ---- bounds (Azure's where it has one) ------------------------------------------------------ */
#define TPL_MAX_JSON_DEPTH 256     /* nesting of the JSONC parser */
#define TPL_MAX_EXPR_LEN   24576   /* characters in one expression (Azure: 24,576) */
#define TPL_MAX_EXPR_DEPTH 64      /* nesting inside one expression */
#define TPL_MAX_EVAL_DEPTH 64      /* variables -> variables -> ... */
#define TPL_MAX_STR        1048576 /* bytes in one computed string */
#define TPL_MAX_NODES      200000  /* JSON nodes in one computed value */
#define TPL_MAX_COPY       800     /* copy count (Azure: 800) */
#define TPL_MAX_RESOURCES  800     /* resources after copy expansion (Azure: 800) */
#define TPL_MAX_STEPS      5000000 /* evaluation steps per load, render or outputs */
#define TPL_MAX_RANGE      10000   /* range() count (Azure: 10,000) */
#define TPL_MAX_COPY_DEPTH 8       /* nested copy contexts */

/* ---- JSONC positions ------------------------------------------------------------------------ */

/* Where each object, array and string of a parsed document starts (1-based line and column). */
struct pgcmk_jsonc_pos {
    size_t n, cap;

    struct jsonc_loc {
        const json_t *v;
        int line, col;
    } * a;

    int sorted;
};

int deploy_pos_find(const struct pgcmk_jsonc_pos *pos, const json_t *v, int *line, int *col);

/* Parses JSONC. `flags`: JSONC_F_UNQUOTED_KEYS lets object keys be bare identifiers. */
#define JSONC_F_UNQUOTED_KEYS 1
json_t *deploy_jsonc_parse(const char *text, size_t len, unsigned flags,
                           struct pgcmk_jsonc_pos *pos, char *msg, size_t msg_cap, int *eline,
                           int *ecol, size_t *eoff);

/* ---- expressions ---------------------------------------------------------------------------- */

enum expr_kind { EXPR_LIT, EXPR_CALL, EXPR_PROP, EXPR_INDEX };

struct expr {
    enum expr_kind kind;
    json_t *lit;        /* EXPR_LIT */
    char *name;         /* EXPR_CALL: "concat" or "ns.fn"; EXPR_PROP: the property */
    struct expr *base;  /* EXPR_PROP, EXPR_INDEX */
    struct expr *index; /* EXPR_INDEX */
    size_t nargs;
    struct expr **args;
};

/* Is `s` an expression ("[...]" and not "[[...")? */
int deploy_is_expr(const char *s);
/* Parses the inside of "[...]". NULL with a message in msg. */
struct expr *deploy_expr_parse(const char *s, size_t len, char *msg, size_t cap);
void deploy_expr_free(struct expr *e);
/* Does the tree call `fn` (case-insensitive; "list*" matches any list function)? */
int deploy_expr_calls(const struct expr *e, const char *fn);

/* ---- the loaded template -------------------------------------------------------------------- */

enum param_type {
    PT_STRING,
    PT_SECURESTRING,
    PT_INT,
    PT_BOOL,
    PT_OBJECT,
    PT_SECUREOBJECT,
    PT_ARRAY
};

struct tpl_param {
    char *name;
    enum param_type type;
    json_t *value; /* final value */
};

struct tpl_userfn {
    char *name; /* "ns.fn" lower-cased */
    size_t nparams;
    char **pnames;
    json_t *output; /* {"type", "value"} (borrowed from the template) */
};

struct tpl_var {
    char *name;
    const json_t *src;  /* borrowed; NULL for a copy variable */
    const json_t *copy; /* borrowed copy spec for variables.copy entries */
    json_t *value;
    int state; /* 0 not yet, 1 evaluating, 2 done */
};

struct tpl_inst {
    struct pgcmk_tpl_resource pub;
    const json_t *src; /* the resource object (borrowed) */
    char *path;        /* "resources[2]" or "resources[2].resources[0]" */
    char *copy_name;   /* the copy loop it belongs to (own or inherited), or NULL */
    int ncopy;         /* copy contexts */
    char *copy_names[TPL_MAX_COPY_DEPTH];
    int copy_idx[TPL_MAX_COPY_DEPTH];
    int line, col;
    size_t deps_cap;
    size_t *deps_buf;
    char *s_symbol, *s_id, *s_type, *s_name, *s_api, *s_rg, *s_sub;
    const json_t *deps_src; /* dependsOn (borrowed) */
    size_t parent;          /* index of the parent for inline children, or SIZE_MAX */
    int batch;              /* serial copy batch number, -1 when parallel */
    int batch_size;
};

struct pgcmk_tpl {
    json_t *tpl; /* our reference to the template */
    const struct pgcmk_jsonc_pos *pos;
    struct pgcmk_tpl_scope scope;
    char *sub, *tenant, *rg, *rg_location, *dep_name, *content_version;
    size_t nparams;
    struct tpl_param *params;
    size_t nvars;
    struct tpl_var *vars;
    size_t nfns;
    struct tpl_userfn *fns;
    size_t ninst, cap_inst;
    struct tpl_inst *inst;
};

/* ---- evaluation ----------------------------------------------------------------------------- */

struct eval_ctx {
    struct pgcmk_tpl *t;
    const struct pgcmk_tpl_host *host; /* NULL at load time: reference()/list*() refused */
    struct pgcmk_err *err;
    const char *where; /* "The template resource 'x' at line '3' and column '5'" */
    const char *path;  /* JSON path of the value being evaluated */
    const char *text;  /* the expression text */
    int in_param_default;
    int in_variables;
    struct tpl_userfn *fn; /* inside a user function: its parameters */
    json_t **fn_args;
    int ncopy;
    const char *copy_names[TPL_MAX_COPY_DEPTH + 4];
    int copy_idx[TPL_MAX_COPY_DEPTH + 4];
    int depth;
    int keep_copyindex; /* outer-scope nested templates: leave copyIndex expressions alone */
    int failed_here;    /* the error message is final */
    long *steps;        /* shared by the evaluations of one load, render or outputs call */
};

/* Evaluates a template value: strings that are expressions are evaluated, objects and arrays
 * recursively; `prop_copy` expands "copy" arrays of {name,count,input}. New reference or NULL. */
json_t *deploy_eval_value(struct eval_ctx *cx, const json_t *v, int prop_copy, const char *path);
/* Evaluates one string (expression or literal). */
json_t *deploy_eval_string(struct eval_ctx *cx, const char *s);
json_t *deploy_eval_expr(struct eval_ctx *cx, const struct expr *e);
/* Sets the evaluation error (InvalidTemplate with where/path/expression). Returns NULL. */
json_t *deploy_fail(struct eval_ctx *cx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int deploy_step(struct eval_ctx *cx, long n);
/* Counts nodes (charging steps); -1 with the error set when over TPL_MAX_NODES. */
int deploy_check_size(struct eval_ctx *cx, const json_t *v);

/* The built-in function table (functions.c). */
typedef json_t *(*deploy_fn)(struct eval_ctx *cx, const char *name, size_t n, json_t **a);

struct deploy_builtin {
    const char *name;
    int min, max; /* max -1: unbounded */
    deploy_fn fn;
    int lazy; /* if(): arguments unevaluated (fn gets NULL array; see expr.c) */
};
const struct deploy_builtin *deploy_builtin_find(const char *name);
json_t *deploy_call_list(struct eval_ctx *cx, const char *name, size_t n, json_t **a);

/* Helpers shared by the functions and the template. */
const char *deploy_type_name(const json_t *v);
char *deploy_to_string(const json_t *v); /* string(): heap string */
int deploy_json_equal(const json_t *a, const json_t *b);
char *deploy_resource_id(const char *sub, const char *rg, const char *type,
                         const char *const *names, size_t nnames);
/* Finds the template resource by name, type/name or id. SIZE_MAX when none. */
size_t deploy_find_resource(const struct pgcmk_tpl *t, const char *ref);
void deploy_guid(const char *const *parts, size_t n, char out[37]);

/* template.c: what parameters(), variables(), reference() and list*() read. */
json_t *deploy_param_get(struct eval_ctx *cx, const char *name);
json_t *deploy_var_get(struct eval_ctx *cx, const char *name);
json_t *deploy_reference(struct eval_ctx *cx, size_t n, json_t **a);

#endif
