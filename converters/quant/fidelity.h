// How close a quantized model stays to its FP32 graph on images: the measure by which the policy judges its
// own choices (range equalization kept or not, quant/convert.h) and by which analysis/ ranks layers.
//
//   const FidelityReference reference(fp32, images);   // runs the FP32 graph once
//   Fidelity f = reference.measure(int8);               // logit SQNR and Top-1 agreement against it
#pragma once

#include <string>
#include <vector>

#include "graph/graph.h"

namespace octet::quant {

struct Fidelity {
  double sqnr_db = 0;         // logit SQNR against FP32 over all images' logits (+inf: identical)
  double top1_agreement = 0;  // fraction of images with FP32's top-1 class
};

// The FP32 graph's output 0 on every image (batch 1), computed once at construction.
class FidelityReference {
 public:
  FidelityReference(const Graph& fp32, std::vector<std::string> images);
  // Runs `model` on the same images and compares its output 0 with the FP32 logits. Throws Error when the
  // output sizes differ.
  Fidelity measure(const Graph& model) const;
  const std::vector<std::string>& images() const { return images_; }

 private:
  std::vector<std::string> images_;
  std::vector<float> reference_logits_;  // concatenated over the images
};

}  // namespace octet::quant
