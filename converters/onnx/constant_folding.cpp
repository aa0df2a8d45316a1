#include "converters/onnx/constant_folding.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "graph/ops.h"

namespace octet::onnx {
namespace {

[[noreturn]] void fail(const Node& node, const std::string& what) { throw Error(node_label(node) + ": " + what); }

// Folded values are shape arithmetic and small fills; a larger result is a hostile or broken model (a 1 KB
// ConstantOfShape of [100000, 100000] would otherwise allocate 40 GB). Checked before anything is allocated.
constexpr int64_t kMaxFoldedBytes = int64_t{1} << 28;  // 256 MiB

void check_folded_size(const Node& node, const Shape& shape, DType dtype) {
  int64_t bytes = capped_tensor_bytes(shape, dtype);
  if (bytes < 0 || bytes > kMaxFoldedBytes)
    fail(node, "folding would make a constant of shape " + shape_str(shape) + " of " + dtype_name(dtype) +
                   ", over the limit of " + std::to_string(kMaxFoldedBytes) +
                   " bytes for a value computed at conversion");
}

// One input of a node being folded: its type and shape, and its value unless it is an activation.
struct FoldInput {
  TensorInfo info;
  const Constant* value = nullptr;
};

Constant make_constant(DType dtype, Shape shape, std::vector<uint8_t> bytes) {
  Constant c;
  c.dtype = dtype;
  c.shape = std::move(shape);
  c.bytes = make_bytes(std::move(bytes));
  return c;
}

std::vector<int64_t> int_values(const Node& node, const Constant& c) {
  switch (c.dtype) {
    case DType::s64:
    case DType::s32: return c.as_ints();
    case DType::s8: return std::vector<int64_t>(c.data<int8_t>(), c.data<int8_t>() + c.elements());
    case DType::u8: return std::vector<int64_t>(c.data<uint8_t>(), c.data<uint8_t>() + c.elements());
    case DType::f32: break;
  }
  fail(node, "expected an integer constant, got f32");
}

template <typename T>
void store_ints(std::vector<uint8_t>& bytes, const std::vector<int64_t>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    T v = static_cast<T>(values[i]);
    std::memcpy(bytes.data() + i * sizeof(T), &v, sizeof(T));
  }
}

Constant from_int_values(DType dtype, const Shape& shape, const std::vector<int64_t>& values) {
  std::vector<uint8_t> bytes(values.size() * dtype_size(dtype));
  switch (dtype) {
    case DType::s64: store_ints<int64_t>(bytes, values); break;
    case DType::s32: store_ints<int32_t>(bytes, values); break;
    case DType::s8: store_ints<int8_t>(bytes, values); break;
    case DType::u8: store_ints<uint8_t>(bytes, values); break;
    case DType::f32: throw Error("from_int_values: f32 is not an integer type");
  }
  return make_constant(dtype, shape, std::move(bytes));
}

// The op table's shape inference for one output, on the inputs' types and shapes.
TensorInfo inferred_output(const Node& node, const std::vector<FoldInput>& inputs) {
  std::vector<TensorInfo> in, out;
  for (const FoldInput& i : inputs) in.push_back(i.info);
  find_op_schema(node.op)->infer(node, in, out);
  return out[0];
}

Shape row_major_strides(const Shape& shape) {
  Shape strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

// Calls visit(index) for every multi-index of `shape`, in row-major order.
template <typename Visit>
void for_each_index(const Shape& shape, Visit&& visit) {
  if (shape_elements(shape) == 0) return;
  std::vector<int64_t> index(shape.size(), 0);
  while (true) {
    visit(index);
    size_t d = shape.size();
    while (d > 0 && ++index[d - 1] == shape[d - 1]) index[--d] = 0;
    if (d == 0) return;
  }
}

int64_t offset_of(const std::vector<int64_t>& index, const Shape& strides) {
  int64_t offset = 0;
  for (size_t d = 0; d < index.size(); ++d) offset += index[d] * strides[d];
  return offset;
}

// Strides of `in` read as if broadcast to `out` (numpy rules): 0 along broadcast dimensions.
Shape broadcast_strides(const Shape& in, const Shape& out) {
  Shape strides(out.size(), 0), own = row_major_strides(in);
  size_t lead = out.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d)
    if (in[d] != 1) strides[lead + d] = own[d];
  return strides;
}

Constant eval_shape(const Node& node, const std::vector<FoldInput>& in) {
  const Shape& shape = in[0].info.shape;
  int64_t rank = static_cast<int64_t>(shape.size());
  auto clamp_bound = [rank](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
  int64_t start = clamp_bound(node.attrs.get_int("start", 0)), end = clamp_bound(node.attrs.get_int("end", rank));
  std::vector<int64_t> dims(shape.begin() + start, shape.begin() + std::max(start, end));
  return Constant::from_ints({static_cast<int64_t>(dims.size())}, dims);
}

// Reshape, Flatten, Squeeze, Unsqueeze, Identity: same bytes, shape from the op table.
Constant eval_reshaped(const Node& node, const std::vector<FoldInput>& in) {
  Constant result = *in[0].value;
  result.shape = inferred_output(node, in).shape;
  return result;
}

Constant eval_gather(const Node& node, const std::vector<FoldInput>& in) {
  const Constant& data = *in[0].value;
  Shape out_shape = inferred_output(node, in).shape;
  check_folded_size(node, out_shape, data.dtype);
  int64_t axis = normalize_axis(node, node.attrs.get_int("axis", 0), static_cast<int64_t>(data.shape.size()));
  int64_t dim = data.shape[axis], outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= data.shape[d];
  for (size_t d = axis + 1; d < data.shape.size(); ++d) inner *= data.shape[d];
  std::vector<int64_t> indices = int_values(node, *in[1].value);
  size_t chunk = static_cast<size_t>(inner) * dtype_size(data.dtype);
  std::vector<uint8_t> bytes;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t index : indices) {
      int64_t i = index < 0 ? index + dim : index;
      if (i < 0 || i >= dim)
        fail(node, "index " + std::to_string(index) + " out of range for dimension " + std::to_string(dim));
      const uint8_t* from = data.bytes->data() + static_cast<size_t>(o * dim + i) * chunk;
      bytes.insert(bytes.end(), from, from + chunk);
    }
  return make_constant(data.dtype, out_shape, std::move(bytes));
}

Constant eval_slice(const Node& node, const std::vector<FoldInput>& in) {
  const Constant& data = *in[0].value;
  Shape out_shape = inferred_output(node, in).shape;
  int64_t rank = static_cast<int64_t>(data.shape.size());
  std::vector<int64_t> starts = node.attrs.get_ints("starts"), axes = node.attrs.get_ints("axes");
  std::vector<int64_t> steps = node.attrs.get_ints("steps", std::vector<int64_t>(starts.size(), 1));
  std::vector<int64_t> first(rank, 0), step(rank, 1);  // per dimension: first index read, stride in indices
  for (size_t i = 0; i < starts.size(); ++i) {
    int64_t axis = normalize_axis(node, axes.empty() ? static_cast<int64_t>(i) : axes[i], rank), dim = data.shape[axis];
    int64_t s = starts[i] < 0 ? starts[i] + dim : starts[i];
    first[axis] = steps[i] > 0 ? std::clamp<int64_t>(s, 0, dim) : std::clamp<int64_t>(s, 0, dim - 1);
    step[axis] = steps[i];
  }
  Shape in_strides = row_major_strides(data.shape);
  size_t size = dtype_size(data.dtype);
  std::vector<uint8_t> bytes;
  for_each_index(out_shape, [&](const std::vector<int64_t>& index) {
    int64_t offset = 0;
    for (int64_t d = 0; d < rank; ++d) offset += (first[d] + index[d] * step[d]) * in_strides[d];
    const uint8_t* from = data.bytes->data() + static_cast<size_t>(offset) * size;
    bytes.insert(bytes.end(), from, from + size);
  });
  return make_constant(data.dtype, out_shape, std::move(bytes));
}

Constant eval_concat(const Node& node, const std::vector<FoldInput>& in) {
  Shape out_shape = inferred_output(node, in).shape;
  int64_t axis = normalize_axis(node, node.attrs.get_int("axis", 0), static_cast<int64_t>(out_shape.size()));
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= out_shape[d];
  std::vector<uint8_t> bytes;
  for (int64_t o = 0; o < outer; ++o)
    for (const FoldInput& input : in) {
      size_t chunk =
          static_cast<size_t>(input.value->elements() / std::max<int64_t>(outer, 1)) * dtype_size(input.value->dtype);
      const uint8_t* from = input.value->bytes->data() + static_cast<size_t>(o) * chunk;
      bytes.insert(bytes.end(), from, from + chunk);
    }
  return make_constant(in[0].value->dtype, out_shape, std::move(bytes));
}

// Add, Sub, Mul, Div, Mod with numpy broadcasting; integer types compute in int64 (Div truncates, like C++;
// Mod takes the divisor's sign unless fmod=1, which takes the dividend's, as ONNX says).
Constant eval_arithmetic(const Node& node, const std::vector<FoldInput>& in) {
  const bool c_fmod = node.attrs.get_int("fmod", 0) != 0;
  const Constant &a = *in[0].value, &b = *in[1].value;
  if (a.dtype != b.dtype) fail(node, "inputs differ in dtype");
  Shape out_shape = broadcast_shapes(node, a.shape, b.shape);
  check_folded_size(node, out_shape, a.dtype);
  Shape a_strides = broadcast_strides(a.shape, out_shape), b_strides = broadcast_strides(b.shape, out_shape);
  auto apply = [&](auto x, auto y) {
    if constexpr (std::is_integral_v<decltype(x)>) {  // checked: int64 overflow is undefined (INT64_MIN / -1 traps)
      decltype(x) r{};
      bool overflow = node.op == "Add"   ? __builtin_add_overflow(x, y, &r)
                      : node.op == "Sub" ? __builtin_sub_overflow(x, y, &r)
                      : node.op == "Mul" ? __builtin_mul_overflow(x, y, &r)
                                         : false;
      if (node.op == "Div" || node.op == "Mod") {
        if (y == 0) fail(node, "integer division by zero");
        const bool min_by_minus_one = x == std::numeric_limits<decltype(x)>::min() && y == -1;
        if (node.op == "Div") {
          overflow = min_by_minus_one;
          r = overflow ? 0 : x / y;
        } else {
          r = min_by_minus_one ? 0 : x % y;
          if (!c_fmod && r != 0 && (r < 0) != (y < 0)) r += y;
        }
      }
      if (overflow) fail(node, std::to_string(x) + " " + node.op + " " + std::to_string(y) + " overflows int64");
      return r;
    } else {
      if (node.op == "Add") return x + y;
      if (node.op == "Sub") return x - y;
      if (node.op == "Mul") return x * y;
      if (node.op == "Mod") {
        decltype(x) r = std::fmod(x, y);
        return !c_fmod && r != 0 && (r < 0) != (y < 0) ? r + y : r;
      }
      return x / y;
    }
  };
  auto compute = [&](const auto& x, const auto& y) {
    std::vector<std::decay_t<decltype(x[0])>> result;
    for_each_index(out_shape, [&](const std::vector<int64_t>& index) {
      result.push_back(apply(x[offset_of(index, a_strides)], y[offset_of(index, b_strides)]));
    });
    return result;
  };
  if (a.dtype == DType::f32) return Constant::from_floats(out_shape, compute(a.as_floats(), b.as_floats()));
  return from_int_values(a.dtype, out_shape, compute(int_values(node, a), int_values(node, b)));
}

// Canonical attribute 'to': the target dtype's name (the translator maps ONNX's type number).
Constant eval_cast(const Node& node, const std::vector<FoldInput>& in) {
  const Constant& x = *in[0].value;
  DType to = parse_dtype(node.attrs.get_string("to", ""), node_label(node) + ": attribute 'to'");
  if (x.dtype == DType::f32) {
    if (to == DType::f32) return x;
    std::vector<int64_t> ints;
    for (float f : x.as_floats()) {
      // Converting NaN or a value outside int64 is undefined in C++ (and in ONNX): refused.
      if (!(f >= -9.2233720368547758e18f && f < 9.2233720368547758e18f))
        fail(node, "cannot cast " + std::to_string(f) + " to an integer");
      ints.push_back(static_cast<int64_t>(f));
    }
    return from_int_values(to, x.shape, ints);
  }
  std::vector<int64_t> ints = int_values(node, x);
  if (to == DType::f32) return Constant::from_floats(x.shape, std::vector<float>(ints.begin(), ints.end()));
  return from_int_values(to, x.shape, ints);
}

// Canonical attributes: 'value' (float or int) and 'dtype' (name), from ONNX's one-element 'value' tensor.
Constant eval_constant_of_shape(const Node& node, const std::vector<FoldInput>& in) {
  std::vector<int64_t> shape = int_values(node, *in[0].value);
  DType dtype = parse_dtype(node.attrs.get_string("dtype", "f32"), node_label(node) + ": attribute 'dtype'");
  for (int64_t d : shape)
    if (d < 0) fail(node, "input 0 'input' " + shape_str(shape) + " has a negative dimension");
  check_folded_size(node, shape, dtype);
  size_t n = static_cast<size_t>(shape_elements(shape));
  if (dtype == DType::f32)
    return Constant::from_floats(shape, std::vector<float>(n, node.attrs.get_float("value", 0.0f)));
  return from_int_values(dtype, shape, std::vector<int64_t>(n, node.attrs.get_int("value", 0)));
}

// Element `offset` of `c` as a double (any dtype).
double value_at(const Constant& c, int64_t offset) {
  switch (c.dtype) {
    case DType::f32: return c.data<float>()[offset];
    case DType::s64: return static_cast<double>(c.data<int64_t>()[offset]);
    case DType::s32: return c.data<int32_t>()[offset];
    case DType::s8: return c.data<int8_t>()[offset];
    case DType::u8: return c.data<uint8_t>()[offset];
  }
  return 0;
}

// Equal with numpy broadcasting; the boolean result is u8 0/1 (octet's bool).
// Pow of an f32 constant; its exponent is already the attribute 'exponent' (one value).
Constant eval_pow(const Node& node, const std::vector<FoldInput>& in) {
  const Constant& x = *in[0].value;
  if (x.dtype != DType::f32) fail(node, std::string("input 0 is ") + dtype_name(x.dtype) + ", not float");
  const float exponent = node.attrs.get_float("exponent", 1.0f);
  std::vector<float> values = x.as_floats();
  for (float& v : values) v = std::pow(v, exponent);
  return Constant::from_floats(x.shape, values);
}

// Not of a bool tensor (u8 0/1).
Constant eval_not(const Node& node, const std::vector<FoldInput>& in) {
  const Constant& x = *in[0].value;
  if (x.dtype != DType::u8) fail(node, std::string("input is ") + dtype_name(x.dtype) + ", not bool");
  std::vector<int64_t> result;
  for (int64_t i = 0; i < x.elements(); ++i) result.push_back(value_at(x, i) == 0 ? 1 : 0);
  return from_int_values(DType::u8, x.shape, result);
}

Constant eval_equal(const Node& node, const std::vector<FoldInput>& in) {
  const Constant &a = *in[0].value, &b = *in[1].value;
  if (a.dtype != b.dtype) fail(node, "inputs differ in dtype");
  Shape out_shape = broadcast_shapes(node, a.shape, b.shape);
  Shape a_strides = broadcast_strides(a.shape, out_shape), b_strides = broadcast_strides(b.shape, out_shape);
  std::vector<int64_t> result;
  for_each_index(out_shape, [&](const std::vector<int64_t>& index) {
    result.push_back(value_at(a, offset_of(index, a_strides)) == value_at(b, offset_of(index, b_strides)) ? 1 : 0);
  });
  return from_int_values(DType::u8, out_shape, result);
}

// Where(condition, X, Y) with numpy broadcasting of all three; X and Y are copied bytewise.
Constant eval_where(const Node& node, const std::vector<FoldInput>& in) {
  const Constant &c = *in[0].value, &x = *in[1].value, &y = *in[2].value;
  if (x.dtype != y.dtype) fail(node, "inputs X and Y differ in dtype");
  Shape out_shape = broadcast_shapes(node, broadcast_shapes(node, c.shape, x.shape), y.shape);
  Shape c_strides = broadcast_strides(c.shape, out_shape), x_strides = broadcast_strides(x.shape, out_shape),
        y_strides = broadcast_strides(y.shape, out_shape);
  size_t size = dtype_size(x.dtype);
  std::vector<uint8_t> bytes;
  for_each_index(out_shape, [&](const std::vector<int64_t>& index) {
    bool pick_x = value_at(c, offset_of(index, c_strides)) != 0;
    const Constant& from = pick_x ? x : y;
    const uint8_t* p =
        from.bytes->data() + static_cast<size_t>(offset_of(index, pick_x ? x_strides : y_strides)) * size;
    bytes.insert(bytes.end(), p, p + size);
  });
  return make_constant(x.dtype, out_shape, std::move(bytes));
}

// The constant of `out_shape` whose element at an index is x's at offset_of(index, strides) (a view of x).
Constant gathered(const Constant& x, const Shape& out_shape, const Shape& strides) {
  size_t size = dtype_size(x.dtype);
  std::vector<uint8_t> bytes;
  for_each_index(out_shape, [&](const std::vector<int64_t>& index) {
    const uint8_t* p = x.bytes->data() + static_cast<size_t>(offset_of(index, strides)) * size;
    bytes.insert(bytes.end(), p, p + size);
  });
  return make_constant(x.dtype, out_shape, std::move(bytes));
}

// Expand(input, shape): numpy broadcast of the input and the requested shape.
Constant eval_expand(const Node& node, const std::vector<FoldInput>& in) {
  const Constant& x = *in[0].value;
  Shape out_shape = broadcast_shapes(node, x.shape, int_values(node, *in[1].value));
  return gathered(x, out_shape, broadcast_strides(x.shape, out_shape));
}

// Transpose(perm): output dim k is input dim perm[k] (default: reversed). Swin's padding arithmetic transposes
// a constant pad matrix.
Constant eval_transpose(const Node& node, const std::vector<FoldInput>& in) {
  const Constant& x = *in[0].value;
  const size_t rank = x.shape.size();
  std::vector<int64_t> perm = node.attrs.get_ints("perm", {});
  if (perm.empty())
    for (size_t d = rank; d-- > 0;) perm.push_back(static_cast<int64_t>(d));
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (size_t d = 0; d < sorted.size(); ++d)
    if (sorted.size() != rank || sorted[d] != static_cast<int64_t>(d))
      fail(node, "attribute perm is not a permutation of the " + std::to_string(rank) + " dims");
  Shape dense(rank, 1), out_shape(rank), strides(rank);
  for (size_t d = rank; d-- > 1;) dense[d - 1] = dense[d] * x.shape[d];
  for (size_t k = 0; k < rank; ++k) {
    out_shape[k] = x.shape[static_cast<size_t>(perm[k])];
    strides[k] = dense[static_cast<size_t>(perm[k])];
  }
  return gathered(x, out_shape, strides);
}

// ScatterND(data, indices [..., k], updates), reduction none: a copy of data whose slices data[i0..ik-1] are the
// matching updates, in order. Swin builds its shifted-window attention mask so.
Constant eval_scatter_nd(const Node& node, const std::vector<FoldInput>& in) {
  const Constant &data = *in[0].value, &updates = *in[2].value;
  if (node.attrs.get_string("reduction", "none") != "none") fail(node, "attribute reduction must be 'none'");
  if (updates.dtype != data.dtype) fail(node, "updates and data differ in dtype");
  const std::vector<int64_t> indices = int_values(node, *in[1].value);
  const Shape& ishape = in[1].value->shape;
  if (ishape.empty()) fail(node, "indices must have rank >= 1");
  const size_t k = static_cast<size_t>(ishape.back());
  if (k == 0 || k > data.shape.size())
    fail(node, "indices' last dim " + std::to_string(k) + " is not in 1..rank(data)");
  int64_t slice = 1;
  for (size_t d = k; d < data.shape.size(); ++d) slice *= data.shape[d];
  const int64_t tuples = ishape.back() ? static_cast<int64_t>(indices.size()) / ishape.back() : 0;
  if (updates.elements() != tuples * slice)
    fail(node, "updates have " + std::to_string(updates.elements()) + " values for " + std::to_string(tuples) +
                   " slices of " + std::to_string(slice));
  const size_t size = dtype_size(data.dtype);
  std::vector<uint8_t> bytes(data.bytes->begin(), data.bytes->end());
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t offset = 0;
    for (size_t d = 0; d < k; ++d) {
      int64_t i = indices[static_cast<size_t>(t) * k + d], n = data.shape[d];
      if (i < -n || i >= n) fail(node, "index " + std::to_string(i) + " is out of range for dim " + std::to_string(d));
      offset = offset * n + (i < 0 ? i + n : i);
    }
    std::memcpy(bytes.data() + static_cast<size_t>(offset * slice) * size,
                updates.bytes->data() + static_cast<size_t>(t * slice) * size, static_cast<size_t>(slice) * size);
  }
  return make_constant(data.dtype, data.shape, std::move(bytes));
}

