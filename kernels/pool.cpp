// MaxPool (1d/2d/3d, dilations), AveragePool, GlobalAveragePool: oneDNN pooling_v2_forward (optimized) and a
// window loop (reference). Both read the geometry from window_geometry(), which resolves auto_pad and
// ceil_mode and widens the end pads so the last window fits; with count_include_pad the divisor is then
// the full window, as in the ONNX reference implementation (PyTorch/onnxruntime stop counting at the
// explicit end pad instead: they differ only when ceil_mode adds a window hanging past it).
//
// Quantized pooling: on u8/s8 the input and output must carry the same quantization parameters (pooling does
// not requantize). The max commutes with x = (q - zero_point) * scale (scale > 0), and so does the mean, so
// the quantized average IS the average of the quantized values, rounded to an integer. Averages need
// per-tensor parameters, and count_include_pad may not count padding when the zero point is not 0: the
// padded integer 0 would then stand for -zero_point * scale instead of the real 0 ONNX pads with.
// Rounding: oneDNN sums in s32 and rounds the f32 mean to nearest even (its int8 JIT multiplies the sum by a
// f32 reciprocal of the divisor, its reference divides). The reference rounds sum / divisor in f32 to
// nearest even; that is the exact mean rounded half to even for windows below ~30000 elements, and the
// reciprocal can flip exact .5 ties of divisors such as 6 or 10 by one unit.
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <type_traits>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

struct PoolSpec {
  dnnl::algorithm algorithm;
  WindowGeometry geometry;
};

bool is_quantized(DType dtype) { return dtype == DType::u8 || dtype == DType::s8; }

// "scale 0.1, zero point 3"; all values when per channel.
std::string quant_str(const QuantParams& quant) {
  if (!quant.present()) return "no quantization parameters";
  std::ostringstream s;
  s << "scale";
  for (float scale : quant.scales) s << " " << scale;
  s << ", zero point";
  for (int32_t zero_point : quant.zero_points) s << " " << zero_point;
  if (quant.axis >= 0) s << ", axis " << quant.axis;
  return s.str();
}

// Pooling moves or averages quantized values without requantizing them.
void require_same_quantization(const KernelContext& ctx) {
  const QuantParams& in = ctx.inputs[0].quant;
  const QuantParams& out = ctx.outputs[0].quant;
  if (in.scales != out.scales || in.zero_points != out.zero_points || in.axis != out.axis)
    throw Error(node_label(ctx.node) + ": output 0 quantization (" + quant_str(out) + ") differs from input 0's (" +
                quant_str(in) + "); " + ctx.node.op + " does not requantize");
}

PoolSpec read_spec(const KernelContext& ctx) {
  const Node& node = ctx.node;
  const Shape& x = ctx.inputs[0].dims;
  const QuantParams& quant = ctx.inputs[0].quant;
  const bool quantized = is_quantized(ctx.inputs[0].dtype);
  if (quantized) require_same_quantization(ctx);
  require_types(ctx, 1, {DType::f32, DType::u8, DType::s8});
  PoolSpec spec;
  bool include_pad = false;
  if (node.op == "MaxPool") {
    spec.algorithm = dnnl::algorithm::pooling_max;
  } else {
    if (quantized && (quant.axis != -1 || quant.scales.size() != 1 || quant.zero_points.size() != 1))
      throw Error(node_label(node) + ": " + node.op + " on dtype " + dtype_name(ctx.inputs[0].dtype) +
                  " needs per-tensor quantization parameters (one scale, one zero point) on input 0, got " +
                  quant_str(quant));
    include_pad = node.attrs.get_int("count_include_pad", 0) != 0;
    spec.algorithm =
        include_pad ? dnnl::algorithm::pooling_avg_include_padding : dnnl::algorithm::pooling_avg_exclude_padding;
  }
  // GlobalAveragePool: one window over all spatial dims (no strides or pads attributes, so the defaults).
  std::vector<int64_t> kernel = node.op == "GlobalAveragePool" ? std::vector<int64_t>(x.begin() + 2, x.end())
                                                               : node.attrs.get_ints("kernel_shape");
  spec.geometry = window_geometry(node, x, kernel);
  const WindowGeometry& g = spec.geometry;
  const bool padded = std::any_of(g.pads_begin.begin(), g.pads_begin.end(), [](int64_t p) { return p > 0; }) ||
                      std::any_of(g.pads_end.begin(), g.pads_end.end(), [](int64_t p) { return p > 0; });
  if (include_pad && quantized && padded && quant.zero_points[0] != 0)
    throw Error(node_label(node) + ": count_include_pad=1 with padding needs zero point 0 on a quantized input, got " +
                quant_str(quant) + " (the padded zeros would not be real zeros)");
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
      y[out_offset] = is_max ? max : mean<T>(sum, include_pad ? window : count);
    });
  }

  // f32: the mean in double. u8/s8: sum / divisor in f32 rounded to nearest even, as oneDNN (see the header).
  template <typename T>
  static T mean(double sum, int64_t divisor) {
    if constexpr (std::is_floating_point<T>::value) return static_cast<T>(sum / static_cast<double>(divisor));
    return static_cast<T>(std::nearbyint(static_cast<float>(sum) / static_cast<float>(divisor)));
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
