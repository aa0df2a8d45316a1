// Smoothing of Transformer linear-layer inputs (converters/quant/smoothing.h) on a hand-built attention block
// whose LayerNorm and attention-output channels have ranges about 30x apart: which tensors qualify and where
// their scale goes, that the FP32 function is unchanged, that the ranges become more equal, and that the INT8
// model gets closer to FP32.
#include <doctest/doctest.h>

#include <algorithm>

#include "converters/quant/calibration.h"
#include "converters/quant/convert.h"
#include "converters/quant/smoothing.h"
#include "graph/quantization.h"
#include "octet/evaluation.h"
#include "support/random.h"

namespace {

const std::string kSamples = std::string(OCTET_SHARED_DIR) + "/data/imagenet-samples";

octet::Node node(const std::string& name, const std::string& op, std::vector<std::string> inputs,
                 const std::string& output) {
  return octet::Node{name, op, std::move(inputs), {output}, {}};
}

octet::Node with_ints(octet::Node n, const std::string& attr, std::vector<int64_t> values) {
  n.attrs.set(attr, std::move(values));
  return n;
}

// image [1,3,8,8] -> 64 tokens of 3 values -> embed (MatMul 3 -> 8) -> LayerNorm (gains 0.1 .. 3) -> QKV
// (MatMul 8 -> 24, V columns with gains 0.1 .. 3) -> two heads of 4: softmax(Q K^T) V -> out-projection
// (MatMul 8 -> 8) -> output. `v_start` is where the V columns begin (16; less makes K and V overlap). The heads
// are [1, 2, 64, 4] tensors, or with `folded_batch` [2, 64, 4] ones (as torchvision's ViT exports them).
octet::Graph attention_block(int64_t v_start = 16, bool folded_batch = false) {
  octet::Graph g;
  g.name = "attention_block";
  g.inputs = {"image"};
  g.outputs = {"output"};
  auto tensor = [&](const std::string& name, octet::Shape shape) { g.tensors[name] = {octet::DType::f32, shape, {}}; };
  tensor("image", {1, 3, 8, 8});
  tensor("tokens_raw", {1, 3, 64});
  tensor("tokens", {1, 64, 3});
  for (const char* t : {"embed", "ln", "q", "k", "v", "attn_out", "output"}) tensor(t, {1, 64, 8});
  tensor("qkv", {1, 64, 24});
  auto heads = [folded_batch](octet::Shape dims) {
    if (!folded_batch) dims.insert(dims.begin(), 1);
    return dims;
  };
  for (const char* t : {"q4", "k4", "v4", "o4"}) tensor(t, heads({64, 2, 4}));
  for (const char* t : {"qh", "vh", "oh"}) tensor(t, heads({2, 64, 4}));
  tensor("kh", heads({2, 4, 64}));
  tensor("scores", heads({2, 64, 64}));
  tensor("attn", heads({2, 64, 64}));
  // Permutations of the head tensors: token-major to head-major, and K to [head, 4, token].
  const std::vector<int64_t> to_heads = folded_batch ? std::vector<int64_t>{1, 0, 2} : std::vector<int64_t>{0, 2, 1, 3};
  const std::vector<int64_t> k_perm = folded_batch ? std::vector<int64_t>{1, 2, 0} : std::vector<int64_t>{0, 2, 3, 1};

  const float gains[8] = {0.1f, 3, 1, 0.3f, 2, 0.15f, 1, 0.5f};
  std::vector<float> gamma(8), beta(8), qkv_w = octet::testing::pseudo_random(8 * 24, 2);
  for (size_t c = 0; c < 8; ++c) {
    gamma[c] = gains[c];
    beta[c] = 0.1f * gains[c];
  }
  for (size_t r = 0; r < 8; ++r)
    for (size_t c = 16; c < 24; ++c) qkv_w[r * 24 + c] *= gains[(c + 3) % 8];
  g.constants["embed/w"] = octet::testing::random_constant({3, 8}, 1);
  g.constants["embed/b"] = octet::testing::random_constant({8}, 5);
  g.constants["ln/gamma"] = octet::Constant::from_floats({8}, gamma);
  g.constants["ln/beta"] = octet::Constant::from_floats({8}, beta);
  g.constants["qkv/w"] = octet::Constant::from_floats({8, 24}, qkv_w);
  g.constants["qkv/b"] = octet::testing::random_constant({24}, 3);
  g.constants["out/w"] = octet::testing::random_constant({8, 8}, 4);
  g.constants["out/b"] = octet::testing::random_constant({8}, 6);

  octet::Node ln = node("ln", "LayerNormalization", {"embed", "ln/gamma", "ln/beta"}, "ln");
  ln.attrs.set("axis", int64_t{-1});
  octet::Node softmax = node("softmax", "Softmax", {"scores"}, "attn");
  softmax.attrs.set("axis", int64_t{-1});
  auto slice = [&](const std::string& out, int64_t start) {
    octet::Node s = with_ints(node("slice_" + out, "Slice", {"qkv"}, out), "starts", {start});
    s = with_ints(s, "ends", {start + 8});
    return with_ints(s, "axes", {-1});
  };
  auto reshape = [&](const std::string& in, const std::string& out, std::vector<int64_t> shape) {
    return with_ints(node("reshape_" + out, "Reshape", {in}, out), "shape", std::move(shape));
  };
  auto transpose = [&](const std::string& in, const std::string& out, std::vector<int64_t> perm) {
    return with_ints(node("transpose_" + out, "Transpose", {in}, out), "perm", std::move(perm));
  };
  g.nodes = {reshape("image", "tokens_raw", {1, 3, 64}),
             transpose("tokens_raw", "tokens", {0, 2, 1}),
             node("embed", "MatMul", {"tokens", "embed/w", "embed/b"}, "embed"),
             ln,
             node("qkv", "MatMul", {"ln", "qkv/w", "qkv/b"}, "qkv"),
             slice("q", 0),
             slice("k", 8),
             slice("v", v_start),
             reshape("q", "q4", heads({64, 2, 4})),
             reshape("k", "k4", heads({64, 2, 4})),
             reshape("v", "v4", heads({64, 2, 4})),
             transpose("q4", "qh", to_heads),
             transpose("k4", "kh", k_perm),
             transpose("v4", "vh", to_heads),
             node("scores", "MatMul", {"qh", "kh"}, "scores"),
             softmax,
             node("context", "MatMul", {"attn", "vh"}, "oh"),
             transpose("oh", "o4", to_heads),
             reshape("o4", "attn_out", {1, 64, 8}),
             node("out", "MatMul", {"attn_out", "out/w", "out/b"}, "output")};
  g.preprocess.present = true;
  g.preprocess.resize_shorter = 10;
  g.preprocess.crop_height = g.preprocess.crop_width = 8;
  for (int c = 0; c < 3; ++c) g.preprocess.mean[c] = 0.45f, g.preprocess.std[c] = 0.25f;
  return g;
}

std::vector<std::string> images(size_t offset) { return octet::list_images(kSamples, 8, 10, offset); }

std::vector<float> run(const octet::Graph& graph, const std::string& tensor, const std::vector<std::string>& files) {
  std::vector<float> all;
  octet::quant::run_on_images(
      graph, {tensor}, files,
      [&](const std::string&, octet::Session& session) {
        octet::Tensor t = session.output(0);
        all.insert(all.end(), t.data, t.data + t.elements());
      },
      nullptr);
  return all;
}

// Largest channel range (last axis of 8) / mean channel range of a tensor on the images.
double spread(const octet::Graph& graph, const std::string& tensor, const std::vector<std::string>& files) {
  std::vector<float> v = run(graph, tensor, files);
  std::vector<float> low(8, 0.0f), high(8, 0.0f);
  for (size_t i = 0; i < v.size(); ++i) {
    low[i % 8] = std::min(low[i % 8], v[i]);
    high[i % 8] = std::max(high[i % 8], v[i]);
  }
  double largest = 0, sum = 0;
  for (size_t c = 0; c < 8; ++c) {
    largest = std::max(largest, double(high[c]) - low[c]);
    sum += double(high[c]) - low[c];
  }
  return largest / (sum / 8);
}

}  // namespace

