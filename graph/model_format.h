// The octet model file format, version 1: a folder holding model.json (the graph) and model.bin (the weights).
// This comment is the reference; graph/FORMAT.md says the same at more length.
//
// model.json is one JSON object. Every object level rejects unknown keys and requires the keys listed
// without "optional". Shapes are lists of non-negative integers, where the string "N" (inputs and tensors
// only) is the symbolic batch dimension. dtypes are "f32", "u8", "s8", "s32", "s64".
//
//   format      "octet"
//   version     integer; a reader accepts 1..kFormatVersion and rejects newer files
//   name        string
//   inputs      [{name, dtype, shape}]; each must repeat its tensors entry
//   outputs     [name]
//   preprocess  optional {resize_shorter, resize, crop: [h, w], scale, mean: [3], std: [3], channel_order, layout}
//   labels      optional [string]
//   tensors     {name: {dtype, shape, quant (optional)}}: every graph input and node output, no constants
//   constants   {name: {dtype, shape, offset, bytes, quant (optional)}}
//   nodes       [{name, op, inputs: [name], outputs: [name], attrs: {name: value}}] in run order; "" is an
//               omitted optional input
//   quant       {scales: [number], zero_points: [integer], axis}: axis -1 is per tensor (one value each),
//               otherwise one value per index of that dimension; scales finite and > 0, zero points in
//               the dtype's range
//   attribute   exactly one of {"i": integer}, {"f": number}, {"s": string}, {"ints": [integer]},
//               {"floats": [number]}; floats are finite and written with enough digits to round-trip exactly
//
// model.bin holds the constants' bytes (little-endian, dense, row-major). Taken in increasing offset order,
// each constant starts at the first multiple of 64 at or after the end of the previous one (the first at 0),
// so offsets are 64-byte aligned and blobs neither overlap nor leave gaps. bytes = elements(shape) *
// dtype size. The file ends at the end of the last constant rounded up to 64 (zero padding): its size is
// a multiple of 64, and shorter (truncated) or longer (trailing bytes) files are rejected.
//
// No tensor or constant may exceed kMaxTensorBytes (graph.h, 4 GiB, with N = 1), so shapes like [2^40, 2^40] are
// refused before anything is allocated. The reader then checks the graph itself (ops, attributes, names, run order)
// with validate_graph() and infer_shapes(graph, 1), and requires each stored node output shape to match the
// inferred one. Every failure throws octet::Error naming the file and the field, e.g.
//   model.json: constants["conv1.weight"].offset: 128 is not the running aligned size 64
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace octet {

constexpr const char* kFormatName = "octet";
constexpr int kFormatVersion = 1;
constexpr int64_t kBlobAlignment = 64;

// Reads a model: `path` is the model folder or its model.json; model.bin sits beside model.json.
Graph read_model(const std::string& path);

// Writes `folder`/model.json and `folder`/model.bin, creating the folder when missing. The graph is first
// checked with the rules read_model applies, so it never writes a model that would not load: every graph
// input and node output needs a tensors entry (infer_symbolic_shapes() fills them). A Graph::tensors entry
// for a constant may only carry that constant's quantization; it is stored as constants[name].quant.
void write_model(const Graph& graph, const std::string& folder);

// The two files' contents, as write_model writes them and parse_model reads them.
struct ModelFiles {
  std::string json;
  std::vector<uint8_t> binary;
};
ModelFiles serialize_model(const Graph& graph);

// Parses and validates a model from memory; `source_name` (e.g. "models/x/model.json") prefixes every error,
// and model.bin errors name the model.bin beside it.
Graph parse_model(const std::string& json_text, const std::vector<uint8_t>& binary, const std::string& source_name);

}  // namespace octet
