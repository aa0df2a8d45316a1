// The model file format: an exact round trip, and one specific error for each way a model can be malformed.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include <nlohmann/json.hpp>

#include "graph/model_format.h"
#include "graph/shape_inference.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using octet::DType;
using octet::Graph;
using octet::kBatchDim;
using Bytes = std::vector<uint8_t>;

octet::QuantParams quant(std::vector<float> scales, std::vector<int32_t> zero_points, int axis) {
  octet::QuantParams q;
  q.scales = std::move(scales);
  q.zero_points = std::move(zero_points);
  q.axis = axis;
  return q;
}

// x [N,1,5,5] -> Conv (s8 weights, per-channel quant) -> Relu (u8, per-tensor quant) -> Flatten -> logits.
// Constants land in model.bin in name order: conv1.bias at 0 (16 bytes), conv1.weight at 64 (36 bytes), 128 in all.
Graph sample_graph() {
  Graph g;
  g.name = "tiny";
  g.inputs = {"x"};
  g.outputs = {"logits"};
  g.tensors["x"] = {DType::f32, {kBatchDim, 1, 5, 5}, {}};
  g.tensors["relu1.out"] = {DType::u8, {}, quant({0.05f}, {3}, -1)};

  octet::Constant weight;
  weight.dtype = DType::s8;
  weight.shape = {4, 1, 3, 3};
  Bytes weight_bytes(36);
  for (size_t i = 0; i < weight_bytes.size(); ++i) weight_bytes[i] = static_cast<uint8_t>(i * 7 + 100);
  weight.bytes = octet::make_bytes(std::move(weight_bytes));
  g.constants["conv1.weight"] = weight;
  g.tensors["conv1.weight"] = {DType::s8, weight.shape, quant({0.1f, 0.02f, 0.003f, 1.5f}, {0, -1, 2, 127}, 0)};
  g.constants["conv1.bias"] = octet::Constant::from_floats({4}, {0.5f, -1.25f, 3e-7f, 42.0f});

  octet::Node conv{"conv1", "Conv", {"x", "conv1.weight", "conv1.bias"}, {"conv1.out"}, {}};
  conv.attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
  conv.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  conv.attrs.set("group", int64_t{1});
  conv.attrs.set("act", std::string("leaky_relu"));
  conv.attrs.set("act_alpha", 0.1f);
  // No op takes a float list; sum_act_beta is not read by shape inference, so it carries that kind here,
  // with values that must survive bit-exactly: no short decimal form, negative zero, the f32 extremes.
  using limits = std::numeric_limits<float>;
  conv.attrs.set("sum_act_beta", std::vector<float>{0.1f, 1e-5f, -3.4e38f, -0.0f, limits::denorm_min(), limits::max()});
  octet::Node relu{"relu1", "Relu", {"conv1.out"}, {"relu1.out"}, {}};
  octet::Node flatten{"flatten", "Flatten", {"relu1.out"}, {"logits"}, {}};
  flatten.attrs.set("axis", int64_t{1});
  g.nodes = {conv, relu, flatten};
  octet::infer_symbolic_shapes(g);

  g.preprocess.present = true;
  g.preprocess.resize_shorter = 6;
  g.preprocess.resize = octet::Resize::nearest;
  g.preprocess.crop_height = g.preprocess.crop_width = 5;
  g.preprocess.scale = 1.0f / 255.0f;
  g.preprocess.mean[0] = 0.485f, g.preprocess.mean[1] = 0.456f, g.preprocess.mean[2] = 0.406f;
  g.preprocess.std[0] = 0.229f, g.preprocess.std[1] = 0.224f, g.preprocess.std[2] = 0.225f;
  g.preprocess.channel_order = octet::ChannelOrder::bgr;
  g.preprocess.layout = octet::Layout::nchw;
  g.labels = {"cat", "dog", "h\xc3\xa9risson"};
  return g;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](float x, float y) { return same_bits(x, y); });
}

void check_same_quant(const octet::QuantParams& a, const octet::QuantParams& b) {
  CHECK(same_bits(a.scales, b.scales));
  CHECK(a.zero_points == b.zero_points);
  CHECK(a.axis == b.axis);
}

