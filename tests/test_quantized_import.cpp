// Import of already-quantized ONNX models (converters/onnx/qdq_import.h, converters/quant/given_quantization.h):
//   - the four shared quantized models (ONNX Runtime QDQ x2, QAT QDQ with s8 activations, model-zoo QOperator)
//     convert without calibration images, every INT8 Conv/Gemm runs in a oneDNN INT8 implementation (no `ref`),
//     and the output matches the reference output of test_data_set_0 (top-1, logit SQNR);
//   - octet's own --export-qdq output imports back to the same integers (weights, biases, activation parameters);
//   - bad quantization parameters are refused at conversion with the node and the field named.
#include <doctest/doctest.h>

#include "support/onnx_pb.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "converters/analysis/conformance.h"
#include "converters/onnx/import.h"
#include "converters/onnx/qdq_export.h"
#include "converters/onnx/qdq_import.h"
#include "converters/quant/convert.h"
#include "converters/quant/given_quantization.h"
#include "converters/quant/quantize_graph.h"
#include "graph/model_format.h"
#include "graph/quantization.h"
#include "graph/shape_inference.h"
#include "octet/octet.h"
#include "support/graphs.h"
#include "support/random.h"

namespace fs = std::filesystem;
using namespace octet;
using namespace octet::quant;
using octet::onnx::qdq_onnx_model;
using octet::onnx::read_tensor_pb;

namespace {

const std::string kShared = OCTET_SHARED_DIR;

struct Reference {
  double sqnr_db;
  int top1_got, top1_want;
};

// Runs test_data_set_0 of a shared model folder on `model`.
Reference run_reference(const std::shared_ptr<const Model>& model, const std::string& folder) {
  Constant input = read_tensor_pb(folder + "/test_data_set_0/input_0.pb");
  Constant want = read_tensor_pb(folder + "/test_data_set_0/output_0.pb");
  Session session(model);
  Tensor in = session.input(0);
  REQUIRE(in.elements() == input.elements());
  std::memcpy(in.data, input.data<float>(), static_cast<size_t>(input.elements()) * sizeof(float));
  session.run();
  Tensor out = session.output(0);
  REQUIRE(out.elements() == want.elements());
  const float* ref = want.data<float>();
  Reference r{sqnr_db(ref, out.data, want.elements()), 0, 0};
  for (int64_t i = 1; i < want.elements(); ++i) {
    if (out.data[i] > out.data[r.top1_got]) r.top1_got = static_cast<int>(i);
    if (ref[i] > ref[r.top1_want]) r.top1_want = static_cast<int>(i);
  }
  return r;
}

struct SharedCase {
  const char* name;
  const char* form;
  size_t int8_layers;  // Conv/Gemm computed in INT8 (the model's float classifier, if any, stays float)
  double min_sqnr_db;  // against the reference output
};

}  // namespace

