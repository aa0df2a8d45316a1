// INT8 Conv and Gemm: the oneDNN u8s8 kernels against the plain integer references (exact to one unit in
// the last place), on random shapes with zero points, per-channel scales, s32 bias, fused activations and
// a quantized residual sum; and weight-only INT8 (s8 weights, f32 activations).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <sstream>

#include "graph/ops.h"
#include "graph/quantization.h"
#include "kernels/kernel.h"
#include "support/int8_cases.h"
#include "support/random.h"
#include "support/single_op.h"

using namespace octet;
using namespace octet::kernels;

using octet::testing::Bytes;
using octet::testing::OpResult;
using octet::testing::per_tensor;
using octet::testing::quantized_gemm;
using octet::testing::random_bytes;
using octet::testing::SingleOp;

namespace {

// Compares two outputs; quantized ones may differ by one unit (rounding of x * (1/s) vs x / s and of
// float sums in a different order), floats by a relative 1e-4. Returns the count of 1-unit differences.
int compare(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, DType dtype, const std::string& what) {
  REQUIRE(got.size() == want.size());
  int off_by_one = 0;
  size_t n = got.size() / dtype_size(dtype);
  for (size_t i = 0; i < n; ++i) {
    double a, b;
    if (dtype == DType::f32) {
      float fa, fb;
      std::memcpy(&fa, &got[i * 4], 4);
      std::memcpy(&fb, &want[i * 4], 4);
      if (std::fabs(fa - fb) > 1e-4 * std::max(1.0f, std::fabs(fb))) {
        FAIL_CHECK(what << ": element " << i << " got " << fa << " want " << fb);
        return off_by_one;
      }
      continue;
    }
    a = dtype == DType::u8 ? got[i] : static_cast<int8_t>(got[i]);
    b = dtype == DType::u8 ? want[i] : static_cast<int8_t>(want[i]);
    if (std::fabs(a - b) > 1) {
      FAIL_CHECK(what << ": element " << i << " got " << a << " want " << b);
      return off_by_one;
    }
    off_by_one += a != b;
  }
  return off_by_one;
}

}  // namespace

