"""Real PostgreSQL mode (--pg-mode real, issue 15): the fixtures and helpers of the
tests/integration/test_pg_*.py files that run real instances.

* `real_daemon` (module) / `start_real(*flags)` (per test): a pgcmkd with `--pg-mode real
  --pg-ports 0` whose data directory is under a traversable path (`/tmp/pgcmk-real-*`, 0755): the
  PostgreSQL user (uid 101) must reach DATA_DIR/pg, which pytest's tmp_path (/tmp/pytest-of-root,
  0700) does not allow. The directory is removed afterwards, and any postmaster whose data
  directory lies under it is reported (and stopped) at teardown.
* `cmk_server(d)` / `cmk_cluster(d)`: a CMK single server / cluster (pgtools.py), ready.
* `connection(d, rid)`: GET /emulator/postgres/connection (the JSON); `connect(d, rid, password=...,
  **kw)`: a psycopg2 connection with sslmode=verify-full against pgcmk's CA.
* `wait_state(d, rid, state)`: polls the resource's state ("Ready", "Inaccessible", ...).

Every test using these is skipped with a clear reason when PostgreSQL 15 is not installed
(`apt-get install postgresql-15`, as scripts/deps.sh test does), never silently.
"""
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import DaemonPool, new_name, poll_until
from pgtools import (CL_AV, SRV_AV, cluster_body, cluster_id, cmk_setup, create_cluster,
                     create_server, server_body, server_id, set_server_key, settle)

PG_BIN = "/usr/lib/postgresql/15/bin"
POSTGRES = os.path.join(PG_BIN, "postgres")
ADMIN_PASSWORD = "P@ssw0rd-1234"          # pgtools.cluster_body's
SERVER_PASSWORD = "P@ssw0rd1234!"         # pgtools.server_body's
REAL_FLAGS = ("--pg-mode", "real", "--pg-ports", "0")

needs_postgres = pytest.mark.skipif(
    not os.access(POSTGRES, os.X_OK),
    reason=f"real PostgreSQL mode needs {POSTGRES}: apt-get install postgresql-15")

psycopg2 = None


def _psycopg2():
    global psycopg2
    if psycopg2 is None:
        psycopg2 = pytest.importorskip("psycopg2", reason="apt-get install python3-psycopg2")
    return psycopg2


def real_data_dir():
    """A data directory the PostgreSQL user can traverse (0755 under /tmp)."""
    d = tempfile.mkdtemp(prefix="pgcmk-real-", dir="/tmp")
    os.chmod(d, 0o755)
    return d


