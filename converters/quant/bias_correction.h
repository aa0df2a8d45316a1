// Bias correction (Nagel et al., "Data-Free Quantization", empirical variant): rounding the weights shifts
// the mean of each INT8 layer's output. For a Conv/Gemm the mean pre-activation output of channel c is
// sum_i (sum of the weights from input channel i to c) * mean(x_i), so the shift weight quantization adds is
//   delta[c] = sum_i (Wq_sum[c,i] - W_sum[c,i]) * mean(x_i)
// with W the FP32 weights, Wq the dequantized s8 ones and mean(x_i) the per-channel mean of the layer's FP32
// input over the calibration images (and positions; padding is ignored). Each INT8 layer's bias becomes
// b - delta. Using FP32 input means keeps the layers independent: one FP32 pass corrects them all. (Also
// correcting the shifts of upstream activation rounding, measured on the INT8 graph, over-corrects when
// done for all layers at once; measured on MobileNet v1 0.25 it collapses the model.)
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace octet::quant {

struct BiasCorrectionReport {
  size_t layers = 0;
  double mean_abs_shift = 0;  // mean |delta| over all corrected channels, in output quantization steps
  double max_abs_shift = 0;
};

// Corrects the s32 biases of `int8`'s quantized Conv/Gemm layers (adding one where a layer has none).
// `fp32` is the graph `int8` was quantized from; it runs once over the images.
BiasCorrectionReport correct_bias(Graph& int8, const Graph& fp32, const std::vector<std::string>& images,
                                  const std::function<void(size_t done, size_t total)>& progress);

}  // namespace octet::quant