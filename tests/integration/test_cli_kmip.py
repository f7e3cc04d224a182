"""cli/pgcmk's `kmip` and `tde` commands against a real pgcmkd with its KMIP listener on a free
port: client credentials written with --out (modes, the combined file's order, the certificate's
CN), client list/show/delete, objects registered by a real KMIP client (PyKMIP) listed, activated,
revoked with a reason and destroyed (KMIP's refusal to destroy an Active object as exit 1), a
self-managed database declared with `tde db create` going Inaccessible when its principal key is
revoked, with `explain` naming the object; and the usage errors (exit 2) of every command."""
import json
import os
import stat
import subprocess

import pytest

from conftest import ROOT, new_name

CLI = os.path.join(ROOT, "cli", "pgcmk")
PEM_CERT = "-----BEGIN CERTIFICATE-----"


class Cli:
    def __init__(self, daemon, config_dir):
        self.d = daemon
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PGCMK")}
        self.env.update(PGCMK_URL=daemon.base, PGCMK_CA=daemon.ca, PGCMK_CONFIG_DIR=config_dir,
                        PGCMK_POLL_INTERVAL="0.05", PGCMK_WAIT_TIMEOUT="60")

    def run(self, *args, env=None, cwd=ROOT, timeout=90):
        e = dict(self.env, **(env or {}))
        return subprocess.run([CLI, *args], capture_output=True, text=True, env=e,
                              timeout=timeout, cwd=cwd)

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"pgcmk {' '.join(args)} -> {r.returncode}\n{r.stderr}{r.stdout}"
        assert r.stderr == "", r.stderr
        return json.loads(r.stdout) if r.stdout.strip() else None

    def fail(self, *args, rc=1, err=None, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == rc, f"pgcmk {' '.join(args)}: expected {rc}, got {r.returncode}\n" \
                                   f"{r.stderr}{r.stdout}"
        assert r.stdout == "", r.stdout
        if err is not None:
            assert err in r.stderr, r.stderr
        return r.stderr


@pytest.fixture(scope="module")
def kd(tmp_path_factory):
    """A daemon of this module with its KMIP listener on a free port."""
    from conftest import DaemonPool
    pool = DaemonPool(str(tmp_path_factory.mktemp("kmip-cli")))
    d = pool.start("--kmip-port", "0")
    yield d
    problems = pool.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def cli(kd, tmp_path_factory):
    return Cli(kd, str(tmp_path_factory.mktemp("cli-config")))


@pytest.fixture(scope="module")
def kmip_port(kd):
    port = kd.get("/emulator/info").json()["ports"]["kmip"]
    assert isinstance(port, int) and port > 0
    return port


def register_key(files, port, name):
    """Registers a 32-byte AES key named name with PyKMIP's client using the CLI's files."""
    from kmip.core import enums
    from kmip.pie import objects
    from kmip.pie.client import ProxyKmipClient

    c = ProxyKmipClient(hostname="127.0.0.1", port=port, cert=files["certificate"],
                        key=files["key"], ca=files["caCertificate"], config_file="/dev/null")
    with c:
        return c.register(objects.SymmetricKey(
            enums.CryptographicAlgorithm.AES, 256, os.urandom(32),
            masks=[enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT],
            name=name))


@pytest.fixture(scope="module")
def client(cli, tmp_path_factory):
    name = new_name("jane")
    out = tmp_path_factory.mktemp("creds")
    r = cli.ok("kmip", "client", "create", "--name", name, "--out", str(out))
    return {"name": name, "dir": str(out), "files": r["files"], "answer": r}


# ---- no daemon needed --------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["kmip", "--help"], ["kmip", "-h"], ["kmip"], ["tde", "--help"],
                                  ["tde", "db", "--help"], ["kmip", "client", "create", "--help"]])
