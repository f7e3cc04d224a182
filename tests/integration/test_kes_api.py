"""pgcmk's KES servers (src/kes/) through a KES client: requests with client certificates made
from `kes:v1:` API keys (kestools.py), against a server created by POST /emulator/kes/servers on
pgcmk's Vault (KV v1 through AppRole, as seed 004 sets it up). Every route of key-providers.md
5.1 with KES's bodies and statuses, identities, policies (deny over allow, trailing '*'), KES's
errors for bad input (the daemon keeps serving), the audit stream, metrics, status.ping on the
virtual clock, and the emulator routes."""
import base64
import json
import os
import threading

import pytest
import requests

import kestools as kt

NOT_ALLOWED = {"message": "not authorized: insufficient permissions"}


@pytest.fixture(scope="module")
def env(daemon, tmp_path_factory):
    certs = str(tmp_path_factory.mktemp("kes-certs"))
    vault = kt.setup_vault(daemon)
    admin, user, other = kt.new_api_key(), kt.new_api_key(), kt.new_api_key()
    policies = {
        "app": {
            "allow": ["/v1/key/create/app-*", "/v1/key/generate/app-*", "/v1/key/decrypt/app-*",
                      "/v1/key/describe/app-*", "/v1/status", "/v1/log/audit"],
            "deny": ["/v1/key/generate/app-internal*", "/v1/key/decrypt/app-internal*"],
            "identities": [kt.identity_of(user)],
        },
        "empty": {"allow": [], "identities": [kt.identity_of(other)]},
    }
    cfg = kt.kes_config(vault, admin=kt.identity_of(admin), policies=policies,
                        keys=["required-1", "required-2"])
    r = kt.create_server(daemon, cfg, "api")
    assert r.status_code == 201, r.text
    srv = r.json()
    stranger = kt.new_api_key()
    e = {
        "daemon": daemon, "vault": vault, "srv": srv, "url": srv["url"], "certs": certs,
        "admin": kt.KesClient(srv["url"], daemon.ca, api_key=admin, directory=certs),
        "user": kt.KesClient(srv["url"], daemon.ca, api_key=user, directory=certs),
        "other": kt.KesClient(srv["url"], daemon.ca, api_key=other, directory=certs),
        "stranger": kt.KesClient(srv["url"], daemon.ca, api_key=stranger, directory=certs),
        "admin_key": admin, "user_key": user, "cfg": cfg,
    }
    yield e
    for c in ("admin", "user", "other", "stranger"):
        e[c].close()


def kes_error(r, status, message=None):
    assert r.status_code == status, f"{r.status_code}: {r.text[:300]}"
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"message"}, body
    if message is not None:
        assert body["message"] == message, body
    return body["message"]


def test_created_answer(env):
    s = env["srv"]
    assert s["name"] == "api" and s["port"] > 0 and s["url"] == f"https://127.0.0.1:{s['port']}"
    assert s["admin"] == kt.identity_of(env["admin_key"])
    assert s["keys"] == ["required-1", "required-2"] and sorted(s["policies"]) == ["app", "empty"]
    assert s["keystore"]["engine"] == "kv" and s["keystore"]["version"] == 1
    assert s["keystore"]["reachable"] is True
    assert s["cache"] == {"any": "5m0s", "unused": "20s", "offline": "0s"}
    assert s["caCertificate"] == env["daemon"].ca


def test_required_keys_are_in_vault(env):
    # KV v1: {engine}/{name} holds {"<name>": value}
    for name in ("required-1", "required-2"):
        r = kt.vault_request(env["daemon"], "GET", f"/v1/kv/{name}")
        assert r.status_code == 200, r.text
        assert list(r.json()["data"]) == [name]
    r = env["admin"].get("/v1/key/describe/required-1")
    assert r.status_code == 200 and r.json()["name"] == "required-1"
    assert r.json()["algorithm"] == "AES256"


