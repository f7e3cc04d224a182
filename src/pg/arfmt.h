/* arfmt.h - the pure parts of the encrypted archive (src/pg/arfmt.c): the archive socket's
 * request and answer lines, the encrypted file format, WAL positions. No database, no sockets of
 * its own, no global state: the fuzz targets (tests/fuzz/fuzz_pgarch*.c) and
 * tests/unit/test_pgarch.c call these directly.
 *
 * The archive socket (DATA_DIR/pg/run/agent.sock; only the PostgreSQL user and root connect):
 *   "PUSH <slug> <file> <length>\n" + length bytes   -> "OK 0\n"            | "ERR <text>\n"
 *   "FETCH <slug> <file>\n"                          -> "OK <length>\n" + bytes | "ERR <text>\n"
 *   "TDE <slug> <length>\n" + length bytes            -> "OK <length>\n" + bytes | "ERR <text>\n"
 *      (the pg_tde agent: include/pgcmk/tdeproto.h has the bodies; src/pg/tdeagent.c serves them)
 * One request per connection. <slug> is [a-z0-9-]{1,63}; <file> is [0-9A-Za-z._-]{1,64}, not
 * starting with '.'; <length> is decimal without leading zeros, at most PGA_MAX_FILE. A FETCH of
 * a file the archive does not have answers "ERR missing\n" (the subcommand exits 1 silently, as
 * PostgreSQL expects when it probes for history files).
 *
 * The encrypted file (WAL segments, history files, base backups), "PGCMKA1" format:
 *   header  48 bytes: "PGCMKA1\0" | chunk u32 BE (1 .. PGA_CHUNK_MAX) | flags u32 BE (0) |
 *           salt 32 random bytes
 *   chunks  u32 BE word: bit 31 = last chunk, bits 0..30 = plaintext length n (a chunk that is
 *           not the last has n = chunk exactly; the last has n <= chunk, 0 allowed) |
 *           n bytes of AES-256-GCM ciphertext | 16-byte tag
 *   Exactly one last chunk; nothing after it.
 *   key     HKDF-SHA256(ikm = the database's DEK, salt, info = "pgcmk archive v1\0" db_id "\0"
 *           file name), so a file only opens under its own database, name and DEK
 *   nonce   of chunk i: 4 zero bytes | i as u64 BE (a fresh key per file: no nonce reuse)
 *   AAD     of chunk i: the 48-byte header | the chunk's u32 word
 *   Decryption releases a chunk's plaintext only after its tag verified; truncation (no last
 *   chunk), reordering, a changed header or trailing bytes fail. */
#ifndef PGCMK_PG_ARFMT_H
#define PGCMK_PG_ARFMT_H

#include <stddef.h>
#include <stdint.h>

#define PGA_HEADER_LEN    48
#define PGA_TAG_LEN       16
#define PGA_KEY_LEN       32
#define PGA_CHUNK_DEFAULT (1u << 20)
#define PGA_CHUNK_MAX     (1u << 24)
#define PGA_LINE_MAX      256
#define PGA_MAX_FILE      (64ull << 20) /* a WAL segment is 16 MiB; history and .backup small */
#define PGA_SLUG_MAX      63
#define PGA_NAME_MAX      64
#define PGA_TDE_MAX       65536 /* PGTDE_MAX_BODY of include/pgcmk/tdeproto.h */

/* ---- requests and answers ------------------------------------------------------------------ */

enum pga_op { PGA_PUSH = 1, PGA_FETCH = 2, PGA_TDE = 3 };

struct pga_req {
    enum pga_op op;
    char slug[PGA_SLUG_MAX + 1];
    char name[PGA_NAME_MAX + 1]; /* PUSH, FETCH */
    uint64_t length;             /* PUSH, TDE: the bytes that follow the line */
};

/* Parses the request line at the start of buf: > 0 = the line's length with its '\n' (r
 * filled), 0 = no '\n' yet and fewer than PGA_LINE_MAX bytes, -1 = invalid (*why says why). */
