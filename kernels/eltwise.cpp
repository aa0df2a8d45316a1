// Relu, LeakyRelu, Clip, Sigmoid: oneDNN eltwise_forward (optimized) and a loop over logical indices
// (reference). Clip bounds are attributes; an absent bound is +-infinity, so it never clips.
#include <algorithm>
#include <cmath>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

// The op as oneDNN's (algorithm, alpha, beta) triple; the reference evaluates the same triple.
struct EltwiseOp {
  dnnl::algorithm algorithm;
  float alpha = 0, beta = 0;

  float apply(float x) const {
    switch (algorithm) {
      case dnnl::algorithm::eltwise_relu: return x < 0 ? x * alpha : x;
      case dnnl::algorithm::eltwise_clip_v2: return std::min(std::max(x, alpha), beta);
      default: return 1.0f / (1.0f + std::exp(-x));  // eltwise_logistic
    }
  }
};

EltwiseOp read_op(const KernelContext& ctx) {
  require_types(ctx, 1, {DType::f32});
  const Node& node = ctx.node;
  if (node.op == "Relu") return {dnnl::algorithm::eltwise_relu, 0.0f, 0.0f};
  if (node.op == "LeakyRelu") return {dnnl::algorithm::eltwise_relu, node.attrs.get_float("alpha", 0.01f), 0.0f};
  if (node.op == "Clip")
    return {dnnl::algorithm::eltwise_clip_v2, node.attrs.get_float("min", -INFINITY), node.attrs.get_float("max", INFINITY)};
  if (node.op == "Sigmoid") return {dnnl::algorithm::eltwise_logistic, 0.0f, 0.0f};
  throw Error(node_label(node) + ": not an eltwise op");
}

class DnnlEltwise : public DnnlKernel {
 public:
  DnnlEltwise(const KernelContext& ctx, const EltwiseOp& op, const dnnl::memory::desc& md) : DnnlKernel(ctx.engine) {
    using namespace dnnl;
    eltwise_forward::desc desc(prop_kind::forward_inference, op.algorithm, md, op.alpha, op.beta);
    eltwise_forward::primitive_desc pd(desc, base_attr(), engine_->engine);
    set_primitive(eltwise_forward(pd), pd);
    map_input(0, DNNL_ARG_SRC, md);
    map_output(0, DNNL_ARG_DST, md);
  }
};

class ReferenceEltwise : public PlainKernel {
 public:
  explicit ReferenceEltwise(const KernelContext& ctx)
      : PlainKernel(ctx), op_(read_op(ctx)), in_(ctx.inputs[0]), out_(ctx.outputs[0]) {}

  void run() override {
    const float* x = input<float>(0);
    float* y = output<float>(0);
    for_each_index(in_, [&](const std::vector<int64_t>& idx, int64_t offset) {
      y[offset_of(out_, idx)] = op_.apply(x[offset]);
    });
  }

 private:
  EltwiseOp op_;
  TensorDesc in_, out_;
};

}  // namespace

std::unique_ptr<Kernel> make_eltwise(const KernelContext& ctx) {
  EltwiseOp op = read_op(ctx);
  require_activation(ctx, 0);
  // oneDNN 2.6 eltwise has one descriptor for src and dst: other layout pairs take the reference loop.
  dnnl::memory::desc md = to_md(ctx.inputs[0]);
  if (md != to_md(ctx.outputs[0])) return make_eltwise_reference(ctx);
  return std::make_unique<DnnlEltwise>(ctx, op, md);
}

std::unique_ptr<Kernel> make_eltwise_reference(const KernelContext& ctx) { return std::make_unique<ReferenceEltwise>(ctx); }

}  // namespace octet::kernels