def test_version_and_status(env):
    r = env["stranger"].get("/version")  # no auth: any client certificate
    assert r.status_code == 200 and r.json() == {"version": r.json()["version"], "commit": "pgcmk"}
    r = env["admin"].get("/v1/status")
    assert r.status_code == 200, r.text
    st = r.json()
    for f in ("version", "os", "arch", "uptime", "num_cpu", "num_cpu_used", "mem_heap_used",
              "mem_stack_used"):
        assert f in st, st
    assert st["keystore_latency"] >= 1 and "keystore_unreachable" not in st
    assert env["user"].get("/v1/status").status_code == 200  # allowed by its policy
    assert env["admin"].get("/v1/ready").status_code == 200
    kes_error(env["stranger"].get("/v1/status"), 403, NOT_ALLOWED["message"])
    kes_error(env["other"].get("/v1/status"), 403, NOT_ALLOWED["message"])  # empty policy


def test_api_list(env):
    r = env["admin"].get("/v1/api")
    assert r.status_code == 200
    routes = {(x["method"], x["path"]): x for x in r.json()}
    assert routes[("GET", "/version")]["timeout"] == 10
    assert routes[("PUT", "/v1/key/generate/")]["max_body"] == 1 << 20
    assert routes[("PUT", "/v1/key/create/")]["max_body"] == 0
    assert routes[("GET", "/v1/log/audit")]["timeout"] == 0
    assert routes[("GET", "/v1/status")]["timeout"] == 15
    assert ("GET", "/v1/identity/self/describe") in routes and len(routes) == 22


def test_key_lifecycle(env):
    a = env["admin"]
    assert a.put("/v1/key/create/life-1").status_code == 200  # PUT
    assert a.post("/v1/key/create/life-2").status_code == 200  # POST, as kms-go sends
    kes_error(a.post("/v1/key/create/life-1"), 400, "key already exists")
    d = a.get("/v1/key/describe/life-1").json()
    assert d["name"] == "life-1" and d["algorithm"] == "AES256"
    assert d["created_by"] == kt.identity_of(env["admin_key"]) and d["created_at"].endswith("Z")
    r = a.get("/v1/key/list/life-*")
    assert r.status_code == 200 and r.json()["names"] == ["life-1", "life-2"]
    assert a.get("/v1/key/list/life-1").json()["names"] == ["life-1"]
    names = a.get("/v1/key/list/*").json()["names"]
    assert {"life-1", "life-2", "required-1"} <= set(names) and names == sorted(names)
    assert a.delete("/v1/key/delete/life-2").status_code == 200
    kes_error(a.get("/v1/key/describe/life-2"), 404, "key does not exist")
    assert a.get("/v1/key/list/life-*").json()["names"] == ["life-1"]
    kes_error(a.get("/v1/key/create/life-3"), 405, "received method 'GET' expected 'PUT'")
    kes_error(a.post("/v1/key/delete/life-1"), 405)


def test_generate_decrypt_encrypt_hmac(env):
    a = env["admin"]
    assert a.post("/v1/key/create/crypt-1").status_code == 200
    ctx = b'{"bucket":"b"}'
    g = a.generate("crypt-1", ctx)
    assert g.status_code == 200, g.text
    pt = base64.b64decode(g.json()["plaintext"])
    ct = base64.b64decode(g.json()["ciphertext"])
    assert len(pt) == 32 and len(ct) == 32 + 44
    r = a.decrypt("crypt-1", ct, ctx)
    assert r.status_code == 200 and base64.b64decode(r.json()["plaintext"]) == pt
    # an empty body is allowed for generate
    r = a.post("/v1/key/generate/crypt-1")
    assert r.status_code == 200 and len(base64.b64decode(r.json()["plaintext"])) == 32
    e = a.encrypt("crypt-1", b"hello kes")
    assert e.status_code == 200
    r = a.decrypt("crypt-1", e.json()["ciphertext"])
    assert base64.b64decode(r.json()["plaintext"]) == b"hello kes"
    h1 = a.post("/v1/key/hmac/crypt-1", json={"message": kt.b64(b"m")})
    h2 = a.post("/v1/key/hmac/crypt-1", json={"message": kt.b64(b"m")})
    assert h1.status_code == 200 and h1.json() == h2.json()
    assert len(base64.b64decode(h1.json()["hmac"])) == 32
    # tampered, wrong context, wrong key: not authentic
    bad = bytearray(ct)
    bad[3] ^= 1
    msg = "decryption failed: ciphertext is not authentic"
    kes_error(a.decrypt("crypt-1", bytes(bad), ctx), 400, msg)
    kes_error(a.decrypt("crypt-1", ct, b"other"), 400, msg)
    assert a.post("/v1/key/create/crypt-2").status_code == 200
    kes_error(a.decrypt("crypt-2", ct, ctx), 400, msg)
    kes_error(a.decrypt("crypt-1", b"short", ctx), 400, msg)
    kes_error(a.generate("no-such-key"), 404, "key does not exist")


