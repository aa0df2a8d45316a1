#include "converters/onnx/import.h"

#include <algorithm>
#include <set>

#include "converters/onnx/constant_folding.h"
#include "converters/onnx/node_translation.h"
#include "converters/onnx/passes.h"
#include "converters/onnx/pattern_fusion.h"
#include "converters/onnx/proto.h"
#include "graph/shape_inference.h"

namespace octet::onnx {
namespace {

constexpr int64_t kMinOpset = 7, kMaxOpset = 17;  // libonnx 1.12 knows opsets up to 17

int64_t default_domain_opset(const ::onnx::ModelProto& model) {
  for (const ::onnx::OperatorSetIdProto& opset : model.opset_import()) {
    if (!opset.domain().empty() && opset.domain() != "ai.onnx") continue;  // other domains: checked per node
    if (opset.version() < kMinOpset || opset.version() > kMaxOpset)
      throw Error("uses opset " + std::to_string(opset.version()) +
                  " of the default ONNX domain; octet imports opsets " + std::to_string(kMinOpset) + " to " +
                  std::to_string(kMaxOpset));
    return opset.version();
  }
  throw Error("declares no opset of the default ONNX domain");
}

// Initializers and bound inputs become constants; the remaining graph inputs are the graph's inputs.
void read_inputs_and_constants(const ::onnx::GraphProto& proto, const ImportOptions& options, Graph& graph) {
  for (const ::onnx::TensorProto& initializer : proto.initializer())
    graph.constants[initializer.name()] =
        constant_from_tensor_proto(initializer, "initializer '" + initializer.name() + "'");
  std::set<std::string> bound;
  std::string shadowed;  // a graph input that an initializer of the same name makes a constant
  for (const ::onnx::ValueInfoProto& input : proto.input()) {
    const std::string& name = input.name();
    auto binding = options.bind_inputs.find(name);
    if (binding != options.bind_inputs.end()) {
      graph.constants[name] = binding->second;
      bound.insert(name);
      continue;
    }
    if (graph.is_constant(name)) {  // an initializer also listed as input (IR version < 4)
      if (shadowed.empty()) shadowed = name;
      continue;
    }
    TensorInfo info = tensor_info_from_value_info(input, "graph input '" + name + "'");
    if (info.dtype != DType::f32)
      throw Error("graph input '" + name + "' has type " + dtype_name(info.dtype) +
                  "; octet's graph inputs are float (an operand input can be bound to a constant at import)");
    // ONNX's own tests feed empty tensors (bound or not, via options), an image classifier never does.
    if (options.refuse_empty_inputs && std::count(info.shape.begin(), info.shape.end(), 0))
      throw Error("graph input '" + name + "' has shape " + shape_str(info.shape) +
                  ", which holds no elements (batch 0?)");
    graph.inputs.push_back(name);
    graph.tensors[name] = info;
  }
  for (const auto& binding : options.bind_inputs)
    if (!bound.count(binding.first)) throw Error("bound input '" + binding.first + "' is not a graph input");
  if (graph.inputs.empty() && !shadowed.empty())
    throw Error("graph input '" + shadowed +
                "' is also an initializer, which makes it a constant, and no other input is left");
}

// ONNX node names are optional and need not be unique; octet's are both. An unnamed node takes its first
// output's name, which says more in errors than a counter.
std::string unique_node_name(const ::onnx::NodeProto& node, std::set<std::string>& used) {
  std::string base = !node.name().empty() ? node.name() : node.output_size() > 0 ? node.output(0) : node.op_type();
  std::string name = base;
  for (int i = 1; !used.insert(name).second; ++i) name = base + "_" + std::to_string(i);
  return name;
}

void run_passes(Graph& graph, const ImportOptions& options) {
  remove_identities(graph);  // first: an Identity between Conv and BatchNormalization would hide the pair
  if (options.fold_batch_norm) fold_batch_norm(graph);
  if (options.fuse) {
    infer_symbolic_shapes(graph);  // the LayerNorm pattern checks the normalized dims
    fuse_layer_norm_pattern(graph);
    fuse_activation_patterns(graph);  // before the Conv activation fusion: a HardSwish/Gelu becomes a post-op
    fuse_matmul_bias(graph);
    fold_scale_into_linear(graph);
    fuse_matmul_activation(graph);
    fuse_conv_activation(graph);  // before the sum: a Conv's own activation comes before the residual add
    fuse_conv_sum(graph);
    pool_before_pointwise_conv(graph);  // after the activation fusion: only a Conv left without act qualifies
  }
  eliminate_dead_code(graph);  // folded shape subgraphs and replaced weights
}

Graph import_model(const ::onnx::ModelProto& model, const ImportOptions& options) {
  int64_t opset = default_domain_opset(model);
  const ::onnx::GraphProto& proto = model.graph();
  Graph graph;
  graph.name = proto.name();
  read_inputs_and_constants(proto, options, graph);
  for (const ::onnx::ValueInfoProto& output : proto.output()) graph.outputs.push_back(output.name());
  ConstantFolder folder(graph);
  std::set<std::string> node_names;
  for (const ::onnx::NodeProto& node : proto.node())
    translate_node(node, unique_node_name(node, node_names), opset, graph, folder);
  for (const std::string& output : graph.outputs)
    if (folder.depends_on_batch(output))
      throw Error("graph output '" + output +
                  "' is computed from the batch size (a folded Shape), which octet cannot return");
  run_passes(graph, options);
  infer_symbolic_shapes(graph);
  validate_graph(graph);
  return graph;
}

}  // namespace

Graph import_onnx_model(const ::onnx::ModelProto& model, const ImportOptions& options) {
  return import_model(model, options);
}

Graph import_onnx(const std::string& path, const ImportOptions& options) {
  ::onnx::ModelProto model;
  read_proto_file(path, model, "ONNX model");
  try {
    return import_model(model, options);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

Graph import_onnx_bytes(const std::string& bytes, const std::string& source_name, const ImportOptions& options) {
  ::onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) throw Error(source_name + ": not a valid ONNX model (protobuf parse failed)");
  try {
    return import_model(model, options);
  } catch (const Error& e) {
    throw Error(source_name + ": " + e.what());
  }
}

Constant read_tensor_pb(const std::string& path, std::string* name) {
  ::onnx::TensorProto tensor;
  read_proto_file(path, tensor, "ONNX TensorProto");
  if (name) *name = tensor.name();
  return constant_from_tensor_proto(tensor, path + ": tensor '" + tensor.name() + "'");
}

}  // namespace octet::onnx