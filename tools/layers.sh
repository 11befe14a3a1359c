#!/usr/bin/env bash
# tools/layers.sh: prove that src/ keeps its layers (docs/design.md):
#
#   base/  <  sched/  <  core/  <  pool.c  <  the kinds (src/*.c)
#
# A file may use what a lower layer, or its own, defines; never what a
# higher one does. Within a layer, files may use each other, but no
# circle. Checked twice:
#
#   - links: which object file of the static library uses a symbol that
#     which other one defines (nm), so that a prototype declared low and
#     defined high cannot hide an upward arrow;
#   - includes: the #include lines of every file of src/, with
#     sched/private.h private to sched/, and nothing from outside src/
#     but crew.h.
#
# Usage, from the repository root: bash tools/layers.sh [libcrew.a]
# Without an argument it builds the static library in build-layers/.
# Prints the arrows it found between layers, and each violation; exit
# status 0 when there is none, 1 otherwise, 2 for bad usage.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

lib=${1:-}
if [[ -z $lib ]]; then
    cmake -S . -B build-layers -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF -DCREW_BUILD_TESTS=OFF \
        -DCREW_BUILD_EXAMPLES=OFF >/dev/null
    cmake --build build-layers -j "$(nproc)" --target crew >/dev/null
    lib=build-layers/libcrew.a
fi
if [[ ! -f $lib ]]; then
    echo "layers.sh: no library at $lib" >&2
    exit 2
fi

# The layer of a source path: 0 base, 1 sched, 2 core, 3 pool.c, 4 kinds.
layer_of() {
    case $1 in
    src/base/*) echo 0 ;;
    src/sched/*) echo 1 ;;
    src/core/*) echo 2 ;;
    src/pool.[ch]) echo 3 ;;
    src/*) echo 4 ;;
    *) echo "layers.sh: $1 is in no layer" >&2 && exit 1 ;;
    esac
}

bad=0
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT

# --- Links -------------------------------------------------------------
# Object file names in the archive are the sources' base names: map each
# back to its path (a base name used twice would make that ambiguous).
declare -A path_of
while IFS= read -r src; do
    obj=$(basename "$src").o
    if [[ -n ${path_of[$obj]:-} ]]; then
        echo "layers.sh: two sources named $(basename "$src")" >&2
        exit 1
    fi
    path_of[$obj]=$src
done < <(find src -name '*.c' | sort)

declare -A defined_in
while read -r obj sym; do
    defined_in[$sym]=$obj
done < <(nm -A --defined-only "$lib" |
    awk '$(NF-1) ~ /^[TDBRVGS]$/ { split($1, p, ":"); print p[2], $NF }')

while read -r obj sym; do
    def=${defined_in[$sym]:-}
    [[ -z $def || $def == "$obj" ]] && continue
    echo "${path_of[$obj]} ${path_of[$def]} $sym"
done < <(nm -A --undefined-only "$lib" |
    awk '{ split($1, p, ":"); print p[2], $NF }') | sort -u >"$edges"

check_edges() { # KIND: reads "from to what" lines from $edges
    local from to what
    while read -r from to what; do
        if (($(layer_of "$from") < $(layer_of "$to"))); then
            echo "upward $1: $from uses $what of $to"
            bad=1
        fi
    done <"$edges"
    # A circle among files: tsort names the files on it.
    if ! awk '{ print $1, $2 }' "$edges" | sort -u | tsort >/dev/null 2>&1; then
        echo "circle of $1s:"
        awk '{ print $1, $2 }' "$edges" | sort -u | tsort 2>&1 >/dev/null |
            sed 's/^/  /'
        bad=1
    fi
}
check_edges link
echo "link arrows between files, by layer:"
awk '{ print $1, $2 }' "$edges" | sort -u | while read -r from to; do
    echo "  $(layer_of "$from")->$(layer_of "$to")"
done | sort | uniq -c | sed 's/^ */  /'

# --- Includes ----------------------------------------------------------
while IFS= read -r file; do
    sed -n 's/^#include "\(.*\)"/\1/p' "$file" | while read -r inc; do
        [[ $inc == crew.h ]] && continue
        if [[ ! -f src/$inc ]]; then
            echo "outside: $file includes $inc, not in src/"
            echo "$file src/$inc bad" >&3
        elif [[ $inc == sched/private.h && $file != src/sched/* ]]; then
            echo "private: $file includes $inc"
            echo "$file src/$inc bad" >&3
        else
            echo "$file src/$inc include" >&3
        fi
    done
done < <(find src -name '*.[ch]' | sort) 3>"$edges"
grep -q ' bad$' "$edges" && bad=1
check_edges include

if ((bad)); then
    echo "layers: violations found"
    exit 1
fi
echo "layers: every arrow points down, no circle ($lib)"
