// libFuzzer target: ONNX import, on the bytes of an ONNX ModelProto. A model is parsed and imported as
// octet-convert imports it: a float model by onnx::import_model (op translation, constant folding, passes,
// validation), an already-quantized one (QDQ or QOperator) by quant::import_quantized_onnx_model (Q/DQ and
// QLinear* rewriting, the given scales, zero points and integers). The graph is wrapped by Model::from_graph and,
// when its activations are small, run once by a Session at batch 1 on a deterministic input. Every rejection must
// be an octet::Error; a signal, a sanitizer report or any other exception is a finding.
#include <cstring>

#include "converters/onnx/import.h"
#include "converters/onnx/qdq_import.h"
#include "converters/quant/given_quantization.h"
#include "graph/shape_inference.h"
#include "octet/octet.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/support/onnx_pb.h"

namespace {

// Models whose activations at batch 1 exceed this are imported and validated but not run: a Session would
// only spend the fuzzer's time and memory filling them.
constexpr int64_t kMaxRunBytes = int64_t(16) << 20;

bool small_enough_to_run(const octet::Graph& graph) {
  int64_t total = 0;
  for (const auto& kv : octet::infer_shapes(graph, 1)) {
    int64_t bytes = octet::shape_elements(kv.second.shape) * int64_t(octet::dtype_size(kv.second.dtype));
    if (bytes > kMaxRunBytes - total) return false;
    total += bytes;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  octet::fuzz::refuse_only_with_octet_error([&] {
    ::onnx::ModelProto proto;
    if (!proto.ParseFromString(bytes)) throw octet::Error("fuzz.onnx: not a valid ONNX model");
    octet::Graph graph = octet::onnx::is_quantized_onnx(proto) ? octet::quant::import_quantized_onnx_model(proto)
                                                               : octet::onnx::import_onnx_model(proto);
    const bool run = small_enough_to_run(graph);
    auto model = octet::Model::from_graph(std::move(graph));
    if (!run) return;
    octet::Session session(model, {/*batch*/ 1, /*threads*/ 1});
    for (size_t i = 0; i < session.num_inputs(); ++i) {
      octet::Tensor input = session.input(i);
      for (int64_t k = 0; k < input.elements(); ++k) input.data[k] = float(k % 17) * 0.125f - 1.0f;
    }
    session.run();
  });
  return 0;
}
