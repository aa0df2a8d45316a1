// Zero-copy views (kernels/views.cpp): Reshape, Transpose and Slice steps the session drops because their output
// is their input's buffer through other strides. Each graph runs with the optimized kernels (views) and with the
// reference kernels (every step a copy); the outputs must agree to rounding, and the dropped steps must be the ones
// that can be views.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "graph/shape_inference.h"
#include "octet/octet.h"
#include "support/graphs.h"
#include "support/random.h"

using namespace octet;

namespace {

Attributes ints(const std::string& key, std::vector<int64_t> v) {
  Attributes a;
  a.set(key, std::move(v));
  return a;
}

Attributes axis_attr(int64_t axis) {
  Attributes a;
  a.set("axis", axis);
  return a;
}

std::set<std::string> step_names(const Session& s) {
  std::set<std::string> names;
  for (const LayerInfo& l : s.layers()) names.insert(l.node);
  return names;
}

// Runs `graph` with both kernel sets on the same pseudo-random input; returns the optimized session's step names.
std::set<std::string> check_against_reference(const Graph& graph, int threads) {
  auto model = Model::from_graph(Graph(graph));
  Session fast(model, {1, threads, false}), reference(model, {1, 1, true});
  for (size_t i = 0; i < fast.num_inputs(); ++i) {
    Tensor a = fast.input(i), b = reference.input(i);
    std::vector<float> values = testing::pseudo_random(static_cast<size_t>(shape_elements(a.shape)), 11 + i);
    std::copy(values.begin(), values.end(), a.data);
    std::copy(values.begin(), values.end(), b.data);
  }
  fast.run();
  reference.run();
  for (size_t o = 0; o < fast.num_outputs(); ++o) {
    Tensor a = fast.output(o), b = reference.output(o);
    size_t n = static_cast<size_t>(shape_elements(a.shape));
    // oneDNN sums in another order than the reference: equal up to rounding (a misplaced element is not).
    float peak = 0, worst = 0;
    for (size_t k = 0; k < n; ++k) peak = std::max(peak, std::abs(b.data[k]));
    for (size_t k = 0; k < n; ++k) worst = std::max(worst, std::abs(a.data[k] - b.data[k]));
    CHECK_MESSAGE(worst <= 1e-5f * peak,
                  "output " << a.name << ": max |difference| " << worst << ", max |ref| " << peak);
  }
  return step_names(fast);
}

}  // namespace

TEST_CASE("attention-style Slice -> Reshape -> Transpose chains cost one strided copy each") {
  // qkv [N, 5, 24] -> q, k (Slices of the last axis) -> heads [N, 5, 3, 4] -> [N, 3, 5, 4] / [N, 3, 4, 5]
  // -> MatMul: the Slices and Reshapes are views (their readers read any strides); each Transpose copies once
  // from its strided view because a MatMul reads it.
  Graph g = testing::fp32_graph("attention", {"qkv"}, {"y"},
                                {{"qkv", {5, 24}},
                                 {"q", {5, 12}},
                                 {"k", {5, 12}},
                                 {"qh", {5, 3, 4}},
                                 {"kh", {5, 3, 4}},
                                 {"qt", {3, 5, 4}},
                                 {"kt", {3, 4, 5}},
                                 {"s", {3, 5, 5}},
                                 {"y", {3, 5, 5}}});
  Attributes q_slice = ints("starts", {0}), k_slice = ints("starts", {12});
  q_slice.set("ends", std::vector<int64_t>{12});
  q_slice.set("axes", std::vector<int64_t>{2});
  k_slice.set("ends", std::vector<int64_t>{24});
  k_slice.set("axes", std::vector<int64_t>{2});
  Attributes heads = ints("shape", {0, 5, 3, 4});
  g.nodes = {{"q_slice", "Slice", {"qkv"}, {"q"}, q_slice},
             {"k_slice", "Slice", {"qkv"}, {"k"}, k_slice},
             {"q_heads", "Reshape", {"q"}, {"qh"}, heads},
             {"k_heads", "Reshape", {"k"}, {"kh"}, heads},
             {"q_t", "Transpose", {"qh"}, {"qt"}, ints("perm", {0, 2, 1, 3})},
             {"k_t", "Transpose", {"kh"}, {"kt"}, ints("perm", {0, 2, 3, 1})},
             {"scores", "MatMul", {"qt", "kt"}, {"s"}, {}},
             {"softmax", "Softmax", {"s"}, {"y"}, axis_attr(-1)}};
  infer_symbolic_shapes(g);
  for (int threads : {1, 2}) {
    std::set<std::string> steps = check_against_reference(g, threads);
    for (const char* view : {"q_slice", "k_slice", "q_heads", "k_heads"}) CHECK_MESSAGE(!steps.count(view), view);
    for (const char* copy : {"q_t", "k_t", "scores", "softmax"}) CHECK_MESSAGE(steps.count(copy), copy);
  }
}

TEST_CASE("dense reshapes and size-1 transposes are views for any reader; a view is never overwritten in place") {
  // x -> conv c1 -> a; v = Identity(a) (a view of a's buffer) is the main input of conv c2, whose residual is a:
  // writing c2's output over a's buffer in place (a dies there) would overwrite v while c2 reads it. Then the map is
  // flattened (Transpose of a size-1 dim, then a Reshape: views of a dense tensor) and pooled by a Softmax.
  Graph g = testing::fp32_graph("residual", {"x"}, {"y"},
                                {{"x", {4, 5, 5}},
                                 {"a", {8, 5, 5}},
                                 {"v", {8, 5, 5}},
                                 {"c", {8, 5, 5}},
                                 {"p", {8, 1, 1}},
                                 {"pt", {1, 8, 1}},
                                 {"f", {8}},
                                 {"y", {8}}});
  g.constants["w1"] = testing::random_constant({8, 4, 3, 3}, 1);
  g.constants["w2"] = testing::random_constant({8, 8, 1, 1}, 2);
  Attributes c1 = ints("kernel_shape", {3, 3}), c2 = ints("kernel_shape", {1, 1});
  c1.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  g.nodes = {{"c1", "Conv", {"x", "w1", ""}, {"a"}, c1},
             {"v", "Identity", {"a"}, {"v"}, {}},
             {"c2", "Conv", {"v", "w2", "", "a"}, {"c"}, c2},
             {"pool", "GlobalAveragePool", {"c"}, {"p"}, {}},
             {"pt", "Transpose", {"p"}, {"pt"}, ints("perm", {0, 2, 1, 3})},
             {"flat", "Reshape", {"pt"}, {"f"}, ints("shape", {0, -1})},
             {"softmax", "Softmax", {"f"}, {"y"}, axis_attr(-1)}};
  infer_symbolic_shapes(g);
  for (int threads : {1, 2}) {
    std::set<std::string> steps = check_against_reference(g, threads);
    for (const char* view : {"v", "pt", "flat"}) CHECK_MESSAGE(!steps.count(view), view);
  }
}
