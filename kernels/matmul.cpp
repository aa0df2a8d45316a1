// Gemm and MatMul: oneDNN matmul (optimized) and plain loops (reference).
// Gemm: Y = alpha * A' B' + beta * C (A' = A or A^T, likewise B'). A transposed operand is just a strided
// view, so no data moves. A constant B is reordered once into the layout oneDNN picks; a constant C is
// pre-scaled by beta into the bias; a C computed at run time becomes a binary-add post-op.
// MatMul: numpy semantics, batch dimensions broadcast, 1-D operands promoted as in numpy. Quantized: a constant
// 2-D B is a quantized Gemm (quantized_linear.h); a B computed at run time (attention) is s8 with zero point 0.
#include <algorithm>
#include <optional>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/fused_activation.h"
#include "kernels/ops.h"
#include "kernels/quantized_linear.h"

namespace octet::kernels {
namespace {

// Float matmuls read f32, except a constant B stored as s8 (weight-only INT8, dequantized at Prepare).
void require_float(const KernelContext& ctx) {
  for (size_t i = 0; i < ctx.inputs.size(); ++i) {
    if (ctx.node.inputs[i].empty() || ctx.inputs[i].dtype == DType::f32) continue;
    if (i == 1 && ctx.constants[1] && ctx.inputs[1].dtype == DType::s8) continue;
    throw Error(node_label(ctx.node) + ": input " + std::to_string(i) + " is " + dtype_name(ctx.inputs[i].dtype) +
                ", a float Gemm/MatMul reads f32");
  }
}

// The f32 values of a constant B (dequantized when stored as s8).
std::vector<float> constant_b(const KernelContext& ctx) {
  return ctx.constants[1] ? float_weights(*ctx.constants[1], ctx.inputs[1].quant, node_label(ctx.node))
                          : std::vector<float>{};
}

// A 2-D view of `desc`, transposed when `transpose` is set (swapping dims and strides).
TensorDesc view_2d(const TensorDesc& desc, bool transpose) {
  TensorDesc v = desc;
  if (transpose) {
    std::swap(v.dims[0], v.dims[1]);
    std::swap(v.strides[0], v.strides[1]);
  }
  return v;
}

// Promotes a tensor to `rank` dims by inserting size-1 dims at `at` (strides of inserted dims are irrelevant).
TensorDesc expand(const TensorDesc& desc, size_t rank, size_t at) {
  TensorDesc v = desc;
  while (v.dims.size() < rank) {
    v.dims.insert(v.dims.begin() + static_cast<long>(at), 1);
    v.strides.insert(v.strides.begin() + static_cast<long>(at), 1);
  }
  return v;
}

// The operands of one matmul as equal-rank views: a [.., M, K], b [.., K, N], c [.., M, N].
struct MatmulViews {
  TensorDesc a, b, c;
};

MatmulViews matmul_views(const TensorDesc& a, const TensorDesc& b, const TensorDesc& c) {
  MatmulViews v;
  v.a = a.dims.size() == 1 ? expand(a, 2, 0) : a;
  v.b = b.dims.size() == 1 ? expand(b, 2, 1) : b;
  size_t rank = std::max(v.a.dims.size(), v.b.dims.size());
  v.a = expand(v.a, rank, 0);
  v.b = expand(v.b, rank, 0);
  v.c = c;
  if (a.dims.size() == 1) v.c = expand(v.c, v.c.dims.size() + 1, v.c.dims.size() - (b.dims.size() == 1 ? 0 : 1));
  if (b.dims.size() == 1) v.c = expand(v.c, v.c.dims.size() + 1, v.c.dims.size());
  v.c = expand(v.c, rank, 0);
  return v;
}

// For output element `idx` of the views: the offsets of its A row's first element and its B column's first
// element (batch dims of size 1 broadcast). Along k, A then steps by a.strides[r-1] and B by b.strides[r-2].
std::pair<int64_t, int64_t> row_and_column(const MatmulViews& v, const std::vector<int64_t>& idx) {
  const size_t r = v.c.dims.size();
  int64_t a_off = 0, b_off = 0;
  for (size_t d = 0; d + 2 < r; ++d) {
    if (v.a.dims[d] != 1) a_off += idx[d] * v.a.strides[d];
    if (v.b.dims[d] != 1) b_off += idx[d] * v.b.strides[d];
  }
  return {a_off + idx[r - 2] * v.a.strides[r - 2], b_off + idx[r - 1] * v.b.strides[r - 1]};
}

class DnnlMatmul : public DnnlKernel {
 public:
  // `c_view`: Gemm's C broadcast to [M, N] (empty dims when absent).
  DnnlMatmul(const KernelContext& ctx, const MatmulViews& v, float alpha, float beta, const TensorDesc* c_view)
      : DnnlKernel(ctx.engine) {
    using namespace dnnl;
    memory::desc a_md = to_md(v.a), c_md = to_md(v.c);
    memory::desc b_md = to_md(v.b);
    const Constant* b_const = ctx.constants[1];
    memory::desc b_any =
        b_const ? memory::desc(to_dims(v.b.dims), memory::data_type::f32, memory::format_tag::any) : b_md;
    // The view's md describes B's dense stored layout; its values may need dequantizing first.
    memory::desc b_stored = b_const ? to_md([&] {
      TensorDesc d = v.b;
      d.dtype = DType::f32;
      return d;
    }())
                                    : b_md;

    primitive_attr attr = base_attr();
    bool c_is_bias = c_view && ctx.constants[2] && beta != 0 && alpha != 0;
    bool c_is_post_op = c_view && !c_is_bias && beta != 0;
    // alpha*AB + beta*C = beta * ((alpha/beta)*AB + C) when C arrives at run time.
    float output_scale = c_is_post_op ? alpha / beta : alpha;
    if (output_scale != 1.0f) attr.set_output_scales(0, {output_scale});
    post_ops ops;
    if (c_is_post_op) {
      ops.append_binary(algorithm::binary_add, to_md(*c_view));
      if (beta != 1.0f) ops.append_eltwise(1.0f, algorithm::eltwise_linear, beta, 0.0f);
    }
    read_activation(ctx.node, "act").append_to(ops);  // a MatMul's fused activation (float: dst scale 1)
    attr.set_post_ops(ops);
    memory::desc bias_md;
    if (c_is_bias)
      bias_md = memory::desc(to_dims(c_view->dims), memory::data_type::f32, to_dims(dense_strides(c_view->dims)));
    matmul::desc desc = c_is_bias ? matmul::desc(a_md, b_any, bias_md, c_md) : matmul::desc(a_md, b_any, c_md);
    matmul::primitive_desc pd(desc, attr, engine_->engine);
    set_primitive(matmul(pd), pd);

    map_input(0, DNNL_ARG_SRC, a_md);
    if (b_const) {
      set_owned(DNNL_ARG_WEIGHTS, float_weights_in(*engine_, ctx.packed, *b_const, ctx.inputs[1].quant, b_stored,
                                                   pd.weights_desc(), node_label(ctx.node)));
    } else {
      map_input(1, DNNL_ARG_WEIGHTS, b_md);
    }
    if (c_is_bias) {
      // oneDNN scales after adding the bias: alpha * (AB + (beta/alpha) C). Broadcast from C's own shape.
      std::vector<float> scaled = ctx.constants[2]->as_floats();
      for (float& x : scaled) x *= beta / alpha;
      set_owned(DNNL_ARG_BIAS, reorder_constant(*engine_, bias_md, scaled.data(), bias_md));
    }
    if (c_is_post_op) map_input(2, DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, to_md(*c_view));
    map_output(0, DNNL_ARG_DST, c_md);
  }
};

// Plain loops over the equal-rank views; batch dims of size 1 broadcast.
class ReferenceMatmul : public Kernel {
 public:
  ReferenceMatmul(const KernelContext& ctx, const MatmulViews& v, float alpha, float beta, const TensorDesc* c_view)
      : v_(v),
        alpha_(alpha),
        beta_(beta),
        has_c_(c_view != nullptr),
        b_const_(ctx.constants[1]),
        b_values_(constant_b(ctx)),
        act_(read_activation(ctx.node, "act")) {
    // Constants arrive dense and C's broadcast dims have stride 0 (gemm_c_view), so views index them all.
    if (c_view) c_view_ = *c_view;
    c_const_ = ctx.constants.size() > 2 ? ctx.constants[2] : nullptr;
  }
  void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void*) override {
    a_ = static_cast<const float*>(inputs[0]);
    b_ = b_const_ ? b_values_.data() : static_cast<const float*>(inputs[1]);
    c_in_ = has_c_ ? (c_const_ ? c_const_->data<float>() : static_cast<const float*>(inputs[2])) : nullptr;
    y_ = static_cast<float*>(outputs[0]);
  }
  void run() override {
    const TensorDesc& b_desc = v_.b;
    size_t r = v_.c.dims.size();
    int64_t k_dim = v_.a.dims[r - 1];
    for_each_index(v_.c, [&](const std::vector<int64_t>& idx, int64_t out_offset) {
      const auto [a_off, b_off] = row_and_column(v_, idx);
      double acc = 0;
      for (int64_t k = 0; k < k_dim; ++k)
        acc += static_cast<double>(a_[a_off + k * v_.a.strides[r - 1]]) * b_[b_off + k * b_desc.strides[r - 2]];
      float y = alpha_ * static_cast<float>(acc);
      if (c_in_) y += beta_ * c_in_[idx[r - 2] * c_view_.strides[0] + idx[r - 1] * c_view_.strides[1]];
      y_[out_offset] = act_.apply(y);
    });
  }

