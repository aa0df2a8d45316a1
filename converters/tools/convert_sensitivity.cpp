#include "converters/tools/convert_sensitivity.h"

#include <set>

#include "converters/tools/charts.h"

namespace octet::tools {

using namespace octet::analysis;
using namespace octet::quant;

void check_sensitivity_request(const SensitivityRequest& request, const ConvertOptions& options) {
  if (!request.requested()) return;
  if (options.calibrate.empty()) {
    const char* flag = request.auto_fp32 ? "--auto-fp32" : request.table ? "--sensitivity" : "--sensitivity-plot";
    throw Error(std::string(flag) + " compares INT8 variants on calibration images: give --calibrate DIR");
  }
  if (request.auto_fp32) analysis::check_auto_fp32_budget(request.auto_fp32_budget);
  if (!request.plot.empty() && lowercase_extension(request.plot) != ".svg" &&
      lowercase_extension(request.plot) != ".png")
    throw Error("--sensitivity-plot '" + request.plot + "': the file name must end in .svg or .png");
}

Graph convert_with_sensitivity(
    const std::string& onnx_path, const ConvertOptions& options, const SensitivityRequest& request,
    const std::function<void(const std::string& stage, size_t done, size_t total)>& stage_progress,
    ConvertReport* report, std::string* summary) {
  check_sensitivity_request(request, options);
  ConvertReport local;
  ConvertReport& r = report ? *report : local;
  ConvertOptions fp32_options = options;
  fp32_options.calibrate.clear();
  const Graph imported = convert_onnx(onnx_path, fp32_options, nullptr, &r);
  if (!imported.preprocess.present)
    throw Error("the sensitivity analysis runs the model on images: give --preset or the preprocessing flags");
  r.calibration_images = select_calibration_images(options.calibrate, options.calib_count);
  const auto stage = [&stage_progress](const std::string& name) -> Progress {
    return [&stage_progress, name](size_t done, size_t total) {
      if (stage_progress) stage_progress(name, done, total);
    };
  };
  const Graph fp32 = prepare_for_quantization(imported, r.calibration_images, options.quantize, options.bias_correction,
                                              &r, stage("equalizing"));
  // One calibration pass for every variant.
  const std::map<std::string, TensorStats> stats = collect_statistics(fp32, r.calibration_images, stage("calibrating"));
  const SensitivityAnalysis analysis(fp32, stats, r.calibration_images, options.quantize, options.bias_correction);
  const SensitivityReport ranking = analysis.rank_layers(stage("sensitivity variants"));
  std::string text = request.table ? sensitivity_table(ranking) : "";
  if (!request.plot.empty())
    write_bar_chart(sensitivity_chart(ranking, "Per-layer INT8 sensitivity: " + onnx_path), request.plot);
  std::set<std::string> kept_fp32;
  if (request.auto_fp32) {
    const AutoFp32Result choice = analysis.auto_fp32(ranking, request.auto_fp32_budget, stage("auto-fp32 layers FP32"));
    if (!choice.reached) throw Error(auto_fp32_summary(choice));
    text += auto_fp32_summary(choice);
    kept_fp32.insert(choice.fp32_layers.begin(), choice.fp32_layers.end());
  }
  Graph model = analysis.variant(kept_fp32, &r);
  r.weight_bytes = weight_bytes(model);
  if (summary) *summary = text;
  return model;
}

}  // namespace octet::tools
