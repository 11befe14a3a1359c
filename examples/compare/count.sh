#!/usr/bin/env bash
# Counts the code lines (cloc's "code": not blank, not comment) of the same
# job written three ways, for the line count in the README: with crew
# (examples/hello.c), with C++ std::async (async.cpp) and with
# C-Thread-Pool (thpool.c). One line a file, e.g. "hello.c 43".
#
#   examples/compare/count.sh
#
# Installs cloc with apt-get when it is missing (through sudo when not
# root). Exits 1 if cloc cannot be had or a file cannot be counted.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
examples=$(dirname "$here")

if ! command -v cloc >/dev/null; then
    sudo=()
    if ((EUID != 0)) && command -v sudo >/dev/null; then
        sudo=(sudo)
    fi
    if command -v apt-get >/dev/null; then
        echo "count: cloc missing, installing it with apt-get" >&2
        "${sudo[@]}" apt-get install -y cloc >&2 ||
            { "${sudo[@]}" apt-get update >&2 &&
              "${sudo[@]}" apt-get install -y cloc >&2; } || true
    fi
fi
if ! command -v cloc >/dev/null; then
    echo "count: cloc not found and could not be installed" \
         "(apt-get install cloc, or https://github.com/AlDanial/cloc)" >&2
    exit 1
fi

status=0
for file in "$examples/hello.c" "$here/async.cpp" "$here/thpool.c"; do
    # --csv prints a header, then "files,language,blank,comment,code".
    code=$(cloc --quiet --csv "$file" |
           awk -F, '$1 ~ /^[0-9]+$/ && $2 != "SUM" { print $5 }')
    if [[ -z $code ]]; then
        echo "count: cloc could not count $file" >&2
        status=1
        continue
    fi
    echo "$(basename "$file") $code"
done
exit "$status"
