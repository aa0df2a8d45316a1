// The kernel interface: what the executor (runtime/) knows of an op implementation.
//
// Life cycle, as in TensorFlow Lite Micro: create_kernel() is Prepare (validate, create oneDNN primitives,
// reorder weights; may allocate), bind() hands over the arena addresses once planning is done, run() only
// computes and never allocates. Every op family has two implementations: the optimized one (oneDNN where it
// has the primitive) and a plain C++ reference used by tests to check it.
//
// Layout convention for activations (TensorDesc::strides): rank-4 feature maps [N,C,H,W] (written or read by
// a Conv, pool or BatchNormalization) are stored channels-last (NHWC), which is what oneDNN's fastest
// convolutions (brgconv) read and write; other rank-4 activations follow the physical order of the tensor they
// are computed from (plan_activation_layouts); every other rank is dense row-major. Constants are always dense
// row-major. Kernels must honour the strides they are given.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace octet::kernels {

using Strides = std::vector<int64_t>;

struct TensorDesc {
  DType dtype = DType::f32;
  Shape dims;
  Strides strides;  // in elements
  QuantParams quant;

  int64_t elements() const { return shape_elements(dims); }
  // Bytes spanned by the strided layout (elements for dense layouts).
  size_t bytes() const;
};

// Strides of the activation layout above.
Strides activation_strides(const Shape& dims);
// Dense row-major strides.
Strides dense_strides(const Shape& dims);
TensorDesc activation_desc(const TensorInfo& info);
TensorDesc dense_desc(DType dtype, const Shape& dims);
// The descriptors of every tensor of `graph` (shapes and dtypes from `infos`), activations laid out by the
// convention above (kernels/layouts.cpp).
std::map<std::string, TensorDesc> plan_activation_layouts(const Graph& graph,
                                                          const std::map<std::string, TensorInfo>& infos);

struct TensorView {
  const TensorDesc* desc = nullptr;
  void* data = nullptr;
};

// oneDNN engine, stream and thread settings. Opaque here so nothing above kernels/ includes dnnl.
class Engine {
 public:
  Engine();
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Sets the number of threads kernels use (OpenMP under oneDNN); 0 keeps the default (all cores).
void set_num_threads(int threads);
int num_threads();

enum class Implementation { optimized, reference };

// Weights repacked for the kernels (reordered into the layouts oneDNN chose, widened, transposed), shared by
// every Session of a Model: the Model owns one, so any number of sessions hold each packed weight once.
// Keys name the constant (by the address of its bytes, which the Model keeps alive) and the packed form.
// Thread-safe: sessions may be created concurrently.
class PackedWeights {
 public:
  // The buffer stored under `key`; or a new 64-byte aligned buffer of `bytes`, filled by `fill`, stored.
  std::shared_ptr<const void> get(const std::string& key, size_t bytes, const std::function<void(void*)>& fill);
  size_t total_bytes() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<void>> buffers_;
  size_t total_bytes_ = 0;
};

// Everything Prepare needs for one node.
struct KernelContext {
  const Node& node;
  std::vector<TensorDesc> inputs;          // one per node input ("" inputs get an empty desc)
  std::vector<const Constant*> constants;  // per input: the constant's data, or nullptr for activations
  std::vector<TensorDesc> outputs;
  Engine& engine;
  Implementation implementation = Implementation::optimized;
  PackedWeights* packed = nullptr;  // where packed weights are shared; nullptr: the kernel keeps its own copy
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Scratch bytes needed during run() (oneDNN scratchpads, temporaries); shared by all kernels of a session.
  virtual size_t scratch_bytes() const { return 0; }
  // Index of an input whose buffer output 0 may reuse when that input dies here (fused residual sum), or -1.
  virtual int inplace_input() const { return -1; }
  // Arena addresses for each input (nullptr for constants and omitted inputs), each output, and the scratch.
  virtual void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void* scratch) = 0;
  virtual void run() = 0;
  // Name of the implementation that runs, e.g. oneDNN's impl_info_str() ("brg:avx512_core_vnni") or "reference".
  virtual std::string implementation() const { return "reference"; }
};

// Creates the kernel for ctx.node from its op's kernel family (graph/ops.h OpSchema::kernel_family), or
// throws Error naming the node when the op or one of its settings is not supported.
std::unique_ptr<Kernel> create_kernel(const KernelContext& ctx);

// The OpenMP threads a step runs with (and its kernel is created with) in a Session of `session_threads`
// (> 1), by its family's rule (kernels/ops.h Threading). Data movement and single passes (transpose, copy,
// slice, concat, gather, quantize, float binary, pad, layer norm) writing at most kSmallStepElements elements
// and touching at most kSmallStepBytes run on one thread, because a second thread made a ViT's such steps
// slower than one; so do small INT8 attention steps (a MatMul of two quantized activations, a Softmax writing
// u8). Everything else (convolutions, matmuls, softmax, pools, eltwise, an INT8 Add's table lookups) takes them
// all, and so do larger steps (an image's quantization: on one thread MobileNet v1 0.25 at 2 threads took 6%
// longer).
constexpr int64_t kSmallStepElements = int64_t(1) << 18;
constexpr size_t kSmallStepBytes = size_t(512) << 10;
int step_threads(const KernelContext& ctx, int session_threads);
// Whether `family` is registered with both an optimized and a reference kernel (kernels/registry.cpp).
bool has_kernel_family(const std::string& family);
// Whether `op`'s kernels read inputs of any strides and offset at their usual speed (copies and reorders).
bool reads_any_strides(const std::string& op);
// Whether `op`'s kernels read or write rank-4 feature maps channels-last (convolutions, pools, batch norms).
bool works_channels_last(const std::string& op);

// Zero-copy views (kernels/views.cpp). A Reshape (or Flatten, Squeeze, Unsqueeze, Identity), Transpose or
// single-output Slice whose output is its input's buffer seen through other strides and an offset becomes a
// view: no step runs, its readers read the input's buffer. It is made a view when the view's layout is the
// one its readers were planned for (a reshape of a dense tensor, a transpose moving only size-1 dims, a
// slice along the outermost dim), or when every reader reads any strides (a copy, a transpose, a slice:
// Slice -> Reshape -> Transpose then costs one strided copy, not three). Returns, for each view, the
// tensor owning the buffer (never itself a view) and the view's offset in elements; the views' descs in
// `descs` get their strides. Graph outputs and constants are never views.
struct ViewOf {
  std::string base;
  int64_t offset = 0;
};
std::map<std::string, ViewOf> plan_views(const Graph& graph, std::map<std::string, TensorDesc>& descs);

// A reorder between two layouts of the same logical tensor (also dtype conversion f32<->u8/s8 with the
// dst/src quantization parameters). Used by the executor at graph inputs and outputs.
std::unique_ptr<Kernel> create_reorder(const TensorDesc& src, const TensorDesc& dst, Engine& engine);

}  // namespace octet::kernels
