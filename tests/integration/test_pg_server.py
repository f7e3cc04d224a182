"""Microsoft.DBforPostgreSQL/servers (single server) and servers/keys with customer-managed keys,
through the real azure-mgmt-rdbms PostgreSQLManagementClient and raw requests: create as an LRO,
server keys answered 202 + Location and validated on a worker, revalidation, the seed-002
restore/replica flow (Inaccessible without an identity, the first revalidation creates it, grant,
revalidate -> Ready, rows readable), revocation and recovery, and every error path."""
import json

import pytest

from conftest import SUB, assert_arm_error, new_name, parse_time
from pgtools import (ADMIN_APP, ADMIN_SECRET, KEY_AV, SRV_AV, CMK_PERMS, Vault, create_server,
                     data_url, explain, get_server, policy, put_server_key, server_body,
                     server_id, server_key_name, set_server_key, settle, wait_lro)

pytest.importorskip("azure.mgmt.rdbms.postgresql")
from azure.core.exceptions import HttpResponseError  # noqa: E402
from azure.identity import ClientSecretCredential  # noqa: E402
from azure.mgmt.rdbms.postgresql import PostgreSQLManagementClient  # noqa: E402
from azure.mgmt.rdbms.postgresql import models as pgm  # noqa: E402


def pg_client(d):
    cred = ClientSecretCredential("adfs", ADMIN_APP, ADMIN_SECRET, authority=d.base,
                                  connection_verify=d.ca)
    return PostgreSQLManagementClient(cred, SUB, base_url=d.base, connection_verify=d.ca,
                                      credential_scopes=["https://management.azure.com/.default"],
                                      polling_interval=0)


def cmk_vault(d, rg=None, **kw):
    rg = rg or new_name("rg")
    assert d.put_rg(rg).status_code in (200, 201)
    v = Vault(d, rg, **kw)
    return rg, v, v.create_key()


def principal(d, rg, name):
    ident = get_server(d, rg, name).get("identity") or {}
    return ident.get("principalId")


def cmk_server(d, rg, v, kid, name=None):
    """A server with a system-assigned identity granted on the vault, encrypted with kid."""
    name = name or new_name("pg")
    create_server(d, rg, name)
    v.policy("add", principal(d, rg, name))
    set_server_key(d, rg, name, kid)
    return name


def health(d, rid):
    r = d.get(f"{rid}/providers/Microsoft.ResourceHealth/availabilityStatuses/current"
              "?api-version=2022-10-01")
    assert r.status_code == 200, r.text
    return r.json()["properties"]["availabilityState"]


@pytest.fixture(scope="module")
def env(daemon):
    return cmk_vault(daemon)


# --- the SDK recipe (real-clients.md 8.3) -----------------------------------------------------

def test_sdk_recipe_server_and_server_key(daemon, env):
    d = daemon
    rg, v, kid = env
    pg = pg_client(d)
    name = new_name("pg")
    srv = pg.servers.begin_create(rg, name, pgm.ServerForCreate(
        location="eastus", identity=pgm.ResourceIdentity(type="SystemAssigned"),
        sku=pgm.Sku(name="GP_Gen5_2", tier="GeneralPurpose"),
        properties=pgm.ServerPropertiesForDefaultCreate(
            administrator_login="pgadmin", administrator_login_password="P@ssw0rd1234!",
            version="11"))).result()
    assert srv.name == name and srv.type == "Microsoft.DBforPostgreSQL/servers"
    assert srv.user_visible_state == "Ready" and srv.byok_enforcement == "Disabled"
    assert srv.fully_qualified_domain_name == f"{name}.postgres.database.azure.com"
    assert srv.replication_role == "None" and srv.version == "11"
    assert srv.administrator_login == "pgadmin" and srv.identity.principal_id
    raw = get_server(d, rg, name)
    assert "administratorLoginPassword" not in raw["properties"]
    assert "createMode" not in raw["properties"]
    parse_time(raw["properties"]["earliestRestoreDate"])
    rid = server_id(rg, name)
    assert d.put(data_url(rid, "a"), json={"value": "before"}).status_code == 200

    v.policy("add", srv.identity.principal_id)
    key = pg.server_keys.begin_create_or_update(
        name, server_key_name(kid), rg, pgm.ServerKey(server_key_type="AzureKeyVault",
                                                      uri=kid)).result()
    assert key.kind == "azurekeyvault" and key.uri == kid and key.creation_date
    assert key.type == "Microsoft.DBforPostgreSQL/servers/keys"
    srv = pg.servers.get(rg, name)
    assert srv.byok_enforcement == "Enabled" and srv.user_visible_state == "Ready"
    assert [k.name for k in pg.server_keys.list(rg, name)] == [server_key_name(kid)]
    assert pg.server_keys.get(rg, name, server_key_name(kid)).uri == kid
    # the service-managed DEK was re-wrapped: the data stays readable
    assert d.get(data_url(rid, "a")).json()["value"] == "before"
    e = explain(d, rid)
    assert e["accessible"] is True and e["keyUri"] == kid and e["principalId"] == \
        srv.identity.principal_id

    upd = pg.servers.begin_update(rg, name, pgm.ServerUpdateParameters(
        tags={"env": "test"}, ssl_enforcement="Disabled")).result()
    assert upd.tags == {"env": "test"} and upd.ssl_enforcement == "Disabled"
    pg.servers.begin_restart(rg, name).result()
    assert name in [s.name for s in pg.servers.list_by_resource_group(rg)]
    assert name in [s.name for s in pg.servers.list()]
    assert list(pg.replicas.list_by_server(rg, name)) == []
    with pytest.raises(HttpResponseError) as ei:
        pg.server_keys.begin_delete(name, server_key_name(kid), rg).result()
    assert ei.value.error.code == "DataEncryptionUpdateNotSupported"
    pg.servers.begin_delete(rg, name).result()
    assert d.get(f"{rid}?api-version={SRV_AV}").status_code == 404
    assert d.get(data_url(rid)).status_code == 404


