// Quantized single-op cases shared by the INT8 kernel tests (tests/test_kernels_int8.cpp and
// tests/test_kernels_exact_int8.cpp).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "graph/graph.h"
#include "support/single_op.h"

namespace octet::testing {

// One scale and zero point for the whole tensor.
QuantParams per_tensor(float scale, int32_t zero_point);
// An s32 vector constant (a quantized bias).
Constant s32_constant(const std::vector<int32_t>& values);

// A quantized Gemm node "fc": y = a * B + c, a u8 [m, k] activation with `a_quant`, B an s8 constant ([n, k]
// with trans_b, else [k, n]) with `b_quant`, c an s32 bias of n values in [-bias_limit, bias_limit]. B's
// bytes, then the bias, then a's bytes (returned in `inputs`, the harness's Bytes) are drawn from `rng`. The
// output is the caller's (c.outputs).
SingleOp quantized_gemm(std::mt19937& rng, unsigned seed, int64_t m, int64_t k, int64_t n, bool trans_b,
                        const QuantParams& a_quant, const QuantParams& b_quant, int bias_limit, Bytes& inputs);

}  // namespace octet::testing
