"""KES's Vault keystore (src/kes/keystore.c, cache.c, crypto.c) through pgcmk KES servers backed by
pgcmk's Vault set up as seed 004 does it: what KES writes into Vault (paths, KV v2 check-and-set,
the stored value's protobuf), prefix, namespace and transit; legacy values written by older KES;
and the drills: the secret deleted in Vault, the AppRole secret id and token revoked, Vault
sealed, the policy removed -> KES's answers, softened by the cache on the virtual clock."""
import base64
import uuid

import hvac
import pytest
import requests

import kestools as kt


def pb_fields(raw):
    """A protobuf message's top-level fields as {number: [bytes or int]}."""
    out, i = {}, 0

    def varint():
        nonlocal i
        v, shift = 0, 0
        while True:
            c = raw[i]
            i += 1
            v |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                return v

    while i < len(raw):
        tag = varint()
        if tag & 7 == 0:
            out.setdefault(tag >> 3, []).append(varint())
        else:
            assert tag & 7 == 2, tag
            n = varint()
            out.setdefault(tag >> 3, []).append(raw[i:i + n])
            i += n
    return out


@pytest.fixture(scope="module")
def vclient(daemon):
    return hvac.Client(url=kt.vault_info(daemon)["address"], token=kt.ROOT_TOKEN, verify=daemon.ca)


@pytest.fixture(scope="module")
def admin_key():
    return kt.new_api_key()


def mount_name():
    return "kes" + uuid.uuid4().hex[:8]


def start(daemon, vault, admin_key, tmp_path, **kw):
    r = kt.create_server(daemon, kt.kes_config(vault, admin=kt.identity_of(admin_key), **kw),
                         name="ks" + uuid.uuid4().hex[:8])
    assert r.status_code == 201, r.text
    s = r.json()
    c = kt.KesClient(s["url"], daemon.ca, api_key=admin_key, directory=str(tmp_path))
    return s, c


def stop(daemon, s, c):
    c.close()
    daemon.delete(f"/emulator/kes/servers/{s['name']}")


def test_kv1_what_kes_writes(daemon, vclient, admin_key, tmp_path):
    m = mount_name()
    v = kt.setup_vault(daemon, version=1, mount=m, policy=m, role=m)
    s, c = start(daemon, v, admin_key, tmp_path)
    try:
        assert s["keystore"]["reachable"] is True
        assert c.create_key("my-key-1").status_code == 200
        # kv v1: {engine}/{name} holds {name: base64(protobuf KeyVersion)}
        data = vclient.secrets.kv.v1.read_secret(path="my-key-1", mount_point=m)["data"]
        assert list(data) == ["my-key-1"]
        pb = pb_fields(base64.b64decode(data["my-key-1"], validate=True))
        key = pb_fields(pb[1][0])
        assert len(key[1][0]) == 32 and key[2] == [1]  # AES256
        hm = pb_fields(pb[2][0])
        assert len(hm[1][0]) == 32 and hm[2] == [1]  # SHA256
        assert pb_fields(pb[3][0])[1][0] > 1_600_000_000  # created_at seconds
        assert pb[4] == [kt.identity_of(admin_key).encode()]
        # KES's answers over it
        r = c.create_key("my-key-1")
        assert r.status_code == 400 and r.json() == {"message": "key already exists"}
        d = c.get("/v1/key/describe/my-key-1").json()
        assert d["name"] == "my-key-1" and d["algorithm"] == "AES256"
        assert d["created_by"] == kt.identity_of(admin_key)
        g = c.generate("my-key-1", context=b"ctx").json()
        r = c.decrypt("my-key-1", g["ciphertext"], context=b"ctx")
        assert r.status_code == 200 and r.json()["plaintext"] == g["plaintext"]
        r = c.decrypt("my-key-1", g["ciphertext"], context=b"other")
        assert r.status_code == 400
        assert r.json() == {"message": "decryption failed: ciphertext is not authentic"}
        assert c.get("/v1/key/list/*").json()["names"] == ["my-key-1"]
        r = c.get("/v1/key/describe/nope")
        assert r.status_code == 404 and r.json() == {"message": "key does not exist"}
        assert c.delete("/v1/key/delete/my-key-1").status_code == 200
        with pytest.raises(hvac.exceptions.InvalidPath):
            vclient.secrets.kv.v1.read_secret(path="my-key-1", mount_point=m)
        assert c.get("/v1/key/describe/my-key-1").status_code == 404
    finally:
        stop(daemon, s, c)


