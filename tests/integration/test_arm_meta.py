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


@pytest.mark.parametrize("flt", ["garbage", "resourceType eq", "resourceType ne 'x'",
                                 "location eq 'eastus'", "resourceType eq 'x' or name eq 'y'",
                                 "resourceType eq 'x' and"])
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
