"""docs/pg-tde.md runs as written against a real-mode daemon with its KMIP listener: a
self-managed instance, seed 000's three provider tabs and steps 3-5 in psql, seed 001's argument
order, the Vault drill (logins refused in pg_tde's words, the restart refused, access back), clean
up."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT
from pgreal import _real_pool, needs_postgres
from test_docs import sh_blocks

pytestmark = [needs_postgres,
              pytest.mark.skipif(not os.path.exists("/usr/lib/postgresql/15/lib/pg_tde.so"),
                                 reason="pgcmk's pg_tde emulation is not installed: make pgext "
                                        "(as root, postgresql-server-dev-15)"),
              pytest.mark.skipif(shutil.which("psql") is None,
                                 reason="apt-get install postgresql-client-15")]
DOC = "docs/pg-tde.md"
EXPECT = [
    "running as postgres, pg_tde loaded\nt\n", "pgcmk emulation",
    "ERROR:  function pg_tde_add_key_using_global_key_provider_kmip(", "kmip|kmip\nvault|vault-v2\n"
    "file|file\n", "kmip: Ready\n", "key|vault\nvault-v2: Ready\n", "restart: running\non\n",
    "state: Inaccessible VaultKeyNotFound\npsql exit 2\n",
    'FATAL:  failed to retrieve principal key "key"', "restart exit 1\nServerStartFailed\n",
    "HINT:  pg_tde_add_global_key_provider_kmip takes (\n",
    "state: Ready\nrestart: running\nback\n", "deleted: Deleted"]


@pytest.fixture
def d(tmp_path):
    for pool in _real_pool(str(tmp_path)):
        yield pool.start("--kmip-port", "0")


def test_walkthrough_runs(d):
    blocks = sh_blocks(DOC)
    assert blocks, DOC
    script = "set -euo pipefail\n" + "\n".join(blocks)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGCMK", "PG", "VAULT_"))}
    env.update(PGCMK=d.base, CA=d.ca)
    r = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, f"{DOC} failed:\n{r.stdout}\n{r.stderr}"
    for expected in EXPECT:
        assert expected in r.stdout, f"{DOC}: expected {expected!r} in output:\n{r.stdout}\n{r.stderr}"