def test_kv2_paths_cas_and_prefix(daemon, vclient, admin_key, tmp_path):
    m = mount_name()
    v = kt.setup_vault(daemon, version=2, mount=m, policy=m, role=m)
    s, c = start(daemon, v, admin_key, tmp_path, prefix="tenant-a")
    s2, c2 = start(daemon, v, admin_key, tmp_path, prefix="tenant-b")
    try:
        assert c.create_key("k1").status_code == 200
        sec = vclient.secrets.kv.v2.read_secret_version(path="tenant-a/k1", mount_point=m)
        assert list(sec["data"]["data"]) == ["k1"] and sec["data"]["metadata"]["version"] == 1
        # created with cas 0: another write with cas 0 is refused, the key stays at version 1
        with pytest.raises(hvac.exceptions.InvalidRequest):
            vclient.secrets.kv.v2.create_or_update_secret(path="tenant-a/k1", secret={"k1": "x"},
                                                          cas=0, mount_point=m)
        # prefix isolation: the other server neither lists nor reads it, and has its own k1
        assert c2.get("/v1/key/list/*").json()["names"] == []
        assert c2.get("/v1/key/describe/k1").status_code == 404
        assert c2.create_key("k1").status_code == 200
        keys = vclient.secrets.kv.v2.list_secrets(path="", mount_point=m)["data"]["keys"]
        assert sorted(keys) == ["tenant-a/", "tenant-b/"]
        # a secret written at the location beforehand makes KES's create answer "exists"
        vclient.secrets.kv.v2.create_or_update_secret(path="tenant-a/taken", mount_point=m,
                                                      secret={"taken": "x"})
        r = c.create_key("taken")
        assert r.status_code == 400 and r.json()["message"] == "key already exists"
        # delete removes the metadata (all versions)
        assert c.delete("/v1/key/delete/k1").status_code == 200
        with pytest.raises(hvac.exceptions.InvalidPath):
            vclient.secrets.kv.v2.read_secret_metadata(path="tenant-a/k1", mount_point=m)
        assert c2.get("/v1/key/describe/k1").status_code == 200
    finally:
        stop(daemon, s, c)
        stop(daemon, s2, c2)


def test_transit_encrypts_the_stored_value(daemon, vclient, admin_key, tmp_path):
    m = mount_name()
    tm = "tr" + m
    vclient.sys.enable_secrets_engine("transit", path=tm)
    vclient.secrets.transit.create_key("kes-wrap", mount_point=tm)
    policy = (kt.KV1_POLICY.replace('"kv/', f'"{m}/') +
              f'path "{tm}/encrypt/kes-wrap" {{ capabilities = ["update"] }}\n'
              f'path "{tm}/decrypt/kes-wrap" {{ capabilities = ["update"] }}\n')
    v = kt.setup_vault(daemon, version=1, mount=m, policy=m, role=m, policy_text=policy)
    s, c = start(daemon, v, admin_key, tmp_path,
                 extra_vault={"transit": {"engine": tm, "key": "kes-wrap"}})
    s2, c2 = start(daemon, v, admin_key, tmp_path)  # the same location, without transit
    try:
        assert c.create_key("wrapped").status_code == 200
        stored = vclient.secrets.kv.v1.read_secret(path="wrapped", mount_point=m)["data"]["wrapped"]
        assert stored.startswith("vault:v1:")
        g = c.generate("wrapped").json()
        assert c.decrypt("wrapped", g["ciphertext"]).json()["plaintext"] == g["plaintext"]
        r = c2.generate("wrapped")  # KES without transit cannot read it: 502
        assert r.status_code == 502, r.text
    finally:
        stop(daemon, s, c)
        stop(daemon, s2, c2)


