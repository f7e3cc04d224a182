"""Self-managed databases whose principal key lives on pgcmk's own KMIP server: the agent talks
to the daemon's KMIP listener like any KMIP client (mutual TLS with a client certificate from
POST /emulator/kmip/clients), and the drills of the portal and the CLI (revoke, destroy, delete a
client) reach the database through the event path, without a clock advance. Access comes back
only as KMIP allows: a revoked or destroyed key never, a re-created client at the next check.
"""
import pytest

import struct

from conftest import assert_arm_error, new_name, parse_time
from kmipnet import check_response, connect, find, kmip_daemon, kmip_port, roundtrip, ttlv
from pgtools import data_url, explain, settle

DB = "/emulator/tde/databases/"
OBJ = "/emulator/kmip/objects/"


@pytest.fixture(scope="module")
def kd(tmp_path_factory):
    pool, d = kmip_daemon(str(tmp_path_factory.mktemp("tde-kmip")))
    d.kport = kmip_port(d)
    yield d
    problems = pool.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def client(d, name):
    r = d.post("/emulator/kmip/clients", json={"name": name})
    assert r.status_code in (200, 201), r.text
    return r.json()


def provider(d, c, combined=False):
    f = c["files"]
    p = {"type": "kmip", "host": "127.0.0.1", "port": d.kport, "certPath": f["certificate"],
         "keyPath": f["key"], "caPath": f["caCertificate"]}
    if combined:
        del p["certPath"]
        p["keyPath"] = f["combined"]
    return p


def new_db(d, c, key_name=None, combined=False):
    name = new_name("db")
    key_name = key_name or new_name("pg-key")
    r = d.put(DB + name, json={"keyProvider": provider(d, c, combined),
                               "principalKeyName": key_name})
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["state"] == "Ready", b
    return name, b["principalKey"]["uniqueIdentifier"]


def state(d, name):
    settle(d)
    return d.get(DB + name).json()


def rule(ex, name):
    return next(r for r in ex["rules"] if r["rule"] == name)


def test_the_agent_registers_the_key_on_pgcmk_as_the_client(kd):
    c = client(kd, new_name("jane"))
    name, uid = new_db(kd, c, key_name="pg-key-own")
    o = kd.get(OBJ + uid)
    assert o.status_code == 200, o.text
    o = o.json()
    assert o["owner"] == c["name"] and o["name"] == "pg-key-own"
    assert o["objectType"] == "SymmetricKey" and o["cryptographicLength"] == 256
    assert o["cryptographicUsageMask"] == 12 and o["state"] == "PreActive"
    # a second database on the same name uses the same key; a combined key file works
    name2, uid2 = new_db(kd, c, key_name="pg-key-own", combined=True)
    assert uid2 == uid
    owned = [x["uniqueIdentifier"] for x in
             kd.get("/emulator/kmip/objects", params={"owner": c["name"]}).json()["value"]]
    assert owned == [uid]
    assert kd.put(data_url(DB + name, "r"), json={"value": "x"}).status_code == 200
    ex = explain(kd, DB + name)
    assert ex["accessible"] and str(kd.kport) in rule(ex, "kmip-server")["detail"]


def test_revoke_reaches_the_database_without_a_clock_advance(kd):
    c = client(kd, new_name("jane"))
    name, uid = new_db(kd, c)
    assert kd.put(data_url(DB + name, "r"), json={"value": 1}).status_code == 200
    assert kd.post(OBJ + uid + "/activate").status_code == 200
    assert state(kd, name)["state"] == "Ready"
    r = kd.post(OBJ + uid + "/revoke", json={"reason": "CessationOfOperation"})
    assert r.status_code == 200, r.text
    b = state(kd, name)
    assert b["state"] == "Inaccessible" and b["reasonCode"] == "KmipKeyRevoked", b
    ex = explain(kd, DB + name)
    assert not rule(ex, "key-state")["ok"]
    assert uid in rule(ex, "key-state")["detail"] and "Deactivated" in rule(ex, "key-state")["detail"]
    assert_arm_error(kd.get(data_url(DB + name, "r")), 503, "DatabaseInaccessible")
    # a revoked key never comes back: a later check keeps the database down
    kd.clock(advance="PT2M")
    assert state(kd, name)["state"] == "Inaccessible"
    # destroy: KMIP allows it once the key is no longer active
    r = kd.post(OBJ + uid + "/destroy")
    assert r.status_code == 200, r.text
    b = state(kd, name)
    assert b["state"] == "Inaccessible"
    assert b["reasonCode"] in ("KmipKeyDestroyed", "KmipKeyNotFound"), b


