#!/usr/bin/env bash
# Runs every fuzz target (or those named) for FUZZ_SECONDS each, FUZZ_JOBS at a time, niced.
# cargo-fuzz builds with libFuzzer; there is no nightly here, so RUSTC_BOOTSTRAP=1 lets the
# stable toolchain take cargo-fuzz's -Z flags. No sanitizer (safe Rust: a panic is the crash).
# A crash leaves fuzz/artifacts/TARGET/crash-*; each target's "Done N runs in S s" line is
# appended to fuzz/results.txt.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH=${FUZZ_SECONDS:-600}
JOBS=${FUZZ_JOBS:-2}
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then mapfile -t TARGETS < <(cargo fuzz list); fi
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz" >&2; exit 2; }
export RUSTC_BOOTSTRAP=1
[ -n "${FUZZ_NO_BUILD:-}" ] || nice cargo fuzz build -s none --release
mkdir -p logs
run() {
    local t=$1
    mkdir -p "corpus/$t" "artifacts/$t"
    local rc=0
    # The binary cargo-fuzz built, run directly: `cargo fuzz run` would rebuild on any source
    # change while the other targets run.
    nice "target/x86_64-unknown-linux-gnu/release/$t" "corpus/$t" "seeds/$t" \
        -max_total_time="$SECONDS_EACH" -artifact_prefix="artifacts/$t/" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
        >"logs/$t.log" 2>&1 || rc=$?
    local done_line execs
    done_line=$(grep -E '^Done [0-9]+ runs' "logs/$t.log" | tail -1 || true)
    execs=$(grep -E '^stat::number_of_executed_units' "logs/$t.log" | awk '{print $2}' | tail -1 || true)
    echo "$(date -u +%FT%TZ) $t seconds=$SECONDS_EACH execs=${execs:-?} rc=$rc corpus=$(ls "corpus/$t" | wc -l) ${done_line}" \
        | tee -a results.txt
}
pids=()
for t in "${TARGETS[@]}"; do
    run "$t" &
    pids+=($!)
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
done
wait
if ls artifacts/*/crash-* artifacts/*/oom-* artifacts/*/timeout-* >/dev/null 2>&1; then
    echo "crashes found:" >&2; ls artifacts/*/crash-* artifacts/*/oom-* artifacts/*/timeout-* 2>/dev/null >&2; exit 1
fi
