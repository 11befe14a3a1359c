#!/usr/bin/env bash
# Runs the examples under valgrind's memcheck.
#
#   examples/valgrind.sh BUILD_DIR
#
# BUILD_DIR is a build without sanitizers, examples and tests on. Each
# program runs as its CTest test runs it, with the exit status it must
# have; the server runs under valgrind inside its own check (server_check
# starts it through a wrapper), and pgz compresses a file of 3 MiB whose
# output must gunzip to it. Exits 1 if a program's status is not the one
# expected, or if valgrind reports an error in any process (an invalid
# access, an uninitialised value, any memory left at exit, "still
# reachable" included), 2 on bad usage. Logs are kept, and their directory printed, on failure.
set -euo pipefail

if (($# != 1)) || [[ ! -d $1/examples ]]; then
    echo "usage: $0 BUILD_DIR  (BUILD_DIR/examples must exist)" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
examples=$build/examples
logs=$(mktemp -d "${TMPDIR:-/tmp}/crew-valgrind-examples.XXXXXX")
keep_logs=false
trap '$keep_logs || rm -rf "$logs"' EXIT
# Every kind of leak is an error, "still reachable" too: an example
# destroys its pools before it exits, and then crew keeps nothing (not
# even the per-thread caches of future blocks; see crew_pool_destroy()).
vg=(valgrind --tool=memcheck --leak-check=full
    --errors-for-leak-kinds=all
    --show-leak-kinds=all --num-callers=40)
failed=()

# check NAME STATUS COMMAND...: runs COMMAND (already under valgrind where
# it needs to be), wants exit status STATUS and clean valgrind logs.
check() {
    local name=$1 want=$2 status=0
    shift 2
    "$@" >"$logs/$name.out" 2>&1 || status=$?
    local result=passed
    if ((status != want)); then
        result="FAILED (exit status $status, expected $want)"
    fi
    for log in "$logs/$name".*.log; do
        if ! grep -q 'ERROR SUMMARY: 0 errors' "$log" 2>/dev/null; then
            result="$result, valgrind errors in $(basename "$log")"
        fi
    done
    [[ $result == passed ]] || failed+=("$name")
    printf '%-24s %s\n' "$name" "$result"
}

run() {
    local name=$1
    shift
    "${vg[@]}" --log-file="$logs/$name.%p.log" "$@"
}

data=$logs/data
mkdir -p "$data/dir"
printf 123456789 >"$data/check.txt"
check hello 0 run hello "$examples/hello"
check demo 0 run demo "$examples/demo"
check callbacks 0 run callbacks "$examples/callbacks"
check callbacks_failing 0 run callbacks_failing "$examples/callbacks" 2 5
check checksum_unreadable 1 run checksum_unreadable "$examples/checksum" \
    "$data/check.txt" "$data/missing.txt" "$data/dir"
check search 0 run search "$examples/search"
check search_failing 0 run search_failing "$examples/search" 15
check pipeline 0 run pipeline "$examples/pipeline"
check pipeline_corrupt 0 run pipeline_corrupt "$examples/pipeline" -c
check mandelbrot 0 run mandelbrot "$examples/mandelbrot" -w 200 -h 150 \
    -o "$data/m.pgm"
check psort 0 run psort "$examples/psort" 100000 2
# crawl: a small tree (more entries in one directory than a group runs at
# once), and the same with a dangling link, which stops the walk.
for tree in tree bad; do
    mkdir -p "$data/$tree/a/b" "$data/$tree/many"
    printf 123456789 >"$data/$tree/a/b/check.txt"
    for i in 1 2 3 4 5 6; do printf '%s' "$i" >"$data/$tree/many/$i.txt"; done
done
ln -s nowhere "$data/bad/a/dangling"
check crawl 0 run crawl "$examples/crawl" "$data/tree"
check crawl_unreadable 1 run crawl_unreadable "$examples/crawl" "$data/bad"
check replicas 0 run replicas "$examples/replicas"
check replicas_missing 1 run replicas_missing "$examples/replicas" nobody

if [[ -x $examples/server/server ]]; then
    # server_check starts whatever it is given with the server's options.
    cat >"$logs/server-under-valgrind" <<EOF
#!/bin/sh
exec ${vg[*]} --log-file="$logs/server.%p.log" "$examples/server/server" "\$@"
EOF
    chmod +x "$logs/server-under-valgrind"
    check server 0 "$examples/server/server_check" "$logs/server-under-valgrind"
fi

if [[ -x $examples/pgz/pgz ]]; then
    awk 'BEGIN { for (i = 0; i < 60000; i++) printf "line %d of %d\n", i * 7919 % 100003, i }' \
        >"$data/in.txt"
    cat "$data/in.txt" "$data/in.txt" "$data/in.txt" >"$data/in3.txt"
    check pgz 0 run pgz "$examples/pgz/pgz" -p 2 -b 64 -o "$data/in3.gz" \
        "$data/in3.txt"
    if [[ ! -f $data/in3.gz ]] || ! gunzip -c "$data/in3.gz" | cmp -s - "$data/in3.txt"; then
        echo "pgz: the output does not gunzip to the input"
        failed+=(pgz_output)
    fi
    check pgz_directory 1 run pgz_directory "$examples/pgz/pgz" -o "$data/d.gz" \
        "$data/dir"
fi

if ((${#failed[@]} > 0)); then
    keep_logs=true
    echo "valgrind examples: FAILED: ${failed[*]}; output and logs in $logs"
    exit 1
fi
echo "valgrind examples: clean"
