"""Self-managed databases whose principal key is a KV v2 secret on pgcmk's own Vault listener:
the agent talks to it over HTTPS like pg_tde's vault-v2 provider (token from a file, pgcmk's CA),
the request log shows pg_tde's exact shapes, and every drill (delete the secret, seal, revoke the
token, a policy that loses read, disable the mount) reaches the database through the event path
(PGCMK_EV_HV_* -> the "vault-kv" row), without a clock advance."""
import uuid

import hvac
import pytest

from conftest import assert_arm_error
from pgtools import data_url, explain, settle

DB = "/emulator/tde/databases/"


@pytest.fixture(scope="module")
def hv(daemon):
    v = daemon.get("/emulator/info").json()["vault"]
    client = hvac.Client(url=v["address"], token=v["rootToken"], verify=daemon.ca)
    assert client.is_authenticated()
    return v, client


def setup_db(daemon, hv, tmp_path, read=True):
    """A KV v2 mount, a policy allowing {mount}/data/* (and reading the mount), a token of that
    policy in a file, and a database on them."""
    v, client = hv
    m = "kv-" + uuid.uuid4().hex[:8]
    client.sys.enable_secrets_engine(backend_type="kv", path=m, options={"version": "2"})
    pol = "pg-" + m
    client.sys.create_or_update_policy(name=pol, policy=policy_text(m, read))
    tok = client.auth.token.create(policies=[pol], ttl="720h")["auth"]["client_token"]
    tf = tmp_path / ("token-" + m)
    tf.write_text(tok + "\n")
    name = "db-" + m
    prov = {"type": "vault-v2", "url": v["address"], "mountPath": m, "tokenPath": str(tf),
            "caPath": daemon.ca, "namespace": None}
    r = daemon.put(DB + name, json={"keyProvider": prov, "principalKeyName": "pg-key"})
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "Ready"
    return m, pol, tok, name


def policy_text(m, read=True):
    caps = '["create", "read", "update", "list"]' if read else '["list"]'
    return (f'path "{m}/data/*" {{ capabilities = {caps} }}\n'
            f'path "{m}/metadata/*" {{ capabilities = ["list", "read"] }}\n'
            f'path "{m}/metadata" {{ capabilities = ["list"] }}\n'
            f'path "sys/mounts/*" {{ capabilities = ["read"] }}\n')


def state(daemon, name):
    settle(daemon)
    return daemon.get(DB + name).json()


def bad_rules(daemon, name):
    return [x["rule"] for x in explain(daemon, DB + name)["rules"][:5] if not x["ok"]]


def test_ready_with_pg_tdes_exact_requests(daemon, hv, tmp_path):
    v, client = hv
    m, _, _, name = setup_db(daemon, hv, tmp_path)
    # the agent made the key (32 bytes) with pg_tde's POST; hvac reads it back
    sec = client.secrets.kv.v2.read_secret_version(path="pg-key", mount_point=m)
    import base64
    assert len(base64.b64decode(sec["data"]["data"]["key"])) == 32
    assert sec["data"]["metadata"]["version"] == 1
    assert daemon.get(DB + name).json()["principalKey"] == {"name": "pg-key",
                                                            "uniqueIdentifier": "1"}
    log = daemon.get("/emulator/vault/requests?limit=50").json()["value"]
    # the agent's requests (hvac, used here to make the mount, sends X-Vault-Request)
    mine = [e for e in log if m in e["path"] and "X-Vault-Request" not in e["headers"]]
    seen = [(e["method"], e["path"], e["query"]) for e in mine]
    assert len(mine) == 4, mine
    for want in [("GET", f"/v1/sys/mounts/{m}", {}),
                 ("GET", f"/v1/{m}/metadata/", {"list": "true"}),
                 ("GET", f"/v1/{m}/data/pg-key", {}),
                 ("POST", f"/v1/{m}/data/pg-key", {})]:
        assert want in seen, (want, seen)
    for e in mine:
        names = [h.lower() for h in e["headers"]]
        assert "x-vault-token" in names, e
        assert "content-type" in names, e  # on GET too, as pg_tde sends it
        assert "x-vault-namespace" not in names and "authorization" not in names
    post = next(e for e in mine if e["method"] == "POST")
    assert post["body"] == {"data": {"key": "<redacted>"}}
    assert post["status"] == 200
    ex = explain(daemon, DB + name)
    assert ex["accessible"] is True and ex["keySource"] == "vault-kv"
    assert f"{m}/data/pg-key" in next(x for x in ex["rules"] if x["rule"] == "secret")["detail"]
    r = daemon.put(data_url(DB + name, "a"), json={"value": 7})
    assert r.status_code == 200, r.text


