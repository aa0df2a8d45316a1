#include "converters/onnx/qdq_export.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <type_traits>
#include <variant>

#include "converters/onnx/operand_attributes.h"
#include "converters/onnx/proto.h"
#include "graph/fused_activation.h"
#include "graph/ops.h"

namespace octet::onnx {
namespace {

// 13: per-axis QuantizeLinear/DequantizeLinear, operands as inputs; 17: LayerNormalization (HardSwish is 14).
constexpr int64_t kOpsetVersion = 17;
constexpr int64_t kIrVersion = 8;
constexpr const char* kBatchDimName = "N";

// A Conv's fused post-ops, which the export expands into ONNX nodes of their own.
const std::set<std::string> kConvPostOpAttributes = {"act",     "act_alpha",     "act_beta",
                                                     "sum_act", "sum_act_alpha", "sum_act_beta"};

int32_t onnx_dtype(DType dtype) {
  switch (dtype) {
    case DType::f32: return ::onnx::TensorProto::FLOAT;
    case DType::u8: return ::onnx::TensorProto::UINT8;
    case DType::s8: return ::onnx::TensorProto::INT8;
    case DType::s32: return ::onnx::TensorProto::INT32;
    case DType::s64: return ::onnx::TensorProto::INT64;
  }
  throw Error("dtype has no ONNX element type");
}

void set_attribute(::onnx::NodeProto& node, const std::string& name, const AttrValue& value) {
  ::onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  std::visit(
      [a](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          a->set_type(::onnx::AttributeProto::INT);
          a->set_i(v);
        } else if constexpr (std::is_same_v<T, float>) {
          a->set_type(::onnx::AttributeProto::FLOAT);
          a->set_f(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          a->set_type(::onnx::AttributeProto::STRING);
          a->set_s(v);
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          a->set_type(::onnx::AttributeProto::INTS);
          for (int64_t x : v) a->add_ints(x);
        } else {
          a->set_type(::onnx::AttributeProto::FLOATS);
          for (float x : v) a->add_floats(x);
        }
      },
      value);
}

// The zero points of `params` as a constant of the quantized dtype, shaped like the scales.
Constant zero_point_constant(DType dtype, const QuantParams& params, const Shape& shape) {
  Constant c;
  c.dtype = dtype;
  c.shape = shape;
  std::vector<uint8_t> bytes(params.zero_points.size() * dtype_size(dtype));
  for (size_t i = 0; i < params.zero_points.size(); ++i) {
    int32_t zp = params.zero_points[i];
    uint8_t* at = bytes.data() + i * dtype_size(dtype);
    if (dtype == DType::u8)
      *at = static_cast<uint8_t>(zp);
    else if (dtype == DType::s8)
      *at = static_cast<uint8_t>(static_cast<int8_t>(zp));
    else
      std::memcpy(at, &zp, sizeof zp);
  }
  c.bytes = make_bytes(std::move(bytes));
  return c;
}

// One ONNX node appended after a Conv for one of its fused post-ops; it reads the running value first.
struct PostOpNode {
  std::string op, label;
  std::vector<std::string> extra_inputs;
  Attributes attrs;
};

class QdqExporter {
 public:
  QdqExporter(const Graph& graph, QdqStyle style) : graph_(graph), style_(style) {}

  std::string run() {
    model_.set_ir_version(kIrVersion);
    model_.set_producer_name("octet");
    ::onnx::OperatorSetIdProto* opset = model_.add_opset_import();
    opset->set_domain("");
    opset->set_version(kOpsetVersion);
    out_ = model_.mutable_graph();
    out_->set_name(graph_.name.empty() ? "octet" : graph_.name);
    for (const std::string& name : graph_.inputs) add_value_info(*out_->add_input(), name, graph_.tensor(name));
    for (const Node& node : graph_.nodes) export_node(node);
    for (const std::string& name : graph_.outputs) {
      const Constant* folded = graph_.find_constant(name);
      if (folded) add_initializer(name, *folded);
      add_value_info(*out_->add_output(), name,
                     folded ? TensorInfo{folded->dtype, folded->shape, {}} : graph_.tensor(name));
    }
    return model_.SerializeAsString();
  }

