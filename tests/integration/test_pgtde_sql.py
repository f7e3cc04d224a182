"""pgcmk's pg_tde emulation (pgext/pg_tde/, issue 16 item 2): the extension's SQL surface against a
scratch PostgreSQL 15 cluster whose agent socket is a small fake agent speaking
include/pgcmk/tdeproto.h (so the extension is checked on its own: what it sends, how it raises
what it is answered). The same SQL against pgcmkd's real agent and providers is in
test_pgtde_agent.py / test_pgtde_loss.py.

Needs the installed extension (`make pgext` as root: pg_tde.so and pg_tde--2.2.sql) and
PostgreSQL 15; skipped with the reason otherwise."""
import base64
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading

import pytest

from conftest import poll_until
from pgtools import settle

PG_BIN = "/usr/lib/postgresql/15/bin"
PKGLIB = "/usr/lib/postgresql/15/lib"
EXTDIR = "/usr/share/postgresql/15/extension"
SLUG = "scratch-tde"

pytestmark = [
    pytest.mark.skipif(not os.access(os.path.join(PG_BIN, "postgres"), os.X_OK),
                       reason="needs PostgreSQL 15: apt-get install postgresql-15"),
    pytest.mark.skipif(not os.path.exists(os.path.join(PKGLIB, "pg_tde.so")) or
                       not os.path.exists(os.path.join(EXTDIR, "pg_tde--2.2.sql")),
                       reason="pgcmk's pg_tde emulation is not installed: run 'make pgext' as root"),
]

psycopg2 = pytest.importorskip("psycopg2", reason="apt-get install python3-psycopg2")


def esc(v):
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def unesc(v):
    out, i = [], 0
    while i < len(v):
        if v[i] == "\\" and i + 1 < len(v):
            out.append({"n": "\n", "r": "\r"}.get(v[i + 1], v[i + 1]))
            i += 2
        else:
            out.append(v[i])
            i += 1
    return "".join(out)


class FakeAgent:
    """The agent side of tdeproto.h, in memory: records every request, answers from `state`, or
    the error set in `fail[op]`."""

    def __init__(self, path):
        self.path = path
        self.requests = []
        self.fail = {}
        self.providers = {"global": [], "database": []}
        self.keys = {}
        self.at_rest = "0"
        self.raw_answer = None  # bytes sent as they are instead of an answer
        self.sock = None
        self.thread = None

    def start(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)
        self.sock.listen(16)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def stop(self):
        if self.sock is not None:
            self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            self.sock = None
            self.thread.join(5)
        if os.path.exists(self.path):
            os.unlink(self.path)

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    self.one(conn)
                except OSError:
                    pass

    def one(self, conn):
        f = conn.makefile("rb")
        head = f.readline().decode()
        word, slug, length = head.split()
        assert word == "TDE" and slug == SLUG, head
        body = f.read(int(length)).decode()
        req = {}
        for line in body.splitlines():
            k, _, v = line.partition("=")
            req[k] = unesc(v)
        self.requests.append(req)
        if self.raw_answer is not None:
            conn.sendall(self.raw_answer)
            return
        ans = self.answer(req)
        out = "".join(f"{k}={esc(str(v))}\n" for k, v in ans).encode()
        conn.sendall(f"OK {len(out)}\n".encode() + out)

    def answer(self, req):
        op = req["op"]
        if op in self.fail:
            return [("status", "error")] + list(self.fail[op].items())
        ok = [("status", "ok")]
        if op in ("provider_add", "provider_change"):
            rows = self.providers[req["scope"]]
            rows.append((len(rows) + 1, req["name"], req["type"], req["options"]))
            return ok + [("id", len(rows))]
        if op == "provider_list":
            return ok + [("row", "\t".join(map(str, r))) for r in self.providers[req["scope"]]]
        if op == "key_set":
            self.keys[req["target"]] = (req["key"], req["provider"])
        if op == "key_info" and req["target"] in self.keys:
            key, prov = self.keys[req["target"]]
            return ok + [("key", key), ("provider", prov), ("provider_id", 1),
                         ("created", "2026-12-06T10:00:00Z")]
        if op == "status":
            return ok + [("at_rest", self.at_rest), ("wal_encrypt", "0"), ("server_key", "0")]
        return ok

    def last(self, op):
        return [r for r in self.requests if r["op"] == op][-1]


