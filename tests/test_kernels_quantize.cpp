// Quantize, Dequantize and quantized pooling: the oneDNN kernels against the plain C++ references on random
// shapes (rank 2 and NHWC-strided rank 4, sometimes with holes between rows so strides must be honoured;
// u8 with zero point 0 and around 128, s8), values computed by hand, the quantize/dequantize round trip,
// and the errors for bad parameters. Quantize and Dequantize must match the reference exactly (see
// kernels/quantize.cpp); averages may differ by one unit where oneDNN's JIT multiplies the window sum by a
// f32 reciprocal and lands on the other side of a .5 tie. The tests count the differing elements and print
// the counts.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <sstream>

#include "graph/ops.h"
#include "graph/quantization.h"
#include "kernels/kernel.h"
#include "support/random.h"
#include "support/single_op.h"

using namespace octet;
using namespace octet::kernels;
using octet::testing::SingleOp;
using octet::testing::StrideLayout;

namespace {

QuantParams per_tensor(float scale, int32_t zero_point) {
  QuantParams q;
  q.scales = {scale};
  q.zero_points = {zero_point};
  return q;
}

// A tensor of a case: the executor's activation layout, or (gapped) the same physical dim order with a
// one-element hole after every row of every dim.
struct Operand {
  TensorInfo info;
  StrideLayout layout;
  TensorDesc desc() const { return testing::layout_desc(info, layout); }
};

Operand operand(DType dtype, const Shape& dims, const QuantParams& quant, bool gapped = false) {
  return {{dtype, dims, quant}, gapped ? StrideLayout::gapped : StrideLayout::activation};
}

Node make_node(const std::string& op) { return SingleOp(op, 1).node; }

struct RunResult {
  std::vector<double> values;  // logical row-major
  std::string implementation;
};

// Runs a one-input, one-output node through one implementation; `values` are the input's row-major values.
RunResult run_node(const Node& node, const Operand& in, const Operand& out, const std::vector<double>& values,
                   Implementation impl) {
  SingleOp c(node);
  c.input_info(in.info, in.layout).output(out.info, out.layout);
  const testing::OpResult r = c.run(impl, {values});
  return {r.values(), r.implementation};
}

// How far the optimized result is from the reference, over many cases.
struct UlpStats {
  int64_t elements = 0, differing = 0;
  double max_difference = 0;
  std::string first;  // the first differing element, with its case
  void add(const std::vector<double>& optimized, const std::vector<double>& reference, const std::string& what) {
    REQUIRE(optimized.size() == reference.size());
    for (size_t i = 0; i < reference.size(); ++i) {
      const double d = std::fabs(optimized[i] - reference[i]);
      max_difference = std::max(max_difference, d);
      if (d > 0 && differing++ == 0) {
        std::ostringstream s;
        s << "; first: " << what << " element " << i << " optimized " << optimized[i] << " reference " << reference[i];
        first = s.str();
      }
    }
    elements += static_cast<int64_t>(reference.size());
  }
  std::string str() const {
    std::ostringstream s;
    s << differing << " of " << elements << " elements differ, max difference " << max_difference << first;
    return s.str();
  }
};

struct Random : testing::Random {
  using testing::Random::Random;
  // Rank 2 [rows, cols] or rank 4 NHWC with enough channels for oneDNN's vector loops and their tails.
  Shape shape() {
    if (coin()) return {uniform(1, 40), uniform(1, 70)};
    return {uniform(1, 2), uniform(1, 40), uniform(1, 9), uniform(1, 9)};
  }
};

// A one-input quantized node on `x` (output shape inferred), each side gapped with probability `gap_percent`
// (operand()), fed random integers over the input dtype's range and run by both kernel sets.
std::pair<RunResult, RunResult> run_both_on_random_integers(const Node& node, DType in_dtype,
                                                            const QuantParams& in_quant, DType out_dtype,
                                                            const QuantParams& out_quant, const Shape& x,
                                                            int gap_percent, Random& r) {
  std::vector<TensorInfo> outs;
  find_op_schema(node.op)->infer(node, {{in_dtype, x, in_quant}}, outs);
  const Operand in = operand(in_dtype, x, in_quant, r.coin(gap_percent));
  const Operand out = operand(out_dtype, outs[0].shape, out_quant, r.coin(gap_percent));
  const IntRange range = quantized_range(in_dtype);
  std::vector<double> values;
  for (int64_t i = 0; i < shape_elements(x); ++i)
    values.push_back(static_cast<double>(r.uniform(range.min, range.max)));
  return {run_node(node, in, out, values, Implementation::optimized),
          run_node(node, in, out, values, Implementation::reference)};
}

// The three activation flavours: u8 with zero point 0, u8 with zero point around 128, s8 (zero point 0).
struct Flavour {
  std::string name;
  DType dtype;
  int32_t zero_point_lo, zero_point_hi;
};
const Flavour kFlavours[] = {
    {"u8 zp 0", DType::u8, 0, 0}, {"u8 zp ~128", DType::u8, 100, 156}, {"s8", DType::s8, 0, 0}};

constexpr unsigned kSeeds = 60;

}  // namespace

