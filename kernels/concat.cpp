// Concat along any axis: one strided copy per input into its window of the output when the step is small
// (it then runs on one thread, where oneDNN's simple:any concat moved ViT's class token and patches at a
// fifth of memcpy's speed), else oneDNN concat on the tensors' strided layouts; the reference copies each
// element to its shifted output index. Elements are moved, not converted, so every oneDNN dtype
// works as long as all inputs and the output share it and its quantization. Inputs may be constants.
#include <cstring>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

size_t read_axis(const KernelContext& ctx) {
  require_types(ctx, ctx.inputs.size(), kDnnlDTypes);
  int64_t rank = static_cast<int64_t>(ctx.outputs[0].dims.size());
  return static_cast<size_t>(normalize_axis(ctx.node, ctx.node.attrs.get_int("axis", 0), rank));
}

class DnnlConcat : public DnnlKernel {
 public:
  explicit DnnlConcat(const KernelContext& ctx) : DnnlKernel(ctx.engine) {
    int axis = static_cast<int>(read_axis(ctx));
    std::vector<dnnl::memory::desc> srcs;
    for (size_t i = 0; i < ctx.inputs.size(); ++i) {
      srcs.push_back(to_md(ctx.inputs[i]));
      int arg = DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i);
      // A constant part (ViT's class token before the patch embeddings) is copied once at Prepare.
      if (ctx.constants[i])
        set_owned(arg, reorder_constant(*engine_, to_md(dense_desc(ctx.inputs[i].dtype, ctx.inputs[i].dims)),
                                        ctx.constants[i]->bytes->data(), srcs.back()));
      else
        map_input(i, arg, srcs.back());
    }
    dnnl::memory::desc dst = to_md(ctx.outputs[0]);
    dnnl::concat::primitive_desc pd(dst, axis, srcs, engine_->engine, base_attr());
    set_primitive(dnnl::concat(pd), pd);
    map_output(0, DNNL_ARG_DST, dst);
  }
};

class ReferenceConcat : public PlainKernel {
 public:
  explicit ReferenceConcat(const KernelContext& ctx)
      : PlainKernel(ctx),
        axis_(read_axis(ctx)),
        srcs_(ctx.inputs),
        out_(ctx.outputs[0]),
        out_index_(out_.dims.size()) {}

  void run() override {
    size_t elem = dtype_size(out_.dtype);
    char* y = output<char>(0);
    int64_t start = 0;  // where input i begins along the axis
    for (size_t i = 0; i < srcs_.size(); ++i) {
      const char* x = input<char>(i);
      for_each_index(srcs_[i], [&](const std::vector<int64_t>& idx, int64_t offset) {
        out_index_ = idx;
        out_index_[axis_] += start;
        std::memcpy(y + offset_of(out_, out_index_) * elem, x + offset * elem, elem);
      });
      start += srcs_[i].dims[axis_];
    }
  }

 private:
  size_t axis_;
  std::vector<TensorDesc> srcs_;  // the inputs
  TensorDesc out_;
  std::vector<int64_t> out_index_;
};

}  // namespace

std::unique_ptr<Kernel> make_concat(const KernelContext& ctx) {
  const TensorDesc& out = ctx.outputs[0];
  if (out.elements() > kSmallStepElements) return std::make_unique<DnnlConcat>(ctx);
  size_t axis = read_axis(ctx);
  auto kernel = std::make_unique<StridedCopyKernel>(ctx);
  int64_t start = 0;  // where input i begins along the axis
  for (size_t i = 0; i < ctx.inputs.size(); ++i) {
    const TensorDesc& in = ctx.inputs[i];
    kernel->add(static_cast<int>(i), 0, 0, start * out.strides[axis],
                StridedCopy(dtype_size(in.dtype), in.dims, in.strides, out.strides));
    start += in.dims[axis];
  }
  return kernel;
}
std::unique_ptr<Kernel> make_concat_reference(const KernelContext& ctx) {
  return std::make_unique<ReferenceConcat>(ctx);
}

}  // namespace octet::kernels
