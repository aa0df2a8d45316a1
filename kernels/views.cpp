// Zero-copy views (kernel.h, plan_views): which Reshape, Transpose and Slice outputs are their input's buffer
// seen through other strides. ViT's attention is mostly such steps (per encoder layer three Slice -> Reshape
// -> Transpose chains, and Reshapes and Transposes moving size-1 dims around the projections); as views they
// cost nothing, or one strided copy per chain.
#include <algorithm>

#include "graph/ops.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

// Strides that let `out_dims` read `in`'s elements in row-major order without a copy, or false. The non-unit
// dims of both shapes are walked in groups of equal element count; each group of input dims must step as one
// dim (the innermost stepping exactly over the next), which the output dims of the group then split.
bool reshape_strides(const TensorDesc& in, const Shape& out_dims, Strides& out) {
  std::vector<size_t> a, b;  // non-unit dims of each side
  for (size_t d = 0; d < in.dims.size(); ++d)
    if (in.dims[d] != 1) a.push_back(d);
  for (size_t d = 0; d < out_dims.size(); ++d)
    if (out_dims[d] != 1) b.push_back(d);
  out.assign(out_dims.size(), 0);
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    size_t i_end = i + 1, j_end = j + 1;
    int64_t pa = in.dims[a[i]], pb = out_dims[b[j]];
    while (pa != pb) {
      if (pa < pb) {
        if (i_end == a.size()) return false;
        pa *= in.dims[a[i_end++]];
      } else {
        if (j_end == b.size()) return false;
        pb *= out_dims[b[j_end++]];
      }
    }
    for (size_t k = i; k + 1 < i_end; ++k)
      if (in.strides[a[k]] != in.strides[a[k + 1]] * in.dims[a[k + 1]]) return false;
    int64_t stride = in.strides[a[i_end - 1]];
    for (size_t k = j_end; k-- > j;) {
      out[b[k]] = stride;
      stride *= out_dims[b[k]];
    }
    i = i_end;
    j = j_end;
  }
  return i == a.size() && j == b.size();
}

// Size-1 dims never move an offset: give them the stride a dense layout would, as kernels checking for
// evenly strided rows expect.
void tidy_unit_strides(const Shape& dims, Strides& strides) {
  for (size_t d = dims.size(); d-- > 0;)
    if (dims[d] == 1) strides[d] = d + 1 < dims.size() ? strides[d + 1] * dims[d + 1] : 1;
}

// The view `node` makes of its input, if it can: strides and offset over the input's buffer.
bool view_of(const Node& node, const TensorDesc& in, const TensorDesc& out, Strides& strides, int64_t& offset) {
  const OpSchema* schema = find_op_schema(node.op);
  const std::string family = schema ? schema->kernel_family : "";
  offset = 0;
  if (family == "copy") return reshape_strides(in, out.dims, strides);
  if (family == "transpose") {
    std::vector<int64_t> perm = node.attrs.get_ints("perm");
    if (perm.empty())
      for (size_t d = in.dims.size(); d-- > 0;) perm.push_back(static_cast<int64_t>(d));
    if (perm.size() != out.dims.size()) return false;
    strides.resize(perm.size());
    for (size_t d = 0; d < perm.size(); ++d) strides[d] = in.strides.at(static_cast<size_t>(perm[d]));
    return true;
  }
  if (family == "slice" && node.op == "Slice") {
    const SliceWindow w = slice_windows(node, in.dims, {out.dims}).at(0);
    strides.resize(in.dims.size());
    for (size_t d = 0; d < in.dims.size(); ++d) {
      if (w.step[d] < 0) return false;  // oneDNN memory descriptors take no negative strides
      offset += w.start[d] * in.strides[d];
      strides[d] = w.step[d] * in.strides[d];
    }
    return true;
  }
  return false;
}

// Whether two layouts of the same dims place every element at the same offset (size-1 dims aside).
bool same_layout(const Shape& dims, const Strides& a, const Strides& b) {
  for (size_t d = 0; d < dims.size(); ++d)
    if (dims[d] != 1 && a[d] != b[d]) return false;
  return true;
}

}  // namespace

std::map<std::string, ViewOf> plan_views(const Graph& graph, std::map<std::string, TensorDesc>& descs) {
  std::map<std::string, std::vector<const Node*>> readers;
  for (const Node& node : graph.nodes)
    for (const std::string& in : node.inputs)
      if (!in.empty()) readers[in].push_back(&node);
  std::map<std::string, ViewOf> views;
  for (const Node& node : graph.nodes) {  // topological: an input's view is settled before its readers'
    if (node.inputs.empty() || node.outputs.size() != 1) continue;
    const std::string &in = node.inputs[0], &out = node.outputs[0];
    if (in.empty() || graph.is_constant(in) || !descs.count(in) || !descs.count(out)) continue;
    if (std::find(graph.outputs.begin(), graph.outputs.end(), out) != graph.outputs.end()) continue;
    const TensorDesc &src = descs.at(in), &planned = descs.at(out);
    if (src.dtype != planned.dtype || planned.elements() == 0) continue;
    Strides strides;
    int64_t offset = 0;
    if (!view_of(node, src, planned, strides, offset)) continue;
    tidy_unit_strides(planned.dims, strides);
    ViewOf view{in, offset};
    auto base = views.find(in);
    if (base != views.end()) view = {base->second.base, base->second.offset + offset};
    // Readers planned for `planned` accept the view when it is that layout at a 64-byte aligned address
    // (some kernels load aligned vectors); any layout suits readers that read any strides.
    bool fits_plan = same_layout(planned.dims, strides, planned.strides) &&
                     (view.offset * static_cast<int64_t>(dtype_size(src.dtype))) % 64 == 0;
    bool readers_take_any = !readers[out].empty();
    for (const Node* r : readers[out]) readers_take_any = readers_take_any && reads_any_strides(r->op);
    if (!fits_plan && !readers_take_any) continue;
    views[out] = view;
    descs[out].strides = strides;
  }
  return views;
}

}  // namespace octet::kernels
