// ONNX import: small models built with the protobuf API, then the shared real models.
#include <doctest/doctest.h>

#include "support/onnx_pb.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "converters/onnx/import.h"
#include "graph/ops.h"
#include "graph/shape_inference.h"
#include "octet/octet.h"
#include "support/onnx_builder.h"
#include "support/random.h"

using namespace octet;

namespace {

std::filesystem::path scratch_dir() {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "octet_test_converter_import";
  std::filesystem::create_directories(dir);
  return dir;
}

using octet::testing::pseudo_random;

using octet::testing::OnnxBuilder;

// An ONNX model under construction; import() saves it to a scratch file and imports that.
struct ModelBuilder : OnnxBuilder {
  using OnnxBuilder::OnnxBuilder;

  void floats(const std::string& name, const Shape& shape, const std::vector<float>& v) { values(name, shape, v); }

  std::string save(const std::string& file_name) const {
    std::string path = (scratch_dir() / file_name).string();
    std::ofstream file(path, std::ios::binary);
    REQUIRE(model.SerializeToOstream(&file));
    return path;
  }
  // Saved under the current test's name, so an error message shows which test wrote the file.
  Graph import(const octet::onnx::ImportOptions& options = {}) const {
    std::string file_name = doctest::getContextOptions()->currentTest->m_name;
    std::replace_if(
        file_name.begin(), file_name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
    return octet::onnx::import_onnx(save(file_name + ".onnx"), options);
  }
};

std::vector<std::string> ops_of(const Graph& graph) {
  std::vector<std::string> ops;
  for (const Node& node : graph.nodes) ops.push_back(node.op);
  return ops;
}

const Node& only_node(const Graph& graph, const std::string& op) {
  const Node* found = nullptr;
  for (const Node& node : graph.nodes)
    if (node.op == op) {
      REQUIRE_MESSAGE(found == nullptr, "more than one " << op);
      found = &node;
    }
  REQUIRE_MESSAGE(found != nullptr, "no " << op);
  return *found;
}

std::string import_error(const ModelBuilder& builder, const octet::onnx::ImportOptions& options = {}) {
  try {
    builder.import(options);
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("import succeeded, an error was expected");
  return "";
}

void check_floats(const std::vector<float>& actual, const std::vector<float>& expected) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i) CHECK(actual[i] == doctest::Approx(expected[i]).epsilon(1e-5));
}

// x[N,2,5,5] -> Conv(W[3,2,3,3], B) -> BatchNormalization -> Relu -> y
ModelBuilder conv_bn_relu_model() {
  ModelBuilder m;
  m.input("x", {kBatchDim, 2, 5, 5});
  m.floats("W", {3, 2, 3, 3}, pseudo_random(54, 1));
  m.floats("B", {3}, {0.1f, -0.2f, 0.3f});
  m.floats("scale", {3}, {1.5f, 0.5f, -2.0f});
  m.floats("beta", {3}, {0.0f, 1.0f, -1.0f});
  m.floats("mean", {3}, {0.2f, -0.4f, 0.6f});
  m.floats("var", {3}, {1.0f, 4.0f, 0.25f});
  ::onnx::NodeProto& conv = m.node("Conv", {"x", "W", "B"}, {"c"}, "conv");
  OnnxBuilder::attribute(conv, "pads", std::vector<int64_t>{1, 1, 1, 1});
  OnnxBuilder::attribute(conv, "kernel_shape", std::vector<int64_t>{3, 3});
  OnnxBuilder::attribute(m.node("BatchNormalization", {"c", "scale", "beta", "mean", "var"}, {"bn"}, "bn"), "epsilon",
                         1e-3f);
  m.node("Relu", {"bn"}, {"y"}, "relu");
  m.output("y");
  return m;
}

}  // namespace

TEST_CASE("Conv + BatchNormalization + Relu: BN folded into new weights, Relu fused") {
  Graph graph = conv_bn_relu_model().import();
  REQUIRE(ops_of(graph) == std::vector<std::string>{"Conv"});
  const Node& conv = graph.nodes[0];
  CHECK(conv.outputs == std::vector<std::string>{"y"});
  CHECK(conv.attrs.get_string("act", "") == "relu");
  CHECK(graph.tensor("y").shape == Shape{kBatchDim, 3, 5, 5});
  REQUIRE(conv.inputs.size() == 3);
  CHECK(conv.inputs[1] != "W");  // new constants; the originals are not mutated
  std::vector<float> w = pseudo_random(54, 1), b = {0.1f, -0.2f, 0.3f}, scale = {1.5f, 0.5f, -2.0f};
  std::vector<float> beta = {0.0f, 1.0f, -1.0f}, mean = {0.2f, -0.4f, 0.6f}, var = {1.0f, 4.0f, 0.25f};
  std::vector<float> expected_w, expected_b;
  for (size_t c = 0; c < 3; ++c) {
    float a = scale[c] / std::sqrt(var[c] + 1e-3f);
    for (size_t k = 0; k < 18; ++k) expected_w.push_back(w[c * 18 + k] * a);
    expected_b.push_back((b[c] - mean[c]) * a + beta[c]);
  }
  check_floats(graph.constants.at(conv.inputs[1]).as_floats(), expected_w);
  check_floats(graph.constants.at(conv.inputs[2]).as_floats(), expected_b);
  CHECK(graph.constants.size() == 2);  // the unfolded weights and BN parameters are gone
}

TEST_CASE("Conv + BatchNormalization + Relu with folding or fusion disabled") {
  octet::onnx::ImportOptions no_fold;
  no_fold.fold_batch_norm = false;
  CHECK(ops_of(conv_bn_relu_model().import(no_fold)) == std::vector<std::string>{"Conv", "BatchNormalization", "Relu"});
  octet::onnx::ImportOptions no_fuse;
  no_fuse.fuse = false;
  Graph graph = conv_bn_relu_model().import(no_fuse);
  CHECK(ops_of(graph) == std::vector<std::string>{"Conv", "Relu"});
  CHECK_FALSE(graph.nodes[0].attrs.has("act"));
}

