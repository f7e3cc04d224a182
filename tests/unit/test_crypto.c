/* test_crypto.c - base64/base64url, SHA-256, AES-256-GCM, the local CA and server certificate,
 * RSA keys (OAEP and PKCS#1 encryption, RS/PS signatures), JWK thumbprints and RS256 JWTs, the
 * per-thread encrypt/decrypt contexts, and v4 UUIDs. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pgcmk/crypto.h"
#include "pgcmk/pkey.h"
#include "t.h"

static void
check_b64url(const char *in, const char *want)
{
    char *enc = pgcmk_b64url_encode(in, strlen(in));
    unsigned char *dec = NULL;
    size_t n = 0;

    CHECK_STR(enc, want);
    CHECK(pgcmk_b64url_decode(enc, strlen(enc), &dec, &n) == 0);
    CHECK(n == strlen(in) && memcmp(dec, in, n) == 0);
    free(enc);
    free(dec);
}

static void
check_b64(const char *in, const char *want)
{
    char *enc = pgcmk_b64_encode(in, strlen(in));
    unsigned char *dec = NULL;
    size_t n = 0;

    CHECK_STR(enc, want);
    CHECK(pgcmk_b64_decode(enc, strlen(enc), &dec, &n) == 0);
    CHECK(n == strlen(in) && memcmp(dec, in, n) == 0);
    free(enc);
    free(dec);
}

/* 1 when both decoders refuse `s` (the first `len` bytes) and leave *out NULL. */
static int
b64_rejects(const char *s, size_t len)
{
    unsigned char *raw = (unsigned char *)"sentinel";
    size_t raw_len = 99;
    int ok = pgcmk_b64url_decode(s, len, &raw, &raw_len) == -1 && raw == NULL && raw_len == 0;

    raw = (unsigned char *)"sentinel";
    ok = ok && pgcmk_b64_decode(s, len, &raw, &raw_len) == -1 && raw == NULL;
    return ok;
}

static void
test_b64(void)
{
    unsigned char *raw = NULL, bin[256];
    size_t raw_len = 0;
    char *b;

    /* RFC 4648 section 10 vectors, base64url without padding */
    check_b64url("", "");
    check_b64url("f", "Zg");
    check_b64url("fo", "Zm8");
    check_b64url("foo", "Zm9v");
    check_b64url("foob", "Zm9vYg");
    check_b64url("fooba", "Zm9vYmE");
    check_b64url("foobar", "Zm9vYmFy");
    /* and standard base64 with padding */
    check_b64("", "");
    check_b64("f", "Zg==");
    check_b64("fo", "Zm8=");
    check_b64("foo", "Zm9v");
    check_b64("foobar", "Zm9vYmFy");
    /* len 0 decodes to an empty, freeable buffer */
    CHECK(pgcmk_b64url_decode("", 0, &raw, &raw_len) == 0 && raw != NULL && raw_len == 0);
    free(raw);
    CHECK(pgcmk_b64url_decode("Zm9vYmFy-ignored", 8, &raw, &raw_len) == 0 && raw_len == 6 &&
          memcmp(raw, "foobar", 6) == 0);
    free(raw);
    /* padding is optional, but when present it must be exact */
    CHECK(pgcmk_b64url_decode("Zm8=", 4, &raw, &raw_len) == 0 && raw_len == 2);
    free(raw);
    CHECK(pgcmk_b64url_decode("Zg==", 4, &raw, &raw_len) == 0 && raw_len == 1);
    free(raw);
    CHECK(pgcmk_b64_decode("Zm8", 3, &raw, &raw_len) == 0 && raw_len == 2);
    free(raw);
    CHECK(b64_rejects("=", 1));
    CHECK(b64_rejects("==", 2));
    CHECK(b64_rejects("====", 4));
    CHECK(b64_rejects("Zg=", 3));
    CHECK(b64_rejects("Zg===", 5));
    CHECK(b64_rejects("Zg=====", 7));
    CHECK(b64_rejects("Zm9v=", 5));
    CHECK(b64_rejects("Zm8==", 5));
    CHECK(b64_rejects("Zm=8", 4));
    CHECK(b64_rejects("Z", 1));
    CHECK(b64_rejects("Zm9vY", 5));
    /* non-canonical: the unused low bits of the last character are set */
    CHECK(b64_rejects("Zh", 2));
    CHECK(b64_rejects("Zm9=", 4));
    /* characters outside the alphabet, including whitespace and an embedded NUL */
    CHECK(b64_rejects("Zm 8", 4));
    CHECK(b64_rejects("Zm8\n", 4));
    CHECK(b64_rejects("Zm.8", 4));
    CHECK(b64_rejects("Zm9v\0Zm9v", 9));
    CHECK(b64_rejects("Zm\xc3\xa9", 4));
    /* each alphabet refuses the other's two extra characters */
    CHECK(pgcmk_b64url_decode("Zm+v", 4, &raw, &raw_len) == -1);
    CHECK(pgcmk_b64url_decode("Zm/v", 4, &raw, &raw_len) == -1);
    CHECK(pgcmk_b64_decode("Zm-v", 4, &raw, &raw_len) == -1);
    CHECK(pgcmk_b64_decode("Zm_v", 4, &raw, &raw_len) == -1);
    bin[0] = 0xfb;
    bin[1] = 0xff;
    bin[2] = 0xfe;
    b = pgcmk_b64url_encode(bin, 3);
    CHECK_STR(b, "-__-");
    free(b);
    b = pgcmk_b64_encode(bin, 3);
    CHECK_STR(b, "+//+");
    free(b);
    /* every byte value and every tail length round-trips through both alphabets */
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (unsigned char)(255 - i);
    for (size_t len = 0; len <= sizeof(bin); len += (len < 8 ? 1 : 37)) {
        char *u = pgcmk_b64url_encode(bin, len), *s = pgcmk_b64_encode(bin, len);
        int ok;

        CHECK(strchr(u, '=') == NULL && strlen(s) % 4 == 0);
        ok = pgcmk_b64url_decode(u, strlen(u), &raw, &raw_len) == 0 && raw_len == len &&
             memcmp(raw, bin, len) == 0;
        free(raw);
        CHECK(ok);
        ok = pgcmk_b64_decode(s, strlen(s), &raw, &raw_len) == 0 && raw_len == len &&
             memcmp(raw, bin, len) == 0;
        free(raw);
        CHECK(ok);
        free(u);
        free(s);
    }
}

