/* rsafloor.c - the least an HTTPS unwrapKey can cost on this machine with libmicrohttpd + GnuTLS.
 * pgcmkd's threading (one single-threaded epoll daemon per core on one port, SO_REUSEPORT) and,
 * per request, nothing but one RSA-2048 RSA-OAEP-256 decryption of a fixed ciphertext on a
 * per-thread context, then an answer with the same 11 headers and 142-byte body pgcmkd's
 * unwrapKey sends. No routing, no token check, no JSON, no vault: what is left of pgcmkd's
 * unwrapKey figure when all of pgcmk's own work is taken away. bench/run.sh compares it with
 * openssl speed and with pgcmkd in the same run (bench/README.md, finding 8).
 * usage: rsafloor CERT_PEM KEY_PEM PORT_FILE   (a free port of 127.0.0.1 is written to PORT_FILE;
 * serves until SIGTERM or SIGINT) */
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "benchio.h"

int main(int argc, char **argv);

#define RF_MAX_DAEMONS 64

static EVP_PKEY *rf_key;
static unsigned char rf_ct[256];
static size_t rf_ct_len;
static _Thread_local EVP_PKEY_CTX *rf_ctx;

static const char rf_body[] =
    "{\"kid\":\"https://benchkv.vault.localhost:45363/keys/k1/cd919c139ede43479b39416b0a74be13\","
    "\"value\":\"akb0F85rt4ITC6tSwGbMwDTdxgVO2uf566qo41pDxUM\"}";

static const char *const rf_headers[][2] = {
    {"x-ms-keyvault-region", "eastus"},
    {"x-ms-keyvault-service-version", "1.9.1.0"},
    {"x-ms-keyvault-network-info", "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;"},
    {"x-ms-request-id", "abf824fb-723b-458d-a361-86579a33510c"},
    {"x-ms-correlation-request-id", "550e5a3c-4b3e-482b-bd51-22bb65fc4761"},
    {"Cache-Control", "no-cache"},
    {"X-Content-Type-Options", "nosniff"},
    {"Strict-Transport-Security", "max-age=31536000; includeSubDomains"},
    {"Content-Type", "application/json; charset=utf-8"},
};

static EVP_PKEY_CTX *
rf_oaep_ctx(EVP_PKEY *k, int decrypt)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);

    if (c == NULL || (decrypt ? EVP_PKEY_decrypt_init(c) : EVP_PKEY_encrypt_init(c)) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) <= 0) {
        fprintf(stderr, "rsafloor: OAEP context set-up failed\n");
        exit(1);
    }
    return c;
}

/* One private-key operation, as pgcmkd's per-thread cache does it: the thread's own copy of the
 * key (no shared blinding state) and a context set up once. */
static int
rf_unwrap(void)
{
    unsigned char out[256];
    size_t outlen = sizeof(out);

    if (rf_ctx == NULL) {
        EVP_PKEY *mine = EVP_PKEY_dup(rf_key);

        if (mine == NULL)
            return 0;
        rf_ctx = rf_oaep_ctx(mine, 1);
        EVP_PKEY_free(mine); /* the context holds its own reference */
    }
    return EVP_PKEY_decrypt(rf_ctx, out, &outlen, rf_ct, rf_ct_len) > 0 && outlen == 32;
}

static enum MHD_Result
rf_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    int ok;

    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (!bench_request_done(req_cls, upload_size))
        return MHD_YES;
    ok = rf_unwrap();
    r = MHD_create_response_from_buffer(sizeof(rf_body) - 1, (void *)rf_body,
                                        MHD_RESPMEM_PERSISTENT);
    for (size_t i = 0; i < sizeof(rf_headers) / sizeof(rf_headers[0]); i++)
        MHD_add_response_header(r, rf_headers[i][0], rf_headers[i][1]);
    ret = MHD_queue_response(c, ok ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR, r);
    MHD_destroy_response(r);
    return ret;
}

static struct MHD_Daemon *
rf_daemon(const char *cert, const char *key, unsigned port)
{
    struct sockaddr_in sa;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TLS | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, rf_access, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
        MHD_OPTION_CONNECTION_LIMIT, 1000u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
        MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END);
}

int
main(int argc, char **argv)
{
    struct MHD_Daemon *d[RF_MAX_DAEMONS];
    const union MHD_DaemonInfo *di;
    unsigned char dek[32];
    sigset_t set;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int n = ncpu < 1 ? 1 : ncpu > RF_MAX_DAEMONS ? RF_MAX_DAEMONS : (int)ncpu;
    unsigned port;
    char *cert, *key;
    EVP_PKEY_CTX *enc;
    int sig;

    bench_server_init(argc, argv, &cert, &key, &set);
    if ((rf_key = EVP_RSA_gen(2048)) == NULL) {
        fprintf(stderr, "rsafloor: RSA key generation failed\n");
        return 1;
    }
    memset(dek, 0x5a, sizeof(dek));
    enc = rf_oaep_ctx(rf_key, 0);
    rf_ct_len = sizeof(rf_ct);
    if (EVP_PKEY_encrypt(enc, rf_ct, &rf_ct_len, dek, sizeof(dek)) <= 0 || !rf_unwrap()) {
        fprintf(stderr, "rsafloor: RSA-OAEP-256 round trip failed\n");
        return 1;
    }
    EVP_PKEY_CTX_free(enc);
    if ((d[0] = rf_daemon(cert, key, 0)) == NULL ||
        (di = MHD_get_daemon_info(d[0], MHD_DAEMON_INFO_BIND_PORT)) == NULL) {
        fprintf(stderr, "rsafloor: cannot start\n");
        return 1;
    }
    port = di->port;
    for (int i = 1; i < n; i++)
        if ((d[i] = rf_daemon(cert, key, port)) == NULL) {
            fprintf(stderr, "rsafloor: cannot start daemon %d on port %u\n", i, port);
            return 1;
        }
    if (bench_write_port(argv[3], port) != 0)
        return 1;
    sigwait(&set, &sig);
    for (int i = 0; i < n; i++)
        MHD_stop_daemon(d[i]);
    EVP_PKEY_free(rf_key);
    free(cert);
    free(key);
    return 0;
}
