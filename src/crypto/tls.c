/* tls.c - the local CA and server certificate (ECDSA P-256), created on first start in the data
 * directory and reused later; or the user's own PEM files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pgcmk/crypto.h"

#define TLS_SERVER_SANS "DNS:localhost,DNS:*.localhost,DNS:*.vault.localhost,IP:127.0.0.1,IP:::1"
#define TLS_CA_DAYS     3650L
#define TLS_SERVER_DAYS 825L
#define TLS_RENEW_DAYS  30L /* a server certificate this close to expiry is re-issued */
#define TLS_MAX_FILE    (1024 * 1024)

static char *tls_read_file(const char *path);
static int tls_write_file(const char *path, const char *data, mode_t mode);
static int tls_sync_dir(const char *dir);
static char *tls_pem_cert(X509 *x);
static char *tls_pem_key(EVP_PKEY *k);
static int tls_no_password(char *buf, int size, int rwflag, void *u);
static X509 *tls_parse_cert(const char *pem);
static EVP_PKEY *tls_parse_key(const char *pem);
static int tls_add_ext(X509 *x, X509 *issuer, int nid, const char *value);

enum tls_kind { TLS_KIND_SERVER, TLS_KIND_CA, TLS_KIND_CLIENT };

static X509 *tls_make_cert_at(EVP_PKEY *key, const char *cn, const char *sans, X509 *issuer,
                              EVP_PKEY *issuer_key, time_t not_before, time_t not_after,
                              enum tls_kind kind);
static X509 *tls_make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                           long days, int is_ca);
static int tls_cert_good(X509 *leaf, X509 *ca);
static int tls_own_files(const char *cert_file, const char *key_file, struct pgcmk_tls *tls,
                         struct pgcmk_err *err);

/* The whole of a regular file as a NUL-terminated string; NULL with errno set. Key files pass
 * through here, so a failed read wipes what it got. */
static char *
tls_read_file(const char *path)
{
    struct stat sb;
    char *buf = NULL;
    size_t got = 0, cap = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), saved;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &sb) != 0)
        goto fail;
    if (!S_ISREG(sb.st_mode) || sb.st_size > TLS_MAX_FILE) {
        errno = S_ISREG(sb.st_mode) ? EFBIG : EINVAL;
        goto fail;
    }
    cap = (size_t)sb.st_size + 1;
    buf = pgcmk_xmalloc(cap);
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* shrank while we read it */
            goto fail;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    return buf;
fail:
    saved = errno;
    pgcmk_secret_free(buf, cap);
    close(fd);
    errno = saved;
    return NULL;
}

/* Atomically: a fresh PATH.tmp with exactly `mode`, write, fsync, rename over PATH. -1 with errno
 * set. */
static int
tls_write_file(const char *path, const char *data, mode_t mode)
{
    char *tmp = pgcmk_xasprintf("%s.tmp", path);
    size_t len = strlen(data), off = 0;
    int fd = -1, saved;

    /* A stale tmp file (a crash) could carry a wider mode: never reuse it. */
    if (unlink(tmp) != 0 && errno != ENOENT)
        goto fail;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0 || fchmod(fd, mode) != 0)
        goto fail;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            goto fail;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0)
        goto fail;
    saved = close(fd);
    fd = -1;
    if (saved != 0 || rename(tmp, path) != 0)
        goto fail;
    free(tmp);
    return 0;
fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    errno = saved;
    return -1;
}

/* Makes the renames in `dir` durable. Filesystems that cannot fsync a directory say EINVAL. */
static int
tls_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc, saved;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    saved = errno;
    close(fd);
    errno = saved;
    return rc != 0 && saved != EINVAL ? -1 : 0;
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

/* An encrypted key fails to load instead of OpenSSL asking on the terminal. */
static int
tls_no_password(char *buf, int size, int rwflag, void *u)
{
    PGCMK_UNUSED(buf);
    PGCMK_UNUSED(size);
    PGCMK_UNUSED(rwflag);
    PGCMK_UNUSED(u);
    return -1;
}

static EVP_PKEY *
tls_parse_key(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, tls_no_password, NULL) : NULL;

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

