"""Real PostgreSQL mode: the supervisor (src/pg/pg.c, instance.c). A CMK single server gets its
own PostgreSQL 15 instance: TLS under pgcmk's CA on its own port, the admin logs in with SCRAM,
non-TLS is refused. A crashed postmaster is started again (counted, told in Resource Health); a
kill -9 of pgcmkd leaves instances that the next pgcmkd stops and starts as its own, and removes
those of servers deleted meanwhile; SIGTERM stops them all; --pg-ports and --pg-max-instances
hold."""
import os
import shutil
import signal
import sqlite3

import pytest

from conftest import poll_until
from pgreal import (ADMIN_PASSWORD, SERVER_PASSWORD, _psycopg2, cmk_cluster,  # noqa: F401
                    cmk_server, needs_postgres, postmasters_under, start_real)
from pgtools import SRV_AV, create_server, explain, settle, wait_lro

pytestmark = needs_postgres
RH = "/providers/Microsoft.ResourceHealth/availabilityStatuses"
HAV = "2022-10-01"


def instance(d, rid):
    """The instance part of /emulator/explain (asserted real)."""
    dp = explain(d, rid)["dataPlane"]
    assert dp["mode"] == "real", dp
    return dp["instance"]


def login(d, rid, password=SERVER_PASSWORD, **kw):
    """psycopg2 with verify-full against pgcmk's CA, straight from the instance's port."""
    inst = instance(d, rid)
    name = rid.rsplit("/", 1)[1]
    args = dict(host=f"{name}.postgres.database.azure.com", hostaddr="127.0.0.1",
                port=inst["port"], user="pgadmin", dbname="postgres", password=password,
                sslmode="verify-full", sslrootcert=os.path.join(d.data_dir, "ca.pem"),
                connect_timeout=10)
    args.update(kw)
    return _psycopg2().connect(**args)


