// Error-compensating weight rounding (GPTQ: Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization
// for Generative Pre-trained Transformers", after Optimal Brain Quantization).
//
// Rounding each s8 weight to nearest ignores how the rounding errors of one output channel add up. A layer's
// output error for an input x is sum_i (q_i s - w_i) x_i per output channel; over the calibration inputs its
// mean square is d^T H d with d the weight error and H = E[x x^T] (x: the FP32 input patches the weights
// multiply). Where inputs are strongly correlated (image pixels under the first Conv, where neighbouring
// values are almost equal) errors of the same sign add up instead of averaging out, and the first layers of
// Darknet-tiny lose more to their weights than to every activation together. GPTQ rounds the weights of an
// output channel one input column at a time and spreads each rounding error over the columns not yet rounded,
// in the proportions that minimize d^T H d given the columns done (the inverse-Hessian update). The scales
// stay those of the policy (graph/quantization.h); only the integers change, clamped to [-127, 127].
//
// Details: columns are taken in order of decreasing H_ii (the inputs with the most energy first, "act order"),
// H is damped by 1% of its mean diagonal (a well-posed inverse when inputs are collinear or few), and inputs
// that are always 0 get H_ii = 1 (their weights round to nearest; they never matter). H comes from the FP32
// graph's inputs, so layers are independent: one FP32 pass serves them all. Positions are sampled evenly,
// at most kMaxPositionsPerImage per image, and a layer with fewer samples than 4 x its input size keeps
// round-to-nearest: H would be too poorly known (ResNet-50's classifier sees 1 position per image). So does a
// layer with more than kMaxRoundedInputs inputs per output channel: H costs samples x inputs^2 to gather (on
// ResNet-50 the widest layers multiplied the conversion time for a fraction of a dB; see RESULTS.md, Design
// measurements), and the more inputs a channel sums, the more its rounding errors average out by themselves.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace octet::quant {

constexpr int64_t kMaxPositionsPerImage = 256;
constexpr int64_t kMaxRoundedInputs = 1152;  // 128 channels x 3 x 3

struct WeightRoundingReport {
  size_t layers = 0;   // re-rounded
  size_t skipped = 0;  // kept to nearest: too few samples, too many inputs, or a grouped Conv
  // Mean over the re-rounded layers of the calibration output SQNR of the weights alone (w^T H w over
  // d^T H d, in dB), with round-to-nearest and with the error-compensating rounding.
  double nearest_db = 0, rounded_db = 0;
};

// What round_weights_gptq decided for each layer, by node, weight constant and scales, for building many
// variants of one model from the same FP32 graph and images (the sensitivity analysis): a layer's integers
// depend on nothing else, so later variants reuse them and skip the FP32 pass when every layer is known.
struct WeightRoundingCache {
  struct Entry {
    bool rounded = false;  // false: kept to nearest
    Constant weights;      // the s8 constant, when rounded
    double nearest_db = 0, rounded_db = 0;
  };
  std::map<std::string, Entry> entries;
};

// Re-rounds the s8 weights of `int8`'s Conv (group 1) and Gemm layers, INT8 or weight-only FP32, from the
// FP32 weights of the same-named nodes of `fp32`, with H from `fp32` run on `images`. A weight constant read by
// one node is replaced under its name; one shared by several gets a new constant per node. progress may be empty.
WeightRoundingReport round_weights_gptq(Graph& int8, const Graph& fp32, const std::vector<std::string>& images,
                                        const std::function<void(size_t, size_t)>& progress,
                                        WeightRoundingCache* cache = nullptr);

// The GPTQ core on a row-major [rows x cols] weight matrix with per-row scales (one scale: all rows) and the
// [cols x cols] input second moment H (only its upper triangle is read): returns the integers, [rows x cols].
// Exposed for tests.
std::vector<int8_t> gptq_quantize(const std::vector<double>& weights, int64_t rows, int64_t cols,
                                  const std::vector<float>& row_scales, std::vector<double> hessian);

// d^T H d summed over rows, for the error d of `quantized` (times its scales) against `weights`; H is the
// full symmetric matrix here.
double weighted_error(const std::vector<double>& weights, const std::vector<int8_t>& quantized, int64_t rows,
                      int64_t cols, const std::vector<float>& row_scales, const std::vector<double>& hessian);

}  // namespace octet::quant