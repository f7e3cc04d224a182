#!/usr/bin/env bash
# bench/pgtde.sh BUILD_DIR - pgcmk's pg_tde emulation (bench/README.md, section "pg_tde"):
# pg_tde_set_server_key_using_global_key_provider per provider type (keyring file, pgcmk's KMIP
# server over a new mutual-TLS connection per call as libkmip does, pgcmk's Vault KV v2), and a
# restart with pg_tde.wal_encrypt = on per provider (the postmaster fetches the server key through
# the agent before it starts). bench/pgtde.py does the work with the integration tests' helpers.
# Needs root, PostgreSQL 15 and the installed emulation (make pgext). Environment: PGTDE_RUNS
# (default 20). Exit 1 when something does not work.
set -euo pipefail
B=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$B" && pwd)/pgcmkd
PY=${PYTHON:-/usr/bin/python3}
for t in "$PY" "$bin" /usr/lib/postgresql/15/bin/postgres /usr/lib/postgresql/15/lib/pg_tde.so; do
  [ -e "$t" ] || command -v "$t" >/dev/null || { echo "pgtde bench: $t is missing" >&2; exit 1; }
done
"$PY" -c 'import psycopg2, requests, pytest, hvac' 2>/dev/null ||
  { echo "pgtde bench: apt-get install python3-psycopg2 python3-requests python3-pytest python3-hvac" >&2; exit 1; }
echo "pgcmk pg_tde bench $(date -u +%Y-%m-%dT%H:%M:%SZ)  loadavg $(cut -d' ' -f1-3 /proc/loadavg)  nproc $(nproc)"
exec "$PY" "$here/pgtde.py" "$bin" --runs "${PGTDE_RUNS:-20}"
