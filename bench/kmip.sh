#!/usr/bin/env bash
# bench/kmip.sh BUILD_DIR [--dry] - KMIP Get throughput of pgcmkd against PyKMIP, in the same run
# (bench/README.md, section KMIP). build/bench/kmip_bench registers a 32-byte AES key as pg_tde
# does, then Gets it (a) N times over one kept-alive mTLS connection and (b) M times with a new
# connection per Get (handshake + Get + close, as pg_tde does).
#   pgcmkd: a fresh data dir, --kmip-port 0, client credentials from POST /emulator/kmip/clients.
#   PyKMIP: /usr/bin/pykmip-server with a PKI made by openssl (TLS 1.2 only, client auth on), on a
#           free port, stopped by PID.
# --dry: pgcmkd may answer Operation Not Supported (before the KMIP operations exist); PyKMIP is
# skipped. Environment: KMIP_N (default 20000), KMIP_M (1000), KMIP_PY_N (1000), KMIP_PY_M (100),
# KMIP_THREADS (1), BENCH_KEEP=1 keeps the work directory. Exit 1 when something does not work; a
# missed target prints MISSED only.
set -euo pipefail
B=${1:-build}
dry=
[ "${2:-}" = --dry ] && dry=--dry
here=$(cd "$(dirname "$0")" && pwd)
bdir=$(cd "$B" && pwd)
bin=$bdir/pgcmkd
tool=$bdir/bench/kmip_bench
N=${KMIP_N:-20000} M=${KMIP_M:-1000} PN=${KMIP_PY_N:-1000} PM=${KMIP_PY_M:-100}
TH=${KMIP_THREADS:-1}
PY=/usr/bin/python3
for t in curl jq openssl "$bin" "$tool"; do
  command -v "$t" >/dev/null || { echo "kmip bench: $t is missing" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/pgcmk-kmip-bench.XXXXXX")
pid= ppid_=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; fi
  if [ -n "$ppid_" ]; then kill -- -"$ppid_" 2>/dev/null && wait "$ppid_" 2>/dev/null; fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kmip bench: work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
die() { echo "kmip bench: FAIL: $*" >&2; exit 1; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
field() { awk -v k="$1" '{for (i=1;i<NF;i++) if ($i==k) {print $(i+1); exit}}'; } # value after word
rate() { sed -n 's/.* \([0-9]*\) gets\/s.*/\1/p'; }

echo "pgcmk KMIP bench $(date -u +%Y-%m-%dT%H:%M:%SZ)  loadavg $(cut -d' ' -f1-3 /proc/loadavg)  nproc $(nproc)"
echo "pgcmkd: $bin ($(git -C "$here" describe --always --dirty 2>/dev/null || echo unknown))"

# --- pgcmkd
mkdir -p "$work/pg"
"$bin" --data-dir "$work/pg" --port 0 --port-file "$work/pg/port" --kmip-port 0 --log-level warn \
  >"$work/pg.log" 2>&1 &
pid=$!
for _ in $(seq 200); do [ -s "$work/pg/port" ] && break; sleep 0.05; done
[ -s "$work/pg/port" ] || die "pgcmkd did not start ($(tail -3 "$work/pg.log"))"
P=$(cat "$work/pg/port")
C=(curl -sS --fail-with-body --cacert "$work/pg/ca.pem")
KP=$("${C[@]}" "https://127.0.0.1:$P/emulator/info" | jq -r '.ports.kmip // empty')
[ -n "$KP" ] || die "/emulator/info has no ports.kmip"
for _ in $(seq 100); do listening "$KP" && break; sleep 0.05; done
form='grant_type=client_credentials&client_id=00000000-0000-4000-8000-00000000c11e&client_secret=pgcmk-admin-secret&scope=https://management.azure.com/.default'
TOKEN=$("${C[@]}" -X POST -d "$form" "https://127.0.0.1:$P/adfs/oauth2/token" | jq -r .access_token)
[ -n "$TOKEN" ] && [ "$TOKEN" != null ] || die "no token from /adfs/oauth2/token"
cred=$("${C[@]}" -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"name":"bench"}' "https://127.0.0.1:$P/emulator/kmip/clients") || die "POST /emulator/kmip/clients: $cred"
cert=$(jq -r .files.certificate <<<"$cred") key=$(jq -r .files.key <<<"$cred")
ca=$(jq -r .files.caCertificate <<<"$cred")
PG=(--port "$KP" --cert "$cert" --key "$key" --ca "$ca" --threads "$TH")
echo "== pgcmkd KMIP port $KP (client bench; $TH thread(s))"
HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# measured SERVER_PID COUNT -- kmip_bench args: its output, plus the server's CPU per Get
measured() {
  local spid=$1 count=$2 t0 t1 out
  shift 3
  t0=$(ticks "$spid")
  out=$("$tool" "$@") || return 1
  t1=$(ticks "$spid")
  printf '%s  [server CPU %s us/Get]\n' "$out" "$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$count" 'BEGIN{printf "%.0f", t/hz*1e6/n}')"
}
out_pk=$(measured "$pid" "$N" -- "${PG[@]}" -n "$N" --mode keepalive $dry) || die "kmip_bench keepalive against pgcmkd"
echo "$out_pk"
out_pc=$(measured "$pid" "$M" -- "${PG[@]}" -m "$M" --mode perconn $dry) || die "kmip_bench perconn against pgcmkd"
echo "$out_pc"
out_p12=$(measured "$pid" "$M" -- "${PG[@]}" -m "$M" --mode perconn --tls12 $dry) || die "kmip_bench perconn --tls12 against pgcmkd"
echo "$out_p12" | sed 's/^perconn:/perconn (TLS 1.2):/'
kill "$pid" && wait "$pid" 2>/dev/null || true
pid=

if [ -n "$dry" ]; then
  echo "kmip bench: --dry: PyKMIP skipped"
  exit 0
fi

# --- PyKMIP, PKI as in shared/reference/key-providers.md 2.1
k=$work/py
mkdir -p "$k/pki" "$k/policies"
(
  cd "$k/pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj "/CN=kmip-bench-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1"
  printf "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n" >server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 30 -extfile server.ext
  openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=bench"
  printf "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n" >client.ext
  openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 30 -extfile client.ext
) >"$k/pki.log" 2>&1 || die "openssl PKI ($(tail -3 "$k/pki.log"))"
YP=$(free_port)
cat >"$k/server.conf" <<EOF
[server]
hostname=127.0.0.1
port=$YP
certificate_path=$k/pki/server.crt
key_path=$k/pki/server.key
ca_path=$k/pki/ca.crt
auth_suite=TLS1.2
policy_path=$k/policies
enable_tls_client_auth=True
logging_level=WARNING
database_path=$k/pykmip.db
EOF
# Its own session: PyKMIP's policy-directory monitor is a child process that a SIGTERM to the
# server alone leaves behind, so the whole group is signalled.
setsid /usr/bin/pykmip-server -f "$k/server.conf" -l "$k/server.log" >"$k/stdout.log" 2>&1 &
ppid_=$!
for _ in $(seq 200); do listening "$YP" && break; sleep 0.05; done
listening "$YP" || die "pykmip-server did not listen on $YP ($(tail -3 "$k/stdout.log"))"
PYA=(--port "$YP" --cert "$k/pki/client.crt" --key "$k/pki/client.key" --ca "$k/pki/ca.crt" --threads "$TH")
echo "== PyKMIP $(/usr/bin/python3 -c 'import kmip; print(kmip.__version__)' 2>/dev/null) port $YP (TLS 1.2)"
out_yk=$(measured "$ppid_" "$PN" -- "${PYA[@]}" -n "$PN" --mode keepalive) || die "kmip_bench keepalive against PyKMIP"
echo "$out_yk"
out_yc=$(measured "$ppid_" "$PM" -- "${PYA[@]}" -m "$PM" --mode perconn) || die "kmip_bench perconn against PyKMIP"
echo "$out_yc"
kill -- -"$ppid_" && wait "$ppid_" 2>/dev/null || true
ppid_=

pk=$(rate <<<"$out_pk") pc=$(rate <<<"$out_pc") p12=$(rate <<<"$out_p12")
yk=$(rate <<<"$out_yk") yc=$(rate <<<"$out_yc")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.0f", (b > 0) ? a / b : 0}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN{print (v >= t) ? "ok" : "MISSED"}'; }
printf '\n== summary\n'
printf '%-46s %10s %10s  %s\n' measure value target verdict
printf '%-46s %10s %10s  %s\n' "pgcmkd Gets/s, kept-alive connection" "$pk" ">= 5000" "$(verdict "$pk" 5000)"
printf '%-46s %10s %10s  %s\n' "pgcmkd Gets/s, new connection per Get" "$pc" "" info
printf '%-46s %10s %10s  %s\n' "pgcmkd Gets/s, new TLS 1.2 connection per Get" "$p12" "" info
printf '%-46s %10s %10s  %s\n' "PyKMIP Gets/s, kept-alive connection" "$yk" "" info
printf '%-46s %10s %10s  %s\n' "PyKMIP Gets/s, new connection per Get" "$yc" "" info
r=$(ratio "$pk" "$yk")
printf '%-46s %9sx %10s  %s\n' "pgcmkd / PyKMIP, kept-alive" "$r" ">= 50x" "$(verdict "$r" 50)"
r=$(ratio "$pc" "$yc")
printf '%-46s %9sx %10s  %s\n' "pgcmkd / PyKMIP, new connection per Get" "$r" ">= 50x" "$(verdict "$r" 50)"
r=$(ratio "$p12" "$yc")
printf '%-46s %9sx %10s  %s\n' "pgcmkd (TLS 1.2) / PyKMIP, new connection" "$r" "" info
