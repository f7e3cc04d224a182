/* pg.c - real PostgreSQL: the mode, binaries, user, traversal check, layout, template, ports,
 * pg_run, start-up and shutdown (include/pgcmk/pg.h). The instances themselves: instance.c. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg/internal.h"
#include "pgcmk/core.h"
#include "pgcmk/log.h"
#include "pgcmk/pg.h"

#define PG_DEFAULT_BIN  "/usr/lib/postgresql/15/bin"
#define INST_AGENT_NAME "pgcmk_agent"

static struct {
    int real;
    char bin[PATH_MAX];
    char root[PATH_MAX - 64];
    char self_exe[PATH_MAX + 32];
    char template_dir[PATH_MAX + 32];
    char cluster_template_dir[PATH_MAX + 32];
    int cluster_template_ready; /* guarded by cluster_mu */
    char user[64];
    uid_t uid;
    gid_t gid;
    gid_t groups[64];
    int ngroups;
    int port_lo, port_hi; /* 0, 0: any free port */
    int max_instances;
} G;

int
pgcmk_pg_real(void)
{
    return G.real;
}

const char *
pg_bin_dir(void)
{
    return G.bin;
}

const char *
pg_root_dir(void)
{
    return G.root;
}

const char *
pg_self_exe(void)
{
    return G.self_exe;
}

const char *
pg_template_dir(void)
{
    return G.template_dir;
}

static pthread_mutex_t cluster_mu = PTHREAD_MUTEX_INITIALIZER;

const char *
pg_cluster_template_dir(void)
{
    int ready;

    pthread_mutex_lock(&cluster_mu);
    ready = G.cluster_template_ready;
    pthread_mutex_unlock(&cluster_mu);
    return ready ? G.cluster_template_dir : NULL;
}

uid_t
pg_user_uid(void)
{
    return G.uid;
}

gid_t
pg_user_gid(void)
{
    return G.gid;
}

int
pg_max_instances(void)
{
    return G.max_instances;
}

void
pg_fmt(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

int
pg_chown(const char *path)
{
    if (geteuid() != 0)
        return 0;
    return lchown(path, G.uid, G.gid);
}

static int
pg_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) && errno != ENOENT)
        LOG_WARN("pg: cannot remove %s: %s", path, strerror(errno));
    return 0;
}

int
pg_rmtree(const char *path)
{
    struct stat st;

    if (lstat(path, &st) && errno == ENOENT)
        return 0;
    nftw(path, pg_rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT); /* never into a live mount */
    return lstat(path, &st) == 0 ? -1 : 0;
}

/* ---- children ------------------------------------------------------------------------------- */

int
pg_child_setup(int in_fd, int out_fd, int err_fd)
{
    sigset_t none;
    int null_fd, sig;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    if (in_fd < 0) {
        if ((null_fd = open("/dev/null", O_RDONLY)) < 0)
            return -1;
        in_fd = null_fd;
    }
    if (dup2(in_fd, 0) < 0 || (out_fd >= 0 && dup2(out_fd, 1) < 0) ||
        (err_fd >= 0 && dup2(err_fd, 2) < 0))
        return -1;
    if (close_range(3, ~0U, 0))
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
    if (geteuid() == 0) {
        /* the groups were looked up before the fork: no NSS in a forked child of threads */
        if (setgroups((size_t)G.ngroups, G.groups) || setgid(G.gid) || setuid(G.uid))
            return -1;
        if (setuid(0) == 0) /* the drop must be permanent */
            return -1;
    }
    return 0;
}

int
pg_run(const char *prog, char *const argv[], int in_fd, int out_fd, const char *cwd,
       struct pgcmk_err *err)
{
    char path[PATH_MAX], last[256] = "", buf[4096], *acc = NULL;
    size_t accn = 0;
    int pfd[2], status = 0;
    pid_t pid;
    ssize_t got;

    if (prog[0] == '/')
        pg_fmt(path, sizeof(path), "%s", prog);
    else
        pg_fmt(path, sizeof(path), "%s/%s", G.bin, prog);
    if (pipe2(pfd, O_CLOEXEC))
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        int w = dup(pfd[1]);

