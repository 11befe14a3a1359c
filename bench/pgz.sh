#!/usr/bin/env bash
# bench/pgz.sh: examples/pgz against gzip and pigz, in one run, on the
# same input. From the repository root (or anywhere):
#
#   bash bench/pgz.sh                      the full run: 64 MiB, 5 reps
#   PGZ_BENCH_QUICK=1 bash bench/pgz.sh    a smoke run: 8 MiB, 1 rep
#
# Options, as environment variables:
#   PGZ_BENCH_THREADS=nproc   T, for pigz -p T and pgz -p T
#   PGZ_BENCH_MB=64           input size in MiB (8 under PGZ_BENCH_QUICK)
#   PGZ_BENCH_REPS=5          runs of each tool (1 under PGZ_BENCH_QUICK)
#   PGZ_BENCH_INSTALL=1       apt-get install gzip, pigz, zlib1g-dev, cmake
#                             and gcc if missing (0: never)
#   BENCH_BUILD_DIR=build-bench-pgz   build and work directory
#
# Builds crew and pgz (Release, -DCREW_BUILD_TESTS=OFF) in their own build
# directory, makes the input, then runs `gzip -6`, `pigz -p T -6` and
# `pgz -p T -l 6`, interleaved (gzip, pigz, pgz, gzip, ...), each writing
# its output to a file in the work directory. Every output is checked with
# gunzip -c | cmp. The table gives each tool's median wall time, median
# CPU time (user + sys), throughput, compressed size and ratio; below it,
# pgz's time over pigz's and over gzip's. The table is also written to
# BENCH_BUILD_DIR/pgz-results.md.
#
# The input, the same bytes on every machine: log-like text lines (a
# counter, a level, words drawn from 40, numbers) from a Park-Miller
# generator in awk, with 64 KiB of incompressible bytes (the generator's
# base64 digits, decoded) after every 448 KiB of text. The first 8 MiB are
# generated; past them they repeat, which no deflate can see (its window
# is 32 KiB), so a larger input costs no more time to make and compresses
# as a larger generated one would. gzip -6 makes it about 37% of its size.
#
# Exit status: 0; 1 when a tool failed or an output did not decompress to
# the input; 2 for a bad option.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

NPROC=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
if [[ ${PGZ_BENCH_QUICK:-0} == 1 ]]; then
    MB=${PGZ_BENCH_MB:-8} REPS=${PGZ_BENCH_REPS:-1}
else
    MB=${PGZ_BENCH_MB:-64} REPS=${PGZ_BENCH_REPS:-5}
fi
THREADS=${PGZ_BENCH_THREADS:-$NPROC}
INSTALL=${PGZ_BENCH_INSTALL:-1}
BUILD=${BENCH_BUILD_DIR:-build-bench-pgz}
PACKAGES="gzip pigz zlib1g-dev cmake gcc"
TOOLS=(gzip pigz pgz)

die() {
    echo "pgz.sh: $*" >&2
    exit 2
}
is_count() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
is_count "$MB" || die "PGZ_BENCH_MB must be a positive integer, not '$MB'"
is_count "$REPS" || die "PGZ_BENCH_REPS must be a positive integer, not '$REPS'"
is_count "$THREADS" || die "PGZ_BENCH_THREADS must be a positive integer, not '$THREADS'"

WORK=$BUILD/pgz-bench
INPUT=$WORK/input-${MB}MiB.bin
BYTES=$((MB * 1024 * 1024))
start=$SECONDS

# Taken before the build: the commit that is built and run.
reproduce() {
    local cmd="PGZ_BENCH_THREADS=$THREADS PGZ_BENCH_MB=$MB PGZ_BENCH_REPS=$REPS" sha dirty=''
    sha=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git status --porcelain 2>/dev/null || true) ]]; then
        dirty=" plus uncommitted changes"
    fi
    echo "$cmd bash bench/pgz.sh   # at commit $sha$dirty"
}
REPRODUCE=$(reproduce)

# --- 1. packages ------------------------------------------------------------

