// MaxPool (1d/2d/3d, dilations), AveragePool, GlobalAveragePool: oneDNN pooling_v2_forward (optimized) and a
// window loop (reference). Both read the geometry from window_geometry(), which resolves auto_pad and
// ceil_mode and widens the end pads so the last window fits; with count_include_pad the divisor is then
// the full window, as in the ONNX reference implementation (PyTorch/onnxruntime stop counting at the
// explicit end pad instead: they differ only when ceil_mode adds a window hanging past it).
// MaxPool moves values without converting them, so it runs on u8/s8 tensors too.
#include <algorithm>
#include <limits>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

struct PoolSpec {
  dnnl::algorithm algorithm;
  WindowGeometry geometry;
};

PoolSpec read_spec(const KernelContext& ctx) {
  const Node& node = ctx.node;
  const Shape& x = ctx.inputs[0].dims;
  PoolSpec spec;
  if (node.op == "MaxPool") {
    require_types(ctx, 1, {DType::f32, DType::u8, DType::s8});
    spec.algorithm = dnnl::algorithm::pooling_max;
  } else {
    require_types(ctx, 1, {DType::f32});
    bool include_pad = node.attrs.get_int("count_include_pad", 0) != 0;
    spec.algorithm = include_pad ? dnnl::algorithm::pooling_avg_include_padding : dnnl::algorithm::pooling_avg_exclude_padding;
  }
  // GlobalAveragePool: one window over all spatial dims (no strides or pads attributes, so the defaults).
  std::vector<int64_t> kernel = node.op == "GlobalAveragePool" ? std::vector<int64_t>(x.begin() + 2, x.end())
                                                               : node.attrs.get_ints("kernel_shape");
  spec.geometry = window_geometry(node, x, kernel);
  return spec;
}

class DnnlPool : public DnnlKernel {
 public:
  explicit DnnlPool(const KernelContext& ctx) : DnnlKernel(ctx.engine) {
    using namespace dnnl;
    PoolSpec spec = read_spec(ctx);
    const WindowGeometry& g = spec.geometry;
    memory::dims dilations;
    for (int64_t d : g.dilations) dilations.push_back(d - 1);  // oneDNN counts the gaps
    memory::desc src = to_md(ctx.inputs[0]), dst = to_md(ctx.outputs[0]);
    pooling_v2_forward::desc desc(prop_kind::forward_inference, spec.algorithm, src, dst, to_dims(g.strides),
                                  to_dims(g.kernel), dilations, to_dims(g.pads_begin), to_dims(g.pads_end));
    pooling_v2_forward::primitive_desc pd(desc, base_attr(), engine_->engine);
    set_primitive(pooling_v2_forward(pd), pd);
    map_input(0, DNNL_ARG_SRC, src);
    map_output(0, DNNL_ARG_DST, dst);
  }
};

class ReferencePool : public PlainKernel {
 public:
  explicit ReferencePool(const KernelContext& ctx)
      : PlainKernel(ctx), spec_(read_spec(ctx)), in_(ctx.inputs[0]), out_(ctx.outputs[0]), in_index_(in_.dims.size()) {}

  void run() override {
    switch (in_.dtype) {
      case DType::u8: pool<uint8_t>(); break;
      case DType::s8: pool<int8_t>(); break;
      default: pool<float>(); break;
    }
  }

 private:
  // Each output element: max or mean over the window positions inside the input.
  template <typename T>
  void pool() {
    const WindowGeometry& g = spec_.geometry;
    const T* x = input<T>(0);
    T* y = output<T>(0);
    size_t spatial = g.kernel.size();
    int64_t window = 1;
    for (int64_t k : g.kernel) window *= k;
    bool is_max = spec_.algorithm == dnnl::algorithm::pooling_max;
    bool include_pad = spec_.algorithm == dnnl::algorithm::pooling_avg_include_padding;
    for_each_index(out_, [&](const std::vector<int64_t>& out, int64_t out_offset) {
      in_index_[0] = out[0];
      in_index_[1] = out[1];
      T max = std::numeric_limits<T>::lowest();
      double sum = 0;
      int64_t count = 0;
      for (int64_t k = 0; k < window; ++k) {
        bool inside = true;
        for (size_t s = spatial, rest = static_cast<size_t>(k); s-- > 0;) {
          int64_t ks = static_cast<int64_t>(rest) % g.kernel[s];
          rest /= static_cast<size_t>(g.kernel[s]);
          int64_t pos = out[2 + s] * g.strides[s] - g.pads_begin[s] + ks * g.dilations[s];
          inside = inside && pos >= 0 && pos < in_.dims[2 + s];
          in_index_[2 + s] = pos;
        }
        if (!inside) continue;
        T v = x[offset_of(in_, in_index_)];
        max = std::max(max, v);
        sum += v;
        ++count;
      }
      y[out_offset] = is_max ? max : static_cast<T>(sum / static_cast<double>(include_pad ? window : count));
    });
  }

  PoolSpec spec_;
  TensorDesc in_, out_;
  std::vector<int64_t> in_index_;
};

}  // namespace

std::unique_ptr<Kernel> make_pool(const KernelContext& ctx) {
  require_activation(ctx, 0);
  return std::make_unique<DnnlPool>(ctx);
}

std::unique_ptr<Kernel> make_pool_reference(const KernelContext& ctx) { return std::make_unique<ReferencePool>(ctx); }

}  // namespace octet::kernels
