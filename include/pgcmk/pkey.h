/* pkey.h - asymmetric keys behind an opaque handle (OpenSSL EVP inside src/crypto/ only):
 * generation, PEM in and out, public JWKs, and JWT RS256 signing and verification. */
#ifndef PGCMK_PKEY_H
#define PGCMK_PKEY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "pgcmk/core.h"
#include "pgcmk/err.h"

struct pgcmk_pkey;

/* RSA of `bits` (2048, 3072, 4096) with e = 65537. */
int pgcmk_pkey_rsa_new(int bits, struct pgcmk_pkey **out) PGCMK_WUR;
/* Starts generating RSA-2048 keys ahead of use (a small pool, one background thread); the first
 * pgcmk_pkey_rsa_new(2048) starts it too. */
void pgcmk_pkey_rsa_prefill(void);
/* Stops that thread (waits for the key it is generating) and frees the pool; before exit. */
void pgcmk_pkey_rsa_pool_stop(void);
/* EC on P-256, P-384 or P-521 (JWK names). */
int pgcmk_pkey_ec_new(const char *crv, struct pgcmk_pkey **out) PGCMK_WUR;
/* 1 for EC keys, 0 for RSA. */
int pgcmk_pkey_is_ec(const struct pgcmk_pkey *k);
/* PKCS#8 PEM of the private key (heap; wipe with pgcmk_secret_free). */
char *pgcmk_pkey_private_pem(const struct pgcmk_pkey *k);
/* Loads a PEM private or public key. */
int pgcmk_pkey_from_pem(const char *pem, size_t len, struct pgcmk_pkey **out) PGCMK_WUR;
/* An RSA private key from a JWK with n, e, d, p, q, dp, dq, qi (base64url). */
int pgcmk_pkey_from_jwk(const json_t *jwk, struct pgcmk_pkey **out) PGCMK_WUR;
/* A private key from PEM (PKCS#8 or traditional, optionally encrypted with `password`) or from a
 * PKCS#12/PFX blob with `password` (NULL = none). */
int pgcmk_pkey_from_pem_password(const char *pem, size_t len, const char *password,
                                 struct pgcmk_pkey **out) PGCMK_WUR;
int pgcmk_pkey_from_pfx(const unsigned char *der, size_t len, const char *password,
                        struct pgcmk_pkey **out) PGCMK_WUR;
void pgcmk_pkey_free(struct pgcmk_pkey *k);
int pgcmk_pkey_bits(const struct pgcmk_pkey *k);
/* {"kty":"RSA","n":...,"e":...} or {"kty":"EC","crv":...,"x":...,"y":...} (+ "kid", "use":"sig",
 * "alg":"RS256" when kid is given). */
json_t *pgcmk_pkey_public_jwk(const struct pgcmk_pkey *k, const char *kid);
/* The RFC 7638 thumbprint (base64url of SHA-256 over the canonical JWK), for key ids. */
char *pgcmk_pkey_thumbprint(const struct pgcmk_pkey *k);

/* 1 when the handle holds a private key. */
int pgcmk_pkey_has_private(const struct pgcmk_pkey *k);
/* Key Vault's RSA algorithms: RSA1_5, RSA-OAEP (SHA-1), RSA-OAEP-256. 0, or -1 (bad input or a
 * failed decryption: callers must not tell those apart to the client). */
int pgcmk_pkey_encrypt(const struct pgcmk_pkey *k, const char *alg, const unsigned char *in,
                       size_t len, unsigned char **out, size_t *out_len) PGCMK_WUR;
int pgcmk_pkey_decrypt(const struct pgcmk_pkey *k, const char *alg, const unsigned char *in,
                       size_t len, unsigned char **out, size_t *out_len) PGCMK_WUR;
/* 1 when alg is one of the three above. */
int pgcmk_pkey_crypt_alg_ok(const char *alg);
/* Signatures over a digest: RS256/384/512 (PKCS#1 v1.5), PS256/384/512 (PSS, salt = hash) for
 * RSA keys; ES256/384/512 for EC keys of the matching curve, as JWS r||s (not DER). */
int pgcmk_pkey_sign_alg_ok(const char *alg, size_t digest_len);
int pgcmk_pkey_sign(const struct pgcmk_pkey *k, const char *alg, const unsigned char *digest,
                    size_t len, unsigned char **sig, size_t *sig_len) PGCMK_WUR;
/* 0 valid, -1 not. */
int pgcmk_pkey_verify(const struct pgcmk_pkey *k, const char *alg, const unsigned char *digest,
                      size_t len, const unsigned char *sig, size_t sig_len) PGCMK_WUR;

/* Compact JWS: base64url(header).base64url(claims).base64url(RS256 signature). */
char *pgcmk_jwt_sign(const struct pgcmk_pkey *k, const char *kid, const json_t *claims);
/* Checks the form, alg == RS256 (nothing else is trusted), kid and signature; returns the claims
 * (new reference) without judging them (time, audience and issuer are the caller's). */
int pgcmk_jwt_verify(const struct pgcmk_pkey *k, const char *kid, const char *token,
                     json_t **claims, struct pgcmk_err *err) PGCMK_WUR;

#endif
