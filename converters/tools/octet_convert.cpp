// octet-convert model.onnx -o OUT [--preset P] [--labels FILE] [--calibrate DIR [--calib-count N]
//               [--method M] [--weights per-channel|per-tensor] [--activations auto|asymmetric|symmetric]
//               [--rounding gptq|nearest] [--equalize auto|ALPHA|off] [--no-bias-correction]
//               [--int8-classifier] [--fp32-attention] [--fp32 NODE,...] [--sensitivity] [--sensitivity-plot
//               FILE.svg|png]
//               [--auto-fp32 BUDGET]]
// Converts an ONNX classifier into octet's model.json + model.bin, FP32 or (with --calibrate) INT8.
// --sensitivity ranks the INT8 layers by what each costs; --auto-fp32 keeps the fewest most sensitive ones
// FP32 until the Top-1 agreement with FP32 on the calibration images reaches BUDGET %
// (converters/analysis/sensitivity.h).
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "converters/analysis/sensitivity.h"
#include "converters/onnx/qdq_export.h"
#include "converters/quant/convert.h"
#include "converters/tools/cli_options.h"
#include "converters/tools/convert_sensitivity.h"
#include "graph/model_format.h"
#include "octet/octet.h"
#include "octet/progress.h"

namespace {

// Refuses an output file that cannot be written (a missing folder, a folder at that path, no permission)
// before any work, and before the model folder is written.
void check_writable(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw octet::Error(flag + " '" + path + "': is a folder; give a file name");
  const bool existed = std::filesystem::exists(path, ec);
  std::FILE* file = std::fopen(path.c_str(), "ab");
  if (!file) throw octet::Error(flag + " '" + path + "': cannot write: " + std::strerror(errno));
  std::fclose(file);
  if (!existed) std::filesystem::remove(path, ec);
}

// "entropy", "percentile" or "percentile=99.9".
void parse_method(const std::string& text, octet::quant::QuantizeOptions& options) {
  std::string name = text, value;
  size_t eq = text.find('=');
  if (eq != std::string::npos) name = text.substr(0, eq), value = text.substr(eq + 1);
  options.method = octet::quant::parse_calibration_method(name);
  if (!value.empty()) {
    if (options.method != octet::quant::CalibrationMethod::percentile)
      throw octet::Error("--method " + name + " takes no value");
    try {
      options.percentile = std::stod(value);
    } catch (const std::exception&) {
      throw octet::Error("--method percentile=" + value + ": not a number");
    }
    if (!(options.percentile > 0 && options.percentile <= 100))
      throw octet::Error("--method percentile=" + value + ": must be in (0, 100]");
  }
}

void print_summary(const std::string& input, const std::string& output, const octet::Graph& graph,
                   const octet::quant::ConvertReport& report) {
  std::map<std::string, int> ops;
  for (const octet::Node& node : graph.nodes) ops[node.op]++;
  std::printf("%s -> %s: %zu nodes (", input.c_str(), output.c_str(), graph.nodes.size());
  bool first = true;
  for (const auto& kv : ops) std::printf("%s%s %d", first ? "" : ", ", kv.first.c_str(), kv.second), first = false;
  std::printf(")\n");
  if (!report.quantized_form.empty()) {
    std::printf("quantized ONNX model (%s): its own scales, zero points and integers, no calibration\n",
                report.quantized_form.c_str());
    for (const std::string& note : report.import_notes) std::printf("  converted: %s\n", note.c_str());
  }
  if (!report.layers.empty()) {
    std::map<std::string, int> modes;
    for (const auto& l : report.layers) modes[l.mode]++;
    std::printf("layers:");
    for (const auto& kv : modes) std::printf(" %d %s;", kv.second, kv.first.c_str());
    for (const auto& l : report.layers)
      if (l.mode != "int8") std::printf(" [%s: %s]", l.node.c_str(), l.mode.c_str());
    std::printf("\n");
  }
  const octet::quant::EqualizationReport& eq = report.equalization;
  if (eq.pairs && eq.kept)
    std::printf("equalization: %zu Conv pairs, channel range spread (max/mean) %.2f -> %.2f\n", eq.pairs,
                eq.spread_before, eq.spread_after);
  if (eq.smoothed && eq.kept)
    std::printf("smoothing: %zu linear-layer inputs, channel range spread (max/mean) %.2f -> %.2f\n", eq.smoothed,
                eq.smoothed_spread_before, eq.smoothed_spread_after);
  if (eq.compared)
    std::printf(
        "equalization %s: INT8 logit SQNR on the calibration images %.2f dB without, %.2f dB with (kept from +%.1f "
        "dB)\n",
        eq.kept ? "kept" : "not kept", eq.sqnr_without_db, eq.sqnr_with_db, octet::quant::kEqualizationMinGainDb);
  if (report.weight_rounding.layers || report.weight_rounding.skipped)
    std::printf(
        "weight rounding (GPTQ): %zu layers (%zu kept to nearest), weight-only output SQNR on the calibration inputs "
        "%.1f -> %.1f dB\n",
        report.weight_rounding.layers, report.weight_rounding.skipped, report.weight_rounding.nearest_db,
        report.weight_rounding.rounded_db);
  if (report.bias_correction.layers)
    std::printf("bias correction: %zu layers, mean shift removed %.3f output steps (max %.2f)\n",
                report.bias_correction.layers, report.bias_correction.mean_abs_shift,
                report.bias_correction.max_abs_shift);
  if (!report.quantized_form.empty()) {  // no FP32 model to compare with: the file came quantized
    std::printf("weights: %.2f MB\n", static_cast<double>(report.weight_bytes) / 1e6);
    return;
  }
  double before = static_cast<double>(report.fp32_weight_bytes) / 1e6,
         after = static_cast<double>(report.weight_bytes) / 1e6;
  std::printf("weights: %.2f MB FP32 -> %.2f MB (%.1f%%)\n", before, after, before > 0 ? 100.0 * after / before : 0.0);
}

// "auto" -> 0.5 kept only if better, "off" -> -1, else a number in [0, 1] always applied.
void parse_equalize(const std::string& text, octet::quant::QuantizeOptions& options) {
  options.equalize_only_if_better = text == "auto";
  if (text == "auto") {
    options.equalize_alpha = 0.5;
    return;
  }
  if (text == "off") {
    options.equalize_alpha = -1;
    return;
  }
  size_t used = 0;
  double alpha = -1;
  try {
    alpha = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !(alpha >= 0 && alpha <= 1))
    throw octet::Error("--equalize '" + text + "': give auto, a number in [0, 1] or off");
  options.equalize_alpha = alpha;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"octet-convert: ONNX image classifier -> octet model (model.json + model.bin), FP32 or INT8"};
  std::string input, output, method = "minmax", weights = "per-channel", activations = "auto";
  std::vector<std::string> fp32_nodes;
  octet::quant::ConvertOptions options;
  app.add_option("model", input, "ONNX model file")->required();
  app.add_option("-o,--output", output, "output folder (created)")->required();
  octet::tools::add_preprocess_options(app, options.preprocess);
  // An empty --calibrate (an unset shell variable) is refused rather than read as "no calibration" (FP32).
  app.add_option("--calibrate", options.calibrate, "folder or list of images: calibrate and quantize to INT8")
      ->check([](const std::string& value) {
        return value.empty() ? std::string("is empty (an unset variable?)") : std::string();
      });
  int64_t calib_count = static_cast<int64_t>(options.calib_count);
  app.add_option("--calib-count", calib_count, "calibration images, evenly spaced (default 100)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  app.add_option("--method", method, "range choice: minmax | percentile[=99.99] | entropy | mse (default minmax)");
  app.add_option("--weights", weights, "per-channel | per-tensor (default per-channel)");
  app.add_option("--activations", activations, "auto | asymmetric | symmetric (default auto)");
  app.add_flag("--int8-classifier", options.quantize.int8_classifier, "also run the final classifier in INT8");
  bool fp32_attention = false;
  app.add_flag("--fp32-attention", fp32_attention,
               "keep MatMuls of two activations (attention's Q.K^T and softmax.V) and their Softmax FP32");
  bool no_bias_correction = false;
  app.add_flag("--no-bias-correction", no_bias_correction, "keep the biases as quantized (no mean-shift correction)");
  std::string rounding = "gptq", equalize = "auto";
  app.add_option("--rounding", rounding,
                 "weights to integers: gptq (error-compensating, from the calibration inputs; default) | nearest");
  app.add_option("--equalize", equalize,
                 "equalize activation channel ranges between Convs first: auto (alpha 0.5, kept only if the INT8 model "
                 "gains >= 1 dB logit SQNR on the calibration images; default), ALPHA in [0, 1] (always; 1: all to the "
                 "activation) or off");
  app.add_option("--fp32", fp32_nodes, "nodes kept fully FP32 (comma-separated)")->delimiter(',');
  std::string export_qdq;
  app.add_option(
      "--export-qdq", export_qdq,
      "also write the graph as a QDQ ONNX model (FILE.onnx) that ONNX Runtime runs with octet's quantization");
  std::string export_qdq_integer;
  app.add_option(
      "--export-qdq-integer", export_qdq_integer,
      "also write a QDQ ONNX model for timing ONNX Runtime's integer kernels: each Conv with a fused Add or "
      "LeakyRelu is requantized first, so ORT runs QLinearAdd/QLinearLeakyRelu (values differ from octet's)");
  octet::tools::SensitivityRequest sensitivity;
  app.add_flag("--sensitivity", sensitivity.table, "rank the INT8 layers by the error each adds (table on stdout)");
  app.add_option("--sensitivity-plot", sensitivity.plot, "also draw the ranking with gnuplot (FILE.svg or FILE.png)");
  CLI::Option* auto_fp32 =
      app.add_option("--auto-fp32", sensitivity.auto_fp32_budget,
                     "keep the fewest most sensitive layers FP32 until the Top-1 agreement with FP32 "
                     "on the calibration images reaches BUDGET %");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;  // --help exits 0; a bad flag prints why and exits 1
  }
  sensitivity.auto_fp32 = auto_fp32->count() > 0;
  options.calib_count = static_cast<size_t>(calib_count);
  options.quantize.int8_attention = !fp32_attention;
  try {
    check_writable("--export-qdq", export_qdq);
    check_writable("--export-qdq-integer", export_qdq_integer);
    check_writable("--sensitivity-plot", sensitivity.plot);
    parse_method(method, options.quantize);
    if (weights != "per-channel" && weights != "per-tensor")
      throw octet::Error("--weights '" + weights + "' is not per-channel or per-tensor");
    options.quantize.per_channel = weights == "per-channel";
    options.quantize.activations = octet::quant::parse_activation_mode(activations);
    options.quantize.fp32_nodes.insert(fp32_nodes.begin(), fp32_nodes.end());
    options.bias_correction = !no_bias_correction;
    parse_equalize(equalize, options.quantize);
    if (rounding != "nearest" && rounding != "gptq")
      throw octet::Error("--rounding '" + rounding + "' is not nearest or gptq");
    options.quantize.rounding =
        rounding == "gptq" ? octet::quant::WeightRounding::gptq : octet::quant::WeightRounding::nearest;
    octet::quant::ConvertReport report;
    octet::ProgressLine progress_line;
    auto progress = [&progress_line](size_t done, size_t total) {
      progress_line.update("calibrating (image runs)", done, total);
    };
    auto stage_progress = [&progress_line](const std::string& stage, size_t done, size_t total) {
      progress_line.update(stage, done, total);
    };
    std::string sensitivity_summary;
    octet::Graph graph = sensitivity.requested()
                             ? octet::tools::convert_with_sensitivity(input, options, sensitivity, stage_progress,
                                                                      &report, &sensitivity_summary)
                             : octet::quant::convert_onnx(input, options, progress, &report);
    progress_line.finish();
    std::fputs(sensitivity_summary.c_str(), stdout);
    octet::Model::from_graph(graph);  // the runtime's own validation: what we write can be loaded
    octet::write_model(graph, output);
    if (!export_qdq.empty()) octet::onnx::export_qdq_onnx(graph, export_qdq);
    if (!export_qdq_integer.empty())
      octet::onnx::export_qdq_onnx(graph, export_qdq_integer, octet::onnx::QdqStyle::integer_post_ops);
    print_summary(input, output, graph, report);
  } catch (const std::exception& e) {  // octet::Error, and anything else (std::bad_alloc): a message, never a signal
    std::fprintf(stderr, "octet-convert: %s\n", e.what());
    return 1;
  }
  return 0;
}
