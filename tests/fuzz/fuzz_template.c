/* fuzz_template.c - libFuzzer over the template language: the deployment body parser (JSONC,
 * the az CLI's unquoted template key, template as a string), template loading (parameters,
 * variables, functions, copy, dependencies) and rendering every resource and the outputs with a
 * stub host. Inputs that are not a deployment body are tried as a bare template too.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (make fuzz) */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pgcmk/deploy.h"

static json_t *
stub_ref(void *ctx, const char *id, const char *api, int full, struct pgcmk_err *err)
{
    (void)ctx, (void)api, (void)err;
    return json_pack("{s:s, s:b, s:{s:s}}", "id", id, "full", full, "properties", "vaultUri",
                     "https://kv.vault.azure.net/");
}

static json_t *
stub_list(void *ctx, const char *id, const char *fn, const char *api, const json_t *body,
          struct pgcmk_err *err)
{
    (void)ctx, (void)api, (void)body, (void)err;
    return json_pack("{s:s, s:s, s:[{s:s}]}", "id", id, "fn", fn, "keys", "value", "k");
}

static void
run(const json_t *tpl, const json_t *params)
{
    static const struct pgcmk_tpl_scope scope = {"00000000-0000-4000-8000-000000000001",
                                                 "72f98800-0000-4000-8000-00000000cafe",
                                                 "rg1",
                                                 "eastus",
                                                 "fuzz",
                                                 1700000000000LL};
    const struct pgcmk_tpl_host host = {stub_ref, stub_list, NULL};
    struct pgcmk_err err;
    struct pgcmk_tpl *t = pgcmk_tpl_load(tpl, params, &scope, &err);

    if (!t)
        return;
    for (size_t i = 0; i < pgcmk_tpl_count(t); i++) {
        const struct pgcmk_tpl_resource *r = pgcmk_tpl_resource(t, i);

        for (size_t j = 0; j < r->n_deps; j++)
            if (r->deps[j] >= pgcmk_tpl_count(t))
                __builtin_trap();
        json_decref(pgcmk_tpl_render(t, i, &host, &err));
    }
    json_decref(pgcmk_tpl_outputs(t, &host, &err));
    json_decref(pgcmk_tpl_parameters(t));
    pgcmk_tpl_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pgcmk_err err;
    struct pgcmk_jsonc_pos *pos = NULL;
    json_t *body;

    if (size > 256 * 1024)
        return 0;
    body = pgcmk_deploy_parse_body_pos((const char *)data, size, &pos, &err);
    if (body) {
        const json_t *props = json_object_get(body, "properties");
        const json_t *tpl = json_object_get(props, "template");

        if (tpl) {
            struct pgcmk_tpl *t =
                pgcmk_tpl_load_pos(tpl, json_object_get(props, "parameters"), NULL, pos, &err);

            pgcmk_tpl_free(t);
            run(tpl, json_object_get(props, "parameters"));
        } else {
            run(body, NULL); /* a bare template */
        }
        json_decref(body);
    }
    pgcmk_jsonc_pos_free(pos);
    return 0;
}
