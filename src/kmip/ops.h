/* ops.h - the KMIP operations (src/kmip/ops.c), called by the message layer (message.c) for each
 * batch item, under the object table's lock. Internal to src/kmip/. */
#ifndef PGCMK_KMIP_OPS_H
#define PGCMK_KMIP_OPS_H

#include <stdint.h>

#include "pgcmk/kmip.h"

struct kmip_call {
    const char *owner;           /* the client's identity (certificate CN) */
    int32_t major, minor;        /* the request's protocol version */
    struct pgcmk_ttlv_tree *out; /* the response's arena */
    char placeholder[24];        /* the ID Placeholder of this request's batch */
    uint32_t reason;             /* on failure: Result Reason ... */
    char message[256];           /* ... and Result Message */
};

/* 1 when op is served. */
int kmip_op_supported(uint32_t op);
/* Runs op on its Request Payload: 0 with *resp (a Response Payload in c->out; NULL for none), or
 * -1 with c->reason and c->message. */
int kmip_op_run(struct kmip_call *c, uint32_t op, const struct pgcmk_ttlv *payload,
                struct pgcmk_ttlv **resp);
/* Sets c's failure; returns -1. */
int kmip_fail(struct kmip_call *c, uint32_t reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