/* A certificate for `key` named `cn`, valid from not_before to not_after, signed by
 * issuer/issuer_key (self-signed when NULL). sans: a server's subjectAltName (NULL = pgcmk's
 * own hosts). */
static X509 *
tls_make_cert_at(EVP_PKEY *key, const char *cn, const char *sans, X509 *issuer,
                 EVP_PKEY *issuer_key, time_t not_before, time_t not_after, enum tls_kind kind)
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
        ASN1_TIME_set(X509_getm_notBefore(x), not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), not_after) == NULL || X509_set_pubkey(x, key) != 1)
        goto fail;
    name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"pgcmk", -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1)
        goto fail;
    if (kind == TLS_KIND_CA) {
        if (tls_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") ||
            tls_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
            tls_add_ext(x, x, NID_subject_key_identifier, "hash"))
            goto fail;
    } else {
        /* RSA key exchange (TLS 1.2's RSA suites) encrypts to the key: keyEncipherment. */
        int rsa = EVP_PKEY_is_a(key, "RSA");

        if (tls_add_ext(x, issuer, NID_basic_constraints, "CA:FALSE") ||
            tls_add_ext(x, issuer, NID_key_usage,
                        rsa ? "critical,digitalSignature,keyEncipherment"
                            : "critical,digitalSignature") ||
            tls_add_ext(x, issuer, NID_ext_key_usage,
                        kind == TLS_KIND_CLIENT ? "clientAuth" : "serverAuth") ||
            (kind == TLS_KIND_SERVER &&
             tls_add_ext(x, issuer, NID_subject_alt_name, sans ? sans : TLS_SERVER_SANS)) ||
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

static X509 *
tls_make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, long days,
              int is_ca)
{
    time_t now = time(NULL);

    return tls_make_cert_at(key, cn, NULL, issuer, issuer_key, now - 3600, now + days * 86400L,
                            is_ca ? TLS_KIND_CA : TLS_KIND_SERVER);
}

/* 1 when `leaf` chains to `ca`, is in date for a while yet, and names the hosts we serve. */
static int
tls_cert_good(X509 *leaf, X509 *ca)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    time_t renew = time(NULL) + TLS_RENEW_DAYS * 86400L;
    int ok = 0;

    if (store && ctx && X509_STORE_add_cert(store, ca) == 1 &&
        X509_STORE_CTX_init(ctx, store, leaf, NULL) == 1)
        ok = X509_verify_cert(ctx) == 1 && X509_cmp_time(X509_get0_notAfter(leaf), &renew) > 0 &&
             X509_check_host(leaf, "localhost", 0, 0, NULL) == 1 &&
             X509_check_host(leaf, "x.vault.localhost", 0, 0, NULL) == 1 &&
             X509_check_ip_asc(leaf, "127.0.0.1", 0) == 1 && X509_check_ip_asc(leaf, "::1", 0) == 1;
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

    if ((tls->cert_pem = tls_read_file(cert_file)) == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot read the certificate %.200s: %s",
                      cert_file, strerror(errno));
        goto done;
    }
    if ((tls->key_pem = tls_read_file(key_file)) == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot read the private key %.200s: %s",
                      key_file, strerror(errno));
        goto done;
    }
    if ((x = tls_parse_cert(tls->cert_pem)) == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "%.200s holds no PEM certificate", cert_file);
        goto done;
    }
    if ((k = tls_parse_key(tls->key_pem)) == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                      "%.200s holds no PEM private key (encrypted keys are not supported)",
                      key_file);
        goto done;
    }
    if (X509_check_private_key(x, k) != 1) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                      "the private key in %.200s does not match the certificate in %.200s",
                      key_file, cert_file);
        goto done;
    }
    rc = 0;
done:
    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error();
    if (rc)
        pgcmk_tls_release(tls);
    return rc;
}

/* Loads pgcmk's CA from DATA_DIR (ca.pem, ca-key.pem), or creates it when both are missing
 * (*created = 1). A half CA, a damaged or an expired one is an error. */
