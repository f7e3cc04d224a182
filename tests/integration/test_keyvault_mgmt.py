"""Microsoft.KeyVault/vaults (the management plane) through the real azure.mgmt.keyvault client:
Azure's defaults and one-way rules, global names, soft delete / recover / purge (also by the
virtual clock), access policies and checkNameAvailability."""
import datetime

import pytest

from conftest import SUB, TENANT, assert_arm_error, new_name, parse_time, poll_until

pytest.importorskip("azure.mgmt.keyvault")
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError  # noqa: E402
from azure.identity import ClientSecretCredential  # noqa: E402
from azure.mgmt.keyvault import KeyVaultManagementClient  # noqa: E402
from azure.mgmt.keyvault.v2022_07_01 import models as m  # noqa: E402

ADMIN_APP = "00000000-0000-4000-8000-00000000c11e"
ADMIN_SECRET = "pgcmk-admin-secret"
ADMIN_OID = "00000000-0000-4000-8000-00000000a0a0"
OTHER_OID = "00000000-0000-4000-8000-0000000b0b0b"
ARM_SCOPE = "https://management.azure.com/.default"
VTYPE = "Microsoft.KeyVault/vaults"
AV = "2022-07-01"
SOFT_DELETE_MSG = ('The property "enableSoftDelete" cannot be set to false. Enabling the soft '
                   'delete for a vault is an irreversible action.')
PURGE_PROT_MSG = ('The property "enablePurgeProtection" cannot be set to false. Enabling the '
                  'purge protection for a vault is an irreversible action.')
DELETED_CONFLICT_MSG = ("A vault with the same name already exists in deleted state. You need to "
                        "either recover or purge existing key vault. Follow this link "
                        "https://go.microsoft.com/fwlink/?linkid=2149745 for more information on "
                        "soft delete.")


# --- helpers and fixtures --------------------------------------------------------------------

def vname():
    return new_name("kv")[:20]  # "kv-" + 12 hex: 15 characters, a valid vault name


def vault_path(rg, name, av=AV):
    return (f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{VTYPE}/{name}"
            + (f"?api-version={av}" if av else ""))


def deleted_path(name, loc="eastus", av=AV, suffix=""):
    return (f"/subscriptions/{SUB}/providers/Microsoft.KeyVault/locations/{loc}/deletedVaults/"
            f"{name}{suffix}?api-version={av}")


def policy(oid, keys=(), secrets=()):
    return m.AccessPolicyEntry(tenant_id=TENANT, object_id=oid,
                               permissions=m.Permissions(keys=list(keys), secrets=list(secrets)))


def params(location="eastus", policies=(), tags=None, **props):
    props.setdefault("tenant_id", TENANT)
    props.setdefault("sku", m.Sku(family="A", name="standard"))
    return m.VaultCreateOrUpdateParameters(
        location=location, tags=tags, properties=m.VaultProperties(
            access_policies=list(policies), **props))


def raw_body(location="eastus", **props):
    p = {"tenantId": TENANT, "sku": {"family": "A", "name": "standard"}, "accessPolicies": []}
    p.update(props)
    return {"location": location, "properties": {k: v for k, v in p.items() if v is not None}}


def with_status(pipeline_response, deserialized, headers):
    return pipeline_response.http_response.status_code, deserialized


def perms_of(vault, oid):
    for e in vault.properties.access_policies:
        if e.object_id == oid:
            p = e.permissions
            return {"keys": sorted(x.lower() for x in p.keys or []),
                    "secrets": sorted(x.lower() for x in p.secrets or [])}
    return None


def cred_for(d):
    return ClientSecretCredential("adfs", ADMIN_APP, ADMIN_SECRET, authority=d.base,
                                  connection_verify=d.ca)


@pytest.fixture(scope="module")
def cred(daemon):
    return cred_for(daemon)


def kv_client(d, cred, **kw):
    return KeyVaultManagementClient(cred, SUB, base_url=d.base, credential_scopes=[ARM_SCOPE],
                                    connection_verify=d.ca, polling_interval=0, **kw)


