"""Vault ACL policies (src/vaultapi/acl.c, policy.c, acl_routes.c) through hvac: policy write,
read, list, delete on sys/policy and sys/policies/acl; bad HCL -> 400 with line and column;
a token limited by its policy gets 403 "permission denied" elsewhere; seed 004's KV v1 and v2
policies; root and default cannot be deleted."""
import hvac
import pytest
import requests

ROOT_TOKEN = "hvs.pgcmk-dev-root-token"

KV1_POLICY = 'path "kv/*" {\n   capabilities = [ "create", "read", "delete", "list" ]\n}\n'
KV2_POLICY = ('path "kv/data/*" {\n   capabilities = [ "create", "read" ]\n}\n'
              'path "kv/metadata/*" {\n   capabilities = [ "list", "delete" ]       \n}\n')


@pytest.fixture(scope="module")
def vurl(daemon):
    return daemon.get("/emulator/info").json()["vault"]["address"]


@pytest.fixture
def client(vurl, daemon):
    return hvac.Client(url=vurl, token=ROOT_TOKEN, verify=daemon.ca)


def raw(daemon, vurl, method, path, token=ROOT_TOKEN, **kw):
    h = {"X-Vault-Token": token} if token else {}
    return requests.request(method, vurl + path, headers=h, verify=daemon.ca, timeout=10, **kw)


def token_for(client, *policies):
    r = client.create_token(policies=list(policies), ttl="1h")
    return r["auth"]["client_token"]


def test_policy_crud_legacy_and_acl(client, daemon, vurl):
    client.sys.create_or_update_policy("kes-policy", KV1_POLICY)
    got = client.sys.read_policy("kes-policy")
    assert got["data"]["rules"] == KV1_POLICY and got["rules"] == KV1_POLICY
    assert got["data"]["name"] == "kes-policy"
    lst = client.sys.list_policies()
    assert "kes-policy" in lst["data"]["policies"] and "default" in lst["data"]["policies"]
    assert "root" in lst["policies"]
    # sys/policies/acl: the modern paths
    r = raw(daemon, vurl, "PUT", "/v1/sys/policies/acl/Mixed-Case", json={"policy": KV2_POLICY})
    assert r.status_code == 204, r.text
    r = raw(daemon, vurl, "GET", "/v1/sys/policies/acl/mixed-case")
    assert r.status_code == 200 and r.json()["data"] == {"name": "mixed-case", "policy": KV2_POLICY}
    r = raw(daemon, vurl, "LIST", "/v1/sys/policies/acl")
    assert r.status_code == 200 and "mixed-case" in r.json()["data"]["keys"]
    r = raw(daemon, vurl, "DELETE", "/v1/sys/policies/acl/mixed-case")
    assert r.status_code == 204
    r = raw(daemon, vurl, "GET", "/v1/sys/policies/acl/mixed-case")
    assert r.status_code == 404 and r.json() == {"errors": []}
    client.sys.delete_policy("kes-policy")
    assert "kes-policy" not in client.sys.list_policies()["data"]["policies"]
    # JSON policies are accepted too
    r = raw(daemon, vurl, "PUT", "/v1/sys/policy/json-pol",
            json={"policy": '{"path": {"secret/*": {"capabilities": ["read"]}}}'})
    assert r.status_code == 204, r.text


def test_bad_policies(daemon, vurl):
    r = raw(daemon, vurl, "PUT", "/v1/sys/policy/bad",
            json={"policy": 'path "kv/*" {\n  capabilities = ["read"\n}\n'})
    assert r.status_code == 400
    assert r.json() == {"errors": ["failed to parse policy: At 3:1: expected: COMMA | RBRACK "
                                   "got: RBRACE"]}
    r = raw(daemon, vurl, "PUT", "/v1/sys/policy/bad",
            json={"policy": 'path "kv/*" { capabilities = ["fly"] }'})
    assert r.status_code == 400
    assert r.json()["errors"] == ['failed to parse policy: path "kv/*": invalid capability "fly"']
    r = raw(daemon, vurl, "PUT", "/v1/sys/policy/bad", json={})
    assert r.status_code == 400
    assert r.json()["errors"] == ["'policy' parameter not supplied or empty"]
    r = raw(daemon, vurl, "PUT", "/v1/sys/policy/root", json={"policy": KV1_POLICY})
    assert r.status_code == 400 and r.json()["errors"] == ['cannot update "root" policy']
    r = raw(daemon, vurl, "DELETE", "/v1/sys/policy/root")
    assert r.status_code == 400 and r.json()["errors"] == ['cannot delete "root" policy']
    r = raw(daemon, vurl, "DELETE", "/v1/sys/policies/acl/default")
    assert r.status_code == 400 and r.json()["errors"] == ["cannot delete default policy"]
    r = raw(daemon, vurl, "GET", "/v1/sys/policies/acl/root")
    assert r.status_code == 200 and r.json()["data"] == {"name": "root", "policy": ""}
    r = raw(daemon, vurl, "GET", "/v1/sys/policy/default")
    assert r.status_code == 200 and "auth/token/lookup-self" in r.json()["data"]["rules"]