 private:
  MatmulViews v_;
  float alpha_, beta_;
  bool has_c_;
  TensorDesc c_view_;
  const Constant* b_const_;
  std::vector<float> b_values_;
  const Constant* c_const_ = nullptr;
  Activation act_;
  const float* a_ = nullptr;
  const float* b_ = nullptr;
  const float* c_in_ = nullptr;
  float* y_ = nullptr;
};

// Gemm's C broadcast to [M, N]: leading 1s added, size-1 dims get stride 0 so oneDNN broadcasts them.
TensorDesc gemm_c_view(const TensorDesc& c, const TensorDesc& y) {
  TensorDesc v = expand(c, 2, 0);
  for (size_t d = 0; d < 2; ++d)
    if (v.dims[d] == 1 && y.dims[d] != 1) v.strides[d] = 0;
  return v;
}

// Quantized Gemm (a fully connected layer, see quantized_linear.h): A u8/s8 [M,K], B an s8 constant
// (transB either way) with scales per output column, C an optional constant bias of N values (s32 in
// accumulator units, or f32), alpha = beta = 1 and A not transposed (the converter guarantees all three).
struct QuantizedGemm {
  LinearQuant quant;
  TensorDesc a, b, y;  // b: the [K,N] view of the stored constant
  const Constant* b_const = nullptr;
  const Constant* bias = nullptr;
  Activation act;  // a MatMul's fused activation, in the dst-scaled domain
};

QuantizedGemm read_quantized_gemm(const KernelContext& ctx) {
  const Node& node = ctx.node;
  QuantizedGemm g;
  if (node.attrs.get_int("transA", 0) != 0 || node.attrs.get_float("alpha", 1) != 1.0f ||
      node.attrs.get_float("beta", 1) != 1.0f)
    throw Error(node_label(node) + ": a quantized Gemm needs transA=0, alpha=1, beta=1");
  if (!ctx.constants[1]) throw Error(node_label(node) + ": a quantized Gemm needs constant weights B");
  g.a = ctx.inputs[0];
  g.b = view_2d(ctx.inputs[1], node.attrs.get_int("transB", 0) != 0);
  g.y = ctx.outputs[0];
  g.b_const = ctx.constants[1];
  int64_t n = g.y.dims[1];
  g.quant = read_linear_quant(ctx, n, -1);
  g.act = scaled_activation(read_activation(node, "act"), g.quant.dst_scale);
  if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
    g.bias = ctx.constants[2];
    if (!g.bias || g.bias->elements() != n || (g.bias->dtype != DType::s32 && g.bias->dtype != DType::f32))
      throw Error(node_label(node) + ": a quantized Gemm needs C to be a constant s32 or f32 bias of " +
                  std::to_string(n) + " values");
  }
  return g;
}