@pytest.fixture(scope="module")
def kv(daemon, cred):
    return kv_client(daemon, cred).vaults


@pytest.fixture(scope="module")
def rg(daemon):
    name = new_name("kvrg")
    assert daemon.put_rg(name).status_code == 201
    return name


@pytest.fixture(scope="module")
def rg2(daemon):
    name = new_name("kvrg")
    assert daemon.put_rg(name).status_code == 201
    return name


def create(kv, rg, name=None, **kw):
    return kv.begin_create_or_update(rg, name or vname(), params(**kw)).result()


def expect_error(fn, status, code=None, message=None):
    with pytest.raises(HttpResponseError) as ei:
        fn()
    e = ei.value
    assert e.status_code == status, (e.status_code, e.message)
    if code is not None:
        assert e.error.code == code, e.error
    if message is not None:
        assert e.error.message == message, e.error.message
    return e


# --- create / read / update ------------------------------------------------------------------

def test_create_answers_201_then_200_with_azure_defaults(daemon, kv, rg):
    name = vname()
    poller = kv.begin_create_or_update(rg, name, params(tags={"t": "1"}), cls=with_status)
    status, v = poller.result()
    assert status == 201
    assert v.name == name and v.type == VTYPE and v.location == "eastus"
    assert v.id == vault_path(rg, name, av=None)
    assert v.tags == {"t": "1"}
    p = v.properties
    assert p.tenant_id == TENANT
    assert (p.sku.family, p.sku.name) == ("A", "standard")
    assert p.vault_uri == f"https://{name}.vault.localhost:{daemon.port}/"
    assert p.enable_soft_delete is True and p.soft_delete_retention_in_days == 90
    assert p.enable_rbac_authorization is False
    assert p.enable_purge_protection in (None, False)
    assert p.provisioning_state == "Succeeded"
    status, v2 = kv.begin_create_or_update(rg, name, params(tags={"t": "2"}),
                                           cls=with_status).result()
    assert status == 200 and v2.tags == {"t": "2"}
    got = kv.get(rg, name)
    assert got.properties.vault_uri == p.vault_uri and got.tags == {"t": "2"}


def test_raw_put_defaults(daemon, rg):
    """The SDK model fills some defaults itself; a bare REST body gets Azure's from the daemon."""
    name = vname()
    body = {"location": "eastus", "properties": {"tenantId": TENANT,
                                                 "sku": {"family": "A", "name": "standard"}}}
    r = daemon.put(vault_path(rg, name), json=body)
    assert r.status_code == 201, r.text
    p = r.json()["properties"]
    assert p["enableSoftDelete"] is True
    assert p["softDeleteRetentionInDays"] == 90
    assert p["enableRbacAuthorization"] is False
    assert p["publicNetworkAccess"] == "Enabled"
    assert p["accessPolicies"] == []
    assert p["vaultUri"] == f"https://{name}.vault.localhost:{daemon.port}/"
    assert p["provisioningState"] == "Succeeded"
    assert "Azure-AsyncOperation" not in r.headers and "Location" not in r.headers


def test_vault_uri_is_lowercase(daemon, kv, rg):
    name = "KvUpper" + new_name("")[1:9]
    v = create(kv, rg, name)
    assert v.properties.vault_uri == f"https://{name.lower()}.vault.localhost:{daemon.port}/"


@pytest.mark.parametrize("av", ["2019-09-01", "2021-10-01", "2022-07-01", "2023-07-01"])
def test_api_versions(daemon, rg, av):
    name = vname()
    r = daemon.put(vault_path(rg, name, av), json=raw_body())
    assert r.status_code == 201, r.text
    r = daemon.get(vault_path(rg, name, av))
    assert r.status_code == 200 and r.json()["name"] == name


