// report [--quick] [--out DIR] [--work DIR] [--shared DIR]
// The quantization report: converts the shared MobileNet v1 0.25, Darknet-tiny and ResNet-50 in-process
// through the converter library (one ONNX import per model, one calibration pass per calibration set, then
// the variants), evaluates every variant, measures its latency and peak memory in a child process, and
// writes RESULTS.md with its plots (gnuplot). The modern classifiers (MobileNet v3 small, ViT tiny) get the
// default INT8 model and the sensitivity study only, in a section of their own. Progress on stderr. --quick:
// few images, for testing.
//
// report --measure MODEL_DIR --image FILE --runs N
// The child: loads one model, runs it with 1 thread at batch 1 and prints its latency and memory.
#include <sys/resource.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include "converters/onnx/import.h"
#include "converters/onnx/preprocess_options.h"
#include "converters/quant/calibration.h"
#include "converters/tools/charts.h"
#include "graph/model_format.h"
#include "graph/quantization.h"
#include "octet/image.h"
#include "octet/progress.h"
#include "report.h"

namespace fs = std::filesystem;
using report::ModelResults;
using report::VariantResult;

namespace {

struct ModelSpec {
  std::string key, title, preset;
  bool has_labels;            // real ImageNet weights
  size_t evaluation_images;   // 0: all held-out images
  size_t sensitivity_images;  // 0: the calibration images
  bool study = true;          // every variant; else FP32, the default and the sensitivity study only
};

struct Settings {
  std::string shared, work, self;
  size_t calibration_images;               // the full calibration set (the project's 100)
  std::vector<size_t> calibration_counts;  // the count study, ending with calibration_images
  int latency_runs;
  int latency_rounds;             // interleaved rounds over a model's variants (measure_latencies)
  std::vector<ModelSpec> models;  // the study's, then the modern classifiers (study = false)
};

Settings settings_for(bool quick) {
  Settings s;
  if (quick) {
    s.calibration_images = 10;
    s.calibration_counts = {1, 5, 10};
    s.latency_runs = 5;
    s.latency_rounds = 1;
    s.models = {{"mobilenet_v1_025", "MobileNet v1 0.25", "tf", true, 40, 5},
                {"darknet_tiny", "Darknet-tiny", "unit", true, 40, 5},
                {"resnet50", "ResNet-50 (random weights)", "torchvision", false, 5, 2},
                {"mobilenet_v3_small", "MobileNet v3 small (random weights)", "torchvision", false, 5, 2, false},
                {"vit_tiny", "ViT tiny (random weights)", "torchvision", false, 5, 2, false}};
  } else {
    s.calibration_images = 100;
    s.calibration_counts = {1, 10, 50, 100};
    s.latency_runs = 30;
    s.latency_rounds = 5;
    // ResNet-50: fidelity on the first 100 held-out images; its 106 sensitivity variants run on 20
    // calibration images (every 50th file) to keep the whole report under 20 minutes.
    s.models = {{"mobilenet_v1_025", "MobileNet v1 0.25", "tf", true, 0, 0},
                {"darknet_tiny", "Darknet-tiny", "unit", true, 0, 0},
                {"resnet50", "ResNet-50 (random weights)", "torchvision", false, 100, 20},
                {"mobilenet_v3_small", "MobileNet v3 small (random weights)", "torchvision", false, 0, 0, false},
                {"vit_tiny", "ViT tiny (random weights)", "torchvision", false, 0, 0, false}};
  }
  return s;
}

std::string quote(const std::string& arg) {
  std::string quoted = "'";
  for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string slug(const std::string& name) {
  std::string s;
  for (char c : name)
    s += std::isalnum(static_cast<unsigned char>(c)) ? char(std::tolower(static_cast<unsigned char>(c))) : '_';
  return s;
}

// A progress callback printing "[model] what: done/total" on stderr (octet/progress.h).
octet::quant::Progress progress(const std::string& model, const std::string& what) {
  auto line = std::make_shared<octet::ProgressLine>();
  return [line, model, what](size_t done, size_t total) { line->update("[" + model + "] " + what, done, total); };
}

// ---- the child: latency and peak memory of one model --------------------------------------------------

// A "VmRSS:   1234 kB" line of /proc/self/status, in bytes.
size_t status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.compare(0, field.size() + 1, field + ":") == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  throw octet::Error("/proc/self/status has no " + field);
}

double cpu_time_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) * 1e3 + double(t.tv_nsec) / 1e6;
}

