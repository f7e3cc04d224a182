"""Real PostgreSQL mode: base backups over virtual time and the retention window (issue 15,
src/pg/archive.c: arch_schedule_all, arch_prune, pgcmk_pg_earliest_restore).

What is checked, with clock advances only:
* a running, accessible instance gets a new encrypted base backup once its last one is a day of
  virtual time old (P2D -> one more backup);
* past the retention window (35 days for a cluster) the backups older than the newest one at or
  before the window's start go, with the archived WAL before that one's start, while a restore
  inside the window still replays from it (rows before the target there, rows after not);
* earliestRestoreTime (the resource and /emulator/explain) follows the window, and a restore
  before it gets Azure's 400 InvalidRestorePointInTime;
* an Inaccessible database (no DEK) gets no backup, and keeps what a restore needs.
"""
import datetime
import os
import sqlite3

from conftest import assert_arm_error, new_name, parse_time, poll_until
from pgreal import (cmk_cluster, needs_postgres, poll_connect, query,  # noqa: F401
                    real_daemon, wait_state)
from pgtools import CL_AV, cluster_id, wait_lro

pytestmark = needs_postgres

DAY_MS = 86400 * 1000


def db_rows(d, sql, *params):
    con = sqlite3.connect(f"file:{d.data_dir}/pgcmk.sqlite?mode=ro", uri=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def backups(d, rid):
    """[(file, at_ms, start_lsn)] of rid's base backups, oldest first."""
    return db_rows(d, "SELECT file, at_ms, start_lsn FROM pg_backups WHERE db_id = ? COLLATE "
                      "NOCASE ORDER BY at_ms", rid)


def slug_of(d, rid):
    return db_rows(d, "SELECT slug FROM pg_instances WHERE db_id = ? COLLATE NOCASE", rid)[0][0]


def ms(iso):
    return round(parse_time(iso).timestamp() * 1000)


def now_ms(d):
    return ms(d.get("/emulator/clock").json()["now"])


def earliest_ms(d, rid):
    r = d.get(f"{rid}?api-version={CL_AV}")
    assert r.status_code == 200, r.text
    return ms(r.json()["properties"]["earliestRestoreTime"])


def fmt(at_ms):
    t = datetime.datetime.fromtimestamp(at_ms / 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at_ms % 1000:03d}Z"


def restore_put(d, rid, at_ms):
    rg = rid.split("/")[4]
    name = new_name("cl")
    r = d.put(f"{cluster_id(rg, name)}?api-version={CL_AV}", json={
        "location": "eastus", "properties": {"sourceResourceId": rid, "pointInTimeUTC": fmt(at_ms)}})
    return r, cluster_id(rg, name)


def segno(name):
    return int(name[8:16], 16) * 256 + int(name[16:24], 16)


def test_daily_backups_retention_window_and_restore(real_daemon):
    d = real_daemon
    rid, _name, env = cmk_cluster(d)
    conn = poll_connect(d, rid)
    query(conn, "CREATE TABLE t (v text)")
    query(conn, "INSERT INTO t VALUES ('r1')")
    first = backups(d, rid)
    assert len(first) == 1, first

    # a day of virtual time later (two here): one more backup, taken at the new time
    d.clock(advance="P2D")
    poll_until(lambda: len(backups(d, rid)) == 2, timeout=30, what="the daily base backup")
    b2 = backups(d, rid)[1]
    assert b2[1] - first[0][1] >= 2 * DAY_MS
    query(conn, "INSERT INTO t VALUES ('r2')")
    d.clock(advance="PT1H")
    query(conn, "INSERT INTO t VALUES ('r3')")

    # 36 days on: a new backup, and the first one is outside the 35-day window while the second
    # is the newest at or before its start: the first goes, the second stays
    d.clock(advance="P36D")
    poll_until(lambda: [b[0] for b in backups(d, rid)][:1] == [b2[0]] and
               len(backups(d, rid)) == 2, timeout=30, what="the new backup and the pruning")
    query(conn, "INSERT INTO t VALUES ('r4')")
    pg = os.path.join(d.data_dir, "pg")
    slug = slug_of(d, rid)
    assert sorted(os.listdir(f"{pg}/backups/{slug}")) == sorted(b[0] for b in backups(d, rid))
    kept = os.listdir(f"{pg}/archive/{slug}")
    wal = [f for f in kept if len(f) >= 24 and ".history" not in f]
    assert wal and min(segno(f) for f in wal) == b2[2] // (16 << 20), sorted(wal)
    assert db_rows(d, "SELECT count(*) FROM pg_wal_map WHERE db_id = ? COLLATE NOCASE AND "
                      "at_ms < ?", rid, b2[1]) == [(0,)]

    # earliestRestoreTime is the window's start (published to a minute)
    start = now_ms(d) - 35 * DAY_MS
    poll_until(lambda: abs(earliest_ms(d, rid) - start) < 120_000, timeout=10,
               what="earliestRestoreTime to follow the window")
    r = d.get("/emulator/explain", params={"resourceId": rid})
    assert r.status_code == 200, r.text

    # before it: Azure's error; inside it: the pruned archive still restores from the kept backup
    r, _ = restore_put(d, rid, start - 3600_000)
    assert_arm_error(r, 400, "InvalidRestorePointInTime")
    r, rst = restore_put(d, rid, start + 60_000)
    assert r.status_code == 201, r.text
    st = wait_lro(d, r, timeout=90)
    assert st["status"] == "Succeeded", st
    c2 = poll_connect(d, rst)
    assert [x[0] for x in query(c2, "SELECT v FROM t ORDER BY v")] == ["r1", "r2", "r3"]
    c2.close()
    assert d.delete(f"{rst}?api-version={CL_AV}").status_code in (200, 202)

    # Inaccessible: no backup (it could not be encrypted), nothing a restore needs removed
    _rg, _mi, oid, v, _kid = env
    v.policy("remove", oid)
    wait_state(d, rid, "Inaccessible")
    before = backups(d, rid)
    d.clock(advance="P2D")
    start = now_ms(d) - 35 * DAY_MS
    poll_until(lambda: abs(earliest_ms(d, rid) - start) < 120_000, timeout=10,
               what="the schedule to run after the advance")
    assert backups(d, rid) == before
    assert sorted(os.listdir(f"{pg}/backups/{slug}")) == sorted(b[0] for b in before)
    conn.close()
