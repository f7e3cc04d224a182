"""cli/pgcmk's `kes` commands (the kes CLI of seed 004) against a real pgcmkd with its Vault listener:
API keys and identities (the published key -> identity pairs of key-providers.md 5.3, `identity new`
with and without --key/--cert, `identity of` a certificate), the seed's steps (K/V engine, AppRole,
config.yml with ${VAR}s, `server create`, `status -k`, `key create|dek|decrypt|ls|info|rm`), a
policy that denies, the audit stream, and kes's errors as kes prints them (`Error: ...`, exit 1;
usage errors exit 2). Output on a pipe is JSON, as kes prints it there."""
import base64
import hashlib
import json
import os
import select
import stat
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

from clitools import CLI, Cli


# key-providers.md 5.3: KES's own test keys and their identities
PUBLISHED = [("kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs",
              "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"),
             ("kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc",
              "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22")]
ADMIN_KEY, ADMIN_ID = PUBLISHED[1]

V1_POLICY = 'path "kv/*" {\n   capabilities = [ "create", "read", "delete", "list" ]\n}\n'

CONFIG = """address: 127.0.0.1:0
admin:
  identity: ${ROOT_IDENTITY}
tls:
  key: server.key
  cert: server.cert
policy:
  my-app:
    allow:
    - /v1/key/generate/my-app*
    - /v1/key/decrypt/my-app*
    - /v1/key/create/my-app*
    deny:
    - /v1/key/generate/my-app-internal*
    identities:
    - ${APP_IDENTITY}
keystore:
  vault:
    endpoint: ${VAULT_ADDR}
    version: v1
    engine: kv
    prefix: clitest
    approle:
      id: ${APPROLE_ID}
      secret: ${APPROLE_SECRET}
    tls:
      ca: ${VAULT_CACERT}
"""


def new_identity(cli, *args, cwd=None):
    out = cli.out("kes", "identity", "new", *args, cwd=cwd)
    lines = [ln.strip() for ln in out.splitlines()]
    key = lines[lines.index("Your API key:") + 2]
    ident = lines[lines.index("Your Identity:") + 2]
    return key, ident, out


@pytest.fixture(scope="module")
def cli(daemon, tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("kescli"))
    return Cli(daemon, os.path.join(tmp, "cfg"), drop=("PGCMK", "VAULT_", "KES_", "SSL_CERT"), cwd=tmp, TMPDIR=tmp)


# ---- identities and API keys (no server needed) ----------------------------------------------

@pytest.mark.parametrize("key,ident", PUBLISHED)
def test_identity_of_the_published_api_keys(cli, key, ident):
    assert cli.out("kes", "identity", "of", key) == ident   # on a pipe: the identity alone


def test_identity_new_makes_an_api_key_and_its_identity(cli):
    key, ident, out = new_identity(cli)
    assert key.startswith("kes:v1:") and len(ident) == 64
    raw = base64.b64decode(key[len("kes:v1:"):], validate=True)
    assert len(raw) == 33 and raw[0] == 0
    pub = ed25519.Ed25519PrivateKey.from_private_bytes(raw[1:]).public_key()
    spki = pub.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert hashlib.sha256(spki).hexdigest() == ident
    assert "This is the only time it is shown. Keep it secret and secure!" in out
    assert f"pgcmk kes identity of {key}" in out
    assert cli.out("kes", "identity", "of", key) == ident
    key2, ident2, _ = new_identity(cli)
    assert key2 != key and ident2 != ident


