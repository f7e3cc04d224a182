/* ops.c - the KMIP operations on managed objects (ops.h): Discover Versions, Query, Create,
 * Register, Locate, Get, Get Attributes, Get Attribute List, Add/Modify/Delete Attribute,
 * Activate, Revoke, Destroy, ReKey. Every payload is checked strictly (an item the operation does
 * not take is Invalid Message); failures carry KMIP 1.4's Result Reasons and PyKMIP's messages
 * where PyKMIP has one. Objects belong to the client's identity: another identity's object is
 * Item Not Found, as an unknown one. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmip/objects.h"
#include "kmip/ops.h"
#include "pgcmk/core.h"
#include "pgcmk/crypto.h"

#define T(n) PGCMK_KMIP_TAG_##n

int
kmip_fail(struct kmip_call *c, uint32_t reason, const char *fmt, ...)
{
    va_list ap;

    c->reason = reason;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof(c->message), fmt, ap);
    va_end(ap);
    return -1;
}

static int
tag_allowed(const struct kmip_call *c, const struct pgcmk_ttlv *parent, const uint32_t *tags,
            size_t n, const char *what)
{
    for (const struct pgcmk_ttlv *k = parent->first; k; k = k->next) {
        size_t i;

        for (i = 0; i < n && tags[i] != k->tag; i++)
            ;
        if (i == n) {
            const char *nm = pgcmk_kmip_tag_name(k->tag);

            return kmip_fail((struct kmip_call *)c, PGCMK_KMIP_RR_INVALID_MESSAGE,
                             "Unexpected item %s (0x%06X) in the %s.", nm ? nm : "unknown",
                             (unsigned)k->tag, what);
        }
    }
    return 0;
}

/* An optional single child of the given type: 0 absent, 1 present (*out), -1 failure. */
static int
opt_child(struct kmip_call *c, const struct pgcmk_ttlv *parent, uint32_t tag,
          enum pgcmk_ttlv_type type, const struct pgcmk_ttlv **out)
{
    const struct pgcmk_ttlv *k = pgcmk_ttlv_find(parent, tag);
    const char *nm = pgcmk_kmip_tag_name(tag);

    *out = NULL;
    if (!k)
        return 0;
    if (k->type != type)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE, "%s must be a %s, not a %s.",
                         nm ? nm : "item", pgcmk_ttlv_type_name(type),
                         pgcmk_ttlv_type_name(k->type));
    if (pgcmk_ttlv_find_next(k))
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE, "%s appears more than once.",
                         nm ? nm : "item");
    *out = k;
    return 1;
}

/* The object named by the payload's Unique Identifier (or the ID Placeholder), owned by the
 * client and not destroyed unless destroyed_ok. */
static struct kmip_obj *
target(struct kmip_call *c, const struct pgcmk_ttlv *payload, int destroyed_ok)
{
    const struct pgcmk_ttlv *u;
    const char *uid;
    struct kmip_obj *o;

    if (opt_child(c, payload, T(UNIQUE_IDENTIFIER), PGCMK_TTLV_TEXT_STRING, &u) < 0)
        return NULL;
    uid = u ? (const char *)u->v.bytes : c->placeholder;
    if (!*uid) {
        kmip_fail(c, PGCMK_KMIP_RR_MISSING_DATA,
                  "No Unique Identifier, and no ID Placeholder set by an earlier batch item.");
        return NULL;
    }
    o = kmip_obj_find(uid);
    if (!o || strcmp(o->owner, c->owner) != 0 ||
        (!destroyed_ok &&
         (o->state == KMIP_ST_DESTROYED || o->state == KMIP_ST_DESTROYED_COMPROMISED))) {
        kmip_fail(c, PGCMK_KMIP_RR_ITEM_NOT_FOUND, "Could not locate object: %.64s", uid);
        return NULL;
    }
    return o;
}

static struct pgcmk_ttlv *
add(struct pgcmk_ttlv *parent, struct pgcmk_ttlv *child)
{
    return pgcmk_ttlv_append(parent, child);
}

static struct pgcmk_ttlv *
uid_payload(struct kmip_call *c, const char *uid)
{
    struct pgcmk_ttlv *p = pgcmk_ttlv_new_struct(c->out, T(RESPONSE_PAYLOAD));

    add(p, pgcmk_ttlv_new_text(c->out, T(UNIQUE_IDENTIFIER), uid, strlen(uid)));
    return p;
}

/* ---- the attribute table ---- */

enum {
    A_RO = 1,     /* the client may not set it at all */
    A_MULTI = 2,  /* multi-instance */
    A_CREATE = 4, /* may be given in a Create/Register template */
    A_CHANGE = 8, /* Add/Modify/Delete */
    A_REQUIRED = 16,
};

enum core {
    C_GENERIC,
    C_UID,
    C_NAME,
    C_TYPE,
    C_ALG,
    C_LEN,
    C_MASK,
    C_STATE,
    C_INITIAL,
    C_ACTIVATION,
    C_DEACTIVATION,
    C_PROCESS_START,
    C_PROTECT_STOP,
    C_COMPROMISE_OCC,
    C_COMPROMISE,
    C_DESTROY,
    C_LAST_CHANGE,
    C_REVOCATION,
};

struct attr_def {
    const char *name;
    enum pgcmk_ttlv_type type;
    unsigned flags;
    enum core core;
};

static const struct attr_def attr_defs[] = {
    {"Unique Identifier", PGCMK_TTLV_TEXT_STRING, A_RO | A_REQUIRED, C_UID},
    {"Name", PGCMK_TTLV_STRUCTURE, A_MULTI | A_CREATE | A_CHANGE, C_NAME},
    {"Object Type", PGCMK_TTLV_ENUMERATION, A_RO | A_REQUIRED, C_TYPE},
    {"Cryptographic Algorithm", PGCMK_TTLV_ENUMERATION, A_CREATE | A_REQUIRED, C_ALG},
    {"Cryptographic Length", PGCMK_TTLV_INTEGER, A_CREATE | A_REQUIRED, C_LEN},
    {"Operation Policy Name", PGCMK_TTLV_TEXT_STRING, A_CREATE | A_CHANGE, C_GENERIC},
    {"Cryptographic Usage Mask", PGCMK_TTLV_INTEGER, A_CREATE | A_REQUIRED, C_MASK},
    {"State", PGCMK_TTLV_ENUMERATION, A_RO | A_REQUIRED, C_STATE},
    {"Initial Date", PGCMK_TTLV_DATE_TIME, A_RO | A_REQUIRED, C_INITIAL},
    {"Activation Date", PGCMK_TTLV_DATE_TIME, A_CREATE | A_CHANGE, C_ACTIVATION},
    {"Process Start Date", PGCMK_TTLV_DATE_TIME, A_CREATE | A_CHANGE, C_PROCESS_START},
    {"Protect Stop Date", PGCMK_TTLV_DATE_TIME, A_CREATE | A_CHANGE, C_PROTECT_STOP},
    {"Deactivation Date", PGCMK_TTLV_DATE_TIME, A_CREATE | A_CHANGE, C_DEACTIVATION},
    {"Destroy Date", PGCMK_TTLV_DATE_TIME, A_RO, C_DESTROY},
    {"Compromise Occurrence Date", PGCMK_TTLV_DATE_TIME, A_RO, C_COMPROMISE_OCC},
    {"Compromise Date", PGCMK_TTLV_DATE_TIME, A_RO, C_COMPROMISE},
    {"Revocation Reason", PGCMK_TTLV_STRUCTURE, A_RO, C_REVOCATION},
    {"Last Change Date", PGCMK_TTLV_DATE_TIME, A_RO | A_REQUIRED, C_LAST_CHANGE},
    {"Link", PGCMK_TTLV_STRUCTURE, A_MULTI | A_CREATE | A_CHANGE, C_GENERIC},
    {"Contact Information", PGCMK_TTLV_TEXT_STRING, A_CREATE | A_CHANGE, C_GENERIC},
    {"Object Group", PGCMK_TTLV_TEXT_STRING, A_MULTI | A_CREATE | A_CHANGE, C_GENERIC},
    {"Application Specific Information", PGCMK_TTLV_STRUCTURE, A_MULTI | A_CREATE | A_CHANGE,
     C_GENERIC},
    {"Cryptographic Parameters", PGCMK_TTLV_STRUCTURE, A_MULTI | A_CREATE | A_CHANGE, C_GENERIC},
    {"Description", PGCMK_TTLV_TEXT_STRING, A_CREATE | A_CHANGE, C_GENERIC},
    {"Comment", PGCMK_TTLV_TEXT_STRING, A_CREATE | A_CHANGE, C_GENERIC},
    {"Sensitive", PGCMK_TTLV_BOOLEAN, A_CREATE | A_CHANGE, C_GENERIC},
    {"Extractable", PGCMK_TTLV_BOOLEAN, A_CREATE | A_CHANGE, C_GENERIC},
};

