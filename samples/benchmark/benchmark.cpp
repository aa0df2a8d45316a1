// benchmark MODEL [--threads N] [--batch B] [--warmup W] [--iters I] [--profile] [--json FILE|-]
// Per-sample latency of one octet model: min/p50/p90/p99 over timed runs after warm-up, on a steady clock,
// with the thread count pinned and no I/O inside the timed loop. Also reports the process's peak resident
// memory (VmHWM), the weight bytes and the activation arena.
//
// --profile adds a per-layer breakdown: after the timed runs, `iters` more runs timed step by step
// (Session::profile()), each step's median, sorted by time, with the implementation oneDNN picked; then the
// same time summed per op and implementation. Profiled runs are separate from the timed ones, so the
// per-step clock reads never inflate the latency figures.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <string>

#include "octet/octet.h"

namespace {

double percentile(std::vector<double> sorted, double p) {
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return percentile(values, 50);
}

// Peak resident set size of this process in bytes (VmHWM of /proc/self/status; 0 where there is none).
size_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return static_cast<size_t>(std::stoull(line.substr(6))) * 1024;  // "VmHWM:  1234 kB"
  return 0;
}

// One step of the plan with its median time over the profiled runs.
struct LayerTime {
  octet::LayerInfo layer;
  double ms = 0;
};

std::vector<LayerTime> profile_layers(octet::Session& session, int runs) {
  std::vector<octet::LayerInfo> layers = session.layers();
  std::vector<std::vector<double>> samples(layers.size());
  for (int r = 0; r < runs; ++r) {
    std::vector<double> ms = session.profile();
    for (size_t i = 0; i < ms.size(); ++i) samples[i].push_back(ms[i]);
  }
  std::vector<LayerTime> result;
  for (size_t i = 0; i < layers.size(); ++i) result.push_back({layers[i], median(samples[i])});
  std::stable_sort(result.begin(), result.end(), [](const LayerTime& a, const LayerTime& b) { return a.ms > b.ms; });
  return result;
}