int measure_child(const std::string& model_dir, const std::string& image, int runs) {
  const size_t start_rss = status_bytes("VmRSS");
  const auto model = octet::Model::load(model_dir);
  octet::Session session(model, {1, 1, false});
  octet::load_image_into(*model, image, session.input(0), 0);
  for (int i = 0; i < 3; ++i) session.run();  // warm-up: first-touch of the arena, caches
  std::vector<double> wall_ms, cpu_ms;
  for (int i = 0; i < runs; ++i) {
    const double cpu_start = cpu_time_ms();
    const auto start = std::chrono::steady_clock::now();
    session.run();
    wall_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    cpu_ms.push_back(cpu_time_ms() - cpu_start);
  }
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("%.4f %.4f %zu %zu %zu %zu\n", median(wall_ms), median(cpu_ms), model->weight_bytes(),
              session.arena_bytes(), start_rss, status_bytes("VmHWM"));
  return 0;
}

report::Footprint measure_footprint(const Settings& settings, const std::string& model_dir, const std::string& image) {
  report::Footprint f;
  for (const fs::directory_entry& file : fs::directory_iterator(model_dir)) f.file_bytes += file.file_size();
  // A fresh process, so that the peak RSS is this model's alone; one OpenMP thread as the Session uses.
  const std::string command = "OMP_NUM_THREADS=1 " + quote(settings.self) + " --measure " + quote(model_dir) +
                              " --image " + quote(image) + " --runs " + std::to_string(settings.latency_runs);
  std::FILE* child = popen(command.c_str(), "r");
  if (!child) throw octet::Error("cannot start " + command);
  const int fields = std::fscanf(child, "%lf %lf %zu %zu %zu %zu", &f.wall_ms, &f.cpu_ms, &f.weight_bytes,
                                 &f.arena_bytes, &f.start_rss_bytes, &f.peak_rss_bytes);
  if (pclose(child) != 0 || fields != 6) throw octet::Error("measuring " + model_dir + " failed: " + command);
  return f;
}

// ---- one model ----------------------------------------------------------------------------------------

// The real-valued range each quantized activation covers, by tensor name.
std::map<std::string, std::pair<double, double>> activation_ranges(const octet::Graph& graph) {
  std::map<std::string, std::pair<double, double>> ranges;
  for (const auto& [name, info] : graph.tensors) {
    if (graph.is_constant(name) || info.quant.scales.size() != 1) continue;
    const octet::IntRange levels = octet::quantized_range(info.dtype);
    const double scale = info.quant.scales[0], zero_point = info.quant.zero_points[0];
    ranges[name] = {(levels.min - zero_point) * scale, (levels.max - zero_point) * scale};
  }
  return ranges;
}

// Mean over the activations both graphs quantize of (|low change| + |high change|) / reference width.
double mean_relative_range_change(const octet::Graph& graph, const octet::Graph& reference) {
  const auto ranges = activation_ranges(graph), reference_ranges = activation_ranges(reference);
  double sum = 0;
  size_t count = 0;
  for (const auto& [name, r] : reference_ranges) {
    auto it = ranges.find(name);
    if (it == ranges.end()) continue;
    sum += (std::abs(it->second.first - r.first) + std::abs(it->second.second - r.second)) / (r.second - r.first);
    ++count;
  }
  return count ? sum / double(count) : NAN;
}

struct Variant {
  std::string name;
  octet::quant::QuantizeOptions options;
  bool bias_correction = true;
  size_t calibration_images;
  bool equalized = true;  // from the range-equalized FP32 graph (options.equalize_alpha), else from the imported one
};

