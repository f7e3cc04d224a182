"""pgcmkd's pg_tde agent (src/pg/tdeagent.c, include/pgcmk/tdeproto.h) driven over the archive
socket by a process of a real instance, as the extension would: a client program that the
instance runs (COPY ... FROM PROGRAM, as the PostgreSQL user, a descendant of the postmaster)
sends "TDE <slug> <length>" requests. The keys really come from the providers: a keyring file in
pg_tde's own format, pgcmk's KMIP server (client certificate, Register then Locate+Get), pgcmk's
Vault (token file, KV v2), and the real PyKMIP server. Every pg_tde error path is asserted with
its SQLSTATE and text; a process that is not the instance's is refused on the transport. The
second half runs the same through SQL on a self-managed instance with pgcmk's pg_tde emulation.
"""
import base64
import os
import pwd
import shutil
import socket
import struct
import tempfile
import textwrap
import uuid

import pytest

from conftest import new_name
from kmiptools import PYKMIP_SERVER, PyKmipServer, make_pki, pykmip
from pgreal import RealPool, _psycopg2, cmk_server, needs_postgres
from pgtools import explain

pytestmark = needs_postgres

CLIENT = textwrap.dedent("""\
    import socket, sys
    sock, slug, req = sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read()
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(b"TDE %s %d\\n" % (slug.encode(), len(req)) + req)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    print(out.hex())
    """)


def esc(v):
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def unesc(v):
    out, i = [], 0
    while i < len(v):
        if v[i] == "\\":
            out.append({"\\": "\\", "n": "\n", "r": "\r"}[v[i + 1]])
            i += 2
        else:
            out.append(v[i])
            i += 1
    return "".join(out)


def body(**kw):
    return "".join(f"{k}={esc(str(v))}\n" for k, v in kw.items()).encode()


def parse(raw):
    head, _, rest = raw.partition(b"\n")
    if head.startswith(b"ERR "):
        return {"transport": head[4:].decode()}
    assert head.startswith(b"OK "), raw
    assert int(head[3:]) == len(rest), raw
    out = {}
    for line in rest.decode().splitlines():
        k, _, v = line.partition("=")
        if k == "row":
            out.setdefault("rows", []).append(unesc(v).split("\t"))
        else:
            assert k not in out, raw
            out[k] = unesc(v)
    return out


class Inst:
    """The server's instance: its slug, the socket, and a superuser session on its unix socket
    (pgcmk_agent, trust) that runs the client program."""

    def __init__(self, d, rid):
        self.d = d
        inst = explain(d, rid)["dataPlane"]["instance"]
        self.slug, self.data = inst["slug"], inst["dataDirectory"]
        self.sock = os.path.join(d.data_dir, "pg", "run", "agent.sock")
        self.work = tempfile.mkdtemp(prefix="pgcmk-tde-", dir="/tmp")
        os.chmod(self.work, 0o755)
        os.chown(self.work, pg_uid(), pg_gid())  # pg_tde's files are the PostgreSQL user's
        with open(os.path.join(self.work, "client.py"), "w") as f:
            f.write(CLIENT)
        pg = _psycopg2()
        self.conn = pg.connect(host=os.path.join(d.data_dir, "pg", self.slug, "sock"),
                               port=inst["port"], user="pgcmk_agent", dbname="postgres",
                               connect_timeout=10)
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS tde_out(line text)")
            cur.execute("SELECT oid FROM pg_database WHERE datname = 'postgres'")
            self.dboid = cur.fetchone()[0]
        self.n = 0

    def raw(self, data):
        self.n += 1
        req = os.path.join(self.work, f"req-{self.n}")
        with open(req, "wb") as f:
            f.write(data)
        os.chmod(req, 0o644)
        cmd = f"python3 {self.work}/client.py {self.sock} {self.slug} {req}"
        with self.conn.cursor() as cur:
            cur.execute("TRUNCATE tde_out")
            cur.execute("COPY tde_out FROM PROGRAM %s", (cmd,))
            cur.execute("SELECT line FROM tde_out")
            rows = cur.fetchall()
        assert len(rows) == 1, rows
        return parse(bytes.fromhex(rows[0][0]))

    def op(self, op, superuser=1, cipher="aes_128", **kw):
        return self.raw(body(op=op, dboid=self.dboid, dbname="postgres", user="u",
                             superuser=superuser, cipher=cipher, **kw))

    def ok(self, op, **kw):
        a = self.op(op, **kw)
        assert a.get("status") == "ok", a
        return a

    def err(self, op, sqlstate, message, **kw):
        a = self.op(op, **kw)
        assert a.get("status") == "error", a
        assert a["sqlstate"] == sqlstate and a["message"] == message, a
        return a

    def pg_file(self, name, data=b"", mode=0o600):
        """A file of the PostgreSQL user in the work directory."""
        p = os.path.join(self.work, name)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
        os.chown(p, pg_uid(), pg_gid())
        return p

    def close(self):
        self.conn.close()
        shutil.rmtree(self.work, ignore_errors=True)


