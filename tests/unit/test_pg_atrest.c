/* test_pg_atrest.c - src/pg/atrest.c against the real gocryptfs: a volume initialised and mounted
 * under a DEK held by the agent, no plaintext under cipher/, no mount without the DEK or with
 * another one, no unmount under a live postmaster, unmount, remount, shutdown.
 *
 * Needs root, a usable /dev/fuse, gocryptfs and fusermount3 (scripts/deps.sh test installs them);
 * without them it says why and checks only that --pg-at-rest auto stays off. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg/internal.h"
#include "pgcmk/agent.h"
#include "pgcmk/cfg.h"
#include "pgcmk/err.h"
#include "t.h"

#define DB     "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/servers/a"
#define MARKER "pgcmk-atrest-marker-6f1d2c"

/* The supervisor's (pg.c): the files are the test's own user's. */
uid_t
pg_user_uid(void)
{
    return getuid();
}

gid_t
pg_user_gid(void)
{
    return getgid();
}

static int t_marker_hits;

static int
t_scan(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type == FTW_F && st->st_size > 0) {
        FILE *f = fopen(path, "rb");
        char *buf = malloc((size_t)st->st_size);

        if (f && buf && fread(buf, 1, (size_t)st->st_size, f) == (size_t)st->st_size &&
            memmem(buf, (size_t)st->st_size, MARKER, strlen(MARKER)))
            t_marker_hits++;
        free(buf);
        if (f)
            fclose(f);
    }
    return 0;
}

static int
t_rm(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

static int
t_mounted(const char *mnt)
{
    char cmd[PATH_MAX + 64];

    snprintf(cmd, sizeof(cmd), "mountpoint -q '%s'", mnt);
    return system(cmd) == 0;
}

static int
t_write(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text) && fsync(fd) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

static int
t_read_has(const char *path, const char *text)
{
    char buf[256] = {0};
    FILE *f = fopen(path, "r");
    size_t r = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

    if (f)
        fclose(f);
    return r > 0 && strstr(buf, text) != NULL;
}

int
main(void)
{
    struct pgcmk_cfg cfg = {0};
    struct pgcmk_err err = {0};
    unsigned char dek[PGCMK_AGENT_DEK_LEN], other[PGCMK_AGENT_DEK_LEN];
    char dir[] = "/tmp/pgcmk-atrest-XXXXXX", data[PATH_MAX], mnt[PATH_MAX], file[PATH_MAX + 64];
    struct stat st;

    cfg.pg_at_rest = PGCMK_PG_AT_REST_NONE;
    CHECK(pg_atrest_init(&cfg, &err) == 0 && !pg_atrest_on());
    CHECK(pg_atrest_mount(DB, "/nonexistent", data, sizeof(data), &err) == -1);

    cfg.pg_at_rest = PGCMK_PG_AT_REST_AUTO;
    CHECK(pg_atrest_init(&cfg, &err) == 0);
    if (!pg_atrest_on() || getuid() != 0) {
        cfg.pg_at_rest = PGCMK_PG_AT_REST_FS;
        if (!pg_atrest_on()) {
            CHECK(pg_atrest_init(&cfg, &err) == -1 && err.code == PGCMK_E_PGREAL_UNAVAILABLE &&
                  strstr(err.message, "apt-get install gocryptfs fuse3") != NULL);
        }
        printf("test_pg_atrest: gocryptfs, fusermount3, /dev/fuse or root missing: mount tests "
               "skipped\n");
        return t_done("test_pg_atrest");
    }
    cfg.pg_at_rest = PGCMK_PG_AT_REST_FS;
    CHECK(pg_atrest_init(&cfg, &err) == 0 && pg_atrest_on());

    CHECK(mkdtemp(dir) != NULL);
    snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
    for (int i = 0; i < PGCMK_AGENT_DEK_LEN; i++) {
        dek[i] = (unsigned char)(i * 7 + 1);
        other[i] = (unsigned char)(i * 7 + 2);
    }

    /* no DEK in memory: nothing mounted */
    CHECK(pg_atrest_mount(DB, dir, data, sizeof(data), &err) == -1 &&
          err.code == PGCMK_E_PGREAL_ATREST_NOKEY);
    CHECK(!t_mounted(mnt));

    /* the first mount initialises the volume; the data directory is the user's */
    pgcmk_agent_keep(DB, dek);
    CHECK(pg_atrest_mount(DB, dir, data, sizeof(data), &err) == 0);
    CHECK(t_mounted(mnt));
    snprintf(file, sizeof(file), "%s/mnt/data", dir);
    CHECK_STR(data, file);
    CHECK(stat(data, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid());
    snprintf(file, sizeof(file), "%s/marker", data);
    CHECK(t_write(file, MARKER "\n"));
    CHECK(t_read_has(file, MARKER));
    /* a second mount call while mounted is a no-op */
    CHECK(pg_atrest_mount(DB, dir, data, sizeof(data), &err) == 0);

    /* the ciphertext holds no plaintext of the marker; the cipher dir has gocryptfs's files */
    snprintf(file, sizeof(file), "%s/cipher", dir);
    t_marker_hits = 0;
    CHECK(nftw(file, t_scan, 16, FTW_PHYS) == 0);
    CHECK(t_marker_hits == 0);
    snprintf(file, sizeof(file), "%s/cipher/gocryptfs.conf", dir);
    CHECK(access(file, F_OK) == 0);

    /* never under a live postmaster (this process stands in for it) */
    snprintf(file, sizeof(file), "%s/postmaster.pid", data);
    {
        char pid[PATH_MAX + 96];

        snprintf(pid, sizeof(pid), "%d\n%s\n", (int)getpid(), data);
        CHECK(t_write(file, pid));
    }
    pg_atrest_unmount(DB, dir);
    CHECK(t_mounted(mnt));
    CHECK(unlink(file) == 0);

    /* unmount: the plaintext view is gone */
    pg_atrest_unmount(DB, dir);
    CHECK(!t_mounted(mnt));
    snprintf(file, sizeof(file), "%s/marker", data);
    CHECK(access(file, F_OK) != 0);

    /* another key does not open it */
    pgcmk_agent_keep(DB, other);
    CHECK(pg_atrest_mount(DB, dir, data, sizeof(data), &err) == -1 &&
          err.code == PGCMK_E_PGREAL_ATREST_MOUNT);
    CHECK(!t_mounted(mnt));

    /* the DEK again: remounted, the marker is back */
    pgcmk_agent_keep(DB, dek);
    CHECK(pg_atrest_mount(DB, dir, data, sizeof(data), &err) == 0);
    CHECK(t_read_has(file, MARKER));

    /* the key is lost: the next mount fails, the shutdown unmounts */
    pgcmk_agent_forget(DB);
    CHECK(pg_atrest_mount(DB, dir, data, sizeof(data), &err) ==
          0); /* still mounted: no key asked */
    pg_atrest_shutdown();
    CHECK(!t_mounted(mnt));
    CHECK(pg_atrest_mount(DB, dir, data, sizeof(data), &err) == -1 &&
          err.code == PGCMK_E_PGREAL_ATREST_NOKEY);
    CHECK(!t_mounted(mnt));

    CHECK(nftw(dir, t_rm, 16, FTW_DEPTH | FTW_PHYS) == 0);
    return t_done("test_pg_atrest");
}
