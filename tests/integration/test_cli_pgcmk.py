"""cli/pgcmk, the bash + curl + jq command line: every subcommand's success and a failure path
(exit code and the API's "code: message" on stderr), --help for each, connection discovery,
--query/--raw, LRO waiting, and that no secret but `token`'s is printed. Single servers and
template deployments are tested when the daemon serves them and skipped (with the reason) when not."""
import json
import os
import stat
import subprocess

import pytest

from conftest import ROOT, SUB, new_name

CLI = os.path.join(ROOT, "cli", "pgcmk")
COMMANDS = ["login", "logout", "token", "group", "identity", "keyvault", "key", "cluster",
            "server", "deployment", "health", "activity-log", "explain", "lineage", "data",
            "clock", "settle", "info"]
SP_PASSWORD = "P@ssw0rd-cli-1234"


class Cli:
    def __init__(self, daemon, config_dir):
        self.d = daemon
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PGCMK")}
        self.env.update(PGCMK_URL=daemon.base, PGCMK_CA=daemon.ca, PGCMK_CONFIG_DIR=config_dir,
                        PGCMK_POLL_INTERVAL="0.05", PGCMK_WAIT_TIMEOUT="60")

    def run(self, *args, env=None, timeout=90):
        e = dict(self.env, **(env or {}))
        e = {k: v for k, v in e.items() if v is not None}
        return subprocess.run([CLI, *args], capture_output=True, text=True, env=e,
                              timeout=timeout, cwd=ROOT)

    def ok(self, *args, **kw):
        """Runs, asserts exit 0 and an empty stderr; returns the parsed JSON (None if no output)."""
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"pgcmk {' '.join(args)} -> {r.returncode}\n{r.stderr}{r.stdout}"
        assert r.stderr == "", r.stderr
        return json.loads(r.stdout) if r.stdout.strip() else None

    def raw(self, *args, **kw):
        r = self.run(*args, "--raw", **kw)
        assert r.returncode == 0, f"pgcmk {' '.join(args)} -> {r.returncode}\n{r.stderr}"
        return r.stdout.rstrip("\n")

    def fail(self, *args, rc=1, err=None, **kw):
        """Runs, asserts exit code rc and (if given) err in stderr; stdout must stay empty."""
        r = self.run(*args, **kw)
        assert r.returncode == rc, f"pgcmk {' '.join(args)}: expected {rc}, got {r.returncode}\n" \
                                   f"{r.stderr}{r.stdout}"
        assert r.stdout == "", r.stdout
        if err is not None:
            assert err in r.stderr, r.stderr
        if rc == 1 and err is not None and ":" in err:
            assert r.stderr.startswith("ERROR: "), r.stderr
        return r.stderr


@pytest.fixture(scope="module")
def cli(daemon, tmp_path_factory):
    return Cli(daemon, str(tmp_path_factory.mktemp("cli-config")))


@pytest.fixture(scope="module")
def cmk(cli):
    """A group, an identity, a purge-protected vault granting it get/wrapKey/unwrapKey, a key."""
    rg, mi, kv = new_name("rg"), new_name("mi"), new_name("kv")
    cli.ok("group", "create", "-n", rg)
    oid = cli.ok("identity", "create", "-g", rg, "-n", mi)["properties"]["principalId"]
    cli.ok("keyvault", "create", "-g", rg, "-n", kv, "--enable-purge-protection", "true")
    cli.ok("keyvault", "set-policy", "-g", rg, "-n", kv, "--object-id", oid,
           "--key-permissions", "get", "wrapKey", "unwrapKey")
    kid = cli.raw("key", "create", "--vault-name", kv, "-n", "cmk", "--query", ".key.kid")
    return {"rg": rg, "mi": mi, "oid": oid, "kv": kv, "kid": kid}


def arm_id(rg, type_, name):
    return f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{type_}/{name}"


# --- help and usage ---------------------------------------------------------------------------

def test_top_level_help(cli):
    r = cli.run("--help")
    assert r.returncode == 0 and r.stderr == ""
    for c in COMMANDS:
        assert c in r.stdout, c
    assert cli.run().returncode == 0


@pytest.mark.parametrize("command", COMMANDS)
def test_help_for_each_command(cli, command):
    for args in ([command, "--help"], [command, "-h"]):
        r = cli.run(*args, env={"PGCMK_URL": "https://localhost:1"})  # needs no daemon
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("Usage: pgcmk"), r.stdout
        assert r.stderr == ""


@pytest.mark.parametrize("args", [["group", "create"], ["keyvault", "set-policy"],
                                  ["key", "unwrap"], ["cluster", "restore"], ["server", "key"],
                                  ["deployment", "create"], ["clock", "advance"], ["data", "put"]])
def test_help_for_actions(cli, args):
    r = cli.run(*args, "--help")
    assert r.returncode == 0 and r.stdout.startswith("Usage: pgcmk " + args[0]), r.stdout