/* The definition of name; custom attributes ("x-...") get a multi-instance definition of the
 * value's type in *custom. NULL: not supported (c failed). */
static const struct attr_def *
attr_lookup(struct kmip_call *c, const char *name, const struct pgcmk_ttlv *value,
            struct attr_def *custom)
{
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(attr_defs); i++)
        if (strcmp(attr_defs[i].name, name) == 0)
            return &attr_defs[i];
    if (strncmp(name, "x-", 2) == 0 || strncmp(name, "y-", 2) == 0) {
        custom->name = name;
        custom->type = value ? value->type : PGCMK_TTLV_TEXT_STRING;
        custom->flags = name[0] == 'y' ? A_RO | A_MULTI : A_MULTI | A_CREATE | A_CHANGE;
        custom->core = C_GENERIC;
        return custom;
    }
    kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD, "The '%.64s' attribute is not supported.", name);
    return NULL;
}

static int64_t *
core_date(struct kmip_obj *o, enum core k)
{
    switch (k) {
    case C_INITIAL:
        return &o->initial;
    case C_ACTIVATION:
        return &o->activation;
    case C_DEACTIVATION:
        return &o->deactivation;
    case C_PROCESS_START:
        return &o->process_start;
    case C_PROTECT_STOP:
        return &o->protect_stop;
    case C_COMPROMISE_OCC:
        return &o->compromise_occurrence;
    case C_COMPROMISE:
        return &o->compromise;
    case C_DESTROY:
        return &o->destroy;
    case C_LAST_CHANGE:
        return &o->last_change;
    default:
        return NULL;
    }
}

/* How many instances of the attribute o has. */
static size_t
attr_count(const struct kmip_obj *o, const struct attr_def *d)
{
    switch (d->core) {
    case C_GENERIC:
        return kmip_gattr_count(o, d->name);
    case C_NAME:
        return o->n_names;
    case C_UID:
    case C_TYPE:
    case C_STATE:
        return 1;
    case C_ALG:
        return o->alg != 0;
    case C_LEN:
        return o->length != 0;
    case C_MASK:
        return o->mask != 0;
    case C_REVOCATION:
        return o->rev_code != 0;
    default:
        return *core_date((struct kmip_obj *)o, d->core) != 0;
    }
}

/* Appends instance `index` of the attribute's value (tag ATTRIBUTE_VALUE) to parent. */
static void
attr_value(struct kmip_call *c, struct pgcmk_ttlv *parent, const struct kmip_obj *o,
           const struct attr_def *d, size_t index)
{
    struct pgcmk_ttlv_tree *t = c->out;
    const uint32_t V = T(ATTRIBUTE_VALUE);
    struct pgcmk_ttlv *s;

    switch (d->core) {
    case C_GENERIC: {
        const struct kmip_gattr *g = kmip_gattr_get(o, d->name, index);
        struct pgcmk_ttlv_tree tmp;
        struct pgcmk_ttlv_err e;

        pgcmk_ttlv_tree_init(&tmp);
        if (g && pgcmk_ttlv_decode(g->val, g->len, &tmp, &e) == 0)
            add(parent, kmip_ttlv_clone(t, tmp.root));
        pgcmk_ttlv_tree_release(&tmp);
        return;
    }
    case C_UID:
        add(parent, pgcmk_ttlv_new_text(t, V, o->uid, strlen(o->uid)));
        return;
    case C_NAME:
        s = add(parent, pgcmk_ttlv_new_struct(t, V));
        add(s, pgcmk_ttlv_new_text(t, T(NAME_VALUE), o->names[index].value,
                                   strlen(o->names[index].value)));
        add(s, pgcmk_ttlv_new_enum(t, T(NAME_TYPE), o->names[index].type));
        return;
    case C_TYPE:
        add(parent, pgcmk_ttlv_new_enum(t, V, o->type));
        return;
    case C_STATE:
        add(parent, pgcmk_ttlv_new_enum(t, V, o->state));
        return;
    case C_ALG:
        add(parent, pgcmk_ttlv_new_enum(t, V, o->alg));
        return;
    case C_LEN:
        add(parent, pgcmk_ttlv_new_int(t, V, o->length));
        return;
    case C_MASK:
        add(parent, pgcmk_ttlv_new_int(t, V, o->mask));
        return;
    case C_REVOCATION:
        s = add(parent, pgcmk_ttlv_new_struct(t, V));
        add(s, pgcmk_ttlv_new_enum(t, T(REVOCATION_REASON_CODE), o->rev_code));
        if (o->rev_msg)
            add(s, pgcmk_ttlv_new_text(t, T(REVOCATION_MESSAGE), o->rev_msg, strlen(o->rev_msg)));
        return;
    default:
        add(parent, pgcmk_ttlv_new_datetime(t, V, *core_date((struct kmip_obj *)o, d->core)));
        return;
    }
}

static struct pgcmk_ttlv *
attr_item(struct kmip_call *c, struct pgcmk_ttlv *parent, const struct kmip_obj *o,
          const struct attr_def *d, size_t index)
{
    struct pgcmk_ttlv *a = add(parent, pgcmk_ttlv_new_struct(c->out, T(ATTRIBUTE)));

    add(a, pgcmk_ttlv_new_text(c->out, T(ATTRIBUTE_NAME), d->name, strlen(d->name)));
    if (index > 0)
        add(a, pgcmk_ttlv_new_int(c->out, T(ATTRIBUTE_INDEX), (int32_t)index));
    attr_value(c, a, o, d, index);
    return a;
}

/* One parsed Attribute {Attribute Name, [Attribute Index], [Attribute Value]}. */
struct attr_in {
    const char *name;
    int32_t index;
    int has_index;
    const struct pgcmk_ttlv *value;
};

static int
parse_attribute(struct kmip_call *c, const struct pgcmk_ttlv *a, int need_value,
                struct attr_in *out)
{
    static const uint32_t ok[] = {T(ATTRIBUTE_NAME), T(ATTRIBUTE_INDEX), T(ATTRIBUTE_VALUE)};
    const struct pgcmk_ttlv *n, *i, *v;

    memset(out, 0, sizeof(*out));
    if (a->type != PGCMK_TTLV_STRUCTURE)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE, "Attribute must be a Structure.");
    if (tag_allowed(c, a, ok, 3, "Attribute") ||
        opt_child(c, a, T(ATTRIBUTE_NAME), PGCMK_TTLV_TEXT_STRING, &n) < 0 ||
        opt_child(c, a, T(ATTRIBUTE_INDEX), PGCMK_TTLV_INTEGER, &i) < 0)
        return -1;
    if (!n)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE, "Attribute has no Attribute Name.");
    v = pgcmk_ttlv_find(a, T(ATTRIBUTE_VALUE));
    if (v && pgcmk_ttlv_find_next(v))
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE,
                         "Attribute Value appears more than once.");
    if (need_value && !v)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE, "Attribute '%.64s' has no value.",
                         (const char *)n->v.bytes);
    if (i && i->v.i32 < 0)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD, "Attribute Index must not be negative.");
    out->name = (const char *)n->v.bytes;
    out->index = i ? i->v.i32 : 0;
    out->has_index = i != NULL;
    out->value = v;
    return 0;
}

