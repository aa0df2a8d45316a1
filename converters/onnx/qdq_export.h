// Export of octet's graph as a standard QDQ ONNX model (opset 17, IR version 8), so that another runtime
// (ONNX Runtime, which recognizes QDQ patterns and runs them as QLinearConv, QGemm, ...) computes exactly
// octet's quantization and the two can be compared on equal terms:
//   - graph inputs and outputs keep their names, dtypes and shapes (the batch dimension is "N");
//   - a u8/s8 activation is QuantizeLinear(float value, its scale, its zero point), and each node reading it
//     gets its own DequantizeLinear (one consumer per DQ, the canonical QDQ form);
//   - s8 weights are int8 initializers behind a DequantizeLinear (per-channel along their axis);
//   - an s32 bias is an int32 initializer behind a DequantizeLinear with scale input_scale * weight_scale[c]
//     along axis 0 (the accumulator units octet quantized it in);
//   - a Conv's fused post-ops become ONNX ops again: act (Relu, Clip with min/max inputs, LeakyRelu), then
//     the residual sum as Add, then sum_act; the result is quantized when octet's output is quantized;
//   - octet's Quantize/Dequantize nodes are QuantizeLinear/DequantizeLinear; operands that octet holds as
//     attributes (Reshape's shape, Clip's bounds, ...) become opset-13 initializer inputs again.
// Every other op keeps its ONNX name and attributes, so FP32 graphs export as plain ONNX.
#pragma once

#include <string>

#include "graph/graph.h"

namespace octet::onnx {

enum class QdqStyle {
  exact,  // octet's quantization exactly, as above
  // For timing ONNX Runtime's integer kernels: ORT runs a Conv in integers only when a QuantizeLinear follows
  // it directly, so the exact form of a Conv with a fused residual Add or LeakyRelu runs as a float
  // FusedConv. This style requantizes each such Conv's result (with the output's scale and zero point)
  // before the Add / LeakyRelu, which ORT then runs as QLinearConv + QLinearAdd / QLinearLeakyRelu. The
  // values are no longer octet's (a residual branch clipped by the output's range): use it for speed only.
  integer_post_ops,
};

// The serialized ONNX ModelProto. Throws Error naming the node for what opset 17 cannot express.
std::string qdq_onnx_model(const Graph& graph, QdqStyle style = QdqStyle::exact);

// Writes qdq_onnx_model(graph) to `path`; throws Error naming the path when it cannot be written.
void export_qdq_onnx(const Graph& graph, const std::string& path, QdqStyle style = QdqStyle::exact);

}  // namespace octet::onnx