// Labels, metrics and the evaluation driver; the contract is in octet/evaluation.h.
#include "octet/evaluation.h"

#include <cctype>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>

#include "graph/quantization.h"
#include "octet/image.h"

namespace octet {
namespace {

namespace fs = std::filesystem;

std::string trim(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t\r\n") + 1 - begin);
}

std::vector<std::string> read_lines(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read the " + what + " '" + path + "'");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string first_token(const std::string& line) {
  const std::string text = trim(line);
  return text.substr(0, text.find_first_of(" \t"));
}

// ImageNet wnids are 'n' and eight digits; a label line starting with one is "wnid name".
bool is_wnid(const std::string& token) {
  return token.size() == 9 && token[0] == 'n' &&
         std::all_of(token.begin() + 1, token.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string file_name(const std::string& path) { return fs::path(path).filename().string(); }

// log softmax(x): x - max - log(sum exp(x - max)), finite for any finite logits.
std::vector<double> log_softmax(const float* logits, size_t n) {
  const double max = *std::max_element(logits, logits + n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(logits[i] - max);
  const double log_sum = max + std::log(sum);
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = logits[i] - log_sum;
  return out;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t half = values.size() / 2;
  return values.size() % 2 ? values[half] : (values[half - 1] + values[half]) / 2;
}

// A JSON number, or null for what JSON cannot hold (infinity: identical logits) or the result lacks.
std::string json_number(double value, bool present = true) {
  if (!present || !std::isfinite(value)) return "null";
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", value);
  return text;
}

}  // namespace

std::vector<int> labels_from_wnid(const std::vector<std::string>& image_paths,
                                  const std::vector<std::string>& model_labels) {
  if (model_labels.empty())
    throw Error((image_paths.empty() ? std::string() : image_paths.front() + ": ") +
                "cannot map wnids to classes: the model has no labels (convert it with --labels)");
  std::map<std::string, int> class_of_wnid;
  for (size_t i = 0; i < model_labels.size(); ++i) class_of_wnid.emplace(first_token(model_labels[i]), int(i));
  std::vector<int> labels;
  for (const std::string& path : image_paths) {
    const std::string name = file_name(path);
    const std::string wnid = name.substr(0, name.find('_'));
    const auto found = class_of_wnid.find(wnid);
    if (found == class_of_wnid.end())
      throw Error(path + ": wnid '" + wnid + "' (the file name up to '_') is not among the model's " +
                  std::to_string(model_labels.size()) + " labels");
    labels.push_back(found->second);
  }
  return labels;
}

std::vector<int> labels_from_file(const std::vector<std::string>& image_paths, const std::string& label_file) {
  const std::vector<std::string> lines = read_lines(label_file, "label file");
  std::map<std::string, std::pair<int, size_t>> label_of_name;  // file name -> (class, line number)
  for (size_t number = 1; number <= lines.size(); ++number) {
    const std::string line = trim(lines[number - 1]);
    if (line.empty() || line[0] == '#') continue;
    const std::string where = label_file + ":" + std::to_string(number) + ": ";
    const size_t split = line.find_last_of(" \t");
    if (split == std::string::npos) throw Error(where + "expected 'filename index', got '" + line + "'");
    const std::string name = trim(line.substr(0, split)), index = line.substr(split + 1);
    if (index.size() > 9 || !std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; }))
      throw Error(where + "'" + index + "' is not a class index (a non-negative integer)");
    const auto inserted = label_of_name.emplace(name, std::make_pair(std::stoi(index), number));
    if (!inserted.second)
      throw Error(where + "'" + name + "' is already labelled on line " +
                  std::to_string(inserted.first->second.second));
  }
  std::vector<int> labels;
  for (const std::string& path : image_paths) {
    const auto found = label_of_name.find(file_name(path));
    if (found == label_of_name.end()) throw Error(label_file + " has no line for " + path);
    labels.push_back(found->second.first);
  }
  return labels;
}

std::string label_name(const std::string& label_line) {
  const std::string text = trim(label_line), wnid = first_token(text);
  if (!is_wnid(wnid) || wnid.size() == text.size()) return text;
  return trim(text.substr(wnid.size()));
}

std::vector<std::string> resolve_wnid_labels(const std::string& wnid_file, const std::string& synset_words_file) {
  std::map<std::string, std::string> line_of_wnid;
  for (const std::string& line : read_lines(synset_words_file, "synset words file"))
    line_of_wnid.emplace(first_token(line), trim(line));
  const std::vector<std::string> wnids = read_lines(wnid_file, "wnid file");
  std::vector<std::string> labels;
  for (size_t number = 1; number <= wnids.size(); ++number) {
    const std::string wnid = first_token(wnids[number - 1]);
    if (wnid.empty()) continue;
    const auto found = line_of_wnid.find(wnid);
    if (found == line_of_wnid.end())
      throw Error(wnid_file + ":" + std::to_string(number) + ": wnid '" + wnid + "' is not in " + synset_words_file);
    labels.push_back(found->second);
  }
  return labels;
}

std::vector<int> labels_from(const std::string& source, const std::vector<std::string>& image_paths,
                             const std::vector<std::string>& model_labels) {
  if (source.empty()) return {};
  if (source == "wnid") return labels_from_wnid(image_paths, model_labels);
  return labels_from_file(image_paths, source);
}

std::vector<std::string> held_out_images(const std::vector<std::string>& all_sorted, size_t stride) {
  if (stride == 0) throw Error("held-out images: the calibration stride must be at least 1");
  std::vector<std::string> held_out;
  for (size_t i = 0; i < all_sorted.size(); ++i)
    if (i % stride != 0) held_out.push_back(all_sorted[i]);
  return held_out;
}

std::vector<int> top_k(const float* scores, size_t n, size_t k) {
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  // A strict weak order even with NaN: numbers before NaN, higher before lower, then lower index first.
  const auto ranks_before = [scores](int a, int b) {
    const bool a_nan = std::isnan(scores[a]), b_nan = std::isnan(scores[b]);
    if (a_nan != b_nan) return b_nan;
    if (!a_nan && scores[a] != scores[b]) return scores[a] > scores[b];
    return a < b;
  };
  k = std::min(k, n);
  std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(k), order.end(), ranks_before);
  order.resize(k);
  return order;
}

bool in_top_k(const float* scores, size_t n, int label, size_t k) {
  const std::vector<int> top = top_k(scores, n, k);
  return std::find(top.begin(), top.end(), label) != top.end();
}

std::vector<double> softmax(const float* logits, size_t n) {
  std::vector<double> probabilities = log_softmax(logits, n);
  for (double& p : probabilities) p = std::exp(p);
  return probabilities;
}

double kl_divergence(const float* reference_logits, const float* test_logits, size_t n) {
  const std::vector<double> log_p = log_softmax(reference_logits, n), log_q = log_softmax(test_logits, n);
  double kl = 0;
  for (size_t i = 0; i < n; ++i) kl += std::exp(log_p[i]) * (log_p[i] - log_q[i]);
  return kl;
}

bool top1_agrees(const float* reference_logits, const float* test_logits, size_t n) {
  return top_k(reference_logits, n, 1) == top_k(test_logits, n, 1);
}

namespace {

// NaN or Inf logits rank nothing: refused, naming the image, rather than counted as a prediction.
void require_finite(const float* logits, size_t n, const std::string& image, const char* which) {
  for (size_t c = 0; c < n; ++c)
    if (!std::isfinite(logits[c]))
      throw Error(image + ": the " + std::string(which) + "'s output " + std::to_string(c) + " is " +
                  std::to_string(logits[c]) + " (not finite); its weights or scales are broken");
}

}  // namespace

EvaluationResult evaluate(std::shared_ptr<const Model> model, std::shared_ptr<const Model> reference,
                          const std::vector<std::string>& images, const std::vector<int>& labels, int threads,
                          const std::function<void(size_t done, size_t total)>& progress) {
  if (images.empty()) throw Error("evaluate: no images");
  if (!labels.empty() && labels.size() != images.size())
    throw Error("evaluate: " + std::to_string(labels.size()) + " labels for " + std::to_string(images.size()) +
                " images");
  const SessionOptions options{1, threads, false};
  Session session(model, options);
  std::unique_ptr<Session> reference_session = reference ? std::make_unique<Session>(reference, options) : nullptr;
  const size_t classes = size_t(session.output(0).elements());
  if (reference_session && size_t(reference_session->output(0).elements()) != classes)
    throw Error("evaluate: the model has " + std::to_string(classes) + " outputs but the reference has " +
                std::to_string(reference_session->output(0).elements()));
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || size_t(labels[i]) >= classes)
      throw Error(images[i] + ": label " + std::to_string(labels[i]) + " is outside the model's " +
                  std::to_string(classes) + " classes");

