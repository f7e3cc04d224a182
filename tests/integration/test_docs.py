"""Runs the docs/ walkthroughs as written: every ```sh block, in order, in one bash, against a daemon.
The walkthroughs that run twice on a daemon of their own are in test_docs_<name>.py: one file each,
so that pytest-xdist (--dist loadfile) can run them on both workers."""
import os
import re
import subprocess

import pytest

from conftest import walkthrough_runs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WALKTHROUGHS = ["docs/walkthrough-arm-basics.md", "docs/keyvault.md", "docs/postgres-cmk.md",
                "docs/revocation-drills.md", "docs/az-and-sdk.md"]
EXPECT = {
    "docs/walkthrough-arm-basics.md": ["pgcmk emulator", "201", "final: 200", "ResourceGroupNotFound",
                                       "MissingApiVersionParameter", "InvalidApiVersionParameter",
                                       "line", "LocationRequired", "MethodNotAllowed",
                                       "InvalidSubscriptionId"],
    "docs/keyvault.md": ["eyJ", ".vault.localhost:", "/keys/cmk/", "c2VjcmV0LWRlaw"],
    "docs/postgres-cmk.md": ["create: Succeeded", '"state":"Ready"', "state: Inaccessible",
                             '"accessible":false', "08006", '"availabilityState":"Unavailable"',
                             "state: Ready", '{"item":"widget","qty":3}',
                             "DataEncryptionUpdateNotSupported", "restore: Succeeded",
                             '["order-1"]', "replica: Succeeded", "cmk-replica replica",
                             "Access to the customer-managed key was"],
    "docs/az-and-sdk.md": ["Succeeded", ".vault.localhost:", "/keys/cmk/", "Ready\n", "4\n",
                           "deployment: Succeeded Ready", "cluster state: Ready", "refused:",
                           "AzureKeyVault\n", "server: Enabled Ready"],
    "docs/revocation-drills.md": [
        "created: Ready -", "policy removed: Inaccessible AzureKeyVaultMissingPermissions",
        "policy back: Ready -", "key disabled: Inaccessible AzureKeyVaultKeyDisabled",
        "key enabled: Ready -", "expires in an hour: Ready -",
        "two hours later: Inaccessible AzureKeyVaultKeyExpired", "exp moved: Ready -",
        "key deleted: Inaccessible AzureKeyVaultKeyNotFound", "key recovered: Ready -",
        "vault deleted: Inaccessible AzureKeyVaultKeyNotFound", "vault recovered: Ready -",
        "vault unreachable: Ready AzureKeyVaultUnreachable", "vault back: Ready -",
        "identity deleted: Inaccessible", "08006"],
}

WALKTHROUGHS.append("docs/cli.md")
EXPECT["docs/cli.md"] = ["servicePrincipal", '{"state":"Ready","provisioningState":"Succeeded",'
                         '"type":"AzureKeyVault"}', "state: Inaccessible", '"accessible":false',
                         "Unavailable", "read refused (exit 1)", "state: Ready",
                         '{"item":"widget","qty":3}', "restore: Succeeded SystemManaged",
                         '["order-1"]', "cli-cluster primary", "Access to the customer-managed key",
                         "exit 3: ERROR: ResourceNotFound", "group deleted"]


def sh_blocks(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return re.findall(r"```sh\n(.*?)```", f.read(), re.S)


def run_twice(start_daemon, doc, expect, drop_env=("VAULT_",)):
    """Runs doc's sh blocks twice in a row (walkthrough_runs) on one daemon with its Vault listener."""
    d = start_daemon("--vault-port", "0")
    script = "set -euo pipefail\n" + "\n".join(sh_blocks(doc))
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop_env)}
    env.update(PGCMK=d.base, CA=d.ca)
    env.pop("PGCMKD_PID", None)
    for run in walkthrough_runs():
        r = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=180)
        assert r.returncode == 0, f"{doc} run {run} failed:\n{r.stdout}\n{r.stderr}"
        for expected in expect:
            assert expected in r.stdout, \
                f"{doc} run {run}: expected {expected!r} in output:\n{r.stdout}\n{r.stderr}"


@pytest.mark.parametrize("doc", WALKTHROUGHS)
def test_walkthrough_runs(doc, daemon):
    blocks = sh_blocks(doc)
    assert blocks, f"{doc} has no sh blocks"
    script = "set -euo pipefail\n" + "\n".join(blocks)
    env = dict(os.environ, PGCMK=daemon.base, CA=daemon.ca)
    r = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, f"{doc} failed:\n{r.stdout}\n{r.stderr}"
    out = r.stdout
    for expected in EXPECT[doc]:
        assert expected in out, f"{doc}: expected {expected!r} in output:\n{out}"


def test_coverage_table_is_fresh(daemon):
    """docs/coverage.md is generated from the route table: regenerate it with `make docs`."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("coverage_gen",
                                                  os.path.join(ROOT, "scripts", "coverage.py"))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    want = gen.render(daemon.get("/emulator/routes").json())
    with open(os.path.join(ROOT, "docs", "coverage.md"), encoding="utf-8") as f:
        assert f.read() == want, "docs/coverage.md is stale: run `make docs`"
