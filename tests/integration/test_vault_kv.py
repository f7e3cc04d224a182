"""The Vault API's KV v1 and KV v2 engines through a real client (hvac 0.11.2) and through the
exact requests pg_tde and KES send (reference/key-providers.md 4.1, 4.3, 4.4)."""
import base64
import datetime
import uuid

import hvac
import pytest
import requests

from conftest import SUB, parse_time

AL = f"/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values"


def vault_info(d):
    r = d.get("/emulator/info")
    assert r.status_code == 200, r.text
    v = r.json()["vault"]
    assert v["address"], v
    return v


@pytest.fixture(scope="module")
def vault(daemon):
    v = vault_info(daemon)
    client = hvac.Client(url=v["address"], token=v["rootToken"], verify=daemon.ca)
    assert client.is_authenticated()
    return daemon, v, client


def raw(vault, method, path, body=None, token=None, headers=None, **kw):
    """One request as pg_tde/KES send it (no hvac)."""
    d, v, _ = vault
    h = {"X-Vault-Token": token or v["rootToken"], "Content-Type": "application/json"}
    h.update(headers or {})
    return requests.request(method, v["address"] + path, json=body, headers=h, verify=d.ca,
                            timeout=10, **kw)


def mount(client, kind, version=None):
    path = f"{kind}-{uuid.uuid4().hex[:8]}"
    opts = {"version": version} if version else None
    client.sys.enable_secrets_engine(backend_type=kind, path=path, options=opts)
    return path


def test_kv2_pg_tde_requests(vault):
    _, _, client = vault
    m = mount(client, "kv", "2")
    r = raw(vault, "GET", f"/v1/sys/mounts/{m}")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["type"] == "kv" and r.json()["data"]["options"]["version"] == "2"
    # an empty mount: 404 {"errors":[]} (pg_tde accepts 200 or 404)
    r = raw(vault, "GET", f"/v1/{m}/metadata/?list=true")
    assert r.status_code == 404 and r.json() == {"errors": []}, r.text
    r = raw(vault, "GET", f"/v1/{m}/data/pgtde-key")
    assert r.status_code == 404
    key = base64.b64encode(bytes(range(32))).decode()
    r = raw(vault, "POST", f"/v1/{m}/data/pgtde-key", {"data": {"key": key}})
    assert r.status_code == 200, r.text
    d = r.json()["data"]
    assert d["version"] == 1 and d["destroyed"] is False and d["deletion_time"] == ""
    assert d["created_time"].endswith("Z") and "custom_metadata" in d
    r = raw(vault, "GET", f"/v1/{m}/data/pgtde-key")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["data"]["data"] == {"key": key}
    assert body["data"]["metadata"]["version"] == 1
    for f in ("request_id", "lease_id", "renewable", "lease_duration", "wrap_info", "warnings",
              "auth"):
        assert f in body, f
    r = raw(vault, "GET", f"/v1/{m}/metadata/?list=true")
    assert r.status_code == 200 and r.json()["data"]["keys"] == ["pgtde-key"], r.text


def test_kv2_kes_requests(vault):
    _, _, client = vault
    m = mount(client, "kv-v2")
    r = raw(vault, "GET", f"/v1/{m}/data/kes/my-key")
    assert r.status_code == 404
    r = raw(vault, "PUT", f"/v1/{m}/data/kes/my-key",
            {"options": {"cas": 0}, "data": {"my-key": "dmFsdWU="}})
    assert r.status_code == 200, r.text
    r = raw(vault, "PUT", f"/v1/{m}/data/kes/my-key",
            {"options": {"cas": 0}, "data": {"my-key": "other"}})
    assert r.status_code == 400
    assert r.json() == {"errors": ["check-and-set parameter did not match the current version"]}
    r = raw(vault, "GET", f"/v1/{m}/data/kes/my-key?version=1")
    assert r.status_code == 200 and r.json()["data"]["data"]["my-key"] == "dmFsdWU="
    r = raw(vault, "GET", f"/v1/{m}/metadata/kes?list=true")
    assert r.status_code == 200 and r.json()["data"]["keys"] == ["my-key"]
    r = raw(vault, "LIST", f"/v1/{m}/metadata/kes/")
    assert r.status_code == 200 and r.json()["data"]["keys"] == ["my-key"]
    r = raw(vault, "DELETE", f"/v1/{m}/metadata/kes/my-key")
    assert r.status_code == 204 and r.text == ""
    r = raw(vault, "GET", f"/v1/{m}/data/kes/my-key?version=1")
    assert r.status_code == 404
    r = raw(vault, "GET", f"/v1/{m}/metadata/kes?list=true")
    assert r.status_code == 404


