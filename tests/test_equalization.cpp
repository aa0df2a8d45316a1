// Cross-layer range equalization (converters/quant/equalization.h) on a hand-built graph whose activation channels
// have ranges 100x apart: which Conv pairs qualify, that the FP32 function is unchanged, that the scales do
// what the formula says (alpha 1: equal ranges; alpha 0.5: range and weight range meet), and that the INT8
// model gets closer to FP32.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "converters/quant/calibration.h"
#include "converters/quant/convert.h"
#include "converters/quant/equalization.h"
#include "graph/quantization.h"
#include "octet/evaluation.h"
#include "support/graphs.h"

namespace {

const std::string kSamples = std::string(OCTET_SHARED_DIR) + "/data/imagenet-samples";

// image [N,3,16,16] -> conv_a (3 -> 4, 1x1, LeakyReLU 0.1) -> MaxPool 2x2 -> conv_b (4 -> 2, 1x1) -> output.
// conv_a's output channels have gains 1, 10, 0.1 and 3, so with one activation scale channel 2 gets about
// 1/100 of channel 1's levels; conv_b weighs channel 2 up (20) to make it count.
octet::Graph two_convs(const std::string& act = "leaky_relu") {
  octet::Graph graph = octet::testing::fp32_graph(
      "two_convs", {"image"}, {"output"},
      {{"image", {3, 16, 16}}, {"a", {4, 16, 16}}, {"pooled", {4, 8, 8}}, {"output", {2, 8, 8}}});
  graph.constants["conv_a/w"] = octet::Constant::from_floats({4, 3, 1, 1}, {1, -0.5f, -0.5f,       //
                                                                            -5, 10, -5,            //
                                                                            -0.05f, -0.05f, 0.1f,  //
                                                                            3, 0, -3});
  graph.constants["conv_a/b"] = octet::Constant::from_floats({4}, {0.1f, -1, 0.01f, 0.5f});
  graph.constants["conv_b/w"] = octet::Constant::from_floats({2, 4, 1, 1}, {1, 0.1f, 20, 0.3f,  //
                                                                            -0.5f, 0.1f, 20, -0.2f});
  graph.constants["conv_b/b"] = octet::Constant::from_floats({2}, {0, 0.2f});
  octet::Node conv_a{"conv_a", "Conv", {"image", "conv_a/w", "conv_a/b"}, {"a"}, {}};
  conv_a.attrs.set("kernel_shape", std::vector<int64_t>{1, 1});
  if (act == "leaky_relu") {
    conv_a.attrs.set("act", act);
    conv_a.attrs.set("act_alpha", 0.1f);
  } else if (act == "clip") {
    conv_a.attrs.set("act", act);
    conv_a.attrs.set("act_alpha", 0.0f);
    conv_a.attrs.set("act_beta", 6.0f);
  }
  octet::Node pool{"pool", "MaxPool", {"a"}, {"pooled"}, {}};
  pool.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
  pool.attrs.set("strides", std::vector<int64_t>{2, 2});
  octet::Node conv_b{"conv_b", "Conv", {"pooled", "conv_b/w", "conv_b/b"}, {"output"}, {}};
  conv_b.attrs.set("kernel_shape", std::vector<int64_t>{1, 1});
  graph.nodes = {conv_a, pool, conv_b};
  graph.preprocess.present = true;
  graph.preprocess.resize_shorter = 20;
  graph.preprocess.crop_height = graph.preprocess.crop_width = 16;
  for (int c = 0; c < 3; ++c) graph.preprocess.mean[c] = 0.45f, graph.preprocess.std[c] = 0.25f;
  return graph;
}

std::vector<std::string> images(size_t offset) { return octet::list_images(kSamples, 8, 10, offset); }

std::vector<float> outputs(const octet::Graph& graph, const std::vector<std::string>& files) {
  std::vector<float> all;
  octet::quant::run_on_images(
      graph, {"output"}, files,
      [&](const std::string&, octet::Session& session) {
        octet::Tensor t = session.output(0);
        all.insert(all.end(), t.data, t.data + t.elements());
      },
      nullptr);
  return all;
}

std::vector<double> channel_widths(const octet::Graph& graph, const std::vector<std::string>& files) {
  octet::quant::ChannelRanges r = octet::quant::collect_channel_ranges(graph, {"a"}, files, nullptr).at("a");
  std::vector<double> widths;
  for (size_t c = 0; c < r.max.size(); ++c) widths.push_back(double(r.max[c]) - r.min[c]);
  return widths;
}

}  // namespace

TEST_CASE("equalization pairs: through MaxPool after ReLU/LeakyReLU, not after Clip or onto a graph output") {
  std::vector<octet::quant::EqualizationPair> pairs = octet::quant::find_equalization_pairs(two_convs());
  REQUIRE(pairs.size() == 1);
  CHECK(pairs[0].conv_a == "conv_a");
  CHECK(pairs[0].conv_b == "conv_b");
  CHECK(pairs[0].tensor == "a");
  CHECK(pairs[0].path == std::vector<std::string>{"pool"});
  CHECK(octet::quant::find_equalization_pairs(two_convs("")).size() == 1);
  CHECK(octet::quant::find_equalization_pairs(two_convs("clip")).empty());  // min(x, 6) has a fixed bound
  octet::Graph also_output = two_convs();
  also_output.outputs.push_back("pooled");
  CHECK(octet::quant::find_equalization_pairs(also_output).empty());
  octet::Graph grouped = two_convs();
  grouped.nodes[2].attrs.set("group", int64_t{2});
  CHECK(octet::quant::find_equalization_pairs(grouped).empty());
}

