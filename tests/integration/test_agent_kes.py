"""The agent as a MinIO KES client against another KES server (tests/integration/kesfake.py: a
logging KES server on HTTPS that asks for any client certificate, with KES's answers and
ciphertext format): a self-managed database whose DEK is a KES data key (generate at create,
decrypt at each key check, context = the database id), the exact requests (key-providers.md 5.1),
the API key turned into kms-go's self-signed certificate (the server sees its identity), each
classification, the outage keeping the DEK, and the API key never in an answer or the log.
Checks run when the virtual clock passes the key-check interval (this server makes no pgcmk
events); the event path is tested against pgcmk's own KES (test_tde_kes.py)."""
import base64
import hashlib
import json
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import assert_arm_error
from kesfake import FakeKes, kes_decrypt
from kmiptools import free_port, make_pki
from pgtools import data_url, explain, settle
from test_agent_vault import check_all, put_db, rule, state  # the self-managed database helpers

DB = "/emulator/tde/databases/"
API_KEY = "kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc"
IDENTITY = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"
OTHER = "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"
RULES = ["kes-server", "identity", "policy", "key", "vault", "cache", "ciphertext"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def kes(pki):
    k = FakeKes(pki).start()
    yield k
    k.stop()


def provider(kes, pki, **kw):
    p = {"type": "kes", "url": kes.url, "apiKey": API_KEY, "caPath": pki["ca"]}
    p.update(kw)
    return {k: v for k, v in p.items() if v is not None}


def no_api_key(*texts):
    for t in texts:
        assert "AD9E7FSYWrMD" not in t and "kes:v1:A" not in t, t[:300]


def test_put_generates_and_checks_decrypt_with_kes_requests(daemon, kes, pki):
    kes.add_key("my-key-1")
    kes.log(clear=True)
    r = put_db(daemon, "kdb-new", provider(kes, pki), "my-key-1")
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["state"] == "Ready" and b["principalKey"]["name"] == "my-key-1", b
    assert b["keyProvider"] == {"type": "kes", "url": kes.url, "apiKey": "<redacted>",
                                "identity": IDENTITY, "caPath": pki["ca"]}, b
    log = kes.log()
    assert [(q["method"], q["path"]) for q in log] == [("POST", "/v1/key/generate/my-key-1")]
    q = log[0]
    assert q["identity"] == IDENTITY  # the API key's self-signed certificate, over mTLS
    assert q["headers"]["content-type"] == "application/json"
    body = json.loads(q["body"])
    assert body == {"context": base64.b64encode((DB + "kdb-new").encode()).decode()}
    # the data plane works under the DEK; a check is one decrypt of the stored ciphertext
    assert daemon.put(data_url(DB + "kdb-new", "a"), json={"value": {"n": 1}}).status_code == 200
    kes.log(clear=True)
    check_all(daemon)
    log = kes.log()
    assert {(q["method"], q["path"]) for q in log} == {("POST", "/v1/key/decrypt/my-key-1")}
    body = json.loads(log[0]["body"])
    assert sorted(body) == ["ciphertext", "context"]
    assert base64.b64decode(body["context"]) == (DB + "kdb-new").encode()
    ct = base64.b64decode(body["ciphertext"], validate=True)
    assert len(ct) == 32 + 44  # KES's overhead: tag, iv, nonce
    assert len(kes_decrypt(kes.keys["my-key-1"], ct, (DB + "kdb-new").encode())) == 32
    ex = explain(daemon, DB + "kdb-new")
    assert ex["accessible"] is True and ex["keySource"] == "kes", ex
    assert [x["rule"] for x in ex["rules"]][:7] == RULES
    assert all(x["ok"] for x in ex["rules"]), ex
    assert IDENTITY in rule(ex, "identity")["detail"]
    r = daemon.get(data_url(DB + "kdb-new", "a"))
    assert r.status_code == 200 and r.json()["value"] == {"n": 1}
    # the same PUT again: 200, nothing new on the server
    kes.log(clear=True)
    r = put_db(daemon, "kdb-new", provider(kes, pki), "my-key-1")
    assert r.status_code == 200, r.text
    assert kes.log() == []
    # another API key for the same database is another provider
    r = put_db(daemon, "kdb-new", provider(kes, pki, apiKey="kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eT"
                                                                "IDikL4zlN16c8NAs"), "my-key-1")
    assert_arm_error(r, 400, "DataEncryptionUpdateNotSupported")
    # the API key is in no answer and not in the log
    no_api_key(daemon.get(DB + "kdb-new").text, daemon.get(DB).text, json.dumps(ex),
               daemon.stderr_text())


def test_create_key_when_missing(daemon, kes, pki):
    e = assert_arm_error(put_db(daemon, "kdb-nokey", provider(kes, pki), "absent-key"), 404,
                         "KesKeyNotFound")
    assert "key does not exist" in e["message"] and "absent-key" in e["message"], e
    assert daemon.get(DB + "kdb-nokey").status_code == 404
    kes.log(clear=True)
    r = put_db(daemon, "kdb-nokey", provider(kes, pki, createKey=True), "made-key")
    assert r.status_code == 201, r.text
    assert r.json()["keyProvider"]["createKey"] is True
    assert [q["path"] for q in kes.log()] == ["/v1/key/generate/made-key",
                                              "/v1/key/create/made-key",
                                              "/v1/key/generate/made-key"]
    assert "made-key" in kes.keys


def test_bad_providers(daemon, kes, pki, tmp_path):
    kes.add_key("k-bad")
    p = provider(kes, pki)
    for bad in (dict(p, url="http://127.0.0.1:7373"), dict(p, url=5), dict(p, apiKey="kes:v1:x"),
                dict(p, apiKey="AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc"),
                dict(p, certPath=pki["client_cert"], keyPath=pki["client_key"]),
                {k: v for k, v in p.items() if k != "apiKey"},
                dict({k: v for k, v in p.items() if k != "apiKey"},
                     certPath=str(tmp_path / "none.crt"), keyPath=str(tmp_path / "none.key")),
                dict(p, caPath=3), dict(p, insecure="yes"), dict(p, createKey=1),
                dict(p, retries=9), dict(p, timeoutMs=0)):
        e = assert_arm_error(put_db(daemon, "kdb-bad", bad, "k-bad"), 400, "KesProviderInvalid")
        no_api_key(e["message"])
    assert_arm_error(put_db(daemon, "kdb-bad", p, "-bad-name"), 400, "KesProviderInvalid")
    other = make_pki(str(tmp_path / "other"))
    e = assert_arm_error(put_db(daemon, "kdb-bad", dict(p, caPath=other["ca"]), "k-bad"), 400,
                         "KesServerNotTrusted")
    assert kes.url in e["message"]
    assert daemon.get(DB + "kdb-bad").status_code == 404
    # -k: no check of the server's certificate
    r = put_db(daemon, "kdb-insecure", provider(kes, pki, caPath=None, insecure=True), "k-bad")
    assert r.status_code == 201, r.text
    assert r.json()["keyProvider"]["insecure"] is True


def test_certificate_files(daemon, kes, pki):
    kes.add_key("k-cert")
    with open(pki["client_cert"], "rb") as f:
        spki = x509.load_pem_x509_certificate(f.read()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ident = hashlib.sha256(spki).hexdigest()
    kes.log(clear=True)
    p = {"type": "kes", "url": kes.url, "certPath": pki["client_cert"],
         "keyPath": pki["client_key"], "caPath": pki["ca"]}
    r = put_db(daemon, "kdb-cert", p, "k-cert")
    assert r.status_code == 201, r.text
    assert r.json()["keyProvider"]["identity"] == ident
    assert "apiKey" not in r.json()["keyProvider"]
    assert [q["identity"] for q in kes.log()] == [ident]
    check_all(daemon)
    assert state(daemon, "kdb-cert")["state"] == "Ready"


def test_losses_and_recovery(daemon, kes, pki):
    kes.add_key("k-drill")
    assert put_db(daemon, "kdb-drill", provider(kes, pki), "k-drill").status_code == 201
    assert daemon.put(data_url(DB + "kdb-drill", "k"), json={"value": 7}).status_code == 200
    saved = {}

    def deny():
        kes.allow(OTHER, "generate", "decrypt")

    def allow():
        kes.allowed = None

    def delete():
        saved["k"] = kes.delete_key("k-drill")

    def restore():
        kes.restore_key("k-drill", saved["k"])

    def replace():
        saved["k"] = kes.keys["k-drill"]
        kes.restore_key("k-drill", os.urandom(32))

    cases = [
        ("policy", "KesPermissionDenied", deny, allow, "not authorized"),
        ("key", "KesKeyNotFound", delete, restore, "key does not exist"),
        ("ciphertext", "KesKeyMismatch", replace, restore, "not authentic"),
        ("vault", "KesKeystoreFailure", lambda: setattr(kes, "fail", (502, "keystore failure")),
         lambda: setattr(kes, "fail", None), "keystore"),
    ]
    for rname, code, break_it, fix_it, words in cases:
        break_it()
        try:
            check_all(daemon)
            b = state(daemon, "kdb-drill")
            assert b["state"] == "Inaccessible" and b["reasonCode"] == code, (code, b)
            assert words in b["reason"] and IDENTITY in b["reason"], b
            ex = explain(daemon, DB + "kdb-drill")
            assert ex["accessible"] is False
            bad = [x["rule"] for x in ex["rules"][:7] if not x["ok"]]
            assert bad == [rname], (code, ex)
            assert_arm_error(daemon.get(data_url(DB + "kdb-drill", "k")), 503,
                             "DatabaseInaccessible")
        finally:
            fix_it()
        check_all(daemon)
        b = state(daemon, "kdb-drill")
        assert b["state"] == "Ready" and b["reasonCode"] is None, (code, b)
        r = daemon.get(data_url(DB + "kdb-drill", "k"))
        assert r.status_code == 200 and r.json()["value"] == 7


def test_outage_keeps_the_dek(daemon, pki):
    k = FakeKes(pki).start()
    try:
        k.add_key("k-out")
        assert put_db(daemon, "kdb-out", provider(k, pki, retries=0),
                      "k-out").status_code == 201
        assert daemon.put(data_url(DB + "kdb-out", "k"), json={"value": "v"}).status_code == 200
        k.fail = (500, "internal error")
        check_all(daemon)
        b = state(daemon, "kdb-out")
        assert b["state"] == "Ready" and b["reasonCode"] == "KesServerUnreachable", b
        port = k.port
        k.fail = None
        k.stop()  # nothing on the port
        check_all(daemon)
        b = state(daemon, "kdb-out")
        assert b["state"] == "Ready" and b["reasonCode"] == "KesServerUnreachable", b
        ex = explain(daemon, DB + "kdb-out")
        assert ex["accessible"] is True
        assert [x["rule"] for x in ex["rules"][:7] if not x["ok"]] == ["kes-server"]
        assert str(port) in rule(ex, "kes-server")["detail"]
        r = daemon.get(data_url(DB + "kdb-out", "k"))
        assert r.status_code == 200 and r.json()["value"] == "v"
        k.port = port
        k.start()
        check_all(daemon)
        b = state(daemon, "kdb-out")
        assert b["state"] == "Ready" and b["reasonCode"] is None, b
    finally:
        k.stop()
    e = assert_arm_error(put_db(daemon, "kdb-none", dict(provider(k, pki),
                                                         url=f"https://127.0.0.1:{free_port()}",
                                                         retries=0), "k"),
                         503, "KesServerUnreachable")
    assert "1 attempts" in e["message"]


def test_api_key_survives_a_restart_sealed(start_daemon, kes, pki):
    d = start_daemon()
    kes.add_key("k-restart")
    assert put_db(d, "kdb-restart", provider(kes, pki), "k-restart").status_code == 201
    assert d.put(data_url(DB + "kdb-restart", "k"), json={"value": 1}).status_code == 200
    kes.log(clear=True)
    d.restart()
    settle(d)
    b = state(d, "kdb-restart")
    assert b["state"] == "Ready" and b["reasonCode"] is None, b
    assert [q["identity"] for q in kes.log()] == [IDENTITY]  # unsealed from the store
    r = d.get(data_url(DB + "kdb-restart", "k"))
    assert r.status_code == 200 and r.json()["value"] == 1
    store = [os.path.join(d.data_dir, f) for f in os.listdir(d.data_dir)]
    for f in store:
        if os.path.isfile(f):
            with open(f, "rb") as fh:
                assert b"AD9E7FSYWrMD" not in fh.read(), f
    assert d.delete(DB + "kdb-restart").status_code == 200
    no_api_key(d.stderr_text())
