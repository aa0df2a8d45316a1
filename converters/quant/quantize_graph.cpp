#include "converters/quant/quantize_graph.h"

#include <algorithm>

#include "converters/quant/graph_writer.h"
#include "graph/fused_activation.h"
#include "graph/ops.h"
#include "graph/quantization.h"
#include "graph/shape_inference.h"

namespace octet::quant {
namespace {

bool has_input(const Node& node, size_t i) { return node.inputs.size() > i && !node.inputs[i].empty(); }

// A MatMul of two activations, as attention's Q K^T and softmax V: INT8 as u8 A x s8 B (zero point 0, so
// oneDNN needs no weight zero point), without bias or fused activation.
bool is_activation_matmul(const Node& node, const Graph& graph) {
  if (node.op != "MatMul" || node.inputs.size() != 2 || node.attrs.has("act")) return false;
  if (graph.is_constant(node.inputs[0]) || graph.is_constant(node.inputs[1]) || node.inputs[0] == node.inputs[1])
    return false;
  // Rank-4 activations may be stored channels-last or in a permuted order (kernels/layouts.cpp); on
  // channels-last strides oneDNN's int8 matmul runs ref_int8 (tests/test_kernels_int8.cpp), so those stay FP32.
  const size_t a = graph.tensor(node.inputs[0]).shape.size(), b = graph.tensor(node.inputs[1]).shape.size();
  return a >= 2 && a <= 3 && b >= 2 && b <= 3;
}

// Whether the policy computes `node` in INT8 (before looking at its neighbours).
bool wants_int8(const Node& node, const Graph& graph, const QuantizeOptions& options, const std::string& classifier) {
  if (node.op != "Conv" && node.op != "Gemm" && node.op != "MatMul") return false;
  if (options.fp32_nodes.count(node.name) || (node.name == classifier && !options.int8_classifier)) return false;
  if (is_activation_matmul(node, graph)) return options.int8_attention;
  if (!graph.is_constant(node.inputs[1]) || (has_input(node, 2) && !graph.is_constant(node.inputs[2]))) return false;
  if (node.op == "Conv") return true;
  // A linear layer of a Transformer: constant weights [K, N] on activations of rank 2 to 4 (rows of tokens;
  // ConvNeXt's and Swin's [N, H, W, C] after their permute, which the runtime lays out with dense rows), which
  // the kernel runs as a Gemm of A's rows.
  if (node.op == "MatMul") {
    const Shape& a = graph.tensor(node.inputs[0]).shape;
    return graph.constants.at(node.inputs[1]).shape.size() == 2 && a.size() >= 2 && a.size() <= 4;
  }
  if (node.op == "Gemm")
    return node.attrs.get_int("transA", 0) == 0 && node.attrs.get_float("alpha", 1) == 1.0f &&
           node.attrs.get_float("beta", 1) == 1.0f &&
           (!has_input(node, 2) ||
            graph.constants.at(node.inputs[2]).elements() ==
                graph.constants.at(node.inputs[1]).shape[node.attrs.get_int("transB", 0) ? 0 : 1]);
  return false;
}

// Whether a node's fused activation makes its output non-negative whatever the calibration saw.
bool non_negative_by_construction(const Node& node) {
  auto non_negative = [&](const std::string& slot) {
    return !slot.empty() && read_fused_activation(node, slot).non_negative();
  };
  if (node.op == "Relu") return true;
  if (has_input(node, 3)) return non_negative(node.attrs.has("sum_act") ? "sum_act" : "");
  return non_negative("act");
}

class Quantizer : QuantizedGraphWriter {
 public:
  Quantizer(const Graph& fp32, const std::map<std::string, TensorStats>& stats, const QuantizeOptions& options)
      : QuantizedGraphWriter(fp32), stats_(stats), options_(options), classifier_(final_classifier(fp32)) {
    for (const Node& node : fp32.nodes) int8_[node.name] = wants_int8(node, fp32, options, classifier_);
    quantized_dtype_ = options.activations == ActivationMode::symmetric ? DType::s8 : DType::u8;
  }

  Graph run(std::vector<QuantizedLayer>* layers) {
    for (const Node& node : in_.nodes) {
      Node n = node;
      if (int8_.at(node.name))
        quantize_compute_node(n);
      else if (is_quantization_transparent(node.op) && quantized_.count(node.inputs[0]) &&
               leads_to_int8(node.outputs[0], false))
        pass_through(n);
      else
        keep_float(n);
      if (layers && (node.op == "Conv" || node.op == "Gemm" || node.op == "MatMul"))
        layers->push_back(
            {node.name, node.op,
             int8_.at(node.name) ? "int8"
             : options_.fp32_nodes.count(node.name) || !in_.is_constant(node.inputs[1]) || node.op == "MatMul"
                 ? "fp32"
                 : "fp32 (s8 weights)"});
    }
    return finish();
  }

