/* fuzz_vreq.c - libFuzzer over the Vault API's request pipeline (pgcmk_vaultapi_handle,
 * src/vaultapi/): namespace header and path prefix, method folding, the JSON body, durations,
 * sys/ paths (mounts, tune, namespaces, seal) and the token backend, on a store in memory that
 * keeps what earlier inputs created. An input is "METHOD /v1/path?query\n" then "Name: value\n"
 * header lines, an empty line, and the body. Requests carry the root token unless a header names
 * another. Besides memory errors (ASan) and undefined behaviour (UBSan), it traps when an answer
 * breaks the pipeline's promises: a status in 200..599 other than 500, and a body that is JSON.
 * It also checks the JSON writer of the hot paths (hv_buf_json) against json_dumps on every body
 * that parses: the same bytes.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/clock.h"
#include "pgcmk/http.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"
#include "pgcmk/vaultapi.h"
#include "vaultapi/internal.h"

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
    if (pgcmk_store_open(":memory:", NULL, 0, &err) || pgcmk_vaultapi_init())
        abort();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1), *line, *p, *sp;
    struct pgcmk_req rq;
    struct pgcmk_resp rs;
    int have_token = 0;

    if (in == NULL)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    line = in;
    p = strchr(line, '\n');
    if (p)
        *p++ = '\0';
    sp = strchr(line, ' ');
    if (sp == NULL || sp == line || strlen(sp + 1) == 0 || sp[1] != '/' || strlen(line) > 4000) {
        free(in);
        return 0;
    }
    *sp = '\0';
    memset(&rs, 0, sizeof(rs));
    pgcmk_req_init(&rq, NULL, line, sp + 1, "127.0.0.1", NULL, 0);
    free(rq.raw_path);
    rq.raw_path = pgcmk_xstrdup(sp + 1);
    if (strchr(rq.raw_path, '?'))
        *strchr(rq.raw_path, '?') = '\0';
    while (p && *p && *p != '\n') {
        char *nl = strchr(p, '\n'), *colon;

        if (nl)
            *nl = '\0';
        colon = strchr(p, ':');
        if (colon && rq.n_headers < PGCMK_MAX_HEADERS - 1) {
            *colon = '\0';
            pgcmk_req_add_header(&rq, p, colon[1] == ' ' ? colon + 2 : colon + 1);
            have_token |= strcasecmp(p, "X-Vault-Token") == 0;
        }
        p = nl ? nl + 1 : NULL;
    }
    if (p && *p == '\n')
        p++;
    if (p && *p) {
        free(rq.body);
        rq.body = pgcmk_xstrdup(p);
        rq.body_len = strlen(p);
    }
    if (rq.body) { /* hv_buf_json writes what json_dumps(JSON_COMPACT) writes */
        json_t *v = json_loadb(rq.body, rq.body_len, JSON_DECODE_ANY, NULL);
        char *want = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL, *got;
        struct hv_buf b = {NULL, 0, 0};
        size_t n;

        if (want) {
            hv_buf_json(&b, v);
            got = hv_buf_take(&b, &n);
            if (n != strlen(want) || memcmp(got, want, n) != 0)
                __builtin_trap();
            free(got);
            free(want);
        }
        json_decref(v);
    }
    if (!have_token)
        pgcmk_req_add_header(&rq, "X-Vault-Token", PGCMK_HV_ROOT_TOKEN);
    pgcmk_uuid(rq.request_id);
    pgcmk_vaultapi_handle(&rq, &rs);
    if (rs.status < 200 || rs.status > 599 || rs.status == 500)
        __builtin_trap();
    if (rs.body) {
        json_t *v = json_loadb(rs.body, rs.body_len, 0, NULL);

        if (v == NULL)
            __builtin_trap();
        json_decref(v);
    }
    pgcmk_resp_release(&rs);
    pgcmk_req_release(&rq);
    free(in);
    return 0;
}
