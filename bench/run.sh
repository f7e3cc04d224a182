#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - pgcmkd's benchmarks (README.md beside this file has the figures).
# Every figure is the median of 3 runs; all 3 are printed. Fails only when something does not
# work (daemon does not start, non-2xx answers), never for a missed target (that prints MISSED).
set -euo pipefail
B=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$B" && pwd)/pgcmkd
startlat=$(cd "$B" && pwd)/bench/startlat
work=$(mktemp -d /tmp/pgcmk-bench.XXXXXX)
port=${BENCH_PORT:-18443}
dur=${BENCH_SECONDS:-5}
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
verdict() { # value target higher|lower
  if [ "$3" = higher ]; then awk -v v="$1" -v t="$2" 'BEGIN{print (v>=t)?"ok":"MISSED"}'
  else awk -v v="$1" -v t="$2" 'BEGIN{print (v<=t)?"ok":"MISSED"}'; fi
}
row() { printf '%-44s %12s %12s  %-8s %s\n' "$@"; }

start() { # data_dir [flags...]
  local d=$1; shift
  rm -f "$d/port"
  "$bin" --data-dir "$d" --port 0 --port-file "$d/port" --log-level error "$@" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 200); do [ -s "$d/port" ] && break; sleep 0.05; done
  [ -s "$d/port" ] || { echo "bench: pgcmkd did not start" >&2; exit 1; }
  P=$(cat "$d/port")
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }

# wrk prints "Requests/sec: N" and "Non-2xx or 3xx responses: N" when any failed.
wrk_rps() { # label wrk-args...
  local out label=$1
  shift
  out=$(wrk "$@" 2>&1)
  if grep -q -E "Non-2xx|Socket errors" <<<"$out" || ! grep -q "Requests/sec" <<<"$out"; then
    echo "bench: $label had errors:" >&2; echo "$out" >&2; exit 1
  fi
  awk '/Requests\/sec/{printf "%d\n", $2}' <<<"$out"
}

SUB=00000000-0000-4000-8000-000000000001
row "benchmark" "median" "target" "verdict" "runs"

# 1. start-up: exec -> accepting, exec -> first HTTPS 200 (data dir with its CA already made)
d="$work/start"
mkdir -p "$d"
"$startlat" "$bin" "$d" "$port" 1 >/dev/null        # first start makes the CA, keys, schema
mapfile -t lines < <("$startlat" "$bin" "$d" "$port" 3)
c=(); f=()
for l in "${lines[@]}"; do c+=("${l% *}"); f+=("${l#* }"); done
m=$(median "${c[@]}"); row "start: exec -> accepting (ms)" "$m" "<= 25" "$(verdict "$m" 25 lower)" "${c[*]}"
m=$(median "${f[@]}"); row "start: exec -> first HTTPS 200 (ms)" "$m" "<= 50" "$(verdict "$m" 50 lower)" "${f[*]}"

# 2. idle RSS, 1 s after start (three starts)
rss=()
for i in 1 2 3; do
  start "$work/rss$i"; sleep 1
  rss+=("$(awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$pid/status")"); stop
done
m=$(median "${rss[@]}"); row "idle RSS (MiB)" "$m" "<= 15" "$(verdict "$m" 15 lower)" "${rss[*]}"

# 3. ARM GET and durable PUT, HTTPS keep-alive, wrk -t2 -c16
start "$work/arm"
curl -sS --cacert "$work/arm/ca.pem" -o /dev/null -X PUT -H 'Content-Type: application/json' \
  -d '{"location":"eastus","tags":{"a":"b"}}' \
  "https://localhost:$P/subscriptions/$SUB/resourcegroups/bench-get?api-version=2021-04-01"
# keep-alive must hold: two requests, one connection
curl -sS --cacert "$work/arm/ca.pem" -o /dev/null -o /dev/null -v \
  "https://localhost:$P/emulator/health" "https://localhost:$P/emulator/health" 2>&1 |
  grep -q "Re-using existing connection" || { echo "bench: keep-alive is off" >&2; exit 1; }
