"""Real PostgreSQL mode (issue 15) as a client sees it: psycopg2 logins as the admin with
verify-full (a wrong host name fails verification, a non-TLS connection is refused by pg_hba with
PostgreSQL's FATAL), the default databases, the admin is not a superuser, a password PATCH, the
connection endpoint and its errors, explain's data plane, the /emulator/data API answering the
same in modeled and real mode (rows in a real table), and delete stopping and removing the
instance."""
import os
import shutil
import subprocess
from contextlib import closing

import pytest

from clitools import Cli
from conftest import assert_arm_error, new_name, poll_until
from pgreal import (ADMIN_PASSWORD, SERVER_PASSWORD, cmk_cluster, connect, connection,
                    needs_postgres, poll_connect, query, real_daemon, state_of)  # noqa: F401
from pgtools import (CL_AV, SRV_AV, cluster_id, cmk_setup, create_cluster, create_server, data_url,
                     explain, server_body, server_id, settle, wait_lro)

pytestmark = needs_postgres
psycopg2 = pytest.importorskip("psycopg2", reason="apt-get install python3-psycopg2")


@pytest.fixture(scope="module")
def env(real_daemon):
    return cmk_setup(real_daemon)


@pytest.fixture(scope="module")
def cluster(real_daemon, env):
    rid, name, _ = cmk_cluster(real_daemon, env)
    return rid, name


@pytest.fixture(scope="module")
def server(real_daemon, env):
    """A single server with a service-managed key (tests that change it change it back)."""
    return plain_server(real_daemon, env[0])


def plain_server(d, rg, name=None, **props):
    """A single server with a service-managed key (no key check to wait for)."""
    name = name or new_name("pg")
    create_server(d, rg, name, server_body(**props))
    return server_id(rg, name), name


# --- the connection endpoint ---------------------------------------------------------------------

def test_connection_endpoint_describes_a_verified_connection(real_daemon, cluster):
    d = real_daemon
    rid, name = cluster
    c = connection(d, rid)
    assert set(c) == {"connectionString", "host", "hostaddr", "port", "user", "dbname", "sslmode",
                      "sslrootcert", "psql"}, c
    assert c["host"] == f"c-{name}.postgres.database.azure.com"
    assert c["hostaddr"] == "127.0.0.1" and c["sslmode"] == "verify-full"
    assert c["user"] == "citus" and c["dbname"] == "citus"
    assert isinstance(c["port"], int) and c["port"] > 0 and c["port"] != 5432
    assert os.path.isabs(c["sslrootcert"])
    assert os.path.realpath(c["sslrootcert"]) == os.path.realpath(d.ca)
    assert c["connectionString"] == (
        f"host={c['host']} hostaddr=127.0.0.1 port={c['port']} user=citus dbname=citus "
        f"sslmode=verify-full sslrootcert={c['sslrootcert']}")
    assert c["psql"] == f"psql '{c['connectionString']}'"
    assert ADMIN_PASSWORD not in str(c) and "password" not in c["connectionString"]


def test_connection_endpoint_errors(real_daemon, cluster):
    d = real_daemon
    assert_arm_error(d.get("/emulator/postgres/connection"), 400, "InvalidQueryParameter")
    assert_arm_error(d.get("/emulator/postgres/connection", params={"resourceId": ""}), 400,
                     "InvalidQueryParameter")
    rid = cluster[0]
    err = assert_arm_error(d.get("/emulator/postgres/connection",
                                 params={"resourceId": rid + "-nope"}), 404, "ResourceNotFound")
    assert rid + "-nope" in err["message"]
    assert_arm_error(d.get("/emulator/postgres/connection", params={"resourceId": "x" * 5000}),
                     404, "ResourceNotFound")


def test_connection_endpoint_in_modeled_mode_is_not_found(daemon):
    rg = new_name("rg")
    assert daemon.put_rg(rg).status_code in (200, 201)
    rid, _ = plain_server(daemon, rg)
    err = assert_arm_error(daemon.get("/emulator/postgres/connection",
                                      params={"resourceId": rid}), 404, "ResourceNotFound")
    assert "--pg-mode real" in err["message"]
    ex = explain(daemon, rid)
    assert ex["dataPlane"]["mode"] == "modeled" and ex["dataPlane"]["instance"] is None


# --- logging in ------------------------------------------------------------------------------------

