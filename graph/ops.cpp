#include "graph/ops.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "graph/fused_activation.h"

namespace octet {
namespace {

[[noreturn]] void fail(const Node& node, const std::string& what) { throw Error(node_label(node) + ": " + what); }

void require_rank_at_least(const Node& node, const TensorInfo& t, size_t rank, const char* which) {
  if (t.shape.size() < rank)
    fail(node, std::string(which) + " has shape " + shape_str(t.shape) + ", needs rank >= " + std::to_string(rank));
}

TensorInfo like(const TensorInfo& t, Shape shape) {
  TensorInfo out;
  out.dtype = t.dtype;
  out.shape = std::move(shape);
  return out;
}

void infer_same(const Node&, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  out = {like(in[0], in[0].shape)};
}

// Quantize: f32 -> u8/s8 with the output tensor's parameters; Dequantize: u8/s8 -> f32 with the input's.
void infer_quantize(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  if (in[0].dtype != DType::f32)
    fail(node, std::string("input is ") + dtype_name(in[0].dtype) + ", Quantize reads f32");
  out = {like(in[0], in[0].shape)};
  out[0].dtype = DType::u8;  // the stored output TensorInfo (u8 or s8, with its scale) overrides this
}

void infer_dequantize(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  if (in[0].dtype != DType::u8 && in[0].dtype != DType::s8)
    fail(node, std::string("input is ") + dtype_name(in[0].dtype) + ", Dequantize reads u8 or s8");
  out = {like(in[0], in[0].shape)};
  out[0].dtype = DType::f32;
}

// Clip's bounds: min > max or NaN is refused here, in the model's words, rather than by oneDNN's primitive
// creation in its own (a fused clip is checked by read_fused_activation).
void infer_clip(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  const float low = node.attrs.get_float("min", -INFINITY), high = node.attrs.get_float("max", INFINITY);
  if (!(low <= high))
    fail(node, "clip bounds min=" + std::to_string(low) + " and max=" + std::to_string(high) +
                   " are not an interval (min must be <= max)");
  out = {like(in[0], in[0].shape)};
}

// Conv and Gemm compute in f32, or u8/s8 x s8 when quantized; other dtypes (an int64 weight initializer)
// are refused at conversion and load rather than at Session creation.
void check_linear_dtypes(const Node& node, const TensorInfo& data, const TensorInfo& weights, const char* weight_name) {
  if (data.dtype != DType::f32 && data.dtype != DType::u8 && data.dtype != DType::s8)
    fail(node,
         std::string("input is ") + dtype_name(data.dtype) + "; " + node.op + " reads f32 (or u8/s8 when quantized)");
  if (weights.dtype != DType::f32 && weights.dtype != DType::s8)
    fail(node, std::string(weight_name) + " is " + dtype_name(weights.dtype) + "; " + node.op +
                   " takes f32 weights (s8 when quantized)");
}

void infer_conv(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  const Shape& x = in[0].shape;
  const Shape& w = in[1].shape;
  require_rank_at_least(node, in[0], 3, "input X");
  if (shape_elements(x) == 0) fail(node, "input X " + shape_str(x) + " is empty");
  if (w.size() != x.size())
    fail(node, "weights W " + shape_str(w) + " and input X " + shape_str(x) + " differ in rank");
  if (shape_elements(w) == 0)
    fail(node, "weights W " + shape_str(w) +
                   " are empty; a Conv needs at least one output channel, input channel and kernel element");
  check_linear_dtypes(node, in[0], in[1], "weights W");
  int64_t group = node.attrs.get_int("group", 1);
  if (group < 1 || x[1] % group != 0)
    fail(node, "attribute group=" + std::to_string(group) + " does not divide input channels " + std::to_string(x[1]));
  if (w[1] * group != x[1])
    fail(node, "weights W " + shape_str(w) + " expect " + std::to_string(w[1] * group) + " input channels, X has " +
                   std::to_string(x[1]));
  if (w[0] % group != 0) fail(node, "output channels " + std::to_string(w[0]) + " not divisible by group");
  if (in.size() > 2 && !in[2].shape.empty() && shape_elements(in[2].shape) != w[0])
    fail(node, "bias B " + shape_str(in[2].shape) + " does not match " + std::to_string(w[0]) + " output channels");
  read_fused_activation(node, "act");  // validates the fused activations once, for every later reader
  read_fused_activation(node, "sum_act");
  WindowGeometry g = window_geometry(node, x, Shape(w.begin() + 2, w.end()));
  Shape y = {x[0], w[0]};
  y.insert(y.end(), g.output.begin(), g.output.end());
  if (in.size() > 3 && !in[3].shape.empty() && in[3].shape != y)
    fail(node, "fused sum input " + shape_str(in[3].shape) + " does not match output " + shape_str(y));
  out = {like(in[0], y)};
}

void infer_pool(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  require_rank_at_least(node, in[0], 3, "input X");
  std::vector<int64_t> kernel = node.attrs.get_ints("kernel_shape");
  if (kernel.size() != in[0].shape.size() - 2)
    fail(node,
         "attribute kernel_shape has " + std::to_string(kernel.size()) + " values for input " + shape_str(in[0].shape));
  WindowGeometry g = window_geometry(node, in[0].shape, kernel);
  Shape y = {in[0].shape[0], in[0].shape[1]};
  y.insert(y.end(), g.output.begin(), g.output.end());
  out = {like(in[0], y)};
}

void infer_global_pool(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  require_rank_at_least(node, in[0], 3, "input X");
  Shape y = in[0].shape;
  std::fill(y.begin() + 2, y.end(), 1);
  out = {like(in[0], y)};
}

void infer_gemm(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  if (in[0].shape.size() != 2 || in[1].shape.size() != 2)
    fail(node, "Gemm needs 2-D A and B, got " + shape_str(in[0].shape) + " and " + shape_str(in[1].shape));
  bool ta = node.attrs.get_int("transA", 0) != 0, tb = node.attrs.get_int("transB", 0) != 0;
  int64_t m = ta ? in[0].shape[1] : in[0].shape[0];
  int64_t k = ta ? in[0].shape[0] : in[0].shape[1];
  int64_t kb = tb ? in[1].shape[1] : in[1].shape[0];
  int64_t n = tb ? in[1].shape[0] : in[1].shape[1];
  if (k != kb) fail(node, "inner dimensions differ: A " + shape_str(in[0].shape) + ", B " + shape_str(in[1].shape));
  check_linear_dtypes(node, in[0], in[1], "B");
  if (m == 0) fail(node, "A " + shape_str(in[0].shape) + " is empty (0 rows)");
  if (k == 0 || n == 0)
    fail(node, "B " + shape_str(in[1].shape) + " is empty (" + std::to_string(n) + " outputs of " + std::to_string(k) +
                   " inputs); a Gemm needs at least one of each");
  Shape y = {m, n};
  if (in.size() > 2 && !in[2].shape.empty()) {
    Shape c = broadcast_shapes(node, y, in[2].shape);
    if (c != y) fail(node, "C " + shape_str(in[2].shape) + " does not broadcast to " + shape_str(y));
  }
  out = {like(in[0], y)};
}

void infer_matmul(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  Shape a = in[0].shape, b = in[1].shape;
  if (a.empty() || b.empty()) fail(node, "MatMul inputs must have rank >= 1");
  bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  if (a.back() != b[b.size() - 2])
    fail(node, "inner dimensions differ: A " + shape_str(in[0].shape) + ", B " + shape_str(in[1].shape));
  if (shape_elements(a) == 0 || shape_elements(b) == 0)  // oneDNN's matmul divides by these sizes (SIGFPE)
    fail(node, "A " + shape_str(in[0].shape) + " or B " + shape_str(in[1].shape) +
                   " is empty; MatMul needs elements in both");
  Shape batch = broadcast_shapes(node, Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2));
  Shape y = batch;
  if (!a1) y.push_back(a[a.size() - 2]);
  if (!b1) y.push_back(b.back());
  if (in.size() > 2 && !in[2].shape.empty() &&
      (b1 || shape_elements(in[2].shape) != b.back() || in[2].shape.back() != b.back()))
    fail(node, "bias " + shape_str(in[2].shape) + " is not one value per output column of " + shape_str(in[1].shape));
  out = {like(in[0], y)};
}

void infer_batchnorm(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  require_rank_at_least(node, in[0], 2, "input X");
  for (size_t i = 1; i < 5; ++i)
    if (shape_elements(in[i].shape) != in[0].shape[1])
      fail(node, "input " + std::to_string(i) + " " + shape_str(in[i].shape) + " does not have " +
                     std::to_string(in[0].shape[1]) + " channels");
  out = {like(in[0], in[0].shape)};
}

void infer_binary(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  if (in[0].dtype != in[1].dtype) fail(node, "inputs differ in dtype");
  out = {like(in[0], broadcast_shapes(node, in[0].shape, in[1].shape))};
}

void infer_flatten(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  const Shape& x = in[0].shape;
  int64_t rank = static_cast<int64_t>(x.size());
  int64_t axis = node.attrs.get_int("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis > rank)
    fail(node, "attribute axis=" + std::to_string(node.attrs.get_int("axis", 1)) + " out of range for " + shape_str(x));
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < rank; ++i) (i < axis ? outer : inner) *= x[i];
  out = {like(in[0], {outer, inner})};
}

void infer_reshape(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  const Shape& x = in[0].shape;
  std::vector<int64_t> target = node.attrs.get_ints("shape");
  bool allowzero = node.attrs.get_int("allowzero", 0) != 0;
  int64_t known = 1, infer_at = -1;
  Shape y(target.size());
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t d = target[i];
    if (d == 0 && !allowzero) {
      if (i >= x.size())
        fail(node, "shape[" + std::to_string(i) + "]=0 copies a dimension the input " + shape_str(x) + " lacks");
      d = x[i];
    }
    if (d == -1) {
      if (infer_at >= 0) fail(node, "attribute shape has more than one -1");
      infer_at = static_cast<int64_t>(i);
      continue;
    }
    if (d < 0) fail(node, "attribute shape has invalid value " + std::to_string(d));
    y[i] = d;
    known *= d;
  }
  int64_t total = shape_elements(x);
  if (infer_at >= 0) {
    if (known == 0 || total % known != 0) fail(node, "cannot reshape " + shape_str(x) + " to " + shape_str(target));
    y[infer_at] = total / known;
  } else if (known != total) {
    fail(node, "cannot reshape " + shape_str(x) + " (" + std::to_string(total) + " elements) to " + shape_str(y));
  }
  out = {like(in[0], y)};
}