def test_identity_new_with_key_and_cert_files(cli, tmp_path):
    key, ident, out = new_identity(cli, "--key", "server.key", "--cert", "server.cert",
                                   "--ip", "127.0.0.1", "--dns", "localhost", cwd=str(tmp_path))
    assert "The generated TLS certificate is stored at: server.cert" in out
    k = tmp_path / "server.key"
    assert stat.S_IMODE(k.stat().st_mode) == 0o600
    priv = load_pem_private_key(k.read_bytes(), None)
    assert isinstance(priv, ed25519.Ed25519PrivateKey)
    cert = x509.load_pem_x509_certificate((tmp_path / "server.cert").read_bytes())
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == ident
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.ExtendedKeyUsageOID.CLIENT_AUTH in eku and x509.ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cli.out("kes", "identity", "of", str(tmp_path / "server.cert")) == ident
    assert cli.out("kes", "identity", "of", key) == ident
    # kes refuses to overwrite without --force, and a subject names the certificate
    cli.fail("kes", "identity", "new", "--key", "server.key", "--cert", "server.cert", cwd=str(tmp_path),
             err="Error: private key already exists. Use --force to overwrite it")
    _, ident3, _ = new_identity(cli, "--key", "server.key", "--cert", "server.cert", "-f", "my-server",
                                cwd=str(tmp_path))
    cert = x509.load_pem_x509_certificate((tmp_path / "server.cert").read_bytes())
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "my-server"
    assert cli.out("kes", "identity", "of", str(tmp_path / "server.cert")) == ident3


def test_identity_errors_as_kes_prints_them(cli, tmp_path):
    cli.fail("kes", "identity", "of", "kes:v1:AAAA", err="Error: kes: invalid API key: invalid length")
    bad_type = "kes:v1:" + base64.b64encode(b"\x01" + bytes(32)).decode()
    cli.fail("kes", "identity", "of", bad_type, err="Error: kes: invalid API key: unsupported type")
    cli.fail("kes", "identity", "of", "kes:v1:not base64!", err="Error: illegal base64 data")
    cli.fail("kes", "identity", "of", err="Error: no API key or certificate specified")
    cli.fail("kes", "identity", "of", str(tmp_path / "missing.crt"), err="no such file or directory")
    cli.fail("kes", "identity", "new", "--ip", "127.0.0.1",
             err="Error: '--ip' requires a private key and certificate file")
    cli.fail("kes", "identity", "new", "--key", "x.key",
             err="Error: private key file specified but no certificate file. Set the '--cert' flag")
    cli.fail("kes", "nonsense", rc=2, err="is not a kes command")
    cli.fail("kes", "key", "create", "-k", rc=2, err="Error: no key name specified")


def test_client_credentials_from_the_environment(cli):
    cli.fail("kes", "status", "-k", err="Error: no TLS client certificate. Either set 'KES_API_KEY' or 'KES_CLIENT_CERT'")
    cli.fail("kes", "status", "-k", env={"KES_API_KEY": ADMIN_KEY, "KES_CLIENT_CERT": "x"},
             err="Error: conflicting environment variables: unset either 'KES_API_KEY' or 'KES_CLIENT_CERT'")
    cli.fail("kes", "status", "-k", env={"KES_API_KEY": ADMIN_KEY, "KES_SERVER": "localhost"},
             err="Error: invalid server endpoint 'localhost'")


# ---- against a KES server in the daemon ------------------------------------------------------

@pytest.fixture(scope="module")
def kes(cli, daemon, tmp_path_factory):
    """Seed 004 with K/V v1 (prefix clitest): Vault steps with `pgcmk vault`, then a KES server made
    by `pgcmk kes server create` from a config.yml with ${VAR}s and relative tls files."""
    w = tmp_path_factory.mktemp("kesserver")
    venv = {}
    for line in cli.out("vault", "env").splitlines():
        k, v = line[len("export "):].split("=", 1)
        venv[k] = v.strip("'")
    (w / "kes-policy.hcl").write_text(V1_POLICY)
    env = dict(venv)
    cli.out("vault", "secrets", "enable", "-version=1", "kv", env=env)
    cli.out("vault", "policy", "write", "kes-policy", str(w / "kes-policy.hcl"), env=env)
    cli.out("vault", "auth", "enable", "approle", env=env)
    cli.out("vault", "write", "auth/approle/role/kes-server", "token_num_uses=0", "secret_id_num_uses=0",
            "period=5m", "policies=kes-policy", env=env)
    env["APPROLE_ID"] = cli.out("vault", "read", "-field=role_id", "auth/approle/role/kes-server/role-id", env=env)
    env["APPROLE_SECRET"] = cli.out("vault", "write", "-f", "-field=secret_id",
                                    "auth/approle/role/kes-server/secret-id", env=env)
    new_identity(cli, "--key", "server.key", "--cert", "server.cert", "--ip", "127.0.0.1", "--dns", "localhost",
                 cwd=str(w))
    app_key, app_id, _ = new_identity(cli)
    env.update(ROOT_IDENTITY=ADMIN_ID, APP_IDENTITY=app_id)
    (w / "config.yml").write_text(CONFIG)
    line = cli.out("kes", "server", "create", "--config", "config.yml", "--name", "clikes", env=env, cwd=str(w))
    assert line.startswith("export KES_SERVER=https://127.0.0.1:"), line
    server = line.strip().split("=", 1)[1]
    yield {"server": server, "admin": {"KES_SERVER": server, "KES_API_KEY": ADMIN_KEY},
           "app": {"KES_SERVER": server, "KES_API_KEY": app_key}, "app_id": app_id, "dir": w, "venv": venv,
           "approle": (env["APPROLE_ID"], env["APPROLE_SECRET"])}
    cli.run("kes", "server", "rm", "clikes")


