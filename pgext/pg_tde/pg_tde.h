/* pg_tde.h - what the files of pgcmk's pg_tde emulation share (pgext/pg_tde/). */
#ifndef PGCMK_PGEXT_PG_TDE_H
#define PGCMK_PGEXT_PG_TDE_H

#include "lib/stringinfo.h"

/* GUCs (pg_tde.c) */
extern int tde_cipher;         /* pg_tde.cipher: TDE_CIPHER_* */
extern char *tde_agent_socket; /* pg_tde.pgcmk_agent_socket */
extern char *tde_agent_slug;   /* pg_tde.pgcmk_slug */

/* how long the extension waits for an agent's answer (its provider timeouts are shorter) */
#define PGTDE_TIMEOUT_MS 60000

#define TDE_CIPHER_AES_128 0
#define TDE_CIPHER_AES_256 1

/* An agent's answer (include/pgcmk/tdeproto.h): its "key=value" lines, unescaped, in order. */
typedef struct TdeAnswer {
    int n;
    char **keys;
    char **values;
} TdeAnswer;

/* A request body with the keys every request carries (op, dboid, dbname, user, superuser,
 * cipher); the postmaster (no database, no user) sends dboid=0 and empty names. */
void tde_req_init(StringInfo req, const char *op);
/* key=value, the value escaped; a NULL value is sent empty */
void tde_req_add(StringInfo req, const char *key, const char *value);
/* Sends the request to the agent and answers its body; an unreachable agent, a transport error
 * or status=error is raised at elevel (ERROR, or FATAL for the postmaster's start check) with
 * the agent's SQLSTATE, message, detail and hint unchanged. */
TdeAnswer *tde_call(StringInfo req, int elevel);
/* The first value of key, or NULL */
const char *tde_answer_get(const TdeAnswer *a, const char *key);

#endif
