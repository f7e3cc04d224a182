/* cfg.c - the one configuration table: flags, PGCMK_* environment variables, --help. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgcmk/cfg.h"
#include "pgcmk/core.h"
#include "pgcmk/log.h"

enum cfg_type { CFG_STR, CFG_INT, CFG_ENUM };

#define CFG_F_SENSITIVE 1u
#define CFG_F_LIST      2u /* a repeatable flag: each --flag adds a line to the value */

struct cfg_entry {
    const char *name; /* flag name; the variable is PGCMK_ + upper case, '-' -> '_' */
    enum cfg_type type;
    size_t offset;
    const char *def;
    long min, max;
    const char *const *choices; /* CFG_ENUM: the names, index = stored value */
    unsigned flags;
    const char *help;
};

static const char *const auth_choices[] = {"open", "strict", NULL};
static const char *const level_choices[] = {"error", "warn", "info", "debug", NULL};
static const char *const sync_choices[] = {"normal", "full", NULL};
static const char *const pg_mode_choices[] = {"modeled", "real", NULL};
static const char *const pg_at_rest_choices[] = {"none", "fs", "auto", NULL};

#define OFF(f) offsetof(struct pgcmk_cfg, f)
static const struct cfg_entry cfg_table[] = {
    {"data-dir", CFG_STR, OFF(data_dir), "./var", 0, 0, NULL, 0,
     "data directory: SQLite store, master key, CA and server certificate"},
    {"db", CFG_STR, OFF(db), "", 0, 0, NULL, 0,
     "SQLite file (default DATA_DIR/pgcmk.sqlite; ':memory:' keeps nothing)"},
    {"port", CFG_INT, OFF(port), "8443", 0, 65535, NULL, 0, "HTTPS port (0 = any free port)"},
    {"port-file", CFG_STR, OFF(port_file), "", 0, 0, NULL, 0,
     "write the HTTPS port here once the listener accepts"},
    {"http-port", CFG_INT, OFF(http_port), "-1", -1, 65535, NULL, 0,
     "plain HTTP port for curl and the portal (-1 = off, 0 = any free port)"},
    {"http-port-file", CFG_STR, OFF(http_port_file), "", 0, 0, NULL, 0,
     "write the plain HTTP port here once it accepts"},
    {"listen", CFG_STR, OFF(listen), "127.0.0.1,::1", 0, 0, NULL, 0,
     "comma-separated addresses to listen on"},
    {"auth", CFG_ENUM, OFF(auth), "open", 0, 0, auth_choices, 0,
     "open: requests without a token act as the admin; strict: tokens required"},
    {"log-level", CFG_ENUM, OFF(log_level), "info", 0, 0, level_choices, 0,
     "error, warn, info or debug"},
    {"tls-cert", CFG_STR, OFF(tls_cert), "", 0, 0, NULL, 0,
     "PEM server certificate (chain) to use instead of the generated one"},
    {"tls-key", CFG_STR, OFF(tls_key), "", 0, 0, NULL, CFG_F_SENSITIVE,
     "PEM private key for --tls-cert"},
    {"web", CFG_STR, OFF(web_dir), "./web", 0, 0, NULL, 0, "directory of the portal's files"},
    {"schemas", CFG_STR, OFF(schemas_dir), "./schemas", 0, 0, NULL, 0,
     "directory of the JSON schemas"},
    {"threads", CFG_INT, OFF(threads), "0", 0, 64, NULL, 0,
     "HTTP thread pool size (0 = number of cores)"},
    {"workers", CFG_INT, OFF(workers), "4", 1, 64, NULL, 0, "long-running operation threads"},
    {"max-body-kb", CFG_INT, OFF(max_body_kb), "4096", 1, 1048576, NULL, 0,
     "largest request body accepted, in KiB (larger gets 413)"},
    {"timeout", CFG_INT, OFF(timeout_s), "120", 1, 86400, NULL, 0,
     "idle connection timeout in seconds"},
    {"sync", CFG_ENUM, OFF(sync_full), "normal", 0, 0, sync_choices, 0,
     "SQLite synchronous mode: normal (survives process crashes) or full (also power loss)"},
    {"lro-min-polls", CFG_INT, OFF(lro_min_polls), "0", 0, 100, NULL, 0,
     "polls a long-running operation answers InProgress before its result shows"},
    {"page-size", CFG_INT, OFF(page_size), "100", 1, 1000, NULL, 0,
     "items per list page before a nextLink"},
    {"key-check-interval", CFG_STR, OFF(key_check_interval), "PT60S", 0, 0, NULL, 0,
     "periodic key check of every CMK database, on the virtual clock (ISO 8601 duration)"},
    {"key-loss-delay", CFG_STR, OFF(key_loss_delay), "PT0S", 0, 0, NULL, 0,
     "time from losing a key to Inaccessible, on the virtual clock (Azure: up to PT10M)"},
    {"kmip-port", CFG_INT, OFF(kmip_port), "5696", -1, 65535, NULL, 0,
     "KMIP server port, mutual TLS on the --listen addresses (0 = any free port, -1 = off)"},
    {"kmip-port-file", CFG_STR, OFF(kmip_port_file), "", 0, 0, NULL, 0,
     "write the KMIP port here once its listener accepts"},
    {"kmip-max-connections", CFG_INT, OFF(kmip_max_conns), "256", 1, 4096, NULL, 0,
     "KMIP connections served at once (one thread each); more are closed at once"},
    {"vault-port", CFG_INT, OFF(vault_port), "8200", -1, 65535, NULL, 0,
     "HashiCorp Vault-compatible API port, HTTPS on the --listen addresses (0 = any free port, "
     "-1 = off)"},
    {"vault-port-file", CFG_STR, OFF(vault_port_file), "", 0, 0, NULL, 0,
     "write the Vault API's HTTPS port here once its listener accepts"},
    {"vault-http-port", CFG_INT, OFF(vault_http_port), "-1", -1, 65535, NULL, 0,
     "the Vault API over plain HTTP too, like `vault server -dev` (0 = any free port, -1 = off)"},
    {"kes-config", CFG_STR, OFF(kes_configs), "", 0, 0, NULL, CFG_F_LIST,
     "start a KES server from this KES config.yml (repeatable: one server per file)"},
    {"pg-mode", CFG_ENUM, OFF(pg_mode), "modeled", 0, 0, pg_mode_choices, 0,
     "modeled: rows under the DEK in SQLite; real: a PostgreSQL 15 instance per server"},
    {"pg-bin", CFG_STR, OFF(pg_bin), "", 0, 0, NULL, 0,
     "PostgreSQL 15's binaries (default: /usr/lib/postgresql/15/bin)"},
    {"pg-user", CFG_STR, OFF(pg_user), "", 0, 0, NULL, 0,
     "the unprivileged user real instances run as (default: postgres when root, else yours)"},
    {"pg-ports", CFG_STR, OFF(pg_ports), "54320-54999", 0, 0, NULL, 0,
     "the port range of real instances (0 = any free port; 5432 is never used)"},
    {"pg-max-instances", CFG_INT, OFF(pg_max_instances), "50", 1, 1000, NULL, 0,
     "real instances one daemon runs at most"},
    {"pg-at-rest", CFG_ENUM, OFF(pg_at_rest), "none", 0, 0, pg_at_rest_choices, 0,
     "none, fs (data directory on gocryptfs under the DEK) or auto (fs when /dev/fuse and "
     "gocryptfs exist)"},
};
#undef OFF