def test_server_create_ls_show(cli, kes, daemon):
    servers = cli.json("kes", "server", "ls")
    mine = [s for s in servers if s["name"] == "clikes"]
    assert mine and mine[0]["port"] == int(kes["server"].rsplit(":", 1)[1])
    show = cli.json("kes", "server", "show", "clikes")
    assert show["admin"] == ADMIN_ID
    assert show["keystore"]["prefix"] == "clitest" and show["keystore"]["version"] in (1, "v1")
    assert "my-app" in [p if isinstance(p, str) else p.get("name") for p in show["policies"]]
    assert cli.out("kes", "server", "env", "clikes").strip() == f"export KES_SERVER={kes['server']}"
    cli.fail("kes", "server", "show", "no-such-server", rc=3)
    cli.fail("kes", "server", "create", rc=2, err="--config")
    # a config KES refuses: the emulator's error, with KES's reason
    (kes["dir"] / "bad.yml").write_text("address: 127.0.0.1:0\nadmin:\n  identity: not-hex\n")
    r = cli.fail("kes", "server", "create", "--config", "bad.yml", cwd=str(kes["dir"]))
    assert r.stderr.startswith("ERROR: KesConfigInvalid: "), r.stderr


def test_status_and_the_seed_dek(cli, kes):
    a = kes["admin"]
    st = cli.json("kes", "status", "-k", env=a)
    assert isinstance(st["version"], str) and st["uptime"] >= 0
    # without -k the self-signed server certificate is refused, as kes refuses it
    r = cli.fail("kes", "status", env=a)
    assert r.stderr.startswith("Error: "), r.stderr
    cli.out("kes", "key", "create", "my-key-1", "-k", env=a)
    dek = cli.json("kes", "key", "dek", "my-key-1", "-k", env=a)
    assert set(dek) == {"plaintext", "ciphertext"}
    assert len(base64.b64decode(dek["plaintext"])) == 32 and len(base64.b64decode(dek["ciphertext"])) == 76
    pt = cli.json("kes", "key", "decrypt", "my-key-1", dek["ciphertext"], "-k", env=a)
    assert pt == {"plaintext": dek["plaintext"]}
    ctx = base64.b64encode(b'{"bucket":"b"}').decode()
    dek2 = cli.json("kes", "key", "dek", "my-key-1", ctx, "-k", env=a)
    assert cli.json("kes", "key", "decrypt", "my-key-1", dek2["ciphertext"], ctx, "-k", env=a)["plaintext"] == dek2["plaintext"]
    cli.fail("kes", "key", "decrypt", "my-key-1", dek2["ciphertext"], "-k", env=a,
             err="Error: failed to decrypt ciphertext: ")
    enc = cli.json("kes", "key", "encrypt", "my-key-1", "hello kes", "-k", env=a)
    back = cli.json("kes", "key", "decrypt", "my-key-1", enc["ciphertext"], "-k", env=a)
    assert base64.b64decode(back["plaintext"]) == b"hello kes"
    assert "my-key-1" in cli.json("kes", "key", "ls", "-k", env=a)
    assert cli.json("kes", "key", "ls", "my-key*", "-k", env=a) == ["my-key-1"]
    info = cli.json("kes", "key", "info", "my-key-1", "-k", env=a)
    assert info["name"] == "my-key-1"
    # the key lives in Vault under the prefix, as KES writes it
    assert "my-key-1" in cli.out("vault", "kv", "list", "kv/clitest", env=kes["venv"])


