"""Microsoft.DBforPostgreSQL/serverGroupsv2 with customer-managed keys: create as an LRO with CMK
validation, the reconciler turning key revocations into Inaccessible and back, PITR and replicas
inheriting keys, the modeled data plane with real ciphertext, explain and lineage."""
import json
import sqlite3

import pytest

from conftest import SUB, TENANT, assert_arm_error, new_name, parse_time
from pgtools import (CL_AV, CMK_PERMS, Vault, cluster_body, cluster_id, cmk_setup, create_cluster,
                     data_url, explain, get_cluster, make_identity, policy, settle, vault_id,
                     wait_lro)


@pytest.fixture(scope="module")
def cmk(daemon):
    return cmk_setup(daemon)


def test_create_with_cmk_runs_an_lro_and_ends_ready(daemon, cmk):
    d = daemon
    rg, mi, oid, v, kid = cmk
    name = new_name("cl")
    r = d.put(f"{cluster_id(rg, name)}?api-version={CL_AV}", json=cluster_body(mi, kid))
    assert r.status_code == 201, r.text
    assert r.headers["Azure-AsyncOperation"].startswith("https://")
    assert r.headers["Retry-After"] == "1"
    first = r.json()["properties"]
    assert first["state"] == "Provisioning"
    assert "administratorLoginPassword" not in first
    assert wait_lro(d, r)["status"] == "Succeeded"
    c = get_cluster(d, rg, name)
    p = c["properties"]
    assert p["provisioningState"] == "Succeeded" and p["state"] == "Ready"
    assert p["administratorLogin"] == "citus"
    assert p["dataEncryption"] == {"type": "AzureKeyVault", "primaryKeyUri": kid,
                                   "primaryUserAssignedIdentityId": mi}
    assert [s["name"] for s in p["serverNames"]] == [f"{name}-c"]
    ident = c["identity"]["userAssignedIdentities"]
    assert list(ident.values())[0]["principalId"] == oid
    e = explain(d, c["id"])
    assert e["accessible"] is True and e["keyUri"] == kid


def test_service_managed_by_default(daemon, cmk):
    rg = cmk[0]
    name = new_name("cl")
    create_cluster(daemon, rg, name, cluster_body(nodeCount=2))
    p = get_cluster(daemon, rg, name)["properties"]
    assert p["dataEncryption"] == {"type": "SystemManaged"}
    assert [s["name"] for s in p["serverNames"]] == [f"{name}-c", f"{name}-w0", f"{name}-w1"]
    r = daemon.get(f"{cluster_id(rg, name)}/servers?api-version={CL_AV}")
    assert r.status_code == 200
    roles = [s["properties"]["role"] for s in r.json()["value"]]
    assert roles == ["Coordinator", "Worker", "Worker"]


@pytest.mark.parametrize("case", ["missing_perm", "disabled", "expired", "no_key", "ec_key",
                                  "no_purge_protection", "short_retention"])
def test_cmk_validation_fails_the_lro(daemon, case):
    d = daemon
    rg = new_name("rg")
    assert d.put_rg(rg).status_code == 201
    mi, oid = make_identity(d, rg)
    perms = ["get", "wrapKey"] if case == "missing_perm" else CMK_PERMS
    kw = {}
    if case == "no_purge_protection":
        kw["purge_protection"] = False
    if case == "short_retention":
        kw["retention"] = 30
    v = Vault(d, rg, policies=[policy(oid, perms)], **kw)
    if case == "ec_key":
        kid = v.create_key(kty="EC")
    else:
        kid = v.create_key()
    if case == "disabled":
        v.set_key(kid, enabled=False)
    if case == "expired":
        v.set_key(kid, exp=1000000000)
    if case == "no_key":
        kid = kid.rsplit("/", 2)[0] + "/missing/" + "0" * 32
    expected = {"missing_perm": "AzureKeyVaultMissingPermissions",
                "disabled": "AzureKeyVaultKeyDisabled", "expired": "AzureKeyVaultKeyExpired",
                "no_key": "AzureKeyVaultKeyNotFound", "ec_key": "AzureKeyVaultKeyTypeNotSupported",
                "no_purge_protection": "AzureKeyVaultRecoveryLevelInvalid",
                "short_retention": "AzureKeyVaultRecoveryLevelInvalid"}[case]
    name = new_name("cl")
    st = create_cluster(d, rg, name, cluster_body(mi, kid), expect="Failed")
    assert st["error"]["code"] == expected, st
    p = get_cluster(d, rg, name)["properties"]
    assert p["provisioningState"] == "Failed"
    if case == "missing_perm":
        assert oid in st["error"]["message"]