def test_import(env):
    a = env["admin"]
    key = bytes(range(32))
    r = a.post("/v1/key/import/imp-1", json={"key": kt.b64(key), "cipher": "AES256"})
    assert r.status_code == 200, r.text
    e = a.encrypt("imp-1", b"x" * 5)
    ct = base64.b64decode(e.json()["ciphertext"])
    assert base64.b64decode(a.decrypt("imp-1", ct).json()["plaintext"]) == b"x" * 5
    kes_error(a.post("/v1/key/import/imp-1", json={"key": kt.b64(key), "cipher": "AES256"}), 400,
              "key already exists")
    kes_error(a.post("/v1/key/import/imp-2", json={"key": kt.b64(key[:16]), "cipher": "AES256"}),
              406, "invalid key size for 'AES256'")
    kes_error(a.post("/v1/key/import/imp-2", json={"key": kt.b64(key), "cipher": "DES"}), 406,
              "algorithm 'DES' is not supported")
    kes_error(a.post("/v1/key/import/imp-2", data=b"{not json"), 400,
              "invalid import key request body")


def test_bad_names_and_bodies(env):
    a = env["admin"]
    for name in ("-a", "a-", "_", "a.b", "x" * 81):
        m = kes_error(a.post(f"/v1/key/create/{name}"), 400)
        assert m == f"key name '{name}' is empty, too long or contains invalid characters"
    kes_error(a.post("/v1/key/create/"), 400)
    kes_error(a.get("/v1/key/list/a*b"), 400, "listing pattern 'a*b' is empty, too long or is invalid")
    assert a.post("/v1/key/create/body-1").status_code == 200
    for body in (b"{", b"[1,2]", b'{"ciphertext": 5}', b'{"ciphertext": "%%%"}',
                 b'{"ciphertext": "AAAA", "context": "not base64!"}'):
        kes_error(a.post("/v1/key/decrypt/body-1", data=body), 400, "invalid request body")
    kes_error(a.post("/v1/key/generate/body-1", data=b'{"context": 1}'), 400, "invalid request body")
    # Go's decoder: field names match case-insensitively, unknown fields are ignored
    r = a.post("/v1/key/encrypt/body-1", json={"Plaintext": kt.b64(b"abc"), "extra": 1})
    assert r.status_code == 200
    kes_error(a.post("/v1/key/create/nul%00x"), 400, "invalid request path")
    assert a.get("/v1/key/describe/nul").status_code == 404
    r = a.get("/v1/unknown/route")
    assert r.status_code == 404
    assert a.get("/version").status_code == 200  # still serving


def test_oversized_body(env):
    a = env["admin"]
    assert a.post("/v1/key/create/big-1").status_code == 200
    big = json.dumps({"plaintext": "A" * ((1 << 20) + 16)})
    r = a.post("/v1/key/encrypt/big-1", data=big)
    assert r.status_code == 413 and "message" in r.json()
    assert a.get("/version").status_code == 200


