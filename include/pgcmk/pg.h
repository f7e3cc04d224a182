/* pg.h - real PostgreSQL (--pg-mode real, issue 15): one PostgreSQL 15 instance per emulated
 * single server and per serverGroupsv2 coordinator, copied from a template data directory,
 * started and supervised by pgcmkd itself (fork/exec of `postgres`, never as root), listening
 * with TLS on 127.0.0.1/::1 on its own port under a certificate from pgcmk's CA. The database's
 * key state reaches the instance: Inaccessible refuses logins and ends sessions; its WAL archive
 * and base backups are AES-256-GCM under the database's DEK; restores replay them to a WAL
 * position; replicas stream from their primary.
 *
 * Files of src/pg/: pg.c (mode, binaries, user, template, ports, init/shutdown, adoption after a
 * kill -9), instance.c (start, supervise, stop, roles), wire.c (the PostgreSQL wire-protocol
 * client, include/pgcmk/pgwire.h), access.c (login refusal: the server-side library's flag file
 * or pg_hba, session termination), archive.c + walcmd.c (the archive socket and the `pgcmkd
 * wal-push|wal-fetch` subcommands, base backups, the virtual-time -> WAL position map, restores,
 * replicas), atrest.c (gocryptfs), routes.c (/emulator/postgres/...). src/pg/internal.h is what
 * these files share; everything else calls only this header.
 *
 * Identifiers: db_id is the pg_databases id (the ARM resource id of the server or cluster,
 * case-insensitive). Every call that starts, stops or copies an instance blocks: run it on a
 * worker (the LRO worker of the provider), never on an HTTP thread. */
#ifndef PGCMK_PG_H
#define PGCMK_PG_H

#include <stdint.h>
#include <jansson.h>

#include "pgcmk/cfg.h"
#include "pgcmk/core.h"
#include "pgcmk/err.h"

/* ---- the supervisor (pg.c, instance.c) ---------------------------------------------------- */

/* 1 when the daemon runs with --pg-mode real (and pgcmk_pg_init succeeded). */
int pgcmk_pg_real(void);

/* Start-up, after the reconciler's first checks (pg_core_init): in modeled mode nothing. In real
 * mode: find the binaries (--pg-bin, else /usr/lib/postgresql/15/bin), choose the user
 * (--pg-user; `postgres` when pgcmkd is root, else pgcmkd's own uid), check that the user can
 * traverse DATA_DIR/pg (naming the directory that blocks), make the template data directory
 * (initdb once per data directory), stop or adopt instances a killed pgcmkd left behind, start
 * the archive socket, and start the instance of every database that has one. -1 with err saying
 * exactly what to install or fix (PGCMK_E_PGREAL_UNAVAILABLE) when real mode cannot run. */
int pgcmk_pg_init(const struct pgcmk_cfg *cfg, struct pgcmk_err *err) PGCMK_WUR;
/* SIGTERM: stops every instance (fast shutdown, then immediate), then unmounts. */
void pgcmk_pg_shutdown(void);

/* What a new instance is. Strings are the caller's; admin_password is wiped by the caller and
 * only its SCRAM verifier reaches the server. */
struct pgcmk_pg_spec {
    const char *db_id;
    int cluster;       /* 1: a serverGroupsv2 coordinator (default database "citus") */
    const char *fqdn;  /* the Azure FQDN the resource reports: certificate SAN and host */
    const char *alias; /* the .localhost alias, also a SAN */
    const char *admin_login;
    const char *admin_password;
    /* how its data directory begins */
    const char *source_id; /* NULL: a new server (template copy) */
    const char *relation;  /* "restore" (to point_in_time), "replica" or "standby" (streaming) */
    int64_t point_in_time; /* restore: virtual time, ms since the epoch */
    /* issue 16: a self-managed instance (POST /emulator/postgres/instances, db_id
     * "/emulator/postgres/instances/{name}"): admin_login becomes a SUPERUSER, the default
     * database is postgres, shared_preload_libraries gets pg_tde (pgcmk's emulation, pgext/pg_tde)
     * and pg_tde.pgcmk_agent_socket the archive socket's path; no Azure resource, no archive
     * until its server key is set. */
    int self_managed;
};

/* Creates the instance and returns once it accepts connections: a template copy (or a restore
 * from the source's encrypted backup and archive, or a streaming copy of the source), its TLS
 * certificate, its configuration (TLS on, non-TLS refused, the archive through pgcmkd), the
 * admin role with Azure's rights (not superuser) and the default database, the access state of
 * the database applied before the first login, then the first base backup. */