def test_identity_must_be_assigned(daemon, cmk):
    rg, mi, oid, v, kid = cmk
    body = cluster_body(mi, kid)
    del body["identity"]
    r = daemon.put(f"{cluster_id(rg, new_name('cl'))}?api-version={CL_AV}", json=body)
    assert_arm_error(r, 400, "UserAssignedIdentityNotFound")


def test_bad_key_uri_and_node_count(daemon, cmk):
    rg, mi, oid, v, kid = cmk
    r = daemon.put(f"{cluster_id(rg, new_name('cl'))}?api-version={CL_AV}",
                   json=cluster_body(mi, "https://nowhere.example.com/keys/k"))
    assert_arm_error(r, 400, "AzureKeyVaultKeyUriInvalid")
    r = daemon.put(f"{cluster_id(rg, new_name('cl'))}?api-version={CL_AV}",
                   json=cluster_body(nodeCount=1))
    assert_arm_error(r, 400, "InvalidParameter")


def test_patch_cannot_change_encryption(daemon, cmk):
    rg, mi, oid, v, kid = cmk
    name = new_name("cl")
    create_cluster(daemon, rg, name, cluster_body(mi, kid))
    r = daemon.patch(f"{cluster_id(rg, name)}?api-version={CL_AV}",
                     json={"properties": {"dataEncryption": {"type": "SystemManaged"}}})
    assert_arm_error(r, 400, "DataEncryptionUpdateNotSupported")
    r = daemon.patch(f"{cluster_id(rg, name)}?api-version={CL_AV}",
                     json={"properties": {"coordinatorVCores": 8}, "tags": {"a": "b"}})
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["coordinatorVCores"] == 8


def test_private_preview_shape_with_lowercase_dataencryption(daemon, cmk):
    rg, mi, oid, v, kid = cmk
    name = new_name("cl")
    body = {"location": "eastus", "kind": "CosmosDBForPostgreSQL",
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {mi: {}}},
            "properties": {"createMode": "Default", "administratorLogin": "citus",
                           "administratorLoginPassword": "x", "postgresqlVersion": "14",
                           "dataencryption": {"primaryKeyUri": kid,
                                              "primaryUserAssignedIdentityId": mi,
                                              "type": "AzureKeyVault"},
                           "serverRoleGroups": [
                               {"name": "", "role": "Coordinator", "serverCount": 1,
                                "serverEdition": "GeneralPurpose", "vCores": 4,
                                "storageQuotaInMb": 524288, "enableHa": False},
                               {"name": "", "role": "Worker", "serverCount": 2,
                                "serverEdition": "MemoryOptimized", "vCores": 8,
                                "storageQuotaInMb": 524288, "enableHa": False}]}}
    create_cluster(daemon, rg, name, body, av="2020-10-05-privatepreview")
    p = get_cluster(daemon, rg, name)["properties"]
    assert p["dataEncryption"]["primaryKeyUri"] == kid
    assert "dataencryption" not in p
    assert p["nodeCount"] == 2 and p["nodeVCores"] == 8 and p["state"] == "Ready"


def revocations():
    return ["remove_policy", "disable_key", "expire_on_clock", "delete_key", "delete_identity",
            "delete_vault", "purge_key"]