def as_postgres():
    pw = pwd.getpwnam("postgres")

    def drop():
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return drop


class Scratch:
    """initdb + postgres as the PostgreSQL user, unix socket only, pg_tde preloaded."""

    def __init__(self, root):
        self.root = root
        self.data = os.path.join(root, "data")
        self.sockdir = os.path.join(root, "sock")
        self.log = os.path.join(root, "postgres.log")
        self.proc = None
        for d, mode in ((self.sockdir, 0o755), (self.data, 0o700)):
            os.mkdir(d, mode)
            shutil.chown(d, "postgres", "postgres")
        r = subprocess.run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust", "-U",
                            "postgres", "--no-sync"], capture_output=True, text=True,
                           preexec_fn=as_postgres(), cwd="/tmp", timeout=60)
        assert r.returncode == 0, r.stderr
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"listen_addresses = ''\nunix_socket_directories = '{self.sockdir}'\n"
                    "shared_preload_libraries = 'pg_tde'\nfsync = off\n"
                    f"pg_tde.pgcmk_agent_socket = '{os.path.join(root, 'agent.sock')}'\n"
                    f"pg_tde.pgcmk_slug = '{SLUG}'\n")

    def start(self):
        """Starts the server: None when it accepts connections, else its exit code."""
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([os.path.join(PG_BIN, "postgres"), "-D", self.data],
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     preexec_fn=as_postgres(), cwd="/tmp")
        logf.close()

        def up():
            if self.proc.poll() is not None:
                return "exited"
            try:
                psycopg2.connect(host=self.sockdir, dbname="postgres", user="postgres").close()
                return "up"
            except psycopg2.OperationalError:
                return None
        state = poll_until(up, timeout=30, what="the scratch server to start or exit")
        if state == "exited":
            code, self.proc = self.proc.returncode, None
            return code
        return None

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown, by its own pid
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None

    def connect(self, user="postgres"):
        c = psycopg2.connect(host=self.sockdir, dbname="postgres", user=user)
        c.autocommit = True
        return c


@pytest.fixture(scope="module")
def env():
    root = tempfile.mkdtemp(prefix="pgcmk-real-tdeext-", dir="/tmp")
    os.chmod(root, 0o755)
    agent = FakeAgent(os.path.join(root, "agent.sock"))
    agent.start()
    pg = None
    try:
        pg = Scratch(root)
        assert pg.start() is None, open(pg.log).read()
        c = pg.connect()
        c.cursor().execute("CREATE EXTENSION pg_tde")
        c.cursor().execute("CREATE ROLE alice LOGIN")
        c.close()
        yield pg, agent
    finally:
        if pg is not None:
            pg.stop()
        agent.stop()
        shutil.rmtree(root, ignore_errors=True)


def q(conn, sql, *args):
    with conn.cursor() as cur:
        cur.execute(sql, args or None)
        return cur.fetchall() if cur.description else None


def sql_error(conn, sql, *args):
    with pytest.raises(psycopg2.Error) as ei:
        q(conn, sql, *args)
    return ei.value


# pg_tde 2.2's functions: name -> (arguments, result) as pg_get_function_arguments/result say
VAULT5 = ("provider_name text, vault_url text, vault_mount_path text, vault_token_path text, "
          "vault_ca_path text")
KMIP = ("provider_name text, kmip_host text, kmip_port integer, kmip_cert_path text, "
        "kmip_key_path text, kmip_ca_path text")
KEYINFO = ("TABLE(key_name text, key_provider_name text, key_provider_id integer, "
           "key_creation_time timestamp with time zone)")
EXPECTED = set()
for verb in ("add", "change"):
    for scope in ("database", "global"):
        p = f"pg_tde_{verb}_{scope}_key_provider"
        EXPECTED |= {(p, "provider_type text, provider_name text, options json", "void"),
                     (p + "_file", "provider_name text, file_path text", "void"),
                     (p + "_vault_v2", VAULT5, "void"),
                     (p + "_vault_v2", VAULT5 + ", vault_namespace text", "void"),
                     (p + "_kmip", KMIP, "void")}
