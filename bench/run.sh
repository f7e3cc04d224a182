#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - pgcmkd's benchmarks; bench/README.md has the method and the figures.
# Every figure is the median of 3 runs, and all 3 runs are printed. The script fails (exit 1) only
# when something does not work: pgcmkd does not start, keep-alive is off, a request gets a non-2xx
# answer or wrk sees socket errors. A missed target only prints MISSED.
# Environment: BENCH_SECONDS (wrk run length, default 5), BENCH_PORT (fixed port of the start-up
# test, default 18443), BENCH_KV=0 skips the Key Vault rows, BENCH_KEEP=1 keeps the work directory,
# BENCH_ONLY=kv,rss (any of start,rss,arm,floor,kv,kmip,vault,kes) runs only those sections; kmip is
# bench/kmip.sh (KMIP Gets against pgcmkd and PyKMIP), vault is bench/vault.sh (the Vault API),
# kes is bench/kes.sh (a KES server on pgcmk's Vault).
# Needs wrk, curl, jq and openssl (scripts/deps.sh bench); installs nothing.
set -euo pipefail
B=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
bdir=$(cd "$B" && pwd)
bin=$bdir/pgcmkd
dur=${BENCH_SECONDS:-5}
sport=${BENCH_PORT:-18443}
for t in wrk curl jq openssl "$bin" "$bdir/bench/startlat" "$bdir/bench/floor" "$bdir/bench/fsyncfloor" "$bdir/bench/rsafloor"; do
  command -v "$t" >/dev/null || { echo "bench: $t is missing (make bench builds and installs it)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/pgcmk-bench.XXXXXX")
pid=
fpid=
fail=0
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "$fpid" ] && kill "$fpid" 2>/dev/null && wait "$fpid" 2>/dev/null
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'echo "bench: FAIL: line $LINENO: $BASH_COMMAND exited $?" >&2' ERR
SUB=00000000-0000-4000-8000-000000000001
API=api-version=2021-04-01
NPROC=$(nproc)
HZ=$(getconf CLK_TCK)

die() { echo "bench: FAIL: $*" >&2; exit 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
verdict() { # value target higher|lower
  awk -v v="$1" -v t="$2" -v d="$3" 'BEGIN{ok=(d=="higher")?(v>=t):(v<=t); print ok?"ok":"MISSED"}'
}
summary=()
row() { # name median target verdict runs [notes]
  summary+=("$(printf '%-42s %8s %9s  %-7s %-24s %s' "$@")")
}
want() { [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *",$1,"* ]]; } # run section $1?
section() { printf '\n== %s  (loadavg %s)\n' "$1" "$(cut -d' ' -f1-3 /proc/loadavg)"; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
mb() { awk -v k="$1" 'BEGIN{printf "%.1f", k*1024/1e6}'; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; } # utime+stime of a process, clock ticks
steal() { awk '/^cpu /{print $9}' /proc/stat; }   # machine-wide steal ticks (hypervisor)
tsnap() {                                           # per-thread utime+stime: "tid ticks" lines
  local t
  for t in /proc/"$1"/task/*; do
    printf '%s %s\n' "${t##*/}" "$(awk '{print $14+$15}' "$t/stat" 2>/dev/null || echo 0)"
  done
}
# How the server's CPU in between two tsnap files spread over its threads.
tspread() {
  awk 'NR==FNR{a[$1]=$2; next} {d[$1]=$2-a[$1]; t+=d[$1]}
       END{for (k in d) { if (d[k]>m) m=d[k]; if (t>0 && d[k]*10>t) n++ }
           printf "%d threads >10%%, busiest %d%%", n, (t > 0) ? 100 * m / t : 0}' "$1" "$2"
}
# CPU used by everything outside this script's process tree (pgcmkd, wrk and the helpers are all
# descendants of this script): snapshot pid, ppid, own and reaped children's ticks of every user
# process, then sum the differences of the processes that are not ours. An indicator only: a
# process reaped in between brings its whole life's CPU with it.
snap() {
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | # processes come and go meanwhile
    awk '{pid=$1; sub(/^.*\) /,""); if (int($7/2097152)%2==0) print pid, $2, $12+$13, $14+$15}'
}
other_ticks() { # SNAP0 SNAP1
  awk -v root=$$ '
    NR==FNR {s[$1]=$3; c[$1]=$4; pp[$1]=$2; next}
    {pp[$1]=$2; n++; pid[n]=$1; self[n]=$3; ch[n]=$4}
    function ours(p,  d) { for (d=0; p>1 && d<64; d++) { if (p==root) return 1; p=pp[p] } return 0 }
    END { for (i=1;i<=n;i++) { p=pid[i]; if (ours(p)) continue
            t += (p in s) ? (self[i]-s[p]) + (ch[i]-c[p]) : self[i]+ch[i] }
          print t+0 }' "$1" "$2"
}
# Other processes share the 2 cores (a test run elsewhere halves a figure). Before each measured
# run, wait until other processes use < 15 % of a core over 0.5 s, at most 15 s in all.
quiet_budget=30
quiet_wait() {
  while :; do
    snap >"$work/snap0"
    sleep 0.5
    snap >"$work/snap1"
    [ $(($(other_ticks "$work/snap0" "$work/snap1") * 200)) -lt $((HZ * 15)) ] && return 0
    quiet_budget=$((quiet_budget - 1))
    if [ "$quiet_budget" -le 0 ]; then
      [ "$quiet_budget" -eq 0 ] && echo "  (the machine stays busy; no more waiting for quiet)"
      return 0
    fi
  done
}

