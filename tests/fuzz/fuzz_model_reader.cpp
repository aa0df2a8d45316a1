// libFuzzer target: the model reader, octet::parse_model, on a model.json + model.bin pair (fuzz_input.h).
// Every rejection must be an octet::Error. An accepted model must also survive the writer: serialize_model
// accepts it (the writer checks what the reader checks) and the files it writes read back to the same files.
#include "graph/model_format.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const octet::fuzz::ModelInput input = octet::fuzz::split_model_input(data, size);
  octet::fuzz::refuse_only_with_octet_error([&] {
    const octet::Graph graph = octet::parse_model(input.json, input.binary, "fuzz/model.json");
    octet::ModelFiles files;
    try {
      files = octet::serialize_model(graph);
    } catch (const octet::Error& e) {
      octet::fuzz::invariant_broken(std::string("the writer refuses a model the reader accepted: ") + e.what());
    }
    const octet::ModelFiles again =
        octet::serialize_model(octet::parse_model(files.json, files.binary, "fuzz/again.json"));
    if (again.json != files.json || again.binary != files.binary)
      octet::fuzz::invariant_broken("a written model reads back differently");
  });
  return 0;
}
