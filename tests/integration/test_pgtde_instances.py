"""Self-managed PostgreSQL instances (issue 16, item 1): POST /emulator/postgres/instances makes
a real instance whose login is a superuser, with pg_tde preloaded when pgcmk's emulation is
installed; the password is shown once (resetPassword makes another); list, get, restart, delete;
the connection endpoint knows the instance; the errors (bad name, exists, not found, modeled
mode) carry the Azure envelope; the instance survives a restart of pgcmkd."""
import os
from contextlib import closing

import pytest

from clitools import Cli
from conftest import assert_arm_error, new_name
from pgreal import needs_postgres, query, real_daemon, start_real  # noqa: F401

pytestmark = needs_postgres
psycopg2 = pytest.importorskip("psycopg2", reason="apt-get install python3-psycopg2")

PG_TDE_SO = "/usr/lib/postgresql/15/lib/pg_tde.so"
INSTANCES = "/emulator/postgres/instances"


def create_instance(d, name=None, **body):
    name = name or new_name("tde")
    r = d.post(INSTANCES, json={"name": name, **body})
    assert r.status_code == 201, r.text
    return r.json()


def connect_cs(cs, **kw):
    conn = psycopg2.connect(cs, connect_timeout=10, **kw)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="module")
def inst(real_daemon):
    return create_instance(real_daemon)