TEST_CASE("shared quantized models: no calibration, oneDNN INT8 kernels, reference top-1 and logit SQNR" *
          doctest::test_suite("models")) {
  // mobilenet_v2_int8_qop computes ONNX Runtime's integers in every layer (u8 weights beyond s8 exactly,
  // QLinearAdd with ONNX Runtime's arithmetic): its logits equal the reference bit for bit (SQNR inf).
  const SharedCase cases[] = {{"darknet_tiny_qdq", "QDQ", 15, 30.0},
                              {"mobilenet_v1_025_qdq", "QDQ", 27, 30.0},
                              {"mobilenet_v2_qat", "QDQ", 53, 30.0},
                              {"mobilenet_v2_int8_qop", "QOperator", 53, 30.0}};
  for (const SharedCase& c : cases) {
    const std::string name = c.name;
    CAPTURE(name);
    const std::string folder = kShared + "/models/" + c.name;
    ConvertOptions options;  // no --calibrate: nothing to calibrate
    ConvertReport report;
    Graph graph = convert_onnx(folder + "/model.onnx", options, nullptr, &report);
    CHECK(report.quantized_form == c.form);
    size_t int8 = 0;
    for (const QuantizedLayer& l : report.layers) int8 += l.mode == "int8";
    CHECK(int8 == c.int8_layers);
    const std::string out = std::string(OCTET_BUILD_DIR) + "/test-quantized-import/" + c.name;
    write_model(graph, out);
    std::shared_ptr<const Model> model = Model::load(out);

    // Every INT8 Conv/Gemm (u8/s8 input) runs oneDNN's integer kernels, not a reference loop.
    std::map<std::string, const Node*> nodes;
    for (const Node& n : model->graph().nodes) nodes[n.name] = &n;
    Session session(model);
    size_t checked = 0;
    for (const LayerInfo& layer : session.layers()) {
      auto found = nodes.find(layer.node);
      if (found == nodes.end()) continue;  // the session's input layers
      const Node& node = *found->second;
      if (node.op != "Conv" && node.op != "Gemm") continue;
      DType in = model->graph().tensor(node.inputs[0]).dtype;
      if (in != DType::u8 && in != DType::s8) continue;
      ++checked;
      CHECK_MESSAGE(layer.implementation.find("ref") == std::string::npos,
                    layer.node << " runs " << layer.implementation);
      CHECK_MESSAGE(layer.implementation.find("reference") == std::string::npos,
                    layer.node << " runs " << layer.implementation);
    }
    CHECK(checked == c.int8_layers);

    Reference r = run_reference(model, folder);
    MESSAGE(name << ": logit SQNR against the reference " << r.sqnr_db << " dB, top-1 " << r.top1_got << " (reference "
                 << r.top1_want << ")");
    CHECK(r.top1_got == r.top1_want);
    CHECK(r.sqnr_db >= c.min_sqnr_db);
  }
}

TEST_CASE("mobilenet_v2_qat runs s8 activations through s8 x s8 convolutions" * doctest::test_suite("models")) {
  Graph graph = import_quantized_onnx(kShared + "/models/mobilenet_v2_qat/model.onnx");
  size_t s8_convs = 0;
  for (const Node& n : graph.nodes) {
    if (n.op != "Conv") continue;
    const TensorInfo& x = graph.tensor(n.inputs[0]);
    CHECK(x.dtype == DType::s8);
    CHECK(x.quant.zero_points == std::vector<int32_t>{0});
    s8_convs += x.dtype == DType::s8;
  }
  CHECK(s8_convs == 52);
}

TEST_CASE("--calibrate on an already-quantized model is refused with a clear error" * doctest::test_suite("models")) {
  ConvertOptions options;
  options.calibrate = kShared + "/data/imagenet-samples";
  options.preprocess.preset = "torchvision";
  try {
    convert_onnx(kShared + "/models/mobilenet_v2_qat/model.onnx", options, nullptr);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("already quantized") != std::string::npos);
    CHECK(std::string(e.what()).find("without --calibrate") != std::string::npos);
  }
}

// ---- round trip: octet's QDQ export imports back to the same integers ----------------------------------------

namespace {

using testing::pseudo_random;

// support's small_conv_classifier (no activation after the residual sum), quantized.
Graph small_int8_graph(ActivationMode mode) {
  Graph g = testing::small_conv_classifier(/*leaky_residual*/ false);
  std::map<std::string, TensorStats> stats;
  for (const auto& kv : testing::small_conv_classifier_ranges()) {
    const float values[2] = {kv.second.first, kv.second.second};
    stats[kv.first].update(values, 2);
  }
  QuantizeOptions options;
  options.int8_classifier = true;
  options.activations = mode;
  return quantize_graph(g, stats, options);
}

const Node& node_named(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes)
    if (n.name == name) return n;
  FAIL("no node " << name);
  return g.nodes.front();
}

