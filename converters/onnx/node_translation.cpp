#include "converters/onnx/node_translation.h"

#include <algorithm>

#include "converters/onnx/operand_attributes.h"
#include "converters/onnx/proto.h"
#include "graph/ops.h"

namespace octet::onnx {
namespace {

[[noreturn]] void fail(const Node& node, const std::string& what) { throw Error(node_label(node) + ": " + what); }

// ONNX ops that never reach octet's graph as such: they are folded into constants (Shape arithmetic, the
// class-token Expand/Where/Equal of Vision Transformers) or removed (Dropout becomes an Identity, which a graph
// pass removes). Having no op-table entry, they carry their ONNX arity here, checked before anything reads
// their inputs.
struct ImportOnlyOp {
  const char* name;
  int min_inputs, max_inputs, min_outputs, max_outputs;
};
const ImportOnlyOp kImportOnlyOps[] = {
    {"Constant", 0, 0, 1, 1}, {"ConstantOfShape", 1, 1, 1, 1}, {"Shape", 1, 1, 1, 1},
    {"Cast", 1, 1, 1, 1},     {"Equal", 2, 2, 1, 1},           {"Where", 3, 3, 1, 1},
    {"Expand", 2, 2, 1, 1},   {"Range", 3, 3, 1, 1},           {"Dropout", 1, 3, 1, 2},
    {"Mod", 2, 2, 1, 1},      {"ScatterND", 3, 3, 1, 1},       {"Not", 1, 1, 1, 1}};

const ImportOnlyOp* find_import_only(const std::string& op) {
  for (const ImportOnlyOp& entry : kImportOnlyOps)
    if (op == entry.name) return &entry;
  return nullptr;
}
bool is_import_only(const std::string& op) { return find_import_only(op) != nullptr; }

// The ONNX node's arity, before canonicalization or folding reads any input: the import-only ops' own, and
// for the others the op table's required inputs (ONNX may pass more, operands that become attributes).
void check_onnx_arity(const Node& node) {
  int n_in = static_cast<int>(node.inputs.size()), n_out = static_cast<int>(node.outputs.size());
  int min_in = 0, max_in = n_in, min_out = 1, max_out = n_out;
  if (const ImportOnlyOp* entry = find_import_only(node.op)) {
    min_in = entry->min_inputs, max_in = entry->max_inputs, min_out = entry->min_outputs, max_out = entry->max_outputs;
  } else {
    min_in = find_op_schema(node.op)->min_inputs;
  }
  if (n_in < min_in || n_in > max_in)
    fail(node,
         "has " + std::to_string(n_in) + " inputs, expects " +
             (min_in == max_in ? std::to_string(min_in) : std::to_string(min_in) + ".." + std::to_string(max_in)));
  if (n_out < min_out || n_out > max_out)
    fail(node,
         "has " + std::to_string(n_out) + " outputs, expects " +
             (min_out == max_out ? std::to_string(min_out) : std::to_string(min_out) + ".." + std::to_string(max_out)));
  for (int i = 0; i < min_in; ++i)
    if (node.inputs[i].empty()) fail(node, "required input " + std::to_string(i) + " is missing");
  for (const std::string& output : node.outputs)
    if (output.empty()) fail(node, "has an unnamed output");
}

std::string supported_ops() {
  std::string list;
  for (const OpSchema& schema : op_schemas()) list += (list.empty() ? "" : ", ") + std::string(schema.name);
  list += "; folded or removed at import:";
  for (const ImportOnlyOp& op : kImportOnlyOps) list += std::string(&op == kImportOnlyOps ? " " : ", ") + op.name;
  return list;
}

AttrValue operand_value(const Node& node, const OperandAttribute& operand, const ConstantFolder& folder) {
  const std::string& name = node.inputs[operand.index];
  std::string label = "input " + std::to_string(operand.index) + " '" + operand.onnx_name + "'";
  if (const Constant* value = folder.constant(name)) {
    if (operand.scalar) {
      if (value->elements() != 1) fail(node, label + " must hold one value, has shape " + shape_str(value->shape));
      return value->dtype == DType::f32 ? value->as_floats()[0] : static_cast<float>(value->as_ints()[0]);
    }
    if (value->dtype != DType::s64 && value->dtype != DType::s32)
      fail(node, label + " must be an integer tensor, is " + dtype_name(value->dtype));
    return value->as_ints();
  }
  if (folder.depends_on_batch(name) && node.op == "Reshape") return folder.reshape_target(node, name);
  std::string why = folder.depends_on_batch(name) ? "depends on the batch size" : "is computed at run time";
  fail(node, label + " must be a constant (octet needs static shapes); tensor '" + name + "' " + why);
}

void move_operands_to_attributes(Node& node, const ConstantFolder& folder) {
  bool has_operands = false;
  for (const OperandAttribute& operand : kOperandAttributes) {
    if (node.op != operand.op) continue;
    has_operands = true;
    if (operand.index < node.inputs.size() && !node.inputs[operand.index].empty())
      node.attrs.set(operand.attribute, operand_value(node, operand, folder));
  }
  if (has_operands) node.inputs.resize(1);
}

Constant constant_node_value(const ::onnx::NodeProto& proto, const Node& node) {
  if (proto.attribute_size() != 1 || node.outputs.size() != 1) fail(node, "needs one value attribute and one output");
  const ::onnx::AttributeProto& a = proto.attribute(0);
  const std::string& kind = a.name();
  if (kind == "value") return constant_from_tensor_proto(a.t(), node_label(node) + ": attribute 'value'");
  if (kind == "value_float") return Constant::from_floats({}, {a.f()});
  if (kind == "value_floats") return Constant::from_floats({a.floats_size()}, {a.floats().begin(), a.floats().end()});
  if (kind == "value_int") return Constant::from_ints({}, {a.i()});
  if (kind == "value_ints") return Constant::from_ints({a.ints_size()}, {a.ints().begin(), a.ints().end()});
  fail(node, "attribute '" + kind + "' is not supported (octet reads value, value_float(s), value_int(s))");
}

// ConstantOfShape's one-element 'value' tensor -> canonical attributes 'value' (float or int) and 'dtype'.
void set_fill_value(Node& node, const ::onnx::TensorProto& tensor) {
  Constant value = constant_from_tensor_proto(tensor, node_label(node) + ": attribute 'value'");
  if (value.elements() != 1) fail(node, "attribute 'value' must hold one element, has shape " + shape_str(value.shape));
  node.attrs.set("dtype", std::string(dtype_name(value.dtype)));
  if (value.dtype == DType::f32)
    node.attrs.set("value", value.as_floats()[0]);
  else if (value.dtype == DType::s64 || value.dtype == DType::s32)
    node.attrs.set("value", value.as_ints()[0]);
  else
    fail(node, std::string("attribute 'value' has type ") + dtype_name(value.dtype) + ", octet folds f32, s64 and s32");
}

// Softmax before opset 13 flattens the input at `axis` (default 1) and normalizes over everything after it.
// That equals opset 13's softmax over the last axis exactly when the dimensions from `axis` to the one before
// last are 1 (at every batch size); other cases have no canonical form.
void convert_legacy_softmax(Node& node, const ConstantFolder& folder, int64_t opset) {
  std::array<TensorInfo, 2> infos = folder.infos(node, node.inputs.at(0));
  int64_t rank = static_cast<int64_t>(infos[0].shape.size());
  int64_t axis = normalize_axis(node, node.attrs.get_int("axis", 1), rank);
  for (const TensorInfo& info : infos)
    for (int64_t d = axis; d < rank - 1; ++d)
      if (info.shape[d] != 1)
        fail(node, "opset-" + std::to_string(opset) + " Softmax over axis " + std::to_string(axis) +
                       " flattens dimensions " + std::to_string(axis) + ".." + std::to_string(rank - 1) + " of input " +
                       shape_str(info.shape) +
                       "; octet's Softmax (opset 13) normalizes one axis, which is equivalent only when the dimensions "
                       "between axis and the last are 1");
  node.attrs.set("axis", int64_t{-1});
}

// Opset differences and inference-only simplifications, before operands move to attributes.
void canonicalize(Node& node, const ConstantFolder& folder, int64_t opset) {
  if (node.op == "Dropout") {
    if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
      const Constant* training = folder.constant(node.inputs[2]);
      bool is_false =
          training && std::all_of(training->bytes->begin(), training->bytes->end(), [](uint8_t b) { return b == 0; });
      // In training mode a ratio of constant 0 drops nothing (torchvision's Swin exports its attention dropout so).
      const Constant* ratio =
          node.inputs.size() > 1 && !node.inputs[1].empty() ? folder.constant(node.inputs[1]) : nullptr;
      bool drops_nothing = ratio && ratio->dtype == DType::f32 && ratio->elements() == 1 && ratio->as_floats()[0] == 0;
      if (!is_false && !drops_nothing)
        fail(node,
             "input 2 'training_mode' must be a constant false, or input 1 'ratio' a constant 0 (octet runs "
             "inference)");
    }
    node.op = "Identity";  // inference Dropout passes its input through; the mask output is dropped
    node.inputs.resize(1);
    node.outputs.resize(1);
    node.attrs = {};
  } else if (node.op == "BatchNormalization") {
    if (node.attrs.get_int("training_mode", 0) != 0)
      fail(node, "attribute training_mode=1 is not supported (inference only)");
    if (node.attrs.get_int("spatial", 1) != 1) fail(node, "attribute spatial=0 is not supported");
    node.attrs.values.erase("training_mode");
    node.attrs.values.erase("spatial");
    node.outputs.resize(1);  // running mean and variance outputs exist only in training
  } else if (node.op == "LayerNormalization") {
    // Mean and InvStdDev are kept when named (the ONNX node tests read them); eliminate_dead_code drops them
    // when nothing reads them. An unnamed Mean before a named InvStdDev gets a name of its own.
    while (node.outputs.size() > 1 && node.outputs.back().empty()) node.outputs.pop_back();
    if (node.outputs.size() == 3 && node.outputs[1].empty()) node.outputs[1] = node.outputs[0] + "/mean";
  } else if (node.op == "Softmax" && opset < 13) {
    convert_legacy_softmax(node, folder, opset);
  } else if (node.op == "Cast") {
    int64_t to = node.attrs.get_int("to", 0);
    node.attrs.set(
        "to",
        std::string(dtype_name(dtype_from_onnx(static_cast<int32_t>(to), node_label(node) + ": attribute 'to'"))));
  }
}

}  // namespace

