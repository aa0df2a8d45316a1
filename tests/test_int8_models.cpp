// The shared models quantized to INT8 by the default policy (calibrated on every 10th shared image, 100
// images), evaluated against their FP32 versions on images outside the calibration split:
//   - ResNet-50 (random weights: fidelity only): logit SQNR >= 15 dB on 100 held-out images;
//   - MobileNet v1 0.25 within 3 Top-1 points of FP32 and Darknet-tiny within 1, on the 900 held-out images;
//   - MobileNet with per-tensor weights measurably worse (the research's known result);
//   - INT8 ResNet-50 files at most 27% of the FP32 ones; no oneDNN `ref` implementation on the INT8 path;
//   - the default policy's files byte-identical to the recorded digests (kDefaultDigests).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "converters/quant/convert.h"
#include "graph/model_format.h"
#include "octet/evaluation.h"
#include "octet/octet.h"

namespace fs = std::filesystem;

namespace {

const std::string kShared = OCTET_SHARED_DIR;
const std::string kImages = kShared + "/data/imagenet-samples";

struct ModelSpec {
  std::string name, preset, labels;
};

const ModelSpec kResNet{"resnet50", "torchvision", kShared + "/data/synset_words.txt"};
const ModelSpec kMobileNet{"mobilenet_v1_025", "tf", kShared + "/data/synset_words.txt"};
const ModelSpec kDarknet{"darknet_tiny", "unit", kShared + "/models/darknet_tiny/labels_wnid.txt"};

// Converts (FP32 when quantize is null), writes under the build folder and loads the result back.
std::shared_ptr<const octet::Model> convert(const ModelSpec& spec, const std::string& variant,
                                            const octet::quant::QuantizeOptions* quantize) {
  octet::quant::ConvertOptions options;
  options.preprocess.preset = spec.preset;
  options.preprocess.labels_file = spec.labels;
  if (quantize) {
    options.calibrate = kImages;
    options.calib_count = 100;
    options.quantize = *quantize;
  }
  std::string out = std::string(OCTET_BUILD_DIR) + "/test-int8-models/" + spec.name + "_" + variant;
  octet::write_model(octet::quant::convert_onnx(kShared + "/models/" + spec.name + "/model.onnx", options, nullptr),
                     out);
  return octet::Model::load(out);
}

std::vector<std::string> held_out() { return octet::held_out_images(octet::list_images(kImages, 0, 1, 0)); }

octet::EvaluationResult evaluate(const std::shared_ptr<const octet::Model>& model,
                                 const std::shared_ptr<const octet::Model>& fp32,
                                 const std::vector<std::string>& images, bool labels) {
  std::vector<int> truth = labels ? octet::labels_from_wnid(images, model->labels()) : std::vector<int>{};
  return octet::evaluate(model, fp32, images, truth, 0, nullptr);
}

void check_no_ref_implementation(const std::shared_ptr<const octet::Model>& model) {
  octet::Session session(model);
  for (const octet::LayerInfo& layer : session.layers())
    CHECK_MESSAGE(layer.implementation.find("ref") == std::string::npos,
                  layer.node << " (" << layer.op << ") runs " << layer.implementation);
}

// FNV-1a 64 of model.json and model.bin made by the default policy (options as convert() sets them), recorded
// from the conversion before the converters/ restructure (issue 11) so that reorganising code provably leaves
// the models alone. A deliberate change to the policy or the format updates them, and says so in its commit.
// Recorded with OMP_NUM_THREADS=1, as ctest runs the suite (tests/run_all.sh); other thread counts may round
// differently inside oneDNN, so the check runs only then.
const std::map<std::string, std::pair<const char*, const char*>> kDefaultDigests = {
    {"resnet50", {"edf144647d6dcc41", "6744daea59a97ff5"}},
    {"mobilenet_v1_025", {"bdb94a849b03db92", "5117846e1d04832c"}},
    {"darknet_tiny", {"d6944be410ba90bd", "8403abe7c0f0f520"}},
};

std::string fnv1a64(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot read " << path);
  uint64_t hash = 0xcbf29ce484222325ull;
  for (std::istreambuf_iterator<char> it(in), end; it != end; ++it) {
    hash ^= static_cast<unsigned char>(*it);
    hash *= 0x100000001b3ull;
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

void check_default_digests(const ModelSpec& spec) {
  const char* threads = std::getenv("OMP_NUM_THREADS");
  if (!threads || std::strcmp(threads, "1") != 0) {
    MESSAGE("digests not compared: they were recorded with OMP_NUM_THREADS=1");
    return;
  }
  const std::string dir = std::string(OCTET_BUILD_DIR) + "/test-int8-models/" + spec.name + "_int8/";
  CHECK_MESSAGE(fnv1a64(dir + "model.json") == kDefaultDigests.at(spec.name).first, spec.name << "/model.json changed");
  CHECK_MESSAGE(fnv1a64(dir + "model.bin") == kDefaultDigests.at(spec.name).second, spec.name << "/model.bin changed");
}

size_t file_bytes(const std::string& folder) {
  return fs::file_size(folder + "/model.json") + fs::file_size(folder + "/model.bin");
}

}  // namespace

TEST_CASE("ResNet-50 INT8: logit SQNR >= 15 dB on 100 held-out images, files <= 27% of FP32, no ref kernels") {
  octet::quant::QuantizeOptions defaults;
  // Under the sanitizers (tests/run_all.sh stage 5 sets OCTET_SANITIZER_RUN) the default policy's ResNet-50
  // conversion (GPTQ's loops and the equalization comparison, instrumented) would push CI past its time budget
  // (see RESULTS.md, Design measurements): there it rounds to nearest without equalizing. The default policy's
  // conversion of ResNet-50 runs in the uninstrumented suite; GPTQ and equalization run instrumented on Darknet-tiny
  // here and in their unit tests.
  if (std::getenv("OCTET_SANITIZER_RUN")) {
    defaults.rounding = octet::quant::WeightRounding::nearest;
    defaults.equalize_alpha = -1;
    MESSAGE("sanitizer run: ResNet-50 converted with round-to-nearest weights and no equalization");
  }
  auto fp32 = convert(kResNet, "fp32", nullptr);
  auto int8 = convert(kResNet, "int8", &defaults);
  std::vector<std::string> images = held_out();
  images.resize(100);
  octet::EvaluationResult r = evaluate(int8, fp32, images, false);
  MESSAGE("ResNet-50 INT8 vs FP32 on 100 held-out images: SQNR " << r.sqnr_db << " dB, Top-1 agreement "
                                                                 << 100 * r.top1_agreement << "%");
  CHECK(r.sqnr_db >= 15.0);
  std::string dir = std::string(OCTET_BUILD_DIR) + "/test-int8-models/resnet50_";
  double ratio = static_cast<double>(file_bytes(dir + "int8")) / static_cast<double>(file_bytes(dir + "fp32"));
  MESSAGE("ResNet-50 INT8 files are " << 100 * ratio << "% of FP32");
  CHECK(ratio <= 0.27);
  check_no_ref_implementation(int8);
  if (!std::getenv("OCTET_SANITIZER_RUN")) check_default_digests(kResNet);
}

TEST_CASE("MobileNet v1 0.25 INT8 within 3 Top-1 points of FP32; per-tensor weights measurably worse") {
  octet::quant::QuantizeOptions per_channel, per_tensor;
  per_tensor.per_channel = false;
  auto fp32 = convert(kMobileNet, "fp32", nullptr);
  auto int8 = convert(kMobileNet, "int8", &per_channel);
  auto int8_pt = convert(kMobileNet, "int8_per_tensor", &per_tensor);
  std::vector<std::string> images = held_out();
  REQUIRE(images.size() == 900);
  octet::EvaluationResult f = evaluate(fp32, nullptr, images, true);
  octet::EvaluationResult q = evaluate(int8, fp32, images, true);
  octet::EvaluationResult t = evaluate(int8_pt, fp32, images, true);
  MESSAGE("MobileNet Top-1 FP32 " << 100 * f.top1 << "%, INT8 per-channel " << 100 * q.top1 << "% (SQNR " << q.sqnr_db
                                  << " dB), per-tensor " << 100 * t.top1 << "%");
  CHECK(q.top1 >= f.top1 - 0.03);
  CHECK(t.top1 <= q.top1 - 0.05);
  check_no_ref_implementation(int8);
  if (!std::getenv("OCTET_SANITIZER_RUN")) check_default_digests(kMobileNet);
}

TEST_CASE("Darknet-tiny INT8 within 1 Top-1 point of FP32") {
  octet::quant::QuantizeOptions defaults;
  auto fp32 = convert(kDarknet, "fp32", nullptr);
  auto int8 = convert(kDarknet, "int8", &defaults);
  std::vector<std::string> images = held_out();
  octet::EvaluationResult f = evaluate(fp32, nullptr, images, true);
  octet::EvaluationResult q = evaluate(int8, fp32, images, true);
  MESSAGE("Darknet-tiny Top-1 FP32 " << 100 * f.top1 << "%, INT8 " << 100 * q.top1 << "% (SQNR " << q.sqnr_db
                                     << " dB, agreement " << 100 * q.top1_agreement << "%)");
  CHECK(q.top1 >= f.top1 - 0.01);
  check_no_ref_implementation(int8);
  if (!std::getenv("OCTET_SANITIZER_RUN")) check_default_digests(kDarknet);
}