install_packages() {
    local p st as=() missing=()
    command -v dpkg-query >/dev/null 2>&1 || return 0
    for p in $PACKAGES; do
        st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [[ $st == "install ok installed" ]] || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || return 0
        as=(sudo)
    fi
    echo "packages: installing ${missing[*]}"
    "${as[@]}" apt-get update -q >/dev/null || echo "WARNING: apt-get update failed" >&2
    "${as[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        "${missing[@]}" >/dev/null || echo "WARNING: apt-get install failed" >&2
}
if [[ $INSTALL == 1 ]]; then install_packages; fi
for tool in gzip gunzip pigz cmake awk base64 cmp; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "pgz.sh: $tool not found" >&2
        exit 1
    }
done

# --- 2. build -----------------------------------------------------------------

mkdir -p "$WORK"
LOG=$BUILD/pgz-build.log
echo "build: $BUILD (Release, crew and pgz)"
if ! { cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DCREW_BUILD_TESTS=OFF &&
    cmake --build "$BUILD" -j "$NPROC" --target example_pgz; } >"$LOG" 2>&1; then
    tail -n 30 "$LOG" >&2
    echo "pgz.sh: build failed (all of it in $LOG)" >&2
    exit 1
fi
PGZ=$BUILD/examples/pgz/pgz
[[ -x $PGZ ]] || {
    echo "pgz.sh: no $PGZ after the build: is zlib1g-dev installed? (see $LOG)" >&2
    exit 1
}

# --- 3. input -----------------------------------------------------------------

# Text: at least $1 bytes of log-like lines, seeded with $2.
text() {
    awk -v n="$1" -v seed="$2" 'BEGIN {
        split("pool task future block deflate window thread crew worker " \
              "queue error value stream header trailer request client " \
              "server cache index table commit write read open close " \
              "start stop retry timeout alloc free lock wait wake join " \
              "submit cancel drain", w, " ")
        split("DEBUG INFO INFO INFO WARN ERROR", lv, " ")
        x = seed
        while (total < n) {
            x = (x * 16807) % 2147483647; k = 3 + x % 10; t++
            line = sprintf("%08d %-5s", t, lv[1 + x % 6])
            for (i = 0; i < k; i++) {
                x = (x * 16807) % 2147483647
                line = line " " w[1 + x % 40]
                if (x % 7 == 0) line = line "=" (x % 100000)
            }
            print line; total += length(line) + 1
        }
    }'
}

# Noise: at least $1 bytes of incompressible bytes, seeded with $2.
noise() {
    awk -v n="$1" -v seed="$2" 'BEGIN {
        a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        x = seed; chars = 4 * int((n + 2) / 3)
        for (c = 0; c < chars; c += 64) {
            line = ""
            for (i = 0; i < 64; i++) {
                x = (x * 16807) % 2147483647
                line = line substr(a, 1 + x % 64, 1)
            }
            print line
        }
    }' | base64 -d
}

make_input() {
    local unique=$((8 * 1024 * 1024)) seg=0 part=$WORK/part.bin base=$WORK/base.bin
    echo "input: $INPUT ($MB MiB; the first 8 MiB generated, then repeated)"
    : >"$base"
    while (($(stat -c %s "$base") < unique)); do
        seg=$((seg + 1))
        text $((448 * 1024)) $((seg * 7919)) >"$part"
        truncate -s $((448 * 1024)) "$part"
        cat "$part" >>"$base"
        noise $((64 * 1024)) $((seg * 104729)) >"$part"
        truncate -s $((64 * 1024)) "$part"
        cat "$part" >>"$base"
    done
    truncate -s "$unique" "$base"
    : >"$INPUT.tmp"
    while (($(stat -c %s "$INPUT.tmp") < BYTES)); do
        cat "$base" >>"$INPUT.tmp"
    done
    truncate -s "$BYTES" "$INPUT.tmp"
    mv "$INPUT.tmp" "$INPUT"
    rm -f "$part" "$base"
}
# Deterministic: a file made before is the same bytes.
if [[ ! -f $INPUT || $(stat -c %s "$INPUT") != "$BYTES" ]]; then make_input; fi
# Read once, so that every tool finds it in the page cache.
cat "$INPUT" >/dev/null

# --- 4. runs ------------------------------------------------------------------