def test_create_answers_a_superuser_login_once(real_daemon, inst):
    d = real_daemon
    name = inst["name"]
    assert inst["id"] == f"{INSTANCES}/{name}"
    assert inst["state"] == "running" and inst["port"] > 0 and inst["port"] != 5432
    assert inst["adminLogin"] == "postgres" and len(inst["password"]) == 24
    cs = inst["connectionString"]
    assert f"password={inst['password']}" in cs and "sslmode=verify-full" in cs
    assert "host=localhost" in cs and "dbname=postgres" in cs
    assert "resetPassword" in inst["passwordNote"]
    with closing(connect_cs(cs)) as conn:
        assert query(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == \
            [(True,)]
        assert query(conn, "SHOW ssl") == [("on",)]
        libs = query(conn, "SHOW shared_preload_libraries")[0][0]
        if os.path.exists(PG_TDE_SO):
            assert "pg_tde" in libs
            assert inst["pgTde"]["library"] == "loaded"
        else:
            assert "pg_tde" not in libs and "not installed" in inst["warning"]
    # the password is in no other answer
    for r in (d.get(f"{INSTANCES}/{name}"), d.get(INSTANCES),
              d.get("/emulator/postgres/connection", params={"resourceId": inst["id"]})):
        assert r.status_code == 200, r.text
        assert inst["password"] not in r.text
    one = d.get(f"{INSTANCES}/{name}").json()
    assert one["pgTde"]["serverKey"] is None and "password" not in one
    assert [i["name"] for i in d.get(INSTANCES).json()["value"]].count(name) == 1
    c = d.get("/emulator/postgres/connection", params={"resourceId": inst["id"]}).json()
    assert c["user"] == "postgres" and c["host"] == "localhost" and c["port"] == inst["port"]


def test_reset_password_makes_another(real_daemon, inst):
    d = real_daemon
    r = d.post(f"{INSTANCES}/{inst['name']}/resetPassword")
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["password"] != inst["password"]
    with closing(connect_cs(new["connectionString"])) as conn:
        assert query(conn, "SELECT 1") == [(1,)]
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        connect_cs(inst["connectionString"])
    inst["connectionString"] = new["connectionString"]


def test_restart_keeps_the_data(real_daemon, inst):
    d = real_daemon
    with closing(connect_cs(inst["connectionString"])) as conn:
        query(conn, "CREATE TABLE IF NOT EXISTS kept(x int)")
        query(conn, "INSERT INTO kept VALUES (7)")
    r = d.post(f"{INSTANCES}/{inst['name']}/restart")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "running"
    with closing(connect_cs(inst["connectionString"])) as conn:
        assert query(conn, "SELECT x FROM kept") == [(7,)]


def test_errors(real_daemon, inst):
    d = real_daemon
    assert_arm_error(d.post(INSTANCES, json={"name": inst["name"]}), 409,
                     "PostgresInstanceExists")
    for bad in ("A-b", "-ab", "ab", "x" * 64, "a_b"):
        assert_arm_error(d.post(INSTANCES, json={"name": bad}), 400, "InvalidResourceName")
    assert_arm_error(d.post(INSTANCES, json={"name": new_name("tde"), "login": "pgcmk_agent"}),
                     400, "InvalidRequestContent")
    assert_arm_error(d.post(INSTANCES, json={"name": new_name("tde"), "login": "pg_x"}), 400,
                     "InvalidRequestContent")
    assert_arm_error(d.get(f"{INSTANCES}/nosuch"), 404, "PostgresInstanceNotFound")
    assert_arm_error(d.post(f"{INSTANCES}/nosuch/restart"), 404, "PostgresInstanceNotFound")
    assert_arm_error(d.delete(f"{INSTANCES}/nosuch"), 404, "PostgresInstanceNotFound")


def test_delete_stops_and_removes(real_daemon):
    d = real_daemon
    i = create_instance(d, login="alice")
    assert i["adminLogin"] == "alice"
    r = d.delete(f"{INSTANCES}/{i['name']}")
    assert r.status_code == 200 and r.json()["state"] == "Deleted", r.text
    assert_arm_error(d.get(f"{INSTANCES}/{i['name']}"), 404, "PostgresInstanceNotFound")
    with pytest.raises(psycopg2.OperationalError):
        connect_cs(i["connectionString"])


def test_survives_a_daemon_restart(start_real):
    d = start_real()
    i = create_instance(d)
    data_dir = d.data_dir
    d.stop()
    d2 = start_real(data_dir=data_dir)
    one = d2.get(f"{INSTANCES}/{i['name']}")
    assert one.status_code == 200, one.text
    assert one.json()["state"] == "running"
    with closing(connect_cs(i["connectionString"].replace(
            f"port={i['port']}", f"port={one.json()['port']}"))) as conn:
        assert query(conn, "SELECT 1") == [(1,)]


def test_modeled_mode_says_to_use_real_mode(daemon):
    err = assert_arm_error(daemon.post(INSTANCES, json={"name": "abc"}), 503,
                           "RealPostgresUnavailable")
    assert "--pg-mode real" in err["message"]
    assert_arm_error(daemon.get(INSTANCES), 503, "RealPostgresUnavailable")


def test_cli_postgres(real_daemon, tmp_path):
    d = real_daemon
    cli = Cli(d, str(tmp_path))
    name = new_name("tde")
    made = cli.json("postgres", "create", name)
    assert made["name"] == name and f"password={made['password']}" in made["connectionString"]
    with closing(connect_cs(made["connectionString"])) as conn:
        assert query(conn, "SELECT current_user") == [("postgres",)]
    assert name in [i["name"] for i in cli.json("postgres", "list")]
    shown = cli.json("postgres", "show", name)
    assert shown["state"] == "running" and "password" not in shown
    cs = cli.out("postgres", "connection-string", name).strip()
    assert cs == shown["connectionString"] and "password" not in cs
    assert cli.out("postgres", "connection-string", name, "--psql").strip() == shown["psql"]
    assert cli.json("postgres", "restart", name)["state"] == "running"
    new = cli.json("postgres", "reset-password", name)
    with closing(connect_cs(new["connectionString"])) as conn:
        assert query(conn, "SELECT 1") == [(1,)]
    cli.fail("postgres", "show", "nosuch", rc=3, err="PostgresInstanceNotFound")
    cli.fail("postgres", "create", "A_B", rc=1, err="InvalidResourceName")
    cli.fail("postgres", "frob", rc=2)
    assert "connection-string" in cli.out("postgres", "--help")
    assert cli.json("postgres", "delete", name)["state"] == "Deleted"


def test_portal_serves_the_instances_page(real_daemon):
    r = real_daemon.get("/portal/js/views/instances.js")
    assert r.status_code == 200 and "postgresView" in r.text
    assert 'href="#/postgres"' in real_daemon.get("/portal/").text
