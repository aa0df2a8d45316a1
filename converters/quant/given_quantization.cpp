#include "converters/quant/given_quantization.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <sstream>

#include "converters/quant/graph_writer.h"
#include "graph/ops.h"
#include "graph/quantization.h"
#include "graph/shape_inference.h"

namespace octet::quant {
namespace {

bool has_input(const Node& node, size_t i) { return node.inputs.size() > i && !node.inputs[i].empty(); }

bool same_quantization(const onnx::GivenActivation& a, DType dtype, const QuantParams& b) {
  return a.dtype == dtype && a.params == b;
}

// Relative closeness of two float scales (a bias scale against input scale x weight scale).
bool close(float a, float b) { return std::fabs(a - b) <= 1e-5f * std::max(std::fabs(a), std::fabs(b)); }

class GivenQuantizer : QuantizedGraphWriter {
 public:
  GivenQuantizer(const Graph& fp32, const onnx::GivenQuantization& given) : QuantizedGraphWriter(fp32), given_(given) {
    for (const Node& node : fp32.nodes) int8_[node.name] = wants_int8(node);
  }

  Graph run(std::vector<std::string>* notes, std::vector<QuantizedLayer>* layers) {
    for (const Node& node : in_.nodes) {
      Node n = node;
      if (int8_.at(node.name))
        quantize_compute_node(n);
      else if (can_pass_through(node))
        pass_through(n);
      else if (node.op == "Concat" && can_concat(node))
        pass_through(n);
      else if (is_integer_add(node))
        integer_add(n);
      else
        keep_float(n);
      if (layers && (node.op == "Conv" || node.op == "Gemm" || node.op == "MatMul"))
        layers->push_back({node.name, node.op, int8_.at(node.name) ? "int8" : "fp32"});
    }
    finish();
    size_t s8 = 0;
    for (const std::string& t : quantized_) s8 += out_.tensors.at(t).dtype == DType::s8;
    if (s8)
      notes_.push_back(std::to_string(s8) +
                       " s8 activation tensors saturate at -127 (octet's symmetric s8 range), where ONNX's "
                       "QuantizeLinear allows -128: a value below -127.5 x scale moves by one unit");
    if (notes) notes->insert(notes->end(), notes_.begin(), notes_.end());
    return out_;
  }

 private:
  const onnx::GivenActivation* given_activation(const std::string& tensor) const {
    auto it = given_.activations.find(tensor);
    return it == given_.activations.end() ? nullptr : &it->second;
  }

  // The model quantized this node's input and its weights are constants (quantized by the model, or f32 that
  // the model left in float: those are quantized here per channel, and said so).
  bool wants_int8(const Node& node) const {
    if (node.op != "Conv" && node.op != "Gemm") return false;
    if (!in_.is_constant(node.inputs[1]) || (has_input(node, 2) && !in_.is_constant(node.inputs[2]))) return false;
    if (!given_activation(node.inputs[0]) || !given_.weights.count(node.inputs[1])) return false;
    if (node.op == "Gemm") {
      const Constant& w = in_.constants.at(node.inputs[1]);
      return node.attrs.get_int("transA", 0) == 0 && node.attrs.get_float("alpha", 1) == 1.0f &&
             node.attrs.get_float("beta", 1) == 1.0f && w.shape.size() == 2 &&
             (!has_input(node, 2) ||
              in_.constants.at(node.inputs[2]).elements() == w.shape[node.attrs.get_int("transB", 0) ? 0 : 1]);
    }
    return true;
  }

  bool only_float_readers(const std::string& tensor) const {
    return graph_outputs_.count(tensor) || !leads_to_int8(tensor, true);
  }

  // A pooling or reshape whose quantized input keeps its parameters: the model quantized the output alike (or
  // not at all), and an INT8 layer reads it.
  bool can_pass_through(const Node& node) const {
    if (!is_quantization_transparent(node.op) || !quantized_.count(node.inputs[0]) ||
        !leads_to_int8(node.outputs[0], true))
      return false;
    const TensorInfo& x = out_.tensors.at(node.inputs[0]);
    const onnx::GivenActivation* y = given_activation(node.outputs[0]);
    if (node.op == "AveragePool" && node.attrs.get_int("count_include_pad", 0) != 0 && x.quant.zero_points[0] != 0)
      return false;
    return !y || same_quantization(*y, x.dtype, x.quant);
  }