void check_same_graph(const Graph& a, const Graph& b) {
  CHECK(a.name == b.name);
  CHECK(a.inputs == b.inputs);
  CHECK(a.outputs == b.outputs);
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    CAPTURE(name);
    REQUIRE(b.tensors.count(name));
    CHECK(t.dtype == b.tensors.at(name).dtype);
    CHECK(t.shape == b.tensors.at(name).shape);
    check_same_quant(t.quant, b.tensors.at(name).quant);
  }
  REQUIRE(a.constants.size() == b.constants.size());
  for (const auto& [name, c] : a.constants) {
    CAPTURE(name);
    REQUIRE(b.constants.count(name));
    CHECK(c.dtype == b.constants.at(name).dtype);
    CHECK(c.shape == b.constants.at(name).shape);
    CHECK(*c.bytes == *b.constants.at(name).bytes);
  }
  REQUIRE(a.nodes.size() == b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    const octet::Node &x = a.nodes[i], &y = b.nodes[i];
    CAPTURE(x.name);
    CHECK(x.name == y.name);
    CHECK(x.op == y.op);
    CHECK(x.inputs == y.inputs);
    CHECK(x.outputs == y.outputs);
    REQUIRE(x.attrs.values.size() == y.attrs.values.size());
    for (const auto& [attr, value] : x.attrs.values) {
      CAPTURE(attr);
      const octet::AttrValue& other = y.attrs.values.at(attr);
      REQUIRE(value.index() == other.index());
      if (const auto* f = std::get_if<float>(&value))
        CHECK(same_bits(*f, std::get<float>(other)));
      else if (const auto* fs = std::get_if<std::vector<float>>(&value))
        CHECK(same_bits(*fs, std::get<std::vector<float>>(other)));
      else
        CHECK(value == other);
    }
  }
  const octet::Preprocess &p = a.preprocess, &q = b.preprocess;
  CHECK(p.present == q.present);
  CHECK(p.resize_shorter == q.resize_shorter);
  CHECK(p.resize == q.resize);
  CHECK(p.crop_height == q.crop_height);
  CHECK(p.crop_width == q.crop_width);
  CHECK(same_bits(p.scale, q.scale));
  CHECK(same_bits(std::vector<float>(p.mean.begin(), p.mean.end()), std::vector<float>(q.mean.begin(), q.mean.end())));
  CHECK(same_bits(std::vector<float>(p.std.begin(), p.std.end()), std::vector<float>(q.std.begin(), q.std.end())));
  CHECK(p.channel_order == q.channel_order);
  CHECK(p.layout == q.layout);
  CHECK(a.labels == b.labels);
}

// A scratch folder under the build tree, removed when the test ends.
struct ScratchFolder {
  fs::path path = fs::path(OCTET_BUILD_DIR) / "test_graph_format_scratch";
  ScratchFolder() { fs::remove_all(path); }
  ~ScratchFolder() { fs::remove_all(path); }
};

// One malformed model: an edit of the sample's model.json (as parsed JSON) and model.bin, and the error it must raise.
struct BadModel {
  std::string what;
  std::function<void(json&, Bytes&)> edit;
  std::string error;
};

void check_rejected(const std::vector<BadModel>& cases) {
  const octet::ModelFiles good = octet::serialize_model(sample_graph());
  for (const BadModel& c : cases) {
    INFO(c.what);
    json doc = json::parse(good.json);
    Bytes binary = good.binary;
    c.edit(doc, binary);
    CHECK_THROWS_WITH_AS(octet::parse_model(doc.dump(), binary, "m/model.json"), doctest::Contains(c.error.c_str()),
                         octet::Error);
  }
}

json& weight(json& doc) { return doc["constants"]["conv1.weight"]; }

}  // namespace

TEST_CASE("a model round-trips exactly through model.json and model.bin") {
  const Graph graph = sample_graph();
  const octet::ModelFiles files = octet::serialize_model(graph);
  CHECK(files.binary.size() == 128);
  check_same_graph(graph, octet::parse_model(files.json, files.binary, "model.json"));
  CHECK(octet::serialize_model(octet::parse_model(files.json, files.binary, "model.json")).json == files.json);

  ScratchFolder scratch;
  octet::write_model(graph, (scratch.path / "nested" / "tiny").string());  // creates missing folders
  check_same_graph(graph, octet::read_model((scratch.path / "nested" / "tiny").string()));
  check_same_graph(graph, octet::read_model((scratch.path / "nested" / "tiny" / "model.json").string()));
}

