"""Vault's AppRole auth method (src/vaultapi/approle.c) through hvac, KES's flow from seed 004:
auth enable approle; role with token_num_uses=0 secret_id_num_uses=0 period=5m; policies;
role-id read; secret-id generate (write -f); login; the token reads and writes only what its
policy allows. Then Vault's errors, secret ID limits on the virtual clock, accessors, deletes."""
import threading

import hvac
import pytest
import requests

ROOT_TOKEN = "hvs.pgcmk-dev-root-token"
KV1_POLICY = 'path "kv/*" {\n   capabilities = [ "create", "read", "delete", "list" ]\n}\n'


@pytest.fixture(scope="module")
def vurl(daemon):
    return daemon.get("/emulator/info").json()["vault"]["address"]


@pytest.fixture(scope="module")
def client(vurl, daemon):
    c = hvac.Client(url=vurl, token=ROOT_TOKEN, verify=daemon.ca)
    c.sys.enable_auth_method("approle")
    c.sys.enable_secrets_engine("kv", path="kv", options={"version": "1"})
    c.sys.create_or_update_policy("kes-policy", KV1_POLICY)
    return c


def raw(daemon, vurl, method, path, token=ROOT_TOKEN, **kw):
    h = {"X-Vault-Token": token} if token else {}
    return requests.request(method, vurl + path, headers=h, verify=daemon.ca, timeout=10, **kw)


def test_kes_flow(client, daemon, vurl):
    # vault write auth/approle/role/kes-server token_num_uses=0 secret_id_num_uses=0 period=5m
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/role/kes-server",
            json={"token_num_uses": "0", "secret_id_num_uses": "0", "period": "5m"})
    assert r.status_code == 204, r.text
    # vault write auth/approle/role/kes-server policies=kes-policy
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/role/kes-server",
            json={"policies": "kes-policy"})
    assert r.status_code == 204, r.text
    role = client.auth.approle.read_role("kes-server")["data"]
    assert role["token_period"] == 300 and role["period"] == 300
    assert role["token_policies"] == ["kes-policy"] and role["policies"] == ["kes-policy"]
    assert role["bind_secret_id"] is True and role["secret_id_num_uses"] == 0
    assert role["token_num_uses"] == 0 and role["token_type"] == "default"
    role_id = client.auth.approle.read_role_id("kes-server")["data"]["role_id"]
    assert len(role_id) == 36
    # vault write -f auth/approle/role/kes-server/secret-id (an empty body)
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/role/kes-server/secret-id")
    assert r.status_code == 200, r.text
    sid = r.json()["data"]
    assert len(sid["secret_id"]) == 36 and len(sid["secret_id_accessor"]) == 36
    assert sid["secret_id_ttl"] == 0 and sid["secret_id_num_uses"] == 0
    # KES logs in
    kes = hvac.Client(url=vurl, verify=daemon.ca)
    auth = kes.auth.approle.login(role_id=role_id, secret_id=sid["secret_id"])["auth"]
    assert auth["policies"] == ["default", "kes-policy"]
    assert auth["token_policies"] == ["default", "kes-policy"]
    assert auth["metadata"] == {"role_name": "kes-server"}
    assert auth["renewable"] is True and auth["lease_duration"] == 300
    assert kes.token == auth["client_token"]
    # the token does what kes-policy allows, and nothing else
    kes.secrets.kv.v1.create_or_update_secret(path="my-key", secret={"bytes": "abc"},
                                             mount_point="kv")
    assert kes.secrets.kv.v1.read_secret(path="my-key", mount_point="kv")["data"] == {
        "bytes": "abc"}
    assert kes.secrets.kv.v1.list_secrets(path="", mount_point="kv")["data"]["keys"] == ["my-key"]
    r = raw(daemon, vurl, "GET", "/v1/sys/policy/kes-policy", token=auth["client_token"])
    assert r.status_code == 403 and r.json() == {"errors": ["permission denied"]}
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/role/kes-server/secret-id",
            token=auth["client_token"])
    assert r.status_code == 403
    with pytest.raises(hvac.exceptions.Forbidden):
        kes.sys.list_mounted_secrets_engines()
    kes.secrets.kv.v1.delete_secret(path="my-key", mount_point="kv")
    # secret_id_num_uses=0: the same secret ID logs in again
    kes2 = hvac.Client(url=vurl, verify=daemon.ca)
    kes2.auth.approle.login(role_id=role_id, secret_id=sid["secret_id"])
    assert kes2.token and kes2.token != kes.token