for scope in ("database", "global"):
    EXPECTED |= {(f"pg_tde_list_all_{scope}_key_providers",
                  "OUT id integer, OUT provider_name text, OUT provider_type text, "
                  "OUT options json", "SETOF record"),
                 (f"pg_tde_delete_{scope}_key_provider", "provider_name text", "void"),
                 (f"pg_tde_create_key_using_{scope}_key_provider",
                  "key_name text, provider_name text", "void"),
                 (f"pg_tde_set_key_using_{scope}_key_provider",
                  "key_name text, provider_name text", "void")}
EXPECTED |= {(f, "key_name text, provider_name text", "void")
             for f in ("pg_tde_set_server_key_using_global_key_provider",
                       "pg_tde_set_default_key_using_global_key_provider")}
EXPECTED |= {(f, "", "void") for f in ("pg_tde_verify_key", "pg_tde_verify_server_key",
                                       "pg_tde_verify_default_key", "pg_tde_delete_key",
                                       "pg_tde_delete_default_key")}
EXPECTED |= {(f, "", KEYINFO) for f in ("pg_tde_key_info", "pg_tde_server_key_info",
                                        "pg_tde_default_key_info")}
EXPECTED |= {("pg_tde_is_encrypted", "relation regclass", "boolean"),
             ("pg_tde_version", "", "text"), ("pg_tdeam_handler", "internal", "table_am_handler"),
             ("pg_tde_ddl_command_start_capture", "", "event_trigger"),
             ("pg_tde_ddl_command_end_capture", "", "event_trigger")}


def test_functions_signatures_and_version(env):
    pg, _ = env
    c = pg.connect()
    rows = q(c, "SELECT p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid)"
                " FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'"
                " JOIN pg_extension e ON e.oid = d.refobjid WHERE e.extname = 'pg_tde'")
    assert set(rows) == EXPECTED
    assert q(c, "SELECT extversion FROM pg_extension WHERE extname = 'pg_tde'") == [("2.2",)]
    v = q(c, "SELECT pg_tde_version()")[0][0]
    assert v.startswith("pg_tde 2.2") and "pgcmk emulation" in v
    assert q(c, "SELECT amname, amtype FROM pg_am WHERE amname = 'tde_heap'") == [("tde_heap", "t")]


def test_privileges_as_pg_tde(env):
    pg, _ = env
    alice = pg.connect("alice")
    for sql in ("SELECT pg_tde_add_global_key_provider_file('p', '/tmp/k')",
                "SELECT pg_tde_add_database_key_provider_file('p', '/tmp/k')",
                "SELECT pg_tde_set_server_key_using_global_key_provider('k', 'p')",
                "SELECT * FROM pg_tde_list_all_global_key_providers()",
                "SELECT * FROM pg_tde_key_info()"):
        e = sql_error(alice, sql)
        assert e.pgcode == "42501" and "permission denied for function" in e.diag.message_primary
    assert "pgcmk emulation" in q(alice, "SELECT pg_tde_version()")[0][0]  # public, as in pg_tde


