/* emulator.c - /emulator/info, /emulator/clock, /emulator/health, /emulator/stats. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/clock.h"
#include "pgcmk/emulator.h"
#include "pgcmk/err.h"
#include "pgcmk/events.h"
#include "pgcmk/http.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"
#include "pgcmk/kes.h"
#include "pgcmk/vaultapi.h"
#include "pgcmk/wellknown.h"

static struct pgcmk_emulator_info emu;
static _Atomic int emu_https_port, emu_http_port;
static _Atomic int emu_kmip_port = -1;
static char *emu_kmip_server_cert, *emu_kmip_clients_dir;

void
pgcmk_emulator_set_kmip(int port, const char *server_cert, const char *clients_dir)
{
    /* Set once at start, before the server answers /emulator/info with them. */
    if (emu_kmip_server_cert == NULL && server_cert)
        emu_kmip_server_cert = pgcmk_xstrdup(server_cert);
    if (emu_kmip_clients_dir == NULL && clients_dir)
        emu_kmip_clients_dir = pgcmk_xstrdup(clients_dir);
    emu_kmip_port = port;
}

static json_t *
emu_kmip_json(void)
{
    int port = emu_kmip_port;

    return json_pack(
        "{s:o, s:o, s:o}", "port", port >= 0 ? json_integer(port) : json_null(),
        "serverCertificate", emu_kmip_server_cert ? json_string(emu_kmip_server_cert) : json_null(),
        "clientsDirectory", emu_kmip_clients_dir ? json_string(emu_kmip_clients_dir) : json_null());
}

static _Atomic int emu_vault_port = -1, emu_vault_http_port = -1;
static char *emu_vault_ca;

void
pgcmk_emulator_set_vault(int port, int http_port, const char *ca_cert)
{
    if (emu_vault_ca == NULL && ca_cert)
        emu_vault_ca = pgcmk_xstrdup(ca_cert);
    emu_vault_port = port;
    emu_vault_http_port = http_port;
}

static json_t *
emu_vault_json(void)
{
    int port = emu_vault_port, http = emu_vault_http_port;
    char *addr = port >= 0 ? pgcmk_xasprintf("https://127.0.0.1:%d", port) : NULL;
    char *haddr = http >= 0 ? pgcmk_xasprintf("http://127.0.0.1:%d", http) : NULL;
    json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:s, s:[s], s:o}", "port",
                          port >= 0 ? json_integer(port) : json_null(), "address",
                          addr ? json_string(addr) : json_null(), "httpAddress",
                          haddr ? json_string(haddr) : json_null(), "httpPort",
                          http >= 0 ? json_integer(http) : json_null(), "rootToken",
                          PGCMK_HV_ROOT_TOKEN, "unsealKeys", PGCMK_HV_UNSEAL_KEY, "caCertificate",
                          emu_vault_ca ? json_string(emu_vault_ca) : json_null());

    free(addr);
    free(haddr);
    return o;
}

void
pgcmk_emulator_set_ports(int https_port, int http_port)
{
    emu_https_port = https_port;
    emu_http_port = http_port;
}

/* Quotes s for a POSIX shell: '...', each ' written as '\''. */
static char *
emu_shell_quote(const char *s)
{
    size_t n = 3;
    char *out, *o;

    for (const char *p = s; *p; p++)
        n += *p == '\'' ? 4 : 1;
    out = o = pgcmk_xmalloc(n);
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

/* The `az cloud register --cloud-config` object (real-clients.md 5.1). The flags of `az cloud
 * register` are ignored next to --cloud-config and cannot set microsoftGraphResourceId, which
 * `az keyvault create` needs for its Graph look-up of the caller; the JSON sets everything. */
static json_t *
emu_cloud_config(const char *arm, const char *adfs, const char *suffix)
{
    char *slash = pgcmk_xasprintf("%s/", arm);
    json_t *cfg =
        json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:s}}", "endpoints",
                  "resourceManager", slash, "management", slash, "activeDirectory", adfs,
                  "activeDirectoryResourceId", slash, "activeDirectoryGraphResourceId", slash,
                  "microsoftGraphResourceId", slash, "gallery", slash, "sqlManagement", slash,
                  "suffixes", "keyvaultDns", suffix, "storageEndpoint", "localhost",
                  "postgresqlServerEndpoint", ".postgres.localhost");

    free(slash);
    return cfg;
}

