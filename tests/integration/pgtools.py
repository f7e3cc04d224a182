"""Shared steps of the PostgreSQL CMK tests: the CMK prerequisites (identity, vault with soft delete,
purge protection and 90 days, an access policy, an RSA key), LRO waits, settling the reconciler."""
import requests

from conftest import SUB, TENANT, new_name, poll_until

ADMIN_APP = "00000000-0000-4000-8000-00000000c11e"
ADMIN_SECRET = "pgcmk-admin-secret"
ADMIN_OID = "00000000-0000-4000-8000-00000000a0a0"
KV_AV = "2023-07-01"
MI_AV = "2023-01-31"
CL_AV = "2023-03-02-preview"
SRV_AV = "2017-12-01"
KEY_AV = "2020-01-01"
CMK_PERMS = ["get", "wrapKey", "unwrapKey"]
ALL_KEY_PERMS = ["encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify", "get", "list",
                 "create", "update", "import", "delete", "backup", "restore", "recover", "purge"]


def rg_id(rg):
    return f"/subscriptions/{SUB}/resourceGroups/{rg}"


def cluster_id(rg, name):
    return f"{rg_id(rg)}/providers/Microsoft.DBforPostgreSQL/serverGroupsv2/{name}"


def server_id(rg, name):
    return f"{rg_id(rg)}/providers/Microsoft.DBforPostgreSQL/servers/{name}"


def vault_id(rg, name):
    return f"{rg_id(rg)}/providers/Microsoft.KeyVault/vaults/{name}"


def identity_id(rg, name):
    return f"{rg_id(rg)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"


def policy(oid, keys):
    return {"tenantId": TENANT, "objectId": oid, "permissions": {"keys": keys}}


def token(d, scope="https://vault.azure.net/.default"):
    r = d.post("/adfs/oauth2/token", data={"grant_type": "client_credentials",
                                           "client_id": ADMIN_APP, "client_secret": ADMIN_SECRET,
                                           "scope": scope})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


class Vault:
    """A vault fit for CMK, its key, and a way to change both as the admin."""

    def __init__(self, d, rg, name=None, retention=90, purge_protection=True, policies=()):
        self.d, self.rg = d, rg
        self.name = name or ("v" + new_name("")[1:13])
        props = {"tenantId": TENANT, "sku": {"family": "A", "name": "standard"},
                 "accessPolicies": [policy(ADMIN_OID, ALL_KEY_PERMS), *policies],
                 "softDeleteRetentionInDays": retention}
        if purge_protection:
            props["enablePurgeProtection"] = True
        r = d.put(f"{vault_id(rg, self.name)}?api-version={KV_AV}",
                  json={"location": "eastus", "properties": props})
        assert r.status_code == 201, r.text
        self.uri = r.json()["properties"]["vaultUri"].rstrip("/")
        self.s = requests.Session()
        self.s.verify = d.ca
        self.s.trust_env = False
        self.s.headers["Authorization"] = "Bearer " + token(d)

    def dp(self, method, path, **kw):
        sep = "&" if "?" in path else "?"
        kw.setdefault("timeout", 10)
        return self.s.request(method, f"{self.uri}{path}{sep}api-version=7.4", **kw)

    def create_key(self, name="cmk", kty="RSA", size=2048, **attrs):
        body = {"kty": kty, "key_size": size} if kty.startswith("RSA") else {"kty": kty,
                                                                             "crv": "P-256"}
        if attrs:
            body["attributes"] = attrs
        r = self.dp("POST", f"/keys/{name}/create", json=body)
        assert r.status_code == 200, r.text
        return r.json()["key"]["kid"]

    def set_key(self, kid, **attrs):
        path = kid.split(".vault.localhost:")[1].split("/", 1)[1]
        r = self.dp("PATCH", "/" + path, json={"attributes": attrs})
        assert r.status_code == 200, r.text
        return r.json()

    def policy(self, op, oid, keys=CMK_PERMS):
        r = self.d.put(f"{vault_id(self.rg, self.name)}/accessPolicies/{op}?api-version={KV_AV}",
                       json={"properties": {"accessPolicies": [policy(oid, keys)]}})
        assert r.status_code in (200, 201), r.text


def make_identity(d, rg, name=None):
    name = name or new_name("id")
    r = d.put(f"{identity_id(rg, name)}?api-version={MI_AV}", json={"location": "eastus"})
    assert r.status_code in (200, 201), r.text
    return r.json()["id"], r.json()["properties"]["principalId"]


def cmk_setup(d, rg=None, **vault_kw):
    """A group with an identity, a vault granting it get/wrapKey/unwrapKey, and a key."""
    rg = rg or new_name("rg")
    assert d.put_rg(rg).status_code in (200, 201)
    mi, oid = make_identity(d, rg)
    v = Vault(d, rg, policies=[policy(oid, CMK_PERMS)], **vault_kw)
    kid = v.create_key()
    return rg, mi, oid, v, kid