def test_seed_provider_calls_reach_the_agent(env):
    pg, agent = env
    c = pg.connect()
    q(c, "SELECT pg_tde_add_global_key_provider_kmip('kmip', '127.0.0.1', 5696, "
         "'/tmp/client_cert_jane_doe.pem', '/tmp/client_key_jane_doe.pem', "
         "'/tmp/server_certificate.pem')")
    r = agent.last("provider_add")
    assert (r["scope"], r["name"], r["type"], r["superuser"], r["dbname"], r["cipher"]) == \
        ("global", "kmip", "kmip", "1", "postgres", "aes_128")
    assert r["options"] == ('{"host" : "127.0.0.1", "port" : 5696, "certPath" : '
                            '"/tmp/client_cert_jane_doe.pem", "keyPath" : '
                            '"/tmp/client_key_jane_doe.pem", "caPath" : '
                            '"/tmp/server_certificate.pem"}')
    q(c, "SELECT pg_tde_add_global_key_provider_vault_v2('vault', 'https://127.0.0.1:8200', "
         "'secret', '/tmp/token', NULL)")
    r = agent.last("provider_add")
    assert r["type"] == "vault-v2" and '"tokenPath" : "/tmp/token"' in r["options"] and \
        '"caPath" : null' in r["options"]
    q(c, "SELECT pg_tde_add_database_key_provider_file('file-keyring', '/tmp/keyring.per')")
    r = agent.last("provider_add")
    assert (r["scope"], r["type"], r["options"]) == \
        ("database", "file", '{"path" : "/tmp/keyring.per"}')
    assert int(r["dboid"]) > 0
    rows = q(c, "SELECT id, provider_name, provider_type, options->>'host' "
                "FROM pg_tde_list_all_global_key_providers()")
    assert rows[0] == (1, "kmip", "kmip", "127.0.0.1") and rows[1][1:3] == ("vault", "vault-v2")
    q(c, "SELECT pg_tde_set_server_key_using_global_key_provider('key', 'kmip')")
    assert "WARNING:  The WAL encryption feature is currently in beta" in c.notices[-1]
    r = agent.last("key_set")
    assert (r["target"], r["scope"], r["provider"], r["key"]) == ("server", "global", "kmip", "key")
    assert q(c, "SELECT key_name, key_provider_name, key_provider_id, "
                "key_creation_time = '2026-12-06 10:00:00+00' FROM pg_tde_server_key_info()") == \
        [("key", "kmip", 1, True)]
    assert q(c, "SELECT * FROM pg_tde_default_key_info()") == [(None, None, None, None)]
    q(c, "SET pg_tde.cipher = 'aes_256'")
    q(c, "SELECT pg_tde_create_key_using_global_key_provider('k256', 'kmip')")
    r = agent.last("key_create")
    assert (r["cipher"], r["scope"], r["key"]) == ("aes_256", "global", "k256")
    for sql, op, target in (("SELECT pg_tde_verify_server_key()", "key_verify", "server"),
                            ("SELECT pg_tde_delete_default_key()", "key_delete", "default"),
                            ("SELECT pg_tde_delete_global_key_provider('vault')",
                             "provider_delete", None)):
        q(c, sql)
        r = agent.last(op)
        assert r.get("target") == target and (target or r["name"] == "vault")


def test_agent_errors_pass_through(env):
    pg, agent = env
    c = pg.connect()
    agent.fail["key_set"] = {"sqlstate": "42704", "message": 'key provider "nope" does not exist',
                             "detail": "line one\nline two", "hint": "Create it first."}
    try:
        e = sql_error(c, "SELECT pg_tde_set_key_using_database_key_provider('k', 'nope')")
    finally:
        del agent.fail["key_set"]
    assert e.pgcode == "42704"
    assert e.diag.message_primary == 'key provider "nope" does not exist'
    assert e.diag.message_detail == "line one\nline two"
    assert e.diag.message_hint == "Create it first."


def test_local_argument_checks(env):
    pg, agent = env
    c = pg.connect()
    n = len(agent.requests)
    e = sql_error(c, "SELECT pg_tde_add_global_key_provider_file(NULL, '/tmp/k')")
    assert e.pgcode == "22004" and e.diag.message_primary == "provider name cannot be null"
    e = sql_error(c, "SELECT pg_tde_add_global_key_provider_file('', '/tmp/k')")
    assert e.pgcode == "22023" and e.diag.message_primary == 'provider name "" is too short'
    e = sql_error(c, "SELECT pg_tde_create_key_using_global_key_provider(NULL, 'p')")
    assert e.pgcode == "22004" and e.diag.message_primary == "key name cannot be null"
    e = sql_error(c, "SELECT pg_tde_create_key_using_database_key_provider('k', NULL)")
    assert e.pgcode == "22004" and e.diag.message_primary == "key provider name cannot be null"
    e = sql_error(c, "SELECT pg_tde_set_key_using_database_key_provider(repeat('k', 256), 'p')")
    assert e.pgcode == "22023" and e.diag.message_hint == "Maximum length is 255 bytes."
    q(c, "SET pg_tde.inherit_global_providers = off")
    for f in ("create_key_using_global_key_provider", "set_key_using_global_key_provider",
              "set_server_key_using_global_key_provider",
              "set_default_key_using_global_key_provider"):
        e = sql_error(c, f"SELECT pg_tde_{f}('k', 'kmip')")
        assert e.pgcode == "XX000"
        assert e.diag.message_primary == "usage of global key providers is disabled"
        assert "pg_tde.inherit_global_providers = on" in e.diag.message_hint
    q(c, "RESET pg_tde.inherit_global_providers")
    assert len(agent.requests) == n  # none of these reached the agent


