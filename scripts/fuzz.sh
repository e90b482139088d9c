#!/usr/bin/env bash
# Fuzzes iked's targets (fuzz/, docs/fuzzing.md) with cargo-fuzz on nightly.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Runs each target (default: all of fuzz/fuzz_targets/) for SECONDS
# (default 30) in turn, starting from its committed corpus fuzz/corpus/T.
# What the fuzzer adds goes to target/fuzz/corpus/T (kept between runs, not
# committed); a crash, a timeout (60 s of wall-clock time for one input:
# generous, since at nice 19 on a busy machine an input that takes 10 ms
# can wait seconds for the CPU) or a memory blow-up (2 GB) stops the script with the input in target/fuzz/artifacts/T/ and a
# non-zero status. Ends with one line per target: runs, seconds, corpus.
#
# Installs what it needs: the nightly toolchain and cargo-fuzz. For a long
# run at low priority: `nice -n 19 scripts/fuzz.sh 1800`.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-30}
shift || true
case "$secs" in
'' | *[!0-9]*)
  echo "usage: $0 [SECONDS] [TARGET...]" >&2
  exit 2
  ;;
esac
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do
    t=${f##*/}
    targets+=("${t%.rs}")
  done
fi

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

# No sanitizer: the fuzzed crates deny unsafe code, so AddressSanitizer
# would mostly slow the search; debug assertions on, so that overflowing
# arithmetic panics as it does in the tests.
opts=(--features libfuzzer --sanitizer none --debug-assertions --target-dir target/fuzz)
cargo +nightly fuzz build "${opts[@]}"

summary=()
for t in "${targets[@]}"; do
  work=target/fuzz/corpus/$t
  artifacts=target/fuzz/artifacts/$t
  mkdir -p "$work" "$artifacts"
  log=target/fuzz/$t.log
  echo "=== fuzz $t for ${secs}s"
  if ! cargo +nightly fuzz run "${opts[@]}" "$t" "$work" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=60 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $t FAILED: the input is in $artifacts/ (log: $log)" >&2
    echo "fuzz: reproduce with: cargo +nightly fuzz run ${opts[*]} $t $artifacts/<file>" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
  summary+=("$t: ${runs:-?} runs in ${took:-?} s, no crash, corpus $(find "$work" -type f | wc -l) + $(find "fuzz/corpus/$t" -type f | wc -l) committed")
done
printf '%s\n' "${summary[@]}"
