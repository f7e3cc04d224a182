/* test_vkv.c - the Vault API's KV v1/v2 engines on a real store: versions, check-and-set,
 * pruning, soft delete / undelete / destroy, metadata, listing, events; and the pure helpers. */
#include <stdlib.h>
#include <string.h>

#include "pgcmk/clock.h"
#include "pgcmk/events.h"
#include "pgcmk/store.h"
#include "pgcmk/vkv.h"
#include "t.h"
#include "t_store.h"

static struct pgcmk_vkv_call
call(int kv, enum pgcmk_vkv_op op, const char *rel, const char *body_text)
{
    struct pgcmk_vkv_call c;

    memset(&c, 0, sizeof(c));
    c.ns = "";
    c.mount_uuid = kv == 2 ? "uuid-kv2" : "uuid-kv1";
    c.mount_path = kv == 2 ? "secret/" : "kv/";
    c.kv_version = kv;
    c.op = op;
    c.rel = rel;
    c.body = body_text ? json_loads(body_text, 0, NULL) : NULL;
    return c;
}

/* Runs a call and returns its status; *out keeps the answer's data (or NULL). */
static int
run(int kv, enum pgcmk_vkv_op op, const char *rel, const char *body, const char *version,
    json_t **out, char *errtext, size_t cap)
{
    struct pgcmk_vkv_call c = call(kv, op, rel, body);
    struct pgcmk_vkv_ans a;
    int st;

    c.q_version = version;
    pgcmk_vkv_call(&c, &a);
    json_decref((json_t *)c.body);
    st = a.status;
    if (errtext) {
        errtext[0] = '\0';
        if (a.errors && json_array_size(a.errors))
            snprintf(errtext, cap, "%s", json_string_value(json_array_get(a.errors, 0)));
    }
    if (out) {
        *out = a.data;
        a.data = NULL;
    }
    pgcmk_vkv_ans_release(&a);
    return st;
}

static const char *
jstr(json_t *j, const char *path1, const char *path2)
{
    json_t *x = json_object_get(j, path1);

    if (path2)
        x = json_object_get(x, path2);
    return json_string_value(x);
}

static void
test_helpers(void)
{
    char buf[32];
    int64_t ms;

    CHECK(pgcmk_vkv_cas_check(0, -1, 3) == NULL);
    CHECK_STR(pgcmk_vkv_cas_check(1, -1, 3), "check-and-set parameter required for this call");
    CHECK(pgcmk_vkv_cas_check(0, 0, 0) == NULL);
    CHECK_STR(pgcmk_vkv_cas_check(0, 0, 1),
              "check-and-set parameter did not match the current version");
    CHECK(pgcmk_vkv_cas_check(1, 4, 4) == NULL);
    CHECK(pgcmk_vkv_keep_from(3, 0) == 1);
    CHECK(pgcmk_vkv_keep_from(12, 0) == 3);
    CHECK(pgcmk_vkv_keep_from(5, 2) == 4);
    CHECK(pgcmk_vkv_duration_parse("1h30m", &ms) == 0 && ms == 5400000);
    CHECK(pgcmk_vkv_duration_parse("90", &ms) == 0 && ms == 90000);
    CHECK(pgcmk_vkv_duration_parse("1x", &ms) == -1);
    CHECK(pgcmk_vkv_duration_parse("", &ms) == -1);
    pgcmk_vkv_duration_format(5400000, buf, sizeof(buf));
    CHECK_STR(buf, "1h30m0s");
    pgcmk_vkv_duration_format(0, buf, sizeof(buf));
    CHECK_STR(buf, "0s");
    CHECK(pgcmk_vkv_text_ok("secret/ключ", 100) == 1);
    CHECK(pgcmk_vkv_text_ok("\x8d"
                            "a",
                            100) == 0);
    CHECK(pgcmk_vkv_text_ok("a\nb", 100) == 0);
    CHECK(pgcmk_vkv_text_ok("\xed\xa0\x80", 100) == 0);
    CHECK(pgcmk_vkv_text_ok("abcd", 3) == 0);
    pgcmk_vkv_duration_format(1500, buf, sizeof(buf));
    CHECK_STR(buf, "1.5s");
}

