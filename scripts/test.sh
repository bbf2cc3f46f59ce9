#!/usr/bin/env bash
# Run every check of the workspace: formatting and clippy first (cheap, and a style slip
# should not wait for the tests), then unit, property, crash, fuzz-replay and end-to-end
# tests (the end-to-end tests start their own pcscd when it is installed). Arguments go to
# `cargo test`. Fuzz campaigns are scripts/fuzz.sh; the tests replay their seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh test
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked "$@"
