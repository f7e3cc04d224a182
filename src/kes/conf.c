/* conf.c - a KES server's config.yml (kesconf/config.go): libyaml's document tree, walked field by
 * field. As KES (yaml.v3, not strict): unknown fields are ignored, a key repeated in one mapping
 * is an error, "${VAR}" values come from the environment, relative paths are the config's. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "pgcmk/kes.h"

struct kc {
    yaml_document_t *doc;
    const char *base;
    char *why;
    size_t cap;
};

static int kc_fail(struct kc *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
kc_fail(struct kc *k, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(k->why, k->cap, fmt, ap);
    va_end(ap);
    return -1;
}

static yaml_node_t *
kc_node(struct kc *k, int id)
{
    return yaml_document_get_node(k->doc, id);
}

/* The mapping's value for key, or NULL. */
static yaml_node_t *
kc_get(struct kc *k, yaml_node_t *map, const char *key)
{
    yaml_node_pair_t *p;

    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = kc_node(k, p->key);

        if (kn && kn->type == YAML_SCALAR_NODE && strcmp((char *)kn->data.scalar.value, key) == 0)
            return kc_node(k, p->value);
    }
    return NULL;
}

/* yaml.v3 refuses a key given twice in one mapping, at any depth. */
static int
kc_unique(struct kc *k, yaml_node_t *n, int depth)
{
    yaml_node_pair_t *p, *q;
    yaml_node_item_t *it;

    if (n == NULL || depth > 64)
        return depth > 64 ? kc_fail(k, "kesconf: config nested too deeply") : 0;
    if (n->type == YAML_SEQUENCE_NODE) {
        for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
            if (kc_unique(k, kc_node(k, *it), depth + 1))
                return -1;
        return 0;
    }
    if (n->type != YAML_MAPPING_NODE)
        return 0;
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *a = kc_node(k, p->key);

        if (a == NULL || a->type != YAML_SCALAR_NODE)
            continue;
        for (q = p + 1; q < n->data.mapping.pairs.top; q++) {
            yaml_node_t *b = kc_node(k, q->key);

            if (b && b->type == YAML_SCALAR_NODE &&
                strcmp((char *)a->data.scalar.value, (char *)b->data.scalar.value) == 0)
                return kc_fail(k,
                               "yaml: unmarshal errors:\n  line %d: mapping key \"%.64s\" "
                               "already defined at line %d",
                               (int)b->start_mark.line + 1, (char *)b->data.scalar.value,
                               (int)a->start_mark.line + 1);
        }
        if (kc_unique(k, kc_node(k, p->value), depth + 1))
            return -1;
    }
    return 0;
}

/* A scalar's text with ${VAR} replaced (heap), NULL for an absent or null node; -1 in *bad when
 * the node is not a scalar. */
static char *
kc_str(struct kc *k, yaml_node_t *n, const char *field, int *bad)
{
    const char *v;
    size_t len;

    if (n == NULL)
        return NULL;
    if (n->type != YAML_SCALAR_NODE) {
        kc_fail(k, "yaml: unmarshal errors:\n  line %d: cannot unmarshal !!%s into %s",
                (int)n->start_mark.line + 1, n->type == YAML_MAPPING_NODE ? "map" : "seq", field);
        *bad = 1;
        return NULL;
    }
    v = (const char *)n->data.scalar.value;
    len = n->data.scalar.length;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (len == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0))
        return NULL;
    while (len && isspace((unsigned char)*v))
        v++, len--;
    while (len && isspace((unsigned char)v[len - 1]))
        len--;
    if (len > 3 && v[0] == '$' && v[1] == '{' && v[len - 1] == '}') {
        char name[256];
        const char *e;

        if (len - 3 >= sizeof(name))
            return pgcmk_xstrdup("");
        memcpy(name, v + 2, len - 3);
        name[len - 3] = '\0';
        e = getenv(name);
        return pgcmk_xstrdup(e ? e : "");
    }
    return pgcmk_xstrndup(v, len);
}

