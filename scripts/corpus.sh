#!/usr/bin/env bash
# How much of strongSwan's test-scenario configurations iked reads: unpacks
# the corpus (../shared/corpus/, GPL measurement data, never copied into the
# project) into a temporary folder and prints how many IKEv2 swanctl.conf
# files load, and what blocks the rest (each problem message with the number
# of configurations it blocks). The corpus has no credential files, so this
# measures the configuration keys, not the loading of certificates.
#
#   scripts/corpus.sh [CORPUS.tar.gz] [-v]   (-v: one line per refused file)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-../shared/corpus/strongswan-testing-swanctl.tar.gz}
[ -f "$corpus" ] || corpus=/work/shared/corpus/strongswan-testing-swanctl.tar.gz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$corpus" -C "$tmp"
cargo run -q -p swanctl-compat --example corpus -- "$tmp" "${2-}"