def test_key_put_answers_202_with_location_then_the_key(daemon, env):
    d = daemon
    rg, v, kid = env
    name = new_name("pg")
    create_server(d, rg, name)
    v.policy("add", principal(d, rg, name))
    r = put_server_key(d, rg, name, kid, av="2020-01-01-preview")
    assert r.status_code == 202 and r.headers["Retry-After"] == "1"
    loc = r.headers["Location"]
    assert wait_lro(d, r)["status"] == "Succeeded"
    res = d.get(loc)
    assert res.status_code == 200 and res.json()["properties"]["uri"] == kid
    assert res.json()["name"] == server_key_name(kid)
    # the az CLI form of the key id names the same vault
    host_form = f"https://{v.name}.vault.azure.net/keys/cmk/{kid.rsplit('/', 1)[1]}"
    st = set_server_key(d, rg, name, host_form)
    assert st["status"] == "Succeeded"
    assert get_server(d, rg, name, av="2017-12-01-preview")["properties"]["byokEnforcement"] == \
        "Enabled"


def test_put_on_existing_server_merges(daemon, env):
    """The docs' template re-PUTs an existing server with only identity + empty properties."""
    d = daemon
    rg = env[0]
    name = new_name("pg")
    create_server(d, rg, name, server_body(identity=False, sslEnforcement="Disabled"))
    assert "identity" not in get_server(d, rg, name) or \
        get_server(d, rg, name)["identity"].get("type") in (None, "None")
    r = d.put(f"{server_id(rg, name)}?api-version={SRV_AV}",
              json={"location": "eastus", "identity": {"type": "SystemAssigned"},
                    "properties": {}})
    assert r.status_code == 200, r.text
    assert wait_lro(d, r)["status"] == "Succeeded"
    s = get_server(d, rg, name)
    assert s["identity"]["type"] == "SystemAssigned" and s["identity"]["principalId"]
    assert s["properties"]["sslEnforcement"] == "Disabled"
    assert s["properties"]["administratorLogin"] == "pgadmin"
    assert s["sku"]["name"] == "GP_Gen5_2"
    assert s["properties"]["userVisibleState"] == "Ready"
    assert explain(d, s["id"])["principalId"] == s["identity"]["principalId"]


# --- seed 002: restore and replica of an encrypted server ----------------------------------------

