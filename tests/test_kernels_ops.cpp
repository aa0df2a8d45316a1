// Every op family except Conv/Gemm/MatMul: the optimized kernels against the plain C++ references on random
// shapes and attributes (NHWC-strided rank-4 tensors, and "gapped" layouts with holes between rows to prove
// strides are honoured), the references against values computed by hand from the ONNX definitions, and the
// errors for unsupported settings. Every mismatch prints the op, attributes, shapes, layout and seed.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include "graph/ops.h"
#include "kernels/kernel.h"
#include "support/random.h"
#include "support/single_op.h"

using namespace octet;
using namespace octet::kernels;
using octet::testing::check_rejected;
using octet::testing::OpResult;
using octet::testing::StrideLayout;
using OpCase = octet::testing::SingleOp;

namespace {

bool close(double got, double want, double rtol, double atol) {
  if (std::isnan(got) || std::isnan(want)) return std::isnan(got) && std::isnan(want);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

// Implementation names seen per op ("(mixed)": with gapped layouts), printed once per test case.
std::map<std::string, std::set<std::string>>& implementations_seen() {
  static std::map<std::string, std::set<std::string>> seen;
  return seen;
}

void report_implementations() {
  for (const auto& kv : implementations_seen()) {
    std::string names;
    for (const std::string& n : kv.second) names += " " + n;
    MESSAGE(kv.first << " ran on:" << names);
  }
  implementations_seen().clear();
}

// The optimized kernel against the reference on random activation values drawn from c.seed.
void check_against_reference(const OpCase& c, double rtol = 1e-5, double atol = 1e-6) {
  std::mt19937 rng(c.seed);
  testing::Values values(c.inputs.size());
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (c.constants.count(i)) continue;
    for (int64_t n = 0; n < shape_elements(c.inputs[i].shape); ++n)
      values[i].push_back(c.inputs[i].dtype == DType::u8 ? static_cast<double>(rng() % 256)
                                                         : std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng));
  }
  OpResult optimized, reference;
  try {
    optimized = c.run(Implementation::optimized, values);
    reference = c.run(Implementation::reference, values);
  } catch (const std::exception& e) {
    FAIL_CHECK(c.describe() << ": " << std::string(e.what()));
    return;
  }
  implementations_seen()[c.node.op].insert(optimized.implementation +
                                           (c.layout == StrideLayout::mixed ? "(mixed)" : ""));
  std::ostringstream mismatch;  // the first one
  for (size_t o = 0; o < reference.bytes.size() && mismatch.str().empty(); ++o) {
    const std::vector<double> got = optimized.values(o), want = reference.values(o);
    for (size_t i = 0; i < want.size() && mismatch.str().empty(); ++i)
      if (!close(got[i], want[i], rtol, atol))
        mismatch << c.describe() << " [" << optimized.implementation << "]: output " << o << " element " << i
                 << " optimized " << got[i] << " reference " << want[i];
  }
  CHECK_MESSAGE(mismatch.str().empty(), mismatch.str());
}

// Both implementations against values computed by hand; every activation input gets the given values.
void check_values(const OpCase& c, const std::vector<std::vector<double>>& values, const std::vector<double>& want,
                  size_t output = 0) {
  for (Implementation impl : {Implementation::reference, Implementation::optimized}) {
    const char* which = impl == Implementation::reference ? "reference" : "optimized";
    std::vector<double> got;
    try {
      got = c.run(impl, values).values(output);
    } catch (const std::exception& e) {
      FAIL_CHECK(c.describe() << " " << which << ": " << std::string(e.what()));
      continue;
    }
    REQUIRE_MESSAGE(got.size() == want.size(), c.describe());
    for (size_t i = 0; i < want.size(); ++i)
      CHECK_MESSAGE(close(got[i], want[i], 1e-5, 1e-6),
                    c.describe() << " " << which << ": element " << i << " got " << got[i] << " want " << want[i]);
  }
}

// ---- Random shapes ----

struct Random : testing::Random {
  using testing::Random::Random;
  // Rank 4 (NHWC-strided) half of the time.
  Shape activation_shape(int64_t max_dim = 5) {
    return shape(coin() ? 4 : static_cast<size_t>(uniform(1, 5)), max_dim);
  }
  StrideLayout layout() { return coin(30) ? StrideLayout::mixed : StrideLayout::activation; }
  DType copy_dtype() { return coin(25) ? DType::u8 : DType::f32; }
};

std::vector<float> random_floats(Random& r, int64_t n, float lo, float hi) { return r.floats(n, lo, hi); }

constexpr unsigned kSeeds = 40;

}  // namespace