def test_policy_rules(env):
    a, u = env["admin"], env["user"]
    for name in ("app-1", "app-internal-1", "other-1"):
        assert a.post(f"/v1/key/create/{name}").status_code == 200
    g = u.generate("app-1", b"c")
    assert g.status_code == 200, g.text
    assert u.decrypt("app-1", g.json()["ciphertext"], b"c").status_code == 200
    # deny wins over allow (app-* allows, app-internal* denies)
    kes_error(u.generate("app-internal-1"), 403, NOT_ALLOWED["message"])
    kes_error(u.decrypt("app-internal-1", "AAAA"), 403, NOT_ALLOWED["message"])
    # no allow rule
    kes_error(u.generate("other-1"), 403, NOT_ALLOWED["message"])
    kes_error(u.get("/v1/key/list/*"), 403, NOT_ALLOWED["message"])
    kes_error(u.delete("/v1/key/delete/app-1"), 403, NOT_ALLOWED["message"])
    kes_error(u.get("/v1/metrics"), 403, NOT_ALLOWED["message"])
    # create is allowed by prefix and records the identity
    assert u.post("/v1/key/create/app-2").status_code == 200
    assert u.get("/v1/key/describe/app-2").json()["created_by"] == kt.identity_of(env["user_key"])
    # an unknown identity may do nothing but /version and self/describe
    kes_error(env["stranger"].generate("app-1"), 403, NOT_ALLOWED["message"])


def test_identities_and_policies(env):
    a, u = env["admin"], env["user"]
    admin_id, user_id = kt.identity_of(env["admin_key"]), kt.identity_of(env["user_key"])
    r = a.get("/v1/identity/list/*")
    assert r.status_code == 200
    ids = r.json()["identities"]
    assert admin_id in ids and user_id in ids and ids == sorted(ids)
    d = a.get(f"/v1/identity/describe/{user_id}").json()
    assert d["policy"] == "app" and d["created_by"] == admin_id
    assert a.get(f"/v1/identity/describe/{admin_id}").json()["admin"] is True
    kes_error(a.get("/v1/identity/describe/" + "0" * 64), 404, "identity does not exist")
    assert a.get("/v1/policy/list/*").json()["names"] == ["app", "empty"]
    assert a.get("/v1/policy/list/a*").json()["names"] == ["app"]
    p = a.get("/v1/policy/read/app").json()
    assert p["name"] == "app" and "/v1/key/generate/app-*" in p["allow"]
    assert p["deny"] == {"/v1/key/generate/app-internal*": {}, "/v1/key/decrypt/app-internal*": {}}
    d = a.get("/v1/policy/describe/app").json()
    assert d["name"] == "app" and d["created_by"] == admin_id and "allow" not in d
    kes_error(a.get("/v1/policy/read/nope"), 404, "policy does not exist")
    # self/describe needs only a certificate
    s = u.get("/v1/identity/self/describe").json()
    assert s["identity"] == user_id and s["policy"]["name"] == "app"
    s = a.get("/v1/identity/self/describe").json()
    assert s["identity"] == admin_id and s["admin"] is True
    kes_error(env["stranger"].get("/v1/identity/self/describe"), 404, "identity does not exist")


def test_second_leaf_certificate(env):
    cert = kt.extra_leaf_cert_files(env["admin_key"], env["certs"])
    r = requests.get(env["url"] + "/v1/status", cert=cert, verify=env["daemon"].ca, timeout=10)
    kes_error(r, 400, "tls: received more than one client certificate")
    assert env["admin"].get("/v1/status").status_code == 200


def test_ec_certificate_identity(env, tmp_path):
    # any client certificate: its SPKI hash is the identity (here unknown: 403, not a TLS error)
    cp, kp, ident = kt.ec_cert_files(str(tmp_path))
    r = requests.get(env["url"] + "/v1/identity/self/describe", cert=(cp, kp),
                     verify=env["daemon"].ca, timeout=10)
    kes_error(r, 404, "identity does not exist")
    audit = env["daemon"].get("/emulator/kes/servers/api/audit?limit=5").json()
    assert any(e["request"]["identity"] == ident for e in audit)


def test_metrics(env):
    a = env["admin"]
    before = a.get("/v1/metrics")
    assert before.status_code == 200 and before.headers["Content-Type"].startswith("text/plain")
    text = before.text
    for name in ("kes_http_request_success", "kes_http_request_error", "kes_http_request_failure",
                 "kes_http_request_active", "kes_http_response_time_bucket{le=\"0.01\"}",
                 "kes_http_response_time_count", "kes_log_audit_events", "kes_log_error_events",
                 "kes_system_up_time"):
        assert name in text, name

    def value(t, name):
        return float(next(l for l in t.splitlines() if l.startswith(name + " ")).split()[1])

    kes_error(a.get("/v1/key/describe/metrics-missing"), 404)
    after = a.get("/v1/metrics").text
    assert value(after, "kes_http_request_error") == value(text, "kes_http_request_error") + 1
    assert value(after, "kes_http_request_success") >= value(text, "kes_http_request_success") + 1


