#!/usr/bin/env bash
# Fuzz crew for a fixed time on a copy of the seed corpus.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS
#
# BUILD_DIR was configured with -DCREW_FUZZ=ON (see tests/fuzz/CMakeLists.txt
# for the whole configure line); crew_fuzz is built there if needed. The
# corpus is copied to a temporary directory, so nothing new is ever written
# into the repository; crash, leak and timeout reproducers are kept in
# BUILD_DIR/fuzz-artifacts/. Any crash, leak, per-input timeout (10 s) or
# memory blow-up (2 GiB) makes the exit status non-zero. The last line is a
# one-line summary: executions, exec/s, corpus size, cov and ft.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
fuzzer=$build/tests/fuzz/crew_fuzz

if [ ! -x "$fuzzer" ]; then
    cmake --build "$build" --target crew_fuzz -j "$(nproc)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/crew-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$build/fuzz-artifacts"
cp "$here"/corpus/* "$work/corpus/"
log=$work/fuzz.log

status=0
# ASan's leak check runs at exit too; libFuzzer's -detect_leaks=1 (the
# default) also checks every input that allocated more than it freed.
# -max_len/-len_control: programs of up to ~100 calls (the harness stops at
# MAX_OPS anyway), reached within a minute rather than staying at the
# seeds' 64 bytes; in a short run that finds markedly more features.
(cd "$work" && "$fuzzer" \
    -max_total_time="$seconds" \
    -print_final_stats=1 \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -max_len=1024 \
    -len_control=10 \
    -artifact_prefix="$build/fuzz-artifacts/" \
    "$work/corpus") >"$log" 2>&1 || status=$?

# Keep the interesting part of libFuzzer's output on the terminal.
grep -E '^(INFO: Seed|INFO: Loaded|#[0-9]+[[:space:]]+(INITED|DONE|pulse))|stat::|ERROR|SUMMARY|==[0-9]+==|crew_fuzz:|artifact|Test unit written' "$log" |
    tail -n 60 || true

last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
cov=$(printf '%s\n' "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
ft=$(printf '%s\n' "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
corp=$(printf '%s\n' "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
files=$(find "$work/corpus" -type f | wc -l)

if [ "$status" -ne 0 ]; then
    echo "run.sh: crew_fuzz FAILED (exit $status); full log follows" >&2
    cat "$log" >&2
    echo "run.sh: reproducers in $build/fuzz-artifacts/" >&2
fi
echo "crew_fuzz summary: executions=${execs:-?} exec/s=${rate:-?}" \
    "corpus=${corp:-?} (${files} files) cov=${cov:-?} ft=${ft:-?}" \
    "status=$([ "$status" -eq 0 ] && echo ok || echo "FAILED($status)")"
exit "$status"