def test_kes_errors_as_kes_prints_them(cli, kes):
    a = kes["admin"]
    cli.out("kes", "key", "create", "dup-key", "-k", env=a)
    cli.fail("kes", "key", "create", "dup-key", "-k", env=a,
             err='Error: failed to create key "dup-key": key already exists')
    cli.fail("kes", "key", "dek", "no-such-key", "-k", env=a, err="Error: failed to derive key: key does not exist")
    cli.fail("kes", "key", "info", "no-such-key", "-k", env=a, err="Error: failed to describe keys: key does not exist")
    cli.fail("kes", "key", "create", "-bad-name-", "-k", env=a, rc=2)   # a flag to kes, as to pflag
    r = cli.fail("kes", "key", "create", "bad.name", "-k", env=a)   # KES's 400 for a bad name
    assert r.stderr.startswith('Error: failed to create key "bad.name": '), r.stderr
    cli.fail("kes", "key", "decrypt", "dup-key", "!!!", "-k", env=a, rc=2, err="Error: invalid ciphertext")
    cli.out("kes", "key", "rm", "dup-key", "-k", env=a)
    cli.fail("kes", "key", "dek", "dup-key", "-k", env=a, err="key does not exist")
    # a server nobody listens on
    dead = dict(a, KES_SERVER="127.0.0.1:1")
    r = cli.fail("kes", "status", "-k", env=dead)
    assert r.stderr.startswith("Error: ") and "127.0.0.1:1" in r.stderr


def test_policy_allows_and_denies(cli, kes):
    a, app = kes["admin"], kes["app"]
    cli.out("kes", "key", "create", "my-app-1", "my-app-internal-1", "-k", env=a)
    dek = cli.json("kes", "key", "dek", "my-app-1", "-k", env=app)
    assert cli.json("kes", "key", "decrypt", "my-app-1", dek["ciphertext"], "-k", env=app)["plaintext"] == dek["plaintext"]
    cli.fail("kes", "key", "dek", "my-app-internal-1", "-k", env=app,
             err="Error: failed to derive key: not authorized: insufficient permissions")
    cli.fail("kes", "key", "rm", "my-app-1", "-k", env=app,
             err='Error: failed to remove key "my-app-1": not authorized: insufficient permissions')
    assert cli.json("kes", "policy", "ls", "-k", env=a) == ["my-app"]
    assert cli.json("kes", "policy", "info", "my-app", "-k", env=a)["name"] == "my-app"
    cli.fail("kes", "policy", "show", "no-such-policy", "-k", env=a, err='Error: failed to show policy "no-such-policy": ')
    pol = cli.json("kes", "policy", "show", "my-app", "-k", env=a)
    assert "/v1/key/generate/my-app*" in pol["allow"] and "/v1/key/generate/my-app-internal*" in pol["deny"]
    me = cli.json("kes", "identity", "info", "-k", env=app)
    assert me["identity"] == kes["app_id"] and not me.get("admin", False)
    assert kes["app_id"] in cli.json("kes", "identity", "ls", "-k", env=a)
    assert cli.json("kes", "identity", "info", kes["app_id"], "-k", env=a)["policy"] == "my-app"
    # an identity nobody knows
    stranger, _, _ = new_identity(cli)
    cli.fail("kes", "key", "dek", "my-app-1", "-k", env=dict(a, KES_API_KEY=stranger),
             err="not authorized")


