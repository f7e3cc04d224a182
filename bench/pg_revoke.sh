#!/usr/bin/env bash
# pg_revoke.sh [PGCMKD] [--rounds R] - revocation of a real PostgreSQL: PATCH key disabled ->
# first refused new login and -> open session terminated, then PATCH key enabled -> login
# accepted, over R rounds (default 20) on one CMK cluster; median and p95 in ms (target <= 50 ms).
# The rounds run in bench/pg_revoke.py (psycopg2); this checks what it needs first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
  echo "pg_revoke: skipped: PostgreSQL 15 is not installed (apt-get install postgresql-15)" >&2
  exit 0
fi
if ! /usr/bin/python3 -c 'import psycopg2' 2>/dev/null; then
  echo "pg_revoke: skipped: psycopg2 is missing (apt-get install python3-psycopg2)" >&2
  exit 0
fi
if [ ! -f "$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)/pgcmk.so" ]; then
  echo "pg_revoke: note: the pgcmk library is not installed (make pgext as root): the figures are pg_hba's" >&2
fi
exec /usr/bin/python3 "$here/pg_revoke.py" "$@"