static int
emu_info(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    char *arm = pgcmk_xasprintf("https://localhost:%d", emu_https_port);
    char *adfs = pgcmk_xasprintf("%s/adfs", arm);
    char *suffix = pgcmk_xasprintf(".%s:%d", PGCMK_VAULT_DNS_SUFFIX, emu_https_port);
    json_t *cfg = emu_cloud_config(arm, adfs, suffix);
    char *cfg_text = json_dumps(cfg, JSON_COMPACT);
    char *quoted, *cmd, *flags;
    json_t *out, *az;

    PGCMK_UNUSED(rq);
    if (cfg_text == NULL) {
        json_decref(cfg);
        free(suffix);
        free(adfs);
        free(arm);
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "cannot render the cloud config");
    }
    quoted = emu_shell_quote(cfg_text);
    cmd = pgcmk_xasprintf("az cloud register -n pgcmk --cloud-config %s", quoted);
    flags =
        pgcmk_xasprintf("az cloud register -n pgcmk --endpoint-resource-manager %s/ "
                        "--endpoint-active-directory %s --endpoint-active-directory-resource-id "
                        "%s/ --endpoint-active-directory-graph-resource-id %s/ "
                        "--endpoint-management %s/ --suffix-keyvault-dns %s",
                        arm, adfs, arm, arm, arm, suffix);
    /* The endpoint-* and suffix-* fields predate cloudConfig and stay for scripts that read
     * them; flagsCommand is the former command, which cannot set the Graph endpoint. */
    az = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "name", "pgcmk",
                   "endpoint-resource-manager", arm, "endpoint-active-directory", adfs,
                   "endpoint-active-directory-resource-id", arm,
                   "endpoint-active-directory-graph-resource-id", arm, "endpoint-management", arm,
                   "suffix-keyvault-dns", suffix, "cloudConfig", cfg, "command", cmd,
                   "flagsCommand", flags);
    out = json_pack("{s:s, s:{s:i, s:o, s:o, s:o}, s:{s:s, s:s, s:s, s:s, s:s}, s:o, s:s, s:s,"
                    " s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:s, s:o, s:o, s:o}",
                    "name", "pgcmk", "ports", "https", emu_https_port, "http",
                    emu_http_port >= 0 ? json_integer(emu_http_port) : json_null(), "kmip",
                    emu_kmip_port >= 0 ? json_integer(emu_kmip_port) : json_null(), "vault",
                    emu_vault_port >= 0 ? json_integer(emu_vault_port) : json_null(), "endpoints",
                    "resourceManager", arm, "activeDirectory", adfs, "microsoftGraph", arm,
                    "metadata", "/metadata/endpoints?api-version=2022-09-01", "portal", "/portal/",
                    "caFile", emu.ca_path ? json_string(emu.ca_path) : json_null(), "dataDir",
                    emu.data_dir, "tenantId", PGCMK_TENANT_ID, "subscriptionId",
                    PGCMK_SUBSCRIPTION_ID, "defaultLocation", PGCMK_DEFAULT_LOCATION, "admin",
                    "clientId", PGCMK_ADMIN_CLIENT_ID, "clientSecret", PGCMK_ADMIN_CLIENT_SECRET,
                    "objectId", PGCMK_ADMIN_OBJECT_ID, "vaultDnsSuffix", suffix + 1, "authMode",
                    emu.auth_mode, "azCloudRegister", az, "kmip", emu_kmip_json(), "vault",
                    emu_vault_json());
    json_object_set_new(out, "kes", pgcmk_kes_info());
    pgcmk_resp_json(rs, 200, out);
    free(flags);
    free(cmd);
    free(quoted);
    free(cfg_text);
    free(suffix);
    free(adfs);
    free(arm);
    return 0;
}

static json_t *
emu_clock_json(void)
{
    char now[PGCMK_TIME_LEN], wall[PGCMK_TIME_LEN];

    pgcmk_time_format(pgcmk_clock_now(), now);
    pgcmk_time_format(pgcmk_wall_ms(), wall);
    return json_pack("{s:s, s:s, s:b, s:I}", "now", now, "wallClock", wall, "frozen",
                     pgcmk_clock_frozen(), "offsetMs", (json_int_t)pgcmk_clock_offset());
}

static int
emu_clock_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    PGCMK_UNUSED(rq);
    PGCMK_UNUSED(err);
    pgcmk_resp_json(rs, 200, emu_clock_json());
    return 0;
}

