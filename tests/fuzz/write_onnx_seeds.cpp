// write_onnx_seeds DIR: writes fuzz_onnx_import's seed corpus, DIR/*.onnx, built here with ONNX's protobuf
// classes (tests/support/onnx_builder.h) so nothing binary is committed; tests/run_all.sh runs it before fuzzing.
// Each seed is a tiny model that octet imports and runs, so the fuzzer starts deep inside the importer:
//   classifier  Conv + BatchNormalization + Relu -> MaxPool -> GlobalAveragePool -> Flatten -> Gemm -> Softmax
//   shapes      the folded shape path: Shape -> Gather -> Unsqueeze -> Concat -> Reshape; ConstantOfShape,
//               Div, Cast, Mul
//   ops         Split, Concat, Pad, AveragePool, Sigmoid, LeakyRelu, Slice, ReduceMean, MatMul
//   residual    Conv + Add + Clip (fused sum and activation), Dropout, Identity, Transpose, opset 11
//   qdq         ONNX Runtime-style QDQ: u8 activations, s8 per-channel weights and an int32 bias behind
//               DequantizeLinear, Conv -> Relu -> Q/DQ -> MaxPool -> Q/DQ -> Add, float output
//   qoperator   the model zoo's QOperator form: QuantizeLinear -> QLinearConv (u8 weights with a zero point) ->
//               com.microsoft QLinearAdd and QLinearGlobalAveragePool -> DequantizeLinear
// The ONNX node tests' models (/usr/share/libonnx-testdata/data/node) complete the corpus in CI.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <utility>

#include "converters/onnx/import.h"
#include "converters/onnx/qdq_import.h"
#include "converters/quant/given_quantization.h"
#include "octet/octet.h"
#include "tests/support/onnx_builder.h"

namespace fs = std::filesystem;
using octet::testing::OnnxBuilder;

