#!/usr/bin/env bash
# Benchmarks of issue 8, iked side by side with strongSwan where it applies;
# results and how to read them: docs/performance.md. Not part of
# scripts/test-all.sh (timed runs are not tests), but every benchmark fails
# loudly (non-zero exit, "bench: FAILURE") if something did not come up.
#
#   sudo scripts/bench.sh            all of them
#   sudo scripts/bench.sh engine     one of: handshake | engine
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "bench: FAILURE: $*" >&2; exit 1; }
step() { printf '\n=== %s\n' "$*"; }
machine() {
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# shellcheck source=../tests/lab/packages.sh
. tests/lab/packages.sh

# Instructions of one operation under callgrind: the difference between
# runs of 2N and N iterations, over N (start-up cancels out).
instr_per_op() { # BIN MODE GROUP N
  local bin=$1 mode=$2 group=$3 n=$4 a b
  a=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --mode "$mode" --group "$group" --iters "$n" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
  b=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --mode "$mode" --group "$group" --iters $((2 * n)) 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
  [ -n "$a" ] && [ -n "$b" ] || fail "callgrind gave no instruction count for $mode $group"
  echo $(((b - a) / n))
}

bench_handshake() {
  step "handshake CPU cost against the key-exchange floor (cargo bench)"
  machine
  cargo bench -p ike-daemon --bench handshake || fail "cargo bench handshake"
  step "handshake instructions (callgrind; not disturbed by load)"
  lab_ensure_packages valgrind
  local bin
  bin=$(cargo bench -p ike-daemon --bench handshake --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*handshake[^"]*\)".*/\1/p' | tail -1)
  [ -x "$bin" ] || fail "no handshake bench binary"
  printf '%-10s %14s %14s %7s\n' group handshake "kex floor" ratio
  local g h f
  for g in x25519 ecp256 modp2048; do
    h=$(instr_per_op "$bin" handshake "$g" 10)
    f=$(instr_per_op "$bin" floor "$g" 10)
    printf '%-10s %14s %14s %7s\n' "$g" "$h" "$f" "$(echo "scale=2; $h / $f" | bc)x"
  done
}

bench_engine() {
  step "IKE engine scale: N childless IKE SAs between two netns, iked and charon"
  machine
  lab_ensure_packages iproute2 iputils-ping strongswan-charon strongswan-swanctl libstrongswan-standard-plugins util-linux
  python3 -c 'import vici' 2>/dev/null || python3 -m pip install -q vici==5.9.11 ||
    fail "cannot install the python module vici (charon's VICI client)"
  cargo build --release -p ike-daemon --bins || fail "cargo build iked"
  python3 scripts/bench/engine.py both 1000 5000 10000 --charon-max 5000 --cap 120
}

what=${1:-all}
case $what in
  handshake) bench_handshake ;;
  engine) bench_engine ;;
  all) bench_handshake; bench_engine ;;
  *) fail "unknown benchmark $what (handshake | engine | all)" ;;
esac