void infer_concat(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  Shape y = in[0].shape;
  int64_t axis = normalize_axis(node, node.attrs.get_int("axis", 0), static_cast<int64_t>(y.size()));
  y[axis] = 0;
  for (const TensorInfo& t : in) {
    if (t.shape.size() != y.size() || t.dtype != in[0].dtype) fail(node, "inputs differ in rank or dtype");
    for (size_t d = 0; d < y.size(); ++d)
      if (static_cast<int64_t>(d) != axis && t.shape[d] != in[0].shape[d])
        fail(node, "input " + shape_str(t.shape) + " does not match " + shape_str(in[0].shape) + " outside axis " +
                       std::to_string(axis));
    y[axis] += t.shape[axis];
  }
  out = {like(in[0], y)};
}

void infer_softmax(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  normalize_axis(node, node.attrs.get_int("axis", -1), static_cast<int64_t>(in[0].shape.size()));
  out = {like(in[0], in[0].shape)};
}

// LayerNormalization: normalizes over dims [axis, rank); scale (and bias) have those dims' shape or broadcast to it.
// The optional outputs Mean and InvStdDev have x's shape with those dims 1.
void infer_layer_norm(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  int64_t rank = static_cast<int64_t>(in[0].shape.size());
  int64_t axis = normalize_axis(node, node.attrs.get_int("axis", -1), rank);
  int64_t normalized = 1;
  for (int64_t d = axis; d < rank; ++d) normalized *= in[0].shape[d] < 0 ? 1 : in[0].shape[d];
  for (size_t i = 1; i < in.size(); ++i)
    if (!in[i].shape.empty() && in[0].shape[rank - 1] >= 0 && shape_elements(in[i].shape) != normalized)
      fail(node, std::string(i == 1 ? "scale" : "bias") + " " + shape_str(in[i].shape) + " does not have the " +
                     std::to_string(normalized) + " elements of the normalized dims of " + shape_str(in[0].shape));
  Shape statistics = in[0].shape;  // Mean and InvStdDev: one value per normalized line
  for (int64_t d = axis; d < rank; ++d) statistics[static_cast<size_t>(d)] = 1;
  out = {like(in[0], in[0].shape)};
  for (size_t o = 1; o < node.outputs.size(); ++o) out.push_back(like(in[0], statistics));
}