TEST_CASE("model.json stores each attribute kind with a tag and floats with enough digits") {
  json doc = json::parse(octet::serialize_model(sample_graph()).json);
  const json& attrs = doc["nodes"][0]["attrs"];
  CHECK(attrs["group"] == json{{"i", 1}});
  CHECK(attrs["act"] == json{{"s", "leaky_relu"}});
  CHECK(attrs["kernel_shape"] == json{{"ints", {3, 3}}});
  CHECK(attrs["act_alpha"]["f"].get<double>() == static_cast<double>(0.1f));
  CHECK(attrs["sum_act_beta"]["floats"].size() == 6);
  CHECK(doc["inputs"][0] == json{{"name", "x"}, {"dtype", "f32"}, {"shape", {"N", 1, 5, 5}}});
  CHECK(doc["constants"]["conv1.weight"]["offset"] == 64);
  CHECK(doc["constants"]["conv1.weight"]["quant"]["axis"] == 0);
  CHECK(!doc["tensors"].contains("conv1.weight"));
}

TEST_CASE("model.bin layout errors") {
  const int64_t max = std::numeric_limits<int64_t>::max();
  check_rejected({
      {"truncated inside a blob", [](json&, Bytes& b) { b.resize(98); },
       "m/model.json: constants[\"conv1.weight\"]: bytes [64, 100) extend past the end of m/model.bin (98 bytes): "
       "truncated file"},
      {"truncated padding", [](json&, Bytes& b) { b.resize(110); },
       "m/model.bin: 110 bytes, but the constants end at 128 (padded to a multiple of 64): truncated file"},
      {"trailing bytes", [](json&, Bytes& b) { b.resize(200); },
       "m/model.bin: 72 trailing bytes after the constants, which end at 128"},
      {"offset past the running size", [](json& j, Bytes& b) { weight(j)["offset"] = 128, b.resize(192); },
       "m/model.json: constants[\"conv1.weight\"].offset: 128 is not the running aligned size 64"},
      {"misaligned offset", [](json& j, Bytes&) { weight(j)["offset"] = 32; },
       "m/model.json: constants[\"conv1.weight\"].offset: 32 is not a multiple of 64"},
      {"overlapping blobs", [](json& j, Bytes&) { weight(j)["offset"] = 0; },
       "m/model.json: constants[\"conv1.weight\"].offset: 0 overlaps constants[\"conv1.bias\"] (bytes [0, 16))"},
      {"byte count against shape", [](json& j, Bytes&) { weight(j)["bytes"] = 35; },
       "m/model.json: constants[\"conv1.weight\"].bytes: 35 does not match shape [4,1,3,3] of s8 (36 bytes)"},
      {"offset + bytes overflow", [max](json& j, Bytes&) { weight(j)["offset"] = max - 8; },
       "m/model.json: constants[\"conv1.weight\"]: offset 9223372036854775799 + bytes 36 overflows 64 bits"},
      {"huge constant shape",
       [](json& j, Bytes&) {
         weight(j)["shape"] = {int64_t{1} << 40, int64_t{1} << 40};
       },
       "m/model.json: constants[\"conv1.weight\"].shape: [1099511627776,1099511627776] of s8 is larger than the limit"},
      {"batch dimension in a constant", [](json& j, Bytes&) { weight(j)["shape"][0] = "N"; },
       "m/model.json: constants[\"conv1.weight\"].shape[0]: expected an integer, got \"N\""},
  });
}