std::vector<uint8_t> bytes_of(const Constant& c) { return {c.bytes->begin(), c.bytes->end()}; }

}  // namespace

TEST_CASE("round trip: octet's --export-qdq output imports back to the same integers") {
  for (ActivationMode mode : {ActivationMode::automatic, ActivationMode::symmetric}) {
    CAPTURE(static_cast<int>(mode));
    const Graph original = small_int8_graph(mode);
    ::onnx::ModelProto proto;
    REQUIRE(proto.ParseFromString(qdq_onnx_model(original)));
    QuantizedImport report;
    const Graph imported = import_quantized_onnx_model(proto, &report);
    CHECK(report.form == "QDQ");
    for (const char* name : {"c1", "c2", "c3", "fc"}) {
      CAPTURE(name);
      const Node& a = node_named(original, name);
      const Node& b = node_named(imported, name);
      REQUIRE(b.op == a.op);
      // Same s8 weights with the same per-channel scales, same s32 bias.
      CHECK(bytes_of(imported.constants.at(b.inputs[1])) == bytes_of(original.constants.at(a.inputs[1])));
      CHECK(imported.tensor(b.inputs[1]).quant.scales == original.tensor(a.inputs[1]).quant.scales);
      CHECK(bytes_of(imported.constants.at(b.inputs[2])) == bytes_of(original.constants.at(a.inputs[2])));
      // Same activation dtype and parameters on the input and the output.
      for (auto [ta, tb] : {std::pair{a.inputs[0], b.inputs[0]}, std::pair{a.outputs[0], b.outputs[0]}}) {
        const TensorInfo& x = original.tensor(ta);
        const TensorInfo& y = imported.tensor(tb);
        CHECK(y.dtype == x.dtype);
        CHECK(y.quant.scales == x.quant.scales);
        CHECK(y.quant.zero_points == x.quant.zero_points);
      }
      CHECK(b.attrs.get_string("act", "") == a.attrs.get_string("act", ""));
      CHECK((b.inputs.size() > 3) == (a.inputs.size() > 3));
    }
    // And the two compute the same outputs.
    auto run = [](const Graph& g) {
      Session s(Model::from_graph(Graph(g)));
      Tensor x = s.input(0);
      std::vector<float> v = pseudo_random(static_cast<size_t>(x.elements()), 9);
      std::copy(v.begin(), v.end(), x.data);
      s.run();
      Tensor y = s.output(0);
      return std::vector<float>(y.data, y.data + y.elements());
    };
    CHECK(run(imported) == run(original));
  }
}

// ---- bad input -----------------------------------------------------------------------------------------------

namespace {

// x (float [1,2,4,4]) -> QuantizeLinear -> DequantizeLinear -> Conv (int8 weights behind DQ) -> y
struct QdqBuilder {
  ::onnx::ModelProto model;
  ::onnx::GraphProto* g;

