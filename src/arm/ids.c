/* ids.c - ARM resource ids and the subscription check. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/arm.h"
#include "pgcmk/wellknown.h"

static int
id_is_guid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

int
pgcmk_arm_check_sub(const char *sub, struct pgcmk_err *err)
{
    if (!id_is_guid(sub))
        return pgcmk_err_set(err, PGCMK_E_INVALID_SUBSCRIPTION_ID, NULL,
                             "The provided subscription identifier '%.64s' is malformed or "
                             "invalid.",
                             sub);
    if (strcasecmp(sub, PGCMK_SUBSCRIPTION_ID) != 0)
        return pgcmk_err_set(err, PGCMK_E_SUBSCRIPTION_NOT_FOUND, NULL,
                             "The subscription '%.64s' could not be found.", sub);
    return 0;
}

/* Copies one segment (up to '/') into out; returns the position after it, or NULL. */
static const char *
id_take(const char *p, char *out, size_t cap)
{
    size_t n;

    if (*p != '/')
        return NULL;
    p++;
    n = strcspn(p, "/");
    if (n == 0 || n >= cap)
        return NULL;
    memcpy(out, p, n);
    out[n] = '\0';
    return p + n;
}

int
pgcmk_arm_id_parse(const char *id, struct pgcmk_arm_id *out, struct pgcmk_err *err)
{
    char kw[64];
    const char *p = id;

    memset(out, 0, sizeof(*out));
    if (!(p = id_take(p, kw, sizeof(kw))) || strcasecmp(kw, "subscriptions") != 0 ||
        !(p = id_take(p, out->sub, sizeof(out->sub))))
        goto bad;
    if (*p == '\0')
        return 0;
    if (!(p = id_take(p, kw, sizeof(kw))))
        goto bad;
    if (strcasecmp(kw, "resourceGroups") == 0) {
        if (!(p = id_take(p, out->rg, sizeof(out->rg))))
            goto bad;
        if (*p == '\0')
            return 0;
        if (!(p = id_take(p, kw, sizeof(kw))))
            goto bad;
    }
    if (strcasecmp(kw, "providers") != 0 || !(p = id_take(p, out->ns, sizeof(out->ns))))
        goto bad;
    while (*p) {
        if (out->n_types == PGCMK_ID_MAX_TYPES)
            goto bad;
        if (!(p = id_take(p, out->types[out->n_types], sizeof(out->types[0]))) ||
            !(p = id_take(p, out->names[out->n_types], sizeof(out->names[0]))))
            goto bad;
        out->n_types++;
    }
    if (out->n_types == 0)
        goto bad;
    return 0;
bad:
    return pgcmk_err_set(err, PGCMK_E_BAD_REQUEST, NULL,
                         "The resource id '%.200s' is not a valid resource id.", id);
}

void
pgcmk_arm_id_type(const struct pgcmk_arm_id *id, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "%s", id->ns);

    for (int i = 0; i < id->n_types && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "/%s", id->types[i]);
}

char *
pgcmk_arm_id_format(const struct pgcmk_arm_id *id)
{
    char buf[2048];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "/subscriptions/%s", id->sub);

    if (id->rg[0])
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "/resourceGroups/%s", id->rg);
    if (id->ns[0])
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "/providers/%s", id->ns);
    for (int i = 0; i < id->n_types && n < sizeof(buf); i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "/%s/%s", id->types[i], id->names[i]);
    return pgcmk_xstrdup(buf);
}
