#!/usr/bin/env bash
# bench/kes.sh BUILD_DIR - a pgcmk KES server's key API (bench/README.md, section KES): generate
# and decrypt per second with the key cached, over kept-alive mutual TLS (build/bench/kes_bench:
# C connections x S seconds), then a cold generate that reads the key from Vault.
#   pgcmkd: a fresh data dir, --vault-port 0; seed 004's Vault through the Vault API with curl
#   (kv v1 mount `kv`, policy kes-policy, AppRole role kes-server, role_id and secret_id); an
#   API key's client certificate made with openssl (Ed25519, self-signed, EKU clientAuth, its
#   identity = SHA-256 of the SPKI) as the KES admin; POST /emulator/kes/servers.
#   cold: KES_COLD keys are created (timed: the create rate), the KES server is restarted with
#   the same config (PUT /emulator/kes/servers/bench: a new server, an empty cache), then each
#   key is generated once (each one reads Vault), then generate is measured on the warm cache.
# Environment: KES_CONNS (default 4), KES_SECONDS (5), KES_COLD (2000), BENCH_KEEP=1 keeps the
# work directory. Exit 1 when something does not work; a missed target prints MISSED only.
set -euo pipefail
B=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
bdir=$(cd "$B" && pwd)
bin=$bdir/pgcmkd
tool=$bdir/bench/kes_bench
CONNS=${KES_CONNS:-4} SECS=${KES_SECONDS:-5} COLD=${KES_COLD:-2000}
for t in curl jq openssl sha256sum "$bin" "$tool"; do
  command -v "$t" >/dev/null || { echo "kes bench: $t is missing" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/pgcmk-kes-bench.XXXXXX")
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kes bench: work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
die() { echo "kes bench: FAIL: $*" >&2; exit 1; }
rate() { sed -n 's/.* \([0-9]*\) req\/s.*/\1/p'; }
p50() { sed -n 's/.* p50 \([0-9.]*\) ms.*/\1/p'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN{print (v >= t) ? "ok" : "MISSED"}'; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

echo "pgcmk KES bench $(date -u +%Y-%m-%dT%H:%M:%SZ)  loadavg $(cut -d' ' -f1-3 /proc/loadavg)  nproc $(nproc)"
echo "pgcmkd: $bin ($(git -C "$here" describe --always --dirty 2>/dev/null || echo unknown))"

# --- pgcmkd and its Vault, set up as seed 004 does
mkdir -p "$work/pg"
"$bin" --data-dir "$work/pg" --port 0 --port-file "$work/pg/port" --vault-port 0 --kmip-port -1 \
  --log-level warn >"$work/pg.log" 2>&1 &
pid=$!
for _ in $(seq 200); do [ -s "$work/pg/port" ] && break; sleep 0.05; done
[ -s "$work/pg/port" ] || die "pgcmkd did not start ($(tail -3 "$work/pg.log"))"
P=$(cat "$work/pg/port")
CA=$work/pg/ca.pem
C=(curl -sS --fail-with-body --cacert "$CA")
info=$("${C[@]}" "https://127.0.0.1:$P/emulator/info") || die "/emulator/info: $info"
VA=$(jq -r '.vault.address // empty' <<<"$info")
VTOKEN=$(jq -r '.vault.rootToken // empty' <<<"$info")
[ -n "$VA" ] && [ -n "$VTOKEN" ] || die "/emulator/info has no vault.address / vault.rootToken"
printf 'header = "X-Vault-Token: %s"\n' "$VTOKEN" >"$work/vauth" # tokens never in argv
chmod 600 "$work/vauth"
v() { # v METHOD PATH [JSON]: one Vault call with the root token; its body on stdout
  local out
  out=$("${C[@]}" -K "$work/vauth" -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} \
    "$VA/v1/$2") || die "$1 $2: $out"
  printf '%s' "$out"
}
v POST sys/mounts/kv '{"type":"kv","options":{"version":"1"}}' >/dev/null
v PUT sys/policies/acl/kes-policy '{"policy":"path \"kv/*\" {\n   capabilities = [ \"create\", \"read\", \"delete\", \"list\" ]\n}\n"}' >/dev/null
v POST sys/auth/approle '{"type":"approle"}' >/dev/null
v POST auth/approle/role/kes-server '{"token_num_uses":"0","secret_id_num_uses":"0","period":"5m","policies":"kes-policy"}' >/dev/null
ROLE_ID=$(v GET auth/approle/role/kes-server/role-id | jq -r .data.role_id)
SECRET_ID=$(v POST auth/approle/role/kes-server/secret-id | jq -r .data.secret_id)
[ -n "$ROLE_ID" ] && [ -n "$SECRET_ID" ] || die "no role id / secret id"

# --- the admin's client certificate, as `kes identity new` makes it
openssl genpkey -algorithm ed25519 -out "$work/admin.key" 2>/dev/null || die "openssl genpkey"
ID=$(openssl pkey -in "$work/admin.key" -pubout -outform DER | sha256sum | cut -d' ' -f1)
# (a config of its own: openssl's default one makes a CA certificate, which KES does not count)
printf '[req]\ndistinguished_name=dn\nx509_extensions=ext\nprompt=no\n[dn]\nCN=%s\n[ext]\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n' \
  "$ID" >"$work/admin.cnf"
openssl req -x509 -new -config "$work/admin.cnf" -key "$work/admin.key" -out "$work/admin.crt" \
  -days 1 2>/dev/null || die "openssl req"
chmod 600 "$work/admin.key"

# --- the KES server (config.yml as JSON, which is YAML too)
jq -n --arg va "$VA" --arg ca "$CA" --arg id "$ID" --arg rid "$ROLE_ID" --arg sid "$SECRET_ID" \
  '{address: "127.0.0.1:0", admin: {identity: $id},
    cache: {expiry: {any: "5m", unused: "20s"}},
    keystore: {vault: {endpoint: $va, engine: "kv", version: "v1",
                       approle: {id: $rid, secret: $sid}, tls: {ca: $ca}}}}' >"$work/config.yml"