@pytest.mark.parametrize("av", ["2019-09-01", "2021-10-01"])
def test_sdk_older_api_versions(daemon, cred, rg, av):
    c = kv_client(daemon, cred, api_version=av)
    mods = c.models(api_version=av)
    name = vname()
    v = c.vaults.begin_create_or_update(rg, name, mods.VaultCreateOrUpdateParameters(
        location="eastus", properties=mods.VaultProperties(
            tenant_id=TENANT, sku=mods.Sku(family="A", name="premium"), access_policies=[]))
    ).result()
    assert v.properties.sku.name == "premium"
    assert c.vaults.get(rg, name).properties.enable_soft_delete is True


def test_unsupported_api_version(daemon, rg):
    r = daemon.put(vault_path(rg, vname(), "2015-06-01"), json=raw_body())
    err = assert_arm_error(r, 400, "NoRegisteredProviderFound")
    assert "2022-07-01" in err["message"] and "2023-07-01" in err["message"], err


def test_update_patches_properties_and_tags(kv, rg):
    v = create(kv, rg, tags={"a": "1"}, enabled_for_deployment=False)
    upd = kv.update(rg, v.name, m.VaultPatchParameters(
        tags={"b": "2"}, properties=m.VaultPatchProperties(enabled_for_deployment=True,
                                                           enable_purge_protection=True)))
    assert upd.tags == {"b": "2"}
    assert upd.properties.enabled_for_deployment is True
    assert upd.properties.enable_purge_protection is True
    got = kv.get(rg, v.name)
    assert got.properties.enabled_for_deployment is True
    assert got.properties.vault_uri == v.properties.vault_uri
    assert got.properties.soft_delete_retention_in_days == 90


def test_lists(daemon, kv, rg, rg2):
    a, b = create(kv, rg), create(kv, rg2, location="westus")
    in_rg = {x.name for x in kv.list_by_resource_group(rg)}
    assert a.name in in_rg and b.name not in in_rg
    in_sub = {x.name: x for x in kv.list_by_subscription()}
    assert {a.name, b.name} <= set(in_sub)
    assert in_sub[b.name].location == "westus"
    # vaults.list() goes through Microsoft.Resources' generic resource list.
    generic = {x.name for x in kv.list()}
    assert {a.name, b.name} <= generic


def test_missing_resource_group(kv):
    expect_error(lambda: create(kv, new_name("nope")), 404, "ResourceGroupNotFound")


def test_get_missing_vault(kv, rg):
    with pytest.raises(ResourceNotFoundError):
        kv.get(rg, vname())


# --- validation --------------------------------------------------------------------------------

@pytest.mark.parametrize("drop", ["tenantId", "sku"])
def test_required_properties(daemon, rg, drop):
    body = raw_body()
    del body["properties"][drop]
    name = vname()
    assert_arm_error(daemon.put(vault_path(rg, name), json=body), 400)
    assert daemon.get(vault_path(rg, name)).status_code == 404


def test_tenant_must_be_the_emulators(kv, rg):
    expect_error(lambda: create(kv, rg, tenant_id="11111111-1111-4111-8111-111111111111"), 400)


def test_soft_delete_cannot_be_disabled(daemon, kv, rg):
    name = vname()
    expect_error(lambda: create(kv, rg, name, enable_soft_delete=False), 400, "BadRequest",
                 SOFT_DELETE_MSG)
    with pytest.raises(ResourceNotFoundError):
        kv.get(rg, name)
    v = create(kv, rg, name)
    expect_error(lambda: kv.update(rg, name, m.VaultPatchParameters(
        properties=m.VaultPatchProperties(enable_soft_delete=False))), 400, "BadRequest",
        SOFT_DELETE_MSG)
    assert kv.get(rg, name).properties.enable_soft_delete is True
    assert v.properties.enable_soft_delete is True


def test_purge_protection_is_one_way(kv, rg):
    name = vname()
    expect_error(lambda: create(kv, rg, name, enable_purge_protection=False), 400, "BadRequest",
                 PURGE_PROT_MSG)
    create(kv, rg, name, enable_purge_protection=True)
    expect_error(lambda: kv.update(rg, name, m.VaultPatchParameters(
        properties=m.VaultPatchProperties(enable_purge_protection=False))), 400, "BadRequest",
        PURGE_PROT_MSG)
    # A later PUT that does not mention it keeps it on.
    v = create(kv, rg, name)
    assert v.properties.enable_purge_protection is True
    assert kv.get(rg, name).properties.enable_purge_protection is True