void infer_pad(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  const Shape& x = in[0].shape;
  std::vector<int64_t> pads = node.attrs.get_ints("pads");
  if (pads.size() != 2 * x.size())
    fail(node, "attribute pads has " + std::to_string(pads.size()) + " values for rank " + std::to_string(x.size()));
  std::string mode = node.attrs.get_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge")
    fail(node, "attribute mode='" + mode + "' is not constant, reflect or edge");
  Shape y = x;
  for (size_t i = 0; i < x.size(); ++i) {
    y[i] = x[i] + pads[i] + pads[i + x.size()];
    if (y[i] < 0) fail(node, "pads make dimension " + std::to_string(i) + " negative");
    if (mode == "reflect" && (pads[i] >= x[i] || pads[i + x.size()] >= x[i]))
      fail(node, "reflect pads must be smaller than the dimension");
  }
  out = {like(in[0], y)};
}

std::vector<int64_t> normalized_axes(const Node& node, const std::vector<int64_t>& axes, int64_t rank) {
  std::vector<int64_t> result;
  for (int64_t a : axes) result.push_back(normalize_axis(node, a, rank));
  std::sort(result.begin(), result.end());
  if (std::adjacent_find(result.begin(), result.end()) != result.end()) fail(node, "attribute axes repeats an axis");
  return result;
}

