/* keyring.h - pg_tde's keyring file (its "file" key provider), in pg_tde's own format
 * (percona/pg_tde src/keyring/keyring_file.c): a sequence of fixed records, appended, never
 * rewritten, each
 *   name  256 bytes, NUL-terminated and NUL-padded (names compare case-insensitively)
 *   data  32 bytes (the key in the first len bytes, the rest zero)
 *   len   unsigned 32-bit, host byte order (16 or 32)
 * = PGCMK_KEYRING_REC bytes. An empty (or missing) file has no keys; a short record is a
 * corrupted file; the first record with the name wins.
 *
 * The pure part (find, record) has no dependency (tests/unit/test_keyring.c and
 * tests/fuzz/fuzz_keyring.c). The file part opens the file with the rights of (uid, gid) on the
 * calling thread (setfsuid/setfsgid around the open, restored after; a no-op unless root), as
 * pg_tde runs as the PostgreSQL user. */
#ifndef PGCMK_KEYRING_H
#define PGCMK_KEYRING_H

#include <stddef.h>
#include <sys/types.h>

#define PGCMK_KEYRING_NAME 256
#define PGCMK_KEYRING_DATA 32
#define PGCMK_KEYRING_REC  (PGCMK_KEYRING_NAME + PGCMK_KEYRING_DATA + 4)

enum pgcmk_keyring_rc {
    PGCMK_KEYRING_FOUND = 1,
    PGCMK_KEYRING_NONE = 0,
    PGCMK_KEYRING_CORRUPT = -1, /* a short record before the name was found */
    PGCMK_KEYRING_BADLEN = -2,  /* the record of the name has a length other than 16 or 32 */
};

/* Looks name up in len bytes of a keyring file: FOUND with key/key_len, or another rc. */
int pgcmk_keyring_find(const unsigned char *buf, size_t len, const char *name,
                       unsigned char key[PGCMK_KEYRING_DATA], size_t *key_len);
/* The record of (name, key): 0, or -1 when the name is empty or too long (255 bytes at most) or
 * key_len is not 16 or 32. */
int pgcmk_keyring_record(const char *name, const unsigned char *key, size_t key_len,
                         unsigned char out[PGCMK_KEYRING_REC]);

/* Opens path with (uid, gid)'s rights on this thread (setfsuid), flags and mode as open(2).
 * -1 with errno on failure. */
int pgcmk_open_as(const char *path, int flags, mode_t mode, uid_t uid, gid_t gid);
/* The file system identity of this thread becomes (uid, gid) until pgcmk_fs_restore (for
 * libraries that open files themselves: OpenSSL, libcurl). */
void pgcmk_fs_as(uid_t uid, gid_t gid);
void pgcmk_fs_restore(void);

/* The file part, as (uid, gid). get: FOUND with the key, NONE (no such key, or no file), or
 * -1 with errno-style text in err (CORRUPT, BADLEN, unreadable). put: appends the record (the
 * file created 0600 when missing) after checking that the name is not there: 0, 1 when the key
 * exists (never overwritten), or -1 with err. */
int pgcmk_keyring_file_get(const char *path, const char *name, uid_t uid, gid_t gid,
                           unsigned char key[PGCMK_KEYRING_DATA], size_t *key_len, char *err,
                           size_t err_cap);
int pgcmk_keyring_file_put(const char *path, const char *name, const unsigned char *key,
                           size_t key_len, uid_t uid, gid_t gid, char *err, size_t err_cap);

/* The keyring file as a self-managed database's key source (src/tde/tde.c, the "file" kind;
 * the reconciler's "keyring-file" row): the DEK wrapped (AES-256-GCM, aad = db_id) under the key
 * key_name of the file (or SHA-256 of a 16-byte key), read with the PostgreSQL user's rights.
 * new_dek makes a random key of create_len bytes (16 or 32; 0: never) when the name is missing.
 * check unwraps again: a missing key, an unreadable file or a key that does not unwrap is a
 * loss (res->lost, the DEK wiped). 0, or -1 with res. */
struct pgcmk_agent_result;
int pgcmk_tde_file_new_dek(const char *db_id, const char *path, const char *key_name,
                           size_t create_len, unsigned char **wrapped, size_t *wrapped_len,
                           struct pgcmk_agent_result *res);
int pgcmk_tde_file_check(const char *db_id, const char *path, const char *key_name,
                         const unsigned char *wrapped, size_t wrapped_len,
                         struct pgcmk_agent_result *res);

#endif