// Escapes a string for a JSON string literal (node names hold '/', quotes are possible).
std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void print_profile_table(const std::vector<LayerTime>& layers, double total_ms, double p50_ms) {
  std::printf("\nper-layer profile (median over runs), %zu steps, sum %.3f ms (run() p50 %.3f ms):\n", layers.size(),
              total_ms, p50_ms);
  std::printf("%4s  %-48s %-18s %-30s %9s %7s %7s\n", "#", "node", "op", "implementation", "ms", "%", "cum %");
  double cumulative = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerTime& l = layers[i];
    cumulative += l.ms;
    std::printf("%4zu  %-48s %-18s %-30s %9.3f %6.1f%% %6.1f%%\n", i + 1, l.layer.node.c_str(), l.layer.op.c_str(),
                l.layer.implementation.c_str(), l.ms, 100.0 * l.ms / total_ms, 100.0 * cumulative / total_ms);
  }
  // The same time per (op, implementation): which kernels the whole model spends its time in.
  std::map<std::pair<std::string, std::string>, std::pair<int, double>> groups;
  for (const LayerTime& l : layers) {
    auto& g = groups[{l.layer.op, l.layer.implementation}];
    g.first++;
    g.second += l.ms;
  }
  std::vector<std::pair<std::pair<std::string, std::string>, std::pair<int, double>>> sorted(groups.begin(),
                                                                                             groups.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second.second > b.second.second; });
  std::printf("\nby op and implementation:\n%-18s %-30s %6s %9s %7s\n", "op", "implementation", "steps", "ms", "%");
  for (const auto& g : sorted)
    std::printf("%-18s %-30s %6d %9.3f %6.1f%%\n", g.first.first.c_str(), g.first.second.c_str(), g.second.first,
                g.second.second, 100.0 * g.second.second / total_ms);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"benchmark: per-sample latency of an octet model"};
  std::string path;
  int threads = 0, warmup = 5, iters = 30;
  int64_t batch = 1;
  std::string json_path;
  bool profile = false;
  app.add_option("model", path, "model folder (model.json + model.bin)")->required();
  app.add_option("--threads", threads, "threads (0 = all cores)")->check(CLI::Range(0, octet::kMaxThreads));
  app.add_option("--batch", batch, "batch size (at least 1)")
      ->check(CLI::Range(int64_t{1}, std::numeric_limits<int64_t>::max()));
  app.add_option("--warmup", warmup, "untimed runs first")->check(CLI::Range(0, 1000000));
  app.add_option("--iters", iters, "timed runs (at least 1)")->check(CLI::Range(1, 1000000));
  app.add_flag("--profile", profile, "also time every layer (median of --iters profiled runs)");
  app.add_option("--json", json_path,
                 "write the results as one JSON object to FILE ('-': stdout, instead of the line)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;  // --help exits 0; a bad flag prints why and exits 1
  }
  try {
    // The JSON goes to stdout ('-') or to a file opened now, so a bad path fails before the runs.
    std::FILE* json = json_path.empty() ? nullptr : json_path == "-" ? stdout : std::fopen(json_path.c_str(), "w");
    if (!json_path.empty() && !json)
      throw octet::Error("--json '" + json_path + "': cannot write: " + std::strerror(errno));
    auto t0 = std::chrono::steady_clock::now();
    auto model = octet::Model::load(path);
    octet::Session session(model, {batch, threads, false});
    double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    // Deterministic pseudo-image input: the speed of these kernels does not depend on the values.
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (size_t i = 0; i < session.num_inputs(); ++i) {
      octet::Tensor t = session.input(i);
      for (int64_t k = 0; k < t.elements(); ++k) t.data[k] = dist(rng);
    }
    for (int i = 0; i < warmup; ++i) session.run();
    std::vector<double> per_sample(static_cast<size_t>(iters));
    for (double& sample : per_sample) {
      auto start = std::chrono::steady_clock::now();
      session.run();
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      sample = ms / static_cast<double>(batch);
    }
    std::sort(per_sample.begin(), per_sample.end());
    double p50 = percentile(per_sample, 50);
    std::vector<LayerTime> layers = profile ? profile_layers(session, iters) : std::vector<LayerTime>{};
    double layers_ms =
        std::accumulate(layers.begin(), layers.end(), 0.0, [](double sum, const LayerTime& l) { return sum + l.ms; });
    size_t peak_rss = peak_rss_bytes();
    if (json) {
      std::fprintf(json,
                   "{\"model\":%s,\"threads\":%d,\"batch\":%ld,\"min_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
                   "\"p99_ms\":%.3f,\"throughput\":%.2f,\"load_ms\":%.1f,\"weight_bytes\":%zu,\"arena_bytes\":%zu,"
                   "\"packed_weight_bytes\":%zu,\"scratch_bytes\":%zu,\"peak_rss_bytes\":%zu",
                   json_string(path).c_str(), threads, static_cast<long>(batch), per_sample.front(), p50,
                   percentile(per_sample, 90), percentile(per_sample, 99), 1000.0 / p50, load_ms, model->weight_bytes(),
                   session.arena_bytes(), model->packed_weight_bytes(), session.scratch_bytes(), peak_rss);
      if (profile) {
        std::fprintf(json, ",\"layers_ms\":%.3f,\"layers\":[", layers_ms);
        for (size_t i = 0; i < layers.size(); ++i)
          std::fprintf(json, "%s{\"node\":%s,\"op\":%s,\"implementation\":%s,\"ms\":%.4f}", i ? "," : "",
                       json_string(layers[i].layer.node).c_str(), json_string(layers[i].layer.op).c_str(),
                       json_string(layers[i].layer.implementation).c_str(), layers[i].ms);
        std::fprintf(json, "]");
      }
      std::fprintf(json, "}\n");
      if (json != stdout && std::fclose(json) != 0) throw octet::Error("--json '" + json_path + "': write failed");
    }
    if (json != stdout) {
      std::printf(
          "%s: threads %d, batch %ld, per-sample ms: min %.2f p50 %.2f p90 %.2f p99 %.2f; %.1f samples/s; "
          "load %.0f ms; weights %.1f MB (%.1f MB packed); arena %.1f MB; peak RSS %.1f MB\n",
          path.c_str(), threads, static_cast<long>(batch), per_sample.front(), p50, percentile(per_sample, 90),
          percentile(per_sample, 99), 1000.0 / p50, load_ms, static_cast<double>(model->weight_bytes()) / 1e6,
          static_cast<double>(model->packed_weight_bytes()) / 1e6, static_cast<double>(session.arena_bytes()) / 1e6,
          static_cast<double>(peak_rss) / 1e6);
      if (profile) print_profile_table(layers, layers_ms, p50 * static_cast<double>(batch));
    }
  } catch (const std::exception& e) {  // octet::Error, and anything else (std::bad_alloc): a message, never a signal
    std::fprintf(stderr, "benchmark: %s\n", e.what());
    return 1;
  }
  return 0;
}
