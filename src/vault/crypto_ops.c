/* crypto_ops.c - the key operations of the data plane: encrypt, decrypt, wrapKey, unwrapKey,
 * sign and verify, with key_ops, enabled, nbf and exp enforced as Azure documents. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/auth.h"
#include "pgcmk/clock.h"
#include "pgcmk/crypto.h"
#include "pgcmk/events.h"
#include "pgcmk/faults.h"
#include "pgcmk/log.h"
#include "pgcmk/pkey.h"
#include "pgcmk/store.h"
#include "pgcmk/vault.h"
#include "pgcmk/wellknown.h"
#include "vault/internal.h"

/* ---- crypto operations ------------------------------------------------------------------ */

/* In this order: the first four are the RSA encryptions, then sign and verify. */
static const struct {
    const char *op;   /* key_ops name, permission and (lower case) the route's last segment */
    int needs_window; /* refused outside nbf..exp */
} kv_ops[] = {{"encrypt", 1},   {"decrypt", 0}, {"wrapKey", 1},
              {"unwrapKey", 0}, {"sign", 1},    {"verify", 0}};

/* POST /keys/{name}[/{version}]/{op} for an {op} that is none of the above: refused before
 * admission, as Key Vault does. */
int
kv_crypto_unknown(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    kv_headers(rs);
    return pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                         "The request URI contains an invalid operation '%.32s'.",
                         pgcmk_req_param(rq, "op"));
}

/* One route per operation: the route's permission names it (kv_ops[].op). */
int
kv_crypto(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    struct kv_ctx *kc = rq->admitted;
    struct kv_key k;
    struct kv_version v;
    struct kv_tkey *entry = NULL;
    struct pgcmk_pkey *pk = NULL;
    int pk_owned = 0;
    const char *alg, *value;
    unsigned char *in = NULL, *out = NULL;
    size_t in_len = 0, out_len = 0;
    int which = -1, rc = -1;
    int64_t now;
    char *b64 = NULL, *kid = NULL, *base = NULL;
    size_t i;
    json_t *o;
    int allowed = 0;

    memset(&v, 0, sizeof(v));
    for (size_t x = 0; x < PGCMK_ARRAY_LEN(kv_ops); x++)
        if (strcmp(rq->route->perm, kv_ops[x].op) == 0)
            which = (int)x;
    if (which < 0)
        PGCMK_BUG("route %s names no key operation", rq->route->pattern);
    if (kv_body(rq, err) || kv_resolve_ex(kc, pgcmk_req_param(rq, "name"),
                                          pgcmk_req_param(rq, "version"), &k, &v, &entry, err))
        goto out;
    json_array_foreach(v.key_ops, i, o) {
        if (json_is_string(o) && strcmp(json_string_value(o), kv_ops[which].op) == 0)
            allowed = 1;
    }
    if (!allowed) {
        pgcmk_err_set(err, PGCMK_E_KV_KEY_OP_FORBIDDEN, NULL,
                      "Operation %s is not permitted on this key.", kv_ops[which].op);
        goto out;
    }
    if (!v.enabled) {
        pgcmk_err_set(err, PGCMK_E_KV_KEY_DISABLED, NULL,
                      "Operation %s is not allowed on a disabled key.", kv_ops[which].op);
        goto out;
    }
    now = pgcmk_clock_now() / 1000;
    if (kv_ops[which].needs_window && v.exp && now >= v.exp) {
        pgcmk_err_set(err, PGCMK_E_KV_KEY_EXPIRED, NULL,
                      "Operation %s is not allowed on an expired key.", kv_ops[which].op);
        goto out;
    }
    if (kv_ops[which].needs_window && v.nbf && now < v.nbf) {
        pgcmk_err_set(err, PGCMK_E_KV_KEY_NOT_YET_VALID, NULL,
                      "Operation %s is not allowed on a key that is not yet valid.",
                      kv_ops[which].op);
        goto out;
    }
    alg = json_string_value(json_object_get(rq->json, "alg"));
    value = json_string_value(json_object_get(rq->json, "value"));
    if (alg == NULL || value == NULL || pgcmk_b64url_decode(value, strlen(value), &in, &in_len)) {
        pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                      "The request needs 'alg' and a base64url 'value'.");
        goto out;
    }
    if (entry && entry->pk) {
        pk = entry->pk;
    } else {
        pk = kv_pkey(kc, k.name, &v, &pk_owned);
        if (entry && pk && !pk_owned)
            entry->pk = pk;
    }
    if (pk == NULL) {
        pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "the key cannot be loaded");
        goto out;
    }
    base = kv_base(kc->vault);
    kid = pgcmk_xasprintf("%s/keys/%s/%s", base, k.name, v.version);
    if (which <= 3) { /* encrypt, decrypt, wrapkey, unwrapkey */
        int dec = which == 1 || which == 3;

        if (!pgcmk_pkey_crypt_alg_ok(alg)) {
            pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                          "Invalid algorithm '%.32s': use RSA1_5, RSA-OAEP or RSA-OAEP-256.", alg);
            goto out;
        }
        if ((dec ? pgcmk_pkey_decrypt(pk, alg, in, in_len, &out, &out_len)
                 : pgcmk_pkey_encrypt(pk, alg, in, in_len, &out, &out_len))) {
            pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                          dec ? "The value could not be decrypted with this key and algorithm."
                              : "The value is too long for this key and algorithm.");
            goto out;
        }
        b64 = pgcmk_b64url_encode(out, out_len);
        pgcmk_resp_json(rs, 200, json_pack("{s:s, s:s}", "kid", kid, "value", b64));
    } else if (which == 4) { /* sign */
        if (!pgcmk_pkey_sign_alg_ok(alg, in_len)) {
            pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                          "Invalid algorithm '%.32s' or digest length %zu for it.", alg, in_len);
            goto out;
        }
        if (pgcmk_pkey_sign(pk, alg, in, in_len, &out, &out_len)) {
            pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "signing failed");
            goto out;
        }
        b64 = pgcmk_b64url_encode(out, out_len);
        pgcmk_resp_json(rs, 200, json_pack("{s:s, s:s}", "kid", kid, "value", b64));
    } else { /* verify: value is the signature, digest the hash */
        const char *digest = json_string_value(json_object_get(rq->json, "digest"));
        unsigned char *d = NULL;
        size_t dlen = 0;
        int ok;

        if (digest == NULL || pgcmk_b64url_decode(digest, strlen(digest), &d, &dlen) ||
            !pgcmk_pkey_sign_alg_ok(alg, dlen)) {
            free(d);
            pgcmk_err_set(err, PGCMK_E_KV_BAD_PARAMETER, NULL,
                          "The request needs 'alg', a base64url 'digest' of the right length and "
                          "the signature as 'value'.");
            goto out;
        }
        ok = pgcmk_pkey_verify(pk, alg, d, dlen, in, in_len) == 0;
        free(d);
        pgcmk_resp_json(rs, 200, json_pack("{s:b}", "value", ok));
    }
    rc = 0;
out:
    if (pk_owned)
        pgcmk_pkey_free(pk);
    if (out)
        pgcmk_secret_free(out, out_len);
    if (in)
        pgcmk_secret_free(in, in_len);
    if (b64) /* the answer of an unwrapKey or a decrypt is a plaintext */
        pgcmk_secret_free(b64, strlen(b64));
    free(kid);
    free(base);
    kv_version_release(&v);
    return rc;
}