void infer_reduce_mean(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  const Shape& x = in[0].shape;
  int64_t rank = static_cast<int64_t>(x.size());
  std::vector<int64_t> axes = node.attrs.get_ints("axes");
  if (axes.empty()) {
    axes.resize(rank);
    std::iota(axes.begin(), axes.end(), 0);
  }
  axes = normalized_axes(node, axes, rank);
  bool keep = node.attrs.get_int("keepdims", 1) != 0;
  Shape y;
  for (int64_t i = 0; i < rank; ++i) {
    bool reduced = std::binary_search(axes.begin(), axes.end(), i);
    if (!reduced)
      y.push_back(x[i]);
    else if (keep)
      y.push_back(1);
  }
  out = {like(in[0], y)};
}

void infer_transpose(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  const Shape& x = in[0].shape;
  std::vector<int64_t> perm = node.attrs.get_ints("perm");
  if (perm.empty())
    for (int64_t i = static_cast<int64_t>(x.size()) - 1; i >= 0; --i) perm.push_back(i);
  if (perm.size() != x.size())
    fail(node, "attribute perm has " + std::to_string(perm.size()) + " values for rank " + std::to_string(x.size()));
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i)
    if (sorted[i] != static_cast<int64_t>(i)) fail(node, "attribute perm is not a permutation");
  Shape y;
  for (int64_t p : perm) y.push_back(x[p]);
  out = {like(in[0], y)};
}

void infer_slice(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  const Shape& x = in[0].shape;
  int64_t rank = static_cast<int64_t>(x.size());
  std::vector<int64_t> starts = node.attrs.get_ints("starts"), ends = node.attrs.get_ints("ends");
  std::vector<int64_t> axes = node.attrs.get_ints("axes"), steps = node.attrs.get_ints("steps");
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    fail(node, "attributes starts, ends, axes and steps differ in length");
  Shape y = x;
  for (size_t i = 0; i < starts.size(); ++i) {
    int64_t axis = normalize_axis(node, axes[i], rank), dim = x[axis], step = steps[i];
    if (step == 0) fail(node, "attribute steps has a 0");
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      y[axis] = e > s ? (e - s + step - 1) / step : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      y[axis] = s > e ? (s - e - step - 1) / (-step) : 0;
    }
  }
  out = {like(in[0], y)};
}

