// evaluate MODEL --images DIR [--labels-from wnid|FILE] [--reference FP32_MODEL] [--skip-calibration]
//          [--json OUT.json] [--threads N]
// Top-1/Top-5 accuracy of a model on a folder of images and, against an FP32 reference, the fidelity of its
// logits (top-1 agreement, mean KL, SQNR), with the median time of a model run. Table on stdout, progress
// on stderr, everything (with each image's prediction) as JSON to --json.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "converters/quant/calibration.h"
#include "octet/evaluation.h"

int main(int argc, char** argv) {
  CLI::App app{"evaluate: accuracy and FP32 fidelity of an octet image classifier"};
  std::string model_path, images_path, labels_from, reference_path, json_path;
  bool skip_calibration = false;
  int threads = 0;
  app.add_option("model", model_path, "model folder (model.json + model.bin)")->required();
  app.add_option("--images", images_path, "folder of images (sorted by name) or a file listing them")->required();
  app.add_option("--labels-from", labels_from,
                 "wnid: file names start with a wnid of the model's labels; or a file of 'filename index' lines");
  app.add_option("--reference", reference_path, "FP32 model to compare the logits with");
  app.add_flag("--skip-calibration", skip_calibration,
               "leave out every 10th image starting with the first (the converter's calibration images)");
  app.add_option("--json", json_path, "write the results as JSON to this file");
  app.add_option("--threads", threads, "threads per model (0 = all cores)");
  CLI11_PARSE(app, argc, argv);
  try {
    auto model = octet::Model::load(model_path);
    std::shared_ptr<const octet::Model> reference;
    if (!reference_path.empty()) reference = octet::Model::load(reference_path);
    if (!std::filesystem::exists(images_path)) throw octet::Error("--images: '" + images_path + "' does not exist");
    std::vector<std::string> images = octet::list_images(images_path, 0, 1, 0);
    if (skip_calibration) images = octet::held_out_images(images);
    std::vector<int> labels;
    if (labels_from == "wnid") labels = octet::labels_from_wnid(images, model->labels());
    else if (!labels_from.empty()) labels = octet::labels_from_file(images, labels_from);
    const auto progress = [](size_t done, size_t total) {
      std::fprintf(stderr, "\revaluating %zu/%zu", done, total);
      if (done == total) std::fprintf(stderr, "\n");
    };
    const octet::EvaluationResult result = octet::evaluate(model, reference, images, labels, threads, progress);
    std::fputs(octet::evaluation_table(result).c_str(), stdout);
    if (!json_path.empty()) {
      std::ofstream out(json_path);
      out << octet::evaluation_json(result);
      if (!out) throw octet::Error("cannot write '" + json_path + "'");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "evaluate: %s\n", e.what());
    return 1;
  }
  return 0;
}