def test_audit_log_streams(cli, kes):
    a = kes["admin"]
    env = dict(cli.env, **a)
    p = subprocess.Popen([CLI, "kes", "log", "--audit", "--json", "-k"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, cwd=cli.cwd)
    try:
        got = None
        end = time.monotonic() + 20
        while got is None and time.monotonic() < end:
            cli.out("kes", "key", "ls", "-k", env=a)   # each request is an audit event
            ready, _, _ = select.select([p.stdout], [], [], 0.5)
            if ready:
                line = p.stdout.readline()
                if line.strip():
                    got = json.loads(line)
        assert got is not None, "no audit event streamed"
        assert got["request"]["path"].startswith("/v1/") and got["response"]["code"] in (200, 403, 404)
        assert len(got["request"]["identity"]) == 64
    finally:
        p.kill()
        p.wait()
    # the application's policy does not allow the audit log: kes's error, exit 1
    cli.fail("kes", "log", "--audit", "-k", env=kes["app"],
             err="Error: failed to connect to audit log: not authorized: insufficient permissions")
    cli.fail("kes", "log", "--audit", "--error", "-k", env=a, err="cannot display audit and error logs at the same time")


def test_server_update_restarts_with_a_new_policy(cli, kes):
    """`kes server update` replaces the config (KES reads policies at start) on the same port."""
    a, app, w = kes["admin"], kes["app"], kes["dir"]
    cli.out("kes", "key", "create", "my-app-upd", "-k", env=a)
    cli.json("kes", "key", "dek", "my-app-upd", "-k", env=app)
    env = dict(kes["venv"], ROOT_IDENTITY=ADMIN_ID, APP_IDENTITY=kes["app_id"])
    env["APPROLE_ID"], env["APPROLE_SECRET"] = kes["approle"]
    (w / "config-deny.yml").write_text(CONFIG.replace("- /v1/key/generate/my-app-internal*",
                                                      "- /v1/key/generate/my-app-upd"))
    line = cli.out("kes", "server", "update", "clikes", "--config", "config-deny.yml", env=env, cwd=str(w))
    assert line.strip() == f"export KES_SERVER={kes['server']}"
    cli.fail("kes", "key", "dek", "my-app-upd", "-k", env=app,
             err="Error: failed to derive key: not authorized: insufficient permissions")
    cli.out("kes", "server", "update", "clikes", "--config", "config.yml", env=env, cwd=str(w))
    cli.json("kes", "key", "dek", "my-app-upd", "-k", env=app)
    # PUT of a name not yet taken creates that server, as PUT does
    other = cli.out("kes", "server", "update", "clikes-2", "--config", "config.yml", env=env, cwd=str(w)).strip()
    assert other.startswith("export KES_SERVER=https://127.0.0.1:") and other != f"export KES_SERVER={kes['server']}"
    assert "clikes-2" in [x["name"] for x in cli.json("kes", "server", "ls")]
    cli.out("kes", "server", "rm", "clikes-2")
    cli.fail("kes", "server", "rm", "clikes-2", rc=3)


def test_tde_database_on_a_kes_key(cli, kes):
    """`pgcmk tde db create --provider kes`: the agent as a KES client with KES_API_KEY (never on the
    command line); the key deleted by a KES client makes the database Inaccessible."""
    a = kes["admin"]
    cli.out("kes", "key", "create", "db-key", "-k", env=a)
    db = cli.json("tde", "db", "create", "kesdb", "--provider", "kes", "--key-name", "db-key", "-k", env=a)
    assert db["keyProvider"]["type"] == "kes" and ADMIN_KEY not in json.dumps(db)
    cli.out("settle")
    assert cli.json("tde", "db", "show", "kesdb")["state"] == "Ready"
    cli.out("kes", "key", "rm", "db-key", "-k", env=a)
    cli.out("settle")
    got = cli.json("tde", "db", "show", "kesdb")
    if got["state"] == "Ready":   # the next key check finds it (a decrypt at each check)
        cli.out("clock", "advance", "1h")
        cli.out("settle")
        got = cli.json("tde", "db", "show", "kesdb")
    assert got["state"] == "Inaccessible" and got.get("reasonCode") == "KesKeyNotFound", got
    cli.fail("tde", "db", "create", "kesdb2", "--provider", "kes", "--key-name", "x", env={"KES_SERVER": kes["server"]},
             rc=2, err="KES_API_KEY")
    cli.out("tde", "db", "delete", "kesdb")
