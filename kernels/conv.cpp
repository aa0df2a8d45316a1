// Conv: oneDNN convolution (optimized) and a direct loop (reference), both with the fused post-ops
// the converter attaches: act (relu | clip | leaky_relu | hard_sigmoid | hard_swish | gelu) on the conv result, an
// optional residual sum (input 3), then sum_act. Float, weight-only INT8 (s8 weights, f32 activations) and INT8 (u8/s8
// activations, see quantized_linear.h). Weights and bias are constants, reordered once into the layout
// oneDNN picks (format_tag::any: an explicit weights tag sends int8 convs to the far slower ref_int8; see
// RESULTS.md, Design measurements).
#include <algorithm>
#include <cmath>
#include <cstring>

#include <omp.h>

#include "graph/fused_activation.h"
#include "graph/ops.h"
#include "graph/quantization.h"
#include "kernels/dnnl_common.h"
#include "kernels/fused_activation.h"
#include "kernels/ops.h"
#include "kernels/quantized_linear.h"

namespace octet::kernels {
namespace {

// What both implementations need to know about one Conv node.
struct ConvSpec {
  WindowGeometry geometry;
  int64_t group = 1, out_channels = 0;
  bool has_bias = false, has_sum = false;
  Activation act, sum_act;  // in the dst-scaled domain (see kernels/fused_activation.h)
  LinearQuant quant;
  DType dst_dtype = DType::f32;
};

ConvSpec read_spec(const KernelContext& ctx) {
  const Node& node = ctx.node;
  const TensorDesc& w = ctx.inputs[1];
  if (!ctx.constants[1]) throw Error(node_label(node) + ": weights (input 1) must be a constant");
  ConvSpec spec;
  spec.geometry = window_geometry(node, ctx.inputs[0].dims, Shape(w.dims.begin() + 2, w.dims.end()));
  spec.group = node.attrs.get_int("group", 1);
  spec.out_channels = w.dims[0];
  spec.has_bias = node.inputs.size() > 2 && !node.inputs[2].empty();
  if (spec.has_bias && !ctx.constants[2]) throw Error(node_label(node) + ": bias (input 2) must be a constant");
  spec.has_sum = node.inputs.size() > 3 && !node.inputs[3].empty();
  spec.quant = read_linear_quant(ctx, spec.out_channels, 3);
  spec.dst_dtype = ctx.outputs[0].dtype;
  if (spec.has_bias) {
    DType b = ctx.inputs[2].dtype;
    if (!(b == DType::f32 || (spec.quant.quantized && b == DType::s32)))
      throw Error(node_label(node) + ": bias is " + dtype_name(b) + "; expected f32, or s32 for a quantized conv");
  }
  spec.act = read_activation(node, "act");
  spec.sum_act = read_activation(node, "sum_act");
  for (Activation* a : {&spec.act, &spec.sum_act}) *a = scaled_activation(*a, spec.quant.dst_scale);
  return spec;
}

// oneDNN's grouped weights: [G, OC/G, IC/G, spatial...].
dnnl::memory::dims weight_dims(const ConvSpec& spec, const Shape& dims) {
  dnnl::memory::dims d = to_dims(dims);
  if (spec.group > 1) {
    d[0] /= spec.group;
    d.insert(d.begin(), spec.group);
  }
  return d;
}

// Reads element `offset` of a u8/s8/f32 buffer as a double.
double load(const void* data, DType dtype, int64_t offset) {
  switch (dtype) {
    case DType::u8: return static_cast<const uint8_t*>(data)[offset];
    case DType::s8: return static_cast<const int8_t*>(data)[offset];
    case DType::f32: return static_cast<const float*>(data)[offset];
    default: throw Error(std::string("conv reference cannot read ") + dtype_name(dtype));
  }
}

// Writes y (in the dst-scaled domain) as the output dtype: f32 as is, u8/s8 requantized.
void store_output(void* y, DType dtype, int32_t dst_zp, int64_t offset, float value) {
  switch (dtype) {
    case DType::f32: static_cast<float*>(y)[offset] = value; break;
    case DType::u8:
      static_cast<uint8_t*>(y)[offset] = static_cast<uint8_t>(requantize(value, dst_zp, DType::u8));
      break;
    case DType::s8: static_cast<int8_t*>(y)[offset] = static_cast<int8_t>(requantize(value, dst_zp, DType::s8)); break;
    default: throw Error("conv cannot write this dtype");
  }
}

// The output channels of a 2-D quantized conv whose weights w - zero_point reach beyond s8 (see
// quantized_linear.h): oneDNN computed them with clamped weights; recompute() overwrites them with the exact
// int32 accumulation, then the same output scale, activation, residual sum and rounding as oneDNN's.
// The work is the output rows of those channels, in (image, row, channel) order (a pixel row's channels one
// after another, while its input and output lines are in cache), split in equal contiguous shares over the
// step's OpenMP threads (each a band of image rows), each with its own accumulators in the kernel's scratch.
// Per row, two ways:
// - many input channels per group in NHWC (pointwise and full convs): per tap, the range of output columns whose
//   input column is inside (so the inner loops have no bounds checks), each an int16 dot product over the
//   contiguous input channels (the compiler's pmaddwd), the zero point folded in via the tap's weight sum; with
//   one group and no dilation, a whole kernel row's kw x ic contiguous inputs in one dot;
// - few (depthwise, the first layer's 3 channels): each input row is gathered once per thread as x - zero point
//   (padding 0) into int16 phase rows (column k * stride + p in phase p) and kept while the next output rows
//   read it, so every tap is a contiguous multiply-add along the output columns.
class ExactConvChannels {
 public:
  ExactConvChannels(const KernelContext& ctx, const ConvSpec& spec, const ClampedWeights& w, int threads)
      : spec_(spec),
        src_(ctx.inputs[0]),
        dst_(ctx.outputs[0]),
        channels_(w.exact_channels),
        threads_(std::max(threads, 1)) {
    if (dst_.dtype == DType::u8 || dst_.dtype == DType::s8) range_ = quantized_range(dst_.dtype);
    const WindowGeometry& g = spec.geometry;
    kh_ = g.kernel[0];
    kw_ = g.kernel[1];
    ic_per_group_ = src_.dims[1] / spec.group;
    oc_per_group_ = spec.out_channels / spec.group;
    channel_dot_ = src_.strides[1] == 1 && ic_per_group_ >= 8;
    window_dot_ = channel_dot_ && spec.group == 1 && src_.strides[3] == ic_per_group_ && g.dilations[1] == 1;
    // Each channel's weights as [kh][kw][ic] (int16: w - zero point is within [-255, 255]) and per tap their sum.
    for (const std::vector<int32_t>& exact : w.exact) {
      std::vector<int16_t> t(exact.size());
      std::vector<int32_t> sums(static_cast<size_t>(kh_ * kw_), 0);
      for (int64_t ic = 0; ic < ic_per_group_; ++ic)
        for (int64_t k = 0; k < kh_ * kw_; ++k) {
          int32_t v = exact[static_cast<size_t>(ic * kh_ * kw_ + k)];
          t[static_cast<size_t>(k * ic_per_group_ + ic)] = static_cast<int16_t>(v);
          sums[static_cast<size_t>(k)] += v;
        }
      std::vector<int32_t> rows(static_cast<size_t>(kh_), 0);  // per kernel row: the sum of its kw taps
      for (int64_t k = 0; k < kh_ * kw_; ++k) rows[static_cast<size_t>(k / kw_)] += sums[static_cast<size_t>(k)];
      weights_.push_back(std::move(t));
      tap_sums_.push_back(std::move(sums));
      row_sums_.push_back(std::move(rows));
    }
    for (int64_t c : channels_) bias_.push_back(spec.has_bias ? ctx.constants[2]->data<int32_t>()[c] : 0);
    if (spec.has_sum) {
      sum_desc_ = ctx.inputs[3];
      saved_sum_.resize(channels_.size() * static_cast<size_t>(dst_.dims[0] * dst_.dims[2] * dst_.dims[3]));
    }
    const int64_t out_w = dst_.dims[3], sw = g.strides[1];
    phase_len_ = out_w + (kw_ - 1) * g.dilations[1] / sw;
    // Per phase p, the phase columns k whose input column k * sw + p - pad is inside: [phase_lo_, phase_hi_).
    for (int64_t p = 0; p < sw; ++p) {
      const int64_t first = g.pads_begin[1] - p, last = g.pads_begin[1] + src_.dims[3] - 1 - p;  // k * sw in
      int64_t lo = first <= 0 ? 0 : (first + sw - 1) / sw, hi = last < 0 ? 0 : last / sw + 1;
      hi = std::min(hi, phase_len_);
      phase_lo_.push_back(std::min(lo, hi));
      phase_hi_.push_back(hi);
    }
    // Per thread: accumulators and values of one row, and (gathered path) the cache of gathered input rows: kh
    // slots per input group the exact channels read (their tags, then their rows).
    if (!channel_dot_) {
      std::vector<int64_t> groups;
      for (int64_t c : channels_) {
        const int64_t group = c / oc_per_group_;
        auto found = std::find(groups.begin(), groups.end(), group);
        group_slot_.push_back(found - groups.begin());
        if (found == groups.end()) groups.push_back(group);
      }
      slots_ = kh_ * static_cast<int64_t>(groups.size());
    }
    values_at_ = aligned(static_cast<size_t>(out_w) * sizeof(int32_t));
    tags_at_ = values_at_ + aligned(static_cast<size_t>(out_w) * sizeof(float));
    rows_at_ = tags_at_ + aligned(static_cast<size_t>(slots_) * sizeof(int64_t));
    per_thread_bytes_ =
        rows_at_ + aligned(static_cast<size_t>(slots_ * ic_per_group_ * sw * phase_len_) * sizeof(int16_t));
    const int64_t rows = static_cast<int64_t>(channels_.size()) * dst_.dims[0] * dst_.dims[2];
    work_ = rows * out_w * kh_ * kw_ * ic_per_group_;
  }

