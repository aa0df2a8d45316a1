// QDQ ONNX export (converters/onnx/qdq_export.h): a small hand-built graph quantized by the policy, then the INT8
// MobileNet converted by octet-convert --export-qdq. Each export is parsed with the ONNX protobuf classes and
// checked against octet's graph: node types and order, scales and zero points, initializer dtypes and bytes.
#include <doctest/doctest.h>

#include "support/onnx_pb.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "converters/onnx/qdq_export.h"
#include "converters/quant/quantize_graph.h"
#include "graph/model_format.h"
#include "graph/shape_inference.h"
#include "support/graphs.h"
#include "support/random.h"

namespace fs = std::filesystem;
using namespace octet;

namespace {

const fs::path kScratch = fs::path(OCTET_BUILD_DIR) / "test-qdq-export";

using octet::testing::pseudo_random;

Graph small_fp32_graph() { return octet::testing::small_conv_classifier(/*leaky_residual*/ true); }

Graph small_quantized_graph(bool int8_classifier) {
  std::map<std::string, octet::quant::TensorStats> stats;
  for (const auto& kv : octet::testing::small_conv_classifier_ranges()) {
    const float values[2] = {kv.second.first, kv.second.second};
    stats[kv.first].update(values, 2);
  }
  octet::quant::QuantizeOptions options;
  options.int8_classifier = int8_classifier;
  return octet::quant::quantize_graph(small_fp32_graph(), stats, options);
}

::onnx::ModelProto parse(const std::string& bytes) {
  ::onnx::ModelProto model;
  REQUIRE(model.ParseFromString(bytes));
  return model;
}

template <typename T>
std::vector<T> values_of(const ::onnx::TensorProto& tensor) {
  REQUIRE(tensor.raw_data().size() % sizeof(T) == 0);
  std::vector<T> values(tensor.raw_data().size() / sizeof(T));
  std::memcpy(values.data(), tensor.raw_data().data(), tensor.raw_data().size());
  return values;
}

std::vector<int32_t> zero_points_of(const ::onnx::TensorProto& tensor) {
  switch (tensor.data_type()) {
    case ::onnx::TensorProto::UINT8: {
      auto v = values_of<uint8_t>(tensor);
      return {v.begin(), v.end()};
    }
    case ::onnx::TensorProto::INT8: {
      auto v = values_of<int8_t>(tensor);
      return {v.begin(), v.end()};
    }
    case ::onnx::TensorProto::INT32: return values_of<int32_t>(tensor);
    default: FAIL("zero point of type " << tensor.data_type());
  }
  return {};
}

int64_t int_attribute(const ::onnx::NodeProto& node, const std::string& name, int64_t fallback) {
  for (const ::onnx::AttributeProto& a : node.attribute())
    if (a.name() == name) return a.i();
  return fallback;
}

// An exported model with lookups by name.
struct Exported {
  ::onnx::ModelProto model;
  std::map<std::string, const ::onnx::TensorProto*> initializers;
  std::map<std::string, const ::onnx::NodeProto*> producer;
  std::map<std::string, std::vector<const ::onnx::NodeProto*>> readers;

