#!/bin/sh
# Build rxjob and run every test: first a normal build with -Werror, then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer. Also checks the formatting of C sources.
# Usage: scripts/test.sh [--quick]   (--quick: skip the sanitizer pass)
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

echo "== format check (clang-format)"
find include src tests examples bench fuzz -name '*.[ch]' -print0 |
    xargs -0 clang-format --dry-run -Werror

echo "== build and test (RelWithDebInfo, -Werror)"
cmake -S . -B build -DRX_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j 1)

if [ "${1:-}" != "--quick" ]; then
    echo "== build and test (ASan + UBSan)"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRX_WERROR=ON -DRX_ASAN=ON \
        -DRX_UBSAN=ON >/dev/null
    cmake --build build-asan -j "$jobs"
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j 1)
fi
echo "== bench smoke run"
./build/bench/bench_local --quick >/dev/null 2>&1 || { echo "bench_local --quick failed"; exit 1; }
./build/bench/bench_server --quick >/dev/null 2>&1 || { echo "bench_server --quick failed"; exit 1; }
# rxjob beside task-spooler, nq and a one-node Slurm (its own, on its own port): about 30 s.
cmp_out=$(mktemp -d)
bench/compare --quick --build build --out "$cmp_out" >"$cmp_out/stdout" 2>&1 ||
    { tail -n 20 "$cmp_out/stdout"; echo "bench/compare --quick failed"; exit 1; }
rm -rf "$cmp_out"
echo "test.sh: all passed"
