"""docs/kes.md runs as written, twice in a row (once on the ASan build:
conftest.walkthrough_runs), on a daemon of its own (test_docs.py runs the others)."""
from test_docs import run_twice


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