  explicit Exported(const std::string& bytes) : model(parse(bytes)) {
    for (const ::onnx::TensorProto& t : model.graph().initializer()) initializers[t.name()] = &t;
    for (const ::onnx::NodeProto& n : model.graph().node()) {
      for (const std::string& o : n.output()) producer[o] = &n;
      for (const std::string& i : n.input()) readers[i].push_back(&n);
    }
  }
  const ::onnx::TensorProto& initializer(const std::string& name) const {
    auto it = initializers.find(name);
    REQUIRE_MESSAGE(it != initializers.end(), "no initializer '" << name << "'");
    return *it->second;
  }
  // The op types of the chain that starts at node `name`, following the only reader of each first output.
  std::vector<std::string> chain_from(const std::string& name) const {
    const ::onnx::NodeProto* node = nullptr;
    for (const ::onnx::NodeProto& n : model.graph().node())
      if (n.name() == name) node = &n;
    REQUIRE_MESSAGE(node, "no node '" << name << "'");
    std::vector<std::string> ops;
    while (node) {
      ops.push_back(node->op_type());
      auto next = readers.find(node->output(0));
      node = next != readers.end() && next->second.size() == 1 ? next->second[0] : nullptr;
    }
    return ops;
  }
  std::map<std::string, int> op_counts() const {
    std::map<std::string, int> counts;
    for (const ::onnx::NodeProto& n : model.graph().node()) counts[n.op_type()]++;
    return counts;
  }
  // Initializers that DequantizeLinear nodes dequantize (weights and biases, not scales or zero points), by dtype.
  std::map<int32_t, int> dequantized_initializer_dtypes() const {
    std::set<std::string> names;
    for (const ::onnx::NodeProto& n : model.graph().node())
      if (n.op_type() == "DequantizeLinear" && initializers.count(n.input(0))) names.insert(n.input(0));
    std::map<int32_t, int> counts;
    for (const std::string& name : names) counts[initializers.at(name)->data_type()]++;
    return counts;
  }
};

void check_params(const Exported& e, const ::onnx::NodeProto& node, const QuantParams& expected) {
  INFO(node.op_type() << " '" << node.name() << "'");
  REQUIRE(node.input_size() == 3);
  CHECK(values_of<float>(e.initializer(node.input(1))) == expected.scales);
  CHECK(zero_points_of(e.initializer(node.input(2))) == expected.zero_points);
  CHECK(int_attribute(node, "axis", -1) == (expected.axis >= 0 ? expected.axis : -1));
}

// What every export of `graph` must satisfy: opset 17 / IR 8, the graph's inputs and outputs, nodes in run
// order, every QuantizeLinear/DequantizeLinear with octet's own parameters, s8 weights as int8 initializers
// with octet's bytes, s32 biases in accumulator units, one reader per DequantizeLinear the export adds.
void check_against_graph(const Exported& e, const Graph& graph) {
  CHECK(e.model.ir_version() == 8);
  REQUIRE(e.model.opset_import_size() == 1);
  CHECK(e.model.opset_import(0).version() == 17);
  const ::onnx::GraphProto& g = e.model.graph();
  REQUIRE(static_cast<size_t>(g.input_size()) == graph.inputs.size());
  REQUIRE(static_cast<size_t>(g.output_size()) == graph.outputs.size());
  for (int i = 0; i < g.input_size(); ++i) {
    CHECK(g.input(i).name() == graph.inputs[static_cast<size_t>(i)]);
    CHECK(g.input(i).type().tensor_type().elem_type() == ::onnx::TensorProto::FLOAT);
  }
  for (int i = 0; i < g.output_size(); ++i) {
    CHECK(g.output(i).name() == graph.outputs[static_cast<size_t>(i)]);
    CHECK(g.output(i).type().tensor_type().elem_type() == ::onnx::TensorProto::FLOAT);
  }
  std::set<std::string> available(graph.inputs.begin(), graph.inputs.end());
  for (const auto& kv : e.initializers) available.insert(kv.first);
  for (const ::onnx::NodeProto& node : g.node()) {
    INFO(node.op_type() << " '" << node.name() << "'");
    for (const std::string& input : node.input())
      CHECK_MESSAGE((input.empty() || available.count(input)), "reads '" << input << "' before it exists");
    available.insert(node.output().begin(), node.output().end());
    if (node.op_type() == "QuantizeLinear") check_params(e, node, graph.tensor(node.output(0)).quant);
    if (node.op_type() != "DequantizeLinear") continue;
    const std::string& source = node.input(0);
    auto weights = e.initializers.find(source);
    if (weights == e.initializers.end()) {
      check_params(e, node, graph.tensor(source).quant);  // an activation
    } else if (weights->second->data_type() == ::onnx::TensorProto::INT8) {
      const Constant& octet_weights = graph.constants.at(source);
      CHECK(values_of<int8_t>(*weights->second) ==
            std::vector<int8_t>(octet_weights.data<int8_t>(), octet_weights.data<int8_t>() + octet_weights.elements()));
      check_params(e, node, graph.tensor(source).quant);
    } else {
      REQUIRE(weights->second->data_type() == ::onnx::TensorProto::INT32);
      // The reader is a Conv/Gemm whose inputs 0 and 1 are dequantized activation and weights.
      REQUIRE(e.readers.at(node.output(0)).size() == 1);
      const ::onnx::NodeProto& layer = *e.readers.at(node.output(0))[0];
      CHECK(layer.input(2) == node.output(0));
      const float input_scale = graph.tensor(e.producer.at(layer.input(0))->input(0)).quant.scales[0];
      const std::vector<float>& weight_scales = graph.tensor(e.producer.at(layer.input(1))->input(0)).quant.scales;
      QuantParams expected;
      expected.axis = 0;
      for (size_t c = 0; c < static_cast<size_t>(graph.constants.at(source).elements()); ++c)
        expected.scales.push_back(input_scale * weight_scales[weight_scales.size() == 1 ? 0 : c]);
      expected.zero_points.assign(expected.scales.size(), 0);
      check_params(e, node, expected);
    }
    // Each DequantizeLinear the export adds has one reader; octet's own Dequantize nodes may have several.
    if (!graph.tensors.count(node.output(0))) CHECK(e.readers.at(node.output(0)).size() == 1);
  }
  int quantized_tensors = 0, s8_constants = 0, s32_constants = 0;
  for (const auto& kv : graph.tensors) quantized_tensors += !graph.is_constant(kv.first) && kv.second.quant.present();
  for (const auto& kv : graph.constants) {
    s8_constants += kv.second.dtype == DType::s8;
    s32_constants += kv.second.dtype == DType::s32;
  }
  std::map<std::string, int> ops = e.op_counts();
  CHECK(ops["QuantizeLinear"] == quantized_tensors);
  std::map<int32_t, int> dtypes = e.dequantized_initializer_dtypes();
  CHECK(dtypes[::onnx::TensorProto::INT8] == s8_constants);
  CHECK(dtypes[::onnx::TensorProto::INT32] == s32_constants);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot open " << path);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

}  // namespace

TEST_CASE("an all-INT8 graph exports its post-ops, residual sum, pooling and classifier as QDQ ONNX") {
  const Graph graph = small_quantized_graph(true);
  const Exported e(octet::onnx::qdq_onnx_model(graph));
  check_against_graph(e, graph);
  CHECK(e.model.graph().input(0).type().tensor_type().shape().dim(0).dim_param() == "N");
  CHECK(e.op_counts() == std::map<std::string, int>{{"Add", 1},
                                                    {"Clip", 1},
                                                    {"Conv", 3},
                                                    {"DequantizeLinear", 15},
                                                    {"Flatten", 1},
                                                    {"Gemm", 1},
                                                    {"LeakyRelu", 1},
                                                    {"MaxPool", 1},
                                                    {"QuantizeLinear", 6},
                                                    {"Relu", 1}});
  CHECK(e.chain_from("x/quantize") ==
        std::vector<std::string>{"QuantizeLinear", "DequantizeLinear", "Conv", "Clip", "QuantizeLinear"});
  CHECK(e.chain_from("c1") == std::vector<std::string>{"Conv", "Clip", "QuantizeLinear"});
  CHECK(e.chain_from("c2") == std::vector<std::string>{"Conv", "Relu", "QuantizeLinear", "DequantizeLinear", "Conv",
                                                       "Add", "LeakyRelu", "QuantizeLinear", "DequantizeLinear",
                                                       "MaxPool", "QuantizeLinear", "DequantizeLinear", "Flatten",
                                                       "QuantizeLinear", "DequantizeLinear", "Gemm"});
  // c1's output a is read by c2 and (as the residual) by c3's Add, each through its own DequantizeLinear.
  CHECK(e.readers.at("a").size() == 2);
  const ::onnx::NodeProto& clip = *e.readers.at("c1/act_min")[0];
  CHECK(values_of<float>(e.initializer(clip.input(1))) == std::vector<float>{0.0f});
  CHECK(values_of<float>(e.initializer(clip.input(2))) == std::vector<float>{6.0f});
  const ::onnx::NodeProto& leaky = *e.producer.at("c/float");
  REQUIRE(leaky.attribute_size() == 1);
  CHECK(leaky.attribute(0).f() == doctest::Approx(0.1f));
  const ::onnx::NodeProto& gemm = *e.producer.at("y");
  CHECK(int_attribute(gemm, "transB", 0) == 1);
  // The MaxPool, Flatten and Gemm keep octet's attributes; the fused ones are gone from the Conv.
  for (const ::onnx::NodeProto& node : e.model.graph().node())
    for (const ::onnx::AttributeProto& a : node.attribute()) CHECK(a.name().rfind("act", 0) != 0);
}

TEST_CASE(
    "the integer-op style requantizes a Conv's result before its fused Add (ONNX Runtime's QLinearAdd), for timing") {
  const Graph graph = small_quantized_graph(true);
  const Exported exact(octet::onnx::qdq_onnx_model(graph)),
      e(octet::onnx::qdq_onnx_model(graph, octet::onnx::QdqStyle::integer_post_ops));
  CHECK(e.chain_from("c2") == std::vector<std::string>{"Conv", "Relu", "QuantizeLinear", "DequantizeLinear", "Conv",
                                                       "QuantizeLinear", "DequantizeLinear", "Add", "LeakyRelu",
                                                       "QuantizeLinear", "DequantizeLinear", "MaxPool",
                                                       "QuantizeLinear", "DequantizeLinear", "Flatten",
                                                       "QuantizeLinear", "DequantizeLinear", "Gemm"});
  // One Q/DQ pair more than the exact export, with the Conv output's own scale and zero point.
  std::map<std::string, int> ops = exact.op_counts();
  ops["QuantizeLinear"]++;
  ops["DequantizeLinear"]++;
  CHECK(e.op_counts() == ops);
  const ::onnx::NodeProto& requantize = *e.producer.at("c/Conv/requantized");
  check_params(e, requantize, graph.tensor("c").quant);
  // c1's Clip is not requantized first: ONNX Runtime fuses Clip/Relu before a QuantizeLinear by itself.
  CHECK(e.chain_from("c1") == std::vector<std::string>{"Conv", "Clip", "QuantizeLinear"});
}

TEST_CASE("an FP32 classifier keeps its weights int8 behind a DequantizeLinear, and octet's Dequantize is exported") {
  const Graph graph = small_quantized_graph(false);
  const Exported e(octet::onnx::qdq_onnx_model(graph));
  check_against_graph(e, graph);
  std::map<std::string, int> ops = e.op_counts();
  CHECK(ops["QuantizeLinear"] == 3);  // x, a, b; c3 writes f32 for its FP32 readers
  const ::onnx::NodeProto& gemm = *e.producer.at("y");
  CHECK(e.producer.count(gemm.input(0)) == 1);
  CHECK(e.producer.at(gemm.input(0))->op_type() == "Flatten");           // float all the way
  CHECK(e.producer.at(gemm.input(1))->op_type() == "DequantizeLinear");  // s8 weights
  CHECK(e.initializer("wf").data_type() == ::onnx::TensorProto::INT8);
  CHECK(e.initializer("bf").data_type() == ::onnx::TensorProto::FLOAT);
  // c3's residual is octet's Dequantize of a: an INT8 Conv with a float output adds a float residual.
  CHECK(e.chain_from("c3") == std::vector<std::string>{"Conv", "Add", "LeakyRelu", "MaxPool", "Flatten", "Gemm"});
  CHECK(e.producer.at(e.producer.at("c/sum")->input(1))->op_type() == "DequantizeLinear");
}

TEST_CASE("operands octet holds as attributes become opset-17 initializer inputs again") {
  Graph g;
  g.inputs = {"x"};
  g.outputs = {"y"};
  g.tensors["x"] = {DType::f32, {kBatchDim, 2, 3}, {}};
  Attributes reshape, clip;
  reshape.set("shape", std::vector<int64_t>{0, 6});
  clip.set("max", 2.5f);
  g.nodes = {{"r", "Reshape", {"x"}, {"r_out"}, reshape}, {"c", "Clip", {"r_out"}, {"y"}, clip}};
  infer_symbolic_shapes(g);
  const Exported e(octet::onnx::qdq_onnx_model(g));
  const ::onnx::NodeProto& r = *e.producer.at("r_out");
  REQUIRE(r.input_size() == 2);
  CHECK(r.attribute_size() == 0);
  CHECK(e.initializer(r.input(1)).data_type() == ::onnx::TensorProto::INT64);
  CHECK(values_of<int64_t>(e.initializer(r.input(1))) == std::vector<int64_t>{0, 6});
  const ::onnx::NodeProto& c = *e.producer.at("y");
  REQUIRE(c.input_size() == 3);
  CHECK(c.input(1).empty());  // no min: unbounded below
  CHECK(values_of<float>(e.initializer(c.input(2))) == std::vector<float>{2.5f});

  g.nodes[0].attrs.set("allowzero", int64_t{1});  // opset 14+: kept as the attribute
  const Exported z(octet::onnx::qdq_onnx_model(g));
  REQUIRE(z.producer.at("r_out")->attribute_size() == 1);
  CHECK(z.producer.at("r_out")->attribute(0).name() == "allowzero");
}

TEST_CASE("octet-convert --export-qdq writes the INT8 MobileNet with octet's scales" * doctest::test_suite("models")) {
  fs::create_directories(kScratch);
  const fs::path model = kScratch / "mobilenet_int8", onnx_file = kScratch / "mobilenet_int8.qdq.onnx",
                 log = kScratch / "convert.log";
  const std::string shared = OCTET_SHARED_DIR;
  const std::string command = std::string("'") + OCTET_CONVERT + "' '" + shared +
                              "/models/mobilenet_v1_025/model.onnx' -o '" + model.string() +
                              "' --preset tf --calibrate '" + shared + "/data/imagenet-samples' --calib-count 10 " +
                              "--export-qdq '" + onnx_file.string() + "' >'" + log.string() + "' 2>&1";
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, read_file(log));
  const Graph graph = read_model(model.string());
  const Exported e(read_file(onnx_file));
  check_against_graph(e, graph);
  CHECK(e.model.graph().input(0).name() == "input_1");
  CHECK(e.model.graph().output(0).name() == "logits");
  std::map<std::string, int> ops = e.op_counts();
  CHECK(ops["Conv"] == 28);
  CHECK(ops["Clip"] == 27);  // ReLU6 after every Conv but the classifier
  CHECK(ops["GlobalAveragePool"] == 1);
  CHECK(ops["Flatten"] == 1);
  std::map<int32_t, int> dtypes = e.dequantized_initializer_dtypes();
  CHECK(dtypes[::onnx::TensorProto::INT8] == 28);   // every Conv's weights, the FP32 classifier's too
  CHECK(dtypes[::onnx::TensorProto::INT32] == 27);  // the INT8 Convs' biases
  // The first Conv reads the quantized input through its own DequantizeLinear.
  const std::vector<std::string> chain = e.chain_from("input_1/quantize");
  REQUIRE(chain.size() > 5);
  CHECK(std::vector<std::string>(chain.begin(), chain.begin() + 5) ==
        std::vector<std::string>{"QuantizeLinear", "DequantizeLinear", "Conv", "Clip", "QuantizeLinear"});
}

TEST_CASE("a NaN weight is refused at quantization, naming the weight tensor") {
  Graph g = small_fp32_graph();
  std::vector<float> w2 = g.constants.at("w2").as_floats();
  w2[5] = std::numeric_limits<float>::quiet_NaN();
  g.constants["w2"] = Constant::from_floats(g.constants.at("w2").shape, w2);
  std::map<std::string, octet::quant::TensorStats> stats;
  for (const char* tensor : {"x", "a", "b", "c", "d", "e", "y"}) {
    const float values[2] = {-1, 1};
    stats[tensor].update(values, 2);
  }
  CHECK_THROWS_WITH_AS(octet::quant::quantize_graph(g, stats, {}), doctest::Contains("weights 'w2'"), octet::Error);
}
