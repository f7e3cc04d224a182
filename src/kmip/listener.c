/* listener.c - the KMIP server's mutual-TLS listener (include/pgcmk/kmip_listener.h) on the TLS
 * connection server of src/net (include/pgcmk/net.h: accept thread, a worker thread per
 * connection up to max_conns, the handshake and reads under the timeout, stop).
 *
 * What stays here is KMIP's: the TLS context (an ECDSA and an RSA server certificate, client
 * certificates verified against pgcmk's CA, then EKU clientAuth, one CN, in date on the virtual
 * clock, a live client), and the TTLV framing: the 8-byte header, a check that it opens a
 * Request Message and that its length fits, the body under the same timeout,
 * pgcmk_kmip_process, the answer. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/kmip.h"
#include "pgcmk/kmip_listener.h"
#include "pgcmk/kmip_server.h"
#include "pgcmk/log.h"
#include "pgcmk/net.h"

#define KL_HEADER_LEN 8
#define KL_FIRST_BUF  4096

struct pgcmk_kmip_listener {
    struct pgcmk_net_tls *tls;
    int timeout_ms;
    pthread_t rsa_thread;
    int rsa_started;
    struct pgcmk_kmip_listener_cfg cfg; /* strings owned by the caller, valid until stop */
};

/* ---- certificates ---------------------------------------------------------------------- */

/* The one CN of `x` into out (1..PGCMK_KMIP_IDENTITY_MAX bytes, no NUL inside); -1 when there is
 * none, more than one, or it does not fit. */
static int
kl_cert_cn(X509 *x, char *out, size_t cap)
{
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    const ASN1_STRING *s;
    int len;

    if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
        return -1;
    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    len = s ? ASN1_STRING_length(s) : 0;
    if (len <= 0 || (size_t)len >= cap || memchr(ASN1_STRING_get0_data(s), 0, (size_t)len))
        return -1;
    memcpy(out, ASN1_STRING_get0_data(s), (size_t)len);
    out[len] = '\0';
    return 0;
}

/* OpenSSL has checked the chain to pgcmk's CA and the dates on the wall clock; the leaf must
 * also carry EKU clientAuth, exactly one CN, be in date on the virtual clock and belong to a
 * live client. The error set here picks the alert the handshake ends with. */
static int
kl_verify(int ok, X509_STORE_CTX *xs)
{
    struct pgcmk_net_conn *c;
    X509 *x;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char fp[65], cn[PGCMK_KMIP_IDENTITY_MAX + 1];
    time_t vnow;

    if (!ok || X509_STORE_CTX_get_error_depth(xs) != 0)
        return ok;
    c = pgcmk_net_conn_of(xs);
    x = X509_STORE_CTX_get_current_cert(xs);
    if (c == NULL || x == NULL) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_UNSPECIFIED);
        return 0;
    }
    if (!(X509_get_extension_flags(x) & EXFLAG_XKUSAGE) ||
        !(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT)) {
        LOG_INFO("kmip: %s: refused a client certificate without EKU clientAuth", c->peer);
        X509_STORE_CTX_set_error(xs, X509_V_ERR_INVALID_PURPOSE);
        return 0;
    }
    if (kl_cert_cn(x, cn, sizeof(cn))) {
        LOG_INFO("kmip: %s: refused a client certificate without exactly one usable CN", c->peer);
        X509_STORE_CTX_set_error(xs, X509_V_ERR_SUBJECT_ISSUER_MISMATCH);
        return 0;
    }
    vnow = (time_t)(pgcmk_clock_now() / 1000);
    if (X509_cmp_time(X509_get0_notAfter(x), &vnow) <= 0) {
        LOG_INFO("kmip: %s: refused %s's certificate: expired on the emulator's clock", c->peer,
                 cn);
        X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_HAS_EXPIRED);
        return 0;
    }
    if (X509_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_UNSPECIFIED);
        return 0;
    }
    for (unsigned i = 0; i < 32; i++)
        snprintf(fp + 2 * i, 3, "%02x", md[i]);
    if (!pgcmk_kmip_client_cert_live(fp, cn)) {
        LOG_INFO("kmip: %s: refused a certificate of %s: no such live client (revoked)", c->peer,
                 cn);
        X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REVOKED);
        return 0;
    }
    memcpy(c->identity, cn, sizeof(cn));
    return 1;
}

static SSL_CTX *
kl_ctx(const struct pgcmk_kmip_listener_cfg *cfg, struct pgcmk_err *err)
{
    SSL_CTX *ctx = pgcmk_net_ctx_new("kmip", cfg->ec_cert_pem, cfg->ec_key_pem, err);
    STACK_OF(X509_NAME) * cas;

    if (ctx == NULL)
        return NULL;
    if (cfg->rsa_cert_pem && cfg->rsa_key_pem &&
        pgcmk_net_ctx_add_cert(ctx, cfg->rsa_cert_pem, cfg->rsa_key_pem)) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                      "kmip: the RSA server certificate does not load");
        goto fail;
    }
    if (SSL_CTX_load_verify_locations(ctx, cfg->ca_path, NULL) != 1 ||
        (cas = SSL_load_client_CA_file(cfg->ca_path)) == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "kmip: cannot load the CA %.200s", cfg->ca_path);
        goto fail;
    }
    SSL_CTX_set_client_CA_list(ctx, cas);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, kl_verify);
    SSL_CTX_set_verify_depth(ctx, 4);
    ERR_clear_error();
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- one connection -------------------------------------------------------------------- */