static void
test_kv2(void)
{
    json_t *d = NULL;
    char e[256];
    unsigned long changed0 = pgcmk_events_count(PGCMK_EV_HV_SECRET_CHANGED);
    unsigned long deleted0 = pgcmk_events_count(PGCMK_EV_HV_SECRET_DELETED);
    struct pgcmk_vkv_call c;

    /* empty mount: list 404 (pg_tde's validation), read 404 */
    CHECK(run(2, PGCMK_VKV_LIST, "metadata/", NULL, NULL, NULL, NULL, 0) == 404);
    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, NULL, NULL, NULL, 0) == 404);
    c = call(2, PGCMK_VKV_WRITE, "data/pg-key", NULL);
    CHECK_STR(pgcmk_vkv_capability(&c), "create");

    /* pg_tde's write: no cas */
    CHECK(run(2, PGCMK_VKV_WRITE, "data/pg-key", "{\"data\":{\"key\":\"AAEC\"}}", NULL, &d, NULL,
              0) == 200);
    CHECK(json_integer_value(json_object_get(d, "version")) == 1);
    CHECK(json_is_false(json_object_get(d, "destroyed")));
    CHECK_STR(jstr(d, "deletion_time", NULL), "");
    json_decref(d);
    CHECK_STR(pgcmk_vkv_capability(&c), "update");
    CHECK(pgcmk_events_count(PGCMK_EV_HV_SECRET_CHANGED) == changed0 + 1);

    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, NULL, &d, NULL, 0) == 200);
    CHECK_STR(jstr(json_object_get(d, "data"), "key", NULL), "AAEC");
    CHECK(json_integer_value(json_object_get(json_object_get(d, "metadata"), "version")) == 1);
    json_decref(d);

    /* KES: cas 0 on an existing key is refused; cas 1 goes on */
    CHECK(run(2, PGCMK_VKV_WRITE, "data/pg-key",
              "{\"options\":{\"cas\":0},\"data\":{\"k\":\"v2\"}}", NULL, NULL, e,
              sizeof(e)) == 400);
    CHECK_STR(e, "check-and-set parameter did not match the current version");
    CHECK(run(2, PGCMK_VKV_WRITE, "data/pg-key",
              "{\"options\":{\"cas\":1},\"data\":{\"k\":\"v2\"}}", NULL, NULL, NULL, 0) == 200);
    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, "1", &d, NULL, 0) == 200);
    CHECK_STR(jstr(d, "data", "key"), "AAEC");
    json_decref(d);
    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, NULL, &d, NULL, 0) == 200);
    CHECK_STR(jstr(d, "data", "k"), "v2");
    json_decref(d);
    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, "9", NULL, NULL, 0) == 404);
    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, "x", NULL, NULL, 0) == 400);
    CHECK(run(2, PGCMK_VKV_WRITE, "data/pg-key", "{\"nodata\":1}", NULL, NULL, e, sizeof(e)) ==
          400);
    CHECK_STR(e, "no data provided");

    /* patch merges into the latest version */
    CHECK(run(2, PGCMK_VKV_PATCH, "data/pg-key", "{\"data\":{\"extra\":\"x\",\"k\":null}}", NULL,
              NULL, NULL, 0) == 200);
    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, NULL, &d, NULL, 0) == 200);
    CHECK_STR(jstr(d, "data", "extra"), "x");
    CHECK(json_object_get(json_object_get(d, "data"), "k") == NULL);
    json_decref(d);
    CHECK(run(2, PGCMK_VKV_PATCH, "data/nope", "{\"data\":{\"a\":\"b\"}}", NULL, NULL, NULL, 0) ==
          404);

    /* soft delete of the latest (v3): 404 with the metadata, undelete, destroy */
    CHECK(run(2, PGCMK_VKV_DELETE, "data/pg-key", NULL, NULL, NULL, NULL, 0) == 204);
    CHECK(pgcmk_events_count(PGCMK_EV_HV_SECRET_DELETED) == deleted0 + 1);
    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, NULL, &d, NULL, 0) == 404);
    CHECK(json_is_null(json_object_get(d, "data")));
    CHECK(strlen(jstr(d, "metadata", "deletion_time")) > 10);
    json_decref(d);
    CHECK(run(2, PGCMK_VKV_WRITE, "undelete/pg-key", "{\"versions\":[3]}", NULL, NULL, NULL, 0) ==
          204);
    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, NULL, NULL, NULL, 0) == 200);
    CHECK(run(2, PGCMK_VKV_WRITE, "destroy/pg-key", "{\"versions\":[1,3]}", NULL, NULL, NULL, 0) ==
          204);
    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, NULL, &d, NULL, 0) == 404);
    CHECK(json_is_true(json_object_get(json_object_get(d, "metadata"), "destroyed")));
    json_decref(d);
    CHECK(run(2, PGCMK_VKV_WRITE, "undelete/pg-key", "{\"versions\":[3]}", NULL, NULL, NULL, 0) ==
          204);
    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, NULL, NULL, NULL, 0) == 404);
    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, "2", NULL, NULL, 0) == 200);
    CHECK(run(2, PGCMK_VKV_WRITE, "delete/pg-key", "{\"versions\":[2]}", NULL, NULL, NULL, 0) ==
          204);
    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, "2", NULL, NULL, 0) == 404);
    CHECK(run(2, PGCMK_VKV_WRITE, "delete/pg-key", "{}", NULL, NULL, e, sizeof(e)) == 400);
    CHECK_STR(e, "no version number provided");

    /* metadata */
    CHECK(run(2, PGCMK_VKV_READ, "metadata/pg-key", NULL, NULL, &d, NULL, 0) == 200);
    CHECK(json_integer_value(json_object_get(d, "current_version")) == 3);
    CHECK(json_object_size(json_object_get(d, "versions")) == 3);
    CHECK(json_is_true(
        json_object_get(json_object_get(json_object_get(d, "versions"), "1"), "destroyed")));
    CHECK_STR(jstr(d, "delete_version_after", NULL), "0s");
    json_decref(d);

    /* pruning: max_versions 2 on the key, two more writes keep versions 4 and 5 */
    CHECK(run(2, PGCMK_VKV_WRITE, "metadata/pg-key",
              "{\"max_versions\":2,\"custom_metadata\":{\"owner\":\"pg\"}}", NULL, NULL, NULL,
              0) == 204);
    CHECK(run(2, PGCMK_VKV_WRITE, "data/pg-key", "{\"data\":{\"v\":\"4\"}}", NULL, NULL, NULL, 0) ==
          200);
    CHECK(run(2, PGCMK_VKV_WRITE, "data/pg-key", "{\"data\":{\"v\":\"5\"}}", NULL, &d, NULL, 0) ==
          200);
    CHECK_STR(jstr(d, "custom_metadata", "owner"), "pg");
    json_decref(d);
    CHECK(run(2, PGCMK_VKV_READ, "metadata/pg-key", NULL, NULL, &d, NULL, 0) == 200);
    CHECK(json_object_size(json_object_get(d, "versions")) == 2);
    CHECK(json_integer_value(json_object_get(d, "oldest_version")) == 4);
    CHECK(json_integer_value(json_object_get(d, "max_versions")) == 2);
    json_decref(d);
    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, "3", NULL, NULL, 0) == 404);

    /* cas_required on the mount */
    CHECK(run(2, PGCMK_VKV_WRITE, "config", "{\"cas_required\":true,\"max_versions\":5}", NULL,
              NULL, NULL, 0) == 204);
    CHECK(run(2, PGCMK_VKV_READ, "config", NULL, NULL, &d, NULL, 0) == 200);
    CHECK(json_is_true(json_object_get(d, "cas_required")));
    CHECK(json_integer_value(json_object_get(d, "max_versions")) == 5);
    json_decref(d);
    CHECK(run(2, PGCMK_VKV_WRITE, "data/other", "{\"data\":{\"a\":\"b\"}}", NULL, NULL, e,
              sizeof(e)) == 400);
    CHECK_STR(e, "check-and-set parameter required for this call");
    CHECK(run(2, PGCMK_VKV_WRITE, "data/dir/other", "{\"options\":{\"cas\":0},\"data\":{\"a\":1}}",
              NULL, NULL, NULL, 0) == 200);
    CHECK(run(2, PGCMK_VKV_WRITE, "config", "{\"cas_required\":false}", NULL, NULL, NULL, 0) ==
          204);

    /* delete_version_after: the version is deleted once the clock passes it */
    CHECK(run(2, PGCMK_VKV_WRITE, "metadata/ttl", "{\"delete_version_after\":\"1h\"}", NULL, NULL,
              NULL, 0) == 204);
    CHECK(run(2, PGCMK_VKV_WRITE, "data/ttl", "{\"data\":{\"a\":\"b\"}}", NULL, NULL, NULL, 0) ==
          200);
    CHECK(run(2, PGCMK_VKV_READ, "data/ttl", NULL, NULL, NULL, NULL, 0) == 200);
    pgcmk_clock_advance(3600 * 1000 + 1);
    CHECK(run(2, PGCMK_VKV_READ, "data/ttl", NULL, NULL, NULL, NULL, 0) == 404);

    /* listing: folders end in "/" */
    CHECK(run(2, PGCMK_VKV_LIST, "metadata", NULL, NULL, &d, NULL, 0) == 200);
    CHECK(json_array_size(json_object_get(d, "keys")) == 3);
    CHECK_STR(json_string_value(json_array_get(json_object_get(d, "keys"), 0)), "dir/");
    CHECK_STR(json_string_value(json_array_get(json_object_get(d, "keys"), 1)), "pg-key");
    json_decref(d);
    CHECK(run(2, PGCMK_VKV_LIST, "metadata/dir", NULL, NULL, &d, NULL, 0) == 200);
    CHECK_STR(json_string_value(json_array_get(json_object_get(d, "keys"), 0)), "other");
    json_decref(d);

    /* metadata delete removes everything */
    CHECK(run(2, PGCMK_VKV_DELETE, "metadata/pg-key", NULL, NULL, NULL, NULL, 0) == 204);
    CHECK(run(2, PGCMK_VKV_READ, "metadata/pg-key", NULL, NULL, NULL, NULL, 0) == 404);
    CHECK(run(2, PGCMK_VKV_READ, "data/pg-key", NULL, "5", NULL, NULL, 0) == 404);

    CHECK(run(2, PGCMK_VKV_READ, "bogus/x", NULL, NULL, NULL, e, sizeof(e)) == 404);
    CHECK(strstr(e, "no handler for route") != NULL);
    CHECK(run(2, PGCMK_VKV_READ, "data/../x", NULL, NULL, NULL, NULL, 0) == 400);
    CHECK(run(2, PGCMK_VKV_WRITE, "data/\x8d", "{\"data\":{}}", NULL, NULL, NULL, 0) == 400);
}