def pg_uid():
    return pwd.getpwnam("postgres").pw_uid


def pg_gid():
    return pwd.getpwnam("postgres").pw_gid


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the agent's tests run the client as the PostgreSQL user: run as root")
    pool = RealPool(str(tmp_path_factory.mktemp("pgtde")))
    d = pool.start("--kmip-port", "0")
    rid, _name, _env = cmk_server(d)
    inst = Inst(d, rid)
    yield d, inst
    inst.close()
    problems = pool.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def keyring_records(path):
    data = open(path, "rb").read()
    assert len(data) % 292 == 0, len(data)
    out = []
    for i in range(0, len(data), 292):
        rec = data[i:i + 292]
        name = rec[:256].split(b"\0", 1)[0].decode()
        (n,) = struct.unpack("=I", rec[288:292])
        out.append((name, rec[256:256 + n]))
    return out


def test_a_process_outside_the_instance_is_refused(env):
    d, inst = env
    s = socket.socket(socket.AF_UNIX)
    s.connect(inst.sock)
    req = body(op="status", dboid=inst.dboid, dbname="postgres", user="u", superuser=1,
               cipher="aes_128")
    s.sendall(b"TDE %s %d\n" % (inst.slug.encode(), len(req)) + req)
    out = s.recv(4096)
    s.close()
    assert out == b"ERR the peer is not a process of this instance\n"
    # from inside: the status of an instance without a server key
    a = inst.ok("status")
    assert a["server_key"] == "0" and a["wal_encrypt"] == "0" and a["at_rest"] in ("0", "1")


def test_bad_requests_answer_an_error_not_a_crash(env):
    d, inst = env
    a = inst.raw(b"op=status\nop=status\n")
    assert a["status"] == "error" and "twice" in a["message"], a
    a = inst.op("status", bogus="1")
    assert a["status"] == "error", a
    assert a["message"] == 'pg_tde agent: unknown field "bogus" for status', a
    a = inst.op("nope")
    assert a["message"] == 'pg_tde agent: unknown op "nope"', a
    inst.err("status", "22023", 'invalid value for parameter "pg_tde.cipher": "aes_512"',
             cipher="aes_512")