def test_seed_002_restore_and_replica_flow(start_daemon):
    d = start_daemon()
    d.clock(freeze=True)
    rg, v, kid = cmk_vault(d)
    pg = pg_client(d)
    name = cmk_server(d, rg, v, kid)
    rid = server_id(rg, name)
    assert d.put(data_url(rid, "k1"), json={"value": "one"}).status_code == 200
    d.clock(advance="PT10M")
    t = d.get("/emulator/clock").json()["now"]
    d.clock(advance="PT10M")
    assert d.put(data_url(rid, "k2"), json={"value": "two"}).status_code == 200

    # a point-in-time restore (SDK) and a replica (raw)
    rst = new_name("pg")
    pg.servers.begin_create(rg, rst, pgm.ServerForCreate(
        location="eastus", properties=pgm.ServerPropertiesForRestore(
            source_server_id=rid, restore_point_in_time=parse_time(t)))).result()
    rep = new_name("pg")
    create_server(d, rg, rep, server_body("Replica", identity=False, sourceServerId=rid))
    for copy in (rst, rep):
        s = get_server(d, rg, copy)
        p = s["properties"]
        assert p["userVisibleState"] == "Inaccessible", s
        assert p["byokEnforcement"] == "Enabled"
        assert not (s.get("identity") or {}).get("principalId")
        keys = d.get(f"{server_id(rg, copy)}/keys?api-version={KEY_AV}").json()["value"]
        assert [k["properties"]["uri"] for k in keys] == [kid]
        assert health(d, server_id(rg, copy)) == "Unavailable"
        r = d.get(data_url(server_id(rg, copy)))
        assert r.status_code == 503 and "08006" in r.json()["error"]["message"]
    assert get_server(d, rg, rep)["properties"]["replicationRole"] == "Replica"
    assert get_server(d, rg, rep)["properties"]["masterServerId"].lower() == rid.lower()
    assert get_server(d, rg, name)["properties"]["replicationRole"] == "Master"
    assert [r.name for r in pg.replicas.list_by_server(rg, name)] == [rep]

    # everything but delete, identity and revalidation is refused
    rst_id = server_id(rg, rst)
    assert_arm_error(d.patch(f"{rst_id}?api-version={SRV_AV}",
                             json={"properties": {"sslEnforcement": "Disabled"}}),
                     409, "ServerInaccessible")
    assert_arm_error(d.put(f"{rst_id}?api-version={SRV_AV}",
                           json={"location": "eastus", "tags": {"a": "b"}, "properties": {}}),
                     409, "ServerInaccessible")
    assert_arm_error(d.post(f"{rst_id}/restart?api-version={SRV_AV}"), 409, "ServerInaccessible")
    other = v.create_key("other")
    assert_arm_error(put_server_key(d, rg, rst, other), 409, "ServerInaccessible")
    assert_arm_error(put_server_key(d, rg, rep, other), 409, "ServerInaccessible")

    # restore: the portal path. The first revalidation fails but creates the identity.
    st = set_server_key(d, rg, rst, kid, expect="Failed")
    assert st["error"]["code"] == "AzureKeyVaultIdentityRequired", st
    oid = principal(d, rg, rst)
    assert oid and oid in st["error"]["message"]
    assert get_server(d, rg, rst)["properties"]["userVisibleState"] == "Inaccessible"
    # without a grant the next revalidation names the missing permissions
    st = set_server_key(d, rg, rst, kid, expect="Failed")
    assert st["error"]["code"] == "AzureKeyVaultMissingPermissions", st
    v.policy("add", oid)
    settle(d)
    assert get_server(d, rg, rst)["properties"]["userVisibleState"] == "Inaccessible"
    set_server_key(d, rg, rst, kid)
    s = get_server(d, rg, rst)
    assert s["properties"]["userVisibleState"] == "Ready" and health(d, rst_id) == "Available"
    rows = d.get(data_url(rst_id)).json()["value"]
    assert [(r["key"], r["value"]) for r in rows] == [("k1", "one")]
    assert d.put(data_url(rst_id, "k3"), json={"value": "three"}).status_code == 200

    # replica: the CLI path (az postgres server update --assign-identity = PATCH identity)
    rep_id = server_id(rg, rep)
    r = d.patch(f"{rep_id}?api-version={SRV_AV}", json={"identity": {"type": "SystemAssigned"}})
    assert r.status_code == 200, r.text
    rep_oid = r.json()["identity"]["principalId"]
    assert rep_oid and r.json()["properties"]["userVisibleState"] == "Inaccessible"
    v.policy("add", rep_oid)
    settle(d)
    assert get_server(d, rg, rep)["properties"]["userVisibleState"] == "Inaccessible"
    key = pg.server_keys.begin_create_or_update(
        rep, server_key_name(kid), rg, pgm.ServerKey(server_key_type="AzureKeyVault",
                                                     uri=kid)).result()
    assert key.uri == kid
    assert get_server(d, rg, rep)["properties"]["userVisibleState"] == "Ready"
    rows = d.get(data_url(rep_id)).json()["value"]
    assert [(r["key"], r["value"]) for r in rows] == [("k1", "one"), ("k2", "two")]
    r = d.put(data_url(rep_id, "x"), json={"value": 1})
    assert r.status_code == 409 and "25006" in r.json()["error"]["message"]
    # the replica still reads what its master writes
    assert d.put(data_url(rid, "k4"), json={"value": "four"}).status_code == 200
    assert d.get(data_url(rep_id, "k4")).json()["value"] == "four"
    lin = d.get("/emulator/lineage", params={"keyId": kid}).json()["value"]
    assert {x["resourceId"].lower() for x in lin} == {rid.lower(), rst_id.lower(), rep_id.lower()}

    # a master with replicas is not deleted; its replica is, then the master
    assert_arm_error(d.delete(f"{rid}?api-version={SRV_AV}"), 409, "Conflict")
    pg.servers.begin_delete(rg, rep).result()
    assert get_server(d, rg, name)["properties"]["replicationRole"] == "None"
    pg.servers.begin_delete(rg, name).result()
    # the restore has its own copy of the data
    assert d.get(data_url(rst_id, "k1")).json()["value"] == "one"


