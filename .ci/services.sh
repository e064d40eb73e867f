#!/usr/bin/env bash
# Install and start what the test suite talks to, from Debian's packages: PostgreSQL (listening on
# localhost only, its default), Redis (127.0.0.1 only, no persistence), Chromium (driven by
# Playwright in the browser test) and docker-compose (checks compose.yaml; nothing is run). Prints the environment the tests need, as NAME=value words for
# `env`. Idempotent; installing needs root. Chatter goes to stderr.
set -euo pipefail
PORT="${GALAXALIGN_PG_PORT:-5432}"
REDIS_PORT="${GALAXALIGN_TEST_REDIS_PORT:-6390}"
{
  need=()
  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)  # validates compose.yaml (no daemon needed)
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
      echo "services: ${need[*]} missing and this user cannot install them"
    fi
  fi
  if command -v redis-server >/dev/null 2>&1 && ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
      --logfile /tmp/galaxalign-test-redis.log
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || exit 0
  VER=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h 2>/dev/null | grep -q "^$VER main"; then
    pg_createcluster "$VER" main -p "$PORT" >/dev/null
  fi
  if ! pg_lsclusters -h | grep "^$VER main" | grep -q online; then
    pg_ctlcluster "$VER" main start
  fi
  PORT=$(pg_lsclusters -h | awk -v v="$VER" '$1==v && $2=="main" {print $3}')
  su postgres -c "psql -q -p $PORT -tc \"SELECT 1 FROM pg_roles WHERE rolname='galaxalign'\" | grep -q 1 || \
    psql -q -p $PORT -c \"CREATE ROLE galaxalign LOGIN SUPERUSER PASSWORD 'galaxalign'\""
  su postgres -c "psql -q -p $PORT -tc \"SELECT 1 FROM pg_database WHERE datname='galaxalign_test'\" | grep -q 1 || \
    createdb -p $PORT -O galaxalign galaxalign_test"
} >&2
PORT=$(pg_lsclusters -h 2>/dev/null | awk '$2=="main" {print $3}' | tail -1)
out=""
[ -n "$PORT" ] && out="GALAXALIGN_TEST_POSTGRES_URL=postgresql+psycopg://galaxalign:galaxalign@127.0.0.1:${PORT}/galaxalign_test"
redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && out="$out GALAXALIGN_TEST_REDIS_URL=redis://127.0.0.1:${REDIS_PORT}/0"
echo "$out"