start() { # data_dir [pgcmkd flags...]: sets pid and P (the HTTPS port)
  local d=$1
  shift
  mkdir -p "$d"
  rm -f "$d/port"
  "$bin" --data-dir "$d" --port 0 --port-file "$d/port" --log-level warn "$@" >>"$d/stderr.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do
    [ -s "$d/port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  [ -s "$d/port" ] || { tail -5 "$d/stderr.log" >&2; pid=; die "pgcmkd did not start ($d)"; }
  P=$(cat "$d/port")
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }

to_ms() { sed -E 's/([0-9.]+)us/\1 0.001/; s/([0-9.]+)ms/\1 1/; s/([0-9.]+)s$/\1 1000/' | awk '{printf "%.2f", $1*$2}'; }
# wrk_series LABEL SERVER_PID WRK_ARGS...: a 1 s warm-up, then 3 runs of $dur s, each after
# quiet_wait. Sets R_RPS, R_P50, R_P99, R_CPU (server CPU us per request) over the runs and
# R_NOISY (runs during which other processes used > 20 % of a core); prints one line per run.
wrk_series() {
  local label=$1 spid=$2 out i s0 s1 st0 st1 n rps p50 p99 cpu other non2xx sock
  shift 2
  R_RPS=() R_P50=() R_P99=() R_CPU=() R_NOISY=0
  RUN="$label-warm" wrk -t2 -c16 -d1s "$@" >/dev/null 2>&1 || true
  for i in 1 2 3; do
    quiet_wait
    export RUN="$label-$i"
    snap >"$work/snap0"
    st0=$(steal)
    s0=$(ticks "$spid")
    tsnap "$spid" >"$work/tsnap0"
    out=$(wrk -t2 -c16 -d"${dur}s" --latency "$@" 2>&1) || true
    snap >"$work/snap1"
    st1=$(steal)
    s1=$(ticks "$spid")
    tsnap "$spid" >"$work/tsnap1"
    rps=$(awk '/^Requests\/sec/{printf "%d", $2}' <<<"$out")
    n=$(awk '/requests in/{print $1}' <<<"$out")
    if [ -z "$rps" ] || [ -z "$n" ] || [ "$n" -eq 0 ]; then
      echo "$out" >&2
      die "$label: wrk produced no result"
    fi
    p50=$(awk '$1=="50%"{print $2}' <<<"$out" | to_ms)
    p99=$(awk '$1=="99%"{print $2}' <<<"$out" | to_ms)
    non2xx=$(awk -F': *' '/Non-2xx or 3xx responses/{print $2}' <<<"$out")
    sock=$(grep -o 'Socket errors:.*' <<<"$out" || true)
    cpu=$(awk -v t=$((s1 - s0)) -v hz="$HZ" -v n="$n" 'BEGIN{printf "%.0f", t/hz*1e6/n}')
    other=$(awk -v t="$(other_ticks "$work/snap0" "$work/snap1")" -v hz="$HZ" -v d="$dur" \
      -v max=$((NPROC * 100)) 'BEGIN{o=t/hz/d*100; printf "%.0f", (o > max) ? max : o}')
    printf '  %-7s run %d: %6d req/s  p50 %6.2f ms  p99 %6.2f ms  server %4d us CPU/req (%s)  other processes %3d%% of a core  steal %d ticks  non-2xx %s  %s\n' \
      "$label" "$i" "$rps" "$p50" "$p99" "$cpu" "$(tspread "$work/tsnap0" "$work/tsnap1")" "$other" \
      $((st1 - st0)) "${non2xx:-0}" "${sock:-socket errors: none}"
    if [ -n "$non2xx" ] || [ -n "$sock" ]; then
      echo "bench: FAIL: $label run $i: non-2xx ${non2xx:-0}, ${sock:-no socket errors}" >&2
      fail=1
    fi
    R_RPS+=("$rps") R_P50+=("$p50") R_P99+=("$p99") R_CPU+=("$cpu")
    if [ "$other" -gt 20 ]; then R_NOISY=$((R_NOISY + 1)); fi
  done
}
wrk_notes() { # the notes of a throughput row
  printf 'p50 %s ms, p99 %s ms, server %s us CPU/req' "$(median "${R_P50[@]}")" \
    "$(median "${R_P99[@]}")" "$(median "${R_CPU[@]}")"
  if [ "$R_NOISY" -gt 0 ]; then printf '; %d/3 runs noisy (other processes > 20%% of a core)' "$R_NOISY"; fi
}
wrk_row() { # NAME TARGET: a throughput row from the last wrk_series
  local m
  m=$(median "${R_RPS[@]}")
  row "$1" "$m" ">= $2" "$(verdict "$m" "$2" higher)" "${R_RPS[*]}" "$(wrk_notes)"
}

echo "pgcmk bench $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: nproc $NPROC, $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)," \
  "$(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
echo "pgcmkd: $bin ($(git -C "$here" describe --always --dirty 2>/dev/null || echo unknown))" \
  "wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)  work dir: $work"

# 1. Start-up. startlat forks+execs pgcmkd on the fixed port $sport, polls connect() every 200 us,
#    then makes one HTTPS GET /emulator/health. First start = empty data dir (makes the CA, the
#    server key, the token-signing RSA key, the master key and the schema); second start = the
#    same dir again.
if want start; then
  section "start-up (exec -> accepting, exec -> first HTTPS 200)"
  fc=() ff=() sc=() sf=()
  for i in 1 2 3; do
    quiet_wait
    out=$("$bdir/bench/startlat" "$bin" "$work/s$i" "$sport" 1) || die "start-up (first start) failed"
    fc+=("${out% *}") ff+=("${out#* }")
    quiet_wait
    out=$("$bdir/bench/startlat" "$bin" "$work/s$i" "$sport" 1) || die "start-up (second start) failed"
    sc+=("${out% *}") sf+=("${out#* }")
    echo "  run $i: first start ${fc[-1]} / ${ff[-1]} ms; second start ${sc[-1]} / ${sf[-1]} ms (accepting / first 200)"
  done
  m=$(median "${sc[@]}")
  row "start: exec -> accepting (ms)" "$m" "<= 50" "$(verdict "$m" 50 lower)" "${sc[*]}" "data dir with its CA"
  m=$(median "${sf[@]}")
  row "start: exec -> first HTTPS 200 (ms)" "$m" "<= 50" "$(verdict "$m" 50 lower)" "${sf[*]}" "data dir with its CA"
  row "first start: exec -> accepting (ms)" "$(median "${fc[@]}")" "" "info" "${fc[*]}" "empty dir: makes CA, keys, schema"
  row "first start: exec -> first 200 (ms)" "$(median "${ff[@]}")" "" "info" "${ff[*]}" "empty dir: makes CA, keys, schema"
fi

# 2. Idle RSS: VmRSS 1 s after start (data dirs of step 1, so the CA exists).
if want rss; then
  section "idle RSS"
  rss=()
  for i in 1 2 3; do
    [ -s "$work/s$i/ca.pem" ] || { start "$work/s$i"; stop; } # without section 1: make the CA first
    start "$work/s$i"
    sleep 1
    rss+=("$(rss_kb "$pid")")
    echo "  run $i: VmRSS ${rss[-1]} kB ($(mib "${rss[-1]}") MiB), threads $(awk '/^Threads/{print $2}' "/proc/$pid/status")"
    stop
  done
  m=$(median "${rss[@]}")
  row "idle RSS 1 s after start (MB)" "$(mb "$m")" "<= 15" "$(verdict "$m" 14648 lower)" "${rss[*]} kB" \
    "MB = 10^6 bytes (15 MB = 14648 kB); $(mib "$m") MiB"
fi

# 3. ARM GET of one resource group, HTTPS keep-alive, wrk -t2 -c16.
if want arm; then
  section "ARM GET resource group (keep-alive)"
  start "$work/arm"
  U="https://127.0.0.1:$P/subscriptions/$SUB/resourcegroups/bench-get?$API"
  CURL=(curl -sS --cacert "$work/arm/ca.pem")
  code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
    -d '{"location":"eastus"}' "$U")
  [ "$code" = 201 ] || [ "$code" = 200 ] || die "PUT of the GET target answered $code"
  # Keep-alive must hold (else every request pays a TLS handshake and wrk -c16 collapses to a few
  # hundred req/s): two GETs, then two PUTs, one connection each; and no "Connection: close".
  "${CURL[@]}" -v -o /dev/null "$U" -o /dev/null "$U" 2>&1 | grep -q "Re-using existing connection" ||
    die "keep-alive is off for GET (curl did not re-use its connection)"
  "${CURL[@]}" -v -X PUT -H 'Content-Type: application/json' -d '{"location":"eastus"}' \
    -o /dev/null "${U/bench-get/bench-ka1}" -o /dev/null "${U/bench-get/bench-ka2}" 2>&1 |
    grep -q "Re-using existing connection" || die "keep-alive is off for PUT (curl did not re-use its connection)"
  ! "${CURL[@]}" -D - -o /dev/null "$U" | grep -qi '^connection: *close' || die "GET answers Connection: close"
  echo "  keep-alive: on (curl re-used one connection for 2 GETs and for 2 PUTs; no Connection: close)"
  wrk_series get "$pid" "$U"
  wrk_row "ARM GET resource group (req/s)" 10000
  sleep 1
  rss_get=$(rss_kb "$pid")

  # 4. Durable PUTs of distinct resource groups (put.lua), sync=normal (default), then sync=full.
  section "durable PUT resource group, --sync normal"
  wrk_series putn "$pid" -s "$here/put.lua" "https://127.0.0.1:$P"
  wrk_row "durable PUT, --sync normal (req/s)" 1500
  # Groups of both wrk threads read back (wrk spends thread 0's first request() on a syntax check, so
  # its names start at counter 2).
  for n in bench-putn-2-0-2 bench-putn-2-1-1; do
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$P/subscriptions/$SUB/resourcegroups/$n?$API")
    [ "$code" = 200 ] || { echo "bench: FAIL: group $n PUT by wrk does not read back (HTTP $code)" >&2; fail=1; }
  done
  sleep 1
  rss_put=$(rss_kb "$pid")
  stop
  section "durable PUT resource group, --sync full"
  start "$work/armfull" --sync full
  wrk_series putf "$pid" -s "$here/put.lua" "https://127.0.0.1:$P"
  wrk_row "durable PUT, --sync full (req/s)" 1500
  sleep 1
  rss_full=$(rss_kb "$pid")
  stop
  echo "  RSS 1 s after: 3 GET runs $rss_get kB, then 3 PUT runs $rss_put kB; --sync full daemon after 3 PUT runs $rss_full kB"
  m=$(median "$rss_get" "$rss_put" "$rss_full")
  row "RSS after the throughput runs (MB)" "$(mb "$m")" "" "info" "$rss_get $rss_put $rss_full kB" \
    "after GET; after GET+PUT; sync=full daemon after PUT"
