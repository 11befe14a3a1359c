#!/usr/bin/env bash
# examples/pgz/test.sh: pgz's test, run by CTest as
#
#   bash test.sh PGZ WORKDIR
#
# Makes its inputs in WORKDIR (emptied first), compresses them with pgz and
# checks every output: gunzip restores the input exactly, gzip -t passes,
# the 10-byte header is pgz's, the 8-byte trailer (CRC-32 and length) is
# the one gzip writes for the whole input, which the last of several gzip
# members would not be, and -p 1, -p 2 and -p 4 give the same bytes.
# Then the failures: exit status, message, and no output left behind.
# Each case prints what it checked; the first failed check ends the run
# with status 1. Needs gzip, cmp, awk, base64, od.

set -euo pipefail

if (($# != 2)); then
    echo "usage: bash test.sh PGZ WORKDIR" >&2
    exit 2
fi
PGZ=$1
WORK=$2
# Absolute: the test runs in WORK.
[[ $PGZ == /* ]] || PGZ=$PWD/$PGZ
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
ok() { echo "ok: $*"; }

# Passes pgz's stderr, in err.txt, on to ours when a sanitizer wrote to
# it: CTest's FAIL_REGULAR_EXPRESSION sees it there, even in a case where
# pgz was meant to fail, with the status a sanitizer exits with too.
sanitized() {
    if grep -qE "Sanitizer|runtime error" err.txt; then
        cat err.txt >&2
        fail "a sanitizer reported (above)"
    fi
}

hex() { od -An -v -tx1 "$@" | tr -d ' \n'; }

# --- inputs ---------------------------------------------------------------

# Text-like lines (words, numbers) from the Park-Miller generator, whose
# products stay below 2^53: exact in any awk, so every run makes the same
# bytes. Writes at least $1 bytes; the caller cuts to size.
text() {
    awk -v n="$1" -v seed="$2" 'BEGIN {
        split("the of and to in is that for it as was with on by be at " \
              "from this pool task future block deflate window thread " \
              "crew worker queue error value stream header trailer", w, " ")
        nw = 34; x = seed
        while (total < n) {
            x = (x * 16807) % 2147483647; k = 4 + x % 9
            line = sprintf("%06d", x % 1000000)
            for (i = 0; i < k; i++) {
                x = (x * 16807) % 2147483647
                line = line " " w[1 + x % nw]
            }
            print line; total += length(line) + 1
        }
    }'
}

# Incompressible bytes: base64 digits from the same generator, decoded;
# at least $1 bytes.
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

# make_input FILE BYTES: 448 KiB of text, then 64 KiB of noise, in turn,
# cut to BYTES.
make_input() {
    local file=$1 bytes=$2 seg=0
    : >"$file"
    while (($(stat -c %s "$file") < bytes)); do
        seg=$((seg + 1))
        text $((448 * 1024)) $((seg * 7919)) >"$file.part"
        truncate -s $((448 * 1024)) "$file.part"
        cat "$file.part" >>"$file"
        noise $((64 * 1024)) $((seg * 104729)) >"$file.part"
        truncate -s $((64 * 1024)) "$file.part"
        cat "$file.part" >>"$file"
    done
    rm -f "$file.part"
    truncate -s "$bytes" "$file"
}

: >empty.bin
printf 'x' >one.bin
printf 'Hello, pgz!\nA tiny text file, one short block.\n' >tiny.txt
make_input big.bin $((5 * 1024 * 1024))
head -c $((128 * 1024)) big.bin >block.bin
head -c $((128 * 1024 + 1)) big.bin >block1.bin
[[ $(stat -c %s big.bin) == 5242880 && $(stat -c %s block1.bin) == 131073 ]] ||
    fail "inputs not made to size"
# The generator really is deterministic: the same seed, the same bytes.
cmp -s <(text 100000 42) <(text 100000 42) || fail "text() not deterministic"
cmp -s <(noise 100000 42) <(noise 100000 42) || fail "noise() not deterministic"
ok "inputs: empty, 1 byte, tiny text, 128 KiB, 128 KiB + 1, 5 MiB mixed"

# --- compressing ----------------------------------------------------------

# check NAME FILE [PGZ OPTIONS]: compresses FILE with -p 1, 2 and 4, and
# checks the outputs as the header comment says.
check() {
    local name=$1 file=$2 p rc xfl=00 want_header
    shift 2
    for p in 1 2 4; do
        rc=0
        "$PGZ" -p "$p" "$@" "$file" >"out-$p.gz" 2>err.txt || rc=$?
        sanitized
        ((rc == 0)) || fail "$name: pgz -p $p $* exited $rc: $(cat err.txt)"
        [[ ! -s err.txt ]] || fail "$name: pgz -p $p wrote to stderr: $(cat err.txt)"
    done
    gunzip -c out-1.gz | cmp -s - "$file" ||
        fail "$name: gunzip -c does not give the input back"
    gzip -t out-1.gz 2>err.txt || fail "$name: gzip -t: $(cat err.txt)"
    [[ ! -s err.txt ]] || fail "$name: gzip -t warned: $(cat err.txt)"
    case " $* " in
    *" -l 9 "*) xfl=02 ;;
    *" -l 1 "*) xfl=04 ;;
    esac
    want_header="1f8b080000000000${xfl}03"
    [[ $(head -c 10 out-1.gz | hex) == "$want_header" ]] ||
        fail "$name: header $(head -c 10 out-1.gz | hex), want $want_header"
    [[ $(tail -c 8 out-1.gz | hex) == $(gzip -c "$file" | tail -c 8 | hex) ]] ||
        fail "$name: trailer $(tail -c 8 out-1.gz | hex) is not gzip's: not one member, or a wrong CRC or length"
    cmp -s out-1.gz out-2.gz || fail "$name: -p 1 and -p 2 differ"
    cmp -s out-1.gz out-4.gz || fail "$name: -p 1 and -p 4 differ"
    ok "$name${*:+ ($*)}: gunzip gives it back, gzip -t, header, one member's trailer, -p 1 = -p 2 = -p 4 ($(stat -c %s out-1.gz) bytes)"
}

check "empty file" empty.bin
# Exactly gzip's stream for nothing: an empty final fixed block.
[[ $(hex out-1.gz) == 1f8b080000000000000303000000000000000000 ]] ||
    fail "empty file: $(hex out-1.gz) is not the 20-byte empty member"
ok "empty file: the 20-byte empty member"
check "1-byte file" one.bin
check "tiny text" tiny.txt
check "exactly one block" block.bin
check "one block + 1 byte" block1.bin
check "one block + 1 byte, 1 KiB blocks" block1.bin -b 1
for b in 1 37 128 1024; do
    check "5 MiB" big.bin -b "$b"
done
for l in 0 1 9; do
    check "5 MiB" big.bin -l "$l"
done

# The dictionaries keep the ratio close to gzip's, even in small blocks
# (without them, 4 KiB blocks make this file 14% larger).
gz=$(gzip -6 -c big.bin | wc -c)
for b in 4 128; do
    size=$("$PGZ" -b "$b" big.bin | wc -c)
    ((size * 1000 <= gz * 1015)) ||
        fail "-b $b: $size bytes, more than gzip -6's $gz + 1.5%"
    ok "5 MiB, -b $b: $size bytes, within 1.5% of gzip -6's $gz"
done

# Standard input: a file (read at offsets), a pipe (read by the main
# thread), and a file already partly read (compressed from there on).
"$PGZ" -b 37 big.bin >file.gz
"$PGZ" -b 37 <big.bin >stdin-file.gz
cmp -s file.gz stdin-file.gz || fail "stdin from a file differs from FILE"
# shellcheck disable=SC2002 # a pipe, on purpose
cat big.bin | "$PGZ" -b 37 -p 3 >stdin-pipe.gz
cmp -s file.gz stdin-pipe.gz || fail "stdin from a pipe differs from FILE"
# shellcheck disable=SC2002
cat big.bin | "$PGZ" -b 37 -p 3 - >stdin-dash.gz
cmp -s file.gz stdin-dash.gz || fail "FILE - differs from FILE"
: | "$PGZ" >stdin-empty.gz
[[ $(hex stdin-empty.gz) == 1f8b080000000000000303000000000000000000 ]] ||
    fail "empty pipe: $(hex stdin-empty.gz) is not the empty member"
(
    dd bs=1000 count=1 of=/dev/null status=none
    "$PGZ" -b 37
) <big.bin >stdin-skip.gz
tail -c +1001 big.bin >skip.bin
gunzip -c stdin-skip.gz | cmp -s - skip.bin ||
    fail "stdin read 1000 bytes in: not compressed from there"
ok "stdin: a file, a pipe, '-', an empty pipe, a file read partly: all as FILE"

# A /proc file says its size is 0, and has more: read whole, as a pipe is.
if [[ -f /proc/self/status ]]; then
    "$PGZ" /proc/self/status >proc.gz
    gzip -t proc.gz || fail "/proc/self/status: gzip -t"
    [[ $(gunzip -c proc.gz | head -n 1) == Name:* ]] ||
        fail "/proc/self/status: $(gunzip -c proc.gz | head -c 100)"
    ok "/proc/self/status, of size 0: compressed whole ($(gunzip -c proc.gz | wc -c) bytes)"
fi

# -o: the same bytes as standard output, the mode of a new file.
rm -f named.gz
(
    umask 022
    "$PGZ" -b 37 -o named.gz big.bin
)
cmp -s named.gz file.gz || fail "-o output differs from standard output's"
[[ $(stat -c %a named.gz) == 644 ]] ||
    fail "-o output has mode $(stat -c %a named.gz), want 644 under umask 022"
[[ -z $(find . -name 'named.gz.*') ]] || fail "-o left a temporary file"
ok "-o OUTPUT: same bytes, mode 644 under umask 022, no temporary left"

# --- failures -------------------------------------------------------------

# run STATUS NAME PGZ-ARGS...: pgz must exit STATUS; stdout, stderr in
# out.txt, err.txt.
run() {
    local want=$1 name=$2 rc=0
    shift 2
    "$PGZ" "$@" >out.txt 2>err.txt || rc=$?
    sanitized
    ((rc == want)) || fail "$name: exit $rc, want $want; stderr: $(cat err.txt)"
}

run 1 "missing file" "$WORK/missing.bin"
grep -q "missing.bin: open: No such file or directory" err.txt ||
    fail "missing file: stderr does not name it: $(cat err.txt)"
[[ ! -s out.txt ]] || fail "missing file: wrote to stdout"
ok "missing file: exit 1, '$(cat err.txt)'"

mkdir -p dir
run 1 "directory" dir
grep -qx "pgz: dir: block 0 (offset 0): read: Is a directory" err.txt ||
    fail "directory: stderr is not block 0's read error: $(cat err.txt)"
ok "directory: exit 1, '$(cat err.txt)'"

echo "earlier output" >kept.gz
run 1 "directory, -o" -o kept.gz dir
grep -q "block 0 (offset 0): read: Is a directory" err.txt ||
    fail "directory, -o: no block 0 read error: $(cat err.txt)"
[[ $(cat kept.gz) == "earlier output" ]] || fail "directory, -o: OUTPUT was replaced"
[[ -z $(find . -name 'kept.gz.*') ]] || fail "directory, -o: a temporary file was left"
run 1 "directory, -o new" -o new.gz dir
[[ ! -e new.gz && -z $(find . -name 'new.gz*') ]] ||
    fail "directory, -o new: output left behind: $(find . -name 'new.gz*')"
ok "directory, -o: exit 1, OUTPUT kept as it was or not made, no temporary"

for args in "-p 0" "-p x" "-p 1025" "-p -1" "-b 0" "-b 65537" "-l 10" \
    "-l 1x" "-q" "-p" "one.bin tiny.txt"; do
    # shellcheck disable=SC2086 # the options are words on purpose
    run 2 "options '$args'" $args
    [[ -s err.txt && ! -s out.txt ]] ||
        fail "options '$args': no message, or output written"
done
ok "bad options (-p 0, -p x, -p 1025, -p -1, -b 0, -b 65537, -l 10, -l 1x, -q, -p, two files): exit 2"

run 1 "-o in a missing directory" -o "$WORK/nodir/out.gz" big.bin
grep -q "nodir/out.gz" err.txt || fail "-o missing dir: no name: $(cat err.txt)"
[[ ! -e nodir ]] || fail "-o missing dir: made it"
ok "-o in a missing directory: exit 1, '$(cat err.txt)'"

mkdir -p outdir
run 1 "-o onto a directory" -o outdir big.bin
[[ -d outdir && -z $(ls -A outdir) ]] || fail "-o onto a directory: it changed"
[[ -z $(find . -maxdepth 1 -name 'outdir.*') ]] ||
    fail "-o onto a directory: a temporary file was left"
ok "-o onto a directory: exit 1, '$(cat err.txt)', no temporary"

if ((EUID != 0)); then
    mkdir -p ro
    chmod 555 ro
    run 1 "-o in a read-only directory" -o ro/out.gz big.bin
    [[ -z $(ls -A ro) ]] || fail "-o in a read-only directory: wrote in it"
    ok "-o in a read-only directory: exit 1, '$(cat err.txt)'"
else
    echo "skipped: -o in a read-only directory (root writes anyway)"
fi

if [[ -w /dev/full ]]; then
    rc=0
    "$PGZ" big.bin >/dev/full 2>err.txt || rc=$?
    sanitized
    ((rc == 1)) || fail "/dev/full: exit $rc, want 1"
    grep -q "standard output: write: No space left on device" err.txt ||
        fail "/dev/full: $(cat err.txt)"
    ok "standard output full: exit 1, '$(cat err.txt)'"
else
    echo "skipped: standard output full (no /dev/full)"
fi

echo "all pgz checks passed"
