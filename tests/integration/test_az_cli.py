"""The real Azure CLI (Debian's azure-cli 2.45, /usr/bin/az) against pgcmkd.

One az configuration directory per module: the custom cloud is registered with the ready
`az cloud register` command from GET /emulator/info, then az logs in as the well-known admin
service principal through the ADFS-style token service (real-clients.md 3.1, 5.1). Each test runs
az as a subprocess and checks what it prints: JSON fields, exit codes and the emulator's error
texts on stderr. The Key Vault data plane goes through `az rest` (real-clients.md 6.3), because
Debian's az cannot run `az keyvault key ...` (6.4). Also `az postgres server create` and
`az postgres server key create/show/list`, replica create, restore and update --assign-identity
(the seed 002 CLI path), `az resource create` of a CMK cluster, and `az login --identity` (3.2).

Each az start costs about a second, so tests share the logged-in config directory, create
resource groups over plain HTTP where az adds nothing, and keep the number of az calls small.
"""
import base64
import configparser
import json
import os
import shlex
import shutil
import subprocess

import pytest

from conftest import GUID_RE, SUB, TENANT, new_name
from pgtools import settle

AZ = "/usr/bin/az"
AZ_TIMEOUT = 120  # seconds for one az process; a hang is a failure, not a wait

pytestmark = pytest.mark.skipif(
    not os.access(AZ, os.X_OK),
    reason=f"{AZ} is missing (Debian package azure-cli; `make test` installs it as root)")

VAULT_RESOURCE = "https://vault.azure.net"  # the token audience for `az rest --resource`
CEK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"  # base64url of bytes 0..31 (recipe 6.3)
ALL_PERMS = {"keys": ["all"], "secrets": ["all"], "certificates": ["all"], "storage": ["all"]}
# Environment that would change az or requests behind our back.
DROP_ENV = {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "HTTP_PROXY", "HTTPS_PROXY",
            "ALL_PROXY", "NO_PROXY"}
# Files of a configured az directory that a second login may reuse (not the tokens or profile).
SHARED_CONFIG_FILES = ("clouds.config", "config", "commandIndex.json", "versionCheck.json")


# --- running az -------------------------------------------------------------------------------

def az_env(config_dir, ca_file):
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("AZURE_", "MSI_", "IDENTITY_"))
           and k.upper() not in DROP_ENV}
    env.update(AZURE_CONFIG_DIR=config_dir, AZURE_CORE_COLLECT_TELEMETRY="false",
               REQUESTS_CA_BUNDLE=ca_file, AZURE_CORE_NO_COLOR="1")
    return env


class Az:
    """az with its own AZURE_CONFIG_DIR."""

    def __init__(self, config_dir, ca_file):
        self.config_dir = str(config_dir)
        self.env = az_env(self.config_dir, ca_file)

    def run(self, *args):
        return subprocess.run([AZ, *args], capture_output=True, text=True, env=self.env,
                              stdin=subprocess.DEVNULL, timeout=AZ_TIMEOUT)

    def ok(self, *args):
        r = self.run(*args)
        assert r.returncode == 0, (f"az {shlex.join(args)} exited {r.returncode}\n"
                                   f"stderr:\n{r.stderr}\nstdout:\n{r.stdout}")
        return r.stdout

    def json(self, *args):
        return json.loads(self.ok(*args, "-o", "json"))

    def tsv(self, *args):
        return self.ok(*args, "-o", "tsv").strip()

    def fails(self, *args, rc=None):
        """Runs az, expects a non-zero exit (exactly `rc` if given); returns stderr."""
        r = self.run(*args)
        assert r.returncode != 0, f"az {shlex.join(args)} succeeded:\n{r.stdout}"
        if rc is not None:
            assert r.returncode == rc, (r.returncode, r.stderr)
        assert r.stderr.strip(), "az failed without a message on stderr"
        return r.stderr

    def login(self, client_id, secret, tenant):
        # --password=... so a secret starting with "-" is not taken for a flag.
        return self.json("login", "--service-principal", f"--username={client_id}",
                         f"--password={secret}", f"--tenant={tenant}")

    def cloud_section(self, name):
        """The cloud as az stored it in clouds.config (snake_case keys)."""
        cp = configparser.ConfigParser()
        cp.read(os.path.join(self.config_dir, "clouds.config"))
        return dict(cp[name]) if cp.has_section(name) else {}


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def vname():
    return new_name("kv")[:20]  # "kv-" + 12 hex: a valid, globally unique vault name


