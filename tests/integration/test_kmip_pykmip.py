"""The real PyKMIP client (kmip.pie.client.ProxyKmipClient, Debian's python3-pykmip) against pgcmk's
KMIP server: every operation it offers, the state machine on the virtual clock, every refusal with
its Result Reason, and the emulator's view (/emulator/kmip/objects, actions, events, Activity Log)."""
import datetime
import struct

import pytest

from kmipnet import connect, kmip_daemon, kmip_port, new_client, parse, find, roundtrip, ttlv

from kmip.core import enums
from kmip.core.factories.attributes import AttributeFactory
from kmip.pie import exceptions, objects
from kmip.pie.client import ProxyKmipClient

AF = AttributeFactory()
SUB = "00000000-0000-4000-8000-000000000001"


@pytest.fixture(scope="module")
def kd(tmp_path_factory):
    pool, d = kmip_daemon(str(tmp_path_factory.mktemp("kmip-pykmip")))
    d.kport = kmip_port(d)
    d.jane = new_client(d, "jane_doe")
    d.other = new_client(d, "other_client")
    yield d
    problems = pool.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def client(d, who=None):
    f = (who or d.jane)["files"]
    c = ProxyKmipClient(hostname="127.0.0.1", port=d.kport, cert=f["certificate"], key=f["key"],
                        ca=f["caCertificate"], config_file="/dev/null")
    c.open()
    return c


def key32():
    return bytes(range(32))


def failure(fn, *args, **kw):
    with pytest.raises(exceptions.KmipOperationFailure) as e:
        fn(*args, **kw)
    assert e.value.status == enums.ResultStatus.OPERATION_FAILED
    return e.value


def state(c, uid):
    _, attrs = c.get_attributes(uid, ["State"])
    return attrs[0].attribute_value.value


def test_register_locate_get_lifecycle(kd):
    c = client(kd)
    try:
        sk = objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, key32(),
                                  masks=[enums.CryptographicUsageMask.ENCRYPT,
                                         enums.CryptographicUsageMask.DECRYPT],
                                  name="pgtde-py-key")
        uid = c.register(sk)
        assert uid.isdigit()
        uid2 = c.register(objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, key32(),
                                               name="pgtde-py-key"))
        # the same name twice: two objects, newest first
        found = c.locate(attributes=[AF.create_attribute(enums.AttributeType.NAME,
                                                         "pgtde-py-key")])
        assert found == [uid2, uid]
        assert c.locate(maximum_items=1, attributes=[
            AF.create_attribute(enums.AttributeType.NAME, "pgtde-py-key")]) == [uid2]
        # Get works on a Pre-Active key
        k = c.get(uid)
        assert k.value == key32() and k.cryptographic_length == 256
        assert state(c, uid) == enums.State.PRE_ACTIVE
        got_uid, attrs = c.get_attributes(uid)
        names = {a.attribute_name.value for a in attrs}
        assert got_uid == uid
        assert {"Unique Identifier", "Name", "Object Type", "Cryptographic Algorithm",
                "Cryptographic Length", "Cryptographic Usage Mask", "State",
                "Initial Date"} <= names
        assert "State" in c.get_attribute_list(uid)
        c.activate(uid)
        assert state(c, uid) == enums.State.ACTIVE
        e = failure(c.destroy, uid)
        assert e.reason == enums.ResultReason.PERMISSION_DENIED
        assert "active and cannot be destroyed" in e.message
        e = failure(c.activate, uid)
        assert e.reason == enums.ResultReason.PERMISSION_DENIED
        c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
        assert state(c, uid) == enums.State.DEACTIVATED
        c.destroy(uid)
        e = failure(c.get, uid)
        assert e.reason == enums.ResultReason.ITEM_NOT_FOUND
        assert c.locate(attributes=[AF.create_attribute(enums.AttributeType.NAME,
                                                        "pgtde-py-key")]) == [uid2]
        # the portal still sees it, destroyed
        o = kd.get(f"/emulator/kmip/objects/{uid}").json()
        assert o["state"] == "Destroyed" and o["owner"] == "jane_doe"
        assert o["revocationReason"]["code"] == "CessationOfOperation"
        assert "destroyDate" in o and o["name"] == "pgtde-py-key"
    finally:
        c.close()