/* The latest instant the clock may show (9999-12-31T23:59:59.999Z): "set" cannot go further,
 * and repeated "advance"s past it would overflow the int64 offset (signed overflow). */
#define EMU_CLOCK_MAX_MS INT64_C(253402300799999)

/* The clock survives restarts: its offset (or frozen instant) lives in the settings table. */
static int
emu_clock_save(struct pgcmk_err *err)
{
    char v[96];

    snprintf(v, sizeof(v), "%lld %d %lld", (long long)pgcmk_clock_offset(), pgcmk_clock_frozen(),
             (long long)pgcmk_clock_frozen_at());
    return pgcmk_store_setting_put("clock", v, err);
}

static int
emu_clock_post(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    json_t *in = rq->json, *v;
    const char *key;
    int64_t ms;

    if (json_object_size(in) != 1)
        return pgcmk_err_set(err, PGCMK_E_INVALID_CONTENT, NULL,
                             "Give exactly one of: {\"advance\":\"P91D\"}, "
                             "{\"set\":\"2030-01-01T00:00:00Z\"}, {\"freeze\":true}, "
                             "{\"resume\":true}.");
    json_object_foreach(in, key, v) {
        if (strcmp(key, "advance") == 0) {
            if (!json_is_string(v) || pgcmk_duration_parse(json_string_value(v), &ms))
                return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "advance",
                                     "'advance' must be an ISO-8601 duration such as P91D, "
                                     "PT1H or P1DT12H.");
            if (ms > EMU_CLOCK_MAX_MS - pgcmk_clock_now())
                return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "advance",
                                     "'advance' would move the clock past "
                                     "9999-12-31T23:59:59Z.");
            pgcmk_clock_advance(ms);
        } else if (strcmp(key, "set") == 0) {
            if (!json_is_string(v) || pgcmk_time_parse(json_string_value(v), &ms))
                return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, "set",
                                     "'set' must be an ISO-8601 date-time such as "
                                     "2030-01-01T00:00:00Z.");
            pgcmk_clock_set(ms);
        } else if (strcmp(key, "freeze") == 0 && json_is_true(v)) {
            pgcmk_clock_freeze();
        } else if (strcmp(key, "resume") == 0 && json_is_true(v)) {
            pgcmk_clock_resume();
        } else {
            return pgcmk_err_set(err, PGCMK_E_INVALID_PARAMETER, key,
                                 "Unknown clock command '%.32s': use advance, set, freeze:true "
                                 "or resume:true.",
                                 key);
        }
    }
    if (emu_clock_save(err))
        return -1;
    pgcmk_resp_json(rs, 200, emu_clock_json());
    return 0;
}

static int
emu_health(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    char *v = NULL;
    int rc = pgcmk_store_setting_get("clock", &v);
    char now[PGCMK_TIME_LEN];

    PGCMK_UNUSED(rq);
    PGCMK_UNUSED(err);
    free(v);
    pgcmk_time_format(pgcmk_clock_now(), now);
    pgcmk_resp_json(rs, rc < 0 ? 503 : 200,
                    json_pack("{s:s, s:s, s:i, s:I, s:s}", "status",
                              rc < 0 ? "Unhealthy" : "Healthy", "store", rc < 0 ? "error" : "ok",
                              "schemaVersion", pgcmk_store_version(), "uptimeMs",
                              (json_int_t)(pgcmk_wall_ms() - emu.started_ms), "now", now));
    return 0;
}

static void
emu_route_add(const struct pgcmk_route *r, void *arg)
{
    json_t *flags = json_array();

    if (r->flags & ROUTE_F_NOAUTH)
        json_array_append_new(flags, json_string("no-auth"));
    if (r->flags & ROUTE_F_APIVER)
        json_array_append_new(flags, json_string("api-version"));
    if (r->flags & ROUTE_F_JSON)
        json_array_append_new(flags, json_string("json-body"));
    json_array_append_new(arg, json_pack("{s:s, s:s, s:s, s:o, s:s?}", "method", r->method,
                                         "pattern", r->pattern, "plane",
                                         r->plane == PGCMK_PLANE_VAULT ? "vault" : "arm", "flags",
                                         flags, "permission", r->perm));
}

/* GET /emulator/routes: every route and every ARM resource type with its api-versions (the
 * API coverage table in docs/coverage.md is generated from it). */