/* Request messages until the client closes, idles out or sends something that is not KMIP. */
static void
kl_serve(struct pgcmk_net_conn *c, void *arg)
{
    struct pgcmk_kmip_listener *l = arg;
    struct pgcmk_kmip_peer peer = {c->identity};
    uint8_t *buf = pgcmk_xmalloc(KL_FIRST_BUF);
    size_t cap = KL_FIRST_BUF;
    int timeout = l->timeout_ms;

    LOG_DEBUG("kmip: %s: %s connected (%s)", c->peer, c->identity, SSL_get_version(c->ssl));
    for (;;) {
        uint8_t *resp = NULL;
        size_t resp_len = 0, total;
        uint32_t body;
        int r;
        int64_t deadline = pgcmk_net_mono_ms() + timeout;

        if (pgcmk_net_wait_readable(c, deadline))
            break;
        r = pgcmk_net_read_full(c, buf, KL_HEADER_LEN, deadline, 1);
        if (r <= 0)
            break;
        /* Tag 42 00 78 (Request Message), type 01 (Structure). */
        if (buf[0] != 0x42 || buf[1] != 0x00 || buf[2] != 0x78 || buf[3] != 0x01) {
            LOG_INFO("kmip: %s (%s): not a KMIP request message; closing", c->peer, c->identity);
            break;
        }
        body = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
        if (body > PGCMK_TTLV_MAX_LEN - KL_HEADER_LEN) {
            LOG_WARN("kmip: %s (%s): a request message of %u bytes is over the limit of %u; "
                     "closing",
                     c->peer, c->identity, body, (unsigned)PGCMK_TTLV_MAX_LEN);
            break;
        }
        total = KL_HEADER_LEN + (size_t)body;
        if (total > cap) {
            uint8_t *nb = pgcmk_xmalloc(total);

            memcpy(nb, buf, KL_HEADER_LEN);
            pgcmk_secret_free(buf, cap);
            buf = nb;
            cap = total;
        }
        if (body && pgcmk_net_read_full(c, buf + KL_HEADER_LEN, body, pgcmk_net_mono_ms() + timeout,
                                        0) != 1) {
            LOG_INFO("kmip: %s (%s): the request message did not arrive whole within %d s; "
                     "closing",
                     c->peer, c->identity, timeout / 1000);
            break;
        }
        r = pgcmk_kmip_process(&peer, buf, total, &resp, &resp_len);
        OPENSSL_cleanse(buf, total);
        if (r != 0) {
            LOG_INFO("kmip: %s (%s): not a KMIP request; closing", c->peer, c->identity);
            break;
        }
        r = pgcmk_net_write(c, resp, resp_len, pgcmk_net_mono_ms() + timeout);
        pgcmk_secret_free(resp, resp_len);
        if (r)
            break;
    }
    pgcmk_secret_free(buf, cap);
}

/* Without an RSA certificate yet (a new data directory): make it here, off the start-up path,
 * then serve new connections from a context that has both certificates. */
static void *
kl_rsa_main(void *arg)
{
    struct pgcmk_kmip_listener *l = arg;
    struct pgcmk_kmip_tls kt;
    struct pgcmk_kmip_listener_cfg cfg = l->cfg;
    struct pgcmk_err err;
    SSL_CTX *ctx;

    if (pgcmk_tls_kmip_bootstrap(cfg.data_dir, 1, &kt, &err)) {
        LOG_WARN("kmip: no RSA server certificate (TLS 1.2 clients offering only RSA suites "
                 "will fail): %s",
                 err.message);
        return NULL;
    }
    cfg.rsa_cert_pem = kt.rsa_cert_pem;
    cfg.rsa_key_pem = kt.rsa_key_pem;
    cfg.ec_cert_pem = kt.ec_cert_pem;
    cfg.ec_key_pem = kt.ec_key_pem;
    ctx = kl_ctx(&cfg, &err);
    if (ctx == NULL) {
        LOG_WARN("%s", err.message);
    } else {
        pgcmk_net_tls_set_ctx(l->tls, ctx);
        LOG_DEBUG("kmip: the RSA server certificate is ready");
    }
    pgcmk_tls_kmip_release(&kt);
    return NULL;
}

/* ---- start and stop -------------------------------------------------------------------- */

struct pgcmk_kmip_listener *
pgcmk_kmip_listener_start(const struct pgcmk_kmip_listener_cfg *cfg, struct pgcmk_err *err)
{
    struct pgcmk_kmip_listener *l = pgcmk_xcalloc(1, sizeof(*l));
    struct pgcmk_net_tls_cfg tc = {"kmip",
                                   cfg->listen,
                                   cfg->port,
                                   cfg->timeout_s,
                                   cfg->max_conns > 0 ? cfg->max_conns : PGCMK_KMIP_MAX_CONNS,
                                   NULL,
                                   kl_serve,
                                   l};

    l->timeout_ms = (cfg->timeout_s > 0 ? cfg->timeout_s : 120) * 1000;
    l->cfg = *cfg;
    if ((tc.ctx = kl_ctx(cfg, err)) == NULL || (l->tls = pgcmk_net_tls_start(&tc, err)) == NULL) {
        free(l);
        return NULL;
    }
    if ((cfg->rsa_cert_pem == NULL || cfg->rsa_key_pem == NULL) && cfg->data_dir &&
        pthread_create(&l->rsa_thread, NULL, kl_rsa_main, l) == 0)
        l->rsa_started = 1;
    return l;
}

int
pgcmk_kmip_listener_port(const struct pgcmk_kmip_listener *l)
{
    return l ? pgcmk_net_tls_port(l->tls) : -1;
}

void
pgcmk_kmip_listener_stop(struct pgcmk_kmip_listener *l)
{
    if (l == NULL)
        return;
    if (l->rsa_started)
        pthread_join(l->rsa_thread, NULL);
    pgcmk_net_tls_stop(l->tls);
    free(l);
}