void translate_node(const ::onnx::NodeProto& proto, const std::string& name, int64_t opset, Graph& graph,
                    ConstantFolder& folder) {
  Node node;
  node.name = name;
  node.op = proto.op_type();
  node.inputs.assign(proto.input().begin(), proto.input().end());
  node.outputs.assign(proto.output().begin(), proto.output().end());
  while (!node.inputs.empty() && node.inputs.back().empty()) node.inputs.pop_back();  // omitted optional inputs
  while (!node.outputs.empty() && node.outputs.back().empty()) node.outputs.pop_back();
  if (!proto.domain().empty() && proto.domain() != "ai.onnx")
    fail(node, "is in domain '" + proto.domain() + "'; octet imports only the default ONNX domain");
  if (!find_op_schema(node.op) && !is_import_only(node.op))
    fail(node, "unsupported op '" + node.op + "'; octet supports " + supported_ops());
  check_onnx_arity(node);
  if (node.op == "Constant") {
    folder.add_constant(node.outputs.at(0), constant_node_value(proto, node));
    return;
  }
  for (const ::onnx::AttributeProto& attribute : proto.attribute()) {
    if (node.op == "ConstantOfShape" && attribute.name() == "value")
      set_fill_value(node, attribute.t());
    else
      node.attrs.set(attribute.name(), attribute_value(attribute, node_label(node)));
  }
  canonicalize(node, folder, opset);
  move_operands_to_attributes(node, folder);
  if (find_op_schema(node.op)) validate_node(node);  // canonical arity and attributes, before folding reads them
  if (folder.fold(node)) return;
  if (!find_op_schema(node.op))
    fail(node,
         "unsupported op '" + node.op + "' at run time (octet folds it into a constant when its inputs are constants)");
  if (node.op == "Gather" && !folder.constant(node.inputs[1])) fail(node, "input 1 'indices' must be a constant");
  folder.track(node);
  graph.nodes.push_back(std::move(node));
}

}  // namespace octet::onnx