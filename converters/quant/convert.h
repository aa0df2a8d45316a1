// The convert pipeline, shared by octet-convert, octet-test-runner and the tests:
// ONNX -> FP32 graph (passes) -> preprocessing metadata and labels -> [calibration -> INT8 policy].
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "converters/onnx/preprocess_options.h"
#include "converters/quant/bias_correction.h"
#include "converters/quant/calibration.h"
#include "converters/quant/equalization.h"
#include "converters/quant/quantize_graph.h"
#include "converters/quant/weight_rounding.h"
#include "graph/graph.h"

namespace octet::quant {

struct ConvertOptions {
  onnx::PreprocessOptions preprocess;
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
  EqualizationReport equalization;
  WeightRoundingReport weight_rounding;
  std::string quantized_form;             // "QDQ", "QOperator"...: the ONNX model came quantized (onnx/qdq_import.h)
  std::vector<std::string> import_notes;  // per layer: where its quantization was converted to what octet runs
};

using Progress = std::function<void(size_t done, size_t total)>;

// The calibration images: `count` evenly spaced entries of the sorted folder (or list), starting with
// the first (the project convention: 100 of 1000 is every 10th file).
std::vector<std::string> select_calibration_images(const std::string& dir_or_list, size_t count);

// What quantize_model does after collect_statistics: quantize_graph with `stats`, options.rounding, then (if
// asked) correct_bias, both on `images`. For building many variants from one calibration pass (with one
// `rounding_cache` for them all: weight_rounding.h). `report`, `progress` and `rounding_cache` may be null.
Graph quantize_calibrated(const Graph& fp32, const std::map<std::string, TensorStats>& stats,
                          const std::vector<std::string>& images, const QuantizeOptions& options, bool bias_correction,
                          ConvertReport* report, const Progress& progress = {},
                          WeightRoundingCache* rounding_cache = nullptr);

// Range equalization is kept only when it raises the INT8 model's logit SQNR against FP32 on the calibration
// images by at least this much. Its effect depends on the model (a clear gain on Darknet-tiny, gains and
// losses within noise on ResNet-50 with random weights; see RESULTS.md, section 6 and Design measurements):
// differences below 1 dB over 100 images are not a reliable sign either way.
constexpr double kEqualizationMinGainDb = 1.0;

// The FP32 graph an INT8 model is built from: `fp32`, with its channel ranges equalized on the images when
// options.equalize_alpha >= 0 and (with options.equalize_only_if_better) the INT8 model built from it gains
// kEqualizationMinGainDb over the one built without (both built as quantize_model would, with `bias_correction`).
// The same function either way (equalization.h). `report` and `progress` may be null.
Graph prepare_for_quantization(const Graph& fp32, const std::vector<std::string>& images,
                               const QuantizeOptions& options, bool bias_correction, ConvertReport* report,
                               const Progress& progress = {});

// The model from prepare_for_quantization's graph: calibration on the images, then quantize_calibrated.
Graph quantize_model(const Graph& fp32, const std::vector<std::string>& images, const QuantizeOptions& options,
                     bool bias_correction, const Progress& progress, ConvertReport* report = nullptr);

Graph convert_onnx(const std::string& onnx_path, const ConvertOptions& options, const Progress& progress,
                   ConvertReport* report = nullptr);

size_t weight_bytes(const Graph& graph);

}  // namespace octet::quant