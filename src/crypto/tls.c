/* tls.c - the local CA and server certificate (ECDSA P-256), created on first start in the data
 * directory and reused later; or the user's own PEM files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pgcmk/crypto.h"
#include "pgcmk/log.h"

#define TLS_SERVER_SANS                                                                            \
    "DNS:localhost,DNS:*.localhost,DNS:*.vault.localhost,IP:127.0.0.1,IP:::1"

static char *
tls_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < 1024 * 1024 &&
        fseek(f, 0, SEEK_SET) == 0) {
        buf = pgcmk_xmalloc((size_t)n + 1);
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
            if (len)
                *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

/* Writes atomically: tmp file with `mode`, fsync, rename. */
static int
tls_write_file(const char *path, const char *data, mode_t mode)
{
    char tmp[4096];
    size_t len = strlen(data);
    int fd;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    if (write(fd, data, len) != (ssize_t)len || fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static char *
tls_pem_cert(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long n;

    if (b && PEM_write_bio_X509(b, x) == 1 && (n = BIO_get_mem_data(b, &data)) > 0)
        out = pgcmk_xstrndup(data, (size_t)n);
    BIO_free(b);
    return out;
}

static char *
tls_pem_key(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long n;

    if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1 &&
        (n = BIO_get_mem_data(b, &data)) > 0)
        out = pgcmk_xstrndup(data, (size_t)n);
    BIO_free(b);
    return out;
}

static X509 *
tls_parse_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    return x;
}

static EVP_PKEY *
tls_parse_key(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    return k;
}

static int
tls_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

/* A certificate for `key` named `cn`, signed by issuer/issuer_key (self-signed when NULL). */
static X509 *
tls_make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, long days,
              int is_ca)
{
    X509 *x = X509_new();
    ASN1_INTEGER *serial = NULL;
    BIGNUM *bn = NULL;
    unsigned char rnd[16];
    X509_NAME *name;

    if (x == NULL || pgcmk_random(rnd, sizeof(rnd)))
        goto fail;
    rnd[0] &= 0x7f;
    bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
    serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    if (serial == NULL || X509_set_version(x, 2) != 1 || X509_set_serialNumber(x, serial) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), days * 86400L) == NULL ||
        X509_set_pubkey(x, key) != 1)
        goto fail;
    name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"pgcmk", -1,
                                   -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1)
        goto fail;
    if (is_ca) {
        if (tls_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") ||
            tls_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
            tls_add_ext(x, x, NID_subject_key_identifier, "hash"))
            goto fail;
    } else {
        if (tls_add_ext(x, issuer, NID_basic_constraints, "CA:FALSE") ||
            tls_add_ext(x, issuer, NID_key_usage, "critical,digitalSignature") ||
            tls_add_ext(x, issuer, NID_ext_key_usage, "serverAuth") ||
            tls_add_ext(x, issuer, NID_subject_alt_name, TLS_SERVER_SANS) ||
            tls_add_ext(x, issuer, NID_authority_key_identifier, "keyid:always"))
            goto fail;
    }
    if (X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) <= 0)
        goto fail;
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return x;
fail:
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    X509_free(x);
    return NULL;
}

/* 1 when `leaf` verifies against `ca`, is in date, and names localhost. */
static int
tls_cert_good(X509 *leaf, X509 *ca)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = 0;

    if (store && ctx && X509_STORE_add_cert(store, ca) == 1 &&
        X509_STORE_CTX_init(ctx, store, leaf, NULL) == 1)
        ok = X509_verify_cert(ctx) == 1 && X509_check_host(leaf, "localhost", 0, 0, NULL) == 1 &&
             X509_cmp_current_time(X509_get0_notAfter(leaf)) > 0 &&
             X509_check_host(leaf, "x.vault.localhost", 0, 0, NULL) == 1;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

static int
tls_own_files(const char *cert_file, const char *key_file, struct pgcmk_tls *tls,
              struct pgcmk_err *err)
{
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    int rc = -1;

    tls->cert_pem = tls_read_file(cert_file, NULL);
    tls->key_pem = tls_read_file(key_file, NULL);
    if (tls->cert_pem == NULL || tls->key_pem == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot read '%s' or '%s': %s", cert_file,
                      key_file, strerror(errno));
        goto done;
    }
    x = tls_parse_cert(tls->cert_pem);
    k = tls_parse_key(tls->key_pem);
    if (x == NULL || k == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "'%s' or '%s' is not a PEM certificate/key",
                      cert_file, key_file);
        goto done;
    }
    if (X509_check_private_key(x, k) != 1) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "the key in '%s' does not match '%s'",
                      key_file, cert_file);
        goto done;
    }
    rc = 0;
done:
    X509_free(x);
    EVP_PKEY_free(k);
    if (rc)
        pgcmk_tls_release(tls);
    return rc;
}