  // Scratch for run(): one block per thread, 64-byte aligned (bind_scratch aligns the address it is given).
  size_t scratch_bytes() const { return static_cast<size_t>(threads_) * per_thread_bytes_ + kAlign; }
  void bind_scratch(void* scratch) {
    uintptr_t p = reinterpret_cast<uintptr_t>(scratch);
    scratch_ = reinterpret_cast<uint8_t*>((p + kAlign - 1) / kAlign * kAlign);
  }

  // Before the conv: the residual of these channels, which the in-place sum overwrites.
  void save_residual(const void* sum) {
    if (!spec_.has_sum) return;
    size_t i = 0;
    for (int64_t c : channels_)
      for (int64_t n = 0; n < dst_.dims[0]; ++n)
        for (int64_t h = 0; h < dst_.dims[2]; ++h)
          for (int64_t w = 0; w < dst_.dims[3]; ++w)
            saved_sum_[i++] = static_cast<float>(load(sum, sum_desc_.dtype, offset(sum_desc_, n, c, h, w)));
  }

  void recompute(const void* x, void* y) {
    if (src_.dtype == DType::u8)
      split(static_cast<const uint8_t*>(x), y);
    else
      split(static_cast<const int8_t*>(x), y);
  }

 private:
  static constexpr size_t kAlign = 64;
  // Below this many multiply-adds a second thread costs more than it saves (the pool wakes up in microseconds).
  static constexpr int64_t kParallelWork = int64_t(1) << 14;
  static size_t aligned(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

  static int64_t offset(const TensorDesc& d, int64_t n, int64_t c, int64_t h, int64_t w) {
    return n * d.strides[0] + c * d.strides[1] + h * d.strides[2] + w * d.strides[3];
  }

  // Thread t of `count` takes the rows [rows * t / count, rows * (t + 1) / count).
  template <typename T>
  void split(const T* x, void* y) {
    const int64_t rows = static_cast<int64_t>(channels_.size()) * dst_.dims[0] * dst_.dims[2];
    const int threads = work_ >= kParallelWork ? std::min(threads_, omp_get_max_threads()) : 1;
    if (threads <= 1 || rows < 2) {
      run_rows(x, y, 0, rows, 0);
      return;
    }
#pragma omp parallel num_threads(threads)
    {
      const int64_t t = omp_get_thread_num(), count = omp_get_num_threads();
      run_rows(x, y, rows * t / count, rows * (t + 1) / count, static_cast<int>(t));
    }
  }

  // The output columns [lo, hi) whose input column for tap b is inside the input.
  void columns(int64_t b, int64_t& lo, int64_t& hi) const {
    const WindowGeometry& g = spec_.geometry;
    const int64_t sw = g.strides[1], in_w = src_.dims[3], out_w = dst_.dims[3];
    const int64_t shift = b * g.dilations[1] - g.pads_begin[1];
    lo = shift >= 0 ? 0 : (-shift + sw - 1) / sw;
    hi = in_w - 1 - shift < 0 ? 0 : std::min(out_w, (in_w - 1 - shift) / sw + 1);
    lo = std::min(lo, hi);
  }

  // Rows [begin, end) of the (image, output row, channel) sequence, with thread `t`'s scratch.
  template <typename T>
  void run_rows(const T* x, void* y, int64_t begin, int64_t end, int t) {
    uint8_t* block = scratch_ + static_cast<size_t>(t) * per_thread_bytes_;
    const int64_t out_h = dst_.dims[2], out_w = dst_.dims[3], images = dst_.dims[0];
    const int64_t channels = static_cast<int64_t>(channels_.size());
    int32_t* acc = reinterpret_cast<int32_t*>(block);
    float* values = reinterpret_cast<float*>(block + values_at_);
    int64_t* tags = reinterpret_cast<int64_t*>(block + tags_at_);
    int16_t* rows = reinterpret_cast<int16_t*>(block + rows_at_);
    std::fill(tags, tags + slots_, int64_t{-1});  // this run's input: nothing gathered yet
    for (int64_t r = begin; r < end; ++r) {
      const size_t j = static_cast<size_t>(r % channels);
      const int64_t n = r / channels / out_h, oh = r / channels % out_h, c = channels_[j];
      std::fill(acc, acc + out_w, bias_[j]);
      if (channel_dot_)
        dot_row(x, j, n, oh, acc);
      else
        gathered_row(x, j, n, oh, acc, rows, tags);
      // saved_sum_ holds the residual in (channel, image, row) order.
      const size_t saved = static_cast<size_t>(((static_cast<int64_t>(j) * images + n) * out_h + oh) * out_w);
      finish_row(acc, values, spec_.quant.output_scale(c), saved, y, offset(dst_, n, c, oh, 0));
    }
  }

  template <typename T>
  static int32_t dot(const T* x, const int16_t* w, int64_t n) {
    int32_t s = 0;
    for (int64_t k = 0; k < n; ++k) s += static_cast<int16_t>(x[k]) * static_cast<int32_t>(w[k]);
    return s;
  }

  // acc[ow] += dot(x + ow * step, w, n) - zp_term for ow in [from, to): four columns at a time, so each weight
  // is loaded once for four inputs and the four sums share the loop (a dot of 16 or 32 alone costs its loop
  // set-up and horizontal sum).
  template <typename T>
  static void dot_columns(const T* x, int64_t step, const int16_t* w, int64_t n, int32_t zp_term, int64_t from,
                          int64_t to, int32_t* acc) {
    int64_t ow = from;
    for (; ow + 4 <= to; ow += 4) {
      const T* x0 = x + ow * step;
      const T *x1 = x0 + step, *x2 = x1 + step, *x3 = x2 + step;
      int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int64_t k = 0; k < n; ++k) {
        const int32_t wk = w[k];
        s0 += static_cast<int16_t>(x0[k]) * wk;
        s1 += static_cast<int16_t>(x1[k]) * wk;
        s2 += static_cast<int16_t>(x2[k]) * wk;
        s3 += static_cast<int16_t>(x3[k]) * wk;
      }
      acc[ow] += s0 - zp_term;
      acc[ow + 1] += s1 - zp_term;
      acc[ow + 2] += s2 - zp_term;
      acc[ow + 3] += s3 - zp_term;
    }
    for (; ow < to; ++ow) acc[ow] += dot(x + ow * step, w, n) - zp_term;
  }

