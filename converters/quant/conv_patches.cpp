#include "converters/quant/conv_patches.h"

#include <algorithm>

namespace octet::quant {

ConvGeometry conv_geometry(const Node& conv, const Shape& weights) {
  ConvGeometry g;
  g.kh = weights.at(2);
  g.kw = weights.at(3);
  const std::vector<int64_t> strides = conv.attrs.get_ints("strides", {1, 1}),
                             dilations = conv.attrs.get_ints("dilations", {1, 1}),
                             pads = conv.attrs.get_ints("pads", {0, 0, 0, 0});
  g.sh = strides.at(0), g.sw = strides.at(1), g.dh = dilations.at(0), g.dw = dilations.at(1);
  g.pad_top = pads.at(0), g.pad_left = pads.at(1), g.pad_bottom = pads.at(2), g.pad_right = pads.at(3);
  return g;
}

void append_conv_patches(const ConvGeometry& g, const Tensor& input, int64_t max_positions, double phase,
                         std::vector<float>& patches) {
  const int64_t channels = input.shape[1], height = input.shape[2], width = input.shape[3];
  const int64_t out_h = (height + g.pad_top + g.pad_bottom - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  const int64_t out_w = (width + g.pad_left + g.pad_right - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  const int64_t positions = out_h * out_w, taken = std::min(positions, max_positions);
  for (int64_t t = 0; t < taken; ++t) {
    const int64_t p = taken == positions
                          ? t
                          : static_cast<int64_t>((static_cast<double>(t) + phase) * static_cast<double>(positions) /
                                                 static_cast<double>(taken));
    const int64_t oy = p / out_w, ox = p % out_w;
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t ky = 0; ky < g.kh; ++ky)
        for (int64_t kx = 0; kx < g.kw; ++kx) {
          const int64_t iy = oy * g.sh - g.pad_top + ky * g.dh, ix = ox * g.sw - g.pad_left + kx * g.dw;
          const bool inside = iy >= 0 && iy < height && ix >= 0 && ix < width;
          patches.push_back(inside ? input.data[(c * height + iy) * width + ix] : 0.0f);
        }
  }
}

}  // namespace octet::quant