static void
test_sha256(void)
{
    static const unsigned char abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                          0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                          0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                          0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    static const unsigned char empty[32] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
                                            0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
                                            0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
                                            0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    unsigned char md[32];
    char *b;

    /* FIPS 180-2 "abc", and the empty message */
    pgcmk_sha256("abc", 3, md);
    CHECK(memcmp(md, abc, 32) == 0);
    pgcmk_sha256("", 0, md);
    CHECK(memcmp(md, empty, 32) == 0);
    b = pgcmk_b64url_encode(abc, 32);
    CHECK_STR(b, "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    free(b);
}

static void
test_aead(void)
{
    static const unsigned char key[32] = {1, 2, 3};
    unsigned char other[32] = {9}, *sealed, *again, *plain = NULL;
    size_t sealed_len, again_len, plain_len = 0;

    CHECK(pgcmk_random(other + 1, sizeof(other) - 1) == 0);
    CHECK(pgcmk_aead_seal(key, "aad", 3, "hello", 5, &sealed, &sealed_len) == 0);
    CHECK(sealed_len == 5 + PGCMK_AEAD_OVERHEAD);
    CHECK(pgcmk_aead_open(key, "aad", 3, sealed, sealed_len, &plain, &plain_len) == 0);
    CHECK(plain_len == 5 && memcmp(plain, "hello", 5) == 0 && plain[5] == '\0');
    free(plain);
    /* a fresh IV each time: the same input never seals to the same bytes */
    CHECK(pgcmk_aead_seal(key, "aad", 3, "hello", 5, &again, &again_len) == 0);
    CHECK(again_len == sealed_len && memcmp(again, sealed, 12) != 0 &&
          memcmp(again, sealed, sealed_len) != 0);
    free(again);
    /* wrong AAD, missing AAD, wrong key */
    plain = (unsigned char *)"x";
    CHECK(pgcmk_aead_open(key, "aae", 3, sealed, sealed_len, &plain, &plain_len) == -1);
    CHECK(plain == NULL && plain_len == 0);
    CHECK(pgcmk_aead_open(key, NULL, 0, sealed, sealed_len, &plain, &plain_len) == -1);
    CHECK(pgcmk_aead_open(other, "aad", 3, sealed, sealed_len, &plain, &plain_len) == -1);
    /* any flipped bit (IV, ciphertext, tag) makes open fail */
    {
        int all = 1;

        for (size_t i = 0; i < sealed_len; i++) {
            sealed[i] ^= 0x01;
            if (pgcmk_aead_open(key, "aad", 3, sealed, sealed_len, &plain, &plain_len) != -1) {
                all = 0;
                free(plain);
            }
            sealed[i] ^= 0x01;
        }
        CHECK(all);
    }
    /* truncated or extended input */
    CHECK(pgcmk_aead_open(key, "aad", 3, sealed, sealed_len - 1, &plain, &plain_len) == -1);
    CHECK(pgcmk_aead_open(key, "aad", 3, sealed, PGCMK_AEAD_OVERHEAD - 1, &plain, &plain_len) ==
          -1);
    CHECK(pgcmk_aead_open(key, "aad", 3, sealed, 0, &plain, &plain_len) == -1);
    again = pgcmk_xmalloc(sealed_len + 1);
    memcpy(again, sealed, sealed_len);
    again[sealed_len] = 0;
    CHECK(pgcmk_aead_open(key, "aad", 3, again, sealed_len + 1, &plain, &plain_len) == -1);
    free(again);
    free(sealed);
    /* empty plaintext and empty AAD still authenticate */
    CHECK(pgcmk_aead_seal(key, NULL, 0, "", 0, &sealed, &sealed_len) == 0);
    CHECK(sealed_len == PGCMK_AEAD_OVERHEAD);
    CHECK(pgcmk_aead_open(key, NULL, 0, sealed, sealed_len, &plain, &plain_len) == 0 &&
          plain_len == 0);
    free(plain);
    CHECK(pgcmk_aead_open(key, "a", 1, sealed, sealed_len, &plain, &plain_len) == -1);
    sealed[sealed_len - 1] ^= 0x80;
    CHECK(pgcmk_aead_open(key, NULL, 0, sealed, sealed_len, &plain, &plain_len) == -1);
    free(sealed);
}

static X509 *
read_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

    BIO_free(b);
    return x;
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (f == NULL)
        return NULL;
    buf = pgcmk_xcalloc(1, 64 * 1024);
    n = fread(buf, 1, 64 * 1024 - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int
spit(const char *path, const char *data)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (f == NULL)
        return -1;
    ok = fputs(data, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static char *
path_in(const char *dir, const char *name)
{
    return pgcmk_xasprintf("%s/%s", dir, name);
}

static int
file_mode(const char *dir, const char *name)
{
    char *p = path_in(dir, name);
    struct stat sb;
    int mode = stat(p, &sb) == 0 ? (int)(sb.st_mode & 07777) : -1;

    free(p);
    return mode;
}

/* 1 when `leaf` chains to the CA in ca_file. */
static int
chain_ok(X509 *leaf, const char *ca_file)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = store && ctx && X509_STORE_load_file(store, ca_file) == 1 &&
             X509_STORE_CTX_init(ctx, store, leaf, NULL) == 1 && X509_verify_cert(ctx) == 1;

    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return ok;
}

/* Days from now until the certificate's notAfter. */
static int
days_left(X509 *x)
{
    int days = -1, secs = 0;

    if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) != 1)
        return -1;
    return days;
}

static int
has_cn(X509 *x, const char *want)
{
    char cn[128];

    return X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) >
               0 &&
           strcmp(cn, want) == 0;
}

static int
is_p256(EVP_PKEY *k)
{
    char group[64];

    return k && EVP_PKEY_is_a(k, "EC") &&
           EVP_PKEY_get_group_name(k, group, sizeof(group), NULL) == 1 &&
           strcmp(group, "prime256v1") == 0;
}

