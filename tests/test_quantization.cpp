// The quantization math (graph/quantization.h) on the project's worked examples, and calibration
// (converters/quant/calibration.h): range selection on synthetic data with known answers, image lists on the shared
// samples, statistics collection on a tiny hand-built graph checked against values computed here.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "converters/quant/calibration.h"
#include "graph/quantization.h"
#include "octet/evaluation.h"
#include "octet/image.h"
#include "octet/octet.h"
#include "support/graphs.h"

namespace fs = std::filesystem;
using octet::QuantParams;
using octet::quant::CalibrationMethod;
using octet::quant::TensorStats;

namespace {

const std::string kSamples = std::string(OCTET_SHARED_DIR) + "/data/imagenet-samples";
const CalibrationMethod kClippingMethods[] = {CalibrationMethod::percentile, CalibrationMethod::entropy,
                                              CalibrationMethod::mse};

void check_per_tensor(const QuantParams& params, float scale, int32_t zero_point) {
  REQUIRE(params.scales.size() == 1);
  REQUIRE(params.zero_points.size() == 1);
  CHECK(params.axis == -1);
  CHECK(params.scales[0] == scale);  // exact: the same float expression as the definition
  CHECK(params.zero_points[0] == zero_point);
}

// Zero quantizes to the zero point and dequantizes to exactly 0.
void check_zero_exact(const QuantParams& params, octet::DType dtype) {
  const octet::IntRange range = octet::quantized_range(dtype);
  const float scale = params.scales[0];
  const int32_t zp = params.zero_points[0];
  CHECK(std::isfinite(scale));
  CHECK(scale > 0);
  CHECK(octet::quantize_value(0.0f, scale, zp, range.min, range.max) == zp);
  CHECK(octet::dequantize_value(zp, scale, zp) == 0.0f);
}

TensorStats stats_of(const std::vector<float>& values, size_t chunks = 4) {
  TensorStats stats;
  const size_t chunk = (values.size() + chunks - 1) / chunks;
  for (size_t begin = 0; begin < values.size(); begin += chunk)
    stats.update(values.data() + begin, static_cast<int64_t>(std::min(chunk, values.size() - begin)));
  return stats;
}

std::vector<float> gaussian(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(n);
  for (float& v : values) v = normal(rng);
  return values;
}

std::vector<float> uniform(size_t n, float low, float high, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> distribution(low, high);
  std::vector<float> values(n);
  for (float& v : values) v = distribution(rng);
  return values;
}

// Outliers beyond a bulk of values that no candidate clips: MSE minimizes
//   n_outliers (outlier - t)^2 + n_bulk ((t - low) / levels)^2 / 12,
// whose minimum is t = (n_outliers outlier + a low) / (n_outliers + a) with a = n_bulk / (12 levels^2).
// So MSE clips close to the bulk only when outliers are rarer than about 1 in 12 * 255^2 (~1e-6) of the
// values; real activations have millions of values per tensor over a calibration set.
double mse_optimum(double n_outliers, double outlier, double n_bulk, double low, double levels) {
  const double a = n_bulk / (12 * levels * levels);
  return (n_outliers * outlier + a * low) / (n_outliers + a);
}

}  // namespace

// ---- graph/quantization.h ------------------------------------------------------------------------------

TEST_CASE("worked examples: weights max|w| = 0.18, ReLU output [0, 3.24], range [-1, 3], range [2, 5]") {
  const std::vector<float> weights = {0.05f, -0.18f, 0.1f, 0.0f};
  check_per_tensor(octet::symmetric_params(weights.data(), 4), 0.18f / 127.0f, 0);
  check_per_tensor(octet::asymmetric_params(0.0f, 3.24f), 3.24f / 255.0f, 0);
  check_per_tensor(octet::asymmetric_params(-1.0f, 3.0f), 4.0f / 255.0f, 64);  // round(255 / 4) = round(63.75)
  check_per_tensor(octet::asymmetric_params(2.0f, 5.0f), 5.0f / 255.0f, 0);    // widened to [0, 5]
  check_per_tensor(octet::symmetric_activation_params(-1.0f, 3.0f), 3.0f / 127.0f, 0);
  check_per_tensor(octet::asymmetric_params(-2.0f, -0.5f), 2.0f / 255.0f, 255);  // widened to [-2, 0]
  // 4 bits: n = 2^3 - 1.
  check_per_tensor(octet::symmetric_params(weights.data(), 4, 4), 0.18f / 7.0f, 0);
}