// ---------------------------------------------------------------------------------------------------------
TEST_CASE("eltwise: Relu, LeakyRelu, Clip, Sigmoid match the reference") {
  const char* ops[] = {"Relu", "LeakyRelu", "Clip", "Sigmoid"};
  for (unsigned seed = 1; seed <= kSeeds; ++seed) {
    Random r(seed);
    OpCase c(ops[seed % 4], 1);
    c.seed = seed;
    c.layout = r.layout();
    c.input(r.coin(10) ? Shape{} : r.activation_shape());
    if (c.node.op == "LeakyRelu" && r.coin()) c.attr("alpha", r.real(0.0f, 0.5f));
    if (c.node.op == "Clip" && r.coin(70)) c.attr("min", r.real(-1.5f, 0.0f));
    if (c.node.op == "Clip" && r.coin(70)) c.attr("max", r.real(0.0f, 1.5f));
    check_against_reference(c);
  }
  report_implementations();
}

TEST_CASE("eltwise: HardSigmoid, HardSwish, Gelu, Erf, Sqrt, Pow match the reference") {
  const char* ops[] = {"HardSigmoid", "HardSwish", "Gelu", "Erf", "Sqrt", "Pow"};
  for (unsigned seed = 1; seed <= kSeeds; ++seed) {
    Random r(seed);
    OpCase c(ops[seed % 6], 1);
    c.seed = seed;
    c.layout = r.layout();
    c.input(r.coin(10) ? Shape{} : r.activation_shape());
    if (c.node.op == "HardSigmoid" && r.coin()) c.attr("alpha", r.real(0.1f, 0.5f)).attr("beta", r.real(0.2f, 0.7f));
    if (c.node.op == "Pow") c.attr("exponent", r.coin() ? 2.0f : 3.0f);
    check_against_reference(c);
  }
  report_implementations();
}

TEST_CASE("eltwise: hand-computed values of the modern activations") {
  check_values(OpCase("HardSigmoid", 1).input({4}), {{-3, 0, 1, 3}}, {0, 0.5, 0.7, 1});  // default alpha 0.2, beta 0.5
  check_values(OpCase("HardSigmoid", 1).input({3}).attr("alpha", 1.0f / 6).attr("beta", 0.5f), {{-4, 0, 1.5}},
               {0, 0.5, 0.75});
  check_values(OpCase("HardSwish", 1).input({4}), {{-4, -1, 1, 4}}, {0, -1.0 / 3, 2.0 / 3, 4});
  check_values(OpCase("Gelu", 1).input({3}), {{-1, 0, 2}}, {-0.15865525393145707, 0, 1.9544997361036416});
  check_values(OpCase("Erf", 1).input({3}), {{-1, 0, 0.5}}, {-0.8427007929497149, 0, 0.5204998778130465});
  check_values(OpCase("Sqrt", 1).input({2}), {{4, 2}}, {2, 1.4142135623730951});
  check_values(OpCase("Pow", 1).input({2}).attr("exponent", 2.0f), {{-3, 0.5}}, {9, 0.25});
}

TEST_CASE("eltwise: hand-computed values") {
  check_values(OpCase("Relu", 1).input({4}), {{-1, 0, 2, -0.5}}, {0, 0, 2, 0});
  check_values(OpCase("LeakyRelu", 1).input({2}), {{-2, 3}}, {-0.02, 3});  // default alpha 0.01
  check_values(OpCase("LeakyRelu", 1).input({2}).attr("alpha", 0.5f), {{-2, 3}}, {-1, 3});
  check_values(OpCase("Clip", 1).input({3}).attr("min", 0.0f).attr("max", 6.0f), {{-1, 3, 7}}, {0, 3, 6});
  check_values(OpCase("Clip", 1).input({2}).attr("min", -1.0f), {{-5, 1e30}}, {-1, 1e30});  // no max: unbounded
  check_values(OpCase("Clip", 1).input({2}), {{-1e30, 1e30}}, {-1e30, 1e30});
  check_values(OpCase("Sigmoid", 1).input({3}), {{0, 2, -2}}, {0.5, 0.8807970779778823, 0.11920292202211755});
  // NHWC: the logical order survives the strided layout.
  check_values(OpCase("Relu", 1).input({1, 2, 1, 2}), {{-1, 2, 3, -4}}, {0, 2, 3, 0});
}

TEST_CASE("binary: Add, Mul with numpy broadcasting match the reference") {
  for (unsigned seed = 1; seed <= 3 * kSeeds; ++seed) {
    Random r(seed);
    const char* ops[] = {"Add", "Mul", "Sub", "Div"};
    OpCase c(ops[seed / 4 % 4], 2);
    c.seed = seed;
    c.layout = r.layout();
    Shape out = r.coin(5) ? Shape{} : r.activation_shape();
    // Each operand: the output's shape with leading dims dropped and some dims set to 1 (which side(s)
    // broadcast varies: none, input 1, input 0 (swapped), or both (reference path)).
    int mode = static_cast<int>(seed % 4);
    for (int i = 0; i < 2; ++i) {
      Shape s = out;
      if (mode & (1 << i)) {
        s.erase(s.begin(), s.begin() + r.uniform(0, static_cast<int64_t>(s.size())));
        for (int64_t& d : s)
          if (r.coin(40)) d = 1;
      }
      if (r.coin(20))
        c.constant(Constant::from_floats(s, random_floats(r, shape_elements(s), -2, 2)));
      else
        c.input(s);
    }
    check_against_reference(c);
  }
  report_implementations();
}