TEST_CASE("residual block: Conv + Add + Relu becomes a Conv with a sum input and sum_act") {
  ModelBuilder m;
  m.input("x", {kBatchDim, 4, 3, 3});
  m.floats("W1", {4, 4, 1, 1}, pseudo_random(16, 2));
  m.floats("W2", {4, 4, 1, 1}, pseudo_random(16, 3));
  m.floats("W3", {4, 4, 1, 1}, pseudo_random(16, 4));
  m.node("Conv", {"x", "W1"}, {"h"}, "conv1");
  m.node("Relu", {"h"}, {"hr"}, "relu1");
  m.node("Conv", {"hr", "W2"}, {"main"}, "conv2");    // main branch, no bias
  m.node("Conv", {"x", "W3"}, {"shortcut"}, "down");  // downsample branch, runs after the main branch
  m.node("Add", {"main", "shortcut"}, {"sum"}, "add");
  m.node("Relu", {"sum"}, {"y"}, "relu2");
  m.output("y");
  Graph graph = m.import();
  REQUIRE(ops_of(graph) == std::vector<std::string>{"Conv", "Conv", "Conv"});
  CHECK(graph.nodes[0].attrs.get_string("act", "") == "relu");
  CHECK(graph.nodes[1].outputs[0] == "main");
  const Node& down = graph.nodes[2];  // the later Conv takes the sum: its partner is computed before it
  CHECK(down.name == "down");
  CHECK(down.inputs == std::vector<std::string>{"x", "W3", "", "main"});
  CHECK(down.outputs == std::vector<std::string>{"y"});
  CHECK(down.attrs.get_string("sum_act", "") == "relu");
  CHECK_FALSE(down.attrs.has("act"));
  validate_graph(graph);
}

// x -> Conv 3x3 + Relu -> Conv 1x1 (+ bias, `act` optional) -> GlobalAveragePool -> Flatten -> y.
ModelBuilder pointwise_conv_then_pool(bool relu_after_pointwise) {
  ModelBuilder m;
  m.input("x", {kBatchDim, 4, 5, 5});
  m.floats("W1", {4, 4, 3, 3}, pseudo_random(144, 7));
  m.floats("W2", {6, 4, 1, 1}, pseudo_random(24, 8));
  m.floats("B2", {6}, pseudo_random(6, 9));
  OnnxBuilder::attribute(m.node("Conv", {"x", "W1"}, {"h"}, "conv1"), "pads", std::vector<int64_t>{1, 1, 1, 1});
  m.node("Relu", {"h"}, {"hr"}, "relu1");
  m.node("Conv", {"hr", "W2", "B2"}, {relu_after_pointwise ? "c" : "logits_map"}, "classifier");
  if (relu_after_pointwise) m.node("Relu", {"c"}, {"logits_map"}, "relu2");
  m.node("GlobalAveragePool", {"logits_map"}, {"pooled"}, "gap");
  OnnxBuilder::attribute(m.node("Flatten", {"pooled"}, {"y"}, "flatten"), "axis", int64_t{1});
  m.output("y");
  return m;
}

// The graph's output for `input` through the reference kernels.
std::vector<float> run_reference(const Graph& graph, const std::vector<float>& input) {
  octet::Session session(octet::Model::from_graph(graph), {1, 1, true});
  octet::Tensor x = session.input(0);
  std::copy(input.begin(), input.end(), x.data);
  session.run();
  octet::Tensor y = session.output(0);
  return std::vector<float>(y.data, y.data + y.elements());
}

TEST_CASE("a 1x1 Conv before GlobalAveragePool runs after the pool, on one pixel, with the same result") {
  octet::onnx::ImportOptions no_fuse;
  no_fuse.fuse = false;
  Graph plain = pointwise_conv_then_pool(false).import(no_fuse), graph = pointwise_conv_then_pool(false).import();
  REQUIRE(ops_of(graph) == std::vector<std::string>{"Conv", "GlobalAveragePool", "Conv", "Flatten"});
  const Node &pool = graph.nodes[1], &classifier = graph.nodes[2];
  CHECK(pool.inputs[0] == "hr");
  CHECK(classifier.name == "classifier");
  CHECK(classifier.inputs[0] == pool.outputs[0]);
  CHECK(classifier.outputs[0] == "pooled");  // the pool's output name stays, now the Conv's
  CHECK(graph.tensor(pool.outputs[0]).shape == Shape{kBatchDim, 4, 1, 1});
  CHECK(graph.tensor("pooled").shape == Shape{kBatchDim, 6, 1, 1});
  std::vector<float> input = pseudo_random(100, 10);
  std::vector<float> want = run_reference(plain, input), got = run_reference(graph, input);
  REQUIRE(got.size() == 6);
  check_floats(got, want);
  // With an activation between the Conv and the pool the mean no longer commutes: nothing moves.
  CHECK(ops_of(pointwise_conv_then_pool(true).import()) ==
        std::vector<std::string>{"Conv", "Conv", "GlobalAveragePool", "Flatten"});
}

TEST_CASE("residual Add with broadcasting stays an Add") {
  ModelBuilder m;
  m.input("x", {kBatchDim, 4, 3, 3});
  m.floats("W", {4, 4, 1, 1}, pseudo_random(16, 2));
  m.node("GlobalAveragePool", {"x"}, {"pooled"});
  m.node("Conv", {"x", "W"}, {"c"});
  m.node("Add", {"c", "pooled"}, {"y"});
  m.output("y");
  CHECK(ops_of(m.import()) == std::vector<std::string>{"GlobalAveragePool", "Conv", "Add"});
}

TEST_CASE("Shape -> Gather -> Unsqueeze -> Concat -> Reshape folds into a static shape with a symbolic batch") {
  ModelBuilder m;
  m.input("x", {kBatchDim, 3, 4, 4});
  m.ints("zero", {}, {0});
  m.ints("axes0", {1}, {0});
  m.ints("minus_one", {1}, {-1});
  m.node("Relu", {"x"}, {"r"});
  m.node("Shape", {"r"}, {"shape"});
  OnnxBuilder::attribute(m.node("Gather", {"shape", "zero"}, {"batch"}), "axis", int64_t{0});
  m.node("Unsqueeze", {"batch", "axes0"}, {"batch1"});
  OnnxBuilder::attribute(m.node("Concat", {"batch1", "minus_one"}, {"target"}), "axis", int64_t{0});
  m.node("Reshape", {"r", "target"}, {"y"}, "flatten");
  m.output("y");
  Graph graph = m.import();
  REQUIRE(ops_of(graph) == std::vector<std::string>{"Relu", "Reshape"});
  CHECK(graph.nodes[1].attrs.get_ints("shape") == std::vector<int64_t>{0, -1});  // 0: copy the batch
  CHECK(graph.nodes[1].inputs == std::vector<std::string>{"r"});
  CHECK(graph.tensor("y").shape == Shape{kBatchDim, 48});
  CHECK(graph.constants.empty());
}