def test_geo_restore_of_a_service_managed_server_is_ready(daemon, env):
    d = daemon
    rg = env[0]
    name = new_name("pg")
    create_server(d, rg, name)
    rid = server_id(rg, name)
    assert d.put(data_url(rid, "g"), json={"value": [1, 2]}).status_code == 200
    geo = new_name("pg")
    create_server(d, rg, geo, server_body("GeoRestore", identity=False, sourceServerId=rid))
    p = get_server(d, rg, geo)["properties"]
    assert p["userVisibleState"] == "Ready" and p["byokEnforcement"] == "Disabled"
    assert p["administratorLogin"] == "pgadmin"
    assert d.get(data_url(server_id(rg, geo), "g")).json()["value"] == [1, 2]
    rep = new_name("pg")
    create_server(d, rg, rep, server_body("Replica", identity=False, sourceServerId=rid))
    assert get_server(d, rg, rep)["properties"]["userVisibleState"] == "Ready"
    assert d.get(data_url(server_id(rg, rep), "g")).json()["value"] == [1, 2]


# --- revocation and revalidation ---------------------------------------------------------------

@pytest.mark.parametrize("how", ["remove_policy", "disable_key"])
def test_revocation_needs_revalidation(start_daemon, how):
    d = start_daemon()
    rg, v, kid = cmk_vault(d)
    name = cmk_server(d, rg, v, kid)
    rid = server_id(rg, name)
    oid = principal(d, rg, name)
    assert d.put(data_url(rid, "a"), json={"value": {"n": 1}}).status_code == 200
    if how == "remove_policy":
        v.policy("remove", oid)
    else:
        v.set_key(kid, enabled=False)
    settle(d)
    assert get_server(d, rg, name)["properties"]["userVisibleState"] == "Inaccessible"
    assert health(d, rid) == "Unavailable"
    assert d.get(data_url(rid, "a")).status_code == 503
    e = explain(d, rid)
    assert e["accessible"] is False
    assert e["reasonCode"] == ("AzureKeyVaultMissingPermissions" if how == "remove_policy"
                               else "AzureKeyVaultKeyDisabled")
    assert sorted(r["rule"] for r in e["rules"] if not r["ok"]) == \
        ["dek", "permissions" if how == "remove_policy" else "key"], e
    # a revalidation while access is still missing fails with the reason
    st = set_server_key(d, rg, name, kid, expect="Failed")
    assert st["error"]["code"] == e["reasonCode"]
    # the failed server key write is in the Activity Log with the operation's code and message
    key_rid = f"{rid}/keys/{server_key_name(kid)}"
    log = d.get(f"/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values",
                params={"api-version": "2015-04-01", "$filter": "eventTimestamp ge "
                        f"'2000-01-01T00:00:00Z' and resourceId eq '{key_rid}' and "
                        "status eq 'Failed'"})
    assert log.status_code == 200, log.text
    failed = log.json()["value"]
    assert len(failed) == 1, failed
    assert failed[0]["operationName"]["value"] == "Microsoft.DBforPostgreSQL/servers/keys/write"
    assert json.loads(failed[0]["properties"]["statusMessage"]) == {
        "error": {"code": st["error"]["code"], "message": st["error"]["message"]}}
    assert failed[0]["description"] == f"{st['error']['code']}: {st['error']['message']}"
    if how == "remove_policy":
        v.policy("add", oid)
    else:
        v.set_key(kid, enabled=True)
    settle(d)
    # access is back, but a single server waits for the revalidation
    assert get_server(d, rg, name)["properties"]["userVisibleState"] == "Inaccessible"
    e = explain(d, rid)
    assert "revalidate" in e["reason"]
    # one state, one reason code, and the rules agree with it
    assert e["reasonCode"] == "ServerKeyRevalidationRequired", e
    assert sorted(r["rule"] for r in e["rules"] if not r["ok"]) == ["dek", "revalidation"], e
    assert d.get(data_url(rid, "a")).status_code == 503
    pg_client(d).server_keys.begin_create_or_update(
        name, server_key_name(kid), rg,
        pgm.ServerKey(server_key_type="AzureKeyVault", uri=kid)).result()
    assert get_server(d, rg, name)["properties"]["userVisibleState"] == "Ready"
    assert health(d, rid) == "Available"
    assert d.get(data_url(rid, "a")).json()["value"] == {"n": 1}
    log = d.get(f"/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values"
                "?api-version=2015-04-01&$filter=eventTimestamp ge '2000-01-01T00:00:00Z' and "
                f"resourceUri eq '{rid}'")
    assert log.status_code == 200, log.text
    texts = " ".join(str(e.get("description", "")) + str(e.get("properties", ""))
                     for e in log.json()["value"])
    assert "revalidated" in texts


