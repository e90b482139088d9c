#!/usr/bin/env bash
# How much of strongSwan's own test-scenario configurations iked loads:
# unpacks the corpus (../shared/corpus/, GPL measurement data, never copied
# into the project) into a temporary folder, loads every IKEv2 swanctl.conf
# in it as `iked --check-config` would (configuration, then credentials),
# and writes the table (how many load; what blocks the rest, by missing
# feature; which features are not planned yet and why) into docs/interop.md
# between its conformance markers. Not part of the test command.
#
#   scripts/conformance.sh [-v] [CORPUS.tar.gz]
#     -v: also print one line per configuration that does not load
set -euo pipefail
cd "$(dirname "$0")/.."
verbose=
if [ "${1-}" = -v ]; then
  verbose=-v
  shift
fi
corpus=${1:-../shared/corpus/strongswan-testing-swanctl.tar.gz}
[ -f "$corpus" ] || corpus=/work/shared/corpus/strongswan-testing-swanctl.tar.gz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$corpus" -C "$tmp"
CARGO_INCREMENTAL=0 cargo run -q -p swanctl-compat --example conformance -- \
  "$tmp" --doc docs/interop.md $verbose
