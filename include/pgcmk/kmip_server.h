/* kmip_server.h - the KMIP server's operations (src/kmip/): one request message in, one response
 * message out, for the client the listener authenticated. The listener (kmip_listener.h) owns
 * the sockets and TLS; this side owns the message layer, the operations, the managed objects and
 * their state machine, and the emulator's KMIP object routes. */
#ifndef PGCMK_KMIP_SERVER_H
#define PGCMK_KMIP_SERVER_H

#include <stddef.h>
#include <stdint.h>

/* Who sent a request: the client certificate's CN, which owns the objects it creates. */
struct pgcmk_kmip_peer {
    const char *identity;
};

/* Processes one whole request message (8-byte TTLV header included). On 0 *resp (malloc'd,
 * *resp_len bytes) is the response message to send: a KMIP failure response when the request is
 * KMIP but cannot be served. -1 when the bytes are not a KMIP request message at all (the
 * listener closes the connection). Thread-safe. */
int pgcmk_kmip_process(const struct pgcmk_kmip_peer *peer, const uint8_t *req, size_t req_len,
                       uint8_t **resp, size_t *resp_len);

/* Init, before the server starts: the /emulator/kmip/objects routes and the clock listener that
 * moves objects by their dates. */
void pgcmk_kmip_init(void);

#endif
