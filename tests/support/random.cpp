#include "support/random.h"

#include <cstring>

#include "graph/quantization.h"

namespace octet::testing {

Shape Random::shape(size_t rank, int64_t max_dim) {
  Shape s(rank);
  for (int64_t& d : s) d = uniform(1, max_dim);
  return s;
}

std::vector<float> Random::floats(int64_t n, float lo, float hi) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = real(lo, hi);
  return v;
}

std::vector<uint8_t> Random::bytes(const TensorInfo& info) { return random_bytes(rng, info); }

std::vector<uint8_t> random_bytes(std::mt19937& rng, const TensorInfo& info) {
  const int64_t n = shape_elements(info.shape);
  std::vector<uint8_t> b(static_cast<size_t>(n) * dtype_size(info.dtype));
  if (info.dtype == DType::f32) {
    std::uniform_real_distribution<float> d(-1, 1);
    for (int64_t i = 0; i < n; ++i) {
      const float v = d(rng);
      std::memcpy(&b[static_cast<size_t>(i) * 4], &v, 4);
    }
  } else {
    const IntRange r = quantized_range(info.dtype);
    std::uniform_int_distribution<int> d(r.min, r.max);
    for (auto& x : b) x = static_cast<uint8_t>(d(rng));
  }
  return b;
}

std::vector<float> pseudo_random(size_t n, uint32_t seed) {
  std::vector<float> values(n);
  for (float& v : values) {
    seed = seed * 1664525u + 1013904223u;
    v = static_cast<float>(seed >> 8) / static_cast<float>(1u << 23) - 1.0f;
  }
  return values;
}

Constant random_constant(const Shape& shape, uint32_t seed) {
  return Constant::from_floats(shape, pseudo_random(static_cast<size_t>(shape_elements(shape)), seed));
}

}  // namespace octet::testing
