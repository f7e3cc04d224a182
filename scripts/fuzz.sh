#!/usr/bin/env bash
# fuzz.sh BUILD_DIR SECONDS JOBS NAME:MAX_LEN:CORPUS:SEEDS[:DICT]...
# Runs each libFuzzer target BUILD_DIR/fuzz/NAME for SECONDS, JOBS of them at once (each uses one
# core), over BUILD_DIR/fuzz/CORPUS (new inputs go there; the checked-in SEEDS directory is only
# read) with -max_len=MAX_LEN and, if given, -dict=DICT. A crash input is written to
# BUILD_DIR/fuzz/crash-NAME-*. Each run's output is in BUILD_DIR/fuzz/NAME.log: printed in order
# when all are done (the whole log of a failed run, the summary of the others); exit 1 if any failed.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 BUILD_DIR SECONDS JOBS NAME:MAX_LEN:CORPUS:SEEDS[:DICT]..." >&2; exit 2; }
b=$1 secs=$2 jobs=$3
shift 3
run_one() {
    local b=$1 secs=$2 spec=$3 name max corpus seeds dict
    IFS=: read -r name max corpus seeds dict <<<"$spec"
    mkdir -p "$b/fuzz/$corpus"
    local args=(-max_total_time="$secs" -max_len="$max" -timeout=10 -artifact_prefix="$b/fuzz/crash-$name-")
    [ -n "$dict" ] && args+=(-dict="$dict")
    if ! "$b/fuzz/$name" "${args[@]}" "$b/fuzz/$corpus" "$seeds" >"$b/fuzz/$name.log" 2>&1; then
        echo "$name" >>"$b/fuzz/failed"
    fi
}
export -f run_one
rm -f "$b/fuzz/failed"
printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ "$b" "$secs" {}
for spec in "$@"; do
    name=${spec%%:*}
    if grep -qx "$name" "$b/fuzz/failed" 2>/dev/null; then
        echo "== $name: FAILED"
        cat "$b/fuzz/$name.log"
    else
        echo "== $name: $(grep -E '^Done [0-9]+ runs' "$b/fuzz/$name.log" || tail -n 1 "$b/fuzz/$name.log")"
    fi
done
if [ -s "$b/fuzz/failed" ]; then
    echo "fuzz: FAILED: $(tr '\n' ' ' <"$b/fuzz/failed")(crash inputs: $b/fuzz/crash-*)"
    exit 1
fi
