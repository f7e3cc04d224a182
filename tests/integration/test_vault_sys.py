"""The Vault-compatible API's core (src/vaultapi/): listener, pipeline, sys/ paths, namespaces.

Driven with hvac (the real client) and with requests for the wire details hvac hides."""
import datetime
import json

import hvac
import pytest
import requests

from conftest import SUB, parse_time

AL = f"/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values"

ROOT_TOKEN = "hvs.pgcmk-dev-root-token"
UNSEAL_KEY = "cGdjbWstZGV2LXVuc2VhbC1rZXktMDEyMzQ1Njc4OWE="


@pytest.fixture(scope="module")
def vinfo(daemon):
    info = daemon.get("/emulator/info").json()
    assert info["ports"]["vault"] == info["vault"]["port"]
    return info["vault"]


@pytest.fixture(scope="module")
def vurl(vinfo):
    return vinfo["address"]


@pytest.fixture
def client(vurl, daemon):
    return hvac.Client(url=vurl, token=ROOT_TOKEN, verify=daemon.ca)


def raw(daemon, vurl, method, path, token=ROOT_TOKEN, headers=None, **kw):
    h = dict(headers or {})
    if token:
        h["X-Vault-Token"] = token
    return requests.request(method, vurl + path, headers=h, verify=daemon.ca, timeout=10, **kw)


def test_info_and_banner(daemon, vinfo):
    assert vinfo["rootToken"] == ROOT_TOKEN
    assert vinfo["unsealKeys"] == [UNSEAL_KEY]
    assert vinfo["address"].startswith("https://127.0.0.1:")
    assert vinfo["caCertificate"] == daemon.ca


def test_health_and_seal_status(client, daemon, vurl):
    r = raw(daemon, vurl, "GET", "/v1/sys/health", token=None)
    assert r.status_code == 200
    h = r.json()
    assert h["initialized"] is True and h["sealed"] is False and h["standby"] is False
    assert client.sys.read_seal_status()["sealed"] is False
    assert client.sys.is_initialized() is True
    r = raw(daemon, vurl, "HEAD", "/v1/sys/health", token=None)
    assert r.status_code == 200 and r.content == b""


def test_seal_unseal(client, daemon, vurl):
    client.sys.seal()
    try:
        assert client.sys.is_sealed() is True
        # health with KES's overrides, and the defaults
        assert raw(daemon, vurl, "GET", "/v1/sys/health", token=None).status_code == 503
        r = raw(daemon, vurl, "GET", "/v1/sys/health?sealedcode=299&uninitcode=298", token=None)
        assert r.status_code == 299 and r.json()["sealed"] is True
        # everything else: 503 Vault is sealed
        r = raw(daemon, vurl, "GET", "/v1/secret/data/pg-key")
        assert r.status_code == 503 and r.json() == {"errors": ["Vault is sealed"]}
        r = raw(daemon, vurl, "GET", "/v1/auth/token/lookup-self")
        assert r.status_code == 503 and r.json() == {"errors": ["Vault is sealed"]}
        with pytest.raises(hvac.exceptions.VaultDown):
            client.auth.token.lookup_self()
        with pytest.raises(hvac.exceptions.InvalidRequest):
            client.sys.submit_unseal_key("d3Jvbmc=")
        st = client.sys.submit_unseal_key(reset=True)
        assert st["sealed"] is True and st["progress"] == 0 and st["t"] == 1
        st = client.sys.submit_unseal_key(UNSEAL_KEY)
        assert st["sealed"] is False
    finally:
        raw(daemon, vurl, "PUT", "/v1/sys/unseal", json={"key": UNSEAL_KEY})
    assert client.auth.token.lookup_self()["data"]["policies"] == ["root"]
    assert "pgcmk.Vault/seal/action" in activity(daemon, "root")
    assert "pgcmk.Vault/unseal/action" in activity(daemon, "root")
    ev = daemon.get("/emulator/stats").json()["events"]
    assert ev["VaultSealed"] >= 1 and ev["VaultUnsealed"] >= 1


def activity(d, what):
    rid = f"/subscriptions/{SUB}/providers/pgcmk.Vault/namespaces/{what}"
    start = parse_time(d.get("/emulator/clock").json()["now"]) - datetime.timedelta(minutes=10)
    flt = (f"eventTimestamp ge '{start.strftime('%Y-%m-%dT%H:%M:%S')}Z' "
           f"and resourceId eq '{rid}'")
    r = d.get(AL, params={"api-version": "2015-04-01", "$filter": flt})
    assert r.status_code == 200, r.text
    return [e["operationName"]["value"] for e in r.json()["value"]]