def policy_of(vault, oid):
    entries = [e for e in vault["properties"]["accessPolicies"] if e["objectId"] == oid]
    assert len(entries) <= 1, entries
    return entries[0] if entries else None


def forbidden_text(principal, op, vault):
    return (f"'appid={principal['appId']};oid={principal['objectId']};"
            f"iss=https://sts.windows.net/{TENANT}/' does not have keys {op} permission on key "
            f"vault '{vault};location=eastus'")


# --- module fixtures --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def info(daemon):
    r = daemon.get("/emulator/info")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def az(daemon, info, tmp_path_factory):
    """az logged in as the admin service principal, on the cloud /emulator/info describes."""
    cli = Az(tmp_path_factory.mktemp("azure-config-admin"), info["caFile"])
    reg = info["azCloudRegister"]
    argv = shlex.split(reg["command"])  # az cloud register -n pgcmk --cloud-config '{...}'
    assert argv[:3] == ["az", "cloud", "register"] and argv[argv.index("-n") + 1] == reg["name"]
    cli.ok(*argv[1:])
    cli.as_registered = cli.cloud_section(reg["name"])  # what /emulator/info alone gives az
    cli.ok("cloud", "set", "-n", reg["name"])
    admin = info["admin"]
    cli.login_output = cli.login(admin["clientId"], admin["clientSecret"], info["tenantId"])
    return cli


def az_fresh(az, tmp_path_factory, info, label):
    """Another az on the same cloud (its configuration copied), not logged in yet."""
    cfg = tmp_path_factory.mktemp(f"azure-config-{label}")
    for f in SHARED_CONFIG_FILES:
        src = os.path.join(az.config_dir, f)
        if os.path.exists(src):
            shutil.copy(src, cfg)
    return Az(cfg, info["caFile"])


def az_as(az, tmp_path_factory, info, principal):
    """A second az, same cloud, logged in as `principal` (from POST /emulator/principals)."""
    cli = az_fresh(az, tmp_path_factory, info, "sp")
    out = cli.login(principal["appId"], principal["password"], info["tenantId"])
    assert [a["user"] for a in out] == [{"name": principal["appId"], "type": "servicePrincipal"}]
    return cli


@pytest.fixture(scope="module")
def rg(daemon):
    """A resource group for the vault and identity tests (created over HTTP: az adds nothing)."""
    name = new_name("azrg")
    assert daemon.put_rg(name).status_code == 201
    return name


@pytest.fixture(scope="module")
def policy_vault(az, rg):
    """`az keyvault create` without RBAC: az looks the caller up in Graph and grants it 'all'."""
    name = vname()
    return az.json("keyvault", "create", "-n", name, "-g", rg, "-l", "eastus")


@pytest.fixture(scope="module")
def recipe_key(az, policy_vault, info):
    """real-clients.md 6.3 as written: create an RSA key, then wrap the CEK with it."""
    v = f"https://{policy_vault['name']}.{info['vaultDnsSuffix']}"
    kid = az.tsv("rest", "--method", "post", "--url", f"{v}/keys/k1/create?api-version=7.3",
                 "--resource", VAULT_RESOURCE,
                 "--body", '{"kty":"RSA","key_size":2048,"key_ops":["wrapKey","unwrapKey"]}',
                 "--query", "key.kid")
    wrapped = az.tsv("rest", "--method", "post", "--url", f"{kid}/wrapkey?api-version=7.3",
                     "--resource", VAULT_RESOURCE,
                     "--body", json.dumps({"alg": "RSA-OAEP-256", "value": CEK}),
                     "--query", "value")
    return {"vault_url": v, "kid": kid, "wrapped": wrapped}


def unwrap_args(kid, wrapped):
    return ("rest", "--method", "post", "--url", f"{kid}/unwrapkey?api-version=7.3",
            "--resource", VAULT_RESOURCE,
            "--body", json.dumps({"alg": "RSA-OAEP-256", "value": wrapped}), "--query", "value")


# --- cloud, login, account --------------------------------------------------------------------

