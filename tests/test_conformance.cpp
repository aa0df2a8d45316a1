// ONNX's own backend node tests (Debian's libonnx-testdata): every test whose ops are all in octet's list
// is converted, run and compared with its output_N.pb (rtol 1e-3, atol 1e-4), with oneDNN kernels and with
// the reference kernels.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "converters/analysis/conformance.h"

namespace {

// The ops the foundation covers (Constant, Shape, Dropout and Identity disappear at conversion).
const std::set<std::string> kOps = {
    "Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "Sigmoid", "Add", "Mul", "MaxPool",
    "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Concat", "Softmax", "Identity", "Dropout", "Constant",
    "Pad", "ReduceMean", "Transpose", "Slice", "Split", "Squeeze", "Unsqueeze",
    // modern classifiers (MobileNet v3, ViT, ConvNeXt)
    "HardSigmoid", "HardSwish", "Erf", "Sub", "Div", "Sqrt", "Pow", "LayerNormalization"};

// Tests of these ops that exercise what an inference runtime for float image models does not do.
const std::map<std::string, std::string> kNotApplicable = {
    {"test_batchnorm_epsilon_training_mode", "training mode"},
    {"test_batchnorm_example_training_mode", "training mode"},
    {"test_add_uint8", "integer tensors"},
    {"test_mul_uint8", "integer tensors"},
    {"test_clip_default_int8_inbounds", "integer tensors"},
    {"test_clip_default_int8_max", "integer tensors"},
    {"test_clip_default_int8_min", "integer tensors"},
    {"test_maxpool_2d_uint8", "integer tensors"},
    {"test_maxpool_with_argmax_2d_precomputed_pads", "argmax Indices output"},
    {"test_maxpool_with_argmax_2d_precomputed_strides", "argmax Indices output"},
    {"test_dropout_default_mask", "boolean mask output"},
    {"test_dropout_default_mask_ratio", "boolean mask output"},
    {"test_identity_opt", "optional type"},
    {"test_edge_pad", "integer tensors"},
    {"test_reflect_pad", "integer tensors"},
    {"test_globalaveragepool", "opset 1 (octet imports opsets 7 to 17)"},
    {"test_globalaveragepool_precomputed", "opset 1 (octet imports opsets 7 to 17)"},
    {"test_training_dropout", "training mode"},
    {"test_training_dropout_default", "training mode"},
    {"test_training_dropout_default_mask", "training mode"},
    {"test_training_dropout_mask", "training mode"},
    {"test_training_dropout_zero_ratio", "training mode"},
    {"test_training_dropout_zero_ratio_mask", "training mode"},
    {"test_identity_sequence", "sequence type"},
    {"test_sub_uint8", "integer tensors"},
    {"test_div_uint8", "integer tensors"},
    {"test_hardsigmoid", "opset 6 (octet imports opsets 7 to 17)"},
    {"test_hardsigmoid_default", "opset 6 (octet imports opsets 7 to 17)"},
    {"test_hardsigmoid_example", "opset 6 (octet imports opsets 7 to 17)"},
    {"test_pow", "exponent per element (octet's Pow takes one constant exponent)"},
    {"test_pow_bcast_array", "exponent per element (octet's Pow takes one constant exponent)"},
    {"test_pow_example", "exponent per element (octet's Pow takes one constant exponent)"},
    {"test_pow_types_float", "integer tensors"},
    {"test_pow_types_float32_int32", "exponent per element (octet's Pow takes one constant exponent)"},
    {"test_pow_types_float32_int64", "exponent per element (octet's Pow takes one constant exponent)"},
    {"test_pow_types_float32_uint32", "integer tensors"},
    {"test_pow_types_float32_uint64", "integer tensors"},
    {"test_pow_types_int", "exponent per element (octet's Pow takes one constant exponent)"},
    {"test_pow_types_int32_float32", "integer tensors"},
    {"test_pow_types_int32_int32", "integer tensors"},
    {"test_pow_types_int64_float32", "integer tensors"},
    {"test_pow_types_int64_int64", "integer tensors"},
};

bool is_not_applicable(const std::string& name) { return kNotApplicable.count(name) != 0; }

}  // namespace

TEST_CASE("ONNX backend node tests for the supported ops pass") {
  namespace fs = std::filesystem;
  REQUIRE_MESSAGE(fs::is_directory(OCTET_ONNX_NODE_TESTS),
                  "missing " OCTET_ONNX_NODE_TESTS " (apt install libonnx-testdata)");
  std::vector<std::string> applicable;
  std::set<std::string> ops_covered;
  int not_applicable = 0;
  for (const std::string& folder : octet::analysis::find_conformance_folders(OCTET_ONNX_NODE_TESTS)) {
    std::vector<std::string> ops = octet::analysis::onnx_model_ops(folder + "/model.onnx");
    bool in_list = !ops.empty();
    for (const std::string& op : ops) in_list = in_list && kOps.count(op);
    if (!in_list) continue;
    if (is_not_applicable(fs::path(folder).filename().string())) {
      ++not_applicable;
      continue;
    }
    applicable.push_back(folder);
    ops_covered.insert(ops.begin(), ops.end());
  }
  // libonnx-testdata 1.12: 151 before the modern-classifier ops, 164 with them, 183 with LayerNormalization's
  // 19 (which read its Mean and InvStdDev outputs).
  CHECK(applicable.size() >= 183);
  for (bool reference : {false, true}) {
    octet::analysis::ConformanceOptions options;
    options.reference_kernels = reference;
    int passed = 0, failed = 0;
    for (const std::string& folder : applicable) {
      octet::analysis::ConformanceResult r = octet::analysis::run_conformance_folder(folder, options);
      CHECK_MESSAGE(r.passed, folder << ": " << r.message);
      (r.passed ? passed : failed)++;
    }
    std::printf("ONNX node tests (%s kernels): %d passed, %d failed (%d not applicable)\n",
                reference ? "reference" : "oneDNN", passed, failed, not_applicable);
  }
  std::string list;
  for (const std::string& op : ops_covered) list += (list.empty() ? "" : " ") + op;
  std::printf("ops covered (%zu): %s\n", ops_covered.size(), list.c_str());
}
