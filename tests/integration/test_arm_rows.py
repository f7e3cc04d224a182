"""Every ARM resource type is a row of the provider table (issue #11 items 1 and 2): vaults/keys
and servers/keys go through the engine with their list/GET/DELETE behaviour unchanged, and the
status codes follow Azure's REST specs: a serverGroupsv2 DELETE is a long-running operation
(ClusterDelete example: 202 + Azure-AsyncOperation + Location), single-server creates from a
source answer 202 (ServerCreatePointInTimeRestore / GeoRestoreMode / ReplicaMode examples), a PUT
on a resource whose create failed creates it again, and checkNameAvailability of single servers
takes the bare namespace type (CheckNameAvailability example)."""
import pytest

from conftest import SUB, assert_arm_error, new_name
from pgtools import (CL_AV, CMK_PERMS, KEY_AV, KV_AV, SRV_AV, Vault, cluster_body, cluster_id,
                     create_cluster, create_server, get_cluster, get_server, make_identity,
                     policy, server_body, server_id, server_key_name, set_server_key, vault_id,
                     wait_lro)

CHECK_NAME = f"/subscriptions/{SUB}/providers/Microsoft.DBforPostgreSQL/checkNameAvailability"


@pytest.fixture(scope="module")
def rg(daemon):
    g = new_name("rg")
    assert daemon.put_rg(g).status_code == 201
    return g


def poll_location(d, url, tries=200):
    """Follows a Location URL until it stops answering 202; returns the last answer."""
    for _ in range(tries):
        r = d.get(url)
        if r.status_code != 202:
            return r
    raise AssertionError(f"{url} still answers 202")


# --- item 2: serverGroupsv2 DELETE is a long-running operation ---------------------------------

def test_cluster_delete_is_an_lro_polled_to_the_end(daemon, rg):
    d = daemon
    name = new_name("cl")
    create_cluster(d, rg, name, cluster_body())
    url = f"{cluster_id(rg, name)}?api-version={CL_AV}"
    r = d.delete(url)
    assert r.status_code == 202, r.text
    assert r.content == b""
    aso, loc = r.headers["Azure-AsyncOperation"], r.headers["Location"]
    assert "/providers/Microsoft.DBforPostgreSQL/locations/eastus/azureAsyncOperation/" in aso
    assert "/operationResults/" in loc.replace("operationresults", "operationResults")
    assert r.headers["Retry-After"] == "1"
    assert wait_lro(d, r)["status"] == "Succeeded"
    assert poll_location(d, loc).status_code in (200, 204)
    assert_arm_error(d.get(url), 404, "ResourceNotFound")
    # deleting what is not there is 204 at once, with no operation
    r = d.delete(url)
    assert r.status_code == 204 and "Azure-AsyncOperation" not in r.headers


def test_cluster_delete_precondition_is_checked_at_once(daemon, rg):
    d = daemon
    name = new_name("cl")
    create_cluster(d, rg, name, cluster_body())
    url = f"{cluster_id(rg, name)}?api-version={CL_AV}"
    assert_arm_error(d.delete(url, headers={"If-Match": '"nope"'}), 412)
    assert get_cluster(d, rg, name)["properties"]["state"] == "Ready"


# --- item 2: a PUT on a resource whose create failed creates it again ---------------------------