  EvaluationResult result;
  result.images = images.size();
  result.has_labels = !labels.empty();
  result.has_reference = reference != nullptr;
  size_t top1_hits = 0, top5_hits = 0, agreements = 0;
  double kl_sum = 0;
  std::vector<double> run_ms;
  std::vector<float> all_logits, all_reference_logits;  // for one SQNR over every logit
  for (size_t i = 0; i < images.size(); ++i) {
    load_image_into(*model, images[i], session.input(0), 0);
    const auto start = std::chrono::steady_clock::now();
    session.run();
    run_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    const float* logits = session.output(0).data;
    require_finite(logits, classes, images[i], "model");
    result.predictions.push_back(top_k(logits, classes, 1).front());
    if (result.has_labels) {
      top1_hits += result.predictions.back() == labels[i];
      top5_hits += in_top_k(logits, classes, labels[i], 5);
    }
    if (reference_session) {
      load_image_into(*reference, images[i], reference_session->input(0), 0);
      reference_session->run();
      const float* reference_logits = reference_session->output(0).data;
      require_finite(reference_logits, classes, images[i], "reference model");
      agreements += top1_agrees(reference_logits, logits, classes);
      kl_sum += kl_divergence(reference_logits, logits, classes);
      all_logits.insert(all_logits.end(), logits, logits + classes);
      all_reference_logits.insert(all_reference_logits.end(), reference_logits, reference_logits + classes);
    }
    if (progress) progress(i + 1, images.size());
  }
  const double count = double(images.size());
  result.top1 = double(top1_hits) / count;
  result.top5 = double(top5_hits) / count;
  result.top1_agreement = double(agreements) / count;
  result.mean_kl = kl_sum / count;
  if (reference_session)
    result.sqnr_db = sqnr_db(all_reference_logits.data(), all_logits.data(), int64_t(all_logits.size()));
  result.ms_per_image = median(run_ms);
  return result;
}

