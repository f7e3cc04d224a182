"""docs/kmip.md runs as written, twice in a row (once on the ASan build:
conftest.walkthrough_runs), on a daemon of its own (test_docs.py runs the others)."""
import os
import subprocess

from conftest import walkthrough_runs
from test_docs import ROOT, sh_blocks


# docs/kmip.md needs a daemon with its KMIP listener (on a free port here; `make run` uses 5696) and
# must run twice in a row on the same daemon (it cleans up after itself).
KMIP_DOC = "docs/kmip.md"
KMIP_EXPECT = ["KMIP server: 127.0.0.1:", "client_cert_jane_doe.pem", "600 /tmp/client_key_jane_doe.pem",
               "600 /tmp/client_jane_doe.pem", "O = pgcmk, CN = jane_doe", "/tmp/client_cert_jane_doe.pem: OK",
               "pg_tde_add_global_key_provider_kmip('kmip', '127.0.0.1',",
               "located 1, got 32 bytes of AES", '"owner":"jane_doe","name":"key","state":"PreActive"',
               "Active\n", "created: Ready key true", "revoked: Compromised KeyCompromise",
               "database: Inaccessible KmipKeyRevoked", '"accessible":false', "explain names the object and its state",
               "activate again: exit 1:", "new database: Ready key-2",
               "old key: DestroyedCompromised", "old database: Inaccessible", "server certificate + CA: /",
               "client_key_jane_doe.pem", "deleted wal-demo\n", "deleted wal-demo-2", "jane_doe's live objects: 0"]


def test_kmip_walkthrough_runs_twice(start_daemon):
    d = start_daemon("--kmip-port", "0")
    script = "set -euo pipefail\n" + "\n".join(sh_blocks(KMIP_DOC))
    env = dict(os.environ, PGCMK=d.base, CA=d.ca)
    env.pop("PGCMKD_PID", None)
    for run in walkthrough_runs():
        r = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, f"{KMIP_DOC} run {run} failed:\n{r.stdout}\n{r.stderr}"
        for expected in KMIP_EXPECT:
            assert expected in r.stdout + r.stderr, \
                f"{KMIP_DOC} run {run}: expected {expected!r} in output:\n{r.stdout}\n{r.stderr}"