def test_destroy_of_an_active_key_is_refused_and_the_database_stays(kd):
    c = client(kd, new_name("jane"))
    name, uid = new_db(kd, c)
    assert kd.post(OBJ + uid + "/activate").status_code == 200
    assert_arm_error(kd.post(OBJ + uid + "/destroy"), 409, "KmipPermissionDenied")
    assert state(kd, name)["state"] == "Ready"


def test_a_deleted_client_is_refused_and_a_new_certificate_brings_it_back(kd):
    cname = new_name("jane")
    c = client(kd, cname)
    name, uid = new_db(kd, c)
    assert kd.put(data_url(DB + name, "r"), json={"value": 7}).status_code == 200
    r = kd.delete("/emulator/kmip/clients/" + cname)
    assert r.status_code == 200, r.text
    b = state(kd, name)
    assert b["state"] == "Inaccessible" and b["reasonCode"] == "KmipCredentialsRefused", b
    ex = explain(kd, DB + name)
    assert [x["rule"] for x in ex["rules"] if not x["ok"]] == ["client-certificate", "dek"], ex
    assert c["files"]["certificate"] in rule(ex, "client-certificate")["detail"]
    assert_arm_error(kd.get(data_url(DB + name, "r")), 503, "DatabaseInaccessible")
    # the same identity gets a new certificate in the same files: its objects are its own again
    c2 = client(kd, cname)
    assert c2["files"]["certificate"] == c["files"]["certificate"]
    kd.clock(advance="PT2M")
    b = state(kd, name)
    assert b["state"] == "Ready" and b["reasonCode"] is None, b
    r = kd.get(data_url(DB + name, "r"))
    assert r.status_code == 200 and r.json()["value"] == 7


def test_a_compromised_key_is_revoked(kd):
    c = client(kd, new_name("jane"))
    name, uid = new_db(kd, c)
    r = kd.post(OBJ + uid + "/revoke", json={"reason": "KeyCompromise", "message": "leaked"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "Compromised"
    b = state(kd, name)
    assert b["state"] == "Inaccessible" and b["reasonCode"] == "KmipKeyRevoked", b
    assert "Compromised" in b["reason"] and uid in b["reason"]


def add_deactivation_date(d, c, uid, when):
    """KMIP 1.4 Add Attribute "Deactivation Date" over the listener, as the client."""
    ver = ttlv(0x420069, 1, [ttlv(0x42006A, 2, 1), ttlv(0x42006B, 2, 4)])
    hdr = ttlv(0x420077, 1, [ver, ttlv(0x42000D, 2, 1)])
    attr = ttlv(0x420008, 1, [ttlv(0x42000A, 7, b"Deactivation Date"),
                              ttlv(0x42000B, 9, struct.pack(">q", when))])
    payload = ttlv(0x420079, 1, [ttlv(0x420094, 7, uid.encode()), attr])
    bi = ttlv(0x42000F, 1, [ttlv(0x42005C, 5, 0x0D), payload])
    f = c["files"]
    with connect(d.kport, f["caCertificate"], f["certificate"], f["key"]) as s:
        items = check_response(roundtrip(s, ttlv(0x420078, 1, [hdr, bi])))
    assert find(find(items, 0x42000F), 0x42007F) == 0, items  # Result Status: Success


def test_deactivation_by_date_on_the_virtual_clock(kd):
    c = client(kd, new_name("jane"))
    name, uid = new_db(kd, c)
    assert kd.post(OBJ + uid + "/activate").status_code == 200
    now = parse_time(kd.get("/emulator/clock").json()["now"])
    add_deactivation_date(kd, c, uid, int(now.timestamp()) + 3600)
    kd.clock(advance="PT30M")
    assert state(kd, name)["state"] == "Ready"
    kd.clock(advance="PT1H")
    assert kd.get(OBJ + uid).json()["state"] == "Deactivated"
    b = state(kd, name)
    assert b["state"] == "Inaccessible" and b["reasonCode"] == "KmipKeyRevoked", b
    assert "Deactivated" in b["reason"]
