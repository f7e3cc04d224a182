"""Microsoft.ManagedIdentity/userAssignedIdentities through the real azure.mgmt.msi client, and the
managed-identity token endpoints (IMDS and App Service style) through requests and
azure.identity.ManagedIdentityCredential."""
import base64
import json
import time

import pytest

from conftest import GUID_RE, SUB, TENANT, assert_arm_error, new_name, poll_until

pytest.importorskip("azure.mgmt.msi")
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError  # noqa: E402
from azure.identity import ClientSecretCredential, ManagedIdentityCredential  # noqa: E402
from azure.mgmt.msi import ManagedServiceIdentityClient  # noqa: E402

ADMIN_APP = "00000000-0000-4000-8000-00000000c11e"
ADMIN_SECRET = "pgcmk-admin-secret"
ARM_SCOPE = "https://management.azure.com/.default"
TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
MI_VERSIONS = ["2018-11-30", "2022-01-31-preview", "2023-01-31"]
IMDS = "/metadata/identity/oauth2/token"


# --- helpers and fixtures --------------------------------------------------------------------

def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def claims_of(tok):
    return json.loads(b64u_dec(tok.split(".")[1]))


def verify_sig(tok, jwks):
    """RS256 signature check against the daemon's JWKS (python3-cryptography)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    h = json.loads(b64u_dec(tok.split(".")[0]))
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == h["kid"]]
    pub = rsa.RSAPublicNumbers(int.from_bytes(b64u_dec(jwk["e"]), "big"),
                               int.from_bytes(b64u_dec(jwk["n"]), "big")).public_key()
    signing_input, sig = tok.rsplit(".", 1)
    pub.verify(b64u_dec(sig), signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())


def id_path(rg, name, av="2023-01-31"):
    return (f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{TYPE}/{name}"
            + (f"?api-version={av}" if av else ""))


def with_status(pipeline_response, deserialized, headers):
    return pipeline_response.http_response.status_code, deserialized


@pytest.fixture(scope="module")
def cred(daemon):
    return ClientSecretCredential("adfs", ADMIN_APP, ADMIN_SECRET, authority=daemon.base,
                                  connection_verify=daemon.ca)


def msi_client(daemon, cred, **kw):
    return ManagedServiceIdentityClient(cred, SUB, base_url=daemon.base,
                                        credential_scopes=[ARM_SCOPE],
                                        connection_verify=daemon.ca, **kw)


@pytest.fixture(scope="module")
def msi(daemon, cred):
    return msi_client(daemon, cred)


@pytest.fixture(scope="module")
def rg(daemon):
    name = new_name("mi")
    assert daemon.put_rg(name).status_code == 201
    return name


@pytest.fixture(scope="module")
def jwks(daemon):
    return daemon.get("/adfs/discovery/keys").json()


@pytest.fixture
def ident(msi, rg):
    return msi.user_assigned_identities.create_or_update(rg, new_name("id"), {"location": "eastus"})


def imds(daemon, headers=None, **params):
    params.setdefault("api-version", "2018-02-01")
    params.setdefault("resource", "https://vault.azure.net")
    return daemon.get(IMDS, params=params,
                      headers={"Metadata": "true"} if headers is None else headers)


# --- ARM CRUD through the SDK ----------------------------------------------------------------

def test_create_is_201_then_200_with_stable_ids(msi, rg):
    name = new_name("id")
    status, first = msi.user_assigned_identities.create_or_update(
        rg, name, {"location": "eastus", "tags": {"a": "1"}}, cls=with_status)
    assert status == 201
    assert first.name == name and first.type == TYPE and first.location == "eastus"
    assert first.id == id_path(rg, name, av=None)
    assert first.tags == {"a": "1"}
    assert first.tenant_id == TENANT
    assert GUID_RE.match(first.principal_id) and GUID_RE.match(first.client_id)
    assert first.principal_id != first.client_id
    status, again = msi.user_assigned_identities.create_or_update(
        rg, name, {"location": "eastus", "tags": {"b": "2"}}, cls=with_status)
    assert status == 200
    assert again.tags == {"b": "2"}
    assert (again.principal_id, again.client_id, again.tenant_id) == \
        (first.principal_id, first.client_id, first.tenant_id)
    got = msi.user_assigned_identities.get(rg, name)
    assert (got.principal_id, got.client_id) == (first.principal_id, first.client_id)
    assert got.tags == {"b": "2"}


def test_update_changes_tags_only(msi, rg, ident):
    upd = msi.user_assigned_identities.update(rg, ident.name, {"tags": {"env": "ci"}})
    assert upd.tags == {"env": "ci"}
    assert (upd.principal_id, upd.client_id, upd.tenant_id) == \
        (ident.principal_id, ident.client_id, ident.tenant_id)
    assert msi.user_assigned_identities.get(rg, ident.name).tags == {"env": "ci"}


def test_client_supplied_ids_are_ignored(daemon, rg):
    name = new_name("id")
    fake = "11111111-1111-4111-8111-111111111111"
    r = daemon.put(id_path(rg, name), json={"location": "eastus", "properties": {
        "principalId": fake, "clientId": fake, "tenantId": fake}})
    assert r.status_code == 201, r.text
    p = r.json()["properties"]
    assert fake not in (p["principalId"], p["clientId"]) and p["tenantId"] == TENANT, p


def test_two_identities_have_distinct_ids(msi, rg):
    a = msi.user_assigned_identities.create_or_update(rg, new_name("id"), {"location": "eastus"})
    b = msi.user_assigned_identities.create_or_update(rg, new_name("id"), {"location": "eastus"})
    assert len({a.principal_id, a.client_id, b.principal_id, b.client_id}) == 4


def test_lists(msi, rg, daemon):
    other_rg = new_name("mi")
    assert daemon.put_rg(other_rg).status_code == 201
    mine = {msi.user_assigned_identities.create_or_update(rg, new_name("id"),
                                                          {"location": "eastus"}).name
            for _ in range(2)}
    theirs = msi.user_assigned_identities.create_or_update(other_rg, new_name("id"),
                                                           {"location": "westus"})
    in_rg = {i.name for i in msi.user_assigned_identities.list_by_resource_group(rg)}
    assert mine <= in_rg and theirs.name not in in_rg
    in_sub = {i.name: i for i in msi.user_assigned_identities.list_by_subscription()}
    assert mine <= set(in_sub) and theirs.name in in_sub
    assert in_sub[theirs.name].principal_id == theirs.principal_id
    assert in_sub[theirs.name].location == "westus"
    assert list(msi.user_assigned_identities.list_by_resource_group(other_rg))[0].id == theirs.id


def test_delete(msi, rg, daemon):
    i = msi.user_assigned_identities.create_or_update(rg, new_name("id"), {"location": "eastus"})
    status = msi.user_assigned_identities.delete(rg, i.name, cls=lambda p, d, h:
                                                  p.http_response.status_code)
    assert status in (200, 204)
    with pytest.raises(ResourceNotFoundError) as ei:
        msi.user_assigned_identities.get(rg, i.name)
    assert ei.value.error.code == "ResourceNotFound"
    assert i.name not in {x.name for x in msi.user_assigned_identities.list_by_resource_group(rg)}
    # Deleting again is a 204 (as ARM does for absent resources).
    r = daemon.delete(id_path(rg, i.name))
    assert r.status_code == 204, r.text


def test_recreate_after_delete_gets_new_ids(msi, rg):
    name = new_name("id")
    a = msi.user_assigned_identities.create_or_update(rg, name, {"location": "eastus"})
    msi.user_assigned_identities.delete(rg, name)
    b = msi.user_assigned_identities.create_or_update(rg, name, {"location": "eastus"})
    assert b.principal_id != a.principal_id and b.client_id != a.client_id


@pytest.mark.parametrize("av", MI_VERSIONS)
def test_api_versions(daemon, rg, av):
    name = new_name("id")
    r = daemon.put(id_path(rg, name, av), json={"location": "eastus"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["type"] == TYPE and body["name"] == name
    assert GUID_RE.match(body["properties"]["principalId"])
    r = daemon.get(id_path(rg, name, av))
    assert r.status_code == 200 and r.json()["properties"] == body["properties"]


@pytest.mark.parametrize("av", ["2018-11-30", "2022-01-31-preview"])
def test_sdk_api_versions(daemon, cred, rg, av):
    c = msi_client(daemon, cred, api_version=av)
    i = c.user_assigned_identities.create_or_update(rg, new_name("id"), {"location": "eastus"})
    assert GUID_RE.match(i.principal_id)
    assert c.user_assigned_identities.get(rg, i.name).client_id == i.client_id


def test_unsupported_api_version(daemon, rg):
    r = daemon.put(id_path(rg, new_name("id"), "2019-01-01"), json={"location": "eastus"})
    err = assert_arm_error(r, 400, "NoRegisteredProviderFound")
    for v in MI_VERSIONS:
        assert v in err["message"], err


@pytest.mark.parametrize("name", ["ab", "-abc", "_abc", "a" * 129, "ab.c", "ab c", "ab$c"])
def test_invalid_names(daemon, msi, rg, name):
    with pytest.raises(HttpResponseError) as ei:
        msi.user_assigned_identities.create_or_update(rg, name, {"location": "eastus"})
    assert ei.value.status_code == 400
    assert ei.value.error.code == "InvalidResourceName"


@pytest.mark.parametrize("name", ["abc", "a_b", "1ab", "A-B_c", "a" * 128])
def test_valid_names(msi, rg, name):
    i = msi.user_assigned_identities.create_or_update(rg, name, {"location": "eastus"})
    assert i.name == name


def test_missing_resource_group(msi):
    with pytest.raises(HttpResponseError) as ei:
        msi.user_assigned_identities.create_or_update(new_name("nope"), "abc",
                                                      {"location": "eastus"})
    assert ei.value.status_code == 404
    assert ei.value.error.code == "ResourceGroupNotFound"


def test_graph_lists_an_identity_as_a_service_principal(daemon, ident):
    r = daemon.get("/v1.0/servicePrincipals", params={
        "$filter": f"servicePrincipalNames/any(c:c eq '{ident.client_id}')"})
    assert r.status_code == 200, r.text
    (sp,) = r.json()["value"]
    assert sp["id"] == ident.principal_id and sp["appId"] == ident.client_id


def test_graph_service_principal_type_of_an_identity(daemon, ident):
    r = daemon.get("/v1.0/servicePrincipals", params={
        "$filter": f"servicePrincipalNames/any(c:c eq '{ident.client_id}')"})
    assert r.json()["value"][0]["servicePrincipalType"] == "ManagedIdentity"


# --- managed-identity tokens -----------------------------------------------------------------

def check_mi_token(tok, ident, aud, jwks):
    verify_sig(tok, jwks)
    c = claims_of(tok)
    assert c["oid"] == ident.principal_id
    assert c["xms_mirid"] == ident.id
    assert c["appid"] == ident.client_id
    assert c["tid"] == TENANT and c["aud"] == aud and c["idtyp"] == "app"
    assert c["exp"] - c["iat"] == 3599
    return c


@pytest.mark.parametrize("by", ["client_id", "object_id", "mi_res_id"])
def test_imds_token(daemon, ident, jwks, by):
    sel = {"client_id": ident.client_id, "object_id": ident.principal_id,
           "mi_res_id": ident.id}[by]
    r = imds(daemon, **{by: sel})
    assert r.status_code == 200, r.text
    body = r.json()
    for k in ("access_token", "expires_in", "expires_on", "not_before", "resource", "token_type"):
        assert isinstance(body[k], str), (k, body)
    assert body["token_type"] == "Bearer"
    assert body["resource"] == "https://vault.azure.net"
    assert 3000 < int(body["expires_in"]) <= 3599
    assert int(body["expires_on"]) - int(body["not_before"]) == 3599
    assert abs(int(body["expires_on"]) - time.time() - int(body["expires_in"])) <= 5
    c = check_mi_token(body["access_token"], ident, "https://vault.azure.net", jwks)
    assert int(body["expires_on"]) == c["exp"]


def test_imds_needs_the_metadata_header(daemon, ident):
    for headers in ({}, {"Metadata": "false"}):
        r = imds(daemon, headers=headers, client_id=ident.client_id)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "bad_request_102", r.text
        assert "access_token" not in r.json()


@pytest.mark.parametrize("sel", [
    {"client_id": "00000000-0000-4000-8000-00000000dead"},
    {"object_id": "00000000-0000-4000-8000-00000000dead"},
    {"mi_res_id": f"/subscriptions/{SUB}/resourceGroups/x/providers/{TYPE}/nope"},
    {"client_id": ADMIN_APP},  # a service principal, not a managed identity
])
def test_imds_unknown_identity(daemon, ident, sel):
    r = imds(daemon, **sel)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request", r.text
    assert "access_token" not in r.json()


def test_imds_without_resource(daemon, ident):
    r = daemon.get(IMDS, params={"api-version": "2018-02-01", "client_id": ident.client_id},
                   headers={"Metadata": "true"})
    assert r.status_code == 400, r.text
    assert "access_token" not in r.json()


def test_app_service_endpoint(daemon, ident, jwks):
    q = {"api-version": "2019-08-01", "resource": "https://management.azure.com",
         "client_id": ident.client_id}
    r = daemon.get("/msi/token", params=q, headers={"X-IDENTITY-HEADER": "x"})
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"
    check_mi_token(r.json()["access_token"], ident, "https://management.azure.com", jwks)
    r = daemon.post("/msi/token", data=q, headers={"X-IDENTITY-HEADER": "x"})
    assert r.status_code == 200, r.text
    check_mi_token(r.json()["access_token"], ident, "https://management.azure.com", jwks)
    r = daemon.get("/msi/token", params=q)
    assert r.status_code == 400, r.text
    assert "access_token" not in r.json()


def test_mi_token_works_on_arm(daemon, ident):
    r = imds(daemon, client_id=ident.client_id, resource="https://management.azure.com/")
    tok = r.json()["access_token"]
    r = daemon.get("/subscriptions?api-version=2022-12-01",
                   headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200, r.text
    # Its vault token is not an ARM token.
    vt = imds(daemon, client_id=ident.client_id).json()["access_token"]
    assert_arm_error(daemon.get("/subscriptions?api-version=2022-12-01",
                                headers={"Authorization": f"Bearer {vt}"}),
                     401, "InvalidAuthenticationToken")


def test_managed_identity_credential(daemon, ident, jwks, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{daemon.base}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "x")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", daemon.ca)
    for k in ("MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "AZURE_CLIENT_ID",
              "AZURE_POD_IDENTITY_AUTHORITY_HOST", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(k, raising=False)
    cred = ManagedIdentityCredential(client_id=ident.client_id)
    t = cred.get_token("https://vault.azure.net/.default")
    assert t.expires_on > time.time() + 3000
    check_mi_token(t.token, ident, "https://vault.azure.net", jwks)
    # ...and that credential drives the ARM SDK.
    c = ManagedServiceIdentityClient(cred, SUB, base_url=daemon.base, credential_scopes=[ARM_SCOPE])
    assert c.user_assigned_identities.get(ident.id.split("/")[4], ident.name).principal_id == \
        ident.principal_id


def test_no_selector_picks_the_only_identity(start_daemon):
    """Without client_id/object_id/mi_res_id IMDS uses the only identity there is, and refuses
    to guess among several."""
    d = start_daemon(http=False)
    assert d.put_rg("g1").status_code == 201
    assert imds(d).status_code == 400
    r = d.put(id_path("g1", "one"), json={"location": "eastus"})
    assert r.status_code == 201, r.text
    one = r.json()["properties"]["principalId"]
    r = imds(d)
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["oid"] == one
    assert d.put(id_path("g1", "two"), json={"location": "eastus"}).status_code == 201
    r = imds(d)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request"


def test_deleting_an_identity_removes_its_principal(daemon, msi, rg):
    i = msi.user_assigned_identities.create_or_update(rg, new_name("id"), {"location": "eastus"})
    assert imds(daemon, client_id=i.client_id).status_code == 200
    msi.user_assigned_identities.delete(rg, i.name)
    for sel in ({"client_id": i.client_id}, {"object_id": i.principal_id}, {"mi_res_id": i.id}):
        r = imds(daemon, **sel)
        assert r.status_code == 400, (sel, r.text)
        assert r.json()["error"] == "invalid_request"
    r = daemon.get("/v1.0/servicePrincipals", params={
        "$filter": f"servicePrincipalNames/any(c:c eq '{i.client_id}')"})
    assert r.json()["value"] == []


def test_deleting_the_resource_group_removes_its_identities(daemon, msi):
    g = new_name("mi")
    assert daemon.put_rg(g).status_code == 201
    i = msi.user_assigned_identities.create_or_update(g, new_name("id"), {"location": "eastus"})
    assert imds(daemon, client_id=i.client_id).status_code == 200
    r = daemon.delete(f"/subscriptions/{SUB}/resourcegroups/{g}?api-version=2021-04-01")
    assert r.status_code == 202, r.text
    poll_until(lambda: daemon.get(r.headers["Location"]).status_code != 202, what="RG delete")
    with pytest.raises(HttpResponseError):
        msi.user_assigned_identities.get(g, i.name)
    r = imds(daemon, client_id=i.client_id)
    assert r.status_code == 400, r.text


def _mi_env(monkeypatch, daemon, **env):
    for k in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET",
              "IDENTITY_SERVER_THUMBPRINT", "AZURE_CLIENT_ID", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
              "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", daemon.ca)
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def test_managed_identity_credential_cloud_shell_style(daemon, ident, jwks, monkeypatch):
    """MSI_ENDPOINT alone: azure.identity POSTs the form with `Metadata: true`."""
    _mi_env(monkeypatch, daemon, MSI_ENDPOINT=f"{daemon.base}/msi/token")
    t = ManagedIdentityCredential(client_id=ident.client_id).get_token(
        "https://vault.azure.net/.default")
    check_mi_token(t.token, ident, "https://vault.azure.net", jwks)


def test_msi_token_2017_clientid_parameter(daemon, ident, jwks):
    r = daemon.get("/msi/token", headers={"Secret": "s"}, params={
        "api-version": "2017-09-01", "resource": "https://vault.azure.net",
        "clientid": ident.client_id})
    assert r.status_code == 200, r.text
    check_mi_token(r.json()["access_token"], ident, "https://vault.azure.net", jwks)


def test_managed_identity_credential_msi_secret(daemon, ident, jwks, monkeypatch):
    _mi_env(monkeypatch, daemon, MSI_ENDPOINT=f"{daemon.base}/msi/token", MSI_SECRET="s")
    t = ManagedIdentityCredential(client_id=ident.client_id).get_token(
        "https://vault.azure.net/.default")
    check_mi_token(t.token, ident, "https://vault.azure.net", jwks)


# --- locations -------------------------------------------------------------------------------

def test_unknown_location(daemon, rg):
    name = new_name("id")
    r = daemon.put(id_path(rg, name), json={"location": "mars"})
    assert_arm_error(r, 400, "LocationNotAvailableForResourceType")
    assert daemon.get(id_path(rg, name)).status_code == 404


def test_location_cannot_change(daemon, rg):
    name = new_name("id")
    assert daemon.put(id_path(rg, name), json={"location": "eastus"}).status_code == 201
    r = daemon.put(id_path(rg, name), json={"location": "westus"})
    assert 400 <= r.status_code < 500, r.text
    assert daemon.get(id_path(rg, name)).json()["location"] == "eastus"


def test_location_change_error_code(daemon, rg):
    name = new_name("id")
    assert daemon.put(id_path(rg, name), json={"location": "eastus"}).status_code == 201
    r = daemon.put(id_path(rg, name), json={"location": "westus"})
    assert r.json()["error"]["code"] == "InvalidResourceLocation", r.text
    assert r.json()["error"]["message"] == (
        f"The resource '{name}' already exists in location 'eastus' in resource group '{rg}'. A "
        "resource with the same name cannot be created in location 'westus'. Please select a new "
        "resource name.")


def test_deleted_identity_tokens_stay_refused_after_a_restart(start_daemon):
    """Revocation by deleting an identity survives a restart: the bearer check asks whether the
    token's principal (oid) still exists in the store, not an in-memory list. The daemon comes
    back on the same port, so the old tokens' issuer is still right and only the missing
    principal refuses them (a token of the admin from before the restart still works)."""
    import socket

    d = start_daemon("--auth", "strict", http=False)
    try:
        socket.getaddrinfo("probe.vault.localhost", d.port)
    except socket.gaierror as e:
        pytest.skip(f"*.vault.localhost does not resolve ({e})")
    port = d.port
    r = d.post("/adfs/oauth2/token", data={"grant_type": "client_credentials",
                                            "client_id": ADMIN_APP, "client_secret": ADMIN_SECRET,
                                            "scope": "https://management.core.windows.net//.default"})
    assert r.status_code == 200, r.text
    admin = {"Authorization": "Bearer " + r.json()["access_token"]}
    g, kv = new_name("mi"), "v" + new_name("")[1:13]
    assert d.put_rg(g, headers=admin).status_code == 201
    r = d.put(id_path(g, "doomed"), json={"location": "eastus"}, headers=admin)
    assert r.status_code == 201, r.text
    mi = r.json()["properties"]
    r = d.put(f"/subscriptions/{SUB}/resourceGroups/{g}/providers/Microsoft.KeyVault/vaults/{kv}"
              "?api-version=2023-07-01", headers=admin, json={"location": "eastus", "properties": {
                  "tenantId": TENANT, "sku": {"family": "A", "name": "standard"},
                  "accessPolicies": [{"tenantId": TENANT, "objectId": mi["principalId"],
                                      "permissions": {"keys": ["get", "list"]}}]}})
    assert r.status_code == 201, r.text
    keys_url = f"https://{kv}.vault.localhost:{port}/keys?api-version=7.4"
    subs = "/subscriptions?api-version=2022-12-01"

    def mi_token(resource):
        r = imds(d, client_id=mi["clientId"], resource=resource)
        assert r.status_code == 200, r.text
        return {"Authorization": "Bearer " + r.json()["access_token"]}

    vault_tok, arm_tok = mi_token("https://vault.azure.net"), mi_token(
        "https://management.azure.com/")

    def accepted():
        r = d.get(keys_url, headers=vault_tok)
        assert r.status_code == 200, r.text
        r = d.get(subs, headers=arm_tok)
        assert r.status_code == 200, r.text

    def refused():
        r = d.get(keys_url, headers=vault_tok)
        assert r.status_code == 401, r.text
        assert "WWW-Authenticate" in r.headers
        assert "deleted" in r.json()["error"]["message"]
        assert_arm_error(d.get(subs, headers=arm_tok), 401, "InvalidAuthenticationToken")

    accepted()
    r = d.delete(id_path(g, "doomed"), headers=admin)
    assert r.status_code == 200, r.text
    refused()  # at once, on the same (cached) tokens

    d.restart(flags=["--auth", "strict", "--port", str(port)])
    assert d.port == port
    assert d.get(subs, headers=admin).status_code == 200  # the old issuer is still good
    refused()
    # a new identity with the same name is another principal: the old tokens stay dead
    r = d.put(id_path(g, "doomed"), json={"location": "eastus"}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["principalId"] != mi["principalId"]
    refused()