def test_seed000_missing_function_hint(env):
    pg, _ = env
    c = pg.connect()
    e = sql_error(c, "SELECT pg_tde_add_key_using_global_key_provider_kmip('kmip', '127.0.0.1', "
                     "5696, '/tmp/client_cert_jane_doe.pem', '/tmp/client_key_jane_doe.pem', "
                     "'/tmp/server_certificate.pem')")
    assert e.pgcode == "42883"
    assert e.diag.message_primary.startswith(
        "function pg_tde_add_key_using_global_key_provider_kmip(")
    assert "pg_tde_add_global_key_provider_kmip(provider_name" in e.diag.message_hint


def test_gucs(env):
    pg, _ = env
    c = pg.connect()
    assert q(c, "SHOW pg_tde.cipher") == [("aes_128",)]
    assert q(c, "SHOW pg_tde.wal_encrypt") == [("off",)]
    assert q(c, "SHOW pg_tde.inherit_global_providers") == [("on",)]
    e = sql_error(c, "SET pg_tde.cipher = 'aes_512'")
    assert e.pgcode == "22023" and "aes_128, aes_256" in e.diag.message_hint
    e = sql_error(c, "SET pg_tde.wal_encrypt = on")
    assert e.pgcode == "55P02"  # cannot be changed without restarting the server
    e = sql_error(c, "SET pg_tde.no_such = 1")
    assert '"pg_tde" is a reserved prefix' in e.diag.message_detail
    alice = pg.connect("alice")
    e = sql_error(alice, "ALTER SYSTEM SET pg_tde.wal_encrypt = on")
    assert e.pgcode == "42501"
    assert e.diag.message_primary == 'permission denied to set parameter "pg_tde.wal_encrypt"'
    e = sql_error(alice, "SET pg_tde.enforce_encryption = on")
    assert e.pgcode == "42501"
    e = sql_error(alice, "SHOW pg_tde.pgcmk_agent_socket")
    assert e.pgcode == "42501"


def test_tde_heap_and_is_encrypted(env):
    pg, agent = env
    c = pg.connect()
    agent.keys.pop("database", None)
    agent.keys.pop("default", None)
    e = sql_error(c, "CREATE TABLE t_nokey (a int) USING tde_heap")
    assert e.pgcode == "XX000" and e.diag.message_primary == "principal key not configured"
    assert e.diag.message_hint == "create one using pg_tde_set_key before using encrypted tables"
    q(c, "SELECT pg_tde_set_key_using_database_key_provider('dbkey', 'file-keyring')")
    q(c, "CREATE TABLE t_enc (a int PRIMARY KEY, b text) USING tde_heap")
    q(c, "INSERT INTO t_enc SELECT g, 'row ' || g FROM generate_series(1, 100) g")
    assert q(c, "SELECT count(*), max(b) FROM t_enc") == [(100, "row 99")]
    q(c, "CREATE TABLE t_plain (a int)")
    agent.at_rest = "0"
    assert q(c, "SELECT pg_tde_is_encrypted('t_enc'), pg_tde_is_encrypted('t_plain')") == \
        [(False, False)]
    agent.at_rest = "1"
    c2 = pg.connect()  # a new backend asks the agent again
    assert q(c2, "SELECT pg_tde_is_encrypted('t_enc'), pg_tde_is_encrypted('t_enc_pkey'), "
                 "pg_tde_is_encrypted('t_plain')") == [(True, True, False)]
    q(c2, "SET pg_tde.enforce_encryption = on")
    e = sql_error(c2, "CREATE TABLE t_refused (a int)")
    assert "only the tde_heap access method is allowed" in e.diag.message_primary
    e = sql_error(c2, "CREATE TABLE t_refused2 USING heap AS SELECT 1 AS a")
    assert "only the tde_heap access method is allowed" in e.diag.message_primary
    assert e.pgcode == "XX000"
    e = sql_error(c2, "ALTER TABLE t_plain ADD COLUMN b int")  # pg_tde refuses it too
    assert "only the tde_heap access method is allowed" in e.diag.message_primary
    q(c2, "ALTER TABLE t_plain SET ACCESS METHOD tde_heap")
    q(c2, "ALTER TABLE t_plain ADD COLUMN b int")
    q(c2, "CREATE INDEX ON t_plain (b)")
    q(c2, "CREATE TABLE t_ok (a int) USING tde_heap")
    q(c2, "SET default_table_access_method = 'tde_heap'")
    q(c2, "CREATE TABLE t_ok2 (a int)")
    assert q(c2, "SELECT count(*) FROM pg_class c JOIN pg_am a ON a.oid = c.relam "
                 "WHERE a.amname = 'tde_heap' AND c.relname LIKE 't_ok%'") == [(2,)]


