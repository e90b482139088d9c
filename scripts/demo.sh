#!/usr/bin/env bash
# The demo: boots the kernel lab (user-mode Linux, installed on first use),
# brings a tunnel up between two gateways, pings through ESP and shows the
# SAs. Needs root (namespaces, apt-get). Output folder: lab-out/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$PWD/lab-out/demo}
rm -rf "$out"; mkdir -p "$out"
tests/lab/uml-run.sh tests/lab/scenarios/demo.sh "$out"