chmod 600 "$work/config.yml"
srv=$("${C[@]}" -X POST -H 'Content-Type: application/yaml' --data-binary "@$work/config.yml" \
  "https://127.0.0.1:$P/emulator/kes/servers?name=bench") || die "POST /emulator/kes/servers: $srv"
KP=$(jq -r .port <<<"$srv")
[ -n "$KP" ] && [ "$KP" != null ] || die "no KES port in $srv"
K=(curl -sS --fail-with-body --cacert "$CA" --cert "$work/admin.crt" --key "$work/admin.key")
out=$("${K[@]}" -X POST "https://127.0.0.1:$KP/v1/key/create/bench-key") || die "create bench-key: $out"
TOOL=(--port "$KP" --cert "$work/admin.crt" --key "$work/admin.key" --ca "$CA")
echo "== KES server bench on port $KP ($CONNS kept-alive mTLS connections x $SECS s; admin identity ${ID:0:16}...)"

# measured COUNT_FROM_OUTPUT -- kes_bench args: its output, plus pgcmkd's CPU per request
measured() {
  local t0 t1 out n
  t0=$(ticks "$pid")
  out=$("$tool" "$@") || return 1
  t1=$(ticks "$pid")
  n=$(sed -n 's/^[a-z]*: \([0-9]*\) requests.*/\1/p' <<<"$out")
  printf '%s  [pgcmkd CPU %s us/req]\n' "$out" "$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$n" 'BEGIN{printf "%.0f", (n > 0) ? t/hz*1e6/n : 0}')"
}
"$tool" "${TOOL[@]}" --mode generate --conns 1 --seconds 0.5 >/dev/null || die "warm-up generate"
out_gen=$(measured "${TOOL[@]}" --mode generate --conns "$CONNS" --seconds "$SECS") || die "kes_bench generate"
echo "$out_gen"
out_dec=$(measured "${TOOL[@]}" --mode decrypt --conns "$CONNS" --seconds "$SECS") || die "kes_bench decrypt"
echo "$out_dec"
out_cre=$(measured "${TOOL[@]}" --mode create --prefix bench-cold -n "$COLD" --conns "$CONNS") || die "kes_bench create"
echo "$out_cre"
# restart the KES server with the same config: a new server, an empty key cache, the same port
srv=$("${C[@]}" -X PUT -H 'Content-Type: application/yaml' --data-binary "@$work/config.yml" \
  "https://127.0.0.1:$P/emulator/kes/servers/bench") || die "PUT /emulator/kes/servers/bench: $srv"
[ "$(jq -r .port <<<"$srv")" = "$KP" ] || die "the restarted KES server is not on port $KP: $srv"
out_cold=$(measured "${TOOL[@]}" --mode cold --prefix bench-cold -n "$COLD" --conns "$CONNS") || die "kes_bench cold"
echo "$out_cold"
out_warm=$(measured "${TOOL[@]}" --mode cold --prefix bench-cold -n "$COLD" --conns "$CONNS") || die "kes_bench warm"
echo "$out_warm" | sed 's/^cold:/warm (same keys, cached):/'
kill "$pid" && wait "$pid" 2>/dev/null || true
pid=

g=$(rate <<<"$out_gen") d=$(rate <<<"$out_dec") c=$(rate <<<"$out_cre") k=$(rate <<<"$out_cold")
w=$(rate <<<"$out_warm")
printf '\n== summary\n'
printf '%-52s %10s %10s %10s  %s\n' measure "req/s" "p50 ms" target verdict
printf '%-52s %10s %10s %10s  %s\n' "generate, cached key, $CONNS conns" "$g" "$(p50 <<<"$out_gen")" ">= 15000" "$(verdict "$g" 15000)"
printf '%-52s %10s %10s %10s  %s\n' "decrypt, cached key, $CONNS conns" "$d" "$(p50 <<<"$out_dec")" ">= 15000" "$(verdict "$d" 15000)"
printf '%-52s %10s %10s %10s  %s\n' "create (written to Vault), $CONNS conns" "$c" "$(p50 <<<"$out_cre")" "" info
printf '%-52s %10s %10s %10s  %s\n' "cold generate (key read from Vault), $CONNS conns" "$k" "$(p50 <<<"$out_cold")" "" info
printf '%-52s %10s %10s %10s  %s\n' "the same keys again (cached), $CONNS conns" "$w" "$(p50 <<<"$out_warm")" "" info
