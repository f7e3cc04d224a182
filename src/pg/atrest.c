/* atrest.c - the data directory on gocryptfs under the DEK (--pg-at-rest fs|auto).
 *
 * Layout under an instance's directory <dir>: cipher/ (gocryptfs's ciphertext and its
 * gocryptfs.conf, root's) and mnt/ (the plaintext view while mounted); the data directory is
 * mnt/data, owned by the PostgreSQL user. The password of the gocryptfs volume is the DEK in hex:
 * copied out of the agent (pgcmk_agent_with_dek), written to a pipe that is gocryptfs's
 * -passfile /dev/stdin, then wiped. It is never on a command line, in the environment or in a
 * file. `gocryptfs -fg` runs as a child of pgcmkd (root, -allow_other so the PostgreSQL user
 * reaches the files); unmounting is `fusermount3 -u`, then the child is reaped. An unmount under a
 * live postmaster is refused (the server would PANIC): the supervisor stops the instance first.
 * A mount a killed pgcmkd left behind (its gocryptfs survived) is used again as it is. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "pg/internal.h"
#include "pgcmk/agent.h"
#include "pgcmk/log.h"
#include "pgcmk/pg.h"

#define ATREST_MAX        256
#define ATREST_WAIT_MS    10000
#define ATREST_HEX_LEN    (2 * PGCMK_AGENT_DEK_LEN)
#define ATREST_INSTALL    "apt-get install gocryptfs fuse3"
#define ATREST_GOCRYPTFS  "gocryptfs"
#define ATREST_FUSERMOUNT "fusermount3"

static int atrest_enabled;
static char atrest_gocryptfs[PATH_MAX];
static char atrest_fusermount[PATH_MAX];

/* The gocryptfs children of this process, by mount point. */
static struct atrest_mount {
    char mnt[PATH_MAX];
    pid_t pid;
    int out; /* its stdout and stderr, open until it is reaped (a closed pipe would kill it) */
} atrest_mounts[ATREST_MAX];

static pthread_mutex_t atrest_mu = PTHREAD_MUTEX_INITIALIZER;

int
pg_atrest_on(void)
{
    return atrest_enabled;
}

/* The program `name` in /usr/bin, /bin, /usr/sbin, /sbin or $PATH: 0 and out filled, else -1. */
static int
atrest_find(const char *name, char *out, size_t n)
{
    static const char *const dirs[] = {"/usr/bin", "/bin", "/usr/sbin", "/sbin", NULL};
    const char *path = getenv("PATH");

    for (int i = 0; dirs[i]; i++) {
        snprintf(out, n, "%s/%s", dirs[i], name);
        if (access(out, X_OK) == 0)
            return 0;
    }
    while (path && *path) {
        size_t len = strcspn(path, ":");

        if (len > 0 && (size_t)snprintf(out, n, "%.*s/%s", (int)len, path, name) < n &&
            access(out, X_OK) == 0)
            return 0;
        path += len + (path[len] == ':');
    }
    out[0] = '\0';
    return -1;
}

/* What is missing for gocryptfs ("" when nothing), into buf. */
static void
atrest_missing(char *buf, size_t n)
{
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    const char *forced = getenv("PGCMK_PG_GOCRYPTFS");
    size_t used = 0;

    buf[0] = '\0';
    if (fd < 0)
        used += (size_t)snprintf(buf, n, "/dev/fuse is not usable (%s)", strerror(errno));
    else
        close(fd);
    if (forced && *forced) /* PGCMK_PG_GOCRYPTFS: another gocryptfs (the tests' failing one) */
        snprintf(atrest_gocryptfs, sizeof(atrest_gocryptfs), "%s", forced);
    if ((forced && *forced
             ? access(atrest_gocryptfs, X_OK)
             : atrest_find(ATREST_GOCRYPTFS, atrest_gocryptfs, sizeof(atrest_gocryptfs))) != 0 &&
        used < n)
        used += (size_t)snprintf(buf + used, n - used, "%sgocryptfs is not installed",
                                 used ? ", " : "");
    if (atrest_find(ATREST_FUSERMOUNT, atrest_fusermount, sizeof(atrest_fusermount)) != 0 &&
        used < n)
        snprintf(buf + used, n - used, "%sfusermount3 is not installed", used ? ", " : "");
}