/* A file path made absolute against the config's directory. */
static char *
kc_path(struct kc *k, char *p)
{
    char *abs;

    if (p == NULL || *p == '\0' || *p == '/' || k->base == NULL) {
        if (p && *p == '\0') {
            free(p);
            return NULL;
        }
        return p;
    }
    abs = pgcmk_xasprintf("%s/%s", k->base, p);
    free(p);
    return abs;
}

int
pgcmk_kes_duration_parse(const char *s, int64_t *ms)
{
    static const struct {
        const char *u;
        double ms;
    } units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"ms", 1},
                 {"s", 1000},  {"m", 60000}, {"h", 3600000}};

    double total = 0;
    int neg = 0;

    if (s == NULL || *s == '\0')
        return -1;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (*s == '\0')
        return -1;
    while (*s) {
        char *end;
        double v;
        size_t i, best = PGCMK_ARRAY_LEN(units);

        if (!isdigit((unsigned char)*s) && *s != '.')
            return -1;
        v = strtod(s, &end);
        if (end == s)
            return -1;
        s = end;
        for (i = 0; i < PGCMK_ARRAY_LEN(units); i++) {
            size_t ul = strlen(units[i].u);

            /* "ms" before "m", "ns"/"us" before "s": the longest unit that fits */
            if (strncmp(s, units[i].u, ul) == 0 &&
                (best == PGCMK_ARRAY_LEN(units) || ul > strlen(units[best].u)))
                best = i;
        }
        if (best == PGCMK_ARRAY_LEN(units))
            return -1;
        total += v * units[best].ms;
        s += strlen(units[best].u);
        if (total > 9.2e15)
            return -1;
    }
    *ms = (int64_t)(neg ? -total : total);
    return 0;
}

static int
kc_duration(struct kc *k, yaml_node_t *n, const char *field, int64_t *ms)
{
    int bad = 0;
    char *s = kc_str(k, n, field, &bad);
    int rc = 0;

    if (bad)
        return -1;
    if (s && *s && pgcmk_kes_duration_parse(s, ms))
        rc = kc_fail(k, "yaml: unmarshal errors:\n  line %d: time: invalid duration \"%.64s\"",
                     (int)n->start_mark.line + 1, s);
    free(s);
    return rc;
}

/* on/off (and slog's level names): 1 = on. */
static int
kc_onoff(struct kc *k, yaml_node_t *n, int dflt, int *out)
{
    int bad = 0;
    char *s = kc_str(k, n, "string", &bad);

    if (bad)
        return -1;
    *out = dflt;
    if (s && *s) {
        if (strcasecmp(s, "on") == 0 || strcasecmp(s, "true") == 0 || strcasecmp(s, "info") == 0 ||
            strcasecmp(s, "debug") == 0 || strcasecmp(s, "warn") == 0 ||
            strcasecmp(s, "error") == 0) {
            *out = 1;
        } else if (strcasecmp(s, "off") == 0 || strcasecmp(s, "false") == 0) {
            *out = 0;
        } else {
            kc_fail(k, "kesconf: invalid log level '%.64s'", s);
            free(s);
            return -1;
        }
    }
    free(s);
    return 0;
}

static int
kc_strlist(struct kc *k, yaml_node_t *n, const char *field, char ***out, int *count)
{
    yaml_node_item_t *it;
    int bad = 0;

    *out = NULL;
    *count = 0;
    if (n == NULL || (n->type == YAML_SCALAR_NODE && n->data.scalar.length == 0))
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return kc_fail(k,
                       "yaml: unmarshal errors:\n  line %d: cannot unmarshal into %s: not a list",
                       (int)n->start_mark.line + 1, field);
    *out = pgcmk_xcalloc((size_t)(n->data.sequence.items.top - n->data.sequence.items.start) + 1,
                         sizeof(char *));
    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        char *s = kc_str(k, kc_node(k, *it), field, &bad);

        if (bad)
            return -1;
        (*out)[(*count)++] = s ? s : pgcmk_xstrdup("");
    }
    return 0;
}