TEST_CASE("model.json structure errors") {
  check_rejected({
      {"wrong format name", [](json& j, Bytes&) { j["format"] = "onnx"; },
       "m/model.json: format: \"onnx\" is not \"octet\""},
      {"newer version", [](json& j, Bytes&) { j["version"] = 2; },
       "m/model.json has format version 2, this octet reads version 1: regenerate the model with this octet's "
       "octet-convert"},
      {"version below 1", [](json& j, Bytes&) { j["version"] = 0; },
       "m/model.json: version: 0 is not a valid format version"},
      {"missing required key", [](json& j, Bytes&) { j["nodes"][0].erase("outputs"); },
       "m/model.json: nodes[0]: missing required key \"outputs\""},
      {"unknown top-level key", [](json& j, Bytes&) { j["comment"] = "hi"; }, "m/model.json: unknown key \"comment\""},
      {"unknown nested key", [](json& j, Bytes&) { j["tensors"]["x"]["layout"] = "NCHW"; },
       "m/model.json: tensors[\"x\"]: unknown key \"layout\" (expected dtype, shape, quant)"},
      {"wrong JSON type", [](json& j, Bytes&) { j["nodes"][0]["inputs"] = "x"; },
       "m/model.json: nodes[0].inputs: expected an array, got \"x\""},
      {"unknown dtype", [](json& j, Bytes&) { j["tensors"]["x"]["dtype"] = "f16"; },
       "m/model.json: tensors[\"x\"].dtype: unknown dtype 'f16'"},
      {"negative dimension", [](json& j, Bytes&) { j["tensors"]["x"]["shape"][2] = -5; },
       "m/model.json: tensors[\"x\"].shape[2]: -5 is below the minimum 0"},
      {"huge shape",
       [](json& j, Bytes&) {
         j["tensors"]["x"]["shape"] = {"N", int64_t{1} << 40, int64_t{1} << 40};
       },
       "m/model.json: tensors[\"x\"].shape: [N,1099511627776,1099511627776] of f32 is larger than the limit"},
      {"input disagrees with its tensor", [](json& j, Bytes&) { j["inputs"][0]["shape"][1] = 3; },
       "m/model.json: inputs[0].shape: [N,3,5,5] differs from tensors[\"x\"].shape [N,1,5,5]"},
      {"ambiguous attribute",
       [](json& j, Bytes&) {
         j["nodes"][0]["attrs"]["group"] = {{"i", 1}, {"f", 1.0}};
       },
       "m/model.json: nodes[0].attrs[\"group\"]: expected exactly one of the keys i, f, s, ints, floats"},
      {"float outside f32",
       [](json& j, Bytes&) {
         j["nodes"][0]["attrs"]["act_alpha"] = {{"f", 1e39}};
       },
       "m/model.json: nodes[0].attrs[\"act_alpha\"].f: 1e+39 is outside the f32 range"},
      {"preprocess std of zero", [](json& j, Bytes&) { j["preprocess"]["std"][1] = 0; },
       "m/model.json: preprocess.std[1]: 0 is not a finite nonzero number"},
      {"preprocess crop size",
       [](json& j, Bytes&) {
         j["preprocess"]["crop"] = {0, 5};
       },
       "m/model.json: preprocess.crop[0]: 0 is not positive"},
      {"constant also in tensors",
       [](json& j, Bytes&) {
         j["tensors"]["conv1.bias"] = {{"dtype", "f32"}, {"shape", {4}}};
       },
       "m/model.json: constants[\"conv1.bias\"]: is also listed in tensors"},
  });
}

TEST_CASE("model.json text errors") {
  const std::string good = octet::serialize_model(sample_graph()).json;
  const Bytes binary = octet::serialize_model(sample_graph()).binary;
  CHECK_THROWS_WITH_AS(octet::parse_model(good.substr(0, good.size() / 2), binary, "m/model.json"),
                       doctest::Contains("m/model.json: invalid JSON: parse error at line"), octet::Error);
  CHECK_THROWS_WITH_AS(octet::parse_model(R"({"format": "octet", "format": "octet"})", binary, "m/model.json"),
                       doctest::Contains("m/model.json: invalid JSON: key \"format\" appears twice in one object"),
                       octet::Error);
  CHECK_THROWS_WITH_AS(octet::parse_model("[1, 2]", binary, "m/model.json"),
                       doctest::Contains("m/model.json: expected an object, got an array"), octet::Error);
}

