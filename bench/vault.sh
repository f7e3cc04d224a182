#!/usr/bin/env bash
# bench/vault.sh BUILD_DIR - the Vault-compatible API of pgcmkd under wrk (bench/README.md, section
# Vault): KV v2 read and write (durable, a new secret per request as pg_tde stores keys) with a
# token, AppRole login (KES), transit encrypt, all over keep-alive HTTPS (wrk -t2 -c16); and in the
# same run, as the ceiling, GET /v1/sys/health on the same listener (no token, no store) and the
# ARM-side GET /emulator/info on the main port. pgcmkd: a fresh data dir, --vault-port 0,
# --sync normal (the default). Each figure is the median of 3 runs of BENCH_SECONDS (default 5)
# after a 1 s warm-up. Exit 1 when something does not work (pgcmkd does not start, a setup call
# fails, keep-alive is off, wrk sees non-2xx answers or socket errors); a missed target prints
# MISSED only. BENCH_KEEP=1 keeps the work directory; BENCH_SMOKE=1 sends each request for 1 s
# on one connection and checks the answers (no figures). Needs wrk, curl, jq.
set -euo pipefail
B=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
bdir=$(cd "$B" && pwd)
bin=$bdir/pgcmkd
dur=${BENCH_SECONDS:-5}
for t in wrk curl jq "$bin"; do
  command -v "$t" >/dev/null || { echo "vault bench: $t is missing (scripts/deps.sh bench)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/pgcmk-vault-bench.XXXXXX")