def test_namespace_isolation(daemon, vclient, admin_key, tmp_path):
    ns = "ns" + uuid.uuid4().hex[:6]
    r = kt.vault_request(daemon, "POST", f"/v1/sys/namespaces/{ns}", json={})
    assert r.status_code in (200, 204), r.text
    m = mount_name()
    v = kt.setup_vault(daemon, version=1, mount=m, policy=m, role=m, namespace=ns)
    s, c = start(daemon, v, admin_key, tmp_path, extra_vault={"namespace": ns})
    try:
        assert c.create_key("in-ns").status_code == 200
        nsc = hvac.Client(url=v["endpoint"], token=kt.ROOT_TOKEN, verify=daemon.ca, namespace=ns)
        assert "in-ns" in nsc.secrets.kv.v1.read_secret(path="in-ns", mount_point=m)["data"]
        with pytest.raises((hvac.exceptions.InvalidPath, hvac.exceptions.InvalidRequest)):
            vclient.secrets.kv.v1.read_secret(path="in-ns", mount_point=m)
    finally:
        stop(daemon, s, c)


def test_legacy_values(daemon, vclient, admin_key, tmp_path):
    """Keys an older KES wrote (JSON values) are read; they have no HMAC key (409)."""
    m = mount_name()
    v = kt.setup_vault(daemon, version=1, mount=m, policy=m, role=m)
    s, c = start(daemon, v, admin_key, tmp_path)
    try:
        vclient.secrets.kv.v1.create_or_update_secret(path="old", mount_point=m, secret={
            "old": '{"bytes":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","algorithm":"AES256",'
                   '"created_at":"2021-03-04T05:06:07Z","created_by":"abc"}'})
        d = c.get("/v1/key/describe/old").json()
        assert d["algorithm"] == "AES256" and d["created_by"] == "abc"
        # KES's own legacy JSON ciphertext of this all-zero key (key_test.go #0)
        ct = ('{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"xLxIN3tSCkg2xMafuvwUwg==","nonce":'
              '"gu0mGwUkwcvMEoi5","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}')
        r = c.decrypt("old", ct.encode())
        assert r.status_code == 200 and r.json()["plaintext"] == "AAAAAAAAAAAAAAAAAAAAAA=="
        r = c.post("/v1/key/hmac/old", json={"message": kt.b64(b"m")})
        assert r.status_code == 409 and r.json() == {"message": "key does not support HMAC"}
        # a value that is no KES key: 502
        vclient.secrets.kv.v1.create_or_update_secret(path="junk", mount_point=m,
                                                      secret={"junk": "not a key"})
        assert c.get("/v1/key/describe/junk").status_code == 502
    finally:
        stop(daemon, s, c)


def test_secret_deleted_in_vault_cached_until_any(daemon, vclient, admin_key, tmp_path):
    m = mount_name()
    v = kt.setup_vault(daemon, version=2, mount=m, policy=m, role=m)
    s, c = start(daemon, v, admin_key, tmp_path,
                 cache={"any": "5m", "unused": "0s", "offline": "0s"})
    try:
        assert c.create_key("gone").status_code == 200
        g = c.generate("gone").json()  # now cached
        vclient.secrets.kv.v2.delete_metadata_and_all_versions(path="gone", mount_point=m)
        r = c.decrypt("gone", g["ciphertext"])
        assert r.status_code == 200, r.text  # the cache still serves it
        daemon.clock(advance="PT5M1S")
        r = c.decrypt("gone", g["ciphertext"])
        assert r.status_code == 404 and r.json() == {"message": "key does not exist"}
    finally:
        stop(daemon, s, c)