/* 1 when the extension is critical, 0 when not, -1 when absent. */
static int
ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);

    return i < 0 ? -1 : X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

/* Whether the subjectAltName has a DNS name or an IP address (text) equal to `want`. */
static int
has_san(X509 *x, int type, const char *want)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    ASN1_OCTET_STRING *ip = type == GEN_IPADD ? a2i_IPADDRESS(want) : NULL;
    int found = 0;

    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

        if (gn->type != type)
            continue;
        if (type == GEN_DNS)
            found |= (size_t)ASN1_STRING_length(gn->d.dNSName) == strlen(want) &&
                     memcmp(ASN1_STRING_get0_data(gn->d.dNSName), want, strlen(want)) == 0;
        else if (ip)
            found |= ASN1_OCTET_STRING_cmp(gn->d.iPAddress, ip) == 0;
    }
    ASN1_OCTET_STRING_free(ip);
    GENERAL_NAMES_free(names);
    return found;
}

static int
count_sans(X509 *x)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int n = names ? sk_GENERAL_NAME_num(names) : -1;

    GENERAL_NAMES_free(names);
    return n;
}

/* Writes DIR/server.pem + server-key.pem: a localhost certificate signed by DIR's CA whose
 * validity ends `end_days` from now (negative: already expired). */
static int
plant_server_cert(const char *dir, long end_days)
{
    char *ca_pem = NULL, *ca_key_pem = NULL, *p;
    X509 *ca = NULL, *x = X509_new();
    EVP_PKEY *ca_key = NULL, *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509V3_CTX v3;
    X509_EXTENSION *ext = NULL;
    BIO *b = NULL;
    FILE *f;
    int ok = 0;

    p = path_in(dir, "ca.pem");
    ca_pem = slurp(p);
    free(p);
    p = path_in(dir, "ca-key.pem");
    ca_key_pem = slurp(p);
    free(p);
    if (!ca_pem || !ca_key_pem || !x || !k || (ca = read_cert(ca_pem)) == NULL ||
        (b = BIO_new_mem_buf(ca_key_pem, -1)) == NULL ||
        (ca_key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) == NULL)
        goto out;
    X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
    if (X509_set_version(x, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 7) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), (end_days < 1 ? end_days - 30 : -1) * 86400L) ==
            NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), end_days * 86400L) == NULL ||
        X509_set_pubkey(x, k) != 1 ||
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"localhost", -1, -1, 0) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 ||
        (ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
                                   "DNS:localhost,DNS:*.localhost,DNS:*.vault.localhost,"
                                   "IP:127.0.0.1,IP:::1")) == NULL ||
        X509_add_ext(x, ext, -1) != 1 || X509_sign(x, ca_key, EVP_sha256()) <= 0)
        goto out;
    p = path_in(dir, "server.pem");
    f = fopen(p, "wb");
    free(p);
    ok = f && PEM_write_X509(f, x) == 1;
    if (f)
        ok = fclose(f) == 0 && ok;
    p = path_in(dir, "server-key.pem");
    f = fopen(p, "wb");
    free(p);
    ok = ok && f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
    if (f)
        ok = fclose(f) == 0 && ok;
out:
    X509_EXTENSION_free(ext);
    BIO_free(b);
    X509_free(ca);
    X509_free(x);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(k);
    free(ca_pem);
    if (ca_key_pem)
        pgcmk_secret_free(ca_key_pem, strlen(ca_key_pem));
    return ok;
}

/* Runs bootstrap on dir and returns the leaf; the caller checks and frees. */
static X509 *
bootstrap_leaf(const char *dir, struct pgcmk_tls *tls)
{
    struct pgcmk_err err;

    memset(&err, 0, sizeof(err));
    if (pgcmk_tls_bootstrap(dir, NULL, NULL, tls, &err) != 0) {
        fprintf(stderr, "bootstrap %s: %s\n", dir, err.message);
        return NULL;
    }
    return read_cert(tls->cert_pem);
}

