// The input patches a 2-D Conv's weights multiply (im2col rows), for calibration-time analyses that need the
// layer's inputs as vectors: GPTQ's input second moment (weight_rounding.h) and the per-pair error of range
// equalization (equalization.h).
#pragma once

#include <cstdint>
#include <vector>

#include "graph/graph.h"
#include "octet/octet.h"

namespace octet::quant {

struct ConvGeometry {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};

// The geometry of a Conv node with [OC, IC/group, KH, KW] weights.
ConvGeometry conv_geometry(const Node& conv, const Shape& weights);

// Appends the patches of up to `max_positions` evenly spaced output positions (all when there are fewer),
// shifted by `phase` in [0, 1) so successive images sample other positions, to `patches`: one row of
// channels x kh x kw values each, in (channel, ky, kx) order, 0 outside the input. `input` is [1, C, H, W].
void append_conv_patches(const ConvGeometry& g, const Tensor& input, int64_t max_positions, double phase,
                         std::vector<float>& patches);

}  // namespace octet::quant