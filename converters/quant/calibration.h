// Calibration: run the FP32 graph on sample images, record each activation's statistics, and choose the
// range each activation is quantized over. The parameters then come from graph/quantization.h.
//
// Statistics are collected in one pass. The histogram covers |x| over [0, hist_max] in kHistogramBins bins
// and starts at the first batch's max|x|; when a later batch exceeds it, hist_max grows by the smallest
// integer factor k that covers the new values and every k adjacent bins merge into one. Merging whole bins
// is exact (no count is redistributed by interpolation), so the result depends only on the data and its
// order, at the cost of a resolution between kHistogramBins / 2 and kHistogramBins bins over the final
// range.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "graph/graph.h"
#include "octet/octet.h"

namespace octet::quant {

constexpr int kHistogramBins = 2048;

struct TensorStats {
  float min = 0, max = 0;  // observed range (valid when count > 0)
  int64_t count = 0;       // values seen
  int64_t zero_count = 0;  // values exactly 0 (ReLU outputs are mostly zeros; they are exact at any scale)
  // Counts of |x| in kHistogramBins equal bins over [0, hist_max] (the last bin includes hist_max), and
  // among them the counts of negative x, so each tail of a signed tensor can be read separately.
  std::vector<double> histogram, negative_histogram;
  float hist_max = 0;

  float abs_max() const { return std::max(-min, max); }
  double bin_width() const { return static_cast<double>(hist_max) / kHistogramBins; }
  // Adds n values. Throws Error on a non-finite value.
  void update(const float* data, int64_t n);
};

enum class CalibrationMethod {
  minmax,      // the observed range
  percentile,  // each tail clipped at the given percentile of the values
  entropy,     // TensorRT's threshold minimizing the KL divergence between |x| and its quantized histogram
  mse,         // the threshold minimizing the expected squared error: clipping plus rounding (step^2 / 12)
};
// "minmax" | "percentile" | "entropy" | "mse"; throws Error listing them otherwise.
CalibrationMethod parse_calibration_method(const std::string& name);
const char* calibration_method_name(CalibrationMethod method);

// How activations are stored; the search methods need the number of levels available.
enum class ActivationScheme {
  asymmetric_u8,  // u8 over the range widened to include 0 (the default)
  symmetric_s8,   // s8 over [-max|x|, max|x|], zero point 0
};

// The clip range [low, high] to quantize a tensor over, within the observed [min, max]. percentile is in
// (0, 100] and used by CalibrationMethod::percentile only. Entropy and mse search one threshold t on the
// |x| histogram, giving [max(min, -t), min(max, t)], and ignore exact zeros (exact at every t). Entropy
// quantizes [0, t] into the levels the scheme has there: 256 for a non-negative tensor in u8, else 128
// (TensorRT's number, for s8). mse prices rounding at the step the scheme's parameters will have.
// Throws Error if stats is empty.
std::pair<float, float> choose_range(const TensorStats& stats, CalibrationMethod method, double percentile = 99.99,
                                     ActivationScheme scheme = ActivationScheme::asymmetric_u8);

// choose_range, then asymmetric_params or symmetric_activation_params.
QuantParams activation_params(const TensorStats& stats, CalibrationMethod method, double percentile = 99.99,
                              ActivationScheme scheme = ActivationScheme::asymmetric_u8);

// Runs the FP32 graph (one input, batch 1) on each image in order and returns the statistics of the input
// and of every f32 activation, by tensor name. Deterministic: the same images in the same order give the
// same statistics. progress (may be empty) is called after each image with (images done, total).
std::map<std::string, TensorStats> collect_statistics(const Graph& fp32_graph,
                                                      const std::vector<std::string>& image_paths,
                                                      const std::function<void(size_t done, size_t total)>& progress);

// Runs `graph` (one input, batch 1) on each image in order, with `outputs` as its outputs (any tensors:
// activations, quantized ones dequantized), and calls visit after each run. progress may be empty.
void run_on_images(const Graph& graph, const std::vector<std::string>& outputs,
                   const std::vector<std::string>& image_paths,
                   const std::function<void(const std::string& image, Session& session)>& visit,
                   const std::function<void(size_t done, size_t total)>& progress);

// Calls visit(channel, first, last) for each [batch, channel] plane of an NCHW-like tensor (axis 1 is the
// channel; the values of one plane, all positions, are contiguous), with the channel count. For per-channel
// statistics of activations (bias correction's means, equalization's ranges).
template <typename Visit>
int64_t for_each_channel_plane(const Tensor& t, Visit visit) {
  const int64_t channels = t.shape.size() > 1 ? t.shape[1] : 1;
  int64_t inner = 1;
  for (size_t d = 2; d < t.shape.size(); ++d) inner *= t.shape[d];
  const int64_t planes = t.elements() / inner;
  for (int64_t p = 0; p < planes; ++p)
    visit(static_cast<size_t>(p % channels), t.data + p * inner, t.data + (p + 1) * inner);
  return channels;
}

}  // namespace octet::quant