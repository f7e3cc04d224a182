#!/usr/bin/env bash
# bench/pg.sh BUILD_DIR - real PostgreSQL mode (bench/README.md, section "Real PostgreSQL"):
# create -> accepting connections of a real CMK cluster and single server (PUT -> first successful
# psycopg2 login, verify-full TLS; median of PG_RUNS, target <= 300 ms), PSS per idle instance
# (/proc/PID/smaps_rollup over the postmaster and its children), and PG_MANY instances on one
# daemon (create all, total time, total PSS, a login to each, delete all). bench/pg_real.py does
# the work with the integration tests' helpers (tests/integration/pgreal.py, pgtools.py).
#   pgcmkd: --pg-mode real --pg-ports 0 on a fresh data directory under /tmp (0755: the
#   PostgreSQL user must traverse it), removed at the end with every instance stopped.
# Environment: PG_RUNS (default 10), PG_MANY (50), PG_IDLE (5 s), BENCH_KEEP=1 keeps the logs.
# Run it as root on a quiet machine. Exit 1 when something does not work; a missed target
# prints MISSED only.
set -euo pipefail
B=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
bdir=$(cd "$B" && pwd)
bin=$bdir/pgcmkd
PY=${PYTHON:-/usr/bin/python3}
for t in "$PY" "$bin" /usr/lib/postgresql/15/bin/postgres; do
  command -v "$t" >/dev/null || { echo "pg bench: $t is missing (apt-get install postgresql-15)" >&2; exit 1; }
done
"$PY" -c 'import psycopg2, requests, pytest' 2>/dev/null ||
  { echo "pg bench: apt-get install python3-psycopg2 python3-requests python3-pytest" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/pgcmk-pg-bench.XXXXXX")
cleanup() {
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "pg bench: logs kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "pgcmk real PostgreSQL bench $(date -u +%Y-%m-%dT%H:%M:%SZ)  loadavg $(cut -d' ' -f1-3 /proc/loadavg)  nproc $(nproc)"
echo "pgcmkd: $bin ($(git -C "$here" describe --always --dirty 2>/dev/null || echo unknown))  $(/usr/lib/postgresql/15/bin/postgres --version)"
"$PY" "$here/pg_real.py" "$bin" --runs "${PG_RUNS:-10}" --many "${PG_MANY:-50}" \
  --idle "${PG_IDLE:-5}" --work "$work"
