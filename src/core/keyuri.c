/* keyuri.c - the one parser of Azure Key Vault key URIs (see keyuri.h for the accepted forms). */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/core.h"
#include "pgcmk/keyuri.h"

static const struct {
    const char *suffix;
    int local;
} keyuri_hosts[] = {
    {".vault.azure.net", 0},
    {".vault.localhost", 1},
};

/* n characters of s are letters, digits or hyphens. */
static int
keyuri_is_name(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

static int
keyuri_fail(struct pgcmk_keyuri *out, const char **why, const char *reason)
{
    memset(out, 0, sizeof(*out));
    if (why)
        *why = reason;
    return -1;
}

int
pgcmk_keyuri_parse(const char *uri, struct pgcmk_keyuri *out, const char **why)
{
    const char *host, *path, *colon, *p;
    size_t hl, vl = 0, n;
    int known = 0;

    memset(out, 0, sizeof(*out));
    if (uri == NULL || *uri == '\0')
        return keyuri_fail(out, why, "the URI is empty");
    if (strncasecmp(uri, "https://", 8) != 0)
        return keyuri_fail(out, why, "the URI does not start with https://");
    host = uri + 8;
    path = strchr(host, '/');
    if (path == NULL)
        return keyuri_fail(out, why, "the URI has no path");
    colon = memchr(host, ':', (size_t)(path - host));
    hl = (size_t)((colon ? colon : path) - host);
    for (size_t i = 0; i < PGCMK_ARRAY_LEN(keyuri_hosts) && !known; i++) {
        size_t sl = strlen(keyuri_hosts[i].suffix);

        if (hl > sl && strncasecmp(host + hl - sl, keyuri_hosts[i].suffix, sl) == 0) {
            known = 1;
            vl = hl - sl;
            out->local = keyuri_hosts[i].local;
        }
    }
    if (!known)
        return keyuri_fail(out, why,
                           "the host is not {vault}.vault.azure.net or {vault}.vault.localhost");
    if (vl < 3 || vl > PGCMK_KEYURI_VAULT_MAX || !keyuri_is_name(host, vl))
        return keyuri_fail(out, why, "the vault name is not 3-24 letters, digits or hyphens");
    if (colon) {
        long port = 0;

        for (p = colon + 1; p < path; p++) {
            if (!isdigit((unsigned char)*p) || port > 65535)
                return keyuri_fail(out, why, "the port is not a number");
            port = port * 10 + (*p - '0');
        }
        if (p == colon + 1 || port < 1 || port > 65535)
            return keyuri_fail(out, why, "the port is not a number from 1 to 65535");
        if (!out->local && port != 443)
            return keyuri_fail(out, why, "a vault.azure.net key URI can only name port 443");
        out->port = (int)port;
    }
    for (size_t i = 0; i < vl; i++)
        out->vault[i] = (char)tolower((unsigned char)host[i]);
    if (strncasecmp(path, "/keys/", 6) != 0)
        return keyuri_fail(out, why, "the path does not start with /keys/");
    p = path + 6;
    n = strcspn(p, "/");
    if (n == 0 || n > PGCMK_KEYURI_NAME_MAX || !keyuri_is_name(p, n))
        return keyuri_fail(out, why, "the key name is not 1-127 letters, digits or hyphens");
    memcpy(out->name, p, n);
    p += n;
    if (*p == '/' && p[1] != '\0') {
        p++;
        n = strcspn(p, "/");
        if (n != PGCMK_KEYURI_VERSION_LEN)
            return keyuri_fail(out, why, "the key version is not 32 hex digits");
        for (size_t i = 0; i < n; i++)
            if (!isxdigit((unsigned char)p[i]))
                return keyuri_fail(out, why, "the key version is not 32 hex digits");
        memcpy(out->version, p, n);
        p += n;
    }
    if (*p == '/')
        p++;
    if (*p != '\0')
        return keyuri_fail(out, why, "the URI goes on after the key version");
    return 0;
}