// Row m of A (minus its zero point) times one column of integer weights, exactly, plus the bias of column n
// is added by store_gemm_output.
double accumulate(const QuantizedGemm& g, const void* a, int64_t m, const int32_t* column) {
  int64_t k_dim = g.a.dims[1];
  int64_t acc = 0;
  for (int64_t k = 0; k < k_dim; ++k) {
    int64_t off = m * g.a.strides[0] + k * g.a.strides[1];
    int32_t x = g.a.dtype == DType::u8 ? static_cast<const uint8_t*>(a)[off] : static_cast<const int8_t*>(a)[off];
    acc += static_cast<int64_t>(x - g.quant.src_zp) * column[k];
  }
  return static_cast<double>(acc);
}

// Output (m, n) from its accumulator: bias, output scale, activation, then the output dtype.
void store_gemm_output(const QuantizedGemm& g, void* y_data, int64_t m, int64_t n, double acc) {
  const LinearQuant& q = g.quant;
  if (g.bias) acc += g.bias->dtype == DType::s32 ? g.bias->data<int32_t>()[n] : g.bias->data<float>()[n];
  float y = g.act.apply(static_cast<float>(acc) * q.output_scale(n));
  int64_t off = m * g.y.strides[0] + n * g.y.strides[1];
  if (g.y.dtype == DType::f32)
    static_cast<float*>(y_data)[off] = y;
  else if (g.y.dtype == DType::u8)
    static_cast<uint8_t*>(y_data)[off] = static_cast<uint8_t>(requantize(y, q.dst_zp, DType::u8));
  else
    static_cast<int8_t*>(y_data)[off] = static_cast<int8_t>(requantize(y, q.dst_zp, DType::s8));
}