def test_create_each_aes_length_and_refusals(kd):
    c = client(kd)
    try:
        for bits in (128, 192, 256):
            uid = c.create(enums.CryptographicAlgorithm.AES, bits, name=f"created-{bits}")
            assert len(c.get(uid).value) == bits // 8
        e = failure(c.create, enums.CryptographicAlgorithm.AES, 100)
        assert e.reason == enums.ResultReason.INVALID_FIELD
        e = failure(c.create, enums.CryptographicAlgorithm.RSA, 2048)
        assert e.reason == enums.ResultReason.INVALID_FIELD
        e = failure(c.get, "9999")
        assert e.reason == enums.ResultReason.ITEM_NOT_FOUND
        e = failure(c.revoke, enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
        assert e.reason == enums.ResultReason.ILLEGAL_OPERATION  # Pre-Active
    finally:
        c.close()


def test_another_identity_sees_nothing(kd):
    c = client(kd)
    try:
        uid = c.create(enums.CryptographicAlgorithm.AES, 256, name="private-key")
    finally:
        c.close()
    o = client(kd, kd.other)
    try:
        e = failure(o.get, uid)
        assert e.reason == enums.ResultReason.ITEM_NOT_FOUND
        assert o.locate(attributes=[AF.create_attribute(enums.AttributeType.NAME,
                                                        "private-key")]) == []
        e = failure(o.destroy, uid)
        assert e.reason == enums.ResultReason.ITEM_NOT_FOUND
    finally:
        o.close()


def test_compromise_and_rekey(kd):
    c = client(kd)
    try:
        uid = c.create(enums.CryptographicAlgorithm.AES, 256, name="rotating")
        c.activate(uid)
        new = c.rekey(uid=uid, offset=0)
        assert new != uid
        assert c.locate(attributes=[AF.create_attribute(enums.AttributeType.NAME,
                                                        "rotating")]) == [new]
        assert c.get(new).value != c.get(uid).value
        # PyKMIP's client cannot decode a Link value (NotImplementedError): only its name
        assert "Link" in c.get_attribute_list(new) and "Link" in c.get_attribute_list(uid)
        assert "Name" not in c.get_attribute_list(uid)  # the names moved to the new key
        when = datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)
        c.revoke(enums.RevocationReasonCode.KEY_COMPROMISE, uid,
                 compromise_occurrence_date=int(when.timestamp()))
        assert state(c, uid) == enums.State.COMPROMISED
        o = kd.get(f"/emulator/kmip/objects/{uid}").json()
        assert o["state"] == "Compromised"
        assert o["compromiseOccurrenceDate"].startswith("2026-01-02T00:00:00")
        c.destroy(uid)
        assert kd.get(f"/emulator/kmip/objects/{uid}").json()["state"] == "DestroyedCompromised"
    finally:
        c.close()


def test_deactivation_date_on_the_virtual_clock(kd):
    c = client(kd)
    try:
        uid = c.create(enums.CryptographicAlgorithm.AES, 128, name="dated")
        c.activate(uid)
    finally:
        c.close()
    now = kd.get("/emulator/clock").json()["now"]
    t = int(datetime.datetime.fromisoformat(now.replace("Z", "+00:00")).timestamp()) + 3600
    # Add Attribute Deactivation Date (KMIP 1.2, raw TTLV: PyKMIP's client has no Add Attribute)
    value = struct.pack(">q", t)
    attr = ttlv(0x420008, 1, [ttlv(0x42000A, 7, b"Deactivation Date"),
                              b"\x42\x00\x0b\x09\x00\x00\x00\x08" + value])
    payload = ttlv(0x420079, 1, [ttlv(0x420094, 7, uid.encode()), attr])
    ver = ttlv(0x420069, 1, [ttlv(0x42006A, 2, 1), ttlv(0x42006B, 2, 2)])
    msg = ttlv(0x420078, 1, [ttlv(0x420077, 1, [ver, ttlv(0x42000D, 2, 1)]),
                             ttlv(0x42000F, 1, [ttlv(0x42005C, 5, 0x0D), payload])])
    f = kd.jane["files"]
    with connect(kd.kport, f["caCertificate"], f["certificate"], f["key"]) as s:
        top = parse(roundtrip(s, msg))
    assert find(find(top[0][2], 0x42000F), 0x42007F) == 0, top
    assert kd.get(f"/emulator/kmip/objects/{uid}").json()["state"] == "Active"
    kd.clock(advance="PT2H")
    o = kd.get(f"/emulator/kmip/objects/{uid}").json()
    assert o["state"] == "Deactivated" and "deactivationDate" in o
    c = client(kd)
    try:
        assert state(c, uid) == enums.State.DEACTIVATED
    finally:
        c.close()


