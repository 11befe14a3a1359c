#!/usr/bin/env bash
# bench/server.sh: the server example (examples/server) under wrk, with its
# heavy requests on a crew pool against the same server computing them on
# its event loop (server -i), in one run. From the repository root:
#
#   bash bench/server.sh                     the full run (about 2 minutes)
#   SERVER_BENCH_QUICK=1 bash bench/server.sh   a smoke run (about 15 s)
#
# Modes: the pool server with each pool size of THREADS, and the inline
# server. For each mode, two wrk processes load the server at once for
# DURATION seconds, against 127.0.0.1 only:
#   heavy  HEAVY_CONNS connections asking /work?n=ROUNDS (hashing, about
#          ROUNDS x 20 us of CPU each), back to back;
#   ping   PING_CONNS connections asking /ping, answered on the loop, each
#          waiting PING_DELAY_MS between its answer and its next request
#          (a wrk Lua delay(): a probe, not a flood that would take the
#          cores from the workers).
# It reports each load's requests per second and the p50 and p99 latency
# of /ping while the heavy requests run (wrk --latency), the medians of
# REPS runs, the modes interleaved; and, once, /ping alone on an idle pool
# server for reference. After each run it reads the server's /stats (with
# bash's /dev/tcp: no curl needed) and reports, as medians too, the
# requests the server read and, for the pool modes, the tasks submitted,
# cancelled and stolen and their queue wait and run time (p50, p99, max):
# the pool server runs with -l, which times its tasks.
#
# Options, as environment variables:
#   DURATION=10  REPS=3  ROUNDS=200
#   THREADS="nproc-1 nproc"  the pool sizes to run (one core left to the
#                            loop and to wrk, or none); "nproc" alone on
#                            a 1-core machine
#   HEAVY_CONNS=8  PING_CONNS=2  PING_DELAY_MS=1
#   SERVER_BENCH_QUICK=1    DURATION=2, REPS=1
#   BENCH_INSTALL=1         apt-get install wrk, cmake, gcc when missing
#   BENCH_BUILD_DIR=build-bench-server
# wrk, the loop and the workers share the machine's cores: on a small
# machine the figures are the whole system's, read them as ratios.
# Writes results.md, the wrk outputs and the /stats answers into the build
# directory. Exit status: 0; 1 if a server failed, a response was not 2xx,
# wrk saw socket errors, or /stats did not answer; 2 if a tool is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ${SERVER_BENCH_QUICK:-0} == 1 ]]; then
    : "${DURATION:=2}" "${REPS:=1}"
fi
DURATION=${DURATION:-10}
REPS=${REPS:-3}
NPROC=$(nproc)
if ((NPROC > 1)); then
    THREADS=${THREADS:-"$((NPROC - 1)) $NPROC"}
else
    THREADS=${THREADS:-1}
fi
ROUNDS=${ROUNDS:-200}
HEAVY_CONNS=${HEAVY_CONNS:-8}
PING_CONNS=${PING_CONNS:-2}
PING_DELAY_MS=${PING_DELAY_MS:-1}
BUILD=${BENCH_BUILD_DIR:-build-bench-server}

missing=()
for tool in wrk cmake gcc; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    if [[ ${BENCH_INSTALL:-1} != 1 ]]; then
        echo "server.sh: missing ${missing[*]} (apt-get install ${missing[*]})" >&2
        exit 2
    fi
    apt-get update >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null
fi

mkdir -p "$BUILD"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCREW_BUILD_TESTS=OFF \
    >"$BUILD/build.log" 2>&1 || { cat "$BUILD/build.log" >&2; exit 1; }
cmake --build "$BUILD" -j "$(nproc)" --target example_server \
    >>"$BUILD/build.log" 2>&1 || { cat "$BUILD/build.log" >&2; exit 1; }
server=$BUILD/examples/server/server
out=$BUILD/server-bench
rm -rf "$out"
mkdir -p "$out"
probe=$out/probe.lua
echo "function delay() return $PING_DELAY_MS end" >"$probe"

pid=''
port=''
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT

# Starts the server with the given flags; sets pid and port.
start() {
    local fifo=$out/port.fifo line
    rm -f "$fifo"
    mkfifo "$fifo"
    "$server" -p 0 "$@" >"$fifo" 2>>"$out/server.err" &
    pid=$!
    read -r line <"$fifo"
    rm -f "$fifo"
    port=${line##*:}
    [[ $port =~ ^[0-9]+$ ]] || { echo "server.sh: the server did not start" >&2; exit 1; }
}

# SIGTERM drains the server; it must exit 0.
stop() {
    kill -TERM "$pid"
    if ! wait "$pid"; then
        echo "server.sh: the server failed to drain (see $out/server.err)" >&2
        exit 1
    fi
    pid=''
}

# The value of wrk's "Requests/sec:" line.
rps() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }

# A percentile of wrk's latency distribution, in milliseconds.
latency_ms() {
    awk -v p="$2%" '
        $1 == p {
            v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
            if (unit == "us") v /= 1000; else if (unit == "s") v *= 1000
            printf "%.3f\n", v
        }' "$1"
}

# Fails the run if wrk saw errors or non-2xx answers.
clean_run() {
    if grep -Eq 'Socket errors|Non-2xx' "$1"; then
        echo "server.sh: errors in $1:" >&2
        cat "$1" >&2
        exit 1
    fi
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

url() { echo "http://127.0.0.1:$port$1"; }

# Saves the server's /stats into the file $1: a GET over bash's /dev/tcp,
# with "Connection: close", read to the end.
stats_fetch() {
    local response
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
    response=$(timeout 10 cat <&3) || true
    exec 3<&-
    if [[ $response != "HTTP/1.1 200 "* ]]; then
        echo "server.sh: /stats did not answer: $response" >&2
        exit 1
    fi
    printf '%s\n' "${response#*$'\r\n\r\n'}" >"$1"
}

# Prints the JSON of /stats as "path value" lines ("latency.run_ns.p99
# 1234"). Its values are numbers, true, false and null, in objects, and
# its only strings are keys: a scan of tokens is a parser for it.
flatten() {
    awk '{ text = text $0 "\n" }
    END {
        depth = 0; key = ""
        while (match(text, /[{}]|"[^"]*"|-?[0-9][0-9.eE+-]*|true|false|null/)) {
            token = substr(text, RSTART, RLENGTH)
            text = substr(text, RSTART + RLENGTH)
            if (token == "{") {
                path[++depth] = key; key = ""
            } else if (token == "}") {
                depth--
            } else if (token ~ /^"/) {
                key = substr(token, 2, length(token) - 2)
            } else {
                prefix = ""
                for (i = 2; i <= depth; i++) prefix = prefix path[i] "."
                print prefix key, token
            }
        }
    }' "$1"
}

# The value at a path of the /stats saved in file $1, in nanoseconds or a
# count; "-" if it is not there (no pool: -i).
stat_of() { flatten "$1" | awk -v p="$2" '$1 == p { v = $2 } END { print (v == "" ? "-" : v) }'; }

# One run of a mode (inline, or poolN: a pool of N): both loads at once.
run_mode() {
    local mode=$1 rep=$2
    if [[ $mode == inline ]]; then start -i; else start -t "${mode#pool}" -l; fi
    wrk -t1 -c "$HEAVY_CONNS" -d "${DURATION}s" --latency \
        "$(url "/work?n=$ROUNDS")" >"$out/$mode-heavy-$rep.txt" &
    local heavy=$!
    wrk -t1 -c "$PING_CONNS" -d "${DURATION}s" --latency -s "$probe" \
        "$(url /ping)" >"$out/$mode-ping-$rep.txt"
    wait "$heavy"
    local stats=$out/$mode-stats-$rep.json
    stats_fetch "$stats"
    stop
    clean_run "$out/$mode-heavy-$rep.txt"
    clean_run "$out/$mode-ping-$rep.txt"
    local field fields=()
    for field in server.requests pool.submitted pool.cancelled pool.stolen \
        latency.wait_ns.p50 latency.wait_ns.p99 latency.run_ns.p50 \
        latency.run_ns.p99 latency.run_ns.max; do
        fields+=("$(stat_of "$stats" "$field")")
    done
    if [[ ${fields[0]} == - ||
        ($mode != inline && $(stat_of "$stats" latency.timed) != true) ]]; then
        echo "server.sh: $stats is not what /stats answers" >&2
        exit 1
    fi
    { printf '%s' "$mode"; printf '\t%s' "${fields[@]}"; echo; } \
        >>"$out/stats.tsv"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" \
        "$(rps "$out/$mode-heavy-$rep.txt")" \
        "$(latency_ms "$out/$mode-heavy-$rep.txt" 50)" \
        "$(rps "$out/$mode-ping-$rep.txt")" \
        "$(latency_ms "$out/$mode-ping-$rep.txt" 50)" \
        "$(latency_ms "$out/$mode-ping-$rep.txt" 99)" >>"$out/samples.tsv"
}

modes=""
for t in $THREADS; do modes="$modes pool$t"; done
modes="${modes# } inline"
echo "server.sh: $REPS x ${DURATION}s per mode, pools of $THREADS," \
    "/work?n=$ROUNDS on $HEAVY_CONNS connections, /ping on $PING_CONNS" \
    "every ${PING_DELAY_MS} ms"
start -t "${THREADS##* }"
wrk -t1 -c "$PING_CONNS" -d "${DURATION}s" --latency -s "$probe" \
    "$(url /ping)" >"$out/idle-ping.txt"
stop
clean_run "$out/idle-ping.txt"
: >"$out/samples.tsv"
: >"$out/stats.tsv"
for ((rep = 1; rep <= REPS; rep++)); do
    # Interleaved, the order reversed every other rep: drift hits all alike.
    order=$modes
    ((rep % 2)) || order=$(echo "$modes" | tr ' ' '\n' | tac | tr '\n' ' ')
    for mode in $order; do
        run_mode "$mode" "$rep"
    done
done

# column: 2 heavy rps, 3 heavy p50, 4 ping rps, 5 ping p50, 6 ping p99
med() { awk -F'\t' -v m="$1" -v c="$2" '$1 == m { print $c }' \
    "$out/samples.tsv" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3g", a / b }'; }
# /stats, column: 2 requests, 3 submitted, 4 cancelled, 5 stolen, 6 wait
# p50, 7 wait p99, 8 run p50, 9 run p99, 10 run max (ns); "-" without a
# pool.
stat_med() {
    local v
    v=$(awk -F'\t' -v m="$1" -v c="$2" '$1 == m { print $c }' \
        "$out/stats.tsv" | median)
    if [[ $v == - ]]; then echo -; elif (($# > 2)); then
        awk -v v="$v" 'BEGIN { printf "%.3f", v / 1e6 }'
    else echo "$v"; fi
}

{
    echo "| server | /work req/s | /work p50 (ms) | /ping req/s | /ping p50 (ms) | /ping p99 (ms) |"
    echo "|---|---:|---:|---:|---:|---:|"
    for mode in $modes; do
        name=$([[ $mode == inline ]] && echo "work inline on the loop" ||
            echo "work on a crew pool of ${mode#pool}")
        printf '| %s | %.0f | %.2f | %.0f | %.3f | %.3f |\n' "$name" \
            "$(med "$mode" 2)" "$(med "$mode" 3)" "$(med "$mode" 4)" \
            "$(med "$mode" 5)" "$(med "$mode" 6)"
    done
    printf '| /ping alone (pool of %s, idle) | - | - | %.0f | %.3f | %.3f |\n' \
        "${THREADS##* }" \
        "$(rps "$out/idle-ping.txt")" "$(latency_ms "$out/idle-ping.txt" 50)" \
        "$(latency_ms "$out/idle-ping.txt" 99)"
    echo
    for t in $THREADS; do
        echo "pool of $t / inline:" \
            "/work throughput $(ratio "$(med "pool$t" 2)" "$(med inline 2)")x," \
            "/ping p99 $(ratio "$(med "pool$t" 6)" "$(med inline 6)")x," \
            "/ping throughput $(ratio "$(med "pool$t" 4)" "$(med inline 4)")x"
    done
    echo "(medians of $REPS runs of ${DURATION}s each)"
    echo
    echo "From /stats after each run (medians; wait: queued to started, run: started to resolved):"
    echo
    echo "| server | requests | tasks | cancelled | stolen | wait p50 (ms) | wait p99 (ms) | run p50 (ms) | run p99 (ms) | run max (ms) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for mode in $modes; do
        name=$([[ $mode == inline ]] && echo "work inline on the loop" ||
            echo "work on a crew pool of ${mode#pool}")
        echo "| $name | $(stat_med "$mode" 2) | $(stat_med "$mode" 3) |" \
            "$(stat_med "$mode" 4) | $(stat_med "$mode" 5) |" \
            "$(stat_med "$mode" 6 ms) | $(stat_med "$mode" 7 ms) |" \
            "$(stat_med "$mode" 8 ms) | $(stat_med "$mode" 9 ms) |" \
            "$(stat_med "$mode" 10 ms) |"
    done
    echo "Reproduce: DURATION=$DURATION REPS=$REPS THREADS=\"$THREADS\" ROUNDS=$ROUNDS" \
        "HEAVY_CONNS=$HEAVY_CONNS PING_CONNS=$PING_CONNS PING_DELAY_MS=$PING_DELAY_MS" \
        "bash bench/server.sh"
} | tee "$out/results.md"
