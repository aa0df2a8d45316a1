// Bad input at every entry point of a real model's life, each refused with an octet::Error that names what
// is wrong (or, where the runtime defines a behaviour instead, that behaviour):
//   - model files truncated at many points, corrupted byte by byte, missing, or with quantization scales that
//     are zero, negative or out of range (refused at load, naming the tensor);
//   - Session misuse: unknown input or output names, indices out of range, batch < 1, no model;
//   - NaN and Inf inputs: run() does not check values; FP32 propagates them, INT8 quantizes NaN to the
//     lowest level (exactly as -Inf), so the INT8 output is the finite output of an all-minimum input;
//   - images without pixels or with huge headers, refused from the header;
//   - octet-convert given a missing labels file, model or calibration folder.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <tuple>

#include "octet/image.h"
#include "support/process.h"
#include "tests/converted_mobilenet.h"
#include "tests/known_bugs.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kScratch = fs::path(OCTET_BUILD_DIR) / "test-bad-inputs";

const std::string& fp32_model() {
  static const std::string path = octet::testing::convert_mobilenet("test-bad-inputs", false);
  return path;
}
const std::string& int8_model() {
  static const std::string path = octet::testing::convert_mobilenet("test-bad-inputs", true);
  return path;
}

using octet::testing::read_text;

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary).write(text.data(), std::streamsize(text.size()));
}

// A copy of `model` in a scratch folder with model.json and model.bin replaced by the given texts.
std::string scratch_model(const std::string& name, const std::string& json_text, const std::string& binary) {
  const fs::path folder = kScratch / name;
  fs::create_directories(folder);
  write_text(folder / "model.json", json_text);
  write_text(folder / "model.bin", binary);
  return folder.string();
}

