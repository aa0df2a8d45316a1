#include "converters/convert.h"

#include "converters/onnx_import.h"

namespace octet {

std::vector<std::string> select_calibration_images(const std::string& dir_or_list, size_t count) {
  std::vector<std::string> all = list_calibration_images(dir_or_list, 0, 1, 0);
  if (count == 0 || count >= all.size()) return all;
  return list_calibration_images(dir_or_list, count, all.size() / count, 0);
}

Graph quantize_model(const Graph& fp32, const std::vector<std::string>& images, const QuantizeOptions& options,
                     bool bias_correction, const Progress& progress, ConvertReport* report) {
  std::map<std::string, TensorStats> stats = collect_statistics(fp32, images, progress);
  Graph int8 = quantize_graph(fp32, stats, options, report ? &report->layers : nullptr);
  if (bias_correction) {
    BiasCorrectionReport r = correct_bias(int8, fp32, images, progress);
    if (report) report->bias_correction = r;
  }
  return int8;
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