TEST_CASE("equalization keeps the FP32 outputs and gives the scales the formula says" * doctest::test_suite("models")) {
  const octet::Graph original = two_convs();
  const std::vector<std::string> calibration = images(0), others = images(5);
  const std::vector<double> before = channel_widths(original, calibration);
  const std::vector<float> reference = outputs(original, others);
  for (double alpha : {1.0, 0.5}) {
    CAPTURE(alpha);
    octet::Graph graph = original;
    octet::quant::EqualizationReport report = octet::quant::equalize_ranges(graph, calibration, alpha, nullptr);
    CHECK(report.pairs == 1);
    const std::vector<float> equalized = outputs(graph, others);
    REQUIRE(equalized.size() == reference.size());
    CHECK(octet::sqnr_db(reference.data(), equalized.data(), int64_t(reference.size())) > 100);  // float rounding only
    const std::vector<double> after = channel_widths(graph, calibration);
    const double largest = *std::max_element(before.begin(), before.end());
    CHECK(*std::max_element(after.begin(), after.end()) == doctest::Approx(largest).epsilon(1e-5));
    if (alpha == 1.0) {
      for (double w : after) CHECK(w == doctest::Approx(largest).epsilon(1e-5));
      CHECK(report.spread_after == doctest::Approx(1.0).epsilon(1e-5));
      CHECK(report.spread_before > 2.0);
    } else {
      // Range and relative weight range of each channel meet: scaled range / column range is the same for all.
      // conv_b's columns relative to their rows' largest weight (20 in both rows): 1/20, 0.1/20, 1, 0.3/20.
      const double column[4] = {1.0 / 20, 0.1 / 20, 1.0, 0.3 / 20};
      std::vector<float> wb = graph.constants.at(graph.nodes[2].inputs[1]).as_floats();
      for (size_t c = 0; c < 4; ++c) {
        double scale = after[c] / before[c];
        CHECK(wb[c] == doctest::Approx(original.constants.at("conv_b/w").as_floats()[c] / scale).epsilon(1e-5));
        CHECK(after[c] / (column[c] / scale) ==
              doctest::Approx(after[0] / (column[0] / (after[0] / before[0]))).epsilon(1e-4));
      }
    }
  }
}

TEST_CASE("equalization brings the INT8 model closer to FP32 when channel ranges differ 100x" *
          doctest::test_suite("models")) {
  const octet::Graph fp32 = two_convs();
  const std::vector<std::string> calibration = images(0), others = images(5);
  const std::vector<float> reference = outputs(fp32, others);
  octet::quant::QuantizeOptions plain, equalized;  // weights rounded to nearest in both: the activations' part alone
  plain.rounding = equalized.rounding = octet::quant::WeightRounding::nearest;
  plain.equalize_alpha = -1;
  equalized.equalize_alpha = 0.5;
  const octet::Graph int8 = octet::quant::quantize_model(fp32, calibration, plain, true, nullptr);
  const octet::Graph int8_equalized = octet::quant::quantize_model(fp32, calibration, equalized, true, nullptr);
  const std::vector<float> a = outputs(int8, others), b = outputs(int8_equalized, others);
  const double sqnr_plain = octet::sqnr_db(reference.data(), a.data(), int64_t(a.size()));
  const double sqnr_equalized = octet::sqnr_db(reference.data(), b.data(), int64_t(b.size()));
  MESSAGE("INT8 output SQNR: " << sqnr_plain << " dB plain, " << sqnr_equalized << " dB equalized");
  CHECK(sqnr_equalized > sqnr_plain + 10);
}

TEST_CASE("--equalize auto keeps equalization for a clear gain on the calibration images, not otherwise" *
          doctest::test_suite("models")) {
  const std::vector<std::string> calibration = images(0);
  octet::quant::QuantizeOptions automatic;  // the default: alpha 0.5, kept only if better
  REQUIRE(automatic.equalize_only_if_better);
  octet::quant::ConvertReport report;
  octet::quant::quantize_model(two_convs(), calibration, automatic, true, nullptr, &report);
  MESSAGE("ranges 100x apart: " << report.equalization.sqnr_without_db << " dB without, "
                                << report.equalization.sqnr_with_db << " dB with");
  CHECK(report.equalization.compared);
  CHECK(report.equalization.kept);
  CHECK(report.equalization.sqnr_with_db >= report.equalization.sqnr_without_db + octet::quant::kEqualizationMinGainDb);

  // Four equal channels and conv_b's columns equally large: the scales are all 1, nothing is gained.
  octet::Graph even = two_convs();
  even.constants["conv_a/w"] =
      octet::Constant::from_floats({4, 3, 1, 1}, {1, -0.5f, -0.5f, 1, -0.5f, -0.5f, 1, -0.5f, -0.5f, 1, -0.5f, -0.5f});
  even.constants["conv_a/b"] = octet::Constant::from_floats({4}, {0, 0, 0, 0});
  even.constants["conv_b/w"] = octet::Constant::from_floats({2, 4, 1, 1}, {1, -1, 0.5f, 1, -0.5f, 1, -1, 1});
  octet::quant::ConvertReport even_report;
  octet::quant::quantize_model(even, calibration, automatic, true, nullptr, &even_report);
  MESSAGE("even ranges: " << even_report.equalization.sqnr_without_db << " dB without, "
                          << even_report.equalization.sqnr_with_db << " dB with");
  CHECK(even_report.equalization.compared);
  CHECK_FALSE(even_report.equalization.kept);
}
