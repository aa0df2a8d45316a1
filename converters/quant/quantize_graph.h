// The quantization policy: turns a calibrated FP32 graph into the mixed INT8 graph octet runs.
//
// Default (the research's mixed strategy): every Conv and Gemm with constant weights computes in INT8
// (u8 activations, s8 weights per output channel, s32 bias) except the final classifier (the last
// Conv/Gemm/MatMul), which stays FP32 with its weights stored as s8 and dequantized at load (weight-only
// INT8: the file shrinks to about a quarter while the logits keep FP32 arithmetic). `fp32_nodes` keeps any
// layer fully FP32 (f32 weights too). Pooling and reshaping ops run on u8 when their input is u8, with the
// same parameters. Quantize nodes are inserted where an FP32 tensor feeds an INT8 layer, Dequantize nodes
// where a u8 tensor feeds an FP32 layer; an INT8 layer whose every reader is FP32 writes f32 directly.
#pragma once

#include <map>
#include <set>
#include <string>

#include "converters/quant/calibration.h"
#include "graph/graph.h"

namespace octet::quant {

enum class ActivationMode {
  automatic,   // u8; tensors non-negative by construction (after ReLU, ReLU6, pooling of those) get zp 0
  asymmetric,  // u8 from the calibrated range alone (widened to include 0)
  symmetric,   // s8, zero point 0 (for comparison)
};
ActivationMode parse_activation_mode(const std::string& name);  // "auto" | "asymmetric" | "symmetric"

// How weights become integers: to nearest, or error-compensating (converters/quant/weight_rounding.h).
enum class WeightRounding { nearest, gptq };

struct QuantizeOptions {
  CalibrationMethod method = CalibrationMethod::minmax;
  double percentile = 99.99;
  bool per_channel = true;  // weights: per output channel, else per tensor
  ActivationMode activations = ActivationMode::automatic;
  bool int8_classifier = false;      // also run the final classifier in INT8
  std::set<std::string> fp32_nodes;  // node names kept fully FP32
  // MatMuls of two activations (attention's Q K^T and softmax V) in INT8: u8 A, s8 B (zero point 0); a
  // Softmax read by them writes u8 over [0, max] directly.
  bool int8_attention = true;
  // GPTQ by default: with equalization it clearly raises Darknet-tiny's INT8 logit SQNR and Top-1 agreement on
  // the held-out images; alone it raises MobileNet v1 0.25's and ResNet-50's slightly (see RESULTS.md, Design
  // measurements, and section 6 for the current figures).
  WeightRounding rounding = WeightRounding::gptq;  // applied by quantize_calibrated, after quantize_graph
  double equalize_alpha = 0.5;  // >= 0: cross-layer range equalization first (prepare_for_quantization); < 0: none
  bool equalize_only_if_better = true;  // keep it only for a clear gain on the calibration images (convert.h)
};

// Per-node facts the policy reports (for the convert command's summary and the sensitivity analysis).
struct QuantizedLayer {
  std::string node, op;
  std::string mode;  // "int8", "fp32 (s8 weights)", "fp32"
};

// `stats`: calibration statistics of the FP32 graph's activations (collect_statistics). Throws Error naming
// the node when a tensor it needs has no statistics.
Graph quantize_graph(const Graph& fp32, const std::map<std::string, TensorStats>& stats, const QuantizeOptions& options,
                     std::vector<QuantizedLayer>* layers = nullptr);

// The node kept FP32 by default: the last Conv, Gemm or MatMul in run order ("" if none).
std::string final_classifier(const Graph& graph);

}  // namespace octet::quant