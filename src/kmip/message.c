/* message.c - the KMIP message layer (include/pgcmk/kmip_server.h). STUB: every batch item is
 * answered Operation Not Supported; the real message layer replaces this file. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgcmk/kmip.h"
#include "pgcmk/kmip_server.h"

int
pgcmk_kmip_process(const struct pgcmk_kmip_peer *peer, const uint8_t *req, size_t req_len,
                   uint8_t **resp, size_t *resp_len)
{
    struct pgcmk_ttlv_tree in, out;
    struct pgcmk_ttlv_err err;
    const struct pgcmk_ttlv *hdr, *ver;
    struct pgcmk_ttlv *msg, *rh, *pv, *bi;
    int32_t major = 1, minor = 0;
    size_t need;
    int rc = -1;

    (void)peer;
    pgcmk_ttlv_tree_init(&in);
    pgcmk_ttlv_tree_init(&out);
    if (pgcmk_ttlv_decode(req, req_len, &in, &err) ||
        in.root->tag != PGCMK_KMIP_TAG_REQUEST_MESSAGE)
        goto done;
    if ((hdr = pgcmk_ttlv_find(in.root, PGCMK_KMIP_TAG_REQUEST_HEADER)) != NULL &&
        (ver = pgcmk_ttlv_find(hdr, PGCMK_KMIP_TAG_PROTOCOL_VERSION)) != NULL) {
        (void)pgcmk_ttlv_get_int(ver, PGCMK_KMIP_TAG_PROTOCOL_VERSION_MAJOR, &major);
        (void)pgcmk_ttlv_get_int(ver, PGCMK_KMIP_TAG_PROTOCOL_VERSION_MINOR, &minor);
    }
    msg = pgcmk_ttlv_new_struct(&out, PGCMK_KMIP_TAG_RESPONSE_MESSAGE);
    rh = pgcmk_ttlv_append(msg, pgcmk_ttlv_new_struct(&out, PGCMK_KMIP_TAG_RESPONSE_HEADER));
    pv = pgcmk_ttlv_append(rh, pgcmk_ttlv_new_struct(&out, PGCMK_KMIP_TAG_PROTOCOL_VERSION));
    pgcmk_ttlv_append(pv, pgcmk_ttlv_new_int(&out, PGCMK_KMIP_TAG_PROTOCOL_VERSION_MAJOR, major));
    pgcmk_ttlv_append(pv, pgcmk_ttlv_new_int(&out, PGCMK_KMIP_TAG_PROTOCOL_VERSION_MINOR, minor));
    pgcmk_ttlv_append(rh, pgcmk_ttlv_new_datetime(&out, PGCMK_KMIP_TAG_TIME_STAMP, time(NULL)));
    pgcmk_ttlv_append(rh, pgcmk_ttlv_new_int(&out, PGCMK_KMIP_TAG_BATCH_COUNT, 1));
    bi = pgcmk_ttlv_append(msg, pgcmk_ttlv_new_struct(&out, PGCMK_KMIP_TAG_BATCH_ITEM));
    pgcmk_ttlv_append(bi, pgcmk_ttlv_new_enum(&out, PGCMK_KMIP_TAG_RESULT_STATUS, 1));
    pgcmk_ttlv_append(bi, pgcmk_ttlv_new_enum(&out, PGCMK_KMIP_TAG_RESULT_REASON, 5));
    pgcmk_ttlv_append(bi, pgcmk_ttlv_new_text(&out, PGCMK_KMIP_TAG_RESULT_MESSAGE,
                                              "Operation not supported.", 24));
    need = pgcmk_ttlv_encoded_len(msg);
    *resp = malloc(need);
    if (*resp && pgcmk_ttlv_encode(msg, *resp, need, resp_len, &err) == 0)
        rc = 0;
    else {
        free(*resp);
        *resp = NULL;
    }
done:
    pgcmk_ttlv_tree_release(&in);
    pgcmk_ttlv_tree_release(&out);
    return rc;
}

void
pgcmk_kmip_init(void)
{
}