 private:
  bool is_quantized_activation(const std::string& name) const {
    auto it = graph_.tensors.find(name);
    return !graph_.is_constant(name) && it != graph_.tensors.end() && it->second.quant.present();
  }

  void export_node(const Node& node) {
    if (node.op == "Quantize") return quantize(float_operand(node, 0), node.outputs[0], node.name);
    if (node.op == "Dequantize") {
      const TensorInfo& input = graph_.tensor(node.inputs[0]);
      return dequantize(node.inputs[0], input.dtype, input.quant, node.inputs[0], node.outputs[0], node.name);
    }
    if (node.op == "Gelu") return export_gelu(node);
    // A Conv's input 3 is its fused residual sum, which the Add post-op reads.
    size_t data_inputs = node.op == "Conv" ? std::min<size_t>(node.inputs.size(), 3) : node.inputs.size();
    std::vector<std::string> inputs;
    for (size_t i = 0; i < data_inputs; ++i) inputs.push_back(node.inputs[i].empty() ? "" : float_operand(node, i));
    Attributes attrs = onnx_attributes(node, inputs);
    while (!inputs.empty() && inputs.back().empty()) inputs.pop_back();

    // Float results; a quantized output is then QuantizeLinear of "<name>/float".
    std::vector<std::string> float_outputs;
    for (const std::string& y : node.outputs) float_outputs.push_back(is_quantized_activation(y) ? y + "/float" : y);
    std::vector<PostOpNode> post_ops = node.op == "Conv" ? conv_post_ops(node) : std::vector<PostOpNode>{};
    if (node.op == "MatMul") {  // the fused bias (ONNX's MatMul has two inputs: then Add) and activation
      if (inputs.size() > 2) post_ops.push_back({"Add", "bias", {inputs[2]}, {}});
      add_activation(node, "act", post_ops.empty() ? pre_post_ops_name(node) : node.outputs[0] + "/bias", post_ops);
      inputs.resize(2);
      for (const std::string& name : kConvPostOpAttributes) attrs.values.erase(name);
    }
    std::vector<std::string> outputs = float_outputs;
    if (!post_ops.empty()) outputs[0] = pre_post_ops_name(node);  // before the post-ops
    add_node(node.op, node.name, inputs, outputs, attrs);
    std::string value = outputs[0];
    for (size_t k = 0; k < post_ops.size(); ++k) {
      const PostOpNode& step = post_ops[k];
      if (style_ == QdqStyle::integer_post_ops && (step.op == "Add" || step.op == "LeakyRelu") && value == outputs[0] &&
          is_quantized_activation(node.outputs[0])) {
        // The Conv result requantized with the output's parameters, so ONNX Runtime runs QLinearConv and then
        // QLinearAdd / QLinearLeakyRelu instead of a float Conv (timing only: the values are not octet's).
        const TensorInfo& out = graph_.tensor(node.outputs[0]);
        std::string q = value + "/requantized", dq = value + "/requantized/dequantized";
        quantize(value, q, q + "/QuantizeLinear", node.outputs[0]);
        dequantize(q, out.dtype, out.quant, node.outputs[0], dq, dq + "/DequantizeLinear");
        value = dq;
      }
      std::string result = k + 1 == post_ops.size() ? float_outputs[0] : node.outputs[0] + "/" + step.label;
      std::vector<std::string> step_inputs = {value};
      step_inputs.insert(step_inputs.end(), step.extra_inputs.begin(), step.extra_inputs.end());
      add_node(step.op, node.name + "/" + step.label, step_inputs, {result}, step.attrs);
      value = result;
    }
    for (size_t o = 0; o < node.outputs.size(); ++o)
      if (float_outputs[o] != node.outputs[o])
        quantize(float_outputs[o], node.outputs[o], node.outputs[o] + "/QuantizeLinear");
  }