long pga_req_parse(const char *buf, size_t len, struct pga_req *r, const char **why);
/* Writes a request line into out (at least PGA_LINE_MAX bytes): its length, or -1 when the
 * fields are invalid. */
int pga_req_format(const struct pga_req *r, char *out, size_t n);

/* Parses an answer line: > 0 = the line's length (*ok = 1 with *length, or *ok = 0 with the
 * text copied into text, NUL-terminated), 0 = incomplete, -1 = invalid. */
long pga_ans_parse(const char *buf, size_t len, int *ok, uint64_t *length, char *text, size_t tn);

int pga_slug_ok(const char *s);
int pga_name_ok(const char *s);

/* ---- the encrypted file -------------------------------------------------------------------- */

/* A sink for output bytes: 0, or -1 to stop (the operation then fails). */
typedef int (*pga_write_fn)(void *arg, const void *buf, size_t len);

struct pga_seal {
    void *ctx; /* EVP_CIPHER_CTX */
    unsigned char key[PGA_KEY_LEN];
    unsigned char header[PGA_HEADER_LEN];
    uint64_t index;
    uint32_t chunk;
    unsigned char *buf; /* chunk bytes of plaintext */
    unsigned char *out; /* word | ciphertext | tag of one chunk */
    size_t have;
    pga_write_fn w;
    void *arg;
};

/* Derives the file key and writes the header. chunk 0 = PGA_CHUNK_DEFAULT. 0 or -1. */
int pga_seal_init(struct pga_seal *s, const unsigned char dek[PGA_KEY_LEN], const char *db_id,
                  const char *name, uint32_t chunk, pga_write_fn w, void *arg);
int pga_seal_update(struct pga_seal *s, const void *p, size_t n);
/* Writes the last chunk. */
int pga_seal_final(struct pga_seal *s);
/* Wipes the key and frees (after final or on failure). */
void pga_seal_release(struct pga_seal *s);

struct pga_open {
    void *ctx;
    unsigned char dek[PGA_KEY_LEN];
    unsigned char key[PGA_KEY_LEN];
    char *info; /* the HKDF info, until the header is read */
    size_t info_len;
    unsigned char header[PGA_HEADER_LEN];
    unsigned char word[4];
    uint64_t index;
    uint32_t chunk;
    uint32_t n; /* the current chunk's plaintext length */
    int last;   /* the current chunk is the last */
    int state;  /* 0 header, 1 word, 2 body, 3 done, -1 failed */
    size_t have;
    unsigned char *buf;
    size_t cap;
    pga_write_fn w;
    void *arg;
    const char *why; /* on failure */
};

void pga_open_init(struct pga_open *o, const unsigned char dek[PGA_KEY_LEN], const char *db_id,
                   const char *name, pga_write_fn w, void *arg);
/* Feeds bytes; verified plaintext goes to w chunk by chunk. 0, or -1 with o->why. */
int pga_open_update(struct pga_open *o, const void *p, size_t n);
/* 0 when the last chunk was seen (and nothing followed), else -1 with o->why. */
int pga_open_final(struct pga_open *o);
void pga_open_release(struct pga_open *o);

/* One-shot helpers over memory (the daemon's WAL files): 0 and a malloc'ed result, or -1 (why). */
int pga_seal_mem(const unsigned char dek[PGA_KEY_LEN], const char *db_id, const char *name,
                 const void *pt, size_t n, unsigned char **out, size_t *out_len);
int pga_open_mem(const unsigned char dek[PGA_KEY_LEN], const char *db_id, const char *name,
                 const void *ct, size_t n, unsigned char **out, size_t *out_len, const char **why);

/* ---- whole reads and writes (EINTR retried): 0, or -1 on an error or an early end ---------- */

int pga_write_all(int fd, const void *buf, size_t n);
int pga_read_all(int fd, void *buf, size_t n);

/* ---- WAL positions ------------------------------------------------------------------------- */

/* "16/B374D848" <-> 0x16B374D848: 0 or -1. out needs 18 bytes. */
int pga_lsn_parse(const char *s, uint64_t *out);
void pga_lsn_format(uint64_t lsn, char *out, size_t n);

#endif