TEST_CASE("INT8 Conv: oneDNN equals the integer reference to one unit (zero points, per-channel, post-ops, sum)") {
  int total = 0, off_by_one = 0;
  for (unsigned seed = 1; seed <= 48; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
    bool depthwise = seed % 4 == 0;
    int64_t cin = pick(1, 4) * (depthwise ? 8 : 4), cout = depthwise ? cin : pick(1, 4) * 8;
    int64_t k = seed % 3 == 0 ? 1 : 3, h = pick(5, 12), w = pick(5, 12);
    SingleOp c;
    c.seed = seed;
    c.node = {"qconv", "Conv", {"x", "w", "b"}, {"y"}, {}};
    c.node.attrs.set("pads", std::vector<int64_t>{k / 2, k / 2, k / 2, k / 2});
    c.node.attrs.set("strides", std::vector<int64_t>{pick(1, 2), pick(1, 2)});
    if (depthwise) c.node.attrs.set("group", cin);
    const char* acts[] = {"", "relu", "clip", "leaky_relu"};
    std::string act = acts[seed % 4];
    if (!act.empty()) c.node.attrs.set("act", act);
    if (act == "clip") c.node.attrs.set("act_alpha", 0.0f), c.node.attrs.set("act_beta", 6.0f);
    if (act == "leaky_relu") c.node.attrs.set("act_alpha", 0.1f);
    bool src_zp = seed % 5 == 1;
    DType dst_type = seed % 6 == 5 ? DType::f32 : seed % 6 == 4 ? DType::s8 : DType::u8;

    TensorInfo x{DType::u8, {1, cin, h, w}, per_tensor(0.02f, src_zp ? static_cast<int32_t>(pick(100, 140)) : 0)};
    Shape w_shape = {cout, depthwise ? 1 : cin, k, k};
    TensorInfo wi{DType::s8, w_shape, {}};
    Constant weights{DType::s8, w_shape, make_bytes(random_bytes(rng, wi))};
    for (int64_t o = 0; o < cout; ++o) wi.quant.scales.push_back(0.001f * static_cast<float>(pick(1, 20)));
    wi.quant.zero_points.assign(static_cast<size_t>(cout), 0);
    wi.quant.axis = 0;
    std::vector<int64_t> bias_values;
    for (int64_t o = 0; o < cout; ++o) bias_values.push_back(pick(-3000, 3000));
    std::vector<uint8_t> bias_bytes(static_cast<size_t>(cout) * 4);
    for (int64_t o = 0; o < cout; ++o) {
      int32_t v = static_cast<int32_t>(bias_values[static_cast<size_t>(o)]);
      std::memcpy(&bias_bytes[static_cast<size_t>(o) * 4], &v, 4);
    }
    Constant bias{DType::s32, {cout}, make_bytes(bias_bytes)};
    c.inputs = {x, wi, {DType::s32, {cout}, {}}};
    Bytes bytes = {random_bytes(rng, x), {}, {}};
    c.constants = {{1, weights}, {2, bias}};
    std::vector<TensorInfo> outs = c.output_infos();
    c.outputs = {
        {dst_type, outs[0].shape,
         dst_type == DType::f32 ? QuantParams{} : per_tensor(0.05f, dst_type == DType::u8 && act.empty() ? 100 : 0)}};
    if (seed % 3 == 2 && dst_type != DType::f32) {  // a quantized residual of its own scale and zero point
      TensorInfo r{dst_type, outs[0].shape, per_tensor(0.03f, dst_type == DType::u8 ? 20 : 0)};
      c.node.inputs.push_back("r");
      c.node.attrs.set("sum_act", std::string("relu"));
      c.inputs.push_back(r);
      bytes.push_back(random_bytes(rng, r));
      if (act == "leaky_relu" || act == "clip") c.node.attrs.values.erase("act");  // see make_conv()
    }
    std::ostringstream what;
    what << "seed=" << seed << " cin=" << cin << " cout=" << cout << " k=" << k << " hw=" << h << "x" << w
         << " act=" << act << " src_zp=" << x.quant.zero_points[0] << " dst=" << dtype_name(dst_type)
         << " sum=" << (c.inputs.size() > 3);
    const OpResult optimized = c.run_bytes(Implementation::optimized, bytes);
    const std::string& optimized_impl = optimized.implementation;
    const std::vector<uint8_t>& got = optimized.bytes[0];
    const std::vector<uint8_t> want = c.run_bytes(Implementation::reference, bytes).bytes[0];
    off_by_one += compare(got, want, dst_type, what.str());
    total += static_cast<int>(want.size() / dtype_size(dst_type));
    CHECK_MESSAGE(optimized_impl.find("ref") == std::string::npos, what.str() << " ran " << optimized_impl);
  }
  MESSAGE("INT8 Conv: " << off_by_one << " of " << total << " outputs differ by one unit, none by more");
}

TEST_CASE("INT8 Gemm: oneDNN equals the integer reference to one unit") {
  for (unsigned seed = 1; seed <= 16; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
    int64_t m = pick(1, 4), k = pick(8, 300), n = pick(1, 40);
    bool trans_b = seed % 2;
    QuantParams b_quant;
    for (int64_t o = 0; o < n; ++o) b_quant.scales.push_back(0.001f * static_cast<float>(pick(1, 20)));
    b_quant.axis = trans_b ? 0 : 1;
    Bytes bytes;
    SingleOp c =
        quantized_gemm(rng, seed, m, k, n, trans_b, per_tensor(0.02f, seed % 3 == 0 ? 128 : 0), b_quant, 5000, bytes);
    DType dst_type = seed % 2 ? DType::f32 : DType::u8;
    c.outputs = {{dst_type, {m, n}, dst_type == DType::f32 ? QuantParams{} : per_tensor(0.1f, 60)}};
    std::ostringstream what;
    what << "seed=" << seed << " m=" << m << " k=" << k << " n=" << n << " transB=" << trans_b
         << " dst=" << dtype_name(dst_type);
    compare(c.run_bytes(Implementation::optimized, bytes).bytes[0],
            c.run_bytes(Implementation::reference, bytes).bytes[0], dst_type, what.str());
  }
}