def one(conn, sql):
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_instance_tls_scram_and_crash_restart(start_real):
    pg = _psycopg2()
    d = start_real("--pg-ports", "55290-55299", "--pg-max-instances", "1")
    rid, name, env = cmk_server(d)
    inst = instance(d, rid)
    assert inst["state"] == "running" and inst["restarts"] == 0
    assert 55290 <= inst["port"] <= 55299
    conn = login(d, rid)
    user, ssl = one(conn, "SELECT current_user, (SELECT ssl FROM pg_stat_ssl "
                          "WHERE pid = pg_backend_pid())")
    assert (user, ssl) == ("pgadmin", True)
    assert one(conn, "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                     "WHERE rolname = current_user") == (False, True, True)
    assert one(conn, "SELECT pg_get_userbyid(datdba) FROM pg_database "
                     "WHERE datname = 'postgres'") == ("pgadmin",)
    assert one(conn, "SHOW password_encryption") == ("scram-sha-256",)
    conn.close()
    # the alias is a SAN too; non-TLS and a wrong password are refused
    login(d, rid, host=f"{name}.postgres.database.localhost").close()
    with pytest.raises(pg.OperationalError, match="no encryption"):
        login(d, rid, sslmode="disable")
    with pytest.raises(pg.OperationalError, match="password authentication failed"):
        login(d, rid, password="not-the-password")

    # a crashed postmaster is started again by the supervisor, and counted
    old = inst["pid"]
    os.kill(old, signal.SIGKILL)
    inst = poll_until(lambda: (lambda i: i if i["restarts"] == 1 and i["state"] == "running"
                               else None)(instance(d, rid)),
                      timeout=30, what="the crashed postmaster to be restarted")
    assert inst["pid"] != old and inst["lastCrash"]
    assert inst["port"] == explain(d, rid)["dataPlane"]["instance"]["port"]
    login(d, rid).close()
    # Resource Health told the story: Unavailable (Platform Initiated) while down, then Available
    r = d.get(rid + RH, params={"api-version": HAV})
    assert r.status_code == 200, r.text
    states = [(v["properties"]["availabilityState"], v["properties"].get("reasonType"))
              for v in r.json()["value"]]
    assert ("Unavailable", "Platform Initiated") in states, states
    r = d.get(rid + RH + "/current", params={"api-version": HAV})
    assert r.json()["properties"]["availabilityState"] == "Available", r.text

    # --pg-max-instances 1: a second server's create fails with the cap's error
    st = create_server(d, env[0], "over-cap", expect="Failed")
    assert st["error"]["code"] == "RealPostgresInstanceLimit", st
    assert "--pg-max-instances 1" in st["error"]["message"], st
    assert len(postmasters_under(d.data_dir)) == 1

    # SIGTERM stops every instance before pgcmkd exits
    pid = inst["pid"]
    assert d.stop() == 0
    assert not alive(pid)
    assert postmasters_under(d.data_dir) == []


def spare_ready(root, kind):
    return os.path.exists(os.path.join(root, f"spare.{kind}", "data", "PG_VERSION"))


def test_kill9_of_pgcmkd_adopts_and_forgets_deleted(start_real):
    """... and the spare directories: a new server renames the ready spare into place (no copy
    on the create path) and the spare is made again; without a spare the create copies the
    template; the clusters' template has the database citus; a restart keeps finished spares,
    removes a half-made one and never adopts either as an instance."""
    d = start_real()
    root = os.path.join(d.data_dir, "pg")
    # nothing is made before the first create, which copies the template (no spare yet)
    assert not os.path.exists(os.path.join(root, "spare.server"))
    rid_copied, _n, env = cmk_server(d)
    login(d, rid_copied).close()
    r = d.delete(f"{rid_copied}?api-version={SRV_AV}")
    assert r.status_code in (200, 202, 204), r.text
    if r.status_code == 202:
        assert wait_lro(d, r)["status"] == "Succeeded"
    poll_until(lambda: spare_ready(root, "server") and spare_ready(root, "cluster"), timeout=60,
               what="the spare directories")
    # template1, template0, postgres and citus
    assert len(os.listdir(os.path.join(root, "template.cluster", "base"))) == 4
    open(os.path.join(root, "spare.server", "data", "pgcmk-test-marker"), "w").close()
    rid, _name, _env = cmk_server(d, env=env)
    # the spare became the instance's directory: the marker moved with it
    assert os.path.exists(os.path.join(instance(d, rid)["dataDirectory"], "pgcmk-test-marker"))
    poll_until(lambda: spare_ready(root, "server"), timeout=60, what="a new spare server")
    assert not os.path.exists(os.path.join(root, "spare.server", "data", "pgcmk-test-marker"))
    rid2, name2, _ = cmk_cluster(d, env=env)
    first, second = instance(d, rid), instance(d, rid2)
    # a cluster's coordinator: admin "citus" owning the database "citus", TLS under c-<name>
    assert (second["dbname"], second["adminLogin"]) == ("citus", "citus")
    conn = login(d, rid2, password=ADMIN_PASSWORD, host=f"c-{name2}.postgres.database.azure.com",
                 user="citus", dbname="citus")
    assert one(conn, "SELECT current_database(), pg_get_userbyid(datdba), rolsuper FROM "
                     "pg_database, pg_roles WHERE datname = 'citus' AND rolname = 'citus'") == (
        "citus", "citus", False)
    conn.close()
    # a half-made spare (of a killed pgcmkd) and a finished one
    poll_until(lambda: spare_ready(root, "server") and spare_ready(root, "cluster"), timeout=60,
               what="the spares made again")
    os.makedirs(os.path.join(root, "spare.cluster.tmp", "data"))
    cl_marker = os.path.join(root, "spare.cluster", "data", "pgcmk-test-marker")
    open(cl_marker, "w").close()
    # pgcmkd dies without stopping anything: the postmasters stay
    d.kill()
    assert alive(first["pid"]) and alive(second["pid"])
    # while it is down, the cluster's row goes (as if deleted then)
    db = sqlite3.connect(os.path.join(d.data_dir, "pgcmk.sqlite"))
    with db:
        db.execute("DELETE FROM pg_databases WHERE id = ? COLLATE NOCASE", (rid2,))
    db.close()
    # the next pgcmkd stops the strays, starts the server's as its own on the same port, and
    # removes the cluster's instance
    d.start()
    settle(d)
    inst = instance(d, rid)
    assert inst["state"] == "running" and inst["pid"] != first["pid"]
    assert inst["port"] == first["port"]
    assert not alive(first["pid"]) and not alive(second["pid"])
    assert not os.path.exists(second["dataDirectory"])
    assert postmasters_under(d.data_dir) == [inst["pid"]]
    login(d, rid).close()
    # the half-made spare went, the finished ones stay and are no instances (one postmaster);
    # the kept cluster spare serves the next cluster, with citus owned by its admin
    assert not os.path.exists(os.path.join(root, "spare.cluster.tmp"))
    assert os.path.exists(cl_marker)
    rid3, name3, _ = cmk_cluster(d, env=env)
    assert os.path.exists(os.path.join(instance(d, rid3)["dataDirectory"], "pgcmk-test-marker"))
    conn = login(d, rid3, password=ADMIN_PASSWORD, host=f"c-{name3}.postgres.database.azure.com",
                 user="citus", dbname="citus")
    assert one(conn, "SELECT pg_get_userbyid(datdba) FROM pg_database "
                     "WHERE datname = 'citus'") == ("citus",)
    conn.close()
