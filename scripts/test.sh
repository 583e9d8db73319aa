#!/usr/bin/env bash
# Builds the binaries the real-process tests drive, starts a throwaway PostgreSQL server, then
# runs every test of the workspace (the store's tests on both engines), and the conformance
# suite a second time with every provider's store on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
# The conformance tests speak to providers' federation API with curl, as a foreign peer would.
if ! command -v curl >/dev/null 2>&1; then
    echo "scripts/test.sh: installing curl for the conformance tests" >&2
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq curl
fi

pg_dir=$(mktemp -d /tmp/mimi-test-pg.XXXXXX)
stop_postgres() {
    ./scripts/postgres.sh stop "$pg_dir" >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
}
trap stop_postgres EXIT
MIMI_TEST_POSTGRES=$(./scripts/postgres.sh start "$pg_dir")
export MIMI_TEST_POSTGRES

cargo build --locked -p mimi-server -p mimi-cli
cargo test --workspace --locked
MIMI_CONFORMANCE_STORE=postgres cargo test --locked -p mimi-conformance --test integration
