#include "converters/convert.h"

#include "converters/onnx_import.h"

namespace octet {

std::vector<std::string> select_calibration_images(const std::string& dir_or_list, size_t count) {
  std::vector<std::string> all = list_calibration_images(dir_or_list, 0, 1, 0);
  if (count == 0 || count >= all.size()) return all;
  return list_calibration_images(dir_or_list, count, all.size() / count, 0);
}

Graph quantize_calibrated(const Graph& fp32, const std::map<std::string, TensorStats>& stats, const std::vector<std::string>& images,
                          const QuantizeOptions& options, bool bias_correction, ConvertReport* report, const Progress& progress) {
  Graph int8 = quantize_graph(fp32, stats, options, report ? &report->layers : nullptr);
  if (options.rounding == WeightRounding::gptq) {
    const WeightRoundingReport rounded = round_weights_gptq(int8, fp32, images, progress);
    if (report) report->weight_rounding = rounded;
  }
  if (bias_correction) {
    const BiasCorrectionReport corrected = correct_bias(int8, fp32, images, progress);
    if (report) report->bias_correction = corrected;
  }
  return int8;
}

Graph prepare_for_quantization(const Graph& fp32, const std::vector<std::string>& images, const QuantizeOptions& options,
                               ConvertReport* report, const Progress& progress) {
  Graph prepared = fp32;
  if (options.equalize_alpha >= 0) {
    const EqualizationReport equalized = equalize_ranges(prepared, images, options.equalize_alpha, progress);
    if (report) report->equalization = equalized;
  }
  return prepared;
}

Graph quantize_model(const Graph& fp32, const std::vector<std::string>& images, const QuantizeOptions& options,
                     bool bias_correction, const Progress& progress, ConvertReport* report) {
  const Graph prepared = prepare_for_quantization(fp32, images, options, report, progress);
  return quantize_calibrated(prepared, collect_statistics(prepared, images, progress), images, options, bias_correction, report,
                             progress);
}

size_t weight_bytes(const Graph& graph) {
  size_t total = 0;
  for (const auto& kv : graph.constants) total += kv.second.bytes->size();
  return total;
}

Graph convert_onnx(const std::string& onnx_path, const ConvertOptions& options, const Progress& progress,
                   ConvertReport* report) {
  Graph graph = import_onnx(onnx_path);
  apply_preprocess_options(options.preprocess, graph);
  ConvertReport local;
  ConvertReport& r = report ? *report : local;
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

}  // namespace octet