def test_file_provider_keys_and_pg_tde_errors(env):
    d, inst = env
    ring = os.path.join(inst.work, "keyring.per")
    a = inst.ok("provider_add", scope="global", name="file-g", type="file",
                options='{"path": "%s"}' % ring)
    assert int(a["id"]) < 0  # global providers have negative ids, as pg_tde's
    assert os.stat(ring).st_uid == pg_uid()  # created by pg_tde's validate, as postgres
    inst.err("provider_add", "42710", 'Key provider "file-g" already exists.', scope="global",
             name="file-g", type="file", options='{"path": "%s"}' % ring)
    inst.err("provider_add", "42501", "must be superuser to modify key providers", superuser=0,
             scope="global", name="x", type="file", options='{"path": "%s"}' % ring)
    inst.err("provider_add", "22000", "Invalid provider type.", scope="global", name="x",
             type="vault", options="{}")
    inst.err("provider_add", "22023", "file path is missing in the keyring options",
             scope="global", name="x", type="file", options="{}")
    inst.err("provider_add", "22023", 'provider name "" is too short', scope="global", name="",
             type="file", options='{"path": "%s"}' % ring)
    rows = inst.ok("provider_list", scope="global")["rows"]
    assert [r[1:3] for r in rows] == [["file-g", "file"]]
    # the server key: made in the keyring file (16 bytes: aes_128) and set
    inst.ok("key_set", target="server", scope="global", provider="file-g", key="srv-key")
    recs = keyring_records(ring)
    assert [(n, len(k)) for n, k in recs] == [("srv-key", 16)]
    info = inst.ok("key_info", target="server")
    assert info["key"] == "srv-key" and info["provider"] == "file-g"
    assert info["provider_id"] == a["id"] and info["created"].endswith("Z")
    assert inst.ok("status")["server_key"] == "1"
    inst.ok("key_verify", target="server")
    # an existing key is never overwritten; a new one has the cipher's length
    inst.err("key_create", "22023", 'cannot create key "srv-key" because it already exists',
             scope="global", provider="file-g", key="srv-key")
    inst.ok("key_create", scope="global", provider="file-g", key="k256", cipher="aes_256")
    assert [(n, len(k)) for n, k in keyring_records(ring)] == [("srv-key", 16), ("k256", 32)]
    assert keyring_records(ring)[0] == recs[0]
    inst.err("key_create", "42501", "must be superuser to access global key providers",
             superuser=0, scope="global", provider="file-g", key="k3")
    inst.err("key_set", "22023", 'key provider "nope" does not exists', target="server",
             scope="global", provider="nope", key="k")
    inst.err("provider_delete", "55006", "cannot delete provider which is currently in use",
             scope="global", name="file-g")
    inst.err("key_delete", "XX000", "principal key does not exists for the database",
             target="database")
    inst.err("key_verify", "XX000", "principal key not configured for current database",
             target="database")
    assert inst.ok("key_info", target="default").keys() == {"status"}
    # the configuration travels with the data directory
    mirror = os.path.join(inst.data, "pg_tde", "pgcmk_tde.json")
    assert os.stat(mirror).st_uid == pg_uid()
    text = open(mirror).read()
    assert '"file-g"' in text and '"srv-key"' in text
    # a changed keyring (the key replaced under the same name) is another key
    with open(ring, "r+b") as f:
        f.seek(256)
        f.write(b"\x01" * 16)
    inst.err("key_verify", "XX001", "Failed to verify principal key header for key srv-key, "
             "incorrect principal key or corrupted key file", target="server")
    # a provider changed to another file must still give the keys in use
    other = inst.pg_file("other.per")
    inst.err("provider_change", "P0002", 'key "srv-key" used as server key not found in modified '
             'key provider "file-g"', scope="global", name="file-g", type="file",
             options='{"path": "%s"}' % other)
    # a keyring the PostgreSQL user cannot read fails as pg_tde does
    locked = os.path.join(inst.work, "root-only.per")
    open(locked, "wb").close()
    os.chmod(locked, 0o600)
    a = inst.op("provider_add", scope="global", name="locked", type="file",
                options='{"path": "%s"}' % locked)
    assert a["status"] == "error" and a["sqlstate"] == "42501", a
    assert a["message"] == f"Failed to open keyring file {locked}: Permission denied", a


def test_database_provider_and_key(env):
    d, inst = env
    ring = inst.pg_file("db.per")
    a = inst.ok("provider_add", scope="database", name="file-db", type="file",
                options='{"path": "%s"}' % ring)
    assert int(a["id"]) > 0
    assert [r[1] for r in inst.ok("provider_list", scope="database")["rows"]] == ["file-db"]
    inst.err("key_set", "22023", 'key provider "file-db" does not exists', target="database",
             scope="global", provider="file-db", key="db-key")
    inst.ok("key_set", target="database", scope="database", provider="file-db", key="db-key")
    inst.ok("key_verify", target="database")
    inst.ok("key_delete", target="database")
    inst.ok("provider_delete", scope="database", name="file-db")
    assert "rows" not in inst.ok("provider_list", scope="database")
    inst.err("provider_delete", "22023", 'key provider "file-db" does not exists',
             scope="database", name="file-db")


def kmip_client(d, inst):
    r = d.post("/emulator/kmip/clients", json={"name": new_name("jane")})
    assert r.status_code in (200, 201), r.text
    c = r.json()
    files = {}
    for k in ("certificate", "key", "caCertificate"):
        files[k] = inst.pg_file(f"{c['name']}-{k}.pem", open(c["files"][k], "rb").read())
    return c, files