// Range(start, limit, delta): max(ceil((limit - start) / delta), 0) values start + i * delta.
Constant eval_range(const Node& node, const std::vector<FoldInput>& in) {
  for (const FoldInput& i : in)
    if (i.value->elements() != 1) fail(node, "start, limit and delta must be scalars");
  double start = value_at(*in[0].value, 0), limit = value_at(*in[1].value, 0), delta = value_at(*in[2].value, 0);
  if (delta == 0) fail(node, "delta is 0");
  int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((limit - start) / delta)));
  if (in[0].value->dtype == DType::f32) {
    std::vector<float> values(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      values[static_cast<size_t>(i)] = static_cast<float>(start + static_cast<double>(i) * delta);
    return Constant::from_floats({n}, values);
  }
  std::vector<int64_t> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    values[static_cast<size_t>(i)] = static_cast<int64_t>(start) + i * static_cast<int64_t>(delta);
  return from_int_values(in[0].value->dtype, {n}, values);
}

struct FoldRule {
  const char* op;
  bool needs_values;  // false: only the inputs' shapes are needed (Shape)
  Constant (*evaluate)(const Node& node, const std::vector<FoldInput>& inputs);
};

const FoldRule* find_fold_rule(const std::string& op) {
  static const FoldRule rules[] = {
      {"Shape", false, eval_shape},
      {"Gather", true, eval_gather},
      {"Slice", true, eval_slice},
      {"Concat", true, eval_concat},
      {"Cast", true, eval_cast},
      {"ConstantOfShape", true, eval_constant_of_shape},
      {"Add", true, eval_arithmetic},
      {"Sub", true, eval_arithmetic},
      {"Mul", true, eval_arithmetic},
      {"Div", true, eval_arithmetic},
      {"Reshape", true, eval_reshaped},
      {"Flatten", true, eval_reshaped},
      {"Squeeze", true, eval_reshaped},
      {"Unsqueeze", true, eval_reshaped},
      {"Identity", true, eval_reshaped},
      {"Equal", true, eval_equal},
      {"Where", true, eval_where},
      {"Expand", true, eval_expand},
      {"Range", true, eval_range},
      {"Pow", true, eval_pow},
      {"Mod", true, eval_arithmetic},
      {"Transpose", true, eval_transpose},
      {"ScatterND", true, eval_scatter_nd},
      {"Not", true, eval_not},
  };
  for (const FoldRule& rule : rules)
    if (op == rule.op) return &rule;
  return nullptr;
}