TEST_CASE("binary: hand-computed values") {
  check_values(OpCase("Add", 2).input({2, 3}).input({3}), {{1, 2, 3, 4, 5, 6}, {10, 20, 30}}, {11, 22, 33, 14, 25, 36});
  // Input 0 broadcast (operands swap).
  check_values(OpCase("Add", 2).input({3}).input({2, 3}), {{10, 20, 30}, {1, 2, 3, 4, 5, 6}}, {11, 22, 33, 14, 25, 36});
  // Both broadcast: an outer product.
  check_values(OpCase("Mul", 2).input({2, 1}).input({1, 3}), {{2, 3}, {1, 10, 100}}, {2, 20, 200, 3, 30, 300});
  // Per-channel constant on an NHWC tensor.
  check_values(OpCase("Mul", 2).input({1, 2, 1, 2}).constant(Constant::from_floats({2, 1, 1}, {10, -1})),
               {{1, 2, 3, 4}, {}}, {10, 20, -3, -4});
  check_values(OpCase("Add", 2).input({}).input({}), {{1.5}, {2}}, {3.5});
  // Sub and Div, also with input 0 broadcast (Sub swaps and negates, Div takes the loop).
  check_values(OpCase("Sub", 2).input({2, 2}).input({2}), {{5, 6, 7, 8}, {1, 2}}, {4, 4, 6, 6});
  check_values(OpCase("Sub", 2).input({2}).input({2, 2}), {{1, 2}, {5, 6, 7, 8}}, {-4, -4, -6, -6});
  check_values(OpCase("Div", 2).input({2, 2}).constant(Constant::from_floats({}, {8})), {{8, 4, 2, 1}, {}},
               {1, 0.5, 0.25, 0.125});
  check_values(OpCase("Div", 2).input({2}).input({2, 2}), {{1, 2}, {1, 2, 4, 8}}, {1, 1, 0.25, 0.25});
}

TEST_CASE("layer norm: LayerNormalization matches the reference (with Mean and InvStdDev outputs for some)") {
  for (unsigned seed = 1; seed <= kSeeds; ++seed) {
    Random r(seed);
    OpCase c("LayerNormalization", seed % 3 ? 3 : 2, seed % 4 == 0 ? 3 : seed % 4 == 1 ? 2 : 1);
    c.seed = seed;
    c.layout = r.layout();
    Shape x = r.activation_shape(6);
    int64_t rank = static_cast<int64_t>(x.size());
    int64_t axis = r.uniform(0, rank - 1);
    if (r.coin(80))
      c.attr("axis", r.coin() ? axis : axis - rank);
    else
      axis = rank - 1;
    if (r.coin()) c.attr("epsilon", 1e-3f);
    Shape normalized(x.begin() + axis, x.end());
    c.input(x);
    c.constant(Constant::from_floats(normalized, random_floats(r, shape_elements(normalized), -2, 2)));
    if (c.node.inputs.size() == 3)
      c.constant(Constant::from_floats(normalized, random_floats(r, shape_elements(normalized), -1, 1)));
    check_against_reference(c);
  }
  report_implementations();
}

TEST_CASE("layer norm: hand-computed values") {
  // Rows [1, 3] and [0, 4]: means 2, variances 1 and 4; scale 2, bias 0.5.
  OpCase c("LayerNormalization", 3);
  c.input({2, 2})
      .constant(Constant::from_floats({2}, {2, 2}))
      .constant(Constant::from_floats({2}, {0.5f, 0.5f}))
      .attr("epsilon", 0.0f);
  check_values(c, {{1, 3, 0, 4}, {}, {}}, {-1.5, 2.5, -1.5, 2.5});
  // The same with Mean (2, 2) and InvStdDev (1 / sqrt(1), 1 / sqrt(4)) as outputs 1 and 2.
  OpCase stats("LayerNormalization", 3, 3);
  stats.input({2, 2})
      .constant(Constant::from_floats({2}, {2, 2}))
      .constant(Constant::from_floats({2}, {0.5f, 0.5f}))
      .attr("epsilon", 0.0f);
  for (Implementation impl : {Implementation::optimized, Implementation::reference}) {
    OpResult r = stats.run(impl, {{1, 3, 0, 4}, {}, {}});
    CHECK(r.floats(0) == std::vector<float>{-1.5f, 2.5f, -1.5f, 2.5f});
    CHECK(r.floats(1) == std::vector<float>{2, 2});
    CHECK(r.floats(2) == std::vector<float>{1.0f, 0.5f});
  }
  // Over the last two dims of [1, 2, 2] with epsilon 1: (x - 2.5) / sqrt(1.25 + 1).
  OpCase d("LayerNormalization", 2);
  d.input({1, 2, 2})
      .constant(Constant::from_floats({2, 2}, {1, 1, 1, 1}))
      .attr("axis", int64_t{1})
      .attr("epsilon", 1.0f);
  check_values(d, {{1, 2, 3, 4}, {}}, {-1 / 1.0, -1 / 3.0, 1 / 3.0, 1 / 1.0});
}