 private:
  // Parameters of an activation tensor from its calibration statistics.
  QuantParams activation_params_of(const std::string& tensor, const Node& reader, bool non_negative) {
    auto it = stats_.find(tensor);
    if (it == stats_.end()) throw Error(node_label(reader) + ": tensor '" + tensor + "' has no calibration statistics");
    TensorStats s = it->second;
    if (options_.activations == ActivationMode::automatic && non_negative) s.min = 0;
    ActivationScheme scheme = options_.activations == ActivationMode::symmetric ? ActivationScheme::symmetric_s8
                                                                                : ActivationScheme::asymmetric_u8;
    try {
      return activation_params(s, options_.method, options_.percentile, scheme);
    } catch (const Error& e) {
      throw Error("tensor '" + tensor + "' (read by " + node_label(reader) + "): " + e.what());
    }
  }

  bool produced_non_negative(const std::string& tensor) const {
    auto it = non_negative_.find(tensor);
    return it != non_negative_.end() && it->second;
  }

  // The quantized version of an activation (one Quantize node per tensor), with calibrated parameters.
  std::string quantized_input(const std::string& tensor, const Node& reader) {
    return QuantizedGraphWriter::quantized_input(tensor, [&] {
      return TensorInfo{quantized_dtype_, {}, activation_params_of(tensor, reader, produced_non_negative(tensor))};
    });
  }

  // Whether an INT8 layer should write `tensor` as f32 directly.
  bool only_float_readers(const std::string& tensor) const {
    return graph_outputs_.count(tensor) || !leads_to_int8(tensor, false);
  }

  void quantize_compute_node(Node& node) {
    if (is_activation_matmul(node, in_)) return quantize_activation_matmul(node);
    const std::string& weights_name = node.inputs[1];
    const Constant& weights = in_.constants.at(weights_name);
    bool trans_b = node.op == "Gemm" && node.attrs.get_int("transB", 0) != 0;
    int axis = (node.op == "Gemm" && !trans_b) || node.op == "MatMul" ? 1 : 0;  // scales per output column
    node.inputs[0] = quantized_input(node.inputs[0], node);
    QuantParams src = out_.tensors.at(node.inputs[0]).quant;
    QuantParams w = store_s8_weights(weights_name, weights, axis);
    if (has_input(node, 2)) {
      const Constant& bias = in_.constants.at(node.inputs[2]);
      std::string name = node.name + "/bias_s32";
      out_.constants[name] = quantize_bias(bias, src.scales[0], w);
      node.inputs[2] = name;
    }
    const std::string& y = node.outputs[0];
    bool non_negative = non_negative_by_construction(node);
    non_negative_[y] = non_negative;
    if (only_float_readers(y)) {
      out_.tensors[y] = {DType::f32, {}, {}};
      if (has_input(node, 3)) node.inputs[3] = float_input(node.inputs[3]);
    } else {
      out_.tensors[y] = {quantized_dtype_, {}, activation_params_of(y, node, non_negative)};
      quantized_.insert(y);
      if (has_input(node, 3)) node.inputs[3] = quantized_input(node.inputs[3], node);
    }
    out_.nodes.push_back(node);
  }

  // A quantized output of an INT8 layer, or f32 when only float layers read it.
  void set_output(const Node& node, bool non_negative) {
    const std::string& y = node.outputs[0];
    non_negative_[y] = non_negative;
    if (only_float_readers(y)) {
      out_.tensors[y] = {DType::f32, {}, {}};
    } else {
      out_.tensors[y] = {quantized_dtype_, {}, activation_params_of(y, node, non_negative)};
      quantized_.insert(y);
    }
  }

  // A MatMul of two activations: A as the other INT8 layers' inputs, B s8 symmetric (zero point 0). A B
  // already quantized otherwise (u8: read as A by another MatMul first, or written u8 by an INT8 layer) keeps
  // the node FP32.
  void quantize_activation_matmul(Node& node) {
    const std::string b = node.inputs[1];
    const std::string quantized_b = QuantizedGraphWriter::quantized_input(b, [&] {
      auto it = stats_.find(b);
      if (it == stats_.end()) throw Error(node_label(node) + ": tensor '" + b + "' has no calibration statistics");
      try {
        return TensorInfo{
            DType::s8,
            {},
            activation_params(it->second, options_.method, options_.percentile, ActivationScheme::symmetric_s8)};
      } catch (const Error& e) {
        throw Error("tensor '" + b + "' (read by " + node_label(node) + "): " + e.what());
      }
    });
    if (out_.tensors.at(quantized_b).dtype != DType::s8) {
      int8_[node.name] = false;
      return keep_float(node);
    }
    node.inputs[1] = quantized_b;
    node.inputs[0] = quantized_input(node.inputs[0], node);
    set_output(node, false);
    out_.nodes.push_back(node);
  }