int
pg_atrest_init(const struct pgcmk_cfg *cfg, struct pgcmk_err *err)
{
    char missing[256];

    atrest_enabled = 0;
    if (cfg->pg_at_rest == PGCMK_PG_AT_REST_NONE)
        return 0;
    atrest_missing(missing, sizeof(missing));
    if (missing[0] == '\0') {
        atrest_enabled = 1;
        return 0;
    }
    if (cfg->pg_at_rest == PGCMK_PG_AT_REST_AUTO) {
        LOG_INFO("--pg-at-rest auto: data directories stay plain: %s", missing);
        return 0;
    }
    return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                         "--pg-at-rest fs needs FUSE and gocryptfs: %s; install them as root "
                         "(`" ATREST_INSTALL "`) and make /dev/fuse usable, or use "
                         "--pg-at-rest none|auto",
                         missing);
}

/* 1 when `path` is a mount point in /proc/self/mountinfo (field 5, octal escapes decoded). */
static int
atrest_mounted(const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4 * PATH_MAX], mp[PATH_MAX];
    int found = 0;

    if (f == NULL)
        return 0;
    while (!found && fgets(line, sizeof(line), f)) {
        const char *p = line;
        size_t o = 0;

        for (int field = 0; field < 4 && p; field++) {
            p = strchr(p, ' ');
            p = p ? p + 1 : NULL;
        }
        if (p == NULL)
            continue;
        while (*p && *p != ' ' && o + 1 < sizeof(mp)) {
            if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] && p[3]) {
                mp[o++] = (char)(((p[1] - '0') << 6) | ((p[2] - '0') << 3) | (p[3] - '0'));
                p += 4;
            } else {
                mp[o++] = *p++;
            }
        }
        mp[o] = '\0';
        found = strcmp(mp, path) == 0;
    }
    fclose(f);
    return found;
}

/* dir + "/" + name into out (PATH_MAX); -1 when too long. */
static int
atrest_path(char out[PATH_MAX], const char *dir, const char *name)
{
    int len = snprintf(out, PATH_MAX, "%s/%s", dir, name);

    return len < 0 || len >= PATH_MAX ? -1 : 0;
}

static void
atrest_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Forks argv (as root), with the DEK's hex and a newline on its stdin when hex is not NULL, and
 * its stderr into a pipe whose read end is *errfd. Returns the pid, or -1. */
