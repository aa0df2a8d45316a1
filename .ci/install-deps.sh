#!/usr/bin/env bash
# Installs the Debian 12 packages octet builds and tests with. Idempotent and non-interactive:
# packages already present are skipped, so a second run costs one dpkg query.
set -euo pipefail
packages=(
  cmake g++ make pkg-config
  libdnnl-dev ocl-icd-opencl-dev nlohmann-json3-dev libstb-dev libjpeg62-turbo-dev doctest-dev
  libonnx-dev libprotobuf-dev protobuf-compiler libcli11-dev
  libonnx-testdata
  clang-14 libclang-rt-14-dev   # the fuzzing stage of tests/run_all.sh: clang with libFuzzer and ASan
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
