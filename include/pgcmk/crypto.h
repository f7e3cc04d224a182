/* crypto.h - OpenSSL 3 EVP only. Key material stays inside src/crypto/. */
#ifndef PGCMK_CRYPTO_H
#define PGCMK_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "pgcmk/core.h"
#include "pgcmk/err.h"

/* Cryptographically strong random bytes (RAND_bytes). 0 or -1. */
int pgcmk_random(void *buf, size_t n) PGCMK_WUR;

/* base64url without padding (JWT, JWK). Returns a NUL-terminated heap string. */
char *pgcmk_b64url_encode(const void *data, size_t len);
/* Accepts input with or without '=' padding; rejects other characters. 0 or -1. */
int pgcmk_b64url_decode(const char *s, size_t len, unsigned char **out, size_t *out_len) PGCMK_WUR;
/* Standard base64 with padding (PEM bodies, Key Vault "value" fields take base64url). */
char *pgcmk_b64_encode(const void *data, size_t len);
int pgcmk_b64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len) PGCMK_WUR;

/* AES-256-GCM. Sealed form: 12-byte random IV || ciphertext || 16-byte tag.
 * A wrong key, AAD or a changed byte makes open fail (-1). */
#define PGCMK_AEAD_KEY_LEN  32
#define PGCMK_AEAD_OVERHEAD (12 + 16)
int pgcmk_aead_seal(const unsigned char key[PGCMK_AEAD_KEY_LEN], const void *aad, size_t aad_len,
                    const void *pt, size_t pt_len, unsigned char **out, size_t *out_len) PGCMK_WUR;
int pgcmk_aead_open(const unsigned char key[PGCMK_AEAD_KEY_LEN], const void *aad, size_t aad_len,
                    const void *sealed, size_t sealed_len, unsigned char **out,
                    size_t *out_len) PGCMK_WUR;

/* ChaCha20-Poly1305 in the same sealed form (12-byte random nonce || ciphertext || 16-byte tag),
 * no AAD (src/crypto/chacha.c; the Vault transit engine's chacha20-poly1305 keys). */
int pgcmk_chacha_seal(const unsigned char key[PGCMK_AEAD_KEY_LEN], const void *pt, size_t pt_len,
                      unsigned char **out, size_t *out_len) PGCMK_WUR;
int pgcmk_chacha_open(const unsigned char key[PGCMK_AEAD_KEY_LEN], const void *sealed,
                      size_t sealed_len, unsigned char **out, size_t *out_len) PGCMK_WUR;

/* SHA-256 of data into out[32]. */
void pgcmk_sha256(const void *data, size_t len, unsigned char out[32]);

/* The listener's TLS material, PEM strings for libmicrohttpd. */
struct pgcmk_tls {
    char *cert_pem; /* server certificate followed by the CA certificate (the chain) */
    char *key_pem;  /* server private key; wiped on release */
    char *ca_path;  /* DATA_DIR/ca.pem, or NULL when the user brought their own cert */
    int created;    /* 1 when this start created the CA and certificate */
};

/* First start: creates DATA_DIR/ca.pem + ca-key.pem (P-256 CA, 10 years) and DATA_DIR/server.pem +
 * server-key.pem (P-256, 825 days, SANs localhost, *.localhost, *.vault.localhost, 127.0.0.1, ::1),
 * private keys 0600. Later starts reuse them (a server certificate that no longer matches the CA
 * or has expired is re-issued). With cert_file/key_file given, those are loaded instead. */
int pgcmk_tls_bootstrap(const char *data_dir, const char *cert_file, const char *key_file,
                        struct pgcmk_tls *tls, struct pgcmk_err *err) PGCMK_WUR;
void pgcmk_tls_release(struct pgcmk_tls *tls);

/* The KMIP listener's certificates, from pgcmk's CA (DATA_DIR/ca.pem, created when missing, as
 * with --tls-cert): DATA_DIR/kmip/server.pem (ECDSA P-256) and server-rsa.pem (RSA-2048, for
 * TLS 1.2 clients offering only RSA suites), reused while they fit the CA, keys 0600; and
 * DATA_DIR/kmip/server_certificate.pem = the ECDSA certificate then the CA certificate (what a
 * KMIP client verifies the server with). The RSA pair is created only when with_rsa (its key
 * takes a while): else it is loaded when present and fit, or left NULL. */
struct pgcmk_kmip_tls {
    char *ca_path;      /* DATA_DIR/ca.pem: client certificates are verified against it */
    char *ca_pem;       /* its text */
    char *ec_cert_pem;  /* ECDSA server certificate followed by the CA certificate */
    char *ec_key_pem;   /* wiped on release */
    char *rsa_cert_pem; /* RSA server certificate followed by the CA certificate */
    char *rsa_key_pem;  /* wiped on release */
    char *bundle_path;  /* DATA_DIR/kmip/server_certificate.pem */
    char *bundle_pem;
};

int pgcmk_tls_kmip_bootstrap(const char *data_dir, int with_rsa, struct pgcmk_kmip_tls *kt,
                             struct pgcmk_err *err) PGCMK_WUR;
void pgcmk_tls_kmip_release(struct pgcmk_kmip_tls *kt);

/* A KMIP client's credentials: a P-256 key and a certificate signed by pgcmk's CA (DATA_DIR),
 * subject O=pgcmk, CN=cn, EKU clientAuth, valid until now_ms + days (virtual clock). */
struct pgcmk_client_cert {
    char *cert_pem;
    char *key_pem;        /* wiped on release */
    char fingerprint[65]; /* SHA-256 of the DER certificate, lower-case hex */
    char serial[64];      /* hex */
    int64_t not_after_ms;
};

int pgcmk_tls_issue_client(const char *data_dir, const char *cn, int64_t now_ms, long days,
                           struct pgcmk_client_cert *out, struct pgcmk_err *err) PGCMK_WUR;
void pgcmk_client_cert_release(struct pgcmk_client_cert *c);
/* A server's: the same, with EKU serverAuth and subjectAltName = sans (OpenSSL's form:
 * "DNS:a.example,DNS:localhost,IP:127.0.0.1,IP:::1"); a real PostgreSQL instance's certificate. */
int pgcmk_tls_issue_server(const char *data_dir, const char *cn, const char *sans, int64_t now_ms,
                           long days, struct pgcmk_client_cert *out,
                           struct pgcmk_err *err) PGCMK_WUR;

#endif
