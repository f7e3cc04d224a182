"""bench/pgtde.py PGCMKD [--runs N] - pgcmk's pg_tde emulation (issue 16): run by bench/pgtde.sh.

For each provider type (keyring file, pgcmk's KMIP server over a new mutual-TLS connection per
call as libkmip does, pgcmk's Vault KV v2 over HTTPS), on one self-managed instance:
1. pg_tde_set_server_key_using_global_key_provider(key, provider), RUNS times, each timed from
   the SQL call to its answer (the agent fetches the key from the provider at each call: a
   Locate+Get, a GET, a file read), median and spread;
2. a restart with pg_tde.wal_encrypt = on (the postmaster asks the agent for the server key
   before it starts), timed by POST /emulator/postgres/instances/{name}/restart, twice.
Prints one line per figure; exit 1 when something does not work."""
import argparse
import os
import pwd
import shutil
import statistics
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))

import hvac  # noqa: E402

from conftest import new_name  # noqa: E402
from pgreal import RealPool, _psycopg2  # noqa: E402

INSTANCES = "/emulator/postgres/instances"


def fail(msg):
    print(f"pgtde bench: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def connect(cs):
    conn = _psycopg2().connect(cs, connect_timeout=10)
    conn.autocommit = True
    return conn


def pg_file(work, name, data, mode=0o600):
    p = os.path.join(work, name)
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, mode)
    pw = pwd.getpwnam("postgres")
    os.chown(p, pw.pw_uid, pw.pw_gid)
    return p


def ms(samples):
    s = sorted(samples)
    return (f"median {statistics.median(s):.1f} ms, min {s[0]:.1f}, max {s[-1]:.1f} "
            f"(n={len(s)})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pgcmkd")
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    os.environ["PGCMKD"] = os.path.abspath(a.pgcmkd)
    if os.geteuid() != 0:
        fail("run as root (the provider files are given to the PostgreSQL user)")
    root = tempfile.mkdtemp(prefix="pgtde-bench-")
    pool = RealPool(root)
    work = None
    try:
        d = pool.start("--kmip-port", "0")
        r = d.post(INSTANCES, json={"name": new_name("bench")}, timeout=120)
        if r.status_code != 201:
            fail(r.text)
        name, cs = r.json()["name"], r.json()["connectionString"]
        work = tempfile.mkdtemp(prefix="pgtde-bench-files-", dir="/tmp")
        os.chmod(work, 0o755)
        pw = pwd.getpwnam("postgres")
        os.chown(work, pw.pw_uid, pw.pw_gid)
        info = d.get("/emulator/info").json()
        # KMIP: a client of pgcmk's server, its files readable by the PostgreSQL user
        c = d.post("/emulator/kmip/clients", json={"name": new_name("bench")}).json()
        kf = {k: pg_file(work, f"kmip-{k}.pem", open(c["files"][k], "rb").read())
              for k in ("certificate", "key", "caCertificate")}
        # Vault: a KV v2 mount, the root token in a file
        v = info["vault"]
        hv = hvac.Client(url=v["address"], token=v["rootToken"], verify=d.ca)
        mount = "kv-" + uuid.uuid4().hex[:8]
        hv.sys.enable_secrets_engine(backend_type="kv", path=mount, options={"version": "2"})
        tok = pg_file(work, "token", (v["rootToken"] + "\n").encode())
        ca = pg_file(work, "ca.pem", open(d.ca, "rb").read(), 0o644)
        conn = connect(cs)
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION pg_tde")
        cur.execute("SELECT pg_tde_add_global_key_provider_file('file', %s)",
                    (os.path.join(work, "keyring.per"),))
        cur.execute("SELECT pg_tde_add_global_key_provider_kmip('kmip', '127.0.0.1', %s, %s, "
                    "%s, %s)", (info["ports"]["kmip"], kf["certificate"], kf["key"],
                                kf["caCertificate"]))
        cur.execute("SELECT pg_tde_add_global_key_provider_vault_v2('vault', %s, %s, %s, %s)",
                    (v["address"], mount, tok, ca))
        cur.execute("ALTER SYSTEM SET pg_tde.wal_encrypt = on")
        for prov in ("file", "kmip", "vault"):
            key = f"server-key-{prov}"
            cur.execute("SELECT pg_tde_set_server_key_using_global_key_provider(%s, %s)",
                        (key, prov))  # made in the provider the first time
            samples = []
            for _ in range(a.runs):
                t = time.monotonic()
                cur.execute("SELECT pg_tde_set_server_key_using_global_key_provider(%s, %s)",
                            (key, prov))
                samples.append((time.monotonic() - t) * 1000)
            print(f"pgtde: set_server_key_using_global_key_provider via {prov}: {ms(samples)}")
            conn.close()
            restarts = []
            for _ in range(2):
                t = time.monotonic()
                r = d.post(f"{INSTANCES}/{name}/restart", timeout=120)
                if r.status_code != 200:
                    fail(f"restart with the {prov} server key: {r.text}")
                restarts.append((time.monotonic() - t) * 1000)
            conn = connect(cs)
            cur = conn.cursor()
            cur.execute("SHOW pg_tde.wal_encrypt")
            if cur.fetchone()[0] != "on":
                fail("pg_tde.wal_encrypt is not on after the restart")
            print(f"pgtde: restart with wal_encrypt = on, server key via {prov}: {ms(restarts)}")
        conn.close()
        d.delete(f"{INSTANCES}/{name}", timeout=120)
    finally:
        problems = pool.finish()
        shutil.rmtree(root, ignore_errors=True)
        if work:
            shutil.rmtree(work, ignore_errors=True)
        if problems:
            fail("; ".join(problems))


if __name__ == "__main__":
    main()
