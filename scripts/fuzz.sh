#!/usr/bin/env bash
# Run the cargo-fuzz targets of fuzz/ one after the other, each for SECONDS, and print per
# target the executions, coverage (cov/ft of libFuzzer's final status line) and crashes.
# Exits non-zero if any target crashed, hung, leaked or ran out of memory.
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]        default: all 60
#
# Environment: FUZZ_SANITIZER (address, the default, or none: faster, no leak detection),
# FUZZ_RUNS (stop a target after this many executions even before SECONDS: the issue's bar
# is 10 million executions or 10 minutes, `FUZZ_RUNS=10000000 scripts/fuzz.sh all 600`),
# FUZZ_SEED (libFuzzer's -seed: with FUZZ_RUNS a run is reproducible, as the smoke of
# scripts/test.sh is), FUZZ_JOBS (cargo build jobs), FUZZ_ARGS (extra libFuzzer flags).
# Crash inputs that were fixed live in fuzz/regressions/<target>/ and are replayed first
# in every run, like the seeds (`cargo test -p vse-fuzz` replays both without libFuzzer).
# The targets' bodies are fuzz/src/targets/; the libFuzzer harness is fuzz/libfuzzer/.
# Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets stable rustc take the -Z flags
# cargo-fuzz passes. Installs cargo-fuzz when it is missing (scripts/setup-debian.sh fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(apdu_codec tlv auth_messages es10_requests vpcd_framing scp_unwrap mutual_open card
     server_body portal_body applet_module)
which=${1:-all}
secs=${2:-60}
san=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1

if [[ $which == all ]]; then
    targets=("${ALL[@]}")
elif [[ " ${ALL[*]} " == *" $which "* ]]; then
    targets=("$which")
else
    echo "unknown target '$which'; one of: all ${ALL[*]}" >&2
    exit 2
fi
bash scripts/setup-debian.sh fuzz
fuzz=(--fuzz-dir fuzz/libfuzzer)

# Seeds: generated from the conformance scripts and real protocol messages if absent.
if [[ ! -d fuzz/seeds ]]; then
    cargo run --release -p vse-fuzz --bin gen-seeds
fi

runs=()
[[ -n ${FUZZ_RUNS:-} ]] && runs+=(-runs="$FUZZ_RUNS")
[[ -n ${FUZZ_SEED:-} ]] && runs+=(-seed="$FUZZ_SEED")
# cargo-fuzz has no --jobs flag; cargo takes the job count from the environment.
[[ -n ${FUZZ_JOBS:-} ]] && export CARGO_BUILD_JOBS=$FUZZ_JOBS
for t in "${targets[@]}"; do
    cargo fuzz build "${fuzz[@]}" --sanitizer "$san" "$t"
done

failed=0
summary=()
for t in "${targets[@]}"; do
    corpus=fuzz/corpus/$t
    artifacts=fuzz/artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    log=$artifacts/last-run.log
    before=$(ls "$artifacts" | grep -cE '^(crash|leak|timeout|oom|slow-unit)-' || true)
    echo "== $t: ${secs}s"
    set +e
    # shellcheck disable=SC2086
    dirs=("$corpus" "fuzz/seeds/$t")
    [[ -d fuzz/regressions/$t ]] && dirs+=("fuzz/regressions/$t")
    cargo fuzz run "${fuzz[@]}" --sanitizer "$san" "$t" "${dirs[@]}" -- \
        -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" "${runs[@]}" ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    set -e
    after=$(ls "$artifacts" | grep -cE '^(crash|leak|timeout|oom|slow-unit)-' || true)
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    crashes=$((after - before))
    if [[ $rc -ne 0 && $crashes -eq 0 ]]; then crashes=1; fi
    if [[ $crashes -ne 0 ]]; then
        failed=1
        grep -E "panicked at|ERROR: |SUMMARY: |Test unit written" "$log" | head -8 || true
    fi
    took=$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' "$log" | tail -1 || true)
    line=$(printf '%-14s execs %10s  cov %6s  ft %7s  secs %4s  crashes %s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${took:-$secs}" "$crashes")
    echo "$line"
    summary+=("$line")
done

echo
echo "== summary (${secs}s per target, sanitizer $san)"
printf '%s\n' "${summary[@]}"
exit $failed