// ---------------------------------------------------------------------------------------------------------
TEST_CASE("quantize: Quantize and Dequantize match the reference") {
  for (const Flavour& flavour : kFlavours) {
    UlpStats quantize_stats, dequantize_stats;
    std::set<std::string> implementations;
    for (unsigned seed = 1; seed <= kSeeds; ++seed) {
      Random r(seed);
      const Shape dims = r.shape();
      const float scale = r.real(0.002f, 0.2f);
      const int32_t zero_point = static_cast<int32_t>(r.uniform(flavour.zero_point_lo, flavour.zero_point_hi));
      const QuantParams quant = per_tensor(scale, zero_point);
      const IntRange range = quantized_range(flavour.dtype);
      const Operand real = operand(DType::f32, dims, {}, r.coin(30));
      const Operand quantized = operand(flavour.dtype, dims, quant, r.coin(30));
      std::ostringstream what;
      what << flavour.name << " seed=" << seed << " dims=" << shape_str(dims) << " scale=" << scale
           << " zp=" << zero_point;

      // Quantize: values past both ends of the range (saturation), a third of them on exact .5 ties.
      std::vector<double> x;
      for (int64_t i = 0; i < shape_elements(dims); ++i) {
        const float q = r.coin(33) ? static_cast<float>(r.uniform(range.min - 3, range.max + 3)) + 0.5f
                                   : r.real(static_cast<float>(range.min - 10), static_cast<float>(range.max + 10));
        x.push_back(static_cast<double>((q - static_cast<float>(zero_point)) * scale));
      }
      const Node quantize = make_node("Quantize");
      const RunResult optimized = run_node(quantize, real, quantized, x, Implementation::optimized);
      const RunResult reference = run_node(quantize, real, quantized, x, Implementation::reference);
      quantize_stats.add(optimized.values, reference.values, what.str());
      implementations.insert("Quantize: " + optimized.implementation);
      const double lowest = *std::min_element(optimized.values.begin(), optimized.values.end());
      CHECK_MESSAGE(lowest >= range.min, what.str() << ": optimized Quantize wrote " << lowest);  // s8: never -128

      // Dequantize: every integer of the dtype (s8 -128 included), at random.
      std::vector<double> q;
      for (int64_t i = 0; i < shape_elements(dims); ++i)
        q.push_back(static_cast<double>(flavour.dtype == DType::u8 ? r.uniform(0, 255) : r.uniform(-128, 127)));
      const Node dequantize = make_node("Dequantize");
      const RunResult deq_optimized = run_node(dequantize, quantized, real, q, Implementation::optimized);
      const RunResult deq_reference = run_node(dequantize, quantized, real, q, Implementation::reference);
      dequantize_stats.add(deq_optimized.values, deq_reference.values, what.str());
      implementations.insert("Dequantize: " + deq_optimized.implementation);
    }
    MESSAGE(flavour.name << " Quantize: " << quantize_stats.str() << "; Dequantize: " << dequantize_stats.str());
    CHECK_MESSAGE(quantize_stats.differing == 0, flavour.name << " Quantize: " << quantize_stats.str());
    CHECK_MESSAGE(dequantize_stats.differing == 0, flavour.name << " Dequantize: " << dequantize_stats.str());
    for (const std::string& name : implementations) MESSAGE(flavour.name << " " << name);
  }
}

