"""cli/pgcmk's `vault` commands (and `tde db create --provider vault-v2`) against a real pgcmkd with
its Vault listener on a free port, checked with the real client hvac (/usr/bin/python3): seed 004's
steps (KV v1 policy, AppRole role kes-server, role id, secret id, a login by hvac with them), KV v1
and v2 put/get/list/delete/metadata by the mount's version, check-and-set, token create/lookup/
revoke, seal and unseal, namespaces, VAULT_ADDR/VAULT_TOKEN/VAULT_CACERT instead of pgcmk's info,
Vault's errors as exit 1 (403) and 3 (404), the usage errors (exit 2, empty values included), and
a self-managed database declared on a Vault secret."""
import json
import os

import pytest

from clitools import Cli

hvac = pytest.importorskip("hvac")


V1_POLICY = 'path "kv/*" {\n   capabilities = [ "create", "read", "delete", "list" ]\n}\n'
V2_POLICY = ('path "kv/data/*" {\n   capabilities = [ "create", "read" ]\n}\n'
             'path "kv/metadata/*" {\n   capabilities = [ "list", "delete" ]\n}\n')


def table(text):
    """A `Key Value` table as a dict (the first two lines are the header)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert lines[0].split() == ["Key", "Value"], text
    assert lines[1].split() == ["---", "-----"], text
    out = {}
    for ln in lines[2:]:
        k, _, v = ln.partition("    ")
        out[k.strip()] = v.strip()
    return out


@pytest.fixture(scope="module")
def vd(tmp_path_factory):
    """A daemon of this module with its Vault listener on a free port."""
    from conftest import DaemonPool
    pool = DaemonPool(str(tmp_path_factory.mktemp("vault-cli")))
    d = pool.start("--vault-port", "0")
    yield d
    problems = pool.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def vinfo(vd):
    v = vd.get("/emulator/info").json()["vault"]
    assert v["address"].startswith("https://") and v["rootToken"] and v["unsealKeys"]
    return v


@pytest.fixture(scope="module")
def cli(vd, tmp_path_factory):
    return Cli(vd, str(tmp_path_factory.mktemp("cli-config")))


def ca_path(vd, vinfo):
    ca = vinfo.get("caCertificate") or ""
    return ca if ca and not ca.startswith("-----") else vd.ca


@pytest.fixture(scope="module")
def root(vd, vinfo):
    return hvac.Client(url=vinfo["address"], token=vinfo["rootToken"], verify=ca_path(vd, vinfo))


def test_help_and_main_help(cli):
    assert "vault" in cli.out("--help")
    h = cli.out("vault", "--help")
    for word in ("secrets enable", "policy write", "auth enable", "kv put", "token create", "operator unseal", "env"):
        assert word in h
    assert cli.out("vault", "kv", "get", "-help") == h


def test_status_and_env(cli, vinfo, vd):
    t = table(cli.out("vault", "status"))
    assert t["Sealed"] == "false" and t["Initialized"] == "true" and t["Seal Type"] == "shamir"
    j = cli.json("vault", "status", "-format=json")
    assert j["sealed"] is False and j["t"] >= 1
    lines = cli.out("vault", "env").splitlines()
    assert f"export VAULT_ADDR='{vinfo['address']}'" in lines
    assert f"export VAULT_TOKEN='{vinfo['rootToken']}'" in lines
    ca = [ln for ln in lines if ln.startswith("export VAULT_CACERT='")]
    assert len(ca) == 1 and os.path.isfile(ca[0].split("'")[1])


def test_seed_004_kv_v1_and_approle(cli, root, vinfo, vd, tmp_path):
    pol = tmp_path / "kes-policy.hcl"
    pol.write_text(V1_POLICY)
    assert cli.out("vault", "secrets", "enable", "-version=1", "kv") == \
        "Success! Enabled the kv secrets engine at: kv/\n"
    assert root.sys.list_mounted_secrets_engines()["data"]["kv/"]["options"]["version"] == "1"
    assert cli.out("vault", "policy", "write", "kes-policy", str(pol)) == "Success! Uploaded policy: kes-policy\n"
    assert cli.out("vault", "policy", "read", "kes-policy").rstrip("\n") == V1_POLICY.rstrip("\n")
    assert "kes-policy" in cli.out("vault", "policy", "list").split()
    assert cli.out("vault", "auth", "enable", "approle") == "Success! Enabled approle auth method at: approle/\n"
    assert "approle/" in cli.out("vault", "auth", "list")
    assert cli.json("vault", "auth", "list", "-format=json")["approle/"]["type"] == "approle"
    assert cli.out("vault", "write", "auth/approle/role/kes-server", "token_num_uses=0", "secret_id_num_uses=0",
                   "period=5m") == "Success! Data written to: auth/approle/role/kes-server\n"
    cli.out("vault", "write", "auth/approle/role/kes-server", "policies=kes-policy")
    role = root.read("auth/approle/role/kes-server")["data"]
    assert "kes-policy" in (role.get("token_policies") or role.get("policies"))
    assert role.get("token_period", role.get("period")) == 300
    t = table(cli.out("vault", "read", "auth/approle/role/kes-server/role-id"))
    role_id = cli.out("vault", "read", "-field=role_id", "auth/approle/role/kes-server/role-id")
    assert t["role_id"] == role_id
    secret = table(cli.out("vault", "write", "-f", "auth/approle/role/kes-server/secret-id"))
    assert secret["secret_id"] and secret["secret_id_accessor"]
    # KES logs in with them (hvac) and uses the v1 policy on the v1 mount
    kes = hvac.Client(url=vinfo["address"], verify=ca_path(vd, vinfo))
    kes.auth_approle(role_id, secret["secret_id"])
    look = kes.lookup_token()["data"]
    assert "kes-policy" in look["policies"]
    kes.secrets.kv.v1.create_or_update_secret("my-key", {"bytes": "a2V5"}, mount_point="kv")
    # the CLI reads what KES wrote: v1 by the mount's version
    assert cli.out("vault", "kv", "get", "-field=bytes", "kv/my-key") == "a2V5"
    assert table(cli.out("vault", "kv", "get", "kv/my-key")) == {"bytes": "a2V5"}
    assert cli.out("vault", "kv", "put", "kv/other", "a=1", "b=@" + str(pol)) == "Success! Data written to: kv/other\n"
    assert root.secrets.kv.v1.read_secret("other", mount_point="kv")["data"] == {"a": "1", "b": V1_POLICY.rstrip("\n")}
    assert cli.json("vault", "kv", "list", "-format=json", "kv") == ["my-key", "other"]
    assert "Keys\n----\nmy-key\nother\n" == cli.out("vault", "kv", "list", "kv/")
    cli.out("vault", "kv", "delete", "kv/other")
    cli.fail("vault", "kv", "get", "kv/other", rc=3, err="No value found at kv/other")
    cli.fail("vault", "kv", "metadata", "get", "kv/my-key", rc=1, err="Metadata not supported on KV Version 1")
    # the v2 policy on the v1 mount: permission denied, exit 1 with Vault's text
    pol.write_text(V2_POLICY)
    r = cli.run("vault", "policy", "write", "kes-policy", "-", input=V2_POLICY)
    assert r.returncode == 0, r.stderr
    assert root.sys.read_policy("kes-policy")["data"]["rules"].rstrip("\n") == V2_POLICY.rstrip("\n")
    kes2 = hvac.Client(url=vinfo["address"], verify=ca_path(vd, vinfo))
    kes2.auth_approle(role_id, secret["secret_id"])
    cli.fail("vault", "write", "kv/my-key", "bytes=eA==", env={"VAULT_TOKEN": kes2.token, "VAULT_ADDR": vinfo["address"],
                                                               "VAULT_CACERT": ca_path(vd, vinfo)},
             rc=1, err="Code: 403. Errors: permission denied")
    cli.out("vault", "secrets", "disable", "kv")
    assert "kv/" not in root.sys.list_mounted_secrets_engines()["data"]
    cli.out("vault", "auth", "disable", "approle")
    cli.out("vault", "policy", "delete", "kes-policy")
    assert "kes-policy" not in cli.out("vault", "policy", "list").split()


def test_kv_v2_versions_cas_and_metadata(cli, root):
    assert cli.out("vault", "secrets", "enable", "-version=2", "-path=kv2", "kv") == \
        "Success! Enabled the kv secrets engine at: kv2/\n"
    out = cli.out("vault", "kv", "put", "kv2/app/db", "user=alice", "pass=s3cret")
    assert out.startswith("== Secret Path ==\nkv2/data/app/db\n")
    assert table(out.split("======= Metadata =======\n", 1)[1])["version"] == "1"
    cli.out("vault", "kv", "put", "-cas=1", "kv2/app/db", "user=bob")
    r = cli.fail("vault", "kv", "put", "-cas=1", "kv2/app/db", "user=carol", rc=1, err="Code: 400")
    assert "check-and-set" in r.stderr
    assert root.secrets.kv.v2.read_secret_version("app/db", mount_point="kv2")["data"]["data"] == {"user": "bob"}
    assert cli.out("vault", "kv", "get", "-field=user", "kv2/app/db") == "bob"
    assert cli.json("vault", "kv", "get", "-version=1", "-format=json", "kv2/app/db")["data"]["data"] == \
        {"user": "alice", "pass": "s3cret"}
    full = cli.out("vault", "kv", "get", "kv2/app/db")
    assert "====== Data ======" in full and "bob" in full
    meta = cli.json("vault", "kv", "metadata", "get", "-format=json", "kv2/app/db")["data"]
    assert meta["current_version"] == 2 and sorted(meta["versions"]) == ["1", "2"]
    assert "====== Version 2 ======" in cli.out("vault", "kv", "metadata", "get", "kv2/app/db")
    assert cli.json("vault", "kv", "list", "-format=json", "kv2/app") == ["db"]
    assert cli.json("vault", "kv", "list", "-format=json", "kv2") == ["app/"]
    # soft delete of the latest version, undelete, destroy
    assert cli.out("vault", "kv", "delete", "kv2/app/db") == "Success! Data deleted (if it existed) at: kv2/data/app/db\n"
    cli.fail("vault", "kv", "get", "kv2/app/db", rc=3)
    cli.out("vault", "kv", "undelete", "-versions=2", "kv2/app/db")
    assert cli.out("vault", "kv", "get", "-field=user", "kv2/app/db") == "bob"
    cli.out("vault", "kv", "destroy", "-versions=1", "kv2/app/db")
    assert root.secrets.kv.v2.read_secret_metadata("app/db", mount_point="kv2")["data"]["versions"]["1"]["destroyed"] is True
    cli.out("vault", "kv", "metadata", "delete", "kv2/app/db")
    cli.fail("vault", "kv", "metadata", "get", "kv2/app/db", rc=3)
    # generic read/list/delete on v2 paths
    cli.out("vault", "kv", "put", "kv2/x", "k=v")
    assert cli.out("vault", "read", "-field=data", "kv2/data/x") == '{"k":"v"}'
    assert "x" in cli.out("vault", "list", "kv2/metadata")
    cli.out("vault", "delete", "kv2/metadata/x")
    cli.fail("vault", "read", "kv2/data/x", rc=3)
    j = cli.json("vault", "secrets", "list", "-format=json")
    assert j["kv2/"]["type"] == "kv" and j["kv2/"]["options"]["version"] == "2"
    assert "kv2/" in cli.out("vault", "secrets", "list")
    cli.out("vault", "secrets", "disable", "kv2")


def test_tokens(cli, root, vd, vinfo):
    root.sys.create_or_update_policy("reader", 'path "secret/data/*" { capabilities = ["read"] }')
    t = table(cli.out("vault", "token", "create", "-policy=reader", "-ttl=1h", "-display-name=ci"))
    assert t["token"] and t["token_accessor"] and "reader" in t["token_policies"]
    look = root.lookup_token(t["token"])["data"]
    assert look["accessor"] == t["token_accessor"] and look["display_name"] == "token-ci"
    assert 3500 <= look["ttl"] <= 3600
    j = cli.json("vault", "token", "lookup", "-format=json", "-accessor", t["token_accessor"])
    assert j["data"]["display_name"] == "token-ci" and j["data"]["accessor"] == t["token_accessor"]
    assert cli.json("vault", "token", "lookup", "-format=json", t["token"])["data"]["accessor"] == t["token_accessor"]
    assert cli.json("vault", "token", "lookup", "-format=json")["data"]["policies"] == ["root"]
    tok = cli.out("vault", "token", "create", "-policy=reader", "-use-limit=3", "-field=token")
    assert root.lookup_token(tok)["data"]["num_uses"] == 3
    assert cli.out("vault", "token", "revoke", "-accessor", t["token_accessor"]) == "Success! Revoked token (if it existed)\n"
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=vinfo["address"], token=t["token"], verify=ca_path(vd, vinfo)).lookup_token()
    cli.out("vault", "token", "revoke", tok)
    r = cli.fail("vault", "token", "lookup", tok, rc=1, err="Error looking up token: Code: 4")
    assert "bad token" in r.stderr or "permission denied" in r.stderr, r.stderr


def test_seal_and_unseal(cli, root, vinfo):
    assert cli.out("vault", "operator", "seal") == "Success! Vault is sealed.\n"
    try:
        r = cli.fail("vault", "status", rc=2)  # as vault: 2 while sealed
        assert table(r.stdout)["Sealed"] == "true" and r.stderr == ""
        assert root.sys.read_seal_status()["sealed"] is True
        cli.fail("vault", "kv", "get", "secret/anything", rc=1, err="Vault is sealed")
        cli.fail("vault", "secrets", "list", rc=1, err="Code: 503. Errors: Vault is sealed")
        cli.fail("vault", "operator", "unseal", "AAAA" + vinfo["unsealKeys"][0][4:], rc=1)
    finally:
        t = table(cli.out("vault", "operator", "unseal", vinfo["unsealKeys"][0]))
    assert t["Sealed"] == "false"
    assert root.sys.read_seal_status()["sealed"] is False


def test_namespaces(cli, root, vinfo, vd):
    root.adapter.post("/v1/sys/namespaces/team-a")  # raises on an error answer
    cli.out("vault", "-namespace=team-a", "secrets", "enable", "-version=2", "kv")
    cli.out("vault", "-namespace=team-a", "kv", "put", "kv/k", "v=ns")
    assert cli.out("vault", "kv", "get", "-field=v", "-namespace=team-a", "kv/k") == "ns"
    assert cli.out("vault", "kv", "get", "-field=v", "kv/k", env={"VAULT_NAMESPACE": "team-a"}) == "ns"
    # the root namespace has no kv/ mount: the tree is isolated
    assert "kv/" not in cli.json("vault", "secrets", "list", "-format=json")
    assert "kv/" in cli.json("vault", "-namespace=team-a", "secrets", "list", "-format=json")
    cli.out("vault", "-namespace=team-a", "secrets", "disable", "kv")


def test_vault_env_without_pgcmk(cli, vinfo, vd):
    """With VAULT_ADDR, VAULT_TOKEN and VAULT_CACERT the CLI needs nothing from pgcmk's info."""
    env = {"PGCMK_URL": "https://127.0.0.1:9", "VAULT_ADDR": vinfo["address"], "VAULT_TOKEN": vinfo["rootToken"],
           "VAULT_CACERT": ca_path(vd, vinfo)}
    assert table(cli.out("vault", "status", env=env))["Sealed"] == "false"
    cli.fail("vault", "status", env={"PGCMK_URL": "https://127.0.0.1:9"}, rc=1, err="cannot reach")
    cli.fail("vault", "secrets", "list", env=dict(env, VAULT_TOKEN="hvs.not-a-token"), rc=1,
             err="Code: 403. Errors: permission denied")


