"""Real PostgreSQL mode: the encrypted WAL archive and base backups, point-in-time restore by WAL
position, streaming replicas (issue 15, src/pg/archive.c, src/pg/walcmd.c).

What is checked:
* the archive and the base backups hold no plaintext of a row the test wrote, while the live
  pg_wal does (the control);
* a file only opens under its own database: a segment of database A fetched as database B fails,
  and a restore whose archive was swapped for another database's fails with no rows;
* PITR: rows before the requested virtual time are there, rows after it are not, with the
  virtual clock moved between them (the map of virtual time -> WAL position, not WAL timestamps),
  and to the millisecond between two clock changes (T's wall time as recovery_target_time);
* a replica streams a new row and refuses a write; promote makes it writable and drops its slot;
* a revoked key stops archiving (wal-push fails) and a restore of a source whose key is gone
  fails with the Azure error.
"""
import glob
import os
import shutil
import sqlite3
import subprocess

import pytest

from conftest import assert_arm_error, new_name, poll_until
from pgreal import (cmk_cluster, needs_postgres, poll_connect, query,  # noqa: F401
                    real_daemon, wait_state)
from pgtools import CL_AV, cluster_id, create_cluster, wait_lro

pytestmark = needs_postgres


def files_under(*patterns):
    out = []
    for p in patterns:
        for f in glob.glob(p, recursive=True):
            if os.path.isfile(f):
                out.append(f)
    return out


def contains(files, needle):
    """The files whose bytes contain needle."""
    hits = []
    for f in files:
        with open(f, "rb") as fh:
            if needle in fh.read():
                hits.append(f)
    return hits


def slug_of(d, rid):
    """The instance's directory name under DATA_DIR/pg (and archive/, backups/)."""
    con = sqlite3.connect(f"file:{d.data_dir}/pgcmk.sqlite?mode=ro", uri=True)
    try:
        row = con.execute("SELECT slug FROM pg_instances WHERE db_id = ? COLLATE NOCASE",
                          (rid,)).fetchone()
    finally:
        con.close()
    assert row, f"no instance row for {rid}"
    return row[0]


def restore_cluster(d, rid, t, expect="Succeeded", **props):
    """A PITR cluster of rid at t; its create replays real WAL (slow under ASan and load: the
    operation may take longer than pgtools' 20 s)."""
    name = new_name("cl")
    rg = rid.split("/")[4]
    r = d.put(f"{cluster_id(rg, name)}?api-version={CL_AV}", json={
        "location": "eastus", "properties": {"sourceResourceId": rid, "pointInTimeUTC": t,
                                             **props}})
    assert r.status_code == 201, r.text
    st = wait_lro(d, r, timeout=90)
    assert st["status"] == expect, st
    return cluster_id(rg, name), name


def walcmd(d, sub, slug, name, path):
    """`pgcmkd wal-push|wal-fetch` as PostgreSQL runs it (here as root, which the socket allows)."""
    sock = os.path.join(d.data_dir, "pg", "run", "agent.sock")
    return subprocess.run([d.binary, sub, "--socket", sock, "--db", slug, name, path],
                          capture_output=True, text=True, timeout=30)


def instances(d, rid):
    con = sqlite3.connect(f"file:{d.data_dir}/pgcmk.sqlite?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM pg_instances WHERE db_id = ? COLLATE NOCASE",
                           (rid,)).fetchone()[0]
    finally:
        con.close()


@pytest.fixture(scope="module")
def source(real_daemon):
    """One CMK cluster with a table t, shared by the tests in file order (the last revokes it)."""
    d = real_daemon
    rid, _name, env = cmk_cluster(d)
    conn = poll_connect(d, rid)
    query(conn, "CREATE TABLE t (v text)")
    conn.close()
    return d, rid, env



def test_archive_is_ciphertext_and_pitr_stops_at_the_virtual_time(source):
    d, rid, _env = source
    conn = poll_connect(d, rid)
    marker = "archive-marker-" + new_name("")
    query(conn, "INSERT INTO t VALUES (%s)", marker)
    d.clock(advance="PT10M")
    t = d.get("/emulator/clock").json()["now"]
    d.clock(advance="PT10M")
    query(conn, "INSERT INTO t VALUES ('after-t')")
    conn.close()

    # a restore that changes the encryption: the source's archive is read under the source's DEK,
    # the new server archives under its own
    rst, _ = restore_cluster(d, rid, t, sourceLocation="eastus",
                             dataEncryption={"type": "SystemManaged"})
    c2 = poll_connect(d, rst)
    assert [r[0] for r in query(c2, "SELECT v FROM t ORDER BY v")] == [marker]
    assert query(c2, "SELECT pg_is_in_recovery()") == [(False,)]
    query(c2, "INSERT INTO t VALUES ('restored-is-writable')")
    c2.close()

    # the archive and the backups are ciphertext; the live WAL is the control
    pg = os.path.join(d.data_dir, "pg")
    src = slug_of(d, rid)
    archived = files_under(f"{pg}/archive/{src}/*")
    backups = files_under(f"{pg}/backups/{src}/*")
    assert archived and backups
    assert all(open(f, "rb").read(8) == b"PGCMKA1\0" for f in archived + backups)
    assert contains(files_under(f"{pg}/{src}/data/pg_wal/*"), marker.encode())
    assert contains(archived + backups, marker.encode()) == []
    assert contains(archived + backups, b"after-t") == []
    # the restored server archives under its own name from now on
    assert files_under(f"{pg}/backups/{slug_of(d, rst)}/*")
    assert d.delete(f"{rst}?api-version={CL_AV}").status_code in (200, 202)


