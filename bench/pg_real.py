"""bench/pg_real.py PGCMKD - real PostgreSQL mode (issue 15): run by bench/pg.sh (read it first).

1. create -> accepting: PUT of a CMK cluster (its key at the PUT) and of a single server, each
   timed from the PUT to the first successful psycopg2 login (verify-full TLS, SCRAM), RUNS times;
   the median and the spread are printed against the 300 ms target.
2. memory per idle instance: PSS (/proc/PID/smaps_rollup) summed over each postmaster and its
   children, after the instances idled IDLE seconds.
3. MANY instances on one daemon: create them all (CMK clusters sharing one vault and key), total
   time, total PSS, a login to each, then delete them all (total time, no postmaster left).
Prints one line per figure. Exit 1 when something does not work; a missed target prints MISSED."""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))

from conftest import Daemon, new_name  # noqa: E402
from pgreal import (ADMIN_PASSWORD, REAL_FLAGS, SERVER_PASSWORD, RealPool,  # noqa: E402
                    _psycopg2, connection, postmasters_under, real_data_dir)
from pgtools import (CL_AV, SRV_AV, cluster_body, cluster_id, cmk_setup, server_body,  # noqa: E402
                     server_id, wait_lro)

TARGET_MS = 300


def fail(msg):
    print(f"pg bench: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def login_when_ready(d, rid, password, deadline_s=30):
    """Polls connection + login every 2 ms: the moment of the first successful login."""
    pg = _psycopg2()
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        r = d.get("/emulator/postgres/connection", params={"resourceId": rid})
        if r.status_code == 200:
            c = r.json()
            try:
                conn = pg.connect(host=c["host"], hostaddr=c["hostaddr"], port=c["port"],
                                  user=c["user"], dbname=c["dbname"], sslmode=c["sslmode"],
                                  sslrootcert=c["sslrootcert"], password=password,
                                  connect_timeout=5)
                t = time.monotonic()
                conn.close()
                return t
            except pg.OperationalError as e:
                last = str(e).strip()
        else:
            last = f"{r.status_code} {r.text[:200]}"
        time.sleep(0.002)
    fail(f"{rid}: no login within {deadline_s}s (last: {last})")


def put_cluster(d, env, name):
    rg, mi, _oid, _v, kid = env
    return d.put(f"{cluster_id(rg, name)}?api-version={CL_AV}", json=cluster_body(mi, kid))


def create_to_login(d, env, kind):
    rg = env[0]
    name = new_name("b")
    t0 = time.monotonic()
    if kind == "cluster":
        r = put_cluster(d, env, name)
        rid, password = cluster_id(rg, name), ADMIN_PASSWORD
    else:
        r = d.put(f"{server_id(rg, name)}?api-version={SRV_AV}", json=server_body())
        rid, password = server_id(rg, name), SERVER_PASSWORD
    if r.status_code not in (200, 201, 202):
        fail(f"PUT {rid}: {r.status_code} {r.text[:300]}")
    t = login_when_ready(d, rid, password)
    if r.status_code in (201, 202) and "Azure-AsyncOperation" in r.headers:
        st = wait_lro(d, r)
        if st.get("status") != "Succeeded":
            fail(f"{rid}: {st}")
    return (t - t0) * 1000.0, rid


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(p))
            except (OSError, ValueError, IndexError):
                pass
    return out


def instance_pss(root):
    """[(postmaster, processes, PSS kB)] of every postmaster under root."""
    out = []
    for pm in postmasters_under(root):
        procs = [pm, *children(pm)]
        out.append((pm, len(procs), sum(pss_kb(p) for p in procs)))
    return out


