#!/usr/bin/env bash
# The main job: install, build, convert the shared models, classify an image with each, measure latency.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${OCTET_SHARED:-$root/../shared}
build=${OCTET_BUILD:-$root/build}
bash "$root/.ci/install-deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target octet-convert benchmark
mkdir -p "$build/models"
for model in resnet50 mobilenet_v1_025 darknet_tiny; do
  "$build/converters/octet-convert" "$shared/models/$model/model.onnx" -o "$build/models/$model"
done
for model in resnet50 mobilenet_v1_025 darknet_tiny; do
  for threads in 1 2; do
    "$build/samples/benchmark" "$build/models/$model" --threads "$threads" --warmup 5 --iters 30
  done
done