static int
tls_ca_open(const char *data_dir, const char *ca_path, const char *ca_key_path, X509 **ca_out,
            EVP_PKEY **ca_key_out, char **ca_pem_out, int *created, struct pgcmk_err *err)
{
    char *ca_pem = NULL, *ca_key_pem = NULL;
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    int rc = -1;

    *created = 0;
    ca_pem = tls_read_file(ca_path);
    if (ca_pem == NULL && errno != ENOENT) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot read %.200s: %s", ca_path,
                      strerror(errno));
        goto done;
    }
    ca_key_pem = tls_read_file(ca_key_path);
    if (ca_key_pem == NULL && errno != ENOENT) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot read %.200s: %s", ca_key_path,
                      strerror(errno));
        goto done;
    }
    if ((ca_pem == NULL) != (ca_key_pem == NULL)) {
        /* Never overwrite half a CA: the other half may be in someone's trust store. */
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                      "%.200s exists without %s; restore it, or remove both to create a new CA",
                      ca_pem ? ca_path : ca_key_path, ca_pem ? "ca-key.pem" : "ca.pem");
        goto done;
    }
    if (ca_pem) {
        ca = tls_parse_cert(ca_pem);
        ca_key = tls_parse_key(ca_key_pem);
        if (ca == NULL || ca_key == NULL || X509_check_private_key(ca, ca_key) != 1) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                          "%.200s or %.200s is damaged; remove both to create a new CA", ca_path,
                          ca_key_path);
            goto done;
        }
        if (X509_cmp_current_time(X509_get0_notAfter(ca)) <= 0) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                          "the local CA in %.200s has expired; remove ca.pem and ca-key.pem to "
                          "create a new one",
                          ca_path);
            goto done;
        }
    } else {
        ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        ca = ca_key ? tls_make_cert(ca_key, "pgcmk local CA", NULL, NULL, TLS_CA_DAYS, 1) : NULL;
        if (ca == NULL || (ca_pem = tls_pem_cert(ca)) == NULL ||
            (ca_key_pem = tls_pem_key(ca_key)) == NULL) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot generate the local CA");
            goto done;
        }
        if (tls_write_file(ca_key_path, ca_key_pem, 0600) ||
            tls_write_file(ca_path, ca_pem, 0644)) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot write the local CA in %.200s: %s",
                          data_dir, strerror(errno));
            goto done;
        }
        *created = 1;
    }

    *ca_out = ca;
    *ca_key_out = ca_key;
    *ca_pem_out = ca_pem;
    ca = NULL;
    ca_key = NULL;
    ca_pem = NULL;
    rc = 0;
done:
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    free(ca_pem);
    pgcmk_secret_free(ca_key_pem, ca_key_pem ? strlen(ca_key_pem) : 0);
    return rc;
}

int
pgcmk_tls_bootstrap(const char *data_dir, const char *cert_file, const char *key_file,
                    struct pgcmk_tls *tls, struct pgcmk_err *err)
{
    char *ca_path = NULL, *ca_key_path = NULL, *srv_path = NULL, *srv_key_path = NULL;
    char *ca_pem = NULL, *ca_key_pem = NULL, *srv_pem = NULL, *srv_key_pem = NULL;
    X509 *ca = NULL, *srv = NULL;
    EVP_PKEY *ca_key = NULL, *srv_key = NULL;
    int rc = -1, wrote = 0;