@pytest.mark.parametrize("how", revocations())
def test_revocation_makes_the_cluster_inaccessible_and_recovery_brings_it_back(start_daemon, how):
    d = start_daemon()
    rg, mi, oid, v, kid = cmk_setup(d)
    name = new_name("cl")
    if how == "expire_on_clock":
        d.clock(freeze=True)
        now = parse_time(d.get("/emulator/clock").json()["now"])
        v.set_key(kid, exp=int(now.timestamp()) + 3600)
    create_cluster(d, rg, name, cluster_body(mi, kid))
    rid = cluster_id(rg, name)
    assert d.put(f"/emulator/data{rid}/rows/a", json={"value": {"n": 1}}).status_code == 200
    if how == "remove_policy":
        v.policy("remove", oid)
    elif how == "disable_key":
        v.set_key(kid, enabled=False)
    elif how == "expire_on_clock":
        d.clock(advance="PT2H")
    elif how == "delete_key":
        assert v.dp("DELETE", "/keys/cmk").status_code == 200
    elif how == "delete_identity":
        assert d.delete(f"{mi}?api-version=2023-01-31").status_code == 200
    elif how == "delete_vault":
        assert d.delete(f"{vault_id(rg, v.name)}?api-version=2023-07-01").status_code == 200
    elif how == "purge_key":
        assert v.dp("DELETE", "/keys/cmk").status_code == 200
        # purge protection: the key can only go when its retention ends, on the clock
        assert v.dp("DELETE", "/deletedkeys/cmk").status_code == 403
        d.clock(advance="P91D")
    settle(d)
    c = get_cluster(d, rg, name)
    assert c["properties"]["state"] == "Inaccessible", (explain(d, cluster_id(rg, name)), d.stderr_text()[-3000:])
    e = explain(d, rid)
    assert e["accessible"] is False and e["reasonCode"], e
    r = d.get(data_url(rid, "a"))
    assert r.status_code == 503 and "08006" in r.json()["error"]["message"]
    h = d.get(f"{rid}/providers/Microsoft.ResourceHealth/availabilityStatuses/current"
              "?api-version=2022-10-01")
    assert h.status_code == 200, h.text
    assert h.json()["properties"]["availabilityState"] == "Unavailable"
    assert h.json()["properties"]["title"] == "Inaccessible"
    if how in ("delete_identity", "purge_key"):
        return  # a deleted identity or a purged key does not come back
    if how == "remove_policy":
        v.policy("add", oid)
    elif how == "disable_key":
        v.set_key(kid, enabled=True)
    elif how == "expire_on_clock":
        v.set_key(kid, exp=int(now.timestamp()) + 86400 * 365)
    elif how == "delete_key":
        assert v.dp("POST", "/deletedkeys/cmk/recover").status_code == 200
    elif how == "delete_vault":
        r = d.put(f"{vault_id(rg, v.name)}?api-version=2023-07-01", json={
            "location": "eastus", "properties": {"tenantId": TENANT, "createMode": "recover",
                                                 "sku": {"family": "A", "name": "standard"}}})
        assert r.status_code in (200, 201), r.text
    settle(d)
    assert get_cluster(d, rg, name)["properties"]["state"] == "Ready"
    r = d.get(data_url(rid, "a"))
    assert r.status_code == 200 and r.json()["value"] == {"n": 1}


def test_rows_are_ciphertext_and_pitr_replays_up_to_the_time(start_daemon):
    d = start_daemon()
    d.clock(freeze=True)
    rg, mi, oid, v, kid = cmk_setup(d)
    name = new_name("cl")
    create_cluster(d, rg, name, cluster_body(mi, kid))
    rid = cluster_id(rg, name)
    marker = "plaintext-marker-" + new_name("")
    assert d.put(data_url(rid, "k1"), json={"value": marker}).status_code == 200
    d.clock(advance="PT10M")
    t = d.get("/emulator/clock").json()["now"]
    d.clock(advance="PT10M")
    assert d.put(data_url(rid, "k2"), json={"value": "later"}).status_code == 200
    assert d.delete(data_url(rid, "k1")).status_code == 204
    rows = d.get(data_url(rid)).json()["value"]
    assert [r["key"] for r in rows] == ["k2"]
    # the stored bytes are ciphertext
    con = sqlite3.connect(f"file:{d.data_dir}/pgcmk.sqlite?mode=ro", uri=True)
    blobs = [b for (b,) in con.execute("SELECT sealed FROM pg_rows WHERE sealed IS NOT NULL")]
    con.close()
    assert blobs and all(marker.encode() not in b and b"later" not in b for b in blobs)
    # restore to t, changing the encryption to service-managed
    r2 = new_name("cl")
    body = {"location": "eastus", "properties": {"sourceResourceId": rid, "pointInTimeUTC": t,
                                                 "sourceLocation": "eastus",
                                                 "dataEncryption": {"type": "SystemManaged"}}}
    create_cluster(d, rg, r2, body)
    rows = d.get(data_url(cluster_id(rg, r2))).json()["value"]
    assert [(r["key"], r["value"]) for r in rows] == [("k1", marker)]
    assert get_cluster(d, rg, r2)["properties"]["dataEncryption"] == {"type": "SystemManaged"}
    # a restore without dataEncryption keeps the source's key
    r3 = new_name("cl")
    create_cluster(d, rg, r3, {"location": "eastus", "properties": {
        "sourceResourceId": rid, "pointInTimeUTC": t}})
    assert get_cluster(d, rg, r3)["properties"]["dataEncryption"]["primaryKeyUri"] == kid
    lin = d.get("/emulator/lineage", params={"keyId": kid}).json()["value"]
    assert {x["resourceId"].lower() for x in lin} == {rid.lower(), cluster_id(rg, r3).lower()}
    # outside the window
    r = d.put(f"{cluster_id(rg, new_name('cl'))}?api-version={CL_AV}", json={
        "location": "eastus", "properties": {"sourceResourceId": rid,
                                             "pointInTimeUTC": "2000-01-01T00:00:00Z"}})
    assert_arm_error(r, 400, "InvalidRestorePointInTime")


