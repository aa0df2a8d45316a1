#include "converters/analysis/sensitivity.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "graph/quantization.h"
#include "octet/evaluation.h"

namespace octet::analysis {
namespace {

// Noise power relative to the signal: 10^(-SQNR/10), 0 for identical logits.
double relative_noise(double sqnr_db) { return std::isinf(sqnr_db) ? 0.0 : std::pow(10.0, -sqnr_db / 10.0); }

std::string format(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

std::string padded(const std::string& text, size_t width) {
  return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
}

std::string fidelity_text(const quant::Fidelity& f) {
  return "Top-1 agreement " + format("%.1f%%", 100 * f.top1_agreement) + ", logit SQNR " + format("%.2f dB", f.sqnr_db);
}

}  // namespace

void check_auto_fp32_budget(double budget_percent) {
  if (!(budget_percent > 0 && budget_percent <= 100))
    throw Error("--auto-fp32 " + format("%g", budget_percent) + ": the budget is a Top-1 agreement in (0, 100] %");
}

// ---- the analysis -------------------------------------------------------------------------------------

SensitivityAnalysis::SensitivityAnalysis(const Graph& fp32, const std::map<std::string, quant::TensorStats>& stats,
                                         std::vector<std::string> images, quant::QuantizeOptions options,
                                         bool bias_correction)
    : fp32_(fp32),
      stats_(stats),
      options_(std::move(options)),
      bias_correction_(bias_correction),
      reference_(fp32, std::move(images)) {}

Graph SensitivityAnalysis::variant(const std::set<std::string>& extra_fp32, quant::ConvertReport* report) const {
  quant::QuantizeOptions options = options_;
  options.fp32_nodes.insert(extra_fp32.begin(), extra_fp32.end());
  return quant::quantize_calibrated(fp32_, stats_, reference_.images(), options, bias_correction_, report, nullptr,
                                    &rounding_cache_);
}

SensitivityReport SensitivityAnalysis::rank_layers(const quant::Progress& progress) const {
  quant::ConvertReport policy;
  SensitivityReport report;
  report.images = reference_.images().size();
  report.all_int8 = measure(variant({}, &policy));
  std::set<std::string> weight_layers;  // every Conv/Gemm/MatMul: "only this INT8" keeps all the others FP32
  for (const quant::QuantizedLayer& layer : policy.layers) weight_layers.insert(layer.node);
  for (const quant::QuantizedLayer& layer : policy.layers)
    if (layer.mode == "int8") report.layers.push_back({layer.node, layer.op, {}, {}, 0, 0});
  const size_t total = 1 + 2 * report.layers.size();
  if (progress) progress(1, total);

  const double all_int8_noise = relative_noise(report.all_int8.sqnr_db);
  for (size_t i = 0; i < report.layers.size(); ++i) {
    LayerSensitivity& layer = report.layers[i];
    std::set<std::string> others = weight_layers;
    others.erase(layer.node);
    layer.only_this_int8 = measure(variant(others));
    if (progress) progress(2 + 2 * i, total);
    layer.all_but_this_int8 = measure(variant({layer.node}));
    if (progress) progress(3 + 2 * i, total);
    if (all_int8_noise > 0) {
      layer.noise_share_alone = relative_noise(layer.only_this_int8.sqnr_db) / all_int8_noise;
      layer.noise_share_removed = 1 - relative_noise(layer.all_but_this_int8.sqnr_db) / all_int8_noise;
    }
  }
  std::stable_sort(report.layers.begin(), report.layers.end(),
                   [](const LayerSensitivity& a, const LayerSensitivity& b) {
                     return a.all_but_this_int8.sqnr_db > b.all_but_this_int8.sqnr_db;
                   });
  return report;
}

AutoFp32Result SensitivityAnalysis::auto_fp32(const SensitivityReport& ranking, double budget_percent,
                                              const quant::Progress& progress) const {
  check_auto_fp32_budget(budget_percent);
  AutoFp32Result result;
  result.budget_percent = budget_percent;
  // A small tolerance so that e.g. 99 of 100 images meets a budget of 99 despite rounding.
  const auto meets_budget = [budget_percent](const quant::Fidelity& f) {
    return 100 * f.top1_agreement >= budget_percent - 1e-9;
  };
  result.steps.push_back(ranking.all_int8);
  std::set<std::string> kept_fp32;
  for (size_t k = 0; k < ranking.layers.size() && !meets_budget(result.steps.back()); ++k) {
    kept_fp32.insert(ranking.layers[k].node);
    result.fp32_layers.push_back(ranking.layers[k].node);
    result.steps.push_back(measure(variant(kept_fp32)));
    if (progress) progress(k + 1, ranking.layers.size());
  }
  result.reached = meets_budget(result.steps.back());
  return result;
}

std::string sensitivity_table(const SensitivityReport& report, size_t max_rows) {
  const size_t rows = max_rows ? std::min(max_rows, report.layers.size()) : report.layers.size();
  size_t name_width = 5;
  for (size_t i = 0; i < rows; ++i) name_width = std::max(name_width, report.layers[i].node.size());
  std::string table = "sensitivity over " + std::to_string(report.images) + " calibration images; all " +
                      std::to_string(report.layers.size()) + " layers INT8: " + fidelity_text(report.all_int8) + "\n";
  table += "rank  " + padded("layer", name_width) + "  op    only this INT8     all INT8 but this  noise share %\n";
  table += "      " + padded("", name_width) + "        SQNR dB  agree %   SQNR dB  agree %   alone  removed\n";
  for (size_t i = 0; i < rows; ++i) {
    const LayerSensitivity& l = report.layers[i];
    table += format("%4.0f  ", double(i + 1)) + padded(l.node, name_width) + "  " + padded(l.op, 4) +
             format("  %7.2f", l.only_this_int8.sqnr_db) + format("  %7.1f", 100 * l.only_this_int8.top1_agreement) +
             format("   %7.2f", l.all_but_this_int8.sqnr_db) +
             format("  %7.1f", 100 * l.all_but_this_int8.top1_agreement) +
             format("   %5.1f", 100 * l.noise_share_alone) + format("  %7.1f", 100 * l.noise_share_removed) + "\n";
  }
  return table;
}

std::string auto_fp32_summary(const AutoFp32Result& result) {
  std::string text = "auto-fp32 " + format("%g%%", result.budget_percent) + ": ";
  const quant::Fidelity& last = result.steps.back();
  if (!result.reached) {
    text += "not reached: with all " + std::to_string(result.fp32_layers.size()) +
            " candidate layers FP32 (only weight-only s8 layers, such as the FP32 classifier, stay quantized), " +
            fidelity_text(last);
  } else {
    text += std::to_string(result.fp32_layers.size()) + " layer(s) kept FP32";
    for (size_t i = 0; i < result.fp32_layers.size(); ++i)
      text += (i ? ", " : " (") + result.fp32_layers[i] + (i + 1 == result.fp32_layers.size() ? ")" : "");
    text += ": " + fidelity_text(last);
  }
  text += "\n  layers FP32  Top-1 agreement  logit SQNR\n";
  for (size_t k = 0; k < result.steps.size(); ++k)
    text += format("  %11.0f", double(k)) + format("  %14.1f%%", 100 * result.steps[k].top1_agreement) +
            format("  %7.2f dB\n", result.steps[k].sqnr_db);
  return text;
}

}  // namespace octet::analysis