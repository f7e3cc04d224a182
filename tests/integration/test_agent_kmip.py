"""The agent as a KMIP client against the real PyKMIP server (Debian's /usr/bin/pykmip-server):
self-managed databases (/emulator/tde/databases) whose principal key lives on PyKMIP, the
reconciler's "kmip" key-source row, explain, and the modeled data plane.

PyKMIP's own client (kmiptools.pykmip) checks what the agent did on the server and drives the
drills (activate, revoke, destroy). Checks run when the virtual clock passes the key-check
interval (PT60S by default) and POST /emulator/settle says they finished.
"""
import socket
import time

import pytest

from conftest import assert_arm_error
from kmiptools import PyKmipServer, free_port, make_pki, pykmip
from pgtools import data_url, explain, settle

DB = "/emulator/tde/databases/"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def kmip(tmp_path_factory, pki):
    srv = PyKmipServer(str(tmp_path_factory.mktemp("kmip")), pki).start()
    yield srv
    srv.stop()


def put_db(d, name, provider, key_name):
    return d.put(DB + name, json={"keyProvider": provider, "principalKeyName": key_name})


def check_all(d):
    """Lets the periodic key check come due and waits until it finished."""
    settle(d)
    d.clock(advance="PT2M")
    settle(d)


def rule(ex, name):
    return next(r for r in ex["rules"] if r["rule"] == name)


def test_put_registers_a_new_key_on_pykmip(daemon, kmip):
    r = put_db(daemon, "db-new", kmip.provider(), "pg-key-new")
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["id"] == DB + "db-new" and b["name"] == "db-new"
    assert b["state"] == "Ready" and b["reasonCode"] is None
    uid = b["principalKey"]["uniqueIdentifier"]
    assert b["principalKey"]["name"] == "pg-key-new"
    assert b["keyProvider"]["port"] == kmip.port and b["keyProvider"]["type"] == "kmip"
    # PyKMIP's own client sees the key the agent registered: one object, 32 bytes, by that name
    assert pykmip(kmip, "locate", name="pg-key-new") == [uid]
    assert len(bytes.fromhex(pykmip(kmip, "get", uid=uid))) == 32
    # the same PUT again changes nothing
    r = put_db(daemon, "db-new", kmip.provider(), "pg-key-new")
    assert r.status_code == 200 and r.json()["principalKey"]["uniqueIdentifier"] == uid
    assert pykmip(kmip, "locate", name="pg-key-new") == [uid]
    # another key name on an existing database is refused
    assert_arm_error(put_db(daemon, "db-new", kmip.provider(), "other"), 400,
                     "DataEncryptionUpdateNotSupported")
    r = daemon.get(DB + "db-new")
    assert r.status_code == 200 and r.json()["state"] == "Ready"
    names = [x["name"] for x in daemon.get("/emulator/tde/databases").json()["value"]]
    assert "db-new" in names
    # the modeled data plane works on it, and a check keeps it Ready
    r = daemon.put(data_url(DB + "db-new", "a"), json={"value": {"n": 1}})
    assert r.status_code == 200, r.text
    check_all(daemon)
    r = daemon.get(data_url(DB + "db-new", "a"))
    assert r.status_code == 200 and r.json()["value"] == {"n": 1}
    ex = explain(daemon, DB + "db-new")
    assert ex["accessible"] is True and ex["keySource"] == "kmip" and ex["kind"] == "tde"
    assert ex["principalKey"] == {"name": "pg-key-new", "uniqueIdentifier": uid}
    assert all(x["ok"] for x in ex["rules"]), ex
    assert uid in rule(ex, "key-state")["detail"] and "Pre-Active" in rule(ex, "key-state")["detail"]


def test_an_existing_key_is_used_and_a_combined_key_file_works(daemon, kmip):
    uid = pykmip(kmip, "register", name="pg-key-16", material="00112233445566778899aabbccddeeff")
    r = put_db(daemon, "db-existing", kmip.provider(combined=True), "pg-key-16")
    assert r.status_code == 201, r.text
    assert r.json()["principalKey"]["uniqueIdentifier"] == uid
    assert "certPath" not in r.json()["keyProvider"]
    assert pykmip(kmip, "locate", name="pg-key-16") == [uid]  # nothing new registered