  template <typename T>
  void dot_row(const T* x, size_t j, int64_t n, int64_t oh, int32_t* acc) const {
    const WindowGeometry& g = spec_.geometry;
    const int64_t out_w = dst_.dims[3], in_h = src_.dims[2], sh = g.strides[0], sw = g.strides[1];
    const int64_t xs_w = src_.strides[3], first_ic = (channels_[j] / oc_per_group_) * ic_per_group_;
    const int32_t zx = spec_.quant.src_zp;
    for (int64_t a = 0; a < kh_; ++a) {
      const int64_t ih = oh * sh - g.pads_begin[0] + a * g.dilations[0];
      if (ih < 0 || ih >= in_h) continue;  // zero padding: x - zero point = 0
      const T* row = x + offset(src_, n, first_ic, ih, 0);
      // Output columns [full_lo, full_hi) read all kw taps inside the input; with a whole-window dot
      // (one group, NHWC, no dilation) their kw x ic inputs are contiguous: one dot product each.
      int64_t full_lo = 0, full_hi = out_w;
      for (int64_t b = 0; b < kw_; ++b) {
        int64_t lo, hi;
        columns(b, lo, hi);
        full_lo = std::max(full_lo, lo);
        full_hi = std::min(full_hi, hi);
      }
      if (!window_dot_) full_lo = full_hi = 0;
      if (full_lo < full_hi) {
        const int16_t* wp = weights_[j].data() + a * kw_ * ic_per_group_;
        const int32_t zp_term = zx * row_sums_[j][static_cast<size_t>(a)];
        const int64_t shift = -g.pads_begin[1];
        dot_columns(row + shift * xs_w, sw * xs_w, wp, kw_ * ic_per_group_, zp_term, full_lo, full_hi, acc);
      }
      for (int64_t b = 0; b < kw_; ++b) {
        // Input column ow * sw + shift; the output columns [lo, hi) read inside the input, minus the
        // whole-window ones done above.
        const int64_t shift = b * g.dilations[1] - g.pads_begin[1];
        int64_t lo, hi;
        columns(b, lo, hi);
        const int64_t tap = a * kw_ + b;
        const int16_t* wp = weights_[j].data() + tap * ic_per_group_;
        const int32_t zp_term = zx * tap_sums_[j][static_cast<size_t>(tap)];
        auto tap_range = [&](int64_t from, int64_t to) {
          dot_columns(row + shift * xs_w, sw * xs_w, wp, ic_per_group_, zp_term, from, to, acc);
        };
        if (full_lo < full_hi) {
          tap_range(lo, std::min(hi, full_lo));
          tap_range(std::max(lo, full_hi), hi);
        } else {
          tap_range(lo, hi);
        }
      }
    }
  }

  // Input row ih of channel j's group, gathered as x - zero point into `sw` int16 phase rows per input channel,
  // kept in the thread's cache (slot ih % kh of the group: the kh rows one output row reads are all held, and
  // the next output rows reuse them), refilled when the slot holds another row.
  template <typename T>
  const int16_t* gathered_input(const T* x, size_t j, int64_t n, int64_t ih, int16_t* rows, int64_t* tags) const {
    const WindowGeometry& g = spec_.geometry;
    const int64_t sw = g.strides[1], xs_w = src_.strides[3], len = phase_len_, pad = g.pads_begin[1];
    const int64_t slot = group_slot_[j] * kh_ + ih % kh_, tag = n * src_.dims[2] + ih;
    int16_t* gathered = rows + slot * ic_per_group_ * sw * len;
    if (tags[slot] == tag) return gathered;
    tags[slot] = tag;
    const int64_t first_ic = (channels_[j] / oc_per_group_) * ic_per_group_;
    const int32_t zx = spec_.quant.src_zp;
    for (int64_t ic = 0; ic < ic_per_group_; ++ic) {
      const T* row = x + offset(src_, n, first_ic + ic, ih, 0);
      for (int64_t p = 0; p < sw; ++p) {
        int16_t* ph = gathered + (ic * sw + p) * len;
        const int64_t lo = phase_lo_[static_cast<size_t>(p)], hi = phase_hi_[static_cast<size_t>(p)];
        const T* xp = row + (lo * sw + p - pad) * xs_w;  // phase column lo
        const int64_t step = sw * xs_w;
        std::fill(ph, ph + lo, int16_t{0});
        for (int64_t k = lo; k < hi; ++k) ph[k] = static_cast<int16_t>(static_cast<int32_t>(xp[(k - lo) * step]) - zx);
        std::fill(ph + hi, ph + len, int16_t{0});
      }
    }
    return gathered;
  }

