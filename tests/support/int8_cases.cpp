#include "support/int8_cases.h"

#include <cstring>

#include "support/random.h"

namespace octet::testing {

QuantParams per_tensor(float scale, int32_t zero_point) { return {{scale}, {zero_point}, -1}; }

Constant s32_constant(const std::vector<int32_t>& values) {
  std::vector<uint8_t> bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return {DType::s32, {static_cast<int64_t>(values.size())}, make_bytes(std::move(bytes))};
}

SingleOp quantized_gemm(std::mt19937& rng, unsigned seed, int64_t m, int64_t k, int64_t n, bool trans_b,
                        const QuantParams& a_quant, const QuantParams& b_quant, int bias_limit, Bytes& inputs) {
  SingleOp c;
  c.seed = seed;
  c.node = {"fc", "Gemm", {"a", "b", "c"}, {"y"}, {}};
  c.node.attrs.set("transB", int64_t{trans_b});
  TensorInfo a{DType::u8, {m, k}, a_quant};
  Shape b_shape = trans_b ? Shape{n, k} : Shape{k, n};
  TensorInfo b{DType::s8, b_shape, b_quant};
  Constant b_values{DType::s8, b_shape, make_bytes(random_bytes(rng, b))};
  std::vector<int32_t> bias;
  for (int64_t o = 0; o < n; ++o)
    bias.push_back(static_cast<int32_t>(std::uniform_int_distribution<int>(-bias_limit, bias_limit)(rng)));
  c.inputs = {a, b, {DType::s32, {n}, {}}};
  c.constants = {{1, b_values}, {2, s32_constant(bias)}};
  inputs = {random_bytes(rng, a), {}, {}};
  return c;
}

}  // namespace octet::testing