  bool can_concat(const Node& node) const {
    const onnx::GivenActivation* y = given_activation(node.outputs[0]);
    if (!y || !leads_to_int8(node.outputs[0], true)) return false;
    for (const std::string& i : node.inputs) {
      if (!quantized_.count(i)) return false;
      const TensorInfo& x = out_.tensors.at(i);
      if (!same_quantization(*y, x.dtype, x.quant)) return false;
    }
    return true;
  }

  // A QLinearAdd whose inputs and output the model quantizes alike (per tensor, one dtype): octet's INT8 Add,
  // which computes ONNX Runtime's QLinearAdd integers (kernels/binary.cpp); in float (dequantize, add,
  // quantize) about 1 output in 25,000 rounds differently, which MobileNet v2's per-tensor layers amplify.
  bool is_integer_add(const Node& node) const {
    // A graph output too: the model rounds it to integers before its DequantizeLinear (finish() dequantizes).
    if (!given_.integer_adds.count(node.name) || node.inputs.size() != 2) return false;
    const onnx::GivenActivation* y = given_activation(node.outputs[0]);
    if (!y || y->params.scales.size() != 1) return false;
    for (const std::string& i : node.inputs) {
      if (in_.is_constant(i)) {
        auto c = given_.constants.find(i);
        if (c == given_.constants.end() || c->second.integers.dtype != y->dtype || c->second.params.scales.size() != 1)
          return false;
        continue;
      }
      DType d = quantized_.count(i)   ? out_.tensors.at(i).dtype
                : given_activation(i) ? given_activation(i)->dtype
                                      : DType::f32;
      if (d != y->dtype) return false;
    }
    return true;
  }

  void integer_add(Node& node) {
    for (std::string& i : node.inputs) {
      if (!in_.is_constant(i)) {
        i = quantized_input(i);
        continue;
      }
      const onnx::GivenIntegers& c = given_.constants.at(i);  // the model's integers with their parameters
      std::string q = i + "/quantized";
      out_.constants[q] = c.integers;
      out_.tensors[q] = {c.integers.dtype, c.integers.shape, {c.params.scales, c.params.zero_points, -1}};
      i = q;
    }
    const onnx::GivenActivation* y = given_activation(node.outputs[0]);
    out_.tensors[node.outputs[0]] = {y->dtype, {}, y->params};
    quantized_.insert(node.outputs[0]);
    out_.nodes.push_back(node);
  }

  std::string quantized_input(const std::string& tensor) {
    return QuantizedGraphWriter::quantized_input(tensor, [&] {
      const onnx::GivenActivation* given = given_activation(tensor);
      if (!given) throw Error("tensor '" + tensor + "' feeds an INT8 layer but the model gives it no quantization");
      return TensorInfo{given->dtype, {}, given->params};
    });
  }

  void quantize_compute_node(Node& node) {
    const std::string label = node_label(node);
    node.inputs[0] = quantized_input(node.inputs[0]);
    const QuantParams src = out_.tensors.at(node.inputs[0]).quant;
    bool trans_b = node.op == "Gemm" && node.attrs.get_int("transB", 0) != 0;
    int channel_axis = node.op == "Gemm" && !trans_b ? 1 : 0;
    QuantParams w = store_weights(node, node.inputs[1], channel_axis);
    if (has_input(node, 2)) store_bias(node, src.scales[0], w);
    const std::string& y = node.outputs[0];
    const onnx::GivenActivation* given_y = given_activation(y);
    // Written as the model quantizes it, also when only float layers read it: the rounding and the saturation
    // are the model's. QOperator models leave ReLU/ReLU6 to that saturation (zero point 0, scale 6 / 255): the
    // QOperator MobileNet v2 with f32 outputs where only float layers read them had a logit SQNR of 1.1 dB
    // against ONNX Runtime.
    if (!given_y) {
      out_.tensors[y] = {DType::f32, {}, {}};
      if (has_input(node, 3)) node.inputs[3] = float_input(node.inputs[3]);
    } else {
      out_.tensors[y] = {given_y->dtype, {}, given_y->params};
      quantized_.insert(y);
      if (has_input(node, 3)) {
        const std::string residual = node.inputs[3];
        const bool integer = quantized_.count(residual) || given_activation(residual);
        if (integer) node.inputs[3] = quantized_input(residual);
        if (!integer || out_.tensors.at(node.inputs[3]).dtype != given_y->dtype) {
          // The kernel's residual sum reads the output's dtype: the residual is quantized like the output.
          notes_.push_back(label + ": residual input '" + residual + "' quantized with the output's parameters (" +
                           dtype_name(given_y->dtype) + ") for the fused sum");
          std::string f = float_input(residual);
          std::string q = f + "/as_output";
          out_.nodes.push_back({q + "/quantize", "Quantize", {f}, {q}, {}});
          out_.tensors[q] = {given_y->dtype, {}, given_y->params};
          quantized_.insert(q);
          node.inputs[3] = q;
        }
      }
    }
    out_.nodes.push_back(node);
  }

