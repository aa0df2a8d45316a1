// Hostile and malformed models, each built here with ONNX's protobuf classes (nothing committed): refused
// by the importer with an octet::Error naming the node, input or initializer, and by octet-convert with
// exit code 1 and the same message, never a signal. Models that got past the converter before and crashed
// the runtime are also refused at Model::load. Tool flags out of range exit 1. And write_model replaces a
// model folder safely: a process with the old model mapped keeps it, a failed write leaves it whole.
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

#include "converters/onnx/import.h"
#include "graph/model_format.h"
#include "octet/octet.h"
#include "tests/support/onnx_builder.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using namespace octet;
using octet::onnx::import_onnx;

namespace {

const fs::path kScratch = fs::path(OCTET_BUILD_DIR) / "test-hostile-models";

using octet::testing::read_text;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// An ONNX model under construction, saved under the scratch folder.
struct Onnx : octet::testing::OnnxBuilder {
  using OnnxBuilder::OnnxBuilder;
  std::string save(const std::string& name) const {
    fs::create_directories(kScratch);
    const std::string path = (kScratch / (name + ".onnx")).string();
    std::ofstream file(path, std::ios::binary);
    REQUIRE(model.SerializeToOstream(&file));
    return path;
  }
};

// x[1,2,4,4] -> Conv(w[3,2,3,3], pads 1) -> Relu -> y: a small valid model the cases below break.
Onnx small_conv(const std::vector<int64_t>& input_shape = {-1, 2, 4, 4}) {
  Onnx m;
  m.input("x", input_shape);
  m.floats("w", {3, 2, 3, 3}, 54);
  Onnx::attribute(m.node("Conv", {"x", "w"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
  m.node("Relu", {"c"}, {"y"}, "relu");
  m.output("y");
  return m;
}

struct Run {
  int exit_code;  // -1: ended by a signal
  std::string out, err;
};

Run run_tool(const std::vector<std::string>& command) {
  const octet::testing::ProcessResult r = octet::testing::run_process(command, kScratch);
  return {r.exit_code, r.out, r.err};
}

std::string import_error(const std::string& path) {
  try {
    import_onnx(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "imported";
}

struct HostileCase {
  std::string name;
  std::function<Onnx()> build;
  std::string expected;  // part of the importer's message
};

const std::vector<HostileCase>& hostile_cases() {
  static const std::vector<HostileCase> cases = {
      {"ConstantOfShape without inputs",
       [] {
         Onnx m = small_conv();
         m.node("ConstantOfShape", {}, {"k"}, "fill");
         return m;
       },
       "node 'fill' (ConstantOfShape): has 0 inputs, expects 1"},
      {"Shape without inputs",
       [] {
         Onnx m = small_conv();
         m.node("Shape", {}, {"s"}, "shape");
         return m;
       },
       "node 'shape' (Shape): has 0 inputs, expects 1"},
      {"Dropout without inputs",
       [] {
         Onnx m = small_conv();
         m.node("Dropout", {}, {"d"}, "drop");
         return m;
       },
       "node 'drop' (Dropout): has 0 inputs, expects 1..3"},
      {"opset-11 Softmax without inputs",
       [] {
         Onnx m(11);
         m.input("x", {1, 4});
         m.node("Softmax", {}, {"y"}, "softmax");
         m.output("y");
         return m;
       },
       "node 'softmax' (Softmax): has 0 inputs, expects 1"},
      {"Gather with one input",
       [] {
         Onnx m = small_conv();
         m.ints("k", {2}, {1, 2});
         m.node("Gather", {"k"}, {"g"}, "gather");
         return m;
       },
       "node 'gather' (Gather): has 1 inputs, expects 2"},
      {"int64 Div of INT64_MIN by -1",
       [] {
         Onnx m = small_conv();
         m.ints("lowest", {1}, {std::numeric_limits<int64_t>::min()});
         m.ints("minus_one", {1}, {-1});
         m.node("Div", {"lowest", "minus_one"}, {"q"}, "div");
         return m;
       },
       "node 'div' (Div): -9223372036854775808 Div -1 overflows int64"},
      {"int64 Mul overflowing",
       [] {
         Onnx m = small_conv();
         m.ints("big", {1}, {int64_t{1} << 62});
         m.node("Mul", {"big", "big"}, {"p"}, "mul");
         return m;
       },
       "node 'mul' (Mul): 4611686018427387904 Mul 4611686018427387904 overflows int64"},
      {"initializer declaring 2^62 floats with no data",
       [] {
         Onnx m = small_conv();
         m.floats("huge", {int64_t{1} << 62}, 0);
         m.ints("index", {1}, {0});
         m.node("Gather", {"huge", "index"}, {"g"}, "gather");
         return m;
       },
       "initializer 'huge': shape [4611686018427387904] of f32 is larger than the limit of 4294967296 bytes"},
      {"ConstantOfShape of [100000,100000] (40 GB)",
       [] {
         Onnx m = small_conv();
         m.ints("shape", {2}, {100000, 100000});
         m.node("ConstantOfShape", {"shape"}, {"k"}, "fill");
         return m;
       },
       "node 'fill' (ConstantOfShape): folding would make a constant of shape [100000,100000] of f32, over the limit"},
      {"ConstantOfShape of [20000,20000] (1.6 GB)",
       [] {
         Onnx m = small_conv();
         m.ints("shape", {2}, {20000, 20000});
         m.node("ConstantOfShape", {"shape"}, {"k"}, "fill");
         return m;
       },
       "node 'fill' (ConstantOfShape): folding would make a constant of shape [20000,20000] of f32, over the limit"},
      {"graph input also an initializer",
       [] {
         Onnx m = small_conv({1, 2, 4, 4});
         m.floats("x", {1, 2, 4, 4}, 32);
         return m;
       },
       "graph input 'x' is also an initializer"},
      {"Conv on a constant",
       [] {
         Onnx m = small_conv();
         m.floats("image", {1, 2, 4, 4}, 32);
         Onnx::attribute(m.node("Conv", {"image", "w"}, {"c2"}, "const_conv"), "pads", {1, 1, 1, 1});
         m.node("Add", {"y", "c2"}, {"z"}, "add");
         m.graph->mutable_output(0)->set_name("z");
         return m;
       },
       "node 'const_conv' (Conv): input 0 'image' is a constant"},
      {"batch 0",
       [] {
         return small_conv({0, 2, 4, 4});
       },
       "graph input 'x' has shape [0,2,4,4], which holds no elements (batch 0?)"},
      {"Gemm with 0 outputs (0 classes)",
       [] {
         Onnx m;
         m.input("x", {-1, 4});
         m.floats("w", {0, 4}, 0);
         Onnx::attribute(m.node("Gemm", {"x", "w"}, {"y"}, "classifier"), "transB", int64_t{1});
         m.output("y");
         return m;
       },
       "node 'classifier' (Gemm): B [0,4] is empty (0 outputs of 4 inputs)"},
      {"Conv with 0 output channels",
       [] {
         Onnx m;
         m.input("x", {-1, 2, 4, 4});
         m.floats("w", {0, 2, 3, 3}, 0);
         m.node("Conv", {"x", "w"}, {"y"}, "conv");
         m.output("y");
         return m;
       },
       "node 'conv' (Conv): weights W [0,2,3,3] are empty"},
      {"Clip with min > max",
       [] {
         Onnx m = small_conv();
         m.floats("lo", {}, 1, 2.0f);
         m.floats("hi", {}, 1, 1.0f);
         m.node("Clip", {"y", "lo", "hi"}, {"clipped"}, "clip");
         m.graph->mutable_output(0)->set_name("clipped");
         return m;
       },
       "node 'clip' (Clip): clip bounds min=2.000000 and max=1.000000 are not an interval"},
      {"Conv weights of int64",
       [] {
         Onnx m;
         m.input("x", {-1, 2, 4, 4});
         std::vector<int64_t> ones(54, 1);
         m.ints("w", {3, 2, 3, 3}, ones);
         m.node("Conv", {"x", "w"}, {"y"}, "conv");
         m.output("y");
         return m;
       },
       "node 'conv' (Conv): weights W is s64; Conv takes f32 weights (s8 when quantized)"},
      {"input of 12 GB",
       [] {
         return small_conv({-1, 2, 40000, 40000});
       },
       "graph input 'x' [1,2,40000,40000] of f32 is larger than the limit of 4294967296 bytes"},
      {"input of 256 GB",
       [] {
         return small_conv({-1, 2, 200000, 160000});
       },
       "graph input 'x' [1,2,200000,160000] of f32 is larger than the limit"},
  };
  return cases;
}

std::string case_file_name(const std::string& name) {
  std::string file = name;
  for (char& c : file)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return file;
}

// A small valid model folder (FP32), converted from small_conv(): the base for model.json edits.
std::string small_model_folder() {
  static const std::string folder = [] {
    const std::string out = (kScratch / "small-model").string();
    Graph graph = import_onnx(small_conv().save("small-conv"));
    write_model(graph, out);
    return out;
  }();
  return folder;
}

std::string edited_model(const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
  const fs::path folder = kScratch / name;
  fs::create_directories(folder);
  nlohmann::json j = nlohmann::json::parse(read_text(fs::path(small_model_folder()) / "model.json"));
  edit(j);
  std::ofstream(folder / "model.json") << j.dump(1);
  fs::copy_file(fs::path(small_model_folder()) / "model.bin", folder / "model.bin",
                fs::copy_options::overwrite_existing);
  return folder.string();
}

std::string load_error(const std::string& folder) {
  try {
    Model::load(folder);
  } catch (const Error& e) {
    return e.what();
  }
  return "loaded";
}

}  // namespace

TEST_CASE("hostile ONNX models are refused at import, naming the node, input or initializer") {
  for (const HostileCase& c : hostile_cases()) {
    CAPTURE(c.name);
    const std::string path = c.build().save(case_file_name(c.name));
    const std::string error = import_error(path);
    CHECK_MESSAGE(contains(error, c.expected), error);
    CHECK(contains(error, path));
  }
}

TEST_CASE("octet-convert exits 1 with the importer's message on every hostile model, never by a signal") {
  for (const HostileCase& c : hostile_cases()) {
    CAPTURE(c.name);
    const std::string path = c.build().save(case_file_name(c.name));
    const std::string out = (kScratch / "out" / case_file_name(c.name)).string();
    fs::remove_all(out);
    const Run r = run_tool({OCTET_CONVERT, path, "-o", out});
    CHECK(r.exit_code == 1);
    CHECK_MESSAGE(contains(r.err, c.expected), r.err);
    CHECK_FALSE(fs::exists(fs::path(out) / "model.json"));
  }
}

TEST_CASE("an empty file or a folder as the ONNX model is named as such") {
  const fs::path empty = kScratch / "empty.onnx";
  std::ofstream(empty).close();
  CHECK(import_error(empty.string()) == empty.string() + ": is empty (0 bytes), not an ONNX model");
  const fs::path folder = kScratch / "folder.onnx";
  fs::create_directories(folder);
  CHECK(import_error(folder.string()) == folder.string() + ": is a folder, not an ONNX model file");
}

TEST_CASE("models the runtime cannot run are refused at Model::load, naming the input or node") {
  REQUIRE(load_error(small_model_folder()) == "loaded");
  // What the converter wrote before for a graph input that is also an initializer.
  CHECK(contains(load_error(edited_model("no-inputs",
                                         [](nlohmann::json& j) {
                                           j["inputs"] = nlohmann::json::array();
                                           j["tensors"].erase("x");
                                         })),
                 "inputs: is empty; a model needs at least one input"));
  CHECK(contains(load_error(edited_model("batch-0",
                                         [](nlohmann::json& j) {
                                           j["inputs"][0]["shape"] = {0, 2, 4, 4};
                                           j["tensors"]["x"]["shape"] = {0, 2, 4, 4};
                                         })),
                 "inputs[0].shape: [0,2,4,4] holds no elements; a model input needs at least one (batch 0?)"));
  CHECK(contains(load_error(edited_model("huge-input",
                                         [](nlohmann::json& j) {
                                           j["inputs"][0]["shape"] = {"N", 2, 40000, 40000};
                                           j["tensors"]["x"]["shape"] = {"N", 2, 40000, 40000};
                                         })),
                 "larger than the limit of 4294967296 bytes"));
  CHECK(contains(load_error(edited_model("conv-on-constant",
                                         [](nlohmann::json& j) {
                                           for (auto& node : j["nodes"])
                                             if (node["op"] == "Conv") node["inputs"][0] = "w";
                                         })),
                 "node 'conv' (Conv): input 0 'w' is a constant"));
}

TEST_CASE("Session refuses thread counts and batches it cannot serve, with octet::Error") {
  auto model = Model::load(small_model_folder());
  auto error = [&](SessionOptions options) -> std::string {
    try {
      Session session(model, options);
    } catch (const Error& e) {
      return e.what();
    }
    return "created";
  };
  CHECK(contains(error({1, -100, false}), "threads must be 0 (all cores) to 1024, got -100"));
  CHECK(contains(error({1, 100000, false}), "threads must be 0 (all cores) to 1024, got 100000"));
  CHECK(contains(error({1000000000, 1, false}),
                 "graph input 'x' [1000000000,2,4,4] of f32 at batch 1000000000 is larger than the limit"));
  CHECK(contains(error({int64_t{1} << 62, 1, false}), "at batch 4611686018427387904 is larger than the limit"));
  CHECK(error({2, 1, false}) == "created");
}

TEST_CASE("tool flags out of range exit 1 with a message, never a signal") {
  const std::string model = small_model_folder();
  const std::string classify = std::string(OCTET_BUILD_DIR) + "/samples/classify";
  const std::string benchmark = std::string(OCTET_BUILD_DIR) + "/samples/benchmark";
  const std::string image = (kScratch / "image.ppm").string();
  struct Case {
    std::vector<std::string> command;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{classify, model, image, "--threads", "100000"}, "--threads: Value 100000 not in range 0 to 1024"},
      {{classify, model, image, "--threads", "-100"}, "--threads: Value -100 not in range 0 to 1024"},
      {{benchmark, model, "--threads", "100000"}, "--threads: Value 100000 not in range 0 to 1024"},
      {{benchmark, model, "--batch", "1000000000", "--iters", "1"}, "at batch 1000000000 is larger than the limit"},
      {{benchmark, model, "--batch", "0"}, "--batch: Value 0 not in range"},
      {{OCTET_CONVERT, "x.onnx", "-o", (kScratch / "o").string(), "--calibrate", ""}, "--calibrate: is empty"},
      {{OCTET_CONVERT, "x.onnx", "-o", (kScratch / "o").string(), "--calibrate", "d", "--calib-count", "-1"},
       "--calib-count: Value -1 not in range"},
      {{OCTET_CONVERT, "x.onnx", "-o", (kScratch / "o").string(), "--calibrate", "d", "--calib-count",
        "18446744073709551616"},
       "--calib-count"},
      {{benchmark, model, "--iters", "0"}, "--iters: Value 0 not in range 1 to 1000000"},
      {{benchmark, model, "--iters", "1", "--json", (kScratch / "no-such-folder" / "b.json").string()},
       "--json '" + (kScratch / "no-such-folder" / "b.json").string() + "': cannot write: No such file or directory"},
      {{std::string(OCTET_BUILD_DIR) + "/samples/evaluate", model, "--images", image, "--json",
        (kScratch / "no-such-folder" / "e.json").string()},
       "--json '" + (kScratch / "no-such-folder" / "e.json").string() + "': cannot write: No such file or directory"},
      {{OCTET_CONVERT, small_conv().save("small-conv"), "-o", (kScratch / "qdq-out").string(), "--export-qdq",
        (kScratch / "no-such-folder" / "m.onnx").string()},
       "--export-qdq '" + (kScratch / "no-such-folder" / "m.onnx").string() +
           "': cannot write: No such file or directory"},
      {{OCTET_CONVERT, small_conv().save("small-conv"), "-o", (kScratch / "qdq-out").string(), "--sensitivity-plot",
        kScratch.string()},
       "--sensitivity-plot '" + kScratch.string() + "': is a folder; give a file name"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.command);
    const Run r = run_tool(c.command);
    CHECK(r.exit_code == 1);
    CHECK_MESSAGE(contains(r.err, c.expected), r.err);
  }
  CHECK_FALSE(fs::exists(kScratch / "qdq-out"));  // refused before the model folder was written
}

TEST_CASE("benchmark and evaluate: --json FILE writes the file, --json - prints the JSON instead") {
  const std::string model = small_model_folder();
  const std::string benchmark = std::string(OCTET_BUILD_DIR) + "/samples/benchmark";
  const fs::path json_file = kScratch / "benchmark.json";
  fs::remove(json_file);
  Run r = run_tool({benchmark, model, "--iters", "2", "--warmup", "0", "--threads", "1", "--json", json_file.string()});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const nlohmann::json written = nlohmann::json::parse(read_text(json_file));
  CHECK(written["batch"] == 1);
  CHECK(written["p50_ms"].get<double>() > 0);
  r = run_tool({benchmark, model, "--iters", "2", "--warmup", "0", "--threads", "1", "--json", "-"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(nlohmann::json::parse(r.out)["threads"] == 1);  // stdout holds the JSON object alone
}

TEST_CASE("classify and evaluate refuse non-finite outputs, naming the image" * doctest::test_suite("models")) {
  // Weights of 3e38 (a finite float): every logit overflows to inf. Converted with preprocessing so the
  // tools can feed it the shared goldfish.
  Onnx m;
  m.input("x", {-1, 3, 8, 8});
  m.floats("w", {4, 3, 1, 1}, 12, 3e38f);
  m.node("Conv", {"x", "w"}, {"c"}, "conv");
  m.node("GlobalAveragePool", {"c"}, {"g"}, "gap");
  m.node("Flatten", {"g"}, {"logits"}, "flatten");
  m.output("logits");
  const std::string folder = (kScratch / "infinite").string();
  const Run converted = run_tool({OCTET_CONVERT, m.save("infinite"), "-o", folder, "--preset", "unit", "--crop", "8"});
  REQUIRE_MESSAGE(converted.exit_code == 0, converted.err);
  const std::string goldfish = std::string(OCTET_SHARED_DIR) + "/data/imagenet-samples/n01443537_goldfish.JPEG";
  const Run classify =
      run_tool({std::string(OCTET_BUILD_DIR) + "/samples/classify", folder, goldfish, "--threads", "1"});
  CHECK(classify.exit_code == 1);
  CHECK_MESSAGE(contains(classify.err, goldfish + ": output 0 of the model is inf (not finite)"), classify.err);
  const fs::path list = kScratch / "goldfish.txt";
  std::ofstream(list) << goldfish << "\n";
  const Run evaluate = run_tool(
      {std::string(OCTET_BUILD_DIR) + "/samples/evaluate", folder, "--images", list.string(), "--threads", "1"});
  CHECK(evaluate.exit_code == 1);
  CHECK_MESSAGE(contains(evaluate.err, goldfish + ": the model's output 0 is inf (not finite)"), evaluate.err);
}

// ---- safe writes: write_model replaces a model folder's files, never rewrites them in place ----------------

namespace {

// Graphs of the small Conv with every weight `value`, and `channels` output channels (1 makes a smaller model.bin).
Graph conv_graph(float value, int64_t channels) {
  Onnx m;
  m.input("x", {-1, 2, 4, 4});
  m.floats("w", {channels, 2, 3, 3}, size_t(channels) * 18, value);
  Onnx::attribute(m.node("Conv", {"x", "w"}, {"y"}, "conv"), "pads", {1, 1, 1, 1});
  m.output("y");
  return import_onnx(m.save("conv-" + std::to_string(channels)));
}

uint64_t checksum(const Graph& graph) {
  uint64_t sum = 1469598103934665603ull;
  for (const auto& kv : graph.constants)
    for (size_t i = 0; i < kv.second.bytes->size(); ++i) sum = (sum ^ kv.second.bytes->data()[i]) * 1099511628211ull;
  return sum;
}

std::vector<std::string> leftovers(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) {
    std::string name = entry.path().filename().string();
    if (name != "model.json" && name != "model.bin") names.push_back(name);
  }
  return names;
}

}  // namespace

TEST_CASE("re-converting a model another process has mapped: the reader keeps the old model, no SIGBUS") {
  const fs::path folder = kScratch / "mapped";
  fs::remove_all(folder);
  write_model(conv_graph(0.5f, 8), folder.string());
  const uint64_t old_sum = checksum(read_model(folder.string()));
  int ready[2], go[2];
  REQUIRE(pipe(ready) == 0);
  REQUIRE(pipe(go) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The reader: maps the model, lets the writer replace it, then touches every weight page again (the
    // old in-place rewrite made these reads die by SIGBUS, or see the new weights beside the old scales).
    int code = 2;
    try {
      auto model = Model::load(folder.string());
      const uint64_t before = checksum(model->graph());
      for (const auto& kv : model->graph().constants) kv.second.bytes->release_pages();  // force re-reads from the file
      char byte = 1;
      if (write(ready[1], &byte, 1) == 1 && read(go[0], &byte, 1) == 1)
        code = before == old_sum && checksum(model->graph()) == old_sum ? 0 : 1;
    } catch (...) {
      code = 3;
    }
    _exit(code);
  }
  char byte = 0;
  REQUIRE(read(ready[0], &byte, 1) == 1);
  write_model(conv_graph(0.25f, 8), folder.string());  // same size, other weights
  write_model(conv_graph(0.75f, 1), folder.string());  // smaller model.bin
  REQUIRE(write(go[1], &byte, 1) == 1);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK_MESSAGE(WIFEXITED(status), "the reader died by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
  CHECK(WEXITSTATUS(status) == 0);
  for (int fd : {ready[0], ready[1], go[0], go[1]}) close(fd);
  CHECK(checksum(read_model(folder.string())) == checksum(conv_graph(0.75f, 1)));
  CHECK(leftovers(folder).empty());
}

TEST_CASE("a write that fails leaves the previous model as it was, and no temporaries") {
  const fs::path folder = kScratch / "failing";
  fs::remove_all(folder);
  write_model(conv_graph(0.5f, 1), folder.string());
  const std::string json = read_text(folder / "model.json"), bin = read_text(folder / "model.bin");

  SUBCASE("the disk fills halfway through model.bin") {
    // A child whose files may not grow past 1 KB: writing the new model.bin (4.6 KB) fails with EFBIG
    // after its first kilobyte, as on a full disk.
    const Graph bigger = conv_graph(0.25f, 64);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      signal(SIGXFSZ, SIG_IGN);
      rlimit limit{1024, 1024};
      setrlimit(RLIMIT_FSIZE, &limit);
      int code = 1;
      try {
        write_model(bigger, folder.string());
      } catch (const Error& e) {
        code = contains(e.what(), "model.bin: write failed after 1024 of ") &&
                       contains(e.what(), "the previous file is unchanged")
                   ? 0
                   : 2;
      }
      _exit(code);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  SUBCASE("model.json is a folder") {
    fs::remove(folder / "model.json");
    fs::create_directory(folder / "model.json");
    const std::string error = [&] {
      try {
        write_model(conv_graph(0.25f, 64), folder.string());
      } catch (const Error& e) {
        return std::string(e.what());
      }
      return std::string("written");
    }();
    CHECK(contains(error, "model.json: exists and is not a regular file; not replaced"));
    CHECK(fs::is_directory(folder / "model.json"));
    fs::remove(folder / "model.json");
    std::ofstream(folder / "model.json", std::ios::binary) << json;
  }
  CHECK(read_text(folder / "model.json") == json);
  CHECK(read_text(folder / "model.bin") == bin);
  CHECK(leftovers(folder).empty());
  CHECK(checksum(read_model(folder.string())) == checksum(conv_graph(0.5f, 1)));
}