static char **
cfg_str_slot(struct pgcmk_cfg *cfg, const struct cfg_entry *e)
{
    return (char **)((char *)cfg + e->offset);
}

static int *
cfg_int_slot(struct pgcmk_cfg *cfg, const struct cfg_entry *e)
{
    return (int *)((char *)cfg + e->offset);
}

static int
cfg_set(struct pgcmk_cfg *cfg, const struct cfg_entry *e, const char *value, const char *from,
        FILE *errs)
{
    if (e->type == CFG_STR) {
        char **slot = cfg_str_slot(cfg, e);
        char *v = (e->flags & CFG_F_LIST) && from[0] == '-' && *slot && **slot
                      ? pgcmk_xasprintf("%s\n%s", *slot, value)
                      : pgcmk_xstrdup(value);

        free(*slot);
        *slot = v;
        return 0;
    }
    if (e->type == CFG_INT) {
        char *end;
        long v;

        errno = 0;
        v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < e->min || v > e->max) {
            fprintf(errs, "pgcmkd: %s: '%.64s' is not a whole number from %ld to %ld\n", from,
                    value, e->min, e->max);
            return -1;
        }
        *cfg_int_slot(cfg, e) = (int)v;
        return 0;
    }
    for (int i = 0; e->choices[i]; i++) {
        if (strcasecmp(value, e->choices[i]) == 0) {
            *cfg_int_slot(cfg, e) = i;
            return 0;
        }
    }
    fprintf(errs, "pgcmkd: %s: '%.64s' is not one of:", from, value);
    for (int i = 0; e->choices[i]; i++)
        fprintf(errs, " %s", e->choices[i]);
    fputc('\n', errs);
    return -1;
}

static void
cfg_env_name(const struct cfg_entry *e, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "PGCMK_");

    for (const char *p = e->name; *p && n + 1 < cap; p++)
        out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