def test_tde_database_on_a_vault_secret(cli, root, vd, vinfo, tmp_path):
    root.sys.create_or_update_policy("pg-tde", 'path "secret/data/*" { capabilities = ["create", "read", "update"] }\n'
                                     'path "secret/metadata/*" { capabilities = ["read", "list"] }\n'
                                     'path "sys/mounts/secret" { capabilities = ["read"] }\n')
    tokfile = tmp_path / "pg_tde.token"
    tokfile.write_text(cli.out("vault", "token", "create", "-policy=pg-tde", "-field=token"))
    db = cli.json("tde", "db", "create", "cli-vault", "--provider", "vault-v2", "--url", vinfo["address"],
                  "--mount", "secret", "--token-file", str(tokfile), "--ca", ca_path(vd, vinfo),
                  "--key-name", "cli-key")
    kp = db["keyProvider"]
    assert kp["type"] == "vault-v2" and kp["mountPath"] == "secret" and kp["tokenPath"] == str(tokfile)
    cli.out("settle")
    assert cli.json("tde", "db", "show", "cli-vault")["state"] == "Ready"
    assert cli.json("vault", "kv", "metadata", "get", "-format=json", "secret/cli-key")["data"]["current_version"] == 1
    cli.out("vault", "kv", "metadata", "delete", "secret/cli-key")
    cli.out("settle")
    shown = cli.json("tde", "db", "show", "cli-vault")
    assert shown["state"] == "Inaccessible"
    ex = cli.json("explain", "--id", shown.get("id") or "/emulator/tde/databases/cli-vault")
    assert ex["accessible"] is False and "cli-key" in json.dumps(ex)
    cli.out("tde", "db", "delete", "cli-vault")