def test_usage_errors_exit_2(cli):
    cli.fail("frobnicate", rc=2, err="'frobnicate' is not a pgcmk command")
    cli.fail("group", "create", rc=2, err="required: --name")
    cli.fail("group", "create", "-n", "x", "--bogus", rc=2, err="unrecognized arguments: --bogus")
    cli.fail("group", "explode", rc=2, err="not a group action")
    cli.fail("group", "show", "-n", rc=2, err="--name: expected one argument")
    cli.fail("cluster", "show", "-n", "x", rc=2, err="--resource-group/-g and --name/-n")
    cli.fail("clock", "advance", "soon", rc=2, err="'soon' is not a duration")
    cli.fail("explain", rc=2, err="give --id")
    cli.fail("group", "list", "--query", ".[", rc=2, err="--query")


def test_empty_values_are_usage_errors(cli, cmk):
    """An empty value never means "the default": `cluster create --key-uri ""` would otherwise
    make a service-managed cluster and exit 0, and `restore --encryption ""` keep the source's
    encryption. One rule in the option parser, for every option and both spellings."""
    rg, cl = cmk["rg"], new_name("cl")
    msg = "expected a value, got an empty string"
    cli.fail("cluster", "create", "-g", rg, "-n", cl, "--key-uri", "", "--identity", cmk["mi"],
             rc=2, err="argument --key-uri: " + msg)
    cli.fail("cluster", "create", "-g", rg, "-n", cl, "--key-uri=", "--identity", cmk["mi"],
             rc=2, err="argument --key-uri: " + msg)
    cli.fail("cluster", "create", "-g", rg, "-n", cl, "--key-uri", cmk["kid"], "--identity", "",
             rc=2, err="argument --identity: " + msg)
    cli.fail("cluster", "show", "-g", rg, "-n", cl, rc=3)  # nothing was created
    cli.fail("cluster", "restore", "-g", rg, "-n", new_name("cl"), "--source", cl,
             "--encryption", "", rc=2, err="argument --encryption: " + msg)
    cli.fail("server", "key", "create", "-g", rg, "-s", new_name("srv"), "--kid", "", rc=2,
             err="argument --kid: " + msg)
    cli.fail("group", "create", "-n", "", rc=2, err="argument --name: " + msg)
    cli.fail("group", "create", "-n", new_name("rg"), "-l", "", rc=2, err="argument --location")
    cli.fail("identity", "show", "-g", rg, "-n", "", rc=2, err=msg)
    cli.fail("key", "create", "--vault-name", cmk["kv"], "-n", "k", "--kty", "", rc=2, err=msg)
    # a list option: an empty item is refused too
    cli.fail("keyvault", "set-policy", "-g", rg, "-n", cmk["kv"], "--object-id", cmk["oid"],
             "--key-permissions", "get", "", rc=2, err="argument --key-permissions: " + msg)
    # global options
    cli.fail("--query", "", "group", "list", rc=2, err="argument --query: " + msg)
    cli.fail("--url=", "group", "list", rc=2, err="argument --url: " + msg)
    cli.fail("--ca", "", "group", "list", rc=2, err="argument --ca: " + msg)


# --- connection -------------------------------------------------------------------------------

def test_connection_failure_and_discovered_ca(cli):
    cli.fail("group", "list", env={"PGCMK_URL": "https://localhost:1"}, err="cannot reach")
    # --url wins over PGCMK_URL; without PGCMK_CA the CA comes from /emulator/info's caFile
    info = cli.ok("--url", cli.d.base, "info", env={"PGCMK_URL": "https://localhost:1",
                                                    "PGCMK_CA": None})
    assert info["caFile"] == cli.d.ca and info["subscriptionId"] == SUB
    assert "clientSecret" not in json.dumps(info)
    cli.fail("info", env={"PGCMK_CA": "/nonexistent/ca.pem"}, err="cannot read the CA file")
    # the plain HTTP listener needs no CA
    http = {"PGCMK_URL": cli.d.http_base, "PGCMK_CA": None}
    assert cli.ok("info", env=http)["subscriptionId"] == SUB
    assert isinstance(cli.ok("group", "list", env=http), list)


def test_query_and_raw(cli):
    rg = new_name("rg")
    cli.ok("group", "create", "-n", rg, "--tags", "team=db", "env=test")
    assert cli.raw("group", "show", "-n", rg, "--query", ".name") == rg
    assert cli.raw("group", "show", "-n", rg, "--query", ".tags") == "db\ttest"
    assert cli.raw("group", "show", "-n", rg, "--query", "{name, location}") == f"{rg}\teastus"
    assert cli.raw("group", "show", "-n", rg, "-o", "tsv", "--query", ".location") == "eastus"
    names = cli.raw("group", "list", "--query", "map(.name)").split("\n")
    assert rg in names
    assert cli.ok("group", "show", "-n", rg, "--query", ".tags") == {"team": "db", "env": "test"}


# --- login / token ----------------------------------------------------------------------------