@pytest.mark.parametrize("days", [0, 6, 91, 365])
def test_retention_out_of_range(daemon, rg, days):
    name = vname()
    r = daemon.put(vault_path(rg, name), json=raw_body(softDeleteRetentionInDays=days))
    err = assert_arm_error(r, 400)
    assert "softDeleteRetentionInDays" in err["message"], err
    assert daemon.get(vault_path(rg, name)).status_code == 404


@pytest.mark.parametrize("days", [7, 90])
def test_retention_bounds_are_accepted(kv, rg, days):
    assert create(kv, rg, soft_delete_retention_in_days=days)\
        .properties.soft_delete_retention_in_days == days


def test_retention_cannot_change_after_creation(daemon, kv, rg):
    v = create(kv, rg, soft_delete_retention_in_days=30)
    expect_error(lambda: create(kv, rg, v.name, soft_delete_retention_in_days=45), 400)
    expect_error(lambda: kv.update(rg, v.name, m.VaultPatchParameters(
        properties=m.VaultPatchProperties(soft_delete_retention_in_days=60))), 400)
    # The same value, or none, is fine.
    assert create(kv, rg, v.name, soft_delete_retention_in_days=30)\
        .properties.soft_delete_retention_in_days == 30
    r = daemon.put(vault_path(rg, v.name), json=raw_body())
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["softDeleteRetentionInDays"] == 30


@pytest.mark.parametrize("name", ["ab", "a" * 25, "1abc", "-abc", "abc-", "ab--cd", "ab_cd",
                                  "ab.cd", "ab cd"])
def test_invalid_vault_names(kv, rg, name):
    expect_error(lambda: create(kv, rg, name), 400, "VaultNameNotValid")


@pytest.mark.parametrize("name", ["abc", "a-b-c", "A1b2", "z" * 24])
def test_valid_vault_names(kv, rg, name):
    name = name if len(name) == 24 else name + new_name("")[1:7]
    assert create(kv, rg, name).name == name


def test_names_are_global(kv, rg, rg2):
    v = create(kv, rg)
    e = expect_error(lambda: create(kv, rg2, v.name), 409, "VaultAlreadyExists")
    assert v.name in e.error.message
    with pytest.raises(ResourceNotFoundError):
        kv.get(rg2, v.name)


def test_names_are_global_ignoring_case(kv, rg, rg2):
    v = create(kv, rg, "kvcase" + new_name("")[1:9])
    expect_error(lambda: create(kv, rg2, v.name.upper()), 409, "VaultAlreadyExists")


def test_check_name_availability_ignores_case(kv, rg):
    v = create(kv, rg)
    r = kv.check_name_availability(m.VaultCheckNameAvailabilityParameters(name=v.name.upper()))
    assert r.name_available is False


# --- access policies -----------------------------------------------------------------------------

def test_access_policy_add_merges_permissions(kv, rg):
    v = create(kv, rg, policies=[policy(ADMIN_OID, keys=["get", "list"])])
    r = kv.update_access_policy(rg, v.name, "add", m.VaultAccessPolicyParameters(
        properties=m.VaultAccessPolicyProperties(access_policies=[
            policy(ADMIN_OID, keys=["list", "wrapKey"], secrets=["get"]),
            policy(OTHER_OID, keys=["unwrapKey"])])))
    assert r.type == "Microsoft.KeyVault/vaults/accessPolicies"
    assert r.id.lower().endswith("/accesspolicies/add")
    got = kv.get(rg, v.name)
    assert len(got.properties.access_policies) == 2
    assert perms_of(got, ADMIN_OID) == {"keys": ["get", "list", "wrapkey"], "secrets": ["get"]}
    assert perms_of(got, OTHER_OID)["keys"] == ["unwrapkey"]