def test_admin_logs_in_with_verify_full_and_is_not_superuser(real_daemon, cluster):
    d = real_daemon
    rid, _ = cluster
    with closing(poll_connect(d, rid)) as conn:
        user, db, sup, ssl = query(conn, "SELECT current_user, current_database(), "
                                         "(SELECT rolsuper FROM pg_roles WHERE rolname = "
                                         "current_user), (SELECT ssl FROM pg_stat_ssl WHERE pid "
                                         "= pg_backend_pid())")[0]
        assert (user, db, sup, ssl) == ("citus", "citus", False, True)
        assert query(conn, "SELECT rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = "
                           "current_user")[0] == (True, True)
        with pytest.raises(psycopg2.Error) as e:
            query(conn, "ALTER SYSTEM SET work_mem = '8MB'")
        assert e.value.pgcode == "42501", e.value  # insufficient_privilege


@pytest.mark.parametrize("kw, texts", [
    # verify-full checks the certificate's names against host=
    ({"host": "someone-else.postgres.database.azure.com"}, ["does not match host name"]),
    # non-TLS: pg_hba's hostnossl reject, PostgreSQL's own FATAL
    ({"sslmode": "disable"}, ["FATAL", "pg_hba.conf rejects connection", "no encryption"]),
    ({"password": "not-the-password"}, ['password authentication failed for user "citus"']),
], ids=["wrong-host", "no-tls", "wrong-password"])
def test_bad_connections_refused(real_daemon, cluster, kw, texts):
    with pytest.raises(psycopg2.OperationalError) as e:
        connect(real_daemon, cluster[0], **kw)
    for t in texts:
        assert t in str(e.value), e.value


def test_server_default_database_and_password_patch(real_daemon, server):
    d = real_daemon
    rid, name = server
    c = connection(d, rid)
    assert (c["user"], c["dbname"]) == ("pgadmin", "postgres")
    assert c["host"] == f"{name}.postgres.database.azure.com"
    with closing(poll_connect(d, rid, password=SERVER_PASSWORD)) as conn:
        assert query(conn, "SELECT current_user, current_database(), (SELECT rolsuper FROM "
                           "pg_roles WHERE rolname = current_user)")[0] == ("pgadmin", "postgres",
                                                                             False)
    new = "N3w-Passw0rd!x"
    r = d.patch(f"{rid}?api-version={SRV_AV}",
                json={"properties": {"administratorLoginPassword": new}})
    assert r.status_code == 200, r.text
    with pytest.raises(psycopg2.OperationalError) as e:
        connect(d, rid, password=SERVER_PASSWORD)
    assert "password authentication failed" in str(e.value)
    with closing(connect(d, rid, password=new)) as conn:
        assert query(conn, "SELECT 1")[0] == (1,)
    assert new not in d.get(f"{rid}?api-version={SRV_AV}").text
    r = d.patch(f"{rid}?api-version={SRV_AV}",  # back, for the other tests
                json={"properties": {"administratorLoginPassword": SERVER_PASSWORD}})
    assert r.status_code == 200, r.text


def test_cluster_password_patch(real_daemon, cluster):
    d = real_daemon
    rid, _ = cluster
    for old, new in ((ADMIN_PASSWORD, "An0ther-Passw0rd"), ("An0ther-Passw0rd", ADMIN_PASSWORD)):
        r = d.patch(f"{rid}?api-version={CL_AV}",
                    json={"properties": {"administratorLoginPassword": new}})
        assert r.status_code in (200, 202), r.text
        assert new not in r.text
        with pytest.raises(psycopg2.OperationalError) as e:
            connect(d, rid, password=old)
        assert "password authentication failed" in str(e.value)
        with closing(connect(d, rid, password=new)) as conn:
            assert query(conn, "SELECT current_user")[0] == ("citus",)


# --- explain and the data plane ---------------------------------------------------------------------

def test_explain_says_real_and_names_the_instance(real_daemon, cluster):
    rid, _ = cluster
    dp = explain(real_daemon, rid)["dataPlane"]
    assert dp["mode"] == "real", dp
    inst = dp["instance"]
    assert inst["mode"] == "real" and inst["state"] == "running", inst
    assert inst["port"] == connection(real_daemon, rid)["port"]
    assert "worker nodes stay modeled" in dp["text"] and "Citus" in dp["text"]


