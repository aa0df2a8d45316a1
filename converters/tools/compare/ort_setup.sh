# Sourced by the comparison scripts: onnxruntime-node $ort_version in $build/ort (npm install
# --ignore-scripts: the CPU binaries ship inside the package under bin/napi-v6/linux/x64; its postinstall only
# downloads the CUDA/TensorRT providers), reinstalled only when missing or another version; exports NODE_PATH.
# Needs $build.
ort_version=1.30.0
ort_dir=$build/ort
if ! command -v npm >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
export NODE_PATH=$ort_dir/node_modules
if [ "$(node -p "require('onnxruntime-node/package.json').version" 2>/dev/null)" != "$ort_version" ]; then
  mkdir -p "$ort_dir"
  (cd "$ort_dir" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error "onnxruntime-node@$ort_version" >/dev/null)
fi
node -e "require('onnxruntime-node')" || { echo "onnxruntime-node does not load from $ort_dir" >&2; exit 1; }
