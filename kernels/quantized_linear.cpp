#include "kernels/quantized_linear.h"

#include <algorithm>
#include <cmath>

#include "graph/ops.h"
#include "graph/quantization.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

bool is_int8(DType d) { return d == DType::u8 || d == DType::s8; }

// One scale and zero point of a per-tensor quantized activation, validated.
void per_tensor(const Node& node, const TensorDesc& desc, const std::string& what, float& scale, int32_t& zp) {
  const PerTensorQuant params = require_per_tensor_params(node, desc, what);
  scale = params.scale;
  zp = params.zero_point;
}

}  // namespace

LinearQuant read_linear_quant(const KernelContext& ctx, int64_t out_channels, int sum_input) {
  const Node& node = ctx.node;
  const TensorDesc& src = ctx.inputs[0];
  const TensorDesc& weights = ctx.inputs[1];
  const TensorDesc& dst = ctx.outputs[0];
  LinearQuant q;
  if (!is_int8(src.dtype)) {
    if (src.dtype != DType::f32 || dst.dtype != DType::f32)
      throw Error(node_label(node) + ": input is " + dtype_name(src.dtype) + " and output " + dtype_name(dst.dtype) +
                  "; a float layer reads and writes f32");
    return q;  // float, or weight-only INT8 (weights dequantized by float_weights)
  }
  if (weights.dtype != DType::s8)
    throw Error(node_label(node) + ": quantized input needs s8 weights, got " + dtype_name(weights.dtype));
  if (!is_int8(dst.dtype) && dst.dtype != DType::f32)
    throw Error(node_label(node) + ": output dtype " + dtype_name(dst.dtype) + " is not u8, s8 or f32");
  q.quantized = true;
  per_tensor(node, src, "input 0", q.src_scale, q.src_zp);
  const std::vector<float>& w_scales = weights.quant.scales;
  if (w_scales.size() != 1 && static_cast<int64_t>(w_scales.size()) != out_channels)
    throw Error(node_label(node) + ": weights have " + std::to_string(w_scales.size()) + " scales for " +
                std::to_string(out_channels) + " output channels");
  for (float s : weights.quant.scales)
    if (!(s > 0) || !std::isfinite(s))
      throw Error(node_label(node) + ": weight scale " + std::to_string(s) + " is not positive and finite");
  const std::vector<int32_t>& w_zps = weights.quant.zero_points;
  if (!w_zps.empty() && w_zps.size() != w_scales.size())
    throw Error(node_label(node) + ": weights have " + std::to_string(w_zps.size()) + " zero points for " +
                std::to_string(w_scales.size()) + " scales");
  for (int32_t zp : w_zps)
    if (zp < -128 || zp > 127)
      throw Error(node_label(node) + ": weight zero point " + std::to_string(zp) + " is outside the s8 range");
  if (std::any_of(w_zps.begin(), w_zps.end(), [](int32_t zp) { return zp != 0; })) q.weight_zps = w_zps;
  if (is_int8(dst.dtype)) per_tensor(node, dst, "output", q.dst_scale, q.dst_zp);
  // In float, as ONNX Runtime's QLinearConv computes it: imported models then round on the same side of a
  // boundary as their reference (a double product rounded once differs in the last bit for some scales).
  for (float s : w_scales) q.output_scales.push_back(q.src_scale * s / q.dst_scale);
  if (sum_input >= 0 && static_cast<size_t>(sum_input) < node.inputs.size() && !node.inputs[sum_input].empty()) {
    const TensorDesc& sum = ctx.inputs[sum_input];
    if (sum.dtype != dst.dtype)
      throw Error(node_label(node) + ": residual input is " + dtype_name(sum.dtype) + ", output " +
                  dtype_name(dst.dtype) + "; they must match");
    float sum_scale = 1;
    if (is_int8(sum.dtype)) per_tensor(node, sum, "residual input", sum_scale, q.sum_zp);
    q.sum_scale = sum_scale / q.dst_scale;
  }
  return q;
}

std::vector<float> float_weights(const Constant& weights, const QuantParams& quant, const std::string& context) {
  if (weights.dtype == DType::f32) return weights.as_floats();
  if (weights.dtype != DType::s8)
    throw Error(context + ": weights are " + dtype_name(weights.dtype) + ", expected f32 or s8");
  // Per-channel scales run along quant.axis: element i belongs to channel (i / inner) % channels.
  int64_t n = weights.elements(), channels = 1, inner = 1;
  if (quant.scales.size() != 1) {
    if (quant.axis < 0 || quant.axis >= static_cast<int>(weights.shape.size()))
      throw Error(context + ": s8 weights have per-channel scales but no valid axis");
    channels = weights.shape[static_cast<size_t>(quant.axis)];
    for (size_t d = static_cast<size_t>(quant.axis) + 1; d < weights.shape.size(); ++d) inner *= weights.shape[d];
    if (static_cast<int64_t>(quant.scales.size()) != channels)
      throw Error(context + ": s8 weights have " + std::to_string(quant.scales.size()) + " scales for " +
                  std::to_string(channels) + " channels");
  }
  std::vector<float> out(static_cast<size_t>(n));
  const int8_t* w = weights.data<int8_t>();
  for (int64_t i = 0; i < n; ++i) {
    size_t c = static_cast<size_t>((i / inner) % channels);
    int32_t zp = quant.zero_points.empty() ? 0 : quant.zero_points[quant.zero_points.size() == 1 ? 0 : c];
    out[static_cast<size_t>(i)] = dequantize_value(w[i], quant.scales[c], zp);
  }
  return out;
}

ClampedWeights clamp_weights(const Constant& weights, const LinearQuant& quant, int channel_axis) {
  ClampedWeights out;
  const int64_t n = weights.elements();
  const int8_t* w = weights.data<int8_t>();
  out.clamped.assign(w, w + n);
  if (quant.weight_zps.empty()) return out;
  const Shape& shape = weights.shape;
  int64_t channels = shape[static_cast<size_t>(channel_axis)], inner = 1;
  for (size_t d = static_cast<size_t>(channel_axis) + 1; d < shape.size(); ++d) inner *= shape[d];
  std::vector<bool> beyond(static_cast<size_t>(channels), false);
  for (int64_t i = 0; i < n; ++i) {
    int64_t c = (i / inner) % channels;
    int32_t q = w[i] - quant.weight_zp(c);
    out.clamped[static_cast<size_t>(i)] = static_cast<int8_t>(std::min(std::max(q, -128), 127));
    if (q < -128 || q > 127) beyond[static_cast<size_t>(c)] = true;
  }
  std::vector<int64_t> slot(static_cast<size_t>(channels), -1);  // index in exact_channels
  for (int64_t c = 0; c < channels; ++c) {
    if (!beyond[static_cast<size_t>(c)]) continue;
    slot[static_cast<size_t>(c)] = static_cast<int64_t>(out.exact_channels.size());
    out.exact_channels.push_back(c);
    out.exact.emplace_back();
  }
  for (int64_t i = 0; i < n; ++i) {  // one pass, in constant order
    int64_t c = (i / inner) % channels, k = slot[static_cast<size_t>(c)];
    if (k >= 0) out.exact[static_cast<size_t>(k)].push_back(w[i] - quant.weight_zp(c));
  }
  return out;
}

int32_t requantize(float y, int32_t zero_point, DType dtype) {
  IntRange r = quantized_range(dtype);
  return quantize_value(y, 1.0f, zero_point, r.min, r.max);
}

}  // namespace octet::kernels