def test_login_token_logout(cli, cmk, tmp_path):
    env = {"PGCMK_CONFIG_DIR": str(tmp_path / "cfg")}
    acct = cli.ok("login", env=env)
    assert acct[0]["id"] == SUB and acct[0]["user"]["type"] == "servicePrincipal"
    tok = cli.ok("token", env=env)
    assert tok["accessToken"].startswith("eyJ") and tok["tokenType"] == "Bearer"
    assert cli.raw("token", "--resource", "vault", "--query", ".accessToken",
                   env=env).startswith("eyJ")

    # a new service principal: its secret is stored 0600 and never printed
    sp = cli.d.post("/emulator/principals", json={"displayName": "cli-test"}).json()
    r = cli.run("login", "--service-principal", "-u", sp["appId"], "-p", sp["password"], env=env)
    assert r.returncode == 0, r.stderr
    assert sp["password"] not in r.stdout + r.stderr
    assert json.loads(r.stdout)[0]["user"]["objectId"] == sp["objectId"]
    login = tmp_path / "cfg" / "login.json"
    assert stat.S_IMODE(os.stat(login).st_mode) == 0o600
    # acting as that principal: the vault's access policy does not know it
    cli.fail("key", "show", "--vault-name", cmk["kv"], "-n", "cmk", env=env,
             err="Forbidden (ForbiddenByPolicy): ")
    # a user-assigned identity: may get the key, not create one
    client_id = cli.raw("identity", "show", "-g", cmk["rg"], "-n", cmk["mi"],
                        "--query", ".properties.clientId")
    acct = cli.ok("login", "--identity", "--username", client_id, env=env)
    assert acct[0]["user"] == {"name": client_id, "type": "managedIdentity",
                               "objectId": cmk["oid"]}
    assert cli.ok("key", "show", "--id", cmk["kid"], env=env)["key"]["kid"] == cmk["kid"]
    cli.fail("key", "create", "--vault-name", cmk["kv"], "-n", "nope", env=env,
             err="ForbiddenByPolicy")
    cli.ok("logout", env=env)
    assert not login.exists()
    cli.fail("login", "--service-principal", "-u", sp["appId"], "-p", "wrong", env=env,
             err="could not get a token: ")
    cli.fail("login", "--service-principal", "-u", sp["appId"], env=env, rc=2)


# --- group, identity ----------------------------------------------------------------------------

def test_group(cli):
    rg = new_name("rg")
    g = cli.ok("group", "create", "-n", rg, "-l", "westus", "--tags", "a=1")
    assert g["name"] == rg and g["location"] == "westus" and g["tags"] == {"a": "1"}
    assert cli.ok("group", "show", "-n", rg)["properties"]["provisioningState"] == "Succeeded"
    assert rg in [x["name"] for x in cli.ok("group", "list")]
    assert cli.ok("group", "delete", "-n", rg, "--yes") is None  # waited for the 202 + Location
    cli.fail("group", "show", "-n", rg, rc=3, err=f"ResourceGroupNotFound: Resource group '{rg}'")
    cli.fail("group", "create", "-n", "bad!name", err="ERROR: ")


def test_identity(cli):
    rg, mi = new_name("rg"), new_name("mi")
    cli.ok("group", "create", "-n", rg)
    created = cli.ok("identity", "create", "-g", rg, "-n", mi)
    assert created["properties"]["principalId"] and created["properties"]["clientId"]
    shown = cli.ok("identity", "show", "--ids", created["id"])
    assert shown["properties"] == created["properties"]
    assert [x["name"] for x in cli.ok("identity", "list", "-g", rg)] == [mi]
    cli.ok("identity", "delete", "-g", rg, "-n", mi)
    cli.fail("identity", "show", "-g", rg, "-n", mi, rc=3, err="ResourceNotFound: ")
    cli.fail("identity", "create", "-g", new_name("rg"), "-n", mi, rc=3,
             err="ResourceGroupNotFound: ")


# --- keyvault -----------------------------------------------------------------------------------