def test_login_errors(client, daemon, vurl):
    client.auth.approle.create_or_update_approle("errs", token_policies=["kes-policy"])
    role_id = client.auth.approle.read_role_id("errs")["data"]["role_id"]
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None,
            json={"role_id": "nope", "secret_id": "x"})
    assert r.status_code == 400 and r.json() == {"errors": ["invalid role ID"]}
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None,
            json={"role_id": role_id, "secret_id": "wrong"})
    assert r.status_code == 400 and r.json() == {"errors": ["invalid secret id"]}
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None, json={"role_id": role_id})
    assert r.status_code == 400 and r.json() == {"errors": ["missing secret_id"]}
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None, json={})
    assert r.status_code == 400 and r.json() == {"errors": ["missing role_id"]}
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/role/missing/secret-id")
    assert r.status_code == 400 and r.json() == {"errors": ['role "missing" does not exist']}
    r = raw(daemon, vurl, "GET", "/v1/auth/approle/role/missing")
    assert r.status_code == 404 and r.json() == {"errors": []}
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/role/errs", json={"token_ttl": "forever"})
    assert r.status_code == 400
    # a secret ID of another role does not log in to this one
    client.auth.approle.create_or_update_approle("other")
    other_sid = client.auth.approle.generate_secret_id("other")["data"]["secret_id"]
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None,
            json={"role_id": role_id, "secret_id": other_sid})
    assert r.status_code == 400 and r.json() == {"errors": ["invalid secret id"]}


def test_login_follows_role_changes(client, daemon, vurl):
    # a login reads the role as it is now: policies, TTL and metadata change between logins,
    # alternating between two roles
    client.auth.approle.create_or_update_approle("chg", token_policies=["a"], token_ttl="10m")
    client.auth.approle.create_or_update_approle("chg2", token_policies=["z"])
    ids = {n: (client.auth.approle.read_role_id(n)["data"]["role_id"],
               client.auth.approle.generate_secret_id(n)["data"]["secret_id"])
           for n in ("chg", "chg2")}

    def login(name):
        r = raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None,
                json={"role_id": ids[name][0], "secret_id": ids[name][1]})
        assert r.status_code == 200, r.text
        return r.json()["auth"]

    a = login("chg")
    assert a["policies"] == ["a", "default"] and a["lease_duration"] == 600
    assert login("chg2")["policies"] == ["default", "z"]
    client.auth.approle.create_or_update_approle("chg", token_policies=["b", "c"], token_ttl="1m")
    a = login("chg")
    assert a["policies"] == ["b", "c", "default"] and a["lease_duration"] == 60
    assert a["metadata"] == {"role_name": "chg"}
    assert login("chg2")["policies"] == ["default", "z"]
    r = raw(daemon, vurl, "DELETE", "/v1/auth/approle/role/chg")
    assert r.status_code == 204
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None,
            json={"role_id": ids["chg"][0], "secret_id": ids["chg"][1]})
    assert r.status_code == 400 and r.json() == {"errors": ["invalid role ID"]}


def test_secret_id_limits_on_the_virtual_clock(client, daemon, vurl):
    client.auth.approle.create_or_update_approle("limited", secret_id_num_uses=2,
                                                      secret_id_ttl="10m")
    role_id = client.auth.approle.read_role_id("limited")["data"]["role_id"]
    sid = client.auth.approle.generate_secret_id("limited", metadata={"app": "kes"})["data"]
    assert sid["secret_id_num_uses"] == 2 and sid["secret_id_ttl"] == 600
    look = client.auth.approle.read_secret_id("limited", sid["secret_id"])["data"]
    assert look["secret_id_accessor"] == sid["secret_id_accessor"]
    assert look["metadata"] == {"app": "kes"} and look["secret_id_num_uses"] == 2
    login = {"role_id": role_id, "secret_id": sid["secret_id"]}
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None, json=login)
    assert r.status_code == 200 and r.json()["auth"]["metadata"] == {"app": "kes",
                                                                     "role_name": "limited"}
    assert raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None,
               json=login).status_code == 200
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None, json=login)
    assert r.status_code == 400 and r.json() == {"errors": ["invalid secret id"]}
    # TTL: valid before 10 minutes, gone after
    sid2 = client.auth.approle.generate_secret_id("limited")["data"]
    login["secret_id"] = sid2["secret_id"]
    keys = client.auth.approle.list_secret_id_accessors("limited")["data"]["keys"]
    assert keys == [sid2["secret_id_accessor"]]
    daemon.clock(advance="PT9M")
    assert raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None,
               json=login).status_code == 200
    daemon.clock(advance="PT2M")
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None, json=login)
    assert r.status_code == 400 and r.json() == {"errors": ["invalid secret id"]}
    r = raw(daemon, vurl, "LIST", "/v1/auth/approle/role/limited/secret-id")
    assert r.status_code == 404