get=()
for i in 1 2 3; do
  get+=("$(wrk_rps get -t2 -c16 -d"${dur}s" \
    "https://localhost:$P/subscriptions/$SUB/resourcegroups/bench-get?api-version=2021-04-01")")
done
m=$(median "${get[@]}"); row "ARM GET resource group (req/s)" "$m" ">= 10000" "$(verdict "$m" 10000 higher)" "${get[*]}"
put=()
for i in 1 2 3; do
  put+=("$(RUNID="n$i" wrk_rps put -t2 -c16 -d"${dur}s" -s "$here/put.lua" "https://localhost:$P")")
done
m=$(median "${put[@]}"); row "durable PUT resource group, sync=normal (req/s)" "$m" ">= 1500" "$(verdict "$m" 1500 higher)" "${put[*]}"
stop
start "$work/armfull" --sync full
put=()
for i in 1 2 3; do
  put+=("$(RUNID="f$i" wrk_rps put -t2 -c16 -d"${dur}s" -s "$here/put.lua" "https://localhost:$P")")
done
m=$(median "${put[@]}"); row "durable PUT resource group, sync=full (req/s)" "$m" ">= 1500" "$(verdict "$m" 1500 higher)" "${put[*]}"
stop

# 4. Key Vault: token issue, wrapKey and unwrapKey (RSA-2048, RSA-OAEP-256) over HTTPS
start "$work/kv"
C=(curl -sS --cacert "$work/kv/ca.pem" -H 'Content-Type: application/json')
"${C[@]}" -o /dev/null -X PUT -d '{"location":"eastus"}' \
  "https://localhost:$P/subscriptions/$SUB/resourcegroups/kvb?api-version=2021-04-01"
"${C[@]}" -o /dev/null -X PUT -d '{"location":"eastus","properties":{"tenantId":"72f98800-0000-4000-8000-00000000cafe","sku":{"family":"A","name":"standard"},"accessPolicies":[{"tenantId":"72f98800-0000-4000-8000-00000000cafe","objectId":"00000000-0000-4000-8000-00000000a0a0","permissions":{"keys":["all"]}}]}}' \
  "https://localhost:$P/subscriptions/$SUB/resourceGroups/kvb/providers/Microsoft.KeyVault/vaults/benchkv?api-version=2022-07-01"
form='grant_type=client_credentials&client_id=00000000-0000-4000-8000-00000000c11e&client_secret=pgcmk-admin-secret&scope=https://vault.azure.net/.default'
TOKEN=$(curl -sS --cacert "$work/kv/ca.pem" -X POST -d "$form" "https://localhost:$P/adfs/oauth2/token" | jq -r .access_token)
kid=$("${C[@]}" -X POST -H "Authorization: Bearer $TOKEN" -d '{"kty":"RSA","key_size":2048}' \
  --resolve "benchkv.vault.localhost:$P:127.0.0.1" \
  "https://benchkv.vault.localhost:$P/keys/k1/create?api-version=7.4" | jq -r .key.kid)
kpath=${kid#https://*/}
dek=$(head -c 32 /dev/urandom | basenc --base64url | tr -d '=')
wrapped=$("${C[@]}" -X POST -H "Authorization: Bearer $TOKEN" -d "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$dek\"}" \
  --resolve "benchkv.vault.localhost:$P:127.0.0.1" "$kid/wrapkey?api-version=7.4" | jq -r .value)
tok=()
for i in 1 2 3; do
  tok+=("$(BODY="$form" CTYPE=application/x-www-form-urlencoded wrk_rps token -t2 -c16 -d"${dur}s" \
    -s "$here/post.lua" "https://localhost:$P/adfs/oauth2/token")")
done
m=$(median "${tok[@]}"); row "token issue (req/s)" "$m" ">= 5000" "$(verdict "$m" 5000 higher)" "${tok[*]}"
wrap=()
for i in 1 2 3; do
  wrap+=("$(TOKEN=$TOKEN BODY="{\"alg\":\"RSA-OAEP-256\",\"value\":\"$dek\"}" wrk_rps wrap -t2 -c16 -d"${dur}s" \
    -s "$here/post.lua" -H "Host: benchkv.vault.localhost:$P" "https://127.0.0.1:$P/$kpath/wrapkey?api-version=7.4")")
done
m=$(median "${wrap[@]}"); row "wrapKey RSA-2048 OAEP-256 (req/s)" "$m" ">= 10000" "$(verdict "$m" 10000 higher)" "${wrap[*]}"
unwrap=()
for i in 1 2 3; do
  unwrap+=("$(TOKEN=$TOKEN BODY="{\"alg\":\"RSA-OAEP-256\",\"value\":\"$wrapped\"}" wrk_rps unwrap -t2 -c16 -d"${dur}s" \
    -s "$here/post.lua" -H "Host: benchkv.vault.localhost:$P" "https://127.0.0.1:$P/$kpath/unwrapkey?api-version=7.4")")
done
stop
speed=()
for i in 1 2 3; do
  speed+=("$(openssl speed -seconds 3 -multi "$(nproc)" rsa2048 2>/dev/null | awk '/^rsa 2048/{printf "%d\n", $6}')")
done
s=$(median "${speed[@]}")
m=$(median "${unwrap[@]}")
pct=$(awk -v u="$m" -v s="$s" 'BEGIN{printf "%d", 100*u/s}')
row "unwrapKey RSA-2048 OAEP-256 (req/s)" "$m" "" "" "${unwrap[*]}"
row "openssl speed -multi $(nproc) rsa2048 (sign/s)" "$s" "" "" "${speed[*]}"
row "unwrapKey as % of openssl sign/s" "$pct" ">= 80" "$(verdict "$pct" 80 higher)" ""
