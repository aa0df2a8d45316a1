// same-inputs MODEL --images DIR --out PREFIX [--labels-from wnid|FILE] [--skip-calibration] [--threads N]
// Runs an octet model over images and writes what ONNX Runtime needs to run the very same tensors, so an
// accuracy comparison measures the two runtimes and not two image decoders (compare/ort_accuracy.js reads
// these files):
//   PREFIX.inputs  the preprocessed input of each image, f32, the model's input shape (batch 1), back to back
//   PREFIX.logits  octet's output 0 for each image, f32, back to back
//   PREFIX.json    {"images": [...], "labels": [...], "input_shape": [...], "classes": N}
// The files are written under temporary names and renamed when complete, so a failed run leaves none.
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "octet/evaluation.h"
#include "octet/image.h"
#include "octet/progress.h"

namespace {

// A file written under PREFIX.suffix.partial and renamed by commit().
class OutputFile {
 public:
  explicit OutputFile(std::string path) : path_(std::move(path)), partial_(path_ + ".partial") {
    out_.open(partial_, std::ios::binary);
    if (!out_) throw octet::Error("'" + partial_ + "': cannot write: " + std::strerror(errno));
  }
  ~OutputFile() {
    if (!committed_) std::filesystem::remove(partial_);
  }
  void write(const void* data, size_t bytes) {
    out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  }
  std::ofstream& stream() { return out_; }
  void commit() {
    out_.close();
    if (!out_) throw octet::Error("'" + partial_ + "': write failed: " + std::strerror(errno));
    std::filesystem::rename(partial_, path_);
    committed_ = true;
  }

 private:
  std::string path_, partial_;
  std::ofstream out_;
  bool committed_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "same-inputs: an octet model's preprocessed inputs and logits, for ONNX Runtime to run the same tensors"};
  std::string model_path, images_path, labels_from, prefix;
  bool skip_calibration = false;
  int threads = 1;
  app.add_option("model", model_path, "model folder (model.json + model.bin)")->required();
  app.add_option("--images", images_path, "folder of images (sorted by name) or a file listing them")->required();
  app.add_option("--out", prefix, "output prefix: PREFIX.inputs, PREFIX.logits, PREFIX.json")->required();
  app.add_option("--labels-from", labels_from,
                 "wnid: file names start with a wnid of the model's labels; or a file of 'filename index' lines");
  app.add_flag("--skip-calibration", skip_calibration,
               "leave out every 10th image starting with the first (the converter's calibration images)");
  app.add_option("--threads", threads, "threads of the octet session")->check(CLI::Range(1, octet::kMaxThreads));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  try {
    auto model = octet::Model::load(model_path);
    std::vector<std::string> images = octet::list_images(images_path, 0, 1, 0);  // throws naming a missing path
    if (skip_calibration) images = octet::held_out_images(images);
    const std::vector<int> labels = octet::labels_from(labels_from, images, model->labels());

    octet::Session session(model, {1, threads, false});
    octet::Tensor input = session.input(0);
    if (input.shape.empty() || input.shape[0] != 1)
      throw octet::Error(model_path + ": input 0 must have batch 1 for same-inputs");
    OutputFile inputs(prefix + ".inputs"), logits(prefix + ".logits"), index(prefix + ".json");
    octet::ProgressLine progress;
    size_t classes = 0;
    for (size_t i = 0; i < images.size(); ++i) {
      octet::load_image_into(*model, images[i], input, 0);
      inputs.write(input.data, static_cast<size_t>(input.elements()) * sizeof(float));
      session.run();
      octet::Tensor out = session.output(0);
      classes = static_cast<size_t>(out.elements());
      logits.write(out.data, classes * sizeof(float));
      progress.update("octet", i + 1, images.size());
    }
    progress.finish();
    nlohmann::json j;
    j["images"] = images;
    j["labels"] = labels;
    j["input_shape"] = input.shape;
    j["classes"] = classes;
    index.stream() << j.dump(1) << "\n";
    inputs.commit();
    logits.commit();
    index.commit();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "same-inputs: %s\n", e.what());
    return 1;
  }
  return 0;
}