static void
test_tls_generate(const char *base)
{
    char *dir = path_in(base, "data"), *ca_file, *first, *ca_first;
    struct pgcmk_tls tls, again;
    X509 *leaf, *ca, *chain_ca;
    EVP_PKEY *k;
    BIO *b;

    /* the data directory does not exist yet: bootstrap creates it 0700 */
    leaf = bootstrap_leaf(dir, &tls);
    CHECK(leaf != NULL);
    if (leaf == NULL) {
        free(dir);
        return;
    }
    CHECK(file_mode(dir, ".") == 0700);
    CHECK(tls.created == 1);
    ca_file = path_in(dir, "ca.pem");
    CHECK_STR(tls.ca_path, ca_file);
    CHECK(access(ca_file, R_OK) == 0);
    CHECK(file_mode(dir, "ca-key.pem") == 0600);
    CHECK(file_mode(dir, "server-key.pem") == 0600);
    CHECK(file_mode(dir, "server.pem") > 0 && file_mode(dir, "ca.pem") > 0);
    CHECK(file_mode(dir, "ca.pem.tmp") == -1 && file_mode(dir, "server-key.pem.tmp") == -1);
    /* the chain: leaf first, then exactly the CA in ca.pem */
    ca_first = slurp(ca_file);
    CHECK(ca_first && strstr(tls.cert_pem, ca_first) != NULL &&
          strcmp(tls.cert_pem + strlen(tls.cert_pem) - strlen(ca_first), ca_first) == 0);
    CHECK(strncmp(tls.cert_pem, "-----BEGIN CERTIFICATE-----", 27) == 0);
    chain_ca = read_cert(strstr(tls.cert_pem, "-----END CERTIFICATE-----") + 25);
    ca = read_cert(ca_first ? ca_first : "");
    CHECK(ca && chain_ca && X509_cmp(ca, chain_ca) == 0);
    CHECK(chain_ok(leaf, ca_file));
    /* the CA */
    CHECK(ca && X509_check_ca(ca) == 1 && has_cn(ca, "pgcmk local CA"));
    CHECK(ca && ext_critical(ca, NID_basic_constraints) == 1 &&
          ext_critical(ca, NID_key_usage) == 1);
    CHECK(ext_critical(leaf, NID_basic_constraints) == 0 &&
          ext_critical(leaf, NID_subject_alt_name) == 0);
    CHECK(ca && (X509_get_key_usage(ca) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) ==
                    (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    CHECK(ca && X509_get0_subject_key_id(ca) != NULL);
    CHECK(ca && days_left(ca) >= 3649 && days_left(ca) <= 3650);
    CHECK(ca && is_p256(X509_get0_pubkey(ca)));
    /* the server certificate */
    CHECK(has_cn(leaf, "localhost") && X509_check_ca(leaf) == 0);
    CHECK(X509_check_purpose(leaf, X509_PURPOSE_SSL_SERVER, 0) == 1);
    CHECK(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE);
    CHECK(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER);
    CHECK(X509_get0_authority_key_id(leaf) && X509_get0_subject_key_id(ca) &&
          ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf), X509_get0_subject_key_id(ca)) ==
              0);
    CHECK(days_left(leaf) >= 824 && days_left(leaf) <= 825);
    CHECK(is_p256(X509_get0_pubkey(leaf)));
    {
        const ASN1_INTEGER *sn = X509_get0_serialNumber(leaf);
        BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);

        CHECK(bn && !BN_is_negative(bn) && BN_num_bytes(bn) >= 14 && BN_num_bytes(bn) <= 16);
        BN_free(bn);
    }
    CHECK(X509_check_host(leaf, "localhost", 0, 0, NULL) == 1);
    /* the SAN list, entry by entry */
    CHECK(has_san(leaf, GEN_DNS, "localhost"));
    CHECK(has_san(leaf, GEN_DNS, "*.localhost"));
    CHECK(has_san(leaf, GEN_DNS, "*.vault.localhost"));
    CHECK(has_san(leaf, GEN_IPADD, "127.0.0.1"));
    CHECK(has_san(leaf, GEN_IPADD, "::1"));
    CHECK(count_sans(leaf) == 5);
    /* OpenSSL itself will not match a wildcard with a single label after it ("*.localhost"),
     * so the names clients use are localhost and <vault>.vault.localhost */
    CHECK(X509_check_host(leaf, "kv1.vault.localhost", 0, 0, NULL) == 1);
    CHECK(X509_check_host(leaf, "example.com", 0, 0, NULL) != 1);
    CHECK(X509_check_host(leaf, "a.b.c.localhost", 0, 0, NULL) != 1);
    CHECK(X509_check_ip_asc(leaf, "127.0.0.1", 0) == 1);
    CHECK(X509_check_ip_asc(leaf, "::1", 0) == 1);
    CHECK(X509_check_ip_asc(leaf, "10.0.0.1", 0) != 1);
    /* the key matches the leaf */
    CHECK(strstr(tls.key_pem, "PRIVATE KEY") != NULL && strstr(tls.key_pem, "ENCRYPTED") == NULL);
    b = BIO_new_mem_buf(tls.key_pem, -1);
    k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    CHECK(k && X509_check_private_key(leaf, k) == 1);
    EVP_PKEY_free(k);
    BIO_free(b);
    X509_free(leaf);
    X509_free(ca);
    X509_free(chain_ca);

    /* a second start reuses everything */
    first = pgcmk_xstrdup(tls.cert_pem);
    leaf = bootstrap_leaf(dir, &again);
    CHECK(leaf && again.created == 0 && strcmp(first, again.cert_pem) == 0 &&
          strcmp(tls.key_pem, again.key_pem) == 0);
    X509_free(leaf);
    pgcmk_tls_release(&again);
    pgcmk_tls_release(&tls);
    /* release is safe on a released (zeroed) struct */
    pgcmk_tls_release(&tls);
    CHECK(tls.cert_pem == NULL && tls.key_pem == NULL && tls.ca_path == NULL);
    free(first);
    free(ca_first);
    free(ca_file);
    free(dir);
}

/* The server certificate is re-issued from the same CA when it is missing, expired, close to
 * expiry or from another CA; the CA never changes. */
static void
test_tls_reissue(const char *base)
{
    char *dir = path_in(base, "re"), *other = path_in(base, "other"), *ca_file, *ca_pem, *p, *q;
    char *before;
    struct pgcmk_tls tls, o;
    X509 *leaf;

    leaf = bootstrap_leaf(dir, &tls);
    X509_free(leaf);
    ca_file = path_in(dir, "ca.pem");
    ca_pem = slurp(ca_file);
    CHECK(ca_pem != NULL);
    before = pgcmk_xstrdup(tls.cert_pem ? tls.cert_pem : "");
    pgcmk_tls_release(&tls);

    /* 1. server-key.pem is gone */
    p = path_in(dir, "server-key.pem");
    CHECK(unlink(p) == 0);
    free(p);
    leaf = bootstrap_leaf(dir, &tls);
    CHECK(leaf && tls.created == 0 && strcmp(before, tls.cert_pem) != 0);
    CHECK(leaf && chain_ok(leaf, ca_file) && file_mode(dir, "server-key.pem") == 0600);
    X509_free(leaf);
    pgcmk_tls_release(&tls);

    /* 2. expired, and 3. expiring in 10 days */
    for (long end = -1; end <= 10; end += 11) {
        CHECK(plant_server_cert(dir, end));
        p = path_in(dir, "server.pem");
        q = slurp(p);
        free(p);
        leaf = bootstrap_leaf(dir, &tls);
        CHECK(leaf && q && strncmp(tls.cert_pem, q, strlen(q)) != 0);
        CHECK(leaf && days_left(leaf) >= 824 && chain_ok(leaf, ca_file));
        X509_free(leaf);
        pgcmk_tls_release(&tls);
        free(q);
    }
    /* a planted certificate with 100 days left is still good and is kept */
    CHECK(plant_server_cert(dir, 100));
    p = path_in(dir, "server.pem");
    q = slurp(p);
    free(p);
    leaf = bootstrap_leaf(dir, &tls);
    CHECK(leaf && q && strncmp(tls.cert_pem, q, strlen(q)) == 0);
    X509_free(leaf);
    pgcmk_tls_release(&tls);
    free(q);

    /* 4. server.pem + key from another CA: a valid pair that does not chain to ca.pem */
    leaf = bootstrap_leaf(other, &o);
    X509_free(leaf);
    p = path_in(dir, "server.pem");
    q = path_in(dir, "server-key.pem");
    CHECK(o.cert_pem && spit(p, o.cert_pem) == 0 && spit(q, o.key_pem) == 0);
    free(p);
    free(q);
    leaf = bootstrap_leaf(dir, &tls);
    CHECK(leaf && tls.created == 0 && strcmp(tls.cert_pem, o.cert_pem) != 0);
    CHECK(leaf && chain_ok(leaf, ca_file));
    X509_free(leaf);
    pgcmk_tls_release(&tls);
    pgcmk_tls_release(&o);

    /* the CA file never changed */
    p = slurp(ca_file);
    CHECK(p && ca_pem && strcmp(p, ca_pem) == 0);
    free(p);
    free(before);
    free(ca_pem);
    free(ca_file);
    free(other);
    free(dir);
}