def postmasters_under(root):
    """PIDs of postmasters (postgres processes whose parent is not a postgres) running on a data
    directory under root."""
    out = []
    try:
        ps = subprocess.run(["ps", "-eo", "pid=,ppid=,comm=,args="], capture_output=True,
                            text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return out
    rows = [line.split(None, 3) for line in ps.splitlines()]
    pg = {r[0] for r in rows if len(r) >= 3 and r[2] == "postgres"}
    for r in rows:
        if len(r) == 4 and r[2] == "postgres" and r[1] not in pg and root in r[3]:
            out.append(int(r[0]))
    return out


class RealPool(DaemonPool):
    """DaemonPool whose daemons run in real mode on traversable data directories, removed at
    the end (after checking that no postmaster outlived its daemon)."""

    def __init__(self, root):
        super().__init__(root)
        self.dirs = []

    def start(self, *flags, data_dir=None, env=None, http=True):
        if data_dir is None:
            data_dir = real_data_dir()
            self.dirs.append(data_dir)
        return super().start(*REAL_FLAGS, *flags, data_dir=data_dir, env=env, http=http)

    def finish(self):
        problems = super().finish()
        for d in self.dirs:
            left = postmasters_under(d)
            if left:
                problems.append(f"{d}: postmasters still running after pgcmkd stopped: {left}")
                for pid in left:  # ours: their data directory is this test's
                    try:
                        os.kill(pid, signal.SIGQUIT)
                    except ProcessLookupError:
                        pass
                poll_until(lambda: not postmasters_under(d), timeout=10,
                           what="leftover postmasters to exit")
            shutil.rmtree(d, ignore_errors=True)
        return problems


def _real_pool(root):
    """Yields a RealPool; fails the test when a daemon or an instance misbehaved."""
    if not os.access(POSTGRES, os.X_OK):
        pytest.skip(f"real PostgreSQL mode needs {POSTGRES}: apt-get install postgresql-15")
    pool = RealPool(root)
    yield pool
    problems = pool.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def real_daemon(tmp_path_factory):
    """One real-mode daemon for a test module."""
    for pool in _real_pool(str(tmp_path_factory.mktemp("real"))):
        yield pool.start()


@pytest.fixture
def start_real(tmp_path):
    """start_real(*flags, data_dir=None): real-mode daemons of the test's own."""
    for pool in _real_pool(str(tmp_path)):
        yield pool.start


# --- resources ----------------------------------------------------------------------------------

def cmk_cluster(d, env=None, name=None, **props):
    """A CMK cluster (its own group, identity, vault and key unless env = cmk_setup(d)'s tuple);
    returns (rid, name, env)."""
    env = env or cmk_setup(d)
    rg, mi, _oid, _v, kid = env
    name = name or new_name("c")
    create_cluster(d, rg, name, cluster_body(mi, kid, **props))
    return cluster_id(rg, name), name, env


def cmk_server(d, env=None, name=None, **props):
    """A single server with a system-assigned identity granted on the vault, encrypted with the
    env's key; returns (rid, name, env)."""
    env = env or cmk_setup(d)
    rg, _mi, _oid, v, kid = env
    name = name or new_name("pg")
    create_server(d, rg, name, server_body(**props))
    r = d.get(f"{server_id(rg, name)}?api-version={SRV_AV}")
    assert r.status_code == 200, r.text
    v.policy("add", r.json()["identity"]["principalId"])
    set_server_key(d, rg, name, kid)
    settle(d)
    return server_id(rg, name), name, env


def state_of(d, rid):
    """properties.state (clusters) or properties.userVisibleState (servers)."""
    av = CL_AV if "/serverGroupsv2/" in rid else SRV_AV
    r = d.get(f"{rid}?api-version={av}")
    assert r.status_code == 200, r.text
    p = r.json()["properties"]
    return p.get("state") or p.get("userVisibleState")


def wait_state(d, rid, state, timeout=20):
    """Polls until the resource's state is `state` (the reconciler is settled first)."""
    settle(d, timeout=timeout)
    return poll_until(lambda: state_of(d, rid) == state, timeout=timeout,
                      what=f"{rid} to be {state} (is {state_of(d, rid)})")


# --- connecting ---------------------------------------------------------------------------------

def connection(d, rid):
    """GET /emulator/postgres/connection?resourceId=rid -> the JSON (asserted 200)."""
    r = d.get("/emulator/postgres/connection", params={"resourceId": rid})
    assert r.status_code == 200, r.text
    return r.json()


def connect(d, rid, password=ADMIN_PASSWORD, **kw):
    """A psycopg2 connection (autocommit) as the endpoint describes it (verify-full against
    pgcmk's CA); keyword arguments override (host=..., sslmode=..., user=..., dbname=...). Close
    it with contextlib.closing (psycopg2's `with conn` is a transaction, not a close)."""
    pg = _psycopg2()
    c = connection(d, rid)
    args = {k: c[k] for k in ("host", "hostaddr", "port", "user", "dbname", "sslmode",
                              "sslrootcert")}
    args.update(password=password, connect_timeout=10)
    args.update(kw)
    conn = pg.connect(**args)
    conn.autocommit = True
    return conn


def query(conn, sql, *params):
    """Runs one statement; the rows (or None)."""
    with conn.cursor() as cur:
        cur.execute(sql, params or None)
        return cur.fetchall() if cur.description else None


def poll_connect(d, rid, password=ADMIN_PASSWORD, timeout=10, **kw):
    """connect() until it works (the instance may still be starting)."""
    pg = _psycopg2()
    last = []

    def attempt():
        try:
            return connect(d, rid, password=password, **kw)
        except pg.OperationalError as e:
            last[:] = [str(e)]
            return None
    return poll_until(attempt, timeout=timeout, interval=0.05,
                      what=f"a connection to {rid} (last error: {last})")