        if (w < 0 || pg_child_setup(in_fd, out_fd >= 0 ? out_fd : w, w) ||
            chdir(cwd ? cwd : (G.root[0] ? G.root : "/")))
            _exit(126);
        execv(path, argv);
        _exit(127);
    }
    close(pfd[1]);
    while ((got = read(pfd[0], buf, sizeof(buf))) != 0) {
        if (got < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        /* keep the tail only */
        acc = pgcmk_xrealloc(acc, accn + (size_t)got + 1);
        memcpy(acc + accn, buf, (size_t)got);
        accn += (size_t)got;
        if (accn > 8192) {
            memmove(acc, acc + accn - 4096, 4096);
            accn = 4096;
        }
    }
    close(pfd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (acc) {
        char *e, *s;

        acc[accn] = 0;
        while (accn && (acc[accn - 1] == '\n' || acc[accn - 1] == '\r'))
            acc[--accn] = 0;
        e = acc + accn;
        s = e;
        while (s > acc && s[-1] != '\n')
            s--;
        pg_fmt(last, sizeof(last), "%s", s);
        free(acc);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        pg_fmt(last, sizeof(last), "cannot run %s", path);
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 126)
        pg_fmt(last, sizeof(last), "cannot become the PostgreSQL user %s", G.user);
    pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "%s: %s", argv[0],
                  last[0] ? last : "failed");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- ports ---------------------------------------------------------------------------------- */

static int
pg_bind_test(int family, int port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

    if (fd < 0)
        return family == AF_INET6 ? 1 : 0; /* no IPv6 here: nothing to collide with */
    if (family == AF_INET) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    } else {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
        int one = 1;

        a.sin6_addr = in6addr_loopback;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EADDRNOTAVAIL;
    }
    close(fd);
    return ok;
}

int
pg_port_free(int port)
{
    return port > 0 && port < 65536 && port != 5432 && pg_bind_test(AF_INET, port) &&
           pg_bind_test(AF_INET6, port);
}

static int
pg_port_taken(int port, const int *taken, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (taken[i] == port)
            return 1;
    return 0;
}

int
pg_port_pick(const int *taken, size_t ntaken)
{
    if (G.port_lo == 0) {
        for (int tries = 0; tries < 64; tries++) {
            struct sockaddr_in a = {.sin_family = AF_INET};
            socklen_t al = sizeof(a);
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 0;

            if (fd < 0)
                return 0;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
                getsockname(fd, (struct sockaddr *)&a, &al) == 0)
                port = ntohs(a.sin_port);
            close(fd);
            if (port && !pg_port_taken(port, taken, ntaken) && pg_port_free(port))
                return port;
        }
        return 0;
    }
    for (int port = G.port_lo; port <= G.port_hi; port++)
        if (!pg_port_taken(port, taken, ntaken) && pg_port_free(port))
            return port;
    return 0;
}

static int
pg_ports_parse(const char *s, struct pgcmk_err *err)
{
    int lo, hi, n = 0;

    if (s == NULL || *s == 0 || strcmp(s, "0") == 0) {
        G.port_lo = G.port_hi = 0;
        return 0;
    }
    if (sscanf(s, "%d-%d%n", &lo, &hi, &n) != 2 || s[n] != 0 || lo < 1024 || hi > 65535 || lo > hi)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                             "--pg-ports %.64s: give LOW-HIGH within 1024-65535, or 0", s);
    G.port_lo = lo;
    G.port_hi = hi;
    return 0;
}

/* ---- start-up checks ------------------------------------------------------------------------ */

static int
pg_find_bin(const struct pgcmk_cfg *cfg, struct pgcmk_err *err)
{
    char p[PATH_MAX];

    pg_fmt(G.bin, sizeof(G.bin), "%s", cfg->pg_bin && *cfg->pg_bin ? cfg->pg_bin : PG_DEFAULT_BIN);
    pg_fmt(p, sizeof(p), "%s/postgres", G.bin);
    if (access(p, X_OK))
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                             "--pg-mode real needs PostgreSQL 15: apt-get install postgresql-15 "
                             "(missing %.200s)",
                             p);
    pg_fmt(p, sizeof(p), "%s/initdb", G.bin);
    if (access(p, X_OK))
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                             "--pg-mode real needs PostgreSQL 15: apt-get install postgresql-15 "
                             "(missing %.200s)",
                             p);
    return 0;
}

