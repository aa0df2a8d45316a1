// BatchNormalization (inference): y = (x - mean) / sqrt(var + epsilon) * scale + B per channel (dim 1).
// The optimized kernel folds the four constants at Prepare into y = a * x + b and runs it as one oneDNN
// binary mul by a per-channel a with a binary-add post-op of b; the reference evaluates the definition.
#include <cmath>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

const char* const kOperandNames[] = {"X", "scale", "B", "mean", "var"};

// The per-channel constants (inputs 1..4) as floats, after checking they are constants.
struct BatchNormParams {
  std::vector<float> scale, bias, mean, var;
  float epsilon;
};

BatchNormParams read_params(const KernelContext& ctx) {
  require_types(ctx, 5, {DType::f32});
  require_activation(ctx, 0);
  for (size_t i = 1; i < 5; ++i)
    if (!ctx.constants[i])
      throw Error(node_label(ctx.node) + ": input " + std::to_string(i) + " (" + kOperandNames[i] +
                  ") must be a constant");
  return {ctx.constants[1]->as_floats(), ctx.constants[2]->as_floats(), ctx.constants[3]->as_floats(),
          ctx.constants[4]->as_floats(), ctx.node.attrs.get_float("epsilon", 1e-5f)};
}

class DnnlBatchNorm : public DnnlKernel {
 public:
  explicit DnnlBatchNorm(const KernelContext& ctx) : DnnlKernel(ctx.engine) {
    using namespace dnnl;
    BatchNormParams p = read_params(ctx);
    const TensorDesc& x = ctx.inputs[0];
    int64_t channels = x.dims[1];
    memory::dims channel_dims(x.dims.size(), 1);  // [1, C, 1, ...]: broadcast over all but dim 1
    channel_dims[1] = channels;
    memory::desc channel_md(channel_dims, memory::data_type::f32,
                            dense_strides(Shape(channel_dims.begin(), channel_dims.end())));
    memory a(channel_md, engine_->engine), b(channel_md, engine_->engine);
    float* a_data = static_cast<float*>(a.get_data_handle());
    float* b_data = static_cast<float*>(b.get_data_handle());
    for (int64_t c = 0; c < channels; ++c) {
      double factor = p.scale[c] / std::sqrt(static_cast<double>(p.var[c]) + p.epsilon);
      a_data[c] = static_cast<float>(factor);
      b_data[c] = static_cast<float>(p.bias[c] - p.mean[c] * factor);
    }

    primitive_attr attr = base_attr();
    post_ops ops;
    ops.append_binary(algorithm::binary_add, channel_md);
    attr.set_post_ops(ops);
    memory::desc src = to_md(x), dst = to_md(ctx.outputs[0]);
    binary::primitive_desc pd(binary::desc(algorithm::binary_mul, src, channel_md, dst), attr, engine_->engine);
    set_primitive(binary(pd), pd);
    set_owned(DNNL_ARG_SRC_1, a);
    set_owned(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, b);
    map_input(0, DNNL_ARG_SRC_0, src);
    map_output(0, DNNL_ARG_DST, dst);
  }
};

class ReferenceBatchNorm : public PlainKernel {
 public:
  explicit ReferenceBatchNorm(const KernelContext& ctx)
      : PlainKernel(ctx), p_(read_params(ctx)), in_(ctx.inputs[0]), out_(ctx.outputs[0]) {}

  void run() override {
    const float* x = input<float>(0);
    float* y = output<float>(0);
    for_each_index(in_, [&](const std::vector<int64_t>& idx, int64_t offset) {
      size_t c = static_cast<size_t>(idx[1]);
      y[offset_of(out_, idx)] = (x[offset] - p_.mean[c]) / std::sqrt(p_.var[c] + p_.epsilon) * p_.scale[c] + p_.bias[c];
    });
  }

 private:
  BatchNormParams p_;
  TensorDesc in_, out_;
};

}  // namespace

std::unique_ptr<Kernel> make_batchnorm(const KernelContext& ctx) { return std::make_unique<DnnlBatchNorm>(ctx); }
std::unique_ptr<Kernel> make_batchnorm_reference(const KernelContext& ctx) {
  return std::make_unique<ReferenceBatchNorm>(ctx);
}

}  // namespace octet::kernels
