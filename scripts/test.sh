#!/usr/bin/env bash
# Run every test of the workspace: unit, property, crash and end-to-end tests (the
# end-to-end tests start their own pcscd when it is installed), then a short, reproducible
# fuzz smoke: every cargo-fuzz target over its seeds and kept crash inputs plus
# FUZZ_SMOKE_RUNS mutations with a fixed seed (FUZZ_SMOKE_RUNS=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
cargo test --workspace --locked "$@"
runs=${FUZZ_SMOKE_RUNS:-20000}
if [[ $runs != 0 ]]; then
    FUZZ_RUNS=$runs FUZZ_SEED=1 bash scripts/fuzz.sh all 300
fi
