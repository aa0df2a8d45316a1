// The converter's options that record how images become the model's input (graph.preprocess, used by
// octet::load_image_into) and what its output classes are called (graph.labels):
//
//   --preset torchvision|tf|unit   the whole preprocessing of a model family (all: resize the shorter side to
//                                  256, bilinear; center crop 224; RGB; NCHW; then x = (pixel*scale - mean)/std)
//       torchvision  scale 1/255, ImageNet mean (0.485,0.456,0.406), std (0.229,0.224,0.225)  e.g. ResNet-50
//       tf           scale 1/127.5, mean (1,1,1), std (1,1,1), i.e. x/127.5 - 1               e.g. MobileNet
//       unit         scale 1/255, mean (0,0,0), std (1,1,1), i.e. x/255                       e.g. Darknet
//   --resize-shorter N, --crop N, --scale S, --mean a,b,c, --std a,b,c, --channel-order RGB|BGR,
//   --layout NCHW|NHWC, --resize bilinear|nearest   override one value of the preset (they need a preset,
//                                  so that no value is silently a default nobody chose)
//   --labels FILE                  class names, one line per output class (see read_labels)
//
// Typical use in a command (the flags come from converters/tools/cli_options.h):
//   octet::onnx::PreprocessOptions preprocess;
//   octet::tools::add_preprocess_options(app, preprocess);
//   CLI11_PARSE(app, argc, argv);
//   octet::Graph graph = octet::onnx::import_onnx(path);
//   octet::onnx::apply_preprocess_options(preprocess, graph);
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace octet::onnx {

// What the user asked for; unset values and empty strings mean "the preset's".
struct PreprocessOptions {
  std::string preset;  // "torchvision" | "tf" | "unit" | "" (none: no preprocessing metadata is recorded)
  std::optional<int> resize_shorter, crop;
  std::optional<float> scale;
  std::optional<std::array<float, 3>> mean, std;
  std::string channel_order, layout, resize;
  std::string labels_file;  // "" = no labels
};

// Records the options in `graph`: graph.preprocess (present = true) from the preset with the explicit
// flags overriding it, and graph.labels from the labels file. With no preset and no flags the graph's
// preprocessing is left as it is. Throws Error naming the flag at fault for an unknown preset (listing
// the valid ones), a flag without a preset, a value out of range (crop or scale not positive, negative
// resize-shorter, zero or non-finite std, unknown channel order, layout or resize), or one that does not
// fit the model: its single input must be [N,3,crop,crop] for NCHW ([N,crop,crop,3] for NHWC), and with
// --labels its single output's last dimension is the class count the labels file must match.
void apply_preprocess_options(const PreprocessOptions& options, Graph& graph);

// Reads one label per line: plain names ("goldfish") or synset_words.txt lines ("n01443537 goldfish,
// Carassius auratus"), each kept whole, so a wnid stays available as the text before the first space.
// Surrounding whitespace, a trailing '\r' and a leading UTF-8 byte order mark are removed; blank lines at
// the end are ignored. Throws Error naming the file for an unreadable file, a blank line before the end
// (it would shift every later label), or a line count other than expected_count.
std::vector<std::string> read_labels(const std::string& path, size_t expected_count);

}  // namespace octet::onnx