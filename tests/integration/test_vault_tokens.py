"""The Vault API's token backend (auth/token/): create, lookup, renew, revoke, on the virtual
clock. Driven with hvac."""
import hvac
import pytest
import requests

ROOT_TOKEN = "hvs.pgcmk-dev-root-token"


@pytest.fixture(scope="module")
def vurl(daemon):
    return daemon.get("/emulator/info").json()["vault"]["address"]


@pytest.fixture
def client(vurl, daemon):
    return hvac.Client(url=vurl, token=ROOT_TOKEN, verify=daemon.ca)


def lookup_status(daemon, vurl, tok):
    r = requests.get(vurl + "/v1/auth/token/lookup-self", headers={"X-Vault-Token": tok},
                     verify=daemon.ca, timeout=10)
    return r.status_code


def test_create_lookup(client, daemon, vurl):
    auth = client.auth.token.create(policies=["root"], ttl="1h", display_name="app",
                                    meta={"team": "db"})["auth"]
    tok = auth["client_token"]
    assert tok.startswith("hvs.") and auth["accessor"]
    assert auth["lease_duration"] == 3600 and auth["renewable"] is True
    assert auth["policies"] == ["root"] and auth["orphan"] is False
    d = client.auth.token.lookup(tok)["data"]
    assert d["id"] == tok and d["display_name"] == "token-app"
    assert d["meta"] == {"team": "db"} and d["creation_ttl"] == 3600
    assert 3590 <= d["ttl"] <= 3600 and d["type"] == "service"
    d2 = client.auth.token.lookup_accessor(auth["accessor"])["data"]
    assert d2["id"] == "" and d2["accessor"] == auth["accessor"]
    d3 = hvac.Client(url=vurl, token=tok, verify=daemon.ca).auth.token.lookup_self()["data"]
    assert d3["accessor"] == auth["accessor"]
    # the default policy is added unless no_default_policy
    auth = client.auth.token.create(policies=["p1"], ttl="10m")["auth"]
    assert auth["policies"] == ["default", "p1"]
    auth = client.auth.token.create(policies=["p1"], no_default_policy=True)["auth"]
    assert auth["policies"] == ["p1"] and auth["lease_duration"] == 768 * 3600
    # bad input
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.token.create(ttl="soon")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.token.lookup("hvs.nosuchtoken")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.token.lookup_accessor("nosuch")


def test_ttl_expiry_on_the_virtual_clock(client, daemon, vurl):
    tok = client.auth.token.create(policies=["root"], ttl="30m")["auth"]["client_token"]
    assert lookup_status(daemon, vurl, tok) == 200
    daemon.clock(advance="PT29M")
    assert lookup_status(daemon, vurl, tok) == 200
    daemon.clock(advance="PT2M")
    assert lookup_status(daemon, vurl, tok) == 403


def test_renew_and_explicit_max_ttl(client, daemon, vurl):
    auth = client.auth.token.create(policies=["root"], ttl="10m", explicit_max_ttl="15m")["auth"]
    tok = auth["client_token"]
    daemon.clock(advance="PT8M")
    r = client.auth.token.renew(tok, increment="10m")
    # capped by explicit_max_ttl: 15m from creation, 8m gone
    assert 410 <= r["auth"]["lease_duration"] <= 420
    daemon.clock(advance="PT6M")
    assert lookup_status(daemon, vurl, tok) == 200
    daemon.clock(advance="PT2M")
    assert lookup_status(daemon, vurl, tok) == 403
    # not renewable
    tok = client.auth.token.create(policies=["root"], ttl="10m", renewable=False)["auth"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.token.renew(tok["client_token"])


def test_period_renew_self(client, daemon, vurl):
    tok = client.auth.token.create(policies=["root"], period="1h")["auth"]["client_token"]
    c = hvac.Client(url=vurl, token=tok, verify=daemon.ca)
    assert c.auth.token.lookup_self()["data"]["period"] == 3600
    for _ in range(3):
        daemon.clock(advance="PT50M")
        r = c.auth.token.renew_self()
        assert r["auth"]["lease_duration"] == 3600
    daemon.clock(advance="PT61M")
    assert lookup_status(daemon, vurl, tok) == 403


def test_num_uses(client, daemon, vurl):
    tok = client.auth.token.create(policies=["root"], num_uses=2)["auth"]["client_token"]
    assert lookup_status(daemon, vurl, tok) == 200
    assert lookup_status(daemon, vurl, tok) == 200
    assert lookup_status(daemon, vurl, tok) == 403


def test_child_revocation_and_orphans(client, daemon, vurl):
    parent = client.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    pc = hvac.Client(url=vurl, token=parent, verify=daemon.ca)
    child = pc.auth.token.create(ttl="1h")["auth"]["client_token"]
    grandchild = hvac.Client(url=vurl, token=child, verify=daemon.ca).auth.token.create(
        ttl="1h")["auth"]["client_token"]
    orphan = pc.auth.token.create(ttl="1h", no_parent=True)["auth"]
    assert orphan["orphan"] is True
    client.auth.token.revoke(parent)
    for t in (parent, child, grandchild):
        assert lookup_status(daemon, vurl, t) == 403
    assert lookup_status(daemon, vurl, orphan["client_token"]) == 200
    # revoke-orphan keeps the children (now orphans)
    p2 = client.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    c2 = hvac.Client(url=vurl, token=p2, verify=daemon.ca).auth.token.create(ttl="1h")["auth"]
    client.auth.token.revoke_and_orphan_children(p2)
    assert lookup_status(daemon, vurl, p2) == 403
    assert lookup_status(daemon, vurl, c2["client_token"]) == 200
    assert client.auth.token.lookup(c2["client_token"])["data"]["orphan"] is True
    # revoke-accessor, revoke-self
    client.auth.token.revoke_accessor(c2["accessor"])
    assert lookup_status(daemon, vurl, c2["client_token"]) == 403
    oc = hvac.Client(url=vurl, token=orphan["client_token"], verify=daemon.ca)
    oc.auth.token.revoke_self()
    assert lookup_status(daemon, vurl, orphan["client_token"]) == 403
    assert daemon.get("/emulator/stats").json()["events"]["VaultTokenRevoked"] >= 6


def test_create_policies_and_bad_fields(client, daemon, vurl):
    # a root parent may hand out any policy; meta must be strings, num_uses not negative
    tok = client.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    c = hvac.Client(url=vurl, token=tok, verify=daemon.ca)
    auth = c.auth.token.create(policies=["x", "y"], ttl="5m")["auth"]
    assert auth["policies"] == ["default", "x", "y"]
    r = requests.post(vurl + "/v1/auth/token/create", json={"meta": {"a": 1}},
                      headers={"X-Vault-Token": ROOT_TOKEN}, verify=daemon.ca, timeout=10)
    assert r.status_code == 400
    r = requests.post(vurl + "/v1/auth/token/create", json={"num_uses": -1},
                      headers={"X-Vault-Token": ROOT_TOKEN}, verify=daemon.ca, timeout=10)
    assert r.status_code == 400


def test_tokens_survive_restart(start_daemon):
    d = start_daemon()
    url = d.get("/emulator/info").json()["vault"]["address"]
    c = hvac.Client(url=url, token=ROOT_TOKEN, verify=d.ca)
    tok = c.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    d.restart()
    url = d.get("/emulator/info").json()["vault"]["address"]
    r = requests.get(url + "/v1/auth/token/lookup-self", headers={"X-Vault-Token": tok},
                     verify=d.ca, timeout=10)
    assert r.status_code == 200
    assert r.json()["data"]["policies"] == ["root"]