/* Checks that value fits the definition. */
static int
check_value(struct kmip_call *c, const struct attr_def *d, const struct pgcmk_ttlv *v)
{
    if (v->type != d->type)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD, "The value of '%.64s' must be a %s.",
                         d->name, pgcmk_ttlv_type_name(d->type));
    if (d->core == C_NAME) {
        static const uint32_t ok[] = {T(NAME_VALUE), T(NAME_TYPE)};
        const struct pgcmk_ttlv *nv, *nt;

        if (tag_allowed(c, v, ok, 2, "Name") ||
            opt_child(c, v, T(NAME_VALUE), PGCMK_TTLV_TEXT_STRING, &nv) < 0 ||
            opt_child(c, v, T(NAME_TYPE), PGCMK_TTLV_ENUMERATION, &nt) < 0)
            return -1;
        if (!nv)
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD, "A Name needs a Name Value.");
        if (nt && nt->v.u32 != 1 && nt->v.u32 != 2)
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD, "Unknown Name Type %u.",
                             (unsigned)nt->v.u32);
    } else if (strcmp(d->name, "Link") == 0) {
        const struct pgcmk_ttlv *lt, *lo;

        if (opt_child(c, v, T(LINK_TYPE), PGCMK_TTLV_ENUMERATION, &lt) < 0 ||
            opt_child(c, v, T(LINKED_OBJECT_IDENTIFIER), PGCMK_TTLV_TEXT_STRING, &lo) < 0)
            return -1;
        if (!lt || !lo)
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                             "A Link needs a Link Type and a Linked Object Identifier.");
    } else if (d->core == C_LEN && v->v.i32 <= 0) {
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD, "Cryptographic Length must be positive.");
    }
    return 0;
}

/* Sets instance index (index == count: a new instance) of d to v. */
static void
attr_store(struct kmip_obj *o, const struct attr_def *d, size_t index, const struct pgcmk_ttlv *v)
{
    int64_t *dt;

    switch (d->core) {
    case C_GENERIC:
        if (index < kmip_gattr_count(o, d->name))
            (void)kmip_gattr_set(o, d->name, index, v);
        else
            kmip_gattr_add(o, d->name, v);
        return;
    case C_NAME: {
        const struct pgcmk_ttlv *nv = pgcmk_ttlv_find(v, T(NAME_VALUE));
        uint32_t nt = KMIP_NAME_TEXT;

        (void)pgcmk_ttlv_get_enum(v, T(NAME_TYPE), &nt);
        if (index >= o->n_names) {
            o->names = pgcmk_xrealloc(o->names, (o->n_names + 1) * sizeof(*o->names));
            index = o->n_names++;
        } else {
            free(o->names[index].value);
        }
        o->names[index].value = pgcmk_xstrdup((const char *)nv->v.bytes);
        o->names[index].type = nt;
        return;
    }
    case C_ALG:
        o->alg = v->v.u32;
        return;
    case C_LEN:
        o->length = v->v.i32;
        return;
    case C_MASK:
        o->mask = v->v.i32;
        return;
    default:
        if ((dt = core_date(o, d->core)) != NULL)
            *dt = v->v.i64;
        return;
    }
}

/* The state rules of KMIP 1.4 for a client changing a date. */
static int
date_change_allowed(struct kmip_call *c, const struct kmip_obj *o, const struct attr_def *d)
{
    int pre = o->state == KMIP_ST_PRE_ACTIVE;
    int active = o->state == KMIP_ST_ACTIVE;

    if (((d->core == C_ACTIVATION || d->core == C_PROCESS_START) && !pre) ||
        ((d->core == C_DEACTIVATION || d->core == C_PROTECT_STOP) && !pre && !active))
        return kmip_fail(c, PGCMK_KMIP_RR_PERMISSION_DENIED,
                         "The %s cannot be changed in the %s state.", d->name,
                         kmip_state_name(o->state));
    return 0;
}

/* Applies a Template-Attribute (Create, Register, ReKey) to a new object. */
static int
apply_template(struct kmip_call *c, struct kmip_obj *o, const struct pgcmk_ttlv *tpl)
{
    static const uint32_t ok[] = {T(ATTRIBUTE), T(NAME)};

    if (!tpl)
        return 0;
    if (tpl->type != PGCMK_TTLV_STRUCTURE)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE,
                         "Template-Attribute must be a "
                         "Structure.");
    if (tag_allowed(c, tpl, ok, 2, "Template-Attribute"))
        return -1;
    if (pgcmk_ttlv_find(tpl, T(NAME)))
        return kmip_fail(c, PGCMK_KMIP_RR_FEATURE_NOT_SUPPORTED,
                         "Attribute templates are not supported.");
    for (const struct pgcmk_ttlv *a = pgcmk_ttlv_find(tpl, T(ATTRIBUTE)); a;
         a = pgcmk_ttlv_find_next(a)) {
        struct attr_in in;
        struct attr_def custom;
        const struct attr_def *d;

        if (parse_attribute(c, a, 1, &in) || !(d = attr_lookup(c, in.name, in.value, &custom)))
            return -1;
        if (!(d->flags & A_CREATE))
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                             "Cannot set the %.64s attribute: the server sets it.", d->name);
        if (check_value(c, d, in.value))
            return -1;
        if (!(d->flags & A_MULTI) && d->core != C_GENERIC && attr_count(o, d) && d->core != C_ALG &&
            d->core != C_LEN)
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD, "Cannot set duplicate %.64s values.",
                             d->name);
        if (!(d->flags & A_MULTI) && d->core == C_GENERIC && attr_count(o, d))
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD, "Cannot set duplicate %.64s values.",
                             d->name);
        if ((d->core == C_ALG && o->alg && o->alg != in.value->v.u32) ||
            (d->core == C_LEN && o->length && o->length != in.value->v.i32))
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                             "The %.64s of the template does not match the key's.", d->name);
        attr_store(
            o, d, attr_count(o, d) && (d->core == C_ALG || d->core == C_LEN) ? 0 : attr_count(o, d),
            in.value);
    }
    return 0;
}

/* The common part of a new object: uid, dates, defaults, state. */
static void
new_object_finish(struct kmip_obj *o, int64_t now)
{
    struct pgcmk_ttlv_tree t;
    struct pgcmk_ttlv *v;

    o->id = kmip_obj_next_id();
    snprintf(o->uid, sizeof(o->uid), "%llu", (unsigned long long)o->id);
    o->type = KMIP_OBJ_SYMMETRIC_KEY;
    o->state = KMIP_ST_PRE_ACTIVE;
    o->initial = now;
    o->last_change = now;
    if (!kmip_gattr_count(o, "Operation Policy Name")) {
        pgcmk_ttlv_tree_init(&t);
        v = pgcmk_ttlv_new_text(&t, T(ATTRIBUTE_VALUE), "default", 7);
        kmip_gattr_add(o, "Operation Policy Name", v);
        pgcmk_ttlv_tree_release(&t);
    }
    (void)kmip_obj_eval(o, now);
}

static int
check_aes(struct kmip_call *c, const struct kmip_obj *o)
{
    if (!o->alg)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                         "The cryptographic algorithm must be specified as an attribute.");
    if (o->alg != KMIP_ALG_AES)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                         "Only AES symmetric keys are supported (Cryptographic Algorithm %u).",
                         (unsigned)o->alg);
    if (!o->length)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                         "The cryptographic length must be specified as an attribute.");
    if (o->length != 128 && o->length != 192 && o->length != 256)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                         "The cryptographic length (%d) is not valid for AES (128, 192 or 256).",
                         (int)o->length);
    return 0;
}

static int
commit(struct kmip_call *c, struct kmip_obj *o, enum kmip_change ch, struct kmip_obj *also)
{
    struct pgcmk_err err;

    if (kmip_obj_commit(o, ch, also, &err))
        return kmip_fail(c, PGCMK_KMIP_RR_GENERAL_FAILURE,
                         "Operation failed. The store refused the change.");
    return 0;
}

/* ---- operations ---- */

static int
op_discover_versions(struct kmip_call *c, const struct pgcmk_ttlv *p, struct pgcmk_ttlv **resp)
{
    static const int32_t ours[][2] = {{1, 4}, {1, 3}, {1, 2}, {1, 1}, {1, 0}};
    static const uint32_t ok[] = {T(PROTOCOL_VERSION)};
    struct pgcmk_ttlv *r;
    int given = 0;

    if (tag_allowed(c, p, ok, 1, "Discover Versions request payload"))
        return -1;
    for (const struct pgcmk_ttlv *v = p->first; v; v = v->next) {
        int32_t ma, mi;

        if (v->type != PGCMK_TTLV_STRUCTURE ||
            pgcmk_ttlv_get_int(v, T(PROTOCOL_VERSION_MAJOR), &ma) ||
            pgcmk_ttlv_get_int(v, T(PROTOCOL_VERSION_MINOR), &mi))
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE,
                             "A Protocol Version needs a Major and a Minor Integer.");
        given = 1;
    }
    r = pgcmk_ttlv_new_struct(c->out, T(RESPONSE_PAYLOAD));
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(ours); i++) {
        int want = !given;
        struct pgcmk_ttlv *pv;

        for (const struct pgcmk_ttlv *v = p->first; v && !want; v = v->next) {
            int32_t ma = -1, mi = -1;

            (void)pgcmk_ttlv_get_int(v, T(PROTOCOL_VERSION_MAJOR), &ma);
            (void)pgcmk_ttlv_get_int(v, T(PROTOCOL_VERSION_MINOR), &mi);
            want = ma == ours[i][0] && mi == ours[i][1];
        }
        if (!want)
            continue;
        pv = add(r, pgcmk_ttlv_new_struct(c->out, T(PROTOCOL_VERSION)));
        add(pv, pgcmk_ttlv_new_int(c->out, T(PROTOCOL_VERSION_MAJOR), ours[i][0]));
        add(pv, pgcmk_ttlv_new_int(c->out, T(PROTOCOL_VERSION_MINOR), ours[i][1]));
    }
    *resp = r;
    return 0;
}

