#!/usr/bin/env bash
# Builds the binaries the real-process tests drive, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v curl >/dev/null 2>&1; then
    echo "scripts/test.sh: curl is required by the conformance tests (apt-get install curl)" >&2
    exit 1
fi

cargo build --locked -p mimi-server -p mimi-cli
cargo test --workspace --locked