def test_default_mounts_and_auth(client):
    mounts = client.sys.list_mounted_secrets_engines()
    assert "sys/" in mounts["data"] and mounts["data"]["sys/"]["type"] == "system"
    auths = client.sys.list_auth_methods()
    assert auths["data"]["token/"]["type"] == "token"


def test_mount_enable_read_tune_disable(client, daemon, vurl):
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    if "secret/" not in mounts and not _has_kv(client):
        pytest.skip("no kv backend row in this build")
    client.sys.enable_secrets_engine("kv", path="kvone", options={"version": "1"},
                                     description="first")
    client.sys.enable_secrets_engine("kv-v2", path="kvtwo")
    r = raw(daemon, vurl, "GET", "/v1/sys/mounts/kvtwo")
    assert r.status_code == 200
    d = r.json()["data"]
    assert d["type"] == "kv" and d["options"]["version"] == "2"
    r = raw(daemon, vurl, "GET", "/v1/sys/mounts/kvone")
    assert r.json()["data"]["options"]["version"] == "1"
    assert r.json()["data"]["description"] == "first"
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        client.sys.enable_secrets_engine("kv", path="kvone")
    assert "path is already in use at kvone/" in str(e.value)
    tune = client.sys.read_mount_configuration("kvone")
    assert tune["data"]["default_lease_ttl"] == 0
    client.sys.tune_mount_configuration("kvone", default_lease_ttl="1h",
                                        options={"version": "2"})
    tune = client.sys.read_mount_configuration("kvone")
    assert tune["data"]["default_lease_ttl"] == 3600
    assert tune["data"]["options"]["version"] == "2"
    before = daemon.get("/emulator/stats").json()["events"]["VaultMountDisabled"]
    client.sys.disable_secrets_engine("kvone")
    assert daemon.get("/emulator/stats").json()["events"]["VaultMountDisabled"] == before + 1
    assert activity(daemon, "root/kvone").count("pgcmk.Vault/mounts/write") == 1
    assert "pgcmk.Vault/mounts/delete" in activity(daemon, "root/kvone")
    r = raw(daemon, vurl, "GET", "/v1/sys/mounts/kvone")
    assert r.status_code == 400
    assert "kvone/" not in client.sys.list_mounted_secrets_engines()["data"]


def _has_kv(client):
    try:
        client.sys.enable_secrets_engine("kv", path="probe-kv")
    except hvac.exceptions.InvalidRequest:
        return False
    client.sys.disable_secrets_engine("probe-kv")
    return True


def test_mount_errors(client, daemon, vurl):
    r = raw(daemon, vurl, "POST", "/v1/sys/mounts/foo", json={"type": "nosuch"})
    assert r.status_code == 400
    assert r.json() == {"errors": ["plugin not found in the catalog: nosuch"]}
    r = raw(daemon, vurl, "POST", "/v1/sys/mounts/foo", json={})
    assert r.status_code == 400
    r = raw(daemon, vurl, "POST", "/v1/sys/mounts/sys/x", json={"type": "kv"})
    assert r.status_code == 400
    r = raw(daemon, vurl, "GET", "/v1/sys/mounts/none")
    assert r.status_code == 400
    # an auth method of an unknown type, and the token method cannot be mounted again
    r = raw(daemon, vurl, "POST", "/v1/sys/auth/x", json={"type": "nosuch"})
    assert r.status_code == 400
    r = raw(daemon, vurl, "POST", "/v1/sys/auth/token", json={"type": "token"})
    assert r.status_code == 400


def test_tokens_and_headers(daemon, vurl):
    # X-Vault-Token and Authorization: Bearer are the same
    r = raw(daemon, vurl, "GET", "/v1/auth/token/lookup-self", token=None,
            headers={"Authorization": "Bearer " + ROOT_TOKEN, "X-Vault-Request": "true"})
    assert r.status_code == 200 and r.json()["data"]["policies"] == ["root"]
    r = raw(daemon, vurl, "GET", "/v1/auth/token/lookup-self", token=None)
    assert r.status_code == 403 and r.json() == {"errors": ["permission denied"]}
    r = raw(daemon, vurl, "GET", "/v1/auth/token/lookup-self", token="hvs.nope")
    assert r.status_code == 403 and r.json() == {"errors": ["permission denied"]}
    r = raw(daemon, vurl, "GET", "/v1/sys/mounts", token=None)
    assert r.status_code == 403