TEST_CASE("quantize: hand-computed values") {
  auto check = [](const std::string& op, DType dtype, const QuantParams& quant, const std::vector<double>& in,
                  const std::vector<double>& want) {
    const Shape dims{static_cast<int64_t>(in.size())};
    const bool quantize = op == "Quantize";
    const Operand real = operand(DType::f32, dims, {}), quantized = operand(dtype, dims, quant);
    for (Implementation impl : {Implementation::reference, Implementation::optimized}) {
      const RunResult r = run_node(make_node(op), quantize ? real : quantized, quantize ? quantized : real, in, impl);
      for (size_t i = 0; i < want.size(); ++i)
        CHECK_MESSAGE(std::fabs(r.values[i] - want[i]) <= 1e-6 * std::fabs(want[i]),
                      op << " " << r.implementation << " " << in[i] << " -> " << r.values[i] << ", want " << want[i]);
    }
  };
  // u8, scale 0.1, zero point 10: 1 -> 20, -1 -> 0, 30 -> 310 saturates to 255, below the range to 0.
  check("Quantize", DType::u8, per_tensor(0.1f, 10), {1.0, -1.0, 30.0, 0.0, -5.0, 24.5}, {20, 0, 255, 10, 0, 255});
  // Ties round half to even before the zero point is added: 0.5 -> 0, 1.5 -> 2, -0.5 -> 0, 2.5 -> 2.
  check("Quantize", DType::u8, per_tensor(0.5f, 10), {0.25, 0.75, -0.25, 1.25}, {10, 12, 10, 12});
  // s8 narrow range: -100 / 0.5 = -200 -> -127; -63.75 / 0.5 = -127.5 rounds to -128 and clamps to -127.
  check("Quantize", DType::s8, per_tensor(0.5f, 0), {-100.0, 100.0, -63.75, -63.5, 1.25, -1.25},
        {-127, 127, -127, -127, 2, -2});
  // NaN -> qmin (the clamp's rule), infinities saturate.
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  check("Quantize", DType::u8, per_tensor(0.1f, 10), {nan, inf, -inf}, {0, 255, 0});
  check("Quantize", DType::s8, per_tensor(0.1f, 0), {nan, inf, -inf}, {-127, 127, -127});
  check("Dequantize", DType::u8, per_tensor(0.1f, 10), {20, 0, 255, 10}, {1.0, -1.0, 24.5, 0.0});
  check("Dequantize", DType::s8, per_tensor(0.5f, 0), {-127, 127, -128, 3}, {-63.5, 63.5, -64.0, 1.5});
}

TEST_CASE("quantize: Quantize then Dequantize returns every in-range value within scale / 2") {
  for (const Flavour& flavour : kFlavours) {
    for (unsigned seed = 1; seed <= 10; ++seed) {
      Random r(seed);
      const Shape dims = r.shape();
      const float scale = r.real(0.002f, 0.2f);
      const int32_t zero_point = static_cast<int32_t>(r.uniform(flavour.zero_point_lo, flavour.zero_point_hi));
      const IntRange range = quantized_range(flavour.dtype);
      const Operand real = operand(DType::f32, dims, {});
      const Operand quantized = operand(flavour.dtype, dims, per_tensor(scale, zero_point));
      std::vector<double> x;
      for (int64_t i = 0; i < shape_elements(dims); ++i)
        x.push_back(r.real(static_cast<float>(range.min - zero_point) * scale,
                           static_cast<float>(range.max - zero_point) * scale));
      const std::vector<double> q =
          run_node(make_node("Quantize"), real, quantized, x, Implementation::optimized).values;
      const std::vector<double> back =
          run_node(make_node("Dequantize"), quantized, real, q, Implementation::optimized).values;
      double worst = 0;
      for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs(back[i] - x[i]));
      // scale / 2, plus the f32 rounding of x / scale and of the dequantized product.
      CHECK_MESSAGE(worst <= scale / 2 * (1 + 1e-5),
                    flavour.name << " seed=" << seed << ": error " << worst << " > scale/2 = " << scale / 2);
    }
  }
}

