// evaluate MODEL --images DIR [--labels-from wnid|FILE] [--reference FP32_MODEL] [--skip-calibration]
//          [--json FILE|-] [--threads N]
// Top-1/Top-5 accuracy of a model on a folder of images and, against an FP32 reference, the fidelity of its
// logits (top-1 agreement, mean KL, SQNR), with the median time of a model run. Table on stdout, progress
// on stderr, everything (with each image's prediction) as JSON to --json FILE, or to stdout with --json -
// (benchmark's --json means the same).
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "octet/evaluation.h"
#include "octet/progress.h"

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
  app.add_option("--json", json_path, "write the results as JSON to FILE ('-': stdout, instead of the table)");
  app.add_option("--threads", threads, "threads per model (0 = all cores)")->check(CLI::Range(0, octet::kMaxThreads));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;  // --help exits 0; a bad flag prints why and exits 1
  }
  try {
    // A --json file that cannot be written is refused before the run, not after it.
    std::ofstream json_out;
    if (!json_path.empty() && json_path != "-") {
      if (std::filesystem::is_directory(json_path))
        throw octet::Error("--json '" + json_path + "': is a folder; give a file name");
      json_out.open(json_path);
      if (!json_out) throw octet::Error("--json '" + json_path + "': cannot write: " + std::strerror(errno));
    }
    auto model = octet::Model::load(model_path);
    std::shared_ptr<const octet::Model> reference;
    if (!reference_path.empty()) reference = octet::Model::load(reference_path);
    if (!std::filesystem::exists(images_path)) throw octet::Error("--images: '" + images_path + "' does not exist");
    std::vector<std::string> images = octet::list_images(images_path, 0, 1, 0);
    if (skip_calibration) images = octet::held_out_images(images);
    const std::vector<int> labels = octet::labels_from(labels_from, images, model->labels());
    octet::ProgressLine progress_line;  // '\r' on a terminal, a line per tenth in a log
    const auto progress = [&progress_line](size_t done, size_t total) {
      progress_line.update("evaluating", done, total);
    };
    const octet::EvaluationResult result = octet::evaluate(model, reference, images, labels, threads, progress);
    if (json_path == "-")
      std::fputs(octet::evaluation_json(result).c_str(), stdout);
    else
      std::fputs(octet::evaluation_table(result).c_str(), stdout);
    if (!json_path.empty() && json_path != "-") {
      json_out << octet::evaluation_json(result);
      json_out.flush();
      if (!json_out) throw octet::Error("--json '" + json_path + "': write failed: " + std::strerror(errno));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "evaluate: %s\n", e.what());
    return 1;
  }
  return 0;
}
