// Per-layer sensitivity and --auto-fp32 (converters/analysis/sensitivity.h): on a hand-built graph whose noisy layer
// is known, the ranking, the noise shares and the auto-fp32 choice; octet-convert's flags end to end on
// MobileNet and with bad input.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "converters/analysis/sensitivity.h"
#include "converters/tools/charts.h"
#include "graph/model_format.h"
#include "octet/evaluation.h"
#include "octet/octet.h"
#include "support/graphs.h"
#include "support/process.h"

namespace fs = std::filesystem;

namespace {

const std::string kShared = OCTET_SHARED_DIR;
const std::string kSamples = kShared + "/data/imagenet-samples";
const fs::path kScratch = fs::path(OCTET_BUILD_DIR) / "test_sensitivity";

octet::Node conv_1x1(const std::string& name, const std::string& input, const std::string& act = "") {
  octet::Node conv{name, "Conv", {input, name + "/w", name + "/b"}, {name}, {}};
  conv.attrs.set("kernel_shape", std::vector<int64_t>{1, 1});
  if (!act.empty()) conv.attrs.set("act", act);
  return conv;
}

// image [N,3,16,16] -> conv_a (identity, ReLU) -> conv_b (3 -> 4) -> GlobalAveragePool -> Flatten -> Gemm (3 classes).
// conv_b's channel 0 has weight 100 and the classifier ignores it; channels 1..3 (weights 0.3 and -0.15)
// compare the colour channels and decide the class. With per-tensor weights the step is 100/127 = 0.79, so
// channels 1..3 round to all-zero weights: conv_b in INT8 makes the logits constant (bias correction
// restores only their calibration mean), while conv_a's identity weights and the input's u8 grid cost almost
// nothing. The classifier (the last Gemm) stays FP32, so the candidates are conv_a and conv_b.
octet::Graph colour_classifier() {
  constexpr int64_t kSide = 16;
  octet::Graph graph = octet::testing::fp32_graph("colour_classifier", {"image"}, {"logits"},
                                                  {{"image", {3, kSide, kSide}},
                                                   {"conv_a", {3, kSide, kSide}},
                                                   {"conv_b", {4, kSide, kSide}},
                                                   {"pooled", {4, 1, 1}},
                                                   {"flat", {4}},
                                                   {"logits", {3}}});
  graph.constants["conv_a/w"] = octet::Constant::from_floats({3, 3, 1, 1}, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  graph.constants["conv_a/b"] = octet::Constant::from_floats({3}, {0, 0, 0});
  graph.constants["conv_b/w"] = octet::Constant::from_floats({4, 3, 1, 1}, {100, 0, 0,             //
                                                                            0.3f, -0.15f, -0.15f,  //
                                                                            -0.15f, 0.3f, -0.15f,  //
                                                                            -0.15f, -0.15f, 0.3f});
  graph.constants["conv_b/b"] = octet::Constant::from_floats({4}, {0, 0, 0, 0});
  graph.constants["classifier/w"] = octet::Constant::from_floats({3, 4}, {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1});
  graph.constants["classifier/b"] = octet::Constant::from_floats({3}, {0, 0, 0});
  octet::Node flatten{"flatten", "Flatten", {"pooled"}, {"flat"}, {}};
  flatten.attrs.set("axis", int64_t{1});
  octet::Node classifier{"classifier", "Gemm", {"flat", "classifier/w", "classifier/b"}, {"logits"}, {}};
  classifier.attrs.set("transB", int64_t{1});
  graph.nodes = {conv_1x1("conv_a", "image", "relu"), conv_1x1("conv_b", "conv_a"),
                 octet::Node{"pool", "GlobalAveragePool", {"conv_b"}, {"pooled"}, {}}, flatten, classifier};
  graph.preprocess.present = true;
  graph.preprocess.resize_shorter = 20;
  graph.preprocess.crop_height = graph.preprocess.crop_width = kSide;
  for (int c = 0; c < 3; ++c) graph.preprocess.mean[c] = 0.45f, graph.preprocess.std[c] = 0.25f;
  return graph;
}

octet::quant::QuantizeOptions per_tensor() {
  octet::quant::QuantizeOptions options;
  options.per_channel = false;
  return options;
}

using Run = octet::testing::ProcessResult;
using octet::testing::read_text;

// octet-convert on MobileNet v1 0.25 with the given extra arguments, capturing stdout and stderr.
Run convert_mobilenet(const std::vector<std::string>& args,
                      const std::string& output = (kScratch / "unused").string()) {
  std::vector<std::string> command = {
      OCTET_CONVERT, kShared + "/models/mobilenet_v1_025/model.onnx", "-o", output, "--preset", "tf"};
  command.insert(command.end(), args.begin(), args.end());
  return octet::testing::run_process(command, kScratch);
}

}  // namespace

TEST_CASE("the layer whose per-tensor weights collapse ranks first, and --auto-fp32 keeps exactly it FP32" *
          doctest::test_suite("models")) {
  const octet::Graph fp32 = colour_classifier();
  const std::vector<std::string> images = octet::list_images(kSamples, 20, 10, 0);
  const auto stats = octet::quant::collect_statistics(fp32, images, nullptr);
  const octet::analysis::SensitivityAnalysis analysis(fp32, stats, images, per_tensor(), true);

  std::vector<std::pair<size_t, size_t>> reported;
  const octet::analysis::SensitivityReport report =
      analysis.rank_layers([&](size_t done, size_t total) { reported.emplace_back(done, total); });
  CHECK(reported == std::vector<std::pair<size_t, size_t>>{{1, 5}, {2, 5}, {3, 5}, {4, 5}, {5, 5}});
  CHECK(report.images == 20);
  REQUIRE(report.layers.size() == 2);  // the FP32 classifier is no candidate
  const octet::analysis::LayerSensitivity& bad = report.layers[0];
  const octet::analysis::LayerSensitivity& good = report.layers[1];
  CHECK(bad.node == "conv_b");
  CHECK(good.node == "conv_a");
  CHECK(bad.op == "Conv");
  // The model is only as good as its conv_b: constant logits agree with FP32 only where FP32 happens to
  // pick the same class. (If the images' colours ever made one class cover 90%, this test would say so.)
  INFO("all INT8: agreement " << report.all_int8.top1_agreement << ", SQNR " << report.all_int8.sqnr_db);
  CHECK(report.all_int8.top1_agreement < 0.9);
  CHECK(report.all_int8.sqnr_db < 10);
  CHECK(bad.all_but_this_int8.top1_agreement == 1.0);
  CHECK(bad.all_but_this_int8.sqnr_db > 30);
  CHECK(good.only_this_int8.sqnr_db > 30);
  CHECK(bad.only_this_int8.sqnr_db < 10);
  CHECK(good.all_but_this_int8.top1_agreement < 0.9);
  // Nearly all of the noise is conv_b's, by either measure.
  CHECK(bad.noise_share_alone > 0.9);
  CHECK(bad.noise_share_removed > 0.99);
  CHECK(good.noise_share_alone < 0.01);
  CHECK(good.noise_share_removed < 0.05);

  const std::string table = octet::analysis::sensitivity_table(report);
  CHECK(table.find("conv_b") < table.find("conv_a"));
  CHECK(table.find("20 calibration images") != std::string::npos);
  CHECK(octet::analysis::sensitivity_table(report, 1).find("conv_a") == std::string::npos);

  reported.clear();
  const octet::analysis::AutoFp32Result choice =
      analysis.auto_fp32(report, 99, [&](size_t done, size_t total) { reported.emplace_back(done, total); });
  CHECK(choice.reached);
  CHECK(choice.fp32_layers == std::vector<std::string>{"conv_b"});
  REQUIRE(choice.steps.size() == 2);
  CHECK(choice.steps[1].top1_agreement == 1.0);
  CHECK(reported == std::vector<std::pair<size_t, size_t>>{{1, 2}});
  CHECK(octet::analysis::auto_fp32_summary(choice).find("1 layer(s) kept FP32 (conv_b)") != std::string::npos);
  // The chosen model: conv_b fully FP32 (f32 weights), conv_a INT8; measuring it again gives the same.
  octet::quant::ConvertReport chosen;
  const octet::Graph model = analysis.variant({"conv_b"}, &chosen);
  CHECK(model.constants.at("conv_b/w").dtype == octet::DType::f32);
  CHECK(model.constants.at("conv_a/w").dtype == octet::DType::s8);
  CHECK(chosen.bias_correction.layers == 1);
  CHECK(analysis.measure(model).sqnr_db == doctest::Approx(choice.steps[1].sqnr_db));

  // A budget the all-INT8 model already meets keeps nothing FP32; a bad one is refused.
  const octet::analysis::AutoFp32Result none = analysis.auto_fp32(report, 1, nullptr);
  CHECK(none.reached);
  CHECK(none.fp32_layers.empty());
  for (double budget : {0.0, -5.0, 100.5})
    CHECK_THROWS_WITH_AS(analysis.auto_fp32(report, budget, nullptr), doctest::Contains("(0, 100]"), octet::Error);
}

TEST_CASE("with per-channel weights the same graph quantizes well: no layer stands out" *
          doctest::test_suite("models")) {
  const octet::Graph fp32 = colour_classifier();
  const std::vector<std::string> images = octet::list_images(kSamples, 20, 10, 0);
  const auto stats = octet::quant::collect_statistics(fp32, images, nullptr);
  const octet::analysis::SensitivityReport report =
      octet::analysis::SensitivityAnalysis(fp32, stats, images, {}, true).rank_layers(nullptr);
  CHECK(report.all_int8.top1_agreement == 1.0);
  CHECK(report.all_int8.sqnr_db > 30);
}

TEST_CASE("bar charts refuse a file type other than SVG or PNG and mismatched values") {
  octet::tools::BarChart chart;
  chart.categories = {"a", "b"};
  chart.series = {"s"};
  chart.values = {{1, 2}};
  const std::string pdf = (kScratch / "chart.pdf").string();
  CHECK_THROWS_WITH_AS(octet::tools::write_bar_chart(chart, pdf), doctest::Contains(".svg or .png"), octet::Error);
  chart.values = {{1}};
  CHECK_THROWS_WITH_AS(octet::tools::write_bar_chart(chart, (kScratch / "chart.svg").string()),
                       doctest::Contains("number of categories"), octet::Error);
}

TEST_CASE("octet-convert refuses sensitivity and policy requests that cannot run, before any work" *
          doctest::test_suite("models")) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"--auto-fp32", "99"}, "--auto-fp32 compares INT8 variants on calibration images: give --calibrate"},
      {{"--sensitivity"}, "--sensitivity compares INT8 variants"},
      {{"--sensitivity-plot", "ranking.svg"}, "--sensitivity-plot compares INT8 variants"},
      {{"--calibrate", kSamples, "--auto-fp32", "0"}, "--auto-fp32 0: the budget is a Top-1 agreement in (0, 100] %"},
      {{"--calibrate", kSamples, "--auto-fp32", "100.5"}, "(0, 100]"},
      {{"--calibrate", kSamples, "--auto-fp32", "-3"}, "(0, 100]"},
      {{"--calibrate", kSamples, "--sensitivity-plot", "ranking.pdf"},
       "'ranking.pdf': the file name must end in .svg or .png"},
      {{"--calibrate", kSamples, "--equalize", "2"}, "--equalize '2': give auto, a number in [0, 1] or off"},
      {{"--calibrate", kSamples, "--equalize", "some"}, "--equalize 'some'"},
      {{"--calibrate", kSamples, "--rounding", "stochastic"}, "--rounding 'stochastic' is not nearest or gptq"},
  };
  for (const Case& c : cases) {
    const Run run = convert_mobilenet(c.args);
    INFO(c.args.back());
    CHECK(run.exit_code == 1);
    CHECK(run.err.find(c.message) != std::string::npos);
    CHECK(run.err.find("calibrating") == std::string::npos);
  }
  const Run not_a_number = convert_mobilenet({"--calibrate", kSamples, "--auto-fp32", "most"});
  CHECK(not_a_number.exit_code != 0);
  CHECK(not_a_number.err.find("--auto-fp32") != std::string::npos);
}

