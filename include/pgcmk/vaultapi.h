/* vaultapi.h - the HashiCorp Vault-compatible API (src/vaultapi/) on its own listener.
 *
 * One pipeline serves every request of the Vault listener (--vault-port, HTTPS with pgcmk's CA,
 * optional plain HTTP on --vault-http-port): /v1/ prefix; the namespace from X-Vault-Namespace
 * and/or a path prefix; the token from X-Vault-Token or "Authorization: Bearer"; LIST == GET
 * ?list=true; POST == PUT; sealed -> 503 (but sys/health, sys/seal-status, sys/unseal); token
 * checks -> 403 "permission denied"; the ACL check (pgcmk_vacl_check) of the capability the
 * backend says the request needs; then the longest mount prefix picks a BACKEND ROW
 * (struct pgcmk_vbackend) that handles the request. Answers are Vault's envelope, errors
 * {"errors":["text"]} with Vault's texts.
 *
 * Owners: h-vcore (this file's core), h-acl (the ACL block, acl.c, approle.c), h-kv (kv.c,
 * transit.c). Others add declarations in their own blocks at the end, additions only. */
#ifndef PGCMK_VAULTAPI_H
#define PGCMK_VAULTAPI_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "pgcmk/core.h"
#include "pgcmk/err.h"

struct pgcmk_req;
struct pgcmk_resp;
struct pgcmk_cfg;
struct pgcmk_db;

/* The dev root token (like `vault server -dev -dev-root-token-id ...`) and the one unseal key
 * (base64 of 32 bytes, Shamir 1-of-1), fixed and documented: /emulator/info shows both. */
#define PGCMK_HV_ROOT_TOKEN   "hvs.pgcmk-dev-root-token"
#define PGCMK_HV_UNSEAL_KEY   "cGdjbWstZGV2LXVuc2VhbC1rZXktMDEyMzQ1Njc4OWE="
#define PGCMK_HV_DEFAULT_PORT 8200
#define PGCMK_HV_VERSION      "1.15.6" /* the Vault version sys/health and seal-status report */

#define PGCMK_HV_NS_MAX   256 /* a namespace path "ns1/ns2/" */
#define PGCMK_HV_PATH_MAX 512 /* a mount path "secret/" or "auth/approle/" */

/* Capabilities (Vault's policy words), as bits. */
#define PGCMK_HV_CAP_CREATE 0x001u
#define PGCMK_HV_CAP_READ   0x002u
#define PGCMK_HV_CAP_UPDATE 0x004u
#define PGCMK_HV_CAP_DELETE 0x008u
#define PGCMK_HV_CAP_LIST   0x010u
#define PGCMK_HV_CAP_SUDO   0x020u
#define PGCMK_HV_CAP_DENY   0x040u
#define PGCMK_HV_CAP_PATCH  0x080u
#define PGCMK_HV_CAP_NONE   0u /* the request needs no ACL check (login paths, lookup-self) */

/* What the request does (the HTTP method after LIST and POST folding). */
enum pgcmk_hv_op {
    PGCMK_HV_READ = 0,  /* GET */
    PGCMK_HV_WRITE = 1, /* PUT or POST */
    PGCMK_HV_LIST = 2,  /* LIST, or GET ?list=true */
    PGCMK_HV_DELETE = 3,
    PGCMK_HV_PATCH = 4,
};

/* A resolved client token (what the pipeline hands a backend; read-only for it). */
struct pgcmk_hv_token {
    char accessor[32];
    char hash[65];            /* SHA-256 of the token, lower-case hex */
    char ns[PGCMK_HV_NS_MAX]; /* the namespace it belongs to: "" (root) or "ns1/" */
    char parent[32];          /* the parent's accessor, "" for an orphan */
    char display_name[128];
    json_t *policies;  /* array of strings, sorted; "root" for the root token */
    json_t *meta;      /* object of strings, or null */
    int64_t issue_ms;  /* virtual clock */
    int64_t expire_ms; /* 0 = never */
    int64_t ttl_s;     /* the TTL asked (or given) at issue/last renew */
    int64_t explicit_max_ttl_s;
    int64_t period_s;
    int num_uses; /* uses left; 0 = unlimited */
    int renewable;
    int root; /* carries the root policy */
    int orphan;
};