static int
pg_find_user(const struct pgcmk_cfg *cfg, struct pgcmk_err *err)
{
    const char *name = cfg->pg_user && *cfg->pg_user ? cfg->pg_user : NULL;
    struct passwd *pw;

    if (name == NULL && geteuid() != 0) {
        pw = getpwuid(geteuid());
        if (pw == NULL)
            return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                                 "uid %u has no passwd entry: PostgreSQL refuses to run as it",
                                 (unsigned)geteuid());
    } else {
        if (name == NULL)
            name = "postgres";
        pw = getpwnam(name);
        if (pw == NULL)
            return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                                 "--pg-mode real: no user '%.64s' to run PostgreSQL as (apt-get "
                                 "install postgresql-15 creates 'postgres', or give --pg-user)",
                                 name);
        if (geteuid() != 0 && pw->pw_uid != geteuid())
            return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                                 "--pg-user %.64s: only a root pgcmkd can run PostgreSQL as "
                                 "another user",
                                 name);
    }
    if (pw->pw_uid == 0)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                             "PostgreSQL refuses to run as root: give --pg-user (e.g. postgres)");
    pg_fmt(G.user, sizeof(G.user), "%s", pw->pw_name);
    G.ngroups = (int)PGCMK_ARRAY_LEN(G.groups);
    if (getgrouplist(G.user, pw->pw_gid, G.groups, &G.ngroups) < 0) {
        G.groups[0] = pw->pw_gid;
        G.ngroups = 1;
    }
    G.uid = pw->pw_uid;
    G.gid = pw->pw_gid;
    return 0;
}

/* 1 when the user may search (x) the directory st. Supplementary groups are ignored. */
static int
pg_user_can_search(const struct stat *st)
{
    if (st->st_uid == G.uid)
        return (st->st_mode & S_IXUSR) != 0;
    if (st->st_gid == G.gid)
        return (st->st_mode & S_IXGRP) != 0;
    return (st->st_mode & S_IXOTH) != 0;
}

static int
pg_check_traversal(const char *path, struct pgcmk_err *err)
{
    char p[PATH_MAX];
    size_t i, n = strlen(path);

    for (i = 1; i <= n; i++) {
        struct stat st;

        if (i < n && path[i] != '/')
            continue;
        memcpy(p, path, i);
        p[i] = 0;
        if (stat(i == 0 ? "/" : p, &st))
            continue;
        if (!pg_user_can_search(&st))
            return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                                 "the PostgreSQL user %s cannot traverse %.200s (mode %04o, "
                                 "owner uid %u): put --data-dir under a traversable directory "
                                 "(e.g. /tmp or /var/lib) or chmod o+x it",
                                 G.user, p, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
    }
    return 0;
}

static int
pg_mkdir(const char *path, mode_t mode, int user_owned, struct pgcmk_err *err)
{
    if (mkdir(path, mode) && errno != EEXIST)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "mkdir %.200s: %s", path,
                             strerror(errno));
    if (chmod(path, mode) || (user_owned && pg_chown(path)))
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "chmod/chown %.200s: %s", path,
                             strerror(errno));
    return 0;
}

/* run/bin/pgcmkd: a copy of this binary the archiver (the PostgreSQL user) can run. */
static int
pg_copy_self(struct pgcmk_err *err)
{
    char tmp[PATH_MAX + 8], buf[65536];
    int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC), out;
    ssize_t got;

    pg_fmt(G.self_exe, sizeof(G.self_exe), "%s/run/bin/pgcmkd", G.root);
    pg_fmt(tmp, sizeof(tmp), "%s.tmp", G.self_exe);
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (in < 0 || out < 0) {
        if (in >= 0)
            close(in);
        if (out >= 0)
            close(out);
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "copy of pgcmkd to %.200s: %s",
                             tmp, strerror(errno));
    }
    while ((got = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)got) != got) {
            got = -1;
            break;
        }
    close(in);
    if (close(out) || got < 0 || chmod(tmp, 0755) || rename(tmp, G.self_exe))
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "copy of pgcmkd to %.200s: %s",
                             G.self_exe, strerror(errno));
    return 0;
}