TEST_CASE("graph structure errors") {
  check_rejected({
      {"unknown op", [](json& j, Bytes&) { j["nodes"][1]["op"] = "Swish"; },
       "m/model.json: node 'relu1' (Swish): unsupported op 'Swish'"},
      {"unknown attribute",
       [](json& j, Bytes&) {
         j["nodes"][0]["attrs"]["dilation_rate"] = {{"ints", {1, 1}}};
       },
       "m/model.json: node 'conv1' (Conv): unknown attribute 'dilation_rate'"},
      {"node reads a later output", [](json& j, Bytes&) { std::swap(j["nodes"][0], j["nodes"][1]); },
       "m/model.json: node 'relu1' (Relu): input 0 'conv1.out' is produced by a later node (cycle, or nodes not in run "
       "order)"},
      {"dangling input", [](json& j, Bytes&) { j["nodes"][1]["inputs"][0] = "nope"; },
       "m/model.json: node 'relu1' (Relu): input 0 'nope' is not defined (dangling tensor name)"},
      {"duplicate output", [](json& j, Bytes&) { j["nodes"][1]["outputs"][0] = "conv1.out"; },
       "m/model.json: node 'relu1' (Relu): output 'conv1.out' is produced more than once"},
      {"node output without a tensors entry", [](json& j, Bytes&) { j["tensors"].erase("relu1.out"); },
       "m/model.json: node 'relu1' (Relu): output 'relu1.out' has no entry in tensors"},
      {"tensor nothing produces",
       [](json& j, Bytes&) {
         j["tensors"]["ghost"] = {{"dtype", "f32"}, {"shape", {1}}};
       },
       "m/model.json: tensors[\"ghost\"]: is neither a graph input nor a node output"},
      {"stored shape disagrees with inference",
       [](json& j, Bytes&) {
         j["tensors"]["conv1.out"]["shape"] = {"N", 4, 3, 3};
       },
       "m/model.json: tensors[\"conv1.out\"].shape: [N,4,3,3] does not match [1,4,5,5], inferred at batch 1 from node "
       "'conv1' (Conv)"},
      {"shape error at load",
       [](json& j, Bytes&) {
         j["nodes"][0]["attrs"]["group"] = {{"i", 3}};
       },
       "m/model.json: node 'conv1' (Conv): attribute group=3 does not divide input channels 1"},
  });
}

TEST_CASE("quantization parameter errors") {
  check_rejected({
      {"per-channel scale count", [](json& j, Bytes&) { weight(j)["quant"]["scales"].erase(0); },
       "m/model.json: constants[\"conv1.weight\"].quant.scales: 3 values, per-channel quantization along axis 0 of "
       "[4,1,3,3] needs 4"},
      {"per-tensor zero point count",
       [](json& j, Bytes&) {
         j["tensors"]["relu1.out"]["quant"]["zero_points"] = {1, 2};
       },
       "m/model.json: tensors[\"relu1.out\"].quant.zero_points: 2 values, per-tensor quantization needs 1"},
      {"negative scale", [](json& j, Bytes&) { j["tensors"]["relu1.out"]["quant"]["scales"][0] = -0.5; },
       "m/model.json: tensors[\"relu1.out\"].quant.scales[0]: -0.5 is not a positive finite number"},
      {"zero point outside u8", [](json& j, Bytes&) { j["tensors"]["relu1.out"]["quant"]["zero_points"][0] = 300; },
       "m/model.json: tensors[\"relu1.out\"].quant.zero_points[0]: 300 is outside the u8 range [0, 255]"},
      {"zero point outside s8", [](json& j, Bytes&) { weight(j)["quant"]["zero_points"][3] = 128; },
       "m/model.json: constants[\"conv1.weight\"].quant.zero_points[3]: 128 is outside the s8 range [-128, 127]"},
      {"axis outside the shape", [](json& j, Bytes&) { weight(j)["quant"]["axis"] = 4; },
       "m/model.json: constants[\"conv1.weight\"].quant.axis: 4 is not -1 (per tensor) or a dimension of [4,1,3,3]"},
  });
}

TEST_CASE("read_model file errors") {
  ScratchFolder scratch;
  CHECK_THROWS_WITH_AS(octet::read_model((scratch.path / "absent").string()),
                       doctest::Contains("absent: no such model folder or model.json file"), octet::Error);
  fs::path folder = scratch.path / "no_bin";
  octet::write_model(sample_graph(), folder.string());
  fs::remove(folder / "model.bin");
  CHECK_THROWS_WITH_AS(octet::read_model(folder.string()),
                       doctest::Contains(((folder / "model.bin").string() + ": cannot open the model weights").c_str()),
                       octet::Error);
  fs::remove(folder / "model.json");
  CHECK_THROWS_WITH_AS(
      octet::read_model(folder.string()),
      doctest::Contains(((folder / "model.json").string() + ": cannot open the model description").c_str()),
      octet::Error);
}