def test_list_method_and_query(client, daemon, vurl):
    client.sys.create_namespace("lst-a")
    a = raw(daemon, vurl, "LIST", "/v1/sys/namespaces")
    b = raw(daemon, vurl, "GET", "/v1/sys/namespaces?list=true")
    c = raw(daemon, vurl, "LIST", "/v1/sys/namespaces/")
    assert a.status_code == b.status_code == c.status_code == 200
    assert "lst-a/" in a.json()["data"]["keys"]
    assert a.json()["data"]["keys"] == b.json()["data"]["keys"] == c.json()["data"]["keys"]
    client.sys.delete_namespace("lst-a")


def test_bad_input(daemon, vurl):
    r = raw(daemon, vurl, "PUT", "/v1/sys/mounts/x", data=b"{not json",
            headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["errors"][0].startswith("failed to parse JSON input: ")
    r = raw(daemon, vurl, "PUT", "/v1/sys/mounts/x", data=b"[1,2]")
    assert r.status_code == 400
    assert "cannot unmarshal array" in r.json()["errors"][0]
    r = raw(daemon, vurl, "GET", "/v1/nosuch/path")
    assert r.status_code == 404
    assert r.json() == {"errors": ["no handler for route \"nosuch/path\". route entry not found."]}
    r = raw(daemon, vurl, "GET", "/v1/sys/nosuch")
    assert r.status_code == 404 and r.json() == {"errors": ["unsupported path"]}
    r = raw(daemon, vurl, "GET", "/nope")
    assert r.status_code == 404
    r = raw(daemon, vurl, "DELETE", "/v1/sys/health")
    assert r.status_code == 405
    r = raw(daemon, vurl, "GET", "/v1/sys/seal")
    assert r.status_code == 405
    r = raw(daemon, vurl, "TRACE", "/v1/sys/health")
    assert r.status_code == 405


def test_oversize_body(start_daemon):
    d = start_daemon("--max-body-kb", "4")
    info = d.get("/emulator/info").json()["vault"]
    r = requests.put(info["address"] + "/v1/sys/mounts/big", data=b"{" + b" " * 8000 + b"}",
                     headers={"X-Vault-Token": ROOT_TOKEN}, verify=d.ca, timeout=10)
    assert r.status_code == 413
    assert "request body too large" in r.json()["errors"][0]
    # the listener still answers
    r = requests.get(info["address"] + "/v1/sys/health", verify=d.ca, timeout=10)
    assert r.status_code == 200


def test_namespaces_isolation(client, daemon, vurl):
    client.sys.create_namespace("team1")
    ns = hvac.Client(url=vurl, token=ROOT_TOKEN, verify=daemon.ca, namespace="team1")
    ns.sys.create_namespace("sub")
    keys = ns.sys.list_namespaces()["data"]["keys"]
    assert keys == ["sub/"]
    r = raw(daemon, vurl, "GET", "/v1/sys/namespaces/sub", headers={"X-Vault-Namespace": "team1"})
    assert r.status_code == 200 and r.json()["data"]["path"] == "sub/"
    # a token of team1 works there and below, not in the root or a sibling
    tok = ns.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    r = raw(daemon, vurl, "GET", "/v1/auth/token/lookup-self", token=tok,
            headers={"X-Vault-Namespace": "team1"})
    assert r.status_code == 200
    r = raw(daemon, vurl, "GET", "/v1/team1/sub/auth/token/lookup-self", token=tok)
    assert r.status_code == 200
    r = raw(daemon, vurl, "GET", "/v1/auth/token/lookup-self", token=tok)
    assert r.status_code == 403
    client.sys.create_namespace("team2")
    r = raw(daemon, vurl, "GET", "/v1/auth/token/lookup-self", token=tok,
            headers={"X-Vault-Namespace": "team2"})
    assert r.status_code == 403
    # a namespace that does not exist
    r = raw(daemon, vurl, "GET", "/v1/sys/mounts", headers={"X-Vault-Namespace": "nope"})
    assert r.status_code == 404
    # deleting the namespace revokes its tokens
    r = raw(daemon, vurl, "DELETE", "/v1/sys/namespaces/team1")
    assert r.status_code == 204
    r = raw(daemon, vurl, "GET", "/v1/auth/token/lookup-self", token=tok,
            headers={"X-Vault-Namespace": "team1"})
    assert r.status_code == 404
    r = raw(daemon, vurl, "POST", "/v1/auth/token/lookup", json={"token": tok})
    assert r.status_code == 400


def test_cors_and_request_log(daemon, vurl):
    r = raw(daemon, vurl, "OPTIONS", "/v1/sys/health", token=None,
            headers={"Origin": "https://localhost:8443",
                     "Access-Control-Request-Method": "GET"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "https://localhost:8443"
    assert "X-Vault-Token" in r.headers["Access-Control-Allow-Headers"]
    r = raw(daemon, vurl, "GET", "/v1/sys/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    raw(daemon, vurl, "PUT", "/v1/sys/mounts/logged",
        json={"type": "nosuch", "options": {"version": "2"}, "n": 3})
    log = daemon.get("/emulator/vault/requests?limit=5").json()["value"]
    e = [x for x in log if x["path"] == "/v1/sys/mounts/logged"][-1]
    assert e["method"] == "PUT" and e["status"] == 400
    assert e["body"] == {"type": "<redacted>", "options": {"version": "<redacted>"}, "n": 3}
    assert "X-Vault-Token" in e["headers"] or "x-vault-token" in [h.lower() for h in e["headers"]]
    assert ROOT_TOKEN not in json.dumps(log)


def test_auth_enable_list_disable(client):
    try:
        client.sys.enable_auth_method("approle", path="ar-test", description="apps")
    except hvac.exceptions.InvalidRequest as e:
        assert "plugin not found in the catalog: approle" in str(e)
        pytest.skip("no approle backend row in this build")
    auths = client.sys.list_auth_methods()["data"]
    assert auths["ar-test/"]["type"] == "approle"
    assert auths["ar-test/"]["description"] == "apps"
    assert auths["ar-test/"]["accessor"].startswith("auth_approle_")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.enable_auth_method("approle", path="ar-test")
    client.sys.disable_auth_method("ar-test")
    assert "ar-test/" not in client.sys.list_auth_methods()["data"]


def test_mounts_are_per_namespace(client, daemon, vurl):
    if not _has_kv(client):
        pytest.skip("no kv backend row in this build")
    client.sys.create_namespace("mnt-ns")
    ns = hvac.Client(url=vurl, token=ROOT_TOKEN, verify=daemon.ca, namespace="mnt-ns")
    ns.sys.enable_secrets_engine("kv", path="nskv", options={"version": "2"})
    assert "nskv/" in ns.sys.list_mounted_secrets_engines()["data"]
    assert "nskv/" not in client.sys.list_mounted_secrets_engines()["data"]
    r = raw(daemon, vurl, "GET", "/v1/mnt-ns/sys/mounts/nskv")
    assert r.status_code == 200 and r.json()["data"]["options"]["version"] == "2"
    r = raw(daemon, vurl, "GET", "/v1/sys/mounts/nskv")
    assert r.status_code == 400
    assert raw(daemon, vurl, "DELETE", "/v1/sys/namespaces/mnt-ns").status_code == 204
    r = raw(daemon, vurl, "GET", "/v1/mnt-ns/sys/mounts/nskv")
    assert r.status_code == 404


def test_namespace_delete_drops_its_policies_and_roles(client, daemon, vurl):
    """A namespace deleted and created again is empty: no policy, no AppRole role left over."""
    hdr = {"X-Vault-Namespace": "gone1"}
    for attempt in range(2):
        client.sys.create_namespace("gone1")
        r = raw(daemon, vurl, "GET", "/v1/sys/policies/acl/p1", headers=hdr)
        assert r.status_code == 404, (attempt, r.text)  # the second time: nothing left over
        r = raw(daemon, vurl, "PUT", "/v1/sys/policies/acl/p1", headers=hdr,
                json={"policy": 'path "kv/*" { capabilities = ["read"] }'})
        assert r.status_code == 204
        r = raw(daemon, vurl, "GET", "/v1/auth/approle/role/r1/role-id", headers=hdr)
        assert r.status_code in (400, 404), (attempt, r.text)
        assert raw(daemon, vurl, "POST", "/v1/sys/auth/approle", headers=hdr,
                   json={"type": "approle"}).status_code == 204
        assert raw(daemon, vurl, "POST", "/v1/auth/approle/role/r1", headers=hdr,
                   json={"policies": "p1"}).status_code == 204
        assert raw(daemon, vurl, "DELETE", "/v1/sys/namespaces/gone1").status_code == 204
    # the root namespace's policies are untouched
    assert raw(daemon, vurl, "GET", "/v1/sys/policies/acl/default").status_code == 200
