#!/usr/bin/env bash
# The strongSwan demo: boots the kernel lab (user-mode Linux, installed on
# first use), brings a tunnel up between two gateways running strongSwan's
# charon, pings through ESP and shows the SAs. Needs root (namespaces,
# apt-get). Output folder: lab-out/demo-strongswan.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$PWD/lab-out/demo-strongswan}
rm -rf "$out"; mkdir -p "$out"
# shellcheck source=../tests/lab/packages.sh
. tests/lab/packages.sh
lab_ensure_packages strongswan-charon strongswan-swanctl libstrongswan-standard-plugins
tests/lab/uml-run.sh tests/lab/scenarios/demo-strongswan.sh "$out"