static const uint32_t served_ops[] = {
    PGCMK_KMIP_OP_CREATE,
    PGCMK_KMIP_OP_REGISTER,
    PGCMK_KMIP_OP_REKEY,
    PGCMK_KMIP_OP_LOCATE,
    PGCMK_KMIP_OP_GET,
    PGCMK_KMIP_OP_GET_ATTRIBUTES,
    PGCMK_KMIP_OP_GET_ATTRIBUTE_LIST,
    PGCMK_KMIP_OP_ADD_ATTRIBUTE,
    PGCMK_KMIP_OP_MODIFY_ATTRIBUTE,
    PGCMK_KMIP_OP_DELETE_ATTRIBUTE,
    PGCMK_KMIP_OP_ACTIVATE,
    PGCMK_KMIP_OP_REVOKE,
    PGCMK_KMIP_OP_DESTROY,
    PGCMK_KMIP_OP_QUERY,
    PGCMK_KMIP_OP_DISCOVER_VERSIONS,
};

int
kmip_op_supported(uint32_t op)
{
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(served_ops); i++)
        if (served_ops[i] == op)
            return 1;
    return 0;
}

static int
op_query(struct kmip_call *c, const struct pgcmk_ttlv *p, struct pgcmk_ttlv **resp)
{
    static const uint32_t ok[] = {T(QUERY_FUNCTION)};
    struct pgcmk_ttlv *r;
    int ops = 0, objs = 0, info = 0;

    if (tag_allowed(c, p, ok, 1, "Query request payload"))
        return -1;
    for (const struct pgcmk_ttlv *q = p->first; q; q = q->next) {
        if (q->type != PGCMK_TTLV_ENUMERATION)
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE,
                             "Query Function must be an Enumeration.");
        ops |= q->v.u32 == 1;
        objs |= q->v.u32 == 2;
        info |= q->v.u32 == 3;
    }
    r = pgcmk_ttlv_new_struct(c->out, T(RESPONSE_PAYLOAD));
    if (ops)
        for (size_t i = 0; i < PGCMK_ARRAY_LEN(served_ops); i++)
            add(r, pgcmk_ttlv_new_enum(c->out, T(OPERATION), served_ops[i]));
    if (objs)
        add(r, pgcmk_ttlv_new_enum(c->out, T(OBJECT_TYPE), KMIP_OBJ_SYMMETRIC_KEY));
    if (info) {
        struct pgcmk_ttlv *si;

        add(r, pgcmk_ttlv_new_text(c->out, T(VENDOR_IDENTIFICATION), "pgcmk", 5));
        si = add(r, pgcmk_ttlv_new_struct(c->out, T(SERVER_INFORMATION)));
        (void)si;
    }
    *resp = r;
    return 0;
}

static int
op_create(struct kmip_call *c, const struct pgcmk_ttlv *p, struct pgcmk_ttlv **resp)
{
    static const uint32_t ok[] = {T(OBJECT_TYPE), T(TEMPLATE_ATTRIBUTE)};
    const struct pgcmk_ttlv *ot, *tpl;
    struct kmip_obj *o;
    uint8_t key[32];
    int64_t now = kmip_now();

    if (tag_allowed(c, p, ok, 2, "Create request payload") ||
        opt_child(c, p, T(OBJECT_TYPE), PGCMK_TTLV_ENUMERATION, &ot) < 0 ||
        opt_child(c, p, T(TEMPLATE_ATTRIBUTE), PGCMK_TTLV_STRUCTURE, &tpl) < 0)
        return -1;
    if (!ot)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE, "Create needs an Object Type.");
    if (ot->v.u32 != KMIP_OBJ_SYMMETRIC_KEY)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                         "Cannot create a %u object with the Create operation.",
                         (unsigned)ot->v.u32);
    o = kmip_obj_new(c->owner);
    if (apply_template(c, o, tpl) || check_aes(c, o)) {
        kmip_obj_free(o);
        return -1;
    }
    new_object_finish(o, now);
    if (pgcmk_random(key, (size_t)o->length / 8) || kmip_obj_seal(o, key, (size_t)o->length / 8)) {
        memset(key, 0, sizeof(key));
        kmip_obj_free(o);
        return kmip_fail(c, PGCMK_KMIP_RR_CRYPTOGRAPHIC_FAILURE, "Key generation failed.");
    }
    memset(key, 0, sizeof(key));
    __asm__ __volatile__("" : : "r"(key) : "memory");
    snprintf(c->placeholder, sizeof(c->placeholder), "%s", o->uid);
    *resp = pgcmk_ttlv_new_struct(c->out, T(RESPONSE_PAYLOAD));
    add(*resp, pgcmk_ttlv_new_enum(c->out, T(OBJECT_TYPE), KMIP_OBJ_SYMMETRIC_KEY));
    add(*resp, pgcmk_ttlv_new_text(c->out, T(UNIQUE_IDENTIFIER), o->uid, strlen(o->uid)));
    return commit(c, o, KMIP_CH_CREATED, NULL);
}

/* The key material of a Register's Symmetric Key: 0 with *key and *n pointing into the request. */
static int
parse_key_block(struct kmip_call *c, const struct pgcmk_ttlv *sk, struct kmip_obj *o,
                const uint8_t **key, size_t *n)
{
    static const uint32_t ok_sk[] = {T(KEY_BLOCK)};
    static const uint32_t ok_kb[] = {
        T(KEY_FORMAT_TYPE),         T(KEY_COMPRESSION_TYPE), T(KEY_VALUE),
        T(CRYPTOGRAPHIC_ALGORITHM), T(CRYPTOGRAPHIC_LENGTH), T(KEY_WRAPPING_DATA)};
    static const uint32_t ok_kv[] = {T(KEY_MATERIAL), T(ATTRIBUTE)};
    const struct pgcmk_ttlv *kb, *fmt, *kv, *km, *alg, *len, *kct;

    if (tag_allowed(c, sk, ok_sk, 1, "Symmetric Key") ||
        opt_child(c, sk, T(KEY_BLOCK), PGCMK_TTLV_STRUCTURE, &kb) < 0)
        return -1;
    if (!kb)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE, "The Symmetric Key has no Key Block.");
    if (tag_allowed(c, kb, ok_kb, PGCMK_ARRAY_LEN(ok_kb), "Key Block") ||
        opt_child(c, kb, T(KEY_FORMAT_TYPE), PGCMK_TTLV_ENUMERATION, &fmt) < 0 ||
        opt_child(c, kb, T(KEY_COMPRESSION_TYPE), PGCMK_TTLV_ENUMERATION, &kct) < 0 ||
        opt_child(c, kb, T(KEY_VALUE), PGCMK_TTLV_STRUCTURE, &kv) < 0 ||
        opt_child(c, kb, T(CRYPTOGRAPHIC_ALGORITHM), PGCMK_TTLV_ENUMERATION, &alg) < 0 ||
        opt_child(c, kb, T(CRYPTOGRAPHIC_LENGTH), PGCMK_TTLV_INTEGER, &len) < 0)
        return -1;
    (void)kct; /* libkmip sends EC Public Key Type Uncompressed: tolerated, as PyKMIP does */
    if (pgcmk_ttlv_find(kb, T(KEY_WRAPPING_DATA)))
        return kmip_fail(c, PGCMK_KMIP_RR_FEATURE_NOT_SUPPORTED,
                         "Wrapped key material is not supported.");
    if (!fmt || !kv)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE,
                         "The Key Block needs a Key Format Type and a Key Value.");
    if (tag_allowed(c, kv, ok_kv, 2, "Key Value"))
        return -1;
    km = pgcmk_ttlv_find(kv, T(KEY_MATERIAL));
    if (!km || pgcmk_ttlv_find_next(km))
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE, "The Key Value needs one Key Material.");
    if (fmt->v.u32 == KMIP_FMT_RAW) {
        if (km->type != PGCMK_TTLV_BYTE_STRING)
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE,
                             "Raw Key Material must be a Byte String.");
        *key = km->v.bytes;
        *n = km->len;
    } else if (fmt->v.u32 == KMIP_FMT_TRANSPARENT_SYMMETRIC) {
        const uint8_t *b;

        if (km->type != PGCMK_TTLV_STRUCTURE || pgcmk_ttlv_get_bytes(km, T(KEY), &b, n))
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE,
                             "Transparent Symmetric Key material needs a Key Byte String.");
        *key = b;
    } else {
        return kmip_fail(c, PGCMK_KMIP_RR_KEY_FORMAT_TYPE_NOT_SUPPORTED,
                         "Key format %u is not supported for symmetric keys.",
                         (unsigned)fmt->v.u32);
    }
    if (*n != 16 && *n != 24 && *n != 32)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                         "A symmetric key must be 16, 24 or 32 bytes, not %zu.", *n);
    if (!alg || !len)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE,
                         "The Key Block needs a Cryptographic Algorithm and Length.");
    if ((size_t)len->v.i32 != *n * 8)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                         "The Cryptographic Length (%d) does not match the key (%zu bits).",
                         (int)len->v.i32, *n * 8);
    if ((o->alg && o->alg != alg->v.u32) || (o->length && o->length != len->v.i32))
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                         "The template's algorithm or length does not match the Key Block's.");
    o->alg = alg->v.u32;
    o->length = len->v.i32;
    return 0;
}