fi

# 5. Ceilings measured in the same run: a do-nothing MHD+GnuTLS server (floor.c, pgcmkd's own cert
#    and MHD flags) and the disk's serialised small-commit rate (fsyncfloor.c).
if want floor; then
  # the floor serves the ARM daemon's certificate
  [ -s "$work/arm/server.pem" ] || { start "$work/arm"; stop; }
  section "ceilings on this machine, same run"
  "$bdir/bench/floor" "$work/arm/server.pem" "$work/arm/server-key.pem" "$work/floor.port" 2>/dev/null &
  fpid=$!
  for _ in $(seq 100); do [ -s "$work/floor.port" ] && break; sleep 0.05; done
  [ -s "$work/floor.port" ] || die "floor server did not start"
  wrk_series floor "$fpid" "https://127.0.0.1:$(cat "$work/floor.port")/"
  row "ceiling: do-nothing MHD TLS GET (req/s)" "$(median "${R_RPS[@]}")" "" "info" "${R_RPS[*]}" "$(wrk_notes)"
  kill "$fpid"
  wait "$fpid" 2>/dev/null || true
  fpid=
  fs=()
  for i in 1 2 3; do
    quiet_wait
    out=$("$bdir/bench/fsyncfloor" "$work" 1000) || die "fsyncfloor failed"
    fs+=("${out%% *}")
    echo "  fsync   run $i: ${out%% *} commits/s (8 KiB pwrite + fdatasync), median $(cut -d' ' -f2 <<<"$out") us, p99 $(cut -d' ' -f3 <<<"$out") us"
  done
  row "ceiling: serialised fdatasync (commits/s)" "$(median "${fs[@]}")" "" "info" "${fs[*]}" \
    "bounds --sync full without group commit"