  // The node's attributes as ONNX has them: fused post-ops dropped (they become nodes), operands moved to
  // initializer inputs appended to `inputs` ("" for an absent optional one).
  Attributes onnx_attributes(const Node& node, std::vector<std::string>& inputs) {
    Attributes attrs = node.attrs;
    if (node.op == "Conv")
      for (const std::string& name : kConvPostOpAttributes) attrs.values.erase(name);
    if (node.op == "Reshape" && node.attrs.get_int("allowzero", 0) == 0)
      attrs.values.erase("allowzero");                            // the default
    for (const OperandAttribute& operand : kOperandAttributes) {  // opset 17 takes them as inputs
      if (node.op != operand.op) continue;
      if (!node.attrs.has(operand.attribute)) {
        inputs.push_back("");
        continue;
      }
      std::string name = node.name + "/" + operand.attribute;
      add_initializer(name, operand.scalar ? Constant::from_floats({}, {node.attrs.get_float(operand.attribute, 0)})
                                           : Constant::from_ints(
                                                 {static_cast<int64_t>(node.attrs.get_ints(operand.attribute).size())},
                                                 node.attrs.get_ints(operand.attribute)));
      inputs.push_back(name);
      attrs.values.erase(operand.attribute);
    }
    return attrs;
  }

  static std::string pre_post_ops_name(const Node& node) { return node.outputs[0] + "/" + node.op; }

  // Gelu (opset 20) as the Erf form exporters write: x * (Erf(x * 1/sqrt2) + 1) * 0.5.
  void export_gelu(const Node& node) {
    std::string x = float_operand(node, 0), base = node.outputs[0] + "/gelu";
    bool quantized = is_quantized_activation(node.outputs[0]);
    std::string y = quantized ? node.outputs[0] + "/float" : node.outputs[0];
    add_initializer(base + "/c", Constant::from_floats({}, {0.70710678118654752f}));
    add_initializer(base + "/one", Constant::from_floats({}, {1.0f}));
    add_initializer(base + "/half", Constant::from_floats({}, {0.5f}));
    add_node("Mul", base + "/scale", {x, base + "/c"}, {base + "/scaled"}, {});
    add_node("Erf", base + "/erf", {base + "/scaled"}, {base + "/erf_out"}, {});
    add_node("Add", base + "/add", {base + "/erf_out", base + "/one"}, {base + "/plus1"}, {});
    add_node("Mul", base + "/mul", {x, base + "/plus1"}, {base + "/xphi2"}, {});
    add_node("Mul", node.name, {base + "/xphi2", base + "/half"}, {y}, {});
    if (quantized) quantize(y, node.outputs[0], node.outputs[0] + "/QuantizeLinear");
  }

  // After the Conv itself: act, then the residual sum (Add), then sum_act.
  std::vector<PostOpNode> conv_post_ops(const Node& conv) {
    std::vector<PostOpNode> steps;
    add_activation(conv, "act", pre_post_ops_name(conv), steps);
    if (conv.inputs.size() > 3 && !conv.inputs[3].empty()) {
      steps.push_back({"Add", "sum", {float_operand(conv, 3)}, {}});
      add_activation(conv, "sum_act", conv.outputs[0] + "/sum", steps);
    }
    return steps;
  }