namespace {

OnnxBuilder classifier() {
  OnnxBuilder m;
  m.input("x", {-1, 3, 8, 8});
  OnnxBuilder::attribute(m.node("Conv", {"x", "w", "b"}, {"c"}), "pads", {1, 1, 1, 1});
  m.node("BatchNormalization", {"c", "s", "b2", "m", "v"}, {"bn"});
  m.node("Relu", {"bn"}, {"r"});
  ::onnx::NodeProto& pool = m.node("MaxPool", {"r"}, {"p"});
  OnnxBuilder::attribute(pool, "kernel_shape", {2, 2});
  OnnxBuilder::attribute(pool, "strides", {2, 2});
  m.node("GlobalAveragePool", {"p"}, {"g"});
  m.node("Flatten", {"g"}, {"f"});
  OnnxBuilder::attribute(m.node("Gemm", {"f", "fw", "fb"}, {"logits"}), "transB", int64_t{1});
  OnnxBuilder::attribute(m.node("Softmax", {"logits"}, {"y"}), "axis", int64_t{1});
  m.output("y");
  m.floats("w", {4, 3, 3, 3}, 108, 0, true);
  m.floats("b", {4}, 4, 0, true);
  m.floats("s", {4}, 4, 1.0f);
  m.floats("b2", {4}, 4, 0, true);
  m.floats("m", {4}, 4, 0, true);
  m.floats("v", {4}, 4, 1.0f);
  m.floats("fw", {3, 4}, 12, 0, true);
  m.floats("fb", {3}, 3, 0, true);
  return m;
}

OnnxBuilder shapes() {
  OnnxBuilder m;
  m.input("x", {-1, 2, 3, 4});
  m.node("Shape", {"x"}, {"shape"});
  OnnxBuilder::attribute(m.node("Gather", {"shape", "zero"}, {"batch"}), "axis", int64_t{0});
  m.node("Unsqueeze", {"batch", "axes"}, {"batch1"});
  m.node("Div", {"k48", "two"}, {"k24"});
  OnnxBuilder::attribute(m.node("Concat", {"batch1", "k24"}, {"target"}), "axis", int64_t{0});
  m.node("Reshape", {"x", "target"}, {"flat"});
  ::onnx::NodeProto& fill = m.node("ConstantOfShape", {"cshape"}, {"ones"});
  ::onnx::AttributeProto* value = fill.add_attribute();
  value->set_name("value");
  value->set_type(::onnx::AttributeProto::TENSOR);
  value->mutable_t()->set_data_type(::onnx::TensorProto::FLOAT);
  value->mutable_t()->add_dims(1);
  value->mutable_t()->add_float_data(1.0f);
  OnnxBuilder::attribute(m.node("Cast", {"ones"}, {"ones_f"}), "to", int64_t{::onnx::TensorProto::FLOAT});
  m.node("Mul", {"flat", "ones_f"}, {"y"});
  m.output("y");
  m.ints("zero", {}, {0});
  m.ints("axes", {1}, {0});
  m.ints("k48", {1}, {48});
  m.ints("two", {1}, {2});
  m.ints("cshape", {2}, {1, 24});
  return m;
}

OnnxBuilder ops() {
  OnnxBuilder m;
  m.input("x", {-1, 4, 4, 4});
  OnnxBuilder::attribute(m.node("Split", {"x", "halves"}, {"a", "b"}), "axis", int64_t{1});
  OnnxBuilder::attribute(m.node("Concat", {"b", "a"}, {"c"}), "axis", int64_t{1});
  m.node("Pad", {"c", "pads"}, {"p"});
  OnnxBuilder::attribute(m.node("AveragePool", {"p"}, {"q"}), "kernel_shape", {3, 3});
  m.node("Sigmoid", {"q"}, {"s"});
  m.node("LeakyRelu", {"s"}, {"l"});
  m.node("Slice", {"l", "starts", "ends", "axes"}, {"t"});
  ::onnx::NodeProto& mean = m.node("ReduceMean", {"t"}, {"r"});
  OnnxBuilder::attribute(mean, "axes", {2, 3});
  OnnxBuilder::attribute(mean, "keepdims", int64_t{0});
  m.node("MatMul", {"r", "w"}, {"y"});
  m.output("y");
  m.ints("halves", {2}, {2, 2});
  m.ints("pads", {8}, {0, 0, 1, 1, 0, 0, 1, 1});
  m.ints("starts", {1}, {1});
  m.ints("ends", {1}, {3});
  m.ints("axes", {1}, {2});
  m.floats("w", {4, 3}, 12, 0, true);
  return m;
}

OnnxBuilder residual() {
  OnnxBuilder m(11);
  m.input("x", {1, 2, 4, 4});
  OnnxBuilder::attribute(m.node("Conv", {"x", "w"}, {"c"}), "kernel_shape", {1, 1});
  m.node("Add", {"c", "x"}, {"s"});
  m.node("Clip", {"s", "lo", "hi"}, {"r"});
  m.node("Dropout", {"r"}, {"d"});
  m.node("Identity", {"d"}, {"i"});
  OnnxBuilder::attribute(m.node("Transpose", {"i"}, {"y"}), "perm", {0, 2, 3, 1});
  m.output("y");
  m.floats("w", {2, 2, 1, 1}, 4, 0, true);
  m.floats("lo", {}, 1, 0.0f);
  m.floats("hi", {}, 1, 6.0f);
  return m;
}

using ::onnx::TensorProto;

// x -> QuantizeLinear -> DequantizeLinear, the activation quantization both quantized seeds start with.
void quantized_input(OnnxBuilder& m, const std::string& x, const std::string& y) {
  m.floats(x + "_scale", {}, 1, 0.02f);
  m.small_ints(x + "_zp", TensorProto::UINT8, {}, {128});
  m.node("QuantizeLinear", {x, x + "_scale", x + "_zp"}, {x + "_q"});
  m.node("DequantizeLinear", {x + "_q", x + "_scale", x + "_zp"}, {y});
}

// A float tensor rounded as the model quantizes it: Q -> DQ with the given u8 parameters.
void fake_quantize(OnnxBuilder& m, const std::string& x, const std::string& y, float scale, int32_t zero_point) {
  m.floats(y + "_scale", {}, 1, scale);
  m.small_ints(y + "_zp", TensorProto::UINT8, {}, {zero_point});
  m.node("QuantizeLinear", {x, y + "_scale", y + "_zp"}, {y + "_q"});
  m.node("DequantizeLinear", {y + "_q", y + "_scale", y + "_zp"}, {y});
}

OnnxBuilder qdq() {
  OnnxBuilder m;
  m.input("x", {-1, 2, 4, 4});
  quantized_input(m, "x", "x_dq");
  m.small_ints("w", TensorProto::INT8, {3, 2, 1, 1}, {1, -2, 3, -4, 5, -6});
  ::onnx::TensorProto& w_scale = m.floats("w_scale", {3}, 3, 0.01f);
  w_scale.set_float_data(2, 0.03f);
  m.small_ints("w_zp", TensorProto::INT8, {3}, {0, 0, 0});
  OnnxBuilder::attribute(m.node("DequantizeLinear", {"w", "w_scale", "w_zp"}, {"w_dq"}), "axis", int64_t{0});
  m.small_ints("b", TensorProto::INT32, {3}, {100, -50, 7});
  m.floats("b_scale", {3}, 3, 0.0002f).set_float_data(2, 0.0006f);
  m.small_ints("b_zp", TensorProto::INT32, {3}, {0, 0, 0});
  OnnxBuilder::attribute(m.node("DequantizeLinear", {"b", "b_scale", "b_zp"}, {"b_dq"}), "axis", int64_t{0});
  m.node("Conv", {"x_dq", "w_dq", "b_dq"}, {"c"});
  m.node("Relu", {"c"}, {"r"});
  fake_quantize(m, "r", "r_dq", 0.01f, 0);
  ::onnx::NodeProto& pool = m.node("MaxPool", {"r_dq"}, {"p"});
  OnnxBuilder::attribute(pool, "kernel_shape", {2, 2});
  OnnxBuilder::attribute(pool, "strides", {2, 2});
  fake_quantize(m, "p", "p_dq", 0.01f, 0);
  m.floats("k", {1, 3, 1, 1}, 3, 0.25f);
  m.node("Add", {"p_dq", "k"}, {"y"});
  m.output("y");
  return m;
}

OnnxBuilder qoperator() {
  OnnxBuilder m(12);
  ::onnx::OperatorSetIdProto* ms = m.model.add_opset_import();
  ms->set_domain("com.microsoft");
  ms->set_version(1);
  m.input("x", {-1, 2, 4, 4});
  m.floats("x_scale", {}, 1, 0.02f);
  m.small_ints("x_zp", TensorProto::UINT8, {}, {128});
  m.node("QuantizeLinear", {"x", "x_scale", "x_zp"}, {"x_q"});
  m.small_ints("w", TensorProto::UINT8, {2, 2, 1, 1}, {130, 120, 200, 90});
  m.floats("w_scale", {}, 1, 0.01f);
  m.small_ints("w_zp", TensorProto::UINT8, {}, {125});
  m.floats("c_scale", {}, 1, 0.03f);
  m.small_ints("c_zp", TensorProto::UINT8, {}, {120});
  m.small_ints("b", TensorProto::INT32, {2}, {40, -40});
  m.node("QLinearConv", {"x_q", "x_scale", "x_zp", "w", "w_scale", "w_zp", "c_scale", "c_zp", "b"}, {"c_q"});
  m.node("QLinearAdd", {"c_q", "c_scale", "c_zp", "x_q", "x_scale", "x_zp", "c_scale", "c_zp"}, {"s_q"})
      .set_domain("com.microsoft");
  ::onnx::NodeProto& pool = m.node("QLinearGlobalAveragePool", {"s_q", "c_scale", "c_zp", "c_scale", "c_zp"}, {"g_q"});
  pool.set_domain("com.microsoft");
  OnnxBuilder::attribute(pool, "channels_last", int64_t{0});
  m.node("DequantizeLinear", {"g_q", "c_scale", "c_zp"}, {"y"});
  m.output("y");
  return m;
}

octet::Graph import_seed(const std::string& bytes, const char* name) {
  ::onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) throw octet::Error(std::string(name) + ": does not parse");
  return octet::onnx::is_quantized_onnx(model) ? octet::quant::import_quantized_onnx_model(model)
                                               : octet::onnx::import_onnx_bytes(bytes, name);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: write_onnx_seeds DIR\n");
    return 1;
  }
  try {
    fs::create_directories(argv[1]);
    using Make = OnnxBuilder (*)();
    const std::pair<const char*, Make> seeds[] = {
        {"classifier", classifier}, {"shapes", shapes}, {"ops", ops},
        {"residual", residual},     {"qdq", qdq},       {"qoperator", qoperator}};
    for (const auto& [name, make] : seeds) {
      const std::string bytes = make().bytes();
      octet::Session session(octet::Model::from_graph(import_seed(bytes, name)));  // valid and runnable
      session.run();
      const fs::path path = fs::path(argv[1]) / (std::string(name) + ".onnx");
      std::ofstream(path, std::ios::binary) << bytes;
      std::printf("%s: %zu bytes\n", path.string().c_str(), bytes.size());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "write_onnx_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
