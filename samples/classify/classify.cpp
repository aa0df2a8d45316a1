// classify MODEL IMAGE... [--threads N]
// Prints the five most likely classes of each image with their softmax probabilities, and the time of the
// model run alone. The model carries its preprocessing and labels: convert it with octet-convert --preset and
// --labels (lines "wnid name", e.g. ImageNet's synset_words.txt; a bare wnid is shown as it is).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "octet/image.h"
#include "octet/octet.h"

namespace {

// "n01443537 goldfish, Carassius auratus" -> "goldfish, Carassius auratus"; other lines are shown whole.
std::string readable_label(const std::string& line) {
  const bool starts_with_wnid =
      line.size() > 10 && line[0] == 'n' && line[9] == ' ' &&
      std::all_of(line.begin() + 1, line.begin() + 9, [](char c) { return c >= '0' && c <= '9'; });
  return starts_with_wnid ? line.substr(10) : line;
}

// softmax, shifted by the largest logit so exp cannot overflow.
std::vector<double> softmax(const float* logits, size_t n) {
  const double largest = *std::max_element(logits, logits + n);
  std::vector<double> probabilities(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += probabilities[i] = std::exp(logits[i] - largest);
  for (double& p : probabilities) p /= sum;
  return probabilities;
}

// The k most probable classes, most probable first; equal probabilities keep class order.
std::vector<size_t> top_classes(const std::vector<double>& probabilities, size_t k) {
  std::vector<size_t> order(probabilities.size());
  std::iota(order.begin(), order.end(), 0);
  k = std::min(k, order.size());
  std::partial_sort(order.begin(), order.begin() + long(k), order.end(), [&](size_t a, size_t b) {
    return probabilities[a] != probabilities[b] ? probabilities[a] > probabilities[b] : a < b;
  });
  order.resize(k);
  return order;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"classify: the top-5 classes of images with an octet model"};
  std::string model_path;
  std::vector<std::string> images;
  int threads = 0;
  app.add_option("model", model_path, "model folder (model.json + model.bin)")->required();
  app.add_option("images", images, "image files: JPEG, PNG or BMP (nothing else is read)")->required();
  app.add_option("--threads", threads, "threads (0 = all cores)")->check(CLI::Range(0, octet::kMaxThreads));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;  // --help exits 0; a bad flag prints why and exits 1
  }
  try {
    auto model = octet::Model::load(model_path);
    octet::Session session(model, {/*batch*/ 1, threads, false});
    session.run();  // warm-up: the first run pays for page faults and cold caches, not for the model
    const std::vector<std::string>& labels = model->labels();
    for (const std::string& path : images) {
      octet::load_image_into(*model, path, session.input(0), 0);
      const auto start = std::chrono::steady_clock::now();
      session.run();
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      const octet::Tensor logits = session.output(0);
      // NaN or Inf logits give no ranking (softmax would print NaN probabilities): refused.
      for (int64_t c = 0; c < logits.elements(); ++c)
        if (!std::isfinite(logits.data[c]))
          throw octet::Error(path + ": output " + std::to_string(c) + " of the model is " +
                             std::to_string(logits.data[c]) + " (not finite); its weights or scales are broken");
      const std::vector<double> probabilities = softmax(logits.data, size_t(logits.elements()));
      std::printf("%s (%.2f ms)\n", path.c_str(), ms);
      for (size_t c : top_classes(probabilities, 5)) {
        const std::string name = c < labels.size() ? readable_label(labels[c]) : "class " + std::to_string(c);
        std::printf("  %.4f  %4zu  %s\n", probabilities[c], c, name.c_str());
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "classify: %s\n", e.what());
    return 1;
  }
  return 0;
}