def test_key_rotation_keeps_the_data(daemon):
    d = daemon
    rg, v, kid = cmk_vault(d)
    name = cmk_server(d, rg, v, kid)
    rid = server_id(rg, name)
    assert d.put(data_url(rid, "r"), json={"value": "x"}).status_code == 200
    kid2 = v.create_key(new_name("k2"))
    set_server_key(d, rg, name, kid2)
    keys = d.get(f"{rid}/keys?api-version={KEY_AV}").json()["value"]
    assert [k["properties"]["uri"] for k in keys] == [kid2]
    assert explain(d, rid)["keyUri"] == kid2
    assert d.get(data_url(rid, "r")).json()["value"] == "x"
    # the old key is not needed any more
    v.set_key(kid, enabled=False)
    settle(d)
    assert get_server(d, rg, name)["properties"]["userVisibleState"] == "Ready"


# --- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case,status,code", [
    ("missing_perm", None, "AzureKeyVaultMissingPermissions"),
    ("disabled", None, "AzureKeyVaultKeyDisabled"),
    ("no_key", None, "AzureKeyVaultKeyNotFound"),
    ("no_purge_protection", None, "AzureKeyVaultRecoveryLevelInvalid"),
])
def test_key_validation_fails_the_operation(daemon, case, status, code):
    d = daemon
    kw = {"purge_protection": False} if case == "no_purge_protection" else {}
    rg, v, kid = cmk_vault(d, **kw)
    name = new_name("pg")
    create_server(d, rg, name)
    rid = server_id(rg, name)
    assert d.put(data_url(rid, "a"), json={"value": 1}).status_code == 200
    oid = principal(d, rg, name)
    v.policy("add", oid, ["get", "wrapKey"] if case == "missing_perm" else CMK_PERMS)
    if case == "disabled":
        v.set_key(kid, enabled=False)
    if case == "no_key":
        kid = kid.rsplit("/", 2)[0] + "/missing/" + "0" * 32
    st = set_server_key(d, rg, name, kid, expect="Failed")
    assert st["error"]["code"] == code, st
    if case == "missing_perm":
        assert oid in st["error"]["message"]
    # a failed key leaves the server as it was
    p = get_server(d, rg, name)["properties"]
    assert p["byokEnforcement"] == "Disabled" and p["userVisibleState"] == "Ready"
    assert d.get(f"{rid}/keys?api-version={KEY_AV}").json()["value"] == []
    assert d.get(data_url(rid, "a")).json()["value"] == 1