TEST_CASE("pool: quantized AveragePool, GlobalAveragePool and MaxPool match the reference") {
  const std::string ops[] = {"AveragePool", "GlobalAveragePool", "MaxPool"};
  UlpStats stats[3];
  std::set<std::string> implementations;
  for (unsigned seed = 1; seed <= 3 * kSeeds; ++seed) {
    Random r(seed);
    const size_t which = seed % 3;
    const Flavour& flavour = kFlavours[r.uniform(0, 2)];
    Node node = make_node(ops[which]);
    const Shape x{r.uniform(1, 2), r.uniform(1, 40), r.uniform(1, 12), r.uniform(1, 12)};
    bool include_pad = false, padded = false;
    if (node.op != "GlobalAveragePool") {
      std::vector<int64_t> kernel, strides, pads(4);
      for (size_t s = 0; s < 2; ++s) {
        kernel.push_back(r.uniform(1, std::min<int64_t>(4, x[2 + s])));
        strides.push_back(r.uniform(1, 3));
        pads[s] = r.uniform(0, kernel.back() - 1);
        pads[s + 2] = r.uniform(0, kernel.back() - 1);
        padded = padded || pads[s] > 0 || pads[s + 2] > 0;
      }
      node.attrs.set("kernel_shape", kernel);
      node.attrs.set("strides", strides);
      node.attrs.set("pads", pads);
      node.attrs.set("ceil_mode", int64_t{r.coin(30)});
      include_pad = node.op == "AveragePool" && r.coin();
      if (node.op == "AveragePool") node.attrs.set("count_include_pad", int64_t{include_pad});
    }
    // Counting padding needs the zero point 0 (a padded integer 0 must mean a real 0).
    const int32_t zero_point =
        include_pad ? 0 : static_cast<int32_t>(r.uniform(flavour.zero_point_lo, flavour.zero_point_hi));
    const QuantParams quant = per_tensor(r.real(0.01f, 0.1f), zero_point);
    const auto [optimized, reference] =
        run_both_on_random_integers(node, flavour.dtype, quant, flavour.dtype, quant, x, 30, r);
    std::ostringstream what;
    what << node.op << " " << flavour.name << " seed=" << seed << " x=" << shape_str(x) << " zp=" << zero_point
         << (include_pad ? " count_include_pad" : "");
    stats[which].add(optimized.values, reference.values, what.str());
    implementations.insert(node.op + " " + dtype_name(flavour.dtype) + (padded ? " padded" : "") + ": " +
                           optimized.implementation);
    const double allowed = node.op == "MaxPool" ? 0 : 1;
    for (size_t i = 0; i < reference.values.size(); ++i)
      REQUIRE_MESSAGE(std::fabs(optimized.values[i] - reference.values[i]) <= allowed,
                      what.str() << " element " << i << " optimized " << optimized.values[i] << " reference "
                                 << reference.values[i]);
  }
  for (size_t i = 0; i < 3; ++i) MESSAGE(ops[i] << " u8/s8: " << stats[i].str());
  for (const std::string& name : implementations) MESSAGE(name);
}