static pid_t
atrest_spawn(const char *const argv[], const char *hex, int *errfd)
{
    int in[2], er[2];
    pid_t pid;

    if (pipe2(in, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(er, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(er[1], 1);
        dup2(er[1], 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(er[1]);
    if (pid > 0 && hex) {
        char line[ATREST_HEX_LEN + 1];
        ssize_t w;

        memcpy(line, hex, ATREST_HEX_LEN);
        line[ATREST_HEX_LEN] = '\n';
        w = write(in[1], line, sizeof(line));
        OPENSSL_cleanse(line, sizeof(line));
        (void)w; /* a short write makes gocryptfs fail, which the caller reports */
    }
    close(in[1]);
    if (pid < 0) {
        close(er[0]);
        return -1;
    }
    *errfd = er[0];
    return pid;
}

/* The last line gocryptfs wrote on stderr (read without blocking), into buf. */
static void
atrest_last_line(int fd, char *buf, size_t n)
{
    char all[4096];
    ssize_t r;
    size_t len = 0;
    char *p, *end;

    buf[0] = '\0';
    if (fd < 0)
        return;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    while (len + 1 < sizeof(all) && (r = read(fd, all + len, sizeof(all) - 1 - len)) > 0)
        len += (size_t)r;
    all[len] = '\0';
    end = all + len;
    while (end > all && (end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
    p = strrchr(all, '\n');
    p = p ? p + 1 : all;
    if (strlen(p) >= n)
        p[n - 1] = '\0';
    memcpy(buf, p, strlen(p) + 1);
}

struct atrest_hex {
    char hex[ATREST_HEX_LEN + 1];
};

static int
atrest_copy_hex(const unsigned char dek[PGCMK_AGENT_DEK_LEN], void *arg)
{
    struct atrest_hex *h = arg;

    pgcmk_hex(dek, PGCMK_AGENT_DEK_LEN, h->hex);
    return 0;
}

/* `gocryptfs -init` of an empty cipher directory under the DEK. */
static int
atrest_init_volume(const char *db_id, const char *cipher, const char *hex, struct pgcmk_err *err)
{
    const char *argv[] = {atrest_gocryptfs, "-init",      "-q",   "-scryptn", "10",
                          "-passfile",      "/dev/stdin", cipher, NULL};
    char last[256];
    int efd = -1, st = 0;
    pid_t pid = atrest_spawn(argv, hex, &efd);

    if (pid < 0)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_ATREST_MOUNT, db_id,
                             "could not run gocryptfs -init: %s", strerror(errno));
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    atrest_last_line(efd, last, sizeof(last));
    close(efd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_ATREST_MOUNT, db_id,
                             "gocryptfs -init %s failed (status %d): %s", cipher, st, last);
    return 0;
}

static void
atrest_remember(const char *mnt, pid_t pid, int out)
{
    pthread_mutex_lock(&atrest_mu);
    for (int i = 0; i < ATREST_MAX; i++) {
        if (atrest_mounts[i].pid == 0) {
            snprintf(atrest_mounts[i].mnt, sizeof(atrest_mounts[i].mnt), "%s", mnt);
            atrest_mounts[i].pid = pid;
            atrest_mounts[i].out = out;
            break;
        }
    }
    pthread_mutex_unlock(&atrest_mu);
}

/* The gocryptfs child serving mnt (forgotten), or 0; *out its output pipe (or -1). */
static pid_t
atrest_take(const char *mnt, int *out)
{
    pid_t pid = 0;

    *out = -1;
    pthread_mutex_lock(&atrest_mu);
    for (int i = 0; i < ATREST_MAX; i++) {
        if (atrest_mounts[i].pid != 0 && (mnt == NULL || strcmp(atrest_mounts[i].mnt, mnt) == 0)) {
            pid = atrest_mounts[i].pid;
            *out = atrest_mounts[i].out;
            atrest_mounts[i].pid = 0;
            break;
        }
    }
    pthread_mutex_unlock(&atrest_mu);
    return pid;
}

/* Starts `gocryptfs -fg` on cipher -> mnt and waits until it says "Filesystem mounted and
 * ready." (go-fuse's WaitMount done): before that, go-fuse still has to look up
 * <mnt>/.go-fuse-epoll-hack, and a mkdir in mnt (which locks its root) deadlocks with it. */
static int
atrest_start_fs(const char *db_id, const char *cipher, const char *mnt, const char *hex,
                struct pgcmk_err *err)
{
    const char *argv[] = {
        atrest_gocryptfs, "-fg", "-allow_other", "-passfile", "/dev/stdin", cipher, mnt, NULL};
    char out[2048], last[256];
    size_t len = 0;
    int efd = -1, st = 0;
    pid_t pid = atrest_spawn(argv, hex, &efd);

    if (pid < 0)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_ATREST_MOUNT, db_id, "could not run gocryptfs: %s",
                             strerror(errno));
    fcntl(efd, F_SETFL, O_NONBLOCK);
    out[0] = '\0';
    for (int waited = 0;; waited += 2) {
        ssize_t r = read(efd, out + len, sizeof(out) - 1 - len);

        if (r > 0) {
            len += (size_t)r;
            out[len] = '\0';
        }
        if (strstr(out, "mounted and ready") && atrest_mounted(mnt)) {
            atrest_remember(mnt, pid, efd);
            return 0;
        }
        if (len + 1 >= sizeof(out)) { /* keep the tail */
            memmove(out, out + len / 2, len - len / 2 + 1);
            len -= len / 2;
        }
        if (waitpid(pid, &st, WNOHANG) == pid || waited >= ATREST_WAIT_MS) {
            if (waited >= ATREST_WAIT_MS) {
                kill(pid, SIGKILL);
                while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                    ;
            }
            atrest_last_line(efd, last, sizeof(last));
            if (last[0] == '\0') {
                char *nl;

                while (len > 0 && out[len - 1] == '\n')
                    out[--len] = '\0';
                nl = strrchr(out, '\n');
                snprintf(last, sizeof(last), "%.*s", (int)sizeof(last) - 1, nl ? nl + 1 : out);
            }
            close(efd);
            return pgcmk_err_set(err, PGCMK_E_PGREAL_ATREST_MOUNT, db_id,
                                 "gocryptfs did not mount %s (status %d): %s", mnt, st,
                                 last[0] ? last : "timed out");
        }
        atrest_sleep_ms(2);
    }
}

int
pg_atrest_mount(const char *db_id, const char *dir, char *data_out, size_t n, struct pgcmk_err *err)
{
    char cipher[PATH_MAX], mnt[PATH_MAX], conf[PATH_MAX];
    struct atrest_hex h;
    int rc = 0;

    if (!atrest_enabled)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, db_id, "--pg-at-rest is off");
    if (atrest_path(cipher, dir, "cipher") || atrest_path(mnt, dir, "mnt") ||
        atrest_path(conf, cipher, "gocryptfs.conf") ||
        (size_t)snprintf(data_out, n, "%s/data", mnt) >= n)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_ATREST_MOUNT, db_id, "path too long: %s", mnt);
    if (!atrest_mounted(mnt)) {
        /* the mount's root has the cipher directory's mode: 0711 lets the PostgreSQL user
         * through to its data directory, and lists nothing */
        if ((mkdir(cipher, 0711) != 0 && errno != EEXIST) || chmod(cipher, 0711) != 0 ||
            (mkdir(mnt, 0755) != 0 && errno != EEXIST))
            return pgcmk_err_set(err, PGCMK_E_PGREAL_ATREST_MOUNT, db_id, "mkdir %s: %s", dir,
                                 strerror(errno));
        if (pgcmk_agent_with_dek(db_id, atrest_copy_hex, &h) != 0)
            return pgcmk_err_set(err, PGCMK_E_PGREAL_ATREST_NOKEY, db_id,
                                 "the database's key is not in memory: its encrypted data "
                                 "directory stays locked");
        if (access(conf, F_OK) != 0)
            rc = atrest_init_volume(db_id, cipher, h.hex, err);
        if (rc == 0)
            rc = atrest_start_fs(db_id, cipher, mnt, h.hex, err);
        OPENSSL_cleanse(&h, sizeof(h));
        if (rc != 0)
            return rc;
    }
    if (mkdir(data_out, 0700) == 0) {
        if (chown(data_out, pg_user_uid(), pg_user_gid()) != 0)
            return pgcmk_err_set(err, PGCMK_E_PGREAL_ATREST_MOUNT, db_id, "chown %s: %s", data_out,
                                 strerror(errno));
    } else if (errno != EEXIST) {
        return pgcmk_err_set(err, PGCMK_E_PGREAL_ATREST_MOUNT, db_id, "mkdir %s: %s", data_out,
                             strerror(errno));
    }
    return 0;
}

/* 1 when the postmaster of data (its postmaster.pid's first line) is alive. */
static int
atrest_postmaster_alive(const char *data)
{
    char path[PATH_MAX];
    long pid = 0;
    FILE *f;

    if (atrest_path(path, data, "postmaster.pid") != 0)
        return 0;
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* fusermount3 -u mnt, then the gocryptfs child (when it is ours) exits: reap it (SIGTERM, then
 * SIGKILL, when it lingers). */
static void
atrest_unmount_dir(const char *db_id, const char *mnt)
{
    const char *argv[] = {atrest_fusermount, "-u", mnt, NULL};
    int child_out = -1, efd = -1, st = 0;
    pid_t child = atrest_take(mnt, &child_out);
    char last[256];

    if (atrest_mounted(mnt)) {
        pid_t pid = atrest_spawn(argv, NULL, &efd);

        if (pid > 0) {
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            atrest_last_line(efd, last, sizeof(last));
            close(efd);
            if (st != 0)
                LOG_WARN("db=%s fusermount3 -u %s: status %d: %s", db_id ? db_id : "-", mnt, st,
                         last);
        }
    }
    if (child > 0) {
        for (int waited = 0; waitpid(child, &st, WNOHANG) == 0; waited += 2) {
            if (waited == ATREST_WAIT_MS / 2)
                kill(child, SIGTERM);
            if (waited >= ATREST_WAIT_MS) {
                kill(child, SIGKILL);
                waitpid(child, &st, 0);
                break;
            }
            atrest_sleep_ms(2);
        }
    }
    if (child_out >= 0)
        close(child_out);
}

void
pg_atrest_unmount(const char *db_id, const char *dir)
{
    char mnt[PATH_MAX], data[PATH_MAX];

    if (atrest_path(mnt, dir, "mnt") != 0 || atrest_path(data, mnt, "data") != 0)
        return;
    if (atrest_postmaster_alive(data)) {
        LOG_ERR("db=%s not unmounting %s: its postmaster still runs (stop it first)",
                db_id ? db_id : "-", mnt);
        return;
    }
    atrest_unmount_dir(db_id, mnt);
}

void
pg_atrest_shutdown(void)
{
    char mnt[PATH_MAX];

    for (;;) {
        int found = 0;

        pthread_mutex_lock(&atrest_mu);
        for (int i = 0; i < ATREST_MAX && !found; i++) {
            if (atrest_mounts[i].pid != 0) {
                snprintf(mnt, sizeof(mnt), "%s", atrest_mounts[i].mnt);
                found = 1;
            }
        }
        pthread_mutex_unlock(&atrest_mu);
        if (!found)
            return;
        /* the directory of the mount point: pg_atrest_unmount's check of the postmaster */
        *strrchr(mnt, '/') = '\0';
        pg_atrest_unmount(NULL, mnt);
        snprintf(mnt + strlen(mnt), sizeof(mnt) - strlen(mnt), "/mnt");
        { /* refused (live postmaster): forget it, do not loop */
            int out;

            if (atrest_take(mnt, &out) > 0 && out >= 0)
                close(out);
        }
    }
}