TEST_CASE("write_model refuses graphs read_model would reject") {
  Graph graph = sample_graph();
  graph.nodes[0].attrs.set("act_alpha", std::numeric_limits<float>::infinity());
  CHECK_THROWS_WITH_AS(
      octet::serialize_model(graph),
      doctest::Contains(
          "cannot write model 'tiny': node 'conv1' (Conv): attribute 'act_alpha' holds a non-finite float"),
      octet::Error);
  graph = sample_graph();
  graph.tensors.erase("logits");
  CHECK_THROWS_WITH_AS(
      octet::serialize_model(graph),
      doctest::Contains("cannot write model 'tiny': node 'flatten' (Flatten): output 'logits' has no entry in tensors"),
      octet::Error);
  graph = sample_graph();
  graph.constants["conv1.bias"] = octet::Constant::from_floats({4}, {1.0f});
  CHECK_THROWS_WITH_AS(
      octet::serialize_model(graph),
      doctest::Contains(
          "cannot write model 'tiny': constants[\"conv1.bias\"]: holds 4 bytes, shape [4] of f32 needs 16"),
      octet::Error);
}

TEST_CASE("read_model maps model.bin: constants are views whose pages can be released and are read back intact") {
  Graph graph = sample_graph();
  // A weight spanning several pages, so release_pages drops whole pages of it.
  std::vector<float> values(20000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.25f - 7.0f;
  graph.constants["big"] = octet::Constant::from_floats({20000}, values);
  ScratchFolder scratch;
  octet::write_model(graph, (scratch.path / "m").string());
  const Graph loaded = octet::read_model((scratch.path / "m").string());
  const octet::Constant& big = loaded.constants.at("big");
  REQUIRE(big.bytes->size() == values.size() * sizeof(float));
  CHECK(big.bytes->is_view());
  CHECK_FALSE(graph.constants.at("big").bytes->is_view());  // built in memory: owned
  CHECK(std::memcmp(big.bytes->data(), values.data(), big.bytes->size()) == 0);
  big.bytes->release_pages();
  CHECK(std::memcmp(big.bytes->data(), values.data(), big.bytes->size()) == 0);  // faulted back in from the file
  check_same_graph(graph, loaded);
}

TEST_CASE("pooling on u8: an average keeps its input's quantization, a MaxPool may requantize per tensor") {
  // x -> Quantize (u8 0.1, 3) -> pool 2x2 -> p (u8 0.2, 5) -> Dequantize -> y
  auto pool_graph = [](const std::string& op, const octet::QuantParams& out) {
    Graph g;
    g.name = "pool";
    g.inputs = {"x"};
    g.outputs = {"y"};
    g.tensors["x"] = {DType::f32, {kBatchDim, 2, 4, 4}, {}};
    g.tensors["q"] = {DType::u8, {}, quant({0.1f}, {3}, -1)};
    g.tensors["p"] = {DType::u8, {}, out};
    g.tensors["y"] = {DType::f32, {}, {}};
    octet::Node pool{"pool", op, {"q"}, {"p"}, {}};
    pool.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
    g.nodes = {{"quantize", "Quantize", {"x"}, {"q"}, {}}, pool, {"dequantize", "Dequantize", {"p"}, {"y"}, {}}};
    octet::infer_symbolic_shapes(g);
    return g;
  };
  const Graph requantizing = pool_graph("MaxPool", quant({0.2f}, {5}, -1));
  const std::string written = octet::serialize_model(requantizing).json;
  CHECK(octet::parse_model(written, {}, "m/model.json").tensors.at("p").quant.scales == std::vector<float>{0.2f});
  CHECK_THROWS_WITH_AS(octet::serialize_model(pool_graph("AveragePool", quant({0.2f}, {5}, -1))),
                       doctest::Contains("node 'pool' (AveragePool): output 'p' is not quantized as input 'q' (u8); "
                                         "only a MaxPool requantizes"),
                       octet::Error);
  CHECK_THROWS_WITH_AS(octet::serialize_model(pool_graph("MaxPool", quant({0.2f, 0.3f}, {5, 5}, 1))),
                       doctest::Contains("node 'pool' (MaxPool): a MaxPool from u8 input 'q' to output 'p' of dtype "
                                         "u8 with other quantization requantizes, which needs u8/s8 output and "
                                         "per-tensor quantization"),
                       octet::Error);
  // The same refusal at load, naming the file.
  json j = json::parse(written);
  j["tensors"]["p"]["quant"] = {{"scales", {0.2, 0.3}}, {"zero_points", {5, 5}}, {"axis", 1}};
  CHECK_THROWS_WITH_AS(octet::parse_model(j.dump(), {}, "m/model.json"),
                       doctest::Contains("m/model.json: node 'pool' (MaxPool): a MaxPool from u8 input 'q'"),
                       octet::Error);
}
