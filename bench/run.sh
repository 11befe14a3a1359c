#!/usr/bin/env bash
# bench/run.sh: build crew's benchmark programs and its peers', run them,
# check that every system did the same work, tabulate the medians and plot
# them. The one command, from the repository root (or anywhere):
#
#   bash bench/run.sh                  the full run (7 reps, full sizes)
#   BENCH_QUICK=1 bash bench/run.sh    a smoke run: 1/10 sizes, 3 reps
#   bash bench/run.sh --plot-only      table and plots again from
#                                      build-bench/medians.csv, no runs
#
# Options, as environment variables [or flags]:
#   BENCH_REPS=7         [--reps N]      runs of each workload by each system
#   BENCH_THREADS=nproc  [--threads N]   threads of the main workloads
#   BENCH_QUICK=0        [--quick]       BENCH_SCALE=10, BENCH_REPS=3 unless set
#   BENCH_SCALE=1        [--scale N]     divide every size by N (fib: n less
#                                        log_phi N; fj-uts-t1: depth less
#                                        log_4 N; idle at least 100 ms)
#   BENCH_SYSTEMS="inline crew omp tbb glib uv thpool lace"   [--systems LIST]
#   BENCH_WORKLOADS="fanout group trace fib fj-fib fj-nqueens fj-uts-t1
#                    fj-uts-t3 pfor reduce pingpong errors idle memory"
#                        (fj-fib brings fj-fib35, fib(35), and fj-nqueens
#                        fj-nqueens14, the board of 14, in a full run
#                        only; fj-uts-t1 and fj-uts-t3 are UTS's trees T1
#                        and T3 (bench/uts.h), SIZE the depth of one and
#                        the root's children of the other; fanout brings
#                        fanout-each: crew's one crew_submit_each batch of
#                        the same tasks; pfor brings pfor-auto and
#                        pfor-grain: crew's crew_parallel_for over the
#                        same loop, and pfor-reduce: crew_parallel_reduce
#                        summing it; reduce brings reduce-grain:
#                        crew_parallel_reduce with pfor's grain instead of
#                        crew's)
#                        [--workloads LIST]   (errors brings fanout-100k;
#                        group is crew's task groups, crew only: group-all,
#                        the fanout tasks as the members of one group,
#                        held to crew's fanout in the same run (which it
#                        brings when fanout is not selected), and
#                        group-limit4, 10^5 short tasks in a group of
#                        limit 4, held to sem-limit4, the same limit by a
#                        hand-written semaphore, as Go's errgroup does;
#                        trace is crew's fanout-traced, crew only: the
#                        fanout tasks while a trace records, held to
#                        crew's fanout in the same run as group-all is;
#                        then, with jq and gnuplot, examples/mandelbrot
#                        (800 x 600, grain 8, a pool of 2) traced by -T
#                        and drawn by tools/trace-plot into trace.png)
#   BENCH_SCALING=1      [--no-scaling]  fanout, fib and fj-fib at threads
#                                        1..nproc (fj-fib@1 runs even
#                                        without: over inline's fj-fib, it
#                                        is the work overhead)
#   BENCH_SCALING_THREADS="1 2 .. nproc" the thread counts of those rows
#   BENCH_TIMEOUT=120    [--timeout S]   seconds before a run is killed; a
#                                        killed run counts as a failure
#   BENCH_INSTALL=1      [--no-install]  apt-get install missing packages
#   BENCH_NQUEENS=12                     the board of fj-nqueens, before
#                                        the scale (14, the issue's, is
#                                        fj-nqueens14's)
#   BENCH_LACE_TARBALL=../shared/peers/lace-1.4.2.tar.gz   (from the
#                        repository root) Lace's source, unpacked and built
#                        in the build directory; without it lace is skipped
#   BENCH_BUILD_DIR=build-bench          build and results directory
#   BENCH_PLOT_DIR=docs                  where bench.png, bench-scaling.png
#                                        and trace.png go
#
# Every program is "bench_<system> WORKLOAD THREADS SIZE" (bench/bench.h);
# a system whose program is not in the build is skipped, and so is Lace
# when its tarball is missing or its own library fails to build (said
# so). Systems are run interleaved, all of them once per rep, the order
# rotated each rep.
#
# Writes, in the build directory: results.csv (every sample), medians.csv,
# failures.csv, results.txt and results.md (the table), run.log (the
# programs' stderr), build.log, and with trace mandelbrot-trace.json (the
# trace drawn) and trace.log; and docs/bench.png, docs/bench-scaling.png,
# and with trace docs/trace.png. --plot-only draws trace.png again from
# the build directory's mandelbrot-trace.json.
#
# Exit status: 0; 1 when any checksum differs from the reference (inline's,
# or crew's for a workload inline lacks), a run failed or timed out, a
# peer that CMake configured failed to build, or with trace, jq and
# gnuplot there, mandelbrot failed to build or run or its trace to be
# drawn; 2 for a bad option.

set -euo pipefail

ALL_SYSTEMS="inline crew omp tbb glib uv thpool lace"
PEERS="omp tbb glib uv thpool lace"
ALL_WORKLOADS="fanout group trace fib fj-fib fj-nqueens fj-uts-t1 fj-uts-t3"
ALL_WORKLOADS+=" pfor reduce pingpong errors idle memory"
PACKAGES="cmake gcc g++ pkg-config libtbb-dev libomp-dev libglib2.0-dev libuv1-dev cthreadpool-dev gnuplot-nox jq"
# One colour a system, the same in every plot.
COLOURS="#999999 #d62728 #1f77b4 #2ca02c #9467bd #ff7f0e #8c564b #e377c2"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

NPROC=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "run.sh: $*" >&2; exit 2; }
warn() { echo "WARNING: $*" >&2; }

plot_only=0
while (($#)); do
    opt=$1 val=''
    case $opt in
    --*=*) val=${opt#*=} opt=${opt%%=*} ;;
    esac
    case $opt in
    --reps | --threads | --scale | --systems | --workloads | --timeout)
        if [[ -z $val ]]; then
            (($# >= 2)) || die "$opt needs a value"
            val=$2
            shift
        fi
        ;;
    esac
    case $opt in
    --plot-only) plot_only=1 ;;
    --quick) BENCH_QUICK=1 ;;
    --no-scaling) BENCH_SCALING=0 ;;
    --no-install) BENCH_INSTALL=0 ;;
    --reps) BENCH_REPS=$val ;;
    --threads) BENCH_THREADS=$val ;;
    --scale) BENCH_SCALE=$val ;;
    --systems) BENCH_SYSTEMS=$val ;;
    --workloads) BENCH_WORKLOADS=$val ;;
    --timeout) BENCH_TIMEOUT=$val ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        die "unknown option '$1'"
        ;;
    esac
    shift
done

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    SCALE=${BENCH_SCALE:-10} REPS=${BENCH_REPS:-3}
else
    SCALE=${BENCH_SCALE:-1} REPS=${BENCH_REPS:-7}
fi
THREADS=${BENCH_THREADS:-$NPROC}
SYSTEMS=${BENCH_SYSTEMS:-$ALL_SYSTEMS}
WORKLOADS=${BENCH_WORKLOADS:-$ALL_WORKLOADS}
SCALING=${BENCH_SCALING:-1}
SCALING_THREADS=${BENCH_SCALING_THREADS:-$(seq -s ' ' 1 "$NPROC")}
TIMEOUT=${BENCH_TIMEOUT:-120}
INSTALL=${BENCH_INSTALL:-1}
BUILD=${BENCH_BUILD_DIR:-build-bench}
NQUEENS=${BENCH_NQUEENS:-12}
LACE_VERSION=1.4.2
LACE_TARBALL=${BENCH_LACE_TARBALL:-../shared/peers/lace-$LACE_VERSION.tar.gz}
PLOTS=${BENCH_PLOT_DIR:-docs}