/* A mount (secrets engine or auth method) in a namespace. */
struct pgcmk_hv_mount {
    char ns[PGCMK_HV_NS_MAX];
    char path[PGCMK_HV_PATH_MAX]; /* "secret/", auth methods "auth/approle/", always ends in '/' */
    char type[32];                /* "kv", "transit", "approle", "token", "system" */
    char accessor[48];            /* "kv_1a2b3c4d" */
    char uuid[37];
    char description[256];
    int is_auth;
    json_t *options; /* object: {"version":"2"} for KV v2; never NULL */
    json_t *config;  /* {"default_lease_ttl":0,"max_lease_ttl":0,"force_no_cache":false} */
    int64_t created_ms;
    const struct pgcmk_vbackend *backend;
};

/* One request as a backend sees it. */
struct pgcmk_hv_req {
    struct pgcmk_req *http; /* the HTTP request: headers, query (pgcmk_req_query) */
    enum pgcmk_hv_op op;
    const char *method;       /* "GET", "PUT", "POST", "LIST", "DELETE", "PATCH" as sent */
    char ns[PGCMK_HV_NS_MAX]; /* the request's namespace: "" or "ns1/ns2/" */
    const char *path;         /* the path in the namespace after /v1/, no leading or trailing '/' */
    const char *rest;   /* the path inside the mount ("data/pg-key"; "" at the mount's root) */
    int trailing_slash; /* the URL path ended in '/' */
    const struct pgcmk_hv_mount *mount; /* NULL for sys/ */
    const struct pgcmk_hv_token *token; /* NULL on unauthenticated paths */
    json_t *body;                       /* the JSON body (an object), or NULL when there was none */
    void *state; /* a backend's capability() may leave state for its handle() */
    void (*state_free)(void *state);
};

/* One answer. Fill it through the helpers below. */
struct pgcmk_hv_resp {
    int status;       /* 0 = 200 (or 204 with nothing to send) */
    json_t *data;     /* the envelope's "data" */
    json_t *auth;     /* the envelope's "auth" (logins, token create) */
    char *auth_text;  /* or that "auth" as JSON text already (heap, a secret: wiped when freed) */
    json_t *warnings; /* array of strings, or NULL */
    json_t *raw;      /* a body sent as is, without the envelope (sys/health) */
    json_t *errors;   /* array of strings: an error answer */
    int64_t lease_duration;
    int renewable;
    char lease_id[128];
    int no_content; /* 204 */
};

/* Helpers: each steals the json_t it is given. Return -1 (errors) or 0, so a handler can
 * `return pgcmk_hv_error(rs, 404, ...)`. */