def test_help(args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGCMK")}
    env["PGCMK_URL"] = "https://localhost:1"
    r = subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Usage: pgcmk"), r.stdout
    assert r.stderr == ""


def test_main_help_lists_kmip_and_tde():
    r = subprocess.run([CLI, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    assert "\n  kmip " in r.stdout and "\n  tde " in r.stdout, r.stdout


@pytest.mark.parametrize("args,err", [
    (["kmip", "client", "create"], "--name"),
    (["kmip", "client", "create", "--name", ""], "empty string"),
    (["kmip", "client", "create", "--name="], "empty string"),
    (["kmip", "client", "create", "--name", "a b"], "--name"),
    (["kmip", "client", "create", "--name", "x" * 65], "--name"),
    (["kmip", "client", "create", "--name", "ok", "--out", ""], "empty string"),
    (["kmip", "client", "show"], "takes one name"),
    (["kmip", "client", "show", "a", "b"], "takes one name"),
    (["kmip", "client", "delete", ""], "empty"),
    (["kmip", "client", "frobnicate"], "not a kmip action"),
    (["kmip", "object", "show"], "unique identifier"),
    (["kmip", "object", "list", "--owner", ""], "empty string"),
    (["kmip", "object", "revoke", "1", "--reason", "Bored"], "not a revocation reason"),
    (["kmip", "object", "revoke", "1", "--reason", ""], "empty string"),
    (["kmip", "object", "revoke", "1", "--message", ""], "empty string"),
    (["kmip", "object", "destroy"], "unique identifier"),
    (["kmip", "info", "extra"], "unrecognized"),
    (["kmip", "object", "list", "--bogus"], "unrecognized"),
    (["tde", "db", "create", "db1"], "required"),
    (["tde", "db", "create", "--host", "h", "--port", "1", "--cert", "c", "--key", "k", "--ca", "a",
      "--key-name", "n"], "takes one database name"),
    (["tde", "db", "create", "db1", "--host", "h", "--port", "abc", "--cert", "c", "--key", "k",
      "--ca", "a", "--key-name", "n"], "--port"),
    (["tde", "db", "create", "db1", "--host", "h", "--port", "70000", "--cert", "c", "--key", "k",
      "--ca", "a", "--key-name", "n"], "--port"),
    (["tde", "db", "create", "db1", "--host", "", "--port", "1", "--cert", "c", "--key", "k",
      "--ca", "a", "--key-name", "n"], "empty string"),
    (["tde", "db", "create", "db1", "--host", "h", "--port", "1", "--cert", "c", "--key", "k",
      "--ca", "a", "--key-name", ""], "empty string"),
    (["tde", "db", "show"], "takes one database name"),
    (["tde", "db", "drop", "x"], "not a tde db action"),
    (["tde", "table", "list"], "not a tde command"),
])
def test_usage_errors(args, err):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGCMK")}
    env["PGCMK_URL"] = "https://localhost:1"  # a usage error never reaches the server
    r = subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 2, f"{args}: {r.returncode}\n{r.stderr}{r.stdout}"
    assert r.stdout == ""
    assert err in r.stderr, r.stderr


# ---- against the daemon ---------------------------------------------------------------------------

def test_info(cli, kd, kmip_port):
    r = cli.ok("kmip", "info")
    assert r["port"] == kmip_port
    info = kd.get("/emulator/info").json()["kmip"]
    assert r["serverCertificate"] == info["serverCertificate"]
    assert os.path.isfile(r["serverCertificate"])


def test_client_create_writes_the_files(client, kd):
    name, d, f = client["name"], client["dir"], client["files"]
    assert f == {"certificate": os.path.join(d, f"client_cert_{name}.pem"),
                 "key": os.path.join(d, f"client_key_{name}.pem"),
                 "combined": os.path.join(d, f"client_{name}.pem"),
                 "caCertificate": os.path.join(d, "server_certificate.pem")}
    for k, path in f.items():
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if k in ("key", "combined"):
            assert mode == 0o600, (k, oct(mode))
        else:
            assert mode & 0o077 in (0o044, 0o004, 0o040, 0), (k, oct(mode))
    key = open(f["key"]).read()
    cert = open(f["certificate"]).read()
    assert "PRIVATE KEY-----" in key and PEM_CERT not in key
    assert cert.startswith(PEM_CERT)
    assert open(f["combined"]).read() == key + cert  # key then certificate, as the daemon's file
    ca = open(f["caCertificate"]).read()
    assert ca.count(PEM_CERT) >= 1
    subj = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", f["certificate"]],
                          capture_output=True, text=True, check=True).stdout
    assert f"CN = {name}" in subj or f"CN={name}" in subj, subj
    # the certificate verifies against the CA file the CLI wrote (server cert + pgcmk's CA)
    v = subprocess.run(["openssl", "verify", "-partial_chain", "-CAfile", f["caCertificate"],
                        f["certificate"]], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    a = client["answer"]
    assert a["name"] == name and a["fingerprint"] and a["notAfter"]
    assert "key" not in a and "certificate" not in a  # no key material on stdout


def test_client_create_without_out_prints_the_daemons_files(cli, kd):
    name = new_name("svc")
    r = cli.ok("kmip", "client", "create", "--name", name)
    assert set(r["files"]) == {"certificate", "key", "combined", "caCertificate"}
    assert r["files"]["key"].endswith(f"client_key_{name}.pem")
    assert os.path.isfile(r["files"]["certificate"])
    assert "PRIVATE KEY" not in json.dumps(r)
    # a second create is a new certificate for the same identity
    r2 = cli.ok("kmip", "client", "create", "--name", name)
    assert r2["fingerprint"] != r["fingerprint"]
    shown = cli.ok("kmip", "client", "show", name)
    assert shown["name"] == name and shown["certificates"] == 2
    assert name in [c["name"] for c in cli.ok("kmip", "client", "list")]
    cli.ok("kmip", "client", "delete", name)
    assert name not in [c["name"] for c in cli.ok("kmip", "client", "list")]
    cli.fail("kmip", "client", "show", name, rc=3)
    cli.fail("kmip", "client", "delete", name, rc=3)


def test_object_lifecycle(cli, client, kmip_port):
    key_name = new_name("pg-key")
    uid = register_key(client["files"], kmip_port, key_name)
    mine = cli.ok("kmip", "object", "list", "--owner", client["name"])
    assert [o["uniqueIdentifier"] for o in mine] == [uid]
    assert cli.ok("kmip", "object", "list", "--owner", new_name("nobody")) == []
    o = cli.ok("kmip", "object", "show", uid)
    assert (o["owner"], o["name"], o["state"]) == (client["name"], key_name, "PreActive")
    assert (o["cryptographicAlgorithm"], o["cryptographicLength"]) == ("AES", 256)
    assert cli.ok("kmip", "object", "activate", uid)["state"] == "Active"
    err = cli.fail("kmip", "object", "destroy", uid, rc=1, err="KmipPermissionDenied")
    assert err.startswith("ERROR: ")
    r = cli.ok("kmip", "object", "revoke", uid, "--reason", "cessationofoperation",
               "--message", "rotated out")
    assert r["state"] == "Deactivated"
    assert r["revocationReason"]["code"] == "CessationOfOperation"
    assert r["revocationReason"].get("message") == "rotated out"
    assert cli.ok("kmip", "object", "destroy", uid)["state"].startswith("Destroyed")
    cli.fail("kmip", "object", "show", "no-such-object-9999", rc=3)


def test_revoke_key_compromise(cli, client, kmip_port):
    uid = register_key(client["files"], kmip_port, new_name("leaked"))
    cli.ok("kmip", "object", "activate", uid)
    r = cli.ok("kmip", "object", "revoke", uid, "--reason", "KeyCompromise")
    assert r["state"] == "Compromised"
    assert r["revocationReason"]["code"] == "KeyCompromise"


def test_tde_database_follows_its_principal_key(cli, client, kd, kmip_port, tmp_path):
    f = client["files"]
    key_name = new_name("principal")
    uid = register_key(f, kmip_port, key_name)
    cli.ok("kmip", "object", "activate", uid)
    db = new_name("db")
    # relative paths are made absolute (the daemon reads the files, from its own directory)
    rel = os.path.relpath(f["certificate"], str(tmp_path))
    r = cli.ok("tde", "db", "create", db, "--host", "127.0.0.1", "--port", str(kmip_port),
               "--cert", rel, "--key", f["key"], "--ca", f["caCertificate"], "--key-name", key_name,
               cwd=str(tmp_path))
    assert r["name"] == db and r["id"] == f"/emulator/tde/databases/{db}"
    assert os.path.isabs(r["keyProvider"]["certPath"])
    assert os.path.realpath(r["keyProvider"]["certPath"]) == os.path.realpath(f["certificate"])
    assert r["keyProvider"]["port"] == kmip_port and r["keyProvider"]["type"] == "kmip"
    assert r["principalKey"]["name"] == key_name
    assert r["principalKey"]["uniqueIdentifier"] == uid
    assert r["state"] == "Ready", r
    assert db in [x["name"] for x in cli.ok("tde", "db", "list")]

    cli.ok("kmip", "object", "revoke", uid, "--reason", "KeyCompromise")
    cli.ok("settle")
    shown = cli.ok("tde", "db", "show", db)
    assert shown["state"] == "Inaccessible", shown
    assert shown["reasonCode"] and shown["reason"], shown
    ex = cli.ok("explain", "--id", shown["id"])
    assert ex["accessible"] is False
    text = json.dumps(ex)
    assert uid in text and "Compromised" in text, ex

    cli.ok("tde", "db", "delete", db)
    cli.fail("tde", "db", "show", db, rc=3)
    assert db not in [x["name"] for x in cli.ok("tde", "db", "list")]


def test_api_errors(cli):
    cli.fail("kmip", "object", "activate", "no-such-object-9999", rc=3)
    cli.fail("kmip", "object", "revoke", "no-such-object-9999", rc=3)
    cli.fail("tde", "db", "delete", new_name("nodb"), rc=3)
