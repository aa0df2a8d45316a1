#include "graph/fused_activation.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "graph/ops.h"

namespace octet {

float FusedActivationSpec::apply(float x) const {
  switch (kind) {
    case FusedActivation::relu: return std::max(x, 0.0f);
    case FusedActivation::clip: return std::min(std::max(x, alpha), beta);
    case FusedActivation::leaky_relu: return x < 0 ? x * alpha : x;
    case FusedActivation::hard_sigmoid: return std::min(std::max(alpha * x + beta, 0.0f), 1.0f);
    case FusedActivation::hard_swish: return x * std::min(std::max(x / 6.0f + 0.5f, 0.0f), 1.0f);
    case FusedActivation::gelu: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case FusedActivation::none: break;
  }
  return x;
}

bool FusedActivationSpec::homogeneous() const {
  return kind == FusedActivation::none || kind == FusedActivation::relu || kind == FusedActivation::clip ||
         kind == FusedActivation::leaky_relu;
}

bool FusedActivationSpec::non_negative() const {
  return kind == FusedActivation::relu || kind == FusedActivation::hard_sigmoid ||
         (kind == FusedActivation::clip && alpha >= 0);
}

const char* fused_activation_name(FusedActivation kind) {
  switch (kind) {
    case FusedActivation::relu: return "relu";
    case FusedActivation::clip: return "clip";
    case FusedActivation::leaky_relu: return "leaky_relu";
    case FusedActivation::hard_sigmoid: return "hard_sigmoid";
    case FusedActivation::hard_swish: return "hard_swish";
    case FusedActivation::gelu: return "gelu";
    case FusedActivation::none: break;
  }
  return "";
}

FusedActivationSpec read_fused_activation(const Node& node, const std::string& slot) {
  FusedActivationSpec spec;
  const std::string name = node.attrs.get_string(slot, "");
  if (name.empty()) return spec;
  for (FusedActivation kind : {FusedActivation::relu, FusedActivation::clip, FusedActivation::leaky_relu,
                               FusedActivation::hard_sigmoid, FusedActivation::hard_swish, FusedActivation::gelu})
    if (name == fused_activation_name(kind)) spec.kind = kind;
  if (spec.kind == FusedActivation::none)
    throw Error(node_label(node) + ": attribute " + slot + "='" + name +
                "' is not relu, clip, leaky_relu, hard_sigmoid, hard_swish or gelu");
  const float inf = std::numeric_limits<float>::infinity();
  spec.alpha = node.attrs.get_float(slot + "_alpha", spec.kind == FusedActivation::clip           ? -inf
                                                     : spec.kind == FusedActivation::leaky_relu   ? 0.01f
                                                     : spec.kind == FusedActivation::hard_sigmoid ? 0.2f
                                                                                                  : 0.0f);
  spec.beta = node.attrs.get_float(slot + "_beta", spec.kind == FusedActivation::hard_sigmoid ? 0.5f : inf);
  if (spec.kind == FusedActivation::clip && !(spec.alpha <= spec.beta))
    throw Error(node_label(node) + ": attribute " + slot + " clips to [" + std::to_string(spec.alpha) + ", " +
                std::to_string(spec.beta) + "], an empty range");
  return spec;
}

void write_fused_activation(Node& node, const std::string& slot, FusedActivation kind, std::optional<float> alpha,
                            std::optional<float> beta) {
  node.attrs.values.erase(slot);
  node.attrs.values.erase(slot + "_alpha");
  node.attrs.values.erase(slot + "_beta");
  if (kind == FusedActivation::none) return;
  node.attrs.set(slot, std::string(fused_activation_name(kind)));
  if (alpha) node.attrs.set(slot + "_alpha", *alpha);
  if (beta) node.attrs.set(slot + "_beta", *beta);
}

std::optional<ActivationNode> activation_of(const Node& node) {
  if (node.op == "Relu") return ActivationNode{FusedActivation::relu, std::nullopt, std::nullopt};
  if (node.op == "LeakyRelu")
    return ActivationNode{FusedActivation::leaky_relu, node.attrs.get_float("alpha", 0.01f), std::nullopt};
  if (node.op == "HardSigmoid")
    return ActivationNode{FusedActivation::hard_sigmoid, node.attrs.get_float("alpha", 0.2f),
                          node.attrs.get_float("beta", 0.5f)};
  if (node.op == "HardSwish") return ActivationNode{FusedActivation::hard_swish, std::nullopt, std::nullopt};
  if (node.op == "Gelu" && node.attrs.get_string("approximate", "none") == "none")
    return ActivationNode{FusedActivation::gelu, std::nullopt, std::nullopt};
  if (node.op == "Clip")
    return ActivationNode{FusedActivation::clip, node.attrs.get_float("min", std::numeric_limits<float>::lowest()),
                          node.attrs.get_float("max", std::numeric_limits<float>::max())};
  return std::nullopt;
}

}  // namespace octet