TEST_CASE("pool: the integer MaxPool, requantizing or not, matches the reference on random shapes") {
  // The optimized MaxPool on u8/s8 is octet's integer loop where it requantizes or where it beats oneDNN (the
  // 2x2 stride-2 unpadded window), oneDNN elsewhere; every case must equal the reference, which requantizes
  // each pooled integer through requantize_value (Dequantize then Quantize). A third of the cases are the
  // 2x2 stride-2 window; the rest any kernel, stride, padding (begin and end), dilation and ceil_mode.
  std::set<std::string> implementations;
  size_t requantized = 0, padded_cases = 0;
  for (unsigned seed = 1; seed <= 2 * kSeeds; ++seed) {
    Random r(seed + 7000);
    const Flavour& in_flavour = kFlavours[r.uniform(0, 2)];
    const bool requantize = r.coin();
    const Flavour& out_flavour = requantize ? kFlavours[r.uniform(0, 2)] : in_flavour;
    Node node = make_node("MaxPool");
    const Shape x{r.uniform(1, 2), r.uniform(1, 70), r.uniform(2, 13), r.uniform(2, 13)};
    std::vector<int64_t> kernel, strides, dilations, pads(4);
    const bool pairs = seed % 3 == 0;
    bool padded = false;
    for (size_t s = 0; s < 2; ++s) {
      kernel.push_back(pairs ? 2 : r.uniform(1, std::min<int64_t>(4, x[2 + s])));
      strides.push_back(pairs ? 2 : r.uniform(1, 3));
      dilations.push_back(!pairs && r.coin(25) && 2 * kernel.back() <= x[2 + s] ? 2 : 1);
      pads[s] = pairs ? 0 : r.uniform(0, kernel.back() - 1);
      pads[s + 2] = pairs ? 0 : r.uniform(0, kernel.back() - 1);
      padded = padded || pads[s] > 0 || pads[s + 2] > 0;
    }
    node.attrs.set("kernel_shape", kernel);
    node.attrs.set("strides", strides);
    node.attrs.set("dilations", dilations);
    node.attrs.set("pads", pads);
    if (!pairs) node.attrs.set("ceil_mode", int64_t{r.coin(30)});
    const QuantParams in_quant = per_tensor(
        r.real(0.01f, 0.1f), static_cast<int32_t>(r.uniform(in_flavour.zero_point_lo, in_flavour.zero_point_hi)));
    const QuantParams out_quant =
        requantize ? per_tensor(r.real(0.01f, 0.1f),
                                static_cast<int32_t>(r.uniform(out_flavour.zero_point_lo, out_flavour.zero_point_hi)))
                   : in_quant;
    const auto [optimized, reference] =
        run_both_on_random_integers(node, in_flavour.dtype, in_quant, out_flavour.dtype, out_quant, x, 25, r);
    std::ostringstream what;
    what << "seed=" << seed << " x=" << shape_str(x) << " " << in_flavour.name << " -> " << out_flavour.name
         << (requantize ? " requantized" : "") << (padded ? " padded" : "") << " kernel " << kernel[0] << "x"
         << kernel[1] << " stride " << strides[0] << "x" << strides[1] << " (" << optimized.implementation << ")";
    REQUIRE(optimized.values.size() == reference.values.size());
    for (size_t i = 0; i < reference.values.size(); ++i)
      REQUIRE_MESSAGE(optimized.values[i] == reference.values[i], what.str() << " element " << i << " optimized "
                                                                             << optimized.values[i] << " reference "
                                                                             << reference.values[i]);
    if (requantize) {  // the reference's values are those of the chain Dequantize -> max -> Quantize
      requantized += 1;
      CHECK(optimized.implementation.find("requantize") != std::string::npos);
    }
    padded_cases += padded;
    implementations.insert(optimized.implementation);
  }
  CHECK(requantized > 20);
  CHECK(padded_cases > 20);
  for (const std::string& name : implementations) MESSAGE(name);
  CHECK(implementations.count("octet_max_pool_int:2x2"));
  CHECK(implementations.count("octet_max_pool_int:2x2:requantize"));
  CHECK(implementations.count("octet_max_pool_int:requantize"));
}

TEST_CASE("pool: a requantizing MaxPool by hand") {
  // u8 scale 0.1 zero point 10 -> s8 scale 0.2 zero point 0: max of {12, 40, 11, 25} = 40 is 3.0, which is
  // 15 at scale 0.2; max of {10, 9, 0, 5} = 10 is 0.0 -> 0; {255, 0, 0, 0} -> 24.5 / 0.2 = 122.5 -> 122 (even).
  const QuantParams in_quant = per_tensor(0.1f, 10), out_quant = per_tensor(0.2f, 0);
  Node node = make_node("MaxPool");
  node.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
  node.attrs.set("strides", std::vector<int64_t>{2, 2});
  const Operand in = operand(DType::u8, {1, 1, 2, 6}, in_quant), out = operand(DType::s8, {1, 1, 1, 3}, out_quant);
  const std::vector<double> x = {12, 40, 10, 9, 255, 0, 11, 25, 0, 5, 0, 0};
  for (Implementation impl : {Implementation::reference, Implementation::optimized}) {
    const RunResult r = run_node(node, in, out, x, impl);
    CHECK_MESSAGE((r.values == std::vector<double>{15, 0, 122}), r.implementation);
  }
}

