/* acl.c - Vault ACL policies: decoding (HCL or JSON, through hcl.c), the per-namespace policy
 * registry, and the ACL engine with Vault 1.x's rules (developer.hashicorp.com/vault/docs/
 * concepts/policies, "Priority matching"):
 *   - an exact path wins;
 *   - else the longest '*' prefix and every matching '+' path compete, and the higher priority
 *     wins: the first '+' or '*' later, no trailing '*', fewer '+', longer, lexically greater;
 *   - the same path in several policies adds up its capabilities; deny wins over all of them;
 *   - "root" grants everything; "default" is built in (its text below is Vault's).
 * A set of policies is compiled once into sorted tables and cached per thread: the hot path takes
 * no lock (one atomic load of the registry's generation); every policy write bumps the generation
 * and each thread drops its compiled sets on its next check. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcmk/vacl.h"

/* Vault's built-in default policy (vault/policy_store.go, defaultPolicy). */
const char pgcmk_vacl_default_policy[] =
    "\n"
    "# Allow tokens to look up their own properties\n"
    "path \"auth/token/lookup-self\" {\n"
    "    capabilities = [\"read\"]\n"
    "}\n"
    "\n"
    "# Allow tokens to renew themselves\n"
    "path \"auth/token/renew-self\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow tokens to revoke themselves\n"
    "path \"auth/token/revoke-self\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow a token to look up its own capabilities on a path\n"
    "path \"sys/capabilities-self\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow a token to look up its own entity by id or name\n"
    "path \"identity/entity/id/{{identity.entity.id}}\" {\n"
    "  capabilities = [\"read\"]\n"
    "}\n"
    "path \"identity/entity/name/{{identity.entity.name}}\" {\n"
    "  capabilities = [\"read\"]\n"
    "}\n"
    "\n"
    "\n"
    "# Allow a token to look up its resultant ACL from all policies. This is useful\n"
    "# for UIs. It is an internal path because the format may change at any time\n"
    "# based on how the internal ACL features and capabilities change.\n"
    "path \"sys/internal/ui/resultant-acl\" {\n"
    "    capabilities = [\"read\"]\n"
    "}\n"
    "\n"
    "# Allow a token to renew a lease via lease_id in the request body; old path for\n"
    "# old clients, new path for newer\n"
    "path \"sys/renew\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "path \"sys/leases/renew\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow looking up lease properties. This requires knowing the lease ID ahead\n"
    "# of time and does not divulge any sensitive information.\n"
    "path \"sys/leases/lookup\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow a token to manage its own cubbyhole\n"
    "path \"cubbyhole/*\" {\n"
    "    capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"]\n"
    "}\n"
    "\n"
    "# Allow a token to wrap arbitrary values in a response-wrapping token\n"
    "path \"sys/wrapping/wrap\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow a token to look up the creation time and TTL of a given\n"
    "# response-wrapping token\n"
    "path \"sys/wrapping/lookup\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow a token to unwrap a response-wrapping token. This is a convenience to\n"
    "# avoid client token swapping since this is also part of the response wrapping\n"
    "# policy.\n"
    "path \"sys/wrapping/unwrap\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow general purpose tools\n"
    "path \"sys/tools/hash\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "path \"sys/tools/hash/*\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow checking the status of a Control Group request if the user has the\n"
    "# accessor\n"
    "path \"sys/control-group/request\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow a token to make requests to the Authorization Endpoint for OIDC providers.\n"
    "path \"identity/oidc/provider/+/authorize\" {\n"
    "    capabilities = [\"read\", \"update\"]\n"
    "}\n";

static const struct {
    const char *name;
    unsigned bit;
} cap_names[] = {
    {"create", PGCMK_VCAP_CREATE}, {"delete", PGCMK_VCAP_DELETE}, {"deny", PGCMK_VCAP_DENY},
    {"list", PGCMK_VCAP_LIST},     {"patch", PGCMK_VCAP_PATCH},   {"read", PGCMK_VCAP_READ},
    {"sudo", PGCMK_VCAP_SUDO},     {"update", PGCMK_VCAP_UPDATE},
};

/* ---- decoding ----------------------------------------------------------------------------- */

#define FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -1)

/* "90", 90, "1h30m", "10s", "5m" -> seconds; -1 when malformed. */
static int64_t
duration_s(const json_t *v)
{
    const char *s;
    int64_t total = 0;

    if (json_is_integer(v))
        return json_integer_value(v) < 0 ? -1 : json_integer_value(v);
    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    if (*s == '\0')
        return 0;
    while (*s) {
        int64_t n = 0;
        int digits = 0;

        while (*s >= '0' && *s <= '9') {
            if (n > 100000000000LL)
                return -1;
            n = n * 10 + (*s++ - '0');
            digits++;
        }
        if (!digits)
            return -1;
        switch (*s) {
        case '\0':
            return total + n;
        case 's':
            break;
        case 'm':
            n *= 60;
            break;
        case 'h':
            n *= 3600;
            break;
        default:
            return -1;
        }
        total += n;
        s++;
    }
    return total;
}

