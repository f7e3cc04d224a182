#!/bin/sh
# check-engine-statements.sh - the ARM engine's `resources` statements are private to src/arm/.
# Every RES_* statement of src/store/catalog.def may be named (PGCMK_STMT_RES_...) only by a file
# under src/arm/; providers and other modules use the engine's functions (include/pgcmk/arm.h).
# Exits 1 and lists the offending lines otherwise. Run by `make unit` (and so `make test`).
set -eu
cd "$(dirname "$0")/.."
names=$(sed -n 's/^[[:space:]]*PGCMK_X_STMT(\(RES_[A-Z0-9_]*\).*/\1/p' src/store/catalog.def | sort -u)
[ -n "$names" ] || { echo "check-engine-statements: no RES_* statement in src/store/catalog.def" >&2; exit 1; }
pattern=$(printf '%s\n' $names | sed 's/^/PGCMK_STMT_/' | paste -sd'|' -)
bad=$(grep -rnE "\\b($pattern)\\b" src include tests bench --include='*.c' --include='*.h' 2>/dev/null |
      grep -v '^src/arm/' || true)
if [ -n "$bad" ]; then
    echo "check-engine-statements: only src/arm/ may bind the engine's resources statements;" >&2
    echo "use pgcmk_arm_resource_* (include/pgcmk/arm.h) instead:" >&2
    printf '%s\n' "$bad" >&2
    exit 1
fi
echo "check-engine-statements: ok ($(printf '%s\n' $names | wc -l) statements, used only in src/arm/)"
