#!/usr/bin/env bash
# The demo: builds iked and ikectl, boots the kernel lab (user-mode Linux,
# installed on first use), starts iked on two gateways, brings the tunnel up
# with `ikectl up`, pings through ESP, shows the counters and `ikectl status`
# on both sides, takes it down and shows nothing is left.
# Needs root (namespaces, apt-get): sudo scripts/demo.sh [OUTDIR]
# Output folder: lab-out/demo. scripts/demo-strongswan.sh: the same lab with
# strongSwan's charon on both gateways.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces, apt-get): sudo $0" >&2; exit 1; }
out=${1:-$PWD/lab-out/demo}
rm -rf "$out"; mkdir -p "$out"

# shellcheck source=../tests/lab/packages.sh
. tests/lab/packages.sh
# ring compiles C and assembly: a C compiler and the libc headers.
lab_ensure_packages gcc libc6-dev

# cargo: in PATH, or that of the user who ran sudo (rustup puts it in
# ~/.cargo/bin, which sudo's PATH lacks). The build runs as that user, so
# target/ stays theirs.
user=${SUDO_USER:-root}
home=$(getent passwd "$user" | cut -d: -f6)
cargo=$(command -v cargo || true)
[ -n "$cargo" ] || [ ! -x "$home/.cargo/bin/cargo" ] || cargo=$home/.cargo/bin/cargo
[ -n "$cargo" ] || [ ! -x /root/.cargo/bin/cargo ] || cargo=/root/.cargo/bin/cargo
[ -n "$cargo" ] || { echo "demo: cargo not found; install Rust (https://rustup.rs) first" >&2; exit 1; }
echo "demo: building iked and ikectl ($cargo build -p ike-daemon --bins)" >&2
build=("$cargo" build -q -p ike-daemon --bins)
if [ "$user" != root ]; then
    sudo -u "$user" env PATH="$(dirname "$cargo"):$PATH" "${build[@]}"
else
    "${build[@]}"
fi
target=$("$cargo" metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
target=${target:-$PWD/target}

export IKED=$target/debug/iked IKECTL=$target/debug/ikectl LAB_PASS_ENV="IKED IKECTL"
[ -x "$IKED" ] && [ -x "$IKECTL" ] || { echo "demo: $IKED or $IKECTL missing after the build" >&2; exit 1; }
tests/lab/uml-run.sh tests/lab/scenarios/demo.sh "$out"
