"""Self-managed databases on pgcmk's own KES server, backed by pgcmk's Vault as seed 004 sets it
up (kestools.py: KV v2 mount, kes-policy, AppRole role kes-server): the agent takes the DEK from a
KES key over mutual TLS with an API key, and the issue's drills reach the database through the
event path (no clock advance needed): the key deleted (KES DELETE) -> Inaccessible
KesKeyNotFound; the identity's policy denied (PUT /emulator/kes/servers/{name}, a KES restart)
-> KesPermissionDenied; Vault sealed within the cache's offline expiry -> still Ready; past it
(the virtual clock) -> KesKeystoreFailure; each undone -> Ready. /emulator/explain names the
failing link (kes-server, identity, policy, key, vault, cache, ciphertext) as pgcmk's KES server
sees it."""
import base64
import json
import os

import pytest

from cryptography import x509

from kestools import (KesClient, create_server, identity_of, kes_config, new_api_key,
                      setup_vault, spki_identity)
from kmiptools import make_pki
from pgtools import data_url, explain, settle
from test_tde_vault import hv  # noqa: F401 - the fixture: pgcmk's Vault and an hvac root client

DB = "/emulator/tde/databases/"
KEY = "pg-key-1"
RULES = ["kes-server", "identity", "policy", "key", "vault", "cache", "ciphertext"]


@pytest.fixture(scope="module")
def env(daemon, hv, tmp_path_factory):
    """A KES server on pgcmk's Vault (KV v2), an admin and the agent's API key."""
    vault = setup_vault(daemon, version=2, mount="kes-kv")
    admin, agent = new_api_key(), new_api_key()
    return {"vault": vault, "admin": admin, "agent": agent, "identity": identity_of(agent),
            "dir": str(tmp_path_factory.mktemp("kes"))}


def config(env, prefix, deny=(), identities=None, cache=None):
    pol = {"pg-agent": {"allow": ["/v1/key/generate/pg-*", "/v1/key/decrypt/pg-*"],
                        "deny": list(deny),
                        "identities": [env["identity"]] if identities is None else identities}}
    return kes_config(env["vault"], admin=identity_of(env["admin"]), policies=pol,
                      cache=cache or {"any": "1h", "unused": "1h", "offline": "10m"},
                      prefix=prefix)


def start_server(daemon, env, name, **kw):
    r = create_server(daemon, config(env, name, **kw), name=name)
    assert r.status_code == 201, r.text
    srv = r.json()
    adm = KesClient(srv["url"], daemon.ca, api_key=env["admin"], directory=env["dir"])
    return srv, adm


def put_db(daemon, env, srv, name):
    prov = {"type": "kes", "url": srv["url"], "apiKey": env["agent"], "caPath": daemon.ca}
    return daemon.put(DB + name, json={"keyProvider": prov, "principalKeyName": KEY})


def state(daemon, name):
    settle(daemon)
    return daemon.get(DB + name).json()


def bad_rules(daemon, name):
    ex = explain(daemon, DB + name)
    assert [x["rule"] for x in ex["rules"]][:7] == RULES, ex
    return [x["rule"] for x in ex["rules"][:7] if not x["ok"]], ex


def rule(ex, name):
    return next(r for r in ex["rules"] if r["rule"] == name)


def assert_ready(daemon, name, value):
    b = state(daemon, name)
    assert b["state"] == "Ready" and b["reasonCode"] is None, b
    r = daemon.get(data_url(DB + name, "k"))
    assert r.status_code == 200 and r.json()["value"] == value, r.text


def assert_lost(daemon, name, code, failing):
    b = state(daemon, name)
    assert b["state"] == "Inaccessible" and b["reasonCode"] == code, b
    bad, ex = bad_rules(daemon, name)
    assert bad == [failing], (code, ex)
    assert ex["accessible"] is False
    return ex


def test_ready_then_key_deleted_and_imported_back(daemon, env):
    srv, adm = start_server(daemon, env, "tde-kes-del")
    secret = os.urandom(32)
    r = adm.put(f"/v1/key/import/{KEY}", json={"key": base64.b64encode(secret).decode(),
                                                 "cipher": "AES256"})
    assert r.status_code == 200, r.text
    r = put_db(daemon, env, srv, "kes-del")
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["state"] == "Ready" and b["keyProvider"]["apiKey"] == "<redacted>", b
    assert b["keyProvider"]["identity"] == env["identity"]
    assert daemon.put(data_url(DB + "kes-del", "k"), json={"value": "a"}).status_code == 200
    bad, ex = bad_rules(daemon, "kes-del")
    assert bad == [] and ex["keySource"] == "kes", ex
    assert "tde-kes-del" in rule(ex, "kes-server")["detail"]
    assert "pg-agent" in rule(ex, "identity")["detail"]
    assert "exists" in rule(ex, "key")["detail"]
    # the server's audit log saw the agent's identity generate and decrypt
    audit = daemon.get("/emulator/kes/servers/tde-kes-del/audit", params={"limit": 50})
    paths = {(e["request"]["path"], e["request"]["identity"], e["response"]["code"])
             for e in audit.json()}
    assert (f"/v1/key/generate/{KEY}", env["identity"], 200) in paths, paths
    # the drill: delete the key through KES
    assert adm.delete(f"/v1/key/delete/{KEY}").status_code == 200
    ex = assert_lost(daemon, "kes-del", "KesKeyNotFound", "key")
    assert "does not exist" in rule(ex, "key")["detail"]
    # undo: the same key material imported back
    r = adm.put(f"/v1/key/import/{KEY}", json={"key": base64.b64encode(secret).decode(),
                                                 "cipher": "AES256"})
    assert r.status_code == 200, r.text
    assert_ready(daemon, "kes-del", "a")
    # another key under the name does not decrypt the stored DEK
    assert adm.delete(f"/v1/key/delete/{KEY}").status_code == 200
    assert adm.create_key(KEY).status_code == 200
    assert_lost(daemon, "kes-del", "KesKeyMismatch", "ciphertext")
    assert adm.delete(f"/v1/key/delete/{KEY}").status_code == 200
    assert adm.put(f"/v1/key/import/{KEY}", json={"key": base64.b64encode(secret).decode(),
                                                    "cipher": "AES256"}).status_code == 200
    assert_ready(daemon, "kes-del", "a")
    adm.close()