is_count() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
is_count "$REPS" || die "BENCH_REPS must be a positive integer, not '$REPS'"
is_count "$THREADS" || die "BENCH_THREADS must be a positive integer, not '$THREADS'"
is_count "$SCALE" || die "BENCH_SCALE must be a positive integer, not '$SCALE'"
is_count "$NQUEENS" || die "BENCH_NQUEENS must be a positive integer, not '$NQUEENS'"
is_count "$TIMEOUT" || die "BENCH_TIMEOUT must be a positive integer, not '$TIMEOUT'"
for t in $SCALING_THREADS; do
    is_count "$t" || die "BENCH_SCALING_THREADS: '$t' is not a positive integer"
done
for s in $SYSTEMS; do
    [[ " $ALL_SYSTEMS " == *" $s "* ]] || die "unknown system '$s' (known: $ALL_SYSTEMS)"
done
for w in $WORKLOADS; do
    [[ " $ALL_WORKLOADS " == *" $w "* ]] || die "unknown workload '$w' (known: $ALL_WORKLOADS)"
done

RESULTS=$BUILD/results.csv
MEDIANS=$BUILD/medians.csv
FAILURES=$BUILD/failures.csv
MISMATCHES=$BUILD/mismatches.txt
META=$BUILD/meta.txt
RUNLOG=$BUILD/run.log
BUILDLOG=$BUILD/build.log
TABLE=$BUILD/results.txt
MARKDOWN=$BUILD/results.md

# --- 1. peers' packages ---------------------------------------------------

install_packages() {
    local p st as=() missing=()
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "packages: no dpkg-query here, installing nothing (missing peers are skipped)"
        return 0
    fi
    for p in $PACKAGES; do
        st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [[ $st == "install ok installed" ]] || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        echo "packages: all installed"
        return 0
    fi
    if ((EUID != 0)); then
        if command -v sudo >/dev/null 2>&1; then
            as=(sudo)
        else
            warn "not root and no sudo: cannot install ${missing[*]}; the peers they serve are skipped"
            return 0
        fi
    fi
    echo "packages: installing ${missing[*]}"
    "${as[@]}" apt-get update -q || warn "apt-get update failed"
    if ! "${as[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"; then
        # One at a time, so one unknown name does not cost the others.
        for p in "${missing[@]}"; do
            "${as[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$p" ||
                warn "could not install $p"
        done
    fi
}

# --- 2. build -------------------------------------------------------------

declare -a RUN_SYSTEMS=() NOT_BUILT=()
build_failures=0
LACE_CMAKE_DIR=''
LACE_NOTE=''

# Lace is no Debian package: its release tarball is unpacked into the
# build directory and built there with its own CMake (Release, its
# benchmarks and tests off), before crew's configure, which then finds
# its library as it finds TBB's (bench/CMakeLists.txt). It is built here
# and not by ExternalProject inside crew's build so that a Lace that
# cannot build (no tarball, a compiler its source does not suit) is
# known before the configure: the peer is then skipped with the reason,
# as a peer whose package is missing is, and not counted as a failed
# build of ours. A bench_lace.c that fails to compile still counts.
build_lace() {
    local src=$BUILD/lace-$LACE_VERSION bld=$BUILD/lace-build log=$BUILD/build-lace-lib.log
    LACE_CMAKE_DIR=''
    if [[ " $SYSTEMS " != *" lace "* ]]; then return 0; fi
    if [[ ! -f $LACE_TARBALL ]]; then
        LACE_NOTE="no $LACE_TARBALL (set BENCH_LACE_TARBALL)"
        return 0
    fi
    # Unpacked again whenever the tarball is newer than the copy.
    if [[ ! -f $src/CMakeLists.txt || $LACE_TARBALL -nt $src/CMakeLists.txt ]]; then
        rm -rf "$src"
        if ! tar -xzf "$LACE_TARBALL" -C "$BUILD" || [[ ! -f $src/CMakeLists.txt ]]; then
            LACE_NOTE="$LACE_TARBALL did not unpack to $src"
            return 0
        fi
        touch "$src/CMakeLists.txt"
    fi
    echo "build: Lace $LACE_VERSION from $LACE_TARBALL (Release, its benchmarks and tests off)"
    if cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=Release \
        -DLACE_BUILD_BENCHMARKS=OFF -DLACE_BUILD_TESTS=OFF >"$log" 2>&1 &&
        cmake --build "$bld" -j "$NPROC" --target lace >>"$log" 2>&1 &&
        [[ -f $bld/cmake/lace-config.cmake ]]; then
        LACE_CMAKE_DIR=$(cd "$bld/cmake" && pwd)
    else
        tail -n 20 "$log" >&2
        LACE_NOTE="Lace's own build failed (log: $log)"
    fi
    cat "$log" >>"$BUILDLOG"
}

build() {
    local sys log examples=OFF
    mkdir -p "$BUILD"
    : >"$BUILDLOG"
    build_lace
    # trace's picture is drawn from examples/mandelbrot, linked with the
    # same libcrew; of the examples, only it is built (trace_picture).
    if want trace; then examples=ON; fi
    echo "configure: $BUILD (Release, -O2 -DNDEBUG)"
    # lace_DIR-NOTFOUND: find_package(lace) finds nothing, and bench_lace
    # is not configured.
    if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
        -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
        -DCREW_BUILD_BENCH=ON -DCREW_BUILD_TESTS=OFF \
        -Dlace_DIR="${LACE_CMAKE_DIR:-lace_DIR-NOTFOUND}" \
        -DCREW_BUILD_EXAMPLES="$examples" >>"$BUILDLOG" 2>&1; then
        tail -n 30 "$BUILDLOG" >&2
        echo "run.sh: cmake configure failed (all of it in $BUILDLOG)" >&2
        exit 1
    fi
    # crew and the floor must build; each peer is built on its own so one
    # broken peer costs only itself.
    echo "build: bench_inline bench_crew (-j$NPROC)"
    if ! cmake --build "$BUILD" -j "$NPROC" --target bench_inline bench_crew \
        >>"$BUILDLOG" 2>&1; then
        tail -n 30 "$BUILDLOG" >&2
        echo "run.sh: bench_crew or bench_inline failed to build (all of it in $BUILDLOG)" >&2
        exit 1
    fi
    for sys in $SYSTEMS; do
        case $sys in
        inline | crew)
            RUN_SYSTEMS+=("$sys")
            continue
            ;;
        esac
        if ! ls bench/bench_"$sys".c* >/dev/null 2>&1; then
            echo "build: $sys skipped: no bench/bench_$sys.c or .cpp"
            NOT_BUILT+=("$sys")
            continue
        fi
        if [[ $sys == lace && -z $LACE_CMAKE_DIR ]]; then
            warn "lace skipped: $LACE_NOTE"
            NOT_BUILT+=("$sys")
            continue
        fi
        log=$BUILD/build-$sys.log
        if cmake --build "$BUILD" -j "$NPROC" --target "bench_$sys" >"$log" 2>&1; then
            echo "build: bench_$sys"
            RUN_SYSTEMS+=("$sys")
        elif grep -qE "No rule to make target|unknown target" "$log"; then
            echo "build: $sys skipped: not configured (its package is missing; see the cmake output in $BUILDLOG)"
            NOT_BUILT+=("$sys")
        else
            tail -n 20 "$log" >&2
            warn "bench_$sys FAILED TO BUILD: $sys is skipped (log: $log)"
            NOT_BUILT+=("$sys")
            build_failures=$((build_failures + 1))
        fi
        cat "$log" >>"$BUILDLOG"
    done
}