  QdqBuilder() {
    model.set_ir_version(7);
    ::onnx::OperatorSetIdProto* id = model.add_opset_import();
    id->set_domain("");
    id->set_version(13);
    g = model.mutable_graph();
    g->set_name("bad");
    ::onnx::ValueInfoProto* x = g->add_input();
    x->set_name("x");
    ::onnx::TypeProto::Tensor* t = x->mutable_type()->mutable_tensor_type();
    t->set_elem_type(::onnx::TensorProto::FLOAT);
    for (int64_t d : {1, 2, 4, 4}) t->mutable_shape()->add_dim()->set_dim_value(d);
    g->add_output()->set_name("y");
    floats("x_scale", {}, {0.05f});
    u8("x_zp", {}, {128});
    floats("w_scale", {3}, {0.01f, 0.02f, 0.03f});
    s8("w_zp", {3}, {0, 0, 0});
    s8("w", {3, 2, 1, 1}, {1, -2, 3, -4, 5, -6});
    node("QuantizeLinear", "q_x", {"x", "x_scale", "x_zp"}, {"x_q"});
    node("DequantizeLinear", "dq_x", {"x_q", "x_scale", "x_zp"}, {"x_dq"});
    set_int(node("DequantizeLinear", "dq_w", {"w", "w_scale", "w_zp"}, {"w_dq"}), "axis", 0);
    node("Conv", "conv", {"x_dq", "w_dq"}, {"y"});
  }
  ::onnx::TensorProto& tensor(const std::string& name, const Shape& shape, int32_t type) {
    for (::onnx::TensorProto& t : *g->mutable_initializer())
      if (t.name() == name) {
        t.Clear();
        t.set_name(name);
        t.set_data_type(type);
        for (int64_t d : shape) t.add_dims(d);
        return t;
      }
    ::onnx::TensorProto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : shape) t->add_dims(d);
    return *t;
  }
  void floats(const std::string& name, const Shape& shape, const std::vector<float>& v) {
    ::onnx::TensorProto& t = tensor(name, shape, ::onnx::TensorProto::FLOAT);
    for (float f : v) t.add_float_data(f);
  }
  void u8(const std::string& name, const Shape& shape, const std::vector<int32_t>& v) {
    ::onnx::TensorProto& t = tensor(name, shape, ::onnx::TensorProto::UINT8);
    for (int32_t i : v) t.add_int32_data(i);
  }
  void s8(const std::string& name, const Shape& shape, const std::vector<int32_t>& v) {
    ::onnx::TensorProto& t = tensor(name, shape, ::onnx::TensorProto::INT8);
    for (int32_t i : v) t.add_int32_data(i);
  }
  ::onnx::NodeProto& node(const std::string& op, const std::string& name, const std::vector<std::string>& in,
                          const std::vector<std::string>& out) {
    ::onnx::NodeProto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const std::string& i : in) n->add_input(i);
    for (const std::string& o : out) n->add_output(o);
    return *n;
  }
  ::onnx::NodeProto& find(const std::string& name) {
    for (::onnx::NodeProto& n : *g->mutable_node())
      if (n.name() == name) return n;
    FAIL("no node " << name);
    return *g->mutable_node(0);
  }
  static ::onnx::NodeProto& set_int(::onnx::NodeProto& n, const std::string& name, int64_t v) {
    for (::onnx::AttributeProto& a : *n.mutable_attribute())
      if (a.name() == name) {
        a.set_i(v);
        return n;
      }
    ::onnx::AttributeProto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::INT);
    a->set_i(v);
    return n;
  }
  // The import's error message (empty when it succeeds).
  std::string error() const {
    try {
      import_quantized_onnx_model(model);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
};

void check_error(const std::string& message, const std::vector<std::string>& parts) {
  CAPTURE(message);
  REQUIRE(!message.empty());
  for (const std::string& p : parts) CHECK_MESSAGE(message.find(p) != std::string::npos, "missing '" << p << "'");
}

}  // namespace

TEST_CASE("a valid small QDQ model imports as an INT8 Conv") {
  QdqBuilder b;
  CHECK(b.error().empty());
  Graph g = import_quantized_onnx_model(b.model);
  const Node& conv = node_named(g, "conv");
  CHECK(g.tensor(conv.inputs[0]).dtype == DType::u8);
  CHECK(g.tensor(conv.inputs[1]).quant.scales == std::vector<float>{0.01f, 0.02f, 0.03f});
}