static void
kc_strlist_free(char **l, int n)
{
    int i;

    for (i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static int
kc_policies(struct kc *k, yaml_node_t *n, struct pgcmk_kes_conf *c)
{
    yaml_node_pair_t *p;

    if (n == NULL || n->type == YAML_SCALAR_NODE)
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return kc_fail(k, "yaml: unmarshal errors:\n  line %d: policy: not a mapping",
                       (int)n->start_mark.line + 1);
    c->policies =
        pgcmk_xcalloc((size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start) + 1,
                      sizeof(*c->policies));
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = kc_node(k, p->key), *v = kc_node(k, p->value);
        struct pgcmk_kes_policy_cfg *pc = &c->policies[c->n_policies];
        int i;

        if (kn == NULL || kn->type != YAML_SCALAR_NODE)
            return kc_fail(k, "kesconf: invalid policy name");
        pc->name = pgcmk_xstrdup((char *)kn->data.scalar.value);
        c->n_policies++;
        if (!pgcmk_kes_valid_name(pc->name, 0))
            return kc_fail(k,
                           "kes: policy name '%.80s' is empty, too long or contains invalid "
                           "characters",
                           pc->name);
        if (v && v->type != YAML_MAPPING_NODE && !(v->type == YAML_SCALAR_NODE))
            return kc_fail(k, "yaml: unmarshal errors:\n  line %d: policy '%.80s': not a mapping",
                           (int)v->start_mark.line + 1, pc->name);
        if (kc_strlist(k, kc_get(k, v, "allow"), "[]string", &pc->allow, &pc->n_allow) ||
            kc_strlist(k, kc_get(k, v, "deny"), "[]string", &pc->deny, &pc->n_deny) ||
            kc_strlist(k, kc_get(k, v, "identities"), "kes.Identity", &pc->identities,
                       &pc->n_identities))
            return -1;
        for (i = 0; i < pc->n_allow + pc->n_deny; i++) {
            const char *pat = i < pc->n_allow ? pc->allow[i] : pc->deny[i - pc->n_allow];
            const char *star = strchr(pat, '*');

            if (star && star[1] != '\0')
                return kc_fail(k, "kes: invalid policy pattern '%.128s': '*' only at the end", pat);
        }
    }
    return 0;
}

static int
kc_apis(struct kc *k, yaml_node_t *n, struct pgcmk_kes_conf *c)
{
    yaml_node_pair_t *p;

    if (n == NULL || n->type == YAML_SCALAR_NODE)
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return kc_fail(k, "yaml: unmarshal errors:\n  line %d: api: not a mapping",
                       (int)n->start_mark.line + 1);
    c->apis = pgcmk_xcalloc((size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start) + 1,
                            sizeof(*c->apis));
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = kc_node(k, p->key), *v = kc_node(k, p->value);
        struct pgcmk_kes_api_cfg *a = &c->apis[c->n_apis];
        int bad = 0;
        char *skip;

        if (kn == NULL || kn->type != YAML_SCALAR_NODE)
            return kc_fail(k, "kesconf: invalid API path");
        a->path = pgcmk_xstrdup((char *)kn->data.scalar.value);
        c->n_apis++;
        skip = kc_str(k, kc_get(k, v, "skip_auth"), "bool", &bad);
        if (bad)
            return -1;
        if (skip && *skip) {
            if (strcasecmp(skip, "true") == 0 || strcasecmp(skip, "on") == 0 ||
                strcasecmp(skip, "yes") == 0)
                a->skip_auth = 1;
            else if (!(strcasecmp(skip, "false") == 0 || strcasecmp(skip, "off") == 0 ||
                       strcasecmp(skip, "no") == 0)) {
                kc_fail(k, "yaml: unmarshal errors:\n  cannot unmarshal '%.32s' into bool", skip);
                free(skip);
                return -1;
            }
        }
        free(skip);
        if (kc_duration(k, kc_get(k, v, "timeout"), "time.Duration", &a->timeout_ms))
            return -1;
        if (a->timeout_ms < 0)
            return kc_fail(k, "kesconf: invalid timeout '%lld' for API '%.128s'",
                           (long long)a->timeout_ms * 1000000LL, a->path);
    }
    return 0;
}