@pytest.fixture(params=["modeled", "real"])
def any_mode(request, daemon, real_daemon):
    """A database of either mode: (daemon, resource id)."""
    d = daemon if request.param == "modeled" else real_daemon
    rg = new_name("rg")
    assert d.put_rg(rg).status_code in (200, 201)
    rid, _ = plain_server(d, rg)
    settle(d)
    return d, rid


def test_data_api_answers_the_same_in_both_modes(any_mode):
    d, rid = any_mode
    r = d.put(data_url(rid, "b"), json={"value": {"item": "widget", "qty": 3}})
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["key"] == "b" and first["value"] == {"item": "widget", "qty": 3}
    assert isinstance(first["seq"], int) and first["writtenAt"].endswith("Z")
    r = d.put(data_url(rid, "a"), json={"value": [1, "two", None]})
    assert r.status_code == 200, r.text
    r = d.put(data_url(rid, "b"), json={"value": "again"})
    assert r.status_code == 200 and r.json()["seq"] > first["seq"], r.text
    rows = d.get(data_url(rid)).json()["value"]
    assert [(x["key"], x["value"]) for x in rows] == [("a", [1, "two", None]), ("b", "again")]
    got = d.get(data_url(rid, "b")).json()
    assert set(got) == {"key", "value", "seq", "writtenAt"} and got["value"] == "again"
    assert d.delete(data_url(rid, "b")).status_code == 204
    assert_arm_error(d.get(data_url(rid, "b")), 404, "RowNotFound")
    assert_arm_error(d.put(data_url(rid), json={"value": 1}), 405, "MethodNotAllowed")
    assert_arm_error(d.put(data_url(rid, "c"), json={"nope": 1}), 400, "InvalidRequestContent")
    assert [x["key"] for x in d.get(data_url(rid)).json()["value"]] == ["a"]


def test_data_api_rows_live_in_a_real_table(real_daemon, server):
    d = real_daemon
    rid, _ = server
    assert d.get(data_url(rid)).json() == {"value": []}  # no table yet: no rows
    assert d.put(data_url(rid, "o'1"), json={"value": {"q": 1}}).status_code == 200
    with closing(poll_connect(d, rid, password=SERVER_PASSWORD)) as conn:
        assert query(conn, "SELECT key, value->>'q' FROM pgcmk_rows") == [("o'1", "1")]
        query(conn, "INSERT INTO pgcmk_rows (key, value, written_at) VALUES "
                    "('from-sql', '\"hi\"', now())")
    assert d.get(data_url(rid, "from-sql")).json()["value"] == "hi"


def test_data_api_refuses_an_inaccessible_database(real_daemon, env, cluster):
    d = real_daemon
    rid, _ = cluster
    _rg, _mi, _oid, v, kid = env
    assert d.put(data_url(rid, "k"), json={"value": 1}).status_code == 200
    v.set_key(kid, enabled=False)
    settle(d)
    poll_until(lambda: state_of(d, rid) == "Inaccessible", timeout=20, what="Inaccessible")
    err = assert_arm_error(d.get(data_url(rid, "k")), 503, "DatabaseInaccessible")
    assert "08006" in err["message"]
    v.set_key(kid, enabled=True)
    settle(d)
    poll_until(lambda: state_of(d, rid) == "Ready", timeout=20, what="Ready again")
    assert d.get(data_url(rid, "k")).json()["value"] == 1


# --- delete -------------------------------------------------------------------------------------------

def test_delete_stops_and_removes_the_instance(real_daemon, env):
    d = real_daemon
    rid, _ = plain_server(d, env[0])
    inst = explain(d, rid)["dataPlane"]["instance"]
    pid, data = inst["pid"], inst["dataDirectory"]
    assert os.path.isdir(data) and os.path.exists(f"/proc/{pid}")
    r = d.delete(f"{rid}?api-version={SRV_AV}")
    assert r.status_code in (200, 202, 204), r.text
    poll_until(lambda: d.get(f"{rid}?api-version={SRV_AV}").status_code == 404, timeout=20,
               what="the server to be deleted")

    def gone():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return b"postgres" not in f.read()
        except OSError:
            return True
    poll_until(gone, timeout=10, what="the postmaster to exit")
    poll_until(lambda: not os.path.exists(data), timeout=10, what="the data directory to go")
    assert_arm_error(d.get("/emulator/postgres/connection", params={"resourceId": rid}), 404,
                     "ResourceNotFound")


