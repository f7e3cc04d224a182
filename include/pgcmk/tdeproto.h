/* tdeproto.h - the pg_tde agent protocol: how pgcmk's pg_tde-compatible extension (pgext/pg_tde/,
 * loaded into a real self-managed instance) asks pgcmkd (src/pg/tdeagent.c) to manage its key
 * providers and principal keys. This header is plain C with no pgcmk dependency: the extension
 * includes it too.
 *
 * Transport: the archive socket DATA_DIR/pg/run/agent.sock (src/pg/arfmt.h: its path reaches the
 * instance as the GUC pg_tde.pgcmk_agent_socket, set by pgcmkd in pgcmk.conf), one request per
 * connection, only the PostgreSQL user and root may connect (SO_PEERCRED), and the agent checks
 * that the peer process belongs to the instance named by <slug> (the postmaster or one of its
 * children):
 *   "TDE <slug> <length>\n" + length bytes of request body
 *      -> "OK <length>\n" + length bytes of answer body | "ERR <text>\n" (transport errors only)
 * <length> is decimal, at most PGTDE_MAX_BODY.
 *
 * A body is lines "key=value\n". Keys are [a-z_]{1,32}. Values are escaped: '\\' -> "\\\\",
 * '\n' -> "\\n", '\r' -> "\\r", '\0' is not allowed. A key may repeat only where said ("row").
 * Unknown keys in a request are an error (the agent answers status=error, XX000).
 *
 * Request, always: op=<op>, dboid=<the caller's database oid, decimal>, dbname=<name>,
 * user=<current role>, superuser=0|1, cipher=aes_128|aes_256 (pg_tde.cipher). Then per op:
 *   provider_add     scope=global|database name=<provider> type=file|vault-v2|kmip
 *                    options=<JSON object text, pg_tde's option names: file {"path"}; vault-v2
 *                    {"url","mountPath","tokenPath","caPath","namespace"}; kmip {"host","port",
 *                    "certPath","keyPath","caPath"}>      answer: id=<provider id>
 *   provider_change  the same as provider_add               answer: id=
 *   provider_delete  scope= name=                           answer: -
 *   provider_list    scope=                                 answer: row=<id>\t<name>\t<type>\t
 *                                                           <options JSON> (repeated, id order)
 *   key_create       scope=<the provider's> provider= key=  answer: -   (the key is made in the
 *                    provider; an existing key is an error: never overwritten)
 *   key_set          target=database|server|default scope= provider= key=
 *                                                           answer: -   (the key is fetched from
 *                    the provider, made when it does not exist, and becomes the target's
 *                    principal key)
 *   key_delete       target=database|default                answer: -
 *   key_verify       target=database|server|default         answer: -   (fetches the key now)
 *   key_info         target=database|server|default         answer: key=, provider=,
 *                    provider_id=, created=<ISO 8601 UTC> (no fields when there is no key)
 *   server_key_check (the postmaster's start with pg_tde.wal_encrypt = on) answer: -
 *   status           answer: at_rest=0|1 (the data directory is on the encrypted mount),
 *                    wal_encrypt=0|1 (WAL leaves the server only encrypted), server_key=0|1
 * Answer, always: status=ok, or status=error with sqlstate=<5 chars> message= [detail=] [hint=]
 * that the extension raises as ereport(ERROR) (FATAL for server_key_check) unchanged: the
 * agent owns pg_tde's error texts. */
#ifndef PGCMK_TDEPROTO_H
#define PGCMK_TDEPROTO_H

#define PGTDE_MAX_BODY   65536
#define PGTDE_KEY_MAX    32
#define PGTDE_GUC_SOCKET "pg_tde.pgcmk_agent_socket"
/* The instance's slug (the <slug> of "TDE <slug> <length>"), set by pgcmkd in pgcmk.conf next
 * to PGTDE_GUC_SOCKET (PGC_POSTMASTER, superuser-only, hidden from SHOW ALL is not required). */
#define PGTDE_GUC_SLUG "pg_tde.pgcmk_slug"

#endif
