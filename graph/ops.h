// The op table: every op octet's graph may hold, its arity, its allowed attributes and its shape inference.
// An op missing here is rejected by name wherever a graph is read, converted or prepared.
//
// Canonical attributes (operands that ONNX passes as constant inputs are attributes here):
//   Conv        kernel_shape, strides, dilations, pads (begin..., end...), group; auto_pad resolved to pads.
//               Fused post-ops: act, act_alpha, act_beta (act = relu|clip|leaky_relu|hard_sigmoid|hard_swish|gelu|""
//               applied to conv output); optional 4th input "sum" added after act, then sum_act, sum_act_alpha,
//               sum_act_beta.
//   Gemm        alpha, beta, transA, transB           MatMul      (none); optional 3rd input: bias [N] added
//                                                     to every row (fused from MatMul + Add by the converter)
//                                                     and act, act_alpha, act_beta as for Conv
//   BatchNormalization epsilon                        Relu        (none)
//   LeakyRelu   alpha                                 Clip        min, max (absent = unbounded)
//   Sigmoid     (none)                                Add, Sub, Mul, Div (numpy broadcasting)
//   HardSigmoid alpha, beta (y = clip(alpha x + beta, 0, 1))   HardSwish (none: x * HardSigmoid_{1/6,1/2}(x))
//   Gelu        approximate ("none": x/2 (1 + erf(x/sqrt2)), the fused form of ONNX's Erf pattern; opset 20 op)
//   Erf, Sqrt   (none)                                Pow         exponent (ONNX's constant input Y)
//   LayerNormalization axis, epsilon, stash_type; inputs X, scale, optional bias (over dims [axis, rank))
//   MaxPool     kernel_shape, strides, dilations, pads, ceil_mode
//   AveragePool kernel_shape, strides, pads, ceil_mode, count_include_pad
//   GlobalAveragePool (none)                          Flatten     axis
//   Reshape     shape, allowzero                      Concat      axis
//   Softmax     axis (opset >= 13 semantics)          Identity    (none)
//   Pad         pads, mode (constant|reflect|edge), value
//   ReduceMean  axes, keepdims                        Transpose   perm
//   Slice       starts, ends, axes, steps             Split       axis, split
//   Squeeze     axes                                  Unsqueeze   axes
//   Gather      axis; indices is a constant input
//   Quantize    (none): f32 -> u8/s8 with the output tensor's quant parameters
//   Dequantize  (none): u8/s8 -> f32 with the input tensor's quant parameters
// Quantized tensors (u8/s8 activations, s8 weights with per-channel scales, s32 biases) carry their
// QuantParams in TensorInfo; Conv, Gemm, pooling and the copy ops read them from their inputs/outputs.
// INT8 Conv/Gemm weights may carry zero points (per tensor or per output channel): the integers are then
// w - zero_point, up to [-255, 255] (imported u8 weights), computed exactly (kernels/quantized_linear.h).
// An Add whose inputs and output are all u8 (or all s8, one scale and zero point each; an input may be such a
// constant) is the INT8 Add of ONNX Runtime's QLinearAdd arithmetic (kernels/binary.cpp).
#pragma once

#include <string>
#include <vector>

#include "graph/graph.h"

namespace octet {

struct OpSchema {
  const char* name;
  // The kernel family that runs it (kernels/registry.cpp: "conv", "eltwise", ...): an optimized and a
  // reference kernel each. Several ops may share a family (Relu, Clip, ... are "eltwise").
  const char* kernel_family;
  int min_inputs, max_inputs;
  int min_outputs, max_outputs;
  std::vector<std::string> attributes;  // every attribute the op accepts; others are rejected
  // Output shapes and dtypes from concrete input shapes. Throws Error naming the node on bad input.
  void (*infer)(const Node& node, const std::vector<TensorInfo>& inputs, std::vector<TensorInfo>& outputs);
};

// nullptr when `op` is unknown.
const OpSchema* find_op_schema(const std::string& op);
const std::vector<OpSchema>& op_schemas();

// Checks arity and attribute names of `node` against the table; throws naming node, op and field.
void validate_node(const Node& node);

// "node 'conv1' (Conv)": the prefix of every error about a node.
std::string node_label(const Node& node);

// Geometry of a windowed op (Conv, MaxPool, AveragePool) on an input of shape [N, C, spatial...].
struct WindowGeometry {
  std::vector<int64_t> kernel, strides, dilations, pads_begin, pads_end, output;  // per spatial dim
};
// `kernel` from the weights (Conv) or kernel_shape; handles auto_pad and ceil_mode.
WindowGeometry window_geometry(const Node& node, const Shape& input, const std::vector<int64_t>& kernel);

// Normalizes a possibly negative axis against `rank`; throws naming the node when out of range.
int64_t normalize_axis(const Node& node, int64_t axis, int64_t rank);

// Numpy-style broadcast of two shapes; throws naming the node when incompatible.
Shape broadcast_shapes(const Node& node, const Shape& a, const Shape& b);

}  // namespace octet