def test_login_lists_the_emulator_subscription(az, info):
    (acct,) = az.login_output
    assert acct.pop("managedByTenants") in (None, [])
    assert acct == {
        "cloudName": info["azCloudRegister"]["name"],
        "homeTenantId": info["tenantId"],
        "id": info["subscriptionId"],
        "isDefault": True,
        "name": "pgcmk emulator",
        "state": "Enabled",
        "tenantId": info["tenantId"],
        "user": {"name": info["admin"]["clientId"], "type": "servicePrincipal"},
    }


def test_info_registers_the_whole_cloud(az, info):
    """The ready command alone sets every endpoint az uses, Microsoft Graph included (which
    `az keyvault create` without --enable-rbac-authorization needs for its caller look-up)."""
    reg = az.as_registered
    cfg = info["azCloudRegister"]["cloudConfig"]
    base = info["endpoints"]["resourceManager"]
    assert reg["endpoint_microsoft_graph_resource_id"] == base + "/"
    assert reg["endpoint_resource_manager"] == base + "/"
    assert reg["endpoint_active_directory"] == info["endpoints"]["activeDirectory"]
    assert reg["endpoint_active_directory_resource_id"] == \
        cfg["endpoints"]["activeDirectoryResourceId"]
    assert reg["suffix_keyvault_dns"] == "." + info["vaultDnsSuffix"]


def test_account_show_and_access_tokens(az, info):
    acct = az.json("account", "show")
    assert acct["id"] == SUB == info["subscriptionId"]
    assert acct["tenantId"] == info["tenantId"] and acct["environmentName"] == "pgcmk"
    assert acct["user"] == {"name": info["admin"]["clientId"], "type": "servicePrincipal"}

    arm = az.json("account", "get-access-token")
    assert arm["tokenType"] == "Bearer"
    assert (arm["subscription"], arm["tenant"]) == (SUB, TENANT)
    claims = jwt_claims(arm["accessToken"])
    # The ARM audience is the cloud's activeDirectoryResourceId (with az's trailing slash).
    assert claims["aud"].rstrip("/") == info["azCloudRegister"][
        "endpoint-active-directory-resource-id"].rstrip("/")
    assert claims["tid"] == TENANT and claims["oid"] == info["admin"]["objectId"]
    assert claims["appid"] == info["admin"]["clientId"]
    assert claims["exp"] > claims["iat"]

    vault = az.json("account", "get-access-token", "--resource", VAULT_RESOURCE)
    assert jwt_claims(vault["accessToken"])["aud"] == VAULT_RESOURCE


# --- resource groups and identities -----------------------------------------------------------

def test_group_create_show_delete(az, daemon):
    name = new_name("azgrp")
    g = az.json("group", "create", "-n", name, "-l", "eastus", "--tags", "team=db")
    assert g["id"] == f"/subscriptions/{SUB}/resourceGroups/{name}"
    assert (g["name"], g["location"], g["tags"]) == (name, "eastus", {"team": "db"})
    assert g["properties"]["provisioningState"] == "Succeeded"

    shown = az.json("group", "show", "-n", name)
    assert shown["id"] == g["id"] and shown["tags"] == {"team": "db"}

    az.ok("group", "delete", "-n", name, "--yes")  # az polls the delete LRO to the end
    assert daemon.head(daemon.rg_path(name)).status_code == 404
    err = az.fails("group", "show", "-n", name, rc=3)
    assert f"(ResourceGroupNotFound) Resource group '{name}' could not be found." in err


