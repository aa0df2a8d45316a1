#include "graph/quantization.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace octet {
namespace {

constexpr int32_t kU8Levels = 255;    // steps between the u8 extremes
constexpr int32_t kS8Positive = 127;  // largest value of the narrow s8 range

// max|x| over n values; throws on NaN or infinity, which would make every scale meaningless.
float max_abs(const float* data, int64_t n) {
  float result = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(data[i])) throw Error("cannot quantize a non-finite value (at index " + std::to_string(i) + ")");
    result = std::max(result, std::fabs(data[i]));
  }
  return result;
}

// max_abs / (2^(bits-1) - 1); 0 for an all-zero range (callers choose the replacement).
float symmetric_scale(float max_abs_value, int bits) {
  if (bits < 2 || bits > 8) throw Error("symmetric quantization supports 2 to 8 bits, got " + std::to_string(bits));
  return max_abs_value / static_cast<float>((1 << (bits - 1)) - 1);
}

void check_range(float min, float max) {
  if (!std::isfinite(min) || !std::isfinite(max) || min > max)
    throw Error("invalid activation range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
}

QuantParams per_tensor(float scale, int32_t zero_point) {
  QuantParams params;
  params.scales = {scale};
  params.zero_points = {zero_point};
  return params;
}

}  // namespace

IntRange quantized_range(DType dtype) {
  switch (dtype) {
    case DType::u8: return {0, kU8Levels};
    case DType::s8: return {-kS8Positive, kS8Positive};
    case DType::s32: return {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
    default: throw Error(std::string("no quantized range for dtype ") + dtype_name(dtype));
  }
}

QuantParams symmetric_params(const float* data, int64_t n, int bits) {
  float scale = symmetric_scale(max_abs(data, n), bits);
  return per_tensor(scale > 0 ? scale : kEmptyRangeScale, 0);
}

QuantParams symmetric_params_per_channel(const Constant& weights, int bits) {
  if (weights.dtype != DType::f32 || weights.shape.empty() || weights.shape[0] < 1)
    throw Error("per-channel quantization needs f32 weights with at least one channel, got " +
                std::string(dtype_name(weights.dtype)) + " " + shape_str(weights.shape));
  const int64_t channels = weights.shape[0];
  const int64_t per_channel = weights.elements() / channels;
  QuantParams params;
  params.axis = 0;
  params.zero_points.assign(static_cast<size_t>(channels), 0);
  for (int64_t c = 0; c < channels; ++c)
    params.scales.push_back(symmetric_scale(max_abs(weights.data<float>() + c * per_channel, per_channel), bits));
  // The floor keeps the biases of dead channels in int32 (see the header).
  const float largest = *std::max_element(params.scales.begin(), params.scales.end());
  const float floor = largest > 0 ? largest * kMinChannelScaleRatio : kEmptyRangeScale;
  for (float& scale : params.scales) scale = std::max(scale, floor);
  return params;
}

QuantParams asymmetric_params(float min, float max) {
  check_range(min, max);
  const float low = std::min(min, 0.0f), high = std::max(max, 0.0f);
  if (high == low) return per_tensor(kEmptyRangeScale, 0);
  const float scale = (high - low) / static_cast<float>(kU8Levels);
  const float zero_point = std::nearbyint(-low / scale);
  return per_tensor(scale, static_cast<int32_t>(std::clamp(zero_point, 0.0f, static_cast<float>(kU8Levels))));
}

QuantParams symmetric_activation_params(float min, float max) {
  check_range(min, max);
  const float scale = std::max(std::fabs(min), std::fabs(max)) / static_cast<float>(kS8Positive);
  return per_tensor(scale > 0 ? scale : kEmptyRangeScale, 0);
}

int32_t quantize_value(float x, float scale, int32_t zero_point, int32_t qmin, int32_t qmax) {
  // Clamp in double so values far outside the int32 range never reach the integer conversion.
  const double q = static_cast<double>(std::nearbyint(x / scale)) + zero_point;
  if (!(q > qmin)) return qmin;
  if (!(q < qmax)) return qmax;
  return static_cast<int32_t>(q);
}

float dequantize_value(int32_t q, float scale, int32_t zero_point) {
  return static_cast<float>(static_cast<int64_t>(q) - zero_point) * scale;
}

int32_t requantize_value(int32_t q, const QuantParams& from, const QuantParams& to, IntRange to_range) {
  return quantize_value(dequantize_value(q, from.scales.at(0), from.zero_points.at(0)), to.scales.at(0),
                        to.zero_points.at(0), to_range.min, to_range.max);
}

Constant quantize_weights(const Constant& f32_weights, const QuantParams& params) {
  if (f32_weights.dtype != DType::f32)
    throw Error(std::string("quantize_weights needs f32 data, got ") + dtype_name(f32_weights.dtype));
  const int64_t rank = static_cast<int64_t>(f32_weights.shape.size());
  const int64_t channels = params.axis < 0 ? 1 : (params.axis < rank ? f32_weights.shape[params.axis] : -1);
  if (static_cast<int64_t>(params.scales.size()) != channels || params.zero_points.size() != params.scales.size())
    throw Error("quantization parameters (" + std::to_string(params.scales.size()) + " scales, axis " +
                std::to_string(params.axis) + ") do not fit weights " + shape_str(f32_weights.shape));
  // Elements are [outer, channels, inner] around the quantization axis.
  int64_t inner = 1;
  for (int64_t d = params.axis + 1; params.axis >= 0 && d < rank; ++d) inner *= f32_weights.shape[d];
  const IntRange range = quantized_range(DType::s8);
  const int64_t n = f32_weights.elements();
  std::vector<uint8_t> bytes(static_cast<size_t>(n));
  int8_t* out = reinterpret_cast<int8_t*>(bytes.data());
  const float* in = f32_weights.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const size_t c = static_cast<size_t>((i / inner) % channels);
    out[i] = static_cast<int8_t>(quantize_value(in[i], params.scales[c], params.zero_points[c], range.min, range.max));
  }
  Constant result;
  result.dtype = DType::s8;
  result.shape = f32_weights.shape;
  result.bytes = make_bytes(std::move(bytes));
  return result;
}

Constant quantize_bias(const Constant& f32_bias, float input_scale, const QuantParams& weight_params) {
  if (f32_bias.dtype != DType::f32 || f32_bias.shape.size() != 1)
    throw Error("a bias must be a 1-D f32 constant, got " + std::string(dtype_name(f32_bias.dtype)) + " " +
                shape_str(f32_bias.shape));
  const int64_t channels = f32_bias.shape[0];
  const size_t scale_count = weight_params.scales.size();
  if (scale_count != 1 && static_cast<int64_t>(scale_count) != channels)
    throw Error("bias of " + std::to_string(channels) + " values with " + std::to_string(scale_count) +
                " weight scales");
  std::vector<uint8_t> bytes(static_cast<size_t>(channels) * sizeof(int32_t));
  int32_t* out = reinterpret_cast<int32_t*>(bytes.data());
  const float* in = f32_bias.data<float>();
  const IntRange range = quantized_range(DType::s32);
  for (int64_t c = 0; c < channels; ++c) {
    const double scale =
        static_cast<double>(input_scale) * weight_params.scales[scale_count == 1 ? 0 : static_cast<size_t>(c)];
    const double q = std::nearbyint(static_cast<double>(in[c]) / scale);
    // Clamping would silently replace the bias, which is the whole output of a channel with tiny weights.
    if (!(q >= range.min && q <= range.max))
      throw Error("bias " + std::to_string(in[c]) + " of channel " + std::to_string(c) +
                  " does not fit in int32 at scale " + std::to_string(scale));
    out[c] = static_cast<int32_t>(q);
  }
  Constant result;
  result.dtype = DType::s32;
  result.shape = f32_bias.shape;
  result.bytes = make_bytes(std::move(bytes));
  return result;
}

double sqnr_db(const float* reference, const float* test, int64_t n) {
  double signal = 0, noise = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double error = static_cast<double>(reference[i]) - test[i];
    signal += static_cast<double>(reference[i]) * reference[i];
    noise += error * error;
  }
  if (noise == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

}  // namespace octet
