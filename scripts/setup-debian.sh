#!/usr/bin/env bash
# Install what one job of this project needs on Debian (run as root), and nothing more:
#
#   scripts/setup-debian.sh demo   build + pcscd and the vpcd reader driver (the main job)
#   scripts/setup-debian.sh test   the demo's, plus the real tools the tests drive
#                                  (OpenSC, pcsc-tools, pyscard, clang/lld for the C
#                                  applets) and rustfmt/clippy checks
#   scripts/setup-debian.sh fuzz   the demo's build packages, plus cargo-fuzz
#
# Idempotent: packages already present are left alone.
set -euo pipefail

job=${1:-test}
build=(build-essential pkgconf libpcsclite-dev)
case $job in
    demo) packages=("${build[@]}" pcscd vsmartcard-vpcd) ;;
    # clang and lld (wasm-ld): the tests build the C applets (card-emulator/applets) to wasm32.
    test) packages=("${build[@]}" pcscd vsmartcard-vpcd opensc pcsc-tools python3-pyscard openssl postgresql clang lld) ;;
    fuzz) packages=("${build[@]}") ;;
    *)
        echo "setup: unknown job '$job'; one of: demo test fuzz" >&2
        exit 2
        ;;
esac

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing Debian packages: ${missing[*]}" >&2
        echo "setup: run as root, or: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found. Install a current Rust toolchain with rustup (see https://rustup.rs), then run this again." >&2
    exit 1
fi

if [[ $job == test ]]; then
    for tool in rustfmt clippy; do
        if ! cargo "${tool/rustfmt/fmt}" --version >/dev/null 2>&1; then
            echo "setup: cargo $tool is missing: rustup component add $tool" >&2
            exit 1
        fi
    done
fi

if [[ $job == fuzz ]] && ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "setup: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --version 0.13.2 --locked --quiet
fi