bool same_value(const Constant& a, const Constant& b) {
  return a.dtype == b.dtype && a.shape == b.shape && *a.bytes == *b.bytes;
}

}  // namespace

ConstantFolder::ConstantFolder(Graph& graph) : graph_(graph) {
  for (const std::string& input : graph.inputs) {
    std::array<TensorInfo, kWorlds>& infos = activations_[input];
    for (size_t w = 0; w < kWorlds; ++w) {
      infos[w] = graph.tensor(input);
      for (int64_t& d : infos[w].shape)
        if (d == kBatchDim) d = static_cast<int64_t>(w + 1);
    }
  }
}

void ConstantFolder::add_constant(const std::string& name, Constant value) {
  graph_.constants[name] = std::move(value);
}

const Constant* ConstantFolder::constant(const std::string& name) const { return graph_.find_constant(name); }

bool ConstantFolder::depends_on_batch(const std::string& name) const { return batch_dependent_.count(name) != 0; }

TensorInfo ConstantFolder::info_in_world(const Node& node, const std::string& name, size_t world) const {
  const Constant* value = constant(name);
  auto dependent = batch_dependent_.find(name);
  if (dependent != batch_dependent_.end()) value = &dependent->second[world];
  if (value) {
    TensorInfo info;
    info.dtype = value->dtype;
    info.shape = value->shape;
    return info;
  }
  auto activation = activations_.find(name);
  if (activation == activations_.end())
    fail(node, "input '" + name + "' is not defined (not a graph input, initializer or output of an earlier node)");
  return activation->second[world];
}

