#!/usr/bin/env bash
# Runs every test of the project, installing what the tests need first, so
# that it passes on a fresh machine: Debian packages, the pinned npm
# packages (conformance suite), Rust lints, unit, integration and doc tests.
#
# Usage: tests/run.sh            (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '\n==> %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------
# Each entry is "command:package". Only missing ones are installed, so a
# prepared machine skips apt entirely.
need_apt=()
for pair in "node:nodejs" "npm:npm" "jq:jq"; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  log "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# --- npm packages (pinned by lockfile) ------------------------------------
log "npm ci (conformance suite)"
(cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error)

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
log "unit and integration tests (nextest)"
cargo nextest run --workspace --locked --no-fail-fast
