#include "converters/quant/calibration.h"

#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "graph/quantization.h"
#include "octet/image.h"
#include "octet/octet.h"

namespace octet::quant {

namespace fs = std::filesystem;

// ---- statistics ----------------------------------------------------------------------------------------

void TensorStats::update(const float* data, int64_t n) {
  if (n <= 0) return;
  float batch_min = data[0], batch_max = data[0];
  int64_t zeros = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(data[i]))
      throw Error("non-finite value " + std::to_string(data[i]) + " at index " + std::to_string(i));
    batch_min = std::min(batch_min, data[i]);
    batch_max = std::max(batch_max, data[i]);
    zeros += data[i] == 0.0f;
  }
  if (count == 0) {
    min = batch_min;
    max = batch_max;
    histogram.assign(kHistogramBins, 0.0);
    negative_histogram.assign(kHistogramBins, 0.0);
  } else {
    min = std::min(min, batch_min);
    max = std::max(max, batch_max);
  }
  count += n;
  zero_count += zeros;

  const float batch_abs_max = std::max(-batch_min, batch_max);
  if (batch_abs_max > hist_max) {
    if (hist_max == 0) {
      hist_max = batch_abs_max;  // anything counted so far was an exact zero, in bin 0 at any width
    } else {
      int factor = static_cast<int>(std::ceil(batch_abs_max / hist_max));
      while (hist_max * static_cast<float>(factor) < batch_abs_max) ++factor;  // float rounding of the ceil
      for (std::vector<double>* bins : {&histogram, &negative_histogram}) {
        std::vector<double> merged(kHistogramBins, 0.0);
        for (int i = 0; i < kHistogramBins; ++i) merged[i / factor] += (*bins)[i];
        *bins = std::move(merged);
      }
      hist_max *= static_cast<float>(factor);
    }
  }
  const double bins_per_unit = hist_max > 0 ? kHistogramBins / static_cast<double>(hist_max) : 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const size_t bin = static_cast<size_t>(std::min<double>(std::fabs(data[i]) * bins_per_unit, kHistogramBins - 1));
    histogram[bin] += 1;
    if (data[i] < 0) negative_histogram[bin] += 1;
  }
}

// ---- range selection -----------------------------------------------------------------------------------