class ModelReport {
 public:
  ModelReport(const ModelSpec& spec, const Settings& settings) : spec_(spec), settings_(settings) {
    samples_ = settings.shared + "/data/imagenet-samples";
    fp32_ = octet::onnx::import_onnx(settings.shared + "/models/" + spec.key + "/model.onnx");
    octet::onnx::PreprocessOptions preprocess;
    preprocess.preset = spec.preset;
    octet::onnx::apply_preprocess_options(preprocess, fp32_);
    const std::string synset_words = settings.shared + "/data/synset_words.txt";
    fp32_.labels =
        spec.key == "darknet_tiny"
            ? octet::resolve_wnid_labels(settings.shared + "/models/darknet_tiny/labels_wnid.txt", synset_words)
            : octet::onnx::read_labels(synset_words, 1000);
    fp32_model_ = octet::Model::from_graph(fp32_);
    results_.key = spec.key;
    results_.title = spec.title;
    results_.has_labels = spec.has_labels;
    results_.calibration_images = settings.calibration_images;
    std::vector<std::string> held_out = octet::held_out_images(octet::list_images(samples_, 0, 1, 0));
    if (spec.evaluation_images) held_out.resize(std::min(held_out.size(), spec.evaluation_images));
    results_.evaluation_images = held_out;
    if (spec.has_labels) results_.labels = octet::labels_from_wnid(held_out, fp32_.labels);
  }

