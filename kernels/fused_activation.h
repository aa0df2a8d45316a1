// A Conv's, Gemm's or MatMul's fused activation (graph/fused_activation.h) as the kernels apply it: oneDNN
// post-ops and the reference's per-element form. Internal to kernels/.
//
// A quantized kernel applies its post-ops to dst-scaled values y / s (s: the output scale, 1 for float).
// relu, leaky_relu and clip commute with that scale (clip's bounds are divided by s). hard_sigmoid,
// hard_swish and gelu do not: they see the real value and scale back, f(y s) / s, which oneDNN expresses as
// a linear post-op and an eltwise post-op whose scale is 1/s.
#pragma once

#include <dnnl.hpp>
#include <string>

#include "graph/fused_activation.h"

namespace octet::kernels {

struct Activation {
  FusedActivationSpec spec;
  float dst_scale = 1;

  FusedActivation kind() const { return spec.kind; }
  float apply(float x) const { return spec.homogeneous() ? spec.apply(x) : spec.apply(x * dst_scale) / dst_scale; }
  void append_to(dnnl::post_ops& ops) const {
    using dnnl::algorithm;
    const float back = 1.0f / dst_scale;
    switch (spec.kind) {
      case FusedActivation::none: return;
      case FusedActivation::relu: ops.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f); return;
      case FusedActivation::clip: ops.append_eltwise(1.0f, algorithm::eltwise_clip_v2, spec.alpha, spec.beta); return;
      case FusedActivation::leaky_relu: ops.append_eltwise(1.0f, algorithm::eltwise_relu, spec.alpha, 0.0f); return;
      case FusedActivation::hard_sigmoid:
        ops.append_eltwise(1.0f, algorithm::eltwise_linear, spec.alpha * dst_scale, spec.beta);
        ops.append_eltwise(back, algorithm::eltwise_clip_v2, 0.0f, 1.0f);
        return;
      case FusedActivation::hard_swish:
      case FusedActivation::gelu:
        if (dst_scale != 1.0f) ops.append_eltwise(1.0f, algorithm::eltwise_linear, dst_scale, 0.0f);
        ops.append_eltwise(
            back, spec.kind == FusedActivation::gelu ? algorithm::eltwise_gelu_erf : algorithm::eltwise_hardswish, 0.0f,
            0.0f);
        return;
    }
  }
};

inline Activation read_activation(const Node& node, const std::string& slot) {
  return {read_fused_activation(node, slot), 1.0f};
}

// `a` for an output of scale `dst_scale` (1 for float): clip bounds divided by it, the others told the scale.
inline Activation scaled_activation(Activation a, float dst_scale) {
  if (a.spec.kind == FusedActivation::clip) a.spec.alpha /= dst_scale, a.spec.beta /= dst_scale;
  a.dst_scale = dst_scale;
  return a;
}

}  // namespace octet::kernels
