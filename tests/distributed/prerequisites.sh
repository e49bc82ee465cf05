#!/usr/bin/env bash
# What `make test-distributed` needs besides .venv: the PostgreSQL 15 server, Redis and sshd.
# CI runs as root on a fresh machine: install the Debian packages when they are missing.
set -euo pipefail
PG_BIN="${AUTO_REFUNDS_PG_BIN:-/usr/lib/postgresql/15/bin}"
missing=()
[[ -x "$PG_BIN/postgres" && -x "$PG_BIN/initdb" ]] || missing+=(postgresql-15)
command -v redis-server > /dev/null || missing+=(redis-server)
[[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
if (( ${#missing[@]} )); then
    if [[ $(id -u) != 0 ]]; then
        echo "make test-distributed needs ${missing[*]}: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "Installing ${missing[*]} ..."
    export DEBIAN_FRONTEND=noninteractive
    # Another apt run (an unattended upgrade) may hold the lock for a while: wait for it.
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi
