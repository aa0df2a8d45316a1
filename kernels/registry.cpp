// The kernel op table: one line per op. An op missing here is named in the error.
#include <cstring>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

struct KernelEntry {
  const char* op;
  KernelFactory optimized;
  KernelFactory reference;
};

#define ENTRY(op, family) {op, make_##family, make_##family##_reference}
const KernelEntry kKernelTable[] = {
    ENTRY("Conv", conv),
    ENTRY("Gemm", gemm),
    ENTRY("MatMul", matmul),
    ENTRY("BatchNormalization", batchnorm),
    ENTRY("Relu", eltwise),
    ENTRY("LeakyRelu", eltwise),
    ENTRY("Clip", eltwise),
    ENTRY("Sigmoid", eltwise),
    ENTRY("Add", binary),
    ENTRY("Mul", binary),
    ENTRY("MaxPool", pool),
    ENTRY("AveragePool", pool),
    ENTRY("GlobalAveragePool", pool),
    ENTRY("Flatten", copy),
    ENTRY("Reshape", copy),
    ENTRY("Identity", copy),
    ENTRY("Squeeze", copy),
    ENTRY("Unsqueeze", copy),
    ENTRY("Concat", concat),
    ENTRY("Softmax", softmax),
    ENTRY("Pad", pad),
    ENTRY("ReduceMean", reduce),
    ENTRY("Transpose", transpose),
    ENTRY("Slice", slice),
    ENTRY("Split", slice),
    ENTRY("Gather", gather),
    ENTRY("Quantize", quantize),
    ENTRY("Dequantize", quantize),
};
#undef ENTRY

}  // namespace

std::unique_ptr<Kernel> create_kernel(const KernelContext& ctx) {
  for (const KernelEntry& e : kKernelTable) {
    if (ctx.node.op != e.op) continue;
    try {
      return ctx.implementation == Implementation::reference ? e.reference(ctx) : e.optimized(ctx);
    } catch (const dnnl::error& err) {
      throw Error(node_label(ctx.node) + ": oneDNN could not create the primitive: " + err.what());
    }
  }
  throw Error(node_label(ctx.node) + ": no kernel for op '" + ctx.node.op + "'");
}

}  // namespace octet::kernels
