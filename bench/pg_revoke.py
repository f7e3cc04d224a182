#!/usr/bin/python3
"""Revocation of a real PostgreSQL (issue 15, item 4): over R rounds (default 20) on one CMK
cluster of a real-mode pgcmkd, the time from sending the key's PATCH {"enabled": false} to

  refused     the first new login refused with the Inaccessible FATAL (target <= 50 ms, issue:
              within 100 ms),
  terminated  the first failed query of a session opened before the PATCH,

and from the PATCH {"enabled": true} to the first new login accepted again (the cluster recovers
by itself). Median and p95 in ms; one line per figure plus a JSON summary on the last line.

Usage: bench/pg_revoke.py [PGCMKD] [--rounds R]. Needs postgresql-15 and python3-psycopg2; it
starts its own pgcmkd (--pg-mode real --pg-ports 0) on a fresh data directory under /tmp, and
stops it (and with it every instance) at the end."""
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from conftest import Daemon  # noqa: E402
from pgreal import connection  # noqa: E402
from pgtools import cluster_body, cluster_id, cmk_setup, create_cluster, new_name  # noqa: E402

PASSWORD = "P@ssw0rd-1234"  # cluster_body's


def now():
    return time.perf_counter()


def connect(info, **kw):
    return psycopg2.connect(host=info["host"], hostaddr=info["hostaddr"], port=info["port"],
                            user=info["user"], dbname=info["dbname"], password=PASSWORD,
                            sslmode="verify-full", sslrootcert=info["sslrootcert"],
                            connect_timeout=2, **kw)


def first_refusal(info, stop):
    """Tries new logins until one is refused as Inaccessible: the time of that answer."""
    while not stop.is_set():
        try:
            connect(info).close()
        except psycopg2.OperationalError as e:
            if "Inaccessible" in str(e):
                return now()
    return None


def first_failure(conn, stop):
    """Runs SELECT 1 on an open session until it fails: the time of the failure."""
    cur = conn.cursor()
    while not stop.is_set():
        try:
            cur.execute("SELECT 1")
            cur.fetchall()
        except psycopg2.Error:
            return now()
        time.sleep(0.0005)
    return None


def run_round(v, kid, info):
    res = {}
    conn = connect(info)
    conn.autocommit = True
    stop = threading.Event()
    threads = [threading.Thread(target=lambda: res.__setitem__("refused", first_refusal(info, stop))),
               threading.Thread(target=lambda: res.__setitem__("terminated",
                                                               first_failure(conn, stop)))]
    for t in threads:
        t.start()
    time.sleep(0.05)  # both loops are running before the revocation
    t0 = now()
    v.set_key(kid, enabled=False)
    deadline = time.monotonic() + 10
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        time.sleep(0.001)
    stop.set()
    for t in threads:
        t.join()
    conn.close()
    t1 = now()
    v.set_key(kid, enabled=True)
    while True:
        try:
            connect(info).close()
            break
        except psycopg2.OperationalError:
            if time.monotonic() > deadline + 10:
                raise
            time.sleep(0.001)
    back = now()
    return ((res["refused"] - t0) * 1000 if res.get("refused") else None,
            (res["terminated"] - t0) * 1000 if res.get("terminated") else None,
            (back - t1) * 1000)


def summary(name, xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return {"n": 0}
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return {"n": len(xs), "median": round(statistics.median(xs), 1), "p95": round(p95, 1),
            "min": round(xs[0], 1), "max": round(xs[-1], 1)}


def main():
    args = sys.argv[1:]
    binary = args[0] if args and not args[0].startswith("--") else os.path.join(HERE, "..", "build",
                                                                                "pgcmkd")
    rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else 20
    os.environ["PGCMKD"] = os.path.abspath(binary)
    work = tempfile.mkdtemp(prefix="pgcmk-real-", dir="/tmp")
    os.chmod(work, 0o755)
    d = Daemon(os.path.join(work, "data"), ("--pg-mode", "real", "--pg-ports", "0",
                                            "--log-level", "error"), None, log_dir=work)
    d.start(timeout=60)
    out = {}
    try:
        rg, mi, oid, v, kid = cmk_setup(d)
        name = new_name("cl")
        create_cluster(d, rg, name, cluster_body(mi, kid))
        info = connection(d, cluster_id(rg, name))
        connect(info).close()
        refused, terminated, back = [], [], []
        for _ in range(rounds):
            a, b, c = run_round(v, kid, info)
            refused.append(a)
            terminated.append(b)
            back.append(c)
        for key, xs, what in (("refused_ms", refused, "PATCH key disabled -> new login refused"),
                              ("terminated_ms", terminated,
                               "PATCH key disabled -> open session terminated"),
                              ("recovered_ms", back, "PATCH key enabled -> new login accepted")):
            out[key] = summary(key, xs)
            s = out[key]
            print(f"{what}: median {s.get('median')} ms, p95 {s.get('p95')} ms over {s['n']} "
                  f"(min {s.get('min')}, max {s.get('max')})")
    finally:
        rc = d.stop(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
