// The converter's preprocessing and labels options (converters/onnx/preprocess_options.h): presets give exactly
// the shared models' preprocessing, flags override them, bad values and misfits name the flag, and labels
// files (plain and synset_words.txt style) are read with their count checked against the model.
#include <doctest/doctest.h>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>

#include "converters/onnx/preprocess_options.h"
#include "converters/tools/cli_options.h"

namespace fs = std::filesystem;

namespace {

const fs::path kScratch = fs::path(OCTET_BUILD_DIR) / "test-preprocess-options";

// A classifier's interface without its body: image input `shape`, 1000-class output.
octet::Graph classifier(const octet::Shape& input_shape = {octet::kBatchDim, 3, 224, 224}) {
  octet::Graph graph;
  graph.inputs = {"input"};
  graph.outputs = {"logits"};
  graph.tensors["input"] = {octet::DType::f32, input_shape, {}};
  graph.tensors["logits"] = {octet::DType::f32, {octet::kBatchDim, 1000}, {}};
  return graph;
}

octet::onnx::PreprocessOptions parse(const std::string& command_line) {
  CLI::App app;
  octet::onnx::PreprocessOptions options;
  octet::tools::add_preprocess_options(app, options);
  app.parse(command_line);
  return options;
}

// The graph's preprocessing after applying `command_line` to it.
octet::Preprocess applied(const std::string& command_line, octet::Graph graph = classifier()) {
  octet::onnx::apply_preprocess_options(parse(command_line), graph);
  return graph.preprocess;
}

// The error applying `command_line` gives, or "accepted".
std::string refused(const std::string& command_line, octet::Graph graph = classifier()) {
  try {
    octet::onnx::apply_preprocess_options(parse(command_line), graph);
  } catch (const octet::Error& e) {
    return e.what();
  }
  return "accepted";
}

std::string write_scratch(const std::string& name, const std::string& text) {
  fs::create_directories(kScratch);
  const std::string path = (kScratch / name).string();
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

void check_common_preset_values(const octet::Preprocess& p) {
  CHECK(p.present);
  CHECK(p.resize_shorter == 256);
  CHECK(p.resize == octet::Resize::bilinear);
  CHECK(p.crop_height == 224);
  CHECK(p.crop_width == 224);
  CHECK(p.channel_order == octet::ChannelOrder::rgb);
  CHECK(p.layout == octet::Layout::nchw);
}

}  // namespace

TEST_CASE("presets give the shared models' preprocessing exactly" * doctest::test_suite("models")) {
  const octet::Preprocess torchvision = applied("--preset torchvision");
  check_common_preset_values(torchvision);
  CHECK(torchvision.scale == 1 / 255.0f);
  CHECK(std::vector<float>(torchvision.mean.begin(), torchvision.mean.end()) ==
        std::vector<float>{0.485f, 0.456f, 0.406f});
  CHECK(std::vector<float>(torchvision.std.begin(), torchvision.std.end()) ==
        std::vector<float>{0.229f, 0.224f, 0.225f});

  // x = (pixel * scale - mean) / std = pixel / 127.5 - 1.
  const octet::Preprocess tf = applied("--preset tf");
  check_common_preset_values(tf);
  CHECK(tf.scale == 1 / 127.5f);
  CHECK(std::vector<float>(tf.mean.begin(), tf.mean.end()) == std::vector<float>{1, 1, 1});
  CHECK(std::vector<float>(tf.std.begin(), tf.std.end()) == std::vector<float>{1, 1, 1});

  const octet::Preprocess unit = applied("--preset unit");
  check_common_preset_values(unit);
  CHECK(unit.scale == 1 / 255.0f);
  CHECK(std::vector<float>(unit.mean.begin(), unit.mean.end()) == std::vector<float>{0, 0, 0});
  CHECK(std::vector<float>(unit.std.begin(), unit.std.end()) == std::vector<float>{1, 1, 1});
}

TEST_CASE("explicit flags override the preset") {
  const octet::Preprocess p = applied(
      "--preset torchvision --resize-shorter 0 --crop 200 --scale 0.5 --mean 1,2.5,-3 --std 4,5,6 "
      "--channel-order BGR --layout NHWC --resize nearest",
      classifier({octet::kBatchDim, 200, 200, 3}));
  CHECK(p.present);
  CHECK(p.resize_shorter == 0);
  CHECK(p.crop_height == 200);
  CHECK(p.crop_width == 200);
  CHECK(p.scale == 0.5f);
  CHECK(std::vector<float>(p.mean.begin(), p.mean.end()) == std::vector<float>{1, 2.5f, -3});
  CHECK(std::vector<float>(p.std.begin(), p.std.end()) == std::vector<float>{4, 5, 6});
  CHECK(p.channel_order == octet::ChannelOrder::bgr);
  CHECK(p.layout == octet::Layout::nhwc);
  CHECK(p.resize == octet::Resize::nearest);
  // Untouched values stay the preset's; mean and std also take space-separated values.
  const octet::Preprocess mean_only = applied("--preset tf --mean 0.5 0.5 0.5");
  CHECK(std::vector<float>(mean_only.mean.begin(), mean_only.mean.end()) == std::vector<float>{0.5f, 0.5f, 0.5f});
  CHECK(mean_only.scale == 1 / 127.5f);
  CHECK(std::vector<float>(mean_only.std.begin(), mean_only.std.end()) == std::vector<float>{1, 1, 1});
}

TEST_CASE("without a preset nothing is recorded, and a lone flag is refused") {
  octet::Graph graph = classifier();
  octet::onnx::apply_preprocess_options(parse(""), graph);
  CHECK_FALSE(graph.preprocess.present);
  CHECK(graph.labels.empty());
  CHECK(refused("--crop 224") == "--crop needs --preset (torchvision, tf, unit) for the values it does not set");
  CHECK(refused("--layout NCHW") == "--layout needs --preset (torchvision, tf, unit) for the values it does not set");
}

TEST_CASE("bad values are refused, naming the flag") {
  CHECK(refused("--preset imagenet") == "--preset \"imagenet\" is not one of: torchvision, tf, unit");
  CHECK(refused("--preset unit --crop -5") == "--crop -5 is not positive");
  CHECK(refused("--preset unit --crop 0") == "--crop 0 is not positive");
  CHECK(refused("--preset unit --resize-shorter -1") ==
        "--resize-shorter -1 is negative (0 resizes straight to the crop size)");
  CHECK(refused("--preset unit --scale 0") == "--scale 0 is not a positive finite number");
  CHECK(refused("--preset unit --std 1,0,1") == "--std value 2 (0) is not a finite nonzero number");
  CHECK(refused("--preset unit --mean 1,inf,1") == "--mean value 2 (inf) is not finite");
  CHECK(refused("--preset unit --channel-order RGBA") == "--channel-order \"RGBA\" is not one of: RGB, BGR");
  CHECK(refused("--preset unit --layout CHW") == "--layout \"CHW\" is not one of: NCHW, NHWC");
  CHECK(refused("--preset unit --resize bicubic") == "--resize \"bicubic\" is not one of: bilinear, nearest");
  // Values that are not numbers, or not three, are refused by the parser, naming the flag.
  for (const char* command_line : {"--crop big", "--mean 1,2", "--std 1,2,3,4", "--scale x"}) {
    CAPTURE(command_line);
    CHECK_THROWS_AS(parse(command_line), CLI::ParseError);
  }
  try {
    parse("--mean 1,2");
  } catch (const CLI::ParseError& e) {
    CHECK(std::string(e.what()).find("--mean") != std::string::npos);
  }
}

TEST_CASE("the preprocessing must fit the model's input") {
  CHECK(refused("--preset torchvision", classifier({octet::kBatchDim, 3, 299, 299})) ==
        "--crop 224 does not match model input \"input\" [N,3,299,299], whose images are 299x299");
  CHECK(refused("--preset torchvision --crop 299", classifier({octet::kBatchDim, 3, 299, 299})) == "accepted");
  CHECK(
      refused("--preset tf", classifier({octet::kBatchDim, 224, 224, 3})) ==
      "--layout NCHW makes samples of 3 channels, [N,3,H,W], but model input \"input\" [N,224,224,3] is not shaped so");
  CHECK(refused("--preset tf --layout NHWC", classifier({octet::kBatchDim, 224, 224, 3})) == "accepted");
  CHECK(
      refused("--preset unit", classifier({octet::kBatchDim, 1, 224, 224})) ==
      "--layout NCHW makes samples of 3 channels, [N,3,H,W], but model input \"input\" [N,1,224,224] is not shaped so");
  CHECK(refused("--preset unit", classifier({octet::kBatchDim, 3, 224})) ==
        "--layout NCHW makes samples of 3 channels, [N,3,H,W], but model input \"input\" [N,3,224] is not shaped so");
  octet::Graph two_inputs = classifier();
  two_inputs.inputs.push_back("mask");
  two_inputs.tensors["mask"] = {octet::DType::f32, {octet::kBatchDim, 1}, {}};
  CHECK(refused("--preset unit", two_inputs) ==
        "--preset: preprocessing describes a model with one image input; this one has 2 inputs");
  // A refused option leaves the graph as it was.
  octet::Graph graph = classifier();
  CHECK_THROWS_AS(octet::onnx::apply_preprocess_options(parse("--preset unit --crop 100"), graph), octet::Error);
  CHECK_FALSE(graph.preprocess.present);
}

TEST_CASE("labels files: synset_words.txt lines kept whole, plain wnids, counts checked" *
          doctest::test_suite("models")) {
  const std::string synset_words = std::string(OCTET_SHARED_DIR) + "/data/synset_words.txt";
  const std::vector<std::string> words = octet::onnx::read_labels(synset_words, 1000);
  REQUIRE(words.size() == 1000);
  CHECK(words[0] == "n01440764 tench, Tinca tinca");
  CHECK(words[1] == "n01443537 goldfish, Carassius auratus");
  CHECK(words[999] == "n15075141 toilet tissue, toilet paper, bathroom tissue");

  const std::string wnids = std::string(OCTET_SHARED_DIR) + "/models/darknet_tiny/labels_wnid.txt";
  octet::Graph graph = classifier();
  octet::onnx::apply_preprocess_options(parse("--preset unit --labels " + wnids), graph);
  REQUIRE(graph.labels.size() == 1000);
  CHECK(graph.labels[0] == "n02119789");
  CHECK(graph.preprocess.present);

  CHECK_THROWS_WITH_AS(octet::onnx::read_labels(synset_words, 1001),
                       (synset_words + ": 1000 labels (one per line) but the model has 1001 classes").c_str(),
                       octet::Error);
  octet::Graph ten_classes = classifier();
  ten_classes.tensors["logits"].shape = {octet::kBatchDim, 10};
  CHECK(refused("--labels " + wnids, ten_classes) ==
        wnids + ": 1000 labels (one per line) but the model has 10 classes");
  ten_classes.tensors["logits"].shape = {octet::kBatchDim, octet::kBatchDim};
  CHECK(refused("--labels " + wnids, ten_classes) ==
        "--labels: model output \"logits\" [N,N] has no fixed class count (last dimension)");

  const std::string missing = (kScratch / "missing.txt").string();
  CHECK_THROWS_WITH_AS(octet::onnx::read_labels(missing, 3),
                       (missing + ": cannot open labels file: No such file or directory").c_str(), octet::Error);
}

TEST_CASE("labels files: byte order mark, CRLF, surrounding spaces and trailing blank lines are tolerated") {
  const std::string windows = write_scratch("windows.txt",
                                            "\xEF\xBB\xBF"
                                            "cat\r\n  dog \r\nn01443537 goldfish\r\n\r\n\n");
  CHECK(octet::onnx::read_labels(windows, 3) == std::vector<std::string>{"cat", "dog", "n01443537 goldfish"});
  const std::string gap = write_scratch("gap.txt", "cat\n\ndog\n");
  CHECK_THROWS_WITH_AS(
      octet::onnx::read_labels(gap, 2),
      (gap + ": line 2 is blank, but labels follow it: every line up to the last names one class").c_str(),
      octet::Error);
}

TEST_CASE("labels files: text that is not UTF-8 (Latin-1) is refused naming the line; UTF-8 is kept") {
  const std::string utf8 = write_scratch("utf8.txt", "caf\xC3\xA9\nna\xC3\xAFve\n\xF0\x9F\x90\x9F fish\n");
  CHECK(octet::onnx::read_labels(utf8, 3) ==
        std::vector<std::string>{"caf\xC3\xA9", "na\xC3\xAFve", "\xF0\x9F\x90\x9F fish"});
  const std::string latin1 = write_scratch("latin1.txt", "cat\ncaf\xE9 au lait\n");
  CHECK_THROWS_WITH_AS(octet::onnx::read_labels(latin1, 2),
                       (latin1 + ": line 2, byte 4: not UTF-8 text (save the labels file as UTF-8)").c_str(),
                       octet::Error);
  const std::string overlong = write_scratch("overlong.txt", "\xC0\xAF\n");  // '/' in two bytes
  CHECK_THROWS_WITH_AS(octet::onnx::read_labels(overlong, 1),
                       (overlong + ": line 1, byte 1: not UTF-8 text (save the labels file as UTF-8)").c_str(),
                       octet::Error);
}