/* The template: one initdb per data directory, reused when present. */
static int
pg_template(struct pgcmk_err *err)
{
    char tmp[PATH_MAX + 8], ver[PATH_MAX + 16], conf[PATH_MAX + 32];
    struct stat st;
    FILE *f;
    int fd;

    pg_fmt(G.template_dir, sizeof(G.template_dir), "%s/template", G.root);
    pg_fmt(G.cluster_template_dir, sizeof(G.cluster_template_dir), "%s/" PG_CLUSTER_TEMPLATE,
           G.root);
    pg_fmt(ver, sizeof(ver), "%s/PG_VERSION", G.cluster_template_dir);
    G.cluster_template_ready = stat(ver, &st) == 0; /* made by an earlier run: kept */
    pg_fmt(ver, sizeof(ver), "%s/PG_VERSION", G.template_dir);
    if (stat(ver, &st) == 0)
        return 0;
    if (G.cluster_template_ready) { /* of an older template: made again from the new one */
        pg_rmtree(G.cluster_template_dir);
        G.cluster_template_ready = 0;
    }
    pg_fmt(tmp, sizeof(tmp), "%s.tmp", G.template_dir);
    if (pg_rmtree(tmp) || pg_mkdir(tmp, 0700, 1, err))
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                             "cannot prepare %.200s for initdb", tmp);
    {
        char *argv[] = {(char *)"initdb",
                        (char *)"-D",
                        tmp,
                        (char *)"-U",
                        (char *)INST_AGENT_NAME,
                        (char *)"-A",
                        (char *)"trust",
                        (char *)"-E",
                        (char *)"UTF8",
                        (char *)"--locale=C.UTF-8",
                        (char *)"--no-sync",
                        (char *)"--no-instructions",
                        NULL};
        int64_t t0 = pgcmk_wall_ms();

        if (pg_run("initdb", argv, -1, -1, G.root, err))
            return -1;
        LOG_INFO("pg: template initdb took %lld ms", (long long)(pgcmk_wall_ms() - t0));
    }
    pg_fmt(conf, sizeof(conf), "%s/postgresql.conf", tmp);
    if ((f = fopen(conf, "a")) == NULL || fputs("\n# pgcmkd\ninclude 'pgcmk.conf'\n", f) < 0 ||
        fclose(f))
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "cannot write %.200s", conf);
    /* one sync instead of initdb's */
    if ((fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        syncfs(fd);
        close(fd);
    }
    if (rename(tmp, G.template_dir))
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "rename %.200s: %s", tmp,
                             strerror(errno));
    return 0;
}

/* The number of entries of dir (. and .. left out), -1 when it cannot be read. */
static int
pg_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