TEST_CASE("constant tensors get a finite positive scale and represent zero exactly") {
  const std::vector<float> zeros(16, 0.0f), fives(16, 5.0f);
  for (const QuantParams& params : {octet::asymmetric_params(0, 0), octet::asymmetric_params(5, 5)})
    check_zero_exact(params, octet::DType::u8);
  for (const QuantParams& params :
       {octet::symmetric_params(zeros.data(), 16), octet::symmetric_params(fives.data(), 16),
        octet::symmetric_activation_params(0, 0), octet::symmetric_activation_params(5, 5)})
    check_zero_exact(params, octet::DType::s8);
  check_per_tensor(octet::asymmetric_params(5, 5), 5.0f / 255.0f, 0);
  check_per_tensor(octet::symmetric_params(fives.data(), 16), 5.0f / 127.0f, 0);
  // The constant itself survives: 5 is the top of the u8 grid.
  CHECK(octet::quantize_value(5.0f, 5.0f / 255.0f, 0, 0, 255) == 255);
  CHECK(octet::dequantize_value(255, 5.0f / 255.0f, 0) == doctest::Approx(5.0f));
}

TEST_CASE("invalid input is refused") {
  const std::vector<float> bad = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_AS(octet::symmetric_params(bad.data(), 2), octet::Error);
  CHECK_THROWS_AS(octet::symmetric_params(bad.data(), 1, 9), octet::Error);
  CHECK_THROWS_AS(octet::asymmetric_params(1.0f, -1.0f), octet::Error);
  CHECK_THROWS_AS(octet::asymmetric_params(0.0f, std::numeric_limits<float>::infinity()), octet::Error);
}

TEST_CASE("per-channel weights: all-zero and near-dead channels get a floored scale and keep their bias") {
  // [4 output channels, 1, 2, 1]: channel 1 is all zero, channel 3 is 1e-12 of the largest (as BatchNorm
  // folding leaves the shared MobileNet's dead channels).
  const octet::Constant weights =
      octet::Constant::from_floats({4, 1, 2, 1}, {0.5f, -1.0f, 0.0f, 0.0f, 0.25f, 0.1f, 1e-12f, -0.5e-12f});
  const QuantParams params = octet::symmetric_params_per_channel(weights);
  const float floor = 1.0f / 127.0f * octet::kMinChannelScaleRatio;
  CHECK(params.axis == 0);
  CHECK(params.scales == std::vector<float>{1.0f / 127.0f, floor, 0.25f / 127.0f, floor});
  CHECK(params.zero_points == std::vector<int32_t>{0, 0, 0, 0});

  const octet::Constant quantized = octet::quantize_weights(weights, params);
  CHECK(quantized.dtype == octet::DType::s8);
  CHECK(quantized.shape == weights.shape);
  // 0.5 * 127 = 63.5 rounds to even 64; 0.1 / (0.25 / 127) = 50.8 rounds to 51.
  const std::vector<int8_t> expected = {64, -127, 0, 0, 127, 51, 0, 0};
  for (size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(quantized.data<int8_t>()[i] == expected[i]);
    const float back = octet::dequantize_value(quantized.data<int8_t>()[i], params.scales[i / 2], 0);
    CHECK(std::isfinite(back));
    CHECK(std::fabs(back - weights.data<float>()[i]) <= params.scales[i / 2] / 2);
  }
  // The bias is a dead channel's whole output: at a typical input scale it must stay representable.
  const octet::Constant bias = octet::Constant::from_floats({4}, {0.1f, -2.5f, 0.3f, 1.5f});
  const float input_scale = 6.0f / 255.0f;
  const octet::Constant quantized_bias = octet::quantize_bias(bias, input_scale, params);
  for (int64_t c = 0; c < 4; ++c) {
    CAPTURE(c);
    const double scale = static_cast<double>(input_scale) * params.scales[static_cast<size_t>(c)];
    CHECK(std::fabs(quantized_bias.data<int32_t>()[c] * scale - bias.data<float>()[c]) <= scale / 2 * (1 + 1e-6));
  }

  const std::vector<float> all_zero(8, 0.0f);
  const QuantParams zero_params = octet::symmetric_params_per_channel(octet::Constant::from_floats({2, 4}, all_zero));
  CHECK(zero_params.scales == std::vector<float>{octet::kEmptyRangeScale, octet::kEmptyRangeScale});

  // Per tensor is the option: one scale for the whole constant.
  const QuantParams tensor_params = octet::symmetric_params(weights.data<float>(), weights.elements());
  CHECK(octet::quantize_weights(weights, tensor_params).data<int8_t>()[5] == 13);  // 0.1 * 127 = 12.7
  CHECK_THROWS_AS(octet::quantize_weights(weights, QuantParams{{1.0f, 1.0f}, {0, 0}, 0}), octet::Error);
}