    memset(tls, 0, sizeof(*tls));
    if (cert_file || key_file) {
        if (!cert_file || !key_file)
            return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                                 "a certificate needs its private key: give both --tls-cert and "
                                 "--tls-key, or neither");
        return tls_own_files(cert_file, key_file, tls, err);
    }
    if (data_dir == NULL || *data_dir == '\0')
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "no data directory for the local CA");
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot create %.200s: %s", data_dir,
                             strerror(errno));
    ca_path = pgcmk_xasprintf("%s/ca.pem", data_dir);
    ca_key_path = pgcmk_xasprintf("%s/ca-key.pem", data_dir);
    srv_path = pgcmk_xasprintf("%s/server.pem", data_dir);
    srv_key_path = pgcmk_xasprintf("%s/server-key.pem", data_dir);

    if (tls_ca_open(data_dir, ca_path, ca_key_path, &ca, &ca_key, &ca_pem, &tls->created, err))
        goto done;
    wrote = tls->created;

    /* Reuse the server certificate only if it still fits this CA; else issue a new one. */
    if (!tls->created && (srv_pem = tls_read_file(srv_path)) != NULL &&
        (srv_key_pem = tls_read_file(srv_key_path)) != NULL) {
        srv = tls_parse_cert(srv_pem);
        srv_key = tls_parse_key(srv_key_pem);
    }
    if (srv == NULL || srv_key == NULL || X509_check_private_key(srv, srv_key) != 1 ||
        !tls_cert_good(srv, ca)) {
        X509_free(srv);
        EVP_PKEY_free(srv_key);
        free(srv_pem);
        pgcmk_secret_free(srv_key_pem, srv_key_pem ? strlen(srv_key_pem) : 0);
        srv_pem = srv_key_pem = NULL;
        srv_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        srv = srv_key ? tls_make_cert(srv_key, "localhost", ca, ca_key, TLS_SERVER_DAYS, 0) : NULL;
        if (srv == NULL || (srv_pem = tls_pem_cert(srv)) == NULL ||
            (srv_key_pem = tls_pem_key(srv_key)) == NULL) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot generate the server certificate");
            goto done;
        }
        if (tls_write_file(srv_key_path, srv_key_pem, 0600) ||
            tls_write_file(srv_path, srv_pem, 0644)) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                          "cannot write the server certificate in %.200s: %s", data_dir,
                          strerror(errno));
            goto done;
        }
        wrote = 1;
    }
    if (wrote && tls_sync_dir(data_dir)) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot sync %.200s: %s", data_dir,
                      strerror(errno));
        goto done;
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
    ERR_clear_error();
    free(ca_pem);
    pgcmk_secret_free(ca_key_pem, ca_key_pem ? strlen(ca_key_pem) : 0);
    free(srv_pem);
    pgcmk_secret_free(srv_key_pem, srv_key_pem ? strlen(srv_key_pem) : 0);
    free(ca_path);
    free(ca_key_path);
    free(srv_path);
    free(srv_key_path);
    if (rc)
        tls->created = 0;
    return rc;
}

void
pgcmk_tls_release(struct pgcmk_tls *tls)
{
    if (tls == NULL)
        return;
    free(tls->cert_pem);
    pgcmk_secret_free(tls->key_pem, tls->key_pem ? strlen(tls->key_pem) : 0);
    free(tls->ca_path);
    memset(tls, 0, sizeof(*tls));
}

/* DIR/BASE.pem and DIR/BASE-key.pem: reused while they fit `ca`, else issued again (ECDSA P-256,
 * or RSA-2048 when rsa). With create = 0 a missing or unfit pair gives NULL PEMs and 0. */
static int
tls_kmip_leaf(const char *dir, const char *base, int rsa, int create, X509 *ca, EVP_PKEY *ca_key,
              char **cert_pem, char **key_pem, int *wrote, struct pgcmk_err *err)
{
    char *path = pgcmk_xasprintf("%s/%s.pem", dir, base);
    char *key_path = pgcmk_xasprintf("%s/%s-key.pem", dir, base);
    char *c = NULL, *k = NULL;
    X509 *x = NULL;
    EVP_PKEY *pk = NULL;
    int rc = -1;

    if ((c = tls_read_file(path)) != NULL && (k = tls_read_file(key_path)) != NULL) {
        x = tls_parse_cert(c);
        pk = tls_parse_key(k);
    }
    if (x == NULL || pk == NULL || X509_check_private_key(x, pk) != 1 || !tls_cert_good(x, ca) ||
        EVP_PKEY_is_a(pk, rsa ? "RSA" : "EC") != 1) {
        X509_free(x);
        EVP_PKEY_free(pk);
        free(c);
        pgcmk_secret_free(k, k ? strlen(k) : 0);
        c = k = NULL;
        if (!create) {
            x = NULL;
            pk = NULL;
            rc = 0;
            goto done;
        }
        pk = rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                 : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        x = pk ? tls_make_cert(pk, "localhost", ca, ca_key, TLS_SERVER_DAYS, 0) : NULL;
        if (x == NULL || (c = tls_pem_cert(x)) == NULL || (k = tls_pem_key(pk)) == NULL) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL,
                          "cannot generate the KMIP server certificate");
            goto done;
        }
        if (tls_write_file(key_path, k, 0600) || tls_write_file(path, c, 0644)) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot write %.200s: %s", path,
                          strerror(errno));
            goto done;
        }
        *wrote = 1;
    }
    *cert_pem = c;
    *key_pem = k;
    c = k = NULL;
    rc = 0;