static int
decode_stanza(const char *key, const json_t *body, struct pgcmk_vacl_rule *r, char *err,
              size_t errlen)
{
    static const char *const ok_keys[] = {
        "comment",           "policy",
        "capabilities",      "allowed_parameters",
        "denied_parameters", "required_parameters",
        "min_wrapping_ttl",  "max_wrapping_ttl",
        "control_group",     "mfa_methods",
    };
    const char *k;
    json_t *v;
    size_t len;

    if (!json_is_object(body))
        return FAIL("path \"%s\": expected an object", key);
    json_object_foreach((json_t *)body, k, v) {
        size_t i;

        for (i = 0; i < sizeof(ok_keys) / sizeof(ok_keys[0]); i++)
            if (strcmp(k, ok_keys[i]) == 0)
                break;
        if (i == sizeof(ok_keys) / sizeof(ok_keys[0]))
            return FAIL("path \"%s\": invalid key \"%s\"", key, k);
    }
    while (*key == '/')
        key++;
    len = strlen(key);
    {
        const char *star = strchr(key, '*');

        if (star && star != key + len - 1)
            return FAIL("path \"%s\": invalid use of wildcards ('*' is only allowed at the end of "
                        "a path)",
                        key);
    }
    r->is_prefix = len > 0 && key[len - 1] == '*';
    r->path = strndup(key, len - (size_t)r->is_prefix);
    if (r->path == NULL)
        return FAIL("out of memory");
    r->n_plus = 0;
    r->first_wc = (int)strlen(r->path);
    for (const char *seg = r->path; seg;) {
        const char *slash = strchr(seg, '/');
        size_t sl = slash ? (size_t)(slash - seg) : strlen(seg);

        if (sl == 1 && seg[0] == '+') {
            if (r->n_plus == 0)
                r->first_wc = (int)(seg - r->path);
            r->n_plus++;
        }
        seg = slash ? slash + 1 : NULL;
    }
    v = json_object_get(body, "policy");
    if (v) {
        const char *p = json_string_value(v);

        if (p == NULL)
            return FAIL("path \"%s\": invalid policy", key);
        if (strcmp(p, "deny") == 0)
            r->caps |= PGCMK_VCAP_DENY;
        else if (strcmp(p, "read") == 0)
            r->caps |= PGCMK_VCAP_READ | PGCMK_VCAP_LIST;
        else if (strcmp(p, "write") == 0)
            r->caps |= PGCMK_VCAP_READ | PGCMK_VCAP_LIST | PGCMK_VCAP_CREATE | PGCMK_VCAP_UPDATE |
                       PGCMK_VCAP_DELETE;
        else if (strcmp(p, "sudo") == 0)
            r->caps |= PGCMK_VCAP_ALL;
        else
            return FAIL("path \"%s\": invalid policy \"%s\"", key, p);
    }
    v = json_object_get(body, "capabilities");
    if (v) {
        size_t i;
        json_t *c;

        if (json_is_string(v)) {
            /* HCL accepts capabilities = "read"; treat it as a one-element list */
            json_t *one = json_array();

            json_array_append(one, v);
            json_object_set_new((json_t *)body, "capabilities", one);
            v = one;
        }
        if (!json_is_array(v))
            return FAIL("path \"%s\": capabilities must be a list", key);
        json_array_foreach(v, i, c) {
            const char *name = json_string_value(c);
            size_t j;

            if (name == NULL)
                return FAIL("path \"%s\": invalid capability", key);
            for (j = 0; j < sizeof(cap_names) / sizeof(cap_names[0]); j++)
                if (strcmp(name, cap_names[j].name) == 0)
                    break;
            if (j == sizeof(cap_names) / sizeof(cap_names[0]))
                return FAIL("path \"%s\": invalid capability \"%s\"", key, name);
            r->caps |= cap_names[j].bit;
        }
    }
    if (r->caps & PGCMK_VCAP_DENY)
        r->caps = PGCMK_VCAP_DENY;
    for (int i = 0; i < 2; i++) {
        const char *pk = i ? "denied_parameters" : "allowed_parameters";
        json_t **dst = i ? &r->denied : &r->allowed;

        v = json_object_get(body, pk);
        if (v == NULL)
            continue;
        if (json_is_array(v)) {
            /* HCL blocks: allowed_parameters { "a" = [] } -> [ {...} ]; merge them */
            json_t *merged = json_object(), *e;
            size_t j;

            json_array_foreach(v, j, e)
                if (json_is_object(e))
                    json_object_update(merged, e);
            *dst = merged;
        } else if (json_is_object(v)) {
            *dst = json_incref(v);
        } else {
            return FAIL("path \"%s\": %s must be a map", key, pk);
        }
    }
    v = json_object_get(body, "required_parameters");
    if (v) {
        size_t j;
        json_t *e;

        if (!json_is_array(v))
            return FAIL("path \"%s\": required_parameters must be a list", key);
        json_array_foreach(v, j, e)
            if (!json_is_string(e))
                return FAIL("path \"%s\": required_parameters must be strings", key);
        r->required = json_incref(v);
    }
    for (int i = 0; i < 2; i++) {
        const char *pk = i ? "max_wrapping_ttl" : "min_wrapping_ttl";
        int64_t s;

        v = json_object_get(body, pk);
        if (v == NULL)
            continue;
        s = duration_s(v);
        if (s < 0)
            return FAIL("path \"%s\": error parsing %s", key, pk);
        if (i)
            r->max_wrap_s = s;
        else
            r->min_wrap_s = s;
    }
    if (r->min_wrap_s && r->max_wrap_s && r->max_wrap_s < r->min_wrap_s)
        return FAIL("path \"%s\": max_wrapping_ttl cannot be less than min_wrapping_ttl", key);
    return 0;
}