def test_token_limited_by_policy(client, daemon, vurl):
    client.sys.create_or_update_policy(
        "pol-reader", 'path "sys/policy/pol-*" { capabilities = ["read"] }\n'
                      'path "sys/policy/pol-secret" { capabilities = ["deny"] }\n')
    client.sys.create_or_update_policy("pol-secret", 'path "x" { capabilities = ["read"] }')
    tok = token_for(client, "pol-reader")
    r = raw(daemon, vurl, "GET", "/v1/sys/policy/pol-reader", token=tok)
    assert r.status_code == 200
    r = raw(daemon, vurl, "GET", "/v1/sys/policy/pol-secret", token=tok)
    assert r.status_code == 403 and r.json() == {"errors": ["permission denied"]}
    r = raw(daemon, vurl, "PUT", "/v1/sys/policy/pol-reader", token=tok,
            json={"policy": KV1_POLICY})
    assert r.status_code == 403
    r = raw(daemon, vurl, "GET", "/v1/sys/policy", token=tok)
    assert r.status_code == 403
    # default policy: lookup-self works, capabilities-self answers the token's view
    r = raw(daemon, vurl, "POST", "/v1/sys/capabilities-self", token=tok,
            json={"path": "sys/policy/pol-reader"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["capabilities"] == ["read"]
    r = raw(daemon, vurl, "POST", "/v1/sys/capabilities-self", token=tok,
            json={"paths": ["sys/policy/pol-secret", "cubbyhole/x"]})
    d = r.json()["data"]
    assert d["sys/policy/pol-secret"] == ["deny"]
    assert d["cubbyhole/x"] == ["create", "delete", "list", "read", "update"]
    r = raw(daemon, vurl, "POST", "/v1/sys/capabilities-self", json={"path": "a/b"})
    assert r.json()["data"]["capabilities"] == ["root"]
    # a policy change applies at once (the compiled ACL cache is dropped)
    client.sys.create_or_update_policy("pol-reader", 'path "nothing" { capabilities = ["read"] }')
    r = raw(daemon, vurl, "GET", "/v1/sys/policy/pol-reader", token=tok)
    assert r.status_code == 403


def test_sudo_paths_need_sudo(client, daemon, vurl):
    client.sys.create_or_update_policy("no-sudo", 'path "sys/auth/*" { capabilities = '
                                                  '["create", "update", "read", "delete"] }')
    client.sys.create_or_update_policy("with-sudo", 'path "sys/auth/*" { capabilities = '
                                                    '["create", "update", "sudo"] }')
    r = raw(daemon, vurl, "POST", "/v1/sys/auth/ar-nosudo", token=token_for(client, "no-sudo"),
            json={"type": "approle"})
    assert r.status_code == 403
    r = raw(daemon, vurl, "POST", "/v1/sys/auth/ar-sudo", token=token_for(client, "with-sudo"),
            json={"type": "approle"})
    assert r.status_code == 204, r.text


@pytest.mark.parametrize("version", [1, 2])
def test_seed_004_kes_policies(client, daemon, vurl, version):
    mount = f"kv{version}"
    client.sys.enable_secrets_engine("kv", path=mount, options={"version": str(version)})
    v1 = KV1_POLICY.replace("kv/", mount + "/")
    v2 = KV2_POLICY.replace("kv/", mount + "/")
    client.sys.create_or_update_policy(f"{mount}-v1", v1)
    client.sys.create_or_update_policy(f"{mount}-v2", v2)
    t1, t2 = token_for(client, f"{mount}-v1"), token_for(client, f"{mount}-v2")
    if version == 1:
        # KES on a v1 mount: create, read, list, delete kv1/<key>
        r = raw(daemon, vurl, "PUT", f"/v1/{mount}/key-1", token=t1, json={"bytes": "x"})
        assert r.status_code == 204, r.text
        assert raw(daemon, vurl, "GET", f"/v1/{mount}/key-1", token=t1).status_code == 200
        assert raw(daemon, vurl, "LIST", f"/v1/{mount}/", token=t1).status_code == 200
        # the v2 policy does not work on a v1 mount
        r = raw(daemon, vurl, "PUT", f"/v1/{mount}/key-2", token=t2, json={"bytes": "x"})
        assert r.status_code == 403 and r.json() == {"errors": ["permission denied"]}
        assert raw(daemon, vurl, "GET", f"/v1/{mount}/key-1", token=t2).status_code == 403
        assert raw(daemon, vurl, "LIST", f"/v1/{mount}/", token=t2).status_code == 403
        assert raw(daemon, vurl, "DELETE", f"/v1/{mount}/key-1", token=t1).status_code == 204
    else:
        # KES on a v2 mount with the v2 policy: data/ create+read, metadata/ list+delete
        r = raw(daemon, vurl, "PUT", f"/v1/{mount}/data/key-1", token=t2,
                json={"data": {"bytes": "x"}, "options": {"cas": 0}})
        assert r.status_code == 200, r.text
        assert raw(daemon, vurl, "GET", f"/v1/{mount}/data/key-1", token=t2).status_code == 200
        assert raw(daemon, vurl, "LIST", f"/v1/{mount}/metadata/", token=t2).status_code == 200
        # create only: an update of an existing secret is refused
        r = raw(daemon, vurl, "PUT", f"/v1/{mount}/data/key-1", token=t2,
                json={"data": {"bytes": "y"}})
        assert r.status_code == 403
        # the v1 paths of a v2 mount are not the secret's: the v2 policy has nothing there
        assert raw(daemon, vurl, "GET", f"/v1/{mount}/key-1", token=t2).status_code == 403
        assert raw(daemon, vurl, "DELETE", f"/v1/{mount}/metadata/key-1",
                   token=t2).status_code == 204


def events(daemon):
    return daemon.get("/emulator/stats").json()["events"]


def test_policies_per_namespace_and_events(client, daemon, vurl):
    before = events(daemon)
    client.sys.create_namespace("acl-ns")
    ns = hvac.Client(url=vurl, token=ROOT_TOKEN, verify=daemon.ca, namespace="acl-ns")
    ns.sys.create_or_update_policy("ns-only", 'path "sys/policy/ns-only" '
                                              '{ capabilities = ["read"] }')
    assert "ns-only" in ns.sys.list_policies()["data"]["policies"]
    assert "root" not in ns.sys.list_policies()["data"]["policies"]
    assert "ns-only" not in client.sys.list_policies()["data"]["policies"]
    r = raw(daemon, vurl, "GET", "/v1/sys/policy/ns-only")
    assert r.status_code == 404
    # a token of the namespace with that policy reads it there
    tok = ns.auth.token.create(policies=["ns-only"], ttl="1h")["auth"]["client_token"]
    r = raw(daemon, vurl, "GET", "/v1/acl-ns/sys/policy/ns-only", token=tok)
    assert r.status_code == 200 and r.json()["data"]["name"] == "ns-only"
    r = raw(daemon, vurl, "GET", "/v1/acl-ns/sys/policy/default", token=tok)
    assert r.status_code == 403
    ns.sys.delete_policy("ns-only")
    after = events(daemon)
    assert after["VaultPolicyChanged"] == before["VaultPolicyChanged"] + 2


def test_policies_survive_a_restart(start_daemon):
    d = start_daemon()
    url = d.get("/emulator/info").json()["vault"]["address"]
    c = hvac.Client(url=url, token=ROOT_TOKEN, verify=d.ca)
    c.sys.create_or_update_policy("kept", KV1_POLICY)
    tok = c.auth.token.create(policies=["kept"], ttl="1h")["auth"]["client_token"]
    d.restart()
    url = d.get("/emulator/info").json()["vault"]["address"]
    c = hvac.Client(url=url, token=ROOT_TOKEN, verify=d.ca)
    assert c.sys.read_policy("kept")["data"]["rules"] == KV1_POLICY
    r = requests.post(url + "/v1/sys/capabilities-self", headers={"X-Vault-Token": tok},
                      json={"path": "kv/x"}, verify=d.ca, timeout=10)
    assert r.status_code == 200 and r.json()["data"]["capabilities"] == [
        "create", "delete", "list", "read"]


def test_parameter_constraints_on_writes(client, daemon, vurl):
    """allowed_parameters, denied_parameters and required_parameters of the deciding rule,
    checked against a write's top-level fields (KV v1 here: the fields are the secret)."""
    client.sys.enable_secrets_engine("kv", path="pc-kv", options={"version": "1"})
    try:
        client.sys.create_or_update_policy("pc-pol", """
path "pc-kv/env/*" {
  capabilities = ["create", "update", "read"]
  allowed_parameters = { "stage" = ["dev", "test"], "owner" = [] }
  denied_parameters = { "owner" = ["root"] }
}
path "pc-kv/need/*" {
  capabilities = ["create", "update"]
  required_parameters = ["ticket"]
}
""")
        tok = token_for(client, "pc-pol")
        put = lambda p, body: raw(daemon, vurl, "PUT", "/v1/pc-kv/" + p, token=tok, json=body)
        assert put("env/a", {"stage": "dev", "owner": "jane"}).status_code == 204
        r = put("env/a", {"stage": "prod"})  # a value outside the allowed list
        assert r.status_code == 403 and r.json() == {"errors": ["permission denied"]}, r.text
        assert put("env/a", {"stage": "dev", "other": "x"}).status_code == 403  # not allowed
        assert put("env/a", {"owner": "root"}).status_code == 403  # denied value
        assert put("need/a", {"x": "1"}).status_code == 403  # required missing
        assert put("need/a", {"ticket": "T-1", "x": "1"}).status_code == 204
        # reads are not constrained; the root token is not either
        assert raw(daemon, vurl, "GET", "/v1/pc-kv/env/a", token=tok).status_code == 200
        assert raw(daemon, vurl, "PUT", "/v1/pc-kv/env/a", json={"stage": "prod"}).status_code == 204
    finally:
        client.sys.disable_secrets_engine("pc-kv")
        client.sys.delete_policy("pc-pol")


def test_internal_ui_mounts_for_a_limited_token(client, daemon, vurl):
    """What `vault kv get` asks first: sys/internal/ui/mounts/<path> gives the mount and its KV
    version to a token whose policies reach something under it, a preflight 403 otherwise."""
    client.sys.enable_secrets_engine("kv", path="ui-kv", options={"version": "2"})
    try:
        client.sys.create_or_update_policy(
            "ui-pol", 'path "ui-kv/data/app/*" {\n  capabilities = ["read"]\n}\n')
        tok = token_for(client, "ui-pol")
        r = raw(daemon, vurl, "GET", "/v1/sys/internal/ui/mounts/ui-kv/app/x", token=tok)
        assert r.status_code == 200, r.text
        d = r.json()["data"]
        assert d["path"] == "ui-kv/" and d["type"] == "kv" and d["options"] == {"version": "2"}
        r = raw(daemon, vurl, "GET", "/v1/sys/internal/ui/mounts/secret/x", token=tok)
        assert r.status_code == 403 and "preflight capability check returned 403" in \
            r.json()["errors"][0], r.text
        r = raw(daemon, vurl, "GET", "/v1/sys/internal/ui/mounts/nope/x", token=tok)
        assert r.status_code == 403 and '"nope/x/"' in r.json()["errors"][0], r.text
        listing = raw(daemon, vurl, "GET", "/v1/sys/internal/ui/mounts", token=tok).json()["data"]
        assert list(listing["secret"]) == ["ui-kv/"], listing
        full = raw(daemon, vurl, "GET", "/v1/sys/internal/ui/mounts").json()["data"]
        assert "ui-kv/" in full["secret"] and "secret/" in full["secret"]
        assert raw(daemon, vurl, "GET", "/v1/sys/internal/ui/mounts/ui-kv", token=None) \
            .status_code == 403
    finally:
        client.sys.disable_secrets_engine("ui-kv")
        client.sys.delete_policy("ui-pol")