  // `x`: the name of the value the activation reads (GELU reads it twice).
  void add_activation(const Node& conv, const std::string& slot, const std::string& x, std::vector<PostOpNode>& steps) {
    const FusedActivationSpec activation = read_fused_activation(conv, slot);
    switch (activation.kind) {
      case FusedActivation::none: return;
      case FusedActivation::relu: steps.push_back({"Relu", slot, {}, {}}); return;
      case FusedActivation::leaky_relu: {
        Attributes attrs;
        attrs.set("alpha", activation.alpha);
        steps.push_back({"LeakyRelu", slot, {}, attrs});
        return;
      }
      case FusedActivation::hard_sigmoid: {
        Attributes attrs;
        attrs.set("alpha", activation.alpha);
        attrs.set("beta", activation.beta);
        steps.push_back({"HardSigmoid", slot, {}, attrs});
        return;
      }
      case FusedActivation::hard_swish: steps.push_back({"HardSwish", slot, {}, {}}); return;
      case FusedActivation::gelu: {  // opset 20's Gelu, written as its Erf form
        std::string c = conv.name + "/" + slot + "_c", one = conv.name + "/" + slot + "_one",
                    half = conv.name + "/" + slot + "_half";
        add_initializer(c, Constant::from_floats({}, {0.70710678118654752f}));
        add_initializer(one, Constant::from_floats({}, {1.0f}));
        add_initializer(half, Constant::from_floats({}, {0.5f}));
        steps.push_back({"Mul", slot + "_scale", {c}, {}});
        steps.push_back({"Erf", slot + "_erf", {}, {}});
        steps.push_back({"Add", slot + "_plus1", {one}, {}});
        steps.push_back({"Mul", slot + "_x", {x}, {}});
        steps.push_back({"Mul", slot, {half}, {}});
        return;
      }
      case FusedActivation::clip: {
        // Unbounded sides as the float limits: an ONNX initializer may hold infinities, but the passes write them so.
        const auto finite = [](float v) {
          return std::clamp(v, std::numeric_limits<float>::lowest(), std::numeric_limits<float>::max());
        };
        std::string min = conv.name + "/" + slot + "_min", max = conv.name + "/" + slot + "_max";
        add_initializer(min, Constant::from_floats({}, {finite(activation.alpha)}));
        add_initializer(max, Constant::from_floats({}, {finite(activation.beta)}));
        steps.push_back({"Clip", slot, {min, max}, {}});
        return;
      }
    }
  }

  // The name of a float value of input `index` of `node`, emitting what it needs: a constant's initializer,
  // and a DequantizeLinear of this reader's own for a quantized activation, s8 weights or an s32 bias.
  std::string float_operand(const Node& node, size_t index) {
    const std::string& name = node.inputs[index];
    std::string dequantized = name + "/dequantized_for:" + node.name;
    const Constant* constant = graph_.find_constant(name);
    if (!constant) {
      if (!is_quantized_activation(name)) return name;
      const TensorInfo& info = graph_.tensor(name);
      dequantize(name, info.dtype, info.quant, name, dequantized, dequantized + "/DequantizeLinear");
      return dequantized;
    }
    add_initializer(name, *constant);
    auto info = graph_.tensors.find(name);
    if (info != graph_.tensors.end() && info->second.quant.present()) {
      dequantize(name, constant->dtype, info->second.quant, name, dequantized, dequantized + "/DequantizeLinear");
      return dequantized;
    }
    if (constant->dtype == DType::s32 && index == 2 &&
        (node.op == "Conv" || node.op == "Gemm" || node.op == "MatMul")) {
      dequantize(name, DType::s32, bias_params(node), name, dequantized, dequantized + "/DequantizeLinear");
      return dequantized;
    }
    return name;
  }

  // An s32 bias is in accumulator units: scale input_scale * weight_scale[c] per output channel, zero point 0.
  QuantParams bias_params(const Node& node) const {
    const QuantParams& input = graph_.tensor(node.inputs[0]).quant;
    auto weights = graph_.tensors.find(node.inputs[1]);
    if (!input.present() || weights == graph_.tensors.end() || !weights->second.quant.present())
      throw Error(node_label(node) + ": an s32 bias needs a quantized input and quantized weights");
    const std::vector<float>& weight_scales = weights->second.quant.scales;
    int64_t channels = graph_.constants.at(node.inputs[2]).elements();
    QuantParams params;
    params.axis = 0;
    for (int64_t c = 0; c < channels; ++c)
      params.scales.push_back(input.scales[0] * weight_scales[weight_scales.size() == 1 ? 0 : static_cast<size_t>(c)]);
    params.zero_points.assign(static_cast<size_t>(channels), 0);
    return params;
  }

