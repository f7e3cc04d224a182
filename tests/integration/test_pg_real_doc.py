"""docs/real-postgres.md runs as written, twice in a row (once on the ASan build:
conftest.walkthrough_runs), against a real-mode daemon: a CMK cluster, psql with verify-full, rows,
the key disabled (logins refused with the FATAL), enabled again, a point-in-time restore, a
replica, clean-up. Kept apart from test_pg_real.py: it is the slowest real-mode test (about 100 s
a run on a loaded 2-core machine)."""
import os
import subprocess

from conftest import ROOT, walkthrough_runs
from pgreal import needs_postgres, real_daemon  # noqa: F401
from test_docs import sh_blocks

pytestmark = needs_postgres
WALKTHROUGH = "docs/real-postgres.md"
WALKTHROUGH_EXPECT = [
    "servicePrincipal", "create: Ready",
    "hostaddr=127.0.0.1 port=N user=citus dbname=citus sslmode=verify-full sslrootcert=CA",
    "psql 'host=c-real-", "citus|citus|f|t", "order-1,order-2", "state: Inaccessible",
    "psql exit 2\nFATAL:  server is Inaccessible", "DETAIL: AzureKeyVaultKeyDisabled",
    "state: Ready\n2\n", "restore: Ready\norder-1\n", "replica: Ready\n2|t\npsql exit 1\n"
    "ERROR:  cannot execute INSERT in a read-only transaction", "group deleted"]


def test_walkthrough_runs_twice(real_daemon):
    blocks = sh_blocks(WALKTHROUGH)
    assert blocks, WALKTHROUGH
    script = "set -euo pipefail\n" + "\n".join(blocks)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGCMK", "PG"))}
    env.update(PGCMK=real_daemon.base, CA=real_daemon.ca)
    for run in walkthrough_runs():
        r = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=180)
        assert r.returncode == 0, f"{WALKTHROUGH} run {run} failed:\n{r.stdout}\n{r.stderr}"
        for expected in WALKTHROUGH_EXPECT:
            assert expected in r.stdout, \
                f"{WALKTHROUGH} run {run}: expected {expected!r} in output:\n{r.stdout}\n{r.stderr}"
