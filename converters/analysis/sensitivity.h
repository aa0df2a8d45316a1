// Per-layer quantization sensitivity: what each INT8 layer costs, and which layers to keep FP32.
//
// One calibration pass (collect_statistics) serves every variant; each variant is built as quantize_model
// builds a model (quantize_graph with some layers in fp32_nodes, then correct_bias) and run on the
// calibration images against the FP32 graph. For each layer the policy makes INT8 two variants:
//   only this INT8      every other Conv/Gemm fully FP32: the error the layer adds by itself;
//   all INT8 but this   the policy's model with that layer fully FP32: what keeping it FP32 recovers.
// Fidelity is the logit SQNR over all images' logits (graph/quantization.h sqnr_db) and the Top-1 agreement.
// Layers rank by the "all INT8 but this" SQNR, highest first: agreement over ~100 images moves in steps of
// one image and ties for most layers, while the SQNR is continuous.
//
// Quantization noise from different layers is close to independent, so noise powers add: a layer's share
// of the all-INT8 noise power is 10^(-SQNR_only/10) / 10^(-SQNR_all/10) (added by it alone), and
// 1 - 10^(-SQNR_but/10) / 10^(-SQNR_all/10) (removed by keeping it FP32). The plot shows both.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "converters/quant/calibration.h"
#include "converters/quant/convert.h"
#include "converters/quant/fidelity.h"
#include "graph/graph.h"

namespace octet::analysis {

struct LayerSensitivity {
  std::string node, op;
  quant::Fidelity only_this_int8, all_but_this_int8;
  double noise_share_alone = 0;  // of the all-INT8 noise power, see above
  double noise_share_removed = 0;
};

struct SensitivityReport {
  size_t images = 0;
  quant::Fidelity all_int8;              // the policy's model
  std::vector<LayerSensitivity> layers;  // most sensitive first
};

struct AutoFp32Result {
  double budget_percent = 0;
  bool reached = false;                  // false: even all candidates FP32 stay below the budget
  std::vector<std::string> fp32_layers;  // the chosen layers, most sensitive first
  std::vector<quant::Fidelity> steps;    // fidelity with the first k ranked layers FP32, k = 0, 1, ...
};

// The variants of one FP32 graph over one calibration set. The FP32 logits are computed once, here.
class SensitivityAnalysis {
 public:
  // `stats` from collect_statistics on `images` (or a superset); `options` is the policy every variant
  // starts from (its fp32_nodes stay FP32 everywhere). Keeps references to fp32 and stats.
  SensitivityAnalysis(const Graph& fp32, const std::map<std::string, quant::TensorStats>& stats,
                      std::vector<std::string> images, quant::QuantizeOptions options, bool bias_correction);

  // The policy's model with `extra_fp32` layers fully FP32, bias-corrected if asked; `report` (may be
  // null) receives its layers and bias-correction summary.
  Graph variant(const std::set<std::string>& extra_fp32, quant::ConvertReport* report = nullptr) const;
  // Runs `model` on the images (batch 1) and compares its output 0 with the FP32 graph's.
  quant::Fidelity measure(const Graph& model) const { return reference_.measure(model); }

  // The all-INT8 model and two variants per INT8 layer; progress counts variants measured.
  SensitivityReport rank_layers(const quant::Progress& progress) const;
  // Keeps the first k layers of `ranking` FP32 for k = 0, 1, ... until the Top-1 agreement reaches
  // budget_percent (in (0, 100]); progress is (k, candidates) for each k tried beyond 0. The model is
  // variant() of the chosen layers.
  AutoFp32Result auto_fp32(const SensitivityReport& ranking, double budget_percent,
                           const quant::Progress& progress) const;

 private:
  const Graph& fp32_;
  const std::map<std::string, quant::TensorStats>& stats_;
  quant::QuantizeOptions options_;
  bool bias_correction_;
  quant::FidelityReference reference_;                 // the FP32 logits, computed once
  mutable quant::WeightRoundingCache rounding_cache_;  // GPTQ's integers, the same in every variant
};

// The ranking as a fixed-width text table (one line per layer, most sensitive first; max_rows 0: all).
std::string sensitivity_table(const SensitivityReport& report, size_t max_rows = 0);
// The auto-fp32 choice and the agreement of each step, as text.
std::string auto_fp32_summary(const AutoFp32Result& result);

// Throws Error unless budget_percent (a Top-1 agreement in %) is in (0, 100].
void check_auto_fp32_budget(double budget_percent);

}  // namespace octet::analysis