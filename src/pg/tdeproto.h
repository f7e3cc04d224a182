/* tdeproto.h - the pure part of the pg_tde agent protocol (include/pgcmk/tdeproto.h): parsing
 * and formatting of request and answer bodies. No database, no sockets, no global state, no
 * pgcmk dependency (only libc): tests/unit/test_tdeproto.c and tests/fuzz/fuzz_tdeproto.c call
 * it directly, and the extension may compile the same file.
 *
 * A body is lines "key=value\n": key [a-z_]{1,32}, value escaped ('\\' -> "\\\\", '\n' -> "\\n",
 * '\r' -> "\\r"; any other escape, a raw '\r' or a '\0' raw or escaped is an error). Every line
 * ends with '\n' (the last one too); an empty body has no fields. A key may repeat only when it
 * is the parser's `repeat` key ("row" in answers). */
#ifndef PGCMK_PG_TDEPROTO_H
#define PGCMK_PG_TDEPROTO_H

#include <stddef.h>

#define TDEP_KEY_MAX    32
#define TDEP_FIELDS_MAX 4096 /* lines of one body */

struct tdep_field {
    char key[TDEP_KEY_MAX + 1];
    char *value; /* unescaped, NUL-terminated (no NUL inside) */
    size_t len;
};

struct tdep_msg {
    size_t n;
    struct tdep_field *f;
};

/* Parses len bytes (at most PGTDE_MAX_BODY). 0 with m filled (tdep_free it), or -1 with why (a
 * static text) and m empty. `repeat` names the key that may appear more than once (NULL: none). */
int tdep_parse(const char *body, size_t len, const char *repeat, struct tdep_msg *m,
               const char **why);
/* Wipes the values (they may hold secrets) and frees them. */
void tdep_free(struct tdep_msg *m);
/* The first value of key, or NULL. */
const char *tdep_get(const struct tdep_msg *m, const char *key);
/* 1 when key is [a-z_]{1,32}. */
int tdep_key_ok(const char *key);

/* A body being written: tdep_add appends "key=escaped value\n". `overflow` is set (and nothing
 * more appended) once the body would pass PGTDE_MAX_BODY. */
struct tdep_buf {
    char *p;
    size_t len, cap;
    int overflow;
};

void tdep_add(struct tdep_buf *b, const char *key, const char *value);
void tdep_addn(struct tdep_buf *b, const char *key, const char *value, size_t n);
/* Wipes and frees the buffer. */
void tdep_buf_free(struct tdep_buf *b);

#endif
