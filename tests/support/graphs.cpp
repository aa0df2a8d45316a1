#include "support/graphs.h"

namespace octet::testing {

Graph fp32_graph(const std::string& name, const std::vector<std::string>& inputs,
                 const std::vector<std::string>& outputs,
                 const std::vector<std::pair<std::string, Shape>>& batch_tensors) {
  Graph graph;
  graph.name = name;
  graph.inputs = inputs;
  graph.outputs = outputs;
  for (const auto& [tensor, dims] : batch_tensors) {
    Shape shape = {kBatchDim};
    shape.insert(shape.end(), dims.begin(), dims.end());
    graph.tensors[tensor] = {DType::f32, shape, {}};
  }
  return graph;
}

}  // namespace octet::testing