static int
kc_keys(struct kc *k, yaml_node_t *n, struct pgcmk_kes_conf *c)
{
    yaml_node_item_t *it;
    int i;

    if (n == NULL || n->type == YAML_SCALAR_NODE)
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return kc_fail(k, "yaml: unmarshal errors:\n  line %d: keys: not a list",
                       (int)n->start_mark.line + 1);
    c->keys = pgcmk_xcalloc((size_t)(n->data.sequence.items.top - n->data.sequence.items.start) + 1,
                            sizeof(char *));
    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        int bad = 0;
        char *name = kc_str(k, kc_get(k, kc_node(k, *it), "name"), "string", &bad);

        if (bad)
            return -1;
        if (name == NULL)
            name = pgcmk_xstrdup("");
        for (i = 0; i < c->n_keys; i++)
            if (strcmp(c->keys[i], name) == 0) {
                kc_fail(k, "kesconf: invalid key config: key '%.80s' is defined multiple times",
                        name);
                free(name);
                return -1;
            }
        c->keys[c->n_keys++] = name;
    }
    return 0;
}

/* keystore.vault into c->vault (strings kept in c->vault_strs). */
static int
kc_vault(struct kc *k, yaml_node_t *v, struct pgcmk_kes_conf *c)
{
    yaml_node_t *ar = kc_get(k, v, "approle"), *tr = kc_get(k, v, "transit");
    yaml_node_t *tls = kc_get(k, v, "tls");

    struct {
        yaml_node_t *parent;
        const char *key;
        const char **dst;
        int is_path;
    } f[] = {
        {v, "endpoint", &c->vault.endpoint, 0},
        {v, "engine", &c->vault.engine, 0},
        {v, "namespace", &c->vault.namespace, 0},
        {v, "prefix", &c->vault.prefix, 0},
        {tr, "engine", &c->vault.transit_engine, 0},
        {tr, "key", &c->vault.transit_key, 0},
        {ar, "namespace", &c->vault.approle_namespace, 0},
        {ar, "engine", &c->vault.approle_engine, 0},
        {ar, "id", &c->vault.approle_id, 0},
        {ar, "secret", &c->vault.approle_secret, 0},
        {tls, "key", &c->vault.tls_key, 1},
        {tls, "cert", &c->vault.tls_cert, 1},
        {tls, "ca", &c->vault.tls_ca, 1},
    };

    size_t i;
    int bad = 0;
    char *ver;
    yaml_node_t *k8s = kc_get(k, v, "kubernetes");

    c->has_vault = 1;
    for (i = 0; i < PGCMK_ARRAY_LEN(f); i++) {
        char *s = kc_str(k, kc_get(k, f[i].parent, f[i].key), "string", &bad);

        if (bad)
            return -1;
        if (f[i].is_path)
            s = kc_path(k, s);
        else if (s && *s == '\0') {
            free(s);
            s = NULL;
        }
        c->vault_strs[i] = s;
        *f[i].dst = s;
    }
    ver = kc_str(k, kc_get(k, v, "version"), "string", &bad);
    if (bad)
        return -1;
    c->vault.version = 1;
    if (ver && *ver) {
        if (strcmp(ver, "v2") == 0 || strcmp(ver, "2") == 0)
            c->vault.version = 2;
        else if (!(strcmp(ver, "v1") == 0 || strcmp(ver, "1") == 0)) {
            kc_fail(k, "vault: invalid K/V engine version '%.32s'", ver);
            free(ver);
            return -1;
        }
    }
    free(ver);
    c->vault.ping_ms = 10000;
    if (kc_get(k, kc_get(k, v, "status"), "ping")) {
        int64_t ms = 0;

        if (kc_duration(k, kc_get(k, kc_get(k, v, "status"), "ping"), "time.Duration", &ms))
            return -1;
        if (ms > 0)
            c->vault.ping_ms = ms;
    }
    c->vault.approle_retry_ms = 3000;
    if (kc_get(k, ar, "retry")) {
        int64_t ms = 0;

        if (kc_duration(k, kc_get(k, ar, "retry"), "time.Duration", &ms))
            return -1;
        if (ms > 0)
            c->vault.approle_retry_ms = ms;
    }
    if (c->vault.endpoint == NULL)
        return kc_fail(k, "kesconf: invalid vault keystore: no endpoint specified");
    /* yaml.v3 makes a struct of any kubernetes: or transit: mapping, empty values or not */
    if (k8s && k8s->type == YAML_MAPPING_NODE && ar && ar->type == YAML_MAPPING_NODE)
        return kc_fail(k, "kesconf: invalid vault keystore: more than one authentication method "
                          "specified");
    if (ar == NULL || ar->type != YAML_MAPPING_NODE) {
        if (k8s && k8s->type == YAML_MAPPING_NODE)
            return kc_fail(k, "kesconf: invalid vault keystore: kubernetes authentication is not "
                              "available in pgcmk (use approle)");
        return kc_fail(k, "kesconf: invalid vault keystore: no authentication method specified");
    }
    if (c->vault.approle_id == NULL)
        return kc_fail(k, "kesconf: invalid vault keystore: invalid approle config: no approle "
                          "ID specified");
    if (c->vault.approle_secret == NULL)
        return kc_fail(k, "kesconf: invalid vault keystore: invalid approle config: no approle "
                          "secret specified");
    if (tr && tr->type == YAML_MAPPING_NODE && c->vault.transit_key == NULL)
        return kc_fail(k, "kesconf: invalid vault keystore: invalid transit config: no key name "
                          "specified");
    if (c->vault.tls_key && !c->vault.tls_cert)
        return kc_fail(k, "kesconf: invalid vault keystore: invalid tls config: no TLS "
                          "certificate provided");
    if (!c->vault.tls_key && c->vault.tls_cert)
        return kc_fail(k, "kesconf: invalid vault keystore: invalid tls config: no TLS private "
                          "key provided");
    return 0;
}

