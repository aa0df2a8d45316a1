// The INT8 graph of a model that arrives already quantized (QDQ or QOperator ONNX): the same kind of graph
// quantize_graph builds from calibration (quantized tensors carrying QuantParams, Quantize/Dequantize nodes at
// the float boundaries, s8 weights and s32 biases), but with the model's own scales, zero points and integers.
//
// The ONNX side (converters/onnx/qdq_import.h) strips the Q/DQ pairs and records, per float tensor of the imported
// graph, the quantization the model gave it (GivenQuantization). This pass then decides, per node:
//   - Conv / Gemm (MatMul with a constant 2-D B arrives as a Gemm, onnx::matmul_to_gemm) whose input and
//     weights were quantized by the model: INT8, with the given s8 weights and, when its scale is the
//     accumulator's (input scale x weight scale), the given s32 bias; its output quantized as the model
//     quantizes it (else f32);
//   - pooling and reshapes on a quantized input whose output the model quantized alike (or left alone): run on
//     the integers; Concat when all inputs and the output share parameters;
//   - everything else in f32, with Dequantize/Quantize nodes where it meets quantized tensors; a float op's
//     output that the model quantizes is rounded as the model rounds it. The import then turns each
//     Dequantize -> MaxPool -> Quantize this leaves (a max pool whose output the model quantizes otherwise)
//     into one integer MaxPool that requantizes (fuse_requantizing_max_pools).
// Tensors the model left in float stay f32.
#pragma once

#include <string>
#include <vector>

#include "converters/onnx/qdq_import.h"
#include "converters/quant/quantize_graph.h"
#include "graph/graph.h"

namespace octet::quant {

struct QuantizedImport {
  std::string form;                    // "QDQ" or "QOperator"
  std::vector<std::string> notes;      // per layer: where the model's scheme was converted to a supported one
  std::vector<QuantizedLayer> layers;  // each Conv/Gemm: "int8" or "fp32"
};

// `fp32`: the float graph of onnx::read_quantized_onnx. Appends what it had to change to `notes` (per layer)
// and the mode of each Conv/Gemm to `layers`. Throws Error naming the node when the given parameters are
// unusable.
Graph apply_given_quantization(const Graph& fp32, const onnx::GivenQuantization& given,
                               std::vector<std::string>* notes = nullptr,
                               std::vector<QuantizedLayer>* layers = nullptr);

// Dequantize -> MaxPool -> Quantize, where the Dequantize's only reader is the pool and the pool's only reader
// the Quantize (a model that gives its MaxPool's output its own scale), becomes one MaxPool from the
// Dequantize's integer input to the Quantize's integer output, which the kernel requantizes by a table
// (graph/FORMAT.md, kernels/pool.cpp): max commutes with the monotone dequantize/requantize, so the integers
// are the chain's exactly. Appends one line per pool to `notes`; returns how many it fused.
size_t fuse_requantizing_max_pools(Graph& graph, std::vector<std::string>* notes = nullptr);

// The INT8 graph of a quantized ONNX model: onnx::read_quantized_onnx, apply_given_quantization, then
// fuse_requantizing_max_pools.
// Throws Error naming the file (path form), node and field.
Graph import_quantized_onnx(const std::string& path, QuantizedImport* report = nullptr);
Graph import_quantized_onnx_model(const ::onnx::ModelProto& model, QuantizedImport* report = nullptr);

}  // namespace octet::quant