def test_kv2_hvac_versions(vault):
    _, _, client = vault
    m = mount(client, "kv", "2")
    kv = client.secrets.kv.v2
    assert kv.create_or_update_secret("app/db", {"pw": "one"}, mount_point=m)["data"]["version"] == 1
    assert kv.create_or_update_secret("app/db", {"pw": "two"}, cas=1,
                                      mount_point=m)["data"]["version"] == 2
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        kv.create_or_update_secret("app/db", {"pw": "x"}, cas=1, mount_point=m)
    assert "check-and-set parameter did not match the current version" in str(e.value)
    assert kv.read_secret_version("app/db", mount_point=m)["data"]["data"] == {"pw": "two"}
    assert kv.read_secret_version("app/db", version=1, mount_point=m)["data"]["data"] == {"pw": "one"}
    assert kv.list_secrets("", mount_point=m)["data"]["keys"] == ["app/"]
    assert kv.list_secrets("app", mount_point=m)["data"]["keys"] == ["db"]
    kv.patch("app/db", {"user": "u"}, mount_point=m)
    assert kv.read_secret_version("app/db", mount_point=m)["data"]["data"] == {"pw": "two", "user": "u"}

    # soft delete of the latest: 404 with the metadata in data
    kv.delete_latest_version_of_secret("app/db", mount_point=m)
    r = raw(vault, "GET", f"/v1/{m}/data/app/db")
    assert r.status_code == 404
    md = r.json()["data"]["metadata"]
    assert r.json()["data"]["data"] is None and md["version"] == 3 and md["deletion_time"] != ""
    kv.undelete_secret_versions("app/db", [3], mount_point=m)
    assert kv.read_secret_version("app/db", mount_point=m)["data"]["metadata"]["version"] == 3
    kv.delete_secret_versions("app/db", [1], mount_point=m)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("app/db", version=1, mount_point=m)
    kv.destroy_secret_versions("app/db", [2], mount_point=m)
    r = raw(vault, "GET", f"/v1/{m}/data/app/db?version=2")
    assert r.status_code == 404 and r.json()["data"]["metadata"]["destroyed"] is True

    meta = kv.read_secret_metadata("app/db", mount_point=m)["data"]
    assert meta["current_version"] == 3 and meta["oldest_version"] == 0
    assert set(meta["versions"]) == {"1", "2", "3"}
    assert meta["versions"]["2"]["destroyed"] is True
    assert meta["versions"]["1"]["deletion_time"] != ""
    for f in ("cas_required", "created_time", "updated_time", "custom_metadata",
              "delete_version_after", "max_versions"):
        assert f in meta, f

    # pruning by max_versions
    kv.update_metadata("app/db", max_versions=2, mount_point=m)
    kv.create_or_update_secret("app/db", {"pw": "four"}, mount_point=m)
    meta = kv.read_secret_metadata("app/db", mount_point=m)["data"]
    assert sorted(meta["versions"]) == ["3", "4"] and meta["oldest_version"] == 3
    assert meta["max_versions"] == 2

    # mount config: cas_required
    kv.configure(max_versions=5, cas_required=True, mount_point=m)
    conf = kv.read_configuration(mount_point=m)["data"]
    assert conf == {"cas_required": True, "delete_version_after": "0s", "max_versions": 5}
    r = raw(vault, "POST", f"/v1/{m}/data/new", {"data": {"a": "b"}})
    assert r.status_code == 400
    assert r.json() == {"errors": ["check-and-set parameter required for this call"]}
    kv.delete_metadata_and_all_versions("app/db", mount_point=m)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata("app/db", mount_point=m)


