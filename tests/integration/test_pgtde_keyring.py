"""pg_tde's keyring file as a key source (the "file" provider kind of /emulator/tde/databases,
the reconciler's "keyring-file" row): the principal key is made in the file in pg_tde's own
record format (256-byte name, 32-byte data, 4-byte length) when missing and read at each check;
a key replaced under the same name, or a file emptied, makes the database Inaccessible with its
own reason code, and putting the key back brings it back. No event reaches a file: the periodic
checks (a clock advance) find it."""
import struct

from conftest import assert_arm_error, new_name
from pgtools import explain, settle

DB = "/emulator/tde/databases/"
REC = 292


def records(path):
    data = path.read_bytes()
    assert len(data) % REC == 0, len(data)
    out = []
    for i in range(0, len(data), REC):
        r = data[i:i + REC]
        (n,) = struct.unpack("=I", r[288:])
        out.append((r[:256].split(b"\0", 1)[0].decode(), r[256:256 + n]))
    return out


def state(d, name):
    d.clock(advance="PT10M")
    settle(d)
    return d.get(DB + name).json()


def test_a_file_provider_makes_the_key_and_watches_it(daemon, tmp_path):
    ring = tmp_path / "keyring.per"
    name = new_name("db")
    prov = {"type": "file", "path": str(ring)}
    r = daemon.put(DB + name, json={"keyProvider": prov, "principalKeyName": "file-key"})
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "Ready" and r.json()["keyProvider"] == prov
    recs = records(ring)
    assert [(n, len(k)) for n, k in recs] == [("file-key", 32)]
    # a second database on the same name uses the same key (nothing appended)
    name2 = new_name("db")
    r = daemon.put(DB + name2, json={"keyProvider": prov, "principalKeyName": "file-key"})
    assert r.status_code == 201, r.text
    assert records(ring) == recs
    ex = explain(daemon, DB + name)
    assert [x["rule"] for x in ex["rules"]][:2] == ["keyring-file", "principal-key"], ex
    assert all(x["ok"] for x in ex["rules"]), ex
    # the key replaced under its name: another key
    original = ring.read_bytes()
    ring.write_bytes(original[:256] + b"\x07" * 32 + original[288:])
    b = state(daemon, name)
    assert b["state"] == "Inaccessible" and b["reasonCode"] == "TdeKeyringKeyChanged", b
    ex = explain(daemon, DB + name)
    ok = {x["rule"]: x["ok"] for x in ex["rules"]}
    assert ok["keyring-file"] and not ok["principal-key"] and not ok["dek"], ex
    # emptied: the key is missing
    ring.write_bytes(b"")
    b = state(daemon, name)
    assert b["state"] == "Inaccessible" and b["reasonCode"] == "TdeKeyringKeyNotFound", b
    # a torn record: corrupted
    ring.write_bytes(original[:100])
    b = state(daemon, name)
    assert b["state"] == "Inaccessible" and b["reasonCode"] == "TdeKeyringUnreadable", b
    assert "is corrupted" in b["reason"], b
    # the key back: Ready again
    ring.write_bytes(original)
    assert state(daemon, name)["state"] == "Ready"
    assert state(daemon, name2)["state"] == "Ready"


def test_a_file_provider_needs_a_path(daemon):
    r = daemon.put(DB + new_name("db"), json={"keyProvider": {"type": "file"},
                                              "principalKeyName": "k"})
    assert_arm_error(r, 400, "TdeFileProviderInvalid")