def test_kmip_provider_registers_then_locates_and_gets(env, tmp_path):
    d, inst = env
    port = d.get("/emulator/info").json()["ports"]["kmip"]
    c, f = kmip_client(d, inst)
    opts = ('{"host": "127.0.0.1", "port": %d, "certPath": "%s", "keyPath": "%s", '
            '"caPath": "%s"}' % (port, f["certificate"], f["key"], f["caCertificate"]))
    inst.ok("provider_add", scope="global", name="kmip-g", type="kmip", options=opts)
    inst.ok("key_create", scope="global", provider="kmip-g", key="kmip-key", cipher="aes_256")
    objs = d.get("/emulator/kmip/objects", params={"owner": c["name"]}).json()["value"]
    assert [(o["name"], o["cryptographicLength"]) for o in objs] == [("kmip-key", 256)]
    inst.err("key_create", "22023", 'cannot create key "kmip-key" because it already exists',
             scope="global", provider="kmip-g", key="kmip-key")
    inst.ok("key_set", target="default", scope="global", provider="kmip-g", key="kmip-key")
    inst.ok("key_verify", target="default")
    # seed 001's order (server certificate, client certificate, client key): pg_tde's error and
    # a hint that says which argument is which
    swapped = ('{"host": "127.0.0.1", "port": %d, "certPath": "%s", "keyPath": "%s", '
               '"caPath": "%s"}' % (port, f["caCertificate"], f["certificate"], f["key"]))
    a = inst.op("provider_add", scope="global", name="kmip-seed001", type="kmip", options=swapped)
    assert a["status"] == "error" and a["sqlstate"] == "XX000", a
    assert a["message"].startswith("could not connect to the KMIP server 127.0.0.1:"), a
    assert "cert_path, key_path, ca_path" in a["hint"], a
    # a client certificate of another CA: pgcmk's KMIP server refuses it at the handshake
    pki = make_pki(str(tmp_path))
    acert = inst.pg_file("alien.crt", open(pki["client_cert"], "rb").read())
    akey = inst.pg_file("alien.key", open(pki["client_key"], "rb").read())
    alien = ('{"host": "127.0.0.1", "port": %d, "certPath": "%s", "keyPath": "%s", '
             '"caPath": "%s"}' % (port, acert, akey, f["caCertificate"]))
    a = inst.op("provider_add", scope="global", name="kmip-alien", type="kmip", options=alien)
    assert a["status"] == "error" and a["message"] == \
        f'could not connect to the KMIP server 127.0.0.1:{port} of key provider "kmip-alien"', a
    assert a["detail"] and "hint" not in a, a
    # nobody listens: unreachable, said with the server's address
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dport = dead.getsockname()[1]
    dead.close()
    a = inst.op("provider_add", scope="global", name="kmip-dead", type="kmip",
                options=opts.replace(str(port), str(dport)))
    assert a["message"] == f'could not connect to the KMIP server 127.0.0.1:{dport} of key ' \
                           f'provider "kmip-dead"', a
    assert a["detail"], a