def test_key_on_a_server_without_identity_creates_it_and_fails(daemon, env):
    d = daemon
    rg, v, kid = env
    name = new_name("pg")
    create_server(d, rg, name, server_body(identity=False))
    st = set_server_key(d, rg, name, kid, expect="Failed")
    assert st["error"]["code"] == "AzureKeyVaultIdentityRequired"
    oid = principal(d, rg, name)
    assert oid and oid in st["error"]["message"]
    assert get_server(d, rg, name)["identity"]["type"] == "SystemAssigned"
    v.policy("add", oid)
    set_server_key(d, rg, name, kid)
    assert get_server(d, rg, name)["properties"]["byokEnforcement"] == "Enabled"


def test_key_request_errors(daemon, env):
    d = daemon
    rg, v, kid = env
    name = cmk_server(d, rg, v, kid)
    rid = server_id(rg, name)
    ver = kid.rsplit("/", 1)[1]
    r = put_server_key(d, rg, name, kid, name=f"{v.name}_other_{ver}")
    assert_arm_error(r, 400, "InvalidResourceName")
    r = d.put(f"{rid}/keys/{server_key_name(kid)}?api-version={KEY_AV}",
              json={"properties": {"serverKeyType": "ServiceManaged", "uri": kid}})
    assert_arm_error(r, 400, "InvalidParameter")
    r = put_server_key(d, rg, name, "https://example.com/keys/k", name="a_b_c")
    assert_arm_error(r, 400, "AzureKeyVaultKeyUriInvalid")
    r = put_server_key(d, rg, name, kid.rsplit("/", 1)[0], name="a_b_c")
    assert_arm_error(r, 400, "AzureKeyVaultKeyUriInvalid")
    assert_arm_error(put_server_key(d, rg, new_name("pg"), kid), 404, "ParentResourceNotFound")
    assert_arm_error(put_server_key(d, rg, name, kid, av="2017-12-01"), 400,
                     "NoRegisteredProviderFound")
    assert_arm_error(d.get(f"{rid}/keys/{v.name}_x_{'0' * 32}?api-version={KEY_AV}"), 404,
                     "ResourceNotFound")
    assert d.delete(f"{rid}/keys/{v.name}_x_{'0' * 32}?api-version={KEY_AV}").status_code == 204
    assert_arm_error(d.delete(f"{rid}/keys/{server_key_name(kid)}?api-version={KEY_AV}"), 400,
                     "DataEncryptionUpdateNotSupported")
    assert_arm_error(d.patch(f"{rid}?api-version={SRV_AV}", json={"identity": {"type": "None"}}),
                     400, "DataEncryptionUpdateNotSupported")
    assert_arm_error(d.get(f"{server_id(rg, new_name('pg'))}/keys?api-version={KEY_AV}"), 404,
                     "ParentResourceNotFound")


def test_server_request_errors(daemon, env):
    d = daemon
    rg = env[0]
    base = server_id(rg, "{}") + f"?api-version={SRV_AV}"
    assert_arm_error(d.put(base.format("Bad_Name"), json=server_body()), 400,
                     "InvalidResourceName")
    assert_arm_error(d.put(base.format("ab"), json=server_body()), 400, "InvalidResourceName")
    assert_arm_error(d.put(base.format(new_name("pg")), json=server_body(mode="Copy")), 400,
                     "InvalidParameter")
    body = server_body()
    del body["properties"]["administratorLoginPassword"]  # refused by the request schema
    assert_arm_error(d.put(base.format(new_name("pg")), json=body), 400, "InvalidRequestContent")
    assert_arm_error(d.put(base.format(new_name("pg")), json=server_body(version="8.4")), 400,
                     "InvalidParameter")
    body = server_body()
    body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {}}
    r = d.put(base.format(new_name("pg")), json=body)
    assert_arm_error(r, 400, "InvalidIdentity")
    assert_arm_error(d.put(base.format(new_name("pg")),
                           json=server_body("PointInTimeRestore", identity=False)), 400,
                     "InvalidRequestContent")  # sourceServerId is required by the schema
    missing = server_id(rg, new_name("pg"))
    assert_arm_error(d.put(base.format(new_name("pg")), json=server_body(
        "Replica", identity=False, sourceServerId=missing)), 404, "SourceServerNotFound")
    name = new_name("pg")
    create_server(d, rg, name)
    sid = server_id(rg, name)
    assert_arm_error(d.put(base.format(new_name("pg")), json=server_body(
        "PointInTimeRestore", identity=False, sourceServerId=sid,
        restorePointInTime="2000-01-01T00:00:00Z")), 400, "InvalidRestorePointInTime")
    assert_arm_error(d.put(base.format(new_name("pg")), json=server_body(
        "PointInTimeRestore", identity=False, sourceServerId=sid,
        restorePointInTime="yesterday")), 400, "InvalidRestorePointInTime")
    # names are global
    rg2 = new_name("rg")
    assert d.put_rg(rg2).status_code == 201
    assert_arm_error(d.put(f"{server_id(rg2, name)}?api-version={SRV_AV}", json=server_body()),
                     409, "Conflict")
    assert_arm_error(d.get(f"{sid}?api-version=2023-06-01"), 400, "NoRegisteredProviderFound")
    assert_arm_error(d.patch(f"{sid}?api-version={SRV_AV}",
                             json={"properties": {"replicationRole": "Replica"}}), 400,
                     "InvalidParameter")
    assert_arm_error(d.post(f"{server_id(rg, new_name('pg'))}/restart?api-version={SRV_AV}"),
                     404, "ResourceNotFound")
    url = f"/subscriptions/{SUB}/providers/Microsoft.DBforPostgreSQL/checkNameAvailability" \
          f"?api-version={SRV_AV}"
    r = d.post(url, json={"name": name, "type": "Microsoft.DBforPostgreSQL/servers"})
    assert r.status_code == 200 and r.json()["nameAvailable"] is False
    r = d.post(url, json={"name": new_name("pg"), "type": "Microsoft.DBforPostgreSQL/servers"})
    assert r.json()["nameAvailable"] is True
    assert d.delete(f"{server_id(rg, new_name('pg'))}?api-version={SRV_AV}").status_code == 204


