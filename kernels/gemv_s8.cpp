// Weight-only INT8 Gemm: y = A * dequantize(B) + C with f32 A and C, and B an s8 constant with per-output
// (or one) scale. This is the FP32 classifier of the mixed strategy: its inputs and outputs stay float, its
// weights are stored as s8. oneDNN 2.6 has no f32 x s8 matmul, so the oneDNN path would dequantize B into an
// f32 copy four times the size (for ResNet-50's fc alone enough to break a session's memory target; see
// RESULTS.md, Design measurements) and stream it every run. Here B stays s8 ([N,K], rows contiguous) and is widened in
// registers, which also reads a quarter of the bytes: the classifier is a GEMV at batch 1, bound by memory.
//
// The AVX-512 dot product is chosen at Prepare when the CPU has it; otherwise a plain loop runs. Both
// accumulate in float; results differ from the reference Gemm (which accumulates in double) by rounding only.
#include <immintrin.h>

#include <cstring>

#include "graph/ops.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

using DotFn = float (*)(const float* x, const int8_t* w, int64_t k);

float dot_plain(const float* x, const int8_t* w, int64_t k) {
  float sum = 0;
  for (int64_t i = 0; i < k; ++i) sum += x[i] * static_cast<float>(w[i]);
  return sum;
}

// GCC 12 reports its own intrinsics' _mm512_undefined_* placeholders as uninitialized (a known false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
__attribute__((target("avx512f"))) float dot_avx512(const float* x, const int8_t* w, int64_t k) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    __m128i w8a, w8b;
    std::memcpy(&w8a, w + i, 16);
    std::memcpy(&w8b, w + i + 16, 16);
    __m512 wa = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(w8a));
    __m512 wb = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(w8b));
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), wa, acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), wb, acc1);
  }
  float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (; i < k; ++i) sum += x[i] * static_cast<float>(w[i]);
  return sum;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

class WeightOnlyGemv : public Kernel {
 public:
  WeightOnlyGemv(const KernelContext& ctx, bool trans_b) {
    const Node& node = ctx.node;
    const Constant& b = *ctx.constants[1];
    const QuantParams& q = ctx.inputs[1].quant;
    m_ = ctx.inputs[0].dims[0];
    k_ = ctx.inputs[0].dims[1];
    n_ = ctx.outputs[0].dims[1];
    // Rows of N contiguous K: copied as is for transB = 1, transposed once here otherwise. Shared by the
    // Model's sessions through ctx.packed.
    PackedWeights* packed = ctx.packed ? ctx.packed : &own_;
    std::string key =
        std::to_string(reinterpret_cast<uintptr_t>(b.bytes->data())) + ":gemv_s8:" + std::to_string(trans_b);
    weights_ = packed->get(key, static_cast<size_t>(n_ * k_), [&](void* p) {
      int8_t* rows = static_cast<int8_t*>(p);
      const int8_t* src = b.data<int8_t>();
      for (int64_t n = 0; n < n_; ++n)
        for (int64_t k = 0; k < k_; ++k) rows[n * k_ + k] = trans_b ? src[n * k_ + k] : src[k * n_ + n];
    });
    scales_.resize(static_cast<size_t>(n_));
    for (int64_t n = 0; n < n_; ++n)
      scales_[static_cast<size_t>(n)] = q.scales.size() == 1 ? q.scales[0] : q.scales[static_cast<size_t>(n)];
    bias_.assign(static_cast<size_t>(n_), 0.0f);
    if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
      const Constant& c = *ctx.constants[2];
      float beta = node.attrs.get_float("beta", 1.0f);
      for (int64_t n = 0; n < n_; ++n)
        bias_[static_cast<size_t>(n)] = beta * c.data<float>()[c.elements() == 1 ? 0 : n];
    }
    dot_ = __builtin_cpu_supports("avx512f") ? dot_avx512 : dot_plain;
  }

  void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void*) override {
    x_ = static_cast<const float*>(inputs[0]);
    y_ = static_cast<float*>(outputs[0]);
  }

  void run() override {
    for (int64_t m = 0; m < m_; ++m) {
      const float* x = x_ + m * k_;
      float* y = y_ + m * n_;
#pragma omp parallel for schedule(static)
      for (int64_t n = 0; n < n_; ++n)
        y[n] = dot_(x, static_cast<const int8_t*>(weights_.get()) + n * k_, k_) * scales_[static_cast<size_t>(n)] +
               bias_[static_cast<size_t>(n)];
    }
  }

  std::string implementation() const override {
    return dot_ == dot_avx512 ? "octet_gemv_s8:avx512" : "octet_gemv_s8:plain";
  }

 private:
  int64_t m_ = 0, k_ = 0, n_ = 0;
  PackedWeights own_;  // used when the context shares none
  std::shared_ptr<const void> weights_;
  std::vector<float> scales_, bias_;
  DotFn dot_ = dot_plain;
  const float* x_ = nullptr;
  float* y_ = nullptr;
};

bool dense_2d(const TensorDesc& d) { return d.dims.size() == 2 && d.strides == dense_strides(d.dims); }

}  // namespace

std::unique_ptr<Kernel> make_weight_only_gemv(const KernelContext& ctx) {
  const Node& node = ctx.node;
  if (node.op != "Gemm" || !ctx.constants[1] || ctx.inputs[1].dtype != DType::s8 || ctx.inputs[0].dtype != DType::f32)
    return nullptr;
  if (node.attrs.get_int("transA", 0) != 0 || node.attrs.get_float("alpha", 1.0f) != 1.0f) return nullptr;
  if (!dense_2d(ctx.inputs[0]) || !dense_2d(ctx.outputs[0]) || ctx.outputs[0].dtype != DType::f32) return nullptr;
  const bool trans_b = node.attrs.get_int("transB", 0) != 0;
  const int64_t n = ctx.outputs[0].dims[1];
  // Scales: one, or one per output column (axis 0 of a [N,K] B, axis 1 of a [K,N] B); symmetric.
  const QuantParams& q = ctx.inputs[1].quant;
  if (!(q.scales.size() == 1 || (static_cast<int64_t>(q.scales.size()) == n && q.axis == (trans_b ? 0 : 1))))
    return nullptr;
  for (int32_t zp : q.zero_points)
    if (zp != 0) return nullptr;
  if (node.inputs.size() > 2 && !node.inputs[2].empty()) {  // C: a constant f32 bias of N values or one
    const Constant* c = ctx.constants[2];
    if (!c || c->dtype != DType::f32 || !(c->elements() == n || c->elements() == 1)) return nullptr;
    if (ctx.inputs[2].dims.size() == 2 && ctx.inputs[2].dims[0] != 1) return nullptr;
  }
  return std::make_unique<WeightOnlyGemv>(ctx, trans_b);
}

}  // namespace octet::kernels