def test_pitr_is_exact_between_clock_changes(source):
    """Rows a few milliseconds apart around T: between two clock changes virtual time is wall
    time plus one offset, so the restore targets T's wall time (recovery_target_time), not the
    WAL position map's last point (written about once a second)."""
    d, rid, _env = source
    conn = poll_connect(d, rid)
    query(conn, "CREATE TABLE ms (v int)")
    d.clock(advance="PT1M")  # a new epoch, so T is well inside one
    for i in range(5):
        query(conn, "INSERT INTO ms VALUES (%s)", i)
    t = d.get("/emulator/clock").json()["now"]
    poll_until(lambda: d.get("/emulator/clock").json()["now"] > t, timeout=5,
               what="the clock to pass T")
    for i in range(5, 10):
        query(conn, "INSERT INTO ms VALUES (%s)", i)
    conn.close()
    rst, _ = restore_cluster(d, rid, t)
    c2 = poll_connect(d, rst)
    assert [r[0] for r in query(c2, "SELECT v FROM ms ORDER BY v")] == [0, 1, 2, 3, 4]
    c2.close()
    assert d.delete(f"{rst}?api-version={CL_AV}").status_code in (200, 202)


def test_a_file_opens_only_under_its_own_database(source, tmp_path):
    d, rid, env = source
    other, _name, _env = cmk_cluster(d, env=env)
    pg = os.path.join(d.data_dir, "pg")
    a, b = slug_of(d, rid), slug_of(d, other)
    seg = "000000010000000000000002"  # the segment of each one's first base backup
    assert os.path.exists(f"{pg}/archive/{a}/{seg}") and os.path.exists(f"{pg}/archive/{b}/{seg}")
    out = str(tmp_path / "seg")
    r = walcmd(d, "wal-fetch", a, seg, out)
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(out) == 16 << 20
    # a missing file: exit 1 without noise (PostgreSQL probes for history files)
    r = walcmd(d, "wal-fetch", a, "00000009.history", out + "2")
    assert (r.returncode, r.stderr) == (1, "")
    # A's segment put in B's archive: it does not open as B's
    shutil.copy(f"{pg}/archive/{a}/{seg}", f"{pg}/archive/{b}/{seg}")
    r = walcmd(d, "wal-fetch", b, seg, out + "3")
    assert r.returncode == 1 and "authentication failed" in r.stderr, r.stderr
    assert not os.path.exists(out + "3")
    # a restore of B through that archive fails, and leaves no instance and no rows
    t = d.get("/emulator/clock").json()["now"]
    rst, _ = restore_cluster(d, other, t, expect="Failed")
    assert instances(d, rst) == 0
    assert d.delete(f"{other}?api-version={CL_AV}").status_code in (200, 202)


def test_replica_streams_refuses_writes_and_promotes(source):
    d, rid, _env = source
    rg = rid.split("/")[4]
    rep = new_name("cl")
    create_cluster(d, rg, rep, {"location": "eastus", "properties": {"sourceResourceId": rid}})
    repid = cluster_id(rg, rep)
    conn = poll_connect(d, rid)
    row = "streamed-" + new_name("")
    query(conn, "INSERT INTO t VALUES (%s)", row)
    c2 = poll_connect(d, repid)
    poll_until(lambda: query(c2, "SELECT count(*) FROM t WHERE v = %s", row) == [(1,)],
               timeout=10, what="the replica to stream the new row")
    with pytest.raises(Exception) as e:
        query(c2, "INSERT INTO t VALUES ('on-the-replica')")
    assert "cannot execute INSERT in a read-only transaction" in str(e.value)
    assert query(conn, "SELECT count(*) FROM pg_replication_slots") == [(1,)]
    c2.close()
    r = d.post(f"{repid}/promote?api-version={CL_AV}")
    assert r.status_code == 202, r.text
    assert wait_lro(d, r)["status"] == "Succeeded"
    c2 = poll_connect(d, repid)
    poll_until(lambda: query(c2, "SELECT pg_is_in_recovery()") == [(False,)], timeout=10,
               what="the promoted replica to leave recovery")
    query(c2, "INSERT INTO t VALUES ('promoted')")
    # its slot on the old primary is gone, and it has its own base backup
    poll_until(lambda: query(conn, "SELECT count(*) FROM pg_replication_slots") == [(0,)],
               timeout=10, what="the replica's slot to be dropped")
    pg = os.path.join(d.data_dir, "pg")
    poll_until(lambda: files_under(f"{pg}/backups/{slug_of(d, repid)}/*"), timeout=30,
               what="the promoted replica's first base backup")
    c2.close()
    conn.close()
    assert d.delete(f"{repid}?api-version={CL_AV}").status_code in (200, 202)


def test_revoked_key_stops_archiving_and_restores(source, tmp_path):
    d, rid, env = source
    rg, _mi, oid, v, _kid = env
    v.policy("remove", oid)
    wait_state(d, rid, "Inaccessible")
    f = tmp_path / "000000010000000000000063"
    f.write_bytes(b"\0" * 8192)
    r = walcmd(d, "wal-push", slug_of(d, rid), f.name, str(f))
    assert r.returncode == 1 and "key of the database is not accessible" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(d.data_dir, "pg", "archive", slug_of(d, rid), f.name))
    t = d.get("/emulator/clock").json()["now"]
    r = d.put(f"{cluster_id(rg, new_name('cl'))}?api-version={CL_AV}", json={
        "location": "eastus", "properties": {"sourceResourceId": rid, "pointInTimeUTC": t}})
    if r.status_code == 201:
        st = wait_lro(d, r)
        assert st["status"] == "Failed", st
        assert st["error"]["code"] == "AzureKeyVaultMissingPermissions", st
    else:
        assert_arm_error(r, 409, "ServerInaccessible")
