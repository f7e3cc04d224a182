"""The agent as pg_tde's vault-v2 client against another Vault server (tests/integration/
vaultfake.py: a logging KV v2 server with Vault's answers, on HTTPS with a test CA): a
self-managed database whose principal key is a KV v2 secret, the exact requests pg_tde sends
(key-providers.md 4.1), and the drills. Checks run when the virtual clock passes the key-check
interval (this server makes no pgcmk events); the event path is tested against pgcmk's own Vault.
"""
import base64
import json
import os

import pytest

from conftest import assert_arm_error
from kmiptools import free_port, make_pki
from pgtools import data_url, explain, settle
from vaultfake import FakeVault

DB = "/emulator/tde/databases/"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def vault(pki):
    v = FakeVault(pki).start()
    yield v
    v.stop()


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("tok") / "token"
    p.write_text("hvs.good-token\n")
    return str(p)


def provider(vault, pki, token_file, **kw):
    p = {"type": "vault-v2", "url": vault.url, "mountPath": "secret", "tokenPath": token_file,
         "caPath": pki["ca"], "namespace": None}
    p.update(kw)
    return p


def put_db(d, name, prov, key_name):
    return d.put(DB + name, json={"keyProvider": prov, "principalKeyName": key_name})


def check_all(d):
    settle(d)
    d.clock(advance="PT2M")
    settle(d)


def rule(ex, name):
    return next(r for r in ex["rules"] if r["rule"] == name)


def state(d, name):
    return d.get(DB + name).json()


def test_put_makes_the_key_with_pg_tdes_requests(daemon, vault, pki, token_file):
    vault.log(clear=True)
    r = put_db(daemon, "vdb-new", provider(vault, pki, token_file), "pg-key-new")
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["state"] == "Ready" and b["principalKey"] == {"name": "pg-key-new",
                                                           "uniqueIdentifier": "1"}, b
    assert b["keyProvider"] == {"type": "vault-v2", "url": vault.url, "mountPath": "secret",
                                "tokenPath": token_file, "caPath": pki["ca"]}
    log = vault.log()
    assert [(q["method"], q["path"], q["query"]) for q in log] == [
        ("GET", "/v1/sys/mounts/secret", ""),
        ("GET", "/v1/secret/metadata/", "list=true"),
        ("GET", "/v1/secret/data/pg-key-new", ""),
        ("POST", "/v1/secret/data/pg-key-new", ""),
    ]
    for q in log:  # every request, GET included
        assert q["headers"]["content-type"] == "application/json", q
        assert q["headers"]["x-vault-token"] == "hvs.good-token"
        assert "x-vault-namespace" not in q["headers"]
        assert "authorization" not in q["headers"]
    body = json.loads(log[3]["body"])
    assert list(body) == ["data"] and list(body["data"]) == ["key"]
    assert len(base64.b64decode(body["data"]["key"], validate=True)) == 32
    assert vault.key_of("pg-key-new") == base64.b64decode(body["data"]["key"])
    # the modeled data plane works, and a check is a single GET of the secret
    assert daemon.put(data_url(DB + "vdb-new", "a"), json={"value": {"n": 1}}).status_code == 200
    vault.log(clear=True)
    check_all(daemon)
    assert ("GET", "/v1/secret/data/pg-key-new") in [(q["method"], q["path"]) for q in vault.log()]
    assert "POST" not in [q["method"] for q in vault.log()]
    ex = explain(daemon, DB + "vdb-new")
    assert ex["accessible"] is True and ex["keySource"] == "vault-kv", ex
    assert [x["rule"] for x in ex["rules"]][:5] == ["vault-server", "sealed", "mount", "token",
                                                    "secret"]
    assert all(x["ok"] for x in ex["rules"]), ex
    assert "secret/data/pg-key-new" in rule(ex, "secret")["detail"]
    r = daemon.get(data_url(DB + "vdb-new", "a"))
    assert r.status_code == 200 and r.json()["value"] == {"n": 1}
    # the same PUT again: 200, nothing new on the server
    r = put_db(daemon, "vdb-new", provider(vault, pki, token_file), "pg-key-new")
    assert r.status_code == 200, r.text


