#!/usr/bin/env bash
# Run every test of the workspace: unit, property, crash and end-to-end tests
# (the end-to-end tests start their own pcscd when it is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
cargo test --workspace --locked "$@"
