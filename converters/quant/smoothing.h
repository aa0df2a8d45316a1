// Activation smoothing for the linear layers of a Transformer (Xiao et al. 2022, "SmoothQuant"; the channel
// scale moved into an earlier op as in Wei et al. 2023, "Outlier Suppression+").
//
// A MatMul or Gemm with constant weights quantizes its input X with one scale for all channels (X's last
// axis). Multiplying channel c of X by s_c and dividing the weights' input row c by s_c leaves the FP32
// function unchanged; s_c comes from equalization_scales' rule (equalization.h): the channel's calibrated
// range against its weight range. Unlike the Conv pairs of equalization.h, X's producer is found by
// following the channel backwards through ops that carry a per-element scale unchanged:
//   Transpose, Reshape (splitting or merging the scaled trailing dims), Slice of the last axis (the other
//   readers of its input being Slices of other columns), and the second operand of a MatMul of two
//   activations (softmax(Q K^T) V: scaling V's columns scales the output's),
// up to an op that takes the scale into its constants:
//   LayerNormalization over the last axis (scale and bias), MatMul or Gemm with constant weights and no
//   fused activation (weight columns and bias).
// In a Transformer block that is LayerNorm -> QKV projection and LayerNorm -> MLP input, and the attention
// output -> out-projection, whose scale moves through softmax * V into the V columns of the QKV projection.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace octet::quant {

// One smoothed tensor: `tensor` (read only by the linear layers `readers`, as their input 0), its channel
// scale moved into `absorber`.
struct SmoothingSite {
  std::string tensor, absorber;
  std::vector<std::string> readers;
  std::vector<std::string> path;  // the nodes the scale passes through, from the absorber's output on
};

// The sites of an FP32 graph: tensors whose every reader is a MatMul (constant [K, N] weights) or Gemm
// (constant B, no transA) reading it as input 0, and whose channel scale reaches an absorber as above,
// every tensor on the way read by the next node of the path alone (or, for a Slice's input, by Slices of
// other columns) and not a graph output.
std::vector<SmoothingSite> find_smoothing_sites(const Graph& graph);

struct SmoothingReport {
  size_t sites = 0;
  // Mean over sites of (largest channel range / mean channel range) before and after: 1 is fully equal.
  double spread_before = 0, spread_after = 0;
};

// find_smoothing_sites, the sites' per-channel (last axis) ranges on the images, then each site's scales
// (equalization_scales' rule with `alpha`) moved into its absorber and divided out of its readers' weights.
SmoothingReport smooth_linear_inputs(Graph& graph, const std::vector<std::string>& images, double alpha,
                                     const std::function<void(size_t, size_t)>& progress);

}  // namespace octet::quant