def test_an_existing_16_byte_key_is_used_with_a_namespace(daemon, vault, pki, token_file):
    vault.put_key("pg-key-16", bytes(range(16)), ns="team-a/")
    vault.log(clear=True)
    r = put_db(daemon, "vdb-16", provider(vault, pki, token_file, namespace="team-a/"),
               "pg-key-16")
    assert r.status_code == 201, r.text
    assert r.json()["keyProvider"]["namespace"] == "team-a/"
    log = vault.log()
    assert "POST" not in [q["method"] for q in log]
    assert all(q["headers"].get("x-vault-namespace") == "team-a/" for q in log)
    check_all(daemon)
    assert state(daemon, "vdb-16")["state"] == "Ready"


def test_kv_v1_and_other_engines_are_refused_at_put(daemon, vault, pki, token_file):
    vault.mounts["kv1"] = {"type": "kv", "version": "1"}
    vault.mounts["transit"] = {"type": "transit", "version": ""}
    e = assert_arm_error(put_db(daemon, "vdb-v1", provider(vault, pki, token_file,
                                                           mountPath="kv1"), "k"),
                         400, "VaultMountNotKv2")
    assert "'kv1'" in e["message"] and "version 1" in e["message"], e
    assert_arm_error(put_db(daemon, "vdb-v1", provider(vault, pki, token_file,
                                                       mountPath="transit"), "k"),
                     400, "VaultMountNotKv2")
    assert daemon.get(DB + "vdb-v1").status_code == 404


def test_bad_providers(daemon, vault, pki, token_file, tmp_path):
    p = provider(vault, pki, token_file)
    for bad in (dict(p, url="http://127.0.0.1:8200"), dict(p, url=5), dict(p, mountPath=""),
                dict(p, mountPath="../x"), dict(p, tokenPath=None), dict(p, caPath=3),
                dict(p, namespace=["x"]), dict(p, retries=9), dict(p, timeoutMs=0)):
        assert_arm_error(put_db(daemon, "vdb-bad", bad, "k"), 400, "VaultProviderInvalid")
    e = assert_arm_error(put_db(daemon, "vdb-bad", dict(p, tokenPath=str(tmp_path / "none")),
                                "k"), 400, "VaultTokenFileUnreadable")
    assert "none" in e["message"]
    other = make_pki(str(tmp_path / "other"))
    assert_arm_error(put_db(daemon, "vdb-bad", dict(p, caPath=other["ca"]), "k"), 400,
                     "VaultServerNotTrusted")
    bad_tok = tmp_path / "bad-token"
    bad_tok.write_text("hvs.wrong")
    e = assert_arm_error(put_db(daemon, "vdb-bad", dict(p, tokenPath=str(bad_tok)), "k"), 400,
                         "VaultPermissionDenied")
    assert "hvs.wrong" not in e["message"]
    assert daemon.get(DB + "vdb-bad").status_code == 404


def test_secret_deleted_then_restored(daemon, vault, pki, token_file):
    assert put_db(daemon, "vdb-del", provider(vault, pki, token_file),
                  "pg-key-del").status_code == 201
    assert daemon.put(data_url(DB + "vdb-del", "k"), json={"value": 1}).status_code == 200
    vault.delete_latest("pg-key-del")  # soft delete
    check_all(daemon)
    b = state(daemon, "vdb-del")
    assert b["state"] == "Inaccessible" and b["reasonCode"] == "VaultKeyNotFound", b
    ex = explain(daemon, DB + "vdb-del")
    assert ex["accessible"] is False
    assert not rule(ex, "secret")["ok"] and "pg-key-del" in rule(ex, "secret")["detail"]
    assert all(rule(ex, r)["ok"] for r in ("vault-server", "sealed", "mount", "token"))
    assert_arm_error(daemon.get(data_url(DB + "vdb-del", "k")), 503, "DatabaseInaccessible")
    vault.undelete_latest("pg-key-del")
    check_all(daemon)
    assert state(daemon, "vdb-del")["state"] == "Ready"
    versions = vault.delete_metadata("pg-key-del")  # metadata delete: every version
    check_all(daemon)
    assert state(daemon, "vdb-del")["reasonCode"] == "VaultKeyNotFound"
    # another key under the same name does not unwrap the DEK
    vault.put_key("pg-key-del", os.urandom(32))
    check_all(daemon)
    b = state(daemon, "vdb-del")
    assert b["reasonCode"] == "VaultKeyNotFound" and "does not unwrap" in b["reason"], b
    vault.restore("pg-key-del", versions)
    check_all(daemon)
    assert state(daemon, "vdb-del")["state"] == "Ready"
    r = daemon.get(data_url(DB + "vdb-del", "k"))
    assert r.status_code == 200 and r.json()["value"] == 1


