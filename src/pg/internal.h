/* internal.h - what the files of src/pg/ share (include/pgcmk/pg.h is the module's header).
 * pg.c and instance.c (the supervisor) implement the first part; the others use it.
 *
 * Layout under DATA_DIR/pg/ (0755, owned by root when pgcmkd is root):
 *   template/            one initdb per data directory, copied for each new instance
 *   template.cluster/    the template plus the database citus (pg_cluster_template)
 *   spare.server/, spare.cluster/   a ready <slug>/ layout (data = a template's copy, sock,
 *                        tls) that a new instance renames into place instead of copying;
 *                        refilled in the background (instance.c); *.tmp while being made
 *   run/                 the archive socket (agent.sock) and the copy of the pgcmkd binary the
 *                        archiver runs (bin/pgcmkd), both usable by the PostgreSQL user
 *   <slug>/data          the instance's data directory (or <slug>/cipher + <slug>/mnt with
 *                        gocryptfs), <slug>/sock its unix-socket directory (0700, the user's),
 *                        <slug>/tls its certificate and key
 *   archive/<slug>/      encrypted WAL segments
 *   backups/<slug>/      encrypted base backups
 * <slug> is a short stable name of the database (lower-case, [a-z0-9-]) the supervisor chooses
 * and keeps in its store table. */
#ifndef PGCMK_PG_INTERNAL_H
#define PGCMK_PG_INTERNAL_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "pgcmk/err.h"
#include "pgcmk/pg.h"

/* ---- the supervisor (pg.c, instance.c) ---------------------------------------------------- */

struct pg_inst_info {
    char slug[64];
    char dir[PATH_MAX];  /* DATA_DIR/pg/<slug> */
    char data[PATH_MAX]; /* the data directory PostgreSQL runs on */
    char sock[PATH_MAX]; /* unix-socket directory */
    int port;
    pid_t pid; /* the postmaster, 0 when stopped */
    int cluster;
    char dbname[64];
};

/* 0 and *out filled when db_id has an instance, else -1. */
int pg_inst_info(const char *db_id, struct pg_inst_info *out);

/* The database of an instance's slug (the archive socket's requests name the slug): 0 and db_id
 * filled, else -1. */
int pg_inst_db_id(const char *slug, char *db_id, size_t n);

const char *pg_bin_dir(void);  /* the PostgreSQL binaries */
const char *pg_root_dir(void); /* DATA_DIR/pg */
const char *pg_self_exe(void); /* the pgcmkd binary the archiver runs (run/bin/pgcmkd) */
uid_t pg_user_uid(void);
gid_t pg_user_gid(void);

/* Runs a program of pg_bin_dir() (or an absolute path) as the PostgreSQL user and waits:
 * stdin from in_fd (-1 = /dev/null), stdout to out_fd (-1 = captured into err on failure),
 * cwd (NULL = pg_root_dir()). Returns the exit status (0 ok); on failure err has the program's
 * last stderr line. */
int pg_run(const char *prog, char *const argv[], int in_fd, int out_fd, const char *cwd,
           struct pgcmk_err *err);

/* Stop (fast, then immediate after a timeout) and start an existing instance; start waits for
 * postmaster.pid's "ready". Used by access.c (gocryptfs unmount on Inaccessible) and
 * archive.c. */
int pg_inst_stop(const char *db_id, struct pgcmk_err *err);
int pg_inst_start(const char *db_id, struct pgcmk_err *err);

/* Between pg.c and instance.c only (the supervisor's own parts). */
struct pgcmk_cfg;
int pg_max_instances(void);
/* A free port for a new instance (--pg-ports range or any), not one of `taken`; 0 when none. */
int pg_port_pick(const int *taken, size_t ntaken);
/* 1 when port can be bound on 127.0.0.1 (and ::1 when the host has IPv6). */
int pg_port_free(int port);
/* The template data directory (DATA_DIR/pg/template). */
const char *pg_template_dir(void);
/* The clusters' template: a copy of the template that has the database `citus` (owned by
 * pgcmk_agent), made once per data directory by pg_cluster_template (the instances' spare
 * thread runs it in the background after start-up: about 0.3-0.5 s of CPU); its directory, or
 * NULL while it is not made yet (a cluster's create then copies the template and runs CREATE
 * DATABASE). */