def test_unreachable_agent_names_the_socket(env):
    pg, agent = env
    c = pg.connect()
    agent.stop()
    try:
        e = sql_error(c, "SELECT pg_tde_verify_key()")
    finally:
        agent.start()
    assert e.pgcode == "08006"
    assert e.diag.message_primary == (f'could not connect to pgcmk\'s pg_tde agent at '
                                      f'"{agent.path}": No such file or directory')
    q(c, "SELECT pg_tde_verify_key()")  # back


@pytest.mark.parametrize("raw,why", [
    (b"ERR the peer is not a process of this instance\n",
     "the peer is not a process of this instance"),
    (b"OK 12\nstatus=ok", "truncated answer"),
    (b"OK 9\nstatus=ok", "malformed body: the body does not end with a newline"),
    (b"HELLO\n", "malformed answer"),
    (b"", "the connection closed without an answer"),
])
def test_transport_errors_name_the_socket(env, raw, why):
    pg, agent = env
    c = pg.connect()
    agent.raw_answer = raw
    try:
        e = sql_error(c, "SELECT pg_tde_verify_key()")
    finally:
        agent.raw_answer = None
    assert e.pgcode in ("08006", "08P01"), e.pgcode
    assert why in e.diag.message_primary
    q(c, "SELECT pg_tde_verify_key()")


def test_wal_encrypt_start_needs_the_server_key(env):
    pg, agent = env
    c = pg.connect()
    q(c, "ALTER SYSTEM SET pg_tde.wal_encrypt = on")
    c.close()
    pg.stop()
    agent.fail["server_key_check"] = {
        "sqlstate": "XX000", "message": "principal key not configured",
        "hint": "Use pg_tde_set_server_key_using_global_key_provider() to configure one."}
    try:
        code = pg.start()
    finally:
        del agent.fail["server_key_check"]
    assert code not in (None, 0)
    log = open(pg.log).read()
    assert "FATAL:  principal key not configured" in log
    assert pg.start() is None
    c = pg.connect()
    assert q(c, "SHOW pg_tde.wal_encrypt") == [("on",)]
    q(c, "ALTER SYSTEM RESET pg_tde.wal_encrypt")


# --- against pgcmkd: a self-managed instance, its agent, pgcmk's KMIP and Vault, a keyring file ---

INSTANCES = "/emulator/postgres/instances"


def postgres_file(dirpath, name, src=None, text=None):
    """A copy of src (or text) the PostgreSQL user can read, as pg_tde's files must be."""
    path = os.path.join(dirpath, name)
    if src is not None:
        shutil.copyfile(src, path)
    else:
        with open(path, "w") as f:
            f.write(text)
    shutil.chown(path, "postgres", "postgres")
    os.chmod(path, 0o600)
    return path


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    from pgreal import _real_pool
    for pool in _real_pool(str(tmp_path_factory.mktemp("tde-real"))):
        d = pool.start("--kmip-port", "0")
        files = tempfile.mkdtemp(prefix="pgcmk-real-tdefiles-", dir="/tmp")
        os.chmod(files, 0o755)
        shutil.chown(files, "postgres", "postgres")  # the keyring file is made there
        try:
            r = d.post(INSTANCES, json={"name": "tdeext"})
            assert r.status_code == 201, r.text
            inst = r.json()
            assert inst["pgTde"]["library"] == "loaded", inst
            r = d.post("/emulator/kmip/clients", json={"name": "jane_doe"})
            assert r.status_code in (200, 201), r.text
            kf = r.json()["files"]
            paths = {"cert": postgres_file(files, "client_cert_jane_doe.pem", kf["certificate"]),
                     "key": postgres_file(files, "client_key_jane_doe.pem", kf["key"]),
                     "ca": postgres_file(files, "server_certificate.pem", kf["caCertificate"]),
                     "vault_ca": postgres_file(files, "vault_ca.pem", d.ca),
                     "keyring": os.path.join(files, "keyring.per"), "dir": files}
            yield d, inst, paths
        finally:
            shutil.rmtree(files, ignore_errors=True)


