#!/usr/bin/env bash
# The main job: install, build, convert the shared models to FP32 and INT8 (calibrated on every 10th shared
# image), classify an image with each, and measure per-sample latency at 1 and 2 threads.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${OCTET_SHARED:-$root/../shared}
build=${OCTET_BUILD:-$root/build}
images=$shared/data/imagenet-samples
bash "$root/.ci/install-deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target octet-convert classify benchmark
models=$build/models
mkdir -p "$models"
# Darknet-tiny's classes are in its own order and its label file holds bare wnids: give them names.
awk 'NR==FNR {name[$1]=$0; next} {print name[$1]}' "$shared/data/synset_words.txt" \
  "$shared/models/darknet_tiny/labels_wnid.txt" > "$models/darknet_tiny_labels.txt"
convert() {  # name preset labels
  "$build/converters/octet-convert" "$shared/models/$1/model.onnx" -o "$models/$1_fp32" --preset "$2" --labels "$3"
  "$build/converters/octet-convert" "$shared/models/$1/model.onnx" -o "$models/$1_int8" --preset "$2" --labels "$3" \
    --calibrate "$images" --calib-count 100
}
convert resnet50 torchvision "$shared/data/synset_words.txt"
convert mobilenet_v1_025 tf "$shared/data/synset_words.txt"
convert darknet_tiny unit "$models/darknet_tiny_labels.txt"
for model in resnet50 mobilenet_v1_025 darknet_tiny; do
  for variant in fp32 int8; do
    echo "== $model $variant"
    "$build/samples/classify" "$models/${model}_$variant" "$images/n01443537_goldfish.JPEG"
  done
done
echo "== latency (batch 1, per sample)"
for model in resnet50 mobilenet_v1_025 darknet_tiny; do
  for threads in 1 2; do
    for variant in fp32 int8; do
      "$build/samples/benchmark" "$models/${model}_$variant" --threads "$threads" --warmup 5 --iters 30
    done
  done
done