class DnnlQuantizedGemm : public DnnlKernel {
 public:
  explicit DnnlQuantizedGemm(const KernelContext& ctx) : DnnlKernel(ctx.engine) {
    using namespace dnnl;
    QuantizedGemm g = read_quantized_gemm(ctx);
    const LinearQuant& q = g.quant;
    memory::desc a_md = to_md(g.a), y_md = to_md(g.y), b_md = to_md(g.b);
    memory::desc b_any(to_dims(g.b.dims), memory::data_type::s8, memory::format_tag::any);
    primitive_attr attr = base_attr();
    attr.set_output_scales(q.output_scales.size() > 1 ? 1 << 1 : 0, q.output_scales);
    if (q.src_zp != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {q.src_zp});
    if (q.dst_zp != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {q.dst_zp});
    post_ops ops;
    g.act.append_to(ops);
    append_round_before_zero_point(ops, q, g.y.dtype);
    attr.set_post_ops(ops);
    memory::desc bias_md;
    if (g.bias) bias_md = memory::desc({1, g.y.dims[1]}, to_dnnl(g.bias->dtype), memory::format_tag::ab);
    matmul::desc desc = g.bias ? matmul::desc(a_md, b_any, bias_md, y_md) : matmul::desc(a_md, b_any, y_md);
    matmul::primitive_desc pd(desc, attr, engine_->engine);
    set_primitive(matmul(pd), pd);
    if (q.weight_zps.empty()) {
      set_owned(DNNL_ARG_WEIGHTS, packed_weights(*engine_, ctx.packed, *g.b_const, b_md, pd.weights_desc()));
    } else {
      // B - zero point clamped to s8; the columns the clamp changed are recomputed exactly after the matmul.
      ClampedWeights clamped = clamp_weights(*g.b_const, q, ctx.node.attrs.get_int("transB", 0) != 0 ? 0 : 1);
      set_owned(DNNL_ARG_WEIGHTS,
                packed_constant(*engine_, ctx.packed, *g.b_const, "clamped", pd.weights_desc(),
                                [&](memory& dst) { reorder_into(*engine_, b_md, clamped.clamped.data(), dst); }));
      columns_ = clamped.exact_channels;
      exact_ = clamped.exact;
    }
    if (g.bias) set_owned(DNNL_ARG_BIAS, reorder_constant(*engine_, bias_md, g.bias->bytes->data(), bias_md));
    map_input(0, DNNL_ARG_SRC, a_md);
    map_output(0, DNNL_ARG_DST, y_md);
    g_ = g;
  }

