/* internal.h - what the files of src/vaultapi/ core share (not for other modules). */
#ifndef PGCMK_VAULTAPI_INTERNAL_H
#define PGCMK_VAULTAPI_INTERNAL_H

#include <jansson.h>

#include "pgcmk/vaultapi.h"

extern const struct pgcmk_vbackend hv_system_backend; /* sys/ (sys.c) */
extern const struct pgcmk_vbackend hv_token_backend;  /* auth/token/ (token.c) */

const struct pgcmk_hv_sys_route *hv_sys_route_find(const char *rest);

/* JSON text written directly (core.c), byte for byte as json_dumps(JSON_COMPACT) writes it: for
 * the answers and rows of the hot paths (a login), where building a json_t to dump it costs more
 * than the rest of the request. The buffer may hold secrets (a token): growing it wipes the old
 * block, and hv_buf_free wipes it; hv_buf_take hands the text over (free it with
 * pgcmk_secret_free). */
struct hv_buf {
    char *p;
    size_t n, cap;
};

void hv_buf_raw(struct hv_buf *b, const char *s, size_t n);
void hv_buf_lit(struct hv_buf *b, const char *s); /* unescaped text */
void hv_buf_str(struct hv_buf *b, const char *s); /* a JSON string, quoted and escaped */
void hv_buf_int(struct hv_buf *b, long long v);
void hv_buf_json(struct hv_buf *b, const json_t *v); /* any value; NULL writes null */
char *hv_buf_take(struct hv_buf *b, size_t *len);
void hv_buf_free(struct hv_buf *b);

/* The request log (core.c). */
void hv_log_init(void);
json_t *hv_log_list(int limit);
void hv_log_clear(void);

/* Tokens (token.c). */
int hv_tokens_load(void);
void hv_tokens_free(void);
/* Counts one use of a token with num_uses: 0, 1 when that was its last use (the request goes
 * on; the caller revokes the token after it), or -1 when it had none left. */
int hv_token_use(const struct pgcmk_hv_token *t);
/* Revokes every token of namespace ns and below (the namespace is deleted). */
void hv_tokens_drop_ns(const char *ns);

/* Mounts, namespaces, seal (sys.c). */
int hv_state_load(void);
void hv_state_free(void);
/* An Activity Log entry under /subscriptions/<sub>/providers/pgcmk.Vault/namespaces/root/<what>. */
void hv_activity(const char *ns, const char *what, const char *operation, const char *description);

#endif