TEST_CASE("smoothing sites: LayerNorm -> QKV, attention output -> out-projection through softmax * V") {
  CHECK(octet::quant::find_smoothing_sites(attention_block(16, true)).size() == 2);
  std::vector<octet::quant::SmoothingSite> sites = octet::quant::find_smoothing_sites(attention_block());
  std::sort(sites.begin(), sites.end(), [](const auto& a, const auto& b) { return a.tensor < b.tensor; });
  REQUIRE(sites.size() == 2);
  CHECK(sites[0].tensor == "attn_out");
  CHECK(sites[0].absorber == "qkv");
  CHECK(sites[0].readers == std::vector<std::string>{"out"});
  CHECK(sites[0].path == std::vector<std::string>{"slice_v", "reshape_v4", "transpose_vh", "context", "transpose_o4",
                                                  "reshape_attn_out"});
  CHECK(sites[1].tensor == "ln");
  CHECK(sites[1].absorber == "ln");
  CHECK(sites[1].path.empty());
  // The embedding's input comes from the graph input: nothing takes a scale there.

  // K's columns overlapping V's: scaling V would change K.
  CHECK(octet::quant::find_smoothing_sites(attention_block(12)).size() == 1);
  // A tensor on the path that is also a graph output must keep its values.
  octet::Graph also_output = attention_block();
  also_output.outputs.push_back("oh");
  CHECK(octet::quant::find_smoothing_sites(also_output).size() == 1);
  // A fused activation on the QKV projection does not commute with a scale.
  octet::Graph gelu = attention_block();
  gelu.nodes[4].attrs.set("act", std::string("gelu"));
  CHECK(octet::quant::find_smoothing_sites(gelu).size() == 1);
  // A reader that is not a linear layer (here Softmax) leaves the tensor alone.
  octet::Graph other_reader = attention_block();
  other_reader.nodes.push_back(node("extra", "Softmax", {"attn_out"}, "extra_out"));
  other_reader.tensors["extra_out"] = other_reader.tensors.at("attn_out");
  other_reader.outputs.push_back("extra_out");
  CHECK(octet::quant::find_smoothing_sites(other_reader).size() == 1);
}