# --- copies: replicas and restores (archive.c) ---------------------------------------------------

def test_replica_reads_streamed_rows_and_refuses_writes(real_daemon, env, cluster):
    d = real_daemon
    rid, name = cluster
    rg = env[0]
    assert d.put(data_url(rid, "streamed"), json={"value": "yes"}).status_code == 200
    rep = new_name("rr")
    create_cluster(d, rg, rep, {"location": "eastus", "properties": {"sourceResourceId": rid}})
    repid = cluster_id(rg, rep)
    assert explain(d, repid)["dataPlane"]["mode"] == "real"
    poll_until(lambda: d.get(data_url(repid, "streamed")).status_code == 200, timeout=10,
               what="the row to reach the replica")
    assert d.get(data_url(repid, "streamed")).json()["value"] == "yes"
    err = assert_arm_error(d.put(data_url(repid, "x"), json={"value": 1}), 409, "Conflict")
    assert "read-only transaction" in err["message"] and "25006" in err["message"], err
    with closing(poll_connect(d, repid)) as conn:
        assert query(conn, "SELECT pg_is_in_recovery()")[0] == (True,)
    # promote: the instance leaves recovery and takes writes
    st = wait_lro(d, d.post(f"{repid}/promote?api-version={CL_AV}"))
    assert st["status"] == "Succeeded", st
    with closing(poll_connect(d, repid)) as conn:
        assert query(conn, "SELECT pg_is_in_recovery()")[0] == (False,)
    assert d.put(data_url(repid, "x"), json={"value": 1}).status_code == 200


def test_restart_action_restarts_the_instance(real_daemon, server):
    d = real_daemon
    rid, _ = server
    pid = explain(d, rid)["dataPlane"]["instance"]["pid"]
    st = wait_lro(d, d.post(f"{rid}/restart?api-version={SRV_AV}"))
    assert st["status"] == "Succeeded", st
    inst = explain(d, rid)["dataPlane"]["instance"]
    assert inst["state"] == "running" and inst["pid"] != pid, inst
    with closing(poll_connect(d, rid, password=SERVER_PASSWORD)) as conn:
        assert query(conn, "SELECT 1")[0] == (1,)



def test_restore_reads_the_rows_of_its_point_in_time(real_daemon, env, cluster):
    d = real_daemon
    rid, _ = cluster
    rg = env[0]
    assert d.put(data_url(rid, "before"), json={"value": 1}).status_code == 200
    t = d.clock(advance="PT1M")["now"]
    d.clock(advance="PT1M")
    assert d.put(data_url(rid, "after"), json={"value": 2}).status_code == 200
    new = new_name("pitr")
    create_cluster(d, rg, new, {"location": "eastus",
                                "properties": {"sourceResourceId": rid, "pointInTimeUTC": t}})
    keys = [r["key"] for r in d.get(data_url(cluster_id(rg, new))).json()["value"]]
    assert "before" in keys and "after" not in keys, keys


# --- the CLI ---------------------------------------------------------------------------------------

def test_cli_connection_string(real_daemon, env, cluster, server, tmp_path):
    d = real_daemon
    rid, name = cluster
    cli = Cli(d, str(tmp_path))
    c = connection(d, rid)
    assert cli.out("cluster", "connection-string", name, "-g", env[0]) == \
        c["connectionString"] + "\n"
    assert cli.out("cluster", "connection-string", "--ids", rid, "--psql") == c["psql"] + "\n"
    srid, sname = server
    assert cli.out("server", "connection-string", "-n", sname, "-g", env[0]) == \
        connection(d, srid)["connectionString"] + "\n"
    psql = shutil.which("psql")
    if psql:  # the printed string works as written (the password from the environment)
        r = subprocess.run([psql, connection(d, srid)["connectionString"], "-XAtc",
                            "SELECT current_user"], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, PGPASSWORD=SERVER_PASSWORD))
        assert (r.returncode, r.stdout) == (0, "pgadmin\n"), r.stderr
    cli.fail("cluster", "connection-string", "a", "b", "-g", env[0], rc=2,
             err="unrecognized arguments: b")
    cli.fail("cluster", "connection-string", name + "-nope", "-g", env[0], rc=3,
             err="ResourceNotFound")