def real_connect(inst, d=None):
    """A superuser connection; with d, the instance's current address (a restart may move its
    port) and the password of the creation answer."""
    cs = inst["connectionString"]
    if d is not None:
        cs = d.get(f"{INSTANCES}/{inst['name']}").json()["connectionString"]
        cs += f" password={inst['password']}"
    c = psycopg2.connect(cs, connect_timeout=10)
    c.autocommit = True
    return c


def test_real_seed000_kmip_then_wal_encrypt_restart(real):
    d, inst, f = real
    kport = d.get("/emulator/info").json()["ports"]["kmip"]
    c = real_connect(inst, d)
    q(c, "CREATE EXTENSION IF NOT EXISTS pg_tde")
    # seed 000's "testing" example: the function pg_tde does not have
    e = sql_error(c, f"SELECT pg_tde_add_key_using_global_key_provider_kmip('kmip', '127.0.0.1', "
                     f"{kport}, '{f['cert']}', '{f['key']}', '{f['ca']}')")
    assert e.pgcode == "42883" and "pg_tde_add_global_key_provider_kmip(" in e.diag.message_hint
    q(c, f"SELECT pg_tde_add_global_key_provider_kmip('kmip', '127.0.0.1', {kport}, "
         f"'{f['cert']}', '{f['key']}', '{f['ca']}')")
    e = sql_error(c, f"SELECT pg_tde_add_global_key_provider_kmip('kmip', '127.0.0.1', {kport}, "
                     f"'{f['cert']}', '{f['key']}', '{f['ca']}')")
    assert e.pgcode == "42710" and e.diag.message_primary == 'Key provider "kmip" already exists.'
    q(c, "SELECT pg_tde_set_server_key_using_global_key_provider('key', 'kmip')")
    q(c, "ALTER SYSTEM SET pg_tde.wal_encrypt = on")
    c.close()
    c = restart_and_connect(d, inst)
    assert q(c, "SHOW pg_tde.wal_encrypt") == [("on",)]
    assert q(c, "SELECT key_name, key_provider_name FROM pg_tde_server_key_info()") == \
        [("key", "kmip")]
    q(c, "SELECT pg_tde_verify_server_key()")
    rows = q(c, "SELECT provider_name, provider_type, options->>'certPath' "
                "FROM pg_tde_list_all_global_key_providers()")
    assert ("kmip", "kmip", f["cert"]) in rows
    q(c, "ALTER SYSTEM RESET pg_tde.wal_encrypt")


def restart_and_connect(d, inst):
    """POST .../restart (the seed's "restart the server"), then a connection once logins are
    allowed (the reconciler's next check of the server key, on the virtual clock)."""
    r = d.post(f"{INSTANCES}/{inst['name']}/restart")
    assert r.status_code in (200, 202), r.text
    d.clock(advance="PT2M")
    settle(d)
    return poll_until(lambda: _try_connect(inst, d), timeout=30, what="the restarted instance")


def _try_connect(inst, d=None):
    try:
        return real_connect(inst, d)
    except psycopg2.OperationalError:
        return None