static void
test_kv1_and_drop(void)
{
    json_t *d = NULL;
    struct pgcmk_err err;
    struct pgcmk_vkv_call c = call(1, PGCMK_VKV_WRITE, "a/b", NULL);

    CHECK_STR(pgcmk_vkv_capability(&c), "create");
    CHECK(run(1, PGCMK_VKV_WRITE, "a/b", "{\"x\":\"y\"}", NULL, NULL, NULL, 0) == 204);
    CHECK_STR(pgcmk_vkv_capability(&c), "update");
    CHECK(run(1, PGCMK_VKV_READ, "a/b", NULL, NULL, &d, NULL, 0) == 200);
    CHECK_STR(jstr(d, "x", NULL), "y");
    json_decref(d);
    CHECK(run(1, PGCMK_VKV_WRITE, "c", "{}", NULL, NULL, NULL, 0) == 400);
    CHECK(run(1, PGCMK_VKV_WRITE, "c", "{\"n\":1}", NULL, NULL, NULL, 0) == 204);
    CHECK(run(1, PGCMK_VKV_LIST, "", NULL, NULL, &d, NULL, 0) == 200);
    CHECK(json_array_size(json_object_get(d, "keys")) == 2);
    CHECK_STR(json_string_value(json_array_get(json_object_get(d, "keys"), 0)), "a/");
    json_decref(d);
    CHECK(run(1, PGCMK_VKV_DELETE, "c", NULL, NULL, NULL, NULL, 0) == 204);
    CHECK(run(1, PGCMK_VKV_READ, "c", NULL, NULL, NULL, NULL, 0) == 404);

    pgcmk_err_clear(&err);
    CHECK(pgcmk_vkv_drop_mount(pgcmk_db(), "uuid-kv1", &err) == 0);
    CHECK(pgcmk_vkv_drop_mount(pgcmk_db(), "uuid-kv2", &err) == 0);
    CHECK(run(1, PGCMK_VKV_READ, "a/b", NULL, NULL, NULL, NULL, 0) == 404);
    CHECK(run(2, PGCMK_VKV_LIST, "metadata/", NULL, NULL, NULL, NULL, 0) == 404);
}

