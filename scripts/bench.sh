#!/usr/bin/env bash
# Benchmarks of issue 8, iked side by side with strongSwan where it applies;
# results and how to read them: docs/performance.md. Not part of
# scripts/test-all.sh (timed runs are not tests), but every benchmark fails
# loudly (non-zero exit, "bench: FAILURE") if something did not come up.
#
#   sudo scripts/bench.sh            all of them
#   sudo scripts/bench.sh engine     one of: handshake | engine | workers | tunnels | ra | scale | config
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
  cargo bench -p ike --bench handshake || fail "cargo bench handshake"
  step "handshake instructions (callgrind; not disturbed by load)"
  lab_ensure_packages valgrind
  local bin
  bin=$(cargo bench -p ike --bench handshake --no-run --message-format=json 2>/dev/null |
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

bench_workers() {
  step "handshakes per second: iked with its key exchanges on the event loop and on 1..all worker threads, and charon"
  machine
  lab_ensure_packages iproute2 iputils-ping strongswan-charon strongswan-swanctl libstrongswan-standard-plugins util-linux
  python3 -c 'import vici' 2>/dev/null || python3 -m pip install -q vici==5.9.11 ||
    fail "cannot install the python module vici (charon's VICI client)"
  cargo build --release -p ike-daemon --bins || fail "cargo build iked"
  # BENCH_GROUP: the key exchanges, one table each; BENCH_N: IKE SAs per
  # run (default 1000 for MODP, 3000 for the faster groups); BENCH_WORKERS:
  # iked's --workers per run (0: on the event loop); BENCH_CPUS: the cores
  # both daemons get, one set of runs each (taskset -c; "all": every core).
  local g
  for g in ${BENCH_GROUP:-modp3072 x25519}; do
    step "handshakes per second, $g"
    # shellcheck disable=SC2086
    python3 scripts/bench/engine.py both ${BENCH_N:-$(case $g in modp*) echo 1000 ;; *) echo 3000 ;; esac)} \
      --group "$g" --workers "${BENCH_WORKERS:-0 1 $(nproc)}" --cpus "${BENCH_CPUS:-0 all}" \
      --cap "${BENCH_CAP:-120}" || fail "engine.py $g"
  done
}

bench_tunnels() {
  step "tunnel set-up in the UML lab: N tunnels (IKE + Child SA), iked and charon"
  machine
  lab_ensure_packages user-mode-linux kmod iproute2 iputils-ping strongswan-charon strongswan-swanctl libstrongswan-standard-plugins
  cargo build --release -p ike-daemon --bins || fail "cargo build iked"
  local out=$PWD/target/lab-out/bench-tunnels
  rm -rf "$out"
  # BENCH_AUTH: psk (default) and/or ecdsa, rsa (certificates, made here
  # for the largest N; see the scenario).
  local auth nmax
  nmax=$(printf '%s\n' ${BENCH_N:-100 1000} | sort -n | tail -1)
  for auth in ${BENCH_AUTH:-psk}; do
    case $auth in
    psk) ;;
    ecdsa | rsa) tests/lab/bench-pki.sh "$out/pki/$auth" "$nmax" "$auth" || fail "bench-pki.sh $auth" ;;
    *) fail "BENCH_AUTH: psk, ecdsa or rsa, not $auth" ;;
    esac
  done
  # BENCH_PAIRS, BENCH_ROUTES, BENCH_MALLOC, BENCH_STRACE, BENCH_IKED_ARGS, BENCH_IKED_LOG:
  # see the scenario.
  IKED=$PWD/target/release/iked BENCH_N="${BENCH_N:-100 1000}" BENCH_CAP="${BENCH_CAP:-150}" \
    BENCH_PAIRS="${BENCH_PAIRS:-iked-iked charon-charon iked-charon}" BENCH_ROUTES="${BENCH_ROUTES:-yes}" \
    BENCH_MALLOC="${BENCH_MALLOC:-yes}" BENCH_STRACE="${BENCH_STRACE:-no}" \
    BENCH_AUTH="${BENCH_AUTH:-psk}" BENCH_PKI="$out/pki" BENCH_IKED_ARGS="${BENCH_IKED_ARGS:-}" BENCH_IKED_LOG="${BENCH_IKED_LOG:-}" \
    LAB_PASS_ENV="IKED BENCH_N BENCH_CAP BENCH_PAIRS BENCH_ROUTES BENCH_MALLOC BENCH_STRACE BENCH_AUTH BENCH_PKI BENCH_IKED_ARGS BENCH_IKED_LOG" \
    UML_TIMEOUT="${UML_TIMEOUT:-1800}" LAB_QUIET=1 \
    tests/lab/uml-run.sh tests/lab/scenarios/bench-tunnels.sh "$out" ||
    fail "the tunnel benchmark failed (see $out/scenario.log)"
  grep '^RESULT' "$out/scenario.log" > "$out/results" || fail "no results in $out/scenario.log"
  python3 - "$out/results" <<'PY'
import sys
rows = [dict(kv.split("=", 1) for kv in line.split()[1:]) for line in open(sys.argv[1])]
for r in rows:
    r.setdefault("auth", "psk")
    # One table per authentication: its pair name carries it.
    if r["auth"] != "psk":
        r["pair"] = f"{r['pair']}/{r['auth']}"
