// MaxPool (1d/2d/3d, dilations), AveragePool, GlobalAveragePool: oneDNN pooling_v2_forward (optimized) and a
// window loop (reference). Both read the geometry from window_geometry(), which resolves auto_pad and
// ceil_mode and widens the end pads so the last window fits; with count_include_pad the divisor is then
// the full window, as in the ONNX reference implementation (PyTorch/onnxruntime stop counting at the
// explicit end pad instead: they differ only when ceil_mode adds a window hanging past it).
//
// Quantized pooling: the max commutes with x = (q - zero_point) * scale (scale > 0), and so does the mean, so
// the quantized average IS the average of the quantized values, rounded to an integer. An average's input
// and output carry the same quantization parameters, per tensor, and count_include_pad may not count padding
// when the zero point is not 0: the padded integer 0 would then stand for -zero_point * scale instead of the
// real 0 ONNX pads with. A MaxPool may requantize (graph/FORMAT.md): its output may be u8 or s8 with other
// per-tensor parameters, each pooled integer q becoming requantize_value(q) (graph/quantization.h: octet's
// Quantize of its Dequantize); the max commutes with that monotone map too, so pooling the integers and then
// mapping them is exactly Dequantize -> float MaxPool -> Quantize.
// Integer MaxPool: octet's own loop (IntegerMaxPool below) runs every requantizing MaxPool and the windows
// where it beats oneDNN's jit_int (integer_max_pool_is_faster); oneDNN the rest.
// Rounding: oneDNN sums in s32 and rounds the f32 mean to nearest even (its int8 JIT multiplies the sum by a
// f32 reciprocal of the divisor, its reference divides). The reference rounds sum / divisor in f32 to
// nearest even; that is the exact mean rounded half to even for windows below ~30000 elements, and the
// reciprocal can flip exact .5 ties of divisors such as 6 or 10 by one unit.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <type_traits>

#include "graph/ops.h"
#include "graph/quantization.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

struct PoolSpec {
  dnnl::algorithm algorithm;
  WindowGeometry geometry;
  bool requantize = false;  // a MaxPool whose output quantization differs from its input's
};

bool is_quantized(DType dtype) { return dtype == DType::u8 || dtype == DType::s8; }

// Pooling moves or averages quantized values without requantizing them.
void require_same_quantization(const KernelContext& ctx) {
  const QuantParams& in = ctx.inputs[0].quant;
  const QuantParams& out = ctx.outputs[0].quant;
  if (in != out)
    throw Error(node_label(ctx.node) + ": output 0 quantization (" + quant_params_str(out) +
                ") differs from input 0's (" + quant_params_str(in) + "); " + ctx.node.op + " does not requantize");
}

// A requantizing MaxPool (u8/s8 in, u8/s8 out, other parameters): one scale and zero point on each side.
void check_requantization(const Node& node, const TensorDesc& in, const TensorDesc& out) {
  if (!is_quantized(out.dtype))
    throw Error(node_label(node) + ": output 0 has dtype " + dtype_name(out.dtype) + "; a MaxPool on " +
                dtype_name(in.dtype) + " writes u8 or s8");
  require_per_tensor_params(node, in, "input 0", " for a MaxPool that requantizes");
  require_per_tensor_params(node, out, "output 0", " for a MaxPool that requantizes");
}

