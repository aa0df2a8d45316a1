// The executor. Construction is Prepare: shapes are inferred for the batch, one kernel per node is created
// (oneDNN primitives built, weights reordered), activation buffers are planned into one arena by lifetime,
// and every kernel is bound to its addresses. run() is then a flat loop over the prepared steps.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>

#include "graph/ops.h"
#include "graph/shape_inference.h"
#include "kernels/kernel.h"
#include "octet/octet.h"
#include "runtime/arena_planner.h"

namespace octet {
namespace {

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t, AlignedFree>;

AlignedBuffer allocate(size_t bytes) {
  size_t rounded = (bytes + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
  void* p = std::aligned_alloc(kArenaAlignment, rounded == 0 ? kArenaAlignment : rounded);
  if (!p) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
  return AlignedBuffer(static_cast<uint8_t*>(p));
}

// One entry of the flat run loop: a node's kernel, or a reorder between a user buffer and the arena.
struct Step {
  std::unique_ptr<kernels::Kernel> kernel;
  std::string name, op;
  std::vector<std::string> inputs, outputs;  // tensor names ("" = none); user buffers are named "<io>:name"
  int threads = 0;                           // OpenMP threads for this step (0: the session's)
};

}  // namespace

struct Session::Impl {
  std::shared_ptr<const Model> model;
  SessionOptions options;
  kernels::Engine engine;
  std::map<std::string, kernels::TensorDesc> descs;  // arena tensors and user I/O buffers
  std::map<std::string, kernels::ViewOf> views;      // tensors that are views of another's buffer (no step)
  std::vector<Step> steps;
  std::deque<Node> synthetic_nodes;                        // nodes of steps that are not graph nodes (stable addresses)
  std::map<std::string, std::vector<float>> user_buffers;  // dense f32 input/output buffers, by "<io>:name"
  std::vector<Tensor> inputs, outputs;
  AlignedBuffer arena, scratch;
  size_t arena_bytes = 0, scratch_bytes = 0;