static int
add_stanza(struct pgcmk_vacl_policy *p, const char *key, const json_t *body, char *err,
           size_t errlen)
{
    struct pgcmk_vacl_rule *r;

    if (json_is_array(body)) {
        size_t i;
        json_t *e;

        json_array_foreach(body, i, e)
            if (add_stanza(p, key, e, err, errlen) < 0)
                return -1;
        return 0;
    }
    r = realloc(p->rules, (p->n_rules + 1) * sizeof(*r));
    if (r == NULL)
        return FAIL("out of memory");
    p->rules = r;
    r = &p->rules[p->n_rules++];
    memset(r, 0, sizeof(*r));
    return decode_stanza(key, body, r, err, errlen);
}

void
pgcmk_vacl_policy_free(struct pgcmk_vacl_policy *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_rules; i++) {
        free(p->rules[i].path);
        json_decref(p->rules[i].allowed);
        json_decref(p->rules[i].denied);
        json_decref(p->rules[i].required);
    }
    free(p->rules);
    free(p->name);
    free(p->text);
    free(p);
}

int
pgcmk_vacl_policy_parse(const char *name, const char *text, struct pgcmk_vacl_policy **out,
                        char *err, size_t errlen)
{
    struct pgcmk_vacl_policy *p;
    json_t *root, *paths, *v;
    const char *k;
    int rc = 0;

    *out = NULL;
    root = pgcmk_hcl_parse(text, strlen(text), err, errlen);
    if (root == NULL)
        return -1;
    json_object_foreach(root, k, v) {
        if (strcmp(k, "name") != 0 && strcmp(k, "path") != 0) {
            snprintf(err, errlen, "invalid key \"%s\"", k);
            json_decref(root);
            return -1;
        }
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL || (p->name = strdup(name)) == NULL || (p->text = strdup(text)) == NULL) {
        pgcmk_vacl_policy_free(p);
        json_decref(root);
        return FAIL("out of memory");
    }
    paths = json_object_get(root, "path");
    if (json_is_object(paths)) {
        json_object_foreach(paths, k, v)
            if ((rc = add_stanza(p, k, v, err, errlen)) < 0)
                break;
    } else if (json_is_array(paths)) {
        size_t i;
        json_t *e;

        json_array_foreach(paths, i, e) {
            if (!json_is_object(e)) {
                rc = FAIL("path: expected a label");
                break;
            }
            json_object_foreach(e, k, v)
                if ((rc = add_stanza(p, k, v, err, errlen)) < 0)
                    break;
            if (rc < 0)
                break;
        }
    } else if (paths != NULL) {
        rc = FAIL("path: expected a map");
    }
    json_decref(root);
    if (rc < 0) {
        pgcmk_vacl_policy_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

/* ---- sudo-protected paths ------------------------------------------------------------------ */

/* The system and token backends' PathsSpecial.Root (Vault 1.x). A trailing '*' is a prefix. */
static const char *const sudo_paths[] = {
    "sys/audit",
    "sys/audit/*",
    "sys/auth/*",
    "sys/config/auditing/*",
    "sys/config/cors",
    "sys/config/ui/headers/*",
    "sys/internal/inspect/*",
    "sys/leases/lookup/*",
    "sys/leases/revoke-force/*",
    "sys/leases/revoke-prefix/*",
    "sys/plugins/catalog/*",
    "sys/pprof/*",
    "sys/raw",
    "sys/raw/*",
    "sys/remount",
    "sys/revoke-force/*",
    "sys/revoke-prefix/*",
    "sys/rotate",
    "sys/seal",
    "sys/step-down",
    "sys/storage/raft/snapshot-auto/config/*",
    "auth/token/accessors*",
    "auth/token/revoke-orphan*",
};

int
pgcmk_vacl_path_needs_sudo(const char *path)
{
    size_t pl;

    while (*path == '/')
        path++;
    /* the hot path: only sys/ and auth/token/ have root-protected paths */
    if (strncmp(path, "sys/", 4) != 0 && strncmp(path, "auth/token/", 11) != 0)
        return 0;
    pl = strlen(path);
    if (pl && path[pl - 1] == '/')
        pl--;
    for (size_t i = 0; i < sizeof(sudo_paths) / sizeof(sudo_paths[0]); i++) {
        const char *s = sudo_paths[i];
        size_t sl = strlen(s);

        if (s[sl - 1] == '*') {
            if (strncmp(path, s, sl - 1) == 0)
                return 1;
        } else if (pl == sl && strncmp(path, s, sl) == 0) {
            return 1;
        }
    }
    return 0;
}

json_t *
pgcmk_vacl_caps_json(unsigned caps, int root)
{
    json_t *a = json_array();

    if (root && (caps & PGCMK_VCAP_ALL) == PGCMK_VCAP_ALL) {
        json_array_append_new(a, json_string("root"));
        return a;
    }
    if (caps == 0 || (caps & PGCMK_VCAP_DENY)) {
        json_array_append_new(a, json_string("deny"));
        return a;
    }
    for (size_t j = 0; j < sizeof(cap_names) / sizeof(cap_names[0]); j++)
        if (caps & cap_names[j].bit)
            json_array_append_new(a, json_string(cap_names[j].name));
    return a;
}

/* ---- the registry ---------------------------------------------------------------------------- */

struct ns_entry {
    char *ns;
    struct pgcmk_vacl_policy **pol;
    size_t n;
};

/* A compiled set of policies. */
struct crule {
    char *path;
    size_t len;
    unsigned caps;
    int is_prefix, n_plus, first_wc;
    int n_seg;
    json_t *allowed, *denied, *required; /* merged over the policies, or NULL */
};

struct compiled {
    int root;
    struct crule *exact, *prefix, *wc;
    size_t n_exact, n_prefix, n_wc;
};

#define CACHE_SLOTS 32

struct cache_slot {
    char *key; /* ns '\x1f' p1 '\x1f' p2 ... */
    struct compiled *acl;
};

/* This thread's compiled sets, valid while `gen` is the registry's generation. */
struct tl_cache {
    unsigned long gen;
    struct cache_slot slot[CACHE_SLOTS];
};

static pthread_rwlock_t reg_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct ns_entry *reg;
static size_t n_reg;
static atomic_ulong reg_gen = 1;
static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;
static __thread struct tl_cache *tl;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static struct pgcmk_vacl_policy *builtin_default;

static void
compiled_free(struct compiled *c)
{
    if (c == NULL)
        return;
    struct crule *t[3] = {c->exact, c->prefix, c->wc};
    size_t n[3] = {c->n_exact, c->n_prefix, c->n_wc};

    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < n[k]; i++) {
            free(t[k][i].path);
            json_decref(t[k][i].allowed);
            json_decref(t[k][i].denied);
            json_decref(t[k][i].required);
        }
    free(c->exact);
    free(c->prefix);
    free(c->wc);
    free(c);
}

static void
tl_clear(struct tl_cache *c)
{
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        free(c->slot[i].key);
        compiled_free(c->slot[i].acl);
        c->slot[i].key = NULL;
        c->slot[i].acl = NULL;
    }
}

