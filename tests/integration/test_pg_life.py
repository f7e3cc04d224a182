"""How the Azure resources drive their real PostgreSQL instances through their life (issue 15):
a cluster's stop stops its instance (connection refused, kept down by the supervisor and across a
restart of pgcmkd) and its start starts it; a single server's replica stop (PATCH replicationRole
None, `az postgres server replica stop`) makes a standalone, writable server in both modes; a
create whose instance cannot start fails its operation cleanly (ServerStartFailed,
DataDirectoryMountFailed: never a 500); the certificate names the FQDN the resource reports."""
import os
import shutil
import subprocess
import tempfile
from contextlib import closing

import pytest

from conftest import assert_arm_error, new_name, poll_until
from pgreal import (SERVER_PASSWORD, cmk_cluster, connect, needs_postgres, poll_connect, query,
                    real_daemon, start_real, state_of, wait_state, _psycopg2)  # noqa: F401
from pgtools import (CL_AV, SRV_AV, cluster_body, cluster_id, cmk_setup, create_server, data_url,
                     explain, get_cluster, get_server, server_body, server_id, wait_lro)


def instance(d, rid):
    return explain(d, rid)["dataPlane"]["instance"]


def refused_connection(d, rid):
    """A login attempt fails before any answer of PostgreSQL: the text of the error."""
    pg = _psycopg2()
    with pytest.raises(pg.OperationalError) as e:
        connect(d, rid, connect_timeout=3).close()
    return str(e.value)


# --- cluster stop / start ------------------------------------------------------------------------

@needs_postgres
def test_cluster_stop_stops_the_instance_until_start(start_real):
    d = start_real()
    rid, name, _env = cmk_cluster(d)
    poll_connect(d, rid).close()
    st = wait_lro(d, d.post(f"{rid}/stop?api-version={CL_AV}"))
    assert st["status"] == "Succeeded", st
    assert state_of(d, rid) == "Stopped"
    inst = instance(d, rid)
    assert inst["state"] == "stopped" and not inst.get("pid"), inst
    assert "Connection refused" in refused_connection(d, rid)
    # a stopped cluster is neither restarted nor promoted
    assert_arm_error(d.post(f"{rid}/restart?api-version={CL_AV}"), 409, "Conflict")
    # the supervisor leaves it down, and so does a restart of pgcmkd
    d.restart()
    assert state_of(d, rid) == "Stopped"
    assert instance(d, rid)["state"] == "stopped"
    assert "Connection refused" in refused_connection(d, rid)
    st = wait_lro(d, d.post(f"{rid}/start?api-version={CL_AV}"))
    assert st["status"] == "Succeeded", st
    assert state_of(d, rid) == "Ready"
    with closing(poll_connect(d, rid)) as conn:
        assert query(conn, "SELECT 1") == [(1,)]
    assert instance(d, rid)["state"] == "running"


@pytest.fixture(scope="module")
def cluster(real_daemon):
    return cmk_cluster(real_daemon)


@needs_postgres
def test_started_cluster_stays_refused_while_inaccessible(real_daemon, cluster):
    d = real_daemon
    rid, _name, env = cluster
    _rg, _mi, _oid, v, kid = env
    assert wait_lro(d, d.post(f"{rid}/stop?api-version={CL_AV}"))["status"] == "Succeeded"
    v.set_key(kid, enabled=False)
    wait_state(d, rid, "Stopped")
    assert wait_lro(d, d.post(f"{rid}/start?api-version={CL_AV}"))["status"] == "Succeeded"
    assert state_of(d, rid) == "Inaccessible"
    assert instance(d, rid)["state"] == "running"
    text = refused_connection(d, rid)
    assert ("Inaccessible" in text or "rejects connection" in text), text
    v.set_key(kid, enabled=True)
    wait_state(d, rid, "Ready")
    poll_connect(d, rid).close()


