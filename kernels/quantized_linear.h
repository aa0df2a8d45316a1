// What Conv and Gemm share about quantization. A quantized Conv/Gemm reads u8/s8 activations and s8
// weights (per output channel or per tensor) and accumulates exactly in int32:
//   acc[c] = sum (x - src_zp) * w + bias_s32[c]          (bias already in units of src_scale * w_scale[c])
//   y[c]   = acc[c] * ((src_scale * w_scale[c]) / dst_scale)  (the "output scale": computed in float, constant
//                                                             at creation)
// then the fused post-ops run in that dst-scaled domain (ReLU and LeakyReLU commute with a positive scale;
// Clip bounds are divided by dst_scale; a residual sum r enters as (r_scale / dst_scale) * (r - r_zp)),
// and finally dst = saturate(round(y) + dst_zp). A float dst uses dst_scale 1 and no rounding.
// s8 weights with float activations are "weight-only INT8": the weights are dequantized once at Prepare.
//
// Weights may carry a zero point (per tensor or per output channel): the integer is then w - zero_point, which
// for imported u8 weights (stored as w - 128 with zero point zp - 128) can reach [-255, 255]. oneDNN 2.6 takes
// no weight zero point, so the optimized kernels run q = w - zero_point clamped to s8 and recompute exactly,
// after oneDNN, the few output channels where the clamp changed a weight (ExactChannels). Exact: the output
// is what the integers w - zero_point give.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/kernel.h"

namespace octet::kernels {

struct LinearQuant {
  bool quantized = false;  // u8/s8 activations x s8 weights
  float src_scale = 1;
  int32_t src_zp = 0;
  std::vector<float> output_scales;  // per output channel (size 1: per tensor)
  float dst_scale = 1;               // 1 for a float dst
  int32_t dst_zp = 0;
  float sum_scale = 1;  // residual scale / dst_scale
  int32_t sum_zp = 0;
  std::vector<int32_t> weight_zps;  // per output channel (size 1: per tensor); empty when all are 0

  float output_scale(int64_t c) const {
    return output_scales.size() == 1 ? output_scales[0] : output_scales[static_cast<size_t>(c)];
  }
  int32_t weight_zp(int64_t c) const {
    return weight_zps.empty() ? 0 : weight_zps.size() == 1 ? weight_zps[0] : weight_zps[static_cast<size_t>(c)];
  }
};

// The integers w - zero_point of quantized weights, clamped to s8 for oneDNN, and the output channels whose
// integers the clamp changed, with their exact integers.
struct ClampedWeights {
  std::vector<int8_t> clamped;              // same shape and layout as the constant
  std::vector<int64_t> exact_channels;      // output channels (along `channel_axis`) with a weight beyond s8
  std::vector<std::vector<int32_t>> exact;  // per such channel: its w - zero_point in constant order
  bool changed() const { return !exact_channels.empty(); }
};
// `channel_axis`: the output-channel axis of the constant (0 for Conv, 1 for a [K,N] Gemm B).
ClampedWeights clamp_weights(const Constant& weights, const LinearQuant& quant, int channel_axis);

// Reads and validates the quantization of a Conv (weights input 1, sum input 3) or Gemm node with
// `out_channels` outputs. Throws Error naming the node when the combination is not supported.
LinearQuant read_linear_quant(const KernelContext& ctx, int64_t out_channels, int sum_input);

// The f32 values of a constant: itself if f32, dequantized with its per-channel (axis 0) or per-tensor
// parameters if s8 (weight-only INT8).
std::vector<float> float_weights(const Constant& weights, const QuantParams& quant, const std::string& context);

// saturate(round_half_even(y) + zp) in the range of dtype (u8 [0,255], s8 [-127,127]).
int32_t requantize(float y, int32_t zero_point, DType dtype);

// requantize() for the optimized kernels' inner loops, without std::nearbyint (a library call that saves and
// restores the floating-point environment: it made the exact channels of the QOperator MobileNet v2 cost 4x
// the whole network). Round half to even by adding and removing 1.5 * 2^23, exact for |y| < 2^22 under the
// default rounding mode; y is clamped to that first. Equal to requantize() (tested).
inline int32_t requantize_fast(float y, int32_t zero_point, int32_t qmin, int32_t qmax) {
  const float bound = 4194304.0f;            // 2^22
  const float magic = 12582912.0f;           // 1.5 * 2^23
  y = std::min(std::max(y, -bound), bound);  // y finite (integer accumulators times finite scales)
  int32_t q = static_cast<int32_t>((y + magic) - magic) + zero_point;  // octet never builds with -ffast-math
  return std::min(std::max(q, qmin), qmax);
}

}  // namespace octet::kernels
