#include "converters/quant/graph_writer.h"

#include "graph/ops.h"
#include "graph/shape_inference.h"

namespace octet::quant {

bool is_quantization_transparent(const std::string& op) {
  static const std::set<std::string> ops = {"MaxPool", "AveragePool", "GlobalAveragePool", "Flatten",  "Reshape",
                                            "Squeeze", "Unsqueeze",   "Identity",          "Transpose"};
  return ops.count(op) != 0;
}

QuantizedGraphWriter::QuantizedGraphWriter(const Graph& fp32) : in_(fp32) {
  out_ = fp32;
  out_.nodes.clear();
  consumers_ = fp32.consumers();
  for (const std::string& o : fp32.outputs) graph_outputs_.insert(o);
}

std::string QuantizedGraphWriter::quantized_input(const std::string& tensor,
                                                  const std::function<TensorInfo()>& quantization) {
  if (quantized_.count(tensor)) return tensor;
  auto cached = quantize_cache_.find(tensor);
  if (cached != quantize_cache_.end()) return cached->second;
  const TensorInfo info = quantization();
  std::string q = tensor + "/quantized";
  out_.nodes.push_back({tensor + "/quantize", "Quantize", {tensor}, {q}, {}});
  out_.tensors[q] = {info.dtype, {}, info.quant};
  quantized_.insert(q);
  quantize_cache_[tensor] = q;
  return q;
}

std::string QuantizedGraphWriter::float_input(const std::string& tensor) {
  if (!quantized_.count(tensor)) return tensor;
  auto cached = dequantize_cache_.find(tensor);
  if (cached != dequantize_cache_.end()) return cached->second;
  std::string f = tensor + "/dequantized";
  out_.nodes.push_back({tensor + "/dequantize", "Dequantize", {tensor}, {f}, {}});
  out_.tensors[f] = {DType::f32, {}, {}};
  dequantize_cache_[tensor] = f;
  return f;
}

bool QuantizedGraphWriter::leads_to_int8(const std::string& tensor, bool through_concat) const {
  auto it = consumers_.find(tensor);
  if (it == consumers_.end()) return false;
  for (size_t i : it->second) {
    const Node& reader = in_.nodes[i];
    if (int8_.at(reader.name)) return true;
    if ((is_quantization_transparent(reader.op) || (through_concat && reader.op == "Concat")) &&
        leads_to_int8(reader.outputs[0], through_concat))
      return true;
  }
  return false;
}

void QuantizedGraphWriter::set_quantized(const std::string& tensor, const TensorInfo& info) {
  out_.tensors[tensor] = {info.dtype, {}, info.quant};
  quantized_.insert(tensor);
}

Graph QuantizedGraphWriter::finish() {
  for (std::string& o : out_.outputs) {
    if (!quantized_.count(o)) continue;
    std::string internal = o + "/quantized";
    rename_tensor(o, internal);
    out_.nodes.push_back({o + "/dequantize", "Dequantize", {internal}, {o}, {}});
    out_.tensors[o] = {DType::f32, {}, {}};
  }
  drop_unused_constants();
  infer_symbolic_shapes(out_);
  validate_graph(out_);
  return out_;
}

void QuantizedGraphWriter::rename_tensor(const std::string& from, const std::string& to) {
  for (Node& n : out_.nodes) {
    for (std::string& i : n.inputs)
      if (i == from) i = to;
    for (std::string& o : n.outputs)
      if (o == from) o = to;
  }
  out_.tensors[to] = out_.tensors.at(from);
  out_.tensors.erase(from);
  quantized_.erase(from);
  quantized_.insert(to);
}

void QuantizedGraphWriter::drop_unused_constants() {
  std::set<std::string> used;
  for (const Node& n : out_.nodes) used.insert(n.inputs.begin(), n.inputs.end());
  for (auto it = out_.constants.begin(); it != out_.constants.end();) {
    if (used.count(it->first) || graph_outputs_.count(it->first)) {
      ++it;
    } else {
      out_.tensors.erase(it->first);
      it = out_.constants.erase(it);
    }
  }
}

}  // namespace octet::quant
