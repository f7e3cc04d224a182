/* kes.h - MinIO KES-compatible key servers (issue 14): each server on its own mutual-TLS port
 * (src/net), configured from a KES config.yml (conf.c), with KES's identities and policies
 * (auth.c), routes (routes.c), audit and error streams and metrics (log.c); its keys go through
 * include/pgcmk/kesstore.h. server.c keeps the servers and owns /emulator/kes/servers. */
#ifndef PGCMK_KES_H
#define PGCMK_KES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "pgcmk/core.h"
#include "pgcmk/err.h"
#include "pgcmk/kesstore.h"

#define PGCMK_KES_DEFAULT_PORT 7373

/* ---- the config file (conf.c) -------------------------------------------------------------- */

struct pgcmk_kes_policy_cfg {
    char *name;
    char **allow, **deny, **identities;
    int n_allow, n_deny, n_identities;
};

struct pgcmk_kes_api_cfg {
    char *path;
    int skip_auth;
    int64_t timeout_ms; /* 0 = the route's default */
};

struct pgcmk_kes_conf {
    char *address;        /* as written ("0.0.0.0:7373") */
    char *host;           /* where pgcmk listens: loopback for a wildcard address */
    int port;             /* 0 = any free port */
    char *admin;          /* hex identity, "" when disabled (root: disabled) */
    int admin_field_root; /* 1: written as the older `root:` */
    char *tls_key, *tls_cert, *tls_ca, *tls_password; /* files (absolute), or NULL */
    int tls_auth;                                     /* tls.auth: on */
    struct pgcmk_kes_policy_cfg *policies;
    int n_policies;
    struct pgcmk_kes_api_cfg *apis;
    int n_apis;
    char **keys;
    int n_keys;
    struct pgcmk_kes_cache_cfg cache;
    int log_error, log_audit; /* on = 1 */
    int has_vault;
    struct pgcmk_kes_vault_cfg vault; /* its strings are owned by the conf (freed with it) */
    char *vault_strs[16];             /* owner of the strings vault points at */
};

/* Parses a KES config.yml (YAML 1.1 through libyaml; JSON is YAML too). ${VAR} values come from
 * the environment; relative file paths are made absolute against base_dir (NULL: the current
 * directory). 0, or -1 with KES's reason in why (kesconf's wording). */
int pgcmk_kes_conf_parse(const char *text, size_t len, const char *base_dir,
                         struct pgcmk_kes_conf *c, char *why, size_t why_cap) PGCMK_WUR;
void pgcmk_kes_conf_free(struct pgcmk_kes_conf *c);
/* "5m0s", "20s", "1h30m", "300ms", "0": Go's time.ParseDuration. 0 or -1. */
int pgcmk_kes_duration_parse(const char *s, int64_t *ms) PGCMK_WUR;

/* ---- identities, API keys, policies (auth.c) ----------------------------------------------- */

/* kes:v1: API key -> its Ed25519 seed (32 bytes). 0 or -1. */
int pgcmk_kes_apikey_parse(const char *key, uint8_t seed[32]) PGCMK_WUR;
/* The identity of an API key (hex SHA-256 of its Ed25519 SPKI). 0 or -1. */
int pgcmk_kes_apikey_identity(const char *key, char identity[65]) PGCMK_WUR;
/* 1 when a policy's pattern matches the path: exact, or a prefix when it ends in '*'. */
int pgcmk_kes_pattern_match(const char *pattern, const char *path);
/* 1 when the policy allows the path: no deny matches and an allow matches. */
int pgcmk_kes_policy_allows(const struct pgcmk_kes_policy_cfg *p, const char *path);
/* 1 when s is a valid KES name (auth.go validName), or pattern ('*' last) for pattern = 1. */
int pgcmk_kes_valid_name(const char *s, int pattern);

/* ---- servers (server.c) -------------------------------------------------------------------- */

/* Adds the /emulator/kes routes and restores the stored servers; cert_pem/key_pem serve a
 * server whose config has no tls: (pgcmk's CA), ca_path is shown to clients. */
int pgcmk_kes_init(const char *cert_pem, const char *key_pem, const char *ca_path) PGCMK_WUR;
/* Starts the servers stored by POST (after the listeners and the clock are up). */
void pgcmk_kes_start_stored(void);
/* Starts a --kes-config FILE server (not stored). 0, or -1 with the reason. */
int pgcmk_kes_start_file(const char *path, struct pgcmk_err *err) PGCMK_WUR;
/* Stops every server (shutdown). */
void pgcmk_kes_shutdown(void);
/* [{"name","port","url"}] for /emulator/info (new reference). */
json_t *pgcmk_kes_info(void);
/* Prints "  KES server NAME:  https://127.0.0.1:PORT" lines for the banner. */
void pgcmk_kes_banner(void);

/* The reconciler's explain: NULL when no pgcmk KES server listens on port, else
 * {"server","identity":{"known","admin","policy"},"allowed","key":{"exists"},
 *  "keystore":{"reachable","why"},"cache":{"cached","expiresAt"}} (new reference). op is the
 * route's verb: "generate", "decrypt", "create", ... */
json_t *pgcmk_kes_diagnose(int port, const char *identity, const char *key, const char *op);

#endif
