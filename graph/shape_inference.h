// Graph validation and shape inference.
#pragma once

#include <map>
#include <string>

#include "graph/graph.h"

namespace octet {

// Checks the graph's structure: every node is in the op table with valid arity and attributes, every input
// name is a graph input, a constant or the output of an earlier node (a later one means a cycle or bad order),
// each tensor is produced once, graph outputs exist. Throws Error naming the node and field.
void validate_graph(const Graph& graph);

// Every tensor's dtype and concrete shape for the given batch size (graph inputs' kBatchDim becomes `batch`).
// Constants are included. Validates the graph first.
std::map<std::string, TensorInfo> infer_shapes(const Graph& graph, int64_t batch);

// Fills graph.tensors for every activation with its inferred shape, dimensions that follow the batch size
// written as kBatchDim (found by inferring at batch 1 and 2). Keeps existing quantization parameters.
void infer_symbolic_shapes(Graph& graph);

}  // namespace octet