  void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void* scratch) override {
    DnnlKernel::bind(inputs, outputs, scratch);
    a_ = inputs[0];
    y_ = outputs[0];
  }

  void run() override {
    DnnlKernel::run();
    for (size_t j = 0; j < columns_.size(); ++j)
      for (int64_t m = 0; m < g_.y.dims[0]; ++m) store(m, columns_[j], accumulate(g_, a_, m, exact_[j].data()));
  }

 private:
  void store(int64_t m, int64_t n, double acc) const { store_gemm_output(g_, y_, m, n, acc); }

  QuantizedGemm g_;
  std::vector<int64_t> columns_;             // output columns whose B - zero point reach beyond s8
  std::vector<std::vector<int32_t>> exact_;  // their exact integers, k ascending
  const void* a_ = nullptr;
  void* y_ = nullptr;
};

class ReferenceQuantizedGemm : public Kernel {
 public:
  explicit ReferenceQuantizedGemm(const KernelContext& ctx) : g_(read_quantized_gemm(ctx)) {}
  void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void*) override {
    a_ = inputs[0];
    y_ = outputs[0];
  }
  void run() override {
    const int8_t* b = g_.b_const->data<int8_t>();
    int64_t m_dim = g_.y.dims[0], n_dim = g_.y.dims[1], k_dim = g_.a.dims[1];
    std::vector<int32_t> column(static_cast<size_t>(k_dim));
    for (int64_t n = 0; n < n_dim; ++n) {
      for (int64_t k = 0; k < k_dim; ++k)
        column[static_cast<size_t>(k)] = b[k * g_.b.strides[0] + n * g_.b.strides[1]] - g_.quant.weight_zp(n);
      for (int64_t m = 0; m < m_dim; ++m) store_gemm_output(g_, y_, m, n, accumulate(g_, a_, m, column.data()));
    }
  }

 private:
  QuantizedGemm g_;
  const void* a_ = nullptr;
  void* y_ = nullptr;
};

// A quantized MatMul of two activations (attention's Q K^T and softmax V): A u8/s8 and B s8 with zero point 0,
// one scale each, numpy batch broadcasting as the float MatMul; Y f32, or u8/s8 with its own parameters:
//   y = (sum (a - a_zp) * b) * a_scale * b_scale / y_scale, then rounded and shifted by y_zp for a u8/s8 Y.
struct QuantizedMatmul {
  LinearQuant quant;
  MatmulViews v;
};

QuantizedMatmul read_quantized_matmul(const KernelContext& ctx) {
  const Node& node = ctx.node;
  if (ctx.constants[1] || ctx.inputs[1].dtype != DType::s8)
    throw Error(node_label(node) + ": a quantized MatMul of two activations needs B an s8 activation");
  if (node.inputs.size() > 2 || node.attrs.has("act"))
    throw Error(node_label(node) + ": a quantized MatMul of two activations takes no bias or activation");
  QuantizedMatmul m;
  m.quant = read_linear_quant(ctx, 1, -1);
  const QuantParams& b = ctx.inputs[1].quant;
  if (b.scales.size() != 1 || std::any_of(b.zero_points.begin(), b.zero_points.end(), [](int32_t zp) { return zp; }))
    throw Error(node_label(node) + ": B of a quantized MatMul of two activations needs one scale and zero point 0");
  m.v = matmul_views(ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]);
  return m;
}

