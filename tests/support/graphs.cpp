#include "support/graphs.h"

#include "graph/shape_inference.h"
#include "support/random.h"

namespace octet::testing {

Graph fp32_graph(const std::string& name, const std::vector<std::string>& inputs,
                 const std::vector<std::string>& outputs,
                 const std::vector<std::pair<std::string, Shape>>& batch_tensors) {
  Graph graph;
  graph.name = name;
  graph.inputs = inputs;
  graph.outputs = outputs;
  for (const auto& [tensor, dims] : batch_tensors) {
    Shape shape = {kBatchDim};
    shape.insert(shape.end(), dims.begin(), dims.end());
    graph.tensors[tensor] = {DType::f32, shape, {}};
  }
  return graph;
}

Graph small_conv_classifier(bool leaky_residual) {
  Graph g = fp32_graph("small", {"x"}, {"y"}, {{"x", {4, 6, 6}}});
  g.constants["w1"] = random_constant({8, 4, 3, 3}, 1);
  g.constants["w2"] = random_constant({8, 8, 1, 1}, 2);
  g.constants["w3"] = random_constant({8, 8, 1, 1}, 3);
  g.constants["wf"] = random_constant({10, 72}, 4);
  for (const char* bias : {"b1", "b2", "b3"}) g.constants[bias] = random_constant({8}, 5);
  g.constants["bf"] = random_constant({10}, 6);
  Attributes c1, c2, c3, pool, flat, fc;
  c1.set("kernel_shape", std::vector<int64_t>{3, 3});
  c1.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  c1.set("act", std::string("clip"));
  c1.set("act_alpha", 0.0f);
  c1.set("act_beta", 6.0f);
  c2.set("kernel_shape", std::vector<int64_t>{1, 1});
  c2.set("act", std::string("relu"));
  c3.set("kernel_shape", std::vector<int64_t>{1, 1});
  if (leaky_residual) {
    c3.set("sum_act", std::string("leaky_relu"));
    c3.set("sum_act_alpha", 0.1f);
  }
  pool.set("kernel_shape", std::vector<int64_t>{2, 2});
  pool.set("strides", std::vector<int64_t>{2, 2});
  flat.set("axis", int64_t{1});
  fc.set("transB", int64_t{1});
  g.nodes = {{"c1", "Conv", {"x", "w1", "b1"}, {"a"}, c1},      {"c2", "Conv", {"a", "w2", "b2"}, {"b"}, c2},
             {"c3", "Conv", {"b", "w3", "b3", "a"}, {"c"}, c3}, {"pool", "MaxPool", {"c"}, {"d"}, pool},
             {"flat", "Flatten", {"d"}, {"e"}, flat},           {"fc", "Gemm", {"e", "wf", "bf"}, {"y"}, fc}};
  infer_symbolic_shapes(g);
  return g;
}

std::vector<std::pair<std::string, std::pair<float, float>>> small_conv_classifier_ranges() {
  return {{"x", {-1, 1}},    {"a", {0, 6}},     {"b", {0, 3}}, {"c", {-0.5f, 8}},
          {"d", {-0.5f, 8}}, {"e", {-0.5f, 8}}, {"y", {-4, 4}}};
}

}  // namespace octet::testing
