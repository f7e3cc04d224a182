"""Subscriptions, tenants, providers, the resources list, provider paths and cloud metadata."""
import pytest

from conftest import SUB, TENANT, assert_arm_error, new_name

OTHER_SUB = "11111111-2222-4333-8444-555555555555"


def test_list_subscriptions(daemon):
    r = daemon.get("/subscriptions?api-version=2022-12-01")
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["value"]) == 1
    s = body["value"][0]
    assert s["subscriptionId"] == SUB
    assert s["id"] == f"/subscriptions/{SUB}"
    assert s["tenantId"] == TENANT
    assert s["state"] == "Enabled"
    assert s["displayName"]
    assert body["count"] == {"type": "Total", "value": 1}


def test_get_subscription(daemon):
    r = daemon.get(f"/subscriptions/{SUB}?api-version=2022-12-01")
    assert r.status_code == 200
    assert r.json()["subscriptionId"] == SUB
    assert r.json()["tenantId"] == TENANT


@pytest.mark.parametrize("path", ["", "/resourcegroups", "/resourcegroups/x", "/providers",
                                  "/resources"])
def test_bad_subscription_ids(daemon, path):
    assert_arm_error(daemon.get(f"/subscriptions/not-a-guid{path}?api-version=2022-12-01"), 400,
                     "InvalidSubscriptionId")
    err = assert_arm_error(daemon.get(f"/subscriptions/{OTHER_SUB}{path}?api-version=2022-12-01"),
                           404, "SubscriptionNotFound")
    assert OTHER_SUB in err["message"]


def test_tenants(daemon):
    r = daemon.get("/tenants?api-version=2022-12-01")
    assert r.status_code == 200
    t = r.json()["value"]
    assert len(t) == 1 and t[0]["tenantId"] == TENANT and t[0]["id"] == f"/tenants/{TENANT}"


def test_subscription_apis_check_api_version(daemon):
    for path in ("/subscriptions", f"/subscriptions/{SUB}", "/tenants",
                 f"/subscriptions/{SUB}/providers"):
        assert_arm_error(daemon.get(path), 400, "MissingApiVersionParameter")
        r = daemon.get(path + "?api-version=2099-01-01")
        assert_arm_error(r, 400, "InvalidApiVersionParameter")
        assert r.headers["x-ms-failure-cause"] == "gateway"


def test_providers_list(daemon):
    r = daemon.get(f"/subscriptions/{SUB}/providers?api-version=2021-04-01")
    assert r.status_code == 200, r.text
    value = r.json()["value"]
    assert isinstance(value, list)
    for p in value:
        assert p["registrationState"] == "Registered"
        assert p["id"] == f"/subscriptions/{SUB}/providers/{p['namespace']}"
        assert all(rt["apiVersions"] for rt in p["resourceTypes"])
    assert "Microsoft.Nope" not in [p["namespace"] for p in value]


def test_unknown_provider_namespace(daemon):
    assert_arm_error(daemon.get(f"/subscriptions/{SUB}/providers/Microsoft.Nope?api-version=2021-04-01"),
                     400, "InvalidResourceNamespace")


def test_provider_resource_path_unknown_namespace(daemon):
    rg = new_name()
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        r = daemon.request(method, f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Nope/"
                                   "things/x?api-version=2020-01-01",
                           json={"location": "eastus"} if method in ("PUT", "PATCH") else None)
        err = assert_arm_error(r, 400, "InvalidResourceNamespace")
        assert "Microsoft.Nope" in err["message"]
    r = daemon.get(f"/subscriptions/{SUB}/providers/Microsoft.Nope/things?api-version=2020-01-01")
    assert_arm_error(r, 400, "InvalidResourceNamespace")


def test_resources_list(daemon):
    r = daemon.get(f"/subscriptions/{SUB}/resources",
                   params={"$filter": "resourceType eq 'Microsoft.KeyVault/vaults'",
                           "api-version": "2015-11-01"})
    assert r.status_code == 200, r.text
    assert r.json()["value"] == []
    r = daemon.get(f"/subscriptions/{SUB}/resources?api-version=2021-04-01")
    assert r.status_code == 200 and isinstance(r.json()["value"], list)
    r = daemon.get(f"/subscriptions/{SUB}/resources",
                   params={"$filter": "resourceType eq 'Microsoft.KeyVault/vaults' and name eq 'kv1'",
                           "api-version": "2021-04-01"})
    assert r.status_code == 200 and r.json()["value"] == []


IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities"


def put_identity(daemon, rg, name):
    r = daemon.put(f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{IDENTITY}/{name}"
                   "?api-version=2023-01-31", json={"location": "eastus", "tags": {"t": "1"}})
    assert r.status_code in (200, 201), r.text
    return r.json()["id"]


def list_ids(daemon, path=f"/subscriptions/{SUB}/resources", **params):
    r = daemon.get(path, params={"api-version": "2021-04-01", **params})
    assert r.status_code == 200, r.text
    return r.json()["value"]


def test_resources_filter_by_group(daemon):
    """`az resource list -g RG` sends $filter=resourceGroup eq 'RG' with $expand."""
    rg, rg2 = new_name(), new_name()
    assert daemon.put_rg(rg).status_code == 201 and daemon.put_rg(rg2).status_code == 201
    a, b = put_identity(daemon, rg, "id-a"), put_identity(daemon, rg, "id-b")
    c = put_identity(daemon, rg2, "id-a")
    got = list_ids(daemon, **{"$filter": f"resourceGroup eq '{rg}'"})
    assert sorted(i["id"] for i in got) == sorted([a, b])
    assert got[0]["tags"] == {"t": "1"} and got[0]["location"] == "eastus"
    assert "createdTime" not in got[0] and "provisioningState" not in got[0]
    # Case-insensitive key, operator and value; combined with the other clauses by "and".
    for flt in (f"ResourceGroup eq '{rg.upper()}'",
                f"resourceGroup eq '{rg}' and resourceType eq '{IDENTITY.lower()}'",
                f"resourceType eq '{IDENTITY}' and resourceGroup eq '{rg}' AND name eq 'id-a'"):
        ids = [i["id"] for i in list_ids(daemon, **{"$filter": flt})]
        assert a in ids and c not in ids, (flt, ids)
    assert [i["id"] for i in list_ids(
        daemon, **{"$filter": f"resourceGroup eq '{rg}' and name eq 'ID-B'"})] == [b]
    assert list_ids(daemon, **{"$filter": f"resourceGroup eq '{new_name()}'"}) == []
    assert list_ids(daemon, **{"$filter": f"resourceGroup eq '{rg}' and resourceType eq "
                                          "'Microsoft.KeyVault/vaults'"}) == []
    # `az resource list -l` adds location eq '...' (ARM's spelling or the display name).
    for loc in ("eastus", "East US"):
        got = list_ids(daemon, **{"$filter": f"resourceGroup eq '{rg}' and location eq '{loc}'"})
        assert sorted(i["id"] for i in got) == sorted([a, b])
    assert list_ids(daemon, **{"$filter": f"resourceGroup eq '{rg}' and location eq 'westus'"}) \
        == []
    # The same filter at group scope: only when it names that group.
    in_rg = f"/subscriptions/{SUB}/resourceGroups/{rg}/resources"
    assert len(list_ids(daemon, in_rg, **{"$filter": f"resourceGroup eq '{rg}'"})) == 2
    assert list_ids(daemon, in_rg, **{"$filter": f"resourceGroup eq '{rg2}'"}) == []


def test_resources_substringof(daemon):
    rg = new_name()
    assert daemon.put_rg(rg).status_code == 201
    a, b = put_identity(daemon, rg, "alpha-one"), put_identity(daemon, rg, "beta-two")
    got = list_ids(daemon, **{"$filter": f"substringof('PHA', name) and resourceGroup eq '{rg}'"})
    assert [i["id"] for i in got] == [a]
    got = list_ids(daemon, **{"$filter": f"substringof('{rg[3:]}', resourceGroup)"})
    assert sorted(i["id"] for i in got) == sorted([a, b])
    got = list_ids(daemon, **{"$filter": "substringof('it''s', name)"})
    assert got == []


def test_resources_expand(daemon):
    rg = new_name()
    assert daemon.put_rg(rg).status_code == 201
    ident = daemon.get(put_identity(daemon, rg, "id-x") + "?api-version=2023-01-31").json()
    (item,) = list_ids(daemon, **{"$filter": f"resourceGroup eq '{rg}'",
                                  "$expand": "createdTime,changedTime,provisioningState"})
    assert item["createdTime"] == ident["systemData"]["createdAt"]
    assert item["changedTime"] == ident["systemData"]["lastModifiedAt"]
    assert item["provisioningState"] == "Succeeded"
    (item,) = list_ids(daemon, **{"$filter": f"resourceGroup eq '{rg}'",
                                  "$expand": "provisioningState"})
    assert item["provisioningState"] == "Succeeded" and "createdTime" not in item