int
pgcmk_tls_bootstrap(const char *data_dir, const char *cert_file, const char *key_file,
                    struct pgcmk_tls *tls, struct pgcmk_err *err)
{
    char *ca_path, *ca_key_path, *srv_path, *srv_key_path;
    char *ca_pem = NULL, *ca_key_pem = NULL, *srv_pem = NULL, *srv_key_pem = NULL;
    X509 *ca = NULL, *srv = NULL;
    EVP_PKEY *ca_key = NULL, *srv_key = NULL;
    int rc = -1;

    memset(tls, 0, sizeof(*tls));
    if (cert_file || key_file) {
        if (!cert_file || !key_file)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                                 "--tls-cert and --tls-key go together");
        return tls_own_files(cert_file, key_file, tls, err);
    }
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot create %s: %s", data_dir,
                             strerror(errno));
    ca_path = pgcmk_xasprintf("%s/ca.pem", data_dir);
    ca_key_path = pgcmk_xasprintf("%s/ca-key.pem", data_dir);
    srv_path = pgcmk_xasprintf("%s/server.pem", data_dir);
    srv_key_path = pgcmk_xasprintf("%s/server-key.pem", data_dir);

    ca_pem = tls_read_file(ca_path, NULL);
    ca_key_pem = tls_read_file(ca_key_path, NULL);
    if (ca_pem && ca_key_pem) {
        ca = tls_parse_cert(ca_pem);
        ca_key = tls_parse_key(ca_key_pem);
        if (ca == NULL || ca_key == NULL || X509_check_private_key(ca, ca_key) != 1) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                          "%s or %s is damaged; remove both to create a new CA", ca_path,
                          ca_key_path);
            goto done;
        }
    } else {
        free(ca_pem);
        free(ca_key_pem);
        ca_pem = ca_key_pem = NULL;
        ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        ca = ca_key ? tls_make_cert(ca_key, "pgcmk local CA", NULL, NULL, 3650, 1) : NULL;
        if (ca == NULL || (ca_pem = tls_pem_cert(ca)) == NULL ||
            (ca_key_pem = tls_pem_key(ca_key)) == NULL ||
            tls_write_file(ca_key_path, ca_key_pem, 0600) || tls_write_file(ca_path, ca_pem, 0644)) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot create the local CA in %s",
                          data_dir);
            goto done;
        }
        tls->created = 1;
        /* A new CA invalidates any old server certificate. */
        unlink(srv_path);
    }
    srv_pem = tls_read_file(srv_path, NULL);
    srv_key_pem = tls_read_file(srv_key_path, NULL);
    if (srv_pem && srv_key_pem) {
        srv = tls_parse_cert(srv_pem);
        srv_key = tls_parse_key(srv_key_pem);
    }
    if (srv == NULL || srv_key == NULL || X509_check_private_key(srv, srv_key) != 1 ||
        !tls_cert_good(srv, ca)) {
        X509_free(srv);
        EVP_PKEY_free(srv_key);
        free(srv_pem);
        if (srv_key_pem)
            pgcmk_secret_free(srv_key_pem, strlen(srv_key_pem));
        srv_pem = srv_key_pem = NULL;
        srv_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        srv = srv_key ? tls_make_cert(srv_key, "localhost", ca, ca_key, 825, 0) : NULL;
        if (srv == NULL || (srv_pem = tls_pem_cert(srv)) == NULL ||
            (srv_key_pem = tls_pem_key(srv_key)) == NULL ||
            tls_write_file(srv_key_path, srv_key_pem, 0600) ||
            tls_write_file(srv_path, srv_pem, 0644)) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                          "cannot create the server certificate in %s", data_dir);
            goto done;
        }
    }
    tls->cert_pem = pgcmk_xasprintf("%s%s", srv_pem, ca_pem);
    tls->key_pem = srv_key_pem;
    srv_key_pem = NULL;
    tls->ca_path = ca_path;
    ca_path = NULL;
    rc = 0;
done:
    X509_free(ca);
    X509_free(srv);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    free(ca_pem);
    if (ca_key_pem)
        pgcmk_secret_free(ca_key_pem, strlen(ca_key_pem));
    free(srv_pem);
    if (srv_key_pem)
        pgcmk_secret_free(srv_key_pem, strlen(srv_key_pem));
    free(ca_path);
    free(ca_key_path);
    free(srv_path);
    free(srv_key_path);
    return rc;
}

void
pgcmk_tls_release(struct pgcmk_tls *tls)
{
    free(tls->cert_pem);
    if (tls->key_pem)
        pgcmk_secret_free(tls->key_pem, strlen(tls->key_pem));
    free(tls->ca_path);
    memset(tls, 0, sizeof(*tls));
}