// The message of the octet::Error that loading `folder` throws; "loaded" if it loads. Any other exception
// fails the test (it escapes), but for the bugs already reported (known_bugs.h), returned as "known bug".
std::string load_error(const std::string& folder) {
  try {
    octet::Model::load(folder);
  } catch (const octet::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    if (!octet::testing::is_known_bug(e)) throw;
    return "known bug";
  }
  return "loaded";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("truncated model files are refused, naming the file" * doctest::test_suite("models")) {
  for (const std::string& model : {fp32_model(), int8_model()}) {
    const std::string json_text = read_text(fs::path(model) / "model.json");
    const std::string binary = read_text(fs::path(model) / "model.bin");
    // Cut points: empty, inside the first value, at the middle, just before the end.
    for (size_t cut :
         {size_t(0), size_t(1), size_t(100), json_text.size() / 3, json_text.size() / 2, json_text.size() - 2}) {
      const std::string error = load_error(scratch_model("cut-json", json_text.substr(0, cut), binary));
      CAPTURE(cut);
      CHECK(contains(error, "cut-json/model.json: invalid JSON: "));
    }
    for (size_t cut : {size_t(0), size_t(1), size_t(64), binary.size() / 2, binary.size() - 64, binary.size() - 1}) {
      const std::string error = load_error(scratch_model("cut-bin", json_text, binary.substr(0, cut)));
      CAPTURE(cut);
      CHECK(contains(error, "cut-bin/model.bin"));
      CHECK(contains(error, "truncated file"));
    }
    CHECK(contains(load_error(scratch_model("long-bin", json_text, binary + std::string(64, '\0'))),
                   "long-bin/model.bin: 64 trailing bytes after the constants"));
  }
  fs::create_directories(kScratch / "no-bin");
  write_text(kScratch / "no-bin" / "model.json", read_text(fs::path(fp32_model()) / "model.json"));
  fs::remove(kScratch / "no-bin" / "model.bin");
  CHECK(contains(load_error((kScratch / "no-bin").string()),
                 "no-bin/model.bin: cannot open the model weights (model.bin must sit beside model.json)"));
  CHECK(load_error((kScratch / "nowhere").string()) ==
        (kScratch / "nowhere").string() + ": no such model folder or model.json file");
  // model.bin is memory-mapped: something that is not a regular file is refused before mapping.
  fs::create_directories(kScratch / "dir-bin" / "model.bin");
  write_text(kScratch / "dir-bin" / "model.json", read_text(fs::path(fp32_model()) / "model.json"));
  CHECK(contains(load_error((kScratch / "dir-bin").string()), "dir-bin/model.bin: cannot read the model weights"));
}

TEST_CASE("model.json corrupted byte by byte loads or is refused with octet::Error, never anything else" *
          doctest::test_suite("models")) {
  // Random single-byte changes of the INT8 model: most break the JSON or a check; those that survive are
  // still valid models (e.g. a digit of a float changed). load_error lets any other exception escape but
  // the known bugs'.
  const std::string json_text = read_text(fs::path(int8_model()) / "model.json");
  const std::string binary = read_text(fs::path(int8_model()) / "model.bin");
  const char kReplacements[] = "{}[]\",:0123456789.eE-+N \x01\xff";  // JSON syntax, number parts, junk
  std::mt19937 rng(7);
  int refused = 0;
  for (int i = 0; i < 100; ++i) {
    std::string corrupt = json_text;
    corrupt[rng() % corrupt.size()] = kReplacements[rng() % (sizeof kReplacements - 1)];
    if (load_error(scratch_model("corrupt-json", corrupt, binary)) != "loaded") ++refused;
  }
  MESSAGE(refused << " of 100 corrupted model.json files refused");  // about half: digit changes often stay valid
  CHECK(refused > 0);
  // model.bin carries no checksum: changed weight bytes load (and give other outputs), only its size is checked.
  std::string binary_changed = binary;
  binary_changed[binary.size() / 2] ^= 0x5a;
  CHECK(load_error(scratch_model("corrupt-bin", json_text, binary_changed)) == "loaded");
}

TEST_CASE(
    "INT8 quantization parameters that are zero, negative or out of range are refused at load, naming the tensor" *
    doctest::test_suite("models")) {
  const json good = json::parse(read_text(fs::path(int8_model()) / "model.json"));
  const std::string binary = read_text(fs::path(int8_model()) / "model.bin");
  // The first quantized activation and the first quantized constant (per-channel s8 weights).
  std::string activation, weight;
  for (const auto& item : good["tensors"].items())
    if (item.value().contains("quant") && activation.empty()) activation = item.key();
  for (const auto& item : good["constants"].items())
    if (item.value().contains("quant") && item.value()["quant"]["axis"] == 0 && weight.empty()) weight = item.key();
  REQUIRE(!activation.empty());
  REQUIRE(!weight.empty());

  struct Case {
    const char* section;
    std::string tensor;
    const char* field;
    size_t index;
    json value;
    std::string error;
  };
  const Case cases[] = {
      {"tensors", activation, "scales", 0, 0.0, "0 is not a positive finite number"},
      {"tensors", activation, "scales", 0, -0.5, "-0.5 is not a positive finite number"},
      {"constants", weight, "scales", 3, 0.0, "0 is not a positive finite number"},
      {"constants", weight, "scales", 3, -1e-3, "-0.001 is not a positive finite number"},
      {"constants", weight, "scales", 1, 1e39, "1e+39 is outside the f32 range"},
      // Finite but insane: a weight scale of 1e38 made every logit inf and classify print NaN probabilities.
      {"constants", weight, "scales", 1, 1e38, "1e+38 is outside the sane range [1e-30, 1e+10] for s8"},
      {"tensors", activation, "scales", 0, 1e-35, "1e-35 is outside the sane range [1e-30, 1e+10] for u8"},
      {"tensors", activation, "zero_points", 0, 256, "256 is outside the u8 range [0, 255]"},
      {"constants", weight, "zero_points", 0, 128, "128 is outside the s8 range [-128, 127]"},
  };
  for (const Case& c : cases) {
    json doc = good;
    doc[c.section][c.tensor]["quant"][c.field][c.index] = c.value;
    const std::string path =
        std::string(c.section) + "[\"" + c.tensor + "\"].quant." + c.field + "[" + std::to_string(c.index) + "]";
    const std::string error = load_error(scratch_model("bad-quant", doc.dump(1), binary));
    CAPTURE(error);
    CHECK(contains(error, "bad-quant/model.json: " + path + ": " + c.error));
  }
}

TEST_CASE("Session misuse is refused with the names it knows" * doctest::test_suite("models")) {
  const auto model = octet::Model::load(fp32_model());
  octet::Session session(model, {1, 1, false});
  CHECK_THROWS_WITH_AS(session.input("nope"), "model has no input named 'nope' (it has: input_1)", octet::Error);
  CHECK_THROWS_WITH_AS(session.output("nope"), doctest::Contains("model has no output named 'nope' (it has: "),
                       octet::Error);
  CHECK_THROWS_WITH_AS(session.input(1), "input index 1 out of range", octet::Error);
  CHECK_THROWS_WITH_AS(session.output(size_t(-1)), doctest::Contains(" out of range"), octet::Error);
  CHECK_THROWS_WITH_AS(octet::Session(model, {0, 1, false}), "batch size must be at least 1, got 0", octet::Error);
  CHECK_THROWS_WITH_AS(octet::Session(model, {-4, 1, false}), "batch size must be at least 1, got -4", octet::Error);
  CHECK_THROWS_WITH_AS(octet::Session(nullptr), "Session needs a model", octet::Error);
  // Inputs are the Session's own buffers, so their shape is the model's at the Session's batch: a caller
  // cannot feed a wrong shape, only write past elements() (unchecked, as with any raw buffer).
  CHECK(session.input(0).shape == std::vector<int64_t>{1, 3, 224, 224});
  const std::string image = octet::testing::sample_images(1)[0];
  CHECK_THROWS_WITH_AS(octet::load_image_into(*model, image, session.input(0), 1),
                       (image + ": batch index 1 is outside input \"input_1\" [1,3,224,224]").c_str(), octet::Error);
}

// ---- Bugs these tests found, now fixed ----

TEST_CASE("a number overflowing a double in model.json is reported as invalid JSON" * doctest::test_suite("models")) {
  std::string json_text = read_text(fs::path(fp32_model()) / "model.json");
  const std::string binary = read_text(fs::path(fp32_model()) / "model.bin");
  const size_t scale = json_text.find("\"scale\":");
  REQUIRE(scale != std::string::npos);
  json_text.insert(json_text.find_first_of(",}", scale), "e999");
  CHECK_THROWS_AS(octet::parse_model(json_text, {binary.begin(), binary.end()}, "m/model.json"), octet::Error);
}

TEST_CASE("a batch other than 1 for a model whose input has a fixed batch is refused" * doctest::test_suite("models")) {
  // The shared MobileNet's input is [1,3,224,224], with no symbolic N: a Session asked for batch 3 refuses.
  const auto model = octet::Model::load(fp32_model());
  bool consistent = true;
  try {
    octet::Session session(model, {3, 1, false});
    consistent = session.input(0).shape[0] == session.batch();
  } catch (const octet::Error& e) {
    CHECK(std::string(e.what()).find("has the fixed shape [1,3,224,224]") != std::string::npos);
  }
  CHECK(consistent);
}

TEST_CASE("NaN and Inf inputs are not checked by run(); INT8 quantizes NaN exactly as -Inf" *
          doctest::test_suite("models")) {
  // The outputs of `model` for the shared image with `value` (NaN, +-Inf) in every element of its first
  // channel, or for the plain image (no value).
  const std::string image = octet::testing::sample_images(1)[0];
  auto outputs_with = [&](const std::string& folder, std::optional<float> value, bool reference_kernels) {
    const auto model = octet::Model::load(folder);
    octet::Session session(model, {1, 1, reference_kernels});
    octet::Tensor input = session.input(0);
    octet::load_image_into(*model, image, input, 0);
    if (value) std::fill(input.data, input.data + input.elements() / 3, *value);
    session.run();
    const octet::Tensor output = session.output(0);
    return std::vector<float>(output.data, output.data + output.elements());
  };
  auto all = [](const std::vector<float>& values, bool (*test)(float)) {
    return std::all_of(values.begin(), values.end(), test);
  };
  auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();

  // FP32: unspecified, it depends on the kernels. The reference kernels follow IEEE arithmetic, so NaN
  // reaches every output; oneDNN's Conv with a fused Clip (ReLU6) clamps NaN to a bound (its min/max
  // instructions return the non-NaN operand), so this model's optimized outputs stay finite.
  CHECK(all(outputs_with(fp32_model(), nan, true), [](float v) { return std::isnan(v); }));
  CHECK_NOTHROW(outputs_with(fp32_model(), nan, false));
  // INT8: the input Quantize maps NaN to the lowest level, as it maps -Inf, in both implementations, and
  // the rest of the network sees only integers: finite outputs, those of an input at its minimum.
  for (bool reference : {false, true}) {
    CAPTURE(reference);
    const std::vector<float> with_nan = outputs_with(int8_model(), nan, reference);
    CHECK(all(with_nan, [](float v) { return std::isfinite(v); }));
    CHECK(same_bits(with_nan, outputs_with(int8_model(), -inf, reference)));
    CHECK_FALSE(same_bits(with_nan, outputs_with(int8_model(), std::nullopt, reference)));
    CHECK(all(outputs_with(int8_model(), inf, reference), [](float v) { return std::isfinite(v); }));
  }
}

TEST_CASE("images without pixels or with huge headers are refused from the header") {
  // PNG: signature, then an IHDR chunk (length 13, "IHDR", width, height, bit depth 8, colour type 2 = RGB,
  // compression, filter, interlace, CRC) and nothing else: no pixel data at all.
  auto png_header = [](uint32_t width, uint32_t height) {
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    for (uint32_t v : {width, height})
      for (int shift = 24; shift >= 0; shift -= 8) png.push_back(uint8_t(v >> shift));
    png.insert(png.end(), {8, 2, 0, 0, 0, 0, 0, 0, 0});
    return png;
  };
  const std::string limits = "pixels; refusing images above 16384 pixels per side or 100 megapixels";
  const std::vector<uint8_t> huge = png_header(12000, 12000);
  CHECK_THROWS_WITH_AS(octet::decode_image_memory(huge.data(), huge.size(), "huge.png"),
                       ("huge.png: image is 12000x12000 " + limits).c_str(), octet::Error);
  // stb refuses PNG headers above 2^30 bytes of pixels itself, with its generic reason.
  const std::vector<uint8_t> huger = png_header(20000, 20000);
  CHECK_THROWS_WITH_AS(octet::decode_image_memory(huger.data(), huger.size(), "huger.png"),
                       "huger.png: cannot decode image: unknown image type", octet::Error);
  const std::vector<uint8_t> wide = png_header(16385, 1);
  CHECK_THROWS_WITH_AS(octet::decode_image_memory(wide.data(), wide.size(), "wide.png"),
                       ("wide.png: image is 16385x1 " + limits).c_str(), octet::Error);
  // Zero-sized: stb refuses a PNG without pixels in its own words; a BMP of 0 rows reaches octet's check.
  const std::vector<uint8_t> empty_png = png_header(0, 5);
  CHECK_THROWS_WITH_AS(octet::decode_image_memory(empty_png.data(), empty_png.size(), "empty.png"),
                       doctest::Contains("empty.png: cannot decode image: "), octet::Error);
  std::vector<uint8_t> bmp = {'B', 'M', 54, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0,  40,
                              0,   0,   0,  4, 0, 0, 0, 0, 0, 0, 0,  1, 0, 24, 0};
  bmp.resize(54, 0);
  CHECK_THROWS_WITH_AS(octet::decode_image_memory(bmp.data(), bmp.size(), "empty.bmp"),
                       doctest::Contains("empty.bmp: "), octet::Error);
}

namespace {

// Runs octet-convert with `args` and returns its exit code and standard error.
std::pair<int, std::string> run_convert(const std::vector<std::string>& args) {
  std::vector<std::string> command = {OCTET_CONVERT};
  command.insert(command.end(), args.begin(), args.end());
  const octet::testing::ProcessResult result = octet::testing::run_process(command, kScratch);
  return {result.exit_code, result.err};
}

}  // namespace

TEST_CASE("octet-convert refuses missing inputs with exit code 1, naming the file" * doctest::test_suite("models")) {
  const std::string onnx = octet::testing::kShared + "/models/mobilenet_v1_025/model.onnx";
  const std::string out = (kScratch / "convert-out").string();
  const std::string missing = (kScratch / "missing-labels.txt").string();
  auto [code, err] = run_convert({onnx, "-o", out, "--preset", "tf", "--labels", missing});
  CHECK(code == 1);
  CHECK(contains(err, missing));
  CHECK_FALSE(fs::exists(fs::path(out) / "model.json"));  // nothing written

  std::tie(code, err) = run_convert({(kScratch / "missing.onnx").string(), "-o", out});
  CHECK(code == 1);
  CHECK(contains(err, "missing.onnx"));

  const std::string no_images = (kScratch / "no-images").string();
  std::tie(code, err) = run_convert({onnx, "-o", out, "--preset", "tf", "--calibrate", no_images});
  CHECK(code == 1);
  CHECK(contains(err, no_images));
}
