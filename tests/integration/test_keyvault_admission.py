"""Key Vault data-plane admission from the route table: every route names the key permission it
needs, and a caller whose access policy lacks exactly that permission gets 403 ForbiddenByPolicy
(with the permission named), before the handler looks at the key or the body."""
import socket

import pytest

from conftest import SUB, TENANT, new_name

KV_AV = "2022-07-01"
ADMIN_OID = "00000000-0000-4000-8000-00000000a0a0"
ADMIN_APP = "00000000-0000-4000-8000-00000000c11e"
ADMIN_SECRET = "pgcmk-admin-secret"
PERMS = ["get", "list", "create", "update", "import", "delete", "recover", "backup", "restore",
         "purge", "encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify", "rotate",
         "getrotationpolicy", "setrotationpolicy"]

# The data plane's route table as GET /emulator/routes shows it (test_table_is_this_list checks).
ROUTES = [
    ("POST", "/keys/{name}/create", "create"),
    ("POST", "/keys/{name}/rotate", "rotate"),
    ("PUT", "/keys/{name}", "import"),
    ("POST", "/keys/{name}/backup", "backup"),
    ("POST", "/keys/restore", "restore"),
    ("GET", "/keys/{name}/rotationpolicy", "getrotationpolicy"),
    ("PUT", "/keys/{name}/rotationpolicy", "setrotationpolicy"),
    ("GET", "/keys", "list"),
    ("GET", "/keys/{name}", "get"),
    ("GET", "/keys/{name}/versions", "list"),
    ("GET", "/keys/{name}/{version}", "get"),
    ("PATCH", "/keys/{name}", "update"),
    ("PATCH", "/keys/{name}/{version}", "update"),
    ("DELETE", "/keys/{name}", "delete"),
    ("GET", "/deletedkeys", "list"),
    ("GET", "/deletedkeys/{name}", "get"),
    ("POST", "/deletedkeys/{name}/recover", "recover"),
    ("DELETE", "/deletedkeys/{name}", "purge"),
] + [(m, p, perm) for op, perm in [("encrypt", "encrypt"), ("decrypt", "decrypt"),
                                   ("wrapkey", "wrapKey"), ("unwrapkey", "unwrapKey"),
                                   ("sign", "sign"), ("verify", "verify")]
     for m, p in [("POST", "/keys/{name}/" + op), ("POST", "/keys/{name}/{version}/" + op)]]
CHALLENGE_FREE = [("POST", "/keys/{name}/{version}/{op}"), ("POST", "/keys/{name}/{op}")]


@pytest.fixture(scope="module")
def env(daemon):
    try:
        socket.getaddrinfo("probe.vault.localhost", daemon.port)
    except socket.gaierror as e:
        pytest.skip(f"*.vault.localhost does not resolve ({e})")
    rg = new_name("kva")
    assert daemon.put_rg(rg).status_code == 201
    sp = daemon.post("/emulator/principals", json={"displayName": new_name("sp")}).json()
    return {"rg": rg, "sp": sp, "admin": token(daemon, ADMIN_APP, ADMIN_SECRET),
            "sp_token": token(daemon, sp["appId"], sp["password"]), "vaults": {}}


def token(d, app, secret):
    r = d.post("/adfs/oauth2/token", data={"grant_type": "client_credentials", "client_id": app,
                                           "client_secret": secret,
                                           "scope": "https://vault.azure.net/.default"})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def kv(d, vault, method, path, tok, **kw):
    return d.s.request(method, f"https://{vault}.vault.localhost:{d.port}{path}",
                       params={"api-version": "7.4"}, headers={"Authorization": "Bearer " + tok},
                       timeout=10, **kw)


def vault_without(d, env, perm):
    """A vault where the admin may do everything and the principal everything but perm, with a
    key k (name, current version)."""
    if perm in env["vaults"]:
        return env["vaults"][perm]
    name = "v" + new_name("")[1:13]
    pol = [{"tenantId": TENANT, "objectId": ADMIN_OID, "permissions": {"keys": PERMS}},
           {"tenantId": TENANT, "objectId": env["sp"]["objectId"],
            "permissions": {"keys": [p for p in PERMS if p != perm]}}]
    r = d.put(f"/subscriptions/{SUB}/resourceGroups/{env['rg']}/providers/Microsoft.KeyVault/"
              f"vaults/{name}?api-version={KV_AV}",
              json={"location": "eastus", "properties": {
                  "tenantId": TENANT, "sku": {"family": "A", "name": "standard"},
                  "accessPolicies": pol}})
    assert r.status_code == 201, r.text
    r = kv(d, name, "POST", "/keys/k/create", env["admin"], json={"kty": "RSA"})
    assert r.status_code == 200, r.text
    env["vaults"][perm] = (name, r.json()["key"]["kid"].rsplit("/", 1)[1])
    return env["vaults"][perm]


def test_table_is_this_list(daemon):
    routes = [r for r in daemon.get("/emulator/routes").json()["routes"] if r["plane"] == "vault"]
    got = sorted((r["method"], r["pattern"], r.get("permission")) for r in routes)
    assert got == sorted(ROUTES + [(m, p, None) for m, p in CHALLENGE_FREE])
    for r in routes:
        # admission is the route's, not "no-auth", except where nothing is admitted at all
        assert ("no-auth" in r["flags"]) == (r.get("permission") is None)
        assert r.get("permission") is None or r["permission"] in PERMS


@pytest.mark.parametrize("method,pattern,perm", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_missing_permission_is_forbidden(daemon, env, method, pattern, perm):
    vault, version = vault_without(daemon, env, perm)
    path = pattern.replace("{name}", "k").replace("{version}", version)
    r = kv(daemon, vault, method, path, env["sp_token"], json={})
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert (err["code"], err["innererror"]["code"]) == ("Forbidden", "ForbiddenByPolicy")
    assert f"does not have keys {perm} permission on key vault '{vault};" in err["message"]
    assert r.headers["x-ms-keyvault-service-version"]


@pytest.mark.parametrize("perm", ["get", "wrapKey", "unwrapKey", "list"])
def test_the_other_permissions_admit(daemon, env, perm):
    """The same principal, on the same vault, passes admission on routes needing another one."""
    vault, version = vault_without(daemon, env, perm)
    r = kv(daemon, vault, "GET", "/keys/k" if perm != "get" else "/keys", env["sp_token"])
    assert r.status_code == 200, r.text


def test_unknown_operation_is_refused_before_admission(daemon, env):
    vault, version = vault_without(daemon, env, "get")
    for path in ("/keys/k/frobnicate", f"/keys/k/{version}/frobnicate"):
        r = daemon.s.post(f"https://{vault}.vault.localhost:{daemon.port}{path}",
                          params={"api-version": "7.4"}, json={}, timeout=10)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "BadParameter"
        assert "invalid operation 'frobnicate'" in r.json()["error"]["message"]


def test_no_token_is_challenged_on_every_route(daemon, env):
    vault, version = vault_without(daemon, env, "get")
    for method, pattern, _ in ROUTES:
        path = pattern.replace("{name}", "k").replace("{version}", version)
        r = daemon.s.request(method, f"https://{vault}.vault.localhost:{daemon.port}{path}",
                             params={"api-version": "7.4"}, timeout=10)
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["WWW-Authenticate"].startswith("Bearer authorization=")