def test_seal_revoke_and_mount_drills(daemon, vault, pki, token_file):
    assert put_db(daemon, "vdb-drill", provider(vault, pki, token_file),
                  "pg-key-drill").status_code == 201
    cases = [
        ("sealed", "VaultSealed", lambda: setattr(vault, "sealed", True),
         lambda: setattr(vault, "sealed", False)),
        ("token", "VaultPermissionDenied", lambda: vault.tokens.discard("hvs.good-token"),
         lambda: vault.tokens.add("hvs.good-token")),
        ("mount", "VaultMountNotFound", lambda: vault.mounts.pop("secret"),
         lambda: vault.mounts.__setitem__("secret", {"type": "kv", "version": "2"})),
        ("mount", "VaultMountNotKv2",
         lambda: vault.mounts.__setitem__("secret", {"type": "kv", "version": "1"}),
         lambda: vault.mounts.__setitem__("secret", {"type": "kv", "version": "2"})),
    ]
    for rname, code, break_it, fix_it in cases:
        break_it()
        try:
            check_all(daemon)
            b = state(daemon, "vdb-drill")
            assert b["state"] == "Inaccessible" and b["reasonCode"] == code, (code, b)
            ex = explain(daemon, DB + "vdb-drill")
            bad = [x["rule"] for x in ex["rules"][:5] if not x["ok"]]
            assert bad == [rname], (code, ex)
        finally:
            fix_it()
        check_all(daemon)
        assert state(daemon, "vdb-drill")["state"] == "Ready", code


def test_token_file_is_read_at_each_call(daemon, vault, pki, tmp_path):
    tok = tmp_path / "token"
    tok.write_text("hvs.good-token")
    assert put_db(daemon, "vdb-tok", provider(vault, pki, str(tok)),
                  "pg-key-tok").status_code == 201
    tok.write_text("hvs.rotated")
    check_all(daemon)
    assert state(daemon, "vdb-tok")["reasonCode"] == "VaultPermissionDenied"
    vault.tokens.add("hvs.rotated")
    check_all(daemon)
    assert state(daemon, "vdb-tok")["state"] == "Ready"
    tok.unlink()
    check_all(daemon)
    b = state(daemon, "vdb-tok")
    assert b["reasonCode"] == "VaultTokenFileUnreadable", b
    assert not rule(explain(daemon, DB + "vdb-tok"), "token")["ok"]


def test_outage_keeps_the_dek(daemon, pki, token_file):
    v = FakeVault(pki).start()
    try:
        assert put_db(daemon, "vdb-out", provider(v, pki, token_file),
                      "pg-key-out").status_code == 201
        assert daemon.put(data_url(DB + "vdb-out", "k"), json={"value": "v"}).status_code == 200
        v.fail = 500
        check_all(daemon)
        b = state(daemon, "vdb-out")
        assert b["state"] == "Ready" and b["reasonCode"] == "VaultServerUnreachable", b
        v.fail = None
        port = v.port
        v.stop()  # a stopped daemon on the URL
        check_all(daemon)
        b = state(daemon, "vdb-out")
        assert b["state"] == "Ready" and b["reasonCode"] == "VaultServerUnreachable", b
        ex = explain(daemon, DB + "vdb-out")
        assert ex["accessible"] is True and not rule(ex, "vault-server")["ok"]
        assert str(port) in rule(ex, "vault-server")["detail"]
        r = daemon.get(data_url(DB + "vdb-out", "k"))
        assert r.status_code == 200 and r.json()["value"] == "v"
        v.port = port
        v.start()
        check_all(daemon)
        b = state(daemon, "vdb-out")
        assert b["state"] == "Ready" and b["reasonCode"] is None, b
    finally:
        v.stop()
    e = assert_arm_error(put_db(daemon, "vdb-none", dict(provider(v, pki, token_file),
                                                         url=f"https://127.0.0.1:{free_port()}",
                                                         retries=0), "k"),
                         503, "VaultServerUnreachable")
    assert "1 attempts" in e["message"]