std::array<TensorInfo, 2> ConstantFolder::infos(const Node& node, const std::string& name) const {
  return {info_in_world(node, name, 0), info_in_world(node, name, 1)};
}

bool ConstantFolder::fold(const Node& node) {
  const FoldRule* rule = find_fold_rule(node.op);
  if (!rule || node.outputs.size() != 1) return false;
  std::array<Constant, kWorlds> results;
  for (size_t w = 0; w < kWorlds; ++w) {
    std::vector<FoldInput> inputs(node.inputs.size());
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const std::string& name = node.inputs[i];
      if (name.empty()) continue;
      auto dependent = batch_dependent_.find(name);
      inputs[i].value = dependent != batch_dependent_.end() ? &dependent->second[w] : constant(name);
      if (!inputs[i].value && rule->needs_values) return false;
      inputs[i].info = info_in_world(node, name, w);
    }
    results[w] = rule->evaluate(node, inputs);
  }
  if (same_value(results[0], results[1])) {
    add_constant(node.outputs[0], results[0]);
  } else {
    batch_dependent_[node.outputs[0]] = results;
  }
  return true;
}

void ConstantFolder::track(const Node& node) {
  for (const std::string& name : node.inputs)
    if (depends_on_batch(name))
      fail(node, "input '" + name +
                     "' is computed from the batch size (a folded Shape); octet accepts such values only as a "
                     "Reshape's shape");
  for (size_t w = 0; w < kWorlds; ++w) {
    std::vector<TensorInfo> inputs, outputs;
    for (const std::string& name : node.inputs)
      inputs.push_back(name.empty() ? TensorInfo{} : info_in_world(node, name, w));
    try {
      find_op_schema(node.op)->infer(node, inputs, outputs);
    } catch (const Error& e) {
      if (w == 0) throw;
      throw Error(std::string(e.what()) +
                  " (at batch size 2: the graph input's batch is symbolic, this node's shapes are not)");
    }
    for (size_t i = 0; i < node.outputs.size(); ++i) activations_[node.outputs[i]][w] = outputs[i];
  }
}