def test_kv2_delete_version_after_follows_the_clock(vault):
    d, _, client = vault
    m = mount(client, "kv", "2")
    kv = client.secrets.kv.v2
    kv.update_metadata("ttl", delete_version_after="1h", mount_point=m)
    kv.create_or_update_secret("ttl", {"a": "b"}, mount_point=m)
    assert kv.read_secret_version("ttl", mount_point=m)["data"]["data"] == {"a": "b"}
    assert d.post("/emulator/clock", json={"advance": "PT2H"}).status_code in (200, 204)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("ttl", mount_point=m)


def test_kv2_errors(vault):
    _, _, client = vault
    m = mount(client, "kv", "2")
    r = raw(vault, "POST", f"/v1/{m}/data/x", {"nodata": True})
    assert r.status_code == 400 and r.json() == {"errors": ["no data provided"]}
    r = raw(vault, "POST", f"/v1/{m}/delete/x", {})
    assert r.status_code == 400 and r.json() == {"errors": ["no version number provided"]}
    r = raw(vault, "GET", f"/v1/{m}/data/x?version=abc")
    assert r.status_code == 400
    r = raw(vault, "GET", f"/v1/{m}/bogus/x")
    assert r.status_code == 404 and "no handler for route" in r.json()["errors"][0]
    r = raw(vault, "GET", f"/v1/{m}/data/x", token="hvs.nope")
    assert r.status_code == 403 and r.json() == {"errors": ["permission denied"]}


def test_kv1_hvac(vault):
    _, _, client = vault
    m = mount(client, "kv", "1")
    kv = client.secrets.kv.v1
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret("a/b", mount_point=m)
    r = kv.create_or_update_secret("a/b", {"x": "y"}, mount_point=m)
    assert r.status_code == 204
    assert kv.read_secret("a/b", mount_point=m)["data"] == {"x": "y"}
    kv.create_or_update_secret("c", {"n": "1"}, mount_point=m)
    assert kv.list_secrets("", mount_point=m)["data"]["keys"] == ["a/", "c"]
    assert kv.list_secrets("a", mount_point=m)["data"]["keys"] == ["b"]
    assert kv.delete_secret("c", mount_point=m).status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret("c", mount_point=m)
    r = raw(vault, "LIST", f"/v1/{m}/nothing")
    assert r.status_code == 404 and r.json() == {"errors": []}


def test_disabled_mount_comes_back_empty(vault):
    _, _, client = vault
    m = mount(client, "kv", "2")
    client.secrets.kv.v2.create_or_update_secret("k", {"a": "b"}, mount_point=m)
    client.sys.disable_secrets_engine(m)
    client.sys.enable_secrets_engine(backend_type="kv", path=m, options={"version": "2"})
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.kv.v2.read_secret_version("k", mount_point=m)


def activity(d, rid):
    start = parse_time(d.get("/emulator/clock").json()["now"]) - datetime.timedelta(days=1)
    flt = (f"eventTimestamp ge '{start.strftime('%Y-%m-%dT%H:%M:%S')}Z' "
           f"and resourceId eq '{rid}'")
    r = d.get(AL, params={"api-version": "2015-04-01", "$filter": flt})
    assert r.status_code == 200, r.text
    return [e["operationName"]["value"] for e in r.json()["value"]]


