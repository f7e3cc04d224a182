/* keyuri.h - the one parser of Azure Key Vault key URIs, used by the CMK validators and the
 * encryption agent alike, so both give the same answer for the same URI.
 *
 * Accepted (scheme, host and the "keys" segment case-insensitive):
 *   https://{vault}.vault.azure.net[:443]/keys/{name}[/{version}][/]
 *   https://{vault}.vault.localhost[:PORT]/keys/{name}[/{version}][/]
 * where {vault} is 3-24 letters, digits or hyphens (ARM's vault name pattern), {name} is 1-127
 * letters, digits or hyphens (the data plane's key name pattern) and {version} is exactly 32 hex
 * digits, as every Key Vault key version is (the ARM spec's `^[a-fA-F0-9]{32}$`).
 * A key URI names the vault's own endpoint: on vault.azure.net only port 443 (written or not) is
 * that endpoint, so `:8443` is refused. The emulator's own form may carry any port (a stale one
 * after a restart on another port: the daemon's own port is used to reach it). No query, fragment,
 * user info or percent-encoding. */
#ifndef PGCMK_KEYURI_H
#define PGCMK_KEYURI_H

#define PGCMK_KEYURI_VAULT_MAX   24
#define PGCMK_KEYURI_NAME_MAX    127
#define PGCMK_KEYURI_VERSION_LEN 32

struct pgcmk_keyuri {
    char vault[PGCMK_KEYURI_VAULT_MAX + 1];     /* lower case */
    char name[PGCMK_KEYURI_NAME_MAX + 1];       /* as written */
    char version[PGCMK_KEYURI_VERSION_LEN + 1]; /* as written; "" when the URI has none */
    int local;                                  /* 1: *.vault.localhost, 0: *.vault.azure.net */
    int port;                                   /* the port written in the URI, 0 when none */
};

/* Parses uri into *out. 0, or -1 with *out zeroed and *why (when not NULL) set to a static
 * phrase naming the rule that failed ("the version is not 32 hex digits", ...). */
int pgcmk_keyuri_parse(const char *uri, struct pgcmk_keyuri *out, const char **why);

#endif