def test_failed_create_is_retried_by_put(daemon, rg):
    d = daemon
    mi, oid = make_identity(d, rg)
    v = Vault(d, rg, policies=[policy(oid, ["get", "wrapKey"])])  # unwrapKey missing
    kid = v.create_key()
    name = new_name("cl")
    st = create_cluster(d, rg, name, cluster_body(mi, kid), expect="Failed")
    assert st["error"]["code"] == "AzureKeyVaultMissingPermissions", st
    assert get_cluster(d, rg, name)["properties"]["provisioningState"] == "Failed"
    v.policy("add", oid, CMK_PERMS)
    # the same PUT again: a new create (201 + LRO), not DataEncryptionUpdateNotSupported
    r = d.put(f"{cluster_id(rg, name)}?api-version={CL_AV}", json=cluster_body(mi, kid))
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["state"] == "Provisioning"
    assert wait_lro(d, r)["status"] == "Succeeded"
    p = get_cluster(d, rg, name)["properties"]
    assert p["provisioningState"] == "Succeeded" and p["state"] == "Ready"
    assert p["dataEncryption"]["primaryKeyUri"] == kid
    # a cluster whose create succeeded still refuses a change of encryption
    body = cluster_body()
    body["properties"]["dataEncryption"] = {"type": "SystemManaged"}
    r = d.put(f"{cluster_id(rg, name)}?api-version={CL_AV}", json=body)
    assert_arm_error(r, 400, "DataEncryptionUpdateNotSupported")


# --- item 2: single-server creates from a source answer 202 ------------------------------------

def test_single_server_creates_from_a_source_answer_202(daemon, rg):
    d = daemon
    src = new_name("pg")
    r = d.put(f"{server_id(rg, src)}?api-version={SRV_AV}", json=server_body())
    assert r.status_code == 201 and r.json()["name"] == src, r.text
    assert wait_lro(d, r)["status"] == "Succeeded"
    sid = server_id(rg, src)
    t = get_server(d, rg, src)["properties"]["earliestRestoreDate"]
    for mode, extra in (("PointInTimeRestore", {"restorePointInTime": t}), ("GeoRestore", {}),
                        ("Replica", {})):
        name = new_name("pg")
        r = d.put(f"{server_id(rg, name)}?api-version={SRV_AV}",
                  json=server_body(mode, identity=False, sourceServerId=sid, **extra))
        assert r.status_code == 202, (mode, r.text)
        assert r.content == b"", mode
        assert r.headers["Azure-AsyncOperation"].startswith("https://")
        assert r.headers["Location"].startswith("https://")
        assert wait_lro(d, r)["status"] == "Succeeded", mode
        assert get_server(d, rg, name)["properties"]["userVisibleState"] == "Ready", mode
    # a Default create and an update keep their 201 / 200 with the body
    r = d.put(f"{server_id(rg, src)}?api-version={SRV_AV}", json={"location": "eastus", "properties": {}})
    assert r.status_code == 200 and r.json()["name"] == src, r.text


# --- item 2: checkNameAvailability takes the bare namespace type -------------------------------

def test_check_name_availability_takes_the_bare_namespace(daemon, rg):
    d = daemon
    name = new_name("pg")
    create_server(d, rg, name)
    for typ in ("Microsoft.DBforPostgreSQL", "microsoft.dbforpostgresql",
                "Microsoft.DBforPostgreSQL/servers"):
        r = d.post(f"{CHECK_NAME}?api-version={SRV_AV}", json={"name": name, "type": typ})
        assert r.status_code == 200, r.text
        assert r.json()["nameAvailable"] is False and r.json()["reason"] == "AlreadyExists"
        r = d.post(f"{CHECK_NAME}?api-version={SRV_AV}",
                   json={"name": new_name("pg"), "type": typ})
        assert r.status_code == 200 and r.json()["nameAvailable"] is True, r.text
    r = d.post(f"{CHECK_NAME}?api-version={SRV_AV}",
               json={"name": name, "type": "Microsoft.DBforMySQL"})
    assert_arm_error(r, 400, "InvalidResourceType")


# --- item 1: servers/keys is a row of the engine ------------------------------------------------