def test_events_and_activity_of_deletes(vault):
    d, _, client = vault
    m = mount(client, "kv", "2")
    kv = client.secrets.kv.v2
    stats = lambda: d.get("/emulator/stats").json()["events"]
    before = stats()
    kv.create_or_update_secret("ev", {"a": "b"}, mount_point=m)
    kv.create_or_update_secret("ev", {"a": "c"}, mount_point=m)
    after = stats()
    assert after["VaultSecretChanged"] == before["VaultSecretChanged"] + 2
    kv.destroy_secret_versions("ev", [1], mount_point=m)
    kv.delete_metadata_and_all_versions("ev", mount_point=m)
    assert stats()["VaultSecretDeleted"] == after["VaultSecretDeleted"] + 2
    ops = activity(d, f"/subscriptions/{SUB}/providers/pgcmk.Vault/namespaces/root/{m}/ev")
    assert "pgcmk.Vault/secrets/destroy" in ops and "pgcmk.Vault/secrets/metadata/delete" in ops
    # a refused write changes nothing and announces nothing
    r = raw(vault, "POST", f"/v1/{m}/data/ev2", {"options": {"cas": 5}, "data": {"a": "b"}})
    assert r.status_code == 400
    assert stats()["VaultSecretChanged"] == after["VaultSecretChanged"]


def test_namespaces_are_isolated(vault):
    d, v, client = vault
    ns = f"ns{uuid.uuid4().hex[:6]}"
    r = raw(vault, "POST", f"/v1/sys/namespaces/{ns}", {})
    assert r.status_code in (200, 204), r.text
    nsc = hvac.Client(url=v["address"], token=v["rootToken"], verify=d.ca, namespace=ns)
    m = mount(nsc, "kv", "2")
    nsc.secrets.kv.v2.create_or_update_secret("k", {"in": "ns"}, mount_point=m)
    assert nsc.secrets.kv.v2.read_secret_version("k", mount_point=m)["data"]["data"] == {"in": "ns"}
    # the same path in the root namespace is another tree
    client.sys.enable_secrets_engine(backend_type="kv", path=m, options={"version": "2"})
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.kv.v2.read_secret_version("k", mount_point=m)
    # and the path-prefix form reaches the namespace's secret
    r = raw(vault, "GET", f"/v1/{ns}/{m}/data/k")
    assert r.status_code == 200 and r.json()["data"]["data"] == {"in": "ns"}, r.text


def test_acl_create_versus_update_by_existence(vault):
    d, v, client = vault
    m = mount(client, "kv", "2")
    client.secrets.kv.v2.create_or_update_secret("exists", {"a": "b"}, mount_point=m)
    pol = f"kv-create-{uuid.uuid4().hex[:6]}"
    client.sys.create_or_update_policy(
        pol, f'path "{m}/data/*" {{ capabilities = ["create"] }}\n'
             f'path "{m}/metadata/*" {{ capabilities = ["list"] }}\n')
    tok = client.auth.token.create(policies=[pol])["auth"]["client_token"]
    # a new secret needs "create": allowed
    r = raw(vault, "POST", f"/v1/{m}/data/fresh", {"data": {"x": "1"}}, token=tok)
    assert r.status_code == 200, r.text
    # overwriting needs "update": denied, as are reads
    r = raw(vault, "POST", f"/v1/{m}/data/fresh", {"data": {"x": "2"}}, token=tok)
    assert r.status_code == 403 and r.json() == {"errors": ["permission denied"]}, r.text
    r = raw(vault, "POST", f"/v1/{m}/data/exists", {"data": {"x": "2"}}, token=tok)
    assert r.status_code == 403
    r = raw(vault, "GET", f"/v1/{m}/data/fresh", token=tok)
    assert r.status_code == 403
    r = raw(vault, "LIST", f"/v1/{m}/metadata/", token=tok)
    assert r.status_code == 200 and sorted(r.json()["data"]["keys"]) == ["exists", "fresh"]