PoolSpec read_spec(const KernelContext& ctx) {
  const Node& node = ctx.node;
  const Shape& x = ctx.inputs[0].dims;
  const QuantParams& quant = ctx.inputs[0].quant;
  const bool quantized = is_quantized(ctx.inputs[0].dtype);
  PoolSpec spec;
  if (node.op == "MaxPool" && quantized && ctx.outputs.size() == 1 &&
      (ctx.inputs[0].dtype != ctx.outputs[0].dtype || ctx.inputs[0].quant != ctx.outputs[0].quant)) {
    check_requantization(node, ctx.inputs[0], ctx.outputs[0]);
    spec.requantize = true;
  } else {
    if (quantized) require_same_quantization(ctx);
    require_types(ctx, 1, {DType::f32, DType::u8, DType::s8});
  }
  bool include_pad = false;
  int32_t zero_point = 0;  // an average's input (per tensor)
  if (node.op == "MaxPool") {
    spec.algorithm = dnnl::algorithm::pooling_max;
  } else {
    if (quantized) zero_point = require_per_tensor_params(node, ctx.inputs[0], "input 0", " for " + node.op).zero_point;
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
  if (include_pad && quantized && padded && zero_point != 0)
    throw Error(node_label(node) + ": count_include_pad=1 with padding needs zero point 0 on a quantized input, got " +
                quant_params_str(quant) + " (the padded zeros would not be real zeros)");
  return spec;
}

class DnnlPool : public DnnlKernel {
 public:
  explicit DnnlPool(const KernelContext& ctx) : DnnlKernel(ctx.engine) {
    using namespace dnnl;
    PoolSpec spec = read_spec(ctx);
    if (spec.requantize) throw Error(node_label(ctx.node) + ": oneDNN's pooling does not requantize");
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
      : PlainKernel(ctx), spec_(read_spec(ctx)), in_(ctx.inputs[0]), out_(ctx.outputs[0]), in_index_(in_.dims.size()) {
    if (spec_.requantize) out_range_ = quantized_range(out_.dtype);
  }

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
    void* y_raw = output(0);
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
      if (spec_.requantize) {  // each element through octet's Dequantize then Quantize
        int32_t q = requantize_value(static_cast<int32_t>(max), in_.quant, out_.quant, out_range_);
        if (out_.dtype == DType::u8)
          static_cast<uint8_t*>(y_raw)[out_offset] = static_cast<uint8_t>(q);
        else
          static_cast<int8_t*>(y_raw)[out_offset] = static_cast<int8_t>(q);
        return;
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
  IntRange out_range_{0, 0};
};

// ---- Integer MaxPool: plain C++, OpenMP over output rows -------------------------------------------------
//
// u8/s8 in, u8/s8 out, any strides (the executor's NHWC is the fast case: the inner loops run over the
// contiguous channels, which the compiler vectorizes), 1 to 3 spatial dims (padded to D, H, W of size 1),
// any kernel, stride, padding and dilation. A requantizing pool maps each pooled integer through a
// 256-entry table built here with requantize_value(). The 2x2 stride-2 unpadded window of 2-D maps (Darknet,
// VGG) reads its two input rows directly.

struct PoolDim {
  int64_t in = 1, out = 1, kernel = 1, stride = 1, pad = 0, dilation = 1, in_stride = 0, out_stride = 0;

  // Kernel taps [lo, hi) of output position o that fall inside the input.
  void taps(int64_t o, int64_t& lo, int64_t& hi) const {
    const int64_t start = o * stride - pad;
    lo = start >= 0 ? 0 : (-start + dilation - 1) / dilation;
    hi = in - 1 - start < 0 ? 0 : std::min(kernel, (in - 1 - start) / dilation + 1);
  }
};

// bytes[i] = table[bytes[i]] for n bytes.
using MapBytes = void (*)(const uint8_t* table, uint8_t* bytes, int64_t n);

void map_bytes_plain(const uint8_t* table, uint8_t* bytes, int64_t n) {
  for (int64_t i = 0; i < n; ++i) bytes[i] = table[bytes[i]];
}

// 64 lookups at a time: two 128-entry permutes (index bits 0-6) chosen by bit 7.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void map_bytes_vbmi(const uint8_t* table, uint8_t* bytes,
                                                                           int64_t n) {
  const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
  const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i idx = _mm512_loadu_si512(bytes + i);
    const __m512i low = _mm512_permutex2var_epi8(t0, idx, t1), high = _mm512_permutex2var_epi8(t2, idx, t3);
    _mm512_storeu_si512(bytes + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), low, high));
  }
  map_bytes_plain(table, bytes + i, n - i);
}

