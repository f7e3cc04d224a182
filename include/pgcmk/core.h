/* core.h - allocation, ids, time formatting: the helpers every module uses. */
#ifndef PGCMK_CORE_H
#define PGCMK_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PGCMK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PGCMK_UNUSED(x)    ((void)(x))
#define PGCMK_WUR          __attribute__((warn_unused_result))

/* Allocation failure is fatal (OpenSSH xmalloc): callers never test for NULL. */
void *pgcmk_xmalloc(size_t n);
void *pgcmk_xcalloc(size_t nmemb, size_t size);
void *pgcmk_xrealloc(void *p, size_t n);
char *pgcmk_xstrdup(const char *s);
char *pgcmk_xstrndup(const char *s, size_t n);
char *pgcmk_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wipe then free: every buffer that held a secret goes through here. NULL is a no-op. */
void pgcmk_secret_free(void *p, size_t len);
/* Wipes the whole heap block p (malloc's usable size) without freeing it. NULL is a no-op. */
void pgcmk_secret_wipe_block(void *p);
/* Makes jansson wipe every block it frees: parsed request bodies (a plaintext to wrap, imported
 * key material) and dumped answers (an unwrapped key) leave no copy behind. Both allocators are
 * malloc's, so blocks allocated before the call may be freed after it. */
void pgcmk_secret_json_wipe(void);

/* Lower-case hex of n bytes into out (2n characters plus NUL). */
void pgcmk_hex(const unsigned char *in, size_t n, char *out);

/* A random (v4) UUID in lower case, 36 characters plus NUL. */
void pgcmk_uuid(char out[37]);

/* Milliseconds since the epoch by the wall clock (tokens use this; rules use the virtual clock). */
int64_t pgcmk_wall_ms(void);
/* The instant ms milliseconds from now on the given clock, for pthread_cond_timedwait(). */
struct timespec pgcmk_deadline(clockid_t clock, int64_t ms);

/* "2026-11-22T10:00:00.1234567Z" style timestamps: ms precision, always UTC, 'Z'. */
#define PGCMK_TIME_LEN 32
void pgcmk_time_format(int64_t ms, char out[PGCMK_TIME_LEN]);
/* Parses RFC 3339 / ISO-8601 date-times (Z or +hh:mm offsets, optional fraction). 0 or -1. */
int pgcmk_time_parse(const char *s, int64_t *ms) PGCMK_WUR;
/* Parses ISO-8601 durations such as P91D, PT1H30M, P1DT2H, PT0.5S (no years or months). 0 or -1. */
int pgcmk_duration_parse(const char *s, int64_t *ms) PGCMK_WUR;

/* The HTTPS port clients use (vault URIs, issuers); set once the listener is bound. */
void pgcmk_set_public_port(int port);
int pgcmk_public_port(void);

/* ASCII case-insensitive helpers (ARM names and path segments). */
int pgcmk_streq_ci(const char *a, const char *b);
int pgcmk_strneq_ci(const char *a, const char *b, size_t n);
int pgcmk_has_suffix_ci(const char *s, const char *suffix);
/* Writes a lower-cased copy of s (at most cap-1 bytes) into out. */
void pgcmk_lower(char *out, size_t cap, const char *s);
/* Appends "?key=value" (or "&key=value" when out has a '?') to out[0..n) with value
 * percent-encoded (RFC 3986 unreserved kept); returns the new length, never past cap. */
size_t pgcmk_query_append(char *out, size_t cap, size_t n, const char *key, const char *value);

#endif