def cluster_body(mi=None, kid=None, **props):
    p = {"administratorLoginPassword": "P@ssw0rd-1234", "postgresqlVersion": "15",
         "coordinatorVCores": 4, "coordinatorStorageQuotaInMb": 131072, "nodeCount": 0, **props}
    body = {"location": "eastus", "properties": p}
    if mi:
        body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {mi: {}}}
    if kid:
        p["dataEncryption"] = {"type": "AzureKeyVault", "primaryKeyUri": kid,
                               "primaryUserAssignedIdentityId": mi}
    return body


def wait_lro(d, r, timeout=20):
    """Follows Azure-AsyncOperation to the end; returns the final status body."""
    assert r.status_code in (200, 201, 202), r.text
    url = r.headers["Azure-AsyncOperation"]

    def done():
        st = d.get(url)
        assert st.status_code == 200, st.text
        return st.json() if st.json()["status"] != "InProgress" else None
    return poll_until(done, timeout=timeout, what="the operation")


def create_cluster(d, rg, name, body, av=CL_AV, expect="Succeeded"):
    r = d.put(f"{cluster_id(rg, name)}?api-version={av}", json=body)
    assert r.status_code == 201, r.text
    st = wait_lro(d, r)
    assert st["status"] == expect, st
    return st


def get_cluster(d, rg, name, av=CL_AV):
    r = d.get(f"{cluster_id(rg, name)}?api-version={av}")
    assert r.status_code == 200, r.text
    return r.json()


def settle(d, timeout=20):
    """Until the reconciler has no key check queued or running."""
    def settled():
        r = d.post("/emulator/settle")
        assert r.status_code == 200, r.text
        return r.json() if r.json()["settled"] else None
    return poll_until(settled, timeout=timeout, what="the reconciler to settle")


def explain(d, rid):
    r = d.get("/emulator/explain", params={"resourceId": rid})
    assert r.status_code == 200, r.text
    return r.json()


def data_url(rid, key=None):
    return f"/emulator/data{rid}/rows" + (f"/{key}" if key else "")


# --- single servers (Microsoft.DBforPostgreSQL/servers) and server keys -------------------------

def server_body(mode="Default", identity=True, **props):
    """A ServerForCreate body; Default mode gets a login and password."""
    p = {"createMode": mode, **props}
    if mode == "Default":
        p.setdefault("administratorLogin", "pgadmin")
        p.setdefault("administratorLoginPassword", "P@ssw0rd1234!")
        p.setdefault("version", "11")
    body = {"location": "eastus", "sku": {"name": "GP_Gen5_2", "tier": "GeneralPurpose",
                                          "family": "Gen5", "capacity": 2}, "properties": p}
    if identity:
        body["identity"] = {"type": "SystemAssigned"}
    return body


def create_server(d, rg, name, body=None, av=SRV_AV, expect="Succeeded"):
    """PUT a new server and follow its Azure-AsyncOperation to the end; the final status body."""
    body = body or server_body()
    r = d.put(f"{server_id(rg, name)}?api-version={av}", json=body)
    # Azure's examples: a Default create answers 201 with the body; PointInTimeRestore, GeoRestore
    # and Replica answer 202 Accepted with no body
    mode = str(body.get("properties", {}).get("createMode", "Default"))
    assert r.status_code == (201 if mode.lower() == "default" else 202), r.text
    assert mode.lower() == "default" or r.content == b"", r.text
    st = wait_lro(d, r)
    assert st["status"] == expect, st
    return st


def get_server(d, rg, name, av=SRV_AV):
    r = d.get(f"{server_id(rg, name)}?api-version={av}")
    assert r.status_code == 200, r.text
    return r.json()


def server_key_name(kid):
    """{vault}_{key}_{version} of a key id (either host form)."""
    host, _, rest = kid.partition("://")[2].partition("/")
    _, key, version = rest.split("/")[:3]
    return f"{host.split('.')[0]}_{key}_{version}"


def put_server_key(d, rg, server, kid, name=None, av=KEY_AV):
    """PUT servers/{s}/keys/{name}: the first answer (202 + Location when accepted)."""
    return d.put(f"{server_id(rg, server)}/keys/{name or server_key_name(kid)}?api-version={av}",
                 json={"properties": {"serverKeyType": "AzureKeyVault", "uri": kid}})


def set_server_key(d, rg, server, kid, expect="Succeeded", **kw):
    """PUT a server key and follow it to the end; the final operation status body."""
    r = put_server_key(d, rg, server, kid, **kw)
    assert r.status_code == 202, r.text
    assert r.headers["Location"].startswith("https://"), r.headers
    st = wait_lro(d, r)
    assert st["status"] == expect, st
    return st