def test_access_policy_remove(kv, rg):
    v = create(kv, rg, policies=[policy(ADMIN_OID, keys=["get", "wrapKey", "unwrapKey"]),
                                 policy(OTHER_OID, keys=["get"])])
    kv.update_access_policy(rg, v.name, "remove", m.VaultAccessPolicyParameters(
        properties=m.VaultAccessPolicyProperties(access_policies=[
            policy(ADMIN_OID, keys=["unwrapKey"])])))
    got = kv.get(rg, v.name)
    assert perms_of(got, ADMIN_OID)["keys"] == ["get", "wrapkey"]
    assert perms_of(got, OTHER_OID)["keys"] == ["get"]
    # Removing every remaining permission removes the entry.
    kv.update_access_policy(rg, v.name, "remove", m.VaultAccessPolicyParameters(
        properties=m.VaultAccessPolicyProperties(access_policies=[
            policy(OTHER_OID, keys=["get"])])))
    got = kv.get(rg, v.name)
    assert perms_of(got, OTHER_OID) is None
    assert perms_of(got, ADMIN_OID)["keys"] == ["get", "wrapkey"]


def test_access_policy_replace(kv, rg):
    v = create(kv, rg, policies=[policy(ADMIN_OID, keys=["get", "list", "wrapKey"]),
                                 policy(OTHER_OID, keys=["get"])])
    kv.update_access_policy(rg, v.name, "replace", m.VaultAccessPolicyParameters(
        properties=m.VaultAccessPolicyProperties(access_policies=[
            policy(ADMIN_OID, keys=["unwrapKey"])])))
    got = kv.get(rg, v.name)
    assert perms_of(got, ADMIN_OID) == {"keys": ["unwrapkey"], "secrets": []}
    assert perms_of(got, OTHER_OID)["keys"] == ["get"]


def test_access_policy_permission_names_are_checked(kv, rg):
    v = create(kv, rg)
    expect_error(lambda: kv.update_access_policy(rg, v.name, "add", m.VaultAccessPolicyParameters(
        properties=m.VaultAccessPolicyProperties(access_policies=[
            policy(ADMIN_OID, keys=["frobnicate"])]))), 400)
    assert kv.get(rg, v.name).properties.access_policies == []


def test_access_policy_on_missing_vault(kv, rg):
    with pytest.raises(HttpResponseError) as ei:
        kv.update_access_policy(rg, vname(), "add", m.VaultAccessPolicyParameters(
            properties=m.VaultAccessPolicyProperties(access_policies=[policy(ADMIN_OID, ["get"])])))
    assert ei.value.status_code == 404


def test_full_put_replaces_the_policy_list(kv, rg):
    """What `az keyvault set-policy` does: GET, edit the list, PUT the whole vault."""
    v = create(kv, rg, policies=[policy(ADMIN_OID, keys=["get"]), policy(OTHER_OID, keys=["get"])])
    v2 = create(kv, rg, v.name, policies=[policy(OTHER_OID, keys=["wrapKey"])])
    assert [e.object_id for e in v2.properties.access_policies] == [OTHER_OID]
    got = kv.get(rg, v.name)
    assert perms_of(got, ADMIN_OID) is None
    assert perms_of(got, OTHER_OID)["keys"] == ["wrapkey"]


# --- checkNameAvailability -----------------------------------------------------------------------

def test_check_name_availability(kv, rg):
    free = vname()
    r = kv.check_name_availability(m.VaultCheckNameAvailabilityParameters(name=free))
    assert r.name_available is True
    v = create(kv, rg)
    r = kv.check_name_availability(m.VaultCheckNameAvailabilityParameters(name=v.name))
    assert r.name_available is False and r.reason == "AlreadyExists" and v.name in r.message
    r = kv.check_name_availability(m.VaultCheckNameAvailabilityParameters(name="a--b"))
    assert r.name_available is False and r.reason == "AccountNameInvalid"
    kv.delete(rg, v.name)
    r = kv.check_name_availability(m.VaultCheckNameAvailabilityParameters(name=v.name))
    assert r.name_available is False and r.reason == "AlreadyExists"