int pgcmk_pg_create(const struct pgcmk_pg_spec *s, struct pgcmk_err *err) PGCMK_WUR;
/* Stops the instance, removes its data directory, archive and backups, and drops the
 * replication slot it holds on its primary. 0 when it had none. */
int pgcmk_pg_drop(const char *db_id, struct pgcmk_err *err) PGCMK_WUR;
/* PATCH administratorLoginPassword: ALTER ROLE with the new SCRAM verifier. */
int pgcmk_pg_set_password(const char *db_id, const char *login, const char *password,
                          struct pgcmk_err *err) PGCMK_WUR;
/* The server's restart action: stop fast, start. */
int pgcmk_pg_restart(const char *db_id, struct pgcmk_err *err) PGCMK_WUR;
/* The resource's stop (held 1): stops the instance and keeps it down (the supervisor, access
 * recovery and restarts of pgcmkd leave it stopped: <dir>/held); its start (held 0) removes the
 * mark and starts it. */
int pgcmk_pg_hold(const char *db_id, int held, struct pgcmk_err *err) PGCMK_WUR;
/* A replica or standby becomes a primary (pg_promote); its slot on the old primary is dropped. */
int pgcmk_pg_promote(const char *db_id, struct pgcmk_err *err) PGCMK_WUR;

/* The earliest virtual time a restore of db_id can reach (archive.c): its oldest kept base
 * backup's, or the start of its retention window (backupRetentionDays of a single server, 35
 * days for a cluster) when that is later. 0 with *out_ms, -1 when it has no base backup. */
int pgcmk_pg_earliest_restore(const char *db_id, int64_t *out_ms);
/* 1 when db_id has a real instance. */
int pgcmk_pg_has(const char *db_id);
/* The instance, for /emulator/explain, the portal and Resource Health; NULL when db_id has none:
 * {"mode": "real", "state": "starting"|"running"|"stopped"|"crashed"|"restarting", "pid", "port",
 *  "host": "127.0.0.1", "dataDirectory", "dbname", "adminLogin", "restarts", "lastCrash",
 *  "atRest": "none"|"gocryptfs", "logins": "allowed"|"refused", "refusal": "extension"|"pg_hba",
 *  "firstDenial", "archive": {...}, "earliestRestoreTime"}. */
json_t *pgcmk_pg_describe(const char *db_id);
/* GET /emulator/postgres/connection: {"connectionString", "host", "hostaddr", "port", "user",
 * "dbname", "sslmode": "verify-full", "sslrootcert", "psql"}; NULL when db_id has none. */
json_t *pgcmk_pg_connection(const char *db_id);

/* Runs one statement as the internal superuser over the instance's unix socket (wire.c), with
 * $1..$n bound as text (NULL = SQL NULL). *rows (when rows is not NULL) gets a JSON array of
 * objects, column name -> text value or null. -1 with err: PostgreSQL's error as
 * PGCMK_E_PGREAL_SQL ("ERROR: ... (SQLSTATE xxxxx)"), or PGCMK_E_PGREAL_DOWN when the instance
 * does not run. dbname NULL = the instance's default database. */
int pgcmk_pg_exec(const char *db_id, const char *dbname, const char *sql, const char *const *params,
                  int nparams, json_t **rows, struct pgcmk_err *err);

/* ---- access (access.c) ---------------------------------------------------------------------- */

/* Makes the instance follow the database's access (pg_databases.access, reason_code, reason):
 * lost -> new logins refused with an Azure-like FATAL carrying the reason code, vault, key and
 * version, and client sessions terminated; ok -> logins allowed. Listens to
 * PGCMK_EV_PG_ACCESS_CHANGED (registered by pgcmk_pg_init) and is called by instance.c before an
 * instance's first start. A key outage keeps the database serving (the access stays ok). */
int pgcmk_pg_access_apply(const char *db_id, struct pgcmk_err *err);

/* ---- the subcommands run by PostgreSQL's archiver (walcmd.c) -------------------------------- */

/* `pgcmkd wal-push ...` / `pgcmkd wal-fetch ...`: argv[1] is the subcommand. Talks to the
 * daemon's archive socket; never sees a key. Returns the process's exit status. */
int pgcmk_pg_walcmd(int argc, char **argv);
/* 1 when argv[1] names one of those subcommands. */
int pgcmk_pg_is_walcmd(int argc, char **argv);

/* Routes /emulator/postgres/... (at init, before the server starts). */
void pgcmk_pg_register(void);

#endif
