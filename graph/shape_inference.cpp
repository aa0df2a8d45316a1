#include "graph/shape_inference.h"

#include <set>

#include "graph/ops.h"

namespace octet {
namespace {

// Ops whose kernels read a constant at input 0 (the binary ops broadcast a constant operand; Concat copies
// a ViT class token; Dequantize
// expands quantized weights). Every other op's input 0 is the data it runs on: an activation, because the
// converter folds nodes whose inputs are all constant, and a kernel given a constant there has no buffer.
bool takes_constant_input0(const std::string& op) {
  return op == "Add" || op == "Mul" || op == "Dequantize" || op == "Concat";
}

// Activations at the size limit of graph.h (kMaxTensorBytes) and graph inputs with elements.
void check_activation_size(const std::string& what, const TensorInfo& t, int64_t batch) {
  if (capped_tensor_bytes(t.shape, t.dtype) < 0)
    throw Error(what + " " + shape_str(t.shape) + " of " + dtype_name(t.dtype) +
                (batch != 1 ? " at batch " + std::to_string(batch) : "") + " is larger than the limit of " +
                std::to_string(kMaxTensorBytes) + " bytes for one tensor (graph/FORMAT.md)");
}

}  // namespace

void validate_graph(const Graph& graph) {
  std::set<std::string> defined;
  for (const std::string& in : graph.inputs) {
    if (in.empty()) throw Error("a graph input has an empty name");
    if (!graph.tensors.count(in)) throw Error("graph input '" + in + "' has no tensor entry");
    if (graph.is_constant(in)) throw Error("graph input '" + in + "' is also a constant");
    if (!defined.insert(in).second) throw Error("graph input '" + in + "' is listed twice");
  }
  std::set<std::string> later_outputs;
  for (const Node& node : graph.nodes)
    for (const std::string& o : node.outputs) later_outputs.insert(o);
  std::set<std::string> node_names;
  for (const Node& node : graph.nodes) {
    validate_node(node);
    if (!node_names.insert(node.name).second) throw Error(node_label(node) + ": node name is used twice");
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const std::string& in = node.inputs[i];
      if (i == 0 && graph.is_constant(in) && !takes_constant_input0(node.op))
        throw Error(node_label(node) + ": input 0 '" + in + "' is a constant; " + node.op +
                    " runs on an activation (a node with only constant inputs is folded at conversion)");
      if (in.empty() || defined.count(in) || graph.is_constant(in)) continue;
      if (later_outputs.count(in))
        throw Error(node_label(node) + ": input " + std::to_string(i) + " '" + in +
                    "' is produced by a later node (cycle, or nodes not in run order)");
      throw Error(node_label(node) + ": input " + std::to_string(i) + " '" + in +
                  "' is not defined (dangling tensor name)");
    }
    for (const std::string& o : node.outputs) {
      if (graph.is_constant(o) || !defined.insert(o).second)
        throw Error(node_label(node) + ": output '" + o + "' is produced more than once");
    }
  }
  if (graph.outputs.empty()) throw Error("graph has no outputs");
  std::set<std::string> outputs;
  for (const std::string& o : graph.outputs)
    if (!outputs.insert(o).second) throw Error("graph output '" + o + "' is listed twice");
  for (const std::string& o : graph.outputs)
    // A constant output (everything folded at conversion) is legal: the session fills it once at load.
    if (!defined.count(o) && !graph.is_constant(o))
      throw Error("graph output '" + o + "' is not produced by any node or input");
}

std::map<std::string, TensorInfo> infer_shapes(const Graph& graph, int64_t batch) {
  validate_graph(graph);
  std::map<std::string, TensorInfo> info;
  for (const auto& kv : graph.constants) {
    TensorInfo t;
    t.dtype = kv.second.dtype;
    t.shape = kv.second.shape;
    // A quantized constant (s8 weights) keeps its scales in its tensors entry.
    auto stored = graph.tensors.find(kv.first);
    if (stored != graph.tensors.end()) t.quant = stored->second.quant;
    info[kv.first] = t;
  }
  for (const std::string& in : graph.inputs) {
    TensorInfo t = graph.tensors.at(in);
    for (int64_t& d : t.shape)
      if (d == kBatchDim) d = batch;
    check_activation_size("graph input '" + in + "'", t, batch);
    info[in] = t;
  }
  for (const Node& node : graph.nodes) {
    std::vector<TensorInfo> inputs;
    for (const std::string& in : node.inputs) inputs.push_back(in.empty() ? TensorInfo{} : info.at(in));
    std::vector<TensorInfo> outputs;
    find_op_schema(node.op)->infer(node, inputs, outputs);
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      auto it = graph.tensors.find(node.outputs[i]);
      // A stored dtype/quantization (INT8 tensors) wins over the inferred default.
      if (it != graph.tensors.end()) {
        outputs[i].dtype = it->second.dtype;
        outputs[i].quant = it->second.quant;
      }
      check_activation_size(node_label(node) + ": output '" + node.outputs[i] + "'", outputs[i], batch);
      info[node.outputs[i]] = outputs[i];
    }
  }
  return info;
}

void infer_symbolic_shapes(Graph& graph) {
  auto at1 = infer_shapes(graph, 1);
  auto at2 = infer_shapes(graph, 2);
  for (const auto& kv : at1) {
    if (graph.is_constant(kv.first)) continue;
    TensorInfo t = kv.second;
    const Shape& other = at2.at(kv.first).shape;
    for (size_t d = 0; d < t.shape.size(); ++d)
      if (t.shape[d] != other[d]) t.shape[d] = kBatchDim;
    auto it = graph.tensors.find(kv.first);
    if (it != graph.tensors.end()) {
      t.dtype = it->second.dtype;
      t.quant = it->second.quant;
    }
    graph.tensors[kv.first] = t;
  }
}

}  // namespace octet
