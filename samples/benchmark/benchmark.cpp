// benchmark MODEL [--threads N] [--batch B] [--warmup W] [--iters I] [--json]
// Per-sample latency of one octet model: min/p50/p90/p99 over timed runs after warm-up, on a steady clock,
// with the thread count pinned and no I/O inside the timed loop.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "octet/octet.h"

namespace {

double percentile(std::vector<double> sorted, double p) {
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"benchmark: per-sample latency of an octet model"};
  std::string path;
  int threads = 0, warmup = 5, iters = 30;
  int64_t batch = 1;
  bool json = false;
  app.add_option("model", path, "model folder (model.json + model.bin)")->required();
  app.add_option("--threads", threads, "threads (0 = all cores)");
  app.add_option("--batch", batch, "batch size");
  app.add_option("--warmup", warmup, "untimed runs first");
  app.add_option("--iters", iters, "timed runs")->check(CLI::PositiveNumber);
  app.add_flag("--json", json, "print one JSON object");
  CLI11_PARSE(app, argc, argv);
  try {
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
    std::vector<double> per_sample;
    for (int i = 0; i < iters; ++i) {
      auto start = std::chrono::steady_clock::now();
      session.run();
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      per_sample.push_back(ms / static_cast<double>(batch));
    }
    std::sort(per_sample.begin(), per_sample.end());
    double p50 = percentile(per_sample, 50);
    if (json) {
      std::printf("{\"model\":\"%s\",\"threads\":%d,\"batch\":%ld,\"min_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
                  "\"p99_ms\":%.3f,\"throughput\":%.2f,\"load_ms\":%.1f,\"weight_bytes\":%zu,\"arena_bytes\":%zu}\n",
                  path.c_str(), threads, static_cast<long>(batch), per_sample.front(), p50, percentile(per_sample, 90),
                  percentile(per_sample, 99), 1000.0 / p50, load_ms, model->weight_bytes(), session.arena_bytes());
    } else {
      std::printf("%s: threads %d, batch %ld, per-sample ms: min %.2f p50 %.2f p90 %.2f p99 %.2f; %.1f samples/s; "
                  "load %.0f ms; weights %.1f MB; arena %.1f MB\n",
                  path.c_str(), threads, static_cast<long>(batch), per_sample.front(), p50, percentile(per_sample, 90),
                  percentile(per_sample, 99), 1000.0 / p50, load_ms, static_cast<double>(model->weight_bytes()) / 1e6,
                  static_cast<double>(session.arena_bytes()) / 1e6);
    }
  } catch (const octet::Error& e) {
    std::fprintf(stderr, "benchmark: %s\n", e.what());
    return 1;
  }
  return 0;
}
