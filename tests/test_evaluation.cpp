// Evaluation (octet/evaluation.h) and the classify / evaluate samples: label mapping by wnid (including
// Darknet's own class order) and from a file, the metrics on hand-computed cases, the held-out split, an
// end-to-end evaluation of the FP32 MobileNet against itself, the goldfish acceptance check with both real
// models, and bad inputs to both tools (exit code 1, stderr naming the file).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "converters/quant/calibration.h"
#include "graph/quantization.h"
#include "octet/evaluation.h"
#include "support/process.h"

namespace fs = std::filesystem;

namespace {

const std::string kShared = OCTET_SHARED_DIR;
const std::string kSamples = kShared + "/data/imagenet-samples";
const std::string kSynsetWords = kShared + "/data/synset_words.txt";
const std::string kDarknetWnids = kShared + "/models/darknet_tiny/labels_wnid.txt";
const std::string kGoldfish = kSamples + "/n01443537_goldfish.JPEG";
const fs::path kScratch = fs::path(OCTET_BUILD_DIR) / "test-evaluation";
const std::string kClassify = std::string(OCTET_BUILD_DIR) + "/samples/classify";
const std::string kEvaluate = std::string(OCTET_BUILD_DIR) + "/samples/evaluate";

std::string write_scratch(const std::string& name, const std::string& text) {
  fs::create_directories(kScratch);
  const std::string path = (kScratch / name).string();
  std::ofstream(path) << text;
  return path;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The message of the octet::Error `action` throws ("" if none).
template <typename Action>
std::string error_of(Action action) {
  try {
    action();
  } catch (const octet::Error& e) {
    return e.what();
  }
  return "";
}

using Run = octet::testing::ProcessResult;
using octet::testing::read_text;

// Runs a program with arguments, capturing stdout and stderr.
Run run(const std::vector<std::string>& command) { return octet::testing::run_process(command, kScratch); }

// Converts a shared ONNX model to FP32 under the scratch folder, once per test run.
std::string convert(const std::string& model, const std::string& preset, const std::string& labels) {
  const std::string output = (kScratch / (model + "_fp32")).string();
  const Run result = run({OCTET_CONVERT, kShared + "/models/" + model + "/model.onnx", "-o", output, "--preset", preset,
                          "--labels", labels});
  REQUIRE_MESSAGE(result.exit_code == 0, result.err);
  return output;
}

const std::string& mobilenet_fp32() {
  static const std::string path = convert("mobilenet_v1_025", "tf", kSynsetWords);
  return path;
}

// Darknet in its own class order with readable names: "wnid name" lines from labels_wnid.txt and
// synset_words.txt (what the demo passes to octet-convert --labels).
const std::string& darknet_fp32() {
  static const std::string path = [] {
    std::string lines;
    for (const std::string& label : octet::resolve_wnid_labels(kDarknetWnids, kSynsetWords)) lines += label + "\n";
    return convert("darknet_tiny", "unit", write_scratch("darknet_labels.txt", lines));
  }();
  return path;
}

// A few of the held-out shared images, spread over the classes.
std::vector<std::string> some_samples(size_t count) {
  const std::vector<std::string> held_out = octet::held_out_images(octet::list_images(kSamples, 0, 1, 0));
  std::vector<std::string> chosen;
  for (size_t i = 0; i < count; ++i) chosen.push_back(held_out[i * held_out.size() / count]);
  return chosen;
}

}  // namespace

TEST_CASE("labels_from_wnid maps file names to the model's own class order" * doctest::test_suite("models")) {
  const std::vector<std::string> images = {kGoldfish, kSamples + "/n01440764_tench.JPEG"};
  CHECK(octet::labels_from_wnid(images, read_lines(kSynsetWords)) == std::vector<int>{1, 0});
  // Darknet: output i is line i of labels_wnid.txt, and goldfish is on line 450.
  const std::vector<int> darknet = octet::labels_from_wnid(images, read_lines(kDarknetWnids));
  CHECK(darknet[0] == 449);
  CHECK(read_lines(kDarknetWnids)[size_t(darknet[1])] == "n01440764");

  const std::string unknown =
      error_of([] { octet::labels_from_wnid({"/x/n99999999_nothing.JPEG"}, {"n01440764 tench"}); });
  CHECK(unknown.find("/x/n99999999_nothing.JPEG") != std::string::npos);
  CHECK(unknown.find("n99999999") != std::string::npos);
  const std::string no_labels = error_of([] { octet::labels_from_wnid({"/x/n01440764_tench.JPEG"}, {}); });
  CHECK(no_labels.find("/x/n01440764_tench.JPEG") != std::string::npos);
  CHECK(no_labels.find("no labels") != std::string::npos);
}

TEST_CASE("labels_from_file reads 'filename index' lines") {
  const std::string good = write_scratch("labels_good.txt", "# comment\na.jpg 3\n\nb c.png\t7\r\n");
  CHECK(octet::labels_from_file({"/x/b c.png", "/y/a.jpg"}, good) == std::vector<int>{7, 3});

  const std::string missing = error_of([&] { octet::labels_from_file({"/x/a.jpg", "/x/d.jpg"}, good); });
  CHECK(missing.find("/x/d.jpg") != std::string::npos);
  CHECK(missing.find("labels_good.txt") != std::string::npos);

  for (const char* bad : {"a.jpg 3\nb.jpg three\n", "a.jpg 3\nb.jpg\n", "a.jpg 3\nb.jpg -1\n", "a.jpg 3\na.jpg 4\n"}) {
    CAPTURE(bad);
    const std::string file = write_scratch("labels_bad.txt", bad);
    CHECK(error_of([&] { octet::labels_from_file({"/x/a.jpg"}, file); }).find("labels_bad.txt:2:") !=
          std::string::npos);
  }
  CHECK(error_of([] {
          octet::labels_from_file({"a.jpg"}, "/nonexistent/labels.txt");
        }).find("/nonexistent/labels.txt") != std::string::npos);
}

TEST_CASE("labels_from: --labels-from's wnid, label file or none") {
  const std::vector<std::string> images = {"/x/n01443537_goldfish.JPEG", "/y/n01440764_tench.JPEG"};
  const std::vector<std::string> model_labels = {"n01440764 tench", "n01443537 goldfish"};
  CHECK(octet::labels_from("", images, model_labels).empty());
  CHECK(octet::labels_from("wnid", images, model_labels) == std::vector<int>{1, 0});
  const std::string file = write_scratch("labels_from.txt", "n01443537_goldfish.JPEG 5\nn01440764_tench.JPEG 9\n");
  CHECK(octet::labels_from(file, images, model_labels) == std::vector<int>{5, 9});
}

TEST_CASE("label names and wnid resolution" * doctest::test_suite("models")) {
  CHECK(octet::label_name("n01443537 goldfish, Carassius auratus") == "goldfish, Carassius auratus");
  CHECK(octet::label_name("n01443537") == "n01443537");
  CHECK(octet::label_name("tench, Tinca tinca") == "tench, Tinca tinca");

  const std::vector<std::string> darknet = octet::resolve_wnid_labels(kDarknetWnids, kSynsetWords);
  REQUIRE(darknet.size() == 1000);
  CHECK(darknet[449] == "n01443537 goldfish, Carassius auratus");
  const std::string wnids = write_scratch("wnids_bad.txt", "n01443537\nn99999999\n");
  const std::string unknown = error_of([&] { octet::resolve_wnid_labels(wnids, kSynsetWords); });
  CHECK(unknown.find("wnids_bad.txt:2:") != std::string::npos);
  CHECK(unknown.find("n99999999") != std::string::npos);
}

TEST_CASE("metrics on hand-computed cases") {
  const float uniform[] = {0, 0}, one_to_three[] = {0, std::log(3.0f)}, shifted[] = {1000, 1000 + std::log(3.0f)};
  // Logits near 1000 would overflow a plain exp; their float rounding (ulp 6e-5) moves p by ~1e-5.
  for (const float* logits : {one_to_three, shifted}) {
    const std::vector<double> p = octet::softmax(logits, 2);
    CHECK(p[0] == doctest::Approx(0.25).epsilon(1e-4));
    CHECK(p[1] == doctest::Approx(0.75).epsilon(1e-4));
  }
  CHECK(octet::kl_divergence(one_to_three, one_to_three, 2) == 0.0);
  CHECK(octet::kl_divergence(one_to_three, shifted, 2) == doctest::Approx(0.0).epsilon(1e-6));
  // KL([1/4, 3/4] || [1/2, 1/2]) = 1/4 ln(1/2) + 3/4 ln(3/2).
  CHECK(octet::kl_divergence(one_to_three, uniform, 2) ==
        doctest::Approx(0.25 * std::log(0.5) + 0.75 * std::log(1.5)).epsilon(1e-6));

  // Ties rank by lower index, NaN last.
  const float scores[] = {1, 3, 3, 2, 3, std::numeric_limits<float>::quiet_NaN(), 0};
  CHECK(octet::top_k(scores, 7, 5) == std::vector<int>{1, 2, 4, 3, 0});
  CHECK(octet::top_k(scores, 7, 10) == std::vector<int>{1, 2, 4, 3, 0, 6, 5});
  CHECK(octet::in_top_k(scores, 7, 0, 5));
  CHECK_FALSE(octet::in_top_k(scores, 7, 6, 5));
  CHECK_FALSE(octet::in_top_k(scores, 7, 4, 2));
  const float other[] = {0, 5, 5, 0, 0, 0, 0}, differs[] = {0, 0, 5, 0, 0, 0, 0};
  CHECK(octet::top1_agrees(scores, other, 7));
  CHECK_FALSE(octet::top1_agrees(scores, differs, 7));

  // 10 log10((9 + 16) / (0.09 + 0.16)) = 20 dB.
  const float x[] = {3, 4}, noisy[] = {3.3f, 3.6f};
  CHECK(octet::sqnr_db(x, noisy, 2) == doctest::Approx(20.0).epsilon(1e-5));
}

TEST_CASE("held-out images leave out every 10th starting with the first") {
  std::vector<std::string> all;
  for (int i = 0; i < 1000; ++i) all.push_back(std::to_string(i));
  const std::vector<std::string> held_out = octet::held_out_images(all);
  REQUIRE(held_out.size() == 900);
  CHECK(held_out.front() == "1");
  CHECK(held_out[8] == "9");
  CHECK(held_out[9] == "11");
  CHECK(held_out.back() == "999");
  for (const std::string& name : held_out) CHECK(std::stoi(name) % 10 != 0);
  CHECK(octet::held_out_images(all, 4).size() == 750);
  CHECK(octet::held_out_images({"only"}).empty());
  CHECK_FALSE(error_of([&] { octet::held_out_images(all, 0); }).empty());
}

TEST_CASE("JSON and table formatting") {
  octet::EvaluationResult result;
  result.images = 2;
  result.has_reference = true;
  result.top1_agreement = 1;
  result.sqnr_db = std::numeric_limits<double>::infinity();
  result.ms_per_image = 1.5;
  result.predictions = {4, 7};
  const nlohmann::json json = nlohmann::json::parse(octet::evaluation_json(result));
  CHECK(json["images"] == 2);
  CHECK(json["top1"].is_null());
  CHECK(json["top1_agreement"] == 1.0);
  CHECK(json["mean_kl"] == 0.0);
  CHECK(json["sqnr_db"].is_null());
  CHECK(json["ms_per_image"] == 1.5);
  CHECK(json["predictions"] == nlohmann::json::array({4, 7}));
  const std::string table = octet::evaluation_table(result);
  CHECK(table.find("top-1 agreement") != std::string::npos);
  CHECK(table.find("top-5") == std::string::npos);  // no labels: no accuracy rows
}

TEST_CASE("evaluate: FP32 MobileNet against itself" * doctest::test_suite("models")) {
  const auto model = octet::Model::load(mobilenet_fp32());
  const std::vector<std::string> images = some_samples(20);
  const std::vector<int> labels = octet::labels_from_wnid(images, model->labels());
  size_t progress_calls = 0;
  const octet::EvaluationResult r =
      octet::evaluate(model, octet::Model::load(mobilenet_fp32()), images, labels, 1, [&](size_t done, size_t total) {
        CHECK(done == ++progress_calls);
        CHECK(total == 20);
      });
  CHECK(progress_calls == 20);
  CHECK(r.images == 20);
  CHECK(r.has_labels);
  CHECK(r.has_reference);
  CHECK(r.top1_agreement == 1.0);
  CHECK(r.mean_kl == doctest::Approx(0.0));
  CHECK(r.sqnr_db > 100.0);
  CHECK(r.ms_per_image > 0.0);
  REQUIRE(r.predictions.size() == 20);
  size_t hits = 0;
  for (size_t i = 0; i < 20; ++i) hits += r.predictions[i] == labels[i];
  CHECK(r.top1 == double(hits) / 20);
  CHECK(r.top5 >= r.top1);
  CHECK(r.top1 >= 0.3);  // 57.6% on all 1000 shared images; 20 of them cannot all be wrong

  CHECK(error_of([&] { octet::evaluate(model, nullptr, images, {1000}, 1, nullptr); }).find("label") !=
        std::string::npos);
  CHECK(error_of([&] { octet::evaluate(model, nullptr, {images[0]}, {1000}, 1, nullptr); }).find(images[0]) !=
        std::string::npos);
}

TEST_CASE("evaluate tool: table, JSON and a list of images" * doctest::test_suite("models")) {
  std::string list;
  for (const std::string& image : some_samples(10)) list += image + "\n";
  const std::string json_path = (kScratch / "evaluate.json").string();
  const Run result = run({kEvaluate, mobilenet_fp32(), "--images", write_scratch("images.txt", list), "--labels-from",
                          "wnid", "--reference", mobilenet_fp32(), "--json", json_path, "--threads", "1"});
  REQUIRE_MESSAGE(result.exit_code == 0, result.err);
  CHECK(result.out.find("top-1 agreement") != std::string::npos);
  // stderr is a file here, not a terminal: progress comes as whole lines, one per tenth, never '\r'.
  CHECK(result.err.find("evaluating: 1/10\n") != std::string::npos);
  CHECK(result.err.find("evaluating: 10/10\n") != std::string::npos);
  CHECK(result.err.find('\r') == std::string::npos);
  const nlohmann::json json = nlohmann::json::parse(read_text(json_path));
  CHECK(json["images"] == 10);
  CHECK(json["top1_agreement"] == 1.0);
  CHECK(json["predictions"].size() == 10);
}

TEST_CASE("classify: the goldfish with both real models in FP32" * doctest::test_suite("models")) {
  const Run mobilenet = run({kClassify, mobilenet_fp32(), kGoldfish, "--threads", "1"});
  REQUIRE_MESSAGE(mobilenet.exit_code == 0, mobilenet.err);
  MESSAGE(mobilenet.out);
  std::istringstream lines(mobilenet.out);
  std::string header, first;
  std::getline(lines, header);
  std::getline(lines, first);
  CHECK(header.find("n01443537_goldfish.JPEG") != std::string::npos);
  CHECK(header.find(" ms)") != std::string::npos);
  CHECK(first.find("   1  goldfish, Carassius auratus") != std::string::npos);

  const Run darknet = run({kClassify, darknet_fp32(), kGoldfish, "--threads", "1"});
  REQUIRE_MESSAGE(darknet.exit_code == 0, darknet.err);
  MESSAGE(darknet.out);
  std::istringstream darknet_lines(darknet.out);
  std::getline(darknet_lines, header);
  std::getline(darknet_lines, first);
  CHECK(first.find(" 449  goldfish, Carassius auratus") != std::string::npos);
}

TEST_CASE("classify and evaluate: bad inputs exit with 1 and name the file" * doctest::test_suite("models")) {
  const std::string missing_model = (kScratch / "no_such_model").string();
  const std::string missing_image = (kScratch / "no_such_image.jpg").string();
  const std::string not_an_image = write_scratch("not_an_image.jpg", "this is text, not a JPEG\n");
  const std::string wrong_labels = write_scratch("wrong_labels.txt", "some_other_file.JPEG 3\n");
  const std::string images_dir = (kScratch / "bad_images").string();
  fs::create_directories(images_dir);
  fs::copy_file(not_an_image, images_dir + "/n01443537_text.jpg", fs::copy_options::overwrite_existing);

  struct Case {
    std::vector<std::string> command;
    std::string tool, named;
  };
  const std::vector<Case> cases = {
      {{kClassify, missing_model, kGoldfish}, "classify", missing_model},
      {{kClassify, mobilenet_fp32(), missing_image}, "classify", missing_image},
      {{kClassify, mobilenet_fp32(), not_an_image}, "classify", not_an_image},
      {{kEvaluate, missing_model, "--images", kSamples}, "evaluate", missing_model},
      {{kEvaluate, mobilenet_fp32(), "--images", missing_image}, "evaluate", missing_image},
      {{kEvaluate, mobilenet_fp32(), "--images", images_dir}, "evaluate", images_dir + "/n01443537_text.jpg"},
      {{kEvaluate, mobilenet_fp32(), "--images", kSamples, "--labels-from", wrong_labels}, "evaluate", wrong_labels},
      {{kEvaluate, mobilenet_fp32(), "--images", kSamples, "--labels-from", missing_image}, "evaluate", missing_image},
      {{kEvaluate, mobilenet_fp32(), "--images", kSamples, "--reference", missing_model}, "evaluate", missing_model},
  };
  for (const Case& c : cases) {
    const Run result = run(c.command);
    CAPTURE(c.command.back());
    CAPTURE(result.err);
    CHECK(result.exit_code == 1);
    CHECK(result.err.rfind(c.tool + ": ", 0) == 0);
    CHECK(result.err.find(c.named) != std::string::npos);
  }
}