  ModelResults run() {
    const auto start = std::chrono::steady_clock::now();
    add_result(report::kFp32, fp32_);
    const size_t full = settings_.calibration_images;
    for (size_t count : settings_.calibration_counts)
      if (spec_.study || count == full) calibrate(count);
    octet::quant::QuantizeOptions options;
    std::vector<Variant> variants = {{report::kDefault, options, true, full}};
    if (spec_.study) add_study_variants(variants, options);
    octet::Graph default_graph;  // the first variant: the reference of the range changes
    for (const Variant& v : variants) {
      const size_t n = v.calibration_images;
      if (!v.equalized && !unequalized_stats_.count(n))
        unequalized_stats_[n] =
            octet::quant::collect_statistics(fp32_, images_.at(n), progress(spec_.key, "calibrating unequalized"));
      const octet::Graph graph = octet::quant::quantize_calibrated(
          v.equalized ? prepared_.at(n) : fp32_, v.equalized ? stats_.at(n) : unequalized_stats_.at(n), images_.at(n),
          v.options, v.bias_correction, nullptr, nullptr, &rounding_cache_[{n, v.equalized}]);
      if (v.name == report::kDefault) default_graph = graph;
      VariantResult& result = add_result(v.name, graph);
      if (v.calibration_images != full || v.name == report::kDefault)
        result.range_change = mean_relative_range_change(graph, default_graph);
    }
    results_.equalization = equalization_.at(full).equalization;
    run_sensitivity(options);
    measure_latencies();
    results_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "[%s] done in %.1f minutes\n", spec_.key.c_str(), results_.seconds / 60);
    return results_;
  }

 private:
  // The study: each variant changes one thing of the default.
  void add_study_variants(std::vector<Variant>& variants, const octet::quant::QuantizeOptions& options) const {
    const size_t full = settings_.calibration_images;
    const auto with = [&](const std::string& name, auto change) {
      Variant v{name, options, true, full};
      change(v);
      variants.push_back(v);
    };
    with(report::kAsymmetric, [](Variant& v) { v.options.activations = octet::quant::ActivationMode::asymmetric; });
    with(report::kSymmetric, [](Variant& v) { v.options.activations = octet::quant::ActivationMode::symmetric; });
    with(report::kPerTensor, [](Variant& v) { v.options.per_channel = false; });
    with(report::kPercentile, [](Variant& v) { v.options.method = octet::quant::CalibrationMethod::percentile; });
    with(report::kEntropy, [](Variant& v) { v.options.method = octet::quant::CalibrationMethod::entropy; });
    with(report::kMse, [](Variant& v) { v.options.method = octet::quant::CalibrationMethod::mse; });
    for (size_t count : settings_.calibration_counts)
      if (count != full)
        with(report::calibration_count_name(count), [count](Variant& v) { v.calibration_images = count; });
    with(report::kInt8Classifier, [](Variant& v) { v.options.int8_classifier = true; });
    with(report::kNoBiasCorrection, [](Variant& v) { v.bias_correction = false; });
    with(report::kNearestRounding, [](Variant& v) { v.options.rounding = octet::quant::WeightRounding::nearest; });
    with(report::kNoEqualization, [](Variant& v) { v.equalized = false; });
    with(report::kNeither, [](Variant& v) {
      v.options.rounding = octet::quant::WeightRounding::nearest;
      v.equalized = false;
    });
    const auto per_tensor = [](octet::quant::CalibrationMethod method) {
      return [method](Variant& v) {
        v.options.per_channel = false;
        v.options.method = method;
      };
    };
    with(report::kPerTensorPercentile, per_tensor(octet::quant::CalibrationMethod::percentile));
    with(report::kPerTensorEntropy, per_tensor(octet::quant::CalibrationMethod::entropy));
    with(report::kPerTensorMse, per_tensor(octet::quant::CalibrationMethod::mse));
  }

  void calibrate(size_t count) {
    images_[count] = octet::quant::select_calibration_images(samples_, count);
    prepared_[count] = octet::quant::prepare_for_quantization(
        fp32_, images_[count], octet::quant::QuantizeOptions{}, true, &equalization_[count],
        progress(spec_.key, "equalizing on " + std::to_string(count)));
    stats_[count] = octet::quant::collect_statistics(prepared_[count], images_[count],
                                                     progress(spec_.key, "calibrating on " + std::to_string(count)));
  }

  // Evaluates `graph` (against FP32 unless it is FP32) and writes it; measure_latencies() times it later.
  VariantResult& add_result(const std::string& name, const octet::Graph& graph) {
    VariantResult result;
    result.name = name;
    const bool is_fp32 = name == report::kFp32;
    result.eval =
        octet::evaluate(is_fp32 ? fp32_model_ : octet::Model::from_graph(graph), is_fp32 ? nullptr : fp32_model_,
                        results_.evaluation_images, results_.labels, 0, progress(spec_.key, name));
    const std::string dir = settings_.work + "/" + spec_.key + "/" + slug(name);
    octet::write_model(graph, dir);
    variant_dirs_.push_back(dir);
    results_.variants.push_back(result);
    return results_.variants.back();
  }

  // Every variant's latency and memory, in latency_rounds rounds that each measure all the model's variants once
  // (a fresh child process each time); a variant's times are the medians over the rounds. The machine has slow
  // and fast spells: measured one after another, a variant timed during a slow one looked slower than the
  // others (the mobilenet_v3_small INT8 model 0.96x its FP32 in one such run, 1.6x in interleaved runs).
  void measure_latencies() {
    const size_t n = variant_dirs_.size();
    std::vector<std::vector<report::Footprint>> rounds(n);
    const auto step = progress(spec_.key, "latency rounds");
    for (int round = 0; round < settings_.latency_rounds; ++round) {
      for (size_t i = 0; i < n; ++i)
        rounds[i].push_back(measure_footprint(settings_, variant_dirs_[i], results_.evaluation_images.front()));
      step(static_cast<size_t>(round) + 1, static_cast<size_t>(settings_.latency_rounds));
    }
    const auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    for (size_t i = 0; i < n; ++i) {
      report::Footprint f = rounds[i].front();  // file, weight, arena and memory figures: the first round's
      std::vector<double> wall, cpu;
      for (const report::Footprint& r : rounds[i]) wall.push_back(r.wall_ms), cpu.push_back(r.cpu_ms);
      f.wall_ms = median(wall);
      f.cpu_ms = median(cpu);
      results_.variants[i].footprint = f;
    }
  }

  void run_sensitivity(const octet::quant::QuantizeOptions& options) {
    const std::vector<std::string> images =
        spec_.sensitivity_images ? octet::quant::select_calibration_images(samples_, spec_.sensitivity_images)
                                 : images_.at(settings_.calibration_images);
    const octet::analysis::SensitivityAnalysis analysis(prepared_.at(settings_.calibration_images),
                                                        stats_.at(settings_.calibration_images), images, options, true);
    results_.sensitivity = analysis.rank_layers(progress(spec_.key, "sensitivity variants"));
    results_.auto_fp32 = analysis.auto_fp32(results_.sensitivity, 99, progress(spec_.key, "auto-fp32 99: layers FP32"));
    const size_t tried = results_.auto_fp32.fp32_layers.size();
    if (tried > 0 && tried < results_.sensitivity.layers.size()) std::fputc('\n', stderr);  // progress stopped short
    const std::set<std::string> kept(results_.auto_fp32.fp32_layers.begin(), results_.auto_fp32.fp32_layers.end());
    add_result(report::kAutoFp32, analysis.variant(kept));
  }

  const ModelSpec& spec_;
  const Settings& settings_;
  std::string samples_;
  octet::Graph fp32_;
  std::shared_ptr<const octet::Model> fp32_model_;
  std::vector<std::string> variant_dirs_;                       // where each of results_.variants is written
  std::map<size_t, std::vector<std::string>> images_;           // calibration images by count
  std::map<size_t, octet::Graph> prepared_;                     // the default's FP32 graph for them (equalized or not)
  std::map<size_t, octet::quant::ConvertReport> equalization_;  // its equalization decision
  std::map<std::pair<size_t, bool>, octet::quant::WeightRoundingCache>
      rounding_cache_;                                                        // by count and graph (prepared or not)
  std::map<size_t, std::map<std::string, octet::quant::TensorStats>> stats_;  // the statistics of prepared_
  std::map<size_t, std::map<std::string, octet::quant::TensorStats>>
      unequalized_stats_;  // of fp32_, for the variants without
  ModelResults results_;
};

