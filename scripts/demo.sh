#!/usr/bin/env bash
# The main job: the whole system in one run. A server, a portal and a virtual card (through
# pcscd + vpcd when pcscd is installed and we are root, in-process otherwise); the server's
# key is installed into each container over a GlobalPlatform secure channel; then for each
# container (switching with ES10c in between) the mutual authentication through the portal
# (seed steps 1-5) and the secure connection with `echo` and `provision` calls (step 6).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh demo
cargo build --release --locked -q -p card-emulator -p reader-client -p server -p portal
exec target/release/reader-client demo "$@"
