// The kernel families, one line each: the op table (graph/ops.cpp) names each op's family, so an op is
// declared in one place. A family missing here is named in the error.
#include <cstring>
#include <set>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

struct KernelFamily {
  const char* name;
  KernelFactory optimized;
  KernelFactory reference;
};

#define FAMILY(family) \
  { #family, make_##family, make_##family##_reference }
const KernelFamily kKernelFamilies[] = {
    FAMILY(conv),      FAMILY(gemm),  FAMILY(matmul), FAMILY(batchnorm), FAMILY(eltwise),    FAMILY(binary),
    FAMILY(pool),      FAMILY(copy),  FAMILY(concat), FAMILY(softmax),   FAMILY(pad),        FAMILY(reduce),
    FAMILY(transpose), FAMILY(slice), FAMILY(gather), FAMILY(quantize),  FAMILY(layer_norm),
};
#undef FAMILY

const KernelFamily* find_family(const char* name) {
  for (const KernelFamily& f : kKernelFamilies)
    if (std::strcmp(f.name, name) == 0) return &f;
  return nullptr;
}

}  // namespace

bool has_kernel_family(const std::string& family) {
  const KernelFamily* f = find_family(family.c_str());
  return f && f->optimized && f->reference;
}

std::unique_ptr<Kernel> create_kernel(const KernelContext& ctx) {
  const OpSchema* schema = find_op_schema(ctx.node.op);
  const KernelFamily* family = schema ? find_family(schema->kernel_family) : nullptr;
  if (!family) throw Error(node_label(ctx.node) + ": no kernel for op '" + ctx.node.op + "'");
  try {
    return ctx.implementation == Implementation::reference ? family->reference(ctx) : family->optimized(ctx);
  } catch (const dnnl::error& err) {
    throw Error(node_label(ctx.node) + ": oneDNN could not create the primitive: " + err.what());
  }
}

int step_threads(const KernelContext& ctx, int session_threads) {
  if (session_threads <= 1) return session_threads;
  const OpSchema* schema = find_op_schema(ctx.node.op);
  const std::string family = schema ? schema->kernel_family : "";
  // Data movement and single-pass normalizations only; softmax (an exp per element) kept its speed-up.
  static const std::set<std::string> light = {"transpose", "copy",   "slice", "concat",    "gather",
                                              "quantize",  "binary", "pad",   "layer_norm"};
  if (!light.count(family)) return session_threads;
  int64_t elements = 0;  // written
  size_t bytes = 0;      // read and written
  for (const TensorDesc& t : ctx.inputs) bytes += t.dims.empty() && t.strides.empty() ? 0 : t.bytes();
  for (const TensorDesc& t : ctx.outputs) {
    elements += t.elements();
    bytes += t.bytes();
  }
  return elements <= kSmallStepElements && bytes <= kSmallStepBytes ? 1 : session_threads;
}

}  // namespace octet::kernels
