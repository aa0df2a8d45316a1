#!/usr/bin/env bash
# The dependency flow of docs/ARCHITECTURE.md, checked on the includes: each folder may include only the
# layers below it. Prints every include that runs against the flow and fails if there is one.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
bad=0
# folder : include prefixes it must not use
rules=(
  "graph:kernels/ runtime/ converters/ tests/"
  "kernels:runtime/ converters/ tests/"
  "runtime:converters/ tests/"
  "converters/onnx:converters/quant/ converters/analysis/ converters/tools/ tests/"
  "converters/quant:converters/analysis/ converters/tools/ tests/"
  "converters/analysis:converters/tools/ tests/"
  "converters/tools:tests/"
  "samples:graph/ kernels/ runtime/ converters/ tests/"
)
for rule in "${rules[@]}"; do
  folder=${rule%%:*}
  for prefix in ${rule#*:}; do
    while IFS= read -r hit; do
      echo "against the flow: $hit"
      bad=1
    done < <(grep -rn --include='*.cpp' --include='*.h' "#include \"$prefix" "$folder" || true)
  done
done
[ "$bad" -eq 0 ] && echo "layering: every include follows the flow"
exit "$bad"