static void
tl_destroy(void *p)
{
    tl_clear(p);
    free(p);
}

static void
tl_key_make(void)
{
    (void)pthread_key_create(&tl_key, tl_destroy);
}

/* Every registry write (under the write lock): the threads' compiled sets are stale. */
static void
cache_clear_locked(void)
{
    atomic_fetch_add_explicit(&reg_gen, 1, memory_order_release);
}

static void
default_parse(void)
{
    char err[128];

    if (pgcmk_vacl_policy_parse("default", pgcmk_vacl_default_policy, &builtin_default, err,
                                sizeof(err)) < 0)
        builtin_default = NULL;
}

static struct ns_entry *
ns_find(const char *ns, int create)
{
    struct ns_entry *e;

    for (size_t i = 0; i < n_reg; i++)
        if (strcmp(reg[i].ns, ns) == 0)
            return &reg[i];
    if (!create)
        return NULL;
    e = realloc(reg, (n_reg + 1) * sizeof(*reg));
    if (e == NULL)
        return NULL;
    reg = e;
    e = &reg[n_reg];
    memset(e, 0, sizeof(*e));
    e->ns = strdup(ns);
    if (e->ns == NULL)
        return NULL;
    n_reg++;
    return e;
}

static struct pgcmk_vacl_policy *
policy_find_locked(const char *ns, const char *name, size_t *idx)
{
    struct ns_entry *e = ns_find(ns, 0);

    if (e)
        for (size_t i = 0; i < e->n; i++)
            if (strcmp(e->pol[i]->name, name) == 0) {
                if (idx)
                    *idx = i;
                return e->pol[i];
            }
    return NULL;
}

/* The default policy in force: the namespace's own version, else the built-in text. */
static struct pgcmk_vacl_policy *
policy_lookup_locked(const char *ns, const char *name)
{
    struct pgcmk_vacl_policy *p = policy_find_locked(ns, name, NULL);

    if (p || strcmp(name, "default") != 0)
        return p;
    pthread_once(&default_once, default_parse);
    return builtin_default;
}

static int
valid_name(const char *name)
{
    if (name == NULL || *name == '\0' || strlen(name) > 256)
        return 0;
    for (const char *s = name; *s; s++)
        if (*s == '/' || (unsigned char)*s < 0x20)
            return 0;
    return 1;
}

