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

}  // namespace octet::testing