def test_two_keys_with_one_name_are_refused(daemon, kmip):
    pykmip(kmip, "register", name="pg-key-dup")
    pykmip(kmip, "register", name="pg-key-dup")
    r = put_db(daemon, "db-dup", kmip.provider(), "pg-key-dup")
    e = assert_arm_error(r, 409, "KmipKeyAmbiguous")
    assert "pg-key-dup" in e["message"]
    assert daemon.get(DB + "db-dup").status_code == 404


def test_revoked_key_makes_the_database_inaccessible(daemon, kmip):
    r = put_db(daemon, "db-revoke", kmip.provider(), "pg-key-revoke")
    assert r.status_code == 201, r.text
    uid = r.json()["principalKey"]["uniqueIdentifier"]
    assert daemon.put(data_url(DB + "db-revoke", "k"), json={"value": 1}).status_code == 200
    pykmip(kmip, "activate", uid=uid)
    check_all(daemon)
    assert daemon.get(DB + "db-revoke").json()["state"] == "Ready"
    pykmip(kmip, "revoke", uid=uid)
    check_all(daemon)
    b = daemon.get(DB + "db-revoke").json()
    assert b["state"] == "Inaccessible" and b["reasonCode"] == "KmipKeyRevoked", b
    assert uid in b["reason"] and "Deactivated" in b["reason"]
    ex = explain(daemon, DB + "db-revoke")
    assert ex["accessible"] is False and ex["reasonCode"] == "KmipKeyRevoked"
    failing = [x["rule"] for x in ex["rules"] if not x["ok"]]
    assert failing == ["key-state", "dek"], ex
    assert uid in rule(ex, "key-state")["detail"]
    assert rule(ex, "kmip-server")["ok"] and rule(ex, "client-certificate")["ok"]
    # the data plane refuses it
    assert_arm_error(daemon.get(data_url(DB + "db-revoke", "k")), 503, "DatabaseInaccessible")
    assert_arm_error(daemon.put(data_url(DB + "db-revoke", "x"), json={"value": 2}), 503,
                     "DatabaseInaccessible")


def test_destroyed_key_is_not_found(daemon, kmip):
    r = put_db(daemon, "db-destroy", kmip.provider(), "pg-key-destroy")
    assert r.status_code == 201, r.text
    uid = r.json()["principalKey"]["uniqueIdentifier"]
    pykmip(kmip, "activate", uid=uid)
    pykmip(kmip, "revoke", uid=uid)
    pykmip(kmip, "destroy", uid=uid)
    check_all(daemon)
    b = daemon.get(DB + "db-destroy").json()
    assert b["state"] == "Inaccessible" and b["reasonCode"] == "KmipKeyNotFound", b
    ex = explain(daemon, DB + "db-destroy")
    assert not rule(ex, "principal-key")["ok"] and uid in rule(ex, "principal-key")["detail"]
    assert rule(ex, "key-state")["ok"]


def test_bad_providers_and_refused_credentials(daemon, kmip, tmp_path):
    p = kmip.provider()
    assert_arm_error(put_db(daemon, "db-bad", dict(p, type="vault"), "k"), 400,
                     "KmipProviderInvalid")
    assert_arm_error(put_db(daemon, "db-bad", dict(p, port=0), "k"), 400, "KmipProviderInvalid")
    assert_arm_error(put_db(daemon, "db-bad", {k: v for k, v in p.items() if k != "caPath"}, "k"),
                     400, "KmipProviderInvalid")
    assert_arm_error(put_db(daemon, "db-bad", dict(p, keyPath=str(tmp_path / "none.pem")), "k"),
                     400, "KmipProviderInvalid")
    assert_arm_error(put_db(daemon, "bad name!", p, "k"), 400, "InvalidResourceName")
    assert_arm_error(daemon.put(DB + "db-bad", json={"keyProvider": p}), 400,
                     "InvalidRequestContent")
    # a client certificate from another CA: PyKMIP refuses it at the handshake
    other = make_pki(str(tmp_path / "other"))
    r = put_db(daemon, "db-bad", dict(p, certPath=other["client_cert"],
                                      keyPath=other["client_key"]), "k")
    e = assert_arm_error(r, 400, "KmipCredentialsRefused")
    assert other["client_cert"] in e["message"]
    # a CA file that does not vouch for the server
    r = put_db(daemon, "db-bad", dict(p, caPath=other["ca"]), "k")
    assert_arm_error(r, 400, "KmipServerNotTrusted")
    assert daemon.get(DB + "db-bad").status_code == 404
    assert_arm_error(daemon.get(DB + "nope"), 404, "DatabaseNotFound")
    assert_arm_error(daemon.delete(DB + "nope"), 404, "DatabaseNotFound")