TEST_CASE("pool: MaxPool, AveragePool, GlobalAveragePool match the reference") {
  const char* ops[] = {"MaxPool", "AveragePool", "GlobalAveragePool"};
  for (unsigned seed = 1; seed <= 3 * kSeeds; ++seed) {
    Random r(seed);
    std::string op = ops[seed % 3];
    OpCase c(op, 1);
    c.seed = seed;
    c.layout = r.layout();
    size_t spatial = static_cast<size_t>(r.uniform(1, 3));
    if (spatial != 2 && r.coin()) spatial = 2;
    Shape x = {r.uniform(1, 2), r.uniform(1, 5)};
    DType dtype = op == "MaxPool" && r.coin(30) ? DType::u8 : DType::f32;
    if (op != "GlobalAveragePool") {
      std::vector<int64_t> kernel, strides, dilations, pads(2 * spatial);
      for (size_t s = 0; s < spatial; ++s) {
        kernel.push_back(r.uniform(1, 3));
        strides.push_back(r.uniform(1, 3));
        dilations.push_back(op == "MaxPool" && r.coin(30) ? 2 : 1);
        // Pads below the kernel size, and an input at least one window wide: every window sees the input.
        pads[s] = r.uniform(0, kernel[s] - 1);
        pads[s + spatial] = r.uniform(0, kernel[s] - 1);
        x.push_back(r.uniform((kernel[s] - 1) * dilations[s] + 1, 8));
      }
      c.attr("kernel_shape", kernel).attr("strides", strides);
      if (op == "MaxPool") c.attr("dilations", dilations);
      int pad_kind = static_cast<int>(r.uniform(0, 4));
      if (pad_kind == 0)
        c.attr("auto_pad", std::string(r.coin() ? "SAME_UPPER" : "SAME_LOWER"));
      else if (pad_kind == 1)
        c.attr("auto_pad", std::string("VALID"));
      else
        c.attr("pads", pads);
      if (pad_kind >= 2 && r.coin()) c.attr("ceil_mode", int64_t{1});
      if (op == "AveragePool") c.attr("count_include_pad", int64_t{r.coin()});
    } else {
      for (size_t s = 0; s < spatial; ++s) x.push_back(r.uniform(1, 7));
    }
    c.input(x, dtype);
    check_against_reference(c);
  }
  report_implementations();
}

TEST_CASE("pool: hand-computed values") {
  std::vector<double> one_to_nine = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  auto avg3x3 = [](int64_t include) {
    return OpCase("AveragePool", 1)
        .input({1, 1, 3, 3})
        .attr("kernel_shape", std::vector<int64_t>{3, 3})
        .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
        .attr("count_include_pad", include);
  };
  // Corner windows see 4 inputs, edges 6, the centre 9.
  check_values(avg3x3(1), {one_to_nine},
               {12 / 9., 21 / 9., 16 / 9., 27 / 9., 45 / 9., 33 / 9., 24 / 9., 39 / 9., 28 / 9.});
  check_values(avg3x3(0), {one_to_nine},
               {12 / 4., 21 / 6., 16 / 4., 27 / 6., 45 / 9., 33 / 6., 24 / 4., 39 / 6., 28 / 4.});

  std::vector<double> zero_to_15(16);
  std::iota(zero_to_15.begin(), zero_to_15.end(), 0);
  auto ceil_pool = [](const char* op) {
    return OpCase(op, 1)
        .input({1, 1, 4, 4})
        .attr("kernel_shape", std::vector<int64_t>{3, 3})
        .attr("strides", std::vector<int64_t>{2, 2})
        .attr("ceil_mode", int64_t{1});
  };
  // ceil_mode adds a second, clipped window per dim (floor mode would give 1x1).
  check_values(ceil_pool("MaxPool"), {zero_to_15}, {10, 11, 14, 15});
  check_values(ceil_pool("AveragePool"), {zero_to_15}, {5, 6.5, 11, 12.5});
  // Dilated 1-D MaxPool: window {x[i], x[i+2]}.
  check_values(OpCase("MaxPool", 1)
                   .input({1, 1, 5})
                   .attr("kernel_shape", std::vector<int64_t>{2})
                   .attr("dilations", std::vector<int64_t>{2}),
               {{5, 1, 2, 9, 0}}, {5, 9, 2});
  check_values(OpCase("GlobalAveragePool", 1).input({1, 2, 2, 1}), {{1, 2, 3, 5}}, {1.5, 4});
  check_values(OpCase("MaxPool", 1).input({1, 1, 4}, DType::u8).attr("kernel_shape", std::vector<int64_t>{2}),
               {{200, 3, 255, 7}}, {200, 255, 255});
}