int
pg_cluster_template(struct pgcmk_err *err)
{
    char tmp[PATH_MAX + 40], src[PATH_MAX + 40], p[PATH_MAX + 64];
    static const char sql[] = "CREATE DATABASE citus;\n";
    int64_t t0 = pgcmk_wall_ms();
    int pfd[2], rc;
    FILE *f;

    if (pg_cluster_template_dir())
        return 0;
    pg_fmt(tmp, sizeof(tmp), "%s.tmp", G.cluster_template_dir);
    pg_fmt(src, sizeof(src), "%s/.", G.template_dir);
    if (pg_rmtree(tmp) || pg_mkdir(tmp, 0700, 1, err))
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "cannot prepare %.200s", tmp);
    {
        char *argv[] = {(char *)"cp", (char *)"-a", src, tmp, NULL};

        if (pg_run("/bin/cp", argv, -1, -1, G.root, err))
            return -1;
    }
    /* postgresql.conf includes pgcmk.conf, which each start writes: an empty one for now */
    pg_fmt(p, sizeof(p), "%s/pgcmk.conf", tmp);
    if ((f = fopen(p, "w")) == NULL || fclose(f) || pg_chown(p))
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "cannot write %.200s", p);
    /* a single-user backend (no port, no socket) reads the statement from a pipe and ends at
     * its end; it runs as the bootstrap superuser, so citus is pgcmk_agent's until a create
     * gives it to the admin */
    if (pipe2(pfd, O_CLOEXEC))
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "pipe: %s", strerror(errno));
    if (write(pfd[1], sql, sizeof(sql) - 1) != (ssize_t)sizeof(sql) - 1) {
        close(pfd[0]);
        close(pfd[1]);
        return pgcmk_err_set(err, PGCMK_E_INTERNAL, NULL, "pipe: %s", strerror(errno));
    }
    close(pfd[1]);
    {
        char *argv[] = {
            (char *)"postgres", (char *)"--single", (char *)"-D", tmp, (char *)"postgres", NULL};

        rc = pg_run("postgres", argv, pfd[0], -1, tmp, err);
    }
    close(pfd[0]);
    if (rc)
        return -1;
    /* template1, template0, postgres and now citus */
    pg_fmt(p, sizeof(p), "%s/base", tmp);
    if (pg_dir_entries(p) != 4)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL,
                             "the single-user backend did not create the database citus in %.200s",
                             tmp);
    pg_fmt(p, sizeof(p), "%s/pgcmk.conf", tmp);
    unlink(p);
    if (rename(tmp, G.cluster_template_dir))
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "rename %.200s: %s", tmp,
                             strerror(errno));
    pthread_mutex_lock(&cluster_mu);
    G.cluster_template_ready = 1;
    pthread_mutex_unlock(&cluster_mu);
    LOG_INFO("pg: cluster template (with the database citus) made in %lld ms",
             (long long)(pgcmk_wall_ms() - t0));
    return 0;
}

int
pgcmk_pg_init(const struct pgcmk_cfg *cfg, struct pgcmk_err *err)
{
    char *abs, p[PATH_MAX + 16];

    if (cfg->pg_mode != PGCMK_PG_REAL)
        return 0;
    memset(&G, 0, sizeof(G));
    G.max_instances = cfg->pg_max_instances > 0 ? cfg->pg_max_instances : 50;
    if (pg_find_bin(cfg, err) || pg_find_user(cfg, err) || pg_ports_parse(cfg->pg_ports, err) ||
        pg_atrest_init(cfg, err))
        return -1;
    if ((abs = realpath(cfg->data_dir, NULL)) == NULL)
        return pgcmk_err_set(err, PGCMK_E_PGREAL_UNAVAILABLE, NULL, "data directory %.200s: %s",
                             cfg->data_dir, strerror(errno));
    pg_fmt(G.root, sizeof(G.root), "%s/pg", abs);
    free(abs);
    if (pg_check_traversal(G.root, err) || pg_mkdir(G.root, 0755, 0, err))
        return -1;
    pg_fmt(p, sizeof(p), "%s/run", G.root);
    if (pg_mkdir(p, 0755, 0, err))
        return -1;
    pg_fmt(p, sizeof(p), "%s/run/bin", G.root);
    if (pg_mkdir(p, 0755, 0, err) || pg_copy_self(err) || pg_template(err))
        return -1;
    pg_access_start();
    if (pg_archive_start(err))
        return -1;
    G.real = 1;
    if (pg_inst_init(err)) {
        G.real = 0;
        pg_archive_stop();
        return -1;
    }
    LOG_INFO("pg: real mode: binaries %s, user %s (uid %u), root %s", G.bin, G.user,
             (unsigned)G.uid, G.root);
    return 0;
}

void
pgcmk_pg_shutdown(void)
{
    if (!G.real)
        return;
    pg_inst_shutdown();
    pg_atrest_shutdown();
    pg_archive_stop();
    G.real = 0;
}