def verdict(v, target):
    return "ok" if v <= target else "MISSED"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pgcmkd")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--many", type=int, default=50)
    ap.add_argument("--idle", type=float, default=5.0)
    ap.add_argument("--work", default="/tmp", help="where the daemon's logs go")
    a = ap.parse_args()
    os.environ["PGCMKD"] = os.path.abspath(a.pgcmkd)
    pool = RealPool(a.work)
    try:
        # the pool's start, with more time for the initdb of a busy machine
        data_dir = real_data_dir()
        pool.dirs.append(data_dir)
        d = Daemon(data_dir, (*REAL_FLAGS, "--pg-max-instances",
                              str(max(50, a.many + 2 * a.runs + 2))), None, log_dir=pool.root,
                   http=True)
        pool.daemons.append(d)
        d.start(timeout=120)
        env = cmk_setup(d)
        created = []

        # 1. create -> first login
        for kind in ("cluster", "server"):
            ms = []
            for _ in range(a.runs):
                t, rid = create_to_login(d, env, kind)
                ms.append(t)
                created.append(rid)
            med = statistics.median(ms)
            print(f"create->login {kind:7s} n={len(ms)} median {med:.0f} ms  min {min(ms):.0f}  "
                  f"max {max(ms):.0f}  target <= {TARGET_MS} ms: {verdict(med, TARGET_MS)}")

        # 2. memory per idle instance
        time.sleep(a.idle)  # the instances idle: this is what is measured, not a wait for an effect
        inst = instance_pss(d.data_dir)
        if len(inst) != len(created):
            fail(f"{len(created)} resources but {len(inst)} postmasters")
        per = [kb / 1024.0 for _pm, _n, kb in inst]
        procs = statistics.median([n for _pm, n, _kb in inst])
        print(f"idle instance PSS median {statistics.median(per):.1f} MB  min {min(per):.1f}  "
              f"max {max(per):.1f}  ({procs:.0f} processes each, after {a.idle:.0f} s idle)")

        # delete the first ones, so the next step counts only its own
        t0 = time.monotonic()
        for rid in created:
            av = CL_AV if "/serverGroupsv2/" in rid else SRV_AV
            r = d.delete(f"{rid}?api-version={av}")
            if r.status_code not in (200, 202, 204):
                fail(f"DELETE {rid}: {r.status_code} {r.text[:300]}")
            if r.status_code == 202 and "Azure-AsyncOperation" in r.headers:
                wait_lro(d, r)
        end = time.monotonic() + 30
        while postmasters_under(d.data_dir) and time.monotonic() < end:
            time.sleep(0.01)
        if postmasters_under(d.data_dir):
            fail(f"postmasters left after the deletes: {postmasters_under(d.data_dir)}")
        print(f"delete {len(created)} instances: {time.monotonic() - t0:.2f} s")

        # 3. many instances
        rids = []
        t0 = time.monotonic()
        for _ in range(a.many):
            name = new_name("m")
            r = put_cluster(d, env, name)
            if r.status_code not in (200, 201, 202):
                fail(f"PUT cluster {len(rids) + 1}: {r.status_code} {r.text[:300]}")
            if "Azure-AsyncOperation" in r.headers:
                st = wait_lro(d, r, timeout=60)
                if st.get("status") != "Succeeded":
                    fail(f"cluster {len(rids) + 1}: {st}")
            rids.append(cluster_id(env[0], name))
        t_create = time.monotonic() - t0
        pg = _psycopg2()
        t0 = time.monotonic()
        for rid in rids:
            c = connection(d, rid)
            conn = pg.connect(**{k: c[k] for k in ("host", "hostaddr", "port", "user", "dbname",
                                                   "sslmode", "sslrootcert")},
                              password=ADMIN_PASSWORD, connect_timeout=10)
            conn.close()
        t_login = time.monotonic() - t0
        time.sleep(a.idle)  # idle, as above
        inst = instance_pss(d.data_dir)
        total = sum(kb for _pm, _n, kb in inst) / 1024.0
        nprocs = sum(n for _pm, n, _kb in inst)
        print(f"{a.many} instances: create {t_create:.1f} s ({t_create / a.many * 1000:.0f} ms "
              f"each)  {len(inst)} postmasters, {nprocs} processes, total PSS {total:.0f} MB "
              f"({total / max(1, len(inst)):.1f} MB each)  {a.many} logins {t_login:.2f} s")
        if len(inst) != a.many:
            fail(f"{a.many} clusters but {len(inst)} postmasters")
        daemon_pss = pss_kb(d.proc.pid) / 1024.0
        print(f"pgcmkd PSS with {a.many} instances: {daemon_pss:.0f} MB")
        t0 = time.monotonic()
        for rid in rids:
            r = d.delete(f"{rid}?api-version={CL_AV}")
            if r.status_code not in (200, 202, 204):
                fail(f"DELETE {rid}: {r.status_code} {r.text[:300]}")
            if r.status_code == 202 and "Azure-AsyncOperation" in r.headers:
                wait_lro(d, r)
        end = time.monotonic() + 60
        while postmasters_under(d.data_dir) and time.monotonic() < end:
            time.sleep(0.01)
        left = postmasters_under(d.data_dir)
        print(f"delete {a.many} instances: {time.monotonic() - t0:.1f} s, postmasters left: "
              f"{len(left)}")
        if left:
            fail(f"postmasters left: {left}")
    finally:
        problems = pool.finish()
        if problems:
            print("pg bench: " + "\n".join(problems), file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