  // Max/average pooling and reshapes on quantized input: same parameters, no conversion.
  void pass_through(Node& node) {
    const QuantParams& params = out_.tensors.at(node.inputs[0]).quant;
    for (const std::string& y : node.outputs) {
      out_.tensors[y] = {quantized_dtype_, {}, params};
      quantized_.insert(y);
      non_negative_[y] = produced_non_negative(node.inputs[0]);
    }
    out_.nodes.push_back(node);
  }

  void keep_float(Node& node) {
    for (size_t i = 0; i < node.inputs.size(); ++i)
      if (!node.inputs[i].empty() && !in_.is_constant(node.inputs[i])) node.inputs[i] = float_input(node.inputs[i]);
    // Softmax and LayerNorm compute in float and write u8 (Softmax over [0, max], zero point 0) when INT8 layers
    // read them: the kernel quantizes as it writes, no Quantize node.
    const bool writes_u8 = node.op == "Softmax" || (node.op == "LayerNormalization" && node.outputs.size() == 1);
    if (writes_u8 && quantized_dtype_ == DType::u8 && in_.tensor(node.outputs[0]).shape.size() <= 3 &&
        !only_float_readers(node.outputs[0])) {
      set_output(node, node.op == "Softmax");
      out_.nodes.push_back(node);
      return;
    }
    // Weight-only INT8 for the FP32 classifier and other FP32 Conv/Gemm, unless kept fully FP32.
    bool weight_layer = (node.op == "Conv" || node.op == "Gemm") && in_.is_constant(node.inputs[1]);
    if (weight_layer && !options_.fp32_nodes.count(node.name)) {
      bool trans_b = node.op == "Gemm" && node.attrs.get_int("transB", 0) != 0;
      store_s8_weights(node.inputs[1], in_.constants.at(node.inputs[1]), node.op == "Gemm" && !trans_b ? 1 : 0);
    }
    for (const std::string& y : node.outputs) {
      non_negative_[y] = node.op == "Relu" ||
                         (is_quantization_transparent(node.op) && produced_non_negative(node.inputs[0])) ||
                         non_negative_by_construction(node);
      out_.tensors[y] = {DType::f32, {}, {}};
    }
    out_.nodes.push_back(node);
  }

  // Replaces an f32 weight constant by its s8 version (once, even if several nodes read it).
  QuantParams store_s8_weights(const std::string& name, const Constant& weights, int axis) {
    auto done = out_.tensors.find(name);
    if (done != out_.tensors.end() && done->second.quant.present()) return done->second.quant;
    QuantParams params;
    try {
      if (!options_.per_channel) {
        params = symmetric_params(weights.data<float>(), weights.elements());
      } else if (axis == 0) {
        params = symmetric_params_per_channel(weights);
      } else {
        // Per column of a [K, N] matrix: the per-channel rule on its transpose.
        params = symmetric_params_per_channel(transposed_2d(weights));
        params.axis = axis;
      }
      out_.constants[name] = quantize_weights(weights, params);
    } catch (const Error& e) {
      throw Error("weights '" + name + "': " + e.what());  // e.g. a NaN weight, named
    }
    out_.tensors[name] = {DType::s8, weights.shape, params};
    return params;
  }

  static Constant transposed_2d(const Constant& m) {
    int64_t rows = m.shape[0], cols = m.shape[1];
    std::vector<float> t(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = m.data<float>()[r * cols + c];
    return Constant::from_floats({cols, rows}, t);
  }

  const std::map<std::string, TensorStats>& stats_;
  const QuantizeOptions& options_;
  std::string classifier_;
  std::map<std::string, bool> non_negative_;
  DType quantized_dtype_ = DType::u8;
};

}  // namespace

ActivationMode parse_activation_mode(const std::string& name) {
  if (name == "auto") return ActivationMode::automatic;
  if (name == "asymmetric") return ActivationMode::asymmetric;
  if (name == "symmetric") return ActivationMode::symmetric;
  throw Error("--activations '" + name + "' is not auto, asymmetric or symmetric");
}

std::string final_classifier(const Graph& graph) {
  for (auto it = graph.nodes.rbegin(); it != graph.nodes.rend(); ++it)
    if (it->op == "Conv" || it->op == "Gemm" || it->op == "MatMul") return it->name;
  return "";
}

Graph quantize_graph(const Graph& fp32, const std::map<std::string, TensorStats>& stats, const QuantizeOptions& options,
                     std::vector<QuantizedLayer>* layers) {
  for (const std::string& name : options.fp32_nodes) {
    bool found = std::any_of(fp32.nodes.begin(), fp32.nodes.end(), [&](const Node& n) { return n.name == name; });
    if (!found) throw Error("--fp32: the model has no node named '" + name + "'");
  }
  return Quantizer(fp32, stats, options).run(layers);
}

}  // namespace octet::quant