TEST_CASE("a pool moves before a pointwise Conv the model left in float, not before a quantized one") {
  // conv (INT8, float output c) -> head (1x1 Conv) -> GlobalAveragePool -> y
  auto build = [](bool quantized_head) {
    QdqBuilder b;
    b.find("conv").set_output(0, "c");
    if (quantized_head) {
      b.s8("head_w", {2, 3, 1, 1}, {1, 2, 3, 4, 5, 6});
      b.floats("head_w_scale", {}, {0.1f});
      b.node("DequantizeLinear", "dq_head_w", {"head_w", "head_w_scale"}, {"head_w_dq"});
      b.node("Conv", "head", {"c", "head_w_dq"}, {"h"});
    } else {
      b.floats("head_w", {2, 3, 1, 1}, {0.1f, 0.2f, 0.3f, -0.4f, 0.5f, -0.6f});
      b.node("Conv", "head", {"c", "head_w"}, {"h"});
    }
    b.node("GlobalAveragePool", "gap", {"h"}, {"y"});
    return import_quantized_onnx_model(b.model);
  };
  auto position = [](const Graph& g, const std::string& name) {
    for (size_t i = 0; i < g.nodes.size(); ++i)
      if (g.nodes[i].name == name) return i;
    FAIL("no node " << name);
    return g.nodes.size();
  };
  Graph float_head = build(false);
  CHECK(position(float_head, "gap") < position(float_head, "head"));  // the head runs on one pixel
  CHECK(node_named(float_head, "head").outputs[0] == "y");
  Graph int8_head = build(true);
  CHECK(position(int8_head, "head") < position(int8_head, "gap"));
}