class DnnlQuantizedMatmul : public DnnlKernel {
 public:
  explicit DnnlQuantizedMatmul(const KernelContext& ctx) : DnnlKernel(ctx.engine) {
    using namespace dnnl;
    QuantizedMatmul m = read_quantized_matmul(ctx);
    memory::desc a_md = to_md(m.v.a), b_md = to_md(m.v.b), c_md = to_md(m.v.c);
    primitive_attr attr = base_attr();
    attr.set_output_scales(0, m.quant.output_scales);
    if (m.quant.src_zp != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {m.quant.src_zp});
    if (m.quant.dst_zp != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {m.quant.dst_zp});
    matmul::primitive_desc pd(matmul::desc(a_md, b_md, c_md), attr, engine_->engine);
    set_primitive(matmul(pd), pd);
    map_input(0, DNNL_ARG_SRC, a_md);
    map_input(1, DNNL_ARG_WEIGHTS, b_md);
    map_output(0, DNNL_ARG_DST, c_md);
  }
};

class ReferenceQuantizedMatmul : public Kernel {
 public:
  explicit ReferenceQuantizedMatmul(const KernelContext& ctx) : m_(read_quantized_matmul(ctx)) {}
  void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void*) override {
    a_ = inputs[0];
    b_ = static_cast<const int8_t*>(inputs[1]);
    y_ = outputs[0];
  }
  void run() override {
    const MatmulViews& v = m_.v;
    const LinearQuant& q = m_.quant;
    size_t r = v.c.dims.size();
    int64_t k_dim = v.a.dims[r - 1];
    for_each_index(v.c, [&](const std::vector<int64_t>& idx, int64_t out_offset) {
      const auto [a_off, b_off] = row_and_column(v, idx);
      int64_t acc = 0;
      for (int64_t k = 0; k < k_dim; ++k) {
        int64_t at = a_off + k * v.a.strides[r - 1];
        int32_t a = v.a.dtype == DType::u8 ? static_cast<const uint8_t*>(a_)[at] : static_cast<const int8_t*>(a_)[at];
        acc += static_cast<int64_t>(a - q.src_zp) * b_[b_off + k * v.b.strides[r - 2]];
      }
      float y = static_cast<float>(acc) * q.output_scales[0];
      if (v.c.dtype == DType::f32)
        static_cast<float*>(y_)[out_offset] = y;
      else if (v.c.dtype == DType::u8)
        static_cast<uint8_t*>(y_)[out_offset] = static_cast<uint8_t>(requantize(y, q.dst_zp, DType::u8));
      else
        static_cast<int8_t*>(y_)[out_offset] = static_cast<int8_t>(requantize(y, q.dst_zp, DType::s8));
    });
  }

 private:
  QuantizedMatmul m_;
  const void* a_ = nullptr;
  const int8_t* b_ = nullptr;
  void* y_ = nullptr;
};

bool is_quantized_input(const KernelContext& ctx) {
  return ctx.inputs[0].dtype == DType::u8 || ctx.inputs[0].dtype == DType::s8;
}

template <typename Impl>
std::unique_ptr<Kernel> make_gemm_kernel(const KernelContext& ctx) {
  require_float(ctx);
  const Node& node = ctx.node;
  MatmulViews v;
  v.a = view_2d(ctx.inputs[0], node.attrs.get_int("transA", 0) != 0);
  v.b = view_2d(ctx.inputs[1], node.attrs.get_int("transB", 0) != 0);
  v.c = ctx.outputs[0];
  bool has_c = node.inputs.size() > 2 && !node.inputs[2].empty();
  TensorDesc c_view;
  if (has_c) c_view = gemm_c_view(ctx.inputs[2], ctx.outputs[0]);
  return std::make_unique<Impl>(ctx, v, node.attrs.get_float("alpha", 1.0f), node.attrs.get_float("beta", 1.0f),
                                has_c ? &c_view : nullptr);
}

template <typename Impl>
std::unique_ptr<Kernel> make_matmul_kernel(const KernelContext& ctx) {
  require_float(ctx);
  MatmulViews v = matmul_views(ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]);
  return std::make_unique<Impl>(ctx, v, 1.0f, 0.0f, nullptr);
}

}  // namespace

