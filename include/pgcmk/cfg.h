/* cfg.h - the daemon's configuration: one table gives flags, PGCMK_* variables and --help. */
#ifndef PGCMK_CFG_H
#define PGCMK_CFG_H

#include <stdio.h>

#include "pgcmk/err.h"

enum pgcmk_auth_mode { PGCMK_AUTH_OPEN = 0, PGCMK_AUTH_STRICT = 1 };

struct pgcmk_cfg {
    char *data_dir;  /* --data-dir, default ./var */
    char *db;        /* --db: the SQLite file, default DATA_DIR/pgcmk.sqlite; ":memory:" allowed */
    int port;        /* --port: HTTPS, default 8443, 0 = any free port */
    char *port_file; /* --port-file: written once the HTTPS listener accepts */
    int http_port;   /* --http-port: plain HTTP, -1 = off, 0 = any free port */
    char *http_port_file;
    char *listen;   /* --listen: comma-separated addresses, default "127.0.0.1,::1" */
    int auth;       /* --auth open|strict */
    int log_level;  /* --log-level error|warn|info|debug */
    char *tls_cert; /* --tls-cert / --tls-key: bring your own PEM files */
    char *tls_key;
    char *web_dir;     /* --web: the portal's files, default ./web */
    char *schemas_dir; /* --schemas: JSON schemas, default ./schemas */
    int threads;       /* --threads: HTTP thread pool, default = cores */
    int workers;       /* --workers: long-running operation threads */
    int max_body_kb;   /* --max-body-kb: request bodies over this get 413 */
    int timeout_s;     /* --timeout: idle connection timeout */
    int sync_full;     /* --sync normal|full: SQLite synchronous mode */
    int lro_min_polls; /* --lro-min-polls: polls answered InProgress before a finished LRO shows */
    int page_size;     /* --page-size: items per page before nextLink */
    char *key_check_interval; /* --key-check-interval: periodic key checks (virtual clock) */
    char *key_loss_delay;     /* --key-loss-delay: how long a lost key goes unnoticed */
    int kmip_port;        /* --kmip-port: KMIP over mutual TLS, default 5696, 0 = any, -1 = off */
    char *kmip_port_file; /* --kmip-port-file: written once the KMIP listener accepts */
    int kmip_max_conns;   /* --kmip-max-connections: KMIP connections served at once */
    int vault_port;       /* --vault-port: the Vault API (HTTPS), default 8200, 0 = any, -1 = off */
    char *vault_port_file; /* --vault-port-file: written once the Vault listener accepts */
    int vault_http_port;   /* --vault-http-port: the Vault API over plain HTTP, -1 = off */
    char *kes_configs; /* --kes-config FILE (repeatable): one KES server per file, '\n'-separated */
    int pg_mode;       /* --pg-mode modeled|real (enum pgcmk_pg_mode) */
    char *pg_bin;      /* --pg-bin: PostgreSQL's binaries, "" = auto-detect */
    char *pg_user;     /* --pg-user: the user instances run as, "" = postgres when root */
    char *pg_ports;    /* --pg-ports: "54320-54999" (never 5432), "0" = any free port */
    int pg_max_instances; /* --pg-max-instances */
    int pg_at_rest;       /* --pg-at-rest none|fs|auto (enum pgcmk_pg_at_rest) */
};

enum pgcmk_pg_mode { PGCMK_PG_MODELED = 0, PGCMK_PG_REAL = 1 };

enum pgcmk_pg_at_rest {
    PGCMK_PG_AT_REST_NONE = 0,
    PGCMK_PG_AT_REST_FS = 1,
    PGCMK_PG_AT_REST_AUTO = 2
};

/* Defaults, then PGCMK_* environment, then argv. On a bad value: message on `errs`, -1.
 * `--help` prints the table and returns 1 (the caller exits 0). */
int pgcmk_cfg_load(struct pgcmk_cfg *cfg, int argc, char **argv, FILE *errs);
void pgcmk_cfg_release(struct pgcmk_cfg *cfg);
void pgcmk_cfg_help(FILE *out, const char *argv0);
/* Prints "name=value" lines, sensitive values as ***. */
void pgcmk_cfg_print(FILE *out, const struct pgcmk_cfg *cfg);

#endif
