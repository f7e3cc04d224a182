"""The copy-paste recipes of shared/reference/real-clients.md run against pgcmk with the real Azure
SDK for Python (8.3) and the real az CLI (6.3 is in test_az_cli.py). Only the connection values
(endpoint, subscription, tenant, client id and secret) come from /emulator/info instead of the
recipe's placeholders."""
import os

import pytest

pytest.importorskip("azure.mgmt.rdbms")
from azure.identity import ClientSecretCredential  # noqa: E402
from azure.keyvault.keys import KeyClient  # noqa: E402
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm  # noqa: E402
from azure.mgmt.keyvault import KeyVaultManagementClient  # noqa: E402
from azure.mgmt.msi import ManagedServiceIdentityClient  # noqa: E402
from azure.mgmt.rdbms.postgresql import PostgreSQLManagementClient  # noqa: E402
from azure.mgmt.rdbms.postgresql import models as pgm  # noqa: E402
from azure.mgmt.resource import ResourceManagementClient  # noqa: E402


def have_route(d, path):
    r = d.get(path)
    return r.status_code != 404 or r.json().get("error", {}).get("code") != "NotFound"


def test_recipe_8_3_python_sdk(start_daemon, monkeypatch):
    d = start_daemon()
    info = d.get("/emulator/info").json()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", d.ca)
    monkeypatch.setenv("SSL_CERT_FILE", d.ca)
    EMU, SUB, TEN = d.base, info["subscriptionId"], info["tenantId"]
    APP, SECRET = info["admin"]["clientId"], info["admin"]["clientSecret"]

    # ---- the recipe, as written (names and values as in real-clients.md 8.3) ----
    cred = ClientSecretCredential("adfs", APP, SECRET, authority=EMU, connection_verify=d.ca)
    kw = dict(base_url=EMU, credential_scopes=["https://management.azure.com/.default"],
              polling_interval=0, connection_verify=d.ca)

    rc = ResourceManagementClient(cred, SUB, **kw)
    rc.resource_groups.create_or_update("rg1", {"location": "eastus"})
    kv = KeyVaultManagementClient(cred, SUB, **kw).vaults.begin_create_or_update(
        "rg1", "vault1", {"location": "eastus",
                          "properties": {"tenant_id": TEN, "sku": {"family": "A", "name": "standard"},
                                         "access_policies": [], "enable_soft_delete": True,
                                         "enable_purge_protection": True}}).result()
    ident = ManagedServiceIdentityClient(cred, SUB, **kw).user_assigned_identities.create_or_update(
        "rg1", "id1", {"location": "eastus"})
    assert ident.principal_id
    pg = PostgreSQLManagementClient(cred, SUB, **kw)
    server = pg.servers.begin_create("rg1", "pg1", pgm.ServerForCreate(
        location="eastus", identity=pgm.ResourceIdentity(type="SystemAssigned"),
        sku=pgm.Sku(name="GP_Gen5_2", tier="GeneralPurpose"),
        properties=pgm.ServerPropertiesForDefaultCreate(
            administrator_login="pgadmin", administrator_login_password="P@ssw0rd1234!",
            version="11"))).result()
    assert server.identity.principal_id

    # the vault's access policies grant the admin and the server's identity (the recipe's vault
    # has none; in Azure the creator is given one by the portal/CLI, here we add them)
    vc = KeyVaultManagementClient(cred, SUB, **kw).vaults
    for oid, perms in ((info["admin"]["objectId"], ["all"]),
                       (server.identity.principal_id, ["get", "wrapKey", "unwrapKey"])):
        vc.update_access_policy("rg1", "vault1", "add", {"properties": {"access_policies": [
            {"tenant_id": TEN, "object_id": oid, "permissions": {"keys": perms}}]}})

    kc = KeyClient(kv.properties.vault_uri, cred, connection_verify=d.ca)
    key = kc.create_rsa_key("cmk", size=2048)
    pg.server_keys.begin_create_or_update(
        "pg1", f"vault1_cmk_{key.properties.version}", "rg1",
        pgm.ServerKey(server_key_type="AzureKeyVault", uri=key.id)).result()
    cc = CryptographyClient(key.id, cred, connection_verify=d.ca)
    w = cc.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, os.urandom(32))
    assert cc.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key).key

    tmpl = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "contentVersion": "1.0.0.0", "resources": [{
                "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                "apiVersion": "2018-11-30", "name": "id2", "location": "eastus"}]}
    dep = rc.deployments.begin_create_or_update(
        "rg1", "dep1", {"properties": {"mode": "Incremental", "template": tmpl}}).result()
    assert dep.properties.provisioning_state == "Succeeded"
    sg = rc.resources.begin_create_or_update_by_id(
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.DBforPostgreSQL/serverGroupsv2/sg1",
        "2022-11-08",
        {"location": "eastus", "properties": {"administratorLoginPassword": "P@ss",
                                              "postgresqlVersion": "15", "coordinatorVCores": 4,
                                              "coordinatorStorageQuotaInMb": 131072,
                                              "nodeCount": 0}}).result()
    # ---- end of the recipe ----
    assert sg.properties["state"] == "Ready"
    srv = pg.servers.get("rg1", "pg1")
    assert srv.byok_enforcement == "Enabled" and srv.user_visible_state == "Ready"
    assert rc.resources.get_by_id(
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/"
        "userAssignedIdentities/id2", "2018-11-30").name == "id2"


def test_cluster_with_cmk_through_the_generic_sdk_client(start_daemon):
    """serverGroupsv2 has no typed client here: ResourceManagementClient.resources runs the LRO."""
    from pgtools import cmk_setup
    d = start_daemon()
    info = d.get("/emulator/info").json()
    rg, mi, oid, v, kid = cmk_setup(d)
    cred = ClientSecretCredential("adfs", info["admin"]["clientId"], info["admin"]["clientSecret"],
                                  authority=d.base, connection_verify=d.ca)
    rc = ResourceManagementClient(cred, info["subscriptionId"], base_url=d.base,
                                  credential_scopes=["https://management.azure.com/.default"],
                                  polling_interval=0, connection_verify=d.ca)
    cid = f"/subscriptions/{info['subscriptionId']}/resourceGroups/{rg}/providers/" \
          "Microsoft.DBforPostgreSQL/serverGroupsv2/sdkcluster"
    res = rc.resources.begin_create_or_update_by_id(cid, "2023-03-02-preview", {
        "location": "eastus",
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {mi: {}}},
        "properties": {"administratorLoginPassword": "P@ss", "postgresqlVersion": "15",
                       "nodeCount": 0,
                       "dataEncryption": {"type": "AzureKeyVault", "primaryKeyUri": kid,
                                          "primaryUserAssignedIdentityId": mi}}}).result()
    assert res.properties["state"] == "Ready"
    assert res.properties["dataEncryption"]["primaryKeyUri"] == kid
    v.policy("remove", oid)
    from pgtools import settle
    settle(d)
    assert rc.resources.get_by_id(cid, "2023-03-02-preview").properties["state"] == "Inaccessible"
