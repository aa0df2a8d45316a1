// octet: an INT8 inference runtime for image classifiers. The whole public API.
//
//   #include <octet/image.h>                                   // load_image_into; includes octet.h
//
//   auto model = octet::Model::load("resnet50.octet");         // model.json + model.bin, validated
//   octet::Session session(model, {/*batch*/ 1, /*threads*/ 2});
//   octet::load_image_into(*model, "cat.jpg", session.input(0), 0);   // sample 0, model's preprocessing
//   session.run();
//   octet::Tensor logits = session.output(0);                  // float, row-major (NCHW for 4-D)
//
// A Model is immutable after load and may be shared by any number of Sessions on any threads; its weights
// are held once, in the layouts the kernels run, however many Sessions use it. A Session owns its prepared
// kernels and activation arena and is used by one thread at a time. run() allocates
// nothing. Every failure throws octet::Error with a message naming the file, node and field.
//
// Model::load maps model.bin into memory rather than copying it (graph/FORMAT.md): replace a model file by
// writing a new one and renaming it, never by rewriting it in place while a Model is loaded.
//
// run() does not check input values. With NaN or Inf inputs, FP32 outputs depend on the kernels: IEEE
// arithmetic spreads NaN to every output (the reference kernels), while oneDNN's fused Conv + Clip clamps
// NaN to a bound. An INT8 model's input Quantize maps NaN to the lowest level, exactly as -Inf, and +Inf
// to the highest, so its outputs stay finite but meaningless. Check inputs first if they can hold such values.
//
// graph() exposes the in-memory graph (graph/graph.h, installed with the converters' headers under
// include/octet/internal); it is for tools and is not a stable API.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "octet/error.h"

namespace octet {

struct Graph;
namespace kernels {
class Engine;
class PackedWeights;
}  // namespace kernels

// A float tensor in dense row-major order (NCHW for images), owned by the Session that returned it.
struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  float* data = nullptr;
  int64_t elements() const;
};

class Model {
 public:
  // Loads `path`: a folder holding model.json and model.bin, or the model.json file itself.
  static std::shared_ptr<const Model> load(const std::string& path);
  // Wraps an in-memory graph (used by the converter and tests). Validates it.
  static std::shared_ptr<const Model> from_graph(Graph graph);

  const Graph& graph() const { return *graph_; }
  std::vector<std::string> input_names() const;
  std::vector<std::string> output_names() const;
  const std::vector<std::string>& labels() const;
  // Total bytes of constant data (weights), as stored in model.bin.
  size_t weight_bytes() const;
  // Bytes of weights packed into the kernels' layouts so far (by the Sessions created), held once per Model.
  size_t packed_weight_bytes() const;

  ~Model();

 private:
  friend class Session;
  Model();
  std::shared_ptr<const Graph> graph_;
  // Weights in the layouts the kernels run (oneDNN's blocked formats), packed by the first Session that
  // needs them and shared by all later ones.
  std::shared_ptr<kernels::PackedWeights> packed_weights_;
};

// The most threads a Session accepts.
constexpr int kMaxThreads = 1024;

struct SessionOptions {
  int64_t batch = 1;               // replaces the symbolic batch dimension of the inputs (each activation at most
                                   // 4 GiB at this batch, or the Session is refused; graph/FORMAT.md)
  int threads = 0;                 // 0: all cores; at most kMaxThreads
  bool reference_kernels = false;  // plain C++ kernels instead of oneDNN (for checking; slow)
};

// One step of the prepared plan, for inspection and profiling.
struct LayerInfo {
  std::string node;
  std::string op;
  std::string implementation;  // e.g. "brg:avx512_core_vnni", "reference"
};

class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model, SessionOptions options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  // Movable (to hold sessions in containers or return them): the prepared plan stays where it is, so the
  // buffers returned by input() and output() stay valid. A moved-from Session may only be destroyed or
  // assigned to.
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Input buffers to fill before run(), in graph input order or by name.
  Tensor input(size_t index);
  Tensor input(const std::string& name);
  void run();
  // Outputs, valid until the next run().
  Tensor output(size_t index) const;
  Tensor output(const std::string& name) const;
  size_t num_inputs() const;
  size_t num_outputs() const;

  int64_t batch() const;
  size_t arena_bytes() const;    // activation arena (all intermediate tensors, planned by lifetime)
  size_t scratch_bytes() const;  // shared kernel scratchpad
  std::vector<LayerInfo> layers() const;
  // Runs once, timing every step; returns milliseconds per step (same order as layers()).
  std::vector<double> profile();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace octet
