"""Runs the docs/ walkthroughs as written: every ```sh block, in order, in one bash, against a daemon."""
import os
import re
import subprocess

import pytest

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


def sh_blocks(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return re.findall(r"```sh\n(.*?)```", f.read(), re.S)


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


def test_kmip_walkthrough_runs_twice(start_daemon):
    d = start_daemon("--kmip-port", "0")
    script = "set -euo pipefail\n" + "\n".join(sh_blocks(KMIP_DOC))
    env = dict(os.environ, PGCMK=d.base, CA=d.ca)
    env.pop("PGCMKD_PID", None)
    for run in (1, 2):
        r = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, f"{KMIP_DOC} run {run} failed:\n{r.stdout}\n{r.stderr}"
        for expected in KMIP_EXPECT:
            assert expected in r.stdout + r.stderr, \
                f"{KMIP_DOC} run {run}: expected {expected!r} in output:\n{r.stdout}\n{r.stderr}"


# docs/vault.md needs a daemon with its Vault listener (a free port here; `make run` uses 8200) and
# must run twice in a row on the same daemon (it cleans up after itself).
VAULT_DOC = "docs/vault.md"
VAULT_EXPECT = ["Vault: https://127.0.0.1:", "Sealed          false",
                "Success! Enabled the kv secrets engine at: kv/", "Success! Uploaded policy: kes-policy",
                "Success! Enabled approle auth method at: approle/",
                "Success! Data written to: auth/approle/role/kes-server", "role_id ", "secret id: 36 characters",
                '{"policies":["default","kes-policy"],"period":300,"num_uses":0}', "v1 put: 204",
                "v1 get: bytes", 'v1 list: ["my-key"]', "v1 delete: 204",
                'v2 policy, v1 mount: {"errors":["permission denied"]} 403',
                '{"type":"kv","options":{"version":"2"}}', 'v2 put: {"version":1}',
                'v2 get: {"keys":["bytes"],"version":1}', 'v2 list: ["my-key"]', "v2 read of metadata: 403",
                "v2 delete: 204", "== Secret Path ==\nkv/data/demo", "kes-2\n",
                '{"current_version":2,"versions":["1","2"]}', '{"owner":"kes"}',
                "Success! Uploaded policy: pg-tde", '"policies":["default","pg-tde"]',
                "SELECT pg_tde_add_global_key_provider_vault_v2('vault',", "created: Ready",
                '{"current_version":1}', '["key"]',
                "secret deleted: Inaccessible VaultKeyNotFound", '{"accessible":false,"reasonCode":"VaultKeyNotFound"}',
                "secret undeleted: Ready -", "Success! Vault is sealed.", "sealed: Inaccessible VaultSealed",
                '{"errors":["Vault is sealed"]} 503', "unsealed: Ready -",
                "token revoked: Inaccessible VaultPermissionDenied", "new token in the file: Ready -",
                "role_id\n", "secret_id secret_id_accessor", "deleted vault-wal", "policies left: default root"]


def run_twice(start_daemon, doc, expect, drop_env=("VAULT_",)):
    """Runs doc's sh blocks twice in a row on one daemon with its Vault listener."""
    d = start_daemon("--vault-port", "0")
    script = "set -euo pipefail\n" + "\n".join(sh_blocks(doc))
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop_env)}
    env.update(PGCMK=d.base, CA=d.ca)
    env.pop("PGCMKD_PID", None)
    for run in (1, 2):
        r = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=180)
        assert r.returncode == 0, f"{doc} run {run} failed:\n{r.stdout}\n{r.stderr}"
        for expected in expect:
            assert expected in r.stdout, \
                f"{doc} run {run}: expected {expected!r} in output:\n{r.stdout}\n{r.stderr}"


def test_vault_walkthrough_runs_twice(start_daemon):
    run_twice(start_daemon, VAULT_DOC, VAULT_EXPECT)


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


# docs/kes.md needs a daemon with its Vault listener (KES servers are created by the walkthrough on
# free ports) and must run twice in a row on the same daemon (it cleans up after itself).
KES_DOC = "docs/kes.md"
KES_EXPECT = ["Vault: https://127.0.0.1:", "Success! Enabled the kv secrets engine at: kv/",
              "role id: 36 characters, secret id: 36 characters", "server identity: ",
              "Your API key:\n\n   kes:v1:", "Your Identity:\n\n   ", "admin identity: ",
              "export KES_SERVER=https://127.0.0.1:", '{"version":"string","up":true}',
              "dek: plaintext 32 bytes, ciphertext 76 bytes", '["my-key-1"]', "decrypt: same key",
              'Error: failed to create key "my-key-1": key already exists\nexit 1',
              "Error: failed to derive key: key does not exist\nexit 1", "v2 dek: 32 bytes",
              '{"v2_current_version":1}', '["my-app"]', "app dek: 32 bytes",
              'Error: failed to create key "my-key-2": not authorized: insufficient permissions\napp create: exit 1',
              "Error: failed to derive key: not authorized: insufficient permissions\napp dek denied: exit 1",
              "app dek again: 32 bytes", "Success! Vault is sealed.", '{"keystore_unreachable":true}',
              "sealed 30s: dek 32 bytes", "sealed 3m30s: exit 1", "unsealed: dek 32 bytes",
              "deleted, still cached: dek 32 bytes", "Error: failed to derive key: key does not exist\ndeleted: exit 1",
              "KES servers left: 0"]


def test_kes_walkthrough_runs_twice(start_daemon):
    run_twice(start_daemon, KES_DOC, KES_EXPECT, drop_env=("VAULT_", "KES_", "SSL_CERT"))
