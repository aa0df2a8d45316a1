#include "converters/quant/fidelity.h"

#include "converters/quant/calibration.h"
#include "graph/quantization.h"
#include "octet/evaluation.h"

namespace octet::quant {
namespace {

// Output 0 of `graph` on every image (batch 1), concatenated.
std::vector<float> output_logits(const Graph& graph, const std::vector<std::string>& images) {
  std::vector<float> logits;
  run_on_images(
      graph, {graph.outputs.at(0)}, images,
      [&logits](const std::string&, Session& session) {
        const Tensor output = session.output(0);
        logits.insert(logits.end(), output.data, output.data + output.elements());
      },
      nullptr);
  return logits;
}

}  // namespace

FidelityReference::FidelityReference(const Graph& fp32, std::vector<std::string> images)
    : images_(std::move(images)), reference_logits_(output_logits(fp32, images_)) {}

Fidelity FidelityReference::measure(const Graph& model) const {
  const std::vector<float> logits = output_logits(model, images_);
  if (logits.size() != reference_logits_.size())
    throw Error("fidelity: the model has " + std::to_string(logits.size()) + " outputs over the images, FP32 has " +
                std::to_string(reference_logits_.size()));
  const size_t classes = logits.size() / images_.size();
  size_t agreements = 0;
  for (size_t i = 0; i < images_.size(); ++i)
    agreements += top1_agrees(reference_logits_.data() + i * classes, logits.data() + i * classes, classes);
  return {sqnr_db(reference_logits_.data(), logits.data(), int64_t(logits.size())),
          double(agreements) / double(images_.size())};
}

}  // namespace octet::quant