TEST_CASE("quantize/dequantize round trip: error <= scale / 2 inside the range, clamping outside, half to even") {
  const QuantParams params = octet::asymmetric_params(-1.0f, 3.0f);
  const float scale = params.scales[0];
  const int32_t zp = params.zero_points[0];
  // The grid after rounding the zero point: [(0 - zp) * scale, (255 - zp) * scale].
  const float low = octet::dequantize_value(0, scale, zp), high = octet::dequantize_value(255, scale, zp);
  for (float x : uniform(10000, low, high, 1)) {
    const int32_t q = octet::quantize_value(x, scale, zp, 0, 255);
    CHECK(std::fabs(octet::dequantize_value(q, scale, zp) - x) <= scale / 2 * (1 + 1e-5f));
  }
  CHECK(octet::quantize_value(100.0f, scale, zp, 0, 255) == 255);
  CHECK(octet::quantize_value(-100.0f, scale, zp, 0, 255) == 0);
  CHECK(octet::quantize_value(1e30f, 1e-30f, 0, -127, 127) == 127);
  CHECK(octet::quantize_value(std::numeric_limits<float>::quiet_NaN(), 1.0f, 0, -127, 127) == -127);
  CHECK(octet::quantize_value(2.5f, 1.0f, 0, -127, 127) == 2);
  CHECK(octet::quantize_value(3.5f, 1.0f, 0, -127, 127) == 4);
  CHECK(octet::quantize_value(-2.5f, 1.0f, 0, -127, 127) == -2);
  CHECK(octet::quantize_value(-2.5f, 1.0f, 10, 0, 255) == 8);
}

TEST_CASE("bias quantizes to s32 at input_scale * weight_scale[c]") {
  const octet::Constant bias = octet::Constant::from_floats({3}, {0.5f, -1.0f, 0.0f});
  const QuantParams per_channel{{0.01f, 0.02f, 1.0f}, {0, 0, 0}, 0};
  const octet::Constant q = octet::quantize_bias(bias, 0.1f, per_channel);
  CHECK(q.dtype == octet::DType::s32);
  CHECK(q.shape == octet::Shape{3});
  CHECK(q.data<int32_t>()[0] == 500);
  CHECK(q.data<int32_t>()[1] == -500);
  CHECK(q.data<int32_t>()[2] == 0);
  const octet::Constant q_tensor = octet::quantize_bias(bias, 0.5f, QuantParams{{0.25f}, {0}, -1});
  CHECK(q_tensor.data<int32_t>()[0] == 4);
  CHECK(q_tensor.data<int32_t>()[1] == -8);
  CHECK_THROWS_AS(octet::quantize_bias(bias, 1e-20f, per_channel), octet::Error);  // 0.5 / 1e-22 overflows
  CHECK_THROWS_AS(octet::quantize_bias(bias, 0.1f, QuantParams{{1.0f, 1.0f}, {0, 0}, 0}), octet::Error);
}

