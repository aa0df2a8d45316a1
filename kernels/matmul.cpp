// Gemm and MatMul: oneDNN matmul (optimized) and plain loops (reference).
// Gemm: Y = alpha * A' B' + beta * C (A' = A or A^T, likewise B'). A transposed operand is just a strided
// view, so no data moves. A constant B is reordered once into the layout oneDNN picks; a constant C is
// pre-scaled by beta into the bias; a C computed at run time becomes a binary-add post-op.
// MatMul: numpy semantics, batch dimensions broadcast, 1-D operands promoted as in numpy.
#include <algorithm>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

void require_f32(const KernelContext& ctx) {
  for (size_t i = 0; i < ctx.inputs.size(); ++i)
    if (!ctx.node.inputs[i].empty() && ctx.inputs[i].dtype != DType::f32)
      throw Error(node_label(ctx.node) + ": input " + std::to_string(i) + " is " + dtype_name(ctx.inputs[i].dtype) + ", only f32 is supported");
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

class DnnlMatmul : public DnnlKernel {
 public:
  // `c_view`: Gemm's C broadcast to [M, N] (empty dims when absent).
  DnnlMatmul(const KernelContext& ctx, const MatmulViews& v, float alpha, float beta, const TensorDesc* c_view)
      : DnnlKernel(ctx.engine) {
    using namespace dnnl;
    memory::desc a_md = to_md(v.a), c_md = to_md(v.c);
    memory::desc b_md = to_md(v.b);
    const Constant* b_const = ctx.constants[1];
    memory::desc b_any = b_const ? memory::desc(to_dims(v.b.dims), memory::data_type::f32, memory::format_tag::any) : b_md;

    primitive_attr attr = base_attr();
    bool c_is_bias = c_view && ctx.constants[2] && beta != 0 && alpha != 0;
    bool c_is_post_op = c_view && !c_is_bias && beta != 0;
    // alpha*AB + beta*C = beta * ((alpha/beta)*AB + C) when C arrives at run time.
    float output_scale = c_is_post_op ? alpha / beta : alpha;
    if (output_scale != 1.0f) attr.set_output_scales(0, {output_scale});
    if (c_is_post_op) {
      post_ops ops;
      ops.append_binary(algorithm::binary_add, to_md(*c_view));
      if (beta != 1.0f) ops.append_eltwise(1.0f, algorithm::eltwise_linear, beta, 0.0f);
      attr.set_post_ops(ops);
    }
    memory::desc bias_md;
    if (c_is_bias) bias_md = memory::desc(to_dims(c_view->dims), memory::data_type::f32, to_dims(dense_strides(c_view->dims)));
    matmul::desc desc = c_is_bias ? matmul::desc(a_md, b_any, bias_md, c_md) : matmul::desc(a_md, b_any, c_md);
    matmul::primitive_desc pd(desc, attr, engine_->engine);
    set_primitive(matmul(pd), pd);

    map_input(0, DNNL_ARG_SRC, a_md);
    if (b_const) {
      set_owned(DNNL_ARG_WEIGHTS, reorder_constant(*engine_, b_md, b_const->bytes->data(), pd.weights_desc()));
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
      : v_(v), alpha_(alpha), beta_(beta), has_c_(c_view != nullptr), b_const_(ctx.constants[1]) {
    // Constants arrive dense and C's broadcast dims have stride 0 (gemm_c_view), so views index them all.
    if (c_view) c_view_ = *c_view;
    c_const_ = ctx.constants.size() > 2 ? ctx.constants[2] : nullptr;
  }
  void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void*) override {
    a_ = static_cast<const float*>(inputs[0]);
    b_ = b_const_ ? b_const_->data<float>() : static_cast<const float*>(inputs[1]);
    c_in_ = has_c_ ? (c_const_ ? c_const_->data<float>() : static_cast<const float*>(inputs[2])) : nullptr;
    y_ = static_cast<float*>(outputs[0]);
  }
  void run() override {
    const TensorDesc& b_desc = v_.b;
    size_t r = v_.c.dims.size();
    int64_t k_dim = v_.a.dims[r - 1];
    for_each_index(v_.c, [&](const std::vector<int64_t>& idx, int64_t out_offset) {
      int64_t a_off = 0, b_off = 0;
      for (size_t d = 0; d + 2 < r; ++d) {
        if (v_.a.dims[d] != 1) a_off += idx[d] * v_.a.strides[d];
        if (b_desc.dims[d] != 1) b_off += idx[d] * b_desc.strides[d];
      }
      a_off += idx[r - 2] * v_.a.strides[r - 2];
      b_off += idx[r - 1] * b_desc.strides[r - 1];
      double acc = 0;
      for (int64_t k = 0; k < k_dim; ++k)
        acc += static_cast<double>(a_[a_off + k * v_.a.strides[r - 1]]) * b_[b_off + k * b_desc.strides[r - 2]];
      float y = alpha_ * static_cast<float>(acc);
      if (c_in_) y += beta_ * c_in_[idx[r - 2] * c_view_.strides[0] + idx[r - 1] * c_view_.strides[1]];
      y_[out_offset] = y;
    });
  }

 private:
  MatmulViews v_;
  float alpha_, beta_;
  bool has_c_;
  TensorDesc c_view_;
  const Constant* b_const_;
  const Constant* c_const_ = nullptr;
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

template <typename Impl>
std::unique_ptr<Kernel> make_gemm_kernel(const KernelContext& ctx) {
  require_f32(ctx);
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
  require_f32(ctx);
  MatmulViews v = matmul_views(ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]);
  return std::make_unique<Impl>(ctx, v, 1.0f, 0.0f, nullptr);
}

}  // namespace

std::unique_ptr<Kernel> make_gemm(const KernelContext& ctx) { return make_gemm_kernel<DnnlMatmul>(ctx); }
std::unique_ptr<Kernel> make_gemm_reference(const KernelContext& ctx) { return make_gemm_kernel<ReferenceMatmul>(ctx); }
std::unique_ptr<Kernel> make_matmul(const KernelContext& ctx) { return make_matmul_kernel<DnnlMatmul>(ctx); }
std::unique_ptr<Kernel> make_matmul_reference(const KernelContext& ctx) { return make_matmul_kernel<ReferenceMatmul>(ctx); }

}  // namespace octet::kernels