  void prepare();
  void plan_and_bind();
  void* address(const std::string& tensor, const std::map<std::string, size_t>& offsets);
};

static std::string input_key(const std::string& name) { return "input:" + name; }
static std::string output_key(const std::string& name) { return "output:" + name; }

void Session::Impl::prepare() {
  const Graph& graph = model->graph();
  descs = kernels::plan_activation_layouts(graph, infer_shapes(graph, options.batch));
  // The reference kernels copy every tensor, so tests comparing the two check the views too.
  if (!options.reference_kernels) views = kernels::plan_views(graph, descs);
  // Graph inputs arrive in dense row-major f32 user buffers and are reordered into the arena layout.
  for (const std::string& name : graph.inputs) {
    const kernels::TensorDesc& arena_desc = descs.at(name);
    if (arena_desc.dtype != DType::f32)
      throw Error("graph input '" + name + "' is " + dtype_name(arena_desc.dtype) + ", octet feeds f32 inputs");
    kernels::TensorDesc user = kernels::dense_desc(DType::f32, arena_desc.dims);
    descs[input_key(name)] = user;
    steps.push_back(
        {kernels::create_reorder(user, arena_desc, engine), "input " + name, "Reorder", {input_key(name)}, {name}});
  }
  for (const Node& node : graph.nodes) {
    if (node.outputs.size() == 1 && views.count(node.outputs[0])) continue;
    kernels::KernelContext ctx{
        node,
        {},
        {},
        {},
        engine,
        options.reference_kernels ? kernels::Implementation::reference : kernels::Implementation::optimized,
        model->packed_weights_.get()};
    for (const std::string& in : node.inputs) {
      ctx.inputs.push_back(in.empty() ? kernels::TensorDesc{} : descs.at(in));
      ctx.constants.push_back(in.empty() ? nullptr : graph.find_constant(in));
    }
    for (const std::string& out : node.outputs) ctx.outputs.push_back(descs.at(out));
    // Created with the threads it will run with: oneDNN partitions work by the thread count it sees.
    const int threads = kernels::step_threads(ctx, options.threads);
    kernels::set_num_threads(threads);
    steps.push_back({kernels::create_kernel(ctx), node.name, node.op, node.inputs, node.outputs, threads});
    kernels::set_num_threads(options.threads);
    // The kernel has repacked what it needs of its constants: let model.bin's pages go now, so a session's
    // peak memory holds the weights once (in oneDNN's layouts), not twice.
    for (const Constant* c : ctx.constants)
      if (c) c->bytes->release_pages();
  }
  for (const std::string& name : graph.outputs) {
    const kernels::TensorDesc& arena_desc = descs.at(name);
    kernels::TensorDesc user = kernels::dense_desc(DType::f32, arena_desc.dims);
    descs[output_key(name)] = user;
    if (graph.is_constant(name)) {
      // A fully folded output: filled once here, run() never touches it.
      const Constant& c = *graph.find_constant(name);
      if (c.dtype != DType::f32)
        throw Error("graph output '" + name + "' is a constant " + dtype_name(c.dtype) + " tensor");
      user_buffers[output_key(name)] = c.as_floats();
      continue;
    }
    if (arena_desc.quant.present()) {
      // A quantized output (calibration and bias correction read intermediate u8 tensors) is dequantized
      // into the float user buffer by the Dequantize kernel itself.
      const Node& node =
          synthetic_nodes.emplace_back(Node{"output " + name, "Dequantize", {name}, {output_key(name)}, {}});
      kernels::KernelContext ctx{node, {arena_desc}, {nullptr}, {user}, engine, kernels::Implementation::optimized};
      steps.push_back({kernels::create_kernel(ctx), node.name, node.op, node.inputs, node.outputs});
      continue;
    }
    steps.push_back(
        {kernels::create_reorder(arena_desc, user, engine), "output " + name, "Reorder", {name}, {output_key(name)}});
  }
  for (const auto& kv : descs) {
    bool user = kv.first.rfind("input:", 0) == 0 || kv.first.rfind("output:", 0) == 0;
    if (user && !user_buffers.count(kv.first))
      user_buffers[kv.first].assign(static_cast<size_t>(kv.second.elements()), 0.0f);
  }
  for (const std::string& name : graph.inputs)
    inputs.push_back({name, descs.at(name).dims, user_buffers.at(input_key(name)).data()});
  for (const std::string& name : graph.outputs)
    outputs.push_back({name, descs.at(name).dims, user_buffers.at(output_key(name)).data()});
}

void Session::Impl::plan_and_bind() {
  const Graph& graph = model->graph();
  // Lifetimes in steps. A tensor is an arena buffer unless it is a constant, a user buffer or a view; a view's
  // readers keep its base's buffer alive.
  auto in_arena = [&](const std::string& t) { return !t.empty() && !graph.is_constant(t) && !user_buffers.count(t); };
  auto owner = [&](const std::string& t) -> const std::string& {
    auto v = views.find(t);
    return v == views.end() ? t : v->second.base;
  };
  std::map<std::string, int> last_use;
  for (size_t s = 0; s < steps.size(); ++s)
    for (const std::string& t : steps[s].inputs)
      if (in_arena(t)) last_use[owner(t)] = static_cast<int>(s);
  std::vector<BufferRequest> requests;
  std::map<std::string, size_t> buffer_of;
  for (size_t s = 0; s < steps.size(); ++s) {
    int step = static_cast<int>(s);
    const Step& st = steps[s];
    for (size_t o = 0; o < st.outputs.size(); ++o) {
      const std::string& t = st.outputs[o];
      if (!in_arena(t)) continue;
      int share = o == 0 ? st.kernel->inplace_input() : -1;
      // In place: the output takes over an input's buffer when that input (not a view) and every view of it
      // die at this step (fused sum), and the step reads that buffer through no other input.
      bool alone = true;
      for (size_t i = 0; share >= 0 && i < st.inputs.size(); ++i)
        alone = alone &&
                (static_cast<int>(i) == share || !in_arena(st.inputs[i]) || owner(st.inputs[i]) != st.inputs[share]);
      if (share >= 0 && alone && in_arena(st.inputs[share]) && !views.count(st.inputs[share]) &&
          last_use[st.inputs[share]] == step && descs.at(st.inputs[share]).bytes() == descs.at(t).bytes()) {
        buffer_of[t] = buffer_of.at(st.inputs[share]);
      } else {
        buffer_of[t] = requests.size();
        requests.push_back({descs.at(t).bytes(), step, step});
      }
      BufferRequest& r = requests[buffer_of[t]];
      r.last_step = std::max(r.last_step, last_use.count(t) ? last_use[t] : step);
    }
  }
  ArenaPlan plan = plan_arena(requests);
  arena_bytes = plan.total_bytes;
  arena = allocate(arena_bytes);
  for (const Step& st : steps) scratch_bytes = std::max(scratch_bytes, st.kernel->scratch_bytes());
  scratch = allocate(scratch_bytes);

  std::map<std::string, size_t> offsets;
  for (const auto& kv : buffer_of) offsets[kv.first] = plan.offsets[kv.second];
  for (const auto& kv : views)
    offsets[kv.first] =
        offsets.at(kv.second.base) + static_cast<size_t>(kv.second.offset) * dtype_size(descs.at(kv.first).dtype);
  for (Step& st : steps) {
    std::vector<void*> ins, outs;
    for (const std::string& t : st.inputs) ins.push_back(address(t, offsets));
    for (const std::string& t : st.outputs) outs.push_back(address(t, offsets));
    st.kernel->bind(ins, outs, scratch.get());
  }
}

void* Session::Impl::address(const std::string& tensor, const std::map<std::string, size_t>& offsets) {
  if (tensor.empty() || model->graph().is_constant(tensor)) return nullptr;
  auto user = user_buffers.find(tensor);
  if (user != user_buffers.end()) return user->second.data();
  return arena.get() + offsets.at(tensor);
}

Session::Session(std::shared_ptr<const Model> model, SessionOptions options) : impl_(std::make_unique<Impl>()) {
  if (!model) throw Error("Session needs a model");
  if (options.batch < 1) throw Error("batch size must be at least 1, got " + std::to_string(options.batch));
  // OpenMP takes any count and fails inside its own allocator far above the machine (libgomp segfaulted at
  // 100000 threads): more threads than kMaxThreads is refused rather than attempted.
  if (options.threads < 0 || options.threads > kMaxThreads)
    throw Error("threads must be 0 (all cores) to " + std::to_string(kMaxThreads) + ", got " +
                std::to_string(options.threads));
  // Only a symbolic batch dimension (N) follows options.batch; a model exported with a fixed one cannot.
  for (const std::string& name : model->graph().inputs) {
    const Shape& shape = model->graph().tensor(name).shape;
    if (options.batch != 1 && (shape.empty() || shape[0] != kBatchDim))
      throw Error("batch " + std::to_string(options.batch) + " requested, but input '" + name +
                  "' has the fixed shape " + shape_str(shape) + " (no symbolic batch dimension N)");
  }
  impl_->model = std::move(model);
  impl_->options = options;
  kernels::set_num_threads(options.threads);
  impl_->prepare();
  impl_->plan_and_bind();
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

void Session::run() {
  int threads = impl_->options.threads;
  kernels::set_num_threads(threads);
  for (Step& step : impl_->steps) {
    const int want = step.threads ? step.threads : impl_->options.threads;
    if (want != threads) kernels::set_num_threads(threads = want);
    step.kernel->run();
  }
  if (threads != impl_->options.threads) kernels::set_num_threads(impl_->options.threads);
}

std::vector<double> Session::profile() {
  int threads = impl_->options.threads;
  kernels::set_num_threads(threads);
  std::vector<double> ms;
  ms.reserve(impl_->steps.size());
  for (Step& step : impl_->steps) {
    const int want = step.threads ? step.threads : impl_->options.threads;
    if (want != threads) kernels::set_num_threads(threads = want);
    auto start = std::chrono::steady_clock::now();
    step.kernel->run();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return ms;
}

static size_t find_index(const std::vector<Tensor>& list, const std::string& name, const char* what) {
  for (size_t i = 0; i < list.size(); ++i)
    if (list[i].name == name) return i;
  std::string known;
  for (const Tensor& t : list) known += (known.empty() ? "" : ", ") + t.name;
  throw Error(std::string("model has no ") + what + " named '" + name + "' (it has: " + known + ")");
}

Tensor Session::input(size_t index) {
  if (index >= impl_->inputs.size()) throw Error("input index " + std::to_string(index) + " out of range");
  return impl_->inputs[index];
}
Tensor Session::input(const std::string& name) { return impl_->inputs[find_index(impl_->inputs, name, "input")]; }
Tensor Session::output(size_t index) const {
  if (index >= impl_->outputs.size()) throw Error("output index " + std::to_string(index) + " out of range");
  return impl_->outputs[index];
}
Tensor Session::output(const std::string& name) const {
  return impl_->outputs[find_index(impl_->outputs, name, "output")];
}
size_t Session::num_inputs() const { return impl_->inputs.size(); }
size_t Session::num_outputs() const { return impl_->outputs.size(); }
int64_t Session::batch() const { return impl_->options.batch; }
size_t Session::arena_bytes() const { return impl_->arena_bytes; }
size_t Session::scratch_bytes() const { return impl_->scratch_bytes; }

std::vector<LayerInfo> Session::layers() const {
  std::vector<LayerInfo> result;
  for (const Step& s : impl_->steps) result.push_back({s.name, s.op, s.kernel->implementation()});
  return result;
}

}  // namespace octet
