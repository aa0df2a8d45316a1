// ONNX operands that octet holds as attributes: read by the importer (node_translation.cpp, which moves
// them from inputs to attributes) and written back by the QDQ export (qdq_export.cpp, which moves them to
// initializer inputs again), so both sides agree by construction. Older opsets have some of them as
// attributes already, which the importer copies unchanged.
#pragma once

#include <cstddef>

namespace octet::onnx {

// Input `index` of `op`, named `onnx_name` in the ONNX spec, becomes attribute `attribute`: a list of
// integers, or one float when `scalar`. Rows of one op are in input order.
struct OperandAttribute {
  const char* op;
  size_t index;
  const char* onnx_name;
  const char* attribute;
  bool scalar;
};

inline constexpr OperandAttribute kOperandAttributes[] = {
    {"Reshape", 1, "shape", "shape", false},
    {"Slice", 1, "starts", "starts", false},
    {"Slice", 2, "ends", "ends", false},
    {"Slice", 3, "axes", "axes", false},
    {"Slice", 4, "steps", "steps", false},
    {"Pad", 1, "pads", "pads", false},
    {"Pad", 2, "constant_value", "value", true},
    {"Clip", 1, "min", "min", true},
    {"Clip", 2, "max", "max", true},
    {"Split", 1, "split", "split", false},
    {"Squeeze", 1, "axes", "axes", false},
    {"Unsqueeze", 1, "axes", "axes", false},
    {"Pow", 1, "Y", "exponent", true},
};

}  // namespace octet::onnx
