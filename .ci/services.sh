#!/usr/bin/env bash
# Makes sure the services the tests talk to are up on loopback. Idempotent.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
if ! pg_up; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up && echo "services: PostgreSQL ready on 127.0.0.1:5432" || echo "services: PostgreSQL NOT available"
