#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, the sans-IO dependencies
# of the library, unit/property/vector tests, and (as they land) the kernel-lab tests.
# Works on a fresh machine: it installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "toolchain components"
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "the library ike has no tokio and no netlink in its dependencies"
if cargo tree -p ike -e normal --prefix none | grep -E '^(tokio|netlink|rtnetlink|xfrm-netlink|nix|mio) '; then
  echo "ike depends on the above (it must stay sans-IO)" >&2
  exit 1
fi

step "test prerequisites (Debian packages for the kernel tests)"
# The netns tests need iproute2 on the host; the UML lab's own packages are
# installed by tests/lab/uml-run.sh when the lab tests boot it; strongSwan is
# the peer of the interop lab test (ike-daemon/tests/interop_lab.rs).
# shellcheck source=../tests/lab/packages.sh
. tests/lab/packages.sh
lab_ensure_packages iproute2 user-mode-linux kmod iputils-ping strongswan-charon strongswan-swanctl libstrongswan-standard-plugins

step "cargo test (includes the UML kernel-lab tests: needs root)"
cargo test --workspace --all-targets
cargo test --workspace --doc