TEST_CASE("a shape computed from the batch size that is not the batch becomes -1; fixed batches fold plainly") {
  ModelBuilder m;
  m.input("x", {kBatchDim, 3, 4, 4});
  m.ints("first", {1}, {0});
  m.ints("second", {1}, {1});
  m.ints("three", {1}, {3});
  m.ints("sixteen", {1}, {16});
  m.node("Shape", {"x"}, {"shape"});
  m.node("Slice", {"shape", "first", "second"}, {"batch"});  // opset 13: starts/ends inputs
  m.node("Mul", {"batch", "three"}, {"rows"});
  OnnxBuilder::attribute(m.node("Concat", {"rows", "sixteen"}, {"target"}), "axis", int64_t{0});
  m.node("Reshape", {"x", "target"}, {"y"});
  m.output("y");
  Graph graph = m.import();
  REQUIRE(ops_of(graph) == std::vector<std::string>{"Reshape"});
  CHECK(graph.nodes[0].attrs.get_ints("shape") == std::vector<int64_t>{-1, 16});
  CHECK(graph.tensor("y").shape == Shape{kBatchDim, 16});

  m.graph->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0)->set_dim_value(2);
  Graph fixed = m.import();
  CHECK(fixed.nodes[0].attrs.get_ints("shape") == std::vector<int64_t>{6, 16});
}

TEST_CASE("a graph output computed from constants and static shapes is a constant") {
  ModelBuilder m;
  m.input("x", {2, 3});
  m.node("Shape", {"x"}, {"y"});
  m.output("y");
  Graph graph = m.import();
  CHECK(graph.nodes.empty());
  CHECK(graph.constants.at("y").as_ints() == std::vector<int64_t>{2, 3});

  m.graph->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0)->set_dim_param("N");
  CHECK(import_error(m).find("graph output 'y' is computed from the batch size") != std::string::npos);
}

TEST_CASE("a batch-dependent value used as data is an error") {
  ModelBuilder m;
  m.input("x", {kBatchDim, 3});
  m.node("Shape", {"x"}, {"shape"});
  m.node("ConstantOfShape", {"shape"}, {"zeros"});
  m.node("Add", {"x", "zeros"}, {"y"}, "add");
  m.output("y");
  std::string error = import_error(m);
  CHECK(error.find("node 'add' (Add): input 'zeros' is computed from the batch size") != std::string::npos);
}

TEST_CASE("Clip: opset-11 constant inputs and opset-10 attributes give the same canonical attributes") {
  ModelBuilder m11(11);
  m11.input("x", {1, 4});
  m11.floats("lo", {}, {0.0f});
  m11.floats("hi", {}, {6.0f});
  m11.node("Clip", {"x", "lo", "hi"}, {"y"});
  m11.output("y");
  Graph graph11 = m11.import();
  const Node& clip11 = only_node(graph11, "Clip");
  CHECK(clip11.inputs == std::vector<std::string>{"x"});
  CHECK(clip11.attrs.get_float("min", -1) == 0.0f);
  CHECK(clip11.attrs.get_float("max", -1) == 6.0f);
  CHECK(graph11.constants.empty());

  ModelBuilder m10(10);
  m10.input("x", {1, 4});
  ::onnx::NodeProto& clip = m10.node("Clip", {"x"}, {"y"});
  OnnxBuilder::attribute(clip, "min", 0.0f);
  OnnxBuilder::attribute(clip, "max", 6.0f);
  m10.output("y");
  CHECK(only_node(m10.import(), "Clip").attrs.values == clip11.attrs.values);

  ModelBuilder max_only(12);
  max_only.input("x", {1, 4});
  max_only.floats("hi", {}, {6.0f});
  max_only.node("Clip", {"x", "", "hi"}, {"y"});
  max_only.output("y");
  const Graph max_only_graph = max_only.import();  // kept alive: only_node returns a reference into it
  const Node& clip_max = only_node(max_only_graph, "Clip");
  CHECK_FALSE(clip_max.attrs.has("min"));
  CHECK(clip_max.attrs.get_float("max", -1) == 6.0f);
}

TEST_CASE("Conv + Clip fuses as act=clip with alpha=min, beta=max") {
  ModelBuilder m;
  m.input("x", {1, 2, 3, 3});
  m.floats("W", {2, 2, 1, 1}, pseudo_random(4, 5));
  m.floats("lo", {}, {0.0f});
  m.floats("hi", {}, {6.0f});
  m.node("Conv", {"x", "W"}, {"c"});
  m.node("Clip", {"c", "lo", "hi"}, {"y"});
  m.output("y");
  Graph graph = m.import();
  REQUIRE(ops_of(graph) == std::vector<std::string>{"Conv"});
  CHECK(graph.nodes[0].attrs.get_string("act", "") == "clip");
  CHECK(graph.nodes[0].attrs.get_float("act_alpha", -1) == 0.0f);
  CHECK(graph.nodes[0].attrs.get_float("act_beta", -1) == 6.0f);
}

