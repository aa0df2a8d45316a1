// Image classification evaluation: ground-truth labels for image files, per-image metrics on logits, and a
// driver that runs a model (and optionally an FP32 reference) over images and aggregates the metrics.
//
//   auto model = octet::Model::load("mobilenet_int8"), fp32 = octet::Model::load("mobilenet_fp32");
//   auto images = octet::held_out_images(octet::list_images(dir, 0, 1, 0));
//   auto labels = octet::labels_from_wnid(images, model->labels());
//   octet::EvaluationResult r = octet::evaluate(model, fp32, images, labels, 1, nullptr);
//   std::cout << octet::evaluation_table(r);
//
// Label conventions: ImageNet files are named "<wnid>_<name>.JPEG" and a model's label lines start with a
// wnid ("n01443537 goldfish, Carassius auratus", or a bare "n01443537"); the class index of an image is the
// line holding its wnid, so models with their own class order (Darknet) map correctly.
// Every failure throws octet::Error naming the file (and line) at fault.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "octet/octet.h"

namespace octet {

// ---- labels -------------------------------------------------------------------------------------------

// The class index of each image: the index of the model label line whose first token is the wnid the
// image's file name starts with (the part before the first '_'). Throws when the model has no labels or a
// wnid is not among them.
std::vector<int> labels_from_wnid(const std::vector<std::string>& image_paths,
                                  const std::vector<std::string>& model_labels);
// The class index of each image from a text file of "filename index" lines (the name is matched against the
// image's file name without its folder; it may contain spaces, the index is the last field). Blank lines
// and lines starting with '#' are skipped. Throws naming the file and line for a malformed line or a
// repeated name, and naming the image when it has no line.
std::vector<int> labels_from_file(const std::vector<std::string>& image_paths, const std::string& label_file);

// The labels of the samples' and tools' --labels-from (`source`): "wnid" (labels_from_wnid with the model's label
// lines), the path of a "filename index" file (labels_from_file), or "" for none (an empty vector).
std::vector<int> labels_from(const std::string& source, const std::vector<std::string>& image_paths,
                             const std::vector<std::string>& model_labels);

// What to show for a label line: the text after a leading wnid ("goldfish, Carassius auratus"), or the
// whole line when it does not start with a wnid followed by text (a bare wnid stays a wnid).
std::string label_name(const std::string& label_line);

// "wnid name" lines for the wnids listed one per line in wnid_file (e.g. Darknet's labels_wnid.txt), in
// that order, with the names from synset_words_file ("wnid name" lines). Converting with these as --labels
// gives a model in its own class order whose labels have readable names. Throws naming the file and line
// of a wnid that synset_words_file lacks.
std::vector<std::string> resolve_wnid_labels(const std::string& wnid_file, const std::string& synset_words_file);

// ---- image lists --------------------------------------------------------------------------------------

// Image files to run: `dir_or_list` is a folder (its files with extension .jpg, .jpeg, .png or .bmp,
// any case, sorted by name) or a text file with one path per line (relative paths are relative to the
// file's folder; blank lines and lines starting with '#' are skipped). Takes entries offset,
// offset + stride, ... up to count of them (count 0: no limit). The project's convention is stride 10,
// offset 0: files 0, 10, 20, ... Throws Error naming the path if it does not exist or yields no image.
std::vector<std::string> list_images(const std::string& dir_or_list, size_t count, size_t stride, size_t offset);

// ---- image split --------------------------------------------------------------------------------------

// The images not used for calibration: all but entries 0, stride, 2 * stride, ... of the sorted list
// (the calibration convention of list_images with offset 0). 1000 files, stride 10: 900.
std::vector<std::string> held_out_images(const std::vector<std::string>& all_sorted, size_t stride = 10);

// ---- metrics on one image's logits (n classes) ---------------------------------------------------------

// The indices of the k highest scores, highest first; equal scores rank by lower index, NaN ranks lowest,
// so the result is deterministic. k is capped at n.
std::vector<int> top_k(const float* scores, size_t n, size_t k);
// Whether `label` is among top_k(scores, n, k).
bool in_top_k(const float* scores, size_t n, int label, size_t k);
// softmax(logits), computed as exp(x - max) / sum so large logits cannot overflow.
std::vector<double> softmax(const float* logits, size_t n);
// KL(softmax(reference) || softmax(test)) in nats, from log-softmax so tiny probabilities stay exact.
double kl_divergence(const float* reference_logits, const float* test_logits, size_t n);
// Whether both have the same top-1 class (ties broken as in top_k).
bool top1_agrees(const float* reference_logits, const float* test_logits, size_t n);

// ---- evaluation ---------------------------------------------------------------------------------------

struct EvaluationResult {
  size_t images = 0;
  bool has_labels = false;  // top1, top5: fractions of images whose label is in the top 1 / 5
  double top1 = 0, top5 = 0;
  bool has_reference = false;    // agreement with the reference model, averaged over images:
  double top1_agreement = 0;     // fraction of images with the same top-1 class
  double mean_kl = 0;            // mean KL(p_reference || p_model) in nats
  double sqnr_db = 0;            // over all logits of all images (sqnr_db of graph/quantization.h)
  double ms_per_image = 0;       // median time of the model's run() alone (no decoding, no reference)
  std::vector<int> predictions;  // the model's top-1 class of each image
};

// Runs `model` (and `reference`, when not null) with one batch-1 Session each on every image, each image
// preprocessed with that model's own metadata, and compares the logits of output 0. labels is empty (no
// accuracy) or one class index per image. threads is SessionOptions::threads. progress (may be empty) is
// called after each image with (done, total). Throws when the models' outputs differ in size, a label is
// out of range, or an image cannot be read (naming it).
EvaluationResult evaluate(std::shared_ptr<const Model> model, std::shared_ptr<const Model> reference,
                          const std::vector<std::string>& images, const std::vector<int>& labels, int threads,
                          const std::function<void(size_t done, size_t total)>& progress);

// One JSON object with every field of the result; metrics the result lacks (no labels, no reference) and an
// infinite SQNR (identical logits) are null.
std::string evaluation_json(const EvaluationResult& result);
// A two-column plain-text table, one metric per line, for a terminal.
std::string evaluation_table(const EvaluationResult& result);

}  // namespace octet
