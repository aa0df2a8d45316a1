// The activations a Conv applies while writing its output, the vocabulary of its "act" and "sum_act"
// attributes (graph/ops.h): read and validated here, and nowhere else by name.
//
//   slot "act":      the activation after the convolution (and bias)
//   slot "sum_act":  the activation after the residual sum (Conv input 3), when the Conv has one
//   attributes:      <slot> = relu | clip | leaky_relu | hard_sigmoid | hard_swish | gelu;
//                    <slot>_alpha, <slot>_beta (floats, see below)
// relu, clip and leaky_relu commute with a positive scale (a quantized kernel applies them to its dst-scaled
// values); hard_sigmoid, hard_swish and gelu do not (`homogeneous()` false: they see the real value).
#pragma once

#include <optional>
#include <string>

#include "graph/graph.h"

namespace octet {

enum class FusedActivation { none, relu, clip, leaky_relu, hard_sigmoid, hard_swish, gelu };

struct FusedActivationSpec {
  FusedActivation kind = FusedActivation::none;
  // clip: bounds [alpha, beta] (absent: -inf, +inf); leaky_relu: the slope alpha; hard_sigmoid:
  // clip(alpha x + beta, 0, 1) (absent: 0.2, 0.5); gelu: x/2 (1 + erf(x/sqrt2)); hard_swish: x
  // hard_sigmoid_{1/6,1/2}(x)
  float alpha = 0, beta = 0;

  float apply(float x) const;
  // Whether every output is >= 0 whatever the input (relu, clip with alpha >= 0, hard_sigmoid).
  bool non_negative() const;
  // Whether f(s x) = s f(x) for s > 0 (none, relu, leaky_relu; clip after scaling its bounds).
  bool homogeneous() const;
};

// "relu", "clip", "leaky_relu", "hard_sigmoid", "hard_swish", "gelu" ("" for none).
const char* fused_activation_name(FusedActivation kind);

// The activation in `slot` of `node` (none when the slot is absent). Throws Error naming the node and the
// attribute for a name outside the vocabulary. Called by shape inference, so every graph that is loaded,
// converted or prepared has been checked; the kernels, passes and exporters read it the same way.
FusedActivationSpec read_fused_activation(const Node& node, const std::string& slot);

// Writes `kind` into `slot` with the values given (an absent value is not written, so it reads back as its
// default above).
void write_fused_activation(Node& node, const std::string& slot, FusedActivation kind, std::optional<float> alpha = {},
                            std::optional<float> beta = {});

// The activation an activation node applies, with its ONNX attribute values (Relu; LeakyRelu: alpha, default
// 0.01; HardSigmoid: alpha, beta; HardSwish; Gelu with approximate="none"; Clip: min/max attributes, absent bounds
// written as the float limits since model files cannot hold infinities), or nullopt for any other op.
struct ActivationNode {
  FusedActivation kind;
  std::optional<float> alpha, beta;
};
std::optional<ActivationNode> activation_of(const Node& node);

}  // namespace octet