def test_sealed_vault_offline_cache(daemon, vclient, admin_key, tmp_path):
    m = mount_name()
    v = kt.setup_vault(daemon, version=1, mount=m, policy=m, role=m)
    s, c = start(daemon, v, admin_key, tmp_path,
                 cache={"any": "5m", "unused": "0s", "offline": "10m"})
    unseal = kt.vault_info(daemon)["unsealKeys"][0]
    try:
        assert c.create_key("hot").status_code == 200
        assert c.create_key("cold").status_code == 200
        g = c.generate("hot").json()
        vclient.sys.seal()
        daemon.clock(advance="PT15S")  # status.ping and the cache's check find it sealed
        st = c.get("/v1/status").json()
        assert st.get("keystore_unreachable") is True, st
        r = c.generate("cold")  # not cached: KES fails it
        assert r.status_code == 502 and r.json() == {"message": "failed to read key"}
        assert c.create_key("new").status_code == 502
        # cached, and offline: any expiry does not apply, the offline one does
        daemon.clock(advance="PT6M")
        assert c.decrypt("hot", g["ciphertext"]).status_code == 200
        daemon.clock(advance="PT5M")  # past offline (10 m after the start)
        r = c.decrypt("hot", g["ciphertext"])
        assert r.status_code == 502 and r.json() == {"message": "failed to read key"}
        vclient.sys.submit_unseal_key(unseal)
        daemon.clock(advance="PT15S")
        assert c.decrypt("hot", g["ciphertext"]).status_code == 200
        assert "keystore_unreachable" not in c.get("/v1/status").json() or \
            c.get("/v1/status").json()["keystore_unreachable"] is False
    finally:
        if vclient.sys.is_sealed():
            vclient.sys.submit_unseal_key(unseal)
        stop(daemon, s, c)


def role_tokens(daemon, role):
    """[(accessor, lookup data)] of the live tokens an AppRole role issued."""
    out = []
    r = kt.vault_request(daemon, "LIST", "/v1/auth/token/accessors")
    for acc in r.json()["data"]["keys"]:
        look = kt.vault_request(daemon, "POST", "/v1/auth/token/lookup-accessor",
                                json={"accessor": acc})
        if look.status_code == 200 and (look.json()["data"].get("meta") or {}).get(
                "role_name") == role:
            out.append((acc, look.json()["data"]))
    return out


def test_approle_revoked_and_policy_removed(daemon, vclient, admin_key, tmp_path):
    m = mount_name()
    v = kt.setup_vault(daemon, version=1, mount=m, policy=m, role=m)
    s, c = start(daemon, v, admin_key, tmp_path,
                 cache={"any": "1m", "unused": "0s", "offline": "0s"})
    try:
        assert c.create_key("a").status_code == 200
        assert c.create_key("b").status_code == 200
        g = c.generate("a").json()
        # the policy removed: Vault answers 403, KES 502; the cached key still serves
        r = kt.vault_request(daemon, "DELETE", f"/v1/sys/policies/acl/{m}")
        assert r.status_code in (200, 204), r.text
        r = c.generate("b")
        assert r.status_code == 502 and r.json() == {"message": "failed to read key"}
        assert c.decrypt("a", g["ciphertext"]).status_code == 200
        assert c.get("/v1/key/list/*").status_code == 502
        # back: works again
        r = kt.vault_request(daemon, "PUT", f"/v1/sys/policies/acl/{m}",
                             json={"policy": kt.KV1_POLICY.replace('"kv/', f'"{m}/')})
        assert r.status_code in (200, 204), r.text
        assert c.generate("b").status_code == 200
        # the secret id destroyed and the token revoked: no more Vault access; past the any
        # expiry even the cached key goes
        r = kt.vault_request(daemon, "POST", f"/v1/auth/approle/role/{m}/secret-id/destroy",
                             json={"secret_id": v["secret_id"]})
        assert r.status_code in (200, 204), r.text
        for acc, _ in role_tokens(daemon, m):
            kt.vault_request(daemon, "POST", "/v1/auth/token/revoke-accessor",
                             json={"accessor": acc})
        assert c.decrypt("a", g["ciphertext"]).status_code == 200  # cached
        daemon.clock(advance="PT61S")
        r = c.decrypt("a", g["ciphertext"])
        assert r.status_code == 502 and r.json() == {"message": "failed to read key"}
    finally:
        stop(daemon, s, c)


