"""docs/vault.md runs as written, twice in a row (once on the ASan build:
conftest.walkthrough_runs), on a daemon of its own (test_docs.py runs the others)."""
from test_docs import run_twice


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


def test_vault_walkthrough_runs_twice(start_daemon):
    run_twice(start_daemon, VAULT_DOC, VAULT_EXPECT)