TEST_CASE("operands of Slice, Pad, Split, Squeeze and Unsqueeze become attributes") {
  ModelBuilder m;
  m.input("x", {1, 4, 6});
  m.ints("starts", {1}, {1});
  m.ints("ends", {1}, {5});
  m.ints("axes", {1}, {2});
  m.ints("pads", {6}, {0, 0, 1, 0, 0, 1});
  m.floats("pad_value", {}, {0.5f});
  m.ints("split", {2}, {1, 3});
  m.ints("axis0", {1}, {0});
  m.node("Slice", {"x", "starts", "ends", "axes"}, {"s"});
  m.node("Pad", {"s", "pads", "pad_value"}, {"p"});
  OnnxBuilder::attribute(m.node("Split", {"p", "split"}, {"a", "b"}), "axis", int64_t{1});
  m.node("Squeeze", {"a", "axis0"}, {"sq"});
  m.node("Unsqueeze", {"sq", "axis0"}, {"y"});
  m.output("y");
  m.output("b");
  Graph graph = m.import();
  REQUIRE(ops_of(graph) == std::vector<std::string>{"Slice", "Pad", "Split", "Squeeze", "Unsqueeze"});
  CHECK(graph.nodes[0].attrs.get_ints("starts") == std::vector<int64_t>{1});
  CHECK(graph.nodes[0].attrs.get_ints("ends") == std::vector<int64_t>{5});
  CHECK(graph.nodes[0].attrs.get_ints("axes") == std::vector<int64_t>{2});
  CHECK_FALSE(graph.nodes[0].attrs.has("steps"));
  CHECK(graph.nodes[1].attrs.get_ints("pads") == std::vector<int64_t>{0, 0, 1, 0, 0, 1});
  CHECK(graph.nodes[1].attrs.get_float("value", 0) == 0.5f);
  CHECK(graph.nodes[2].attrs.get_ints("split") == std::vector<int64_t>{1, 3});
  CHECK(graph.nodes[3].attrs.get_ints("axes") == std::vector<int64_t>{0});
  for (const Node& node : graph.nodes) CHECK(node.inputs.size() == 1);
  CHECK(graph.tensor("y").shape == Shape{1, 1, 6});
  CHECK(graph.tensor("b").shape == Shape{1, 3, 6});
}

TEST_CASE("Identity and Dropout are removed; graph output names stay") {
  ModelBuilder m(12);
  m.input("x", {kBatchDim, 4});
  m.node("Relu", {"x"}, {"r"}, "relu1");
  m.node("Identity", {"r"}, {"i1"});
  m.node("Dropout", {"i1"}, {"d", "mask"});
  m.node("Relu", {"d"}, {"r2"}, "relu2");
  m.node("Identity", {"r2"}, {"y"});
  m.node("Identity", {"x"}, {"x_copy"}, "passthrough");  // input straight to output: must stay
  m.output("y");
  m.output("x_copy");
  Graph graph = m.import();
  REQUIRE(ops_of(graph) == std::vector<std::string>{"Relu", "Relu", "Identity"});
  CHECK(graph.nodes[1].inputs == std::vector<std::string>{"r"});
  CHECK(graph.nodes[1].outputs == std::vector<std::string>{"y"});
  CHECK(graph.outputs == std::vector<std::string>{"y", "x_copy"});
}

TEST_CASE("Dropout in training mode is an error") {
  ModelBuilder m;
  m.input("x", {1, 4});
  ::onnx::TensorProto& training = m.initializer("training", {});
  training.set_data_type(::onnx::TensorProto::BOOL);
  training.add_int32_data(1);
  m.node("Dropout", {"x", "", "training"}, {"y"}, "drop");
  m.output("y");
  CHECK(import_error(m).find("node 'drop' (Dropout): input 2 'training_mode' must be a constant false") !=
        std::string::npos);
  // ... unless its ratio is a constant 0 (it drops nothing), as torchvision's Swin exports its attention dropout.
  ModelBuilder zero;
  zero.input("x", {1, 4});
  ::onnx::TensorProto& on = zero.initializer("training", {});
  on.set_data_type(::onnx::TensorProto::BOOL);
  on.add_int32_data(1);
  zero.floats("ratio", {}, {0.0f});
  zero.node("Dropout", {"x", "ratio", "training"}, {"d"}, "drop");
  zero.node("Relu", {"d"}, {"y"});
  zero.output("y");
  CHECK(ops_of(zero.import()) == std::vector<std::string>{"Relu"});
}

TEST_CASE("Softmax before opset 13 converts only when equivalent") {
  ModelBuilder m(11);
  m.input("x", {kBatchDim, 1, 10});
  OnnxBuilder::attribute(m.node("Softmax", {"x"}, {"y"}, "softmax"), "axis", int64_t{1});
  m.output("y");
  CHECK(only_node(m.import(), "Softmax").attrs.get_int("axis", 0) == -1);

  m.graph->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(1)->set_dim_value(3);
  CHECK(import_error(m).find("node 'softmax' (Softmax): opset-11 Softmax over axis 1 flattens") != std::string::npos);
}