TEST_CASE("batchnorm: BatchNormalization matches the reference") {
  for (unsigned seed = 1; seed <= kSeeds; ++seed) {
    Random r(seed);
    OpCase c("BatchNormalization", 5);
    c.seed = seed;
    c.layout = r.layout();
    Shape x = r.shape(static_cast<size_t>(r.uniform(2, 5)), 6);
    int64_t ch = x[1];
    c.input(x)
        .constant(Constant::from_floats({ch}, random_floats(r, ch, -2, 2)))
        .constant(Constant::from_floats({ch}, random_floats(r, ch, -1, 1)))
        .constant(Constant::from_floats({ch}, random_floats(r, ch, -1, 1)))
        .constant(Constant::from_floats({ch}, random_floats(r, ch, 0.1f, 3)));
    if (r.coin()) c.attr("epsilon", r.real(1e-5f, 1e-2f));
    check_against_reference(c);
  }
  report_implementations();
}

TEST_CASE("batchnorm: hand-computed values") {
  OpCase c("BatchNormalization", 5);
  c.input({1, 2})
      .constant(Constant::from_floats({2}, {2, 1}))
      .constant(Constant::from_floats({2}, {0.5f, 0}))
      .constant(Constant::from_floats({2}, {0, 1}))
      .constant(Constant::from_floats({2}, {3, 0.25f}))
      .attr("epsilon", 1.0f);
  // (1 - 0) / sqrt(3 + 1) * 2 + 0.5 and (2 - 1) / sqrt(0.25 + 1) * 1 + 0.
  check_values(c, {{1, 2}, {}, {}, {}, {}}, {1.5, 1 / std::sqrt(1.25)});
}

TEST_CASE("softmax: Softmax matches the reference") {
  for (unsigned seed = 1; seed <= kSeeds; ++seed) {
    Random r(seed);
    OpCase c("Softmax", 1);
    c.seed = seed;
    c.layout = r.layout();
    Shape x = r.activation_shape(7);
    int64_t rank = static_cast<int64_t>(x.size());
    if (r.coin(80)) c.attr("axis", r.uniform(-rank, rank - 1));
    c.input(x);
    check_against_reference(c);
  }
  report_implementations();
}

TEST_CASE("softmax: hand-computed values") {
  check_values(OpCase("Softmax", 1).input({3}), {{1, 2, 3}},
               {0.09003057317038046, 0.24472847105479764, 0.6652409557748219});
  // Along axis 0 of [2, 2]: columns.
  check_values(OpCase("Softmax", 1).input({2, 2}).attr("axis", int64_t{0}), {{0, 5, 0, 5}}, {0.5, 0.5, 0.5, 0.5});
}

TEST_CASE("reduce: ReduceMean matches the reference") {
  for (unsigned seed = 1; seed <= kSeeds; ++seed) {
    Random r(seed);
    OpCase c("ReduceMean", 1);
    c.seed = seed;
    c.layout = r.layout();
    Shape x = r.activation_shape(6);
    int64_t rank = static_cast<int64_t>(x.size());
    std::vector<int64_t> axes;
    for (int64_t a = 0; a < rank; ++a)
      if (r.coin(40)) axes.push_back(r.coin() ? a - rank : a);
    if (!axes.empty() || r.coin()) c.attr("axes", axes);  // empty or absent: all axes
    if (r.coin()) c.attr("keepdims", int64_t{r.coin()});
    c.input(x);
    check_against_reference(c);
  }
  report_implementations();
}

TEST_CASE("reduce: hand-computed values") {
  OpCase c("ReduceMean", 1);
  c.input({2, 3}).attr("axes", std::vector<int64_t>{-1}).attr("keepdims", int64_t{0});
  check_values(c, {{1, 2, 3, 4, 5, 9}}, {2, 6});
  // Spatial mean of an NHWC tensor, kept as [1, 2, 1, 1].
  check_values(OpCase("ReduceMean", 1).input({1, 2, 2, 1}).attr("axes", std::vector<int64_t>{2, 3}), {{1, 2, 3, 5}},
               {1.5, 4});
  check_values(OpCase("ReduceMean", 1).input({2, 2}), {{1, 2, 3, 6}}, {3});
}

TEST_CASE("concat: Concat matches the reference") {
  for (unsigned seed = 1; seed <= kSeeds; ++seed) {
    Random r(seed);
    size_t n = static_cast<size_t>(r.uniform(1, 4));
    OpCase c("Concat", n);
    c.seed = seed;
    c.layout = r.layout();
    Shape x = r.activation_shape();
    int64_t rank = static_cast<int64_t>(x.size()), axis = r.uniform(-rank, rank - 1);
    c.attr("axis", axis);
    DType dtype = r.copy_dtype();
    for (size_t i = 0; i < n; ++i) {
      x[static_cast<size_t>(axis < 0 ? axis + rank : axis)] = r.uniform(1, 4);
      c.input(x, dtype);
    }
    check_against_reference(c);
  }
  report_implementations();
}

TEST_CASE("concat: hand-computed values") {
  check_values(OpCase("Concat", 2).input({1, 2}).input({1, 1}).attr("axis", int64_t{1}), {{1, 2}, {3}}, {1, 2, 3});
  check_values(OpCase("Concat", 2).input({1, 1, 1, 2}).input({1, 1, 1, 2}).attr("axis", int64_t{1}), {{1, 2}, {3, 4}},
               {1, 2, 3, 4});
}

