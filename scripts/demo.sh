#!/usr/bin/env bash
# The main job: create a virtual card and talk to it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
cargo build --release --locked -q -p card-emulator
bin=target/release/card-emulator
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" init --state "$work/card.json"
"$bin" inspect --state "$work/card.json"
echo
echo "--- a scripted session over --stdio (C: command, R: response) ---"
session=(
    "00A4040C08F056534544454D4F"   # SELECT the demo application by name
    "00A4020402500100"             # SELECT EF 5001, answer FCP
    "0020008100"                   # VERIFY status: tries left
    "002000810431323334"           # VERIFY PIN 1234
    "00D6000005 48656C6C6F"        # UPDATE BINARY "Hello"
    "00B0000005"                   # READ BINARY 5 bytes
    "0084000008"                   # GET CHALLENGE 8 bytes
)
printf '%s\n' "${session[@]}" | "$bin" run --state "$work/card.json" --stdio |
    paste -d'\n' <(printf 'C: %s\n' "${session[@]}") <(sed 's/^/R: /')