TEST_CASE("errors name the file, the node and the field") {
  SUBCASE("unsupported op") {
    ModelBuilder m;
    m.input("boxes", {1, 4, 4});
    m.node("NonMaxSuppression", {"boxes"}, {"y"}, "nms");
    m.output("y");
    std::string error = import_error(m);
    CHECK(error.find(".onnx: node 'nms' (NonMaxSuppression): unsupported op 'NonMaxSuppression'") != std::string::npos);
    CHECK(error.find("Conv, Gemm") != std::string::npos);  // the list of supported ops
  }
  SUBCASE("Reshape shape computed at run time") {
    ModelBuilder m;
    m.input("x", {1, 4});
    m.input("s", {2});
    m.node("Relu", {"s"}, {"computed"});
    m.node("Reshape", {"x", "computed"}, {"y"}, "reshape");
    m.output("y");
    CHECK(import_error(m).find(
              "node 'reshape' (Reshape): input 1 'shape' must be a constant (octet needs static shapes)") !=
          std::string::npos);
  }
  SUBCASE("integer graph input, unless bound") {
    ModelBuilder m;
    m.input("x", {2, 6});
    m.input("shape", {2}, ::onnx::TensorProto::INT64);
    m.node("Reshape", {"x", "shape"}, {"y"});
    m.output("y");
    CHECK(import_error(m).find("graph input 'shape' has type s64") != std::string::npos);
    octet::onnx::ImportOptions options;
    options.bind_inputs["shape"] = Constant::from_ints({2}, {3, -1});
    Graph graph = m.import(options);
    CHECK(graph.inputs == std::vector<std::string>{"x"});
    CHECK(graph.tensor("y").shape == Shape{3, 4});
  }
  SUBCASE("opset out of range") {
    for (int64_t opset : {6, 18}) {
      ModelBuilder m(opset);
      m.input("x", {1});
      m.node("Relu", {"x"}, {"y"});
      m.output("y");
      CHECK(import_error(m).find("uses opset " + std::to_string(opset) + " of the default ONNX domain") !=
            std::string::npos);
    }
  }
  SUBCASE("node of another domain") {
    ModelBuilder m;
    m.input("x", {1});
    m.node("Relu", {"x"}, {"y"}, "custom").set_domain("com.microsoft");
    m.output("y");
    CHECK(import_error(m).find("node 'custom' (Relu): is in domain 'com.microsoft'") != std::string::npos);
  }
  SUBCASE("attribute outside the canonical list") {
    ModelBuilder m;
    m.input("x", {1});
    OnnxBuilder::attribute(m.node("Relu", {"x"}, {"y"}, "relu"), "bogus", int64_t{1});
    m.output("y");
    CHECK(import_error(m).find("node 'relu' (Relu): unknown attribute 'bogus'") != std::string::npos);
  }
  SUBCASE("symbolic dimension other than the batch") {
    ModelBuilder m;
    m.input("x", {kBatchDim, kBatchDim});
    m.node("Relu", {"x"}, {"y"});
    m.output("y");
    CHECK(import_error(m).find("graph input 'x': dimension 1 ('N') is symbolic") != std::string::npos);
  }
  SUBCASE("symbolic batch that a node's shapes fix") {
    ModelBuilder m;
    m.input("x", {kBatchDim, 12});
    m.ints("shape", {2}, {1, 12});
    m.node("Reshape", {"x", "shape"}, {"y"}, "reshape");
    m.output("y");
    CHECK(import_error(m).find("node 'reshape' (Reshape): cannot reshape [2,12]") != std::string::npos);
    CHECK(import_error(m).find("(at batch size 2: the graph input's batch is symbolic") != std::string::npos);
  }
  SUBCASE("BatchNormalization in training mode") {
    ModelBuilder m(14);
    m.input("x", {1, 2});
    for (const char* name : {"s", "b", "m", "v"}) m.floats(name, {2}, {1.0f, 1.0f});
    OnnxBuilder::attribute(m.node("BatchNormalization", {"x", "s", "b", "m", "v"}, {"y"}, "bn"), "training_mode",
                           int64_t{1});
    m.output("y");
    CHECK(import_error(m).find("node 'bn' (BatchNormalization): attribute training_mode=1") != std::string::npos);
  }
  SUBCASE("external data") {
    ModelBuilder m;
    m.input("x", {1, 2});
    ::onnx::TensorProto& w = m.initializer("w", {2});
    w.set_data_type(::onnx::TensorProto::FLOAT);
    w.set_data_location(::onnx::TensorProto::EXTERNAL);
    m.node("Add", {"x", "w"}, {"y"});
    m.output("y");
    CHECK(import_error(m).find("initializer 'w': data is stored in an external file") != std::string::npos);
  }
  SUBCASE("missing and corrupt files") {
    std::string missing = (scratch_dir() / "missing.onnx").string();
    CHECK_THROWS_WITH_AS(octet::onnx::import_onnx(missing), doctest::Contains("missing.onnx"), Error);
    std::string corrupt = (scratch_dir() / "corrupt.onnx").string();
    std::ofstream(corrupt) << "this is not a protobuf";
    CHECK_THROWS_WITH_AS(octet::onnx::import_onnx(corrupt), doctest::Contains("corrupt.onnx: not a valid ONNX model"),
                         Error);
  }
}

TEST_CASE("Constant nodes and constant arithmetic fold; Gather keeps constant indices") {
  ModelBuilder m;
  m.input("x", {1, 5});
  ::onnx::NodeProto& constant = m.node("Constant", {}, {"idx"});
  OnnxBuilder::attribute(constant, "value_ints", std::vector<int64_t>{4, 0});
  m.ints("one", {}, {1});
  m.node("Sub", {"idx", "one"}, {"idx_minus"});  // {3, -1}: folded
  ::onnx::NodeProto& cast = m.node("Cast", {"idx_minus"}, {"idx32"});
  OnnxBuilder::attribute(cast, "to", int64_t{::onnx::TensorProto::INT32});
  OnnxBuilder::attribute(m.node("Gather", {"x", "idx32"}, {"y"}), "axis", int64_t{1});
  m.output("y");
  Graph graph = m.import();
  const Node& gather = only_node(graph, "Gather");
  const Constant& indices = graph.constants.at(gather.inputs[1]);
  CHECK(indices.dtype == DType::s32);
  CHECK(indices.as_ints() == std::vector<int64_t>{3, -1});
  CHECK(graph.constants.size() == 1);
}