@pytest.mark.parametrize("expand", ["tags", "createdTime,", "createdTime,nope", ","])
def test_resources_bad_expand(daemon, expand):
    r = daemon.get(f"/subscriptions/{SUB}/resources",
                   params={"$expand": expand, "api-version": "2021-04-01"})
    err = assert_arm_error(r, 400, "BadRequest")
    assert "$expand" in err["message"]


@pytest.mark.parametrize("flt", ["garbage", "resourceType eq", "resourceType ne 'x'",
                                 "plan eq 'x'", "resourceType eq 'x' or name eq 'y'",
                                 "resourceType eq 'x' and", "resourceGroup eq 'x",
                                 "substringof('x', location)", "substringof('x' name)",
                                 "substringof('x', name"])
def test_resources_bad_filter(daemon, flt):
    r = daemon.get(f"/subscriptions/{SUB}/resources", params={"$filter": flt, "api-version": "2021-04-01"})
    assert_arm_error(r, 400)


def test_resources_in_group(daemon):
    rg = new_name()
    url = f"/subscriptions/{SUB}/resourcegroups/{rg}/resources?api-version=2021-04-01"
    assert_arm_error(daemon.get(url), 404, "ResourceGroupNotFound")
    daemon.put(f"/subscriptions/{SUB}/resourcegroups/{rg}?api-version=2021-04-01", json={"location": "eastus"})
    r = daemon.get(url)
    assert r.status_code == 200 and r.json()["value"] == []


@pytest.mark.parametrize("av", ["2022-09-01", "2019-05-01"])
def test_metadata_endpoints(daemon, av):
    r = daemon.get(f"/metadata/endpoints?api-version={av}")
    assert r.status_code == 200, r.text
    clouds = r.json()
    assert isinstance(clouds, list) and clouds
    c = clouds[0]
    base = f"https://localhost:{daemon.port}"
    assert c["name"]
    assert c["resourceManager"].rstrip("/") == base
    assert c["authentication"]["loginEndpoint"].startswith(base)
    assert c["suffixes"]["keyVaultDns"].lstrip(".") == f"vault.localhost:{daemon.port}"


@pytest.mark.parametrize("path", [
    f"/subscriptions/{SUB}/providers/Microsoft.KeyVault/managedHSMs",
    f"/subscriptions/{SUB}/providers/Microsoft.KeyVault/deletedManagedHSMs"])
def test_managed_hsm_lists_are_empty(daemon, path):
    """No managed HSMs are emulated; az lists them next to vaults (list, list-deleted)."""
    for av in ("2021-10-01", "2022-07-01", "2023-07-01"):
        r = daemon.get(f"{path}?api-version={av}")
        assert r.status_code == 200, r.text
        assert r.json() == {"value": []}
    assert_arm_error(daemon.get(path), 400, "MissingApiVersionParameter")
    assert_arm_error(daemon.get(f"{path}?api-version=2099-01-01"), 400)
    other = path.replace(SUB, OTHER_SUB)
    assert_arm_error(daemon.get(f"{other}?api-version=2022-07-01"), 404, "SubscriptionNotFound")


def test_managed_hsm_list_in_group(daemon):
    rg = new_name()
    path = f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.KeyVault/managedHSMs"
    assert_arm_error(daemon.get(f"{path}?api-version=2022-07-01"), 404, "ResourceGroupNotFound")
    assert daemon.put_rg(rg).status_code == 201
    r = daemon.get(f"{path}?api-version=2022-07-01")
    assert r.status_code == 200 and r.json() == {"value": []}
    # deletedManagedHSMs came with 2021-04-01-preview, managedHSMs with 2020-04-01-preview.
    r = daemon.get(f"{path}?api-version=2020-04-01-preview")
    assert r.status_code == 200, r.text
    assert_arm_error(daemon.get(f"/subscriptions/{SUB}/providers/Microsoft.KeyVault/"
                                "deletedManagedHSMs?api-version=2020-04-01-preview"), 400)