def test_server_keys_through_the_engine(daemon, rg):
    d = daemon
    name = new_name("pg")
    create_server(d, rg, name)
    rid = server_id(rg, name)
    v = Vault(d, rg, policies=[policy(get_server(d, rg, name)["identity"]["principalId"],
                                      CMK_PERMS)])
    kid = v.create_key()
    kname = server_key_name(kid)
    keys = f"{rid}/keys"
    assert d.get(f"{keys}?api-version={KEY_AV}").json()["value"] == []
    st = set_server_key(d, rg, name, kid)
    # the operation answers the key, as GET does
    r = d.get(f"{keys}/{kname}?api-version={KEY_AV}")
    assert r.status_code == 200, r.text
    k = r.json()
    assert k["id"].lower() == f"{keys}/{kname}".lower()
    assert k["type"] == "Microsoft.DBforPostgreSQL/servers/keys" and k["kind"] == "azurekeyvault"
    assert k["properties"]["serverKeyType"] == "AzureKeyVault"
    assert k["properties"]["uri"] == kid
    assert st["status"] == "Succeeded"
    items = d.get(f"{keys}?api-version={KEY_AV}").json()["value"]
    assert [i["name"] for i in items] == [k["name"]]
    # a second key replaces the first: a server has one key
    kid2 = v.create_key(name="cmk2")
    set_server_key(d, rg, name, kid2)
    items = d.get(f"{keys}?api-version={KEY_AV}").json()["value"]
    assert [i["properties"]["uri"] for i in items] == [kid2]
    assert_arm_error(d.get(f"{keys}/{kname}?api-version={KEY_AV}"), 404, "ResourceNotFound")
    # no PATCH; DELETE of the key in use is refused; of a missing key, 204
    assert_arm_error(d.patch(f"{keys}/{server_key_name(kid2)}?api-version={KEY_AV}",
                             json={"properties": {}}), 405)
    assert_arm_error(d.delete(f"{keys}/{server_key_name(kid2)}?api-version={KEY_AV}"), 400,
                     "DataEncryptionUpdateNotSupported")
    assert d.delete(f"{keys}/{kname}?api-version={KEY_AV}").status_code == 204
    # under a missing server: GET and list ParentResourceNotFound, DELETE 204
    gone = f"{server_id(rg, new_name('pg'))}/keys"
    assert_arm_error(d.get(f"{gone}/{kname}?api-version={KEY_AV}"), 404, "ParentResourceNotFound")
    assert_arm_error(d.get(f"{gone}?api-version={KEY_AV}"), 404, "ParentResourceNotFound")
    assert d.delete(f"{gone}/{kname}?api-version={KEY_AV}").status_code == 204
    # the provider list names the type
    r = d.get(f"/subscriptions/{SUB}/providers/Microsoft.DBforPostgreSQL?api-version=2021-04-01")
    assert r.status_code == 200, r.text
    types = [t["resourceType"].lower() for t in r.json()["resourceTypes"]]
    assert "servers/keys" in types


def test_failed_server_key_stores_nothing(daemon, rg):
    d = daemon
    name = new_name("pg")
    create_server(d, rg, name)
    v = Vault(d, rg)  # the server's identity has no access
    kid = v.create_key()
    st = set_server_key(d, rg, name, kid, expect="Failed")
    assert st["error"]["code"], st
    assert d.get(f"{server_id(rg, name)}/keys?api-version={KEY_AV}").json()["value"] == []


# --- item 1: vaults/keys is a row of the engine -------------------------------------------------