# --- 3. run ---------------------------------------------------------------

# label workload threads size, one a line.
JOBS=()
want() { [[ " $WORKLOADS " == *" $1 "* ]]; }
scaled() {
    local n=$(($1 / SCALE))
    ((n >= 1)) || n=1
    echo "$n"
}
make_jobs() {
    local t
    S_FANOUT=$(scaled 1000000)
    S_PFOR=$(scaled 10000000)
    S_REDUCE=$(scaled 100000000)
    S_PINGPONG=$(scaled 100000)
    S_ERRORS=$(scaled 100000)
    S_LIMIT=$(scaled 100000)
    S_MEMORY=$(scaled 1000000)
    S_IDLE=$((1000 / SCALE))
    ((S_IDLE >= 100)) || S_IDLE=100
    # fib(n) costs about phi^n: dividing the work by SCALE takes log_phi
    # SCALE off n.
    S_FIB=$(awk -v s="$SCALE" 'BEGIN { n = 30 - int(log(s) / log((1 + sqrt(5)) / 2) + 0.5)
                                        print (n < 2 ? 2 : n) }')
    # nqueens(n) costs about 5.5 times nqueens(n-1) near 12 (856,189
    # calls at 12, 4,674,890 at 13): log_5.5 SCALE off the board.
    S_NQUEENS=$(awk -v s="$SCALE" -v q="$NQUEENS" 'BEGIN { n = q - int(log(s) / log(5.5) + 0.5)
                                        print (n < 4 ? 4 : n) }')
    # UTS's T1 grows about 4 times from one depth to the next (a node
    # has 4 children on average): log_4 SCALE off its depth of 10, so
    # depth 8 at SCALE 10. T3 keeps the first 2000 / SCALE subtrees of
    # its root; its nodes are far from evenly spread among them (the
    # 121st alone holds 2,381,505, and T3's longest path), so at SCALE
    # 10, 200 subtrees, it still counts 2,745,281 nodes: two thirds of
    # the work, but a quick run's check keeps that deepest subtree.
    S_UTS_T1=$(awk -v s="$SCALE" 'BEGIN { d = 10 - int(log(s) / log(4) + 0.5)
                                       print (d < 1 ? 1 : d) }')
    S_UTS_T3=$(scaled 2000)
    if want fanout || want group || want trace; then
        # group-all's and fanout-traced's baseline: crew's fanout of the
        # same size, run just before them in every rep
        JOBS+=("fanout fanout $THREADS $S_FANOUT")
    fi
    if want group; then JOBS+=("group-all group-all $THREADS $S_FANOUT"); fi
    if want trace; then JOBS+=("fanout-traced fanout-traced $THREADS $S_FANOUT"); fi
    if want fanout; then JOBS+=("fanout-each fanout-each $THREADS $S_FANOUT"); fi
    if want group; then
        # DESIGN sets no target here; the ratio is reported
        JOBS+=("sem-limit4 sem-limit4 $THREADS $S_LIMIT")
        JOBS+=("group-limit4 group-limit4 $THREADS $S_LIMIT")
    fi
    if want fib; then JOBS+=("fib fib $THREADS $S_FIB"); fi
    if want fj-fib; then
        JOBS+=("fj-fib fj-fib $THREADS $S_FIB")
        # fib(35), 11 times fib(30): the issue's size, left out of a
        # scaled run, which is for checking, not timing.
        if ((SCALE == 1)); then JOBS+=("fj-fib35 fj-fib $THREADS 35"); fi
        # The work overhead's numerator, a target: run with or without
        # the scaling rows.
        JOBS+=("fj-fib@1 fj-fib 1 $S_FIB")
    fi
    if want fj-nqueens; then
        JOBS+=("fj-nqueens fj-nqueens $THREADS $S_NQUEENS")
        # The issue's board, in a full run only, as fj-fib35.
        if ((SCALE == 1 && NQUEENS != 14)); then
            JOBS+=("fj-nqueens14 fj-nqueens $THREADS 14")
        fi
    fi
    if want fj-uts-t1; then JOBS+=("fj-uts-t1 fj-uts-t1 $THREADS $S_UTS_T1"); fi
    if want fj-uts-t3; then JOBS+=("fj-uts-t3 fj-uts-t3 $THREADS $S_UTS_T3"); fi
    if want pfor; then
        JOBS+=("pfor pfor $THREADS $S_PFOR")
        JOBS+=("pfor-auto pfor-auto $THREADS $S_PFOR")
        JOBS+=("pfor-grain pfor-grain $THREADS $S_PFOR")
        JOBS+=("pfor-reduce pfor-reduce $THREADS $S_PFOR")
    fi
    if want reduce; then
        JOBS+=("reduce reduce $THREADS $S_REDUCE")
        JOBS+=("reduce-grain reduce-grain $THREADS $S_REDUCE")
    fi
    if want pingpong; then JOBS+=("pingpong pingpong $THREADS $S_PINGPONG"); fi
    if want errors; then
        JOBS+=("errors errors $THREADS $S_ERRORS")
        JOBS+=("fanout-100k fanout $THREADS $S_ERRORS")
    fi
    if want idle; then JOBS+=("idle idle $THREADS $S_IDLE"); fi
    if want memory; then JOBS+=("memory memory $THREADS $S_MEMORY"); fi
    if [[ $SCALING == 1 ]]; then
        if want fanout; then
            for t in $SCALING_THREADS; do JOBS+=("fanout@$t fanout $t $S_FANOUT"); done
        fi
        if want fib; then
            for t in $SCALING_THREADS; do JOBS+=("fib@$t fib $t $S_FIB"); done
        fi
        if want fj-fib; then
            for t in $SCALING_THREADS; do
                ((t == 1)) || JOBS+=("fj-fib@$t fj-fib $t $S_FIB")
            done
        fi
    fi
}

unit_of() {
    case $1 in
    pingpong*) echo ns ;;
    idle*) echo % ;;
    memory*) echo B ;;
    *) echo s ;;
    esac
}

# The metric as the table shows it: ms, µs, % or bytes.
show() {
    awk -v m="$1" -v u="$2" 'BEGIN {
        x = u == "s" ? m * 1000 : u == "ns" ? m / 1000 : m
        f = x >= 1000 ? "%.0f" : "%.3g"
        if (u == "s") printf f "ms", x
        else if (u == "ns") printf f "us", x
        else if (u == "%") printf "%.1f%%", m
        else printf "%.0fB", m }'
}

run_failures=0
declare -A SKIP=()
METRIC_RE='^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$'