// The first line of `path` starting with `prefix` ("" for the first line), without the prefix.
std::string line_of(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, prefix.size(), prefix) == 0) return line.substr(prefix.size());
  return "";
}

double cpu_seconds(int who) {
  rusage usage{};
  getrusage(who, &usage);
  const auto seconds = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace

namespace report {

std::string calibration_count_name(size_t images) {
  return std::to_string(images) + (images == 1 ? " calibration image" : " calibration images");
}

}  // namespace report

int main(int argc, char** argv) {
  CLI::App app{"report: the INT8 quantization study of the shared models, written to RESULTS.md with plots"};
  bool quick = false;
  std::string out, work, shared = OCTET_SHARED_DIR, measure, image;
  int runs = 30;
  app.add_flag("--quick", quick, "few images and runs: a check that the whole report runs (minutes)");
  app.add_option(
      "--out", out,
      "folder for RESULTS.md and results/ (default: the source's samples/, --quick: the build's report-quick/)");
  app.add_option("--work", work, "folder for the converted variants (default: the build's report-models/)");
  app.add_option("--shared", shared, "the shared models and images");
  app.add_option("--measure", measure, "internal: measure one model folder in this process");
  app.add_option("--image", image, "internal: the input image of --measure");
  app.add_option("--runs", runs, "internal: timed runs of --measure");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;  // --help exits 0; a bad flag prints why and exits 1
  }
  try {
    if (!measure.empty()) return measure_child(measure, image, runs);
    if (std::system("gnuplot --version > /dev/null 2>&1") != 0)
      throw octet::Error("the plots need gnuplot (Debian: apt-get install gnuplot-nox)");
    Settings settings = settings_for(quick);
    settings.shared = shared;
    settings.work = work.empty() ? std::string(OCTET_BUILD_DIR) + "/report-models" : work;
    settings.self = fs::read_symlink("/proc/self/exe").string();
    if (out.empty())
      out = quick ? std::string(OCTET_BUILD_DIR) + "/report-quick" : std::string(OCTET_SOURCE_DIR) + "/samples";

    report::RunInfo info;
    info.quick = quick;
    info.calibration_counts = settings.calibration_counts;
    info.latency_runs = settings.latency_runs;
    info.latency_rounds = settings.latency_rounds;
    info.cpu = line_of("/proc/cpuinfo", "model name\t: ");
    info.load_before = line_of("/proc/loadavg", "");
    info.cores = std::thread::hardware_concurrency();
    const auto start = std::chrono::steady_clock::now();
    std::vector<ModelResults> study, modern;
    for (const ModelSpec& spec : settings.models)
      (spec.study ? study : modern).push_back(ModelReport(spec, settings).run());
    info.minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 60;
    info.load_after = line_of("/proc/loadavg", "");
    info.cpu_minutes = (cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN)) / 60;
    report::write_results(study, modern, info, out);
    std::fprintf(stderr, "wrote %s/RESULTS.md in %.1f minutes\n", out.c_str(), info.minutes);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "report: %s\n", e.what());
    return 1;
  }
  return 0;
}