TEST_CASE("copy family: Identity, Reshape, Flatten, Squeeze, Unsqueeze match the reference") {
  const char* ops[] = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze"};
  for (unsigned seed = 1; seed <= 3 * kSeeds; ++seed) {
    Random r(seed);
    std::string op = ops[seed % 5];
    OpCase c(op, 1);
    c.seed = seed;
    c.layout = r.layout();
    Shape x = r.activation_shape();
    int64_t rank = static_cast<int64_t>(x.size());
    if (op == "Reshape") {
      // Regroup the elements: a random factorization into 1..5 dims, sometimes with -1 or 0 (copy).
      int64_t total = shape_elements(x);
      std::vector<int64_t> shape;
      size_t target_rank = static_cast<size_t>(r.uniform(1, 5));
      for (size_t i = 0; i + 1 < target_rank; ++i) {
        std::vector<int64_t> divisors;
        for (int64_t d = 1; d <= total; ++d)
          if (total % d == 0) divisors.push_back(d);
        int64_t d = divisors[static_cast<size_t>(r.uniform(0, static_cast<int64_t>(divisors.size()) - 1))];
        shape.push_back(d);
        total /= d;
      }
      shape.push_back(total);
      if (r.coin(30)) shape[static_cast<size_t>(r.uniform(0, static_cast<int64_t>(shape.size()) - 1))] = -1;
      if (r.coin(20) && shape[0] == x[0]) shape[0] = 0;
      c.attr("shape", shape);
    } else if (op == "Flatten") {
      c.attr("axis", r.uniform(-rank, rank));
    } else if (op == "Squeeze") {
      for (int64_t& d : x)
        if (r.coin(40)) d = 1;
      std::vector<int64_t> axes;
      for (int64_t a = 0; a < rank; ++a)
        if (x[a] == 1 && r.coin()) axes.push_back(r.coin() ? a - rank : a);
      if (!axes.empty()) c.attr("axes", axes);
    } else if (op == "Unsqueeze") {
      // 1 or 2 new dims at distinct random positions of the output, some counted from the end.
      int64_t out_rank = rank + r.uniform(1, 2);
      std::vector<int64_t> axes(static_cast<size_t>(out_rank));
      std::iota(axes.begin(), axes.end(), 0);
      std::shuffle(axes.begin(), axes.end(), r.rng);
      axes.resize(static_cast<size_t>(out_rank - rank));
      for (int64_t& a : axes)
        if (r.coin()) a -= out_rank;
      c.attr("axes", axes);
    }
    c.input(x, r.copy_dtype());
    check_against_reference(c);
  }
  report_implementations();
}

TEST_CASE("copy family: hand-computed values across layouts") {
  // NHWC [1,2,2,1] holds c-major logical values physically as (c0,c1) pairs; Reshape reads logical order.
  check_values(OpCase("Reshape", 1).input({1, 2, 2, 1}).attr("shape", std::vector<int64_t>{4}), {{0, 1, 2, 3}},
               {0, 1, 2, 3});
  check_values(OpCase("Flatten", 1).input({2, 3, 1, 1}), {{0, 1, 2, 3, 4, 5}}, {0, 1, 2, 3, 4, 5});
  // Both sides NHWC with C and H regrouped: no common dims, the copy goes through the scratch.
  std::vector<double> v(24);
  std::iota(v.begin(), v.end(), 0);
  check_values(OpCase("Reshape", 1).input({1, 2, 3, 4}).attr("shape", std::vector<int64_t>{1, 3, 2, 4}), {v}, v);
  check_values(OpCase("Unsqueeze", 1).input({2, 3}).attr("axes", std::vector<int64_t>{0, 3}), {{0, 1, 2, 3, 4, 5}},
               {0, 1, 2, 3, 4, 5});
}

TEST_CASE("transpose: Transpose matches the reference") {
  for (unsigned seed = 1; seed <= kSeeds; ++seed) {
    Random r(seed);
    OpCase c("Transpose", 1);
    c.seed = seed;
    c.layout = r.layout();
    Shape x = r.activation_shape();
    if (r.coin(80)) {
      std::vector<int64_t> perm(x.size());
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), r.rng);
      c.attr("perm", perm);
    }
    c.input(x, r.copy_dtype());
    check_against_reference(c);
  }
  report_implementations();
}

TEST_CASE("transpose: hand-computed values") {
  check_values(OpCase("Transpose", 1).input({2, 3}), {{1, 2, 3, 4, 5, 6}}, {1, 4, 2, 5, 3, 6});
  // NCHW logical -> [N, H, W, C] logical.
  check_values(OpCase("Transpose", 1).input({1, 2, 1, 2}).attr("perm", std::vector<int64_t>{0, 2, 3, 1}),
               {{1, 2, 3, 4}}, {1, 3, 2, 4});
}