TEST_CASE("Swin's constant arithmetic folds: Mod, Transpose, ScatterND, Not, Pow of constants") {
  // Each result is a graph output computed from constants only, so the import leaves it a constant.
  ModelBuilder m;
  m.input("x", {1, 2});
  m.node("Relu", {"x"}, {"r"});
  m.output("r");
  m.ints("a", {4}, {-7, 7, -7, 7});
  m.ints("b", {4}, {3, 3, -3, -3});
  m.node("Mod", {"a", "b"}, {"mod"});                                               // the divisor's sign
  OnnxBuilder::attribute(m.node("Mod", {"a", "b"}, {"fmod"}), "fmod", int64_t{1});  // the dividend's
  m.ints("matrix", {2, 3}, {1, 2, 3, 4, 5, 6});
  OnnxBuilder::attribute(m.node("Transpose", {"matrix"}, {"transposed"}), "perm", std::vector<int64_t>{1, 0});
  m.floats("zeros", {2, 3}, std::vector<float>(6, 0.0f));
  m.ints("row", {1, 1}, {1});
  m.floats("row_values", {1, 3}, {7, 8, 9});
  m.node("ScatterND", {"zeros", "row", "row_values"}, {"scattered"});
  m.ints("cell", {1, 2}, {0, -1});
  m.floats("cell_value", {1}, {5});
  m.node("ScatterND", {"scattered", "cell", "cell_value"}, {"scattered2"});
  m.ints("k", {2}, {1, 3});
  m.ints("three", {}, {3});
  m.node("Equal", {"k", "three"}, {"is_three"});
  m.node("Not", {"is_three"}, {"not_three"});
  m.floats("base", {2}, {2, 3});
  m.floats("two", {}, {2});
  m.node("Pow", {"base", "two"}, {"squared"});
  for (const char* out : {"mod", "fmod", "transposed", "scattered2", "not_three", "squared"}) m.output(out);
  Graph graph = m.import();
  CHECK(ops_of(graph) == std::vector<std::string>{"Relu"});
  CHECK(graph.constants.at("mod").as_ints() == std::vector<int64_t>{2, 1, -1, -2});
  CHECK(graph.constants.at("fmod").as_ints() == std::vector<int64_t>{-1, 1, -1, 1});
  CHECK(graph.constants.at("transposed").shape == Shape{3, 2});
  CHECK(graph.constants.at("transposed").as_ints() == std::vector<int64_t>{1, 4, 2, 5, 3, 6});
  CHECK(graph.constants.at("scattered2").as_floats() == std::vector<float>{0, 0, 5, 7, 8, 9});
  const Constant& not_three = graph.constants.at("not_three");  // bool: u8 0/1
  CHECK(std::vector<uint8_t>(not_three.bytes->begin(), not_three.bytes->end()) == std::vector<uint8_t>{1, 0});
  CHECK(graph.constants.at("squared").as_floats() == std::vector<float>{4, 9});
  // An index past the data's dims is an error naming the node.
  ModelBuilder bad;
  bad.input("x", {1, 2});
  bad.floats("zeros", {2, 3}, std::vector<float>(6, 0.0f));
  bad.ints("row", {1, 1}, {2});
  bad.floats("row_values", {1, 3}, {7, 8, 9});
  bad.node("ScatterND", {"zeros", "row", "row_values"}, {"y"}, "scatter");
  bad.output("y");
  CHECK(import_error(bad).find("node 'scatter' (ScatterND): index 2 is out of range for dim 0") != std::string::npos);
}

TEST_CASE("read_tensor_pb reads raw and typed data") {
  ::onnx::TensorProto raw;
  raw.set_name("input_0");
  raw.set_data_type(::onnx::TensorProto::FLOAT);
  raw.add_dims(2);
  std::vector<float> values = {1.5f, -2.0f};
  raw.set_raw_data(values.data(), 8);
  std::string raw_path = (scratch_dir() / "raw.pb").string();
  std::ofstream(raw_path, std::ios::binary) << raw.SerializeAsString();
  std::string name;
  Constant c = octet::onnx::read_tensor_pb(raw_path, &name);
  CHECK(name == "input_0");
  CHECK(c.shape == Shape{2});
  CHECK(c.as_floats() == values);

  ::onnx::TensorProto typed;
  typed.set_data_type(::onnx::TensorProto::INT64);
  typed.add_dims(1);
  typed.add_dims(3);
  for (int64_t v : {7, 8, 9}) typed.add_int64_data(v);
  std::string typed_path = (scratch_dir() / "typed.pb").string();
  std::ofstream(typed_path, std::ios::binary) << typed.SerializeAsString();
  Constant t = octet::onnx::read_tensor_pb(typed_path);
  CHECK(t.dtype == DType::s64);
  CHECK(t.shape == Shape{1, 3});
  CHECK(t.as_ints() == std::vector<int64_t>{7, 8, 9});
}

namespace {

std::map<std::string, int> op_counts(const Graph& graph) {
  std::map<std::string, int> counts;
  for (const Node& node : graph.nodes) ++counts[node.op];
  return counts;
}

Graph import_shared(const std::string& model) {
  Graph graph = octet::onnx::import_onnx(std::string(OCTET_SHARED_DIR) + "/models/" + model + "/model.onnx");
  validate_graph(graph);
  for (const Node& node : graph.nodes) validate_node(node);
  std::string summary;
  for (const auto& kv : op_counts(graph)) summary += " " + kv.first + "=" + std::to_string(kv.second);
  MESSAGE(model << ":" << summary);
  CHECK(op_counts(graph).count("BatchNormalization") == 0);
  CHECK(op_counts(graph).count("Identity") == 0);
  return graph;
}

}  // namespace

TEST_CASE("shared model resnet50: 53 Conv, 16 with a residual sum" * doctest::test_suite("models")) {
  Graph graph = import_shared("resnet50");
  REQUIRE(graph.inputs.size() == 1);
  CHECK(graph.tensor(graph.inputs[0]).shape == Shape{kBatchDim, 3, 224, 224});
  CHECK(graph.outputs == std::vector<std::string>{"logits"});
  CHECK(graph.tensor("logits").shape == Shape{kBatchDim, 1000});
  int convs = 0, sums = 0, relu_after_sum = 0;
  for (const Node& node : graph.nodes) {
    if (node.op != "Conv") continue;
    ++convs;
    if (node.inputs.size() == 4) {
      ++sums;
      relu_after_sum += node.attrs.get_string("sum_act", "") == "relu";
    }
  }
  CHECK(convs == 53);
  CHECK(sums == 16);
  CHECK(relu_after_sum == 16);
  CHECK(op_counts(graph) == std::map<std::string, int>{
                                {"Conv", 53}, {"MaxPool", 1}, {"GlobalAveragePool", 1}, {"Flatten", 1}, {"Gemm", 1}});
}

TEST_CASE("shared model mobilenet_v1_025: BN folded, Clip (ReLU6) fused" * doctest::test_suite("models")) {
  Graph graph = import_shared("mobilenet_v1_025");
  CHECK(graph.tensor(graph.inputs.at(0)).shape == Shape{1, 3, 224, 224});
  CHECK(op_counts(graph) == std::map<std::string, int>{{"Conv", 28}, {"GlobalAveragePool", 1}, {"Flatten", 1}});
  int clipped = 0;
  for (const Node& node : graph.nodes)
    if (node.attrs.get_string("act", "") == "clip") {
      ++clipped;
      CHECK(node.attrs.get_float("act_alpha", -1) == 0.0f);
      CHECK(node.attrs.get_float("act_beta", -1) == 6.0f);
    }
  CHECK(clipped == 27);
}

