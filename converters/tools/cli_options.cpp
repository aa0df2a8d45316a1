#include "converters/tools/cli_options.h"

#include <CLI/CLI.hpp>

namespace octet::tools {

void add_preprocess_options(CLI::App& app, onnx::PreprocessOptions& options) {
  const char* group = "Preprocessing and labels (recorded in the model, used by octet::load_image_into)";
  app.add_option("--preset", options.preset,
                 "torchvision (ResNet: x/255, ImageNet mean and std), tf (MobileNet: x/127.5 - 1) or unit "
                 "(Darknet: x/255); each resizes the shorter side to 256 (bilinear), center crops 224, RGB, NCHW")
      ->group(group);
  app.add_option("--resize-shorter", options.resize_shorter,
                 "shorter side after resizing; 0 resizes straight to the crop")
      ->group(group);
  app.add_option("--crop", options.crop, "center crop size: the model input's height and width")->group(group);
  app.add_option("--scale", options.scale, "x = (pixel * scale - mean) / std")->group(group);
  auto add_per_channel = [&](const char* flag, std::optional<std::array<float, 3>>& target, const char* help) {
    app.add_option_function<std::vector<float>>(
           flag,
           [&target](const std::vector<float>& values) {
             target = {values[0], values[1], values[2]};
           },
           help)
        ->delimiter(',')
        ->expected(3)
        ->group(group);
  };
  add_per_channel("--mean", options.mean, "a,b,c: per model channel (after --channel-order)");
  add_per_channel("--std", options.std, "a,b,c: per model channel (after --channel-order)");
  app.add_option("--channel-order", options.channel_order, "RGB or BGR")->group(group);
  app.add_option("--layout", options.layout, "NCHW or NHWC")->group(group);
  app.add_option("--resize", options.resize, "bilinear (PIL's, antialiased) or nearest")->group(group);
  app.add_option("--labels", options.labels_file,
                 "class names, one line per output class (plain or synset_words.txt lines)")
      ->type_name("FILE")
      ->group(group);
}

}  // namespace octet::tools
