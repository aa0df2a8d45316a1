#!/usr/bin/env bash
# octet vs ONNX Runtime (CPU) on the shared models, batch 1, at 1 and 2 threads: the three classic CNNs and
# the two modern classifiers (MobileNet v3 small, ViT tiny).
#
# Installs onnxruntime-node into $build/ort (npm install --ignore-scripts: the CPU binaries ship inside the
# package under bin/napi-v6/linux/x64; its postinstall only downloads the CUDA/TensorRT providers), builds
# octet, converts each model to FP32 and INT8 (calibrated on the shared images) and exports the INT8 graph
# as QDQ ONNX, so ONNX Runtime runs octet's own quantization. ORT FP32 runs the source ONNX model.
# ORT INT8 is timed twice: the exact QDQ export (octet's values; ORT runs Convs with a fused residual Add or
# LeakyRelu in float), and the integer-op export (those Convs requantized first, so ORT runs QLinearConv +
# QLinearAdd/QLinearLeakyRelu: ORT's fastest INT8 form of the graph, for speed only). The ratio column uses
# the faster of the two.
# Then the shared models that come quantized (QDQ, QAT, QOperator) run as given: octet's import of the file vs
# ONNX Runtime on the same file, and vs octet's own INT8 of the same network where the shared set has its FP32.
# Every benchmark runs alone, one after another: oneDNN's and ORT's threads spin, so two at once would
# measure each other. The benchmarks of one row run in ROUNDS interleaved rounds (A B C A B C ...) and the table
# gives the median of each one's p50s, so a slow spell of the machine falls on every column of the row alike.
# Prints one markdown table and, under it, the kernels ORT ran for each QDQ model (QLinearConv is integer;
# Conv/FusedConv are float).
#
# Environment: OCTET_SHARED, OCTET_BUILD (default build/), WARMUP (10), ITERS (50), ROUNDS (3).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
shared=${OCTET_SHARED:-$root/../shared}
build=${OCTET_BUILD:-$root/build}
warmup=${WARMUP:-10}
iters=${ITERS:-50}
rounds=${ROUNDS:-3}
work=$build/compare

# --- ONNX Runtime for Node.js ---
source "$root/converters/tools/compare/ort_setup.sh"

# --- octet: build, convert, export (output shown only on failure) ---
mkdir -p "$work"
quietly() { "$@" >"$work/step.log" 2>&1 || { cat "$work/step.log" >&2; echo "failed: $*" >&2; exit 1; }; }
quietly bash "$root/.ci/install-deps.sh"
quietly cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
quietly cmake --build "$build" -j"$(nproc)" --target octet-convert benchmark
models=(resnet50 mobilenet_v1_025 darknet_tiny mobilenet_v3_small vit_tiny)
declare -A preset=([resnet50]=torchvision [mobilenet_v1_025]=tf [darknet_tiny]=unit [mobilenet_v3_small]=torchvision [vit_tiny]=torchvision)
for model in "${models[@]}"; do
  onnx=$shared/models/$model/model.onnx
  quietly "$build/converters/octet-convert" "$onnx" -o "$work/${model}_fp32" --preset "${preset[$model]}"
  quietly "$build/converters/octet-convert" "$onnx" -o "$work/${model}_int8" --preset "${preset[$model]}" \
    --calibrate "$shared/data/imagenet-samples" --export-qdq "$work/${model}_int8.qdq.onnx" \
    --export-qdq-integer "$work/${model}_int8.qdq-integer.onnx"
done

