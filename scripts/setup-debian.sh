#!/usr/bin/env bash
# Install what building and testing this project needs on Debian (run as root).
# Idempotent: packages already present are left alone.
set -euo pipefail

packages=(build-essential pkgconf libpcsclite-dev pcscd vsmartcard-vpcd opensc pcsc-tools python3-pyscard)

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

# The fuzz smoke of scripts/test.sh (and scripts/fuzz.sh) runs cargo-fuzz.
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "setup: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --version 0.13.2 --locked --quiet
fi
