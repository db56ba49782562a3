#!/usr/bin/env bash
# The test command: builds and runs every test of the workspace. Needs only cargo; tests
# that read ../shared/data skip, saying so, where it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked 2>&1
