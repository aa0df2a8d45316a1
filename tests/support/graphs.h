// Small hand-built graphs for tests.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "graph/graph.h"

namespace octet::testing {

// The frame of a small FP32 graph: its name, input and output names, and f32 activations whose stored shapes
// start with the batch dim N (`batch_tensors` gives the other dims). Constants and nodes are the caller's.
Graph fp32_graph(const std::string& name, const std::vector<std::string>& inputs,
                 const std::vector<std::string>& outputs,
                 const std::vector<std::pair<std::string, Shape>>& batch_tensors);

// x -> c1 (3x3, clip 0..6) -> a -> c2 (1x1, relu) -> b -> c3 (1x1, + a; then leaky relu if `leaky_residual`)
// -> c -> MaxPool -> d -> Flatten -> e -> fc (Gemm, transB) -> y, random weights: every post-op kind, a residual
// sum, pooling and a classifier, at batch N.
Graph small_conv_classifier(bool leaky_residual);

// Activation ranges for quantizing small_conv_classifier, as (tensor, (min, max)).
std::vector<std::pair<std::string, std::pair<float, float>>> small_conv_classifier_ranges();

}  // namespace octet::testing