def test_keyvault(cli, cmk):
    rg, kv = cmk["rg"], new_name("kv")
    v = cli.ok("keyvault", "create", "-g", rg, "-n", kv, "--retention-days", "7")
    p = v["properties"]
    assert p["vaultUri"].startswith(f"https://{kv}.vault.localhost:")
    assert p["enableSoftDelete"] is True and p["softDeleteRetentionInDays"] == 7
    # az grants the caller every key permission
    assert p["accessPolicies"][0]["permissions"]["keys"] == ["all"]
    assert kv in [x["name"] for x in cli.ok("keyvault", "list", "-g", rg)]
    assert cli.ok("keyvault", "show", "-g", rg, "-n", kv)["name"] == kv

    # set-policy replaces the principal's key permissions; delete-policy removes them
    pol = cli.ok("keyvault", "set-policy", "-g", rg, "-n", kv, "--object-id", cmk["oid"],
                 "--key-permissions", "get", "wrapKey", "--query", ".properties.accessPolicies")
    assert [x["permissions"]["keys"] for x in pol if x["objectId"] == cmk["oid"]] == \
        [["get", "wrapKey"]]
    pol = cli.ok("keyvault", "set-policy", "-g", rg, "-n", kv, "--object-id", cmk["oid"],
                 "--key-permissions", "unwrapKey", "--query", ".properties.accessPolicies")
    assert [x["permissions"]["keys"] for x in pol if x["objectId"] == cmk["oid"]] == \
        [["unwrapKey"]]
    pol = cli.ok("keyvault", "delete-policy", "-g", rg, "-n", kv, "--object-id", cmk["oid"],
                 "--query", ".properties.accessPolicies")
    assert cmk["oid"] not in [x["objectId"] for x in pol]
    cli.fail("keyvault", "delete-policy", "-g", rg, "-n", kv, "--object-id", cmk["oid"], rc=3,
             err="no access policy")

    # soft delete, recover, delete again, purge
    cli.ok("keyvault", "delete", "-g", rg, "-n", kv)
    assert kv in [x["name"] for x in cli.ok("keyvault", "list-deleted")]
    cli.fail("keyvault", "create", "-g", rg, "-n", kv, err="ERROR: ")
    assert cli.ok("keyvault", "recover", "-n", kv)["name"] == kv
    cli.ok("keyvault", "delete", "-g", rg, "-n", kv)
    cli.ok("keyvault", "purge", "-n", kv)
    assert kv not in [x["name"] for x in cli.ok("keyvault", "list-deleted")]
    cli.fail("keyvault", "recover", "-n", kv, rc=3, err="not found")

    # purge protection refuses the purge
    kv2 = new_name("kv")
    cli.ok("keyvault", "create", "-g", rg, "-n", kv2, "--enable-purge-protection", "true")
    cli.ok("keyvault", "delete", "-g", rg, "-n", kv2)
    cli.fail("keyvault", "purge", "-n", kv2, err="ERROR: ")
    cli.fail("keyvault", "create", "-g", rg, "-n", "x", err="VaultNameNotValid: ")


# --- key (data plane) ---------------------------------------------------------------------------

def test_key_lifecycle(cli, cmk, tmp_path):
    rg, kv = cmk["rg"], new_name("kv")
    cli.ok("keyvault", "create", "-g", rg, "-n", kv)  # no purge protection: purge works
    k = cli.ok("key", "create", "--vault-name", kv, "-n", "k1", "--size", "3072",
               "--ops", "wrapKey", "unwrapKey", "--tags", "use=cmk")
    kid = k["key"]["kid"]
    assert k["key"]["kty"] == "RSA" and k["tags"] == {"use": "cmk"}
    assert sorted(k["key"]["key_ops"]) == ["unwrapKey", "wrapKey"]
    assert cli.ok("key", "show", "--id", kid)["key"]["kid"] == kid
    assert cli.ok("key", "show", "--vault-name", kv, "-n", "k1",
                  "--version", kid.rsplit("/", 1)[1])["key"]["kid"] == kid
    ec = cli.ok("key", "create", "--vault-name", kv, "-n", "e1", "--kty", "EC", "--curve", "P-384")
    assert ec["key"]["crv"] == "P-384"
    listed = [x["kid"] for x in cli.ok("key", "list", "--vault-name", kv)]
    assert sorted(listed) == sorted([kid.rsplit("/", 1)[0], ec["key"]["kid"].rsplit("/", 1)[0]])

    # wrap / unwrap: the unwrapped value is shown only when asked for
    w = cli.ok("key", "wrap", "--id", kid, "--value", "c2VjcmV0LWRlaw")
    assert w["kid"] == kid and w["value"] != "c2VjcmV0LWRlaw"
    r = cli.run("key", "unwrap", "--id", kid, "--value", w["value"])
    assert r.returncode == 0 and "c2VjcmV0LWRlaw" not in r.stdout
    out = json.loads(r.stdout)
    assert out["bytes"] == 10 and len(out["sha256"]) == 64
    assert cli.raw("key", "unwrap", "--id", kid, "--value", w["value"], "--show-value",
                   "--query", ".value") == "c2VjcmV0LWRlaw"
    f = tmp_path / "dek"
    cli.ok("key", "unwrap", "--id", kid, "--value", w["value"], "--out-file", str(f))
    assert f.read_text() == "c2VjcmV0LWRlaw" and stat.S_IMODE(os.stat(f).st_mode) == 0o600
    vf = tmp_path / "wrapped"
    vf.write_text(w["value"] + "\n")
    cli.ok("key", "unwrap", "--id", kid, "--value-file", str(vf))
    cli.fail("key", "unwrap", "--id", kid, "--value", "bm90LXdyYXBwZWQ", err="ERROR: ")
    cli.fail("key", "wrap", "--id", kid, rc=2, err="--value")

    # attributes: disable -> KeyDisabled; expiry; enable again
    a = cli.ok("key", "set-attributes", "--id", kid, "--enabled", "false",
               "--expires", "2040-01-01T00:00:00Z", "--query", ".attributes")
    assert a["enabled"] is False and a["exp"] == 2208988800
    cli.fail("key", "wrap", "--id", kid, "--value", "c2VjcmV0LWRlaw", err="KeyDisabled")
    cli.ok("key", "set-attributes", "--vault-name", kv, "-n", "k1", "--enabled", "true")
    cli.fail("key", "set-attributes", "--id", kid, "--expires", "someday", rc=2,
             err="not a date")

    # rotate adds a version
    new = cli.raw("key", "rotate", "--vault-name", kv, "-n", "k1", "--query", ".key.kid")
    assert new != kid
    assert len(cli.ok("key", "list-versions", "--vault-name", kv, "-n", "k1")) == 2

    # delete, recover, delete, purge
    assert cli.ok("key", "delete", "--vault-name", kv, "-n", "k1")["recoveryId"].endswith(
        "/deletedkeys/k1")
    cli.fail("key", "show", "--vault-name", kv, "-n", "k1", rc=3, err="KeyNotFound: ")
    deleted = cli.ok("key", "list-deleted", "--vault-name", kv)
    assert [x["kid"].rsplit("/", 1)[1] for x in deleted] == ["k1"]
    assert cli.ok("key", "recover", "--vault-name", kv, "-n", "k1")["key"]["kid"] == new
    cli.fail("key", "purge", "--vault-name", kv, "-n", "k1", rc=3, err="KeyNotFound: ")
    cli.ok("key", "delete", "--vault-name", kv, "-n", "k1")
    assert cli.ok("key", "purge", "--vault-name", kv, "-n", "k1") is None
    cli.fail("key", "recover", "--vault-name", kv, "-n", "k1", rc=3, err="KeyNotFound: ")
    cli.fail("key", "create", "--vault-name", kv, "-n", "bad", "--kty", "RSA", "--size", "1000",
             err="ERROR: ")
    cli.fail("key", "show", "--id", "not-a-kid", rc=2, err="--id takes a key identifier")


