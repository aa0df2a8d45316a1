// What the INT8 policy (quantize_graph.cpp) and the import of an already-quantized model
// (given_quantization.cpp) share while they rewrite an FP32 graph into an INT8 one: the graph being written,
// which of its tensors are quantized, and one Quantize or Dequantize node per tensor that needs one.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace octet::quant {

// Ops that run unchanged on quantized values with their input's parameters (max and average commute with the
// affine dequantization; reshapes and transposes move values): kernels/pool.cpp, shape_ops.cpp.
bool is_quantization_transparent(const std::string& op);

class QuantizedGraphWriter {
 protected:
  // Starts from `fp32` without its nodes (the writer adds them in run order). Keeps a reference to fp32.
  explicit QuantizedGraphWriter(const Graph& fp32);

  // The quantized version of an activation: itself if already quantized, else a Quantize node, made once per
  // tensor, whose output has the dtype and parameters `quantization` returns (called only then).
  std::string quantized_input(const std::string& tensor, const std::function<TensorInfo()>& quantization);
  // The float version of an activation: itself, or a Dequantize node (one per tensor).
  std::string float_input(const std::string& tensor);
  // Whether `tensor` of in_ reaches a node that int8_ marks INT8 through readers that keep it quantized: the
  // quantization-transparent ops, and Concat when `through_concat`. Only then does it stay quantized: a pooled
  // or reshaped tensor read by FP32 layers alone is better computed in f32.
  bool leads_to_int8(const std::string& tensor, bool through_concat) const;
  // Marks `tensor` of the written graph as quantized with `info`'s dtype and parameters.
  void set_quantized(const std::string& tensor, const TensorInfo& info);

  // The end of a rewrite: a graph output left quantized is dequantized under its own name (the user reads
  // float), constants no node reads go, shapes are inferred and the graph validated. Returns the graph.
  Graph finish();

  const Graph& in_;
  Graph out_;
  std::map<std::string, std::vector<size_t>> consumers_;  // of in_'s tensors
  std::set<std::string> graph_outputs_, quantized_;       // quantized_: tensors of out_
  std::map<std::string, bool> int8_;                      // by node of in_: computed in INT8

 private:
  void rename_tensor(const std::string& from, const std::string& to);
  void drop_unused_constants();
  std::map<std::string, std::string> quantize_cache_, dequantize_cache_;
};

}  // namespace octet::quant