static int
op_register(struct kmip_call *c, const struct pgcmk_ttlv *p, struct pgcmk_ttlv **resp)
{
    static const uint32_t ok[] = {T(OBJECT_TYPE), T(TEMPLATE_ATTRIBUTE), T(SYMMETRIC_KEY)};
    const struct pgcmk_ttlv *ot, *tpl, *sk;
    struct kmip_obj *o;
    const uint8_t *key = NULL;
    size_t n = 0;

    if (opt_child(c, p, T(OBJECT_TYPE), PGCMK_TTLV_ENUMERATION, &ot) < 0)
        return -1;
    if (ot && ot->v.u32 != KMIP_OBJ_SYMMETRIC_KEY)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD, "The %u object type is not supported.",
                         (unsigned)ot->v.u32);
    if (tag_allowed(c, p, ok, 3, "Register request payload") ||
        opt_child(c, p, T(TEMPLATE_ATTRIBUTE), PGCMK_TTLV_STRUCTURE, &tpl) < 0 ||
        opt_child(c, p, T(SYMMETRIC_KEY), PGCMK_TTLV_STRUCTURE, &sk) < 0)
        return -1;
    if (!ot)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE, "Register needs an Object Type.");
    if (!sk)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD, "Cannot register a secret in absentia.");
    o = kmip_obj_new(c->owner);
    if (apply_template(c, o, tpl) || parse_key_block(c, sk, o, &key, &n) || check_aes(c, o)) {
        kmip_obj_free(o);
        return -1;
    }
    new_object_finish(o, kmip_now());
    if (kmip_obj_seal(o, key, n)) {
        kmip_obj_free(o);
        return kmip_fail(c, PGCMK_KMIP_RR_CRYPTOGRAPHIC_FAILURE, "The key could not be sealed.");
    }
    snprintf(c->placeholder, sizeof(c->placeholder), "%s", o->uid);
    *resp = uid_payload(c, o->uid);
    return commit(c, o, KMIP_CH_CREATED, NULL);
}

/* Locate's filters. */
struct loc_filter {
    const struct attr_def *d;
    const struct pgcmk_ttlv *v;
    uint8_t *enc; /* generic: the encoded value */
    size_t enc_len;
    int64_t lo, hi; /* dates */
};

static int
loc_match(const struct kmip_obj *o, const struct loc_filter *f)
{
    const struct pgcmk_ttlv *v = f->v;

    switch (f->d->core) {
    case C_NAME: {
        const char *nv = NULL;
        size_t nl = 0;

        (void)pgcmk_ttlv_get_text(v, T(NAME_VALUE), &nv, &nl);
        for (size_t i = 0; i < o->n_names; i++)
            if (strlen(o->names[i].value) == nl && memcmp(o->names[i].value, nv, nl) == 0)
                return 1;
        return 0;
    }
    case C_UID:
        return strcmp(o->uid, (const char *)v->v.bytes) == 0;
    case C_TYPE:
        return o->type == v->v.u32;
    case C_STATE:
        return o->state == v->v.u32;
    case C_ALG:
        return o->alg == v->v.u32;
    case C_LEN:
        return o->length == v->v.i32;
    case C_MASK:
        return (o->mask & v->v.i32) == v->v.i32;
    case C_GENERIC:
        for (size_t i = 0; i < o->n_gattrs; i++)
            if (strcmp(o->gattrs[i].name, f->d->name) == 0 && o->gattrs[i].len == f->enc_len &&
                memcmp(o->gattrs[i].val, f->enc, f->enc_len) == 0)
                return 1;
        return 0;
    case C_REVOCATION:
        return o->rev_code != 0;
    default: {
        int64_t d = *core_date((struct kmip_obj *)o, f->d->core);

        return d != 0 && d >= f->lo && d <= f->hi;
    }
    }
}

static int
op_locate(struct kmip_call *c, const struct pgcmk_ttlv *p, struct pgcmk_ttlv **resp)
{
    static const uint32_t ok[] = {T(MAXIMUM_ITEMS), T(OFFSET_ITEMS), T(STORAGE_STATUS_MASK),
                                  T(OBJECT_GROUP_MEMBER), T(ATTRIBUTE)};
    const struct pgcmk_ttlv *mx, *off, *ssm, *ogm;
    struct loc_filter fs[32];
    struct attr_def customs[32];
    size_t nf = 0, skipped = 0, found = 0, located = 0;
    int by_state = 0, rc = -1;
    struct pgcmk_ttlv *r;
    uint64_t cur = 0;
    struct kmip_obj *o;

    if (tag_allowed(c, p, ok, PGCMK_ARRAY_LEN(ok), "Locate request payload") ||
        opt_child(c, p, T(MAXIMUM_ITEMS), PGCMK_TTLV_INTEGER, &mx) < 0 ||
        opt_child(c, p, T(OFFSET_ITEMS), PGCMK_TTLV_INTEGER, &off) < 0 ||
        opt_child(c, p, T(STORAGE_STATUS_MASK), PGCMK_TTLV_INTEGER, &ssm) < 0 ||
        opt_child(c, p, T(OBJECT_GROUP_MEMBER), PGCMK_TTLV_ENUMERATION, &ogm) < 0)
        return -1;
    if ((mx && mx->v.i32 < 0) || (off && off->v.i32 < 0))
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                         "Maximum Items and Offset Items must not be negative.");
    memset(fs, 0, sizeof(fs));
    for (const struct pgcmk_ttlv *a = pgcmk_ttlv_find(p, T(ATTRIBUTE)); a;
         a = pgcmk_ttlv_find_next(a)) {
        struct attr_in in;
        const struct attr_def *d;
        size_t i;

        if (nf == PGCMK_ARRAY_LEN(fs)) {
            kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD, "Too many attributes in Locate.");
            goto out;
        }
        if (parse_attribute(c, a, 1, &in) ||
            !(d = attr_lookup(c, in.name, in.value, &customs[nf])) || check_value(c, d, in.value))
            goto out;
        by_state |= d->core == C_STATE;
        if (core_date(&(struct kmip_obj){0}, d->core)) {
            /* one date: that instant; two: the range between them */
            for (i = 0; i < nf && fs[i].d->core != d->core; i++)
                ;
            if (i < nf) {
                if (in.value->v.i64 < fs[i].lo)
                    fs[i].lo = in.value->v.i64;
                else
                    fs[i].hi = in.value->v.i64;
                continue;
            }
            fs[nf].lo = fs[nf].hi = in.value->v.i64;
        }
        fs[nf].d = d;
        fs[nf].v = in.value;
        if (d->core == C_GENERIC) {
            struct pgcmk_ttlv_err e;
            size_t need = pgcmk_ttlv_encoded_len(in.value);

            fs[nf].enc = pgcmk_xmalloc(need ? need : 1);
            if (!need || pgcmk_ttlv_encode(in.value, fs[nf].enc, need, &fs[nf].enc_len, &e))
                fs[nf].enc_len = 0;
        }
        nf++;
    }
    r = pgcmk_ttlv_new_struct(c->out, T(RESPONSE_PAYLOAD));
    if (ssm && !(ssm->v.i32 & 1)) /* every object is in online storage */
        goto done;
    while ((o = kmip_obj_prev(&cur)) != NULL) {
        size_t i;

        if (strcmp(o->owner, c->owner) != 0)
            continue;
        (void)kmip_obj_find(o->uid); /* dates reached move the state first */
        o = kmip_obj_find(o->uid);
        if (!by_state &&
            (o->state == KMIP_ST_DESTROYED || o->state == KMIP_ST_DESTROYED_COMPROMISED))
            continue;
        for (i = 0; i < nf && loc_match(o, &fs[i]); i++)
            ;
        if (i < nf)
            continue;
        located++;
        if (off && skipped < (size_t)off->v.i32) {
            skipped++;
            continue;
        }
        if (mx && found >= (size_t)mx->v.i32)
            continue;
        if (!found)
            snprintf(c->placeholder, sizeof(c->placeholder), "%s", o->uid);
        found++;
        add(r, pgcmk_ttlv_new_text(c->out, T(UNIQUE_IDENTIFIER), o->uid, strlen(o->uid)));
    }
