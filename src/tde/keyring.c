/* keyring.c - pg_tde's keyring file (include/pgcmk/keyring.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgcmk/keyring.h"

static void
kr_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;

    while (n--)
        *v++ = 0;
}

int
pgcmk_keyring_find(const unsigned char *buf, size_t len, const char *name,
                   unsigned char key[PGCMK_KEYRING_DATA], size_t *key_len)
{
    size_t off = 0;

    *key_len = 0;
    while (off < len) {
        char rname[PGCMK_KEYRING_NAME + 1];
        uint32_t n;

        if (len - off < PGCMK_KEYRING_REC)
            return PGCMK_KEYRING_CORRUPT;
        memcpy(rname, buf + off, PGCMK_KEYRING_NAME);
        rname[PGCMK_KEYRING_NAME] = 0;
        if (strncasecmp(rname, name, PGCMK_KEYRING_NAME) == 0) {
            memcpy(&n, buf + off + PGCMK_KEYRING_NAME + PGCMK_KEYRING_DATA, 4);
            if (n != 16 && n != 32)
                return PGCMK_KEYRING_BADLEN;
            memcpy(key, buf + off + PGCMK_KEYRING_NAME, n);
            *key_len = n;
            return PGCMK_KEYRING_FOUND;
        }
        off += PGCMK_KEYRING_REC;
    }
    return PGCMK_KEYRING_NONE;
}

int
pgcmk_keyring_record(const char *name, const unsigned char *key, size_t key_len,
                     unsigned char out[PGCMK_KEYRING_REC])
{
    size_t nl = strlen(name);
    uint32_t n = (uint32_t)key_len;

    if (nl == 0 || nl >= PGCMK_KEYRING_NAME || (key_len != 16 && key_len != 32))
        return -1;
    memset(out, 0, PGCMK_KEYRING_REC);
    memcpy(out, name, nl);
    memcpy(out + PGCMK_KEYRING_NAME, key, key_len);
    memcpy(out + PGCMK_KEYRING_NAME + PGCMK_KEYRING_DATA, &n, 4);
    return 0;
}

void
pgcmk_fs_as(uid_t uid, gid_t gid)
{
    if (geteuid() != 0)
        return;
    (void)setfsgid(gid);
    (void)setfsuid(uid);
}

void
pgcmk_fs_restore(void)
{
    if (geteuid() != 0)
        return;
    (void)setfsuid(0);
    (void)setfsgid(0);
}

int
pgcmk_open_as(const char *path, int flags, mode_t mode, uid_t uid, gid_t gid)
{
    int fd, e;

    pgcmk_fs_as(uid, gid);
    fd = open(path, flags | O_CLOEXEC, mode);
    e = errno;
    pgcmk_fs_restore();
    errno = e;
    return fd;
}

/* The whole file (at most 4 MiB: 14,000 keys): 0 with *buf (malloc'd, or NULL when empty), or
 * -1 with errno. */
static int
kr_read_all(int fd, unsigned char **buf, size_t *len)
{
    size_t cap = 0;
    ssize_t r;

    *buf = NULL;
    *len = 0;
    for (;;) {
        if (*len == cap) {
            unsigned char *nb;

            if (cap >= (4u << 20)) {
                errno = EFBIG;
                goto bad;
            }
            cap = cap ? cap * 2 : 4096;
            nb = malloc(cap);
            if (!nb)
                goto bad;
            if (*buf) {
                memcpy(nb, *buf, *len);
                kr_wipe(*buf, *len);
                free(*buf);
            }
            *buf = nb;
        }
        r = read(fd, *buf + *len, cap - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto bad;
        if (r == 0)
            return 0;
        *len += (size_t)r;
    }
bad:
    if (*buf) {
        kr_wipe(*buf, *len);
        free(*buf);
    }
    *buf = NULL;
    return -1;
}

int
pgcmk_keyring_file_get(const char *path, const char *name, uid_t uid, gid_t gid,
                       unsigned char key[PGCMK_KEYRING_DATA], size_t *key_len, char *err,
                       size_t err_cap)
{
    int fd = pgcmk_open_as(path, O_RDONLY, 0, uid, gid);
    unsigned char *buf;
    size_t len;
    int rc;

    *key_len = 0;
    if (fd < 0) {
        if (errno == ENOENT)
            return PGCMK_KEYRING_NONE;
        snprintf(err, err_cap, "Failed to open keyring file %s: %s", path, strerror(errno));
        return -1;
    }
    rc = kr_read_all(fd, &buf, &len);
    close(fd);
    if (rc) {
        snprintf(err, err_cap, "could not read keyring file \"%s\": %s", path, strerror(errno));
        return -1;
    }
    rc = pgcmk_keyring_find(buf, len, name, key, key_len);
    if (buf) {
        kr_wipe(buf, len);
        free(buf);
    }
    if (rc == PGCMK_KEYRING_CORRUPT)
        snprintf(err, err_cap, "keyring file \"%s\" is corrupted: invalid key size %zu expected %d",
                 path, len % PGCMK_KEYRING_REC, PGCMK_KEYRING_REC);
    else if (rc == PGCMK_KEYRING_BADLEN)
        snprintf(err, err_cap, "keyring file \"%s\": the key \"%s\" has an invalid length", path,
                 name);
    return rc < 0 ? -1 : rc;
}

int
pgcmk_keyring_file_put(const char *path, const char *name, const unsigned char *key, size_t key_len,
                       uid_t uid, gid_t gid, char *err, size_t err_cap)
{
    unsigned char rec[PGCMK_KEYRING_REC], old[PGCMK_KEYRING_DATA];
    size_t old_len;
    ssize_t w;
    int fd, rc;

    rc = pgcmk_keyring_file_get(path, name, uid, gid, old, &old_len, err, err_cap);
    kr_wipe(old, sizeof(old));
    if (rc < 0)
        return -1;
    if (rc == PGCMK_KEYRING_FOUND) {
        snprintf(err, err_cap, "Key with name %s already exists in keyring", name);
        return 1;
    }
    if (pgcmk_keyring_record(name, key, key_len, rec)) {
        snprintf(err, err_cap, "key name \"%s\" is too long or the key length is invalid", name);
        return -1;
    }
    fd = pgcmk_open_as(path, O_CREAT | O_WRONLY | O_APPEND, 0600, uid, gid);
    if (fd < 0) {
        snprintf(err, err_cap, "Failed to open keyring file %s: %s", path, strerror(errno));
        kr_wipe(rec, sizeof(rec));
        return -1;
    }
    w = write(fd, rec, sizeof(rec));
    kr_wipe(rec, sizeof(rec));
    if (w != (ssize_t)sizeof(rec) || fsync(fd) != 0) {
        snprintf(err, err_cap, "keyring file \"%s\" can't be written: %s", path,
                 w < 0 ? strerror(errno) : "short write");
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}
