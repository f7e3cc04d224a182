/* objects.h - the KMIP managed objects behind the operations (src/kmip/objects.c): an in-memory
 * table indexed by the decimal Unique Identifier, loaded once from kmip_objects and written
 * through on every change (the row is committed before the caller answers), the state machine
 * on the virtual clock, events and Activity Log entries. Internal to src/kmip/. */
#ifndef PGCMK_KMIP_OBJECTS_H
#define PGCMK_KMIP_OBJECTS_H

#include <stddef.h>
#include <stdint.h>

#include "pgcmk/err.h"
#include "pgcmk/kmip.h"

/* Enumerations of KMIP 1.x the operations use. */
enum {
    KMIP_OBJ_SYMMETRIC_KEY = 2,
    KMIP_ALG_AES = 3,
    KMIP_FMT_RAW = 1,
    KMIP_FMT_TRANSPARENT_SYMMETRIC = 7,
    KMIP_NAME_TEXT = 1,
    KMIP_LINK_REPLACEMENT = 0x106,
    KMIP_LINK_REPLACED = 0x107,
};

enum kmip_state {
    KMIP_ST_PRE_ACTIVE = 1,
    KMIP_ST_ACTIVE = 2,
    KMIP_ST_DEACTIVATED = 3,
    KMIP_ST_COMPROMISED = 4,
    KMIP_ST_DESTROYED = 5,
    KMIP_ST_DESTROYED_COMPROMISED = 6,
};

enum kmip_revocation {
    KMIP_REV_UNSPECIFIED = 1,
    KMIP_REV_KEY_COMPROMISE = 2,
    KMIP_REV_CA_COMPROMISE = 3,
    KMIP_REV_PRIVILEGE_WITHDRAWN = 7,
};

/* An attribute kept as its encoded Attribute Value item (Link, Contact Information, x-...). */
struct kmip_gattr {
    char *name;
    uint8_t *val; /* the whole TTLV item, tag ATTRIBUTE_VALUE */
    size_t len;
};

struct kmip_name {
    char *value;
    uint32_t type;
};

/* Dates are seconds since the epoch (KMIP Date-Time); 0 = not set. */
struct kmip_obj {
    uint64_t id;
    char uid[24];
    char *owner;
    uint32_t type;
    uint32_t state;
    uint32_t alg;
    int32_t length;
    int32_t mask;
    struct kmip_name *names;
    size_t n_names;
    int64_t initial, activation, deactivation, process_start, protect_stop, compromise_occurrence,
        compromise, destroy, last_change;
    uint32_t rev_code;
    char *rev_msg;
    struct kmip_gattr *gattrs;
    size_t n_gattrs;
    uint8_t *sealed; /* the key material sealed under the master key (aad = uid); NULL destroyed */
    size_t sealed_len;
};

/* What a write did, for its event and Activity Log entry. */
enum kmip_change {
    KMIP_CH_CREATED,
    KMIP_CH_ACTIVATED,
    KMIP_CH_REVOKED,
    KMIP_CH_DEACTIVATED,
    KMIP_CH_DESTROYED,
    KMIP_CH_ATTRIBUTES,
};

/* Every call below runs under the table's lock: kmip_lock() / kmip_unlock() (recursive). */
void kmip_lock(void);
void kmip_unlock(void);
/* Loads the table on first use; -1 when the store fails. */
int kmip_table_ready(void);
/* Forgets the table (it loads again on next use): tests, and a store closed under it. */
void kmip_table_reset(void);

/* Now on the virtual clock, in seconds. */
int64_t kmip_now(void);
/* The object with that uid (any owner, state evaluated and saved when a date was reached), or
 * NULL. */
struct kmip_obj *kmip_obj_find(const char *uid);
/* Iteration, newest first: start with 0, returns NULL at the end. */
struct kmip_obj *kmip_obj_prev(uint64_t *cursor);
uint64_t kmip_obj_next_id(void);

struct kmip_obj *kmip_obj_new(const char *owner);
struct kmip_obj *kmip_obj_clone(const struct kmip_obj *o);
void kmip_obj_free(struct kmip_obj *o);
/* Seals key material into o (aad = uid). */
int kmip_obj_seal(struct kmip_obj *o, const uint8_t *key, size_t n);
/* The key material (malloc'd, wipe with pgcmk_secret_free), or -1. */
int kmip_obj_unseal(const struct kmip_obj *o, uint8_t **key, size_t *n);

/* Writes o (a new object, or a changed copy of a table entry) in one transaction with its event
 * and Activity Log entry; on success the table holds o (it takes o), else o is freed. `also`
 * (a changed copy of another object, or NULL) is written in the same transaction (ReKey). */
int kmip_obj_commit(struct kmip_obj *o, enum kmip_change ch, struct kmip_obj *also,
                    struct pgcmk_err *err);

/* Generic attributes. */
const struct kmip_gattr *kmip_gattr_get(const struct kmip_obj *o, const char *name, size_t index);
size_t kmip_gattr_count(const struct kmip_obj *o, const char *name);
void kmip_gattr_add(struct kmip_obj *o, const char *name, const struct pgcmk_ttlv *value);
int kmip_gattr_set(struct kmip_obj *o, const char *name, size_t index,
                   const struct pgcmk_ttlv *value);
int kmip_gattr_del(struct kmip_obj *o, const char *name, size_t index);
/* A Link value {Link Type, Linked Object Identifier}, replacing one of the same type. */
void kmip_obj_link(struct kmip_obj *o, uint32_t link_type, const char *uid);

/* Deep copy of node into t. */
struct pgcmk_ttlv *kmip_ttlv_clone(struct pgcmk_ttlv_tree *t, const struct pgcmk_ttlv *node);

const char *kmip_state_name(uint32_t state);             /* "PreActive" ... */
const char *kmip_revocation_name(uint32_t code);         /* "CessationOfOperation" ... */
int kmip_revocation_parse(const char *s, uint32_t *out); /* 0 or -1 */

/* Registers the clock listener that moves objects by their dates. */
void kmip_objects_init(void);

/* Adds the /emulator/kmip/objects routes (routes.c). */
void kmip_routes_init(void);

/* Applies the dates at `now` to o (no write); returns the change it made or -1 when none. */
int kmip_obj_eval(struct kmip_obj *o, int64_t now);

#endif
