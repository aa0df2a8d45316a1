// octet-convert model.onnx -o OUT: converts an ONNX classifier into octet's model.json + model.bin.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <map>

#include "converters/onnx_import.h"
#include "graph/model_format.h"
#include "octet/octet.h"

int main(int argc, char** argv) {
  CLI::App app{"octet-convert: ONNX image classifier -> octet model (model.json + model.bin)"};
  std::string input, output;
  app.add_option("model", input, "ONNX model file")->required();
  app.add_option("-o,--output", output, "output folder (created)")->required();
  CLI11_PARSE(app, argc, argv);
  try {
    octet::Graph graph = octet::import_onnx(input);
    // Loading through the runtime's own validation guarantees what we write can be read back.
    auto model = octet::Model::from_graph(graph);
    octet::write_model(graph, output);
    std::map<std::string, int> ops;
    for (const octet::Node& node : graph.nodes) ops[node.op]++;
    std::printf("%s -> %s: %zu nodes (", input.c_str(), output.c_str(), graph.nodes.size());
    bool first = true;
    for (const auto& kv : ops) std::printf("%s%s %d", first ? "" : ", ", kv.first.c_str(), kv.second), first = false;
    std::printf("), weights %.1f MB\n", static_cast<double>(model->weight_bytes()) / 1e6);
  } catch (const octet::Error& e) {
    std::fprintf(stderr, "octet-convert: %s\n", e.what());
    return 1;
  }
  return 0;
}
