"""Byte-level replays over mutual TLS of the KMIP exchanges recorded in key-providers.md 3.6 (pg_tde's
libkmip Register/Locate/Get, PyKMIP's Activate, Get Attributes, Revoke, Destroy and three failures):
each response equals the recorded one once the Time Stamp is masked. The messages are the seeds of
the TTLV fuzz corpus (tests/fuzz/corpus/ttlv/, request then response)."""
import os

import pytest

from kmipnet import connect, kmip_daemon, kmip_port, new_client, roundtrip

CORPUS = os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "ttlv")
TIME_STAMP = bytes.fromhex("4200920900000008")


def mask(b):
    """Zeroes the value of every Time Stamp (8 bytes after its header)."""
    b = bytearray(b)
    i = b.find(TIME_STAMP)
    while i >= 0:
        b[i + 8:i + 16] = bytes(8)
        i = b.find(TIME_STAMP, i + 16)
    return bytes(b)


def pair(prefix):
    """The recorded (request, response) whose files start with prefix ("00", "06"...)."""
    names = sorted(n for n in os.listdir(CORPUS))
    req = [n for n in names if n.startswith(prefix)][0]
    resp = names[names.index(req) + 1]
    with open(os.path.join(CORPUS, req), "rb") as f:
        q = f.read()
    with open(os.path.join(CORPUS, resp), "rb") as f:
        a = f.read()
    return q, a


@pytest.fixture(scope="module")
def kd(tmp_path_factory):
    pool, d = kmip_daemon(str(tmp_path_factory.mktemp("kmip-replay")))
    d.kport = kmip_port(d)
    d.jane = new_client(d, "jane_doe")
    yield d
    problems = pool.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def send(d, req):
    f = d.jane["files"]
    with connect(d.kport, f["caCertificate"], f["certificate"], f["key"]) as s:
        return roundtrip(s, req)


def test_recorded_exchanges_replay_byte_for_byte(kd):
    # pg_tde: Register (uid 1) on one connection, Locate + Get on another, as pg_tde does
    q, a = pair("00")
    assert mask(send(kd, q)) == mask(a)
    f = kd.jane["files"]
    with connect(kd.kport, f["caCertificate"], f["certificate"], f["key"]) as s:
        for p in ("02", "04"):
            q, a = pair(p)
            assert mask(roundtrip(s, q)) == mask(a), p
    # PyKMIP's exchanges are on uid 3: two more objects of the same name (no uniqueness)
    q, _ = pair("00")
    send(kd, q)
    send(kd, q)
    with connect(kd.kport, f["caCertificate"], f["certificate"], f["key"]) as s:
        for p in ("06", "08", "14", "10", "12", "16", "18"):
            q, a = pair(p)
            got = roundtrip(s, q)
            assert mask(got) == mask(a), (p, got.hex(), a.hex())


def test_locate_of_a_name_registered_three_times_finds_all_newest_first(kd):
    q, _ = pair("02")
    got = send(kd, q)
    uid = bytes.fromhex("4200940700000001")
    # uids 2 and 1 (3 was destroyed by the replay above): two Unique Identifiers, 2 first
    first = got.find(uid)
    assert first > 0 and got[first + 8:first + 9] == b"2"
    second = got.find(uid, first + 16)
    assert second > 0 and got[second + 8:second + 9] == b"1"


def test_another_identity_finds_nothing(kd):
    other = new_client(kd, "other_client")
    f = other["files"]
    q, _ = pair("02")
    with connect(kd.kport, f["caCertificate"], f["certificate"], f["key"]) as s:
        got = roundtrip(s, q)
    assert bytes.fromhex("4200940700000001") not in got
    q, _ = pair("04")
    with connect(kd.kport, f["caCertificate"], f["certificate"], f["key"]) as s:
        got = roundtrip(s, q)
    # Operation Failed / Item Not Found
    assert bytes.fromhex("42007f050000000400000001") in got
    assert bytes.fromhex("42007e050000000400000001") in got
