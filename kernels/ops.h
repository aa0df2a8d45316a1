// Factories of every op family, one pair per file (optimized, reference). The table in registry.cpp maps op
// names to them. Each factory validates the node's settings and throws Error naming the node if unsupported.
#pragma once

#include "kernels/kernel.h"

namespace octet::kernels {

using KernelFactory = std::unique_ptr<Kernel> (*)(const KernelContext&);

#define OCTET_KERNEL_FAMILY(name)                                \
  std::unique_ptr<Kernel> make_##name(const KernelContext& ctx); \
  std::unique_ptr<Kernel> make_##name##_reference(const KernelContext& ctx);

OCTET_KERNEL_FAMILY(conv)    // conv.cpp: Conv (+ fused act, sum)
OCTET_KERNEL_FAMILY(gemm)    // matmul.cpp: Gemm
OCTET_KERNEL_FAMILY(matmul)  // matmul.cpp: MatMul
OCTET_KERNEL_FAMILY(
    eltwise)  // eltwise.cpp: Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Gelu, Erf, Sqrt, Pow
OCTET_KERNEL_FAMILY(binary)      // binary.cpp: Add, Sub, Mul, Div
OCTET_KERNEL_FAMILY(layer_norm)  // layer_norm.cpp: LayerNormalization
OCTET_KERNEL_FAMILY(pool)        // pool.cpp: MaxPool, AveragePool, GlobalAveragePool
OCTET_KERNEL_FAMILY(batchnorm)   // batchnorm.cpp: BatchNormalization
OCTET_KERNEL_FAMILY(softmax)     // softmax.cpp: Softmax
OCTET_KERNEL_FAMILY(reduce)      // reduce.cpp: ReduceMean
OCTET_KERNEL_FAMILY(concat)      // concat.cpp: Concat
OCTET_KERNEL_FAMILY(copy)        // shape_ops.cpp: Identity, Reshape, Flatten, Squeeze, Unsqueeze
OCTET_KERNEL_FAMILY(transpose)   // shape_ops.cpp: Transpose
OCTET_KERNEL_FAMILY(slice)       // slice.cpp: Slice, Split
OCTET_KERNEL_FAMILY(pad)         // pad.cpp: Pad
OCTET_KERNEL_FAMILY(gather)      // gather.cpp: Gather
OCTET_KERNEL_FAMILY(quantize)    // quantize.cpp: Quantize, Dequantize

#undef OCTET_KERNEL_FAMILY

// How a family's step uses the threads of a multi-thread session (step_threads, kernel.h), stated by the family
// beside its registration (registry.cpp): every thread; one when the step moves little data (writes at most
// kSmallStepElements and touches at most kSmallStepBytes: data movement and single passes, where a second
// thread costs more than it saves); one when its output is small (kSmallStepElements).
enum class Threading { all, one_when_little_data, one_when_small_output };
using ThreadingRule = Threading (*)(const KernelContext&);
Threading all_threads(const KernelContext& ctx);                  // registry.cpp
Threading one_thread_when_little_data(const KernelContext& ctx);  // registry.cpp
Threading matmul_threading(const KernelContext& ctx);             // matmul.cpp
Threading softmax_threading(const KernelContext& ctx);            // softmax.cpp
Threading binary_threading(const KernelContext& ctx);             // binary.cpp

// gemv_s8.cpp: the optimized Gemm for f32 activations with s8 constant weights (weight-only INT8, the FP32
// classifier), or nullptr when the node does not have that form.
std::unique_ptr<Kernel> make_weight_only_gemv(const KernelContext& ctx);

// slice.cpp: the window each output of a Slice or Split reads, per input dim: element i of output dim d is
// input element start[d] + i * step[d] (ONNX's clamping applied). Throws Error naming the node on bad
// attributes. Also read by plan_views (views.cpp), so a Slice view and a Slice copy pick the same elements.
struct SliceWindow {
  std::vector<int64_t> start, step;
};
std::vector<SliceWindow> slice_windows(const Node& node, const Shape& input, const std::vector<Shape>& outputs);

// Plain C++ helpers for reference kernels on strided tensors.
// Calls f(logical_index, src_offset) for every element of `desc` in row-major logical order.
template <typename F>
void for_each_index(const TensorDesc& desc, F&& f) {
  size_t rank = desc.dims.size();
  int64_t total = desc.elements();
  std::vector<int64_t> idx(rank, 0);
  int64_t offset = 0;
  for (int64_t n = 0; n < total; ++n) {
    f(idx, offset);
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < desc.dims[d]) {
        offset += desc.strides[d];
        break;
      }
      offset -= (desc.dims[d] - 1) * desc.strides[d];
      idx[d] = 0;
    }
  }
}

