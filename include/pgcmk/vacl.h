/* vacl.h - the Vault-compatible API's ACL policies: the HCL parser (src/vaultapi/hcl.c, pure),
 * the policy decoder and the ACL engine (src/vaultapi/acl.c) with Vault 1.x's matching rules. */
#ifndef PGCMK_VACL_H
#define PGCMK_VACL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Capability bits, as Vault spells them in policies: the same values as vaultapi.h's
 * PGCMK_HV_CAP_* (the pipeline passes those). */
enum {
    PGCMK_VCAP_CREATE = 0x001u,
    PGCMK_VCAP_READ = 0x002u,
    PGCMK_VCAP_UPDATE = 0x004u,
    PGCMK_VCAP_DELETE = 0x008u,
    PGCMK_VCAP_LIST = 0x010u,
    PGCMK_VCAP_SUDO = 0x020u,
    PGCMK_VCAP_DENY = 0x040u,
    PGCMK_VCAP_PATCH = 0x080u,
    PGCMK_VCAP_ALL = 0x0bfu, /* everything but deny: what root holds */
};

/* HCL (version 1, the subset Vault policies use) to JSON: `key "label" { ... }` blocks become
 * {"key": [{"label": {...}}, ...]} (a block key always maps to an array of one-key objects),
 * `key = value` attributes become members (strings, numbers, booleans, lists, objects, heredocs).
 * Comments: #, // and slash-star. Returns a new JSON object, or NULL with `err` set to
 * "At LINE:COL: message". Input that starts with '{' is read as JSON (as Vault does). */
json_t *pgcmk_hcl_parse(const char *text, size_t len, char *err, size_t errlen);

/* One path stanza of a policy, compiled. */
struct pgcmk_vacl_rule {
    char *path;       /* the pattern without its trailing '*' */
    unsigned caps;    /* PGCMK_VCAP_* bits; DENY alone when deny was given */
    int is_prefix;    /* the pattern ended with '*' */
    int n_plus;       /* '+' segments */
    int first_wc;     /* offset of the first '+' or '*', or strlen(path) + is_prefix ... */
    json_t *allowed;  /* allowed_parameters (object) or NULL; parsed, not enforced */
    json_t *denied;   /* denied_parameters */
    json_t *required; /* required_parameters (array of strings) */
    int64_t min_wrap_s, max_wrap_s;
};

struct pgcmk_vacl_policy {
    char *name;
    char *text; /* as written */
    struct pgcmk_vacl_rule *rules;
    size_t n_rules;
};

/* Parses a policy (HCL or JSON) into `*out`. On error returns -1 with Vault's message after
 * "failed to parse policy: " in `err` (the caller answers 400 {"errors":["failed to parse policy:
 * ..."]}). */
int pgcmk_vacl_policy_parse(const char *name, const char *text, struct pgcmk_vacl_policy **out,
                            char *err, size_t errlen);
void pgcmk_vacl_policy_free(struct pgcmk_vacl_policy *p);

/* The built-in policies' text. "root" has none (it cannot be read, written or deleted). */
extern const char pgcmk_vacl_default_policy[];

/* The policy registry, per namespace ("" = root, "ns1/"...). `put` parses and replaces (error as
 * in pgcmk_vacl_policy_parse; "root" is refused with -2, the caller answers 400 "cannot update
 * root policy"); `del` returns -2 for root/default ("cannot delete ... policy"), 1 when nothing
 * was there. `get` returns a malloc'ed copy of the text or NULL. `list` returns a sorted JSON
 * array of names including "default" and "root". Every write invalidates the compiled ACLs. */
int pgcmk_vacl_policy_put(const char *ns, const char *name, const char *text, char *err,
                          size_t errlen);
int pgcmk_vacl_policy_del(const char *ns, const char *name);
char *pgcmk_vacl_policy_get(const char *ns, const char *name);
json_t *pgcmk_vacl_policy_list(const char *ns);
void pgcmk_vacl_reset(void); /* forget every policy (tests, a fresh data directory) */
/* Forget the policies of every namespace whose path starts with ns_prefix ("ns1/"). */
void pgcmk_vacl_drop_ns(const char *ns_prefix);

/* The capabilities `policies` grant on `path` (relative to the namespace, no leading '/'), with
 * Vault's rules: an exact path, else the highest-priority of the longest '*' prefix and the
 * matching '+' paths; capabilities of the same path in several policies add up; deny wins.
 * "root" grants PGCMK_VCAP_ALL. Unknown policy names grant nothing. */
unsigned pgcmk_vacl_capabilities(const char *ns, const char *const *policies, int n,
                                 const char *path);

/* Allowed (1) when every bit of `caps` is granted, plus sudo on Vault's root-protected paths;
 * 0 otherwise. Declared identically in vaultapi.h (the pipeline's call). */
int pgcmk_vacl_check(const char *ns, const char *const *policies, int n, const char *path,
                     unsigned caps);

/* Vault's hasMountAccess (sys/internal/ui/mounts/<path>): 1 when the policies grant anything
 * but deny on the mount path ("secret/") or on some path under it. */
int pgcmk_vacl_mount_access(const char *ns, const char *const *policies, int n, const char *mount);

/* Vault's parameter constraints (required_parameters, denied_parameters, allowed_parameters of
 * the rule that decides `path`, merged over the policies) against a write's body `data`: 1
 * allowed, 0 denied (403 "permission denied"). Root and rules without constraints allow all.
 * The pipeline (src/vaultapi/core.c) calls it after pgcmk_vacl_check on create/update/patch. */
int pgcmk_vacl_params_ok(const char *ns, const char *const *policies, int n, const char *path,
                         const json_t *data);

/* 1 when Vault requires `sudo` on `path` besides the operation's capability (the root-protected
 * paths: sys/audit, sys/raw, sys/rotate, sys/seal, auth/token/accessors...). */
int pgcmk_vacl_path_needs_sudo(const char *path);

/* The capability names of `caps` as a JSON array (["deny"] when 0 or deny; ["root"] for ALL with
 * sudo when `root`). */
json_t *pgcmk_vacl_caps_json(unsigned caps, int root);

/* ---- persistence (src/vaultapi/policy.c): migration 12's vault_policies ---------------------- */
struct pgcmk_err;

/* Loads every stored policy into the registry (at start, after the store is open). */
int pgcmk_vacl_load(struct pgcmk_err *err);

/* Writes a policy: parse, store, register, publish PGCMK_EV_HV_POLICY_CHANGED (object_id = name).
 * Returns 0; -1 with Vault's message in `msg` for a 400 ("failed to parse policy: ...",
 * "cannot update \"root\" policy"); -2 on a store failure (500, `msg` generic). */
int pgcmk_vacl_policy_write(const char *ns, const char *name, const char *text, char *msg,
                            size_t msglen);
/* Deletes a policy: 0 (also when absent, as Vault answers 204), -1 for root/default with Vault's
 * message in `msg` (400), -2 on a store failure. */
int pgcmk_vacl_policy_delete(const char *ns, const char *name, char *msg, size_t msglen);
/* A namespace deleted: its policies and those of its children, in the store and the registry. */
int pgcmk_vacl_policy_delete_ns(const char *ns_prefix, struct pgcmk_err *err);

#endif
