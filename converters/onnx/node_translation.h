// Private to the ONNX importer: one ONNX node to octet's canonical form (graph/ops.h).
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

#include "converters/onnx/constant_folding.h"

namespace octet::onnx {

// Appends the canonical form of `proto` to graph.nodes, or records it as a constant when it computes one
// (Constant, folded shape arithmetic). `name` is the node's unique name; `opset` the default domain's opset.
// Throws Error naming the node, its op and the field at fault.
void translate_node(const ::onnx::NodeProto& proto, const std::string& name, int64_t opset, Graph& graph,
                    ConstantFolder& folder);

}  // namespace octet::onnx