pid=
fail=0
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "vault bench: work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
die() { echo "vault bench: FAIL: $*" >&2; exit 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN{print (v>=t)?"ok":"MISSED"}'; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
to_ms() { sed -E 's/([0-9.]+)us/\1 0.001/; s/([0-9.]+)ms/\1 1/; s/([0-9.]+)s$/\1 1000/' | awk '{printf "%.2f", $1*$2}'; }
summary=()
row() { summary+=("$(printf '%-40s %8s %9s  %-7s %-22s %s' "$@")"); }

echo "pgcmk Vault bench $(date -u +%Y-%m-%dT%H:%M:%SZ)  loadavg $(cut -d' ' -f1-3 /proc/loadavg)  nproc $(nproc)"
echo "pgcmkd: $bin ($(git -C "$here" describe --always --dirty 2>/dev/null || echo unknown))"

# shellcheck source=bench/vault_setup.sh
. "$here/vault_setup.sh"
vault_start 100
vault_prepare
# keep-alive must hold on the Vault listener (else every request pays a TLS handshake)
conns=$(curl -sS -o /dev/null -o /dev/null -w '%{num_connects}\n' --cacert "$CA" "$VA/v1/sys/health" "$VA/v1/sys/health" | awk '{n+=$1} END{print n}')
[ "$conns" = 1 ] || die "keep-alive is off on the Vault listener ($conns connections for 2 requests)"
if [ "${BENCH_SMOKE:-0}" = 1 ]; then # check every request once (wrk -t1 -c1 -d1s), measure nothing
  for mode in health read write login encrypt; do
    out=$(MODE=$mode RUN=smoke wrk -t1 -c1 -d1s -s "$here/vault.lua" "$VA" 2>&1) || true
    n=$(awk '/requests in/{print $1}' <<<"$out")
    bad=$(awk -F': *' '/Non-2xx or 3xx responses/{print $2}' <<<"$out")
    echo "  smoke $mode: ${n:-0} requests, non-2xx ${bad:-0}"
    [ -n "$n" ] && [ "$n" -gt 0 ] && [ -z "$bad" ] || fail=1
  done
  [ "$fail" = 0 ] || die "a smoke request failed"
  exit 0
fi
echo "== Vault listener $VA (wrk -t2 -c16, ${dur}s x 3 after a 1 s warm-up)"

# series LABEL MODE URL: 3 wrk runs; sets R_RPS R_P99 R_CPU; prints one line per run
series() {
  local label=$1 mode=$2 url=$3 out i s0 s1 rps n p99 non2xx sock
  R_RPS=() R_P99=() R_CPU=()
  MODE=$mode RUN="$label-warm" wrk -t2 -c16 -d1s -s "$here/vault.lua" "$url" >/dev/null 2>&1 || true
  for i in 1 2 3; do
    s0=$(ticks "$pid")
    out=$(MODE=$mode RUN="$label-$i" wrk -t2 -c16 -d"${dur}s" --latency -s "$here/vault.lua" "$url" 2>&1) || true
    s1=$(ticks "$pid")
    rps=$(awk '/^Requests\/sec/{printf "%d", $2}' <<<"$out")
    n=$(awk '/requests in/{print $1}' <<<"$out")
    if [ -z "$rps" ] || [ -z "$n" ] || [ "$n" -eq 0 ]; then
      echo "$out" >&2
      die "$label: wrk produced no result"
    fi
    p99=$(awk '$1=="99%"{print $2}' <<<"$out" | to_ms)
    non2xx=$(awk -F': *' '/Non-2xx or 3xx responses/{print $2}' <<<"$out")
    sock=$(grep -o 'Socket errors:.*' <<<"$out" || true)
    R_RPS+=("$rps") R_P99+=("$p99")
    R_CPU+=("$(awk -v t=$((s1 - s0)) -v hz="$HZ" -v n="$n" 'BEGIN{printf "%.0f", t/hz*1e6/n}')")
    printf '  %-8s run %d: %6d req/s  p99 %6.2f ms  server %4d us CPU/req  loadavg %s  non-2xx %s  %s\n' "$label" "$i" \
      "$rps" "$p99" "${R_CPU[-1]}" "$(cut -d' ' -f1 /proc/loadavg)" "${non2xx:-0}" "${sock:-socket errors: none}"
    if [ -n "$non2xx" ] || [ -n "$sock" ]; then
      echo "vault bench: FAIL: $label run $i: non-2xx ${non2xx:-0}, ${sock:-no socket errors}" >&2
      fail=1
    fi
  done
}
result() { # NAME TARGET|'' : a summary row of the last series
  local m
  m=$(median "${R_RPS[@]}")
  if [ -n "$2" ]; then
    row "$1" "$m" ">= $2" "$(verdict "$m" "$2")" "${R_RPS[*]}" "p99 $(median "${R_P99[@]}") ms, server $(median "${R_CPU[@]}") us CPU/req"
  else
    row "$1" "$m" "" "info" "${R_RPS[*]}" "server $(median "${R_CPU[@]}") us CPU/req"
  fi
}

series health health "$VA"
result "ceiling: Vault GET sys/health (req/s)" ''
series info info "https://127.0.0.1:$P"
result "peer: main port GET /emulator/info" ''
series kvread read "$VA"
result "Vault KV v2 read (req/s)" 15000
series kvwrite write "$VA"
result "Vault KV v2 write, durable (req/s)" 2000
# the written secrets read back (both wrk threads' names; wrk spends thread 0's first request() on a
# syntax check, so its names start at counter 2)
for name in "kvwrite-1-0-2" "kvwrite-1-1-1"; do
  code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$CA" -K "$work/auth" "$VA/v1/secret/data/bench/w-$name")
  [ "$code" = 200 ] || { echo "vault bench: FAIL: secret bench/w-$name written by wrk does not read back ($code)" >&2; fail=1; }
done
series login login "$VA"
result "Vault AppRole login (req/s)" 5000
series encrypt encrypt "$VA"
result "Vault transit encrypt (req/s)" ''

printf '\n== Vault summary (median of 3; all 3 runs listed)\n'
printf '%-40s %8s %9s  %-7s %-22s %s\n' benchmark median target verdict runs notes
printf '%s\n' "${summary[@]}"
[ "$fail" = 0 ] || die "see the errors above"