TEST_CASE("slice: Slice and Split match the reference") {
  for (unsigned seed = 1; seed <= 2 * kSeeds; ++seed) {
    Random r(seed);
    Shape x = r.activation_shape(7);
    int64_t rank = static_cast<int64_t>(x.size());
    if (seed % 2) {
      OpCase c("Slice", 1);
      c.seed = seed;
      c.layout = r.layout();
      std::vector<int64_t> axes(x.size()), starts, ends, steps;
      std::iota(axes.begin(), axes.end(), 0);
      std::shuffle(axes.begin(), axes.end(), r.rng);
      axes.resize(static_cast<size_t>(r.uniform(1, rank)));
      for (int64_t& a : axes) {
        int64_t dim = x[a];
        starts.push_back(r.uniform(-dim - 2, dim + 2));
        ends.push_back(r.coin(10) ? (r.coin() ? INT64_MAX : INT64_MIN) : r.uniform(-dim - 2, dim + 2));
        steps.push_back(r.coin() ? r.uniform(1, 3) : -r.uniform(1, 3));
        if (r.coin()) a -= rank;
      }
      c.attr("starts", starts).attr("ends", ends).attr("axes", axes);
      if (r.coin(80)) c.attr("steps", steps);
      c.input(x, r.copy_dtype());
      check_against_reference(c);
    } else {
      int64_t axis = r.uniform(-rank, rank - 1), dim = x[static_cast<size_t>(axis < 0 ? axis + rank : axis)];
      std::vector<int64_t> split;
      for (int64_t left = dim; left > 0; left -= split.back()) split.push_back(r.uniform(1, left));
      OpCase c("Split", 1, split.size());
      c.seed = seed;
      c.layout = r.layout();
      c.attr("axis", axis).attr("split", split).input(x, r.copy_dtype());
      check_against_reference(c);
    }
  }
  report_implementations();
}

TEST_CASE("slice: hand-computed values") {
  std::vector<double> ten(10);
  std::iota(ten.begin(), ten.end(), 0);
  auto slice = [](int64_t start, int64_t end, int64_t step) {
    return OpCase("Slice", 1)
        .input({10})
        .attr("starts", std::vector<int64_t>{start})
        .attr("ends", std::vector<int64_t>{end})
        .attr("steps", std::vector<int64_t>{step});
  };
  check_values(slice(2, 1000, 1), {ten}, {2, 3, 4, 5, 6, 7, 8, 9});
  check_values(slice(-2, -100, -3), {ten}, {8, 5, 2});  // end clamps to before the first element
  check_values(slice(100, 0, -4), {ten}, {9, 5, 1});    // start clamps to the last element
  check_values(slice(5, 2, 1), {ten}, {});
  OpCase split("Split", 1, 2);
  split.input({6}).attr("split", std::vector<int64_t>{2, 4});
  check_values(split, {{1, 2, 3, 4, 5, 6}}, {1, 2}, 0);
  check_values(split, {{1, 2, 3, 4, 5, 6}}, {3, 4, 5, 6}, 1);
}

TEST_CASE("pad: Pad matches the reference") {
  const char* modes[] = {"constant", "reflect", "edge"};
  for (unsigned seed = 1; seed <= 2 * kSeeds; ++seed) {
    Random r(seed);
    OpCase c("Pad", 1);
    c.seed = seed;
    c.layout = r.layout();
    std::string mode = modes[seed % 3];
    Shape x = r.activation_shape(6);
    std::vector<int64_t> pads(2 * x.size());
    for (size_t i = 0; i < pads.size(); ++i) {
      int64_t dim = x[i % x.size()];
      // Negative pads crop (keep at least one element); reflect pads stay below the dimension.
      pads[i] = r.coin(25) ? -r.uniform(0, (dim - 1) / 2) : r.uniform(0, mode == "reflect" ? dim - 1 : 3);
    }
    c.attr("pads", pads);
    if (seed % 3 != 0 || r.coin()) c.attr("mode", mode);
    if (r.coin()) c.attr("value", r.real(-3, 3));
    c.input(x);
    check_against_reference(c);
  }
  report_implementations();
}

TEST_CASE("pad: hand-computed values") {
  auto pad = [](const char* mode, std::vector<int64_t> pads) {
    return OpCase("Pad", 1).input({3}).attr("mode", std::string(mode)).attr("pads", pads).attr("value", 9.0f);
  };
  check_values(pad("constant", {2, 1}), {{1, 2, 3}}, {9, 9, 1, 2, 3, 9});
  check_values(pad("reflect", {2, 1}), {{1, 2, 3}}, {3, 2, 1, 2, 3, 2});
  check_values(pad("edge", {2, 1}), {{1, 2, 3}}, {1, 1, 1, 2, 3, 3});
  check_values(pad("constant", {-1, 1}), {{1, 2, 3}}, {2, 3, 9});
  check_values(pad("reflect", {-2, 2}), {{1, 2, 3}}, {3, 2, 1});
  // 2-D reflect on NHWC: pad H by 1 at the top.
  check_values(OpCase("Pad", 1)
                   .input({1, 1, 2, 2})
                   .attr("mode", std::string("reflect"))
                   .attr("pads", std::vector<int64_t>{0, 0, 1, 0, 0, 0, 0, 0}),
               {{1, 2, 3, 4}}, {3, 4, 1, 2, 3, 4});
}

