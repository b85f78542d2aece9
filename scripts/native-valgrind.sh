#!/usr/bin/env bash
# Runs native/test/smoke.mjs (every addon entry point, bad inputs, waiters, locks,
# workers, a second process) under valgrind memcheck against build/Release/commy.node.
# Builds the addon first if it is missing (COMMY_REBUILD=1 forces a rebuild).
#
# Node/V8 noise is suppressed by native/test/valgrind-node.supp (uninitialised-value
# reports from inside the node binary only). Leak checking is off: node never frees
# everything at exit. Valgrind 3.19-3.2x does not emulate AVX-512 and its CPUID hides
# it, so under valgrind the addon detects avx2 as its best kernel by itself; the
# AVX-512 kernel is covered by scripts/native-asan.sh instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
  echo "valgrind is not installed" >&2
  exit 1
fi
if [ "${COMMY_REBUILD:-0}" = 1 ] || [ ! -f build/Release/commy.node ]; then
  npm run --silent install  # node-gyp rebuild, with npm's bundled node-gyp and config
fi
COMMY_SMOKE_SLOW=1 timeout 600 valgrind --error-exitcode=1 --leak-check=no \
  --errors-for-leak-kinds=none --suppressions=native/test/valgrind-node.supp \
  --trace-children=no -q node --expose-gc native/test/smoke.mjs
echo "native-valgrind: passed"