def test_read_replica_inherits_key_reads_primary_and_promotes(start_daemon):
    d = start_daemon()
    rg, mi, oid, v, kid = cmk_setup(d)
    name = new_name("cl")
    create_cluster(d, rg, name, cluster_body(mi, kid))
    rid = cluster_id(rg, name)
    assert d.put(data_url(rid, "a"), json={"value": 1}).status_code == 200
    rep = new_name("cl")
    create_cluster(d, rg, rep, {"location": "eastus", "properties": {"sourceResourceId": rid}})
    repid = cluster_id(rg, rep)
    c = get_cluster(d, rg, rep)
    assert c["properties"]["dataEncryption"]["primaryKeyUri"] == kid
    assert mi in c["identity"]["userAssignedIdentities"]
    assert get_cluster(d, rg, name)["properties"]["readReplicas"] == [repid]
    assert d.get(data_url(repid, "a")).json()["value"] == 1
    assert d.put(data_url(rid, "b"), json={"value": 2}).status_code == 200
    assert d.get(data_url(repid, "b")).json()["value"] == 2
    r = d.put(data_url(repid, "c"), json={"value": 3})
    assert r.status_code == 409 and "25006" in r.json()["error"]["message"]
    # revoking the key takes both down
    v.policy("remove", oid)
    settle(d)
    assert get_cluster(d, rg, rep)["properties"]["state"] == "Inaccessible"
    v.policy("add", oid)
    settle(d)
    assert get_cluster(d, rg, rep)["properties"]["state"] == "Ready"
    r = d.post(f"{repid}/promote?api-version={CL_AV}")
    assert r.status_code == 202
    wait_lro(d, r)
    assert get_cluster(d, rg, name)["properties"]["readReplicas"] == []
    assert d.put(data_url(repid, "c"), json={"value": 3}).status_code == 200
    assert d.get(data_url(repid, "a")).json()["value"] == 1


def test_check_name_and_stop_start(daemon, cmk):
    rg = cmk[0]
    name = new_name("cl")
    create_cluster(daemon, rg, name, cluster_body())
    url = f"/subscriptions/{SUB}/providers/Microsoft.DBforPostgreSQL/checkNameAvailability" \
          f"?api-version={CL_AV}"
    r = daemon.post(url, json={"name": name, "type": "Microsoft.DBforPostgreSQL/serverGroupsv2"})
    assert r.status_code == 200 and r.json()["nameAvailable"] is False
    r = daemon.post(url, json={"name": new_name("cl"),
                               "type": "Microsoft.DBforPostgreSQL/serverGroupsv2"})
    assert r.json()["nameAvailable"] is True
    r = daemon.post(f"{cluster_id(rg, name)}/stop?api-version={CL_AV}")
    assert r.status_code == 202
    assert get_cluster(daemon, rg, name)["properties"]["state"] == "Stopped"
    r = daemon.post(f"{cluster_id(rg, name)}/start?api-version={CL_AV}")
    assert r.status_code == 202
    assert get_cluster(daemon, rg, name)["properties"]["state"] == "Ready"
    r = daemon.put(f"{cluster_id(rg, name)}?api-version={CL_AV}",
                   json=cluster_body())
    assert r.status_code in (200, 201)