TEST_CASE("Dequantize -> MaxPool -> Quantize becomes one requantizing integer MaxPool with the chain's integers") {
  // x -> Q/DQ -> Conv (INT8) -> Q/DQ (scale 0.05, zero point 128) -> MaxPool 3x3 stride 1 pad 1 -> Q/DQ
  // (scale 0.07, zero point 100) -> Conv (INT8) -> y: the pool's output has its own parameters, so the INT8
  // graph holds the chain.
  QdqBuilder b;
  b.g->clear_node();
  b.floats("p_scale", {}, {0.07f});
  b.u8("p_zp", {}, {100});
  b.floats("c_scale", {}, {0.05f});
  b.u8("c_zp", {}, {128});
  b.floats("w0_scale", {}, {0.02f});
  b.s8("w0", {2, 2, 1, 1}, {30, -50, 70, 20});
  b.node("QuantizeLinear", "q_x", {"x", "x_scale", "x_zp"}, {"x_q"});
  b.node("DequantizeLinear", "dq_x", {"x_q", "x_scale", "x_zp"}, {"x_dq"});
  b.node("DequantizeLinear", "dq_w0", {"w0", "w0_scale"}, {"w0_dq"});
  b.node("Conv", "conv0", {"x_dq", "w0_dq"}, {"c"});
  b.node("QuantizeLinear", "q_c", {"c", "c_scale", "c_zp"}, {"c_q"});
  b.node("DequantizeLinear", "dq_c", {"c_q", "c_scale", "c_zp"}, {"c_dq"});
  QdqBuilder::set_int(b.node("DequantizeLinear", "dq_w", {"w", "w_scale", "w_zp"}, {"w_dq"}), "axis", 0);
  ::onnx::NodeProto& pool = b.node("MaxPool", "pool", {"c_dq"}, {"p"});
  for (const char* name : {"kernel_shape", "pads"}) {
    ::onnx::AttributeProto* a = pool.add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::INTS);
    for (int i = 0; i < (std::string(name) == "pads" ? 4 : 2); ++i) a->add_ints(std::string(name) == "pads" ? 1 : 3);
  }
  b.node("QuantizeLinear", "q_p", {"p", "p_scale", "p_zp"}, {"p_q"});
  b.node("DequantizeLinear", "dq_p", {"p_q", "p_scale", "p_zp"}, {"p_dq"});
  b.node("Conv", "conv", {"p_dq", "w_dq"}, {"y"});
  REQUIRE(b.error().empty());

  const octet::onnx::QuantizedOnnx q = octet::onnx::read_quantized_onnx_model(b.model);
  const Graph chain = apply_given_quantization(q.fp32, q.given);
  auto count = [](const Graph& g, const std::string& op) {
    return std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.op == op; });
  };
  REQUIRE(count(chain, "Dequantize") == 1);  // the pool's input
  REQUIRE(count(chain, "Quantize") == 2);    // the image, the pool's output
  Graph fused = chain;
  std::vector<std::string> notes;
  CHECK(fuse_requantizing_max_pools(fused, &notes) == 1);
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].find("node 'pool' (MaxPool): Dequantize -> MaxPool -> Quantize became one integer MaxPool") !=
        std::string::npos);
  CHECK(count(fused, "Dequantize") == 0);
  CHECK(count(fused, "Quantize") == 1);
  const Node& p = node_named(fused, "pool");
  CHECK(fused.tensor(p.inputs[0]).dtype == DType::u8);
  CHECK(p.inputs[0] == "c");
  CHECK(fused.tensor(p.inputs[0]).quant.scales == std::vector<float>{0.05f});
  CHECK(fused.tensor(p.outputs[0]).quant.scales == std::vector<float>{0.07f});
  CHECK(fused.tensor(p.outputs[0]).quant.zero_points == std::vector<int32_t>{100});
  // The import does the same; the written model loads (its MaxPool requantizes, graph/FORMAT.md).
  QuantizedImport report;
  const Graph imported = import_quantized_onnx_model(b.model, &report);
  CHECK(count(imported, "Quantize") == 1);
  CHECK(std::any_of(report.notes.begin(), report.notes.end(),
                    [](const std::string& n) { return n.find("'pool' (MaxPool)") != std::string::npos; }));
  const std::string dir = std::string(OCTET_BUILD_DIR) + "/test-quantized-import/requantizing_max_pool";
  write_model(imported, dir);
  const std::shared_ptr<const Model> loaded = Model::load(dir);

  // Bit-identical outputs: the chain and the fused pool, with reference and optimized kernels.
  const std::shared_ptr<const Model> before = Model::from_graph(chain);
  for (bool reference : {true, false}) {
    SessionOptions options;
    options.reference_kernels = reference;
    Session a(before, options), c(loaded, options);
    std::string pool_implementation;
    for (const LayerInfo& l : c.layers())
      if (l.node == "pool") pool_implementation = l.implementation;
    CHECK(pool_implementation == (reference ? "reference" : "octet_max_pool_int:requantize"));
    testing::Random r(reference ? 1 : 2);
    for (int round = 0; round < 5; ++round) {
      Tensor xa = a.input(0), xc = c.input(0);
      for (int64_t i = 0; i < xa.elements(); ++i) xa.data[i] = xc.data[i] = r.real(-7.0f, 6.0f);
      a.run();
      c.run();
      Tensor ya = a.output(0), yc = c.output(0);
      REQUIRE(ya.elements() == yc.elements());
      for (int64_t i = 0; i < ya.elements(); ++i) REQUIRE(ya.data[i] == yc.data[i]);
    }
  }
}

