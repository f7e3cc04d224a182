"""Real PostgreSQL mode: the supervisor (src/pg/pg.c, instance.c). A CMK single server gets its
own PostgreSQL 15 instance: TLS under pgcmk's CA on its own port, the admin logs in with SCRAM,
non-TLS is refused. A crashed postmaster is started again (and counted); a kill -9 of pgcmkd
leaves instances that the next pgcmkd stops and starts as its own; SIGTERM stops them all;
--pg-ports and --pg-max-instances hold."""
import os
import signal

import pytest

from conftest import poll_until
from pgreal import (SERVER_PASSWORD, _psycopg2, cmk_server, needs_postgres,  # noqa: F401
                    postmasters_under, start_real)
from pgtools import create_server, explain, settle

pytestmark = needs_postgres


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
    d = start_real("--pg-ports", "55290-55299")
    rid, name, _env = cmk_server(d)
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

    # SIGTERM stops every instance before pgcmkd exits
    pid = inst["pid"]
    assert d.stop() == 0
    assert not alive(pid)
    assert postmasters_under(d.data_dir) == []


def test_kill9_of_pgcmkd_adopts_and_deleted_while_down(start_real):
    d = start_real()
    rid, _name, env = cmk_server(d)
    rid2, _n2, _ = cmk_server(d, env=env)
    first = instance(d, rid)
    second = instance(d, rid2)
    # pgcmkd dies without stopping anything: the postmasters stay
    d.kill()
    assert alive(first["pid"]) and alive(second["pid"])
    # the next pgcmkd stops them and starts them as its own, on the same ports
    d.start()
    settle(d)
    inst = instance(d, rid)
    assert inst["state"] == "running" and inst["pid"] != first["pid"]
    assert inst["port"] == first["port"]
    assert not alive(first["pid"])
    login(d, rid).close()
    # a server deleted while pgcmkd is down loses its instance at the next start
    r = d.delete(f"{rid2}?api-version=2017-12-01")
    assert r.status_code in (200, 202, 204), r.text
    poll_until(lambda: d.get(f"{rid2}?api-version=2017-12-01").status_code == 404, timeout=20,
               what="the server to be deleted")
    assert not os.path.exists(second["dataDirectory"])
    assert len(postmasters_under(d.data_dir)) == 1


def test_max_instances(start_real):
    d = start_real("--pg-max-instances", "1")
    rid, _name, env = cmk_server(d)
    assert instance(d, rid)["state"] == "running"
    # the second create's operation fails with the cap's error; nothing is left running for it
    st = create_server(d, env[0], "over-cap", expect="Failed")
    assert st["error"]["code"] == "RealPostgresInstanceLimit", st
    assert "--pg-max-instances 1" in st["error"]["message"], st
    assert len(postmasters_under(d.data_dir)) == 1