# --- soft delete, recover, purge ---------------------------------------------------------------

def test_delete_soft_deletes(daemon, kv, rg):
    v = create(kv, rg, tags={"k": "v"}, soft_delete_retention_in_days=7)
    before = datetime.datetime.now(datetime.timezone.utc)
    status = kv.delete(rg, v.name, cls=lambda p, d, h: p.http_response.status_code)
    assert status in (200, 204)
    with pytest.raises(ResourceNotFoundError):
        kv.get(rg, v.name)
    assert v.name not in {x.name for x in kv.list_by_resource_group(rg)}
    d = kv.get_deleted(v.name, "eastus")
    assert d.name == v.name and d.type == "Microsoft.KeyVault/deletedVaults"
    assert d.id == (f"/subscriptions/{SUB}/providers/Microsoft.KeyVault/locations/eastus/"
                    f"deletedVaults/{v.name}")
    p = d.properties
    assert p.vault_id == v.id and p.location == "eastus"
    assert p.tags == {"k": "v"}
    assert p.purge_protection_enabled is False
    assert abs((p.deletion_date - before).total_seconds()) < 300
    assert p.scheduled_purge_date - p.deletion_date == datetime.timedelta(days=7)
    assert v.name in {x.name for x in kv.list_deleted()}
    # The wire format is ISO-8601 UTC.
    raw = daemon.get(deleted_path(v.name)).json()["properties"]
    parse_time(raw["deletionDate"])
    parse_time(raw["scheduledPurgeDate"])


def test_default_retention_schedules_purge_90_days_out(kv, rg):
    v = create(kv, rg)
    kv.delete(rg, v.name)
    p = kv.get_deleted(v.name, "eastus").properties
    assert p.scheduled_purge_date - p.deletion_date == datetime.timedelta(days=90)


def test_deleted_vault_in_another_location_is_not_found(kv, rg):
    v = create(kv, rg)
    kv.delete(rg, v.name)
    with pytest.raises(ResourceNotFoundError):
        kv.get_deleted(v.name, "westus")
    with pytest.raises(ResourceNotFoundError):
        kv.get_deleted(vname(), "eastus")


def test_recreating_a_deleted_name_conflicts(kv, rg, rg2):
    v = create(kv, rg)
    kv.delete(rg, v.name)
    expect_error(lambda: create(kv, rg, v.name), 409, "ConflictError", DELETED_CONFLICT_MSG)
    expect_error(lambda: create(kv, rg2, v.name), 409)


def test_recover_brings_back_properties_and_policies(kv, rg):
    v = create(kv, rg, tags={"keep": "me"}, soft_delete_retention_in_days=14,
               enable_purge_protection=True, enabled_for_disk_encryption=True,
               policies=[policy(ADMIN_OID, keys=["get", "unwrapKey"])])
    kv.delete(rg, v.name)
    # The recover request carries other values; the old vault comes back as it was.
    r = kv.begin_create_or_update(rg, v.name, params(create_mode="recover", tags={"x": "y"},
                                                     soft_delete_retention_in_days=90)).result()
    for got in (r, kv.get(rg, v.name)):
        assert got.properties.soft_delete_retention_in_days == 14
        assert got.properties.enable_purge_protection is True
        assert got.properties.enabled_for_disk_encryption is True
        assert got.tags == {"keep": "me"}
        assert perms_of(got, ADMIN_OID)["keys"] == ["get", "unwrapkey"]
        assert got.properties.vault_uri == v.properties.vault_uri
    with pytest.raises(ResourceNotFoundError):
        kv.get_deleted(v.name, "eastus")
    assert v.name not in {x.name for x in kv.list_deleted()}


def test_recover_without_a_deleted_vault_fails(kv, rg):
    name = vname()
    with pytest.raises(HttpResponseError) as ei:
        kv.begin_create_or_update(rg, name, params(create_mode="recover")).result()
    assert 400 <= ei.value.status_code < 500
    with pytest.raises(ResourceNotFoundError):
        kv.get(rg, name)