static int
emu_route_list(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const struct pgcmk_arm_type *const *types;
    size_t n = pgcmk_arm_types(&types);
    json_t *routes = json_array(), *tl = json_array();

    (void)rq;
    (void)err;
    pgcmk_router_each(emu_route_add, routes);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array();

        for (const char *const *p = types[i]->versions; p && *p; p++)
            json_array_append_new(v, json_string(*p));
        unsigned f = types[i]->flags;

        json_array_append_new(
            tl,
            json_pack("{s:s++, s:o, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b}", "type", types[i]->ns,
                      "/", types[i]->type, "apiVersions", v, "async", (f & ARM_T_ASYNC) != 0,
                      "identity", (f & ARM_T_IDENTITY) != 0, "accepted", (f & ARM_T_ACCEPTED) != 0,
                      "asyncDelete", (f & ARM_T_ASYNC_DELETE) != 0, "put", !(f & ARM_T_NO_PUT),
                      "patch", !(f & (ARM_T_NO_PUT | ARM_T_NO_PATCH)), "delete",
                      !(f & ARM_T_NO_DELETE), "external", (f & ARM_T_EXTERNAL) != 0));
    }
    pgcmk_resp_json(rs, 200, json_pack("{s:o, s:o}", "routes", routes, "types", tl));
    return 0;
}

static int
emu_stats(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    json_t *errors = json_object();

    PGCMK_UNUSED(rq);
    PGCMK_UNUSED(err);
    for (int c = 1; c < PGCMK_E__COUNT; c++) {
        unsigned long n = pgcmk_err_counted((enum pgcmk_errc)c);

        if (n) {
            char key[96];

            snprintf(key, sizeof(key), "%d %s", pgcmk_err_status((enum pgcmk_errc)c),
                     pgcmk_err_code((enum pgcmk_errc)c));
            json_object_set_new(errors, key, json_integer((json_int_t)n));
        }
    }
    {
        json_t *events = json_object();

        for (int e = 0; e < PGCMK_EV__COUNT; e++)
            json_object_set_new(
                events, pgcmk_event_name((enum pgcmk_event_kind)e),
                json_integer((json_int_t)pgcmk_events_count((enum pgcmk_event_kind)e)));
        pgcmk_resp_json(rs, 200, json_pack("{s:o, s:o}", "errors", errors, "events", events));
    }
    return 0;
}

void
pgcmk_emulator_error_table(FILE *out)
{
    fputs("# Error codes\n\n"
          "Generated from the `PGCMK_ERRORS` list in `include/pgcmk/err.h` by "
          "`build/pgcmkd --error-table`; do not edit by hand.\n"
          "Evidence: V = verified in the public API specs, O = observed from the real service, "
          "I = inferred.\n\n"
          "| status | code | evidence | meaning |\n|---|---|---|---|\n",
          out);
    for (int c = 1; c < PGCMK_E__COUNT; c++) {
        enum pgcmk_errc e = (enum pgcmk_errc)c;
        const char *inner = pgcmk_err_inner(e);

        fprintf(out, "| %d | `%s`%s%s%s | %s | %s |\n", pgcmk_err_status(e),
                pgcmk_err_code(pgcmk_err_parent(e)), inner ? ", innererror `" : "",
                inner ? inner : "", inner ? "`" : "", pgcmk_err_evidence(e), pgcmk_err_doc(e));
    }
}

static const struct pgcmk_route emu_routes[] = {
    {"GET", "/emulator/info", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_NOAUTH, NULL, emu_info},
    {"GET", "/emulator/clock", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, emu_clock_get},
    {"POST", "/emulator/clock", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_JSON, NULL, emu_clock_post},
    {"GET", "/emulator/health", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_NOAUTH, NULL, emu_health},
    {"GET", "/emulator/stats", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, 0, NULL, emu_stats},
    {"GET", "/emulator/routes", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_NOAUTH, NULL,
     emu_route_list},
};

int
pgcmk_emulator_init(const struct pgcmk_emulator_info *info)
{
    char *v = NULL;
    int rc;

    emu = *info;
    rc = pgcmk_store_setting_get("clock", &v);
    if (rc < 0)
        return -1;
    if (rc == 0 && v) {
        long long off = 0, at = 0;
        int frozen = 0;

        if (sscanf(v, "%lld %d %lld", &off, &frozen, &at) == 3)
            pgcmk_clock_restore(off, frozen, at);
        else
            LOG_WARN("ignoring a malformed saved clock");
    }
    free(v);
    pgcmk_router_add(emu_routes, PGCMK_ARRAY_LEN(emu_routes));
    return 0;
}