void infer_split(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  const Shape& x = in[0].shape;
  int64_t axis = normalize_axis(node, node.attrs.get_int("axis", 0), static_cast<int64_t>(x.size()));
  std::vector<int64_t> split = node.attrs.get_ints("split");
  size_t n = node.outputs.size();
  if (split.empty()) {
    if (x[axis] % static_cast<int64_t>(n) != 0)
      fail(node, "dimension " + std::to_string(x[axis]) + " does not split into " + std::to_string(n) + " equal parts");
    split.assign(n, x[axis] / static_cast<int64_t>(n));
  }
  if (split.size() != n)
    fail(node, "attribute split has " + std::to_string(split.size()) + " values for " + std::to_string(n) + " outputs");
  if (std::accumulate(split.begin(), split.end(), int64_t{0}) != x[axis])
    fail(node, "attribute split does not sum to the dimension");
  out.clear();
  for (int64_t s : split) {
    Shape y = x;
    y[axis] = s;
    out.push_back(like(in[0], y));
  }
}

void infer_squeeze(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  const Shape& x = in[0].shape;
  int64_t rank = static_cast<int64_t>(x.size());
  std::vector<int64_t> axes = node.attrs.get_ints("axes");
  if (axes.empty()) {
    for (int64_t i = 0; i < rank; ++i)
      if (x[i] == 1) axes.push_back(i);
  }
  axes = normalized_axes(node, axes, rank);
  Shape y;
  for (int64_t i = 0; i < rank; ++i) {
    if (std::binary_search(axes.begin(), axes.end(), i)) {
      if (x[i] != 1) fail(node, "cannot squeeze axis " + std::to_string(i) + " of size " + std::to_string(x[i]));
    } else {
      y.push_back(x[i]);
    }
  }
  out = {like(in[0], y)};
}

void infer_unsqueeze(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  const Shape& x = in[0].shape;
  std::vector<int64_t> axes = node.attrs.get_ints("axes");
  int64_t rank = static_cast<int64_t>(x.size() + axes.size());
  axes = normalized_axes(node, axes, rank);
  Shape y;
  size_t next = 0;
  for (int64_t i = 0; i < rank; ++i) {
    if (std::binary_search(axes.begin(), axes.end(), i))
      y.push_back(1);
    else
      y.push_back(x[next++]);
  }
  out = {like(in[0], y)};
}

void infer_gather(const Node& node, const std::vector<TensorInfo>& in, std::vector<TensorInfo>& out) {
  const Shape& x = in[0].shape;
  int64_t axis = normalize_axis(node, node.attrs.get_int("axis", 0), static_cast<int64_t>(x.size()));
  Shape y(x.begin(), x.begin() + axis);
  y.insert(y.end(), in[1].shape.begin(), in[1].shape.end());
  y.insert(y.end(), x.begin() + axis + 1, x.end());
  out = {like(in[0], y)};
}

}  // namespace

std::string node_label(const Node& node) { return "node '" + node.name + "' (" + node.op + ")"; }

int64_t normalize_axis(const Node& node, int64_t axis, int64_t rank) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) fail(node, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  return a;
}

Shape broadcast_shapes(const Node& node, const Shape& a, const Shape& b) {
  size_t rank = std::max(a.size(), b.size());
  Shape y(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      fail(node, "shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast");
    y[i] = da == 1 ? db : da;
  }
  return y;
}

