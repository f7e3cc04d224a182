#!/bin/sh
# check-step-loops.sh - every SQLite step outside src/store/ checks its result.
# Loops over rows go through pgcmk_db_each (or pgcmk_db_collect_json), which checks the final
# result once; a statement that gives at most one row uses pgcmk_db_step, or assigns the raw
# result to a variable on a line of its own (`rc = sqlite3_step(st);`) and then tells
# SQLITE_ROW / SQLITE_DONE from an error (pgcmk_db_fail). So outside src/store/ a
# `sqlite3_step(` in a loop condition or inside a comparison (`sqlite3_step(st) == SQLITE_ROW`,
# which reads a failed step as "no row") is refused, and so is a single step whose result is not
# compared with SQLITE_DONE / SQLITE_ROW within the next 8 lines.
# Exits 1 and lists the offending lines otherwise. Run by `make unit` (and so `make test`).
set -eu
cd "$(dirname "$0")/.."
all=$(grep -rn 'sqlite3_step[[:space:]]*(' src --include='*.c' --include='*.h' | grep -v '^src/store/' || true)
bad=$(printf '%s\n' "$all" | grep -v '^$' |
      grep -vE '^[^:]+:[0-9]+:[[:space:]]*[A-Za-z_][A-Za-z0-9_]*[[:space:]]*=[[:space:]]*sqlite3_step\([A-Za-z_][A-Za-z0-9_]*\);[[:space:]]*(/\*.*)?$' || true)
if [ -n "$bad" ]; then
    echo "check-step-loops: a SQLite step outside src/store/ must check its result;" >&2
    echo "loop with pgcmk_db_each, step once with pgcmk_db_step (include/pgcmk/store.h):" >&2
    printf '%s\n' "$bad" >&2
    exit 1
fi
# ... and each such single step looks at its result within the next 8 lines (SQLITE_DONE or
# SQLITE_ROW named: anything else then goes to pgcmk_db_fail, never read as "no row").
unchecked=$(printf '%s\n' "$all" | grep -v '^$' | while IFS=: read -r f l _; do
    sed -n "$((l + 1)),$((l + 8))p" "$f" | grep -q 'SQLITE_DONE\|SQLITE_ROW' || echo "$f:$l"
done)
if [ -n "$unchecked" ]; then
    echo "check-step-loops: a single step whose result is not compared with SQLITE_DONE or" >&2
    echo "SQLITE_ROW right after (use pgcmk_db_step or pgcmk_db_each):" >&2
    printf '%s\n' "$unchecked" >&2
    exit 1
fi
n=$(printf '%s\n' "$all" | grep -vc '^$' || true)
echo "check-step-loops: ok ($n single steps outside src/store/, no unchecked loop)"