def test_vault_provider(env):
    d, inst = env
    hvac = pytest.importorskip("hvac", reason="apt-get install python3-hvac")
    v = d.get("/emulator/info").json()["vault"]
    client = hvac.Client(url=v["address"], token=v["rootToken"], verify=d.ca)
    m = "kv-" + uuid.uuid4().hex[:8]
    client.sys.enable_secrets_engine(backend_type="kv", path=m, options={"version": "2"})
    tok = inst.pg_file(f"token-{m}", (v["rootToken"] + "\n").encode())
    ca = inst.pg_file(f"ca-{m}.pem", open(d.ca, "rb").read(), mode=0o644)
    def opts_of(mount):
        return ('{"url": "%s", "mountPath": "%s", "tokenPath": "%s", "caPath": "%s"}'
                % (v["address"], mount, tok, ca))

    opts = opts_of(m)
    inst.ok("provider_add", scope="global", name="vault-g", type="vault-v2", options=opts)
    inst.ok("key_set", target="server", scope="global", provider="vault-g", key="vault-key",
            cipher="aes_256")
    sec = client.secrets.kv.v2.read_secret_version(path="vault-key", mount_point=m)
    assert len(base64.b64decode(sec["data"]["data"]["key"])) == 32
    inst.ok("key_verify", target="server")
    # a token file the PostgreSQL user cannot read
    os.chown(tok, 0, 0)
    a = inst.op("key_verify", target="server")
    assert a["status"] == "error" and a["message"] == \
        'failed to retrieve principal key "vault-key" from key provider "vault-g"', a
    os.chown(tok, pg_uid(), pg_gid())
    inst.ok("key_verify", target="server")
    # a mount that is not KV v2
    m1 = "kv1-" + uuid.uuid4().hex[:8]
    client.sys.enable_secrets_engine(backend_type="kv", path=m1, options={"version": "1"})
    a = inst.op("provider_add", scope="global", name="vault-kv1", type="vault-v2",
                options=opts_of(m1))
    assert a["message"] == f'failed to validate the Vault mount "{m1}" of key provider ' \
                           f'"vault-kv1"', a
    assert "not KV version 2" in a["detail"], a


# --- the same through SQL: a self-managed instance with pgcmk's pg_tde emulation ---------------

PG_TDE_SO = "/usr/lib/postgresql/15/lib/pg_tde.so"
INSTANCES = "/emulator/postgres/instances"


@pytest.fixture(scope="module")
def sm(env):
    if not os.path.exists(PG_TDE_SO):
        pytest.skip("pgcmk's pg_tde emulation is not installed: run 'make pgext' as root")
    d, inst = env
    name = new_name("tde")
    r = d.post(INSTANCES, json={"name": name})
    assert r.status_code == 201, r.text
    b = r.json()
    return d, inst, name, b["connectionString"]


def sql_connect(cs):
    conn = _psycopg2().connect(cs, connect_timeout=10)
    conn.autocommit = True
    return conn


def sql(conn, text, *params):
    with conn.cursor() as cur:
        cur.execute(text, params or None)
        return cur.fetchall() if cur.description else None


def sql_error(conn, sqlstate, message, text, *params):
    pg = _psycopg2()
    with pytest.raises(pg.Error) as ei:
        sql(conn, text, *params)
    e = ei.value
    assert e.pgcode == sqlstate and e.diag.message_primary == message, (e.pgcode, str(e))
    return e


def test_seed_000_with_a_keyring_file_through_sql(sm):
    d, inst, name, cs = sm
    ring = os.path.join(inst.work, f"{name}.per")
    conn = sql_connect(cs)
    try:
        sql(conn, "CREATE EXTENSION pg_tde")
        # seed 000, the "With keyring file" tab and step 3, verbatim but for the names
        sql(conn, f"SELECT pg_tde_add_global_key_provider_file('provider-name', '{ring}')")
        sql(conn, "SELECT pg_tde_set_server_key_using_global_key_provider('key', "
                  "'provider-name')")
        assert [(n, len(k)) for n, k in keyring_records(ring)] == [("key", 16)]
        assert sql(conn, "SELECT key_name, key_provider_name FROM "
                         "pg_tde_server_key_info()") == [("key", "provider-name")]
        sql(conn, "SELECT pg_tde_verify_server_key()")
        # pg_tde's errors, raised as the agent words them
        sql_error(conn, "42710", 'Key provider "provider-name" already exists.',
                  f"SELECT pg_tde_add_global_key_provider_file('provider-name', '{ring}')")
        sql_error(conn, "22023", 'key provider "nope" does not exists',
                  "SELECT pg_tde_set_server_key_using_global_key_provider('key', 'nope')")
        sql_error(conn, "22023", 'cannot create key "key" because it already exists',
                  "SELECT pg_tde_create_key_using_global_key_provider('key', 'provider-name')")
        sql_error(conn, "55006", "cannot delete provider which is currently in use",
                  "SELECT pg_tde_delete_global_key_provider('provider-name')")
        # a database key of the same provider: 32 bytes under aes_256
        sql(conn, "SET pg_tde.cipher = 'aes_256'")
        sql(conn, "SELECT pg_tde_set_key_using_global_key_provider('db-key', 'provider-name')")
        assert [(n, len(k)) for n, k in keyring_records(ring)] == [("key", 16), ("db-key", 32)]
        assert sql(conn, "SELECT key_name FROM pg_tde_key_info()") == [("db-key",)]
    finally:
        conn.close()
    # the server key is bound: the instance shows it
    b = d.get(f"{INSTANCES}/{name}").json()
    assert b["pgTde"]["serverKey"], b