WindowGeometry window_geometry(const Node& node, const Shape& input, const std::vector<int64_t>& kernel) {
  size_t n = input.size() - 2;
  WindowGeometry g;
  g.kernel = kernel;
  g.strides = node.attrs.get_ints("strides", std::vector<int64_t>(n, 1));
  g.dilations = node.attrs.get_ints("dilations", std::vector<int64_t>(n, 1));
  std::vector<int64_t> pads = node.attrs.get_ints("pads", std::vector<int64_t>(2 * n, 0));
  if (kernel.size() != n || g.strides.size() != n || g.dilations.size() != n || pads.size() != 2 * n)
    fail(node, "kernel_shape/strides/dilations/pads do not match " + std::to_string(n) + " spatial dimensions of " +
                   shape_str(input));
  std::string auto_pad = node.attrs.get_string("auto_pad", "NOTSET");
  bool ceil_mode = node.attrs.get_int("ceil_mode", 0) != 0;
  g.pads_begin.assign(pads.begin(), pads.begin() + static_cast<long>(n));
  g.pads_end.assign(pads.begin() + static_cast<long>(n), pads.end());
  g.output.resize(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t in = input[i + 2], k = kernel[i], s = g.strides[i], d = g.dilations[i];
    if (k < 1 || s < 1 || d < 1) fail(node, "kernel, strides and dilations must be positive");
    int64_t extent = (k - 1) * d + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      int64_t out = (in + s - 1) / s;
      int64_t total = std::max<int64_t>(0, (out - 1) * s + extent - in);
      g.pads_begin[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pads_end[i] = total - g.pads_begin[i];
    } else if (auto_pad == "VALID") {
      g.pads_begin[i] = g.pads_end[i] = 0;
    } else if (auto_pad != "NOTSET") {
      fail(node, "attribute auto_pad='" + auto_pad + "' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID");
    }
    if (g.pads_begin[i] < 0 || g.pads_end[i] < 0) fail(node, "attribute pads has a negative value");
    int64_t span = in + g.pads_begin[i] + g.pads_end[i] - extent;
    if (span < 0) fail(node, "window " + std::to_string(extent) + " larger than padded input " + shape_str(input));
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    // ceil_mode: a last window that starts inside the right padding is dropped (ONNX/PyTorch rule).
    if (ceil_mode && (out - 1) * s >= in + g.pads_begin[i]) --out;
    g.output[i] = out;
    // Pad the end so the last window fits; oneDNN and the reference both read this geometry.
    int64_t needed = (out - 1) * s + extent - in - g.pads_begin[i];
    if (needed > g.pads_end[i]) g.pads_end[i] = needed;
  }
  return g;
}