TEST_CASE("sqnr_db") {
  const std::vector<float> reference = {1, -1, 1, -1}, noisy = {1.1f, -1.1f, 0.9f, -0.9f};
  CHECK(std::isinf(octet::sqnr_db(reference.data(), reference.data(), 4)));
  CHECK(octet::sqnr_db(reference.data(), noisy.data(), 4) == doctest::Approx(20.0).epsilon(1e-5));  // 4 / 0.04
}

// ---- converters/quant/calibration.h: statistics and range selection --------------------------------------------

TEST_CASE("statistics: range, counts, and histogram growth by whole-bin merges") {
  const std::vector<float> small = uniform(5000, -1.0f, 1.0f, 2), large = uniform(5000, -3.0f, 2.5f, 3);
  TensorStats grown;
  grown.update(small.data(), 5000);
  float first_max = 0;
  for (float v : small) first_max = std::max(first_max, std::fabs(v));
  CHECK(grown.hist_max == first_max);  // the histogram starts at the first batch's max|x|
  grown.update(large.data(), 5000);
  CHECK(grown.count == 10000);
  CHECK(grown.min ==
        std::min(*std::min_element(small.begin(), small.end()), *std::min_element(large.begin(), large.end())));
  CHECK(grown.max ==
        std::max(*std::max_element(small.begin(), small.end()), *std::max_element(large.begin(), large.end())));
  CHECK(grown.hist_max >= grown.abs_max());
  CHECK(grown.hist_max == first_max * std::ceil(grown.abs_max() / first_max));

  // Merging is exact: the same as counting everything at the final width from the start.
  TensorStats direct;
  direct.update(&grown.hist_max, 1);  // sets the width; its one count is removed below
  direct.update(small.data(), 5000);
  direct.update(large.data(), 5000);
  direct.histogram[octet::quant::kHistogramBins - 1] -= 1;
  CHECK(direct.histogram == grown.histogram);
  CHECK(direct.negative_histogram == grown.negative_histogram);

  const std::vector<float> with_nan = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_AS(TensorStats().update(with_nan.data(), 2), octet::Error);
  CHECK_THROWS_AS(octet::quant::choose_range(TensorStats(), CalibrationMethod::minmax), octet::Error);
}

TEST_CASE("choose_range: Gaussian data with a few huge outliers is clipped by every method but minmax") {
  constexpr size_t kBulk = 4000000;
  std::vector<float> values = gaussian(kBulk, 4);
  values.insert(values.end(), 2, 1000.0f);
  const TensorStats stats = stats_of(values);
  CHECK(octet::quant::choose_range(stats, CalibrationMethod::minmax) == std::pair<float, float>(stats.min, 1000.0f));
  // Percentile 99.99 of each tail: 400 values beyond about 3.7 sigma, rounded up to a bin edge (bins are 0.49 wide).
  const auto percentile = octet::quant::choose_range(stats, CalibrationMethod::percentile, 99.99);
  CHECK(percentile.second == doctest::Approx(3.9).epsilon(0.15));
  CHECK(percentile.first == doctest::Approx(-3.9).epsilon(0.15));
  // Entropy's smallest candidate is 128 of the 2048 bins: 1/16 of the histogram's range.
  const auto entropy = octet::quant::choose_range(stats, CalibrationMethod::entropy);
  CHECK(entropy.second < 100.0f);
  CHECK(entropy.first == stats.min);
  const auto mse = octet::quant::choose_range(stats, CalibrationMethod::mse);
  CHECK(std::fabs(mse.second - mse_optimum(2, 1000, kBulk, stats.min, 255)) <= 2 * stats.bin_width());
  CHECK(mse.second < 300.0f);
  CHECK(mse.first == stats.min);
  CHECK(octet::quant::choose_range(stats, CalibrationMethod::percentile, 100.0).second == 1000.0f);
  CHECK_THROWS_AS(octet::quant::choose_range(stats, CalibrationMethod::percentile, 0.0), octet::Error);
}