static int
kc_address(struct kc *k, struct pgcmk_kes_conf *c)
{
    const char *a = c->address ? c->address : "0.0.0.0:7373";
    const char *colon = strrchr(a, ':');
    char host[256];
    char *end;
    long port;

    if (colon == NULL) {
        snprintf(host, sizeof(host), "%s", a);
        port = PGCMK_KES_DEFAULT_PORT;
    } else {
        snprintf(host, sizeof(host), "%.*s", (int)(colon - a), a);
        port = strtol(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
            return kc_fail(k, "kesconf: invalid address '%.128s': invalid port", a);
    }
    if (host[0] == '[') { /* [::1]:7373 */
        size_t l = strlen(host);

        memmove(host, host + 1, l);
        if (l > 1 && host[l - 2] == ']')
            host[l - 2] = '\0';
    }
    /* pgcmk listens on loopback: a wildcard or a name means 127.0.0.1 */
    if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
        strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    c->host = pgcmk_xstrdup(host);
    c->port = (int)port;
    return 0;
}

static int
kc_walk(struct kc *k, yaml_node_t *root, struct pgcmk_kes_conf *c)
{
    yaml_node_t *tls = kc_get(k, root, "tls"), *ks = kc_get(k, root, "keystore");
    yaml_node_t *exp = kc_get(k, kc_get(k, root, "cache"), "expiry");
    yaml_node_t *log = kc_get(k, root, "log"), *vn, *admin = kc_get(k, root, "admin");
    yaml_node_t *root_id = kc_get(k, root, "root");
    int bad = 0, i;
    char *ver, *auth;
    yaml_node_pair_t *p;

    ver = kc_str(k, kc_get(k, root, "version"), "string", &bad);
    if (bad)
        return -1;
    if (ver && *ver && strcmp(ver, "v1") != 0) {
        kc_fail(k, "kesconf: invalid config version '%.32s'", ver);
        free(ver);
        return -1;
    }
    free(ver);
    c->address = kc_str(k, kc_get(k, root, "address"), "string", &bad);
    if (bad || kc_address(k, c))
        return -1;
    /* admin.identity (KES 2023+) or root (older): "disabled" turns the admin off */
    if (admin) {
        c->admin = kc_str(k, kc_get(k, admin, "identity"), "kes.Identity", &bad);
    } else if (root_id) {
        c->admin = kc_str(k, root_id, "kes.Identity", &bad);
        c->admin_field_root = 1;
    }
    if (bad)
        return -1;
    if (c->admin == NULL || c->admin[0] == '\0')
        return kc_fail(k, "kesconf: invalid admin identity: no admin identity");
    if (strcmp(c->admin, "disabled") == 0)
        c->admin[0] = '\0';
    else if (!pgcmk_kes_valid_name(c->admin, 0))
        return kc_fail(k, "kesconf: invalid admin identity '%.80s'", c->admin);
    c->tls_key = kc_path(k, kc_str(k, kc_get(k, tls, "key"), "string", &bad));
    c->tls_cert = kc_path(k, kc_str(k, kc_get(k, tls, "cert"), "string", &bad));
    c->tls_ca = kc_path(k, kc_str(k, kc_get(k, tls, "ca"), "string", &bad));
    c->tls_password = kc_str(k, kc_get(k, tls, "password"), "string", &bad);
    auth = kc_str(k, kc_get(k, tls, "auth"), "string", &bad);
    if (bad) {
        free(auth);
        return -1;
    }
    if (auth && *auth && strcasecmp(auth, "on") != 0 && strcasecmp(auth, "off") != 0) {
        kc_fail(k, "kesconf: invalid tls config: invalid auth '%.32s'", auth);
        free(auth);
        return -1;
    }
    c->tls_auth = auth && strcasecmp(auth, "on") == 0;
    free(auth);
    if (c->tls_key && !c->tls_cert)
        return kc_fail(k, "kesconf: invalid tls config: no certificate");
    if (!c->tls_key && c->tls_cert)
        return kc_fail(k, "kesconf: invalid tls config: no private key");
    if (c->tls_auth && !c->tls_ca)
        return kc_fail(k, "kesconf: invalid tls config: auth 'on' needs a CA (tls.ca)");
    if (kc_policies(k, kc_get(k, root, "policy"), c) || kc_apis(k, kc_get(k, root, "api"), c) ||
        kc_keys(k, kc_get(k, root, "keys"), c))
        return -1;
    for (i = 0; i < c->n_policies; i++) {
        int j, m, q;

        for (j = 0; j < c->policies[i].n_identities; j++) {
            const char *id = c->policies[i].identities[j];

            if (c->admin[0] && strcmp(id, c->admin) == 0)
                return kc_fail(k,
                               "kesconf: invalid policy '%.80s': identity '%.80s' is already "
                               "admin",
                               c->policies[i].name, id);
            if (!pgcmk_kes_valid_name(id, 0))
                return kc_fail(k,
                               "kes: identity '%.80s' is empty, too long or contains invalid "
                               "characters",
                               id);
            for (m = 0; m <= i; m++)
                for (q = 0; q < (m == i ? j : c->policies[m].n_identities); q++)
                    if (strcmp(c->policies[m].identities[q], id) == 0)
                        return kc_fail(k,
                                       "kes: cannot assign policy '%.80s' to '%.80s': identity "
                                       "already has a policy",
                                       c->policies[i].name, id);
        }
    }
    c->cache.any_ms = 5 * 60000;
    c->cache.unused_ms = 20000;
    c->cache.offline_ms = 0;
    if ((kc_get(k, exp, "any") &&
         kc_duration(k, kc_get(k, exp, "any"), "time.Duration", &c->cache.any_ms)) ||
        (kc_get(k, exp, "unused") &&
         kc_duration(k, kc_get(k, exp, "unused"), "time.Duration", &c->cache.unused_ms)) ||
        (kc_get(k, exp, "offline") &&
         kc_duration(k, kc_get(k, exp, "offline"), "time.Duration", &c->cache.offline_ms)))
        return -1;
    if (c->cache.any_ms < 0)
        return kc_fail(k, "kesconf: invalid cache expiry '%lldms'", (long long)c->cache.any_ms);
    if (c->cache.unused_ms < 0)
        return kc_fail(k, "kesconf: invalid cache unused expiry '%lldms'",
                       (long long)c->cache.unused_ms);
    if (c->cache.offline_ms < 0)
        return kc_fail(k, "kesconf: invalid offline cache expiry '%lldms'",
                       (long long)c->cache.offline_ms);
    if (kc_onoff(k, kc_get(k, log, "error"), 1, &c->log_error) ||
        kc_onoff(k, kc_get(k, log, "audit"), 0, &c->log_audit))
        return -1;
    if (ks == NULL || ks->type != YAML_MAPPING_NODE)
        return kc_fail(k, "kesconf: invalid keystore config: no keystore specified");
    for (p = ks->data.mapping.pairs.start; p < ks->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = kc_node(k, p->key), *val = kc_node(k, p->value);
        const char *name = kn && kn->type == YAML_SCALAR_NODE ? (char *)kn->data.scalar.value : "";

        if (val == NULL || (val->type == YAML_SCALAR_NODE && val->data.scalar.length == 0))
            continue;
        if (strcmp(name, "vault") != 0)
            return kc_fail(k, "kesconf: keystore '%.32s' is not available in pgcmk (only vault)",
                           name);
    }
    vn = kc_get(k, ks, "vault");
    if (vn == NULL || vn->type != YAML_MAPPING_NODE)
        return kc_fail(k, "kesconf: invalid keystore config: no keystore specified");
    return kc_vault(k, vn, c);
}

int
pgcmk_kes_conf_parse(const char *text, size_t len, const char *base_dir, struct pgcmk_kes_conf *c,
                     char *why, size_t why_cap)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    struct kc k = {&doc, base_dir, why, why_cap};
    yaml_node_t *root;
    int rc = -1;

    memset(c, 0, sizeof(*c));
    if (why_cap)
        why[0] = '\0';
    if (!yaml_parser_initialize(&parser)) {
        kc_fail(&k, "yaml: out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        kc_fail(&k, "yaml: line %d: %s", (int)parser.problem_mark.line + 1,
                parser.problem ? parser.problem : "invalid YAML");
        yaml_parser_delete(&parser);
        return -1;
    }
    root = yaml_document_get_root_node(&doc);
    if (root == NULL)
        kc_fail(&k, "kesconf: invalid config");
    else if (root->type != YAML_MAPPING_NODE)
        kc_fail(&k, "kesconf: invalid config format");
    else if (kc_unique(&k, root, 0) == 0 && kc_walk(&k, root, c) == 0)
        rc = 0;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc)
        pgcmk_kes_conf_free(c);
    return rc;
}

void
pgcmk_kes_conf_free(struct pgcmk_kes_conf *c)
{
    int i;
    size_t j;

    if (c == NULL)
        return;
    free(c->address);
    free(c->host);
    free(c->admin);
    free(c->tls_key);
    free(c->tls_cert);
    free(c->tls_ca);
    if (c->tls_password)
        pgcmk_secret_free(c->tls_password, strlen(c->tls_password));
    for (i = 0; i < c->n_policies; i++) {
        free(c->policies[i].name);
        kc_strlist_free(c->policies[i].allow, c->policies[i].n_allow);
        kc_strlist_free(c->policies[i].deny, c->policies[i].n_deny);
        kc_strlist_free(c->policies[i].identities, c->policies[i].n_identities);
    }
    free(c->policies);
    for (i = 0; i < c->n_apis; i++)
        free(c->apis[i].path);
    free(c->apis);
    kc_strlist_free(c->keys, c->n_keys);
    for (j = 0; j < PGCMK_ARRAY_LEN(c->vault_strs); j++)
        if (c->vault_strs[j])
            pgcmk_secret_free(c->vault_strs[j], strlen(c->vault_strs[j]));
    memset(c, 0, sizeof(*c));
}
