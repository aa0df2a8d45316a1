// Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Gelu, Erf, Sqrt, Pow: oneDNN eltwise_forward (optimized) and
// a loop over logical indices (reference). Clip bounds are attributes; an absent bound is +-infinity, so it never
// clips.
#include <algorithm>
#include <cmath>
#include <optional>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

// The op as oneDNN's (algorithm, alpha, beta) triple, optionally followed by a second eltwise (HardSigmoid is
// linear then clip: oneDNN 2.6 has no hardsigmoid); the reference evaluates the same triples.
struct EltwiseStage {
  dnnl::algorithm algorithm;
  float alpha = 0, beta = 0;

  float apply(float x) const {
    switch (algorithm) {
      case dnnl::algorithm::eltwise_relu: return x < 0 ? x * alpha : x;
      case dnnl::algorithm::eltwise_clip_v2: return std::min(std::max(x, alpha), beta);
      case dnnl::algorithm::eltwise_linear: return alpha * x + beta;
      case dnnl::algorithm::eltwise_hardswish: return x * std::min(std::max(x / 6.0f + 0.5f, 0.0f), 1.0f);
      case dnnl::algorithm::eltwise_gelu_erf: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
      case dnnl::algorithm::eltwise_sqrt: return std::sqrt(x);
      case dnnl::algorithm::eltwise_pow: return alpha * std::pow(x, beta);
      case dnnl::algorithm::eltwise_logistic: return 1.0f / (1.0f + std::exp(-x));
      default: return std::erf(x);  // eltwise_abs stands for Erf, which oneDNN lacks (see make_eltwise)
    }
  }
};

struct EltwiseOp {
  EltwiseStage first;
  std::optional<EltwiseStage> second;
  float apply(float x) const { return second ? second->apply(first.apply(x)) : first.apply(x); }
};

EltwiseOp read_op(const KernelContext& ctx) {
  require_types(ctx, 1, {DType::f32});
  const Node& node = ctx.node;
  using dnnl::algorithm;
  if (node.op == "Relu") return {{algorithm::eltwise_relu, 0.0f, 0.0f}, {}};
  if (node.op == "LeakyRelu") return {{algorithm::eltwise_relu, node.attrs.get_float("alpha", 0.01f), 0.0f}, {}};
  if (node.op == "Clip")
    return {{algorithm::eltwise_clip_v2, node.attrs.get_float("min", -INFINITY), node.attrs.get_float("max", INFINITY)},
            {}};
  if (node.op == "Sigmoid") return {{algorithm::eltwise_logistic, 0.0f, 0.0f}, {}};
  if (node.op == "HardSigmoid")
    return {{algorithm::eltwise_linear, node.attrs.get_float("alpha", 0.2f), node.attrs.get_float("beta", 0.5f)},
            EltwiseStage{algorithm::eltwise_clip_v2, 0.0f, 1.0f}};
  if (node.op == "HardSwish") return {{algorithm::eltwise_hardswish, 0.0f, 0.0f}, {}};
  if (node.op == "Gelu") {
    std::string approximate = node.attrs.get_string("approximate", "none");
    if (approximate != "none")
      throw Error(node_label(node) + ": attribute approximate='" + approximate + "' is not supported (only 'none')");
    return {{algorithm::eltwise_gelu_erf, 0.0f, 0.0f}, {}};
  }
  if (node.op == "Sqrt") return {{algorithm::eltwise_sqrt, 0.0f, 0.0f}, {}};
  if (node.op == "Pow") return {{algorithm::eltwise_pow, 1.0f, node.attrs.get_float("exponent", 1.0f)}, {}};
  if (node.op == "Erf") return {{algorithm::eltwise_abs, 0.0f, 0.0f}, {}};
  throw Error(node_label(node) + ": not an eltwise op");
}

class DnnlEltwise : public DnnlKernel {
 public:
  DnnlEltwise(const KernelContext& ctx, const EltwiseOp& op, const dnnl::memory::desc& md) : DnnlKernel(ctx.engine) {
    using namespace dnnl;
    eltwise_forward::desc desc(prop_kind::forward_inference, op.first.algorithm, md, op.first.alpha, op.first.beta);
    eltwise_forward::primitive_desc pd(desc, base_attr(), engine_->engine);
    set_primitive(eltwise_forward(pd), pd);
    map_input(0, DNNL_ARG_SRC, md);
    map_output(0, DNNL_ARG_DST, md);
  }
};

// Two stages over a dense buffer of one layout (input and output descriptors equal).
class DenseEltwise : public PlainKernel {
 public:
  DenseEltwise(const KernelContext& ctx, const EltwiseOp& op)
      : PlainKernel(ctx), op_(op), n_(static_cast<int64_t>(ctx.inputs[0].bytes() / sizeof(float))) {}
  std::string implementation() const override { return "octet loop (linear, clip)"; }
  void run() override {
    const float* x = input<float>(0);
    float* y = output<float>(0);
    const float a = op_.first.alpha, b = op_.first.beta, lo = op_.second->alpha, hi = op_.second->beta;
    for (int64_t i = 0; i < n_; ++i) y[i] = std::min(std::max(a * x[i] + b, lo), hi);
  }

 private:
  EltwiseOp op_;
  int64_t n_;
};

class ReferenceEltwise : public PlainKernel {
 public:
  explicit ReferenceEltwise(const KernelContext& ctx, std::string implementation = "reference")
      : PlainKernel(ctx),
        op_(read_op(ctx)),
        in_(ctx.inputs[0]),
        out_(ctx.outputs[0]),
        implementation_(std::move(implementation)) {}
  std::string implementation() const override { return implementation_; }

  void run() override {
    const float* x = input<float>(0);
    float* y = output<float>(0);
    for_each_index(
        in_, [&](const std::vector<int64_t>& idx, int64_t offset) { y[offset_of(out_, idx)] = op_.apply(x[offset]); });
  }

 private:
  EltwiseOp op_;
  TensorDesc in_, out_;
  std::string implementation_;
};

}  // namespace

std::unique_ptr<Kernel> make_eltwise(const KernelContext& ctx) {
  EltwiseOp op = read_op(ctx);
  require_activation(ctx, 0);
  // oneDNN 2.6 eltwise has one descriptor for src and dst: other layout pairs take the reference loop.
  dnnl::memory::desc md = to_md(ctx.inputs[0]);
  if (md != to_md(ctx.outputs[0])) return make_eltwise_reference(ctx);
  // Erf has no oneDNN eltwise: models meet it inside GELU, which the converter fuses into one Gelu.
  if (ctx.node.op == "Erf") return std::make_unique<ReferenceEltwise>(ctx, "octet loop (erf)");
  // HardSigmoid (linear then clip): oneDNN 2.6 runs an eltwise with an eltwise post-op on ref:any and writes
  // NaN; the dense loop vectorizes. Models meet it fused into a Conv (a post-op pair there).
  if (op.second) return std::make_unique<DenseEltwise>(ctx, op);
  return std::make_unique<DnnlEltwise>(ctx, op, md);
}

std::unique_ptr<Kernel> make_eltwise_reference(const KernelContext& ctx) {
  return std::make_unique<ReferenceEltwise>(ctx);
}

}  // namespace octet::kernels