done:
    X509_free(x);
    EVP_PKEY_free(pk);
    free(c);
    pgcmk_secret_free(k, k ? strlen(k) : 0);
    free(path);
    free(key_path);
    return rc;
}

int
pgcmk_tls_kmip_bootstrap(const char *data_dir, int with_rsa, struct pgcmk_kmip_tls *kt,
                         struct pgcmk_err *err)
{
    char *ca_path = NULL, *ca_key_path = NULL, *dir = NULL, *ca_pem = NULL;
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    int rc = -1, created = 0, wrote = 0;

    memset(kt, 0, sizeof(*kt));
    if (data_dir == NULL || *data_dir == '\0')
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "no data directory for the local CA");
    ca_path = pgcmk_xasprintf("%s/ca.pem", data_dir);
    ca_key_path = pgcmk_xasprintf("%s/ca-key.pem", data_dir);
    dir = pgcmk_xasprintf("%s/kmip", data_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot create %.200s: %s", dir,
                      strerror(errno));
        goto done;
    }
    if (tls_ca_open(data_dir, ca_path, ca_key_path, &ca, &ca_key, &ca_pem, &created, err))
        goto done;
    if (tls_kmip_leaf(dir, "server", 0, 1, ca, ca_key, &kt->ec_cert_pem, &kt->ec_key_pem, &wrote,
                      err) ||
        tls_kmip_leaf(dir, "server-rsa", 1, with_rsa, ca, ca_key, &kt->rsa_cert_pem,
                      &kt->rsa_key_pem, &wrote, err))
        goto done;
    kt->bundle_pem = pgcmk_xasprintf("%s%s", kt->ec_cert_pem, ca_pem);
    kt->bundle_path = pgcmk_xasprintf("%s/server_certificate.pem", dir);
    if (tls_write_file(kt->bundle_path, kt->bundle_pem, 0644) || tls_sync_dir(dir) ||
        ((created || wrote) && tls_sync_dir(data_dir))) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot write %.200s: %s", kt->bundle_path,
                      strerror(errno));
        goto done;
    }
    /* Each listener certificate is sent with the CA (the chain). */
    {
        char *ec = pgcmk_xasprintf("%s%s", kt->ec_cert_pem, ca_pem);
        char *rsa = kt->rsa_cert_pem ? pgcmk_xasprintf("%s%s", kt->rsa_cert_pem, ca_pem) : NULL;

        free(kt->ec_cert_pem);
        free(kt->rsa_cert_pem);
        kt->ec_cert_pem = ec;
        kt->rsa_cert_pem = rsa;
    }
    kt->ca_pem = ca_pem;
    ca_pem = NULL;
    kt->ca_path = ca_path;
    ca_path = NULL;
    rc = 0;
done:
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    ERR_clear_error();
    free(ca_pem);
    free(ca_path);
    free(ca_key_path);
    free(dir);
    if (rc)
        pgcmk_tls_kmip_release(kt);
    return rc;
}

void
pgcmk_tls_kmip_release(struct pgcmk_kmip_tls *kt)
{
    if (kt == NULL)
        return;
    free(kt->ca_path);
    free(kt->ca_pem);
    free(kt->ec_cert_pem);
    pgcmk_secret_free(kt->ec_key_pem, kt->ec_key_pem ? strlen(kt->ec_key_pem) : 0);
    free(kt->rsa_cert_pem);
    pgcmk_secret_free(kt->rsa_key_pem, kt->rsa_key_pem ? strlen(kt->rsa_key_pem) : 0);
    free(kt->bundle_path);
    free(kt->bundle_pem);
    memset(kt, 0, sizeof(*kt));
}

