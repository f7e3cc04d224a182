"""Key loss drives a self-managed instance (issue 16, item 5): the server key set by
pg_tde_set_server_key_using_global_key_provider is bound to the reconciler (its pg_databases row
has the instance's id), so deleting the Vault secret or revoking the token, or revoking and
destroying the KMIP object, refuses new logins with pg_tde's words, terminates the sessions, and
(with pg_tde.wal_encrypt = on) makes a restart fail with the extension's FATAL; access back brings
logins back and the server starts again."""
import os
import shutil
import uuid
from contextlib import closing

import hvac
import pytest

from conftest import assert_arm_error, new_name, poll_until
from pgreal import _real_pool, needs_postgres, query
from pgtools import settle

pytestmark = [needs_postgres,
              pytest.mark.skipif(not os.path.exists("/usr/lib/postgresql/15/lib/pg_tde.so"),
                                 reason="pgcmk's pg_tde emulation is not installed: make pgext "
                                        "(as root, postgresql-server-dev-15)")]
psycopg2 = pytest.importorskip("psycopg2", reason="apt-get install python3-psycopg2")

INSTANCES = "/emulator/postgres/instances/"
REFUSED = "failed to retrieve principal key"


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    for pool in _real_pool(str(tmp_path_factory.mktemp("tde-loss"))):
        yield pool.start("--kmip-port", "0")


def files_dir(d):
    """A directory under the daemon's (traversable) data directory the PostgreSQL user reads."""
    p = os.path.join(d.data_dir, "pgtde-files")
    os.makedirs(p, mode=0o755, exist_ok=True)
    os.chmod(p, 0o755)
    return p


def readable_copy(d, src, name):
    dst = os.path.join(files_dir(d), name)
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)
    return dst


def connect(cs):
    conn = psycopg2.connect(cs, connect_timeout=10)
    conn.autocommit = True
    return conn


def new_instance(d):
    r = d.post(INSTANCES.rstrip("/"), json={"name": new_name("tde")})
    assert r.status_code == 201, r.text
    return r.json()


def server_key(d, inst):
    settle(d)
    return d.get(INSTANCES + inst["name"]).json()["pgTde"]["serverKey"]


def wait_key_state(d, inst, state):
    poll_until(lambda: (server_key(d, inst) or {}).get("state") == state, timeout=20,
                      what=f"the server key of {inst['name']} to be {state} "
                           f"(is {server_key(d, inst)})")
    return server_key(d, inst)


def assert_refused(cs):
    with pytest.raises(psycopg2.OperationalError) as e:
        connect(cs)
    assert REFUSED in str(e.value), str(e.value)
    return str(e.value)


def vault_setup(d):
    v = d.get("/emulator/info").json()["vault"]
    client = hvac.Client(url=v["address"], token=v["rootToken"], verify=d.ca)
    m = "kv-" + uuid.uuid4().hex[:8]
    client.sys.enable_secrets_engine(backend_type="kv", path=m, options={"version": "2"})
    client.sys.create_or_update_policy(name="pg-" + m, policy=(
        f'path "{m}/data/*" {{ capabilities = ["create", "read", "update", "list"] }}\n'
        f'path "{m}/metadata/*" {{ capabilities = ["list", "read"] }}\n'
        f'path "sys/mounts/*" {{ capabilities = ["read"] }}\n'))
    tok = client.auth.token.create(policies=["pg-" + m], ttl="720h")["auth"]["client_token"]
    tf = os.path.join(files_dir(d), "token-" + m)
    with open(tf, "w") as f:
        f.write(tok + "\n")
    os.chmod(tf, 0o644)
    return v, client, m, tok, tf


def vault_instance(d, *more_sql):
    """A new instance whose server key "server-key" is in a new KV v2 mount of pgcmk's Vault
    (token in a file); returns (hvac client, mount, token, instance, connection string)."""
    v, client, m, tok, tf = vault_setup(d)
    inst = new_instance(d)
    cs = inst["connectionString"]
    ca = readable_copy(d, d.ca, "ca.pem")
    with closing(connect(cs)) as conn:
        query(conn, "CREATE EXTENSION pg_tde")
        query(conn, "SELECT pg_tde_add_global_key_provider_vault_v2(%s, %s, %s, %s, %s)",
              "vault-prov", v["address"], m, tf, ca)
        query(conn, "SELECT pg_tde_set_server_key_using_global_key_provider(%s, %s)",
              "server-key", "vault-prov")
        for sql in more_sql:
            query(conn, sql)
    return client, m, tok, inst, cs