  template <typename T>
  void gathered_row(const T* x, size_t j, int64_t n, int64_t oh, int32_t* acc, int16_t* rows, int64_t* tags) const {
    const WindowGeometry& g = spec_.geometry;
    const int64_t out_w = dst_.dims[3], in_h = src_.dims[2], sh = g.strides[0], sw = g.strides[1];
    const int64_t len = phase_len_;
    for (int64_t a = 0; a < kh_; ++a) {
      const int64_t ih = oh * sh - g.pads_begin[0] + a * g.dilations[0];
      if (ih < 0 || ih >= in_h) continue;  // zero padding: x - zero point = 0
      const int16_t* gathered = gathered_input(x, j, n, ih, rows, tags);
      for (int64_t ic = 0; ic < ic_per_group_; ++ic) {
        for (int64_t b = 0; b < kw_; ++b) {
          // Input column ow * sw + b * dilation - pad is phase (b * dilation) % sw, column ow + (b * dilation) / sw.
          const int64_t at = b * g.dilations[1];
          const int16_t* ph = gathered + (ic * sw + at % sw) * len + at / sw;
          const int16_t wv = weights_[j][static_cast<size_t>((a * kw_ + b) * ic_per_group_ + ic)];
          for (int64_t ow = 0; ow < out_w; ++ow) acc[ow] += static_cast<int32_t>(ph[ow]) * static_cast<int32_t>(wv);
        }
      }
    }
  }