run_all() {
    local rep job label wl thr size sys k n out rc line status metric checksum
    n=${#RUN_SYSTEMS[@]}
    echo "workload,size,threads,system,rep,metric,checksum" >"$RESULTS"
    echo "workload,size,threads,system,rep,status" >"$FAILURES"
    : >"$RUNLOG"
    for ((rep = 1; rep <= REPS; rep++)); do
        for job in "${JOBS[@]}"; do
            read -r label wl thr size <<<"$job"
            printf 'rep %d/%d %-13s' "$rep" "$REPS" "$label"
            for ((k = 0; k < n; k++)); do
                sys=${RUN_SYSTEMS[(k + rep - 1) % n]}
                if [[ -n ${SKIP["$sys|$wl"]:-} || -n ${SKIP["$sys|$label"]:-} ]]; then
                    continue
                fi
                printf '== %s %s %s %s rep %d\n' "$sys" "$wl" "$thr" "$size" "$rep" >>"$RUNLOG"
                if out=$(timeout -k 5 "$TIMEOUT" "$BUILD/bench/bench_$sys" \
                    "$wl" "$thr" "$size" 2>>"$RUNLOG"); then
                    rc=0
                else
                    rc=$?
                fi
                line=
                while IFS= read -r l; do
                    if [[ $l == metric=* ]]; then line=$l; fi
                done <<<"$out"
                status=
                if ((rc == 0)); then
                    metric='' checksum=''
                    if [[ $line =~ ^metric=([^ ]+)\ checksum=([0-9]+)$ ]]; then
                        metric=${BASH_REMATCH[1]} checksum=${BASH_REMATCH[2]}
                    fi
                    if [[ $metric =~ $METRIC_RE ]]; then
                        echo "$label,$size,$thr,$sys,$rep,$metric,$checksum" >>"$RESULTS"
                        printf ' %s %s' "$sys" "$(show "$metric" "$(unit_of "$label")")"
                        continue
                    fi
                    status="bad output"
                    printf 'bad output: %s\n' "$out" >>"$RUNLOG"
                elif ((rc == 2)); then
                    # Cannot express the workload: not a failure, not retried.
                    SKIP["$sys|$wl"]=1
                    echo "$label,$size,$thr,$sys,$rep,unsupported" >>"$FAILURES"
                    printf ' %s n/s' "$sys"
                    continue
                elif ((rc == 124 || rc == 137)); then
                    status=timeout
                    SKIP["$sys|$label"]=1 # one hang is enough
                elif ((rc > 128)); then
                    status="signal $((rc - 128))"
                else
                    status="exit $rc"
                fi
                run_failures=$((run_failures + 1))
                echo "$label,$size,$thr,$sys,$rep,$status" >>"$FAILURES"
                printf ' %s FAILED(%s)' "$sys" "$status"
                printf '== %s %s %s %s rep %d: FAILED, %s\n' "$sys" "$wl" "$thr" "$size" "$rep" "$status" >>"$RUNLOG"
            done
            printf '\n'
        done
    done
}

# --- 4/5. medians, checksums ----------------------------------------------

# Medians per (workload, system) to medians.csv; every checksum against
# the reference's (inline's, else crew's) to mismatches.txt.
medians() {
    awk -F, -v out="$MEDIANS" -v mism="$MISMATCHES" -v cores="$NPROC" \
        -v date="$(date -u '+%Y-%m-%d %H:%M UTC')" '
    function unit(L) {
        if (L ~ /^pingpong/) return "ns"
        if (L ~ /^idle/) return "%"
        if (L ~ /^memory/) return "B"
        return "s"
    }
    NR == 1 { next }
    {
        key = $1 SUBSEP $4
        if (!(key in n)) { order[++nk] = key; lab[key] = $1; sys[key] = $4 }
        i = ++n[key]
        v[key, i] = $6 + 0; ck[key, i] = $7 ""; rp[key, i] = $5
        size[key] = $2; thr[key] = $3
        # checksums depend on workload and size only: key the reference so
        if ($4 == "inline" && !(($1, $2) in refi)) refi[$1, $2] = $7 ""
        if ($4 == "crew" && !(($1, $2) in refc)) refc[$1, $2] = $7 ""
    }
    END {
        printf "" > mism
        print "workload,size,threads,system,median,unit,samples,checksum_ok,cores,date" > out
        for (k = 1; k <= nk; k++) {
            key = order[k]; L = lab[key]; s = size[key]
            # crew_parallel_for runs the pfor loop, crew_submit_each the
            # fanout tasks, reduce-grain the reduce sum: the same checksum
            # group-all and fanout-traced run the fanout tasks,
            # group-limit4 the tasks of sem-limit4
            B = L ~ /^pfor-/ ? "pfor" : L == "fanout-each" || L == "group-all" || L == "fanout-traced" ? "fanout" : L == "reduce-grain" ? "reduce" : L
            if (L == "group-limit4") B = "sem-limit4"
            if ((B, s) in refi) { ref = refi[B, s]; rs = "inline" }
            else if ((L, s) in refi) { ref = refi[L, s]; rs = "inline" }
            else if (B != L && ((B, s) in refc)) { ref = refc[B, s]; rs = "crew " B }
            else if ((L, s) in refc) { ref = refc[L, s]; rs = "crew" }
            else { ref = ""; rs = "" }
            ok = ref == "" ? "unchecked" : "yes"
            m = n[key]
            for (i = 1; i <= m; i++) {
                if (ref != "" && ck[key, i] != ref) {
                    ok = "NO"
                    printf "%s size %s: %s rep %s checksum %s, %s has %s\n", \
                        L, s, sys[key], rp[key, i], ck[key, i], rs, ref > mism
                }
                a[i] = v[key, i]
            }
            for (i = 2; i <= m; i++) {
                x = a[i]
                for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
                a[j + 1] = x
            }
            med = m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
            printf "%s,%s,%s,%s,%.9g,%s,%d,%s,%s,%s\n", L, s, thr[key], \
                sys[key], med, unit(L), m, ok, cores, date > out
        }
    }' "$RESULTS"
}

# --- 4. the table ---------------------------------------------------------

report() {
    local failures=/dev/null header=""
    [[ -f $FAILURES ]] && failures=$FAILURES
    [[ -f $META ]] && header=$(cat "$META")
    awk -F, -v allsys="$ALL_SYSTEMS" -v peers="$PEERS" -v md="$MARKDOWN" \
        -v txt="$TABLE" -v header="$header" -v medfile="$MEDIANS" '
    function unit_of(L) {
        if (L ~ /^pingpong/) return "ns"
        if (L ~ /^idle/) return "%"
        if (L ~ /^memory/) return "B"
        return "s"
    }
    function rank_of(L,   t, r) {
        if (L ~ /@/) {
            t = L; sub(/.*@/, "", t)
            return (L ~ /^fanout/ ? 1000 : L ~ /^fj-fib/ ? 3000 : 2000) + t
        }
        r = index(" fanout group-all fanout-traced fanout-each sem-limit4 group-limit4 fib fj-fib fj-fib35 fj-nqueens fj-nqueens14 fj-uts-t1 fj-uts-t3 pfor pfor-auto pfor-grain pfor-reduce reduce reduce-grain pingpong errors fanout-100k idle memory ", " " L " ")
        return r ? r : 999
    }
    function ulabel(L, u) {
        if (u == "s") return L " (ms)"
        if (u == "ns") return L " (us)"
        if (u == "%") return L " (% CPU)"
        return L " (B/task)"
    }
    function conv(x, u) { return u == "s" ? x * 1000 : u == "ns" ? x / 1000 : x }
    function num(x,   ax) {
        ax = x < 0 ? -x : x
        if (ax == 0) return "0"
        if (ax >= 100) return sprintf("%.0f", x)
        if (ax >= 10) return sprintf("%.1f", x)
        if (ax >= 1) return sprintf("%.2f", x)
        if (ax >= 0.01) return sprintf("%.3f", x)
        return sprintf("%.2e", x)
    }
    function fmt(x, u) {
        if (u == "%") return sprintf("%.1f", x)
        return num(conv(x, u))
    }
    function addlabel(L, s, t) {
        if (!(L in rank)) { rank[L] = rank_of(L); labs[++nl] = L; size[L] = s; thr[L] = t; unit[L] = unit_of(L) }
    }
    function cell(L, s,   c) {
        if ((L, s) in med) {
            c = fmt(med[L, s], unit[L])
            if (ok[L, s] == "NO") c = c "!"
            else if ((L, s) in fail) c = c "*"
            return c
        }
        if ((L, s) in fail) return fail[L, s] == "unsupported" ? "-" : fail[L, s] == "timeout" ? "timeout" : "fail"
        return "-"
    }
    function put(c, text) { C[nr, c] = text }
    # The target columns of row nr: its text, the value when there is
    # one (vtxt, or tv formatted), and whether tv <= lim was met; no
    # limit, no verdict. Counts the targets judged and those met.
    function judge(T, have, tv, lim, vtxt,   met) {
        put(ns + 5, T)
        if (have) {
            if (vtxt == "") vtxt = sprintf(L ~ /^(pfor|reduce)/ ? "%.3f" : "%.2f", tv)
            put(ns + 6, vtxt)
        }
        if (lim > 0) {
            met = have ? (tv <= lim + 1e-12 ? "yes" : "NO") : "n/a"
            if (hasc && ok[L, "crew"] == "NO") met = "NO (checksum)"
            put(ns + 7, met)
            if (met != "n/a") { ntarget++; if (met == "yes") nmet++ }
        }
    }
    FNR == 1 { next }
    FILENAME == medfile {
        addlabel($1, $2, $3)
        med[$1, $4] = $5 + 0; ok[$1, $4] = $8; seen[$4] = 1
        if ($7 + 0 > samples) samples = $7 + 0
        next
    }
    {
        addlabel($1, $2, $3); seen[$4] = 1
        if (!(($1, $4) in fail) || fail[$1, $4] == "unsupported") fail[$1, $4] = $6
    }
    END {
        ns = 0; n = split(allsys, A, " ")
        for (i = 1; i <= n; i++) if (A[i] in seen) S[++ns] = A[i]
        np = split(peers, P, " ")
        # labels in a fixed order
        for (i = 2; i <= nl; i++) {
            x = labs[i]
            for (j = i - 1; j >= 1 && rank[labs[j]] > rank[x]; j--) labs[j + 1] = labs[j]
            labs[j + 1] = x
        }
        nc = ns + 7
        nr = 0
        put(1, "workload"); put(2, "size")
        for (k = 1; k <= ns; k++) put(2 + k, S[k])
        put(ns + 3, "best peer"); put(ns + 4, "crew/best")
        put(ns + 5, "target"); put(ns + 6, "value"); put(ns + 7, "met")
        for (li = 1; li <= nl; li++) {
            L = labs[li]; u = unit[L]; nr++
            for (c = 1; c <= nc; c++) C[nr, c] = ""
            put(1, ulabel(L, u)); put(2, size[L])
            for (k = 1; k <= ns; k++) put(2 + k, cell(L, S[k]))
            hasc = (L, "crew") in med; cv = hasc ? med[L, "crew"] : 0
            # crew-only rows measured against the peer runs of another
            # workload: fanout-each against fanout, omp included (DESIGN:
            # <= every peer, the creator-runs of OpenMP included), and
            # reduce-grain against reduce
            B = L == "fanout-each" ? "fanout" : L == "reduce-grain" ? "reduce" : L
            best = ""; bv = 0
            for (k = 1; k <= np; k++) {
                p = P[k]
                if (!((B, p) in med) || ok[B, p] == "NO") continue
                if ((L == "pingpong" || (L ~ /^fanout/ && L != "fanout-each")) && p == "omp") continue
                if (best == "" || med[B, p] < bv) { best = p; bv = med[B, p] }
            }
            put(ns + 3, best == "" ? "-" : B == L ? best : best " (" B ")")
            ratio = ""
            # (idle: a ratio of two readings of about 0 % says nothing)
            if (best != "" && hasc && bv > 0 && !(L == "idle" && bv < 0.05)) {
                ratio = cv / bv; put(ns + 4, sprintf("%.2f", ratio))
            }
            T = ""; have = 0; lim = 0; tv = 0; vtxt = ""
            if (L == "fanout") {
                T = "crew/best <= 1.00"; lim = 1
                if (ratio != "") { have = 1; tv = ratio }
            } else if (L == "fanout-each") {
                # its second target, the time budget, is the next row
                T = "crew/best peer fanout, omp in <= 1.00"; lim = 1
                if (ratio != "") { have = 1; tv = ratio }
            } else if (L == "fib") {
                T = "crew/tbb <= 1.00"; lim = 1
                if (hasc && ((L, "tbb") in med) && med[L, "tbb"] > 0) { have = 1; tv = cv / med[L, "tbb"] }
            } else if (L ~ /^fj-(fib|fib35|nqueens|nqueens14|uts-t1|uts-t3)$/) {
                # DESIGN: fork-join <= Lace in the same run; oneTBB beside
                # it. fj-uts-t1 is reported the same way, with no target.
                T = "crew/lace <= 1.00"; lim = 1
                if (L == "fj-uts-t1") { T = "crew/lace (no target)"; lim = 0 }
                if (hasc && ((L, "lace") in med) && med[L, "lace"] > 0) { have = 1; tv = cv / med[L, "lace"] }
                if (hasc && ((L, "tbb") in med) && med[L, "tbb"] > 0)
                    T = T sprintf(" (crew/tbb %.2f)", cv / med[L, "tbb"])
            } else if (L == "pfor") {
                T = "crew/omp <= 1.053 (omp/crew >= 0.95)"; lim = 1 / 0.95
                if (hasc && ((L, "omp") in med) && med[L, "omp"] > 0) { have = 1; tv = cv / med[L, "omp"] }
            } else if (L == "pfor-auto") {
                # The pfor loop through crew_parallel_for, grain chosen by
                # crew, against both references of the pfor row.
                T = "crew/omp and crew/tbb (pfor row) <= 1.053"; lim = 1 / 0.95
                if (hasc && (("pfor", "omp") in med) && (("pfor", "tbb") in med) &&
                    med["pfor", "omp"] > 0 && med["pfor", "tbb"] > 0) {
                    have = 1; tv = cv / med["pfor", "omp"]
                    if (cv / med["pfor", "tbb"] > tv) tv = cv / med["pfor", "tbb"]
                }
            } else if (L == "pfor-grain") {
                T = "crew/hand-written crew pfor <= 1.053"; lim = 1 / 0.95
                if (hasc && (("pfor", "crew") in med) && med["pfor", "crew"] > 0) {
                    have = 1; tv = cv / med["pfor", "crew"]
                }
            } else if (L == "pfor-reduce") {
                # The loop summed by crew_parallel_reduce: as fast as
                # crew_parallel_for over it, both with the grain crew picks.
                T = "crew reduce/crew pfor-auto <= 1.053"; lim = 1 / 0.95
                if (hasc && (("pfor-auto", "crew") in med) && med["pfor-auto", "crew"] > 0) {
                    have = 1; tv = cv / med["pfor-auto", "crew"]
                }
            } else if (L == "reduce") {
                # the best peer here is the faster of omp and tbb, the
                # only peers that sum
                T = "crew/faster of omp,tbb <= 1.053 (faster/crew >= 0.95)"; lim = 1 / 0.95
                if (ratio != "") { have = 1; tv = ratio }
            } else if (L == "reduce-grain") {
                T = "(informational: crew/faster of omp,tbb reduce)"
                if (ratio != "") { have = 1; tv = ratio }
            } else if (L == "pingpong") {
                T = "crew/best outside-submitting peer <= 1.00"; lim = 1
                if (ratio != "") { have = 1; tv = ratio }
                if (hasc && ((L, "omp") in med) && med[L, "omp"] > 0)
                    T = T sprintf(" (crew/omp %.2f)", cv / med[L, "omp"])
            } else if (L == "errors") {
                T = "crew errors/fanout-100k <= 1.50"; lim = 1.5
                if (hasc && (("fanout-100k", "crew") in med) && med["fanout-100k", "crew"] > 0) {
                    have = 1; tv = cv / med["fanout-100k", "crew"]
                }
            } else if (L == "group-all") {
                # DESIGN: 10^6 members of one group <= 1.1x the same
                # fan-out with futures (the fanout row of crew, same run)
                T = "crew group-all/crew fanout <= 1.10"; lim = 1.1
                if (hasc && (("fanout", "crew") in med) && med["fanout", "crew"] > 0) {
                    have = 1; tv = cv / med["fanout", "crew"]
                }
            } else if (L == "fanout-traced") {
                # The issue: recording a trace costs <= 10 % on the
                # fan-out (crew fanout, same run)
                T = "crew fanout-traced/crew fanout <= 1.10"; lim = 1.1
                if (hasc && (("fanout", "crew") in med) && med["fanout", "crew"] > 0) {
                    have = 1; tv = cv / med["fanout", "crew"]
                }
            } else if (L == "group-limit4") {
                T = "crew group-limit4/sem-limit4 (no target)"
                if (hasc && (("sem-limit4", "crew") in med) && med["sem-limit4", "crew"] > 0) {
                    have = 1; tv = cv / med["sem-limit4", "crew"]
                }
            } else if (L == "sem-limit4") {
                T = "(baseline of group-limit4: a semaphore by hand)"
            } else if (L == "fanout-100k") {
                T = "(baseline of errors)"
            } else if (L == "idle") {
                T = "crew 0 % CPU (<= 0.5)"; lim = 0.5
                if ((L, "lace") in med) T = T sprintf(" (lace %.1f %%)", med[L, "lace"])
                if (hasc) { have = 1; tv = cv; vtxt = sprintf("%.1f %%", cv) }
            } else if (L == "memory") {
                T = "crew <= 128 B/task"; lim = 128
                if (hasc) { have = 1; tv = cv; vtxt = sprintf("%.0f B", cv) }
            } else {
                T = "(informational)"
            }
            judge(T, have, tv, lim, vtxt)
            if (L == "fanout-each") {
                # DESIGN: 10^6 tasks in 50 ms, scaled with the size
                nr++
                for (c = 1; c <= nc; c++) C[nr, c] = ""
                put(1, "fanout-each budget"); put(2, size[L])
                lim = 0.05 * size[L] / 1e6
                judge(sprintf("crew <= %s ms (50 ms a 10^6 tasks)", num(lim * 1000)),
                      hasc, cv, lim, hasc ? num(cv * 1000) " ms" : "")
            }
            if (L == "fj-fib@1") {
                # The work overhead: every system at 1 thread on fj-fib over
                # the serial recursion (the fj-fib of inline, at the same size)
                F = (("fj-fib", "inline") in med) ? "fj-fib" : L
                nr++
                for (c = 1; c <= nc; c++) C[nr, c] = ""
                put(1, "fj-fib work overhead (x serial)"); put(2, size[L])
                hv = ((F, "inline") in med) && med[F, "inline"] > 0
                for (k = 1; k <= ns; k++)
                    if (hv && ((L, S[k]) in med) && S[k] != "inline")
                        put(2 + k, sprintf("%.2f", med[L, S[k]] / med[F, "inline"]))
                    else put(2 + k, S[k] == "inline" && hv ? "1.00" : "-")
                judge("crew@1/inline <= 2.00", hv && hasc, hv && hasc ? cv / med[F, "inline"] : 0, 2)
            }
            if (L == "fanout") {
                nr++
                for (c = 1; c <= nc; c++) C[nr, c] = ""
                put(1, "fanout (Mtasks/s)"); put(2, size[L])
                for (k = 1; k <= ns; k++)
                    if (((L, S[k]) in med) && med[L, S[k]] > 0)
                        put(2 + k, num(size[L] / med[L, S[k]] / 1e6))
                    else put(2 + k, "-")
                put(ns + 5, "(higher is better)")
            }
        }
        # widths; first column and the last three left-aligned
        for (c = 1; c <= nc; c++) {
            w[c] = 0
            for (r = 0; r <= nr; r++) if (length(C[r, c]) > w[c]) w[c] = length(C[r, c])
        }
        for (r = 0; r <= nr; r++) {
            line = ""
            for (c = 1; c <= nc; c++) {
                left = c == 1 || c == ns + 3 || c >= ns + 5
                if (c == nc && C[r, c] == "") continue
                f = left ? "%-" w[c] "s" : "%" w[c] "s"
                line = line (c > 1 ? "  " : "") sprintf(f, C[r, c])
            }
            sub(/ +$/, "", line)
            print line > txt
            if (r == 0) {
                line = ""
                for (c = 1; c <= nc; c++) { d = sprintf("%" w[c] "s", ""); gsub(/ /, "-", d); line = line (c > 1 ? "  " : "") d }
                print line > txt
            }
        }
        legend = "Medians of " samples " runs a system. -: not expressible by that system (its program exits 2) or not run. " \
            "*: some runs failed, the median is of the rest. !: checksum differs from the reference (inline, or crew where inline lacks the workload). " \
            "Best peer: lowest median of " peers " (pingpong leaves out omp, whose fork/join is not a submit from outside the pool; " \
            "the fanout rows leave it out too: past 64 queued tasks a thread, libgomp runs each new task at once on the creating thread, so nothing queues; " \
            "but fanout-each, crew only, is held to every peer\47s fanout, omp\47s included, and reduce-grain is set beside the peers\47 reduce). " \
            "group-all, fanout-traced, sem-limit4 and group-limit4 are crew only: group-all, and fanout-traced (the fanout tasks while a trace records), are held to crew\47s fanout of the same run, group-limit4 to sem-limit4. " \
            "Lower is better everywhere but Mtasks/s. Targets met: " nmet + 0 " of " ntarget + 0 "."
        print "" > txt
        print legend > txt
        # Markdown
        if (header != "") { print header > md; print "" > md }
        line = "|"; sep = "|"
        for (c = 1; c <= nc; c++) {
            line = line " " C[0, c] " |"
            sep = sep ((c == 1 || c == ns + 3 || c >= ns + 5) ? " --- |" : " ---: |")
        }
        print line > md; print sep > md
        for (r = 1; r <= nr; r++) {
            line = "|"
            for (c = 1; c <= nc; c++) {
                t = C[r, c]
                gsub(/<=/, "\342\211\244", t); gsub(/>=/, "\342\211\245", t)
                gsub(/\(us\)/, "(\302\265s)", t)
                line = line " " t " |"
            }
            print line > md
        }
        print "" > md
        print legend > md
    }' "$MEDIANS" "$failures"
    cat "$TABLE"
}

# --- 6. plots -------------------------------------------------------------

# gnuplot making file $1, less its warning for a system with no point in
# a panel (a gap); a failed plot is a warning, not the end of the run.
gnuplot_quiet() {
    local err rc=0
    err=$(gnuplot 2>&1 >/dev/null) || rc=$?
    if [[ -n $err ]]; then
        grep -v -e 'Skipping data file with no valid points' -e '^ *$' <<<"$err" >&2 || true
    fi
    if ((rc == 0)); then
        echo "plot: $1"
    else
        warn "gnuplot failed: $1 not made"
    fi
}

plot() {
    local dir=$BUILD/plot vars term
    if ! command -v gnuplot >/dev/null 2>&1; then
        warn "no gnuplot: no plots (apt-get install gnuplot-nox)"
        return 0
    fi
    mkdir -p "$dir" "$PLOTS"
    rm -f "$dir"/*.dat
    # Data files for gnuplot, and the facts for the titles as NAME=value.
    vars=$(awk -F, -v allsys="$ALL_SYSTEMS" -v colours="$COLOURS" -v dir="$dir" '
    NR == 1 { next }
    {
        med[$1, $4] = $5 + 0; cores = $9; date = $10
        if ($7 > samples) samples = $7
        if ($1 == "fanout" || threads == "") threads = $3
        # (the fj-fib@ rows are in the table only: this plot has a panel
        # for fanout and one for fib)
        if ($1 ~ /^(fanout|fib)@/) {
            t = $1; sub(/.*@/, "", t)
            if (!(t in tseen)) { tseen[t] = 1; T[++nt] = t + 0 }
            scal[$4] = 1; size[$1] = $2
        }
    }
    END {
        n = split(allsys, A, " "); split(colours, COL, " ")
        nw = split("fanout fib fj-fib fj-nqueens fj-uts-t1 fj-uts-t3 pfor reduce pingpong errors", W, " ")
        ns = 0; names = ""; cols = ""
        for (i = 1; i <= n; i++)
            for (j = 1; j <= nw; j++)
                if ((W[j], A[i]) in med) {
                    S[++ns] = A[i]; names = names " " A[i]; cols = cols " " COL[i]
                    break
                }
        rows = 0; ymax = 0; xt = ""
        for (j = 1; j <= nw; j++) {
            w = W[j]
            if (!((w, "crew") in med) || med[w, "crew"] <= 0) continue
            line = rows
            for (k = 1; k <= ns; k++) {
                if ((w, S[k]) in med) {
                    v = med[w, S[k]] / med[w, "crew"]; line = line " " v
                    if (v > ymax) ymax = v
                } else line = line " NaN"
            }
            print line > (dir "/main.dat")
            xt = xt (rows ? ", " : "") "\"" w "\" " rows
            rows++
        }
        # scaling: threads, fanout Mtasks/s, fib ms; one file a system
        for (i = 2; i <= nt; i++) {
            x = T[i]
            for (j = i - 1; j >= 1 && T[j] > x; j--) T[j + 1] = T[j]
            T[j + 1] = x
        }
        sn = ""; sc = ""
        for (i = 1; i <= n; i++) {
            s = A[i]
            if (!(s in scal)) continue
            sn = sn " " s; sc = sc " " COL[i]
            f = dir "/scaling-" s ".dat"
            for (j = 1; j <= nt; j++) {
                fa = "fanout@" T[j]; fi = "fib@" T[j]
                a = ((fa, s) in med) && med[fa, s] > 0 ? size[fa] / med[fa, s] / 1e6 : "NaN"
                b = ((fi, s) in med) ? med[fi, s] * 1000 : "NaN"
                print T[j], a, b > f
            }
        }
        print "NS=" ns; print "NAMES=" substr(names, 2); print "COLS=" substr(cols, 2)
        print "ROWS=" rows; print "XTICS=" xt; print "YMAX=" ymax
        print "CORES=" cores; print "DATE=" date; print "THREADS=" threads
        print "SAMPLES=" samples; print "SNAMES=" substr(sn, 2); print "SCOLS=" substr(sc, 2)
        print "TMAX=" (nt ? T[nt] : 1)
    }' "$MEDIANS")
    local NS=0 NAMES='' COLS='' ROWS=0 XTICS='' YMAX=0 CORES='' DATE='' THREADS='' SAMPLES='' SNAMES='' SCOLS='' TMAX=1
    while IFS='=' read -r k v; do
        case $k in
        NS | NAMES | COLS | ROWS | XTICS | YMAX | CORES | DATE | THREADS | SAMPLES | SNAMES | SCOLS | TMAX)
            printf -v "$k" '%s' "$v"
            ;;
        esac
    done <<<"$vars"

    term=$(gnuplot -e 'set terminal' 2>&1 </dev/null || true)
    if [[ $term == *pngcairo* ]]; then
        term="pngcairo noenhanced font 'sans,10'"
    else
        term="png noenhanced"
    fi
    local machine="$CORES cores, $THREADS threads, medians of $SAMPLES runs, $DATE"

    if ((ROWS > 0 && NS > 0)); then
        # Clip very tall bars (their value is written on top) so that the
        # bars near crew stay readable.
        local ytop clip
        ytop=$(awk -v m="$YMAX" 'BEGIN { y = m * 1.15; if (y < 1.3) y = 1.3; if (y > 4) y = 4; printf "%.2f", y }')
        clip=$ytop
        gnuplot_quiet "$PLOTS/bench.png" <<EOF
set terminal $term size 900,500
set output "$PLOTS/bench.png"
set title "crew and its peers: median normalised to crew = 1 (lower is better)\n$machine"
set datafile missing "NaN"
set style fill solid 0.9 border rgb "#333333"
N = $NS
W = 0.8 / N
set boxwidth W absolute
set xrange [-0.6:$ROWS - 0.4]
set yrange [0:$ytop]
set xtics ($XTICS) scale 0
set ylabel "time / crew's time"
set grid ytics lc rgb "#dddddd"
set key outside right top vertical
set arrow from -0.6,1 to $ROWS - 0.4,1 nohead dt 2 lc rgb "#d62728" front
if ($YMAX > $clip) set label "bars past $clip\nare cut: the\nnumber on one\nis its height" at screen 0.87, screen 0.55 font ",8"
x(j) = column(1) + (j - 1 - (N - 1) / 2.0) * W
plot for [j=1:N] "$dir/main.dat" using (x(j)):(column(j+1) > $clip ? $clip : column(j+1)) \
        with boxes lc rgb word("$COLS", j) title word("$NAMES", j), \
     for [j=1:N] "$dir/main.dat" using (x(j)):(column(j+1) > $clip ? $clip * 0.97 : 1/0):(sprintf("%.1f", column(j+1))) \
        with labels rotate by 90 right font ",8" tc rgb "#ffffff" notitle
EOF
    else
        warn "no crew medians for fanout, fib, fj-fib, fj-nqueens, fj-uts-t1, fj-uts-t3, pfor, reduce, pingpong or errors: no $PLOTS/bench.png"
    fi

    if [[ -n $SNAMES ]]; then
        gnuplot_quiet "$PLOTS/bench-scaling.png" <<EOF
set terminal $term size 1000,500
set output "$PLOTS/bench-scaling.png"
set multiplot layout 1,2 title "crew and its peers by thread count ($machine)"
set datafile missing "NaN"
S = "$SNAMES"
C = "$SCOLS"
set xrange [0.5:$TMAX + 0.5]
set xtics 1
set xlabel "threads"
set grid lc rgb "#dddddd"
set key below horizontal maxrows 1 samplen 2 spacing 1.2
set bmargin 6
set logscale y
set format y "%g"
set title "fanout: throughput, log scale (higher is better)"
set ylabel "Mtasks/s"
plot for [i=1:words(S)] "$dir/scaling-".word(S, i).".dat" using 1:2 \
    with linespoints lw 2 pt 7 lc rgb word(C, i) title word(S, i)
set title "fib: time, log scale (lower is better)"
set ylabel "ms"
plot for [i=1:words(S)] "$dir/scaling-".word(S, i).".dat" using 1:3 \
    with linespoints lw 2 pt 7 lc rgb word(C, i) title word(S, i)
unset multiplot
EOF
    fi
}

# --- 7. a trace, drawn ----------------------------------------------------

# With trace: examples/mandelbrot's loop traced (-T), drawn by
# tools/trace-plot into $PLOTS/trace.png, the JSON kept in the build
# directory. Without jq or gnuplot, a warning; with them, a mandelbrot
# that does not build or run, or a trace that cannot be drawn, is a
# failure: CI proves here that the picture can be made. "redraw" (for
# --plot-only) draws the JSON of the last run again. The title says the
# size, grain and threads of the command: keep them together.
TRACE_JSON=$BUILD/mandelbrot-trace.json
TRACE_LOG=$BUILD/trace.log
# crew_parallel_for runs the loop on the calling thread and up to
# threads - 1 workers: on a pool of 2, one worker's lane stays empty.
TRACE_TITLE="mandelbrot 800 x 600: crew_parallel_for, grain 8, a pool of 2 threads (the caller and one worker draw)"
trace_failure=''
trace_picture() {
    local mode=${1:-run} need missing=() out
    want trace || return 0
    for need in jq gnuplot; do
        command -v "$need" >/dev/null 2>&1 || missing+=("$need")
    done
    if ((${#missing[@]})); then
        warn "no ${missing[*]}: no $PLOTS/trace.png (apt-get install jq gnuplot-nox)"
        return 0
    fi
    if [[ $mode == redraw ]]; then
        [[ -f $TRACE_JSON ]] || return 0
    else
        : >"$TRACE_LOG"
        echo "trace: build example_mandelbrot"
        if ! cmake --build "$BUILD" -j "$NPROC" --target example_mandelbrot \
            >>"$TRACE_LOG" 2>&1; then
            tail -n 20 "$TRACE_LOG" >&2
            trace_failure="examples/mandelbrot failed to build (log: $TRACE_LOG)"
            return 0
        fi
        rm -f "$TRACE_JSON"
        echo "trace: $BUILD/examples/mandelbrot -w 800 -h 600 -g 8 -t 2 -o $BUILD/mandelbrot.pgm -T $TRACE_JSON"
        if ! out=$(timeout -k 5 "$TIMEOUT" "$BUILD/examples/mandelbrot" -w 800 -h 600 \
            -g 8 -t 2 -o "$BUILD/mandelbrot.pgm" -T "$TRACE_JSON" 2>&1); then
            printf '%s\n' "$out" | tee -a "$TRACE_LOG" >&2
            trace_failure="examples/mandelbrot -T failed (log: $TRACE_LOG)"
            return 0
        fi
        printf '%s\n' "$out" | tee -a "$TRACE_LOG" | sed 's/^/  /'
    fi
    mkdir -p "$PLOTS"
    if out=$(tools/trace-plot -t "$TRACE_TITLE" "$TRACE_JSON" "$PLOTS/trace.png" 2>&1); then
        echo "plot: $PLOTS/trace.png (from $TRACE_JSON; open that in https://ui.perfetto.dev)"
    else
        printf '%s\n' "$out" | tee -a "$TRACE_LOG" >&2
        trace_failure="tools/trace-plot failed on $TRACE_JSON (log: $TRACE_LOG)"
    fi
}

reproduce_command() {
    local cmd="BENCH_REPS=$REPS BENCH_THREADS=$THREADS BENCH_SCALE=$SCALE" sha dirty=''
    [[ $SYSTEMS == "$ALL_SYSTEMS" ]] || cmd+=" BENCH_SYSTEMS='$SYSTEMS'"
    [[ $WORKLOADS == "$ALL_WORKLOADS" ]] || cmd+=" BENCH_WORKLOADS='$WORKLOADS'"
    [[ $SCALING == 1 ]] || cmd+=" BENCH_SCALING=0"
    [[ -z ${BENCH_SCALING_THREADS:-} ]] || cmd+=" BENCH_SCALING_THREADS='$SCALING_THREADS'"
    [[ $TIMEOUT == 120 ]] || cmd+=" BENCH_TIMEOUT=$TIMEOUT"
    [[ $NQUEENS == 12 ]] || cmd+=" BENCH_NQUEENS=$NQUEENS"
    sha=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git status --porcelain 2>/dev/null || true) ]]; then
        dirty=" plus uncommitted changes"
    fi
    echo "$cmd bash bench/run.sh   # at commit $sha$dirty"
}

# --- main -----------------------------------------------------------------

if ((plot_only)); then
    [[ -f $MEDIANS ]] || die "no $MEDIANS: run bash bench/run.sh first"
    report
    plot
    trace_picture redraw
    [[ -z $trace_failure ]] || { echo "TRACE PICTURE FAILED: $trace_failure"; exit 1; }
    exit 0
fi

start=$SECONDS
if [[ $INSTALL == 1 ]]; then install_packages; fi
# Taken once, before the build: the commit that is built and run.
REPRODUCE=$(reproduce_command)
build
make_jobs
((${#JOBS[@]})) || die "no workloads selected"

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
cat >"$META" <<EOF
crew benchmarks: medians of $REPS runs, $THREADS threads on $NPROC cores${cpu:+ ($cpu)}, $(uname -sm), $(${CC:-cc} --version 2>/dev/null | head -n 1), -O2; $(date -u '+%Y-%m-%d'). Sizes divided by $SCALE.${NOT_BUILT[*]:+ Not built: ${NOT_BUILT[*]}.}
Reproduce: \`$REPRODUCE\`
EOF

echo "run: ${RUN_SYSTEMS[*]}; $REPS reps, $THREADS threads, sizes / $SCALE, timeout ${TIMEOUT}s; ${#JOBS[@]} workloads a rep"
run_all
medians

status=0
echo
if [[ -s $MISMATCHES ]]; then
    status=1
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "!!! CHECKSUM MISMATCH: these systems did not do the same work as the reference"
    sed 's/^/!!!   /' "$MISMATCHES"
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo
fi
report
echo
plot
trace_picture
echo
if ((run_failures)); then
    status=1
    echo "FAILED RUNS ($run_failures), recorded as missing (their stderr is in $RUNLOG):"
    awk -F, 'NR > 1 && $6 != "unsupported" { printf "  %s %s threads=%s size=%s rep %s: %s\n", $4, $1, $3, $2, $5, $6 }' "$FAILURES"
fi
if ((build_failures)); then
    status=1
    echo "BUILD FAILURES: $build_failures peer(s) configured but failed to build (see $BUILDLOG)"
fi
if [[ -n $trace_failure ]]; then
    status=1
    echo "TRACE PICTURE FAILED: $trace_failure"
fi
[[ -s $MISMATCHES ]] && echo "CHECKSUM MISMATCHES: $(wc -l <"$MISMATCHES") (listed above and in $MISMATCHES)"
echo "results: $RESULTS, $MEDIANS, $TABLE, $MARKDOWN"
echo "took $((SECONDS - start)) s"
echo "reproduce: $REPRODUCE"
exit $status