  // QuantizeLinear of `input` into `output` with the parameters of tensor `params_of` (default: `output`'s).
  void quantize(const std::string& input, const std::string& output, const std::string& node_name,
                const std::string& params_of = "") {
    const std::string& owner = params_of.empty() ? output : params_of;
    const TensorInfo& info = graph_.tensor(owner);
    auto [scale, zero_point] = add_quant_params(owner, info.dtype, info.quant);
    add_node("QuantizeLinear", node_name, {input, scale, zero_point}, {output}, axis_attribute(info.quant));
  }

  // DequantizeLinear of `input` (of `dtype`) with `params`, stored as initializers named after `params_owner`.
  // Emitted once per output name: a reader that reads a tensor twice shares its dequantized value.
  void dequantize(const std::string& input, DType dtype, const QuantParams& params, const std::string& params_owner,
                  const std::string& output, const std::string& node_name) {
    if (!emitted_.insert(output).second) return;
    auto [scale, zero_point] = add_quant_params(params_owner, dtype, params);
    add_node("DequantizeLinear", node_name, {input, scale, zero_point}, {output}, axis_attribute(params));
  }

  static Attributes axis_attribute(const QuantParams& params) {
    Attributes attrs;
    if (params.axis >= 0) attrs.set("axis", static_cast<int64_t>(params.axis));
    return attrs;
  }

  // "<owner>/scale" (f32) and "<owner>/zero_point" (the quantized dtype): scalars per tensor, 1-D per axis.
  std::pair<std::string, std::string> add_quant_params(const std::string& owner, DType dtype,
                                                       const QuantParams& params) {
    std::string scale = owner + "/scale", zero_point = owner + "/zero_point";
    Shape shape = params.axis >= 0 ? Shape{static_cast<int64_t>(params.scales.size())} : Shape{};
    add_initializer(scale, Constant::from_floats(shape, params.scales));
    add_initializer(zero_point, zero_point_constant(dtype, params, shape));
    return {scale, zero_point};
  }

  // Adds the initializer once (several readers may share a constant).
  void add_initializer(const std::string& name, const Constant& constant) {
    if (!emitted_.insert(name).second) return;
    ::onnx::TensorProto* tensor = out_->add_initializer();
    tensor->set_name(name);
    tensor->set_data_type(onnx_dtype(constant.dtype));
    for (int64_t d : constant.shape) tensor->add_dims(d);
    tensor->set_raw_data(constant.bytes->data(), constant.bytes->size());
  }

  void add_node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                const std::vector<std::string>& outputs, const Attributes& attrs) {
    ::onnx::NodeProto* node = out_->add_node();
    node->set_op_type(op);
    node->set_name(name);
    for (const std::string& i : inputs) node->add_input(i);
    for (const std::string& o : outputs) node->add_output(o);
    for (const auto& kv : attrs.values) set_attribute(*node, kv.first, kv.second);
  }

  static void add_value_info(::onnx::ValueInfoProto& value, const std::string& name, const TensorInfo& info) {
    value.set_name(name);
    ::onnx::TypeProto::Tensor* type = value.mutable_type()->mutable_tensor_type();
    type->set_elem_type(onnx_dtype(info.dtype));
    ::onnx::TensorShapeProto* shape = type->mutable_shape();
    for (int64_t d : info.shape) {
      if (d == kBatchDim)
        shape->add_dim()->set_dim_param(kBatchDimName);
      else
        shape->add_dim()->set_dim_value(d);
    }
  }

  const Graph& graph_;
  QdqStyle style_;
  ::onnx::ModelProto model_;
  ::onnx::GraphProto* out_ = nullptr;
  std::set<std::string> emitted_;  // initializers and per-reader DequantizeLinear outputs already added
};

}  // namespace

std::string qdq_onnx_model(const Graph& graph, QdqStyle style) { return QdqExporter(graph, style).run(); }

void export_qdq_onnx(const Graph& graph, const std::string& path, QdqStyle style) {
  std::string bytes = qdq_onnx_model(graph, style);
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file || !file.write(bytes.data(), static_cast<std::streamsize>(bytes.size())) || !file.flush())
    throw Error("cannot write QDQ ONNX model '" + path + "': " + std::strerror(errno));
}

}  // namespace octet::onnx