def test_vault_keys_through_the_engine(daemon, rg):
    d = daemon
    v = Vault(d, rg)
    keys = f"{vault_id(rg, v.name)}/keys"
    r = d.put(f"{keys}/k1?api-version={KV_AV}",
              json={"properties": {"kty": "RSA", "keySize": 3072, "keyOps": ["wrapKey"]},
                    "tags": {"a": "b"}})
    assert r.status_code == 200, r.text
    k = r.json()
    assert k["id"] == f"{vault_id(rg, v.name)}/keys/k1" and k["name"] == "k1"
    assert k["type"] == "Microsoft.KeyVault/vaults/keys" and k["tags"] == {"a": "b"}
    p = k["properties"]
    assert p["kty"] == "RSA" and p["keySize"] == 3072 and p["keyOps"] == ["wrapKey"]
    assert p["keyUriWithVersion"].startswith(p["keyUri"] + "/")
    assert "recoverableDays" not in p["attributes"]
    # create-if-not-exists: a second PUT changes nothing
    r = d.put(f"{keys}/k1?api-version={KV_AV}", json={"properties": {"kty": "EC"}})
    assert r.status_code == 200 and r.json()["properties"] == p, r.text
    # the data plane's keys show in the management plane, and the other way round
    kid = v.create_key(name="k2")
    r = d.get(f"{keys}/k2?api-version={KV_AV}")
    assert r.status_code == 200 and r.json()["properties"]["keyUriWithVersion"] == kid, r.text
    names = sorted(i["name"] for i in d.get(f"{keys}?api-version={KV_AV}").json()["value"])
    assert names == ["k1", "k2"]
    assert v.dp("GET", "/keys/k1").status_code == 200
    # versions
    ver = p["keyUriWithVersion"].rsplit("/", 1)[1]
    r = d.get(f"{keys}/k1/versions?api-version={KV_AV}")
    assert r.status_code == 200, r.text
    vs = r.json()["value"]
    assert [x["name"] for x in vs] == [ver]
    assert vs[0]["type"] == "Microsoft.KeyVault/vaults/keys/versions"
    r = d.get(f"{keys}/k1/versions/{ver}?api-version={KV_AV}")
    assert r.status_code == 200 and r.json()["id"].endswith(f"/keys/k1/versions/{ver}"), r.text
    # no DELETE or PATCH (Azure has none); versions are read-only
    assert_arm_error(d.delete(f"{keys}/k1?api-version={KV_AV}"), 405)
    assert_arm_error(d.patch(f"{keys}/k1?api-version={KV_AV}", json={"tags": {}}), 405)
    assert_arm_error(d.put(f"{keys}/k1/versions/{ver}?api-version={KV_AV}", json={}), 405)
    # errors: missing key, missing vault, bad name, bad api-version
    assert_arm_error(d.get(f"{keys}/nope?api-version={KV_AV}"), 404, "ResourceNotFound")
    assert_arm_error(d.get(f"{keys}/nope/versions?api-version={KV_AV}"), 404, "ResourceNotFound")
    gone = f"{vault_id(rg, 'v' + new_name('')[1:12])}/keys"
    assert_arm_error(d.get(f"{gone}/k1?api-version={KV_AV}"), 404, "ParentResourceNotFound")
    assert_arm_error(d.get(f"{gone}?api-version={KV_AV}"), 404, "ParentResourceNotFound")
    assert_arm_error(d.put(f"{gone}/k1?api-version={KV_AV}", json={"properties": {}}), 404,
                     "ParentResourceNotFound")
    assert_arm_error(d.put(f"{keys}/bad_name?api-version={KV_AV}", json={"properties": {}}), 400,
                     "InvalidResourceName")
    assert_arm_error(d.get(f"{keys}/k1?api-version=2001-01-01"), 400, "NoRegisteredProviderFound")


def test_group_delete_takes_a_cmk_server_and_its_key(daemon):
    d = daemon
    g = new_name("rg")
    assert d.put_rg(g).status_code == 201
    name = new_name("pg")
    create_server(d, g, name)
    v = Vault(d, g, policies=[policy(get_server(d, g, name)["identity"]["principalId"],
                                     CMK_PERMS)])
    kid = v.create_key()
    set_server_key(d, g, name, kid)
    # the key in use refuses a DELETE of its own, not the deletion of its group
    assert_arm_error(d.delete(f"{server_id(g, name)}/keys/{server_key_name(kid)}"
                              f"?api-version={KEY_AV}"), 400, "DataEncryptionUpdateNotSupported")
    r = d.delete(d.rg_path(g))
    assert r.status_code == 202, r.text
    assert poll_location(d, r.headers["Location"]).status_code == 200
    assert_arm_error(d.get(f"{server_id(g, name)}?api-version={SRV_AV}"), 404,
                     "ResourceGroupNotFound")
