#!/usr/bin/env bash
# bench/overhead.sh: what a change costs crew, measured against the commit
# before it, in one run. From the repository root:
#
#   bash bench/overhead.sh [BASE] [WORKLOAD] [THREADS] [SIZE]
#
# Builds bench_crew (Release) at BASE (default cb71e89~1, the commit
# before pool statistics) in a git worktree and in this tree, then runs
# "bench_crew WORKLOAD THREADS SIZE" (default: fanout 2 1000000) from
# each, REPS times (default 61), alternating which goes first, and prints
# both medians, the ratio this tree / BASE of the medians, and the median
# and quartiles of the per-pair ratios. Below 1: this tree is faster.
#
# Options, as environment variables: REPS=61, BENCH_BUILD_DIR=
# build-bench-overhead (holds both builds and the worktree).
# Exit status: 0; 1 if a build or a run failed; 2 for bad usage.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

base=${1:-cb71e89~1}
workload=${2:-fanout}
threads=${3:-2}
size=${4:-1000000}
reps=${REPS:-61}
dir=$(pwd)/${BENCH_BUILD_DIR:-build-bench-overhead}

if ! git rev-parse --verify -q "$base^{commit}" >/dev/null; then
    echo "overhead.sh: $base is not a commit here" >&2
    exit 2
fi
mkdir -p "$dir"
git worktree remove --force "$dir/base" 2>/dev/null || rm -rf "$dir/base"
git worktree prune
git worktree add -q --detach "$dir/base" "$base"
trap 'git worktree remove --force "$dir/base" 2>/dev/null || true' EXIT

build() { # SOURCE BUILD
    cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DCREW_BUILD_TESTS=OFF \
        -DCREW_BUILD_EXAMPLES=OFF -DCREW_BUILD_BENCH=ON >"$2.log" 2>&1 &&
        cmake --build "$2" -j "$(nproc)" --target bench_crew >>"$2.log" 2>&1 ||
        { cat "$2.log" >&2; exit 1; }
}
build "$dir/base" "$dir/build-base"
build . "$dir/build-this"

metric() { "$1/bench/bench_crew" "$workload" "$threads" "$size" |
    sed -n 's/^metric=\([0-9.e+-]*\).*/\1/p'; }
: >"$dir/samples.txt"
for ((i = 0; i < reps; i++)); do
    if ((i % 2 == 0)); then
        b=$(metric "$dir/build-base"); t=$(metric "$dir/build-this")
    else
        t=$(metric "$dir/build-this"); b=$(metric "$dir/build-base")
    fi
    [[ -n $b && -n $t ]] || { echo "overhead.sh: a run failed" >&2; exit 1; }
    echo "$b $t" >>"$dir/samples.txt"
done

awk -v base="$base" -v head="$(git rev-parse --short HEAD)" \
    -v w="$workload $threads $size" '
    { b[NR] = $1; t[NR] = $2; r[NR] = $2 / $1 }
    function median(a, n,   i, j, x) {
        for (i = 2; i <= n; i++) {            # insertion sort, n is small
            x = a[i]
            for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
            a[j + 1] = x
        }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
        n = NR
        mb = median(b, n); mt = median(t, n); mr = median(r, n)
        printf "bench_crew %s, %d runs each, interleaved\n", w, n
        printf "  %-28s median %.4g\n", "base " base, mb
        printf "  %-28s median %.4g\n", "this tree (" head "+)", mt
        printf "  ratio of medians this/base %.3f; per-pair ratio median %.3f," \
            " quartiles %.3f %.3f\n", mt / mb, mr, r[int(n / 4) + 1],
            r[int(3 * n / 4)]
    }' "$dir/samples.txt"
