// octet-convert --sensitivity / --sensitivity-plot / --auto-fp32: the flags, their checks, and the conversion
// that ranks the layers (analysis/sensitivity.h) before choosing the model to write.
#pragma once

#include <functional>
#include <string>

#include "converters/analysis/sensitivity.h"
#include "converters/quant/convert.h"

namespace octet::tools {

struct SensitivityRequest {
  bool table = false;           // --sensitivity
  std::string plot;             // --sensitivity-plot FILE.svg|png
  bool auto_fp32 = false;       // --auto-fp32 given
  double auto_fp32_budget = 0;  // its Top-1 agreement budget in %
  bool requested() const { return table || !plot.empty() || auto_fp32; }
};

// Throws Error naming the flag for a request that cannot run: no --calibrate, a budget outside (0, 100],
// a plot file not ending in .svg or .png.
void check_sensitivity_request(const SensitivityRequest& request, const quant::ConvertOptions& options);

// convert_onnx with the analysis: imports, calibrates once, ranks the layers (table and plot if asked),
// and returns the model to write: the auto-fp32 choice with --auto-fp32, else the policy's model.
// `summary` receives the text to print. `stage_progress` is called with a stage name ("calibrating",
// "sensitivity variants", "auto-fp32 layers FP32") and its counts.
Graph convert_with_sensitivity(
    const std::string& onnx_path, const quant::ConvertOptions& options, const SensitivityRequest& request,
    const std::function<void(const std::string& stage, size_t done, size_t total)>& stage_progress,
    quant::ConvertReport* report, std::string* summary);

}  // namespace octet::tools
