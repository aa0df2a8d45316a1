// Helpers shared by the oneDNN kernels. Internal to kernels/: nothing outside kernels/ includes dnnl.
#pragma once

#include <dnnl.hpp>
#include <unordered_map>

#include "kernels/kernel.h"

namespace octet::kernels {

struct LinearQuant;  // kernels/quantized_linear.h

struct Engine::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

dnnl::memory::data_type to_dnnl(DType dtype);
dnnl::memory::dims to_dims(const Shape& shape);
// A memory descriptor with the tensor's dtype, dims and strides.
dnnl::memory::desc to_md(const TensorDesc& desc);
// Attributes every optimized kernel starts from: user-managed scratchpad, so run() never allocates.
dnnl::primitive_attr base_attr();

// Base for kernels that execute one oneDNN primitive: owns the primitive, its memory arguments and the
// scratchpad binding. Subclasses create the primitive in their constructor (Prepare) and list which
// argument ids are the node's inputs and outputs.
class DnnlKernel : public Kernel {
 public:
  size_t scratch_bytes() const override { return scratch_md_.get_size(); }
  std::string implementation() const override { return impl_; }
  void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void* scratch) override;
  // The C API with arguments prepared at bind(): the C++ execute() builds a vector from the map on every call.
  void run() override;

 protected:
  explicit DnnlKernel(Engine& engine) : engine_(&engine.impl()) {}
  void set_primitive(const dnnl::primitive& primitive, const dnnl::primitive_desc_base& pd);
  // Node input i / output i is passed to the primitive as `arg` with descriptor `md`.
  void map_input(size_t i, int arg, const dnnl::memory::desc& md) { input_args_.push_back({i, arg, md}); }
  void map_output(size_t i, int arg, const dnnl::memory::desc& md) { output_args_.push_back({i, arg, md}); }
  // A constant argument the kernel owns (reordered weights, bias).
  void set_owned(int arg, const dnnl::memory& memory) { args_[arg] = memory; }

  struct ArgMap {
    size_t index;
    int arg;
    dnnl::memory::desc md;
  };
  Engine::Impl* engine_;
  dnnl::primitive primitive_;
  dnnl::memory::desc scratch_md_;
  std::string impl_;
  std::vector<ArgMap> input_args_, output_args_;
  std::unordered_map<int, dnnl::memory> args_;
  std::vector<dnnl_exec_arg_t> exec_args_;  // args_ as the C API takes them, rebuilt by bind()
};

// oneDNN adds the dst zero point to the float result before rounding, so a value within half a float ulp
// (at the magnitude of value + zero point) of .5 rounds the other way than round(value) + zero point, which
// quantized_linear.h (and ONNX Runtime) compute: 1 output in 5 to 10 million, enough to flip ONNX Runtime
// top-1 agreement on 3 of 900 images for the QOperator MobileNet v2. A final eltwise_round post-op makes the
// value an integer first (round half to even, as the conversion), so adding the zero point is exact.
void append_round_before_zero_point(dnnl::post_ops& ops, const LinearQuant& q, DType dst);

// Reorders `data` (described by `source`) into `dst`.
void reorder_into(Engine::Impl& engine, const dnnl::memory::desc& source, const void* data, dnnl::memory& dst);
// Reorders a dense row-major constant into `target` (the layout a primitive chose), returning owned memory.
dnnl::memory reorder_constant(Engine::Impl& engine, const dnnl::memory::desc& source, const void* data,
                              const dnnl::memory::desc& target);

// Memory in `target` layout for a packed form of `constant`, filled by `fill`: shared through `packed` (one
// copy per Model, keyed by the constant, `target` and `variant`) when given, else owned by the memory.
dnnl::memory packed_constant(Engine::Impl& engine, PackedWeights* packed, const Constant& constant,
                             const std::string& variant, const dnnl::memory::desc& target,
                             const std::function<void(dnnl::memory&)>& fill);
// A constant's weights reordered from their dense `source` description into `target`, shared as above.
dnnl::memory packed_weights(Engine::Impl& engine, PackedWeights* packed, const Constant& constant,
                            const dnnl::memory::desc& source, const dnnl::memory::desc& target);

// A weight constant in `target` layout as f32. `stored` describes the constant's dense bytes as f32 in the
// arrangement the primitive sees (dims and strides; a transposed or grouped view). s8 constants (weight-only
// INT8) are dequantized by the reorder itself when their scales run along one dim of that view, so no float
// copy of the whole tensor is made at load; other arrangements go through float_weights.
dnnl::memory float_weights_in(Engine::Impl& engine, PackedWeights* packed, const Constant& constant,
                              const QuantParams& quant, const dnnl::memory::desc& stored,
                              const dnnl::memory::desc& target, const std::string& context);

}  // namespace octet::kernels
