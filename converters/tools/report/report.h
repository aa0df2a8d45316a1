// The quantization report's measurements, shared by the program that takes them (report.cpp) and the
// writer of RESULTS.md and its plots (results_markdown.cpp).
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "converters/analysis/sensitivity.h"
#include "converters/tools/charts.h"
#include "octet/evaluation.h"

namespace report {

// Variant names: the rows of RESULTS.md's tables. The default is octet-convert's: range equalization
// (alpha 0.5) where it gains >= 1 dB on the calibration images, per-channel s8 weights rounded by GPTQ, u8 activations
// (zero point 0 where non-negative by construction), minmax ranges over 100 images, bias correction, final classifier
// FP32 with s8 weights.
inline const std::string kFp32 = "FP32";
inline const std::string kDefault = "INT8 default (minmax)";
inline const std::string kAsymmetric = "asymmetric u8 activations";
inline const std::string kSymmetric = "symmetric s8 activations";
inline const std::string kPerTensor = "per-tensor weights";
inline const std::string kPercentile = "percentile 99.99";
inline const std::string kEntropy = "entropy";
inline const std::string kMse = "mse";
inline const std::string kInt8Classifier = "INT8 classifier";
inline const std::string kNoBiasCorrection = "no bias correction";
inline const std::string kNearestRounding = "round-to-nearest weights";
inline const std::string kNoEqualization = "no range equalization";
inline const std::string kNeither = "neither (nearest, no equalization)";
inline const std::string kPerTensorPercentile = "per-tensor weights, percentile 99.99";
inline const std::string kPerTensorEntropy = "per-tensor weights, entropy";
inline const std::string kPerTensorMse = "per-tensor weights, mse";
inline const std::string kAutoFp32 = "auto-fp32 99";
std::string calibration_count_name(size_t images);  // "10 calibration images"

// Latency and memory of one model file, measured in a child process (1 thread, batch 1).
struct Footprint {
  // Medians over the timed runs of one run() (and then over the interleaved rounds): wall-clock time, and the
  // process's CPU time, which on a shared machine excludes the time other processes took the core (with one
  // thread it is the unloaded latency).
  double wall_ms = 0, cpu_ms = 0;
  size_t file_bytes = 0;  // model.json + model.bin
  size_t weight_bytes = 0, arena_bytes = 0;
  size_t start_rss_bytes = 0;  // the child before loading anything (libraries only)
  size_t peak_rss_bytes = 0;   // VmHWM after loading, preparing and running
};

struct VariantResult {
  std::string name;
  octet::EvaluationResult eval;  // on the evaluation images; against FP32 except for FP32 itself
  Footprint footprint;
  double range_change = NAN;  // mean relative change of the activation ranges vs the full calibration set's
};

struct ModelResults {
  std::string key, title;
  bool has_labels = false;  // real weights: Top-1 on labelled images; else fidelity only
  size_t calibration_images = 0;
  std::vector<std::string> evaluation_images;
  std::vector<int> labels;
  std::vector<VariantResult> variants;  // FP32 first
  octet::analysis::SensitivityReport sensitivity;
  octet::analysis::AutoFp32Result auto_fp32;
  octet::quant::EqualizationReport equalization;  // the default's decision on the full calibration set
  double seconds = 0;

  const VariantResult& variant(const std::string& name) const;  // throws if absent
};

struct RunInfo {
  bool quick = false;
  std::vector<size_t> calibration_counts;  // the study's counts, the last is the full set
  int latency_runs = 0;
  int latency_rounds = 0;
  double minutes = 0, cpu_minutes = 0;  // wall-clock; CPU of this process and its children
  std::string cpu, load_before, load_after;
  unsigned cores = 0;
};

// Writes out_dir/RESULTS.md and its plots under out_dir/results/. `models`: the study's (every variant);
// `modern`: the modern classifiers (FP32, the default and the auto-fp32 model).
void write_results(const std::vector<ModelResults>& models, const std::vector<ModelResults>& modern, const RunInfo& run,
                   const std::string& out_dir);

}  // namespace report
