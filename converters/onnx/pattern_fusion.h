// Graph passes that recognise the written-out forms exporters give to modern classifiers' activations and
// normalizations and replace each by the one op octet runs in one kernel:
//   x * HardSigmoid(x) (alpha 1/6, beta 1/2)                         -> HardSwish(x)       (MobileNet v3)
//   x * (Erf(x / sqrt2) + 1) * 0.5, either multiplication order      -> Gelu(x)            (ViT, ConvNeXt)
//   (x - mean) / sqrt(mean((x - mean)^2) + eps) [* gamma] [+ beta]   -> LayerNormalization (LayerNorm at opset < 17)
//   MatMul(x, constant W [K,N]) + constant b [N]                     -> MatMul(x, W, b)    (bias in the matmul)
//   MatMul(x, W[, b]) then Gelu / Relu / HardSwish / ...             -> MatMul with act    (activation too)
// Each intermediate tensor must be read only inside its pattern; constants must have the exact values (to 1e-6
// relative), so nothing that merely resembles a pattern is rewritten.
#pragma once

#include "graph/graph.h"

namespace octet::onnx {

void fuse_activation_patterns(Graph& graph);  // HardSwish and Gelu
void fuse_layer_norm_pattern(Graph& graph);
void fuse_matmul_bias(Graph& graph);
// MatMul with constant weights, then an activation (graph/fused_activation.h) as its only reader -> the
// MatMul's act (after the bias).
void fuse_matmul_activation(Graph& graph);
// Div or Mul by a scalar constant of a linear layer's output (through data movement and a Slice of its
// columns) -> those columns of the weights and bias scaled (attention's q / sqrt(d)). After fuse_matmul_bias.
void fold_scale_into_linear(Graph& graph);

}  // namespace octet::onnx
