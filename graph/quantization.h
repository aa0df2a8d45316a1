// The quantization math, written once: the converter uses it to quantize weights and pick activation
// parameters, the runtime and the tests use it to quantize and dequantize single values.
//
// Weights are symmetric: scale = max|w| / (2^(bits-1) - 1), zero point 0, values clamped to the narrow range
// [-127, 127] (so the grid is symmetric and negation never overflows), per output channel (axis 0) by
// default. Activations are asymmetric u8: the observed range [min, max] is widened to include 0 (so zero
// padding and ReLU's zeros are exact), scale = (max - min) / 255, zero point = round(-min / scale); a
// non-negative tensor therefore gets zero point 0 and scale max / 255. Symmetric s8 activations
// (scale = max|x| / 127, zero point 0) exist for comparison. Everywhere: x = (q - zero_point) * scale.
//
// An empty or vanishing range needs a finite positive scale, so dequantization stays finite:
//   - per-channel weight scales are floored at kMinChannelScaleRatio (1e-4) times the tensor's largest
//     channel scale, which covers all-zero channels. A channel's bias is quantized at input_scale *
//     weight_scale, and for a dead channel that bias is the channel's whole output, so a tiny scale (the
//     smallest normal float, or the 1e-12 of the largest that BatchNorm folding leaves in the shared
//     MobileNet's dead channels) would push the bias out of int32. Live channels of the shared models are
//     all above 2e-3 of their tensor's largest, so the floor changes none of their weights; a channel
//     below it only gets fewer than 127 levels;
//   - an all-zero tensor, or an activation range [0, 0], gets kEmptyRangeScale (1). Zero stays exact.
#pragma once

#include <cstdint>

#include "graph/graph.h"

namespace octet {

constexpr float kEmptyRangeScale = 1.0f;
constexpr float kMinChannelScaleRatio = 1e-4f;

// The integer range a quantized dtype is clamped to: u8 [0, 255], s8 the narrow [-127, 127], s32 the
// full int32 range. Throws for f32 and s64.
struct IntRange {
  int32_t min, max;
};
IntRange quantized_range(DType dtype);

// Symmetric per-tensor parameters of n values: scale = max|x| / (2^(bits-1) - 1), zero point 0.
// bits is 2..8. Throws Error on a non-finite value.
QuantParams symmetric_params(const float* data, int64_t n, int bits = 8);
// The same for each slice along axis 0 of an f32 constant (weights are [out_channels, ...]), with the
// floor above; axis = 0.
QuantParams symmetric_params_per_channel(const Constant& weights, int bits = 8);

// Asymmetric u8 activation parameters for the range [min, max] (widened to include 0).
// Throws Error when min > max or either is not finite.
QuantParams asymmetric_params(float min, float max);
// Symmetric s8 activation parameters: scale = max(|min|, |max|) / 127, zero point 0.
QuantParams symmetric_activation_params(float min, float max);

// round_half_to_even(x / scale) + zero_point, clamped to [qmin, qmax] (NaN maps to qmin).
int32_t quantize_value(float x, float scale, int32_t zero_point, int32_t qmin, int32_t qmax);
// (q - zero_point) * scale.
float dequantize_value(int32_t q, float scale, int32_t zero_point);
// An integer moved from one quantization to another: quantize_value(dequantize_value(q, ...), ...), exactly
// what a Dequantize then a Quantize node compute (the integer MaxPool's requantization table).
int32_t requantize_value(int32_t q, const QuantParams& from, const QuantParams& to, IntRange to_range);

// Quantizes an f32 constant to s8 with `params` (per tensor, or per channel along params.axis).
Constant quantize_weights(const Constant& f32_weights, const QuantParams& params);
// Quantizes a 1-D f32 bias of C values to s32 with scale input_scale * weight_scale[c] (the scale of the
// int32 accumulator of a quantized Conv/Gemm, as oneDNN and ONNX QLinearConv expect). weight_params is per
// tensor or has C scales. Throws Error naming the channel when a bias does not fit in int32.
Constant quantize_bias(const Constant& f32_bias, float input_scale, const QuantParams& weight_params);

// Signal-to-quantization-noise ratio in dB: 10 log10(sum ref^2 / sum (ref - test)^2); +inf when equal.
double sqnr_db(const float* reference, const float* test, int64_t n);

}  // namespace octet