# --- single server: stop replication -------------------------------------------------------------

def stop_replication(d, repid):
    r = d.patch(f"{repid}?api-version={SRV_AV}", json={"properties": {"replicationRole": "None"}})
    assert r.status_code in (200, 202), r.text
    if r.status_code == 202:
        assert wait_lro(d, r)["status"] == "Succeeded"
    return d.get(f"{repid}?api-version={SRV_AV}").json()


def check_standalone(d, rg, name, rep, repid):
    p = get_server(d, rg, rep)["properties"]
    assert p["replicationRole"] == "None" and p["masterServerId"] == "", p
    assert p["replicaCapacity"] == 5, p
    assert get_server(d, rg, name)["properties"]["replicationRole"] == "None"
    r = d.get(f"{server_id(rg, name)}/replicas?api-version={SRV_AV}")
    assert r.status_code == 200 and r.json()["value"] == [], r.text
    # its own data: the master's rows, and writes that stay its own
    assert d.get(data_url(repid, "before")).json()["value"] == "master's"
    assert d.put(data_url(repid, "mine"), json={"value": "replica's"}).status_code == 200
    assert d.put(data_url(server_id(rg, name), "after"), json={"value": 2}).status_code == 200
    assert d.get(data_url(repid, "after")).status_code == 404
    assert d.get(data_url(server_id(rg, name), "mine")).status_code == 404
    # only Replica -> None is a change of role
    assert_arm_error(d.patch(f"{repid}?api-version={SRV_AV}",
                             json={"properties": {"replicationRole": "Replica"}}), 400,
                     "InvalidParameter")


def make_replica(d, rg):
    name, rep = new_name("pg"), new_name("pg")
    create_server(d, rg, name, server_body(identity=False))
    rid = server_id(rg, name)
    assert d.put(data_url(rid, "before"), json={"value": "master's"}).status_code == 200
    create_server(d, rg, rep, server_body("Replica", identity=False, sourceServerId=rid))
    repid = server_id(rg, rep)
    assert get_server(d, rg, name)["properties"]["replicationRole"] == "Master"
    return name, rep, repid


def test_replica_stop_makes_a_standalone_server_modeled(daemon):
    d = daemon
    rg = new_name("rg")
    assert d.put_rg(rg).status_code == 201
    name, rep, repid = make_replica(d, rg)
    assert d.get(data_url(repid, "before")).status_code == 200
    # a master is not a replica
    assert_arm_error(d.patch(f"{server_id(rg, name)}?api-version={SRV_AV}",
                             json={"properties": {"replicationRole": "None"}}), 400,
                     "InvalidParameter")
    stop_replication(d, repid)
    check_standalone(d, rg, name, rep, repid)


@needs_postgres
def test_replica_stop_promotes_the_standby_real(real_daemon):
    d = real_daemon
    rg = new_name("rg")
    assert d.put_rg(rg).status_code == 201
    name, rep, repid = make_replica(d, rg)
    with closing(poll_connect(d, repid, password=SERVER_PASSWORD)) as conn:
        assert query(conn, "SELECT pg_is_in_recovery()") == [(True,)]
    assert_arm_error(d.put(data_url(repid, "x"), json={"value": 1}), 409, "Conflict")
    stop_replication(d, repid)
    with closing(poll_connect(d, repid, password=SERVER_PASSWORD)) as conn:
        # the promotion runs on a worker after the answer
        poll_until(lambda: query(conn, "SELECT pg_is_in_recovery()") == [(False,)],
                   timeout=30, what="the former replica to leave recovery")
        query(conn, "CREATE TABLE standalone (v int)")
        query(conn, "INSERT INTO standalone VALUES (1)")
    check_standalone(d, rg, name, rep, repid)


# --- errors of a create --------------------------------------------------------------------------