TEST_CASE("choose_range: a ReLU output (half zeros) with outliers is clipped, for u8 and s8 activations") {
  std::vector<float> values = gaussian(4000000, 5);
  for (float& v : values) v = std::max(v, 0.0f);
  values.insert(values.end(), 2, 500.0f);
  const TensorStats stats = stats_of(values);
  const double nonzero_bulk = static_cast<double>(stats.count - stats.zero_count - 2);
  CHECK(stats.zero_count > 1900000);
  for (auto [scheme, levels] : {std::pair(octet::quant::ActivationScheme::asymmetric_u8, 255.0),
                                std::pair(octet::quant::ActivationScheme::symmetric_s8, 127.0)}) {
    CAPTURE(levels);
    const auto percentile = octet::quant::choose_range(stats, CalibrationMethod::percentile, 99.99, scheme);
    CHECK(percentile == std::pair<float, float>(0.0f, percentile.second));
    CHECK(percentile.second == doctest::Approx(3.9).epsilon(0.15));
    const auto entropy = octet::quant::choose_range(stats, CalibrationMethod::entropy, 99.99, scheme);
    CHECK(entropy.first == 0.0f);
    CHECK(entropy.second < 75.0f);  // the smallest candidate is 1/8 (u8: 256 levels) or 1/16 of the range
    const auto mse = octet::quant::choose_range(stats, CalibrationMethod::mse, 99.99, scheme);
    CHECK(mse.first == 0.0f);
    CHECK(std::fabs(mse.second - mse_optimum(2, 500, nonzero_bulk, 0, levels)) <= 2 * stats.bin_width());
  }
  check_per_tensor(octet::quant::activation_params(stats, CalibrationMethod::minmax), 500.0f / 255.0f, 0);
  check_per_tensor(octet::quant::activation_params(stats, CalibrationMethod::minmax, 99.99,
                                                   octet::quant::ActivationScheme::symmetric_s8),
                   500.0f / 127.0f, 0);
}

TEST_CASE("choose_range: uniform data keeps (nearly) the full range with every method") {
  const TensorStats positive = stats_of(uniform(200000, 0.0f, 1.0f, 6));
  const TensorStats signed_values = stats_of(uniform(200000, -1.0f, 1.0f, 7));
  for (CalibrationMethod method : kClippingMethods) {
    CAPTURE(std::string(octet::quant::calibration_method_name(method)));
    CHECK(octet::quant::choose_range(positive, method).second >= 0.97f * positive.max);
    const auto range = octet::quant::choose_range(signed_values, method);
    CHECK(range.second >= 0.97f * signed_values.max);
    CHECK(range.first <= 0.97f * signed_values.min);
  }
}

TEST_CASE("choose_range: data whose range excludes 0 gets a valid range holding 0 from every method") {
  // Before: entropy and mse clipped [0.25, 0.5] at a threshold below 0.25 into the inverted [0.25, 0.10].
  const TensorStats positive = stats_of(uniform(200000, 0.25f, 0.5f, 8));
  const TensorStats negative = stats_of(uniform(200000, -0.5f, -0.25f, 9));
  for (CalibrationMethod method :
       {CalibrationMethod::minmax, CalibrationMethod::percentile, CalibrationMethod::entropy, CalibrationMethod::mse}) {
    CAPTURE(std::string(octet::quant::calibration_method_name(method)));
    for (auto scheme : {octet::quant::ActivationScheme::asymmetric_u8, octet::quant::ActivationScheme::symmetric_s8}) {
      const auto up = octet::quant::choose_range(positive, method, 99.99, scheme);
      // 0 or minmax's own minimum, and a top that keeps at least the lower half of the values unclipped
      // (entropy, searching from 0, chose 0.06 here and clipped them all); the methods that model the
      // clipping error keep nearly all of uniform data.
      CHECK((up.first >= 0.0f && up.first <= positive.min));
      CHECK(up.second >= 0.375f);
      if (method != CalibrationMethod::entropy) CHECK(up.second >= 0.97f * positive.max);
      const auto down = octet::quant::choose_range(negative, method, 99.99, scheme);
      CHECK((down.second <= 0.0f && down.second >= negative.max));
      CHECK(down.first <= -0.375f);
      if (method != CalibrationMethod::entropy) CHECK(down.first <= 0.97f * negative.min);
      CHECK_NOTHROW(octet::quant::activation_params(positive, method, 99.99, scheme));
      CHECK_NOTHROW(octet::quant::activation_params(negative, method, 99.99, scheme));
    }
  }
}