def test_kmip_and_vault_providers_through_sql(sm):
    d, inst, name, cs = sm
    port = d.get("/emulator/info").json()["ports"]["kmip"]
    c, f = kmip_client(d, inst)
    conn = sql_connect(cs)
    try:
        sql(conn, "CREATE EXTENSION IF NOT EXISTS pg_tde")
        # seed 000's KMIP tab: (name, host, port, client cert, client key, server certificate)
        sql(conn, "SELECT pg_tde_add_global_key_provider_kmip('kmip', '127.0.0.1', %s, %s, %s, "
                  "%s)", port, f["certificate"], f["key"], f["caCertificate"])
        sql(conn, "SELECT pg_tde_create_key_using_global_key_provider('kmip-key', 'kmip')")
        objs = d.get("/emulator/kmip/objects", params={"owner": c["name"]}).json()["value"]
        assert [(o["name"], o["cryptographicLength"]) for o in objs] == [("kmip-key", 128)]
        sql(conn, "SELECT pg_tde_set_default_key_using_global_key_provider('kmip-key', 'kmip')")
        sql(conn, "SELECT pg_tde_verify_default_key()")
        # seed 001's order fails as pg_tde's would, with a hint naming the order
        e = sql_error(conn, "XX000",
                      f'could not connect to the KMIP server 127.0.0.1:{port} of key provider '
                      f'"kmip-001"',
                      "SELECT pg_tde_add_global_key_provider_kmip('kmip-001', '127.0.0.1', %s, "
                      "%s, %s, %s)", port, f["caCertificate"], f["certificate"], f["key"])
        assert "cert_path, key_path, ca_path" in (e.diag.message_hint or ""), str(e)
    finally:
        conn.close()


def test_the_real_pykmip_server_through_sql(sm, tmp_path):
    if not os.access(PYKMIP_SERVER, os.X_OK):
        pytest.skip(f"needs {PYKMIP_SERVER}: apt-get install python3-pykmip")
    d, inst, name, cs = sm
    pki = make_pki(str(tmp_path))
    srv = PyKmipServer(str(tmp_path), pki).start()
    try:
        cert = inst.pg_file("pykmip-client.crt", open(pki["client_cert"], "rb").read())
        key = inst.pg_file("pykmip-client.key", open(pki["client_key"], "rb").read())
        ca = inst.pg_file("pykmip-ca.crt", open(pki["ca"], "rb").read())
        conn = sql_connect(cs)
        try:
            sql(conn, "CREATE EXTENSION IF NOT EXISTS pg_tde")
            sql(conn, "SELECT pg_tde_add_global_key_provider_kmip('pykmip', '127.0.0.1', %s, %s, "
                      "%s, %s)", srv.port, cert, key, ca)
            sql(conn, "SELECT pg_tde_create_key_using_global_key_provider('py-key', 'pykmip')")
            uids = pykmip(srv, "locate", name="py-key")
            assert len(uids) == 1 and len(bytes.fromhex(pykmip(srv, "get", uid=uids[0]))) == 16
            sql(conn, "SELECT pg_tde_set_key_using_global_key_provider('py-key', 'pykmip')")
            sql(conn, "SELECT pg_tde_verify_key()")
            assert pykmip(srv, "locate", name="py-key") == uids  # Locate+Get, nothing new
            # two keys of one name on the server: pg_tde's "resource not available"
            pykmip(srv, "register", name="py-dup")
            pykmip(srv, "register", name="py-dup")
            e = sql_error(conn, "XX000",
                          'failed to retrieve principal key "py-dup" from key provider "pykmip"',
                          "SELECT pg_tde_set_key_using_global_key_provider('py-dup', 'pykmip')")
            assert "2 keys named" in (e.diag.message_detail or ""), str(e)
        finally:
            conn.close()
    finally:
        srv.stop()
