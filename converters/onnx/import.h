// ONNX import: reads an ONNX model into octet's canonical Graph.
//
// The import translates every ONNX node to the op table's canonical form (graph/ops.h) whatever its opset
// (7..17), folds shape computations into constants, removes inference no-ops (Identity, Dropout), folds
// BatchNormalization into the preceding Conv and fuses Conv post-ops (activation, residual sum). The result
// has a TensorInfo for every activation and passes validate_graph.
#pragma once

#include <map>
#include <string>

#include "graph/graph.h"

namespace onnx {
class ModelProto;
}  // namespace onnx

namespace octet::onnx {

struct ImportOptions {
  // Graph inputs to treat as constants, by name (the conformance runner binds e.g. Reshape's 'shape' input
  // from the test data, because octet needs such operands at conversion time).
  std::map<std::string, Constant> bind_inputs;
  bool fold_batch_norm = true;      // BatchNormalization after a Conv becomes the Conv's weights and bias
  bool fuse = true;                 // Conv + activation and Conv + Add (+ activation) become one Conv
  bool refuse_empty_inputs = true;  // a graph input with a 0 dimension is an error (the conformance runner
                                    // allows it: ONNX's node tests slice and split empty tensors)
};

// Reads the ONNX file at `path`. Throws Error naming the file (and the node and field at fault).
Graph import_onnx(const std::string& path, const ImportOptions& options = {});

// The same for a model already in memory (converters/qdq_import.cpp hands over a rewritten one). Errors name
// the node and field, not a file.
Graph import_onnx_model(const ::onnx::ModelProto& model, const ImportOptions& options = {});

// Imports a serialized ONNX ModelProto held in memory; `source_name` prefixes every error as a path would.
Graph import_onnx_bytes(const std::string& bytes, const std::string& source_name, const ImportOptions& options = {});

// Reads a serialized TensorProto (the input_N.pb / output_N.pb files of ONNX test data). `name`, when given,
// receives the tensor's name. Throws Error naming the file.
Constant read_tensor_pb(const std::string& path, std::string* name = nullptr);

}  // namespace octet::onnx