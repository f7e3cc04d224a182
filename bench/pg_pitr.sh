#!/bin/sh
# bench/pg_pitr.sh - point-in-time restore of a ~100 MB real PostgreSQL database (issue 15):
#   bench/pg_pitr.sh [build/pgcmkd] [SCALE]
# A real-mode daemon (--pg-mode real) on a fresh /tmp directory, a CMK cluster, `pgbench -i -s
# SCALE` (default 7: about 100 MB of tables and indexes) over verify-full TLS as the admin, then
# the virtual clock moves 10 minutes, T is taken, the clock moves again and more rows are written.
# Measured: the size of the database and of its encrypted archive and backups, the time of the
# PITR create (PUT to the end of its Azure-AsyncOperation: the source's WAL switched and archived,
# the base backup decrypted into tar, the replay to the WAL position of T, the promotion and the
# restored server's own first base backup), that the rows after T are absent, pgcmkd's PSS
# after the restore and the load average (the figure depends on what else the machine runs).
# Needs postgresql-15 (initdb, postgres, pg_basebackup, pgbench) and python3-psycopg2. Exits 1
# when something does not work. BENCH_KEEP=1 keeps the directory.
set -eu
BIN=${1:-build/pgcmkd}
SCALE=${2:-7}
HERE=$(cd "$(dirname "$0")" && pwd)
[ -x /usr/lib/postgresql/15/bin/pgbench ] || { echo "pg_pitr: needs postgresql-15 (pgbench)"; exit 1; }
PGCMKD=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN") SCALE=$SCALE \
    exec /usr/bin/python3 - "$HERE/../tests/integration" <<'EOF'
import os, shutil, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from conftest import Daemon, new_name, poll_until
from pgreal import ADMIN_PASSWORD, REAL_FLAGS, real_data_dir
from pgtools import CL_AV, cluster_body, cluster_id, cmk_setup, wait_lro
import psycopg2

scale = int(os.environ["SCALE"])
dd = real_data_dir()
d = Daemon(dd, flags=list(REAL_FLAGS), log_dir=dd)
d.start()
ok = False


def conninfo(rid):
    r = d.get("/emulator/postgres/connection", params={"resourceId": rid})
    assert r.status_code == 200, r.text
    return r.json()["connectionString"]


def sql(rid, q):
    c = psycopg2.connect(conninfo(rid), password=ADMIN_PASSWORD)
    c.autocommit = True
    with c.cursor() as cur:
        cur.execute(q)
        rows = cur.fetchall() if cur.description else None
    c.close()
    return rows


def create(rg, name, body):
    """PUT and the operation's end, with room for a loaded machine (pgtools waits 20 s)."""
    r = d.put(f"{cluster_id(rg, name)}?api-version={CL_AV}", json=body)
    assert r.status_code == 201, r.text
    st = wait_lro(d, r, timeout=600)
    assert st["status"] == "Succeeded", st


def du(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


try:
    env = cmk_setup(d)
    rg, mi, _oid, _v, kid = env
    name = new_name("c")
    create(rg, name, cluster_body(mi, kid))
    rid = cluster_id(rg, name)
    env_pg = dict(os.environ, PGPASSWORD=ADMIN_PASSWORD)
    t0 = time.time()
    subprocess.run(["/usr/lib/postgresql/15/bin/pgbench", "-i", "-q", "-s", str(scale),
                    conninfo(rid)], env=env_pg, check=True, capture_output=True)
    t_init = time.time() - t0
    size = sql(rid, "SELECT pg_database_size(current_database())")[0][0]
    sql(rid, "CREATE TABLE marks (v text); INSERT INTO marks VALUES ('before-t')")
    d.clock(advance="PT10M")
    t = d.get("/emulator/clock").json()["now"]
    d.clock(advance="PT10M")
    sql(rid, "INSERT INTO marks VALUES ('after-t'); "
             "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 10 = 0")
    rst = new_name("cl")
    t0 = time.time()
    create(rg, rst, {"location": "eastus", "properties": {
        "sourceResourceId": rid, "pointInTimeUTC": t}})
    t_pitr = time.time() - t0
    rid2 = cluster_id(rg, rst)
    marks = [r[0] for r in sql(rid2, "SELECT v FROM marks ORDER BY v")]
    changed = sql(rid2, "SELECT count(*) FROM pgbench_accounts WHERE abalance <> 0")[0][0]
    accounts = sql(rid2, "SELECT count(*) FROM pgbench_accounts")[0][0]
    pg = os.path.join(dd, "pg")
    arch = du(os.path.join(pg, "archive"))
    back = du(os.path.join(pg, "backups"))
    print(f"pg_pitr: scale {scale}: database {size / 1e6:.1f} MB, pgbench -i {t_init:.2f} s")
    print(f"pg_pitr: encrypted archive {arch / 1e6:.1f} MB, encrypted base backups "
          f"{back / 1e6:.1f} MB (every instance of the run)")
    print(f"pg_pitr: PITR create (PUT to Succeeded) {t_pitr:.2f} s; rows: marks {marks}, "
          f"accounts {accounts}, accounts changed after T {changed}")
    with open(f"/proc/{d.proc.pid}/smaps_rollup") as f:
        pss = [int(x.split()[1]) for x in f if x.startswith("Pss:")][0]
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"pg_pitr: pgcmkd PSS after the restore {pss / 1024:.0f} MB; loadavg {load} "
          f"(nproc {os.cpu_count()})")
    ok = marks == ["before-t"] and changed == 0 and accounts == 100000 * scale
    print("pg_pitr: " + ("ok" if ok else "WRONG: rows after T are present or rows are missing"))
finally:
    d.stop()
    if os.environ.get("BENCH_KEEP") != "1":
        shutil.rmtree(dd, ignore_errors=True)
sys.exit(0 if ok else 1)
EOF
