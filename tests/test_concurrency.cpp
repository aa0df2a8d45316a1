// One Model shared by many threads, each with its own Session (threads = 1): every run must give the same
// bits as a single-threaded run of the same input. The FP32 and the INT8 MobileNet, 8 threads x 50 runs,
// each thread cycling through its own images so that any cross-talk between Sessions (a shared scratchpad,
// arena or cached primitive state) would show as a wrong output rather than a repeat of the right one.
// Sessions are also created concurrently, which exercises oneDNN's primitive cache from many threads and
// the Model's packed weights, which every Session must share (packed once by the first).
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "octet/image.h"
#include "tests/converted_mobilenet.h"

namespace {

constexpr int kThreads = 8;
constexpr int kRunsPerThread = 50;
constexpr size_t kImagesPerThread = 2;

struct Sample {
  std::vector<float> input, output;  // one preprocessed image and its single-threaded output
};

// The model's outputs for `count` shared images, run one after another on this thread.
std::vector<Sample> reference_samples(const std::shared_ptr<const octet::Model>& model, size_t count) {
  octet::Session session(model, {1, 1, false});
  std::vector<Sample> samples;
  for (const std::string& image : octet::testing::sample_images(count)) {
    octet::Tensor input = session.input(0);
    octet::load_image_into(*model, image, input, 0);
    session.run();
    const octet::Tensor output = session.output(0);
    samples.push_back({{input.data, input.data + input.elements()}, {output.data, output.data + output.elements()}});
  }
  return samples;
}

void check_concurrent_runs(const std::string& folder) {
  const auto model = octet::Model::load(folder);
  const std::vector<Sample> samples = reference_samples(model, kThreads * kImagesPerThread);
  // The first session packed the weights; the eight below must reuse them, not pack their own.
  const size_t packed_bytes = model->packed_weight_bytes();
  CHECK(packed_bytes > 0);
  std::atomic<int> mismatches{0}, runs{0};
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      try {
        octet::Session session(model, {1, 1, false});
        octet::Tensor input = session.input(0);
        for (int run = 0; run < kRunsPerThread; ++run) {
          const Sample& sample = samples[size_t(t) * kImagesPerThread + size_t(run) % kImagesPerThread];
          std::memcpy(input.data, sample.input.data(), sample.input.size() * sizeof(float));
          session.run();
          const octet::Tensor output = session.output(0);
          if (std::memcmp(output.data, sample.output.data(), sample.output.size() * sizeof(float)) != 0) ++mismatches;
          ++runs;
        }
      } catch (const std::exception& e) {
        errors[size_t(t)] = e.what();
      }
    });
  for (std::thread& thread : threads) thread.join();
  for (const std::string& error : errors) CHECK_MESSAGE(error.empty(), error);
  CHECK(runs == kThreads * kRunsPerThread);
  CHECK(mismatches == 0);
  CHECK(model->packed_weight_bytes() == packed_bytes);
}

}  // namespace

TEST_CASE("FP32 MobileNet: 8 threads x 50 runs on one shared Model give bit-identical outputs") {
  check_concurrent_runs(octet::testing::convert_mobilenet("test-concurrency", false));
}

TEST_CASE("INT8 MobileNet: 8 threads x 50 runs on one shared Model give bit-identical outputs") {
  check_concurrent_runs(octet::testing::convert_mobilenet("test-concurrency", true));
}

TEST_CASE("a Session moves: into a vector and by assignment, its buffers and outputs unchanged") {
  const auto model = octet::Model::load(octet::testing::convert_mobilenet("test-concurrency", true));
  const std::vector<Sample> samples = reference_samples(model, 2);
  std::vector<octet::Session> sessions;
  sessions.emplace_back(model, octet::SessionOptions{1, 1, false});
  octet::Tensor input = sessions.back().input(0);
  sessions.emplace_back(model, octet::SessionOptions{1, 1, false});  // may reallocate: moves the first
  octet::Session moved = std::move(sessions.front());
  CHECK(moved.input(0).data == input.data);  // the plan stayed where it was
  std::memcpy(input.data, samples[0].input.data(), samples[0].input.size() * sizeof(float));
  moved.run();
  CHECK(std::memcmp(moved.output(0).data, samples[0].output.data(), samples[0].output.size() * sizeof(float)) == 0);
  sessions.back() = std::move(moved);
  std::memcpy(sessions.back().input(0).data, samples[1].input.data(), samples[1].input.size() * sizeof(float));
  sessions.back().run();
  CHECK(std::memcmp(sessions.back().output(0).data, samples[1].output.data(),
                    samples[1].output.size() * sizeof(float)) == 0);
}
