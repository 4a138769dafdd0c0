#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, user postgres, trust auth, database
# `test`) and Redis (127.0.0.1:6379) are installed and running. Idempotent.
set -euo pipefail

log() { printf '[services] %s\n' "$*"; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    log "apt-get update"
    $SUDO apt-get update -qq >/dev/null
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

pg_ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

# --- PostgreSQL ---
if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  apt_install postgresql postgresql-client
fi
if ! pg_ready; then
  ver=$(ls /etc/postgresql | sort -V | tail -n1)
  log "starting PostgreSQL $ver"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 1 60); do pg_ready && break; sleep 0.5; done
fi
pg_ready || { log "PostgreSQL did not come up on 127.0.0.1:5432"; exit 1; }
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
  # A fresh Debian install uses peer/scram auth: switch loopback to trust.
  ver=$(ls /etc/postgresql | sort -V | tail -n1)
  hba=/etc/postgresql/$ver/main/pg_hba.conf
  log "configuring trust auth for loopback in $hba"
  $SUDO sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  $SUDO sed -i -E 's/^(local\s+all\s+(postgres|all)\s+)\S+/\1trust/' "$hba"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
  sleep 1
fi
psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null
if [ "$(psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname='test'")" != 1 ]; then
  log "creating database test"
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test'
fi
log "PostgreSQL ready"

# --- Redis ---
redis_ready() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server
fi
if ! redis_ready; then
  log "starting Redis"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 40); do redis_ready && break; sleep 0.25; done
fi
redis_ready || { log "Redis did not come up on 127.0.0.1:6379"; exit 1; }
log "Redis ready"
