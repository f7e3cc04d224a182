#!/usr/bin/env bash
# deps.sh build|test|bench - install what pgcmk needs on Debian 12 when it is missing.
# As root it runs apt-get; otherwise it prints the exact apt-get line and fails.
set -euo pipefail
# curl and jq are in the build set: `make run` installs them because the README, the docs and
# cli/pgcmk (bash + curl + jq) need them to talk to the daemon it starts.
want=(libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev uuid-dev libyaml-dev
      pkg-config gcc make curl jq)
case "${1:-build}" in
  build) ;;
  test) want+=(python3-pytest python3-requests python3-azure azure-cli openssl libnss-myhostname clang-format chromium nodejs
              python3-pykmip python3-hvac python3-pytest-xdist
              postgresql-15 postgresql-client-15 postgresql-server-dev-15 libkrb5-dev python3-psycopg2
              gocryptfs fuse3)
        # npm: Debian's package, unless a Node.js that brings its own npm is installed
        command -v npm >/dev/null 2>&1 || want+=(npm) ;;
  bench) want+=(wrk) ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Debian's security suite ships postgresql-server-dev-15 at a newer minor than an installed
# server may be: install (upgrade) the server and client with it, so the extension pgcmk builds
# matches the server that loads it.
case " ${missing[*]-} " in
  *" postgresql-server-dev-15 "*) missing+=(postgresql-15 postgresql-client-15) ;;
esac
if [ ${#missing[@]} -gt 0 ]; then
  line="apt-get install -y ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "pgcmk: missing packages; run as root: apt-get update && $line" >&2
    exit 1
  fi
  echo "pgcmk: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# *.localhost must resolve for Python clients (vault hosts): myhostname in nsswitch.
if [ "${1:-build}" = test ] && ! getent hosts probe.vault.localhost >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && [ -f /etc/nsswitch.conf ]; then
    sed -i 's/^hosts:\s*files\b\(.*\)$/hosts:          files myhostname\1/' /etc/nsswitch.conf
    sed -i 's/myhostname\(.*\)myhostname/myhostname\1/' /etc/nsswitch.conf
  fi
  getent hosts probe.vault.localhost >/dev/null 2>&1 ||
    echo "pgcmk: warning: *.vault.localhost does not resolve (add myhostname to hosts: in /etc/nsswitch.conf)" >&2
fi
exit 0
