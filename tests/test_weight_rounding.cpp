// Error-compensating weight rounding (converters/quant/weight_rounding.h): the GPTQ core against round-to-nearest
// (identical when inputs are uncorrelated), against the two-column optimum worked out by hand, and on random
// correlated inputs; then the whole pass on a hand-built Conv/Conv/Gemm graph run on real images.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "converters/quant/calibration.h"
#include "converters/quant/convert.h"
#include "converters/quant/weight_rounding.h"
#include "graph/quantization.h"
#include "octet/evaluation.h"
#include "support/graphs.h"

namespace {

const std::string kSamples = std::string(OCTET_SHARED_DIR) + "/data/imagenet-samples";

std::vector<int8_t> nearest(const std::vector<double>& w, int64_t rows, int64_t cols,
                            const std::vector<float>& scales) {
  std::vector<int8_t> q(w.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      q[size_t(r * cols + c)] =
          int8_t(octet::quantize_value(float(w[size_t(r * cols + c)]), scales[size_t(r)], 0, -127, 127));
  return q;
}

std::vector<float> row_scales(const std::vector<double>& w, int64_t rows, int64_t cols) {
  std::vector<float> scales(size_t(rows), 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      scales[size_t(r)] = std::max(scales[size_t(r)], float(std::fabs(w[size_t(r * cols + c)])) / 127);
  return scales;
}

// Inputs like image patches: a common level per sample plus small independent detail.
std::vector<double> correlated_second_moment(int64_t cols, int64_t samples, std::mt19937& rng) {
  std::uniform_real_distribution<double> level(0, 1), detail(-0.05, 0.05);
  std::vector<double> h(static_cast<size_t>(cols * cols), 0.0), x(static_cast<size_t>(cols));
  for (int64_t s = 0; s < samples; ++s) {
    double base = level(rng);
    for (double& v : x) v = base + detail(rng);
    for (int64_t i = 0; i < cols; ++i)
      for (int64_t j = 0; j < cols; ++j) h[size_t(i * cols + j)] += x[size_t(i)] * x[size_t(j)] / double(samples);
  }
  return h;
}

}  // namespace

TEST_CASE("GPTQ with uncorrelated inputs (H = I) is round-to-nearest") {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal(0, 1);
  for (int64_t cols : {1, 5, 27, 64}) {
    const int64_t rows = 6;
    std::vector<double> w(size_t(rows * cols));
    for (double& v : w) v = normal(rng);
    std::vector<double> identity(size_t(cols * cols), 0.0);
    for (int64_t i = 0; i < cols; ++i) identity[size_t(i * cols + i)] = 1;
    std::vector<float> scales = row_scales(w, rows, cols);
    CAPTURE(cols);
    CHECK(octet::quant::gptq_quantize(w, rows, cols, scales, identity) == nearest(w, rows, cols, scales));
  }
}

TEST_CASE("GPTQ on two columns: the second absorbs the first's error as the least-squares optimum says") {
  // One row, H = [[a, b], [b, c]] with a > c (so the first column goes first), damped by 1% of the mean
  // diagonal. Minimizing a d0^2 + 2 b d0 d1 + c d1^2 over d1 for the error d0 = q0 s - w0 gives
  // d1 = -b d0 / c: the second weight's target becomes w1 - b d0 / c, then rounds.
  const float s = 0.1f;
  struct Case {
    double w0, w1, a, b, c;
  };
  for (const Case& k : {Case{0.34, -0.52, 2.0, 1.5, 1.8}, Case{0.26, 0.71, 1.0, -0.9, 0.95},
                        Case{-0.44, 0.05, 3.0, 2.0, 2.5}, Case{12.66, -3.0, 1.0, 0.5, 0.8}}) {
    double c = k.c + 0.01 * (k.a + k.c) / 2;  // damped
    int q0 = octet::quantize_value(float(k.w0), s, 0, -127, 127);
    double d0 = q0 * double(s) - k.w0;
    int q1 = octet::quantize_value(float(k.w1 - k.b * d0 / c), s, 0, -127, 127);
    std::vector<int8_t> q = octet::quant::gptq_quantize({k.w0, k.w1}, 1, 2, {s}, {k.a, k.b, k.b, k.c});
    CAPTURE(k.w0);
    CAPTURE(k.w1);
    CHECK(int(q[0]) == q0);
    CHECK(int(q[1]) == q1);
  }
}

TEST_CASE("GPTQ lowers the output error of round-to-nearest on correlated inputs") {
  std::mt19937 rng(11);
  std::normal_distribution<double> normal(0, 1);
  double nearest_total = 0, gptq_total = 0;
  for (int trial = 0; trial < 12; ++trial) {
    const int64_t rows = 8, cols = 9 + 9 * (trial % 4);
    std::vector<double> w(size_t(rows * cols));
    for (double& v : w) v = normal(rng);
    std::vector<double> h = correlated_second_moment(cols, 2000, rng);
    std::vector<float> scales = row_scales(w, rows, cols);
    std::vector<int8_t> q = octet::quant::gptq_quantize(w, rows, cols, scales, h);
    for (int8_t v : q) CHECK(std::abs(int(v)) <= 127);
    double e_nearest = octet::quant::weighted_error(w, nearest(w, rows, cols, scales), rows, cols, scales, h);
    double e_gptq = octet::quant::weighted_error(w, q, rows, cols, scales, h);
    CAPTURE(trial);
    CAPTURE(cols);
    CHECK(e_gptq < e_nearest);
    nearest_total += e_nearest;
    gptq_total += e_gptq;
  }
  MESSAGE("output error of the weights, GPTQ / nearest: " << gptq_total / nearest_total);
  CHECK(gptq_total < 0.5 * nearest_total);
}

namespace {

// image [N,3,16,16] -> conv1 (3 -> 8, 3x3, pad 1, ReLU) -> conv2 (8 -> 8, 3x3, stride 2, pad 1, ReLU)
// -> GlobalAveragePool -> Flatten -> Gemm (8 -> 5, B as [K, N]: no transB), random weights.
octet::Graph small_net() {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0, 1);
  auto random = [&](size_t n, float scale) {
    std::vector<float> v(n);
    for (float& x : v) x = scale * normal(rng);
    return v;
  };
  octet::Graph graph = octet::testing::fp32_graph("small_net", {"image"}, {"logits"},
                                                  {{"image", {3, 16, 16}},
                                                   {"c1", {8, 16, 16}},
                                                   {"c2", {8, 8, 8}},
                                                   {"pooled", {8, 1, 1}},
                                                   {"flat", {8}},
                                                   {"logits", {5}}});
  graph.constants["conv1/w"] = octet::Constant::from_floats({8, 3, 3, 3}, random(8 * 27, 0.3f));
  graph.constants["conv1/b"] = octet::Constant::from_floats({8}, random(8, 0.1f));
  graph.constants["conv2/w"] = octet::Constant::from_floats({8, 8, 3, 3}, random(8 * 72, 0.2f));
  graph.constants["conv2/b"] = octet::Constant::from_floats({8}, random(8, 0.1f));
  graph.constants["fc/w"] = octet::Constant::from_floats({8, 5}, random(40, 1.0f));
  graph.constants["fc/b"] = octet::Constant::from_floats({5}, random(5, 0.1f));
  auto conv = [](const std::string& name, const std::string& input, int64_t stride) {
    octet::Node node{name, "Conv", {input, name + "/w", name + "/b"}, {name == "conv1" ? "c1" : "c2"}, {}};
    node.attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
    node.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    node.attrs.set("strides", std::vector<int64_t>{stride, stride});
    node.attrs.set("act", std::string("relu"));
    return node;
  };
  octet::Node flatten{"flatten", "Flatten", {"pooled"}, {"flat"}, {}};
  flatten.attrs.set("axis", int64_t{1});
  graph.nodes = {conv("conv1", "image", 1), conv("conv2", "c1", 2),
                 octet::Node{"pool", "GlobalAveragePool", {"c2"}, {"pooled"}, {}}, flatten,
                 octet::Node{"fc", "Gemm", {"flat", "fc/w", "fc/b"}, {"logits"}, {}}};
  graph.preprocess.present = true;
  graph.preprocess.resize_shorter = 20;
  graph.preprocess.crop_height = graph.preprocess.crop_width = 16;
  return graph;
}

std::vector<float> logits(const octet::Graph& graph, const std::vector<std::string>& files) {
  std::vector<float> all;
  octet::quant::run_on_images(
      graph, {"logits"}, files,
      [&](const std::string&, octet::Session& session) {
        octet::Tensor t = session.output(0);
        all.insert(all.end(), t.data, t.data + t.elements());
      },
      nullptr);
  return all;
}

}  // namespace

TEST_CASE("GPTQ rounding of a Conv/Conv/Gemm graph on real images: every layer re-rounded, the model closer to FP32" *
          doctest::test_suite("models")) {
  const octet::Graph fp32 = small_net();
  const std::vector<std::string> calibration = octet::list_images(kSamples, 40, 10, 0);
  const std::vector<std::string> held_out = octet::list_images(kSamples, 40, 10, 5);
  const std::vector<float> reference = logits(fp32, held_out);
  octet::quant::QuantizeOptions nearest_options, gptq_options;  // no equalization in either: the rounding alone
  nearest_options.rounding = octet::quant::WeightRounding::nearest;
  gptq_options.rounding = octet::quant::WeightRounding::gptq;
  nearest_options.equalize_alpha = gptq_options.equalize_alpha = -1;
  octet::quant::ConvertReport report;
  // No bias correction: it would hide part of what the rounding does to the mean.
  const octet::Graph nearest_model = octet::quant::quantize_model(fp32, calibration, nearest_options, false, nullptr);
  const octet::Graph gptq_model =
      octet::quant::quantize_model(fp32, calibration, gptq_options, false, nullptr, &report);
  CHECK(report.weight_rounding.layers == 3);  // conv1, conv2 and the weight-only FP32 classifier
  CHECK(report.weight_rounding.skipped == 0);
  MESSAGE("weight-only output SQNR on the calibration inputs: " << report.weight_rounding.nearest_db << " -> "
                                                                << report.weight_rounding.rounded_db << " dB");
  CHECK(report.weight_rounding.rounded_db > report.weight_rounding.nearest_db + 5);
  // Scales are the policy's: only the integers changed.
  for (const octet::Node& node : gptq_model.nodes) {
    if (node.op != "Conv" && node.op != "Gemm") continue;
    const octet::Node& other = *std::find_if(nearest_model.nodes.begin(), nearest_model.nodes.end(),
                                             [&](const octet::Node& n) { return n.name == node.name; });
    CHECK(gptq_model.tensor(node.inputs[1]).quant.scales == nearest_model.tensor(other.inputs[1]).quant.scales);
  }
  const std::vector<float> a = logits(nearest_model, held_out), b = logits(gptq_model, held_out);
  const double sqnr_nearest = octet::sqnr_db(reference.data(), a.data(), int64_t(a.size()));
  const double sqnr_gptq = octet::sqnr_db(reference.data(), b.data(), int64_t(b.size()));
  MESSAGE("held-out logit SQNR: nearest " << sqnr_nearest << " dB, GPTQ " << sqnr_gptq << " dB");
  CHECK(sqnr_gptq > sqnr_nearest + 5);
}

TEST_CASE("a WeightRoundingCache gives later variants the same integers" * doctest::test_suite("models")) {
  const octet::Graph fp32 = small_net();
  const std::vector<std::string> calibration = octet::list_images(kSamples, 40, 10, 0);
  const auto stats = octet::quant::collect_statistics(fp32, calibration, nullptr);
  octet::quant::QuantizeOptions options;
  options.equalize_alpha = -1;
  octet::quant::WeightRoundingCache cache;
  octet::quant::ConvertReport first, second, uncached;
  const octet::Graph a =
      octet::quant::quantize_calibrated(fp32, stats, calibration, options, false, &first, nullptr, &cache);
  CHECK(cache.entries.size() == 3);
  const octet::Graph b =
      octet::quant::quantize_calibrated(fp32, stats, calibration, options, false, &second, nullptr, &cache);
  const octet::Graph c =
      octet::quant::quantize_calibrated(fp32, stats, calibration, options, false, &uncached, nullptr, nullptr);
  for (const char* w : {"conv1/w", "conv2/w", "fc/w"}) {
    CAPTURE(w);
    const auto& x = *a.constants.at(w).bytes;
    CHECK(x.size() == b.constants.at(w).bytes->size());
    CHECK(std::equal(x.data(), x.data() + x.size(), b.constants.at(w).bytes->data()));
    CHECK(std::equal(x.data(), x.data() + x.size(), c.constants.at(w).bytes->data()));
  }
  CHECK(second.weight_rounding.layers == 3);
  CHECK(second.weight_rounding.rounded_db == doctest::Approx(first.weight_rounding.rounded_db));
  // A variant with this layer FP32 reads nothing of it from the cache.
  options.fp32_nodes = {"conv2"};
  octet::quant::ConvertReport partial;
  const octet::Graph d =
      octet::quant::quantize_calibrated(fp32, stats, calibration, options, false, &partial, nullptr, &cache);
  CHECK(partial.weight_rounding.layers == 2);
  CHECK(d.constants.at("conv2/w").dtype == octet::DType::f32);
}
