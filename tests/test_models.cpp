// The shared real models convert, survive the model file round trip, and reproduce their reference
// outputs in FP32 (max abs error <= 1e-3 x max |reference|), ResNet-50 also at batch 4. No layer runs a
// oneDNN `ref` implementation (nor octet's reference kernels).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "converters/onnx/import.h"
#include "graph/model_format.h"
#include "octet/octet.h"

namespace {

std::shared_ptr<const octet::Model> convert_and_load(const std::string& name) {
  std::string out = std::string(OCTET_BUILD_DIR) + "/test-models/" + name;
  octet::write_model(octet::onnx::import_onnx(std::string(OCTET_SHARED_DIR) + "/models/" + name + "/model.onnx"), out);
  return octet::Model::load(out);
}

void check_data_set(const std::shared_ptr<const octet::Model>& model, const std::string& name, int set) {
  std::string dir = std::string(OCTET_SHARED_DIR) + "/models/" + name + "/test_data_set_" + std::to_string(set);
  octet::Constant input = octet::onnx::read_tensor_pb(dir + "/input_0.pb");
  octet::Constant want = octet::onnx::read_tensor_pb(dir + "/output_0.pb");
  octet::Session session(model, {input.shape[0], 0, false});
  octet::Tensor in = session.input(0);
  REQUIRE(in.elements() == input.elements());
  std::copy(input.data<float>(), input.data<float>() + input.elements(), in.data);
  session.run();
  octet::Tensor got = session.output(0);
  REQUIRE(got.elements() == want.elements());
  double max_ref = 0, max_err = 0;
  for (int64_t i = 0; i < want.elements(); ++i) {
    max_ref = std::max(max_ref, std::fabs(double(want.data<float>()[i])));
    max_err = std::max(max_err, std::fabs(double(got.data[i]) - want.data<float>()[i]));
  }
  MESSAGE(name << " set " << set << " (batch " << input.shape[0] << "): max abs error " << max_err << ", max |ref| "
               << max_ref << ", arena " << session.arena_bytes() / 1024 << " KiB");
  CHECK(max_err <= 1e-3 * max_ref);
  for (const octet::LayerInfo& layer : session.layers())
    CHECK_MESSAGE(layer.implementation.find("ref") == std::string::npos,
                  layer.node << " (" << layer.op << ") runs " << layer.implementation);
}

}  // namespace

TEST_CASE("ResNet-50 FP32 reproduces PyTorch at batch 1 and 4") {
  auto model = convert_and_load("resnet50");
  check_data_set(model, "resnet50", 0);
  check_data_set(model, "resnet50", 1);
}

TEST_CASE("MobileNet v1 0.25 FP32 reproduces ONNX Runtime") {
  check_data_set(convert_and_load("mobilenet_v1_025"), "mobilenet_v1_025", 0);
}

TEST_CASE("Darknet-tiny FP32 reproduces ONNX Runtime") {
  check_data_set(convert_and_load("darknet_tiny"), "darknet_tiny", 0);
}

TEST_CASE("MobileNet v3 small FP32 reproduces PyTorch (HardSwish, squeeze-excitation)") {
  auto model = convert_and_load("mobilenet_v3_small");
  check_data_set(model, "mobilenet_v3_small", 0);
  std::map<std::string, int> ops;
  for (const octet::LayerInfo& layer : octet::Session(model, {1, 0, false}).layers()) ops[layer.op]++;
  CHECK(ops.count("HardSigmoid") == 0);  // x * HardSigmoid(x) became HardSwish, every HardSigmoid a Conv post-op
  CHECK(ops["Conv"] == 52);
}

TEST_CASE("ViT tiny FP32 reproduces PyTorch (LayerNorm, attention, GELU)") {
  auto model = convert_and_load("vit_tiny");
  check_data_set(model, "vit_tiny", 0);
  std::map<std::string, int> ops;
  for (const octet::LayerInfo& layer : octet::Session(model, {1, 0, false}).layers()) ops[layer.op]++;
  CHECK(ops["LayerNormalization"] == 9);
  CHECK(ops.count("Gelu") == 0);  // the Erf pattern fused into Gelu, and that into the MLP's first MatMul
  CHECK(ops.count("Erf") == 0);
  CHECK(ops["Add"] == 9);  // position embedding and 8 residuals: every bias went into its matmul
}