static void
test_tls_errors(const char *base)
{
    char *dir = path_in(base, "err"), *cert, *key, *ca_key, *bad, *enc, *p;
    struct pgcmk_tls tls, own;
    struct pgcmk_err err;
    X509 *leaf;

    leaf = bootstrap_leaf(dir, &tls);
    X509_free(leaf);
    cert = path_in(dir, "server.pem");
    key = path_in(dir, "server-key.pem");
    ca_key = path_in(dir, "ca-key.pem");

    /* bring your own certificate and key */
    memset(&own, 0x5a, sizeof(own));
    CHECK(pgcmk_tls_bootstrap(dir, cert, key, &own, &err) == 0);
    CHECK(own.ca_path == NULL && own.created == 0 && own.cert_pem && own.key_pem);
    p = slurp(cert);
    CHECK(p && own.cert_pem && strcmp(p, own.cert_pem) == 0);
    free(p);
    pgcmk_tls_release(&own);
    /* data_dir is not used (nor created) with own files */
    p = path_in(base, "never-made");
    CHECK(pgcmk_tls_bootstrap(p, cert, key, &own, &err) == 0 && access(p, F_OK) != 0);
    pgcmk_tls_release(&own);
    free(p);

    /* one without the other */
    memset(&err, 0, sizeof(err));
    CHECK(pgcmk_tls_bootstrap(dir, cert, NULL, &own, &err) == -1);
    CHECK(err.code == PGCMK_E_INTERNAL && strstr(err.message, "--tls-key") != NULL);
    CHECK(own.cert_pem == NULL && own.key_pem == NULL && own.ca_path == NULL);
    CHECK(pgcmk_tls_bootstrap(dir, NULL, key, &own, &err) == -1 && err.message[0] != '\0');
    /* missing files name the file and the reason */
    memset(&err, 0, sizeof(err));
    CHECK(pgcmk_tls_bootstrap(dir, cert, "/nonexistent/key.pem", &own, &err) == -1);
    CHECK(strstr(err.message, "/nonexistent/key.pem") && strstr(err.message, "No such file"));
    CHECK(own.cert_pem == NULL && own.key_pem == NULL);
    memset(&err, 0, sizeof(err));
    CHECK(pgcmk_tls_bootstrap(dir, "/nonexistent/cert.pem", key, &own, &err) == -1);
    CHECK(strstr(err.message, "/nonexistent/cert.pem") != NULL);
    /* a directory is not a certificate */
    CHECK(pgcmk_tls_bootstrap(dir, dir, key, &own, &err) == -1 && err.message[0] != '\0');
    /* a key that does not match the certificate */
    memset(&err, 0, sizeof(err));
    CHECK(pgcmk_tls_bootstrap(dir, cert, ca_key, &own, &err) == -1);
    CHECK(strstr(err.message, "does not match") != NULL);
    /* files that are not PEM; the message never carries key bytes */
    bad = path_in(base, "bad.pem");
    CHECK(spit(bad, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n") == 0);
    memset(&err, 0, sizeof(err));
    CHECK(pgcmk_tls_bootstrap(dir, bad, key, &own, &err) == -1 &&
          strstr(err.message, "certificate") && strstr(err.message, "AAAA") == NULL);
    memset(&err, 0, sizeof(err));
    CHECK(pgcmk_tls_bootstrap(dir, cert, bad, &own, &err) == -1 &&
          strstr(err.message, "private key") && strstr(err.message, "AAAA") == NULL);
    /* an encrypted key fails instead of prompting on the terminal */
    enc = path_in(base, "enc-key.pem");
    {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        FILE *f = fopen(enc, "wb");

        CHECK(k && f &&
              PEM_write_PKCS8PrivateKey(f, k, EVP_aes_256_cbc(), "pw", 2, NULL, NULL) == 1);
        if (f)
            fclose(f);
        EVP_PKEY_free(k);
    }
    memset(&err, 0, sizeof(err));
    CHECK(pgcmk_tls_bootstrap(dir, cert, enc, &own, &err) == -1 &&
          strstr(err.message, "encrypted") != NULL);

    /* a data directory that cannot be made */
    memset(&err, 0, sizeof(err));
    CHECK(pgcmk_tls_bootstrap("/dev/null/pgcmk", NULL, NULL, &own, &err) == -1);
    CHECK(strstr(err.message, "/dev/null/pgcmk") != NULL && own.cert_pem == NULL);
    /* half a CA is never overwritten */
    CHECK(rename(ca_key, bad) == 0);
    memset(&err, 0, sizeof(err));
    CHECK(pgcmk_tls_bootstrap(dir, NULL, NULL, &own, &err) == -1);
    CHECK(strstr(err.message, "ca-key.pem") != NULL && own.cert_pem == NULL);
    CHECK(file_mode(dir, "ca-key.pem") == -1 && file_mode(dir, "ca.pem") > 0);
    /* a damaged CA key */
    CHECK(spit(ca_key, "not a key\n") == 0);
    memset(&err, 0, sizeof(err));
    CHECK(pgcmk_tls_bootstrap(dir, NULL, NULL, &own, &err) == -1);
    CHECK(strstr(err.message, "damaged") != NULL && strstr(err.message, "not a key") == NULL);

    pgcmk_tls_release(&tls);
    free(enc);
    free(bad);
    free(ca_key);
    free(key);
    free(cert);
    free(dir);
}

/* The KMIP listener's certificates and a KMIP client's credentials (pgcmk_tls_kmip_bootstrap,
 * pgcmk_tls_issue_client). */
static void
test_tls_kmip(const char *base)
{
    char *dir = path_in(base, "kmip-data"), *ca_file, *kdir;
    struct pgcmk_kmip_tls kt, again;
    struct pgcmk_client_cert cc, cc2;
    struct pgcmk_err err;
    X509 *x;
    EVP_PKEY *k;
    BIO *b;
    char cn[80];
    unsigned char md[32];
    unsigned int mdlen = 0;
    char fp[65];
    int64_t now = (int64_t)time(NULL) * 1000 + 86400000LL * 400; /* the virtual clock ahead */

    memset(&err, 0, sizeof(err));
    CHECK(mkdir(dir, 0700) == 0);
    /* Without the RSA pair: made on the spot for ECDSA, the RSA one left for later. */
    CHECK(pgcmk_tls_kmip_bootstrap(dir, 0, &kt, &err) == 0);
    CHECK(kt.ec_cert_pem && kt.ec_key_pem && kt.rsa_cert_pem == NULL && kt.rsa_key_pem == NULL);
    ca_file = path_in(dir, "ca.pem");
    kdir = path_in(dir, "kmip");
    CHECK(kt.ca_path && strcmp(kt.ca_path, ca_file) == 0);
    CHECK(file_mode(kdir, ".") == 0700 && file_mode(kdir, "server-key.pem") == 0600);
    CHECK(file_mode(kdir, "server-rsa-key.pem") == -1);
    x = read_cert(kt.ec_cert_pem);
    CHECK(x && chain_ok(x, ca_file) && X509_check_host(x, "localhost", 0, 0, NULL) == 1);
    CHECK(x && EVP_PKEY_is_a(X509_get0_pubkey(x), "EC") == 1);
    CHECK(x && (X509_get_extended_key_usage(x) & XKU_SSL_SERVER));
    X509_free(x);
    {
        char *bundle = slurp(kt.bundle_path);

        CHECK(bundle && strcmp(bundle, kt.bundle_pem) == 0);
        CHECK(bundle && strstr(bundle, kt.ca_pem) != NULL &&
              strncmp(bundle, kt.ec_cert_pem, 100) == 0);
        free(bundle);
    }
    /* With the RSA pair, and the ECDSA one reused. */
    CHECK(pgcmk_tls_kmip_bootstrap(dir, 1, &again, &err) == 0);
    CHECK(again.ec_cert_pem && strcmp(again.ec_cert_pem, kt.ec_cert_pem) == 0);
    CHECK(again.rsa_cert_pem && again.rsa_key_pem && file_mode(kdir, "server-rsa-key.pem") == 0600);
    x = again.rsa_cert_pem ? read_cert(again.rsa_cert_pem) : NULL;
    CHECK(x && chain_ok(x, ca_file) && EVP_PKEY_is_a(X509_get0_pubkey(x), "RSA") == 1 &&
          EVP_PKEY_get_bits(X509_get0_pubkey(x)) == 2048);
    X509_free(x);
    pgcmk_tls_kmip_release(&again);
    pgcmk_tls_kmip_release(&kt);

    /* A client: CN, EKU clientAuth only, from the CA, the fingerprint of its DER, the key. */
    CHECK(pgcmk_tls_issue_client(dir, "jane_doe", now, 825, &cc, &err) == 0);
    x = cc.cert_pem ? read_cert(cc.cert_pem) : NULL;
    CHECK(x && chain_ok(x, ca_file));
    CHECK(x &&
          X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) > 0 &&
          strcmp(cn, "jane_doe") == 0);
    CHECK(x && (X509_get_extension_flags(x) & EXFLAG_XKUSAGE) &&
          X509_get_extended_key_usage(x) == XKU_SSL_CLIENT);
    CHECK(x && X509_digest(x, EVP_sha256(), md, &mdlen) == 1 && mdlen == 32);
    for (unsigned i = 0; i < 32; i++)
        snprintf(fp + 2 * i, 3, "%02x", md[i]);
    CHECK(strcmp(fp, cc.fingerprint) == 0 && cc.serial[0] != '\0');
    CHECK(cc.not_after_ms == (now / 1000 + 825 * 86400LL) * 1000);
    CHECK(x && X509_cmp_current_time(X509_get0_notBefore(x)) < 0); /* valid now on the wall */
    b = BIO_new_mem_buf(cc.key_pem, -1);
    k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    CHECK(k && x && X509_check_private_key(x, k) == 1 && EVP_PKEY_is_a(k, "EC") == 1);
    EVP_PKEY_free(k);
    BIO_free(b);
    X509_free(x);
    /* Each call a new key and certificate. */
    CHECK(pgcmk_tls_issue_client(dir, "jane_doe", now, 825, &cc2, &err) == 0);
    CHECK(strcmp(cc.fingerprint, cc2.fingerprint) != 0 && strcmp(cc.key_pem, cc2.key_pem) != 0);
    pgcmk_client_cert_release(&cc2);
    pgcmk_client_cert_release(&cc);
    CHECK(cc.cert_pem == NULL && cc.key_pem == NULL);
    /* No CA there: an error, nothing issued. */
    CHECK(pgcmk_tls_issue_client(base, "x", now, 1, &cc, &err) == -1 && cc.cert_pem == NULL);
    free(kdir);
    free(ca_file);
    free(dir);
}

static void
test_tls(void)
{
    char base[64] = "/tmp/pgcmk-tls-XXXXXX", cmd[128];
    mode_t old = umask(022);

    CHECK(mkdtemp(base) != NULL);
    test_tls_generate(base);
    test_tls_reissue(base);
    test_tls_kmip(base);
    /* with umask 0 the keys are still 0600 and the data directory 0700 */
    umask(0);
    test_tls_errors(base);
    CHECK(file_mode(base, "err/server-key.pem") == 0600 && file_mode(base, "err") == 0700);
    umask(old);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
    CHECK(system(cmd) == 0);
}

static void
test_rsa(void)
{
    static const char *const algs[] = {"RSA1_5", "RSA-OAEP", "RSA-OAEP-256"};
    static const char *const sigs[] = {"RS256", "PS256"};
    struct pgcmk_pkey *k = NULL, *pub = NULL, *again = NULL;
    unsigned char dek[32], digest[32], *ct, *pt, *sig;
    size_t ct_len, pt_len, sig_len;
    char *pem, *tp1, *tp2, *tok;
    struct pgcmk_err err;
    json_t *claims, *got = NULL, *jwk;

    CHECK(pgcmk_pkey_rsa_new(1024, &k) == -1);
    CHECK(pgcmk_pkey_rsa_new(2048, &k) == 0 && pgcmk_pkey_bits(k) == 2048);
    CHECK(pgcmk_pkey_has_private(k) == 1);
    CHECK(pgcmk_random(dek, sizeof(dek)) == 0);
    for (size_t i = 0; i < 3; i++) {
        CHECK(pgcmk_pkey_encrypt(k, algs[i], dek, sizeof(dek), &ct, &ct_len) == 0 && ct_len == 256);
        CHECK(pgcmk_pkey_decrypt(k, algs[i], ct, ct_len, &pt, &pt_len) == 0);
        CHECK(pt_len == 32 && memcmp(pt, dek, 32) == 0);
        free(pt);
        ct[10] ^= 1;
        pt = NULL;
        CHECK(pgcmk_pkey_decrypt(k, algs[i], ct, ct_len, &pt, &pt_len) == -1 || pt_len != 32 ||
              memcmp(pt, dek, 32) != 0);
        free(pt);
        free(ct);
    }
    CHECK(pgcmk_pkey_crypt_alg_ok("RSA-OAEP-512") == 0);
    CHECK(pgcmk_pkey_encrypt(k, "bogus", dek, 32, &ct, &ct_len) == -1);
    pgcmk_sha256("abc", 3, digest);
    for (size_t i = 0; i < 2; i++) {
        CHECK(pgcmk_pkey_sign(k, sigs[i], digest, 32, &sig, &sig_len) == 0);
        CHECK(pgcmk_pkey_verify(k, sigs[i], digest, 32, sig, sig_len) == 0);
        digest[0] ^= 1;
        CHECK(pgcmk_pkey_verify(k, sigs[i], digest, 32, sig, sig_len) == -1);
        digest[0] ^= 1;
        free(sig);
    }
    CHECK(pgcmk_pkey_sign_alg_ok("RS384", 32) == 0 && pgcmk_pkey_sign_alg_ok("RS384", 48) == 1);
    /* PEM round trip keeps the key; thumbprints agree */
    pem = pgcmk_pkey_private_pem(k);
    CHECK(pem && strstr(pem, "PRIVATE KEY"));
    CHECK(pgcmk_pkey_from_pem(pem, strlen(pem), &again) == 0);
    tp1 = pgcmk_pkey_thumbprint(k);
    tp2 = pgcmk_pkey_thumbprint(again);
    CHECK_STR(tp1, tp2);
    jwk = pgcmk_pkey_public_jwk(k, "kid1");
    CHECK_STR(json_string_value(json_object_get(jwk, "e")), "AQAB");
    CHECK_STR(json_string_value(json_object_get(jwk, "alg")), "RS256");
    json_decref(jwk);
    /* JWT: sign, verify, reject tampering and wrong keys */
    claims = json_pack("{s:s, s:i}", "aud", "https://vault.azure.net", "exp", 4102444800);
    tok = pgcmk_jwt_sign(k, tp1, claims);
    CHECK(tok != NULL);
    CHECK(pgcmk_jwt_verify(again, tp1, tok, &got, &err) == 0);
    CHECK_STR(json_string_value(json_object_get(got, "aud")), "https://vault.azure.net");
    json_decref(got);
    CHECK(pgcmk_jwt_verify(again, "other-kid", tok, &got, &err) == -1 && got == NULL);
    tok[strlen(tok) - 3] = tok[strlen(tok) - 3] == 'A' ? 'B' : 'A';
    CHECK(pgcmk_jwt_verify(again, tp1, tok, &got, &err) == -1);
    CHECK(pgcmk_jwt_verify(again, NULL, "a.b", &got, &err) == -1);
    CHECK(pgcmk_jwt_verify(again, NULL, "", &got, &err) == -1);
    {
        /* alg "none" is never trusted */
        char *h = pgcmk_b64url_encode("{\"alg\":\"none\"}", 14);
        char *bad = pgcmk_xasprintf("%s.e30.", h);

        CHECK(pgcmk_jwt_verify(again, NULL, bad, &got, &err) == -1);
        CHECK(strstr(err.message, "RS256") != NULL);
        free(h);
        free(bad);
    }
    free(tok);
    json_decref(claims);
    pgcmk_secret_free(pem, strlen(pem));
    free(tp1);
    free(tp2);
    pgcmk_pkey_free(k);
    pgcmk_pkey_free(again);
    pgcmk_pkey_free(pub);
}

/* ---- per-thread OAEP contexts (src/crypto/pkey.c) ------------------------------------------ */

/* Encrypts a fresh DEK under k with alg and decrypts it again; 1 when the round trip holds. */
static int
rsa_round_trip(struct pgcmk_pkey *k, const char *alg)
{
    unsigned char dek[32], *ct = NULL, *pt = NULL;
    size_t ct_len = 0, pt_len = 0;
    int ok = pgcmk_random(dek, sizeof(dek)) == 0 &&
             pgcmk_pkey_encrypt(k, alg, dek, sizeof(dek), &ct, &ct_len) == 0 &&
             pgcmk_pkey_decrypt(k, alg, ct, ct_len, &pt, &pt_len) == 0 && pt_len == 32 &&
             memcmp(pt, dek, 32) == 0;

    free(ct);
    free(pt);
    return ok;
}

struct rsa_worker {
    struct pgcmk_pkey *k;
    int ok;
};

static void *
rsa_worker_run(void *arg)
{
    struct rsa_worker *w = arg;
    unsigned char md[32];

    w->ok = 1;
    for (int i = 0; i < 40; i++) {
        w->ok &= rsa_round_trip(w->k, i % 3 == 0 ? "RSA-OAEP" : "RSA-OAEP-256");
        pgcmk_sha256("abc", 3, md);
        w->ok &= md[0] == 0xba && md[31] == 0xad;
    }
    return NULL;
}

static void
test_rsa_contexts(void)
{
    struct pgcmk_pkey *keys[10] = {NULL}, *k2 = NULL;
    unsigned char dek[32], *ct = NULL, *pt = NULL, *ct_old = NULL;
    size_t ct_len = 0, pt_len = 0, old_len = 0;
    struct rsa_worker w[2];
    pthread_t th[2];
    int ok = 1;

    /* Reuse: many operations on one key, the algorithms interleaved. */
    CHECK(pgcmk_pkey_rsa_new(2048, &keys[0]) == 0);
    for (int i = 0; i < 30; i++)
        ok &= rsa_round_trip(keys[0], i % 2 ? "RSA-OAEP-256" : i % 3 ? "RSA-OAEP" : "RSA1_5");
    CHECK(ok);
    /* A failed decryption drops the context; the next one works. */
    CHECK(pgcmk_random(dek, sizeof(dek)) == 0);
    CHECK(pgcmk_pkey_encrypt(keys[0], "RSA-OAEP-256", dek, 32, &ct, &ct_len) == 0);
    ct[5] ^= 0x40;
    CHECK(pgcmk_pkey_decrypt(keys[0], "RSA-OAEP-256", ct, ct_len, &pt, &pt_len) == -1);
    CHECK(pgcmk_pkey_decrypt(keys[0], "RSA-OAEP-256", ct, 17, &pt, &pt_len) == -1);
    ct[5] ^= 0x40;
    CHECK(pgcmk_pkey_decrypt(keys[0], "RSA-OAEP-256", ct, ct_len, &pt, &pt_len) == 0 &&
          pt_len == 32 && memcmp(pt, dek, 32) == 0);
    free(pt);
    pt = NULL;
    /* The wrong key (and the wrong OAEP digest) never decrypts. */
    CHECK(pgcmk_pkey_rsa_new(2048, &k2) == 0);
    CHECK(pgcmk_pkey_decrypt(k2, "RSA-OAEP-256", ct, ct_len, &pt, &pt_len) == -1);
    CHECK(pgcmk_pkey_decrypt(keys[0], "RSA-OAEP", ct, ct_len, &pt, &pt_len) == -1);
    free(pt);
    pt = NULL;
    /* More keys than a thread keeps contexts for: each still answers for itself. */
    for (int i = 1; i < 10; i++)
        CHECK(pgcmk_pkey_rsa_new(2048, &keys[i]) == 0);
    ok = 1;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 10; i++)
            ok &= rsa_round_trip(keys[i], "RSA-OAEP-256");
    CHECK(ok);
    /* A freed key's address may come back for a new key: the new key must be used, not a context
     * of the old one. */
    CHECK(pgcmk_pkey_encrypt(keys[9], "RSA-OAEP-256", dek, 32, &ct_old, &old_len) == 0);
    for (int i = 1; i < 10; i++) {
        pgcmk_pkey_free(keys[i]);
        keys[i] = NULL;
    }
    ok = 1;
    for (int i = 1; i < 10; i++) {
        CHECK(pgcmk_pkey_rsa_new(2048, &keys[i]) == 0);
        ok &= rsa_round_trip(keys[i], "RSA-OAEP-256");
        pt = NULL;
        ok &= pgcmk_pkey_decrypt(keys[i], "RSA-OAEP-256", ct_old, old_len, &pt, &pt_len) == -1;
        free(pt);
    }
    CHECK(ok);
    /* Two threads on one key at once (each with its own context and key copy). */
    for (int i = 0; i < 2; i++) {
        w[i].k = keys[0];
        w[i].ok = 0;
        CHECK(pthread_create(&th[i], NULL, rsa_worker_run, &w[i]) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CHECK(w[i].ok);
    }
    free(ct);
    free(ct_old);
    for (int i = 0; i < 10; i++)
        pgcmk_pkey_free(keys[i]);
    pgcmk_pkey_free(k2);
}

/* ---- UUIDs (src/core/util.c) --------------------------------------------------------------- */

static int
uuid_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int
uuid_well_formed(const char *u)
{
    if (strlen(u) != 36 || u[14] != '4' || !strchr("89ab", u[19]))
        return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? u[i] != '-' : !strchr("0123456789abcdef", u[i]))
            return 0;
    }
    return 1;
}

