#!/usr/bin/env bash
# Installs the Debian packages, builds octet and runs every test. What CI runs (.ci/run calls this).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${OCTET_BUILD:-$root/build}
bash "$root/.ci/install-deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$(nproc)"
# oneDNN's OpenMP threads spin: tests run in parallel only with one thread each.
cd "$build"
OMP_NUM_THREADS=1 ctest --output-on-failure -j"$(nproc)" --timeout 1500