def test_identity_create_show_delete(az, rg):
    name = new_name("id")
    ident = az.json("identity", "create", "-n", name, "-g", rg, "-l", "eastus")
    rid = (f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/"
           f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}")
    assert ident["id"] == rid and ident["name"] == name
    assert ident["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"
    assert ident["tenantId"] == TENANT
    assert GUID_RE.match(ident["principalId"]) and GUID_RE.match(ident["clientId"])

    shown = az.json("identity", "show", "-n", name, "-g", rg)
    assert {k: shown[k] for k in ("id", "principalId", "clientId", "tenantId")} == \
        {k: ident[k] for k in ("id", "principalId", "clientId", "tenantId")}

    az.ok("identity", "delete", "-n", name, "-g", rg)
    err = az.fails("identity", "show", "-n", name, "-g", rg, rc=3)
    assert (f"(ResourceNotFound) The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/"
            f"{name}' under resource group '{rg}' was not found.") in err


def test_identity_create_in_missing_group_fails(az):
    missing = new_name("nogrp")
    err = az.fails("identity", "create", "-n", "id1", "-g", missing, "-l", "eastus")
    assert f"(ResourceGroupNotFound) Resource group '{missing}' could not be found." in err


# --- vaults: create, access policies, names ---------------------------------------------------

def test_keyvault_create_grants_the_caller_all(policy_vault, rg, info):
    v = policy_vault
    name = v["name"]
    assert v["id"] == (f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/"
                       f"Microsoft.KeyVault/vaults/{name}")
    assert v["type"] == "Microsoft.KeyVault/vaults" and v["location"] == "eastus"
    p = v["properties"]
    assert p["vaultUri"] == f"https://{name}.{info['vaultDnsSuffix']}/"
    assert p["tenantId"] == TENANT and p["sku"] == {"family": "A", "name": "standard"}
    assert p["enableRbacAuthorization"] is False
    assert p["enableSoftDelete"] is True and p["softDeleteRetentionInDays"] == 90
    assert p["provisioningState"] == "Succeeded"
    # The objectId came from the Graph servicePrincipals look-up of the admin's appId.
    assert len(p["accessPolicies"]) == 1
    entry = policy_of(v, info["admin"]["objectId"])
    assert entry["tenantId"] == TENANT
    assert {k: entry["permissions"][k] for k in ALL_PERMS} == ALL_PERMS


def test_keyvault_create_taken_or_invalid_name(az, daemon, policy_vault):
    other_rg = new_name("azrg")
    assert daemon.put_rg(other_rg).status_code == 201
    name = policy_vault["name"]
    # Another group: az's GET finds nothing there, so the PUT reaches the global-name rule.
    err = az.fails("keyvault", "create", "-n", name, "-g", other_rg, "-l", "eastus",
                   "--enable-rbac-authorization", "true")
    assert (f"(VaultAlreadyExists) The vault name '{name}' is already in use. Vault names are "
            "globally unique so it is possible that the name is already taken.") in err

    err = az.fails("keyvault", "create", "-n", "kv--bad", "-g", other_rg, "-l", "eastus",
                   "--enable-rbac-authorization", "true")
    assert "(VaultNameNotValid) The vault name 'kv--bad' is invalid." in err


def test_access_policies_drive_the_data_plane(az, daemon, info, policy_vault, recipe_key,
                                              tmp_path_factory):
    """set-policy / delete-policy change what another principal may do through `az rest`."""
    name = policy_vault["name"]
    admin_oid = info["admin"]["objectId"]
    sp = daemon.post("/emulator/principals", json={"displayName": new_name("azsp")}).json()
    other = az_as(az, tmp_path_factory, info, sp)
    unwrap = unwrap_args(recipe_key["kid"], recipe_key["wrapped"])

    err = other.fails(*unwrap)
    assert "Forbidden(" in err and '"innererror":{"code":"ForbiddenByPolicy"}' in err
    assert forbidden_text(sp, "unwrapKey", name) in err

    v = az.json("keyvault", "set-policy", "-n", name, "--object-id", sp["objectId"],
                "--key-permissions", "get", "unwrapKey")
    entry = policy_of(v, sp["objectId"])
    assert entry["tenantId"] == TENANT
    assert sorted(entry["permissions"]["keys"]) == ["get", "unwrapKey"]
    assert not entry["permissions"]["secrets"] and not entry["permissions"]["certificates"]
    assert policy_of(v, admin_oid)["permissions"]["keys"] == ["all"]

    assert other.tsv(*unwrap) == CEK
    err = other.fails("rest", "--method", "post", "--url",
                      f"{recipe_key['kid']}/wrapkey?api-version=7.3", "--resource",
                      VAULT_RESOURCE, "--body", json.dumps({"alg": "RSA-OAEP-256", "value": CEK}))
    assert forbidden_text(sp, "wrapKey", name) in err

    v = az.json("keyvault", "delete-policy", "-n", name, "--object-id", sp["objectId"])
    assert policy_of(v, sp["objectId"]) is None
    shown = az.json("keyvault", "show", "-n", name)
    assert [e["objectId"] for e in shown["properties"]["accessPolicies"]] == [admin_oid]
    assert forbidden_text(sp, "unwrapKey", name) in other.fails(*unwrap)


# --- vaults: soft delete, recover, purge ------------------------------------------------------

def test_keyvault_rbac_delete_recover_purge(az, rg, info):
    name = vname()
    v = az.json("keyvault", "create", "-n", name, "-g", rg, "-l", "eastus",
                "--enable-rbac-authorization", "true")
    assert v["properties"]["enableRbacAuthorization"] is True
    assert v["properties"]["accessPolicies"] == []
    vault_id = v["id"]

    az.ok("keyvault", "delete", "-n", name)  # no -g: found through /subscriptions/{s}/resources
    deleted = az.json("keyvault", "list-deleted", "--resource-type", "vault")
    mine = [d for d in deleted if d["name"] == name]
    assert len(mine) == 1, deleted
    d = mine[0]
    assert d["id"] == (f"/subscriptions/{SUB}/providers/Microsoft.KeyVault/locations/eastus/"
                       f"deletedVaults/{name}")
    assert d["properties"]["vaultId"] == vault_id
    assert d["properties"]["location"] == "eastus"
    assert d["properties"]["scheduledPurgeDate"] > d["properties"]["deletionDate"]

    # The name stays taken while the vault is soft-deleted.
    err = az.fails("keyvault", "create", "-n", name, "-g", rg, "-l", "eastus",
                   "--enable-rbac-authorization", "true")
    assert ("(ConflictError) A vault with the same name already exists in deleted state. You "
            "need to either recover or purge existing key vault.") in err

    back = az.json("keyvault", "recover", "-n", name)
    assert back["id"] == vault_id
    assert back["properties"]["enableRbacAuthorization"] is True
    assert back["properties"]["vaultUri"] == f"https://{name}.{info['vaultDnsSuffix']}/"

    az.ok("keyvault", "delete", "-n", name)
    az.ok("keyvault", "purge", "-n", name)
    err = az.fails("keyvault", "show-deleted", "-n", name)
    assert f"No deleted Vault or HSM was found with name {name}" in err
    assert az.json("keyvault", "create", "-n", name, "-g", rg, "-l", "eastus",
                   "--enable-rbac-authorization", "true")["id"] == vault_id


def test_keyvault_purge_refused_under_purge_protection(az, rg):
    name = vname()
    v = az.json("keyvault", "create", "-n", name, "-g", rg, "-l", "eastus",
                "--enable-rbac-authorization", "true", "--enable-purge-protection", "true")
    assert v["properties"]["enablePurgeProtection"] is True
    az.ok("keyvault", "delete", "-n", name)
    err = az.fails("keyvault", "purge", "-n", name)
    assert "(OperationNotAllowed) Operation 'DeletedVaultPurge' is not allowed." in err


def test_keyvault_list_deleted_default(az, rg):
    """Without --resource-type az lists deleted vaults, then deletedManagedHSMs (always empty)."""
    name = vname()
    az.ok("keyvault", "create", "-n", name, "-g", rg, "-l", "eastus",
          "--enable-rbac-authorization", "true", "-o", "none")
    az.ok("keyvault", "delete", "-n", name)
    deleted = az.json("keyvault", "list-deleted")
    mine = [d for d in deleted if d["name"] == name]
    assert len(mine) == 1 and mine[0]["type"] == "Microsoft.KeyVault/deletedVaults", deleted
    assert az.json("keyvault", "list-deleted", "--resource-type", "hsm") == []


# --- generic resources ------------------------------------------------------------------------

def test_resource_show(az, rg, policy_vault):
    # Without --api-version: az reads the provider's api-versions first.
    r = az.json("resource", "show", "-g", rg, "-n", policy_vault["name"],
                "--resource-type", "Microsoft.KeyVault/vaults")
    assert r["id"] == policy_vault["id"] and r["type"] == "Microsoft.KeyVault/vaults"
    assert r["properties"]["vaultUri"] == policy_vault["properties"]["vaultUri"]
    err = az.fails("resource", "show", "-g", rg, "-n", "nosuchvault1",
                   "--resource-type", "Microsoft.KeyVault/vaults", rc=3)
    assert "(ResourceNotFound) The Resource 'Microsoft.KeyVault/vaults/nosuchvault1'" in err


def test_resource_list_by_group(az, daemon, rg, policy_vault):
    """az sends $filter=resourceGroup eq 'RG' and $expand=createdTime,changedTime,
    provisioningState to /subscriptions/{s}/resources."""
    listed = az.json("resource", "list", "-g", rg)
    assert listed and all(r["resourceGroup"] == rg for r in listed), listed
    (vault,) = [r for r in listed if r["id"] == policy_vault["id"]]
    assert vault["type"] == "Microsoft.KeyVault/vaults" and vault["location"] == "eastus"
    assert vault["provisioningState"] == "Succeeded"
    assert vault["createdTime"] and vault["changedTime"] >= vault["createdTime"]
    # -g is case-insensitive, and another group's resources stay out.
    upper = az.json("resource", "list", "-g", rg.upper())
    assert sorted(r["id"] for r in upper) == sorted(r["id"] for r in listed)
    missing = new_name("nogrp")  # az reads the group first, as against Azure
    err = az.fails("resource", "list", "-g", missing, rc=3)
    assert f"(ResourceGroupNotFound) Resource group '{missing}' could not be found." in err
    empty = new_name("azrg")
    daemon.put_rg(empty)
    assert az.json("resource", "list", "-g", empty) == []
    by_type = az.json("resource", "list", "-g", rg, "--resource-type", "Microsoft.KeyVault/vaults")
    assert policy_vault["id"] in [r["id"] for r in by_type]
    assert all(r["type"] == "Microsoft.KeyVault/vaults" for r in by_type)


def test_keyvault_list_includes_no_hsms(az, rg, policy_vault):
    """Without --resource-type `az keyvault list` also lists managedHSMs (none are emulated)."""
    listed = az.json("keyvault", "list", "-g", rg)
    assert policy_vault["name"] in [v["name"] for v in listed]
    assert all(v["type"] == "Microsoft.KeyVault/vaults" for v in listed)


# --- Key Vault data plane through az rest (real-clients.md 6.3) ------------------------------

def test_az_rest_wrap_unwrap_round_trip(az, policy_vault, recipe_key):
    kid = recipe_key["kid"]
    prefix = f"{recipe_key['vault_url']}/keys/k1/"
    assert recipe_key["vault_url"] + "/" == policy_vault["properties"]["vaultUri"]
    assert kid.startswith(prefix), kid
    version = kid[len(prefix):]
    assert len(version) == 32 and all(c in "0123456789abcdef" for c in version), kid
    wrapped = recipe_key["wrapped"]
    assert wrapped != CEK and len(base64.urlsafe_b64decode(wrapped + "==")) == 256  # RSA-2048
    assert az.tsv(*unwrap_args(kid, wrapped)) == CEK


# --- PostgreSQL single server with a customer-managed key (seed 002, CLI path) ---------------

def az_cmk_key(az, rg, info):
    """A vault fit for CMK (purge protection, 90 days) and an RSA key in it; the vault's name
    and the key id az accepts (*.vault.azure.net)."""
    vault = az.json("keyvault", "create", "-n", vname(), "-g", rg, "-l", "eastus",
                    "--enable-purge-protection", "true", "--retention-days", "90")
    base = f"https://{vault['name']}.{info['vaultDnsSuffix']}"
    local_kid = az.tsv("rest", "--method", "post", "--url",
                       f"{base}/keys/cmk/create?api-version=7.3", "--resource", VAULT_RESOURCE,
                       "--body", '{"kty":"RSA","key_size":2048}', "--query", "key.kid")
    version = local_kid.rsplit("/", 1)[1]
    return vault["name"], f"https://{vault['name']}.vault.azure.net/keys/cmk/{version}"


def az_server(az, rg, *extra):
    name = new_name("pgsrv")
    srv = az.json("postgres", "server", "create", "-g", rg, "-n", name, "-l", "eastus",
                  "--admin-user", "pgadmin", "--admin-password", "P@ssw0rd-1234",
                  "--sku-name", "GP_Gen5_2", "--version", "11", *extra)
    return name, srv


def az_grant(az, vault, oid):
    az.ok("keyvault", "set-policy", "-n", vault, "--object-id", oid,
          "--key-permissions", "get", "wrapKey", "unwrapKey")


def az_state(az, rg, name):
    return az.tsv("postgres", "server", "show", "-g", rg, "-n", name, "--query", "userVisibleState")


def test_postgres_server_and_server_key(az, daemon, rg, info):
    """`az postgres server create --assign-identity`, the vault grant with set-policy, and
    `az postgres server key create/show/list` (real-clients.md 5.2: az takes only a
    *.vault.azure.net kid, which pgcmk reads as the local vault of that name)."""
    vault, kid = az_cmk_key(az, rg, info)
    name, srv = az_server(az, rg, "--assign-identity")
    assert srv["userVisibleState"] == "Ready" and srv["identity"]["type"] == "SystemAssigned"
    assert "administratorLoginPassword" not in json.dumps(srv)
    oid = srv["identity"]["principalId"]
    assert GUID_RE.match(oid)

    # Without the grant the key is refused, with the emulator's reason.
    err = az.fails("postgres", "server", "key", "create", "-g", rg, "-s", name, "--kid", kid)
    assert "AzureKeyVaultMissingPermissions" in err and oid in err
    az_grant(az, vault, oid)
    key = az.json("postgres", "server", "key", "create", "-g", rg, "-s", name, "--kid", kid)
    assert key["uri"] == kid and key["serverKeyType"] == "AzureKeyVault"
    assert key["name"] == f"{vault}_cmk_{kid.rsplit('/', 1)[1]}"
    assert az.json("postgres", "server", "key", "show", "-g", rg, "-s", name,
                   "--kid", kid)["uri"] == kid
    assert [k["uri"] for k in az.json("postgres", "server", "key", "list", "-g", rg,
                                      "-s", name)] == [kid]
    shown = az.json("postgres", "server", "show", "-g", rg, "-n", name)
    assert shown["byokEnforcement"] == "Enabled" and shown["userVisibleState"] == "Ready"


def test_seed_002_replica_and_restore_with_az(az, daemon, rg, info):
    """Seed 002's CLI path: a replica and a point-in-time restore of a CMK server come up
    Inaccessible without an identity; `az postgres server update --assign-identity` gives them
    one, set-policy grants it, `az postgres server key create` (the revalidation) brings them up."""
    vault, kid = az_cmk_key(az, rg, info)
    name, srv = az_server(az, rg, "--assign-identity")
    az_grant(az, vault, srv["identity"]["principalId"])
    az.ok("postgres", "server", "key", "create", "-g", rg, "-s", name, "--kid", kid)
    when = daemon.get("/emulator/clock").json()["now"]

    rep = new_name("pgrep")
    made = az.json("postgres", "server", "replica", "create", "-g", rg, "-n", rep, "-s", name)
    assert made["replicationRole"] == "Replica" and made["userVisibleState"] == "Inaccessible"
    rst = new_name("pgrst")
    made = az.json("postgres", "server", "restore", "-g", rg, "-n", rst, "--source-server", name,
                   "--restore-point-in-time", when)
    assert made["userVisibleState"] == "Inaccessible"
    assert [r["name"] for r in az.json("postgres", "server", "replica", "list", "-g", rg,
                                       "-s", name)] == [rep]
    for copy in (rep, rst):
        assert az.json("postgres", "server", "key", "list", "-g", rg, "-s", copy)[0]["uri"] == kid
        # anything but identity, revalidation and delete is refused while Inaccessible
        err = az.fails("postgres", "server", "update", "-g", rg, "-n", copy,
                       "--ssl-enforcement", "Disabled")
        assert "ServerInaccessible" in err
        upd = az.json("postgres", "server", "update", "-g", rg, "-n", copy, "--assign-identity")
        oid = upd["identity"]["principalId"]
        assert GUID_RE.match(oid) and upd["userVisibleState"] == "Inaccessible"
        az_grant(az, vault, oid)
        settle(daemon)
        assert az_state(az, rg, copy) == "Inaccessible"  # a server waits for the revalidation
        az.ok("postgres", "server", "key", "create", "-g", rg, "-s", copy, "--kid", kid)
        assert az_state(az, rg, copy) == "Ready"


# --- az login --identity (real-clients.md 3.2) ------------------------------------------------

def test_login_with_managed_identity_endpoint(az, daemon, rg, info, tmp_path_factory):
    """MSI_ENDPOINT=https://.../msi/token az login --identity --username CLIENT_ID: az signs in
    as that user-assigned identity and lists the emulator's subscription. pgcmk is a whole
    cloud with many identities, so as on a VM with several, the identity must be named."""
    mi = az.json("identity", "create", "-g", rg, "-n", new_name("azmi"))
    cli = az_fresh(az, tmp_path_factory, info, "msi")
    cli.env["MSI_ENDPOINT"] = f"{info['endpoints']['resourceManager'].rstrip('/')}/msi/token"
    out = cli.json("login", "--identity", "--username", mi["clientId"])
    assert [s["id"] for s in out] == [SUB]
    assert out[0]["user"]["type"] == "servicePrincipal"
    assert out[0]["user"]["assignedIdentityInfo"] == f"MSIClient-{mi['clientId']}"
    token = cli.json("account", "get-access-token")["accessToken"]
    claims = jwt_claims(token)
    assert claims["oid"] == mi["principalId"] and claims["appid"] == mi["clientId"]
    assert claims["xms_mirid"].lower() == mi["id"].lower()
    assert cli.json("group", "show", "-n", rg)["name"] == rg
    # Without a name, several identities make the token service refuse, as IMDS does.
    anon = az_fresh(az, tmp_path_factory, info, "msi-anon")
    anon.env["MSI_ENDPOINT"] = cli.env["MSI_ENDPOINT"]
    assert "Failed to connect to MSI" in anon.fails("login", "--identity")


# --- Cosmos DB for PostgreSQL cluster with CMK through az resource (real-clients.md 4.5) ------

def test_cmk_cluster_with_az_resource_create(az, daemon, rg, info):
    """Debian's az has no `az cosmosdb postgres`: a serverGroupsv2 cluster is made with
    `az resource create --is-full-object`, which follows the LRO to the end."""
    mi = az.json("identity", "create", "-g", rg, "-n", new_name("azmi"))
    vault = az.json("keyvault", "create", "-n", vname(), "-g", rg, "-l", "eastus",
                    "--enable-purge-protection", "true", "--retention-days", "90")
    az.ok("keyvault", "set-policy", "-n", vault["name"], "--object-id", mi["principalId"],
          "--key-permissions", "get", "wrapKey", "unwrapKey")
    kid = az.tsv("rest", "--method", "post", "--url",
                 f"https://{vault['name']}.{info['vaultDnsSuffix']}/keys/cmk/create?api-version=7.3",
                 "--resource", VAULT_RESOURCE, "--body", '{"kty":"RSA","key_size":3072}',
                 "--query", "key.kid")
    cid = (f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/"
           f"Microsoft.DBforPostgreSQL/serverGroupsv2/{new_name('azcl')}")
    body = {"location": "eastus",
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {mi["id"]: {}}},
            "properties": {"administratorLoginPassword": "P@ssw0rd-1234", "postgresqlVersion": "15",
                           "coordinatorVCores": 4, "coordinatorStorageQuotaInMb": 131072,
                           "nodeCount": 0,
                           "dataEncryption": {"type": "AzureKeyVault", "primaryKeyUri": kid,
                                              "primaryUserAssignedIdentityId": mi["id"]}}}
    made = az.json("resource", "create", "--id", cid, "--api-version", "2022-11-08",
                   "--is-full-object", "--properties", json.dumps(body))
    assert made["properties"]["provisioningState"] == "Succeeded", made
    assert made["properties"]["state"] == "Ready"
    assert made["properties"]["dataEncryption"]["primaryKeyUri"] == kid
    assert "administratorLoginPassword" not in made["properties"]
    # Taking get away makes the cluster Inaccessible at the next check (settled here).
    az.ok("keyvault", "set-policy", "-n", vault["name"], "--object-id", mi["principalId"],
          "--key-permissions", "wrapKey", "unwrapKey")
    settle(daemon)
    shown = az.json("resource", "show", "--ids", cid, "--api-version", "2022-11-08")
    assert shown["properties"]["state"] == "Inaccessible"
