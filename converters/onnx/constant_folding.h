// Constant folding during ONNX import. Exporters compute shapes in the graph (PyTorch and Keras:
// Shape -> Gather -> Unsqueeze -> Concat -> Reshape); octet's ops take such operands as static attributes, so
// the importer evaluates those subgraphs here, node by node, with plain C++ on int64/float values.
//
// A Shape of an activation depends on the batch size when the graph input's batch is symbolic. The folder
// therefore tracks every shape and evaluates every folded value twice, as if the batch were 1 and as if it
// were 2 (two "worlds"). Values equal in both are ordinary constants, stored in Graph::constants. Values that
// differ are batch-dependent: they are kept here, may flow into more folding, and end as a Reshape's shape,
// where the batch-dependent entries become 0 ("copy the input's dimension") or -1 ("infer it").
#pragma once

#include <array>
#include <map>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace octet::onnx {

class ConstantFolder {
 public:
  // Takes graph.inputs (with their TensorInfo) and graph.constants as known; writes folded constants there.
  explicit ConstantFolder(Graph& graph);

  void add_constant(const std::string& name, Constant value);
  // The value of `name` when it is a constant at every batch size; nullptr otherwise.
  const Constant* constant(const std::string& name) const;
  bool depends_on_batch(const std::string& name) const;
  // Type and shape of a known tensor in each world (batch 1, batch 2); throws naming `node` if unknown.
  std::array<TensorInfo, 2> infos(const Node& node, const std::string& name) const;

  // Evaluates `node` (canonical attributes already set) when its op is foldable and its inputs are known
  // values; records its output and returns true. Returns false when the node has to run.
  bool fold(const Node& node);
  // Records the output shapes of a node that will run, for later Shape nodes. Throws naming the node when
  // an input is undefined or batch-dependent.
  void track(const Node& node);
  // The 'shape' attribute of a Reshape whose shape input `shape_input` depends on the batch: the entries
  // that follow the batch become 0 or -1. Throws naming the node when no static attribute is equivalent.
  std::vector<int64_t> reshape_target(const Node& reshape, const std::string& shape_input) const;

 private:
  static constexpr size_t kWorlds = 2;  // world w has batch size w + 1
  TensorInfo info_in_world(const Node& node, const std::string& name, size_t world) const;

  Graph& graph_;
  std::map<std::string, std::array<TensorInfo, kWorlds>> activations_;
  std::map<std::string, std::array<Constant, kWorlds>> batch_dependent_;
};

}  // namespace octet::onnx