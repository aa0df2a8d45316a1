#include "converters/sensitivity.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "converters/evaluation.h"
#include "graph/quantization.h"

namespace octet {
namespace {

// Output 0 of `graph` on every image (batch 1), concatenated.
std::vector<float> output_logits(const Graph& graph, const std::vector<std::string>& images) {
  std::vector<float> logits;
  run_on_images(graph, {graph.outputs.at(0)}, images, [&logits](const std::string&, Session& session) {
    const Tensor output = session.output(0);
    logits.insert(logits.end(), output.data, output.data + output.elements());
  }, nullptr);
  return logits;
}

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

std::string fidelity_text(const Fidelity& f) {
  return "Top-1 agreement " + format("%.1f%%", 100 * f.top1_agreement) + ", logit SQNR " + format("%.2f dB", f.sqnr_db);
}

// A string as a gnuplot literal: single quotes, a quote doubled.
std::string gnuplot_string(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  return quoted + "'";
}

std::string lowercase_extension(const std::string& path) {
  std::string extension = std::filesystem::path(path).extension().string();
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return extension;
}

void check_budget(double budget_percent) {
  if (!(budget_percent > 0 && budget_percent <= 100))
    throw Error("--auto-fp32 " + format("%g", budget_percent) + ": the budget is a Top-1 agreement in (0, 100] %");
}

}  // namespace

// ---- the analysis -------------------------------------------------------------------------------------

SensitivityAnalysis::SensitivityAnalysis(const Graph& fp32, const std::map<std::string, TensorStats>& stats,
                                         std::vector<std::string> images, QuantizeOptions options, bool bias_correction)
    : fp32_(fp32), stats_(stats), images_(std::move(images)), options_(std::move(options)), bias_correction_(bias_correction) {
  reference_logits_ = output_logits(fp32_, images_);
}

Graph SensitivityAnalysis::variant(const std::set<std::string>& extra_fp32, ConvertReport* report) const {
  QuantizeOptions options = options_;
  options.fp32_nodes.insert(extra_fp32.begin(), extra_fp32.end());
  return quantize_calibrated(fp32_, stats_, images_, options, bias_correction_, report, nullptr, &rounding_cache_);
}

Fidelity SensitivityAnalysis::measure(const Graph& model) const {
  const std::vector<float> logits = output_logits(model, images_);
  if (logits.size() != reference_logits_.size())
    throw Error("sensitivity: the variant has " + std::to_string(logits.size()) + " outputs over the images, FP32 has " +
                std::to_string(reference_logits_.size()));
  const size_t classes = logits.size() / images_.size();
  size_t agreements = 0;
  for (size_t i = 0; i < images_.size(); ++i)
    agreements += top1_agrees(reference_logits_.data() + i * classes, logits.data() + i * classes, classes);
  return {sqnr_db(reference_logits_.data(), logits.data(), int64_t(logits.size())), double(agreements) / double(images_.size())};
}

SensitivityReport SensitivityAnalysis::rank_layers(const Progress& progress) const {
  ConvertReport policy;
  SensitivityReport report;
  report.images = images_.size();
  report.all_int8 = measure(variant({}, &policy));
  std::set<std::string> weight_layers;  // every Conv/Gemm/MatMul: "only this INT8" keeps all the others FP32
  for (const QuantizedLayer& layer : policy.layers) weight_layers.insert(layer.node);
  for (const QuantizedLayer& layer : policy.layers)
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
  std::stable_sort(report.layers.begin(), report.layers.end(), [](const LayerSensitivity& a, const LayerSensitivity& b) {
    return a.all_but_this_int8.sqnr_db > b.all_but_this_int8.sqnr_db;
  });
  return report;
}

AutoFp32Result SensitivityAnalysis::auto_fp32(const SensitivityReport& ranking, double budget_percent,
                                              const Progress& progress) const {
  check_budget(budget_percent);
  AutoFp32Result result;
  result.budget_percent = budget_percent;
  // A small tolerance so that e.g. 99 of 100 images meets a budget of 99 despite rounding.
  const auto meets_budget = [budget_percent](const Fidelity& f) { return 100 * f.top1_agreement >= budget_percent - 1e-9; };
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
             format("   %7.2f", l.all_but_this_int8.sqnr_db) + format("  %7.1f", 100 * l.all_but_this_int8.top1_agreement) +
             format("   %5.1f", 100 * l.noise_share_alone) + format("  %7.1f", 100 * l.noise_share_removed) + "\n";
  }
  return table;
}

std::string auto_fp32_summary(const AutoFp32Result& result) {
  std::string text = "auto-fp32 " + format("%g%%", result.budget_percent) + ": ";
  const Fidelity& last = result.steps.back();
  if (!result.reached) {
    text += "not reached: with all " + std::to_string(result.fp32_layers.size()) +
            " candidate layers FP32 (only weight-only s8 layers, such as the FP32 classifier, stay quantized), " + fidelity_text(last);
  } else {
    text += std::to_string(result.fp32_layers.size()) + " layer(s) kept FP32";
    for (size_t i = 0; i < result.fp32_layers.size(); ++i) text += (i ? ", " : " (") + result.fp32_layers[i] + (i + 1 == result.fp32_layers.size() ? ")" : "");
    text += ": " + fidelity_text(last);
  }
  text += "\n  layers FP32  Top-1 agreement  logit SQNR\n";
  for (size_t k = 0; k < result.steps.size(); ++k)
    text += format("  %11.0f", double(k)) + format("  %14.1f%%", 100 * result.steps[k].top1_agreement) +
            format("  %7.2f dB\n", result.steps[k].sqnr_db);
  return text;
}

