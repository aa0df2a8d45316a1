// ONNX-style conformance checking, shared by `octet-test-runner` and the tests: a folder holding model.onnx
// and test_data_set_N/{input_*,output_*}.pb is converted, run on every data set, and compared.
#pragma once

#include <string>
#include <vector>

namespace octet::analysis {

struct ConformanceOptions {
  double rtol = 1e-3, atol = 1e-4;  // pass when |got - want| <= atol + rtol * |want| everywhere
  bool reference_kernels = false;   // run the plain C++ kernels instead of oneDNN
  int threads = 0;
  // INT8 mode (calibrate non-empty): the model is quantized by the default policy, calibrated on these
  // images (read with `preset`'s preprocessing), and judged by agreement instead of tolerance: it passes
  // when the outputs' SQNR against the reference is at least min_sqnr_db.
  std::string calibrate, preset;
  size_t calib_count = 100;
  double min_sqnr_db = 15;
  // A model that comes quantized (QDQ / QOperator, converters/qdq_import.h) runs with its own parameters and
  // passes when every row's top-1 matches the reference and the SQNR reaches this.
  double quantized_min_sqnr_db = 30;
};

struct ConformanceResult {
  std::string folder;
  bool passed = false;
  std::string message;  // why it failed, or "" when it passed
  int data_sets = 0;
  double max_abs_error = 0, max_rel_error = 0;
  bool quantized_model = false;            // the ONNX model came quantized: judged by top-1 and SQNR
  double sqnr_db = 0, top1_agreement = 0;  // INT8 mode: over all outputs; rows of the last dimension
};

ConformanceResult run_conformance_folder(const std::string& folder, const ConformanceOptions& options);

// Folders under `path` (or `path` itself) that hold a model.onnx, sorted.
std::vector<std::string> find_conformance_folders(const std::string& path);

// The ops used by an ONNX model's nodes, as written there.
std::vector<std::string> onnx_model_ops(const std::string& model_path);

}  // namespace octet::analysis