// Import of ONNX models that are already quantized: QDQ (QuantizeLinear/DequantizeLinear around float ops, as
// ONNX Runtime's quantize_static, PyTorch QAT exports and NNCF write them) and QOperator (QLinearConv,
// QLinearMatMul and the com.microsoft QLinearAdd, QLinearGlobalAveragePool, QLinearAveragePool, QLinearConcat,
// QLinearLeakyRelu, QLinearSigmoid of the ONNX model zoo's -int8 models).
//
// Three steps:
//   1. QOperator nodes are rewritten as their QDQ equivalent (DequantizeLinear of each input, the float op,
//      QuantizeLinear of the output; QLinearConv's int32 bias at scale x_scale * w_scale);
//   2. the Q/DQ nodes are stripped: a DequantizeLinear of an integer constant (or of a QuantizeLinear of a float
//      constant: QAT weights) becomes the float constant of the same values, and its integers are recorded; a
//      QuantizeLinear -> DequantizeLinear pair on an activation disappears, its parameters recorded on the float
//      tensor it quantized (GivenQuantization);
//   3. the float model is imported as any other (converters/onnx/import.h); quant::apply_given_quantization
//      (converters/quant/given_quantization.h) then makes it the INT8 graph with the model's own parameters.
// Every scale, zero point and axis is checked first: errors name the node and the field.
//
// u8 weights with a zero point z (QOperator) become the s8 integers w - z when they fit in [-128, 127]; otherwise
// they keep their zero point, stored as s8 w - 128 with zero point z - 128 (the same integers), which the
// kernels compute exactly (kernels/quantized_linear.h); the conversion says so per layer (GivenQuantization::
// notes). QLinearAdd becomes octet's INT8 Add (ONNX Runtime's arithmetic), and the classifier's QLinearMatMul
// keeps its product rounded before the QLinearAdd of its bias: the result is ONNX Runtime's integers.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace onnx {
class ModelProto;
}  // namespace onnx

namespace octet::onnx {

// One tensor's quantization as the model gives it.
struct GivenActivation {
  DType dtype = DType::u8;  // u8 or s8
  QuantParams params;       // per tensor
};

// Integer weights (s8, zero point 0, per tensor or per axis) or an s32 bias (per tensor or per channel).
struct GivenIntegers {
  Constant integers;
  QuantParams params;
};

// What the Q/DQ nodes said, keyed by the names of the float model's tensors and constants.
struct GivenQuantization {
  std::map<std::string, GivenActivation> activations;  // float tensor name -> its quantization
  std::map<std::string, GivenIntegers> weights;        // float constant name -> s8 integers
  std::map<std::string, GivenIntegers> biases;         // float constant name -> s32 integers
  std::vector<std::string> notes;                      // per layer: conversions to what octet runs
  // Add nodes that were QLinearAdd: they run as octet's INT8 Add, ONNX Runtime's QLinearAdd arithmetic
  // (kernels/binary.cpp), when their inputs and output are quantized alike.
  std::set<std::string> integer_adds;
  std::map<std::string, GivenIntegers> constants;  // float constant name -> its integers as given (u8/s8, with
                                                   // zero points): a constant operand of an integer Add
};

// A quantized ONNX model as a float graph (constants hold the dequantized values) and its quantization.
// quant::import_quantized_onnx (converters/quant/given_quantization.h) makes the INT8 graph of it.
struct QuantizedOnnx {
  Graph fp32;
  GivenQuantization given;
  std::string form;  // "QDQ" or "QOperator"
};

// Whether the model holds QuantizeLinear, DequantizeLinear or a quantized operator (QLinear*, *Integer).
bool is_quantized_onnx(const ::onnx::ModelProto& model);
bool is_quantized_onnx_file(const std::string& path);

// Throws Error naming the file (for the path form), node and field.
QuantizedOnnx read_quantized_onnx(const std::string& path);
QuantizedOnnx read_quantized_onnx_model(const ::onnx::ModelProto& model);

// MatMul(A, B) with A of rank 2 and B a constant [K, N] becomes Gemm(A, B); an Add of a constant of N values
// that alone reads its result becomes the Gemm's C (QLinearMatMul + QLinearAdd of the classifier).
// `keep_add(add)`: an Add of the bias that must stay apart (a QLinearAdd after a QLinearMatMul: the product
// is rounded to integers before it).
void matmul_to_gemm(Graph& graph, const std::function<bool(const Node& add)>& keep_add = nullptr);

}  // namespace octet::onnx