def test_rest_actions_and_activity_log(kd):
    c = client(kd)
    try:
        uid = c.create(enums.CryptographicAlgorithm.AES, 256, name="portal-key")
    finally:
        c.close()
    r = kd.post(f"/emulator/kmip/objects/{uid}/activate")
    assert r.status_code == 200 and r.json()["state"] == "Active", r.text
    r = kd.post(f"/emulator/kmip/objects/{uid}/destroy")
    assert r.status_code == 409 and r.json()["error"]["code"] == "KmipPermissionDenied"
    r = kd.post(f"/emulator/kmip/objects/{uid}/revoke", json={"reason": "Bogus"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "KmipInvalidRevocationReason"
    r = kd.post(f"/emulator/kmip/objects/{uid}/revoke",
                json={"reason": "Superseded", "message": "rotated"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "Deactivated"
    assert body["revocationReason"] == {"code": "Superseded", "message": "rotated"}
    r = kd.post(f"/emulator/kmip/objects/{uid}/destroy")
    assert r.status_code == 200 and r.json()["state"] == "Destroyed"
    assert kd.get("/emulator/kmip/objects/424242").status_code == 404
    mine = kd.get("/emulator/kmip/objects?owner=jane_doe").json()["value"]
    assert mine and all(o["owner"] == "jane_doe" for o in mine)
    assert [int(o["uniqueIdentifier"]) for o in mine] == \
        sorted((int(o["uniqueIdentifier"]) for o in mine), reverse=True)
    assert kd.get("/emulator/kmip/objects?owner=nobody").json()["value"] == []
    # the Activity Log has the revoke and the destroy of this object
    rid = f"/subscriptions/{SUB}/providers/pgcmk.Kmip/clients/jane_doe/objects/{uid}"
    r = kd.get(f"/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values",
               params={"api-version": "2015-04-01",
                       "$filter": "eventTimestamp ge '2000-01-01T00:00:00Z' and "
                                  f"resourceUri eq '{rid}'"})
    assert r.status_code == 200, r.text
    ops = {e["operationName"]["value"] for e in r.json()["value"]}
    assert {"pgcmk.Kmip/objects/revoke/action", "pgcmk.Kmip/objects/destroy/action",
            "pgcmk.Kmip/objects/activate/action"} <= ops, ops


def test_objects_survive_a_restart_and_dates_still_apply(tmp_path):
    pool, d = kmip_daemon(str(tmp_path))
    try:
        d.kport = kmip_port(d)
        d.jane = new_client(d, "jane_doe")
        c = client(d)
        try:
            uid = c.register(objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 128,
                                                  bytes(range(16)), name="kept"))
            c.activate(uid)
        finally:
            c.close()
        r = d.post(f"/emulator/kmip/objects/{uid}/revoke", json={"reason": "KeyCompromise"})
        assert r.status_code == 200, r.text
        d.restart()
        d.kport = kmip_port(d)
        o = d.get(f"/emulator/kmip/objects/{uid}").json()
        assert o["state"] == "Compromised" and o["name"] == "kept", o
        c2 = client(d)
        try:
            assert c2.get(uid).value == bytes(range(16))
            assert c2.locate(attributes=[AF.create_attribute(enums.AttributeType.NAME,
                                                             "kept")]) == [uid]
            # uids go on after the restart
            other = c2.create(enums.CryptographicAlgorithm.AES, 128)
            assert int(other) == int(uid) + 1
        finally:
            c2.close()
    finally:
        problems = pool.finish()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)
