// Command-line flags shared by the tools (CLI11); the libraries own no flag parsing.
#pragma once

#include "converters/onnx/preprocess_options.h"

namespace CLI {
class App;
}

namespace octet::tools {

// Adds the preprocessing and labels flags of onnx/preprocess_options.h to `app`; parsing fills `options`
// (which must outlive the parse). Parsing checks only the types (numbers, three comma-separated numbers);
// onnx::apply_preprocess_options checks the values.
void add_preprocess_options(CLI::App& app, onnx::PreprocessOptions& options);

}  // namespace octet::tools