def test_policy_denied_and_identity_unknown(daemon, env):
    srv, adm = start_server(daemon, env, "tde-kes-pol")
    assert adm.create_key(KEY).status_code == 200
    assert put_db(daemon, env, srv, "kes-pol").status_code == 201
    assert daemon.put(data_url(DB + "kes-pol", "k"), json={"value": 2}).status_code == 200
    cases = [("policy", config(env, "tde-kes-pol", deny=[f"/v1/key/decrypt/{KEY}"])),
             ("identity", config(env, "tde-kes-pol", identities=[]))]
    for failing, cfg in cases:
        r = daemon.put("/emulator/kes/servers/tde-kes-pol", data=cfg,
                       headers={"Content-Type": "application/yaml"})
        assert r.status_code == 200, r.text
        assert r.json()["port"] == srv["port"]
        ex = assert_lost(daemon, "kes-pol", "KesPermissionDenied", failing)
        assert "not authorized" in ex["reason"] and env["identity"] in ex["reason"], ex
        r = daemon.put("/emulator/kes/servers/tde-kes-pol", data=config(env, "tde-kes-pol"),
                       headers={"Content-Type": "application/yaml"})
        assert r.status_code == 200, r.text
        assert_ready(daemon, "kes-pol", 2)
    adm.close()


def test_vault_sealed_within_and_past_the_offline_cache(daemon, env, hv):
    v, client = hv
    srv, adm = start_server(daemon, env, "tde-kes-seal")
    assert adm.create_key(KEY).status_code == 200
    assert put_db(daemon, env, srv, "kes-seal").status_code == 201  # generate caches the key
    assert daemon.put(data_url(DB + "kes-seal", "k"), json={"value": 3}).status_code == 200
    client.sys.seal()
    try:
        # within the offline expiry the cached key serves: still Ready
        assert_ready(daemon, "kes-seal", 3)
        daemon.clock(advance="PT1M")
        assert_ready(daemon, "kes-seal", 3)
        ex = explain(daemon, DB + "kes-seal")
        assert "cannot reach" in rule(ex, "vault")["detail"], ex
        assert "caches" in rule(ex, "cache")["detail"], ex
        # past it: the cache drops the key while offline, KES answers 502
        daemon.clock(advance="PT11M")
        ex = assert_lost(daemon, "kes-seal", "KesKeystoreFailure", "vault")
        assert "does not cache" in rule(ex, "cache")["detail"], ex
    finally:
        client.sys.submit_unseal_key(v["unsealKeys"][0])
    # KES looks at its keystore every 10 s: until then it stays offline (KesKeystoreFailure);
    # its ping then says "reachable" (KesKeystoreChanged) and the database recovers
    assert state(daemon, "kes-seal")["reasonCode"] in ("KesKeystoreFailure", None)
    daemon.clock(advance="PT10S")
    assert_ready(daemon, "kes-seal", 3)
    adm.close()


def test_the_api_key_is_in_no_answer(daemon, env):
    body = daemon.get(DB).text + json.dumps(daemon.get("/emulator/kes/servers").json())
    for name in ("kes-del", "kes-pol", "kes-seal"):
        body += json.dumps(explain(daemon, DB + name))
    secret = env["agent"][len("kes:v1:"):]
    assert secret not in body and secret not in daemon.stderr_text()


def test_tls_auth_on_refuses_the_api_key_certificate(daemon, env, tmp_path):
    pki = make_pki(str(tmp_path))
    with open(pki["client_cert"], "rb") as f:
        cert_identity = spki_identity(x509.load_pem_x509_certificate(f.read()).public_key())
    doc = json.loads(config(env, "tde-kes-verify"))
    doc["tls"] = {"auth": "on", "ca": pki["ca"]}
    doc["admin"] = {"identity": cert_identity}
    r = create_server(daemon, json.dumps(doc), name="tde-kes-verify")
    assert r.status_code == 201, r.text
    srv = r.json()
    # the API key's self-signed certificate does not verify against tls.ca: refused in the
    # handshake, a loss (not an outage)
    r = put_db(daemon, env, srv, "kes-verify")
    assert r.status_code == 400 and r.json()["error"]["code"] == "KesServerNotTrusted", r.text
    assert "refused the client certificate" in r.json()["error"]["message"]
    # a certificate issued by that CA (certPath and keyPath) is accepted
    prov = {"type": "kes", "url": srv["url"], "certPath": pki["client_cert"],
            "keyPath": pki["client_key"], "caPath": daemon.ca, "createKey": True}
    r = daemon.put(DB + "kes-verify", json={"keyProvider": prov, "principalKeyName": KEY})
    assert r.status_code == 201, r.text
    assert r.json()["keyProvider"]["identity"] == cert_identity
    assert state(daemon, "kes-verify")["state"] == "Ready"
    bad, ex = bad_rules(daemon, "kes-verify")
    assert bad == [] and "the admin" in rule(ex, "identity")["detail"], ex
