// Softmax along one axis (opset-13 semantics): oneDNN softmax_v2_forward (optimized, separate src and dst
// layouts) and a max-subtracted loop over each line along the axis (reference). The output may be u8 (or s8)
// with one scale and zero point 0: the probabilities computed in float are written quantized, p / scale
// rounded, for an INT8 MatMul to read (attention's softmax V) without a separate Quantize pass.
#include <algorithm>
#include <cmath>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"
#include "kernels/quantized_linear.h"

namespace octet::kernels {
namespace {

int64_t read_axis(const KernelContext& ctx) {
  if (ctx.inputs[0].dtype != DType::f32)
    throw Error(node_label(ctx.node) + ": input is " + dtype_name(ctx.inputs[0].dtype) + ", Softmax reads f32");
  return normalize_axis(ctx.node, ctx.node.attrs.get_int("axis", -1), static_cast<int64_t>(ctx.inputs[0].dims.size()));
}

// The scale of a quantized output (1 for f32). Throws Error naming the node for other dtypes or parameters.
float read_output_scale(const KernelContext& ctx) {
  const TensorDesc& out = ctx.outputs[0];
  if (out.dtype == DType::f32) return 1.0f;
  if (out.dtype != DType::u8 && out.dtype != DType::s8)
    throw Error(node_label(ctx.node) + ": output is " + dtype_name(out.dtype) + ", Softmax writes f32, u8 or s8");
  const PerTensorQuant q = require_per_tensor_params(ctx.node, out, "output 0", " for a Softmax");
  if (q.zero_point != 0)
    throw Error(node_label(ctx.node) + ": output 0 zero point " + std::to_string(q.zero_point) +
                ": a quantized Softmax writes probabilities in [0, 1], with zero point 0");
  return q.scale;
}

class DnnlSoftmax : public DnnlKernel {
 public:
  explicit DnnlSoftmax(const KernelContext& ctx) : DnnlKernel(ctx.engine) {
    using namespace dnnl;
    int axis = static_cast<int>(read_axis(ctx));
    memory::desc src = to_md(ctx.inputs[0]), dst = to_md(ctx.outputs[0]);
    softmax_v2_forward::desc desc(prop_kind::forward_inference, algorithm::softmax_accurate, src, dst, axis);
    dnnl::primitive_attr attr = base_attr();
    const float scale = read_output_scale(ctx);
    if (ctx.outputs[0].dtype != DType::f32) attr.set_output_scales(0, {1.0f / scale});
    softmax_v2_forward::primitive_desc pd(desc, attr, engine_->engine);
    set_primitive(softmax_v2_forward(pd), pd);
    map_input(0, DNNL_ARG_SRC, src);
    map_output(0, DNNL_ARG_DST, dst);
  }
};

class ReferenceSoftmax : public PlainKernel {
 public:
  explicit ReferenceSoftmax(const KernelContext& ctx)
      : PlainKernel(ctx),
        axis_(static_cast<size_t>(read_axis(ctx))),
        scale_(read_output_scale(ctx)),
        in_(ctx.inputs[0]),
        out_(ctx.outputs[0]) {
    lines_ = in_;  // one element per line: the axis collapsed to its first index
    lines_.dims[axis_] = 1;
  }

  void run() override {
    const float* x = input<float>(0);
    void* y = output<void>(0);
    int64_t n = in_.dims[axis_], in_step = in_.strides[axis_], out_step = out_.strides[axis_];
    for_each_index(lines_, [&](const std::vector<int64_t>& idx, int64_t in_offset) {
      const float* line = x + in_offset;
      const int64_t result = offset_of(out_, idx);
      float max = -INFINITY;
      for (int64_t i = 0; i < n; ++i) max = std::max(max, line[i * in_step]);
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(line[i * in_step] - max));
      for (int64_t i = 0; i < n; ++i) {
        const float p = static_cast<float>(std::exp(static_cast<double>(line[i * in_step] - max)) / sum);
        const int64_t at = result + i * out_step;
        if (out_.dtype == DType::f32)
          static_cast<float*>(y)[at] = p;
        else if (out_.dtype == DType::u8)
          static_cast<uint8_t*>(y)[at] = static_cast<uint8_t>(requantize(p / scale_, 0, DType::u8));
        else
          static_cast<int8_t*>(y)[at] = static_cast<int8_t>(requantize(p / scale_, 0, DType::s8));
      }
    });
  }

 private:
  size_t axis_;
  float scale_;
  TensorDesc in_, out_, lines_;
};

}  // namespace

// A Softmax writing u8 (INT8 attention) gains nothing from a second thread on attention's small score
// matrices; the float one kept its two-thread speed-up (an exp per element).
Threading softmax_threading(const KernelContext& ctx) {
  const bool quantized_out = !ctx.outputs.empty() && ctx.outputs[0].dtype != DType::f32;
  return quantized_out ? Threading::one_when_small_output : Threading::all;
}

std::unique_ptr<Kernel> make_softmax(const KernelContext& ctx) {
  require_activation(ctx, 0);
  return std::make_unique<DnnlSoftmax>(ctx);
}

std::unique_ptr<Kernel> make_softmax_reference(const KernelContext& ctx) {
  return std::make_unique<ReferenceSoftmax>(ctx);
}

}  // namespace octet::kernels
