// The preprocessing vocabulary: how an image becomes a model's input sample (octet/image.h applies it; the
// model file's "preprocess" object records it, graph/FORMAT.md). The names below are the only spellings,
// read by the model loader and the converter's flags through parse_preprocess_name, here and nowhere else.
#pragma once

#include <array>
#include <optional>
#include <string>

namespace octet {

enum class Resize { bilinear, nearest };  // PIL's antialiased bilinear, or PIL's NEAREST
enum class ChannelOrder { rgb, bgr };     // the model's channel order
enum class Layout { nchw, nhwc };         // the sample's layout: C*H*W or H*W*C floats

inline const char* preprocess_name(Resize v) { return v == Resize::bilinear ? "bilinear" : "nearest"; }
inline const char* preprocess_name(ChannelOrder v) { return v == ChannelOrder::rgb ? "RGB" : "BGR"; }
inline const char* preprocess_name(Layout v) { return v == Layout::nchw ? "NCHW" : "NHWC"; }

// The value spelled `name`, or nullopt. E is Resize, ChannelOrder or Layout.
template <typename E>
std::optional<E> parse_preprocess_name(const std::string& name) {
  for (E v : {E(0), E(1)})
    if (name == preprocess_name(v)) return v;
  return std::nullopt;
}
// "bilinear or nearest", for messages.
template <typename E>
std::string preprocess_names() {
  return std::string(preprocess_name(E(0))) + " or " + preprocess_name(E(1));
}

// The preprocessing parameters.
struct PreprocessSpec {
  int resize_shorter = 256;  // shorter side after resizing; 0 = resize straight to the crop size
  Resize resize = Resize::bilinear;
  int crop_height = 224, crop_width = 224;
  float scale = 1.0f / 255.0f;         // x = (pixel * scale - mean[c]) / std[c]
  std::array<float, 3> mean{0, 0, 0};  // indexed by the model's channel (after channel_order)
  std::array<float, 3> std{1, 1, 1};
  ChannelOrder channel_order = ChannelOrder::rgb;
  Layout layout = Layout::nchw;
};

}  // namespace octet