def test_outage_keeps_the_dek_and_the_server_coming_back_clears_it(daemon, pki, tmp_path):
    srv = PyKmipServer(str(tmp_path), pki).start()
    try:
        r = put_db(daemon, "db-outage", srv.provider(), "pg-key-outage")
        assert r.status_code == 201, r.text
        assert daemon.put(data_url(DB + "db-outage", "k"), json={"value": "v"}).status_code == 200
        srv.stop()
        check_all(daemon)
        b = daemon.get(DB + "db-outage").json()
        assert b["state"] == "Ready" and b["reasonCode"] == "KmipServerUnreachable", b
        ex = explain(daemon, DB + "db-outage")
        assert ex["accessible"] is True
        assert not rule(ex, "kmip-server")["ok"]
        assert "unreachable" in rule(ex, "kmip-server")["detail"]
        assert str(srv.port) in rule(ex, "kmip-server")["detail"]
        r = daemon.get(data_url(DB + "db-outage", "k"))  # the DEK is kept: data still served
        assert r.status_code == 200 and r.json()["value"] == "v"
        srv.start()
        check_all(daemon)
        b = daemon.get(DB + "db-outage").json()
        assert b["state"] == "Ready" and b["reasonCode"] is None, b
    finally:
        srv.stop()
    r = daemon.delete(DB + "db-outage")
    assert r.status_code == 200 and r.json()["state"] == "Deleted"
    assert daemon.get(DB + "db-outage").status_code == 404


def test_a_restart_loads_the_dek_again_from_the_kmip_server(start_daemon, kmip):
    d = start_daemon()
    r = put_db(d, "db-restart", kmip.provider(), "pg-key-restart")
    assert r.status_code == 201, r.text
    assert d.put(data_url(DB + "db-restart", "k"), json={"value": [1, 2]}).status_code == 200
    d.restart()
    settle(d)
    b = d.get(DB + "db-restart").json()
    assert b["state"] == "Ready" and b["reasonCode"] is None, b
    r = d.get(data_url(DB + "db-restart", "k"))
    assert r.status_code == 200 and r.json()["value"] == [1, 2]
    assert explain(d, DB + "db-restart")["accessible"] is True


def test_a_server_that_never_answers_is_an_outage_within_the_timeout(daemon, kmip):
    # a socket that listens but never accepts: the TCP connect succeeds, the handshake times out
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        p = dict(kmip.provider(), port=silent.getsockname()[1], timeoutMs=300, retries=1)
        t0 = time.monotonic()
        r = put_db(daemon, "db-silent", p, "pg-key-silent")
        took = time.monotonic() - t0
        e = assert_arm_error(r, 503, "KmipServerUnreachable")
        assert "timed out" in e["message"] and "2 attempts" in e["message"], e
        assert took < 5, took
        assert_arm_error(put_db(daemon, "db-silent", dict(p, retries=9), "k"), 400,
                         "KmipProviderInvalid")
    finally:
        silent.close()
    # nothing listens at all: refused at once, still an outage
    p = dict(kmip.provider(), port=free_port(), retries=0)
    e = assert_arm_error(put_db(daemon, "db-silent", p, "k"), 503, "KmipServerUnreachable")
    assert "1 attempts" in e["message"]


def test_garbage_after_the_handshake_is_an_outage(daemon, kmip, pki):
    """A TLS server that answers bytes that are not KMIP (or closes before an answer)."""
    import ssl
    import threading

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server_cert"], pki["server_key"])
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    lsock.settimeout(10)
    mode = {"answer": b"HTTP/1.1 400 Bad Request\r\n\r\n"}
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True) as s:
                    s.settimeout(5)
                    s.recv(8192)
                    if mode["answer"]:
                        s.sendall(mode["answer"])
            except (OSError, ssl.SSLError):
                pass

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        p = dict(kmip.provider(), port=lsock.getsockname()[1], retries=0)
        e = assert_arm_error(put_db(daemon, "db-garbage", p, "k"), 503, "KmipServerUnreachable")
        assert "not a KMIP message" in e["message"], e
        mode["answer"] = b""  # closes without an answer
        e = assert_arm_error(put_db(daemon, "db-garbage", p, "k"), 503, "KmipServerUnreachable")
        assert "closed" in e["message"] or "reset" in e["message"].lower(), e
    finally:
        stop.set()
        lsock.close()
        th.join(timeout=10)
    assert daemon.get(DB + "db-garbage").status_code == 404