def test_vault_outage_is_not_a_revocation(start_daemon):
    d = start_daemon()
    rg, mi, oid, v, kid = cmk_setup(d)
    name = new_name("cl")
    create_cluster(d, rg, name, cluster_body(mi, kid))
    rid = cluster_id(rg, name)
    assert d.put(data_url(rid, "a"), json={"value": "x"}).status_code == 200
    r = d.post("/emulator/faults", json={"vault": v.name, "mode": "unavailable"})
    assert r.status_code == 200 and r.json()["vaults"] == {v.name: "unavailable"}
    assert v.dp("GET", "/keys/cmk").status_code == 503
    settle(d)
    e = explain(d, rid)
    assert e["reasonCode"] == "AzureKeyVaultUnreachable", e
    assert get_cluster(d, rg, name)["properties"]["state"] == "Ready"
    assert d.get(data_url(rid, "a")).json()["value"] == "x"  # the DEK stays in memory
    # a revocation during the outage is seen once the vault answers again
    v.policy("remove", oid)
    settle(d)
    assert get_cluster(d, rg, name)["properties"]["state"] == "Ready"
    d.post("/emulator/faults", json={"clear": True})
    settle(d)
    assert get_cluster(d, rg, name)["properties"]["state"] == "Inaccessible"
    assert explain(d, rid)["reasonCode"] == "AzureKeyVaultMissingPermissions"
    r = d.post("/emulator/faults", json={"vault": v.name, "mode": "sideways"})
    assert_arm_error(r, 400, "InvalidParameter")


def test_key_loss_delay_runs_on_the_clock(start_daemon):
    d = start_daemon("--key-loss-delay", "PT10M")
    d.clock(freeze=True)
    rg, mi, oid, v, kid = cmk_setup(d)
    name = new_name("cl")
    create_cluster(d, rg, name, cluster_body(mi, kid))
    v.set_key(kid, enabled=False)
    settle(d)
    assert get_cluster(d, rg, name)["properties"]["state"] == "Ready"
    assert explain(d, cluster_id(rg, name))["reasonCode"] == "AzureKeyVaultKeyDisabled"
    d.clock(advance="PT9M")
    settle(d)
    assert get_cluster(d, rg, name)["properties"]["state"] == "Ready"
    d.clock(advance="PT2M")
    settle(d)
    assert get_cluster(d, rg, name)["properties"]["state"] == "Inaccessible"


def test_periodic_check_on_the_clock(start_daemon):
    d = start_daemon("--key-check-interval", "PT5M")
    d.clock(freeze=True)
    rg, mi, oid, v, kid = cmk_setup(d)
    name = new_name("cl")
    create_cluster(d, rg, name, cluster_body(mi, kid))
    before = settle(d)["checksDone"]
    d.clock(advance="PT1M")
    assert settle(d)["checksDone"] == before
    d.clock(advance="PT5M")
    assert settle(d)["checksDone"] > before
    assert explain(d, cluster_id(rg, name))["lastCheck"] == d.get("/emulator/clock").json()["now"]