def test_audit_stream(env):
    u = env["user"]
    r = u.session.get(env["url"] + "/v1/log/audit", stream=True, timeout=10,
                      verify=env["daemon"].ca)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/x-ndjson"
    try:
        assert env["admin"].get("/v1/key/describe/required-1").status_code == 200
        line = next(r.iter_lines())
        ev = json.loads(line)
        assert ev["request"]["path"] == "/v1/key/describe/required-1"
        assert ev["request"]["identity"] == kt.identity_of(env["admin_key"])
        assert ev["request"]["ip"] == "127.0.0.1"
        assert ev["response"]["code"] == 200 and isinstance(ev["response"]["time"], int)
        assert ev["time"].endswith("Z")
    finally:
        r.close()
    # the emulator route keeps the last events for the portal
    ev = env["daemon"].get("/emulator/kes/servers/api/audit?limit=2").json()
    assert len(ev) == 2 and all("request" in e for e in ev)


def test_error_stream_and_ping_on_the_virtual_clock(env):
    d, a = env["daemon"], env["admin"]
    stats0 = d.get("/emulator/stats").json()["events"]
    es = a.session.get(env["url"] + "/v1/log/error", stream=True, timeout=10, verify=d.ca)
    assert es.status_code == 200
    r = kt.vault_request(d, "PUT", "/v1/sys/seal")
    assert r.status_code in (200, 204), r.text
    try:
        # status.ping (10 s) runs on the virtual clock
        assert d.post("/emulator/clock", json={"advance": "PT11S"}).status_code == 200
        st = a.get("/v1/status").json()
        assert st.get("keystore_unreachable") is True and "keystore_latency" not in st
        kes_error(a.get("/v1/ready"), 504, "key store is not reachable")
        line = json.loads(next(es.iter_lines()))
        assert "not reachable" in line["msg"] and line["level"] == "ERROR"
        assert d.get("/emulator/kes/servers/api").json()["keystore"]["reachable"] is False
    finally:
        es.close()
        r = kt.vault_request(d, "PUT", "/v1/sys/unseal", json={"key": kt.vault_info(d)["unsealKeys"][0]})
        assert r.status_code == 200, r.text
    assert d.post("/emulator/clock", json={"advance": "PT11S"}).status_code == 200
    st = a.get("/v1/status").json()
    assert "keystore_unreachable" not in st and st["keystore_latency"] >= 1
    stats1 = d.get("/emulator/stats").json()["events"]
    assert stats1["KesKeystoreChanged"] >= stats0["KesKeystoreChanged"] + 2


def test_key_events(env):
    d, a = env["daemon"], env["admin"]
    s0 = d.get("/emulator/stats").json()["events"]
    assert a.post("/v1/key/create/ev-1").status_code == 200
    assert a.delete("/v1/key/delete/ev-1").status_code == 200
    s1 = d.get("/emulator/stats").json()["events"]
    assert s1["KesKeyChanged"] == s0["KesKeyChanged"] + 1
    assert s1["KesKeyDeleted"] == s0["KesKeyDeleted"] + 1