/* A P-256 leaf signed by pgcmk's CA: a client's (sans NULL) or a server's with sans. */
static int
tls_issue_leaf(const char *data_dir, const char *cn, const char *sans, int64_t now_ms, long days,
               struct pgcmk_client_cert *out, struct pgcmk_err *err)
{
    char *ca_path = pgcmk_xasprintf("%s/ca.pem", data_dir);
    char *ca_key_path = pgcmk_xasprintf("%s/ca-key.pem", data_dir);
    char *ca_pem = NULL, *ca_key_pem = NULL;
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *ca_key = NULL, *pk = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const ASN1_INTEGER *serial;
    BIGNUM *bn = NULL;
    char *hex = NULL;
    time_t now = (time_t)(now_ms / 1000), wall = time(NULL);
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if ((ca_pem = tls_read_file(ca_path)) == NULL ||
        (ca_key_pem = tls_read_file(ca_key_path)) == NULL ||
        (ca = tls_parse_cert(ca_pem)) == NULL || (ca_key = tls_parse_key(ca_key_pem)) == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot load pgcmk's CA from %.200s", data_dir);
        goto done;
    }
    /* Valid from before both clocks (the virtual one may run ahead) for `days` on the virtual
     * clock: the listener checks the end on the virtual clock. */
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    x = pk ? tls_make_cert_at(pk, cn, sans, ca, ca_key, (now < wall ? now : wall) - 3600,
                              now + days * 86400L, sans ? TLS_KIND_SERVER : TLS_KIND_CLIENT)
           : NULL;
    if (x == NULL || (out->cert_pem = tls_pem_cert(x)) == NULL ||
        (out->key_pem = tls_pem_key(pk)) == NULL || X509_digest(x, EVP_sha256(), md, &mdlen) != 1 ||
        mdlen != 32 || (serial = X509_get0_serialNumber(x)) == NULL ||
        (bn = ASN1_INTEGER_to_BN(serial, NULL)) == NULL || (hex = BN_bn2hex(bn)) == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot issue a %s certificate",
                      sans ? "server" : "client");
        goto done;
    }
    for (unsigned i = 0; i < 32; i++)
        snprintf(out->fingerprint + 2 * i, 3, "%02x", md[i]);
    snprintf(out->serial, sizeof(out->serial), "%s", hex);
    out->not_after_ms = (int64_t)(now + days * 86400L) * 1000;
    rc = 0;
done:
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(pk);
    EVP_PKEY_free(ca_key);
    ERR_clear_error();
    free(ca_pem);
    pgcmk_secret_free(ca_key_pem, ca_key_pem ? strlen(ca_key_pem) : 0);
    free(ca_path);
    free(ca_key_path);
    if (rc)
        pgcmk_client_cert_release(out);
    return rc;
}

int
pgcmk_tls_issue_client(const char *data_dir, const char *cn, int64_t now_ms, long days,
                       struct pgcmk_client_cert *out, struct pgcmk_err *err)
{
    return tls_issue_leaf(data_dir, cn, NULL, now_ms, days, out, err);
}

int
pgcmk_tls_issue_server(const char *data_dir, const char *cn, const char *sans, int64_t now_ms,
                       long days, struct pgcmk_client_cert *out, struct pgcmk_err *err)
{
    if (sans == NULL || *sans == 0)
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "a server certificate needs its names");
    return tls_issue_leaf(data_dir, cn, sans, now_ms, days, out, err);
}

void
pgcmk_client_cert_release(struct pgcmk_client_cert *c)
{
    if (c == NULL)
        return;
    free(c->cert_pem);
    pgcmk_secret_free(c->key_pem, c->key_pem ? strlen(c->key_pem) : 0);
    memset(c, 0, sizeof(*c));
}