std::unique_ptr<Kernel> make_gemm(const KernelContext& ctx) {
  if (is_quantized_input(ctx)) return std::make_unique<DnnlQuantizedGemm>(ctx);
  require_float(ctx);
  if (!ctx.node.attrs.has("act"))
    if (std::unique_ptr<Kernel> gemv = make_weight_only_gemv(ctx)) return gemv;
  return make_gemm_kernel<DnnlMatmul>(ctx);
}
std::unique_ptr<Kernel> make_gemm_reference(const KernelContext& ctx) {
  if (is_quantized_input(ctx)) return std::make_unique<ReferenceQuantizedGemm>(ctx);
  return make_gemm_kernel<ReferenceMatmul>(ctx);
}

namespace {

// `t` [d0, ..., M, K] as [d0 * ... * M, K] when its rows are evenly strided (a dense 3-D activation), else nullopt.
std::optional<TensorDesc> rows_2d(const TensorDesc& t) {
  if (t.dims.size() < 2) return std::nullopt;
  TensorDesc v = t;
  int64_t rows = 1;
  size_t r = t.dims.size();
  for (size_t d = 0; d + 1 < r; ++d) {
    rows *= t.dims[d];
    if (d + 2 < r && t.dims[d] != 1 && t.strides[d] != t.strides[d + 1] * t.dims[d + 1]) return std::nullopt;
  }
  v.dims = {rows, t.dims[r - 1]};
  v.strides = {t.strides[r - 2], t.strides[r - 1]};
  return v;
}

// A MatMul whose B is a 2-D constant (a linear layer: ViT's projections and MLP) is a Gemm of A's rows with B
// and the optional bias as C: the Gemm kernels (oneDNN 2-D matmul, INT8 with s8 weights, weight-only GEMV)
// run it on 2-D views of A and Y. nullopt when the views do not exist (A's rows unevenly strided).
template <typename Make>
std::unique_ptr<Kernel> as_gemm(const KernelContext& ctx, Make make) {
  if (!ctx.constants[1] || ctx.inputs[1].dims.size() != 2) return nullptr;
  std::optional<TensorDesc> a = rows_2d(ctx.inputs[0]), y = rows_2d(ctx.outputs[0]);
  if (!a || !y) return nullptr;
  KernelContext flat = ctx;
  flat.inputs[0] = *a;
  flat.outputs[0] = *y;
  return make(flat);
}

}  // namespace

// A MatMul of two quantized activations (INT8 attention) is a few microseconds of work per step: a second
// thread did not make ViT's faster, and its synchronization made the whole run slower. Float attention and
// MatMuls by weights use the threads.
Threading matmul_threading(const KernelContext& ctx) {
  const bool two_quantized_activations =
      ctx.inputs.size() == 2 && !ctx.constants.at(1) && ctx.inputs[0].dtype != DType::f32;
  return two_quantized_activations ? Threading::one_when_small_output : Threading::all;
}

std::unique_ptr<Kernel> make_matmul(const KernelContext& ctx) {
  if (auto gemm = as_gemm(ctx, make_gemm)) return gemm;
  if (is_quantized_input(ctx)) return std::make_unique<DnnlQuantizedMatmul>(ctx);
  if (ctx.node.inputs.size() > 2)
    throw Error(node_label(ctx.node) + ": a MatMul with a bias needs a 2-D constant B and evenly strided rows of A");
  return make_matmul_kernel<DnnlMatmul>(ctx);
}
std::unique_ptr<Kernel> make_matmul_reference(const KernelContext& ctx) {
  if (auto gemm = as_gemm(ctx, make_gemm_reference)) return gemm;
  if (is_quantized_input(ctx)) return std::make_unique<ReferenceQuantizedMatmul>(ctx);
  if (ctx.node.inputs.size() > 2)
    throw Error(node_label(ctx.node) + ": a MatMul with a bias needs a 2-D constant B and evenly strided rows of A");
  return make_matmul_kernel<ReferenceMatmul>(ctx);
}

}  // namespace octet::kernels