  // Output scale, activation, residual sum, rounding: one row, each step a loop of its own (vectorizable).
  void finish_row(const int32_t* acc, float* v, float scale, size_t saved, void* y, int64_t at) const {
    const LinearQuant& q = spec_.quant;
    const int64_t out_w = dst_.dims[3], ys = dst_.strides[3];
    for (int64_t ow = 0; ow < out_w; ++ow) v[ow] = static_cast<float>(acc[ow]) * scale;
    if (spec_.act.kind() != FusedActivation::none)
      for (int64_t ow = 0; ow < out_w; ++ow) v[ow] = spec_.act.apply(v[ow]);
    if (spec_.has_sum) {
      const float* r = saved_sum_.data() + saved;
      for (int64_t ow = 0; ow < out_w; ++ow)
        v[ow] = spec_.sum_act.apply(v[ow] + q.sum_scale * (r[ow] - static_cast<float>(q.sum_zp)));
    }
    if (dst_.dtype == DType::u8) {
      uint8_t* p = static_cast<uint8_t*>(y) + at;
      for (int64_t ow = 0; ow < out_w; ++ow)
        p[ow * ys] = static_cast<uint8_t>(requantize_fast(v[ow], q.dst_zp, range_.min, range_.max));
    } else if (dst_.dtype == DType::s8) {
      int8_t* p = static_cast<int8_t*>(y) + at;
      for (int64_t ow = 0; ow < out_w; ++ow)
        p[ow * ys] = static_cast<int8_t>(requantize_fast(v[ow], q.dst_zp, range_.min, range_.max));
    } else {
      float* p = static_cast<float*>(y) + at;
      for (int64_t ow = 0; ow < out_w; ++ow) p[ow * ys] = v[ow];
    }
  }

  ConvSpec spec_;
  TensorDesc src_, dst_, sum_desc_;
  std::vector<int64_t> channels_;
  int threads_ = 1;  // the step's threads at Prepare: run() uses at most these (the scratch holds their blocks)
  int64_t kh_ = 1, kw_ = 1, ic_per_group_ = 1, oc_per_group_ = 1;
  bool channel_dot_ = false, window_dot_ = false;
  std::vector<std::vector<int16_t>> weights_;
  std::vector<std::vector<int32_t>> tap_sums_, row_sums_;
  std::vector<int32_t> bias_;
  std::vector<float> saved_sum_;
  int64_t phase_len_ = 0, work_ = 0;
  std::vector<int64_t> phase_lo_, phase_hi_;
  std::vector<int64_t> group_slot_;  // per exact channel: the index of its input group among theirs
  int64_t slots_ = 0;                // gathered-row cache slots per thread
  size_t values_at_ = 0, tags_at_ = 0, rows_at_ = 0, per_thread_bytes_ = 0;  // offsets in a thread's block
  uint8_t* scratch_ = nullptr;
  IntRange range_;
};

class DnnlConv : public DnnlKernel {
 public:
  explicit DnnlConv(const KernelContext& ctx) : DnnlKernel(ctx.engine), spec_(read_spec(ctx)) {
    using namespace dnnl;
    using dt = memory::data_type;
    const WindowGeometry& g = spec_.geometry;
    const LinearQuant& q = spec_.quant;
    memory::dims w_dims = weight_dims(spec_, ctx.inputs[1].dims);
    dt weight_type = q.quantized ? dt::s8 : dt::f32;
    memory::desc src_md = to_md(ctx.inputs[0]);
    memory::desc dst_md = to_md(ctx.outputs[0]);
    memory::desc weights_any(w_dims, weight_type, memory::format_tag::any);
    dt bias_type = spec_.has_bias ? to_dnnl(ctx.inputs[2].dtype) : dt::f32;
    memory::desc bias_md({spec_.out_channels}, bias_type, memory::format_tag::x);
    memory::dims strides(g.strides.begin(), g.strides.end()), dilations,
        pad_l(g.pads_begin.begin(), g.pads_begin.end()), pad_r(g.pads_end.begin(), g.pads_end.end());
    for (int64_t d : g.dilations) dilations.push_back(d - 1);  // oneDNN counts the gaps

    primitive_attr attr = base_attr();
    if (q.quantized) {
      // Constant at creation: oneDNN 2.6 rejects run-time output scales for convolutions.
      attr.set_output_scales(q.output_scales.size() > 1 ? 1 << 1 : 0, q.output_scales);
      // A zero point of 0 is left unset: a src zero point moves 3x3 convs off the fast brgconv path.
      if (q.src_zp != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {q.src_zp});
      if (q.dst_zp != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {q.dst_zp});
    }
    post_ops ops;
    spec_.act.append_to(ops);
    if (spec_.has_sum) {
      if (q.sum_zp != 0)
        ops.append_sum(q.sum_scale, q.sum_zp);
      else
        ops.append_sum(q.sum_scale);
    }
    spec_.sum_act.append_to(ops);
    append_round_before_zero_point(ops, q, spec_.dst_dtype);
    attr.set_post_ops(ops);

    auto make_desc = [&](const memory::desc* bias) {
      return bias ? convolution_forward::desc(prop_kind::forward_inference, algorithm::convolution_direct, src_md,
                                              weights_any, *bias, dst_md, strides, dilations, pad_l, pad_r)
                  : convolution_forward::desc(prop_kind::forward_inference, algorithm::convolution_direct, src_md,
                                              weights_any, dst_md, strides, dilations, pad_l, pad_r);
    };
    convolution_forward::primitive_desc pd(make_desc(spec_.has_bias ? &bias_md : nullptr), attr, engine_->engine);
    set_primitive(convolution_forward(pd), pd);

    memory::desc weights_plain(w_dims, weight_type, dense_strides(Shape(w_dims.begin(), w_dims.end())));
    const Constant& w = *ctx.constants[1];
    if (q.quantized && !q.weight_zps.empty()) {
      // w - zero point clamped to s8; the channels the clamp changed are recomputed exactly after the conv.
      ClampedWeights clamped = clamp_weights(w, q, 0);
      set_owned(DNNL_ARG_WEIGHTS,
                packed_constant(*engine_, ctx.packed, w, "clamped", pd.weights_desc(), [&](dnnl::memory& dst) {
                  reorder_into(*engine_, weights_plain, clamped.clamped.data(), dst);
                }));
      if (clamped.changed()) exact_ = std::make_unique<ExactConvChannels>(ctx, spec_, clamped, num_threads());
    } else if (q.quantized) {
      set_owned(DNNL_ARG_WEIGHTS, packed_weights(*engine_, ctx.packed, w, weights_plain, pd.weights_desc()));
    } else {
      set_owned(DNNL_ARG_WEIGHTS, float_weights_in(*engine_, ctx.packed, w, ctx.inputs[1].quant, weights_plain,
                                                   pd.weights_desc(), node_label(ctx.node)));
    }
    if (spec_.has_bias)
      set_owned(DNNL_ARG_BIAS, reorder_constant(*engine_, bias_md, ctx.constants[2]->bytes->data(), bias_md));
    map_input(0, DNNL_ARG_SRC, src_md);
    map_output(0, DNNL_ARG_DST, dst_md);
    sum_bytes_ = ctx.outputs[0].bytes();
  }

