#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang, AddressSanitizer and UndefinedBehaviorSanitizer.
#
# Usage: tests/fuzz/build.sh [OUTDIR]   (default: build-fuzz at the top of the tree)
#
# Every module in src/'s folders but main.c goes, instrumented, into one static archive, as meson's
# areq_core does; each harness links against it, so the linker takes only the modules that
# harness reaches and a module's new internal dependency needs no change here.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build-fuzz}
cc=${CLANG:-clang}
# What meson.build asks pkg-config for; keep the two lists in step.
modules=(libcurl libuv libpcre2-8 libidn2 libcrypto sqlite3)

mkdir -p "$out/obj"
# The same generated table and config.h the meson build makes.
python3 "$root/src/extract/gen_entities.py" "$out/entities_table.c"
printf '#define AREQ_VERSION "fuzz"\n' >"$out/config.h"

common=(-std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -fno-omit-frame-pointer
        -fsanitize=address,undefined -fno-sanitize-recover=undefined
        -I "$out")
# Every layer's folder, as meson's libraries give them to the code above them.
for dir in "$root"/src/*/; do common+=(-I "$dir"); done
# shellcheck disable=SC2207 # pkg-config prints flags separated by white space
pkg_cflags=($(pkg-config --cflags "${modules[@]}"))
# shellcheck disable=SC2207
pkg_libs=($(pkg-config --libs "${modules[@]}"))

echo "building $out/libareq_fuzz.a"
objs=()
for src in "$root"/src/*/*.c "$out/entities_table.c"; do
    [ "$(basename "$src")" = main.c ] && continue
    obj=$out/obj/$(basename "$src" .c).o
    rm -f "$obj"
    # A module that does not compile is the meson build's error to report; here it matters
    # only if a harness needs it, and then the link below fails naming what is missing.
    if "$cc" "${common[@]}" -fsanitize=fuzzer-no-link "${pkg_cflags[@]}" -c -o "$obj" "$src"; then
        objs+=("$obj")
    else
        echo "warning: left $(basename "$src") out of the fuzz build: it does not compile" >&2
    fi
done
rm -f "$out/libareq_fuzz.a"
ar rcs "$out/libareq_fuzz.a" "${objs[@]}"

for name in fuzz_links fuzz_url fuzz_input fuzz_robots fuzz_savepath fuzz_targets; do
    echo "building $out/$name"
    "$cc" "${common[@]}" -fsanitize=fuzzer -o "$out/$name" "$root/tests/fuzz/$name.c" \
        "$out/libareq_fuzz.a" -Wl,--as-needed "${pkg_libs[@]}" -lm
done