int pgcmk_hv_error(struct pgcmk_hv_resp *rs, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int pgcmk_hv_data(struct pgcmk_hv_resp *rs, json_t *data);            /* 200 {..., "data": data} */
int pgcmk_hv_raw(struct pgcmk_hv_resp *rs, int status, json_t *body); /* body as is */
int pgcmk_hv_no_content(struct pgcmk_hv_resp *rs);                    /* 204 */
/* Vault's common error texts. */
#define PGCMK_HV_E_DENIED      "permission denied"
#define PGCMK_HV_E_SEALED      "Vault is sealed"
#define PGCMK_HV_E_UNSUPPORTED "unsupported path"
/* 404 "no handler for route \"<ns><path>\". route entry not found." */
int pgcmk_hv_no_route(const struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs);
/* 405 "unsupported operation" (Vault's answer to a method a path does not take). */
int pgcmk_hv_bad_method(struct pgcmk_hv_resp *rs);
/* A field of the body or the query (body first): its text (numbers and booleans rendered), or
 * NULL. Fields of Vault's API come either way. */
const char *pgcmk_hv_field(const struct pgcmk_hv_req *rq, const char *name, char *buf, size_t cap);
/* Vault durations: "30s", "1h", "768h", "10m", or a plain number of seconds (string or number).
 * 0 and the seconds, or -1 (a 400 "error parsing duration"). */
int pgcmk_hv_duration(const json_t *v, int64_t *seconds) PGCMK_WUR;
int pgcmk_hv_duration_str(const char *s, int64_t *seconds) PGCMK_WUR;

/* ---- backend rows --------------------------------------------------------------------------- */

struct pgcmk_vbackend {
    const char *type; /* "kv", "transit", "approle", "token", "system" */
    int is_auth;      /* an auth method (mounted under auth/) */
    /* The capability the request needs (PGCMK_HV_CAP_*; create vs update decided by whether the
     * object exists). PGCMK_HV_CAP_NONE skips the ACL check. NULL: read/list/update/delete by the
     * operation (WRITE = update). */
    unsigned (*capability)(struct pgcmk_hv_req *rq);
    /* Handles it: 0, or -1 with an error in rs (either way rs is rendered). */
    int (*handle)(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs);
    /* A new mount (its row is being written in db's transaction): 0, or -1 with err (the mount
     * is refused with err's message, 400). NULL is fine. */
    int (*on_enable)(struct pgcmk_db *db, const struct pgcmk_hv_mount *m, struct pgcmk_err *err);
    /* A mount going away (within db's transaction): drop its rows. NULL is fine. */
    void (*on_disable)(struct pgcmk_db *db, const struct pgcmk_hv_mount *m);
    /* 1 when the request needs no token (login paths). NULL = never. */
    int (*unauthenticated)(const struct pgcmk_hv_req *rq);
    /* The KV version a new mount of this type gets when options.version is absent, or 0. */
    int default_version;
};

/* Adds a backend row (at start, before the listener; at most 16). "kv-v2" is an alias the mount
 * code resolves to "kv" with options.version "2". */
void pgcmk_vbackend_register(const struct pgcmk_vbackend *b);
const struct pgcmk_vbackend *pgcmk_vbackend_find(const char *type);

/* Extra sys/ paths (h-acl: sys/policy, sys/policies/acl, sys/capabilities*): a request whose path
 * is `prefix` or starts with `prefix` + '/' goes to the row's handle (rq->rest = what follows
 * "sys/"). At start only, at most 16. */
struct pgcmk_hv_sys_route {
    const char *prefix; /* "policy", "policies/acl" (without "sys/") */
    unsigned (*capability)(struct pgcmk_hv_req *rq);
    int (*handle)(struct pgcmk_hv_req *rq, struct pgcmk_hv_resp *rs);
    int sudo; /* Vault marks it a sudo path: the ACL check adds PGCMK_HV_CAP_SUDO */
};

void pgcmk_hv_sys_route_add(const struct pgcmk_hv_sys_route *r);

/* The registration hooks of the engines, called by pgcmk_vaultapi_init in this order (each owner
 * defines its own; stubs in acl_stub.c and kv_stub.c until then). */
void pgcmk_hv_acl_register(void);     /* h-acl: sys/policy routes, the approle row */
void pgcmk_hv_kv_register(void);      /* h-kv: the kv row */
void pgcmk_hv_transit_register(void); /* h-kv: the transit row */

/* ---- mounts and namespaces ------------------------------------------------------------------ */

/* The mount that serves `path` in namespace `ns` (longest prefix), copied into *out (its json_t
 * referenced: release with pgcmk_hv_mount_release). 1 found, 0 none. */
int pgcmk_hv_mount_find(const char *ns, const char *path, struct pgcmk_hv_mount *out);
void pgcmk_hv_mount_release(struct pgcmk_hv_mount *m);
/* Every mount of every namespace, for fn (the portal, the agent). */
void pgcmk_hv_mount_each(void (*fn)(const struct pgcmk_hv_mount *m, void *arg), void *arg);
/* 1 when namespace `ns` ("" or "ns1/") exists. */
int pgcmk_hv_ns_exists(const char *ns);

/* ---- tokens (for auth backends) ------------------------------------------------------------- */

struct pgcmk_hv_token_spec {
    const char *ns;              /* the namespace the token belongs to ("" root) */
    const char *const *policies; /* "default" is added unless no_default_policy */
    int n_policies;
    int no_default_policy;
    int64_t ttl_s;               /* 0 = the default (768h) */
    int64_t explicit_max_ttl_s;  /* 0 = none */
    int64_t period_s;            /* 0 = not periodic */
    int num_uses;                /* 0 = unlimited */
    int renewable;               /* 1 renewable */
    const char *display_name;    /* "token", "approle" ... */
    json_t *meta;                /* object of strings, or NULL (borrowed) */
    const char *parent_accessor; /* NULL/"" = an orphan */
    const char *id; /* the token itself (root's `id` on auth/token/create), or NULL = random */
};

/* Issues a token (an explicit spec->id that exists already: -1, PGCMK_E_CONFLICT). *auth =
 * Vault's auth block {client_token, accessor, policies, token_policies,
 * metadata, lease_duration, renewable, entity_id, token_type, orphan, mfa_requirement,
 * num_uses} as compact JSON text (heap, it holds the token: struct pgcmk_hv_resp's auth_text,
 * or pgcmk_secret_free(*auth, strlen(*auth))). The token is durable before this returns. 0, or
 * -1 with err. */
int pgcmk_hv_token_issue(const struct pgcmk_hv_token_spec *spec, char **auth,
                         struct pgcmk_err *err) PGCMK_WUR;
/* Resolves a client token to *out (policies referenced; release with pgcmk_hv_token_release):
 * 1 valid, 0 unknown, expired or used up. Does not count a use. */
int pgcmk_hv_token_lookup(const char *token, struct pgcmk_hv_token *out);
void pgcmk_hv_token_release(struct pgcmk_hv_token *t);
/* Revokes the token with this accessor and its children. 1 revoked, 0 unknown. */
int pgcmk_hv_token_revoke_accessor(const char *accessor);

/* ---- seal ------------------------------------------------------------------------------------ */

int pgcmk_hv_sealed(void);

/* ---- the ACL engine (h-acl: src/vaultapi/acl.c; src/vaultapi/acl_stub.c until then) ---------
 * 1 when the token's `policies` (n strings, in namespace `ns`, the TOKEN's namespace) allow every
 * capability bit in `caps` on `path` (relative to `ns`: a request in a child namespace "ns1/ns2/"
 * by a token of "ns1/" is checked as "ns2/<path>"), else 0. The "root" policy allows everything.
 * Called on every request: must not take a global lock. */
int pgcmk_vacl_check(const char *ns, const char *const *policies, int n, const char *path,
                     unsigned caps);
/* A write's body against the deciding rule's parameter constraints (src/vaultapi/acl.c, vacl.h). */
int pgcmk_vacl_params_ok(const char *ns, const char *const *policies, int n, const char *path,
                         const json_t *data);

/* ---- the module ------------------------------------------------------------------------------ */

/* Loads the namespaces, mounts, tokens and seal state, creates the dev layout on first start
 * (secret/ kv-v2, sys/, identity-less, token/ auth), registers the backend rows and adds the
 * /emulator/vault routes. After the store opened, before the router is sealed. */
int pgcmk_vaultapi_init(void) PGCMK_WUR;
void pgcmk_vaultapi_shutdown(void);
/* Runs one request of the Vault listener (the plane handler of its server). */
void pgcmk_vaultapi_handle(struct pgcmk_req *rq, struct pgcmk_resp *rs);
/* The 413 answer (body over --max-body-kb). */
void pgcmk_vaultapi_too_large(struct pgcmk_req *rq, struct pgcmk_resp *rs);

/* Pure helpers (unit-tested). */
/* Normalises a namespace ("/ns1//ns2" -> "ns1/ns2/", "root" and "" -> ""): 0, or -1 when a
 * segment is empty, "." or "..", or too long. */
int pgcmk_hv_ns_norm(const char *in, char out[PGCMK_HV_NS_MAX]);
/* 1 when mount path `mount` ("secret/") serves `path` ("secret/data/x" or "secret"), with *rest
 * the remainder ("data/x", ""). */
int pgcmk_hv_mount_match(const char *mount, const char *path, const char **rest);

#endif