def test_health_and_activity_log_follow_key_access(start_daemon):
    d = start_daemon()
    rg, mi, oid, v, kid = cmk_setup(d)
    name = new_name("cl")
    start = d.get("/emulator/clock").json()["now"]
    create_cluster(d, rg, name, cluster_body(mi, kid))
    rid = cluster_id(rg, name)
    health = f"{rid}/providers/Microsoft.ResourceHealth/availabilityStatuses"
    v.policy("remove", oid)
    settle(d)
    cur = d.get(f"{health}/current?api-version=2022-10-01").json()["properties"]
    assert cur["availabilityState"] == "Unavailable" and cur["title"] == "Inaccessible"
    assert oid in cur["summary"]
    v.policy("add", oid)
    settle(d)
    cur = d.get(f"{health}/current?api-version=2022-10-01").json()["properties"]
    assert cur["availabilityState"] == "Available"
    hist = d.get(f"{health}?api-version=2022-10-01").json()["value"]
    assert [h["properties"]["availabilityState"] for h in hist] == ["Available", "Unavailable"]
    flt = f"eventTimestamp ge '{start}' and resourceGroupName eq '{rg}'"
    r = d.get(f"/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values",
              params={"api-version": "2015-04-01", "$filter": flt})
    assert r.status_code == 200, r.text
    events = r.json()["value"]
    descs = [e.get("description", "") for e in events if e.get("resourceId", "").lower() ==
             rid.lower()]
    assert any(x.startswith("Access to the customer-managed key was lost") for x in descs), descs
    assert any(x.startswith("Access to the customer-managed key was restored") for x in descs)
    assert any(x.startswith("Cluster creation succeeded") for x in descs)
    # the entry of the loss carries the reason's code and message, as a failed write does
    lost = [e for e in events if (e.get("description") or "").startswith(
        "Access to the customer-managed key was lost")]
    err = json.loads(lost[0]["properties"]["statusMessage"])["error"]
    assert err["code"] == "AzureKeyVaultMissingPermissions" and oid in err["message"], err
    assert lost[0]["status"]["value"] == "Failed" and lost[0]["level"] == "Error"
    ops = {e["operationName"]["value"].lower() for e in events}
    assert "microsoft.dbforpostgresql/servergroupsv2/write" in ops


def test_explain_and_lineage_errors(daemon):
    r = daemon.get("/emulator/explain")
    assert_arm_error(r, 400, "InvalidQueryParameter")
    r = daemon.get("/emulator/explain", params={"resourceId": "/subscriptions/x/nothing"})
    assert_arm_error(r, 404, "ResourceNotFound")
    r = daemon.get("/emulator/lineage", params={"keyId": "not a uri"})
    assert_arm_error(r, 400, "AzureKeyVaultKeyUriInvalid")
    r = daemon.get(data_url(cluster_id("nope", "nope"), "a"))
    assert_arm_error(r, 404, "ResourceNotFound")


def test_private_preview_pitr_and_ha_standbys_inherit_the_key(start_daemon):
    d = start_daemon()
    rg, mi, oid, v, kid = cmk_setup(d)
    name = new_name("cl")
    create_cluster(d, rg, name, cluster_body(mi, kid, enableHa=True, nodeCount=2))
    r = d.get(f"{cluster_id(rg, name)}/servers?api-version={CL_AV}")
    assert {s["properties"]["haState"] for s in r.json()["value"]} == {"Healthy"}
    assert d.put(data_url(cluster_id(rg, name), "a"), json={"value": 1}).status_code == 200
    t = d.get("/emulator/clock").json()["now"]
    rest = new_name("cl")
    body = {"location": "eastus",
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {mi: {}}},
            "properties": {"createMode": "PointInTimeRestore", "sourceServerGroupName": name,
                           "pointInTimeUTC": t, "sourceLocation": "eastus",
                           "sourceSubscriptionId": SUB, "sourceResourceGroupName": rg,
                           "enableMx": False, "enableZfs": False,
                           "dataencryption": {"primaryKeyUri": kid,
                                              "primaryUserAssignedIdentityId": mi,
                                              "type": "AzureKeyVault"}}}
    create_cluster(d, rg, rest, body, av="2020-10-05-privatepreview")
    p = get_cluster(d, rg, rest)["properties"]
    assert p["sourceResourceId"].lower() == cluster_id(rg, name).lower()
    assert p["dataEncryption"]["primaryKeyUri"] == kid
    assert d.get(data_url(cluster_id(rg, rest), "a")).json()["value"] == 1
    # standbys and restores go down with the key too
    v.policy("remove", oid)
    settle(d)
    assert get_cluster(d, rg, name)["properties"]["state"] == "Inaccessible"
    assert get_cluster(d, rg, rest)["properties"]["state"] == "Inaccessible"


def test_replica_of_a_service_managed_cluster_reads_its_rows(daemon, cmk):
    rg = cmk[0]
    name = new_name("cl")
    create_cluster(daemon, rg, name, cluster_body())
    rid = cluster_id(rg, name)
    assert daemon.put(data_url(rid, "a"), json={"value": "sm"}).status_code == 200
    rep = new_name("cl")
    create_cluster(daemon, rg, rep, {"location": "eastus", "properties": {"sourceResourceId": rid}})
    assert get_cluster(daemon, rg, rep)["properties"]["dataEncryption"] == {"type": "SystemManaged"}
    assert daemon.get(data_url(cluster_id(rg, rep), "a")).json()["value"] == "sm"