TEST_CASE("Weight-only INT8: s8 weights with f32 activations equal the f32 layer on dequantized weights") {
  std::mt19937 rng(3);
  SingleOp q;
  q.node = {"conv", "Conv", {"x", "w"}, {"y"}, {}};
  TensorInfo x{DType::f32, {1, 8, 6, 6}, {}};
  Shape w_shape = {16, 8, 3, 3};
  TensorInfo wi{DType::s8, w_shape, {}};
  Constant w8{DType::s8, w_shape, make_bytes(random_bytes(rng, wi))};
  for (int o = 0; o < 16; ++o) wi.quant.scales.push_back(0.01f * static_cast<float>(o + 1));
  wi.quant.axis = 0;
  std::vector<float> dequantized;
  for (int64_t i = 0; i < w8.elements(); ++i)
    dequantized.push_back(dequantize_value(w8.data<int8_t>()[i], wi.quant.scales[static_cast<size_t>(i / 72)], 0));
  Constant w32 = Constant::from_floats(w_shape, dequantized);
  q.inputs = {x, wi};
  Bytes bytes = {random_bytes(rng, x), {}};
  q.constants = {{1, w8}};
  q.outputs = {{DType::f32, {1, 16, 4, 4}, {}}};
  SingleOp f = q;
  f.inputs[1] = {DType::f32, w_shape, {}};
  f.constants = {{1, w32}};
  for (Implementation impl : {Implementation::optimized, Implementation::reference})
    compare(q.run_bytes(impl, bytes).bytes[0], f.run_bytes(impl, bytes).bytes[0], DType::f32,
            impl == Implementation::optimized ? "weight-only optimized" : "weight-only reference");
}

TEST_CASE("Weight-only Gemm (the FP32 classifier): the s8 GEMV equals the reference Gemm on random shapes") {
  for (unsigned seed = 1; seed <= 24; ++seed) {
    std::mt19937 rng(100 + seed);
    auto pick = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
    // K covers the 32-wide vector loop, its tail, and K < 32.
    int64_t m = pick(1, 3), k = seed % 4 == 0 ? 64 * pick(1, 4) : pick(1, 300), n = pick(1, 40);
    bool trans_b = seed % 2, per_channel = seed % 3 != 0;
    int bias_kind = static_cast<int>(seed % 4);  // 0 none, 1 [N], 2 [1,N], 3 scalar [1]
    float beta = seed % 5 == 0 ? 0.5f : 1.0f;
    SingleOp c;
    c.seed = seed;
    c.node = {"fc", "Gemm", {"a", "b"}, {"y"}, {}};
    c.node.attrs.set("transB", int64_t{trans_b});
    c.node.attrs.set("beta", beta);
    TensorInfo a{DType::f32, {m, k}, {}};
    Shape b_shape = trans_b ? Shape{n, k} : Shape{k, n};
    TensorInfo bi{DType::s8, b_shape, {}};
    Constant b{DType::s8, b_shape, make_bytes(random_bytes(rng, bi))};
    for (int64_t o = 0; o < (per_channel ? n : 1); ++o)
      bi.quant.scales.push_back(0.001f * static_cast<float>(pick(1, 20)));
    bi.quant.axis = per_channel ? (trans_b ? 0 : 1) : -1;
    Shape c_shape = bias_kind == 1 ? Shape{n} : bias_kind == 2 ? Shape{1, n} : Shape{1};
    std::vector<float> c_values;
    for (int64_t o = 0; o < shape_elements(c_shape); ++o)
      c_values.push_back(static_cast<float>(pick(-100, 100)) / 50.0f);
    Constant bias = Constant::from_floats(c_shape, c_values);
    c.inputs = {a, bi};
    Bytes bytes = {random_bytes(rng, a), {}};
    c.constants = {{1, b}};
    if (bias_kind != 0) {
      c.node.inputs.push_back("c");
      c.inputs.push_back({DType::f32, c_shape, {}});
      bytes.emplace_back();
      c.constants[2] = bias;
    }
    c.outputs = {{DType::f32, {m, n}, {}}};
    std::ostringstream what;
    what << "seed=" << seed << " m=" << m << " k=" << k << " n=" << n << " transB=" << trans_b
         << " per_channel=" << per_channel << " bias_kind=" << bias_kind << " beta=" << beta;
    const OpResult optimized = c.run_bytes(Implementation::optimized, bytes);
    const std::string& impl_opt = optimized.implementation;
    compare(optimized.bytes[0], c.run_bytes(Implementation::reference, bytes).bytes[0], DType::f32, what.str());
    CHECK_MESSAGE(impl_opt.rfind("octet_gemv_s8", 0) == 0, what.str() << ": ran " << impl_opt);
  }
}