def test_restore_of_an_inaccessible_server_is_refused(start_daemon):
    d = start_daemon()
    rg, v, kid = cmk_vault(d)
    name = cmk_server(d, rg, v, kid)
    v.policy("remove", principal(d, rg, name))
    settle(d)
    r = d.put(f"{server_id(rg, new_name('pg'))}?api-version={SRV_AV}", json=server_body(
        "GeoRestore", identity=False, sourceServerId=server_id(rg, name)))
    assert_arm_error(r, 409, "ServerInaccessible")
    # identity assignment and delete stay allowed
    r = d.put(f"{server_id(rg, name)}?api-version={SRV_AV}",
              json={"location": "eastus", "identity": {"type": "SystemAssigned"},
                    "properties": {}})
    assert r.status_code == 200, r.text
    assert wait_lro(d, r)["status"] == "Succeeded"
    assert d.delete(f"{server_id(rg, name)}?api-version={SRV_AV}").status_code == 200


def test_vault_with_key_policy_from_the_start(daemon):
    """A principal granted before the key PUT (the ARM-template order) works at once."""
    d = daemon
    rg = new_name("rg")
    assert d.put_rg(rg).status_code == 201
    name = new_name("pg")
    create_server(d, rg, name)
    v = Vault(d, rg, policies=[policy(principal(d, rg, name), CMK_PERMS)])
    set_server_key(d, rg, name, v.create_key())
    assert get_server(d, rg, name)["properties"]["byokEnforcement"] == "Enabled"


def test_doc_walkthrough_runs_as_written(start_daemon):
    """docs/postgres-single-server.md: every ```sh block, in order, in one bash."""
    import os
    import re
    import subprocess
    d = start_daemon()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "docs/postgres-single-server.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```sh\n(.*?)```", f.read(), re.S)
    assert blocks
    r = subprocess.run(["bash", "-c", "set -euo pipefail\n" + "\n".join(blocks)], cwd=root,
                       env=dict(os.environ, PGCMK=d.base, CA=d.ca), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    out = r.stdout
    for expected in ["create: Succeeded", "key PUT: HTTP/1.1 202", "key: Succeeded",
                     '{"userVisibleState":"Ready","byokEnforcement":"Enabled"}',
                     "restore: Succeeded", "replica: Succeeded",
                     '"identity":null,"state":"Inaccessible","byok":"Enabled"',
                     '["pgss-replica"]', "ServerInaccessible", "08006",
                     "key: Failed AzureKeyVaultIdentityRequired", "restore state: Ready",
                     '[{"key":"r1","value":"before"}]', "replica state: Ready",
                     '[{"key":"r1","value":"before"},{"key":"r2","value":"after"}]',
                     "primary state: Inaccessible",
                     "primary state after the grant: Inaccessible", "revalidate",
                     "primary state after revalidation: Ready"]:
        assert expected in out, f"expected {expected!r} in:\n{out}"