done:
    if ((c->major > 1 || c->minor >= 3) && (mx || off)) {
        /* KMIP 1.3: Located Items comes first */
        struct pgcmk_ttlv *li = pgcmk_ttlv_new_int(c->out, T(LOCATED_ITEMS), (int32_t)located);

        li->next = r->first;
        r->first = li;
        if (!r->last)
            r->last = li;
    }
    *resp = r;
    rc = 0;
out:
    for (size_t i = 0; i < nf; i++)
        free(fs[i].enc);
    return rc;
}

static int
op_get(struct kmip_call *c, const struct pgcmk_ttlv *p, struct pgcmk_ttlv **resp)
{
    static const uint32_t ok[] = {T(UNIQUE_IDENTIFIER), T(KEY_FORMAT_TYPE), T(KEY_COMPRESSION_TYPE),
                                  T(KEY_WRAPPING_SPECIFICATION)};
    const struct pgcmk_ttlv *fmt, *kct, *kws;
    struct pgcmk_ttlv *r, *kb, *kv;
    struct kmip_obj *o;
    uint8_t *key = NULL;
    size_t n = 0;
    uint32_t format = KMIP_FMT_RAW;

    if (tag_allowed(c, p, ok, PGCMK_ARRAY_LEN(ok), "Get request payload") ||
        opt_child(c, p, T(KEY_FORMAT_TYPE), PGCMK_TTLV_ENUMERATION, &fmt) < 0 ||
        opt_child(c, p, T(KEY_COMPRESSION_TYPE), PGCMK_TTLV_ENUMERATION, &kct) < 0 ||
        opt_child(c, p, T(KEY_WRAPPING_SPECIFICATION), PGCMK_TTLV_STRUCTURE, &kws) < 0)
        return -1;
    if (!(o = target(c, p, 0)))
        return -1;
    if (kct)
        return kmip_fail(c, PGCMK_KMIP_RR_KEY_COMPRESSION_TYPE_NOT_SUPPORTED,
                         "Key compression is not supported.");
    if (kws)
        return kmip_fail(c, PGCMK_KMIP_RR_FEATURE_NOT_SUPPORTED, "Key wrapping is not supported.");
    if (fmt)
        format = fmt->v.u32;
    if (format != KMIP_FMT_RAW && format != KMIP_FMT_TRANSPARENT_SYMMETRIC)
        return kmip_fail(c, PGCMK_KMIP_RR_KEY_FORMAT_TYPE_NOT_SUPPORTED,
                         "Key format conversion from RAW to %u is unsupported.", (unsigned)format);
    if (kmip_obj_unseal(o, &key, &n))
        return kmip_fail(c, PGCMK_KMIP_RR_CRYPTOGRAPHIC_FAILURE,
                         "The key material could not be opened.");
    r = pgcmk_ttlv_new_struct(c->out, T(RESPONSE_PAYLOAD));
    add(r, pgcmk_ttlv_new_enum(c->out, T(OBJECT_TYPE), o->type));
    add(r, pgcmk_ttlv_new_text(c->out, T(UNIQUE_IDENTIFIER), o->uid, strlen(o->uid)));
    kb = add(add(r, pgcmk_ttlv_new_struct(c->out, T(SYMMETRIC_KEY))),
             pgcmk_ttlv_new_struct(c->out, T(KEY_BLOCK)));
    add(kb, pgcmk_ttlv_new_enum(c->out, T(KEY_FORMAT_TYPE), format));
    kv = add(kb, pgcmk_ttlv_new_struct(c->out, T(KEY_VALUE)));
    if (format == KMIP_FMT_RAW)
        add(kv, pgcmk_ttlv_new_bytes(c->out, T(KEY_MATERIAL), key, n));
    else
        add(add(kv, pgcmk_ttlv_new_struct(c->out, T(KEY_MATERIAL))),
            pgcmk_ttlv_new_bytes(c->out, T(KEY), key, n));
    pgcmk_secret_free(key, n);
    add(kb, pgcmk_ttlv_new_enum(c->out, T(CRYPTOGRAPHIC_ALGORITHM), o->alg));
    add(kb, pgcmk_ttlv_new_int(c->out, T(CRYPTOGRAPHIC_LENGTH), o->length));
    *resp = r;
    return 0;
}

static void
all_attributes(struct kmip_call *c, struct pgcmk_ttlv *r, const struct kmip_obj *o, int names_only)
{
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(attr_defs); i++) {
        const struct attr_def *d = &attr_defs[i];
        size_t n = attr_count(o, d);

        if (names_only && n)
            add(r, pgcmk_ttlv_new_text(c->out, T(ATTRIBUTE_NAME), d->name, strlen(d->name)));
        else
            for (size_t k = 0; k < n; k++)
                attr_item(c, r, o, d, k);
    }
    /* custom attributes, in the order they were added, each name once for the list */
    for (size_t i = 0; i < o->n_gattrs; i++) {
        const char *nm = o->gattrs[i].name;
        struct attr_def cd = {nm, PGCMK_TTLV_TEXT_STRING, A_MULTI, C_GENERIC};
        size_t before = 0;

        if (strncmp(nm, "x-", 2) != 0 && strncmp(nm, "y-", 2) != 0)
            continue;
        for (size_t k = 0; k < i; k++)
            before += strcmp(o->gattrs[k].name, nm) == 0;
        if (names_only) {
            if (before == 0)
                add(r, pgcmk_ttlv_new_text(c->out, T(ATTRIBUTE_NAME), nm, strlen(nm)));
        } else {
            attr_item(c, r, o, &cd, before);
        }
    }
}

static int
op_get_attributes(struct kmip_call *c, const struct pgcmk_ttlv *p, struct pgcmk_ttlv **resp)
{
    static const uint32_t ok[] = {T(UNIQUE_IDENTIFIER), T(ATTRIBUTE_NAME)};
    struct pgcmk_ttlv *r;
    struct kmip_obj *o;

    if (tag_allowed(c, p, ok, 2, "Get Attributes request payload"))
        return -1;
    for (const struct pgcmk_ttlv *k = pgcmk_ttlv_find(p, T(ATTRIBUTE_NAME)); k;
         k = pgcmk_ttlv_find_next(k))
        if (k->type != PGCMK_TTLV_TEXT_STRING)
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE,
                             "Attribute Name must be a Text String.");
    if (!(o = target(c, p, 1)))
        return -1;
    r = uid_payload(c, o->uid);
    if (!pgcmk_ttlv_find(p, T(ATTRIBUTE_NAME))) {
        all_attributes(c, r, o, 0);
    } else {
        for (const struct pgcmk_ttlv *k = pgcmk_ttlv_find(p, T(ATTRIBUTE_NAME)); k;
             k = pgcmk_ttlv_find_next(k)) {
            const char *nm = (const char *)k->v.bytes;
            struct attr_def cd = {nm, PGCMK_TTLV_TEXT_STRING, A_MULTI, C_GENERIC};
            const struct attr_def *d = &cd;

            for (size_t i = 0; i < PGCMK_ARRAY_LEN(attr_defs); i++)
                if (strcmp(attr_defs[i].name, nm) == 0)
                    d = &attr_defs[i];
            for (size_t i = 0, n = attr_count(o, d); i < n; i++)
                attr_item(c, r, o, d, i);
        }
    }
    *resp = r;
    return 0;
}