def test_unreachable_vault_at_start(daemon, admin_key, tmp_path):
    """A keystore that does not answer: the server starts, reports it, and answers 502."""
    v = {"endpoint": "https://127.0.0.1:1", "mount": "kv", "version": 1, "role_id": "r",
         "secret_id": "s", "ca": daemon.ca}
    r = kt.create_server(daemon, kt.kes_config(v, admin=kt.identity_of(admin_key)),
                         name="ks" + uuid.uuid4().hex[:8])
    assert r.status_code == 201, r.text
    s = r.json()
    c = kt.KesClient(s["url"], daemon.ca, api_key=admin_key, directory=str(tmp_path))
    try:
        r = c.create_key("x")
        assert r.status_code == 502 and r.json() == {"message": "failed to create key"}
        r = c.get("/v1/key/describe/x")
        assert r.status_code == 502
        daemon.clock(advance="PT15S")
        assert c.get("/v1/status").json()["keystore_unreachable"] is True
    finally:
        stop(daemon, s, c)


def test_kv2_soft_deleted_version_is_a_keystore_failure(daemon, vclient, admin_key, tmp_path):
    """`vault kv delete` keeps the metadata: Vault's 404 carries a secret without data, which KES
    (through the Vault Go SDK) reads as a malformed entry, 502, not as a missing key."""
    m = mount_name()
    v = kt.setup_vault(daemon, version=2, mount=m, policy=m, role=m)
    s, c = start(daemon, v, admin_key, tmp_path)
    try:
        assert c.create_key("soft").status_code == 200
        vclient.secrets.kv.v2.delete_latest_version_of_secret(path="soft", mount_point=m)
        r = c.get("/v1/key/describe/soft")
        assert r.status_code == 502 and r.json() == {"message": "failed to read key"}
        r = c.create_key("soft")
        assert r.status_code == 502 and r.json() == {"message": "failed to create key"}
    finally:
        stop(daemon, s, c)


def test_token_renewed_on_the_virtual_clock(daemon, vclient, admin_key, tmp_path):
    """The AppRole token (period 5m) is renewed at 80% of its TTL: keys keep loading from Vault
    long after the first token would have expired."""
    m = mount_name()
    v = kt.setup_vault(daemon, version=1, mount=m, policy=m, role=m)
    s, c = start(daemon, v, admin_key, tmp_path,
                 cache={"any": "30s", "unused": "0s", "offline": "0s"})
    try:
        assert c.create_key("r").status_code == 200
        for _ in range(8):  # 16 minutes, each read past the any expiry goes to Vault
            daemon.clock(advance="PT2M")
            r = c.generate("r")
            assert r.status_code == 200, r.text
        # the token in use was renewed: its accessor looks up with time left
        ttls = [d["ttl"] for _, d in role_tokens(daemon, m)]
        assert ttls and max(ttls) > 0, ttls
    finally:
        stop(daemon, s, c)