TEST_CASE("pool: quantized hand-computed values") {
  // [1, 2, 2, 1]: channel means 2.5 and 5.5 round half to even, to 2 and 6.
  const Shape x{1, 2, 2, 1};
  const QuantParams quant = per_tensor(0.1f, 3);
  const Operand in = operand(DType::u8, x, quant), out = operand(DType::u8, {1, 2, 1, 1}, quant);
  for (Implementation impl : {Implementation::reference, Implementation::optimized}) {
    const RunResult r = run_node(make_node("GlobalAveragePool"), in, out, {2, 3, 5, 6}, impl);
    CHECK_MESSAGE((r.values == std::vector<double>{2, 6}),
                  r.implementation << ": " << r.values[0] << ", " << r.values[1]);
  }
}

TEST_CASE("quantize: bad parameters throw an Error naming the node and the field") {
  auto expect_error = [](const Node& node, const Operand& in, const Operand& out, const std::string& what) {
    testing::check_rejected(SingleOp(node), {in.desc()}, {out.desc()}, what);
  };
  const Shape dims{2, 3};
  const Operand f32 = operand(DType::f32, dims, {});
  const Operand u8 = operand(DType::u8, dims, per_tensor(0.1f, 10));
  const Node quantize = make_node("Quantize"), dequantize = make_node("Dequantize");
  expect_error(quantize, f32, operand(DType::u8, dims, {}), "output 0 has dtype u8 but no quantization parameters");
  expect_error(dequantize, operand(DType::s8, dims, {}), f32, "input 0 has dtype s8 but no quantization parameters");
  expect_error(quantize, f32, operand(DType::u8, dims, per_tensor(0.0f, 10)), "output 0 scale 0");
  expect_error(quantize, f32, operand(DType::u8, dims, per_tensor(std::numeric_limits<float>::infinity(), 0)),
               "output 0 scale inf");
  expect_error(dequantize, operand(DType::u8, dims, per_tensor(0.1f, 300)), f32, "input 0 zero point 300");
  expect_error(quantize, f32, operand(DType::s8, dims, per_tensor(0.1f, -128)),
               "zero point -128 is outside the s8 range [-127, 127]");
  QuantParams per_channel = per_tensor(0.1f, 0);
  per_channel.axis = 0;
  expect_error(quantize, f32, operand(DType::s8, dims, per_channel), "per tensor");
  expect_error(quantize, u8, u8, "input 0 has dtype u8");
  expect_error(dequantize, u8, u8, "output 0 has dtype u8");

  // Pooling does not requantize; counting padding needs a zero point of 0.
  Node average = make_node("AveragePool");
  average.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
  const Shape x{1, 4, 4, 4}, y{1, 4, 3, 3};
  expect_error(average, operand(DType::u8, x, per_tensor(0.1f, 10)), operand(DType::u8, y, per_tensor(0.2f, 10)),
               "output 0 quantization (scale 0.2, zero point 10) differs from input 0's (scale 0.1, zero point 10)");
  // A MaxPool requantizes, per tensor only, to u8 or s8.
  Node max = make_node("MaxPool");
  max.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
  QuantParams per_channel_out = per_tensor(0.1f, 11);
  per_channel_out.axis = 1;
  per_channel_out.scales.assign(4, 0.1f);
  per_channel_out.zero_points.assign(4, 11);
  expect_error(max, operand(DType::u8, x, per_tensor(0.1f, 10)), operand(DType::u8, y, per_channel_out),
               "output 0 quantization must be per tensor (one scale, one zero point) for a MaxPool that requantizes");
  expect_error(max, operand(DType::u8, x, per_tensor(0.1f, 10)), operand(DType::f32, y, {}),
               "output 0 has dtype f32; a MaxPool on u8 writes u8 or s8");
  Node padded = average;
  padded.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  padded.attrs.set("count_include_pad", int64_t{1});
  expect_error(padded, operand(DType::u8, x, per_tensor(0.1f, 10)),
               operand(DType::u8, {1, 4, 5, 5}, per_tensor(0.1f, 10)),
               "count_include_pad=1 with padding needs zero point 0");
}