def failing_rules(e):
    return sorted(r["rule"] for r in e["rules"] if not r["ok"])


def test_restart_checks_every_key_before_serving(start_daemon):
    """After a restart on the same data directory no DEK is in memory: every database's key is
    checked before the daemon reports Ready, and the data reads at once."""
    d = start_daemon()
    rg, mi, oid, v, kid = cmk_setup(d)
    name, sm = new_name("cl"), new_name("cl")
    create_cluster(d, rg, name, cluster_body(mi, kid))
    create_cluster(d, rg, sm, cluster_body())  # service-managed
    rid, smid = cluster_id(rg, name), cluster_id(rg, sm)
    assert d.put(data_url(rid, "a"), json={"value": {"n": 1}}).status_code == 200
    assert d.put(data_url(smid, "b"), json={"value": "sm"}).status_code == 200
    d.restart()
    # the first look after the start: the check already ran, nothing is pending
    c = get_cluster(d, rg, name)
    e = explain(d, rid)
    assert c["properties"]["state"] == "Ready"
    assert e["accessible"] is True and e["reasonCode"] is None and failing_rules(e) == [], e
    r = d.post("/emulator/settle")
    assert r.status_code == 200 and r.json()["settled"] is True
    assert r.json()["checksDone"] >= 2, r.json()  # both databases were checked at the start
    r = d.get(data_url(rid, "a"))
    assert r.status_code == 200 and r.json()["value"] == {"n": 1}, r.text
    r = d.get(data_url(smid, "b"))
    assert r.status_code == 200 and r.json()["value"] == "sm", r.text
    h = d.get(f"{rid}/providers/Microsoft.ResourceHealth/availabilityStatuses/current"
              "?api-version=2022-10-01")
    assert h.status_code == 200, h.text
    assert h.json()["properties"]["availabilityState"] == "Available"


def test_key_revoked_while_down_is_inaccessible_after_the_start(start_daemon):
    d = start_daemon()
    rg, mi, oid, v, kid = cmk_setup(d)
    name = new_name("cl")
    create_cluster(d, rg, name, cluster_body(mi, kid))
    rid = cluster_id(rg, name)
    assert d.put(data_url(rid, "a"), json={"value": 1}).status_code == 200
    # a second run that tolerates a long key loss revokes: the cluster stays Ready there
    d.restart(flags=["--key-loss-delay", "P1D"])
    v.policy("remove", oid)
    settle(d)
    assert get_cluster(d, rg, name)["properties"]["state"] == "Ready"
    # the next start checks the key at once: Inaccessible right after settle
    d.restart(flags=[])
    settle(d)
    assert get_cluster(d, rg, name)["properties"]["state"] == "Inaccessible"
    e = explain(d, rid)
    assert e["accessible"] is False
    assert e["reasonCode"] == "AzureKeyVaultMissingPermissions", e
    assert failing_rules(e) == ["dek", "permissions"], e
    r = d.get(data_url(rid, "a"))
    assert r.status_code == 503 and "08006" in r.json()["error"]["message"], r.text
    h = d.get(f"{rid}/providers/Microsoft.ResourceHealth/availabilityStatuses/current"
              "?api-version=2022-10-01")
    assert h.status_code == 200, h.text
    assert h.json()["properties"]["availabilityState"] == "Unavailable"
    # access back: the periodic check is not needed, an event brings it back
    v.policy("add", oid)
    settle(d)
    assert get_cluster(d, rg, name)["properties"]["state"] == "Ready"
    assert d.get(data_url(rid, "a")).json()["value"] == 1


def test_explain_after_the_identity_was_deleted(start_daemon):
    d = start_daemon()
    rg, mi, oid, v, kid = cmk_setup(d)
    name = new_name("cl")
    create_cluster(d, rg, name, cluster_body(mi, kid))
    rid = cluster_id(rg, name)
    assert failing_rules(explain(d, rid)) == []
    assert d.delete(f"{mi}?api-version=2023-01-31").status_code == 200
    settle(d)
    e = explain(d, rid)
    assert e["accessible"] is False and e["reasonCode"] == "UserAssignedIdentityNotFound", e
    assert failing_rules(e) == ["dek", "identity"], e
