#!/usr/bin/env bash
# Top-1 of octet and of ONNX Runtime (CPU) on the same file and the very same preprocessed inputs: the shared
# models that come quantized (QDQ, QAT, QOperator), imported as given, on the held-out shared images (all but
# every 10th from the first: 900).
#
# For each model: octet-convert imports the file (no calibration) with the model's preprocessing and class
# order; same-inputs runs octet over the images and writes each preprocessed input tensor and octet's
# logits; ort_accuracy.js runs ONNX Runtime on those tensors. So the comparison measures the two runtimes,
# not two image pipelines. Prints one markdown table: Top-1 of each (mobilenet_v2_qat has random weights, so
# only its agreement and SQNR mean anything), their difference, Top-1 agreement and the logit SQNR of octet
# against ORT over all images; then, per model, the images whose top-1 differs.
# FLOAT64=1 adds a second table: the QDQ models' arithmetic evaluated in float64 by onnx_float64.py (numpy,
# about 0.3 s per image), i.e. what each runtime's rounding should give, against which both are measured.
#
# Environment: OCTET_SHARED, OCTET_BUILD (default build/), THREADS (octet and ORT, default 1), FLOAT64 (0),
# MODELS (default: the four, space-separated).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
shared=${OCTET_SHARED:-$root/../shared}
build=${OCTET_BUILD:-$root/build}
threads=${THREADS:-1}
float64=${FLOAT64:-0}
work=$build/compare-accuracy

read -r -a models <<<"${MODELS:-darknet_tiny_qdq mobilenet_v1_025_qdq mobilenet_v2_int8_qop mobilenet_v2_qat}"
declare -A preset=([darknet_tiny_qdq]=unit [mobilenet_v1_025_qdq]=tf [mobilenet_v2_int8_qop]=torchvision
  [mobilenet_v2_qat]=torchvision)
declare -A labels=([darknet_tiny_qdq]=$work/darknet_tiny_labels.txt)
for model in "${models[@]}"; do
  [ -n "${preset[$model]:-}" ] || { echo "MODELS: '$model' is not one of: ${!preset[*]}" >&2; exit 2; }
done

source "$root/converters/tools/compare/ort_setup.sh"

mkdir -p "$work"
quietly() { "$@" >"$work/step.log" 2>&1 || { cat "$work/step.log" >&2; echo "failed: $*" >&2; exit 1; }; }
quietly bash "$root/.ci/install-deps.sh"
quietly cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
quietly cmake --build "$build" -j"$(nproc)" --target octet-convert same-inputs

# FLOAT64: Debian's python3 with python3-onnx (which brings numpy); called by path, since a python3 of another
# installation (pyenv, a virtualenv) earlier on PATH need not have them.
if [ "$float64" = 1 ] && ! dpkg-query -W -f='${Status}' python3-onnx 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-onnx
fi

# Darknet-tiny's classes are in its own order and its label file holds bare wnids: give them names.
awk 'NR==FNR {name[$1]=$0; next} {print name[$1]}' "$shared/data/synset_words.txt" \
  "$shared/models/darknet_tiny/labels_wnid.txt" > "$work/darknet_tiny_labels.txt"

echo "octet $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "(no git)"), onnxruntime-node $ort_version, $threads thread(s); images: $shared/data/imagenet-samples without every 10th"
echo
echo "| model | images | octet Top-1 % | ORT Top-1 % | octet - ORT (points) | Top-1 agreement % | logit SQNR vs ORT dB |"
echo "|---|---|---|---|---|---|---|"
declare -A differ float64_result
for model in "${models[@]}"; do
  onnx=$shared/models/$model/model.onnx
  quietly "$build/converters/octet-convert" "$onnx" -o "$work/$model" --preset "${preset[$model]}" \
    --labels "${labels[$model]:-$shared/data/synset_words.txt}"
  quietly "$build/converters/same-inputs" "$work/$model" --images "$shared/data/imagenet-samples" --skip-calibration \
    --labels-from wnid --threads "$threads" --out "$work/$model"
  result=$(node "$root/converters/tools/compare/ort_accuracy.js" "$onnx" "$work/$model" --threads "$threads")
  if [ "$float64" = 1 ] && [ "$model" != mobilenet_v2_int8_qop ]; then  # QOperator ops: not in onnx_float64.py
    float64_result[$model]=$(OPENBLAS_NUM_THREADS=1 /usr/bin/python3 "$root/converters/tools/compare/onnx_float64.py" \
      "$onnx" "$work/$model" 2>"$work/step.log") || { cat "$work/step.log" >&2; exit 1; }
  fi
  rm -f "$work/$model.inputs"  # 540 MB of tensors, needed only by the runs above
  node -e "const r = JSON.parse(process.argv[1]);
    console.log('| $model | ' + r.images + ' | ' + r.octet_top1_pct.toFixed(2) + ' | ' + r.ort_top1_pct.toFixed(2) + ' | ' +
      (r.octet_top1_pct - r.ort_top1_pct).toFixed(2) + ' | ' + r.agreement_pct.toFixed(2) + ' | ' + r.sqnr_db + ' |')" "$result"
  differ[$model]=$(node -e "const r = JSON.parse(process.argv[1]);
    console.log(r.differ.map(d => require('path').basename(d.image) + ' (label ' + d.label + ': octet ' + d.octet + ', ORT ' + d.ort + ')').join('; ') || 'none')" "$result")
done
echo
echo "Images whose top-1 differs:"
for model in "${models[@]}"; do echo "  $model: ${differ[$model]}"; done
if [ "$float64" = 1 ]; then
  echo
  echo "The QDQ models' arithmetic in float64 (onnx_float64.py) against both runtimes:"
  echo
  echo "| model | float64 Top-1 % | octet Top-1 % | ORT Top-1 % | octet / float64 agreement % | ORT / float64 agreement % | octet SQNR vs float64 dB | ORT SQNR vs float64 dB |"
  echo "|---|---|---|---|---|---|---|---|"
  for model in "${models[@]}"; do
    [ -n "${float64_result[$model]:-}" ] || continue
    node -e "const r = JSON.parse(process.argv[1]);
      console.log('| $model | ' + [r.float64_top1_pct, r.octet_top1_pct, r.ort_top1_pct, r.float64_octet_agreement_pct,
        r.float64_ort_agreement_pct, r.octet_sqnr_vs_float64_db, r.ort_sqnr_vs_float64_db].join(' | ') + ' |')" \
      "${float64_result[$model]}"
  done
fi
