#!/usr/bin/env bash
# tests/install.sh: install crew to a temporary prefix, shared and static,
# and build a consumer program against each install twice, with
# find_package(crew) and with pkg-config; each consumer must run. Then
# make the Debian package with cpack, check what it installs, and build
# the consumer once more against its unpacked tree.
#
# The install moves: each build is configured for a prefix it is never
# installed to and installed with cmake --install --prefix, to two
# places; no installed file may name the configured prefix, and crew.pc
# must point into wherever it lies.
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

# check_pc DEST: the crew.pc under DEST names DEST as its prefix, the
# directory above its own as libdir and DEST/include as includedir.
check_pc() {
    local pcdir var got want
    pcdir=$(dirname "$(find "$1" -name crew.pc | head -n 1)")
    for var in prefix libdir includedir; do
        got=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=$var crew)
        want=$1
        [[ $var == libdir ]] && want=$(dirname "$pcdir")
        [[ $var == includedir ]] && want=$1/include
        if [[ $(realpath "$got") != "$want" ]]; then
            echo "install.sh: $pcdir/crew.pc's $var is $got, not $want" >&2
            exit 1
        fi
    done
}

for shared in ON OFF; do
    kind=$([[ $shared == ON ]] && echo shared || echo static)
    build=$work/build-$kind prefix=$work/prefix-$kind
    configured=$work/configured-prefix-$kind # never installed to
    echo "--- crew, $kind, configured for $configured"
    rm -rf "$prefix" "$prefix-moved" "$configured"
    cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=$shared -DCREW_BUILD_TESTS=OFF \
        -DCREW_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX="$configured" >/dev/null
    cmake --build "$build" -j "$jobs" >/dev/null
    for dest in "$prefix" "$prefix-moved"; do
        echo "--- installed with --prefix $dest"
        cmake --install "$build" --prefix "$dest" >/dev/null
        if [[ -e $configured ]] || grep -rlF "$configured" "$dest"; then
            echo "install.sh: the install names or used $configured" >&2
            exit 1
        fi
        check_pc "$dest"
    done
    libdir=$(ls -d "$prefix"/lib*/ | head -n 1)
    libdir=${libdir%/}

    echo "--- consumer with find_package(crew), $kind"
    cmake -S "$top/tests/install" -B "$work/consumer-cmake-$kind" \
        -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    cmake --build "$work/consumer-cmake-$kind" >/dev/null
    # CMake links it with the library's directory as rpath: no
    # LD_LIBRARY_PATH needed (README, "Install and link").
    env -u LD_LIBRARY_PATH "$work/consumer-cmake-$kind/consumer"

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
    if [[ $kind == shared ]]; then
        # The README's other way: an rpath from crew.pc's libdir.
        cc -std=c11 -Wall -Wextra -Wpedantic -Werror \
            "$top/tests/install/consumer.c" $flags \
            -Wl,-rpath,"$(pkg-config --variable=libdir crew)" \
            -o "$work/consumer-pc-rpath"
        env -u LD_LIBRARY_PATH "$work/consumer-pc-rpath"
    fi
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
rm -rf "$work/deb-root"
dpkg-deb -x "$deb" "$work/deb-root"
check_pc "$work/deb-root/usr"
cmake -S "$top/tests/install" -B "$work/consumer-deb" \
    -DCMAKE_PREFIX_PATH="$work/deb-root/usr" >/dev/null
cmake --build "$work/consumer-deb" >/dev/null
LD_LIBRARY_PATH=$(dirname "$(find "$work/deb-root" -name 'libcrew.so*' | head -n 1)") \
    "$work/consumer-deb/consumer"
echo "install.sh: all consumers built and ran"