def test_purge_is_refused_under_purge_protection(kv, rg):
    v = create(kv, rg, enable_purge_protection=True)
    kv.delete(rg, v.name)
    assert kv.get_deleted(v.name, "eastus").properties.purge_protection_enabled is True
    expect_error(lambda: kv.begin_purge_deleted(v.name, "eastus").result(), 409,
                 message="Operation 'DeletedVaultPurge' is not allowed.")
    assert kv.get_deleted(v.name, "eastus").name == v.name


def test_purge_frees_the_name(kv, rg, rg2):
    v = create(kv, rg)
    kv.delete(rg, v.name)
    kv.begin_purge_deleted(v.name, "eastus").result()
    with pytest.raises(ResourceNotFoundError):
        kv.get_deleted(v.name, "eastus")
    assert v.name not in {x.name for x in kv.list_deleted()}
    # Free for anyone now, in any group, as a new vault.
    v2 = create(kv, rg2, v.name, soft_delete_retention_in_days=7)
    assert v2.id == vault_path(rg2, v.name, av=None)
    assert v2.properties.soft_delete_retention_in_days == 7


def test_purge_of_unknown_vault(kv):
    with pytest.raises(HttpResponseError) as ei:
        kv.begin_purge_deleted(vname(), "eastus").result()
    assert ei.value.status_code == 404


def test_deleting_the_resource_group_soft_deletes_its_vaults(daemon, kv):
    g = new_name("kvrg")
    assert daemon.put_rg(g).status_code == 201
    v = create(kv, g)
    r = daemon.delete(f"/subscriptions/{SUB}/resourcegroups/{g}?api-version=2021-04-01")
    assert r.status_code == 202, r.text
    poll_until(lambda: daemon.get(r.headers["Location"]).status_code != 202, what="RG delete")
    d = kv.get_deleted(v.name, "eastus")
    assert d.properties.vault_id == v.id


# --- the virtual clock purges at scheduledPurgeDate --------------------------------------------

def test_clock_purges_at_the_scheduled_date(start_daemon):
    d = start_daemon(http=False)
    vaults = kv_client(d, cred_for(d)).vaults
    assert d.put_rg("g").status_code == 201
    short = create(vaults, "g", "kvshort", soft_delete_retention_in_days=7,
                   enable_purge_protection=True)
    long_ = create(vaults, "g", "kvlong")
    vaults.delete("g", short.name)
    vaults.delete("g", long_.name)
    d.clock(advance="P6D")
    assert {x.name for x in vaults.list_deleted()} == {"kvshort", "kvlong"}
    d.clock(advance="P1DT1M")
    # Purge protection does not stop the scheduled purge.
    with pytest.raises(ResourceNotFoundError):
        vaults.get_deleted("kvshort", "eastus")
    assert {x.name for x in vaults.list_deleted()} == {"kvlong"}
    d.clock(advance="P91D")
    assert list(vaults.list_deleted()) == []
    with pytest.raises(ResourceNotFoundError):
        vaults.get_deleted("kvlong", "eastus")
    # Both names are free again.
    assert create(vaults, "g", "kvlong").properties.enable_soft_delete is True
    r = vaults.check_name_availability(m.VaultCheckNameAvailabilityParameters(name="kvshort"))
    assert r.name_available is True


def test_clock_purge_without_reading_first(start_daemon):
    """The purge happens when the clock moves, not only when someone reads the deleted vault."""
    d = start_daemon(http=False)
    vaults = kv_client(d, cred_for(d)).vaults
    assert d.put_rg("g").status_code == 201
    create(vaults, "g", "kvgone", soft_delete_retention_in_days=7)
    vaults.delete("g", "kvgone")
    d.clock(advance="P8D")
    # Re-creating is the first thing after the advance.
    v = create(vaults, "g", "kvgone")
    assert v.name == "kvgone"
