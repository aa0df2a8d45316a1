#include "converters/quant/convert.h"

#include "converters/onnx/import.h"
#include "converters/quant/fidelity.h"
#include "converters/quant/given_quantization.h"
#include "octet/evaluation.h"

namespace octet::quant {

std::vector<std::string> select_calibration_images(const std::string& dir_or_list, size_t count) {
  std::vector<std::string> all = list_images(dir_or_list, 0, 1, 0);
  if (count == 0 || count >= all.size()) return all;
  return list_images(dir_or_list, count, all.size() / count, 0);
}

Graph quantize_calibrated(const Graph& fp32, const std::map<std::string, TensorStats>& stats,
                          const std::vector<std::string>& images, const QuantizeOptions& options, bool bias_correction,
                          ConvertReport* report, const Progress& progress, WeightRoundingCache* rounding_cache) {
  Graph int8 = quantize_graph(fp32, stats, options, report ? &report->layers : nullptr);
  if (options.rounding == WeightRounding::gptq) {
    const WeightRoundingReport rounded = round_weights_gptq(int8, fp32, images, progress, rounding_cache);
    if (report) report->weight_rounding = rounded;
  }
  if (bias_correction) {
    const BiasCorrectionReport corrected = correct_bias(int8, fp32, images, progress);
    if (report) report->bias_correction = corrected;
  }
  return int8;
}

namespace {

struct Quantized {
  Graph fp32, int8;
  ConvertReport report;
};

Quantized quantize_from(const Graph& fp32, const std::vector<std::string>& images, const QuantizeOptions& options,
                        bool bias_correction, const Progress& progress) {
  Quantized q{fp32, {}, {}};
  q.int8 = quantize_calibrated(fp32, collect_statistics(fp32, images, progress), images, options, bias_correction,
                               &q.report, progress);
  return q;
}

// The policy's FP32 graph and INT8 model, equalized or not as the options (and the comparison) say.
Quantized quantize_policy(const Graph& fp32, const std::vector<std::string>& images, const QuantizeOptions& options,
                          bool bias_correction, const Progress& progress) {
  if (options.equalize_alpha < 0) return quantize_from(fp32, images, options, bias_correction, progress);
  Graph equalized = fp32;
  EqualizationReport equalization = equalize_ranges(equalized, images, options.equalize_alpha, progress);
  if (equalization.pairs == 0 && equalization.smoothed == 0)
    return quantize_from(fp32, images, options, bias_correction, progress);
  Quantized with = quantize_from(equalized, images, options, bias_correction, progress);
  if (!options.equalize_only_if_better) {
    with.report.equalization = equalization;
    return with;
  }
  Quantized without = quantize_from(fp32, images, options, bias_correction, progress);
  const FidelityReference fidelity(fp32, images);
  equalization.compared = true;
  equalization.sqnr_without_db = fidelity.measure(without.int8).sqnr_db;
  equalization.sqnr_with_db = fidelity.measure(with.int8).sqnr_db;
  equalization.kept = equalization.sqnr_with_db >= equalization.sqnr_without_db + kEqualizationMinGainDb;
  Quantized& chosen = equalization.kept ? with : without;
  chosen.report.equalization = equalization;
  return std::move(chosen);
}

void merge_quantization_report(const ConvertReport& from, ConvertReport* to) {
  if (!to) return;
  to->layers = from.layers;
  to->bias_correction = from.bias_correction;
  to->equalization = from.equalization;
  to->weight_rounding = from.weight_rounding;
}

}  // namespace

Graph prepare_for_quantization(const Graph& fp32, const std::vector<std::string>& images,
                               const QuantizeOptions& options, bool bias_correction, ConvertReport* report,
                               const Progress& progress) {
  Quantized q = quantize_policy(fp32, images, options, bias_correction, progress);
  if (report) report->equalization = q.report.equalization;
  return std::move(q.fp32);
}

Graph quantize_model(const Graph& fp32, const std::vector<std::string>& images, const QuantizeOptions& options,
                     bool bias_correction, const Progress& progress, ConvertReport* report) {
  Quantized q = quantize_policy(fp32, images, options, bias_correction, progress);
  merge_quantization_report(q.report, report);
  return std::move(q.int8);
}

size_t weight_bytes(const Graph& graph) {
  size_t total = 0;
  for (const auto& kv : graph.constants) total += kv.second.bytes->size();
  return total;
}

Graph convert_onnx(const std::string& onnx_path, const ConvertOptions& options, const Progress& progress,
                   ConvertReport* report) {
  ConvertReport local;
  ConvertReport& r = report ? *report : local;
  if (onnx::is_quantized_onnx_file(onnx_path)) {
    // A model quantized elsewhere keeps its own scales, zero points and integers: nothing to calibrate.
    if (!options.calibrate.empty())
      throw Error(onnx_path +
                  " is already quantized (QuantizeLinear/DequantizeLinear or QLinear ops); octet runs it with the "
                  "model's own quantization parameters: convert it without --calibrate");
    QuantizedImport imported;
    Graph graph = import_quantized_onnx(onnx_path, &imported);
    onnx::apply_preprocess_options(options.preprocess, graph);
    r.quantized_form = imported.form;
    r.import_notes = imported.notes;
    r.layers = imported.layers;
    r.fp32_weight_bytes = r.weight_bytes = weight_bytes(graph);
    return graph;
  }
  Graph graph = onnx::import_onnx(onnx_path);
  onnx::apply_preprocess_options(options.preprocess, graph);
  r.fp32_weight_bytes = weight_bytes(graph);
  if (!options.calibrate.empty()) {
    if (!graph.preprocess.present)
      throw Error("--calibrate needs preprocessing metadata to read images: give --preset or the preprocessing flags");
    r.calibration_images = select_calibration_images(options.calibrate, options.calib_count);
    graph = quantize_model(graph, r.calibration_images, options.quantize, options.bias_correction, progress, &r);
  }
  r.weight_bytes = weight_bytes(graph);
  return graph;
}

}  // namespace octet::quant