namespace {

// The smallest k such that the bins from k on hold at most `allowed` values: the threshold k * bin_width
// leaves at most `allowed` values beyond it.
int tail_threshold_bin(const std::vector<double>& bins, double allowed) {
  double beyond = 0;
  for (int k = kHistogramBins - 1; k >= 0; --k) {
    if (beyond + bins[k] > allowed) return k + 1;
    beyond += bins[k];
  }
  return 0;
}

// A count given to a bin of Q that has none where P has some, as MXNet's and ONNX Runtime's smoothing do:
// clipping a sparse tail into an empty bin then costs a finite amount instead of an infinite divergence.
constexpr double kEmptyBinCount = 1e-4;

// TensorRT's entropy calibration: for each candidate threshold of i bins (i = levels .. all bins), the
// reference distribution P is the first i bins with everything beyond folded into bin i-1 (clipping), and
// Q is those i bins merged into `levels` groups, each group's count spread evenly over its bins where P is
// nonzero (quantization). Returns the i minimizing KL(P || Q) among those clipping at most half the values.
int entropy_threshold_bin(const std::vector<double>& magnitudes, int levels) {
  std::vector<double> beyond(kHistogramBins + 1, 0.0);  // beyond[i] = sum of bins i..end
  for (int i = kHistogramBins - 1; i >= 0; --i) beyond[i] = beyond[i + 1] + magnitudes[i];
  const double total = beyond[0];
  int best_bins = kHistogramBins;
  double best_divergence = std::numeric_limits<double>::infinity();
  std::vector<double> reference, expanded;
  for (int i = levels; i <= kHistogramBins; ++i) {
    // A threshold below most of the data folds it all into P's last bin, which Q then matches exactly
    // (KL 0): for values in [0.25, 0.5] the search chose 0.06 and clipped every value. Thresholds must keep
    // at least half of the values inside the range.
    if (beyond[i] > total / 2) continue;
    reference.assign(magnitudes.begin(), magnitudes.begin() + i);
    reference[i - 1] += beyond[i];
    expanded.assign(i, 0.0);
    const int group_size = i / levels;
    for (int g = 0; g < levels; ++g) {
      const int start = g * group_size, stop = g == levels - 1 ? i : start + group_size;
      double mass = 0;
      int nonzero = 0;
      for (int j = start; j < stop; ++j) {
        mass += magnitudes[j];
        nonzero += reference[j] > 0;
      }
      for (int j = start; j < stop; ++j)
        if (reference[j] > 0) expanded[j] = mass / nonzero;
    }
    double quantized_total = 0;
    for (int j = 0; j < i; ++j) {
      if (reference[j] > 0 && expanded[j] == 0) expanded[j] = kEmptyBinCount;
      quantized_total += expanded[j];
    }
    double divergence = 0;
    for (int j = 0; j < i; ++j) {
      if (reference[j] == 0) continue;
      const double p = reference[j] / total, q = expanded[j] / quantized_total;
      divergence += p * std::log(p / q);
    }
    if (divergence < best_divergence) {
      best_divergence = divergence;
      best_bins = i;
    }
  }
  return best_bins;
}

// The clip range for a threshold t on |x|, within the observed range widened to hold 0 (quantization
// represents 0 exactly in any case). Without the widening, a range that excludes 0, e.g. [0.25, 0.5], and
// t = 0.1 below its minimum gave the inverted range [0.25, 0.1].
std::pair<float, float> clip_range(const TensorStats& stats, double threshold) {
  const float t = static_cast<float>(threshold);
  return {std::max(std::min(stats.min, 0.0f), -t), std::min(std::max(stats.max, 0.0f), t)};
}

// The activation parameters graph/quantization.h gives a clip range under `scheme`.
QuantParams params_for_range(std::pair<float, float> range, ActivationScheme scheme) {
  return scheme == ActivationScheme::asymmetric_u8 ? asymmetric_params(range.first, range.second)
                                                   : symmetric_activation_params(range.first, range.second);
}

// The threshold (a bin edge) minimizing the expected squared error over the histogram: a value at bin
// center c beyond the clip limit costs (c - limit)^2, one inside costs step^2 / 12 (uniform rounding error).
double mse_threshold(const TensorStats& stats, const std::vector<double>& positive, ActivationScheme scheme) {
  const double width = stats.bin_width();
  double best_threshold = stats.hist_max, best_error = std::numeric_limits<double>::infinity();
  for (int k = 1; k <= kHistogramBins; ++k) {
    const std::pair<float, float> range = clip_range(stats, k * width);
    const double step = params_for_range(range, scheme).scales[0];
    const double rounding = step * step / 12.0;
    const double high = std::max(range.second, 0.0f), low_magnitude = -std::min(range.first, 0.0f);
    double error = 0;
    for (int j = 0; j < kHistogramBins && error < best_error; ++j) {
      const double center = (j + 0.5) * width;
      const double over_high = center - high, over_low = center - low_magnitude;
      error += positive[j] * (over_high > 0 ? over_high * over_high : rounding);
      error += stats.negative_histogram[j] * (over_low > 0 ? over_low * over_low : rounding);
    }
    if (error < best_error) {
      best_error = error;
      best_threshold = k * width;
    }
  }
  return best_threshold;
}

}  // namespace

CalibrationMethod parse_calibration_method(const std::string& name) {
  for (CalibrationMethod method :
       {CalibrationMethod::minmax, CalibrationMethod::percentile, CalibrationMethod::entropy, CalibrationMethod::mse})
    if (name == calibration_method_name(method)) return method;
  throw Error("unknown calibration method '" + name + "' (expected minmax, percentile, entropy or mse)");
}

const char* calibration_method_name(CalibrationMethod method) {
  switch (method) {
    case CalibrationMethod::minmax: return "minmax";
    case CalibrationMethod::percentile: return "percentile";
    case CalibrationMethod::entropy: return "entropy";
    case CalibrationMethod::mse: return "mse";
  }
  return "?";
}