def test_real_vault_and_file_providers_and_errors(real):
    d, inst, f = real
    v = d.get("/emulator/info").json()["vault"]
    hvac = pytest.importorskip("hvac", reason="apt-get install python3-hvac")
    client = hvac.Client(url=v["address"], token=v["rootToken"], verify=d.ca)
    client.sys.enable_secrets_engine(backend_type="kv", path="tdeext", options={"version": "2"})
    token = postgres_file(f["dir"], "token", text=v["rootToken"] + "\n")
    c = real_connect(inst, d)
    q(c, "CREATE EXTENSION IF NOT EXISTS pg_tde")
    # seed 000's Vault tab: five arguments (no namespace)
    q(c, f"SELECT pg_tde_add_global_key_provider_vault_v2('vault', '{v['address']}', 'tdeext', "
         f"'{token}', '{f['vault_ca']}')")
    q(c, "SELECT pg_tde_create_key_using_global_key_provider('vkey', 'vault')")
    sec = client.secrets.kv.v2.read_secret_version(path="vkey", mount_point="tdeext")
    assert len(base64.b64decode(sec["data"]["data"]["key"])) == 16  # pg_tde.cipher aes_128
    e = sql_error(c, "SELECT pg_tde_create_key_using_global_key_provider('vkey', 'vault')")
    assert e.pgcode == "22023"
    assert e.diag.message_primary == 'cannot create key "vkey" because it already exists'
    # seed 000's keyring-file tab, a database key and a tde_heap table on it
    q(c, f"SELECT pg_tde_add_global_key_provider_file('file', '{f['keyring']}')")
    q(c, "SELECT pg_tde_set_key_using_global_key_provider('fkey', 'file')")
    assert q(c, "SELECT key_name, key_provider_name FROM pg_tde_key_info()") == [("fkey", "file")]
    q(c, "CREATE TABLE secrets (a int) USING tde_heap")
    q(c, "INSERT INTO secrets VALUES (1), (2)")
    # a self-managed instance is not on pgcmk's encrypted mount: nothing is really encrypted
    assert q(c, "SELECT sum(a), pg_tde_is_encrypted('secrets') FROM secrets") == [(3, False)]
    e = sql_error(c, "SELECT pg_tde_set_key_using_global_key_provider('k', 'nope')")
    assert e.pgcode == "22023" and e.diag.message_primary == 'key provider "nope" does not exists'
    # seed 001's argument order (server certificate first): the agent says which file is which
    kport = d.get("/emulator/info").json()["ports"]["kmip"]
    e = sql_error(c, f"SELECT pg_tde_add_global_key_provider_kmip('kmip001', '127.0.0.1', "
                     f"{kport}, '{f['ca']}', '{f['cert']}', '{f['key']}')")
    assert e.pgcode == "XX000" and e.diag.message_primary.startswith(
        "could not connect to the KMIP server 127.0.0.1:")
    assert "(server certificate, client certificate, client key)" in e.diag.message_hint
    # an unreachable provider
    e = sql_error(c, "SELECT pg_tde_add_global_key_provider_vault_v2('down', "
                     f"'https://127.0.0.1:1', 'tdeext', '{token}', '{f['vault_ca']}')")
    assert e.pgcode == "XX000"
    assert e.diag.message_primary == \
        'failed to validate the Vault mount "tdeext" of key provider "down"'
    assert "does not answer" in e.diag.message_detail


def test_real_restart_refused_while_the_server_key_is_unreachable(real):
    d, inst, f = real
    c = real_connect(inst, d)
    q(c, "ALTER SYSTEM SET pg_tde.wal_encrypt = on")  # the server key is 'key' on KMIP (above)
    c.close()
    # the KMIP client's certificate is gone: the server key cannot be fetched, no start
    r = d.delete("/emulator/kmip/clients/jane_doe")
    assert r.status_code == 200, r.text
    r = d.post(f"{INSTANCES}/tdeext/restart")
    assert r.status_code == 503, r.text
    assert "FATAL:" in r.json()["error"]["message"] and "kmip" in r.json()["error"]["message"]
    assert _try_connect(inst, d) is None
    # the same identity gets a new certificate: the key is its own again, the server starts
    r = d.post("/emulator/kmip/clients", json={"name": "jane_doe"})
    assert r.status_code in (200, 201), r.text
    kf = r.json()["files"]
    postgres_file(f["dir"], "client_cert_jane_doe.pem", kf["certificate"])
    postgres_file(f["dir"], "client_key_jane_doe.pem", kf["key"])
    c = restart_and_connect(d, inst)
    assert q(c, "SHOW pg_tde.wal_encrypt") == [("on",)]
