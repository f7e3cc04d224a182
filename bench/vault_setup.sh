# bench/vault_setup.sh - sourced by bench/vault.sh and bench/vault_instr.sh: a fresh pgcmkd with
# the Vault listener, set up as bench/README.md (section Vault) says. The caller sets bin (pgcmkd),
# work (a fresh directory, removed by the caller) and defines die(); vault_start runs
# `LAUNCH... $bin --data-dir $work/pg ... EXTRA_FLAGS` in the background (LAUNCH empty, or e.g.
# valgrind with its options) and sets pid, P, CA, VA, TOKEN; vault_prepare then makes the transit
# key, the KV v2 secret, seed 004's AppRole role kes-server and one secret id, and exports TOKEN,
# ROLE_ID and SECRET_ID. The token goes to curl through a config file, never argv.

# vault_start WAIT_TENTHS [LAUNCH...] -- [EXTRA_FLAGS...]
vault_start() {
  local tenths=$1 launch=() extra=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do launch+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  extra=("$@")
  mkdir -p "$work/pg"
  "${launch[@]}" "$bin" --data-dir "$work/pg" --port 0 --port-file "$work/pg/port" --vault-port 0 \
    "${extra[@]}" --log-level warn >"$work/pg.log" 2>&1 &
  pid=$!
  for _ in $(seq "$tenths"); do [ -s "$work/pg/port" ] && break; sleep 0.1; done
  [ -s "$work/pg/port" ] || die "pgcmkd did not start ($(tail -3 "$work/pg.log"))"
  P=$(cat "$work/pg/port")
  CA=$work/pg/ca.pem
  info=$(curl -sS --fail-with-body --cacert "$CA" "https://127.0.0.1:$P/emulator/info") || die "/emulator/info: $info"
  VA=$(jq -r '.vault.address // empty' <<<"$info")
  TOKEN=$(jq -r '.vault.rootToken // empty' <<<"$info")
  [ -n "$VA" ] && [ -n "$TOKEN" ] || die "/emulator/info has no vault.address / vault.rootToken"
  printf 'header = "X-Vault-Token: %s"\n' "$TOKEN" >"$work/auth"
  chmod 600 "$work/auth"
}

v() { # v METHOD PATH [JSON]: one Vault call with the root token; its body on stdout
  local out
  out=$(curl -sS --fail-with-body --cacert "$CA" -K "$work/auth" -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} \
    "$VA/v1/$2") || die "$1 $2: $out"
  printf '%s' "$out"
}

vault_prepare() {
  v POST sys/mounts/transit '{"type":"transit"}' >/dev/null
  v POST transit/keys/bench '{"type":"aes256-gcm96"}' >/dev/null
  # the dev layout has secret/ as KV v2; make sure (a 400 "path is already in use" is fine)
  curl -sS --cacert "$CA" -K "$work/auth" -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d '{"type":"kv","options":{"version":"2"}}' "$VA/v1/sys/mounts/secret" || true
  v POST secret/data/bench/read '{"data":{"key":"q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="}}' >/dev/null
  v POST sys/auth/approle '{"type":"approle"}' >/dev/null
  v PUT sys/policies/acl/kes-policy '{"policy":"path \"kv/data/*\" {\n  capabilities = [\"create\", \"read\"]\n}\n"}' >/dev/null
  v POST auth/approle/role/kes-server '{"token_num_uses":0,"secret_id_num_uses":0,"period":"5m","token_policies":["kes-policy"]}' >/dev/null
  ROLE_ID=$(v GET auth/approle/role/kes-server/role-id | jq -r .data.role_id)
  SECRET_ID=$(v POST auth/approle/role/kes-server/secret-id | jq -r .data.secret_id)
  [ -n "$ROLE_ID" ] && [ -n "$SECRET_ID" ] || die "no role id / secret id"
  export TOKEN ROLE_ID SECRET_ID
}