std::vector<int64_t> ConstantFolder::reshape_target(const Node& reshape, const std::string& shape_input) const {
  const std::array<Constant, kWorlds>& values = batch_dependent_.at(shape_input);
  std::array<std::vector<int64_t>, kWorlds> wanted = {int_values(reshape, values[0]), int_values(reshape, values[1])};
  std::array<TensorInfo, kWorlds> data = infos(reshape, reshape.inputs[0]);
  bool allowzero = reshape.attrs.get_int("allowzero", 0) != 0;
  std::vector<int64_t> target = wanted[0];
  for (size_t i = 0; i < target.size() && i < wanted[1].size(); ++i) {
    if (wanted[0][i] == wanted[1][i]) continue;
    bool copies_input =
        !allowzero && i < data[0].shape.size() && data[0].shape[i] == wanted[0][i] && data[1].shape[i] == wanted[1][i];
    target[i] = copies_input ? 0 : -1;
  }
  // The static attribute is right only if it reshapes like the computed values at both batch sizes.
  auto output_shape = [&](const std::vector<int64_t>& shape, size_t w) -> std::optional<Shape> {
    Node probe = reshape;
    probe.attrs.set("shape", shape);
    std::vector<TensorInfo> out;
    try {
      find_op_schema("Reshape")->infer(probe, {data[w]}, out);
    } catch (const Error&) {
      return std::nullopt;
    }
    return out[0].shape;
  };
  for (size_t w = 0; w < kWorlds; ++w) {
    std::optional<Shape> expected = output_shape(wanted[w], w);
    if (!expected || output_shape(target, w) != expected)
      fail(reshape, "input 1 'shape' is computed from the batch size (" + shape_str(wanted[0]) + " at batch 1, " +
                        shape_str(wanted[1]) + " at batch 2) in a way no static shape attribute expresses");
  }
  return target;
}

}  // namespace octet::onnx