void
pgcmk_cfg_help(FILE *out, const char *argv0)
{
    fprintf(out,
            "usage: %s [options]\n\n"
            "pgcmkd emulates Azure Resource Manager, Key Vault, the token service and the\n"
            "PostgreSQL resource providers on one HTTPS port. Every option can also be set\n"
            "by the environment variable shown.\n\n",
            argv0);
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(cfg_table); i++) {
        const struct cfg_entry *e = &cfg_table[i];
        char env[64], arg[64];

        cfg_env_name(e, env, sizeof(env));
        snprintf(arg, sizeof(arg), "--%s %s", e->name,
                 e->type == CFG_INT ? "N" : (e->type == CFG_ENUM ? "MODE" : "VALUE"));
        fprintf(out, "  %-26s %s\n  %-26s env %s, default '%s'\n", arg, e->help, "", env, e->def);
    }
    fprintf(out, "  %-26s %s\n  %-26s %s\n  %-26s %s\n", "--print-config",
            "print the effective configuration and exit", "--error-table",
            "print the error table as Markdown and exit", "--help", "this text");
}

void
pgcmk_cfg_print(FILE *out, const struct pgcmk_cfg *cfg)
{
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(cfg_table); i++) {
        const struct cfg_entry *e = &cfg_table[i];
        struct pgcmk_cfg *c = (struct pgcmk_cfg *)cfg;

        if (e->type == CFG_STR) {
            const char *v = *cfg_str_slot(c, e);

            fprintf(out, "%s=%s\n", e->name, (e->flags & CFG_F_SENSITIVE) && *v ? "***" : v);
        } else if (e->type == CFG_INT) {
            fprintf(out, "%s=%d\n", e->name, *cfg_int_slot(c, e));
        } else {
            fprintf(out, "%s=%s\n", e->name, e->choices[*cfg_int_slot(c, e)]);
        }
    }
}

int
pgcmk_cfg_load(struct pgcmk_cfg *cfg, int argc, char **argv, FILE *errs)
{
    struct option opts[PGCMK_ARRAY_LEN(cfg_table) + 4];
    size_t n = 0;
    int c, idx;

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(cfg_table); i++)
        if (cfg_set(cfg, &cfg_table[i], cfg_table[i].def, "default", errs))
            PGCMK_BUG("bad default for %s", cfg_table[i].name);
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(cfg_table); i++) {
        char env[64], from[96];
        const char *v;

        cfg_env_name(&cfg_table[i], env, sizeof(env));
        v = getenv(env);
        if (v == NULL)
            continue;
        snprintf(from, sizeof(from), "%s", env);
        if (cfg_set(cfg, &cfg_table[i], v, from, errs))
            return -1;
    }
    for (n = 0; n < PGCMK_ARRAY_LEN(cfg_table); n++)
        opts[n] = (struct option){cfg_table[n].name, required_argument, NULL, (int)n};
    opts[n++] = (struct option){"help", no_argument, NULL, 1000};
    opts[n++] = (struct option){"print-config", no_argument, NULL, 1001};
    opts[n++] = (struct option){"error-table", no_argument, NULL, 1002};
    opts[n] = (struct option){NULL, 0, NULL, 0};
    optind = 0; /* 0, not 1: glibc then forgets the previous scan's argv */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        char from[96];

        if (c == 'h' || c == 1000) {
            pgcmk_cfg_help(stdout, argv[0]);
            return 1;
        }
        if (c == 1001)
            return 2;
        if (c == 1002)
            return 3;
        if (c == '?' || c < 0 || (size_t)c >= PGCMK_ARRAY_LEN(cfg_table)) {
            fprintf(errs, "pgcmkd: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return -1;
        }
        snprintf(from, sizeof(from), "--%s", cfg_table[c].name);
        if (cfg_set(cfg, &cfg_table[c], optarg, from, errs))
            return -1;
    }
    if (optind < argc) {
        fprintf(errs, "pgcmkd: unexpected argument '%.64s' (see --help)\n", argv[optind]);
        return -1;
    }
    if ((*cfg->tls_cert == '\0') != (*cfg->tls_key == '\0')) {
        fprintf(errs, "pgcmkd: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if (cfg->threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);

        cfg->threads = nc > 0 && nc < 64 ? (int)nc : 2;
    }
    pgcmk_log_level = cfg->log_level;
    return 0;
}

void
pgcmk_cfg_release(struct pgcmk_cfg *cfg)
{
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(cfg_table); i++) {
        if (cfg_table[i].type == CFG_STR) {
            char **slot = cfg_str_slot(cfg, &cfg_table[i]);

            free(*slot);
            *slot = NULL;
        }
    }
}
