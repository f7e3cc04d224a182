/* fuzz_vkv.c - libFuzzer over the Vault API's KV v1, KV v2 and transit engines
 * (pgcmk_vkv_call, pgcmk_vtransit_call, src/vaultapi/kv.c and transit.c) on a store in memory
 * that keeps what earlier inputs wrote. An input is: one byte picking the engine (KV v1, KV v2,
 * transit) and the operation, the path inside the mount up to the first '\n', an optional
 * "?version" value up to the next '\n', then a JSON body (used when it parses as an object).
 * Besides memory errors (ASan) and undefined behaviour (UBSan), it traps when an answer breaks
 * the engines' promises:
 *   - a status Vault uses (200, 204, 400, 404, 405), never a 5xx on any input;
 *   - an error answer has an "errors" array of strings and no data, except the 404 of a deleted
 *     KV v2 version (data.data null, data.metadata an object);
 *   - 204 has neither data nor errors; 200 has data;
 *   - the capability is one of Vault's words.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/clock.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"
#include "pgcmk/vkv.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct pgcmk_err err;

    (void)argc;
    (void)argv;
    pgcmk_log_level = PGCMK_LOG_ERR;
    pgcmk_clock_init();
    if (pgcmk_store_open(":memory:", NULL, 0, &err))
        abort();
    return 0;
}

static void
check(const struct pgcmk_vkv_ans *a)
{
    size_t i;
    json_t *e;

    switch (a->status) {
    case 200:
        if (a->data == NULL || a->errors)
            __builtin_trap();
        return;
    case 204:
        if (a->data || a->errors)
            __builtin_trap();
        return;
    case 400:
    case 404:
    case 405:
        break;
    default:
        __builtin_trap();
    }
    if (a->errors == NULL) {
        if (a->status != 404 || !json_is_null(json_object_get(a->data, "data")) ||
            !json_is_object(json_object_get(a->data, "metadata")))
            __builtin_trap();
        return;
    }
    if (a->data || !json_is_array(a->errors))
        __builtin_trap();
    json_array_foreach(a->errors, i, e) {
        if (!json_is_string(e))
            __builtin_trap();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const caps[] = {"create", "read", "update", "delete", "list", "patch"};
    char *in = malloc(size + 1), *rel, *ver = NULL, *body, *nl;
    struct pgcmk_vkv_call c;
    struct pgcmk_vkv_ans a;
    const char *cap;
    int engine, ok = 0;

    if (size < 1) {
        free(in);
        return 0;
    }
    memcpy(in, data, size);
    in[size] = '\0';
    memset(&c, 0, sizeof(c));
    engine = (unsigned char)in[0] % 3;
    c.op = (enum pgcmk_vkv_op)(((unsigned char)in[0] / 3) % 5);
    c.ns = (in[0] & 0x80) ? "ns1/" : "";
    /* a mount's uuid is unique across namespaces (rows of another namespace would not unseal) */
    {
        static const char *const uuids[2][3] = {{"fuzz-kv1", "fuzz-kv2", "fuzz-transit"},
                                                {"ns1-kv1", "ns1-kv2", "ns1-transit"}};

        c.mount_uuid = uuids[(in[0] & 0x80) ? 1 : 0][engine];
    }
    c.mount_path = "m/";
    c.kv_version = engine == 0 ? 1 : 2;
    rel = in + 1;
    body = rel + strlen(rel);
    nl = strchr(rel, '\n');
    if (nl) {
        *nl = '\0';
        ver = nl + 1;
        body = ver + strlen(ver);
        nl = strchr(ver, '\n');
        if (nl) {
            *nl = '\0';
            body = nl + 1;
        }
    }
    c.rel = rel;
    c.q_version = ver;
    c.body = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
    if (c.body && !json_is_object(c.body)) {
        json_decref((json_t *)c.body);
        c.body = NULL;
    }
    cap = engine == 2 ? pgcmk_vtransit_capability(&c) : pgcmk_vkv_capability(&c);
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        ok |= strcmp(cap, caps[i]) == 0;
    if (!ok)
        __builtin_trap();
    if (engine == 2)
        pgcmk_vtransit_call(&c, &a);
    else
        pgcmk_vkv_call(&c, &a);
    check(&a);
    pgcmk_vkv_ans_release(&a);
    json_decref((json_t *)c.body);
    free(in);
    return 0;
}