TEST_CASE("INT8 MatMul of two activations (attention): oneDNN equals the integer reference to one unit") {
  for (unsigned seed = 1; seed <= 24; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
    const size_t rank = static_cast<size_t>(pick(2, 4));
    const int64_t m = pick(1, 40), k = pick(1, 80), n = pick(1, 40);
    Shape a_shape, b_shape;
    for (size_t d = 0; d + 2 < rank; ++d) {
      const int64_t batch = pick(1, 4);
      a_shape.push_back(batch);
      b_shape.push_back(seed % 5 == 0 ? 1 : batch);  // sometimes broadcast along a batch dim
    }
    a_shape.insert(a_shape.end(), {m, k});
    b_shape.insert(b_shape.end(), {k, n});
    SingleOp c;
    c.seed = seed;
    c.node = {"attention", "MatMul", {"a", "b"}, {"y"}, {}};
    const DType a_type = seed % 4 == 3 ? DType::s8 : DType::u8;
    TensorInfo a{a_type, a_shape,
                 per_tensor(0.02f, a_type == DType::u8 && seed % 3 ? static_cast<int32_t>(pick(0, 255)) : 0)};
    TensorInfo b{DType::s8, b_shape, per_tensor(0.03f, 0)};
    c.inputs = {a, b};
    const Bytes bytes = {random_bytes(rng, a), random_bytes(rng, b)};
    const DType dst_type = seed % 3 == 0 ? DType::f32 : seed % 3 == 1 ? DType::u8 : DType::s8;
    Shape y_shape = c.output_infos()[0].shape;
    c.outputs = {{dst_type, y_shape,
                  dst_type == DType::f32
                      ? QuantParams{}
                      : per_tensor(0.5f, dst_type == DType::u8 ? static_cast<int32_t>(pick(0, 255)) : 0)}};
    std::ostringstream what;
    what << "seed=" << seed << " a=" << octet::shape_str(a_shape) << " b=" << octet::shape_str(b_shape)
         << " a_zp=" << a.quant.zero_points[0] << " dst=" << dtype_name(dst_type);
    const OpResult optimized = c.run_bytes(Implementation::optimized, bytes);
    compare(optimized.bytes[0], c.run_bytes(Implementation::reference, bytes).bytes[0], dst_type, what.str());
    // Rank 4 in the harness's activation layout is channels-last, which oneDNN's int8 matmul runs as ref_int8;
    // the policy (quantize_graph.cpp) keeps rank-4 MatMuls FP32, so only ranks 2 and 3 are on the hot path.
    if (rank <= 3)
      CHECK_MESSAGE(optimized.implementation.find("ref") == std::string::npos,
                    what.str() << " ran " << optimized.implementation);
  }
}

TEST_CASE("INT8 MatMul of two activations: hand-computed values, and a B with a zero point is refused") {
  // A u8 (scale 0.5, zp 2) [1,2]: values (4-2)*0.5 = 1 and (6-2)*0.5 = 2. B s8 (scale 0.25) [2,1]: 8*0.25 = 2,
  // -4*0.25 = -1. Y = 1*2 + 2*(-1) = 0 ... and with the second column [4, 4] (1, 1): 3.
  SingleOp c;
  c.node = {"attention", "MatMul", {"a", "b"}, {"y"}, {}};
  c.inputs = {{DType::u8, {1, 2}, per_tensor(0.5f, 2)}, {DType::s8, {2, 2}, per_tensor(0.25f, 0)}};
  c.outputs = {{DType::f32, {1, 2}, {}}};
  const Bytes bytes = {{4, 6}, {8, 4, static_cast<uint8_t>(int8_t{-4}), 4}};
  for (Implementation impl : {Implementation::optimized, Implementation::reference}) {
    const std::vector<float> y = c.run_bytes(impl, bytes).floats();
    CHECK(y == std::vector<float>{0.0f, 3.0f});
  }
  c.inputs[1].quant = per_tensor(0.25f, 3);
  CHECK_THROWS_WITH_AS(c.run_bytes(Implementation::optimized, bytes), doctest::Contains("zero point 0"), octet::Error);
}

