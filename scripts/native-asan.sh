#!/usr/bin/env bash
# Builds and runs the native tests under AddressSanitizer + UndefinedBehaviorSanitizer:
#   1. native/test/diff_test.cc  - every available diff kernel vs a byte-by-byte oracle
#   2. native/test/core_test.cc  - mapping / futex / waiter thread core (also under TSan)
#   3. the whole addon built with ASan, running native/test/smoke.mjs inside node
#      (libasan preloaded; skipped with a note if node's headers are not found)
# Outputs go to native/test/out/ (git-ignored). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=native/test/out
mkdir -p "$OUT"
CXX="${CXX:-g++}"
SAN=(-std=c++17 -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer
     -fno-sanitize-recover=all -Wall -Wextra -pthread)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

echo "== diff kernels (ASan+UBSan)"
"$CXX" "${SAN[@]}" -o "$OUT/diff_test_asan" native/test/diff_test.cc \
  native/diff.cc native/diff_x86.cc native/diff_neon.cc native/cpu.cc
"$OUT/diff_test_asan"

echo "== mapping/futex/waiter core (ASan+UBSan)"
"$CXX" "${SAN[@]}" -o "$OUT/core_test_asan" native/test/core_test.cc \
  native/mapping.cc native/waiter.cc native/futex.cc
"$OUT/core_test_asan"

echo "== mapping/futex/waiter core (TSan)"
if "$CXX" -std=c++17 -O1 -g -fsanitize=thread -pthread -o "$OUT/core_test_tsan" \
    native/test/core_test.cc native/mapping.cc native/waiter.cc native/futex.cc 2>"$OUT/tsan-build.log"; then
  # TSan cannot cope with some kernels' ASLR layouts ("unexpected memory mapping"):
  # retry once with address randomization disabled for the test process.
  if ! TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1}" "$OUT/core_test_tsan" 2>"$OUT/tsan.log"; then
    if grep -q "unexpected memory mapping" "$OUT/tsan.log" && command -v setarch >/dev/null; then
      TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1}" setarch "$(uname -m)" -R "$OUT/core_test_tsan"
    else
      cat "$OUT/tsan.log" >&2
      exit 1
    fi
  fi
else
  echo "(TSan build unavailable here, skipped: see $OUT/tsan-build.log)"
fi

echo "== addon under ASan+UBSan: native/test/smoke.mjs"
NODE_INC=""
for d in "${npm_config_nodedir:-}/include/node" \
         "$(node -p 'require("path").resolve(process.execPath, "../../include/node")')" \
         "$HOME/.cache/node-gyp/$(node -p 'process.versions.node')/include/node"; do
  if [ -f "$d/node_api.h" ]; then NODE_INC="$d"; break; fi
done
if [ -z "$NODE_INC" ]; then
  echo "(node headers not found; skipped the ASan addon run)"
else
  NAA="$(node -p "require('node-addon-api').include_dir")"
  "$CXX" "${SAN[@]}" -fPIC -shared -fno-exceptions -DNAPI_VERSION=8 -DNAPI_DISABLE_CPP_EXCEPTIONS -DNODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS \
    -DNODE_GYP_MODULE_NAME=commy -I"$NODE_INC" -I"$NAA" -o "$OUT/commy-asan.node" \
    native/commy.cc native/args.cc native/errors.cc native/js_mapping.cc native/js_waiter.cc \
    native/mapping.cc native/waiter.cc native/futex.cc native/uring.cc native/cpu.cc native/diff.cc \
    native/diff_x86.cc native/diff_neon.cc
  # node itself is not instrumented: preload the runtimes; node's own leaks are not ours.
  # Once per waiter kind (io_uring where the kernel allows it, and the thread fallback).
  for kind in io_uring thread; do
    LD_PRELOAD="$("$CXX" -print-file-name=libasan.so):$("$CXX" -print-file-name=libubsan.so)" \
    ASAN_OPTIONS="detect_leaks=0" COMMY_ADDON="$PWD/$OUT/commy-asan.node" COMMY_WAITER="$kind" \
      node --expose-gc native/test/smoke.mjs
  done
fi
echo "native-asan: all passed"