// Offset of a logical index in a strided tensor.
inline int64_t offset_of(const TensorDesc& desc, const std::vector<int64_t>& idx) {
  int64_t o = 0;
  for (size_t d = 0; d < idx.size(); ++d) o += idx[d] * desc.strides[d];
  return o;
}

// ---- Shared by the op family files (eltwise.cpp ... gather.cpp) ----

// Throws Error naming the node unless inputs [0, inputs) and every output have input 0's dtype and
// quantization, and that dtype is one of `allowed`. Kernels that move elements without converting them
// (copies, MaxPool, Concat) accept every dtype whose values they never interpret.
void require_types(const KernelContext& ctx, size_t inputs, const std::vector<DType>& allowed);
inline const std::vector<DType> kAnyDType = {DType::f32, DType::u8, DType::s8, DType::s32, DType::s64};
inline const std::vector<DType> kDnnlDTypes = {DType::f32, DType::u8, DType::s8, DType::s32};  // no s64
// Throws Error naming the node when input i is a constant: oneDNN kernels bind activations only (the
// converter folds nodes whose inputs are all constant).
void require_activation(const KernelContext& ctx, size_t i);

// "scale 0.1, zero point 3" (every value when per channel, then the axis), or "no quantization parameters".
std::string quant_params_str(const QuantParams& quant);
// The one scale and zero point of a per-tensor quantized tensor (`what`: "input 0", "output 0", ...): axis -1,
// one scale and one zero point, the scale finite and > 0, the zero point inside the dtype's range
// (graph/quantization.h). `why` ends the per-tensor message (" for a MaxPool that requantizes"). Throws Error naming
// the node and the field.
struct PerTensorQuant {
  float scale;
  int32_t zero_point;
};
PerTensorQuant require_per_tensor_params(const Node& node, const TensorDesc& desc, const std::string& what,
                                         const std::string& why = "");

// Dims of `t` outermost first: by decreasing stride, ties (size-1 dims) by logical position.
std::vector<size_t> physical_order(const TensorDesc& t);

// Base of the plain C++ kernels: keeps the bound addresses; a constant input reads the constant's bytes
// (constants are dense row-major, as their TensorDesc says).
class PlainKernel : public Kernel {
 public:
  explicit PlainKernel(const KernelContext& ctx) : constants_(ctx.constants) {}
  void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void* scratch) override;

 protected:
  template <typename T = void>
  const T* input(size_t i) const {
    return static_cast<const T*>(inputs_[i]);
  }
  template <typename T = void>
  T* output(size_t i) const {
    return static_cast<T*>(outputs_[i]);
  }
  void* scratch() const { return scratch_; }

 private:
  std::vector<const Constant*> constants_;
  std::vector<const void*> inputs_;
  std::vector<void*> outputs_;
  void* scratch_ = nullptr;
};

// Copies one strided view onto another of the same logical dims. Elements are elem_size bytes; strides
// are in elements and may be negative (reversed slices). The constructor (Prepare) drops size-1 dims and
// merges dims contiguous on both sides, so dense-to-dense is one memcpy; run() only loops.
class StridedCopy {
 public:
  StridedCopy(size_t elem_size, const Shape& dims, const Strides& src_strides, const Strides& dst_strides);
  void run(const void* src, void* dst) const;
  size_t elem_size() const { return elem_size_; }

 private:
  void copy_dim(size_t d, const char* src, char* dst) const;
  size_t elem_size_;
  bool empty_ = false;
  std::vector<int64_t> dims_, src_strides_, dst_strides_;  // strides in bytes
};

// A kernel made of strided copies between inputs, outputs and the scratch (Slice, Split, Gather, the copy
// family). Offsets are in elements from each tensor's logical origin.
class StridedCopyKernel : public PlainKernel {
 public:
  static constexpr int kScratch = -1;  // an endpoint meaning the kernel's scratch buffer
  StridedCopyKernel(const KernelContext& ctx, size_t scratch_bytes = 0)
      : PlainKernel(ctx), scratch_bytes_(scratch_bytes) {}
  void add(int input, int output, int64_t src_offset, int64_t dst_offset, StridedCopy copy);
  size_t scratch_bytes() const override { return scratch_bytes_; }
  void run() override;
  std::string implementation() const override { return "strided copy"; }

 private:
  struct Piece {
    int input, output;
    int64_t src_offset, dst_offset;  // bytes
    StridedCopy copy;
  };
  size_t scratch_bytes_;
  std::vector<Piece> pieces_;
};

}  // namespace octet::kernels
