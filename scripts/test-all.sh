#!/usr/bin/env bash
# Runs the project's tests.
#
#   scripts/test-all.sh          every test: formatting, lints, the sans-IO
#                                dependencies of the library, the docs,
#                                unit/property/vector tests, the kernel-lab
#                                tests and ~30 s of fuzzing per fuzz target
#                                (scripts/fuzz.sh: nightly, cargo-fuzz)
#                                (what CI runs; needs root)
#   scripts/test-all.sh --quick  the edit-test loop: the same without the
#                                kernel lab and the fuzzing (the fuzz
#                                targets' committed corpora still replay:
#                                test `corpus` of fuzz/)
#
# Works on a fresh machine: it installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
case "${1-}" in
"") ;;
--quick) quick=true ;;
*)
  echo "usage: $0 [--quick]" >&2
  exit 2
  ;;
esac

step() { printf '\n=== %s\n' "$*"; }

# The kernel-lab tests boot user-mode Linux or make network namespaces (root,
# minutes). This is the one place that says which they are: integration test
# targets named `*_lab` or `*netns*`, and every target of the lab harness
# `iked-lab` itself (its unit tests boot UML). A new lab test is named so;
# --quick refuses a test target it would run that uses the lab harness.
lab_package=iked-lab
is_lab_target() {
  case "$1" in
  *_lab | *netns*) true ;;
  *) false ;;
  esac
}

# shellcheck source=../tests/lab/packages.sh
. tests/lab/packages.sh

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
# rustls on ring only (docs/decisions.md): aws-lc-rs needs cmake and builds slowly.
if cargo tree --workspace -e normal --prefix none | grep -E '^aws-lc'; then
  echo "the workspace pulls in aws-lc (rustls must use its ring provider)" >&2
  exit 1
fi

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

if $quick; then
  # Every test target of the workspace (from cargo's own metadata, so a new
  # one is picked up) that is not a lab target, as `--test NAME` arguments.
  command -v jq >/dev/null || lab_ensure_packages jq
  targets=$(cargo metadata --no-deps --format-version 1 |
    jq -r --arg lab "$lab_package" \
      '.packages[] | select(.name != $lab) | .targets[] | select(.kind == ["test"]) | "\(.name) \(.src_path)"')
  tests=() names=()
  while read -r name src; do
    if is_lab_target "$name"; then
      continue
    fi
    if grep -q 'iked_lab' "$src"; then
      echo "test target $name ($src) uses the kernel lab (iked_lab): name it *_lab" >&2
      exit 1
    fi
    tests+=(--test "$name")
    names+=("$name")
  done <<<"$targets"

  step "cargo test (no kernel lab: lib, bins, benches in test mode, test targets ${names[*]}, doc tests)"
  cargo test --workspace --exclude "$lab_package" --lib --bins --benches --examples "${tests[@]}"
  cargo test --workspace --exclude "$lab_package" --doc
  exit 0
fi

step "test prerequisites (Debian packages for the kernel tests)"
# The netns tests need iproute2 on the host; the UML lab's own packages are
# installed by tests/lab/uml-run.sh when the lab tests boot it; strongSwan is
# the peer of the interop lab test (ike-daemon/tests/interop_lab.rs); its EAP
# plugins (eap-identity, eap-tls, eap-radius; eap-mschapv2) those of the
# remote-access lab (ike-daemon/tests/ra_lab.rs).
lab_ensure_packages iproute2 user-mode-linux kmod iputils-ping strongswan-charon strongswan-swanctl libstrongswan-standard-plugins \
  libcharon-extra-plugins libcharon-extauth-plugins

step "cargo test (includes the UML kernel-lab tests: needs root)"
cargo test --workspace --all-targets
cargo test --workspace --doc

step "fuzz: each target of fuzz/ for 30 s (nightly, cargo-fuzz; docs/fuzzing.md)"
scripts/fuzz.sh 30
