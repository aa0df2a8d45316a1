// What Conv and Gemm share about quantization. A quantized Conv/Gemm reads u8/s8 activations and s8
// weights (per output channel or per tensor) and accumulates exactly in int32:
//   acc[c] = sum (x - src_zp) * w + bias_s32[c]          (bias already in units of src_scale * w_scale[c])
//   y[c]   = acc[c] * src_scale * w_scale[c] / dst_scale  (the "output scale", constant at creation)
// then the fused post-ops run in that dst-scaled domain (ReLU and LeakyReLU commute with a positive scale;
// Clip bounds are divided by dst_scale; a residual sum r enters as (r_scale / dst_scale) * (r - r_zp)),
// and finally dst = saturate(round(y) + dst_zp). A float dst uses dst_scale 1 and no rounding.
// s8 weights with float activations are "weight-only INT8": the weights are dequantized once at Prepare.
#pragma once

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
};

// Reads and validates the quantization of a Conv (weights input 1, sum input 3) or Gemm node with
// `out_channels` outputs. Throws Error naming the node when the combination is not supported.
LinearQuant read_linear_quant(const KernelContext& ctx, int64_t out_channels, int sum_input);

// The f32 values of a constant: itself if f32, dequantized with its per-channel (axis 0) or per-tensor
// parameters if s8 (weight-only INT8).
std::vector<float> float_weights(const Constant& weights, const QuantParams& quant, const std::string& context);

// saturate(round_half_even(y) + zp) in the range of dtype (u8 [0,255], s8 [-127,127]).
int32_t requantize(float y, int32_t zero_point, DType dtype);

}  // namespace octet::kernels