static int
op_get_attribute_list(struct kmip_call *c, const struct pgcmk_ttlv *p, struct pgcmk_ttlv **resp)
{
    static const uint32_t ok[] = {T(UNIQUE_IDENTIFIER)};
    struct kmip_obj *o;

    if (tag_allowed(c, p, ok, 1, "Get Attribute List request payload") || !(o = target(c, p, 1)))
        return -1;
    *resp = uid_payload(c, o->uid);
    all_attributes(c, *resp, o, 1);
    return 0;
}

/* Add (mode 0), Modify (1), Delete (2) Attribute. */
static int
op_change_attribute(struct kmip_call *c, const struct pgcmk_ttlv *p, struct pgcmk_ttlv **resp,
                    int mode)
{
    static const uint32_t ok[] = {T(UNIQUE_IDENTIFIER), T(ATTRIBUTE)};
    static const uint32_t ok_del[] = {T(UNIQUE_IDENTIFIER), T(ATTRIBUTE_NAME), T(ATTRIBUTE_INDEX)};
    static const char *const what[] = {"Add Attribute", "Modify Attribute", "Delete Attribute"};
    const struct attr_def *d;
    struct attr_def custom;
    struct attr_in in;
    struct kmip_obj *o, *n;
    size_t count, index;
    char label[64];
    int ch;

    snprintf(label, sizeof(label), "%s request payload", what[mode]);
    if (mode == 2) {
        const struct pgcmk_ttlv *an, *ai;

        if (tag_allowed(c, p, ok_del, 3, label) ||
            opt_child(c, p, T(ATTRIBUTE_NAME), PGCMK_TTLV_TEXT_STRING, &an) < 0 ||
            opt_child(c, p, T(ATTRIBUTE_INDEX), PGCMK_TTLV_INTEGER, &ai) < 0)
            return -1;
        if (!an)
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE,
                             "Delete Attribute needs an Attribute Name.");
        memset(&in, 0, sizeof(in));
        in.name = (const char *)an->v.bytes;
        in.index = ai ? ai->v.i32 : 0;
        in.has_index = ai != NULL;
        if (in.index < 0)
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                             "Attribute Index must not be negative.");
    } else {
        const struct pgcmk_ttlv *a;

        if (tag_allowed(c, p, ok, 2, label) ||
            opt_child(c, p, T(ATTRIBUTE), PGCMK_TTLV_STRUCTURE, &a) < 0)
            return -1;
        if (!a)
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE, "%s needs an Attribute.",
                             what[mode]);
        if (parse_attribute(c, a, 1, &in))
            return -1;
        if (mode == 0 && in.has_index)
            return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                             "Add Attribute takes no Attribute Index.");
    }
    if (!(o = target(c, p, 0)) || !(d = attr_lookup(c, in.name, in.value, &custom)))
        return -1;
    if (d->flags & A_RO || !(d->flags & A_CHANGE)) {
        if (mode == 2 && (d->flags & A_REQUIRED))
            return kmip_fail(c, PGCMK_KMIP_RR_PERMISSION_DENIED,
                             "Cannot delete a required attribute.");
        return kmip_fail(c, PGCMK_KMIP_RR_PERMISSION_DENIED, "The %.64s attribute is read-only.",
                         d->name);
    }
    if (in.value && check_value(c, d, in.value))
        return -1;
    if (core_date(o, d->core) && date_change_allowed(c, o, d))
        return -1;
    count = attr_count(o, d);
    index = (size_t)in.index;
    if (mode == 0 && count && !(d->flags & A_MULTI))
        return kmip_fail(c, PGCMK_KMIP_RR_ILLEGAL_OPERATION,
                         "The %.64s attribute is single-valued and already set.", d->name);
    if (mode == 0 && d->core == C_NAME)
        for (size_t i = 0; i < o->n_names; i++) {
            const char *nv = NULL;
            size_t nl = 0;

            (void)pgcmk_ttlv_get_text(in.value, T(NAME_VALUE), &nv, &nl);
            if (strlen(o->names[i].value) == nl && memcmp(o->names[i].value, nv, nl) == 0)
                return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                                 "Cannot set duplicate name values.");
        }
    if (mode != 0 && count == 0)
        return kmip_fail(c, PGCMK_KMIP_RR_ITEM_NOT_FOUND,
                         "No attribute with the specified name exists.");
    if (mode != 0 && index >= count)
        return kmip_fail(c, PGCMK_KMIP_RR_INDEX_OUT_OF_BOUNDS,
                         "The %.64s attribute has no instance at index %zu.", d->name, index);
    n = kmip_obj_clone(o);
    *resp = uid_payload(c, o->uid);
    if (mode == 2) {
        attr_item(c, *resp, o, d, index);
        if (d->core == C_GENERIC)
            (void)kmip_gattr_del(n, d->name, index);
        else if (d->core == C_NAME) {
            free(n->names[index].value);
            memmove(&n->names[index], &n->names[index + 1],
                    (n->n_names - index - 1) * sizeof(*n->names));
            n->n_names--;
        } else {
            *core_date(n, d->core) = 0;
        }
    } else {
        attr_store(n, d, mode == 0 ? count : index, in.value);
        attr_item(c, *resp, n, d, mode == 0 ? count : index);
    }
    n->last_change = kmip_now();
    /* a date set in the past moves the state at once: that change is the one announced */
    ch = kmip_obj_eval(n, n->last_change);
    return commit(c, n, ch < 0 ? KMIP_CH_ATTRIBUTES : (enum kmip_change)ch, NULL);
}

static int
op_activate(struct kmip_call *c, const struct pgcmk_ttlv *p, struct pgcmk_ttlv **resp)
{
    static const uint32_t ok[] = {T(UNIQUE_IDENTIFIER)};
    struct kmip_obj *o, *n;

    if (tag_allowed(c, p, ok, 1, "Activate request payload") || !(o = target(c, p, 0)))
        return -1;
    if (o->state != KMIP_ST_PRE_ACTIVE)
        return kmip_fail(c, PGCMK_KMIP_RR_PERMISSION_DENIED,
                         "The object state is not pre-active and cannot be activated.");
    n = kmip_obj_clone(o);
    n->state = KMIP_ST_ACTIVE;
    n->activation = n->last_change = kmip_now();
    *resp = uid_payload(c, n->uid);
    return commit(c, n, KMIP_CH_ACTIVATED, NULL);
}