# The tools' commands, and how the table shows them.
run_tool() {
    case $1 in
    gzip) gzip -6 -c "$INPUT" ;;
    pigz) pigz -p "$THREADS" -6 -c "$INPUT" ;;
    pgz) "$PGZ" -p "$THREADS" -l 6 "$INPUT" ;;
    esac
}
show_tool() {
    case $1 in
    gzip) echo "gzip -6 -c input" ;;
    pigz) echo "pigz -p $THREADS -6 -c input" ;;
    pgz) echo "pgz -p $THREADS -l 6 input" ;;
    esac
}

declare -A WALL=() CPU=() SIZE=()
failures=0
TIMEFORMAT='%R %U %S'
for ((rep = 1; rep <= REPS; rep++)); do
    printf 'rep %d/%d:' "$rep" "$REPS"
    for tool in "${TOOLS[@]}"; do
        out=$WORK/out-$tool.gz
        rm -f "$out"
        if ! times=$({ time run_tool "$tool" >"$out" 2>"$WORK/err-$tool.txt"; } 2>&1); then
            echo " $tool FAILED: $(cat "$WORK/err-$tool.txt")"
            failures=$((failures + 1))
            continue
        fi
        if ! gunzip -c "$out" | cmp -s - "$INPUT"; then
            echo " $tool: OUTPUT DOES NOT DECOMPRESS TO THE INPUT"
            failures=$((failures + 1))
            continue
        fi
        read -r real user sys <<<"$times"
        WALL[$tool]+="$real "
        CPU[$tool]+="$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }') "
        SIZE[$tool]=$(stat -c %s "$out")
        printf ' %s %ss' "$tool" "$real"
    done
    printf '\n'
done

# --- 5. table -----------------------------------------------------------------

median() { tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2];
          else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A MED=()
for tool in "${TOOLS[@]}"; do MED[$tool]=$(median "${WALL[$tool]:-}"); done
ratio() { # time of $1 over time of $2
    if [[ -n ${MED[$1]} && -n ${MED[$2]} ]]; then
        awk -v a="${MED[$1]}" -v b="${MED[$2]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
    else
        echo "-"
    fi
}

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
zlib=$(awk '/define ZLIB_VERSION/ { gsub(/"/, "", $3); print $3 }' /usr/include/zlib.h 2>/dev/null || true)
MD=$BUILD/pgz-results.md
{
    echo "pgz against gzip and pigz: $MB MiB, medians of $REPS run(s), T = $THREADS threads on $NPROC cores${cpu:+ ($cpu)}; $(gzip --version | head -n 1), $(pigz --version 2>&1 | head -n 1), zlib ${zlib:-?}; $(date -u '+%Y-%m-%d')."
    echo
    echo "| tool | command | wall (s) | CPU (s) | MB/s | compressed (bytes) | ratio | all runs (s) |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
    for tool in "${TOOLS[@]}"; do
        cmd=$(show_tool "$tool")
        if [[ -z ${MED[$tool]} ]]; then
            echo "| $tool | \`$cmd\` | failed | | | | | |"
            continue
        fi
        awk -v t="$tool" -v c="$cmd" -v w="${MED[$tool]}" -v u="$(median "${CPU[$tool]}")" \
            -v n="$BYTES" -v s="${SIZE[$tool]}" -v all="${WALL[$tool]% }" 'BEGIN {
            printf "| %s | `%s` | %.3f | %.3f | %.1f | %d | %.4f | %s |\n",
                t, c, w, u, (w > 0 ? n / 1e6 / w : 0), s, s / n, all }'
    done
    echo
    echo "Time, pgz over pigz: $(ratio pgz pigz); pgz over gzip: $(ratio pgz gzip) (below 1: pgz is faster). MB/s in 10^6 bytes of input a second; ratio: compressed / original size; CPU: user + sys."
    echo
    echo "Reproduce: \`$REPRODUCE\`"
} >"$MD"
echo
cat "$MD"
echo
echo "took $((SECONDS - start)) s; table in $MD"
if ((failures)); then
    echo "FAILURES: $failures run(s) failed or gave a wrong output (see above)"
    exit 1
fi