TEST_CASE("shared model darknet_tiny: BN folded, LeakyRelu fused" * doctest::test_suite("models")) {
  Graph graph = import_shared("darknet_tiny");
  CHECK(graph.tensor(graph.inputs.at(0)).shape == Shape{1, 3, 224, 224});
  CHECK(op_counts(graph) ==
        std::map<std::string, int>{{"Conv", 16}, {"MaxPool", 4}, {"GlobalAveragePool", 1}, {"Flatten", 1}});
  int leaky = 0;
  for (const Node& node : graph.nodes)
    if (node.attrs.get_string("act", "") == "leaky_relu") {
      ++leaky;
      CHECK(node.attrs.get_float("act_alpha", -1) == doctest::Approx(0.1f));
    }
  CHECK(leaky == 15);
}

// ---- Modern classifiers: the written-out patterns exporters produce fuse into one op each, with the same
// result as the op-by-op graph (both run on the reference kernels), and shape-only subgraphs fold. ----

namespace {

// [1, 5, 8] tokens -> the pattern under test -> y.
ModelBuilder token_model() {
  ModelBuilder m;
  m.input("x", {1, 5, 8});
  return m;
}

void check_fusion(const ModelBuilder& m, const std::string& fused_op, size_t fused_nodes) {
  octet::onnx::ImportOptions no_fuse;
  no_fuse.fuse = false;
  Graph plain = m.import(no_fuse), graph = m.import();
  CHECK(graph.nodes.size() == fused_nodes);
  only_node(graph, fused_op);
  std::vector<float> input = pseudo_random(40, 7);
  for (float& v : input) v *= 4;
  check_floats(run_reference(graph, input), run_reference(plain, input));
}

}  // namespace

TEST_CASE("LayerNorm written out at opset 13 (ReduceMean, Sub, Pow, Sqrt, Div, Mul, Add) becomes LayerNormalization") {
  ModelBuilder m = token_model();
  m.ints("axes", {1}, {-1});
  m.floats("two", {}, {2});
  m.floats("eps", {}, {1e-5f});
  m.floats("gamma", {8}, pseudo_random(8, 3));
  m.floats("beta", {8}, pseudo_random(8, 4));
  OnnxBuilder::attribute(m.node("ReduceMean", {"x"}, {"mean"}), "axes", std::vector<int64_t>{-1});
  m.node("Sub", {"x", "mean"}, {"d"});
  m.node("Pow", {"d", "two"}, {"d2"});
  OnnxBuilder::attribute(m.node("ReduceMean", {"d2"}, {"var"}), "axes", std::vector<int64_t>{-1});
  m.node("Add", {"var", "eps"}, {"ve"});
  m.node("Sqrt", {"ve"}, {"sd"});
  m.node("Div", {"d", "sd"}, {"n"});
  m.node("Mul", {"n", "gamma"}, {"g"});
  m.node("Add", {"g", "beta"}, {"y"}, "ln_out");
  m.output("y");
  check_fusion(m, "LayerNormalization", 1);
  CHECK(only_node(m.import(), "LayerNormalization").attrs.get_float("epsilon", 0) == doctest::Approx(1e-5f));
}

TEST_CASE("GELU as Erf becomes one Gelu; x * HardSigmoid(x) becomes HardSwish") {
  ModelBuilder m = token_model();
  m.floats("sqrt2", {}, {1.41421356f});
  m.floats("one", {}, {1});
  m.floats("half", {}, {0.5f});
  m.node("Div", {"x", "sqrt2"}, {"s"});
  m.node("Erf", {"s"}, {"e"});
  m.node("Add", {"e", "one"}, {"e1"});
  m.node("Mul", {"x", "e1"}, {"xe"});
  m.node("Mul", {"xe", "half"}, {"g"});
  ::onnx::NodeProto& hs = m.node("HardSigmoid", {"g"}, {"h"});
  OnnxBuilder::attribute(hs, "alpha", 1.0f / 6);
  OnnxBuilder::attribute(hs, "beta", 0.5f);
  m.node("Mul", {"g", "h"}, {"y"});
  m.output("y");
  check_fusion(m, "Gelu", 2);
  CHECK(ops_of(m.import()) == std::vector<std::string>{"Gelu", "HardSwish"});
}

TEST_CASE("MatMul with constant weights and a bias Add: the bias goes into the MatMul") {
  ModelBuilder m = token_model();
  m.floats("w", {8, 3}, pseudo_random(24, 5));
  m.floats("b", {3}, pseudo_random(3, 6));
  m.node("MatMul", {"x", "w"}, {"mm"});
  m.node("Add", {"b", "mm"}, {"y"});
  m.output("y");
  check_fusion(m, "MatMul", 1);
  CHECK(only_node(m.import(), "MatMul").inputs.size() == 3);
}

// x [1,5,8] -> MatMul + b (8 -> 12) -> q = columns [0,6), k = columns [k_begin, 12) -> heads [1,5,2,3] -> q
// [1,2,5,3] / 4, k [1,2,3,5] -> MatMul: attention scores with the scale after the joint projection.
ModelBuilder scaled_attention_model(int64_t k_begin) {
  ModelBuilder m = token_model();
  m.floats("w", {8, 12}, pseudo_random(96, 5));
  m.floats("b", {12}, pseudo_random(12, 6));
  m.floats("four", {}, {4});
  m.ints("q_start", {1}, {0});
  m.ints("q_end", {1}, {6});
  m.ints("k_start", {1}, {k_begin});
  m.ints("k_end", {1}, {k_begin + 6});
  m.ints("last", {1}, {-1});
  m.ints("heads", {4}, {1, 5, 2, 3});
  m.node("MatMul", {"x", "w"}, {"mm"});
  m.node("Add", {"mm", "b"}, {"qkv"});
  m.node("Slice", {"qkv", "q_start", "q_end", "last"}, {"q"});
  m.node("Slice", {"qkv", "k_start", "k_end", "last"}, {"k"});
  m.node("Reshape", {"q", "heads"}, {"qh"});
  m.node("Reshape", {"k", "heads"}, {"kh"});
  OnnxBuilder::attribute(m.node("Transpose", {"qh"}, {"qt"}), "perm", std::vector<int64_t>{0, 2, 1, 3});
  OnnxBuilder::attribute(m.node("Transpose", {"kh"}, {"kt"}), "perm", std::vector<int64_t>{0, 2, 3, 1});
  m.node("Div", {"qt", "four"}, {"qs"});
  m.node("MatMul", {"qs", "kt"}, {"y"});
  m.output("y");
  return m;
}