print(f"{'pair':<20} {'N':>5} {'all':>4} {'seconds':>8} {'peak RSS KB init/resp':>22} {'CPU s init/resp':>16} {'resp RSS growth KB/tunnel':>26}")
for r in rows:
    print(f"{r['pair']:<20} {r['n']:>5} {r['all']:>4} {r['seconds']:>8} "
          f"{r['init_hwm_kb'] + '/' + r['resp_hwm_kb']:>22} {r['init_cpu_s'] + '/' + r['resp_cpu_s']:>16} "
          f"{r['resp_kb_per_tunnel']:>26}")
by = {(r["pair"], r["n"]): r for r in rows}
for auth in sorted({r["auth"] for r in rows}):
    sfx = "" if auth == "psk" else f"/{auth}"
    for n in sorted({r["n"] for r in rows}, key=int):
        i, c = by.get(("iked-iked" + sfx, n)), by.get(("charon-charon" + sfx, n))
        if i and c:
            cpu = lambda r: float(r['init_cpu_s']) + float(r['resp_cpu_s'])
            print(f"{auth} N={n}: charon-charon / iked-iked time {float(c['seconds']) / float(i['seconds']):.2f}x, "
                  f"CPU {cpu(c) / cpu(i):.2f}x, "
                  f"responder peak RSS {float(c['resp_hwm_kb']) / float(i['resp_hwm_kb']):.2f}x")
# Memory per tunnel: what the responder grows per tunnel added from the
# smallest N to the largest, each a fresh daemon with N connections (its
# own figure above, from its start to the run's end, is distorted by what
# loading the configuration leaves free in the heap: docs/performance.md).
ns = sorted({r["n"] for r in rows}, key=int)
if len(ns) > 1:
    lo, hi = ns[0], ns[-1]
    d = int(hi) - int(lo)
    per = {}
    for pair in ("iked-iked", "charon-charon"):
        a, b = by.get((pair, lo)), by.get((pair, hi))
        if a and b:
            rss = (int(b["resp_hwm_kb"]) - int(a["resp_hwm_kb"])) / d
            heap = None
            if "b_heap" in a and "b_heap" in b:
                heap = (int(b["b_heap"].split("/")[0]) - int(a["b_heap"].split("/")[0])) / d
            per[pair] = (rss, heap)
            print(f"{pair}: responder per tunnel added from N={lo} to N={hi}: peak RSS {rss:.1f} KB"
                  + (f", heap in use {heap:.1f} KB" if heap is not None else ""))
    if len(per) == 2:
        (ir, ih), (cr, ch) = per["iked-iked"], per["charon-charon"]
        print(f"iked / charon per tunnel: peak RSS {ir / cr:.2f}x"
              + (f", heap in use {ih / ch:.2f}x" if ih is not None and ch else ""))
for r in rows:
    extra = {k: v for k, v in r.items() if k in ('guest_cpu', 'udp_drops_a/b', 'a_heap', 'b_heap', 'polls')}
    print(f"{r['pair']:<14} {r['n']:>5} " + " ".join(f"{k}={v}" for k, v in extra.items()))
PY
}

bench_ra() {
  step "road warriors: N EAP-MSCHAPv2 clients with virtual IPs connecting at once to one gateway, charon and iked"
  machine
  lab_ensure_packages user-mode-linux kmod iproute2 iputils-ping strongswan-charon strongswan-swanctl \
    libstrongswan-standard-plugins libcharon-extra-plugins libcharon-extauth-plugins openssl bc
  python3 -c 'import vici' 2>/dev/null || python3 -m pip install -q vici==5.9.11 ||
    fail "cannot install the python module vici (charon's VICI client)"
  cargo build --release -p ike-daemon --bins || fail "cargo build iked"
  local out=$PWD/target/lab-out/bench-ra
  rm -rf "$out"
  # BENCH_GATEWAYS: charon and/or iked; BENCH_N: clients per run.
  IKED=$PWD/target/release/iked BENCH_N="${BENCH_N:-50 200}" BENCH_CAP="${BENCH_CAP:-120}" \
    BENCH_GATEWAYS="${BENCH_GATEWAYS:-charon}" BENCH_PYTHON="$(python3 -c 'import sys; print(sys.executable)')" \
    LAB_PASS_ENV="IKED BENCH_N BENCH_CAP BENCH_GATEWAYS BENCH_PYTHON" UML_TIMEOUT="${UML_TIMEOUT:-900}" LAB_QUIET=1 \
    tests/lab/uml-run.sh tests/lab/scenarios/bench-ra.sh "$out" ||
    fail "the road-warrior benchmark failed (see $out/scenario.log)"
  grep '^RESULT' "$out/scenario.log" || fail "no results in $out/scenario.log"
}

what=${1:-all}
case $what in
  handshake) bench_handshake ;;
  engine) bench_engine ;;
  workers) bench_workers ;;
  tunnels) bench_tunnels ;;
  ra) bench_ra ;;
  scale) step "scale inside one endpoint (cargo bench)"; machine
    cargo bench -p ike --bench scale || fail "cargo bench scale" ;;
  config) step "memory of loading N connections (cargo bench)"; machine
    cargo bench -p ike-daemon --bench config || fail "cargo bench config" ;;
  all) bench_handshake; bench_engine; bench_tunnels
    step "scale inside one endpoint (cargo bench)"
    cargo bench -p ike --bench scale || fail "cargo bench scale"
    step "memory of loading N connections (cargo bench)"
    cargo bench -p ike-daemon --bench config || fail "cargo bench config" ;;
  *) fail "unknown benchmark $what (handshake | engine | workers | tunnels | ra | scale | config | all)" ;;
esac