def test_key_import(cli, cmk, tmp_path):
    pem = tmp_path / "k.pem"
    r = subprocess.run(["openssl", "genrsa", "-out", str(pem), "2048"], capture_output=True)
    if r.returncode != 0:
        pytest.skip("openssl cannot generate a test key here")
    k = cli.ok("key", "import", "--vault-name", cmk["kv"], "-n", "from-pem", "--pem-file", str(pem))
    assert k["key"]["kty"] == "RSA" and "d" not in k["key"]  # private parts never come back
    w = cli.ok("key", "wrap", "--id", k["key"]["kid"], "--value", "AAAA")
    assert cli.raw("key", "unwrap", "--id", k["key"]["kid"], "--value", w["value"],
                   "--show-value", "--query", ".value") == "AAAA"
    # a JWK with its private parts (from the PEM, through the cryptography package if present)
    crypto = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    import base64

    key = crypto.load_pem_private_key(pem.read_bytes(), password=None)
    nums = key.private_numbers()

    def b64(i):
        return base64.urlsafe_b64encode(i.to_bytes((i.bit_length() + 7) // 8, "big")) \
            .rstrip(b"=").decode()
    jwk = {"kty": "RSA", "n": b64(nums.public_numbers.n), "e": b64(nums.public_numbers.e),
           "d": b64(nums.d), "p": b64(nums.p), "q": b64(nums.q), "dp": b64(nums.dmp1),
           "dq": b64(nums.dmq1), "qi": b64(nums.iqmp)}
    jf = tmp_path / "k.jwk"
    jf.write_text(json.dumps(jwk))
    j = cli.ok("key", "import", "--vault-name", cmk["kv"], "-n", "from-jwk", "--jwk-file", str(jf))
    assert j["key"]["n"] == jwk["n"]
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    cli.fail("key", "import", "--vault-name", cmk["kv"], "-n", "bad", "--pem-file", str(bad),
             err="BadParameter: ")
    cli.fail("key", "import", "--vault-name", cmk["kv"], "-n", "bad", rc=2,
             err="--pem-file or --jwk-file")


# --- cluster, data, explain, health, lineage, settle --------------------------------------------

def test_cluster_cmk_revoke_recover_restore_replica(cli, cmk):
    rg, kv, kid, oid = cmk["rg"], cmk["kv"], cmk["kid"], cmk["oid"]
    cl = new_name("cl")
    c = cli.ok("cluster", "create", "-g", rg, "-n", cl, "--key-uri", kid, "--identity", cmk["mi"],
               "--password", SP_PASSWORD)
    assert c["properties"]["state"] == "Ready" and c["properties"]["provisioningState"] == \
        "Succeeded"
    enc = c["properties"]["dataEncryption"]
    assert enc["type"] == "AzureKeyVault" and enc["primaryKeyUri"] == kid
    assert enc["primaryUserAssignedIdentityId"] == arm_id(
        rg, "Microsoft.ManagedIdentity/userAssignedIdentities", cmk["mi"])
    assert SP_PASSWORD not in json.dumps(c)
    assert cli.ok("cluster", "show", "--ids", c["id"])["name"] == cl
    assert cl in [x["name"] for x in cli.ok("cluster", "list", "-g", rg)]
    assert cl in [x["name"] for x in cli.ok("cluster", "list")]

    row = cli.ok("data", "put", "-g", rg, "--cluster", cl, "--key", "order-1",
                 "--value", '{"item":"widget","qty":3}')
    assert row["value"] == {"item": "widget", "qty": 3}
    cli.ok("data", "put", "--id", c["id"], "--key", "note", "--value", "plain text")
    assert cli.ok("data", "get", "-g", rg, "--cluster", cl, "--key", "note")["value"] == \
        "plain text"
    assert sorted(x["key"] for x in cli.ok("data", "list", "--id", c["id"])["value"]) == \
        ["note", "order-1"]
    cli.ok("data", "delete", "--id", c["id"], "--key", "note")
    cli.fail("data", "get", "--id", c["id"], "--key", "note", rc=3, err="No row has the key")
    assert cli.ok("explain", "-g", rg, "--cluster", cl)["accessible"] is True
    assert cli.raw("health", "--id", c["id"], "--query", ".properties.availabilityState") == \
        "Available"

    # revoke: the identity loses its permissions
    cli.ok("keyvault", "delete-policy", "-g", rg, "-n", kv, "--object-id", oid)
    assert cli.ok("settle")["settled"] is True
    assert cli.raw("cluster", "show", "-g", rg, "-n", cl, "--query", ".properties.state") == \
        "Inaccessible"
    e = cli.ok("explain", "--id", c["id"])
    assert e["accessible"] is False and e["reasonCode"]
    cli.fail("data", "get", "--id", c["id"], "--key", "order-1", err="08006")
    assert cli.raw("health", "-g", rg, "--cluster", cl,
                   "--query", ".properties.availabilityState") == "Unavailable"
    hist = cli.ok("health", "--id", c["id"], "--history")
    assert isinstance(hist, list) and hist[0]["properties"]["availabilityState"] == "Unavailable"
    events = cli.ok("activity-log", "-g", rg)
    assert any((x.get("description") or "").startswith("Access") for x in events)
    assert len(cli.ok("activity-log", "--resource-id", c["id"], "--max-events", "1")) == 1

    # grant back: Ready again
    cli.ok("keyvault", "set-policy", "-g", rg, "-n", kv, "--object-id", oid,
           "--key-permissions", "get", "wrapKey", "unwrapKey")
    cli.ok("settle")
    assert cli.raw("cluster", "show", "-g", rg, "-n", cl, "--query", ".properties.state") == "Ready"
    assert cli.ok("data", "get", "--id", c["id"], "--key", "order-1")["value"]["qty"] == 3

    # point-in-time restores: keep, service-managed, another key
    keep = cli.ok("cluster", "restore", "-g", rg, "-n", new_name("cl"), "--source", cl)
    assert keep["properties"]["dataEncryption"] == enc
    svc = cli.ok("cluster", "restore", "-g", rg, "-n", new_name("cl"), "--source", c["id"],
                 "--encryption", "service")
    assert svc["properties"]["dataEncryption"] == {"type": "SystemManaged"}
    assert [x["key"] for x in cli.ok("data", "list", "--id", svc["id"])["value"]] == ["order-1"]
    kid2 = cli.raw("key", "create", "--vault-name", kv, "-n", "cmk2", "--query", ".key.kid")
    other = cli.ok("cluster", "restore", "-g", rg, "-n", new_name("cl"), "--source", cl,
                   "--encryption", kid2)
    assert other["properties"]["dataEncryption"]["primaryKeyUri"] == kid2
    assert other["properties"]["state"] == "Ready"
    cli.fail("cluster", "restore", "-g", rg, "-n", new_name("cl"), "--source", cl,
             "--time", "2000-01-01T00:00:00Z", err="ERROR: ")
    cli.fail("cluster", "restore", "-g", rg, "-n", new_name("cl"), "--source", cl,
             "--encryption", "bogus", rc=2, err="--encryption")
    cli.fail("cluster", "restore", "-g", rg, "-n", new_name("cl"), "--source", new_name("cl"),
             rc=3, err="ResourceNotFound: ")

    # replica, lineage, promote
    rep = new_name("cl")
    r = cli.ok("cluster", "replica", "-g", rg, "-n", rep, "--source", cl)
    assert r["properties"]["dataEncryption"] == enc
    lin = cli.ok("lineage", "--key-id", kid)["value"]
    assert any(x["resourceId"].endswith("/" + rep) and x.get("relation") == "replica"
               for x in lin)
    assert cli.ok("lineage", "-g", rg, "--cluster", cl)["value"]
    cli.fail("data", "put", "--id", r["id"], "--key", "x", "--value", "1", err="read-only")
    cli.fail("cluster", "replica", "-g", rg, "-n", new_name("cl"), "--source", cl,
             "--encryption", "service", rc=2, err="inherits")
    p = cli.ok("cluster", "promote", "-g", rg, "-n", rep)
    assert p["name"] == rep
    cli.ok("data", "put", "--id", r["id"], "--key", "x", "--value", "1")

    # delete
    assert cli.ok("cluster", "delete", "--ids", svc["id"]) is None
    cli.fail("cluster", "show", "--ids", svc["id"], rc=3, err="ResourceNotFound: ")


def test_cluster_create_failures(cli, cmk):
    rg = cmk["rg"]
    cli.fail("cluster", "create", "-g", rg, "-n", new_name("cl"), "--key-uri", cmk["kid"], rc=2,
             err="--identity")
    cli.fail("cluster", "create", "-g", rg, "-n", new_name("cl"), "--key-uri",
             "https://example.com/not-a-key", "--identity", cmk["mi"], err="ERROR: ")
    cli.fail("cluster", "create", "-g", rg, "-n", new_name("cl"), "--node-count", "1",
             err="nodeCount")
    cli.fail("cluster", "create", "-g", rg, "-n", new_name("cl"), "--node-count", "x", rc=2)
    # a key the identity may not use: the operation fails, and the CLI says why
    kv = new_name("kv")
    cli.ok("keyvault", "create", "-g", rg, "-n", kv, "--enable-purge-protection", "true")
    kid = cli.raw("key", "create", "--vault-name", kv, "-n", "k", "--query", ".key.kid")
    err = cli.fail("cluster", "create", "-g", rg, "-n", new_name("cl"), "--key-uri", kid,
                   "--identity", cmk["mi"])
    assert err.startswith("ERROR: ") and ": " in err[7:]
    # service-managed, --no-wait returns at once
    name = new_name("cl")
    cli.run("cluster", "create", "-g", rg, "-n", name, "--no-wait")
    cli.ok("cluster", "delete", "-g", rg, "-n", name)


# --- emulator: clock, settle, health, explain failure ---------------------------------------------

def test_clock(cli, start_daemon):
    d = start_daemon()
    c = Cli(d, cli.env["PGCMK_CONFIG_DIR"])
    now = c.ok("clock", "show")["now"]
    assert c.ok("clock", "freeze")["frozen"] is True
    a = c.ok("clock", "advance", "P1D")["now"]
    b = c.ok("clock", "advance", "1h")["now"]
    assert a > now and b > a and b[11:13] != a[11:13]
    assert c.ok("clock", "set", "2035-01-01T00:00:00Z")["now"].startswith("2035-01-01T00:00:00")
    assert c.ok("clock", "resume")["frozen"] is False
    c.fail("clock", "set", "tomorrow-ish", err="InvalidParameter: ")
    c.fail("clock", "spin", rc=2, err="not a clock action")


def test_health_settle_explain(cli, cmk):
    h = cli.ok("health")
    assert h["status"] == "Healthy"
    assert cli.ok("settle", "--timeout", "5")["settled"] is True
    cli.fail("settle", "--timeout", "soon", rc=2)
    cli.fail("explain", "--id", arm_id(cmk["rg"], "Microsoft.DBforPostgreSQL/serverGroupsv2",
                                       new_name("cl")), rc=3, err="ERROR: ")
    cli.fail("health", "--id", "/subscriptions/x", err="ERROR: ")
    cli.fail("activity-log", "--start-time", "not-a-time", err="ERROR: ")
    cli.fail("lineage", "--key-id", "nope", err="ERROR: ")


def test_no_secret_printed_in_debug(cli, cmk):
    r = cli.run("--debug", "cluster", "create", "-g", cmk["rg"], "-n", new_name("cl"),
                "--password", SP_PASSWORD)
    assert r.returncode == 0, r.stderr
    assert "pgcmk: PUT https://" in r.stderr
    for secret in (SP_PASSWORD, "pgcmk-admin-secret", "eyJ"):
        assert secret not in r.stdout + r.stderr, secret


# --- server (single server) ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def servers(cli):
    r = cli.d.get(f"/subscriptions/{SUB}/providers/Microsoft.DBforPostgreSQL/servers"
                  "?api-version=2017-12-01")
    if r.status_code != 200:
        pytest.skip("the daemon does not serve Microsoft.DBforPostgreSQL/servers yet "
                    f"({r.status_code} {r.text[:120]})")


def test_server_cmk_restore_replica_revalidate(cli, cmk, servers):
    rg, kv, kid = cmk["rg"], cmk["kv"], cmk["kid"]
    name = new_name("pg")
    s = cli.ok("server", "create", "-g", rg, "-n", name, "--assign-identity",
               "--password", SP_PASSWORD)
    assert s["properties"]["userVisibleState"] == "Ready" and s["identity"]["principalId"]
    assert SP_PASSWORD not in json.dumps(s)
    assert cli.ok("server", "show", "--ids", s["id"])["name"] == name
    assert name in [x["name"] for x in cli.ok("server", "list", "-g", rg)]
    cli.fail("server", "key", "create", "-g", rg, "-s", name, "--kid", kid.rsplit("/", 1)[0],
             rc=2, err="versioned key identifier")
    # the server's identity is not granted yet: the key operation fails
    cli.fail("server", "key", "create", "-g", rg, "-s", name, "--kid", kid, err="ERROR: ")
    cli.ok("keyvault", "set-policy", "-g", rg, "-n", kv, "--object-id",
           s["identity"]["principalId"], "--key-permissions", "get", "wrapKey", "unwrapKey")
    k = cli.ok("server", "key", "create", "-g", rg, "-s", name, "--kid", kid)
    vault, key, ver = kv, "cmk", kid.rsplit("/", 1)[1]
    assert k["name"] == f"{vault}_{key}_{ver}" and k["properties"]["uri"] == kid
    assert [x["name"] for x in cli.ok("server", "key", "list", "-g", rg, "-s", name)] == [k["name"]]
    assert cli.ok("server", "key", "show", "-g", rg, "-s", name, "--kid", kid)["name"] == k["name"]
    assert cli.raw("server", "show", "-g", rg, "-n", name,
                   "--query", ".properties.byokEnforcement") == "Enabled"
    cli.ok("data", "put", "-g", rg, "--server", name, "--key", "a", "--value", '"before"')

    # a restore starts Inaccessible without an identity; revalidation creates it and fails,
    # grant, revalidate -> Ready (seed 002)
    rn = new_name("pg")
    r = cli.ok("server", "restore", "-g", rg, "-n", rn, "--source", name)
    assert r["properties"]["userVisibleState"] == "Inaccessible"
    cli.fail("server", "key", "create", "-g", rg, "-s", rn, "--kid", kid,
             err="AzureKeyVaultIdentityRequired: ")
    pid = cli.raw("server", "show", "-g", rg, "-n", rn, "--query", ".identity.principalId")
    cli.ok("keyvault", "set-policy", "-g", rg, "-n", kv, "--object-id", pid,
           "--key-permissions", "get", "wrapKey", "unwrapKey")
    cli.ok("server", "key", "create", "-g", rg, "-s", rn, "--kid", kid)
    assert cli.raw("server", "show", "-g", rg, "-n", rn,
                   "--query", ".properties.userVisibleState") == "Ready"
    assert cli.ok("data", "get", "-g", rg, "--server", rn, "--key", "a")["value"] == "before"

    rep = new_name("pg")
    r = cli.ok("server", "replica", "create", "-g", rg, "-n", rep, "--source", name)
    assert r["properties"]["replicationRole"] == "Replica"
    assert [x["name"] for x in cli.ok("server", "replica", "list", "-g", rg, "-n", name)] == [rep]
    cli.fail("server", "key", "delete", "-g", rg, "-s", name, "--kid", kid,
             err="DataEncryptionUpdateNotSupported")
    cli.fail("server", "restore", "-g", rg, "-n", new_name("pg"), "--source", name,
             "--time", "2000-01-01T00:00:00Z", err="ERROR: ")
    cli.ok("server", "delete", "-g", rg, "-n", rep)
    cli.fail("server", "show", "-g", rg, "-n", rep, rc=3, err="ResourceNotFound: ")


# --- deployment (ARM templates) -----------------------------------------------------------------

TEMPLATE = """{
  // JSON with comments, posted as written
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {"miName": {"type": "string"}},
  "resources": [
    {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
     "name": "[parameters('miName')]", "location": "[resourceGroup().location]"}
  ],
  "outputs": {"principalId": {"type": "string", "value":
    "[reference(parameters('miName')).principalId]"}}
} // a trailing comment"""


@pytest.fixture(scope="module")
def deployments(cli, cmk):
    r = cli.d.get(f"/subscriptions/{SUB}/resourcegroups/{cmk['rg']}/providers/"
                  "Microsoft.Resources/deployments?api-version=2021-04-01")
    if r.status_code != 200:
        pytest.skip("the daemon does not serve Microsoft.Resources/deployments yet "
                    f"({r.status_code} {r.text[:120]})")


def test_deployment(cli, cmk, deployments, tmp_path):
    rg = cmk["rg"]
    f = tmp_path / "mi.jsonc"
    f.write_text(TEMPLATE)
    mi = new_name("mi")
    dep = cli.ok("deployment", "create", "-g", rg, "-n", "dep1", "--template-file", str(f),
                 "--parameters", f"miName={mi}")
    assert dep["properties"]["provisioningState"] == "Succeeded"
    assert dep["properties"]["outputs"]["principalId"]["value"]
    assert cli.ok("identity", "show", "-g", rg, "-n", mi)["name"] == mi
    assert cli.ok("deployment", "show", "-g", rg, "-n", "dep1")["name"] == "dep1"
    assert "dep1" in [x["name"] for x in cli.ok("deployment", "list", "-g", rg)]
    ops = cli.ok("deployment", "operations", "-g", rg, "-n", "dep1")
    assert any(o["properties"].get("targetResource", {}).get("resourceName") == mi for o in ops)
    pf = tmp_path / "params.json"
    pf.write_text(json.dumps({"parameters": {"miName": {"value": new_name("mi")}}}))
    cli.ok("deployment", "create", "-g", rg, "-n", "dep2", "--template-file", str(f),
           "--parameters", f"@{pf}")
    bad = tmp_path / "bad.json"
    bad.write_text('{"resources": [ }')
    cli.fail("deployment", "create", "-g", rg, "-n", "dep3", "--template-file", str(bad),
             err="ERROR: ")
    cli.fail("deployment", "create", "-g", rg, "--template-file", str(tmp_path / "none.json"),
             rc=2, err="cannot read")
    cli.fail("deployment", "show", "-g", rg, "-n", "nope", rc=3, err="ERROR: ")