// ---- bar charts ---------------------------------------------------------------------------------------

void write_bar_chart(const BarChart& chart, const std::string& path) {
  const std::string extension = lowercase_extension(path);
  if (extension != ".svg" && extension != ".png") throw Error("plot '" + path + "': the file name must end in .svg or .png");
  if (chart.values.size() != chart.series.size()) throw Error("plot '" + path + "': values for a different number of series");
  for (const std::vector<double>& row : chart.values)
    if (row.size() != chart.categories.size()) throw Error("plot '" + path + "': values for a different number of categories");
  const size_t bars = std::max<size_t>(1, chart.categories.size() * chart.series.size());
  size_t longest_label = 0;  // rotated labels take height from the plot
  for (const std::string& category : chart.categories) longest_label = std::max(longest_label, category.size());
  const int width = int(std::clamp<size_t>(240 + 16 * bars, 640, 2400));
  const int height = 420 + (chart.vertical_labels ? int(7 * std::min<size_t>(longest_label, 80)) : 40);
  std::string script = extension == ".svg" ? "set terminal svg size " : "set terminal pngcairo size ";
  script += std::to_string(width) + "," + std::to_string(height) + " font 'sans,11' background rgb 'white'\n";
  script += "set termoption noenhanced\nset output " + gnuplot_string(path) + "\n";
  script += "set title " + gnuplot_string(chart.title) + "\nset ylabel " + gnuplot_string(chart.ylabel) + "\n";
  script += "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.85 border -1\n";
  script += "set grid ytics\nset key outside top center horizontal\nset xtics nomirror\n";
  if (chart.vertical_labels) script += "set xtics rotate by 90 right\n";
  if (chart.log_y) script += "set logscale y\n";
  script += "$values << EOD\n";
  for (size_t c = 0; c < chart.categories.size(); ++c) {
    std::string name = chart.categories[c];
    std::replace(name.begin(), name.end(), '"', '\'');
    script += "\"" + name + "\"";
    for (const std::vector<double>& row : chart.values) script += std::isfinite(row[c]) ? format(" %.6g", row[c]) : " NaN";
    script += "\n";
  }
  script += "EOD\nplot";
  for (size_t s = 0; s < chart.series.size(); ++s)
    script += std::string(s ? "," : "") + " $values using " + std::to_string(s + 2) + (s ? "" : ":xtic(1)") +
              " title " + gnuplot_string(chart.series[s]);
  script += "\n";

  std::FILE* gnuplot = popen("gnuplot", "w");
  if (!gnuplot) throw Error("plot '" + path + "': cannot start gnuplot");
  std::fwrite(script.data(), 1, script.size(), gnuplot);
  const int status = pclose(gnuplot);
  if (status != 0 || !std::filesystem::exists(path))
    throw Error("plot '" + path + "': gnuplot failed (status " + std::to_string(status) +
                "); is it installed? Debian: apt-get install gnuplot-nox");
}

BarChart sensitivity_chart(const SensitivityReport& report, const std::string& title, size_t max_layers) {
  const size_t count = max_layers ? std::min(max_layers, report.layers.size()) : report.layers.size();
  BarChart chart;
  chart.title = title;
  chart.ylabel = "% of the all-INT8 logit noise power";
  chart.series = {"added by the layer alone (only it INT8)", "removed by keeping it FP32 (all others INT8)"};
  chart.values.resize(2);
  chart.vertical_labels = true;
  for (size_t i = 0; i < count; ++i) {
    chart.categories.push_back(report.layers[i].node);
    chart.values[0].push_back(100 * report.layers[i].noise_share_alone);
    chart.values[1].push_back(100 * report.layers[i].noise_share_removed);
  }
  return chart;
}

// ---- octet-convert ------------------------------------------------------------------------------------

void check_sensitivity_request(const SensitivityRequest& request, const ConvertOptions& options) {
  if (!request.requested()) return;
  if (options.calibrate.empty()) {
    const char* flag = request.auto_fp32 ? "--auto-fp32" : request.table ? "--sensitivity" : "--sensitivity-plot";
    throw Error(std::string(flag) + " compares INT8 variants on calibration images: give --calibrate DIR");
  }
  if (request.auto_fp32) check_budget(request.auto_fp32_budget);
  if (!request.plot.empty() && lowercase_extension(request.plot) != ".svg" && lowercase_extension(request.plot) != ".png")
    throw Error("--sensitivity-plot '" + request.plot + "': the file name must end in .svg or .png");
}

Graph convert_with_sensitivity(const std::string& onnx_path, const ConvertOptions& options, const SensitivityRequest& request,
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
  const Graph fp32 = prepare_for_quantization(imported, r.calibration_images, options.quantize, options.bias_correction, &r,
                                              stage("equalizing"));
  // One calibration pass for every variant.
  const std::map<std::string, TensorStats> stats = collect_statistics(fp32, r.calibration_images, stage("calibrating"));
  const SensitivityAnalysis analysis(fp32, stats, r.calibration_images, options.quantize, options.bias_correction);
  const SensitivityReport ranking = analysis.rank_layers(stage("sensitivity variants"));
  std::string text = request.table ? sensitivity_table(ranking) : "";
  if (!request.plot.empty()) write_bar_chart(sensitivity_chart(ranking, "Per-layer INT8 sensitivity: " + onnx_path), request.plot);
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

}  // namespace octet