TEST_CASE("smoothing keeps the FP32 outputs, evens the channel ranges and helps INT8" * doctest::test_suite("models")) {
  const octet::Graph original = attention_block();
  const std::vector<std::string> calibration = images(0), others = images(5);
  const std::vector<float> reference = run(original, "output", others);

  octet::Graph smoothed = original;
  octet::quant::SmoothingReport report = octet::quant::smooth_linear_inputs(smoothed, calibration, 1.0, nullptr);
  CHECK(report.sites == 2);
  const std::vector<float> after = run(smoothed, "output", others);
  REQUIRE(after.size() == reference.size());
  CHECK(octet::sqnr_db(reference.data(), after.data(), int64_t(after.size())) > 90);  // float rounding only
  for (const std::string t : {"ln", "attn_out"}) {
    CAPTURE(t);
    const double before_spread = spread(original, t, calibration), after_spread = spread(smoothed, t, calibration);
    MESSAGE(t << " channel range spread " << before_spread << " -> " << after_spread);
    CHECK(before_spread > 2.0);
    CHECK(after_spread == doctest::Approx(1.0).epsilon(1e-3));  // alpha 1: every range the largest
  }

  octet::quant::QuantizeOptions plain, smoothing;  // weights to nearest in both: the activations' part alone
  plain.rounding = smoothing.rounding = octet::quant::WeightRounding::nearest;
  plain.equalize_alpha = -1;
  smoothing.equalize_alpha = 0.5;
  smoothing.int8_classifier = plain.int8_classifier = true;
  smoothing.equalize_only_if_better = false;
  const octet::Graph a = octet::quant::quantize_model(original, calibration, plain, true, nullptr);
  octet::quant::ConvertReport convert_report;
  const octet::Graph b = octet::quant::quantize_model(original, calibration, smoothing, true, nullptr, &convert_report);
  CHECK(convert_report.equalization.smoothed == 2);
  const std::vector<float> qa = run(a, "output", others), qb = run(b, "output", others);
  const double sqnr_plain = octet::sqnr_db(reference.data(), qa.data(), int64_t(qa.size()));
  const double sqnr_smoothed = octet::sqnr_db(reference.data(), qb.data(), int64_t(qb.size()));
  MESSAGE("INT8 output SQNR: " << sqnr_plain << " dB plain, " << sqnr_smoothed << " dB smoothed");
  CHECK(sqnr_smoothed > sqnr_plain + 3);
}