def test_emulator_routes(env, tmp_path):
    d, vault = env["daemon"], env["vault"]
    assert any(s["name"] == "api" for s in d.get("/emulator/kes/servers").json()["value"])
    info = d.get("/emulator/info").json()["kes"]
    assert {"name": "api", "port": env["srv"]["port"], "url": env["url"]} in info
    keys = d.get("/emulator/kes/servers/api/keys").json()
    assert {"required-1", "required-2"} <= set(keys["names"]) and isinstance(keys["cache"], list)
    r = d.get("/emulator/kes/servers/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "KesServerNotFound"
    r = kt.create_server(d, env["cfg"].replace(env["srv"]["admin"], "x"), "api")
    assert r.status_code == 409 and r.json()["error"]["code"] == "KesServerExists"
    # a config KES refuses: its reason, ARM's envelope
    r = kt.create_server(d, "address: 127.0.0.1:0\n", "bad")
    assert r.status_code == 400 and r.json()["error"]["code"] == "KesConfigInvalid"
    assert r.json()["error"]["message"] == "kesconf: invalid admin identity: no admin identity"
    r = kt.create_server(d, "admin: [", "bad")
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("yaml: line")
    assert d.get("/emulator/kes/servers/bad").status_code == 404
    # PUT replaces the config (a restart): a policy change takes effect, same port
    key = kt.new_api_key()
    cfg1 = kt.kes_config(vault, admin="disabled", policies={
        "p": {"allow": ["/v1/status"], "identities": [kt.identity_of(key)]}})
    r = kt.create_server(d, cfg1, "swap")
    assert r.status_code == 201, r.text
    port = r.json()["port"]
    assert r.json()["admin"] == "disabled"
    c = kt.KesClient(r.json()["url"], d.ca, api_key=key, directory=str(tmp_path))
    assert c.get("/v1/status").status_code == 200
    kes_error(c.get("/v1/key/list/*"), 403, NOT_ALLOWED["message"])
    cfg2 = cfg1.replace('"/v1/status"', '"/v1/status", "/v1/key/list/*"')
    r = d.put("/emulator/kes/servers/swap", data=cfg2)
    assert r.status_code == 200 and r.json()["port"] == port, r.text
    c.session.close()
    assert c.get("/v1/key/list/*").status_code == 200
    # a refused replacement leaves the running server alone
    r = d.put("/emulator/kes/servers/swap", data="admin: {}\n")
    assert r.status_code == 400
    assert c.get("/v1/key/list/*").status_code == 200
    assert d.delete("/emulator/kes/servers/swap").status_code == 204
    c.session.close()
    with pytest.raises(requests.exceptions.ConnectionError):
        c.get("/v1/status", timeout=5)
    assert d.get("/emulator/kes/servers/swap").status_code == 404


def test_required_key_that_cannot_be_created(env):
    # a role whose policy cannot write: the server does not start, KES's reason is given
    d = env["daemon"]
    v = kt.setup_vault(d, mount="kvro", role="kes-ro",
                       policy="kes-ro", policy_text='path "kvro/*" {\n capabilities = ["read"]\n}\n')
    r = kt.create_server(d, kt.kes_config(v, keys=["must-exist"]), "ro")
    assert r.status_code == 502, r.text
    assert r.json()["error"]["code"] == "KesServerStartFailed"
    assert "failed to create key 'must-exist'" in r.json()["error"]["message"]
    assert d.get("/emulator/kes/servers/ro").status_code == 404


def test_diagnose(env):
    d, a = env["daemon"], env["admin"]
    assert a.post("/v1/key/create/app-diag").status_code == 200
    uid = kt.identity_of(env["user_key"])

    def diag(identity, key, op="generate"):
        r = d.get("/emulator/kes/servers/api/diagnose",
                  params={"identity": identity, "key": key, "op": op})
        assert r.status_code == 200, r.text
        return r.json()

    x = diag(uid, "app-diag")
    assert x["cache"] == {"cached": False, "expiresAt": None}  # not used since its creation
    assert env["user"].generate("app-diag").status_code == 200
    x = diag(uid, "app-diag")
    assert x["server"] == "api" and x["allowed"] is True
    assert x["identity"] == {"known": True, "admin": False, "policy": "app"}
    assert x["key"]["exists"] is True and x["keystore"]["reachable"] is True
    assert x["cache"]["cached"] is True and x["cache"]["expiresAt"].endswith("Z")
    assert diag(uid, "app-internal-x")["allowed"] is False  # denied
    assert diag(uid, "app-diag", "delete")["allowed"] is False  # not allowed
    assert diag(uid, "app-missing")["key"]["exists"] is False
    x = diag("0" * 64, "app-diag")
    assert x["identity"] == {"known": False, "admin": False, "policy": None}
    assert x["allowed"] is False
    x = diag(kt.identity_of(env["admin_key"]), "anything", "delete")
    assert x["identity"]["admin"] is True and x["allowed"] is True