int
pgcmk_vacl_policy_put(const char *ns, const char *name, const char *text, char *err, size_t errlen)
{
    struct pgcmk_vacl_policy *p, *old;
    struct ns_entry *e;
    size_t idx;

    if (strcmp(name, "root") == 0) {
        snprintf(err, errlen, "cannot update \"root\" policy");
        return -2;
    }
    if (!valid_name(name)) {
        snprintf(err, errlen, "invalid policy name");
        return -2;
    }
    if (pgcmk_vacl_policy_parse(name, text, &p, err, errlen) < 0)
        return -1;
    pthread_rwlock_wrlock(&reg_lock);
    old = policy_find_locked(ns, name, &idx);
    e = ns_find(ns, 1);
    if (e == NULL) {
        pthread_rwlock_unlock(&reg_lock);
        pgcmk_vacl_policy_free(p);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (old) {
        e->pol[idx] = p;
        pgcmk_vacl_policy_free(old);
    } else {
        struct pgcmk_vacl_policy **np = realloc(e->pol, (e->n + 1) * sizeof(*np));

        if (np == NULL) {
            pthread_rwlock_unlock(&reg_lock);
            pgcmk_vacl_policy_free(p);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        e->pol = np;
        e->pol[e->n++] = p;
    }
    cache_clear_locked();
    pthread_rwlock_unlock(&reg_lock);
    return 0;
}

int
pgcmk_vacl_policy_del(const char *ns, const char *name)
{
    struct pgcmk_vacl_policy *p;
    struct ns_entry *e;
    size_t idx;

    if (strcmp(name, "root") == 0 || strcmp(name, "default") == 0)
        return -2;
    pthread_rwlock_wrlock(&reg_lock);
    p = policy_find_locked(ns, name, &idx);
    if (p == NULL) {
        pthread_rwlock_unlock(&reg_lock);
        return 1;
    }
    e = ns_find(ns, 0);
    memmove(&e->pol[idx], &e->pol[idx + 1], (e->n - idx - 1) * sizeof(e->pol[0]));
    e->n--;
    pgcmk_vacl_policy_free(p);
    cache_clear_locked();
    pthread_rwlock_unlock(&reg_lock);
    return 0;
}

char *
pgcmk_vacl_policy_get(const char *ns, const char *name)
{
    struct pgcmk_vacl_policy *p;
    char *text = NULL;

    if (strcmp(name, "root") == 0)
        return NULL;
    pthread_rwlock_rdlock(&reg_lock);
    p = policy_find_locked(ns, name, NULL);
    if (p)
        text = strdup(p->text);
    else if (strcmp(name, "default") == 0)
        text = strdup(pgcmk_vacl_default_policy);
    pthread_rwlock_unlock(&reg_lock);
    return text;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

json_t *
pgcmk_vacl_policy_list(const char *ns)
{
    json_t *a = json_array(), **v;
    struct ns_entry *e;
    size_t n;

    json_array_append_new(a, json_string("default"));
    pthread_rwlock_rdlock(&reg_lock);
    e = ns_find(ns, 0);
    if (e)
        for (size_t i = 0; i < e->n; i++)
            if (strcmp(e->pol[i]->name, "default") != 0)
                json_array_append_new(a, json_string(e->pol[i]->name));
    pthread_rwlock_unlock(&reg_lock);
    /* the root namespace lists root; Vault's namespaces have no root policy */
    if (*ns == '\0')
        json_array_append_new(a, json_string("root"));
    n = json_array_size(a);
    v = malloc(n * sizeof(*v));
    if (v == NULL)
        return a;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(a, i));
    qsort(v, n, sizeof(*v), cmp_str);
    json_array_clear(a);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, v[i]);
    free(v);
    return a;
}

void
pgcmk_vacl_drop_ns(const char *ns_prefix)
{
    size_t w = 0, len = strlen(ns_prefix);

    pthread_rwlock_wrlock(&reg_lock);
    for (size_t i = 0; i < n_reg; i++) {
        if (strncmp(reg[i].ns, ns_prefix, len) != 0) {
            reg[w++] = reg[i];
            continue;
        }
        for (size_t j = 0; j < reg[i].n; j++)
            pgcmk_vacl_policy_free(reg[i].pol[j]);
        free(reg[i].pol);
        free(reg[i].ns);
    }
    n_reg = w;
    cache_clear_locked();
    pthread_rwlock_unlock(&reg_lock);
}

void
pgcmk_vacl_reset(void)
{
    pthread_rwlock_wrlock(&reg_lock);
    for (size_t i = 0; i < n_reg; i++) {
        for (size_t j = 0; j < reg[i].n; j++)
            pgcmk_vacl_policy_free(reg[i].pol[j]);
        free(reg[i].pol);
        free(reg[i].ns);
    }
    free(reg);
    reg = NULL;
    n_reg = 0;
    cache_clear_locked();
    pthread_rwlock_unlock(&reg_lock);
}

/* ---- compiling and evaluating ---------------------------------------------------------------- */

static int
cmp_crule(const void *a, const void *b)
{
    return strcmp(((const struct crule *)a)->path, ((const struct crule *)b)->path);
}

/* Vault's merge of parameter maps: keys add up; a key's empty list (any value) wins, else the
 * value lists add up. */
static void
merge_params(json_t **into, const json_t *from)
{
    const char *k;
    json_t *v;

    if (from == NULL)
        return;
    if (*into == NULL) {
        *into = json_deep_copy(from);
        return;
    }
    json_object_foreach((json_t *)from, k, v) {
        json_t *cur = json_object_get(*into, k);

        if (cur == NULL)
            json_object_set_new(*into, k, json_deep_copy(v));
        else if (json_is_array(cur) && json_array_size(cur) && json_is_array(v) &&
                 json_array_size(v))
            json_array_extend(cur, v);
        else
            json_object_set_new(*into, k, json_array());
    }
}

static void
merge_required(json_t **into, const json_t *from)
{
    if (from == NULL)
        return;
    if (*into == NULL)
        *into = json_array();
    json_array_extend(*into, (json_t *)from);
}

static void
merge_caps(unsigned *into, unsigned caps)
{
    if ((*into | caps) & PGCMK_VCAP_DENY)
        *into = PGCMK_VCAP_DENY;
    else
        *into |= caps;
}

/* Adds `r` to a table, merging with an existing rule of the same pattern. */
static int
table_add(struct crule **t, size_t *n, const struct pgcmk_vacl_rule *r)
{
    struct crule *c;

    for (size_t i = 0; i < *n; i++)
        if ((*t)[i].is_prefix == r->is_prefix && strcmp((*t)[i].path, r->path) == 0) {
            merge_caps(&(*t)[i].caps, r->caps);
            merge_params(&(*t)[i].allowed, r->allowed);
            merge_params(&(*t)[i].denied, r->denied);
            merge_required(&(*t)[i].required, r->required);
            return 0;
        }
    c = realloc(*t, (*n + 1) * sizeof(*c));
    if (c == NULL)
        return -1;
    *t = c;
    c = &c[(*n)++];
    memset(c, 0, sizeof(*c));
    c->path = strdup(r->path);
    if (c->path == NULL) {
        (*n)--;
        return -1;
    }
    c->len = strlen(r->path);
    c->caps = r->caps & PGCMK_VCAP_DENY ? PGCMK_VCAP_DENY : r->caps;
    c->is_prefix = r->is_prefix;
    c->n_plus = r->n_plus;
    c->first_wc = r->first_wc;
    c->n_seg = 1;
    for (const char *s = r->path; *s; s++)
        c->n_seg += *s == '/';
    merge_params(&c->allowed, r->allowed);
    merge_params(&c->denied, r->denied);
    merge_required(&c->required, r->required);
    return 0;
}

static struct compiled *
compile_locked(const char *ns, const char *const *policies, int n)
{
    struct compiled *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        struct pgcmk_vacl_policy *p;

        if (policies[i] == NULL)
            continue;
        if (strcmp(policies[i], "root") == 0) {
            c->root = 1;
            continue;
        }
        p = policy_lookup_locked(ns, policies[i]);
        if (p == NULL)
            continue;
        for (size_t j = 0; j < p->n_rules; j++) {
            const struct pgcmk_vacl_rule *r = &p->rules[j];
            int rc;

            if (r->n_plus)
                rc = table_add(&c->wc, &c->n_wc, r);
            else if (r->is_prefix)
                rc = table_add(&c->prefix, &c->n_prefix, r);
            else
                rc = table_add(&c->exact, &c->n_exact, r);
            if (rc < 0) {
                compiled_free(c);
                return NULL;
            }
        }
    }
    if (c->n_exact)
        qsort(c->exact, c->n_exact, sizeof(*c->exact), cmp_crule);
    return c;
}