#define PG_CLUSTER_TEMPLATE "template.cluster"
const char *pg_cluster_template_dir(void);
int pg_cluster_template(struct pgcmk_err *err);
/* In a forked child: become the PostgreSQL user (when root), default signals, empty mask,
 * stdin /dev/null (or in_fd), fds above 2 closed. Returns -1 (errno) on failure. */
int pg_child_setup(int in_fd, int out_fd, int err_fd);
/* snprintf for paths and messages where truncation is checked by the caller or harmless. */
void pg_fmt(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Removes a directory tree (no error when it is missing). 0 or -1. */
int pg_rmtree(const char *path);
/* chown to the PostgreSQL user (a no-op when not root). */
int pg_chown(const char *path);
/* instance.c: loads the rows, adopts or starts their instances, removes stray directories;
 * starts the supervision thread. pg_inst_shutdown stops them all. */
int pg_inst_init(struct pgcmk_err *err);
void pg_inst_shutdown(void);

/* ---- access (access.c) -------------------------------------------------------------------- */

/* Called once by pgcmk_pg_init: subscribes pgcmk_pg_access_apply to PGCMK_EV_PG_ACCESS_CHANGED
 * and finds out whether the server-side library is installed. */
void pg_access_start(void);
/* Called by instance.c with the data directory before each start of the instance: writes or
 * removes the refusal (flag file / pg_hba lines) for the database's current access. */
int pg_access_prepare(const char *db_id, const char *data_dir, struct pgcmk_err *err);
/* The lines of postgresql.conf access.c needs (shared_preload_libraries when the server-side
 * library is installed), appended to buf. */
void pg_access_conf(char *buf, size_t n);
/* The access fields of pgcmk_pg_describe, added to out (a JSON object) from the files of the
 * instance's data directory: "logins": "allowed"|"refused", "refusal": "extension"|"pg_hba"
 * (how it refuses) and, once a login was refused by the library since the refusal began,
 * "firstDenial" (an ISO time by the virtual clock: seed 003's "after the first connection to the
 * database has been denied"). */
void pg_access_describe(const char *data_dir, json_t *out);
/* The refusing pg_hba.conf (the fallback without the library) made from the original text: a
 * comment naming the reason code, the lines of the exempt roles and the replication lines of
 * orig, then `host all all all reject`. Allocated; free() it. */
char *pg_access_hba_refusing(const char *orig, const char *code);

/* ---- archive (archive.c) ------------------------------------------------------------------ */

int pg_archive_start(struct pgcmk_err *err); /* the archive socket */
void pg_archive_stop(void);
/* The archive_mode / archive_command lines of postgresql.conf for db_id, appended to buf. */
void pg_archive_conf(const char *db_id, const char *slug, char *buf, size_t n);
/* Fills an empty data directory for a restore (s->relation "restore": the source's backup and
 * archive up to the WAL position of s->point_in_time, recovery settings written) or a replica
 * ("replica"/"standby": pg_basebackup -R from the running source, with a slot). */
int pg_archive_fill(const struct pgcmk_pg_spec *s, const char *data_dir, struct pgcmk_err *err);
/* The encrypted base backup of a running instance (at create, then on a schedule). */
int pg_archive_backup(const char *db_id, struct pgcmk_err *err);
/* Removes db_id's archive, backups, WAL-position map and its slot on its primary. Call it after
 * the instance stopped (a replica's slot is busy while it streams) and before its slug is
 * forgotten (the directories are found by slug). */
void pg_archive_drop(const char *db_id);
/* After a restore's start: waits until pg_is_in_recovery() is false (the recovery reached its
 * target and promoted). -1 with err when it does not within timeout_ms. */
int pg_archive_wait_promoted(const char *db_id, int timeout_ms, struct pgcmk_err *err);
/* After pg_promote of a replica or standby: its slot on the old primary is dropped, and once it
 * left recovery, its own first base backup is taken (its earliest restore point). */
int pg_archive_promoted(const char *db_id, struct pgcmk_err *err);
/* For pgcmk_pg_describe's "archive": {"backups": n, "earliestRestoreTime": ISO 8601 (the first
 * base backup's virtual time, absent before it), "encryption"}. A new reference. */
json_t *pg_archive_describe(const char *db_id);
/* DATA_DIR/pg/run/agent.sock: 0, or -1 when it does not fit. */
int pg_archive_sock_path(char *out, size_t n);

/* ---- tdeagent.c: the pg_tde agent (include/pgcmk/tdeproto.h) -------------------------------- */

/* Serves one "TDE" request of the archive socket (archive.c read the body: len bytes, NUL
 * after): checks that the peer on fd belongs to db_id's instance, runs the operation and writes
 * the answer ("OK <length>\n" + body, or "ERR <text>\n" for transport errors) to fd. */
void pg_tde_agent_serve(int fd, const char *db_id, const char *slug, const char *body, size_t len);
/* The key providers and principal keys of db_id's instance (no key bytes), for the portal and
 * /emulator/explain: {"providers": [{scope, id, name, type, options}], "keys": [{target,
 * databaseOid, name, providerScope, providerId, created, length}]}. A new reference. */
json_t *pg_tde_agent_describe(const char *db_id);

/* ---- selfmgd.c: self-managed instances (issue 16, POST /emulator/postgres/instances) ------ */

#define PG_SELFMGD_PREFIX "/emulator/postgres/instances/"

/* 1 when db_id names a self-managed instance (PG_SELFMGD_PREFIX + name). */
int pg_selfmgd_id(const char *db_id);
/* 1 when the instance's server key is set (bound: a pg_databases row of kind tde whose id is the
 * instance's): its WAL archive runs from its next start. */
int pg_selfmgd_bound(const char *db_id);
/* The lines of postgresql.conf a self-managed instance adds after access.c's (conf is the text so
 * far: a shared_preload_libraries line of access.c's is repeated with pg_tde added):
 * shared_preload_libraries with pg_tde when pgext/pg_tde is installed, and the agent socket and
 * slug GUCs of include/pgcmk/tdeproto.h. Appended to buf. */
void pg_selfmgd_conf(const char *slug, char *buf, size_t n, const char *conf);
/* The host and login of its connection (routes.c): 0, or -1 when db_id is no self-managed
 * instance. */
int pg_selfmgd_names(const char *db_id, char *host, size_t hn, char *user, size_t un);
/* Routes /emulator/postgres/instances (called by pgcmk_pg_register). */
void pg_selfmgd_register(void);

/* ---- at rest (atrest.c) ------------------------------------------------------------------- */

/* 1 when instances run on gocryptfs (--pg-at-rest fs, or auto and available). */
int pg_atrest_on(void);
/* Before a start: the data directory on the encrypted mount of dir (created and initialised
 * under the DEK the first time), its path in data_out. After a stop: unmount. */
int pg_atrest_mount(const char *db_id, const char *dir, char *data_out, size_t n,
                    struct pgcmk_err *err);
void pg_atrest_unmount(const char *db_id, const char *dir);
/* Called by pgcmk_pg_init before any instance starts: decides whether instances run on gocryptfs
 * (cfg->pg_at_rest; auto = /dev/fuse usable and gocryptfs + fusermount3 installed). -1 with err
 * (PGCMK_E_PGREAL_UNAVAILABLE, naming what to install) for fs without them. */
int pg_atrest_init(const struct pgcmk_cfg *cfg, struct pgcmk_err *err);
/* Called by pgcmk_pg_shutdown after every instance stopped: unmounts what is still mounted
 * (never under a live postmaster). */
void pg_atrest_shutdown(void);

#endif