TEST_CASE("bad quantization parameters: errors name the node and the field") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (float bad : {0.0f, -0.5f, nan, inf}) {
    CAPTURE(bad);
    QdqBuilder b;
    b.floats("x_scale", {}, {bad});
    check_error(b.error(), {"'q_x' (QuantizeLinear)", "input 1 (scale)", "is not finite and > 0"});
  }
  {
    QdqBuilder b;  // a per-channel weight scale of 0
    b.floats("w_scale", {3}, {0.01f, 0.0f, 0.03f});
    check_error(b.error(), {"'dq_w' (DequantizeLinear)", "input 1 (scale) value [1] 0"});
  }
  {
    QdqBuilder b;  // uint8 zero point 300, as int32_data can hold it
    b.u8("x_zp", {}, {300});
    check_error(b.error(), {"(QuantizeLinear)", "input 2 (zero point) value 300 is outside the uint8 range [0, 255]"});
  }
  {
    QdqBuilder b;
    b.s8("w_zp", {3}, {0, -129, 0});
    check_error(b.error(), {"'dq_w' (DequantizeLinear)", "input 2 (zero point) value -129 is outside the int8 range"});
  }
  {
    QdqBuilder b;  // Q and DQ with different scales
    b.floats("other_scale", {}, {0.1f});
    b.find("dq_x").set_input(1, "other_scale");
    check_error(b.error(), {"'dq_x' (DequantizeLinear)", "disagree with those of node 'q_x' (QuantizeLinear)"});
  }
  {
    QdqBuilder b;  // per-axis vector of the wrong length
    b.floats("w_scale", {2}, {0.01f, 0.02f});
    b.s8("w_zp", {2}, {0, 0});
    check_error(b.error(), {"'dq_w' (DequantizeLinear)", "input 1 (scale) has 2 values for axis 0 of size 3"});
  }
  {
    QdqBuilder b;  // axis out of range
    QdqBuilder::set_int(b.find("dq_w"), "axis", 4);
    check_error(b.error(), {"'dq_w' (DequantizeLinear)", "attribute axis 4 is out of range for a tensor of rank 4"});
  }
  {
    QdqBuilder b;  // zero point of another type than the integers it goes with
    b.u8("w_zp", {3}, {0, 0, 0});
    check_error(b.error(), {"'dq_w' (DequantizeLinear)", "input 0 'w' is int8 but its zero point is uint8"});
  }
  {
    QdqBuilder b;  // a quantized op octet does not import
    b.node("ConvInteger", "conv_integer", {"x_q", "w"}, {"z"});
    check_error(b.error(), {"'conv_integer' (ConvInteger)", "is not imported"});
  }
  {
    QdqBuilder b;  // an integer tensor read by an op that is not DequantizeLinear
    b.node("MaxPool", "pool_q", {"x_q"}, {"p"});
    check_error(b.error(), {"'pool_q' (MaxPool)", "reads the integer output of node 'q_x' (QuantizeLinear)"});
  }
  {
    QdqBuilder b;  // dimensions whose product overflows int64 (found by fuzz_onnx_import: signed overflow)
    b.floats("w_scale", {int64_t(1) << 40, int64_t(1) << 40}, {0.01f});
    check_error(b.error(), {"initializer 'w_scale'", "overflows"});
  }
  {
    QdqBuilder b;  // a QOperator node without an output (found by fuzz_onnx_import: read past the outputs)
    b.node("QLinearAdd", "add_q", {"x_q", "x_scale", "x_zp", "x_q", "x_scale", "x_zp", "x_scale", "x_zp"}, {});
    check_error(b.error(), {"'add_q' (QLinearAdd)", "needs exactly one output"});
  }
}

TEST_CASE("octet-test-runner's conformance check takes a quantized model: judged by top-1 and SQNR, no calibration" *
          doctest::test_suite("models")) {
  analysis::ConformanceOptions options;  // no --int8 / --calibrate
  analysis::ConformanceResult ok = analysis::run_conformance_folder(kShared + "/models/mobilenet_v1_025_qdq", options);
  CHECK_MESSAGE(ok.passed, ok.message);
  CHECK(ok.quantized_model);
  CHECK(ok.sqnr_db >= 30);
  CHECK(ok.top1_agreement == 1.0);
  // The QOperator form too (u8 weights with zero points, com.microsoft QLinearAdd).
  analysis::ConformanceResult qop =
      analysis::run_conformance_folder(kShared + "/models/mobilenet_v2_int8_qop", options);
  CHECK_MESSAGE(qop.passed, qop.message);
  CHECK(qop.sqnr_db >= 30);
  options.calibrate = kShared + "/data/imagenet-samples";
  options.preset = "torchvision";
  analysis::ConformanceResult refused = analysis::run_conformance_folder(kShared + "/models/mobilenet_v2_qat", options);
  CHECK_FALSE(refused.passed);
  CHECK(refused.message.find("already quantized") != std::string::npos);
}