template <typename T, typename U>
class IntegerMaxPool : public PlainKernel {
 public:
  IntegerMaxPool(const KernelContext& ctx, const WindowGeometry& g, bool requantize) : PlainKernel(ctx) {
    const TensorDesc &x = ctx.inputs[0], &y = ctx.outputs[0];
    const size_t spatial = g.kernel.size();
    if (spatial < 1 || spatial > 3)
      throw Error(node_label(ctx.node) + ": the integer MaxPool takes 1 to 3 spatial dims, got " +
                  std::to_string(spatial));
    batch_ = x.dims[0];
    channels_ = x.dims[1];
    x_batch_ = x.strides[0];
    y_batch_ = y.strides[0];
    x_channel_ = x.strides[1];
    y_channel_ = y.strides[1];
    for (size_t s = 0; s < spatial; ++s) {
      PoolDim& d = dims_[3 - spatial + s];
      d = {x.dims[2 + s],   y.dims[2 + s],  g.kernel[s],      g.strides[s],
           g.pads_begin[s], g.dilations[s], x.strides[2 + s], y.strides[2 + s]};
    }
    contiguous_ = x_channel_ == 1 && y_channel_ == 1;
    const PoolDim &d = dims_[0], &h = dims_[1], &w = dims_[2];
    pairs_ = contiguous_ && d.kernel == 1 && d.in == 1 && h.kernel == 2 && w.kernel == 2 && h.stride == 2 &&
             w.stride == 2 && h.pad == 0 && w.pad == 0 && h.dilation == 1 && w.dilation == 1 && 2 * h.out <= h.in &&
             2 * w.out <= w.in;
    lookup_ = requantize;
    if (requantize) {
      const IntRange range = quantized_range(y.dtype);
      for (int v = 0; v < 256; ++v) {
        const int32_t q = std::is_signed<T>::value ? static_cast<int8_t>(v) : v;
        table_[static_cast<size_t>(v)] =
            static_cast<uint8_t>(static_cast<U>(requantize_value(q, x.quant, y.quant, range)));
      }
      if (__builtin_cpu_supports("avx512vbmi")) map_bytes_ = map_bytes_vbmi;
    }
  }

  void run() override {
    const T* x = input<T>(0);
    U* y = output<U>(0);
    const PoolDim &d = dims_[0], &h = dims_[1];
    const int64_t rows = batch_ * d.out * h.out;
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t oh = row % h.out, od = (row / h.out) % d.out, n = row / (h.out * d.out);
      U* y_row = y + n * y_batch_ + od * d.out_stride + oh * h.out_stride;
      const T* x_image = x + n * x_batch_;
      if (pairs_)
        pool_pairs(x_image + 2 * oh * h.in_stride, y_row);
      else
        pool_row(x_image, od, oh, y_row);
      if (lookup_) requantize_row(y_row);
    }
  }

  std::string implementation() const override {
    return std::string("octet_max_pool_int") + (pairs_ ? ":2x2" : "") + (lookup_ ? ":requantize" : "");
  }

 private:
  static constexpr int64_t kChunk = 256;  // channels pooled at a time in a local accumulator

  // The 2x2 stride-2 window: input rows r0, r0 + one row; the max written straight to the output.
  void pool_pairs(const T* r0, U* y_row) const {
    const PoolDim &h = dims_[1], &w = dims_[2];
    const T* r1 = r0 + h.in_stride;
    for (int64_t ow = 0; ow < w.out; ++ow) {
      const int64_t at = 2 * ow * w.in_stride;
      max4(r0 + at, r0 + at + w.in_stride, r1 + at, r1 + at + w.in_stride,
           reinterpret_cast<T*>(y_row + ow * w.out_stride), channels_);
    }
  }

  static void max4(const T* __restrict a, const T* __restrict b, const T* __restrict e, const T* __restrict f,
                   T* __restrict y, int64_t n) {
    for (int64_t c = 0; c < n; ++c) y[c] = std::max(std::max(a[c], b[c]), std::max(e[c], f[c]));
  }

  // Any window: the taps inside the input, per output pixel of the row.
  void pool_row(const T* x_image, int64_t od, int64_t oh, U* y_row) const {
    const PoolDim &d = dims_[0], &h = dims_[1], &w = dims_[2];
    int64_t d_lo, d_hi, h_lo, h_hi, w_lo, w_hi;
    d.taps(od, d_lo, d_hi);
    h.taps(oh, h_lo, h_hi);
    const int64_t x_channel = x_channel_;
    for (int64_t ow = 0; ow < w.out; ++ow) {
      w.taps(ow, w_lo, w_hi);
      for (int64_t c0 = 0; c0 < channels_; c0 += kChunk) {
        const int64_t cn = std::min(kChunk, channels_ - c0);
        T acc[kChunk];
        for (int64_t c = 0; c < cn; ++c) acc[c] = std::numeric_limits<T>::lowest();
        for (int64_t kd = d_lo; kd < d_hi; ++kd)
          for (int64_t kh = h_lo; kh < h_hi; ++kh) {
            const T* src_row = x_image + (od * d.stride - d.pad + kd * d.dilation) * d.in_stride +
                               (oh * h.stride - h.pad + kh * h.dilation) * h.in_stride + c0 * x_channel;
            for (int64_t kw = w_lo; kw < w_hi; ++kw) {
              const T* src = src_row + (ow * w.stride - w.pad + kw * w.dilation) * w.in_stride;
              if (x_channel == 1)
                max_into(acc, src, cn);
              else
                for (int64_t c = 0; c < cn; ++c) acc[c] = std::max(acc[c], src[c * x_channel]);
            }
          }
        store(acc, cn, y_row + ow * w.out_stride + c0 * y_channel_);
      }
    }
  }

  static void max_into(T* __restrict acc, const T* __restrict src, int64_t n) {
    for (int64_t c = 0; c < n; ++c) acc[c] = std::max(acc[c], src[c]);
  }

  // The pooled integers, still of the input's type (a requantizing pool maps them after the row).
  void store(const T* acc, int64_t cn, U* dst) const {
    T* out = reinterpret_cast<T*>(dst);
    if (contiguous_)
      std::copy(acc, acc + cn, out);
    else
      for (int64_t c = 0; c < cn; ++c) out[c * y_channel_] = acc[c];
  }

  // Each pooled integer of the row through the table, in place.
  void requantize_row(U* y_row) const {
    const PoolDim& w = dims_[2];
    uint8_t* bytes = reinterpret_cast<uint8_t*>(y_row);
    if (contiguous_ && w.out_stride == channels_) {
      map_bytes_(table_, bytes, w.out * channels_);
      return;
    }
    for (int64_t ow = 0; ow < w.out; ++ow)
      for (int64_t c = 0; c < channels_; ++c) {
        uint8_t& v = bytes[ow * w.out_stride + c * y_channel_];
        v = table_[v];
      }
  }

  int64_t batch_ = 0, channels_ = 0, x_batch_ = 0, y_batch_ = 0, x_channel_ = 0, y_channel_ = 0;
  PoolDim dims_[3];
  bool contiguous_ = false, pairs_ = false, lookup_ = false;
  alignas(64) uint8_t table_[256] = {};  // the requantized integer (as a byte) of each input byte
  MapBytes map_bytes_ = map_bytes_plain;
};

