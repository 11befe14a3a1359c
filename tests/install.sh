#!/usr/bin/env bash
# tests/install.sh: install crew to a temporary prefix, shared and static,
# and build a consumer program against each install twice, with
# find_package(crew) and with pkg-config; each consumer must run. Then
# make the Debian package with cpack, check what it installs, and build
# the consumer once more against its unpacked tree.
#
#   tests/install.sh [WORK_DIR]     (default: a new temporary directory)
#
# Exits non-zero at the first failure.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
work=$(cd "$work" && pwd) # install prefixes and CMAKE_PREFIX_PATH want it absolute
jobs=$(nproc 2>/dev/null || echo 2)

for shared in ON OFF; do
    kind=$([[ $shared == ON ]] && echo shared || echo static)
    build=$work/build-$kind prefix=$work/prefix-$kind
    echo "--- crew, $kind, installed to $prefix"
    cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=$shared -DCREW_BUILD_TESTS=OFF \
        -DCREW_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
    cmake --build "$build" -j "$jobs" >/dev/null
    cmake --install "$build" >/dev/null
    libdir=$(ls -d "$prefix"/lib*/ | head -n 1)

    echo "--- consumer with find_package(crew), $kind"
    cmake -S "$top/tests/install" -B "$work/consumer-cmake-$kind" \
        -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    cmake --build "$work/consumer-cmake-$kind" >/dev/null
    LD_LIBRARY_PATH=$libdir "$work/consumer-cmake-$kind/consumer"

    echo "--- consumer with pkg-config, $kind"
    export PKG_CONFIG_PATH=$libdir/pkgconfig
    if [[ $kind == static ]]; then
        flags=$(pkg-config --static --cflags --libs crew)
    else
        flags=$(pkg-config --cflags --libs crew)
    fi
    cc -std=c11 -Wall -Wextra -Wpedantic -Werror \
        "$top/tests/install/consumer.c" $flags -o "$work/consumer-pc-$kind"
    if [[ $kind == shared ]]; then
        # Linked against the shared library, not a copy of it.
        ldd "$work/consumer-pc-$kind" | grep -q 'libcrew\.so'
    elif ldd "$work/consumer-pc-$kind" | grep -q 'libcrew'; then
        echo "install.sh: the static consumer needs libcrew at run time" >&2
        exit 1
    fi
    LD_LIBRARY_PATH=$libdir "$work/consumer-pc-$kind"
done

echo "--- cpack -G DEB"
(cd "$work/build-shared" && cpack -G DEB >/dev/null)
deb=$(ls "$work"/build-shared/*.deb)
contents=$(dpkg-deb -c "$deb")
for want in include/crew.h libcrew.so crewConfig.cmake crewTargets.cmake \
    pkgconfig/crew.pc; do
    grep -q "$want" <<<"$contents" || {
        echo "install.sh: $deb lacks $want" >&2
        exit 1
    }
done
echo "$(basename "$deb"): header, library, CMake package and crew.pc"
# The package's tree, unpacked aside, serves a consumer as an install does.
dpkg-deb -x "$deb" "$work/deb-root"
cmake -S "$top/tests/install" -B "$work/consumer-deb" \
    -DCMAKE_PREFIX_PATH="$work/deb-root/usr" >/dev/null
cmake --build "$work/consumer-deb" >/dev/null
LD_LIBRARY_PATH=$(dirname "$(find "$work/deb-root" -name 'libcrew.so*' | head -n 1)") \
    "$work/consumer-deb/consumer"
echo "install.sh: all consumers built and ran"