// The op vocabulary: one row per op. Adding an op is a row here (its kernel family's factories live in
// kernels/, registered once per family in kernels/registry.cpp) and, to import it, a translation in
// converters/onnx/. Every family named here has an optimized and a reference kernel (tested).
const std::vector<OpSchema>& op_schemas() {
  static const std::vector<OpSchema> table = {
      {"Conv",
       "conv",
       2,
       4,
       1,
       1,
       {"kernel_shape", "strides", "dilations", "pads", "group", "auto_pad", "act", "act_alpha", "act_beta", "sum_act",
        "sum_act_alpha", "sum_act_beta"},
       infer_conv},
      {"Gemm", "gemm", 2, 3, 1, 1, {"alpha", "beta", "transA", "transB"}, infer_gemm},
      {"MatMul", "matmul", 2, 3, 1, 1, {"act", "act_alpha", "act_beta"}, infer_matmul},
      {"BatchNormalization", "batchnorm", 5, 5, 1, 1, {"epsilon", "momentum"}, infer_batchnorm},
      {"Relu", "eltwise", 1, 1, 1, 1, {}, infer_same},
      {"LeakyRelu", "eltwise", 1, 1, 1, 1, {"alpha"}, infer_same},
      {"Clip", "eltwise", 1, 1, 1, 1, {"min", "max"}, infer_clip},
      {"Sigmoid", "eltwise", 1, 1, 1, 1, {}, infer_same},
      {"HardSigmoid", "eltwise", 1, 1, 1, 1, {"alpha", "beta"}, infer_same},
      {"HardSwish", "eltwise", 1, 1, 1, 1, {}, infer_same},
      {"Gelu", "eltwise", 1, 1, 1, 1, {"approximate"}, infer_same},
      {"Erf", "eltwise", 1, 1, 1, 1, {}, infer_same},
      {"Sqrt", "eltwise", 1, 1, 1, 1, {}, infer_same},
      {"Pow", "eltwise", 1, 1, 1, 1, {"exponent"}, infer_same},
      {"Add", "binary", 2, 2, 1, 1, {}, infer_binary},
      {"Sub", "binary", 2, 2, 1, 1, {}, infer_binary},
      {"Mul", "binary", 2, 2, 1, 1, {}, infer_binary},
      {"Div", "binary", 2, 2, 1, 1, {}, infer_binary},
      {"LayerNormalization", "layer_norm", 1, 3, 1, 3, {"axis", "epsilon", "stash_type"}, infer_layer_norm},
      {"MaxPool",
       "pool",
       1,
       1,
       1,
       1,
       {"kernel_shape", "strides", "dilations", "pads", "auto_pad", "ceil_mode", "storage_order"},
       infer_pool},
      {"AveragePool",
       "pool",
       1,
       1,
       1,
       1,
       {"kernel_shape", "strides", "pads", "auto_pad", "ceil_mode", "count_include_pad"},
       infer_pool},
      {"GlobalAveragePool", "pool", 1, 1, 1, 1, {}, infer_global_pool},
      {"Flatten", "copy", 1, 1, 1, 1, {"axis"}, infer_flatten},
      {"Reshape", "copy", 1, 1, 1, 1, {"shape", "allowzero"}, infer_reshape},
      {"Concat", "concat", 1, 64, 1, 1, {"axis"}, infer_concat},
      {"Softmax", "softmax", 1, 1, 1, 1, {"axis"}, infer_softmax},
      {"Identity", "copy", 1, 1, 1, 1, {}, infer_same},
      {"Pad", "pad", 1, 1, 1, 1, {"pads", "mode", "value"}, infer_pad},
      {"ReduceMean", "reduce", 1, 1, 1, 1, {"axes", "keepdims"}, infer_reduce_mean},
      {"Transpose", "transpose", 1, 1, 1, 1, {"perm"}, infer_transpose},
      {"Slice", "slice", 1, 1, 1, 1, {"starts", "ends", "axes", "steps"}, infer_slice},
      {"Split", "slice", 1, 1, 1, 64, {"axis", "split"}, infer_split},
      {"Squeeze", "copy", 1, 1, 1, 1, {"axes"}, infer_squeeze},
      {"Unsqueeze", "copy", 1, 1, 1, 1, {"axes"}, infer_unsqueeze},
      {"Gather", "gather", 2, 2, 1, 1, {"axis"}, infer_gather},
      {"Quantize", "quantize", 1, 1, 1, 1, {}, infer_quantize},
      {"Dequantize", "quantize", 1, 1, 1, 1, {}, infer_dequantize},
  };
  return table;
}

const OpSchema* find_op_schema(const std::string& op) {
  for (const OpSchema& s : op_schemas())
    if (op == s.name) return &s;
  return nullptr;
}

void validate_node(const Node& node) {
  const OpSchema* schema = find_op_schema(node.op);
  if (!schema) throw Error(node_label(node) + ": unsupported op '" + node.op + "'");
  int n_in = static_cast<int>(node.inputs.size()), n_out = static_cast<int>(node.outputs.size());
  if (n_in < schema->min_inputs || n_in > schema->max_inputs)
    fail(node, "has " + std::to_string(n_in) + " inputs, expects " + std::to_string(schema->min_inputs) + ".." +
                   std::to_string(schema->max_inputs));
  if (n_out < schema->min_outputs || n_out > schema->max_outputs)
    fail(node, "has " + std::to_string(n_out) + " outputs, expects " + std::to_string(schema->min_outputs) + ".." +
                   std::to_string(schema->max_outputs));
  for (int i = 0; i < schema->min_inputs; ++i)
    if (node.inputs[i].empty()) fail(node, "required input " + std::to_string(i) + " is missing");
  for (const std::string& o : node.outputs)
    if (o.empty()) fail(node, "has an unnamed output");
  for (const auto& kv : node.attrs.values)
    if (std::find(schema->attributes.begin(), schema->attributes.end(), kv.first) == schema->attributes.end())
      fail(node, "unknown attribute '" + kv.first + "'");
}

}  // namespace octet
