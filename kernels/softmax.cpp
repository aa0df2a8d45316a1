// Softmax along one axis (opset-13 semantics): oneDNN softmax_v2_forward (optimized, separate src and dst
// layouts) and a max-subtracted loop over each line along the axis (reference).
#include <algorithm>
#include <cmath>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

int64_t read_axis(const KernelContext& ctx) {
  require_types(ctx, 1, {DType::f32});
  return normalize_axis(ctx.node, ctx.node.attrs.get_int("axis", -1), static_cast<int64_t>(ctx.inputs[0].dims.size()));
}

class DnnlSoftmax : public DnnlKernel {
 public:
  explicit DnnlSoftmax(const KernelContext& ctx) : DnnlKernel(ctx.engine) {
    using namespace dnnl;
    int axis = static_cast<int>(read_axis(ctx));
    memory::desc src = to_md(ctx.inputs[0]), dst = to_md(ctx.outputs[0]);
    softmax_v2_forward::desc desc(prop_kind::forward_inference, algorithm::softmax_accurate, src, dst, axis);
    softmax_v2_forward::primitive_desc pd(desc, base_attr(), engine_->engine);
    set_primitive(softmax_v2_forward(pd), pd);
    map_input(0, DNNL_ARG_SRC, src);
    map_output(0, DNNL_ARG_DST, dst);
  }
};

class ReferenceSoftmax : public PlainKernel {
 public:
  explicit ReferenceSoftmax(const KernelContext& ctx)
      : PlainKernel(ctx), axis_(static_cast<size_t>(read_axis(ctx))), in_(ctx.inputs[0]), out_(ctx.outputs[0]) {
    lines_ = in_;  // one element per line: the axis collapsed to its first index
    lines_.dims[axis_] = 1;
  }

  void run() override {
    const float* x = input<float>(0);
    float* y = output<float>(0);
    int64_t n = in_.dims[axis_], in_step = in_.strides[axis_], out_step = out_.strides[axis_];
    for_each_index(lines_, [&](const std::vector<int64_t>& idx, int64_t in_offset) {
      const float* line = x + in_offset;
      float* result = y + offset_of(out_, idx);
      float max = -INFINITY;
      for (int64_t i = 0; i < n; ++i) max = std::max(max, line[i * in_step]);
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(line[i * in_step] - max));
      for (int64_t i = 0; i < n; ++i)
        result[i * out_step] = static_cast<float>(std::exp(static_cast<double>(line[i * in_step] - max)) / sum);
    });
  }

 private:
  size_t axis_;
  TensorDesc in_, out_, lines_;
};

}  // namespace

std::unique_ptr<Kernel> make_softmax(const KernelContext& ctx) {
  require_activation(ctx, 0);
  return std::make_unique<DnnlSoftmax>(ctx);
}

std::unique_ptr<Kernel> make_softmax_reference(const KernelContext& ctx) {
  return std::make_unique<ReferenceSoftmax>(ctx);
}

}  // namespace octet::kernels