  // The given s8 weights under the name the node reads (once, even if several nodes read them).
  QuantParams store_weights(const Node& node, const std::string& name, int channel_axis) {
    auto done = out_.tensors.find(name);
    if (done != out_.tensors.end() && done->second.quant.present()) return done->second.quant;
    const onnx::GivenIntegers& given = given_.weights.at(name);
    QuantParams params = given.params;
    if (params.scales.size() == 1) {
      params.axis = -1;
    } else if (params.axis != channel_axis) {
      throw Error(node_label(node) + ": weights '" + name + "' are quantized along axis " +
                  std::to_string(params.axis) + "; octet's INT8 " + node.op + " takes per-channel weights along axis " +
                  std::to_string(channel_axis) + " only");
    }
    out_.constants[name] = given.integers;
    out_.tensors[name] = {DType::s8, given.integers.shape, params};
    return params;
  }

  // The given s32 bias when its scale is the accumulator's; else the float bias quantized at that scale.
  void store_bias(Node& node, float src_scale, const QuantParams& w) {
    const std::string& name = node.inputs[2];
    const Constant& f32 = in_.constants.at(name);
    auto given = given_.biases.find(name);
    bool as_given = given != given_.biases.end();
    if (as_given) {
      const std::vector<float>& s = given->second.params.scales;
      int64_t channels = f32.elements();
      for (int64_t c = 0; c < channels && as_given; ++c) {
        float bias_scale = s.size() == 1 ? s[0] : s[static_cast<size_t>(c)];
        float acc_scale = src_scale * (w.scales.size() == 1 ? w.scales[0] : w.scales[static_cast<size_t>(c)]);
        as_given = close(bias_scale, acc_scale);
      }
      if (!as_given)
        notes_.push_back(node_label(node) +
                         ": bias scale is not input scale x weight scale; bias requantized to int32 at that scale");
    }
    std::string s32 = node.name + "/bias_s32";
    if (as_given) {
      Constant c = given->second.integers;
      c.shape = {f32.elements()};
      out_.constants[s32] = c;
    } else {
      Constant flat = f32;
      flat.shape = {f32.elements()};
      out_.constants[s32] = quantize_bias(flat, src_scale, w);
    }
    node.inputs[2] = s32;
  }

  void pass_through(Node& node) {
    const TensorInfo& x = out_.tensors.at(node.inputs[0]);
    for (const std::string& y : node.outputs) {
      out_.tensors[y] = {x.dtype, {}, x.quant};
      quantized_.insert(y);
    }
    out_.nodes.push_back(node);
  }

  void keep_float(Node& node) {
    for (size_t i = 0; i < node.inputs.size(); ++i)
      if (!node.inputs[i].empty() && !in_.is_constant(node.inputs[i])) node.inputs[i] = float_input(node.inputs[i]);
    // An output the model quantizes is rounded as the model rounds it (readers that want float get it
    // dequantized): e.g. QLinearAdd's output, which both the next Conv and the next residual Add read.
    std::vector<std::pair<std::string, const onnx::GivenActivation*>> rounded;
    for (std::string& y : node.outputs) {
      const onnx::GivenActivation* given = given_activation(y);
      if (given && !graph_outputs_.count(y)) {
        rounded.emplace_back(y, given);
        y += "/float";
      }
      out_.tensors[y] = {DType::f32, {}, {}};
    }
    out_.nodes.push_back(node);
    for (const auto& r : rounded) {
      out_.nodes.push_back({r.first + "/quantize", "Quantize", {r.first + "/float"}, {r.first}, {}});
      out_.tensors[r.first] = {r.second->dtype, {}, r.second->params};
      quantized_.insert(r.first);
    }
  }

