/* kmip_listener.h - the KMIP server's TLS listener (src/kmip/listener.c) and its client
 * credentials (src/kmip/clients.c).
 *
 * The listener accepts mutual TLS (1.2 and 1.3) on its own port: a client certificate signed by
 * pgcmk's CA, with EKU clientAuth, exactly one subject CN (the identity that owns KMIP objects),
 * in date on the virtual clock, and still issued to a live client (kmip_certs, kmip_clients);
 * otherwise the handshake ends with an alert (certificate_revoked for a deleted client). Then it
 * reads request messages (8-byte TTLV header, then the body, under --timeout), hands each to
 * pgcmk_kmip_process (kmip_server.h) and writes the answer, until the client closes or idles
 * out. One thread per connection, at most `max_conns`. */
#ifndef PGCMK_KMIP_LISTENER_H
#define PGCMK_KMIP_LISTENER_H

#include "pgcmk/core.h"
#include "pgcmk/err.h"

#define PGCMK_KMIP_DEFAULT_PORT 5696
#define PGCMK_KMIP_MAX_CONNS    256
#define PGCMK_KMIP_IDENTITY_MAX 64 /* a client name: 1-64 of [A-Za-z0-9_.-] */

struct pgcmk_kmip_listener_cfg {
    const char *listen;      /* comma-separated addresses ("127.0.0.1,::1") */
    int port;                /* 0 = any free port */
    int timeout_s;           /* idle and per-message read timeout */
    int max_conns;           /* 0 = PGCMK_KMIP_MAX_CONNS */
    const char *ca_path;     /* client certificates must chain to it */
    const char *ec_cert_pem; /* ECDSA server certificate + chain */
    const char *ec_key_pem;
    const char *rsa_cert_pem; /* RSA server certificate + chain (TLS 1.2 RSA suites), or NULL: */
    const char *rsa_key_pem;
    const char *data_dir; /* then made from DATA_DIR in the background (pgcmk_tls_kmip_bootstrap) */
};

struct pgcmk_kmip_listener;

/* Binds every address on one port and starts accepting. NULL with err set. */
struct pgcmk_kmip_listener *pgcmk_kmip_listener_start(const struct pgcmk_kmip_listener_cfg *cfg,
                                                      struct pgcmk_err *err);
int pgcmk_kmip_listener_port(const struct pgcmk_kmip_listener *l);
/* Stops accepting, closes every connection (a request being processed finishes first), joins
 * the threads and frees everything. NULL is fine. */
void pgcmk_kmip_listener_stop(struct pgcmk_kmip_listener *l);

/* Client credentials (src/kmip/clients.c). Init loads the live certificates and adds the
 * /emulator/kmip/clients routes; data_dir holds the CA and gets kmip/clients/<name>/;
 * server_bundle_pem is DATA_DIR/kmip/server_certificate.pem's text (copied into each client's
 * directory). Call after the store opened, before the router is sealed. */
int pgcmk_kmip_clients_init(const char *data_dir, const char *server_bundle_pem) PGCMK_WUR;
void pgcmk_kmip_clients_shutdown(void);
/* 1 when the certificate with this SHA-256 fingerprint (lower-case hex) belongs to a live client
 * named `cn`; 0 otherwise. Thread-safe, no store access (the listener's handshake). */
int pgcmk_kmip_client_cert_live(const char *fingerprint, const char *cn);
/* DATA_DIR/kmip/clients (for the banner and /emulator/info). */
const char *pgcmk_kmip_clients_dir(void);

#endif