def test_vault_secret_deleted_refuses_logins_and_the_restart(d):
    client, m, _tok, inst, cs = vault_instance(d, "ALTER SYSTEM SET pg_tde.wal_encrypt = on")
    k = wait_key_state(d, inst, "Ready")
    assert k["name"] == "server-key" and k["provider"]["type"] == "vault-v2", k
    tde = d.get(INSTANCES + inst["name"]).json()["pgTde"]
    assert [(p["scope"], p["name"], p["type"]) for p in tde["providers"]] == \
        [("global", "vault-prov", "vault-v2")], tde
    assert [(x["target"], x["name"]) for x in tde["keys"]] == [("server", "server-key")], tde
    r = d.post(INSTANCES + inst["name"] + "/restart")
    assert r.status_code == 200, r.text
    session = connect(cs)
    # the secret deleted: logins refused in pg_tde's words, the session ended
    client.secrets.kv.v2.delete_latest_version_of_secret(path="server-key", mount_point=m)
    k = wait_key_state(d, inst, "Inaccessible")
    assert k["reasonCode"] == "VaultKeyNotFound", k
    msg = assert_refused(cs)
    assert '"server-key"' in msg and "customer-managed" not in msg
    with pytest.raises(psycopg2.Error):
        query(session, "SELECT 1")
    session.close()
    assert d.get(INSTANCES + inst["name"]).json()["instance"]["logins"] == "refused"
    # a restart is refused while the key is missing: the extension's FATAL
    err = assert_arm_error(d.post(INSTANCES + inst["name"] + "/restart"), 503, "ServerStartFailed")
    assert "FATAL" in err["message"], err
    # access back: the key is Ready, the server starts and lets logins in
    client.secrets.kv.v2.undelete_secret_versions(path="server-key", versions=[1], mount_point=m)
    wait_key_state(d, inst, "Ready")
    r = d.post(INSTANCES + inst["name"] + "/restart")
    assert r.status_code == 200, r.text
    with closing(connect(cs)) as conn:
        assert query(conn, "SHOW pg_tde.wal_encrypt") == [("on",)]
    assert d.delete(INSTANCES + inst["name"]).status_code == 200


def test_vault_token_revoked(d):
    client, _m, tok, inst, cs = vault_instance(d)
    wait_key_state(d, inst, "Ready")
    client.auth.token.revoke(tok)
    k = wait_key_state(d, inst, "Inaccessible")
    assert k["reasonCode"] == "VaultPermissionDenied", k
    assert_refused(cs)
    assert d.delete(INSTANCES + inst["name"]).status_code == 200


def test_kmip_revoke_and_destroy(d):
    c = d.post("/emulator/kmip/clients", json={"name": new_name("jane")})
    assert c.status_code in (200, 201), c.text
    c = c.json()
    f = c["files"]
    cert = readable_copy(d, f["certificate"], c["name"] + "-cert.pem")
    key = readable_copy(d, f["key"], c["name"] + "-key.pem")
    ca = readable_copy(d, f["caCertificate"], c["name"] + "-ca.pem")
    port = d.get("/emulator/info").json()["ports"]["kmip"]
    inst = new_instance(d)
    cs = inst["connectionString"]
    with closing(connect(cs)) as conn:
        query(conn, "CREATE EXTENSION pg_tde")
        query(conn, "SELECT pg_tde_add_global_key_provider_kmip(%s, %s, %s, %s, %s, %s)",
              "kmip-prov", "127.0.0.1", port, cert, key, ca)
        query(conn, "SELECT pg_tde_set_server_key_using_global_key_provider(%s, %s)",
              "kmip-key", "kmip-prov")
    k = wait_key_state(d, inst, "Ready")
    assert k["provider"]["type"] == "kmip", k
    objs = d.get("/emulator/kmip/objects", params={"owner": c["name"]}).json()["value"]
    uid = next(o["uniqueIdentifier"] for o in objs if o.get("name") == "kmip-key")
    d.post(f"/emulator/kmip/objects/{uid}/activate")
    r = d.post(f"/emulator/kmip/objects/{uid}/revoke", json={"reason": "KeyCompromise"})
    assert r.status_code == 200, r.text
    k = wait_key_state(d, inst, "Inaccessible")
    assert k["reasonCode"].startswith("Kmip"), k
    assert_refused(cs)
    assert d.post(f"/emulator/kmip/objects/{uid}/destroy").status_code == 200
    k = wait_key_state(d, inst, "Inaccessible")
    assert k["reasonCode"] in ("KmipKeyDestroyed", "KmipKeyNotFound"), k
    assert d.delete(INSTANCES + inst["name"]).status_code == 200


def test_keyring_file_changed_and_back(d):
    import pwd
    pg = pwd.getpwnam("postgres")
    ring_dir = os.path.join(files_dir(d), "ring-" + uuid.uuid4().hex[:6])
    os.mkdir(ring_dir, 0o755)
    os.chown(ring_dir, pg.pw_uid, pg.pw_gid)  # pg_tde writes the file as the PostgreSQL user
    ring = os.path.join(ring_dir, "keyring.per")
    inst = new_instance(d)
    cs = inst["connectionString"]
    with closing(connect(cs)) as conn:
        query(conn, "CREATE EXTENSION pg_tde")
        query(conn, "SELECT pg_tde_add_global_key_provider_file(%s, %s)", "file-prov", ring)
        query(conn, "SELECT pg_tde_set_server_key_using_global_key_provider(%s, %s)",
              "file-key", "file-prov")
    k = wait_key_state(d, inst, "Ready")
    assert k["provider"]["type"] == "file", k
    original = open(ring, "rb").read()
    with open(ring, "r+b") as f:  # the key replaced under its name
        f.seek(256)
        f.write(b"\x07" * 32)
    d.clock(advance="PT10M")  # no event reaches a file: the periodic check finds it
    k = wait_key_state(d, inst, "Inaccessible")
    assert k["reasonCode"] == "TdeKeyringKeyChanged", k
    assert_refused(cs)
    with open(ring, "wb") as f:
        f.write(original)
    d.clock(advance="PT10M")
    wait_key_state(d, inst, "Ready")
    with closing(connect(cs)) as conn:
        assert query(conn, "SELECT 1") == [(1,)]
    assert d.delete(INSTANCES + inst["name"]).status_code == 200