TEST_CASE("octet-convert --sensitivity --auto-fp32 on MobileNet v1 0.25 (4 calibration images)" *
          doctest::test_suite("models")) {
  const std::string output = (kScratch / "mobilenet_auto").string();
  const Run run =
      convert_mobilenet({"--calibrate", kSamples, "--calib-count", "4", "--sensitivity", "--auto-fp32", "100"}, output);
  REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  // 27 INT8 layers (all Conv but the classifier): the all-INT8 model and two variants each.
  CHECK(run.err.find("sensitivity variants: 55/55") != std::string::npos);
  CHECK(run.out.find("sensitivity over 4 calibration images; all 27 layers INT8") != std::string::npos);
  const size_t summary = run.out.find("auto-fp32 100%: ");
  REQUIRE(summary != std::string::npos);
  // The written model keeps the chosen layers fully FP32, as the summary line lists them.
  const std::string chosen = run.out.substr(summary, run.out.find('\n', summary) - summary);
  const auto model = octet::Model::load(output);
  size_t fp32_layers = 0;
  for (const octet::Node& node : model->graph().nodes) {
    if (node.op != "Conv" || node.name == octet::quant::final_classifier(model->graph())) continue;
    const bool kept = model->graph().constants.at(node.inputs[1]).dtype == octet::DType::f32;
    fp32_layers += kept;
    CHECK_MESSAGE(kept == (chosen.find(node.name + ",") != std::string::npos ||
                           chosen.find(node.name + ")") != std::string::npos),
                  node.name);
  }
  CHECK(chosen.find(std::to_string(fp32_layers) + " layer(s) kept FP32") != std::string::npos);
  CHECK(run.out.find("layers: ") != std::string::npos);  // the usual summary follows
}