@needs_postgres
def test_create_without_a_known_password_fails_cleanly(real_daemon):
    d = real_daemon
    rg, mi, _oid, _v, kid = cmk_setup(d)
    name = new_name("c")
    body = cluster_body(mi, kid)
    del body["properties"]["administratorLoginPassword"]
    r = d.put(f"{cluster_id(rg, name)}?api-version={CL_AV}", json=body)
    assert r.status_code == 201, r.text
    st = wait_lro(d, r)
    assert st["status"] == "Failed", st
    assert st["error"]["code"] == "ServerStartFailed", st
    assert "administrator password is not known" in st["error"]["message"], st
    assert get_cluster(d, rg, name)["properties"]["provisioningState"] == "Failed"
    r = d.get("/emulator/postgres/connection", params={"resourceId": cluster_id(rg, name)})
    assert r.status_code == 404, r.text


@needs_postgres
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("fusermount3") is None
                    or not os.path.exists("/dev/fuse"),
                    reason="--pg-at-rest fs needs root, /dev/fuse and fusermount3")
def test_mount_failure_fails_the_create_cleanly(start_real):
    fake = tempfile.mkdtemp(prefix="pgcmk-fakegcfs-", dir="/tmp")
    try:
        os.chmod(fake, 0o755)
        prog = os.path.join(fake, "gocryptfs")
        with open(prog, "w") as f:
            f.write("#!/bin/sh\necho 'fake gocryptfs: cannot initialise' >&2\nexit 12\n")
        os.chmod(prog, 0o755)
        d = start_real("--pg-at-rest", "fs", env={"PGCMK_PG_GOCRYPTFS": prog})
        rg, mi, _oid, _v, kid = cmk_setup(d)
        name = new_name("c")
        r = d.put(f"{cluster_id(rg, name)}?api-version={CL_AV}", json=cluster_body(mi, kid))
        assert r.status_code == 201, r.text
        st = wait_lro(d, r)
        assert st["status"] == "Failed", st
        assert st["error"]["code"] == "DataDirectoryMountFailed", st
        assert "fake gocryptfs" in st["error"]["message"], st
    finally:
        shutil.rmtree(fake, ignore_errors=True)


# --- the certificate names what the resource reports ---------------------------------------------

def served_sans(port):
    out = subprocess.run(
        ["openssl", "s_client", "-starttls", "postgres", "-connect", f"127.0.0.1:{port}"],
        input=b"", capture_output=True, timeout=20).stdout
    x = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"], input=out,
                       capture_output=True, timeout=20)
    assert x.returncode == 0, x.stderr
    return [s.strip()[4:] for s in x.stdout.decode().split("\n", 1)[1].split(",")
            if s.strip().startswith("DNS:")]


@needs_postgres
def test_certificate_names_the_reported_fqdn(real_daemon, cluster):
    d = real_daemon
    rg = new_name("rg")
    assert d.put_rg(rg).status_code == 201
    name = new_name("pg")
    create_server(d, rg, name, server_body(identity=False))
    rid = server_id(rg, name)
    fqdn = get_server(d, rg, name)["properties"]["fullyQualifiedDomainName"]
    sans = served_sans(instance(d, rid)["port"])
    assert fqdn in sans and fqdn == f"{name}.postgres.database.azure.com", sans
    assert f"{name}.postgres.database.localhost" in sans, sans
    with closing(poll_connect(d, rid, password=SERVER_PASSWORD, host=fqdn)) as conn:
        assert query(conn, "SELECT 1") == [(1,)]
    crid, cname, _env = cluster
    sn = get_cluster(d, crid.split("/")[4], cname)["properties"]["serverNames"]
    coord = [s["fullyQualifiedDomainName"] for s in sn if s["name"].endswith("-c")][0]
    sans = served_sans(instance(d, crid)["port"])
    assert coord in sans and coord == f"c-{cname}.postgres.database.azure.com", (sans, coord)
    assert f"c-{cname}.postgres.database.localhost" in sans, sans
