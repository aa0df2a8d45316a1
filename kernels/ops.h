// Factories of every op family, one pair per file (optimized, reference). The table in registry.cpp maps op
// names to them. Each factory validates the node's settings and throws Error naming the node if unsupported.
#pragma once

#include "kernels/kernel.h"

namespace octet::kernels {

using KernelFactory = std::unique_ptr<Kernel> (*)(const KernelContext&);

#define OCTET_KERNEL_FAMILY(name)                                  \
  std::unique_ptr<Kernel> make_##name(const KernelContext& ctx);   \
  std::unique_ptr<Kernel> make_##name##_reference(const KernelContext& ctx);

OCTET_KERNEL_FAMILY(conv)         // conv.cpp: Conv (+ fused act, sum)
OCTET_KERNEL_FAMILY(gemm)         // matmul.cpp: Gemm
OCTET_KERNEL_FAMILY(matmul)       // matmul.cpp: MatMul
OCTET_KERNEL_FAMILY(eltwise)      // eltwise.cpp: Relu, LeakyRelu, Clip, Sigmoid
OCTET_KERNEL_FAMILY(binary)       // binary.cpp: Add, Mul
OCTET_KERNEL_FAMILY(pool)         // pool.cpp: MaxPool, AveragePool, GlobalAveragePool
OCTET_KERNEL_FAMILY(batchnorm)    // batchnorm.cpp: BatchNormalization
OCTET_KERNEL_FAMILY(softmax)      // softmax.cpp: Softmax
OCTET_KERNEL_FAMILY(reduce)       // reduce.cpp: ReduceMean
OCTET_KERNEL_FAMILY(concat)       // concat.cpp: Concat
OCTET_KERNEL_FAMILY(copy)         // shape_ops.cpp: Identity, Reshape, Flatten, Squeeze, Unsqueeze
OCTET_KERNEL_FAMILY(transpose)    // shape_ops.cpp: Transpose
OCTET_KERNEL_FAMILY(slice)        // slice.cpp: Slice, Split
OCTET_KERNEL_FAMILY(pad)          // pad.cpp: Pad
OCTET_KERNEL_FAMILY(gather)       // gather.cpp: Gather

#undef OCTET_KERNEL_FAMILY

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

}  // namespace octet::kernels