@pytest.mark.parametrize("args,err", [
    (["vault", "bogus"], "is not a vault command"),
    (["vault", "secrets", "enable", "-version=3", "kv"], "-version takes 1 or 2"),
    (["vault", "secrets", "enable", "-path=", "kv"], "expected a value, got an empty string"),
    (["vault", "secrets", "enable"], "takes one engine type"),
    (["vault", "-namespace=", "status"], "expected a value, got an empty string"),
    (["vault", "-format=yaml", "status"], "-format takes table or json"),
    (["vault", "policy", "write", "p"], "takes NAME and a FILE"),
    (["vault", "policy", "write", "p", "/nonexistent/x.hcl"], "cannot read the policy file"),
    (["vault", "policy", "read", ""], "takes one NAME"),
    (["vault", "write", "auth/approle/role/r"], "Must supply data or use -force"),
    (["vault", "write", "x/y", "novalue"], "is not a key=value pair"),
    (["vault", "write", "x/y", "=v"], "has an empty key"),
    (["vault", "write", "-bogus", "x"], "flag provided but not defined: -bogus"),
    (["vault", "read"], "takes one PATH"),
    (["vault", "read", "/"], "the path is empty"),
    (["vault", "kv", "get"], "takes MOUNT/PATH"),
    (["vault", "kv", "get", ""], "the path is empty"),
    (["vault", "kv", "frob", "a/b"], None),
    (["vault", "token", "create", "-use-limit=x"], "-use-limit takes a number"),
    (["vault", "token", "create", "-ttl="], "expected a value, got an empty string"),
    (["vault", "token", "revoke"], "takes one TOKEN"),
    (["vault", "operator", "unseal"], "takes one KEY"),
    (["vault", "operator", "unseal", ""], "takes one KEY"),
    (["vault", "operator", "frob"], "is not a vault operator command"),
    (["tde", "db", "create", "x", "--provider", "vault-v3"], "--provider takes kmip, vault-v2 or kes"),
    (["tde", "db", "create", "x", "--provider", "vault-v2", "--url", "https://127.0.0.1:1", "--mount", "",
      "--token-file", "/t", "--key-name", "k"], "expected a value, got an empty string"),
    (["tde", "db", "create", "x", "--provider", "vault-v2", "--url", "https://127.0.0.1:1", "--mount", "secret",
      "--key-name", "k"], "--token-file"),
    (["tde", "db", "create", "x", "--provider", "vault-v2", "--url", "127.0.0.1", "--mount", "secret",
      "--token-file", "/t", "--key-name", "k"], "--url takes"),
    (["tde", "db", "create", "x", "--provider", "vault-v2", "--url", "https://127.0.0.1:1", "--mount", "secret",
      "--token-file", "/t", "--key-name", "k", "--host", "h"], "--host is a KMIP option"),
    (["tde", "db", "create", "x", "--host", "h", "--port", "1", "--cert", "c", "--key", "k", "--ca", "a",
      "--key-name", "n", "--mount", "m"], "--mount is a Vault option"),
])
def test_usage_errors(cli, args, err):
    r = cli.fail(*args, rc=2, err=err)
    assert r.stdout == ""