static const struct crule *
find_exact(const struct compiled *c, const char *path, size_t len)
{
    size_t lo = 0, hi = c->n_exact;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct crule *r = &c->exact[mid];
        int d = strncmp(r->path, path, len);

        if (d == 0 && r->len != len)
            d = r->len < len ? -1 : 1;
        if (d == 0)
            return r;
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Vault's isLowerPriorityThan: 1 when `a` loses to `b`. */
static int
lower_priority(const struct crule *a, const struct crule *b)
{
    int d;

    if (a->first_wc != b->first_wc)
        return a->first_wc < b->first_wc;
    if (a->is_prefix != b->is_prefix)
        return a->is_prefix;
    if (a->n_plus != b->n_plus)
        return a->n_plus > b->n_plus;
    if (a->len + (size_t)a->is_prefix != b->len + (size_t)b->is_prefix)
        return a->len + (size_t)a->is_prefix < b->len + (size_t)b->is_prefix;
    d = strcmp(a->path, b->path);
    return d < 0;
}

/* A '+' pattern against a path, segment by segment; a prefix pattern's last segment is a prefix
 * of the path's segment and more segments may follow. */
static int
wc_match(const struct crule *r, const char *path)
{
    const char *p = r->path, *q = path;

    for (;;) {
        const char *pe = strchr(p, '/'), *qe = strchr(q, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p);
        size_t ql = qe ? (size_t)(qe - q) : strlen(q);

        if (pe == NULL) { /* the pattern's last segment */
            if (r->is_prefix)
                return (pl == 1 && p[0] == '+') || (ql >= pl && memcmp(p, q, pl) == 0) ||
                       (qe && pl <= ql && memcmp(p, q, pl) == 0);
            return qe == NULL && ((pl == 1 && p[0] == '+') || (pl == ql && memcmp(p, q, pl) == 0));
        }
        if (qe == NULL)
            return 0; /* the path is shorter */
        if (!(pl == 1 && p[0] == '+') && !(pl == ql && memcmp(p, q, pl) == 0))
            return 0;
        p = pe + 1;
        q = qe + 1;
    }
}

/* The rule that decides `path` (NULL: none). */
static const struct crule *
winner(const struct compiled *c, const char *path)
{
    const struct crule *r, *best = NULL;
    size_t len = strlen(path);

    r = find_exact(c, path, len);
    if (r == NULL && len && path[len - 1] == '/')
        r = find_exact(c, path, len - 1);
    if (r)
        return r;
    for (size_t i = 0; i < c->n_prefix; i++) {
        r = &c->prefix[i];
        if (r->len <= len && memcmp(r->path, path, r->len) == 0 &&
            (best == NULL || r->len > best->len))
            best = r;
    }
    for (size_t i = 0; i < c->n_wc; i++) {
        r = &c->wc[i];
        if (wc_match(r, path) && (best == NULL || lower_priority(best, r)))
            best = r;
    }
    return best;
}

static unsigned
evaluate(const struct compiled *c, const char *path)
{
    const struct crule *r;

    if (c->root)
        return PGCMK_VCAP_ALL;
    r = winner(c, path);
    return r ? r->caps : 0;
}

static uint32_t
cache_hash(const char *ns, const char *const *policies, int n)
{
    uint32_t h = 2166136261u;

    for (const char *s = ns; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    for (int i = 0; i < n; i++) {
        h = (h ^ 0x1f) * 16777619u;
        for (const char *s = policies[i]; *s; s++)
            h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h;
}

static int
cache_key_eq(const char *key, const char *ns, const char *const *policies, int n)
{
    size_t l = strlen(ns);

    if (strncmp(key, ns, l) != 0)
        return 0;
    key += l;
    for (int i = 0; i < n; i++) {
        if (*key++ != '\x1f')
            return 0;
        l = strlen(policies[i]);
        if (strncmp(key, policies[i], l) != 0)
            return 0;
        key += l;
    }
    return *key == '\0';
}

static char *
cache_key(const char *ns, const char *const *policies, int n)
{
    size_t l = strlen(ns) + 1;
    char *k, *w;

    for (int i = 0; i < n; i++)
        l += strlen(policies[i]) + 1;
    k = malloc(l);
    if (k == NULL)
        return NULL;
    w = stpcpy(k, ns);
    for (int i = 0; i < n; i++) {
        *w++ = '\x1f';
        w = stpcpy(w, policies[i]);
    }
    return k;
}

/* This thread's compiled set for (ns, policies): valid until this thread's next call. NULL when
 * memory ran out (the caller denies). */
static const struct compiled *
acl_for(const char *ns, const char *const *policies_in, int n)
{
    const char *policies[64];
    struct cache_slot *s;
    struct compiled *c;
    unsigned long gen;

    if (n > 64)
        n = 64;
    for (int i = 0; i < n; i++)
        policies[i] = policies_in[i] ? policies_in[i] : "";
    if (ns == NULL)
        ns = "";
    if (tl == NULL) {
        pthread_once(&tl_once, tl_key_make);
        tl = calloc(1, sizeof(*tl));
        if (tl == NULL)
            return NULL;
        (void)pthread_setspecific(tl_key, tl);
    }
    gen = atomic_load_explicit(&reg_gen, memory_order_acquire);
    if (tl->gen != gen) {
        tl_clear(tl);
        tl->gen = gen;
    }
    s = &tl->slot[cache_hash(ns, policies, n) % CACHE_SLOTS];
    if (s->key && cache_key_eq(s->key, ns, policies, n))
        return s->acl;
    /* a miss: compile under the read lock (a registry at least as new as `gen`) */
    pthread_rwlock_rdlock(&reg_lock);
    c = compile_locked(ns, policies, n);
    pthread_rwlock_unlock(&reg_lock);
    if (c == NULL)
        return NULL;
    free(s->key);
    compiled_free(s->acl);
    s->key = cache_key(ns, policies, n);
    s->acl = c;
    if (s->key == NULL) {
        compiled_free(c);
        s->acl = NULL;
    }
    return s->acl;
}

unsigned
pgcmk_vacl_capabilities(const char *ns, const char *const *policies, int n, const char *path)
{
    const struct compiled *c = acl_for(ns, policies, n);

    while (*path == '/')
        path++;
    return c ? evaluate(c, path) : 0;
}

/* Vault's valueInParameterList: an empty list allows any value; strings match with a leading or
 * trailing '*' glob; other values by equality. */
static int
value_in(const json_t *value, const json_t *list)
{
    size_t i;
    json_t *e;

    if (!json_is_array(list) || json_array_size(list) == 0)
        return 1;
    json_array_foreach(list, i, e) {
        const char *pat = json_string_value(e), *v = json_string_value(value);

        if (pat && v) {
            size_t pl = strlen(pat), vl = strlen(v);

            if (strcmp(pat, "*") == 0 || strcmp(pat, v) == 0)
                return 1;
            if (pl > 1 && pat[pl - 1] == '*' && strncmp(v, pat, pl - 1) == 0)
                return 1;
            if (pl > 1 && pat[0] == '*' && vl >= pl - 1 && strcmp(v + vl - (pl - 1), pat + 1) == 0)
                return 1;
        } else if (json_equal((json_t *)value, e)) {
            return 1;
        }
    }
    return 0;
}

static json_t *
param_get(const json_t *map, const char *key)
{
    char low[256];
    size_t i;

    for (i = 0; key[i] && i + 1 < sizeof(low); i++)
        low[i] = (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] + 32 : key[i]);
    low[i] = '\0';
    return json_object_get(map, low);
}

int
pgcmk_vacl_params_ok(const char *ns, const char *const *policies, int n, const char *path,
                     const json_t *data)
{
    const struct compiled *c = acl_for(ns, policies, n);
    const struct crule *r;
    const char *k;
    json_t *v;
    size_t i;
    int allowed_all;

    while (*path == '/')
        path++;
    if (c == NULL)
        return 0;
    if (c->root || (r = winner(c, path)) == NULL)
        return 1;
    if (!r->allowed && !r->denied && !r->required)
        return 1;
    json_array_foreach(r->required, i, v)
        if (!json_is_object(data) || param_get(data, json_string_value(v)) == NULL)
            return 0;
    if (!json_is_object(data) || json_object_size(data) == 0)
        return 1;
    if (r->denied && json_object_size(r->denied)) {
        if (json_object_get(r->denied, "*"))
            return 0;
        json_object_foreach((json_t *)data, k, v) {
            json_t *list = param_get(r->denied, k);

            if (list && value_in(v, list))
                return 0;
        }
    }
    if (r->allowed == NULL || json_object_size(r->allowed) == 0)
        return 1;
    allowed_all = json_object_get(r->allowed, "*") != NULL;
    if (json_object_size(r->allowed) == 1 && allowed_all)
        return 1;
    json_object_foreach((json_t *)data, k, v) {
        json_t *list = param_get(r->allowed, k);

        if (list == NULL && allowed_all)
            continue;
        if (list == NULL || !value_in(v, list))
            return 0;
    }
    return 1;
}

/* A rule that grants something (not deny) on a path under `mount`. */
static int
rule_under(const struct crule *r, size_t n, const char *mount, size_t ml, int wildcard)
{
    for (size_t i = 0; i < n; i++) {
        size_t cmp = wildcard && (size_t)r[i].first_wc < ml ? (size_t)r[i].first_wc : ml;

        if ((r[i].caps & PGCMK_VCAP_DENY) || !(r[i].caps & ~PGCMK_VCAP_DENY))
            continue;
        if (strncmp(r[i].path, mount, cmp) == 0 && (wildcard || r[i].len >= ml))
            return 1;
    }
    return 0;
}

int
pgcmk_vacl_mount_access(const char *ns, const char *const *policies, int n, const char *mount)
{
    const struct compiled *c = acl_for(ns, policies, n);
    unsigned have;
    size_t ml;

    while (*mount == '/')
        mount++;
    if (c == NULL)
        return 0;
    if (c->root)
        return 1;
    have = evaluate(c, mount);
    if (have && !(have & PGCMK_VCAP_DENY))
        return 1;
    ml = strlen(mount);
    return rule_under(c->exact, c->n_exact, mount, ml, 0) ||
           rule_under(c->prefix, c->n_prefix, mount, ml, 0) ||
           rule_under(c->wc, c->n_wc, mount, ml, 1);
}

int
pgcmk_vacl_check(const char *ns, const char *const *policies, int n, const char *path,
                 unsigned caps)
{
    char buf[1024];
    unsigned have;
    size_t len = strlen(path);

    /* Vault checks a LIST on "kv" as "kv/" (the request path of a list always ends in '/') */
    if ((caps & PGCMK_VCAP_LIST) && len && path[len - 1] != '/' && len + 2 <= sizeof(buf)) {
        memcpy(buf, path, len);
        buf[len] = '/';
        buf[len + 1] = '\0';
        path = buf;
    }
    have = pgcmk_vacl_capabilities(ns, policies, n, path);
    if (have & PGCMK_VCAP_DENY)
        return 0;
    if (caps && pgcmk_vacl_path_needs_sudo(path))
        caps |= PGCMK_VCAP_SUDO;
    return caps != 0 && (have & caps) == caps;
}