TEST_CASE("a Div by a constant after a linear layer's columns scales those weights instead") {
  octet::onnx::ImportOptions no_fuse;
  no_fuse.fuse = false;
  std::vector<float> input = pseudo_random(40, 7);
  for (int64_t k_begin : {6, 4}) {  // k's columns apart from q's (folded), or overlapping them (kept)
    ModelBuilder m = scaled_attention_model(k_begin);
    Graph graph = m.import();
    const auto ops = ops_of(graph);
    CHECK(std::count(ops.begin(), ops.end(), "Div") == (k_begin == 6 ? 0 : 1));
    check_floats(run_reference(graph, input), run_reference(m.import(no_fuse), input));
  }
}

TEST_CASE("ViT's class token: Expand of a shape from ConstantOfShape/Equal/Where folds into a constant") {
  ModelBuilder m = token_model();
  m.floats("token", {1, 1, 8}, pseudo_random(8, 9));
  m.ints("target", {3}, {1, -1, -1});
  m.ints("three", {1}, {3});
  ::onnx::TensorProto& one = *m.node("ConstantOfShape", {"three"}, {"ones"}).add_attribute()->mutable_t();
  m.graph->mutable_node(0)->mutable_attribute(0)->set_name("value");
  m.graph->mutable_node(0)->mutable_attribute(0)->set_type(::onnx::AttributeProto::TENSOR);
  one.set_data_type(::onnx::TensorProto::INT64);
  one.add_dims(1);
  one.add_int64_data(1);
  m.ints("minus1", {}, {-1});
  m.node("Mul", {"ones", "minus1"}, {"neg"});
  m.node("Equal", {"target", "neg"}, {"eq"});
  m.node("Where", {"eq", "ones", "target"}, {"shape"});
  m.node("Expand", {"token", "shape"}, {"cls"});
  OnnxBuilder::attribute(m.node("Concat", {"cls", "x"}, {"y"}, "concat"), "axis", int64_t{1});
  m.output("y");
  Graph graph = m.import();
  CHECK(ops_of(graph) == std::vector<std::string>{"Concat"});
  CHECK(graph.tensor("y").shape == Shape{1, 6, 8});
  std::vector<float> input = pseudo_random(40, 7), y = run_reference(graph, input), token = pseudo_random(8, 9);
  check_floats(std::vector<float>(y.begin(), y.begin() + 8), token);
  check_floats(std::vector<float>(y.begin() + 8, y.end()), input);
}

TEST_CASE("ConvNeXt block: after the permute to channels-last, dense rows for LayerNorm and the linear layers") {
  // x [N,8,5,5] -> depthwise 3x3 Conv -> Transpose(0,2,3,1) -> LayerNorm -> MatMul+b (8->16) -> Gelu -> MatMul+b
  // (16->8) -> Mul(layer scale) -> Transpose(0,3,1,2) -> Add(x), as torchvision's CNBlock.
  ModelBuilder m(17);
  m.input("x", {kBatchDim, 8, 5, 5});
  m.floats("dw", {8, 1, 3, 3}, pseudo_random(72, 11));
  ::onnx::NodeProto& dw = m.node("Conv", {"x", "dw"}, {"c"});
  OnnxBuilder::attribute(dw, "group", int64_t{8});
  OnnxBuilder::attribute(dw, "pads", std::vector<int64_t>{1, 1, 1, 1});
  OnnxBuilder::attribute(m.node("Transpose", {"c"}, {"t"}), "perm", std::vector<int64_t>{0, 2, 3, 1});
  m.floats("gamma", {8}, pseudo_random(8, 12));
  m.floats("beta", {8}, pseudo_random(8, 13));
  m.node("LayerNormalization", {"t", "gamma", "beta"}, {"ln"}, "ln");
  m.floats("w1", {8, 16}, pseudo_random(128, 14));
  m.floats("b1", {16}, pseudo_random(16, 15));
  m.node("MatMul", {"ln", "w1"}, {"m1"}, "fc1");
  m.node("Add", {"m1", "b1"}, {"a1"});
  m.node("Gelu", {"a1"}, {"g"});  // (opset 20's op; octet reads it at any opset)
  m.floats("w2", {16, 8}, pseudo_random(128, 16));
  m.floats("b2", {8}, pseudo_random(8, 17));
  m.node("MatMul", {"g", "w2"}, {"m2"}, "fc2");
  m.node("Add", {"m2", "b2"}, {"a2"});
  m.floats("scale", {8}, pseudo_random(8, 18));
  m.node("Mul", {"a2", "scale"}, {"s"});
  OnnxBuilder::attribute(m.node("Transpose", {"s"}, {"back"}), "perm", std::vector<int64_t>{0, 3, 1, 2});
  m.node("Add", {"back", "x"}, {"y"});
  m.output("y");
  const Graph graph = m.import();
  const std::vector<float> input = pseudo_random(200, 19);
  octet::Session session(octet::Model::from_graph(Graph(graph)), {1, 1, false});
  std::copy(input.begin(), input.end(), session.input(0).data);
  session.run();
  const octet::Tensor y = session.output(0);
  check_floats(std::vector<float>(y.data, y.data + y.elements()), run_reference(graph, input));
  // Channels-last everywhere, the linear layers had no 2-D view of their rows and the LayerNorm ran the
  // reference: now oneDNN runs them all.
  for (const octet::LayerInfo& layer : session.layers()) {
    CAPTURE(layer.node);
    CHECK(layer.implementation.find("ref") == std::string::npos);
    if (layer.node == "ln") CHECK(layer.implementation.find("layer_normalization") != std::string::npos);
  }
}

TEST_CASE("a model with an op octet lacks still fails naming the op and the node") {
  ModelBuilder m = token_model();
  m.node("GridSample", {"x", "x"}, {"y"}, "warp");
  m.output("y");
  CHECK(import_error(m).find(".onnx: node 'warp' (GridSample): unsupported op 'GridSample'") != std::string::npos);
}