static void
test_uuid(void)
{
    static char ids[200][37];
    char mine[37], child[37] = "";
    int fds[2], ok = 1, status = 0;
    pid_t pid;

    for (int i = 0; i < 200; i++) { /* several refills of the per-thread batch */
        pgcmk_uuid(ids[i]);
        ok &= uuid_well_formed(ids[i]);
    }
    CHECK(ok);
    qsort(ids, 200, sizeof(ids[0]), uuid_cmp);
    ok = 1;
    for (int i = 1; i < 200; i++)
        ok &= strcmp(ids[i - 1], ids[i]) != 0;
    CHECK(ok);
    /* After fork the child must not repeat the ids the parent hands out next. */
    pgcmk_uuid(mine);
    CHECK(pipe(fds) == 0);
    pid = fork();
    if (pid == 0) {
        pgcmk_uuid(child);
        _exit(write(fds[1], child, 37) == 37 ? 0 : 1);
    }
    CHECK(pid > 0);
    close(fds[1]);
    CHECK(read(fds[0], child, 37) == 37);
    close(fds[0]);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    pgcmk_uuid(mine);
    CHECK(uuid_well_formed(child) && strcmp(child, mine) != 0);
}

int
main(void)
{
    test_b64();
    test_sha256();
    test_aead();
    test_tls();
    test_rsa();
    test_rsa_contexts();
    test_uuid();
    return t_done("test_crypto");
}
