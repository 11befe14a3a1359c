#!/usr/bin/env bash
# Runs crew's tests under valgrind's memcheck.
#
#   tests/valgrind.sh BUILD_DIR [TEST...]
#
# BUILD_DIR is a build without sanitizers (valgrind and ASan do not mix),
# best RelWithDebInfo for readable stacks. Runs the standalone scenario
# driver, the deque model tests when they were built, and every Criterion
# binary (test_*) one test at a time; or only the TESTs named (file names
# under BUILD_DIR/tests). Exits 1 if a test fails or if valgrind reports
# any error in any process: an invalid access, a use of uninitialised
# memory, a bad free, or memory definitely or indirectly lost at exit
# (blocks still reachable at exit are not errors). Exits 2 on bad usage.
#
# Why not just `valgrind --error-exitcode=1 prog`:
# - Criterion runs each test in a worker it starts by fork() and exec() of
#   its own binary ("boxfort-worker"): without --trace-children=yes the
#   tests run natively and valgrind checks only the runner.
# - A worker's exit status is ignored by the runner: a test with a leak or
#   an invalid read still passes and the runner exits 0 (checked here with
#   Criterion 2.4.1 and valgrind 3.19). So every process writes its own
#   log, and this script reads the ERROR SUMMARY line of each.
# - Children that tests fork() without exec (the fork tests) exit with
#   _exit() while the parent's other threads hold memory the child cannot
#   see; their leak report would be noise, and --error-exitcode would turn
#   it into a failed check in the parent. --child-silent-after-fork=yes
#   keeps them out of it (their exit status is the tests' own business).
#
# CREW_STRESS scales the scenarios' iteration counts (default here 0.2,
# a fifth of the normal run; the full counts, CREW_STRESS=1, pass too).
# Logs are kept, and their directory printed, when something failed.
set -euo pipefail

if (($# < 1)) || [[ ! -d $1/tests ]]; then
    echo "usage: $0 BUILD_DIR [TEST...]  (BUILD_DIR/tests must exist)" >&2
    exit 2
fi
build=$1
shift
if ! command -v valgrind >/dev/null; then
    echo "$0: valgrind is not installed (apt-get install valgrind)" >&2
    exit 2
fi

export CREW_STRESS=${CREW_STRESS:-0.2}
logs=$(mktemp -d "${TMPDIR:-/tmp}/crew-valgrind.XXXXXX")
keep_logs=false
trap '$keep_logs || rm -rf "$logs"' EXIT
# --max-threads: test_pool runs a pool of a thousand workers (valgrind's
# default is 500 threads).
vg=(valgrind --tool=memcheck --trace-children=yes --max-threads=1200
    --child-silent-after-fork=yes --leak-check=full
    --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --num-callers=40)

tests=("$@")
if ((${#tests[@]} == 0)); then
    tests=(crew_driver)
    [[ -x $build/tests/deque_model ]] && tests+=(deque_model)
    [[ -x $build/tests/split_model ]] && tests+=(split_model)
    for t in "$build"/tests/test_*; do
        [[ -x $t && -f $t ]] && tests+=("$(basename "$t")")
    done
fi

failed=()
start=$SECONDS
for name in "${tests[@]}"; do
    prog=$build/tests/$name
    if [[ ! -x $prog ]]; then
        echo "$0: no test $prog" >&2
        exit 2
    fi
    args=()
    [[ $name == test_* ]] && args=(--jobs 1)
    # Two kinds of test prove nothing under valgrind, and are proven in the
    # ASan and plain builds instead. The fork tests' children free their
    # inherited pool without touching the parent's queued tasks (by design:
    # their locks may be held), which memcheck, scanning a child that has
    # no other threads, reports as lost. And valgrind delivers signals
    # itself, so which thread takes a process-directed one is its choice,
    # not the kernel's.
    [[ $name == test_regressions ]] && args+=(--filter 'regressions/!(*child*)')
    # And one test is too slow to prove anything here: formatting a tree
    # whose text passes INT_MAX reads over 2 GiB of messages (a second
    # natively, past the test's timeout under valgrind).
    [[ $name == test_error ]] && args+=(--filter 'error/!(*INT_MAX*)')
    if [[ $name == test_signals ]]; then
        printf '%-20s %4s    %s
' "$name" - "skipped (see above)"
        continue
    fi
    t0=$SECONDS
    ok=true
    if "${vg[@]}" --log-file="$logs/$name.%p.log" "$prog" "${args[@]}" \
        >"$logs/$name.out" 2>&1; then
        result=passed
    else
        result="FAILED (exit status $?)"
        ok=false
    fi
    # Every process must have ended its log with an error count of 0; a
    # log without one is a process that was killed, or none at all.
    errors=0
    for log in "$logs/$name".*.log; do
        if ! grep -q 'ERROR SUMMARY: 0 errors' "$log" 2>/dev/null; then
            errors=$((errors + 1))
        fi
    done
    if ((errors > 0)); then
        result="$result, valgrind errors in $errors process(es)"
        ok=false
    fi
    $ok || failed+=("$name")
    printf '%-20s %4d s  %s\n' "$name" $((SECONDS - t0)) "$result"
done

echo "valgrind: ${#tests[@]} programs in $((SECONDS - start)) s," \
    "CREW_STRESS=$CREW_STRESS"
if ((${#failed[@]} > 0)); then
    keep_logs=true
    echo "valgrind: FAILED: ${failed[*]}"
    echo "valgrind: output and logs kept in $logs"
    for log in "$logs"/*.log; do
        [[ -f $log ]] || continue
        grep -q 'ERROR SUMMARY: 0 errors' "$log" && continue
        echo "--- $log"
        grep -E 'ERROR SUMMARY|Invalid|uninitialised|lost in loss' "$log" |
            head -20 || echo "(no error summary: the process was killed)"
    done
    exit 1
fi
echo "valgrind: clean"
