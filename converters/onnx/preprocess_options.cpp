// The converter's preprocessing and labels options; the contract is in preprocess_options.h.
#include "converters/onnx/preprocess_options.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <system_error>

namespace octet::onnx {
namespace {

// What differs between the presets; all resize the shorter side to 256 (bilinear), center crop 224 and
// make RGB NCHW samples. x = (pixel * scale - mean[c]) / std[c], as in graph.h's Preprocess.
struct Preset {
  const char* name;
  float scale;
  std::array<float, 3> mean, std;
};
const Preset kPresets[] = {
    {"torchvision", 1 / 255.0f, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}},  // ResNet-50: ImageNet statistics
    {"tf", 1 / 127.5f, {1, 1, 1}, {1, 1, 1}},                                         // MobileNet: x/127.5 - 1
    {"unit", 1 / 255.0f, {0, 0, 0}, {1, 1, 1}},                                       // Darknet: x/255
};

std::string number(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

std::string preset_names() {
  std::string names;
  for (const Preset& preset : kPresets) names += (names.empty() ? "" : ", ") + std::string(preset.name);
  return names;
}

Preprocess preset_preprocess(const std::string& name) {
  for (const Preset& preset : kPresets) {
    if (name != preset.name) continue;
    Preprocess p;
    p.present = true;
    p.resize_shorter = 256;
    p.resize = Resize::bilinear;
    p.crop_height = p.crop_width = 224;
    p.scale = preset.scale;
    p.mean = preset.mean;
    p.std = preset.std;
    p.channel_order = ChannelOrder::rgb;
    p.layout = Layout::nchw;
    return p;
  }
  throw Error("--preset " + quoted(name) + " is not one of: " + preset_names());
}

// The first preprocessing flag given, or nullptr.
const char* first_flag_given(const PreprocessOptions& o) {
  if (o.resize_shorter) return "--resize-shorter";
  if (o.crop) return "--crop";
  if (o.scale) return "--scale";
  if (o.mean) return "--mean";
  if (o.std) return "--std";
  if (!o.channel_order.empty()) return "--channel-order";
  if (!o.layout.empty()) return "--layout";
  if (!o.resize.empty()) return "--resize";
  return nullptr;
}

// The vocabulary value (octet/preprocess.h) `value` of `flag` names; throws Error listing the valid ones.
template <typename E>
E one_of(const char* flag, const std::string& value) {
  if (const std::optional<E> parsed = parse_preprocess_name<E>(value)) return *parsed;
  throw Error(std::string(flag) + " " + quoted(value) + " is not one of: " + preprocess_name(E(0)) + ", " +
              preprocess_name(E(1)));
}

// The preset with the explicit flags applied, each checked.
Preprocess preprocess_from(const PreprocessOptions& options) {
  Preprocess p = preset_preprocess(options.preset);
  if (options.resize_shorter) {
    if (*options.resize_shorter < 0)
      throw Error("--resize-shorter " + std::to_string(*options.resize_shorter) +
                  " is negative (0 resizes straight to the crop size)");
    p.resize_shorter = *options.resize_shorter;
  }
  if (options.crop) {
    if (*options.crop <= 0) throw Error("--crop " + std::to_string(*options.crop) + " is not positive");
    p.crop_height = p.crop_width = *options.crop;
  }
  if (options.scale) {
    if (!(std::isfinite(*options.scale) && *options.scale > 0))
      throw Error("--scale " + number(*options.scale) + " is not a positive finite number");
    p.scale = *options.scale;
  }
  for (int c = 0; c < 3; ++c) {
    const std::string channel = " value " + std::to_string(c + 1) + " (";
    if (options.mean) {
      const float mean = (*options.mean)[size_t(c)];
      if (!std::isfinite(mean)) throw Error("--mean" + channel + number(mean) + ") is not finite");
      p.mean[c] = mean;
    }
    if (options.std) {
      const float std = (*options.std)[size_t(c)];
      if (!(std::isfinite(std) && std != 0))
        throw Error("--std" + channel + number(std) + ") is not a finite nonzero number");
      p.std[c] = std;
    }
  }
  if (!options.channel_order.empty()) p.channel_order = one_of<ChannelOrder>("--channel-order", options.channel_order);
  if (!options.layout.empty()) p.layout = one_of<Layout>("--layout", options.layout);
  if (!options.resize.empty()) p.resize = one_of<Resize>("--resize", options.resize);
  return p;
}

// Throws Error unless the graph's single input takes the samples `p` makes: 3 channels in p.layout, crop size.
void check_fits_input(const Preprocess& p, const Graph& graph) {
  if (graph.inputs.size() != 1)
    throw Error("--preset: preprocessing describes a model with one image input; this one has " +
                std::to_string(graph.inputs.size()) + " inputs");
  const Shape& shape = graph.tensor(graph.inputs[0]).shape;
  const std::string input = "model input " + quoted(graph.inputs[0]) + " " + shape_str(shape);
  const bool nchw = p.layout == Layout::nchw;
  if (shape.size() != 4 || shape[nchw ? 1 : 3] != 3)
    throw Error("--layout " + std::string(preprocess_name(p.layout)) + " makes samples of 3 channels, " +
                (nchw ? "[N,3,H,W]" : "[N,H,W,3]") + ", but " + input + " is not shaped so");
  const int64_t height = shape[nchw ? 2 : 1], width = shape[nchw ? 3 : 2];
  if (height != p.crop_height || width != p.crop_width)
    throw Error("--crop " + std::to_string(p.crop_height) + " does not match " + input + ", whose images are " +
                std::to_string(height) + "x" + std::to_string(width));
}

// The class count the labels must match: the last dimension of the graph's single output.
size_t class_count(const Graph& graph) {
  if (graph.outputs.size() != 1)
    throw Error("--labels: labels describe a model with one output; this one has " +
                std::to_string(graph.outputs.size()) + " outputs");
  const Shape& shape = graph.tensor(graph.outputs[0]).shape;
  if (shape.empty() || shape.back() <= 0)
    throw Error("--labels: model output " + quoted(graph.outputs[0]) + " " + shape_str(shape) +
                " has no fixed class count (last dimension)");
  return size_t(shape.back());
}

std::string trimmed(const std::string& text) {
  const char* space = " \t\r\n\f\v";
  const size_t first = text.find_first_not_of(space);
  return first == std::string::npos ? "" : text.substr(first, text.find_last_not_of(space) - first + 1);
}

}  // namespace

void apply_preprocess_options(const PreprocessOptions& options, Graph& graph) {
  if (!options.preset.empty()) {
    const Preprocess preprocess = preprocess_from(options);
    check_fits_input(preprocess, graph);
    graph.preprocess = preprocess;
  } else if (const char* flag = first_flag_given(options)) {
    throw Error(std::string(flag) + " needs --preset (" + preset_names() + ") for the values it does not set");
  }
  if (!options.labels_file.empty()) graph.labels = read_labels(options.labels_file, class_count(graph));
}

namespace {

// The offset of the first byte that is not part of a well-formed UTF-8 sequence, or npos.
size_t invalid_utf8_at(const std::string& text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = bytes[i];
    size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (length == 0 || i + length > text.size()) return i;
    uint32_t code = length == 1 ? c : c & (0x7F >> length);
    for (size_t k = 1; k < length; ++k) {
      if ((bytes[i + k] & 0xC0) != 0x80) return i;
      code = (code << 6) | (bytes[i + k] & 0x3F);
    }
    const uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < smallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
      return i;  // overlong, surrogate
    i += length;
  }
  return std::string::npos;
}

}  // namespace

std::vector<std::string> read_labels(const std::string& path, size_t expected_count) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    const int error = errno;
    throw Error(path + ": cannot open labels file: " + std::generic_category().message(error));
  }
  std::vector<std::string> labels;
  size_t first_blank_line = 0;  // 0: none so far
  std::string line;
  for (size_t line_number = 1; std::getline(file, line); ++line_number) {
    if (line_number == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    std::string label = trimmed(line);
    if (label.empty()) {
      if (first_blank_line == 0) first_blank_line = line_number;
      continue;
    }
    if (first_blank_line != 0)
      throw Error(path + ": line " + std::to_string(first_blank_line) +
                  " is blank, but labels follow it: every line up to the last names one class");
    // model.json is UTF-8: a label in another encoding (Latin-1) is refused here, naming its line, rather
    // than by the JSON writer with no file or line.
    const size_t bad = invalid_utf8_at(label);
    if (bad != std::string::npos)
      throw Error(path + ": line " + std::to_string(line_number) + ", byte " + std::to_string(bad + 1) +
                  ": not UTF-8 text (save the labels file as UTF-8)");
    labels.push_back(std::move(label));
  }
  if (file.bad()) throw Error(path + ": cannot read labels file");
  if (labels.size() != expected_count)
    throw Error(path + ": " + std::to_string(labels.size()) + " labels (one per line) but the model has " +
                std::to_string(expected_count) + " classes");
  return labels;
}

}  // namespace octet::onnx