static int
op_revoke(struct kmip_call *c, const struct pgcmk_ttlv *p, struct pgcmk_ttlv **resp)
{
    static const uint32_t ok[] = {T(UNIQUE_IDENTIFIER), T(REVOCATION_REASON),
                                  T(COMPROMISE_OCCURRENCE_DATE)};
    static const uint32_t ok_rr[] = {T(REVOCATION_REASON_CODE), T(REVOCATION_MESSAGE)};
    const struct pgcmk_ttlv *rr, *code, *msg, *cod;
    struct kmip_obj *o, *n;
    int64_t now = kmip_now();
    int compromise;

    if (tag_allowed(c, p, ok, 3, "Revoke request payload") ||
        opt_child(c, p, T(REVOCATION_REASON), PGCMK_TTLV_STRUCTURE, &rr) < 0 ||
        opt_child(c, p, T(COMPROMISE_OCCURRENCE_DATE), PGCMK_TTLV_DATE_TIME, &cod) < 0)
        return -1;
    if (!rr)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                         "revocation reason code must be specified");
    if (tag_allowed(c, rr, ok_rr, 2, "Revocation Reason") ||
        opt_child(c, rr, T(REVOCATION_REASON_CODE), PGCMK_TTLV_ENUMERATION, &code) < 0 ||
        opt_child(c, rr, T(REVOCATION_MESSAGE), PGCMK_TTLV_TEXT_STRING, &msg) < 0)
        return -1;
    if (!code)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD,
                         "revocation reason code must be specified");
    if (!kmip_revocation_name(code->v.u32))
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_FIELD, "Unknown revocation reason code %u.",
                         (unsigned)code->v.u32);
    if (!(o = target(c, p, 1)))
        return -1;
    compromise = code->v.u32 == KMIP_REV_KEY_COMPROMISE || code->v.u32 == KMIP_REV_CA_COMPROMISE;
    if (!compromise && o->state != KMIP_ST_ACTIVE)
        return kmip_fail(c, PGCMK_KMIP_RR_ILLEGAL_OPERATION,
                         "The object is not active and cannot be revoked with reason other "
                         "than KEY_COMPROMISE");
    if (compromise &&
        (o->state == KMIP_ST_COMPROMISED || o->state == KMIP_ST_DESTROYED_COMPROMISED))
        return kmip_fail(c, PGCMK_KMIP_RR_ILLEGAL_OPERATION, "The object is already compromised.");
    n = kmip_obj_clone(o);
    n->rev_code = code->v.u32;
    free(n->rev_msg);
    n->rev_msg = msg ? pgcmk_xstrdup((const char *)msg->v.bytes) : NULL;
    if (compromise) {
        n->state =
            o->state == KMIP_ST_DESTROYED ? KMIP_ST_DESTROYED_COMPROMISED : KMIP_ST_COMPROMISED;
        n->compromise = now;
        n->compromise_occurrence = cod ? cod->v.i64 : now;
    } else {
        n->state = KMIP_ST_DEACTIVATED;
        n->deactivation = now;
    }
    n->last_change = now;
    *resp = uid_payload(c, n->uid);
    return commit(c, n, KMIP_CH_REVOKED, NULL);
}

static int
op_destroy(struct kmip_call *c, const struct pgcmk_ttlv *p, struct pgcmk_ttlv **resp)
{
    static const uint32_t ok[] = {T(UNIQUE_IDENTIFIER)};
    struct kmip_obj *o, *n;

    if (tag_allowed(c, p, ok, 1, "Destroy request payload") || !(o = target(c, p, 0)))
        return -1;
    if (o->state == KMIP_ST_ACTIVE)
        return kmip_fail(c, PGCMK_KMIP_RR_PERMISSION_DENIED,
                         "Object is active and cannot be destroyed.");
    n = kmip_obj_clone(o);
    n->state = o->state == KMIP_ST_COMPROMISED ? KMIP_ST_DESTROYED_COMPROMISED : KMIP_ST_DESTROYED;
    n->destroy = n->last_change = kmip_now();
    pgcmk_secret_free(n->sealed, n->sealed_len);
    n->sealed = NULL;
    n->sealed_len = 0;
    *resp = uid_payload(c, n->uid);
    return commit(c, n, KMIP_CH_DESTROYED, NULL);
}

static int
op_rekey(struct kmip_call *c, const struct pgcmk_ttlv *p, struct pgcmk_ttlv **resp)
{
    static const uint32_t ok[] = {T(UNIQUE_IDENTIFIER), T(OFFSET), T(TEMPLATE_ATTRIBUTE)};
    const struct pgcmk_ttlv *offv, *tpl;
    struct kmip_obj *o, *n, *old;
    int64_t now = kmip_now(), act;
    uint8_t key[32];

    if (tag_allowed(c, p, ok, 3, "ReKey request payload") ||
        opt_child(c, p, T(OFFSET), PGCMK_TTLV_INTERVAL, &offv) < 0 ||
        opt_child(c, p, T(TEMPLATE_ATTRIBUTE), PGCMK_TTLV_STRUCTURE, &tpl) < 0 ||
        !(o = target(c, p, 0)))
        return -1;
    if (o->state == KMIP_ST_COMPROMISED)
        return kmip_fail(c, PGCMK_KMIP_RR_PERMISSION_DENIED,
                         "A compromised object cannot be re-keyed.");
    n = kmip_obj_clone(o);
    /* the new key: same attributes, its own identity, dates and state */
    n->id = 0;
    n->rev_code = 0;
    free(n->rev_msg);
    n->rev_msg = NULL;
    n->compromise = n->compromise_occurrence = n->destroy = 0;
    pgcmk_secret_free(n->sealed, n->sealed_len);
    n->sealed = NULL;
    n->sealed_len = 0;
    while (kmip_gattr_count(n, "Link"))
        (void)kmip_gattr_del(n, "Link", 0);
    if (offv) {
        act = now + (int64_t)offv->v.u32;
        n->activation = act;
        n->process_start =
            o->process_start && o->activation ? act + (o->process_start - o->activation) : 0;
        n->protect_stop =
            o->protect_stop && o->activation ? act + (o->protect_stop - o->activation) : 0;
        n->deactivation =
            o->deactivation && o->activation ? act + (o->deactivation - o->activation) : 0;
    }
    new_object_finish(n, now);
    if (n->state == KMIP_ST_PRE_ACTIVE && !offv && o->state == KMIP_ST_ACTIVE)
        n->activation = 0;
    if (apply_template(c, n, tpl) || check_aes(c, n)) {
        kmip_obj_free(n);
        return -1;
    }
    (void)kmip_obj_eval(n, now);
    if (pgcmk_random(key, (size_t)n->length / 8) || kmip_obj_seal(n, key, (size_t)n->length / 8)) {
        memset(key, 0, sizeof(key));
        kmip_obj_free(n);
        return kmip_fail(c, PGCMK_KMIP_RR_CRYPTOGRAPHIC_FAILURE, "Key generation failed.");
    }
    memset(key, 0, sizeof(key));
    __asm__ __volatile__("" : : "r"(key) : "memory");
    kmip_obj_link(n, KMIP_LINK_REPLACED, o->uid);
    old = kmip_obj_clone(o);
    kmip_obj_link(old, KMIP_LINK_REPLACEMENT, n->uid);
    /* KMIP: the names move to the new key */
    for (size_t i = 0; i < old->n_names; i++)
        free(old->names[i].value);
    free(old->names);
    old->names = NULL;
    old->n_names = 0;
    old->last_change = now;
    snprintf(c->placeholder, sizeof(c->placeholder), "%s", n->uid);
    *resp = uid_payload(c, n->uid);
    return commit(c, n, KMIP_CH_CREATED, old);
}

int
kmip_op_run(struct kmip_call *c, uint32_t op, const struct pgcmk_ttlv *payload,
            struct pgcmk_ttlv **resp)
{
    *resp = NULL;
    if (payload->type != PGCMK_TTLV_STRUCTURE)
        return kmip_fail(c, PGCMK_KMIP_RR_INVALID_MESSAGE, "Request Payload must be a Structure.");
    switch (op) {
    case PGCMK_KMIP_OP_DISCOVER_VERSIONS:
        return op_discover_versions(c, payload, resp);
    case PGCMK_KMIP_OP_QUERY:
        return op_query(c, payload, resp);
    case PGCMK_KMIP_OP_CREATE:
        return op_create(c, payload, resp);
    case PGCMK_KMIP_OP_REGISTER:
        return op_register(c, payload, resp);
    case PGCMK_KMIP_OP_LOCATE:
        return op_locate(c, payload, resp);
    case PGCMK_KMIP_OP_GET:
        return op_get(c, payload, resp);
    case PGCMK_KMIP_OP_GET_ATTRIBUTES:
        return op_get_attributes(c, payload, resp);
    case PGCMK_KMIP_OP_GET_ATTRIBUTE_LIST:
        return op_get_attribute_list(c, payload, resp);
    case PGCMK_KMIP_OP_ADD_ATTRIBUTE:
        return op_change_attribute(c, payload, resp, 0);
    case PGCMK_KMIP_OP_MODIFY_ATTRIBUTE:
        return op_change_attribute(c, payload, resp, 1);
    case PGCMK_KMIP_OP_DELETE_ATTRIBUTE:
        return op_change_attribute(c, payload, resp, 2);
    case PGCMK_KMIP_OP_ACTIVATE:
        return op_activate(c, payload, resp);
    case PGCMK_KMIP_OP_REVOKE:
        return op_revoke(c, payload, resp);
    case PGCMK_KMIP_OP_DESTROY:
        return op_destroy(c, payload, resp);
    case PGCMK_KMIP_OP_REKEY:
        return op_rekey(c, payload, resp);
    default:
        return kmip_fail(c, PGCMK_KMIP_RR_OPERATION_NOT_SUPPORTED, "Operation not supported.");
    }
}