class RecordingVault:
    """A minimal KV v2 + AppRole Vault over plain HTTP that records each request, to check the
    exact requests KES sends (any Vault, key-providers.md 4.3)."""

    def __init__(self, renewable=True, ttl=60):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        self.log, self.kv, self.lock = [], {}, threading.Lock()
        self.renewable, self.ttl, self.logins = renewable, ttl, 0
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, status, body=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"null") if n else None
                u = urlsplit(self.path)
                rec = {"method": self.command, "path": u.path, "query": u.query, "body": body,
                       "ns": self.headers.get("X-Vault-Namespace"),
                       "token": self.headers.get("X-Vault-Token")}
                with outer.lock:
                    outer.log.append(rec)
                    self._send(*outer.answer(rec))

            do_GET = do_PUT = do_POST = do_DELETE = do_LIST = _any

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"

    def answer(self, rq):
        p = rq["path"]
        if p == "/v1/sys/health":
            return 200, {"initialized": True, "sealed": False, "standby": False}
        if p == "/v1/auth/approle/login":
            self.logins += 1
            if rq["body"] != {"role_id": "rid", "secret_id": "sid"}:
                return 400, {"errors": ["invalid role or secret ID"]}
            return 200, {"auth": {"client_token": f"tok{self.logins}", "lease_duration": self.ttl,
                                  "renewable": self.renewable}}
        if p == "/v1/auth/token/renew-self":
            return 200, {"auth": {"client_token": rq["token"], "lease_duration": self.ttl,
                                  "renewable": self.renewable}}
        if not rq["token"]:
            return 403, {"errors": ["permission denied"]}
        if p.startswith("/v1/kv/data/"):
            name = p[len("/v1/kv/data/"):]
            if rq["method"] == "GET":
                if name not in self.kv:
                    return 404, {"errors": []}
                return 200, {"data": {"data": self.kv[name], "metadata": {"version": 1}}}
            self.kv[name] = rq["body"]["data"]
            return 200, {"data": {"version": 1}}
        if p.startswith("/v1/kv/metadata/"):
            name = p[len("/v1/kv/metadata/"):]
            if rq["method"] == "DELETE":
                self.kv.pop(name, None)
                return 204, None
            keys = sorted(k.split("/", 1)[1] for k in self.kv if k.startswith(name + "/"))
            return (200, {"data": {"keys": keys}}) if keys else (404, {"errors": []})
        return 404, {"errors": []}

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_exact_requests_to_any_vault(daemon, admin_key, tmp_path):
    fv = RecordingVault(renewable=False, ttl=60)
    v = {"endpoint": fv.url, "mount": "kv", "version": 2, "role_id": "rid", "secret_id": "sid",
         "ca": daemon.ca}
    s, c = start(daemon, v, admin_key, tmp_path, prefix="p",
                 extra_vault={"namespace": "ns1"},
                 cache={"any": "10s", "unused": "0s", "offline": "0s"})
    try:
        assert c.create_key("k").status_code == 200
        assert c.generate("k").status_code == 200
        assert c.get("/v1/key/list/*").json()["names"] == ["k"]
        assert c.delete("/v1/key/delete/k").status_code == 200
        log = [r for r in fv.log if r["path"] != "/v1/sys/health"]
        login = log[0]
        assert login["method"] == "POST" and login["path"] == "/v1/auth/approle/login"
        assert login["ns"] == "ns1" and login["token"] is None
        kv = [(r["method"], r["path"], r["query"]) for r in log[1:]]
        assert kv == [("GET", "/v1/kv/data/p/k", ""), ("PUT", "/v1/kv/data/p/k", ""),
                      ("GET", "/v1/kv/data/p/k", "version=1"),
                      ("LIST", "/v1/kv/metadata/p", "list=true"),
                      ("DELETE", "/v1/kv/metadata/p/k", "")], kv
        put = log[2]
        assert put["body"]["options"] == {"cas": 0} and list(put["body"]["data"]) == ["k"]
        assert all(r["ns"] == "ns1" and r["token"] == "tok1" for r in log[1:])
        # a token that is not renewable: at 80% of its TTL KES logs in again
        fv.log.clear()
        daemon.clock(advance="PT50S")
        assert c.create_key("k2").status_code == 200
        paths = [r["path"] for r in fv.log if r["path"] != "/v1/sys/health"]
        assert "/v1/auth/approle/login" in paths and "/v1/auth/token/renew-self" not in paths
        assert fv.log[-1]["token"] == "tok2"
        # the health checks (status.ping, the cache's): no namespace, Vault's 299 codes
        health = [r for r in fv.log if r["path"] == "/v1/sys/health"]
        assert health and all(r["ns"] is None for r in health)
        assert "sealedcode=299" in health[0]["query"]
    finally:
        stop(daemon, s, c)
        fv.close()