std::string evaluation_json(const EvaluationResult& r) {
  std::string json = "{\"images\": " + std::to_string(r.images) + ", \"top1\": " + json_number(r.top1, r.has_labels) +
                     ", \"top5\": " + json_number(r.top5, r.has_labels) +
                     ", \"top1_agreement\": " + json_number(r.top1_agreement, r.has_reference) +
                     ", \"mean_kl\": " + json_number(r.mean_kl, r.has_reference) +
                     ", \"sqnr_db\": " + json_number(r.sqnr_db, r.has_reference) +
                     ", \"ms_per_image\": " + json_number(r.ms_per_image) + ", \"predictions\": [";
  for (size_t i = 0; i < r.predictions.size(); ++i) json += (i ? ", " : "") + std::to_string(r.predictions[i]);
  return json + "]}\n";
}

std::string evaluation_table(const EvaluationResult& r) {
  std::string table;
  const auto row = [&table](const char* name, const char* format, double value) {
    char line[96];
    std::snprintf(line, sizeof line, "%-24s", name);
    table += line;
    std::snprintf(line, sizeof line, format, value);
    table += line;
    table += '\n';
  };
  row("images", "%.0f", double(r.images));
  if (r.has_labels) {
    row("top-1", "%.2f %%", 100 * r.top1);
    row("top-5", "%.2f %%", 100 * r.top5);
  }
  if (r.has_reference) {
    row("top-1 agreement", "%.2f %%", 100 * r.top1_agreement);
    row("mean KL (nats)", "%.3g", r.mean_kl);
    row("logit SQNR", "%.2f dB", r.sqnr_db);
  }
  row("ms/image (median run)", "%.3f", r.ms_per_image);
  return table;
}

// ---- image lists ---------------------------------------------------------------------------------------

namespace {

bool has_image_extension(const fs::path& path) {
  std::string extension = path.extension().string();
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return extension == ".jpg" || extension == ".jpeg" || extension == ".png" || extension == ".bmp";
}

std::vector<std::string> images_in_folder(const fs::path& folder) {
  std::vector<std::string> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder))
    if (entry.is_regular_file() && has_image_extension(entry.path())) files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());  // one folder, so sorting paths sorts file names
  return files;
}

std::vector<std::string> images_in_list(const fs::path& list) {
  std::ifstream in(list);
  if (!in) throw Error("cannot read the image list '" + list.string() + "'");
  std::vector<std::string> files;
  std::string line;
  while (std::getline(in, line)) {
    const size_t begin = line.find_first_not_of(" \t\r");
    if (begin == std::string::npos || line[begin] == '#') continue;
    const fs::path path = line.substr(begin, line.find_last_not_of(" \t\r") + 1 - begin);
    files.push_back((path.is_absolute() ? path : list.parent_path() / path).string());
  }
  return files;
}

}  // namespace

std::vector<std::string> list_images(const std::string& dir_or_list, size_t count, size_t stride, size_t offset) {
  if (stride == 0) throw Error("image list: the stride must be at least 1");
  std::error_code error;
  const fs::file_status status = fs::status(dir_or_list, error);
  if (!fs::exists(status)) throw Error("images: '" + dir_or_list + "' does not exist");
  const std::vector<std::string> all =
      fs::is_directory(status) ? images_in_folder(dir_or_list) : images_in_list(dir_or_list);
  std::vector<std::string> chosen;
  for (size_t i = offset; i < all.size() && (count == 0 || chosen.size() < count); i += stride)
    chosen.push_back(all[i]);
  if (chosen.empty())
    throw Error("images: '" + dir_or_list + "' holds " + std::to_string(all.size()) + " images" +
                (all.empty() ? " (.jpg, .jpeg, .png or .bmp)" : ", none at offset " + std::to_string(offset)));
  return chosen;
}

}  // namespace octet