TEST_CASE(
    "INT8 attention: u8 Q and softmax, s8 K and V (zero point 0), Softmax writing u8 itself; rank 4 and "
    "--fp32-attention keep it FP32" *
    doctest::test_suite("models")) {
  const std::vector<std::string> calibration = images(0), others = images(5);
  octet::quant::QuantizeOptions options;
  options.rounding = octet::quant::WeightRounding::nearest;
  options.equalize_alpha = -1;
  options.int8_classifier = true;
  auto node_of = [](const octet::Graph& g, const std::string& name) -> const octet::Node& {
    return *std::find_if(g.nodes.begin(), g.nodes.end(), [&](const octet::Node& n) { return n.name == name; });
  };
  for (bool folded : {true, false}) {
    for (bool int8_attention : {true, false}) {
      CAPTURE(folded);
      CAPTURE(int8_attention);
      const octet::Graph fp32 = attention_block(16, folded);
      options.int8_attention = int8_attention;
      const octet::Graph int8 = octet::quant::quantize_model(fp32, calibration, options, true, nullptr);
      const bool expected = folded && int8_attention;  // rank-4 heads: possibly permuted strides, ref_int8
      for (const char* name : {"scores", "context"}) {
        const octet::Node& node = node_of(int8, name);
        const octet::TensorInfo& a = int8.tensor(node.inputs[0]);
        const octet::TensorInfo& b = int8.tensor(node.inputs[1]);
        CHECK(a.dtype == (expected ? octet::DType::u8 : octet::DType::f32));
        CHECK(b.dtype == (expected ? octet::DType::s8 : octet::DType::f32));
        if (expected) CHECK(b.quant.zero_points.at(0) == 0);
      }
      const octet::TensorInfo& attn = int8.tensor(node_of(int8, "softmax").outputs[0]);
      CHECK(attn.dtype == (expected ? octet::DType::u8 : octet::DType::f32));
      if (expected) {
        CHECK(attn.quant.zero_points.at(0) == 0);
        CHECK(attn.quant.scales.at(0) * 255 <= 1.0f);
        CHECK(node_of(int8, "context").inputs[0] == "attn");  // read as the Softmax wrote it: no Quantize node
      }
      const std::vector<float> reference = run(fp32, "output", others), got = run(int8, "output", others);
      const double sqnr = octet::sqnr_db(reference.data(), got.data(), int64_t(got.size()));
      MESSAGE("INT8 output SQNR " << sqnr << " dB");
      CHECK(sqnr > 15);
    }
  }

  // V read first as A (u8) by another MatMul: softmax V cannot read it as s8 and stays FP32, the model still right.
  octet::Graph shared = attention_block(16, true);
  const auto at =
      std::find_if(shared.nodes.begin(), shared.nodes.end(), [](const octet::Node& n) { return n.name == "scores"; });
  shared.nodes.insert(at, node("v_by_k", "MatMul", {"vh", "kh"}, "v_by_k"));
  shared.tensors["v_by_k"] = shared.tensors.at("scores");
  shared.outputs.push_back("v_by_k");
  options.int8_attention = true;
  std::vector<octet::quant::QuantizedLayer> layers;
  const octet::Graph int8 = octet::quant::quantize_graph(
      shared, octet::quant::collect_statistics(shared, calibration, nullptr), options, &layers);
  CHECK(int8.tensor(node_of(int8, "v_by_k").inputs[0]).dtype == octet::DType::u8);
  CHECK(int8.tensor(node_of(int8, "context").inputs[1]).dtype == octet::DType::f32);
  for (const octet::quant::QuantizedLayer& layer : layers)
    if (layer.node == "context") CHECK(layer.mode == "fp32");
  const std::vector<float> reference = run(shared, "output", others), got = run(int8, "output", others);
  CHECK(octet::sqnr_db(reference.data(), got.data(), int64_t(got.size())) > 15);
}