TEST_CASE("Softmax writing u8 (zero point 0): oneDNN equals the float reference quantized, to one unit") {
  for (unsigned seed = 1; seed <= 16; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
    Shape x_shape;
    // Lines (the last axis) up to 200 long, as attention's 197 tokens, in at most a few hundred of them.
    const int64_t rank = pick(1, 4);
    for (int64_t d = 0; d + 1 < rank; ++d) x_shape.push_back(pick(1, 6));
    x_shape.push_back(pick(1, seed % 2 ? 12 : 200));
    SingleOp c;
    c.seed = seed;
    c.node = {"softmax", "Softmax", {"x"}, {"y"}, {}};
    c.node.attrs.set("axis", int64_t{-1});
    TensorInfo x{DType::f32, x_shape, {}};
    c.inputs = {x};
    std::vector<uint8_t> x_bytes = random_bytes(rng, x);  // [-1, 1)
    for (size_t i = 0; i < x_bytes.size(); i += 4) {      // spread to [-6, 6) so some rows are peaked
      float v;
      std::memcpy(&v, &x_bytes[i], 4);
      v *= 6.0f;
      std::memcpy(&x_bytes[i], &v, 4);
    }
    const float scale = seed % 3 == 0 ? 1.0f / 255 : 0.002f;  // [0, 1], or a calibrated [0, 0.51]
    c.outputs = {{DType::u8, x_shape, per_tensor(scale, 0)}};
    std::ostringstream what;
    what << "seed=" << seed << " x=" << octet::shape_str(x_shape) << " scale=" << scale;
    const OpResult optimized = c.run_bytes(Implementation::optimized, {x_bytes});
    compare(optimized.bytes[0], c.run_bytes(Implementation::reference, {x_bytes}).bytes[0], DType::u8, what.str());
    if (x_shape.size() <= 3)  // rank 4: channels-last strides, ref; the policy writes u8 at ranks <= 3
      CHECK_MESSAGE(optimized.implementation.find("ref") == std::string::npos,
                    what.str() << " ran " << optimized.implementation);
  }
  // Hand-computed: softmax(1, 2, 3) = 0.0900, 0.2447, 0.6652; at scale 1/255: 22.96, 62.40, 169.64.
  SingleOp c;
  c.node = {"softmax", "Softmax", {"x"}, {"y"}, {}};
  c.inputs = {{DType::f32, {3}, {}}};
  c.outputs = {{DType::u8, {3}, per_tensor(1.0f / 255, 0)}};
  for (Implementation impl : {Implementation::optimized, Implementation::reference})
    CHECK(c.run(impl, {{1, 2, 3}}).values() == std::vector<double>{23, 62, 170});
  c.outputs[0].quant = per_tensor(1.0f / 255, 10);
  CHECK_THROWS_WITH_AS(c.run(Implementation::optimized, {{1, 2, 3}}), doctest::Contains("zero point 0"), octet::Error);
}

TEST_CASE("LayerNormalization writing u8/s8: oneDNN then Quantize equals the reference quantized, to one unit") {
  for (unsigned seed = 1; seed <= 16; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
    Shape x_shape;
    const int64_t rank = pick(1, 3);
    for (int64_t d = 0; d + 1 < rank; ++d) x_shape.push_back(pick(1, 20));
    x_shape.push_back(pick(1, 200));
    const int64_t c = x_shape.back();
    SingleOp op;
    op.seed = seed;
    op.node = {"ln", "LayerNormalization", {"x", "scale", "bias"}, {"y"}, {}};
    op.node.attrs.set("axis", int64_t{-1});
    op.inputs = {{DType::f32, x_shape, {}}, {DType::f32, {c}, {}}, {DType::f32, {c}, {}}};
    op.constants = {{1, octet::testing::random_constant({c}, seed)},
                    {2, octet::testing::random_constant({c}, seed + 100)}};
    const DType dst_type = seed % 3 == 0 ? DType::s8 : DType::u8;
    op.outputs = {{dst_type, x_shape, per_tensor(0.02f, dst_type == DType::u8 ? 128 : 0)}};
    const Bytes bytes = {random_bytes(rng, op.inputs[0]), {}, {}};
    std::ostringstream what;
    what << "seed=" << seed << " x=" << octet::shape_str(x_shape) << " dst=" << dtype_name(dst_type);
    const OpResult optimized = op.run_bytes(Implementation::optimized, bytes);
    compare(optimized.bytes[0], op.run_bytes(Implementation::reference, bytes).bytes[0], dst_type, what.str());
    CHECK_MESSAGE(optimized.implementation.find("ref") == std::string::npos,
                  what.str() << " ran " << optimized.implementation);
  }
  // The statistics outputs are f32 and not written by the quantizing kernel: refused, naming the node.
  SingleOp op;
  op.node = {"ln", "LayerNormalization", {"x"}, {"y", "mean"}, {}};
  op.inputs = {{DType::f32, {2, 4}, {}}};
  op.outputs = {{DType::u8, {2, 4}, per_tensor(0.02f, 128)}, {DType::f32, {2, 1}, {}}};
  CHECK_THROWS_WITH_AS(op.run(Implementation::optimized, {{0, 1, 2, 3, 4, 5, 6, 7}}), doctest::Contains("Mean"),
                       octet::Error);
}