fi

# 6. Key Vault data plane (token, wrapKey, unwrapKey; RSA-2048, RSA-OAEP-256).
if [ "${BENCH_KV:-1}" != 0 ] && want kv; then
  section "Key Vault: token, wrapKey, unwrapKey"
  start "$work/kv"
  C=(curl -sS --cacert "$work/kv/ca.pem" -H 'Content-Type: application/json')
  "${C[@]}" -o /dev/null -X PUT -d '{"location":"eastus"}' \
    "https://localhost:$P/subscriptions/$SUB/resourcegroups/kvb?$API"
  "${C[@]}" -o /dev/null -X PUT -d '{"location":"eastus","properties":{"tenantId":"72f98800-0000-4000-8000-00000000cafe","sku":{"family":"A","name":"standard"},"accessPolicies":[{"tenantId":"72f98800-0000-4000-8000-00000000cafe","objectId":"00000000-0000-4000-8000-00000000a0a0","permissions":{"keys":["all"]}}]}}' \
    "https://localhost:$P/subscriptions/$SUB/resourceGroups/kvb/providers/Microsoft.KeyVault/vaults/benchkv?api-version=2022-07-01"
  form='grant_type=client_credentials&client_id=00000000-0000-4000-8000-00000000c11e&client_secret=pgcmk-admin-secret&scope=https://vault.azure.net/.default'
  TOKEN=$(curl -sS --cacert "$work/kv/ca.pem" -X POST -d "$form" "https://localhost:$P/adfs/oauth2/token" | jq -r .access_token)
  [ -n "$TOKEN" ] && [ "$TOKEN" != null ] || die "no token from /adfs/oauth2/token"
  kid=$("${C[@]}" -X POST -H "Authorization: Bearer $TOKEN" -d '{"kty":"RSA","key_size":2048}' \
    --resolve "benchkv.vault.localhost:$P:127.0.0.1" \
    "https://benchkv.vault.localhost:$P/keys/k1/create?api-version=7.4" | jq -r .key.kid)
  [ -n "$kid" ] && [ "$kid" != null ] || die "key create failed"
  kpath=${kid#https://*/}
  dek=$(head -c 32 /dev/urandom | basenc --base64url | tr -d '=')
  wrapped=$("${C[@]}" -X POST -H "Authorization: Bearer $TOKEN" -d "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$dek\"}" \
    --resolve "benchkv.vault.localhost:$P:127.0.0.1" "$kid/wrapkey?api-version=7.4" | jq -r .value)
  [ -n "$wrapped" ] && [ "$wrapped" != null ] || die "wrapkey failed"
  BODY="$form" CTYPE=application/x-www-form-urlencoded wrk_series token "$pid" \
    -s "$here/post.lua" "https://127.0.0.1:$P/adfs/oauth2/token"
  wrk_row "token issue (req/s)" 5000
  TOKEN=$TOKEN BODY="{\"alg\":\"RSA-OAEP-256\",\"value\":\"$dek\"}" wrk_series wrap "$pid" \
    -s "$here/post.lua" -H "Host: benchkv.vault.localhost:$P" "https://127.0.0.1:$P/$kpath/wrapkey?api-version=7.4"
  wrk_row "wrapKey RSA-2048 OAEP-256 (req/s)" 10000
  TOKEN=$TOKEN BODY="{\"alg\":\"RSA-OAEP-256\",\"value\":\"$wrapped\"}" wrk_series unwrap "$pid" \
    -s "$here/post.lua" -H "Host: benchkv.vault.localhost:$P" "https://127.0.0.1:$P/$kpath/unwrapkey?api-version=7.4"
  m=$(median "${R_RPS[@]}")
  row "unwrapKey RSA-2048 OAEP-256 (req/s)" "$m" "" "info" "${R_RPS[*]}" "$(wrk_notes)"
  # The ratio is taken in rounds, each one an unwrapKey run, a run of rsafloor (libmicrohttpd +
  # GnuTLS doing nothing but the same RSA operation per request, answering the same headers and
  # body) and `openssl speed`, back to back, so that the machine's drift between sections cannot
  # skew it; the figure is the median of the rounds' ratios (bench/README.md, finding 8).
  rm -f "$work/rsafloor.port"
  "$bdir/bench/rsafloor" "$work/kv/server.pem" "$work/kv/server-key.pem" "$work/rsafloor.port" 2>/dev/null &
  fpid=$!
  for _ in $(seq 100); do [ -s "$work/rsafloor.port" ] && break; sleep 0.05; done
  [ -s "$work/rsafloor.port" ] || die "rsafloor did not start"
  FP=$(cat "$work/rsafloor.port")
  rps_of() { # PORT: one unwrapKey wrk run of $dur s, its req/s
    TOKEN=$TOKEN BODY="{\"alg\":\"RSA-OAEP-256\",\"value\":\"$wrapped\"}" wrk -t2 -c16 -d"${dur}s" \
      -s "$here/post.lua" -H "Host: benchkv.vault.localhost:$P" \
      "https://127.0.0.1:$1/$kpath/unwrapkey?api-version=7.4" | awk '/Requests\/sec/{printf "%d", $2}'
  }
  rps_of "$FP" >/dev/null
  speed=() floors=() units=() r_srv=() r_floor=() r_eff=()
  for i in 1 2 3 4 5; do
    quiet_wait
    u=$(rps_of "$P")
    f=$(rps_of "$FP")
    s=$(openssl speed -seconds "$dur" -multi "$NPROC" rsa2048 2>/dev/null | awk '/^rsa 2048/{printf "%d", $6}')
    [ -n "$u" ] && [ -n "$f" ] && [ -n "$s" ] && [ "$s" -gt 0 ] && [ "$f" -gt 0 ] || die "round $i: no figure"
    units+=("$u") floors+=("$f") speed+=("$s")
    r_srv+=("$(awk -v a="$u" -v b="$s" 'BEGIN{printf "%d", 100*a/b}')")
    r_floor+=("$(awk -v a="$f" -v b="$s" 'BEGIN{printf "%d", 100*a/b}')")
    r_eff+=("$(awk -v a="$u" -v b="$f" 'BEGIN{printf "%d", 100*a/b}')")
    echo "  round   $i:  unwrapKey $u req/s  rsafloor $f req/s  openssl $s sign/s  unwrapKey/openssl ${r_srv[-1]} %  rsafloor/openssl ${r_floor[-1]} %"
  done
  kill "$fpid" 2>/dev/null && wait "$fpid" 2>/dev/null
  fpid=
  stop
  row "openssl speed -multi $NPROC rsa2048 (sign/s)" "$(median "${speed[@]}")" "" "info" "${speed[*]}" "5 rounds"
  row "rsafloor: MHD+GnuTLS+RSA only (req/s)" "$(median "${floors[@]}")" "" "info" "${floors[*]}" "5 rounds"
  row "unwrapKey in the rounds (req/s)" "$(median "${units[@]}")" "" "info" "${units[*]}" "5 rounds"
  row "rsafloor as % of openssl sign/s" "$(median "${r_floor[@]}")" "" "info" "${r_floor[*]}" "the stack's ceiling"
  row "unwrapKey as % of rsafloor" "$(median "${r_eff[@]}")" "" "info" "${r_eff[*]}" "pgcmk's own cost"
  pct=$(median "${r_srv[@]}")
  row "unwrapKey as % of openssl sign/s" "$pct" ">= 80" "$(verdict "$pct" 80 higher)" "${r_srv[*]}" "median of the rounds' ratios"
fi

# 7. KMIP: Gets of one AES key over a kept-alive mTLS connection and with a connection per Get,
#    against pgcmkd and /usr/bin/pykmip-server in the same run (bench/kmip.sh prints its own summary).
if want kmip; then
  section "KMIP Get, pgcmkd and PyKMIP (bench/kmip.sh)"
  "$here/kmip.sh" "$bdir" || { echo "bench: FAIL: bench/kmip.sh" >&2; fail=1; }
fi

# 8. The Vault-compatible API: KV v2 read/write, AppRole login, transit encrypt, with sys/health and
#    /emulator/info as the ceiling in the same run (bench/vault.sh prints its own summary).
if want vault; then
  section "Vault API (bench/vault.sh)"
  "$here/vault.sh" "$bdir" || { echo "bench: FAIL: bench/vault.sh" >&2; fail=1; }
fi

# 9. A KES server: generate and decrypt on a cached key over kept-alive mTLS, create, and a cold
#    generate that reads Vault (bench/kes.sh prints its own summary).
if want kes; then
  section "KES key API (bench/kes.sh)"
  "$here/kes.sh" "$bdir" || { echo "bench: FAIL: bench/kes.sh" >&2; fail=1; }
fi

printf '\n== summary (median of 3; all 3 runs listed)\n'
printf '%-42s %8s %9s  %-7s %-24s %s\n' benchmark median target verdict runs notes
printf '%s\n' "${summary[@]}"
if [ "$fail" != 0 ]; then
  echo "bench: FAIL: see the errors above" >&2
  exit 1
fi