template <typename T>
std::unique_ptr<Kernel> integer_max_pool_from(const KernelContext& ctx, const WindowGeometry& g, bool requantize) {
  if (ctx.outputs[0].dtype == DType::u8) return std::make_unique<IntegerMaxPool<T, uint8_t>>(ctx, g, requantize);
  return std::make_unique<IntegerMaxPool<T, int8_t>>(ctx, g, requantize);
}

std::unique_ptr<Kernel> make_integer_max_pool(const KernelContext& ctx, const PoolSpec& spec) {
  if (ctx.inputs[0].dtype == DType::u8) return integer_max_pool_from<uint8_t>(ctx, spec.geometry, spec.requantize);
  return integer_max_pool_from<int8_t>(ctx, spec.geometry, spec.requantize);
}

// Where the integer MaxPool beats oneDNN's jit_int (measured on this machine, RESULTS.md): the 2x2 stride-2
// unpadded window on NHWC maps of up to 256 channels (Darknet's 16-32 channel maps run 4-6x faster); oneDNN
// keeps wider maps and every other window (ResNet's 3x3 stride 2 took the plain loop 1.8x longer).
bool integer_max_pool_is_faster(const TensorDesc& x, const TensorDesc& y, const WindowGeometry& g) {
  auto all = [](const std::vector<int64_t>& v, int64_t value) {
    return std::all_of(v.begin(), v.end(), [&](int64_t e) { return e == value; });
  };
  return x.dims.size() == 4 && x.strides[1] == 1 && y.strides[1] == 1 && x.dims[1] <= 256 && all(g.kernel, 2) &&
         all(g.strides, 2) && all(g.pads_begin, 0) && all(g.pads_end, 0) && all(g.dilations, 1);
}

}  // namespace

std::unique_ptr<Kernel> make_pool(const KernelContext& ctx) {
  require_activation(ctx, 0);
  PoolSpec spec = read_spec(ctx);
  if (ctx.node.op == "MaxPool" && is_quantized(ctx.inputs[0].dtype) &&
      (spec.requantize || integer_max_pool_is_faster(ctx.inputs[0], ctx.outputs[0], spec.geometry)))
    return make_integer_max_pool(ctx, spec);
  return std::make_unique<DnnlPool>(ctx);
}

std::unique_ptr<Kernel> make_pool_reference(const KernelContext& ctx) { return std::make_unique<ReferencePool>(ctx); }

}  // namespace octet::kernels
