// The convert pipeline, shared by octet-convert, octet-test-runner and the tests:
// ONNX -> FP32 graph (passes) -> preprocessing metadata and labels -> [calibration -> INT8 policy].
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "converters/bias_correction.h"
#include "converters/preprocess_options.h"
#include "converters/quantize_graph.h"
#include "graph/graph.h"

namespace octet {

struct ConvertOptions {
  PreprocessOptions preprocess;
  std::string calibrate;     // folder or list of calibration images; empty: FP32 model
  size_t calib_count = 100;  // images, evenly spaced over the sorted list (1000 files, 100: every 10th)
  QuantizeOptions quantize;
  bool bias_correction = true;  // see bias_correction.h
};

struct ConvertReport {
  size_t fp32_weight_bytes = 0, weight_bytes = 0;
  std::vector<std::string> calibration_images;
  std::vector<QuantizedLayer> layers;
  BiasCorrectionReport bias_correction;
};

using Progress = std::function<void(size_t done, size_t total)>;

// The calibration images: `count` evenly spaced entries of the sorted folder (or list), starting with
// the first (the project convention: 100 of 1000 is every 10th file).
std::vector<std::string> select_calibration_images(const std::string& dir_or_list, size_t count);

// Calibrates `fp32` on the images, applies the policy and (if asked) corrects the biases.
Graph quantize_model(const Graph& fp32, const std::vector<std::string>& images, const QuantizeOptions& options,
                     bool bias_correction, const Progress& progress, ConvertReport* report = nullptr);

Graph convert_onnx(const std::string& onnx_path, const ConvertOptions& options, const Progress& progress,
                   ConvertReport* report = nullptr);

size_t weight_bytes(const Graph& graph);

}  // namespace octet
