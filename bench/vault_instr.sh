#!/usr/bin/env bash
# bench/vault_instr.sh BUILD_DIR [N] - server instructions per Vault AppRole login (bench/README.md,
# section Vault): pgcmkd under valgrind --tool=callgrind on a fresh data dir, set up as
# bench/vault.sh does (seed 004's role kes-server, one secret id), then N logins (default 2000)
# over one keep-alive HTTPS connection from a Python client; the counters are zeroed after a
# warm-up of 200 logins and dumped after the N, so the figure is the instructions (Ir) of all of
# pgcmkd's threads for the N logins, divided by N. Unlike req/s it does not depend on the load of
# the machine. VAULT_INSTR_MODE=read measures the KV v2 read instead (a check that the figure of a
# request untouched by a change stays put). VAULT_INSTR_TOOL=cpu runs pgcmkd without valgrind and
# gives its user+system CPU time per request instead (kernel time included, e.g. the WAL writes,
# which callgrind does not see; noisier). Callgrind counts each byte of a `rep stosb` memset as
# one instruction: about 98,000 of the figure per request are libmicrohttpd zeroing its 64 KiB
# connection pool, which costs far less than that on the CPU. VAULT_INSTR_KEEP=1 keeps the work
# directory (with the callgrind.out.1-* files, one a thread, for callgrind_annotate
# --inclusive=yes). Needs valgrind, curl, jq, python3.
set -euo pipefail
B=${1:-build}
N=${2:-2000}
mode=${VAULT_INSTR_MODE:-login}
tool=${VAULT_INSTR_TOOL:-callgrind}
bin=$(cd "$B" && pwd)/pgcmkd
for t in valgrind callgrind_control curl jq python3 "$bin"; do
  command -v "$t" >/dev/null || { echo "vault instr: $t is missing" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/pgcmk-vault-instr.XXXXXX")
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; fi
  if [ "${VAULT_INSTR_KEEP:-0}" = 1 ]; then echo "vault instr: work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
die() { echo "vault instr: FAIL: $*" >&2; exit 1; }

# shellcheck source=bench/vault_setup.sh
. "$(dirname "$0")/vault_setup.sh"
# --kmip-port -1: no KMIP listener, whose RSA certificate would be made during the measure
if [ "$tool" = cpu ]; then
  vault_start 100 -- --kmip-port -1
else
  vault_start 600 valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" --dump-instr=no \
    --separate-threads=yes -- --kmip-port -1
fi
vault_prepare
export VA CA N mode tool
python3 - "$pid" <<'EOF'
import http.client, json, os, ssl, subprocess, sys, urllib.parse
pid = sys.argv[1]
tool = os.environ["tool"]
def ticks():  # (user, system) clock ticks of pgcmkd
    f = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]), int(f[12])
u = urllib.parse.urlsplit(os.environ["VA"])
ctx = ssl.create_default_context(cafile=os.environ["CA"])
ctx.check_hostname = False
c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
mode = os.environ["mode"]
body = json.dumps({"role_id": os.environ["ROLE_ID"], "secret_id": os.environ["SECRET_ID"]})
def one():
    if mode == "read":
        c.request("GET", "/v1/secret/data/bench/read", headers={"X-Vault-Token": os.environ["TOKEN"]})
    else:
        c.request("POST", "/v1/auth/approle/login", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit("vault instr: %s answered %d: %s" % (mode, r.status, data[:200]))
for _ in range(200):
    one()
if tool == "cpu":
    t0 = ticks()
else:
    subprocess.run(["callgrind_control", "-z", pid], check=True, stdout=subprocess.DEVNULL)
for _ in range(int(os.environ["N"])):
    one()
if tool == "cpu":
    n, hz, t1 = int(os.environ["N"]), os.sysconf("SC_CLK_TCK"), ticks()
    us = [(t1[i] - t0[i]) / hz * 1e6 / n for i in (0, 1)]
    print("vault instr: %s: %.1f us of server CPU per request (user %.1f, system %.1f; %d requests)"
          % (mode, us[0] + us[1], us[0], us[1], n))
else:
    subprocess.run(["callgrind_control", "-d", "measured", pid], check=True, stdout=subprocess.DEVNULL)
EOF
[ "$tool" = cpu ] && exit 0
# one file per thread (callgrind.out.1-TT); the threads that make RSA keys in the background (the
# pool of src/crypto/pkey.c, started at start-up) are left out: their work is no login's
ir=0
for f in "$work"/callgrind.out.1-*; do
  grep -q 'rsa_pool_main' "$f" && continue
  t=$(awk '/^summary:/{print $2}' "$f")
  ir=$((ir + ${t:-0}))
done
[ "$ir" -gt 0 ] || die "no summary in $work/callgrind.out.1-*"
awk -v ir="$ir" -v n="$N" -v m="$mode" 'BEGIN{printf "vault instr: %s: %.0f instructions per request (%d requests, %.0f in all)\n", m, ir/n, n, ir}'