std::pair<float, float> choose_range(const TensorStats& stats, CalibrationMethod method, double percentile,
                                     ActivationScheme scheme) {
  if (stats.count == 0) throw Error("no statistics to choose a range from");
  if (method == CalibrationMethod::percentile && !(percentile > 0 && percentile <= 100))
    throw Error("percentile must be in (0, 100], got " + std::to_string(percentile));
  if (stats.hist_max == 0) return {stats.min, stats.max};  // all zeros: nothing to clip
  // Exact zeros count as data for percentiles, but the search methods ignore them: zero is exact at every
  // threshold, and ReLU's spike of zeros would otherwise dominate the KL divergence of the first bin.
  std::vector<double> positive(kHistogramBins);
  for (int j = 0; j < kHistogramBins; ++j) positive[j] = stats.histogram[j] - stats.negative_histogram[j];
  switch (method) {
    case CalibrationMethod::minmax: return {stats.min, stats.max};
    case CalibrationMethod::percentile: {
      const double allowed = static_cast<double>(stats.count) * (100.0 - percentile) / 100.0;
      const double high = tail_threshold_bin(positive, allowed) * stats.bin_width();
      const double low = -tail_threshold_bin(stats.negative_histogram, allowed) * stats.bin_width();
      return {std::max(std::min(stats.min, 0.0f), static_cast<float>(low)),
              std::min(std::max(stats.max, 0.0f), static_cast<float>(high))};
    }
    case CalibrationMethod::entropy: {
      std::vector<double> magnitudes = stats.histogram;
      magnitudes[0] -= static_cast<double>(stats.zero_count);
      // Levels available on [0, t]: 256 for a non-negative u8 tensor, 128 per side otherwise.
      const int levels = scheme == ActivationScheme::asymmetric_u8 && stats.min >= 0 ? 256 : 128;
      return clip_range(stats, entropy_threshold_bin(magnitudes, levels) * stats.bin_width());
    }
    case CalibrationMethod::mse: {
      positive[0] -= static_cast<double>(stats.zero_count);
      return clip_range(stats, mse_threshold(stats, positive, scheme));
    }
  }
  throw Error("invalid calibration method " + std::to_string(static_cast<int>(method)));
}

QuantParams activation_params(const TensorStats& stats, CalibrationMethod method, double percentile,
                              ActivationScheme scheme) {
  return params_for_range(choose_range(stats, method, percentile, scheme), scheme);
}

// ---- collection ----------------------------------------------------------------------------------------

void run_on_images(const Graph& graph, const std::vector<std::string>& outputs,
                   const std::vector<std::string>& image_paths,
                   const std::function<void(const std::string& image, Session& session)>& visit,
                   const std::function<void(size_t done, size_t total)>& progress) {
  if (graph.inputs.size() != 1)
    throw Error("running on images needs a graph with one input, '" + graph.name + "' has " +
                std::to_string(graph.inputs.size()));
  if (image_paths.empty()) throw Error("no images to run on");
  // A copy whose outputs are the requested tensors; the runtime returns each as a dense row-major f32
  // buffer (quantized ones dequantized). Constants are shared with the original, not copied.
  Graph copy = graph;
  copy.outputs = outputs;
  std::shared_ptr<const Model> model = Model::from_graph(std::move(copy));
  Session session(model);
  Tensor input = session.input(0);
  for (size_t i = 0; i < image_paths.size(); ++i) {
    load_image_into(*model, image_paths[i], input, 0);
    session.run();
    visit(image_paths[i], session);
    if (progress) progress(i + 1, image_paths.size());
  }
}

std::map<std::string, TensorStats> collect_statistics(const Graph& fp32_graph,
                                                      const std::vector<std::string>& image_paths,
                                                      const std::function<void(size_t done, size_t total)>& progress) {
  // Every f32 tensor a node produces, in run order.
  std::vector<std::string> outputs;
  for (const Node& node : fp32_graph.nodes)
    for (const std::string& output : node.outputs)
      if (!output.empty() && fp32_graph.tensor(output).dtype == DType::f32) outputs.push_back(output);
  std::map<std::string, TensorStats> stats;
  auto record = [&stats](const Tensor& tensor, const std::string& image) {
    try {
      stats[tensor.name].update(tensor.data, tensor.elements());
    } catch (const Error& e) {
      throw Error(image + ": tensor '" + tensor.name + "': " + e.what());
    }
  };
  run_on_images(
      fp32_graph, outputs, image_paths,
      [&](const std::string& image, Session& session) {
        record(session.input(0), image);
        for (size_t o = 0; o < session.num_outputs(); ++o) record(session.output(o), image);
      },
      progress);
  return stats;
}

}  // namespace octet::quant