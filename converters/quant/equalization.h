// Cross-layer range equalization (Nagel et al. 2019, "Data-Free Quantization", section 4.1; the balance
// between activation and weight ranges as in Xiao et al. 2022, "SmoothQuant").
//
// An activation is quantized with one scale for all its channels, so channels with a small range get few
// levels. Where Conv A feeds Conv B through operations that commute with a positive per-channel scale
// (A's ReLU or LeakyReLU post-op, MaxPool, AveragePool), multiplying A's output channel c by s_c (A's
// weights and bias of that channel) and dividing B's input channel c by s_c leaves the FP32 function
// unchanged: B sees the same products. A's per-output-channel weight quantization does not care about s_c;
// the activation and B's weights do. With r_c the channel's calibrated range and w_c its weight range in B
// (each column relative to the largest weight of its output channel, which sets that channel's step),
//   s_c = w_c^(1 - alpha) / r_c^alpha
// alpha = 1 gives every channel the same range (all the resolution to the activation), alpha = 0.5 meets
// in the middle: the scaled range and the divided weight range become equal, sqrt(r_c w_c) each. Scales are
// normalized so the largest scaled range is the largest original range, and kept within [1e-4, 1e4].
//
// Each Conv is A for at most one pair (its output) and B for at most one (its input); A's rows and B's columns
// are different axes, so the pairs of a chain are independent and one pass over the FP32 ranges suffices.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace octet::quant {

// Per-channel (axis 1) ranges of a tensor, each widened to include 0.
struct ChannelRanges {
  std::vector<float> min, max;
};

// A pair: A's output `tensor` (channels scaled), read by Conv B through `path` (the commuting nodes between).
struct EqualizationPair {
  std::string conv_a, conv_b, tensor;
  std::vector<std::string> path;
};

// The pairs of an FP32 graph: A a Conv with constant weights (and bias), no residual sum and a post-op of
// none, relu or leaky_relu; every tensor from A to B read by one node and not a graph output; B a Conv with
// group 1 and constant weights reading it as its input 0.
std::vector<EqualizationPair> find_equalization_pairs(const Graph& graph);

// Which dim of a tensor holds its channels: dim 1 (NCHW feature maps) or the last (a Transformer's tokens).
enum class ChannelAxis { second, last };

// Runs `graph` on the images and returns the per-channel ranges of `tensors` (widened to include 0). progress
// may be empty.
std::map<std::string, ChannelRanges> collect_channel_ranges(const Graph& graph, const std::vector<std::string>& tensors,
                                                            const std::vector<std::string>& images,
                                                            const std::function<void(size_t, size_t)>& progress,
                                                            ChannelAxis axis = ChannelAxis::second);

// The scales of one pair: A's output channel c is multiplied by scales[c]. Throws Error if the ranges do not
// match B's input channels.
std::vector<float> equalization_scales(const Graph& graph, const EqualizationPair& pair, const ChannelRanges& ranges,
                                       double alpha);

// The rule of equalization_scales on given channel ranges and weight column ranges (relative to their output
// channel's largest weight): s_c = w_c^(1 - alpha) / r_c^alpha, normalized and bounded as above; a channel
// with range or column 0 keeps 1. Shared with smoothing.h.
std::vector<float> balanced_scales(const std::vector<double>& ranges, const std::vector<double>& columns, double alpha);

// Largest channel range / mean channel range (1: all equal).
double channel_spread(const std::vector<double>& ranges);

// Replaces the constant read by input `i` of `node` with `values` (same shape) under a new name: the old
// constant may be shared with other graphs or nodes.
void replace_constant(Graph& graph, Node& node, size_t i, const std::vector<float>& values);

struct EqualizationReport {
  // Whether the model was built both ways and compared (options.equalize_only_if_better), with the logit SQNR
  // of each on the calibration images, and whether the equalized one was kept.
  bool compared = false, kept = true;
  double sqnr_without_db = 0, sqnr_with_db = 0;
  size_t pairs = 0;
  // Mean over pairs of (largest channel range / mean channel range) before and after: 1 is fully equal.
  double spread_before = 0, spread_after = 0;
  // Transformer linear-layer inputs smoothed (smoothing.h), and their mean spread before and after.
  size_t smoothed = 0;
  double smoothed_spread_before = 0, smoothed_spread_after = 0;
};

// Rescales every pair of `graph` (FP32) by equalization_scales with ranges from `ranges` (keyed by pair
// tensor; pairs without ranges are skipped). New constants replace the changed weights and biases.
EqualizationReport equalize_pairs(Graph& graph, const std::map<std::string, ChannelRanges>& ranges, double alpha);

// find_equalization_pairs, collect_channel_ranges on the images, equalize_pairs; then the Transformer
// linear layers' inputs with smooth_linear_inputs (smoothing.h) at the same alpha.
EqualizationReport equalize_ranges(Graph& graph, const std::vector<std::string>& images, double alpha,
                                   const std::function<void(size_t, size_t)>& progress);

}  // namespace octet::quant