TEST_CASE("gather: Gather matches the reference") {
  for (unsigned seed = 1; seed <= kSeeds; ++seed) {
    Random r(seed);
    OpCase c("Gather", 2);
    c.seed = seed;
    c.layout = r.layout();
    Shape x = r.activation_shape();
    int64_t rank = static_cast<int64_t>(x.size()), axis = r.uniform(-rank, rank - 1);
    int64_t dim = x[static_cast<size_t>(axis < 0 ? axis + rank : axis)];
    Shape indices_shape = r.shape(static_cast<size_t>(r.uniform(0, 2)), 3);
    std::vector<int64_t> indices;
    for (int64_t n = 0; n < shape_elements(indices_shape); ++n) indices.push_back(r.uniform(-dim, dim - 1));
    Constant ind = Constant::from_ints(indices_shape, indices);
    if (r.coin()) {  // the same values as s32
      ind.dtype = DType::s32;
      std::vector<uint8_t> bytes(indices.size() * 4);
      for (size_t i = 0; i < indices.size(); ++i) {
        int32_t v = static_cast<int32_t>(indices[i]);
        std::memcpy(bytes.data() + 4 * i, &v, 4);
      }
      ind.bytes = make_bytes(std::move(bytes));
    }
    c.attr("axis", axis);
    if (r.coin(20))
      c.constant(Constant::from_floats(x, random_floats(r, shape_elements(x), -2, 2)));
    else
      c.input(x, r.copy_dtype());
    c.constant(ind);
    check_against_reference(c);
  }
  report_implementations();
}

TEST_CASE("gather: hand-computed values") {
  OpCase rows("Gather", 2);
  rows.input({3, 2}).constant(Constant::from_ints({1, 2}, {0, -1}));
  check_values(rows, {{1, 2, 3, 4, 5, 6}, {}}, {1, 2, 5, 6});
  OpCase column("Gather", 2);
  column.input({3, 2}).constant(Constant::from_ints({}, {1})).attr("axis", int64_t{1});
  check_values(column, {{1, 2, 3, 4, 5, 6}, {}}, {2, 4, 6});
}

TEST_CASE("unsupported settings throw an Error naming the node") {
  auto f32 = [](const Shape& s) { return activation_desc({DType::f32, s, {}}); };
  auto u8 = [](const Shape& s) { return activation_desc({DType::u8, s, {}}); };

  check_rejected(OpCase("Sigmoid", 1).input({4}, DType::u8), {u8({4})}, {u8({4})}, "dtype u8");
  check_rejected(OpCase("Add", 2).input({4}).input({4}), {f32({4}), f32({4})}, {u8({4})}, "output 0");
  check_rejected(OpCase("AveragePool", 1).input({1, 1, 4}, DType::u8).attr("kernel_shape", std::vector<int64_t>{2}),
                 {u8({1, 1, 4})}, {u8({1, 1, 3})}, "dtype u8");
  check_rejected(OpCase("Softmax", 1).input({2, 3}).attr("axis", int64_t{2}), {f32({2, 3})}, {f32({2, 3})}, "axis 2");
  check_rejected(OpCase("Pad", 1).input({3}).attr("pads", std::vector<int64_t>{1, 1}).attr("mode", std::string("wrap")),
                 {f32({3})}, {f32({5})}, "attribute mode='wrap'");
  check_rejected(OpCase("Slice", 1)
                     .input({4, 4})
                     .attr("starts", std::vector<int64_t>{0, 1})
                     .attr("ends", std::vector<int64_t>{2, 3})
                     .attr("axes", std::vector<int64_t>{1, -1}),
                 {f32({4, 4})}, {f32({4, 2})}, "attribute axes repeats axis 1");
  OpCase gather("Gather", 2);
  gather.input({3}).constant(Constant::from_ints({2}, {0, 3}));
  check_rejected(gather, {f32({3}), dense_desc(DType::s64, {2})}, {f32({2})}, "indices[1] = 3 is out of range");
  OpCase not_constant("Gather", 2);
  not_constant.input({3}).input({2}, DType::s64);
  check_rejected(not_constant, {f32({3}), dense_desc(DType::s64, {2})}, {f32({2})},
                 "input 1 (indices) must be a constant");
  OpCase bn("BatchNormalization", 5);
  bn.input({1, 2})
      .input({2})
      .constant(Constant::from_floats({2}, {0, 0}))
      .constant(Constant::from_floats({2}, {0, 0}))
      .constant(Constant::from_floats({2}, {1, 1}));
  check_rejected(bn, {f32({1, 2}), f32({2}), f32({2}), f32({2}), f32({2})}, {f32({1, 2})},
                 "input 1 (scale) must be a constant");
}
