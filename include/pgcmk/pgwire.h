/* pgwire.h - a small PostgreSQL wire-protocol (v3) client (src/pg/wire.c): pgcmkd talks to its
 * real instances over their unix sockets as the internal superuser with trust auth, using the
 * extended protocol (Parse/Bind/Describe/Execute/Sync) so values are bound as text, never
 * pasted into SQL. No libpq. The message reader is a pure function over a buffer with strict
 * length checks (tests/fuzz/fuzz_pgwire.c feeds it bytes). */
#ifndef PGCMK_PGWIRE_H
#define PGCMK_PGWIRE_H

#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

#include "pgcmk/err.h"

/* The largest backend message accepted (type byte excluded), like libpq's sanity bound. */
#define PGWIRE_MAX_MSG (64u * 1024 * 1024)

/* One backend message: its type byte and body (not copied: points into the caller's buffer). */
struct pgwire_msg {
    char type;
    const unsigned char *body;
    size_t len;
};

/* Splits the next message off buf[0..n): the bytes it takes (5 + body), 0 when buf holds less
 * than a whole message, -1 when the length field is impossible (< 4 or > PGWIRE_MAX_MSG). */
ssize_t pgwire_msg_split(const unsigned char *buf, size_t n, struct pgwire_msg *m);

/* What a statement's backend messages amount to. */
struct pgwire_result {
    json_t *cols;      /* array of column names (RowDescription) */
    json_t *rows;      /* array of objects: column name -> text or null */
    char command[64];  /* CommandComplete tag ("INSERT 0 1") */
    int auth_ok;       /* AuthenticationOk seen */
    int ready;         /* ReadyForQuery seen: the exchange is over */
    int failed;        /* 1: ErrorResponse; 2: a protocol violation (message says which) */
    char sqlstate[6];  /* C field */
    char severity[16]; /* V (else S) field */
    char message[256]; /* M field, or the protocol violation */
    char detail[256];  /* D field */
    char hint[256];    /* H field */
    int multi;         /* set by the caller: several result sets may come (a simple Query of
                        * several statements); rows are then the last RowDescription's */
    int commands;      /* CommandComplete messages seen */
};

void pgwire_result_init(struct pgwire_result *r);
void pgwire_result_free(struct pgwire_result *r);
/* Applies one backend message to r: 0, or -1 on a malformed or unexpected message (r->failed
 * = 2, r->message says what). The first ErrorResponse wins; notices and parameter statuses are
 * read and dropped. */
int pgwire_result_feed(struct pgwire_result *r, const struct pgwire_msg *m);

/* Frontend messages, appended to a growable buffer. */
struct pgwire_buf {
    unsigned char *p;
    size_t n, cap;
};

/* Frees b, its bytes wiped first (a statement may carry a SCRAM verifier). */
void pgwire_buf_free(struct pgwire_buf *b);
/* StartupMessage (protocol 3.0) for user and database. */
void pgwire_startup(struct pgwire_buf *b, const char *user, const char *database);
/* Parse (unnamed, types inferred) + Bind (text params, NULL = SQL NULL, text results) +
 * Describe portal + Execute (all rows) + Sync. */
void pgwire_extended(struct pgwire_buf *b, const char *sql, const char *const *params, int nparams);
/* Query (the simple protocol): sql may hold several statements separated by semicolons; they
 * run as one transaction unless they control it themselves. */
void pgwire_simple(struct pgwire_buf *b, const char *sql);
void pgwire_terminate(struct pgwire_buf *b);

/* Runs one statement over the unix socket sock_path as user (trust auth) on database; rows as
 * pgcmk_pg_exec describes. On an ErrorResponse: PGCMK_E_PGREAL_SQL "ERROR: message (SQLSTATE
 * xxxxx)"; cannot connect: PGCMK_E_PGREAL_DOWN. timeout_ms bounds every read and write. */
int pgwire_query(const char *sock_path, const char *user, const char *database, const char *sql,
                 const char *const *params, int nparams, int timeout_ms, json_t **rows,
                 struct pgcmk_err *err);

/* Runs scripts[0..n) over ONE connection (sock_path, user with trust auth, database), each as
 * one simple Query message (several statements each, no parameters), in order, each awaited
 * (ReadyForQuery) before the next; stops at the first error (PGCMK_E_PGREAL_SQL as
 * pgwire_query). The CommandComplete count of all of them goes to *commands (when not NULL). */
int pgwire_script(const char *sock_path, const char *user, const char *database,
                  const char *const *scripts, int n, int timeout_ms, int *commands,
                  struct pgcmk_err *err);

/* SCRAM-SHA-256 verifier of password with the given 16-byte salt, as PostgreSQL stores it:
 * "SCRAM-SHA-256$4096:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>" (heap string). The password
 * is used as given (SASLprep leaves ASCII unchanged). NULL on a crypto failure. */
char *pgwire_scram_verifier(const char *password, const unsigned char salt[16]);

/* "..."-quoted SQL identifier (doubled inner quotes), heap. */
char *pgwire_quote_ident(const char *s);

#endif