# --- benchmarks, strictly one at a time ---
octet_p50() { "$build/samples/benchmark" "$1" --threads "$2" --warmup "$warmup" --iters "$iters" --json - | json_field p50_ms; }
ort_json() { node "$root/converters/tools/compare/ort_bench.js" "$1" --threads "$2" --warmup "$warmup" --iters "$iters" "${@:3}"; }
json_field() { node -e "const r = JSON.parse(require('fs').readFileSync(0, 'utf8')); console.log(JSON.stringify(r['$1']))"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

vnni=$(grep -q avx512_vnni /proc/cpuinfo && echo yes || echo no)
echo "$(lscpu | grep 'Model name' | sed 's/  */ /g'); $(nproc) cores; AVX-512 VNNI: $vnni; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "batch 1, median over $rounds interleaved rounds of the p50 of $iters timed runs after $warmup warm-up runs; octet $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "(no git)"), onnxruntime-node $ort_version"
echo
echo "| model | threads | octet FP32 ms | octet INT8 ms | ORT FP32 ms | ORT INT8 exact QDQ ms | ORT INT8 integer-op QDQ ms | octet INT8 speedup over octet FP32 | ORT INT8 (faster of the two) / octet INT8 |"
echo "|---|---|---|---|---|---|---|---|---|"
declare -A ort_ops ort_ops_integer
for model in "${models[@]}"; do
  for threads in 1 2; do
    of=() oi=() rf=() ri=() rq=()
    for round in $(seq "$rounds"); do
      of+=("$(octet_p50 "$work/${model}_fp32" "$threads")")
      oi+=("$(octet_p50 "$work/${model}_int8" "$threads")")
      rf+=("$(ort_json "$shared/models/$model/model.onnx" "$threads" | json_field p50_ms)")
      ops=()
      [ "$threads" = 1 ] && [ "$round" = 1 ] && ops=(--ops)
      qdq=$(ort_json "$work/${model}_int8.qdq.onnx" "$threads" "${ops[@]}")
      qdq_integer=$(ort_json "$work/${model}_int8.qdq-integer.onnx" "$threads" "${ops[@]}")
      if [ ${#ops[@]} -gt 0 ]; then
        ort_ops[$model]=$(json_field ops <<<"$qdq")
        ort_ops_integer[$model]=$(json_field ops <<<"$qdq_integer")
      fi
      ri+=("$(json_field p50_ms <<<"$qdq")")
      rq+=("$(json_field p50_ms <<<"$qdq_integer")")
    done
    octet_fp32=$(median "${of[@]}") octet_int8=$(median "${oi[@]}") ort_fp32=$(median "${rf[@]}")
    ort_int8=$(median "${ri[@]}") ort_int8_integer=$(median "${rq[@]}")
    awk -v m="$model" -v t="$threads" -v of="$octet_fp32" -v oi="$octet_int8" -v rf="$ort_fp32" -v ri="$ort_int8" \
      -v rq="$ort_int8_integer" 'BEGIN { best = ri < rq ? ri : rq
        printf "| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2fx | %.2fx |\n", m, t, of, oi, rf, ri, rq, of / oi, best / oi }'
  done
done
echo
echo "Kernels ONNX Runtime ran for each QDQ model (one run; exact, then integer-op):"
for model in "${models[@]}"; do
  echo "  $model exact:      ${ort_ops[$model]}"
  echo "  $model integer-op: ${ort_ops_integer[$model]}"
done

# --- models quantized elsewhere (QDQ / QOperator): octet runs the file's own integers, ORT the same file ---
quantized_models=(darknet_tiny_qdq mobilenet_v1_025_qdq mobilenet_v2_qat mobilenet_v2_int8_qop)
declare -A ptq_of=([darknet_tiny_qdq]=darknet_tiny [mobilenet_v1_025_qdq]=mobilenet_v1_025)
for model in "${quantized_models[@]}"; do
  quietly "$build/converters/octet-convert" "$shared/models/$model/model.onnx" -o "$work/${model}_imported"
done
echo
echo "Quantized ONNX models as given (no calibration): octet's import vs ONNX Runtime on the same file, and vs octet's own INT8 (PTQ above) of the same network"
echo
echo "| model | threads | octet imported ms | ORT same file ms | octet / ORT | octet PTQ INT8 ms | imported / PTQ |"
echo "|---|---|---|---|---|---|---|"
for model in "${quantized_models[@]}"; do
  for threads in 1 2; do
    im=() rt=() pt=()
    for round in $(seq "$rounds"); do
      im+=("$(octet_p50 "$work/${model}_imported" "$threads")")
      rt+=("$(ort_json "$shared/models/$model/model.onnx" "$threads" | json_field p50_ms)")
      [ -n "${ptq_of[$model]:-}" ] && pt+=("$(octet_p50 "$work/${ptq_of[$model]}_int8" "$threads")")
    done
    imported=$(median "${im[@]}") ort=$(median "${rt[@]}") ptq=0
    [ -n "${ptq_of[$model]:-}" ] && ptq=$(median "${pt[@]}")
    awk -v m="$model" -v t="$threads" -v i="$imported" -v r="$ort" -v p="$ptq" 'BEGIN {
        if (p > 0) printf "| %s | %d | %.2f | %.2f | %.2fx | %.2f | %.2fx |\n", m, t, i, r, i / r, p, i / p
        else printf "| %s | %d | %.2f | %.2f | %.2fx | - | - |\n", m, t, i, r, i / r }'
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