/* Runs a transit call: status; *out keeps the data. */
static int
trun(enum pgcmk_vkv_op op, const char *rel, const char *body, json_t **out, char *e, size_t cap)
{
    struct pgcmk_vkv_call c = call(2, op, rel, body);
    struct pgcmk_vkv_ans a;
    int st;

    c.mount_uuid = "uuid-transit";
    c.mount_path = "transit/";
    pgcmk_vtransit_call(&c, &a);
    json_decref((json_t *)c.body);
    st = a.status;
    if (e) {
        e[0] = '\0';
        if (a.errors && json_array_size(a.errors))
            snprintf(e, cap, "%s", json_string_value(json_array_get(a.errors, 0)));
    }
    if (out) {
        *out = a.data;
        a.data = NULL;
    }
    pgcmk_vkv_ans_release(&a);
    return st;
}

static void
test_transit(void)
{
    json_t *d = NULL;
    char e[256], ct1[512], body[700];
    struct pgcmk_vkv_call c = call(2, PGCMK_VKV_WRITE, "keys/k1", NULL);

    c.mount_uuid = "uuid-transit";
    CHECK_STR(pgcmk_vtransit_capability(&c), "create");
    CHECK(trun(PGCMK_VKV_READ, "keys/k1", NULL, NULL, NULL, 0) == 404);
    CHECK(trun(PGCMK_VKV_WRITE, "keys/k1", "{}", &d, NULL, 0) == 200);
    CHECK_STR(jstr(d, "type", NULL), "aes256-gcm96");
    CHECK(json_integer_value(json_object_get(d, "latest_version")) == 1);
    json_decref(d);
    CHECK_STR(pgcmk_vtransit_capability(&c), "update");
    CHECK(trun(PGCMK_VKV_WRITE, "keys/k2", "{\"type\":\"bogus\"}", NULL, e, sizeof(e)) == 400);

    /* "hello" = aGVsbG8= */
    CHECK(trun(PGCMK_VKV_WRITE, "encrypt/k1", "{\"plaintext\":\"aGVsbG8=\"}", &d, NULL, 0) == 200);
    snprintf(ct1, sizeof(ct1), "%s", jstr(d, "ciphertext", NULL));
    json_decref(d);
    CHECK(strncmp(ct1, "vault:v1:", 9) == 0);
    snprintf(body, sizeof(body), "{\"ciphertext\":\"%s\"}", ct1);
    CHECK(trun(PGCMK_VKV_WRITE, "decrypt/k1", body, &d, NULL, 0) == 200);
    CHECK_STR(jstr(d, "plaintext", NULL), "aGVsbG8=");
    json_decref(d);
    CHECK(trun(PGCMK_VKV_WRITE, "encrypt/k1", "{\"plaintext\":\"!!\"}", NULL, e, sizeof(e)) == 400);
    CHECK(trun(PGCMK_VKV_WRITE, "decrypt/k1", "{\"ciphertext\":\"nope\"}", NULL, e, sizeof(e)) ==
          400);
    CHECK_STR(e, "invalid ciphertext: no prefix");

    /* rotation: new encryptions use v2, rewrap moves v1 to v2, min_decryption_version */
    CHECK(trun(PGCMK_VKV_WRITE, "keys/k1/rotate", "{}", &d, NULL, 0) == 200);
    CHECK(json_integer_value(json_object_get(d, "latest_version")) == 2);
    CHECK(json_object_size(json_object_get(d, "keys")) == 2);
    json_decref(d);
    CHECK(trun(PGCMK_VKV_WRITE, "rewrap/k1", body, &d, NULL, 0) == 200);
    CHECK(strncmp(jstr(d, "ciphertext", NULL), "vault:v2:", 9) == 0);
    json_decref(d);
    CHECK(trun(PGCMK_VKV_WRITE, "keys/k1/config", "{\"min_decryption_version\":2}", NULL, NULL,
               0) == 200);
    CHECK(trun(PGCMK_VKV_WRITE, "decrypt/k1", body, NULL, e, sizeof(e)) == 400);
    CHECK_STR(e, "ciphertext or signature version is disallowed by policy (too old)");
    CHECK(trun(PGCMK_VKV_WRITE, "keys/k1/config", "{\"min_decryption_version\":9}", NULL, e,
               sizeof(e)) == 400);

    /* a tampered ciphertext fails authentication */
    ct1[strlen(ct1) - 3] = ct1[strlen(ct1) - 3] == 'A' ? 'B' : 'A';
    CHECK(trun(PGCMK_VKV_WRITE, "encrypt/k1", "{\"plaintext\":\"aGVsbG8=\"}", &d, NULL, 0) == 200);
    snprintf(ct1, sizeof(ct1), "%s", jstr(d, "ciphertext", NULL));
    json_decref(d);
    ct1[12] = ct1[12] == 'A' ? 'B' : 'A';
    snprintf(body, sizeof(body), "{\"ciphertext\":\"%s\"}", ct1);
    CHECK(trun(PGCMK_VKV_WRITE, "decrypt/k1", body, NULL, e, sizeof(e)) == 400);

    /* datakey, batch */
    CHECK(trun(PGCMK_VKV_WRITE, "datakey/plaintext/k1", "{}", &d, NULL, 0) == 200);
    CHECK(json_is_string(json_object_get(d, "plaintext")));
    CHECK(strncmp(jstr(d, "ciphertext", NULL), "vault:v2:", 9) == 0);
    json_decref(d);
    CHECK(trun(PGCMK_VKV_WRITE, "datakey/wrapped/k1", "{\"bits\":128}", &d, NULL, 0) == 200);
    CHECK(json_object_get(d, "plaintext") == NULL);
    json_decref(d);
    CHECK(trun(PGCMK_VKV_WRITE, "encrypt/k1",
               "{\"batch_input\":[{\"plaintext\":\"aGVsbG8=\"},{\"plaintext\":\"!\"}]}", &d, NULL,
               0) == 200);
    CHECK(json_array_size(json_object_get(d, "batch_results")) == 2);
    CHECK(json_object_get(json_array_get(json_object_get(d, "batch_results"), 1), "error") != NULL);
    json_decref(d);

    /* encrypt creates a missing key (upsert) */
    CHECK(trun(PGCMK_VKV_WRITE, "encrypt/auto", "{\"plaintext\":\"aGVsbG8=\"}", NULL, NULL, 0) ==
          200);
    CHECK(trun(PGCMK_VKV_LIST, "keys", NULL, &d, NULL, 0) == 200);
    CHECK(json_array_size(json_object_get(d, "keys")) == 2);
    json_decref(d);

    /* a chacha20-poly1305 key */
    CHECK(trun(PGCMK_VKV_WRITE, "keys/cc", "{\"type\":\"chacha20-poly1305\"}", NULL, NULL, 0) ==
          200);
    CHECK(trun(PGCMK_VKV_WRITE, "encrypt/cc", "{\"plaintext\":\"aGVsbG8=\"}", &d, NULL, 0) == 200);
    snprintf(body, sizeof(body), "{\"ciphertext\":\"%s\"}", jstr(d, "ciphertext", NULL));
    json_decref(d);
    CHECK(trun(PGCMK_VKV_WRITE, "decrypt/cc", body, &d, NULL, 0) == 200);
    CHECK_STR(jstr(d, "plaintext", NULL), "aGVsbG8=");
    json_decref(d);
    CHECK(trun(PGCMK_VKV_WRITE, "decrypt/auto", body, NULL, NULL, 0) == 400);

    /* deletion refused until allowed */
    CHECK(trun(PGCMK_VKV_DELETE, "keys/k1", NULL, NULL, e, sizeof(e)) == 400);
    CHECK_STR(e, "error deleting policy k1: deletion is not allowed for this policy");
    CHECK(trun(PGCMK_VKV_WRITE, "keys/k1/config", "{\"deletion_allowed\":true}", NULL, NULL, 0) ==
          200);
    CHECK(trun(PGCMK_VKV_DELETE, "keys/k1", NULL, NULL, NULL, 0) == 204);
    CHECK(trun(PGCMK_VKV_READ, "keys/k1", NULL, NULL, NULL, 0) == 404);
    CHECK(trun(PGCMK_VKV_WRITE, "decrypt/k1", body, NULL, e, sizeof(e)) == 400);
    CHECK_STR(e, "encryption key not found");
}

int
main(void)
{
    struct pgcmk_err err;

    pgcmk_clock_init();
    if (t_store_open(&err) != 0) {
        fprintf(stderr, "store: %s\n", err.message);
        return 1;
    }
    test_helpers();
    test_kv2();
    test_kv1_and_drop();
    test_transit();
    t_store_close();
    return t_done("test_vkv");
}