  const onnx::GivenQuantization& given_;
  std::vector<std::string> notes_;
};

}  // namespace

Graph apply_given_quantization(const Graph& fp32, const onnx::GivenQuantization& given, std::vector<std::string>* notes,
                               std::vector<QuantizedLayer>* layers) {
  return GivenQuantizer(fp32, given).run(notes, layers);
}

namespace {

bool per_tensor_integer(const TensorInfo& t) {
  return (t.dtype == DType::u8 || t.dtype == DType::s8) && t.quant.per_tensor();
}

std::string describe(const TensorInfo& t) {
  std::ostringstream s;
  s << dtype_name(t.dtype) << " scale " << t.quant.scales[0] << " zero point " << t.quant.zero_points[0];
  return s.str();
}

}  // namespace

size_t fuse_requantizing_max_pools(Graph& graph, std::vector<std::string>* notes) {
  const std::map<std::string, size_t> producers = graph.producers();
  const std::map<std::string, std::vector<size_t>> consumers = graph.consumers();
  const std::set<std::string> outputs(graph.outputs.begin(), graph.outputs.end());
  // The single reader of `tensor`, or nullptr (none, several, or a graph output).
  auto only_reader = [&](const std::string& tensor) -> size_t {
    auto it = consumers.find(tensor);
    if (outputs.count(tensor) || it == consumers.end() || it->second.size() != 1) return SIZE_MAX;
    return it->second[0];
  };
  std::set<size_t> removed;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& pool = graph.nodes[i];
    if (pool.op != "MaxPool" || pool.inputs.size() != 1 || pool.outputs.size() != 1) continue;
    auto from = producers.find(pool.inputs[0]);
    if (from == producers.end() || only_reader(pool.inputs[0]) != i) continue;
    const Node& dequantize = graph.nodes[from->second];
    const size_t q = only_reader(pool.outputs[0]);
    if (dequantize.op != "Dequantize" || q == SIZE_MAX || graph.nodes[q].op != "Quantize") continue;
    const Node& quantize = graph.nodes[q];
    const std::string &x = dequantize.inputs[0], &y = quantize.outputs[0];
    if (graph.is_constant(x) || !per_tensor_integer(graph.tensors.at(x)) || !per_tensor_integer(graph.tensors.at(y)))
      continue;
    if (notes)
      notes->push_back(node_label(pool) + ": Dequantize -> MaxPool -> Quantize became one integer MaxPool (" +
                       describe(graph.tensors.at(x)) + " -> " + describe(graph.tensors.at(y)) +
                       ", requantized exactly by a table)");
    graph.tensors.erase(pool.inputs[0]);
    graph.tensors.erase(pool.outputs[0]);
    pool.inputs[0] = x;
    pool.outputs[0] = y;
    removed.insert(from->second);
    removed.insert(q);
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    if (!removed.count(i)) kept.push_back(std::move(graph.nodes[i]));
  graph.nodes = std::move(kept);
  return removed.size() / 2;
}

namespace {

Graph quantized(const onnx::QuantizedOnnx& q, QuantizedImport* report) {
  QuantizedImport local;
  QuantizedImport& r = report ? *report : local;
  r.form = q.form;
  r.notes = q.given.notes;
  Graph int8 = apply_given_quantization(q.fp32, q.given, &r.notes, &r.layers);
  fuse_requantizing_max_pools(int8, &r.notes);
  return int8;
}

}  // namespace

Graph import_quantized_onnx(const std::string& path, QuantizedImport* report) {
  onnx::QuantizedOnnx q = onnx::read_quantized_onnx(path);
  try {
    return quantized(q, report);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

Graph import_quantized_onnx_model(const ::onnx::ModelProto& model, QuantizedImport* report) {
  return quantized(onnx::read_quantized_onnx_model(model), report);
}

}  // namespace octet::quant