def test_destroy_and_delete(client, daemon, vurl):
    before = daemon.get("/emulator/stats").json()["events"]["VaultAuthChanged"]
    client.auth.approle.create_or_update_approle("gone", token_policies="kes-policy")
    role_id = client.auth.approle.read_role_id("gone")["data"]["role_id"]
    a = client.auth.approle.generate_secret_id("gone")["data"]
    b = client.auth.approle.generate_secret_id("gone")["data"]
    c = client.auth.approle.generate_secret_id("gone")["data"]
    keys = client.auth.approle.list_secret_id_accessors("gone")["data"]["keys"]
    assert sorted(keys) == sorted(x["secret_id_accessor"] for x in (a, b, c))
    client.auth.approle.destroy_secret_id("gone", a["secret_id"])
    client.auth.approle.destroy_secret_id_accessor("gone", b["secret_id_accessor"])
    keys = client.auth.approle.list_secret_id_accessors("gone")["data"]["keys"]
    assert keys == [c["secret_id_accessor"]]
    for s in (a, b):
        r = raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None,
                json={"role_id": role_id, "secret_id": s["secret_id"]})
        assert r.status_code == 400
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/role/gone/secret-id-accessor/destroy",
            json={"secret_id_accessor": "nope"})
    assert r.status_code == 400
    # role-id can be set
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/role/gone/role-id",
            json={"role_id": "custom-role-id"})
    assert r.status_code == 204
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None,
            json={"role_id": "custom-role-id", "secret_id": c["secret_id"]})
    assert r.status_code == 200
    assert "gone" in client.auth.approle.list_roles()["data"]["keys"]
    client.auth.approle.delete_role("gone")
    assert "gone" not in client.auth.approle.list_roles()["data"]["keys"]
    r = raw(daemon, vurl, "POST", "/v1/auth/approle/login", token=None,
            json={"role_id": "custom-role-id", "secret_id": c["secret_id"]})
    assert r.status_code == 400 and r.json() == {"errors": ["invalid role ID"]}
    # two secret IDs destroyed, one role deleted
    after = daemon.get("/emulator/stats").json()["events"]["VaultAuthChanged"]
    assert after == before + 3


def test_acknowledged_logins_survive_sigkill(start_daemon):
    # every token a login answered with is durable before the answer: SIGKILL in the middle of a
    # burst of concurrent logins, then each acknowledged token still looks itself up after the
    # restart, with the role's policies and metadata
    d = start_daemon()
    url = d.get("/emulator/info").json()["vault"]["address"]
    c = hvac.Client(url=url, token=ROOT_TOKEN, verify=d.ca)
    c.sys.enable_auth_method("approle")
    r = raw(d, url, "POST", "/v1/auth/approle/role/kes-server",
            json={"token_num_uses": 0, "secret_id_num_uses": 0, "period": "5m",
                  "token_policies": ["kes-policy"]})
    assert r.status_code == 204, r.text
    role_id = c.auth.approle.read_role_id("kes-server")["data"]["role_id"]
    secret_id = raw(d, url, "POST", "/v1/auth/approle/role/kes-server/secret-id").json()["data"][
        "secret_id"]
    body = {"role_id": role_id, "secret_id": secret_id}
    total, threads_n, kill_after = 600, 4, 150
    acked, lock, enough, errors = [], threading.Lock(), threading.Event(), []

    def worker():
        s = requests.Session()
        s.verify, s.trust_env = d.ca, False
        try:
            for _ in range(total // threads_n):
                try:
                    r = s.post(url + "/v1/auth/approle/login", json=body, timeout=10)
                except requests.RequestException as e:
                    if not enough.is_set():
                        errors.append(repr(e))
                    return  # the daemon is gone
                if r.status_code != 200:
                    errors.append((r.status_code, r.text[:200]))
                    return
                with lock:
                    acked.append(r.json()["auth"]["client_token"])
                    if len(acked) >= kill_after:
                        enough.set()
        finally:
            s.close()

    threads = [threading.Thread(target=worker) for _ in range(threads_n)]
    for t in threads:
        t.start()
    assert enough.wait(60), f"only {len(acked)} logins acknowledged; errors: {errors[:3]}"
    d.proc.kill()  # SIGKILL in the middle of the burst
    d.proc.wait()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    assert not errors, errors[:5]
    with lock:
        tokens = list(acked)
    d.proc = None
    d.start()
    url = d.get("/emulator/info").json()["vault"]["address"]
    s = requests.Session()
    s.verify, s.trust_env = d.ca, False
    lost = []
    for tok in tokens:
        r = s.get(url + "/v1/auth/token/lookup-self", headers={"X-Vault-Token": tok}, timeout=10)
        if r.status_code != 200:
            lost.append(r.status_code)
    assert not lost, f"{len(lost)} of {len(tokens)} acknowledged tokens lost after SIGKILL"
    data = s.get(url + "/v1/auth/token/lookup-self", headers={"X-Vault-Token": tokens[0]},
                 timeout=10).json()["data"]
    assert data["policies"] == ["default", "kes-policy"] and data["period"] == 300
    assert data["meta"] == {"role_name": "kes-server"} and data["display_name"] == "approle"
    s.close()