  int inplace_input() const override { return spec_.has_sum ? 3 : -1; }

  // oneDNN's scratchpad, then the exact channels' per-thread rows (used after the conv, but kept apart).
  size_t scratch_bytes() const override {
    return exact_ ? exact_offset() + exact_->scratch_bytes() : DnnlKernel::scratch_bytes();
  }

  void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void* scratch) override {
    DnnlKernel::bind(inputs, outputs, scratch);
    if (exact_) exact_->bind_scratch(static_cast<uint8_t*>(scratch) + exact_offset());
    // The sum post-op accumulates into dst: when the planner could not give the residual's buffer to the
    // output, run() first copies the residual there.
    sum_source_ = spec_.has_sum && inputs[3] != outputs[0] ? inputs[3] : nullptr;
    dst_ = outputs[0];
    src_ = inputs[0];
  }

  void run() override {
    if (sum_source_) std::memcpy(dst_, sum_source_, sum_bytes_);
    if (exact_) exact_->save_residual(dst_);
    DnnlKernel::run();
    if (exact_) exact_->recompute(src_, dst_);
  }

 private:
  size_t exact_offset() const { return (DnnlKernel::scratch_bytes() + 63) / 64 * 64; }

  ConvSpec spec_;
  std::unique_ptr<ExactConvChannels> exact_;
  const void* src_ = nullptr;
  size_t sum_bytes_ = 0;
  const void* sum_source_ = nullptr;
  void* dst_ = nullptr;
};

// The definition, one output element at a time. Quantized convs accumulate integers exactly (in double),
// then follow the requantization steps of quantized_linear.h.
class ReferenceConv : public Kernel {
 public:
  explicit ReferenceConv(const KernelContext& ctx) : spec_(read_spec(ctx)), src_(ctx.inputs[0]), dst_(ctx.outputs[0]) {
    const Constant& w = *ctx.constants[1];
    if (spec_.quant.quantized) {
      const int8_t* p = w.data<int8_t>();
      int64_t per_channel = w.elements() / spec_.out_channels;
      for (int64_t i = 0; i < w.elements(); ++i) weights_.push_back(p[i] - spec_.quant.weight_zp(i / per_channel));
    } else {
      std::vector<float> f = float_weights(w, ctx.inputs[1].quant, node_label(ctx.node));
      weights_.assign(f.begin(), f.end());
    }
    if (spec_.has_bias) {
      const Constant& b = *ctx.constants[2];
      for (int64_t c = 0; c < b.elements(); ++c)
        bias_.push_back(b.dtype == DType::s32 ? b.data<int32_t>()[c] : b.data<float>()[c]);
    }
    if (spec_.has_sum) sum_desc_ = ctx.inputs[3];
    in_idx_.resize(src_.dims.size());
  }
  int inplace_input() const override { return spec_.has_sum ? 3 : -1; }
  void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void*) override {
    x_ = inputs[0];
    sum_ = spec_.has_sum ? inputs[3] : nullptr;
    y_ = outputs[0];
  }

