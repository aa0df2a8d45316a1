// Seeded random values for tests: one mt19937 per case, so a failing seed can be replayed alone.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "graph/graph.h"

namespace octet::testing {

struct Random {
  std::mt19937 rng;
  explicit Random(unsigned seed) : rng(seed) {}

  int64_t uniform(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }
  // The same with an int distribution (draws other values than uniform(): kept for the tests' seeds).
  int64_t pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
  bool coin(int percent = 50) { return uniform(0, 99) < percent; }
  float real(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }
  // Every dim in [1, max_dim].
  Shape shape(size_t rank, int64_t max_dim);
  std::vector<float> floats(int64_t n, float lo = -1.0f, float hi = 1.0f);
  // Row-major raw bytes of a tensor: f32 in [-1, 1), integer dtypes over their whole quantized range.
  std::vector<uint8_t> bytes(const TensorInfo& info);
};

// Row-major raw bytes of a tensor from `rng`, as Random::bytes.
std::vector<uint8_t> random_bytes(std::mt19937& rng, const TensorInfo& info);

// Deterministic values in [-1, 1) from a linear congruential generator (no <random>: stable across
// standard libraries, used where the values end up in files compared byte for byte).
std::vector<float> pseudo_random(size_t n, uint32_t seed);
Constant random_constant(const Shape& shape, uint32_t seed);

}  // namespace octet::testing