TEST_CASE("choose_range: an all-zero tensor keeps [0, 0]") {
  const std::vector<float> zeros(100, 0.0f);
  const TensorStats stats = stats_of(zeros);
  for (CalibrationMethod method :
       {CalibrationMethod::minmax, CalibrationMethod::percentile, CalibrationMethod::entropy, CalibrationMethod::mse})
    CHECK(octet::quant::choose_range(stats, method) == std::pair<float, float>(0.0f, 0.0f));
  check_zero_exact(octet::quant::activation_params(stats, CalibrationMethod::entropy), octet::DType::u8);
}

TEST_CASE("calibration method names") {
  for (CalibrationMethod method :
       {CalibrationMethod::minmax, CalibrationMethod::percentile, CalibrationMethod::entropy, CalibrationMethod::mse})
    CHECK(octet::quant::parse_calibration_method(octet::quant::calibration_method_name(method)) == method);
  CHECK_THROWS_WITH_AS(octet::quant::parse_calibration_method("kl"), doctest::Contains("entropy"), octet::Error);
}

// ---- image lists ---------------------------------------------------------------------------------------

TEST_CASE("list_images: every 10th shared sample from the first, and lists" * doctest::test_suite("models")) {
  std::vector<std::string> sorted;
  for (const auto& entry : fs::directory_iterator(kSamples)) sorted.push_back(entry.path().filename().string());
  std::sort(sorted.begin(), sorted.end());
  REQUIRE(sorted.size() == 1000);

  const std::vector<std::string> images = octet::list_images(kSamples, 100, 10, 0);
  REQUIRE(images.size() == 100);
  for (size_t i = 0; i < images.size(); ++i) CHECK(fs::path(images[i]).filename() == sorted[10 * i]);
  CHECK(octet::list_images(kSamples, 0, 10, 0).size() == 100);  // count 0: all of them
  CHECK(octet::list_images(kSamples, 5, 10, 3).back() == kSamples + "/" + sorted[43]);
  CHECK(octet::list_images(kSamples, 0, 1, 0).size() == 1000);

  const fs::path scratch = fs::path(OCTET_BUILD_DIR) / "test-quantization-lists";
  fs::remove_all(scratch);
  fs::create_directories(scratch / "empty");
  std::ofstream(scratch / "empty" / "notes.txt") << "not an image\n";
  std::ofstream(scratch / "list.txt") << "# calibration set\n\nb.JPG\n  " << kSamples << "/" << sorted[0]
                                      << "  \r\na.png\n";
  const std::vector<std::string> listed = octet::list_images((scratch / "list.txt").string(), 0, 2, 0);
  CHECK(listed == std::vector<std::string>{(scratch / "b.JPG").string(), (scratch / "a.png").string()});

  CHECK_THROWS_WITH_AS(octet::list_images((scratch / "missing").string(), 10, 10, 0), doctest::Contains("missing"),
                       octet::Error);
  CHECK_THROWS_WITH_AS(octet::list_images((scratch / "empty").string(), 10, 10, 0), doctest::Contains("empty"),
                       octet::Error);
  CHECK_THROWS_AS(octet::list_images(kSamples, 10, 10, 1000), octet::Error);
  CHECK_THROWS_AS(octet::list_images(kSamples, 10, 0, 0), octet::Error);
}

