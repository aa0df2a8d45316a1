// The kernel families, one line each: the op table (graph/ops.cpp) names each op's family, so an op is
// declared in one place. A family missing here is named in the error.
#include <cstring>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

// What the executor may assume of a family's optimized kernels.
enum FamilyTrait : unsigned {
  kNoTraits = 0,
  // Reads an input of any strides and offset at its usual speed (a strided copy or a oneDNN reorder), so
  // its input may be a zero-copy view with strides no other kernel was planned for (plan_views).
  kReadsAnyStrides = 1,
  // Reads or writes rank-4 feature maps channels-last (plan_activation_layouts).
  kChannelsLast = 2,
};

struct KernelFamily {
  const char* name;
  KernelFactory optimized;
  KernelFactory reference;
  unsigned traits;
  ThreadingRule threading;
};

#define FAMILY(family, traits, threading) \
  { #family, make_##family, make_##family##_reference, traits, threading }
const KernelFamily kKernelFamilies[] = {
    FAMILY(conv, kChannelsLast, all_threads),
    FAMILY(gemm, kNoTraits, all_threads),
    FAMILY(matmul, kNoTraits, matmul_threading),
    FAMILY(batchnorm, kChannelsLast, all_threads),
    FAMILY(eltwise, kNoTraits, all_threads),
    FAMILY(binary, kNoTraits, binary_threading),
    FAMILY(pool, kChannelsLast, all_threads),
    FAMILY(copy, kReadsAnyStrides, one_thread_when_little_data),
    FAMILY(concat, kNoTraits, one_thread_when_little_data),
    FAMILY(softmax, kNoTraits, softmax_threading),
    FAMILY(pad, kNoTraits, one_thread_when_little_data),
    FAMILY(reduce, kNoTraits, all_threads),
    FAMILY(transpose, kReadsAnyStrides, one_thread_when_little_data),
    FAMILY(slice, kReadsAnyStrides, one_thread_when_little_data),
    FAMILY(gather, kNoTraits, one_thread_when_little_data),
    // Not any strides: on a strided source its binary is oneDNN's ref:any.
    FAMILY(quantize, kNoTraits, one_thread_when_little_data),
    FAMILY(layer_norm, kNoTraits, one_thread_when_little_data),
};
#undef FAMILY

const KernelFamily* find_family(const char* name) {
  for (const KernelFamily& f : kKernelFamilies)
    if (std::strcmp(f.name, name) == 0) return &f;
  return nullptr;
}

const KernelFamily* family_of(const std::string& op) {
  const OpSchema* schema = find_op_schema(op);
  return schema ? find_family(schema->kernel_family) : nullptr;
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

Threading all_threads(const KernelContext&) { return Threading::all; }
Threading one_thread_when_little_data(const KernelContext&) { return Threading::one_when_little_data; }

int step_threads(const KernelContext& ctx, int session_threads) {
  if (session_threads <= 1) return session_threads;
  const KernelFamily* family = family_of(ctx.node.op);
  if (!family) return session_threads;
  switch (family->threading(ctx)) {
    case Threading::all: return session_threads;
    case Threading::one_when_small_output:
      return !ctx.outputs.empty() && ctx.outputs[0].elements() <= kSmallStepElements ? 1 : session_threads;
    case Threading::one_when_little_data: break;
  }
  int64_t elements = 0;  // written
  size_t bytes = 0;      // read and written (a view's elements, not the span of its strides)
  for (const TensorDesc& t : ctx.inputs)
    bytes += t.dims.empty() && t.strides.empty() ? 0 : static_cast<size_t>(t.elements()) * dtype_size(t.dtype);
  for (const TensorDesc& t : ctx.outputs) {
    elements += t.elements();
    bytes += t.bytes();
  }
  return elements <= kSmallStepElements && bytes <= kSmallStepBytes ? 1 : session_threads;
}

bool reads_any_strides(const std::string& op) {
  const KernelFamily* family = family_of(op);
  return family && (family->traits & kReadsAnyStrides);
}

bool works_channels_last(const std::string& op) {
  const KernelFamily* family = family_of(op);
  return family && (family->traits & kChannelsLast);
}

}  // namespace octet::kernels