  void run() override {
    const WindowGeometry& g = spec_.geometry;
    const LinearQuant& q = spec_.quant;
    size_t spatial = g.kernel.size();
    int64_t oc_per_group = spec_.out_channels / spec_.group, ic_per_group = src_.dims[1] / spec_.group;
    int64_t kernel_size = 1;
    for (int64_t k : g.kernel) kernel_size *= k;
    for_each_index(dst_, [&](const std::vector<int64_t>& out, int64_t out_offset) {
      int64_t n = out[0], oc = out[1], grp = oc / oc_per_group;
      double acc = bias_.empty() ? 0.0 : bias_[static_cast<size_t>(oc)];
      for (int64_t ic = 0; ic < ic_per_group; ++ic) {
        for (int64_t k = 0; k < kernel_size; ++k) {
          int64_t rest = k;
          bool inside = true;
          for (size_t s = spatial; s-- > 0;) {
            int64_t ks = rest % g.kernel[s];
            rest /= g.kernel[s];
            int64_t pos = out[2 + s] * g.strides[s] - g.pads_begin[s] + ks * g.dilations[s];
            if (pos < 0 || pos >= src_.dims[2 + s]) inside = false;
            in_idx_[2 + s] = pos;
          }
          if (!inside) continue;  // zero padding: a padded x equals the zero point, contributing 0
          in_idx_[0] = n;
          in_idx_[1] = grp * ic_per_group + ic;
          double x = load(x_, src_.dtype, offset_of(src_, in_idx_)) - q.src_zp;
          acc += x * weights_[static_cast<size_t>((oc * ic_per_group + ic) * kernel_size + k)];
        }
      }
      float y = static_cast<float>(acc);
      if (q.quantized) y *= q.output_scale(oc);
      y = spec_.act.apply(y);
      if (sum_)
        y = spec_.sum_act.apply(
            y + q.sum_scale * static_cast<float>(load(sum_, sum_desc_.dtype, offset_of(sum_desc_, out)) - q.sum_zp));
      store_output(y_, spec_.dst_dtype, spec_.quant.dst_zp, out_offset, y);
    });
  }

 private:
  ConvSpec spec_;
  TensorDesc src_, dst_, sum_desc_;
  std::vector<double> weights_, bias_;
  std::vector<int64_t> in_idx_;
  const void* x_ = nullptr;
  const void* sum_ = nullptr;
  void* y_ = nullptr;
};

}  // namespace

std::unique_ptr<Kernel> make_conv(const KernelContext& ctx) {
  // Two oneDNN 2.6 jit bugs, found by tests/test_kernels_conv.cpp: a pad as large as the kernel window (a
  // window wholly in the padding) crashes brgconv, and act + sum + sum_act loses the final eltwise.
  // Real classifiers have neither (the converter fuses a sum only into a conv without act), so such
  // nodes run the reference loop rather than risk a wrong answer.
  ConvSpec spec = read_spec(ctx);
  // The exact recomputation of weights beyond s8 (ExactConvChannels) handles 2-D convs.
  if (!spec.quant.weight_zps.empty() && spec.geometry.kernel.size() != 2) return make_conv_reference(ctx);
  if (spec.act.kind() != FusedActivation::none && spec.has_sum && spec.sum_act.kind() != FusedActivation::none)
    return make_conv_reference(ctx);
  for (size_t i = 0; i < spec.geometry.kernel.size(); ++i) {
    int64_t extent = (spec.geometry.kernel[i] - 1) * spec.geometry.dilations[i] + 1;
    if (spec.geometry.pads_begin[i] >= extent || spec.geometry.pads_end[i] >= extent) return make_conv_reference(ctx);
  }
  return std::make_unique<DnnlConv>(ctx);
}
std::unique_ptr<Kernel> make_conv_reference(const KernelContext& ctx) { return std::make_unique<ReferenceConv>(ctx); }

}  // namespace octet::kernels