// ---- statistics collection -----------------------------------------------------------------------------

TEST_CASE("collect_statistics on a tiny Conv 1x1 + Relu graph matches values computed here" *
          doctest::test_suite("models")) {
  constexpr int64_t kSide = 16;
  octet::Graph graph = octet::testing::fp32_graph(
      "tiny", {"image"}, {"relu"},
      {{"image", {3, kSide, kSide}}, {"conv", {2, kSide, kSide}}, {"relu", {2, kSide, kSide}}});
  const std::vector<float> weights = {1.0f, -2.0f, 0.5f, -0.25f, 0.75f, -1.5f}, bias = {0.1f, -0.2f};
  graph.constants["w"] = octet::Constant::from_floats({2, 3, 1, 1}, weights);
  graph.constants["b"] = octet::Constant::from_floats({2}, bias);
  octet::Node conv{"conv", "Conv", {"image", "w", "b"}, {"conv"}, {}};
  conv.attrs.set("kernel_shape", std::vector<int64_t>{1, 1});
  graph.nodes = {conv, octet::Node{"relu", "Relu", {"conv"}, {"relu"}, {}}};
  graph.preprocess.present = true;
  graph.preprocess.resize_shorter = 20;
  graph.preprocess.crop_height = graph.preprocess.crop_width = kSide;
  for (int c = 0; c < 3; ++c) graph.preprocess.mean[c] = 0.45f, graph.preprocess.std[c] = 0.25f;

  const std::vector<std::string> images = octet::list_images(kSamples, 3, 10, 0);
  std::vector<std::pair<size_t, size_t>> reported;
  const auto stats = octet::quant::collect_statistics(
      graph, images, [&](size_t done, size_t total) { reported.emplace_back(done, total); });
  CHECK(reported == std::vector<std::pair<size_t, size_t>>{{1, 3}, {2, 3}, {3, 3}});
  REQUIRE(stats.size() == 3);

  // The same preprocessing and the convolution, computed independently of the Session.
  const octet::PreprocessSpec spec = octet::preprocess_spec(*octet::Model::from_graph(graph));
  constexpr int64_t kPixels = kSide * kSide;
  std::vector<float> input(3 * kPixels), conv_out(2 * kPixels);
  float input_min = INFINITY, input_max = -INFINITY, conv_min = INFINITY, conv_max = -INFINITY;
  for (const std::string& path : images) {
    octet::preprocess_image(octet::decode_image(path), spec, input.data());
    for (float v : input) input_min = std::min(input_min, v), input_max = std::max(input_max, v);
    for (int64_t oc = 0; oc < 2; ++oc)
      for (int64_t p = 0; p < kPixels; ++p) {
        float v = bias[oc];
        for (int64_t ic = 0; ic < 3; ++ic) v += weights[oc * 3 + ic] * input[ic * kPixels + p];
        conv_min = std::min(conv_min, v), conv_max = std::max(conv_max, v);
      }
  }
  const TensorStats& image = stats.at("image");
  CHECK(image.count == 3 * 3 * kPixels);
  CHECK(image.min == input_min);
  CHECK(image.max == input_max);
  const TensorStats& conv_stats = stats.at("conv");
  CHECK(conv_stats.min == doctest::Approx(conv_min).epsilon(1e-5));
  CHECK(conv_stats.max == doctest::Approx(conv_max).epsilon(1e-5));
  CHECK(conv_stats.min < 0);
  const TensorStats& relu = stats.at("relu");
  CHECK(relu.min == 0.0f);
  CHECK(relu.max == doctest::Approx(conv_max).epsilon(1e-5));
  CHECK(relu.zero_count > 0);

  // Deterministic: a second run gives identical statistics.
  const auto again = octet::quant::collect_statistics(graph, images, nullptr);
  for (const auto& kv : stats) {
    CHECK(again.at(kv.first).histogram == kv.second.histogram);
    CHECK(again.at(kv.first).min == kv.second.min);
  }
}