def test_deleting_the_secret_reaches_the_database(daemon, hv, tmp_path):
    _, client = hv
    m, _, _, name = setup_db(daemon, hv, tmp_path)
    assert daemon.put(data_url(DB + name, "k"), json={"value": 1}).status_code == 200
    client.secrets.kv.v2.delete_latest_version_of_secret(path="pg-key", mount_point=m)
    b = state(daemon, name)  # no clock advance: the event path
    assert b["state"] == "Inaccessible" and b["reasonCode"] == "VaultKeyNotFound", b
    assert bad_rules(daemon, name) == ["secret"]
    ex = explain(daemon, DB + name)
    assert "pg-key" in next(x for x in ex["rules"] if x["rule"] == "secret")["detail"]
    assert_arm_error(daemon.get(data_url(DB + name, "k")), 503, "DatabaseInaccessible")
    assert_arm_error(daemon.put(data_url(DB + name, "x"), json={"value": 2}), 503,
                     "DatabaseInaccessible")
    client.secrets.kv.v2.undelete_secret_versions(path="pg-key", versions=[1], mount_point=m)
    assert state(daemon, name)["state"] == "Ready"
    r = daemon.get(data_url(DB + name, "k"))
    assert r.status_code == 200 and r.json()["value"] == 1
    client.secrets.kv.v2.delete_metadata_and_all_versions(path="pg-key", mount_point=m)
    b = state(daemon, name)
    assert b["state"] == "Inaccessible" and b["reasonCode"] == "VaultKeyNotFound", b


def test_seal_and_unseal(daemon, hv, tmp_path):
    v, client = hv
    _, _, _, name = setup_db(daemon, hv, tmp_path)
    client.sys.seal()
    try:
        b = state(daemon, name)
        assert b["state"] == "Inaccessible" and b["reasonCode"] == "VaultSealed", b
        assert bad_rules(daemon, name) == ["sealed"]
    finally:
        client.sys.submit_unseal_key(v["unsealKeys"][0])
    b = state(daemon, name)
    assert b["state"] == "Ready" and b["reasonCode"] is None, b


def test_revoking_the_token(daemon, hv, tmp_path):
    _, client = hv
    _, _, tok, name = setup_db(daemon, hv, tmp_path)
    client.auth.token.revoke(tok)
    b = state(daemon, name)
    assert b["state"] == "Inaccessible" and b["reasonCode"] == "VaultPermissionDenied", b
    assert bad_rules(daemon, name) == ["token"]


def test_a_policy_change_that_removes_read(daemon, hv, tmp_path):
    _, client = hv
    m, pol, _, name = setup_db(daemon, hv, tmp_path)
    client.sys.create_or_update_policy(name=pol, policy=policy_text(m, read=False))
    b = state(daemon, name)
    assert b["state"] == "Inaccessible" and b["reasonCode"] == "VaultPermissionDenied", b
    client.sys.create_or_update_policy(name=pol, policy=policy_text(m, read=True))
    assert state(daemon, name)["state"] == "Ready"


def test_disabling_the_mount(daemon, hv, tmp_path):
    _, client = hv
    m, _, _, name = setup_db(daemon, hv, tmp_path)
    client.sys.disable_secrets_engine(m)
    b = state(daemon, name)
    assert b["state"] == "Inaccessible", b
    assert b["reasonCode"] == "VaultMountNotFound" and m in b["reason"], b
    assert bad_rules(daemon, name) == ["mount"]


def test_a_kv_v1_mount_is_refused_at_put(daemon, hv, tmp_path):
    v, client = hv
    m = "kv1-" + uuid.uuid4().hex[:8]
    client.sys.enable_secrets_engine(backend_type="kv", path=m, options={"version": "1"})
    tf = tmp_path / "root-token"
    tf.write_text(v["rootToken"])
    prov = {"type": "vault-v2", "url": v["address"], "mountPath": m, "tokenPath": str(tf),
            "caPath": daemon.ca}
    e = assert_arm_error(daemon.put(DB + "db-" + m, json={"keyProvider": prov,
                                                          "principalKeyName": "k"}),
                         400, "VaultMountNotKv2")
    assert m in e["message"]
